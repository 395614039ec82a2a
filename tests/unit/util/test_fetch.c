/* Unit tests for util/fetch: curl multi-socket on our base against an evhttp server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testsrv.h"
#include "util/fetch.h"
#include "util/util.h"

/* ---- a tiny HTTP server on 127.0.0.1:0 (tests/unit/testsrv.h) ---- */

static void route(struct evhttp_request *req, const char *uri)
{
    if (strncmp(uri, "/v1/models", 10) == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
        testsrv_reply(req, 200,
                      "{\"object\":\"list\",\"data\":[{\"id\":\"m1\",\"object\":\"model\"}]}");
    } else if (strcmp(uri, "/img") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "image/png; foo=bar");
        testsrv_reply(req, 200, "PNGDATA");
    } else if (strcmp(uri, "/img-redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/html");
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/img");
        testsrv_reply(req, 302, "<a href=/img>moved</a>");
    } else if (strcmp(uri, "/fail") == 0) {
        testsrv_reply(req, 500, "boom");
    } else if (strcmp(uri, "/slow") == 0) {
        /* Never answered: evhttp_free() reclaims it. */
    } else if (strcmp(uri, "/big") == 0) {
        char *big = malloc(1 << 20);
        memset(big, 'x', (1 << 20) - 1);
        big[(1 << 20) - 1] = '\0';
        testsrv_reply(req, 200, big);
        free(big);
    } else if (strcmp(uri, "/bigchunked") == 0) {
        /* No Content-Length: the cap must trip in the write callback. */
        char chunk[8192];
        memset(chunk, 'y', sizeof(chunk));
        evhttp_send_reply_start(req, 200, "OK");
        for (int i = 0; i < 16; i++) {
            struct evbuffer *b = evbuffer_new();
            evbuffer_add(b, chunk, sizeof(chunk));
            evhttp_send_reply_chunk(req, b);
            evbuffer_free(b);
        }
        evhttp_send_reply_end(req);
    } else if (strcmp(uri, "/redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/v1/models");
        testsrv_reply(req, 302, "");
    } else if (strcmp(uri, "/loop") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/loop");
        testsrv_reply(req, 302, "");
    } else {
        testsrv_reply(req, 404, "not found");
    }
}

/* A second server on 127.0.0.2 that redirects everything to the first one. */
struct hop {
    struct evhttp *http;
    int port;
    int target_port;
};

static void on_hop(struct evhttp_request *req, void *arg)
{
    struct hop *h = arg;
    char loc[128];

    if (strcmp(evhttp_request_get_uri(req), "/direct") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "image/png");
        testsrv_reply(req, 200, "HOP");
        return;
    }
    snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/img", h->target_port);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
    testsrv_reply(req, 302, "");
}

/* A port nothing listens on (bound, then closed). */
static int dead_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* ---- fixture ---- */

struct result {
    int calls;
    int status;
    char body[256];
    size_t len;
    int has_err;
    struct gw_err err;
    char ctype[128];
    int has_ctype;
    struct fetch *free_me; /* freed from inside the callback */
};

struct fx {
    struct event_base *base;
    struct fetch *f;
    struct testsrv srv;
    char url[256];
};

static void on_done(void *ud, int status, const char *body, size_t len, const struct gw_err *err)
{
    struct result *r = ud;

    r->calls++;
    r->status = status;
    r->len = len;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)(len < 255 ? len : 255), body ? body : "");
    r->has_err = err != NULL;
    if (err)
        r->err = *err;
    if (r->free_me)
        fetch_free(r->free_me);
}

