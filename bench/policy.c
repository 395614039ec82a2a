/*
 * bench/policy.c - what a policy decision and an audit write cost an agent's tool call.
 *
 * Part 1: loads a realistic agent (a log analyst: bash, view, grep, glob and
 * an MCP server; allow and deny rules for every kind) from YAML text through
 * cfg_load_mem() and agents_load(), the path `serve` takes, and times
 * policy_check() with that agent's policy over a mix of real tool calls
 * (ITER timed calls each, after a warm-up), each call timed alone with
 * clock_gettime(CLOCK_MONOTONIC).  The read roots are a real tree under
 * DIR, so path checks pay for realpath(3).  Prints each input's verdict and
 * its p50, p99 and mean in microseconds.
 *
 * Part 2: appends AUDIT_N audit rows (store_audit_add(), then
 * store_audit_outcome() on the same row, as agent/agent.c does for an
 * allowed call) to a fresh gateway.db under DIR, with the gateway's default
 * 90-day TTL, first paced at RATE rows a second (default 500: one per
 * 2 ms, more than agents make) for the time the calling thread (the event
 * loop) spends per call, p50/p99/p99.9/max, then as fast as it can for the
 * writer's throughput (rows and writes a second).  The SQLite store runs
 * each statement in the call (store/store.h), so the calling thread is the
 * writer.  Like bench/store.c the loop is turned once after each call.
 *
 * DIR defaults to a new directory under build/ (the real disk, not a tmpfs),
 * removed at the end.  It reports; it asserts nothing.
 *
 *   make build/bench/policy && build/bench/policy [ITER [AUDIT_N [RATE [DIR]]]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "agent/config.h"
#include "policy/policy.h"
#include "bench.h"
#include "store/store.h"
#include "util/cfg.h"
#include "util/util.h"

static double mean(const double *t, int n)
{
    double sum = 0;

    for (int i = 0; i < n; i++)
        sum += t[i];
    return sum / n;
}

/* ---- the agent -------------------------------------------------------------------------- */

static const char YAML[] =
    "agents:\n"
    "  logs:\n"
    "    description: Finds errors in the application logs\n"
    "    model: gpt-5-mini\n"
    "    instructions: You are a log analyst. Answer from the logs only.\n"
    "    workdir: %1$s/srv/logs\n"
    "    tools: [bash, view, grep, glob]\n"
    "    mcp-servers:\n"
    "      elk:\n"
    "        command: /opt/mcp/elk-server\n"
    "        args: [--index, app-*]\n"
    "        tools: [search, get_document, list_indices]\n"
    "    allow:\n"
    "      shell: [ls, cat, zcat, grep, egrep, wc, sort, uniq, head, tail, cut, tr, awk, sed,\n"
    "              find, xargs, date, echo, jq, du, stat, file, basename, dirname]\n"
    "      read: [%1$s/srv/logs, %1$s/srv/app/config]\n"
    "      url: [grafana.internal, \"*.corp.example\"]\n"
    "      mcp: [elk-search, elk-get_*]\n"
    "    deny:\n"
    "      shell: [rm, dd, curl, wget, nc, ssh, scp, chmod, chown]\n"
    "      read: [%1$s/srv/logs/secrets]\n"
    "    max-tool-calls: 50\n";

/* The tree the read rules and path checks resolve through. */
static int make_tree(const char *dir)
{
    static const char *const dirs[] = {"srv", "srv/logs", "srv/logs/app", "srv/logs/app/2026",
                                       "srv/logs/app/2026/12", "srv/logs/secrets", "srv/app",
                                       "srv/app/config"};
    char path[512];
    FILE *f;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, dirs[i]);
        if (util_mkdirs(path))
            return -1;
    }
    snprintf(path, sizeof(path), "%s/srv/logs/app/2026/12/app-05.log", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("INFO start\nERROR disk full on /var\n", f);
    fclose(f);
    /* A symlink inside the root, as log rotation leaves them: resolved by realpath. */
    snprintf(path, sizeof(path), "%s/srv/logs/current", dir);
    if (symlink("app/2026/12", path))
        return -1;
    return 0;
}

struct input {
    const char *name;
    const char *tool;
    const char *args; /* JSON; %1$s is the directory */
};

