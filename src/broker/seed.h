/*
 * broker/seed.h - writes a canonical history as a runtime session journal.
 *
 * The runtime has no RPC that appends assistant or tool messages, but it
 * opens any well-formed `session-state/<id>/events.jsonl` with session.resume
 * (protocol reference §4.5).  This module writes that file: session.start,
 * then user.message / assistant.message / tool.execution_complete lines, each
 * with a UUID id, an ISO 8601 timestamp and the previous line's id as parent.
 * System messages are not written: they go in session.resume's systemMessage.
 */
#ifndef GW_BROKER_SEED_H
#define GW_BROKER_SEED_H

#include <stddef.h>

#include <jansson.h>

#include "broker/conv.h"
#include "util/buf.h"
#include "util/err.h"

/* The image parts of m as runtime blob attachments (new reference), or NULL
 * when it has none.  Images given only by URL must be fetched first. */
json_t *seed_attachments(const struct conv_msg *m);

/* Appends the journal for the first nmsgs messages of c to out. */
int seed_journal(struct buf *out, const char *session_id, const struct conv *c, size_t nmsgs,
                 const char *cwd) WARN_UNUSED;

/*
 * Writes <home>/session-state/<session_id>/events.jsonl (mode 0600, via a
 * temporary file and rename).  Errors never name the path in err->msg.
 */
int seed_write(const char *home, const char *session_id, const struct conv *c, size_t nmsgs,
               const char *cwd, struct gw_err *err) WARN_UNUSED;

/* Removes <home>/session-state/<session_id>/ (used when the runtime is gone). */
void seed_remove(const char *home, const char *session_id);

#endif
