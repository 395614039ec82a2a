/*
 * broker/broker.h - maps a canonical conversation onto a runtime session and
 * runs one turn, reporting canonical events to a sink.
 *
 * Live sessions are kept after a turn and indexed by the hash of the history
 * they hold (broker/hash.h).  A request whose history extends an idle
 * session's history by user messages continues it with session.send; one
 * ending with the results of a parked session's pending tool calls answers
 * them with session.tools.handlePendingToolCall.  Anything else gets a new
 * session: the history before the final user message is written as its
 * events.jsonl and opened with session.resume (protocol reference §4.5), the
 * final user message goes in with session.send (attachments for images), and
 * a conversation that does not end with a user message runs with
 * session.sendMessages {messages:[]}.  A session whose runtime history no
 * longer matches what the client saw (failed, aborted or cancelled turn) is
 * closed.  Idle sessions are evicted by LRU, idle timeout and the session
 * cap; parked ones after the tool timeout.
 *
 * The broker runs a pool of runtime processes.  Each session is pinned to
 * one; new sessions go to the least loaded ready process.  A process past its
 * session or memory budget is drained (its idle sessions are detached and
 * become dormant, to be resumed elsewhere; busy and parked ones finish) and
 * restarted.  Each process is pinged (rt/rt.h); a frozen one is killed and
 * restarted like a crashed one.  A turn whose process dies before any of its
 * output reached the client (a non-streamed turn's output never has: it is
 * sent from the turn_result) is retried once on a new session, seeded with
 * the exact history; if no process is ready it waits for one, within the turn
 * deadline.  The processes share one COPILOT_HOME: GitHub sign-in lives
 * there, and session files are partitioned by session id, each opened by one
 * process at a time.
 *
 * Idle sessions are also recorded in the store (store/store.h, its
 * sessions domain), through the store the caller opened on the broker's
 * event base and passes in broker_config; the broker uses only its
 * asynchronous calls.  When the runtime exits or the gateway restarts, they
 * become dormant: their files and rows stay, and a request whose history
 * matches one resumes it with session.resume instead of reseeding.  A
 * request that no live session can continue asks the store first (the
 * answer comes on a later loop turn; a cancel drops it); a missing row or a
 * store error means a new seeded session, never a client error.  Two
 * requests for one dormant row: one resumes it, the other is seeded.
 * broker_start() lists the session directories and removes those no row
 * accounts for once the rows have been read; broker_ready() says no
 * ("reading the session map") until then.
 *
 * The broker also owns the runtime process: start, warm-up turn against the
 * gateway's own loopback endpoint, readiness, sign-in status.
 *
 * Every turn has a principal (who asks) and a session profile (what kind of
 * session serves them, broker/profile.h); both are part of the history hash
 * (broker/hash.h), and a session only ever serves the principal and profile
 * it was opened for: a conversation, or an X-Session-Id / metadata.user_id
 * pin, sent by two principals gets two sessions.  A session keeps its
 * principal, profile and GitHub token, so a session opened again for it
 * (resume, reseed after a runtime death) gets the same parameters.  The
 * session.create/resume parameters come from the profile
 * (profile_session_params()); a permission prompt of a session whose profile
 * asks for them is answered by the profile's decider (profile_decide()),
 * never with a standing approval.
 *
 * Inside, the broker is split by job (broker_int.h): pool.c (processes,
 * readiness, sign-in, recycling, disk), sessions.c (the session table,
 * eviction, persistence), turn.c (one turn's state machine), profile.c.
 *
 * Ownership: broker_turn_start() steals conv; req is borrowed for the call
 * (its strings are copied), req->profile must outlive the broker.  Sink
 * callbacks get borrowed data.  After on_done, or after broker_turn_cancel(),
 * the turn is gone.
 * Threading: event-loop thread only.
 * Errors: broker_start() and broker_turn_start() fail with a GW_E* code in
 *   err (GW_ERUNTIME with a Retry-After when no runtime is ready, GW_EAUTH when
 *   not signed in, a 507 when the disk is low, GW_EINVAL for tool results that
 *   do not answer a parked session's calls); a turn's own failure comes in its
 *   turn_result.
 */
#ifndef GW_BROKER_BROKER_H
#define GW_BROKER_BROKER_H

#include <stdint.h>

#include <event2/event.h>

#include "broker/conv.h"
#include "broker/profile.h"
#include "rt/rt.h"
#include "util/err.h"

struct broker;
struct turn;

struct provider_config {
    const char *url;  /* BYOK base URL, e.g. http://127.0.0.1:8080/v1; NULL = Copilot */
    const char *key;  /* may be NULL */
    const char *type; /* "openai" | "azure" | "anthropic" */
};

struct broker_config {
    struct rt_config rt;         /* on_up/on_down/ud are set by the broker */
    struct provider_config provider;
    const char *warmup_url;      /* base URL of the gateway's own loopback warm-up endpoint */
    const char *warmup_key;      /* bearer the warm-up endpoint expects */
    const char *workdir;         /* empty working directory for sessions */
    const char *data_dir;        /* the session map (gateway.db) lives here; NULL = none */
    int turn_timeout_ms;         /* whole-turn deadline (default 600000) */
    int tool_timeout_s;          /* a parked session waits this long for tool results (600) */
    int session_idle_s;          /* an idle live session is closed after this (1800) */
    int max_sessions;            /* live sessions before LRU eviction (1000) */
    int pool_size;               /* runtime processes (1) */
    int recycle_sessions;        /* recycle a process after this many sessions (0 = never) */
    int recycle_mb;              /* ... or past this resident size in MB (0 = never) */
    int ping_interval_ms;        /* liveness probe of each runtime process (0 = off) */
    int ping_timeout_ms;         /* an unanswered ping past this marks the process down */
    int64_t min_free_mb;         /* free space wanted on data_dir and the runtime home */
    struct store *store;         /* the session map (borrowed, outlives the broker; opened on the
                                    broker's event base; NULL = none) */
};

