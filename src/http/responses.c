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

/* The running background response id, or NULL. */
static struct flow *bg_find(struct http_server *srv, const char *id)
{
    struct http_detached *d = http_server_find_detached(srv, id);
    return d ? bg_flow(d) : NULL;
}

/*
 * Stores obj as the response's current state (store: true only).  A failure
 * is logged and returned in err: a 507 for a full or failing disk
 * (store/store.h), the client's to see.
 */
static int resp_save(struct flow *f, const json_t *obj, struct gw_err *err)
{
    struct store *st = f->svc->store;
    struct store_response sr = {0};
    struct gw_err e;
    int64_t ttl = f->svc->responses_ttl_s;
    int rc = GW_OK;

    if (!state_of(f)->rq.store || !st)
        return GW_OK;
    sr.id = f->id;
    sr.prev = state_of(f)->rq.previous_response_id;
    sr.created = f->created_ms;
    sr.input = json_dumps(state_of(f)->rq.input, JSON_COMPACT);
    sr.response = json_dumps(obj, JSON_COMPACT);
    if (!sr.input || !sr.response)
        rc = gw_err_set(&e, GW_ENOMEM, "out of memory");
    else
        rc = store_resp_put(st, &sr, f->svc->responses_max, &e);
    free(sr.input);
    free(sr.response);
    if (rc) {
        log_msg(LOG_WARN, "http", "response %s could not be stored: %s", f->id, e.msg);
        if (err) {
            *err = e;
            snprintf(err->msg, sizeof(err->msg),
                     "the response could not be stored (store: true): %s; retry once the "
                     "gateway has room again",
                     e.msg);
        }
        return rc;
    }
    /* Expiry is housekeeping: its failure loses nothing the client was promised. */
    if (ttl > 0 && store_resp_expire(st, util_wall_ms() - ttl * 1000, &e) < 0)
        log_msg(LOG_WARN, "http", "stored responses could not be expired: %s", e.msg);
    return GW_OK;
}

/*
 * A stored response is written once before its turn starts (status
 * in_progress): a disk that cannot take it fails the request with 507
 * before any 200, streamed and background ones included, and before the
 * model is called.  A low disk is refused even before that write.
 */
static int resp_store_first(struct flow *f, struct gw_err *err)
{
    json_t *obj;
    int rc;

    if (!state_of(f)->rq.store)
        return GW_OK;
    if (!broker_can_write(f->svc->broker, err))
        return err->code;
    obj = resp_object(&state_of(f)->rs, "in_progress", NULL);
    rc = resp_save(f, obj, err);
    json_decref(obj);
    return rc;
}

/* The turn never started: its in_progress row goes (best effort: the request fails anyway). */
static void resp_unstore(struct flow *f)
{
    struct store *st = f->svc->store;
    struct gw_err e;

    if (state_of(f)->rq.store && st && store_resp_delete(st, f->id, &e) < 0)
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
    if (resp_save(f, obj, &e))
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
    if (resp_save(f, obj, NULL))
        log_msg(LOG_ERROR, "http", "response %s is left as in_progress in gateway.db", f->id);
    flow_free(f); /* which ends the detachment */
    return obj;
}

static void resp_not_found(struct gw_err *err, const char *param, const char *fmt, const char *id)
{
    gw_err_param(err, GW_ENOTFOUND, param, fmt, api_clip(id), id);
}

/*
 * The items a previous_response_id stands for: every stored response of its
 * chain, oldest first, each as its input items then its output items.
 * Returns a new array, or NULL with err set.
 */
static json_t *resp_history(struct http_server *srv, struct store *st, const char *prev,
                             struct gw_err *err)
{
    json_t *items = json_array();
    char *cur = xstrdup(prev);

    for (int depth = 0; cur; depth++) {
        struct store_response sr;
        json_t *in, *obj, *output;
        const char *status;
        int rc, bad;

        if (depth == RESP_CHAIN_MAX) {
            gw_err_param(err, GW_EINVAL, "previous_response_id",
                         "The conversation continues more than %d stored responses; send the "
                         "input in full instead.",
                         RESP_CHAIN_MAX);
            goto fail;
        }
        rc = st ? store_resp_get(st, cur, &sr, err) : 0;
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            if (depth == 0)
                resp_not_found(err, "previous_response_id",
                               "Previous response with id '%.*s' not found.", cur);
            else
                resp_not_found(err, "previous_response_id",
                               "Previous response '%.*s' continues a response that has "
                               "expired or was deleted.",
                               prev);
            goto fail;
        }
        in = json_loads(sr.input, 0, NULL);
        obj = json_loads(sr.response, 0, NULL);
        output = json_object_get(obj, "output");
        status = json_string_value(json_object_get(obj, "status"));
        bad = 1;
        if (!json_is_array(in) || !json_is_array(output) || !status)
            gw_err_set(err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(cur),
                       cur);
        else if (depth == 0 && (bg_find(srv, cur) || !strcmp(status, "in_progress")))
            gw_err_param(err, GW_EINVAL, "previous_response_id",
                         "Previous response '%.*s' is still in progress; wait for it to finish.",
                         api_clip(cur), cur);
        else
            bad = 0;
        free(cur);
        cur = !bad && sr.prev ? xstrdup(sr.prev) : NULL;
        store_response_release(&sr);
        if (!bad) { /* this response's input and output come before what is already here */
            json_array_extend(in, output);
            json_array_extend(in, items);
            json_decref(items);
            items = json_incref(in);
        }
        json_decref(in);
        json_decref(obj);
        if (bad)
            goto fail;
    }
    return items;

