/*
 * The HTTP front: listener, routing, per-request context and replies.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "api/chat.h"
#include "api/messages.h"
#include "http/metrics.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* libevent answers bodies far over the limit itself (with its own HTML
 * page); up to limit + slack we read them and answer in the API's shape. */
#define BODY_SLACK (1024u * 1024)

struct http_server {
    struct event_base *base;
    struct http_config cfg;
    char host[128];
    int port;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct broker *b;
    struct models *m;
    struct fetch *fetch; /* borrowed */
    int draining;
    int inflight;
    void (*drain_done)(void *ud);
    void *drain_ud;
    struct event *drain_timer;
    struct http_metrics metrics;
};

static void finish(struct http_req *r);

static void drain_check(struct http_server *s);

void http_server_hold(struct http_server *s)
{
    s->inflight++;
}

void http_server_release(struct http_server *s)
{
    s->inflight--;
    drain_check(s);
}

struct store *http_server_responses(struct http_server *s)
{
    return s->cfg.responses;
}

int64_t http_server_responses_ttl_s(const struct http_server *s)
{
    return s->cfg.responses_ttl_s;
}

int64_t http_server_responses_max(const struct http_server *s)
{
    return s->cfg.responses_max;
}

/* ---- request context ------------------------------------------------------ */

static int good_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (s[n] < 0x21 || s[n] > 0x7e || n >= 64)
            return 0;
    return n > 0;
}

static void set_path(struct http_req *r, const char *uri)
{
    size_t n = strcspn(uri, "?#");
    char *dec;

    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, uri, n);
    r->path[n] = '\0';
    dec = evhttp_uridecode(r->path, 0, NULL);
    if (dec) {
        snprintf(r->path, sizeof(r->path), "%s", dec);
        free(dec);
    }
    if (strncmp(r->path, "/v1/", 4) == 0)
        memmove(r->path, r->path + 3, strlen(r->path + 3) + 1);
    else if (strcmp(r->path, "/v1") == 0)
        snprintf(r->path, sizeof(r->path), "/");
    n = strlen(r->path);
    while (n > 1 && r->path[n - 1] == '/')
        r->path[--n] = '\0';
}

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "OTHER";
    }
}

/* The client went away before the reply was finished. */
static void gone(struct http_req *r)
{
    if (r->replied)
        return;
    r->replied = 1;
    r->status = 499;
    if (r->on_gone)
        r->on_gone(r);
    finish(r);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    struct http_req *r = arg;
    struct evhttp_request *ev = r->ev;

    r->ev = NULL;
    gone(r);
    /* When a connection fails (EOF, write error) while its request is still
     * ours, libevent 2.1 detaches the request (evcon = NULL) and leaves it to
     * us to free; a request still attached is freed with the connection. */
    if (ev && !evhttp_request_get_connection(ev))
        evhttp_request_free(ev);
}

/* libevent 2.1 does not read an incoming connection while its reply is
 * pending, so a client that hangs up would go unnoticed until we write.
 * Watch the socket ourselves: EOF or reset means the client is gone. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct http_req *r = arg;
    struct evhttp_connection *evcon;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0)
        return; /* pipelined data: stop watching (the event is not persistent) */
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        event_add(r->eof_watch, NULL);
        return;
    }
    if (!r->ev)
        return;
    evcon = evhttp_request_get_connection(r->ev);
    evhttp_connection_set_closecb(evcon, NULL, NULL);
    r->ev = NULL;
    gone(r);
    evhttp_connection_free(evcon);
}

