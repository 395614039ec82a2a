/* Outgoing HTTP GETs driven by libcurl's multi-socket API on our event_base. */
#include "util/fetch.h"

#include <arpa/inet.h>
#include <assert.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define FETCH_MAX_REDIRS 3L

/* One socket curl asked us to watch (curl_multi_assign()ed to the socket). */
struct fetch_sock {
    struct fetch *f;
    curl_socket_t fd;
    struct event *ev;
    struct fetch_sock *prev, *next;
};

/* One transfer. */
struct fetch_req {
    struct fetch *f;
    CURL *easy;
    struct curl_slist *headers;
    struct buf body;
    int too_big;
    char host[256];   /* for error messages: never the userinfo, path or query */
    char *secrets[3]; /* user, password, query: scrubbed from curl's messages */
    char errbuf[CURL_ERROR_SIZE];
    int public_only;
    int refused;       /* public_only turned down an address (open_socket()) */
    fetch_cb cb;       /* fetch_get() */
    fetch_resp_cb rcb; /* fetch_get_ex() */
    void *ud;
    struct fetch_req *prev, *next;
};

struct fetch {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct fetch_req *reqs;
    struct fetch_sock *socks;
    int dispatching; /* > 0 while callbacks run: fetch_free() must wait */
    int dying;       /* fetch_free() was called during a callback */
    /* fetch__treat_as_public(); "" outside tests */
    char test_public[INET6_ADDRSTRLEN];
};

/* curl_global_init() is process-wide; count users so the last fetch_free() cleans up. */
static unsigned global_users;

static void req_free(struct fetch_req *r)
{
    if (!r)
        return;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    buf_release(&r->body);
    for (size_t i = 0; i < sizeof(r->secrets) / sizeof(r->secrets[0]); i++)
        free(r->secrets[i]);
    free(r);
}

