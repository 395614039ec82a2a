/*
 * store/store.h - the persistent session map: which live runtime session
 * holds which conversation history, so the broker finds its sessions again
 * after the gateway restarts.
 *
 * One SQLite file, <data dir>/gateway.db, created with mode 0600 (SQLite gives
 * its -wal and -shm files the same mode).  Only SQLite ever opens it: one
 * connection per process (store_open() once, shared by the session map and
 * the stored responses), and never an open()/close() of the file beside it,
 * which would drop this process's POSIX locks on it and let another process
 * (the sqlite3 shell, a backup) delete the live WAL.  With that, backing the
 * file up while the gateway runs is safe (sqlite3 gateway.db ".backup F").
 * It runs in WAL mode with synchronous=NORMAL: a commit is a write() into
 * the WAL, no fsync, so a write costs microseconds on the event loop and an
 * acknowledged row survives a crash or kill of the gateway; only the WAL
 * checkpoint (every ~1000 pages) fsyncs.  An OS crash or power failure may
 * lose the last commits, never corrupt the file.  The
 * statements are prepared once at open and kept; every call runs in its own
 * autocommit transaction and resets its statement before returning, so no
 * transaction or read snapshot is held between calls.  The schema is
 * versioned with PRAGMA user_version and migrated forward at open.
 *
 *   sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL, pin TEXT,
 *            model TEXT NOT NULL, last_used INTEGER NOT NULL)
 *   index sessions_head_pin on (head, pin, last_used)
 *   responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT, created INTEGER NOT NULL,
 *             input TEXT NOT NULL, response TEXT NOT NULL)
 *   index responses_created on (created)
 *
 * responses holds the Responses API responses stored with store: true: the
 * request's own input items and the response object, as JSON texts, and the
 * previous_response_id they continue (api/responses.h explains the chain).
 *
 * Ownership: store_open() returns an owned store; free with store_close().
 *   Strings passed in are borrowed for the duration of the call.  A
 *   struct store_session filled by store_find() owns its pin and model;
 *   release them with store_session_release().  store_each() callbacks get a
 *   borrowed row valid only during the call.
 * Threading: one thread (the event loop); the connection is opened with
 *   SQLITE_OPEN_NOMUTEX.  Calls block only if another process holds the
 *   write lock, for at most the busy timeout (1000 ms).
 * Errors: 0 or a negative GW_E* code with details in the optional struct
 *   gw_err, which is left untouched on success.  GW_EINVAL for bad arguments,
 *   GW_ENOMEM when SQLite runs out of memory, GW_EIO for everything else
 *   (unwritable, locked, corrupt, not a database, too new).  A write that
 *   failed for want of storage (disk full, read-only, I/O error) also sets
 *   err->http_status to STORE_HTTP_NO_STORAGE (507) and err->api_code to
 *   "insufficient_storage".  Messages name the file only as 'gateway.db' and
 *   never contain SQL.
 */
#ifndef GW_STORE_STORE_H
#define GW_STORE_STORE_H

#include <stdint.h>

#include "util/err.h"

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SCHEMA_VERSION 2

/* HTTP 507 Insufficient Storage: what a write that found no room means to a client. */
#define STORE_HTTP_NO_STORAGE 507

struct store;

struct store_session {
    char sid[37];      /* runtime session id (UUID); non-empty */
    char head[65];     /* hex SHA-256 of the history the session holds */
    char *pin;         /* the client's X-Session-Id, or NULL; "" is a pin distinct from NULL */
    char *model;       /* never NULL in a stored row */
    int64_t last_used; /* unix ms */
};

/*
 * Opens <dir>/gateway.db, or with dir NULL a private in-memory database
 * (nothing survives store_close(); no WAL, no file).  <dir>/gateway.db is
 * created by SQLite (mode 0600: the umask is narrowed during the call, so
 * call it before other threads exist) if it does not exist; dir must
 * exist.  Switches the file to WAL, sets synchronous=NORMAL and a 1000 ms
 * busy timeout, runs PRAGMA quick_check, and migrates the schema up to
 * STORE_SCHEMA_VERSION.  Fails with GW_EIO when the file cannot be
 * created or written, is not a database or is corrupt, or was created by a
 * newer copilot-gateway (its user_version is above STORE_SCHEMA_VERSION; the
 * file is then left as it is).  On failure *out is NULL.
 */
