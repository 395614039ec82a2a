/* Agents from the config file: decode and check the `agents:` section, then build each
 * agent's policy and session profile. */
#include "agent/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/buf.h"
#include "util/xmalloc.h"

const char *const agent_builtin_tools[] = {
    "bash",   "read_bash", "stop_bash", "list_bash", "glob", "grep",
    "create", "edit",      "view",      "web_fetch", NULL,
};

/* The runtime's delegation tools, offered when an agent has delegates. */
static const char *const delegation_tools[] = {"task", "read_agent", "list_agents", "write_agent",
                                               NULL};

#define INSTRUCTIONS_MAX (256 * 1024) /* largest instructions-file read */
#define EXPANDED_MAX (64 * 1024)      /* largest env or header value after ${VAR} expansion */

/* ---- the schema --------------------------------------------------------------------------- */

struct d_rules {
    struct cfg_strlist shell, read, write, url, mcp;
};

struct d_mcp {
    char *name;
    char *command;
    struct cfg_strlist args;
    struct cfg_strmap env;
    char *cwd;
    char *url;
    char *type;
    struct cfg_strmap headers;
    struct cfg_strlist tools;
    int64_t timeout_s;
};

struct d_agent {
    char *name;
    char *description;
    char *model;
    char *instructions;
    char *instructions_file;
    char *workdir;
    struct cfg_strlist tools;
    struct cfg_entries mcp; /* struct d_mcp */
    struct d_rules allow, deny;
    struct cfg_strlist delegates;
    int64_t max_tool_calls, timeout_s, max_sessions;
};

struct d_root {
    struct cfg_entries agents; /* struct d_agent */
};

#define R(f) offsetof(struct d_rules, f)
static const struct cfg_field rule_fields[] = {
    {.name = "shell", .type = CFG_LIST, .off = R(shell)},
    {.name = "read", .type = CFG_LIST, .off = R(read)},
    {.name = "write", .type = CFG_LIST, .off = R(write)},
    {.name = "url", .type = CFG_LIST, .off = R(url)},
    {.name = "mcp", .type = CFG_LIST, .off = R(mcp)},
};
#undef R
static const struct cfg_schema rule_schema = {rule_fields, 5, sizeof(struct d_rules), 0, 0};

static const char *const mcp_types[] = {"stdio", "http", "sse", NULL};
#define M(f) offsetof(struct d_mcp, f)
static const struct cfg_field mcp_fields[] = {
    {.name = "command", .type = CFG_STR, .off = M(command)},
    {.name = "args", .type = CFG_LIST, .off = M(args)},
    {.name = "env", .type = CFG_MAP, .off = M(env)},
    {.name = "cwd", .type = CFG_STR, .off = M(cwd)},
    {.name = "url", .type = CFG_STR, .off = M(url)},
    {.name = "type", .type = CFG_ENUM, .off = M(type), .choices = mcp_types},
    {.name = "headers", .type = CFG_MAP, .off = M(headers)},
    {.name = "tools", .type = CFG_LIST, .off = M(tools)},
    {.name = "timeout-s",
     .type = CFG_INT,
     .off = M(timeout_s),
     .def = "60",
     .min = 1,
     .max = 86400},
};
#undef M
static const struct cfg_schema mcp_schema = {mcp_fields, 9, sizeof(struct d_mcp),
                                             offsetof(struct d_mcp, name), 0};

#define A(f) offsetof(struct d_agent, f)
static const struct cfg_field agent_fields[] = {
    {.name = "description", .type = CFG_STR, .off = A(description)},
    {.name = "model", .type = CFG_STR, .off = A(model), .flags = CFG_REQUIRED},
    {.name = "instructions", .type = CFG_STR, .off = A(instructions)},
    {.name = "instructions-file", .type = CFG_STR, .off = A(instructions_file)},
    {.name = "workdir", .type = CFG_STR, .off = A(workdir), .flags = CFG_REQUIRED},
    {.name = "tools", .type = CFG_LIST, .off = A(tools)},
    {.name = "mcp-servers", .type = CFG_ENTRIES, .off = A(mcp), .sub = &mcp_schema},
    {.name = "allow", .type = CFG_SECTION, .off = A(allow), .sub = &rule_schema},
    {.name = "deny", .type = CFG_SECTION, .off = A(deny), .sub = &rule_schema},
    {.name = "delegates", .type = CFG_LIST, .off = A(delegates)},
    {.name = "max-tool-calls",
     .type = CFG_INT,
     .off = A(max_tool_calls),
     .def = "50",
     .min = 1,
     .max = 10000},
    {.name = "timeout-s",
     .type = CFG_INT,
     .off = A(timeout_s),
     .def = "300",
     .min = 1,
     .max = 86400},
    {.name = "max-sessions",
     .type = CFG_INT,
     .off = A(max_sessions),
     .def = "8",
     .min = 1,
     .max = 100000},
};
#undef A
static const struct cfg_schema agent_schema = {agent_fields, 13, sizeof(struct d_agent),
                                               offsetof(struct d_agent, name), 0};

