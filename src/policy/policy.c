/*
 * Decides whether one tool call may run under an agent's policy: deny rules
 * first, then allow rules, deny by default (policy/policy.h).
 */
#include "policy/policy.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "util/util.h"
#include "util/xmalloc.h"

#define DENIED "denied by policy: "

const char *policy_kind_name(enum pol_kind k)
{
    static const char *const names[POL_NKINDS] = {"shell", "read", "write", "url", "mcp", "agent"};

    return (unsigned)k < POL_NKINDS ? names[k] : "?";
}

/* ---- verdicts ------------------------------------------------------------------------- */

static void set_target(struct pol_verdict *v, const char *target)
{
    util_copy_cut(v->target, sizeof(v->target), target);
}

/* Adds "kind(pattern)" to the rules that allow the call (v->rule, comma-separated, each
 * once; "..." when they do not fit). */
static void allowed_by(struct pol_verdict *v, enum pol_kind kind, const char *pattern)
{
    char r[POL_RULE_MAX];
    size_t n = strlen(v->rule), rl;

    snprintf(r, sizeof(r), "%s(%s)", policy_kind_name(kind), pattern);
    rl = strlen(r);
    for (const char *q = v->rule; (q = strstr(q, r)) != NULL; q += rl)
        if ((q == v->rule || q[-1] == ',') && (q[rl] == ',' || q[rl] == '\0'))
            return;
    if (n >= 4 && strcmp(v->rule + n - 4, ",...") == 0)
        return; /* full already */
    if (n + 1 + rl + 4 < sizeof(v->rule)) { /* room left for a later ",..." */
        snprintf(v->rule + n, sizeof(v->rule) - n, "%s%s", n ? "," : "", r);
    } else if (n == 0) { /* one rule longer than the field: cut */
        snprintf(v->rule, sizeof(v->rule) - 4, "%s", r);
        memcpy(v->rule + sizeof(v->rule) - 5, ",...", 5);
    } else {
        memcpy(v->rule + n, ",...", 5);
    }
}

/* Allowed: v->rule holds the rules that allowed it (allowed_by()). */
static int allow(struct pol_verdict *v, enum pol_kind kind, const char *target)
{
    v->allow = 1;
    v->kind = kind;
    v->by_default = 0;
    set_target(v, target);
    v->reason[0] = '\0';
    return 1;
}

/* Denied by the deny rule `pattern`. */
static int deny_rule(struct pol_verdict *v, enum pol_kind kind, const char *target,
                     const char *pattern)
{
    v->allow = 0;
    v->kind = kind;
    v->by_default = 0;
    set_target(v, target);
    snprintf(v->rule, sizeof(v->rule), "%s(%s)", policy_kind_name(kind), pattern);
    snprintf(v->reason, sizeof(v->reason), DENIED "%s", v->rule);
    return 0;
}

/* Denied because no allow rule covers target. */
static int deny_default(struct pol_verdict *v, enum pol_kind kind, const char *target)
{
    v->allow = 0;
    v->kind = kind;
    v->by_default = 1;
    set_target(v, target);
    snprintf(v->rule, sizeof(v->rule), "%s(%s)", policy_kind_name(kind), target);
    snprintf(v->reason, sizeof(v->reason), DENIED "no rule allows %s", v->rule);
    return 0;
}

/* Denied because the call cannot be understood; why completes "denied by policy: ". */
static int deny_unreadable(struct pol_verdict *v, enum pol_kind kind, const char *target,
                           const char *why)
{
    v->allow = 0;
    v->kind = kind;
    v->by_default = 1;
    set_target(v, target);
    snprintf(v->rule, sizeof(v->rule), "%s(?)", policy_kind_name(kind));
    snprintf(v->reason, sizeof(v->reason), DENIED "%s", why);
    return 0;
}

/* ---- globs ---------------------------------------------------------------------------- */

/* The first pattern of list that name matches, or NULL. */
static const char *glob_match(char *const *list, const char *name, int flags)
{
    for (size_t k = 0; list && list[k]; k++) {
        int same = flags & FNM_CASEFOLD ? strcasecmp(list[k], name) == 0
                                        : strcmp(list[k], name) == 0;
        /* an exact spelling always matches itself, "[::1]" included */
        if (same || fnmatch(list[k], name, flags) == 0)
            return list[k];
    }
    return NULL;
}

static int has_rules(char *const *list)
{
    return list && list[0];
}

/* ---- paths ---------------------------------------------------------------------------- */

/*
 * Resolves path (relative to workdir) into out: realpath(3) of the longest
 * existing prefix, then the rest with "." removed; a remaining "..", a
 * dangling symlink, or a prefix that cannot be resolved: -1.
 */
