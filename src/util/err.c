/* Status codes and the error record shared by every module. */
#include "util/err.h"

#include <stdio.h>
#include <string.h>

int gw_status_http(enum gw_status code)
{
    switch (code) {
    case GW_OK:
        return 200;
    case GW_EINVAL:
        return 400;
    case GW_EAUTH:
        return 401;
    case GW_ENOTFOUND:
        return 404;
    case GW_ETOOBIG:
        return 413;
    case GW_ERATELIMIT:
        return 429;
    case GW_EUPSTREAM:
    case GW_EPROTO:
        return 502;
    case GW_ERUNTIME:
        return 503;
    case GW_ETIMEDOUT:
        return 504;
    case GW_ECANCELED:
        return 499;
    case GW_ENOMEM:
    case GW_EIO:
    default:
        return 500;
    }
}

static int vset(struct gw_err *err, enum gw_status code, const char *param, const char *fmt,
                va_list ap)
{
    if (!err)
        return code;
    memset(err, 0, sizeof(*err));
    err->code = code;
    err->http_status = gw_status_http(code);
    if (param)
        snprintf(err->param, sizeof(err->param), "%s", param);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    return code;
}

int gw_err_set(struct gw_err *err, enum gw_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int gw_err_param(struct gw_err *err, enum gw_status code, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, param, fmt, ap);
    va_end(ap);
    return code;
}