/* Counters and gauges for /metrics. */
struct broker_stats {
    uint64_t sessions_created; /* runtime sessions opened (fresh or seeded) */
    uint64_t sessions_seeded;  /* ... of which opened by seeding a history */
    uint64_t sessions_reused;  /* turns served by continuing a live session */
    uint64_t sessions_resumed; /* dormant sessions resumed (after a restart) */
    uint64_t sessions_evicted; /* closed by LRU, idle or tool timeout */
    uint64_t runtime_restarts; /* runtime processes restarted (crash or recycle) */
    int sessions_live;
    int sessions_parked;
    int turns_active;
};

enum turn_finish { TURN_STOP = 0, TURN_LENGTH, TURN_TOOL_CALLS };

struct turn_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t reasoning_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
    /* What the model calls cost, as the runtime reported it (assistant.usage
     * copilotUsage.totalNanoAiu, summed; 1e9 nano-AIU = 1 AI credit); cost_reported is 1
     * when any call of the turn reported it. */
    double nano_aiu;
    int cost_reported;
};

/* A client tool call the model made (the model's own id). */
struct turn_tool_call {
    const char *id;
    const char *name;
    const char *arguments; /* JSON text of the arguments object, as the model wrote it */
};

struct turn_result {
    int ok;                 /* 1: finished; 0: failed, see err */
    struct gw_err err;
    const char *text;       /* whole answer text */
    const char *reasoning;  /* whole reasoning text or NULL */
    enum turn_finish finish; /* TURN_TOOL_CALLS: calls/ncalls are the client's to run */
    const struct turn_tool_call *calls;
    size_t ncalls;
    struct turn_usage usage;
    const char *session_id; /* the runtime session that served the turn */
};

struct turn_sink {
    void (*text)(void *ud, const char *s, size_t n);      /* answer delta */
    void (*reasoning)(void *ud, const char *s, size_t n); /* reasoning delta */
    /*
     * A piece of a client tool call.  index counts calls in order of first
     * appearance within the turn; id and name are non-NULL on the first
     * piece of each call only; args is the next fragment of its arguments.
     */
    void (*tool_call)(void *ud, size_t index, const char *id, const char *name, const char *args,
                      size_t n);
    void (*done)(void *ud, const struct turn_result *r);  /* exactly once */
    /* Streams only (may be NULL): a line about an agent's own tool calls ("> bash: ls",
     * "x denied by policy: shell(rm)"), for the client to display, not part of the answer. */
    void (*progress)(void *ud, const char *s, size_t n);
};

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg);
int broker_start(struct broker *b) WARN_UNUSED;
void broker_stop(struct broker *b, void (*done)(void *ud), void *ud);
void broker_free(struct broker *b);

/* 1 when a runtime is connected, warmed and signed in (or BYOK configured), and the
 * start-up sweep has read the session map. */
int broker_ready(const struct broker *b, const char **why);
/*
 * 1 when a turn can write: at least min_free_mb free on the data directory's
 * and the runtime home's file systems (statvfs, cached for a second; always
 * 1 with min_free_mb 0).  Otherwise 0 and err (if non-NULL) says which disk,
 * as a 507 with api_code "insufficient_storage" and no path.
 * broker_turn_start() refuses a turn with that error.
 */
int broker_can_write(struct broker *b, struct gw_err *err);
/* Free space in MB on the data directory's and the runtime home's file systems (-1 if
 * unknown; read at most once a second), and the minimum wanted (--min-free-mb, 0 = no
 * check). */
void broker_disk_free(struct broker *b, int64_t *data_mb, int64_t *home_mb, int64_t *min_mb);
int broker_signed_in(const struct broker *b);
/* broker_ready() for a gateway whose users bring their own GitHub tokens: its own sign-in
 * is not needed to serve them, so it is not checked. */
int broker_ready_for_users(const struct broker *b, const char **why);
int broker_byok(const struct broker *b);
struct rt *broker_rt(struct broker *b);
/* Turns alive, including ones still cleaning up their runtime session. */
int broker_turns_active(const struct broker *b);
void broker_stats(const struct broker *b, struct broker_stats *out);
/* The pool: processes 0..broker_pool_size()-1, with their live sessions. */
int broker_pool_size(const struct broker *b);
struct rt *broker_pool_rt(struct broker *b, int i, int *sessions, int *draining);

/* Who asks for a turn, and in what kind of session (broker/profile.h).  Borrowed
 * for the call (the broker copies the strings); profile must outlive the broker.
 * github_token is a secret: sent to the runtime as gitHubToken, never logged. */
struct turn_req {
    const char *principal;                 /* never NULL: "anon", "key:...", ... */
    const struct session_profile *profile; /* NULL: profile_pure_model */
    const char *github_token;              /* the principal's own GitHub token, or NULL */
    const char *request_id;                /* for the log */
};

/*
 * Starts a turn.  On failure returns NULL and fills err (sink not called).
 * Otherwise sink.text/reasoning run as deltas arrive and sink.done once.
 */
struct turn *broker_turn_start(struct broker *b, struct conv *conv, const struct turn_req *req,
                               const struct turn_sink *sink, void *ud, struct gw_err *err);
/* The client went away: abort the runtime turn, delete the session, no more callbacks. */
void broker_turn_cancel(struct turn *t);

#endif
