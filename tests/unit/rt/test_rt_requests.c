/*
 * Tests for runtime->host requests: dispatch to per-session and per-method
 * handlers, answers now or later, the deadline, and what a handle is worth
 * once its child, its watch or the whole rt is gone.  A node stand-in
 * (fakert.mjs) sends the requests where the test must choose them; the hook
 * wire format is checked against the real pinned runtime ($COPILOT_RUNTIME)
 * with a fake model on loopback that makes it call `bash`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "rt/locate.h"
#include "rt/rt.h"
#include "rttest.h"
#include "testsrv.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 15000
#define TURN_MS 60000 /* a whole agent turn of the real runtime */

enum mode {
    ANSWER_NOW, /* handlers answer before returning */
    KEEP,       /* handlers keep the handle */
    FREE_RT,    /* the session handler calls rt_free() */
    UNWATCH,    /* the session handler unwatches its own session */
};

/* What the fake model makes of the real runtime's preToolUse hook. */
enum pre { PRE_DENY, PRE_ALLOW, PRE_PASS, PRE_SILENT };

struct ctx {
    struct event_base *base;
    struct rt *rt;
    char dir[64], home[128], cwd[128], victim[160];
    int ups, downs, lost;
    enum mode mode;
    size_t max_frame; /* 0: rt's default */
    int by_session, by_method; /* handler calls */
    uint64_t held[4];
    int nheld;
    int pending_at_lost;   /* rt_request_pending(held[0]) inside lost() */
    int rc_in;

    /* The real runtime's turn. */
    char sid[37];
    enum pre pre;
    char order[512];
    int bad_shape, hook_fail, perms, idle, completes, complete_ok;
    char tool_name[32], tool_cmd[256], complete_msg[256];
    uint64_t deferred;
    struct evhttp *model;
    int model_port, model_calls;
};

struct reply {
    int n, code;
    json_t *result;
};

static void on_up(struct rt *rt, void *ud)
{
    ((struct ctx *)ud)->ups++;
}

static void on_down(struct rt *rt, void *ud, const char *why)
{
    ((struct ctx *)ud)->downs++;
}

static void reply_cb(void *ud, const json_t *result, const struct gw_err *err)
{
    struct reply *r = ud;

    r->n++;
    r->code = err ? (int)err->code : 0;
    json_decref(r->result);
    r->result = result ? json_deep_copy(result) : NULL;
}

static void run_for(struct ctx *c, int ms)
{
    int never = 0;
    run_loop_until(c->base, &never, 1, ms);
}

static struct rt *new_rt(struct ctx *c, const char *path, int call_ms, int request_ms)
{
    struct rt_config cfg = rttest_cfg(path, c->home, c->cwd);

    cfg.call_timeout_ms = call_ms;
    cfg.request_timeout_ms = request_ms;
    cfg.max_frame = c->max_frame;
    cfg.on_up = on_up;
    cfg.on_down = on_down;
    cfg.ud = c;
    return rt_new(c->base, &cfg);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    rttest_dirs(c->dir, c->home, c->cwd, "gw-test-rtrq");
    snprintf(c->victim, sizeof(c->victim), "%s/victim", c->cwd);
    c->base = event_base_new();
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    rt_free(c->rt);
    if (c->model)
        evhttp_free(c->model);
    event_base_free(c->base);
    util_rmtree(c->dir);
    free(c);
    return 0;
}

/* --- handlers ------------------------------------------------------------------ */

static void on_session_request(void *ud, uint64_t req, const char *method, const json_t *params)
{
    struct ctx *c = ud;

    c->by_session++;
    switch (c->mode) {
    case ANSWER_NOW:
        assert_int_equal(rt_answer(c->rt, req, json_pack("{s:s, s:s}", "who", "session", "method",
                                                         method)),
                         GW_OK);
        break;
    case KEEP:
        assert_true(c->nheld < 4);
        c->held[c->nheld++] = req;
        break;
    case FREE_RT:
        rt_free(c->rt);
        c->rt = NULL;
        break;
    case UNWATCH:
        rt_unwatch(c->rt, "S1");
        c->rc_in = rt_answer(c->rt, req, json_object());
        break;
    }
}

