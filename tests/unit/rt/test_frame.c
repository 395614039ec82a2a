/* Unit tests for the Content-Length frame parser and writer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rt/frame.h"

#define MAXB 1024

static enum frame_status parse(const char *p, size_t n, size_t *off, size_t *len)
{
    return frame_parse(p, n, MAXB, off, len);
}

static void test_whole_frame(void **state)
{
    const char f[] = "Content-Length: 7\r\n\r\n{\"a\":1}";
    size_t off = 99, len = 99;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_OK);
    assert_int_equal(off, 21);
    assert_int_equal(len, 7);
    assert_memory_equal(f + off, "{\"a\":1}", 7);
}

static void test_split_every_offset(void **state)
{
    const char f[] = "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
                     "Content-Length: 14\r\n\r\n{\"id\":1,\"x\":2}";
    size_t n = sizeof(f) - 1, off, len;

    for (size_t i = 0; i < n; i++)
        assert_int_equal(parse(f, i, &off, &len), FRAME_NEED_MORE);
    assert_int_equal(parse(f, n, &off, &len), FRAME_OK);
    assert_int_equal(off + len, n);
}

static void test_two_frames(void **state)
{
    const char f[] = "Content-Length: 2\r\n\r\n{}Content-Length: 4\r\n\r\nnull";
    size_t n = sizeof(f) - 1, off, len, pos;

    assert_int_equal(parse(f, n, &off, &len), FRAME_OK);
    assert_int_equal(len, 2);
    pos = off + len;
    assert_int_equal(parse(f + pos, n - pos, &off, &len), FRAME_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(f + pos + off, "null", 4);
    assert_int_equal(pos + off + len, n);
}

static void test_case_and_blanks(void **state)
{
    const char f[] = "content-LENGTH:\t 3 \t\r\n\r\nabc";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_OK);
    assert_int_equal(len, 3);
}

static void test_other_headers(void **state)
{
    const char f[] = "Content-Type: x\r\nContent-Length: 1\r\nX-Other:\r\n\r\n1";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_OK);
    assert_int_equal(len, 1);
    assert_int_equal(f[off], '1');
}

static void test_duplicate_length(void **state)
{
    const char same[] = "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx";
    const char diff[] = "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxy";
    size_t off, len;

    assert_int_equal(parse(same, sizeof(same) - 1, &off, &len), FRAME_OK);
    assert_int_equal(parse(diff, sizeof(diff) - 1, &off, &len), FRAME_ERROR);
}

static void test_too_big(void **state)
{
    const char f[] = "Content-Length: 1025\r\n\r\n";
    const char ok[] = "Content-Length: 1024\r\n\r\n";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_TOO_BIG);
    assert_int_equal(parse(ok, sizeof(ok) - 1, &off, &len), FRAME_NEED_MORE);
}

static void test_header_too_long(void **state)
{
    static char f[FRAME_MAX_HEADER + 64];
    size_t off, len, n;

    /* One endless header line. */
    memset(f, 'a', sizeof(f));
    assert_int_equal(parse(f, FRAME_MAX_HEADER - 1, &off, &len), FRAME_NEED_MORE);
    assert_int_equal(parse(f, FRAME_MAX_HEADER, &off, &len), FRAME_TOO_BIG);
    /* Many short ignored headers that never end the block. */
    n = 0;
    while (n + 6 <= sizeof(f)) {
        memcpy(f + n, "X: y\r\n", 6);
        n += 6;
    }
    assert_int_equal(parse(f, n, &off, &len), FRAME_TOO_BIG);
}

static void test_header_exactly_max(void **state)
{
    static char f[FRAME_MAX_HEADER + 8];
    const char cl[] = "Content-Length: 1\r\n";
    size_t off, len, n = 0, pad;

    memcpy(f, cl, sizeof(cl) - 1);
    n = sizeof(cl) - 1;
    /* "X:<pad>\r\n" then the final "\r\n" end exactly at FRAME_MAX_HEADER. */
    pad = FRAME_MAX_HEADER - n - 2 - 4;
    f[n++] = 'X';
    f[n++] = ':';
    memset(f + n, 'p', pad);
    n += pad;
    memcpy(f + n, "\r\n\r\nZ", 5);
    n += 5;
    assert_int_equal(parse(f, n, &off, &len), FRAME_OK);
    assert_int_equal(off, FRAME_MAX_HEADER);
    assert_int_equal(f[off], 'Z');
}

static void test_garbage(void **state)
{
    const char *bad[] = {
        "garbage\r\n\r\n",               /* no colon */
        "Content-Length: 2\n\n{}",       /* bare LF */
        "Content-Length: 2\r\r\n\r\n{}", /* stray CR */
        "\r\n",                          /* empty header block */
        "X: 1\r\n\r\n",                  /* no Content-Length */
        "Content-Length: \r\n\r\n",      /* no digits */
        "Content-Length: 1x\r\n\r\nx",   /* not a number */
        "Content-Length: -1\r\n\r\n",    /* sign */
        "Content-Length: +1\r\n\r\nx",   /* sign */
        "Content-Length: 1 2\r\n\r\nxy", /* two numbers */
        "Content-Length: 0x10\r\n\r\n",  /* hex */
        "Content-Length\r\n\r\n",        /* no colon */
    };
    size_t off, len;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], strlen(bad[i]), &off, &len), FRAME_ERROR);
}

