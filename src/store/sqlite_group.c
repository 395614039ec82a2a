/*
 * Group commit: the writes nobody waits for (session map rows, usage rows) are queued and
 * committed together in one transaction, so a request costs the loop no commit of its own.
 */
#include "store/sqlite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"

/* One queued write: a deep copy of what the call was given. */
struct store__gc_write {
    enum gc_kind { GC_SESSION_PUT, GC_SESSION_DELETE, GC_USAGE_ADD } kind;
    struct store_session ss; /* put: the row; delete: sid only */
    struct store_usage u;
};

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void write_release(struct store__gc_write *w)
{
    store_session_release(&w->ss);
    free(w->u.request_id);
    free(w->u.principal);
    free(w->u.key_name);
    free(w->u.user);
    free(w->u.model);
    free(w->u.api);
    free(w->u.agent);
    memset(w, 0, sizeof(*w));
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    store__gc_commit(arg);
}

void store__gc_init(struct sqlite_store *q)
{
    if (!q->pub.base)
        return;
    q->gc = xcalloc(STORE_GROUP_COMMIT_MAX, sizeof(*q->gc));
    q->gc_timer = evtimer_new(q->pub.base, on_timer, q);
    if (!q->gc_timer)
        abort(); /* out of memory, as xmalloc() would */
}

void store__gc_release(struct sqlite_store *q)
{
    store__gc_commit(q);
    if (q->gc_timer)
        event_free(q->gc_timer);
    q->gc_timer = NULL;
    free(q->gc);
    q->gc = NULL;
}

/*
 * The next free slot, the timer armed if it is the first.  A store without
 * a loop never gets here: store.c refuses its calls.
 */
static struct store__gc_write *slot(struct sqlite_store *q, enum gc_kind kind)
{
    struct store__gc_write *w = &q->gc[q->n_gc++];

    if (q->n_gc == 1) {
        struct timeval tv = {0, STORE_GROUP_COMMIT_MS * 1000};
        evtimer_add(q->gc_timer, &tv);
    }
    w->kind = kind;
    return w;
}

/* A full queue is committed at once, in the call that filled it. */
static void queued(struct sqlite_store *q)
{
    if (q->n_gc == STORE_GROUP_COMMIT_MAX)
        store__gc_commit(q);
}

void store__gc_session_put(struct sqlite_store *q, const struct store_session *ss)
{
    struct store__gc_write *w = slot(q, GC_SESSION_PUT);

    w->ss = *ss;
    w->ss.pin = dup_or_null(ss->pin);
    w->ss.model = xstrdup(ss->model);
    queued(q);
}

void store__gc_session_delete(struct sqlite_store *q, const char *sid)
{
    struct store__gc_write *w = slot(q, GC_SESSION_DELETE);

    /* Longer than any sid we write: it cannot match a row, as the statement would not. */
    snprintf(w->ss.sid, sizeof(w->ss.sid), "%s", sid);
    if (strlen(sid) >= sizeof(w->ss.sid))
        w->ss.sid[0] = '\0';
    queued(q);
}

void store__gc_usage_add(struct sqlite_store *q, const struct store_usage *u)
{
    struct store__gc_write *w = slot(q, GC_USAGE_ADD);

    w->u = *u;
    w->u.request_id = dup_or_null(u->request_id);
    w->u.principal = xstrdup(u->principal);
    w->u.key_name = dup_or_null(u->key_name);
    w->u.user = dup_or_null(u->user);
    w->u.model = xstrdup(u->model);
    w->u.api = xstrdup(u->api);
    w->u.agent = dup_or_null(u->agent);
    queued(q);
}

static int write_one(struct sqlite_store *q, const struct store__gc_write *w, struct gw_err *err)
{
    switch (w->kind) {
    case GC_SESSION_PUT:
        return store__session_write(q, &w->ss, err);
    case GC_SESSION_DELETE:
        return w->ss.sid[0] ? store__session_erase(q, w->ss.sid, err) : GW_OK;
    case GC_USAGE_ADD:
        return store__usage_write(q, &w->u, err);
    }
    abort(); /* BUG: a kind without a write */
}

/* BEGIN, COMMIT or ROLLBACK: GW_OK, or the code with err set (write_rc recorded). */
static int exec_write(struct sqlite_store *q, const char *sql, struct gw_err *err,
                      const char *what)
{
    int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);

    return store__write_done(q, rc == SQLITE_OK ? SQLITE_DONE : rc, err, what);
}

/*
 * Runs the queue in order in one transaction.  IMMEDIATE takes the write
 * lock at BEGIN (waiting up to the busy timeout for another process), so no
 * statement inside can fail for a lock it could not upgrade.  All or none:
 * a failure rolls the whole queue back, and it is lost.
 */
static int commit_all(struct sqlite_store *q, struct gw_err *err)
{
    int rc = exec_write(q, "BEGIN IMMEDIATE", err, "commit queued writes to");

    for (size_t i = 0; rc >= 0 && i < q->n_gc; i++)
        rc = write_one(q, &q->gc[i], err);
    if (rc >= 0)
        rc = exec_write(q, "COMMIT", err, "commit queued writes to");
    if (rc < 0 && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    return rc < 0 ? rc : GW_OK;
}

void store__gc_commit(struct sqlite_store *q)
{
    struct gw_err err;
    size_t n = q->n_gc;

    if (!n)
        return;
    evtimer_del(q->gc_timer);
    if (commit_all(q, &err) < 0)
        log_msg(LOG_WARN, "store", "%s; %zu queued writes lost (usage and session map rows)",
                err.msg, n);
    for (size_t i = 0; i < n; i++)
        write_release(&q->gc[i]);
    q->n_gc = 0;
}
