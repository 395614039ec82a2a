/*
 * bench/sessions.c - what finding a session and opening a new one cost the broker with
 * many idle sessions kept (issue 12).
 *
 * Starts a real broker with one runtime process (the fake runtime,
 * tests/fake/fakeruntime.mjs, or $FAKE_RUNTIME: only for readiness; the
 * sessions timed here are never sent to it), then for each N of SIZES fills
 * the session table with N idle sessions (each its own history head; a
 * third pinned, under 50 pins) through the calls turn.c makes, with the
 * broker's cap at N, and times, each call alone with clock_gettime():
 *
 *   find hit    sess__find() of a live idle session's head (reuse())
 *   find miss   sess__find() of a head no session holds (a new conversation)
 *   open        what a new conversation costs the table at the cap: the
 *               miss, sess__unpin(), sess__evict_for_new() (the least
 *               recently used idle session is closed: not known to the
 *               runtime, so freed at once) and sess__new()
 *   open pinned the same for a pinned request (sess__unpin() looks at the pin)
 *
 * After each open the new session ends its turn untimed (head, idle, last
 * use), so the table stays at N idle sessions.  Prints p50, p99, p99.9, max
 * and mean in nanoseconds per N.  It reports; it asserts nothing.
 *
 * Built with -DBENCH_BEFORE_INDEX against the broker before the session
 * indexes (sessions were one list), it measures the scans they replaced
 * (docs/PERFORMANCE.md, "Issue 12: session index").
 *
 *   make build/bench/sessions && build/bench/sessions [ITER [SIZES]]   (default 2000 10,300,1000)
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "broker/broker.h"
#include "broker/broker_int.h"
#include "broker/profile.h"
#include "util/log.h"
#include "util/util.h"

#ifdef BENCH_BEFORE_INDEX
/* The fields the setters of the indexed table keep; before it they were set directly. */
static void sess__set_head(struct sess *s, const struct hash *h)
{
    s->head = *h;
}

static void sess__touch(struct sess *s, uint64_t now_ms)
{
    s->last_used_ms = now_ms;
}

static struct sess *new_sess(struct rtp *p, const char *pin, const struct sess_owner *o,
                             const struct hash *root)
{
    struct sess *s = sess__new(p, NULL, pin, "gpt-test", o);

    s->root = *root;
    return s;
}
#else
static struct sess *new_sess(struct rtp *p, const char *pin, const struct sess_owner *o,
                             const struct hash *root)
{
    return sess__new(p, NULL, pin, "gpt-test", o, root);
}
#endif

#define NPINS 50

struct bench {
    struct event_base *base;
    struct broker *b;
    struct sess_owner owner;
    struct hash *heads; /* head of the k-th session made, at k % cap */
    const char **pins;  /* and its pin (NULL: none) */
    size_t cap, made;
    uint64_t rng, clock_ms;
    int stopped;
};

static uint64_t next_rand(struct bench *x)
{
    return xorshift64(&x->rng);
}

static struct hash rand_hash(struct bench *x)
{
    struct hash h;

    for (int i = 0; i < HASH_LEN; i += 8) {
        uint64_t r = next_rand(x);
        memcpy(h.b + i, &r, 8);
    }
    return h;
}

static const char *const PINS[NPINS] = {
    "user-0",  "user-1",  "user-2",  "user-3",  "user-4",  "user-5",  "user-6",  "user-7",
    "user-8",  "user-9",  "user-10", "user-11", "user-12", "user-13", "user-14", "user-15",
    "user-16", "user-17", "user-18", "user-19", "user-20", "user-21", "user-22", "user-23",
    "user-24", "user-25", "user-26", "user-27", "user-28", "user-29", "user-30", "user-31",
    "user-32", "user-33", "user-34", "user-35", "user-36", "user-37", "user-38", "user-39",
    "user-40", "user-41", "user-42", "user-43", "user-44", "user-45", "user-46", "user-47",
    "user-48", "user-49"};

/* The filler sessions' pins: a third pinned. */
static const char *pin_of(size_t k)
{
    return k % 3 ? NULL : PINS[k % NPINS];
}

/* A new session ends its turn idle, holding a fresh head (what sess_after_turn() does). */
static void end_turn(struct bench *x, struct sess *s, const char *pin)
{
    struct hash h = rand_hash(x);

    x->pins[x->made % x->cap] = pin;
    x->heads[x->made++ % x->cap] = h;
    sess__set_head(s, &h);
    sess__touch(s, ++x->clock_ms);
    sess__set_state(s, SS_IDLE);
}

/* The table's cost of a new conversation: the miss, the unpin, the eviction, the session. */
static struct sess *open_new(struct bench *x, const char *pin)
{
    struct hash miss = rand_hash(x), root = rand_hash(x);
    struct broker *b = x->b;

    if (sess__find(b, &miss, SS_IDLE, pin, &x->owner))
        abort();
    sess__unpin(b, pin, &root, &x->owner);
    sess__evict_for_new(b, x->owner.profile);
    return new_sess(&b->pool[0], pin, &x->owner, &root);
}

/* Sorts the n times t (ns) and prints "  <what> p50 … p99 … p99.9 … mean …" in ns (a find
 * takes less than report_times()'s tenth of a microsecond). */
