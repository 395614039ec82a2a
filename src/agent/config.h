/*
 * agent/config.h - server-side agents from the config file's `agents:` section.
 *
 *   agents:
 *     logs:                                  # served as model "agent/logs"
 *       description: Finds errors in the application logs
 *       model: gpt-5-mini                    # required: the model it runs on
 *       instructions: |                      # its system prompt (or instructions-file: PATH,
 *         You are a log analyst. ...         #   exactly one of the two)
 *       workdir: /srv/app/logs               # required; must exist (a directory)
 *       tools: [bash, view, grep, glob]      # built-in runtime tools it is offered
 *       mcp-servers:
 *         elk:                               # stdio: command (+ args, env, cwd)
 *           command: /opt/mcp/elk-server     # remote: url (+ headers); not both
 *           args: [--index, app-*]
 *           env: {ELK_URL: "http://elk.internal:9200"}
 *           tools: [search, get_document]    # the server's tools offered (default: all)
 *           timeout-s: 60                    # per tool call (default 60)
 *         grafana:
 *           url: http://grafana-mcp.internal/mcp
 *           type: http                       # http (default for url) or sse
 *           headers: {Authorization: "Bearer ${GRAFANA_TOKEN}"}
 *       allow: {shell: [...], read: [...], write: [...], url: [...], mcp: [...]}
 *       deny:  {same keys}                   # wins over allow
 *       delegates: [sql]                     # other agents it may hand sub-tasks to
 *       max-tool-calls: 50                   # per request (default 50, 1..10000)
 *       timeout-s: 300                       # per request (default 300, 1..86400)
 *
 * Checked at start-up, every error naming FILE:LINE and the key path
 * ("agents.logs.workdir"): unknown keys, wrong types, a missing model or
 * workdir, a workdir that is not an existing directory, relative read/write
 * roots, an unknown built-in tool name, an MCP server with both or neither of
 * command and url, a delegate that names no agent (or the agent itself), an
 * agent name that is not [a-z0-9][a-z0-9_-]{0,63}, an instructions-file that
 * cannot be read, ${VAR} naming an unset variable.  Also refused: both or
 * neither of instructions and instructions-file (a file must be a regular
 * file of at most 256 KiB; relative paths, like a relative workdir, are taken
 * from the gateway's current directory), an MCP server name that is not
 * [A-Za-z0-9][A-Za-z0-9_-]{0,63}, a stdio command that is empty, starts with
 * '-' or holds '=' (env(1) would read it as an option or a variable), an env
 * name that is not [A-Za-z_][A-Za-z0-9_]*, a url that is not http(s), a type
 * that contradicts command/url, args/env/cwd on a remote server, headers on a
 * stdio one.  Only `serve` loads agents; other commands ignore the section.
 *
 * ${VAR} in mcp-servers env values and headers values is replaced by the
 * gateway's environment variable VAR at start-up ($$ is a literal $).
 *
 * A stdio MCP server is started by the runtime, once per session that uses it
 * (operations reference §6.4), with exactly the environment its config gives
 * plus PATH, HOME and LANG (the gateway's values, HOME the agent's workdir when
 * the gateway has none): the command the runtime receives is /usr/bin/env -i
 * PATH=... HOME=... LANG=... K=V... <command> <args...>, so nothing of the
 * gateway's or the runtime's own environment (GitHub tokens, keys) reaches it.
 *
 * Each agent carries the session profile its sessions are created with
 * (broker/profile.h): id "agent/<name>", the instructions as the system message
 * (then the client's system prompt, if any), availableTools = its tools (bare
 * names) plus "mcp:*" when it has servers (each server's `tools` filter goes
 * into that server's config, where the runtime applies it; ["*"] without one)
 * plus "task", "read_agent", "list_agents", "write_agent" when it has
 * delegates, mcpServers = its own servers only, customAgents = its delegates
 * ({name, description, prompt, tools, mcpServers, infer: true, model}; tools =
 * the delegate's built-in tools and "<server>-<tool>" for its filtered
 * servers, or null (all) when one of its servers has no filter), workingDirectory
 * = workdir, requestPermission and hooks on, managedSettings
 * {"permissions": {"deny": policy_managed_deny()}} when that list is not empty,
 * max_tool_calls, timeout_ms = timeout-s * 1000.  Its policy gets the allow and
 * deny lists, allow[POL_AGENT] = delegates, workdir and the server names.  The
 * profile's ops (the decider and the hooks) are set by whoever runs agents
 * (agent/agent.h), not here.
 *
 * Ownership: agents_load() fills an owned struct agents; agents_free() frees it
 *   (and the profiles inside, which sessions borrow: free only after the broker).
 * Threading: none; built once at start-up, read-only after.
 */
