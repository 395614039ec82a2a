/*
 * http/services.h - what request handlers work with: the collaborators and
 * settings main.c builds once and hands to the HTTP server, which gives
 * every request a pointer to them (req->svc).  Handlers take what they need
 * from there, never from globals or from getters on the server.
 *
 * Ownership: main.c owns the struct and everything it points to; all of it
 *   outlives the server.  Handlers borrow.
 * Threading: event-loop thread only.
 */
#ifndef GW_HTTP_SERVICES_H
#define GW_HTTP_SERVICES_H

#include <stdint.h>

#include <event2/event.h>

struct broker;
struct models;
struct fetch;
struct store;
struct session_profile;
struct agents;
struct agent_runner;
struct keyring;
struct limits;
struct prices;
struct sealer;

struct gw_services {
    struct event_base *base;
    struct broker *broker;       /* runs turns */
    struct models *models;       /* the model catalogue (model checks, GET /v1/models) */
    struct fetch *fetch;         /* image URL downloads */
    struct store *store;         /* stored Responses API responses (gateway.db) */
    const struct session_profile *profile; /* the session profile of model requests */
    const struct agents *agents; /* the config file's agents (models "agent/<name>"); never NULL */
    const struct agent_runner *agent_runner; /* their tool-call decisions, or NULL */
    struct keyring *keyring;     /* virtual API keys (keys/keys.h), or NULL */
    struct limits *limits;       /* their rate limits, concurrency and budgets, or NULL */
    const struct prices *prices; /* AI credits per model (keys/prices.h), or NULL */
    const struct sealer *sealer; /* seals users' GitHub tokens (--token-key-file), or NULL */
    /* Settings the handlers read (--flag names). */
    const char *anthropic_default_model; /* for claude-* ids the catalogue lacks, or NULL */
    const char *model_aliases;   /* "FROM=TO,FROM=TO" or NULL */
    int image_fetch_private;     /* image URLs may resolve to private/loopback addresses */
    int64_t max_input_tokens;    /* largest conversation (estimate) when the model's is unknown */
    int64_t responses_ttl_s;     /* stored responses older than this are deleted */
    int64_t responses_max;       /* at most this many stored responses (0: no cap) */
};

#endif
