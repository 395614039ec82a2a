/*
 * limits/limits.h - per-key rate limits, concurrency and credit budgets:
 * may this request of a virtual API key start now?
 *
 * The limiter keeps, for every key id it has seen, a few counters and decides
 * from them and the key's struct limit_spec.  It does no I/O and never reads
 * the clock: every call is given the time (unix milliseconds, UTC), so tests
 * control it and one request's calls see one consistent time.
 *
 * Limits (a 0 in a spec field means "no limit" for that field):
 *   rpm             requests per minute;
 *   tpm             tokens per minute: a request is admitted while its
 *                   estimated input tokens fit what the key has left; what
 *                   it really used (input + output) is charged when it ends;
 *   max_concurrent  requests of the key in flight at once;
 *   budget_credits  credits spent per budget period ("day", "week", "month",
 *                   UTC; NULL: a lifetime budget that never resets).
 * A refused request costs nothing: it is not counted, takes no slot.  Call
 * limits_admit() before any expensive work, and limits_done() exactly once
 * for every admitted request, however it ended.
 *
 * Rates: a token bucket per limit (GCRA's arithmetic, in integers).  A
 * bucket holds L units (L = rpm or tpm) and refills continuously at L units
 * a minute; a request takes 1 unit of the request bucket, its real tokens
 * are taken from the token bucket when it ends, which may leave it in debt
 * (below empty): the key is then refused until the debt is refilled.  Why:
 * it is exact (integer units of 1/60000 token, no float drift), O(1), 24
 * bytes of state for both rates, gives an exact Retry-After, handles
 * charges of any size that arrive after the fact, and its "time until full"
 * is what OpenAI's x-ratelimit-reset-* and Anthropic's *-reset headers mean.
 *   Tolerance: the long-run rate never exceeds L a minute; a key that has
 *   been idle a full minute may burst L at once.  So in any window of w ms
 *   at most L + floor(w * L / 60000) requests are admitted, which for one
 *   sliding minute [t, t + 60 s) is at most 2L - 1, and only right after an
 *   idle minute; a client that keeps sending gets at most L (+1 for
 *   rounding) per sliding minute (tests/unit/limits: test_tolerance).  The
 *   same holds for tokens charged, plus the tokens of the requests in flight
 *   (they are admitted on an estimate and charged at their end).
 *
 * Concurrency: limits_admit() takes a slot, limits_done() frees it; the
 * count never goes negative, so a done without an admit is harmless.
 *
 * Budget: a request is refused while spent >= budget_credits in the current
 * period; limits_done() adds its credits to the period containing its end.
 * Spending can therefore exceed the budget by at most the credits of the
 * requests in flight when it was reached.  A new period starts at 0 by
 * itself (the clock passes its start); limits_seed_budget() loads what was
 * already spent (from the store, at start).
 *
 * Memory: keys are found by id in a hash table (chained, FNV-1a, doubled
 * when it holds more keys than buckets, incrementally: each insert or admit
 * moves a few buckets, so no call rehashes the whole table; never shrunk).  Ids come from the
 * key store after authentication, never straight from a client, so the
 * table is not exposed to hash flooding.  A key is dropped when it has been
 * untouched for LIMITS_IDLE_MS and dropping it changes no decision: nothing
 * in flight, both buckets full, nothing spent in its current budget period.
 * Each limits_admit() looks at the two least recently touched keys (an LRU
 * list): it drops them if so, or moves them to the front to look again
 * LIMITS_IDLE_MS later.  Memory is thus bounded by the keys active in the
 * last LIMITS_IDLE_MS plus the keys holding budget spending, at about
 * 130 bytes + the id per key.  A dropped key that comes back starts full.
 *
 * Ownership: limits_new() returns an owned table; free with limits_free().
 *   Specs and key ids are borrowed during a call (ids are copied).  A
 *   verdict's strings are static.
 * Threading: not thread-safe; one thread (the event loop) calls everything.
 * Errors: limits_admit() and limits_spec_check() return 0 or GW_EINVAL (a
 *   NULL or over-long key id, a negative field, an unknown period, a rate
 *   above LIMITS_RATE_MAX); the rest cannot fail (allocation aborts).
 * Time: a clock that goes backwards is taken as no time passing.
 */
#ifndef GW_LIMITS_LIMITS_H
#define GW_LIMITS_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define LIMITS_IDLE_MS (10 * 60 * 1000) /* a key untouched this long may be dropped */
#define LIMITS_ID_MAX 128               /* longest key id, bytes */
#define LIMITS_RATE_MAX 1000000000000LL /* largest rpm / tpm: 1e12 */

struct limits; /* all keys' counters */

struct limit_spec {
    int64_t rpm;               /* requests per minute; 0: no limit */
    int64_t tpm;               /* tokens per minute; 0: no limit */
    int64_t max_concurrent;    /* requests in flight; 0: no limit */
    double budget_credits;     /* credits per period; 0: no limit */
    const char *budget_period; /* "day" | "week" | "month" (UTC) | NULL: never resets */
};

