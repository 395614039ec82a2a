/*
 * copilot-gateway: parse the command line, build the modules, run the loop.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "api/models.h"
#include "broker/broker.h"
#include "cmd.h"
#include "http/server.h"
#include "http/services.h"
#include "keys/keys.h"
#include "keys/prices.h"
#include "keys/sealed.h"
#include "limits/limits.h"
#include "rt/orphans.h"
#include "rt/locate.h"
#include "rt/rt.h"
#include "store/store.h"
#include "util/cfg.h"
#include "util/fetch.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define GW_VERSION "0.1.0"

struct app {
    struct event_base *base;
    struct gw_config cfg;
    char runtime[PATH_MAX];
    char home[PATH_MAX];
    char data[PATH_MAX];
    char workdir[PATH_MAX];
    char warmup_url[128];
    char warmup_key[40];
    char **api_keys;
    struct evhttp *warmup;
    struct broker *broker;
    struct fetch *fetch;
    struct models *models;
    struct agents agents;       /* the config file's agents; their profiles outlive the broker */
    struct agent_runner *runner; /* decides their tool calls, writes the audit log */
    const char **env_refs;       /* the ${VAR}s the agents' MCP servers read: not the runtime's */
    struct keyring *keyring;     /* virtual API keys */
    struct limits *limits;       /* ... their limits' counters */
    struct prices prices;        /* --model-prices */
    struct sealer *sealer;       /* --token-key-file, or NULL */
    struct http_server *http;
    struct gw_services svc;     /* what the HTTP handlers work with */
    struct store *store;        /* gateway.db: the session map and stored responses */
    struct event *sigterm, *sigint;
    int stopping;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: copilot-gateway <command> [flags]\n\n"
                 "commands:\n"
                 "  serve     run the gateway (OpenAI and Anthropic APIs over the Copilot "
                 "runtime)\n"
                 "  login     sign the gateway's Copilot runtime in to GitHub\n"
                 "  claude    print the environment for Claude Code; with -- ARGS, run claude\n"
                 "  codex     print the Codex CLI settings; with -- ARGS, run codex with them\n"
                 "  audit     print the audit log of server-side agents (audit --help)\n"
                 "  keys      create, list, update and revoke virtual API keys (keys --help)\n"
                 "  usage     print the usage totals by key, user, model or day (usage --help)\n"
                 "  version   print the version\n\n"
                 "flags:\n");
    cfg_usage(out);
}

