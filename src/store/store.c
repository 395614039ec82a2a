/* The store's front: argument checks, dispatch through the ops table, and the queue that
 * delivers every completion on a later loop turn. */
#include "store/backend.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/log.h"
#include "util/xmalloc.h"

static void req_free(struct store__req *req)
{
    for (size_t i = 0; i < req->n_sessions; i++)
        store_session_release(&req->sessions[i]);
    for (size_t i = 0; i < req->n_responses; i++)
        store_response_release(&req->responses[i]);
    for (size_t i = 0; i < req->n_audit; i++)
        store_audit_release(&req->audit[i]);
    for (size_t i = 0; i < req->n_keys; i++)
        store_key_release(&req->keys[i]);
    free(req->keys);
    for (size_t i = 0; i < req->n_groups; i++)
        free(req->groups[i].group);
    free(req->groups);
    free(req->sessions);
    free(req->responses);
    free(req->audit);
    free(req);
}

static void live_unlink(struct store *s, struct store__req *req)
{
    if (req->live_prev)
        req->live_prev->live_next = req->live_next;
    else
        s->live = req->live_next;
    if (req->live_next)
        req->live_next->live_prev = req->live_prev;
    req->live_prev = req->live_next = NULL;
}

static void run_one(struct store__req *req)
{
    struct store_result res = {0};

    if (req->canceled)
        return;
    res.rc = req->rc;
    if (req->rc < 0) {
        res.err = &req->err;
    } else {
        res.sessions = req->sessions;
        res.n_sessions = req->n_sessions;
        res.responses = req->responses;
        res.n_responses = req->n_responses;
        res.audit = req->audit;
        res.n_audit = req->n_audit;
        res.keys = req->keys;
        res.n_keys = req->n_keys;
        res.groups = req->groups;
        res.n_groups = req->n_groups;
        res.more = req->more;
    }
    if (req->cb)
        req->cb(req->ud, &res);
    else if (req->rc < 0)
        log_msg(LOG_WARN, "store", "cannot %s: %s", req->what, req->err.msg);
}

/*
 * Runs the callbacks of the requests completed so far.  The queue is taken
 * first: what a callback starts completes into a fresh queue and runs on a
 * later turn, so a callback never runs inside the call that started it.
 */
static void deliver(evutil_socket_t fd, short what, void *arg)
{
    struct store *s = arg;
    struct store__req *q = s->done;

    s->done = NULL;
    s->done_tail = &s->done;
    while (q) {
        struct store__req *req = q;
        q = req->done_next;
        live_unlink(s, req);
        s->delivering = 1;
        run_one(req);
        s->delivering = 0;
        req_free(req);
    }
}

void store__init(struct store *s, const struct store_ops *ops, struct event_base *base)
{
    s->ops = ops;
    s->base = base;
    s->done_tail = &s->done;
    s->next_id = 1;
    if (base) {
        s->deliver_ev = event_new(base, -1, 0, deliver, s);
        if (!s->deliver_ev)
            abort(); /* out of memory, as xmalloc() would */
    }
}

void store__release(struct store *s)
{
    while (s->live) {
        struct store__req *req = s->live;
        live_unlink(s, req);
        req_free(req);
    }
    s->done = NULL;
    s->done_tail = &s->done;
    if (s->deliver_ev)
        event_free(s->deliver_ev);
    s->deliver_ev = NULL;
}

void store__complete(struct store__req *req)
{
    struct store *s = req->s;

    if (req->completed)
        abort(); /* BUG: an op completed twice */
    req->completed = 1;
    *s->done_tail = req;
    s->done_tail = &req->done_next;
    /* Activating an event that is already active does nothing. */
    event_active(s->deliver_ev, EV_TIMEOUT, 0);
}

struct store_session *store__add_session(struct store__req *req)
{
    struct store_session *row;