static void watch_eof(struct http_req *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

    if (evcon)
        evhttp_connection_set_closecb(evcon, on_close, r);
    if (fd < 0)
        return;
    /* Small SSE writes must not wait for the client's delayed ACK (Nagle):
     * without this the end of a stream lagged ~40 ms. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r->eof_watch = event_new(r->srv->base, fd, EV_READ, on_readable, r);
    event_add(r->eof_watch, NULL);
}

static void drain_check(struct http_server *s)
{
    void (*done)(void *) = s->drain_done;
    if (!s->draining || s->inflight > 0 || !done)
        return;
    s->drain_done = NULL;
    if (s->drain_timer)
        event_del(s->drain_timer);
    done(s->drain_ud);
}

static void access_log(const struct http_req *r)
{
    char *peer = NULL;
    ev_uint16_t port = 0;
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    if (evcon)
        evhttp_connection_get_peer(evcon, &peer, &port);
    log_msg(LOG_INFO, "http", "%s \"%s %s\" %d %zu %.1fms req=%s", peer ? peer : "-", r->method,
            r->path, r->status, r->bytes_out, (double)(util_now_ms() - r->start_ms), r->id);
}

static void finish(struct http_req *r)
{
    struct http_server *s = r->srv;

    access_log(r);
    http_metrics_observe(&s->metrics, r->route ? r->route : "other", r->status,
                         (double)(util_now_ms() - r->start_ms) / 1000.0);
    if (r->eof_watch)
        event_free(r->eof_watch);
    if (r->ev) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->ev);
        if (evcon)
            evhttp_connection_set_closecb(evcon, NULL, NULL);
    }
    free(r);
    s->inflight--;
    drain_check(s);
}

/* ---- replies ---------------------------------------------------------------- */

static void common_headers(struct http_req *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(r->ev), "Origin");

    evhttp_add_header(out, "x-request-id", r->id);
    if (r->api == HTTP_API_ANTHROPIC)
        evhttp_add_header(out, "request-id", r->id); /* the header Anthropic's SDKs read */
    evhttp_add_header(out, "Access-Control-Allow-Origin", origin ? origin : "*");
    if (origin)
        evhttp_add_header(out, "Vary", "Origin");
    evhttp_add_header(out, "Access-Control-Expose-Headers", "x-request-id, retry-after");
    if (r->srv->draining)
        evhttp_add_header(out, "Connection", "close");
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Overloaded";
    default:
        return "Status";
    }
}

void http_reply_text(struct http_req *r, int status, const char *content_type, const char *p,
                     size_t n)
{
    struct evbuffer *eb;

    if (r->replied || !r->ev)
        return;
    r->replied = 1;
    r->status = status;
    common_headers(r);
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Content-Type", content_type);
    eb = evbuffer_new();
    evbuffer_add(eb, p, n);
    r->bytes_out = n;
    evhttp_send_reply(r->ev, status, reason(status), eb);
    evbuffer_free(eb);
    finish(r);
}

void http_reply_json(struct http_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct buf b;

    json_decref(body);
    buf_init(&b, (size_t)-1);
    if (s && (buf_adds(&b, s) || buf_add(&b, "\n", 1)))
        buf_reset(&b);
    free(s);
    http_reply_text(r, status, "application/json", buf_str(&b), b.len);
    buf_release(&b);
}

void http_reply_empty(struct http_req *r, int status)
{
    if (r->replied || !r->ev)
        return;
    r->replied = 1;
    r->status = status;
    common_headers(r);
    evhttp_send_reply(r->ev, status, reason(status), NULL);
    finish(r);
}

void http_reply_error(struct http_req *r, const struct gw_err *err)
{
    int status = err->http_status ? err->http_status : 500;

    /* Anthropic clients read "the service is unavailable" as 529 overloaded. */
    if (r->api == HTTP_API_ANTHROPIC && status == 503)
        status = 529;

    if (r->replied || !r->ev)
        return;
    if (err->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", err->retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Retry-After", v);
    }
    if (status == 405 && r->ev)
        evhttp_add_header(evhttp_request_get_output_headers(r->ev), "Allow",
                          strcmp(r->path, "/chat/completions") == 0 ? "POST, OPTIONS"
                                                                    : "GET, OPTIONS");
    http_reply_json(r, status,
                    r->api == HTTP_API_ANTHROPIC ? anthropic_error(err) : openai_error(err));
}

