/* Session profiles: the parameters of session.create / session.resume for a profile and a
 * conversation. */
#include "broker/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

const struct session_profile profile_pure_model = {
    .id = "model",
    .system_mode = "replace",
};

/* The system message: the client's verbatim, or the profile's instructions and then the
 * client's; in "append" mode after the runtime's own. */
static json_t *system_message(const struct session_profile *p, const struct conv *c)
{
    const char *client = c->system ? c->system : "";
    int append = p->system_mode && strcmp(p->system_mode, "append") == 0;
    json_t *o;
    char *joined;
    size_t n;

    if (!p->instructions || !*p->instructions)
        return json_pack("{s:s, s:s}", "mode", append ? "append" : "replace", "content", client);
    n = strlen(p->instructions) + 2 + strlen(client) + 1;
    joined = xmalloc(n);
    snprintf(joined, n, "%s%s%s", p->instructions, *client ? "\n\n" : "", client);
    o = json_pack("{s:s, s:s}", "mode", append ? "append" : "replace", "content", joined);
    free(joined);
    return o;
}

static json_t *string_array(const char *const *v)
{
    json_t *a = json_array();

    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* What a profile adds to the pure model's parameters; nothing for the pure model. */
static void add_profile(json_t *params, const struct session_profile *p)
{
    json_t *avail = json_object_get(params, "availableTools");

    for (size_t i = 0; p->available_tools && p->available_tools[i]; i++)
        json_array_append_new(avail, json_string(p->available_tools[i]));
    if (p->excluded_tools && p->excluded_tools[0]) {
        json_object_set_new(params, "excludedTools", string_array(p->excluded_tools));
        json_object_set_new(params, "toolFilterPrecedence", json_string("excluded"));
    }
    if (p->mcp_servers)
        json_object_set(params, "mcpServers", p->mcp_servers);
    if (p->custom_agents)
        json_object_set(params, "customAgents", p->custom_agents);
    if (p->default_excluded_tools && p->default_excluded_tools[0])
        json_object_set_new(params, "defaultAgent",
                            json_pack("{s:o}", "excludedTools",
                                      string_array(p->default_excluded_tools)));
    if (p->agent)
        json_object_set_new(params, "agent", json_string(p->agent)); /* ops §7.1: pin at create */
    if (p->request_permission)
        json_object_set_new(params, "requestPermission", json_true());
    if (p->hooks)
        json_object_set_new(params, "hooks", json_true());
    if (p->managed_settings)
        json_object_set(params, "managedSettings", p->managed_settings);
}

json_t *profile_session_params(const struct session_profile *p, const struct conv *c,
                               const char *session_id, const json_t *provider, const char *workdir,
                               const char *github_token)
{
    json_t *avail = json_array(), *tools = json_array();
    json_t *params;

    if (!p)
        p = &profile_pure_model;
    for (size_t i = 0; i < c->ntools; i++) {
        const struct conv_tool *tl = &c->tools[i];
        json_t *o = json_pack("{s:s, s:s, s:b}", "name", tl->name, "description",
                              tl->description ? tl->description : "", "skipPermission", 1);
        if (tl->parameters)
            json_object_set(o, "parameters", tl->parameters);
        json_array_append_new(tools, o);
        json_array_append_new(avail, json_string(tl->name));
    }
    params = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:{s:b}, s:b, s:s, s:s,"
                       " s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:{s:b}, s:b}",
                       "sessionId", session_id, "model", c->model, "clientName", "copilot-gateway",
                       "systemMessage", system_message(p, c), "availableTools", avail, "tools",
                       tools, "streaming", 1, "infiniteSessions", "enabled", 0, "requestPermission",
                       0, "envValueMode", "direct", "workingDirectory",
                       p->workdir ? p->workdir : workdir, "enableSessionTelemetry", 0,
                       "skipEmbeddingRetrieval", 1, "enableOnDemandInstructionDiscovery", 0,
                       "enableFileHooks", 0, "enableHostGitOperations", 0, "enableSessionStore", 0,
                       "enableSkills", 0, "memory", "enabled", 0, "customAgentsLocalOnly", 1);
    add_profile(params, p);
    if (provider)
        json_object_set(params, "provider", (json_t *)provider);
    if (c->reasoning_effort)
        json_object_set_new(params, "reasoningEffort", json_string(c->reasoning_effort));
    for (size_t i = 0; i < c->nmsgs; i++)
        if (conv_msg_has_image(&c->msgs[i])) {
            json_object_set_new(params, "modelCapabilities",
                                json_pack("{s:{s:b}}", "supports", "vision", 1));
            break;
        }
    /* The user's own identity (a BYOK session has none: the runtime refuses both), with
     * their organisation's Copilot policy applied by the runtime (fail-closed). */
    if (github_token && *github_token && !provider) {
        json_object_set_new(params, "gitHubToken", json_string(github_token));
        json_object_set_new(params, "enableManagedSettings", json_true());
    }
    return params;
}

json_t *profile_decide(const struct session_profile *p, const char *principal,
                       const struct perm_request *rq)
{
    json_t *d = NULL;
    const char *kind;

    if (p && p->ops && p->ops->decide)
        d = p->ops->decide(p->ops_ud, principal, rq);
    kind = json_string_value(json_object_get(d, "kind"));
    /* Only one-off or session-scoped answers: never a standing approval of everything. */
    if (!kind || strcmp(kind, "approve-all") == 0 || strcmp(kind, "approve-permanently") == 0) {
        json_decref(d);
        d = json_pack("{s:s}", "kind", "user-not-available");
    }
    return d;
}
