/*
 * util/err.h - status codes and an error record carried across modules.
 *
 * Functions return 0 (GW_OK) or a negative GW_E* code; details go into an
 * optional struct gw_err the caller owns.  gw_err_set() leaves nothing
 * allocated, so a struct gw_err can live on the stack.
 */
#ifndef GW_UTIL_ERR_H
#define GW_UTIL_ERR_H

#include <stdarg.h>

#define WARN_UNUSED __attribute__((warn_unused_result))
#define PRINTF(f, a) __attribute__((format(printf, f, a)))

enum gw_status {
    GW_OK = 0,
    GW_ENOMEM = -1,
    GW_EINVAL = -2,     /* bad input from a client: 400 */
    GW_EIO = -3,
    GW_ETIMEDOUT = -4,  /* a deadline passed: 504 */
    GW_ERUNTIME = -5,   /* the runtime is down, restarting or exited: 503 */
    GW_EUPSTREAM = -6,  /* the model provider failed: 502 (or the status in http_status) */
    GW_ENOTFOUND = -7,  /* unknown model, route or object: 404 */
    GW_EAUTH = -8,      /* not signed in / bad credentials: 401 */
    GW_ERATELIMIT = -9, /* provider rate limit: 429 */
    GW_ETOOBIG = -10,   /* a size limit was exceeded: 413 */
    GW_ECANCELED = -11, /* the caller went away */
    GW_EPROTO = -12,    /* the runtime broke the protocol */
};

/*
 * An error with the HTTP status it maps to and a message fit for a client
 * (never a path, token or stack trace).  `param` names the offending request
 * parameter when there is one; `code` is an API error code such as
 * "model_not_found" (may be empty).  retry_after is seconds, 0 if unknown.
 */
struct gw_err {
    enum gw_status code;
    int http_status;
    int retry_after;
    char param[64];
    char api_code[48];
    char msg[512];
};

/* Fills err (if non-NULL) with code, its default HTTP status and the
 * formatted message, and returns code: `return gw_err_set(err, ...)`. */
int gw_err_set(struct gw_err *err, enum gw_status code, const char *fmt, ...) PRINTF(3, 4);

/* Same, and names the request parameter at fault. */
int gw_err_param(struct gw_err *err, enum gw_status code, const char *param, const char *fmt, ...)
    PRINTF(4, 5);

/* The HTTP status a status code maps to by default. */
int gw_status_http(enum gw_status code);

#endif
