/*
 * store/store.h - the gateway's persistent state, by domain, behind one
 * interface with one implementation per database.
 *
 * Domains.  A store holds:
 *   sessions   the broker's session map: which runtime session holds which
 *              conversation history, so sessions are found again after a
 *              restart (struct store_session);
 *   responses  Responses API responses stored with store: true, each owned
 *              by the principal that created it (struct store_response);
 *   audit      the audit log of server-side agents: every policy decision on
 *              a tool call and the call's outcome (struct store_audit);
 *   next       keys and usage get their own section and ops here.
 * A store is opened once in main.c and handed to its users; none of them
 * opens its own.  struct store is opaque: a user sees the domain functions
 * below, which dispatch through the implementation's ops table
 * (store/backend.h), as libuv and curl dispatch to their backends.
 *
 * Implementations.  SQLite (store_sqlite_open(), store/sqlite*.c): one file,
 * <data dir>/gateway.db.  A PostgreSQL one plugs in as a constructor beside
 * it (store_pg_open(base, conninfo, ...)) that fills a struct store with its
 * own ops (libpq's asynchronous API on the same event loop); callers do not
 * change, which is why every operation completes through a callback.
 *
 * Asynchronous rules (every store_<domain>_<verb>() below):
 *   - The call validates its arguments and returns 0, or a negative GW_E*
 *     code with err set and the callback never called (libuv's rule).
 *   - Otherwise cb runs exactly once, always later, from the event loop:
 *     never from inside the call (SQLite runs the statement in the call and
 *     delivers its result on the next loop turn; PostgreSQL when the server
 *     answers).  Results of one store are delivered in the order the calls
 *     were made.
 *   - *id (if id is non-NULL) names the operation for store_cancel(): after
 *     it cb never runs.  Cancelling drops the answer, not the operation: a
 *     write may still happen (the requester went away, the data stays
 *     consistent).  An id is never reused; cancelling a delivered or
 *     unknown id does nothing.
 *   - Writes whose outcome the caller does not wait for (a session row, a
 *     usage row) may pass cb NULL: a failure is then logged (module
 *     "store").  Reads must pass a cb.  Such a write may be held back and
 *     committed with others (SQLite: see Durability), but every later
 *     operation of the same store sees it, as if it had run at once.
 *   - The callback gets a borrowed struct store_result valid only during the
 *     call: res->rc is >= 0 on success (what it counts is said per
 *     function) or a negative GW_E* code with res->err describing it; rows
 *     are borrowed the same way (copy what you keep).
 *   - A store opened without an event loop (base NULL) refuses every call
 *     with GW_EINVAL.
 *
 * Durability (SQLite).  WAL mode, synchronous=NORMAL: a commit is one
 * write() into gateway.db-wal and no fsync, so what a callback reported as
 * written survives a crash or kill -9 of the gateway at once; an OS crash or
 * power loss may lose the last commits, never corrupt the file.  Group
 * commit: the writes called without a callback that the session map and
 * usage make (store_sessions_put(), store_sessions_delete(),
 * store_usage_add()) are not run in the call: a copy is queued, and the
 * queue is committed in one transaction, in call order,
 * STORE_GROUP_COMMIT_MS after its first write, at once when it holds
 * STORE_GROUP_COMMIT_MAX writes, before any other operation of the store
 * runs (a read, or a write with a callback: read-your-writes), and by
 * store_close(), which main.c calls on SIGTERM once the HTTP server has
 * drained.  So a SIGTERM loses none of them, and a crash or kill -9 loses
 * at most those queued in the last STORE_GROUP_COMMIT_MS (100 ms): usage
 * rows of requests that ended in that window (missing from reports and
 * budgets), and session-map rows (a conversation is then reseeded instead
 * of resumed); never a write whose callback reported success, and never
 * anything else.  A group commit that fails (disk full, the write lock
 * held by another process past the busy timeout) loses its whole queue and
 * logs one line with the count (module "store").  Every other write runs
 * and commits in its call, as before.  Only the
 * checkpoint (copying the WAL into the database) fsyncs, and it does not run
 * on the event loop: automatic checkpoints are off on the loop's connection
 * (wal_autocheckpoint=0); a commit that leaves STORE_CHECKPOINT_PAGES more
 * pages in the WAL wakes a checkpointer thread with its own connection to the
 * same file, which runs wal_checkpoint(PASSIVE) until it has caught up (a
 * PASSIVE checkpoint never blocks the writer), and store_close() has it run
 * a TRUNCATE checkpoint before joining it.  Should a long burst of writes
 * outrun it until the WAL holds STORE_WAL_PAGES_MAX pages, the loop runs the
 * checkpoint itself, as SQLite would: back-pressure, not an unbounded WAL.
 * bench/store.c measures a put's time on the loop.  Two SQLite connections
 * in one process are safe: SQLite shares its POSIX locks per inode.  What
 * is never done is an open()/close() of the file beside SQLite:
 * closing any descriptor of a file drops the process's POSIX locks on it,
 * and another process (the sqlite3 shell, a backup) would then take the
 * file for unused and delete the live WAL under us.  With that, backing the
 * file up while the gateway runs is safe (sqlite3 gateway.db ".backup F").
 * The file (mode 0600, its -wal and -shm files too) is versioned with
 * PRAGMA user_version and migrated forward at open:
 *
 *   sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL, pin TEXT,
 *            model TEXT NOT NULL, last_used INTEGER NOT NULL)
 *   index sessions_head_pin on (head, pin, last_used)
 *   responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT, created INTEGER NOT NULL,
 *             input TEXT NOT NULL, response TEXT NOT NULL,
 *             owner TEXT NOT NULL DEFAULT '')                  (owner: v3)
 *   index responses_created on (created)
 *   audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
 *         ts INTEGER NOT NULL, request_id TEXT, principal TEXT NOT NULL,
 *         agent TEXT NOT NULL, session_id TEXT, tool TEXT NOT NULL,
 *         kind TEXT NOT NULL, target TEXT NOT NULL, decision TEXT NOT NULL,
 *         rule TEXT, outcome TEXT, duration_ms INTEGER NOT NULL DEFAULT -1,
 *         error TEXT)                                           (v4)
 *   index audit_ts on (ts), audit_agent_seq on (agent, seq)
 *
 * Ownership of responses.  A stored response belongs to the principal that
 * created it (broker/profile.h: "anon", "key:<16 hex>", ...).  Get, delete
 * and the chain lookup take the asking principal and match it, so another
 * principal's response is "not found" (rc 0), never "forbidden": its
 * existence is not revealed.  A row with owner '' (written before schema 3)
 * is readable by "anon"
 * only: before owners existed every response was created on the open
 * loopback, or by holders of a shared key who now get their own principal
 * and must not see each other's.
 *
 * Ownership: a store_*_open() returns an owned store; free with
 *   store_close().  Strings passed in are borrowed for the duration of the
 *   call (an implementation copies what it keeps).  Results and their rows
 *   are borrowed for the duration of the callback.
 * Threading: the event-loop thread only, callbacks included.  The SQLite
 *   implementation runs one helper thread (the checkpointer) that touches
 *   nothing but its own connection.  Calls block the loop only if another
 *   process holds the write lock, for at most the busy timeout (1000 ms), or
 *   for a checkpoint past STORE_WAL_PAGES_MAX.
 * Errors: 0 or a negative GW_E* code with details in the optional struct
 *   gw_err (left untouched on success).  GW_EINVAL for bad arguments,
 *   GW_ENOMEM when the database runs out of memory, GW_EIO for everything
 *   else (unwritable, locked, corrupt, not a database, too new).  A write
 *   that failed for want of storage (disk full, read-only, I/O error) also
 *   sets http_status to STORE_HTTP_NO_STORAGE (507) and api_code to
 *   "insufficient_storage".  Messages name the file only as 'gateway.db'
 *   and never contain SQL.
 */
