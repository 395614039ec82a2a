/*
 * bench/usage.c - what virtual keys cost a request outside the HTTP path: the keyring's
 * lookup, and the usage row written when the request ends (issue 11).
 *
 * Part 1, key lookup: NKEYS keys (default 1000) are added to a fresh gateway.db under DIR
 * through store_keys_add() and loaded by keyring_new(), the path `serve` takes; then
 * ITER lookups as http/server.c makes them on every request that carries a key:
 * keys_digest() (SHA-256 of the secret) and keyring_find(), over the keys in a random
 * order, each timed alone with clock_gettime(CLOCK_MONOTONIC): p50/p99 and mean in µs.
 *
 * Part 2, usage rows: store_usage_add() of rows as http/flow.c record_usage() writes them
 * (key, user, model, api, status, tokens, credits, latency; 100 keys, 5 models), into a
 * fresh gateway.db under DIR: first PACED rows at RATE a second (default 200: one per 5 ms,
 * more than a team's gateway serves) for the time the calling thread (the event loop)
 * spends per call, then N rows (default 100000) as fast as it can for the writer's
 * throughput (rows a second).  The SQLite store runs the statement in the call
 * (store/store.h), so the calling thread is the writer; the loop is turned once after
 * each call, as the gateway's would be.  The unpaced rows' timestamps are spread over the
 * 30 days before now.
 *
 * Part 3, the report: store_usage_report() over those N rows (and the paced ones) grouped
 * by key, user, model and day, the whole range and the last day, and one key's rows by
 * day: REPS runs each, the time from the call to the callback (ms, median and max).
 *
 * DIR defaults to a new directory under build/ (the real disk, not a tmpfs), removed at the
 * end.  It reports; it asserts nothing (but says if a report's totals do not add up).
 *
 *   make build/bench/usage && build/bench/usage [N [PACED [RATE [DIR]]]]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bench.h"
#include "keys/keys.h"
#include "store/store.h"
#include "util/util.h"

#define NKEYS 1000
#define ITER 200000
#define UKEYS 100 /* keys the usage rows spread over */
#define REPS 5

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    return xorshift64(&rng);
}

/* One store call's answer: done once the callback ran. */
struct answer {
    int done, rc;
    int64_t requests; /* usage reports: the groups' requests added up */
    char msg[256];
};

static void on_answer(void *ud, const struct store_result *res)
{
    struct answer *a = ud;

    a->done = 1;
    a->rc = res->rc;
    if (res->rc < 0)
        snprintf(a->msg, sizeof(a->msg), "%s", res->err->msg);
    for (size_t i = 0; i < res->n_groups; i++)
        a->requests += res->groups[i].requests;
}

/* Turns the loop until a->done; returns a->rc (or -1, the message printed). */
static int wait_answer(struct event_base *base, struct answer *a, const char *what)
{
    while (!a->done)
        event_base_loop(base, EVLOOP_ONCE);
    if (a->rc < 0)
        fprintf(stderr, "%s: %s\n", what, a->msg);
    return a->rc;
}

static int open_store(struct event_base *base, const char *dir, const char *sub,
                      struct store **s)
{
    char data[512];
    struct gw_err e;

    snprintf(data, sizeof(data), "%s/%s", dir, sub);
    if (util_mkdirs(data)) {
        fprintf(stderr, "usage: cannot create %s\n", data);
        return -1;
    }
    if (store_sqlite_open(base, data, s, &e)) {
        fprintf(stderr, "usage: %s\n", e.msg);
        return -1;
    }
    return 0;
}

/* ---- part 1: the keyring ------------------------------------------------------------------ */

