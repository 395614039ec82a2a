/*
 * The OpenAI Responses API: its dialect of the request flow (over
 * api/responses.c), background responses, and the stored responses behind
 * previous_response_id, GET/DELETE /v1/responses/{id}, .../cancel and
 * .../input_items.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/keyvalq_struct.h>

#include "api/common.h"
#include "api/responses.h"
#include "http/flow.h"
#include "http/handlers.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* How many stored responses a previous_response_id chain may span. */
#define RESP_CHAIN_MAX 1000

/* The dialect's state of one response (f->st). */
struct resp_state {
    struct flow *f;
    struct resp_req rq;
    struct resp_stream rs;
    int rs_ready;             /* rs was initialised */
    struct http_detached bg;  /* a background response, while it runs */
    int detached;
    char *principal;          /* the request's: owns the stored rows */
    uint64_t op;              /* the store operation waited for ... */
    int op_pending;           /* ... if this is set */
    /* after_turn: the outcome being stored, and what flow_finish() then gets */
    int finished;             /* after_turn built the outcome (and its stream events) */
    int streamed;             /* ... into the stream */
    json_t *outcome;
    struct turn_result fin;   /* ok, err, finish, usage of the turn */
    int saved;                /* GW_OK, or why the outcome could not be stored ... */
    struct gw_err serr;       /* ... in the client's words */
};

static struct resp_state *state_of(const struct flow *f)
{
    return f->st;
}

/* ---- background responses ----------------------------------------------------- */

static struct flow *bg_flow(struct http_detached *d)
{
    return ((struct resp_state *)((char *)d - offsetof(struct resp_state, bg)))->f;
}

/*
 * principal's running background response id, or NULL.  One whose outcome is
 * being stored is no longer running: that write comes before any later call.
 */
static struct flow *bg_find(struct http_server *srv, const char *principal, const char *id)
{
    struct http_detached *d = http_server_find_detached(srv, id);
    struct flow *f = d ? bg_flow(d) : NULL;

    if (!f || f->finishing || strcmp(state_of(f)->principal, principal) != 0)
        return NULL;
    return f;
}

/* A write of the response failed (e): logged, and told to the client in err (a 507
 * for a full or failing disk, store/store.h). */
static void resp_store_failed(struct flow *f, const struct gw_err *e, struct gw_err *err)
{
    log_msg(LOG_WARN, "http", "response %s could not be stored: %s", f->id, e->msg);
    if (!err)
        return;
    *err = *e;
    snprintf(err->msg, sizeof(err->msg),
             "the response could not be stored (store: true): %s; retry once the gateway has "
             "room again",
             e->msg);
}

/*
 * Stores obj as the response's current state, owned by the request's
 * principal (store: true only).  cb(s) gets the outcome (it is then the
 * operation waited for), or with cb NULL a failure is only logged.  A
 * call that fails at once returns its code with err (resp_store_failed()).
 * Expiry rides along: housekeeping, whose failure the store logs.
 */
static int resp_save(struct flow *f, const json_t *obj, store_cb cb, struct gw_err *err)
{
    struct resp_state *s = state_of(f);
    struct store *st = f->svc->store;
    struct store_response sr = {0};
    struct gw_err e;
    int64_t ttl = f->svc->responses_ttl_s;
    int rc;

    if (!s->rq.store || !st)
        return GW_OK;
    sr.id = f->id;
    sr.prev = s->rq.previous_response_id;
    sr.created = f->created_ms;
    sr.owner = s->principal;
    sr.input = json_dumps(s->rq.input, JSON_COMPACT);
    sr.response = json_dumps(obj, JSON_COMPACT);
    if (!sr.input || !sr.response)
        rc = gw_err_set(&e, GW_ENOMEM, "out of memory");
    else
        rc = store_responses_put(st, &sr, f->svc->responses_max, cb, s, cb ? &s->op : NULL, &e);
    free(sr.input);
    free(sr.response);
    if (rc) {
        resp_store_failed(f, &e, err);
        return rc;
    }
    if (cb)
        s->op_pending = 1;
    if (ttl > 0 &&
        store_responses_expire(st, util_wall_ms() - ttl * 1000, NULL, NULL, NULL, &e) < 0)
        log_msg(LOG_WARN, "http", "stored responses could not be expired: %s", e.msg);
    return GW_OK;
}

