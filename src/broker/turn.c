/*
 * One turn: finds the session that holds the conversation (continue a live
 * one, answer a parked one's tool calls, resume a dormant one) or opens a
 * new one, sends, follows the session's events into the sink, and decides
 * what happens to the session afterwards.  A turn whose process died before
 * its output reached the client moves to a new session.
 */
#include "broker/broker_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/errmap.h"
#include "broker/seed.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

static void log_turn_err(const struct turn *t, const char *what, const struct gw_err *err)
{
    log_msg(LOG_WARN, "broker", "req=%s session=%s %s: %s", t->rid, t->s ? t->s->sid : "-",
            what, err->msg);
}

/* ---- turn lifecycle ----------------------------------------------------------------- */

/* A failed runtime call: the runtime's own text can name files under
 * --home, so the client gets a generic message and the log the details. */
static void turn_fail_call(struct turn *t, const char *what, const struct gw_err *err)
{
    struct gw_err e;

    log_turn_err(t, what, err);
    if (t->owner.github_token && errmap_is_token_failure(err->msg)) {
        errmap_user_token(&e, err->msg);
    } else if (errmap_no_space(err->msg)) {
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
    turn__fail(t, &e);
}

void turn__fail(struct turn *t, const struct gw_err *err)
{
    if (t->failed)
        return;
    t->failed = 1;
    t->err = *err;
}

/* Every phase change goes through here, so a turn's course can be read in the log. */
static void turn_set_phase(struct turn *t, enum turn_phase to)
{
    static const char *const names[] = {"setup",   "waiting", "lookup",
                                        "sending", "running", "done"};

    if (t->phase != to)
        log_msg(LOG_DEBUG, "broker", "req=%s turn %s -> %s", t->rid, names[t->phase], names[to]);
    t->phase = to;
}

/* Unlinks t from the list it is on (b->waiting or b->lookups) and leaves phase. */
static void list_del(struct turn **head, struct turn *t, enum turn_phase phase)
{
    if (t->phase != phase)
        return;
    if (t->wprev)
        t->wprev->wnext = t->wnext;
    else
        *head = t->wnext;
    if (t->wnext)
        t->wnext->wprev = t->wprev;
    t->wnext = t->wprev = NULL;
    turn_set_phase(t, TP_SETUP);
}

static void wait_del(struct turn *t)
{
    list_del(&t->b->waiting, t, TP_WAITING);
}

/* Takes the turn off b->lookups, dropping the store's answer if it has not come. */
static void lookup_del(struct turn *t)
{
    if (t->phase == TP_LOOKUP)
        sess__lookup_cancel(t);
    list_del(&t->b->lookups, t, TP_LOOKUP);
}

void turn__free(struct turn *t)
{
    struct broker *b = t->b;
    wait_del(t);
    lookup_del(t);
    if (t->s && t->s->turn == t)
        t->s->turn = NULL;
    b->st.turns_active--;
    if (t->deadline)
        event_free(t->deadline);
    buf_release(&t->text);
    buf_release(&t->reasoning);
    sess_owner_release(&t->owner);
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
    struct hash head;

    sess__touch(s, util_now_ms());
    if (t->failed || t->canceled || finish == TURN_LENGTH || s->state == SS_CLOSING) {
        /* The runtime's history no longer matches what the client saw: a
         * failed or cut user turn stays in it, or a hidden continuation.
         * A call of the turn still in flight keeps the turn attached, and
         * the close waits for it (see turn_zombie()). */
        if (!t->call) {
            s->turn = NULL;
            t->s = NULL;
        }
        sess__close(s, t->failed ? "the turn failed" : t->canceled ? "the client went away"
                                                                  : "the answer was truncated");
        return;
    }
    turn_head(t, &head);
    sess__set_head(s, &head);
    s->turn = NULL;
    t->s = NULL;
    if (finish == TURN_TOOL_CALLS) {
        sess__set_state(s, SS_PARKED);
        sess__arm_timer(s, b->cfg.tool_timeout_s);
    } else {
        sess__pcalls_clear(s);
        sess__set_state(s, SS_IDLE);
        s->running = 0;
        sess__arm_timer(s, b->cfg.session_idle_s);
        sess__persist(s);
        pool__maybe_recycle(s->p); /* a draining process hands it over now */
    }
}

/* Reports the outcome to the sink once. */
void turn__finish(struct turn *t)
{
    struct turn_result r;
    struct turn_tool_call *calls = NULL;
    struct sess *s = t->s;
    enum turn_finish finish = TURN_STOP;

    if (t->phase == TP_DONE)
        return;
    wait_del(t);
    lookup_del(t);
    turn_set_phase(t, TP_DONE);
    if (t->deadline)
        event_del(t->deadline);
    if (strcmp(t->last_finish, "length") == 0)
        finish = TURN_LENGTH;
    if (!t->failed && s && s->state == SS_BUSY && s->ncalls)
        finish = TURN_TOOL_CALLS;
    if (t->warmup) {
        if (s)
            pool__warmup_done(s->p, !t->failed);
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
    turn__free(t);
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
            sess__close_step(s);
    }
    turn__free(t);
    return 1;
}

static void turn_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct turn *t = arg;
    struct gw_err err;

    if (t->kicked) { /* see call_or_fail() */
        int64_t ms = turn__timeout_ms(t);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        t->kicked = 0;
        evtimer_add(t->deadline, &tv);
        if (t->kick_err.code == GW_ERUNTIME && turn__retry_elsewhere(t))
            return;
        turn__fail(t, &t->kick_err);
        turn__finish(t);
        return;
    }
    if (t->phase == TP_WAITING) {
        wait_del(t);
        gw_err_set(&err, GW_ERUNTIME,
                   "no Copilot runtime came back within %lld s after the one serving the "
                   "request exited; please retry",
                   (long long)(turn__timeout_ms(t) / 1000));
        err.retry_after = RETRY_AFTER_NOT_READY_S;
    } else {
        if (t->owner.profile->timeout_ms > 0)
            gw_err_set(&err, GW_ETIMEDOUT,
                       "the agent '%s' did not finish within %lld s (timeout-s); the request "
                       "was aborted",
                       t->owner.profile->id, (long long)(t->owner.profile->timeout_ms / 1000));
        else
            gw_err_set(&err, GW_ETIMEDOUT,
                       "the model did not finish within %lld s; the request was aborted",
                       (long long)(turn__timeout_ms(t) / 1000));
    }
    log_turn_err(t, "deadline", &err);
    turn__fail(t, &err);
    turn__finish(t);
}