static int exe_dir(char *out, size_t n)
{
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    char *slash;
    if (r <= 0)
        return -1;
    out[r] = '\0';
    slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

/* Makes path absolute (the runtime runs in another directory) and creates it. */
static int prepare_dir(const char *path, char *out, size_t n)
{
    char cwd[PATH_MAX];
    if (util_mkdirs(path))
        return -1;
    if (path[0] == '/') {
        snprintf(out, n, "%s", path);
        return 0;
    }
    if (!getcwd(cwd, sizeof(cwd)))
        return -1;
    if (strncmp(path, "./", 2) == 0)
        path += 2;
    snprintf(out, n, "%s/%s", cwd, path);
    return 0;
}

static char **split_keys(const char *s)
{
    size_t n = 0, cap = 4;
    char **v = xcalloc(cap + 1, sizeof(char *));
    const char *p = s;

    while (p && *p) {
        size_t len = strcspn(p, ",");
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        if (len) {
            if (n == cap) {
                cap *= 2;
                v = xrealloc(v, (cap + 1) * sizeof(char *));
            }
            v[n++] = xstrndup(p, len);
        }
        p += len;
        if (*p == ',')
            p++;
    }
    v[n] = NULL;
    return v;
}

static int setup_paths(struct app *a)
{
    char dir[PATH_MAX], sub[PATH_MAX];
    struct gw_err err;

    if (prepare_dir(a->cfg.data, a->data, sizeof(a->data))) {
        fprintf(stderr, "copilot-gateway: cannot create data directory '%s': %s\n", a->cfg.data,
                strerror(errno));
        return -1;
    }
    snprintf(sub, sizeof(sub), "%s/copilot-home", a->data);
    if (prepare_dir(a->cfg.home ? a->cfg.home : sub, a->home, sizeof(a->home))) {
        fprintf(stderr, "copilot-gateway: cannot create home directory: %s\n", strerror(errno));
        return -1;
    }
    snprintf(sub, sizeof(sub), "%s/empty", a->data);
    if (prepare_dir(sub, a->workdir, sizeof(a->workdir))) {
        fprintf(stderr, "copilot-gateway: cannot create directory '%s': %s\n", sub,
                strerror(errno));
        return -1;
    }
    if (exe_dir(dir, sizeof(dir)))
        dir[0] = '\0';
    if (rt_locate(a->cfg.copilot, dir, a->runtime, sizeof(a->runtime), &err)) {
        fprintf(stderr, "copilot-gateway: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* ---- serve ------------------------------------------------------------------- */

static void on_runtime_stopped(void *ud)
{
    struct app *a = ud;
    log_msg(LOG_INFO, "main", "runtime stopped; exiting");
    event_base_loopexit(a->base, NULL);
}

static void on_drained(void *ud)
{
    struct app *a = ud;
    log_msg(LOG_INFO, "main", "in-flight requests done; stopping the runtime");
    http_server_end_detached(a->http); /* background responses still running end as failed */
    broker_stop(a->broker, on_runtime_stopped, a);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct app *a = arg;
    if (a->stopping) {
        log_msg(LOG_WARN, "main", "second signal: stopping now");
        on_drained(a);
        return;
    }
    a->stopping = 1;
    log_msg(LOG_INFO, "main", "received %s: shutting down gracefully", strsignal((int)sig));
    http_server_drain(a->http, on_drained, a);
}

/*
 * Writes and removes a file in dir: a full, read-only or foreign-owned
 * directory is refused at start-up rather than found by the first request.
 */
static int check_writable(const char *dir, const char *what)
{
    char path[PATH_MAX];
    int fd, rc = 0;

    snprintf(path, sizeof(path), "%s/.copilot-gateway-XXXXXX", dir);
    fd = mkstemp(path);
    if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) != 0)
        rc = -1;
    if (rc)
        fprintf(stderr, "copilot-gateway: cannot write to the %s '%s': %s\n", what, dir,
                strerror(errno));
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    return rc;
}

static void on_fail_unfinished(void *ud, const struct store_result *res)
{
    (void)ud;
    if (res->rc < 0)
        log_msg(LOG_WARN, "main", "%s", res->err->msg);
    else if (res->rc > 0)
        log_msg(LOG_WARN, "main", "%d stored response(s) cut by the last stop marked failed",
                res->rc);
}

/* One connection to gateway.db for the whole process (store/store.h says why); without it
 * nothing acknowledged could be kept, so the gateway does not start. */
static int open_store(struct app *a)
{
    struct gw_err err;

    if (check_writable(a->data, "data directory") || check_writable(a->home, "runtime home"))
        return -1;
    if (store_sqlite_open(a->base, a->data, &a->store, &err)) {
        fprintf(stderr, "copilot-gateway: %s (data directory '%s')\n", err.msg, a->data);
        return -1;
    }
    store_audit_set_ttl(a->store, a->cfg.audit_ttl_days * 86400000);
    /*
     * Stored responses are written in_progress before their turn: any left so were cut.
     * The gateway serves while this runs, safely: a store runs its operations in the
     * order they were called (SQLite even runs this statement inside the call), so no
     * request's in_progress row, issued later, can be marked failed, and every later
     * read already sees the rows marked.  Only the count's log line comes later.
     */
    if (store_responses_fail_unfinished(a->store,
                                        "the gateway stopped before the response finished",
                                        on_fail_unfinished, NULL, NULL, &err) < 0)
        log_msg(LOG_WARN, "main", "%s", err.msg);
    return 0;
}

/* ---- budgets ---------------------------------------------------------------------- */

struct seed {
    struct app *a;
    char id[40];
    char *period; /* NULL: a lifetime budget */
};

static void on_spent(void *ud, const struct store_result *res)
{
    struct seed *sd = ud;

    if (res->rc >= 0)
        limits_seed_budget(sd->a->limits, sd->id, sd->period, util_wall_ms(),
                           res->n_groups ? res->groups[0].credits : 0);
    else
        log_msg(LOG_WARN, "keys", "cannot read a key's spending: %s", res->err->msg);
    keyring_unhold(sd->a->keyring);
    free(sd->period);
    free(sd);
}

/* A key with a budget starts from what it spent this period (usage in the store). */
static void seed_budget(void *ud, struct vkey *k)
{
    struct app *a = ud;
    struct seed *sd;
    struct gw_err err;
    int64_t start;

    if (k->budget_credits <= 0)
        return;
    start = limits_period_start(k->budget_period, util_wall_ms());
    struct store_usage_query q = {.group_by = "key", .since_ms = start > 0 ? start : 0,
                                  .key_name = k->name};
    sd = xcalloc(1, sizeof(*sd));
    sd->a = a;
    snprintf(sd->id, sizeof(sd->id), "%s", k->id);
    sd->period = k->budget_period ? xstrdup(k->budget_period) : NULL;
    keyring_hold(a->keyring); /* the first load is ready once every budget is seeded */
    if (store_usage_report(a->store, &q, on_spent, sd, NULL, &err)) {
        log_msg(LOG_WARN, "keys", "cannot read a key's spending: %s", err.msg);
        keyring_unhold(a->keyring);
        free(sd->period);
        free(sd);
    }
}

static int build(struct app *a)
{
    struct broker_config bc;
    struct http_config hc;
    struct gw_err err;

    if (open_store(a))
        return -1;
    util_rand_id(a->warmup_key, 32);
    a->warmup = http_warmup_listen(a->base, a->warmup_key, a->warmup_url, sizeof(a->warmup_url),
                                   &err);
    if (!a->warmup) {
        log_msg(LOG_ERROR, "main", "%s", err.msg);
        return -1;
    }
    memset(&bc, 0, sizeof(bc));
    bc.rt.path = a->runtime;
    bc.rt.home = a->home;
    bc.rt.no_auto_login = a->cfg.provider_url != NULL;
    a->env_refs = agents_env_refs(&a->agents);
    bc.rt.env_drop = a->env_refs;
    bc.rt.call_timeout_ms = (int)a->cfg.call_timeout_ms;
    bc.provider.url = a->cfg.provider_url;
    bc.provider.key = a->cfg.provider_key;
    bc.provider.type = a->cfg.provider_type;
    bc.warmup_url = a->warmup_url;
    bc.warmup_key = a->warmup_key;
    bc.workdir = a->workdir;
    bc.data_dir = a->data;
    bc.turn_timeout_ms = (int)a->cfg.turn_timeout_ms;
    bc.tool_timeout_s = (int)a->cfg.tool_timeout_s;
    bc.session_idle_s = (int)a->cfg.session_idle_s;
    bc.max_sessions = (int)a->cfg.max_sessions;
    bc.pool_size = a->cfg.runtime_pool > 0 ? (int)a->cfg.runtime_pool
                                           : (int)sysconf(_SC_NPROCESSORS_ONLN);
    bc.recycle_sessions = (int)a->cfg.runtime_recycle_sessions;
    bc.recycle_mb = (int)a->cfg.runtime_recycle_mb;
    bc.ping_interval_ms = (int)a->cfg.runtime_ping_interval_ms;
    bc.ping_timeout_ms = (int)a->cfg.runtime_ping_timeout_ms;
    bc.min_free_mb = a->cfg.min_free_mb;
    bc.store = a->store;
    a->broker = broker_new(a->base, &bc);
    a->fetch = fetch_new(a->base);
    a->models = models_new(a->base, a->broker, a->fetch, &bc.provider, (int)a->cfg.models_ttl_s);

    memset(&hc, 0, sizeof(hc));
    hc.listen = a->cfg.listen;
    hc.max_body = (size_t)a->cfg.max_body_bytes;
    hc.max_headers = (size_t)a->cfg.max_header_bytes;
    hc.read_timeout_s = (int)a->cfg.read_timeout_s;
    hc.header_timeout_s = (int)a->cfg.header_timeout_s;
    hc.write_timeout_s = (int)a->cfg.write_timeout_s;
    hc.max_write_buffer = (size_t)a->cfg.max_write_buffer_bytes;
    hc.max_connections = (int)a->cfg.max_connections;
    hc.cors_origins = a->cfg.cors_origins;
    hc.allowed_hosts = a->cfg.allowed_hosts;
    hc.shutdown_timeout_s = (int)a->cfg.shutdown_timeout_s;
    if (prices_parse(a->cfg.model_prices, &a->prices, &err)) {
        log_msg(LOG_ERROR, "main", "%s", err.msg);
        return -1;
    }
    a->api_keys = split_keys(a->cfg.api_key);
    hc.api_keys = (const char *const *)a->api_keys;
    hc.admin_key = a->cfg.admin_key;

    a->runner = agent_runner_new(&a->agents, a->store);
    if (a->cfg.token_key_file && sealer_load(a->cfg.token_key_file, &a->sealer, &err)) {
        log_msg(LOG_ERROR, "main", "%s", err.msg);
        return -1;
    }
    a->keyring = keyring_new(a->base, a->store, a->sealer);
    a->limits = limits_new();
    keyring_on_load(a->keyring, seed_budget, a);
    a->svc = (struct gw_services){
        .base = a->base,
        .broker = a->broker,
        .models = a->models,
        .fetch = a->fetch,
        .store = a->store, /* the session map's connection, shared */
        .profile = &profile_pure_model,
        .agents = &a->agents,
        .agent_runner = a->runner,
        .keyring = a->keyring,
        .limits = a->limits,
        .prices = &a->prices,
        .sealer = a->sealer,
        .anthropic_default_model = a->cfg.anthropic_default_model,
        .model_aliases = a->cfg.model_alias,
        .image_fetch_private = (int)a->cfg.image_fetch_private,
        .max_input_tokens = a->cfg.max_input_tokens,
        .responses_ttl_s = a->cfg.responses_ttl_s,
        .responses_max = a->cfg.responses_max,
    };
    a->http = http_server_new(a->base, &hc, &a->svc);
    if (http_server_start(a->http, &err)) {
        log_msg(LOG_ERROR, "main", "%s", err.msg);
        return -1;
    }
    return 0;
}

static void teardown(struct app *a)
{
    http_server_free(a->http);
    models_free(a->models);
    fetch_free(a->fetch);
    broker_free(a->broker);
    orphans_stop(); /* ends what the runtimes left as they went */
    agent_runner_free(a->runner);
    free(a->env_refs);           /* borrowed from the agents by the runtimes */
    agents_free(&a->agents); /* sessions borrowed the profiles until the broker went */
    keyring_free(a->keyring);
    sealer_free(a->sealer);
    limits_free(a->limits);
    prices_free(&a->prices);
    store_close(a->store);
    if (a->warmup)
        evhttp_free(a->warmup);
    if (a->sigterm)
        event_free(a->sigterm);
    if (a->sigint)
        event_free(a->sigint);
    for (char **k = a->api_keys; k && *k; k++)
        free(*k);
    free(a->api_keys);
    if (a->base)
        event_base_free(a->base);
    cfg_release(&a->cfg);
}

static int serve(struct app *a)
{
    const char *h;

    if (setup_paths(a))
        return 1;
    a->base = event_base_new();
    if (build(a))
        return 1;
    h = http_server_host(a->http);
    /* The banner prints at any log level: scripts read the port from it. */
    log_write(LOG_INFO, "main", "copilot-gateway %s listening on http://%s%s%s:%d", GW_VERSION,
            strchr(h, ':') ? "[" : "", h, strchr(h, ':') ? "]" : "", http_server_port(a->http));
    log_msg(LOG_INFO, "main", "runtime %s, home %s, model provider %s", a->runtime, a->home,
            a->cfg.provider_url ? "BYOK" : "GitHub Copilot");
    orphans_start(a->base); /* before any runtime: their tools' leftovers become ours */
    if (broker_start(a->broker)) {
        log_msg(LOG_ERROR, "main", "cannot start the Copilot runtime '%s'", a->runtime);
        return 1;
    }
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    event_add(a->sigterm, NULL);
    event_add(a->sigint, NULL);
    event_base_dispatch(a->base);
    log_msg(LOG_INFO, "main", "bye");
    return 0;
}

/* ---- login ------------------------------------------------------------------- */

int login_main(const char *runtime, const char *home, struct event_base *base);

int main(int argc, char **argv)
{
    struct app a;
    struct gw_err err;
    const char *cmd = argc > 1 ? argv[1] : "help";
    int lvl, rc;

    memset(&a, 0, sizeof(a));
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("copilot-gateway %s\n", GW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "claude") == 0 || strcmp(cmd, "codex") == 0) {
        /* copilot-gateway claude|codex [flags] [-- tool-args...] */
        int dd = argc;
        for (int i = 2; i < argc; i++)
            if (strcmp(argv[i], "--") == 0) {
                dd = i;
                break;
            }
        if (cfg_load(&a.cfg, dd, argv, 2, &err)) {
            fprintf(stderr, "copilot-gateway: %s\n", err.msg);
            cfg_release(&a.cfg);
            return 2;
        }
        argv[dd < argc ? dd : argc - 1] = (char *)cmd;
        rc = (cmd[1] == 'l' ? claude_main : codex_main)(&a.cfg, dd < argc ? argc - dd : 0,
                                                         dd < argc ? argv + dd : NULL);
        cfg_release(&a.cfg);
        return rc;
    }
    if (strcmp(cmd, "audit") == 0)
        return audit_main(argc, argv);
    if (strcmp(cmd, "keys") == 0)
        return keys_main(argc, argv);
    if (strcmp(cmd, "usage") == 0)
        return usage_main(argc, argv);
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "login") != 0) {
        fprintf(stderr, "copilot-gateway: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    if (cfg_load(&a.cfg, argc, argv, 2, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n", err.msg);
        cfg_release(&a.cfg);
        return 2;
    }
    lvl = log_level_parse(a.cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "copilot-gateway: invalid --log-level '%s'\n", a.cfg.log_level);
        cfg_release(&a.cfg);
        return 2;
    }
    log_level_current = (enum log_level)lvl;
    log_hook_libevent();
    if (strcmp(cmd, "serve") == 0 &&
        agents_load(cfg_file_node(&a.cfg, "agents"), &a.agents, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n", err.msg);
        cfg_release(&a.cfg);
        return 2;
    }
    if (strcmp(cmd, "login") == 0) {
        if (setup_paths(&a)) {
            cfg_release(&a.cfg);
            return 1;
        }
        a.base = event_base_new();
        rc = login_main(a.runtime, a.home, a.base);
    } else {
        rc = serve(&a);
    }
    teardown(&a);
    return rc;
}
