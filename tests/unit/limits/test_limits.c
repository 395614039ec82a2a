/* Unit tests for limits/: each limit refuses at the right count, for the right time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "limits/limits.h"
#include "util/tstamp.h"

/* Unix ms of an RFC 3339 time, parsed by util/tstamp (not by the code under test). */
static int64_t at(const char *rfc3339)
{
    int64_t ms = 0;

    assert_int_equal(tstamp_parse(rfc3339, &ms), 0);
    return ms;
}

static const int64_t T0 = 1796464800000LL; /* 2026-12-05T10:00:00Z, a Saturday */

static struct limit_verdict admit(struct limits *l, const char *id, const struct limit_spec *s,
                                  int64_t now, int64_t est)
{
    struct limit_verdict v;

    assert_int_equal(limits_admit(l, id, s, now, est, &v), 0);
    return v;
}

/* Admits as many requests as it can at now (each ended at once, using no tokens). */
static int admit_all(struct limits *l, const char *id, const struct limit_spec *s, int64_t now)
{
    int n = 0;

    while (admit(l, id, s, now, 0).ok) {
        limits_done(l, id, now, 0, 0);
        n++;
        assert_true(n < 1000000);
    }
    return n;
}

/* The value of header name in h, or NULL. */
static const char *hdr(const struct limits_headers *h, const char *name)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->h[i].name, name) == 0)
            return h->h[i].value;
    return NULL;
}

/* ---- requests per minute ---------------------------------------------------------------- */

static void test_rpm(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 3};
    struct limit_verdict v;

    assert_int_equal(T0, at("2026-12-05T10:00:00Z"));
    for (int i = 0; i < 3; i++) {
        v = admit(l, "vk_a", &s, T0, 10);
        assert_true(v.ok);
        assert_null(v.which);
        assert_int_equal(v.limit_requests, 3);
        assert_int_equal(v.remaining_requests, 2 - i);
        /* Full again one minute per 3 requests after the last: 20 s a request. */
        assert_int_equal(v.reset_requests_ms, 20000 * (i + 1));
        limits_done(l, "vk_a", T0, 0, 0);
    }
    v = admit(l, "vk_a", &s, T0, 10);
    assert_false(v.ok);
    assert_string_equal(v.which, "requests");
    assert_false(v.too_large);
    assert_int_equal(v.retry_after_ms, 20000); /* one request refills in 60 s / 3 */
    assert_int_equal(v.remaining_requests, 0);
    assert_int_equal(v.reset_requests_ms, 60000);
    /* Refusals are not counted: hammering does not push the retry further. */
    for (int i = 0; i < 100; i++)
        assert_false(admit(l, "vk_a", &s, T0 + 19000, 10).ok);
    v = admit(l, "vk_a", &s, T0 + 19999, 10);
    assert_false(v.ok);
    assert_int_equal(v.retry_after_ms, 1);
    v = admit(l, "vk_a", &s, T0 + 20000, 10);
    assert_true(v.ok);
    assert_int_equal(v.remaining_requests, 0);
    assert_false(admit(l, "vk_a", &s, T0 + 20000, 10).ok);
    /* Another key is not affected. */
    assert_true(admit(l, "vk_b", &s, T0 + 20000, 10).ok);
    limits_free(l);
}

/* The window slides: 60 rpm is one request a second once the burst is spent. */
static void test_rpm_slides(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 60};

    assert_int_equal(admit_all(l, "k", &s, T0), 60);
    for (int sec = 1; sec <= 30; sec++) {
        assert_false(admit(l, "k", &s, T0 + sec * 1000 - 1, 0).ok);
        assert_int_equal(admit_all(l, "k", &s, T0 + sec * 1000), 1);
    }
    /* Idle for a minute after the last one: the whole burst again, never more. */
    assert_int_equal(admit_all(l, "k", &s, T0 + 30000 + 60000), 60);
    /* Half a minute later, half the bucket is back. */
    assert_int_equal(admit_all(l, "k", &s, T0 + 30000 + 90000), 30);
    limits_free(l);
}

/*
 * The tolerance the header states: a greedy client (trying every millisecond for 10
 * minutes) gets at most 2L - 1 in any sliding minute [t, t + 60 s), that only in the
 * first one (the initial burst), at most L + 1 in any later one, and L + 10 L in all.
 */
