/*
 * The HTTP front: an HTTP/1.1 server on bufferevents, routing, per-request
 * context and replies.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api/chat.h"
#include "api/messages.h"
#include "http/metrics.h"
#include "http/services.h"
#include "keys/keys.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define LINGER_IDLE_S 5     /* a lingering close waits this long for more bytes ... */
#define LINGER_TOTAL_S 30   /* ... and this long in all (nginx lingering_time) */
#define ACCEPT_BACKOFF_MS 100
#define REFUSE_LOG_S 10     /* one log line per this many seconds of refusals */
#define READ_HWM (256u * 1024) /* bytes read ahead of the request being served */

enum conn_state {
    CONN_IDLE = 0, /* waiting for the first byte of a request */
    CONN_HEAD,     /* reading the header block */
    CONN_BODY,     /* reading the body */
    CONN_BUSY,     /* the request is being served */
    CONN_CLOSING,  /* flushing the last reply, then close */
    CONN_LINGER,   /* reply flushed and write side shut: discarding input */
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *next, *prev;
    struct bufferevent *bev;
    struct event *timer;      /* the deadline of the current state */
    struct event *abort_ev;   /* deferred drop (output cap passed) */
    enum conn_state state;
    char peer[64];
    struct http_req *req;     /* the request being read or served */
    struct http1_chunked ck;
    int chunked;
    uint64_t body_left;       /* Content-Length bodies */
    int linger_after;         /* close lingering after the reply */
    uint64_t linger_end_ms;
    int in_cb;                /* inside one of our bufferevent callbacks */
    int dead;                 /* free when the callback returns */
};

/* A configured client key, kept only as its SHA-256, and the principal it names. */
struct http_key {
    unsigned char digest[32];
    char principal[PRINCIPAL_MAX];
};

struct http_server {
    struct event_base *base;
    struct http_config cfg;
    char host[128];
    int port;
    struct evconnlistener *listener;
    struct event *accept_retry;
    int spare_fd;             /* reserved descriptor for refusing at EMFILE */
    int nconns;
    struct http_conn *conns;
    uint64_t refused;         /* connections refused since the last log line */
    uint64_t refused_total;
    uint64_t dropped_total;   /* slow clients dropped (write deadline, output cap) */
    uint64_t refuse_logged_ms;
    const struct gw_services *svc; /* borrowed */
    struct http_key *keys;
    size_t nkeys;
    unsigned char admin_digest[32]; /* SHA-256 of the admin key, if has_admin */
    int has_admin;
    struct http_detached *detached; /* work that outlives its request */
    int draining;
    int inflight;
    void (*drain_done)(void *ud);
    void *drain_ud;
    struct event *drain_timer;
    struct http_metrics metrics;
};

static void finish(struct http_req *r);
static void drain_check(struct http_server *s);
static void conn_read(struct http_conn *c);
static void conn_close(struct http_conn *c);
static void dispatch(struct http_conn *c);

/* ---- work that outlives its request ------------------------------------------- */

void http_server_detach(struct http_server *s, struct http_detached *d)
{
    d->prev = NULL;
    d->next = s->detached;
    if (s->detached)
        s->detached->prev = d;
    s->detached = d;
    s->inflight++;
}

void http_server_undetach(struct http_server *s, struct http_detached *d)
{
    if (d->prev)
        d->prev->next = d->next;
    else
        s->detached = d->next;
    if (d->next)
        d->next->prev = d->prev;
    d->next = d->prev = NULL;
    s->inflight--;
    drain_check(s);
}

struct http_detached *http_server_find_detached(struct http_server *s, const char *id)
{
    for (struct http_detached *d = s->detached; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return d;
    return NULL;
}

void http_server_end_detached(struct http_server *s)
{
    while (s->detached) {
        struct http_detached *d = s->detached;
        d->end(d);
        assert(s->detached != d); /* end() must undetach */
    }
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

static void set_path(struct http_req *r, const char *target)
{
    size_t n = strcspn(target, "?#");
    char *dec;

    if (n >= sizeof(r->path))
        n = sizeof(r->path) - 1;
    memcpy(r->path, target, n);
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

static const struct {
    const char *name;
    enum evhttp_cmd_type cmd;
} methods[] = {
    {"GET", EVHTTP_REQ_GET},         {"POST", EVHTTP_REQ_POST},
    {"HEAD", EVHTTP_REQ_HEAD},       {"PUT", EVHTTP_REQ_PUT},
    {"DELETE", EVHTTP_REQ_DELETE},   {"OPTIONS", EVHTTP_REQ_OPTIONS},
    {"PATCH", EVHTTP_REQ_PATCH},
};

/* 0 and *cmd set for a method we serve, -1 for any other. */
static int method_lookup(const char *m, size_t n, enum evhttp_cmd_type *cmd)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0) {
            *cmd = methods[i].cmd;
            return 0;
        }
    return -1;
}

static struct http_req *req_new(struct http_conn *c)
{
    struct http_req *r = xcalloc(1, sizeof(*r));

