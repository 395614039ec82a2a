/*
 * Runs agents: decides their sessions' tool calls with the policy and writes the
 * audit log (agent/agent.h).
 */
#include "agent/agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* Calls allowed and not finished yet, at most: past it the oldest are forgotten (their
 * audit rows keep outcome NULL, "not finished"). */
#define PENDING_MAX 4096
#define AUDIT_ERROR_MAX 1024

/* One agent's hooks context: profile.ops_ud points here. */
struct agent_ctx {
    struct agent_runner *runner;
    const struct agent *agent;
};

struct agent_runner {
    struct agents *agents;
    struct store *store;
    struct agent_ctx *ctx; /* one per agent */
    json_t *pending;       /* {"<session>\n<tool>\n<args>": [[audit id, start ms, kind,
                              target], ...]} */
    size_t npending;
    uint64_t allowed, denied;
};

static json_t *agent_hook(void *ud, const struct hook_call *hc);
static json_t *agent_decide(void *ud, const char *principal, const struct perm_request *rq);

static const struct profile_ops agent_ops = {.decide = agent_decide, .hook = agent_hook};

struct agent_runner *agent_runner_new(struct agents *agents, struct store *store)
{
    struct agent_runner *r = xcalloc(1, sizeof(*r));

    r->agents = agents;
    r->store = store;
    r->pending = json_object();
    r->ctx = xcalloc(agents->n ? agents->n : 1, sizeof(*r->ctx));
    for (size_t i = 0; i < agents->n; i++) {
        r->ctx[i].runner = r;
        r->ctx[i].agent = &agents->v[i];
        agents->v[i].profile.ops = &agent_ops;
        agents->v[i].profile.ops_ud = &r->ctx[i];
    }
    return r;
}

void agent_runner_free(struct agent_runner *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->agents->n; i++) {
        r->agents->v[i].profile.ops = NULL;
        r->agents->v[i].profile.ops_ud = NULL;
    }
    json_decref(r->pending);
    free(r->ctx);
    free(r);
}

void agent_runner_stats(const struct agent_runner *r, uint64_t *allowed, uint64_t *denied)
{
    *allowed = r ? r->allowed : 0;
    *denied = r ? r->denied : 0;
}

/* ---- audit ----------------------------------------------------------------------------- */

/* The row's target into buf: a denied shell call's whole command line (its verdict names
 * only the part denied, which the rule shows), cut as the verdict's are; else the verdict's. */
static const char *row_target(const struct pol_verdict *v, const json_t *args, char *buf,
                              size_t len)
{
    const char *cmd = json_string_value(json_object_get(args, "command"));

    if (v->kind != POL_SHELL || !cmd || v->allow)
        return v->target;
    util_copy_cut(buf, len, cmd);
    return buf;
}

