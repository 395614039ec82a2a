/*
 * http/flow.h - the one flow of a model request, whatever its API, and the
 * API dialects it calls.
 *
 * A model request (POST /v1/chat/completions, /v1/messages, /v1/responses)
 * goes: parse the body (the dialect) -> the dialect's load (a stored
 * previous_response_id chain) -> X-Session-Id pin, --model-alias ->
 * count image URLs -> the model exists (catalogue) and the conversation fits
 * its context window -> download image URLs -> the dialect's before_turn
 * (a stored response's first row) -> broker turn, as the request's
 * principal -> deltas streamed through the dialect -> the dialect's
 * after_turn (the stored response's outcome) -> its stream's last events, or
 * its final object -> one reply.  load, before_turn and after_turn may wait
 * for the store: the client may leave meanwhile (on_gone frees the flow,
 * whose dialect cancels what it waits for).  Cheap checks come first: the
 * key, the body size and the browser guards were checked by the server, and
 * no image is fetched for a request that fails a check.
 *
 * A dialect is a const struct dialect_ops: it parses the body into the
 * flow's conv and its own state (f->st, which only the dialect reads and
 * frees), and writes the stream's events and the final object, all with the
 * pure translators of src/api/.  The request's error shape is r->api, set
 * by its route.
 *
 * Ownership: the flow owns itself from http_flow_start() until its reply is
 * done (or, detached, until its turn ends); flow_free() ends it.
 * Threading: event-loop thread only.
 */
#ifndef GW_HTTP_FLOW_H
#define GW_HTTP_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/conv.h"
#include "http/server.h"
#include "keys/prices.h"
#include "util/buf.h"
#include "util/err.h"

struct flow;
struct flow_image;

/*
 * One API dialect.  Stream writers append complete SSE events to out and
 * return 0 or a GW_E* code (out is then dropped).  Optional members may be
 * NULL.
 */
struct dialect_ops {
    const char *id_prefix;   /* of the answer's id: "chatcmpl-", "msg_", "resp_" */
    const char *input_param; /* the request's conversation field: "messages", "input" */
    /* Parses body into f->conv and f->st, and sets f->stream.  0, or a GW_E*
     * code with err (f->st may be set: free_state runs anyway). */
    int (*parse)(struct flow *f, const char *body, size_t len, struct gw_err *err);
    void (*free_state)(void *st);
    int (*stream_start)(struct flow *f, struct buf *out);
    int (*text)(struct flow *f, struct buf *out, const char *s, size_t n);
    int (*reasoning)(struct flow *f, struct buf *out, const char *s, size_t n);
    /* Optional: an agent's progress line (broker.h turn_sink.progress); NULL: as
     * reasoning. */
    int (*progress)(struct flow *f, struct buf *out, const char *s, size_t n);
    int (*tool_call)(struct flow *f, struct buf *out, size_t index, const char *id,
                     const char *name, const char *args, size_t n);
    /* Optional: a keep-alive event every PING_S seconds while streaming. */
    int (*ping)(struct flow *f, struct buf *out);
    /* The turn ended (ok or not) inside an open stream: its closing events. */
    int (*stream_end)(struct flow *f, struct buf *out, const struct turn_result *res);
    /* The turn ended, not streamed: the 200 body (new reference), or NULL and
     * *err for an error reply.  Also runs for a detached flow (f->r NULL),
     * whose body is dropped. */
    json_t *(*answer)(struct flow *f, const struct turn_result *res, struct gw_err *err);
    /* Optional: the request parameter naming image (msg, part) for an error;
     * by default input_param. */
    void (*image_param)(struct flow *f, size_t msg, size_t part, char *out, size_t n);
    /*
     * Optional, asynchronous steps (a stored response's reads and writes).
     * Each returns a negative GW_E* code with err (the request fails), 0
     * (nothing to wait for: the flow goes on), or 1: the dialect calls the
     * named continuation later, never inside the call.  What the dialect
     * waits for it cancels in free_state (a client gone, a shutdown).
     */
    /* After parse, which then may leave f->conv NULL: builds it; flow_loaded(). */
    int (*load)(struct flow *f, struct gw_err *err);
    /* Right before the turn starts; flow_turn(). */
    int (*before_turn)(struct flow *f, struct gw_err *err);
    /* The turn ended, before its reply (res is borrowed); flow_finish(). */
    int (*after_turn)(struct flow *f, const struct turn_result *res);
    /* Optional: the turn did not start, or its client left before it ended: undo
     * before_turn. */
    void (*abandon)(struct flow *f);
    /* Optional: the turn started; 1 if the dialect answered the request and
     * detached the flow (flow_detach()). */
    int (*started)(struct flow *f);
};

