/*
 * GET /admin/audit: the audit log of server-side agents, newest first (or
 * followed past a seq), filtered by the query string (http/audit_query.h).
 */
#include <stdlib.h>
#include <string.h>

#include "http/audit_query.h"
#include "http/handlers.h"
#include "store/store.h"
#include "util/xmalloc.h"

/* One list operation in flight for a request; the client leaving or shutdown cancels it. */
struct audit_req {
    struct http_req *r;
    struct store *st;
    uint64_t op;
    struct audit_query q;
};

static void audit_req_free(struct audit_req *a)
{
    audit_query_release(&a->q);
    free(a);
}

static void unhook(struct http_req *r)
{
    r->on_gone = NULL;
    r->on_shutdown = NULL;
    r->hdata = NULL;
}

static void audit_gone(struct http_req *r)
{
    struct audit_req *a = r->hdata;

    store_cancel(a->st, a->op);
    audit_req_free(a);
}

static void audit_shutdown(struct http_req *r)
{
    struct gw_err err;

    audit_gone(r);
    unhook(r);
    gw_err_set(&err, GW_ERUNTIME, "the gateway is shutting down; retry the request");
    http_reply_error(r, &err);
}

/* 503: the audit log cannot be read now (the store's message names no path or SQL). */
static void reply_unavailable(struct http_req *r, const char *why)
{
    struct gw_err err;

    gw_err_set(&err, GW_ERUNTIME, "the audit log is unavailable: %s", why);
    err.http_status = 503;
    http_reply_error(r, &err);
}

static void on_list(void *ud, const struct store_result *res)
{
    struct audit_req *a = ud;
    struct http_req *r = a->r;
    json_t *data;

    unhook(r);
    if (res->rc < 0) {
        reply_unavailable(r, res->err->msg);
        audit_req_free(a);
        return;
    }
    data = json_array();
    for (size_t i = 0; i < res->n_audit; i++)
        json_array_append_new(data, audit_row_json(&res->audit[i]));
    http_reply_json(r, 200, json_pack("{s:s, s:o, s:b}", "object", "list", "data", data,
                                      "has_more", res->more));
    audit_req_free(a);
}

void http_route_admin_audit(struct http_req *r)
{
    struct audit_req *a = xcalloc(1, sizeof(*a));
    struct store_audit_filter f;
    struct gw_err err;

    if (audit_query_parse(r->query, &a->q, &err)) {
        free(a);
        http_reply_error(r, &err);
        return;
    }
    a->r = r;
    a->st = r->svc->store;
    if (!a->st) {
        audit_req_free(a);
        reply_unavailable(r, "the gateway has no store");
        return;
    }
    f = audit_query_filter(&a->q);
    if (store_audit_list(a->st, &f, on_list, a, &a->op, &err) < 0) {
        audit_req_free(a);
        reply_unavailable(r, err.msg);
        return;
    }
    r->hdata = a;
    r->on_gone = audit_gone;
    r->on_shutdown = audit_shutdown;
}
