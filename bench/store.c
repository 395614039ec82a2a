/*
 * bench/store.c - how long a store write holds the event loop, checkpoints included.
 *
 * Puts N responses of SIZE bytes (default 20000 x 2 KB, enough for dozens of
 * WAL checkpoints) at RATE puts a second (default 1000: far more than the
 * gateway writes, two puts per stored response; 0 = as fast as it can, which
 * outruns any checkpointer and measures the kernel's dirty-page throttling
 * as much as the store) into a fresh gateway.db under DIR (default: a new
 * directory under build/, i.e. the real disk, not a tmpfs) and prints the
 * p50, p99, p99.9 and max of the time each put spent in the calling thread,
 * which is what the event loop would wait.  It reports; it asserts nothing.
 *
 *   make build/bench/store && build/bench/store [N [SIZE [RATE [DIR]]]]
 *
 * Built against the store of commit 84a138f (before checkpoints moved off
 * the loop: SQLite's automatic checkpoint ran inside the put that crossed
 * 1000 WAL pages) it times that store's synchronous store_resp_put():
 *
 *   mkdir -p build/before/store && git show 84a138f:src/store/store.c \
 *     > build/before/store/store.c && git show 84a138f:src/store/store.h \
 *     > build/before/store/store.h
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Ibuild/before -Isrc bench/store.c \
 *     build/before/store/store.c src/util/err.c src/util/xmalloc.c src/util/util.c \
 *     src/util/log.c src/util/buf.c -o build/bench/store-before \
 *     $(pkg-config --libs sqlite3 jansson libcrypto libevent) -lpthread
 *
 * Built against today's store (STORE_CHECKPOINT_PAGES defined) it times
 * store_responses_put(), which runs the same statement in the call and
 * queues the answer, and prints the checkpointer's counters.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "store/store.h"
#include "util/util.h"

static void report(const char *what, double *t, int n)
{
    report_times("", what, t, n);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    size_t size = argc > 2 ? (size_t)atol(argv[2]) : 2048;
    int rate = argc > 3 ? atoi(argv[3]) : 1000;
    char dir[256], *body = malloc(size + 16);
    double *t = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    struct event_base *base = event_base_new();
    struct store *s = NULL;
    struct gw_err e;

    if (n <= 0 || !body || !t || !base)
        return 2;
    double start;

    if (argc > 4) {
        snprintf(dir, sizeof(dir), "%s", argv[4]);
    } else {
        snprintf(dir, sizeof(dir), "build/bench-store-XXXXXX");
        if (!mkdtemp(dir))
            return 2;
    }
    snprintf(body, size + 16, "{\"t\":\"%*s\"}", (int)size, "");
#ifdef STORE_CHECKPOINT_PAGES
    if (store_sqlite_open(base, dir, &s, &e)) {
#else
    if (store_open(dir, &s, &e)) {
#endif
        fprintf(stderr, "store: %s\n", e.msg);
        return 1;
    }
#ifndef STORE_CHECKPOINT_PAGES
    start = now_us();
    for (int i = 0; i < n; i++) {
        char id[32];
        struct store_response sr = {0};
        double t0;
        snprintf(id, sizeof(id), "resp_sync%d", i);
        sr.id = id;
        sr.created = i;
        sr.input = "[]";
        sr.response = body;
        pace(start, i, rate);
        t0 = now_us();
        if (store_resp_put(s, &sr, 0, &e)) {
            fprintf(stderr, "put: %s\n", e.msg);
            return 1;
        }
        t[i] = now_us() - t0;
    }
    report("store_resp_put", t, n);
#endif
#ifdef STORE_CHECKPOINT_PAGES
    start = now_us();
    for (int i = 0; i < n; i++) {
        char id[32];
        struct store_response sr = {id, NULL, i, "[]", body, "anon"};
        double t0;
        snprintf(id, sizeof(id), "resp_async%d", i);
        pace(start, i, rate);
        t0 = now_us();
        if (store_responses_put(s, &sr, 0, NULL, NULL, NULL, &e)) {
            fprintf(stderr, "put: %s\n", e.msg);
            return 1;
        }
        t[i] = now_us() - t0;
        event_base_loop(base, EVLOOP_NONBLOCK);
    }
    report("store_responses_put", t, n);
    {
        struct store_stats st;
        store_stats(s, &st);
        printf("checkpointer: %llu checkpoints, %llu frames at most, longest %.1f ms, %llu "
               "failed; %llu on the loop\n",
               (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoint_frames_max,
               st.checkpoint_us_max / 1000.0, (unsigned long long)st.checkpoint_errors,
               (unsigned long long)st.checkpoints_on_loop);
    }
#endif
    store_close(s);
    event_base_free(base);
    if (argc <= 4)
        util_rmtree(dir);
    free(body);
    free(t);
    return 0;
}