    r->srv = c->srv;
    r->svc = c->srv->svc;
    r->conn = c;
    snprintf(r->peer, sizeof(r->peer), "%s", c->peer);
    r->start_ms = util_now_ms();
    r->keep_alive = 1;
    r->minor = 1;
    buf_init(&r->body, c->srv->cfg.max_body);
    buf_init(&r->out_headers, BUF_MAX_SMALL);
    memcpy(r->id, "req_", 4);
    util_rand_id(r->id + 4, 24);
    snprintf(r->method, sizeof(r->method), "-");
    snprintf(r->path, sizeof(r->path), "-");
    c->srv->inflight++;
    return r;
}

static void req_free(struct http_req *r)
{
    vkey_unref(r->vkey);
    buf_release(&r->body);
    buf_release(&r->out_headers);
    free(r->head);
    free(r->fields);
    free(r);
}

/* The client went away before the reply was finished. */
static void gone(struct http_req *r)
{
    if (r->replied)
        return;
    r->replied = 1;
    r->status = 499;
    r->conn = NULL;
    if (r->on_gone)
        r->on_gone(r);
    finish(r);
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
    log_msg(LOG_INFO, "http", "%s \"%s %s\" %d %zu %.1fms req=%s", r->peer, r->method, r->path,
            r->status, r->bytes_out, (double)(util_now_ms() - r->start_ms), r->id);
}

/* ---- connections --------------------------------------------------------- */

static void conn_arm(struct http_conn *c, int seconds)
{
    struct timeval tv = {seconds, 0};
    evtimer_add(c->timer, &tv);
}

static void conn_free(struct http_conn *c)
{
    struct http_server *s = c->srv;

    if (c->req) {
        struct http_req *r = c->req;
        c->req = NULL;
        if (c->state == CONN_HEAD || c->state == CONN_BODY) {
            req_free(r); /* never dispatched: nothing to tell anyone */
            s->inflight--;
        } else {
            gone(r);
        }
    }
    if (c->next)
        c->next->prev = c->prev;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    event_free(c->timer);
    if (c->abort_ev)
        event_free(c->abort_ev);
    bufferevent_free(c->bev);
    free(c);
    s->nconns--;
    drain_check(s);
}

/* Frees c now, or when the callback we are inside returns. */
static void conn_close(struct http_conn *c)
{
    if (c->in_cb) {
        c->dead = 1;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    conn_free(c);
}

/* Closes once the output is flushed; lingers first if the client may still be
 * sending a body we did not read, so that it reads our reply instead of a
 * reset (nginx lingering_close). */
static void conn_finish_output(struct http_conn *c)
{
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
        c->state = CONN_CLOSING;
        bufferevent_enable(c->bev, EV_WRITE);
        return;
    }
    if (!c->linger_after) {
        conn_close(c);
        return;
    }
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    c->state = CONN_LINGER;
    c->linger_end_ms = util_now_ms() + LINGER_TOTAL_S * 1000;
    bufferevent_enable(c->bev, EV_READ);
    conn_arm(c, LINGER_IDLE_S);
}

static void on_conn_read(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;

    c->in_cb++;
    conn_read(c);
    if (--c->in_cb == 0 && c->dead)
        conn_free(c);
}

static void on_conn_write(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;

    if (c->state != CONN_CLOSING)
        return;
    c->in_cb++;
    conn_finish_output(c);
    if (--c->in_cb == 0 && c->dead)
        conn_free(c);
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;

    if (what & BEV_EVENT_TIMEOUT) {
        c->srv->dropped_total++;
        log_msg(LOG_WARN, "http", "%s took no output for %d s: closing%s%s", c->peer,
                c->srv->cfg.write_timeout_s, c->req ? " req=" : "", c->req ? c->req->id : "");
    } else if ((what & BEV_EVENT_EOF) && c->state == CONN_BODY)
        log_msg(LOG_DEBUG, "http", "%s closed mid-body", c->peer);
    conn_free(c);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    struct gw_err err;

    switch (c->state) {
    case CONN_HEAD:
    case CONN_BODY:
        /* The request never arrived whole: 408, and no more from this client. */
        gw_err_set(&err, GW_ETIMEDOUT, "the request was not received in time (%d s)",
                   c->state == CONN_HEAD ? c->srv->cfg.header_timeout_s
                                         : c->srv->cfg.read_timeout_s);
        err.http_status = 408;
        if (!c->req)
            c->req = req_new(c);
        c->req->keep_alive = 0;
        c->in_cb++;
        http_reply_error(c->req, &err);
        if (--c->in_cb == 0 && c->dead)
            conn_free(c);
        return;
    case CONN_LINGER: /* the client sent nothing for a while, or too long */
        conn_free(c);
        return;
    default: /* an idle keep-alive connection */
        conn_free(c);
    }
}

static void conn_abort_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_free(arg);
}

static struct http_conn *conn_new(struct http_server *s, evutil_socket_t fd,
                                  const struct sockaddr *sa)
{
    struct http_conn *c = xcalloc(1, sizeof(*c));
    struct timeval wtv = {s->cfg.write_timeout_s, 0};
    int one = 1;
    char host[INET6_ADDRSTRLEN] = "-";

    c->srv = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return NULL;
    }
    c->timer = evtimer_new(s->base, on_conn_timer, c);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
    snprintf(c->peer, sizeof(c->peer), "%s", host);
    /* Small SSE writes must not wait for the client's delayed ACK (Nagle). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bufferevent_setcb(c->bev, on_conn_read, on_conn_write, on_conn_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, READ_HWM > s->cfg.max_headers
                                                     ? READ_HWM
                                                     : s->cfg.max_headers + 1);
    /* Only a write deadline on the bufferevent: it runs while output is
     * pending and no byte of it has gone out.  Read deadlines are ours. */
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    bufferevent_enable(c->bev, EV_READ);
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    conn_arm(c, s->cfg.read_timeout_s);
    return c;
}

