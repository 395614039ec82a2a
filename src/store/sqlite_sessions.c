/* The sessions domain in SQLite: the broker's session map, one kept statement per operation. */
#include "store/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

static const char SQL_PUT[] =
    "INSERT OR REPLACE INTO sessions(sid, head, pin, model, last_used) VALUES (?1, ?2, ?3, ?4, ?5)";
static const char SQL_DEL[] = "DELETE FROM sessions WHERE sid = ?1";
/* `pin IS ?2` so that a NULL pin matches NULL; ties go to the newest rowid, i.e. the last put. */
static const char SQL_FIND[] = "SELECT sid, head, pin, model, last_used FROM sessions"
                               " WHERE head = ?1 AND pin IS ?2"
                               " ORDER BY last_used DESC, rowid DESC LIMIT 1";
static const char SQL_EACH[] = "SELECT sid, head, pin, model, last_used FROM sessions";
static const char SQL_EXPIRE[] = "DELETE FROM sessions WHERE last_used < ?1";

int store__sqlite_sessions_prepare(struct sqlite_store *q, struct gw_err *err)
{
    int rc = store__prepare(q, SQL_PUT, &q->put, err);

    if (rc == GW_OK)
        rc = store__prepare(q, SQL_DEL, &q->del, err);
    if (rc == GW_OK)
        rc = store__prepare(q, SQL_FIND, &q->find, err);
    if (rc == GW_OK)
        rc = store__prepare(q, SQL_EACH, &q->each, err);
    if (rc == GW_OK)
        rc = store__prepare(q, SQL_EXPIRE, &q->expire, err);
    return rc;
}

void store__sqlite_sessions_finalize(struct sqlite_store *q)
{
    sqlite3_finalize(q->put);
    sqlite3_finalize(q->del);
    sqlite3_finalize(q->find);
    sqlite3_finalize(q->each);
    sqlite3_finalize(q->expire);
}

/* The arguments are checked by the caller (store.c). */
int store__session_write(struct sqlite_store *q, const struct store_session *ss,
                         struct gw_err *err)
{
    sqlite3_stmt *st = q->put;
    int rc = store__bind_text(st, 1, ss->sid);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, ss->head);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 3, ss->pin);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 4, ss->model);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 5, ss->last_used);
    rc = store__step_write(q, st, rc, err, "store session in");
    return rc < 0 ? rc : GW_OK;
}

/* 1 if a row went, 0 if there was none, or a negative GW_E* code. */
int store__session_erase(struct sqlite_store *q, const char *sid, struct gw_err *err)
{
    int rc = store__step_write(q, q->del, store__bind_text(q->del, 1, sid), err,
                               "delete session from");

    return rc < 0 ? rc : rc > 0;
}

static int session_expire(struct sqlite_store *q, int64_t cutoff, struct gw_err *err)
{
    return store__step_write(q, q->expire, sqlite3_bind_int64(q->expire, 1, cutoff), err,
                             "expire sessions in");
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

/* Fills out from the current row of a `SELECT sid, head, pin, model, last_used`. */
static int row_read(sqlite3_stmt *st, struct store_session *out, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    if (column_fixed(st, 0, out->sid, sizeof(out->sid)) ||
        column_fixed(st, 1, out->head, sizeof(out->head)) ||
        sqlite3_column_type(st, 3) == SQLITE_NULL)
        return gw_err_set(err, GW_EIO, "cannot read '" DB_NAME "': malformed session row");
    out->pin = store__column_dup(st, 2);
    out->model = store__column_dup(st, 3);
    out->last_used = sqlite3_column_int64(st, 4);
    return GW_OK;
}

static int session_find(struct sqlite_store *q, const char *head, const char *pin,
                        struct store_session *out, struct gw_err *err)
{
    sqlite3_stmt *st = q->find;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = store__bind_text(st, 1, head);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, pin);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = row_read(st, out, err) == GW_OK ? 1 : GW_EIO;
    else if (rc == SQLITE_DONE)
        rc = 0;
    else
        rc = store__db_error(err, rc, "find session in");
    store__stmt_done(st);
    return rc;
}

static void rows_free(struct store_session *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_session_release(&rows[i]);
    free(rows);
}

/* Reads every row into a malloc'd array (*rows, *n); on error nothing is returned. */
static int rows_read_all(struct sqlite_store *q, struct store_session **rows, size_t *n,
                         struct gw_err *err)
{
    sqlite3_stmt *st = q->each;
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
        rc = store__db_error(err, rc, "read sessions from");
        goto fail;
    }
    store__stmt_done(st);
    *rows = v;
    *n = len;
    return GW_OK;

fail:
    store__stmt_done(st);
    rows_free(v, len);
    return rc;
}

/* ---- the asynchronous ops: run now, delivered on the next loop turn ------------------- */

/* Without a callback a put or delete is queued (sqlite_group.c): the broker writes a row
 * each time a session goes idle or is taken, and waits for neither. */
void store__sqlite_sessions_put(struct store *s, const struct store_session *ss,
                                struct store__req *req)
{
    if (!req->cb)
        store__gc_session_put(store__sqlite(s), ss);
    else
        req->rc = store__session_write(store__sqlite_sync(s), ss, &req->err);
    store__complete(req);
}

void store__sqlite_sessions_delete(struct store *s, const char *sid, struct store__req *req)
{
    if (!req->cb)
        store__gc_session_delete(store__sqlite(s), sid);
    else
        req->rc = store__session_erase(store__sqlite_sync(s), sid, &req->err);
    store__complete(req);
}

void store__sqlite_sessions_find(struct store *s, const char *head, const char *pin,
                                 struct store__req *req)
{
    struct store_session row;

    req->rc = session_find(store__sqlite_sync(s), head, pin, &row, &req->err);
    if (req->rc == 1)
        *store__add_session(req) = row;
    store__complete(req);
}

void store__sqlite_sessions_all(struct store *s, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);

    req->rc = rows_read_all(q, &req->sessions, &req->n_sessions, &req->err);
    if (req->rc == GW_OK)
        req->rc = (int)req->n_sessions;
    store__complete(req);
}

void store__sqlite_sessions_expire(struct store *s, int64_t cutoff, struct store__req *req)
{
    req->rc = session_expire(store__sqlite_sync(s), cutoff, &req->err);
    store__complete(req);
}

/* ---- rows ---------------------------------------------------------------------------- */

void store_session_release(struct store_session *ss)
{
    if (!ss)
        return;
    free(ss->pin);
    free(ss->model);
    ss->pin = NULL;
    ss->model = NULL;
}
