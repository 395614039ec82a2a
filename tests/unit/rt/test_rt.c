/*
 * Tests for the runtime supervisor against the real Copilot runtime binary
 * ($COPILOT_RUNTIME, default: the npm install under the repo root), plus
 * small shell scripts standing in for a runtime where the real one cannot be
 * made to misbehave (garbage frames, a wrong protocol version, odd exits).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "rt/locate.h"
#include "rt/probe.h"
#include "rt/rt.h"
#include "rttest.h"
#include "testsrv.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define WAIT_MS 15000

struct ctx {
    struct event_base *base;
    struct rt *rt;
    char dir[64], home[128], cwd[128];
    int ups, downs, stopped, lost, events;
    int restart_in_down; /* on_down calls rt_start() itself */
    char why[512];
    char first_event[64];
};

struct reply {
    int n, code;
    char msg[512];
    json_t *result;
    struct ctx *free_rt; /* set: rt_free() from inside the callback */
};

static void on_up(struct rt *rt, void *ud)
{
    ((struct ctx *)ud)->ups++;
}

static void on_down(struct rt *rt, void *ud, const char *why)
{
    struct ctx *c = ud;
    c->downs++;
    snprintf(c->why, sizeof(c->why), "%s", why);
    if (c->restart_in_down)
        assert_int_equal(rt_start(rt), 0);
}

static void on_stopped(void *ud)
{
    ((struct ctx *)ud)->stopped++;
}

static void reply_cb(void *ud, const json_t *result, const struct gw_err *err)
{
    struct reply *r = ud;

    r->n++;
    r->code = err ? (int)err->code : 0;
    if (err)
        snprintf(r->msg, sizeof(r->msg), "%s", err->msg);
    json_decref(r->result);
    r->result = result ? json_deep_copy(result) : NULL;
    if (r->free_rt) {
        rt_free(r->free_rt->rt);
        r->free_rt->rt = NULL;
    }
}

/* Runs the loop until *counter >= want or the deadline passes. */
static int run_until(struct ctx *c, const int *counter, int want, int timeout_ms)
{
    return run_loop_until(c->base, counter, want, timeout_ms);
}

static void run_for(struct ctx *c, int ms)
{
    int never = 0;
    run_until(c, &never, 1, ms);
}

/* The config of an rt for the runtime at path, reporting to c. */
static struct rt_config test_cfg(struct ctx *c, const char *path)
{
    struct rt_config cfg = rttest_cfg(path, c->home, c->cwd);

    cfg.on_up = on_up;
    cfg.on_down = on_down;
    cfg.ud = c;
    return cfg;
}

/* An rt for the runtime at path, reporting to c; max_frame 0 keeps rt's default. */
static struct rt *new_rt_ex(struct ctx *c, const char *path, size_t max_frame, int call_timeout_ms)
{
    struct rt_config cfg = test_cfg(c, path);

    cfg.max_frame = max_frame;
    cfg.call_timeout_ms = call_timeout_ms;
    return rt_new(c->base, &cfg);
}

static struct rt *new_rt(struct ctx *c, const char *path)
{
    return new_rt_ex(c, path, 0, 10000);
}

/* An rt with the liveness ping on. */
static struct rt *new_rt_ping(struct ctx *c, const char *path, int interval_ms, int timeout_ms)
{
    struct rt_config cfg = test_cfg(c, path);

    cfg.ping_interval_ms = interval_ms;
    cfg.ping_timeout_ms = timeout_ms;
    return rt_new(c->base, &cfg);
}

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));

    rttest_dirs(c->dir, c->home, c->cwd, "gw-test-rt");
    c->base = event_base_new();
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;

    if (!c)
        return 0;
    rt_free(c->rt);
    event_base_free(c->base);
    util_rmtree(c->dir);
    free(c);
    return 0;
}

static void start_real(struct ctx *c)
{
    if (access(rttest_runtime_path(), X_OK) != 0) {
        print_message("SKIP: no Copilot runtime at %s (run `npm ci`, or set COPILOT_RUNTIME)\n",
                      rttest_runtime_path());
        skip();
    }
    c->rt = new_rt(c, rttest_runtime_path());
    assert_int_equal(rt_start(c->rt), 0);
    assert_int_equal(rt_state(c->rt), RT_STARTING);
    assert_int_equal(c->ups, 0); /* never from inside rt_start */
    assert_true(run_until(c, &c->ups, 1, WAIT_MS));
    assert_int_equal(rt_state(c->rt), RT_WARMING);
}