static void check_tolerance(int64_t L)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = L};
    const int64_t span = 10 * 60000;
    int *count = calloc((size_t)span, sizeof(int)); /* admitted at ms i */
    int64_t total = 0, worst = 0, worst_later = 0, win = 0;

    for (int64_t t = 0; t < span; t++) {
        count[t] = admit_all(l, "k", &s, T0 + t);
        total += count[t];
    }
    for (int64_t t = 0; t < span; t++) {
        /* win = admitted in [t - 59999, t] */
        win += count[t] - (t >= 60000 ? count[t - 60000] : 0);
        if (win > worst)
            worst = win;
        if (t >= 2 * 60000 - 1 && win > worst_later)
            worst_later = win;
    }
    assert_int_equal(worst, 2 * L - 1);
    assert_in_range(worst_later, L, L + 1);
    assert_true(total <= L + 10 * L);
    assert_true(total >= 10 * L);
    free(count);
    limits_free(l);
}

static void test_tolerance(void **state)
{
    check_tolerance(10);
    check_tolerance(7);   /* 60 s / 7 is not a whole number of ms */
    check_tolerance(600); /* 10 a second */
}

/* ---- tokens per minute ------------------------------------------------------------------ */

static void test_tpm(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.tpm = 1000};
    struct limit_verdict v;

    v = admit(l, "k", &s, T0, 400);
    assert_true(v.ok);
    assert_int_equal(v.limit_tokens, 1000);
    assert_int_equal(v.remaining_tokens, 1000); /* the estimate is not charged */
    assert_int_equal(v.reset_tokens_ms, 0);
    limits_done(l, "k", T0, 700, 0); /* real use: input + output */
    v = admit(l, "k", &s, T0, 400);
    assert_false(v.ok);
    assert_string_equal(v.which, "tokens");
    assert_int_equal(v.remaining_tokens, 300);
    /* 700 used, 400 wanted: 100 tokens must flow back, at 1000 a minute: 6 s. */
    assert_int_equal(v.retry_after_ms, 6000);
    assert_int_equal(v.reset_tokens_ms, 42000);
    assert_true(admit(l, "k", &s, T0, 300).ok); /* what is left still passes */
    limits_done(l, "k", T0, 0, 0);
    assert_false(admit(l, "k", &s, T0 + 5999, 400).ok);
    v = admit(l, "k", &s, T0 + 6000, 400);
    assert_true(v.ok);
    assert_int_equal(v.remaining_tokens, 400);
    /* A request that ends far over what was left leaves the key in debt. */
    limits_done(l, "k", T0 + 6000, 5000, 0);
    v = admit(l, "k", &s, T0 + 6000, 1);
    assert_false(v.ok);
    assert_int_equal(v.remaining_tokens, 0);
    /* used: 600 + 5000 = 5600; down to 999 takes 4601 tokens' time: 276060 ms. */
    assert_int_equal(v.retry_after_ms, 276060);
    assert_false(admit(l, "k", &s, T0 + 6000 + 276059, 1).ok);
    assert_true(admit(l, "k", &s, T0 + 6000 + 276060, 1).ok);
    limits_done(l, "k", T0 + 6000 + 276060, 0, 0);
    limits_free(l);
}

static void test_tpm_edges(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.tpm = 1000, .rpm = 100};
    struct limit_verdict v;

    /* Larger than the whole minute: never passes, so no Retry-After. */
    v = admit(l, "k", &s, T0, 1001);
    assert_false(v.ok);
    assert_string_equal(v.which, "tokens");
    assert_true(v.too_large);
    assert_int_equal(v.retry_after_ms, 0);
    assert_int_equal(v.remaining_requests, 100); /* not counted */
    assert_true(admit(l, "k", &s, T0, 1000).ok);
    limits_done(l, "k", T0, 1000, 0);
    /* An estimate of 0 (or less) still needs one token. */
    v = admit(l, "k", &s, T0, 0);
    assert_false(v.ok);
    assert_int_equal(v.retry_after_ms, 60);
    assert_false(admit(l, "k", &s, T0, -5).ok);
    assert_true(admit(l, "k", &s, T0 + 60, -5).ok);
    limits_done(l, "k", T0 + 60, -3, NAN); /* nonsense amounts count as 0 */
    assert_int_equal(admit(l, "k", &s, T0 + 60, 0).remaining_tokens, 1);
    /* Huge charges saturate instead of overflowing. */
    limits_done(l, "k", T0 + 60, INT64_MAX, 0);
    limits_done(l, "k", T0 + 60, INT64_MAX, 0);
    v = admit(l, "k", &s, T0 + 60, 1);
    assert_false(v.ok);
    assert_true(v.retry_after_ms > 0);
    limits_free(l);
}

