/*
 * http/router.h - a route table and its matcher.
 *
 * A route is one row {methods, pattern, api, flags, name, handle, ops}, as in
 * redis's command table: the server looks a request up in the table once and
 * derives from it the handler, the API dialect (error shape), whether a
 * client key is needed, the metrics label, 404 (no row for the path), 405
 * (rows for the path, none for the method) and the Allow header (the methods
 * of the path's rows, with OPTIONS).  The table itself is http/routes.c.
 *
 * A pattern is a path without the /v1 prefix made of literal segments and at
 * most one capture: "{id}" takes one non-empty segment (no '/'), "{*}" the
 * non-empty rest of the path ('/' included).  The capture is copied out; one
 * longer than the caller's buffer does not match.
 *
 * Ownership: tables are static data; matches point into them.
 * Threading: pure, any thread.
 */
#ifndef GW_HTTP_ROUTER_H
#define GW_HTTP_ROUTER_H

#include <stddef.h>

/* The error shape (and API family) of a request: decided by its route. */
enum http_api { HTTP_API_OPENAI = 0, HTTP_API_ANTHROPIC };

enum http_route_flags {
    ROUTE_NO_AUTH = (1 << 0),        /* served without a client key (probes) */
    ROUTE_API_BY_HEADER = (1 << 1),  /* Anthropic when the request has anthropic-version */
    ROUTE_ADMIN = (1 << 2),          /* the admin API: the admin key (http/server.h), no CORS */
};

struct http_req;
struct dialect_ops;

struct http_route {
    unsigned methods;          /* EVHTTP_REQ_* bits; a GET row lists HEAD too */
    const char *pattern;       /* "/responses/{id}/cancel" */
    enum http_api api;
    unsigned flags;            /* enum http_route_flags */
    const char *name;          /* metrics label (a constant) */
    void (*handle)(struct http_req *r);
    const struct dialect_ops *ops; /* the API dialect of a model request, or NULL */
};

/* 1 if path matches pattern; then the capture (or "") is in param[0..n). */
int route_path_match(const char *pattern, const char *path, char *param, size_t n);

/*
 * The row of t[0..n) for path and method (an EVHTTP_REQ_* bit; 0 matches
 * any method): the first whose pattern matches the path and whose methods
 * include method.  NULL if none; the capture is then unspecified.
 */
const struct http_route *route_find(const struct http_route *t, size_t n, const char *path,
                                    unsigned method, char *param, size_t plen);

/* The methods all rows for path serve together (0: an unknown path). */
unsigned route_methods(const struct http_route *t, size_t n, const char *path);

/* "GET, HEAD, POST, DELETE, OPTIONS" for a set of methods (OPTIONS always last). */
void route_allow(unsigned methods, char *out, size_t n);

#endif
