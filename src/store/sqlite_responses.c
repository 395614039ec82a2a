/* The responses domain in SQLite: stored Responses API objects, each owned by a principal. */
#include "store/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/* Every 64th put trims the table to its cap. */
#define RTRIM_EVERY 64

/* Who may see a row: its owner, and "anon" for the rows from before owners (store.h). */
#define OWNED_BY_2 "(owner = ?2 OR (owner = '' AND ?2 = 'anon'))"
#define COLUMNS "id, prev, created, input, response, owner"

static const char SQL_RPUT[] = "INSERT OR REPLACE INTO responses(" COLUMNS ")"
                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
static const char SQL_RGET[] = "SELECT " COLUMNS " FROM responses WHERE id = ?1 AND " OWNED_BY_2;
/* Newest first; the depth bound also ends a cycle no code of ours writes. */
static const char SQL_RCHAIN[] =
    "WITH RECURSIVE chain(" COLUMNS ", depth) AS ("
    " SELECT " COLUMNS ", 1 FROM responses WHERE id = ?1 AND " OWNED_BY_2
    " UNION ALL"
    " SELECT r.id, r.prev, r.created, r.input, r.response, r.owner, c.depth + 1"
    " FROM chain c JOIN responses r ON r.id = c.prev"
    " WHERE c.depth < ?3 AND (r.owner = ?2 OR (r.owner = '' AND ?2 = 'anon')))"
    " SELECT " COLUMNS " FROM chain ORDER BY depth";
static const char SQL_RDEL[] = "DELETE FROM responses WHERE id = ?1 AND " OWNED_BY_2;
static const char SQL_REXPIRE[] = "DELETE FROM responses WHERE created < ?1";
/* The JSON functions are built into SQLite since 3.38. */
static const char SQL_RFAIL[] =
    "UPDATE responses SET response = json_set(response, '$.status', 'failed', '$.error',"
    " json_object('code', 'server_error', 'message', ?1))"
    " WHERE json_valid(response) AND json_extract(response, '$.status') = 'in_progress'";
static const char SQL_RTRIM[] = "DELETE FROM responses WHERE created <= (SELECT created FROM"
                                " responses ORDER BY created DESC LIMIT 1 OFFSET ?1)";

int store__sqlite_responses_prepare(struct sqlite_store *q, struct gw_err *err)
{
    const struct {
        const char *sql;
        sqlite3_stmt **st;
    } list[] = {
        {SQL_RPUT, &q->rput},       {SQL_RGET, &q->rget},   {SQL_RCHAIN, &q->rchain},
        {SQL_RDEL, &q->rdel},       {SQL_REXPIRE, &q->rexpire}, {SQL_RTRIM, &q->rtrim},
        {SQL_RFAIL, &q->rfail},
    };

    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++)
        if (store__prepare(q, list[i].sql, list[i].st, err))
            return GW_EIO;
    return GW_OK;
}

void store__sqlite_responses_finalize(struct sqlite_store *q)
{
    sqlite3_stmt *all[] = {q->rput, q->rget,    q->rchain, q->rdel,
                           q->rexpire, q->rtrim, q->rfail};

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
}

/* The arguments are checked by the caller (store.c). */
static int resp_put(struct sqlite_store *q, const struct store_response *sr, int64_t keep_max,
                    struct gw_err *err)
{
    sqlite3_stmt *st = q->rput;
    int rc = store__bind_text(st, 1, sr->id);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, sr->prev);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, sr->created);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 4, sr->input);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 5, sr->response);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 6, sr->owner ? sr->owner : "");
    rc = store__step_write(q, st, rc, err, "store response in");
    if (rc < 0)
        return rc;
    if (keep_max > 0 && ++q->rputs % RTRIM_EVERY == 0) {
        rc = store__step_write(q, q->rtrim, sqlite3_bind_int64(q->rtrim, 1, keep_max), err,
                          "trim responses in");
        if (rc < 0)
            return rc;
    }
    return GW_OK;
}

