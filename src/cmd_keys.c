/*
 * `copilot-gateway keys`: virtual API keys, created, listed, shown, updated and revoked
 * straight in DATA/gateway.db (the daemon may be running: it picks the change up within
 * KEYRING_POLL_MS).  The flags become the same key object the admin API takes
 * (keys_from_json()), so both check a key the same way.  And `copilot-gateway usage`: the
 * usage totals GET /admin/usage gives, as a table, from the same database.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "cmd.h"
#include "http/usage_query.h"
#include "keys/keys.h"
#include "keys/sealed.h"
#include "store/store.h"
#include "util/cfg.h"
#include "util/tstamp.h"
#include "util/util.h"
#include "util/xmalloc.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: copilot-gateway keys create NAME [LIMITS]   prints the new key's secret\n"
            "       copilot-gateway keys list [--revoked]\n"
            "       copilot-gateway keys show NAME\n"
            "       copilot-gateway keys update NAME [LIMITS]\n"
            "       copilot-gateway keys revoke NAME\n"
            "       copilot-gateway keys set-token USER   reads USER's GitHub token from stdin\n"
            "       copilot-gateway keys clear-token USER\n\n"
            "LIMITS: --user U  --models GLOB,GLOB...  --rpm N  --tpm N  --max-concurrent N\n"
            "        --budget-credits N  --budget-period day|week|month  --expires DATE\n"
            "        (0 or \"\" removes a limit; DATE is RFC 3339 or YYYY-MM-DD, UTC)\n\n"
            "The keys live in DATA/gateway.db; the flags that locate it are serve's (--data,\n"
            "--config, COPILOT_GATEWAY_DATA).  A running gateway sees a change within a second.\n"
            "USER is a key's user (or the name of a key without one): the token serves all of\n"
            "that user's keys, sealed under --token-key-file (the serving gateway's file).\n");
}

/* The store's answer to one call, waited for on the loop. */
struct answer {
    int done, rc;
    struct gw_err err;
    struct store_key *keys;
    size_t n;
    json_t *groups; /* usage: the groups' JSON */
};

static void on_answer(void *ud, const struct store_result *res)
{
    struct answer *a = ud;

    a->done = 1;
    a->rc = res->rc;
    if (res->rc < 0) {
        a->err = *res->err;
        return;
    }
    if (res->n_groups)
        a->groups = json_array();
    for (size_t i = 0; i < res->n_groups; i++)
        json_array_append_new(a->groups, usage_group_json(&res->groups[i], "group"));
    a->keys = res->n_keys ? xcalloc(res->n_keys, sizeof(*a->keys)) : NULL;
    a->n = res->n_keys;
    for (size_t i = 0; i < res->n_keys; i++) {
        store_key_copy(&a->keys[i], &res->keys[i]);
    }
}

static void answer_release(struct answer *a)
{
    json_decref(a->groups);
    for (size_t i = 0; i < a->n; i++)
        store_key_release(&a->keys[i]);
    free(a->keys);
}

/* Runs the call started with rc (0: out) until answered; the answer's rc, or -1 (said). */
static int wait_answer(struct event_base *base, int rc, const struct gw_err *err,
                       struct answer *a)
{
    if (rc < 0) {
        fprintf(stderr, "copilot-gateway: %s\n", err->msg);
        return -1;
    }
    while (!a->done)
        event_base_loop(base, EVLOOP_ONCE);
    if (a->rc < 0) {
        fprintf(stderr, "copilot-gateway: %s\n", a->err.msg);
        return -1;
    }
    return a->rc;
}