fail:
    free(cur);
    json_decref(items);
    return NULL;
}

/* GET /v1/responses/{id} */
static void responses_get(struct http_req *r, const char *id)
{
    struct store *st = r->svc->store;
    struct store_response sr;
    struct gw_err err;
    int rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    json_t *obj;

    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    obj = json_loads(sr.response, 0, NULL);
    store_response_release(&sr);
    if (!obj) {
        gw_err_set(&err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(id), id);
        http_reply_error(r, &err);
        return;
    }
    http_reply_json(r, 200, obj);
}

/* DELETE /v1/responses/{id}: a running background response is cancelled first. */
static void responses_delete(struct http_req *r, const char *id)
{
    struct store *st = r->svc->store;
    struct flow *f = bg_find(r->srv, id);
    struct gw_err err;
    int rc;

    if (f)
        json_decref(bg_end(f, "cancelled", NULL));
    rc = st ? store_resp_delete(st, id, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s, s:s, s:b}", "id", id, "object", "response.deleted",
                                      "deleted", 1));
}

/* POST /v1/responses/{id}/cancel: only a running background response can be (as OpenAI). */
static void responses_cancel(struct http_req *r, const char *id)
{
    struct store *st = r->svc->store;
    struct flow *f = bg_find(r->srv, id);
    struct store_response sr;
    struct gw_err err;
    int rc;

    if (f) {
        log_msg(LOG_INFO, "http", "req=%s background response %s cancelled", r->id, id);
        http_reply_json(r, 200, bg_end(f, "cancelled", NULL));
        return;
    }
    rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    store_response_release(&sr);
    gw_err_set(&err, GW_EINVAL,
               "Only a running response created with background=true can be cancelled; "
               "'%.*s' is not running.",
               api_clip(id), id);
    http_reply_error(r, &err);
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
static void responses_input_items(struct http_req *r, const char *id)
{
    struct store *st = r->svc->store;
    struct store_response sr;
    struct gw_err err;
    char *order = query_param(r, "order"), *lim = query_param(r, "limit");
    char *after = query_param(r, "after"), item_id[160];
    json_t *items = NULL, *own = NULL, *data = json_array(), *it;
    int64_t limit = 20;
    int desc = !order || strcmp(order, "asc") != 0, rc;
    size_t i, n, start = 0;

    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        gw_err_param(&err, GW_EINVAL, "order",
                     "Invalid value: '%.*s'. Supported values are: 'asc' and 'desc'.",
                     api_clip(order), order);
        goto fail;
    }
    if (lim && util_parse_i64(lim, 1, 100, &limit)) {
        gw_err_param(&err, GW_EINVAL, "limit", "limit must be an integer from 1 to 100");
        goto fail;
    }
    rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0)
        goto fail;
    items = sr.prev ? resp_history(r->srv, st, sr.prev, &err) : json_array();
    own = json_loads(sr.input, 0, NULL);
    store_response_release(&sr);
    if (!items)
        goto fail;
    json_array_extend(items, own);
    n = json_array_size(items);
    json_array_foreach(items, i, it)
    {
        if (!json_is_object(it) || json_is_string(json_object_get(it, "id")))
            continue;
        snprintf(item_id, sizeof(item_id), "item_%s_%zu", id, i);
        json_object_set_new(it, "id", json_string(item_id));
    }
    for (i = 0; after && i < n; i++) {
        const char *xid = json_string_value(
            json_object_get(json_array_get(items, desc ? n - 1 - i : i), "id"));
        if (xid && !strcmp(xid, after)) {
            start = i + 1;
            break;
        }
    }
    for (i = start; i < n && json_array_size(data) < (size_t)limit; i++)
        json_array_append(data, json_array_get(items, desc ? n - 1 - i : i));
    n = json_array_size(data);
    http_reply_json(r, 200,
                    json_pack("{s:s, s:o, s:O?, s:O?, s:b}", "object", "list", "data", data,
                              "first_id", json_object_get(json_array_get(data, 0), "id"),
                              "last_id", json_object_get(json_array_get(data, n ? n - 1 : 0), "id"),
                              "has_more", i < json_array_size(items)));
    data = NULL;
    goto out;