/* ---- concurrency ------------------------------------------------------------------------ */

static void test_concurrency(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.max_concurrent = 2};
    struct limit_verdict v;

    assert_int_equal(admit(l, "k", &s, T0, 1).in_flight, 1);
    assert_int_equal(admit(l, "k", &s, T0, 1).in_flight, 2);
    v = admit(l, "k", &s, T0, 1);
    assert_false(v.ok);
    assert_string_equal(v.which, "concurrency");
    assert_int_equal(v.retry_after_ms, 1000);
    assert_int_equal(v.limit_concurrent, 2);
    assert_int_equal(v.in_flight, 2);
    limits_done(l, "k", T0 + 5, 0, 0);
    assert_true(admit(l, "k", &s, T0 + 5, 1).ok);
    assert_false(admit(l, "k", &s, T0 + 5, 1).ok);
    /* Extra dones do not make room beyond the limit. */
    for (int i = 0; i < 5; i++)
        limits_done(l, "k", T0 + 6, 0, 0);
    assert_true(admit(l, "k", &s, T0 + 6, 1).ok);
    assert_true(admit(l, "k", &s, T0 + 6, 1).ok);
    assert_false(admit(l, "k", &s, T0 + 6, 1).ok);
    /* A done for a key never seen creates nothing. */
    limits_done(l, "unknown", T0, 10, 1);
    assert_int_equal(limits_count(l), 1);
    limits_free(l);
}

/* When several limits refuse, the one that lasts longest is reported. */
static void test_longest_wait_wins(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 1, .max_concurrent = 1, .tpm = 100};
    struct limit_verdict v;

    assert_true(admit(l, "k", &s, T0, 1).ok);
    v = admit(l, "k", &s, T0 + 1000, 1);
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_ms, 59000);
    limits_done(l, "k", T0 + 1000, 100, 0); /* the whole minute's tokens */
    v = admit(l, "k", &s, T0 + 59500, 100); /* requests: 500 ms; tokens: 1.5 s */
    assert_string_equal(v.which, "tokens");
    assert_int_equal(v.retry_after_ms, 1500);
    v = admit(l, "k", &s, T0 + 59500, 1); /* requests: 500 ms; tokens: none */
    assert_string_equal(v.which, "requests");
    assert_int_equal(v.retry_after_ms, 500);
    limits_free(l);
}

/* ---- budgets ---------------------------------------------------------------------------- */

static void test_budget(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.budget_credits = 10, .budget_period = "day"};
    struct limit_verdict v;
    int64_t midnight = at("2026-12-06T00:00:00Z");

    v = admit(l, "k", &s, T0, 1);
    assert_true(v.ok);
    assert_true(v.budget_left == 10);
    assert_string_equal(v.budget_period, "day");
    limits_done(l, "k", T0, 0, 6);
    v = admit(l, "k", &s, T0, 1);
    assert_true(v.ok);
    assert_true(v.budget_left == 4);
    /* Two requests in flight when the budget is reached: both are charged. */
    assert_true(admit(l, "k", &s, T0, 1).ok);
    limits_done(l, "k", T0, 0, 3.5);
    limits_done(l, "k", T0, 0, 3.5);
    v = admit(l, "k", &s, T0 + 1, 1);
    assert_false(v.ok);
    assert_string_equal(v.which, "budget");
    assert_true(v.budget_left == 0);
    assert_int_equal(v.retry_after_ms, midnight - (T0 + 1));
    /* Spent exactly the budget: refused too. */
    limits_seed_budget(l, "k", "day", T0 + 2, 10);
    assert_false(admit(l, "k", &s, T0 + 2, 1).ok);
    limits_seed_budget(l, "k", "day", T0 + 2, 9.99);
    assert_true(admit(l, "k", &s, T0 + 2, 1).ok);
    limits_done(l, "k", T0 + 3, 0, 1);
    assert_false(admit(l, "k", &s, midnight - 1, 1).ok);
    /* The period rolls over by time. */
    v = admit(l, "k", &s, midnight, 1);
    assert_true(v.ok);
    assert_true(v.budget_left == 10);
    /* A request that ends after midnight is charged to the new day. */
    limits_done(l, "k", midnight + 5, 0, 10);
    assert_false(admit(l, "k", &s, midnight + 5, 1).ok);
    limits_free(l);
}

