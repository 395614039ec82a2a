/*
 * http/metrics.h - request counters and duration histograms for /metrics.
 *
 * Fixed-size tables: a route is one of a few constant names (never the raw
 * path, so a client cannot blow up the label set), a status is an HTTP code.
 */
#ifndef GW_HTTP_METRICS_H
#define GW_HTTP_METRICS_H

#include <stdint.h>

#include "util/buf.h"

#define METRICS_MAX_SERIES 64
#define METRICS_NBUCKETS 15
/* Virtual keys with series of their own; the rest are summed under key="other". */
#define METRICS_MAX_KEYS 100
#define METRICS_KEY_MAX 65

struct http_metrics {
    struct {
        const char *route;
        int status;
        uint64_t count;
    } req[METRICS_MAX_SERIES];
    int nreq;
    struct {
        const char *route;
        uint64_t bucket[METRICS_NBUCKETS]; /* cumulative counts per le */
        uint64_t count;
        double sum;
    } dur[16];
    int ndur;
    /* usage by virtual key (bounded: METRICS_MAX_KEYS names, then "other") */
    struct {
        char key[METRICS_KEY_MAX];
        uint64_t requests, errors, input_tokens, output_tokens, cached_tokens;
        double credits;
    } keys[METRICS_MAX_KEYS + 1];
    int nkeys;
};

/* route must be a string constant. */
void http_metrics_observe(struct http_metrics *m, const char *route, int status, double seconds);
/* Counts a finished request's usage for key (a virtual key's name; NULL: not counted). */
void http_metrics_usage(struct http_metrics *m, const char *key, int status, int64_t input,
                        int64_t output, int64_t cached, double credits);
/* Appends the request series in Prometheus text format. */
int http_metrics_render(const struct http_metrics *m, struct buf *out) WARN_UNUSED;

#endif
