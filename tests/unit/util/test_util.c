/* Unit tests for util/util.h's inline helpers: util_copy_cut, util_hexval. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/util.h"

static void test_copy_cut(void **state)
{
    char out[8];

    util_copy_cut(out, sizeof(out), "short");
    assert_string_equal(out, "short");
    util_copy_cut(out, sizeof(out), "1234567"); /* fits exactly */
    assert_string_equal(out, "1234567");
    util_copy_cut(out, sizeof(out), "12345678");
    assert_string_equal(out, "1234...");
    /* never inside a UTF-8 sequence: "ab" + U+00E9 (2 bytes) + "cdef" cut before the é */
    util_copy_cut(out, sizeof(out), "abc\xc3\xa9" "defgh");
    assert_string_equal(out, "abc...");
    /* a 4-byte character where the cut falls: dropped whole */
    util_copy_cut(out, sizeof(out), "a\xf0\x9f\x98\x80xyzw");
    assert_string_equal(out, "a...");
    util_copy_cut(out, 4, "abcdef");
    assert_string_equal(out, "...");
}

static void test_hexval(void **state)
{
    assert_int_equal(util_hexval('0'), 0);
    assert_int_equal(util_hexval('f'), 15);
    assert_int_equal(util_hexval('F'), 15);
    assert_int_equal(util_hexval('g'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copy_cut),
        cmocka_unit_test(test_hexval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
