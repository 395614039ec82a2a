/*
 * broker/broker_int.h - the structs the parts of the broker share, and the
 * functions one part calls in another.  Not for use outside src/broker/.
 *
 *   pool.c      runtime processes: start, warm-up, readiness, sign-in,
 *               recycling, placement (pick), disk checks
 *   sessions.c  the session table: lookup by hash and pin, eviction (LRU,
 *               idle, cap), parking timeouts, closing, the persisted rows and
 *               dormant sessions (every call into store/store.h is here),
 *               permission prompts
 *   turn.c      one turn: open or continue a session, send, follow its
 *               events, report to the sink, retry on a dead process
 *   profile.c   session.create/session.resume parameters from a profile
 *   broker.c    the public API (broker.h): glue
 *
 * A runtime process (struct rtp) and a session (struct sess) are handles; a
 * turn (struct turn) is a request with its own phase.
 *
 * Ownership: the broker owns its pool, its sessions and its turns; a session
 *   holds at most one turn (s->turn) and a turn at most one session (t->s).
 * Threading: event-loop thread only.
 */
#ifndef GW_BROKER_BROKER_INT_H
#define GW_BROKER_BROKER_INT_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/hash.h"
#include "util/buf.h"

#define TEXT_MAX (64u * 1024 * 1024)
#define ARGS_MAX (8u * 1024 * 1024)
#define WARMUP_TIMEOUT_MS 30000
#define AUTH_POLL_MS 30000
#define CLOSE_TIMEOUT_MS 10000
#define RECYCLE_CHECK_S 10
/* A turn whose runtime died before any output reached its client moves to a
 * new session at most this often, so a request that kills the runtime cannot
 * take the whole pool down in a loop. */
#define TURN_MAX_RETRIES 1
#define RETRY_AFTER_NOT_READY_S 1
#define DISK_CHECK_MS 1000 /* how long a free-space reading is trusted */

enum sess_state {
    SS_BUSY = 0, /* a turn is attached (opening, sending or running) */
    SS_PARKED,   /* waiting for the client's tool results */
    SS_IDLE,     /* between turns, reusable */
    SS_CLOSING,  /* abort/delete in flight */
};

/* A client tool call the session is waiting on (or the runtime answered). */
struct pcall {
    char *id;         /* toolCallId: the model's own id */
    char *name;
    struct buf args;  /* arguments JSON text as the model wrote it */
    char *request_id; /* external_tool.requested requestId, NULL until it came */
    int runtime_done; /* the runtime answered it itself (unknown tool, bad JSON) */
};

/* One runtime process of the pool. */
struct rtp {
    struct broker *b;
    struct rt *rt;
    int idx;
    int draining;      /* recycling: no new sessions; restarted once empty */
    int in_recycle;    /* pool__maybe_recycle() is on the stack */
    int nsess;         /* live sessions placed on it */
    uint64_t opened;   /* sessions opened since it (re)started */
    uint64_t recycled; /* times it was recycled */
};

/*
 * Who a session serves and how it was made.  A session is only ever matched
 * to requests of the same principal and profile (the hash root includes both
 * and sess__find() checks them again), and a session opened again for the
 * same conversation (resume, reseed) gets the same parameters.
 */
struct sess_owner {
    char principal[PRINCIPAL_MAX];
    const struct session_profile *profile; /* never NULL */
    char *github_token;                    /* the principal's own token, or NULL */
    char token_fp[17];                     /* 16 hex of its SHA-256, or "" */
};

/* Who the conversation hash root names (broker/hash.h): the principal, and the identity of
 * its GitHub token when it has one, so a new token never continues a session the old one
 * opened (a different GitHub identity may see other models and policies). */
/* broker_ready(), for a turn that brings its own GitHub token (need_signin 0): the
 * gateway's own sign-in does not matter to it. */
int broker__ready_for(const struct broker *b, int need_signin, const char **why);

void sess_owner_who(const struct sess_owner *o, char *out, size_t n);

/*
 * The session table's indexes (sessions.c), so that nothing a request does
 * scans every live session:
 *   - three hash tables, chained through the sessions themselves: by head
 *     (the first 8 bytes of its SHA-256; only sessions whose head was set),
 *     by pin and root together (only pinned sessions: what sess__unpin()
 *     looks for) and by session id;
 *   - LRU queues: the idle sessions, the parked ones, and each profile's idle
 *     ones, most recently used at the front, least at the back;
 *   - per profile, the count of its sessions not closing.
 * A session's place in them follows its head (sess__set_head()), its state
 * (sess__set_state()), its last use (sess__touch()) and its pin (set by
 * sess__new(), cleared by sess__unpin()): change those only through these
 * functions.
 */
