/* Unit tests for policy/: the shell line reader and policy_check() on every kind of tool call. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "util/util.h"

/* A temporary tree: work/ (the workdir), app/, application/, app/link -> /etc,
 * work/dangling -> a path that does not exist. */
struct fx {
    char base[PATH_MAX];
    char work[PATH_MAX + 8];
    char app[PATH_MAX + 8];
    char application[PATH_MAX + 16];
};

static struct fx fx;

static int setup(void **state)
{
    char tmpl[] = "/tmp/test_policy.XXXXXX";
    char p[PATH_MAX + 32];

    if (!mkdtemp(tmpl))
        return -1;
    /* the resolved spelling, so targets compare equal whatever /tmp is */
    if (!realpath(tmpl, fx.base))
        return -1;
    snprintf(fx.work, sizeof(fx.work), "%s/work", fx.base);
    snprintf(fx.app, sizeof(fx.app), "%s/app", fx.base);
    snprintf(fx.application, sizeof(fx.application), "%s/application", fx.base);
    if (mkdir(fx.work, 0700) || mkdir(fx.app, 0700) || mkdir(fx.application, 0700))
        return -1;
    snprintf(p, sizeof(p), "%s/link", fx.app);
    if (symlink("/etc", p))
        return -1;
    snprintf(p, sizeof(p), "%s/dangling", fx.work);
    if (symlink("/nonexistent-policy-test/target", p))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    return util_rmtree(fx.base) == 0 ? 0 : -1;
}

/* ---- shell_read ------------------------------------------------------------------------- */

/* The ops of line as "shell:ls write:out", or "ERR" when unreadable. */
static char *ops_str(const char *line, char *out, size_t outlen)
{
    struct shell_ops ops;
    char why[128];
    size_t len = 0;

    out[0] = '\0';
    if (shell_read(line, &ops, why, sizeof(why)) != 0) {
        assert_int_equal(ops.n, 0);
        assert_true(why[0] != '\0');
        snprintf(out, outlen, "ERR");
        return out;
    }
    for (size_t k = 0; k < ops.n; k++)
        len += (size_t)snprintf(out + len, outlen - len, "%s%s:%s", k ? " " : "",
                                policy_kind_name(ops.v[k].kind), ops.v[k].name);
    shell_ops_free(&ops);
    return out;
}

