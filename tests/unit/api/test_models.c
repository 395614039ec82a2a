/* Unit tests for api/models: BYOK against an in-process evhttp server, and the conversions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/models.h"
#include "testsrv.h"
#include "util/util.h"

/*
 * The runtime side.  models.c calls broker_rt/rt_state/rt_call/rt_cancel only
 * for the Copilot path.  These weak stand-ins let the test link while
 * src/broker and src/rt are absent or broken; when the real objects are
 * linked in (make), they win and the stub-driven tests skip themselves.
 */
static struct {
    int calls, cancels;
    uint64_t next_id, cancelled_id;
    enum rt_state state;
    rt_reply_cb cb;
    void *ud;
    char method[32];
} fake_rt;

static struct rt *fake_broker_rt(struct broker *b)
{
    return (struct rt *)b; /* the test passes a dummy pointer as the broker */
}

static enum rt_state fake_rt_state(const struct rt *rt)
{
    return fake_rt.state;
}

static int fake_rt_call(struct rt *rt, const char *method, json_t *params, int timeout_ms,
                        rt_reply_cb cb, void *ud, uint64_t *id)
{
    json_decref(params);
    if (fake_rt.state != RT_READY)
        return GW_ERUNTIME;
    fake_rt.calls++;
    snprintf(fake_rt.method, sizeof(fake_rt.method), "%s", method);
    fake_rt.cb = cb;
    fake_rt.ud = ud;
    *id = ++fake_rt.next_id;
    return GW_OK;
}

static void fake_rt_cancel(struct rt *rt, uint64_t id)
{
    fake_rt.cancels++;
    fake_rt.cancelled_id = id;
    fake_rt.cb = NULL;
}

struct rt *broker_rt(struct broker *b) __attribute__((weak, alias("fake_broker_rt")));
enum rt_state rt_state(const struct rt *rt) __attribute__((weak, alias("fake_rt_state")));
int rt_call(struct rt *rt, const char *method, json_t *params, int timeout_ms, rt_reply_cb cb,
            void *ud, uint64_t *id) __attribute__((weak, alias("fake_rt_call")));
void rt_cancel(struct rt *rt, uint64_t id) __attribute__((weak, alias("fake_rt_cancel")));

static int fakes_linked(void)
{
    return broker_rt == fake_broker_rt && rt_state == fake_rt_state && rt_call == fake_rt_call &&
           rt_cancel == fake_rt_cancel;
}

/* ---- a tiny provider on 127.0.0.1:0 (tests/unit/testsrv.h) ---- */

static void route(struct evhttp_request *req, const char *uri)
{
    if (strcmp(uri, "/v1/models") == 0)
        testsrv_reply(
            req, 200,
            "{\"object\":\"list\",\"data\":["
            "{\"id\":\"m1\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"acme\","
            "\"context_window\":4096,\"max_tokens\":1024,\"nested\":{\"a\":1}},"
            "{\"id\":\"m2\"},"
            "{\"noid\":true},"
            "{\"id\":\"m1\",\"owned_by\":\"duplicate\"}]}");
    else if (strcmp(uri, "/anth/v1/models") == 0)
        testsrv_reply(
            req, 200,
            "{\"data\":[{\"type\":\"model\",\"id\":\"claude-x\",\"display_name\":\"Claude X\","
            "\"created_at\":\"2025-02-19T00:00:00Z\"}],\"has_more\":false}");
    else if (strcmp(uri, "/bare/models") == 0)
        testsrv_reply(req, 200, "[{\"id\":\"models/gemini-z\"}]");
    else if (strcmp(uri, "/fail/models") == 0)
        testsrv_reply(req, 500, "{\"error\":\"boom\"}");
    else if (strcmp(uri, "/junk/models") == 0)
        testsrv_reply(req, 200, "this is not json");
    else if (strcmp(uri, "/shape/models") == 0)
        testsrv_reply(req, 200, "{\"object\":\"list\"}");
    else if (strcmp(uri, "/slow/models") == 0)
        ; /* never answered; evhttp_free() reclaims it */
    else
        testsrv_reply(req, 404, "not found");
}

/* ---- fixture ---- */

struct result {
    int calls;
    json_t *list; /* a copy */
    int has_err;
    struct gw_err err;
    struct models **free_me; /* models_free()d from inside the callback */
};

struct fx {
    struct event_base *base;
    struct fetch *f;
    struct models *m;
    struct testsrv srv;
    char url[256];
};