enum sess_ix { SIX_HEAD = 0, SIX_PIN, SIX_SID, SIX_N };

struct sess_hlink {
    struct sess *next, *prev; /* in its bucket */
    uint64_t key;
    int in;                   /* it is in this index */
};

struct sess_hindex {
    struct sess **slot;       /* NULL while empty */
    size_t mask;              /* slots - 1 (a power of two) */
    size_t n;
};

struct sess_qlink {
    struct sess *next, *prev; /* next: less recently used */
};

struct sess_queue {
    struct sess *front, *back; /* most / least recently used */
};

enum sess_q { SQ_STATE = 0, SQ_PROFILE, SQ_N };

/* A profile with live sessions (kept while n > 0). */
struct sess_prof {
    const struct session_profile *profile;
    int n;                  /* its sessions not closing */
    struct sess_queue idle; /* its idle sessions (SQ_PROFILE links) */
    struct sess_prof *next;
};

struct sess {
    struct broker *b;
    struct rtp *p;          /* the process it is pinned to */
    struct sess *next, *prev;
    char sid[37];
    char *pin;
    struct sess_owner owner;
    uint64_t gen;           /* runtime generation the session lives in */
    enum sess_state state;
    int created;            /* the runtime knows it */
    int running;            /* a runtime turn may be in progress: abort before delete */
    int watching;
    struct hash head;       /* hash of the history it holds, valid when idle/parked */
    struct hash root;       /* h0 of its conversation (principal, profile, model, system, tools);
                             * set by sess__new() */
    struct turn *turn;
    struct pcall *calls;    /* the current assistant message's tool calls */
    size_t ncalls;
    uint64_t last_used_ms;
    struct event *timer;    /* idle or tool timeout */
    uint64_t call;          /* pending close call */
    char *model;
    int persisted;          /* a store row exists for it */
    json_t *subagents;      /* {agentId: agentName} of its sub-agents (subagent.started),
                             * or NULL */
    uint64_t seq;           /* creation order: of two equal candidates the newer wins */
    struct sess_hlink hl[SIX_N];
    struct sess_qlink ql[SQ_N]; /* SQ_STATE: b->idle or b->parked; SQ_PROFILE: prof->idle */
    struct sess_prof *prof; /* its profile's entry; NULL once closing */
};

/*
 * Where a turn is.  TP_SETUP: create/resume sent.  TP_WAITING: no process
 * was ready for its retry, it is on b->waiting.  TP_LOOKUP: no live session
 * holds its history and the store is asked for a dormant one (t->lookup);
 * it is on b->lookups and has no session.  TP_SENDING: the user message
 * or the tool results are being sent.  TP_RUNNING: waiting for events.
 * TP_DONE: reported; no more sink calls (it may still wait for a call in
 * flight, see turn_zombie() in turn.c).
 */
enum turn_phase {
    TP_SETUP = 0,
    TP_WAITING,
    TP_LOOKUP,
    TP_SENDING,
    TP_RUNNING,
    TP_DONE,
};

/* How the turn's session was opened: what a failed open means. */
enum turn_open {
    TO_NEW = 0,     /* session.create, or a seeded session.resume: a failure fails the turn */
    TO_DORMANT,     /* session.resume of a dormant session: a failure reseeds */
};

/* The assistant message in progress (events carry its messageId). */
struct turn_msg {
    char id[64];
    size_t start;           /* its first byte in the turn's text */
    size_t sent;            /* its bytes given to the sink */
    int done;               /* assistant.message came */
    int retry_pending;      /* the runtime said it retries the model call */
};

