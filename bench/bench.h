/*
 * bench/bench.h - what the C benchmarks share: a microsecond clock, pacing, a seeded
 * xorshift generator, the percentile line they print and the store's checkpointer line.
 * Header-only: each bench is one .c file.
 */
#ifndef GW_BENCH_H
#define GW_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

static inline double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Sleeps until event i is due at rate events a second from t0 (rate 0: never). */
static inline void pace(double t0, int i, int rate)
{
    double due, now;

    if (rate <= 0)
        return;
    due = t0 + (double)i * 1e6 / rate;
    now = now_us();
    if (due > now)
        usleep((useconds_t)(due - now));
}

static inline int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Sorts the n times t (µs) and prints "<indent><what> n=… p50 … p99 … p99.9 … max … mean …". */
static inline void report_times(const char *indent, const char *what, double *t, int n)
{
    double sum = 0;

    for (int i = 0; i < n; i++)
        sum += t[i];
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    printf("%s%-20s n=%d  p50 %.1f us  p99 %.1f us  p99.9 %.1f us  max %.1f us  mean %.1f us\n",
           indent, what, n, t[n / 2], t[(int)(n * 0.99)], t[(int)(n * 0.999)], t[n - 1],
           sum / n);
}

/* The next of a xorshift64 sequence in *state (seeded non-zero): repeatable inputs. */
static inline uint64_t xorshift64(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Prints the store's checkpointer figures (store_stats()). */
static inline void report_checkpointer(struct store *s)
{
    struct store_stats st;

    store_stats(s, &st);
    printf("  checkpointer: %llu checkpoints, %llu frames at most, longest %.1f ms, %llu failed; "
           "%llu on the loop\n",
           (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoint_frames_max,
           st.checkpoint_us_max / 1000.0, (unsigned long long)st.checkpoint_errors,
           (unsigned long long)st.checkpoints_on_loop);
}

#endif
