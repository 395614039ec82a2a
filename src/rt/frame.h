/*
 * rt/frame.h - Content-Length framing of the runtime's JSON-RPC stream (as in LSP).
 *
 * A frame is a header block of "Name: value\r\n" lines ended by "\r\n", then
 * exactly Content-Length bytes of body.  Header names are matched without
 * regard to case; other headers (Content-Type) are ignored.  The parser is a
 * pure function over a byte range so it can be unit-tested and fuzzed; the
 * caller keeps unconsumed bytes and calls again when more arrive.
 */
#ifndef GW_RT_FRAME_H
#define GW_RT_FRAME_H

#include <stddef.h>

#include "util/buf.h"

enum frame_status {
    FRAME_OK = 0,        /* a whole frame: body at p + *body_off, *body_len bytes */
    FRAME_NEED_MORE = 1, /* incomplete: call again with more bytes */
    FRAME_ERROR = -1,    /* malformed header block: the stream cannot be resynced */
    FRAME_TOO_BIG = -2,  /* Content-Length above max_body, or header block above 8 KiB */
};

#define FRAME_MAX_HEADER 8192

/*
 * Looks for one frame at the start of p[0..n).  On FRAME_OK sets *body_off and
 * *body_len; the frame occupies *body_off + *body_len bytes in total.
 */
enum frame_status frame_parse(const char *p, size_t n, size_t max_body, size_t *body_off,
                              size_t *body_len);

/*
 * 1 if body (a frame's n bytes) is a session event nobody reads, recognised from its first
 * bytes without parsing it: `{"jsonrpc":"2.0","method":"session.event","params":{
 * "sessionId":"<id>","event":{"type":"<type>"` (the runtime's key order) with a type of
 * FRAME_SKIP_TYPES.  `model.messages_snapshot` carries the whole conversation with every
 * model call (a megabyte for a megabyte history); `assistant.streaming_delta` repeats
 * `assistant.message_delta`.  Anything else, or another key order, is 0: parsed as usual.
 */
int frame_skippable(const char *body, size_t n);

/* Appends "Content-Length: n\r\n\r\n" + body to out. */
int frame_write(struct buf *out, const char *body, size_t n) WARN_UNUSED;

#endif