struct turn {
    struct broker *b;
    struct sess *s;
    struct conv *conv;
    struct sess_owner owner; /* copied from the turn_req: a retry opens with it */
    struct hash base;       /* hash of the conversation as sent (chain[n]) */
    struct hash root;       /* its h0 (chain[0]) */
    struct turn_sink sink;
    void *ud;
    char rid[64];
    enum turn_phase phase;
    enum turn_open open;
    int canceled;           /* the client went away: no more sink calls */
    int warmup;             /* the pool's warm-up turn: reported to pool__warmup_done() */
    int emitted;            /* the sink got output (reached the client if it streams) */
    int retried;            /* times it moved to a new session */
    struct turn *wnext, *wprev; /* on b->waiting (TP_WAITING) or b->lookups (TP_LOOKUP) */
    uint64_t lookup;        /* the store's dormant lookup in flight (TP_LOOKUP), or 0 */
    int kicked;             /* the deadline event was re-armed to report a call failure */
    struct gw_err kick_err;
    size_t first_new;       /* first message the session has not seen */
    uint64_t call;          /* pending rt call of this turn */
    size_t answer_next;     /* next pending call to answer (tool results) */
    int answered_all;       /* the last pending call's result went out */
    struct event *deadline;
    struct buf text, reasoning;
    struct turn_msg msg;
    int got_reasoning_delta;
    struct turn_usage usage;
    char last_finish[32];
    int64_t tool_calls;     /* the runtime's own tool calls it ran (hooks.invoke preToolUse) */
    int after_tool;         /* a tool ran since the last text: the next text is a new paragraph */
    int failed;
    struct gw_err err;
};

struct sweep; /* sessions.c */

struct broker {
    struct event_base *base;
    struct broker_config cfg;
    char *provider_url, *provider_key, *provider_type;
    char *warmup_url, *warmup_key, *workdir;
    json_t *provider;        /* session.create provider object for BYOK, or NULL */
    json_t *warmup_provider; /* ... for the warm-up turn */
    struct rtp *pool;
    int npool;
    char *home;             /* COPILOT_HOME, shared by the pool (see broker.h) */
    struct event *recycle_timer;
    struct store *store;    /* NULL: no persistence (borrowed: see broker_config) */
    struct {                /* the last free-space reading (broker_can_write) */
        uint64_t at_ms;     /* 0: never */
        int64_t data_mb, home_mb;
        struct gw_err err;  /* code GW_OK: enough room on both */
    } disk;
    struct sess *sessions;  /* every session, newest first */
    struct sess_hindex ix[SIX_N];
    struct sess_queue idle, parked; /* SS_IDLE / SS_PARKED sessions by last use */
    struct sess_prof *profs;
    uint64_t sess_seq;
    struct turn *waiting;   /* turns waiting for a ready process (see turn.c) */
    struct turn *lookups;   /* turns waiting for the store's dormant lookup (TP_LOOKUP) */
    struct sweep *sweep;    /* the start-up sweep, until the rows have been read */
    uint64_t sweep_id;      /* its store operation */
    struct broker_stats st;
    int signed_in, auth_known, auth_warned;
    struct event *auth_timer;
    char auth_login[128];
};

/* ---- pool.c ---- */

/* Creates the pool's processes (not started) and its timers. */
void pool__init(struct broker *b);
void pool__release(struct broker *b);
/* The least loaded ready process, or NULL. */
struct rtp *pool__pick(struct broker *b);
/* A draining process hands over its idle sessions and restarts once empty. */
void pool__maybe_recycle(struct rtp *p);
void pool__warmup_done(struct rtp *p, int ok);

/* ---- sessions.c ---- */

/* A new session on p (sid NULL: a fresh UUID) for the conversation rooted at root, busy,
 * at the head of the table. */
struct sess *sess__new(struct rtp *p, const char *sid, const char *pin, const char *model,
                       const struct sess_owner *owner, const struct hash *root);
/* Frees it now (no runtime call); it may be dormant (files and row stay). */
void sess__free(struct sess *s);
/* Takes a session out of service and deletes it in the runtime.  A turn
 * still attached must have been finished or detached by the caller. */
void sess__close(struct sess *s, const char *why);
/* Continues a close waiting for a call of its turn (see turn.c). */
void sess__close_step(struct sess *s);
/* Moves s to state st, and in the LRU queues and the profile counts. */
void sess__set_state(struct sess *s, enum sess_state st);
/* Sets the history s holds (re-indexes it by head). */
void sess__set_head(struct sess *s, const struct hash *h);
/* Sets s->last_used_ms to now_ms (util_now_ms()) and moves s in its LRU queues. */
void sess__touch(struct sess *s, uint64_t now_ms);
void sess__arm_timer(struct sess *s, int seconds);
void sess__pcalls_clear(struct sess *s);
/* Watches s's events on its process (GW_ERUNTIME when it is gone). */
int sess__watch(struct sess *s);
/*
 * A reusable session of owner: same runtime generation, holding exactly the
 * history hashed as h, in state want.  A pinned request looks only at its pin.
 * Of several, the newest.  Looks only at the sessions holding head h.
 */
