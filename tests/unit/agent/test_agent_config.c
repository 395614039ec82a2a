/* Unit tests for agent/config: the `agents:` section, its checks, and the session.create
 * parameters each agent's profile gives. */
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

#include "agent/config.h"
#include "broker/conv.h"
#include "broker/profile.h"
#include "jsontest.h"
#include "util/cfg.h"
#include "util/util.h"

static char tmp[PATH_MAX];     /* a temp dir: the agents' workdir */
static char realtmp[PATH_MAX]; /* its realpath */
static char prompt_file[PATH_MAX + 16];

static int setup(void **state)
{
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s/gw-agentcfg-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(tmp));
    assert_non_null(realpath(tmp, realtmp));
    snprintf(prompt_file, sizeof(prompt_file), "%s/sql.md", tmp);
    f = fopen(prompt_file, "w");
    assert_non_null(f);
    fputs("You write SQL.\n", f);
    fclose(f);
    setenv("GW_TEST_ELK_URL", "http://elk.internal:9200", 1);
    setenv("GW_TEST_TOKEN", "tok-123", 1);
    setenv("GITHUB_TOKEN", "ghs_gateway_secret", 1);
    setenv("COPILOT_GATEWAY_PROVIDER_KEY", "sk-gateway-secret", 1);
    unsetenv("GW_TEST_UNSET");
    return 0;
}

static int teardown(void **state)
{
    assert_int_equal(util_rmtree(tmp), 0);
    return 0;
}

/* text with every @WD@ replaced by the temp dir and @PF@ by the prompt file (owned). */
static char *subst(const char *text)
{
    size_t cap = strlen(text) * 2 + 4 * PATH_MAX, n = 0;
    char *out = calloc(1, cap);

    assert_non_null(out);
    while (*text) {
        const char *rep = strncmp(text, "@WD@", 4) == 0   ? tmp
                          : strncmp(text, "@PF@", 4) == 0 ? prompt_file
                                                          : NULL;
        if (rep) {
            n += (size_t)snprintf(out + n, cap - n, "%s", rep);
            text += 4;
        } else {
            out[n++] = *text++;
        }
        assert_true(n < cap);
    }
    return out;
}

/* Loads yaml as the file `name` and runs agents_load on its `agents:`; returns its status. */
static int load_as(const char *name, const char *yaml, struct gw_config *c, struct agents *as,
                   struct gw_err *e)
{
    char *text = subst(yaml);
    int rc;

    memset(e, 0, sizeof(*e));
    rc = cfg_load_mem(c, name, text, strlen(text), e);
    free(text);
    if (rc) {
        print_error("config did not load: %s\n", e->msg);
        return rc;
    }
    return agents_load(cfg_file_node(c, "agents"), as, e);
}

static int load(const char *yaml, struct gw_config *c, struct agents *as, struct gw_err *e)
{
    return load_as("test.yaml", yaml, c, as, e);
}

static const char full_yaml[] =
    "listen: 127.0.0.1:0\n"
    "agents:\n"
    "  logs:\n"
    "    description: Finds errors in the application logs\n"
    "    model: gpt-5-mini\n"
    "    instructions: You are a log analyst.\n"
    "    workdir: @WD@/.\n"
    "    tools: [bash, view, grep]\n"
    "    mcp-servers:\n"
    "      elk:\n"
    "        command: /opt/mcp/elk-server\n"
    "        args: [--index, app-*]\n"
    "        env: {ELK_URL: \"${GW_TEST_ELK_URL}\", PRICE: \"$$5 and $x\"}\n"
    "        tools: [search, get_document]\n"
    "      grafana:\n"
    "        url: http://grafana-mcp.internal/mcp\n"
    "        headers: {Authorization: \"Bearer ${GW_TEST_TOKEN}\"}\n"
    "        timeout-s: 5\n"
    "    allow: {shell: [grep, tail], read: [@WD@]}\n"
    "    deny: {shell: [rm]}\n"
    "    delegates: [sql]\n"
    "  sql:\n"
    "    model: gpt-5\n"
    "    instructions-file: @PF@\n"
    "    workdir: @WD@\n"
    "    tools: view\n"
    "    max-tool-calls: 7\n"
    "    timeout-s: 20\n"
    "    mcp-servers:\n"
    "      db: {url: https://db.internal/sse, type: sse, tools: [query]}\n";

