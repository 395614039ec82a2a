/*
 * http/http1.h - HTTP/1.1 request framing (RFC 9112): the request head and
 * the chunked body.  Pure functions over bytes, no I/O; the server feeds them
 * what it read.  Fuzzed (tests/fuzz/fuzz_http.c).
 *
 * Strict where leniency lets one request be read as two (request smuggling):
 * no whitespace before a header's colon, no obsolete line folding, no NUL or
 * other control bytes in the head, one well-formed Content-Length (repeats
 * must agree), and Transfer-Encoding together with Content-Length is refused.
 * Lines may end in CRLF or a bare LF (RFC 9112 §2.2).
 *
 * Ownership: a parsed struct http1_head points into the caller's bytes; it
 * is valid only while they are.
 * Errors: negative HTTP1_E* codes; http1_status() gives the reply status.
 */
#ifndef GW_HTTP_HTTP1_H
#define GW_HTTP_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HTTP1_MAX_HEADERS 100

enum http1_error {
    HTTP1_EBAD = -1,      /* malformed request line or header: 400 */
    HTTP1_EHEADERS = -2,  /* more than HTTP1_MAX_HEADERS fields: 431 */
    HTTP1_EVERSION = -3,  /* not HTTP/1.x: 505 */
    HTTP1_ETE = -4,       /* a transfer coding other than chunked: 501 */
    HTTP1_ETOOBIG = -5,   /* body over the cap: 413 */
};

struct http1_field {
    const char *name, *value;
    size_t name_len, value_len;
};

struct http1_head {
    const char *method, *target;
    size_t method_len, target_len;
    int minor;                  /* HTTP/1.<minor> */
    struct http1_field fields[HTTP1_MAX_HEADERS];
    size_t nfields;
    /* Derived from the fields by http1_parse_head(): */
    int chunked;                /* Transfer-Encoding: chunked */
    int has_length;             /* a Content-Length was given */
    uint64_t content_length;
    int keep_alive;             /* the connection may serve another request */
    int expect_continue;        /* Expect: 100-continue */
    int has_host;
};

/*
 * Finds the end of a request head in p[0..n): returns the length of the head
 * including its blank line, or 0 if the blank line has not arrived yet.
 * Leading empty lines (RFC 9112 §2.2) count as part of the head.
 */
size_t http1_head_end(const char *p, size_t n);

/*
 * Parses a complete head (p[0..n), as measured by http1_head_end()).
 * Returns 0 and fills h, or a negative HTTP1_E* code.
 */
int http1_parse_head(const char *p, size_t n, struct http1_head *h);

/* The value of the first field called name (case-insensitive), or NULL;
 * *len gets its length.  Values are not NUL-terminated. */
const char *http1_field(const struct http1_head *h, const char *name, size_t *len);

/* The reply status for an HTTP1_E* code. */
int http1_status(int code);

/* A chunked body decoder (RFC 9112 §7.1); chunk extensions and trailers are
 * read and dropped.  Zero-initialise before the first feed. */
struct http1_chunked {
    int state;
    uint64_t left;  /* bytes of the current chunk still to come */
    size_t aux;     /* digits of the size, or bytes of extension/trailer line */
};

/*
 * Decodes p[0..n) into out (whose cap is the body limit).  Returns the
 * number of bytes consumed (less than n only when the body ended; the rest
 * belongs to the next request), or a negative HTTP1_E* code (HTTP1_ETOOBIG
 * when out's cap would be passed).  http1_chunked_done() tells whether the
 * final chunk and trailers have been read.
 */
long http1_chunked_feed(struct http1_chunked *c, const char *p, size_t n, struct buf *out);
int http1_chunked_done(const struct http1_chunked *c);

#endif
