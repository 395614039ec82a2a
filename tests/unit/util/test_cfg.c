/* Unit tests for util/cfg: defaults, flags, environment, YAML file, precedence, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/cfg.h"
#include "util/util.h"
#include "util/yaml.h"

extern char **environ;

/* ---- helpers ------------------------------------------------------------------------------ */

/* Removes every COPILOT_GATEWAY_* variable so the caller's environment cannot leak in. */
static void clear_env(void)
{
    for (;;) {
        char name[256];
        const char *found = NULL;
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, "COPILOT_GATEWAY_", 16) == 0) {
                found = *e;
                break;
            }
        if (!found)
            return;
        size_t n = strcspn(found, "=");
        assert_true(n < sizeof(name));
        memcpy(name, found, n);
        name[n] = '\0';
        assert_int_equal(unsetenv(name), 0);
    }
}

static int setup(void **state)
{
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    clear_env();
    return 0;
}

#define NARGS(a) (int)(sizeof(a) / sizeof((a)[0]))

/* cfg_load over argv[1..] as the flags ("prog" in argv[0]). */
static int load(struct gw_config *c, struct gw_err *e, int argc, char **argv)
{
    memset(e, 0, sizeof(*e));
    return cfg_load(c, argc, argv, 1, e);
}

struct tmpdir {
    char dir[64];
    char path[128];
};

/* Writes text to <tmpdir>/gw.yaml; t->path names it. */
static void write_yaml(struct tmpdir *t, const char *text)
{
    FILE *f;

    snprintf(t->dir, sizeof(t->dir), "/tmp/test_cfg.XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/gw.yaml", t->dir);
    f = fopen(t->path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void drop_tmp(struct tmpdir *t)
{
    assert_int_equal(util_rmtree(t->dir), GW_OK);
}

/* Loads a config from YAML text alone; returns the status, fills c and e. */
static int load_yaml_text(struct gw_config *c, struct gw_err *e, struct tmpdir *t, const char *text)
{
    write_yaml(t, text);
    char *argv[] = {"prog", "--config", t->path};
    return load(c, e, NARGS(argv), argv);
}

/* ---- defaults ----------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "127.0.0.1:3000");
    assert_null(c.config);
    assert_null(c.copilot);
    assert_null(c.home);
    assert_string_equal(c.data, "./data");
    assert_null(c.provider_url);
    assert_null(c.provider_key);
    assert_string_equal(c.provider_type, "openai");
    assert_string_equal(c.log_level, "info");
    assert_null(c.api_key);
    assert_int_equal(c.max_body_bytes, 33554432);
    assert_int_equal(c.max_header_bytes, 65536);
    assert_int_equal(c.read_timeout_s, 60);
    assert_int_equal(c.turn_timeout_ms, 600000);
    assert_int_equal(c.call_timeout_ms, 30000);
    assert_int_equal(c.shutdown_timeout_s, 30);
    assert_int_equal(c.models_ttl_s, 300);
    cfg_release(&c);
    assert_null(c.listen);
    assert_null(c.provider_type);
    cfg_release(&c); /* twice is harmless */
}

static void test_first_skips_leading_args(void **state)
{
    struct gw_config c;
    struct gw_err e = {0};
    char *argv[] = {"prog", "serve", "--listen", "0.0.0.0:1"};

    assert_int_equal(cfg_load(&c, NARGS(argv), argv, 2, &e), GW_OK);
    assert_string_equal(c.listen, "0.0.0.0:1");
    cfg_release(&c);

    /* first == argc: no flags at all */
    assert_int_equal(cfg_load(&c, NARGS(argv), argv, NARGS(argv), &e), GW_OK);
    assert_string_equal(c.listen, "127.0.0.1:3000");
    cfg_release(&c);
}

/* ---- flags -------------------------------------------------------------------------------- */

static void test_flags_space_form(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog",
                    "--listen",
                    "127.0.0.1:8080",
                    "--copilot",
                    "/opt/copilot",
                    "--home",
                    "/h",
                    "--data",
                    "/d",
                    "--provider-url",
                    "http://localhost:11434/v1",
                    "--provider-key",
                    "sk-test",
                    "--provider-type",
                    "anthropic",
                    "--log-level",
                    "debug",
                    "--api-key",
                    "k1,k2",
                    "--max-body-bytes",
                    "2048",
                    "--max-header-bytes",
                    "1048576",
                    "--read-timeout-s",
                    "1",
                    "--turn-timeout-ms",
                    "100",
                    "--call-timeout-ms",
                    "600000",
                    "--shutdown-timeout-s",
                    "0",
                    "--models-ttl-s",
                    "86400"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.copilot, "/opt/copilot");
    assert_string_equal(c.home, "/h");
    assert_string_equal(c.data, "/d");
    assert_string_equal(c.provider_url, "http://localhost:11434/v1");
    assert_string_equal(c.provider_key, "sk-test");
    assert_string_equal(c.provider_type, "anthropic");
    assert_string_equal(c.log_level, "debug");
    assert_string_equal(c.api_key, "k1,k2");
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.max_header_bytes, 1048576);
    assert_int_equal(c.read_timeout_s, 1);
    assert_int_equal(c.turn_timeout_ms, 100);
    assert_int_equal(c.call_timeout_ms, 600000);
    assert_int_equal(c.shutdown_timeout_s, 0);
    assert_int_equal(c.models_ttl_s, 86400);
    cfg_release(&c);
}