/* The in_progress row is written (or not): the turn may start (or the request fails). */
static void on_first_saved(void *ud, const struct store_result *res)
{
    struct resp_state *s = ud;
    struct gw_err err;

    s->op_pending = 0;
    if (res->rc < 0) {
        resp_store_failed(s->f, res->err, &err);
        flow_turn(s->f, &err);
        return;
    }
    flow_turn(s->f, NULL);
}

/*
 * A stored response is written once before its turn starts (status
 * in_progress), and the turn waits for that write: a disk that cannot take
 * it fails the request with 507 before any 200, streamed and background
 * ones included, and before the model is called.  A low disk is refused
 * even before that write.
 */
static int resp_store_first(struct flow *f, struct gw_err *err)
{
    json_t *obj;
    int rc;

    if (!state_of(f)->rq.store)
        return 0;
    if (!broker_can_write(f->svc->broker, err))
        return err->code;
    if (!f->svc->store)
        return 0;
    obj = resp_object(&state_of(f)->rs, "in_progress", NULL);
    rc = resp_save(f, obj, on_first_saved, err);
    json_decref(obj);
    return rc < 0 ? rc : 1;
}

/* The turn never started, or its client left: its in_progress row goes (best effort, after
 * the write of it: a store runs its operations in order). */
static void resp_unstore(struct flow *f)
{
    struct store *st = f->svc->store;
    struct gw_err e;

    if (state_of(f)->rq.store && st &&
        store_responses_delete(st, state_of(f)->principal, f->id, NULL, NULL, NULL, &e) < 0)
        log_msg(LOG_WARN, "http", "response %s: its in_progress row stays: %s", f->id, e.msg);
}

/*
 * The final state could not be stored: keep at least a small "failed"
 * object (no output) in place of the in_progress row, so that a GET says
 * what the client was told.
 */
static void resp_save_failed(struct flow *f, const struct gw_err *why)
{
    struct turn_result fres;
    struct gw_err e;
    json_t *obj;

    memset(&fres, 0, sizeof(fres));
    fres.err = *why;
    obj = resp_object(&state_of(f)->rs, "failed", &fres);
    json_object_set_new(obj, "output", json_array());
    if (resp_save(f, obj, NULL, &e))
        log_msg(LOG_ERROR, "http", "response %s is left as in_progress in gateway.db", f->id);
    json_decref(obj);
}

/*
 * A stream whose final state could not be stored: its last event (the
 * response.completed / .incomplete just built into f->out) becomes
 * response.failed with the storage error.  SSE events end with a blank line
 * and compact JSON holds no raw newline, so the last event starts after the
 * last "\n\n" but one.
 */
static void stream_fail_last(struct flow *f, const struct turn_result *res,
                             const struct gw_err *why)
{
    struct turn_result fres = *res;
    size_t start;

    if (f->out.len < 2)
        return;
    start = f->out.len - 2;
    while (start >= 2 && !(f->out.ptr[start - 1] == '\n' && f->out.ptr[start - 2] == '\n'))
        start--;
    if (start < 2)
        start = 0;
    f->out.len = start;
    f->out.ptr[start] = '\0';
    state_of(f)->rs.seq--;
    fres.ok = 0;
    fres.err = *why;
    if (resp_stream_finish(&state_of(f)->rs, &f->out, &fres, 0))
        buf_reset(&f->out);
}

/* Ends a running background response as `status` (cancelled, failed) and stores that. */
static json_t *bg_end(struct flow *f, const char *status, const char *why)
{
    struct turn_result res;
    json_t *obj;

    flow_cancel_turn(f);
    memset(&res, 0, sizeof(res));
    if (why)
        gw_err_set(&res.err, GW_ERUNTIME, "%s", why);
    obj = resp_object(&state_of(f)->rs, status, why ? &res : NULL);
    if (resp_save(f, obj, NULL, NULL))
        log_msg(LOG_ERROR, "http", "response %s is left as in_progress in gateway.db", f->id);
    flow_free(f); /* which ends the detachment */
    return obj;
}

