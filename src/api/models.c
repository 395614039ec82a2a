/* The model catalogue: the BYOK provider's GET /models or the runtime's models.list, cached. */
#include "api/models.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt/rt.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"
#include "broker/errmap.h"

#define MODELS_FETCH_TIMEOUT_MS 10000
#define MODELS_RT_TIMEOUT_MS 15000
#define MODELS_MAX_BODY (4u * 1024 * 1024)

#define MSG_NOT_READY "the Copilot runtime is starting or restarting; retry shortly"

/* One models_get() caller; list/err hold its answer once it is on the ready queue. */
struct waiter {
    struct waiter *next;
    models_cb cb;
    void *ud;
    json_t *list; /* a reference, or NULL and err says why */
    struct gw_err err;
};

struct wqueue {
    struct waiter *head, *tail;
};

struct models {
    struct event_base *base;
    struct broker *b;
    struct fetch *f;
    char *url; /* BYOK base URL without trailing '/'; NULL = Copilot runtime */
    char *key;
    char *type;
    int ttl_s;

    json_t *list; /* the cached list, or NULL */
    uint64_t expires_ms;

    int inflight;  /* a provider fetch or runtime call is running */
    struct rt *rt; /* the runtime the call in flight went to */
    uint64_t rt_id;

    struct wqueue waiting; /* waiting for the fetch in flight */
    struct wqueue ready;   /* answered; called back from deliver_ev */
    struct wqueue running; /* being called back right now */
    struct event *deliver_ev;
    int delivering;
    int dying; /* models_free() was called from a callback */
};

static void wqueue_push(struct wqueue *q, struct waiter *w)
{
    w->next = NULL;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
}

static struct waiter *wqueue_pop(struct wqueue *q)
{
    struct waiter *w = q->head;

    if (w) {
        q->head = w->next;
        if (!q->head)
            q->tail = NULL;
        w->next = NULL;
    }
    return w;
}

static void waiter_free(struct waiter *w)
{
    json_decref(w->list);
    free(w);
}

static void wqueue_clear(struct wqueue *q)
{
    struct waiter *w;

    while ((w = wqueue_pop(q)) != NULL)
        waiter_free(w);
}

/* Removes and frees every waiter of ud. */
static void wqueue_remove(struct wqueue *q, void *ud)
{
    struct wqueue keep = {NULL, NULL};
    struct waiter *w;

    while ((w = wqueue_pop(q)) != NULL) {
        if (w->ud == ud)
            waiter_free(w);
        else
            wqueue_push(&keep, w);
    }
    *q = keep;
}

/* Gives w its answer (list borrowed, may be NULL) and queues it for delivery. */
static void answer(struct models *m, struct waiter *w, json_t *list, const struct gw_err *err)
{
    if (list)
        w->list = json_incref(list);
    else
        w->err = *err;
    wqueue_push(&m->ready, w);
    event_active(m->deliver_ev, EV_TIMEOUT, 0);
}

static void models_destroy(struct models *m)
{
    if (m->inflight) {
        if (m->url)
            fetch_cancel(m->f, m);
        else if (m->rt)
            rt_cancel(m->rt, m->rt_id);
    }
    wqueue_clear(&m->waiting);
    wqueue_clear(&m->ready);
    wqueue_clear(&m->running);
    json_decref(m->list);
    if (m->deliver_ev)
        event_free(m->deliver_ev);
    free(m->url);
    if (m->key) {
        explicit_bzero(m->key, strlen(m->key));
        free(m->key);
    }
    free(m->type);
    free(m);
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
    struct models *m = arg;
    struct waiter *w;

    /* Waiters added by the callbacks below wait for the next round. */
    m->running = m->ready;
    m->ready.head = m->ready.tail = NULL;
    m->delivering = 1;
    while (!m->dying && (w = wqueue_pop(&m->running)) != NULL) {
        w->cb(w->ud, w->list, w->list ? NULL : &w->err);
        waiter_free(w);
    }
    m->delivering = 0;
    if (m->dying)
        models_destroy(m);
}

/* The fetch in flight ended: cache a list, and answer everyone who waited for it. */
static void complete(struct models *m, json_t *list, const struct gw_err *err)
{
    struct waiter *w;

    m->inflight = 0;
    m->rt = NULL;
    if (list) {
        json_decref(m->list);
        m->list = json_incref(list);
        m->expires_ms = util_now_ms() + (uint64_t)(m->ttl_s > 0 ? m->ttl_s : 0) * 1000u;
    } else {
        log_msg(LOG_WARN, "models", "%s", err->msg);
    }
    while ((w = wqueue_pop(&m->waiting)) != NULL)
        answer(m, w, list, err);
}

