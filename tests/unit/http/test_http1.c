/* Unit tests for the HTTP/1.1 request framing (http/http1.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/http1.h"

static int parse(const char *s, struct http1_head *h)
{
    size_t n = strlen(s), end = http1_head_end(s, n);
    return end ? http1_parse_head(s, end, h) : 99;
}

static void test_simple_get(void **state)
{
    struct http1_head h;
    size_t len;
    const char *v;

    assert_int_equal(parse("GET /v1/models?x=1 HTTP/1.1\r\nHost: localhost:3000\r\n"
                           "X-Empty:\r\nAccept:  */*  \r\n\r\n", &h), 0);
    assert_int_equal(h.method_len, 3);
    assert_memory_equal(h.method, "GET", 3);
    assert_int_equal(h.target_len, 14);
    assert_memory_equal(h.target, "/v1/models?x=1", 14);
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.nfields, 3);
    assert_true(h.keep_alive);
    assert_false(h.has_length);
    assert_false(h.chunked);
    v = http1_field(&h, "ACCEPT", &len);
    assert_non_null(v);
    assert_int_equal(len, 3); /* OWS on both sides trimmed */
    assert_memory_equal(v, "*/*", 3);
    v = http1_field(&h, "x-empty", &len);
    assert_non_null(v);
    assert_int_equal(len, 0);
    assert_null(http1_field(&h, "x-missing", &len));
}

static void test_head_end(void **state)
{
    const char *full = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
    size_t n = strlen(full);

    for (size_t i = 0; i < n - 4; i++)
        assert_int_equal(http1_head_end(full, i), 0);
    assert_int_equal(http1_head_end(full, n), n - 4);
    assert_int_equal(http1_head_end("GET / HTTP/1.0\n\nX", 17), 16); /* bare LF */
    assert_int_equal(http1_head_end("\r\n\r\nGET / HTTP/1.0\r\n\r\n", 22), 22); /* leading blank lines */
    assert_int_equal(http1_head_end("\r\n\r\n", 4), 0);
}

static void test_keep_alive_rules(void **state)
{
    struct http1_head h;

    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &h), 0);
    assert_false(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", &h), 0);
    assert_false(h.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &h), 0);
    assert_false(h.keep_alive);
    assert_false(h.has_host); /* HTTP/1.0 needs no Host */
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h), 0);
    assert_true(h.keep_alive);
}

static void test_lengths(void **state)
{
    struct http1_head h;

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n", &h), 0);
    assert_true(h.has_length);
    assert_int_equal(h.content_length, 42);
    /* Repeats that agree are one length; any disagreement is an error. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7, 7\r\n"
                           "Content-Length: 7\r\n\r\n", &h), 0);
    assert_int_equal(h.content_length, 7);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n"
                           "Content-Length: 8\r\n\r\n", &h), HTTP1_EBAD);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &h),
                     HTTP1_EBAD);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n", &h),
                     HTTP1_EBAD);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", &h),
                     HTTP1_EBAD);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
                           "99999999999999999999\r\n\r\n", &h), HTTP1_EBAD);
}

static void test_transfer_encoding(void **state)
{
    struct http1_head h;

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", &h), 0);
    assert_true(h.chunked);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h),
                     HTTP1_ETE);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n", &h), HTTP1_ETE);
    /* Both framings at once: the classic smuggling vector. */
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                           "Content-Length: 3\r\n\r\n", &h), HTTP1_EBAD);
    assert_int_equal(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &h), HTTP1_EBAD);
}

static void test_malformed(void **state)
{
    struct http1_head h;
    const char *bad[] = {
        "GET / HTTP/1.1\r\n\r\n",                        /* no Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  /* two Hosts */
        "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",            /* two spaces */
        "GET /\r\nHost: a\r\n\r\n",                      /* HTTP/0.9 */
        "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        "GET / http/1.1\r\nHost: a\r\n\r\n",
        "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",             /* not a token */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",            /* space before the colon */
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",         /* control byte */
        "GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &h), HTTP1_EBAD);
    assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &h), HTTP1_EVERSION);
    assert_int_equal(http1_status(HTTP1_EVERSION), 505);
    assert_int_equal(http1_status(HTTP1_ETE), 501);
    assert_int_equal(http1_status(HTTP1_EHEADERS), 431);
    assert_int_equal(http1_status(HTTP1_EBAD), 400);
}

static void test_too_many_fields(void **state)
{
    char big[HTTP1_MAX_HEADERS * 8 + 64];
    struct http1_head h;
    size_t n = 0;

    n += (size_t)snprintf(big + n, sizeof(big) - n, "GET / HTTP/1.1\r\n");
    for (int i = 0; i <= HTTP1_MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "Host: a\r\n" + (i ? 2 : 0));
    snprintf(big + n, sizeof(big) - n, "\r\n");
    assert_int_equal(parse(big, &h), HTTP1_EHEADERS);
}

static long feed(struct http1_chunked *c, const char *s, struct buf *out)
{
    return http1_chunked_feed(c, s, strlen(s), out);
}

static void test_chunked(void **state)
{
    const char *body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    size_t n = strlen(body);

    /* Whole, and split at every offset: the same bytes out, the same stop. */
    for (size_t cut = 0; cut <= n; cut++) {
        struct http1_chunked c = {0};
        struct buf out;
        long a, b;

        buf_init(&out, 1024);
        a = http1_chunked_feed(&c, body, cut, &out);
        assert_true(a >= 0);
        b = http1_chunked_done(&c) ? 0 : http1_chunked_feed(&c, body + a, n - (size_t)a, &out);
        assert_true(b >= 0);
        assert_true(http1_chunked_done(&c));
        assert_int_equal((size_t)(a + b), n - 4); /* "NEXT" belongs to the next request */
        assert_int_equal(out.len, 23);
        assert_memory_equal(out.ptr, "Wikipedia in\r\n\r\nchunks.", 23);
        buf_release(&out);
    }
}

static void test_chunked_errors(void **state)
{
    const char *bad[] = {"x\r\n", "\r\n", "4\r\nWikiXX", "11111111111111111\r\n", "4\r\nWiki\r\n0\r\n\x01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http1_chunked c = {0};
        struct buf out;
        buf_init(&out, 1024);
        assert_int_equal(feed(&c, bad[i], &out), HTTP1_EBAD);
        buf_release(&out);
    }
    struct http1_chunked c = {0};
    struct buf small;
    buf_init(&small, 8);
    assert_int_equal(feed(&c, "10\r\n0123456789abcdef\r\n0\r\n\r\n", &small), HTTP1_ETOOBIG);
    buf_release(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_head_end),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_too_many_fields),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
