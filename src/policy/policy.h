/*
 * policy/policy.h - an agent's permission policy: may this tool call run?
 *
 * An agent (agent/config.h) offers the model built-in runtime tools (bash,
 * view, grep, ...), MCP tools ("<server>-<tool>") and delegation to other
 * agents (the runtime's `task` tool).  Every call the runtime is about to run
 * reaches the gateway as a preToolUse hook {toolName, toolArgs}; policy_check()
 * decides it from the agent's rules.  Deny by default: a call runs only if an
 * allow rule covers everything it does and no deny rule matches any of it.
 *
 * Kinds and what a call is checked as (tool names and argument names as
 * runtime 1.0.85 spells them, tools.list):
 *   shell  bash {command}: every command of the line (pipelines, ;, &&, ||,
 *          subshells, $(...) and `...`, bash -c / sh -c strings, the command
 *          run by wrappers such as env, xargs, timeout, nice, nohup, sudo,
 *          find -exec) is checked by name (basename of argv[0]) against
 *          shell rules; an output redirection to a file (>, >>, &>, 2>, >|,
 *          tee's file arguments) is also a write of that path (except
 *          /dev/null, /dev/stdout, /dev/stderr); an input redirection (<)
 *          is a read.  A line that cannot be understood (unbalanced quotes,
 *          a command name that is an expansion like $CMD or $(...), a here-doc
 *          body is fine but its delimiter must parse) is denied: the policy
 *          never guesses.  read_bash, stop_bash, list_bash (they only look at
 *          shells bash started) are allowed whenever bash is (any shell allow
 *          rule exists).
 *          Arguments are not checked: `cat /etc/passwd` is allowed when cat
 *          is (only redirections are paths the policy sees).  A command that
 *          runs code it is given (bash, sh, eval, source, python3, node, perl,
 *          git with its hooks and aliases, make, trap, watch, ssh, a program
 *          reading a script from stdin) is as powerful as the whole shell:
 *          allowing it allows everything; only the wrappers listed above,
 *          plus exec, command, builtin, time, stdbuf, ionice, setsid,
 *          chroot, doas and busybox, are looked through.
 *   read   view {path}, glob {pattern, paths}, grep {pattern, paths}: each path
 *          (workdir when absent) must lie under a read root (or a write root);
 *          paths may be a string or an array of strings.  A glob pattern (or
 *          grep's glob) that is absolute is also a read of its fixed
 *          directory part; one that climbs with ".." is denied.
 *   write  create {path}, edit {path}: the path must lie under a write root.
 *   url    web_fetch {url}: the URL's host (lower case, no port, no userinfo)
 *          must match a url rule; only http and https.  A URL with a
 *          backslash, a '%' in its authority, spaces, control or non-ASCII
 *          bytes is denied (parsers disagree on those).
 *   mcp    a tool named "<server>-<tool>" for a configured MCP server: the
 *          whole name must match an mcp rule (glob, `*` and `?`).
 *   agent  task {agent_type}: agent_type must match an agent rule (the
 *          agent's `delegates`); read_agent, write_agent, list_agents are
 *          allowed whenever any agent rule exists.
 * Any other tool name (skill included) is denied ("denied by policy:
 * unknown tool NAME").  Tools the client itself
 * declared are not the policy's business (they go back to the client) and
 * must not be passed here.
 *
 * Paths.  A relative path is taken relative to the agent's workdir.  Paths
 * and roots are compared after resolution: ".", ".." and symbolic links are
 * resolved through the file system (realpath(3) of the longest existing
 * prefix, the rest appended after removing "." and rejecting any remaining
 * ".."), so neither "../" nor a symlink inside a root escapes it.  A root
 * covers itself and everything below it ("/srv/app" does not cover
 * "/srv/application").  Path rules are roots, not globs.
 *
 * Rules.  Each kind has an allow and a deny list (NULL-terminated, NULL for
 * none).  shell: command names, glob allowed ("git", "python3*").  url: host
 * names, exact or glob ("*.corp.example").  mcp, agent: globs.  read, write:
 * absolute path roots.  deny wins over allow.  An exact spelling always
 * matches itself, so a url rule "[::1]" is not a bracket expression.  A deny
 * read root also refuses writes below it.
 *
 * Ownership: struct policy and its lists belong to the caller (agent config);
 *   policy_check() borrows them and fills a caller struct.
 * Threading: pure apart from reading the file system for path resolution;
 *   any thread.
 */
#ifndef GW_POLICY_POLICY_H
#define GW_POLICY_POLICY_H

#include <stddef.h>

#include <jansson.h>

enum pol_kind { POL_SHELL, POL_READ, POL_WRITE, POL_URL, POL_MCP, POL_AGENT, POL_NKINDS };

