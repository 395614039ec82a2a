/*
 * `copilot-gateway audit`: the audit log read straight from gateway.db (the
 * daemon may be running: WAL lets two processes share the file), as a table
 * oldest to newest or as JSON lines, and with --follow new rows each second.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <jansson.h>

#include "cmd.h"
#include "http/audit_query.h"
#include "store/store.h"
#include "util/tstamp.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define TARGET_COLS 60
#define RULE_COLS 24

struct audit_cli {
    struct event_base *base;
    struct store *st;
    struct event *poll_ev, *sigint;
    struct store_audit_filter f;
    int follow, json;
    int64_t last_seq; /* the newest row printed (or seen at start) */
    int failed;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: copilot-gateway audit [--agent A] [--decision allow|deny] [--since T]\n"
                 "                             [--limit N] [--follow] [--json] [flags]\n\n"
                 "Prints the audit log of server-side agents from DATA/gateway.db, oldest to\n"
                 "newest: the last N rows (default 100, at most 1000) that match.  T is RFC 3339\n"
                 "(2026-12-05T10:00:00Z) or unix seconds.  --follow then prints new rows as they\n"
                 "come until interrupted; --json prints one JSON object a line.  The flags that\n"
                 "locate the data directory are serve's (--data, --config, COPILOT_GATEWAY_DATA).\n");
}

/* Copies s into out (n bytes), cut to cols characters with "..." and control characters
 * (a command line's newlines, a terminal escape) shown as spaces; NULL as "-". */
static void cell(const char *s, size_t cols, char *out, size_t n)
{
    size_t len = 0, chars = 0, i;

    if (!s || !*s)
        s = "-";
    for (i = 0; s[i] && len + 5 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xc0) != 0x80) {
            if (chars == cols)
                break;
            chars++;
        }
        out[len++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    if (s[i]) {
        /* Cut: back to a character start, leaving room for "...". */
        while (len > 0 && chars + 3 > cols) {
            len--;
            if (((unsigned char)out[len] & 0xc0) != 0x80)
                chars--;
        }
        memcpy(out + len, "...", 3);
        len += 3;
    }
    out[len] = '\0';
}

static void print_header(void)
{
    printf("%-24s  %-12s  %-8s  %-6s  %-*s  %-*s  %-7s  %s\n", "TIME", "AGENT", "DECISION", "KIND",
           TARGET_COLS, "TARGET", RULE_COLS, "RULE", "OUTCOME", "MS");
}

/* printf's %-*s pads by bytes; pad by characters so UTF-8 targets line up. */
static void padded(const char *s, size_t cols)
{
    size_t chars = 0;

    for (const char *p = s; *p; p++)
        chars += ((unsigned char)*p & 0xc0) != 0x80;
    fputs(s, stdout);
    for (; chars < cols; chars++)
        putchar(' ');
}

static void print_row(const struct audit_cli *c, const struct store_audit *a)
{
    char time[32], agent[64], kind[32], target[TARGET_COLS * 4 + 8], rule[RULE_COLS * 4 + 8],
        outcome[32];

    if (c->json) {
        json_t *o = audit_row_json(a);
        char *line = json_dumps(o, JSON_COMPACT);
        puts(line ? line : "{}");
        free(line);
        json_decref(o);
        return;
    }
    tstamp_format(a->ts, time);
    cell(a->agent, 12, agent, sizeof(agent));
    cell(a->kind, 6, kind, sizeof(kind));
    cell(a->target, TARGET_COLS, target, sizeof(target));
    cell(a->rule, RULE_COLS, rule, sizeof(rule));
    cell(a->outcome, 7, outcome, sizeof(outcome));
    printf("%-24s  ", time);
    padded(agent, 12);
    printf("  %-8s  ", a->decision);
    padded(kind, 6);
    fputs("  ", stdout);
    padded(target, TARGET_COLS);
    fputs("  ", stdout);
    padded(rule, RULE_COLS);
    fputs("  ", stdout);
    padded(outcome, 7);
    if (a->duration_ms >= 0)
        printf("  %lld\n", (long long)a->duration_ms);
    else
        printf("  -\n");
}

static void poll_later(struct audit_cli *c, int now)
{
    struct timeval tv = {now ? 0 : 1, 0};

    evtimer_add(c->poll_ev, &tv);
}

/*
 * Rows come newest first (a start, or a follow that has seen nothing yet)
 * or oldest first (after_seq): printed oldest first either way.
 */
static void on_rows(void *ud, const struct store_result *res)
{
    struct audit_cli *c = ud;
    int asc = c->f.after_seq > 0;

    if (res->rc < 0) {
        fprintf(stderr, "copilot-gateway: %s\n", res->err->msg);
        c->failed = 1;
        event_base_loopexit(c->base, NULL);
        return;
    }
    for (size_t i = 0; i < res->n_audit; i++) {
        const struct store_audit *a = &res->audit[asc ? i : res->n_audit - 1 - i];
        print_row(c, a);
        if (a->seq > c->last_seq)
            c->last_seq = a->seq;
    }
    fflush(stdout);
    if (!c->follow) {
        event_base_loopexit(c->base, NULL);
        return;
    }
    poll_later(c, asc && res->more);
}

