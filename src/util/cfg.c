/* Configuration from declarative tables: flags, environment, a checked YAML file, defaults. */
#include "util/cfg.h"

#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* Rows of the flat table: every one readable from a flag, a variable and the file. */
/* clang-format off */
#define STR(n, m, d, h) {n, CFG_STR, S(m), CFG_LOOSE, d, 0, 0, NULL, NULL, h}
#define INT(n, m, d, lo, hi, h) {n, CFG_INT, S(m), CFG_LOOSE, d, lo, hi, NULL, NULL, h}
#define CSV(n, m, h) {n, CFG_CSV, S(m), CFG_LOOSE, NULL, 0, 0, NULL, NULL, h}
/* clang-format on */

static const char *const provider_types[] = {"openai", "azure", "anthropic", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "warning", "error", NULL};

#define S(f) offsetof(struct gw_config, f)
static const struct cfg_field table[] = {
    STR("listen", listen, "127.0.0.1:3000", "HOST:PORT to serve on (port 0 picks a free port)"),
    STR("config", config, NULL, "YAML file with any of these settings"),
    STR("copilot", copilot, NULL,
        "Copilot runtime binary (also COPILOT_CLI_PATH); default: the npm install, then PATH"),
    STR("data", data, "./data", "directory for the gateway's own state"),
    STR("home", home, NULL,
        "COPILOT_HOME of the runtime (sign-in, sessions); default: DATA/copilot-home"),
    STR("provider-url", provider_url, NULL,
        "BYOK: OpenAI-compatible base URL every session uses instead of Copilot"),
    STR("provider-key", provider_key, NULL, "BYOK: API key for --provider-url"),
    {"provider-type", CFG_ENUM, S(provider_type), CFG_LOOSE, "openai", 0, 0, provider_types, NULL,
     "BYOK: openai | azure | anthropic"},
    {"log-level", CFG_ENUM, S(log_level), CFG_LOOSE | CFG_NOCASE, "info", 0, 0, log_levels, NULL,
     "debug | info | warn | error"},
    CSV("api-key", api_key,
        "client API key(s), comma-separated; required when listening beyond loopback"),
    STR("admin-key", admin_key, NULL,
        "key of the admin API (/admin/*, e.g. the audit log); without it the admin API is "
        "served on loopback only"),
    STR("token-key-file", token_key_file, NULL,
        "file of >= 32 secret bytes, readable by the owner only, that seals users' own GitHub "
        "tokens in the data directory (e.g. `openssl rand -base64 48`); without it users cannot "
        "store tokens"),
    INT("max-body-bytes", max_body_bytes, "33554432", 1024, 1073741824,
        "largest request body accepted"),
    INT("max-header-bytes", max_header_bytes, "65536", 1024, 1048576,
        "largest request header block accepted"),
    INT("read-timeout-s", read_timeout_s, "60", 1, 3600,
        "time a client has to send a request body; also how long an idle connection is kept"),
    INT("header-timeout-s", header_timeout_s, "10", 1, 3600,
        "time a client has to send a request's whole header block"),
    INT("write-timeout-s", write_timeout_s, "60", 1, 3600,
        "a client that accepts no output for this long is disconnected"),
    INT("max-write-buffer-bytes", max_write_buffer_bytes, "4194304", 65536, 1073741824,
        "output queued for one slow client before its stream is aborted"),
    INT("max-connections", max_connections, "0", 0, 1000000,
        "open client connections at most (0: from the descriptor limit)"),
    CSV("cors-origins", cors_origins,
        "browser origins allowed to call the API, comma-separated exact origins (default: none)"),
    CSV("allowed-hosts", allowed_hosts,
        "Host header names accepted besides loopback ones, comma-separated (e.g. gw.corp:443)"),
    INT("turn-timeout-ms", turn_timeout_ms, "600000", 100, 86400000,
        "deadline for one model turn; the turn is aborted after it (504)"),
    INT("call-timeout-ms", call_timeout_ms, "30000", 100, 600000,
        "deadline for one JSON-RPC call to the runtime"),
    INT("shutdown-timeout-s", shutdown_timeout_s, "30", 0, 3600,
        "how long in-flight requests may finish after SIGTERM"),
    INT("models-ttl-s", models_ttl_s, "300", 0, 86400, "model list cache lifetime"),
    INT("tool-timeout-s", tool_timeout_s, "600", 1, 86400,
        "how long a session waits for the client's tool results before it is closed"),
    INT("session-idle-s", session_idle_s, "1800", 1, 604800,
        "an idle runtime session is closed after this long"),
    INT("max-sessions", max_sessions, "1000", 1, 1000000,
        "live runtime sessions kept; the least recently used idle one goes first"),
    {"model-alias", CFG_PAIRS, S(model_alias), CFG_LOOSE, NULL, 0, 0, NULL, NULL,
     "model names to rewrite, FROM=TO[,FROM=TO...] (e.g. claude-opus-4-1=claude-opus-4.1)"},
    {"model-prices", CFG_PAIRS, S(model_prices), CFG_LOOSE, NULL, 0, 0, NULL, NULL,
     "AI credits per million tokens, MODEL=IN/OUT[/CACHED][,...] (MODEL a glob), for usage "
     "and budgets"},
    STR("anthropic-default-model", anthropic_default_model, NULL,
        "model for Anthropic requests naming a claude-* id the catalogue does not have"),
    INT("runtime-pool", runtime_pool, "0", 0, 64, "runtime processes to run (0: one per CPU core)"),
    INT("runtime-recycle-sessions", runtime_recycle_sessions, "20000", 0, 100000000,
        "restart a runtime process after it opened this many sessions (0: never)"),
    INT("runtime-recycle-mb", runtime_recycle_mb, "2048", 0, 1048576,
        "restart a runtime process past this resident size (0: never)"),
    INT("responses-ttl-s", responses_ttl_s, "2592000", 60, 315360000,
        "stored Responses API responses (store: true) are deleted after this long"),
    INT("responses-max", responses_max, "10000", 0, 100000000,
        "stored responses kept at most; the oldest go first (0: no cap)"),
    INT("audit-ttl-days", audit_ttl_days, "90", 0, 36500,
        "audit log rows are deleted after this many days (0: kept forever)"),
    INT("max-input-tokens", max_input_tokens, "1000000", 1000, 100000000,
        "largest conversation (estimated tokens) sent to the runtime; caps the model's own window"),
    INT("runtime-ping-interval-ms", runtime_ping_interval_ms, "5000", 0, 3600000,
        "how often each runtime process is pinged (0: never)"),
    INT("runtime-ping-timeout-ms", runtime_ping_timeout_ms, "10000", 100, 3600000,
        "a runtime process that leaves a ping unanswered this long is restarted"),
    INT("min-free-mb", min_free_mb, "64", 0, 1048576,
        "below this free space on the data or runtime-home disk, requests are refused (507)"),
    {"image-fetch-private", CFG_BOOL, S(image_fetch_private), CFG_LOOSE, "0", 0, 0, NULL, NULL,
     "allow image URLs that resolve to private or loopback addresses (tests, trusted networks)"},
    {"agents", CFG_NODE, S(agents), 0, NULL, 0, 0, NULL, NULL,
     "server-side agents served as models agent/<name> (decoded by agent/config.c)"},
};
#undef S
#define NOPTS (sizeof(table) / sizeof(table[0]))