static int bench_lookup(struct event_base *base, const char *dir)
{
    static char secrets[NKEYS][64];
    double *t = malloc(ITER * sizeof(double));
    struct store *s = NULL;
    struct keyring *kr = NULL;
    int rc = 1, misses = 0;

    if (!t || open_store(base, dir, "keys", &s))
        goto out;
    for (int i = 0; i < NKEYS; i++) {
        struct store_key k;
        struct answer a = {0};
        struct gw_err e;
        char name[32];

        memset(&k, 0, sizeof(k));
        keys_new_secret(secrets[i], k.id);
        keys_digest(secrets[i], k.digest);
        snprintf(name, sizeof(name), "team-%04d", i);
        k.name = name;
        k.user = name;
        k.rpm = 600;
        k.tpm = 1000000;
        k.max_concurrent = 8;
        k.created_ms = util_wall_ms();
        if (store_keys_add(s, &k, on_answer, &a, NULL, &e)) {
            fprintf(stderr, "keys add: %s\n", e.msg);
            goto out;
        }
        if (wait_answer(base, &a, "keys add") != 1)
            goto out;
    }
    kr = keyring_new(base, s, NULL);
    while (!keyring_ready(kr))
        event_base_loop(base, EVLOOP_ONCE);
    printf("key lookup (keys_digest + keyring_find), %zu active keys, %d lookups (us)\n",
           keyring_count(kr), ITER);
    for (int i = 0; i < ITER; i++) {
        const char *secret = secrets[next_rand() % NKEYS];
        unsigned char d[32];
        double t0 = now_us();

        keys_digest(secret, d);
        if (!keyring_find(kr, d))
            misses++;
        t[i] = now_us() - t0;
    }
    report_times("  ", "lookup", t, ITER);
    if (misses)
        printf("  (%d lookups found no key)\n", misses);
    rc = 0;
out:
    keyring_free(kr);
    store_close(s);
    free(t);
    return rc;
}

/* ---- part 2: usage rows ------------------------------------------------------------------- */

static const char *const MODELS[] = {"gpt-5-mini", "gpt-5", "claude-sonnet-4.5", "gpt-4.1",
                                     "agent/logs"};

/*
 * n usage rows, rate a second (0: as fast as it can), timestamps from ts0 by step ms.
 * Fills t with each call's time; returns the run's wall time in seconds, or -1.
 */
