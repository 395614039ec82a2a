/*
 * api/messages.h - Anthropic Messages API <-> canonical conversation.
 *
 * Pure translation, like api/chat.h: msg_parse() validates a /v1/messages
 * request body the way Anthropic does and builds a struct conv; the builders
 * produce the response message, the SSE events of a stream, and errors in
 * Anthropic's shape.  The stream's event order (message_start, then per
 * content block content_block_start / content_block_delta... /
 * content_block_stop, then message_delta, message_stop; ping at any time) is
 * kept by struct msg_stream, which the caller feeds canonical deltas.
 * Ownership: msg_parse() gives the caller an owned conv; builders append to a
 * caller's buf or return new json_t references.
 */
#ifndef GW_API_MESSAGES_H
#define GW_API_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/broker.h"
#include "broker/conv.h"
#include "util/buf.h"
#include "util/err.h"

struct msg_opts {
    int stream;
    int thinking;          /* the client asked for thinking blocks */
    int64_t max_tokens;    /* required by Anthropic; accepted, not enforced by the runtime */
    char *stop_sequences_json; /* NULL or a JSON array (accepted, not applied) */
};

/*
 * Parses body into *out (conv->pin from metadata.user_id).  On bad input
 * returns GW_EINVAL with err->msg in Anthropic's wording and err->param the
 * JSON path (e.g. "messages.1.content.0.type").  opts is filled on success;
 * release it with msg_opts_release().
 */
int msg_parse(const char *body, size_t len, struct conv **out, struct msg_opts *opts,
              struct gw_err *err) WARN_UNUSED;
void msg_opts_release(struct msg_opts *o);

/* The non-streamed message object: {"id","type":"message","role":"assistant",
 * "model","content":[thinking?, text?, tool_use...],"stop_reason","stop_sequence":null,
 * "usage":{"input_tokens","output_tokens","cache_creation_input_tokens","cache_read_input_tokens"}}.
 * Thinking blocks only when thinking is set and r->reasoning is non-empty. */
json_t *msg_response(const char *id, const char *model, int thinking,
                     const struct turn_result *r);

/* Streaming state: which content block is open, how many were emitted. */
struct msg_stream {
    const char *id;
    const char *model;
    int thinking;      /* emit thinking blocks */
    int started;       /* message_start written */
    int open;          /* a block is open */
    int open_kind;     /* 0 text, 1 thinking, 2 tool_use */
    size_t open_call;  /* tool call index of the open tool_use block */
    int index;         /* index of the open (or next) block */
};

/* Each appends complete SSE events ("event: X\ndata: {...}\n\n") to out. */
int msg_stream_start(struct msg_stream *s, struct buf *out, int64_t input_tokens) WARN_UNUSED;
int msg_stream_text(struct msg_stream *s, struct buf *out, const char *p, size_t n) WARN_UNUSED;
int msg_stream_thinking(struct msg_stream *s, struct buf *out, const char *p, size_t n)
    WARN_UNUSED;
/* A thinking delta even when the request did not enable thinking: an agent's progress
 * (clients show thinking blocks and send them back, where they are ignored). */
int msg_stream_progress(struct msg_stream *s, struct buf *out, const char *p, size_t n)
    WARN_UNUSED;
/* A piece of client tool call `index`: id and name on its first piece (opens a
 * tool_use block), then input_json_delta pieces. */
int msg_stream_tool(struct msg_stream *s, struct buf *out, size_t index, const char *id,
                    const char *name, const char *json, size_t n) WARN_UNUSED;
/* Closes the open block, then message_delta (stop_reason, usage) and message_stop. */
int msg_stream_finish(struct msg_stream *s, struct buf *out, const struct turn_result *r)
    WARN_UNUSED;
int msg_stream_ping(struct buf *out) WARN_UNUSED;
/* event: error, data: {"type":"error","error":{...}} */
int msg_stream_error(struct buf *out, const struct gw_err *err) WARN_UNUSED;

/* {"type":"error","error":{"type","message"}} with Anthropic's error types:
 * 400 invalid_request_error, 401 authentication_error, 403 permission_error,
 * 404 not_found_error, 413 request_too_large, 429 rate_limit_error,
 * 500/502 api_error, 503/529 overloaded_error, 504 api_error. */
json_t *anthropic_error(const struct gw_err *err);

/* Anthropic's stop_reason for a finish: end_turn, max_tokens, tool_use. */
const char *msg_stop_reason(enum turn_finish f);

#endif
