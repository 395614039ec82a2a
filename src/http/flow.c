/*
 * The request flow of a model request: checks, image downloads, the turn,
 * and its reply or stream, the same for every API; the dialect
 * (http/flow.h) writes what differs.
 */
#include "http/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "agent/config.h"
#include "api/models.h"
#include "keys/keys.h"
#include "keys/prices.h"
#include "limits/limits.h"
#include "store/store.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define PING_S 10

/*
 * The request's usage row: once, when it ends (answered, failed, cancelled by its client, or
 * a detached response's turn done).  The store commits it at once (a WAL append): a
 * SIGTERM or kill -9 after the reply loses none.
 */
static void record_usage(struct flow *f)
{
    struct store_usage u;
    struct gw_err err;
    const char *model = f->model ? f->model : "";

    memset(&u, 0, sizeof(u));
    u.ts = util_wall_ms();
    u.request_id = f->req_id;
    u.principal = f->principal;
    u.key_name = f->vkey ? f->vkey->name : NULL;
    u.user = f->vkey ? f->vkey->user : NULL;
    u.model = (char *)model;
    u.api = (char *)f->api;
    u.agent = strncmp(model, AGENT_MODEL_PREFIX, strlen(AGENT_MODEL_PREFIX)) == 0
                  ? (char *)model + strlen(AGENT_MODEL_PREFIX)
                  : NULL;
    u.status = f->status ? f->status : 499; /* set as it replied (f->r may be gone now) */
    u.input_tokens = f->usage.input_tokens;
    u.output_tokens = f->usage.output_tokens;
    u.cached_tokens = f->usage.cache_read_tokens;
    u.reasoning_tokens = f->usage.reasoning_tokens;
    u.credits = f->credits;
    u.latency_ms = u.ts - f->created_ms;
    http_server_usage(f->srv, u.key_name, u.status, u.input_tokens, u.output_tokens,
                      u.cached_tokens, u.credits);
    if (f->svc->store && store_usage_add(f->svc->store, &u, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "http", "req=%s cannot record usage: %s", f->req_id, err.msg);
}

void flow_free(struct flow *f)
{
    if (f->limit_key[0] && f->svc->limits) /* its slot, and what it used */
        limits_done(f->svc->limits, f->limit_key, util_wall_ms(), f->used_tokens, f->credits);
    record_usage(f);
    vkey_unref(f->vkey);
    free(f->run_model);
    if (f->ping)
        event_free(f->ping);
    if (f->ops->free_state && f->st)
        f->ops->free_state(f->st);
    conv_free(f->conv);
    free(f->images);
    free(f->model);
    buf_release(&f->out);
    free(f);
}

const char *flow_req_id(const struct flow *f)
{
    return f->r ? f->r->id : "-";
}

/* The status a reply of err has (http_reply_error()'s, before Anthropic's 529). */
static int err_status(const struct gw_err *err)
{
    return err->http_status ? err->http_status : 500;
}

void flow_fail(struct flow *f, const struct gw_err *err)
{
    f->status = err_status(err);
    f->r->on_gone = NULL;
    f->r->on_shutdown = NULL;
    http_reply_error(f->r, err);
    flow_free(f);
}

void flow_cancel_turn(struct flow *f)
{
    if (f->turn)
        broker_turn_cancel(f->turn);
    f->turn = NULL;
}

void flow_detach(struct flow *f, json_t *body)
{
    struct http_req *r = f->r;

    r->on_gone = NULL;
    r->on_shutdown = NULL;
    r->hdata = NULL;
    f->r = NULL;
    f->status = 200;
    http_reply_json(r, 200, body);
}

/* ---- the stream ------------------------------------------------------------ */

/* Sends what f->out holds as one SSE write and empties it; a failed write (rc) sends nothing. */
static void flow_emit(struct flow *f, int rc)
{
    if (rc)
        buf_reset(&f->out);
    if (f->out.len)
        http_stream_write(f->r, f->out.ptr, f->out.len);
    buf_reset(&f->out);
}

/* Streams start lazily, at the first delta: an error before any output can
 * still be a proper HTTP status instead of an error event. */
void flow_stream_begin(struct flow *f)
{
    if (f->started)
        return;
    f->started = 1;
    http_stream_start(f->r);
    if (f->ops->stream_start(f, &f->out))
        buf_reset(&f->out);
}

static void on_text(void *ud, const char *s, size_t n)
{
    struct flow *f = ud;
    if (!f->stream || !f->r)
        return;
    flow_stream_begin(f);
    flow_emit(f, f->ops->text(f, &f->out, s, n));
}

static void on_reasoning(void *ud, const char *s, size_t n)
{
    struct flow *f = ud;
    if (!f->stream || !f->r)
        return;
    flow_stream_begin(f);
    flow_emit(f, f->ops->reasoning(f, &f->out, s, n));
}

static void on_tool_call(void *ud, size_t index, const char *id, const char *name,
                         const char *args, size_t n)
{
    struct flow *f = ud;
    if (!f->stream || !f->r)
        return;
    flow_stream_begin(f);
    flow_emit(f, f->ops->tool_call(f, &f->out, index, id, name, args, n));
}

/* While the model is silent; the first ping also starts the stream. */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct flow *f = arg;
    if (!f->turn || !f->r)
        return;
    flow_stream_begin(f);
    flow_emit(f, f->ops->ping(f, &f->out));
}