#undef STR
#undef INT
#undef CSV

static const struct cfg_schema flat_schema = {table, NOPTS, sizeof(struct gw_config), 0,
                                              CFG_UNDERSCORE};

/* ---- decoding ----------------------------------------------------------------------------- */

struct dec {
    struct ypath path;
    const char *src; /* "command line", a variable or "default"; NULL: the node's FILE:LINE */
    struct gw_err *err;
};

static int dfail(struct dec *d, const struct ynode *n, const char *fmt, ...) PRINTF(3, 4);
static int dfail(struct dec *d, const struct ynode *n, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (d->src)
        return gw_err_set(d->err, GW_EINVAL, "%s: '%s': %s", d->src, d->path.s, msg);
    return ydoc_errf(d->err, n->file, n->line, d->path.s, "%s", msg);
}

static bool is_file_only(enum cfg_type t)
{
    return t == CFG_LIST || t == CFG_MAP || t == CFG_SECTION || t == CFG_ENTRIES || t == CFG_NODE;
}

static size_t member_size(const struct cfg_field *f)
{
    switch (f->type) {
    case CFG_INT:
        return sizeof(int64_t);
    case CFG_BOOL:
        return sizeof(bool);
    case CFG_LIST:
        return sizeof(struct cfg_strlist);
    case CFG_MAP:
        return sizeof(struct cfg_strmap);
    case CFG_SECTION:
        return f->sub->size;
    case CFG_ENTRIES:
        return sizeof(struct cfg_entries);
    case CFG_NODE:
        return sizeof(const struct ynode *);
    default:
        return sizeof(char *);
    }
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void release_field(const struct cfg_field *f, char *dst)
{
    switch (f->type) {
    case CFG_LIST: {
        struct cfg_strlist *l = (struct cfg_strlist *)dst;
        strv_free(l->v, l->n);
        break;
    }
    case CFG_MAP: {
        struct cfg_strmap *m = (struct cfg_strmap *)dst;
        strv_free(m->keys, m->n);
        strv_free(m->values, m->n);
        break;
    }
    case CFG_SECTION:
        cfg_decoded_release(f->sub, dst);
        break;
    case CFG_ENTRIES: {
        struct cfg_entries *e = (struct cfg_entries *)dst;
        for (size_t i = 0; i < e->n; i++) {
            char *entry = (char *)e->v + i * f->sub->size;
            free(*(char **)(entry + f->sub->name_off));
            cfg_decoded_release(f->sub, entry);
        }
        free(e->v);
        break;
    }
    case CFG_INT:
    case CFG_BOOL:
    case CFG_NODE:
        break;
    default:
        free(*(char **)dst);
        break;
    }
    memset(dst, 0, member_size(f));
}

void cfg_decoded_release(const struct cfg_schema *s, void *out)
{
    for (size_t i = 0; i < s->nfields; i++)
        release_field(&s->fields[i], (char *)out + s->fields[i].off);
}

/* Scalar checks shared by the scalar types: what a type error says, and null handling. */
static int want_scalar(struct dec *d, const struct cfg_field *f, const struct ynode *n,
                       const char *what)
{
    if (n->kind != YNODE_SCALAR || (ynode_is_null(n) && !(f->flags & CFG_LOOSE)))
        return dfail(d, n, "expected %s, got %s", what, ynode_kind_name(n));
    if (n->quoted && !(f->flags & CFG_LOOSE) && (f->type == CFG_INT || f->type == CFG_BOOL))
        return dfail(d, n, "expected %s, got a quoted string", what);
    return GW_OK;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return GW_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return GW_OK;
        }
    }
    return GW_EINVAL;
}

