/*
 * Tests for the broker, driving the real broker against a fake runtime
 * (tests/fake/fakeruntime.mjs, or $FAKE_RUNTIME): session reuse, tool
 * parking, eviction, the busy-session rule, the retry on a dead process,
 * principal isolation, permission prompts, and the session parameters of
 * the pure-model profile (byte for byte those of the broker before profiles).
 *
 * The fake records every request it gets in <home>/fake-calls.jsonl; the
 * tests read what the broker sent from there.  What a turn does is scripted
 * by the user message (see the fake's header).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "broker/broker.h"
#include "broker/broker_int.h"
#include "broker/profile.h"
#include "store/store.h"
#include "util/log.h"

#define WAIT_MS 20000

struct fx {
    struct event_base *base;
    struct broker *b;
    char dir[64], home[128], work[128], fake[PATH_MAX];
    struct store *store; /* NULL: no persistence */
    int stopped;
    int copilot; /* no BYOK provider: Copilot models, turns bring their own token */
};

/* What the sink saw of one turn. */
struct res {
    int done, ok;
    char text[1024];
    char sid[40];
    enum turn_finish finish;
    size_t ncalls;
    char call_id[64], call_name[64], call_args[256];
    struct gw_err err;
};

static void sink_text(void *ud, const char *s, size_t n)
{
}

static void sink_done(void *ud, const struct turn_result *r)
{
    struct res *x = ud;

    x->done++;
    x->ok = r->ok;
    x->err = r->err;
    x->finish = r->finish;
    snprintf(x->text, sizeof(x->text), "%s", r->text ? r->text : "");
    snprintf(x->sid, sizeof(x->sid), "%s", r->session_id ? r->session_id : "");
    x->ncalls = r->ncalls;
    if (r->ncalls) {
        snprintf(x->call_id, sizeof(x->call_id), "%s", r->calls[0].id);
        snprintf(x->call_name, sizeof(x->call_name), "%s", r->calls[0].name);
        snprintf(x->call_args, sizeof(x->call_args), "%s", r->calls[0].arguments);
    }
}

static const struct turn_sink sink = {.text = sink_text, .done = sink_done};

/* ---- the loop ------------------------------------------------------------------------ */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
}

/* Runs the loop until cond(arg) holds; fails the test after WAIT_MS. */
static void run_until(struct fx *f, int (*cond)(struct fx *f, void *arg), void *arg,
                      const char *what)
{
    uint64_t end = now_ms() + WAIT_MS;
    struct event *ev = event_new(f->base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 20000};

    event_add(ev, &tv);
    while (!cond(f, arg)) {
        if (now_ms() > end) {
            event_free(ev);
            fail_msg("timed out waiting for %s", what);
        }
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    event_free(ev);
}

static int is_ready(struct fx *f, void *arg)
{
    return f->copilot ? broker_ready_for_users(f->b, NULL) : broker_ready(f->b, NULL);
}

static int is_done(struct fx *f, void *arg)
{
    return ((struct res *)arg)->done > 0;
}

static int is_stopped(struct fx *f, void *arg)
{
    return f->stopped;
}

/* ---- what the fake was asked ------------------------------------------------------------- */

/* The requests the fake got, in order (new reference: an array of {method, params}). */
static json_t *calls(struct fx *f)
{
    char path[256], line[65536];
    json_t *a = json_array();
    FILE *fp;

    snprintf(path, sizeof(path), "%s/fake-calls.jsonl", f->home);
    fp = fopen(path, "r");
    while (fp && fgets(line, sizeof(line), fp)) {
        json_t *j = json_loads(line, 0, NULL);
        if (j)
            json_array_append_new(a, j);
    }
    if (fp)
        fclose(fp);
    return a;
}

/* Requests of method for session sid (NULL: any session, warm-up excluded). */
static int count(struct fx *f, const char *method, const char *sid)
{
    json_t *a = calls(f), *c;
    size_t i;
    int n = 0;

    json_array_foreach(a, i, c)
    {
        json_t *p = json_object_get(c, "params");
        const char *m = json_string_value(json_object_get(c, "method"));
        const char *s = json_string_value(json_object_get(p, "sessionId"));
        const char *model = json_string_value(json_object_get(p, "model"));
        if (strcmp(m, method) != 0 || (model && strcmp(model, "warmup") == 0))
            continue;
        if (!sid || (s && strcmp(s, sid) == 0))
            n++;
    }
    json_decref(a);
    return n;
}

/* The params of the last request of method (new reference), or NULL. */
static json_t *last_params(struct fx *f, const char *method)
{
    json_t *a = calls(f), *c, *p = NULL;
    size_t i;

    json_array_foreach(a, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "method")), method) == 0) {
            json_decref(p);
            p = json_incref(json_object_get(c, "params"));
        }
    }
    json_decref(a);
    return p;
}

struct wait_call {
    const char *method, *sid;
};

static int has_call(struct fx *f, void *arg)
{
    struct wait_call *w = arg;
    return count(f, w->method, w->sid) > 0;
}

/* ---- fixture -------------------------------------------------------------------------- */

static const char *fake_path(char out[PATH_MAX])
{
    const char *p = getenv("FAKE_RUNTIME");

    if (!realpath(p && *p ? p : "tests/fake/fakeruntime.mjs", out))
        fail_msg("no fake runtime (run from the repository root, or set FAKE_RUNTIME)");
    return out;
}

