/*
 * rt/rt.h - one supervised Copilot runtime process and its JSON-RPC client.
 *
 * rt_new() only configures; rt_start() spawns the child with
 *   COPILOT_HOME=<home> BINARY --headless --no-auto-update --stdio [--no-auto-login]
 * in its own process group, with stdin/stdout/stderr on pipes read by the
 * event loop.  After spawn it sends `connect` and refuses any protocolVersion
 * other than 3 (the process is then stopped and the reason logged; no restart).
 * When connected it calls cfg.on_up(); the owner may then run a warm-up and
 * must call rt_set_ready() (until then rt_state() is RT_WARMING).
 *
 * When the child exits (or its stdout closes, or it breaks the framing), every
 * pending call fails at once with GW_ERUNTIME, every session watcher gets its
 * `lost` callback once and is dropped, cfg.on_down() is called, and the child
 * is restarted after an exponential backoff (250 ms doubling to 30 s, reset
 * after 60 s of uptime).  stderr lines go to our log (module "rt").
 *
 * Liveness: while ready (never while starting or warming) the child gets a
 * `ping` every ping_interval_ms, one at a time.  Any reply counts.  One left
 * unanswered for ping_timeout_ms is judged by rt/probe.h: a stopped or hung
 * process (no CPU used) is killed (SIGKILL to its group, logged once with its
 * pid) and then handled like a crash; a busy one gets more time (at most
 * PROBE_BUSY_WINDOWS timeouts).  rt_usable() is 0 from the moment of the kill.
 *
 * Requests from the runtime (JSON-RPC messages with an id and a method, such
 * as hooks.invoke) go to a handler: first the `request` op of the watch
 * named by params.sessionId, then the process-wide handler registered for
 * the method with rt_handle(), else they are answered at once with -32601
 * "Unhandled method".  A handler answers exactly once, now or later, with
 * rt_answer() or rt_answer_error(); a request left unanswered for
 * request_timeout_ms is answered by rt with a -32603 error (and a warning in
 * our log), so the runtime never waits forever.  See docs/runtime-requests.md.
 *
 * Permission prompts are *not* requests: they arrive as `permission.requested`
 * session events through the watch's `event` op ({requestId,
 * permissionRequest, promptRequest, ...} in event.data) and are answered with
 * rt_permission_answer() (the call session.permissions.handlePendingPermission
 * Request).  With no decision to give, answer {"kind":"user-not-available"}
 * (a denial); never approve everything.
 *
 * Ownership: rt_call() steals `params`.  Callbacks get *borrowed* json_t
 * values valid only during the call.  A callback is never invoked from inside
 * the function that registered it.  Any callback may call rt_free(); the
 * object is then freed once control is back in rt's own event handler.
 * Threading: event-loop thread only.
 * Signals: installs no handlers (child exit is found by waitpid polling on its
 *   own pid).  The program must ignore SIGPIPE, or a write to a child that just
 *   died kills the gateway.
 */
#ifndef GW_RT_RT_H
#define GW_RT_RT_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "util/err.h"

struct rt;

enum rt_state {
    RT_STOPPED = 0, /* not started, or stopped for good (rt_stop, bad protocol) */
    RT_STARTING,    /* spawned, `connect` not yet answered */
    RT_WARMING,     /* connected; owner is warming it up */
    RT_READY,       /* serving */
    RT_BACKOFF,     /* exited; waiting to restart */
    RT_STOPPING,    /* rt_stop() in progress */
};

struct rt_config {
    const char *path;     /* runtime binary (copilot-runtime or copilot CLI) */
    const char *home;     /* COPILOT_HOME; created 0700 if missing */
    const char *cwd;      /* working directory of the child; created if missing */
    int no_auto_login;    /* pass --no-auto-login */
    size_t max_frame;     /* cap on one incoming frame (default BUF_MAX_RPC_FRAME) */
    int call_timeout_ms;  /* default per-call timeout (default 30000) */
    const char *log_level; /* runtime --log-level, or NULL */
    const char *const *env_drop; /* NULL-terminated names of variables the runtime (and the
                                  * tools it runs) must not get, or NULL; borrowed: must
                                  * outlive the rt.  (COPILOT_GATEWAY_* and the GitHub token
                                  * variables are handled always: rt.c build_env()) */
    int ping_interval_ms;  /* liveness ping of a ready process every ... ms (0 = off) */
    int ping_timeout_ms;   /* ... judged after this long unanswered (default 10000) */
    int request_timeout_ms; /* a runtime->host request unanswered this long gets an error
                             * (default call_timeout_ms) */
    void (*on_up)(struct rt *rt, void *ud);   /* connected, protocol checked */
    void (*on_down)(struct rt *rt, void *ud, const char *why); /* exited / failed */
    void *ud;
};

typedef void (*rt_reply_cb)(void *ud, const json_t *result, const struct gw_err *err);

/*
 * A request from the runtime.  `req` is its handle for rt_answer() and
 * rt_answer_error(); handles are never reused, so a stale one is harmless.
 * method and params are borrowed, valid only during the call (params may be
 * NULL).  The handler may answer before it returns, or keep req and answer
 * later.  The handle dies (rt_answer then returns GW_ENOTFOUND and
 * rt_request_pending() 0) once answered, after request_timeout_ms, when the
 * child goes away (before any `lost`/on_down callback runs), when the watch
 * it came through is removed (rt_unwatch answers it with an error), and on
 * rt_free().  The handler is never called again for that request.
 */