static void on_method_request(void *ud, uint64_t req, const char *method, const json_t *params)
{
    struct ctx *c = ud;

    c->by_method++;
    if (c->mode == KEEP) {
        assert_true(c->nheld < 4);
        c->held[c->nheld++] = req;
        return;
    }
    assert_int_equal(rt_answer(c->rt, req, json_pack("{s:s}", "who", "method")), GW_OK);
}

static void on_lost(void *ud, const struct gw_err *err)
{
    struct ctx *c = ud;

    c->lost++;
    c->pending_at_lost = c->nheld ? rt_request_pending(c->rt, c->held[0]) : -1;
}

static const struct rt_watch_ops session_ops = {.lost = on_lost, .request = on_session_request};
static const struct rt_watch_ops events_only_ops = {.lost = on_lost};

/* --- the node stand-in ------------------------------------------------------- */

static const char *fake_runtime(struct ctx *c)
{
    static char path[160];
    char cwd[512];
    FILE *f;

    if (access("/usr/bin/node", X_OK) != 0 && system("command -v node >/dev/null 2>&1") != 0) {
        print_message("SKIP: no node on PATH\n");
        skip();
    }
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    snprintf(path, sizeof(path), "%s/fake-runtime", c->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\nexec node '%s/tests/unit/rt/fakert.mjs'\n", cwd);
    fclose(f);
    chmod(path, 0700);
    return path;
}

static void start_fake(struct ctx *c, int call_ms, int request_ms)
{
    c->rt = new_rt(c, fake_runtime(c), call_ms, request_ms);
    rt_handle(c->rt, "hooks.invoke", on_method_request, c); /* before start: kept */
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_loop_until(c->base, &c->ups, 1, WAIT_MS));
    assert_int_equal(rt_watch(c->rt, "S1", &session_ops, c), 0);
    assert_int_equal(rt_watch(c->rt, "S3", &events_only_ops, c), 0);
}

/* Makes the stand-in send {method, params (stolen, may be NULL)}; r gets {answer}. */
static void fake_request(struct ctx *c, const char *method, json_t *params, struct reply *r)
{
    json_t *p = json_pack("{s:s}", "method", method);

    if (params)
        json_object_set_new(p, "params", params);
    assert_int_equal(rt_call(c->rt, "fake.request", p, 10000, reply_cb, r, NULL), 0);
}

/* The host's answer as the stand-in saw it (borrowed from r). */
static json_t *answer_of(struct reply *r)
{
    json_t *a;

    assert_int_equal(r->code, 0);
    a = json_object_get(r->result, "answer");
    assert_non_null(a);
    return a;
}

static void assert_result_who(struct reply *r, const char *who)
{
    const char *w = NULL;

    assert_int_equal(json_unpack(answer_of(r), "{s:{s:s}}", "result", "who", &w), 0);
    assert_string_equal(w, who);
}

static void assert_error(struct reply *r, int code, const char *msg)
{
    json_int_t k = 0;
    const char *m = NULL;

    assert_int_equal(
        json_unpack(answer_of(r), "{s:{s:I, s:s}}", "error", "code", &k, "message", &m), 0);
    assert_int_equal(k, code);
    assert_string_equal(m, msg);
}

static void wait_reply(struct ctx *c, struct reply *r)
{
    assert_true(run_loop_until(c->base, &r->n, 1, WAIT_MS));
}

static json_t *sid_params(const char *sid)
{
    return json_pack("{s:s, s:s, s:{}}", "sessionId", sid, "hookType", "preToolUse", "input");
}

/* --- dispatch ---------------------------------------------------------------------- */