/* ---- refusing connections ------------------------------------------------- */

#define REFUSE_BODY                                                                            \
    "{\"error\":{\"message\":\"the gateway is at its connection limit; retry shortly\","        \
    "\"type\":\"server_error\",\"param\":null,\"code\":\"overloaded\"}}\n"

static void refuse_note(struct http_server *s, const char *why)
{
    uint64_t now = util_now_ms();

    s->refused++;
    s->refused_total++;
    if (now - s->refuse_logged_ms < REFUSE_LOG_S * 1000 && s->refuse_logged_ms)
        return;
    log_msg(LOG_WARN, "http", "refused %llu connection(s): %s (%d open)",
            (unsigned long long)s->refused, why, s->nconns);
    s->refused = 0;
    s->refuse_logged_ms = now;
}

/* Answers 503 on a socket we will not serve and closes it. */
static void refuse_fd(int fd)
{
    char reply[512];
    int len = snprintf(reply, sizeof(reply),
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Connection: close\r\nRetry-After: 1\r\nContent-Length: %zu\r\n\r\n%s",
                       sizeof(REFUSE_BODY) - 1, REFUSE_BODY);
    ssize_t n = len > 0 && (size_t)len < sizeof(reply)
                    ? send(fd, reply, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL)
                    : 0;

    (void)n;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    struct http_server *s = arg;

    if (s->draining) {
        close(fd);
        return;
    }
    if (s->nconns >= s->cfg.max_connections) {
        refuse_note(s, "--max-connections reached");
        refuse_fd(fd);
        return;
    }
    conn_new(s, fd, sa);
}

static void accept_resume(evutil_socket_t fd, short what, void *arg)
{
    struct http_server *s = arg;
    if (s->listener && !s->draining)
        evconnlistener_enable(s->listener);
}

/* accept() failed with something other than EAGAIN: out of descriptors,
 * most likely.  Use the reserved descriptor to take the pending connection
 * and answer it 503, then pause accepting briefly instead of spinning. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct http_server *s = arg;
    int err = errno;
    struct timeval tv = {0, ACCEPT_BACKOFF_MS * 1000};

    if ((err == EMFILE || err == ENFILE) && s->spare_fd >= 0) {
        int fd;
        close(s->spare_fd);
        fd = accept4(evconnlistener_get_fd(l), NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            refuse_fd(fd);
        s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    refuse_note(s, strerror(err));
    evconnlistener_disable(l);
    evtimer_add(s->accept_retry, &tv);
}

/* ---- replies ---------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    case 529: return "Overloaded";
    default: return "Status";
    }
}

void http_req_add_header(struct http_req *r, const char *name, const char *value)
{
    /* Header values we send never come with line breaks; refuse them anyway. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
        return;
    if (buf_addf(&r->out_headers, "%s: %s\r\n", name, value))
        buf_init(&r->out_headers, BUF_MAX_SMALL);
}

/* The next entry of a comma-separated list (blanks trimmed); *p moves past
 * it.  0 at the end of the list. */
static int list_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    size_t n;

    while (*s == ' ' || *s == ',')
        s++;
    if (!*s)
        return 0;
    n = strcspn(s, ",");
    *p = s + n;
    while (n && s[n - 1] == ' ')
        n--;
    *item = s;
    *len = n;
    return 1;
}

/* Is origin one the operator allowed with --cors-origins?  Never "null". */
static int cors_allowed(const struct http_server *s, const char *origin)
{
    const char *p = s->cfg.cors_origins, *it;
    size_t n = strlen(origin), len;

    if (strcmp(origin, "null") == 0)
        return 0;
    while (p && list_next(&p, &it, &len))
        if (len == n && strncmp(it, origin, n) == 0)
            return 1;
    return 0;
}

/* An admin route (ROUTE_ADMIN): no CORS answers, whatever --cors-origins allows. */
static int is_admin(const struct http_req *r)
{
    return r->rt && (r->rt->flags & ROUTE_ADMIN);
}

#define LEN_STREAM (-1) /* write_head(): a stream, chunked on HTTP/1.1 */
#define LEN_NONE (-2)   /* write_head(): no body and no length (204) */