static void test_shell_read(void **state)
{
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"ls -l", "shell:ls"},
        {"ls | grep x && wc -l || true; date & sleep 1\nid", "shell:ls shell:grep shell:wc shell:true shell:date shell:sleep shell:id"},
        {"'l''s' \"a b\" c\\ d", "shell:ls"},
        {"A=1 B=$(whoami) ls", "shell:whoami shell:ls"},
        {"echo $(rm -rf /) `id`", "shell:rm shell:id shell:echo"},
        {"echo \"$(rm x)\" \"${x:-$(mv a b)}\"", "shell:rm shell:mv shell:echo"},
        {"( cd /tmp; ls ) && { pwd; }", "shell:cd shell:ls shell:pwd"},
        {"echo hi > out.txt 2>> err.log &> both", "write:out.txt write:err.log write:both shell:echo"},
        {"cat < in.txt 2>&1 >&2 3>&- <<< word", "read:in.txt shell:cat"},
        {"ls 2>/dev/null >|clobber", "write:/dev/null write:clobber shell:ls"},
        {"cat <<EOF | wc\nrm -rf /\n$(mv a b)\nEOF\nid", "shell:cat shell:wc shell:mv shell:id"},
        {"cat <<'EOF'\n$(mv a b)\nEOF", "shell:cat"},
        {"cat <<-EOF\n\tbody\n\tEOF\nls", "shell:cat shell:ls"},
        {"diff <(ls a) >(wc -l)", "shell:ls shell:wc shell:diff"},
        {"bash -c 'rm x; ls'", "shell:bash shell:rm shell:ls"},
        {"sh -ec \"curl x | sh\"", "shell:sh shell:curl shell:sh"},
        {"env -i A=1 /bin/rm x", "shell:env shell:/bin/rm"},
        {"nice -n 5 nohup timeout -s KILL 10 sudo -u root xargs -I{} rm {}",
         "shell:nice shell:nohup shell:timeout shell:sudo shell:xargs shell:rm"},
        {"xargs", "shell:xargs shell:echo"},
        {"command exec time stdbuf -oL ionice -c 3 setsid ls", "shell:command shell:exec shell:time shell:stdbuf shell:ionice shell:setsid shell:ls"},
        {"chroot /x ls", "shell:chroot shell:ls"},
        {"builtin eval x; busybox rm y; doas -u r ls", "shell:builtin shell:eval shell:busybox shell:rm shell:doas shell:ls"},
        {"!(rm x) | \\rm y; r\\\nm z", "shell:rm shell:rm shell:rm"},
        {"find . -name '*.c' -exec rm {} \\; -execdir sh -c 'id' +", "shell:find shell:rm shell:sh shell:id"},
        {"ls | tee -a a.log /tmp/b", "shell:ls shell:tee write:a.log write:/tmp/b"},
        {"if test -f x; then rm x; elif true; then :; else echo; fi", "shell:test shell:rm shell:true shell:: shell:echo"},
        {"for f in $(ls); do rm \"$f\"; done", "shell:ls shell:rm"},
        {"while read l; do echo \"$l\"; done < list", "shell:read shell:echo read:list"},
        {"case $x in a|b) rm x;; (*) ls ;; esac; id", "shell:rm shell:ls shell:id"},
        {"f() { rm x; }; f", "shell:rm shell:f"},
        {"function g { mv a b; }", "shell:mv"},
        {"[[ -f $(id) && x < y ]] && ls", "shell:id shell:ls"},
        {"echo $((1 + (2*3)))", "shell:echo"},
        {"a=(1 $(id) 3); echo ${a[@]}", "shell:id shell:echo"},
        {"$'\\x72m' -rf /", "shell:rm"},
        {"eval 'rm x'; source f; . g", "shell:eval shell:source shell:."},
        {"ls # rm x", "shell:ls"},
        {"ls \\\n  -l", "shell:ls"},
        {"", ""},
        /* unreadable */
        {"echo 'x", "ERR"},
        {"echo \"x", "ERR"},
        {"$(rm x)", "ERR"},
        {"$CMD x", "ERR"},
        {"\"${X}\" y", "ERR"},
        {"`echo rm` x", "ERR"},
        {"r? x", "ERR"},
        {"{rm,x}", "ERR"},
        {"echo > $F", "ERR"},
        {"echo $((rm) )", "ERR"},
        {"(ls", "ERR"},
        {"ls)", "ERR"},
        {"env -S 'rm x'", "ERR"},
        {"env $OPTS rm", "ERR"},
        {"bash -c \"$X\"", "ERR"},
        {"coproc rm x", "ERR"},
        {"find . -exec {} \\;", "shell:find shell:{}"},
        {"ls {a,b}/x", "shell:ls"},
        {"ls ;; id", "ERR"},
        {"echo >", "ERR"},
    };
    char got[4096];
    int bad = 0;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ops_str(cases[k].line, got, sizeof(got));
        if (strcmp(got, cases[k].want) != 0) {
            print_error("line %zu [%s]: got [%s], want [%s]\n", k, cases[k].line, got,
                        cases[k].want);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void test_shell_limits(void **state)
{
    char *big = malloc(70 * 1024);
    char line[256] = "";
    char got[64];

    memset(big, 'a', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    assert_string_equal(ops_str(big, got, sizeof(got)), "ERR");
    free(big);

    /* 16 nested subshells are fine, 17 are not */
    for (int k = 0; k < 16; k++)
        strcat(line, "( ");
    strcat(line, "ls");
    for (int k = 0; k < 16; k++)
        strcat(line, ")");
    assert_string_equal(ops_str(line, got, sizeof(got)), "shell:ls");
    memmove(line + 2, line, strlen(line) + 1);
    memcpy(line, "( ", 2);
    strcat(line, ")");
    assert_string_equal(ops_str(line, got, sizeof(got)), "ERR");
}

/* ---- policy_check ----------------------------------------------------------------------- */

static char *allow_shell[] = {"ls", "grep", "wc", "echo", "cat", "find", "xargs", "env",
                              "bash", "sudo", "tee", "python3*", NULL};
static char *deny_shell[] = {"rm", "sudo", NULL};

struct pcase {
    const char *tool;
    const char *args;   /* JSON; NULL for no args */
    int allow;
    const char *reason; /* exact when it starts with "denied", else a substring; NULL: skip */
};

static void run_cases(const struct policy *p, const struct pcase *c, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct pol_verdict v;
        json_error_t jerr;
        json_t *args = c[k].args ? json_loads(c[k].args, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr) : NULL;
        int r;

        if (c[k].args && !args)
            fail_msg("case %zu: bad JSON %s", k, c[k].args);
        r = policy_check(p, c[k].tool, args, &v);
        json_decref(args);
        if (r != v.allow || r != c[k].allow)
            fail_msg("case %zu %s %s: allow %d, want %d (%s)", k, c[k].tool, c[k].args, r,
                     c[k].allow, v.reason);
        if (r) {
            assert_string_equal(v.reason, "");
            continue;
        }
        if (!c[k].reason)
            continue;
        if (strncmp(c[k].reason, "denied", 6) == 0 ? strcmp(v.reason, c[k].reason) != 0
                                                   : !strstr(v.reason, c[k].reason))
            fail_msg("case %zu %s %s: reason [%s], want [%s]", k, c[k].tool, c[k].args,
                     v.reason, c[k].reason);
    }
}

static void test_shell_policy(void **state)
{
    struct policy p = {0};
    static const struct pcase cases[] = {
        {"bash", "{\"command\":\"ls -la\"}", 1, NULL},
        {"bash", "{\"command\":\"rm -rf x\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"curl http://x\"}", 0, "denied by policy: no rule allows shell(curl)"},
        {"bash", "{\"command\":\"ls | grep x && wc -l\"}", 1, NULL},
        {"bash", "{\"command\":\"ls; rm -rf /\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"$(rm x)\"}", 0, "denied by policy: cannot parse the command line"},
        {"bash", "{\"command\":\"echo $(rm -rf /)\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"bash -c 'rm x'\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"xargs rm\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"find . -exec rm {} \\\\;\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"env rm x\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"sudo ls\"}", 0, "denied by policy: shell(sudo)"},
        {"bash", "{\"command\":\"/bin/rm x\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"echo 'unbalanced\"}", 0, "denied by policy: cannot parse the command line"},
        {"bash", "{\"command\":\"ls 2>/dev/null\"}", 1, NULL},
        {"bash", "{\"command\":\"python3.12 -V\"}", 1, NULL},
        {"bash", "{\"command\":\"rmdir x\"}", 0, "denied by policy: no rule allows shell(rmdir)"},
        /* deny rules win over an earlier default denial */
        {"bash", "{\"command\":\"curl x; rm y\"}", 0, "denied by policy: shell(rm)"},
        {"bash", "{\"command\":\"cat < /etc/passwd\"}", 0, "denied by policy: no rule allows read(/etc/passwd)"},
        {"bash", "{\"command\":\"ls\\u0000rm\"}", 0, "cannot parse"},
        {"bash", "{\"command\":7}", 0, "cannot parse"},
        {"bash", "{}", 0, "cannot parse"},
        {"read_bash", "{\"shellId\":\"1\"}", 1, NULL},
    };

    p.allow[POL_SHELL] = allow_shell;
    p.deny[POL_SHELL] = deny_shell;
    p.workdir = fx.work;
    run_cases(&p, cases, sizeof(cases) / sizeof(cases[0]));

    /* a write needs a write root */
    struct pol_verdict v;
    char want[PATH_MAX + 64];
    json_t *a = json_pack("{s:s}", "command", "echo hi > out.txt");
    assert_int_equal(policy_check(&p, "bash", a, &v), 0);
    snprintf(want, sizeof(want), "denied by policy: no rule allows write(%s/out.txt)", fx.work);
    assert_string_equal(v.reason, want);
    assert_int_equal(v.kind, POL_WRITE);
    assert_true(v.by_default);
    char *roots[] = {fx.work, NULL};
    p.allow[POL_WRITE] = roots;
    assert_int_equal(policy_check(&p, "bash", a, &v), 1);
    assert_int_equal(v.kind, POL_SHELL);
    assert_string_equal(v.target, "echo hi > out.txt");
    json_decref(a);

    /* a read: a write root covers it, /etc does not */
    a = json_pack("{s:s}", "command", "cat < in.txt | tee copy.txt");
    assert_int_equal(policy_check(&p, "bash", a, &v), 1);
    json_decref(a);
    char *etc[] = {"/etc", NULL};
    p.allow[POL_READ] = etc;
    a = json_pack("{s:s}", "command", "cat < /etc/passwd");
    assert_int_equal(policy_check(&p, "bash", a, &v), 1);
    json_decref(a);
    /* a deny write root is not bypassed with tee */
    char *deny_w[] = {fx.work, NULL};
    p.deny[POL_WRITE] = deny_w;
    a = json_pack("{s:s}", "command", "ls | tee x");
    assert_int_equal(policy_check(&p, "bash", a, &v), 0);
    snprintf(want, sizeof(want), "denied by policy: write(%s)", fx.work);
    assert_string_equal(v.reason, want);
    json_decref(a);

    /* without shell rules, read_bash is not allowed */
    struct policy none = {0};
    none.workdir = fx.work;
    static const struct pcase c2[] = {
        {"read_bash", "{\"shellId\":\"1\"}", 0, "no rule allows"},
        {"bash", "{\"command\":\"ls\"}", 0, "denied by policy: no rule allows shell(ls)"},
    };
    run_cases(&none, c2, 2);
}

static void test_file_policy(void **state)
{
    struct policy p = {0};
    char *reads[] = {fx.app, NULL};
    char *writes[] = {fx.work, NULL};
    char j[64][PATH_MAX + 128];
    char want[8][PATH_MAX + 128];
    int n = 0;

    p.allow[POL_READ] = reads;
    p.allow[POL_WRITE] = writes;
    p.workdir = fx.work;

#define J(...) (snprintf(j[n], sizeof(j[n]), __VA_ARGS__), j[n++])
    snprintf(want[0], sizeof(want[0]), "denied by policy: no rule allows read(%s/x)", fx.application);
    snprintf(want[1], sizeof(want[1]), "denied by policy: no rule allows write(%s/x)", fx.app);
    const struct pcase cases[] = {
        {"view", J("{\"path\":\"%s/x.log\"}", fx.app), 1, NULL},
        {"view", J("{\"path\":\"%s\"}", fx.app), 1, NULL},
        {"view", J("{\"path\":\"%s/x\"}", fx.application), 0, want[0]},
        {"view", "{\"path\":\"../../../../../../../../../etc/passwd\"}", 0,
         "denied by policy: no rule allows read(/etc/passwd)"},
        {"view", J("{\"path\":\"%s/link/passwd\"}", fx.app), 0,
         "denied by policy: no rule allows read(/etc/passwd)"},
        {"view", J("{\"path\":\"%s/nope/../../etc\"}", fx.app), 0, "cannot resolve"},
        {"view", "{\"path\":\"notes.txt\"}", 1, NULL}, /* relative: the workdir, a write root */
        {"view", "{\"path\":\"\"}", 0, "cannot resolve"},
        {"view", "{\"path\":\"a\\u0000b\"}", 0, "cannot resolve"},
        {"view", "{}", 0, "cannot read"},
        {"glob", J("{\"pattern\":\"**/*.c\",\"paths\":[\"%s\",\"sub\"]}", fx.app), 1, NULL},
        {"glob", J("{\"pattern\":\"*.c\",\"paths\":\"%s\"}", fx.app), 1, NULL},
        {"glob", "{\"pattern\":\"*.c\"}", 1, NULL},
        {"glob", "{\"pattern\":\"/etc/*\"}", 0, "read(/etc"},
        {"glob", "{\"pattern\":\"../../*\"}", 0, "cannot resolve"},
        {"glob", J("{\"pattern\":\"*\",\"paths\":[\"%s\",\"/etc\"]}", fx.app), 0,
         "denied by policy: no rule allows read(/etc)"},
        {"glob", "{\"pattern\":\"*\",\"paths\":3}", 0, "cannot read"},
        {"glob", "{\"pattern\":\"*\",\"paths\":[3]}", 0, "cannot read"},
        {"grep", J("{\"pattern\":\"x\",\"paths\":\"%s\",\"glob\":\"*.log\"}", fx.app), 1, NULL},
        {"create", "{\"path\":\"new.txt\",\"file_text\":\"x\"}", 1, NULL},
        {"create", J("{\"path\":\"%s/x\",\"file_text\":\"x\"}", fx.app), 0, want[1]},
        {"create", "{\"path\":\"/etc/x\"}", 0, "denied by policy: no rule allows write(/etc/x)"},
        {"create", "{\"path\":\"dangling\"}", 0, "cannot resolve"},
        {"edit", "{\"path\":\"sub/dir/f.c\",\"old_str\":\"a\",\"new_str\":\"b\"}", 1, NULL},
        {"edit", "{\"path\":[\"x\"]}", 0, "cannot read"},
    };
#undef J
    run_cases(&p, cases, sizeof(cases) / sizeof(cases[0]));
    /* the same decisions with the roots resolved once, at load */
    policy_resolve_roots(&p);
    run_cases(&p, cases, sizeof(cases) / sizeof(cases[0]));
    policy_roots_free(&p);

    struct pol_verdict v;
    json_t *a = json_pack("{s:s}", "path", "sub/./f.c");
    assert_int_equal(policy_check(&p, "edit", a, &v), 1);
    snprintf(want[2], sizeof(want[2]), "%s/sub/f.c", fx.work);
    assert_string_equal(v.target, want[2]);
    assert_int_equal(v.kind, POL_WRITE);
    json_decref(a);

    /* a deny read root inside an allowed one wins, and forbids writing too */
    char *deny_r[] = {want[3], NULL};
    snprintf(want[3], sizeof(want[3]), "%s/secret", fx.work);
    p.deny[POL_READ] = deny_r;
    a = json_pack("{s:s}", "path", "secret/k");
    assert_int_equal(policy_check(&p, "view", a, &v), 0);
    assert_false(v.by_default);
    assert_int_equal(policy_check(&p, "create", a, &v), 0);
    snprintf(want[4], sizeof(want[4]), "denied by policy: read(%s/secret)", fx.work);
    assert_string_equal(v.reason, want[4]);
    /* resolved once: a deny root that does not exist (yet) still denies by its spelling */
    policy_resolve_roots(&p);
    assert_int_equal(policy_check(&p, "view", a, &v), 0);
    assert_string_equal(v.reason + strlen(v.reason) - strlen("/secret)"), "/secret)");
    policy_roots_free(&p);
    json_decref(a);
}

static void test_url_policy(void **state)
{
    char *allow[] = {"example.com", "*.corp.example", "[::1]", NULL};
    char *deny[] = {"bad.corp.example", NULL};
    struct policy p = {0};
    static const struct pcase cases[] = {
        {"web_fetch", "{\"url\":\"https://example.com/x?y=1\"}", 1, NULL},
        {"web_fetch", "{\"url\":\"https://user:pw@EXAMPLE.com:8443/\"}", 1, NULL},
        {"web_fetch", "{\"url\":\"http://a.corp.example\"}", 1, NULL},
        {"web_fetch", "{\"url\":\"http://[::1]:8080/\"}", 1, NULL},
        {"web_fetch", "{\"url\":\"http://bad.corp.example/\"}", 0, "denied by policy: url(bad.corp.example)"},
        {"web_fetch", "{\"url\":\"https://evil.com/\"}", 0, "denied by policy: no rule allows url(evil.com)"},
        {"web_fetch", "{\"url\":\"https://example.com@evil.com/\"}", 0, "denied by policy: no rule allows url(evil.com)"},
        {"web_fetch", "{\"url\":\"ftp://example.com/\"}", 0, "not an http(s) URL"},
        {"web_fetch", "{\"url\":\"http://example.com\\\\@evil.com/\"}", 0, "not an http(s) URL"},
        {"web_fetch", "{\"url\":\"http://%65vil.com/\"}", 0, "not an http(s) URL"},
        {"web_fetch", "{\"url\":\"example.com\"}", 0, "not an http(s) URL"},
        {"web_fetch", "{\"url\":\"http://\"}", 0, "not an http(s) URL"},
        {"web_fetch", "{}", 0, "cannot read"},
    };

    p.allow[POL_URL] = allow;
    p.deny[POL_URL] = deny;
    p.workdir = fx.work;
    run_cases(&p, cases, sizeof(cases) / sizeof(cases[0]));

    struct pol_verdict v;
    json_t *a = json_pack("{s:s}", "url", "https://user:pw@EXAMPLE.com:8443/");
    policy_check(&p, "web_fetch", a, &v);
    assert_string_equal(v.target, "example.com");
    assert_int_equal(v.kind, POL_URL);
    json_decref(a);
}

static void test_mcp_agent_policy(void **state)
{
    char *servers[] = {"elk", "elk-prod", "grafana", NULL};
    char *allow_mcp[] = {"elk-*", NULL};
    char *deny_mcp[] = {"elk-prod-*", NULL};
    char *delegates[] = {"sql", NULL};
    struct policy p = {0};
    static const struct pcase cases[] = {
        {"elk-search", "{\"q\":1}", 1, NULL},
        {"elk-prod-search", "{}", 0, "denied by policy: mcp(elk-prod-*)"},
        {"grafana-query", "{}", 0, "denied by policy: no rule allows mcp(grafana-query)"},
        {"nosuch-tool", "{}", 0, "denied by policy: unknown tool nosuch-tool"},
        {"elk-", "{}", 0, "unknown tool"},
        {"task", "{\"agent_type\":\"sql\",\"prompt\":\"x\"}", 1, NULL},
        {"task", "{\"agent_type\":\"ops\"}", 0, "denied by policy: no rule allows agent(ops)"},
        {"task", "{}", 0, "cannot read"},
        {"read_agent", "{\"agent_id\":\"a\"}", 1, NULL},
        {"list_agents", "{}", 1, NULL},
        {"write_agent", "{\"agent_id\":\"a\",\"message\":\"m\"}", 1, NULL},
        {"skill", "{\"skill\":\"x\"}", 0, "unknown tool"},
        {"frobnicate", "{}", 0, "denied by policy: unknown tool frobnicate"},
        {"view", "\"not an object\"", 0, "not an object"},
        {"view", "[1]", 0, "not an object"},
        {"bash", NULL, 0, "not an object"},
    };

    p.allow[POL_MCP] = allow_mcp;
    p.deny[POL_MCP] = deny_mcp;
    p.allow[POL_AGENT] = delegates;
    p.mcp_servers = servers;
    p.workdir = fx.work;
    run_cases(&p, cases, sizeof(cases) / sizeof(cases[0]));

    p.allow[POL_AGENT] = NULL;
    static const struct pcase c2[] = {
        {"read_agent", "{\"agent_id\":\"a\"}", 0, "no rule allows"},
        {"task", "{\"agent_type\":\"sql\"}", 0, "denied by policy: no rule allows agent(sql)"},
    };
    run_cases(&p, c2, 2);
}

/* An allowed call names the rules that allowed it, each once, in the audit's "rule". */
static void test_allow_rules(void **state)
{
    char *rules_shell[] = {"ls", "grep", "w*", NULL};
    char *allow_read[] = {fx.app, NULL};
    char *allow_write[] = {fx.work, NULL};
    char *allow_mcp[] = {"elk-*", NULL};
    char *allow_url[] = {"*.example", NULL};
    char *servers[] = {"elk", NULL};
    struct policy p = {0};
    struct {
        const char *tool, *args;
        char want[POL_RULE_MAX];
    } c[] = {
        {"bash", "{\"command\":\"ls | grep x && wc -l\"}", "shell(ls),shell(grep),shell(w*)"},
        {"bash", "{\"command\":\"ls; ls -l; grep a b\"}", "shell(ls),shell(grep)"},
        {"bash", "{\"command\":\"grep x log > out.txt\"}", ""},
        {"elk-search", "{}", "mcp(elk-*)"},
        {"web_fetch", "{\"url\":\"https://a.example/\"}", "url(*.example)"},
        {"view", "{\"path\":\"x\"}", ""},
        {"read_bash", "{\"shellId\":\"1\"}", "shell(ls)"},
    };

    snprintf(c[2].want, sizeof(c[2].want), "write(%s),shell(grep)", fx.work);
    snprintf(c[5].want, sizeof(c[5].want), "write(%s)", fx.work); /* write roots are readable */
    p.allow[POL_SHELL] = rules_shell;
    p.allow[POL_READ] = allow_read;
    p.allow[POL_WRITE] = allow_write;
    p.allow[POL_MCP] = allow_mcp;
    p.allow[POL_URL] = allow_url;
    p.mcp_servers = servers;
    p.workdir = fx.work;
    for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
        struct pol_verdict v;
        json_t *a = json_loads(c[k].args, 0, NULL);
        assert_int_equal(policy_check(&p, c[k].tool, a, &v), 1);
        if (strcmp(v.rule, c[k].want) != 0)
            fail_msg("case %zu: rule [%s], want [%s]", k, v.rule, c[k].want);
        json_decref(a);
    }

    /* A line needing more rules than fit: the list ends with "...", within the field. */
    char *many[201], names[200][8], line[2000];
    size_t len = 0;
    for (int k = 0; k < 200; k++) {
        snprintf(names[k], sizeof(names[k]), "c%03d", k);
        many[k] = names[k];
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%sc%03d", k ? ";" : "", k);
    }
    many[200] = NULL;
    p.allow[POL_SHELL] = many;
    json_t *a = json_pack("{s:s}", "command", line);
    struct pol_verdict v;
    assert_int_equal(policy_check(&p, "bash", a, &v), 1);
    assert_true(strlen(v.rule) < sizeof(v.rule));
    assert_string_equal(v.rule + strlen(v.rule) - 4, ",...");
    assert_memory_equal(v.rule, "shell(c000),shell(c001)", 23);
    json_decref(a);
}

static void test_managed_deny_and_names(void **state)
{
    struct policy p = {0};
    json_t *a;
    char *s;

    p.deny[POL_SHELL] = deny_shell;
    a = policy_managed_deny(&p);
    s = json_dumps(a, JSON_COMPACT);
    assert_string_equal(s, "[\"shell(rm)\",\"shell(rm *)\",\"shell(sudo)\",\"shell(sudo *)\"]");
    free(s);
    json_decref(a);
    p.deny[POL_SHELL] = NULL;
    a = policy_managed_deny(&p);
    assert_int_equal(json_array_size(a), 0);
    json_decref(a);

    assert_string_equal(policy_kind_name(POL_SHELL), "shell");
    assert_string_equal(policy_kind_name(POL_AGENT), "agent");

    /* a long target is cut with "..." */
    char *line = malloc(3000);
    struct pol_verdict v;
    memset(line, 'x', 2999);
    line[2999] = '\0';
    a = json_pack("{s:s}", "command", line);
    assert_int_equal(policy_check(&p, "bash", a, &v), 0);
    assert_int_equal(strlen(v.target), POL_TARGET_MAX - 1);
    assert_string_equal(v.target + POL_TARGET_MAX - 4, "...");
    json_decref(a);
    free(line);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shell_read),
        cmocka_unit_test(test_shell_limits),
        cmocka_unit_test(test_shell_policy),
        cmocka_unit_test(test_file_policy),
        cmocka_unit_test(test_url_policy),
        cmocka_unit_test(test_mcp_agent_policy),
        cmocka_unit_test(test_allow_rules),
        cmocka_unit_test(test_managed_deny_and_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
