/* Per-key rate limits, concurrency and credit budgets: token buckets, a hash table, an LRU. */
#include "limits/limits.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define MS_MINUTE 60000LL
#define MS_DAY 86400000LL
/* One token (or request) is UNIT units: a bucket of rate L refills L units a millisecond. */
#define UNIT MS_MINUTE
/* Debt stops growing here (about 3.8e13 tokens), far from overflow. */
#define USED_CAP (INT64_MAX / 4)
#define SWEEP_PER_ADMIT 2
#define BUCKETS_MIN 64
#define REHASH_STEP 4 /* buckets moved per insert or admit while the table grows */
#define CONCURRENCY_RETRY_MS 1000

enum period { PERIOD_TOTAL, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH };

static const char *const PERIOD_NAMES[] = {"total", "day", "week", "month"};

/* One key's counters. */
struct key {
    struct key *next;                /* hash chain */
    struct key *lru_prev, *lru_next; /* most recently touched first */
    uint64_t hash;
    int64_t touched_ms;         /* last admit, done or sweep look */
    int64_t at_ms;              /* when used_req and used_tok were last refilled */
    int64_t used_req, used_tok; /* units taken from each bucket (may exceed the bucket) */
    int64_t rpm, tpm;           /* the rates of the last spec, to refill at limits_done() */
    int64_t period_start;       /* of the budget period spent belongs to */
    double spent;               /* credits spent in that period */
    int32_t in_flight;
    uint8_t period;     /* enum period of the last spec */
    uint8_t has_budget; /* the last spec (or a seed) had a budget */
    char id[];
};

/* A chained hash table's bucket array. */
struct table {
    struct key **b;
    size_t n; /* a power of 2 */
};

/*
 * Keys live in t[0]; while it grows (redis' incremental rehash) new keys go to t[1], twice
 * its size, and each insert or admit moves REHASH_STEP buckets of t[0] over, so no call
 * pays for moving them all.  moved: the buckets of t[0] below it are empty.
 */
struct limits {
    struct table t[2]; /* t[1].b is NULL when not growing */
    size_t moved;
    size_t count;
    struct key lru; /* sentinel: lru.lru_next is the newest, lru.lru_prev the oldest */
};

/* ---- time ------------------------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = floor_div(y, 400);
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The date of a day number (the inverse of days_from_civil). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = floor_div(z, 146097);
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 0 and *out set, or -1 for a name that is not a period. */
static int period_parse(const char *name, enum period *out)
{
    if (!name) {
        *out = PERIOD_TOTAL;
        return 0;
    }
    for (int p = PERIOD_DAY; p <= PERIOD_MONTH; p++) {
        if (strcmp(name, PERIOD_NAMES[p]) == 0) {
            *out = (enum period)p;
            return 0;
        }
    }
    return -1;
}

/* The start of the period containing now; next: of the one after it. */
static int64_t period_bound(enum period p, int64_t now_ms, int next)
{
    int64_t days = floor_div(now_ms, MS_DAY), y;
    int m, d;

    switch (p) {
    case PERIOD_DAY:
        return (days + next) * MS_DAY;
    case PERIOD_WEEK:
        /* 1970-01-01 was a Thursday: 3 days after a Monday. */
        days -= (days + 3) - floor_div(days + 3, 7) * 7;
        return (days + 7 * next) * MS_DAY;
    case PERIOD_MONTH:
        civil_from_days(days, &y, &m, &d);
        if (next && ++m > 12) {
            m = 1;
            y++;
        }
        return days_from_civil(y, m, 1) * MS_DAY;
    case PERIOD_TOTAL:
    default:
        return next ? INT64_MAX : INT64_MIN;
    }
}

int64_t limits_period_start(const char *period, int64_t now_ms)
{
    enum period p;

    return period_parse(period, &p) ? -1 : period_bound(p, now_ms, 0);
}

int64_t limits_period_next(const char *period, int64_t now_ms)
{
    enum period p;

    return period_parse(period, &p) ? -1 : period_bound(p, now_ms, 1);
}

