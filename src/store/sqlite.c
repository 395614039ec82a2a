/* The SQLite store: one connection on the loop, schema migrations, health, and the ops table. */
#include "store/sqlite.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/xmalloc.h"

#define BUSY_TIMEOUT_MS 1000
/* Truncate the WAL back to this size after a checkpoint instead of letting it keep its peak. */
#define WAL_SIZE_LIMIT "4194304"
/* store_writable() retries a write at most this often while writes fail. */
#define PROBE_EVERY_MS 1000

/*
 * Migration i takes the schema from version i to i + 1 and ends by setting
 * user_version, inside the transaction that runs it.  Append only: a
 * released migration is never edited.
 */
static const char *const migrations[] = {
    /* 1: the session map.  last_used ends the index so a lookup needs no sort. */
    "CREATE TABLE sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL, pin TEXT,"
    " model TEXT NOT NULL, last_used INTEGER NOT NULL);"
    "CREATE INDEX sessions_head_pin ON sessions(head, pin, last_used);"
    "PRAGMA user_version = 1;",
    /* 2: stored Responses API responses. */
    "CREATE TABLE responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT, created INTEGER NOT NULL,"
    " input TEXT NOT NULL, response TEXT NOT NULL);"
    "CREATE INDEX responses_created ON responses(created);"
    "PRAGMA user_version = 2;",
    /* 3: a response belongs to the principal that created it ('' before: see store.h). */
    "ALTER TABLE responses ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
    "PRAGMA user_version = 3;",
    /* 4: the audit log.  AUTOINCREMENT: a seq is never reused, even after the newest rows
     * were trimmed, so a follower asking for seq > N never misses a row. */
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,"
    " ts INTEGER NOT NULL, request_id TEXT, principal TEXT NOT NULL, agent TEXT NOT NULL,"
    " session_id TEXT, tool TEXT NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL,"
    " decision TEXT NOT NULL, rule TEXT, outcome TEXT,"
    " duration_ms INTEGER NOT NULL DEFAULT -1, error TEXT);"
    "CREATE INDEX audit_ts ON audit(ts);"
    "CREATE INDEX audit_agent_seq ON audit(agent, seq);"
    "PRAGMA user_version = 4;",
    /* 5: virtual API keys.  A revoked key keeps its row (usage names it), so a name is
     * unique among the active ones only.  meta.keys counts keys writes: readers in other
     * processes reload when it changes. */
    "CREATE TABLE keys(id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
    " digest BLOB NOT NULL UNIQUE, user TEXT, models TEXT, rpm INTEGER NOT NULL DEFAULT 0,"
    " tpm INTEGER NOT NULL DEFAULT 0, max_concurrent INTEGER NOT NULL DEFAULT 0,"
    " budget_credits REAL NOT NULL DEFAULT 0, budget_period TEXT,"
    " expires INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX keys_active_name ON keys(name) WHERE revoked = 0;"
    "CREATE TABLE meta(k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL);"
    "INSERT INTO meta VALUES ('keys', 0);"
    /* and what each request used: summed by key, user, model, day, api or agent */
    "CREATE TABLE usage(seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
    " request_id TEXT, principal TEXT NOT NULL, key_name TEXT, user TEXT, model TEXT NOT NULL,"
    " api TEXT NOT NULL, agent TEXT, status INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"
    " credits REAL NOT NULL, latency_ms INTEGER NOT NULL);"
    "CREATE INDEX usage_ts ON usage(ts);"
    "PRAGMA user_version = 5;",
    /* 6: users' own GitHub tokens, sealed (keys/sealed.h), by the user they belong to (a
     * key's user, or its name when it has none).  Writes count as keys writes (meta.keys). */
    "CREATE TABLE github_tokens(user TEXT PRIMARY KEY NOT NULL, sealed TEXT NOT NULL,"
    " updated INTEGER NOT NULL);"
    /* and a key's totals (GET /v1/me, its budget at every key load) read its rows only */
    "CREATE INDEX usage_key_ts ON usage(key_name, ts);"
    "PRAGMA user_version = 6;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

/*
 * synchronous = NORMAL: a commit is a write() into the WAL and no fsync, so it
 * survives a crash or kill of the gateway at once; the checkpoint fsyncs the WAL
 * and then the file, so an OS crash or power loss can lose the last commits but
 * never corrupt the file (with OFF it could, and stored responses are no cache).
 * Automatic checkpoints are turned off on this connection (start_checkpointer()):
 * the commit that crossed the threshold used to run the checkpoint, fsyncs and
 * all, on the event loop.  bench/store.c, 10000 puts of 2 KB at 1000/s on a
 * virtio disk shared with other builds, three runs each: p99 341-816 us, p99.9
 * 9.5-25 ms, max 14-60 ms with the checkpoint on the loop; p99 155-225 us, p99.9
 * 0.8-5.6 ms, max 6-28 ms with the checkpointer (the p50 is 43-70 us either way).
 * NEEDSWORK: what stays in the tail is not explained yet; likely the machine's
 * other load, and a write() waiting for the file system's journal while the
 * checkpointer's fsync commits it.
 */
static const char SQL_TUNE[] =
    "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = " WAL_SIZE_LIMIT;

/* A write failed because of the disk under the file: full, read-only, or failing. */
static int storage_failure(int rc)
{
    int primary = rc & 0xff;

    return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_READONLY ||
           primary == SQLITE_CANTOPEN;
}

int store__db_error(struct gw_err *err, int rc, const char *what)
{
    enum gw_status code = (rc & 0xff) == SQLITE_NOMEM ? GW_ENOMEM : GW_EIO;

    gw_err_set(err, code, "cannot %s '" DB_NAME "': %s", what, sqlite3_errstr(rc));
    if (err && storage_failure(rc)) {
        err->http_status = STORE_HTTP_NO_STORAGE;
        snprintf(err->api_code, sizeof(err->api_code), "insufficient_storage");
    }
    return code;
}

int store__write_done(struct sqlite_store *q, int rc, struct gw_err *err, const char *what)
{
    if (rc == SQLITE_DONE) {
        q->write_rc = 0;
        return GW_OK;
    }
    if ((rc & 0xff) != SQLITE_NOMEM && (rc & 0xff) != SQLITE_MISUSE)
        q->write_rc = rc;
    return store__db_error(err, rc, what);
}

int store__step_write(struct sqlite_store *q, sqlite3_stmt *st, int rc, struct gw_err *err,
                      const char *what)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    store__stmt_done(st);
    rc = store__write_done(q, rc, err, what);
    return rc ? rc : sqlite3_changes(q->db);
}

