/* Configuration from one table: flags, environment, YAML file, defaults. */
#include "util/cfg.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/util.h"
#include "util/xmalloc.h"

enum cfg_type { CFG_STR, CFG_INT };

struct cfg_opt {
    const char *name;
    enum cfg_type type;
    size_t off;
    const char *def;
    int64_t min, max;
    const char *help;
};

#define S(f) offsetof(struct gw_config, f)
static const struct cfg_opt table[] = {
    {"listen", CFG_STR, S(listen), "127.0.0.1:3000", 0, 0,
     "HOST:PORT to serve on (port 0 picks a free port)"},
    {"config", CFG_STR, S(config), NULL, 0, 0, "YAML file with any of these settings"},
    {"copilot", CFG_STR, S(copilot), NULL, 0, 0,
     "Copilot runtime binary (also COPILOT_CLI_PATH); default: the npm install, then PATH"},
    {"data", CFG_STR, S(data), "./data", 0, 0, "directory for the gateway's own state"},
    {"home", CFG_STR, S(home), NULL, 0, 0,
     "COPILOT_HOME of the runtime (sign-in, sessions); default: DATA/copilot-home"},
    {"provider-url", CFG_STR, S(provider_url), NULL, 0, 0,
     "BYOK: OpenAI-compatible base URL every session uses instead of Copilot"},
    {"provider-key", CFG_STR, S(provider_key), NULL, 0, 0, "BYOK: API key for --provider-url"},
    {"provider-type", CFG_STR, S(provider_type), "openai", 0, 0,
     "BYOK: openai | azure | anthropic"},
    {"log-level", CFG_STR, S(log_level), "info", 0, 0, "debug | info | warn | error"},
    {"api-key", CFG_STR, S(api_key), NULL, 0, 0,
     "client API key(s), comma-separated; required when listening beyond loopback"},
    {"max-body-bytes", CFG_INT, S(max_body_bytes), "33554432", 1024, 1073741824,
     "largest request body accepted"},
    {"max-header-bytes", CFG_INT, S(max_header_bytes), "65536", 1024, 1048576,
     "largest request header block accepted"},
    {"read-timeout-s", CFG_INT, S(read_timeout_s), "60", 1, 3600,
     "time a client has to send a request body; also how long an idle connection is kept"},
    {"header-timeout-s", CFG_INT, S(header_timeout_s), "10", 1, 3600,
     "time a client has to send a request's whole header block"},
    {"write-timeout-s", CFG_INT, S(write_timeout_s), "60", 1, 3600,
     "a client that accepts no output for this long is disconnected"},
    {"max-write-buffer-bytes", CFG_INT, S(max_write_buffer_bytes), "4194304", 65536,
     1073741824, "output queued for one slow client before its stream is aborted"},
    {"max-connections", CFG_INT, S(max_connections), "0", 0, 1000000,
     "open client connections at most (0: from the descriptor limit)"},
    {"cors-origins", CFG_STR, S(cors_origins), NULL, 0, 0,
     "browser origins allowed to call the API, comma-separated exact origins (default: none)"},
    {"allowed-hosts", CFG_STR, S(allowed_hosts), NULL, 0, 0,
     "Host header names accepted besides loopback ones, comma-separated (e.g. gw.corp:443)"},
    {"turn-timeout-ms", CFG_INT, S(turn_timeout_ms), "600000", 100, 86400000,
     "deadline for one model turn; the turn is aborted after it (504)"},
    {"call-timeout-ms", CFG_INT, S(call_timeout_ms), "30000", 100, 600000,
     "deadline for one JSON-RPC call to the runtime"},
    {"shutdown-timeout-s", CFG_INT, S(shutdown_timeout_s), "30", 0, 3600,
     "how long in-flight requests may finish after SIGTERM"},
    {"models-ttl-s", CFG_INT, S(models_ttl_s), "300", 0, 86400, "model list cache lifetime"},
    {"tool-timeout-s", CFG_INT, S(tool_timeout_s), "600", 1, 86400,
     "how long a session waits for the client's tool results before it is closed"},
    {"session-idle-s", CFG_INT, S(session_idle_s), "1800", 1, 604800,
     "an idle runtime session is closed after this long"},
    {"max-sessions", CFG_INT, S(max_sessions), "1000", 1, 1000000,
     "live runtime sessions kept; the least recently used idle one goes first"},
    {"model-alias", CFG_STR, S(model_alias), NULL, 0, 0,
     "model names to rewrite, FROM=TO[,FROM=TO...] (e.g. claude-opus-4-1=claude-opus-4.1)"},
    {"anthropic-default-model", CFG_STR, S(anthropic_default_model), NULL, 0, 0,
     "model for Anthropic requests naming a claude-* id the catalogue does not have"},
    {"runtime-pool", CFG_INT, S(runtime_pool), "0", 0, 64,
     "runtime processes to run (0: one per CPU core)"},
    {"runtime-recycle-sessions", CFG_INT, S(runtime_recycle_sessions), "20000", 0, 100000000,
     "restart a runtime process after it opened this many sessions (0: never)"},
    {"runtime-recycle-mb", CFG_INT, S(runtime_recycle_mb), "2048", 0, 1048576,
     "restart a runtime process past this resident size (0: never)"},
    {"responses-ttl-s", CFG_INT, S(responses_ttl_s), "2592000", 60, 315360000,
     "stored Responses API responses (store: true) are deleted after this long"},
    {"responses-max", CFG_INT, S(responses_max), "10000", 0, 100000000,
     "stored responses kept at most; the oldest go first (0: no cap)"},
    {"max-input-tokens", CFG_INT, S(max_input_tokens), "1000000", 1000, 100000000,
     "largest conversation (estimated tokens) sent to the runtime; caps the model's own window"},
    {"runtime-ping-interval-ms", CFG_INT, S(runtime_ping_interval_ms), "5000", 0, 3600000,
     "how often each runtime process is pinged (0: never)"},
    {"runtime-ping-timeout-ms", CFG_INT, S(runtime_ping_timeout_ms), "10000", 100, 3600000,
     "a runtime process that leaves a ping unanswered this long is restarted"},
    {"min-free-mb", CFG_INT, S(min_free_mb), "64", 0, 1048576,
     "below this free space on the data or runtime-home disk, requests are refused (507)"},
    {"image-fetch-private", CFG_INT, S(image_fetch_private), "0", 0, 1,
     "allow image URLs that resolve to private or loopback addresses (tests, trusted networks)"},
};
#undef S
#define NOPTS (sizeof(table) / sizeof(table[0]))

