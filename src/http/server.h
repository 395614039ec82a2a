/*
 * http/server.h - the HTTP front: an HTTP/1.1 server on libevent
 * bufferevents (framing in http/http1.h), routing, per-request context,
 * replies (JSON, errors in the API's own shape, SSE streams), the browser
 * guards (Host, Origin, content type), request ids, access log, client API
 * keys and graceful shutdown.
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

#include "api/models.h"
#include "http/http1.h"
#include "broker/broker.h"
#include "util/buf.h"
#include "util/err.h"

struct http_server;
struct fetch;
struct store;

struct http_config {
    const char *listen;       /* HOST:PORT; port 0 picks a free port */
    size_t max_body;          /* request body cap in bytes */
    size_t max_headers;       /* request header block cap in bytes */
    int read_timeout_s;       /* to receive a whole request */
    int shutdown_timeout_s;   /* how long in-flight requests may finish on SIGTERM */
    const char *const *api_keys; /* NULL-terminated; NULL/empty = no client auth */
    const char *anthropic_default_model; /* for claude-* ids the catalogue lacks, or NULL */
    const char *model_aliases;   /* "FROM=TO,FROM=TO" or NULL */
    int image_fetch_private;  /* image URLs may resolve to private/loopback addresses */
    struct store *responses;  /* stored Responses API responses (borrowed; never NULL) */
    int64_t responses_ttl_s;  /* stored responses older than this are deleted */
    int64_t responses_max;    /* at most this many stored responses (0: no cap) */
    const char *cors_origins; /* "https://a,https://b" or NULL: no CORS headers at all */
    const char *allowed_hosts; /* extra Host names besides loopback ones, or NULL */
    int max_connections;      /* open client connections at most (0: from RLIMIT_NOFILE) */
    int header_timeout_s;     /* to receive a whole header block */
    int write_timeout_s;      /* a client that takes no output this long is dropped */
    size_t max_write_buffer;  /* output queued for one connection before it is dropped */
    int64_t max_input_tokens; /* largest conversation (estimate) when the model's is unknown */
};

enum http_api { HTTP_API_OPENAI = 0, HTTP_API_ANTHROPIC };

struct http_conn;

struct http_req {
    struct http_server *srv;
    struct http_conn *conn;    /* NULL once the client is gone */
    enum evhttp_cmd_type cmd;  /* EVHTTP_REQ_GET, ... */
    char id[72];               /* x-request-id */
    char peer[48];             /* the client's address */
    char method[8];
    char path[256];            /* without query, without the /v1 prefix */
    uint64_t start_ms;
    int status;
    size_t bytes_out;
    int replied;               /* final reply sent (or stream ended) */
    int streaming;             /* stream started */
    int body_nul;              /* the body buffer got its terminating NUL */
    enum http_api api;         /* error shape */
    const char *route;         /* metrics label: a constant route name */
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

struct http_server *http_server_new(struct event_base *base, const struct http_config *cfg,
                                    struct broker *b, struct models *m);
int http_server_start(struct http_server *s, struct gw_err *err) WARN_UNUSED;
int http_server_port(const struct http_server *s);
const char *http_server_host(const struct http_server *s);
/* Stops accepting; done(ud) runs when every in-flight request has finished
 * or the shutdown timeout passed. */
void http_server_drain(struct http_server *s, void (*done)(void *ud), void *ud);
void http_server_free(struct http_server *s);
struct broker *http_server_broker(struct http_server *s);
struct event_base *http_server_base(struct http_server *s);
const char *http_server_anthropic_default(const struct http_server *s);
const char *http_server_model_aliases(const struct http_server *s);
struct models *http_server_models(struct http_server *s);
size_t http_server_max_body(const struct http_server *s);
/* The fetcher image URLs are downloaded with (borrowed; NULL until set). */
void http_server_set_fetch(struct http_server *s, struct fetch *f);
struct fetch *http_server_fetch(struct http_server *s);
int http_server_image_fetch_private(const struct http_server *s);
/* --max-input-tokens: the largest conversation (estimated tokens) sent to the
 * runtime, and the limit for a model whose context window is unknown. */
int64_t http_server_max_input_tokens(const struct http_server *s);
struct store *http_server_responses(struct http_server *s);
int64_t http_server_responses_ttl_s(const struct http_server *s);
int64_t http_server_responses_max(const struct http_server *s);
/* Work that outlives its request (a background response) holds the server:
 * a graceful shutdown waits for it like for an in-flight request. */
void http_server_hold(struct http_server *s);
void http_server_release(struct http_server *s);

/* Request body (NUL-terminated, owned by the request) */
const char *http_req_body(struct http_req *r, size_t *len);
/* A request header's value (NUL-terminated, owned by the request), or NULL. */
const char *http_req_header(struct http_req *r, const char *name);
/* Adds a header to the reply (before it starts). */
void http_req_add_header(struct http_req *r, const char *name, const char *value);
/* 1 if the request carries a valid client API key, or if none is configured. */
int http_req_authorized(struct http_req *r);

/* Replies.  Each takes the request to its end exactly once. */
void http_reply_json(struct http_req *r, int status, json_t *body /* stolen */);
void http_reply_error(struct http_req *r, const struct gw_err *err);
void http_reply_empty(struct http_req *r, int status);
void http_reply_text(struct http_req *r, int status, const char *content_type, const char *p,
                     size_t n);
/* Server-sent events: start (headers, 200), write chunks (flushed), end. */
void http_stream_start(struct http_req *r);
void http_stream_write(struct http_req *r, const char *p, size_t n);
void http_stream_end(struct http_req *r);

/* Route handlers (http/routes.c) */
void http_route_chat(struct http_req *r);
void http_route_messages(struct http_req *r);
void http_route_count_tokens(struct http_req *r);
void http_route_models(struct http_req *r, const char *id);
void http_route_health(struct http_req *r);
void http_route_ready(struct http_req *r);
void http_route_metrics(struct http_req *r);
/* POST /v1/responses; GET/DELETE /v1/responses/{id}; POST /v1/responses/{id}/cancel;
 * GET /v1/responses/{id}/input_items (http/routes.c).  rest is what follows
 * "/responses" in the path ("" or "/{id}..."). */
void http_route_responses(struct http_req *r, const char *rest);
/* Ends the background responses still running (the server is being freed). */
void http_routes_shutdown(struct http_server *s);
/* Appends the request counters and histograms (Prometheus text). */
int http_server_metrics(const struct http_server *s, struct buf *out) WARN_UNUSED;

/*
 * The warm-up endpoint: a second listener on 127.0.0.1:<ephemeral> that
 * answers POST /v1/chat/completions instantly (bearer `key` required), so a
 * new runtime process can run its first, expensive turn locally without a
 * premium request.  Returns the base URL ("http://127.0.0.1:N/v1") in url.
 */
struct evhttp *http_warmup_listen(struct event_base *base, const char *key, char *url,
                                  size_t urllen, struct gw_err *err);

#endif