/* ---- events --------------------------------------------------------------------------- */

static void emit_text(struct turn *t, const char *s, size_t n)
{
    if (!n)
        return;
    /* An agent's answer spans several assistant messages (text, its tools ran, more
     * text): a blank line between their texts.  It belongs to the new message, so a
     * retry of that message drops it too.  (The runtime's continuations after a
     * "length" finish are one text: no tool ran between them.) */
    if (t->after_tool && t->msg.sent == 0 && t->msg.start > 0 && t->msg.start == t->text.len) {
        t->after_tool = 0;
        if (buf_add(&t->text, "\n\n", 2) == 0) {
            t->msg.sent += 2;
            if (!t->canceled && t->sink.text)
                t->sink.text(t->ud, "\n\n", 2);
        }
    }
    if (buf_add(&t->text, s, n)) {
        struct gw_err err;
        gw_err_set(&err, GW_ETOOBIG, "the model's answer exceeded the gateway's size limit");
        turn__fail(t, &err);
        turn__finish(t);
        return;
    }
    t->msg.sent += n;
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
    if (strcmp(mid, t->msg.id) == 0)
        return;
    if (t->msg.id[0] && !t->msg.done && t->msg.retry_pending && (t->msg.sent || t->s->ncalls)) {
        if (t->conv->stream) {
            struct gw_err err;
            gw_err_set(&err, GW_EUPSTREAM,
                       "the model's answer was interrupted and retried after output had "
                       "started; please retry the request");
            turn__fail(t, &err);
            turn__finish(t);
            return;
        }
        t->text.len = t->msg.start;
        if (t->text.ptr)
            t->text.ptr[t->text.len] = '\0';
    }
    if (t->msg.done || t->msg.retry_pending)
        sess__pcalls_clear(t->s); /* the calls of an earlier message were answered or void */
    snprintf(t->msg.id, sizeof(t->msg.id), "%s", mid);
    t->msg.start = t->text.len;
    t->msg.sent = 0;
    t->msg.done = 0;
    t->msg.retry_pending = 0;
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

int turn__client_tool(const struct turn *t, const char *name)
{
    for (size_t i = 0; name && i < t->conv->ntools; i++)
        if (strcmp(t->conv->tools[i].name, name) == 0)
            return 1;
    return 0;
}

/*
 * Whether call id (named name on its first piece) is the client's: only calls
 * of tools the client declared go back to it.  The others are the runtime's
 * own (an agent's built-in or MCP tools, or a name the model made up, which
 * the runtime answers itself): the client never sees them.
 */
static int client_call(const struct turn *t, const char *id, const char *name)
{
    for (size_t i = 0; i < t->s->ncalls; i++)
        if (strcmp(t->s->calls[i].id, id) == 0)
            return 1;
    return turn__client_tool(t, name);
}

static void on_tool_call_delta(struct turn *t, const json_t *d)
{
    const char *id = json_string_value(json_object_get(d, "toolCallId"));
    const char *name = json_string_value(json_object_get(d, "toolName"));
    const char *delta = json_string_value(json_object_get(d, "inputDelta"));
    int is_new = 0;
    struct pcall *c;

    if (!id || !client_call(t, id, name))
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

        if (!id || !client_call(t, id, name))
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
    if (content && t->msg.sent == 0)
        emit_text(t, content, strlen(content));
    on_tool_requests(t, json_object_get(data, "toolRequests"));
    t->msg.done = 1;
}

/* The turn is over for the client once every call of the message is either
 * waiting for the client or was answered by the runtime itself. */
static void check_parked(struct turn *t)
{
    struct sess *s = t->s;
    size_t waiting = 0;

    if (!t->msg.done || !s->ncalls)
        return;
    for (size_t i = 0; i < s->ncalls; i++) {
        if (s->calls[i].request_id)
            waiting++;
        else if (!s->calls[i].runtime_done)
            return;
    }
    if (waiting)
        turn__finish(t);
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

/*
 * One model call's usage.  Its cost is there when the model's response carried
 * copilot_usage (CAPI does; a BYOK provider may): copilotUsage.totalNanoAiu, a number >= 0;
 * anything else is no cost at all.
 */
static void on_usage(struct turn *t, const json_t *d)
{
    const char *fin = json_string_value(json_object_get(d, "finishReason"));
    const json_t *nano = json_object_get(json_object_get(d, "copilotUsage"), "totalNanoAiu");

    if (json_is_number(nano) && isfinite(json_number_value(nano)) && json_number_value(nano) >= 0) {
        t->usage.nano_aiu += json_number_value(nano);
        t->usage.cost_reported = 1;
    }
    t->usage.input_tokens += json_integer_value(json_object_get(d, "inputTokens"));
    t->usage.output_tokens += json_integer_value(json_object_get(d, "outputTokens"));
    t->usage.reasoning_tokens += json_integer_value(json_object_get(d, "reasoningTokens"));
    t->usage.cache_read_tokens += json_integer_value(json_object_get(d, "cacheReadTokens"));
    t->usage.cache_write_tokens += json_integer_value(json_object_get(d, "cacheWriteTokens"));
    if (fin)
        snprintf(t->last_finish, sizeof(t->last_finish), "%s", fin);
}

void turn__event(struct turn *t, const char *type, const json_t *data)
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
        t->after_tool = 1;
        on_tool_event(t, type, data);
    } else if (strcmp(type, "assistant.usage") == 0) {
        on_usage(t, data);
    } else if (strcmp(type, "model.turn_retry") == 0 || strcmp(type, "assistant.turn_retry") == 0) {
        t->msg.retry_pending = 1;
    } else if (strcmp(type, "session.error") == 0) {
        struct gw_err err;
        const char *etype = json_string_value(json_object_get(data, "errorType"));
        errmap_session_error(data, t->b->provider_url != NULL, &err);
        if (t->owner.github_token && err.code == GW_EAUTH)
            errmap_user_token(&err, json_string_value(json_object_get(data, "message")));
        log_turn_err(t, "session.error", &err);
        turn__fail(t, &err);
        /* The runtime retries a failed write of its session files with a growing backoff and
         * sends no session.idle meanwhile (errmap.h): end the turn now; closing the session
         * aborts and deletes it. */
        if (etype && strcmp(etype, "persistence") == 0)
            turn__finish(t);
    } else if (strcmp(type, "session.idle") == 0) {
        t->s->running = 0;
        turn__finish(t);
    }
}

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
    turn_set_phase(t, TP_WAITING);
    t->wprev = prev;
    t->wnext = NULL;
    *pp = t;
}