/*
 * libevent enables reading (for close detection) with the read timeout armed
 * once a chunked reply starts, so a model that pauses longer than the read
 * timeout would cut the stream.  While streaming there is no read timeout,
 * only a write timeout for a client that stops reading; the idle timeout of
 * the keep-alive connection is restored when the stream ends.
 */
static void stream_timeouts(struct http_req *r, int streaming)
{
    struct evhttp_connection *evcon = r->ev ? evhttp_request_get_connection(r->ev) : NULL;
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct timeval tv = {r->srv->cfg.read_timeout_s, 0};

    if (bev)
        bufferevent_set_timeouts(bev, streaming ? NULL : &tv, &tv);
}

void http_stream_start(struct http_req *r)
{
    struct evkeyvalq *out;

    if (r->replied || r->streaming || !r->ev)
        return;
    r->streaming = 1;
    r->status = 200;
    common_headers(r);
    out = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(out, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(out, "Cache-Control", "no-cache");
    evhttp_add_header(out, "X-Accel-Buffering", "no");
    evhttp_send_reply_start(r->ev, 200, "OK");
    stream_timeouts(r, 1);
}

void http_stream_write(struct http_req *r, const char *p, size_t n)
{
    struct evbuffer *eb;

    if (r->replied || !r->streaming || !r->ev || !n)
        return;
    eb = evbuffer_new();
    evbuffer_add(eb, p, n);
    r->bytes_out += n;
    evhttp_send_reply_chunk(r->ev, eb);
    evbuffer_free(eb);
}

void http_stream_end(struct http_req *r)
{
    if (r->replied || !r->ev)
        return;
    r->replied = 1;
    stream_timeouts(r, 0);
    evhttp_send_reply_end(r->ev);
    finish(r);
}

const char *http_req_body(struct http_req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t n = evbuffer_get_length(in);
    const char *p;

    /* NUL-terminate once for callers that want a string; the NUL is not
     * part of the body's length. */
    if (!r->body_nul) {
        evbuffer_add(in, "", 1);
        r->body_nul = 1;
    } else {
        n--;
    }
    p = (const char *)evbuffer_pullup(in, -1);
    *len = n;
    return p;
}

const char *http_req_header(struct http_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

/* ---- routing ---------------------------------------------------------------- */

/* Compares without an early exit, so timing does not reveal a key prefix. */
static int same_secret(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    unsigned char d = na != nb;
    for (size_t i = 0; i < na; i++)
        d |= (unsigned char)(a[i] ^ (i < nb ? b[i] : 0));
    return d == 0;
}

static int check_api_key(struct http_req *r)
{
    const char *const *k = r->srv->cfg.api_keys;
    const char *auth, *given = NULL;

    if (!k || !*k)
        return 1;
    auth = http_req_header(r, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        given = auth + 7;
    if (!given)
        given = http_req_header(r, "x-api-key");
    for (; given && *k; k++)
        if (same_secret(*k, given))
            return 1;
    return 0;
}

static void reply_status(struct http_req *r, enum gw_status code, int status, const char *msg)
{
    struct gw_err err;
    gw_err_set(&err, code, "%s", msg);
    err.http_status = status;
    http_reply_error(r, &err);
}

static void preflight(struct http_req *r)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->ev);
    const char *want = http_req_header(r, "Access-Control-Request-Headers");

    evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
    evhttp_add_header(out, "Access-Control-Allow-Headers",
                      want ? want
                           : "authorization, content-type, x-api-key, x-request-id, "
                             "anthropic-version, anthropic-beta, openai-organization");
    evhttp_add_header(out, "Access-Control-Max-Age", "86400");
    http_reply_empty(r, 204);
}

static void route(struct http_req *r, enum evhttp_cmd_type cmd)
{
    const char *p = r->path;
    int get = cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD;

    if (strcmp(p, "/healthz") == 0 || strcmp(p, "/readyz") == 0) {
        r->route = p[1] == 'h' ? "healthz" : "readyz";
        if (!get)
            reply_status(r, GW_EINVAL, 405, "use GET for this endpoint");
        else if (p[1] == 'h')
            http_route_health(r);
        else
            http_route_ready(r);
        return;
    }
    if (strncmp(p, "/messages", 9) == 0 && (p[9] == '\0' || p[9] == '/'))
        r->api = HTTP_API_ANTHROPIC; /* errors in Anthropic's shape from here on */
    if (strcmp(p, "/") == 0 && get) { /* a liveness probe (Claude Code sends one): no key */
        r->route = "root";
        http_reply_json(r, 200, json_pack("{s:s, s:s}", "name", "copilot-gateway", "status", "ok"));
        return;
    }
    if (!check_api_key(r)) {
        reply_status(r, GW_EAUTH, 401,
                     "missing or invalid API key: send it as 'Authorization: Bearer <key>'");
        return;
    }
    if (strcmp(p, "/metrics") == 0) {
        r->route = "metrics";
        if (!get)
            reply_status(r, GW_EINVAL, 405, "use GET for /metrics");
        else
            http_route_metrics(r);
        return;
    }
    if (strcmp(p, "/messages") == 0 || strcmp(p, "/messages/count_tokens") == 0) {
        int count = p[9] == '/';
        r->route = count ? "messages_count_tokens" : "messages";
        if (cmd != EVHTTP_REQ_POST)
            reply_status(r, GW_EINVAL, 405, "use POST for this endpoint");
        else if (count)
            http_route_count_tokens(r);
        else
            http_route_messages(r);
        return;
    }
    if (strcmp(p, "/chat/completions") == 0) {
        r->route = "chat_completions";
        if (cmd != EVHTTP_REQ_POST)
            reply_status(r, GW_EINVAL, 405, "use POST for /v1/chat/completions");
        else
            http_route_chat(r);
    } else if (strncmp(p, "/responses", 10) == 0 && (p[10] == '\0' || p[10] == '/')) {
        r->route = "responses";
        http_route_responses(r, p + 10);
    } else if (strcmp(p, "/models") == 0 || strncmp(p, "/models/", 8) == 0) {
        r->route = "models";
        if (!get)
            reply_status(r, GW_EINVAL, 405, "use GET for /v1/models");
        else
            http_route_models(r, p[7] == '/' ? p + 8 : NULL);
    } else {
        char msg[320];
        snprintf(msg, sizeof(msg), "unknown route: %s %s", r->method, r->path);
        reply_status(r, GW_ENOTFOUND, 404, msg);
    }
}

static void on_request(struct evhttp_request *ev, void *arg)
{
    struct http_server *s = arg;
    struct http_req *r = xcalloc(1, sizeof(*r));
    const char *rid = evhttp_find_header(evhttp_request_get_input_headers(ev), "x-request-id");
    enum evhttp_cmd_type cmd = evhttp_request_get_command(ev);

    r->srv = s;
    r->ev = ev;
    r->start_ms = util_now_ms();
    s->inflight++;
    if (rid && good_request_id(rid)) {
        snprintf(r->id, sizeof(r->id), "%s", rid);
    } else {
        memcpy(r->id, "req_", 4);
        util_rand_id(r->id + 4, 24);
    }
    snprintf(r->method, sizeof(r->method), "%s", method_name(cmd));
    set_path(r, evhttp_request_get_uri(ev));
    watch_eof(r);
    if (s->draining) {
        reply_status(r, GW_ERUNTIME, 503, "the gateway is shutting down");
        return;
    }
    if (cmd == EVHTTP_REQ_OPTIONS) {
        preflight(r);
        return;
    }
    route(r, cmd);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static int parse_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(listen, ':');
    const char *h = listen;
    size_t hl;
    int64_t p;

    if (!colon || util_parse_i64(colon + 1, 0, 65535, &p))
        return GW_EINVAL;
    hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen)
        return GW_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return GW_OK;
}

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