static void test_dispatch(void **state)
{
    struct ctx *c = *state;
    struct reply r[8] = {{0}};
    json_int_t id = 0;

    start_fake(c, 10000, 0);
    fake_request(c, "hooks.invoke", sid_params("S1"), &r[0]);      /* watched, with request op */
    fake_request(c, "hooks.invoke", sid_params("S2"), &r[1]);      /* not watched */
    fake_request(c, "hooks.invoke", sid_params("S3"), &r[2]);      /* watched, no request op */
    fake_request(c, "userInput.request", sid_params("S1"), &r[3]); /* any method */
    fake_request(c, "userInput.request", sid_params("S2"), &r[4]); /* nobody */
    fake_request(c, "hooks.invoke", NULL, &r[5]);                  /* no params at all */
    assert_int_equal(c->by_session + c->by_method, 0); /* never from inside rt_call */
    for (int i = 0; i < 6; i++)
        wait_reply(c, &r[i]);
    assert_result_who(&r[0], "session");
    assert_result_who(&r[1], "method");
    assert_result_who(&r[2], "method");
    assert_result_who(&r[3], "session");
    assert_error(&r[4], -32601, "Unhandled method userInput.request");
    assert_result_who(&r[5], "method");
    assert_int_equal(c->by_session, 2);
    assert_int_equal(c->by_method, 3);

    /* The runtime's own id comes back as it was, a number here. */
    assert_int_equal(rt_call(c->rt, "fake.request",
                             json_pack("{s:s, s:i, s:o}", "method", "hooks.invoke", "id", 7,
                                       "params", sid_params("S1")),
                             10000, reply_cb, &r[6], NULL),
                     0);
    wait_reply(c, &r[6]);
    assert_int_equal(json_unpack(answer_of(&r[6]), "{s:I}", "id", &id), 0);
    assert_int_equal(id, 7);

    /* Unregistered: back to "method not found". */
    rt_handle(c->rt, "hooks.invoke", NULL, NULL);
    rt_handle(c->rt, "hooks.invoke", NULL, NULL); /* twice: no-op */
    fake_request(c, "hooks.invoke", sid_params("S2"), &r[7]);
    wait_reply(c, &r[7]);
    assert_error(&r[7], -32601, "Unhandled method hooks.invoke");
    for (int i = 0; i < 8; i++)
        json_decref(r[i].result);
}

/* Answers given later, an error answer, and a second answer to the same handle. */
static void test_answer_later(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0}, b = {0}, d = {0};

    start_fake(c, 10000, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    fake_request(c, "hooks.invoke", sid_params("S2"), &b);
    fake_request(c, "hooks.invoke", sid_params("S1"), &d);
    assert_true(run_loop_until(c->base, &c->nheld, 3, WAIT_MS));
    assert_true(c->held[0] != c->held[1] && c->held[1] != c->held[2]);
    for (int i = 0; i < 3; i++)
        assert_true(rt_request_pending(c->rt, c->held[i]));
    run_for(c, 100);
    assert_int_equal(a.n + b.n + d.n, 0); /* nothing answers for us */

    assert_int_equal(rt_answer_error(c->rt, c->held[0], -32000, "nope"), GW_OK);
    assert_int_equal(rt_answer(c->rt, c->held[1], json_pack("{s:n}", "output")), GW_OK);
    assert_int_equal(rt_answer(c->rt, c->held[2], NULL), GW_OK); /* JSON null */
    assert_false(rt_request_pending(c->rt, c->held[0]));
    assert_int_equal(rt_answer(c->rt, c->held[0], json_object()), GW_ENOTFOUND);
    assert_int_equal(rt_answer_error(c->rt, c->held[1], -1, "x"), GW_ENOTFOUND);
    assert_int_equal(rt_answer(c->rt, 424242, NULL), GW_ENOTFOUND);
    wait_reply(c, &a);
    wait_reply(c, &b);
    wait_reply(c, &d);
    assert_error(&a, -32000, "nope");
    assert_true(json_is_null(json_object_get(json_object_get(answer_of(&b), "result"), "output")));
    assert_true(json_is_null(json_object_get(answer_of(&d), "result")));
    json_decref(a.result);
    json_decref(b.result);
    json_decref(d.result);
}

/* An answer over the frame limit becomes an error answer: the runtime still gets one. */
static void test_answer_too_big(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0};
    char *big = calloc(1, 8192);

    c->max_frame = 4096;
    start_fake(c, 10000, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    assert_true(run_loop_until(c->base, &c->nheld, 1, WAIT_MS));
    memset(big, 'x', 8191);
    assert_int_equal(rt_answer(c->rt, c->held[0], json_pack("{s:s}", "output", big)), GW_EINVAL);
    assert_false(rt_request_pending(c->rt, c->held[0]));
    wait_reply(c, &a);
    assert_error(&a, -32603, "copilot-gateway could not encode its answer");
    free(big);
    json_decref(a.result);
}

