/*
 * broker/profile.h - who asks, and what kind of runtime session serves them.
 *
 * A principal names who is asking: "anon" on open loopback, "key:<16 hex of
 * SHA-256(key)>" for a configured --api-key, later "user:<name>" for a
 * virtual key's user.  It is never a secret and is stable across restarts
 * (persisted sessions are found again by it).  No two principals ever share
 * a runtime session: the principal is part of the conversation hash root
 * (broker/hash.h), and of an X-Session-Id / metadata.user_id pin.
 *
 * A session profile says how a runtime session is created: the system
 * message mode, which built-in tools, MCP servers and custom agents it has,
 * whether permission prompts and hooks come to the gateway, its working
 * directory.  The broker builds session.create/session.resume parameters from
 * the profile and the conversation (profile_session_params()); it has no
 * profile of its own.  Today's only profile is the "pure model" one
 * (profile_pure_model): the client's system prompt verbatim, the client's
 * tools only, no built-ins, permission prompts denied by the runtime.  Agent
 * profiles (issue 10) are built from the config file.
 *
 * Ownership: profiles are built once at start-up and outlive the broker
 *   (sessions keep a pointer to theirs).  The broker borrows them.
 * Threading: event-loop thread only; the callbacks run on it.
 */
#ifndef GW_BROKER_PROFILE_H
#define GW_BROKER_PROFILE_H

#include <stdint.h>

#include <jansson.h>

#include "broker/conv.h"

#define PRINCIPAL_MAX 80 /* longest principal id, with its NUL */

/* A permission prompt the runtime raised (permission.requested), borrowed. */
struct perm_request {
    const char *session_id;
    const char *request_id;      /* the runtime's id of the prompt */
    const char *turn_request_id; /* the gateway request whose turn runs, or NULL */
    const char *kind;            /* permissionRequest.kind: "shell", "write", "read", "mcp", "url", ... */
    const json_t *request;       /* the whole permissionRequest object */
};

/*
 * A hooks.invoke request the runtime sent about a session (runtime-requests.md),
 * with what the broker knows about it; all borrowed for the call.
 */
struct hook_call {
    const char *principal;  /* who the session belongs to */
    const char *session_id; /* the runtime session the request names */
    const char *request_id; /* the request whose turn is running, or NULL */
    const char *hook_type;  /* "preToolUse", "postToolUse", ... */
    const json_t *input;    /* its input object */
    const char *subagent;   /* the custom agent running the call (a sub-agent's hooks name
                             * its own input.sessionId, mapped through subagent.started),
                             * or NULL for the session's own agent */
    int client_tool;        /* input.toolName is a tool the client declared: it goes back to
                             * the client, the profile's policy does not apply */
};

/*
 * Hooks and the permission decider a profile brings.  Every member may be
 * NULL.  decide() returns the decision object sent back with
 * session.permissions.handlePendingPermissionRequest (new reference), e.g.
 * {"kind":"approve-once"} or {"kind":"reject","feedback":"..."}; NULL, or no
 * decide() at all, means {"kind":"user-not-available"}: denied.  Never
 * approve-all.  hook() answers a hooks.invoke request: its output object
 * (new reference), or NULL for "no change".
 */
struct profile_ops {
    json_t *(*decide)(void *ud, const char *principal, const struct perm_request *rq);
    json_t *(*hook)(void *ud, const struct hook_call *hc);
};

struct session_profile {
    const char *id;              /* hashed into the conversation root: "model", "agent/logs" */
    const char *system_mode;     /* "replace": instructions (if any), then the client's
                                  * system prompt, as the whole system message;
                                  * "append": the same, after the runtime's own */
    const char *instructions;    /* the profile's own system text, or NULL */
    const char *const *available_tools; /* runtime tools offered besides the client's
                                  * (NULL-terminated, runtime spelling: "bash", "mcp:*"), or NULL */
    const char *const *excluded_tools;  /* NULL-terminated or NULL; sent with
                                  * toolFilterPrecedence "excluded" */
    json_t *mcp_servers;         /* the session.create mcpServers object, or NULL */
    json_t *custom_agents;       /* the customAgents array, or NULL */
    const char *const *default_excluded_tools; /* NULL-terminated or NULL: tools of
                                  * available_tools only the custom agents may use (sent as
                                  * defaultAgent.excludedTools) */
    const char *agent;           /* custom agent pinned for the session, or NULL */
    const char *workdir;         /* working directory; NULL: the broker's empty one */
    int request_permission;      /* 1: prompts go to ops.decide; 0: the runtime denies them */
    int hooks;                   /* 1: session.create {hooks: true}, requests go to ops.hook */
    json_t *managed_settings;    /* the session.create managedSettings object, or NULL */
    int64_t max_tool_calls;      /* tool calls the runtime may run per turn (0: no limit) */
    int64_t timeout_ms;          /* a turn's deadline (0: the broker's --turn-timeout) */
    int max_sessions;            /* its live sessions at most: past it the least recently used
                                  * idle one is detached (dormant); 0: only the broker's cap */
    const struct profile_ops *ops; /* or NULL */
    void *ops_ud;
};

/* The "pure model" profile: id "model", system "replace", no built-ins, no prompts. */
extern const struct session_profile profile_pure_model;

/*
 * The session.create / session.resume parameters for a session of profile p
 * (NULL: profile_pure_model) serving conversation c (new reference).
 * provider is the BYOK provider object (borrowed; NULL: Copilot), workdir the
 * broker's empty directory (used unless the profile has its own),
 * github_token the principal's own token (sent as gitHubToken) or NULL.
 *
 * The pure-model profile gives exactly the parameters of a "pure model"
 * session: systemMessage {mode:"replace", content: the client's system
 * prompt}, availableTools = the client's tools (declared with
 * skipPermission), requestPermission false, infinite sessions, memory,
 * skills, file hooks, session store, telemetry and git operations off,
 * customAgentsLocalOnly.  Other profiles add to that:
 *   instructions          systemMessage content: instructions "\n\n" client system
 *   system_mode "append"  systemMessage mode "append" (after the runtime's own)
 *   available_tools       appended to availableTools (the client's stay)
 *   excluded_tools        excludedTools, toolFilterPrecedence "excluded"
 *   mcp_servers           mcpServers;  custom_agents: customAgents
 *   default_excluded_tools  defaultAgent {excludedTools}
 *   agent                 agent (the custom agent the session is pinned to)
 *   workdir               workingDirectory
 *   request_permission    requestPermission true (prompts: profile_decide())
 *   hooks                 hooks true (requests: ops->hook)
 *   managed_settings      managedSettings (the runtime's own deny list: a second fence)
 */
json_t *profile_session_params(const struct session_profile *p, const struct conv *c,
                               const char *session_id, const json_t *provider,
                               const char *workdir, const char *github_token);

/*
 * The answer to a permission prompt of a session of profile p (new
 * reference): ops->decide()'s decision, or {"kind":"user-not-available"}
 * when there is none, it has no kind, or it is a standing approval
 * ("approve-all", "approve-permanently"), which a gateway never gives.
 */
json_t *profile_decide(const struct session_profile *p, const char *principal,
                       const struct perm_request *rq);

#endif