static struct fx *fx_start_full(int max_sessions, int with_store, int copilot)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct broker_config cfg;
    struct gw_err err;

    f->copilot = copilot;
    log_level_current = getenv("TEST_LOG") ? LOG_DEBUG : LOG_OFF;
    snprintf(f->dir, sizeof(f->dir), "/tmp/gw-broker-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->home, sizeof(f->home), "%s/home", f->dir);
    snprintf(f->work, sizeof(f->work), "%s/work", f->dir);
    fake_path(f->fake);
    f->base = event_base_new();
    memset(&cfg, 0, sizeof(cfg));
    cfg.rt.path = f->fake;
    cfg.rt.home = f->home;
    if (!f->copilot) {
        cfg.provider.url = "http://127.0.0.1:9/v1"; /* BYOK: no sign-in needed; never called */
        cfg.provider.type = "openai";
    }
    cfg.warmup_url = "http://127.0.0.1:9/warmup/v1";
    cfg.warmup_key = "warm";
    cfg.workdir = f->work;
    cfg.turn_timeout_ms = WAIT_MS;
    cfg.max_sessions = max_sessions;
    cfg.pool_size = 1;
    if (with_store)
        assert_int_equal(store_sqlite_open(f->base, NULL, &f->store, &err), 0); /* in memory */
    cfg.store = f->store;
    f->b = broker_new(f->base, &cfg);
    assert_int_equal(broker_start(f->b), 0);
    run_until(f, is_ready, NULL, "the broker to be ready");
    return f;
}

static struct fx *fx_start_store(int max_sessions, int with_store)
{
    return fx_start_full(max_sessions, with_store, 0);
}

static struct fx *fx_start(int max_sessions)
{
    return fx_start_store(max_sessions, 0);
}

static void on_stopped(void *ud)
{
    ((struct fx *)ud)->stopped = 1;
}

static void fx_stop(struct fx *f)
{
    char cmd[128];

    broker_stop(f->b, on_stopped, f);
    run_until(f, is_stopped, NULL, "the broker to stop");
    broker_free(f->b);
    store_close(f->store);
    event_base_free(f->base);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
}

/* ---- conversations ------------------------------------------------------------------------ */

/*
 * A conversation from a compact script: each entry is "U:text", "A:text",
 * "C:id" (an assistant message calling get_weather {"city":"Paris"}) or
 * "T:id:text" (the tool result); NULL ends it.
 */
static struct conv *mk(int with_tool, const char *const *script)
{
    struct conv *c = conv_new();

    c->model = strdup("gpt-test");
    c->system = strdup("be brief");
    if (with_tool)
        conv_add_tool(c, "get_weather", "current weather",
                      json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "city",
                                "type", "string"));
    for (size_t i = 0; script[i]; i++) {
        const char *s = script[i] + 2;
        struct conv_msg *m;
        switch (script[i][0]) {
        case 'U':
            m = conv_add_msg(c, CONV_USER);
            conv_msg_add_text(m, s, strlen(s));
            break;
        case 'A':
            m = conv_add_msg(c, CONV_ASSISTANT);
            conv_msg_add_text(m, s, strlen(s));
            break;
        case 'C':
            m = conv_add_msg(c, CONV_ASSISTANT);
            conv_msg_add_call(m, s, "get_weather", "{\"city\":\"Paris\"}");
            break;
        case 'T': {
            const char *colon = strchr(s, ':');
            m = conv_add_msg(c, CONV_TOOL);
            m->tool_call_id = strndup(s, (size_t)(colon - s));
            conv_msg_add_text(m, colon + 1, strlen(colon + 1));
            break;
        }
        default:
            fail_msg("bad script entry %s", script[i]);
        }
    }
    return c;
}

static struct turn *start_as(struct fx *f, const char *principal,
                             const struct session_profile *profile, struct conv *c, const char *pin,
                             struct res *r)
{
    struct turn_req req = {.principal = principal, .profile = profile, .request_id = "test"};
    struct gw_err err;
    struct turn *t;

    memset(r, 0, sizeof(*r));
    if (pin)
        c->pin = strdup(pin);
    t = broker_turn_start(f->b, c, &req, &sink, r, &err);
    if (!t)
        fail_msg("turn refused: %s", err.msg);
    return t;
}

/* Runs one turn to its end. */
static void turn_as(struct fx *f, const char *principal, struct conv *c, const char *pin,
                    struct res *r)
{
    start_as(f, principal, &profile_pure_model, c, pin, r);
    run_until(f, is_done, r, "the turn to end");
    assert_int_equal(r->done, 1);
    if (!r->ok)
        fail_msg("turn failed: %s", r->err.msg);
}

static void run_turn(struct fx *f, struct conv *c, struct res *r)
{
    turn_as(f, "anon", c, NULL, r);
}

static struct broker_stats stats(struct fx *f)
{
    struct broker_stats st;
    broker_stats(f->b, &st);
    return st;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* A second turn extending the history continues the same session: one create, then send. */
static void test_reuse(void **state)
{
    struct fx *f = fx_start(0);
    struct res r1, r2;

    run_turn(f, mk(0, (const char *[]){"U:hello", NULL}), &r1);
    assert_string_equal(r1.text, "echo: hello");
    run_turn(f, mk(0, (const char *[]){"U:hello", "A:echo: hello", "U:again", NULL}), &r2);
    assert_string_equal(r2.text, "echo: again");
    assert_string_equal(r2.sid, r1.sid);
    assert_int_equal(count(f, "session.create", NULL), 1);
    assert_int_equal(count(f, "session.resume", NULL), 0);
    assert_int_equal(count(f, "session.send", r1.sid), 2);
    assert_int_equal(stats(f).sessions_reused, 1);
    fx_stop(f);
}

/* A turn ending in a client tool call parks; the results answer the pending call on the
 * same session. */
static void test_tool_parking(void **state)
{
    struct fx *f = fx_start(0);
    struct res r1, r2;
    json_t *p;

    run_turn(f, mk(1, (const char *[]){"U:TOOL weather?", NULL}), &r1);
    assert_int_equal(r1.finish, TURN_TOOL_CALLS);
    assert_int_equal(r1.ncalls, 1);
    assert_string_equal(r1.call_id, "call_1");
    assert_string_equal(r1.call_name, "get_weather");
    assert_string_equal(r1.call_args, "{\"city\":\"Paris\"}");
    assert_int_equal(stats(f).sessions_parked, 1);

    run_turn(f, mk(1, (const char *[]){"U:TOOL weather?", "C:call_1", "T:call_1:sunny", NULL}),
             &r2);
    assert_string_equal(r2.text, "tool said: sunny");
    assert_int_equal(r2.finish, TURN_STOP);
    assert_string_equal(r2.sid, r1.sid);
    assert_int_equal(stats(f).sessions_parked, 0);
    assert_int_equal(count(f, "session.tools.handlePendingToolCall", r1.sid), 1);
    p = last_params(f, "session.tools.handlePendingToolCall");
    assert_string_equal(json_string_value(json_object_get(p, "requestId")), "tool-req-1");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(p, "result"), "resultType")), "success");
    json_decref(p);
    assert_int_equal(count(f, "session.create", NULL), 1);
    fx_stop(f);
}