static int resolve_path(const char *workdir, const char *path, size_t len, char out[PATH_MAX])
{
    char full[PATH_MAX], real[PATH_MAX];
    size_t n, cut;
    int w;

    if (len == 0 || strlen(path) != len)
        return -1;
    if (path[0] == '/')
        w = snprintf(full, sizeof(full), "%s", path);
    else if (workdir && workdir[0] == '/')
        w = snprintf(full, sizeof(full), "%s/%s", workdir, path);
    else
        return -1;
    if (w < 0 || (size_t)w >= sizeof(full))
        return -1;
    n = strlen(full);
    while (n > 1 && full[n - 1] == '/')
        full[--n] = '\0';

    /* Find the longest prefix that exists. */
    cut = n;
    for (;;) {
        char save = full[cut];
        full[cut] = '\0';
        char *ok = realpath(full, real);
        int err = errno;
        if (!ok) {
            struct stat st;
            if ((err != ENOENT && err != ENOTDIR) || lstat(full, &st) == 0) {
                /* not a plain "does not exist" (a dangling link, a loop, no access) */
                full[cut] = save;
                return -1;
            }
        }
        full[cut] = save;
        if (ok)
            break;
        while (cut > 0 && full[cut - 1] != '/')
            cut--;
        if (cut <= 1) {
            snprintf(real, sizeof(real), "/");
            cut = 0;
            break;
        }
        cut--; /* at the '/' */
    }

    /* Append the rest: no "..", "." and empty components dropped. */
    size_t rl = strlen(real);
    const char *p = full + cut;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t cl = e ? (size_t)(e - p) : strlen(p);
        if (cl == 0)
            break;
        if (cl == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (!(cl == 1 && p[0] == '.')) {
            if (rl + 1 + cl >= PATH_MAX)
                return -1;
            if (rl > 1)
                real[rl++] = '/';
            memcpy(real + rl, p, cl);
            rl += cl;
            real[rl] = '\0';
        }
        p += cl;
    }
    memcpy(out, real, rl + 1);
    return 0;
}

