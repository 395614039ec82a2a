/* The session map in SQLite: schema migrations and one kept prepared statement per operation. */
#include "store/store.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util/xmalloc.h"

#define DB_NAME "gateway.db"
#define BUSY_TIMEOUT_MS 1000
/* Truncate the WAL back to this size after a checkpoint instead of letting it keep its peak. */
#define WAL_SIZE_LIMIT "4194304"

struct store {
    sqlite3 *db;
    sqlite3_stmt *put;
    sqlite3_stmt *del;
    sqlite3_stmt *find;
    sqlite3_stmt *each;
    sqlite3_stmt *expire;
    sqlite3_stmt *rput, *rget, *rdel, *rexpire, *rtrim, *rfail;
    uint64_t rputs;             /* responses put since open: trim every RTRIM_EVERY */
    int write_rc;               /* SQLite code of the last write that failed, 0 once one works */
    int64_t probe_ms;           /* when store_writable() last tried a write */
};

#define RTRIM_EVERY 64
/* store_writable() retries a write at most this often while writes fail. */
#define PROBE_EVERY_MS 1000

/*
 * Migration i takes the schema from version i to i + 1 and ends by setting
 * user_version, inside the transaction that runs it.  Append only: a
 * released migration is never edited.
 */
static const char *const migrations[] = {
    /* 1: the session map.  last_used ends the index so store_find needs no sort. */
    "CREATE TABLE sessions(sid TEXT PRIMARY KEY NOT NULL, head TEXT NOT NULL, pin TEXT,"
    " model TEXT NOT NULL, last_used INTEGER NOT NULL);"
    "CREATE INDEX sessions_head_pin ON sessions(head, pin, last_used);"
    "PRAGMA user_version = 1;",
    /* 2: stored Responses API responses. */
    "CREATE TABLE responses(id TEXT PRIMARY KEY NOT NULL, prev TEXT, created INTEGER NOT NULL,"
    " input TEXT NOT NULL, response TEXT NOT NULL);"
    "CREATE INDEX responses_created ON responses(created);"
    "PRAGMA user_version = 2;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == STORE_SCHEMA_VERSION,
               "one migration per schema version");

static const char SQL_TUNE[] =
    "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = " WAL_SIZE_LIMIT;
static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO sessions(sid, head, pin, model, last_used) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_DEL[] = "DELETE FROM sessions WHERE sid = ?1";
/* `pin IS ?2` so that a NULL pin matches NULL; ties go to the newest rowid, i.e. the last put. */
static const char SQL_FIND[] = "SELECT sid, head, pin, model, last_used FROM sessions"
                               " WHERE head = ?1 AND pin IS ?2"
                               " ORDER BY last_used DESC, rowid DESC LIMIT 1";
static const char SQL_EACH[] = "SELECT sid, head, pin, model, last_used FROM sessions";
static const char SQL_EXPIRE[] = "DELETE FROM sessions WHERE last_used < ?1";
static const char SQL_RPUT[] = "INSERT OR REPLACE INTO responses(id, prev, created, input, response)"
                               " VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_RGET[] = "SELECT id, prev, created, input, response FROM responses"
                               " WHERE id = ?1";
static const char SQL_RDEL[] = "DELETE FROM responses WHERE id = ?1";
static const char SQL_REXPIRE[] = "DELETE FROM responses WHERE created < ?1";
/* The JSON functions are built into SQLite since 3.38. */
static const char SQL_RFAIL[] =
    "UPDATE responses SET response = json_set(response, '$.status', 'failed', '$.error',"
    " json_object('code', 'server_error', 'message', ?1))"
    " WHERE json_valid(response) AND json_extract(response, '$.status') = 'in_progress'";
static const char SQL_RTRIM[] = "DELETE FROM responses WHERE created <= (SELECT created FROM"
                                " responses ORDER BY created DESC LIMIT 1 OFFSET ?1)";

/* A write failed because of the disk under the file: full, read-only, or failing. */
static int storage_failure(int rc)
{
    int primary = rc & 0xff;

    return primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_READONLY ||
           primary == SQLITE_CANTOPEN;
}