static void resp_not_found(struct gw_err *err, const char *param, const char *fmt, const char *id)
{
    gw_err_param(err, GW_ENOTFOUND, param, fmt, api_clip(id), id);
}

/*
 * The items a previous_response_id prev stands for, from its chain (rows,
 * newest first, as store_responses_chain() gives it with max rows): every
 * response of it, oldest first, each as its input items then its output
 * items.  Returns a new array, or NULL with err set.
 */
static json_t *resp_history(struct http_server *srv, const char *principal, const char *prev,
                            const struct store_response *rows, size_t n, int max,
                            struct gw_err *err)
{
    json_t *items = json_array();

    if (n == 0) {
        resp_not_found(err, "previous_response_id", "Previous response with id '%.*s' not found.",
                       prev);
        goto fail;
    }
    if (rows[n - 1].prev && n < (size_t)max) {
        resp_not_found(err, "previous_response_id",
                       "Previous response '%.*s' continues a response that has expired or was "
                       "deleted.",
                       prev);
        goto fail;
    }
    if (rows[n - 1].prev) {
        gw_err_param(err, GW_EINVAL, "previous_response_id",
                     "The conversation continues more than %d stored responses; send the input "
                     "in full instead.",
                     max);
        goto fail;
    }
    for (size_t i = n; i-- > 0;) {
        const char *id = rows[i].id;
        json_t *in = json_loads(rows[i].input, 0, NULL);
        json_t *obj = json_loads(rows[i].response, 0, NULL);
        json_t *output = json_object_get(obj, "output");
        const char *status = json_string_value(json_object_get(obj, "status"));
        int bad = 1;

        if (!json_is_array(in) || !json_is_array(output) || !status)
            gw_err_set(err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(id), id);
        else if (i == 0 && (bg_find(srv, principal, id) || !strcmp(status, "in_progress")))
            gw_err_param(err, GW_EINVAL, "previous_response_id",
                         "Previous response '%.*s' is still in progress; wait for it to finish.",
                         api_clip(id), id);
        else
            bad = 0;
        if (!bad) {
            json_array_extend(items, in);
            json_array_extend(items, output);
        }
        json_decref(in);
        json_decref(obj);
        if (bad)
            goto fail;
    }
    return items;

fail:
    json_decref(items);
    return NULL;
}

/*
 * A stored-response route waiting for the store: the request's on_gone and
 * on_shutdown cancel the operation, whose callback then never runs.
 */
struct stored_req {
    struct http_req *r;
    struct store *st;
    uint64_t op;
    void (*reply)(struct stored_req *q, const struct store_result *res);
    int desc;       /* input_items: its page */
    int64_t limit;
    char *after;
};

static void stored_free(struct stored_req *q)
{
    free(q->after);
    free(q);
}

static void stored_gone(struct http_req *r)
{
    struct stored_req *q = r->hdata;

    store_cancel(q->st, q->op);
    stored_free(q);
}

static void stored_shutdown(struct http_req *r)
{
    struct gw_err err;

    stored_gone(r);
    r->on_gone = NULL;
    r->on_shutdown = NULL;
    r->hdata = NULL;
    gw_err_set(&err, GW_ERUNTIME, "the gateway is shutting down; retry the request");
    http_reply_error(r, &err);
}

static void stored_done(void *ud, const struct store_result *res)
{
    struct stored_req *q = ud;
    struct http_req *r = q->r;

    r->on_gone = NULL;
    r->on_shutdown = NULL;
    r->hdata = NULL;
    if (res->rc < 0)
        http_reply_error(r, res->err);
    else
        q->reply(q, res);
    stored_free(q);
}

/*
 * Asks the store for r's stored response r->param (get, delete or chain
 * with max rows) as r's principal; reply answers.  A gateway without a store
 * has no such response.
 */
enum stored_op { STORED_GET, STORED_DELETE, STORED_CHAIN };

