/*
 * libFuzzer target for the HTTP/1.1 request framing (http/http1.c): the
 * input is a request head followed by a chunked body.  Checks that parsing
 * stays inside the input, that what it returns is well formed, and that a
 * chunked body decodes to the same bytes however it is split.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_head(const char *p, size_t n)
{
    struct http1_head h;
    size_t end = http1_head_end(p, n);

    if (!end)
        return;
    assert(end <= n && end >= 2 && p[end - 1] == '\n');
    if (http1_parse_head(p, end, &h) != 0)
        return;
    assert(h.method_len > 0 && h.method >= p && h.method + h.method_len <= p + end);
    assert(h.target_len > 0 && h.target >= p && h.target + h.target_len <= p + end);
    assert(h.minor >= 0 && h.minor <= 9);
    assert(!(h.chunked && h.has_length));
    for (size_t i = 0; i < h.nfields; i++) {
        const struct http1_field *f = &h.fields[i];
        assert(f->name_len > 0 && f->name >= p && f->value + f->value_len <= p + end);
        assert(!memchr(f->value, '\n', f->value_len) && !memchr(f->value, '\r', f->value_len));
        assert(!memchr(f->name, ':', f->name_len));
    }
}

/* Feeds p[0..n) in pieces whose sizes come from `sizes`. */
static long feed_split(const char *p, size_t n, const uint8_t *sizes, size_t ns, struct buf *out,
                       int *done)
{
    struct http1_chunked c = {0};
    size_t pos = 0, k = 0;

    while (pos < n && !http1_chunked_done(&c)) {
        size_t step = ns ? (size_t)sizes[k++ % ns] % 17 + 1 : n;
        long used;
        if (step > n - pos)
            step = n - pos;
        used = http1_chunked_feed(&c, p + pos, step, out);
        if (used < 0)
            return used;
        assert((size_t)used <= step);
        pos += (size_t)used;
        if ((size_t)used < step)
            assert(http1_chunked_done(&c));
    }
    *done = http1_chunked_done(&c);
    return (long)pos;
}

static void check_chunked(const char *p, size_t n, const uint8_t *sizes, size_t ns)
{
    struct buf a, b;
    int da = 0, db = 0;
    long ra, rb;

    buf_init(&a, 4096);
    buf_init(&b, 4096);
    ra = feed_split(p, n, NULL, 0, &a, &da);
    rb = feed_split(p, n, sizes, ns, &b, &db);
    assert(ra == rb && da == db);
    if (ra >= 0) {
        assert(a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
        assert(a.len <= (size_t)ra);
    }
    buf_release(&a);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t end = http1_head_end(p, size);

    check_head(p, size);
    if (end && end < size)
        check_chunked(p + end, size - end, data, end < 32 ? end : 32);
    else
        check_chunked(p, size, data + size / 2, size - size / 2);
    return 0;
}