int store_open(const char *dir, struct store **out, struct gw_err *err) WARN_UNUSED;

/* Finalizes the statements and closes the database.  NULL-safe. */
void store_close(struct store *s);

/*
 * Inserts the row for ss->sid, replacing any row with that sid.  ss->sid must
 * be non-empty, ss->model non-NULL (GW_EINVAL otherwise).
 */
int store_put(struct store *s, const struct store_session *ss, struct gw_err *err) WARN_UNUSED;

/* Deletes the row for sid.  A missing row is not an error. */
int store_delete(struct store *s, const char *sid, struct gw_err *err) WARN_UNUSED;

/*
 * Finds the most recently used row with this head and pin.  A NULL pin
 * matches only rows without a pin, and a pin only rows with that exact pin.
 * Among rows with equal last_used the one put last wins.  Returns 1 and
 * fills out (caller releases it with store_session_release()), 0 if there is
 * no such row, or a negative GW_E* code.  out is cleared first, so releasing
 * it is safe whatever the result.
 */
int store_find(struct store *s, const char *head, const char *pin, struct store_session *out,
               struct gw_err *err) WARN_UNUSED;

/* Frees ss->pin and ss->model and sets them to NULL.  NULL-safe. */
void store_session_release(struct store_session *ss);

/*
 * Calls cb for every row, in no particular order (e.g. to sweep session
 * directories at start-up).  The rows are read before the first call, so cb
 * may call any store function, store_delete() of its own row included, and a
 * read error means cb is never called.  Returns 0 after visiting every row,
 * the non-zero value cb returned to stop the walk, or a negative GW_E* code
 * (err is set only for the store's own errors).
 * NEEDSWORK: the snapshot holds every row in memory; fine while the broker
 * caps its sessions, not for an unbounded table.
 */
int store_each(struct store *s, int (*cb)(void *ud, const struct store_session *ss), void *ud,
               struct gw_err *err) WARN_UNUSED;

/* Deletes the rows last used before cutoff (unix ms); returns how many, or a
 * negative GW_E* code. */
int store_expire(struct store *s, int64_t cutoff, struct gw_err *err) WARN_UNUSED;

/* A stored response; strings owned (store_response_release()). */
struct store_response {
    char *id;       /* resp_... */
    char *prev;     /* previous_response_id, or NULL */
    int64_t created; /* unix ms */
    char *input;    /* JSON array: the request's own input items */
    char *response; /* JSON object: the response as last stored */
};

/* Inserts or replaces the row for sr->id.  Every 64th put also deletes the
 * oldest rows beyond keep_max (0 = no cap). */
int store_resp_put(struct store *s, const struct store_response *sr, int64_t keep_max,
                   struct gw_err *err) WARN_UNUSED;
/* 1 and *out filled (release it), 0 if there is no such row, or a negative GW_E* code. */
int store_resp_get(struct store *s, const char *id, struct store_response *out,
                   struct gw_err *err) WARN_UNUSED;
void store_response_release(struct store_response *sr);
/* 1 if a row was deleted, 0 if there was none, or a negative GW_E* code. */
int store_resp_delete(struct store *s, const char *id, struct gw_err *err) WARN_UNUSED;
/* Deletes the responses created before cutoff (unix ms); how many, or a negative code. */
int store_resp_expire(struct store *s, int64_t cutoff, struct gw_err *err) WARN_UNUSED;

/*
 * Marks every response whose stored object says "status": "in_progress" as
 * failed, with error {"code": "server_error", "message": message}: at
 * start-up nothing is running, so those were cut by a crash or kill of the
 * previous run.  Returns how many, or a negative GW_E* code.
 */
int store_resp_fail_unfinished(struct store *s, const char *message, struct gw_err *err)
    WARN_UNUSED;

/*
 * 1 if the store can be written: no write failed since open, or the last
 * write worked.  While writes fail, retries a write that leaves no trace
 * (a row put and deleted in one transaction) at most once a second, so the
 * answer recovers once there is room again; 0 with err describing the last
 * failure otherwise (507 fields as above for a storage failure).
 */
int store_writable(struct store *s, struct gw_err *err);

#endif
