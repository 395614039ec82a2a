/*
 * store/sqlite.h - internals shared by the SQLite implementation's files:
 *   sqlite.c             the connection: open, configure, migrate, writable, close
 *   sqlite_checkpoint.c  the checkpointer thread and its own connection
 *   sqlite_group.c       group commit: the writes nobody waits for, queued and
 *                        committed together
 *   sqlite_sessions.c    the sessions domain (its statements, both APIs)
 *   sqlite_responses.c   the responses domain (its statements, both APIs)
 *   sqlite_audit.c       the audit domain
 *   sqlite_keys.c        the keys domain
 *   sqlite_usage.c       the usage domain
 * Each domain file prepares and finalizes its own statements; the ops table
 * in sqlite.c points at their store__sqlite_* functions.  Every op starts
 * with store__sqlite_sync(), which commits the queued writes first, except
 * a write called without a callback, which is queued (store__gc_*).
 *
 * Ownership: struct sqlite_store is the struct store the user holds (pub
 *   first); it owns the connection, the statements and the checkpointer.
 * Threading: everything here runs on the loop thread except the
 *   checkpointer's own thread, which touches only struct store__ckpt.
 */
#ifndef GW_STORE_SQLITE_H
#define GW_STORE_SQLITE_H

#include <sqlite3.h>

#include "store/backend.h"

#define DB_NAME "gateway.db"

struct store__ckpt;
struct store__gc_write;
struct event;

struct sqlite_store {
    struct store pub;
    sqlite3 *db;
    struct store__ckpt *ckpt; /* NULL for an in-memory store */
    /* sessions */
    sqlite3_stmt *put, *del, *find, *each, *expire;
    /* responses: get, chain and delete match the owner */
    sqlite3_stmt *rput, *rget, *rchain, *rdel, *rexpire, *rtrim, *rfail;
    uint64_t rputs;   /* responses put since open: trim every RTRIM_EVERY */
    /* audit (a list is prepared per call: its WHERE depends on the filter) */
    sqlite3_stmt *aadd, *aout, *atrim;
    uint64_t aadds;   /* audit rows added since open: TTL trim every ATRIM_EVERY */
    /* keys */
    sqlite3_stmt *kadd, *kupd, *krev, *klist, *klistall, *kver, *kbump, *tset, *tdel;
    /* usage (a report is prepared per call: its GROUP BY depends on the query) */
    sqlite3_stmt *uadd;
    int write_rc;     /* SQLite code of the last write that failed, 0 once one works */
    int64_t probe_ms; /* when store_writable() last tried a write */
    uint64_t loop_checkpoints; /* run by the loop itself, past STORE_WAL_PAGES_MAX */
    int kicked_at;             /* WAL pages when the checkpointer was last woken, 0: not yet */
    /* group commit (sqlite_group.c) */
    struct store__gc_write *gc; /* the queued writes, in call order ... */
    size_t n_gc;                /* ... how many (at most STORE_GROUP_COMMIT_MAX) */
    struct event *gc_timer;     /* commits them STORE_GROUP_COMMIT_MS after the first */
};

/* The SQLite store behind s; aborts if s is another implementation's. */
struct sqlite_store *store__sqlite(struct store *s);
/* The same, once the queued writes are committed (store__gc_commit()): how every op but a
 * queued write begins, so that nothing run here misses an earlier write of this store. */
struct sqlite_store *store__sqlite_sync(struct store *s);

/* Maps a SQLite result code to ours; the message uses sqlite3_errstr(), which never holds
 * SQL.  Storage failures get the 507 fields. */
int store__db_error(struct gw_err *err, int rc, const char *what);
/* Records how a write ended (rc from its last sqlite3_step): store_writable() reports it. */
int store__write_done(struct sqlite_store *q, int rc, struct gw_err *err, const char *what);
/* Steps a write statement st whose parameters are bound (rc from binding them: SQLITE_OK, or
 * why not) and resets it; how many rows it changed, or a negative GW_E* code. */
int store__step_write(struct sqlite_store *q, sqlite3_stmt *st, int rc, struct gw_err *err,
                      const char *what);
/* Resets st so it holds no snapshot or lock, and drops bindings that point at caller memory. */
void store__stmt_done(sqlite3_stmt *st);
/* Binds a C string as text, or NULL (SQLITE_STATIC: store__stmt_done() runs first). */
int store__bind_text(sqlite3_stmt *st, int i, const char *v);
/* Column col as a malloc'd string, or NULL for SQL NULL. */
char *store__column_dup(sqlite3_stmt *st, int col);
/* Prepares one kept statement (SQLITE_PREPARE_PERSISTENT). */
int store__prepare(struct sqlite_store *q, const char *sql, sqlite3_stmt **st, struct gw_err *err);