void store__stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

int store__bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (!v)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, (int)strnlen(v, INT_MAX), SQLITE_STATIC);
}

char *store__column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, col)) : NULL;
}

int store__prepare(struct sqlite_store *q, const char *sql, sqlite3_stmt **st, struct gw_err *err)
{
    int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);

    return rc == SQLITE_OK ? GW_OK : store__db_error(err, rc, "prepare statements for");
}

/* Runs a one-row query and copies column 0 as text into out (empty if NULL). */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t outsz)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        snprintf(out, outsz, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int query_int(sqlite3 *db, const char *sql, int *out)
{
    char text[32];
    int rc = query_text(db, sql, text, sizeof(text));

    if (rc == SQLITE_OK)
        *out = (int)strtol(text, NULL, 10);
    return rc;
}

/*
 * Opens (and creates) the file through SQLite only: never an open()/close()
 * beside it (store.h says why).  SQLite creates a new file with mode 0644 &
 * ~umask, so the umask is narrowed for the call (the -wal and -shm files
 * copy the database's mode).
 */
static int open_db(const char *path, sqlite3 **db)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    mode_t old = umask(077);
    int rc = sqlite3_open_v2(path, db, flags, NULL);

    umask(old);
    return rc;
}

/* WAL, cheap commits, and a corruption check while the file is still small to read. */
static int configure(sqlite3 *db, struct gw_err *err)
{
    char text[64];
    int rc;

    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    /* The first statement to read the file: a file that is no database fails here. */
    rc = query_text(db, "PRAGMA journal_mode = WAL", text, sizeof(text));
    if (rc != SQLITE_OK)
        return store__db_error(err, rc, "open");
    if (strcmp(text, "wal") != 0)
        return gw_err_set(err, GW_EIO, "cannot use WAL mode for '" DB_NAME "'");
    rc = sqlite3_exec(db, SQL_TUNE, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store__db_error(err, rc, "configure");
    rc = query_text(db, "PRAGMA quick_check(1)", text, sizeof(text));
    if (rc != SQLITE_OK)
        return store__db_error(err, rc, "check");
    if (strcmp(text, "ok") != 0)
        return gw_err_set(err, GW_EIO,
                          "cannot use '" DB_NAME "': database disk image is malformed");
    /* SQLite silently opens a file it may not write read-only. */
    if (sqlite3_db_readonly(db, "main") != 0)
        return gw_err_set(err, GW_EIO, "cannot write '" DB_NAME "': read-only");
    return GW_OK;
}

/* Runs the migrations past the file's version in one transaction (re-read inside it: another
 * gateway may have migrated meanwhile). */
static int migrate(sqlite3 *db, struct gw_err *err)
{
    int version = 0;
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return store__db_error(err, rc, "migrate");
    rc = query_int(db, "PRAGMA user_version", &version);
    if (rc != SQLITE_OK)
        goto fail;
    if (version < 0 || version > STORE_SCHEMA_VERSION) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return gw_err_set(err, GW_EIO,
                          "cannot use '" DB_NAME "': database was created by a newer "
                          "copilot-gateway (schema %d, this one knows %d)",
                          version, STORE_SCHEMA_VERSION);
    }
    for (int v = version; v < STORE_SCHEMA_VERSION; v++) {
        rc = sqlite3_exec(db, migrations[v], NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto fail;
    }
    rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    return GW_OK;

fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return store__db_error(err, rc, "migrate");
}

/*
 * After every commit on the loop's connection.  When the WAL passes
 * STORE_CHECKPOINT_PAGES it wakes the checkpointer (cheap: a mutex and a
 * flag), which then runs until it has caught up; it wakes it again only after
 * as many pages more (a round that a reader of another process or a full disk
 * cut short), or once the writer has started the WAL over.  Kicking on every
 * commit instead, as SQLite's own automatic checkpoint asks, would keep
 * checkpoints running back to back, an fsync each, and the writer cannot
 * start the WAL over while one runs.  A writer that outruns the checkpointer
 * for long (a burst of big puts on a slow disk) would grow the WAL without
 * bound; past STORE_WAL_PAGES_MAX the loop checkpoints itself, as it did
 * before the checkpointer existed: back-pressure instead of a WAL the size
 * of the disk.
 */
static int wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    struct sqlite_store *q = ud;

    if (pages < q->kicked_at)
        q->kicked_at = 0; /* the WAL started over */
    if (pages >= STORE_WAL_PAGES_MAX) {
        if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
            SQLITE_OK)
            q->loop_checkpoints++;
    } else if (pages >= q->kicked_at + STORE_CHECKPOINT_PAGES) {
        q->kicked_at = pages;
        store__ckpt_kick(q->ckpt);
    }
    return SQLITE_OK;
}