static double usage_rows(struct store *s, struct event_base *base, int n, int rate, int64_t ts0,
                         double step, double *t)
{
    char rid[32], keyname[UKEYS][16], user[UKEYS][32], principal[UKEYS][40];
    struct store_usage u;
    struct gw_err e;
    double start = now_us(), t0;

    for (int k = 0; k < UKEYS; k++) {
        snprintf(keyname[k], sizeof(keyname[k]), "team-%03d", k);
        snprintf(user[k], sizeof(user[k]), "dev%03d@corp.example", k);
        snprintf(principal[k], sizeof(principal[k]), "vk:vk_%024llx",
                 (unsigned long long)next_rand() & 0xffffffffffffULL);
    }
    memcpy(rid, "req_", 4);
    for (int i = 0; i < n; i++) {
        int k = (int)(next_rand() % UKEYS);
        const char *model = MODELS[next_rand() % 5];

        util_rand_id(rid + 4, 24);
        memset(&u, 0, sizeof(u));
        u.ts = ts0 + (int64_t)(i * step);
        u.request_id = rid;
        u.principal = principal[k];
        u.key_name = keyname[k];
        u.user = user[k];
        u.model = (char *)model;
        u.api = (char *)(i % 3 ? "chat" : "messages");
        u.agent = strncmp(model, "agent/", 6) == 0 ? (char *)model + 6 : NULL;
        u.status = i % 50 ? 200 : 429;
        u.input_tokens = 200 + (int64_t)(next_rand() % 4000);
        u.output_tokens = 50 + (int64_t)(next_rand() % 800);
        u.cached_tokens = u.input_tokens / 2;
        u.credits = (double)(u.input_tokens + 4 * u.output_tokens) / 1e6;
        u.latency_ms = 300 + (int64_t)(next_rand() % 5000);
        pace(start, i, rate);
        t0 = now_us();
        if (store_usage_add(s, &u, NULL, NULL, NULL, &e)) {
            fprintf(stderr, "usage add: %s\n", e.msg);
            return -1;
        }
        t[i] = now_us() - t0;
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    return (now_us() - start) / 1e6;
}


/* ---- part 3: the report ------------------------------------------------------------------- */

static int time_report(struct store *s, struct event_base *base, const char *group_by,
                       int64_t since, const char *key, const char *label, int64_t want)
{
    struct store_usage_query q = {group_by, since, 0, key};
    double t[REPS];
    int groups = 0;

    for (int r = 0; r < REPS; r++) {
        struct answer a = {0};
        struct gw_err e;
        double t0 = now_us();

        if (store_usage_report(s, &q, on_answer, &a, NULL, &e)) {
            fprintf(stderr, "usage report: %s\n", e.msg);
            return -1;
        }
        if ((groups = wait_answer(base, &a, "usage report")) < 0)
            return -1;
        t[r] = (now_us() - t0) / 1000.0;
        if (want >= 0 && a.requests != want)
            printf("  (%s: the groups add up to %lld requests, not %lld)\n", label,
                   (long long)a.requests, (long long)want);
    }
    qsort(t, REPS, sizeof(*t), cmp_double);
    printf("  %-36s %5d groups   median %7.2f ms   max %7.2f ms\n", label, groups, t[REPS / 2],
           t[REPS - 1]);
    return 0;
}

static int bench_usage(struct event_base *base, const char *dir, int n, int paced, int rate)
{
    double *t = malloc((size_t)(n > paced ? n : paced) * sizeof(double)), secs;
    struct store *s = NULL;
    int64_t now = util_wall_ms(), month = 30LL * 86400000;
    int rc = 1;

    if (!t || open_store(base, dir, "usage", &s))
        goto out;
    printf("\nusage rows into %s/usage/gateway.db (store_usage_add, one per request)\n", dir);
    printf("paced, %d rows a second:\n", rate);
    if (usage_rows(s, base, paced, rate, now, 0, t) < 0)
        goto out;
    report_times("  ", "store_usage_add", t, paced);
    report_checkpointer(s);
    printf("as fast as it can (the writer's throughput):\n");
    if ((secs = usage_rows(s, base, n, 0, now - month, (double)month / n, t)) < 0)
        goto out;
    printf("  %d rows in %.2f s: %.0f rows/s\n", n, secs, n / secs);
    report_times("  ", "store_usage_add", t, n);
    report_checkpointer(s);

    printf("\nstore_usage_report() over %d rows (%d keys, 30 days), %d runs each:\n", n + paced,
           UKEYS, REPS);
    if (time_report(s, base, "key", 0, NULL, "by key, all", n + paced) ||
        time_report(s, base, "user", 0, NULL, "by user, all", n + paced) ||
        time_report(s, base, "model", 0, NULL, "by model, all", n + paced) ||
        time_report(s, base, "day", 0, NULL, "by day, all", n + paced) ||
        time_report(s, base, "key", now - 86400000, NULL, "by key, last day", -1) ||
        time_report(s, base, "day", 0, "team-007", "one key (team-007) by day", -1))
        goto out;
    rc = 0;
out:
    store_close(s);
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int paced = argc > 2 ? atoi(argv[2]) : 5000;
    int rate = argc > 3 ? atoi(argv[3]) : 200;
    struct event_base *base = event_base_new();
    char dir[256];
    int rc;

    if (n <= 0 || paced <= 0 || rate < 0 || !base) {
        fprintf(stderr, "usage: %s [N [PACED [RATE [DIR]]]]\n", argv[0]);
        return 2;
    }
    if (argc > 4) {
        snprintf(dir, sizeof(dir), "%s", argv[4]);
    } else {
        snprintf(dir, sizeof(dir), "build/bench-usage-XXXXXX");
        if (!mkdtemp(dir))
            return 2;
    }
    rc = bench_lookup(base, dir);
    if (rc == 0)
        rc = bench_usage(base, dir, n, paced, rate);
    if (argc <= 4)
        util_rmtree(dir);
    event_base_free(base);
    return rc;
}