static void stored_ask(struct http_req *r, struct stored_req *q, enum stored_op what, int max)
{
    static const struct store_result none = {0};
    struct store *st = r->svc->store;
    struct gw_err err;
    int rc;

    q->r = r;
    q->st = st;
    if (!st) {
        q->reply(q, &none);
        stored_free(q);
        return;
    }
    if (what == STORED_GET)
        rc = store_responses_get(st, r->principal, r->param, stored_done, q, &q->op, &err);
    else if (what == STORED_DELETE)
        rc = store_responses_delete(st, r->principal, r->param, stored_done, q, &q->op, &err);
    else
        rc = store_responses_chain(st, r->principal, r->param, max, stored_done, q, &q->op,
                                   &err);
    if (rc < 0) {
        http_reply_error(r, &err);
        stored_free(q);
        return;
    }
    r->hdata = q;
    r->on_gone = stored_gone;
    r->on_shutdown = stored_shutdown;
}

static struct stored_req *stored_new(void (*reply)(struct stored_req *q,
                                                   const struct store_result *res))
{
    struct stored_req *q = xcalloc(1, sizeof(*q));

    q->reply = reply;
    return q;
}

/* Another principal's response is missing too: the same 404, its existence not revealed. */
static void reply_not_found(struct http_req *r)
{
    struct gw_err err;

    resp_not_found(&err, NULL, "Response with id '%.*s' not found.", r->param);
    http_reply_error(r, &err);
}

/* GET /v1/responses/{id} */
static void got_response(struct stored_req *q, const struct store_result *res)
{
    struct http_req *r = q->r;
    struct gw_err err;
    json_t *obj;

    if (res->rc == 0) {
        reply_not_found(r);
        return;
    }
    obj = json_loads(res->responses[0].response, 0, NULL);
    if (!obj) {
        gw_err_set(&err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(r->param),
                   r->param);
        http_reply_error(r, &err);
        return;
    }
    http_reply_json(r, 200, obj);
}

static void responses_get(struct http_req *r)
{
    stored_ask(r, stored_new(got_response), STORED_GET, 0);
}

/* DELETE /v1/responses/{id}: a running background response is cancelled first. */
static void deleted_response(struct stored_req *q, const struct store_result *res)
{
    if (res->rc == 0) {
        reply_not_found(q->r);
        return;
    }
    http_reply_json(q->r, 200, json_pack("{s:s, s:s, s:b}", "id", q->r->param, "object",
                                         "response.deleted", "deleted", 1));
}

static void responses_delete(struct http_req *r)
{
    struct flow *f = bg_find(r->srv, r->principal, r->param);

    if (f)
        json_decref(bg_end(f, "cancelled", NULL));
    stored_ask(r, stored_new(deleted_response), STORED_DELETE, 0);
}

/* POST /v1/responses/{id}/cancel: only a running background response can be (as OpenAI). */
static void cancel_stored(struct stored_req *q, const struct store_result *res)
{
    struct gw_err err;

    if (res->rc == 0) {
        reply_not_found(q->r);
        return;
    }
    gw_err_set(&err, GW_EINVAL,
               "Only a running response created with background=true can be cancelled; "
               "'%.*s' is not running.",
               api_clip(q->r->param), q->r->param);
    http_reply_error(q->r, &err);
}

static void responses_cancel(struct http_req *r)
{
    struct flow *f = bg_find(r->srv, r->principal, r->param);

    if (f) {
        log_msg(LOG_INFO, "http", "req=%s background response %s cancelled", r->id, r->param);
        http_reply_json(r, 200, bg_end(f, "cancelled", NULL));
        return;
    }
    stored_ask(r, stored_new(cancel_stored), STORED_GET, 0);
}

/* The value of query parameter `name` of the request URI (caller frees), or NULL. */
static char *query_param(struct http_req *r, const char *name)
{
    const char *q = r->query;
    struct evkeyvalq params;
    char *v = NULL;

    if (!q || evhttp_parse_query_str(q, &params) != 0)
        return NULL;
    if (evhttp_find_header(&params, name))
        v = xstrdup(evhttp_find_header(&params, name));
    evhttp_clear_headers(&params);
    return v;
}

