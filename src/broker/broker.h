/*
 * broker/broker.h - maps a canonical conversation onto a runtime session and
 * runs one turn, reporting canonical events to a sink.
 *
 * Today (core): every turn gets a fresh runtime session.  The history before
 * the final user message is written as the session's events.jsonl and opened
 * with session.resume (protocol reference §4.5); the final user message goes
 * in with session.send (attachments for images); a conversation that does
 * not end with a user message runs with session.sendMessages {messages:[]}.
 * The session is deleted when the turn ends, fails or is cancelled.
 * Session reuse and client tools slot in here (issue 3).
 *
 * The broker also owns the runtime process: start, warm-up turn against the
 * gateway's own loopback endpoint, readiness, sign-in status.
 *
 * Ownership: broker_turn_start() steals conv.  Sink callbacks get borrowed data.
 * After on_done, or after broker_turn_cancel(), the turn is gone.
 * Threading: event-loop thread only.
 */
#ifndef GW_BROKER_BROKER_H
#define GW_BROKER_BROKER_H

#include <stdint.h>

#include <event2/event.h>

#include "broker/conv.h"
#include "rt/rt.h"
#include "util/err.h"

struct broker;
struct turn;

struct provider_config {
    const char *url;  /* BYOK base URL, e.g. http://127.0.0.1:8080/v1; NULL = Copilot */
    const char *key;  /* may be NULL */
    const char *type; /* "openai" | "azure" | "anthropic" */
};

struct broker_config {
    struct rt_config rt;         /* on_up/on_down/ud are set by the broker */
    struct provider_config provider;
    const char *warmup_url;      /* base URL of the gateway's own loopback warm-up endpoint */
    const char *warmup_key;      /* bearer the warm-up endpoint expects */
    const char *workdir;         /* empty working directory for sessions */
    int turn_timeout_ms;         /* whole-turn deadline (default 600000) */
};

enum turn_finish { TURN_STOP = 0, TURN_LENGTH, TURN_TOOL_CALLS };

struct turn_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t reasoning_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
};

struct turn_result {
    int ok;                 /* 1: finished; 0: failed, see err */
    struct gw_err err;
    const char *text;       /* whole answer text */
    const char *reasoning;  /* whole reasoning text or NULL */
    enum turn_finish finish;
    struct turn_usage usage;
};

struct turn_sink {
    void (*text)(void *ud, const char *s, size_t n);      /* answer delta */
    void (*reasoning)(void *ud, const char *s, size_t n); /* reasoning delta */
    void (*done)(void *ud, const struct turn_result *r);  /* exactly once */
};

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg);
int broker_start(struct broker *b) WARN_UNUSED;
void broker_stop(struct broker *b, void (*done)(void *ud), void *ud);
void broker_free(struct broker *b);

/* 1 when a runtime is connected, warmed and signed in (or BYOK configured). */
int broker_ready(const struct broker *b, const char **why);
int broker_signed_in(const struct broker *b);
int broker_byok(const struct broker *b);
struct rt *broker_rt(struct broker *b);
/* Turns alive, including ones still cleaning up their runtime session. */
int broker_turns_active(const struct broker *b);

/*
 * Starts a turn.  On failure returns NULL and fills err (sink not called).
 * Otherwise sink.text/reasoning run as deltas arrive and sink.done once.
 */
struct turn *broker_turn_start(struct broker *b, struct conv *conv, const struct turn_sink *sink,
                               void *ud, const char *request_id, struct gw_err *err);
/* The client went away: abort the runtime turn, delete the session, no more callbacks. */
void broker_turn_cancel(struct turn *t);

#endif