int flow_streams_end(const struct flow *f, const struct turn_result *res)
{
    return f->r && f->stream && (res->ok || f->started);
}

void flow_finish(struct flow *f, const struct turn_result *res)
{
    struct http_req *r = f->r;
    struct gw_err err;
    json_t *body;

    f->finishing = 0;
    if (r) {
        r->on_gone = NULL;
        r->on_shutdown = NULL;
    }
    if (flow_streams_end(f, res)) {
        f->status = 200;
        flow_stream_begin(f);
        flow_emit(f, f->ops->stream_end(f, &f->out, res));
        http_stream_end(r);
    } else {
        body = f->ops->answer(f, res, &err);
        f->status = body ? 200 : err_status(&err);
        if (!r)
            json_decref(body);
        else if (body)
            http_reply_json(r, 200, body);
        else
            http_reply_error(r, &err);
    }
    flow_free(f);
}

/* A turn's AI credits, in the order keys/prices.h states: the runtime's own cost, else the
 * operator's --model-prices entry for the model it ran on, else the catalogue's price. */
static double credits_of(const struct flow *f, const struct turn_usage *u)
{
    const struct model_price *mp;

    if (u->cost_reported)
        return u->nano_aiu / 1e9;
    mp = prices_find(f->svc->prices, f->run_model);
    if (!mp && f->catalogue_priced)
        mp = &f->catalogue_price;
    return model_price_credits(mp, u->input_tokens, u->output_tokens, u->cache_read_tokens);
}

static void on_done(void *ud, const struct turn_result *res)
{
    struct flow *f = ud;

    f->turn = NULL;
    f->used_tokens = res->usage.input_tokens + res->usage.output_tokens;
    f->usage = res->usage;
    f->credits = credits_of(f, &res->usage);
    if (f->ops->after_turn && f->ops->after_turn(f, res) == 1) {
        f->finishing = 1; /* the client still may go: flow_gone frees f */
        return;
    }
    flow_finish(f, res);
}

/* An agent's progress is shown as reasoning: every dialect's clients display that
 * and do not send it back as the answer. */
static void on_progress(void *ud, const char *s, size_t n)
{
    struct flow *f = ud;
    if (!f->stream || !f->r)
        return;
    flow_stream_begin(f);
    flow_emit(f, f->ops->progress ? f->ops->progress(f, &f->out, s, n)
                                  : f->ops->reasoning(f, &f->out, s, n));
}

