/*
 * bench/limits.c - what the per-key limiter costs a request: one limits_admit() and one
 * limits_done().
 *
 * For 1, 1000 and 100000 keys (all four limits set, high enough never to refuse, so
 * every call does the whole work): first the time to add the keys (each key's first
 * admit, which allocates it and moves a few buckets while the hash table grows), then ITER
 * admit+done pairs over the keys in a random order (so the table is not walked in memory order),
 * timed in batches of 1000 pairs with clock_gettime(CLOCK_MONOTONIC): ns per pair as the mean, and
 * the batch p50/p99.  Last, the same pairs while the keys, idle for 10 minutes, are being dropped
 * (two looks per admit).  The clock given to the limiter advances 1 ms per pair.  It reports; it
 * asserts nothing (but says if anything was refused).
 *
 *   make build/bench/limits && build/bench/limits [ITER]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "limits/limits.h"

#define BATCH 1000

static const struct limit_spec SPEC = {.rpm = 1000000000,
                                       .tpm = 1000000000,
                                       .max_concurrent = 100,
                                       .budget_credits = 1e12,
                                       .budget_period = "month"};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
    return xorshift64(&rng);
}

/* A random order of the n key numbers. */
static int *shuffled(int n)
{
    int *v = malloc((size_t)n * sizeof(*v));

    for (int i = 0; i < n; i++)
        v[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_rand() % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

/* iter pairs over ids in order; returns the refusals, fills per-batch ns per pair. */
static long pairs(struct limits *l, char (*ids)[32], const int *order, int n, int iter,
                  int64_t *now, double *batch_ns, double *total_ns)
{
    struct limit_verdict v;
    long refused = 0;
    double start = now_us(), t0 = start;

    for (int i = 0; i < iter; i++) {
        const char *id = ids[order[i % n]];
        if (limits_admit(l, id, &SPEC, *now, 500, &v) || !v.ok)
            refused++;
        limits_done(l, id, *now, 800, 0.001);
        (*now)++;
        if ((i + 1) % BATCH == 0) {
            double t = now_us();
            batch_ns[i / BATCH] = (t - t0) * 1000.0 / BATCH;
            t0 = t;
        }
    }
    *total_ns = (now_us() - start) * 1000.0 / iter;
    return refused;
}

static void report_ns(const char *what, double mean, double *b, int nb)
{
    qsort(b, (size_t)nb, sizeof(*b), cmp_double);
    printf("  %-34s %7.1f ns/pair   batches of %d: p50 %.1f  p99 %.1f  max %.1f ns/pair\n", what,
           mean, BATCH, b[nb / 2], b[(int)(nb * 0.99)], b[nb - 1]);
}

static int run(int nkeys, int iter)
{
    struct limits *l = limits_new();
    char(*ids)[32] = malloc((size_t)nkeys * sizeof(*ids));
    int *order = shuffled(nkeys);
    int nb = iter / BATCH;
    double *batch_ns = malloc((size_t)nb * sizeof(double)), total, t0, all;
    double *add_us = malloc((size_t)nkeys * sizeof(double));
    int64_t now = 1796464800000LL; /* 2026-12-05T10:00:00Z */
    struct limit_verdict v;
    long refused;

    printf("%d key%s:\n", nkeys, nkeys == 1 ? "" : "s");
    for (int i = 0; i < nkeys; i++)
        snprintf(ids[i], sizeof(ids[i]), "vk_%016llx", (unsigned long long)next_rand());
    all = now_us();
    for (int i = 0; i < nkeys; i++) {
        t0 = now_us();
        if (limits_admit(l, ids[i], &SPEC, now, 500, &v) == 0 && v.ok)
            limits_done(l, ids[i], now, 800, 0.001);
        add_us[i] = now_us() - t0;
    }
    all = now_us() - all;
    printf("  %-34s %7.1f ns/key\n", "adding the keys (first admit)", all * 1000.0 / nkeys);
    if (nkeys >= 1000)
        report_times("    ", "first admit (us)", add_us, nkeys);
    refused = pairs(l, ids, order, nkeys, iter, &now, batch_ns, &total);
    report_ns("admit+done", total, batch_ns, nb);
    /* Next month (budgets rolled over), every key idle past LIMITS_IDLE_MS: pairs on
     * one key, each admit dropping two of the others, until all are gone. */
    now = limits_period_next(SPEC.budget_period, now) + LIMITS_IDLE_MS + 1;
    if (nkeys >= 2 * BATCH) {
        int pin = 0, n = nkeys / 2 - nkeys / 2 % BATCH;
        refused += pairs(l, ids, &pin, 1, n, &now, batch_ns, &total);
        report_ns("admit+done, dropping 2 idle keys", total, batch_ns, n / BATCH);
        printf("  keys left after %d pairs: %zu\n", n, limits_count(l));
    }
    if (refused)
        printf("  (%ld refused: the numbers include refusals)\n", refused);
    limits_free(l);
    free(ids);
    free(order);
    free(batch_ns);
    free(add_us);
    return 0;
}

int main(int argc, char **argv)
{
    int iter = argc > 1 ? atoi(argv[1]) : 2000000;
    static const int keys[] = {1, 1000, 100000};

    if (iter < 10 * BATCH) {
        fprintf(stderr, "usage: %s [ITER>=%d]\n", argv[0], 10 * BATCH);
        return 2;
    }
    iter -= iter % BATCH;
    printf("limits_admit() + limits_done(), all four limits set, %d pairs per run\n", iter);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (run(keys[i], iter))
            return 1;
    return 0;
}
