/*
 * The session broker: maps each request's conversation onto a live runtime
 * session (reuse, seeding, pending client tool calls) and owns the runtime
 * process (start, warm-up, sign-in status).
 */
#include "broker/broker.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "broker/errmap.h"
#include "broker/hash.h"
#include "broker/seed.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define TEXT_MAX (64u * 1024 * 1024)
#define ARGS_MAX (8u * 1024 * 1024)
#define WARMUP_TIMEOUT_MS 30000
#define AUTH_POLL_MS 30000
#define CLOSE_TIMEOUT_MS 10000
#define RECYCLE_CHECK_S 10
/* A turn whose runtime died before any output reached its client moves to a
 * new session at most this often, so a request that kills the runtime cannot
 * take the whole pool down in a loop. */
#define TURN_MAX_RETRIES 1
#define RETRY_AFTER_NOT_READY_S 1
#define DISK_CHECK_MS 1000 /* how long a free-space reading is trusted */

enum sess_state {
    SS_BUSY = 0, /* a turn is attached (opening, sending or running) */
    SS_PARKED,   /* waiting for the client's tool results */
    SS_IDLE,     /* between turns, reusable */
    SS_CLOSING,  /* abort/delete in flight */
};

/* A client tool call the session is waiting on (or the runtime answered). */
struct pcall {
    char *id;         /* toolCallId: the model's own id */
    char *name;
    struct buf args;  /* arguments JSON text as the model wrote it */
    char *request_id; /* external_tool.requested requestId, NULL until it came */
    int runtime_done; /* the runtime answered it itself (unknown tool, bad JSON) */
};

/* One runtime process of the pool. */
struct rtp {
    struct broker *b;
    struct rt *rt;
    int idx;
    int draining;      /* recycling: no new sessions; restarted once empty */
    int in_recycle;    /* maybe_recycle() is on the stack */
    int nsess;         /* live sessions placed on it */
    uint64_t opened;   /* sessions opened since it (re)started */
    uint64_t recycled; /* times it was recycled */
};

struct sess {
    struct broker *b;
    struct rtp *p;          /* the process it is pinned to */
    struct sess *next, *prev;
    char sid[37];
    char *pin;
    uint64_t gen;           /* runtime generation the session lives in */
    enum sess_state state;
    int created;            /* the runtime knows it */
    int running;            /* a runtime turn may be in progress: abort before delete */
    int watching;
    struct hash head;       /* hash of the history it holds, valid when idle/parked */
    struct hash root;       /* h0 of its conversation (model, system, tools) */
    struct turn *turn;
    struct pcall *calls;    /* the current assistant message's tool calls */
    size_t ncalls;
    uint64_t last_used_ms;
    struct event *timer;    /* idle or tool timeout */
    uint64_t call;          /* pending close call */
    char *model;
    int persisted;          /* a store row exists for it */
};

enum turn_phase {
    TP_SETUP,   /* create/resume sent */
    TP_SENDING, /* send / tool results sent */
    TP_RUNNING, /* waiting for events */
    TP_DONE,    /* reported; no more sink calls */
};

struct turn {
    struct broker *b;
    struct sess *s;
    struct conv *conv;
    struct hash base;       /* hash of the conversation as sent (chain[n]) */
    struct hash root;       /* its h0 (chain[0]) */
    struct turn_sink sink;
    void *ud;
    char rid[64];
    enum turn_phase phase;
    int canceled;
    int warmup;
    int resuming;           /* opening a dormant session with session.resume */
    int emitted;            /* the sink got output (reached the client if it streams) */
    int retried;            /* times it moved to a new session */
    int waiting;            /* on b->waiting: no process was ready for its retry */
    struct turn *wnext, *wprev;
    int kicked;             /* the deadline event was re-armed to report a call failure */
    struct gw_err kick_err;
    size_t first_new;       /* first message the session has not seen */
    uint64_t call;          /* pending rt call of this turn */
    size_t answer_next;     /* next pending call to answer (tool results) */
    int answered_all;       /* the last pending call's result went out */
    struct event *deadline;
    struct buf text, reasoning;
    size_t msg_start, msg_sent;
    char msg_id[64];
    int msg_done, retry_pending, got_reasoning_delta;
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
    struct rtp *pool;
    int npool;
    char *home;             /* COPILOT_HOME, shared by the pool (see broker.h) */
    struct event *recycle_timer;
    struct store *store;    /* NULL: no persistence (borrowed: see broker_config) */
    struct {                /* the last free-space reading (broker_can_write) */
        uint64_t at_ms;     /* 0: never */
        int64_t data_mb, home_mb;
        struct gw_err err;  /* code GW_OK: enough room on both */
    } disk;
    struct sess *sessions;
    struct turn *waiting;   /* turns waiting for a ready process (see turn_reopen) */
    struct broker_stats st;
    int signed_in, auth_known, auth_warned;
    struct event *auth_timer;
    char auth_login[128];
};

static void turn_finish(struct turn *t);
static void turn_fail(struct turn *t, const struct gw_err *err);
static void sess_close(struct sess *s, const char *why);
static void warmup_done(struct rtp *p, int ok);
static struct rtp *pick(struct broker *b);
static void maybe_recycle(struct rtp *p);

const struct session_profile profile_pure_model = {
    .id = "model",
    .system_mode = "replace",
};

/* ---- session settings ----------------------------------------------------------- */

static json_t *provider_json(const char *url, const char *key, const char *type)
{
    json_t *p = json_pack("{s:s, s:s}", "type", type ? type : "openai", "baseUrl", url);
    if (key && *key)
        json_object_set_new(p, "apiKey", json_string(key));
    return p;
}

/* A "pure model" session: the client's system prompt verbatim, only the
 * client's tools (no built-ins), no permission prompts, an empty directory. */
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
                  "sessionId", t->s->sid, "model", c->model, "clientName", "copilot-gateway",
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
    log_msg(LOG_WARN, "broker", "req=%s session=%s %s: %s", t->rid, t->s ? t->s->sid : "-",
            what, err->msg);
}

/* ---- sessions --------------------------------------------------------------------- */

static void pcalls_clear(struct sess *s)
{
    for (size_t i = 0; i < s->ncalls; i++) {
        free(s->calls[i].id);
        free(s->calls[i].name);
        free(s->calls[i].request_id);
        buf_release(&s->calls[i].args);
    }
    free(s->calls);
    s->calls = NULL;
    s->ncalls = 0;
}

static void set_state(struct sess *s, enum sess_state st)
{
    struct broker *b = s->b;
    if (s->state == SS_PARKED)
        b->st.sessions_parked--;
    s->state = st;
    if (st == SS_PARKED)
        b->st.sessions_parked++;
}

static void on_sess_event(void *ud, const char *type, const json_t *ev);
static void on_sess_lost(void *ud, const struct gw_err *err);
static const struct rt_watch_ops sess_watch_ops = {.event = on_sess_event, .lost = on_sess_lost};

static struct sess *sess_new(struct rtp *p, const char *sid, const char *pin, const char *model)
{
    struct broker *b = p->b;
    struct sess *s = xcalloc(1, sizeof(*s));
    s->b = b;
    s->p = p;
    p->nsess++;
    p->opened++;
    if (sid)
        snprintf(s->sid, sizeof(s->sid), "%s", sid);
    else
        util_uuid(s->sid);
    s->pin = xstrdup(pin);
    s->model = xstrdup(model);
    s->gen = rt_generation(p->rt);
    s->state = SS_BUSY;
    s->last_used_ms = util_now_ms();
    s->next = b->sessions;
    if (b->sessions)
        b->sessions->prev = s;
    b->sessions = s;
    b->st.sessions_live++;
    return s;
}

static void sess_free(struct sess *s)
{
    struct broker *b = s->b;
    if (s->prev)
        s->prev->next = s->next;
    else
        b->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (s->state != SS_CLOSING)
        b->st.sessions_live--;
    set_state(s, SS_CLOSING);
    if (s->watching)
        rt_unwatch(s->p->rt, s->sid);
    s->p->nsess--;
    maybe_recycle(s->p);
    if (s->timer)
        event_free(s->timer);
    pcalls_clear(s);
    free(s->pin);
    free(s->model);
    free(s);
}

