/*
 * http/handlers.h - the route handlers the table in http/routes.c names.
 *
 * Each takes a request whose route, method and key were checked, and
 * replies exactly once (now or later).  Path captures are in r->param.
 * Threading: event-loop thread only.
 */
#ifndef GW_HTTP_HANDLERS_H
#define GW_HTTP_HANDLERS_H

#include <stddef.h>

#include "http/server.h"

/* The route table itself (for tests): n rows. */
const struct http_route *http_routes(size_t *n);

/* http/admin.c: GET /, /healthz, /readyz, /metrics, /v1/models, /v1/models/{*} */
void http_route_root(struct http_req *r);
void http_route_health(struct http_req *r);
void http_route_ready(struct http_req *r);
void http_route_metrics(struct http_req *r);
void http_route_models(struct http_req *r);

/* http/admin_keys.c: GET /admin/audit (a ROUTE_ADMIN route) */
void http_route_admin_audit(struct http_req *r);
/* http/admin_keys.c: GET/POST /admin/keys, GET/PATCH/DELETE /admin/keys/{name} */
void http_route_admin_keys(struct http_req *r);
void http_route_admin_key(struct http_req *r);
/* http/admin_keys.c: GET /admin/usage */
void http_route_admin_usage(struct http_req *r);
/* http/admin_keys.c: GET /v1/me (a virtual key's own view) */
void http_route_me(struct http_req *r);
/* http/admin_keys.c: PUT/DELETE /v1/me/github-token, /admin/users/{user}/github-token */
void http_route_me_token(struct http_req *r);
void http_route_admin_user_token(struct http_req *r);

/* http/dialects.c: POST /v1/messages/count_tokens */
void http_route_count_tokens(struct http_req *r);

/* http/responses.c: GET, DELETE /v1/responses/{id}; POST .../cancel; GET .../input_items */
void http_route_response_get(struct http_req *r);
void http_route_response_delete(struct http_req *r);
void http_route_response_cancel(struct http_req *r);
void http_route_response_input_items(struct http_req *r);

#endif