/* ---- provider (BYOK) ---- */

static int64_t provider_created(const json_t *e)
{
    const json_t *v = json_object_get(e, "created");
    const char *s;
    struct tm tm;

    if (json_is_integer(v) && json_integer_value(v) >= 0)
        return json_integer_value(v);
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9e15)
        return (int64_t)json_real_value(v);
    /* Anthropic: "created_at": "2025-02-19T00:00:00Z" */
    s = json_string_value(json_object_get(e, "created_at"));
    memset(&tm, 0, sizeof(tm));
    if (s && strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) {
        time_t t = timegm(&tm);
        return t > 0 ? (int64_t)t : 0;
    }
    return 0;
}

static int is_reserved(const char *key)
{
    static const char *const reserved[] = {"id", "object", "created", "owned_by"};

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(key, reserved[i]) == 0)
            return 1;
    return 0;
}

/* One provider entry in OpenAI shape (new reference), or NULL to skip it. */
static json_t *provider_entry(const json_t *e)
{
    const char *id = NULL, *key;
    json_t *owned = NULL, *out, *v;
    json_error_t jerr;

    if (json_unpack_ex((json_t *)e, &jerr, 0, "{s:s, s?o}", "id", &id, "owned_by", &owned) != 0 ||
        !*id)
        return NULL;
    out = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model", "created",
                    (json_int_t)provider_created(e), "owned_by",
                    json_is_string(owned) && *json_string_value(owned) ? json_string_value(owned)
                                                                       : "byok");
    if (!out)
        return NULL;
    /* Keep the provider's simple extras (context_window, max_tokens, display_name...). */
    json_object_foreach((json_t *)e, key, v)
    {
        if (is_reserved(key) || !(json_is_string(v) || json_is_number(v) || json_is_boolean(v)))
            continue;
        json_object_set(out, key, v);
    }
    v = json_object_get(e, "display_name");
    if (!json_object_get(out, "name") && json_is_string(v))
        json_object_set(out, "name", v);
    return out;
}

json_t *models_from_provider(const json_t *body)
{
    const json_t *arr = body, *e;
    json_t *out;
    size_t i;

    if (json_is_object(body)) {
        arr = json_object_get(body, "data");
        if (!json_is_array(arr))
            arr = json_object_get(body, "models");
    }
    if (!json_is_array(arr))
        return NULL;
    out = json_array();
    if (!out)
        return NULL;
    json_array_foreach(arr, i, e)
    {
        json_t *entry = provider_entry(e);
        if (!entry)
            continue;
        if (models_find(out, json_string_value(json_object_get(entry, "id"))) == NULL)
            json_array_append(out, entry);
        json_decref(entry);
    }
    return out;
}

static void on_fetch(void *ud, int status, const char *body, size_t len, const struct gw_err *ferr)
{
    struct models *m = ud;
    struct gw_err err;
    json_error_t jerr;
    json_t *root = NULL, *list = NULL;

    if (ferr) {
        gw_err_set(&err, ferr->code, "cannot list the provider's models: %s", ferr->msg);
        goto out;
    }
    if (status < 200 || status > 299) {
        gw_err_set(&err, status == 429 ? GW_ERATELIMIT : GW_EUPSTREAM,
                   "cannot list the provider's models: HTTP %d", status);
        goto out;
    }
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        gw_err_set(&err, GW_EUPSTREAM, "the provider's model list is not JSON: %s", jerr.text);
        goto out;
    }
    list = models_from_provider(root);
    if (!list)
        gw_err_set(&err, GW_EUPSTREAM, "the provider's model list has no \"data\" array");
out:
    complete(m, list, &err);
    json_decref(list);
    json_decref(root);
}

/* The key header line for the provider type, into auth (which may hold the key). */
static int auth_header(const struct models *m, struct buf *auth)
{
    const char *type = m->type ? m->type : "openai";

    if (strcmp(type, "azure") == 0)
        return buf_addf(auth, "api-key: %s", m->key);
    if (strcmp(type, "anthropic") == 0)
        return buf_addf(auth, "x-api-key: %s", m->key);
    return buf_addf(auth, "Authorization: Bearer %s", m->key);
}