static int decode_enum(struct dec *d, const struct cfg_field *f, const struct ynode *n, char **dst)
{
    char all[200] = "";
    size_t len = 0;

    for (const char *const *c = f->choices; *c; c++) {
        bool same = f->flags & CFG_NOCASE ? strcasecmp(*c, n->str) == 0 : strcmp(*c, n->str) == 0;
        if (same) {
            *dst = xstrdup(n->str);
            return GW_OK;
        }
        len +=
            (size_t)snprintf(all + len, sizeof(all) - len, "%s%s", c == f->choices ? "" : "|", *c);
        if (len >= sizeof(all))
            break;
    }
    return dfail(d, n, "expected one of %s, got '%.40s'", all, n->str);
}

static void strlist_add(struct cfg_strlist *l, const char *s, size_t n)
{
    l->v = xrealloc(l->v, (l->n + 2) * sizeof(*l->v));
    l->v[l->n++] = xstrndup(s, n);
    l->v[l->n] = NULL;
}

/* "a, b,,c" -> a b c: items trimmed of blanks, empty ones dropped. */
static void split_csv(struct cfg_strlist *l, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, ",");
        const char *p = s;
        size_t k = n;
        while (k && (*p == ' ' || *p == '\t')) {
            p++;
            k--;
        }
        while (k && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if (k)
            strlist_add(l, p, k);
        s += n + (s[n] == ',');
    }
}

