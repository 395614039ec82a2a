/* The query string of GET /admin/usage, checked parameter by parameter, and its groups' JSON. */
#include "http/usage_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/audit_query.h"
#include "util/tstamp.h"
#include "util/xmalloc.h"

static int check(struct evkeyvalq *params, void *qv, struct gw_err *err)
{
    struct usage_query *q = qv;
    static const char *const groups[] = {"key", "user", "model", "day", "api", "agent", NULL};
    const char *v;

    if ((v = evhttp_find_header(params, "group_by"))) {
        size_t i = 0;
        while (groups[i] && strcmp(groups[i], v) != 0)
            i++;
        if (!groups[i])
            return admin_query_bad(err, "invalid 'group_by': expected key, user, model, day, api or agent");
        snprintf(q->group_by, sizeof(q->group_by), "%s", v);
    }
    if ((v = evhttp_find_header(params, "since")) && tstamp_parse(v, &q->since_ms))
        return admin_query_bad(err, "invalid 'since': expected an RFC 3339 time (2026-12-05T10:00:00Z) "
                        "or unix seconds");
    if ((v = evhttp_find_header(params, "until")) && tstamp_parse(v, &q->until_ms))
        return admin_query_bad(err, "invalid 'until': expected an RFC 3339 time (2026-12-05T10:00:00Z) "
                        "or unix seconds");
    if ((v = evhttp_find_header(params, "key")) && *v)
        q->key = xstrdup(v);
    return GW_OK;
}

static void release(void *q)
{
    usage_query_release(q);
}

int usage_query_parse(const char *query, struct usage_query *q, struct gw_err *err)
{
    memset(q, 0, sizeof(*q));
    snprintf(q->group_by, sizeof(q->group_by), "key");
    return admin_query_parse(query, check, release, q, err);
}

struct store_usage_query usage_query_store(const struct usage_query *q)
{
    return (struct store_usage_query){.group_by = q->group_by, .since_ms = q->since_ms,
                                      .until_ms = q->until_ms, .key_name = q->key};
}

void usage_query_release(struct usage_query *q)
{
    free(q->key);
    q->key = NULL;
}

json_t *usage_group_json(const struct store_usage_group *g, const char *group_by)
{
    json_t *o = json_object();

    json_object_set_new(o, group_by, g->group ? json_string(g->group) : json_null());
    json_object_set_new(o, "requests", json_integer(g->requests));
    json_object_set_new(o, "errors", json_integer(g->errors));
    json_object_set_new(o, "input_tokens", json_integer(g->input_tokens));
    json_object_set_new(o, "output_tokens", json_integer(g->output_tokens));
    json_object_set_new(o, "cached_tokens", json_integer(g->cached_tokens));
    json_object_set_new(o, "reasoning_tokens", json_integer(g->reasoning_tokens));
    json_object_set_new(o, "credits", json_real(g->credits));
    return o;
}
