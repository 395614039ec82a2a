/*
 * broker/errmap.h - what a runtime failure means to a client.
 *
 * The runtime reports a failed model call as a `session.error` event
 * {errorType, message, statusCode?} after its own retries (operations
 * reference §4).  errmap_session_error() turns it into a gw_err with the HTTP
 * status and API error code a client can act on, and a message with no
 * provider URL in it.  A rate limit carries a Retry-After (errmap_retry_after).
 * A failure of the runtime to write its session files (errorType
 * "persistence") is a 507 whose message names no file.
 */
#ifndef GW_BROKER_ERRMAP_H
#define GW_BROKER_ERRMAP_H

#include <jansson.h>

#include "util/err.h"

/* Told to clients while the runtime is not signed in to GitHub. */
extern const char errmap_signin_msg[];

/*
 * data is the event's data object (borrowed).  byok says whose credentials an
 * "authentication" error is about: the operator's provider key (502) or the
 * runtime's GitHub sign-in (401).
 */
void errmap_session_error(const json_t *data, int byok, struct gw_err *err);

/*
 * The Retry-After (seconds) to give a client after a rate limit.  The runtime
 * honours the provider's Retry-After itself, retries (5 times), and then
 * reports only "...; retried N times (total retry wait time: X seconds) Last
 * error: 429 ..." with statusCode 429: no header value (verified on runtime
 * 1.0.85).  The mean wait per retry, rounded up, is at least the provider's
 * Retry-After plus the runtime's jitter.  Returns 0 when msg does not say
 * (errmap_session_error() then uses ERRMAP_RETRY_AFTER_DEFAULT_S).
 */
#define ERRMAP_RETRY_AFTER_DEFAULT_S 10
#define ERRMAP_RETRY_AFTER_MAX_S 3600
int errmap_retry_after(const char *msg);

/*
 * 1 if a runtime message says a write found no room (ENOSPC, "No space left
 * on device", "os error 28").  The runtime reports a full --home as an RPC
 * error of session.create ("session construction failed: ENOSPC: ...") or,
 * once a session exists, as session.error {errorType: "persistence",
 * message: "Failed to persist session events: ... No space left on device
 * (os error 28)"}, repeated with a growing backoff; that session then never
 * sends session.idle (runtime 1.0.85).
 */
int errmap_no_space(const char *msg);

/* Fills err with a 507 Insufficient Storage (GW_EIO, api_code
 * "insufficient_storage") and the message. */
void errmap_storage(struct gw_err *err, const char *fmt, ...) PRINTF(2, 3);

/*
 * 1 if a runtime message says a GitHub token was not accepted: session.create/resume with a
 * gitHubToken fails with "SDK session authentication failed: ..." (runtime 1.0.85) or
 * "GitHub token validation failed: ..." (1.0.102); a model call without a usable one says
 * "Not authenticated" or "No GitHub OAuth token".
 */
int errmap_is_token_failure(const char *msg);

/*
 * Fills err with the 401 of a user whose own GitHub token was not accepted (api_code
 * "github_token_rejected"): what went wrong in a few words from the runtime's msg (GitHub
 * unreachable, or the token refused), never the token, and that the gateway does not fall
 * back to its own sign-in.
 */
void errmap_user_token(struct gw_err *err, const char *msg);

/* Replaces every http(s) URL in s (any case) with "<provider>", in place; a URL
 * shorter than that is removed.  A URL ends at a blank, quote, comma or ")". */
void errmap_scrub_urls(char *s);

#endif