/* Moves checkpoints off the loop: none on this connection, the checkpointer's instead.  If
 * this SQLite cannot run threads, SQLite keeps checkpointing on the loop as before. */
static int start_checkpointer(struct sqlite_store *q, const char *path, struct gw_err *err)
{
    int rc;

    if (!sqlite3_threadsafe())
        return GW_OK;
    rc = store__ckpt_start(path, &q->ckpt, err);
    if (rc)
        return rc;
    sqlite3_wal_autocheckpoint(q->db, 0);
    sqlite3_wal_hook(q->db, wal_hook, q);
    return GW_OK;
}

static void sqlite_close(struct store *s);
static int sqlite_writable(struct store *s, struct gw_err *err);
static void sqlite_stats(struct store *s, struct store_stats *out);

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sqlite_close,
    .writable = sqlite_writable,
    .stats = sqlite_stats,
    .sessions_put = store__sqlite_sessions_put,
    .sessions_delete = store__sqlite_sessions_delete,
    .sessions_find = store__sqlite_sessions_find,
    .sessions_all = store__sqlite_sessions_all,
    .sessions_expire = store__sqlite_sessions_expire,
    .responses_put = store__sqlite_responses_put,
    .responses_get = store__sqlite_responses_get,
    .responses_chain = store__sqlite_responses_chain,
    .responses_delete = store__sqlite_responses_delete,
    .responses_expire = store__sqlite_responses_expire,
    .responses_fail_unfinished = store__sqlite_responses_fail_unfinished,
    .audit_add = store__sqlite_audit_add,
    .audit_outcome = store__sqlite_audit_outcome,
    .audit_list = store__sqlite_audit_list,
    .keys_add = store__sqlite_keys_add,
    .keys_update = store__sqlite_keys_update,
    .keys_revoke = store__sqlite_keys_revoke,
    .keys_list = store__sqlite_keys_list,
    .keys_version = store__sqlite_keys_version,
    .tokens_set = store__sqlite_tokens_set,
    .usage_add = store__sqlite_usage_add,
    .usage_report = store__sqlite_usage_report,
};