/* ---- the session map (SQLite) ---------------------------------------------------------- */

static void persist(struct sess *s)
{
    struct broker *b = s->b;
    struct store_session row;
    struct gw_err err;

    if (!b->store)
        return;
    memset(&row, 0, sizeof(row));
    memcpy(row.sid, s->sid, sizeof(row.sid));
    hash_hex(&s->head, row.head);
    row.pin = s->pin;
    row.model = s->model ? s->model : "";
    row.last_used = (int64_t)time(NULL) * 1000;
    if (store_put(b->store, &row, &err))
        log_msg(LOG_WARN, "broker", "session=%s cannot record it: %s", s->sid, err.msg);
    else
        s->persisted = 1;
}

static void unpersist(struct sess *s)
{
    struct gw_err err;
    if (!s->persisted || !s->b->store)
        return;
    if (store_delete(s->b->store, s->sid, &err))
        log_msg(LOG_WARN, "broker", "session=%s cannot forget it: %s", s->sid, err.msg);
    s->persisted = 0;
}

static void on_closed(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    /* The runtime is gone or refused, or could not close it (success false: e.g. its disk
     * is full and the final event could not be written): make sure no files are left. */
    if (err || !json_is_true(json_object_get(result, "success")))
        seed_remove(s->b->home, s->sid);
    sess_free(s);
}

static void close_step(struct sess *s);

static void on_abort_done(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    s->running = 0;
    close_step(s);
}

/* Abort if a runtime turn may be running, then delete. */
static void close_step(struct sess *s)
{
    struct broker *b = s->b;
    const char *method = s->running ? "session.abort" : "session.delete";
    rt_reply_cb cb = s->running ? on_abort_done : on_closed;

    if (s->call || (s->turn && s->turn->call))
        return; /* continue from the reply in flight */
    if (!s->created || s->gen != rt_generation(s->p->rt) ||
        rt_call(s->p->rt, method, json_pack("{s:s}", "sessionId", s->sid), CLOSE_TIMEOUT_MS, cb,
                s, &s->call)) {
        seed_remove(b->home, s->sid);
        sess_free(s);
    }
}

/* Takes a session out of service and deletes it in the runtime.  A turn
 * still attached must have been finished or detached by the caller. */
static void sess_close(struct sess *s, const char *why)
{
    struct broker *b = s->b;

    if (s->state == SS_CLOSING)
        return;
    log_msg(LOG_DEBUG, "broker", "session=%s closing: %s", s->sid, why);
    unpersist(s);
    b->st.sessions_live--;
    set_state(s, SS_CLOSING);
    if (s->timer)
        event_del(s->timer);
    close_step(s);
}

static void on_sess_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sess *s = arg;
    s->b->st.sessions_evicted++;
    sess_close(s, s->state == SS_PARKED ? "no tool results within the tool timeout"
                                         : "idle timeout");
}

static void arm_timer(struct sess *s, int seconds)
{
    struct timeval tv = {seconds, 0};
    if (!s->timer)
        s->timer = evtimer_new(s->b->base, on_sess_timer, s);
    evtimer_add(s->timer, &tv);
}

/* Finds a reusable session: same runtime generation, holding exactly the
 * history hashed as h, in state want.  A pinned request looks only at its pin. */
static struct sess *sess_find(struct broker *b, const struct hash *h, enum sess_state want,
                              const char *pin)
{
    for (struct sess *s = b->sessions; s; s = s->next) {
        /* A draining process takes no new turns, but finishes parked tool loops. */
        if (s->state != want || s->gen != rt_generation(s->p->rt) || !rt_usable(s->p->rt) ||
            (want == SS_IDLE && s->p->draining) || !hash_eq(&s->head, h))
            continue;
        if (pin ? (s->pin && strcmp(s->pin, pin) == 0) : !s->pin)
            return s;
    }
    return NULL;
}

/*
 * Drops a pin's older sessions of the same conversation root (model, system
 * prompt, tools): the pinned conversation was edited.  Sessions under the
 * same pin with another root are other conversations of the same client
 * (Claude Code sends one metadata.user_id for its main loop, its sub-agents
 * and its small side requests) and stay.
 */
static void unpin(struct broker *b, const char *pin, const struct hash *root, struct sess *keep)
{
    if (!pin)
        return;
    for (struct sess *s = b->sessions, *n; s; s = n) {
        n = s->next;
        if (s == keep || !s->pin || strcmp(s->pin, pin) != 0 || !hash_eq(&s->root, root))
            continue;
        free(s->pin);
        s->pin = NULL;
        if (s->state == SS_IDLE || s->state == SS_PARKED)
            sess_close(s, "its pinned conversation was edited");
    }
}

/* Keeps the live session count under the cap: least recently used idle
 * sessions go first, then parked ones (their next request reseeds). */
static void evict_for_new(struct broker *b)
{
    while (b->st.sessions_live >= b->cfg.max_sessions) {
        struct sess *victim = NULL;
        for (struct sess *s = b->sessions; s; s = s->next) {
            if (s->state != SS_IDLE && s->state != SS_PARKED)
                continue;
            if (!victim || (victim->state == SS_PARKED && s->state == SS_IDLE) ||
                (victim->state == s->state && s->last_used_ms < victim->last_used_ms))
                victim = s;
        }
        if (!victim)
            return; /* every session is busy: allow more than the cap */
        b->st.sessions_evicted++;
        sess_close(victim, "session cap reached (least recently used)");
    }
}

/* ---- turn lifecycle ----------------------------------------------------------------- */

/* A failed runtime call: the runtime's own text can name files under
 * --home, so the client gets a generic message and the log the details. */
static void turn_fail_call(struct turn *t, const char *what, const struct gw_err *err)
{
    struct gw_err e;

    log_turn_err(t, what, err);
    if (errmap_no_space(err->msg)) {
        errmap_storage(&e, "the Copilot runtime cannot %s the session: its disk (--home) is full",
                       what);
    } else if (err->code == GW_ETIMEDOUT) {
        gw_err_set(&e, GW_ETIMEDOUT,
                   "the Copilot runtime did not answer in time (request id %s; details in the "
                   "gateway log)",
                   t->rid);
    } else if (err->code == GW_ERUNTIME) {
        gw_err_set(&e, GW_ERUNTIME,
                   "the Copilot runtime is restarting; please retry (request id %s)", t->rid);
        e.retry_after = RETRY_AFTER_NOT_READY_S;
    } else {
        gw_err_set(&e, GW_EUPSTREAM,
                   "the Copilot runtime could not %s the session (request id %s; details in "
                   "the gateway log)",
                   what, t->rid);
    }
    turn_fail(t, &e);
}

static void turn_fail(struct turn *t, const struct gw_err *err)
{
    if (t->failed)
        return;
    t->failed = 1;
    t->err = *err;
}

static void wait_del(struct turn *t)
{
    struct broker *b = t->b;

    if (!t->waiting)
        return;
    if (t->wprev)
        t->wprev->wnext = t->wnext;
    else
        b->waiting = t->wnext;
    if (t->wnext)
        t->wnext->wprev = t->wprev;
    t->wnext = t->wprev = NULL;
    t->waiting = 0;
}

static void turn_free(struct turn *t)
{
    struct broker *b = t->b;
    wait_del(t);
    if (t->s && t->s->turn == t)
        t->s->turn = NULL;
    b->st.turns_active--;
    if (t->deadline)
        event_free(t->deadline);
    buf_release(&t->text);
    buf_release(&t->reasoning);
    conv_free(t->conv);
    free(t);
}

/* The head a session holds after this turn: the conversation as sent plus
 * the assistant message the client will echo back. */
static void turn_head(const struct turn *t, struct hash *out)
{
    struct conv_msg m;
    struct conv_part part;
    struct conv_tool_call *calls = NULL;
    const struct sess *s = t->s;

    memset(&m, 0, sizeof(m));
    m.role = CONV_ASSISTANT;
    if (t->text.len) {
        memset(&part, 0, sizeof(part));
        part.kind = CONV_TEXT;
        part.text = t->text.ptr;
        m.parts = &part;
        m.nparts = 1;
    }
    if (s->ncalls) {
        calls = xcalloc(s->ncalls, sizeof(*calls));
        for (size_t i = 0; i < s->ncalls; i++) {
            calls[i].id = s->calls[i].id;
            calls[i].name = s->calls[i].name;
            calls[i].arguments = (char *)buf_str(&s->calls[i].args);
        }
        m.calls = calls;
        m.ncalls = s->ncalls;
    }
    hash_msg(&t->base, &m, out);
    free(calls);
}

