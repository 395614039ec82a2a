/*
 * api/chat.h - OpenAI Chat Completions <-> canonical conversation.
 *
 * Pure translation: no I/O, no event loop.  chat_parse() validates a request
 * body the way OpenAI does and builds a struct conv; the chat_*_json/chunk
 * functions build response bodies and SSE chunks from canonical results.
 * Ownership: chat_parse() gives the caller an owned conv; builders return new
 * references (json_t) or append to a caller's buf.
 */
#ifndef GW_API_CHAT_H
#define GW_API_CHAT_H

#include <stdint.h>

#include <jansson.h>

#include "broker/broker.h"
#include "broker/conv.h"
#include "util/buf.h"
#include "util/err.h"

struct chat_opts {
    int stream;
    int include_usage; /* stream_options.include_usage */
};

/*
 * Parses body (JSON) into *out.  On bad input returns GW_EINVAL with err
 * naming the parameter (e.g. "messages[2].role") and a message in OpenAI's
 * wording; *out is then NULL.
 */
int chat_parse(const char *body, size_t len, struct conv **out, struct chat_opts *opts,
               struct gw_err *err) WARN_UNUSED;

/* The non-streamed chat.completion object. */
json_t *chat_response(const char *id, const char *model, int64_t created,
                      const struct turn_result *r);

/* SSE chunks ("data: {...}\n\n") appended to out. */
int chat_chunk_role(struct buf *out, const char *id, const char *model, int64_t created) WARN_UNUSED;
int chat_chunk_text(struct buf *out, const char *id, const char *model, int64_t created,
                    const char *s, size_t n) WARN_UNUSED;
int chat_chunk_reasoning(struct buf *out, const char *id, const char *model, int64_t created,
                         const char *s, size_t n) WARN_UNUSED;
/* A tool-call delta: {"tool_calls":[{"index", "id"?, "type":"function"?,
 * "function":{"name"?, "arguments"}}]}; id/name NULL after a call's first piece. */
int chat_chunk_tool_call(struct buf *out, const char *id, const char *model, int64_t created,
                         size_t index, const char *call_id, const char *name, const char *args,
                         size_t n) WARN_UNUSED;
int chat_chunk_finish(struct buf *out, const char *id, const char *model, int64_t created,
                      enum turn_finish finish) WARN_UNUSED;
int chat_chunk_usage(struct buf *out, const char *id, const char *model, int64_t created,
                     const struct turn_usage *u) WARN_UNUSED;
/* An error inside an open stream: data: {"error":{...}} */
int chat_chunk_error(struct buf *out, const struct gw_err *err) WARN_UNUSED;
int chat_chunk_done(struct buf *out) WARN_UNUSED; /* data: [DONE] */

/* {"error":{"message","type","param","code"}} for err, in OpenAI's shape. */
json_t *openai_error(const struct gw_err *err);

#endif