/* Reads a whole small file into out (NUL-terminated). */
static void slurp(const char *path, char *out, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t k;

    assert_non_null(f);
    k = fread(out, 1, n - 1, f);
    out[k] = '\0';
    fclose(f);
}

/* Unanswered: rt answers with an error after the deadline; the log has no params. */
static void test_timeout(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0};
    enum log_level old = log_level_current;
    char logpath[160], logs[16384];
    int saved, fd;

    snprintf(logpath, sizeof(logpath), "%s/log", c->dir);
    start_fake(c, 10000, 200);
    c->mode = KEEP;
    fflush(stderr);
    saved = dup(2);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);
    log_level_current = LOG_DEBUG;
    fake_request(c, "hooks.invoke",
                 json_pack("{s:s, s:s, s:{s:s}}", "sessionId", "S1", "hookType",
                           "userPromptSubmitted", "input", "prompt", "SECRET-PROMPT-4711"),
                 &r);
    wait_reply(c, &r);
    log_level_current = old;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(c->nheld, 1);
    assert_error(&r, -32603, "copilot-gateway did not answer in time");
    assert_false(rt_request_pending(c->rt, c->held[0]));
    assert_int_equal(rt_answer(c->rt, c->held[0], json_object()), GW_ENOTFOUND); /* too late */
    slurp(logpath, logs, sizeof(logs));
    assert_non_null(strstr(logs, "request 'hooks.invoke' (req 1) not answered in 200 ms"));
    assert_null(strstr(logs, "SECRET-PROMPT-4711"));
    json_decref(r.result);
}

/* The deadline defaults to the call timeout. */
static void test_timeout_default(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0};

    start_fake(c, 1500, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S2"), &r); /* its own timeout: 10 s */
    wait_reply(c, &r);
    assert_int_equal(c->by_method, 1);
    assert_error(&r, -32603, "copilot-gateway did not answer in time");
    json_decref(r.result);
}

/* The child dies with requests unanswered: their handles die before lost() runs. */
static void test_child_dies(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0}, b = {0}, after = {0};

    start_fake(c, 10000, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    fake_request(c, "hooks.invoke", sid_params("S2"), &b);
    assert_true(run_loop_until(c->base, &c->nheld, 2, WAIT_MS));
    assert_int_equal(rt_call(c->rt, "fake.exit", NULL, 0, NULL, NULL, NULL), 0);
    assert_true(run_loop_until(c->base, &c->downs, 1, WAIT_MS));
    assert_int_equal(c->lost, 2); /* S1 and S3 */
    assert_int_equal(c->pending_at_lost, 0);
    assert_int_equal(a.code, GW_ERUNTIME);
    assert_int_equal(b.code, GW_ERUNTIME);
    assert_int_equal(rt_answer(c->rt, c->held[0], json_object()), GW_ENOTFOUND);
    assert_int_equal(rt_answer_error(c->rt, c->held[1], -1, "late"), GW_ENOTFOUND);

    /* The method's handler outlives the child; handles are never reused. */
    assert_true(run_loop_until(c->base, &c->ups, 2, WAIT_MS));
    fake_request(c, "hooks.invoke", sid_params("S2"), &after);
    assert_true(run_loop_until(c->base, &c->nheld, 3, WAIT_MS));
    assert_true(c->held[2] > c->held[1]);
    assert_false(rt_request_pending(c->rt, c->held[1]));
    assert_int_equal(rt_answer(c->rt, c->held[2], json_pack("{s:s}", "who", "late")), GW_OK);
    wait_reply(c, &after);
    assert_result_who(&after, "late");
    json_decref(after.result);
}