struct http_server *http_server_new(struct event_base *base, const struct http_config *cfg,
                                    struct broker *b, struct models *m)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->cfg = *cfg;
    s->b = b;
    s->m = m;
    return s;
}

int http_server_start(struct http_server *s, struct gw_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd;

    if (parse_listen(s->cfg.listen, s->host, sizeof(s->host), &s->port))
        return gw_err_set(err, GW_EINVAL, "invalid --listen '%s': expected HOST:PORT",
                          s->cfg.listen);
    if (!is_loopback(s->host) && (!s->cfg.api_keys || !*s->cfg.api_keys))
        return gw_err_set(err, GW_EINVAL,
                          "refusing to listen on %s without client API keys: set --api-key "
                          "(or COPILOT_GATEWAY_API_KEY), or listen on 127.0.0.1",
                          s->host);
    s->http = evhttp_new(s->base);
    /* Limits are set before binding (bitcoind httpserver.cpp). */
    evhttp_set_max_headers_size(s->http, s->cfg.max_headers);
    evhttp_set_max_body_size(s->http, s->cfg.max_body + BODY_SLACK);
    evhttp_set_timeout(s->http, s->cfg.read_timeout_s);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    s->sock = evhttp_bind_socket_with_handle(s->http, s->host, (ev_uint16_t)s->port);
    if (!s->sock)
        return gw_err_set(err, GW_EIO, "cannot listen on %s: %s", s->cfg.listen,
                          strerror(errno));
    fd = evhttp_bound_socket_get_fd(s->sock);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return GW_OK;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

const char *http_server_host(const struct http_server *s)
{
    return s->host;
}

static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    void (*done)(void *) = s->drain_done;
    log_msg(LOG_WARN, "http", "shutdown timeout: %d request(s) still in flight", s->inflight);
    s->drain_done = NULL;
    if (done)
        done(s->drain_ud);
}

