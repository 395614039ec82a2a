/* Unit tests for broker/errmap: session.error events -> client errors, URL scrubbing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "broker/errmap.h"
#include "util/err.h"

/* ---- errmap_session_error ----------------------------------------------------------------- */

struct map_case {
    const char *data; /* the session.error data object as JSON */
    int byok;
    enum gw_status code;
    int http_status;
    const char *api_code;
    const char *param;
    const char *msg;          /* exact message, or NULL */
    const char *msg_contains; /* substring, or NULL */
};

static const char default_msg[] = "the model request failed";

static const struct map_case map_cases[] = {
    /* rate limits */
    {"{\"errorType\":\"rate_limit\",\"message\":\"slow down\",\"statusCode\":429}", 0,
     GW_ERATELIMIT, 429, "rate_limit_exceeded", "", NULL, "slow down"},
    {"{\"errorType\":\"rate_limit\",\"message\":\"slow down\"}", 1, GW_ERATELIMIT, 429,
     "rate_limit_exceeded", "", NULL, "slow down"},
    {"{\"errorType\":\"query\",\"message\":\"too many\",\"statusCode\":429}", 0, GW_ERATELIMIT, 429,
     "rate_limit_exceeded", "", NULL, "too many"},
    /* quota */
    {"{\"errorType\":\"quota\",\"message\":\"out of credits\",\"statusCode\":429}", 0,
     GW_ERATELIMIT, 429, "insufficient_quota", "", NULL, "out of credits"},
    {"{\"errorType\":\"quota\",\"message\":\"out of credits\"}", 1, GW_ERATELIMIT, 429,
     "insufficient_quota", "", NULL, "out of credits"},
    {"{\"errorType\":\"quota\",\"message\":\"out of credits\",\"statusCode\":402}", 0,
     GW_ERATELIMIT, 429, "insufficient_quota", "", NULL, "out of credits"},
    /* what runtime 1.0.85 makes of a provider's 402 (no retries) */
    {"{\"errorType\":\"query\",\"message\":\"402 quota exceeded\",\"statusCode\":402}", 0,
     GW_ERATELIMIT, 429, "insufficient_quota", "", NULL, "402 quota exceeded"},
    /* authentication: whose credentials depends on byok */
    {"{\"errorType\":\"authentication\",\"message\":\"bad key\",\"statusCode\":401}", 1,
     GW_EUPSTREAM, 502, "", "", NULL, "--provider-key"},
    {"{\"errorType\":\"authorization\",\"message\":\"forbidden\",\"statusCode\":403}", 1,
     GW_EUPSTREAM, 502, "", "", NULL, "--provider-key"},
    {"{\"errorType\":\"authentication\",\"message\":\"bad key\",\"statusCode\":401}", 1,
     GW_EUPSTREAM, 502, "", "", NULL, "401"},
    {"{\"errorType\":\"authentication\",\"message\":\"bad token\",\"statusCode\":401}", 0, GW_EAUTH,
     401, "", "", errmap_signin_msg, NULL},
    {"{\"errorType\":\"authorization\",\"message\":\"nope\"}", 0, GW_EAUTH, 401, "", "",
     errmap_signin_msg, NULL},
    /* not signed in, whatever the type */
    {"{\"errorType\":\"query\",\"message\":\"Error: No GitHub OAuth token available\"}", 0,
     GW_EAUTH, 401, "", "", errmap_signin_msg, NULL},
    {"{\"errorType\":\"query\",\"message\":\"No GitHub OAuth token\",\"statusCode\":500}", 1,
     GW_EAUTH, 401, "", "", errmap_signin_msg, NULL},
    {"{\"message\":\"Not authenticated\"}", 0, GW_EAUTH, 401, "", "", errmap_signin_msg, NULL},
    /* context window */
    {"{\"errorType\":\"context_limit\",\"message\":\"prompt is too long\",\"statusCode\":400}", 0,
     GW_EINVAL, 400, "context_length_exceeded", "messages", "prompt is too long", NULL},
    {"{\"errorType\":\"context_limit\",\"message\":\"prompt is too long\"}", 1, GW_EINVAL, 400,
     "context_length_exceeded", "messages", "prompt is too long", NULL},
    /* query failures by status */
    {"{\"errorType\":\"query\",\"message\":\"bad request\",\"statusCode\":400}", 0, GW_EINVAL, 400,
     "", "", "bad request", NULL},
    {"{\"errorType\":\"query\",\"message\":\"unprocessable\",\"statusCode\":422}", 0, GW_EINVAL,
     400, "", "", "unprocessable", NULL},
    {"{\"errorType\":\"query\",\"message\":\"no such model\",\"statusCode\":404}", 0, GW_ENOTFOUND,
     404, "model_not_found", "model", "no such model", NULL},
    {"{\"errorType\":\"query\",\"message\":\"server exploded\",\"statusCode\":500}", 0,
     GW_EUPSTREAM, 502, "", "", "server exploded", NULL},
    {"{\"errorType\":\"query\",\"message\":\"unavailable\",\"statusCode\":503}", 1, GW_EUPSTREAM,
     502, "", "", "unavailable", NULL},
    {"{\"errorType\":\"query\",\"message\":\"network down\"}", 0, GW_EUPSTREAM, 502, "", "",
     "network down", NULL},
    {"{\"errorType\":\"something_new\",\"message\":\"odd\",\"statusCode\":418}", 0, GW_EUPSTREAM,
     502, "", "", "odd", NULL},
    /* missing or mistyped fields */
    {"{}", 0, GW_EUPSTREAM, 502, "", "", default_msg, NULL},
    {"{\"errorType\":\"query\"}", 0, GW_EUPSTREAM, 502, "", "", default_msg, NULL},
    {"{\"errorType\":\"query\",\"statusCode\":404}", 0, GW_ENOTFOUND, 404, "model_not_found",
     "model", default_msg, NULL},
    {"{\"message\":\"only a message\"}", 0, GW_EUPSTREAM, 502, "", "", "only a message", NULL},
    {"{\"message\":\"no type\",\"statusCode\":400}", 0, GW_EINVAL, 400, "", "", "no type", NULL},
    {"{\"errorType\":7,\"message\":5,\"statusCode\":\"404\"}", 0, GW_EUPSTREAM, 502, "", "",
     default_msg, NULL},
    {"{\"errorType\":\"context_limit\"}", 0, GW_EINVAL, 400, "context_length_exceeded", "messages",
     default_msg, NULL},
};

