/*
 * The route table, and everything derived from it: which handler serves a
 * request, its API dialect, whether it needs a client key (or the admin
 * key), 404, 405 and the Allow header, OPTIONS and CORS preflights.
 */
#include <stdio.h>
#include <string.h>

#include "http/flow.h"
#include "http/handlers.h"
#include "http/server.h"

#define GET_HEAD (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)

/*
 * Every route the gateway serves, without the /v1 prefix (with it or
 * without, a path is the same route).  Rows of one path share api, flags
 * and name; the first row whose pattern and method match serves.
 */
static const struct http_route routes[] = {
    {GET_HEAD, "/", HTTP_API_OPENAI, ROUTE_NO_AUTH, "root", http_route_root, NULL},
    {GET_HEAD, "/healthz", HTTP_API_OPENAI, ROUTE_NO_AUTH, "healthz", http_route_health, NULL},
    /* Its details need a key when keys are set; the status does not. */
    {GET_HEAD, "/readyz", HTTP_API_OPENAI, ROUTE_NO_AUTH, "readyz", http_route_ready, NULL},
    {GET_HEAD, "/metrics", HTTP_API_OPENAI, 0, "metrics", http_route_metrics, NULL},
    {EVHTTP_REQ_POST, "/chat/completions", HTTP_API_OPENAI, 0, "chat_completions",
     http_flow_start, &dialect_chat},
    {EVHTTP_REQ_POST, "/messages", HTTP_API_ANTHROPIC, 0, "messages", http_flow_start,
     &dialect_messages},
    {EVHTTP_REQ_POST, "/messages/count_tokens", HTTP_API_ANTHROPIC, 0, "messages_count_tokens",
     http_route_count_tokens, NULL},
    {EVHTTP_REQ_POST, "/responses", HTTP_API_OPENAI, 0, "responses", http_flow_start,
     &dialect_responses},
    {GET_HEAD, "/responses/{id}", HTTP_API_OPENAI, 0, "responses", http_route_response_get, NULL},
    {EVHTTP_REQ_DELETE, "/responses/{id}", HTTP_API_OPENAI, 0, "responses",
     http_route_response_delete, NULL},
    {EVHTTP_REQ_POST, "/responses/{id}/cancel", HTTP_API_OPENAI, 0, "responses",
     http_route_response_cancel, NULL},
    {GET_HEAD, "/responses/{id}/input_items", HTTP_API_OPENAI, 0, "responses",
     http_route_response_input_items, NULL},
    /* The admin API: the admin key when one is set; never for other origins. */
    {GET_HEAD, "/admin/audit", HTTP_API_OPENAI, ROUTE_ADMIN, "admin_audit", http_route_admin_audit,
     NULL},
    {GET_HEAD | EVHTTP_REQ_POST, "/admin/keys", HTTP_API_OPENAI, ROUTE_ADMIN, "admin_keys",
     http_route_admin_keys, NULL},
    {GET_HEAD | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE, "/admin/keys/{id}", HTTP_API_OPENAI,
     ROUTE_ADMIN, "admin_keys", http_route_admin_key, NULL},
    {GET_HEAD, "/me", HTTP_API_OPENAI, 0, "me", http_route_me, NULL},
    {EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE, "/me/github-token", HTTP_API_OPENAI, 0, "me",
     http_route_me_token, NULL},
    {EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE, "/admin/users/{id}/github-token", HTTP_API_OPENAI,
     ROUTE_ADMIN, "admin_keys", http_route_admin_user_token, NULL},
    {GET_HEAD, "/admin/usage", HTTP_API_OPENAI, ROUTE_ADMIN, "admin_usage", http_route_admin_usage,
     NULL},
    /* Anthropic's list format for a client that sends anthropic-version. */
    {GET_HEAD, "/models", HTTP_API_OPENAI, ROUTE_API_BY_HEADER, "models", http_route_models, NULL},
    {GET_HEAD, "/models/{*}", HTTP_API_OPENAI, ROUTE_API_BY_HEADER, "models", http_route_models,
     NULL},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const struct http_route *http_routes(size_t *n)
{
    *n = NROUTES;
    return routes;
}

void http__route_resolve(struct http_req *r)
{
    if (r->resolved)
        return;
    r->resolved = 1;
    r->rt = route_find(routes, NROUTES, r->path, 0, r->param, sizeof(r->param));
    r->api = r->rt ? r->rt->api : HTTP_API_OPENAI;
    if (r->rt && (r->rt->flags & ROUTE_API_BY_HEADER) && http_req_header(r, "anthropic-version"))
        r->api = HTTP_API_ANTHROPIC;
}

static void reply_unknown(struct http_req *r)
{
    char msg[320];

    snprintf(msg, sizeof(msg), "unknown route: %s %s", r->method, r->path);
    http_reply_status(r, GW_ENOTFOUND, 404, msg);
}

/* 405 with the methods the path serves, in Allow and in the message. */
static void reply_wrong_method(struct http_req *r, unsigned methods)
{
    char allow[96], msg[400];

    route_allow(methods, allow, sizeof(allow));
    http_req_add_header(r, "Allow", allow);
    snprintf(msg, sizeof(msg), "method %s is not allowed for %s; allowed: %s", r->method, r->path,
             allow);
    http_reply_status(r, GW_EINVAL, 405, msg);
}

/* OPTIONS: the path's methods; a CORS preflight also gets the Access-Control answers
 * (the origin was checked by the browser guards). */
static void reply_options(struct http_req *r, unsigned methods)
{
    const char *want = http_req_header(r, "Access-Control-Request-Headers");
    char allow[96];

    route_allow(methods, allow, sizeof(allow));
    if (!http_req_header(r, "Origin")) {
        http_req_add_header(r, "Allow", allow);
        http_reply_empty(r, 204);
        return;
    }
    http_req_add_header(r, "Access-Control-Allow-Methods", allow);
    http_req_add_header(r, "Access-Control-Allow-Headers",
                        want ? want
                             : "authorization, content-type, x-api-key, x-request-id, "
                               "anthropic-version, anthropic-beta, openai-organization");
    http_req_add_header(r, "Access-Control-Max-Age", "86400");
    http_reply_empty(r, 204);
}

void http__route_dispatch(struct http_req *r)
{
    unsigned methods;
    const struct http_route *row;
    int authed = http__req_authenticate(r);

    http__route_resolve(r);
    methods = r->rt ? route_methods(routes, NROUTES, r->path) : 0;
    if (r->cmd == EVHTTP_REQ_OPTIONS) {
        if (methods)
            reply_options(r, methods);
        else
            reply_unknown(r);
        return;
    }
    if (r->rt && (r->rt->flags & ROUTE_ADMIN)) {
        if (!http__req_admin(r, authed))
            return; /* it replied */
    } else if (!authed && (!r->rt || !(r->rt->flags & ROUTE_NO_AUTH))) {
        /* Only probes are answered without a key; nor is any route revealed. */
        http_reply_status(r, r->auth_status == 503 ? GW_ERUNTIME : GW_EAUTH,
                          r->auth_status ? r->auth_status : 401,
                          r->auth_msg ? r->auth_msg
                                      : "missing or invalid API key: send it as "
                                        "'Authorization: Bearer <key>'");
        return;
    }
    if (!r->rt) {
        reply_unknown(r);
        return;
    }
    row = route_find(routes, NROUTES, r->path, (unsigned)r->cmd, r->param, sizeof(r->param));
    if (!row) {
        reply_wrong_method(r, methods);
        return;
    }
    r->rt = row;
    row->handle(r);
}