/*
 * GET /v1/responses/{id}/input_items: the items the response was given, the
 * previous responses' items included, as a cursor page (order asc|desc,
 * default desc; limit 1-100, default 20; after an item id).  Items stored
 * without an id get one made of the response id and their position.
 */
static void got_input_items(struct stored_req *q, const struct store_result *res)
{
    struct http_req *r = q->r;
    const char *id = r->param;
    struct gw_err err;
    char item_id[160];
    json_t *items, *data, *it;
    size_t i, n, start = 0;
    const struct store_response *sr = res->responses;

    if (res->rc == 0) {
        reply_not_found(r);
        return;
    }
    items = sr[0].prev ? resp_history(r->srv, r->principal, sr[0].prev, sr + 1,
                                      (size_t)res->rc - 1, RESP_CHAIN_MAX - 1, &err)
                       : json_array();
    if (!items) {
        http_reply_error(r, &err);
        return;
    }
    it = json_loads(sr[0].input, 0, NULL);
    json_array_extend(items, it);
    json_decref(it);
    n = json_array_size(items);
    json_array_foreach(items, i, it)
    {
        if (!json_is_object(it) || json_is_string(json_object_get(it, "id")))
            continue;
        snprintf(item_id, sizeof(item_id), "item_%s_%zu", id, i);
        json_object_set_new(it, "id", json_string(item_id));
    }
    for (i = 0; q->after && i < n; i++) {
        const char *xid = json_string_value(
            json_object_get(json_array_get(items, q->desc ? n - 1 - i : i), "id"));
        if (xid && !strcmp(xid, q->after)) {
            start = i + 1;
            break;
        }
    }
    data = json_array();
    for (i = start; i < n && json_array_size(data) < (size_t)q->limit; i++)
        json_array_append(data, json_array_get(items, q->desc ? n - 1 - i : i));
    n = json_array_size(data);
    http_reply_json(r, 200,
                    json_pack("{s:s, s:o, s:O?, s:O?, s:b}", "object", "list", "data", data,
                              "first_id", json_object_get(json_array_get(data, 0), "id"),
                              "last_id", json_object_get(json_array_get(data, n ? n - 1 : 0), "id"),
                              "has_more", i < json_array_size(items)));
    json_decref(items);
}

static void responses_input_items(struct http_req *r)
{
    struct gw_err err;
    char *order = query_param(r, "order"), *lim = query_param(r, "limit");
    struct stored_req *q = stored_new(got_input_items);

    q->after = query_param(r, "after");
    q->limit = 20;
    q->desc = !order || strcmp(order, "asc") != 0;
    if (order && strcmp(order, "asc") && strcmp(order, "desc"))
        gw_err_param(&err, GW_EINVAL, "order",
                     "Invalid value: '%.*s'. Supported values are: 'asc' and 'desc'.",
                     api_clip(order), order);
    else if (lim && util_parse_i64(lim, 1, 100, &q->limit))
        gw_err_param(&err, GW_EINVAL, "limit", "limit must be an integer from 1 to 100");
    else
        err.code = GW_OK;
    free(order);
    free(lim);
    if (err.code != GW_OK) {
        stored_free(q);
        http_reply_error(r, &err);
        return;
    }
    /* the response and the chain before it */
    stored_ask(r, q, STORED_CHAIN, RESP_CHAIN_MAX);
}

void http_route_response_get(struct http_req *r)
{
    responses_get(r);
}

void http_route_response_delete(struct http_req *r)
{
    responses_delete(r);
}

void http_route_response_cancel(struct http_req *r)
{
    responses_cancel(r);
}

void http_route_response_input_items(struct http_req *r)
{
    responses_input_items(r);
}

/* ---- the dialect ------------------------------------------------------------------- */

static void resp_d_free(void *p)
{
    struct resp_state *s = p;

    if (s->op_pending) /* the client went, or the server stops: no answer for a freed flow */
        store_cancel(s->f->svc->store, s->op);
    if (s->detached)
        http_server_undetach(s->f->srv, &s->bg);
    if (s->rs_ready)
        resp_stream_release(&s->rs);
    resp_req_release(&s->rq);
    json_decref(s->outcome);
    free(s->principal);
    free(s);
}