static void test_early_bare_lf(void **state)
{
    /* A bare LF is an error as soon as it is seen, even before the block ends. */
    const char f[] = "Content-Length: 2\n";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_ERROR);
}

static void test_missing_length(void **state)
{
    const char f[] = "Content-Type: application/json\r\n\r\n{}";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_ERROR);
}

static void test_zero_length(void **state)
{
    const char f[] = "Content-Length: 0\r\n\r\n";
    size_t off, len = 5;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_OK);
    assert_int_equal(len, 0);
    assert_int_equal(off, sizeof(f) - 1);
}

static void test_leading_zeros(void **state)
{
    const char f[] = "Content-Length: 0003\r\n\r\nabc";
    size_t off, len;

    assert_int_equal(parse(f, sizeof(f) - 1, &off, &len), FRAME_OK);
    assert_int_equal(len, 3);
}

static void test_overflow(void **state)
{
    char f[128];
    size_t off, len;
    int n;

    n = snprintf(f, sizeof(f), "Content-Length: 99999999999999999999999999999999\r\n\r\n");
    assert_int_equal(parse(f, (size_t)n, &off, &len), FRAME_TOO_BIG);
    /* SIZE_MAX itself fits in size_t but is over any sane max_body. */
    n = snprintf(f, sizeof(f), "Content-Length: %zu\r\n\r\n", (size_t)SIZE_MAX);
    assert_int_equal(frame_parse(f, (size_t)n, SIZE_MAX - 1, &off, &len), FRAME_TOO_BIG);
    /* With max_body SIZE_MAX it is accepted and simply needs more bytes. */
    assert_int_equal(frame_parse(f, (size_t)n, SIZE_MAX, &off, &len), FRAME_NEED_MORE);
}

static void test_write_roundtrip(void **state)
{
    const char *bodies[] = {"", "{}", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}"};
    struct buf b;
    size_t off, len;

    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(bodies[i]);
        buf_init(&b, 1024);
        assert_int_equal(frame_write(&b, bodies[i], n), 0);
        assert_int_equal(parse(b.ptr, b.len, &off, &len), FRAME_OK);
        assert_int_equal(len, n);
        assert_int_equal(off + len, b.len);
        assert_memory_equal(b.ptr + off, bodies[i], n);
        buf_release(&b);
    }
}

static void test_write_cap(void **state)
{
    struct buf b;

    buf_init(&b, 10);
    assert_int_not_equal(frame_write(&b, "{}", 2), 0);
    assert_null(b.ptr); /* released on failure */
}

/* The bulky diagnostic events are recognised from their first bytes; nothing else is. */
static void test_skippable(void **state)
{
    static const char head[] = "{\"jsonrpc\":\"2.0\",\"method\":\"session.event\",\"params\":"
                               "{\"sessionId\":\"2c2d9d00-7991-4093-838e-beed19c7db09\","
                               "\"event\":{\"type\":\"";
    char b[512];
    struct {
        const char *rest;
        int want;
    } cases[] = {
        {"model.messages_snapshot\",\"data\":{\"messages\":[]}}}}", 1},
        {"assistant.streaming_delta\",\"data\":{}}}}", 1},
        {"assistant.message_delta\",\"data\":{}}}}", 0},
        {"model.messages_snapshotX\",\"data\":{}}}}", 0},
        {"model.turn_retry\",\"data\":{}}}}", 0},
        {"model.messages_snapshot", 0}, /* cut before the closing quote */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(b, sizeof(b), "%s%s", head, cases[i].rest);
        assert_int_equal(frame_skippable(b, strlen(b)), cases[i].want);
    }
    /* another key order, a request with an id, a truncated prefix: parsed as usual */
    snprintf(b, sizeof(b), "{\"method\":\"session.event\",\"jsonrpc\":\"2.0\",\"params\":{}}");
    assert_int_equal(frame_skippable(b, strlen(b)), 0);
    snprintf(b, sizeof(b), "%smodel.messages_snapshot\"", head);
    assert_int_equal(frame_skippable(b, strlen(b) - 40), 0);
    assert_int_equal(frame_skippable("", 0), 0);
    /* a sessionId with an escape or over 64 bytes is not the runtime's */
    snprintf(b, sizeof(b), "{\"jsonrpc\":\"2.0\",\"method\":\"session.event\",\"params\":"
                           "{\"sessionId\":\"a\\\"\",\"event\":{\"type\":\"model.messages_snapshot\"");
    assert_int_equal(frame_skippable(b, strlen(b)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_frame),
        cmocka_unit_test(test_skippable),
        cmocka_unit_test(test_split_every_offset),
        cmocka_unit_test(test_two_frames),
        cmocka_unit_test(test_case_and_blanks),
        cmocka_unit_test(test_other_headers),
        cmocka_unit_test(test_duplicate_length),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_header_too_long),
        cmocka_unit_test(test_header_exactly_max),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_early_bare_lf),
        cmocka_unit_test(test_missing_length),
        cmocka_unit_test(test_zero_length),
        cmocka_unit_test(test_leading_zeros),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