/* ---- buckets ---------------------------------------------------------------------------- */

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a <= 0 ? 0 : (a - 1) / b + 1;
}

/* used after rate units a millisecond flowed back for elapsed ms (never below 0). */
static int64_t refill(int64_t used, int64_t rate, int64_t elapsed)
{
    if (rate <= 0 || used <= 0)
        return 0;
    if (elapsed >= used / rate + 1)
        return 0;
    return used - elapsed * rate;
}

/* Brings both buckets to now with the rates they were filling at. */
static void key_refill(struct key *k, int64_t now_ms)
{
    int64_t elapsed = now_ms - k->at_ms;

    if (elapsed <= 0)
        return;
    k->used_req = refill(k->used_req, k->rpm, elapsed);
    k->used_tok = refill(k->used_tok, k->tpm, elapsed);
    k->at_ms = now_ms;
}

static int64_t take(int64_t used, int64_t n)
{
    if (n <= 0)
        return used;
    if (n > (USED_CAP - used) / UNIT)
        return USED_CAP;
    return used + n * UNIT;
}

/* Whole units left in a bucket of limit L: [0, L]. */
static int64_t remaining(int64_t used, int64_t limit)
{
    int64_t r = limit - ceil_div(used, UNIT);

    return r < 0 ? 0 : r;
}

/* Milliseconds until need units fit in a bucket of limit L (need <= L). */
static int64_t wait_for(int64_t used, int64_t limit, int64_t need)
{
    return ceil_div(used - (limit - need) * UNIT, limit);
}

/* Rolls the budget over when now is past the period spent belongs to. */
static void key_roll(struct key *k, int64_t now_ms)
{
    int64_t start = period_bound((enum period)k->period, now_ms, 0);

    if (start > k->period_start) {
        k->period_start = start;
        k->spent = 0;
    }
}

/* ---- the table -------------------------------------------------------------------------- */

static uint64_t hash_id(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ULL;
    const char *p = s;

    for (; *p; p++) {
        h ^= (unsigned char)*p;
        h *= 1099511628211ULL;
    }
    *len = (size_t)(p - s);
    return h;
}

static void lru_unlink(struct key *k)
{
    k->lru_prev->lru_next = k->lru_next;
    k->lru_next->lru_prev = k->lru_prev;
}

static void lru_push_front(struct limits *l, struct key *k)
{
    k->lru_prev = &l->lru;
    k->lru_next = l->lru.lru_next;
    l->lru.lru_next->lru_prev = k;
    l->lru.lru_next = k;
}

static void touch(struct limits *l, struct key *k, int64_t now_ms)
{
    if (now_ms > k->touched_ms)
        k->touched_ms = now_ms;
    if (l->lru.lru_next != k) {
        lru_unlink(k);
        lru_push_front(l, k);
    }
}

struct limits *limits_new(void)
{
    struct limits *l = xcalloc(1, sizeof(*l));

    l->t[0].n = BUCKETS_MIN;
    l->t[0].b = xcalloc(l->t[0].n, sizeof(*l->t[0].b));
    l->lru.lru_next = l->lru.lru_prev = &l->lru;
    return l;
}

void limits_free(struct limits *l)
{
    struct key *k, *next;

    if (!l)
        return;
    for (k = l->lru.lru_next; k != &l->lru; k = next) {
        next = k->lru_next;
        free(k);
    }
    free(l->t[0].b);
    free(l->t[1].b);
    free(l);
}

size_t limits_count(const struct limits *l)
{
    return l->count;
}

static struct key **slot(const struct table *t, uint64_t h)
{
    return &t->b[h & (t->n - 1)];
}

static struct key *find(const struct limits *l, const char *id, uint64_t h)
{
    for (int i = 0; i < 2 && l->t[i].b; i++)
        for (struct key *k = *slot(&l->t[i], h); k; k = k->next)
            if (k->hash == h && strcmp(k->id, id) == 0)
                return k;
    return NULL;
}

