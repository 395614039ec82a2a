/* Content-Length framing: a cursor-based header parser and a frame writer. */
#include "rt/frame.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static const char cl_name[] = "Content-Length";

/*
 * Finds the "\r\n" ending the line that starts at p[0], looking at no more
 * than n bytes.  Returns the line length (without "\r\n"), -1 when more bytes
 * are needed, or -2 on a bare CR or LF, which no valid header line contains.
 */
static long line_end(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n')
            return -2;
        if (p[i] != '\r')
            continue;
        if (i + 1 == n)
            return -1;
        return p[i + 1] == '\n' ? (long)i : -2;
    }
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses the value of a Content-Length line: blanks, digits, blanks. */
static enum frame_status parse_length(const char *p, size_t n, size_t *out)
{
    size_t i = 0, v = 0, digits = 0;

    while (i < n && is_blank(p[i]))
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
        size_t d = (size_t)(p[i] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return FRAME_TOO_BIG; /* cannot fit in size_t, so above any max_body */
        v = v * 10 + d;
    }
    while (i < n && is_blank(p[i]))
        i++;
    if (digits == 0 || i != n)
        return FRAME_ERROR;
    *out = v;
    return FRAME_OK;
}

/*
 * Handles one non-empty header line.  *have_len says whether a Content-Length
 * was seen already; a repeat must carry the same value.
 */
static enum frame_status header_line(const char *p, size_t n, int *have_len, size_t *len)
{
    const char *colon = memchr(p, ':', n);
    size_t name_len, v;
    enum frame_status st;

    if (!colon)
        return FRAME_ERROR;
    name_len = (size_t)(colon - p);
    if (name_len != sizeof(cl_name) - 1 || strncasecmp(p, cl_name, name_len) != 0)
        return FRAME_OK; /* some other header: ignored */
    st = parse_length(colon + 1, n - name_len - 1, &v);
    if (st != FRAME_OK)
        return st;
    if (*have_len && *len != v)
        return FRAME_ERROR;
    *have_len = 1;
    *len = v;
    return FRAME_OK;
}

enum frame_status frame_parse(const char *p, size_t n, size_t max_body, size_t *body_off,
                              size_t *body_len)
{
    size_t pos = 0, len = 0;
    size_t limit = n < FRAME_MAX_HEADER ? n : FRAME_MAX_HEADER;
    int have_len = 0;

    for (;;) {
        long ll = line_end(p + pos, limit - pos);
        enum frame_status st;

        if (ll == -2)
            return FRAME_ERROR;
        if (ll == -1) /* no terminator within what we have, or within the cap */
            return n >= FRAME_MAX_HEADER ? FRAME_TOO_BIG : FRAME_NEED_MORE;
        if (ll == 0)
            break;
        st = header_line(p + pos, (size_t)ll, &have_len, &len);
        if (st != FRAME_OK)
            return st;
        pos += (size_t)ll + 2;
    }
    pos += 2;
    if (!have_len)
        return FRAME_ERROR;
    if (len > max_body)
        return FRAME_TOO_BIG;
    if (n - pos < len)
        return FRAME_NEED_MORE;
    *body_off = pos;
    *body_len = len;
    return FRAME_OK;
}

int frame_write(struct buf *out, const char *body, size_t n)
{
    int rc = buf_addf(out, "Content-Length: %zu\r\n\r\n", n);
    if (rc)
        return rc;
    return buf_add(out, body, n);
}

/* Skips the literal lit at *p (within end): 1 if it was there. */
static int eat(const char **p, const char *end, const char *lit)
{
    size_t k = strlen(lit);

    if ((size_t)(end - *p) < k || memcmp(*p, lit, k) != 0)
        return 0;
    *p += k;
    return 1;
}

int frame_skippable(const char *body, size_t n)
{
    static const char *const skip[] = {"model.messages_snapshot", "assistant.streaming_delta"};
    const char *p = body, *end = body + n, *q;

    if (!eat(&p, end, "{\"jsonrpc\":\"2.0\",\"method\":\"session.event\",\"params\":{"
                      "\"sessionId\":\""))
        return 0;
    for (q = p; q < end && q - p <= 64 && *q != '"' && *q != '\\'; q++)
        ;
    if (q >= end || *q != '"')
        return 0;
    p = q + 1;
    if (!eat(&p, end, ",\"event\":{\"type\":\""))
        return 0;
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
        const char *t = p;
        if (eat(&t, end, skip[i]) && eat(&t, end, "\""))
            return 1;
    }
    return 0;
}
