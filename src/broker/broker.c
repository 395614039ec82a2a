/*
 * The session broker: runs each turn of a canonical conversation on a runtime
 * session, and owns the runtime process (start, warm-up, sign-in status).
 */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/errmap.h"
#include "broker/seed.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define TEXT_MAX (64u * 1024 * 1024)
#define WARMUP_TIMEOUT_MS 30000
#define AUTH_POLL_MS 30000

enum turn_phase {
    TP_SETUP,   /* create/resume sent */
    TP_SENDING, /* send sent */
    TP_RUNNING, /* waiting for events */
    TP_CLEANUP, /* abort/delete in flight; no more sink calls */
};

struct turn {
    struct broker *b;
    struct turn *next, *prev;
    struct conv *conv;
    struct turn_sink sink;
    void *ud;
    char sid[37];
    char rid[64];
    enum turn_phase phase;
    int canceled;  /* no more sink calls */
    int watching;
    int created;   /* the runtime knows the session */
    int idle;      /* session.idle seen: nothing to abort */
    int warmup;    /* the broker's own warm-up turn */
    uint64_t call; /* pending rt call id, 0 if none */
    struct event *deadline;
    /* Answer being assembled. */
    struct buf text, reasoning;
    size_t msg_start;     /* offset in text where the current message began */
    size_t msg_sent;      /* bytes of the current message already given to the sink */
    char msg_id[64];      /* current assistant messageId */
    int msg_done;         /* assistant.message seen for msg_id */
    int retry_pending;    /* model.turn_retry seen since msg_id started */
    int got_reasoning_delta;
    struct turn_usage usage;
    char last_finish[32];
    int failed;
    struct gw_err err;
};

struct broker {
    struct event_base *base;
    struct broker_config cfg;
    char *provider_url, *provider_key, *provider_type;
    char *warmup_url, *warmup_key, *workdir;
    struct rt *rt;
    struct turn *turns; /* every live turn, including ones cleaning up */
    int nturns;
    int signed_in;
    int auth_known;
    int auth_warned;
    int warm;
    struct event *auth_timer;
    char auth_login[128];
};

static void turn_finish(struct turn *t);
static void turn_fail(struct turn *t, const struct gw_err *err);
static void turn_cleanup(struct turn *t);
static void warmup_done(struct broker *b, int ok);

/* ---- helpers ---------------------------------------------------------- */

static json_t *provider_json(const char *url, const char *key, const char *type)
{
    json_t *p = json_pack("{s:s, s:s}", "type", type ? type : "openai", "baseUrl", url);
    if (key && *key)
        json_object_set_new(p, "apiKey", json_string(key));
    return p;
}

/* Session settings for a "pure model" session: the client's system prompt
 * verbatim, no built-in tools, no permission prompts, an empty directory. */
static json_t *session_params(struct broker *b, const struct turn *t)
{
    const struct conv *c = t->conv;
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
                  "sessionId", t->sid, "model", c->model, "clientName", "copilot-gateway",
                  "systemMessage", "mode", "replace", "content", c->system ? c->system : "",
                  "availableTools", avail, "tools", tools, "streaming", 1, "infiniteSessions",
                  "enabled", 0, "requestPermission", 0, "envValueMode", "direct",
                  "workingDirectory", b->workdir, "enableSessionTelemetry", 0,
                  "skipEmbeddingRetrieval", 1, "enableOnDemandInstructionDiscovery", 0,
                  "enableFileHooks", 0, "enableHostGitOperations", 0, "enableSessionStore", 0,
                  "enableSkills", 0, "memory", "enabled", 0, "customAgentsLocalOnly", 1);
    if (t->warmup)
        json_object_set_new(p, "provider", provider_json(b->warmup_url, b->warmup_key, "openai"));
    else if (b->provider_url)
        json_object_set_new(p, "provider",
                            provider_json(b->provider_url, b->provider_key, b->provider_type));
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

static void log_turn_err(const struct turn *t, const char *what, const struct gw_err *err)
{
    log_msg(LOG_WARN, "broker", "req=%s session=%s %s: %s", t->rid, t->sid, what, err->msg);
}

