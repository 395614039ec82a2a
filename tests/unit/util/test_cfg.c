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
                    "--log-level",
                    "=warn"};

    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_string_equal(c.listen, "[::1]:9000");
    assert_string_equal(c.api_key, "a=b,c=="); /* only the first '=' splits */
    assert_string_equal(c.provider_key, "");   /* an explicit empty value */
    assert_int_equal(c.max_body_bytes, 1073741824);
    assert_string_equal(c.log_level, "=warn"); /* space form takes the next word verbatim */
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

static void test_yaml_duplicate_key_last_wins(void **state)
{
    check_yaml_listen("listen: a:1\nlisten: b:2\n", "b:2");
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
    /* A file value that a flag overrides is not applied, so it cannot fail. */
    struct gw_config c;
    struct gw_err e;
    struct tmpdir t;

    write_yaml(&t, "max-body-bytes: 1\n");
    char *argv[] = {"prog", "--config", t.path, "--max-body-bytes", "2048"};
    assert_int_equal(load(&c, &e, NARGS(argv), argv), GW_OK);
    assert_int_equal(c.max_body_bytes, 2048);
    cfg_release(&c);
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
    check_yaml_error("listen:\n  host: 127.0.0.1\n  port: 9\n", ":", "flat");
    check_yaml_error("api-key: [a, b]\n", ":1", "flat");
    check_yaml_error("api-key:\n  - a\n  - b\n", ":", "flat");
    check_yaml_error("gateway:\n  listen: 127.0.0.1:9\n", ":", NULL);
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
        cmocka_unit_test(test_yaml_duplicate_key_last_wins),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_precedence_bad_file_value_shadowed),
        cmocka_unit_test(test_flag_errors),
        cmocka_unit_test(test_yaml_unknown_key),
        cmocka_unit_test(test_yaml_bad_int),
        cmocka_unit_test(test_yaml_nested_rejected),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