static void call(struct ctx *c, const char *method, json_t *params, struct reply *r)
{
    uint64_t id = 0;

    assert_int_equal(rt_call(c->rt, method, params, 0, reply_cb, r, &id), 0);
    assert_true(id > 0);
    assert_int_equal(r->n, 0); /* never from inside rt_call */
}

static void test_ping_status(void **state)
{
    struct ctx *c = *state;
    struct reply ping = {0}, status = {0};
    json_int_t pv = 0;
    const char *ver = NULL;

    start_real(c);
    assert_true(rt_generation(c->rt) == 1);
    assert_true(rt_pid(c->rt) > 0);
    assert_true(strlen(rt_version(c->rt)) > 0);
    assert_string_equal(rt_home(c->rt), c->home);
    rt_set_ready(c->rt);
    assert_int_equal(rt_state(c->rt), RT_READY);
    call(c, "ping", json_pack("{s:s}", "message", "hi"), &ping);
    call(c, "status.get", json_object(), &status);
    assert_true(run_until(c, &ping.n, 1, WAIT_MS));
    assert_true(run_until(c, &status.n, 1, WAIT_MS));
    assert_int_equal(ping.code, 0);
    assert_int_equal(json_unpack(ping.result, "{s:I}", "protocolVersion", &pv), 0);
    assert_int_equal(pv, 3);
    assert_int_equal(status.code, 0);
    assert_int_equal(json_unpack(status.result, "{s:s}", "version", &ver), 0);
    assert_string_equal(ver, rt_version(c->rt));
    json_decref(ping.result);
    json_decref(status.result);
}

static void test_unknown_method(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0};

    start_real(c);
    call(c, "no.such.method", NULL, &r);
    assert_true(run_until(c, &r.n, 1, WAIT_MS));
    assert_int_equal(r.code, GW_EUPSTREAM);
    assert_non_null(strstr(r.msg, "the Copilot runtime refused the request: "));
    assert_non_null(strstr(r.msg, "no.such.method"));
    assert_null(r.result);
    run_for(c, 100);
    assert_int_equal(r.n, 1);
}

static void test_concurrent_pings(void **state)
{
    struct ctx *c = *state;
    struct reply a = {0}, b = {0};
    const char *ma = NULL, *mb = NULL;

    start_real(c);
    call(c, "ping", json_pack("{s:s}", "message", "a"), &a);
    call(c, "ping", json_pack("{s:s}", "message", "b"), &b);
    assert_true(run_until(c, &a.n, 1, WAIT_MS));
    assert_true(run_until(c, &b.n, 1, WAIT_MS));
    assert_int_equal(json_unpack(a.result, "{s:s}", "message", &ma), 0);
    assert_int_equal(json_unpack(b.result, "{s:s}", "message", &mb), 0);
    assert_string_equal(ma, "pong: a");
    assert_string_equal(mb, "pong: b");
    run_for(c, 100);
    assert_int_equal(a.n + b.n, 2);
    json_decref(a.result);
    json_decref(b.result);
}

static void test_cancel(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0}, after = {0};
    uint64_t id;

    start_real(c);
    assert_int_equal(rt_call(c->rt, "ping", NULL, 0, reply_cb, &r, &id), 0);
    rt_cancel(c->rt, id);
    rt_cancel(c->rt, id + 1000); /* unknown: no-op */
    /* A later call proves the cancelled reply came back and was dropped. */
    call(c, "ping", NULL, &after);
    assert_true(run_until(c, &after.n, 1, WAIT_MS));
    run_for(c, 100);
    assert_int_equal(r.n, 0);
    json_decref(after.result);
}

static void on_watch_event(void *ud, const char *type, const json_t *event)
{
    struct ctx *c = ud;
    if (c->events++ == 0)
        snprintf(c->first_event, sizeof(c->first_event), "%s", type);
}

