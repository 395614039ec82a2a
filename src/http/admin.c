/*
 * The gateway's own routes: the root probe, /healthz, /readyz, /metrics,
 * and the model catalogue (GET /v1/models, /v1/models/{id}).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "keys/keys.h"
#include "api/models.h"
#include "broker/broker.h"
#include "broker/errmap.h"
#include "http/handlers.h"
#include "http/services.h"
#include "rt/orphans.h"
#include "rt/rt.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* GET /: a liveness probe (Claude Code sends one); no key needed. */
void http_route_root(struct http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s, s:s}", "name", "copilot-gateway", "status", "ok"));
}

/* ---- GET /v1/models, /v1/models/{id} ------------------------------------------ */

struct models_req {
    struct http_req *r;
    char *id;
    int anthropic; /* the route's dialect: the client sent anthropic-version */
    struct rt *rt; /* a user's own catalogue: the runtime asked, or NULL */
    uint64_t rt_id;
};

#define USER_MODELS_TIMEOUT_MS 15000

/* {"type":"model","id","display_name","created_at"} from an OpenAI-shaped entry. */
static json_t *anthropic_model(const json_t *m)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *name = json_string_value(json_object_get(m, "name"));
    time_t created = (time_t)json_integer_value(json_object_get(m, "created"));
    char ts[32];
    struct tm tm;

    gmtime_r(&created, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id", id ? id : "", "display_name",
                     name ? name : (id ? id : ""), "created_at", ts);
}

static json_t *anthropic_list(const json_t *list)
{
    json_t *data = json_array();
    size_t i, n = json_array_size(list);
    const json_t *m;

    json_array_foreach(list, i, m)
    {
        json_array_append_new(data, anthropic_model(m));
    }
    return json_pack("{s:o, s:b, s:s?, s:s?}", "data", data, "has_more", 0, "first_id",
                     n ? json_string_value(json_object_get(json_array_get(list, 0), "id")) : NULL,
                     "last_id",
                     n ? json_string_value(json_object_get(json_array_get(list, n - 1), "id"))
                       : NULL);
}

/* A config-file agent as an OpenAI-shaped catalogue entry. */
static json_t *agent_model(const struct agent *ag)
{
    return json_pack("{s:s, s:s, s:i, s:s}", "id", ag->model_id, "object", "model", "created", 0,
                     "owned_by", "copilot-gateway");
}

/* The catalogue (borrowed) with the agents after it (new reference). */
static json_t *with_agents(const json_t *list, const struct agents *as)
{
    json_t *all = json_copy((json_t *)list);

    for (size_t i = 0; as && i < as->n; i++)
        json_array_append_new(all, agent_model(&as->v[i]));
    return all;
}

static void models_gone(struct http_req *r)
{
    struct models_req *q = r->hdata;
    if (q->rt)
        rt_cancel(q->rt, q->rt_id);
    else
        models_cancel(r->svc->models, q);
    free(q->id);
    free(q);
}

static void on_models_list(void *ud, const json_t *list, const struct gw_err *err)
{
    struct models_req *q = ud;
    struct http_req *r = q->r;

    r->on_gone = NULL;
    if (!list) {
        http_reply_error(r, err);
    } else if (q->id) {
        const json_t *m = models_find(list, q->id);
        if (m) {
            http_reply_json(r, 200, q->anthropic ? anthropic_model(m) : json_deep_copy(m));
        } else {
            struct gw_err e;
            gw_err_param(&e, GW_ENOTFOUND, "model", "The model '%.200s' does not exist", q->id);
            snprintf(e.api_code, sizeof(e.api_code), "model_not_found");
            http_reply_error(r, &e);
        }
    } else {
        json_t *all = with_agents(list, r->svc->agents);
        if (r->vkey) { /* a key limited to some models lists only those */
            for (size_t i = json_array_size(all); i-- > 0;) {
                const char *id = json_string_value(json_object_get(json_array_get(all, i), "id"));
                if (!id || !vkey_model_allowed(r->vkey, id))
                    json_array_remove(all, i);
            }
        }
        if (q->anthropic)
            http_reply_json(r, 200, anthropic_list(all));
        else
            http_reply_json(r, 200, json_pack("{s:s, s:O}", "object", "list", "data", all));
        json_decref(all);
    }
    free(q->id);
    free(q);
}

/* GET /v1/models/agent/NAME (or agent%2FNAME): answered from the config, not the catalogue. */
static void reply_agent(struct http_req *r, int anthropic)
{
    const struct agent *ag = agents_find(r->svc->agents, r->param);
    json_t *m;
    struct gw_err e;

    if (!ag) {
        gw_err_param(&e, GW_ENOTFOUND, "model", "The model '%.200s' does not exist", r->param);
        snprintf(e.api_code, sizeof(e.api_code), "model_not_found");
        http_reply_error(r, &e);
        return;
    }
    m = agent_model(ag);
    http_reply_json(r, 200, anthropic ? anthropic_model(m) : json_incref(m));
    json_decref(m);
}