struct sess *sess__find(struct broker *b, const struct hash *h, enum sess_state want,
                        const char *pin, const struct sess_owner *owner);
/* Drops pin's older sessions of the same conversation root (and owner). */
void sess__unpin(struct broker *b, const char *pin, const struct hash *root,
                 const struct sess_owner *owner);
/* Keeps the live session count under the cap, and profile's sessions under its own:
 * the least recently used idle session goes first (of equal last use, the newest), then
 * parked ones.  O(1) a session evicted. */
void sess__evict_for_new(struct broker *b, const struct session_profile *profile);
/* Records an idle session in the store / forgets it (no-ops without a store). */
void sess__persist(struct sess *s);
void sess__unpersist(struct sess *s);
/*
 * Asks the store for the dormant session recorded for history h and t's pin:
 * 1 if the lookup is in flight (t->lookup; its answer calls turn__dormant()
 * later, with the session's id if it is not live, else NULL), 0 if there is
 * no store or it refused (logged): then open a new session at once.
 */
int sess__find_dormant(struct turn *t, const struct hash *h);
/* Drops t's lookup in flight: turn__dormant() is not called.  Safe if none. */
void sess__lookup_cancel(struct turn *t);
/* A draining process's idle sessions: detached (dormant) or closed. */
void sess__hand_over(struct rtp *p);
/*
 * Start-up sweep of stale rows and session directories: lists the
 * directories now and removes the ones no row accounts for once the rows
 * have been read (b->sweep is set until then; the broker is not ready).
 */
void sess__sweep(struct broker *b);
/* Drops a sweep still waiting for the rows (the broker is being freed). */
void sess__sweep_cancel(struct broker *b);
/* The session.create/resume parameters for s (profile.c does the work). */
json_t *sess__params(const struct sess *s, const struct conv *c, int warmup);
/* Owner helpers. */
void sess_owner_set(struct sess_owner *o, const char *principal,
                    const struct session_profile *profile, const char *github_token);
void sess_owner_copy(struct sess_owner *dst, const struct sess_owner *src);
void sess_owner_release(struct sess_owner *o);
/*
 * The runtime's hooks.invoke request {sessionId, hookType, input} for a
 * session (each session's watch routes it here, sessions.c on_sess_request;
 * params.sessionId is the invoking session, also for a sub-agent's hooks).
 * Returns the {output} reply object (new reference): the profile's hook
 * output, or {} (no change) for a profile without hooks.  A preToolUse past
 * the profile's max_tool_calls is denied here, the turn failed (422) and
 * *over_limit set: the caller answers, then finishes the turn.
 */
json_t *broker__hook_invoke(struct broker *b, const json_t *params, int *over_limit);

/* ---- turn.c ---- */

/* A turn for req (NULL: the pool's warm-up turn), not yet started; steals conv. */
struct turn *turn__new(struct broker *b, struct conv *conv, const struct turn_req *req,
                       const struct turn_sink *sink, void *ud);
void turn__free(struct turn *t);
/* Finds or opens the turn's session and sends (broker_turn_start()'s work):
 * 0, or an error in err with the turn freed. */
int turn__begin(struct turn *t, struct gw_err *err);
/* Reports the outcome to the sink once; frees the turn unless a call is in flight. */
void turn__finish(struct turn *t);
void turn__fail(struct turn *t, const struct gw_err *err);
/* Opens a new session on p (or a picked one). */
int turn__open_new(struct turn *t, struct rtp *p, struct gw_err *err);
/* A session event / the loss of the session's process, for its turn. */
void turn__event(struct turn *t, const char *type, const json_t *data);
/* 1 if name is a tool the turn's client declared (its calls go back to the client). */
int turn__client_tool(const struct turn *t, const char *name);
/* tool.execution_start / _complete (the whole event): progress for a streaming client. */
void turn__progress(struct turn *t, const char *type, const json_t *ev);
/* The turn's deadline: the profile's timeout, else --turn-timeout. */
int64_t turn__timeout_ms(const struct turn *t);
/* 1 if the turn moved to a new session (its process died before output). */
int turn__retry_elsewhere(struct turn *t);
/* The dormant lookup's answer: resume sid, or open a new seeded session (sid NULL). */
void turn__dormant(struct turn *t, const char *sid);
/* Turns waiting for a ready process go on / fail. */
void turn__wake_waiting(struct broker *b);
void turn__fail_waiting(struct broker *b, const struct gw_err *err);

#endif
