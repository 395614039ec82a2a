/*
 * util/fetch.h - outgoing HTTP(S) requests with libcurl's multi-socket API on
 * our event_base (curl docs/examples/multi-event.c).
 *
 * Used only where the gateway itself calls out: the BYOK provider's model list
 * (fetch_get) and images a client gave by URL (fetch_get_ex, public_only).
 * Ownership: fetch_get() and fetch_get_ex() copy url, headers and opts.  The
 * callback gets a borrowed body (and response) valid only during the call,
 * runs exactly once (never from inside fetch_get*), and is not called after
 * fetch_free() or fetch_cancel().
 * Threading: event-loop thread only.
 */
#ifndef GW_UTIL_FETCH_H
#define GW_UTIL_FETCH_H

#include <stddef.h>

#include <event2/event.h>

#include "util/err.h"

struct fetch;
struct sockaddr;

/*
 * status is the HTTP status (0 on transport failure, then err is set).  Any
 * status, 4xx and 5xx included, is a completed transfer with err NULL.
 * err->code: GW_ETIMEDOUT (timeout_ms passed), GW_ETOOBIG (body over
 * max_body; the transfer is aborted), GW_EUPSTREAM (connect, TLS, too many
 * redirects...).  Messages name only the URL's host, never userinfo or query.
 */
typedef void (*fetch_cb)(void *ud, int status, const char *body, size_t len,
                         const struct gw_err *err);

/* NULL if libcurl cannot be initialised. */
struct fetch *fetch_new(struct event_base *base);
void fetch_free(struct fetch *f); /* NULL-safe; drops pending requests silently */

/*
 * GET url with extra header lines ("Name: value", NULL-terminated array, may be NULL).
 * http and https only, at most 3 redirects; timeout_ms <= 0 means 30 s.
 * Returns 0, or GW_EINVAL (bad or non-http(s) URL), GW_ENOMEM, GW_EIO; cb is
 * then not called.
 */
int fetch_get(struct fetch *f, const char *url, const char *const *headers, int timeout_ms,
              size_t max_body, fetch_cb cb, void *ud) WARN_UNUSED;

/* Options of fetch_get_ex(); zero means the default. */
struct fetch_opts {
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *accept;         /* Accept header value, or NULL */
    int timeout_ms;             /* <= 0: 30 s */
    size_t max_body;            /* body cap in bytes (0: no body allowed) */
    /*
     * Connect only to public addresses (fetch_addr_is_public()).  Every
     * connection is checked after name resolution and before connect(), and
     * the peer again before each request is sent (redirects included), so
     * redirects, DNS tricks and pooled connections are covered.  Such a
     * request never uses a proxy (the check would only see the proxy's
     * address) and never shares a connection with another request.
     */
    int public_only;
};

/* A completed transfer, borrowed for the duration of the callback. */
struct fetch_resp {
    int status;               /* HTTP status of the last response (after redirects) */
    const char *content_type; /* its Content-Type header as sent, or NULL if none */
    const char *body;         /* NUL-terminated for convenience; may hold NULs */
    size_t len;
};

/*
 * resp is NULL exactly when err is set; err as for fetch_cb, plus GW_EINVAL:
 * public_only refused the addresses the host (or a redirect) led to; the
 * message names the URL's host and says "private or local address".
 */
typedef void (*fetch_resp_cb)(void *ud, const struct fetch_resp *resp, const struct gw_err *err);

/*
 * GET url as fetch_get() does, with the options in o (may be NULL: defaults)
 * and the Content-Type reported to cb.  Returns and fails like fetch_get().
 */
int fetch_get_ex(struct fetch *f, const char *url, const struct fetch_opts *o, fetch_resp_cb cb,
                 void *ud) WARN_UNUSED;

/* Drops every pending request whose ud is ud; their callbacks never run. */
void fetch_cancel(struct fetch *f, void *ud);

/*
 * 1 if sa (AF_INET or AF_INET6) is an address public_only may connect to;
 * 0 for loopback, private (RFC 1918, fc00::/7), link-local, unspecified,
 * CGNAT 100.64/10, multicast, broadcast and reserved ranges, the same
 * embedded in IPv6 (v4-mapped, v4-compatible, NAT64 64:ff9b::/96, 6to4),
 * and any other address family.
 */
int fetch_addr_is_public(const struct sockaddr *sa);

/*
 * Tests only: public_only on f also accepts ip (one address, as inet_ntop()
 * prints it; NULL or "" clears it), so a test on loopback can stand in for a
 * public server.
 */
void fetch__treat_as_public(struct fetch *f, const char *ip);

#endif