/* Writes the status line and headers. */
static void write_head(struct http_req *r, int status, const char *content_type, long length)
{
    struct evbuffer *out = bufferevent_get_output(r->conn->bev);
    const char *origin = http_req_header(r, "Origin");
    int close_after = !r->keep_alive || r->srv->draining ||
                      (length == LEN_STREAM && r->minor == 0);

    if (close_after)
        r->keep_alive = 0;
    evbuffer_add_printf(out, "HTTP/1.%d %d %s\r\n", r->minor ? 1 : 0, status, reason(status));
    if (content_type)
        evbuffer_add_printf(out, "Content-Type: %s\r\n", content_type);
    if (length >= 0)
        evbuffer_add_printf(out, "Content-Length: %ld\r\n", length);
    else if (length == LEN_STREAM && r->minor)
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    if (close_after)
        evbuffer_add_printf(out, "Connection: close\r\n");
    else if (r->minor == 0)
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    evbuffer_add_printf(out, "x-request-id: %s\r\n", r->id);
    if (r->api == HTTP_API_ANTHROPIC)
        evbuffer_add_printf(out, "request-id: %s\r\n", r->id); /* the header Anthropic's SDKs read */
    if (origin && cors_allowed(r->srv, origin) && !is_admin(r))
        evbuffer_add_printf(out,
                            "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                            "Access-Control-Expose-Headers: x-request-id, request-id, "
                            "retry-after\r\n",
                            origin);
    if (r->out_headers.len)
        evbuffer_add(out, r->out_headers.ptr, r->out_headers.len);
    evbuffer_add(out, "\r\n", 2);
}

/* After the reply was queued: next request, or close. */
static void conn_next(struct http_conn *c, int keep_alive)
{
    c->req = NULL;
    if (!keep_alive || c->srv->draining) {
        conn_finish_output(c);
        return;
    }
    c->state = CONN_IDLE;
    conn_arm(c, c->srv->cfg.read_timeout_s);
    bufferevent_enable(c->bev, EV_READ);
    /* Pipelined bytes may already wait: read them from a fresh callback, not
     * from inside the reply that is still on the stack. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        bufferevent_trigger(c->bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void finish(struct http_req *r)
{
    struct http_server *s = r->srv;
    struct http_conn *c = r->conn;

    access_log(r);
    http_metrics_observe(&s->metrics, r->rt ? r->rt->name : "other", r->status,
                         (double)(util_now_ms() - r->start_ms) / 1000.0);
    if (c && c->req == r)
        conn_next(c, r->keep_alive);
    req_free(r);
    s->inflight--;
    drain_check(s);
}

void http_reply_text(struct http_req *r, int status, const char *content_type, const char *p,
                     size_t n)
{
    if (r->replied || !r->conn)
        return;
    r->replied = 1;
    r->status = status;
    write_head(r, status, content_type, (long)n);
    if (r->cmd != EVHTTP_REQ_HEAD && n) /* HEAD: the headers of the GET, no body */
        evbuffer_add(bufferevent_get_output(r->conn->bev), p, n);
    r->bytes_out = n;
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
    if (r->replied || !r->conn)
        return;
    r->replied = 1;
    r->status = status;
    write_head(r, status, NULL, status == 204 ? LEN_NONE : 0);
    finish(r);
}

void http_reply_error(struct http_req *r, const struct gw_err *err)
{
    int status = err->http_status ? err->http_status : 500;

    /* Anthropic clients read "the service is unavailable" as 529 overloaded. */
    if (r->api == HTTP_API_ANTHROPIC && status == 503)
        status = 529;

    if (r->replied || !r->conn)
        return;
    if (err->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", err->retry_after);
        http_req_add_header(r, "Retry-After", v);
    }
    http_reply_json(r, status,
                    r->api == HTTP_API_ANTHROPIC ? anthropic_error(err) : openai_error(err));
}

void http_stream_start(struct http_req *r)
{
    if (r->replied || r->streaming || !r->conn)
        return;
    r->streaming = 1;
    r->status = 200;
    http_req_add_header(r, "Cache-Control", "no-cache");
    http_req_add_header(r, "X-Accel-Buffering", "no");
    write_head(r, 200, "text/event-stream; charset=utf-8", LEN_STREAM);
}

/*
 * Has a streaming client stopped reading?  Output piles up past the cap
 * while its socket takes nothing more (a burst of deltas between two writes
 * is not that), or past the cap plus 16 MiB in any case.
 */
static int output_stalled(struct http_conn *c, size_t queued)
{
    size_t cap = c->srv->cfg.max_write_buffer;
    struct pollfd pfd = {bufferevent_getfd(c->bev), POLLOUT, 0};

    if (queued <= cap)
        return 0;
    if (queued > cap + 16u * 1024 * 1024)
        return 1;
    return poll(&pfd, 1, 0) == 0;
}

void http_stream_write(struct http_req *r, const char *p, size_t n)
{
    struct http_conn *c = r->conn;
    struct evbuffer *out;

    if (r->replied || !r->streaming || !c || !n || c->abort_ev)
        return;
    out = bufferevent_get_output(c->bev);
    if (r->minor)
        evbuffer_add_printf(out, "%zx\r\n", n);
    evbuffer_add(out, p, n);
    if (r->minor)
        evbuffer_add(out, "\r\n", 2);
    r->bytes_out += n;
    if (output_stalled(c, evbuffer_get_length(out))) {
        /* The client does not keep up: drop it (which cancels the turn), from
         * a fresh callback, since the caller is in the middle of a write. */
        log_msg(LOG_WARN, "http", "%s: %zu bytes of output queued (cap %zu): closing req=%s",
                c->peer, evbuffer_get_length(out), r->srv->cfg.max_write_buffer, r->id);
        r->srv->dropped_total++;
        c->abort_ev = event_new(r->srv->base, -1, 0, conn_abort_cb, c);
        event_active(c->abort_ev, 0, 0);
    }
}