static void test_flags_equals_form(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog",
                    "--listen=[::1]:9000",
                    "--api-key=a=b,c==",
                    "--provider-key=",
                    "--max-body-bytes=1073741824",
                    "--data",
                    "=d"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "[::1]:9000");
    assert_string_equal(c.api_key, "a=b,c=="); /* only the first '=' splits */
    assert_string_equal(c.provider_key, "");   /* an explicit empty value */
    assert_int_equal(c.max_body_bytes, 1073741824);
    assert_string_equal(c.data, "=d"); /* space form takes the next word verbatim */
    cfg_release(&c);
}

static void test_flag_repeated_last_wins(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog", "--listen",       "a:1", "--listen=b:2",    "--listen",
                    "c:3",  "--models-ttl-s", "1",   "--models-ttl-s=2"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "c:3");
    assert_int_equal(c.models_ttl_s, 2);
    cfg_release(&c); /* LeakSanitizer: the overwritten strings were freed */
}

/* ---- environment -------------------------------------------------------------------------- */

static void test_env(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog"};

    setenv("COPILOT_GATEWAY_PROVIDER_URL", "https://models.example/v1", 1);
    setenv("COPILOT_GATEWAY_PROVIDER_KEY", "sk-env", 1);
    setenv("COPILOT_GATEWAY_LISTEN", "0.0.0.0:4000", 1);
    setenv("COPILOT_GATEWAY_LOG_LEVEL", "error", 1);
    setenv("COPILOT_GATEWAY_MAX_BODY_BYTES", "4096", 1);
    setenv("COPILOT_GATEWAY_TURN_TIMEOUT_MS", "1234", 1);
    setenv("COPILOT_GATEWAY_API_KEY", "x,y", 1);
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.provider_url, "https://models.example/v1");
    assert_string_equal(c.provider_key, "sk-env");
    assert_string_equal(c.listen, "0.0.0.0:4000");
    assert_string_equal(c.log_level, "error");
    assert_int_equal(c.max_body_bytes, 4096);
    assert_int_equal(c.turn_timeout_ms, 1234);
    assert_string_equal(c.api_key, "x,y");
    assert_string_equal(c.provider_type, "openai"); /* untouched settings keep defaults */
    cfg_release(&c);
    clear_env();
}

static void test_env_bad_int(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog"};

    setenv("COPILOT_GATEWAY_READ_TIMEOUT_S", "0", 1);
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_EINVAL);
    assert_int_equal(e.code, GW_EINVAL);
    assert_non_null(strstr(e.msg, "COPILOT_GATEWAY_READ_TIMEOUT_S"));
    assert_non_null(strstr(e.msg, "read-timeout-s"));
    assert_non_null(strstr(e.msg, "1..3600"));
    cfg_release(&c);
    clear_env();
}

static void test_env_config_file(void **state)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;
    char *argv[] = {"prog"};

    write_yaml(&t, "listen: 127.0.0.1:9\n");
    setenv("COPILOT_GATEWAY_CONFIG", t.path, 1);
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.config, t.path);
    assert_string_equal(c.listen, "127.0.0.1:9");
    cfg_release(&c);
    clear_env();
    drop_tmp(&t);
}

/* ---- YAML file ---------------------------------------------------------------------------- */

static void test_yaml_file(void **state)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;

    assert_int_equal(load_yaml_text(&c, &e, &t,
                                    "# gateway settings\n"
                                    "listen: 127.0.0.1:9\n"
                                    "provider-url: http://localhost:8000/v1   # trailing comment\n"
                                    "provider_key: \"sk: quoted\"\n"
                                    "provider-type: 'azure'\n"
                                    "max_body_bytes: 2048\n"
                                    "turn-timeout-ms: 5000\n"
                                    "\n"
                                    "api-key: k1,k2\n"
                                    "home: /srv/copilot-home\n"),
                     GW_OK);
    assert_string_equal(c.config, t.path);
    assert_string_equal(c.listen, "127.0.0.1:9");
    assert_string_equal(c.provider_url, "http://localhost:8000/v1");
    assert_string_equal(c.provider_key, "sk: quoted");
    assert_string_equal(c.provider_type, "azure");
    assert_int_equal(c.max_body_bytes, 2048);
    assert_int_equal(c.turn_timeout_ms, 5000);
    assert_string_equal(c.api_key, "k1,k2");
    assert_string_equal(c.home, "/srv/copilot-home");
    assert_string_equal(c.log_level, "info"); /* not in the file: default */
    cfg_release(&c);
    drop_tmp(&t);
}

/* YAML text alone must load, giving this listen address. */
static void check_yaml_listen(const char *text, const char *listen)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;

    assert_int_equal(load_yaml_text(&c, &e, &t, text), GW_OK);
    assert_string_equal(c.listen, listen);
    cfg_release(&c);
    drop_tmp(&t);
}

static void test_yaml_empty_and_comments(void **state)
{
    check_yaml_listen("", "127.0.0.1:3000");
    check_yaml_listen("# nothing but a comment\n", "127.0.0.1:3000");
    check_yaml_listen("---\nlisten: 1.2.3.4:5\n...\n", "1.2.3.4:5");
}

/* ---- precedence --------------------------------------------------------------------------- */