fail:
    http_reply_error(r, &err);
out:
    json_decref(data);
    json_decref(items);
    json_decref(own);
    free(order);
    free(lim);
    free(after);
}

void http_route_response_get(struct http_req *r)
{
    responses_get(r, r->param);
}

void http_route_response_delete(struct http_req *r)
{
    responses_delete(r, r->param);
}

void http_route_response_cancel(struct http_req *r)
{
    responses_cancel(r, r->param);
}

void http_route_response_input_items(struct http_req *r)
{
    responses_input_items(r, r->param);
}

/* ---- the dialect ------------------------------------------------------------------- */

static void resp_d_free(void *p)
{
    struct resp_state *s = p;

    if (s->detached)
        http_server_undetach(s->f->srv, &s->bg);
    if (s->rs_ready)
        resp_stream_release(&s->rs);
    resp_req_release(&s->rq);
    free(s);
}

/* The request, then the stored chain it continues, make the conversation. */
static int resp_d_parse(struct flow *f, const char *body, size_t len, struct gw_err *err)
{
    struct resp_state *s = xcalloc(1, sizeof(*s));
    json_t *prior = NULL;
    int rc;

    s->f = f;
    f->st = s;
    rc = resp_parse(body, len, &s->rq, err);
    if (!rc && s->rq.previous_response_id) {
        prior = resp_history(f->srv, f->svc->store, s->rq.previous_response_id, err);
        if (!prior)
            rc = err->code ? err->code : GW_EIO;
    }
    if (!rc)
        rc = resp_conv(&s->rq, prior, &f->conv, err);
    json_decref(prior);
    if (rc)
        return rc;
    f->stream = s->rq.stream;
    resp_stream_init(&s->rs, &s->rq, f->id, f->created);
    s->rs_ready = 1;
    return GW_OK;
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

/* Stores the outcome obj (stolen); on failure a "failed" row and the error in serr. */
static int resp_store_outcome(struct flow *f, json_t *obj, struct gw_err *serr)
{
    int rc = resp_save(f, obj, serr);

    if (rc != GW_OK)
        resp_save_failed(f, serr);
    json_decref(obj);
    return rc;
}

/* The stream's last events, after the outcome was stored: a response the
 * gateway could not keep ends as response.failed, never completed. */
static int resp_d_end(struct flow *f, struct buf *out, const struct turn_result *res)
{
    struct resp_state *s = state_of(f);
    struct gw_err serr;
    int saved;

    if (resp_stream_finish(&s->rs, out, res, 0))
        buf_reset(out);
    saved = resp_store_outcome(f, resp_object(&s->rs, resp_status(res), res), &serr);
    if (saved != GW_OK && res->ok)
        stream_fail_last(f, res, &serr);
    return GW_OK;
}

/* Not streamed (background responses too): the items from the result, stored;
 * never a 200 for a response that was not kept. */
static json_t *resp_d_answer(struct flow *f, const struct turn_result *res, struct gw_err *err)
{
    struct resp_state *s = state_of(f);
    struct gw_err serr;
    json_t *obj;
    int saved;

    if (resp_stream_finish(&s->rs, NULL, res, 1))
        log_msg(LOG_WARN, "http", "req=%s response %s: its output could not be built",
                flow_req_id(f), f->id);
    obj = resp_object(&s->rs, resp_status(res), res);
    saved = resp_store_outcome(f, json_incref(obj), &serr);
    if (!f->r) { /* background: the client reads the outcome with GET */
        log_msg(LOG_DEBUG, "http", "background response %s %s", f->id, resp_status(res));
        return obj;
    }
    if (!res->ok || saved != GW_OK) {
        *err = !res->ok ? res->err : serr;
        json_decref(obj);
        return NULL;
    }
    return obj;
}

/* The shutdown came before a background response finished. */
static void bg_shutdown(struct http_detached *d)
{
    struct flow *f = bg_flow(d);

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
    .free_state = resp_d_free,
    .stream_start = resp_d_start,
    .text = resp_d_text,
    .reasoning = resp_d_reasoning,
    .tool_call = resp_d_tool,
    .stream_end = resp_d_end,
    .answer = resp_d_answer,
    .before_turn = resp_store_first,
    .abandon = resp_unstore,
    .started = resp_d_started,
};