/* A list of scalars (a sequence, or one comma-separated scalar); no_comma: items may not
 * hold ',' (they are joined with it later). */
static int decode_list(struct dec *d, const struct ynode *n, bool no_comma, struct cfg_strlist *l)
{
    if (n->kind == YNODE_SCALAR) {
        if (!ynode_is_null(n))
            split_csv(l, n->str);
        return GW_OK;
    }
    if (n->kind != YNODE_SEQ)
        return dfail(d, n, "expected a list of strings, got %s", ynode_kind_name(n));
    for (size_t i = 0; i < n->len; i++) {
        const struct ynode *it = n->items[i];
        size_t old = ypath_push_index(&d->path, i);
        int rc = GW_OK;
        if (it->kind != YNODE_SCALAR || ynode_is_null(it))
            rc = dfail(d, it, "expected a string, got %s", ynode_kind_name(it));
        else if (no_comma && strchr(it->str, ','))
            rc = dfail(d, it, "a list item cannot contain ','");
        ypath_pop(&d->path, old);
        if (rc)
            return rc;
        strlist_add(l, it->str, it->len);
    }
    return GW_OK;
}

/* A mapping of scalar to scalar; no_sep: keys may not hold ',' or '=', values ','. */
static int decode_strmap(struct dec *d, const struct ynode *n, bool no_sep, struct cfg_strmap *m)
{
    if (ynode_is_null(n))
        return GW_OK;
    if (n->kind != YNODE_MAP)
        return dfail(d, n, "expected a mapping of strings, got %s", ynode_kind_name(n));
    m->keys = xcalloc(n->len + 1, sizeof(char *));
    m->values = xcalloc(n->len + 1, sizeof(char *));
    for (size_t i = 0; i < n->len; i++) {
        const struct ypair *pr = &n->pairs[i];
        size_t old = ypath_push_key(&d->path, pr->key);
        int rc = GW_OK;
        if (pr->value->kind != YNODE_SCALAR || ynode_is_null(pr->value))
            rc = dfail(d, pr->value, "expected a string, got %s", ynode_kind_name(pr->value));
        else if (no_sep && (strpbrk(pr->key, ",=") || strchr(pr->value->str, ',')))
            rc = dfail(d, pr->value, "names here cannot contain ',' or '='");
        ypath_pop(&d->path, old);
        if (rc)
            return rc;
        m->keys[m->n] = xstrdup(pr->key);
        m->values[m->n++] = xstrdup(pr->value->str);
    }
    return GW_OK;
}

/* CFG_CSV and CFG_PAIRS: a scalar verbatim, else the list or mapping joined into one string. */
static int decode_joined(struct dec *d, const struct cfg_field *f, const struct ynode *n,
                         char **dst)
{
    struct cfg_strlist l = {0};
    struct cfg_strmap m = {0};
    struct buf b;
    int rc;

    if (n->kind == YNODE_SCALAR) {
        *dst = xstrdup(n->str);
        return GW_OK;
    }
    if (f->type == CFG_CSV)
        rc = decode_list(d, n, true, &l);
    else
        rc = decode_strmap(d, n, true, &m);
    buf_init(&b, YDOC_MAX_BYTES * 2);
    for (size_t i = 0; !rc && i < l.n; i++)
        rc = buf_addf(&b, "%s%s", i ? "," : "", l.v[i]);
    for (size_t i = 0; !rc && i < m.n; i++)
        rc = buf_addf(&b, "%s%s=%s", i ? "," : "", m.keys[i], m.values[i]);
    if (!rc)
        *dst = buf_take(&b, NULL);
    buf_release(&b);
    strv_free(l.v, l.n);
    strv_free(m.keys, m.n);
    strv_free(m.values, m.n);
    return rc;
}