/* fetch_get_ex()'s callback: exactly one of resp and err. */
static void on_resp(void *ud, const struct fetch_resp *resp, const struct gw_err *err)
{
    struct result *r = ud;

    assert_true((resp == NULL) != (err == NULL));
    if (resp) {
        r->has_ctype = resp->content_type != NULL;
        snprintf(r->ctype, sizeof(r->ctype), "%s", resp->content_type ? resp->content_type : "");
    }
    on_done(ud, resp ? resp->status : 0, resp ? resp->body : NULL, resp ? resp->len : 0, err);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    testsrv_setup(&fx->srv, route, &fx->base, &fx->f);
    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d", fx->srv.port);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    testsrv_teardown(&fx->srv, fx->base, fx->f);
    free(fx);
    return 0;
}

static void get(struct fx *fx, const char *path, const char *const *hdrs, int timeout_ms,
                size_t max, struct result *r)
{
    char url[512];

    snprintf(url, sizeof(url), "%s%s", fx->url, path);
    assert_int_equal(fetch_get(fx->f, url, hdrs, timeout_ms, max, on_done, r), GW_OK);
    /* Never called from inside fetch_get. */
    assert_int_equal(r->calls, 0);
}

/* Two GETs (5 s timeout, bodies up to max) in flight at once; returns when both answered. */
static void get_pair(struct fx *fx, const char *path1, const char *path2, size_t max,
                     struct result *r1, struct result *r2)
{
    get(fx, path1, NULL, 5000, max, r1);
    get(fx, path2, NULL, 5000, max, r2);
    run_loop_until(fx->base, &r1->calls, 1, 5000);
    run_loop_until(fx->base, &r2->calls, 1, 5000);
}

static void get_ex(struct fx *fx, const char *path, const struct fetch_opts *o, struct result *r)
{
    char url[512];

    snprintf(url, sizeof(url), "%s%s", fx->url, path);
    assert_int_equal(fetch_get_ex(fx->f, url, o, on_resp, r), GW_OK);
    assert_int_equal(r->calls, 0);
}

/* ---- tests ---- */

static void test_success(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    const char *hdrs[] = {"Authorization: Bearer k1", NULL};

    get(fx, "/v1/models", hdrs, 5000, 4096, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_false(r.has_err);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body,
                        "{\"object\":\"list\",\"data\":[{\"id\":\"m1\",\"object\":\"model\"}]}");
    assert_int_equal(r.len, strlen(r.body));
    assert_string_equal(fx->srv.auth, "Bearer k1");
}

static void test_status(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};

    get_pair(fx, "/fail", "/nope", 4096, &r, &r2);
    assert_int_equal(r.calls, 1);
    assert_false(r.has_err);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "boom");
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.status, 404);
}

static void test_timeout(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    uint64_t t0 = util_now_ms();

    get(fx, "/slow", NULL, 200, 4096, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.has_err);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.err.code, GW_ETIMEDOUT);
    assert_non_null(strstr(r.err.msg, "127.0.0.1"));
    assert_true(util_now_ms() - t0 < 3000);
}

static void test_too_big(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};

    get_pair(fx, "/big", "/bigchunked", 1024, &r, &r2);
    assert_int_equal(r.calls, 1);
    assert_true(r.has_err);
    assert_int_equal(r.err.code, GW_ETOOBIG);
    assert_int_equal(r2.calls, 1);
    assert_true(r2.has_err);
    assert_int_equal(r2.err.code, GW_ETOOBIG);
}

static void test_refused_hides_secrets(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    char url[256];

    snprintf(url, sizeof(url), "http://alice:sekrit1@127.0.0.1:%d/v1/models?key=sekrit2",
             dead_port());
    assert_int_equal(fetch_get(fx->f, url, NULL, 5000, 4096, on_done, &r), GW_OK);
    assert_int_equal(r.calls, 0);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.has_err);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.err.code, GW_EUPSTREAM);
    assert_non_null(strstr(r.err.msg, "'127.0.0.1'"));
    assert_null(strstr(r.err.msg, "sekrit"));
    assert_null(strstr(r.err.msg, "alice"));
}