/* Moves up to REHASH_STEP buckets (looking at no more than 10 times as many empty ones). */
static void rehash_step(struct limits *l)
{
    struct table *from = &l->t[0], *to = &l->t[1];

    for (int moved = 0, looked = 0; to->b && moved < REHASH_STEP && looked < 10 * REHASH_STEP;
         looked++) {
        struct key *k = from->b[l->moved], *next;
        for (; k; k = next) {
            next = k->next;
            k->next = *slot(to, k->hash);
            *slot(to, k->hash) = k;
        }
        moved += from->b[l->moved] != NULL;
        from->b[l->moved] = NULL;
        if (++l->moved == from->n) {
            free(from->b);
            *from = *to;
            *to = (struct table){0};
            l->moved = 0;
        }
    }
}

/* A fresh key (full buckets, nothing spent), in the table and at the front of the list. */
static struct key *insert(struct limits *l, const char *id, size_t len, uint64_t h, int64_t now_ms)
{
    struct key *k = xcalloc(1, sizeof(*k) + len + 1);
    struct table *t;

    memcpy(k->id, id, len + 1);
    k->hash = h;
    k->touched_ms = k->at_ms = now_ms;
    k->period_start = INT64_MIN;
    if (!l->t[1].b && l->count >= l->t[0].n) {
        l->t[1].n = l->t[0].n * 2;
        l->t[1].b = xcalloc(l->t[1].n, sizeof(*l->t[1].b));
        l->moved = 0;
    }
    rehash_step(l);
    t = l->t[1].b ? &l->t[1] : &l->t[0];
    k->next = *slot(t, h);
    *slot(t, h) = k;
    lru_push_front(l, k);
    l->count++;
    return k;
}

/* Takes k out of the chain at *pp: 1, or 0 if it is not there. */
static int unchain(struct key **pp, const struct key *k)
{
    for (; *pp; pp = &(*pp)->next) {
        if (*pp == k) {
            *pp = k->next;
            return 1;
        }
    }
    return 0;
}

static void drop(struct limits *l, struct key *k)
{
    /* Its bucket of t[0] may have moved to t[1] already. */
    if (!unchain(slot(&l->t[0], k->hash), k)) {
        int found = l->t[1].b && unchain(slot(&l->t[1], k->hash), k);
        assert(found);
        (void)found;
    }
    lru_unlink(k);
    l->count--;
    free(k);
}

/* Would a fresh key decide everything as k does from now on? */
static int forgettable(struct key *k, int64_t now_ms)
{
    key_refill(k, now_ms);
    key_roll(k, now_ms);
    return k->in_flight == 0 && k->used_req == 0 && k->used_tok == 0 &&
           (!k->has_budget || k->spent == 0);
}

/* Looks at the least recently touched keys: drops the forgettable idle ones. */
static void sweep(struct limits *l, int64_t now_ms)
{
    for (int i = 0; i < SWEEP_PER_ADMIT; i++) {
        struct key *k = l->lru.lru_prev;
        if (k == &l->lru || now_ms - k->touched_ms < LIMITS_IDLE_MS)
            return;
        if (forgettable(k, now_ms))
            drop(l, k);
        else
            touch(l, k, now_ms);
    }
}

/* The key called id, 0; or GW_EINVAL for a NULL, empty or over-long id. */
static int lookup(struct limits *l, const char *id, int create, int64_t now_ms, struct key **out)
{
    size_t len;
    uint64_t h;

    *out = NULL;
    if (!id || !*id)
        return GW_EINVAL;
    h = hash_id(id, &len);
    if (len > LIMITS_ID_MAX)
        return GW_EINVAL;
    *out = find(l, id, h);
    if (!*out && create)
        *out = insert(l, id, len, h, now_ms);
    return 0;
}

/* ---- admission -------------------------------------------------------------------------- */

