/*
 * The routes answered from the store: the admin API of virtual keys (GET and POST
 * /admin/keys, GET, PATCH and DELETE /admin/keys/{name}; keys/keys.h), usage (GET
 * /admin/usage, http/usage_query.h) and the audit log (GET /admin/audit, newest first or
 * followed past a seq; http/audit_query.h), and a key's own view (GET /v1/me).  A new key's
 * secret is in the 201 answer to its POST and nowhere else; DELETE revokes (the row stays
 * for its usage).
 */
#include <stdlib.h>
#include <string.h>

#include "http/handlers.h"
#include "http/audit_query.h"
#include "http/services.h"
#include "http/usage_query.h"
#include "keys/keys.h"
#include "keys/sealed.h"
#include "broker/broker.h"
#include "broker/errmap.h"
#include "rt/rt.h"
#include "util/log.h"
#include "limits/limits.h"
#include "util/tstamp.h"
#include "store/store.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define QUOTA_TIMEOUT_MS 10000

enum kop { K_LIST, K_GET, K_CREATE, K_PATCH, K_REVOKE, K_USAGE, K_ME, K_AUDIT, K_TOKEN };

/* One admin call: its store operations in flight; the client leaving cancels them. */
struct keys_req {
    struct http_req *r;
    struct store *st;
    uint64_t op;
    enum kop kind;
    json_t *body;            /* K_PATCH: the changes */
    struct store_key k;      /* K_CREATE, K_PATCH: the key written */
    char secret[64];         /* K_CREATE */
    struct usage_query uq;   /* K_USAGE */
    struct audit_query aq;   /* K_AUDIT */
    int64_t since_ms;        /* K_ME: the start of the key's period */
    char *owner;             /* K_TOKEN: whose token */
    int token_set;           /* K_TOKEN: set (1) or removed (0) */
    json_t *reply;           /* a write's answer, sent once the keyring has it */
    int reply_status;
    uint64_t ticket;         /* ... its wait (keyring_reload_then()), or 0 */
    struct rt *rt;           /* K_ME: the runtime asked for the user's quota, or NULL */
    uint64_t rt_id;
};

static void keys_req_free(struct keys_req *q)
{
    json_decref(q->body);
    json_decref(q->reply);
    free(q->owner);
    store_key_release(&q->k);
    usage_query_release(&q->uq);
    audit_query_release(&q->aq);
    explicit_bzero(q->secret, sizeof(q->secret));
    free(q);
}

static void unhook(struct http_req *r)
{
    r->on_gone = NULL;
    r->on_shutdown = NULL;
    r->hdata = NULL;
}

static void keys_gone(struct http_req *r)
{
    struct keys_req *q = r->hdata;

    if (q->ticket)
        keyring_reload_cancel(r->svc->keyring, q->ticket);
    else if (q->rt)
        rt_cancel(q->rt, q->rt_id);
    else
        store_cancel(q->st, q->op);
    keys_req_free(q);
}

static void keys_shutdown(struct http_req *r);

/* q waits on something (the store, the keyring, the runtime): its request's hooks. */
static void hook(struct keys_req *q)
{
    q->r->hdata = q;
    q->r->on_gone = keys_gone;
    q->r->on_shutdown = keys_shutdown;
}

static void on_reloaded(void *ud)
{
    struct keys_req *q = ud;
    struct http_req *r = q->r;

    unhook(r);
    http_reply_json(r, q->reply_status, q->reply);
    q->reply = NULL;
    keys_req_free(q);
}

/* A write is in the store: its answer (stolen) goes out once this gateway's keyring has
 * it, so a revoked key is refused, and a new key or token is in use, from the reply on. */
static void reply_when_loaded(struct keys_req *q, int status, json_t *body)
{
    struct http_req *r = q->r;

    q->reply = body;
    q->reply_status = status;
    hook(q);
    q->ticket = keyring_reload_then(r->svc->keyring, on_reloaded, q);
}

static void keys_shutdown(struct http_req *r)
{
    struct gw_err err;

    keys_gone(r);
    unhook(r);
    gw_err_set(&err, GW_ERUNTIME, "the gateway is shutting down; retry the request");
    http_reply_error(r, &err);
}

/* 503: the store cannot answer now (its message names no path or SQL). */
static void reply_unavailable(struct http_req *r, const char *why)
{
    const char *what = r->rt && strcmp(r->rt->name, "admin_audit") == 0
                           ? "audit log is"
                           : "keys and usage are";
    struct gw_err err;

    gw_err_set(&err, GW_ERUNTIME, "the %s unavailable: %s", what, why);
    err.http_status = 503;
    http_reply_error(r, &err);
}