static void list(struct audit_cli *c)
{
    struct gw_err err;

    if (store_audit_list(c->st, &c->f, on_rows, c, NULL, &err) < 0) {
        fprintf(stderr, "copilot-gateway: %s\n", err.msg);
        c->failed = 1;
        event_base_loopexit(c->base, NULL);
    }
}

/*
 * Following: the rows past the newest printed, in pages of the most a list gives.
 * NEEDSWORK: until a first row was printed (last_seq 0) a poll asks newest first, so
 * more than 1000 matching rows arriving within one second of that would lose the oldest.
 */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct audit_cli *c = arg;

    c->f.after_seq = c->last_seq;
    c->f.limit = STORE_AUDIT_LIMIT_MAX;
    list(c);
}

static void on_sigint(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(((struct audit_cli *)arg)->base, NULL);
}

/* Takes audit's own flags out of argv[2..argc) into c; the rest (serve's flags) go to rest.
 * 0, or 2 after printing what is wrong. */
static int own_flags(int argc, char **argv, struct audit_cli *c, char **rest, int *nrest,
                     char **since)
{
    static const char *const with_value[] = {"--agent", "--decision", "--since", "--limit", NULL};

    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int k = -1;
        for (int j = 0; with_value[j]; j++) {
            size_t n = strlen(with_value[j]);
            if (strncmp(a, with_value[j], n) == 0 && (a[n] == '\0' || a[n] == '=')) {
                k = j;
                v = a[n] == '=' ? a + n + 1 : (i + 1 < argc ? argv[++i] : NULL);
                break;
            }
        }
        if (strcmp(a, "--follow") == 0) {
            c->follow = 1;
        } else if (strcmp(a, "--json") == 0) {
            c->json = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (k < 0) {
            rest[(*nrest)++] = argv[i];
        } else if (!v) {
            fprintf(stderr, "copilot-gateway: %s needs a value\n\n", a);
            return 2;
        } else if (k == 0) {
            c->f.agent = v;
        } else if (k == 1) {
            c->f.decision = v;
        } else if (k == 2) {
            *since = (char *)v;
        } else {
            int64_t n;
            if (util_parse_i64(v, 1, STORE_AUDIT_LIMIT_MAX, &n)) {
                fprintf(stderr, "copilot-gateway: invalid --limit '%s': expected 1..%d\n\n", v,
                        STORE_AUDIT_LIMIT_MAX);
                return 2;
            }
            c->f.limit = (size_t)n;
        }
    }
    if (c->f.decision && strcmp(c->f.decision, "allow") != 0 &&
        strcmp(c->f.decision, "deny") != 0) {
        fprintf(stderr, "copilot-gateway: invalid --decision '%s': expected allow or deny\n\n",
                c->f.decision);
        return 2;
    }
    if (*since && tstamp_parse(*since, &c->f.since_ms)) {
        fprintf(stderr,
                "copilot-gateway: invalid --since '%s': expected RFC 3339 "
                "(2026-12-05T10:00:00Z) or unix seconds\n\n",
                *since);
        return 2;
    }
    return 0;
}

static int run(struct audit_cli *c, const char *data)
{
    char path[4096];
    struct stat sb;
    struct gw_err err;

    snprintf(path, sizeof(path), "%s/gateway.db", data);
    /* stat() only: opening the file beside SQLite would drop its locks (store/store.h). */
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "copilot-gateway: no audit log in '%s': %s\n", data, strerror(errno));
        return 1;
    }
    c->base = event_base_new();
    if (!c->base || store_sqlite_open(c->base, data, &c->st, &err)) {
        fprintf(stderr, "copilot-gateway: %s (data directory '%s')\n",
                c->base ? err.msg : "cannot make an event loop", data);
        return 1;
    }
    c->poll_ev = evtimer_new(c->base, on_poll, c);
    c->sigint = evsignal_new(c->base, SIGINT, on_sigint, c);
    event_add(c->sigint, NULL);
    if (!c->json)
        print_header();
    list(c);
    event_base_dispatch(c->base);
    event_free(c->poll_ev);
    event_free(c->sigint);
    store_close(c->st);
    return c->failed ? 1 : 0;
}

int audit_main(int argc, char **argv)
{
    struct audit_cli c;
    struct gw_config cfg;
    struct gw_err err;
    char **rest = xcalloc((size_t)argc + 1, sizeof(char *)), *since = NULL;
    int nrest = 1, rc;

    memset(&c, 0, sizeof(c));
    memset(&cfg, 0, sizeof(cfg));
    rest[0] = argv[0];
    rc = own_flags(argc, argv, &c, rest, &nrest, &since);
    if (rc == 0 && cfg_load(&cfg, nrest, rest, 1, &err)) {
        fprintf(stderr, "copilot-gateway: %s\n\n", err.msg);
        rc = 2;
    }
    if (rc) {
        usage(stderr);
    } else {
        rc = run(&c, cfg.data);
        if (c.base)
            event_base_free(c.base);
    }
    cfg_release(&cfg);
    free(rest);
    return rc;
}