static void on_models(void *ud, const json_t *list, const struct gw_err *err)
{
    struct result *r = ud;

    r->calls++;
    json_decref(r->list);
    r->list = list ? json_deep_copy(list) : NULL;
    r->has_err = err != NULL;
    if (err)
        r->err = *err;
    if (r->free_me) {
        models_free(*r->free_me);
        *r->free_me = NULL;
    }
}

static void result_release(struct result *r)
{
    json_decref(r->list);
    r->list = NULL;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    testsrv_setup(&fx->srv, route, &fx->base, &fx->f);
    memset(&fake_rt, 0, sizeof(fake_rt));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    models_free(fx->m);
    testsrv_teardown(&fx->srv, fx->base, fx->f);
    free(fx);
    return 0;
}

/* A BYOK models object for base path (e.g. "/v1/", trailing slash on purpose). */
static void byok(struct fx *fx, const char *path, const char *key, const char *type, int ttl)
{
    struct provider_config p = {0};

    snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%d%s", fx->srv.port, path);
    p.url = fx->url;
    p.key = key;
    p.type = type;
    fx->m = models_new(fx->base, NULL, fx->f, &p, ttl);
    assert_non_null(fx->m);
    /* The copy is what counts: scribble over the caller's string. */
    memset(fx->url, 'z', strlen(fx->url));
}

static void get(struct fx *fx, struct result *r)
{
    int before = r->calls;

    models_get(fx->m, on_models, r);
    assert_int_equal(r->calls, before); /* never inside models_get */
}

/* ---- BYOK ---- */

static void test_byok_shape(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    const json_t *e;

    byok(fx, "/v1/", "k1", "openai", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_false(r.has_err);
    assert_string_equal(fx->srv.auth, "Bearer k1");
    assert_true(json_is_array(r.list));
    assert_int_equal(json_array_size(r.list), 2); /* no id and duplicate dropped */

    e = models_find(r.list, "m1");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "object")), "model");
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 1700000000);
    assert_string_equal(json_string_value(json_object_get(e, "owned_by")), "acme");
    assert_int_equal(json_integer_value(json_object_get(e, "context_window")), 4096);
    assert_int_equal(json_integer_value(json_object_get(e, "max_tokens")), 1024);
    assert_null(json_object_get(e, "nested"));

    e = models_find(r.list, "m2");
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 0);
    assert_true(json_is_integer(json_object_get(e, "created")));
    assert_string_equal(json_string_value(json_object_get(e, "owned_by")), "byok");
    assert_null(models_find(r.list, "m3"));
    result_release(&r);
}

static void test_byok_cache(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};

    byok(fx, "/v1", "k1", NULL, 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(fx->srv.hits, 1);

    get(fx, &r2); /* from the cache, still deferred */
    run_loop_until(fx->base, &r2.calls, 1, 5000);
    assert_int_equal(r2.calls, 1);
    assert_false(r2.has_err);
    assert_int_equal(json_array_size(r2.list), 2);
    assert_int_equal(fx->srv.hits, 1);
    result_release(&r);
    result_release(&r2);
}

static void test_byok_no_cache_when_ttl_zero(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    byok(fx, "/v1", NULL, NULL, 0);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 2, 5000);
    assert_int_equal(r.calls, 2);
    assert_int_equal(fx->srv.hits, 2);
    assert_string_equal(fx->srv.auth, ""); /* no key, no header */
    result_release(&r);
}

static void test_byok_concurrent_share_one_fetch(void **state)
{
    struct fx *fx = *state;
    struct result r[3];
    int total = 0;

    memset(r, 0, sizeof(r));
    byok(fx, "/v1", "k1", "openai", 60);
    for (int i = 0; i < 3; i++)
        get(fx, &r[i]);
    run_loop_until(fx->base, &r[2].calls, 1, 5000);
    for (int i = 0; i < 3; i++) {
        total += r[i].calls;
        assert_false(r[i].has_err);
        assert_int_equal(json_array_size(r[i].list), 2);
        result_release(&r[i]);
    }
    assert_int_equal(total, 3);
    assert_int_equal(fx->srv.hits, 1);
}

