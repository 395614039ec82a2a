/*
 * HTTP/1.1 request framing: the head and the chunked body, strictly.
 */
#include "http/http1.h"

#include <string.h>
#include <strings.h>

#include "util/util.h"

/* RFC 9110 §5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field value bytes: VCHAR, obs-text, SP, HTAB. */
static int is_vchar(unsigned char c)
{
    return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

size_t http1_head_end(const char *p, size_t n)
{
    size_t i = 0;

    /* Empty lines before the request line are ignored (RFC 9112 §2.2). */
    while (i < n && (p[i] == '\r' || p[i] == '\n'))
        i++;
    for (; i < n; i++) {
        if (p[i] != '\n')
            continue;
        if (i + 1 < n && p[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* One line from *pos (without its CRLF or LF).  0 at the end of input. */
static int next_line(const char *p, size_t n, size_t *pos, const char **line, size_t *len)
{
    size_t i = *pos, e;

    if (i >= n)
        return 0;
    for (e = i; e < n && p[e] != '\n'; e++)
        ;
    *line = p + i;
    *len = e - i;
    if (*len && p[e - 1] == '\r')
        (*len)--;
    *pos = e < n ? e + 1 : n;
    return 1;
}

static int parse_request_line(const char *l, size_t n, struct http1_head *h)
{
    size_t i = 0, t;

    for (; i < n && is_tchar((unsigned char)l[i]); i++)
        ;
    if (i == 0 || i >= n || l[i] != ' ')
        return HTTP1_EBAD;
    h->method = l;
    h->method_len = i++;
    for (t = i; i < n && (unsigned char)l[i] > 0x20 && (unsigned char)l[i] < 0x7f; i++)
        ;
    if (i == t || i >= n || l[i] != ' ')
        return HTTP1_EBAD;
    h->target = l + t;
    h->target_len = i - t;
    i++;
    if (n - i != 8 || memcmp(l + i, "HTTP/", 5) != 0 || l[i + 6] != '.' ||
        l[i + 5] < '0' || l[i + 5] > '9' || l[i + 7] < '0' || l[i + 7] > '9')
        return HTTP1_EBAD;
    if (l[i + 5] != '1')
        return HTTP1_EVERSION;
    h->minor = l[i + 7] - '0';
    return 0;
}

static int parse_field(const char *l, size_t n, struct http1_head *h)
{
    size_t i = 0, v, e;
    struct http1_field *f;

    for (; i < n && is_tchar((unsigned char)l[i]); i++)
        ;
    if (i == 0 || i >= n || l[i] != ':') /* also refuses "Name :" and folded lines */
        return HTTP1_EBAD;
    for (v = i + 1; v < n && (l[v] == ' ' || l[v] == '\t'); v++)
        ;
    for (e = n; e > v && (l[e - 1] == ' ' || l[e - 1] == '\t'); e--)
        ;
    for (size_t k = v; k < e; k++)
        if (!is_vchar((unsigned char)l[k]))
            return HTTP1_EBAD;
    if (h->nfields == HTTP1_MAX_HEADERS)
        return HTTP1_EHEADERS;
    f = &h->fields[h->nfields++];
    f->name = l;
    f->name_len = i;
    f->value = l + v;
    f->value_len = e - v;
    return 0;
}

static int name_is(const struct http1_field *f, const char *name)
{
    return strlen(name) == f->name_len && strncasecmp(f->name, name, f->name_len) == 0;
}

/* Does the comma-separated list v[0..n) hold token (case-insensitive)? */
static int has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t s, e;
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        for (s = i; i < n && v[i] != ','; i++)
            ;
        for (e = i; e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'); e--)
            ;
        if (e - s == tl && strncasecmp(v + s, token, tl) == 0)
            return 1;
    }
    return 0;
}

/* Content-Length: 1*DIGIT, possibly as a list of equal values. */
static int parse_length(const struct http1_field *f, struct http1_head *h)
{
    size_t i = 0;

    while (i < f->value_len) {
        uint64_t v = 0;
        size_t digits = 0;
        while (i < f->value_len && (f->value[i] == ' ' || f->value[i] == '\t'))
            i++;
        for (; i < f->value_len && f->value[i] >= '0' && f->value[i] <= '9'; i++, digits++) {
            if (digits == 18)
                return HTTP1_EBAD;
            v = v * 10 + (uint64_t)(f->value[i] - '0');
        }
        while (i < f->value_len && (f->value[i] == ' ' || f->value[i] == '\t'))
            i++;
        if (!digits || (i < f->value_len && f->value[i++] != ','))
            return HTTP1_EBAD;
        if (h->has_length && h->content_length != v)
            return HTTP1_EBAD;
        h->has_length = 1;
        h->content_length = v;
    }
    return h->has_length ? 0 : HTTP1_EBAD;
}

static int derive(struct http1_head *h)
{
    int te = 0, conn_close = 0, conn_keep = 0, rc;

    for (size_t i = 0; i < h->nfields; i++) {
        const struct http1_field *f = &h->fields[i];
        if (name_is(f, "content-length")) {
            if ((rc = parse_length(f, h)))
                return rc;
        } else if (name_is(f, "transfer-encoding")) {
            /* Only "chunked" alone: a coding we cannot undo is a 501. */
            if (te++ || f->value_len != 7 || strncasecmp(f->value, "chunked", 7) != 0)
                return HTTP1_ETE;
            h->chunked = 1;
        } else if (name_is(f, "host")) {
            if (h->has_host++)
                return HTTP1_EBAD;
        } else if (name_is(f, "connection")) {
            conn_close |= has_token(f->value, f->value_len, "close");
            conn_keep |= has_token(f->value, f->value_len, "keep-alive");
        } else if (name_is(f, "expect")) {
            h->expect_continue = f->value_len == 12 && strncasecmp(f->value, "100-continue", 12) == 0;
        }
    }
    if (h->chunked && (h->has_length || h->minor == 0))
        return HTTP1_EBAD; /* RFC 9112 §6.1: a smuggling vector */
    if (h->minor >= 1 && !h->has_host)
        return HTTP1_EBAD; /* RFC 9112 §3.2 */
    h->keep_alive = h->minor >= 1 ? !conn_close : conn_keep && !conn_close;
    return 0;
}

int http1_parse_head(const char *p, size_t n, struct http1_head *h)
{
    size_t pos = 0, len;
    const char *line;
    int rc;

    memset(h, 0, sizeof(*h));
    while (pos < n && (p[pos] == '\r' || p[pos] == '\n'))
        pos++;
    if (!next_line(p, n, &pos, &line, &len))
        return HTTP1_EBAD;
    if ((rc = parse_request_line(line, len, h)))
        return rc;
    while (next_line(p, n, &pos, &line, &len) && len)
        if ((rc = parse_field(line, len, h)))
            return rc;
    return derive(h);
}

const char *http1_field(const struct http1_head *h, const char *name, size_t *len)
{
    for (size_t i = 0; i < h->nfields; i++)
        if (name_is(&h->fields[i], name)) {
            if (len)
                *len = h->fields[i].value_len;
            return h->fields[i].value;
        }
    return NULL;
}

int http1_status(int code)
{
    switch (code) {
    case HTTP1_EHEADERS:
        return 431;
    case HTTP1_EVERSION:
        return 505;
    case HTTP1_ETE:
        return 501;
    case HTTP1_ETOOBIG:
        return 413;
    default:
        return 400;
    }
}

/* ---- chunked bodies ---------------------------------------------------------- */

enum { CK_SIZE = 0, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF, CK_TRAILER,
       CK_TRAILER_LF, CK_LAST_LF, CK_DONE };

#define CK_MAX_LINE 4096 /* a chunk extension or a trailer line */

/* One byte of the framing (everything but chunk data). */
static int chunk_byte(struct http1_chunked *c, char ch)
{
    int d;

    switch (c->state) {
    case CK_SIZE:
        if ((d = util_hexval(ch)) >= 0) {
            if (++c->aux > 15)
                return HTTP1_EBAD;
            c->left = c->left * 16 + (uint64_t)d;
        } else if (c->aux && (ch == ';' || ch == ' ' || ch == '\t')) {
            c->state = CK_EXT;
            c->aux = 0;
        } else if (c->aux && ch == '\r') {
            c->state = CK_SIZE_LF;
        } else if (c->aux && ch == '\n') {
            c->state = c->left ? CK_DATA : CK_TRAILER;
            c->aux = 0;
        } else {
            return HTTP1_EBAD;
        }
        return 0;
    case CK_EXT:
        if (ch == '\r')
            c->state = CK_SIZE_LF;
        else if (ch == '\n') {
            c->state = c->left ? CK_DATA : CK_TRAILER;
            c->aux = 0;
        } else if (++c->aux > CK_MAX_LINE || (ch != '\t' && (unsigned char)ch < 0x20))
            return HTTP1_EBAD;
        return 0;
    case CK_SIZE_LF:
        if (ch != '\n')
            return HTTP1_EBAD;
        c->state = c->left ? CK_DATA : CK_TRAILER;
        c->aux = 0;
        return 0;
    case CK_DATA_CR:
        if (ch == '\n') {
            c->state = CK_SIZE;
            return 0;
        }
        if (ch != '\r')
            return HTTP1_EBAD;
        c->state = CK_DATA_LF;
        return 0;
    case CK_DATA_LF:
        if (ch != '\n')
            return HTTP1_EBAD;
        c->state = CK_SIZE;
        return 0;
    case CK_TRAILER: /* at the start of a trailer line, or the final blank line */
        if (ch == '\r' && c->aux == 0) {
            c->state = CK_LAST_LF;
        } else if (ch == '\n') {
            c->state = c->aux ? CK_TRAILER : CK_DONE;
            c->aux = 0;
        } else if (ch == '\r') {
            c->state = CK_TRAILER_LF;
        } else if (++c->aux > CK_MAX_LINE || (ch != '\t' && (unsigned char)ch < 0x20)) {
            return HTTP1_EBAD;
        }
        return 0;
    case CK_TRAILER_LF:
        if (ch != '\n')
            return HTTP1_EBAD;
        c->state = CK_TRAILER;
        c->aux = 0;
        return 0;
    case CK_LAST_LF:
        if (ch != '\n')
            return HTTP1_EBAD;
        c->state = CK_DONE;
        return 0;
    default:
        return HTTP1_EBAD;
    }
}

long http1_chunked_feed(struct http1_chunked *c, const char *p, size_t n, struct buf *out)
{
    size_t i = 0;
    int rc;

    while (i < n && c->state != CK_DONE) {
        if (c->state == CK_DATA) {
            size_t take = n - i < c->left ? n - i : (size_t)c->left;
            if (out->len + take > out->max)
                return HTTP1_ETOOBIG;
            if (buf_add(out, p + i, take))
                return HTTP1_ETOOBIG;
            i += take;
            c->left -= take;
            if (!c->left)
                c->state = CK_DATA_CR;
            continue;
        }
        if ((rc = chunk_byte(c, p[i])))
            return rc;
        i++;
    }
    return (long)i;
}

int http1_chunked_done(const struct http1_chunked *c)
{
    return c->state == CK_DONE;
}