/* --flag value pairs of a key into a JSON key object (typed as the API takes them). */
static int limits_json(int argc, char **argv, int *i, json_t *o, char **rest, int *nrest)
{
    static const struct {
        const char *flag, *field;
        char type; /* s string, i integer, n number, l list, d date */
    } f[] = {{"--user", "user", 's'},
             {"--models", "models", 'l'},
             {"--rpm", "rpm", 'i'},
             {"--tpm", "tpm", 'i'},
             {"--max-concurrent", "max_concurrent", 'i'},
             {"--budget-credits", "budget_credits", 'n'},
             {"--budget-period", "budget_period", 's'},
             {"--expires", "expires_at", 'd'}};
    const char *a = argv[*i], *v;
    size_t k, n;

    for (k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
        n = strlen(f[k].flag);
        if (strncmp(a, f[k].flag, n) == 0 && (a[n] == '\0' || a[n] == '='))
            break;
    }
    if (k == sizeof(f) / sizeof(f[0])) {
        rest[(*nrest)++] = argv[*i]; /* serve's flags: --data, --config ... */
        return 0;
    }
    v = a[n] == '=' ? a + n + 1 : (*i + 1 < argc ? argv[++*i] : NULL);
    if (!v) {
        fprintf(stderr, "copilot-gateway: %s needs a value\n\n", f[k].flag);
        return 2;
    }
    json_t *val = NULL;
    char *end;
    if (!*v && f[k].type != 'i' && f[k].type != 'n') {
        val = json_null();
    } else if (f[k].type == 'i') {
        long long x = strtoll(v, &end, 10);
        val = *v && !*end ? json_integer(x) : json_string(v); /* a string: refused, by name */
    } else if (f[k].type == 'n') {
        double x = strtod(v, &end);
        val = *v && !*end ? json_real(x) : json_string(v);
    } else if (f[k].type == 'l') {
        val = json_array();
        for (const char *p = v; *p;) {
            size_t len = strcspn(p, ",");
            if (len)
                json_array_append_new(val, json_stringn(p, len));
            p += len + (p[len] == ',');
        }
    } else if (f[k].type == 'd' && strlen(v) == 10) {
        char d[32];
        snprintf(d, sizeof(d), "%sT00:00:00Z", v);
        val = json_string(d);
    } else {
        val = json_string(v);
    }
    json_object_set_new(o, f[k].field, val);
    return 0;
}

static void print_table(const struct answer *a)
{
    printf("%-20s %-24s %-24s %7s %9s %5s %12s %-24s %s\n", "NAME", "USER", "MODELS", "RPM",
           "TPM", "CONC", "BUDGET", "EXPIRES", "STATE");
    for (size_t i = 0; i < a->n; i++) {
        const struct store_key *k = &a->keys[i];
        char exp[32] = "-", budget[48] = "-", rpm[24] = "-", tpm[24] = "-", conc[24] = "-";
        if (k->expires_ms > 0)
            tstamp_format(k->expires_ms, exp);
        if (k->budget_credits > 0)
            snprintf(budget, sizeof(budget), "%g/%s", k->budget_credits,
                     k->budget_period ? k->budget_period : "month");
        if (k->rpm)
            snprintf(rpm, sizeof(rpm), "%lld", (long long)k->rpm);
        if (k->tpm)
            snprintf(tpm, sizeof(tpm), "%lld", (long long)k->tpm);
        if (k->max_concurrent)
            snprintf(conc, sizeof(conc), "%lld", (long long)k->max_concurrent);
        printf("%-20s %-24s %-24s %7s %9s %5s %12s %-24s %s\n", k->name,
               k->user ? k->user : "-", k->models ? k->models : "*", rpm, tpm, conc, budget, exp,
               k->revoked_ms ? "revoked" : "active");
    }
}

static const struct store_key *find(const struct answer *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->keys[i].name, name) == 0 && !a->keys[i].revoked_ms)
            return &a->keys[i];
    return NULL;
}