/* What happens to the session once its turn has been reported. */
static void sess_after_turn(struct turn *t, enum turn_finish finish)
{
    struct sess *s = t->s;
    struct broker *b = t->b;

    s->last_used_ms = util_now_ms();
    if (t->failed || t->canceled || finish == TURN_LENGTH || s->state == SS_CLOSING) {
        /* The runtime's history no longer matches what the client saw: a
         * failed or cut user turn stays in it, or a hidden continuation.
         * A call of the turn still in flight keeps the turn attached, and
         * the close waits for it (see turn_zombie()). */
        if (!t->call) {
            s->turn = NULL;
            t->s = NULL;
        }
        sess_close(s, t->failed ? "the turn failed" : t->canceled ? "the client went away"
                                                                  : "the answer was truncated");
        return;
    }
    turn_head(t, &s->head);
    s->turn = NULL;
    t->s = NULL;
    if (finish == TURN_TOOL_CALLS) {
        set_state(s, SS_PARKED);
        arm_timer(s, b->cfg.tool_timeout_s);
    } else {
        pcalls_clear(s);
        set_state(s, SS_IDLE);
        s->running = 0;
        arm_timer(s, b->cfg.session_idle_s);
        persist(s);
        maybe_recycle(s->p); /* a draining process hands it over now */
    }
}

/* Reports the outcome to the sink once. */
static void turn_finish(struct turn *t)
{
    struct turn_result r;
    struct turn_tool_call *calls = NULL;
    struct sess *s = t->s;
    enum turn_finish finish = TURN_STOP;

    if (t->phase == TP_DONE)
        return;
    t->phase = TP_DONE;
    if (t->deadline)
        event_del(t->deadline);
    if (strcmp(t->last_finish, "length") == 0)
        finish = TURN_LENGTH;
    if (!t->failed && s && s->state == SS_BUSY && s->ncalls)
        finish = TURN_TOOL_CALLS;
    if (t->warmup) {
        if (s)
            warmup_done(s->p, !t->failed);
    } else if (!t->canceled && t->sink.done) {
        memset(&r, 0, sizeof(r));
        r.ok = !t->failed;
        if (t->failed)
            r.err = t->err;
        r.text = buf_str(&t->text);
        r.reasoning = t->reasoning.len ? buf_str(&t->reasoning) : NULL;
        r.finish = finish;
        if (finish == TURN_TOOL_CALLS) {
            calls = xcalloc(s->ncalls, sizeof(*calls));
            for (size_t i = 0; i < s->ncalls; i++) {
                calls[i].id = s->calls[i].id;
                calls[i].name = s->calls[i].name;
                calls[i].arguments = buf_str(&s->calls[i].args);
            }
            r.calls = calls;
            r.ncalls = s->ncalls;
        }
        r.usage = t->usage;
        r.session_id = s ? s->sid : NULL;
        t->sink.done(t->ud, &r);
        free(calls);
    }
    if (s)
        sess_after_turn(t, t->warmup ? TURN_LENGTH : finish); /* warm-up sessions are closed */
    if (t->call)
        return; /* freed when its call returns: turn_zombie() */
    turn_free(t);
}

/*
 * The reply to a call of a turn that has already been reported.  Returns 1
 * if so: the turn is freed and, if its session is closing, the close goes on.
 */
static int turn_zombie(struct turn *t, const struct gw_err *err, int opening)
{
    struct sess *s = t->s;

    t->call = 0;
    if (t->phase != TP_DONE)
        return 0;
    if (s) {
        if (opening && !err)
            s->created = 1;
        s->turn = NULL;
        t->s = NULL;
        if (s->state == SS_CLOSING)
            close_step(s);
    }
    turn_free(t);
    return 1;
}

static int turn_retry_elsewhere(struct turn *t);

static void turn_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct turn *t = arg;
    struct gw_err err;

    if (t->kicked) { /* see call_or_fail() */
        struct timeval tv = {t->b->cfg.turn_timeout_ms / 1000,
                             (t->b->cfg.turn_timeout_ms % 1000) * 1000};
        t->kicked = 0;
        evtimer_add(t->deadline, &tv);
        if (t->kick_err.code == GW_ERUNTIME && turn_retry_elsewhere(t))
            return;
        turn_fail(t, &t->kick_err);
        turn_finish(t);
        return;
    }
    if (t->waiting) {
        wait_del(t);
        gw_err_set(&err, GW_ERUNTIME,
                   "no Copilot runtime came back within %d s after the one serving the request "
                   "exited; please retry",
                   t->b->cfg.turn_timeout_ms / 1000);
        err.retry_after = RETRY_AFTER_NOT_READY_S;
    } else {
        gw_err_set(&err, GW_ETIMEDOUT,
                   "the model did not finish within %d s; the request was aborted",
                   t->b->cfg.turn_timeout_ms / 1000);
    }
    log_turn_err(t, "deadline", &err);
    turn_fail(t, &err);
    turn_finish(t);
}

/* ---- events --------------------------------------------------------------------------- */

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
    t->emitted = 1;
    if (!t->canceled && t->sink.text)
        t->sink.text(t->ud, s, n);
}

static void emit_reasoning(struct turn *t, const char *s, size_t n)
{
    if (!n || buf_add(&t->reasoning, s, n))
        return;
    t->emitted = 1;
    if (!t->canceled && t->sink.reasoning)
        t->sink.reasoning(t->ud, s, n);
}

/* A new assistant message began.  After a retry, text of an unfinished
 * earlier message is void (operations reference §4). */