static void test_budget_month_and_total(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec m = {.budget_credits = 5, .budget_period = "month"};
    struct limit_spec t = {.budget_credits = 5};
    struct limit_verdict v;
    int64_t dec = at("2026-12-31T23:59:59.999Z");

    /* Seeded at start with what the store says December spent. */
    limits_seed_budget(l, "m", "month", at("2026-12-01T00:00:00Z"), 5);
    v = admit(l, "m", &m, dec, 1);
    assert_false(v.ok);
    assert_int_equal(v.retry_after_ms, 1);
    v = admit(l, "m", &m, dec + 1, 1);
    assert_true(v.ok);
    assert_true(v.budget_left == 5);
    /* A seed for the period that has ended is superseded by the new period. */
    limits_seed_budget(l, "m2", "month", at("2027-01-31T12:00:00Z"), 7);
    assert_true(admit(l, "m2", &m, at("2027-02-01T00:00:00Z"), 1).ok);
    /* The clock steps back into January: the new period stays. */
    assert_true(admit(l, "m2", &m, at("2027-01-31T23:00:00Z"), 1).ok);

    /* No period: a lifetime budget, refused for good (no Retry-After). */
    assert_true(admit(l, "t", &t, T0, 1).ok);
    limits_done(l, "t", T0, 0, 5);
    v = admit(l, "t", &t, T0 + 400LL * 86400000, 1);
    assert_false(v.ok);
    assert_string_equal(v.which, "budget");
    assert_string_equal(v.budget_period, "total");
    assert_int_equal(v.retry_after_ms, 0);
    limits_free(l);
}

/* ---- periods ---------------------------------------------------------------------------- */

static void check_period(const char *period, const char *now, const char *start, const char *next)
{
    assert_int_equal(limits_period_start(period, at(now)), at(start));
    assert_int_equal(limits_period_next(period, at(now)), at(next));
}