typedef void (*rt_request_cb)(void *ud, uint64_t req, const char *method, const json_t *params);

/* Use designated initializers: members may be added. */
struct rt_watch_ops {
    /* A `session.event` for this session: event is {type, data, id, ...}. */
    void (*event)(void *ud, const char *type, const json_t *event);
    /* The runtime process went away; the watch is already removed. */
    void (*lost)(void *ud, const struct gw_err *err);
    /* A runtime->host request whose params.sessionId is this session (optional:
     * when NULL, the process-wide handler for the method gets it). */
    rt_request_cb request;
};

struct rt *rt_new(struct event_base *base, const struct rt_config *cfg);
int rt_start(struct rt *rt) WARN_UNUSED;
/*
 * Stops for good: runtime.shutdown (bounded), close stdin, SIGTERM after 1 s,
 * SIGKILL of the process group after 3 s.  `done` runs once the child is reaped
 * (possibly before rt_stop returns if nothing is running).  No restart follows.
 */
void rt_stop(struct rt *rt, void (*done)(void *ud), void *ud);
/* (on_down is not called for a stop; pending calls fail with GW_ERUNTIME.) */
void rt_free(struct rt *rt); /* kills the child if still running; NULL-safe */
/* (rt_free drops pending calls, watches, stop waiters and unanswered runtime
 * requests without calling anything.) */

enum rt_state rt_state(const struct rt *rt);
/* 1 when ready and taking calls: not between losing the child (EOF, a failed
 * write) and reaping it, when rt_state() still says RT_READY. */
int rt_usable(const struct rt *rt);
const char *rt_state_name(enum rt_state s);
void rt_set_ready(struct rt *rt);
/* Increments on every spawn: lets callers detect a restarted process. */
uint64_t rt_generation(const struct rt *rt);
const char *rt_home(const struct rt *rt);
const char *rt_version(const struct rt *rt); /* runtime version from connect, or "" */
int rt_pid(const struct rt *rt);             /* child pid or 0 */

/*
 * Sends a request.  cb runs exactly once: with result (err NULL) or with err
 * (JSON-RPC error -> GW_EUPSTREAM with the runtime's message, timeout ->
 * GW_ETIMEDOUT, runtime gone -> GW_ERUNTIME) - unless rt_cancel() is called
 * first.  timeout_ms <= 0 means cfg.call_timeout_ms.  Returns 0 and sets *id,
 * or GW_ERUNTIME if the runtime is not connected (cb is then not called).
 * cb may be NULL for fire-and-forget.
 */
int rt_call(struct rt *rt, const char *method, json_t *params, int timeout_ms, rt_reply_cb cb,
            void *ud, uint64_t *id) WARN_UNUSED;
void rt_cancel(struct rt *rt, uint64_t id);

/*
 * Routes `session.event` notifications for session_id to ops (one watch per id;
 * ops is copied).  GW_ERUNTIME when not connected, GW_EINVAL if already watched.
 */
int rt_watch(struct rt *rt, const char *session_id, const struct rt_watch_ops *ops, void *ud)
    WARN_UNUSED;
/* Also answers the session's unanswered requests (those its watch's `request`
 * op got) with a -32603 error: their handles die. */
void rt_unwatch(struct rt *rt, const char *session_id);

/*
 * Registers cb as the process-wide handler of runtime requests named method
 * (replacing any; NULL cb unregisters).  Kept across restarts of the child.
 * Requests already handed out keep their handles.
 */
void rt_handle(struct rt *rt, const char *method, rt_request_cb cb, void *ud);

/*
 * Answers request req with result (stolen; NULL sends JSON null).  Returns
 * GW_OK, GW_ENOTFOUND if req is no longer pending (answered, timed out, its
 * child or watch gone: result is dropped), or GW_ERUNTIME if the message
 * could not be queued (the handle is consumed anyway).  A result that cannot
 * be encoded (not UTF-8, over the frame limit) is replaced by a -32603 error
 * and GW_EINVAL returned.
 */
int rt_answer(struct rt *rt, uint64_t req, json_t *result);
/* Answers req with a JSON-RPC error {code, message}; returns as rt_answer(). */
int rt_answer_error(struct rt *rt, uint64_t req, int code, const char *message);
/* 1 while req waits for its answer. */
int rt_request_pending(const struct rt *rt, uint64_t req);

/*
 * Answers the permission prompt request_id (a permission.requested event's
 * data.requestId) of session_id: session.permissions.handlePendingPermission
 * Request {sessionId, requestId, result}.  result is stolen; NULL means
 * {"kind":"user-not-available"} (denied).  Fire-and-forget: a refusal, or
 * {"success":false} (the prompt was no longer pending), is logged.  Returns
 * as rt_call().
 */
int rt_permission_answer(struct rt *rt, const char *session_id, const char *request_id,
                         json_t *result) WARN_UNUSED;

#endif
