/*
 * http/server.h - the HTTP front: an HTTP/1.1 server on libevent
 * bufferevents (framing in http/http1.h), per-request context, replies
 * (JSON, errors in the API's own shape, SSE streams), the browser guards
 * (Host, Origin, content type), request ids, access log, client API keys and
 * the principal they name, and graceful shutdown.  Routing is the table in
 * http/routes.c (http/router.h): it gives each request its handler, its API
 * dialect (r->api, the error shape) and 404/405/Allow.  Handlers reach what
 * they work with through r->svc (http/services.h), built by main.c.
 *
 * Limits, each answered in the API's error shape: connections
 * (--max-connections; at the limit, or when out of descriptors, a new
 * connection gets a 503 through a reserved descriptor and accepting backs
 * off), the header block (size, 431; --header-timeout-s for all of it, 408),
 * the body (--max-body-bytes, 413 then a lingering close so the client reads
 * it; --read-timeout-s for all of it, 408), output (a client that takes none
 * for --write-timeout-s, or lets --max-write-buffer-bytes pile up, is
 * dropped and its turn cancelled).
 *
 * Ownership: the server owns each struct http_req from the moment a request
 * arrives until its reply is finished or the client is gone; handlers keep a
 * pointer only until then.  When the client goes away the handler's on_gone
 * hook runs once (cancel work there); the request is freed right after.
 * Threading: event-loop thread only.
 */
#ifndef GW_HTTP_SERVER_H
#define GW_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "broker/profile.h"
#include "http/http1.h"
#include "http/router.h"
#include "http/services.h"
#include "util/buf.h"
#include "util/err.h"

struct http_server;

struct http_config {
    const char *listen;       /* HOST:PORT; port 0 picks a free port */
    size_t max_body;          /* request body cap in bytes */
    size_t max_headers;       /* request header block cap in bytes */
    int read_timeout_s;       /* to receive a whole request */
    int shutdown_timeout_s;   /* how long in-flight requests may finish on SIGTERM */
    const char *const *api_keys; /* NULL-terminated; NULL/empty = no client auth */
    const char *admin_key;    /* the key of the admin routes, or NULL (see http__req_admin) */
    const char *cors_origins; /* "https://a,https://b" or NULL: no CORS headers at all */
    const char *allowed_hosts; /* extra Host names besides loopback ones, or NULL */
    int max_connections;      /* open client connections at most (0: from RLIMIT_NOFILE) */
    int header_timeout_s;     /* to receive a whole header block */
    int write_timeout_s;      /* a client that takes no output this long is dropped */
    size_t max_write_buffer;  /* output queued for one connection before it is dropped */
};

struct http_conn;
struct vkey;

struct http_req {
    struct http_server *srv;
    const struct gw_services *svc; /* what handlers work with (borrowed) */
    struct http_conn *conn;    /* NULL once the client is gone */
    enum evhttp_cmd_type cmd;  /* EVHTTP_REQ_GET, ... */
    char id[72];               /* x-request-id */
    char peer[48];             /* the client's address */
    char method[8];
    char path[256];            /* without query, without the /v1 prefix */
    /*
     * Who is asking: "anon" when no client keys are configured, "key:<16 hex
     * of SHA-256(key)>" for the --api-key the request carries; "" while not
     * authenticated (broker/profile.h).
     */
    char principal[PRINCIPAL_MAX];
    struct vkey *vkey;         /* the virtual key it authenticated with (a reference), or NULL */
    int auth_status;           /* not authenticated: 401, or 503 while keys load */
    const char *auth_msg;      /* ... and why, or NULL (the usual "missing or invalid") */
    const struct http_route *rt; /* the route of the path (http/routes.c), or NULL */
    char param[256];           /* the route pattern's capture ({id}, {*}) */
    uint64_t start_ms;
    int status;
    size_t bytes_out;
    int replied;               /* final reply sent (or stream ended) */
    int streaming;             /* stream started */
    int body_nul;              /* the body buffer got its terminating NUL */
    int resolved;              /* http__route_resolve() ran */
    enum http_api api;         /* error shape: the route's (http__route_resolve) */
    void (*on_gone)(struct http_req *r); /* handler hook */
    /* The shutdown timeout passed: end the reply now, with an error (a stream
     * with its API's error event and terminator).  Optional. */
    void (*on_shutdown)(struct http_req *r);
    void *hdata;               /* handler data */
    const char *query;         /* what follows '?' in the target, or NULL */
    struct buf body;
    struct buf out_headers;    /* "Name: value\r\n" lines added by http_req_add_header() */
    char *head;                /* the request head (fields point into it) */
    struct http1_field *fields;
    size_t nfields;
    int minor;                 /* HTTP/1.<minor> */
    int keep_alive;
};