static void on_message_start(struct turn *t, const char *mid)
{
    if (strcmp(mid, t->msg_id) == 0)
        return;
    if (t->msg_id[0] && !t->msg_done && t->retry_pending && (t->msg_sent || t->s->ncalls)) {
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
    if (t->msg_done || t->retry_pending)
        pcalls_clear(t->s); /* the calls of an earlier message were answered or void */
    snprintf(t->msg_id, sizeof(t->msg_id), "%s", mid);
    t->msg_start = t->text.len;
    t->msg_sent = 0;
    t->msg_done = 0;
    t->retry_pending = 0;
}

static struct pcall *pcall_get(struct sess *s, const char *id, const char *name, int *is_new)
{
    struct pcall *c;
    for (size_t i = 0; i < s->ncalls; i++)
        if (strcmp(s->calls[i].id, id) == 0)
            return &s->calls[i];
    s->calls = xrealloc(s->calls, (s->ncalls + 1) * sizeof(*s->calls));
    c = &s->calls[s->ncalls++];
    memset(c, 0, sizeof(*c));
    c->id = xstrdup(id);
    c->name = xstrdup(name ? name : "");
    buf_init(&c->args, ARGS_MAX);
    if (is_new)
        *is_new = 1;
    return c;
}

static void on_tool_call_delta(struct turn *t, const json_t *d)
{
    const char *id = json_string_value(json_object_get(d, "toolCallId"));
    const char *name = json_string_value(json_object_get(d, "toolName"));
    const char *delta = json_string_value(json_object_get(d, "inputDelta"));
    int is_new = 0;
    struct pcall *c;

    if (!id)
        return;
    c = pcall_get(t->s, id, name, &is_new);
    if (delta && buf_add(&c->args, delta, strlen(delta)))
        buf_init(&c->args, ARGS_MAX);
    t->emitted = 1;
    if (!t->canceled && t->sink.tool_call)
        t->sink.tool_call(t->ud, (size_t)(c - t->s->calls), is_new ? c->id : NULL,
                          is_new ? c->name : NULL, delta ? delta : "", delta ? strlen(delta) : 0);
}

/* The message's toolRequests are authoritative: calls that streamed no
 * deltas (a provider that does not stream) are added here. */
static void on_tool_requests(struct turn *t, const json_t *reqs)
{
    size_t i;
    const json_t *r;

    json_array_foreach(reqs, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "toolCallId"));
        const char *name = json_string_value(json_object_get(r, "name"));
        int is_new = 0;
        struct pcall *c;
        char *args;

        if (!id)
            continue;
        c = pcall_get(t->s, id, name, &is_new);
        if (!is_new && c->args.len)
            continue;
        args = json_dumps(json_object_get(r, "arguments"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (args && buf_adds(&c->args, args))
            buf_init(&c->args, ARGS_MAX);
        if (!t->canceled && t->sink.tool_call)
            t->sink.tool_call(t->ud, (size_t)(c - t->s->calls), is_new ? c->id : NULL,
                              is_new ? c->name : NULL, buf_str(&c->args), c->args.len);
        free(args);
    }
}

static void on_assistant_message(struct turn *t, const json_t *data)
{
    const char *mid = json_string_value(json_object_get(data, "messageId"));
    const char *content = json_string_value(json_object_get(data, "content"));
    const char *rtext = json_string_value(json_object_get(data, "reasoningText"));

    if (mid)
        on_message_start(t, mid);
    if (t->phase == TP_DONE)
        return;
    /* Without deltas (a provider that does not stream) the text arrives here. */
    if (rtext && !t->got_reasoning_delta && !t->reasoning.len)
        emit_reasoning(t, rtext, strlen(rtext));
    if (content && t->msg_sent == 0)
        emit_text(t, content, strlen(content));
    on_tool_requests(t, json_object_get(data, "toolRequests"));
    t->msg_done = 1;
}

/* The turn is over for the client once every call of the message is either
 * waiting for the client or was answered by the runtime itself. */
static void check_parked(struct turn *t)
{
    struct sess *s = t->s;
    size_t waiting = 0;

    if (!t->msg_done || !s->ncalls)
        return;
    for (size_t i = 0; i < s->ncalls; i++) {
        if (s->calls[i].request_id)
            waiting++;
        else if (!s->calls[i].runtime_done)
            return;
    }
    if (waiting)
        turn_finish(t);
}

static void on_tool_event(struct turn *t, const char *type, const json_t *d)
{
    const char *id = json_string_value(json_object_get(d, "toolCallId"));
    struct sess *s = t->s;

    for (size_t i = 0; id && i < s->ncalls; i++) {
        struct pcall *c = &s->calls[i];
        if (strcmp(c->id, id) != 0)
            continue;
        if (strcmp(type, "external_tool.requested") == 0) {
            free(c->request_id);
            c->request_id = xstrdup(json_string_value(json_object_get(d, "requestId")));
        } else if (!c->request_id) {
            c->runtime_done = 1; /* tool.execution_complete without asking us */
        }
    }
    check_parked(t);
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

static void turn_event(struct turn *t, const char *type, const json_t *data)
{
    const char *s;

    if (strcmp(type, "assistant.message_delta") == 0) {
        s = json_string_value(json_object_get(data, "messageId"));
        if (s)
            on_message_start(t, s);
        s = json_string_value(json_object_get(data, "deltaContent"));
        if (s && t->phase != TP_DONE)
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
    } else if (strcmp(type, "assistant.tool_call_delta") == 0) {
        on_tool_call_delta(t, data);
    } else if (strcmp(type, "assistant.message") == 0) {
        on_assistant_message(t, data);
        check_parked(t);
    } else if (strcmp(type, "external_tool.requested") == 0 ||
               strcmp(type, "tool.execution_complete") == 0) {
        on_tool_event(t, type, data);
    } else if (strcmp(type, "assistant.usage") == 0) {
        on_usage(t, data);
    } else if (strcmp(type, "model.turn_retry") == 0 || strcmp(type, "assistant.turn_retry") == 0) {
        t->retry_pending = 1;
    } else if (strcmp(type, "session.error") == 0) {
        struct gw_err err;
        const char *etype = json_string_value(json_object_get(data, "errorType"));
        errmap_session_error(data, t->b->provider_url != NULL, &err);
        log_turn_err(t, "session.error", &err);
        turn_fail(t, &err);
        /* The runtime retries a failed write of its session files with a growing backoff and
         * sends no session.idle meanwhile (errmap.h): end the turn now; closing the session
         * aborts and deletes it. */
        if (etype && strcmp(etype, "persistence") == 0)
            turn_finish(t);
    } else if (strcmp(type, "session.idle") == 0) {
        t->s->running = 0;
        turn_finish(t);
    }
}

static int open_new(struct turn *t, struct rtp *p, struct gw_err *err);

/* Waits, in arrival order, for a process to become ready: see wake_waiting()
 * and turn_deadline().  The list is short: only turns whose runtime died. */
static void wait_add(struct turn *t)
{
    struct broker *b = t->b;
    struct turn **pp = &b->waiting, *prev = NULL;

    log_msg(LOG_INFO, "broker", "req=%s no runtime is ready: waiting for one", t->rid);
    while (*pp) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    t->waiting = 1;
    t->wprev = prev;
    t->wnext = NULL;
    *pp = t;
}

/* Opens the turn's next session on a ready process, or once one is ready. */
static void turn_reopen(struct turn *t)
{
    struct rtp *p = pick(t->b);
    struct gw_err err;

    if (!p) {
        wait_add(t);
        return;
    }
    if (open_new(t, p, &err)) {
        turn_fail(t, &err);
        turn_finish(t);
    }
}

/*
 * Whether what the turn produced so far reached the client.  A stream's
 * deltas go out as they come; a non-streamed reply is built from the
 * turn_result once the turn ends (see http/routes.c), so its deltas are
 * only in the turn's buffers, which a retry empties.
 */
static int turn_output_out(const struct turn *t)
{
    return t->emitted && t->conv->stream;
}

/*
 * The session's runtime died before any output of the turn reached the
 * client, so the turn moves to a new session (at most TURN_MAX_RETRIES
 * times) seeded with the exact history: on another process when the pool has
 * a ready one, else on the first to become ready, within the turn's deadline.
 * After output has reached the client it cannot be retracted, and the turn
 * fails instead.
 */
static int turn_retry_elsewhere(struct turn *t)
{
    struct sess *old = t->s;

    if (t->retried >= TURN_MAX_RETRIES || turn_output_out(t) || t->warmup || t->canceled ||
        !old || t->call)
        return 0;
    t->retried++;
    if (t->kicked) { /* a deferred call failure of the old session is moot now */
        struct timeval tv = {t->b->cfg.turn_timeout_ms / 1000,
                             (t->b->cfg.turn_timeout_ms % 1000) * 1000};
        t->kicked = 0;
        evtimer_add(t->deadline, &tv);
    }
    log_msg(LOG_WARN, "broker", "req=%s session=%s its runtime exited before the answer reached "
            "the client: retrying on a new session", t->rid, old->sid);
    old->turn = NULL;
    t->s = NULL;
    sess_close(old, "its runtime exited");
    buf_reset(&t->text);
    buf_reset(&t->reasoning);
    memset(&t->usage, 0, sizeof(t->usage));
    t->msg_id[0] = t->last_finish[0] = '\0';
    t->msg_start = t->msg_sent = 0;
    t->msg_done = t->retry_pending = t->got_reasoning_delta = 0;
    t->resuming = 0;
    t->answer_next = 0;
    t->answered_all = 0;
    t->emitted = 0;
    t->phase = TP_SETUP;
    turn_reopen(t);
    return 1;
}

static void on_sess_event(void *ud, const char *type, const json_t *ev)
{
    struct sess *s = ud;
    struct turn *t = s->turn;

    if (json_object_get(ev, "agentId"))
        return; /* sub-agent events are not part of the answer */
    if (strcmp(type, "session.idle") == 0)
        s->running = 0;
    if (!t || t->phase == TP_DONE)
        return;
    turn_event(t, type, json_object_get(ev, "data"));
}

static void on_sess_lost(void *ud, const struct gw_err *err)
{
    struct sess *s = ud;
    struct turn *t = s->turn;

    s->watching = 0;
    s->running = 0;
    if (t && t->phase != TP_DONE && turn_retry_elsewhere(t))
        return;
    if (t && t->phase != TP_DONE) {
        struct gw_err e;
        gw_err_set(&e, GW_ERUNTIME,
                   "the Copilot runtime exited during the request; it is being restarted, "
                   "please retry");
        turn_fail(t, &e);
        turn_finish(t); /* a failed turn closes its session */
        return;
    }
    if (s->state == SS_IDLE && s->persisted) {
        /* Dormant: its files and row stay, so its next request resumes it. */
        log_msg(LOG_DEBUG, "broker", "session=%s dormant: the runtime exited", s->sid);
        sess_free(s);
        return;
    }
    sess_close(s, "the runtime exited");
}

/* ---- running a turn ------------------------------------------------------------------ */

static void on_sent(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    if (turn_zombie(t, err, 0))
        return;
    if (err && err->code == GW_ERUNTIME && turn_retry_elsewhere(t))
        return;
    if (err) {
        turn_fail_call(t, "run", err);
        turn_finish(t);
        return;
    }
    t->phase = TP_RUNNING;
}

/*
 * Sends a call of the turn.  If the runtime refuses it at once (it has just
 * gone away), the failure is reported from the next loop iteration, through
 * the turn's own deadline event: this may run inside broker_turn_start(),
 * which must not call the sink, and a cancel in between frees the event.
 */
static int call_or_fail(struct turn *t, const char *method, json_t *params, rt_reply_cb cb)
{
    struct timeval now = {0, 0};

    if (rt_call(t->s->p->rt, method, params, 0, cb, t, &t->call) == 0)
        return 0;
    gw_err_set(&t->kick_err, GW_ERUNTIME, "the Copilot runtime is not available");
    t->kicked = 1;
    evtimer_add(t->deadline, &now);
    return -1;
}

/* Delivers the conversation's trailing user message(s), or runs a turn over
 * the history as it stands (sendMessages []) when it ends otherwise. */
static void send_turn(struct turn *t, size_t first_new)
{
    const struct conv *c = t->conv;
    json_t *params = json_pack("{s:s}", "sessionId", t->s->sid);
    const char *method = "session.send";

    if (first_new + 1 == c->nmsgs && c->msgs[first_new].role == CONV_USER) {
        const struct conv_msg *last = &c->msgs[first_new];
        char *text = conv_msg_text(last);
        json_t *att = seed_attachments(last);
        json_object_set_new(params, "prompt", json_string(text));
        if (att)
            json_object_set_new(params, "attachments", att);
        free(text);
    } else {
        json_t *items = json_array();
        for (size_t i = first_new; i < c->nmsgs; i++) {
            char *text = conv_msg_text(&c->msgs[i]);
            json_array_append_new(items, json_pack("{s:s}", "prompt", text));
            free(text);
        }
        method = "session.sendMessages";
        json_object_set_new(params, "messages", items);
    }
    if (c->response_format)
        json_object_set_new(params, "responseFormat",
                            json_pack("{s:s, s:O}", "type", "json_schema", "jsonSchema",
                                      c->response_format));
    if (t->rid[0])
        json_object_set_new(params, "requestHeaders", json_pack("{s:s}", "X-Request-Id", t->rid));
    t->phase = TP_SENDING;
    t->s->running = 1;
    call_or_fail(t, method, params, on_sent);
}

/* Answers the parked session's pending calls one by one, in call order. */
static void answer_next(struct turn *t);

static void on_answered(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    if (turn_zombie(t, err, 0))
        return;
    if (err && err->code == GW_ERUNTIME && turn_retry_elsewhere(t))
        return;
    if (err || !json_is_true(json_object_get(result, "success"))) {
        struct gw_err e;
        if (!err)
            gw_err_set(&e, GW_EUPSTREAM, "runtime: the tool call was no longer pending");
        turn_fail_call(t, "answer the tool calls of", err ? err : &e);
        turn_finish(t);
        return;
    }
    answer_next(t);
}

static const struct conv_msg *tool_result_for(const struct conv *c, const char *id)
{
    for (size_t i = c->nmsgs; i-- > 0 && c->msgs[i].role == CONV_TOOL;)
        if (c->msgs[i].tool_call_id && strcmp(c->msgs[i].tool_call_id, id) == 0)
            return &c->msgs[i];
    return NULL;
}

/*
 * Once the last result is out, the runtime goes on at once: the next model
 * message can arrive before the reply to handlePendingToolCall does.  The
 * answered calls are forgotten when that result is sent, so that they are
 * not taken for calls of the new message (which would end the turn early
 * with the old calls).
 */
static void answer_next(struct turn *t)
{
    struct sess *s = t->s;
    size_t last;

    if (t->answered_all) {
        t->phase = TP_RUNNING;
        return;
    }
    while (t->answer_next < s->ncalls && s->calls[t->answer_next].runtime_done)
        t->answer_next++;
    if (t->answer_next >= s->ncalls) {
        pcalls_clear(s);
        t->answered_all = 1;
        t->phase = TP_RUNNING;
        return;
    }
    struct pcall *pc = &s->calls[t->answer_next++];
    const struct conv_msg *m = tool_result_for(t->conv, pc->id);
    char *text = conv_msg_text(m);
    /* The object form: an error result's text reaches the model verbatim
     * (the `error` form would replace it; protocol reference §5.4). */
    json_t *params = json_pack("{s:s, s:s, s:{s:s, s:s}}", "sessionId", s->sid, "requestId",
                               pc->request_id, "result", "textResultForLlm", text, "resultType",
                               m->is_error ? "failure" : "success");
    free(text);
    for (last = t->answer_next; last < s->ncalls && s->calls[last].runtime_done; last++)
        ;
    if (last >= s->ncalls) {
        pcalls_clear(s);
        t->answered_all = 1;
    }
    call_or_fail(t, "session.tools.handlePendingToolCall", params, on_answered);
}


/* A dormant session could not be resumed (files gone or unreadable): the
 * request is served by a new session seeded with its exact history. */
static void reseed_after_failed_resume(struct turn *t, const struct gw_err *why)
{
    struct sess *old = t->s;
    struct gw_err err;

    log_msg(LOG_WARN, "broker", "req=%s session=%s cannot resume it (%s): reseeding", t->rid,
            old->sid, why->msg);
    old->turn = NULL;
    t->s = NULL;
    t->resuming = 0;
    sess_close(old, "resume failed");
    if (open_new(t, NULL, &err)) {
        turn_fail(t, &err);
        turn_finish(t);
    }
}

static void on_opened(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;

    if (turn_zombie(t, err, 1))
        return;
    if (!err)
        t->s->created = 1;
    if (err && t->resuming) {
        reseed_after_failed_resume(t, err);
        return;
    }
    if (err && err->code == GW_ERUNTIME && turn_retry_elsewhere(t))
        return;
    if (err) {
        turn_fail_call(t, "open", err);
        turn_finish(t);
        return;
    }
    send_turn(t, t->first_new);
}

static struct turn *turn_new(struct broker *b, struct conv *conv, const struct turn_sink *sink,
                             void *ud, const char *rid)
{
    struct turn *t = xcalloc(1, sizeof(*t));
    struct timeval tv = {b->cfg.turn_timeout_ms / 1000, (b->cfg.turn_timeout_ms % 1000) * 1000};

    t->b = b;
    t->conv = conv;
    if (sink)
        t->sink = *sink;
    t->ud = ud;
    snprintf(t->rid, sizeof(t->rid), "%s", rid ? rid : "");
    buf_init(&t->text, TEXT_MAX);
    buf_init(&t->reasoning, TEXT_MAX);
    t->deadline = evtimer_new(b->base, turn_deadline, t);
    evtimer_add(t->deadline, &tv);
    b->st.turns_active++;
    return t;
}

static void attach(struct turn *t, struct sess *s)
{
    unpersist(s); /* its history is about to change: not resumable until idle again */
    t->s = s;
    s->turn = t;
    if (s->timer)
        event_del(s->timer);
    set_state(s, SS_BUSY);
    s->last_used_ms = util_now_ms();
}

/* A new session: create for a fresh conversation, seed + resume when there
 * is history before the message to send. */
static int open_new(struct turn *t, struct rtp *p, struct gw_err *err)
{
    struct broker *b = t->b;
    const struct conv *c = t->conv;
    size_t nhist = c->nmsgs;
    const char *method = "session.create";
    struct sess *s;

    if (!p)
        p = pick(b);
    if (!p)
        return gw_err_set(err, GW_ERUNTIME, "no Copilot runtime is ready; retry shortly");
    evict_for_new(b);
    s = sess_new(p, NULL, c->pin, c->model);
    s->root = t->root;
    attach(t, s);
    if (nhist && c->msgs[nhist - 1].role == CONV_USER)
        nhist--;
    t->first_new = nhist;
    if (nhist) {
        if (seed_write(b->home, s->sid, c, nhist, b->workdir, err)) {
            if (err->code == GW_EIO)
                (void)broker_can_write(b, err); /* a low disk says so, as a 507 */
            return err->code;
        }
        method = "session.resume";
    }
    if (rt_watch(p->rt, s->sid, &sess_watch_ops, s)) {
        seed_remove(b->home, s->sid);
        return gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not available");
    }
    s->watching = 1;
    if (rt_call(p->rt, method, session_params(b, t), 0, on_opened, t, &t->call)) {
        seed_remove(b->home, s->sid);
        return gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not available");
    }
    if (!t->warmup) {
        b->st.sessions_created++;
        if (nhist)
            b->st.sessions_seeded++;
    }
    return GW_OK;
}

static struct sess *sess_by_sid(struct broker *b, const char *sid)
{
    for (struct sess *s = b->sessions; s; s = s->next)
        if (strcmp(s->sid, sid) == 0)
            return s;
    return NULL;
}

/* Brings back a dormant session recorded in the store (the runtime or the
 * gateway restarted since its last turn) with session.resume. */
static int resume_dormant(struct turn *t, const struct hash *h, size_t first_new)
{
    struct broker *b = t->b;
    struct store_session row;
    struct gw_err err;
    char hex[2 * HASH_LEN + 1];
    struct sess *s;
    struct rtp *p;
    int rc;

    if (!b->store)
        return 0;
    hash_hex(h, hex);
    rc = store_find(b->store, hex, t->conv->pin, &row, &err);
    if (rc <= 0 || sess_by_sid(b, row.sid)) {
        store_session_release(&row);
        return 0;
    }
    p = pick(b);
    if (!p) {
        store_session_release(&row);
        return 0;
    }
    evict_for_new(b);
    s = sess_new(p, row.sid, t->conv->pin, t->conv->model);
    s->root = t->root;
    store_session_release(&row);
    s->persisted = 1;
    attach(t, s);
    t->resuming = 1;
    t->first_new = first_new;
    t->phase = TP_SETUP;
    if (rt_watch(p->rt, s->sid, &sess_watch_ops, s) == 0) {
        s->watching = 1;
        if (rt_call(p->rt, "session.resume", session_params(b, t), 0, on_opened, t, &t->call) ==
            0) {
            b->st.sessions_resumed++;
            log_msg(LOG_DEBUG, "broker", "req=%s session=%s resuming a dormant session", t->rid,
                    s->sid);
            return 1;
        }
    }
    /* The runtime is unavailable: let the caller's new-session path report it. */
    s->turn = NULL;
    t->s = NULL;
    t->resuming = 0;
    sess_close(s, "cannot resume");
    return 0;
}

/*
 * Tries to continue a live session.  Returns 1 if the turn was attached to
 * one, 0 if a new session is needed, or -1 with err set (results for only
 * some of a parked session's calls).
 */
static int reuse(struct turn *t, const struct hash *chain, struct gw_err *err)
{
    struct broker *b = t->b;
    const struct conv *c = t->conv;
    size_t n = c->nmsgs, k = n, j = n;
    struct sess *s;

    while (k > 0 && c->msgs[k - 1].role == CONV_TOOL)
        k--;
    while (j > 0 && c->msgs[j - 1].role == CONV_USER)
        j--;
    if (k < n && k > 0) {
        s = sess_find(b, &chain[k], SS_PARKED, c->pin);
        if (!s)
            return 0;
        for (size_t i = 0; i < s->ncalls; i++) {
            if (s->calls[i].runtime_done || tool_result_for(c, s->calls[i].id))
                continue;
            gw_err_param(err, GW_EINVAL, "messages",
                         "the assistant's tool calls must each be followed by a tool message "
                         "answering it: no result for tool_call_id '%.64s'",
                         s->calls[i].id);
            return -1;
        }
        attach(t, s);
        t->phase = TP_SENDING;
        b->st.sessions_reused++;
        answer_next(t);
        return 1;
    }
    if (j < n && j > 0) {
        s = sess_find(b, &chain[j], SS_IDLE, c->pin);
        if (!s)
            return resume_dormant(t, &chain[j], j);
        for (size_t i = j; i < n; i++)
            if (n - j > 1 && conv_msg_has_image(&c->msgs[i]))
                return 0; /* several new user messages with images: seed instead */
        attach(t, s);
        b->st.sessions_reused++;
        send_turn(t, j);
        return 1;
    }
    return 0;
}

struct turn *broker_turn_start(struct broker *b, struct conv *conv, const struct turn_req *req,
                               const struct turn_sink *sink, void *ud, struct gw_err *err)
{
    const char *request_id = req->request_id;
    const char *why;
    struct hash *chain;
    struct turn *t;
    int rc;

    if (!broker_ready(b, &why)) {
        conv_free(conv);
        if (b->auth_known && !b->signed_in && !b->provider_url)
            gw_err_set(err, GW_EAUTH, "%s", errmap_signin_msg);
        else
            gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not ready (%s); retry shortly",
                       why);
        if (err && err->code == GW_ERUNTIME)
            err->retry_after = RETRY_AFTER_NOT_READY_S;
        return NULL;
    }
    if (!broker_can_write(b, err)) {
        conv_free(conv);
        return NULL;
    }
    chain = hash_chain(conv);
    t = turn_new(b, conv, sink, ud, request_id);
    t->base = chain[conv->nmsgs];
    t->root = chain[0];
    rc = reuse(t, chain, err);
    free(chain);
    if (rc == 0) {
        unpin(b, conv->pin, &t->root, NULL);
        rc = open_new(t, NULL, err) ? -1 : 1;
    }
    if (rc < 0) {
        t->canceled = 1;
        t->phase = TP_DONE;
        if (t->s)
            sess_after_turn(t, TURN_STOP);
        turn_free(t);
        return NULL;
    }
    log_msg(LOG_DEBUG, "broker", "req=%s session=%s turn started (%zu messages)", t->rid,
            t->s->sid, conv->nmsgs);
    return t;
}

void broker_turn_cancel(struct turn *t)
{
    if (!t || t->canceled)
        return;
    log_msg(LOG_INFO, "broker", "req=%s session=%s client went away: aborting the turn", t->rid,
            t->s ? t->s->sid : "-");
    t->canceled = 1;
    turn_finish(t);
}

/* ---- the runtime pool: placement, warm-up, sign-in, recycling ---------------------- */

static int rtp_usable(const struct rtp *p)
{
    return rt_usable(p->rt) && !p->draining;
}

/* The least loaded ready process, or NULL. */
static struct rtp *pick(struct broker *b)
{
    struct rtp *best = NULL;
    for (int i = 0; i < b->npool; i++) {
        struct rtp *p = &b->pool[i];
        if (rtp_usable(p) && (!best || p->nsess < best->nsess))
            best = p;
    }
    return best;
}

static void on_recycled(void *ud)
{
    struct rtp *p = ud;
    p->draining = 0;
    p->opened = 0;
    p->recycled++;
    if (rt_start(p->rt))
        log_msg(LOG_ERROR, "broker", "runtime %d: cannot restart it after recycling", p->idx);
}

static void on_detached(void *ud, const json_t *result, const struct gw_err *err)
{
    struct sess *s = ud;
    s->call = 0;
    sess_free(s); /* dormant: its files and row stay; any process can resume it */
}

/* A draining process hands its idle sessions over: detached, they become
 * dormant and their next request resumes them on another process.  Once it
 * holds no session it is restarted. */
static void maybe_recycle(struct rtp *p)
{
    struct broker *b = p->b;

    if (!p->draining || p->in_recycle || rt_state(p->rt) != RT_READY)
        return;
    p->in_recycle = 1; /* closing a session frees it, which calls us again */
    for (struct sess *s = b->sessions, *n; s; s = n) {
        n = s->next;
        if (s->p != p || s->state != SS_IDLE || s->call)
            continue;
        if (!s->persisted) {
            sess_close(s, "its runtime is being recycled");
            continue;
        }
        b->st.sessions_live--;
        set_state(s, SS_CLOSING);
        if (s->timer)
            event_del(s->timer);
        if (rt_call(p->rt, "session.detach", json_pack("{s:s}", "sessionId", s->sid),
                    CLOSE_TIMEOUT_MS, on_detached, s, &s->call))
            sess_free(s);
    }
    p->in_recycle = 0;
    if (p->nsess == 0 && rt_state(p->rt) == RT_READY) {
        log_msg(LOG_INFO, "broker", "runtime %d (pid %d) drained: restarting it", p->idx,
                rt_pid(p->rt));
        rt_stop(p->rt, on_recycled, p);
    }
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

/* Marks a process for recycling past its session or memory budget; the
 * last ready process is never drained. */
static void check_budget(struct rtp *p)
{
    struct broker *b = p->b;
    long kb;
    int others = 0;

    if (p->draining) {
        maybe_recycle(p);
        return;
    }
    if (rt_state(p->rt) != RT_READY)
        return;
    for (int i = 0; i < b->npool; i++)
        others += &b->pool[i] != p && rtp_usable(&b->pool[i]);
    kb = rss_kb(rt_pid(p->rt));
    if ((b->cfg.recycle_sessions > 0 && p->opened >= (uint64_t)b->cfg.recycle_sessions) ||
        (b->cfg.recycle_mb > 0 && kb > (long)b->cfg.recycle_mb * 1024)) {
        if (!others)
            return; /* never drain the last process that can serve: wait for another */
        log_msg(LOG_INFO, "broker", "runtime %d (pid %d): %llu sessions, %ld MB: recycling it",
                p->idx, rt_pid(p->rt), (unsigned long long)p->opened, kb / 1024);
        p->draining = 1;
        maybe_recycle(p);
    }
}

static void recycle_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    for (int i = 0; i < b->npool; i++)
        check_budget(&b->pool[i]);
}

/* A process became ready: turns waiting for one (see turn_reopen) go on. */
static void wake_waiting(struct broker *b)
{
    while (b->waiting && pick(b)) {
        struct turn *t = b->waiting;
        wait_del(t);
        log_msg(LOG_INFO, "broker", "req=%s a runtime is ready: retrying", t->rid);
        turn_reopen(t);
    }
}

/* Fails the waiting turns when no process of the pool can come back. */
static void fail_waiting(struct broker *b)
{
    struct gw_err err;

    for (int i = 0; i < b->npool; i++)
        if (rt_state(b->pool[i].rt) != RT_STOPPED)
            return;
    while (b->waiting) {
        struct turn *t = b->waiting;
        wait_del(t);
        gw_err_set(&err, GW_ERUNTIME, "the Copilot runtime stopped and is not coming back");
        turn_fail(t, &err);
        turn_finish(t);
    }
}

static void warmup_done(struct rtp *p, int ok)
{
    if (rt_state(p->rt) != RT_WARMING)
        return; /* the process went away during its warm-up */
    if (!ok)
        log_msg(LOG_WARN, "broker", "runtime %d: warm-up turn failed; serving anyway", p->idx);
    else
        log_msg(LOG_INFO, "broker", "runtime %d warmed up", p->idx);
    rt_set_ready(p->rt);
    wake_waiting(p->b);
}

static void start_warmup(struct rtp *p)
{
    struct broker *b = p->b;
    struct conv *c = conv_new();
    struct conv_msg *m;
    struct gw_err err;
    struct turn *t;
    struct timeval tv = {WARMUP_TIMEOUT_MS / 1000, 0};

    c->model = xstrdup("warmup");
    c->system = xstrdup("warm-up");
    m = conv_add_msg(c, CONV_USER);
    conv_msg_add_text(m, "warm-up", 7);
    t = turn_new(b, c, NULL, NULL, "warmup");
    t->warmup = 1;
    t->canceled = 1;
    evtimer_add(t->deadline, &tv);
    if (open_new(t, p, &err)) {
        t->failed = 1;
        warmup_done(p, 0);
        turn_finish(t);
    }
}

static void on_auth(void *ud, const json_t *result, const struct gw_err *err)
{
    struct broker *b = ud;
    int was = b->signed_in;
    const char *login;

    if (err)
        return;
    b->auth_known = 1;
    b->signed_in = json_is_true(json_object_get(result, "isAuthenticated"));
    login = json_string_value(json_object_get(result, "login"));
    snprintf(b->auth_login, sizeof(b->auth_login), "%s", login ? login : "");
    if (b->signed_in && !was) {
        log_msg(LOG_INFO, "broker", "signed in to GitHub%s%s", b->auth_login[0] ? " as " : "",
                b->auth_login);
        b->auth_warned = 0;
    } else if (!b->signed_in && !b->provider_url && !b->auth_warned) {
        log_msg(LOG_WARN, "broker", "%s", errmap_signin_msg); /* once, not every poll */
        b->auth_warned = 1;
    }
}

/* Sign-in lives in the shared home: any connected process can tell. */
static void check_auth(struct broker *b)
{
    uint64_t id;
    for (int i = 0; i < b->npool; i++) {
        struct rt *rt = b->pool[i].rt;
        if (rt_state(rt) < RT_WARMING || rt_state(rt) > RT_READY)
            continue;
        if (rt_call(rt, "auth.getStatus", json_object(), 10000, on_auth, b, &id) == 0)
            return;
    }
}

static void auth_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    if (!b->signed_in && !b->provider_url)
        check_auth(b);
}

