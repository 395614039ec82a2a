/* The query string of GET /admin/audit, checked parameter by parameter, and its rows' JSON. */
#include "http/audit_query.h"

#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "util/tstamp.h"
#include "util/util.h"
#include "util/xmalloc.h"

int admin_query_bad(struct gw_err *err, const char *msg)
{
    gw_err_set(err, GW_EINVAL, "%s", msg);
    if (err)
        err->http_status = 400;
    return GW_EINVAL;
}

int admin_query_parse(const char *query, int (*check)(struct evkeyvalq *, void *, struct gw_err *),
                      void (*release)(void *), void *q, struct gw_err *err)
{
    struct evkeyvalq params;
    int rc;

    if (!query || !*query)
        return GW_OK;
    /* It initializes params, and frees what it parsed when it fails. */
    if (evhttp_parse_query_str(query, &params) != 0)
        return admin_query_bad(err, "malformed query string");
    rc = check(&params, q, err);
    evhttp_clear_headers(&params);
    if (rc)
        release(q);
    return rc;
}

static int check(struct evkeyvalq *params, struct audit_query *q, struct gw_err *err)
{
    const char *v;
    int64_t n;

    if ((v = evhttp_find_header(params, "agent")) && *v)
        q->agent = xstrdup(v);
    if ((v = evhttp_find_header(params, "decision"))) {
        if (strcmp(v, "allow") != 0 && strcmp(v, "deny") != 0)
            return admin_query_bad(err, "invalid 'decision': expected 'allow' or 'deny'");
        q->decision = xstrdup(v);
    }
    if ((v = evhttp_find_header(params, "since")) && tstamp_parse(v, &q->since_ms))
        return admin_query_bad(err, "invalid 'since': expected an RFC 3339 time (2026-12-05T10:00:00Z) "
                        "or unix seconds");
    if ((v = evhttp_find_header(params, "limit"))) {
        if (util_parse_i64(v, 1, STORE_AUDIT_LIMIT_MAX, &n))
            return admin_query_bad(err, "invalid 'limit': expected an integer from 1 to 1000");
        q->limit = (size_t)n;
    }
    if ((v = evhttp_find_header(params, "after"))) {
        if (util_parse_i64(v, 0, INT64_MAX, &q->after_seq))
            return admin_query_bad(err, "invalid 'after': expected a seq number (0 or more)");
    }
    return GW_OK;
}

static int audit_check(struct evkeyvalq *params, void *q, struct gw_err *err)
{
    return check(params, q, err);
}

static void audit_release(void *q)
{
    audit_query_release(q);
}

int audit_query_parse(const char *query, struct audit_query *q, struct gw_err *err)
{
    memset(q, 0, sizeof(*q));
    q->limit = STORE_AUDIT_LIMIT_DEFAULT;
    return admin_query_parse(query, audit_check, audit_release, q, err);
}

struct store_audit_filter audit_query_filter(const struct audit_query *q)
{
    return (struct store_audit_filter){.agent = q->agent, .decision = q->decision,
                                       .since_ms = q->since_ms, .after_seq = q->after_seq,
                                       .limit = q->limit};
}

void audit_query_release(struct audit_query *q)
{
    free(q->agent);
    free(q->decision);
    memset(q, 0, sizeof(*q));
}

json_t *audit_row_json(const struct store_audit *a)
{
    char time[32];

    tstamp_format(a->ts, time);
    return json_pack("{s:I, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s, s:s, s:s, s:s?, s:s?, "
                     "s:o, s:s?}",
                     "seq", (json_int_t)a->seq, "id", a->id, "time", time, "request_id",
                     a->request_id, "principal", a->principal, "agent", a->agent, "session_id",
                     a->session_id, "tool", a->tool, "kind", a->kind, "target", a->target,
                     "decision", a->decision, "rule", a->rule, "outcome", a->outcome,
                     "duration_ms",
                     a->duration_ms >= 0 ? json_integer(a->duration_ms) : json_null(), "error",
                     a->error);
}