static void test_redirects(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};

    get_pair(fx, "/redirect", "/loop", 4096, &r, &r2);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"m1\""));
    assert_int_equal(r2.calls, 1);
    assert_true(r2.has_err);
    assert_int_equal(r2.err.code, GW_EUPSTREAM);
}

static void test_bad_url(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    assert_int_equal(fetch_get(fx->f, "ftp://127.0.0.1/x", NULL, 1000, 10, on_done, &r), GW_EINVAL);
    assert_int_equal(fetch_get(fx->f, "file:///etc/passwd", NULL, 1000, 10, on_done, &r),
                     GW_EINVAL);
    assert_int_equal(fetch_get(fx->f, "not a url", NULL, 1000, 10, on_done, &r), GW_EINVAL);
    run_loop_until(fx->base, &r.calls, 1, 100);
    assert_int_equal(r.calls, 0);
}

static void test_cancel(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, keep = {0};

    get(fx, "/v1/models", NULL, 5000, 4096, &r);
    get(fx, "/v1/models", NULL, 5000, 4096, &keep);
    fetch_cancel(fx->f, &r);
    run_loop_until(fx->base, &keep.calls, 1, 5000);
    run_loop_until(fx->base, &r.calls, 1, 100);
    assert_int_equal(keep.calls, 1);
    assert_int_equal(r.calls, 0);
}

static void test_many_parallel(void **state)
{
    struct fx *fx = *state;
    struct result r[8];
    int done = 0;

    memset(r, 0, sizeof(r));
    for (int i = 0; i < 8; i++)
        get(fx, i % 2 ? "/v1/models" : "/fail", NULL, 5000, 4096, &r[i]);
    for (uint64_t end = util_now_ms() + 5000; done < 8 && util_now_ms() < end;) {
        run_loop_until(fx->base, &r[done].calls, 1, 100);
        while (done < 8 && r[done].calls)
            done++;
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, i % 2 ? 200 : 500);
    }
}

/* fetch_free() with transfers in flight: no callback, no leak. */
static void test_free_pending(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};

    get(fx, "/slow", NULL, 5000, 4096, &r);
    get(fx, "/v1/models", NULL, 5000, 4096, &r2);
    run_loop_until(fx->base, &fx->srv.hits, 2, 2000); /* both reached the server */
    fetch_free(fx->f);
    fx->f = NULL;
    run_loop_until(fx->base, &r.calls, 1, 200);
    assert_int_equal(r.calls, 0);
    assert_true(r2.calls <= 1);
}

/* fetch_free() from inside a callback, with another transfer still pending. */
static void test_free_in_callback(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, slow = {0};

    get(fx, "/slow", NULL, 5000, 4096, &slow);
    r.free_me = fx->f;
    get(fx, "/v1/models", NULL, 5000, 4096, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    fx->f = NULL;
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 200);
    run_loop_until(fx->base, &slow.calls, 1, 200);
    assert_int_equal(slow.calls, 0);
}

/* A second fetch object after the first is gone (curl global init/cleanup counted). */
static void test_reinit(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    fetch_free(fx->f);
    fx->f = fetch_new(fx->base);
    assert_non_null(fx->f);
    get(fx, "/v1/models", NULL, 5000, 4096, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.status, 200);
}

/* fetch_get_ex() reports the Content-Type (of the last response) and sends Accept. */
static void test_ex_content_type(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0}, r3 = {0};
    struct fetch_opts o = {
        .accept = "image/png, image/*;q=0.8", .timeout_ms = 5000, .max_body = 4096};

    get_ex(fx, "/img", &o, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_false(r.has_err);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "PNGDATA");
    assert_true(r.has_ctype);
    assert_string_equal(r.ctype, "image/png; foo=bar");
    assert_string_equal(fx->srv.accept, "image/png, image/*;q=0.8");

    get_ex(fx, "/img-redirect", &o, &r2);
    run_loop_until(fx->base, &r2.calls, 1, 5000);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.ctype, "image/png; foo=bar");

    /* Default options (NULL): max_body 0 allows no body at all. */
    get_ex(fx, "/img", NULL, &r3);
    run_loop_until(fx->base, &r3.calls, 1, 5000);
    assert_int_equal(r3.calls, 1);
    assert_true(r3.has_err);
    assert_int_equal(r3.err.code, GW_ETOOBIG);
}

