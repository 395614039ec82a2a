/* Mapping runtime failures to client-facing errors. */
#include "broker/errmap.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

const char errmap_signin_msg[] =
    "the Copilot runtime is not signed in to GitHub: run `copilot-gateway login`, or set "
    "COPILOT_GITHUB_TOKEN (or GH_TOKEN / GITHUB_TOKEN) before starting the gateway, or "
    "configure a BYOK provider with --provider-url";

static char *find_url(char *s)
{
    char *a = strcasestr(s, "http://"), *b = strcasestr(s, "https://");
    if (!a)
        return b;
    return b && b < a ? b : a;
}

void errmap_scrub_urls(char *s)
{
    static const char rep[] = "<provider>";
    char *p;

    while ((p = find_url(s)) != NULL) {
        char *e = p;
        size_t len;
        while (*e && *e != ' ' && *e != ')' && *e != ',' && *e != '\n' && *e != '"' &&
               *e != '\'')
            e++;
        len = (size_t)(e - p);
        /* The replacement is longer than a URL as short as "http://a": write
         * it only where it fits, otherwise drop the URL. */
        if (len < sizeof(rep) - 1) {
            memmove(p, e, strlen(e) + 1);
            continue;
        }
        memcpy(p, rep, sizeof(rep) - 1);
        memmove(p + sizeof(rep) - 1, e, strlen(e) + 1);
    }
}

int errmap_retry_after(const char *msg)
{
    const char *p = msg ? strstr(msg, "retried ") : NULL;
    const char *q = msg ? strstr(msg, "total retry wait time: ") : NULL;
    char *end;
    long n;
    double secs, each;

    if (!p || !q)
        return 0;
    n = strtol(p + 8, &end, 10);
    if (end == p + 8 || n <= 0)
        return 0;
    secs = strtod(q + 23, &end);
    if (end == q + 23 || !(secs >= 0))
        return 0;
    each = ceil(secs / (double)n);
    if (each < 1)
        return 1;
    return each > ERRMAP_RETRY_AFTER_MAX_S ? ERRMAP_RETRY_AFTER_MAX_S : (int)each;
}

static void set_code(struct gw_err *err, const char *code)
{
    snprintf(err->api_code, sizeof(err->api_code), "%s", code);
}

int errmap_no_space(const char *msg)
{
    return msg && (strstr(msg, "ENOSPC") || strcasestr(msg, "no space left") ||
                   strstr(msg, "os error 28"));
}

int errmap_is_token_failure(const char *msg)
{
    return msg && (strcasestr(msg, "authentication failed") ||
                   strcasestr(msg, "token validation failed") ||
                   strstr(msg, "Not authenticated") || strstr(msg, "No GitHub OAuth token") ||
                   strstr(msg, "Bad credentials"));
}

void errmap_user_token(struct gw_err *err, const char *msg)
{
    const char *why = "GitHub refused it (revoked, expired, or without Copilot access)";

    if (msg && (strcasestr(msg, "network") || strcasestr(msg, "fetch failed") ||
                strcasestr(msg, "error sending request") || strcasestr(msg, "timed out") ||
                strcasestr(msg, "ENOTFOUND") || strcasestr(msg, "ECONNREFUSED")))
        why = "GitHub (api.github.com) could not be reached to validate it";
    gw_err_set(err, GW_EAUTH,
               "your own GitHub token was not accepted: %s.  Set a valid one with PUT "
               "/v1/me/github-token (a fine-grained token with Copilot access, or an OAuth "
               "token); this gateway never serves you with its own GitHub sign-in instead",
               why);
    err->http_status = 401;
    set_code(err, "github_token_rejected");
}

void errmap_storage(struct gw_err *err, const char *fmt, ...)
{
    va_list ap;

    gw_err_set(err, GW_EIO, "%s", "");
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->http_status = STORE_HTTP_NO_STORAGE;
    set_code(err, "insufficient_storage");
}

void errmap_session_error(const json_t *data, int byok, struct gw_err *err)
{
    const char *type = json_string_value(json_object_get(data, "errorType"));
    const char *msg = json_string_value(json_object_get(data, "message"));
    json_int_t status = json_integer_value(json_object_get(data, "statusCode"));

    if (!type)
        type = "query";
    if (!msg)
        msg = "the model request failed";
    if (strcmp(type, "persistence") == 0) {
        /* The runtime's text names the session file under --home: never passed on. */
        errmap_storage(err, "the Copilot runtime cannot save the conversation: %s",
                       errmap_no_space(msg) ? "its disk (--home) is full"
                                            : "writing to its disk (--home) failed");
        return;
    }
    if (strstr(msg, "No GitHub OAuth token") || strstr(msg, "Not authenticated")) {
        gw_err_set(err, GW_EAUTH, "%s", errmap_signin_msg);
        return;
    }
    /* A 402 (Payment Required) is a spent quota too: the runtime passes it on at once as a
     * "query" error with statusCode 402 (runtime 1.0.85). */
    int quota = strcmp(type, "quota") == 0 || status == 402;
    if (strcmp(type, "rate_limit") == 0 || quota || status == 429) {
        gw_err_set(err, GW_ERATELIMIT,
                   quota ? "the model provider's quota is spent: %s"
                         : "the model provider is rate limiting requests: %s",
                   msg);
        set_code(err, quota ? "insufficient_quota" : "rate_limit_exceeded");
        /* A spent quota does not come back in seconds: no Retry-After for it. */
        if (!quota) {
            err->retry_after = errmap_retry_after(msg);
            if (!err->retry_after)
                err->retry_after = ERRMAP_RETRY_AFTER_DEFAULT_S;
        }
    } else if (strcmp(type, "authentication") == 0 || strcmp(type, "authorization") == 0) {
        if (!byok) {
            gw_err_set(err, GW_EAUTH, "%s", errmap_signin_msg);
            return;
        }
        gw_err_set(err, GW_EUPSTREAM,
                   "the model provider rejected the gateway's credentials (HTTP %lld); check "
                   "--provider-key",
                   (long long)status);
        return;
    } else if (strcmp(type, "context_limit") == 0) {
        gw_err_param(err, GW_EINVAL, "messages", "%s", msg);
        set_code(err, "context_length_exceeded");
    } else if (status == 400 || status == 422) {
        gw_err_set(err, GW_EINVAL, "%s", msg);
    } else if (status == 404) {
        gw_err_param(err, GW_ENOTFOUND, "model", "%s", msg);
        set_code(err, "model_not_found");
    } else {
        gw_err_set(err, GW_EUPSTREAM, "%s", msg);
    }
    errmap_scrub_urls(err->msg);
}