static const struct input INPUTS[] = {
    {"simple ls", "bash", "{\"command\": \"ls -la /srv/logs\", \"description\": \"list\"}"},
    {"pipeline", "bash",
     "{\"command\": \"grep -c ERROR app.log | sort | uniq -c | head\"}"},
    {"long line with $(...)", "bash",
     "{\"command\": \"for f in $(find . -name '*.log' -mtime -1 -type f); do echo \\\"$f: "
     "$(grep -c -E 'ERROR|FATAL' \\\"$f\\\") errors, last at $(grep -E 'ERROR|FATAL' "
     "\\\"$f\\\" | tail -1 | cut -d' ' -f1-2)\\\"; done | sort -t: -k2 -n -r | head -20 && "
     "date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ && du -sh . | awk '{print $1}'\"}"},
    {"bash -c", "bash",
     "{\"command\": \"bash -c 'zcat app.log.1.gz | grep -c ERROR; grep -c ERROR app.log'\"}"},
    {"find -exec", "bash",
     "{\"command\": \"find . -name '*.log' -size +1M -exec grep -l 'OutOfMemory' {} +\"}"},
    {"heredoc", "bash",
     "{\"command\": \"cat <<'EOF' | grep -v '^#' | sort\\n# wanted\\nERROR\\nFATAL\\nEOF\"}"},
    {"redirect (write)", "bash",
     "{\"command\": \"grep ERROR app.log > /tmp/errors.txt\"}"},
    {"denied rm", "bash", "{\"command\": \"grep -l ERROR *.log; rm -rf old/\"}"},
    {"view (realpath)", "view", "{\"path\": \"current/app-05.log\"}"},
    {"grep paths (realpath)", "grep",
     "{\"pattern\": \"ERROR\", \"paths\": [\"%1$s/srv/logs/app/2026/12\", "
     "\"%1$s/srv/app/config\"]}"},
    {"view outside roots", "view", "{\"path\": \"../../../../../../../../../../etc/passwd\"}"},
    {"mcp glob", "elk-get_document", "{\"index\": \"app-2026.12\", \"id\": \"abc\"}"},
};

static int bench_policy(const char *dir, int iter)
{
    struct gw_config c;
    struct agents as = {0};
    struct gw_err e;
    char *yaml;
    size_t n = strlen(YAML) + 8 * strlen(dir) + 1;
    double *t = calloc((size_t)iter, sizeof(double));
    int rc;

    yaml = malloc(n);
    if (!t || !yaml)
        return 2;
    snprintf(yaml, n, YAML, dir);
    memset(&e, 0, sizeof(e));
    rc = cfg_load_mem(&c, "bench.yaml", yaml, strlen(yaml), &e);
    if (rc == 0)
        rc = agents_load(cfg_file_node(&c, "agents"), &as, &e);
    free(yaml);
    if (rc) {
        fprintf(stderr, "policy: the agent did not load: %s\n", e.msg);
        cfg_release(&c);
        free(t);
        return 1;
    }
    printf("policy_check(): %d calls per input after %d warm-up calls (us)\n", iter, iter / 10);
    printf("%-24s %-6s %-30s %8s %8s %8s\n", "input", "", "rule (DIR: the tree)", "p50", "p99",
           "mean");
    for (size_t k = 0; k < sizeof(INPUTS) / sizeof(INPUTS[0]); k++) {
        const struct input *in = &INPUTS[k];
        const struct policy *p = &as.v[0].policy;
        size_t alen = strlen(in->args) + 4 * strlen(dir) + 1;
        char *text = malloc(alen), *at;
        json_t *args;
        json_error_t je;
        struct pol_verdict v;

        snprintf(text, alen, in->args, dir);
        args = json_loads(text, 0, &je);
        free(text);
        if (!args) {
            fprintf(stderr, "policy: input '%s': %s\n", in->name, je.text);
            rc = 1;
            break;
        }
        for (int i = 0; i < iter / 10; i++)
            policy_check(p, in->tool, args, &v);
        for (int i = 0; i < iter; i++) {
            double t0 = now_us();
            policy_check(p, in->tool, args, &v);
            t[i] = now_us() - t0;
        }
        json_decref(args);
        qsort(t, (size_t)iter, sizeof(*t), cmp_double);
        /* The rule with DIR spelled "DIR", so lines stay short. */
        if ((at = strstr(v.rule, dir)) != NULL) {
            memmove(at + 3, at + strlen(dir), strlen(at + strlen(dir)) + 1);
            memcpy(at, "DIR", 3);
        }
        printf("%-24s %-6s %-30.30s %8.2f %8.2f %8.2f\n", in->name,
               v.allow ? "allow" : "deny", v.rule, t[iter / 2], t[(int)(iter * 0.99)],
               mean(t, iter));
    }
    agents_free(&as);
    cfg_release(&c);
    free(t);
    return rc;
}

/* ---- the audit log ---------------------------------------------------------------------- */

static void report(const char *what, double *t, int n)
{
    report_times("  ", what, t, n);
}


/*
 * n audit rows as agent/agent.c writes them for an allowed bash call: the decision, then
 * its outcome, each followed by one turn of the loop (which delivers the store's
 * answers).  rate rows a second (0: as fast as it can), the add and the outcome of a row
 * half a period apart.  Fills tadd and tout with the time each call took; returns the
 * run's wall time in seconds, or -1 on a store error.
 */