/* The same loopback server: refused with public_only, served without it. */
static void test_public_only(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};
    struct fetch_opts pub = {.timeout_ms = 5000, .max_body = 4096, .public_only = 1};
    struct fetch_opts any = {.timeout_ms = 5000, .max_body = 4096};

    get_ex(fx, "/img", &pub, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.has_err);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.err.code, GW_EINVAL);
    assert_non_null(strstr(r.err.msg, "private or local address"));
    assert_non_null(strstr(r.err.msg, "'127.0.0.1'"));
    assert_int_equal(fx->srv.hits, 0);

    get_ex(fx, "/img", &any, &r2);
    run_loop_until(fx->base, &r2.calls, 1, 5000);
    assert_int_equal(r2.calls, 1);
    assert_false(r2.has_err);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.body, "PNGDATA");
    assert_int_equal(fx->srv.hits, 1);
}

/* A name that resolves to loopback only (::1 and 127.0.0.1): every address refused. */
static void test_public_only_localhost(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    struct fetch_opts pub = {.timeout_ms = 5000, .max_body = 4096, .public_only = 1};
    char url[256];

    snprintf(url, sizeof(url), "http://localhost:%d/img?token=sekrit", fx->srv.port);
    assert_int_equal(fetch_get_ex(fx->f, url, &pub, on_resp, &r), GW_OK);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err.code, GW_EINVAL);
    assert_non_null(strstr(r.err.msg, "'localhost'"));
    assert_null(strstr(r.err.msg, "sekrit"));
    assert_int_equal(fx->srv.hits, 0);
}

/* A kept-alive connection from an unrestricted request is not reused by a public_only one. */
static void test_public_only_no_reuse(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0}, r3 = {0};
    struct fetch_opts pub = {.timeout_ms = 5000, .max_body = 4096, .public_only = 1};

    get(fx, "/v1/models", NULL, 5000, 4096, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.status, 200);
    get_ex(fx, "/img", &pub, &r2);
    run_loop_until(fx->base, &r2.calls, 1, 5000);
    assert_int_equal(r2.calls, 1);
    assert_true(r2.has_err);
    assert_int_equal(r2.err.code, GW_EINVAL);
    assert_int_equal(fx->srv.hits, 1);
    /* And plain requests still work afterwards. */
    get(fx, "/v1/models", NULL, 5000, 4096, &r3);
    run_loop_until(fx->base, &r3.calls, 1, 5000);
    assert_int_equal(r3.status, 200);
}

/*
 * Redirects from an allowed host to loopback, with 127.0.0.2 standing in for
 * a public server: refused at connect, and refused when curl would serve the
 * redirect on a connection an unrestricted request left in the pool.
 */