/* The conversation: the request, after the stored chain it continues (prior, or NULL). */
static int resp_build(struct flow *f, json_t *prior, struct gw_err *err)
{
    struct resp_state *s = state_of(f);
    int rc = resp_conv(&s->rq, prior, &f->conv, err);

    if (rc)
        return rc;
    f->stream = s->rq.stream;
    resp_stream_init(&s->rs, &s->rq, f->id, f->created);
    s->rs_ready = 1;
    return GW_OK;
}

/* The request; a previous_response_id's chain is loaded next (resp_d_load). */
static int resp_d_parse(struct flow *f, const char *body, size_t len, struct gw_err *err)
{
    struct resp_state *s = xcalloc(1, sizeof(*s));
    int rc;

    s->f = f;
    s->principal = xstrdup(f->r->principal);
    f->st = s;
    rc = resp_parse(body, len, &s->rq, err);
    if (rc || s->rq.previous_response_id)
        return rc;
    return resp_build(f, NULL, err);
}

static void on_chain(void *ud, const struct store_result *res)
{
    struct resp_state *s = ud;
    struct flow *f = s->f;
    struct gw_err err;
    json_t *prior = NULL;
    int rc = res->rc;

    s->op_pending = 0;
    if (rc < 0)
        err = *res->err;
    else {
        prior = resp_history(f->srv, s->principal, s->rq.previous_response_id, res->responses,
                             res->n_responses, RESP_CHAIN_MAX, &err);
        rc = prior ? resp_build(f, prior, &err) : err.code ? err.code : GW_EIO;
        json_decref(prior);
    }
    flow_loaded(f, rc < 0 ? &err : NULL);
}

/* The stored chain the request continues, as its principal sees it. */
static int resp_d_load(struct flow *f, struct gw_err *err)
{
    struct resp_state *s = state_of(f);
    struct store *st = f->svc->store;
    const char *prev = s->rq.previous_response_id;
    int rc;

    if (!prev)
        return 0;
    if (!st) {
        resp_not_found(err, "previous_response_id", "Previous response with id '%.*s' not found.",
                       prev);
        return err->code;
    }
    rc = store_responses_chain(st, s->principal, prev, RESP_CHAIN_MAX, on_chain, s, &s->op, err);
    if (rc < 0)
        return rc;
    s->op_pending = 1;
    return 1;
}

static int resp_d_start(struct flow *f, struct buf *out)
{
    return resp_stream_start(&state_of(f)->rs, out);
}

static int resp_d_text(struct flow *f, struct buf *out, const char *p, size_t n)
{
    return resp_stream_text(&state_of(f)->rs, out, p, n);
}

static int resp_d_reasoning(struct flow *f, struct buf *out, const char *p, size_t n)
{
    return resp_stream_reasoning(&state_of(f)->rs, out, p, n);
}

static int resp_d_tool(struct flow *f, struct buf *out, size_t index, const char *id,
                       const char *name, const char *args, size_t n)
{
    return resp_stream_tool(&state_of(f)->rs, out, index, id, name, args, n);
}

/*
 * The outcome's write ended with rc (and e): on failure a "failed" row takes
 * the in_progress one's place, and a stream that would have said completed
 * ends with response.failed instead: never a success for a response that was
 * not kept.
 */
static void resp_outcome_stored(struct flow *f, int rc, const struct gw_err *e)
{
    struct resp_state *s = state_of(f);

    s->saved = rc;
    if (rc == GW_OK)
        return;
    if (e)
        resp_store_failed(f, e, &s->serr);
    resp_save_failed(f, &s->serr);
    if (s->streamed && s->fin.ok)
        stream_fail_last(f, &s->fin, &s->serr);
}

static void on_outcome_saved(void *ud, const struct store_result *res)
{
    struct resp_state *s = ud;

    s->op_pending = 0;
    resp_outcome_stored(s->f, res->rc < 0 ? res->rc : GW_OK, res->err);
    flow_finish(s->f, &s->fin);
}