static void report_ns(const char *what, double *t, int n)
{
    double sum = 0;

    for (int i = 0; i < n; i++)
        sum += t[i];
    qsort(t, (size_t)n, sizeof(*t), cmp_double);
    printf("  %-12s n=%d  p50 %6.0f ns  p99 %7.0f ns  p99.9 %7.0f ns  mean %6.0f ns\n", what, n,
           t[n / 2], t[(int)(n * 0.99)], t[(int)(n * 0.999)], sum / n);
}

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void run_size(struct bench *x, size_t n, int iter)
{
    struct broker *b = x->b;
    double *t = malloc(sizeof(double) * (size_t)iter);

    b->cfg.max_sessions = (int)n;
    while ((size_t)b->st.sessions_live < n) {
        struct hash root = rand_hash(x);

        end_turn(x, new_sess(&b->pool[0], pin_of(x->made), &x->owner, &root), pin_of(x->made));
    }
    printf("%zu idle sessions (cap %d):\n", n, b->cfg.max_sessions);

    for (int i = 0; i < iter; i++) {
        size_t k = x->made - 1 - (size_t)(next_rand(x) % n); /* a live one */
        const char *pin = x->pins[k % x->cap];
        double t0 = now_ns();
        struct sess *s = sess__find(b, &x->heads[k % x->cap], SS_IDLE, pin, &x->owner);

        t[i] = now_ns() - t0;
        if (!s)
            abort();
    }
    report_ns("find hit", t, iter);

    for (int i = 0; i < iter; i++) {
        struct hash h = rand_hash(x);
        double t0 = now_ns();
        struct sess *s = sess__find(b, &h, SS_IDLE, NULL, &x->owner);

        t[i] = now_ns() - t0;
        if (s)
            abort();
    }
    report_ns("find miss", t, iter);

    for (int pinned = 0; pinned < 2; pinned++) {
        for (int i = 0; i < iter; i++) {
            const char *pin = pinned ? PINS[7] : NULL;
            double t0 = now_ns();
            struct sess *s = open_new(x, pin);

            t[i] = now_ns() - t0;
            end_turn(x, s, pin);
        }
        report_ns(pinned ? "open pinned" : "open", t, iter);
    }
    if ((size_t)b->st.sessions_live != n)
        abort();
    free(t);
}

static void on_stopped(void *ud)
{
    ((struct bench *)ud)->stopped = 1;
}

static void loop_until(struct bench *x, int (*cond)(struct bench *x))
{
    while (!cond(x))
        event_base_loop(x->base, EVLOOP_ONCE);
}

static int is_ready(struct bench *x)
{
    return broker_ready(x->b, NULL);
}

static int is_stopped(struct bench *x)
{
    return x->stopped;
}

int main(int argc, char **argv)
{
    int iter = argc > 1 ? atoi(argv[1]) : 2000;
    const char *sizes = argc > 2 ? argv[2] : "10,300,1000";
    const char *fake = getenv("FAKE_RUNTIME");
    char dir[] = "/tmp/gw-bench-sessions-XXXXXX", home[128], work[128], path[PATH_MAX];
    char cmd[128];
    struct broker_config cfg;
    struct bench x;

    memset(&x, 0, sizeof(x));
    log_level_current = LOG_OFF;
    if (!realpath(fake && *fake ? fake : "tests/fake/fakeruntime.mjs", path) || !mkdtemp(dir)) {
        fprintf(stderr, "sessions: run from the repository root (or set FAKE_RUNTIME)\n");
        return 1;
    }
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(work, sizeof(work), "%s/work", dir);
    memset(&cfg, 0, sizeof(cfg));
    cfg.rt.path = path;
    cfg.rt.home = home;
    cfg.provider.url = "http://127.0.0.1:9/v1"; /* BYOK: no sign-in; never called */
    cfg.provider.type = "openai";
    cfg.warmup_url = "http://127.0.0.1:9/warmup/v1";
    cfg.warmup_key = "warm";
    cfg.workdir = work;
    cfg.pool_size = 1;
    x.base = event_base_new();
    x.b = broker_new(x.base, &cfg);
    if (broker_start(x.b)) {
        fprintf(stderr, "sessions: cannot start the runtime\n");
        return 1;
    }
    loop_until(&x, is_ready);
    sess_owner_set(&x.owner, "bench", NULL, NULL);
    x.rng = 0x2545f4914f6cdd1dull;
    x.clock_ms = util_now_ms();
    x.cap = 1u << 16; /* more than any N */
    x.heads = calloc(x.cap, sizeof(*x.heads));
    x.pins = calloc(x.cap, sizeof(*x.pins));

    for (const char *p = sizes; *p;) {
        char *end;
        unsigned long n = strtoul(p, &end, 10);

        if (end == p || n == 0 || n >= x.cap) {
            fprintf(stderr, "sessions: bad SIZES '%s'\n", sizes);
            return 2;
        }
        run_size(&x, n, iter);
        p = *end == ',' ? end + 1 : end;
    }

    broker_stop(x.b, on_stopped, &x);
    loop_until(&x, is_stopped);
    broker_free(x.b);
    event_base_free(x.base);
    sess_owner_release(&x.owner);
    free(x.heads);
    free(x.pins);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) != 0;
}
