/*
 * libFuzzer target for the policy matcher: the input is read as a bash
 * command line by shell_read() and checked by policy_check() as a bash
 * command, a view path and a web_fetch URL, under a fixed small policy rooted
 * in /nonexistent-fuzz-root.  Checks the promises the header makes: an
 * unreadable line lists nothing, a verdict is always filled and consistent.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *allow_shell[] = {"ls", "grep", "cat", "echo", "env", "xargs", "find", "bash", NULL};
static char *deny_shell[] = {"rm", "sudo", NULL};
static char *roots_r[] = {"/nonexistent-fuzz-root/ro", NULL};
static char *roots_w[] = {"/nonexistent-fuzz-root/work", NULL};
static char *deny_w[] = {"/nonexistent-fuzz-root/work/secret", NULL};
static char *hosts[] = {"example.com", "*.corp.example", NULL};
static char *servers[] = {"elk", "elk-prod", NULL};
static char *mcp[] = {"elk-*", NULL};

static void check_verdict(const struct pol_verdict *v, int r)
{
    assert(r == v->allow);
    assert(memchr(v->target, '\0', sizeof(v->target)));
    assert(memchr(v->rule, '\0', sizeof(v->rule)));
    assert(memchr(v->reason, '\0', sizeof(v->reason)));
    if (r)
        assert(v->reason[0] == '\0');
    else
        assert(strncmp(v->reason, "denied by policy: ", 18) == 0);
}

static int check_tool(const struct policy *p, const char *tool, const char *key,
                       const char *val, size_t len)
{
    struct pol_verdict v;
    json_t *args = json_object();
    json_t *s = json_stringn_nocheck(val, len);
    int r;

    json_object_set_new(args, key, s);
    r = policy_check(p, tool, args, &v);
    check_verdict(&v, r);
    json_decref(args);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct policy p = {0};
    struct shell_ops ops;
    char why[128];
    char *line = malloc(size + 1);
    int lists_rm = 0;

    memcpy(line, data, size);
    line[size] = '\0';
    if (shell_read(line, &ops, why, sizeof(why)) == 0) {
        for (size_t k = 0; k < ops.n; k++) {
            assert(ops.v[k].name);
            assert(ops.v[k].kind == POL_SHELL || ops.v[k].kind == POL_READ ||
                   ops.v[k].kind == POL_WRITE);
            const char *b = strrchr(ops.v[k].name, '/');
            if (ops.v[k].kind == POL_SHELL && strcmp(b ? b + 1 : ops.v[k].name, "rm") == 0)
                lists_rm = 1;
        }
        shell_ops_free(&ops);
    } else {
        assert(ops.n == 0 && ops.v == NULL);
        assert(why[0] != '\0');
    }

    p.allow[POL_SHELL] = allow_shell;
    p.deny[POL_SHELL] = deny_shell;
    p.allow[POL_READ] = roots_r;
    p.allow[POL_WRITE] = roots_w;
    p.deny[POL_WRITE] = deny_w;
    p.allow[POL_URL] = hosts;
    p.allow[POL_MCP] = mcp;
    p.mcp_servers = servers;
    p.workdir = "/nonexistent-fuzz-root/work";
    /* a line that runs rm is denied, by the rule */
    if (check_tool(&p, "bash", "command", line, size) && lists_rm)
        abort();
    check_tool(&p, "view", "path", line, size);
    check_tool(&p, "create", "path", line, size);
    check_tool(&p, "web_fetch", "url", line, size);
    check_tool(&p, "glob", "pattern", line, size);
    if (size < 200) {
        struct pol_verdict v;
        json_t *args = json_object();
        int r = policy_check(&p, line, args, &v); /* the input as a tool name */
        check_verdict(&v, r);
        json_decref(args);
    }
    free(line);
    return 0;
}
