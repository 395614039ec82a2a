/* Unit tests for util/base64: the RFC 4648 section 10 vectors, binary input, lengths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

static void check(const void *in, size_t n, const char *want)
{
    size_t len = (size_t)-1;
    char *got = base64_encode(in, n, &len);

    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

/* RFC 4648 section 10 "Test Vectors". */
static void test_rfc4648_vectors(void **state)
{
    check("", 0, "");
    check("f", 1, "Zg==");
    check("fo", 2, "Zm8=");
    check("foo", 3, "Zm9v");
    check("foob", 4, "Zm9vYg==");
    check("fooba", 5, "Zm9vYmE=");
    check("foobar", 6, "Zm9vYmFy");
}

static void test_null_empty(void **state)
{
    char *s = base64_encode(NULL, 0, NULL);

    assert_string_equal(s, "");
    free(s);
}

/* Every alphabet position, '+' and '/' included, and bytes with the high bit set. */
static void test_binary(void **state)
{
    static const unsigned char all_ones[] = {0xff, 0xff, 0xff};
    static const unsigned char high[] = {0xfb, 0xff, 0xbf};
    static const unsigned char zeros[] = {0, 0, 0, 0};
    static const unsigned char seq[] = {0x00, 0x10, 0x83, 0x10, 0x51, 0x87, 0x20, 0x92, 0x8b, 0x30,
                                        0xd3, 0x8f, 0x41, 0x14, 0x93, 0x51, 0x55, 0x97, 0x61, 0x96,
                                        0x9b, 0x71, 0xd7, 0x9f, 0x82, 0x18, 0xa3, 0x92, 0x59, 0xa7,
                                        0xa2, 0x9a, 0xab, 0xb2, 0xdb, 0xaf, 0xc3, 0x1c, 0xb3, 0xd3,
                                        0x5d, 0xb7, 0xe3, 0x9e, 0xbb, 0xf3, 0xdf, 0xbf};

    check(all_ones, sizeof(all_ones), "////");
    check(high, sizeof(high), "+/+/");
    check(zeros, sizeof(zeros), "AAAAAA==");
    check(seq, sizeof(seq), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
}

/* A 1x1 PNG: the bytes the e2e image tests serve, and the text the model must receive. */
static void test_png(void **state)
{
    static const unsigned char png[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
        0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
        0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
        0xda, 0x63, 0x64, 0x60, 0xf8, 0x5f, 0x0f, 0x00, 0x02, 0x87, 0x01, 0x80, 0xeb, 0x47,
        0xba, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

    check(png, sizeof(png),
          "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"
          "rkJggg==");
}

/* Output length is 4 * ceil(n / 3) for every remainder, and the padding matches it. */
static void test_lengths(void **state)
{
    unsigned char in[64];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t len;
        char *s = base64_encode(in, n, &len);
        size_t pad = (3 - n % 3) % 3;

        assert_int_equal(len, (n + 2) / 3 * 4);
        assert_int_equal(strlen(s), len);
        for (size_t k = 0; k < pad; k++)
            assert_int_equal(s[len - 1 - k], '=');
        if (len > pad)
            assert_int_not_equal(s[len - 1 - pad], '=');
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors), cmocka_unit_test(test_null_empty),
        cmocka_unit_test(test_binary),          cmocka_unit_test(test_png),
        cmocka_unit_test(test_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