#ifndef GW_STORE_STORE_H
#define GW_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct event_base;

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 6

/* HTTP 507 Insufficient Storage: what a write that found no room means to a client. */
#define STORE_HTTP_NO_STORAGE 507

/* WAL pages (4 KiB) after a commit that wake the checkpointer (SQLite's own default). */
#define STORE_CHECKPOINT_PAGES 1000

/* Writes without a callback (session map, usage) are committed together, this long after
 * the first of them, or once this many wait (see Durability above). */
#define STORE_GROUP_COMMIT_MS 100
#define STORE_GROUP_COMMIT_MAX 256

/* WAL pages past which the loop checkpoints itself (the checkpointer fell behind). */
#define STORE_WAL_PAGES_MAX 16384

/* The longest chain store_responses_chain() walks. */
#define STORE_CHAIN_MAX 1000

/* store_audit_list(): rows per answer by default and at most. */
#define STORE_AUDIT_LIMIT_DEFAULT 100
#define STORE_AUDIT_LIMIT_MAX 1000

/* An audit row's error text is cut to this many bytes (at a UTF-8 character boundary). */
#define STORE_AUDIT_ERROR_MAX 1024

struct store;

struct store_session {
    char sid[37];      /* runtime session id (UUID); non-empty */
    char head[65];     /* hex SHA-256 of the history the session holds */
    char *pin;         /* the client's X-Session-Id, or NULL; "" is a pin distinct from NULL */
    char *model;       /* never NULL in a stored row */
    int64_t last_used; /* unix ms */
};