/* root covers path (both resolved): "/srv/app" covers "/srv/app/x", not "/srv/application". */
static int covers(const char *root, const char *path)
{
    size_t n = strlen(root);

    if (strcmp(root, "/") == 0)
        return 1;
    return strncmp(root, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The first root of list covering path, or NULL.  Unresolvable roots cover nothing,
 * except deny roots, which then still cover what their literal spelling covers.  real:
 * the roots resolved at load (policy_resolve_roots()), or NULL. */
static const char *root_match(char *const *list, char *const *real, const char *path, int deny)
{
    for (size_t k = 0; list && list[k]; k++) {
        char rr[PATH_MAX];

        if (real && real[k][0]) {
            if (covers(real[k], path))
                return list[k];
        } else if (resolve_path(NULL, list[k], strlen(list[k]), rr) == 0) {
            if (covers(rr, path))
                return list[k];
        } else if (deny && list[k][0] == '/' && covers(list[k], path)) {
            return list[k];
        }
    }
    return NULL;
}

static int special_device(enum pol_kind kind, const char *path)
{
    if (strcmp(path, "/dev/null") == 0)
        return 1;
    if (kind == POL_WRITE)
        return strcmp(path, "/dev/stdout") == 0 || strcmp(path, "/dev/stderr") == 0;
    return strcmp(path, "/dev/stdin") == 0;
}

/*
 * A path access (kind POL_READ or POL_WRITE), resolved into res.  Pass 0
 * looks for deny rules only (1: denied, filled v); pass 1 for an allow rule
 * (0: denied by default).  A write is also refused by a deny read root: a
 * place the agent must not read, it must not write either.
 */
static int check_path_pass(const struct policy *p, enum pol_kind kind, const char *res, int pass,
                           struct pol_verdict *v)
{
    const char *m;

    if (pass == 0) {
        m = root_match(p->deny[kind], p->deny_real[kind], res, 1);
        if (!m && kind == POL_WRITE) {
            m = root_match(p->deny[POL_READ], p->deny_real[POL_READ], res, 1);
            if (m) {
                deny_rule(v, POL_READ, res, m);
                return 1;
            }
        }
        if (m) {
            deny_rule(v, kind, res, m);
            return 1;
        }
        return 0;
    }
    m = root_match(p->allow[POL_WRITE], p->allow_real[POL_WRITE], res, 0);
    if (m) {
        allowed_by(v, POL_WRITE, m);
        return 1;
    }
    m = kind == POL_READ ? root_match(p->allow[POL_READ], p->allow_real[POL_READ], res, 0) : NULL;
    if (m) {
        allowed_by(v, POL_READ, m);
        return 1;
    }
    deny_default(v, kind, res);
    return 0;
}

/* One path of a file tool: view/glob/grep (read), create/edit (write). */
static int check_path(const struct policy *p, enum pol_kind kind, const char *path, size_t len,
                      struct pol_verdict *v)
{
    char res[PATH_MAX];

    if (resolve_path(p->workdir, path, len, res) != 0)
        return deny_unreadable(v, kind, path && strlen(path) == len ? path : "",
                               "cannot resolve the path");
    if (check_path_pass(p, kind, res, 0, v))
        return 0;
    if (!check_path_pass(p, kind, res, 1, v))
        return 0;
    return allow(v, kind, res);
}

/* ---- shell ---------------------------------------------------------------------------- */

static const char *base_name(const char *s)
{
    const char *b = strrchr(s, '/');

    return b ? b + 1 : s;
}

/* Pass 0: deny rules (1 when one matched); pass 1: allow rules (0 when one is missing). */
static int shell_pass(const struct policy *p, const struct shell_ops *ops, int pass,
                      struct pol_verdict *v)
{
    for (size_t k = 0; k < ops->n; k++) {
        const struct shell_op *op = &ops->v[k];

        if (op->kind == POL_SHELL) {
            const char *b = base_name(op->name);
            if (pass == 0) {
                const char *m = glob_match(p->deny[POL_SHELL], b, 0);
                if (m) {
                    deny_rule(v, POL_SHELL, b, m);
                    return 1;
                }
            } else {
                const char *m = glob_match(p->allow[POL_SHELL], b, 0);
                if (!m) {
                    deny_default(v, POL_SHELL, b);
                    return 0;
                }
                allowed_by(v, POL_SHELL, m);
            }
            continue;
        }
        char res[PATH_MAX];
        if (resolve_path(p->workdir, op->name, strlen(op->name), res) != 0) {
            deny_unreadable(v, op->kind, op->name, "cannot resolve the path");
            return pass == 0;
        }
        if (special_device(op->kind, res))
            continue;
        int r = check_path_pass(p, op->kind, res, pass, v);
        if (pass == 0 && r)
            return 1;
        if (pass == 1 && !r)
            return 0;
    }
    return pass == 1;
}

static int check_shell(const struct policy *p, const json_t *args, struct pol_verdict *v)
{
    const json_t *cmd = json_object_get(args, "command");
    struct shell_ops ops;
    char why[128];
    int ok;

    if (!json_is_string(cmd) || strlen(json_string_value(cmd)) != json_string_length(cmd))
        return deny_unreadable(v, POL_SHELL, "", "cannot parse the command line");
    const char *line = json_string_value(cmd);
    if (shell_read(line, &ops, why, sizeof(why)) != 0)
        return deny_unreadable(v, POL_SHELL, line, "cannot parse the command line");
    ok = !shell_pass(p, &ops, 0, v) && shell_pass(p, &ops, 1, v);
    shell_ops_free(&ops);
    if (!ok)
        return 0;
    return allow(v, POL_SHELL, line);
}

/* read_bash, stop_bash, list_bash: only look at shells bash started. */
static int check_bash_aux(const struct policy *p, const char *tool, struct pol_verdict *v)
{
    if (!has_rules(p->allow[POL_SHELL]))
        return deny_default(v, POL_SHELL, tool);
    allowed_by(v, POL_SHELL, p->allow[POL_SHELL][0]);
    return allow(v, POL_SHELL, tool);
}

/* ---- file tools ----------------------------------------------------------------------- */

/*
 * A glob pattern that is absolute or climbs with ".." reaches outside the
 * searched paths: its fixed directory part is checked as a read as well.
 */
static int check_pattern(const struct policy *p, const json_t *pat, struct pol_verdict *v)
{
    const char *s;
    size_t fixed;

    if (!pat)
        return 1;
    if (!json_is_string(pat))
        return deny_unreadable(v, POL_READ, "", "cannot read the arguments");
    s = json_string_value(pat);
    if (strstr(s, "..") && (strncmp(s, "..", 2) == 0 || strstr(s, "/..")))
        return deny_unreadable(v, POL_READ, s, "cannot resolve the path");
    if (s[0] != '/' && s[0] != '~')
        return 1;
    if (s[0] == '~')
        return deny_unreadable(v, POL_READ, s, "cannot resolve the path");
    fixed = strcspn(s, "*?[{");
    while (fixed > 1 && s[fixed - 1] != '/')
        fixed--;
    char *dir = xstrndup(s, fixed ? fixed : 1);
    int ok = check_path(p, POL_READ, dir, strlen(dir), v);
    free(dir);
    return ok;
}

static int check_read_tool(const struct policy *p, const char *tool, const json_t *args,
                           struct pol_verdict *v)
{
    int is_view = strcmp(tool, "view") == 0;
    const json_t *paths = json_object_get(args, is_view ? "path" : "paths");
    char res_first[POL_TARGET_MAX] = "";

    if (is_view && !json_is_string(paths))
        return deny_unreadable(v, POL_READ, "", "cannot read the arguments");
    if (!is_view) {
        if (!check_pattern(p, json_object_get(args, strcmp(tool, "glob") == 0 ? "pattern" : "glob"), v))
            return 0;
    }
    if (!paths) {
        if (!check_path(p, POL_READ, p->workdir ? p->workdir : "", p->workdir ? strlen(p->workdir) : 0, v))
            return 0;
        return 1;
    }
    if (json_is_string(paths))
        return check_path(p, POL_READ, json_string_value(paths), json_string_length(paths), v);
    if (!json_is_array(paths) || json_array_size(paths) == 0)
        return deny_unreadable(v, POL_READ, "", "cannot read the arguments");
    size_t k;
    json_t *e;
    json_array_foreach(paths, k, e) {
        if (!json_is_string(e))
            return deny_unreadable(v, POL_READ, "", "cannot read the arguments");
        if (!check_path(p, POL_READ, json_string_value(e), json_string_length(e), v))
            return 0;
        if (k == 0)
            snprintf(res_first, sizeof(res_first), "%s", v->target);
    }
    return allow(v, POL_READ, res_first);
}

static int check_write_tool(const struct policy *p, const json_t *args, struct pol_verdict *v)
{
    const json_t *path = json_object_get(args, "path");

    if (!json_is_string(path))
        return deny_unreadable(v, POL_WRITE, "", "cannot read the arguments");
    return check_path(p, POL_WRITE, json_string_value(path), json_string_length(path), v);
}

/* ---- urls ----------------------------------------------------------------------------- */

/*
 * The host of an http(s) URL, lower case, without userinfo and port; IPv6 in
 * brackets.  Anything a browser-style parser might read differently (a
 * backslash, a percent sign in the authority, spaces, controls, non-ASCII)
 * is refused rather than guessed.
 */
static int url_host(const char *url, size_t len, char *out, size_t outlen)
{
    CURLU *h;
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (strlen(url) != len || len > 8192)
        return -1;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '\\')
            return -1;
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return -1;
    const char *auth = strstr(url, "://") + 3;
    size_t alen = strcspn(auth, "/?#");
    if (memchr(auth, '%', alen))
        return -1;
    h = curl_url();
    if (!h)
        return -1;
    if (curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
        goto out;
    if (!host[0] || strlen(host) >= outlen)
        goto out;
    for (size_t k = 0; host[k]; k++)
        out[k] = (char)tolower((unsigned char)host[k]);
    out[strlen(host)] = '\0';
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(h);
    return rc;
}

static int check_url(const struct policy *p, const json_t *args, struct pol_verdict *v)
{
    const json_t *u = json_object_get(args, "url");
    char host[512];
    const char *m;

    if (!json_is_string(u))
        return deny_unreadable(v, POL_URL, "", "cannot read the arguments");
    if (url_host(json_string_value(u), json_string_length(u), host, sizeof(host)) != 0)
        return deny_unreadable(v, POL_URL, json_string_value(u), "not an http(s) URL");
    m = glob_match(p->deny[POL_URL], host, FNM_CASEFOLD);
    if (m)
        return deny_rule(v, POL_URL, host, m);
    m = glob_match(p->allow[POL_URL], host, FNM_CASEFOLD);
    if (!m)
        return deny_default(v, POL_URL, host);
    allowed_by(v, POL_URL, m);
    return allow(v, POL_URL, host);
}

/* ---- mcp, agents ---------------------------------------------------------------------- */

/* The MCP server whose "<server>-" prefixes tool (the longest one), or NULL. */
static const char *mcp_server(const struct policy *p, const char *tool)
{
    const char *best = NULL;
    size_t bl = 0;

    for (size_t k = 0; p->mcp_servers && p->mcp_servers[k]; k++) {
        const char *s = p->mcp_servers[k];
        size_t n = strlen(s);

        if (n > bl && strncmp(tool, s, n) == 0 && tool[n] == '-' && tool[n + 1] != '\0') {
            best = s;
            bl = n;
        }
    }
    return best;
}

static int check_glob_kind(const struct policy *p, enum pol_kind kind, const char *name,
                           struct pol_verdict *v)
{
    const char *m = glob_match(p->deny[kind], name, 0);

    if (m)
        return deny_rule(v, kind, name, m);
    m = glob_match(p->allow[kind], name, 0);
    if (!m)
        return deny_default(v, kind, name);
    allowed_by(v, kind, m);
    return allow(v, kind, name);
}

static int check_task(const struct policy *p, const json_t *args, struct pol_verdict *v)
{
    const json_t *a = json_object_get(args, "agent_type");

    if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a))
        return deny_unreadable(v, POL_AGENT, "", "cannot read the arguments");
    return check_glob_kind(p, POL_AGENT, json_string_value(a), v);
}