    req->sessions = xrealloc(req->sessions, (req->n_sessions + 1) * sizeof(*req->sessions));
    row = &req->sessions[req->n_sessions++];
    memset(row, 0, sizeof(*row));
    return row;
}

struct store_response *store__add_response(struct store__req *req)
{
    struct store_response *row;

    req->responses = xrealloc(req->responses, (req->n_responses + 1) * sizeof(*req->responses));
    row = &req->responses[req->n_responses++];
    memset(row, 0, sizeof(*row));
    return row;
}

struct store_audit *store__add_audit(struct store__req *req)
{
    struct store_audit *row;

    req->audit = xrealloc(req->audit, (req->n_audit + 1) * sizeof(*req->audit));
    row = &req->audit[req->n_audit++];
    memset(row, 0, sizeof(*row));
    return row;
}

struct store_usage_group *store__add_group(struct store__req *req)
{
    struct store_usage_group *row;

    req->groups = xrealloc(req->groups, (req->n_groups + 1) * sizeof(*req->groups));
    row = &req->groups[req->n_groups++];
    memset(row, 0, sizeof(*row));
    return row;
}

struct store_key *store__add_key(struct store__req *req)
{
    struct store_key *row;

    req->keys = xrealloc(req->keys, (req->n_keys + 1) * sizeof(*req->keys));
    row = &req->keys[req->n_keys++];
    memset(row, 0, sizeof(*row));
    return row;
}

/*
 * Makes the request for one call, or fails the call (no request, cb never
 * called) when the store has no loop or a read has no callback.
 */
static struct store__req *req_new(struct store *s, store_cb cb, void *ud, const char *what,
                                  int need_cb, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!s || !s->base) {
        gw_err_set(err, GW_EINVAL, "cannot %s: the store has no event loop", what);
        return NULL;
    }
    if (need_cb && !cb) {
        gw_err_set(err, GW_EINVAL, "cannot %s: a read needs a callback", what);
        return NULL;
    }
    req = xcalloc(1, sizeof(*req));
    req->s = s;
    req->id = s->next_id++;
    req->cb = cb;
    req->ud = ud;
    req->what = what;
    req->live_next = s->live;
    if (s->live)
        s->live->live_prev = req;
    s->live = req;
    if (id)
        *id = req->id;
    return req;
}

void store_cancel(struct store *s, uint64_t id)
{
    for (struct store__req *req = s ? s->live : NULL; req; req = req->live_next)
        if (req->id == id) {
            req->canceled = 1;
            return;
        }
}

void store_close(struct store *s)
{
    if (!s)
        return;
    if (s->delivering)
        abort(); /* BUG: store_close() from a store callback */
    store__release(s);
    s->ops->close(s);
}

int store_writable(struct store *s, struct gw_err *err)
{
    return s->ops->writable(s, err);
}

void store_stats(struct store *s, struct store_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (s->ops->stats)
        s->ops->stats(s, out);
    for (struct store__req *req = s->live; req; req = req->live_next)
        out->pending++;
}

/* ---- sessions ----------------------------------------------------------------------------- */

int store__session_check(const struct store_session *ss, struct gw_err *err)
{
    if (!ss->sid[0] || !memchr(ss->sid, '\0', sizeof(ss->sid)) ||
        !memchr(ss->head, '\0', sizeof(ss->head)) || !ss->model)
        return gw_err_set(err, GW_EINVAL, "cannot store a session without id or model");
    return GW_OK;
}