/* What limits_admit() decided, and what the reply's headers say. */
struct limit_verdict {
    int ok;                 /* 1: admitted (counted, holds a slot); 0: refused */
    const char *which;      /* when refused: "requests" | "tokens" | "concurrency" | "budget";
                             * NULL when admitted */
    int too_large;          /* refused because est_tokens > tpm: it can never pass (OpenAI's
                             * "request too large"); retry_after_ms is then 0 */
    int64_t retry_after_ms; /* when refused: how long until this limit lets it pass (the
                             * longest of the refusing limits; concurrency: 1000, a guess, as a
                             * slot frees when a request ends); 0 when unknown or never */
    /* For the headers, every time (admitted or not); a limit of 0 = none (then its
     * remaining and reset are 0).  remaining_* is after this request when admitted. */
    int64_t limit_requests, remaining_requests, reset_requests_ms; /* reset: until full */
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
    int64_t limit_concurrent, in_flight; /* in_flight: including this request if admitted */
    double limit_budget;                 /* the spec's budget_credits (0: none) */
    double budget_left;        /* limit_budget - spent this period, >= 0; -1 when no budget */
    const char *budget_period; /* "day" | "week" | "month" | "total" (NULL period); NULL when
                                * no budget */
};

/* An empty table.  Never NULL (allocation aborts). */
struct limits *limits_new(void);

/* Frees the table and every key's counters.  NULL-safe. */
void limits_free(struct limits *l);

/* 0 if spec is valid, else GW_EINVAL with err saying which field (for the admin API). */
int limits_spec_check(const struct limit_spec *spec, struct gw_err *err) WARN_UNUSED;

/*
 * Before a request of key key_id at now_ms: admits it or says which limit
 * refuses it, filling *out either way.  Admitting counts the request (rpm),
 * takes a concurrency slot, and checks est_tokens (the request's estimated
 * input tokens; at least 1 is assumed) against the tokens left without
 * charging them.  A refusal changes no counter.  The spec's rates and budget
 * period are remembered for limits_done().  Returns 0, or GW_EINVAL (with
 * nothing counted and *out zeroed) for a bad key id or spec.
 */
int limits_admit(struct limits *l, const char *key_id, const struct limit_spec *spec,
                 int64_t now_ms, int64_t est_tokens, struct limit_verdict *out) WARN_UNUSED;

/*
 * When an admitted request ends (answered, failed or cancelled): frees its
 * slot (if the key holds one), charges tokens (input + output actually used)
 * to the token bucket and credits to the budget of the period containing
 * now_ms.  Negative or NaN amounts count as 0.  Unknown key: does nothing.
 */
void limits_done(struct limits *l, const char *key_id, int64_t now_ms, int64_t tokens,
                 double credits);

/*
 * Sets what key_id has already spent in the budget period (of kind period,
 * as in struct limit_spec) containing now_ms, e.g. loaded from the store at
 * start; replaces what was counted.  Ignored for a bad id or period.  Call it
 * again when a key's budget_period changes: limits_admit() then keeps what
 * was counted (it cannot know the new period's spending).
 */
void limits_seed_budget(struct limits *l, const char *key_id, const char *period, int64_t now_ms,
                        double spent);

/*
 * The start (unix ms, UTC) of the budget period containing now_ms: "day"
 * 00:00 UTC, "week" Monday 00:00 UTC, "month" the 1st 00:00 UTC; NULL (a
 * lifetime budget): INT64_MIN.  -1 for an unknown period.
 */
int64_t limits_period_start(const char *period, int64_t now_ms);

/* The start of the next period (= the end of the current one); NULL: INT64_MAX; unknown: -1. */
int64_t limits_period_next(const char *period, int64_t now_ms);

/* Keys the table holds now (for metrics and tests). */
size_t limits_count(const struct limits *l);

/* ---- replies ---------------------------------------------------------------------------- */

enum limits_dialect {
    LIMITS_OPENAI,    /* x-ratelimit-{limit,remaining,reset}-{requests,tokens} */
    LIMITS_ANTHROPIC, /* anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset} */
};

enum limits_headers_flags {
    /* Also "Retry-After: <seconds, rounded up>" when refused with a known wait.  Leave it
     * out when the reply goes through http_reply_error() with err->retry_after set (as
     * limits_verdict_err() sets it): that adds Retry-After itself. */
    LIMITS_HDR_RETRY_AFTER = 1 << 0,
};

#define LIMITS_HDR_MAX 7

/* Headers for a reply: name (static) and value (NUL-terminated), in a fixed order. */
struct limits_headers {
    int n;
    struct {
        const char *name;
        char value[32];
    } h[LIMITS_HDR_MAX];
};

/*
 * The rate-limit headers of verdict v for a reply in dialect d, sent at
 * now_ms (Anthropic's resets are points in time), for admitted and refused
 * requests alike.  Requests and tokens each give limit, remaining and reset
 * when the key has that limit, none otherwise.  OpenAI's reset is a
 * duration as OpenAI writes them ("0s", "120ms", "1s", "1.5s", "6m0s",
 * "1h0m0s"); Anthropic's is RFC 3339 UTC, whole seconds rounded up
 * ("2026-12-05T10:00:01Z").  Add each h[i] with http_req_add_header().
 */
void limits_headers(const struct limit_verdict *v, enum limits_dialect d, int64_t now_ms,
                    unsigned flags, struct limits_headers *out);

/*
 * For a refused verdict, the error to reply with: GW_ERATELIMIT (429),
 * err->retry_after = retry_after_ms in seconds rounded up (0: none),
 * api_code "rate_limit_exceeded" ("insufficient_quota" for the budget), and
 * a message naming the limit ("rate limit reached: 60 requests per minute").
 * Returns the code, like gw_err_set().
 */
int limits_verdict_err(const struct limit_verdict *v, struct gw_err *err);

#endif
