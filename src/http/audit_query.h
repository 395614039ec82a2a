/*
 * http/audit_query.h - the query string of GET /admin/audit, checked: agent,
 * decision (allow | deny), since (RFC 3339 or unix seconds), limit
 * (1..STORE_AUDIT_LIMIT_MAX), after (a seq).  Other parameters are ignored;
 * of a repeated one the first counts.
 *
 * Ownership: audit_query_parse() fills an owned struct audit_query; free its
 *   strings with audit_query_release().
 * Threading: pure, any thread.
 * Errors: GW_EINVAL with err->msg naming the parameter and what it takes
 *   (err->http_status 400).
 */
#ifndef GW_HTTP_AUDIT_QUERY_H
#define GW_HTTP_AUDIT_QUERY_H

#include <jansson.h>

#include "store/store.h"
#include "util/err.h"

struct audit_query {
    char *agent;         /* or NULL */
    char *decision;      /* "allow" | "deny" | NULL */
    int64_t since_ms;    /* 0: no bound */
    int64_t after_seq;   /* 0: newest first */
    size_t limit;        /* 1..STORE_AUDIT_LIMIT_MAX; STORE_AUDIT_LIMIT_DEFAULT if absent */
};

struct evkeyvalq;

/*
 * The frame of every admin query string: parses query (NULL or "": nothing to check) into
 * its parameters and runs check(params, q, err) on them; a malformed string is a 400.  On
 * error release(q) runs.  Used by audit_query_parse() and usage_query_parse().
 */
int admin_query_parse(const char *query, int (*check)(struct evkeyvalq *, void *, struct gw_err *),
                      void (*release)(void *), void *q, struct gw_err *err) WARN_UNUSED;
/* A 400 with msg, for a check. */
int admin_query_bad(struct gw_err *err, const char *msg);

/* Parses query (what follows '?', or NULL) into q (zeroed first).  On error q holds nothing. */
int audit_query_parse(const char *query, struct audit_query *q, struct gw_err *err) WARN_UNUSED;

/* The filter q stands for (borrowing q's strings). */
struct store_audit_filter audit_query_filter(const struct audit_query *q);

void audit_query_release(struct audit_query *q);

/*
 * A row as GET /admin/audit and `copilot-gateway audit --json` show it (a
 * new reference): seq, id, time (RFC 3339 UTC with ms), request_id,
 * principal, agent, session_id, tool, kind, target, decision, rule,
 * outcome, duration_ms (null when unknown), error; absent strings are null.
 */
json_t *audit_row_json(const struct store_audit *a);

#endif