void http_server_drain(struct http_server *s, void (*done)(void *ud), void *ud)
{
    struct timeval tv = {s->cfg.shutdown_timeout_s, 0};

    s->draining = 1;
    s->drain_done = done;
    s->drain_ud = ud;
    if (s->sock) {
        evhttp_del_accept_socket(s->http, s->sock);
        s->sock = NULL;
    }
    log_msg(LOG_INFO, "http", "stopped accepting; %d request(s) in flight", s->inflight);
    s->drain_timer = evtimer_new(s->base, drain_timeout, s);
    evtimer_add(s->drain_timer, &tv);
    drain_check(s);
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    http_routes_shutdown(s);
    if (s->drain_timer)
        event_free(s->drain_timer);
    if (s->http)
        evhttp_free(s->http);
    free(s);
}

struct broker *http_server_broker(struct http_server *s)
{
    return s->b;
}

struct event_base *http_server_base(struct http_server *s)
{
    return s->base;
}

const char *http_server_anthropic_default(const struct http_server *s)
{
    return s->cfg.anthropic_default_model;
}

const char *http_server_model_aliases(const struct http_server *s)
{
    return s->cfg.model_aliases;
}

struct models *http_server_models(struct http_server *s)
{
    return s->m;
}

int http_server_metrics(const struct http_server *s, struct buf *out)
{
    return http_metrics_render(&s->metrics, out);
}

size_t http_server_max_body(const struct http_server *s)
{
    return s->cfg.max_body;
}

void http_server_set_fetch(struct http_server *s, struct fetch *f)
{
    s->fetch = f;
}

struct fetch *http_server_fetch(struct http_server *s)
{
    return s->fetch;
}

int http_server_image_fetch_private(const struct http_server *s)
{
    return s->cfg.image_fetch_private;
}

int64_t http_server_max_input_tokens(const struct http_server *s)
{
    return s->cfg.max_input_tokens;
}
