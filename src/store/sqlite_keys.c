/* The keys domain in SQLite: virtual API keys (their digests, owners, limits), and the
 * version counter other processes' readers reload on. */
#include "store/sqlite.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define COLUMNS                                                                             \
    "id, name, digest, user, models, rpm, tpm, max_concurrent, budget_credits, budget_period," \
    " expires, created, revoked"

/* ON CONFLICT DO NOTHING: a name an active key has (or an id in use) adds nothing. */
static const char SQL_KADD[] =
    "INSERT INTO keys(" COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 0)"
    " ON CONFLICT DO NOTHING";
static const char SQL_KUPD[] =
    "UPDATE OR IGNORE keys SET name = ?2, user = ?4, models = ?5, rpm = ?6, tpm = ?7,"
    " max_concurrent = ?8, budget_credits = ?9, budget_period = ?10, expires = ?11"
    " WHERE id = ?1 AND revoked = 0";
static const char SQL_KREV[] = "UPDATE keys SET revoked = ?2 WHERE name = ?1 AND revoked = 0";
#define KCOLUMNS                                                                          \
    "keys.id, keys.name, keys.digest, keys.user, keys.models, keys.rpm, keys.tpm,"         \
    " keys.max_concurrent, keys.budget_credits, keys.budget_period, keys.expires,"        \
    " keys.created, keys.revoked"

/* With the sealed GitHub token of each key's user (a key without one is its own user). */
#define TOKEN_JOIN                                                                  \
    ", t.sealed, t.updated FROM keys LEFT JOIN github_tokens t"                      \
    " ON t.user = COALESCE(keys.user, keys.name)"
static const char SQL_KLIST[] =
    "SELECT " KCOLUMNS TOKEN_JOIN " WHERE keys.revoked = 0 ORDER BY keys.name";
static const char SQL_KLISTALL[] =
    "SELECT " KCOLUMNS TOKEN_JOIN " ORDER BY keys.name, keys.created";
static const char SQL_TSET[] =
    "INSERT INTO github_tokens(user, sealed, updated) VALUES (?1, ?2, ?3)"
    " ON CONFLICT(user) DO UPDATE SET sealed = excluded.sealed, updated = excluded.updated";
static const char SQL_TDEL[] = "DELETE FROM github_tokens WHERE user = ?1";
static const char SQL_KVER[] = "SELECT v FROM meta WHERE k = 'keys'";
static const char SQL_KBUMP[] = "UPDATE meta SET v = v + 1 WHERE k = 'keys'";

int store__sqlite_keys_prepare(struct sqlite_store *q, struct gw_err *err)
{
    if (store__prepare(q, SQL_KADD, &q->kadd, err) || store__prepare(q, SQL_KUPD, &q->kupd, err) ||
        store__prepare(q, SQL_KREV, &q->krev, err) ||
        store__prepare(q, SQL_KLIST, &q->klist, err) ||
        store__prepare(q, SQL_KLISTALL, &q->klistall, err) ||
        store__prepare(q, SQL_KVER, &q->kver, err) || store__prepare(q, SQL_KBUMP, &q->kbump, err) ||
        store__prepare(q, SQL_TSET, &q->tset, err) || store__prepare(q, SQL_TDEL, &q->tdel, err))
        return GW_EIO;
    return GW_OK;
}

void store__sqlite_keys_finalize(struct sqlite_store *q)
{
    sqlite3_finalize(q->kadd);
    sqlite3_finalize(q->kupd);
    sqlite3_finalize(q->krev);
    sqlite3_finalize(q->klist);
    sqlite3_finalize(q->klistall);
    sqlite3_finalize(q->kver);
    sqlite3_finalize(q->kbump);
    sqlite3_finalize(q->tset);
    sqlite3_finalize(q->tdel);
}

/* Binds parameters 1..11 of k (the ones add and update share; update ignores ?3, ?12). */
static int bind_key(sqlite3_stmt *st, const struct store_key *k, int with_digest)
{
    int rc = store__bind_text(st, 1, k->id);

    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 2, k->name);
    if (rc == SQLITE_OK && with_digest)
        rc = sqlite3_bind_blob(st, 3, k->digest, sizeof(k->digest), SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 4, k->user);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 5, k->models);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 6, k->rpm);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 7, k->tpm);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 8, k->max_concurrent);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_double(st, 9, k->budget_credits);
    if (rc == SQLITE_OK)
        rc = store__bind_text(st, 10, k->budget_period);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 11, k->expires_ms);
    return rc;
}