/* A stored response (rows handed to callbacks are borrowed). */
struct store_response {
    char *id;        /* resp_... */
    char *prev;      /* previous_response_id, or NULL */
    int64_t created; /* unix ms */
    char *input;     /* JSON array: the request's own input items */
    char *response;  /* JSON object: the response as last stored */
    char *owner;     /* the principal that created it; "" for rows from before owners */
};

/*
 * One audit row: a policy decision on a server-side agent's tool call and,
 * once the tool ran (or was refused), its outcome.  Rows handed to callbacks
 * are borrowed.
 */
struct store_audit {
    int64_t seq;         /* assigned by the store: increasing, never reused; 0 when adding */
    char id[40];         /* caller-chosen unique id ("aud_" + 24 hex), for the outcome */
    int64_t ts;          /* unix ms of the decision */
    char *request_id;    /* the HTTP request's id (X-Request-Id), or NULL */
    char *principal;     /* "anon", "key:...", ... */
    char *agent;         /* "logs" */
    char *session_id;    /* runtime session id, or NULL */
    char *tool;          /* the runtime tool name: "bash", "view", "elk-search", "task" */
    char *kind;          /* shell | read | write | url | mcp | agent */
    char *target;        /* command line, path, URL, "<server>-<tool>", agent name */
    char *decision;      /* "allow" | "deny" */
    char *rule;          /* the rule that decided: "shell(rm)", ...; or NULL */
    char *outcome;       /* "ok" | "error" | "denied" | NULL (not finished yet) */
    int64_t duration_ms; /* of the tool run, -1 unknown */
    char *error;         /* the tool's error text (cut to STORE_AUDIT_ERROR_MAX), or NULL */
};

/*
 * A virtual API key (issue 11).  The secret itself is never stored: only its SHA-256.
 * Rows handed to callbacks are borrowed.
 */
struct store_key {
    char id[40];               /* "vk_" + 24 hex, chosen by the caller, never reused */
    char *name;                /* unique among the active (not revoked) keys */
    unsigned char digest[32];  /* SHA-256 of the secret */
    char *user;                /* the person it belongs to, or NULL */
    char *models;              /* JSON array of model globs it may use, or NULL: all */
    int64_t rpm, tpm, max_concurrent; /* 0: no limit */
    double budget_credits;     /* 0: no budget */
    char *budget_period;       /* "day" | "week" | "month", or NULL */
    int64_t expires_ms;        /* unix ms; 0: never */
    int64_t created_ms;
    int64_t revoked_ms;        /* 0: active */
    /* Read only (store_keys_list()): its user's sealed GitHub token (store_tokens_set()),
     * or NULL, and when it was set. */
    char *github_sealed;
    int64_t github_updated_ms;
};

/* One request's usage (issue 11): recorded once, when it ends.  Borrowed in callbacks. */
struct store_usage {
    int64_t ts;            /* unix ms of its end */
    char *request_id;
    char *principal;       /* "anon", "key:...", "vk:..." */
    char *key_name;        /* the virtual key's name, or NULL */
    char *user;            /* the key's user, or NULL */
    char *model;           /* as the client named it ("agent/logs", "gpt-5-mini") */
    char *api;             /* "chat" | "messages" | "responses" */
    char *agent;           /* the agent's name, or NULL */
    int status;            /* the HTTP status it ended with (499: the client went away) */
    int64_t input_tokens, output_tokens, cached_tokens, reasoning_tokens;
    double credits;        /* AI credits (0 when unknown, e.g. BYOK) */
    int64_t latency_ms;
};

/* What store_usage_report() sums, and over what. */
struct store_usage_query {
    const char *group_by; /* "key" | "user" | "model" | "day" | "api" | "agent" */
    int64_t since_ms;     /* ts >= since (0: from the start) */
    int64_t until_ms;     /* ts < until (0: to now) */
    const char *key_name; /* only this key's rows, or NULL */
};