/* With a cap of one session, a second conversation evicts the idle first one. */
static void test_eviction(void **state)
{
    struct fx *f = fx_start(1);
    struct res r1, r2;
    struct wait_call w = {"session.delete", NULL};

    run_turn(f, mk(0, (const char *[]){"U:first", NULL}), &r1);
    run_turn(f, mk(0, (const char *[]){"U:second", NULL}), &r2);
    assert_string_not_equal(r1.sid, r2.sid);
    w.sid = r1.sid;
    run_until(f, has_call, &w, "the first session's delete");
    assert_int_equal(count(f, "session.delete", r2.sid), 0);
    assert_int_equal(stats(f).sessions_evicted, 1);
    assert_int_equal(stats(f).sessions_live, 1);
    fx_stop(f);
}

/* A request for the history a session holds while that session runs a turn does not
 * share it: it gets a session of its own, seeded with the history. */
static void test_busy_session(void **state)
{
    struct fx *f = fx_start(0);
    struct res r1, r2, r3;
    struct turn *t2, *t3;
    const char *const slow[] = {"U:hi", "A:echo: hi", "U:SLOW please", NULL};
    struct wait_call w2 = {"session.send", NULL}, w3 = {"session.send", NULL};
    json_t *p;
    char sid3[40];

    run_turn(f, mk(0, (const char *[]){"U:hi", NULL}), &r1);
    t2 = start_as(f, "anon", NULL, mk(0, slow), NULL, &r2);
    w2.sid = r1.sid;
    run_until(f, has_call, &w2, "the first session's send");
    assert_int_equal(stats(f).sessions_reused, 1);

    t3 = start_as(f, "anon", NULL, mk(0, slow), NULL, &r3);
    w3.method = "session.resume"; /* seeded with the two messages before */
    run_until(f, has_call, &w3, "a new session's resume");
    w3.method = "session.send";
    p = last_params(f, "session.resume");
    assert_non_null(p);
    snprintf(sid3, sizeof(sid3), "%s", json_string_value(json_object_get(p, "sessionId")));
    json_decref(p);
    assert_string_not_equal(sid3, r1.sid);
    w3.sid = sid3;
    run_until(f, has_call, &w3, "the second session's send");
    assert_int_equal(stats(f).sessions_reused, 1);
    assert_int_equal(stats(f).sessions_seeded, 1);

    /* The client goes away: both turns are aborted and their sessions deleted, silently. */
    broker_turn_cancel(t2);
    broker_turn_cancel(t3);
    w2.method = w3.method = "session.delete";
    run_until(f, has_call, &w2, "the first session's delete");
    run_until(f, has_call, &w3, "the second session's delete");
    assert_int_equal(count(f, "session.abort", r1.sid), 1);
    assert_int_equal(count(f, "session.abort", sid3), 1);
    assert_int_equal(r2.done + r3.done, 0);
    assert_int_equal(broker_turns_active(f->b), 0);
    fx_stop(f);
}

/* The runtime exits before any output: the turn is retried once on a new session (on the
 * restarted process), opened with the same parameters, and succeeds. */
static void test_retry_on_dead_process(void **state)
{
    struct fx *f = fx_start_full(0, 0, 1); /* Copilot models: the user's token is sent */
    static const char *const tools[] = {"bash", NULL};
    const struct session_profile prof = {
        .id = "agent/x", .system_mode = "replace", .available_tools = tools};
    struct turn_req req = {.principal = "key:dddddddddddddddd",
                           .profile = &prof,
                           .github_token = "gho_secret",
                           .request_id = "retry"};
    struct gw_err err;
    struct res r;
    struct broker_stats st;
    json_t *a, *c;
    size_t i;
    int ncreate = 0;

    memset(&r, 0, sizeof(r));
    assert_non_null(
        broker_turn_start(f->b, mk(0, (const char *[]){"U:DIE now", NULL}), &req, &sink, &r, &err));
    run_until(f, is_done, &r, "the turn to end");
    assert_true(r.ok);
    assert_string_equal(r.text, "echo: DIE now");
    st = stats(f);
    assert_int_equal(st.runtime_restarts, 1);
    assert_int_equal(st.sessions_created, 2);
    assert_int_equal(count(f, "session.send", r.sid), 1);
    a = calls(f);
    json_array_foreach(a, i, c)
    {
        json_t *p = json_object_get(c, "params");
        if (strcmp(json_string_value(json_object_get(c, "method")), "session.create") != 0 ||
            strcmp(json_string_value(json_object_get(p, "model")), "warmup") == 0)
            continue;
        ncreate++;
        assert_string_equal(json_string_value(json_object_get(p, "gitHubToken")), "gho_secret");
        assert_true(json_is_true(json_object_get(p, "enableManagedSettings")));
        assert_null(json_object_get(p, "provider"));
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(p, "availableTools"), 0)), "bash");
    }
    json_decref(a);
    assert_int_equal(ncreate, 2);
    fx_stop(f);
}

/* Two principals never share a session: not for the same conversation, not under the
 * same X-Session-Id pin. */
