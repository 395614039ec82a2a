/*
 * The session broker's public API (broker.h): builds the broker and its
 * pool, starts and stops it, and starts and cancels turns.  The work is in
 * pool.c, sessions.c and turn.c (broker_int.h).
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "broker/errmap.h"
#include "util/log.h"
#include "util/xmalloc.h"

static json_t *provider_json(const char *url, const char *key, const char *type)
{
    json_t *p = json_pack("{s:s, s:s}", "type", type ? type : "openai", "baseUrl", url);
    if (key && *key)
        json_object_set_new(p, "apiKey", json_string(key));
    return p;
}

struct broker *broker_new(struct event_base *base, const struct broker_config *cfg)
{
    struct broker *b = xcalloc(1, sizeof(*b));

    b->base = base;
    b->cfg = *cfg;
    b->provider_url = xstrdup(cfg->provider.url && *cfg->provider.url ? cfg->provider.url : NULL);
    b->provider_key = xstrdup(cfg->provider.key);
    b->provider_type = xstrdup(cfg->provider.type ? cfg->provider.type : "openai");
    b->warmup_url = xstrdup(cfg->warmup_url);
    b->warmup_key = xstrdup(cfg->warmup_key);
    b->workdir = xstrdup(cfg->workdir);
    b->home = xstrdup(cfg->rt.home);
    if (b->provider_url)
        b->provider = provider_json(b->provider_url, b->provider_key, b->provider_type);
    b->warmup_provider = provider_json(b->warmup_url, b->warmup_key, "openai");
    if (b->cfg.turn_timeout_ms <= 0)
        b->cfg.turn_timeout_ms = 600000;
    if (b->cfg.tool_timeout_s <= 0)
        b->cfg.tool_timeout_s = 600;
    if (b->cfg.session_idle_s <= 0)
        b->cfg.session_idle_s = 1800;
    if (b->cfg.max_sessions <= 0)
        b->cfg.max_sessions = 1000;
    b->store = cfg->store;
    pool__init(b);
    return b;
}

int broker_start(struct broker *b)
{
    sess__sweep(b);
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
            turn__free(s->turn);
        }
        s->call = 0;
        s->p->draining = 0;
        sess__free(s);
    }
    while (b->waiting)
        turn__free(b->waiting);
    while (b->lookups)
        turn__free(b->lookups); /* drops their store answers */
    sess__sweep_cancel(b);
    pool__release(b);
    json_decref(b->provider);
    json_decref(b->warmup_provider);
    free(b->provider_url);
    free(b->provider_key);
    free(b->provider_type);
    free(b->warmup_url);
    free(b->warmup_key);
    free(b->workdir);
    free(b->home);
    free(b);
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

struct turn *broker_turn_start(struct broker *b, struct conv *conv, const struct turn_req *req,
                               const struct turn_sink *sink, void *ud, struct gw_err *err)
{
    const char *why;
    struct turn *t;

    if (!broker__ready_for(b, !(req && req->github_token), &why)) {
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
    t = turn__new(b, conv, req, sink, ud);
    if (turn__begin(t, err))
        return NULL;
    return t;
}

void broker_turn_cancel(struct turn *t)
{
    if (!t || t->canceled)
        return;
    log_msg(LOG_INFO, "broker", "req=%s session=%s client went away: aborting the turn", t->rid,
            t->s ? t->s->sid : "-");
    t->canceled = 1;
    turn__finish(t);
}