/* One group's totals; group is NULL for rows without one (no key, no user, no agent). */
struct store_usage_group {
    char *group;
    int64_t requests, errors; /* errors: status >= 400 */
    int64_t input_tokens, output_tokens, cached_tokens, reasoning_tokens;
    double credits;
};

/* Which audit rows store_audit_list() answers; NULL / 0 fields do not filter. */
struct store_audit_filter {
    const char *agent;     /* exactly this agent */
    const char *decision;  /* "allow" | "deny" */
    const char *principal; /* exactly this principal */
    int64_t since_ms;      /* ts >= since_ms (when > 0) */
    int64_t after_seq;     /* > 0: rows with seq > after_seq, oldest first (follow) */
    size_t limit;          /* 0: STORE_AUDIT_LIMIT_DEFAULT; at most STORE_AUDIT_LIMIT_MAX */
};

/*
 * What an operation's callback gets (borrowed, valid during the callback).
 * rc < 0: err is non-NULL and no rows are given.  rc >= 0: err is NULL.
 */
struct store_result {
    int rc;
    const struct gw_err *err;
    const struct store_session *sessions; /* n_sessions rows, or NULL */
    size_t n_sessions;
    const struct store_response *responses; /* n_responses rows, or NULL */
    size_t n_responses;
    const struct store_audit *audit; /* n_audit rows, or NULL */
    size_t n_audit;
    int more; /* store_audit_list(): more rows matched than the limit let through */
    const struct store_key *keys; /* n_keys rows, or NULL */
    size_t n_keys;
    const struct store_usage_group *groups; /* n_groups rows, or NULL */
    size_t n_groups;
};

typedef void (*store_cb)(void *ud, const struct store_result *res);

/* Counters of the store's own work (for /metrics and tests). */
struct store_stats {
    uint64_t checkpoints;       /* checkpoints run off the loop */
    uint64_t checkpoint_frames_max; /* the most WAL frames one found copied to the database */
    uint64_t checkpoint_us_max; /* longest checkpoint, microseconds */
    uint64_t checkpoint_errors; /* checkpoints that failed (busy, disk full): retried later */
    uint64_t checkpoints_on_loop; /* run by the loop itself: the checkpointer fell behind */
    uint64_t pending;           /* operations whose callback has not run yet */
};

/* ---- opening and closing ------------------------------------------------------------------ */

/*
 * Opens <dir>/gateway.db for asynchronous use on base, or with dir NULL a
 * private in-memory database (nothing survives store_close(); no WAL, no
 * file, no checkpointer).  The file is created by SQLite (mode 0600: the
 * umask is narrowed during the call, so call it before other threads exist)
 * if it does not exist; dir must exist.  Switches the file to WAL, sets
 * synchronous=NORMAL, a 1000 ms busy timeout and wal_autocheckpoint=0, runs
 * PRAGMA quick_check, migrates the schema up to STORE_SCHEMA_VERSION and
 * starts the checkpointer thread.  Fails with GW_EIO when the file cannot be
 * created or written, is not a database or is corrupt, or was created by a
 * newer copilot-gateway (its user_version is above STORE_SCHEMA_VERSION; the
 * file is then left as it is).  base may be NULL (a store nothing can use but
 * store_writable() and store_close(); tests).  On failure
 * *out is NULL.
 */
int store_sqlite_open(struct event_base *base, const char *dir, struct store **out,
                      struct gw_err *err) WARN_UNUSED;

/*
 * Closes the store: callbacks not yet run are dropped (never called), the
 * checkpointer runs a TRUNCATE checkpoint and is joined, the database is
 * closed.  Must not be called from a store callback.  NULL-safe.
 */
void store_close(struct store *s);

/* Drops the callback of operation id (see the asynchronous rules above). */
void store_cancel(struct store *s, uint64_t id);

/*
 * 1 if the store can be written: no write failed since open, or the last
 * write worked.  While writes fail, retries a write that leaves no trace (a
 * row put and deleted in one transaction) at most once a second, so the
 * answer recovers once there is room again; 0 with err describing the last
 * failure otherwise (507 fields as above for a storage failure).
 * Synchronous: it answers from what the store already knows (a health check
 * cannot wait); PostgreSQL reports its connection state.
 */
