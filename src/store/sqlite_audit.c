/* The audit domain in SQLite: one row per policy decision on an agent's tool call, its
 * outcome filled in later, read back newest first or followed by seq. */
#include "store/sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* Every 256th add deletes the rows past the TTL. */
#define ATRIM_EVERY 256

#define COLUMNS                                                                                   \
    "seq, id, ts, request_id, principal, agent, session_id, tool, kind, target, decision, rule, " \
    "outcome, duration_ms, error"

static const char SQL_AADD[] =
    "INSERT INTO audit(id, ts, request_id, principal, agent, session_id, tool, kind, target,"
    " decision, rule, outcome, duration_ms, error)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
static const char SQL_AOUT[] =
    "UPDATE audit SET outcome = ?2, duration_ms = ?3, error = ?4 WHERE id = ?1";
static const char SQL_ATRIM[] = "DELETE FROM audit WHERE ts < ?1";

int store__sqlite_audit_prepare(struct sqlite_store *q, struct gw_err *err)
{
    if (store__prepare(q, SQL_AADD, &q->aadd, err) || store__prepare(q, SQL_AOUT, &q->aout, err) ||
        store__prepare(q, SQL_ATRIM, &q->atrim, err))
        return GW_EIO;
    return GW_OK;
}

void store__sqlite_audit_finalize(struct sqlite_store *q)
{
    sqlite3_finalize(q->aadd);
    sqlite3_finalize(q->aout);
    sqlite3_finalize(q->atrim);
}

static int trim(struct sqlite_store *q, struct gw_err *err)
{
    int64_t ttl = q->pub.audit_ttl_ms;

    /* Counted with or without a TTL: adds since open, as the setter's comment says. */
    if (++q->aadds % ATRIM_EVERY != 0 || ttl <= 0)
        return GW_OK;
    return store__step_write(q, q->atrim, sqlite3_bind_int64(q->atrim, 1, util_wall_ms() - ttl),
                             err, "trim audit rows in");
}

/* The arguments are checked by the caller (store.c). */
static int audit_add(struct sqlite_store *q, const struct store_audit *a, struct gw_err *err)
{
    sqlite3_stmt *st = q->aadd;
    const char *text[] = {a->request_id, a->principal, a->agent, a->session_id, a->tool,
                          a->kind,       a->target,    a->decision, a->rule,     a->outcome};
    int rc = store__bind_text(st, 1, a->id);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 2, a->ts);
    for (int i = 0; rc == SQLITE_OK && i < (int)(sizeof(text) / sizeof(text[0])); i++)
        rc = store__bind_text(st, 3 + i, text[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 13, a->duration_ms);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 14, a->error);
    rc = store__step_write(q, st, rc, err, "store audit row in");
    if (rc < 0)
        return rc;
    rc = trim(q, err);
    return rc < 0 ? rc : GW_OK;
}

void store__sqlite_audit_add(struct store *s, const struct store_audit *row,
                             struct store__req *req)
{
    req->rc = audit_add(store__sqlite_sync(s), row, &req->err);
    store__complete(req);
}

void store__sqlite_audit_outcome(struct store *s, const char *audit_id, const char *outcome,
                                 int64_t duration_ms, const char *error, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    sqlite3_stmt *st = q->aout;
    int rc = store__bind_text(st, 1, audit_id);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, outcome);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 3, duration_ms);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 4, error);
    req->rc = store__step_write(q, st, rc, &req->err, "record audit outcome in");
    store__complete(req);
}

/* ---- list ---------------------------------------------------------------------------- */

/*
 * The SELECT for f: only the conditions f sets, so SQLite can pick the
 * index that fits (audit_agent_seq for an agent, the rowid otherwise).
 * Parameters: ?1 agent, ?2 decision, ?3 principal, ?4 since, ?5 after,
 * ?6 the row limit.
 */
static int list_sql(const struct store_audit_filter *f, struct buf *b)
{
    int rc = buf_addf(b, "SELECT " COLUMNS " FROM audit WHERE 1");

    if (!rc && f->agent)
        rc = buf_addf(b, " AND agent = ?1");
    if (!rc && f->decision)
        rc = buf_addf(b, " AND decision = ?2");
    if (!rc && f->principal)
        rc = buf_addf(b, " AND principal = ?3");
    if (!rc && f->since_ms > 0)
        rc = buf_addf(b, " AND ts >= ?4");
    if (!rc)
        rc = buf_addf(b, f->after_seq > 0 ? " AND seq > ?5 ORDER BY seq ASC LIMIT ?6"
                                          : " ORDER BY seq DESC LIMIT ?6");
    return rc;
}