/* Maps a SQLite result code to ours; the message uses sqlite3_errstr(), which never holds SQL. */
static int db_error(struct gw_err *err, int rc, const char *what)
{
    enum gw_status code = (rc & 0xff) == SQLITE_NOMEM ? GW_ENOMEM : GW_EIO;

    gw_err_set(err, code, "cannot %s '" DB_NAME "': %s", what, sqlite3_errstr(rc));
    if (err && storage_failure(rc)) {
        err->http_status = STORE_HTTP_NO_STORAGE;
        snprintf(err->api_code, sizeof(err->api_code), "insufficient_storage");
    }
    return code;
}

/* Records how a write ended (rc from its last sqlite3_step): store_writable() reports it. */
static int write_done(struct store *s, int rc, struct gw_err *err, const char *what)
{
    if (rc == SQLITE_DONE) {
        s->write_rc = 0;
        return GW_OK;
    }
    if ((rc & 0xff) != SQLITE_NOMEM && (rc & 0xff) != SQLITE_MISUSE)
        s->write_rc = rc;
    return db_error(err, rc, what);
}

/* Resets st so it holds no snapshot or lock, and drops bindings that point at caller memory. */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
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
 * Opens (and creates) the file through SQLite only.  The file is never opened
 * and closed behind SQLite's back: closing any descriptor of a file drops
 * every POSIX lock this process holds on it, including the SHARED lock a
 * WAL-mode connection keeps on the database, and another process (the
 * sqlite3 shell, a backup) would then take the file for unused, checkpoint it
 * and delete the live WAL under us.  SQLite creates a new file with mode
 * 0644 & ~umask, so the umask is narrowed for the call (the -wal and -shm
 * files copy the database's mode).
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
        return db_error(err, rc, "open");
    if (strcmp(text, "wal") != 0)
        return gw_err_set(err, GW_EIO, "cannot use WAL mode for '" DB_NAME "'");
    /*
     * synchronous = NORMAL: a commit is a write() into the WAL and no fsync, so it
     * survives a crash or kill of the gateway at once; the automatic checkpoint (every
     * ~1000 pages) fsyncs the WAL and then the file, so an OS crash or power loss can
     * lose the last commits but never corrupt the file (with OFF it could, and stored
     * responses are no cache).  Measured on a virtio disk, 2 KB responses: a put takes
     * ~37 us either way at the median; the put that runs a checkpoint stalls 13-19 ms
     * (OFF: 1.5-2 ms), about once every 500 puts, which raises the mean from ~48 to
     * ~110 us.  NEEDSWORK: run checkpoints from a helper thread with its own connection
     * to take that stall off the event loop.
     */
    rc = sqlite3_exec(db, SQL_TUNE, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_error(err, rc, "configure");
    rc = query_text(db, "PRAGMA quick_check(1)", text, sizeof(text));
    if (rc != SQLITE_OK)
        return db_error(err, rc, "check");
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
        return db_error(err, rc, "migrate");
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
    return db_error(err, rc, "migrate");
}

static int prepare_all(struct store *s, struct gw_err *err)
{
    const struct {
        const char *sql;
        sqlite3_stmt **st;
    } list[] = {
        {SQL_PUT, &s->put},   {SQL_DEL, &s->del},       {SQL_FIND, &s->find},
        {SQL_EACH, &s->each}, {SQL_EXPIRE, &s->expire}, {SQL_RPUT, &s->rput},
        {SQL_RGET, &s->rget}, {SQL_RDEL, &s->rdel},     {SQL_REXPIRE, &s->rexpire},
        {SQL_RTRIM, &s->rtrim}, {SQL_RFAIL, &s->rfail},
    };

    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        int rc =
            sqlite3_prepare_v3(s->db, list[i].sql, -1, SQLITE_PREPARE_PERSISTENT, list[i].st, NULL);
        if (rc != SQLITE_OK)
            return db_error(err, rc, "prepare statements for");
    }
    return GW_OK;
}

int store_open(const char *dir, struct store **out, struct gw_err *err)
{
    char path[PATH_MAX];
    struct store *s;
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
    s = xcalloc(1, sizeof(*s));
    rc = open_db(path, &s->db);
    if (rc != SQLITE_OK) {
        rc = db_error(err, rc, "open");
        goto fail;
    }
    rc = dir ? configure(s->db, err) : GW_OK;
    if (rc == GW_OK)
        rc = migrate(s->db, err);
    if (rc == GW_OK)
        rc = prepare_all(s, err);
    if (rc != GW_OK)
        goto fail;
    *out = s;
    return GW_OK;

fail:
    store_close(s);
    return rc;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->find);
    sqlite3_finalize(s->each);
    sqlite3_finalize(s->expire);
    sqlite3_finalize(s->rput);
    sqlite3_finalize(s->rget);
    sqlite3_finalize(s->rdel);
    sqlite3_finalize(s->rexpire);
    sqlite3_finalize(s->rtrim);
    sqlite3_finalize(s->rfail);
    /* Every statement is finalized, so this cannot fail with SQLITE_BUSY; the last
     * connection to close checkpoints the WAL into the database. */
    sqlite3_close(s->db);
    free(s);
}