#ifndef GW_AGENT_CONFIG_H
#define GW_AGENT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/profile.h"
#include "policy/policy.h"
#include "util/cfg.h"
#include "util/err.h"

#define AGENT_MODEL_PREFIX "agent/"

struct agent_mcp {
    char *name;
    int remote;     /* 1: url (http/sse); 0: stdio command */
    char *type;     /* "stdio", "http" or "sse" */
    char *command;  /* stdio */
    char **args;    /* NULL-terminated, or NULL */
    char **env;     /* "K=V" after ${VAR} expansion, NULL-terminated, or NULL */
    char *cwd;      /* or NULL (the agent's workdir) */
    char *url;      /* remote */
    json_t *headers; /* remote: {name: value} after ${VAR} expansion, or NULL */
    char **tools;   /* NULL-terminated, or NULL: all */
    int64_t timeout_s;
    char **refs;    /* the ${VAR} names its env and headers read, NULL-terminated, or NULL */
};

struct agent {
    char *name;          /* "logs" */
    char *model_id;      /* "agent/logs" */
    char *description;   /* or NULL */
    char *model;         /* the model it runs on */
    char *instructions;  /* the text (read from instructions-file when given) */
    char *workdir;       /* absolute, resolved (realpath) */
    char **tools;        /* built-in tool names, NULL-terminated, or NULL */
    struct agent_mcp *mcp;
    size_t nmcp;
    char **delegates;    /* agent names, NULL-terminated, or NULL */
    int64_t max_tool_calls;
    int64_t timeout_s;
    int64_t max_sessions; /* live runtime sessions at most (each runs its stdio MCP servers) */
    struct policy policy;          /* rules; workdir and mcp_servers filled in */
    struct session_profile profile; /* how its sessions are created (ops left NULL) */
    /* what the profile points to (owned) */
    char **available_tools;
    char **delegate_only_tools; /* built-in tools only its delegates are given, or NULL */
    json_t *mcp_servers_json;
    json_t *custom_agents_json;
    json_t *managed_settings_json;
};

struct agents {
    struct agent *v; /* n agents, in file order */
    size_t n;
};

/* The built-in runtime tools an agent's `tools` may name (runtime 1.0.85). */
extern const char *const agent_builtin_tools[];

/*
 * Decodes and checks the `agents:` mapping (node from cfg_file_node(c, "agents"),
 * NULL when absent: no agents).  On error returns GW_EINVAL with err naming
 * FILE:LINE and the key, and *out is empty.
 */
int agents_load(const struct ynode *node, struct agents *out, struct gw_err *err) WARN_UNUSED;

/* The agent served as model id ("agent/logs"), or NULL. */
const struct agent *agents_find(const struct agents *a, const char *model_id);
/* The agent called name ("logs"), or NULL. */
const struct agent *agents_find_name(const struct agents *a, const char *name);

void agents_free(struct agents *a);

/*
 * The gateway's environment variables the agents' MCP servers are given through ${VAR}
 * (their secrets: the runtime, and so the agents' tools, must not see them).  A new
 * NULL-terminated array of borrowed names, each once, valid while a lives; free() it.
 */
const char **agents_env_refs(const struct agents *a);

#endif