/* The token on stdin (a prompt without echo on a terminal), checked and sealed for user. */
static char *read_sealed_token(const char *user, const struct sealer *sealer)
{
    char tok[GITHUB_TOKEN_MAX + 8], ad[320], *sealed = NULL;
    struct termios old, quiet;
    struct gw_err err;
    int tty = isatty(0) && tcgetattr(0, &old) == 0;
    size_t n;

    if (tty) {
        fprintf(stderr, "GitHub token for %s: ", user);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSAFLUSH, &quiet);
    }
    if (!fgets(tok, sizeof(tok), stdin))
        tok[0] = '\0';
    if (tty) {
        tcsetattr(0, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    n = strcspn(tok, "\r\n");
    tok[n] = '\0';
    if (keys_check_github_token(tok, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n", err.msg);
    } else {
        keys_token_ad(user, ad, sizeof(ad));
        sealed = sealer_seal(sealer, ad, tok, n);
        if (!sealed)
            fprintf(stderr, "copilot-gateway: cannot seal the token\n");
    }
    explicit_bzero(tok, sizeof(tok));
    return sealed;
}

static int run(struct event_base *base, struct store *st, const char *cmd, const char *name,
               json_t *o, int revoked, const struct sealer *sealer)
{
    struct answer a = {0}, b = {0};
    struct gw_err err;
    struct store_key k;
    char secret[64];
    int rc = 1;

    memset(&k, 0, sizeof(k));
    if (strcmp(cmd, "set-token") == 0 || strcmp(cmd, "clear-token") == 0) {
        char *sealed = NULL;
        if (strcmp(cmd, "set-token") == 0 && (sealed = read_sealed_token(name, sealer)) == NULL)
            return 1;
        int r = wait_answer(base, store_tokens_set(st, name, sealed, util_wall_ms(), on_answer,
                                                   &a, NULL, &err),
                            &err, &a);
        free(sealed);
        if (r == 0)
            fprintf(stderr, "copilot-gateway: '%s' has no GitHub token\n", name);
        return r == 1 ? 0 : 1;
    }
    if (strcmp(cmd, "create") == 0) {
        json_object_set_new(o, "name", json_string(name));
        if (keys_from_json(o, 0, &k, &err)) {
            fprintf(stderr, "copilot-gateway: %s\n", err.msg);
            return 2;
        }
        keys_new_secret(secret, k.id);
        keys_digest(secret, k.digest);
        k.created_ms = util_wall_ms();
        int r = wait_answer(base, store_keys_add(st, &k, on_answer, &a, NULL, &err), &err, &a);
        if (r == 0)
            fprintf(stderr, "copilot-gateway: an active key is already named '%s'\n", name);
        if (r == 1)
            printf("%s\n", secret); /* the secret, and nothing else, on stdout */
        rc = r == 1 ? 0 : 1;
        explicit_bzero(secret, sizeof(secret));
    } else if (strcmp(cmd, "list") == 0) {
        if (wait_answer(base, store_keys_list(st, revoked, on_answer, &a, NULL, &err), &err,
                        &a) >= 0) {
            print_table(&a);
            rc = 0;
        }
    } else if (wait_answer(base, store_keys_list(st, 0, on_answer, &a, NULL, &err), &err, &a) >=
               0) {
        const struct store_key *cur = find(&a, name);
        if (!cur) {
            fprintf(stderr, "copilot-gateway: no active key named '%s'\n", name);
        } else if (strcmp(cmd, "show") == 0) {
            json_t *j = keys_to_json(cur);
            char *s = json_dumps(j, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
            json_decref(j);
            rc = 0;
        } else if (strcmp(cmd, "revoke") == 0) {
            int r = wait_answer(base, store_keys_revoke(st, name, util_wall_ms(), on_answer, &b,
                                                        NULL, &err),
                                &err, &b);
            rc = r == 1 ? 0 : 1;
        } else { /* update */
            store_key_copy(&k, cur);
            if (keys_from_json(o, 1, &k, &err)) {
                fprintf(stderr, "copilot-gateway: %s\n", err.msg);
                rc = 2;
            } else {
                int r = wait_answer(base, store_keys_update(st, &k, on_answer, &b, NULL, &err),
                                    &err, &b);
                if (r == 0)
                    fprintf(stderr, "copilot-gateway: another active key is named '%s'\n",
                            k.name);
                rc = r == 1 ? 0 : 1;
            }
        }
    }
    store_key_release(&k);
    answer_release(&a);
    answer_release(&b);
    return rc;
}

int keys_main(int argc, char **argv)
{
    const char *cmd = argc > 2 ? argv[2] : NULL, *name = NULL;
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *));
    int nrest = 1, rc = 0, revoked = 0, i = 3;
    json_t *o = json_object();
    struct gw_config cfg;
    struct gw_err err;
    char path[4096];
    struct stat sb;
    struct sealer *sealer = NULL;

    memset(&cfg, 0, sizeof(cfg));
    rest[0] = argv[0];
    if (!cmd || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(cmd ? stdout : stderr);
        rc = cmd ? 0 : 2;
        goto out;
    }
    if (strcmp(cmd, "create") && strcmp(cmd, "list") && strcmp(cmd, "show") &&
        strcmp(cmd, "update") && strcmp(cmd, "revoke") && strcmp(cmd, "set-token") &&
        strcmp(cmd, "clear-token")) {
        fprintf(stderr, "copilot-gateway: unknown keys command '%s'\n\n", cmd);
        usage(stderr);
        rc = 2;
        goto out;
    }
    if (strcmp(cmd, "list") != 0) {
        if (argc < 4 || argv[3][0] == '-') {
            fprintf(stderr, "copilot-gateway: keys %s needs a NAME\n\n", cmd);
            usage(stderr);
            rc = 2;
            goto out;
        }
        name = argv[3];
        i = 4;
    }
    for (; i < argc && !rc; i++) {
        if (strcmp(argv[i], "--revoked") == 0 && strcmp(cmd, "list") == 0)
            revoked = 1;
        else if (strcmp(cmd, "create") == 0 || strcmp(cmd, "update") == 0)
            rc = limits_json(argc, argv, &i, o, rest, &nrest);
        else
            rest[nrest++] = argv[i];
    }
    if (!rc && cfg_load(&cfg, nrest, rest, 1, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n\n", err.msg);
        rc = 2;
    }
    if (rc) {
        usage(stderr);
        goto out;
    }
    if (strcmp(cmd, "set-token") == 0) {
        if (!cfg.token_key_file) {
            fprintf(stderr, "copilot-gateway: keys set-token needs --token-key-file (the one the "
                            "gateway serves with)\n");
            rc = 2;
            goto out;
        }
        if (sealer_load(cfg.token_key_file, &sealer, &err)) {
            fprintf(stderr, "copilot-gateway: %s\n", err.msg);
            rc = 1;
            goto out;
        }
    }
    snprintf(path, sizeof(path), "%s/gateway.db", cfg.data);
    if (strcmp(cmd, "create") != 0 && stat(path, &sb) != 0) {
        fprintf(stderr, "copilot-gateway: no keys in '%s': %s\n", cfg.data, strerror(errno));
        rc = 1;
        goto out;
    }
    if (strcmp(cmd, "create") == 0 && util_mkdirs(cfg.data) != GW_OK) {
        fprintf(stderr, "copilot-gateway: cannot create the data directory '%s'\n", cfg.data);
        rc = 1;
        goto out;
    }
    struct event_base *base = event_base_new();
    struct store *st = NULL;
    if (!base || store_sqlite_open(base, cfg.data, &st, &err)) {
        fprintf(stderr, "copilot-gateway: %s (data directory '%s')\n",
                base ? err.msg : "cannot make an event loop", cfg.data);
        rc = 1;
    } else {
        rc = run(base, st, cmd, name, o, revoked, sealer);
    }
    store_close(st);
    if (base)
        event_base_free(base);
out:
    sealer_free(sealer);
    json_decref(o);
    cfg_release(&cfg);
    free(rest);
    return rc;
}

/* ---- usage --------------------------------------------------------------------------------- */

static void usage_usage(FILE *out)
{
    fprintf(out, "usage: copilot-gateway usage [--group-by key|user|model|day|api|agent]\n"
                 "                             [--since T] [--until T] [--key NAME] [--json]\n\n"
                 "Sums the usage recorded in DATA/gateway.db (requests, errors, tokens, credits) by\n"
                 "the group (default key), as GET /admin/usage does.  T is RFC 3339 or unix\n"
                 "seconds.  The flags that locate the data directory are serve's.\n");
}

int usage_main(int argc, char **argv)
{
    static const char *const opts[] = {"--group-by", "group_by", "--since", "since",
                                       "--until",    "until",    "--key",   "key", NULL};
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *)), *qs = NULL;
    int nrest = 1, rc = 0, json = 0;
    struct usage_query uq;
    struct gw_config cfg;
    struct gw_err err;
    struct event_base *base = NULL;
    struct store *st = NULL;
    struct answer a = {0};
    size_t qlen = 0;

    memset(&cfg, 0, sizeof(cfg));
    memset(&uq, 0, sizeof(uq));
    rest[0] = argv[0];
    for (int i = 2; i < argc && !rc; i++) {
        int k = 0;
        while (opts[k] && strcmp(argv[i], opts[k]) != 0)
            k += 2;
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage_usage(stdout);
            free(rest);
            return 0;
        } else if (!opts[k]) {
            rest[nrest++] = argv[i];
        } else if (i + 1 >= argc) {
            fprintf(stderr, "copilot-gateway: %s needs a value\n\n", argv[i]);
            rc = 2;
        } else {
            /* as a query string: the admin API's parser checks it (the value escaped) */
            char *v = evhttp_encode_uri(argv[++i]);
            size_t n = strlen(opts[k + 1]) + strlen(v) + 2;
            qs = xrealloc(qs, qlen + n + 1);
            qlen += (size_t)snprintf(qs + qlen, n + 1, "%s%s=%s", qlen ? "&" : "", opts[k + 1], v);
            free(v);
        }
    }
    if (!rc && usage_query_parse(qs, &uq, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n\n", err.msg);
        rc = 2;
    }
    if (!rc && cfg_load(&cfg, nrest, rest, 1, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n\n", err.msg);
        rc = 2;
    }
    if (rc) {
        usage_usage(stderr);
        goto out;
    }
    base = event_base_new();
    if (!base || store_sqlite_open(base, cfg.data, &st, &err)) {
        fprintf(stderr, "copilot-gateway: %s (data directory '%s')\n",
                base ? err.msg : "cannot make an event loop", cfg.data);
        rc = 1;
        goto out;
    }
    struct store_usage_query sq = usage_query_store(&uq);
    if (wait_answer(base, store_usage_report(st, &sq, on_answer, &a, NULL, &err), &err, &a) < 0) {
        rc = 1;
        goto out;
    }
    if (!json)
        printf("%-28s %9s %7s %13s %13s %13s %13s %10s\n", uq.group_by, "REQUESTS", "ERRORS",
               "INPUT", "OUTPUT", "CACHED", "REASONING", "CREDITS");
    for (size_t i = 0; i < json_array_size(a.groups); i++) {
        json_t *g = json_array_get(a.groups, i);
        if (json) {
            json_t *o = json_deep_copy(g);
            json_object_set(o, uq.group_by, json_object_get(g, "group"));
            json_object_del(o, "group");
            char *line = json_dumps(o, JSON_COMPACT);
            printf("%s\n", line);
            free(line);
            json_decref(o);
            continue;
        }
        const char *name = json_string_value(json_object_get(g, "group"));
        printf("%-28s %9lld %7lld %13lld %13lld %13lld %13lld %10.2f\n", name ? name : "-",
               (long long)json_integer_value(json_object_get(g, "requests")),
               (long long)json_integer_value(json_object_get(g, "errors")),
               (long long)json_integer_value(json_object_get(g, "input_tokens")),
               (long long)json_integer_value(json_object_get(g, "output_tokens")),
               (long long)json_integer_value(json_object_get(g, "cached_tokens")),
               (long long)json_integer_value(json_object_get(g, "reasoning_tokens")),
               json_real_value(json_object_get(g, "credits")));
    }
out:
    answer_release(&a);
    store_close(st);
    if (base)
        event_base_free(base);
    usage_query_release(&uq);
    cfg_release(&cfg);
    free(qs);
    free(rest);
    return rc;
}