/* Binds a C string as text, or NULL.  SQLITE_STATIC: stmt_done() runs before the caller's
 * string can go away. */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (!v)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, (int)strnlen(v, INT_MAX), SQLITE_STATIC);
}

int store_put(struct store *s, const struct store_session *ss, struct gw_err *err)
{
    sqlite3_stmt *st = s->put;
    int rc;

    if (!ss->sid[0] || !memchr(ss->sid, '\0', sizeof(ss->sid)) ||
        !memchr(ss->head, '\0', sizeof(ss->head)) || !ss->model)
        return gw_err_set(err, GW_EINVAL, "cannot store a session without id or model");
    rc = bind_text(st, 1, ss->sid);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, ss->head);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 3, ss->pin);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, ss->model);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, ss->last_used);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    return write_done(s, rc, err, "store session in");
}

int store_delete(struct store *s, const char *sid, struct gw_err *err)
{
    sqlite3_stmt *st = s->del;
    int rc;

    if (!sid)
        return gw_err_set(err, GW_EINVAL, "cannot delete a session without id");
    rc = bind_text(st, 1, sid);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    return write_done(s, rc, err, "delete session from");
}

/* Copies a column into a fixed array; fails on NULL, empty or too long (nothing we wrote). */
static int column_fixed(sqlite3_stmt *st, int col, char *out, size_t outsz)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);

    if (!t || n <= 0 || (size_t)n >= outsz || memchr(t, '\0', (size_t)n))
        return -1;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return 0;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    return t ? xstrndup((const char *)t, (size_t)sqlite3_column_bytes(st, col)) : NULL;
}

/* Fills out from the current row of a `SELECT sid, head, pin, model, last_used`. */
static int row_read(sqlite3_stmt *st, struct store_session *out, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    if (column_fixed(st, 0, out->sid, sizeof(out->sid)) ||
        column_fixed(st, 1, out->head, sizeof(out->head)) ||
        sqlite3_column_type(st, 3) == SQLITE_NULL)
        return gw_err_set(err, GW_EIO, "cannot read '" DB_NAME "': malformed session row");
    out->pin = column_dup(st, 2);
    out->model = column_dup(st, 3);
    out->last_used = sqlite3_column_int64(st, 4);
    return GW_OK;
}

int store_find(struct store *s, const char *head, const char *pin, struct store_session *out,
               struct gw_err *err)
{
    sqlite3_stmt *st = s->find;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!head)
        return gw_err_set(err, GW_EINVAL, "cannot find a session without a history hash");
    rc = bind_text(st, 1, head);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, pin);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = row_read(st, out, err) == GW_OK ? 1 : GW_EIO;
    else if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = db_error(err, rc, "find session in");
    stmt_done(st);
    return rc;
}

void store_session_release(struct store_session *ss)
{
    if (!ss)
        return;
    free(ss->pin);
    free(ss->model);
    ss->pin = NULL;
    ss->model = NULL;
}

static void rows_free(struct store_session *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_session_release(&rows[i]);
    free(rows);
}

/* Reads every row into a malloc'd array (*rows, *n); on error nothing is returned. */
static int rows_read_all(struct store *s, struct store_session **rows, size_t *n,
                         struct gw_err *err)
{
    sqlite3_stmt *st = s->each;
    struct store_session *v = NULL;
    size_t len = 0, cap = 0;
    int rc;

    for (;;) {
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
            break;
        if (len == cap) {
            cap = cap ? 2 * cap : 16;
            v = xrealloc(v, cap * sizeof(*v));
        }
        if (row_read(st, &v[len], err) != GW_OK) {
            rc = GW_EIO;
            goto fail;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(err, rc, "read sessions from");
        goto fail;
    }
    stmt_done(st);
    *rows = v;
    *n = len;
    return GW_OK;

fail:
    stmt_done(st);
    rows_free(v, len);
    return rc;
}

int store_each(struct store *s, int (*cb)(void *ud, const struct store_session *ss), void *ud,
               struct gw_err *err)
{
    struct store_session *rows = NULL;
    size_t n = 0;
    int rc = rows_read_all(s, &rows, &n, err);