int store__sqlite_sessions_prepare(struct sqlite_store *q, struct gw_err *err);
void store__sqlite_sessions_finalize(struct sqlite_store *q);
int store__sqlite_responses_prepare(struct sqlite_store *q, struct gw_err *err);
void store__sqlite_responses_finalize(struct sqlite_store *q);
int store__sqlite_audit_prepare(struct sqlite_store *q, struct gw_err *err);
void store__sqlite_audit_finalize(struct sqlite_store *q);
int store__sqlite_keys_prepare(struct sqlite_store *q, struct gw_err *err);
void store__sqlite_keys_finalize(struct sqlite_store *q);
int store__sqlite_usage_prepare(struct sqlite_store *q, struct gw_err *err);
void store__sqlite_usage_finalize(struct sqlite_store *q);

/* The writes a queued one stands for, run now inside the caller's transaction (or alone):
 * 0, 1/0 for a delete (a row went or not), or a negative GW_E* code. */
int store__session_write(struct sqlite_store *q, const struct store_session *ss,
                         struct gw_err *err);
int store__session_erase(struct sqlite_store *q, const char *sid, struct gw_err *err);
int store__usage_write(struct sqlite_store *q, const struct store_usage *u, struct gw_err *err);

/*
 * Group commit (sqlite_group.c).  A write called without a callback (a
 * session row put or deleted, a usage row) is not run: a copy is queued.
 * The queue is committed in one transaction STORE_GROUP_COMMIT_MS after its
 * first write, at once when it holds STORE_GROUP_COMMIT_MAX, and by
 * store__gc_commit(), which store__sqlite_sync() and the close call.  A
 * failed commit loses the whole queue and logs it once (module "store").
 * gc_init needs q->pub.base (NULL: nothing is ever queued); gc_release
 * commits what is queued and frees the queue.
 */
void store__gc_init(struct sqlite_store *q);
void store__gc_release(struct sqlite_store *q);
void store__gc_session_put(struct sqlite_store *q, const struct store_session *ss);
void store__gc_session_delete(struct sqlite_store *q, const char *sid);
void store__gc_usage_add(struct sqlite_store *q, const struct store_usage *u);
void store__gc_commit(struct sqlite_store *q);

/* The ops, by domain. */
void store__sqlite_sessions_put(struct store *s, const struct store_session *ss,
                                struct store__req *req);
void store__sqlite_sessions_delete(struct store *s, const char *sid, struct store__req *req);
void store__sqlite_sessions_find(struct store *s, const char *head, const char *pin,
                                 struct store__req *req);
void store__sqlite_sessions_all(struct store *s, struct store__req *req);
void store__sqlite_sessions_expire(struct store *s, int64_t cutoff, struct store__req *req);
void store__sqlite_responses_put(struct store *s, const struct store_response *sr,
                                 int64_t keep_max, struct store__req *req);
void store__sqlite_responses_get(struct store *s, const char *principal, const char *rid,
                                 struct store__req *req);
void store__sqlite_responses_chain(struct store *s, const char *principal, const char *rid,
                                   int max, struct store__req *req);
void store__sqlite_responses_delete(struct store *s, const char *principal, const char *rid,
                                    struct store__req *req);
void store__sqlite_responses_expire(struct store *s, int64_t cutoff, struct store__req *req);
void store__sqlite_responses_fail_unfinished(struct store *s, const char *message,
                                             struct store__req *req);

void store__sqlite_audit_add(struct store *s, const struct store_audit *row,
                             struct store__req *req);
void store__sqlite_audit_outcome(struct store *s, const char *audit_id, const char *outcome,
                                 int64_t duration_ms, const char *error, struct store__req *req);
void store__sqlite_audit_list(struct store *s, const struct store_audit_filter *f,
                              struct store__req *req);

void store__sqlite_keys_add(struct store *s, const struct store_key *k, struct store__req *req);
void store__sqlite_keys_update(struct store *s, const struct store_key *k,
                               struct store__req *req);
void store__sqlite_keys_revoke(struct store *s, const char *name, int64_t now_ms,
                               struct store__req *req);
void store__sqlite_keys_list(struct store *s, int with_revoked, struct store__req *req);
void store__sqlite_keys_version(struct store *s, struct store__req *req);
void store__sqlite_tokens_set(struct store *s, const char *user, const char *sealed,
                              int64_t now_ms, struct store__req *req);
void store__sqlite_usage_add(struct store *s, const struct store_usage *u, struct store__req *req);
void store__sqlite_usage_report(struct store *s, const struct store_usage_query *q,
                                struct store__req *req);

/*
 * The checkpointer: a thread with its own connection to path that runs
 * wal_checkpoint(PASSIVE) when kicked.  start opens that connection on the
 * calling thread (errors reported there) and starts the thread; kick is
 * cheap and may be called from the WAL hook on every commit; stop has the
 * thread run a TRUNCATE checkpoint, joins it and frees everything.
 */
int store__ckpt_start(const char *path, struct store__ckpt **out, struct gw_err *err);
void store__ckpt_kick(struct store__ckpt *c);
void store__ckpt_stop(struct store__ckpt *c);
void store__ckpt_stats(struct store__ckpt *c, struct store_stats *out);

#endif