struct sqlite_store *store__sqlite(struct store *s)
{
    if (s->ops != &sqlite_ops)
        abort(); /* BUG: a SQLite op called on another implementation's store */
    return (struct sqlite_store *)s;
}

struct sqlite_store *store__sqlite_sync(struct store *s)
{
    struct sqlite_store *q = store__sqlite(s);

    store__gc_commit(q);
    return q;
}

int store_sqlite_open(struct event_base *base, const char *dir, struct store **out,
                      struct gw_err *err)
{
    char path[PATH_MAX];
    struct sqlite_store *q;
    int rc;

    *out = NULL;
    if (dir && !*dir)
        return gw_err_set(err, GW_EINVAL, "no data directory for '" DB_NAME "'");
    if (!dir) {
        snprintf(path, sizeof(path), ":memory:");
    } else {
        if ((size_t)snprintf(path, sizeof(path), "%s/" DB_NAME, dir) >= sizeof(path))
            return gw_err_set(err, GW_EINVAL, "data directory path too long for '" DB_NAME "'");
    }
    q = xcalloc(1, sizeof(*q));
    store__init(&q->pub, &sqlite_ops, base);
    rc = open_db(path, &q->db);
    if (rc != SQLITE_OK) {
        rc = store__db_error(err, rc, "open");
        goto fail;
    }
    rc = dir ? configure(q->db, err) : GW_OK;
    if (rc == GW_OK)
        rc = migrate(q->db, err);
    if (rc == GW_OK)
        rc = store__sqlite_sessions_prepare(q, err);
    if (rc == GW_OK)
        rc = store__sqlite_responses_prepare(q, err);
    if (rc == GW_OK)
        rc = store__sqlite_audit_prepare(q, err);
    if (rc == GW_OK)
        rc = store__sqlite_keys_prepare(q, err);
    if (rc == GW_OK)
        rc = store__sqlite_usage_prepare(q, err);
    if (rc == GW_OK && dir)
        rc = start_checkpointer(q, path, err);
    if (rc != GW_OK)
        goto fail;
    store__gc_init(q);
    *out = &q->pub;
    return GW_OK;

fail:
    store_close(&q->pub);
    return rc;
}

static void sqlite_close(struct store *s)
{
    struct sqlite_store *q = store__sqlite(s);

    /* The queued writes first (SIGTERM ends here, once the HTTP server drained), then the
     * checkpointer: its TRUNCATE checkpoint empties the WAL while this connection, which
     * holds no transaction, is still open. */
    store__gc_release(q);
    store__ckpt_stop(q->ckpt);
    store__sqlite_sessions_finalize(q);
    store__sqlite_responses_finalize(q);
    store__sqlite_audit_finalize(q);
    store__sqlite_keys_finalize(q);
    store__sqlite_usage_finalize(q);
    /* Every statement is finalized, so this cannot fail with SQLITE_BUSY; the last
     * connection to close checkpoints what is left of the WAL into the database. */
    sqlite3_close(q->db);
    free(q);
}

static void sqlite_stats(struct store *s, struct store_stats *out)
{
    struct sqlite_store *q = store__sqlite(s);

    if (q->ckpt)
        store__ckpt_stats(q->ckpt, out);
    out->checkpoints_on_loop = q->loop_checkpoints;
}

/* ---- health -------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A write that changes nothing in the end but commits a page: the row goes in and out in
 * one transaction. */
static const char SQL_PROBE[] =
    "BEGIN IMMEDIATE;"
    "INSERT OR REPLACE INTO responses(id, prev, created, input, response)"
    " VALUES ('', NULL, 0, '[]', '{}');"
    "DELETE FROM responses WHERE id = '';"
    "COMMIT";

static int sqlite_writable(struct store *s, struct gw_err *err)
{
    struct sqlite_store *q = store__sqlite(s);
    int64_t now;
    int rc;

    if (!q->write_rc)
        return 1;
    now = mono_ms();
    if (now - q->probe_ms >= PROBE_EVERY_MS) {
        q->probe_ms = now;
        rc = sqlite3_exec(q->db, SQL_PROBE, NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            q->write_rc = 0;
            return 1;
        }
        if (!sqlite3_get_autocommit(q->db))
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY)
            q->write_rc = rc;
    }
    store__db_error(err, q->write_rc, "write");
    return 0;
}