static double audit_rows(struct store *s, struct event_base *base, int n, int rate,
                         double *tadd, double *tout)
{
    char rid[32], sid[37];
    struct store_audit row;
    struct gw_err e;
    double start = now_us(), t0;

    memcpy(rid, "req_", 4);
    util_rand_id(rid + 4, 24);
    util_uuid(sid);
    for (int i = 0; i < n; i++) {
        memset(&row, 0, sizeof(row));
        memcpy(row.id, "aud_", 4);
        util_rand_id(row.id + 4, 24);
        row.ts = util_wall_ms();
        row.request_id = rid;
        row.principal = "key:3f2a9c0d41e7b856";
        row.agent = "logs";
        row.session_id = sid;
        row.tool = "bash";
        row.kind = "shell";
        row.target = "grep -c ERROR app.log | sort | uniq -c | head";
        row.decision = "allow";
        row.rule = "shell(grep)";
        row.duration_ms = -1;
        pace(start, 2 * i, 2 * rate);
        t0 = now_us();
        if (store_audit_add(s, &row, NULL, NULL, NULL, &e)) {
            fprintf(stderr, "audit add: %s\n", e.msg);
            return -1;
        }
        tadd[i] = now_us() - t0;
        event_base_loop(base, EVLOOP_NONBLOCK);
        pace(start, 2 * i + 1, 2 * rate);
        t0 = now_us();
        if (store_audit_outcome(s, row.id, "ok", 12, NULL, NULL, NULL, NULL, &e)) {
            fprintf(stderr, "audit outcome: %s\n", e.msg);
            return -1;
        }
        tout[i] = now_us() - t0;
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    return (now_us() - start) / 1e6;
}

static int bench_audit(const char *dir, int n, int rate)
{
    char data[512];
    double *tadd = calloc((size_t)n, sizeof(double)), *tout = calloc((size_t)n, sizeof(double));
    struct event_base *base = event_base_new();
    struct store *s = NULL;
    struct gw_err e;
    double secs;
    int rc = 1;

    snprintf(data, sizeof(data), "%s/data", dir);
    if (!tadd || !tout || !base || util_mkdirs(data)) {
        fprintf(stderr, "audit: cannot set up %s\n", data);
        goto out;
    }
    if (store_sqlite_open(base, data, &s, &e)) {
        fprintf(stderr, "audit: %s\n", e.msg);
        goto out;
    }
    store_audit_set_ttl(s, 90LL * 86400000); /* the gateway's default audit-ttl-days */
    printf("\naudit rows into %s/gateway.db (add + outcome per row)\n", data);
    printf("paced, %d rows a second:\n", rate);
    if ((secs = audit_rows(s, base, n, rate, tadd, tout)) < 0)
        goto out;
    report("store_audit_add", tadd, n);
    report("store_audit_outcome", tout, n);
    report_checkpointer(s);
    printf("as fast as it can (the writer's throughput):\n");
    if ((secs = audit_rows(s, base, n, 0, tadd, tout)) < 0)
        goto out;
    printf("  %d rows in %.2f s: %.0f rows/s, %.0f writes/s\n", n, secs, n / secs,
           2 * n / secs);
    report("store_audit_add", tadd, n);
    report("store_audit_outcome", tout, n);
    report_checkpointer(s);
    rc = 0;
out:
    store_close(s);
    if (base)
        event_base_free(base);
    free(tadd);
    free(tout);
    return rc;
}

int main(int argc, char **argv)
{
    int iter = argc > 1 ? atoi(argv[1]) : 20000;
    int n = argc > 2 ? atoi(argv[2]) : 10000;
    int rate = argc > 3 ? atoi(argv[3]) : 500;
    char dir[256];
    int rc;

    if (iter < 10 || n <= 0) {
        fprintf(stderr, "usage: %s [ITER>=10 [AUDIT_N [RATE [DIR]]]]\n", argv[0]);
        return 2;
    }
    if (argc > 4) {
        snprintf(dir, sizeof(dir), "%s", argv[4]);
    } else {
        snprintf(dir, sizeof(dir), "build/bench-policy-XXXXXX");
        if (!mkdtemp(dir))
            return 2;
    }
    {
        /* Roots are absolute: resolve DIR once. */
        char *abs = realpath(dir, NULL);
        if (!abs)
            return 2;
        rc = make_tree(abs);
        if (rc == 0)
            rc = bench_policy(abs, iter);
        if (rc == 0)
            rc = bench_audit(abs, n, rate);
        free(abs);
    }
    if (argc <= 4)
        util_rmtree(dir);
    return rc;
}