static void test_byok_cancel(void **state)
{
    struct fx *fx = *state;
    struct result gone = {0}, kept = {0};

    byok(fx, "/v1", "k1", "openai", 60);
    get(fx, &gone);
    get(fx, &kept);
    models_cancel(fx->m, &gone);
    run_loop_until(fx->base, &kept.calls, 1, 5000);
    assert_int_equal(kept.calls, 1);
    assert_int_equal(gone.calls, 0);

    /* Cancelling a cache hit before it is delivered. */
    get(fx, &gone);
    models_cancel(fx->m, &gone);
    get(fx, &kept);
    run_loop_until(fx->base, &kept.calls, 2, 5000);
    assert_int_equal(gone.calls, 0);
    result_release(&kept);
}

static void test_byok_errors_not_cached(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    byok(fx, "/fail", "k1", "openai", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_true(r.has_err);
    assert_null(r.list);
    assert_int_equal(r.err.code, GW_EUPSTREAM);
    assert_non_null(strstr(r.err.msg, "HTTP 500"));
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 2, 5000);
    assert_int_equal(fx->srv.hits, 2);
}

static void check_error(struct fx *fx, const char *path, int code)
{
    struct result r = {0};

    byok(fx, path, "k1", "openai", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_int_equal(r.calls, 1);
    assert_true(r.has_err);
    assert_int_equal(r.err.code, code);
    assert_null(strstr(r.err.msg, "k1"));
    models_free(fx->m);
    fx->m = NULL;
}

static void test_byok_bad_bodies(void **state)
{
    struct fx *fx = *state;

    check_error(fx, "/junk", GW_EUPSTREAM);
    check_error(fx, "/shape", GW_EUPSTREAM);
    check_error(fx, "/missing", GW_EUPSTREAM); /* 404 */
}

static void test_byok_anthropic(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};
    const json_t *e;

    byok(fx, "/anth/v1", "ak", "anthropic", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_false(r.has_err);
    assert_string_equal(fx->srv.x_api_key, "ak");
    assert_string_equal(fx->srv.anth_version, "2023-06-01");
    assert_string_equal(fx->srv.auth, "");
    e = models_find(r.list, "claude-x");
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 1739923200);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "Claude X");
    assert_string_equal(json_string_value(json_object_get(e, "owned_by")), "byok");
    result_release(&r);
}

static void test_byok_azure_and_bare_array(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    byok(fx, "/bare", "zk", "azure", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 5000);
    assert_false(r.has_err);
    assert_string_equal(fx->srv.api_key, "zk");
    assert_string_equal(fx->srv.auth, "");
    assert_int_equal(json_array_size(r.list), 1);
    assert_non_null(models_find(r.list, "gemini-z"));
    assert_non_null(models_find(r.list, "models/gemini-z"));
    result_release(&r);
}

static void test_byok_bad_url(void **state)
{
    struct fx *fx = *state;
    struct provider_config p = {.url = "ftp://example.com/v1", .key = "k", .type = "openai"};
    struct result r = {0};

    fx->m = models_new(fx->base, NULL, fx->f, &p, 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 1000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err.code, GW_EINVAL);
}

static void test_byok_key_with_newline(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    byok(fx, "/v1", "k1\r\nX-Evil: 1", "openai", 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 1000);
    assert_int_equal(r.err.code, GW_EINVAL);
    assert_int_equal(fx->srv.hits, 0);
}

/* models_free() with a fetch in flight and waiters queued: nobody is called, nothing leaks. */
static void test_free_pending(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    byok(fx, "/slow", "k1", "openai", 60);
    get(fx, &r);
    run_loop_until(fx->base, &fx->srv.hits, 1, 2000);
    models_free(fx->m);
    fx->m = NULL;
    run_loop_until(fx->base, &r.calls, 1, 200);
    assert_int_equal(r.calls, 0);
}

/* models_free() from inside a callback, with another waiter behind it. */
static void test_free_in_callback(void **state)
{
    struct fx *fx = *state;
    struct result first = {0}, second = {0};

    byok(fx, "/v1", "k1", "openai", 60);
    first.free_me = &fx->m;
    get(fx, &first);
    get(fx, &second);
    run_loop_until(fx->base, &first.calls, 1, 5000);
    run_loop_until(fx->base, &second.calls, 1, 200);
    assert_int_equal(first.calls, 1);
    assert_int_equal(second.calls, 0);
    assert_null(fx->m);
    result_release(&first);
}

/* ---- Copilot runtime path ---- */