static int decode_map(struct dec *d, const struct ynode *n, const struct cfg_schema *s, void *out,
                      unsigned char *present);

static int decode_entries(struct dec *d, const struct cfg_field *f, const struct ynode *n,
                          struct cfg_entries *e)
{
    const struct cfg_schema *sub = f->sub;

    if (ynode_is_null(n))
        return GW_OK;
    if (n->kind != YNODE_MAP)
        return dfail(d, n, "expected a mapping of named entries, got %s", ynode_kind_name(n));
    e->v = xcalloc(n->len ? n->len : 1, sub->size);
    for (size_t i = 0; i < n->len; i++) {
        char *entry = (char *)e->v + i * sub->size;
        size_t old = ypath_push_key(&d->path, n->pairs[i].key);
        int rc;
        e->n++; /* counted before decoding, so a failure releases what it holds */
        *(char **)(entry + sub->name_off) = xstrdup(n->pairs[i].key);
        rc = decode_map(d, n->pairs[i].value, sub, entry, NULL);
        ypath_pop(&d->path, old);
        if (rc)
            return rc;
    }
    return GW_OK;
}

static int decode_value(struct dec *d, const struct cfg_field *f, const struct ynode *n, char *dst)
{
    int rc;

    release_field(f, dst); /* a later source replaces an earlier one */
    switch (f->type) {
    case CFG_STR:
        rc = want_scalar(d, f, n, "a string");
        if (!rc)
            *(char **)dst = xstrdup(n->str);
        return rc;
    case CFG_INT: {
        char range[64];
        snprintf(range, sizeof(range), "an integer in %lld..%lld", (long long)f->min,
                 (long long)f->max);
        rc = want_scalar(d, f, n, range);
        if (!rc && util_parse_i64(n->str, f->min, f->max, (int64_t *)dst))
            rc = dfail(d, n, "expected %s, got '%.40s'", range, n->str);
        return rc;
    }
    case CFG_BOOL:
        rc = want_scalar(d, f, n, "a boolean (true or false)");
        if (!rc && parse_bool(n->str, (bool *)dst))
            rc = dfail(d, n, "expected a boolean (true or false), got '%.40s'", n->str);
        return rc;
    case CFG_ENUM:
        rc = want_scalar(d, f, n, "a string");
        return rc ? rc : decode_enum(d, f, n, (char **)dst);
    case CFG_LIST:
        return decode_list(d, n, false, (struct cfg_strlist *)dst);
    case CFG_MAP:
        return decode_strmap(d, n, false, (struct cfg_strmap *)dst);
    case CFG_SECTION:
        assert(f->sub && f->sub->size);
        return decode_map(d, n, f->sub, dst, NULL);
    case CFG_ENTRIES:
        assert(f->sub && f->sub->size >= f->sub->name_off + sizeof(char *));
        return decode_entries(d, f, n, (struct cfg_entries *)dst);
    case CFG_CSV:
    case CFG_PAIRS:
        return decode_joined(d, f, n, (char **)dst);
    case CFG_NODE:
        *(const struct ynode **)dst = n;
        return GW_OK;
    }
    return dfail(d, n, "unknown setting type");
}

/* A value given as text (flag, variable, default): a quoted scalar, read as CFG_LOOSE. */
static int decode_text(struct dec *d, const struct cfg_field *f, const char *text, const char *src,
                       char *dst)
{
    struct ynode n = {.kind = YNODE_SCALAR, .quoted = true, .str = (char *)text};
    struct cfg_field loose = *f;
    const char *saved = d->src;
    size_t old = ypath_push_key(&d->path, f->name);
    int rc;

    loose.flags |= CFG_LOOSE;
    n.len = strlen(text);
    d->src = src;
    rc = decode_value(d, &loose, &n, dst);
    d->src = saved;
    ypath_pop(&d->path, old);
    return rc;
}

