/*
 * libFuzzer target for the GET /admin/audit and /admin/usage query strings
 * (http/audit_query.c, http/usage_query.c)
 * and the timestamp parser under it (util/tstamp.c): the input is a query
 * string.  Checks that a parse either fails with a 400 and keeps nothing or
 * gives values in range, and that a parsed timestamp formats and parses
 * back to itself.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/audit_query.h"
#include "http/usage_query.h"
#include "util/tstamp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1), out[32];
    struct audit_query q;
    struct gw_err e;
    int64_t ms, again;

    memcpy(in, data, size);
    in[size] = '\0';
    if (audit_query_parse(in, &q, &e) == GW_OK) {
        assert(q.limit >= 1 && q.limit <= STORE_AUDIT_LIMIT_MAX);
        assert(q.since_ms >= 0 && q.after_seq >= 0);
        assert(!q.decision || !strcmp(q.decision, "allow") || !strcmp(q.decision, "deny"));
        audit_query_release(&q);
    } else {
        assert(e.http_status == 400 && !q.agent && !q.decision);
    }
    if (tstamp_parse(in, &ms) == GW_OK) {
        assert(ms >= 0);
        tstamp_format(ms, out);
        assert(tstamp_parse(out, &again) == GW_OK && again == ms);
    }
    struct usage_query uq;
    if (usage_query_parse(in, &uq, &e) == GW_OK) {
        assert(uq.group_by[0] && uq.since_ms >= 0 && uq.until_ms >= 0);
        struct store_usage_query sq = usage_query_store(&uq);
        assert(sq.group_by == uq.group_by);
        usage_query_release(&uq);
    } else {
        assert(e.http_status == 400 && e.msg[0]);
    }
    free(in);
    return 0;
}
