/*
 * tests/unit/store/storetest.h - what the store's unit tests share: a fixture
 * (a temporary data directory, an event loop, a store opened on it), a
 * callback that records what an operation answered, and helpers that make one
 * asynchronous call and run the loop until its callback ran.
 * Include after <cmocka.h>; every function is static (one copy per test file).
 */
#ifndef GW_TESTS_STORETEST_H
#define GW_TESTS_STORETEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <sqlite3.h>

#include "store/store.h"
#include "util/util.h"

#define HEAD_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEAD_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define KEY_A "key:0123456789abcdef"
#define KEY_B "key:fedcba9876543210"

/* Each file uses some of these. */
#define STORETEST_UNUSED __attribute__((unused))

struct fx {
    char dir[64];
    char db[128];
    struct event_base *base;
    struct store *s;
};

/* What a callback saw; calls counts how often it ran. */
struct seen {
    int calls;
    int rc;
    struct gw_err err;
    int order;          /* the global sequence number of the call */
    char first_id[64];  /* sessions[0].sid or responses[0].id */
    char ids[8][64];    /* responses[i].id */
    char prev_last[64]; /* the last response's prev */
    size_t n;
    /* the first row in full */
    struct store_session ss; /* pin and model point into pin/model below */
    char pin[256], model[256];
    int has_pin;
    struct store_response sr; /* strings point into the buffers below */
    char sr_prev[64], sr_owner[64], sr_input[256], sr_response[512];
    int has_prev;
};

static int sequence;

STORETEST_UNUSED static void seen_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

STORETEST_UNUSED static void on_result(void *ud, const struct store_result *res)
{
    struct seen *w = ud;

    w->calls++;
    w->rc = res->rc;
    w->order = ++sequence;
    if (res->rc < 0) {
        assert_non_null(res->err);
        assert_int_equal(res->n_sessions + res->n_responses, 0);
        w->err = *res->err;
        return;
    }
    assert_null(res->err);
    w->n = res->n_sessions + res->n_responses;
    if (res->n_sessions) {
        const struct store_session *ss = &res->sessions[0];
        w->ss = *ss;
        seen_copy(w->pin, sizeof(w->pin), ss->pin);
        seen_copy(w->model, sizeof(w->model), ss->model);
        w->has_pin = ss->pin != NULL;
        w->ss.pin = w->has_pin ? w->pin : NULL;
        w->ss.model = w->model;
        seen_copy(w->first_id, sizeof(w->first_id), ss->sid);
    }
    for (size_t i = 0; i < res->n_responses && i < 8; i++)
        seen_copy(w->ids[i], sizeof(w->ids[i]), res->responses[i].id);
    if (res->n_responses) {
        const struct store_response *sr = &res->responses[0];
        seen_copy(w->first_id, sizeof(w->first_id), sr->id);
        seen_copy(w->prev_last, sizeof(w->prev_last), res->responses[res->n_responses - 1].prev);
        w->sr = *sr;
        w->has_prev = sr->prev != NULL;
        seen_copy(w->sr_prev, sizeof(w->sr_prev), sr->prev);
        seen_copy(w->sr_owner, sizeof(w->sr_owner), sr->owner);
        seen_copy(w->sr_input, sizeof(w->sr_input), sr->input);
        seen_copy(w->sr_response, sizeof(w->sr_response), sr->response);
        w->sr.id = w->first_id;
        w->sr.prev = w->has_prev ? w->sr_prev : NULL;
        w->sr.owner = w->sr_owner;
        w->sr.input = w->sr_input;
        w->sr.response = w->sr_response;
    }
}

STORETEST_UNUSED static int setup_dir(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof(f->db), "%s/gateway.db", f->dir);
    f->base = event_base_new();
    assert_non_null(f->base);
    *state = f;
    return 0;
}

STORETEST_UNUSED static int setup_open(void **state)
{
    struct gw_err e;
    struct fx *f;

    setup_dir(state);
    f = *state;
    assert_int_equal(store_sqlite_open(f->base, f->dir, &f->s, &e), GW_OK);
    assert_non_null(f->s);
    return 0;
}

STORETEST_UNUSED static int teardown(void **state)
{
    struct fx *f = *state;

    store_close(f->s);
    event_base_free(f->base);
    assert_int_equal(util_rmtree(f->dir), GW_OK);
    free(f);
    return 0;
}

STORETEST_UNUSED static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 1000);
    return db;
}

/* Runs the loop until nothing is active: every queued completion is delivered. */
STORETEST_UNUSED static void drain(struct fx *f)
{
    for (int i = 0; i < 4; i++)
        assert_true(event_base_loop(f->base, EVLOOP_NONBLOCK) >= 0);
}

/*
 * The answer of the call just made with on_result and w: rc, the call's own
 * failure (the callback then never runs), or what the callback got, once.
 */
STORETEST_UNUSED static int answer(struct fx *f, int rc, struct seen *w)
{
    drain(f);
    if (rc < 0) {
        assert_int_equal(w->calls, 0);
        return rc;
    }
    assert_int_equal(w->calls, 1);
    return w->rc;
}

STORETEST_UNUSED static struct store_session session(const char *sid, const char *head, int64_t last_used)
{
    struct store_session ss;

    memset(&ss, 0, sizeof(ss));
    snprintf(ss.sid, sizeof(ss.sid), "%s", sid);
    snprintf(ss.head, sizeof(ss.head), "%s", head);
    ss.model = "gpt-4o";
    ss.last_used = last_used;
    return ss;
}

/* Puts response id for owner and waits for its callback. */
STORETEST_UNUSED static void rput(struct fx *f, const char *owner, const char *id, const char *prev)
{
    struct store_response sr = {(char *)id, (char *)prev, 1, "[]", "{}", (char *)owner};
    struct seen w = {0};
    struct gw_err e;

    assert_int_equal(answer(f, store_responses_put(f->s, &sr, 0, on_result, &w, NULL, &e), &w),
                     GW_OK);
}

STORETEST_UNUSED static struct seen rget(struct fx *f, const char *principal, const char *id)
{
    struct seen w = {0};
    struct gw_err e;

    assert_true(answer(f, store_responses_get(f->s, principal, id, on_result, &w, NULL, &e),
                       &w) >= 0);
    return w;
}

STORETEST_UNUSED static struct seen rchain(struct fx *f, const char *principal, const char *id, int max)
{
    struct seen w = {0};
    struct gw_err e;

    assert_true(answer(f, store_responses_chain(f->s, principal, id, max, on_result, &w, NULL,
                                                &e),
                       &w) >= 0);
    return w;
}

STORETEST_UNUSED static struct seen rdelete(struct fx *f, const char *principal, const char *id)
{
    struct seen w = {0};
    struct gw_err e;

    assert_true(
        answer(f, store_responses_delete(f->s, principal, id, on_result, &w, NULL, &e), &w) >= 0);
    return w;
}

#endif