static void test_precedence(void **state)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;

    write_yaml(&t, "listen: file:1\n"
                   "provider-type: azure\n"
                   "log-level: warn\n"
                   "max-body-bytes: 3000\n"
                   "models-ttl-s: 7\n");
    setenv("COPILOT_GATEWAY_LISTEN", "env:2", 1);
    setenv("COPILOT_GATEWAY_PROVIDER_TYPE", "anthropic", 1);
    setenv("COPILOT_GATEWAY_MAX_BODY_BYTES", "4000", 1);
    char *argv[] = {"prog", "--config", t.path, "--listen", "flag:3", "--max-body-bytes=5000"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "flag:3");           /* flag > env > file */
    assert_int_equal(c.max_body_bytes, 5000);          /* flag > env > file */
    assert_string_equal(c.provider_type, "anthropic"); /* env > file > default */
    assert_string_equal(c.log_level, "warn");          /* file > default */
    assert_int_equal(c.models_ttl_s, 7);               /* file > default */
    assert_int_equal(c.read_timeout_s, 60);            /* default */
    cfg_release(&c);

    /* Without the flags, env wins over the file. */
    char *argv2[] = {"prog", "--config", t.path};
    assert_int_equal(load(&c, &e, NARGS(argv2), argv2), GW_OK);
    assert_string_equal(c.listen, "env:2");
    assert_int_equal(c.max_body_bytes, 4000);
    cfg_release(&c);

    clear_env();
    drop_tmp(&t);
}

static void test_precedence_bad_file_value_shadowed(void **state)
{
    /* The whole file is checked: a bad value is reported even where a flag overrides it. */
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;
    char where[160];

    write_yaml(&t, "listen: a:1\nmax-body-bytes: 1\n");
    char *argv[] = {"prog", "--config", t.path, "--max-body-bytes", "2048"};
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_EINVAL);
    snprintf(where, sizeof(where),
             "%s:2: 'max-body-bytes': expected an integer in "
             "1024..1073741824, got '1'",
             t.path);
    assert_string_equal(e.msg, where);
    cfg_release(&c);
    setenv("COPILOT_GATEWAY_MAX_BODY_BYTES", "4096", 1);
    char *argv2[] = {"prog", "--config", t.path};
    assert_int_equal(load(&c, &e, NARGS(argv2), argv2), GW_EINVAL);
    assert_string_equal(e.msg, where);
    cfg_release(&c);
    clear_env();
    drop_tmp(&t);
}

/* ---- errors ------------------------------------------------------------------------------- */

struct flag_err_case {
    const char *args[4]; /* NULL-terminated */
    const char *needles[3];
};

static const struct flag_err_case flag_errs[] = {
    {{"--bogus", "1", NULL}, {"--bogus", NULL}},
    {{"--bogus=1", NULL}, {"--bogus", NULL}},
    {{"--listen-x", "1", NULL}, {"--listen-x", NULL}},
    {{"--", NULL}, {"'--'", NULL}},
    {{"serve", NULL}, {"serve", NULL}},
    {{"-l", "x", NULL}, {"-l", NULL}},
    {{"--listen", NULL}, {"--listen", "value", NULL}},
    {{"--max-body-bytes", "1023", NULL}, {"max-body-bytes", "1024..1073741824", NULL}},
    {{"--max-body-bytes", "1073741825", NULL}, {"max-body-bytes", "1024..1073741824", NULL}},
    {{"--read-timeout-s=0", NULL}, {"read-timeout-s", "1..3600", NULL}},
    {{"--shutdown-timeout-s", "-1", NULL}, {"shutdown-timeout-s", "0..3600", NULL}},
    {{"--models-ttl-s", "12abc", NULL}, {"models-ttl-s", "0..86400", NULL}},
    {{"--models-ttl-s", "", NULL}, {"models-ttl-s", NULL}},
    {{"--turn-timeout-ms", "99999999999999999999999", NULL}, {"turn-timeout-ms", NULL}},
    {{"--call-timeout-ms", "0x100", NULL}, {"call-timeout-ms", NULL}},
    {{"--max-header-bytes", "1e4", NULL}, {"max-header-bytes", NULL}},
    {{"--listen", "ok:1", "--bogus", NULL}, {"--bogus", NULL}},
};

static void test_flag_errors(void **state)
{
    for (size_t i = 0; i < sizeof(flag_errs) / sizeof(flag_errs[0]); i++) {
        char *argv[5] = {"prog"};
        int argc = 1;
        struct gw_config c;
        struct gw_err e;
        int rc;

        for (size_t k = 0; flag_errs[i].args[k]; k++)
            argv[argc++] = (char *)flag_errs[i].args[k];
        rc = load(&c, &e, argc, argv);
        if (rc != GW_EINVAL || e.code != GW_EINVAL || e.msg[0] == '\0')
            fail_msg("case %zu (%s): rc=%d msg='%s'", i, argv[1], rc, e.msg);
        for (size_t k = 0; flag_errs[i].needles[k]; k++)
            if (!strstr(e.msg, flag_errs[i].needles[k]))
                fail_msg("case %zu (%s): message '%s' lacks '%s'", i, argv[1], e.msg,
                         flag_errs[i].needles[k]);
        cfg_release(&c); /* frees what was set before the error */
    }
}

static void check_yaml_error(const char *text, const char *n1, const char *n2)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;
    int rc = load_yaml_text(&c, &e, &t, text);

    if (rc != GW_EINVAL || e.code != GW_EINVAL)
        fail_msg("'%s': rc=%d msg='%s'", text, rc, e.msg);
    if (n1 && !strstr(e.msg, n1))
        fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, n1);
    if (n2 && !strstr(e.msg, n2))
        fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, n2);
    cfg_release(&c);
    drop_tmp(&t);
}