static void test_periods(void **state)
{
    check_period("day", "2026-12-05T10:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z");
    check_period("day", "2026-12-05T00:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T00:00:00Z");
    check_period("day", "2026-12-31T23:59:59.999Z", "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z");
    check_period("day", "2026-12-05T01:00:00+02:00", "2026-12-04T00:00:00Z",
                 "2026-12-05T00:00:00Z"); /* UTC, not local time */
    /* Weeks start on Monday 00:00 UTC. */
    check_period("week", "2026-12-05T10:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z");
    check_period("week", "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z");
    check_period("week", "2026-12-06T23:59:59.999Z", "2026-11-30T00:00:00Z",
                 "2026-12-07T00:00:00Z");
    check_period("week", "2026-01-01T00:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z");
    assert_int_equal(limits_period_start("week", 0), -3 * 86400000LL); /* 1969-12-29 */
    assert_int_equal(limits_period_next("week", 0), 4 * 86400000LL);
    /* Months: Dec -> Jan, leap Februaries (2000 and 2028 are, 2100 and 2027 are not). */
    check_period("month", "2026-12-05T10:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z");
    check_period("month", "2026-12-31T23:59:59.999Z", "2026-12-01T00:00:00Z",
                 "2027-01-01T00:00:00Z");
    check_period("month", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
    check_period("month", "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z");
    check_period("month", "2027-02-28T23:59:59.999Z", "2027-02-01T00:00:00Z",
                 "2027-03-01T00:00:00Z");
    check_period("month", "2100-02-28T12:00:00Z", "2100-02-01T00:00:00Z", "2100-03-01T00:00:00Z");
    check_period("month", "2000-02-29T12:00:00Z", "2000-02-01T00:00:00Z", "2000-03-01T00:00:00Z");
    check_period("month", "2026-04-30T23:59:59.999Z", "2026-04-01T00:00:00Z",
                 "2026-05-01T00:00:00Z");
    assert_int_equal(limits_period_start(NULL, T0), INT64_MIN);
    assert_int_equal(limits_period_next(NULL, T0), INT64_MAX);
    assert_int_equal(limits_period_start("year", T0), -1);
    assert_int_equal(limits_period_next("Day", T0), -1);
}

/* Every day start of 1970..2400 against a day-by-day walk of the calendar. */
static void test_periods_walk(void **state)
{
    int days_in[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t day = 0, month_start = 0;
    int wday = 3; /* 1970-01-01 was a Thursday (Monday = 0) */

    for (int y = 1970; y < 2400; y++) {
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        for (int m = 0; m < 12; m++) {
            int n = days_in[m] + (m == 1 && leap);
            for (int d = 0; d < n; d++, day++, wday = (wday + 1) % 7) {
                int64_t noon = day * 86400000 + 43200000;
                assert_int_equal(limits_period_start("day", noon), day * 86400000);
                assert_int_equal(limits_period_start("week", noon), (day - wday) * 86400000);
                assert_int_equal(limits_period_start("month", noon), month_start);
                assert_int_equal(limits_period_next("month", noon), (day - d + n) * 86400000);
            }
            month_start = day * 86400000;
        }
    }
}

/* ---- headers ---------------------------------------------------------------------------- */

static void test_headers_openai(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 3, .tpm = 1000};
    struct limit_verdict v;
    struct limits_headers h;

    v = admit(l, "k", &s, T0, 100);
    limits_done(l, "k", T0, 450, 0);
    limits_headers(&v, LIMITS_OPENAI, T0, LIMITS_HDR_RETRY_AFTER, &h);
    assert_int_equal(h.n, 6);
    assert_string_equal(h.h[0].name, "x-ratelimit-limit-requests");
    assert_string_equal(h.h[0].value, "3");
    assert_string_equal(h.h[1].name, "x-ratelimit-remaining-requests");
    assert_string_equal(h.h[1].value, "2");
    assert_string_equal(h.h[2].name, "x-ratelimit-reset-requests");
    assert_string_equal(h.h[2].value, "20s");
    assert_string_equal(h.h[3].name, "x-ratelimit-limit-tokens");
    assert_string_equal(h.h[3].value, "1000");
    assert_string_equal(h.h[4].name, "x-ratelimit-remaining-tokens");
    assert_string_equal(h.h[4].value, "1000");
    assert_string_equal(h.h[5].name, "x-ratelimit-reset-tokens");
    assert_string_equal(h.h[5].value, "0s");
    v = admit(l, "k", &s, T0 + 1500, 600); /* 450 used, 25 back: 575 left */
    assert_false(v.ok);
    limits_headers(&v, LIMITS_OPENAI, T0 + 1500, LIMITS_HDR_RETRY_AFTER, &h);
    assert_int_equal(h.n, 7);
    assert_string_equal(hdr(&h, "x-ratelimit-remaining-requests"), "2");
    assert_string_equal(hdr(&h, "x-ratelimit-reset-requests"), "18.5s");
    assert_string_equal(hdr(&h, "x-ratelimit-remaining-tokens"), "575");
    /* 425 tokens used at 1000/min: full in 25.5 s; 600 fit in 1.5 s. */
    assert_string_equal(hdr(&h, "x-ratelimit-reset-tokens"), "25.5s");
    assert_int_equal(v.retry_after_ms, 1500);
    assert_string_equal(hdr(&h, "Retry-After"), "2");
    limits_headers(&v, LIMITS_OPENAI, T0 + 1500, 0, &h);
    assert_int_equal(h.n, 6);
    assert_null(hdr(&h, "Retry-After"));
    /* No limits: no headers. */
    s = (struct limit_spec){0};
    v = admit(l, "free", &s, T0, 100);
    limits_headers(&v, LIMITS_OPENAI, T0, LIMITS_HDR_RETRY_AFTER, &h);
    assert_int_equal(h.n, 0);
    limits_free(l);
}

/* OpenAI's duration spelling, through verdicts built by hand. */
static void test_headers_durations(void **state)
{
    static const struct {
        int64_t ms;
        const char *text;
    } cases[] = {{0, "0s"},
                 {1, "1ms"},
                 {120, "120ms"},
                 {999, "999ms"},
                 {1000, "1s"},
                 {1500, "1.5s"},
                 {8640, "8.64s"},
                 {59999, "59.999s"},
                 {60000, "1m0s"},
                 {360000, "6m0s"},
                 {61001, "1m1.001s"},
                 {3600000, "1h0m0s"},
                 {3723400, "1h2m3.4s"},
                 {90061000, "25h1m1s"}};
    struct limit_verdict v = {.limit_requests = 5, .remaining_requests = 0};
    struct limits_headers h;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v.reset_requests_ms = cases[i].ms;
        limits_headers(&v, LIMITS_OPENAI, T0, 0, &h);
        assert_string_equal(hdr(&h, "x-ratelimit-reset-requests"), cases[i].text);
    }
}