static int start_fetch(struct models *m, struct gw_err *err)
{
    struct buf url, auth;
    const char *hdrs[4];
    size_t n = 0;
    int rc;

    buf_init(&url, BUF_MAX_SMALL);
    buf_init(&auth, BUF_MAX_SMALL);
    rc = buf_addf(&url, "%s/models", m->url);
    if (rc)
        goto fail;
    hdrs[n++] = "Accept: application/json";
    if (m->key && *m->key) {
        /* A line break in the key would smuggle in headers of its own. */
        if (strpbrk(m->key, "\r\n")) {
            rc = gw_err_set(err, GW_EINVAL, "the provider key contains a line break");
            goto out;
        }
        rc = auth_header(m, &auth);
        if (rc)
            goto fail;
        hdrs[n++] = buf_str(&auth);
    }
    if (m->type && strcmp(m->type, "anthropic") == 0)
        hdrs[n++] = "anthropic-version: 2023-06-01";
    hdrs[n] = NULL;
    rc =
        fetch_get(m->f, buf_str(&url), hdrs, MODELS_FETCH_TIMEOUT_MS, MODELS_MAX_BODY, on_fetch, m);
    if (rc)
        gw_err_set(err, rc, "cannot list the provider's models: %s",
                   rc == GW_EINVAL ? "the provider URL is not a valid http(s) URL"
                                   : "cannot start the request");
    goto out;
fail:
    gw_err_set(err, rc, "cannot list the provider's models: cannot build the request");
out:
    buf_release(&url);
    if (auth.ptr)
        explicit_bzero(auth.ptr, auth.len);
    buf_release(&auth);
    return rc;
}

/* ---- Copilot runtime ---- */

/*
 * Everything below is written from copilot-runtime-protocol.md §2.3 and
 * copilot-runtime-operations.md §8.1; it cannot be exercised here without
 * GitHub access (models.list fails unauthenticated).  Entries may be sparse.
 */

/* Sets key to v when v is a positive integer. */
static void set_positive(json_t *out, const char *key, const json_t *v)
{
    if (json_is_integer(v) && json_integer_value(v) > 0)
        json_object_set_new(out, key, json_integer(json_integer_value(v)));
}

static json_t *string_array(const json_t *arr)
{
    json_t *out = json_array();
    const json_t *v;
    size_t i;

    if (!out)
        return NULL;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v))
            json_array_append(out, (json_t *)v);
    }
    return out;
}

/* A price or a batch size from billing.tokenPrices: a finite number >= 0 (else -1). */
static double price_of(const json_t *v)
{
    double d = json_number_value(v);

    return json_is_number(v) && isfinite(d) && d >= 0 ? d : -1;
}

/*
 * billing.tokenPrices gives AI credits per batch of batchSize tokens (api.schema.json,
 * runtime 1.0.85): the entry gets them per million tokens as
 * "pricing":{"ai_credits_per_million_tokens":{"input","output","cached_input"}}, when
 * batchSize is positive and inputPrice and outputPrice are prices.  Cached input is
 * cacheReadPrice, else the deprecated cachePrice, else inputPrice.
 */
static void set_pricing(json_t *out, const json_t *tp)
{
    double batch = price_of(json_object_get(tp, "batchSize"));
    double in = price_of(json_object_get(tp, "inputPrice"));
    double outp = price_of(json_object_get(tp, "outputPrice"));
    double cached = price_of(json_object_get(tp, "cacheReadPrice"));
    double scale;

    if (batch <= 0 || in < 0 || outp < 0)
        return;
    if (cached < 0)
        cached = price_of(json_object_get(tp, "cachePrice"));
    if (cached < 0)
        cached = in;
    scale = 1e6 / batch;
    if (!isfinite(in * scale) || !isfinite(outp * scale) || !isfinite(cached * scale))
        return;
    json_object_set_new(out, "pricing",
                        json_pack("{s:{s:f, s:f, s:f}}", "ai_credits_per_million_tokens", "input",
                                  in * scale, "output", outp * scale, "cached_input",
                                  cached * scale));
}

int models_pricing(const json_t *e, double *input, double *output, double *cached)
{
    const json_t *p =
        json_object_get(json_object_get(e, "pricing"), "ai_credits_per_million_tokens");
    double in = price_of(json_object_get(p, "input"));
    double outp = price_of(json_object_get(p, "output"));
    double c = price_of(json_object_get(p, "cached_input"));

    if (in < 0 || outp < 0)
        return 0;
    *input = in;
    *output = outp;
    *cached = c < 0 ? in : c;
    return 1;
}