static void on_rt_up(struct rt *rt, void *ud)
{
    struct rtp *p = ud;
    log_msg(LOG_INFO, "broker", "runtime %d: %s connected (pid %d)", p->idx, rt_version(rt),
            rt_pid(rt));
    check_auth(p->b);
    start_warmup(p);
}

static void on_rt_down(struct rt *rt, void *ud, const char *why)
{
    struct rtp *p = ud;
    log_msg(LOG_WARN, "broker", "runtime %d down: %s", p->idx, why);
    fail_waiting(p->b);
}

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg)
{
    struct broker *b = xcalloc(1, sizeof(*b));
    struct timeval tv = {AUTH_POLL_MS / 1000, 0}, rtv = {RECYCLE_CHECK_S, 0};

    b->base = base;
    b->cfg = *cfg;
    b->provider_url = xstrdup(cfg->provider.url && *cfg->provider.url ? cfg->provider.url : NULL);
    b->provider_key = xstrdup(cfg->provider.key);
    b->provider_type = xstrdup(cfg->provider.type ? cfg->provider.type : "openai");
    b->warmup_url = xstrdup(cfg->warmup_url);
    b->warmup_key = xstrdup(cfg->warmup_key);
    b->workdir = xstrdup(cfg->workdir);
    b->home = xstrdup(cfg->rt.home);
    if (b->cfg.turn_timeout_ms <= 0)
        b->cfg.turn_timeout_ms = 600000;
    if (b->cfg.tool_timeout_s <= 0)
        b->cfg.tool_timeout_s = 600;
    if (b->cfg.session_idle_s <= 0)
        b->cfg.session_idle_s = 1800;
    if (b->cfg.max_sessions <= 0)
        b->cfg.max_sessions = 1000;
    b->npool = b->cfg.pool_size > 0 ? b->cfg.pool_size : 1;
    b->pool = xcalloc((size_t)b->npool, sizeof(*b->pool));
    for (int i = 0; i < b->npool; i++) {
        struct rt_config rc = b->cfg.rt;
        b->pool[i].b = b;
        b->pool[i].idx = i;
        rc.on_up = on_rt_up;
        rc.on_down = on_rt_down;
        rc.ud = &b->pool[i];
        rc.ping_interval_ms = b->cfg.ping_interval_ms;
        rc.ping_timeout_ms = b->cfg.ping_timeout_ms;
        rc.cwd = b->workdir;
        b->pool[i].rt = rt_new(base, &rc);
    }
    b->store = cfg->store;
    b->auth_timer = event_new(base, -1, EV_PERSIST, auth_tick, b);
    event_add(b->auth_timer, &tv);
    b->recycle_timer = event_new(base, -1, EV_PERSIST, recycle_tick, b);
    event_add(b->recycle_timer, &rtv);
    return b;
}