static void test_principal_isolation(void **state)
{
    struct fx *f = fx_start(0);
    struct res a1, b1, c1, d1, e1;
    const char *const hi[] = {"U:hi", NULL};
    const char *const more[] = {"U:hi", "A:echo: hi", "U:more", NULL};

    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, hi), NULL, &a1);
    turn_as(f, "key:bbbbbbbbbbbbbbbb", mk(0, more), NULL, &b1);
    assert_string_not_equal(a1.sid, b1.sid);
    assert_int_equal(stats(f).sessions_reused, 0);
    assert_int_equal(count(f, "session.resume", b1.sid), 1); /* seeded: a session of its own */

    /* The same pin from two principals: two sessions, and the first one stays. */
    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, hi), "pin-1", &c1);
    turn_as(f, "key:bbbbbbbbbbbbbbbb", mk(0, hi), "pin-1", &d1);
    assert_string_not_equal(c1.sid, d1.sid);
    assert_int_equal(count(f, "session.delete", c1.sid), 0);
    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, more), "pin-1", &e1);
    assert_string_equal(e1.sid, c1.sid);
    assert_int_equal(stats(f).sessions_reused, 1);
    fx_stop(f);
}

static int restarted(struct fx *f, void *arg)
{
    return stats(f).runtime_restarts == 1 && broker_ready(f->b, NULL);
}

/* A dormant session (its runtime exited while it was idle) is found again by its
 * persisted row only for the principal it served, pin or not. */
static void test_dormant_isolation(void **state)
{
    struct fx *f = fx_start_store(0, 1);
    struct res a1, b1, a2;
    const char *const more[] = {"U:hi BYE", "A:echo: hi BYE", "U:more", NULL};

    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, (const char *[]){"U:hi BYE", NULL}), "pin-1", &a1);
    run_until(f, restarted, NULL, "the runtime to come back");
    assert_int_equal(stats(f).sessions_live, 0); /* dormant */

    turn_as(f, "key:bbbbbbbbbbbbbbbb", mk(0, more), "pin-1", &b1);
    assert_string_not_equal(b1.sid, a1.sid);
    assert_int_equal(stats(f).sessions_resumed, 0);
    assert_int_equal(stats(f).sessions_seeded, 1);

    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, more), "pin-1", &a2);
    assert_string_equal(a2.sid, a1.sid);
    assert_int_equal(stats(f).sessions_resumed, 1);
    assert_int_equal(count(f, "session.resume", a1.sid), 1);
    fx_stop(f);
}

/* One turn whose runtime then exits while the session is idle: the session is dormant. */
static void make_dormant(struct fx *f, const char *principal, const char *pin, struct res *r)
{
    turn_as(f, principal, mk(0, (const char *[]){"U:hi BYE", NULL}), pin, r);
    run_until(f, restarted, NULL, "the runtime to come back");
    assert_int_equal(stats(f).sessions_live, 0);
}

/* A client that goes away while its dormant lookup is pending gets no callback and takes
 * nothing: the row stays, and the next request resumes the session from it. */
static void test_dormant_cancel_during_lookup(void **state)
{
    struct fx *f = fx_start_store(0, 1);
    struct res a1, a2, a3;
    const char *const more[] = {"U:hi BYE", "A:echo: hi BYE", "U:more", NULL};
    struct turn *t;

    make_dormant(f, "key:aaaaaaaaaaaaaaaa", "pin-1", &a1);

    /* The store answers later, never inside the call: the turn waits for it. */
    t = start_as(f, "key:aaaaaaaaaaaaaaaa", &profile_pure_model, mk(0, more), "pin-1", &a2);
    assert_int_equal(broker_turns_active(f->b), 1);
    assert_int_equal(stats(f).sessions_live, 0);
    broker_turn_cancel(t);
    assert_int_equal(broker_turns_active(f->b), 0);

    turn_as(f, "key:aaaaaaaaaaaaaaaa", mk(0, more), "pin-1", &a3);
    assert_int_equal(a2.done, 0);
    assert_string_equal(a3.sid, a1.sid);
    assert_int_equal(stats(f).sessions_resumed, 1);
    assert_int_equal(count(f, "session.resume", a1.sid), 1);
    fx_stop(f);
}

/* Two requests for the same dormant row at once: one resumes the session, the other gets a
 * new seeded one (a runtime session is never opened twice). */
static void test_dormant_concurrent(void **state)
{
    struct fx *f = fx_start_store(0, 1);
    struct res a1, r2, r3;
    const char *const more[] = {"U:hi BYE", "A:echo: hi BYE", "U:more", NULL};

    make_dormant(f, "anon", NULL, &a1);

    start_as(f, "anon", &profile_pure_model, mk(0, more), NULL, &r2);
    start_as(f, "anon", &profile_pure_model, mk(0, more), NULL, &r3);
    run_until(f, is_done, &r2, "the first turn to end");
    run_until(f, is_done, &r3, "the second turn to end");
    assert_true(r2.ok && r3.ok);
    assert_string_not_equal(r2.sid, r3.sid);
    assert_true(strcmp(r2.sid, a1.sid) == 0 || strcmp(r3.sid, a1.sid) == 0);
    assert_int_equal(stats(f).sessions_resumed, 1);
    assert_int_equal(stats(f).sessions_seeded, 1);
    assert_int_equal(count(f, "session.resume", a1.sid), 1);
    fx_stop(f);
}

/* A profile that asks for permission prompts answers them with its decider, by default
 * "user-not-available"; a standing approval is never sent. */
static json_t *decide_approve_all(void *ud, const char *principal, const struct perm_request *rq)
{
    int *n = ud;

    (*n)++;
    assert_string_equal(principal, "key:cccccccccccccccc");
    assert_string_equal(rq->kind, "shell");
    assert_string_equal(rq->request_id, "perm-1");
    return json_pack("{s:s}", "kind", "approve-all");
}

static json_t *hook_echo(void *ud, const struct hook_call *hc)
{
    return json_pack("{s:s, s:s}", "principal", hc->principal, "hook", hc->hook_type);
}