static const struct cfg_field root_fields[] = {
    {.name = "agents",
     .type = CFG_ENTRIES,
     .off = offsetof(struct d_root, agents),
     .sub = &agent_schema},
};
static const struct cfg_schema root_schema = {root_fields, 1, sizeof(struct d_root), 0, 0};

/* ---- where a value was written, for messages ---------------------------------------------- */

/* Checks after decoding name the node of the value: the key path is rebuilt here. */
struct at {
    const struct ynode *node; /* the mapping being checked */
    char path[200];           /* its key path */
    struct gw_err *err;
    const char *base;         /* the config file's directory: relative paths start there */
};

static void at_init(struct at *a, const struct at *parent, const struct ynode *node,
                    const char *key, struct gw_err *err)
{
    a->node = node;
    a->err = err;
    a->base = parent ? parent->base : ".";
    snprintf(a->path, sizeof(a->path), "%s%s%s", parent ? parent->path : "", parent ? "." : "",
             key);
    for (char *p = a->path; *p; p++) /* as ypath does: names are echoed in messages */
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

static int at_fail(const struct at *a, const char *key, long index, const char *fmt, ...)
    PRINTF(4, 5);
/* Fails naming a->path.key (and [index] when index >= 0) at the value's line. */
static int at_fail(const struct at *a, const char *key, long index, const char *fmt, ...)
{
    const struct ynode *v = key ? ynode_get(a->node, key) : NULL, *n = v ? v : a->node;
    char path[260], msg[300];
    va_list ap;

    if (v && index >= 0 && v->kind == YNODE_SEQ && (size_t)index < v->len)
        n = v->items[index];
    if (!key)
        snprintf(path, sizeof(path), "%s", a->path);
    else if (index >= 0 && v && v->kind == YNODE_SEQ)
        snprintf(path, sizeof(path), "%s.%s[%ld]", a->path, key, index);
    else
        snprintf(path, sizeof(path), "%s.%s", a->path, key);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ydoc_errf(a->err, n->file ? n->file : "(none)", n->line, path, "%s", msg);
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* a b c concatenated (owned). */
static char *join3(const char *a, const char *b, const char *c)
{
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *s = xmalloc(na + nb + nc + 1);

    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    memcpy(s + na + nb, c, nc + 1);
    return s;
}

/* p as written in the file: an absolute path, or one relative to base, resolved (realpath)
 * when it exists (new string). */
static char *from_base(const char *base, const char *p)
{
    char real[PATH_MAX];
    char *j;

    if (p[0] == '/')
        return xstrdup(p);
    j = join3(base, "/", p);
    if (realpath(j, real)) {
        free(j);
        return xstrdup(real);
    }
    return j;
}

static char **strv_dup(const struct cfg_strlist *l)
{
    char **v;

    if (!l->n)
        return NULL;
    v = xcalloc(l->n + 1, sizeof(*v));
    for (size_t i = 0; i < l->n; i++)
        v[i] = xstrdup(l->v[i]);
    return v;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static json_t *strv_json(char *const *v)
{
    json_t *a = json_array();

    for (size_t i = 0; v && v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* [a-z0-9][a-z0-9_-]{0,63}; uppercase too when upper. */
static int good_name(const char *s, int upper)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64 || s[0] == '-' || s[0] == '_')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(islower(c) || isdigit(c) || c == '-' || c == '_' || (upper && isupper(c))))
            return 0;
    }
    return 1;
}

/* An environment variable name: [A-Za-z_][A-Za-z0-9_]*. */
static int good_var(const char *s, size_t n)
{
    if (n == 0 || isdigit((unsigned char)s[0]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

/*
 * ${VAR} in s replaced by the gateway's environment, $$ by $, any other $ kept.  On error
 * (unset variable, bad or unclosed ${...}) fills why (naming the variable, never a value).
 */
static char *expand(const char *s, struct agent_mcp *m, char *why, size_t whylen)
{
    struct buf b;
    int rc = 0;

    buf_init(&b, EXPANDED_MAX);
    while (!rc && *s) {
        size_t lit = strcspn(s, "$");
        rc = buf_add(&b, s, lit);
        s += lit;
        if (rc || !*s)
            break;
        if (s[1] == '$') {
            rc = buf_add(&b, "$", 1);
            s += 2;
        } else if (s[1] == '{') {
            const char *end = strchr(s + 2, '}');
            char name[128];
            const char *val;
            if (!end || !good_var(s + 2, (size_t)(end - s - 2)) ||
                (size_t)(end - s - 2) >= sizeof(name)) {
                snprintf(why, whylen, "bad ${...} reference (write $$ for a literal $)");
                buf_release(&b);
                return NULL;
            }
            memcpy(name, s + 2, (size_t)(end - s - 2));
            name[end - s - 2] = '\0';
            val = getenv(name);
            if (!val) {
                snprintf(why, whylen, "environment variable '%s' is not set", name);
                buf_release(&b);
                return NULL;
            }
            rc = buf_add(&b, val, strlen(val));
            s = end + 1;
            size_t n = 0;
            while (m->refs && m->refs[n])
                n++;
            m->refs = xrealloc(m->refs, (n + 2) * sizeof(char *));
            m->refs[n] = xstrdup(name);
            m->refs[n + 1] = NULL;
        } else {
            rc = buf_add(&b, "$", 1);
            s++;
        }
    }
    if (rc) {
        snprintf(why, whylen, "value too long after ${VAR} expansion");
        buf_release(&b);
        return NULL;
    }
    return buf_take(&b, NULL);
}

/* The text of a regular file of at most INSTRUCTIONS_MAX bytes, or NULL (why says). */
static char *read_text(const char *path, char *why, size_t whylen)
{
    struct stat st;
    FILE *f;
    char *s;
    size_t n;

    if (stat(path, &st) != 0) {
        snprintf(why, whylen, "cannot read '%.100s': %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > INSTRUCTIONS_MAX) {
        snprintf(why, whylen, "cannot read '%.100s': %s", path,
                 S_ISREG(st.st_mode) ? "larger than 256 KiB" : "not a regular file");
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot read '%.100s': %s", path, strerror(errno));
        return NULL;
    }
    s = xmalloc((size_t)st.st_size + 1);
    n = fread(s, 1, (size_t)st.st_size, f);
    fclose(f);
    s[n] = '\0';
    if (strlen(s) != n) {
        free(s);
        snprintf(why, whylen, "cannot read '%.100s': contains a NUL byte", path);
        return NULL;
    }
    return s;
}

/* ---- one MCP server ----------------------------------------------------------------------- */

/* A remote server: url (http or https) and headers after ${VAR} expansion. */
static int mcp_remote(const struct at *a, const struct d_mcp *d, struct agent_mcp *m)
{
    char why[200];
    struct at h;

    if (d->args.n || d->env.n || d->cwd)
        return at_fail(a,
                       d->args.n  ? "args"
                       : d->env.n ? "env"
                                  : "cwd",
                       -1, "only a stdio server (command) takes this");
    if (strncmp(d->url, "http://", 7) != 0 && strncmp(d->url, "https://", 8) != 0)
        return at_fail(a, "url", -1, "expected an http:// or https:// URL");
    m->url = xstrdup(d->url);
    at_init(&h, a, ynode_get(a->node, "headers"), "headers", a->err);
    if (d->headers.n)
        m->headers = json_object();
    for (size_t i = 0; i < d->headers.n; i++) {
        char *v = expand(d->headers.values[i], m, why, sizeof(why));
        if (!v)
            return at_fail(&h, d->headers.keys[i], -1, "%s", why);
        if (strpbrk(v, "\r\n")) {
            free(v);
            return at_fail(&h, d->headers.keys[i], -1, "a header value cannot hold a line break");
        }
        json_object_set_new(m->headers, d->headers.keys[i], json_string(v));
        free(v);
    }
    return GW_OK;
}

/* A stdio server: command, args, cwd, env as "K=V" after ${VAR} expansion. */
static int mcp_stdio(const struct at *a, const struct d_mcp *d, struct agent_mcp *m)
{
    char why[200];
    struct at e;

    if (d->headers.n)
        return at_fail(a, "headers", -1, "only a remote server (url) takes this");
    /* /usr/bin/env reads options, then NAME=VALUE words until the command. */
    if (!*d->command || d->command[0] == '-' || strchr(d->command, '='))
        return at_fail(a, "command", -1, "a command cannot be empty, start with '-' or hold '='");
    /* a command with a '/' is a path (relative: to the file's directory), else found on PATH */
    m->command = strchr(d->command, '/') ? from_base(a->base, d->command) : xstrdup(d->command);
    m->args = strv_dup(&d->args);
    m->cwd = d->cwd ? from_base(a->base, d->cwd) : NULL;
    m->env = xcalloc(d->env.n + 1, sizeof(char *));
    at_init(&e, a, ynode_get(a->node, "env"), "env", a->err);
    for (size_t i = 0; i < d->env.n; i++) {
        char *v;
        if (!good_var(d->env.keys[i], strlen(d->env.keys[i])))
            return at_fail(&e, d->env.keys[i], -1, "not a valid environment variable name");
        v = expand(d->env.values[i], m, why, sizeof(why));
        if (!v)
            return at_fail(&e, d->env.keys[i], -1, "%s", why);
        m->env[i] = join3(d->env.keys[i], "=", v);
        free(v);
    }
    return GW_OK;
}

static int mcp_build(const struct at *ag, const struct d_mcp *d, struct agent_mcp *m)
{
    struct at a, servers;

    at_init(&servers, ag, ynode_get(ag->node, "mcp-servers"), "mcp-servers", ag->err);
    at_init(&a, &servers, ynode_get(servers.node, d->name), d->name, ag->err);
    m->name = xstrdup(d->name);
    m->timeout_s = d->timeout_s;
    m->tools = strv_dup(&d->tools);
    if (!good_name(d->name, 1))
        return at_fail(&a, NULL, -1,
                       "an MCP server name must match [A-Za-z0-9][A-Za-z0-9_-]{0,63}");
    if (!d->command == !d->url)
        return at_fail(&a, NULL, -1, "give exactly one of 'command' (stdio) and 'url' (remote)");
    m->remote = d->url != NULL;
    if (d->type && strcmp(d->type, "stdio") == 0 && m->remote)
        return at_fail(&a, "type", -1, "type stdio needs 'command', not 'url'");
    if (d->type && strcmp(d->type, "stdio") != 0 && !m->remote)
        return at_fail(&a, "type", -1, "type %s needs 'url', not 'command'", d->type);
    m->type = xstrdup(d->type ? d->type : m->remote ? "http" : "stdio");
    return m->remote ? mcp_remote(&a, d, m) : mcp_stdio(&a, d, m);
}

static void mcp_release(struct agent_mcp *m)
{
    free(m->name);
    free(m->type);
    free(m->command);
    strv_free(m->args);
    strv_free(m->env);
    free(m->cwd);
    free(m->url);
    json_decref(m->headers);
    strv_free(m->tools);
    strv_free(m->refs);
    memset(m, 0, sizeof(*m));
}

/*
 * The runtime's config of one server (operations reference §6.1).  A stdio server runs as
 * /usr/bin/env -i PATH=... HOME=... LANG=... K=V... command args..., so it gets exactly
 * the environment its config gives plus those three (the gateway's PATH or /usr/bin:/bin,
 * the gateway's HOME or the agent's workdir, the gateway's LANG or C.UTF-8).
 */
static json_t *mcp_json(const struct agent_mcp *m, const char *workdir)
{
    json_t *o = json_pack("{s:s, s:o, s:I}", "type", m->type, "tools",
                          m->tools ? strv_json(m->tools) : json_pack("[s]", "*"), "timeout",
                          (json_int_t)(m->timeout_s * 1000));
    const char *path = getenv("PATH"), *home = getenv("HOME"), *lang = getenv("LANG");
    json_t *args;
    char *kv;

    if (m->remote) {
        json_object_set_new(o, "url", json_string(m->url));
        if (m->headers)
            json_object_set(o, "headers", m->headers);
        return o;
    }
    args = json_pack("[s]", "-i");
    kv = join3("PATH=", path && *path ? path : "/usr/bin:/bin", "");
    json_array_append_new(args, json_string(kv));
    free(kv);
    kv = join3("HOME=", home && *home ? home : workdir, "");
    json_array_append_new(args, json_string(kv));
    free(kv);
    kv = join3("LANG=", lang && *lang ? lang : "C.UTF-8", "");
    json_array_append_new(args, json_string(kv));
    free(kv);
    for (size_t i = 0; m->env && m->env[i]; i++)
        json_array_append_new(args, json_string(m->env[i]));
    json_array_append_new(args, json_string(m->command));
    for (size_t i = 0; m->args && m->args[i]; i++)
        json_array_append_new(args, json_string(m->args[i]));
    json_object_set_new(o, "command", json_string("/usr/bin/env"));
    json_object_set_new(o, "args", args);
    json_object_set_new(o, "cwd", json_string(m->cwd ? m->cwd : workdir));
    return o;
}

/* {name: config} of the agent's servers, or NULL without any. */
static json_t *mcp_servers_json(const struct agent *ag)
{
    json_t *o;

    if (!ag->nmcp)
        return NULL;
    o = json_object();
    for (size_t i = 0; i < ag->nmcp; i++)
        json_object_set_new(o, ag->mcp[i].name, mcp_json(&ag->mcp[i], ag->workdir));
    return o;
}

/* ---- one agent ---------------------------------------------------------------------------- */

static int check_tools(const struct at *a, const struct d_agent *d)
{
    for (size_t i = 0; i < d->tools.n; i++) {
        size_t k = 0;
        while (agent_builtin_tools[k] && strcmp(agent_builtin_tools[k], d->tools.v[i]) != 0)
            k++;
        if (!agent_builtin_tools[k])
            return at_fail(a, "tools", (long)i,
                           "unknown tool '%.60s' (bash, read_bash, stop_bash, list_bash, glob, "
                           "grep, create, edit, view, web_fetch)",
                           d->tools.v[i]);
    }
    return GW_OK;
}

static int rules_build(const struct at *ag, const char *key, const struct d_rules *d,
                       const char *workdir, char **out[POL_NKINDS])
{
    const struct cfg_strlist *l[POL_NKINDS] = {[POL_SHELL] = &d->shell,
                                               [POL_READ] = &d->read,
                                               [POL_WRITE] = &d->write,
                                               [POL_URL] = &d->url,
                                               [POL_MCP] = &d->mcp};
    static const char *const keys[POL_NKINDS] = {[POL_SHELL] = "shell",
                                                 [POL_READ] = "read",
                                                 [POL_WRITE] = "write",
                                                 [POL_URL] = "url",
                                                 [POL_MCP] = "mcp"};
    struct at a;

    at_init(&a, ag, ynode_get(ag->node, key), key, ag->err);
    for (int k = 0; k < POL_NKINDS; k++) {
        if (!l[k])
            continue;
        out[k] = strv_dup(l[k]);
        /* path roots: relative ones are taken from the agent's workdir */
        for (size_t i = 0; (k == POL_READ || k == POL_WRITE) && i < l[k]->n; i++) {
            if (!l[k]->v[i][0])
                return at_fail(&a, keys[k], (long)i, "a path cannot be empty");
            if (out[k][i][0] != '/') {
                char *abs = from_base(workdir, out[k][i]);
                free(out[k][i]);
                out[k][i] = abs;
            }
        }
    }
    return GW_OK;
}

static int instructions_build(const struct at *a, const struct d_agent *d, struct agent *ag)
{
    char why[200];

    if (!d->instructions == !d->instructions_file)
        return at_fail(a, d->instructions ? "instructions-file" : NULL, -1,
                       "give exactly one of 'instructions' and 'instructions-file'");
    if (d->instructions) {
        ag->instructions = xstrdup(d->instructions);
        return GW_OK;
    }
    char *f = from_base(a->base, d->instructions_file);
    ag->instructions = read_text(f, why, sizeof(why));
    free(f);
    if (!ag->instructions)
        return at_fail(a, "instructions-file", -1, "%s", why);
    return GW_OK;
}

static int workdir_build(const struct at *a, const struct d_agent *d, struct agent *ag)
{
    char real[PATH_MAX];
    struct stat st;
    char *w = from_base(a->base, d->workdir);
    int ok = realpath(w, real) != NULL;

    free(w);
    if (!ok)
        return at_fail(a, "workdir", -1, "'%.100s' does not exist: %s", d->workdir,
                       strerror(errno));
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return at_fail(a, "workdir", -1, "'%.100s' is not a directory", d->workdir);
    ag->workdir = xstrdup(real);
    return GW_OK;
}

/* Everything of one agent that needs no other agent. */
static int agent_build(const struct at *a, const struct d_agent *d, struct agent *ag)
{
    int rc;

    ag->name = xstrdup(d->name);
    ag->model_id = join3(AGENT_MODEL_PREFIX, d->name, "");
    ag->description = d->description ? xstrdup(d->description) : NULL;
    ag->model = xstrdup(d->model);
    ag->tools = strv_dup(&d->tools);
    ag->delegates = strv_dup(&d->delegates);
    ag->max_tool_calls = d->max_tool_calls;
    ag->max_sessions = d->max_sessions;
    ag->timeout_s = d->timeout_s;
    if (!good_name(d->name, 0))
        return at_fail(a, NULL, -1, "an agent name must match [a-z0-9][a-z0-9_-]{0,63}");
    if (!*d->model)
        return at_fail(a, "model", -1, "the model cannot be empty");
    if ((rc = instructions_build(a, d, ag)) || (rc = workdir_build(a, d, ag)) ||
        (rc = check_tools(a, d)))
        return rc;
    ag->mcp = xcalloc(d->mcp.n ? d->mcp.n : 1, sizeof(*ag->mcp));
    for (size_t i = 0; i < d->mcp.n; i++) {
        ag->nmcp++;
        if ((rc = mcp_build(a, (const struct d_mcp *)d->mcp.v + i, &ag->mcp[i])))
            return rc;
    }
    if ((rc = rules_build(a, "allow", &d->allow, ag->workdir, ag->policy.allow)) ||
        (rc = rules_build(a, "deny", &d->deny, ag->workdir, ag->policy.deny)))
        return rc;
    return GW_OK;
}

static int check_delegates(const struct at *a, const struct agents *as, const struct agent *ag)
{
    for (size_t i = 0; ag->delegates && ag->delegates[i]; i++) {
        if (strcmp(ag->delegates[i], ag->name) == 0)
            return at_fail(a, "delegates", (long)i, "an agent cannot delegate to itself");
        if (!agents_find_name(as, ag->delegates[i]))
            return at_fail(a, "delegates", (long)i, "no agent named '%.64s'", ag->delegates[i]);
    }
    return GW_OK;
}

/*
 * A delegate as a customAgents entry (operations reference §7): its tools are its built-in
 * tools and "<server>-<tool>" for each tool its servers' filters name; null (all tools)
 * when one of its servers has no filter, since its tool names are not known in advance.
 */
static json_t *custom_agent_json(const struct agent *d)
{
    json_t *tools = strv_json(d->tools), *o;
    json_t *servers = mcp_servers_json(d);

    for (size_t i = 0; tools && i < d->nmcp; i++) {
        if (!d->mcp[i].tools) {
            json_decref(tools);
            tools = NULL;
            break;
        }
        for (size_t k = 0; d->mcp[i].tools[k]; k++) {
            char *t = join3(d->mcp[i].name, "-", d->mcp[i].tools[k]);
            json_array_append_new(tools, json_string(t));
            free(t);
        }
    }
    o = json_pack("{s:s, s:s, s:s, s:o, s:b, s:s}", "name", d->name, "description",
                  d->description ? d->description : "", "prompt", d->instructions, "tools",
                  tools ? tools : json_null(), "infer", 1, "model", d->model);
    if (servers)
        json_object_set_new(o, "mcpServers", servers);
    return o;
}

/* The profile and what it points to, once every agent is built. */
static void profile_build(const struct agents *as, struct agent *ag)
{
    size_t n = 0, k = 0;
    json_t *deny = NULL;

    for (size_t i = 0; ag->tools && ag->tools[i]; i++)
        n++;
    /* A sub-agent may use only tools the session offers (runtime 1.0.85: "Tool 'bash' does
     * not exist" otherwise): the delegates' built-in tools are offered too, and kept from the
     * agent's own (default) agent with defaultAgent.excludedTools. */
    size_t nd = 0, kd = 0;
    for (size_t i = 0; ag->delegates && ag->delegates[i]; i++) {
        const struct agent *d = agents_find_name(as, ag->delegates[i]);
        for (size_t j = 0; d && d->tools && d->tools[j]; j++)
            nd++;
    }
    ag->available_tools = xcalloc(n + nd + 1 + 4 + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        ag->available_tools[k++] = xstrdup(ag->tools[i]);
    if (nd)
        ag->delegate_only_tools = xcalloc(nd + 1, sizeof(char *));
    for (size_t i = 0; ag->delegates && ag->delegates[i]; i++) {
        const struct agent *d = agents_find_name(as, ag->delegates[i]);
        for (size_t j = 0; d && d->tools && d->tools[j]; j++) {
            size_t q = 0;
            while (q < k && strcmp(ag->available_tools[q], d->tools[j]) != 0)
                q++;
            if (q < k)
                continue; /* the agent's own, or already added */
            ag->available_tools[k++] = xstrdup(d->tools[j]);
            ag->delegate_only_tools[kd++] = xstrdup(d->tools[j]);
        }
    }
    int delegate_mcp = 0;
    for (size_t i = 0; ag->delegates && ag->delegates[i]; i++) {
        const struct agent *d = agents_find_name(as, ag->delegates[i]);
        delegate_mcp |= d && d->nmcp;
    }
    /* each server's own `tools` filters; a delegate's servers need it too (runtime 1.0.85) */
    if (ag->nmcp || delegate_mcp)
        ag->available_tools[k++] = xstrdup("mcp:*");
    if (ag->delegates) {
        for (size_t i = 0; delegation_tools[i]; i++)
            ag->available_tools[k++] = xstrdup(delegation_tools[i]);
        ag->custom_agents_json = json_array();
        for (size_t i = 0; ag->delegates[i]; i++)
            json_array_append_new(ag->custom_agents_json,
                                  custom_agent_json(agents_find_name(as, ag->delegates[i])));
    }
    ag->mcp_servers_json = mcp_servers_json(ag);

    ag->policy.workdir = ag->workdir;
    policy_resolve_roots(&ag->policy);
    for (n = 0; ag->delegates && ag->delegates[n];)
        n++;
    if (n) {
        /* delegation is checked as kind agent: the delegates are its allow rules */
        ag->policy.allow[POL_AGENT] = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            ag->policy.allow[POL_AGENT][i] = xstrdup(ag->delegates[i]);
    }
    if (ag->nmcp) {
        ag->policy.mcp_servers = xcalloc(ag->nmcp + 1, sizeof(char *));
        for (size_t i = 0; i < ag->nmcp; i++)
            ag->policy.mcp_servers[i] = xstrdup(ag->mcp[i].name);
    }
    deny = policy_managed_deny(&ag->policy);
    if (json_array_size(deny))
        ag->managed_settings_json = json_pack("{s:{s:O}}", "permissions", "deny", deny);
    json_decref(deny);

    ag->profile = (struct session_profile){
        .id = ag->model_id,
        .system_mode = "replace",
        .instructions = ag->instructions,
        .available_tools = (const char *const *)ag->available_tools,
        .mcp_servers = ag->mcp_servers_json,
        .custom_agents = ag->custom_agents_json,
        .default_excluded_tools = (const char *const *)ag->delegate_only_tools,
        .workdir = ag->workdir,
        .request_permission = 1,
        .hooks = 1,
        .managed_settings = ag->managed_settings_json,
        .max_tool_calls = ag->max_tool_calls,
        .max_sessions = (int)ag->max_sessions,
        .timeout_ms = ag->timeout_s * 1000,
    };
}

static void agent_release(struct agent *ag)
{
    free(ag->name);
    free(ag->model_id);
    free(ag->description);
    free(ag->model);
    free(ag->instructions);
    free(ag->workdir);
    strv_free(ag->tools);
    strv_free(ag->delegate_only_tools);
    for (size_t i = 0; i < ag->nmcp; i++)
        mcp_release(&ag->mcp[i]);
    free(ag->mcp);
    strv_free(ag->delegates);
    policy_roots_free(&ag->policy);
    for (int k = 0; k < POL_NKINDS; k++) {
        strv_free(ag->policy.allow[k]);
        strv_free(ag->policy.deny[k]);
    }
    strv_free(ag->policy.mcp_servers);
    strv_free(ag->available_tools);
    json_decref(ag->mcp_servers_json);
    json_decref(ag->custom_agents_json);
    json_decref(ag->managed_settings_json);
    memset(ag, 0, sizeof(*ag));
}

/* ---- the section -------------------------------------------------------------------------- */

int agents_load(const struct ynode *node, struct agents *out, struct gw_err *err)
{
    struct d_root r = {0};
    struct at top;
    struct ypair wrap;
    struct ynode root;
    const struct d_agent *d;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!node)
        return GW_OK;
    /* the config file's directory ("." for a bare name) */
    const char *file = node->file ? node->file : "", *slash = strrchr(file, '/');
    char *base = slash ? xstrndup(file, slash == file ? 1 : (size_t)(slash - file)) : xstrdup(".");
    /* Decoded as the value of a one-key mapping, so paths start with "agents". */
    wrap = (struct ypair){.key = "agents", .key_line = node->line, .value = (struct ynode *)node};
    root = (struct ynode){
        .kind = YNODE_MAP, .line = node->line, .file = node->file, .len = 1, .pairs = &wrap};
    rc = cfg_decode(&root, NULL, &root_schema, &r, err);
    if (rc) {
        free(base);
        return rc;
    }
    d = r.agents.v;
    out->v = xcalloc(r.agents.n ? r.agents.n : 1, sizeof(*out->v));
    at_init(&top, NULL, node, "agents", err);
    top.base = base;
    for (size_t i = 0; !rc && i < r.agents.n; i++) {
        struct at a;
        at_init(&a, &top, node->pairs[i].value, d[i].name, err);
        out->n++;
        rc = agent_build(&a, &d[i], &out->v[i]);
    }
    for (size_t i = 0; !rc && i < out->n; i++) {
        struct at a;
        at_init(&a, &top, node->pairs[i].value, d[i].name, err);
        rc = check_delegates(&a, out, &out->v[i]);
    }
    for (size_t i = 0; !rc && i < out->n; i++)
        profile_build(out, &out->v[i]);
    cfg_decoded_release(&root_schema, &r);
    free(base);
    if (rc)
        agents_free(out);
    return rc;
}

const struct agent *agents_find_name(const struct agents *a, const char *name)
{
    for (size_t i = 0; a && name && i < a->n; i++)
        if (strcmp(a->v[i].name, name) == 0)
            return &a->v[i];
    return NULL;
}

const struct agent *agents_find(const struct agents *a, const char *model_id)
{
    for (size_t i = 0; a && model_id && i < a->n; i++)
        if (strcmp(a->v[i].model_id, model_id) == 0)
            return &a->v[i];
    return NULL;
}

const char **agents_env_refs(const struct agents *a)
{
    size_t n = 0, k = 0;
    const char **out;

    for (size_t i = 0; a && i < a->n; i++)
        for (size_t j = 0; j < a->v[i].nmcp; j++)
            for (size_t r = 0; a->v[i].mcp[j].refs && a->v[i].mcp[j].refs[r]; r++)
                n++;
    out = xcalloc(n + 1, sizeof(*out));
    for (size_t i = 0; a && i < a->n; i++)
        for (size_t j = 0; j < a->v[i].nmcp; j++)
            for (char **r = a->v[i].mcp[j].refs; r && *r; r++) {
                size_t q = 0;
                while (q < k && strcmp(out[q], *r) != 0)
                    q++;
                if (q == k)
                    out[k++] = *r;
            }
    return out;
}

void agents_free(struct agents *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        agent_release(&a->v[i]);
    free(a->v);
    memset(a, 0, sizeof(*a));
}