void http_stream_end(struct http_req *r)
{
    if (r->replied || !r->conn)
        return;
    r->replied = 1;
    if (r->minor && !r->conn->abort_ev)
        evbuffer_add(bufferevent_get_output(r->conn->bev), "0\r\n\r\n", 5);
    if (r->minor == 0)
        r->keep_alive = 0;
    finish(r);
}

const char *http_req_body(struct http_req *r, size_t *len)
{
    *len = r->body.len;
    return buf_str(&r->body);
}

const char *http_req_header(struct http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].name_len == n && strncasecmp(r->fields[i].name, name, n) == 0)
            return r->fields[i].value;
    return NULL;
}

/* ---- client keys and principals ------------------------------------------------ */

/* SHA-256 of n bytes of p into out (32 bytes).  A failing digest is a broken library. */
static void sha256(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;

    if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort();
}

/* Hashes each configured key once: requests compare digests, and the
 * principal "key:<16 hex>" names the key without revealing it. */
static void keys_init(struct http_server *s)
{
    const char *const *k = s->cfg.api_keys;
    size_t n = 0;

    while (k && k[n])
        n++;
    s->keys = n ? xcalloc(n, sizeof(*s->keys)) : NULL;
    s->nkeys = n;
    for (size_t i = 0; i < n; i++) {
        struct http_key *key = &s->keys[i];
        int off = snprintf(key->principal, sizeof(key->principal), "key:");
        sha256(k[i], strlen(k[i]), key->digest);
        for (size_t j = 0; j < 8; j++)
            off += snprintf(key->principal + off, sizeof(key->principal) - (size_t)off, "%02x",
                            key->digest[j]);
    }
}

/* The key a request carries: Authorization: Bearer, else x-api-key, else api-key (Azure
 * OpenAI's header); or NULL. */
static const char *given_key(struct http_req *r)
{
    const char *auth = http_req_header(r, "Authorization");
    const char *k;

    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    k = http_req_header(r, "x-api-key");
    return k ? k : http_req_header(r, "api-key");
}

int http__req_authenticate(struct http_req *r)
{
    const struct http_server *s = r->srv;
    struct keyring *kr = r->svc ? r->svc->keyring : NULL;
    const char *given;
    unsigned char d[32];
    const struct http_key *match = NULL;
    struct vkey *vk;

    r->principal[0] = '\0';
    r->auth_status = 401;
    r->auth_msg = NULL;
    if (kr && !keyring_ready(kr)) {
        /* Whether keys are in use is not known yet: nothing passes without one. */
        r->auth_status = 503;
        r->auth_msg = "the gateway is loading its API keys; retry in a moment";
    } else if (!s->nkeys && !keyring_count(kr)) {
        snprintf(r->principal, sizeof(r->principal), "anon");
        return 1;
    }
    given = given_key(r);
    if (!given)
        return 0;
    /* Digests of equal length, compared in constant time, every key compared:
     * the timing reveals neither a key's length nor a prefix nor which one. */
    sha256(given, strlen(given), d);
    for (size_t i = 0; i < s->nkeys; i++)
        if (CRYPTO_memcmp(d, s->keys[i].digest, sizeof(d)) == 0)
            match = &s->keys[i];
    if (match) {
        snprintf(r->principal, sizeof(r->principal), "%s", match->principal);
        return 1;
    }
    /* A virtual key: looked up by its digest (a hash table keyed by a SHA-256 reveals
     * nothing of the secret through timing). */
    vk = keyring_find(kr, d);
    if (!vk)
        return 0;
    if (vk->expires_ms > 0 && vk->expires_ms <= util_wall_ms()) {
        r->auth_msg = "this API key has expired";
        return 0;
    }
    r->vkey = vkey_ref(vk);
    snprintf(r->principal, sizeof(r->principal), "%s", vk->principal);
    return 1;
}

static int is_loopback(const char *host);

int http__req_admin(struct http_req *r, int authed)
{
    const struct http_server *s = r->srv;
    const char *given;
    unsigned char d[32];

    if (s->has_admin) {
        given = given_key(r);
        if (given) {
            sha256(given, strlen(given), d);
            if (CRYPTO_memcmp(d, s->admin_digest, sizeof(d)) == 0) {
                snprintf(r->principal, sizeof(r->principal), "admin");
                return 1;
            }
        }
        http_reply_status(r, GW_EAUTH, 401,
                          "admin key required: send the --admin-key as 'Authorization: Bearer "
                          "<key>'");
        return 0;
    }
    if (!is_loopback(s->host)) {
        http_reply_status(r, GW_EAUTH, 403, "the admin API is disabled: set --admin-key");
        return 0;
    }
    if (!authed) {
        http_reply_status(r, GW_EAUTH, 401,
                          "missing or invalid API key: send it as 'Authorization: Bearer <key>'");
        return 0;
    }
    return 1;
}

int http_req_authorized(const struct http_req *r)
{
    return r->principal[0] != '\0';
}

void http_reply_status(struct http_req *r, enum gw_status code, int status, const char *msg)
{
    struct gw_err err;
    gw_err_set(&err, code, "%s", msg);
    err.http_status = status;
    http_reply_error(r, &err);
}