static void test_permission_prompt(void **state)
{
    struct fx *f = fx_start(0);
    static const struct profile_ops ops = {.decide = decide_approve_all, .hook = hook_echo};
    int ndecided = 0;
    struct session_profile asker = {
        .id = "agent/asker", .system_mode = "replace", .request_permission = 1, .hooks = 1};
    struct session_profile decider = asker;
    struct res r1, r2;
    json_t *p, *q, *out;
    int over;

    start_as(f, "anon", &asker, mk(0, (const char *[]){"U:PERM ls", NULL}), NULL, &r1);
    run_until(f, is_done, &r1, "the turn to end");
    assert_string_equal(r1.text, "permission: user-not-available");
    p = last_params(f, "session.create");
    assert_true(json_is_true(json_object_get(p, "requestPermission")));
    assert_true(json_is_true(json_object_get(p, "hooks")));
    json_decref(p);

    decider.id = "agent/decider";
    decider.ops = &ops;
    decider.ops_ud = &ndecided;
    start_as(f, "key:cccccccccccccccc", &decider, mk(0, (const char *[]){"U:PERM ls", NULL}), NULL,
             &r2);
    run_until(f, is_done, &r2, "the turn to end");
    assert_int_equal(ndecided, 1);
    assert_string_equal(r2.text, "permission: user-not-available");
    p = last_params(f, "session.permissions.handlePendingPermissionRequest");
    assert_string_equal(json_string_value(json_object_get(p, "sessionId")), r2.sid);
    json_decref(p);

    /* The hook entry point finds the session's profile and principal. */
    q = json_pack("{s:s, s:s, s:{}}", "sessionId", r2.sid, "hookType", "preToolUse", "input");
    out = broker__hook_invoke(f->b, q, &over);
    assert_int_equal(over, 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(out, "output"), "hook")),
                        "preToolUse");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(out, "output"), "principal")),
        "key:cccccccccccccccc");
    json_decref(out);
    json_object_set_new(q, "sessionId", json_string(r1.sid)); /* hooks, but no ops->hook */
    out = broker__hook_invoke(f->b, q, &over);
    assert_null(json_object_get(out, "output"));
    json_decref(out);
    json_decref(q);

    /* Through the wire: the runtime's hooks.invoke request reaches the profile's hook and
     * its output goes back as the reply; a profile without a hook answers "no change". */
    start_as(f, "key:cccccccccccccccc", &decider, mk(0, (const char *[]){"U:HOOK ls", NULL}), NULL,
             &r2);
    run_until(f, is_done, &r2, "the hooked turn to end");
    assert_string_equal(r2.text, "hook: preToolUse key:cccccccccccccccc");
    start_as(f, "anon", &asker, mk(0, (const char *[]){"U:HOOK again", NULL}), NULL, &r1);
    run_until(f, is_done, &r1, "the unhooked turn to end");
    assert_string_equal(r1.text, "hook: none");
    fx_stop(f);
}

/* ---- session parameters ------------------------------------------------------------------ */

/* The broker's session_params() as of 84a138f, verbatim but for its arguments. */
static json_t *provider_json_old(const char *url, const char *key, const char *type)
{
    json_t *p = json_pack("{s:s, s:s}", "type", type ? type : "openai", "baseUrl", url);
    if (key && *key)
        json_object_set_new(p, "apiKey", json_string(key));
    return p;
}

static json_t *session_params_old(const struct conv *c, const char *sid, const char *workdir,
                                  const char *provider_url)
{
    json_t *avail = json_array(), *tools = json_array();
    json_t *p;

    for (size_t i = 0; i < c->ntools; i++) {
        const struct conv_tool *tl = &c->tools[i];
        json_t *o = json_pack("{s:s, s:s, s:b}", "name", tl->name, "description",
                              tl->description ? tl->description : "", "skipPermission", 1);
        if (tl->parameters)
            json_object_set(o, "parameters", tl->parameters);
        json_array_append_new(tools, o);
        json_array_append_new(avail, json_string(tl->name));
    }
    p = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:o, s:o, s:b, s:{s:b}, s:b, s:s, s:s,"
                  " s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:{s:b}, s:b}",
                  "sessionId", sid, "model", c->model, "clientName", "copilot-gateway",
                  "systemMessage", "mode", "replace", "content", c->system ? c->system : "",
                  "availableTools", avail, "tools", tools, "streaming", 1, "infiniteSessions",
                  "enabled", 0, "requestPermission", 0, "envValueMode", "direct",
                  "workingDirectory", workdir, "enableSessionTelemetry", 0,
                  "skipEmbeddingRetrieval", 1, "enableOnDemandInstructionDiscovery", 0,
                  "enableFileHooks", 0, "enableHostGitOperations", 0, "enableSessionStore", 0,
                  "enableSkills", 0, "memory", "enabled", 0, "customAgentsLocalOnly", 1);
    if (provider_url)
        json_object_set_new(p, "provider", provider_json_old(provider_url, "k", "anthropic"));
    if (c->reasoning_effort)
        json_object_set_new(p, "reasoningEffort", json_string(c->reasoning_effort));
    for (size_t i = 0; i < c->nmsgs; i++)
        if (conv_msg_has_image(&c->msgs[i])) {
            json_object_set_new(p, "modelCapabilities",
                                json_pack("{s:{s:b}}", "supports", "vision", 1));
            break;
        }
    return p;
}

static void assert_same_params(const struct conv *c, const char *provider_url)
{
    json_t *prov = provider_url ? provider_json_old(provider_url, "k", "anthropic") : NULL;
    json_t *a = session_params_old(c, "sid-1", "/w", provider_url);
    json_t *b = profile_session_params(&profile_pure_model, c, "sid-1", prov, "/w", NULL);
    json_t *n = profile_session_params(NULL, c, "sid-1", prov, "/w", NULL);
    char *sa = json_dumps(a, 0), *sb = json_dumps(b, 0), *sn = json_dumps(n, 0);

    assert_string_equal(sb, sa);
    assert_string_equal(sn, sa);
    free(sa);
    free(sb);
    free(sn);
    json_decref(a);
    json_decref(b);
    json_decref(n);
    json_decref(prov);
}