static void test_copilot_no_broker(void **state)
{
    struct fx *fx = *state;
    struct result r = {0};

    fx->m = models_new(fx->base, NULL, fx->f, NULL, 60);
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 1000);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.err.code, GW_ERUNTIME);
    assert_non_null(strstr(r.err.msg, "starting or restarting"));
}

static void test_copilot_with_fake_rt(void **state)
{
    struct fx *fx = *state;
    struct result r = {0}, r2 = {0};
    struct gw_err err;
    json_t *result;

    if (!fakes_linked())
        skip();
    fx->m = models_new(fx->base, (struct broker *)&fake_rt, fx->f, NULL, 60);

    /* Not ready yet. */
    fake_rt.state = RT_WARMING;
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 1, 1000);
    assert_int_equal(r.err.code, GW_ERUNTIME);
    assert_int_equal(fake_rt.calls, 0);

    /* Not signed in. */
    fake_rt.state = RT_READY;
    get(fx, &r);
    get(fx, &r2);
    assert_int_equal(fake_rt.calls, 1);
    assert_string_equal(fake_rt.method, "models.list");
    gw_err_set(&err, GW_EUPSTREAM,
               "Request models.list failed with message: Not authenticated. "
               "Please authenticate first.");
    fake_rt.cb(fake_rt.ud, NULL, &err);
    run_loop_until(fx->base, &r2.calls, 1, 1000);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.err.code, GW_EAUTH);
    assert_non_null(strstr(r.err.msg, "copilot-gateway login"));
    assert_int_equal(r2.err.code, GW_EAUTH);

    /* Runtime died under the call. */
    get(fx, &r);
    gw_err_set(&err, GW_ERUNTIME, "runtime exited");
    fake_rt.cb(fake_rt.ud, NULL, &err);
    run_loop_until(fx->base, &r.calls, 3, 1000);
    assert_int_equal(r.err.code, GW_ERUNTIME);

    /* Success, then served from the cache. */
    get(fx, &r);
    result = json_pack("{s:[{s:s, s:s}]}", "models", "id", "gpt-x", "name", "GPT X");
    fake_rt.cb(fake_rt.ud, result, NULL);
    json_decref(result);
    run_loop_until(fx->base, &r.calls, 4, 1000);
    assert_false(r.has_err);
    assert_non_null(models_find(r.list, "gpt-x"));
    get(fx, &r);
    run_loop_until(fx->base, &r.calls, 5, 1000);
    assert_int_equal(fake_rt.calls, 3); /* the last get came from the cache */
    result_release(&r);
    result_release(&r2);

    /* Freed with a call in flight: the call is cancelled. */
    models_free(fx->m);
    fx->m = models_new(fx->base, (struct broker *)&fake_rt, fx->f, NULL, 60);
    get(fx, &r);
    models_free(fx->m);
    fx->m = NULL;
    assert_int_equal(fake_rt.cancels, 1);
    assert_int_equal(fake_rt.cancelled_id, fake_rt.next_id);
}

/* ---- conversions ---- */