/* ---- turn lifecycle ---------------------------------------------------- */

/* A failed runtime call: the runtime's own text can name files under
 * --home, so the client gets a generic message and the log the details. */
static void turn_fail_call(struct turn *t, const char *what, const struct gw_err *err)
{
    struct gw_err e;

    log_turn_err(t, what, err);
    if (err->code == GW_EUPSTREAM || err->code == GW_EPROTO)
        gw_err_set(&e, GW_EUPSTREAM,
                   "the Copilot runtime could not %s the session (request id %s; details in "
                   "the gateway log)",
                   what, t->rid);
    else
        e = *err;
    turn_fail(t, &e);
}

static void turn_fail(struct turn *t, const struct gw_err *err)
{
    if (t->failed)
        return;
    t->failed = 1;
    t->err = *err;
}

static void turn_free(struct turn *t)
{
    struct broker *b = t->b;
    if (t->prev)
        t->prev->next = t->next;
    else
        b->turns = t->next;
    if (t->next)
        t->next->prev = t->prev;
    b->nturns--;
    if (t->deadline)
        event_free(t->deadline);
    if (t->watching)
        rt_unwatch(b->rt, t->sid);
    buf_release(&t->text);
    buf_release(&t->reasoning);
    conv_free(t->conv);
    free(t);
}

static void on_deleted(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    t->call = 0;
    if (err) /* the runtime is gone or refused: make sure no files are left */
        seed_remove(rt_home(t->b->rt), t->sid);
    turn_free(t);
}

static void on_aborted(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    t->call = 0;
    t->idle = 1;
    turn_cleanup(t);
}

/* Takes the session down: abort if a turn may be running, then delete. */
static void turn_cleanup(struct turn *t)
{
    struct broker *b = t->b;
    const char *method;
    rt_reply_cb cb;

    t->phase = TP_CLEANUP;
    if (t->call) /* a setup call is in flight: continue from its reply */
        return;
    if (t->deadline)
        event_del(t->deadline);
    if (!t->created) {
        seed_remove(rt_home(b->rt), t->sid);
        turn_free(t);
        return;
    }
    method = t->idle ? "session.delete" : "session.abort";
    cb = t->idle ? on_deleted : on_aborted;
    if (rt_call(b->rt, method, json_pack("{s:s}", "sessionId", t->sid), 10000, cb, t, &t->call)) {
        seed_remove(rt_home(b->rt), t->sid);
        turn_free(t);
    }
}

/* Reports the outcome to the sink once, then cleans up. */
static void turn_finish(struct turn *t)
{
    struct turn_result r;

    if (t->phase == TP_CLEANUP)
        return;
    if (t->warmup) {
        warmup_done(t->b, !t->failed);
    } else if (!t->canceled && t->sink.done) {
        memset(&r, 0, sizeof(r));
        r.ok = !t->failed;
        if (t->failed)
            r.err = t->err;
        r.text = buf_str(&t->text);
        r.reasoning = t->reasoning.len ? buf_str(&t->reasoning) : NULL;
        r.finish = strcmp(t->last_finish, "length") == 0 ? TURN_LENGTH : TURN_STOP;
        r.usage = t->usage;
        t->canceled = 1;
        t->sink.done(t->ud, &r);
    }
    turn_cleanup(t);
}

static void turn_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct turn *t = arg;
    struct gw_err err;
    gw_err_set(&err, GW_ETIMEDOUT, "the model did not finish within %d s; the request was aborted",
               t->b->cfg.turn_timeout_ms / 1000);
    log_turn_err(t, "deadline", &err);
    turn_fail(t, &err);
    turn_finish(t);
}

/* ---- events ---------------------------------------------------------------- */

static void emit_text(struct turn *t, const char *s, size_t n)
{
    if (!n)
        return;
    if (buf_add(&t->text, s, n)) {
        struct gw_err err;
        gw_err_set(&err, GW_ETOOBIG, "the model's answer exceeded the gateway's size limit");
        turn_fail(t, &err);
        turn_finish(t);
        return;
    }
    t->msg_sent += n;
    if (!t->canceled && t->sink.text)
        t->sink.text(t->ud, s, n);
}