/* YAML text that must fail, naming the file and line ("<path>:<line>") and n1 (and n2). */
static void check_yaml_error_at(const char *text, int line, const char *n1, const char *n2)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;
    char where[160];

    assert_int_equal(load_yaml_text(&c, &e, &t, text), GW_EINVAL);
    snprintf(where, sizeof(where), "%s:%d", t.path, line);
    assert_non_null(strstr(e.msg, where));
    assert_non_null(strstr(e.msg, n1));
    if (n2)
        assert_non_null(strstr(e.msg, n2));
    cfg_release(&c);
    drop_tmp(&t);
}

static void test_yaml_unknown_key(void **state)
{
    check_yaml_error_at("listen: 127.0.0.1:9\n# comment\nlisen: x\n", 3, "lisen", NULL);
    check_yaml_error("provider--url: x\n", ":1", "provider--url");
    check_yaml_error("config-file: x\n", ":1", "config-file");
}

static void test_yaml_bad_int(void **state)
{
    check_yaml_error_at("listen: a:1\nmax-body-bytes: 12\n", 2, "max-body-bytes",
                        "1024..1073741824");
    check_yaml_error("read-timeout-s: soon\n", ":1", "read-timeout-s");
}

static void test_yaml_nested_rejected(void **state)
{
    check_yaml_error_at("listen:\n  host: 127.0.0.1\n  port: 9\n", 2,
                        "'listen': expected a string, got a mapping", NULL);
    check_yaml_error_at("gateway:\n  listen: 127.0.0.1:9\n", 1, "'gateway': unknown key", NULL);
    check_yaml_error_at("listen: a:1\nskills:\n  logs: {model: m}\n", 2, "'skills': unknown key",
                        NULL);
}

static void test_yaml_syntax_error(void **state)
{
    check_yaml_error("listen: \"unterminated\n", ":", NULL);
    check_yaml_error("listen: a\n  bad indent: b\n", ":", NULL);
}

static void test_unreadable_file(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog", "--config", "/nonexistent/dir/gw.yaml"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_EINVAL);
    assert_int_equal(e.code, GW_EINVAL);
    assert_non_null(strstr(e.msg, "/nonexistent/dir/gw.yaml"));
    cfg_release(&c);

    /* A directory opens but cannot be read as YAML. */
    char dir[64] = "/tmp/test_cfg.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *argv2[] = {"prog", "--config", dir};
    assert_int_equal(load(&c, &e, NARGS(argv2), argv2), GW_EINVAL);
    assert_non_null(strstr(e.msg, dir));
    cfg_release(&c);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- nested file format: lists, maps, booleans, checks -------------------------------------- */

/* Loads text as the config file "gw.yaml" (no flags, no environment). */
static int load_mem(struct gw_config *c, struct gw_err *e, const char *text)
{
    memset(e, 0, sizeof(*e));
    return cfg_load_mem(c, "gw.yaml", text, strlen(text), e);
}

/* text must fail to load with exactly this message. */
static void check_mem_error(const char *text, const char *msg)
{
    struct gw_config c;
    struct gw_err e;
    int rc = load_mem(&c, &e, text);

    if (rc != GW_EINVAL || strcmp(e.msg, msg) != 0)
        fail_msg("'%s': rc=%d\n  got  '%s'\n  want '%s'", text, rc, e.msg, msg);
    cfg_release(&c);
}

static void test_yaml_lists_and_maps(void **state)
{
    struct gw_config c;
    struct gw_err e;

    assert_int_equal(load_mem(&c, &e,
                              "api-key: [k1, \"k2\"]\n"
                              "cors-origins:\n"
                              "  - https://a.example\n"
                              "  - https://b.example:8443\n"
                              "allowed-hosts: gw.corp:443,gw2\n"
                              "model-alias:\n"
                              "  claude-opus-4-1: claude-opus-4.1\n"
                              "  gpt-4: \"gpt-5-mini\"\n"
                              "max-body-bytes: \"2048\"\n"
                              "provider_key: 123\n"),
                     GW_OK);
    assert_string_equal(c.api_key, "k1,k2");
    assert_string_equal(c.cors_origins, "https://a.example,https://b.example:8443");
    assert_string_equal(c.allowed_hosts, "gw.corp:443,gw2"); /* the string form, verbatim */
    assert_string_equal(c.model_alias, "claude-opus-4-1=claude-opus-4.1,gpt-4=gpt-5-mini");
    assert_int_equal(c.max_body_bytes, 2048); /* a quoted integer, as before */
    assert_string_equal(c.provider_key, "123");
    assert_non_null(cfg_file_node(&c, "cors-origins"));
    assert_int_equal(cfg_file_node(&c, "cors-origins")->kind, YNODE_SEQ);
    assert_null(cfg_file_node(&c, "listen"));
    cfg_release(&c);

    /* Empty lists and maps, and the flag-style string for model-alias. */
    assert_int_equal(load_mem(&c, &e, "api-key: []\nmodel-alias: a=b,c=d\ncors-origins: {}\n"),
                     GW_EINVAL);
    assert_string_equal(e.msg, "gw.yaml:3: 'cors-origins': expected a list of strings, got a "
                               "mapping");
    cfg_release(&c);
    assert_int_equal(load_mem(&c, &e, "api-key: []\nmodel-alias: a=b,c=d\n"), GW_OK);
    assert_string_equal(c.api_key, "");
    assert_string_equal(c.model_alias, "a=b,c=d");
    cfg_release(&c);
}

static void test_yaml_booleans(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        {"true", true}, {"True", true},  {"yes", true},      {"on", true},
        {"1", true},    {"\"1\"", true}, {"false", false},   {"NO", false},
        {"off", false}, {"0", false},    {"'false'", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gw_config c;
        struct gw_err e;
        char text[64];
        snprintf(text, sizeof(text), "image-fetch-private: %s\n", cases[i].text);
        if (load_mem(&c, &e, text) != GW_OK)
            fail_msg("'%s': %s", text, e.msg);
        assert_int_equal(c.image_fetch_private, cases[i].want);
        cfg_release(&c);
    }
    check_mem_error("image-fetch-private: maybe\n",
                    "gw.yaml:1: 'image-fetch-private': expected a boolean (true or false), got "
                    "'maybe'");
    check_mem_error("image-fetch-private: [true]\n",
                    "gw.yaml:1: 'image-fetch-private': expected a boolean (true or false), got "
                    "a list");
    /* Flags and variables take the same words. */
    struct gw_config c;
    struct gw_err e;
    char *argv[] = {"prog", "--image-fetch-private", "yes"};
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_true(c.image_fetch_private);
    cfg_release(&c);
    setenv("COPILOT_GATEWAY_IMAGE_FETCH_PRIVATE", "2", 1);
    char *argv2[] = {"prog"};
    assert_int_equal(load(&c, &e, NARGS(argv2), argv2), GW_EINVAL);
    assert_string_equal(e.msg, "COPILOT_GATEWAY_IMAGE_FETCH_PRIVATE: 'image-fetch-private': "
                               "expected a boolean (true or false), got '2'");
    cfg_release(&c);
    clear_env();
}

static void test_yaml_enums(void **state)
{
    struct gw_config c;
    struct gw_err e;

    assert_int_equal(load_mem(&c, &e, "provider-type: anthropic\nlog-level: WARNING\n"), GW_OK);
    assert_string_equal(c.provider_type, "anthropic");
    assert_string_equal(c.log_level, "WARNING"); /* main.c reads it without case */
    cfg_release(&c);
    check_mem_error("listen: x:1\nprovider-type: openia\n",
                    "gw.yaml:2: 'provider-type': expected one of openai|azure|anthropic, got "
                    "'openia'");
    check_mem_error("log-level: loud\n", "gw.yaml:1: 'log-level': expected one of "
                                         "debug|info|warn|warning|error, got 'loud'");
    char *argv[] = {"prog", "--provider-type", "OpenAI"};
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_EINVAL);
    assert_string_equal(e.msg, "command line: 'provider-type': expected one of "
                               "openai|azure|anthropic, got 'OpenAI'");
    cfg_release(&c);
}