static void test_from_runtime(void **state)
{
    json_t *in, *out;
    const json_t *e, *caps;
    json_error_t jerr;

    in = json_loads(
        "{\"models\":["
        "{\"id\":\"claude-sonnet-4.5\",\"name\":\"Claude Sonnet 4.5\","
        " \"capabilities\":{\"supports\":{\"vision\":true,\"reasoningEffort\":true},"
        "  \"limits\":{\"max_prompt_tokens\":128000,\"max_output_tokens\":16000,"
        "   \"max_context_window_tokens\":200000}},"
        " \"policy\":{\"state\":\"enabled\"},\"billing\":{\"multiplier\":1.5,"
        "  \"tokenPrices\":{\"inputPrice\":3,\"outputPrice\":15,\"cacheReadPrice\":0.3,"
        "   \"cacheWritePrice\":3.75,\"batchSize\":1000,\"maxPromptTokens\":128000}},"
        " \"supportedReasoningEfforts\":[\"low\",\"medium\",7,\"high\"],"
        " \"defaultReasoningEffort\":\"medium\"},"
        "{\"id\":\"off\",\"name\":\"Off\",\"capabilities\":{},\"policy\":{\"state\":\"disabled\"}},"
        "{\"id\":\"sparse\"},"
        "{\"id\":\"odd\",\"name\":5,\"capabilities\":[],\"policy\":\"x\",\"billing\":3,"
        " \"supportedReasoningEfforts\":{}},"
        "{\"name\":\"no id\"},"
        "7"
        "]}",
        0, &jerr);
    assert_non_null(in);
    out = models_from_runtime(in);
    assert_non_null(out);
    assert_int_equal(json_array_size(out), 3);

    e = models_find(out, "claude-sonnet-4.5");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "object")), "model");
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 0);
    assert_string_equal(json_string_value(json_object_get(e, "owned_by")), "github-copilot");
    assert_string_equal(json_string_value(json_object_get(e, "name")), "Claude Sonnet 4.5");
    assert_int_equal(json_integer_value(json_object_get(e, "context_window")), 200000);
    assert_int_equal(json_integer_value(json_object_get(e, "max_output_tokens")), 16000);
    assert_int_equal(json_integer_value(json_object_get(e, "max_prompt_tokens")), 128000);
    assert_true(json_number_value(json_object_get(e, "premium_request_multiplier")) == 1.5);
    assert_string_equal(json_string_value(json_object_get(e, "default_reasoning_effort")),
                        "medium");
    {
        double pin, pout, pcached;
        assert_int_equal(models_pricing(e, &pin, &pout, &pcached), 1);
        assert_true(pin == 3000 && pout == 15000 && pcached == 300);
    }
    caps = json_object_get(e, "capabilities");
    assert_true(json_is_true(json_object_get(caps, "vision")));
    assert_int_equal(json_array_size(json_object_get(caps, "reasoning_effort")), 3);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(caps, "reasoning_effort"), 2)), "high");

    assert_null(models_find(out, "off"));

    e = models_find(out, "sparse");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "sparse");
    assert_null(json_object_get(e, "context_window"));
    assert_null(json_object_get(e, "premium_request_multiplier"));
    caps = json_object_get(e, "capabilities");
    assert_true(json_is_false(json_object_get(caps, "vision")));
    assert_int_equal(json_array_size(json_object_get(caps, "reasoning_effort")), 0);

    e = models_find(out, "odd");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "odd");
    json_decref(out);
    json_decref(in);

    in = json_loads("{\"models\":{}}", 0, NULL);
    assert_null(models_from_runtime(in));
    json_decref(in);
    in = json_loads("[]", 0, NULL);
    assert_null(models_from_runtime(in));
    json_decref(in);
    assert_null(models_from_runtime(NULL));
    in = json_loads("{\"models\":[]}", 0, NULL);
    out = models_from_runtime(in);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(in);
}

/* The catalogue's pricing of a runtime entry with this "billing" (JSON text), or 0. */
static int priced(const char *billing, double *in, double *out, double *cached)
{
    char text[1024];
    json_t *list, *res;
    int ok;

    snprintf(text, sizeof(text), "{\"models\":[{\"id\":\"m\",\"billing\":%s}]}", billing);
    res = json_loads(text, 0, NULL);
    assert_non_null(res);
    list = models_from_runtime(res);
    assert_int_equal(json_array_size(list), 1);
    ok = models_pricing(models_find(list, "m"), in, out, cached);
    json_decref(list);
    json_decref(res);
    return ok;
}

/* billing.tokenPrices are AI credits per batch of batchSize tokens: per million, the entry
 * states price * 1e6 / batchSize, and models_pricing() reads back what it states. */