static void test_public_only_redirect(void **state)
{
    struct fx *fx = *state;
    struct result direct = {0}, plain = {0}, fresh = {0}, pooled = {0};
    struct fetch_opts pub = {.timeout_ms = 5000, .max_body = 4096, .public_only = 1};
    struct hop hop = {.target_port = fx->srv.port};
    char url[256];

    hop.http = testsrv_new(fx->base, "127.0.0.2", on_hop, &hop, &hop.port);
    if (!hop.http)
        skip(); /* no 127.0.0.2 on this host */
    fetch__treat_as_public(fx->f, "127.0.0.2");

    snprintf(url, sizeof(url), "http://127.0.0.2:%d/direct", hop.port);
    assert_int_equal(fetch_get_ex(fx->f, url, &pub, on_resp, &direct), GW_OK);
    run_loop_until(fx->base, &direct.calls, 1, 5000);
    assert_int_equal(direct.status, 200);
    assert_string_equal(direct.body, "HOP");

    snprintf(url, sizeof(url), "http://127.0.0.2:%d/r", hop.port);
    assert_int_equal(fetch_get_ex(fx->f, url, &pub, on_resp, &fresh), GW_OK);
    run_loop_until(fx->base, &fresh.calls, 1, 5000);
    assert_int_equal(fresh.calls, 1);
    assert_int_equal(fresh.err.code, GW_EINVAL);
    assert_int_equal(fx->srv.hits, 0);

    get(fx, "/v1/models", NULL, 5000, 4096, &plain); /* leaves a connection to 127.0.0.1 */
    run_loop_until(fx->base, &plain.calls, 1, 5000);
    assert_int_equal(plain.status, 200);
    assert_int_equal(fetch_get_ex(fx->f, url, &pub, on_resp, &pooled), GW_OK);
    run_loop_until(fx->base, &pooled.calls, 1, 5000);
    assert_int_equal(pooled.calls, 1);
    assert_true(pooled.has_err);
    assert_int_equal(pooled.err.code, GW_EINVAL);
    assert_non_null(strstr(pooled.err.msg, "private or local address"));
    assert_int_equal(fx->srv.hits, 1); /* only the plain request */

    fetch__treat_as_public(fx->f, NULL);
    evhttp_free(hop.http);
}

/* A public_only request can be cancelled like any other. */
static void test_public_only_cancel(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    struct fetch_opts pub = {.timeout_ms = 5000, .max_body = 4096, .public_only = 1};

    get_ex(fx, "/img", &pub, &r);
    fetch_cancel(fx->f, &r);
    run_loop_until(fx->base, &r.calls, 1, 200);
    assert_int_equal(r.calls, 0);
}

static int is_public(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &in->sin_addr), 1);
    }
    return fetch_addr_is_public((struct sockaddr *)&ss);
}

static void test_addr_is_public(void **state)
{
    /* clang-format off */
    static const char *const refused[] = {
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "10.255.255.255", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0", "0.1.2.3",
        "100.64.0.1", "100.127.255.255", "224.0.0.1", "239.255.255.250", "255.255.255.255",
        "240.0.0.1", "192.0.0.8", "198.18.0.1", "::", "::1", "::127.0.0.1", "::ffff:127.0.0.1",
        "::ffff:10.1.2.3", "::ffff:169.254.169.254", "::ffff:0.0.0.0", "64:ff9b::a00:1",
        "64:ff9b:1::1", "2002:7f00:1::1", "2002:c0a8:101::1", "fc00::1", "fd12:3456::1",
        "fe80::1", "febf::1", "fec0::1", "ff02::1", "ff05::2"};
    static const char *const allowed[] = {
        "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.1", "100.63.255.255", "100.128.0.1",
        "169.253.0.1", "192.167.1.1", "11.0.0.1", "126.255.255.255", "128.0.0.1",
        "223.255.255.255", "192.0.1.1", "198.20.0.1", "2606:4700:4700::1111",
        "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",
        "fbff::1", "fe7f::1"};
    /* clang-format on */
    struct sockaddr_un_like {
        sa_family_t family;
        char path[32];
    } unix_addr = {AF_UNIX, "/tmp/x"};

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (is_public(refused[i]))
            fail_msg("%s must be refused", refused[i]);
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (!is_public(allowed[i]))
            fail_msg("%s must be allowed", allowed[i]);
    }
    assert_false(fetch_addr_is_public((struct sockaddr *)&unix_addr));
    assert_false(fetch_addr_is_public(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_hides_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reinit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ex_content_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only_localhost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only_no_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only_redirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_public_only_cancel, setup, teardown),
        cmocka_unit_test(test_addr_is_public),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