static const struct turn_sink flow_sink = {on_text, on_reasoning, on_tool_call, on_done,
                                           on_progress};

static void flow_gone(struct http_req *r)
{
    struct flow *f = r->hdata;

    if (f->images_pending)
        flow_images_cancel(f);
    if (f->turn || f->waiting_before) {
        flow_cancel_turn(f);
        if (f->ops->abandon)
            f->ops->abandon(f); /* e.g. a response the client left is not kept */
    }
    if (f->waiting_models)
        models_cancel(f->svc->models, f);
    if (!f->status)
        f->status = 499; /* the client went away (or the shutdown ended it: 503, set there) */
    flow_free(f);
}

/* The shutdown timeout passed with the answer still running: end it now with
 * an error its client can read (a stream gets its API's error event and
 * terminator), instead of a cut connection. */
static void flow_shutdown(struct http_req *r)
{
    struct flow *f = r->hdata;
    struct turn_result res;

    memset(&res, 0, sizeof(res));
    gw_err_set(&res.err, GW_ERUNTIME, "the gateway is shutting down; retry the request");
    if (f)
        f->status = 503;
    if (f && f->finishing && f->started) {
        flow_gone(r); /* the outcome is being stored; the stream ends short of it */
        r->on_gone = NULL;
        r->hdata = NULL;
        http_stream_end(r);
        return;
    }
    if (!f || !f->turn) {
        if (f)
            flow_gone(r); /* cancels downloads, the model lookup, the store's answer; frees f */
        r->on_gone = NULL;
        r->hdata = NULL;
        http_reply_error(r, &res.err);
        return;
    }
    flow_cancel_turn(f);
    on_done(f, &res);
}

void flow_run(struct flow *f)
{
    struct gw_err err;
    int rc = f->ops->before_turn ? f->ops->before_turn(f, &err) : 0;

    if (rc < 0)
        flow_fail(f, &err);
    else if (rc == 1)
        f->waiting_before = 1;
    else
        flow_turn(f, NULL);
}

/*
 * The caller's own GitHub token, when its key's user has one and the session talks to
 * Copilot (a BYOK provider needs no GitHub identity, and the runtime refuses both at once).
 */
static const char *user_token(const struct flow *f)
{
    return vkey_github_token(f->r ? f->r->vkey : NULL, broker_byok(f->svc->broker));
}

void flow_turn(struct flow *f, const struct gw_err *why)
{
    struct http_req *r = f->r;
    struct gw_err err;
    struct conv *conv = f->conv;
    struct turn_req tr = {.principal = r->principal,
                          .profile = f->profile ? f->profile : f->svc->profile,
                          .request_id = r->id,
                          .github_token = user_token(f)};

    f->waiting_before = 0;
    if (why) {
        flow_fail(f, why);
        return;
    }
    f->conv = NULL;
    free(f->run_model);
    f->run_model = xstrdup(conv->model);
    log_msg(LOG_DEBUG, "http", "req=%s turn for principal %s", r->id, r->principal);
    f->turn = broker_turn_start(f->svc->broker, conv, &tr, &flow_sink, f, &err);
    if (!f->turn) {
        if (f->ops->abandon)
            f->ops->abandon(f);
        flow_fail(f, &err);
        return;
    }
    if (f->ops->started && f->ops->started(f))
        return;
    if (f->ops->ping && f->stream) {
        struct timeval tv = {PING_S, 0};
        f->ping = event_new(f->svc->base, -1, EV_PERSIST, on_ping, f);
        event_add(f->ping, &tv);
    }
}

/* ---- checks ------------------------------------------------------------------- */

/*
 * Claude Code sends Anthropic's ids (claude-sonnet-4-5-20250929,
 * claude-opus-4-1); Copilot names them claude-sonnet-4.5.  Strip a date
 * suffix, write the version with dots, and fall back to the configured
 * default for any other claude-* id.  Returns 1 if f->conv->model was set.
 */