static const struct cfg_opt *find(const char *name, size_t n)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *t = table[i].name;
        size_t j;
        if (strlen(t) != n)
            continue;
        for (j = 0; j < n; j++)
            if (t[j] != name[j] && !(t[j] == '-' && name[j] == '_'))
                break;
        if (j == n)
            return &table[i];
    }
    return NULL;
}

static int set(struct gw_config *c, const struct cfg_opt *o, const char *v, const char *src,
               struct gw_err *err)
{
    char *base = (char *)c;
    if (o->type == CFG_STR) {
        char **p = (char **)(base + o->off);
        free(*p);
        *p = xstrdup(v);
        return GW_OK;
    }
    if (util_parse_i64(v, o->min, o->max, (int64_t *)(base + o->off)))
        return gw_err_set(err, GW_EINVAL, "%s: invalid value '%.64s' for '%s' (%lld..%lld)", src,
                          v, o->name, (long long)o->min, (long long)o->max);
    return GW_OK;
}

static int load_yaml(struct gw_config *c, const char *path, const int *from_env_or_flag,
                     struct gw_err *err)
{
    FILE *f = fopen(path, "r");
    yaml_parser_t p;
    yaml_event_t ev;
    char key[64] = "";
    int depth = 0, have_key = 0, rc = GW_OK, done = 0;