static void test_pure_model_params(void **state)
{
    struct conv *c = mk(1, (const char *[]){"U:hi", "A:hello", "U:more", NULL});
    struct conv *bare = mk(0, (const char *[]){"U:hi", NULL});

    assert_same_params(c, NULL);
    assert_same_params(c, "http://127.0.0.1:1/v1");
    c->reasoning_effort = strdup("high");
    conv_msg_add_image(&c->msgs[0], "image/png", "iVBORw0KGgo=", NULL);
    assert_same_params(c, "http://127.0.0.1:1/v1");
    free(bare->system);
    bare->system = NULL;
    assert_same_params(bare, NULL);
    conv_free(c);
    conv_free(bare);
}

/* An agent profile adds to the pure model's parameters; the client's tools stay. */
static void test_profile_params(void **state)
{
    static const char *const avail[] = {"bash", "mcp:*", NULL};
    static const char *const excl[] = {"builtin:task", NULL};
    struct conv *c = mk(1, (const char *[]){"U:hi", NULL});
    struct session_profile p = {.id = "agent/logs",
                                .system_mode = "append",
                                .instructions = "You read logs.",
                                .available_tools = avail,
                                .excluded_tools = excl,
                                .agent = "reader",
                                .workdir = "/srv/logs",
                                .request_permission = 1,
                                .hooks = 1};
    json_t *j, *a;

    p.mcp_servers = json_pack("{s:{s:s, s:s}}", "files", "type", "local", "command", "mcp-files");
    p.custom_agents = json_pack("[{s:s, s:s}]", "name", "reader", "prompt", "Read.");
    j = profile_session_params(&p, c, "sid-2", NULL, "/w", "gho_token");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "systemMessage"), "mode")), "append");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "systemMessage"), "content")),
        "You read logs.\n\nbe brief");
    a = json_object_get(j, "availableTools");
    assert_int_equal(json_array_size(a), 3);
    assert_string_equal(json_string_value(json_array_get(a, 0)), "get_weather");
    assert_string_equal(json_string_value(json_array_get(a, 2)), "mcp:*");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "excludedTools"), 0)),
                        "builtin:task");
    assert_string_equal(json_string_value(json_object_get(j, "toolFilterPrecedence")), "excluded");
    assert_true(json_equal(json_object_get(j, "mcpServers"), p.mcp_servers));
    assert_true(json_equal(json_object_get(j, "customAgents"), p.custom_agents));
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "reader");
    assert_string_equal(json_string_value(json_object_get(j, "workingDirectory")), "/srv/logs");
    assert_true(json_is_true(json_object_get(j, "requestPermission")));
    assert_true(json_is_true(json_object_get(j, "hooks")));
    assert_string_equal(json_string_value(json_object_get(j, "gitHubToken")), "gho_token");
    json_decref(j);
    json_decref(p.mcp_servers);
    json_decref(p.custom_agents);
    conv_free(c);
}

/* The broker sends the pure-model parameters, with its BYOK provider, on session.create. */
static void test_create_params_sent(void **state)
{
    struct fx *f = fx_start(0);
    struct res r;
    struct conv *c = mk(1, (const char *[]){"U:hello", NULL});
    json_t *want, *got;

    want = session_params_old(c, "x", f->work, NULL);
    json_object_set_new(
        want, "provider",
        json_pack("{s:s, s:s}", "type", "openai", "baseUrl", "http://127.0.0.1:9/v1"));
    run_turn(f, c, &r);
    got = last_params(f, "session.create");
    json_object_set_new(want, "sessionId", json_string(r.sid));
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    fx_stop(f);
}

/* ---- the session table's indexes (sessions.c) ----------------------------------------------
 *
 * These drive the table directly: sessions made with sess__new() on the pool's process (the
 * runtime never hears of them, so closing one frees it at once), their head, state and last
 * use set through the setters turn.c uses.  Each answer is checked against the scan over
 * every session that the indexes replaced (ref_find(), ref_victim()).
 */

#define NSESS 1000

/* A head: bytes from i and salt; heads of equal i share their first 8 bytes (one bucket). */
static struct hash head_of(unsigned i, unsigned salt)
{
    struct hash h;
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);

    for (int k = 0; k < HASH_LEN; k++) {
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9ull;
        if (k == 8)
            x += salt;
        h.b[k] = (unsigned char)(x >> 24);
    }
    return h;
}

static int owner_same(const struct sess_owner *a, const struct sess_owner *b)
{
    return strcmp(a->principal, b->principal) == 0 && a->profile == b->profile &&
           strcmp(a->token_fp, b->token_fp) == 0;
}

/* sess__find() as it was: the first match scanning every session, newest first. */
static struct sess *ref_find(struct broker *b, const struct hash *h, enum sess_state want,
                             const char *pin, const struct sess_owner *o)
{
    for (struct sess *s = b->sessions; s; s = s->next) {
        if (s->state != want || s->gen != rt_generation(s->p->rt) || !rt_usable(s->p->rt) ||
            (want == SS_IDLE && s->p->draining) || !hash_eq(&s->head, h) ||
            !owner_same(&s->owner, o))
            continue;
        if (pin ? (s->pin && strcmp(s->pin, pin) == 0) : !s->pin)
            return s;
    }
    return NULL;
}

/* The global cap's victim as it was: least recently used idle, else parked. */
static struct sess *ref_victim(struct broker *b)
{
    struct sess *v = NULL;

    for (struct sess *s = b->sessions; s; s = s->next) {
        if (s->state != SS_IDLE && s->state != SS_PARKED)
            continue;
        if (!v || (v->state == SS_PARKED && s->state == SS_IDLE) ||
            (v->state == s->state && s->last_used_ms < v->last_used_ms))
            v = s;
    }
    return v;
}

static int live_has(struct broker *b, const struct sess *x)
{
    for (struct sess *s = b->sessions; s; s = s->next)
        if (s == x)
            return 1;
    return 0;
}

/* A session of o for conversation root, holding head h in state st, last used at t. */
static struct sess *mk_sess_root(struct fx *f, const struct sess_owner *o, const char *pin,
                                 const struct hash *root, const struct hash *h,
                                 enum sess_state st, uint64_t t)
{
    struct sess *s = sess__new(&f->b->pool[0], NULL, pin, "gpt-test", o, root);

    sess__set_head(s, h);
    sess__set_state(s, st);
    sess__touch(s, t);
    return s;
}