/* Fills out from the current row of a `SELECT COLUMNS`. */
static int row_read(sqlite3_stmt *st, struct store_response *out, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    out->id = store__column_dup(st, 0);
    out->prev = store__column_dup(st, 1);
    out->created = sqlite3_column_int64(st, 2);
    out->input = store__column_dup(st, 3);
    out->response = store__column_dup(st, 4);
    out->owner = store__column_dup(st, 5);
    if (out->id && out->input && out->response && out->owner)
        return GW_OK;
    store_response_release(out);
    return gw_err_set(err, GW_EIO, "cannot read response from '" DB_NAME "'");
}

/*
 * Reads the rows of st (bound, or rc says why not) into the request: its rc
 * is how many, or a negative GW_E* code with no rows.
 */
static void rows_read(sqlite3_stmt *st, int rc, struct store__req *req, const char *what)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) {
        if (row_read(st, store__add_response(req), &req->err)) {
            req->n_responses--; /* row_read() left it empty */
            rc = GW_EIO;
            break;
        }
        rc = sqlite3_step(st);
    }
    store__stmt_done(st);
    if (rc == SQLITE_DONE) {
        req->rc = (int)req->n_responses;
        return;
    }
    req->rc = rc == GW_EIO ? GW_EIO : store__db_error(&req->err, rc, what);
    for (size_t i = 0; i < req->n_responses; i++)
        store_response_release(&req->responses[i]);
    req->n_responses = 0;
}

/* ---- the asynchronous ops: run now, delivered on the next loop turn ------------------- */

void store__sqlite_responses_put(struct store *s, const struct store_response *sr,
                                 int64_t keep_max, struct store__req *req)
{
    req->rc = resp_put(store__sqlite_sync(s), sr, keep_max, &req->err);
    store__complete(req);
}

void store__sqlite_responses_get(struct store *s, const char *principal, const char *rid,
                                 struct store__req *req)
{
    sqlite3_stmt *st = store__sqlite_sync(s)->rget;
    int rc = store__bind_text(st, 1, rid);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, principal);
    rows_read(st, rc, req, "look up response in");
    store__complete(req);
}

void store__sqlite_responses_chain(struct store *s, const char *principal, const char *rid,
                                   int max, struct store__req *req)
{
    sqlite3_stmt *st = store__sqlite_sync(s)->rchain;
    int rc = store__bind_text(st, 1, rid);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, principal);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 3, max);
    rows_read(st, rc, req, "look up responses in");
    store__complete(req);
}

void store__sqlite_responses_delete(struct store *s, const char *principal, const char *rid,
                                    struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    int rc = store__bind_text(q->rdel, 1, rid);

    if (rc == SQLITE_OK)
        rc = store__bind_text(q->rdel, 2, principal);
    req->rc = store__step_write(q, q->rdel, rc, &req->err, "delete response from");
    store__complete(req);
}

static int resp_expire(struct store *s, int64_t cutoff, struct gw_err *err)
{
    struct sqlite_store *q = store__sqlite_sync(s);

    return store__step_write(q, q->rexpire, sqlite3_bind_int64(q->rexpire, 1, cutoff), err,
                        "expire responses in");
}

static int resp_fail_unfinished(struct store *s, const char *message, struct gw_err *err)
{
    struct sqlite_store *q = store__sqlite_sync(s);

    return store__step_write(q, q->rfail, store__bind_text(q->rfail, 1, message), err,
                        "update responses in");
}

void store__sqlite_responses_expire(struct store *s, int64_t cutoff, struct store__req *req)
{
    req->rc = resp_expire(s, cutoff, &req->err);
    store__complete(req);
}

void store__sqlite_responses_fail_unfinished(struct store *s, const char *message,
                                             struct store__req *req)
{
    req->rc = resp_fail_unfinished(s, message, &req->err);
    store__complete(req);
}

/* ---- rows ---------------------------------------------------------------------------- */

void store_response_release(struct store_response *sr)
{
    if (!sr)
        return;
    free(sr->id);
    free(sr->prev);
    free(sr->input);
    free(sr->response);
    free(sr->owner);
    memset(sr, 0, sizeof(*sr));
}