    if (!f)
        return gw_err_set(err, GW_EINVAL, "cannot open config file '%s'", path);
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    while (!done && rc == GW_OK) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = gw_err_set(err, GW_EINVAL, "%s:%zu: %s", path, p.problem_mark.line + 1,
                            p.problem ? p.problem : "YAML syntax error");
            break;
        }
        char where[300];
        snprintf(where, sizeof(where), "%s:%zu", path, ev.start_mark.line + 1);
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (++depth > 1)
                rc = gw_err_set(err, GW_EINVAL, "%s: only flat 'key: value' settings are allowed",
                                where);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_ALIAS_EVENT:
            rc = gw_err_set(err, GW_EINVAL, "%s: YAML aliases are not supported here", where);
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (depth != 1) {
                rc = gw_err_set(err, GW_EINVAL, "%s: expected 'key: value' settings", where);
                break;
            }
            if (!have_key) {
                snprintf(key, sizeof(key), "%s", v);
                have_key = 1;
                break;
            }
            have_key = 0;
            const struct cfg_opt *o = find(key, strlen(key));
            if (!o)
                rc = gw_err_set(err, GW_EINVAL, "%s: unknown setting '%s'", where, key);
            else if (!from_env_or_flag[o - table])
                rc = set(c, o, v, where, err);
            break;
        }
        case YAML_STREAM_END_EVENT:
            done = 1;
            if (have_key)
                rc = gw_err_set(err, GW_EINVAL, "%s: setting '%s' has no value", where, key);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rc;
}

static int load_flags(struct gw_config *c, int argc, char **argv, int first, int *seen,
                      struct gw_err *err)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i], *eq, *v;
        const struct cfg_opt *o;
        size_t n;

        if (strncmp(a, "--", 2) != 0)
            return gw_err_set(err, GW_EINVAL, "unexpected argument '%s'", a);
        a += 2;
        eq = strchr(a, '=');
        n = eq ? (size_t)(eq - a) : strlen(a);
        o = find(a, n);
        if (!o)
            return gw_err_set(err, GW_EINVAL, "unknown flag '--%.*s' (see --help)", (int)n, a);
        if (eq)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return gw_err_set(err, GW_EINVAL, "flag '--%s' needs a value", o->name);
        if (set(c, o, v, "command line", err))
            return GW_EINVAL;
        seen[o - table] = 1;
    }
    return GW_OK;
}

static void load_env(struct gw_config *c, int *seen, struct gw_err *err, int *rc)
{
    for (size_t i = 0; i < NOPTS && !*rc; i++) {
        char var[80] = "COPILOT_GATEWAY_";
        size_t k = strlen(var);
        const char *v;
        for (const char *p = table[i].name; *p && k < sizeof(var) - 1; p++)
            var[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        var[k] = '\0';
        v = getenv(var);
        if (!v || seen[i])
            continue;
        *rc = set(c, &table[i], v, var, err);
        seen[i] = 1;
    }
}

int cfg_load(struct gw_config *c, int argc, char **argv, int first, struct gw_err *err)
{
    int seen[NOPTS] = {0};
    int rc = GW_OK;

    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NOPTS && !rc; i++)
        if (table[i].def)
            rc = set(c, &table[i], table[i].def, "default", err);
    if (!rc)
        rc = load_flags(c, argc, argv, first, seen, err);
    if (!rc)
        load_env(c, seen, err, &rc);
    if (!rc && c->config)
        rc = load_yaml(c, c->config, seen, err);
    return rc;
}

void cfg_release(struct gw_config *c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (table[i].type == CFG_STR) {
            char **p = (char **)((char *)c + table[i].off);
            free(*p);
            *p = NULL;
        }
}

void cfg_usage(FILE *out)
{
    for (size_t i = 0; i < NOPTS; i++) {
        fprintf(out, "  --%-20s %s", table[i].name, table[i].help);
        if (table[i].def)
            fprintf(out, " [%s]", table[i].def);
        fprintf(out, "\n");
    }
    fprintf(out, "\nEach flag can also be set as COPILOT_GATEWAY_<NAME> (e.g. "
                 "COPILOT_GATEWAY_PROVIDER_URL) or in the --config YAML file.\n");
}