static struct sess *mk_sess(struct fx *f, const struct sess_owner *o, const char *pin,
                            const struct hash *h, enum sess_state st, uint64_t t)
{
    struct hash root = head_of(999999, 0);

    return mk_sess_root(f, o, pin, &root, h, st, t);
}

static void check_find(struct broker *b, const struct hash *h, enum sess_state want,
                       const char *pin, const struct sess_owner *o)
{
    assert_ptr_equal(sess__find(b, h, want, pin, o), ref_find(b, h, want, pin, o));
}

/* 1000 sessions: each is found by its head, state, pin and owner, and by nothing else. */
static void test_index_find(void **state)
{
    struct fx *f = fx_start(0);
    struct broker *b = f->b;
    struct sess_owner o, eve;
    struct sess **s = calloc(NSESS, sizeof(*s));
    struct sess *older, *newer;
    struct hash h, h2;

    sess_owner_set(&o, "anon", NULL, NULL);
    sess_owner_set(&eve, "eve", NULL, NULL);
    for (unsigned i = 0; i < NSESS; i++) {
        h = head_of(i, 0);
        s[i] = mk_sess(f, &o, i % 3 ? NULL : "pin-a", &h, i % 4 ? SS_IDLE : SS_PARKED, 1000 + i);
    }
    for (unsigned i = 0; i < NSESS; i++) {
        enum sess_state st = i % 4 ? SS_IDLE : SS_PARKED;
        const char *pin = i % 3 ? NULL : "pin-a";

        h = head_of(i, 0);
        assert_ptr_equal(sess__find(b, &h, st, pin, &o), s[i]);
        assert_null(sess__find(b, &h, st == SS_IDLE ? SS_PARKED : SS_IDLE, pin, &o));
        assert_null(sess__find(b, &h, st, pin ? NULL : "pin-a", &o));
        assert_null(sess__find(b, &h, st, "pin-b", &o));
        assert_null(sess__find(b, &h, st, pin, &eve));
        h = head_of(i, 1); /* same first 8 bytes: same bucket, another head */
        assert_null(sess__find(b, &h, st, pin, &o));
        h = head_of(NSESS + i, 0);
        assert_null(sess__find(b, &h, st, pin, &o));
    }

    /* Two sessions hold the same history: the newer is found, then the older once the
     * newer is busy; a busy session is never found idle. */
    h = head_of(7, 5);
    h2 = head_of(8, 5);
    older = mk_sess(f, &o, NULL, &h2, SS_IDLE, 5000);
    newer = mk_sess(f, &o, NULL, &h, SS_IDLE, 4000);
    sess__set_head(older, &h); /* the older one reaches the head last */
    assert_ptr_equal(sess__find(b, &h, SS_IDLE, NULL, &o), newer);
    sess__set_state(newer, SS_BUSY);
    assert_ptr_equal(sess__find(b, &h, SS_IDLE, NULL, &o), older);
    check_find(b, &h, SS_IDLE, NULL, &o);

    /* A new head moves the session in the index. */
    h2 = head_of(7, 6);
    sess__set_head(older, &h2);
    assert_null(sess__find(b, &h, SS_IDLE, NULL, &o));
    assert_ptr_equal(sess__find(b, &h2, SS_IDLE, NULL, &o), older);
    assert_int_equal(b->ix[SIX_HEAD].n, NSESS + 2);

    /* Random heads and states, checked against the scan. */
    srand(12);
    for (int k = 0; k < 5000; k++) {
        unsigned i = (unsigned)rand() % (NSESS + 20);
        const char *pins[] = {NULL, "pin-a", "pin-b"};
        enum sess_state st = (enum sess_state)(rand() % 3);

        if (i < NSESS && rand() % 4 == 0) /* a turn: busy, then idle or parked again */
            sess__set_state(s[i], st);
        h = head_of(i, (unsigned)rand() % 2);
        check_find(b, &h, st, pins[rand() % 3], rand() % 8 ? &o : &eve);
    }
    sess_owner_release(&o);
    sess_owner_release(&eve);
    free(s);
    fx_stop(f);
}

/* At the cap, sessions are evicted least recently used first (idle before parked, equal
 * last use: the newest), also after touches and state changes; busy ones never. */
static void test_index_evict_lru(void **state)
{
    struct fx *f = fx_start(0);
    struct broker *b = f->b;
    struct sess_owner o;
    struct sess **s = calloc(NSESS, sizeof(*s));
    struct hash h;
    int64_t evicted0 = b->st.sessions_evicted;
    int busy = 0;

    sess_owner_set(&o, "anon", NULL, NULL);
    srand(7);
    for (unsigned i = 0; i < NSESS; i++) {
        int r = rand() % 10;
        enum sess_state st = r < 6 ? SS_IDLE : r < 9 ? SS_PARKED : SS_BUSY;

        h = head_of(i, 0);
        busy += st == SS_BUSY;
        /* last uses in a shuffled order, a tenth of them shared (the same millisecond) */
        s[i] = mk_sess(f, &o, NULL, &h, st, 100000 + (uint64_t)(rand() % 900));
    }
    for (int k = 0; k < 300; k++) { /* uses and turns move sessions in the queues */
        struct sess *x = s[rand() % NSESS];
        if (x->state == SS_IDLE || x->state == SS_PARKED)
            sess__touch(x, 100000 + (uint64_t)(rand() % 1200));
    }
    for (;;) {
        struct sess *want = ref_victim(b);
        int64_t live = b->st.sessions_live;

        b->cfg.max_sessions = (int)live; /* one over: one goes */
        sess__evict_for_new(b, NULL);
        if (!want) {
            assert_int_equal(b->st.sessions_live, live); /* every one busy: none goes */
            break;
        }
        assert_int_equal(b->st.sessions_live, live - 1);
        assert_false(live_has(b, want));
        if (rand() % 16 == 0) { /* a busy one finishes its turn */
            for (unsigned i = 0; i < NSESS; i++)
                if (live_has(b, s[i]) && s[i]->state == SS_BUSY) {
                    sess__touch(s[i], 200000 + (uint64_t)i);
                    sess__set_state(s[i], SS_IDLE);
                    busy--;
                    break;
                }
        }
    }
    assert_int_equal(b->st.sessions_evicted - evicted0, NSESS - busy);
    assert_null(b->idle.front);
    assert_null(b->parked.front);
    assert_int_equal(b->st.sessions_parked, 0);
    sess_owner_release(&o);
    free(s);
    fx_stop(f);
}

