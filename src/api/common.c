/* Request checks, quoting, and UTF-8 safe JSON and SSE output shared by the API translators. */
#include "api/common.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
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

int api_sse(struct buf *out, const char *event, json_t *data)
{
    int rc = GW_OK;

    if (data && event)
        rc = buf_addf(out, "event: %s\ndata: ", event);
    else if (data)
        rc = buf_adds(out, "data: ");
    if (!rc)
        rc = api_json_append(out, data);
    if (!rc)
        rc = buf_adds(out, "\n\n");
    json_decref(data);
    return rc;
}

int api_buf_join(struct buf *b, const char *s, size_t n)
{
    int rc = GW_OK;

    if (n == 0)
        return GW_OK;
    if (b->len)
        rc = buf_add(b, "\n\n", 2);
    if (!rc)
        rc = buf_add(b, s, n);
    return rc;
}

/* ---- OpenAI request checks ------------------------------------------------ */

/* OpenAI's names for the kinds of enum api_kind, in its order. */
static const char *const kind_names[] = {"a string",  "an integer", "a decimal", "a boolean",
                                         "an object", "an array",   "a value"};

int api_bad(struct gw_err *err, const char *param, const char *code, const char *fmt, ...)
{
    char msg[sizeof(err->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gw_err_param(err, GW_EINVAL, param, "%s", msg);
    if (err && code)
        snprintf(err->api_code, sizeof(err->api_code), "%s", code);
    return GW_EINVAL;
}

int api_context_exceeded(struct gw_err *err, int anthropic, const char *param, int64_t limit,
                         int64_t tokens)
{
    if (anthropic)
        return gw_err_set(err, GW_EINVAL, "prompt is too long: %lld tokens > %lld maximum",
                          (long long)tokens, (long long)limit);
    return api_bad(err, param, "context_length_exceeded",
                   "This model's maximum context length is %lld tokens. However, your messages "
                   "resulted in about %lld tokens. Please reduce the length of the messages.",
                   (long long)limit, (long long)tokens);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a decimal";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

int api_bad_type(struct gw_err *err, const char *param, const char *expected, const json_t *got)
{
    return api_bad(err, param, "invalid_type",
                   "Invalid type for '%s': expected %s, but got %s instead.", param, expected,
                   type_name(got));
}

int api_bad_value(struct gw_err *err, const char *param, const char *value, const char *supported)
{
    return api_bad(err, param, "invalid_value", "Invalid value: '%.*s'. Supported values are: %s.",
                   api_clip(value), value, supported);
}

int api_empty_array(struct gw_err *err, const char *param)
{
    return api_bad(err, param, "empty_array",
                   "Invalid '%s': empty array. Expected an array with minimum length 1, but got an "
                   "empty array instead.",
                   param);
}

int api_bad_pattern(struct gw_err *err, const char *param)
{
    return api_bad(err, param, "invalid_value",
                   "Invalid '%s': string does not match pattern. Expected a string that matches "
                   "the pattern '^[a-zA-Z0-9_-]{1,64}$'.",
                   param);
}

void api_path_key(char *out, const char *base, const char *key)
{
    if (snprintf(out, API_PATH_LEN, "%s%s%s", base, *base ? "." : "", key) < 0)
        out[0] = '\0';
}

void api_path_idx(char *out, const char *base, size_t i)
{
    if (snprintf(out, API_PATH_LEN, "%s[%zu]", base, i) < 0)
        out[0] = '\0';
}

int api_get(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
            int required, json_t **out)
{
    char p[API_PATH_LEN];
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (!v || (json_is_null(v) && !required)) {
        if (!required)
            return GW_OK;
        api_path_key(p, base, key);
        return api_bad(err, p, "missing_required_parameter", "Missing required parameter: '%s'.",
                       p);
    }
    if (!api_kind_ok(v, k)) {
        api_path_key(p, base, key);
        return api_bad_type(err, p, kind_names[k], v);
    }
    *out = v;
    return GW_OK;
}

int api_get_req(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
                json_t **out)
{
    return api_get(err, obj, base, key, k, 1, out);
}

int api_get_opt(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
                json_t **out)
{
    return api_get(err, obj, base, key, k, 0, out);
}

json_t *api_openai_body(const char *body, size_t len, struct gw_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);

    if (root && json_is_object(root))
        return root;
    json_decref(root);
    gw_err_set(err, GW_EINVAL, "%s", API_OPENAI_NOT_JSON);
    return NULL;
}

int api_get_model(struct gw_err *err, json_t *root, char **out)
{
    json_t *v;
    int rc = api_get_req(err, root, "", "model", API_STRING, &v);

    if (rc)
        return rc;
    if (json_string_length(v) == 0)
        return api_bad(err, "model", "empty_string",
                       "Invalid 'model': empty string. Expected a string with minimum length 1, "
                       "but got an empty string instead.");
    *out = xstrdup(json_string_value(v));
    return GW_OK;
}

int api_function(struct gw_err *err, json_t *obj, const char *base, json_t *names,
                 const char **name, const char **description, json_t **parameters)
{
    char p[API_PATH_LEN];
    json_t *nv, *desc, *params, *strict;
    const char *n;
    int rc = api_get_req(err, obj, base, "name", API_STRING, &nv);

    if (!rc)
        rc = api_get_opt(err, obj, base, "description", API_STRING, &desc);
    if (!rc)
        rc = api_get_opt(err, obj, base, "parameters", API_OBJECT, &params);
    if (!rc)
        rc = api_get_opt(err, obj, base, "strict", API_BOOL, &strict);
    if (rc)
        return rc;
    n = json_string_value(nv);
    api_path_key(p, base, "name");
    if (!api_valid_name(n))
        return api_bad_pattern(err, p);
    if (json_object_get(names, n))
        return api_bad(err, p, "invalid_value", "Invalid '%s': duplicate tool name '%s'.", p, n);
    json_object_set_new(names, n, json_true());
    if (name)
        *name = n;
    if (description)
        *description = json_string_value(desc);
    if (parameters)
        *parameters = params;
    return GW_OK;
}

/* ---- images --------------------------------------------------------------- */

/* image/<subtype>, subtype made of RFC 6838 name characters we expect in practice. */
static int is_image_mime(const char *s, size_t n)
{
    if (n <= 6 || strncasecmp(s, "image/", 6) != 0)
        return 0;
    for (size_t i = 6; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '+' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* rest is a data: URL after "data:"; only "<image mime>[;...];base64,<data>" is accepted. */
static int add_data_url(struct gw_err *err, const char *rest, const char *path, struct conv_msg *m)
{
    const char *comma = strchr(rest, ',');
    const char *semi;
    size_t mlen;
    char *mime;

    if (!comma || comma - rest < 7 || strncasecmp(comma - 7, ";base64", 7) != 0)
        return api_bad(err, path, "invalid_value",
                       "Invalid '%s': only base64 data URLs ('data:<mime>;base64,<data>') are "
                       "supported.",
                       path);
    semi = memchr(rest, ';', (size_t)(comma - rest));
    mlen = (size_t)(semi - rest);
    if (!is_image_mime(rest, mlen))
        return api_bad(
            err, path, "invalid_value",
            "Invalid MIME type '%.*s' in '%s': only image types (image/*) are supported.",
            api_clipn(rest, mlen), rest, path);
    if (!api_is_base64(comma + 1))
        return api_bad(err, path, "invalid_value",
                       "Invalid '%s': the data URL does not contain valid base64 data.", path);
    if (!m)
        return GW_OK;
    mime = xstrndup(rest, mlen);
    for (char *p = mime; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    conv_msg_add_image(m, mime, comma + 1, NULL);
    free(mime);
    return GW_OK;
}

int api_add_image_url(struct gw_err *err, const char *url, const char *path, struct conv_msg *m)
{
    if (!strncasecmp(url, "data:", 5))
        return add_data_url(err, url + 5, path, m);
    if (api_is_http_url(url)) {
        if (m)
            conv_msg_add_image(m, NULL, NULL, url);
        return GW_OK;
    }
    return api_bad(err, path, "invalid_value",
                   "Invalid '%s': expected an http(s) URL or a base64 data URL such as "
                   "'data:image/png;base64,...'.",
                   path);
}

/* ---- structured output and reasoning -------------------------------------- */

int api_json_schema(struct gw_err *err, json_t *obj, const char *base, int schema_required,
                    json_t **out)
{
    char p[API_PATH_LEN];
    json_t *name, *schema, *strict, *desc, *f;
    int rc = api_get_req(err, obj, base, "name", API_STRING, &name);

    *out = NULL;
    if (!rc)
        rc = api_get(err, obj, base, "schema", API_OBJECT, schema_required, &schema);
    if (!rc)
        rc = api_get_opt(err, obj, base, "strict", API_BOOL, &strict);
    if (!rc)
        rc = api_get_opt(err, obj, base, "description", API_STRING, &desc);
    if (rc)
        return rc;
    api_path_key(p, base, "name");
    if (!api_valid_name(json_string_value(name)))
        return api_bad_pattern(err, p);
    /* The runtime's jsonSchema requires a schema; none given means "any JSON object". */
    f = json_pack("{s:O, s:o}", "name", name, "schema",
                  schema ? json_incref(schema) : json_pack("{s:s}", "type", "object"));
    if (strict)
        json_object_set(f, "strict", strict);
    if (desc)
        json_object_set(f, "description", desc);
    *out = f;
    return GW_OK;
}

/*
 * The runtime only takes json_schema (protocol reference §3.4), so
 * json_object becomes a schema that accepts any JSON object, which is all
 * json_object promises.
 */
json_t *api_json_object_format(void)
{
    return json_pack("{s:s, s:{s:s}}", "name", "json_object", "schema", "type", "object");
}

/* The runtime knows low/medium/high; other OpenAI efforts map to the nearest. */
int api_effort(const char *s, const char **out)
{
    static const struct {
        const char *in, *out;
    } map[] = {{"none", NULL},       {"minimal", "low"}, {"low", "low"},
               {"medium", "medium"}, {"high", "high"},   {"xhigh", "high"}};

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(s, map[i].in)) {
            *out = map[i].out;
            return 1;
        }
    *out = NULL;
    return 0;
}

/* ---- accepted and ignored parameters -------------------------------------- */

static int check_range(struct gw_err *err, const struct api_param *ap, json_t *v)
{
    const char *what = ap->kind == API_INT ? "integer" : "decimal";
    double d = json_number_value(v);
    char got[32];
    int below = (ap->bounds & API_LO) && d < ap->lo;

    if (!below && !((ap->bounds & API_HI) && d > ap->hi))
        return GW_OK;
    if (json_is_integer(v))
        snprintf(got, sizeof(got), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(got, sizeof(got), "%g", d);
    if (below)
        return api_bad(err, ap->name,
                       ap->kind == API_INT ? "integer_below_min_value" : "decimal_below_min_value",
                       "Invalid '%s': %s below minimum value. Expected a value >= %g, but got %s "
                       "instead.",
                       ap->name, what, ap->lo, got);
    return api_bad(err, ap->name,
                   ap->kind == API_INT ? "integer_above_max_value" : "decimal_above_max_value",
                   "Invalid '%s': %s above maximum value. Expected a value <= %g, but got %s "
                   "instead.",
                   ap->name, what, ap->hi, got);
}

/* An array of strings, at most max long (0: no limit). */
static int check_strings(struct gw_err *err, const char *name, json_t *arr, size_t max)
{
    char p[API_PATH_LEN];
    json_t *v;
    size_t i;

    if (max && json_array_size(arr) > max)
        return api_bad(err, name, "array_above_max_length",
                       "Invalid '%s': array too long. Expected an array with maximum length %zu, "
                       "but got an array with length %zu instead.",
                       name, max, json_array_size(arr));
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v))
            continue;
        api_path_idx(p, name, i);
        return api_bad_type(err, p, "a string", v);
    }
    return GW_OK;
}

int api_check_params(struct gw_err *err, json_t *root, const struct api_param *params, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct api_param *ap = &params[i];
        json_t *v;
        int rc = api_get_opt(err, root, "", ap->name, ap->kind, &v);

        if (rc)
            return rc;
        if (!v)
            continue;
        if (ap->check == API_CHECK_STOP && !json_is_string(v))
            rc = json_is_array(v)
                     ? check_strings(err, ap->name, v, 4)
                     : api_bad_type(err, ap->name, "one of a string or array of strings", v);
        else if (ap->check == API_CHECK_STRINGS)
            rc = check_strings(err, ap->name, v, 0);
        else if (ap->bounds)
            rc = check_range(err, ap, v);
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* ---- tool-call pairing ---------------------------------------------------- */

void api_calls_open(struct api_calls *c)
{
    if (c->pending)
        return;
    c->pending = json_object();
    c->answered = json_object();
}

int api_calls_add(struct api_calls *c, const char *id)
{
    if (json_object_get(c->pending, id))
        return -1;
    json_object_set_new(c->pending, id, json_true());
    return 0;
}

enum api_answer api_calls_answer(struct api_calls *c, const char *id)
{
    if (!c->pending)
        return API_ANSWER_NO_BLOCK;
    if (json_object_get(c->answered, id))
        return API_ANSWER_DUPLICATE;
    if (!json_object_get(c->pending, id))
        return API_ANSWER_UNKNOWN;
    json_object_del(c->pending, id);
    json_object_set_new(c->answered, id, json_true());
    return API_ANSWER_OK;
}

size_t api_calls_close(struct api_calls *c, const struct conv *conv, char *list, size_t cap)
{
    const struct conv_msg *a;
    size_t off = 0, n = json_object_size(c->pending);

    list[0] = '\0';
    if (n) {
        a = &conv->msgs[c->msg];
        for (size_t i = 0; i < a->ncalls; i++)
            if (json_object_get(c->pending, a->calls[i].id))
                api_list_add(list, cap, &off, a->calls[i].id);
    }
    api_calls_release(c);
    return n;
}

void api_calls_release(struct api_calls *c)
{
    json_decref(c->pending);
    json_decref(c->answered);
    c->pending = c->answered = NULL;
}

int api_walk_tools(struct gw_err *err, json_t *root, json_t **tools,
                   int (*each)(void *ctx, json_t *tool, const char *path, json_t *names),
                   void *ctx)
{
    char p[API_PATH_LEN];
    json_t *tool, *names;
    size_t i;
    int rc = api_get_opt(err, root, "", "tools", API_ARRAY, tools);

    if (rc || !*tools)
        return rc;
    names = json_object(); /* a set, so duplicate checks stay linear */
    json_array_foreach(*tools, i, tool)
    {
        api_path_idx(p, "tools", i);
        rc = each(ctx, tool, p, names);
        if (rc)
            break;
    }
    json_decref(names);
    return rc;
}

int api_tool_choice_mode(struct gw_err *err, const char *s, int *none)
{
    static const char *const modes[] = {"none", "auto", "required", NULL};

    *none = 0;
    if (!api_one_of(s, modes))
        return api_bad_value(err, "tool_choice", s, "'none', 'auto', and 'required'");
    if (!strcmp(s, "required"))
        return api_bad(err, "tool_choice", "unsupported_value",
                       "tool_choice 'required' is not supported: " API_NO_FORCING ".");
    *none = !strcmp(s, "none");
    return GW_OK;
}