/* A user's own catalogue: models.list with their token (not cached: clients list models
 * when they start, and the answer is what the user's organisation allows). */
static void on_user_models(void *ud, const json_t *result, const struct gw_err *rerr)
{
    struct models_req *q = ud;
    json_t *list = NULL;
    struct gw_err e;

    q->rt = NULL;
    /* with the user's token only: GitHub refusing it, or unreachable to check it */
    if (rerr && (errmap_is_token_failure(rerr->msg) || strcasestr(rerr->msg, "fetch failed"))) {
        errmap_user_token(&e, rerr->msg);
    } else if (rerr) {
        log_msg(LOG_WARN, "models", "req=%s the user's model list: %s", q->r->id, rerr->msg);
        gw_err_set(&e, rerr->code == GW_ETIMEDOUT ? GW_ETIMEDOUT : GW_EUPSTREAM,
                   "the Copilot runtime cannot list your models (details in the gateway log)");
    } else if ((list = models_from_runtime(result)) == NULL) {
        gw_err_set(&e, GW_EPROTO, "the Copilot runtime's model list has no \"models\" array");
    }
    on_models_list(q, list, list ? NULL : &e);
    json_decref(list);
}

static int user_models(struct models_req *q)
{
    struct http_req *r = q->r;
    struct rt *rt = broker_rt(r->svc->broker);
    const char *token = vkey_github_token(r->vkey, broker_byok(r->svc->broker));

    if (!token || !rt || rt_state(rt) != RT_READY)
        return 0;
    if (rt_call(rt, "models.list", json_pack("{s:s}", "gitHubToken", token),
                USER_MODELS_TIMEOUT_MS, on_user_models, q, &q->rt_id))
        return 0;
    q->rt = rt;
    return 1;
}

void http_route_models(struct http_req *r)
{
    struct models_req *q;

    if (strncmp(r->param, AGENT_MODEL_PREFIX, strlen(AGENT_MODEL_PREFIX)) == 0) {
        reply_agent(r, r->api == HTTP_API_ANTHROPIC);
        return;
    }
    q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->id = r->param[0] ? xstrdup(r->param) : NULL;
    q->anthropic = r->api == HTTP_API_ANTHROPIC;
    r->hdata = q;
    r->on_gone = models_gone;
    if (!user_models(q))
        models_get(r->svc->models, on_models_list, q);
}

/* ---- health ------------------------------------------------------------------- */