static void req_unlink(struct fetch_req *r)
{
    struct fetch *f = r->f;

    if (r->prev)
        r->prev->next = r->next;
    else
        f->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void sock_free(struct fetch_sock *s)
{
    struct fetch *f = s->f;

    if (s->prev)
        s->prev->next = s->next;
    else
        f->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    event_free(s->ev);
    free(s);
}

/* Drops every transfer and the multi handle without calling anyone back. */
static void fetch_destroy(struct fetch *f)
{
    while (f->reqs) {
        struct fetch_req *r = f->reqs;
        req_unlink(r);
        curl_multi_remove_handle(f->multi, r->easy);
        req_free(r);
    }
    curl_multi_cleanup(f->multi);
    /* Sockets curl never told us to remove (it may skip that on cleanup). */
    while (f->socks)
        sock_free(f->socks);
    event_free(f->timer);
    free(f);
    if (global_users && --global_users == 0)
        curl_global_cleanup();
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct fetch_req *r = ud;
    size_t n = size * nmemb;

    if (buf_add(&r->body, ptr, n) != GW_OK) {
        r->too_big = 1;
        return 0; /* anything but n aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* curl's message, unless it quotes a secret part of the URL; then the generic one. */
static const char *safe_errmsg(const struct fetch_req *r, CURLcode rc)
{
    const char *msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);

    for (size_t i = 0; i < sizeof(r->secrets) / sizeof(r->secrets[0]); i++)
        if (r->secrets[i] && *r->secrets[i] && strstr(msg, r->secrets[i]))
            return curl_easy_strerror(rc);
    return msg;
}

/* Calls whichever callback r has: exactly one of status/resp and err. */
static void req_report(struct fetch_req *r, const struct fetch_resp *resp, const struct gw_err *err)
{
    if (r->rcb)
        r->rcb(r->ud, resp, err);
    else if (resp)
        r->cb(r->ud, resp->status, resp->body, resp->len, NULL);
    else
        r->cb(r->ud, 0, NULL, 0, err);
}

static void req_finish(struct fetch_req *r, CURLcode rc)
{
    struct gw_err err;
    long status = 0;

    if (rc == CURLE_OK) {
        struct fetch_resp resp = {0};
        char *ctype = NULL;

        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
        if (curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ctype) == CURLE_OK)
            resp.content_type = ctype;
        resp.status = (int)status;
        resp.body = buf_str(&r->body);
        resp.len = r->body.len;
        req_report(r, &resp, NULL);
        return;
    }
    if (r->refused && (rc == CURLE_COULDNT_CONNECT || rc == CURLE_ABORTED_BY_CALLBACK))
        gw_err_set(&err, GW_EINVAL,
                   "request to '%s' refused: it resolves or redirects to a private or local "
                   "address",
                   r->host);
    else if (r->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        gw_err_set(&err, GW_ETOOBIG, "response from '%s' is larger than %zu bytes", r->host,
                   r->body.max);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        gw_err_set(&err, GW_ETIMEDOUT, "request to '%s' timed out", r->host);
    else
        gw_err_set(&err, GW_EUPSTREAM, "request to '%s' failed: %s", r->host, safe_errmsg(r, rc));
    log_msg(LOG_DEBUG, "fetch", "%s", err.msg);
    req_report(r, NULL, &err);
}

/* Reports finished transfers.  Returns 1 if f was freed by a callback. */
static int check_done(struct fetch *f)
{
    CURLMsg *msg;
    int left;

    f->dispatching++;
    while (!f->dying && (msg = curl_multi_info_read(f->multi, &left)) != NULL) {
        struct fetch_req *r = NULL;
        CURLcode rc;

        if (msg->msg != CURLMSG_DONE)
            continue;
        rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        assert(r && r->easy == msg->easy_handle);
        /* msg is invalid once the handle is removed. */
        curl_multi_remove_handle(f->multi, r->easy);
        req_unlink(r);
        req_finish(r, rc);
        req_free(r);
    }
    f->dispatching--;
    if (f->dying && f->dispatching == 0) {
        fetch_destroy(f);
        return 1;
    }
    return 0;
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct fetch *f = arg;
    int action = 0, running;

    if (what & EV_READ)
        action |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    curl_multi_socket_action(f->multi, fd, action, &running);
    check_done(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct fetch *f = arg;
    int running;

    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

/* CURLMOPT_TIMERFUNCTION: only (re)arm our timer; never drive curl from here. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct fetch *f = userp;
    struct timeval tv;

    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* CURLMOPT_SOCKETFUNCTION: mirror curl's interest in a socket onto an event. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct fetch *f = userp;
    struct fetch_sock *s = socketp;
    short flags = EV_PERSIST;

    if (what == CURL_POLL_REMOVE) {
        /* curl forgets its socketp for fd itself after this call. */
        if (s)
            sock_free(s);
        return 0;
    }
    if (!s) {
        s = xcalloc(1, sizeof(*s));
        s->f = f;
        s->fd = fd;
        s->ev = event_new(f->base, fd, 0, on_socket_event, f);
        if (!s->ev) {
            free(s);
            return -1;
        }
        s->next = f->socks;
        if (f->socks)
            f->socks->prev = s;
        f->socks = s;
        curl_multi_assign(f->multi, fd, s);
    }
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        flags |= EV_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        flags |= EV_WRITE;
    event_del(s->ev);
    if (event_assign(s->ev, f->base, fd, flags, on_socket_event, f) != 0 ||
        event_add(s->ev, NULL) != 0)
        return -1;
    return 0;
}

struct fetch *fetch_new(struct event_base *base)
{
    struct fetch *f;

    if (global_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(LOG_ERROR, "fetch", "cannot initialise libcurl");
        return NULL;
    }
    global_users++;
    f = xcalloc(1, sizeof(*f));
    f->base = base;
    f->timer = evtimer_new(base, on_timer, f);
    f->multi = curl_multi_init();
    if (!f->timer || !f->multi) {
        log_msg(LOG_ERROR, "fetch", "cannot create the libcurl multi handle");
        fetch_destroy(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

void fetch_free(struct fetch *f)
{
    if (!f)
        return;
    if (f->dispatching) {
        /* Called from one of our callbacks: check_done() frees f on the way out. */
        f->dying = 1;
        return;
    }
    fetch_destroy(f);
}

void fetch_cancel(struct fetch *f, void *ud)
{
    struct fetch_req *r, *next;

    if (!f)
        return;
    for (r = f->reqs; r; r = next) {
        next = r->next;
        if (r->ud != ud)
            continue;
        req_unlink(r);
        curl_multi_remove_handle(f->multi, r->easy);
        req_free(r);
    }
}

/* ---- public_only: which addresses a request may connect to ---- */

/* IPv4 ranges that are not globally reachable (RFC 6890 and friends), host order. */
static const struct {
    uint32_t net, mask;
} v4_denied[] = {
    {0x00000000, 0xff000000}, /* 0/8: "this network", 0.0.0.0 */
    {0x0a000000, 0xff000000}, /* 10/8: private */
    {0x64400000, 0xffc00000}, /* 100.64/10: carrier-grade NAT */
    {0x7f000000, 0xff000000}, /* 127/8: loopback */
    {0xa9fe0000, 0xffff0000}, /* 169.254/16: link-local (cloud metadata) */
    {0xac100000, 0xfff00000}, /* 172.16/12: private */
    {0xc0000000, 0xffffff00}, /* 192.0.0/24: IETF protocol assignments */
    {0xc0a80000, 0xffff0000}, /* 192.168/16: private */
    {0xc6120000, 0xfffe0000}, /* 198.18/15: benchmarking */
    {0xe0000000, 0xf0000000}, /* 224/4: multicast */
    {0xf0000000, 0xf0000000}, /* 240/4: reserved, 255.255.255.255 */
};

static int v4_is_public(const unsigned char *b)
{
    uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];

    for (size_t i = 0; i < sizeof(v4_denied) / sizeof(v4_denied[0]); i++)
        if ((a & v4_denied[i].mask) == v4_denied[i].net)
            return 0;
    return 1;
}

static int v6_is_public(const unsigned char *b)
{
    static const unsigned char zero[12], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
                                         nat64[12] = {0, 0x64, 0xff, 0x9b};

    /* ::/96 holds ::, ::1 and the deprecated v4-compatible form. */
    if (memcmp(b, zero, 12) == 0)
        return 0;
    /* Forms that carry an IPv4 address: judge that address. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_is_public(b + 12);
    if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16: 6to4 */
        return v4_is_public(b + 2);
    /* 64:ff9b:1::/48: local-use NAT64 */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1)
        return 0;
    if ((b[0] & 0xfe) == 0xfc) /* fc00::/7: unique local */
        return 0;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10: link-local */
        return 0;
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) /* fec0::/10: old site-local */
        return 0;
    if (b[0] == 0xff) /* ff00::/8: multicast */
        return 0;
    return 1;
}

int fetch_addr_is_public(const struct sockaddr *sa)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_is_public((const unsigned char *)&in->sin_addr.s_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return v6_is_public(in6->sin6_addr.s6_addr);
    }
    return 0;
}

/* public_only's verdict on sa: public, or the one address a test declared public. */
static int peer_allowed(const struct fetch_req *r, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "";

    if (fetch_addr_is_public(sa))
        return 1;
    if (!r->f->test_public[0])
        return 0;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    return ip[0] && strcmp(ip, r->f->test_public) == 0;
}

void fetch__treat_as_public(struct fetch *f, const char *ip)
{
    snprintf(f->test_public, sizeof(f->test_public), "%s", ip ? ip : "");
}

/*
 * CURLOPT_OPENSOCKETFUNCTION: curl calls it for every connection attempt,
 * after name resolution and before connect(), redirects and every address
 * of a multi-homed host included.  Refusing makes curl try the next address
 * or fail with CURLE_COULDNT_CONNECT.
 */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct fetch_req *r = clientp;

    if (purpose != CURLSOCKTYPE_IPCXN || (r->public_only && !peer_allowed(r, &a->addr))) {
        r->refused = 1;
        log_msg(LOG_DEBUG, "fetch", "refusing a private or local address for '%s'", r->host);
        return CURL_SOCKET_BAD;
    }
    /* Close-on-exec: the runtime child must not inherit our connections. */
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/*
 * CURLOPT_PREREQFUNCTION: runs before every request is sent, on a new or a
 * reused connection.  It catches what open_socket() cannot see: a redirect
 * that curl serves on a connection another transfer left in the multi
 * handle's cache (curl ignores CURLOPT_FRESH_CONNECT when following one).
 */
static int check_peer(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                      int local_port)
{
    struct fetch_req *r = clientp;
    struct sockaddr_in6 in6 = {0};
    struct sockaddr_in in = {0};
    int ok = 0;

    if (inet_pton(AF_INET, primary_ip, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        ok = peer_allowed(r, (struct sockaddr *)&in);
    } else if (inet_pton(AF_INET6, primary_ip, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        ok = peer_allowed(r, (struct sockaddr *)&in6);
    }
    if (ok)
        return CURL_PREREQFUNC_OK;
    r->refused = 1;
    log_msg(LOG_DEBUG, "fetch", "refusing a connection to a private or local address for '%s'",
            r->host);
    return CURL_PREREQFUNC_ABORT;
}

/*
 * Checks that url is an absolute http(s) URL and keeps its host for messages
 * and its user, password and query as strings to scrub from curl's errors.
 */
static int parse_url(struct fetch_req *r, const char *url)
{
    static const CURLUPart secret_parts[] = {CURLUPART_USER, CURLUPART_PASSWORD, CURLUPART_QUERY};
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = GW_OK;

    if (!u)
        return GW_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = GW_EINVAL;
        goto out;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = GW_EINVAL;
        goto out;
    }
    snprintf(r->host, sizeof(r->host), "%s", host);
    for (size_t i = 0; i < sizeof(secret_parts) / sizeof(secret_parts[0]); i++) {
        char *part = NULL;
        if (curl_url_get(u, secret_parts[i], &part, CURLU_URLDECODE) == CURLUE_OK && part)
            r->secrets[i] = xstrdup(part);
        curl_free(part);
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int add_header(struct fetch_req *r, const char *line)
{
    struct curl_slist *l = curl_slist_append(r->headers, line);

    if (!l)
        return GW_ENOMEM;
    r->headers = l;
    return GW_OK;
}

static int setup_headers(struct fetch_req *r, const struct fetch_opts *o)
{
    for (size_t i = 0; o->headers && o->headers[i]; i++)
        if (add_header(r, o->headers[i]))
            return GW_ENOMEM;
    if (o->accept) {
        struct buf line;
        int rc;

        buf_init(&line, BUF_MAX_SMALL);
        rc = buf_addf(&line, "Accept: %s", o->accept);
        if (!rc)
            rc = add_header(r, buf_str(&line));
        buf_release(&line);
        if (rc)
            return rc == GW_ETOOBIG ? GW_EINVAL : rc;
    }
    return GW_OK;
}

/* Socket set-up for every request; with public_only, every connection of
 * the transfer is also new, checked, and not kept. */
static void setup_public_only(struct fetch_req *r)
{
    CURL *e = r->easy;

    /* Every request opens its sockets here: close-on-exec for all of them. */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    if (!r->public_only)
        return;
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, check_peer);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
    /*
     * A connection another request opened to an address we would refuse
     * must not be reused (check_peer() also catches it on redirects), nor
     * ours by a later request.  Through a proxy
     * open_socket() would judge the proxy's address instead of the target's.
     * NEEDSWORK: deployments that reach the internet only through a proxy
     * cannot fetch public_only URLs.
     */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, "");
}

static int setup_easy(struct fetch_req *r, const char *url, const struct fetch_opts *o)
{
    CURL *e = r->easy;
    int timeout_ms = o->timeout_ms;
    int rc = setup_headers(r, o);

    if (rc)
        return rc;
    if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return GW_EINVAL;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 30000));
    /*
     * NEEDSWORK: curl keeps a custom Authorization header to the original host
     * on redirect, but other key headers (api-key, x-api-key) follow a
     * redirect anywhere.  Consider refusing cross-host redirects.
     */
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, FETCH_MAX_REDIRS);
    /* Refuses early when Content-Length says too much; write_cb catches the rest. */
    if (r->body.max > 0 && r->body.max < (size_t)INT64_MAX)
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->body.max);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "copilot-gateway");
    if (r->headers)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    setup_public_only(r);
    return GW_OK;
}