static const struct cfg_field *find_field(const struct cfg_schema *s, const char *name, size_t n)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const char *t = s->fields[i].name;
        size_t j;
        if (strlen(t) != n)
            continue;
        for (j = 0; j < n; j++)
            if (t[j] != name[j] && !(t[j] == '-' && name[j] == '_' && (s->flags & CFG_UNDERSCORE)))
                break;
        if (j == n)
            return &s->fields[i];
    }
    return NULL;
}

static int decode_pair(struct dec *d, const struct ynode *map, const struct ypair *pr,
                       const struct cfg_schema *s, void *out, unsigned char *present)
{
    const struct cfg_field *f = find_field(s, pr->key, strlen(pr->key));
    struct ynode at = {.file = map->file, .line = pr->key_line};
    size_t old = ypath_push_key(&d->path, pr->key);
    int rc;

    if (!f)
        rc = dfail(d, &at, "unknown key");
    else if (present[f - s->fields])
        rc = dfail(d, &at, "set twice (as '%s' and another spelling)", f->name);
    else {
        present[f - s->fields] = 1;
        rc = decode_value(d, f, pr->value, (char *)out + f->off);
    }
    ypath_pop(&d->path, old);
    return rc;
}

static int apply_default(struct dec *d, const struct cfg_field *f, void *out)
{
    if (!f->def || is_file_only(f->type))
        return GW_OK;
    return decode_text(d, f, f->def, "default", (char *)out + f->off);
}

static int decode_map(struct dec *d, const struct ynode *n, const struct cfg_schema *s, void *out,
                      unsigned char *present)
{
    unsigned char *seen = present ? present : xcalloc(s->nfields ? s->nfields : 1, 1);
    int rc = GW_OK;

    if (n->kind != YNODE_MAP && !ynode_is_null(n))
        rc = dfail(d, n, "expected a mapping, got %s", ynode_kind_name(n));
    for (size_t i = 0; !rc && n->kind == YNODE_MAP && i < n->len; i++)
        rc = decode_pair(d, n, &n->pairs[i], s, out, seen);
    for (size_t i = 0; !rc && i < s->nfields; i++) {
        if (seen[i])
            continue;
        if (s->fields[i].flags & CFG_REQUIRED)
            rc = dfail(d, n, "missing required key '%s'", s->fields[i].name);
        else
            rc = apply_default(d, &s->fields[i], out);
    }
    if (seen != present)
        free(seen);
    return rc;
}

int cfg_decode(const struct ynode *node, const char *path, const struct cfg_schema *s, void *out,
               struct gw_err *err)
{
    struct dec d = {.err = err};
    struct ynode empty = {.kind = YNODE_MAP, .line = 1, .file = "(none)"};
    int rc;

    if (path && *path)
        ypath_push_key(&d.path, path);
    rc = decode_map(&d, node ? node : &empty, s, out, NULL);
    if (rc)
        cfg_decoded_release(s, out);
    return rc;
}

/* ---- the flat settings: defaults, flags, environment, file -------------------------------- */

static int load_flags(struct dec *d, struct gw_config *c, int argc, char **argv, int first,
                      unsigned char *seen)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *eq, *v;
        const struct cfg_field *o;
        size_t n;

        if (strncmp(a, "--", 2) != 0)
            return gw_err_set(d->err, GW_EINVAL, "unexpected argument '%s'", a);
        a += 2;
        eq = strchr(a, '=');
        n = eq ? (size_t)(eq - a) : strlen(a);
        o = find_field(&flat_schema, a, n);
        if (!o)
            return gw_err_set(d->err, GW_EINVAL, "unknown flag '--%.*s' (see --help)", (int)n, a);
        if (is_file_only(o->type))
            return gw_err_set(d->err, GW_EINVAL, "'%s' can only be set in the config file",
                              o->name);
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return gw_err_set(d->err, GW_EINVAL, "flag '--%s' needs a value", o->name);
        if (decode_text(d, o, v, "command line", (char *)c + o->off))
            return GW_EINVAL;
        seen[o - table] = 1;
    }
    return GW_OK;
}