static void reply_not_found(struct http_req *r, const char *name)
{
    struct gw_err err;

    gw_err_set(&err, GW_ENOTFOUND, "no active key named '%.64s'", name);
    snprintf(err.api_code, sizeof(err.api_code), "key_not_found");
    http_reply_error(r, &err);
}

static void reply_conflict(struct http_req *r, const char *name)
{
    struct gw_err err;

    gw_err_set(&err, GW_EINVAL, "an active key is already named '%.64s'", name);
    err.http_status = 409;
    snprintf(err.api_code, sizeof(err.api_code), "key_exists");
    http_reply_error(r, &err);
}

static const struct store_key *find_name(const struct store_result *res, const char *name)
{
    for (size_t i = 0; i < res->n_keys; i++)
        if (strcmp(res->keys[i].name, name) == 0)
            return &res->keys[i];
    return NULL;
}

static int start(struct keys_req *q, int rc, struct gw_err *err);

/* /v1/me's "github_token": whether the key's user has one, and whether it is in use. */
static json_t *token_json(const struct http_req *r)
{
    const struct vkey *k = r->vkey;
    const char *state = k->token_state == VKEY_TOKEN_OK       ? "set"
                        : k->token_state == VKEY_TOKEN_SEALED ? "unreadable"
                                                              : "none";
    json_t *o = json_pack("{s:s, s:s}", "user", keys_token_owner(k->user, k->name), "state",
                          state);
    char t[32];

    if (k->token_updated_ms) {
        tstamp_format(k->token_updated_ms, t);
        json_object_set_new(o, "updated_at", json_string(t));
    }
    /* a BYOK provider serves every model: no GitHub identity is involved */
    json_object_set_new(o, "in_use",
                        json_boolean(vkey_github_token(k, broker_byok(r->svc->broker)) != NULL));
    return o;
}

static void on_quota(void *ud, const json_t *result, const struct gw_err *rerr)
{
    struct keys_req *q = ud;
    struct http_req *r = q->r;
    json_t *snap = json_object_get(result, "quotaSnapshots");
    struct gw_err e;

    q->rt = NULL;
    unhook(r);
    if (!rerr && json_is_object(snap)) {
        json_object_set(q->reply, "copilot_quota", snap);
    } else {
        /* the runtime's text stays in the log: it can name hosts and files */
        if (rerr)
            log_msg(LOG_INFO, "http", "req=%s the user's Copilot quota: %s", r->id, rerr->msg);
        errmap_user_token(&e, rerr ? rerr->msg : NULL);
        json_object_set_new(q->reply, "copilot_quota", json_null());
        json_object_set_new(
            q->reply, "copilot_quota_error",
            json_string(rerr && rerr->code == GW_ETIMEDOUT
                            ? "the Copilot runtime did not answer in time"
                        : rerr && errmap_is_token_failure(rerr->msg) ? e.msg
                        : rerr && strcasestr(rerr->msg, "fetch failed")
                            ? "GitHub (api.github.com) could not be reached"
                            : "the Copilot runtime could not read the quota"));
    }
    http_reply_json(r, 200, q->reply);
    q->reply = NULL;
    keys_req_free(q);
}

/* Asks the runtime for the user's Copilot quota (account.getQuota with their token), then
 * answers with o (stolen) and it.  0 when it cannot be asked now (no token in use: o as it
 * is; else o says why): the caller answers. */
static int ask_quota(struct keys_req *q, json_t *o)
{
    struct http_req *r = q->r;
    struct rt *rt = broker_rt(r->svc->broker);
    const char *token = vkey_github_token(r->vkey, broker_byok(r->svc->broker));
    json_t *params;

    if (!token)
        return 0;
    if (!rt || rt_state(rt) != RT_READY) {
        json_object_set_new(o, "copilot_quota", json_null());
        json_object_set_new(o, "copilot_quota_error",
                            json_string("the Copilot runtime is not ready"));
        return 0;
    }
    params = json_pack("{s:s}", "gitHubToken", token);
    if (rt_call(rt, "account.getQuota", params, QUOTA_TIMEOUT_MS, on_quota, q, &q->rt_id)) {
        json_object_set_new(o, "copilot_quota", json_null());
        return 0;
    }
    q->rt = rt;
    q->reply = o;
    hook(q);
    return 1;
}