static int resolve_claude(struct flow *f, const json_t *list, const char *fallback)
{
    char id[256];
    size_t n;

    if (strncmp(f->conv->model, "claude", 6) != 0)
        return 0;
    snprintf(id, sizeof(id), "%s", f->conv->model);
    n = strlen(id);
    if (n > 9 && id[n - 9] == '-' && strspn(id + n - 8, "0123456789") == 8)
        id[n -= 9] = '\0';
    for (size_t i = 1; i + 1 < n; i++)
        if (id[i] == '-' && id[i - 1] >= '0' && id[i - 1] <= '9' && id[i + 1] >= '0' &&
            id[i + 1] <= '9')
            id[i] = '.';
    if (!models_find(list, id)) {
        if (!fallback || !*fallback)
            return 0;
        snprintf(id, sizeof(id), "%s", fallback);
    }
    free(f->conv->model);
    f->conv->model = xstrdup(id);
    log_msg(LOG_DEBUG, "http", "req=%s model '%.100s' served by '%s'", f->r->id, f->model, id);
    return 1;
}

/*
 * A conversation larger than the model's context window (or than
 * --max-input-tokens) never reaches the runtime: it is refused with the
 * API's own 400, as OpenAI and Anthropic do.  m is the model's catalogue
 * entry, or NULL when unknown.  Returns 1 if the request was answered.
 */
static int too_long(struct flow *f, const json_t *m)
{
    int64_t limit = models_input_limit(m, f->svc->max_input_tokens);
    struct gw_err e;

    if (limit <= 0 || f->input_estimate <= limit)
        return 0;
    api_context_exceeded(&e, f->r->api == HTTP_API_ANTHROPIC, f->ops->input_param, limit,
                         f->input_estimate);
    log_msg(LOG_INFO, "http", "req=%s about %lld tokens for '%.100s', whose limit is %lld",
            f->r->id, (long long)f->input_estimate, f->conv->model, (long long)limit);
    flow_fail(f, &e);
    return 1;
}

/* The model must be one the catalogue knows; if the catalogue cannot be had
 * (provider without /models), the request goes on and the provider decides.
 * Then the conversation must fit it, and only then are image URLs fetched. */
static void on_models(void *ud, const json_t *list, const struct gw_err *err)
{
    struct flow *f = ud;
    const json_t *entry;
    struct gw_err e;

    f->waiting_models = 0;
    if (err && err->code == GW_EAUTH && user_token(f)) {
        /* The gateway itself is not signed in, but this user brings their own identity:
         * their session decides whether the model is theirs to use. */
        log_msg(LOG_DEBUG, "http", "req=%s no catalogue without the gateway's sign-in: the "
                "user's own token decides", f->r->id);
        err = NULL;
        list = NULL;
    } else if (err && err->code == GW_EAUTH) {
        flow_fail(f, err);
        return;
    }
    if (list && !models_find(list, f->conv->model) && f->r->api == HTTP_API_ANTHROPIC &&
        resolve_claude(f, list, f->svc->anthropic_default_model)) {
        /* resolved: f->conv->model names the catalogue's model */
    } else if (list && !models_find(list, f->conv->model) && !user_token(f)) {
        /* (a user's own identity may reach models the gateway's does not: their session
         * decides, and an unknown model is its 404) */
        gw_err_param(&e, GW_ENOTFOUND, "model",
                     "The model '%.200s' does not exist or you do not have access to it.",
                     f->model);
        snprintf(e.api_code, sizeof(e.api_code), "model_not_found");
        flow_fail(f, &e);
        return;
    }
    if (err)
        log_msg(LOG_DEBUG, "http", "req=%s model list unavailable (%s): not checking the model",
                f->r->id, err->msg);
    entry = models_find(list, f->conv->model); /* the model the turn runs on, now resolved */
    f->catalogue_priced = models_pricing(entry, &f->catalogue_price.input,
                                         &f->catalogue_price.output, &f->catalogue_price.cached);
    if (too_long(f, entry))
        return;
    if (f->nimages) {
        flow_images_start(f);
        return;
    }
    flow_run(f);
}