static void emit_reasoning(struct turn *t, const char *s, size_t n)
{
    if (!n || buf_add(&t->reasoning, s, n))
        return;
    if (!t->canceled && t->sink.reasoning)
        t->sink.reasoning(t->ud, s, n);
}

/* A new assistant message began.  After a retry, text of an unfinished
 * earlier message is void (operations reference §4). */
static void on_message_start(struct turn *t, const char *mid)
{
    if (strcmp(mid, t->msg_id) == 0)
        return;
    if (t->msg_id[0] && !t->msg_done && t->retry_pending && t->msg_sent) {
        if (t->conv->stream) {
            struct gw_err err;
            gw_err_set(&err, GW_EUPSTREAM,
                       "the model's answer was interrupted and retried after output had "
                       "started; please retry the request");
            turn_fail(t, &err);
            turn_finish(t);
            return;
        }
        t->text.len = t->msg_start;
        if (t->text.ptr)
            t->text.ptr[t->text.len] = '\0';
    }
    snprintf(t->msg_id, sizeof(t->msg_id), "%s", mid);
    t->msg_start = t->text.len;
    t->msg_sent = 0;
    t->msg_done = 0;
    t->retry_pending = 0;
}

static void on_assistant_message(struct turn *t, const json_t *data)
{
    const char *mid = json_string_value(json_object_get(data, "messageId"));
    const char *content = json_string_value(json_object_get(data, "content"));
    const char *rtext = json_string_value(json_object_get(data, "reasoningText"));

    if (mid)
        on_message_start(t, mid);
    if (t->phase == TP_CLEANUP)
        return;
    /* Without deltas (a provider that does not stream) the text arrives here. */
    if (rtext && !t->got_reasoning_delta && !t->reasoning.len)
        emit_reasoning(t, rtext, strlen(rtext));
    if (content && t->msg_sent == 0)
        emit_text(t, content, strlen(content));
    t->msg_done = 1;
}

static void on_usage(struct turn *t, const json_t *d)
{
    const char *fin = json_string_value(json_object_get(d, "finishReason"));
    t->usage.input_tokens += json_integer_value(json_object_get(d, "inputTokens"));
    t->usage.output_tokens += json_integer_value(json_object_get(d, "outputTokens"));
    t->usage.reasoning_tokens += json_integer_value(json_object_get(d, "reasoningTokens"));
    t->usage.cache_read_tokens += json_integer_value(json_object_get(d, "cacheReadTokens"));
    t->usage.cache_write_tokens += json_integer_value(json_object_get(d, "cacheWriteTokens"));
    if (fin)
        snprintf(t->last_finish, sizeof(t->last_finish), "%s", fin);
}

static void on_event(void *ud, const char *type, const json_t *ev)
{
    struct turn *t = ud;
    const json_t *data = json_object_get(ev, "data");
    const char *s;

    if (t->phase == TP_CLEANUP || json_object_get(ev, "agentId"))
        return; /* sub-agent events are not part of the answer */
    if (strcmp(type, "assistant.message_delta") == 0) {
        s = json_string_value(json_object_get(data, "messageId"));
        if (s)
            on_message_start(t, s);
        s = json_string_value(json_object_get(data, "deltaContent"));
        if (s && t->phase != TP_CLEANUP)
            emit_text(t, s, strlen(s));
    } else if (strcmp(type, "assistant.message_start") == 0) {
        s = json_string_value(json_object_get(data, "messageId"));
        if (s)
            on_message_start(t, s);
    } else if (strcmp(type, "assistant.reasoning_delta") == 0) {
        s = json_string_value(json_object_get(data, "deltaContent"));
        t->got_reasoning_delta = 1;
        if (s)
            emit_reasoning(t, s, strlen(s));
    } else if (strcmp(type, "assistant.reasoning") == 0) {
        s = json_string_value(json_object_get(data, "content"));
        if (s && !t->got_reasoning_delta && !t->reasoning.len)
            emit_reasoning(t, s, strlen(s));
    } else if (strcmp(type, "assistant.message") == 0) {
        on_assistant_message(t, data);
    } else if (strcmp(type, "assistant.usage") == 0) {
        on_usage(t, data);
    } else if (strcmp(type, "model.turn_retry") == 0 || strcmp(type, "assistant.turn_retry") == 0) {
        t->retry_pending = 1;
    } else if (strcmp(type, "session.error") == 0) {
        struct gw_err err;
        errmap_session_error(data, t->b->provider_url != NULL, &err);
        log_turn_err(t, "session.error", &err);
        turn_fail(t, &err);
    } else if (strcmp(type, "session.idle") == 0) {
        t->idle = 1;
        turn_finish(t);
    }
}

