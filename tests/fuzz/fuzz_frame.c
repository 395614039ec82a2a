/*
 * libFuzzer target for the Content-Length frame parser: the input is treated
 * as a byte stream and parsed frame by frame, with a generous and a tiny
 * max_body, checking the parser's promises on every result.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Consumes whole frames until the parser wants more or gives up. */
static void run_stream(const char *p, size_t n, size_t max_body)
{
    size_t pos = 0;

    while (pos < n) {
        size_t off = (size_t)-1, len = (size_t)-1;
        enum frame_status st = frame_parse(p + pos, n - pos, max_body, &off, &len);

        if (st != FRAME_OK) {
            assert(st == FRAME_NEED_MORE || st == FRAME_ERROR || st == FRAME_TOO_BIG);
            /* Nothing on failure is written through the out pointers. */
            assert(off == (size_t)-1 && len == (size_t)-1);
            return;
        }
        assert(off >= 4 && off <= FRAME_MAX_HEADER);
        assert(len <= max_body);
        assert(off <= n - pos && len <= n - pos - off);
        assert(memcmp(p + pos + off - 4, "\r\n\r\n", 4) == 0);
        /* The same bytes minus one must never be a whole frame. */
        size_t o2, l2;
        assert(frame_parse(p + pos, off + len - 1, max_body, &o2, &l2) == FRAME_NEED_MORE);
        pos += off + len;
    }
}

static void check_roundtrip(const char *p, size_t n)
{
    struct buf b;
    size_t off, len;

    buf_init(&b, n + 64);
    if (frame_write(&b, p, n) != 0)
        abort();
    assert(frame_parse(b.ptr, b.len, n, &off, &len) == FRAME_OK);
    assert(len == n && off + len == b.len && memcmp(b.ptr + off, p, n) == 0);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy, so reads past the input are caught by ASan. */
    char *p = malloc(size ? size : 1);

    memcpy(p, data, size);
    /* the skip test reads only within the bytes given, and says yes only to a real prefix */
    if (frame_skippable(p, size))
        assert(size > 60 && memcmp(p, "{\"jsonrpc\":\"2.0\",\"method\":\"session.event\"", 40) == 0);
    run_stream(p, size, 1u << 20);
    run_stream(p, size, 16);
    run_stream(p, size, 0);
    if (size <= 4096)
        check_roundtrip(p, size);
    free(p);
    return 0;
}