static void assert_strv(char *const *v, const char *const *want)
{
    size_t i = 0;

    for (; want[i]; i++) {
        assert_non_null(v);
        assert_non_null(v[i]);
        assert_string_equal(v[i], want[i]);
    }
    assert_true(!v || !v[i]);
}

static json_t *params_of(const struct agent *ag)
{
    struct conv *c = conv_new();
    json_t *p;

    c->model = strdup(ag->model_id);
    c->system = strdup("Be brief.");
    conv_msg_add_text(conv_add_msg(c, CONV_USER), "hi", 2);
    p = profile_session_params(&ag->profile, c, "sess-1", NULL, "/tmp/broker-empty", NULL);
    conv_free(c);
    return roundtrip(p);
}

static void test_full_agent(void **state)
{
    struct gw_config c;
    struct agents as;
    struct gw_err e;
    const struct agent *logs, *sql;
    json_t *p, *want, *elk;
    char *dump;

    assert_int_equal(load(full_yaml, &c, &as, &e), GW_OK);
    assert_int_equal(as.n, 2);
    logs = agents_find(&as, "agent/logs");
    sql = agents_find(&as, "agent/sql");
    assert_non_null(logs);
    assert_non_null(sql);
    assert_null(agents_find(&as, "logs"));
    assert_null(agents_find(&as, "agent/nope"));
    assert_string_equal(logs->workdir, realtmp);
    assert_string_equal(sql->instructions, "You write SQL.\n");
    assert_int_equal(logs->max_tool_calls, 50);
    assert_int_equal(logs->profile.timeout_ms, 300000);
    assert_int_equal(sql->profile.max_tool_calls, 7);
    assert_int_equal(sql->profile.timeout_ms, 20000);
    assert_strv(logs->policy.allow[POL_SHELL], (const char *const[]){"grep", "tail", NULL});
    assert_strv(logs->policy.deny[POL_SHELL], (const char *const[]){"rm", NULL});
    /* the ${VAR}s the MCP servers read, each once: kept from the runtime's environment */
    const char **refs = agents_env_refs(&as);
    assert_strv((char *const *)refs, (const char *const[]){"GW_TEST_ELK_URL", "GW_TEST_TOKEN", NULL});
    free(refs);
    assert_strv(logs->policy.allow[POL_AGENT], (const char *const[]){"sql", NULL});
    assert_strv(logs->policy.mcp_servers, (const char *const[]){"elk", "grafana", NULL});
    assert_string_equal(logs->policy.workdir, realtmp);
    assert_null(sql->policy.allow[POL_AGENT]);

    p = params_of(logs);
    assert_string_equal(str_at(p, "systemMessage.mode"), "replace");
    assert_string_equal(str_at(p, "systemMessage.content"), "You are a log analyst.\n\nBe brief.");
    want = jsq("['bash','view','grep','mcp:*','task','read_agent','list_agents','write_agent']");
    assert_true(json_equal(at(p, "availableTools"), want));
    json_decref(want);
    assert_true(json_is_true(at(p, "requestPermission")));
    assert_true(json_is_true(at(p, "hooks")));
    assert_string_equal(str_at(p, "workingDirectory"), realtmp);

    /* stdio: env -i with PATH, HOME, LANG, then its own env, then the command. */
    elk = at(p, "mcpServers.elk");
    assert_string_equal(str_at(elk, "type"), "stdio");
    assert_string_equal(str_at(elk, "command"), "/usr/bin/env");
    assert_string_equal(str_at(elk, "args.0"), "-i");
    assert_string_equal(str_at(elk, "args.1") + 5,
                        getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    assert_memory_equal(str_at(elk, "args.1"), "PATH=", 5);
    assert_memory_equal(str_at(elk, "args.2"), "HOME=", 5);
    assert_memory_equal(str_at(elk, "args.3"), "LANG=", 5);
    assert_string_equal(str_at(elk, "args.4"), "ELK_URL=http://elk.internal:9200");
    assert_string_equal(str_at(elk, "args.5"), "PRICE=$5 and $x");
    assert_string_equal(str_at(elk, "args.6"), "/opt/mcp/elk-server");
    assert_string_equal(str_at(elk, "args.7"), "--index");
    assert_string_equal(str_at(elk, "args.8"), "app-*");
    assert_int_equal(json_array_size(at(elk, "args")), 9);
    assert_null(at(elk, "env"));
    assert_string_equal(str_at(elk, "cwd"), realtmp);
    want = jsq("['search','get_document']");
    assert_true(json_equal(at(elk, "tools"), want));
    json_decref(want);
    assert_int_equal(json_integer_value(at(elk, "timeout")), 60000);

    want = jsq("{'type':'http','url':'http://grafana-mcp.internal/mcp','headers':"
               "{'Authorization':'Bearer tok-123'},'tools':['*'],'timeout':5000}");
    assert_true(json_equal(at(p, "mcpServers.grafana"), want));
    json_decref(want);

    /* The delegate: its own prompt, tools and servers, only in customAgents. */
    want = jsq("[{'name':'sql','description':'','prompt':'You write SQL.\\n','tools':"
               "['view','db-query'],'infer':true,'model':'gpt-5','mcpServers':{'db':{'type':"
               "'sse','url':'https://db.internal/sse','tools':['query'],'timeout':60000}}}]");
    assert_true(json_equal(at(p, "customAgents"), want));
    json_decref(want);
    assert_null(at(p, "mcpServers.db"));

    /* deny: {shell: [rm]} is mirrored as the runtime's own fence. */
    want = jsq("['shell(rm)','shell(rm *)']");
    assert_true(json_equal(at(p, "managedSettings.permissions.deny"), want));
    json_decref(want);

    /* Nothing of the gateway's own secrets reaches the session parameters. */
    dump = json_dumps(p, 0);
    assert_null(strstr(dump, "ghs_gateway_secret"));
    assert_null(strstr(dump, "sk-gateway-secret"));
    free(dump);
    json_decref(p);

    p = params_of(sql);
    want = jsq("['view','mcp:*']");
    assert_true(json_equal(at(p, "availableTools"), want));
    json_decref(want);
    assert_string_equal(str_at(p, "systemMessage.content"), "You write SQL.\n\n\nBe brief.");
    assert_null(at(p, "customAgents"));
    json_decref(p);

    agents_free(&as);
    agents_free(&as); /* idempotent */
    cfg_release(&c);
}

static void test_no_agents(void **state)
{
    struct gw_config c;
    struct agents as;
    struct gw_err e;

    assert_int_equal(load("listen: 127.0.0.1:0\n", &c, &as, &e), GW_OK);
    assert_int_equal(as.n, 0);
    assert_null(agents_find(&as, "agent/x"));
    agents_free(&as);
    cfg_release(&c);
    assert_int_equal(load("agents:\n", &c, &as, &e), GW_OK);
    assert_int_equal(as.n, 0);
    agents_free(&as);
    cfg_release(&c);
}

/* Lines 1-5 are a valid agent; each case adds from line 6. */
#define HEAD "agents:\n  logs:\n    model: m\n    workdir: @WD@\n    instructions: x\n"

static const struct {
    const char *yaml;
    const char *want; /* the start of the message */
} bad[] = {
    {HEAD "    colour: red\n", "test.yaml:6: 'agents.logs.colour': unknown key"},
    {HEAD "    tools: {a: b}\n",
     "test.yaml:6: 'agents.logs.tools': expected a list of strings, got a mapping"},
    {HEAD "    max-tool-calls: 0\n",
     "test.yaml:6: 'agents.logs.max-tool-calls': expected an integer in 1..10000, got '0'"},
    {"agents:\n  logs:\n    workdir: /\n    instructions: x\n",
     "test.yaml:3: 'agents.logs': missing required key 'model'"},
    {"agents:\n  logs:\n    model: m\n    instructions: x\n",
     "test.yaml:3: 'agents.logs': missing required key 'workdir'"},
    {"agents:\n  logs:\n    model: m\n    workdir: @WD@/missing\n    instructions: x\n",
     "test.yaml:4: 'agents.logs.workdir': '"},
    {"agents:\n  logs:\n    model: m\n    workdir: @PF@\n    instructions: x\n",
     "test.yaml:4: 'agents.logs.workdir': '"},
    {HEAD "    allow:\n      read: [/srv, \"\"]\n",
     "test.yaml:7: 'agents.logs.allow.read[1]': a path cannot be empty"},
    {HEAD "    tools:\n      - bash\n      - task\n",
     "test.yaml:8: 'agents.logs.tools[1]': unknown tool 'task'"},
    {HEAD "    mcp-servers:\n      x: {command: /bin/x, url: http://h/mcp}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x': give exactly one of 'command' (stdio) and 'url'"},
    {HEAD "    mcp-servers:\n      x:\n        tools: [a]\n",
     "test.yaml:8: 'agents.logs.mcp-servers.x': give exactly one of 'command' (stdio) and 'url'"},
    {HEAD "    delegates: [nope]\n",
     "test.yaml:6: 'agents.logs.delegates[0]': no agent named 'nope'"},
    {HEAD "    delegates: [logs]\n",
     "test.yaml:6: 'agents.logs.delegates[0]': an agent cannot delegate to itself"},
    {"agents:\n  Logs:\n    model: m\n    workdir: /\n    instructions: x\n",
     "test.yaml:3: 'agents.Logs': an agent name must match [a-z0-9][a-z0-9_-]{0,63}"},
    {"agents:\n  logs:\n    model: m\n    workdir: /\n    instructions-file: @WD@/none.md\n",
     "test.yaml:5: 'agents.logs.instructions-file': cannot read '"},
    {"agents:\n  logs:\n    model: m\n    workdir: /\n    instructions-file: @WD@\n",
     "test.yaml:5: 'agents.logs.instructions-file': cannot read '"},
    {HEAD "    instructions-file: @PF@\n",
     "test.yaml:6: 'agents.logs.instructions-file': give exactly one of 'instructions' and"},
    {"agents:\n  logs:\n    model: m\n    workdir: /\n",
     "test.yaml:3: 'agents.logs': give exactly one of 'instructions' and 'instructions-file'"},
    {HEAD "    mcp-servers:\n      x:\n        command: /bin/x\n        env:\n"
          "          A: \"${GW_TEST_TOKEN}${GW_TEST_UNSET}\"\n",
     "test.yaml:10: 'agents.logs.mcp-servers.x.env.A': environment variable 'GW_TEST_UNSET' is "
     "not set"},
    {HEAD "    mcp-servers:\n      x:\n        url: http://h/mcp\n        headers:\n"
          "          Authorization: \"Bearer ${GW_TEST_TOKEN\"\n",
     "test.yaml:10: 'agents.logs.mcp-servers.x.headers.Authorization': bad ${...} reference"},
    {HEAD "    mcp-servers:\n      x: {command: PATH=/tmp}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.command': a command cannot be empty"},
    {HEAD "    mcp-servers:\n      x: {url: http://h/mcp, type: stdio}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.type': type stdio needs 'command'"},
    {"agents: [logs]\n", "test.yaml:1: 'agents': expected a mapping of named entries, got a list"},
    {HEAD "    mcp-servers:\n      x: {url: http://h/mcp, args: [a]}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.args': only a stdio server (command) takes this"},
    {HEAD "    mcp-servers:\n      x: {url: ftp://h/mcp}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.url': expected an http:// or https:// URL"},
    {HEAD "    mcp-servers:\n      x: {command: /bin/x, env: {1A: b}}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.env.1A': not a valid environment variable name"},
    {HEAD "    mcp-servers:\n      bad.name: {command: /bin/x}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.bad.name': an MCP server name must match"},
    {HEAD "    mcp-servers:\n      x: {url: http://h/mcp, headers: {X: \"a\\nb\"}}\n",
     "test.yaml:7: 'agents.logs.mcp-servers.x.headers.X': a header value cannot hold a line"},
    {"agents:\n  \"a\\tb\":\n    model: m\n    workdir: /\n    instructions: x\n",
     "test.yaml:3: 'agents.a?b': an agent name must match"},
};

/* Relative paths: from the config file's directory (workdir, instructions-file, an MCP
 * server's command with a '/' and its cwd); read/write roots from the agent's workdir. */
static void test_relative_paths(void **state)
{
    char name[PATH_MAX + 32], sub[PATH_MAX + 32], want[PATH_MAX + 64];
    struct gw_config c;
    struct agents as;
    struct gw_err e;

    snprintf(name, sizeof(name), "%s/gateway.yaml", realtmp);
    snprintf(sub, sizeof(sub), "%s/sub", realtmp);
    mkdir(sub, 0700);
    assert_int_equal(load_as(name,
                             "agents:\n  a:\n    model: m\n    instructions: x\n    workdir: sub\n"
                             "    mcp-servers:\n      s: {command: bin/srv, cwd: ., tools: [t]}\n"
                             "      p: {command: node, tools: [t]}\n"
                             "    allow: {read: [logs, /srv, ../up], mcp: [s-t]}\n"
                             "    deny: {write: [./x]}\n",
                             &c, &as, &e),
                     GW_OK);
    assert_string_equal(as.v[0].workdir, sub);
    snprintf(want, sizeof(want), "%s/bin/srv", realtmp);
    assert_string_equal(as.v[0].mcp[0].command, want);
    assert_string_equal(as.v[0].mcp[0].cwd, realtmp); /* resolved, as it exists */
    assert_string_equal(as.v[0].mcp[1].command, "node"); /* from PATH */
    snprintf(want, sizeof(want), "%s/logs", sub);
    assert_string_equal(as.v[0].policy.allow[POL_READ][0], want);
    assert_string_equal(as.v[0].policy.allow[POL_READ][1], "/srv");
    snprintf(want, sizeof(want), "%s/../up", sub);
    assert_string_equal(as.v[0].policy.allow[POL_READ][2], want);
    snprintf(want, sizeof(want), "%s/./x", sub);
    assert_string_equal(as.v[0].policy.deny[POL_WRITE][0], want);
    agents_free(&as);
    cfg_release(&c);
    rmdir(sub);
}

static void test_errors(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct gw_config c;
        struct agents as = {(void *)1, 1}; /* agents_load empties it */
        struct gw_err e;
        int rc = load(bad[i].yaml, &c, &as, &e);
        if (rc != GW_EINVAL || strncmp(e.msg, bad[i].want, strlen(bad[i].want)) != 0)
            fail_msg("case %zu: rc %d, message\n  %s\nwanted it to start with\n  %s", i, rc, e.msg,
                     bad[i].want);
        assert_null(strstr(e.msg, "tok-123")); /* a variable's value is never printed */
        assert_int_equal(as.n, 0);
        assert_null(as.v);
        cfg_release(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_agent),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_no_agents),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