/* Every way a file can be refused, with the exact message. */
static void test_yaml_error_kinds(void **state)
{
    check_mem_error("api-key: {a: b}\n",
                    "gw.yaml:1: 'api-key': expected a list of strings, got a mapping");
    check_mem_error("api-key:\n  - k1\n  - [k2]\n",
                    "gw.yaml:3: 'api-key[1]': expected a string, got a list");
    check_mem_error("api-key: [k1, 'a,b']\n",
                    "gw.yaml:1: 'api-key[1]': a list item cannot contain ','");
    check_mem_error("model-alias:\n  a: [b]\n",
                    "gw.yaml:2: 'model-alias.a': expected a string, got a list");
    check_mem_error("model-alias: {a=b: c}\n",
                    "gw.yaml:1: 'model-alias.a=b': names here cannot contain ',' or '='");
    check_mem_error("max-sessions: 1.5\n",
                    "gw.yaml:1: 'max-sessions': expected an integer in 1..1000000, got '1.5'");
    check_mem_error("max-sessions: {}\n",
                    "gw.yaml:1: 'max-sessions': expected an integer in 1..1000000, got a "
                    "mapping");
    check_mem_error("listen: a:1\n\nlisten: b:2\n",
                    "gw.yaml:3: 'listen': duplicate key (first at line 1)");
    check_mem_error("model-alias:\n  a: b\n  c: d\n  a: e\n",
                    "gw.yaml:4: 'model-alias.a': duplicate key (first at line 2)");
    check_mem_error("max-body-bytes: 2048\nmax_body_bytes: 4096\n",
                    "gw.yaml:2: 'max_body_bytes': set twice (as 'max-body-bytes' and another "
                    "spelling)");
    check_mem_error("listen: &l a:1\n", "gw.yaml:1: 'listen': YAML anchors (&l) are not supported");
    check_mem_error("api-key: [a]\ncors-origins: *x\n",
                    "gw.yaml:2: 'cors-origins': YAML aliases (*x) are not supported");
    check_mem_error("listen: !!str a:1\n",
                    "gw.yaml:1: 'listen': YAML tags (tag:yaml.org,2002:str) are not supported");
    check_mem_error("listen: a:1\n---\nlisten: b:2\n",
                    "gw.yaml:2: more than one YAML document is not supported");
    check_mem_error("- listen\n", "gw.yaml:1: the top level must be a mapping of 'key: value' "
                                  "settings, not a list");
    check_mem_error("just text\n", "gw.yaml:1: the top level must be a mapping of 'key: value' "
                                   "settings, not a string");
    check_mem_error("listen: a\n? [x]\n: y\n",
                    "gw.yaml:2: mapping keys must be strings, not lists");
    check_mem_error("model-alias:\n  {a: b}: c\n",
                    "gw.yaml:2: 'model-alias': mapping keys must be strings, not mappings");
    check_mem_error("listen: \"a\\0b\"\n", "gw.yaml:1: 'listen': NUL characters are not allowed");
    check_mem_error("skills:\n  logs:\n    model: m\n", "gw.yaml:1: 'skills': unknown key");
    check_mem_error("listen: [a\n", "gw.yaml:2: while parsing a flow sequence: did not find "
                                    "expected ',' or ']'");
}