/* One runtime model in OpenAI shape (new reference), or NULL to skip it. */
static json_t *runtime_entry(const json_t *e)
{
    const char *id = NULL;
    json_t *name = NULL, *caps = NULL, *policy = NULL, *billing = NULL, *efforts = NULL;
    json_t *deflt = NULL, *out, *supports, *limits, *v;
    json_error_t jerr;

    if (json_unpack_ex((json_t *)e, &jerr, 0, "{s:s, s?o, s?o, s?o, s?o, s?o, s?o}", "id", &id,
                       "name", &name, "capabilities", &caps, "policy", &policy, "billing", &billing,
                       "supportedReasoningEfforts", &efforts, "defaultReasoningEffort",
                       &deflt) != 0 ||
        !*id)
        return NULL;
    v = json_object_get(policy, "state");
    if (json_is_string(v) && strcmp(json_string_value(v), "disabled") == 0)
        return NULL;
    supports = json_object_get(caps, "supports");
    limits = json_object_get(caps, "limits");
    /* json_pack "o" steals the string_array() reference, "b" takes an int. */
    out = json_pack("{s:s, s:s, s:i, s:s, s:s, s:{s:b, s:o}}", "id", id, "object", "model",
                    "created", 0, "owned_by", "github-copilot", "name",
                    json_is_string(name) ? json_string_value(name) : id, "capabilities", "vision",
                    json_is_true(json_object_get(supports, "vision")), "reasoning_effort",
                    string_array(efforts));
    if (!out)
        return NULL;
    set_positive(out, "context_window", json_object_get(limits, "max_context_window_tokens"));
    set_positive(out, "max_output_tokens", json_object_get(limits, "max_output_tokens"));
    set_positive(out, "max_prompt_tokens", json_object_get(limits, "max_prompt_tokens"));
    v = json_object_get(billing, "multiplier");
    if (json_is_number(v))
        json_object_set(out, "premium_request_multiplier", v);
    set_pricing(out, json_object_get(billing, "tokenPrices"));
    if (json_is_string(deflt))
        json_object_set(out, "default_reasoning_effort", deflt);
    return out;
}

json_t *models_from_runtime(const json_t *result)
{
    const json_t *arr = json_object_get(result, "models"), *e;
    json_t *out;
    size_t i;

    if (!json_is_array(arr))
        return NULL;
    out = json_array();
    if (!out)
        return NULL;
    json_array_foreach(arr, i, e)
    {
        json_t *entry = runtime_entry(e);
        if (entry)
            json_array_append_new(out, entry);
    }
    return out;
}

static void on_rt_reply(void *ud, const json_t *result, const struct gw_err *rerr)
{
    struct models *m = ud;
    struct gw_err err;
    json_t *list = NULL;

    if (rerr) {
        /* -32603 "Request models.list failed with message: Not authenticated. ..." */
        if (strcasestr(rerr->msg, "not authenticated"))
            gw_err_set(&err, GW_EAUTH, "%s", errmap_signin_msg);
        else if (rerr->code == GW_ERUNTIME)
            gw_err_set(&err, GW_ERUNTIME, "%s", MSG_NOT_READY);
        else if (rerr->code == GW_ETIMEDOUT)
            gw_err_set(&err, GW_ETIMEDOUT, "the Copilot runtime did not list its models in time");
        else {
            /* The runtime's own text can name files: it stays in the log. */
            log_msg(LOG_WARN, "models", "the runtime cannot list models: %s", rerr->msg);
            gw_err_set(&err, GW_EUPSTREAM,
                       "the Copilot runtime cannot list its models (details in the gateway log)");
        }
    } else {
        list = models_from_runtime(result);
        if (!list)
            gw_err_set(&err, GW_EPROTO, "the Copilot runtime's model list has no \"models\" array");
    }
    complete(m, list, &err);
    json_decref(list);
}

static int start_rt_call(struct models *m, struct gw_err *err)
{
    struct rt *rt = m->b ? broker_rt(m->b) : NULL;

    if (!rt || rt_state(rt) != RT_READY)
        return gw_err_set(err, GW_ERUNTIME, "%s", MSG_NOT_READY);
    /* rt_call steals the params object. */
    if (rt_call(rt, "models.list", json_object(), MODELS_RT_TIMEOUT_MS, on_rt_reply, m,
                &m->rt_id) != GW_OK)
        return gw_err_set(err, GW_ERUNTIME, "%s", MSG_NOT_READY);
    m->rt = rt;
    return GW_OK;
}