/* ---- browser guards ------------------------------------------------------- */

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0 ||
        (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* The name part of a Host value ("[::1]:3000" -> "::1"); 0 if malformed. */
static int host_name(const char *v, char *out, size_t n)
{
    size_t len;

    if (*v == '[') {
        len = strcspn(v + 1, "]");
        if (v[1 + len] != ']' || (v[2 + len] && v[2 + len] != ':'))
            return 0;
        v++;
    } else {
        len = strcspn(v, ":");
    }
    if (len == 0 || len >= n)
        return 0;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

/* Is the Host header one we serve?  Loopback names and addresses, the
 * address we listen on, and --allowed-hosts ("name" for any port,
 * "name:port" for that one, "*" for any).  A browser tricked into calling us
 * under another name (DNS rebinding) sends that name. */
static int host_allowed(const struct http_server *s, const char *host)
{
    char name[256];
    const char *p = s->cfg.allowed_hosts, *it;
    size_t len;

    if (!host_name(host, name, sizeof(name)))
        return 0;
    if (is_loopback(name) || (strcmp(name, s->host) == 0 && strcmp(s->host, "0.0.0.0") != 0 &&
                              strcmp(s->host, "::") != 0))
        return 1;
    while (p && list_next(&p, &it, &len))
        if ((len == 1 && *it == '*') || (len == strlen(host) && strncasecmp(it, host, len) == 0) ||
            (len == strlen(name) && strncasecmp(it, name, len) == 0))
            return 1;
    return 0;
}

/* A same-origin request of a page the gateway itself served. */
static int same_origin(const char *origin, const char *host)
{
    return host && strncmp(origin, "http://", 7) == 0 && strcasecmp(origin + 7, host) == 0;
}

static int json_content_type(const char *ct)
{
    size_t n;

    if (!ct)
        return 0;
    n = strcspn(ct, "; \t");
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    /* application/<anything>+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/*
 * Refuses what a web page could make a browser send: another Host name,
 * an Origin not configured (never "null"), and a body that is not JSON (a
 * text/plain or form POST needs no CORS preflight).  SDKs and CLIs send no
 * Origin and JSON bodies, so they never notice.  Returns 1 if it replied.
 */
static int guard(struct http_req *r)
{
    const char *host = http_req_header(r, "Host");
    const char *origin = http_req_header(r, "Origin");
    char msg[400];

    if (host && strcmp(r->path, "/healthz") != 0 && !host_allowed(r->srv, host)) {
        snprintf(msg, sizeof(msg),
                 "host '%.200s' is not served here: add it to --allowed-hosts", host);
        http_reply_status(r, GW_EINVAL, 421, msg);
        return 1;
    }
    http__route_resolve(r);
    if (origin && is_admin(r) && !same_origin(origin, host)) {
        snprintf(msg, sizeof(msg), "origin '%.200s' is not allowed: the admin API serves no "
                 "other origin", origin);
        http_reply_status(r, GW_EAUTH, 403, msg);
        return 1;
    }
    if (origin && !cors_allowed(r->srv, origin) && !same_origin(origin, host)) {
        snprintf(msg, sizeof(msg),
                 "origin '%.200s' is not allowed: add it to --cors-origins", origin);
        http_reply_status(r, GW_EAUTH, 403, msg);
        return 1;
    }
    if ((r->cmd == EVHTTP_REQ_POST || r->cmd == EVHTTP_REQ_PATCH) && r->body.len > 0 &&
        !json_content_type(http_req_header(r, "Content-Type"))) {
        http_reply_status(r, GW_EINVAL, 415, "the request body must be JSON: send it with "
                                        "'Content-Type: application/json'");
        return 1;
    }
    return 0;
}

/* A whole request has been read: serve it. */
static void dispatch(struct http_conn *c)
{
    struct http_req *r = c->req;
    const char *rid = http_req_header(r, "x-request-id");

    c->state = CONN_BUSY;
    evtimer_del(c->timer);
    if (rid && good_request_id(rid))
        snprintf(r->id, sizeof(r->id), "%s", rid);
    if (guard(r))
        return;
    if (r->srv->draining) {
        http_reply_status(r, GW_ERUNTIME, 503, "the gateway is shutting down");
        return;
    }
    http__route_dispatch(r);
}

/* ---- reading a request ---------------------------------------------------- */

/* Replies to a request we could not read whole, then closes (lingering,
 * since the rest of what the client sends cannot be framed). */
static void early_error(struct http_conn *c, int status, const char *msg)
{
    struct gw_err err;

    if (!c->req)
        c->req = req_new(c);
    http__route_resolve(c->req); /* the error in the shape of the path's API */
    c->req->keep_alive = 0;
    c->linger_after = 1;
    c->state = CONN_BUSY;
    evtimer_del(c->timer);
    gw_err_set(&err, status == 413 ? GW_ETOOBIG : GW_EINVAL, "%s", msg);
    err.http_status = status;
    http_reply_error(c->req, &err);
}

static const char *head_error_msg(int rc)
{
    switch (rc) {
    case HTTP1_EHEADERS:
        return "too many header fields";
    case HTTP1_EVERSION:
        return "only HTTP/1.0 and HTTP/1.1 are served";
    case HTTP1_ETE:
        return "only the chunked transfer coding is supported for request bodies";
    default:
        return "malformed HTTP request";
    }
}

/* Takes the head (p[0..n)) into a new request.  0, or it replied. */
static int take_head(struct http_conn *c, const char *p, size_t n)
{
    struct http1_head h;
    struct http_req *r;
    int rc;

    r = c->req = req_new(c);
    r->head = xmalloc(n + 1);
    memcpy(r->head, p, n);
    r->head[n] = '\0';
    rc = http1_parse_head(r->head, n, &h);
    if (h.target) {
        char *t = xstrndup(h.target, h.target_len);
        snprintf(r->method, sizeof(r->method), "%.*s", (int)(h.method_len < 7 ? h.method_len : 7),
                 h.method);
        set_path(r, t);
        free(t);
    }
    if (rc < 0) {
        early_error(c, http1_status(rc), head_error_msg(rc));
        return -1;
    }
    if (method_lookup(h.method, h.method_len, &r->cmd) < 0) {
        early_error(c, 501, "this HTTP method is not served");
        return -1;
    }
    /* Own the fields, NUL-terminated in place (a value ends at OWS or CRLF). */
    r->fields = xmalloc(sizeof(*r->fields) * (h.nfields ? h.nfields : 1));
    memcpy(r->fields, h.fields, sizeof(*r->fields) * h.nfields);
    r->nfields = h.nfields;
    for (size_t i = 0; i < h.nfields; i++)
        ((char *)r->fields[i].value)[r->fields[i].value_len] = '\0';
    ((char *)h.target)[h.target_len] = '\0';
    r->query = strchr(h.target, '?') ? strchr(h.target, '?') + 1 : NULL;
    r->minor = h.minor;
    r->keep_alive = h.keep_alive;
    http__route_resolve(r);
    c->chunked = h.chunked;
    c->body_left = h.has_length ? h.content_length : 0;
    memset(&c->ck, 0, sizeof(c->ck));
    if (h.has_length && h.content_length > c->srv->cfg.max_body) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request body too large: the limit is %zu bytes",
                 c->srv->cfg.max_body);
        early_error(c, 413, msg);
        return -1;
    }
    if (h.expect_continue && (c->chunked || c->body_left))
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

static int read_head(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in), cap = c->srv->cfg.max_headers, end;
    size_t look = len < cap ? len : cap;
    const char *p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);

    if (c->state == CONN_IDLE) {
        c->state = CONN_HEAD;
        conn_arm(c, c->srv->cfg.header_timeout_s);
    }
    end = p ? http1_head_end(p, look) : 0;
    if (!end) {
        if (len >= cap)
            early_error(c, 431, "request header block too large");
        return -1;
    }
    if (take_head(c, p, end))
        return -1;
    evbuffer_drain(in, end);
    c->state = CONN_BODY;
    conn_arm(c, c->srv->cfg.read_timeout_s);
    return 0;
}

