/*
 * http/usage_query.h - the query string of GET /admin/usage, checked: group_by (key, user,
 * model, day, api, agent; default key), since and until (RFC 3339 or unix seconds), key (one
 * key's name).  Other parameters are ignored; of a repeated one the first counts.  And the
 * JSON of one group, shared with `copilot-gateway usage --json`.
 *
 * Ownership: usage_query_parse() fills an owned struct usage_query (usage_query_release()).
 * Threading: pure, any thread.
 * Errors: GW_EINVAL with err->msg naming the parameter (err->http_status 400).
 */
#ifndef GW_HTTP_USAGE_QUERY_H
#define GW_HTTP_USAGE_QUERY_H

#include <jansson.h>

#include "store/store.h"
#include "util/err.h"

struct usage_query {
    char group_by[8];
    int64_t since_ms, until_ms; /* 0: no bound */
    char *key;                  /* or NULL */
};

int usage_query_parse(const char *query, struct usage_query *q, struct gw_err *err) WARN_UNUSED;
/* The store's query q stands for (borrowing q's strings). */
struct store_usage_query usage_query_store(const struct usage_query *q);
void usage_query_release(struct usage_query *q);

/* {"<group_by>": group or null, "requests", "errors", "input_tokens", "output_tokens",
 *  "cached_tokens", "reasoning_tokens", "credits"} (a new reference). */
json_t *usage_group_json(const struct store_usage_group *g, const char *group_by);

#endif