static int check_agent_aux(const struct policy *p, const char *tool, struct pol_verdict *v)
{
    if (!has_rules(p->allow[POL_AGENT]))
        return deny_default(v, POL_AGENT, tool);
    allowed_by(v, POL_AGENT, p->allow[POL_AGENT][0]);
    return allow(v, POL_AGENT, tool);
}

/* ---- the entry points ----------------------------------------------------------------- */

int policy_check(const struct policy *p, const char *tool, const json_t *args,
                 struct pol_verdict *v)
{
    memset(v, 0, sizeof(*v));
    if (!tool)
        tool = "";
    if (!p || !args || !json_is_object(args))
        return deny_unreadable(v, POL_SHELL, tool, "the tool arguments are not an object");
    if (strcmp(tool, "bash") == 0)
        return check_shell(p, args, v);
    if (!strcmp(tool, "read_bash") || !strcmp(tool, "stop_bash") || !strcmp(tool, "list_bash"))
        return check_bash_aux(p, tool, v);
    if (!strcmp(tool, "view") || !strcmp(tool, "glob") || !strcmp(tool, "grep"))
        return check_read_tool(p, tool, args, v);
    if (!strcmp(tool, "create") || !strcmp(tool, "edit"))
        return check_write_tool(p, args, v);
    if (!strcmp(tool, "web_fetch"))
        return check_url(p, args, v);
    if (!strcmp(tool, "task"))
        return check_task(p, args, v);
    if (!strcmp(tool, "read_agent") || !strcmp(tool, "write_agent") || !strcmp(tool, "list_agents"))
        return check_agent_aux(p, tool, v);
    if (mcp_server(p, tool))
        return check_glob_kind(p, POL_MCP, tool, v);
    v->allow = 0;
    v->kind = POL_SHELL;
    v->by_default = 1;
    set_target(v, tool);
    snprintf(v->rule, sizeof(v->rule), "tool(%s)", tool);
    snprintf(v->reason, sizeof(v->reason), DENIED "unknown tool %s", tool);
    return 0;
}

