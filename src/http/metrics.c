/* Request counters and duration histograms, rendered for Prometheus. */
#include "http/metrics.h"

#include <stdio.h>
#include <string.h>

static const double le[METRICS_NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                            2.5,   5,    10,    30,   60,  120, 300};

void http_metrics_observe(struct http_metrics *m, const char *route, int status, double seconds)
{
    int i;

    for (i = 0; i < m->nreq; i++)
        if (m->req[i].route == route && m->req[i].status == status)
            break;
    if (i == m->nreq && m->nreq < METRICS_MAX_SERIES) {
        m->req[i].route = route;
        m->req[i].status = status;
        m->nreq++;
    }
    if (i < m->nreq)
        m->req[i].count++;
    for (i = 0; i < m->ndur; i++)
        if (m->dur[i].route == route)
            break;
    if (i == m->ndur) {
        if (m->ndur == (int)(sizeof(m->dur) / sizeof(m->dur[0])))
            return;
        m->dur[i].route = route;
        m->ndur++;
    }
    for (int b = 0; b < METRICS_NBUCKETS; b++)
        if (seconds <= le[b])
            m->dur[i].bucket[b]++;
    m->dur[i].count++;
    m->dur[i].sum += seconds;
}

void http_metrics_usage(struct http_metrics *m, const char *key, int status, int64_t input,
                        int64_t output, int64_t cached, double credits)
{
    int i;

    if (!key)
        return;
    for (i = 0; i < m->nkeys; i++)
        if (strcmp(m->keys[i].key, key) == 0)
            break;
    if (i == m->nkeys) {
        if (m->nkeys < METRICS_MAX_KEYS) {
            snprintf(m->keys[i].key, sizeof(m->keys[i].key), "%s", key);
            m->nkeys++;
        } else {
            i = METRICS_MAX_KEYS; /* "other" */
            snprintf(m->keys[i].key, sizeof(m->keys[i].key), "other");
        }
    }
    m->keys[i].requests++;
    m->keys[i].errors += status >= 400;
    m->keys[i].input_tokens += (uint64_t)(input > 0 ? input : 0);
    m->keys[i].output_tokens += (uint64_t)(output > 0 ? output : 0);
    m->keys[i].cached_tokens += (uint64_t)(cached > 0 ? cached : 0);
    m->keys[i].credits += credits > 0 ? credits : 0;
}

/* The usage series per key (names are the admin's: letters, digits and . _ @ + -). */
static int render_keys(const struct http_metrics *m, struct buf *out)
{
    static const char *const names[] = {"requests", "errors", "input_tokens", "output_tokens",
                                        "cached_tokens"};
    int rc = 0;

    for (int n = 0; !rc && n < 5; n++) {
        rc = buf_addf(out, "# TYPE copilot_gateway_key_%s_total counter\n", names[n]);
        for (int i = 0; !rc && i <= METRICS_MAX_KEYS; i++) {
            const uint64_t v[] = {m->keys[i].requests, m->keys[i].errors, m->keys[i].input_tokens,
                                  m->keys[i].output_tokens, m->keys[i].cached_tokens};
            if (i < m->nkeys || (i == METRICS_MAX_KEYS && m->keys[i].requests))
                rc = buf_addf(out, "copilot_gateway_key_%s_total{key=\"%s\"} %llu\n", names[n],
                              m->keys[i].key, (unsigned long long)v[n]);
        }
    }
    if (!rc)
        rc = buf_adds(out, "# TYPE copilot_gateway_key_credits_total counter\n");
    for (int i = 0; !rc && i <= METRICS_MAX_KEYS; i++)
        if (i < m->nkeys || (i == METRICS_MAX_KEYS && m->keys[i].requests))
            rc = buf_addf(out, "copilot_gateway_key_credits_total{key=\"%s\"} %.6f\n",
                          m->keys[i].key, m->keys[i].credits);
    return rc;
}

int http_metrics_render(const struct http_metrics *m, struct buf *out)
{
    int rc = buf_adds(out, "# HELP copilot_gateway_requests_total HTTP requests by route and "
                           "status.\n# TYPE copilot_gateway_requests_total counter\n");
    for (int i = 0; !rc && i < m->nreq; i++)
        rc = buf_addf(out, "copilot_gateway_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                      m->req[i].route, m->req[i].status, (unsigned long long)m->req[i].count);
    if (!rc)
        rc = buf_adds(out, "# HELP copilot_gateway_request_duration_seconds Time from request "
                           "to the end of its reply.\n# TYPE "
                           "copilot_gateway_request_duration_seconds histogram\n");
    for (int i = 0; !rc && i < m->ndur; i++) {
        const char *r = m->dur[i].route;
        for (int b = 0; !rc && b < METRICS_NBUCKETS; b++)
            rc = buf_addf(out,
                          "copilot_gateway_request_duration_seconds_bucket{route=\"%s\","
                          "le=\"%g\"} %llu\n",
                          r, le[b], (unsigned long long)m->dur[i].bucket[b]);
        if (!rc)
            rc = buf_addf(out,
                          "copilot_gateway_request_duration_seconds_bucket{route=\"%s\","
                          "le=\"+Inf\"} %llu\n"
                          "copilot_gateway_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                          "copilot_gateway_request_duration_seconds_count{route=\"%s\"} %llu\n",
                          r, (unsigned long long)m->dur[i].count, r, m->dur[i].sum, r,
                          (unsigned long long)m->dur[i].count);
    }
    return rc ? rc : render_keys(m, out);
}