/* X-Session-Id overrides any pin the API's own fields gave. */
static int apply_pin(struct http_req *r, struct conv *conv, struct gw_err *err)
{
    const char *pin = http_req_header(r, "X-Session-Id");

    if (!pin)
        return GW_OK;
    if (!*pin || strlen(pin) > 128)
        return gw_err_set(err, GW_EINVAL, "X-Session-Id must be 1 to 128 characters");
    free(conv->pin);
    conv->pin = xstrdup(pin);
    return GW_OK;
}

/*
 * A model "agent/<name>" is a configured agent: its sessions get the agent's
 * profile and run on the agent's own model (which the catalogue check then
 * covers).  The answer keeps the name the client used.  An unknown agent is a
 * 404 model_not_found, like an unknown model.  Returns 0, or -1 with err.
 */
static int apply_agent(struct flow *f, struct gw_err *err)
{
    const struct agent *a;

    if (strncmp(f->conv->model, AGENT_MODEL_PREFIX, strlen(AGENT_MODEL_PREFIX)) != 0)
        return 0;
    a = f->svc->agents ? agents_find(f->svc->agents, f->conv->model) : NULL;
    if (!a) {
        gw_err_param(err, GW_ENOTFOUND, "model",
                     "The model '%.200s' does not exist or you do not have access to it.",
                     f->model);
        snprintf(err->api_code, sizeof(err->api_code), "model_not_found");
        return -1;
    }
    f->profile = &a->profile;
    free(f->conv->model);
    f->conv->model = xstrdup(a->model);
    log_msg(LOG_DEBUG, "http", "req=%s agent '%s' runs on '%s'", f->r->id, a->name, a->model);
    return 0;
}

/*
 * A virtual key's limits (requests and tokens per minute, requests in flight, its credit
 * budget), checked before any expensive work: admitted, the reply carries the rate-limit
 * headers of its API and flow_free() gives the slot back; refused, a 429 with them.
 */
static int admit(struct flow *f, struct gw_err *err)
{
    const struct vkey *k = f->r->vkey;
    struct limit_verdict v;
    struct limits_headers h;
    int64_t now = util_wall_ms();

    if (!k || !f->svc->limits ||
        !(k->rpm || k->tpm || k->max_concurrent || k->budget_credits > 0))
        return 0;
    struct limit_spec spec = {k->rpm, k->tpm, k->max_concurrent, k->budget_credits,
                              k->budget_period};
    if (limits_admit(f->svc->limits, k->id, &spec, now, f->input_estimate, &v))
        return 0; /* an id or spec the limiter refuses: keys_from_json() checked both */
    limits_headers(&v, f->r->api == HTTP_API_ANTHROPIC ? LIMITS_ANTHROPIC : LIMITS_OPENAI, now,
                   0, &h);
    for (int i = 0; i < h.n; i++)
        http_req_add_header(f->r, h.h[i].name, h.h[i].value);
    if (!v.ok) {
        limits_verdict_err(&v, err);
        log_msg(LOG_INFO, "http", "req=%s key '%s': %s", f->r->id, k->name, err->msg);
        return -1;
    }
    snprintf(f->limit_key, sizeof(f->limit_key), "%s", k->id);
    return 0;
}

/* Rewrites conv->model by the --model-alias list ("FROM=TO,FROM=TO"). */
static void apply_alias(struct flow *f, const char *aliases)
{
    const char *p = aliases, *model = f->conv->model;
    size_t mlen = strlen(model);

    while (p && *p) {
        size_t len = strcspn(p, ","), flen = strcspn(p, "=");
        if (flen < len && flen == mlen && strncmp(p, model, mlen) == 0 && len > flen + 1) {
            char *to = xstrndup(p + flen + 1, len - flen - 1);
            log_msg(LOG_DEBUG, "http", "req=%s model '%s' is an alias of '%s'", f->r->id, model,
                    to);
            free(f->conv->model);
            f->conv->model = to;
            return;
        }
        p += len;
        p += *p == ',';
    }
}