static void on_lost(void *ud, const struct gw_err *err)
{
    struct turn *t = ud;
    struct gw_err e;

    t->watching = 0;
    t->idle = 1;
    gw_err_set(&e, GW_ERUNTIME,
               "the Copilot runtime exited during the request; it is being restarted, please "
               "retry");
    turn_fail(t, &e);
    turn_finish(t);
}

static const struct rt_watch_ops turn_watch_ops = {on_event, on_lost};

/* ---- setup ---------------------------------------------------------------- */

static void on_sent(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    t->call = 0;
    if (t->phase == TP_CLEANUP) {
        turn_cleanup(t);
        return;
    }
    if (err) {
        turn_fail_call(t, "run", err);
        t->idle = 1;
        turn_finish(t);
        return;
    }
    t->phase = TP_RUNNING;
}

static void send_turn(struct turn *t)
{
    struct broker *b = t->b;
    const struct conv *c = t->conv;
    const struct conv_msg *last = c->nmsgs ? &c->msgs[c->nmsgs - 1] : NULL;
    const char *method;
    json_t *params = json_pack("{s:s}", "sessionId", t->sid);

    if (last && last->role == CONV_USER) {
        char *text = conv_msg_text(last);
        method = "session.send";
        json_object_set_new(params, "prompt", json_string(text));
        free(text);
        json_t *att = seed_attachments(last);
        if (att)
            json_object_set_new(params, "attachments", att);
    } else {
        method = "session.sendMessages";
        json_object_set_new(params, "messages", json_array());
    }
    if (c->response_format)
        json_object_set_new(params, "responseFormat",
                            json_pack("{s:s, s:O}", "type", "json_schema", "jsonSchema",
                                      c->response_format));
    if (t->rid[0])
        json_object_set_new(params, "requestHeaders",
                            json_pack("{s:s}", "X-Request-Id", t->rid));
    t->phase = TP_SENDING;
    if (rt_call(b->rt, method, params, 0, on_sent, t, &t->call)) {
        struct gw_err err;
        gw_err_set(&err, GW_ERUNTIME, "the Copilot runtime is not available");
        turn_fail(t, &err);
        t->idle = 1;
        turn_finish(t);
    }
}

static void on_opened(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    t->call = 0;
    if (!err)
        t->created = 1;
    if (t->phase == TP_CLEANUP) {
        t->idle = 0;
        turn_cleanup(t);
        return;
    }
    if (err) {
        turn_fail_call(t, "open", err);
        t->idle = 1;
        turn_finish(t);
        return;
    }
    send_turn(t);
}

static struct turn *turn_new(struct broker *b, struct conv *conv, const struct turn_sink *sink,
                             void *ud, const char *rid)
{
    struct turn *t = xcalloc(1, sizeof(*t));
    t->b = b;
    t->conv = conv;
    if (sink)
        t->sink = *sink;
    t->ud = ud;
    util_uuid(t->sid);
    snprintf(t->rid, sizeof(t->rid), "%s", rid ? rid : "");
    buf_init(&t->text, TEXT_MAX);
    buf_init(&t->reasoning, TEXT_MAX);
    t->next = b->turns;
    if (b->turns)
        b->turns->prev = t;
    b->turns = t;
    b->nturns++;
    return t;
}