static void audit_add(struct agent_runner *r, const struct hook_call *hc, const char *agent,
                      const char *tool, const struct pol_verdict *v, const json_t *args,
                      const char *id)
{
    struct store_audit row;
    char target[POL_TARGET_MAX];
    struct gw_err err;

    log_msg(v->allow ? LOG_DEBUG : LOG_INFO, "agent", "req=%s agent=%s %s %s: %s",
            hc->request_id ? hc->request_id : "-", agent, v->allow ? "allow" : "deny", tool,
            v->rule);
    if (!r->store)
        return;
    memset(&row, 0, sizeof(row));
    snprintf(row.id, sizeof(row.id), "%s", id);
    row.ts = util_wall_ms();
    row.request_id = (char *)hc->request_id;
    row.principal = (char *)hc->principal;
    row.agent = (char *)agent;
    row.session_id = (char *)hc->session_id;
    row.tool = (char *)tool;
    row.kind = (char *)policy_kind_name(v->kind);
    row.target = (char *)row_target(v, args, target, sizeof(target));
    row.decision = v->allow ? "allow" : "deny";
    row.rule = (char *)v->rule;
    row.outcome = v->allow ? NULL : "denied";
    row.duration_ms = -1;
    if (store_audit_add(r->store, &row, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "agent", "cannot write the audit log: %s", err.msg);
}

/* The key that pairs a postToolUse with its preToolUse: the same session (a sub-agent's
 * own), tool and arguments; calls with equal keys finish in order. */
static char *pending_key(const struct hook_call *hc)
{
    const json_t *in = hc->input;
    const char *isid = json_string_value(json_object_get(in, "sessionId"));
    const char *tool = json_string_value(json_object_get(in, "toolName"));
    char *args = json_dumps(json_object_get(in, "toolArgs"), JSON_COMPACT | JSON_SORT_KEYS |
                                                                 JSON_ENCODE_ANY);
    size_t n = strlen(isid ? isid : hc->session_id) + strlen(tool ? tool : "") +
               strlen(args ? args : "") + 3;
    char *key = xmalloc(n);

    snprintf(key, n, "%s\n%s\n%s", isid ? isid : hc->session_id, tool ? tool : "",
             args ? args : "");
    free(args);
    return key;
}

static void pending_add(struct agent_runner *r, const struct hook_call *hc, const char *id,
                        const struct pol_verdict *v)
{
    char *key = pending_key(hc);
    json_t *q = json_object_get(r->pending, key);

    if (r->npending >= PENDING_MAX) { /* sessions that died mid-call: forget them all */
        json_object_clear(r->pending);
        r->npending = 0;
        q = NULL;
    }
    if (!q) {
        q = json_array();
        json_object_set_new(r->pending, key, q);
    }
    json_array_append_new(q, json_pack("[s, I, s, s]", id, (json_int_t)util_now_ms(),
                                       policy_kind_name(v->kind), v->target));
    r->npending++;
    free(key);
}

/* Whether a call of this kind on this target was allowed by preToolUse and is running. */
static int pending_has(const struct agent_runner *r, const struct pol_verdict *v)
{
    const char *key;
    json_t *q, *e;
    size_t i;

    json_object_foreach(r->pending, key, q) {
        json_array_foreach(q, i, e) {
            if (strcmp(json_string_value(json_array_get(e, 2)), policy_kind_name(v->kind)) == 0 &&
                strcmp(json_string_value(json_array_get(e, 3)), v->target) == 0)
                return 1;
        }
    }
    (void)key;
    return 0;
}

/* postToolUse / postToolUseFailure: the outcome of the call's audit row. */
static void pending_done(struct agent_runner *r, const struct hook_call *hc, int ok)
{
    char *key = pending_key(hc);
    json_t *q = json_object_get(r->pending, key);
    json_t *e = json_array_get(q, 0);
    const json_t *in = hc->input;
    const json_t *res = json_object_get(in, "toolResult");
    const char *why = NULL;
    char errbuf[AUDIT_ERROR_MAX];
    struct gw_err err;

    if (!e) {
        free(key);
        return;
    }
    if (ok) {
        const char *type = json_string_value(json_object_get(res, "resultType"));
        ok = !type || strcmp(type, "success") == 0;
        if (!ok)
            why = json_string_value(json_object_get(res, "textResultForLlm"));
    } else {
        const json_t *e2 = json_object_get(in, "error");
        why = json_is_string(e2) ? json_string_value(e2)
                                 : json_string_value(json_object_get(e2, "message"));
    }
    snprintf(errbuf, sizeof(errbuf), "%s", why ? why : "");
    if (r->store &&
        store_audit_outcome(r->store, json_string_value(json_array_get(e, 0)), ok ? "ok" : "error",
                            (int64_t)(util_now_ms() -
                                      (uint64_t)json_integer_value(json_array_get(e, 1))),
                            ok ? NULL : errbuf, NULL, NULL, NULL, &err))
        log_msg(LOG_WARN, "agent", "cannot write the audit log: %s", err.msg);
    json_array_remove(q, 0);
    r->npending--;
    if (!json_array_size(q))
        json_object_del(r->pending, key);
    free(key);
}

/* ---- decisions ------------------------------------------------------------------------- */

/*
 * Decides one call of ctx's agent (or of its sub-agent `sub`): the policy of the agent
 * that runs it.  A sub-agent must be one of the agent's delegates.
 */
static int decide_call(struct agent_ctx *ctx, const struct hook_call *hc, const char *tool,
                       const json_t *args, struct pol_verdict *v, const char **agent_name)
{
    const struct agent *a = ctx->agent;

    *agent_name = a->name;
    if (hc->subagent) {
        const struct agent *d = NULL;
        for (size_t i = 0; a->delegates && a->delegates[i]; i++)
            if (strcmp(a->delegates[i], hc->subagent) == 0)
                d = agents_find_name(ctx->runner->agents, hc->subagent);
        if (!d) {
            memset(v, 0, sizeof(*v));
            v->kind = POL_AGENT;
            snprintf(v->target, sizeof(v->target), "%s", hc->subagent);
            snprintf(v->rule, sizeof(v->rule), "agent(%s)", hc->subagent);
            snprintf(v->reason, sizeof(v->reason),
                     "denied by policy: no rule allows agent(%s)", hc->subagent);
            v->by_default = 1;
            return 0;
        }
        /* the delegate's rules, but its tools run in this session's directory */
        struct policy sub = d->policy;
        sub.workdir = a->workdir;
        *agent_name = d->name;
        return policy_check(&sub, tool, args, v);
    }
    return policy_check(&a->policy, tool, args, v);
}

static json_t *agent_hook(void *ud, const struct hook_call *hc)
{
    struct agent_ctx *ctx = ud;
    struct agent_runner *r = ctx->runner;
    const char *tool = json_string_value(json_object_get(hc->input, "toolName"));
    const char *agent_name;
    struct pol_verdict v;
    char id[40];

    if (!tool || hc->client_tool)
        return NULL;
    if (strcmp(hc->hook_type, "postToolUse") == 0) {
        pending_done(r, hc, 1);
        return NULL;
    }
    if (strcmp(hc->hook_type, "postToolUseFailure") == 0) {
        pending_done(r, hc, 0);
        return NULL;
    }
    if (strcmp(hc->hook_type, "preToolUse") != 0)
        return NULL;
    decide_call(ctx, hc, tool, json_object_get(hc->input, "toolArgs"), &v, &agent_name);
    memcpy(id, "aud_", 4);
    util_rand_id(id + 4, 24);
    audit_add(r, hc, agent_name, tool, &v, json_object_get(hc->input, "toolArgs"), id);
    if (!v.allow) {
        r->denied++;
        return json_pack("{s:s, s:s}", "permissionDecision", "deny", "permissionDecisionReason",
                         v.reason);
    }
    r->allowed++;
    pending_add(r, hc, id, &v);
    return json_pack("{s:s}", "permissionDecision", "allow");
}

/*
 * Whether a prompt the agent's own rules deny is a call one of its delegates' preToolUse
 * allowed and is running (prompts do not say which sub-agent asks; the hook did): the
 * delegate's rules allow it, and a running call of that kind and target was allowed.
 */
static int hook_allowed_delegate(struct agent_ctx *ctx, const char *tool, const json_t *args,
                                 const char **agent_name)
{
    const struct agent *a = ctx->agent;

    for (size_t i = 0; a->delegates && a->delegates[i]; i++) {
        const struct agent *d = agents_find_name(ctx->runner->agents, a->delegates[i]);
        struct pol_verdict dv;
        struct policy sub;

        if (!d)
            continue;
        sub = d->policy;
        sub.workdir = a->workdir;
        if (policy_check(&sub, tool, args, &dv) && pending_has(ctx->runner, &dv)) {
            *agent_name = d->name;
            log_msg(LOG_DEBUG, "agent", "agent=%s permission %s: allowed by its preToolUse",
                    d->name, dv.target);
            return 1;
        }
    }
    return 0;
}

/*
 * A permission prompt: the fence behind the preToolUse decision (the runtime still asks
 * for some calls the hook allowed, e.g. bash).  The prompt is turned back into the tool
 * call it stands for and decided by the session's agent's policy (prompts do not say
 * which sub-agent asks).  A prompt for a call the hook allowed and audited (same kind and
 * target, still running; for a sub-agent's call, allowed by that delegate's rules) is
 * approved without a second row; any other prompt is audited as tool "permission:<kind>".
 */
static json_t *agent_decide(void *ud, const char *principal, const struct perm_request *rq)
{
    struct agent_ctx *ctx = ud;
    const json_t *q = rq->request;
    const char *kind = rq->kind ? rq->kind : "";
    struct pol_verdict v;
    struct hook_call hc;
    const char *tool = NULL, *agent_name;
    json_t *args = NULL, *d;
    char name[256], id[40];

    if (strcmp(kind, "shell") == 0) {
        tool = "bash";
        args = json_pack("{s:s?}", "command", json_string_value(json_object_get(q, "fullCommandText")));
    } else if (strcmp(kind, "write") == 0) {
        tool = "create";
        args = json_pack("{s:s?}", "path", json_string_value(json_object_get(q, "fileName")));
    } else if (strcmp(kind, "read") == 0) {
        tool = "view";
        args = json_pack("{s:s?}", "path", json_string_value(json_object_get(q, "path")));
    } else if (strcmp(kind, "url") == 0) {
        tool = "web_fetch";
        args = json_pack("{s:s?}", "url", json_string_value(json_object_get(q, "url")));
    } else if (strcmp(kind, "mcp") == 0) {
        const char *srv = json_string_value(json_object_get(q, "serverName"));
        const char *t = json_string_value(json_object_get(q, "toolName"));
        size_t sl = srv ? strlen(srv) : 0;
        /* toolName is the server's own name ("query"), or for a sub-agent's call already
         * the runtime's "<server>-<tool>" (observed on 1.0.85) */
        if (t && sl && strncmp(t, srv, sl) == 0 && t[sl] == '-')
            snprintf(name, sizeof(name), "%s", t);
        else
            snprintf(name, sizeof(name), "%s-%s", srv ? srv : "", t ? t : "");
        tool = name;
        args = json_object();
    }
    memset(&hc, 0, sizeof(hc));
    hc.principal = principal;
    hc.session_id = rq->session_id;
    hc.request_id = rq->turn_request_id;
    hc.hook_type = "permission";
    if (!tool) {
        memset(&v, 0, sizeof(v));
        v.kind = POL_SHELL;
        snprintf(v.target, sizeof(v.target), "%s", kind);
        snprintf(v.rule, sizeof(v.rule), "%s(?)", kind);
        snprintf(v.reason, sizeof(v.reason), "denied by policy: %s requests are not allowed",
                 kind);
        agent_name = ctx->agent->name;
        tool = kind;
    } else {
        decide_call(ctx, &hc, tool, args, &v, &agent_name);
        if (!v.allow && hook_allowed_delegate(ctx, tool, args, &agent_name)) {
            json_decref(args);
            return json_pack("{s:s}", "kind", "approve-once");
        }
    }
    json_decref(args);
    if (v.allow && pending_has(ctx->runner, &v)) {
        log_msg(LOG_DEBUG, "agent", "agent=%s permission %s: allowed by its preToolUse",
                agent_name, v.target);
        return json_pack("{s:s}", "kind", "approve-once");
    }
    memcpy(id, "aud_", 4);
    util_rand_id(id + 4, 24);
    snprintf(name, sizeof(name), "permission:%s", kind);
    audit_add(ctx->runner, &hc, agent_name, name, &v, NULL, id);
    if (v.allow) {
        ctx->runner->allowed++;
        return json_pack("{s:s}", "kind", "approve-once");
    }
    ctx->runner->denied++;
    d = json_pack("{s:s, s:s}", "kind", "reject", "feedback", v.reason);
    return d;
}