/* ---- public ---- */

struct models *models_new(struct event_base *base, struct broker *b, struct fetch *f,
                          const struct provider_config *provider, int ttl_s)
{
    struct models *m = xcalloc(1, sizeof(*m));

    m->base = base;
    m->b = b;
    m->f = f;
    m->ttl_s = ttl_s;
    if (provider && provider->url && *provider->url) {
        size_t n = strlen(provider->url);
        while (n > 0 && provider->url[n - 1] == '/')
            n--;
        m->url = xstrndup(provider->url, n);
        m->key = xstrdup(provider->key);
        m->type = xstrdup(provider->type);
    }
    m->deliver_ev = event_new(base, -1, 0, deliver, m);
    if (!m->deliver_ev) {
        models_destroy(m);
        return NULL;
    }
    return m;
}

void models_free(struct models *m)
{
    if (!m)
        return;
    if (m->delivering) {
        m->dying = 1; /* deliver() frees m once the current callback returns */
        return;
    }
    models_destroy(m);
}

void models_get(struct models *m, models_cb cb, void *ud)
{
    struct waiter *w;
    struct gw_err err;
    int rc;

    assert(cb);
    if (m->dying)
        return;
    w = xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->ud = ud;
    if (m->list && util_now_ms() < m->expires_ms) {
        answer(m, w, m->list, NULL);
        return;
    }
    wqueue_push(&m->waiting, w);
    if (m->inflight)
        return;
    m->inflight = 1;
    rc = m->url ? start_fetch(m, &err) : start_rt_call(m, &err);
    if (rc)
        complete(m, NULL, &err); /* answers are deferred: nobody is called from here */
}

void models_cancel(struct models *m, void *ud)
{
    if (!m)
        return;
    /* A fetch in flight carries on: its answer still fills the cache. */
    wqueue_remove(&m->waiting, ud);
    wqueue_remove(&m->ready, ud);
    wqueue_remove(&m->running, ud);
}

const json_t *models_find(const json_t *list, const char *id)
{
    const json_t *e;
    size_t i;

    if (!json_is_array(list) || !id)
        return NULL;
    json_array_foreach(list, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (eid && strcmp(eid, id) == 0)
            return e;
    }
    /* Providers such as Gemini's OpenAI endpoint name models "models/<id>". */
    json_array_foreach(list, i, e)
    {
        const char *eid = json_string_value(json_object_get(e, "id"));
        if (!eid)
            continue;
        if (strncmp(eid, "models/", 7) == 0 && strcmp(eid + 7, id) == 0)
            return e;
        if (strncmp(id, "models/", 7) == 0 && strcmp(id + 7, eid) == 0)
            return e;
    }
    return NULL;
}

/*
 * Catalogue fields that bound a model's input, under the names catalogues
 * give them: Copilot's (as models_from_runtime() copies them), then
 * provider ones copied as they are by models_from_provider().
 */
static const char *const input_limit_keys[] = {
    "max_prompt_tokens",         /* Copilot capabilities.limits */
    "context_window",            /* Copilot's max_context_window_tokens, as copied; Groq */
    "max_context_window_tokens", /* Copilot's own name */
    "max_input_tokens",          /* LiteLLM's model info */
    "context_length",            /* OpenRouter, Together */
    "max_context_length",        /* Mistral */
    "max_model_len",             /* vLLM */
    "inputTokenLimit",           /* Gemini's models.list */
};

int64_t models_input_limit(const json_t *e, int64_t cap)
{
    int64_t limit = cap > 0 ? cap : 0;

    if (!json_is_object(e))
        return limit;
    for (size_t i = 0; i < sizeof(input_limit_keys) / sizeof(*input_limit_keys); i++) {
        const json_t *v = json_object_get(e, input_limit_keys[i]);
        int64_t n = 0;

        if (json_is_integer(v))
            n = json_integer_value(v);
        else if (json_is_real(v) && json_real_value(v) >= 1 && json_real_value(v) < 9e15)
            n = (int64_t)json_real_value(v);
        if (n > 0 && (limit == 0 || n < limit))
            limit = n;
    }
    return limit;
}