static struct flow *flow_new(struct http_req *r, const struct dialect_ops *ops)
{
    struct flow *f = xcalloc(1, sizeof(*f));
    size_t k = strlen(ops->id_prefix);

    f->ops = ops;
    f->r = r;
    f->srv = r->srv;
    f->svc = r->svc;
    f->created_ms = util_wall_ms();
    f->created = f->created_ms / 1000;
    snprintf(f->req_id, sizeof(f->req_id), "%s", r->id);
    snprintf(f->principal, sizeof(f->principal), "%s", r->principal);
    f->vkey = vkey_ref(r->vkey);
    f->api = ops == &dialect_messages ? "messages" : ops == &dialect_responses ? "responses" : "chat";
    memcpy(f->id, ops->id_prefix, k);
    util_rand_id(f->id + k, 29);
    buf_init(&f->out, 64u * 1024 * 1024);
    return f;
}

/* The flow's hooks, from the first wait on. */
static void flow_hook(struct flow *f)
{
    f->r->hdata = f;
    f->r->on_gone = flow_gone;
    f->r->on_shutdown = flow_shutdown;
}

void http_flow_start(struct http_req *r)
{
    struct flow *f = flow_new(r, r->rt->ops);
    struct gw_err err;
    size_t len;
    const char *body = http_req_body(r, &len);
    int rc;

    /* Parse, then the checks that cost nothing; the catalogue next, downloads last. */
    if (f->ops->parse(f, body, len, &err)) {
        flow_fail(f, &err);
        return;
    }
    rc = f->ops->load ? f->ops->load(f, &err) : 0;
    if (rc < 0) {
        flow_fail(f, &err);
        return;
    }
    if (rc == 1) {
        flow_hook(f);
        return;
    }
    flow_loaded(f, NULL);
}

void flow_loaded(struct flow *f, const struct gw_err *why)
{
    struct http_req *r = f->r;
    struct gw_err err;

    if (why) {
        flow_fail(f, why);
        return;
    }
    if (apply_pin(r, f->conv, &err)) {
        flow_fail(f, &err);
        return;
    }
    f->model = xstrdup(f->conv->model);
    f->input_estimate = conv_estimate_tokens(f->conv);
    if (!vkey_model_allowed(r->vkey, f->model)) {
        /* the key's models: the name the client asked for (an agent's, an alias) */
        gw_err_param(&err, GW_EAUTH, "model", "this API key may not use the model '%.200s'",
                     f->model);
        err.http_status = 403;
        snprintf(err.api_code, sizeof(err.api_code), "model_not_allowed");
        flow_fail(f, &err);
        return;
    }
    if (r->vkey && r->vkey->token_state == VKEY_TOKEN_SEALED && !broker_byok(f->svc->broker)) {
        /* never served with the gateway's own identity instead */
        gw_err_set(&err, GW_EAUTH,
                   "your GitHub token is stored on this gateway but cannot be opened (its "
                   "--token-key-file is missing or was changed): set it again with PUT "
                   "/v1/me/github-token, or ask the operator");
        snprintf(err.api_code, sizeof(err.api_code), "github_token_unreadable");
        flow_fail(f, &err);
        return;
    }
    if (admit(f, &err)) {
        flow_fail(f, &err);
        return;
    }
    if (apply_agent(f, &err)) {
        flow_fail(f, &err);
        return;
    }
    if (!f->profile)
        apply_alias(f, f->svc->model_aliases);
    if (flow_images_collect(f, &err)) {
        flow_fail(f, &err);
        return;
    }
    flow_hook(f);
    f->waiting_models = 1;
    models_get(f->svc->models, on_models, f);
}