static int list_bind(sqlite3_stmt *st, const struct store_audit_filter *f)
{
    int rc = SQLITE_OK;

    if (f->agent)
        rc = store__bind_text(st, 1, f->agent);
    if (rc == SQLITE_OK && f->decision)
        rc = store__bind_text(st, 2, f->decision);
    if (rc == SQLITE_OK && f->principal)
        rc = store__bind_text(st, 3, f->principal);
    if (rc == SQLITE_OK && f->since_ms > 0)
        rc = sqlite3_bind_int64(st, 4, f->since_ms);
    if (rc == SQLITE_OK && f->after_seq > 0)
        rc = sqlite3_bind_int64(st, 5, f->after_seq);
    /* One row more than asked for tells whether there are more. */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 6, (int64_t)f->limit + 1);
    return rc;
}

/* Fills out from the current row of a `SELECT COLUMNS`. */
static int row_read(sqlite3_stmt *st, struct store_audit *out, struct gw_err *err)
{
    const unsigned char *id = sqlite3_column_text(st, 1);

    out->seq = sqlite3_column_int64(st, 0);
    snprintf(out->id, sizeof(out->id), "%s", id ? (const char *)id : "");
    out->ts = sqlite3_column_int64(st, 2);
    out->request_id = store__column_dup(st, 3);
    out->principal = store__column_dup(st, 4);
    out->agent = store__column_dup(st, 5);
    out->session_id = store__column_dup(st, 6);
    out->tool = store__column_dup(st, 7);
    out->kind = store__column_dup(st, 8);
    out->target = store__column_dup(st, 9);
    out->decision = store__column_dup(st, 10);
    out->rule = store__column_dup(st, 11);
    out->outcome = store__column_dup(st, 12);
    out->duration_ms = sqlite3_column_int64(st, 13);
    out->error = store__column_dup(st, 14);
    if (id && out->principal && out->agent && out->tool && out->kind && out->target &&
        out->decision)
        return GW_OK;
    store_audit_release(out);
    return gw_err_set(err, GW_EIO, "cannot read audit row from '" DB_NAME "'");
}

static void list_rows(struct sqlite_store *q, const struct store_audit_filter *f,
                      struct store__req *req)
{
    struct buf sql;
    sqlite3_stmt *st = NULL;
    int rc;

    buf_init(&sql, 1024);
    if (list_sql(f, &sql)) {
        req->rc = gw_err_set(&req->err, GW_ENOMEM, "cannot read audit rows: out of memory");
        return;
    }
    rc = sqlite3_prepare_v2(q->db, sql.ptr, -1, &st, NULL);
    buf_release(&sql);
    if (rc == SQLITE_OK)
        rc = list_bind(st, f);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) {
        if (req->n_audit == f->limit) {
            req->more = 1;
            rc = SQLITE_DONE;
            break;
        }
        if (row_read(st, store__add_audit(req), &req->err)) {
            req->n_audit--; /* row_read() left it empty */
            rc = GW_EIO;
            break;
        }
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        req->rc = (int)req->n_audit;
        return;
    }
    req->rc = rc == GW_EIO ? GW_EIO : store__db_error(&req->err, rc, "read audit rows from");
    for (size_t i = 0; i < req->n_audit; i++)
        store_audit_release(&req->audit[i]);
    req->n_audit = 0;
    req->more = 0;
}

void store__sqlite_audit_list(struct store *s, const struct store_audit_filter *f,
                              struct store__req *req)
{
    list_rows(store__sqlite_sync(s), f, req);
    store__complete(req);
}

/* ---- rows ---------------------------------------------------------------------------- */

void store_audit_release(struct store_audit *sa)
{
    if (!sa)
        return;
    free(sa->request_id);
    free(sa->principal);
    free(sa->agent);
    free(sa->session_id);
    free(sa->tool);
    free(sa->kind);
    free(sa->target);
    free(sa->decision);
    free(sa->rule);
    free(sa->outcome);
    free(sa->error);
    memset(sa, 0, sizeof(*sa));
}