json_t *policy_managed_deny(const struct policy *p)
{
    json_t *a = json_array();
    char *const *d = p ? p->deny[POL_SHELL] : NULL;

    for (size_t k = 0; d && d[k]; k++) {
        char buf[POL_RULE_MAX + 16];

        snprintf(buf, sizeof(buf), "shell(%s)", d[k]);
        json_array_append_new(a, json_string(buf));
        snprintf(buf, sizeof(buf), "shell(%s *)", d[k]);
        json_array_append_new(a, json_string(buf));
    }
    return a;
}

/* ---- roots resolved once ------------------------------------------------------------- */

static char **resolve_all(char *const *list)
{
    size_t n = 0;
    char **out;

    while (list && list[n])
        n++;
    if (!n)
        return NULL;
    out = xcalloc(n + 1, sizeof(char *));
    for (size_t k = 0; k < n; k++) {
        char rr[PATH_MAX];
        out[k] = xstrdup(resolve_path(NULL, list[k], strlen(list[k]), rr) == 0 ? rr : "");
    }
    return out;
}

static void free_all(char **v)
{
    for (size_t k = 0; v && v[k]; k++)
        free(v[k]);
    free(v);
}

void policy_resolve_roots(struct policy *p)
{
    policy_roots_free(p);
    for (int k = POL_READ; k <= POL_WRITE; k++) {
        p->allow_real[k] = resolve_all(p->allow[k]);
        p->deny_real[k] = resolve_all(p->deny[k]);
    }
}

void policy_roots_free(struct policy *p)
{
    for (int k = 0; k < POL_NKINDS; k++) {
        free_all(p->allow_real[k]);
        free_all(p->deny_real[k]);
        p->allow_real[k] = p->deny_real[k] = NULL;
    }
}