static int load_env(struct dec *d, struct gw_config *c, unsigned char *seen)
{
    for (size_t i = 0; i < NOPTS; i++) {
        char var[80] = "COPILOT_GATEWAY_";
        size_t k = strlen(var);
        const char *v;
        if (seen[i] || is_file_only(table[i].type))
            continue;
        for (const char *p = table[i].name; *p && k < sizeof(var) - 1; p++)
            var[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        var[k] = '\0';
        v = getenv(var);
        if (!v)
            continue;
        if (decode_text(d, &table[i], v, var, (char *)c + table[i].off))
            return GW_EINVAL;
        seen[i] = 1;
    }
    return GW_OK;
}

/*
 * The whole file is decoded into a scratch config, so every value in it is checked; then the
 * settings no flag or variable set are moved over.
 */
static int apply_file(struct dec *d, struct gw_config *c, const unsigned char *seen)
{
    struct gw_config *fc = xcalloc(1, sizeof(*fc));
    unsigned char present[NOPTS] = {0};
    int rc = decode_map(d, c->file.root, &flat_schema, fc, present);

    for (size_t i = 0; !rc && i < NOPTS; i++) {
        const struct cfg_field *f = &table[i];
        if (!present[i] || seen[i])
            continue;
        release_field(f, (char *)c + f->off);
        memcpy((char *)c + f->off, (char *)fc + f->off, member_size(f));
        memset((char *)fc + f->off, 0, member_size(f));
    }
    cfg_decoded_release(&flat_schema, fc);
    free(fc);
    return rc;
}

static int load_defaults(struct dec *d, struct gw_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NOPTS; i++)
        if (apply_default(d, &table[i], c))
            return GW_EINVAL;
    return GW_OK;
}

int cfg_load(struct gw_config *c, int argc, char **argv, int first, struct gw_err *err)
{
    unsigned char seen[NOPTS] = {0};
    struct dec d = {.err = err};
    int rc = load_defaults(&d, c);

    if (!rc)
        rc = load_flags(&d, c, argc, argv, first, seen);
    if (!rc)
        rc = load_env(&d, c, seen);
    if (!rc && c->config) {
        rc = ydoc_load_file(&c->file, c->config, err);
        if (!rc)
            rc = apply_file(&d, c, seen);
    }
    return rc;
}

int cfg_load_mem(struct gw_config *c, const char *name, const void *text, size_t len,
                 struct gw_err *err)
{
    unsigned char seen[NOPTS] = {0};
    struct dec d = {.err = err};
    int rc = load_defaults(&d, c);

    if (!rc)
        rc = ydoc_load_mem(&c->file, name, text, len, err);
    if (!rc)
        rc = apply_file(&d, c, seen);
    return rc;
}

void cfg_release(struct gw_config *c)
{
    cfg_decoded_release(&flat_schema, c);
    ydoc_release(&c->file);
}

const struct ynode *cfg_file_node(const struct gw_config *c, const char *key)
{
    return ynode_get(c->file.root, key);
}

void cfg_usage(FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (is_file_only(table[i].type))
            continue;
        fprintf(out, "  --%-20s %s", table[i].name, table[i].help);
        if (table[i].def)
            fprintf(out, " [%s]", table[i].def);
        fprintf(out, "\n");
    }
    fprintf(out, "\nEach flag can also be set as COPILOT_GATEWAY_<NAME> (e.g. "
                 "COPILOT_GATEWAY_PROVIDER_URL) or in the --config YAML file.\n");
}