/* "shell", "read", "write", "url", "mcp", "agent". */
const char *policy_kind_name(enum pol_kind k);

struct policy {
    char **allow[POL_NKINDS]; /* NULL-terminated, or NULL */
    char **deny[POL_NKINDS];  /* NULL-terminated, or NULL */
    const char *workdir;      /* absolute; relative paths are taken from here */
    char **mcp_servers;       /* NULL-terminated names of the agent's MCP servers, or NULL */
    /* policy_resolve_roots(): the read and write roots resolved once, parallel to allow[k] /
     * deny[k] ("" for a root that did not resolve then: resolved at each check), or NULL:
     * every root is resolved at each check (a fresh realpath per root per path). */
    char **allow_real[POL_NKINDS];
    char **deny_real[POL_NKINDS];
};

/*
 * Resolves the read and write roots once (at load): a check then compares against those
 * paths instead of resolving each root again (measured: most of a path check's 25-120 us
 * was the roots' readlink calls).  A root's symlinks are followed as they are now; one
 * re-pointed later keeps its old target until the gateway restarts, and a root that does not
 * exist yet is resolved at each check until it does.  policy_roots_free() undoes it.
 */
void policy_resolve_roots(struct policy *p);
void policy_roots_free(struct policy *p);

#define POL_TARGET_MAX 1024 /* longer targets are cut (with "...") */
#define POL_RULE_MAX 300

/* What policy_check() decided about one tool call. */
struct pol_verdict {
    int allow;                    /* 1: may run; 0: denied */
    enum pol_kind kind;           /* the call's kind (when denied: of the part that was denied) */
    char target[POL_TARGET_MAX];  /* the call's target: command line, resolved path, URL,
                                   * "<server>-<tool>", agent name (when denied: the part
                                   * that was denied, e.g. the one command or path) */
    char rule[POL_RULE_MAX];      /* the rule that decided, as "kind(pattern)": "shell(rm)",
                                   * "read(/srv/app/logs)"; for an allowed call every allow
                                   * rule it needed, comma-separated: "shell(grep),shell(wc)"
                                   * (read_bash etc.: the first shell rule, as they follow
                                   * bash; "..." ends a list too long); for a default denial the part
                                   * that no rule allows, "shell(curl)", "write(/etc/x)";
                                   * for a call the policy cannot read, "shell(?)" etc. */
    int by_default;               /* denied because no allow rule covers it (not a deny rule) */
    char reason[POL_RULE_MAX];    /* the text the model gets when denied:
                                   * "denied by policy: shell(rm)",
                                   * "denied by policy: no rule allows shell(curl)",
                                   * "denied by policy: cannot parse the command line";
                                   * for an allowed call "" */
};

/*
 * The first denial decides the verdict: deny rules are looked for across the
 * whole call first (so `curl x; rm y` is denied by shell(rm), not by the
 * missing curl rule), then allow rules.
 *
 * Decides whether tool (toolName) with args (toolArgs, any JSON, may be NULL
 * or not an object: then the call is denied) may run under p.  Always fills
 * *v; returns v->allow.
 */
int policy_check(const struct policy *p, const char *tool, const json_t *args,
                 struct pol_verdict *v);

/*
 * Managed-settings deny strings mirroring p's deny rules, for the runtime's
 * own second fence (session.create managedSettings.permissions.deny): a new
 * JSON array of strings such as "shell(rm)", "shell(rm *)".  Only kinds the
 * runtime's rule grammar is known to enforce are mirrored (shell).
 */
json_t *policy_managed_deny(const struct policy *p);

/* ---- the shell line reader, exposed for tests and the fuzzer ---------------------------- */

/* One thing a command line does. */
struct shell_op {
    enum pol_kind kind; /* POL_SHELL: a command named `name` runs; POL_READ/POL_WRITE: a
                         * redirection reads/writes the path `name` (as written) */
    char *name;
};

struct shell_ops {
    struct shell_op *v;
    size_t n;
};

/*
 * Everything line does, in order: the commands it runs (by name, as written
 * in argv[0]; callers take the basename) and the files its redirections
 * read and write (writes: > >> >| &> &>> <> >&FILE and tee's files; reads: <
 * and <&FILE; dups to a descriptor, here-strings and here-documents are no
 * file).  Returns 0, or -1 when the line cannot be understood
 * (why says what, e.g. "unbalanced quote"); out is then empty.  Never
 * executes or expands anything.  Lines over 64 KiB or nesting deeper than
 * 16 levels are refused.
 */
int shell_read(const char *line, struct shell_ops *out, char *why, size_t whylen);
void shell_ops_free(struct shell_ops *ops);

#endif
