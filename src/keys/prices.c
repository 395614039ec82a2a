/* AI credits of a request from per-model prices (keys/prices.h). */
#include "keys/prices.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define PRICE_MAX 1e9 /* credits per million tokens: anything above is a typo */

void prices_free(struct prices *p)
{
    for (size_t i = 0; p && i < p->n; i++)
        free(p->v[i].glob);
    if (p) {
        free(p->v);
        p->v = NULL;
        p->n = 0;
    }
}

/* One price: a plain decimal number >= 0 (no sign, no exponent, no inf/nan). */
static int number(const char *s, size_t n, double *out)
{
    char buf[32], *end;

    if (n == 0 || n >= sizeof(buf) || strspn(s, "0123456789.") < n)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    *out = strtod(buf, &end);
    return *end || !isfinite(*out) || *out > PRICE_MAX ? -1 : 0;
}

static int entry(const char *s, size_t n, struct model_price *mp)
{
    const char *eq = memchr(s, '=', n), *p;
    double v[3];
    int k = 0;

    if (!eq || eq == s || (size_t)(eq - s) > 200)
        return -1;
    p = eq + 1;
    for (;;) {
        const char *end = s + n, *slash = memchr(p, '/', (size_t)(end - p));
        size_t len = (size_t)((slash ? slash : end) - p);
        if (number(p, len, &v[k++]))
            return -1;
        if (!slash)
            break;
        if (k == 3)
            return -1; /* a fourth number */
        p = slash + 1;
    }
    if (k < 2)
        return -1;
    mp->glob = xstrndup(s, (size_t)(eq - s));
    mp->input = v[0];
    mp->output = v[1];
    mp->cached = k == 3 ? v[2] : v[0];
    return 0;
}

int prices_parse(const char *s, struct prices *out, struct gw_err *err)
{
    memset(out, 0, sizeof(*out));
    while (s && *s) {
        size_t n = strcspn(s, ",");
        while (n && s[0] == ' ') {
            s++;
            n--;
        }
        if (n) {
            out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
            if (entry(s, n, &out->v[out->n])) {
                gw_err_set(err, GW_EINVAL,
                           "model-prices: '%.*s' is not MODEL=IN/OUT[/CACHED] (AI credits per "
                           "million tokens)",
                           (int)(n > 80 ? 80 : n), s);
                prices_free(out);
                return GW_EINVAL;
            }
            out->n++;
        }
        s += n + (s[n] == ',');
    }
    return GW_OK;
}

const struct model_price *prices_find(const struct prices *p, const char *model)
{
    if (!p || !model)
        return NULL;
    for (size_t i = 0; i < p->n; i++)
        if (fnmatch(p->v[i].glob, model, 0) == 0)
            return &p->v[i];
    return NULL;
}

double model_price_credits(const struct model_price *mp, int64_t input, int64_t output,
                           int64_t cached)
{
    if (!mp)
        return 0;
    if (cached > input)
        cached = input;
    if (cached < 0)
        cached = 0;
    return ((double)(input - cached) * mp->input + (double)cached * mp->cached +
            (double)output * mp->output) /
           1e6;
}

double prices_credits(const struct prices *p, const char *model, int64_t input, int64_t output,
                      int64_t cached)
{
    return model_price_credits(prices_find(p, model), input, output, cached);
}