/*
 * The turn ended: builds its outcome (the stream's last events into f->out
 * for a stream) and stores it; the reply waits for that write (store: true
 * only).
 */
static int resp_d_after(struct flow *f, const struct turn_result *res)
{
    struct resp_state *s = state_of(f);
    int rc;

    if (!s->rq.store || !f->svc->store)
        return 0;
    s->finished = 1;
    s->streamed = flow_streams_end(f, res);
    if (s->streamed) {
        flow_stream_begin(f);
        if (resp_stream_finish(&s->rs, &f->out, res, 0))
            buf_reset(&f->out);
    } else if (resp_stream_finish(&s->rs, NULL, res, 1)) {
        log_msg(LOG_WARN, "http", "req=%s response %s: its output could not be built",
                flow_req_id(f), f->id);
    }
    s->outcome = resp_object(&s->rs, resp_status(res), res);
    s->fin.ok = res->ok;
    s->fin.err = res->err;
    s->fin.finish = res->finish;
    s->fin.usage = res->usage;
    rc = resp_save(f, s->outcome, on_outcome_saved, &s->serr);
    if (rc == GW_OK)
        return 1;
    resp_outcome_stored(f, rc, NULL);
    return 0;
}

/* The stream's last events: after_turn wrote them for a stored response. */
static int resp_d_end(struct flow *f, struct buf *out, const struct turn_result *res)
{
    if (!state_of(f)->finished && resp_stream_finish(&state_of(f)->rs, out, res, 0))
        buf_reset(out);
    return GW_OK;
}

/* Not streamed (background responses too): the items from the result, stored;
 * never a 200 for a response that was not kept. */
static json_t *resp_d_answer(struct flow *f, const struct turn_result *res, struct gw_err *err)
{
    struct resp_state *s = state_of(f);
    json_t *obj;

    if (s->finished) {
        obj = json_incref(s->outcome);
    } else {
        if (resp_stream_finish(&s->rs, NULL, res, 1))
            log_msg(LOG_WARN, "http", "req=%s response %s: its output could not be built",
                    flow_req_id(f), f->id);
        obj = resp_object(&s->rs, resp_status(res), res);
    }
    if (!f->r) { /* background: the client reads the outcome with GET */
        log_msg(LOG_DEBUG, "http", "background response %s %s", f->id, resp_status(res));
        return obj;
    }
    if (!res->ok || s->saved != GW_OK) {
        *err = !res->ok ? res->err : s->serr;
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The shutdown came before a background response finished.  One whose outcome is being
 * stored has finished: that write stands. */
static void bg_shutdown(struct http_detached *d)
{
    struct flow *f = bg_flow(d);

    if (f->finishing) {
        flow_free(f);
        return;
    }
    log_msg(LOG_WARN, "http", "background response %s ended by the shutdown", f->id);
    json_decref(bg_end(f, "failed", "the gateway shut down before the response finished"));
}

/* A background response's turn has started: answer now, let it run on.  Its in_progress
 * row was stored before the turn started (resp_store_first). */
static int resp_d_started(struct flow *f)
{
    struct resp_state *s = state_of(f);

    if (!s->rq.background)
        return 0;
    s->bg.id = f->id;
    s->bg.end = bg_shutdown;
    http_server_detach(f->srv, &s->bg);
    s->detached = 1;
    flow_detach(f, resp_object(&s->rs, "in_progress", NULL));
    return 1;
}

const struct dialect_ops dialect_responses = {
    .id_prefix = "resp_",
    .input_param = "input",
    .parse = resp_d_parse,
    .load = resp_d_load,
    .free_state = resp_d_free,
    .stream_start = resp_d_start,
    .text = resp_d_text,
    .reasoning = resp_d_reasoning,
    .tool_call = resp_d_tool,
    .stream_end = resp_d_end,
    .answer = resp_d_answer,
    .before_turn = resp_store_first,
    .after_turn = resp_d_after,
    .abandon = resp_unstore,
    .started = resp_d_started,
};