/* An agent's max-sessions: its least recently used idle sessions go until it is under its
 * cap; its busy ones and other profiles' sessions stay; the count follows closes. */
static void test_index_profile_cap(void **state)
{
    struct fx *f = fx_start(0);
    struct broker *b = f->b;
    struct session_profile agent = profile_pure_model;
    struct sess_owner o, plain;
    struct sess *s[6], *other;
    struct hash h;

    agent.id = "agent/x";
    agent.max_sessions = 3;
    sess_owner_set(&o, "anon", &agent, NULL);
    sess_owner_set(&plain, "anon", NULL, NULL);
    h = head_of(100, 0);
    other = mk_sess(f, &plain, NULL, &h, SS_IDLE, 1); /* the oldest of all */
    for (unsigned i = 0; i < 6; i++) {
        h = head_of(i, 0);
        s[i] = mk_sess(f, &o, NULL, &h, i == 0 ? SS_BUSY : SS_IDLE, 50 - 10 * i);
    }
    /* s[5] (last used 0), s[4] (10), s[3] (20) and s[2] (30) go: 6 -> 2 under a cap of 3 */
    sess__evict_for_new(b, &agent);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(live_has(b, s[i]), i < 2);
    assert_true(live_has(b, other));
    assert_int_equal(s[0]->prof->n, 2);
    /* the other profile is under no cap of its own */
    sess__evict_for_new(b, &profile_pure_model);
    assert_true(live_has(b, other));

    /* Closing counts: the busy one closes, and the cap of 3 is not reached again. */
    sess__close(s[0], "test");
    h = head_of(9, 0);
    s[2] = mk_sess(f, &o, NULL, &h, SS_IDLE, 60);
    sess__evict_for_new(b, &agent);
    assert_true(live_has(b, s[1]));
    assert_true(live_has(b, s[2]));
    sess__close(s[1], "test");
    sess__close(s[2], "test");
    assert_null(b->profs->next); /* the agent's entry went with its last session */
    assert_ptr_equal(b->profs->profile, &profile_pure_model);
    sess_owner_release(&o);
    sess_owner_release(&plain);
    fx_stop(f);
}

/* Unpinning closes the pin's idle and parked sessions of that root and owner, clears the
 * pin of a busy one, and leaves other roots, owners and pins alone. */
static void test_index_unpin(void **state)
{
    struct fx *f = fx_start(0);
    struct broker *b = f->b;
    struct sess_owner o, eve;
    struct sess *idle, *parked, *busy, *root2, *other, *pin2;
    struct hash r1 = head_of(1000, 0), r2 = head_of(2000, 0), h[6];

    sess_owner_set(&o, "anon", NULL, NULL);
    sess_owner_set(&eve, "eve", NULL, NULL);
    for (unsigned i = 0; i < 6; i++)
        h[i] = head_of(i, 0);
    idle = mk_sess_root(f, &o, "p", &r1, &h[0], SS_IDLE, 1);
    parked = mk_sess_root(f, &o, "p", &r1, &h[1], SS_PARKED, 2);
    busy = mk_sess_root(f, &o, "p", &r1, &h[2], SS_BUSY, 3);
    root2 = mk_sess_root(f, &o, "p", &r2, &h[3], SS_IDLE, 4);
    other = mk_sess_root(f, &eve, "p", &r1, &h[4], SS_IDLE, 5);
    pin2 = mk_sess_root(f, &o, "q", &r1, &h[5], SS_IDLE, 6);
    for (int i = 0; i < 200; i++) { /* other pins, and other roots of the pin, fill the index */
        char pin[16];
        struct hash hx = head_of(3000 + (unsigned)i, 0), rx = head_of(4000 + (unsigned)i, 0);
        snprintf(pin, sizeof(pin), "p%d", i);
        mk_sess_root(f, &o, i % 2 ? pin : "p", i % 2 ? &r1 : &rx, &hx, SS_IDLE, 10);
    }
    assert_int_equal(b->ix[SIX_PIN].n, 206);

    sess__unpin(b, "p", &r1, &o);
    assert_false(live_has(b, idle));
    assert_false(live_has(b, parked));
    assert_true(live_has(b, busy));
    assert_null(busy->pin);
    assert_string_equal(root2->pin, "p");
    assert_string_equal(other->pin, "p");
    assert_string_equal(pin2->pin, "q");
    assert_int_equal(b->ix[SIX_PIN].n, 203);
    /* the busy one, back from its turn, is found unpinned */
    sess__set_state(busy, SS_IDLE);
    assert_ptr_equal(sess__find(b, &h[2], SS_IDLE, NULL, &o), busy);
    assert_null(sess__find(b, &h[2], SS_IDLE, "p", &o));
    assert_ptr_equal(sess__find(b, &h[3], SS_IDLE, "p", &o), root2);
    sess_owner_release(&o);
    sess_owner_release(&eve);
    fx_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure_model_params),   cmocka_unit_test(test_profile_params),
        cmocka_unit_test(test_create_params_sent),  cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_tool_parking),        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_busy_session),        cmocka_unit_test(test_retry_on_dead_process),
        cmocka_unit_test(test_principal_isolation), cmocka_unit_test(test_dormant_isolation),
        cmocka_unit_test(test_dormant_cancel_during_lookup),
        cmocka_unit_test(test_dormant_concurrent),
        cmocka_unit_test(test_permission_prompt),
        cmocka_unit_test(test_index_find),          cmocka_unit_test(test_index_evict_lru),
        cmocka_unit_test(test_index_profile_cap),   cmocka_unit_test(test_index_unpin),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