/* Opens the turn's session: create for a fresh conversation, seed + resume
 * when there is history before the message to send. */
static int turn_open(struct turn *t, struct gw_err *err)
{
    struct broker *b = t->b;
    const struct conv *c = t->conv;
    size_t nhist = c->nmsgs;
    const char *method = "session.create";

    if (nhist && c->msgs[nhist - 1].role == CONV_USER)
        nhist--;
    if (nhist) {
        if (seed_write(rt_home(b->rt), t->sid, c, nhist, b->workdir, err))
            return err->code;
        method = "session.resume";
    }
    if (rt_watch(b->rt, t->sid, &turn_watch_ops, t)) {
        seed_remove(rt_home(b->rt), t->sid);
        return gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not available");
    }
    t->watching = 1;
    if (rt_call(b->rt, method, session_params(b, t), 0, on_opened, t, &t->call)) {
        seed_remove(rt_home(b->rt), t->sid);
        return gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not available");
    }
    t->deadline = evtimer_new(b->base, turn_deadline, t);
    struct timeval tv = {b->cfg.turn_timeout_ms / 1000, (b->cfg.turn_timeout_ms % 1000) * 1000};
    evtimer_add(t->deadline, &tv);
    return GW_OK;
}

struct turn *broker_turn_start(struct broker *b, struct conv *conv, const struct turn_sink *sink,
                               void *ud, const char *request_id, struct gw_err *err)
{
    const char *why;
    struct turn *t;

    if (!broker_ready(b, &why)) {
        conv_free(conv);
        if (b->auth_known && !b->signed_in && !b->provider_url)
            gw_err_set(err, GW_EAUTH, "%s", errmap_signin_msg);
        else
            gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not ready (%s); retry shortly",
                       why);
        return NULL;
    }
    t = turn_new(b, conv, sink, ud, request_id);
    if (turn_open(t, err)) {
        t->canceled = 1;
        turn_free(t);
        return NULL;
    }
    log_msg(LOG_DEBUG, "broker", "req=%s session=%s turn started (%zu messages)", t->rid, t->sid,
            conv->nmsgs);
    return t;
}

void broker_turn_cancel(struct turn *t)
{
    if (!t || t->canceled)
        return;
    log_msg(LOG_INFO, "broker", "req=%s session=%s client went away: aborting the turn", t->rid,
            t->sid);
    t->canceled = 1;
    turn_cleanup(t);
}

/* ---- the runtime: warm-up, sign-in, readiness ----------------------------- */

static void warmup_done(struct broker *b, int ok)
{
    if (rt_state(b->rt) != RT_WARMING)
        return; /* the process went away during its warm-up */
    if (!ok)
        log_msg(LOG_WARN, "broker", "runtime warm-up turn failed; serving anyway");
    else
        log_msg(LOG_INFO, "broker", "runtime warmed up");
    b->warm = 1;
    rt_set_ready(b->rt);
}

static void start_warmup(struct broker *b)
{
    struct conv *c = conv_new();
    struct conv_msg *m;
    struct gw_err err;
    struct turn *t;

    c->model = xstrdup("warmup");
    c->system = xstrdup("warm-up");
    m = conv_add_msg(c, CONV_USER);
    conv_msg_add_text(m, "warm-up", 7);
    t = turn_new(b, c, NULL, NULL, "warmup");
    t->warmup = 1;
    t->canceled = 1;
    if (turn_open(t, &err)) {
        turn_free(t);
        warmup_done(b, 0);
        return;
    }
    struct timeval tv = {WARMUP_TIMEOUT_MS / 1000, 0};
    evtimer_add(t->deadline, &tv);
}