int limits_spec_check(const struct limit_spec *spec, struct gw_err *err)
{
    enum period p;

    if (!spec)
        return gw_err_set(err, GW_EINVAL, "no limits given");
    if (spec->rpm < 0 || spec->rpm > LIMITS_RATE_MAX)
        return gw_err_param(err, GW_EINVAL, "rpm", "rpm must be 0 (no limit) to %lld",
                            LIMITS_RATE_MAX);
    if (spec->tpm < 0 || spec->tpm > LIMITS_RATE_MAX)
        return gw_err_param(err, GW_EINVAL, "tpm", "tpm must be 0 (no limit) to %lld",
                            LIMITS_RATE_MAX);
    if (spec->max_concurrent < 0 || spec->max_concurrent > INT32_MAX)
        return gw_err_param(err, GW_EINVAL, "max_concurrent",
                            "max_concurrent must be 0 (no limit) to %d", INT32_MAX);
    if (!isfinite(spec->budget_credits) || spec->budget_credits < 0)
        return gw_err_param(err, GW_EINVAL, "budget_credits",
                            "budget_credits must be a number >= 0 (0: no limit)");
    if (period_parse(spec->budget_period, &p))
        return gw_err_param(err, GW_EINVAL, "budget_period",
                            "budget_period must be day, week or month");
    return 0;
}

/* A refusal of `which` that passes in wait ms (-1: never): kept if it waits longest so far. */
static void refuse(struct limit_verdict *v, const char *which, int64_t wait)
{
    if (v->which && (v->retry_after_ms < 0 || (wait >= 0 && wait <= v->retry_after_ms)))
        return;
    v->which = which;
    v->retry_after_ms = wait;
}

/* Checks every limit against k's counters as they are at now; fills the verdict. */
static void decide(const struct key *k, const struct limit_spec *spec, int64_t now_ms,
                   int64_t need_tok, struct limit_verdict *v)
{
    if (spec->rpm > 0) {
        v->limit_requests = spec->rpm;
        v->remaining_requests = remaining(k->used_req, spec->rpm);
        if (v->remaining_requests < 1)
            refuse(v, "requests", wait_for(k->used_req, spec->rpm, 1));
    }
    if (spec->tpm > 0) {
        v->limit_tokens = spec->tpm;
        v->remaining_tokens = remaining(k->used_tok, spec->tpm);
        if (need_tok > spec->tpm) {
            v->too_large = 1;
            refuse(v, "tokens", -1);
        } else if (k->used_tok > (spec->tpm - need_tok) * UNIT) {
            refuse(v, "tokens", wait_for(k->used_tok, spec->tpm, need_tok));
        }
    }
    v->limit_concurrent = spec->max_concurrent;
    v->in_flight = k->in_flight;
    if (spec->max_concurrent > 0 && k->in_flight >= spec->max_concurrent)
        refuse(v, "concurrency", CONCURRENCY_RETRY_MS);
    if (spec->budget_credits > 0) {
        v->limit_budget = spec->budget_credits;
        v->budget_period = PERIOD_NAMES[k->period];
        v->budget_left = spec->budget_credits - k->spent;
        if (v->budget_left < 0)
            v->budget_left = 0;
        if (k->spent >= spec->budget_credits) {
            int64_t next = period_bound((enum period)k->period, now_ms, 1);
            refuse(v, "budget", next == INT64_MAX ? -1 : next - now_ms);
        }
    } else {
        v->budget_left = -1;
    }
    /* A request that can never pass gets no wait to come back after. */
    if (v->retry_after_ms < 0)
        v->retry_after_ms = 0;
}

/* Takes the spec's rates and period into k (refilled to now with the old ones). */
static void key_adopt(struct key *k, const struct limit_spec *spec, enum period p, int64_t now_ms)
{
    key_refill(k, now_ms);
    if (spec->rpm != k->rpm)
        k->used_req = spec->rpm > 0 ? k->used_req : 0;
    if (spec->tpm != k->tpm)
        k->used_tok = spec->tpm > 0 ? k->used_tok : 0;
    k->rpm = spec->rpm;
    k->tpm = spec->tpm;
    if (p != k->period) {
        /* What was spent stays counted: the caller re-seeds after changing a period. */
        k->period = (uint8_t)p;
        k->period_start = period_bound(p, now_ms, 0);
    }
    k->has_budget = spec->budget_credits > 0;
    key_roll(k, now_ms);
}