int store_writable(struct store *s, struct gw_err *err);

/* Fills *out (all zero for a store that keeps no such counters). */
void store_stats(struct store *s, struct store_stats *out);

/* ---- sessions: the broker's session map -------------------------------------------------- */

/*
 * Inserts the row for ss->sid, replacing any row with that sid.  ss->sid must
 * be non-empty and terminated, ss->model non-NULL (GW_EINVAL otherwise).
 * rc 0.  cb may be NULL.
 */
int store_sessions_put(struct store *s, const struct store_session *ss, store_cb cb, void *ud,
                       uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Deletes the row for sid; rc 1 if there was one, 0 if not.  cb may be NULL. */
int store_sessions_delete(struct store *s, const char *sid, store_cb cb, void *ud, uint64_t *id,
                          struct gw_err *err) WARN_UNUSED;

/*
 * Finds the most recently used row with this head and pin: rc 1 and the row
 * in res->sessions[0], or rc 0.  A NULL pin matches only rows without a pin,
 * a pin only rows with that exact pin; among rows with equal last_used the
 * one put last wins.
 */
int store_sessions_find(struct store *s, const char *head, const char *pin, store_cb cb,
                        void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/*
 * Every row, in no particular order, in res->sessions (rc = how many), e.g.
 * to sweep session directories at start-up.
 * NEEDSWORK: all rows in one answer; fine while the broker caps its
 * sessions, not for an unbounded table.
 */
int store_sessions_all(struct store *s, store_cb cb, void *ud, uint64_t *id,
                       struct gw_err *err) WARN_UNUSED;

/* Deletes the rows last used before cutoff (unix ms); rc = how many.  cb may be NULL. */
int store_sessions_expire(struct store *s, int64_t cutoff, store_cb cb, void *ud, uint64_t *id,
                          struct gw_err *err) WARN_UNUSED;

/* ---- responses: stored Responses API objects, owned by a principal --------------------- */

/*
 * Inserts or replaces the row for sr->id, owned by sr->owner (non-empty:
 * the creating principal).  id, owner, input and response are required
 * (GW_EINVAL).  Every 64th put also deletes the oldest rows beyond keep_max
 * (0 = no cap).  rc 0.  cb may be NULL (but a client promised store: true
 * wants to know).
 * NEEDSWORK: a put of an existing id by another principal replaces it; ids
 * are random (resp_ + 128 bits), so only their owner knows them.
 */
int store_responses_put(struct store *s, const struct store_response *sr, int64_t keep_max,
                        store_cb cb, void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* The response id owned by principal: rc 1 and res->responses[0], or rc 0 (none, or not
 * principal's). */
int store_responses_get(struct store *s, const char *principal, const char *rid, store_cb cb,
                        void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/*
 * The chain a previous_response_id stands for: res->responses[0] is rid,
 * each next one the previous response of the one before, newest first; rc =
 * how many.  The walk stops after a response without prev, at a link that
 * is missing or not principal's (rc 0 if rid itself is), or after max rows
 * (1..STORE_CHAIN_MAX, else GW_EINVAL).  So the last row has a prev while
 * rc < max: the chain was cut (expired or deleted); rc == max with a prev:
 * it is longer than max.
 */
int store_responses_chain(struct store *s, const char *principal, const char *rid, int max,
                          store_cb cb, void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Deletes the response rid owned by principal: rc 1, or 0 if there was none (or not
 * principal's).  cb may be NULL. */
int store_responses_delete(struct store *s, const char *principal, const char *rid, store_cb cb,
                           void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Deletes every principal's responses created before cutoff (unix ms); rc = how many. */
int store_responses_expire(struct store *s, int64_t cutoff, store_cb cb, void *ud, uint64_t *id,
                           struct gw_err *err) WARN_UNUSED;

/*
 * Marks every response whose stored object says "status": "in_progress" as
 * failed, with error {"code": "server_error", "message": message}: at
 * start-up nothing is running, so those were cut by a crash or kill of the
 * previous run.  rc = how many.
 */
int store_responses_fail_unfinished(struct store *s, const char *message, store_cb cb,
                                    void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* ---- audit: what server-side agents were allowed and refused, and how it went ---------- */

/*
 * Rows older than ttl_ms are deleted every 256th add on this store (0, the
 * default: kept forever).  Synchronous: a setting, no operation.
 */
void store_audit_set_ttl(struct store *s, int64_t ttl_ms);

/*
 * Appends row (row->seq is ignored; the store assigns it).  Required:
 * row->id (non-empty, terminated), principal, agent, tool, kind, target and
 * decision "allow" or "deny"; outcome NULL or "ok" | "error" | "denied"
 * (GW_EINVAL otherwise).  An error text longer than STORE_AUDIT_ERROR_MAX is
 * cut.  A second row with the same id fails (GW_EIO).  rc 0.  cb may be NULL.
 */
int store_audit_add(struct store *s, const struct store_audit *row, store_cb cb, void *ud,
                    uint64_t *id, struct gw_err *err) WARN_UNUSED;

/*
 * Records the outcome of audit row audit_id: outcome "ok" | "error" |
 * "denied" (GW_EINVAL otherwise), duration_ms (-1 unknown), error text or
 * NULL (cut as above).  rc = rows changed (0: no such row).  cb may be NULL.
 */
int store_audit_outcome(struct store *s, const char *audit_id, const char *outcome,
                        int64_t duration_ms, const char *error, store_cb cb, void *ud,
                        uint64_t *id, struct gw_err *err) WARN_UNUSED;

/*
 * The rows f selects, in res->audit (rc = how many): newest first (seq
 * descending), or with f->after_seq > 0 the oldest first among rows with
 * seq > after_seq (a follower's next page).  At most f->limit rows
 * (GW_EINVAL above STORE_AUDIT_LIMIT_MAX); res->more is 1 when more matched.
 * f->decision other than NULL, "allow" or "deny" is GW_EINVAL.
 */
int store_audit_list(struct store *s, const struct store_audit_filter *f, store_cb cb, void *ud,
                     uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* ---- keys: virtual API keys ------------------------------------------------------------------ */

/* Frees a key's strings and clears them (rows a caller filled itself).  NULL-safe. */
void store_key_release(struct store_key *sk);
/* dst = a deep copy of src (store_key_release() it). */
void store_key_copy(struct store_key *dst, const struct store_key *src);

/*
 * Adds key k (id and name required; budget_period NULL or day|week|month; else
 * GW_EINVAL).  rc 1 when added, 0 when an active key already has that name.
 */
int store_keys_add(struct store *s, const struct store_key *k, store_cb cb, void *ud,
                   uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Replaces every field of the active key k->id but its id, digest, created_ms and
 * revoked_ms (name included: rc 0 when another active key has it).  rc = rows changed. */
int store_keys_update(struct store *s, const struct store_key *k, store_cb cb, void *ud,
                      uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Revokes the active key called name at now_ms (the row stays, for usage history).
 * rc = 1, or 0 when there is no such active key. */
int store_keys_revoke(struct store *s, const char *name, int64_t now_ms, store_cb cb,
                      void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* Every key in res->keys (rc = how many), by name; revoked ones only with_revoked. */
int store_keys_list(struct store *s, int with_revoked, store_cb cb, void *ud, uint64_t *id,
                    struct gw_err *err) WARN_UNUSED;

/*
 * rc = the keys' version: it changes with every keys write by any process on the same
 * database (the CLI writes while the daemon runs), so a reader reloads only on a change.
 */
int store_keys_version(struct store *s, store_cb cb, void *ud, uint64_t *id,
                       struct gw_err *err) WARN_UNUSED;

/*
 * Sets the GitHub token of user (a key's user, or the name of a key without one) to sealed
 * (keys/sealed.h; never the token itself), or removes it (sealed NULL), at now_ms.  Counts as
 * a keys write (the keyrings reload).  rc = 1 if something changed, 0 when there was nothing
 * to remove.
 */
int store_tokens_set(struct store *s, const char *user, const char *sealed, int64_t now_ms,
                     store_cb cb, void *ud, uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* ---- usage: what each request used --------------------------------------------------------- */

/* Appends u (principal, model and api required, else GW_EINVAL).  rc 0.  cb may be NULL. */
int store_usage_add(struct store *s, const struct store_usage *u, store_cb cb, void *ud,
                    uint64_t *id, struct gw_err *err) WARN_UNUSED;

/* The totals of q, by group, in res->groups (rc = how many), ordered by group (NULL first).
 * A group_by other than those of struct store_usage_query is GW_EINVAL. */
int store_usage_report(struct store *s, const struct store_usage_query *q, store_cb cb, void *ud,
                       uint64_t *id, struct gw_err *err) WARN_UNUSED;

#endif