static void test_pricing(void **state)
{
    json_t *res, *list;
    const json_t *p;
    double in = -1, out = -1, cached = -1;

    res = json_loads("{\"models\":[{\"id\":\"m\",\"billing\":{\"tokenPrices\":"
                     "{\"inputPrice\":3,\"outputPrice\":15,\"cacheReadPrice\":0.3,"
                     "\"batchSize\":1000}}}]}",
                     0, NULL);
    list = models_from_runtime(res);
    p = json_object_get(json_object_get(models_find(list, "m"), "pricing"),
                        "ai_credits_per_million_tokens");
    assert_true(json_number_value(json_object_get(p, "input")) == 3000);
    assert_true(json_number_value(json_object_get(p, "output")) == 15000);
    assert_true(json_number_value(json_object_get(p, "cached_input")) == 300);
    json_decref(list);
    json_decref(res);

    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":0.5,\"outputPrice\":2,"
                            "\"batchSize\":1000000}}",
                            &in, &out, &cached),
                     1);
    assert_true(in == 0.5 && out == 2 && cached == 0.5); /* no cache price: the input's */
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":1,\"outputPrice\":4,"
                            "\"cachePrice\":0.25,\"batchSize\":100}}",
                            &in, &out, &cached),
                     1);
    assert_true(in == 10000 && out == 40000 && cached == 2500); /* the deprecated name */
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":0,\"outputPrice\":0,"
                            "\"batchSize\":1}}",
                            &in, &out, &cached),
                     1);
    assert_true(in == 0 && out == 0 && cached == 0); /* free is a price */

    /* No batch size, a batch of 0 or of the wrong type, a price missing, negative or a
     * string: no pricing at all (never a guess). */
    in = out = cached = -1;
    assert_int_equal(priced("{\"multiplier\":1}", &in, &out, &cached), 0);
    assert_int_equal(
        priced("{\"tokenPrices\":{\"inputPrice\":1,\"outputPrice\":1}}", &in, &out, &cached), 0);
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":1,\"outputPrice\":1,"
                            "\"batchSize\":0}}",
                            &in, &out, &cached),
                     0);
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":1,\"outputPrice\":1,"
                            "\"batchSize\":\"1000\"}}",
                            &in, &out, &cached),
                     0);
    assert_int_equal(
        priced("{\"tokenPrices\":{\"inputPrice\":1,\"batchSize\":1000}}", &in, &out, &cached), 0);
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":-1,\"outputPrice\":1,"
                            "\"batchSize\":1000}}",
                            &in, &out, &cached),
                     0);
    assert_int_equal(priced("{\"tokenPrices\":{\"inputPrice\":1,\"outputPrice\":\"2\","
                            "\"batchSize\":1000}}",
                            &in, &out, &cached),
                     0);
    assert_int_equal(priced("{\"tokenPrices\":[]}", &in, &out, &cached), 0);
    assert_true(in == -1 && out == -1 && cached == -1); /* untouched */

    /* Entries without pricing: none, a provider's, NULL. */
    assert_int_equal(models_pricing(NULL, &in, &out, &cached), 0);
    res = json_loads("{\"data\":[{\"id\":\"p\",\"pricing\":{\"ai_credits_per_million_tokens\":"
                     "{\"input\":1,\"output\":1}}}]}",
                     0, NULL);
    list = models_from_provider(res);
    assert_int_equal(models_pricing(models_find(list, "p"), &in, &out, &cached), 0);
    json_decref(list);
    json_decref(res);
}

static void test_from_provider(void **state)
{
    json_t *in, *out;
    const json_t *e;

    in = json_loads("{\"data\":[{\"id\":\"a\",\"created\":12.7,\"owned_by\":\"\"},"
                    "{\"id\":\"\"},{\"id\":7},"
                    "{\"id\":\"b\",\"created\":-5,\"created_at\":\"nonsense\",\"name\":\"B\","
                    "\"display_name\":\"not used\",\"flag\":true,\"n\":null}]}",
                    0, NULL);
    out = models_from_provider(in);
    assert_int_equal(json_array_size(out), 2);
    e = models_find(out, "a");
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 12);
    assert_string_equal(json_string_value(json_object_get(e, "owned_by")), "byok");
    e = models_find(out, "b");
    assert_int_equal(json_integer_value(json_object_get(e, "created")), 0);
    assert_string_equal(json_string_value(json_object_get(e, "name")), "B");
    assert_true(json_is_true(json_object_get(e, "flag")));
    assert_null(json_object_get(e, "n"));
    json_decref(out);
    json_decref(in);

    in = json_loads("{\"models\":[{\"id\":\"ollama\"}]}", 0, NULL);
    out = models_from_provider(in);
    assert_non_null(models_find(out, "ollama"));
    json_decref(out);
    json_decref(in);

    in = json_loads("{\"data\":7}", 0, NULL);
    assert_null(models_from_provider(in));
    json_decref(in);
    in = json_loads("\"x\"", JSON_DECODE_ANY, NULL);
    assert_null(models_from_provider(in));
    json_decref(in);
    assert_null(models_from_provider(NULL));
}

static void test_find(void **state)
{
    json_t *list =
        json_pack("[{s:s}, {s:s}, {s:i}, i]", "id", "models/gemini", "id", "gemini", "id", 3, 4);

    assert_ptr_equal(models_find(list, "gemini"), json_array_get(list, 1));
    assert_ptr_equal(models_find(list, "models/gemini"), json_array_get(list, 0));
    assert_null(models_find(list, "gem"));
    assert_null(models_find(list, NULL));
    assert_null(models_find(NULL, "gemini"));
    json_decref(list);

    list = json_pack("[{s:s}]", "id", "gpt");
    assert_ptr_equal(models_find(list, "models/gpt"), json_array_get(list, 0));
    assert_null(models_find(list, "models/"));
    json_decref(list);
}