    if (rc != GW_OK)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = cb(ud, &rows[i]);
    rows_free(rows, n);
    return rc;
}

int store_expire(struct store *s, int64_t cutoff, struct gw_err *err)
{
    sqlite3_stmt *st = s->expire;
    int rc = sqlite3_bind_int64(st, 1, cutoff);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    rc = write_done(s, rc, err, "expire sessions in");
    return rc ? rc : sqlite3_changes(s->db);
}

/* ---- stored responses -------------------------------------------------------------- */

int store_resp_put(struct store *s, const struct store_response *sr, int64_t keep_max,
                   struct gw_err *err)
{
    sqlite3_stmt *st = s->rput;
    int rc;

    if (!sr->id || !*sr->id || !sr->input || !sr->response)
        return gw_err_set(err, GW_EINVAL, "cannot store a response without id or content");
    rc = bind_text(st, 1, sr->id);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 2, sr->prev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, sr->created);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 4, sr->input);
    if (rc == SQLITE_OK)
        rc = bind_text(st, 5, sr->response);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    rc = write_done(s, rc, err, "store response in");
    if (rc)
        return rc;
    if (keep_max > 0 && ++s->rputs % RTRIM_EVERY == 0) {
        st = s->rtrim;
        rc = sqlite3_bind_int64(st, 1, keep_max);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(st);
        stmt_done(st);
        rc = write_done(s, rc, err, "trim responses in");
        if (rc)
            return rc;
    }
    return GW_OK;
}

int store_resp_get(struct store *s, const char *id, struct store_response *out,
                   struct gw_err *err)
{
    sqlite3_stmt *st = s->rget;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!id)
        return gw_err_set(err, GW_EINVAL, "cannot look up a response without id");
    rc = bind_text(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = column_dup(st, 0);
        out->prev = column_dup(st, 1);
        out->created = sqlite3_column_int64(st, 2);
        out->input = column_dup(st, 3);
        out->response = column_dup(st, 4);
        stmt_done(st);
        if (!out->id || !out->input || !out->response) {
            store_response_release(out);
            return gw_err_set(err, GW_EIO, "cannot read response from '" DB_NAME "'");
        }
        return 1;
    }
    stmt_done(st);
    if (rc != SQLITE_DONE)
        return db_error(err, rc, "look up response in");
    return 0;
}

void store_response_release(struct store_response *sr)
{
    if (!sr)
        return;
    free(sr->id);
    free(sr->prev);
    free(sr->input);
    free(sr->response);
    memset(sr, 0, sizeof(*sr));
}

int store_resp_delete(struct store *s, const char *id, struct gw_err *err)
{
    sqlite3_stmt *st = s->rdel;
    int rc;

    if (!id)
        return gw_err_set(err, GW_EINVAL, "cannot delete a response without id");
    rc = bind_text(st, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    rc = write_done(s, rc, err, "delete response from");
    return rc ? rc : sqlite3_changes(s->db) > 0;
}

int store_resp_expire(struct store *s, int64_t cutoff, struct gw_err *err)
{
    sqlite3_stmt *st = s->rexpire;
    int rc = sqlite3_bind_int64(st, 1, cutoff);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    rc = write_done(s, rc, err, "expire responses in");
    return rc ? rc : sqlite3_changes(s->db);
}

int store_resp_fail_unfinished(struct store *s, const char *message, struct gw_err *err)
{
    sqlite3_stmt *st = s->rfail;
    int rc = bind_text(st, 1, message);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    stmt_done(st);
    rc = write_done(s, rc, err, "update responses in");
    return rc ? rc : sqlite3_changes(s->db);
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

int store_writable(struct store *s, struct gw_err *err)
{
    int64_t now;
    int rc;

    if (!s->write_rc)
        return 1;
    now = mono_ms();
    if (now - s->probe_ms >= PROBE_EVERY_MS) {
        s->probe_ms = now;
        rc = sqlite3_exec(s->db, SQL_PROBE, NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            s->write_rc = 0;
            return 1;
        }
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        if ((rc & 0xff) != SQLITE_BUSY)
            s->write_rc = rc;
    }
    db_error(err, s->write_rc, "write");
    return 0;
}