static void on_auth(void *ud, const json_t *result, const struct gw_err *err)
{
    struct broker *b = ud;
    int was = b->signed_in;
    if (err)
        return;
    b->auth_known = 1;
    b->signed_in = json_is_true(json_object_get(result, "isAuthenticated"));
    snprintf(b->auth_login, sizeof(b->auth_login), "%s",
             json_string_value(json_object_get(result, "login"))
                 ? json_string_value(json_object_get(result, "login"))
                 : "");
    if (b->signed_in && !was) {
        log_msg(LOG_INFO, "broker", "signed in to GitHub%s%s", b->auth_login[0] ? " as " : "",
                b->auth_login);
        b->auth_warned = 0;
    } else if (!b->signed_in && !b->provider_url && !b->auth_warned) {
        log_msg(LOG_WARN, "broker", "%s", errmap_signin_msg); /* once, not every poll */
        b->auth_warned = 1;
    }
}

static void check_auth(struct broker *b)
{
    uint64_t id;
    if (rt_state(b->rt) < RT_WARMING || rt_state(b->rt) > RT_READY)
        return;
    if (rt_call(b->rt, "auth.getStatus", json_object(), 10000, on_auth, b, &id))
        return;
}

static void auth_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    if (!b->signed_in && !b->provider_url)
        check_auth(b);
}

static void on_rt_up(struct rt *rt, void *ud)
{
    struct broker *b = ud;
    log_msg(LOG_INFO, "broker", "runtime %s connected (pid %d)", rt_version(rt), rt_pid(rt));
    check_auth(b);
    start_warmup(b);
}

static void on_rt_down(struct rt *rt, void *ud, const char *why)
{
    struct broker *b = ud;
    b->warm = 0;
    log_msg(LOG_WARN, "broker", "runtime down: %s", why);
}

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg)
{
    struct broker *b = xcalloc(1, sizeof(*b));
    struct timeval tv = {AUTH_POLL_MS / 1000, 0};

    b->base = base;
    b->cfg = *cfg;
    b->provider_url = xstrdup(cfg->provider.url && *cfg->provider.url ? cfg->provider.url : NULL);
    b->provider_key = xstrdup(cfg->provider.key);
    b->provider_type = xstrdup(cfg->provider.type ? cfg->provider.type : "openai");
    b->warmup_url = xstrdup(cfg->warmup_url);
    b->warmup_key = xstrdup(cfg->warmup_key);
    b->workdir = xstrdup(cfg->workdir);
    if (b->cfg.turn_timeout_ms <= 0)
        b->cfg.turn_timeout_ms = 600000;
    b->cfg.rt.on_up = on_rt_up;
    b->cfg.rt.on_down = on_rt_down;
    b->cfg.rt.ud = b;
    b->cfg.rt.cwd = b->workdir;
    b->rt = rt_new(base, &b->cfg.rt);
    b->auth_timer = event_new(base, -1, EV_PERSIST, auth_tick, b);
    event_add(b->auth_timer, &tv);
    return b;
}

int broker_start(struct broker *b)
{
    return rt_start(b->rt);
}

void broker_stop(struct broker *b, void (*done)(void *ud), void *ud)
{
    rt_stop(b->rt, done, ud);
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    while (b->turns) {
        b->turns->call = 0;
        b->turns->watching = 0;
        turn_free(b->turns);
    }
    rt_free(b->rt);
    event_free(b->auth_timer);
    free(b->provider_url);
    free(b->provider_key);
    free(b->provider_type);
    free(b->warmup_url);
    free(b->warmup_key);
    free(b->workdir);
    free(b);
}

int broker_ready(const struct broker *b, const char **why)
{
    enum rt_state s = rt_state(b->rt);
    const char *w = NULL;

    if (s != RT_READY)
        w = s == RT_WARMING ? "runtime warming up" : s == RT_STOPPED ? "runtime stopped"
                                                 : s == RT_STOPPING ? "shutting down"
                                                                    : "runtime starting";
    else if (!b->provider_url && !b->signed_in)
        w = "not signed in to GitHub";
    if (why)
        *why = w ? w : "ready";
    return w == NULL;
}

int broker_signed_in(const struct broker *b)
{
    return b->signed_in;
}

int broker_byok(const struct broker *b)
{
    return b->provider_url != NULL;
}

struct rt *broker_rt(struct broker *b)
{
    return b->rt;
}

int broker_turns_active(const struct broker *b)
{
    return b->nturns;
}
