/*
 * Unit tests for the conversation size check: the token estimate
 * (conv_estimate_tokens) and the 400 each API gets for a conversation over
 * a model's limit (api_context_exceeded, in OpenAI's and Anthropic's shape).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "api/common.h"
#include "api/messages.h"
#include "broker/conv.h"
#include "jsontest.h"

/* (bytes + 3) / 4 + 4 per message + 765 per image + 1, as conv.h says. */
static int64_t expect(size_t bytes, int msgs, int images)
{
    return (int64_t)((bytes + 3) / 4) + 4 * msgs + 765 * images + 1;
}

static void test_estimate_counts(void **state)
{
    struct conv *c = conv_new();
    struct conv_msg *m;
    json_t *schema = jsq("{'type':'object','properties':{'q':{'type':'string'}}}");
    char *text = json_dumps(schema, JSON_COMPACT);
    size_t schema_len = strlen(text);

    free(text);
    assert_int_equal(conv_estimate_tokens(c), 1); /* empty */

    c->system = strdup("You are terse."); /* 14 */
    m = conv_add_msg(c, CONV_USER);
    conv_msg_add_text(m, "hello world!", 12);
    assert_int_equal(conv_estimate_tokens(c), expect(26, 1, 0));

    /* Images cost the same given inline or by URL (not downloaded yet). */
    conv_msg_add_image(m, "image/png", "iVBORw0KGgo=", NULL);
    conv_msg_add_image(m, NULL, NULL, "https://example.com/a.png");
    assert_int_equal(conv_estimate_tokens(c), expect(26, 1, 2));

    /* An assistant's tool call: its name and arguments. */
    m = conv_add_msg(c, CONV_ASSISTANT);
    conv_msg_add_call(m, "call_1", "lookup", "{\"q\":\"x\"}"); /* 6 + 9 */
    m = conv_add_msg(c, CONV_TOOL);
    m->tool_call_id = strdup("call_1");
    conv_msg_add_text(m, "result", 6);
    assert_int_equal(conv_estimate_tokens(c), expect(26 + 15 + 6, 3, 2));

    /* A tool definition: name, description and its schema as compact JSON. */
    conv_add_tool(c, "lookup", "Looks up q.", schema); /* 6 + 11 + schema; steals schema */
    assert_int_equal(conv_estimate_tokens(c), expect(26 + 15 + 6 + 17 + schema_len, 3, 2));

    /* A structured-output schema is sent with every model call too. */
    c->response_format = jsq("{'name':'out','schema':{}}"); /* 25 */
    assert_int_equal(conv_estimate_tokens(c), expect(26 + 15 + 6 + 17 + schema_len + 25, 3, 2));
    conv_free(c);
}

/* The estimate of a parsed request is the same for the same conversation in any API. */
static void test_estimate_parsed(void **state)
{
    char *chat = sq("{'model':'m','messages':[{'role':'system','content':'abcd'},"
                    "{'role':'user','content':[{'type':'text','text':'12345678'},"
                    "{'type':'image_url','image_url':{'url':'https://example.com/x.png'}}]}]}");
    char *msgs = sq("{'model':'m','max_tokens':5,'system':'abcd','messages':[{'role':'user',"
                    "'content':[{'type':'text','text':'12345678'},{'type':'image','source':"
                    "{'type':'url','url':'https://example.com/x.png'}}]}]}");
    struct conv *a = NULL, *b = NULL;
    struct chat_opts co = {0};
    struct msg_opts mo;
    struct gw_err err;

    memset(&mo, 0, sizeof(mo));
    assert_int_equal(chat_parse(chat, strlen(chat), &a, &co, &err), 0);
    assert_int_equal(msg_parse(msgs, strlen(msgs), &b, &mo, &err), 0);
    assert_int_equal(conv_estimate_tokens(a), expect(12, 1, 1));
    assert_int_equal(conv_estimate_tokens(b), conv_estimate_tokens(a));
    conv_free(a);
    conv_free(b);
    msg_opts_release(&mo);
    free(chat);
    free(msgs);
}

/* A 31 MiB prompt: counted in one pass over the text, no copy of it. */
static void test_estimate_large(void **state)
{
    size_t n = 31u * 1024 * 1024;
    struct conv *c = conv_new();
    struct conv_msg *m = conv_add_msg(c, CONV_USER);
    struct conv_part *p = conv_msg_add_text(m, "", 0);
    json_t *props = json_object();
    char key[32];

    free(p->text);
    p->text = malloc(n + 1);
    assert_non_null(p->text);
    memset(p->text, 'a', n);
    p->text[n] = '\0';
    assert_int_equal(conv_estimate_tokens(c), expect(n, 1, 0));
    assert_true(conv_estimate_tokens(c) > 1000000); /* over the default --max-input-tokens */

    /* Huge tool definitions count as much as huge messages. */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "p%05d", i);
        json_object_set_new(props, key, json_pack("{s:s}", "type", "string"));
    }
    conv_add_tool(c, "big", NULL, json_pack("{s:s, s:o}", "type", "object", "properties", props));
    {
        char *dump = json_dumps(c->tools[0].parameters, JSON_COMPACT);
        assert_int_equal(conv_estimate_tokens(c), expect(n + 3 + strlen(dump), 1, 0));
        free(dump);
    }
    conv_free(c);
}

static void test_error_openai(void **state)
{
    struct gw_err err;
    json_t *body;

    assert_int_equal(api_context_exceeded(&err, 0, "messages", 4000, 8113), GW_EINVAL);
    assert_int_equal(err.http_status, 400);
    body = roundtrip(openai_error(&err));
    assert_string_equal(str_at(body, "error.message"),
                        "This model's maximum context length is 4000 tokens. However, your "
                        "messages resulted in about 8113 tokens. Please reduce the length of the "
                        "messages.");
    assert_string_equal(str_at(body, "error.type"), "invalid_request_error");
    assert_string_equal(str_at(body, "error.param"), "messages");
    assert_string_equal(str_at(body, "error.code"), "context_length_exceeded");
    json_decref(body);

    api_context_exceeded(&err, 0, "input", 1000000, 8126468);
    body = roundtrip(openai_error(&err));
    assert_string_equal(str_at(body, "error.param"), "input");
    assert_string_equal(str_at(body, "error.code"), "context_length_exceeded");
    json_decref(body);

    assert_int_equal(api_context_exceeded(NULL, 0, "input", 1, 2), GW_EINVAL); /* NULL-safe */
}

static void test_error_anthropic(void **state)
{
    struct gw_err err;
    json_t *body;

    assert_int_equal(api_context_exceeded(&err, 1, "messages", 4000, 8113), GW_EINVAL);
    assert_int_equal(err.http_status, 400);
    body = roundtrip(anthropic_error(&err));
    assert_string_equal(str_at(body, "type"), "error");
    assert_string_equal(str_at(body, "error.type"), "invalid_request_error");
    assert_string_equal(str_at(body, "error.message"),
                        "prompt is too long: 8113 tokens > 4000 maximum");
    assert_int_equal(json_object_size(json_object_get(body, "error")), 2);
    json_decref(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimate_counts),
        cmocka_unit_test(test_estimate_parsed),
        cmocka_unit_test(test_estimate_large),
        cmocka_unit_test(test_error_openai),
        cmocka_unit_test(test_error_anthropic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
