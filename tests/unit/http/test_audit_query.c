/* Unit tests for http/audit_query: the GET /admin/audit parameters and their 400s. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/audit_query.h"

static void test_defaults(void **state)
{
    struct audit_query q;
    struct gw_err e;

    assert_int_equal(audit_query_parse(NULL, &q, &e), GW_OK);
    assert_null(q.agent);
    assert_null(q.decision);
    assert_int_equal(q.limit, STORE_AUDIT_LIMIT_DEFAULT);
    assert_int_equal(q.since_ms, 0);
    assert_int_equal(q.after_seq, 0);
    audit_query_release(&q);
    assert_int_equal(audit_query_parse("other=1", &q, &e), GW_OK);
    audit_query_release(&q);
}

static void test_all(void **state)
{
    struct audit_query q;
    struct store_audit_filter f;
    struct gw_err e;

    assert_int_equal(audit_query_parse("agent=logs&decision=deny&since=2026-12-05T10%3A00%3A00Z"
                                       "&limit=1000&after=17",
                                       &q, &e),
                     GW_OK);
    f = audit_query_filter(&q);
    assert_string_equal(f.agent, "logs");
    assert_string_equal(f.decision, "deny");
    assert_int_equal(f.since_ms, 1796464800000LL);
    assert_int_equal(f.limit, 1000);
    assert_int_equal(f.after_seq, 17);
    assert_null(f.principal);
    audit_query_release(&q);
    assert_int_equal(audit_query_parse("since=1796464800&limit=1", &q, &e), GW_OK);
    assert_int_equal(q.since_ms, 1796464800000LL);
    assert_int_equal(q.limit, 1);
    audit_query_release(&q);
}

static void test_bad(void **state)
{
    const struct {
        const char *query, *word;
    } bad[] = {
        {"decision=maybe", "'decision'"}, {"decision=", "'decision'"},
        {"since=yesterday", "'since'"},   {"since=2026-12-05", "'since'"},
        {"limit=0", "'limit'"},           {"limit=1001", "'limit'"},
        {"limit=ten", "'limit'"},         {"limit=-5", "'limit'"},
        {"after=-1", "'after'"},          {"after=x", "'after'"},
        {"agent=logs&limit=0", "'limit'"},
    };
    struct audit_query q;
    struct gw_err e;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        if (audit_query_parse(bad[i].query, &q, &e) != GW_EINVAL)
            fail_msg("'%s' was accepted", bad[i].query);
        assert_int_equal(e.http_status, 400);
        assert_non_null(strstr(e.msg, bad[i].word));
        assert_null(q.agent); /* nothing kept */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