/* Removing the watch answers its session's requests; other sessions' stay. */
static void test_unwatch(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0}, b = {0};

    start_fake(c, 10000, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    fake_request(c, "hooks.invoke", sid_params("S2"), &b);
    assert_true(run_loop_until(c->base, &c->nheld, 2, WAIT_MS));
    rt_unwatch(c->rt, "S1");
    assert_false(rt_request_pending(c->rt, c->held[0]));
    assert_true(rt_request_pending(c->rt, c->held[1]));
    assert_int_equal(rt_answer(c->rt, c->held[0], json_object()), GW_ENOTFOUND);
    wait_reply(c, &a);
    assert_error(&a, -32603, "the session is no longer watched by copilot-gateway");
    assert_int_equal(rt_answer(c->rt, c->held[1], json_pack("{s:s}", "who", "method")), GW_OK);
    wait_reply(c, &b);
    assert_result_who(&b, "method");
    assert_int_equal(c->lost, 0);
    json_decref(a.result);
    json_decref(b.result);
}

/* A handler that unwatches its own session has lost its request. */
static void test_unwatch_in_handler(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0};

    start_fake(c, 10000, 0);
    c->mode = UNWATCH;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    wait_reply(c, &a);
    assert_int_equal(c->rc_in, GW_ENOTFOUND);
    assert_error(&a, -32603, "the session is no longer watched by copilot-gateway");
    json_decref(a.result);
}

/* rt_free with requests unanswered, and rt_free from inside a handler. */
static void test_free_pending(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0};
    int pid;

    start_fake(c, 10000, 0);
    c->mode = KEEP;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    assert_true(run_loop_until(c->base, &c->nheld, 1, WAIT_MS));
    pid = rt_pid(c->rt);
    rt_free(c->rt);
    c->rt = NULL;
    assert_int_equal(kill(pid, 0), -1);
    run_for(c, 100);
    assert_int_equal(a.n, 0); /* dropped silently */
    assert_int_equal(c->lost, 0);
}

static void test_free_in_handler(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0}, b = {0};

    start_fake(c, 10000, 0);
    c->mode = FREE_RT;
    fake_request(c, "hooks.invoke", sid_params("S1"), &a);
    fake_request(c, "hooks.invoke", sid_params("S1"), &b);
    assert_true(run_loop_until(c->base, &c->by_session, 1, WAIT_MS));
    assert_null(c->rt);
    run_for(c, 200);
    assert_int_equal(c->by_session, 1);
    assert_int_equal(a.n + b.n, 0);
}

/* --- the real runtime: hooks ------------------------------------------------------ */

/* The fake model: the first call asks for `rm -rf <victim>` with bash, the next says done. */
static void on_model(struct evhttp_request *req, void *arg)
{
    struct ctx *c = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *body = calloc(1, n + 1), *args, *s;
    json_t *msg, *out;

    evbuffer_copyout(in, body, n);
    c->model_calls++;
    if (!strstr(evhttp_request_get_uri(req), "chat/completions")) {
        free(body);
        testsrv_reply(req, 404, "{}");
        return;
    }
    if (strstr(body, "\"role\":\"tool\"")) {
        msg = json_pack("{s:s, s:s}", "role", "assistant", "content", "done");
    } else {
        json_t *a = json_pack("{s:s+, s:s}", "command", "rm -rf ", c->victim, "description",
                              "delete victim");
        args = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        msg = json_pack("{s:s, s:n, s:[{s:s, s:s, s:{s:s, s:s}}]}", "role", "assistant",
                        "content", "tool_calls", "id", "call_rm", "type", "function", "function",
                        "name", "bash", "arguments", args);
        free(args);
    }
    out = json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:o, s:s}], s:{s:i, s:i, s:i}}", "id",
                    "chatcmpl-1", "object", "chat.completion", "created", 1, "model", "fake-model",
                    "choices", "index", 0, "message", msg, "finish_reason",
                    json_object_get(msg, "tool_calls") ? "tool_calls" : "stop", "usage",
                    "prompt_tokens", 10, "completion_tokens", 5, "total_tokens", 15);
    s = json_dumps(out, JSON_COMPACT);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    testsrv_reply(req, 200, s);
    free(s);
    json_decref(out);
    free(body);
}