int store_sessions_put(struct store *s, const struct store_session *ss, store_cb cb, void *ud,
                       uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (store__session_check(ss, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "store session", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->sessions_put(s, ss, req);
    return GW_OK;
}

int store_sessions_delete(struct store *s, const char *sid, store_cb cb, void *ud, uint64_t *id,
                          struct gw_err *err)
{
    struct store__req *req;

    if (!sid)
        return gw_err_set(err, GW_EINVAL, "cannot delete a session without id");
    req = req_new(s, cb, ud, "delete session", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->sessions_delete(s, sid, req);
    return GW_OK;
}

int store_sessions_find(struct store *s, const char *head, const char *pin, store_cb cb,
                        void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!head)
        return gw_err_set(err, GW_EINVAL, "cannot find a session without a history hash");
    req = req_new(s, cb, ud, "find session", 1, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->sessions_find(s, head, pin, req);
    return GW_OK;
}

int store_sessions_all(struct store *s, store_cb cb, void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req = req_new(s, cb, ud, "read sessions", 1, id, err);

    if (!req)
        return GW_EINVAL;
    s->ops->sessions_all(s, req);
    return GW_OK;
}

int store_sessions_expire(struct store *s, int64_t cutoff, store_cb cb, void *ud, uint64_t *id,
                          struct gw_err *err)
{
    struct store__req *req = req_new(s, cb, ud, "expire sessions", 0, id, err);

    if (!req)
        return GW_EINVAL;
    s->ops->sessions_expire(s, cutoff, req);
    return GW_OK;
}

/* ---- responses ---------------------------------------------------------------------------- */

static int bad_principal(const char *principal, struct gw_err *err)
{
    if (principal && *principal)
        return 0;
    return gw_err_set(err, GW_EINVAL, "cannot look up a response without a principal");
}

int store_responses_put(struct store *s, const struct store_response *sr, int64_t keep_max,
                        store_cb cb, void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!sr->id || !*sr->id || !sr->input || !sr->response || !sr->owner || !*sr->owner)
        return gw_err_set(err, GW_EINVAL, "cannot store a response without id, owner or content");
    req = req_new(s, cb, ud, "store response", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->responses_put(s, sr, keep_max, req);
    return GW_OK;
}

int store_responses_get(struct store *s, const char *principal, const char *rid, store_cb cb,
                        void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!rid)
        return gw_err_set(err, GW_EINVAL, "cannot look up a response without id");
    if (bad_principal(principal, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "look up response", 1, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->responses_get(s, principal, rid, req);
    return GW_OK;
}

int store_responses_chain(struct store *s, const char *principal, const char *rid, int max,
                          store_cb cb, void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!rid || max < 1 || max > STORE_CHAIN_MAX)
        return gw_err_set(err, GW_EINVAL, "cannot walk a response chain without id or bound");
    if (bad_principal(principal, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "walk response chain", 1, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->responses_chain(s, principal, rid, max, req);
    return GW_OK;
}

int store_responses_delete(struct store *s, const char *principal, const char *rid, store_cb cb,
                           void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!rid)
        return gw_err_set(err, GW_EINVAL, "cannot delete a response without id");
    if (bad_principal(principal, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "delete response", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->responses_delete(s, principal, rid, req);
    return GW_OK;
}

int store_responses_expire(struct store *s, int64_t cutoff, store_cb cb, void *ud, uint64_t *id,
                           struct gw_err *err)
{
    struct store__req *req = req_new(s, cb, ud, "expire responses", 0, id, err);

    if (!req)
        return GW_EINVAL;
    s->ops->responses_expire(s, cutoff, req);
    return GW_OK;
}

int store_responses_fail_unfinished(struct store *s, const char *message, store_cb cb,
                                    void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!message)
        return gw_err_set(err, GW_EINVAL, "cannot fail responses without a message");
    req = req_new(s, cb, ud, "update responses", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->responses_fail_unfinished(s, message, req);
    return GW_OK;
}

/* ---- audit -------------------------------------------------------------------------------- */

void store_audit_set_ttl(struct store *s, int64_t ttl_ms)
{
    s->audit_ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
}

static int is_one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return 1;
    return 0;
}

static const char *const decisions[] = {"allow", "deny", NULL};
static const char *const outcomes[] = {"ok", "error", "denied", NULL};

/*
 * error cut to STORE_AUDIT_ERROR_MAX bytes into out (never in the middle of
 * a UTF-8 character); error itself when short enough, NULL for NULL.
 */
static const char *error_cut(const char *error, char out[STORE_AUDIT_ERROR_MAX + 1])
{
    size_t n;

    if (!error || strnlen(error, STORE_AUDIT_ERROR_MAX + 1) <= STORE_AUDIT_ERROR_MAX)
        return error;
    n = STORE_AUDIT_ERROR_MAX;
    while (n > 0 && ((unsigned char)error[n] & 0xc0) == 0x80)
        n--; /* error[n] would start the cut-off part inside a character */
    memcpy(out, error, n);
    out[n] = '\0';
    return out;
}

int store_audit_add(struct store *s, const struct store_audit *row, store_cb cb, void *ud,
                    uint64_t *id, struct gw_err *err)
{
    char cut[STORE_AUDIT_ERROR_MAX + 1];
    struct store_audit copy;
    struct store__req *req;

    if (!row->id[0] || !memchr(row->id, '\0', sizeof(row->id)) || !row->principal ||
        !row->agent || !row->tool || !row->kind || !row->target || !row->decision)
        return gw_err_set(err, GW_EINVAL, "cannot store an audit row without id, principal, "
                                          "agent, tool, kind, target or decision");
    if (!is_one_of(row->decision, decisions) || (row->outcome && !is_one_of(row->outcome, outcomes)))
        return gw_err_set(err, GW_EINVAL, "cannot store an audit row with decision '%.16s' "
                                          "and outcome '%.16s'",
                          row->decision, row->outcome ? row->outcome : "");
    req = req_new(s, cb, ud, "store audit row", 0, id, err);
    if (!req)
        return GW_EINVAL;
    copy = *row;
    copy.error = (char *)error_cut(row->error, cut);
    s->ops->audit_add(s, &copy, req);
    return GW_OK;
}

int store_audit_outcome(struct store *s, const char *audit_id, const char *outcome,
                        int64_t duration_ms, const char *error, store_cb cb, void *ud,
                        uint64_t *id, struct gw_err *err)
{
    char cut[STORE_AUDIT_ERROR_MAX + 1];
    struct store__req *req;

    if (!audit_id || !*audit_id || !outcome || !is_one_of(outcome, outcomes))
        return gw_err_set(err, GW_EINVAL, "cannot record an audit outcome without id or with "
                                          "outcome '%.16s'",
                          outcome ? outcome : "");
    req = req_new(s, cb, ud, "record audit outcome", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->audit_outcome(s, audit_id, outcome, duration_ms, error_cut(error, cut), req);
    return GW_OK;
}

int store_audit_list(struct store *s, const struct store_audit_filter *f, store_cb cb, void *ud,
                     uint64_t *id, struct gw_err *err)
{
    struct store_audit_filter g = *f;
    struct store__req *req;

    if (g.limit > STORE_AUDIT_LIMIT_MAX || g.after_seq < 0 ||
        (g.decision && !is_one_of(g.decision, decisions)))
        return gw_err_set(err, GW_EINVAL, "cannot list audit rows: bad decision, limit or seq");
    if (!g.limit)
        g.limit = STORE_AUDIT_LIMIT_DEFAULT;
    req = req_new(s, cb, ud, "read audit rows", 1, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->audit_list(s, &g, req);
    return GW_OK;
}

/* ---- keys --------------------------------------------------------------------------------- */

static const char *const periods[] = {"day", "week", "month", NULL};

static int key_check(const struct store_key *k, struct gw_err *err)
{
    if (!k->id[0] || !memchr(k->id, '\0', sizeof(k->id)) || !k->name || !*k->name)
        return gw_err_set(err, GW_EINVAL, "cannot store a key without id or name");
    if (k->budget_period && !is_one_of(k->budget_period, periods))
        return gw_err_set(err, GW_EINVAL, "cannot store a key with budget period '%.16s'",
                          k->budget_period);
    return GW_OK;
}

int store_keys_add(struct store *s, const struct store_key *k, store_cb cb, void *ud,
                   uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (key_check(k, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "store key", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->keys_add(s, k, req);
    return GW_OK;
}

int store_keys_update(struct store *s, const struct store_key *k, store_cb cb, void *ud,
                      uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (key_check(k, err))
        return GW_EINVAL;
    req = req_new(s, cb, ud, "update key", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->keys_update(s, k, req);
    return GW_OK;
}

int store_keys_revoke(struct store *s, const char *name, int64_t now_ms, store_cb cb, void *ud,
                      uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!name || !*name)
        return gw_err_set(err, GW_EINVAL, "cannot revoke a key without a name");
    req = req_new(s, cb, ud, "revoke key", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->keys_revoke(s, name, now_ms, req);
    return GW_OK;
}

int store_keys_list(struct store *s, int with_revoked, store_cb cb, void *ud, uint64_t *id,
                    struct gw_err *err)
{
    struct store__req *req = req_new(s, cb, ud, "read keys", 1, id, err);

    if (!req)
        return GW_EINVAL;
    s->ops->keys_list(s, with_revoked, req);
    return GW_OK;
}

int store_keys_version(struct store *s, store_cb cb, void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req = req_new(s, cb, ud, "read the keys' version", 1, id, err);

    if (!req)
        return GW_EINVAL;
    s->ops->keys_version(s, req);
    return GW_OK;
}

void store_key_release(struct store_key *sk)
{
    if (!sk)
        return;
    free(sk->name);
    free(sk->user);
    free(sk->models);
    free(sk->budget_period);
    if (sk->github_sealed)
        explicit_bzero(sk->github_sealed, strlen(sk->github_sealed));
    free(sk->github_sealed);
    sk->name = sk->user = sk->models = sk->budget_period = sk->github_sealed = NULL;
}

void store_key_copy(struct store_key *dst, const struct store_key *src)
{
    *dst = *src;
    dst->name = src->name ? xstrdup(src->name) : NULL;
    dst->user = src->user ? xstrdup(src->user) : NULL;
    dst->models = src->models ? xstrdup(src->models) : NULL;
    dst->budget_period = src->budget_period ? xstrdup(src->budget_period) : NULL;
    dst->github_sealed = src->github_sealed ? xstrdup(src->github_sealed) : NULL;
}

int store_tokens_set(struct store *s, const char *user, const char *sealed, int64_t now_ms,
                     store_cb cb, void *ud, uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!user || !*user)
        return gw_err_set(err, GW_EINVAL, "a GitHub token needs a user to belong to");
    req = req_new(s, cb, ud, sealed ? "store a GitHub token" : "remove a GitHub token", 0, id,
                  err);
    if (!req)
        return GW_EINVAL;
    s->ops->tokens_set(s, user, sealed, now_ms, req);
    return GW_OK;
}

/* ---- usage -------------------------------------------------------------------------------- */

static const char *const group_bys[] = {"key", "user", "model", "day", "api", "agent", NULL};

int store_usage_add(struct store *s, const struct store_usage *u, store_cb cb, void *ud,
                    uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!u->principal || !u->model || !u->api)
        return gw_err_set(err, GW_EINVAL, "cannot record usage without principal, model or api");
    req = req_new(s, cb, ud, "record usage", 0, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->usage_add(s, u, req);
    return GW_OK;
}

int store_usage_report(struct store *s, const struct store_usage_query *q, store_cb cb, void *ud,
                       uint64_t *id, struct gw_err *err)
{
    struct store__req *req;

    if (!q->group_by || !is_one_of(q->group_by, group_bys))
        return gw_err_set(err, GW_EINVAL, "cannot sum usage by '%.16s'",
                          q->group_by ? q->group_by : "");
    req = req_new(s, cb, ud, "read usage", 1, id, err);
    if (!req)
        return GW_EINVAL;
    s->ops->usage_report(s, q, req);
    return GW_OK;
}