static void test_headers_anthropic(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 2, .tpm = 1000};
    struct limit_verdict v;
    struct limits_headers h;

    assert_true(admit(l, "k", &s, T0, 10).ok);
    v = admit(l, "k", &s, T0 + 250, 10);
    assert_true(v.ok);
    limits_headers(&v, LIMITS_ANTHROPIC, T0 + 250, LIMITS_HDR_RETRY_AFTER, &h);
    assert_int_equal(h.n, 6);
    assert_string_equal(h.h[0].name, "anthropic-ratelimit-requests-limit");
    assert_string_equal(h.h[0].value, "2");
    assert_string_equal(h.h[1].name, "anthropic-ratelimit-requests-remaining");
    assert_string_equal(h.h[1].value, "0");
    /* Both used (at T0 and T0 + 0.25 s): full again at T0 + 60 s. */
    assert_string_equal(h.h[2].name, "anthropic-ratelimit-requests-reset");
    assert_string_equal(h.h[2].value, "2026-12-05T10:01:00Z");
    assert_string_equal(h.h[3].name, "anthropic-ratelimit-tokens-limit");
    assert_string_equal(h.h[4].name, "anthropic-ratelimit-tokens-remaining");
    assert_string_equal(h.h[4].value, "1000");
    assert_string_equal(h.h[5].name, "anthropic-ratelimit-tokens-reset");
    assert_string_equal(h.h[5].value, "2026-12-05T10:00:01Z"); /* now, rounded up */
    v = admit(l, "k", &s, T0 + 1000, 10);
    assert_false(v.ok);
    assert_int_equal(v.retry_after_ms, 29000);
    limits_headers(&v, LIMITS_ANTHROPIC, T0 + 1000, LIMITS_HDR_RETRY_AFTER, &h);
    assert_int_equal(h.n, 7);
    assert_string_equal(hdr(&h, "anthropic-ratelimit-requests-reset"), "2026-12-05T10:01:00Z");
    assert_string_equal(hdr(&h, "Retry-After"), "29");
    limits_free(l);
}

static void test_verdict_err(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {
        .rpm = 1, .max_concurrent = 1, .budget_credits = 2.5, .budget_period = "week"};
    struct limit_verdict v;
    struct gw_err e;

    assert_true(admit(l, "k", &s, T0, 1).ok);
    v = admit(l, "k", &s, T0 + 1, 1);
    assert_int_equal(limits_verdict_err(&v, &e), GW_ERATELIMIT);
    assert_int_equal(e.http_status, 429);
    assert_int_equal(e.retry_after, 60); /* 59.999 s rounded up */
    assert_string_equal(e.api_code, "rate_limit_exceeded");
    assert_string_equal(e.msg, "rate limit reached: 1 requests per minute");
    limits_done(l, "k", T0 + 1, 0, 3);
    v = admit(l, "k", &s, T0 + 60000, 1);
    assert_string_equal(v.which, "budget");
    limits_verdict_err(&v, &e);
    assert_string_equal(e.api_code, "insufficient_quota");
    assert_string_equal(e.msg, "credit budget spent: 2.5 credits per week");
    /* Until Monday 2026-12-07 00:00 UTC. */
    assert_int_equal(e.retry_after, (at("2026-12-07T00:00:00Z") - (T0 + 60000)) / 1000);
    s.budget_credits = 0;
    assert_true(admit(l, "k", &s, T0 + 60000, 1).ok);
    v = admit(l, "k", &s, T0 + 120000, 1);
    assert_string_equal(v.which, "concurrency");
    limits_verdict_err(&v, &e);
    assert_string_equal(e.msg, "too many concurrent requests: at most 1 at once");
    assert_int_equal(e.retry_after, 1);
    s = (struct limit_spec){.tpm = 10};
    v = admit(l, "k", &s, T0, 11);
    limits_verdict_err(&v, &e);
    assert_int_equal(e.retry_after, 0);
    assert_string_equal(e.msg, "request too large: its input exceeds the key's limit of 10 tokens "
                               "per minute");
    limits_free(l);
}

/* ---- keys ------------------------------------------------------------------------------- */

static void key_name(char *out, size_t n, int i)
{
    snprintf(out, n, "vk_%08d", i);
}

static void test_many_keys(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 2};
    char id[32];
    const int n = 100000;

    for (int i = 0; i < n; i++) {
        key_name(id, sizeof(id), i);
        assert_true(admit(l, id, &s, T0, 1).ok);
        limits_done(l, id, T0, 0, 0);
    }
    assert_int_equal(limits_count(l), n);
    for (int i = 0; i < n; i++) {
        key_name(id, sizeof(id), i);
        struct limit_verdict v = admit(l, id, &s, T0 + 1, 1);
        assert_true(v.ok);
        assert_int_equal(v.remaining_requests, 0);
        limits_done(l, id, T0 + 1, 0, 0);
        assert_false(admit(l, id, &s, T0 + 1, 1).ok);
    }
    assert_int_equal(limits_count(l), n);
    limits_free(l);
}