static void answer_deny(evutil_socket_t fd, short what, void *arg)
{
    struct ctx *c = arg;

    assert_int_equal(rt_answer(c->rt, c->deferred,
                               json_pack("{s:{s:s, s:s}}", "output", "permissionDecision", "deny",
                                         "permissionDecisionReason", "denied by test")),
                     GW_OK);
}

static void on_hook(void *ud, uint64_t req, const char *method, const json_t *params)
{
    struct ctx *c = ud;
    const char *sid = "", *type = "", *tool = "", *cmd = "";
    json_t *input = NULL;
    struct timeval tv = {0, 20000};
    size_t len = strlen(c->order);

    if (strcmp(method, "hooks.invoke") != 0 ||
        json_unpack((json_t *)params, "{s:s, s:s, s:o}", "sessionId", &sid, "hookType", &type,
                    "input", &input) != 0 ||
        strcmp(sid, c->sid) != 0 || !json_is_object(input))
        c->bad_shape++;
    snprintf(c->order + len, sizeof(c->order) - len, "%s%s", len ? "," : "", type);
    if (strcmp(type, "preToolUse") != 0) {
        assert_int_equal(rt_answer(c->rt, req, json_pack("{s:n}", "output")), GW_OK);
        return;
    }
    json_unpack(input, "{s:s, s:{s:s}}", "toolName", &tool, "toolArgs", "command", &cmd);
    snprintf(c->tool_name, sizeof(c->tool_name), "%s", tool);
    snprintf(c->tool_cmd, sizeof(c->tool_cmd), "%s", cmd);
    switch (c->pre) {
    case PRE_DENY: /* later, from the loop: an asynchronous answer */
        c->deferred = req;
        event_base_once(c->base, -1, EV_TIMEOUT, answer_deny, c, &tv);
        break;
    case PRE_ALLOW:
        rt_answer(c->rt, req, json_pack("{s:{s:s}}", "output", "permissionDecision", "allow"));
        break;
    case PRE_PASS:
        rt_answer(c->rt, req, json_pack("{s:n}", "output"));
        break;
    case PRE_SILENT: /* rt's deadline answers */
        break;
    }
}

static void on_turn_event(void *ud, const char *type, const json_t *event)
{
    struct ctx *c = ud;
    json_t *data = json_object_get(event, "data");
    const char *rid = NULL, *msg = "";
    int ok = 0;

    if (strcmp(type, "permission.requested") == 0) {
        c->perms++;
        json_unpack(data, "{s:s}", "requestId", &rid);
        assert_non_null(rid);
        /* No decision to give: the default denial. */
        assert_int_equal(rt_permission_answer(c->rt, c->sid, rid, NULL), 0);
    } else if (strcmp(type, "tool.execution_complete") == 0) {
        c->completes++;
        json_unpack(data, "{s:b, s?{s:s}}", "success", &ok, "error", "message", &msg);
        c->complete_ok = ok;
        snprintf(c->complete_msg, sizeof(c->complete_msg), "%s", msg);
    } else if (strcmp(type, "hook.end") == 0) {
        json_unpack(data, "{s:b}", "success", &ok);
        c->hook_fail += !ok;
    } else if (strcmp(type, "session.idle") == 0) {
        c->idle++;
    }
}

static void on_turn_lost(void *ud, const struct gw_err *err)
{
    fail_msg("runtime lost: %s", err->msg);
}

static const struct rt_watch_ops turn_ops = {
    .event = on_turn_event, .lost = on_turn_lost, .request = on_hook};