/* The input bound of a catalogue entry written as JSON text, under cap. */
static int64_t limit_of(const char *entry, int64_t cap)
{
    json_t *e = json_loads(entry, 0, NULL);
    int64_t n;

    assert_non_null(e);
    n = models_input_limit(e, cap);
    json_decref(e);
    return n;
}

static void test_input_limit(void **state)
{
    json_t *in, *out;

    /* Copilot: capabilities.limits, as models_from_runtime() keeps them; the prompt bound wins. */
    in = json_loads("{\"models\":[{\"id\":\"gpt\",\"capabilities\":{\"limits\":"
                    "{\"max_prompt_tokens\":128000,\"max_output_tokens\":16000,"
                    "\"max_context_window_tokens\":144000}}},"
                    "{\"id\":\"window\",\"capabilities\":{\"limits\":"
                    "{\"max_context_window_tokens\":200000}}},"
                    "{\"id\":\"sdk-zero\",\"capabilities\":{\"limits\":"
                    "{\"max_context_window_tokens\":0}}}]}",
                    0, NULL);
    out = models_from_runtime(in);
    assert_int_equal(models_input_limit(models_find(out, "gpt"), 1000000), 128000);
    assert_int_equal(models_input_limit(models_find(out, "window"), 1000000), 200000);
    assert_int_equal(models_input_limit(models_find(out, "window"), 50000), 50000);
    /* The SDK's 0 for an absent window means unknown, not zero. */
    assert_int_equal(models_input_limit(models_find(out, "sdk-zero"), 1000000), 1000000);
    json_decref(out);
    json_decref(in);

    /* A provider's names, as models_from_provider() copies them. */
    in = json_loads("{\"data\":[{\"id\":\"vllm\",\"max_model_len\":32768}]}", 0, NULL);
    out = models_from_provider(in);
    assert_int_equal(models_input_limit(models_find(out, "vllm"), 1000000), 32768);
    json_decref(out);
    json_decref(in);
    assert_int_equal(limit_of("{\"id\":\"a\",\"context_window\":8192}", 1000000), 8192);
    assert_int_equal(limit_of("{\"id\":\"a\",\"context_length\":4000}", 1000000), 4000);
    assert_int_equal(limit_of("{\"id\":\"a\",\"max_context_length\":32000}", 1000000), 32000);
    assert_int_equal(limit_of("{\"id\":\"a\",\"max_input_tokens\":9000}", 1000000), 9000);
    assert_int_equal(limit_of("{\"id\":\"a\",\"inputTokenLimit\":7000.0}", 1000000), 7000);
    assert_int_equal(limit_of("{\"id\":\"a\",\"max_context_window_tokens\":6000}", 1000000), 6000);
    /* Several: the smallest. */
    assert_int_equal(limit_of("{\"context_length\":131072,\"max_prompt_tokens\":100000}", 0),
                     100000);

    /* Unknown, absurd or of the wrong type: the cap alone. */
    assert_int_equal(limit_of("{\"id\":\"a\"}", 1000000), 1000000);
    assert_int_equal(limit_of("{\"context_length\":\"4000\"}", 1000000), 1000000);
    assert_int_equal(limit_of("{\"context_length\":-1,\"max_model_len\":0.5}", 2000), 2000);
    assert_int_equal(limit_of("{\"context_length\":1e300}", 2000), 2000);
    assert_int_equal(models_input_limit(NULL, 1000000), 1000000);
    /* A window over the cap is capped; no cap and no window is no limit. */
    assert_int_equal(limit_of("{\"context_window\":2000000}", 1000000), 1000000);
    assert_int_equal(limit_of("{\"context_window\":4000}", 0), 4000);
    assert_int_equal(models_input_limit(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_byok_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_no_cache_when_ttl_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_concurrent_share_one_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_errors_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_bad_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_anthropic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_azure_and_bare_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byok_key_with_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copilot_no_broker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copilot_with_fake_rt, setup, teardown),
        cmocka_unit_test(test_from_runtime),
        cmocka_unit_test(test_pricing),
        cmocka_unit_test(test_from_provider),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_input_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