/* Idle keys are dropped, unless forgetting them would change a decision. */
static void test_idle_keys_dropped(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 5, .tpm = 100, .budget_credits = 1, .budget_period = "day"};
    struct limit_spec plain = {.rpm = 5}, none = {0};
    int64_t later = T0 + LIMITS_IDLE_MS + 1;
    char id[32];

    for (int i = 0; i < 1000; i++) {
        key_name(id, sizeof(id), i);
        assert_true(admit(l, id, &plain, T0, 1).ok);
        limits_done(l, id, T0, 0, 0);
    }
    assert_true(admit(l, "busy", &s, T0, 1).ok); /* still in flight */
    assert_true(admit(l, "spender", &s, T0, 1).ok);
    limits_done(l, "spender", T0, 0, 0.5); /* holds budget spent today */
    assert_true(admit(l, "debtor", &s, T0, 1).ok);
    limits_done(l, "debtor", T0, 100 * 20, 0); /* 20 minutes of tokens in debt */
    assert_int_equal(limits_count(l), 1003);
    /* Not yet idle: nothing goes. */
    for (int i = 0; i < 100; i++) {
        assert_true(admit(l, "x", &none, T0 + LIMITS_IDLE_MS - 1, 1).ok);
        limits_done(l, "x", T0 + LIMITS_IDLE_MS - 1, 0, 0);
    }
    assert_int_equal(limits_count(l), 1004);
    for (int i = 0; i < 500; i++) {
        assert_true(admit(l, "x", &none, later, 1).ok);
        limits_done(l, "x", later, 0, 0);
        assert_int_equal(limits_count(l), (size_t)(1004 - 2 * (i + 1)));
    }
    /* 2 looks an admit: every plain key went; x and the three kept ones stay, moved to the
     * front, so more admits drop nothing. */
    for (int i = 0; i < 10; i++)
        assert_true(admit(l, "x", &none, later, 1).ok);
    assert_int_equal(limits_count(l), 4);
    /* The kept keys still decide as before. */
    assert_false(admit(l, "busy", &(struct limit_spec){.max_concurrent = 1}, later, 1).ok);
    limits_done(l, "busy", later, 0, 0);
    assert_false(admit(l, "spender",
                       &(struct limit_spec){.budget_credits = 0.5, .budget_period = "day"}, later,
                       1)
                     .ok);
    assert_string_equal(admit(l, "debtor", &s, later, 1).which, "tokens");
    /* A dropped key comes back as a new one. */
    key_name(id, sizeof(id), 7);
    assert_int_equal(admit(l, id, &plain, later, 1).remaining_requests, 4);
    assert_int_equal(limits_count(l), 5);
    limits_free(l);
}

/* Keys dropped while the table grows (moving buckets) are still found and unlinked. */
static void test_drop_while_growing(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 1};
    int64_t later = T0 + LIMITS_IDLE_MS;
    char id[32];

    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "old%d", i);
        assert_true(admit(l, id, &s, T0, 1).ok);
        limits_done(l, id, T0, 0, 0);
    }
    /* 100 new keys (held in flight): 1100 keys, the table is doubling from 1024 buckets. */
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "new%d", i);
        assert_true(admit(l, id, &s, T0 + 1, 1).ok);
    }
    /* 4900 more: the old ones are dropped, two an admit, while buckets move. */
    for (int i = 100; i < 5000; i++) {
        snprintf(id, sizeof(id), "new%d", i);
        assert_true(admit(l, id, &s, later + i, 1).ok);
        limits_done(l, id, later + i, 0, 0);
    }
    assert_int_equal(limits_count(l), 5000);
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "new%d", i);
        assert_int_equal(admit(l, id, &s, later + 5000, 1).in_flight, 2); /* found */
    }
    for (int i = 100; i < 5000; i++) {
        snprintf(id, sizeof(id), "new%d", i);
        assert_false(admit(l, id, &s, later + 5000, 1).ok); /* found: its minute is used */
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "old%d", i);
        assert_true(admit(l, id, &s, later + 5000, 1).ok); /* dropped: a new key */
    }
    assert_int_equal(limits_count(l), 6000);
    limits_free(l);
}

/* ---- bad input, odd clocks, changed specs ----------------------------------------------- */

