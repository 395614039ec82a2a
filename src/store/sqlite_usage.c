/* The usage domain in SQLite: one row per finished request, summed by group on demand. */
#include "store/sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_UADD[] =
    "INSERT INTO usage(ts, request_id, principal, key_name, user, model, api, agent, status,"
    " input_tokens, output_tokens, cached_tokens, reasoning_tokens, credits, latency_ms)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

int store__sqlite_usage_prepare(struct sqlite_store *q, struct gw_err *err)
{
    return store__prepare(q, SQL_UADD, &q->uadd, err) ? GW_EIO : GW_OK;
}

void store__sqlite_usage_finalize(struct sqlite_store *q)
{
    sqlite3_finalize(q->uadd);
}

int store__usage_write(struct sqlite_store *q, const struct store_usage *u, struct gw_err *err)
{
    sqlite3_stmt *st = q->uadd;
    const char *text[] = {u->request_id, u->principal, u->key_name, u->user,
                          u->model,      u->api,       u->agent};
    const int64_t num[] = {u->status, u->input_tokens, u->output_tokens, u->cached_tokens,
                           u->reasoning_tokens};
    int rc = sqlite3_bind_int64(st, 1, u->ts);

    for (int i = 0; rc == SQLITE_OK && i < 7; i++)
        rc = store__bind_text(st, 2 + i, text[i]);
    for (int i = 0; rc == SQLITE_OK && i < 5; i++)
        rc = sqlite3_bind_int64(st, 9 + i, num[i]);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(st, 14, u->credits);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 15, u->latency_ms);
    rc = store__step_write(q, st, rc, err, "record usage in");
    return rc < 0 ? rc : GW_OK;
}

/* Without a callback the row is queued (sqlite_group.c): every request ends with one, and
 * http/flow.c does not wait for it. */
void store__sqlite_usage_add(struct store *s, const struct store_usage *u, struct store__req *req)
{
    if (!req->cb)
        store__gc_usage_add(store__sqlite(s), u);
    else
        req->rc = store__usage_write(store__sqlite_sync(s), u, &req->err);
    store__complete(req);
}

/* The group expression of group_by (checked by store.c). */
static const char *group_expr(const char *g)
{
    if (strcmp(g, "key") == 0)
        return "+key_name"; /* "+": a whole report reads the table in ts order; walking
                             * usage_key_ts for the grouping would read it at random (3x) */
    if (strcmp(g, "day") == 0)
        return "strftime('%Y-%m-%d', ts / 1000, 'unixepoch')";
    if (strcmp(g, "user") == 0)
        return "user";
    if (strcmp(g, "model") == 0)
        return "model";
    if (strcmp(g, "api") == 0)
        return "api";
    return "agent";
}

void store__sqlite_usage_report(struct store *s, const struct store_usage_query *uq,
                                struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    char sql[1024];
    sqlite3_stmt *st = NULL;
    int rc;

    snprintf(sql, sizeof(sql),
             "SELECT %s AS g, count(*), sum(status >= 400), sum(input_tokens),"
             " sum(output_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(credits)"
             " FROM usage WHERE ts >= ?1%s%s GROUP BY g ORDER BY g",
             group_expr(uq->group_by), uq->until_ms ? " AND ts < ?2" : "",
             /* spelled out only when given, so that usage_key_ts serves a key's totals */
             uq->key_name ? " AND key_name = ?3" : "");
    rc = sqlite3_prepare_v2(q->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 1, uq->since_ms);
    if (rc == SQLITE_OK && uq->until_ms)
        rc = sqlite3_bind_int64(st, 2, uq->until_ms);
    if (rc == SQLITE_OK && uq->key_name)
        rc = store__bind_text(st, 3, uq->key_name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    while (rc == SQLITE_ROW) {
        struct store_usage_group *g = store__add_group(req);
        g->group = store__column_dup(st, 0);
        g->requests = sqlite3_column_int64(st, 1);
        g->errors = sqlite3_column_int64(st, 2);
        g->input_tokens = sqlite3_column_int64(st, 3);
        g->output_tokens = sqlite3_column_int64(st, 4);
        g->cached_tokens = sqlite3_column_int64(st, 5);
        g->reasoning_tokens = sqlite3_column_int64(st, 6);
        g->credits = sqlite3_column_double(st, 7);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        req->rc = (int)req->n_groups;
    } else {
        req->rc = store__db_error(&req->err, rc, "read usage from");
        for (size_t i = 0; i < req->n_groups; i++)
            free(req->groups[i].group);
        req->n_groups = 0;
    }
    store__complete(req);
}