static void check_map(const struct map_case *tc, size_t i)
{
    json_error_t je;
    json_t *data = json_loads(tc->data, 0, &je);
    struct gw_err err;

    if (!data)
        fail_msg("case %zu: bad JSON in test table: %s", i, je.text);
    /* Stale contents must not survive the mapping. */
    memset(&err, 0, sizeof(err));
    snprintf(err.api_code, sizeof(err.api_code), "stale_code");
    snprintf(err.param, sizeof(err.param), "stale_param");
    snprintf(err.msg, sizeof(err.msg), "stale message");
    err.retry_after = 99;

    errmap_session_error(data, tc->byok, &err);
    if (err.code != tc->code || err.http_status != tc->http_status ||
        strcmp(err.api_code, tc->api_code) != 0 || strcmp(err.param, tc->param) != 0 ||
        (tc->code != GW_ERATELIMIT && err.retry_after != 0) || (tc->msg && strcmp(err.msg, tc->msg) != 0) ||
        (tc->msg_contains && !strstr(err.msg, tc->msg_contains)) || err.msg[0] == '\0' ||
        strstr(err.msg, "stale") || strstr(err.msg, "http://") || strstr(err.msg, "https://"))
        fail_msg("case %zu: %s byok=%d\n  got:      %d %d code='%s' param='%s' retry=%d "
                 "msg='%s'\n  expected: %d %d code='%s' param='%s' msg %s '%s'",
                 i, tc->data, tc->byok, (int)err.code, err.http_status, err.api_code, err.param,
                 err.retry_after, err.msg, (int)tc->code, tc->http_status, tc->api_code, tc->param,
                 tc->msg ? "==" : "contains", tc->msg ? tc->msg : tc->msg_contains);
    json_decref(data);
}