/* Moves body bytes from the input into the request.  1 when complete. */
static int read_body(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct http_req *r = c->req;

    while (evbuffer_get_length(in) > 0 && (c->chunked ? !http1_chunked_done(&c->ck)
                                                       : c->body_left > 0)) {
        struct evbuffer_iovec v;
        size_t take;
        long used;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        take = v.iov_len;
        if (!c->chunked) {
            if (take > c->body_left)
                take = (size_t)c->body_left;
            if (buf_add(&r->body, v.iov_base, take)) {
                early_error(c, 413, "request body too large");
                return -1;
            }
            c->body_left -= take;
            evbuffer_drain(in, take);
            continue;
        }
        used = http1_chunked_feed(&c->ck, v.iov_base, take, &r->body);
        if (used < 0) {
            char msg[96];
            if (used == HTTP1_ETOOBIG)
                snprintf(msg, sizeof(msg), "request body too large: the limit is %zu bytes",
                         c->srv->cfg.max_body);
            else
                snprintf(msg, sizeof(msg), "malformed chunked request body");
            early_error(c, http1_status((int)used), msg);
            return -1;
        }
        evbuffer_drain(in, (size_t)used);
    }
    return c->chunked ? http1_chunked_done(&c->ck) : c->body_left == 0;
}

static void conn_read(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    switch (c->state) {
    case CONN_LINGER: {
        uint64_t now = util_now_ms();
        evbuffer_drain(in, evbuffer_get_length(in));
        if (now >= c->linger_end_ms)
            conn_close(c);
        else
            conn_arm(c, LINGER_IDLE_S);
        return;
    }
    case CONN_BUSY:
    case CONN_CLOSING:
        return; /* pipelined: read once the reply is out (watermark bounds it) */
    case CONN_IDLE:
    case CONN_HEAD:
        if (evbuffer_get_length(in) == 0 || read_head(c))
            return;
        /* fall through */
    case CONN_BODY:
        if (read_body(c) == 1)
            dispatch(c);
        return;
    }
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

struct http_server *http_server_new(struct event_base *base, const struct http_config *cfg,
                                    const struct gw_services *svc)
{
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->base = base;
    s->cfg = *cfg;
    s->svc = svc;
    keys_init(s);
    if (cfg->admin_key && *cfg->admin_key) {
        sha256(cfg->admin_key, strlen(cfg->admin_key), s->admin_digest);
        s->has_admin = 1;
    }
    s->cfg.admin_key = NULL; /* only its digest is kept */
    s->spare_fd = -1;
    if (!s->cfg.header_timeout_s)
        s->cfg.header_timeout_s = 10;
    if (!s->cfg.read_timeout_s)
        s->cfg.read_timeout_s = 60;
    if (!s->cfg.write_timeout_s)
        s->cfg.write_timeout_s = 60;
    if (!s->cfg.max_write_buffer)
        s->cfg.max_write_buffer = 4u * 1024 * 1024;
    return s;
}

/*
 * The connection cap by default: raise the descriptor limit to its hard
 * maximum (as redis and nginx do), then leave an eighth of it and 64 more
 * for the runtime pipes, SQLite, image downloads and the log.
 */
static int default_max_connections(void)
{
    struct rlimit rl;
    rlim_t n;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 256;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (want > rl.rlim_cur) {
            struct rlimit up = {want, rl.rlim_max};
            if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                rl.rlim_cur = want;
        }
    }
    n = rl.rlim_cur;
    if (n > 1000000)
        n = 1000000;
    return n > 256 ? (int)(n - n / 8 - 64) : 16;
}