/* A write that changed something bumps the version; rc = rows changed, or an error. */
static void write_and_bump(struct sqlite_store *q, sqlite3_stmt *st, int rc,
                           struct store__req *req, const char *what)
{
    req->rc = store__step_write(q, st, rc, &req->err, what);
    if (req->rc > 0) {
        int b = store__step_write(q, q->kbump, SQLITE_OK, &req->err, "count keys writes in");
        if (b < 0)
            req->rc = b;
    }
    store__complete(req);
}

void store__sqlite_keys_add(struct store *s, const struct store_key *k, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    int rc = bind_key(q->kadd, k, 1);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q->kadd, 12, k->created_ms);
    write_and_bump(q, q->kadd, rc, req, "store key in");
}

void store__sqlite_keys_update(struct store *s, const struct store_key *k,
                               struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);

    write_and_bump(q, q->kupd, bind_key(q->kupd, k, 0), req, "update key in");
}

void store__sqlite_keys_revoke(struct store *s, const char *name, int64_t now_ms,
                               struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    int rc = store__bind_text(q->krev, 1, name);

    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(q->krev, 2, now_ms > 0 ? now_ms : 1);
    write_and_bump(q, q->krev, rc, req, "revoke key in");
}

static int row_read(sqlite3_stmt *st, struct store_key *k)
{
    const void *d = sqlite3_column_blob(st, 2);
    char *id = store__column_dup(st, 0);

    if (!id || strlen(id) >= sizeof(k->id) || !d || sqlite3_column_bytes(st, 2) != 32) {
        free(id);
        return -1;
    }
    memcpy(k->id, id, strlen(id) + 1);
    free(id);
    memcpy(k->digest, d, sizeof(k->digest));
    k->name = store__column_dup(st, 1);
    k->user = store__column_dup(st, 3);
    k->models = store__column_dup(st, 4);
    k->rpm = sqlite3_column_int64(st, 5);
    k->tpm = sqlite3_column_int64(st, 6);
    k->max_concurrent = sqlite3_column_int64(st, 7);
    k->budget_credits = sqlite3_column_double(st, 8);
    k->budget_period = store__column_dup(st, 9);
    k->expires_ms = sqlite3_column_int64(st, 10);
    k->created_ms = sqlite3_column_int64(st, 11);
    k->revoked_ms = sqlite3_column_int64(st, 12);
    k->github_sealed = store__column_dup(st, 13);
    k->github_updated_ms = sqlite3_column_int64(st, 14);
    return k->name ? 0 : -1;
}

void store__sqlite_keys_list(struct store *s, int with_revoked, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    sqlite3_stmt *st = with_revoked ? q->klistall : q->klist;
    int rc = sqlite3_step(st);

    while (rc == SQLITE_ROW) {
        if (row_read(st, store__add_key(req)) != 0) {
            store_key_release(&req->keys[--req->n_keys]); /* a damaged row: skipped */
        }
        rc = sqlite3_step(st);
    }
    store__stmt_done(st);
    if (rc == SQLITE_DONE) {
        req->rc = (int)req->n_keys;
    } else {
        req->rc = store__db_error(&req->err, rc, "read keys from");
        for (size_t i = 0; i < req->n_keys; i++)
            store_key_release(&req->keys[i]);
        req->n_keys = 0;
    }
    store__complete(req);
}

void store__sqlite_keys_version(struct store *s, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    int rc = sqlite3_step(q->kver);

    if (rc == SQLITE_ROW) {
        req->rc = (int)(sqlite3_column_int64(q->kver, 0) & 0x7fffffff);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        req->rc = 0;
    }
    store__stmt_done(q->kver);
    if (rc != SQLITE_DONE)
        req->rc = store__db_error(&req->err, rc, "read the keys' version from");
    store__complete(req);
}

void store__sqlite_tokens_set(struct store *s, const char *user, const char *sealed,
                              int64_t now_ms, struct store__req *req)
{
    struct sqlite_store *q = store__sqlite_sync(s);
    sqlite3_stmt *st = sealed ? q->tset : q->tdel;
    int rc = store__bind_text(st, 1, user);

    if (rc == SQLITE_OK && sealed)
        rc = store__bind_text(st, 2, sealed);
    if (rc == SQLITE_OK && sealed)
        rc = sqlite3_bind_int64(st, 3, now_ms);
    write_and_bump(q, st, rc, req, sealed ? "store a GitHub token in" : "remove a GitHub token from");
}