/* Start-up sweep: rows that expired or lost their files go, and so do
 * session directories no row accounts for (sessions of a gateway that was
 * killed, or that were never recorded). */
struct sweep {
    struct broker *b;
    char **keep;
    size_t nkeep;
    int64_t cutoff;
};

static int sweep_row(void *ud, const struct store_session *ss)
{
    struct sweep *w = ud;
    char path[PATH_MAX];
    struct gw_err err;

    snprintf(path, sizeof(path), "%s/session-state/%s/events.jsonl", w->b->home, ss->sid);
    if (ss->last_used < w->cutoff || access(path, R_OK) != 0) {
        if (store_delete(w->b->store, ss->sid, &err))
            log_msg(LOG_WARN, "broker", "session map: %s", err.msg);
        seed_remove(w->b->home, ss->sid);
        return 0;
    }
    w->keep = xrealloc(w->keep, (w->nkeep + 1) * sizeof(char *));
    w->keep[w->nkeep++] = xstrdup(ss->sid);
    return 0;
}

static void sweep(struct broker *b)
{
    struct sweep w = {b, NULL, 0,
                      (int64_t)time(NULL) * 1000 - (int64_t)b->cfg.session_idle_s * 1000};
    char dir[PATH_MAX];
    struct gw_err err;
    struct dirent *de;
    DIR *d;
    size_t removed = 0;

    if (b->store && store_each(b->store, sweep_row, &w, &err) < 0)
        log_msg(LOG_WARN, "broker", "session map: %s", err.msg);
    snprintf(dir, sizeof(dir), "%s/session-state", b->home);
    d = opendir(dir);
    while (d && (de = readdir(d)) != NULL) {
        size_t i;
        if (de->d_name[0] == '.')
            continue;
        for (i = 0; i < w.nkeep && strcmp(w.keep[i], de->d_name) != 0; i++)
            ;
        if (i == w.nkeep) {
            seed_remove(b->home, de->d_name);
            removed++;
        }
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < w.nkeep; i++)
        free(w.keep[i]);
    free(w.keep);
    log_msg(LOG_INFO, "broker", "%zu resumable session(s) kept, %zu stale session(s) removed",
            w.nkeep, removed);
}

