/* Unit tests for util/tstamp: RFC 3339 and unix seconds in, RFC 3339 UTC with ms out. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/tstamp.h"

static int64_t parsed(const char *s)
{
    int64_t ms = -7;

    if (tstamp_parse(s, &ms))
        fail_msg("'%s' was refused", s);
    return ms;
}

static void test_parse_good(void **state)
{
    assert_int_equal(parsed("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parsed("2026-12-05T10:00:00Z"), 1796464800000LL);
    assert_int_equal(parsed("2026-12-05t10:00:00z"), 1796464800000LL);
    assert_int_equal(parsed("2026-12-05 10:00:00.5Z"), 1796464800500LL);
    assert_int_equal(parsed("2026-12-05T10:00:00.123456789Z"), 1796464800123LL);
    assert_int_equal(parsed("2026-12-05T11:30:00+01:30"), 1796464800000LL);
    assert_int_equal(parsed("2026-12-05T08:00:00-02:00"), 1796464800000LL);
    assert_int_equal(parsed("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(parsed("1796464800"), 1796464800000LL);
    assert_int_equal(parsed("0"), 0);
    assert_int_equal(parsed("253402300799"), 253402300799000LL);
    assert_int_equal(parsed("9999-12-31T23:59:59.999Z"), 253402300799999LL);
}

static void test_parse_bad(void **state)
{
    const char *bad[] = {"",
                         "x",
                         "-1",
                         "12e3",
                         "1796464800.5",
                         "1234567890123",
                         "279646484800", /* past 9999-12-31: RFC 3339 could not show it */
                         "2026-12-05",
                         "2026-12-05T10:00Z",
                         "2026-12-05T10:00:00",
                         "2026-12-05T10:00:00ZZ",
                         "2026-13-05T10:00:00Z",
                         "2026-02-29T10:00:00Z",
                         "2026-04-31T10:00:00Z",
                         "2026-12-05T24:00:00Z",
                         "2026-12-05T10:60:00Z",
                         "2026-12-05T10:00:61Z",
                         "2026-12-05T10:00:00.Z",
                         "2026-12-05T10:00:00+0100",
                         "1969-12-31T23:59:59Z",
                         "1970-01-01T00:00:00+00:01",
                         " 2026-12-05T10:00:00Z",
                         NULL};
    int64_t ms = 42;

    for (int i = 0; bad[i]; i++) {
        if (tstamp_parse(bad[i], &ms) != GW_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42);
    }
    assert_int_equal(tstamp_parse(NULL, &ms), GW_EINVAL);
}

static void test_format(void **state)
{
    char out[32];

    tstamp_format(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    tstamp_format(1796464800123LL, out);
    assert_string_equal(out, "2026-12-05T10:00:00.123Z");
    tstamp_format(1709251199999LL, out);
    assert_string_equal(out, "2024-02-29T23:59:59.999Z");
    /* What it writes, it reads back. */
    for (int64_t ms = 0; ms < 4102444800000LL; ms += 86399999LL * 37) {
        tstamp_format(ms, out);
        assert_int_equal(parsed(out), ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