/* ---- errmap_retry_after --------------------------------------------------------------- */

static void test_retry_after(void **state)
{
    static const struct {
        const char *msg;
        int want;
    } cases[] = {
        {"Failed to get response from the AI model; retried 5 times (total retry wait time: 5.62 "
         "seconds) Last error: 429 slow down",
         2},
        {"...; retried 5 times (total retry wait time: 16.9 seconds) Last error: 429", 4},
        {"...; retried 5 times (total retry wait time: 15 seconds)", 3},
        {"...; retried 1 times (total retry wait time: 0.2 seconds)", 1},
        {"...; retried 5 times (total retry wait time: 0 seconds)", 1},
        {"...; retried 5 times (total retry wait time: 999999 seconds)", ERRMAP_RETRY_AFTER_MAX_S},
        {"...; retried 0 times (total retry wait time: 5 seconds)", 0},
        {"...; retried -3 times (total retry wait time: 5 seconds)", 0},
        {"...; retried 5 times (total retry wait time: -5 seconds)", 0},
        {"...; retried 5 times (total retry wait time: nan seconds)", 0},
        {"...; retried x times (total retry wait time: 5 seconds)", 0},
        {"...; retried 5 times (total retry wait time: soon)", 0},
        {"slow down", 0},
        {"", 0},
        {NULL, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (errmap_retry_after(cases[i].msg) != cases[i].want)
            fail_msg("case %zu '%s': got %d, want %d", i, cases[i].msg ? cases[i].msg : "(null)",
                     errmap_retry_after(cases[i].msg), cases[i].want);
}

/* Rate limits carry a Retry-After; a spent quota does not. */
static void test_map_retry_after(void **state)
{
    static const struct {
        const char *data;
        int want;
    } cases[] = {
        /* what runtime 1.0.85 sent after a provider's 429 + Retry-After: 1, five times */
        {"{\"errorType\":\"rate_limit\",\"message\":\"Failed to get response from the AI model; "
         "retried 5 times (total retry wait time: 5.62 seconds) Last error: 429 slow down\","
         "\"statusCode\":429}",
         2},
        {"{\"errorType\":\"rate_limit\",\"message\":\"slow down\",\"statusCode\":429}",
         ERRMAP_RETRY_AFTER_DEFAULT_S},
        {"{\"errorType\":\"query\",\"message\":\"too many\",\"statusCode\":429}",
         ERRMAP_RETRY_AFTER_DEFAULT_S},
        {"{\"errorType\":\"quota\",\"message\":\"retried 5 times (total retry wait time: 9 "
         "seconds)\",\"statusCode\":429}",
         0},
        {"{\"errorType\":\"query\",\"message\":\"retried 5 times (total retry wait time: 9 "
         "seconds)\",\"statusCode\":500}",
         0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *data = json_loads(cases[i].data, 0, NULL);
        struct gw_err err;

        assert_non_null(data);
        errmap_session_error(data, 1, &err);
        if (err.retry_after != cases[i].want)
            fail_msg("case %zu: retry_after %d, want %d", i, err.retry_after, cases[i].want);
        json_decref(data);
    }
}

static void test_map_table(void **state)
{
    for (size_t i = 0; i < sizeof(map_cases) / sizeof(map_cases[0]); i++)
        check_map(&map_cases[i], i);
}

static void test_map_null_data(void **state)
{
    struct gw_err err;

    memset(&err, 0, sizeof(err));
    errmap_session_error(NULL, 0, &err);
    assert_int_equal(err.code, GW_EUPSTREAM);
    assert_int_equal(err.http_status, 502);
    assert_string_equal(err.msg, default_msg);
}

static void test_signin_msg(void **state)
{
    assert_true(strlen(errmap_signin_msg) > 0);
    assert_non_null(strstr(errmap_signin_msg, "login"));
    assert_null(strstr(errmap_signin_msg, "http://"));
    assert_null(strstr(errmap_signin_msg, "https://"));
}

/* A user's own token GitHub did not take: a 401 that says why in a few words, never the
 * gateway's sign-in advice, never a URL. */
static void test_user_token(void **state)
{
    struct gw_err err;

    assert_true(errmap_is_token_failure(
        "Request session.create failed with message: SDK session authentication failed: network "
        "fetch failed: request failed: error sending request for url "
        "(https://api.github.com/copilot_internal/user)"));
    assert_true(errmap_is_token_failure("GitHub token validation failed: 401 Bad credentials"));
    assert_false(errmap_is_token_failure("session construction failed: ENOSPC"));
    assert_false(errmap_is_token_failure(NULL));
    errmap_user_token(&err, "SDK session authentication failed: network fetch failed: x");
    assert_int_equal(err.code, GW_EAUTH);
    assert_int_equal(err.http_status, 401);
    assert_string_equal(err.api_code, "github_token_rejected");
    assert_non_null(strstr(err.msg, "could not be reached"));
    assert_null(strstr(err.msg, "login"));
    assert_null(strstr(err.msg, "https://"));
    errmap_user_token(&err, "GitHub token validation failed: 401 Bad credentials");
    assert_non_null(strstr(err.msg, "GitHub refused it"));
}

/* Every mapped message has its provider URLs scrubbed, whatever branch produced it. */
static void test_map_scrubs_urls(void **state)
{
    static const char *const types[] = {"rate_limit", "quota",          "context_limit",
                                        "query",      "authentication", "unknown_type"};
    static const int statuses[] = {0, 400, 404, 422, 429, 500, 502};
    static const char msg[] = "POST https://api.example.com/v1/chat/completions failed "
                              "(http://10.0.0.1:8080/v1) see 'https://docs.example.com/x'";

    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++)
            for (int byok = 0; byok <= 1; byok++) {
                json_t *data = json_pack("{s:s, s:s}", "errorType", types[t], "message", msg);
                struct gw_err err;
                if (statuses[s])
                    json_object_set_new(data, "statusCode", json_integer(statuses[s]));
                memset(&err, 0, sizeof(err));
                errmap_session_error(data, byok, &err);
                if (strstr(err.msg, "http://") || strstr(err.msg, "https://") ||
                    strstr(err.msg, "example.com") || strstr(err.msg, "10.0.0.1"))
                    fail_msg("%s/%d/byok=%d leaked a URL: %s", types[t], statuses[s], byok,
                             err.msg);
                json_decref(data);
            }
}

static void test_map_long_message_truncated_url(void **state)
{
    /* The URL is cut by the 512-byte message limit; what is left is still scrubbed. */
    char msg[1024];
    json_t *data;
    struct gw_err err;

    memset(msg, 'a', 490);
    snprintf(msg + 490, sizeof(msg) - 490, " https://api.example.com/v1/chat/completions tail");
    data = json_pack("{s:s, s:s, s:i}", "errorType", "query", "message", msg, "statusCode", 500);
    memset(&err, 0, sizeof(err));
    errmap_session_error(data, 1, &err);
    assert_int_equal(err.http_status, 502);
    assert_true(strlen(err.msg) < sizeof(err.msg));
    assert_null(strstr(err.msg, "https://"));
    assert_null(strstr(err.msg, "http"));
    assert_null(strstr(err.msg, "api.exam"));
    json_decref(data);
}

/* ---- errmap_scrub_urls -------------------------------------------------------------------- */

struct scrub_case {
    const char *in;
    const char *out;
};

static const struct scrub_case scrub_cases[] = {
    {"", ""},
    {"no urls here", "no urls here"},
    {"https://api.openai.com/v1", "<provider>"},
    {"http://api.openai.com/v1", "<provider>"},
    {"https://api.openai.com/v1 failed", "<provider> failed"},
    {"request to https://api.openai.com/v1/chat", "request to <provider>"},
    {"a https://one.example.com/x b http://two.example.com:8080/y c https://three.example.com z",
     "a <provider> b <provider> c <provider> z"},
    {"(https://api.example.com/v1) failed", "(<provider>) failed"},
    {"failed (see http://api.example.com/v1)", "failed (see <provider>)"},
    {"url \"https://api.example.com/v1\" rejected", "url \"<provider>\" rejected"},
    {"url 'http://localhost:11434/api' rejected", "url '<provider>' rejected"},
    {"one https://api.example.com/v1\ntwo", "one <provider>\ntwo"},
    {"xhttps://api.example.com/v1", "x<provider>"},
    {"https://a.example.com/https://b.example.com/", "<provider>"},
    {"http:/not-a-url ftp://files.example.com mailto:a@b.c httpx://z",
     "http:/not-a-url ftp://files.example.com mailto:a@b.c httpx://z"},
    {"https is fine, so is http and ://", "https is fine, so is http and ://"},
    {"\xc3\xa9 https://api.example.com/\xc3\xa9 \xe2\x82\xac", "\xc3\xa9 <provider> \xe2\x82\xac"},
};

static void test_scrub_table(void **state)
{
    for (size_t i = 0; i < sizeof(scrub_cases) / sizeof(scrub_cases[0]); i++) {
        char *s = strdup(scrub_cases[i].in);
        errmap_scrub_urls(s);
        if (strcmp(s, scrub_cases[i].out) != 0)
            fail_msg("case %zu: '%s' -> '%s', expected '%s'", i, scrub_cases[i].in, s,
                     scrub_cases[i].out);
        free(s);
    }
}

static void test_scrub_short_urls(void **state)
{
    /* URLs shorter than "<provider>" cannot be replaced in place; they must still vanish
     * and the rest of the text must survive. */
    static const char *const ins[] = {
        "http://",     "https://", "x http://a y", "(https://b)", "http://a http://b https://c",
        "'http://x:1'"};
    for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
        char *s = strdup(ins[i]);
        errmap_scrub_urls(s);
        if (strstr(s, "http://") || strstr(s, "https://"))
            fail_msg("'%s' -> '%s' still has a URL", ins[i], s);
        free(s);
    }
    {
        char s[] = "x http://a y";
        errmap_scrub_urls(s);
        assert_non_null(strchr(s, 'x'));
        assert_non_null(strchr(s, 'y'));
    }
}

static void test_scrub_many(void **state)
{
    char s[4096] = "";
    size_t n = 0;

    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(s + n, sizeof(s) - n, "%shttps://host%d.example.com/path/%d",
                              i ? " " : "", i, i);
    errmap_scrub_urls(s);
    assert_null(strstr(s, "http"));
    assert_null(strstr(s, "example"));
    n = 0;
    for (const char *p = s; (p = strstr(p, "<provider>")) != NULL; p++)
        n++;
    assert_int_equal(n, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_table),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_map_retry_after),
        cmocka_unit_test(test_map_null_data),
        cmocka_unit_test(test_signin_msg),
        cmocka_unit_test(test_user_token),
        cmocka_unit_test(test_map_scrubs_urls),
        cmocka_unit_test(test_map_long_message_truncated_url),
        cmocka_unit_test(test_scrub_table),
        cmocka_unit_test(test_scrub_short_urls),
        cmocka_unit_test(test_scrub_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