static void test_yaml_depth_and_size(void **state)
{
    struct gw_config c;
    struct gw_err e;
    char text[512];
    size_t n = 0;

    /* 31 nested lists under the top-level mapping: 32 levels, the most allowed. */
    n += (size_t)snprintf(text + n, sizeof(text) - n, "api-key: ");
    for (int i = 0; i < 31; i++)
        text[n++] = '[';
    for (int i = 0; i < 31; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    assert_int_equal(load_mem(&c, &e, text), GW_EINVAL); /* loads, then the type is wrong */
    assert_non_null(strstr(e.msg, "gw.yaml:1: 'api-key[0]': expected a string, got a list"));
    cfg_release(&c);
    memmove(text + 10, text + 9, n - 8);
    text[9] = '[';
    text[n + 1] = ']';
    text[n + 2] = '\n';
    text[n + 3] = '\0';
    check_mem_error(text, "gw.yaml:1: 'api-key[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
                          "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]': nested deeper than "
                          "32 levels");

    /* Over 1 MiB: refused before parsing; exactly 1 MiB of comments loads. */
    size_t big = 1024 * 1024;
    char *huge = malloc(big + 2);
    assert_non_null(huge);
    memset(huge, '#', big + 1);
    huge[0] = '\n';
    huge[big + 1] = '\0';
    assert_int_equal(cfg_load_mem(&c, "gw.yaml", huge, big + 1, &e), GW_EINVAL);
    assert_string_equal(e.msg, "gw.yaml: config file larger than 1048576 bytes");
    cfg_release(&c);
    assert_int_equal(cfg_load_mem(&c, "gw.yaml", huge + 1, big, &e), GW_OK);
    cfg_release(&c);
    free(huge);
}

static void test_yaml_file_too_big(void **state)
{
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;
    char where[160];
    FILE *f;

    write_yaml(&t, "");
    f = fopen(t.path, "w");
    assert_non_null(f);
    for (int i = 0; i < 1024 * 1024 / 16 + 1; i++)
        assert_true(fputs("# fifteen bytes\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    char *argv[] = {"prog", "--config", t.path};
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_EINVAL);
    snprintf(where, sizeof(where), "%s: config file larger than 1048576 bytes", t.path);
    assert_string_equal(e.msg, where);
    cfg_release(&c);
    drop_tmp(&t);
}

/* ---- a nested schema, as later sections (agents) will declare theirs ------------------------ */

struct t_mcp {
    char *name;
    char *command;
    struct cfg_strlist args;
    struct cfg_strmap env;
    struct cfg_strlist tools;
};

struct t_allow {
    struct cfg_strlist shell;
};

struct t_agent {
    char *name;
    char *description;
    char *model;
    char *instructions;
    struct cfg_strlist tools;
    struct cfg_entries mcp; /* struct t_mcp */
    struct t_allow allow;
    int64_t max_turns;
    bool enabled;
    char *mode;
};

struct t_root {
    struct cfg_entries agents; /* struct t_agent */
    const struct ynode *keys;  /* left for another module */
};

#define M(f) offsetof(struct t_mcp, f)
static const struct cfg_field mcp_fields[] = {
    {.name = "command", .type = CFG_STR, .off = M(command), .flags = CFG_REQUIRED},
    {.name = "args", .type = CFG_LIST, .off = M(args)},
    {.name = "env", .type = CFG_MAP, .off = M(env)},
    {.name = "tools", .type = CFG_LIST, .off = M(tools)},
};
#undef M
static const struct cfg_schema mcp_schema = {mcp_fields, 4, sizeof(struct t_mcp),
                                             offsetof(struct t_mcp, name), 0};

static const struct cfg_field allow_fields[] = {
    {.name = "shell", .type = CFG_LIST, .off = offsetof(struct t_allow, shell)},
};
static const struct cfg_schema allow_schema = {allow_fields, 1, sizeof(struct t_allow), 0, 0};

static const char *const modes[] = {"chat", "plan", NULL};
#define A(f) offsetof(struct t_agent, f)
static const struct cfg_field agent_fields[] = {
    {.name = "description", .type = CFG_STR, .off = A(description)},
    {.name = "model", .type = CFG_STR, .off = A(model), .flags = CFG_REQUIRED},
    {.name = "instructions", .type = CFG_STR, .off = A(instructions)},
    {.name = "tools", .type = CFG_LIST, .off = A(tools)},
    {.name = "mcp-servers", .type = CFG_ENTRIES, .off = A(mcp), .sub = &mcp_schema},
    {.name = "allow", .type = CFG_SECTION, .off = A(allow), .sub = &allow_schema},
    {.name = "max-turns", .type = CFG_INT, .off = A(max_turns), .def = "10", .min = 1, .max = 100},
    {.name = "enabled", .type = CFG_BOOL, .off = A(enabled), .def = "true"},
    {.name = "mode", .type = CFG_ENUM, .off = A(mode), .def = "chat", .choices = modes},
};
#undef A
static const struct cfg_schema agent_schema = {agent_fields, 9, sizeof(struct t_agent),
                                               offsetof(struct t_agent, name), 0};

static const struct cfg_field root_fields[] = {
    {.name = "agents",
     .type = CFG_ENTRIES,
     .off = offsetof(struct t_root, agents),
     .sub = &agent_schema},
    {.name = "keys", .type = CFG_NODE, .off = offsetof(struct t_root, keys)},
};
static const struct cfg_schema root_schema = {root_fields, 2, sizeof(struct t_root), 0, 0};

static const char agents_yaml[] = "agents:\n"                       /* 1 */
                                  "  logs:\n"                       /* 2 */
                                  "    description: Finds errors\n" /* 3 */
                                  "    model: gpt-5-mini\n"         /* 4 */
                                  "    instructions: |\n"           /* 5 */
                                  "      You are a log analyst.\n"  /* 6 */
                                  "    tools: [bash, view, grep]\n" /* 7 */
                                  "    mcp-servers:\n"              /* 8 */
                                  "      elk: {command: /opt/mcp/elk, args: [--index, app-*], "
                                  "env: {ELK_URL: \"http://elk:9200\"}, tools: [search]}\n" /* 9 */
                                  "    allow:\n"                                            /* 10 */
                                  "      shell: [ls, cat]\n"                                /* 11 */
                                  "  review:\n"                                             /* 12 */
                                  "    model: m2\n"                                         /* 13 */
                                  "    tools: view, grep\n"                                 /* 14 */
                                  "    max-turns: 3\n"                                      /* 15 */
                                  "    enabled: off\n"                                      /* 16 */
                                  "    mode: plan\n"                                        /* 17 */
                                  "keys: {anything: [goes, here]}\n";                       /* 18 */

static void test_nested_schema(void **state)
{
    struct ydoc d;
    struct gw_err e = {0};
    struct t_root r = {0};

    assert_int_equal(ydoc_load_mem(&d, "gw.yaml", agents_yaml, strlen(agents_yaml), &e), GW_OK);
    assert_int_equal(cfg_decode(d.root, NULL, &root_schema, &r, &e), GW_OK);
    assert_int_equal(r.agents.n, 2);
    struct t_agent *a = r.agents.v;
    assert_string_equal(a[0].name, "logs");
    assert_string_equal(a[0].description, "Finds errors");
    assert_string_equal(a[0].model, "gpt-5-mini");
    assert_string_equal(a[0].instructions, "You are a log analyst.\n");
    assert_int_equal(a[0].tools.n, 3);
    assert_string_equal(a[0].tools.v[2], "grep");
    assert_null(a[0].tools.v[3]);
    assert_int_equal(a[0].mcp.n, 1);
    struct t_mcp *m = a[0].mcp.v;
    assert_string_equal(m->name, "elk");
    assert_string_equal(m->command, "/opt/mcp/elk");
    assert_int_equal(m->args.n, 2);
    assert_string_equal(m->args.v[1], "app-*");
    assert_int_equal(m->env.n, 1);
    assert_string_equal(m->env.keys[0], "ELK_URL");
    assert_string_equal(m->env.values[0], "http://elk:9200");
    assert_string_equal(m->tools.v[0], "search");
    assert_int_equal(a[0].allow.shell.n, 2);
    assert_string_equal(a[0].allow.shell.v[1], "cat");
    assert_int_equal(a[0].max_turns, 10); /* defaults */
    assert_true(a[0].enabled);
    assert_string_equal(a[0].mode, "chat");
    assert_string_equal(a[1].name, "review");
    assert_int_equal(a[1].tools.n, 2); /* the comma-separated form */
    assert_string_equal(a[1].tools.v[0], "view");
    assert_string_equal(a[1].tools.v[1], "grep");
    assert_int_equal(a[1].max_turns, 3);
    assert_false(a[1].enabled);
    assert_string_equal(a[1].mode, "plan");
    assert_int_equal(a[1].mcp.n, 0);
    assert_non_null(r.keys);
    assert_int_equal(r.keys->kind, YNODE_MAP);
    assert_int_equal(r.keys->line, 18);
    cfg_decoded_release(&root_schema, &r);
    assert_int_equal(r.agents.n, 0);
    cfg_decoded_release(&root_schema, &r); /* twice is harmless */
    ydoc_release(&d);

    /* An empty entry is an empty mapping; a list is not a set of entries. */
    assert_int_equal(ydoc_load_mem(&d, "gw.yaml", "agents: [a]\n", strlen("agents: [a]\n"), &e),
                     GW_OK);
    assert_int_equal(cfg_decode(d.root, NULL, &root_schema, &r, &e), GW_EINVAL);
    assert_string_equal(e.msg,
                        "gw.yaml:1: 'agents': expected a mapping of named entries, got a list");
    ydoc_release(&d);
    assert_int_equal(ydoc_load_mem(&d, "x.yaml", "agents:\n  a:\n", strlen("agents:\n  a:\n"), &e),
                     GW_OK);
    assert_int_equal(cfg_decode(d.root, NULL, &root_schema, &r, &e), GW_EINVAL);
    assert_string_equal(e.msg, "x.yaml:2: 'agents.a': missing required key 'model'");
    ydoc_release(&d);
    /* A section decoded on its own, from its node and path. */
    assert_int_equal(ydoc_load_mem(&d, "gw.yaml", agents_yaml, strlen(agents_yaml), &e), GW_OK);
    const struct ynode *logs = ynode_get(ynode_get(d.root, "agents"), "logs");
    struct t_agent one = {0};
    assert_int_equal(
        cfg_decode(ynode_get(logs, "allow"), "agents.logs.allow", &allow_schema, &one.allow, &e),
        GW_OK);
    assert_string_equal(one.allow.shell.v[0], "ls");
    cfg_decoded_release(&allow_schema, &one.allow);
    assert_int_equal(cfg_decode(logs, "agents.logs", &allow_schema, &one.allow, &e), GW_EINVAL);
    assert_string_equal(e.msg, "gw.yaml:3: 'agents.logs.description': unknown key");
    ydoc_release(&d);
}

/* The agents text with line `line` (1-based) replaced must fail with exactly msg. */
static void check_nested_error(int line, const char *repl, const char *msg)
{
    char text[2048];
    const char *p = agents_yaml;
    size_t n = 0;
    struct ydoc d;
    struct gw_err e = {0};
    struct t_root r = {0};
    int rc;

    for (int l = 1; *p; l++) {
        size_t len = strcspn(p, "\n") + 1;
        if (l == line)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s", repl);
        else
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%.*s", (int)len, p);
        p += len;
    }
    rc = ydoc_load_mem(&d, "gw.yaml", text, n, &e);
    if (!rc) {
        rc = cfg_decode(d.root, NULL, &root_schema, &r, &e);
        assert_int_equal(r.agents.n, 0); /* released on failure */
        assert_null(r.agents.v);
    }
    if (rc != GW_EINVAL || strcmp(e.msg, msg) != 0)
        fail_msg("line %d '%s': rc=%d\n  got  '%s'\n  want '%s'", line, repl, rc, e.msg, msg);
    ydoc_release(&d);
}

static void test_nested_errors(void **state)
{
    check_nested_error(7, "    tools: [bash, view, {grep: x}]\n",
                       "gw.yaml:7: 'agents.logs.tools[2]': expected a string, got a mapping");
    check_nested_error(7, "    tools: [bash, ~]\n",
                       "gw.yaml:7: 'agents.logs.tools[1]': expected a string, got nothing "
                       "(null)");
    check_nested_error(7, "    tool: [bash]\n", "gw.yaml:7: 'agents.logs.tool': unknown key");
    check_nested_error(11, "      shel: [ls]\n",
                       "gw.yaml:11: 'agents.logs.allow.shel': unknown key");
    check_nested_error(4, "    description: again\n",
                       "gw.yaml:4: 'agents.logs.description': duplicate key (first at line 3)");
    check_nested_error(4, "    modell: gpt-5-mini\n",
                       "gw.yaml:4: 'agents.logs.modell': unknown key");
    check_nested_error(13, "    description: x\n",
                       "gw.yaml:13: 'agents.review': missing required key 'model'");
    check_nested_error(9, "      elk: {args: [a]}\n",
                       "gw.yaml:9: 'agents.logs.mcp-servers.elk': missing required key "
                       "'command'");
    check_nested_error(9, "      elk: {command: x, env: {ELK_URL: [a]}}\n",
                       "gw.yaml:9: 'agents.logs.mcp-servers.elk.env.ELK_URL': expected a "
                       "string, got a list");
    check_nested_error(9, "      elk: [x]\n",
                       "gw.yaml:9: 'agents.logs.mcp-servers.elk': expected a mapping, got a "
                       "list");
    check_nested_error(15, "    max-turns: \"3\"\n",
                       "gw.yaml:15: 'agents.review.max-turns': expected an integer in 1..100, "
                       "got a quoted string");
    check_nested_error(15, "    max-turns: 101\n",
                       "gw.yaml:15: 'agents.review.max-turns': expected an integer in 1..100, "
                       "got '101'");
    check_nested_error(16, "    enabled: \"true\"\n",
                       "gw.yaml:16: 'agents.review.enabled': expected a boolean (true or "
                       "false), got a quoted string");
    check_nested_error(17, "    mode: fast\n",
                       "gw.yaml:17: 'agents.review.mode': expected one of chat|plan, got "
                       "'fast'");
    check_nested_error(4, "    model:\n",
                       "gw.yaml:4: 'agents.logs.model': expected a string, got nothing (null)");
    check_nested_error(18, "key: {}\n", "gw.yaml:18: 'key': unknown key");
    check_nested_error(12, "  logs:\n",
                       "gw.yaml:12: 'agents.logs': duplicate key (first at "
                       "line 2)");
    check_nested_error(13, "    model: &m m2\n",
                       "gw.yaml:13: 'agents.review.model': YAML anchors (&m) are not supported");
}

static void test_usage(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    static const char *const names[] = {
        "--listen",         "--config",          "--copilot",         "--home",
        "--data",           "--provider-url",    "--provider-key",    "--provider-type",
        "--log-level",      "--api-key",         "--max-body-bytes",  "--max-header-bytes",
        "--read-timeout-s", "--turn-timeout-ms", "--call-timeout-ms", "--shutdown-timeout-s",
        "--models-ttl-s",   "COPILOT_GATEWAY_",  "127.0.0.1:3000",    "33554432",
    };

    assert_non_null(f);
    cfg_usage(f);
    assert_int_equal(fclose(f), 0);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strstr(text, names[i]))
            fail_msg("usage lacks '%s'", names[i]);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_first_skips_leading_args),
        cmocka_unit_test(test_flags_space_form),
        cmocka_unit_test(test_flags_equals_form),
        cmocka_unit_test(test_flag_repeated_last_wins),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_bad_int),
        cmocka_unit_test(test_env_config_file),
        cmocka_unit_test(test_yaml_file),
        cmocka_unit_test(test_yaml_empty_and_comments),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_precedence_bad_file_value_shadowed),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_yaml_unknown_key),
        cmocka_unit_test(test_yaml_bad_int),
        cmocka_unit_test(test_yaml_nested_rejected),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_yaml_lists_and_maps),
        cmocka_unit_test(test_yaml_booleans),
        cmocka_unit_test(test_yaml_enums),
        cmocka_unit_test(test_yaml_error_kinds),
        cmocka_unit_test(test_yaml_depth_and_size),
        cmocka_unit_test(test_yaml_file_too_big),
        cmocka_unit_test(test_nested_schema),
        cmocka_unit_test(test_nested_errors),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