int broker_start(struct broker *b)
{
    sweep(b);
    for (int i = 0; i < b->npool; i++)
        if (rt_start(b->pool[i].rt))
            return GW_ERUNTIME;
    return GW_OK;
}

struct stopping {
    int left;
    void (*done)(void *ud);
    void *ud;
};

static void one_stopped(void *ud)
{
    struct stopping *st = ud;
    if (--st->left > 0)
        return;
    void (*done)(void *) = st->done;
    void *dud = st->ud;
    free(st);
    done(dud);
}

void broker_stop(struct broker *b, void (*done)(void *ud), void *ud)
{
    struct stopping *st = xcalloc(1, sizeof(*st));
    st->left = b->npool;
    st->done = done;
    st->ud = ud;
    event_del(b->recycle_timer);
    for (int i = 0; i < b->npool; i++) {
        b->pool[i].draining = 0;
        rt_stop(b->pool[i].rt, one_stopped, st);
    }
}

void broker_free(struct broker *b)
{
    if (!b)
        return;
    while (b->sessions) {
        struct sess *s = b->sessions;
        if (s->turn) {
            s->turn->s = NULL;
            turn_free(s->turn);
        }
        s->call = 0;
        s->p->draining = 0;
        sess_free(s);
    }
    while (b->waiting)
        turn_free(b->waiting);
    for (int i = 0; i < b->npool; i++)
        rt_free(b->pool[i].rt);
    free(b->pool);
    event_free(b->auth_timer);
    event_free(b->recycle_timer);
    free(b->provider_url);
    free(b->provider_key);
    free(b->provider_type);
    free(b->warmup_url);
    free(b->warmup_key);
    free(b->workdir);
    free(b->home);
    free(b);
}