int limits_admit(struct limits *l, const char *key_id, const struct limit_spec *spec,
                 int64_t now_ms, int64_t est_tokens, struct limit_verdict *out)
{
    struct key *k;
    enum period p = PERIOD_TOTAL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (limits_spec_check(spec, NULL))
        return GW_EINVAL;
    (void)period_parse(spec->budget_period, &p);
    rehash_step(l);
    sweep(l, now_ms);
    if ((rc = lookup(l, key_id, 1, now_ms, &k)) != 0)
        return rc;
    touch(l, k, now_ms);
    key_adopt(k, spec, p, now_ms);
    decide(k, spec, now_ms, est_tokens > 1 ? est_tokens : 1, out);
    if (out->which)
        goto out;
    out->ok = 1;
    if (spec->rpm > 0) {
        k->used_req = take(k->used_req, 1);
        out->remaining_requests = remaining(k->used_req, spec->rpm);
    }
    k->in_flight++;
    out->in_flight = k->in_flight;
out:
    if (spec->rpm > 0)
        out->reset_requests_ms = ceil_div(k->used_req, spec->rpm);
    if (spec->tpm > 0)
        out->reset_tokens_ms = ceil_div(k->used_tok, spec->tpm);
    return 0;
}

void limits_done(struct limits *l, const char *key_id, int64_t now_ms, int64_t tokens,
                 double credits)
{
    struct key *k;

    if (lookup(l, key_id, 0, now_ms, &k) || !k)
        return;
    touch(l, k, now_ms);
    if (k->in_flight > 0)
        k->in_flight--;
    key_refill(k, now_ms);
    if (k->tpm > 0)
        k->used_tok = take(k->used_tok, tokens);
    key_roll(k, now_ms);
    if (credits > 0 && isfinite(credits))
        k->spent += credits;
}

void limits_seed_budget(struct limits *l, const char *key_id, const char *period, int64_t now_ms,
                        double spent)
{
    struct key *k;
    enum period p;

    if (period_parse(period, &p) || lookup(l, key_id, 1, now_ms, &k))
        return;
    touch(l, k, now_ms);
    k->period = (uint8_t)p;
    k->period_start = period_bound(p, now_ms, 0);
    k->spent = spent > 0 && isfinite(spent) ? spent : 0;
    k->has_budget = 1;
}

/* ---- replies ---------------------------------------------------------------------------- */

/* ms as OpenAI writes a duration (Go's time.Duration to the millisecond): "120ms", "6m0s". */
static void fmt_duration(int64_t ms, char *out, size_t n)
{
    int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, f = ms % 1000;
    size_t len = 0;

    if (ms <= 0) {
        snprintf(out, n, "0s");
        return;
    }
    if (ms < 1000) {
        snprintf(out, n, "%lldms", (long long)ms);
        return;
    }
    if (h)
        len += (size_t)snprintf(out + len, n - len, "%lldh", (long long)h);
    if (h || m)
        len += (size_t)snprintf(out + len, n - len, "%lldm", (long long)m);
    len += (size_t)snprintf(out + len, n - len, "%lld", (long long)s);
    if (f) {
        char frac[8];
        int end = snprintf(frac, sizeof(frac), "%03lld", (long long)f);
        while (end > 0 && frac[end - 1] == '0')
            frac[--end] = '\0';
        len += (size_t)snprintf(out + len, n - len, ".%s", frac);
    }
    snprintf(out + len, n - len, "s");
}

/* "2026-12-05T10:00:01Z": ms rounded up to the second. */
static void fmt_rfc3339(int64_t ms, char *out, size_t n)
{
    int64_t secs = floor_div(ms + 999, 1000), days = floor_div(secs, 86400), y;
    int64_t sod = secs - days * 86400;
    int m, d;

    civil_from_days(days, &y, &m, &d);
    snprintf(out, n, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(sod / 3600),
             (int)(sod / 60 % 60), (int)(sod % 60));
}

static void add(struct limits_headers *out, const char *name, const char *fmt, long long v)
{
    if (out->n >= LIMITS_HDR_MAX)
        return;
    out->h[out->n].name = name;
    snprintf(out->h[out->n].value, sizeof(out->h[out->n].value), fmt, v);
    out->n++;
}