static void on_watch_lost(void *ud, const struct gw_err *err)
{
    struct ctx *c = ud;
    static const struct rt_watch_ops ops = {.event = on_watch_event, .lost = on_watch_lost};

    assert_int_equal(err->code, GW_ERUNTIME);
    c->lost++;
    /* The watch is already gone and the runtime is down: both calls are safe. */
    rt_unwatch(c->rt, "whatever");
    assert_int_equal(rt_watch(c->rt, "again", &ops, c), GW_ERUNTIME);
}

/* A session we name ourselves, so its first events are routed to our watch. */
static void create_session(struct ctx *c, const char *sid)
{
    static const struct rt_watch_ops ops = {.event = on_watch_event, .lost = on_watch_lost};
    struct reply r = {0};

    assert_int_equal(rt_watch(c->rt, sid, &ops, c), 0);
    assert_int_equal(rt_watch(c->rt, sid, &ops, c), GW_EINVAL);
    call(c, "session.create",
         json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:b, s:[]}", "sessionId", sid, "model",
                   "fake-model", "provider", "type", "openai", "baseUrl", "http://127.0.0.1:9/v1",
                   "apiKey", "k", "streaming", 1, "availableTools"),
         &r);
    assert_true(run_until(c, &r.n, 1, WAIT_MS));
    assert_int_equal(r.code, 0);
    json_decref(r.result);
}

static void test_kill_restart(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0}, after = {0};
    char sid[37];
    uint64_t gen;
    int pid;

    start_real(c);
    util_uuid(sid);
    create_session(c, sid);
    print_message("first event for our session: %s (%d events)\n", c->first_event, c->events);
    gen = rt_generation(c->rt);
    pid = rt_pid(c->rt);
    call(c, "ping", NULL, &r);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_int_equal(r.n, 1); /* answered, or failed with GW_ERUNTIME: once either way */
    if (r.code)
        assert_int_equal(r.code, GW_ERUNTIME);
    json_decref(r.result);
    assert_int_equal(c->lost, 1);
    assert_string_equal(c->why, "copilot runtime killed by signal 9");
    assert_int_equal(rt_state(c->rt), RT_BACKOFF);
    assert_int_equal(rt_pid(c->rt), 0);
    assert_int_equal(rt_call(c->rt, "ping", NULL, 0, reply_cb, &after, NULL), GW_ERUNTIME);
    assert_true(run_until(c, &c->ups, 2, WAIT_MS));
    assert_true(rt_generation(c->rt) == gen + 1);
    assert_true(rt_pid(c->rt) > 0);
    assert_int_not_equal(rt_pid(c->rt), pid);
    assert_int_equal(kill(pid, 0), -1); /* the old one is reaped */
    call(c, "ping", NULL, &after);
    assert_true(run_until(c, &after.n, 1, WAIT_MS));
    assert_int_equal(after.code, 0);
    json_decref(after.result);
    assert_int_equal(r.n, 1);
    assert_int_equal(c->lost, 1);
}

/* A restart requested from on_down itself skips the backoff and survives. */
static void test_restart_from_on_down(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0}, after = {0};

    start_real(c);
    c->restart_in_down = 1;
    call(c, "ping", NULL, &r);
    assert_int_equal(kill(rt_pid(c->rt), SIGKILL), 0);
    assert_true(run_until(c, &c->ups, 2, WAIT_MS));
    c->restart_in_down = 0;
    assert_int_equal(c->downs, 1);
    assert_int_equal(r.n, 1);
    assert_true(rt_generation(c->rt) == 2);
    call(c, "ping", NULL, &after);
    assert_true(run_until(c, &after.n, 1, WAIT_MS));
    assert_int_equal(after.code, 0);
    run_for(c, 400); /* the cancelled backoff timer must not start a third one */
    assert_true(rt_generation(c->rt) == 2);
    json_decref(r.result);
    json_decref(after.result);
}