/* Starts a transfer reporting to cb or rcb (one of them set). */
static int start(struct fetch *f, const char *url, const struct fetch_opts *o, fetch_cb cb,
                 fetch_resp_cb rcb, void *ud)
{
    struct fetch_req *r;
    int rc;

    if (!f || f->dying || !url || !(cb || rcb))
        return GW_EINVAL;
    r = xcalloc(1, sizeof(*r));
    r->f = f;
    r->cb = cb;
    r->rcb = rcb;
    r->ud = ud;
    r->public_only = o->public_only;
    buf_init(&r->body, o->max_body);
    rc = parse_url(r, url);
    if (rc)
        goto fail;
    r->easy = curl_easy_init();
    if (!r->easy) {
        rc = GW_ENOMEM;
        goto fail;
    }
    rc = setup_easy(r, url, o);
    if (rc)
        goto fail;
    /* Only arms our timer (timer_cb); the transfer starts from the loop. */
    if (curl_multi_add_handle(f->multi, r->easy) != CURLM_OK) {
        rc = GW_EIO;
        goto fail;
    }
    r->next = f->reqs;
    if (f->reqs)
        f->reqs->prev = r;
    f->reqs = r;
    return GW_OK;
fail:
    req_free(r);
    return rc;
}

int fetch_get(struct fetch *f, const char *url, const char *const *headers, int timeout_ms,
              size_t max_body, fetch_cb cb, void *ud)
{
    struct fetch_opts o = {.headers = headers, .timeout_ms = timeout_ms, .max_body = max_body};

    return start(f, url, &o, cb, NULL, ud);
}

int fetch_get_ex(struct fetch *f, const char *url, const struct fetch_opts *o, fetch_resp_cb cb,
                 void *ud)
{
    static const struct fetch_opts defaults;

    return start(f, url, o ? o : &defaults, NULL, cb, ud);
}