static void add_reset(struct limits_headers *out, const char *name, enum limits_dialect d,
                      int64_t now_ms, int64_t reset_ms)
{
    if (out->n >= LIMITS_HDR_MAX)
        return;
    out->h[out->n].name = name;
    if (d == LIMITS_ANTHROPIC)
        fmt_rfc3339(now_ms + reset_ms, out->h[out->n].value, sizeof(out->h[out->n].value));
    else
        fmt_duration(reset_ms, out->h[out->n].value, sizeof(out->h[out->n].value));
    out->n++;
}

static const char *const HDR[2][2][3] = {
    [LIMITS_OPENAI] = {{"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
                        "x-ratelimit-reset-requests"},
                       {"x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
                        "x-ratelimit-reset-tokens"}},
    [LIMITS_ANTHROPIC] = {{"anthropic-ratelimit-requests-limit",
                           "anthropic-ratelimit-requests-remaining",
                           "anthropic-ratelimit-requests-reset"},
                          {"anthropic-ratelimit-tokens-limit",
                           "anthropic-ratelimit-tokens-remaining",
                           "anthropic-ratelimit-tokens-reset"}},
};

static int64_t retry_after_s(const struct limit_verdict *v)
{
    return v->ok ? 0 : ceil_div(v->retry_after_ms, 1000);
}

void limits_headers(const struct limit_verdict *v, enum limits_dialect d, int64_t now_ms,
                    unsigned flags, struct limits_headers *out)
{
    const char *const(*names)[3] = HDR[d == LIMITS_ANTHROPIC ? LIMITS_ANTHROPIC : LIMITS_OPENAI];

    out->n = 0;
    if (v->limit_requests > 0) {
        add(out, names[0][0], "%lld", v->limit_requests);
        add(out, names[0][1], "%lld", v->remaining_requests);
        add_reset(out, names[0][2], d, now_ms, v->reset_requests_ms);
    }
    if (v->limit_tokens > 0) {
        add(out, names[1][0], "%lld", v->limit_tokens);
        add(out, names[1][1], "%lld", v->remaining_tokens);
        add_reset(out, names[1][2], d, now_ms, v->reset_tokens_ms);
    }
    if ((flags & LIMITS_HDR_RETRY_AFTER) && retry_after_s(v) > 0)
        add(out, "Retry-After", "%lld", retry_after_s(v));
}

int limits_verdict_err(const struct limit_verdict *v, struct gw_err *err)
{
    const char *which = v->which ? v->which : "";

    if (v->too_large)
        gw_err_set(err, GW_ERATELIMIT,
                   "request too large: its input exceeds the key's limit of %lld tokens per "
                   "minute",
                   (long long)v->limit_tokens);
    else if (strcmp(which, "requests") == 0)
        gw_err_set(err, GW_ERATELIMIT, "rate limit reached: %lld requests per minute",
                   (long long)v->limit_requests);
    else if (strcmp(which, "tokens") == 0)
        gw_err_set(err, GW_ERATELIMIT, "rate limit reached: %lld tokens per minute",
                   (long long)v->limit_tokens);
    else if (strcmp(which, "concurrency") == 0)
        gw_err_set(err, GW_ERATELIMIT, "too many concurrent requests: at most %lld at once",
                   (long long)v->limit_concurrent);
    else if (strcmp(which, "budget") == 0 && strcmp(v->budget_period, "total") == 0)
        gw_err_set(err, GW_ERATELIMIT, "credit budget spent: %g credits", v->limit_budget);
    else if (strcmp(which, "budget") == 0)
        gw_err_set(err, GW_ERATELIMIT, "credit budget spent: %g credits per %s", v->limit_budget,
                   v->budget_period);
    else
        gw_err_set(err, GW_ERATELIMIT, "rate limit reached");
    if (err) {
        err->retry_after = (int)(retry_after_s(v) < INT32_MAX ? retry_after_s(v) : INT32_MAX);
        snprintf(err->api_code, sizeof(err->api_code), "%s",
                 strcmp(which, "budget") == 0 ? "insufficient_quota" : "rate_limit_exceeded");
    }
    return GW_ERATELIMIT;
}