static void test_stop(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0};
    int pid;

    start_real(c);
    rt_set_ready(c->rt);
    pid = rt_pid(c->rt);
    rt_stop(c->rt, on_stopped, c);
    assert_int_equal(rt_state(c->rt), RT_STOPPING);
    assert_int_equal(c->stopped, 0);
    assert_int_equal(rt_call(c->rt, "ping", NULL, 0, reply_cb, &r, NULL), GW_ERUNTIME);
    assert_true(run_until(c, &c->stopped, 1, WAIT_MS));
    assert_int_equal(rt_state(c->rt), RT_STOPPED);
    assert_int_equal(rt_pid(c->rt), 0);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    run_for(c, 600); /* no restart */
    assert_int_equal(c->ups, 1);
    assert_int_equal(c->downs, 0);
    /* Stopping a stopped runtime completes at once; it can then start again. */
    rt_stop(c->rt, on_stopped, c);
    assert_int_equal(c->stopped, 2);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->ups, 2, WAIT_MS));
    assert_true(rt_generation(c->rt) == 2);
}

static void test_free_running(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0};
    int pid;

    start_real(c);
    pid = rt_pid(c->rt);
    call(c, "ping", NULL, &r);
    rt_free(c->rt);
    c->rt = NULL;
    assert_int_equal(kill(pid, 0), -1);
    run_for(c, 100);
    assert_int_equal(r.n, 0); /* dropped silently */
}

static void test_free_in_callback(void **state)
{
    struct ctx *c = *state;
    struct reply r = {0}, other = {0};

    start_real(c);
    r.free_rt = c;
    call(c, "ping", NULL, &r);
    call(c, "ping", NULL, &other);
    assert_true(run_until(c, &r.n, 1, WAIT_MS));
    assert_null(c->rt);
    run_for(c, 200);
    assert_int_equal(r.n, 1);
    /* The other ping may have been answered first; never after the free. */
    assert_true(other.n <= 1);
    json_decref(r.result);
    json_decref(other.result);
}

static void test_missing_binary(void **state)
{
    struct ctx *c = *state;

    c->rt = new_rt(c, "/nonexistent/copilot-runtime");
    assert_int_not_equal(rt_start(c->rt), 0);
    assert_int_equal(rt_state(c->rt), RT_STOPPED);
    run_for(c, 100);
    assert_int_equal(c->ups + c->downs, 0);
}

/* --- scripted stand-ins ------------------------------------------------------ */

/* Appends a shell command that prints body as one frame. */
static void script_frame(struct buf *b, const char *body)
{
    assert_int_equal(
        buf_addf(b, "printf 'Content-Length: %zu\\r\\n\\r\\n%%s' '%s'\n", strlen(body), body), 0);
}

