/* Route matching: a path against a table of patterns, and what the table says about a path. */
#include "http/router.h"

#include <stdio.h>
#include <string.h>

#include <event2/http.h>

/* Copies s[0..len) into param if it fits.  1 if it did. */
static int capture(const char *s, size_t len, char *param, size_t n)
{
    if (len == 0 || len >= n)
        return 0;
    memcpy(param, s, len);
    param[len] = '\0';
    return 1;
}

int route_path_match(const char *pattern, const char *path, char *param, size_t n)
{
    const char *p = pattern, *s = path;

    if (n)
        param[0] = '\0';
    while (*p) {
        if (strncmp(p, "{*}", 3) == 0 && p[3] == '\0')
            return capture(s, strlen(s), param, n);
        if (*p == '{') {
            size_t len = strcspn(s, "/");
            p = strchr(p, '}');
            if (!p || !capture(s, len, param, n))
                return 0;
            p++;
            s += len;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *s == '\0';
}

const struct http_route *route_find(const struct http_route *t, size_t n, const char *path,
                                    unsigned method, char *param, size_t plen)
{
    for (size_t i = 0; i < n; i++)
        if ((!method || (t[i].methods & method)) && route_path_match(t[i].pattern, path, param, plen))
            return &t[i];
    return NULL;
}

unsigned route_methods(const struct http_route *t, size_t n, const char *path)
{
    char param[256];
    unsigned m = 0;

    for (size_t i = 0; i < n; i++)
        if (route_path_match(t[i].pattern, path, param, sizeof(param)))
            m |= t[i].methods;
    return m;
}

void route_allow(unsigned methods, char *out, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } order[] = {
        {EVHTTP_REQ_GET, "GET"},       {EVHTTP_REQ_HEAD, "HEAD"},
        {EVHTTP_REQ_POST, "POST"},     {EVHTTP_REQ_PUT, "PUT"},
        {EVHTTP_REQ_PATCH, "PATCH"},   {EVHTTP_REQ_DELETE, "DELETE"},
    };
    size_t off = 0;

    if (n)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int w;
        if (!(methods & order[i].bit))
            continue;
        w = snprintf(out + off, n - off, "%s, ", order[i].name);
        if (w < 0 || (size_t)w >= n - off)
            return;
        off += (size_t)w;
    }
    snprintf(out + off, n - off, "OPTIONS");
}