static int bind_listener(struct http_server *s, struct gw_err *err)
{
    struct addrinfo hints, *ai = NULL;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", s->port);
    rc = getaddrinfo(s->host, port, &hints, &ai);
    if (rc != 0 || !ai)
        return gw_err_set(err, GW_EIO, "cannot listen on %s: %s", s->cfg.listen,
                          gai_strerror(rc));
    s->listener = evconnlistener_new_bind(
        s->base, on_accept, s,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 1024, ai->ai_addr,
        (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (!s->listener)
        return gw_err_set(err, GW_EIO, "cannot listen on %s: %s", s->cfg.listen,
                          strerror(errno));
    evconnlistener_set_error_cb(s->listener, on_accept_error);
    return GW_OK;
}

int http_server_start(struct http_server *s, struct gw_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int rc;

    if (parse_listen(s->cfg.listen, s->host, sizeof(s->host), &s->port))
        return gw_err_set(err, GW_EINVAL, "invalid --listen '%s': expected HOST:PORT",
                          s->cfg.listen);
    if (!is_loopback(s->host) && !s->nkeys)
        return gw_err_set(err, GW_EINVAL,
                          "refusing to listen on %s without client API keys: set --api-key "
                          "(or COPILOT_GATEWAY_API_KEY), or listen on 127.0.0.1",
                          s->host);
    if (s->cfg.max_connections <= 0)
        s->cfg.max_connections = default_max_connections();
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    s->accept_retry = evtimer_new(s->base, accept_resume, s);
    if ((rc = bind_listener(s, err)))
        return rc;
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sl) == 0)
        s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    log_msg(LOG_INFO, "http", "at most %d connections", s->cfg.max_connections);
    if (!is_loopback(s->host) && !s->cfg.allowed_hosts)
        log_msg(LOG_WARN, "http",
                "listening on %s: only loopback Host names and %s are served; name the "
                "others with --allowed-hosts",
                s->host, s->host);
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
    struct http_conn *c, *next;

    log_msg(LOG_WARN, "http", "shutdown timeout: %d request(s) still in flight", s->inflight);
    s->drain_done = NULL;
    /* Requests still running end now with an error their client can read. */
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (c->req && c->req->on_shutdown)
            c->req->on_shutdown(c->req);
    }
    if (done)
        done(s->drain_ud);
}

void http_server_drain(struct http_server *s, void (*done)(void *ud), void *ud)
{
    struct timeval tv = {s->cfg.shutdown_timeout_s, 0};
    struct http_conn *c, *next;

    s->draining = 1;
    s->drain_done = done;
    s->drain_ud = ud;
    if (s->listener) {
        evconnlistener_free(s->listener);
        s->listener = NULL;
    }
    /* Idle keep-alive connections close now; the others after their reply. */
    for (c = s->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE && !c->in_cb)
            conn_free(c);
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
    http_server_end_detached(s);
    while (s->conns)
        conn_free(s->conns);
    if (s->drain_timer)
        event_free(s->drain_timer);
    if (s->accept_retry)
        event_free(s->accept_retry);
    if (s->listener)
        evconnlistener_free(s->listener);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    if (s->keys)
        OPENSSL_cleanse(s->keys, s->nkeys * sizeof(*s->keys));
    OPENSSL_cleanse(s->admin_digest, sizeof(s->admin_digest));
    free(s->keys);
    free(s);
}

void http_server_usage(struct http_server *s, const char *key, int status, int64_t input,
                       int64_t output, int64_t cached, double credits)
{
    http_metrics_usage(&s->metrics, key, status, input, output, cached, credits);
}

int http_server_metrics(const struct http_server *s, struct buf *out)
{
    int rc = buf_addf(out,
                      "# TYPE copilot_gateway_connections gauge\n"
                      "copilot_gateway_connections %d\n"
                      "# TYPE copilot_gateway_connections_refused_total counter\n"
                      "copilot_gateway_connections_refused_total %llu\n"
                      "# TYPE copilot_gateway_slow_clients_dropped_total counter\n"
                      "copilot_gateway_slow_clients_dropped_total %llu\n",
                      s->nconns, (unsigned long long)s->refused_total,
                      (unsigned long long)s->dropped_total);
    return rc ? rc : http_metrics_render(&s->metrics, out);
}