static void on_done(void *ud, const struct store_result *res)
{
    struct keys_req *q = ud;
    struct http_req *r = q->r;
    struct gw_err err;
    json_t *o;

    unhook(r);
    if (res->rc < 0) {
        reply_unavailable(r, res->err->msg);
        keys_req_free(q);
        return;
    }
    switch (q->kind) {
    case K_AUDIT: {
        json_t *data = json_array();
        for (size_t i = 0; i < res->n_audit; i++)
            json_array_append_new(data, audit_row_json(&res->audit[i]));
        http_reply_json(r, 200, json_pack("{s:s, s:o, s:b}", "object", "list", "data", data,
                                          "has_more", res->more));
        break;
    }
    case K_ME: {
        const struct vkey *k = r->vkey;
        struct store_key sk = {0};
        char t[32];
        json_t *u = json_object(), *key;
        snprintf(sk.id, sizeof(sk.id), "%s", k->id);
        sk.name = k->name;
        sk.user = k->user;
        sk.rpm = k->rpm;
        sk.tpm = k->tpm;
        sk.max_concurrent = k->max_concurrent;
        sk.budget_credits = k->budget_credits;
        sk.budget_period = k->budget_period;
        sk.expires_ms = k->expires_ms;
        sk.created_ms = k->created_ms;
        key = keys_to_json(&sk);
        if (k->models) {
            json_t *m = json_array();
            for (size_t i = 0; k->models[i]; i++)
                json_array_append_new(m, json_string(k->models[i]));
            json_object_set_new(key, "models", m);
        }
        tstamp_format(q->since_ms, t);
        json_object_set_new(u, "since", json_string(t));
        static const struct store_usage_group none;
        json_t *g = usage_group_json(res->n_groups ? &res->groups[0] : &none, "key");
        json_object_del(g, "key");
        json_object_update(u, g);
        json_decref(g);
        if (k->budget_credits > 0) {
            double spent = json_real_value(json_object_get(u, "credits"));
            json_object_set_new(u, "budget_left",
                                json_real(spent < k->budget_credits ? k->budget_credits - spent : 0));
        }
        o = json_pack("{s:s, s:o, s:o}", "object", "me", "key", key, "usage", u);
        json_object_set_new(o, "github_token", token_json(r));
        if (ask_quota(q, o))
            return;
        http_reply_json(r, 200, o);
        break;
    }
    case K_USAGE: {
        json_t *data = json_array();
        for (size_t i = 0; i < res->n_groups; i++)
            json_array_append_new(data, usage_group_json(&res->groups[i], q->uq.group_by));
        http_reply_json(r, 200, json_pack("{s:s, s:s, s:o}", "object", "list", "group_by",
                                          q->uq.group_by, "data", data));
        break;
    }
    case K_LIST: {
        json_t *data = json_array();
        for (size_t i = 0; i < res->n_keys; i++)
            json_array_append_new(data, keys_to_json(&res->keys[i]));
        http_reply_json(r, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
        break;
    }
    case K_GET: {
        const struct store_key *k = find_name(res, r->param);
        if (k)
            http_reply_json(r, 200, keys_to_json(k));
        else
            reply_not_found(r, r->param);
        break;
    }
    case K_PATCH: {
        /* the first answer is the list: then the update goes out */
        const struct store_key *k = q->k.id[0] ? NULL : find_name(res, r->param);
        if (!q->k.id[0]) {
            if (!k) {
                reply_not_found(r, r->param);
                break;
            }
            store_key_copy(&q->k, k);
            if (keys_from_json(q->body, 1, &q->k, &err)) {
                http_reply_error(r, &err);
                break;
            }
            if (start(q, store_keys_update(q->st, &q->k, on_done, q, &q->op, &err), &err))
                return;
            break;
        }
        if (res->rc == 0) {
            reply_conflict(r, q->k.name);
            break;
        }
        reply_when_loaded(q, 200, keys_to_json(&q->k));
        return;
    }
    case K_CREATE:
        if (res->rc == 0) {
            reply_conflict(r, q->k.name);
            break;
        }
        o = keys_to_json(&q->k);
        json_object_set_new(o, "key", json_string(q->secret));
        reply_when_loaded(q, 201, o);
        return;
    case K_REVOKE:
        if (res->rc == 0) {
            reply_not_found(r, r->param);
            break;
        }
        reply_when_loaded(q, 200, json_pack("{s:s, s:s, s:b}", "object", "key", "name",
                                            r->param, "revoked", 1));
        return;
    case K_TOKEN: {
        char t[32];
        o = json_pack("{s:s, s:s, s:b}", "object", "github_token", "user", q->owner, "set",
                      q->token_set);
        if (q->token_set) {
            tstamp_format(q->since_ms, t);
            json_object_set_new(o, "updated_at", json_string(t));
        }
        reply_when_loaded(q, 200, o);
        return;
    }
    }
    keys_req_free(q);
}

/* Hooks q to its request once an operation went out (rc 0): 1; else replies, frees, 0. */
static int start(struct keys_req *q, int rc, struct gw_err *err)
{
    struct http_req *r = q->r;

    if (rc < 0) {
        if (rc == GW_EINVAL)
            http_reply_error(r, err);
        else
            reply_unavailable(r, err->msg);
        unhook(r);
        keys_req_free(q);
        return 0;
    }
    hook(q);
    return 1;
}

static struct keys_req *req_for(struct http_req *r, enum kop kind)
{
    struct keys_req *q;

    if (!r->svc->store || (kind != K_USAGE && kind != K_AUDIT && !r->svc->keyring)) {
        reply_unavailable(r, "the gateway has no store");
        return NULL;
    }
    q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->st = r->svc->store;
    q->kind = kind;
    return q;
}

/* The request's JSON object body, or NULL after a 400. */
static json_t *body_object(struct http_req *r)
{
    size_t len;
    const char *body = http_req_body(r, &len);
    json_t *root = len ? json_loadb(body, len, 0, NULL) : NULL;
    struct gw_err err;

    if (json_is_object(root))
        return root;
    json_decref(root);
    gw_err_set(&err, GW_EINVAL, "the body must be a JSON object (a key)");
    http_reply_error(r, &err);
    return NULL;
}

void http_route_admin_keys(struct http_req *r)
{
    int all = r->query && strstr(r->query, "revoked=true") != NULL;
    struct keys_req *q;
    struct gw_err err;
    json_t *body;

    if (r->cmd != EVHTTP_REQ_POST) {
        if ((q = req_for(r, K_LIST)) != NULL)
            start(q, store_keys_list(q->st, all, on_done, q, &q->op, &err), &err);
        return;
    }
    if ((body = body_object(r)) == NULL || (q = req_for(r, K_CREATE)) == NULL) {
        json_decref(body);
        return;
    }
    if (keys_from_json(body, 0, &q->k, &err)) {
        json_decref(body);
        keys_req_free(q);
        http_reply_error(r, &err);
        return;
    }
    json_decref(body);
    keys_new_secret(q->secret, q->k.id);
    keys_digest(q->secret, q->k.digest);
    q->k.created_ms = util_wall_ms();
    start(q, store_keys_add(q->st, &q->k, on_done, q, &q->op, &err), &err);
}

void http_route_admin_key(struct http_req *r)
{
    struct keys_req *q;
    struct gw_err err;

    if (r->cmd == EVHTTP_REQ_DELETE) {
        if ((q = req_for(r, K_REVOKE)) != NULL)
            start(q, store_keys_revoke(q->st, r->param, util_wall_ms(), on_done, q, &q->op, &err),
                  &err);
        return;
    }
    if (r->cmd == EVHTTP_REQ_PATCH) {
        json_t *body = body_object(r);
        if (!body)
            return;
        if ((q = req_for(r, K_PATCH)) == NULL) {
            json_decref(body);
            return;
        }
        q->body = body;
        start(q, store_keys_list(q->st, 0, on_done, q, &q->op, &err), &err);
        return;
    }
    if ((q = req_for(r, K_GET)) != NULL)
        start(q, store_keys_list(q->st, 0, on_done, q, &q->op, &err), &err);
}

void http_route_admin_usage(struct http_req *r)
{
    struct keys_req *q = req_for(r, K_USAGE);
    struct store_usage_query sq;
    struct gw_err err;

    if (!q)
        return;
    if (usage_query_parse(r->query, &q->uq, &err)) {
        keys_req_free(q);
        http_reply_error(r, &err);
        return;
    }
    sq = usage_query_store(&q->uq);
    start(q, store_usage_report(q->st, &sq, on_done, q, &q->op, &err), &err);
}

/*
 * GET /v1/me: the caller's key (as the admin API shows it, never the secret) and its usage
 * since the start of its budget period (the calendar month without one).
 */
void http_route_me(struct http_req *r)
{
    struct keys_req *q;
    struct gw_err err;
    struct store_usage_query sq = {.group_by = "key"};
    int64_t since;

    if (!r->vkey) {
        gw_err_set(&err, GW_EINVAL,
                   "this request's key is not a virtual key: /v1/me describes virtual keys");
        err.http_status = 404;
        http_reply_error(r, &err);
        return;
    }
    if ((q = req_for(r, K_ME)) == NULL)
        return;
    since = limits_period_start(r->vkey->budget_period ? r->vkey->budget_period : "month",
                                util_wall_ms());
    q->since_ms = since > 0 ? since : 0;
    sq.since_ms = q->since_ms;
    sq.key_name = r->vkey->name;
    start(q, store_usage_report(q->st, &sq, on_done, q, &q->op, &err), &err);
}

void http_route_admin_audit(struct http_req *r)
{
    struct keys_req *q = req_for(r, K_AUDIT);
    struct store_audit_filter f;
    struct gw_err err;

    if (!q)
        return;
    if (audit_query_parse(r->query, &q->aq, &err)) {
        keys_req_free(q);
        http_reply_error(r, &err);
        return;
    }
    f = audit_query_filter(&q->aq);
    start(q, store_audit_list(q->st, &f, on_done, q, &q->op, &err), &err);
}


/*
 * Sets (PUT, body {"token":"..."}) or removes (DELETE) the GitHub token of owner: sealed
 * under --token-key-file before it is stored; never echoed, never logged.
 */
static void token_write(struct http_req *r, const char *owner)
{
    struct keys_req *q;
    struct gw_err err;
    char ad[320], *sealed = NULL;
    int rc;

    if (r->cmd == EVHTTP_REQ_PUT) {
        json_t *body = body_object(r);
        const char *tok;
        if (!body)
            return;
        tok = json_string_value(json_object_get(body, "token"));
        if (!r->svc->sealer) {
            gw_err_set(&err, GW_EINVAL,
                       "this gateway does not store users' GitHub tokens: its operator must "
                       "start it with --token-key-file");
            err.http_status = 501;
            snprintf(err.api_code, sizeof(err.api_code), "not_configured");
        } else if (!tok && json_object_get(body, "token")) {
            gw_err_param(&err, GW_EINVAL, "token", "token must be a string");
        } else if (!tok) {
            gw_err_param(&err, GW_EINVAL, "token", "the body needs \"token\": your GitHub token");
        } else if (json_object_size(body) != 1) {
            gw_err_set(&err, GW_EINVAL, "the body has fields other than \"token\"");
        } else if (keys_check_github_token(tok, &err) == GW_OK) {
            keys_token_ad(owner, ad, sizeof(ad));
            sealed = sealer_seal(r->svc->sealer, ad, tok, strlen(tok));
            if (!sealed)
                gw_err_set(&err, GW_EIO, "cannot seal the token");
        }
        /* the body held the token: leave no copy */
        if (tok)
            explicit_bzero((char *)tok, strlen(tok));
        json_decref(body);
        if (!sealed) {
            http_reply_error(r, &err);
            return;
        }
    }
    if ((q = req_for(r, K_TOKEN)) == NULL) {
        free(sealed);
        return;
    }
    q->owner = xstrdup(owner);
    q->token_set = sealed != NULL;
    q->since_ms = util_wall_ms();
    rc = store_tokens_set(q->st, owner, sealed, q->since_ms, on_done, q, &q->op, &err);
    free(sealed);
    start(q, rc, &err);
}

/* PUT / DELETE /v1/me/github-token: a virtual key's user sets their own token. */
void http_route_me_token(struct http_req *r)
{
    struct gw_err err;

    if (!r->vkey) {
        gw_err_set(&err, GW_EINVAL,
                   "this request's key is not a virtual key: only a virtual key has a user to "
                   "hold a GitHub token");
        err.http_status = 404;
        http_reply_error(r, &err);
        return;
    }
    token_write(r, keys_token_owner(r->vkey->user, r->vkey->name));
}

/* PUT / DELETE /admin/users/{user}/github-token: the admin sets a user's token. */
void http_route_admin_user_token(struct http_req *r)
{
    struct gw_err err;

    if (!*r->param || strlen(r->param) > 256) {
        gw_err_set(&err, GW_EINVAL, "a user name is 1 to 256 characters");
        http_reply_error(r, &err);
        return;
    }
    token_write(r, r->param);
}