int broker_ready(const struct broker *b, const char **why)
{
    enum rt_state best = RT_STOPPED;
    const char *w = NULL;

    for (int i = 0; i < b->npool; i++) {
        enum rt_state s = rt_state(b->pool[i].rt);
        if (s == RT_READY && !rtp_usable(&b->pool[i]))
            s = b->pool[i].draining ? RT_STOPPING : RT_BACKOFF; /* or its child is going away */
        if (s == RT_READY || (best != RT_READY && s == RT_WARMING))
            best = s;
        else if (best == RT_STOPPED && s != RT_STOPPED)
            best = s;
    }
    if (best != RT_READY)
        w = best == RT_WARMING ? "runtime warming up" : best == RT_STOPPED ? "runtime stopped"
                                                    : best == RT_STOPPING ? "shutting down"
                                                    : best == RT_BACKOFF  ? "runtime restarting"
                                                                          : "runtime starting";
    else if (!b->provider_url && !b->signed_in)
        w = "not signed in to GitHub";
    if (why)
        *why = w ? w : "ready";
    return w == NULL;
}

/* Free MB on dir's file system for an unprivileged writer, or -1. */
static int64_t free_mb(const char *dir)
{
    struct statvfs v;

    if (!dir || statvfs(dir, &v) != 0)
        return -1;
    return (int64_t)((uint64_t)v.f_bavail * v.f_frsize / (1024 * 1024));
}

/* Reads the free space again once the last reading is DISK_CHECK_MS old, and judges it
 * against --min-free-mb (0: never low). */
static void disk_check(struct broker *b)
{
    int64_t min = b->cfg.min_free_mb;
    int was_low = b->disk.err.code != GW_OK;
    const char *which = NULL;
    int64_t mb = 0;
    uint64_t now = util_now_ms();

    if (b->disk.at_ms && now - b->disk.at_ms < DISK_CHECK_MS)
        return;
    b->disk.at_ms = now;
    b->disk.data_mb = free_mb(b->cfg.data_dir);
    b->disk.home_mb = free_mb(b->home);
    memset(&b->disk.err, 0, sizeof(b->disk.err));
    if (min <= 0)
        return;
    if (b->disk.data_mb >= 0 && b->disk.data_mb < min) {
        which = "data directory (--data)";
        mb = b->disk.data_mb;
    } else if (b->disk.home_mb >= 0 && b->disk.home_mb < min) {
        which = "runtime home (--home)";
        mb = b->disk.home_mb;
    }
    if (which)
        errmap_storage(&b->disk.err,
                       "the gateway is low on disk space: %lld MB free for its %s, below "
                       "--min-free-mb %lld; retry once space has been freed",
                       (long long)mb, which, (long long)min);
    if (which && !was_low)
        log_msg(LOG_WARN, "broker", "%s", b->disk.err.msg);
    else if (!which && was_low)
        log_msg(LOG_INFO, "broker", "disk space is back above --min-free-mb %lld", (long long)min);
}

int broker_can_write(struct broker *b, struct gw_err *err)
{
    if (b->cfg.min_free_mb <= 0)
        return 1;
    disk_check(b);
    if (b->disk.err.code == GW_OK)
        return 1;
    if (err)
        *err = b->disk.err;
    return 0;
}

void broker_disk_free(struct broker *b, int64_t *data_mb, int64_t *home_mb, int64_t *min_mb)
{
    disk_check(b);
    *data_mb = b->disk.data_mb;
    *home_mb = b->disk.home_mb;
    *min_mb = b->cfg.min_free_mb;
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
    for (int i = 0; i < b->npool; i++)
        if (rt_usable(b->pool[i].rt))
            return b->pool[i].rt;
    return b->pool[0].rt;
}

int broker_pool_size(const struct broker *b)
{
    return b->npool;
}

struct rt *broker_pool_rt(struct broker *b, int i, int *sessions, int *draining)
{
    if (sessions)
        *sessions = b->pool[i].nsess;
    if (draining)
        *draining = b->pool[i].draining;
    return b->pool[i].rt;
}

int broker_turns_active(const struct broker *b)
{
    return b->st.turns_active;
}

void broker_stats(const struct broker *b, struct broker_stats *out)
{
    *out = b->st;
    out->runtime_restarts = 0;
    for (int i = 0; i < b->npool; i++) {
        uint64_t g = rt_generation(b->pool[i].rt);
        out->runtime_restarts += g > 0 ? g - 1 : 0;
    }
}