/*
 * Work that outlives its request (a background response).  The server keeps
 * it in a list (found again by id), a graceful shutdown waits for it like
 * for an in-flight request, and http_server_end_detached() ends what still
 * runs by calling its end(), which must call http_server_undetach().
 */
struct http_detached {
    struct http_detached *next, *prev;
    const char *id;                       /* borrowed from the owner */
    void (*end)(struct http_detached *d); /* end it now: the server is stopping */
};

/* svc is borrowed and must outlive the server. */
struct http_server *http_server_new(struct event_base *base, const struct http_config *cfg,
                                    const struct gw_services *svc);
int http_server_start(struct http_server *s, struct gw_err *err) WARN_UNUSED;
int http_server_port(const struct http_server *s);
const char *http_server_host(const struct http_server *s);
/* Stops accepting; done(ud) runs when every in-flight request has finished
 * or the shutdown timeout passed. */
void http_server_drain(struct http_server *s, void (*done)(void *ud), void *ud);
/* Ends http_server_end_detached() first.  NULL-safe. */
void http_server_free(struct http_server *s);

void http_server_detach(struct http_server *s, struct http_detached *d);
void http_server_undetach(struct http_server *s, struct http_detached *d);
struct http_detached *http_server_find_detached(struct http_server *s, const char *id);
/* Ends every detached work still running (its end()). */
void http_server_end_detached(struct http_server *s);

/* Request body (NUL-terminated, owned by the request) */
const char *http_req_body(struct http_req *r, size_t *len);
/* A request header's value (NUL-terminated, owned by the request), or NULL. */
const char *http_req_header(struct http_req *r, const char *name);
/* Adds a header to the reply (before it starts). */
void http_req_add_header(struct http_req *r, const char *name, const char *value);
/* 1 if the request carries a valid client API key, or if none is configured. */
int http_req_authorized(const struct http_req *r);

/* Replies.  Each takes the request to its end exactly once. */
void http_reply_json(struct http_req *r, int status, json_t *body /* stolen */);
void http_reply_error(struct http_req *r, const struct gw_err *err);
void http_reply_empty(struct http_req *r, int status);
void http_reply_text(struct http_req *r, int status, const char *content_type, const char *p,
                     size_t n);
/* An error reply of status with code and message (a shorthand of http_reply_error). */
void http_reply_status(struct http_req *r, enum gw_status code, int status, const char *msg);
/* Server-sent events: start (headers, 200), write chunks (flushed), end. */
void http_stream_start(struct http_req *r);
void http_stream_write(struct http_req *r, const char *p, size_t n);
void http_stream_end(struct http_req *r);

/* Appends the connection and request counters and histograms (Prometheus text). */
int http_server_metrics(const struct http_server *s, struct buf *out) WARN_UNUSED;
/* Counts a finished request's usage in /metrics (http/metrics.h http_metrics_usage()). */
void http_server_usage(struct http_server *s, const char *key, int status, int64_t input,
                       int64_t output, int64_t cached, double credits);

/* ---- internal to http/ ------------------------------------------------------ */

/*
 * Authenticates r by its Authorization: Bearer or x-api-key header against
 * the configured keys (constant time) and sets r->principal.  1 if the
 * request may act as that principal (always, without keys), 0 if not.
 */
int http__req_authenticate(struct http_req *r);
/* Finds r's route by its path and sets r->rt, r->param and r->api (once). */
void http__route_resolve(struct http_req *r);
/* Serves a whole request that passed the browser guards: OPTIONS, 401, 404, 405, or its handler. */
void http__route_dispatch(struct http_req *r);

/*
 * May r use an admin route (ROUTE_ADMIN)?  authed is what
 * http__req_authenticate() said.  With an admin key configured the request
 * must carry it (Authorization: Bearer or x-api-key; a client key is not
 * enough: 401 "admin key required"); without one, a gateway listening beyond
 * loopback refuses (403 "the admin API is disabled"), and one on loopback
 * asks what every route asks (authed, else 401).  1 if allowed (principal
 * "admin" for the admin key), 0 if it replied.
 */
int http__req_admin(struct http_req *r, int authed);

/*
 * The warm-up endpoint: a second listener on 127.0.0.1:<ephemeral> that
 * answers POST /v1/chat/completions instantly (bearer `key` required), so a
 * new runtime process can run its first, expensive turn locally without a
 * premium request.  Returns the base URL ("http://127.0.0.1:N/v1") in url.
 */
struct evhttp *http_warmup_listen(struct event_base *base, const char *key, char *url,
                                  size_t urllen, struct gw_err *err);

#endif
