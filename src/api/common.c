/* Checks, quoting and UTF-8 safe JSON output shared by the API translators. */
#include "api/common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "util/xmalloc.h"

/* ---- client values -------------------------------------------------------- */

int api_clipn(const char *s, size_t n)
{
    if (n <= API_SHOW_MAX)
        return (int)n;
    n = API_SHOW_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

int api_clip(const char *s)
{
    return api_clipn(s, strnlen(s, API_SHOW_MAX + 1));
}

int api_kind_ok(const json_t *v, enum api_kind k)
{
    switch (k) {
    case API_STRING:
        return json_is_string(v);
    case API_INT:
        return json_is_integer(v);
    case API_NUMBER:
        return json_is_number(v);
    case API_BOOL:
        return json_is_boolean(v);
    case API_OBJECT:
        return json_is_object(v);
    case API_ARRAY:
        return json_is_array(v);
    case API_ANY:
    default:
        return 1;
    }
}

int api_one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}

int api_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 64)
        return 0;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int api_is_base64(const char *s)
{
    size_t n = 0, pad = 0;

    for (; *s; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/' || c == '-' || c == '_';
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad || !ok)
            return 0;
        n++;
    }
    return n > 0 && pad <= 2 && n % 4 != 1;
}

int api_is_http_url(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    int ok = 0;

    if (!u)
        return 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK)
        ok = !strcasecmp(scheme, "http") || !strcasecmp(scheme, "https");
    curl_free(scheme);
    curl_url_cleanup(u);
    return ok;
}

/* ---- JSON output ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at p (RFC 3629, as strict as jansson), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* A copy of s with every byte that is not valid UTF-8 replaced by U+FFFD. */
static char *utf8_scrub(const char *s, size_t n, size_t *outlen)
{
    const unsigned char *u = (const unsigned char *)s;
    char *out;
    size_t i = 0, o = 0;

    if (n > (SIZE_MAX - 1) / 3)
        abort(); /* cannot hold the input in memory in the first place */
    out = xmalloc(n * 3 + 1);
    while (i < n) {
        size_t k = utf8_len(u + i, n - i);
        if (k) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

json_t *api_jstr(const char *s, size_t n)
{
    json_t *j;
    char *clean;
    size_t len;

    if (!s)
        return json_string("");
    j = json_stringn(s, n);
    if (j)
        return j;
    clean = utf8_scrub(s, n, &len);
    j = json_stringn(clean, len);
    free(clean);
    return j ? j : json_string("");
}

json_t *api_jstr0(const char *s)
{
    return api_jstr(s, s ? strlen(s) : 0);
}

/*
 * jansson ignores the callback's result for some writes (object keys in
 * 2.14), so a failure is latched here: once an append failed, every later
 * one fails too and the caller sees it.
 */
struct dump_ctx {
    struct buf *out;
    int failed;
};

static int dump_cb(const char *buffer, size_t size, void *data)
{
    struct dump_ctx *d = data;

    if (!d->failed && buf_add(d->out, buffer, size) != GW_OK)
        d->failed = 1;
    return d->failed ? -1 : 0;
}

int api_json_append(struct buf *out, const json_t *j)
{
    struct dump_ctx d = {out, 0};

    if (!j) {
        buf_release(out);
        return GW_ENOMEM;
    }
    if (json_dump_callback(j, dump_cb, &d, JSON_COMPACT) != 0 || d.failed) {
        buf_release(out);
        return GW_ETOOBIG;
    }
    return GW_OK;
}

void api_list_add(char *list, size_t cap, size_t *off, const char *s)
{
    int w = snprintf(list + *off, cap - *off, "%s%.*s", *off ? ", " : "", api_clip(s), s);

    if (w < 0 || (size_t)w >= cap - *off) {
        list[*off] = '\0';
        return;
    }
    *off += (size_t)w;
}