extern const struct dialect_ops dialect_chat;      /* OpenAI Chat Completions (dialects.c) */
extern const struct dialect_ops dialect_messages;  /* Anthropic Messages (dialects.c) */
extern const struct dialect_ops dialect_responses; /* OpenAI Responses (responses.c) */

struct flow {
    const struct dialect_ops *ops;
    void *st;                 /* the dialect's state */
    struct http_req *r;       /* NULL once detached */
    struct http_server *srv;
    const struct gw_services *svc;
    struct conv *conv;        /* until the turn starts */
    char id[48];              /* the answer's id: ops->id_prefix + random */
    char *model;              /* as the client named it */
    const struct session_profile *profile; /* an agent's (model "agent/<name>"), or NULL:
                                            * svc->profile */
    int64_t created_ms;       /* wall clock */
    int64_t created;          /* ... in seconds */
    int stream;               /* the client asked for a stream */
    int64_t input_estimate;   /* conv_estimate_tokens(): the size check, message_start usage */
    struct event *ping;
    struct turn *turn;
    int started;              /* the stream's headers and first events are out */
    int waiting_models;
    int waiting_before;       /* before_turn is pending */
    int finishing;            /* after_turn is pending */
    struct flow_image *images;
    size_t nimages, images_pending;
    struct buf out;           /* the events being written */
    char limit_key[40];       /* the virtual key whose limits admitted it ("": none) */
    int64_t used_tokens;      /* input + output of its turn, when it finished */
    /* For its usage row (written by flow_free(), even after the request is detached). */
    char req_id[72];
    char principal[PRINCIPAL_MAX];
    struct vkey *vkey;        /* a reference, or NULL */
    const char *api;          /* "chat" | "messages" | "responses" */
    struct turn_usage usage;  /* its turn's, when it finished */
    char *run_model;          /* the model its turn ran on (an agent's own), or NULL */
    double credits;           /* its AI credits (keys/prices.h), when it finished */
    int catalogue_priced;     /* the catalogue prices run_model: catalogue_price holds it */
    struct model_price catalogue_price; /* its credits per million tokens (glob NULL) */
    int status;               /* the status of its reply, once replied (200 when detached) */
};

/* The handler of a model route: r->rt->ops is its dialect. */
void http_flow_start(struct http_req *r);
/* Ends the flow: its dialect state, conv, timers.  The reply must be done. */
void flow_free(struct flow *f);
/* Cancels a running turn (no more callbacks). */
void flow_cancel_turn(struct flow *f);
/* Answers r with body (stolen) and lets the turn run on without it. */
void flow_detach(struct flow *f, json_t *body);
/* load's continuation: err NULL, or the error the request fails with. */
void flow_loaded(struct flow *f, const struct gw_err *err);
/* before_turn's continuation: err NULL to start the turn, or the request's error. */
void flow_turn(struct flow *f, const struct gw_err *err);
/* after_turn's continuation: the reply (res need only hold ok, err, finish, usage). */
void flow_finish(struct flow *f, const struct turn_result *res);
/* 1 if the turn's end with res goes into the open (or opening) stream, 0 for a reply. */
int flow_streams_end(const struct flow *f, const struct turn_result *res);
/* Opens the stream if it is not yet: headers sent, the first events in f->out. */
void flow_stream_begin(struct flow *f);
/* The log's name of the request, or "-" once detached. */
const char *flow_req_id(const struct flow *f);

/* ---- http/images.c: image URLs, downloaded before the turn ---------------- */

/* Notes the image parts given by URL (at most IMAGE_MAX_URLS, else a 400 in err). */
int flow_images_collect(struct flow *f, struct gw_err *err);
/* Starts every download; the last to finish calls flow_run(), a failure replies. */
void flow_images_start(struct flow *f);
void flow_images_cancel(struct flow *f);
/* Starts the turn (flow.c). */
void flow_run(struct flow *f);
/* Ends the request with err and frees the flow (flow.c). */
void flow_fail(struct flow *f, const struct gw_err *err);

#endif