static void test_bad_input(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 1};
    struct limit_verdict v;
    struct gw_err e;
    char long_id[LIMITS_ID_MAX + 2];

    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(limits_admit(l, NULL, &s, T0, 1, &v), GW_EINVAL);
    assert_int_equal(limits_admit(l, "", &s, T0, 1, &v), GW_EINVAL);
    assert_int_equal(limits_admit(l, long_id, &s, T0, 1, &v), GW_EINVAL);
    assert_false(v.ok);
    long_id[LIMITS_ID_MAX] = '\0';
    assert_int_equal(limits_admit(l, long_id, &s, T0, 1, &v), 0);
    assert_int_equal(limits_spec_check(&(struct limit_spec){.rpm = -1}, &e), GW_EINVAL);
    assert_string_equal(e.param, "rpm");
    assert_int_equal(limits_spec_check(&(struct limit_spec){.tpm = LIMITS_RATE_MAX + 1}, &e),
                     GW_EINVAL);
    assert_string_equal(e.param, "tpm");
    assert_int_equal(limits_spec_check(&(struct limit_spec){.max_concurrent = -2}, &e), GW_EINVAL);
    assert_int_equal(limits_spec_check(&(struct limit_spec){.budget_credits = NAN}, &e), GW_EINVAL);
    assert_string_equal(e.param, "budget_credits");
    assert_int_equal(
        limits_spec_check(&(struct limit_spec){.budget_credits = 1, .budget_period = "year"}, &e),
        GW_EINVAL);
    assert_string_equal(e.param, "budget_period");
    assert_int_equal(limits_admit(l, "k", &(struct limit_spec){.budget_period = "year"}, T0, 1, &v),
                     GW_EINVAL);
    assert_int_equal(
        limits_spec_check(&(struct limit_spec){.rpm = LIMITS_RATE_MAX, .tpm = LIMITS_RATE_MAX}, &e),
        0);
    limits_seed_budget(l, NULL, "day", T0, 1);
    limits_seed_budget(l, "k2", "year", T0, 1);
    limits_done(l, NULL, T0, 1, 1);
    assert_int_equal(limits_count(l), 1);
    limits_free(l);
    limits_free(NULL);
}

static void test_clock_and_spec_changes(void **state)
{
    struct limits *l = limits_new();
    struct limit_spec s = {.rpm = 2};
    struct limit_verdict v;

    assert_int_equal(admit_all(l, "k", &s, T0), 2);
    /* The clock steps back: no time passed, nothing refilled, nothing broke. */
    v = admit(l, "k", &s, T0 - 3600000, 1);
    assert_false(v.ok);
    assert_int_equal(v.retry_after_ms, 30000);
    assert_false(admit(l, "k", &s, T0 + 29999, 1).ok);
    assert_true(admit(l, "k", &s, T0 + 30000, 1).ok);
    limits_done(l, "k", T0 + 30000, 0, 0);
    /* Raised to 4: what was used still counts, the new limit applies at once. */
    s.rpm = 4;
    v = admit(l, "k", &s, T0 + 30000, 1);
    assert_true(v.ok);
    assert_int_equal(v.remaining_requests, 1);
    /* Limit removed, then set again: it starts full. */
    s.rpm = 0;
    assert_true(admit(l, "k", &s, T0 + 30000, 1).ok);
    s.rpm = 4;
    assert_int_equal(admit(l, "k", &s, T0 + 30000, 1).remaining_requests, 3);
    /* A huge rate does not overflow. */
    s.rpm = LIMITS_RATE_MAX;
    v = admit(l, "k", &s, T0 + 45000, 1); /* refilled at 4 a minute until now */
    assert_true(v.ok);
    assert_int_equal(v.remaining_requests, LIMITS_RATE_MAX - 1);
    v = admit(l, "k", &s, INT64_MAX / 2, 1);
    assert_true(v.ok);
    limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm),
        cmocka_unit_test(test_rpm_slides),
        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_tpm),
        cmocka_unit_test(test_tpm_edges),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_longest_wait_wins),
        cmocka_unit_test(test_budget),
        cmocka_unit_test(test_budget_month_and_total),
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_periods_walk),
        cmocka_unit_test(test_headers_openai),
        cmocka_unit_test(test_headers_durations),
        cmocka_unit_test(test_headers_anthropic),
        cmocka_unit_test(test_verdict_err),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_idle_keys_dropped),
        cmocka_unit_test(test_drop_while_growing),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_clock_and_spec_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