/* Opens the turn's next session on a ready process, or once one is ready. */
static void turn_reopen(struct turn *t)
{
    struct rtp *p = pool__pick(t->b);
    struct gw_err err;

    if (!p) {
        wait_add(t);
        return;
    }
    if (turn__open_new(t, p, &err)) {
        turn__fail(t, &err);
        turn__finish(t);
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
int turn__retry_elsewhere(struct turn *t)
{
    struct sess *old = t->s;

    if (t->retried >= TURN_MAX_RETRIES || turn_output_out(t) || t->warmup || t->canceled ||
        !old || t->call)
        return 0;
    t->retried++;
    if (t->kicked) { /* a deferred call failure of the old session is moot now */
        int64_t ms = turn__timeout_ms(t);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        t->kicked = 0;
        evtimer_add(t->deadline, &tv);
    }
    log_msg(LOG_WARN, "broker", "req=%s session=%s its runtime exited before the answer reached "
            "the client: retrying on a new session", t->rid, old->sid);
    old->turn = NULL;
    t->s = NULL;
    sess__close(old, "its runtime exited");
    buf_reset(&t->text);
    buf_reset(&t->reasoning);
    memset(&t->usage, 0, sizeof(t->usage));
    memset(&t->msg, 0, sizeof(t->msg));
    t->last_finish[0] = '\0';
    t->got_reasoning_delta = 0;
    t->after_tool = 0;
    t->tool_calls = 0;
    t->open = TO_NEW;
    t->answer_next = 0;
    t->answered_all = 0;
    t->emitted = 0;
    turn_set_phase(t, TP_SETUP);
    turn_reopen(t);
    return 1;
}

/* ---- running a turn ------------------------------------------------------------------ */

static void on_sent(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;
    if (turn_zombie(t, err, 0))
        return;
    if (err && err->code == GW_ERUNTIME && turn__retry_elsewhere(t))
        return;
    if (err) {
        turn_fail_call(t, "run", err);
        turn__finish(t);
        return;
    }
    turn_set_phase(t, TP_RUNNING);
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
    turn_set_phase(t, TP_SENDING);
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
    if (err && err->code == GW_ERUNTIME && turn__retry_elsewhere(t))
        return;
    if (err || !json_is_true(json_object_get(result, "success"))) {
        struct gw_err e;
        if (!err)
            gw_err_set(&e, GW_EUPSTREAM, "runtime: the tool call was no longer pending");
        turn_fail_call(t, "answer the tool calls of", err ? err : &e);
        turn__finish(t);
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
        turn_set_phase(t, TP_RUNNING);
        return;
    }
    while (t->answer_next < s->ncalls && s->calls[t->answer_next].runtime_done)
        t->answer_next++;
    if (t->answer_next >= s->ncalls) {
        sess__pcalls_clear(s);
        t->answered_all = 1;
        turn_set_phase(t, TP_RUNNING);
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
        sess__pcalls_clear(s);
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
    t->open = TO_NEW;
    sess__close(old, "resume failed");
    if (turn__open_new(t, NULL, &err)) {
        turn__fail(t, &err);
        turn__finish(t);
    }
}

static void on_opened(void *ud, const json_t *result, const struct gw_err *err)
{
    struct turn *t = ud;

    if (turn_zombie(t, err, 1))
        return;
    if (!err)
        t->s->created = 1;
    if (err && t->open == TO_DORMANT &&
        !(t->owner.github_token && errmap_is_token_failure(err->msg))) {
        reseed_after_failed_resume(t, err);
        return;
    }
    if (err && err->code == GW_ERUNTIME && turn__retry_elsewhere(t))
        return;
    if (err) {
        turn_fail_call(t, "open", err);
        turn__finish(t);
        return;
    }
    send_turn(t, t->first_new);
}

struct turn *turn__new(struct broker *b, struct conv *conv, const struct turn_req *req,
                       const struct turn_sink *sink, void *ud)
{
    const char *rid = req ? req->request_id : "warmup";
    struct turn *t = xcalloc(1, sizeof(*t));
    struct timeval tv;
    int64_t ms;

    t->b = b;
    t->conv = conv;
    if (sink)
        t->sink = *sink;
    t->ud = ud;
    if (req)
        sess_owner_set(&t->owner, req->principal, req->profile, req->github_token);
    else
        sess_owner_set(&t->owner, "", &profile_pure_model, NULL);
    snprintf(t->rid, sizeof(t->rid), "%s", rid ? rid : "");
    buf_init(&t->text, TEXT_MAX);
    buf_init(&t->reasoning, TEXT_MAX);
    ms = turn__timeout_ms(t);
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    t->deadline = evtimer_new(b->base, turn_deadline, t);
    evtimer_add(t->deadline, &tv);
    b->st.turns_active++;
    return t;
}

static void attach(struct turn *t, struct sess *s)
{
    sess__unpersist(s); /* its history is about to change: not resumable until idle again */
    t->s = s;
    s->turn = t;
    if (s->timer)
        event_del(s->timer);
    sess__set_state(s, SS_BUSY);
    sess__touch(s, util_now_ms());
}

/* A new session: create for a fresh conversation, seed + resume when there
 * is history before the message to send. */
int turn__open_new(struct turn *t, struct rtp *p, struct gw_err *err)
{
    struct broker *b = t->b;
    const struct conv *c = t->conv;
    size_t nhist = c->nmsgs;
    const char *method = "session.create";
    struct sess *s;

    if (!p)
        p = pool__pick(b);
    if (!p)
        return gw_err_set(err, GW_ERUNTIME, "no Copilot runtime is ready; retry shortly");
    sess__evict_for_new(b, t->owner.profile);
    s = sess__new(p, NULL, c->pin, c->model, &t->owner, &t->root);
    attach(t, s);
    if (nhist && c->msgs[nhist - 1].role == CONV_USER)
        nhist--;
    t->first_new = nhist;
    if (nhist) {
        const char *cwd = t->owner.profile->workdir ? t->owner.profile->workdir : b->workdir;
        if (seed_write(b->home, s->sid, c, nhist, cwd, err)) {
            if (err->code == GW_EIO)
                (void)broker_can_write(b, err); /* a low disk says so, as a 507 */
            return err->code;
        }
        method = "session.resume";
    }
    if (sess__watch(s)) {
        seed_remove(b->home, s->sid);
        return gw_err_set(err, GW_ERUNTIME, "the Copilot runtime is not available");
    }
    if (rt_call(p->rt, method, sess__params(s, c, t->warmup), 0, on_opened, t, &t->call)) {
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

/* Brings back a dormant session recorded in the store (the runtime or the
 * gateway restarted since its last turn) with session.resume: 1 if the resume
 * was sent, 0 if no process can take it now. */
static int resume_dormant(struct turn *t, const char *sid)
{
    struct broker *b = t->b;
    struct sess *s;
    struct rtp *p;

    p = pool__pick(b);
    if (!p)
        return 0;
    sess__evict_for_new(b, t->owner.profile);
    s = sess__new(p, sid, t->conv->pin, t->conv->model, &t->owner, &t->root);
    s->persisted = 1;
    attach(t, s);
    t->open = TO_DORMANT;
    turn_set_phase(t, TP_SETUP);
    if (sess__watch(s) == 0 &&
        rt_call(p->rt, "session.resume", sess__params(s, t->conv, 0), 0, on_opened, t,
                &t->call) == 0) {
        b->st.sessions_resumed++;
        log_msg(LOG_DEBUG, "broker", "req=%s session=%s resuming a dormant session", t->rid,
                s->sid);
        return 1;
    }
    /* The runtime is unavailable: let the new-session path report it. */
    s->turn = NULL;
    t->s = NULL;
    t->open = TO_NEW;
    sess__close(s, "cannot resume");
    return 0;
}

/*
 * No live session holds the history: ask the store for a dormant one.  The
 * turn waits in TP_LOOKUP on b->lookups, without a session; a cancel or the
 * deadline drops the lookup (lookup_del()), and turn__dormant() goes on.
 * Returns 1 if the lookup is in flight, 0 if there is nothing to ask.
 */
static int lookup_dormant(struct turn *t, const struct hash *h, size_t first_new)
{
    struct broker *b = t->b;

    t->first_new = first_new;
    if (!sess__find_dormant(t, h))
        return 0;
    turn_set_phase(t, TP_LOOKUP);
    t->wprev = NULL;
    t->wnext = b->lookups;
    if (b->lookups)
        b->lookups->wprev = t;
    b->lookups = t;
    return 1;
}

/* Opens a new session for a turn no live or dormant session can serve. */
static int open_fresh(struct turn *t, struct gw_err *err)
{
    sess__unpin(t->b, t->conv->pin, &t->root, &t->owner);
    return turn__open_new(t, NULL, err);
}

void turn__dormant(struct turn *t, const char *sid)
{
    struct gw_err err;

    t->lookup = 0; /* answered: nothing to cancel */
    lookup_del(t);
    if (sid && resume_dormant(t, sid))
        return;
    t->open = TO_NEW;
    if (open_fresh(t, &err)) {
        turn__fail(t, &err);
        turn__finish(t);
    }
}

/*
 * Tries to continue a live session.  Returns 1 if the turn was attached to
 * one, 2 if it waits for the store's dormant lookup, 0 if a new session is
 * needed, or -1 with err set (results for only some of a parked session's
 * calls).
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
        s = sess__find(b, &chain[k], SS_PARKED, c->pin, &t->owner);
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
        turn_set_phase(t, TP_SENDING);
        b->st.sessions_reused++;
        answer_next(t);
        return 1;
    }
    if (j < n && j > 0) {
        s = sess__find(b, &chain[j], SS_IDLE, c->pin, &t->owner);
        if (!s)
            return lookup_dormant(t, &chain[j], j) ? 2 : 0;
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

int turn__begin(struct turn *t, struct gw_err *err)
{
    const struct conv *conv = t->conv;
    struct hash *chain;
    char who[PRINCIPAL_MAX + 24];
    int rc;

    sess_owner_who(&t->owner, who, sizeof(who));
    chain = hash_chain(conv, who, t->owner.profile->id);
    t->base = chain[conv->nmsgs];
    t->root = chain[0];
    rc = reuse(t, chain, err);
    free(chain);
    if (rc == 0)
        rc = open_fresh(t, err) ? -1 : 1;
    if (rc < 0) {
        t->canceled = 1;
        turn_set_phase(t, TP_DONE);
        if (t->s)
            sess_after_turn(t, TURN_STOP);
        turn__free(t);
        return err->code;
    }
    log_msg(LOG_DEBUG, "broker", "req=%s session=%s turn started (%zu messages)", t->rid,
            t->s ? t->s->sid : "(looking up a dormant one)", conv->nmsgs);
    return GW_OK;
}

/* ---- waiting for a process ------------------------------------------------------------ */

/* A process became ready: turns waiting for one (see turn_reopen) go on. */
void turn__wake_waiting(struct broker *b)
{
    while (b->waiting && pool__pick(b)) {
        struct turn *t = b->waiting;
        wait_del(t);
        log_msg(LOG_INFO, "broker", "req=%s a runtime is ready: retrying", t->rid);
        turn_reopen(t);
    }
}

void turn__fail_waiting(struct broker *b, const struct gw_err *err)
{
    while (b->waiting) {
        struct turn *t = b->waiting;
        wait_del(t);
        turn__fail(t, err);
        turn__finish(t);
    }
}

/* ---- agents -------------------------------------------------------------------------- */

int64_t turn__timeout_ms(const struct turn *t)
{
    const struct session_profile *p = t->owner.profile;

    return p && p->timeout_ms > 0 ? p->timeout_ms : t->b->cfg.turn_timeout_ms;
}

/* Appends s to a progress line (a full line is cut, never an error). */
static void put(struct buf *out, const char *s)
{
    if (buf_adds(out, s)) {
    }
}

/* Appends s to out as one line: control characters become spaces, cut at max bytes. */
static void line_add(struct buf *out, const char *s, size_t max)
{
    size_t n = 0;

    for (; s && *s && n < max; s++, n++) {
        char c[2] = {(unsigned char)*s < 0x20 ? ' ' : *s, '\0'};
        put(out, c);
    }
    if (s && *s)
        put(out, "...");
}

/* What a tool call works on, as the progress line shows it: the command line, path, URL,
 * sub-agent; else its arguments as JSON. */
static void tool_target(struct buf *out, const char *tool, const json_t *args)
{
    static const char *const keys[] = {"command", "path", "url", "pattern", "agent_type", NULL};
    char *js;

    for (size_t i = 0; keys[i]; i++) {
        const char *v = json_string_value(json_object_get(args, keys[i]));
        if (v) {
            line_add(out, v, 200);
            return;
        }
    }
    js = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    line_add(out, js, 200);
    free(js);
}

/*
 * Progress for a streaming client while an agent's tools run (the "seeing
 * the agent work"): "> bash: ls -la" when a tool starts, "x <why>" when it fails or
 * is denied, sent through sink.progress (the dialects show it as reasoning, which
 * clients display and do not send back as the answer).  Client tools are not shown:
 * the client runs them itself.
 */
void turn__progress(struct turn *t, const char *type, const json_t *ev)
{
    const json_t *d = json_object_get(ev, "data");
    const char *tool = json_string_value(json_object_get(d, "toolName"));
    const char *agent_id = json_string_value(json_object_get(ev, "agentId"));
    const char *sub = agent_id && t->s && t->s->subagents
                          ? json_string_value(json_object_get(t->s->subagents, agent_id))
                          : NULL;
    struct buf line;

    if (t->canceled || !t->sink.progress || !t->conv->stream)
        return;
    if (!agent_id && tool && turn__client_tool(t, tool))
        return;
    buf_init(&line, 4096);
    if (strcmp(type, "tool.execution_start") == 0 && tool) {
        put(&line, "> ");
        if (sub) {
            line_add(&line, sub, 64);
            put(&line, ": ");
        }
        line_add(&line, tool, 128);
        put(&line, " ");
        tool_target(&line, tool, json_object_get(d, "arguments"));
        put(&line, "\n");
    } else if (strcmp(type, "tool.execution_complete") == 0 &&
               json_is_false(json_object_get(d, "success"))) {
        put(&line, "x ");
        line_add(&line,
                 json_string_value(json_object_get(json_object_get(d, "error"), "message")),
                 300);
        put(&line, "\n");
    }
    if (line.len) {
        t->emitted = 1;
        t->sink.progress(t->ud, buf_str(&line), line.len);
    }
    buf_release(&line);
}
