/*
 * Helpers shared by the unit tests (header only: each test is built from its one .c file):
 * a tiny evhttp server on a loopback port, the fixture of the HTTP client tests (a loop, that
 * server, a fetch object), and running the event loop until a counter moves.
 * The functions are static inline so that a test using only some of them still builds with
 * -Werror (no unused-function warnings).
 */
#ifndef GW_TESTS_UNIT_TESTSRV_H
#define GW_TESTS_UNIT_TESTSRV_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "util/fetch.h"
#include "util/util.h"

/* ---- a tiny HTTP server ---- */

/*
 * An evhttp server on host, port 0 (*port gets the one picked), calling cb(req, arg) for
 * every request.  NULL when host cannot be bound (say, no 127.0.0.2 on this host).
 */
static inline struct evhttp *testsrv_new(struct event_base *base, const char *host,
                                         void (*cb)(struct evhttp_request *, void *), void *arg,
                                         int *port)
{
    struct evhttp *http = evhttp_new(base);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_non_null(http);
    evhttp_set_gencb(http, cb, arg);
    bs = evhttp_bind_socket_with_handle(http, host, 0);
    if (!bs) {
        evhttp_free(http);
        return NULL;
    }
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return http;
}

/* Answers with code and body ("OK" for 200, else "Error"). */
static inline void testsrv_reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, body, strlen(body));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

/* Copies request header name into dst ("" when absent). */
static inline void testsrv_copy_header(char *dst, size_t n, struct evhttp_request *req,
                                       const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);
    snprintf(dst, n, "%s", v ? v : "");
}

/* The server of an HTTP client test: counts the requests and keeps their headers. */
struct testsrv {
    struct evhttp *http;
    int port;
    int hits; /* requests so far */
    /* Headers of the last request ("" when absent). */
    char auth[256], accept[256], api_key[128], x_api_key[128], anth_version[64];
    void (*route)(struct evhttp_request *req, const char *uri); /* the test's answers */
};

static inline void testsrv_on_request(struct evhttp_request *req, void *arg)
{
    struct testsrv *s = arg;

    s->hits++;
    testsrv_copy_header(s->auth, sizeof(s->auth), req, "Authorization");
    testsrv_copy_header(s->accept, sizeof(s->accept), req, "Accept");
    testsrv_copy_header(s->api_key, sizeof(s->api_key), req, "api-key");
    testsrv_copy_header(s->x_api_key, sizeof(s->x_api_key), req, "x-api-key");
    testsrv_copy_header(s->anth_version, sizeof(s->anth_version), req, "anthropic-version");
    s->route(req, evhttp_request_get_uri(req));
}

/*
 * A fixture's common part: a new loop (*base), s serving on 127.0.0.1 with route answering,
 * and a fetch object on the loop (*f).
 */
static inline void testsrv_setup(struct testsrv *s,
                                 void (*route)(struct evhttp_request *req, const char *uri),
                                 struct event_base **base, struct fetch **f)
{
    *base = event_base_new();
    assert_non_null(*base);
    memset(s, 0, sizeof(*s));
    s->route = route;
    s->http = testsrv_new(*base, "127.0.0.1", testsrv_on_request, s, &s->port);
    assert_non_null(s->http);
    *f = fetch_new(*base);
    assert_non_null(*f);
}

/* Undoes testsrv_setup(), once the test's own objects on the loop are gone (f may be NULL). */
static inline void testsrv_teardown(struct testsrv *s, struct event_base *base, struct fetch *f)
{
    fetch_free(f);
    evhttp_free(s->http);
    event_base_free(base);
}

/* ---- the event loop ---- */

static inline void testsrv_tick(evutil_socket_t fd, short what, void *arg)
{
    /* Only keeps EVLOOP_ONCE from blocking forever. */
}

/* Runs the loop until *flag >= want or timeout_ms pass; 1 if *flag got there. */
static inline int run_loop_until(struct event_base *base, const int *flag, int want, int timeout_ms)
{
    struct event *t = event_new(base, -1, EV_PERSIST, testsrv_tick, NULL);
    struct timeval tv = {0, 20000};
    uint64_t end = util_now_ms() + (uint64_t)timeout_ms;

    event_add(t, &tv);
    while (*flag < want && util_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    return *flag >= want;
}

#endif