/* One turn of the real runtime with hooks on, in which the model calls bash. */
static void real_turn(struct ctx *c, enum pre pre, int request_ms)
{
    const char *rt_path = rttest_runtime_path();
    struct reply cr = {0}, send = {0};
    char url[64];

    if (access(rt_path, X_OK) != 0) {
        print_message("SKIP: no Copilot runtime at %s (run `npm ci`)\n", rt_path);
        skip();
    }
    c->pre = pre;
    c->model = testsrv_new(c->base, "127.0.0.1", on_model, c, &c->model_port);
    assert_non_null(c->model);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1", c->model_port);
    assert_int_equal(util_mkdirs(c->victim), 0);
    c->rt = new_rt(c, rt_path, 30000, request_ms);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_loop_until(c->base, &c->ups, 1, WAIT_MS));
    print_message("runtime version: %s\n", rt_version(c->rt));
    util_uuid(c->sid);
    assert_int_equal(rt_watch(c->rt, c->sid, &turn_ops, c), 0);
    assert_int_equal(
        rt_call(c->rt, "session.create",
                json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:b, s:b, s:[s], s:b, s:s, s:{s:s, s:s},"
                          " s:{s:b}, s:s}",
                          "sessionId", c->sid, "model", "fake-model", "provider", "type", "openai",
                          "baseUrl", url, "apiKey", "k", "streaming", 0, "hooks", 1,
                          "availableTools", "bash", "requestPermission", 1, "workingDirectory",
                          c->cwd, "systemMessage", "mode", "replace", "content", "test",
                          "infiniteSessions", "enabled", 0, "envValueMode", "direct"),
                0, reply_cb, &cr, NULL),
        0);
    wait_reply(c, &cr);
    assert_int_equal(cr.code, 0);
    assert_int_equal(rt_call(c->rt, "session.send",
                             json_pack("{s:s, s:s}", "sessionId", c->sid, "prompt", "go"), 0,
                             reply_cb, &send, NULL),
                     0);
    assert_true(run_loop_until(c->base, &c->idle, 1, TURN_MS));
    print_message("hooks: %s; tool result: %s\n", c->order, c->complete_msg);
    assert_int_equal(send.code, 0);
    assert_int_equal(c->bad_shape, 0);
    assert_int_equal(c->hook_fail, 0);
    assert_string_equal(c->tool_name, "bash");
    assert_non_null(strstr(c->tool_cmd, "rm -rf "));
    assert_non_null(strstr(c->tool_cmd, c->victim));
    assert_int_equal(c->completes, 1);
    json_decref(cr.result);
    json_decref(send.result);
}

static int victim_exists(const struct ctx *c)
{
    struct stat st;
    return stat(c->victim, &st) == 0;
}

/* preToolUse deny: the tool never runs, and the model is told why. */
static void test_real_hook_deny(void **state)
{
    struct ctx *c = *state;

    real_turn(c, PRE_DENY, 0);
    assert_string_equal(c->order, "userPromptSubmitted,userPromptTransformed,sessionStart,"
                                  "preToolUse,agentStop,sessionEnd");
    assert_true(victim_exists(c));
    assert_false(c->complete_ok);
    assert_string_equal(c->complete_msg, "Denied by preToolUse hook: denied by test");
    assert_int_equal(c->perms, 0);
}

/* preToolUse allow is itself the decision: no permission prompt, the tool runs. */
static void test_real_hook_allow(void **state)
{
    struct ctx *c = *state;

    real_turn(c, PRE_ALLOW, 0);
    assert_string_equal(c->order, "userPromptSubmitted,userPromptTransformed,sessionStart,"
                                  "preToolUse,postToolUse,agentStop,sessionEnd");
    assert_false(victim_exists(c));
    assert_true(c->complete_ok);
    assert_int_equal(c->perms, 0);
}

/* {"output": null} leaves it to the permission prompt, which the default denies. */
static void test_real_hook_pass(void **state)
{
    struct ctx *c = *state;

    real_turn(c, PRE_PASS, 0);
    assert_int_equal(c->perms, 1);
    assert_true(victim_exists(c));
    assert_false(c->complete_ok);
    assert_string_equal(c->complete_msg,
                        "Permission denied and could not request permission from user");
}

/* An unanswered preToolUse: rt's error answer after the deadline counts as "no change". */
static void test_real_hook_timeout(void **state)
{
    struct ctx *c = *state;

    real_turn(c, PRE_SILENT, 500);
    assert_int_equal(c->perms, 1);
    assert_true(victim_exists(c));
    assert_string_equal(c->complete_msg,
                        "Permission denied and could not request permission from user");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_child_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwatch_in_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_hook_deny, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_hook_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_hook_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_hook_timeout, setup, teardown),
    };

    rttest_main_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