void http_route_health(struct http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *runtime_json(struct rt *rt)
{
    return json_pack("{s:s, s:i, s:s, s:I}", "state", rt_state_name(rt_state(rt)), "pid",
                     rt_pid(rt), "version", rt_version(rt), "generation",
                     (json_int_t)rt_generation(rt));
}

/* The disk section of /readyz: free space and whether gateway.db takes writes. */
static json_t *disk_json(struct broker *b, struct store *st, const struct gw_err *serr, int st_ok)
{
    int64_t data_mb, home_mb, min_mb;

    broker_disk_free(b, &data_mb, &home_mb, &min_mb);
    return json_pack("{s:I, s:I, s:I, s:b, s:s?}", "data_free_mb", (json_int_t)data_mb,
                     "home_free_mb", (json_int_t)home_mb, "min_free_mb", (json_int_t)min_mb,
                     "store_writable", st_ok, "store_error", st_ok ? NULL : serr->msg);
}

/*
 * GET /readyz: 200 {"status":"ready"} or 503 {"status":"not_ready","reason"}.
 * Not ready while no runtime can serve, while the runtime is not signed in to GitHub
 * (unless --token-key-file: users may bring their own identity), while the keys are
 * loading, or while a turn could not write: the
 * data or runtime-home disk below --min-free-mb, or gateway.db refusing
 * writes.  The details (runtime processes with pids and versions, sessions,
 * disk) go only to a request with a valid client key when keys are set.
 */
void http_route_ready(struct http_req *r)
{
    struct broker *b = r->svc->broker;
    struct store *st = r->svc->store;
    struct gw_err derr, serr;
    const char *why;
    /* with users' own tokens (--token-key-file), the gateway's sign-in is optional */
    int ok = r->svc->sealer ? broker_ready_for_users(b, &why) : broker_ready(b, &why);
    int disk_ok = broker_can_write(b, &derr);
    int st_ok = !st || store_writable(st, &serr);
    json_t *pool, *body;

    int keys_ok = !r->svc->keyring || keyring_ready(r->svc->keyring);

    if (ok && !disk_ok)
        why = "low disk space";
    else if (ok && !st_ok)
        why = "cannot write gateway.db";
    else if (ok && !keys_ok)
        why = "loading the API keys";
    ok = ok && disk_ok && st_ok && keys_ok;
    body = json_pack("{s:s, s:s}", "status", ok ? "ready" : "not_ready", "reason", why);
    if (!http_req_authorized(r)) {
        http_reply_json(r, ok ? 200 : 503, body);
        return;
    }
    pool = json_array();
    for (int i = 0; i < broker_pool_size(b); i++) {
        int sessions, draining;
        json_t *o = runtime_json(broker_pool_rt(b, i, &sessions, &draining));
        json_object_set_new(o, "sessions", json_integer(sessions));
        json_object_set_new(o, "draining", json_boolean(draining));
        json_array_append_new(pool, o);
    }
    /* "runtime" is the process serving now (the first ready one). */
    json_object_update_new(
        body, json_pack("{s:o, s:o, s:b, s:b, s:i, s:o}", "runtime", runtime_json(broker_rt(b)),
                        "runtimes", pool, "signed_in", broker_signed_in(b), "byok",
                        broker_byok(b), "turns_active", broker_turns_active(b), "disk",
                        disk_json(b, st, &serr, st_ok)));
    if (!disk_ok)
        json_object_set_new(body, "disk_error", json_string(derr.msg));
    http_reply_json(r, ok ? 200 : 503, body);
}

/* ---- GET /metrics ---------------------------------------------------------------------- */

void http_route_metrics(struct http_req *r)
{
    struct broker_stats st;
    struct buf out;
    int rc;

    broker_stats(r->svc->broker, &st);
    buf_init(&out, 1024u * 1024);
    rc = buf_addf(&out,
                  "# TYPE copilot_gateway_sessions_created_total counter\n"
                  "copilot_gateway_sessions_created_total %llu\n"
                  "# TYPE copilot_gateway_sessions_seeded_total counter\n"
                  "copilot_gateway_sessions_seeded_total %llu\n"
                  "# TYPE copilot_gateway_sessions_reused_total counter\n"
                  "copilot_gateway_sessions_reused_total %llu\n"
                  "# TYPE copilot_gateway_sessions_evicted_total counter\n"
                  "copilot_gateway_sessions_evicted_total %llu\n"
                  "# TYPE copilot_gateway_sessions_resumed_total counter\n"
                  "copilot_gateway_sessions_resumed_total %llu\n"
                  "# TYPE copilot_gateway_sessions_live gauge\n"
                  "copilot_gateway_sessions_live %d\n"
                  "# TYPE copilot_gateway_sessions_parked gauge\n"
                  "copilot_gateway_sessions_parked %d\n"
                  "# TYPE copilot_gateway_turns_active gauge\n"
                  "copilot_gateway_turns_active %d\n"
                  "# TYPE copilot_gateway_runtime_restarts_total counter\n"
                  "copilot_gateway_runtime_restarts_total %llu\n",
                  (unsigned long long)st.sessions_created, (unsigned long long)st.sessions_seeded,
                  (unsigned long long)st.sessions_reused, (unsigned long long)st.sessions_evicted,
                  (unsigned long long)st.sessions_resumed,
                  st.sessions_live, st.sessions_parked, st.turns_active,
                  (unsigned long long)st.runtime_restarts);
    if (!rc)
        rc = buf_addf(&out,
                      "# HELP copilot_gateway_orphans_ended_total Processes left running by a "
                      "runtime's tools that the gateway ended.\n"
                      "# TYPE copilot_gateway_orphans_ended_total counter\n"
                      "copilot_gateway_orphans_ended_total %llu\n",
                      orphans_ended());
    if (!rc && r->svc->agent_runner) {
        uint64_t allowed, denied;
        agent_runner_stats(r->svc->agent_runner, &allowed, &denied);
        rc = buf_addf(&out,
                      "# HELP copilot_gateway_agent_tool_calls_total Decisions of agents' policies, one "
                      "per audit row.\n"
                      "# TYPE copilot_gateway_agent_tool_calls_total counter\n"
                      "copilot_gateway_agent_tool_calls_total{decision=\"allow\"} %llu\n"
                      "copilot_gateway_agent_tool_calls_total{decision=\"deny\"} %llu\n",
                      (unsigned long long)allowed, (unsigned long long)denied);
    }
    if (!rc)
        rc = http_server_metrics(r->srv, &out);
    if (rc) {
        struct gw_err err;
        buf_release(&out);
        gw_err_set(&err, GW_ENOMEM, "metrics too large");
        http_reply_error(r, &err);
        return;
    }
    http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.ptr, out.len);
    buf_release(&out);
}