static const char *write_script(struct ctx *c, struct buf *b)
{
    static char path[160];
    FILE *f;

    snprintf(path, sizeof(path), "%s/fake-runtime", c->dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", buf_str(b));
    fclose(f);
    chmod(path, 0700);
    buf_release(b);
    return path;
}

static const char *connect_ok = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"ok\":true,"
                                "\"protocolVersion\":3,\"version\":\"fake\"}}";

static void test_garbage_frame(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    assert_int_equal(buf_adds(&b, "echo 'fake runtime says hi' >&2\n"
                                  "printf 'garbage\\r\\n\\r\\n'\nexec sleep 30\n"),
                     0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_non_null(strstr(c->why, "malformed frame header"));
    assert_int_equal(c->ups, 0);
    assert_int_equal(rt_state(c->rt), RT_BACKOFF);
    assert_true(run_until(c, &c->downs, 2, WAIT_MS)); /* restarted after 250 ms, failed again */
    assert_true(rt_generation(c->rt) == 2);
}

static void test_oversized_frame(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    assert_int_equal(buf_adds(&b, "printf 'Content-Length: 5000\\r\\n\\r\\n'\nexec sleep 30\n"), 0);
    c->rt = new_rt_ex(c, write_script(c, &b), 4096, 10000);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_non_null(strstr(c->why, "size limit"));
}

static void test_protocol_mismatch(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    script_frame(&b, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocolVersion\":2}}");
    assert_int_equal(buf_adds(&b, "exec sleep 30\n"), 0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    print_message("on_down: %s\n", c->why);
    assert_non_null(strstr(c->why, "speaks protocol version 2"));
    assert_non_null(strstr(c->why, "npm ci"));
    assert_int_equal(rt_state(c->rt), RT_STOPPED);
    run_for(c, 600);
    assert_int_equal(c->downs, 1);
    assert_true(rt_generation(c->rt) == 1);
    assert_int_equal(c->ups, 0);
}

static int file_has(const char *path, const char *needle)
{
    char data[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    if (!f)
        return 0;
    n = fread(data, 1, sizeof(data) - 1, f);
    fclose(f);
    data[n] = '\0';
    return strstr(data, needle) != NULL;
}

/*
 * The stand-in records its args, cwd, COPILOT_HOME and everything we write;
 * it sends a runtime->client request and a reply to an id we never used.
 */
static void test_requests_env_args(void **state)
{
    struct ctx *c = *state;
    char in_log[160], info[160];
    struct reply r = {0};
    struct buf b;
    int i;

    buf_init(&b, 4096);
    assert_int_equal(
        buf_adds(&b, "echo \"$* cwd=$(pwd) home=$COPILOT_HOME\" > \"$COPILOT_HOME/info\"\n"), 0);
    script_frame(&b, connect_ok);
    script_frame(&b, "{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"method\":\"userInput.request\","
                     "\"params\":{}}");
    script_frame(&b, "{\"jsonrpc\":\"2.0\",\"id\":999,\"result\":{}}");
    script_frame(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"session.lifecycle\",\"params\":{}}");
    assert_int_equal(buf_adds(&b, "cat > \"$COPILOT_HOME/stdin\"\n"), 0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->ups, 1, WAIT_MS));
    assert_string_equal(rt_version(c->rt), "fake");
    snprintf(in_log, sizeof(in_log), "%s/stdin", c->home);
    snprintf(info, sizeof(info), "%s/info", c->home);
    for (i = 0; i < 200 && !file_has(in_log, "Unhandled method userInput.request"); i++)
        run_for(c, 20);
    assert_true(file_has(in_log, "\"id\":\"srv-1\""));
    assert_true(file_has(in_log, "-32601"));
    assert_true(file_has(in_log, "\"method\":\"connect\""));
    assert_false(file_has(in_log, "token"));
    assert_true(file_has(info, "--headless --no-auto-update --stdio --no-auto-login"));
    assert_true(file_has(info, c->cwd));
    assert_true(file_has(info, "home=/tmp/gw-test-rt-"));
    /* cat never answers: the call times out, once, and is forgotten. */
    assert_int_equal(rt_call(c->rt, "ping", NULL, 100, reply_cb, &r, NULL), 0);
    assert_true(run_until(c, &r.n, 1, WAIT_MS));
    assert_int_equal(r.code, GW_ETIMEDOUT);
    /* Client-facing: no method name (the log has it). */
    assert_string_equal(r.msg, "the Copilot runtime did not answer in time");
    /* No shutdown reply will come either: the stop sequence must still finish. */
    rt_stop(c->rt, on_stopped, c);
    assert_true(run_until(c, &c->stopped, 1, WAIT_MS));
    assert_true(file_has(in_log, "runtime.shutdown"));
    assert_int_equal(r.n, 1);
}

/* A runtime that never answers `connect` is restarted. */
static void test_connect_timeout(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    assert_int_equal(buf_adds(&b, "cat > /dev/null\n"), 0);
    c->rt = new_rt_ex(c, write_script(c, &b), 0, 200);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_non_null(strstr(c->why, "failed to connect: the Copilot runtime did not answer in time"));
    assert_int_equal(rt_state(c->rt), RT_BACKOFF);
    assert_int_equal(c->ups, 0);
}

/* 1 when pid is gone or a zombie nobody reaped yet. */
static int pid_dead(int pid)
{
    char path[64], st[512];
    FILE *f;
    size_t n;

    if (kill(pid, 0) < 0)
        return 1;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (!f)
        return 1;
    n = fread(st, 1, sizeof(st) - 1, f);
    fclose(f);
    st[n] = '\0';
    return strstr(st, ") Z ") != NULL;
}

/* Exited, leaving a helper in its group that holds stdout: the group is swept. */
static void test_exit_sweeps_group(void **state)
{
    struct ctx *c = *state;
    char path[160], line[32];
    int64_t v = 0;
    int helper, i;
    struct buf b;
    FILE *f;

    buf_init(&b, 4096);
    script_frame(&b, connect_ok);
    assert_int_equal(buf_adds(&b, "sleep 30 &\necho $! > \"$COPILOT_HOME/helper\"\nexit 3\n"), 0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_string_equal(c->why, "copilot runtime exited (status 3)");
    snprintf(path, sizeof(path), "%s/helper", c->home);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(util_parse_i64(line, 1, INT32_MAX, &v), 0);
    helper = (int)v;
    for (i = 0; i < 100 && !pid_dead(helper); i++)
        run_for(c, 10);
    assert_true(pid_dead(helper));
}

/* Exited, but a helper that left the group holds stdout: closed after a grace period. */
static void test_exit_with_open_pipe(void **state)
{
    struct ctx *c = *state;
    uint64_t t0 = util_now_ms();
    struct buf b;

    buf_init(&b, 4096);
    script_frame(&b, connect_ok);
    assert_int_equal(buf_adds(&b, "setsid sleep 4 &\nexit 3\n"), 0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_string_equal(c->why, "copilot runtime exited (status 3)");
    assert_true(util_now_ms() - t0 < 3900); /* did not wait for the helper */
}

/* Closed stdout but kept running: killed after a grace period. */
static void test_closed_pipe_alive(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    assert_int_equal(buf_adds(&b, "exec >&-\nexec sleep 30\n"), 0);
    c->rt = new_rt(c, write_script(c, &b));
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_string_equal(c->why, "copilot runtime killed by signal 9");
}

/* --- liveness ping ------------------------------------------------------------ */

/* A stopped runtime (SIGSTOP) is found by the ping, killed and restarted. */
static void test_ping_kills_stopped(void **state)
{
    struct ctx *c = *state;
    int pid;

    if (access(rttest_runtime_path(), X_OK) != 0)
        skip();
    c->rt = new_rt_ping(c, rttest_runtime_path(), 50, 300);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->ups, 1, WAIT_MS));
    rt_set_ready(c->rt);
    run_for(c, 600); /* a dozen pings, all answered */
    assert_int_equal(c->downs, 0);
    pid = rt_pid(c->rt);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    print_message("why: %s\n", c->why);
    assert_non_null(strstr(c->why, "did not answer a ping"));
    assert_non_null(strstr(c->why, "stopped"));
    assert_int_equal(kill(pid, 0), -1); /* killed and reaped */
    assert_true(run_until(c, &c->ups, 2, WAIT_MS));
    assert_int_not_equal(rt_pid(c->rt), pid);
}

/* No ping while warming; once ready, a hung process (no CPU) is killed. */
static void test_ping_not_while_warming(void **state)
{
    struct ctx *c = *state;
    struct buf b;

    buf_init(&b, 4096);
    script_frame(&b, connect_ok);
    assert_int_equal(buf_adds(&b, "exec sleep 30\n"), 0);
    c->rt = new_rt_ping(c, write_script(c, &b), 20, 100);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->ups, 1, WAIT_MS));
    run_for(c, 600);
    assert_int_equal(c->downs, 0);
    assert_int_equal(rt_state(c->rt), RT_WARMING);
    rt_set_ready(c->rt);
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    assert_non_null(strstr(c->why, "did not answer a ping"));
    assert_non_null(strstr(c->why, "hung"));
}

/* A busy process gets more time, but not forever. */
static void test_ping_busy(void **state)
{
    struct ctx *c = *state;
    uint64_t t0;
    struct buf b;

    buf_init(&b, 4096);
    script_frame(&b, connect_ok);
    assert_int_equal(buf_adds(&b, "while :; do :; done\n"), 0);
    /* Windows long enough for the CPU clock's 10 ms ticks to show a share. */
    c->rt = new_rt_ping(c, write_script(c, &b), 20, 300);
    assert_int_equal(rt_start(c->rt), 0);
    assert_true(run_until(c, &c->ups, 1, WAIT_MS));
    rt_set_ready(c->rt);
    t0 = util_now_ms();
    assert_true(run_until(c, &c->downs, 1, WAIT_MS));
    print_message("why: %s (after %llu ms)\n", c->why, (unsigned long long)(util_now_ms() - t0));
    assert_non_null(strstr(c->why, "stayed busy"));
    assert_true(util_now_ms() - t0 >= 300 * PROBE_BUSY_WINDOWS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_pings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_from_on_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_binary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests_env_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_sweeps_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_with_open_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_pipe_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_kills_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_not_while_warming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_busy, setup, teardown),
    };

    rttest_main_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
