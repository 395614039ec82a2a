/* Unit tests for broker/conv: building, joining and freeing a canonical conversation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/conv.h"

static void test_new_and_free(void **state)
{
    struct conv *c = conv_new();

    assert_non_null(c);
    assert_null(c->model);
    assert_null(c->system);
    assert_int_equal(c->nmsgs, 0);
    assert_int_equal(c->ntools, 0);
    assert_null(c->response_format);
    assert_int_equal(c->stream, 0);
    conv_free(c);
    conv_free(NULL);
}

static void test_messages_and_parts(void **state)
{
    struct conv *c = conv_new();
    struct conv_msg *m;
    struct conv_part *p;

    m = conv_add_msg(c, CONV_USER);
    assert_int_equal(m->role, CONV_USER);
    assert_int_equal(m->nparts, 0);
    p = conv_msg_add_text(m, "hello world", 5); /* only n bytes are taken */
    assert_int_equal(p->kind, CONV_TEXT);
    assert_string_equal(p->text, "hello");
    p = conv_msg_add_image(m, "image/png", "iVBO", NULL);
    assert_int_equal(p->kind, CONV_IMAGE);
    assert_string_equal(p->mime, "image/png");
    assert_string_equal(p->data_b64, "iVBO");
    assert_null(p->url);
    assert_null(p->text);
    p = conv_msg_add_image(m, NULL, NULL, "https://example.com/x.png");
    assert_null(p->mime);
    assert_string_equal(p->url, "https://example.com/x.png");
    conv_msg_add_text(m, "again", 5);
    assert_int_equal(m->nparts, 4);
    assert_true(conv_msg_has_image(m));

    m = conv_add_msg(c, CONV_ASSISTANT);
    assert_int_equal(c->nmsgs, 2);
    assert_int_equal(c->msgs[0].nparts, 4); /* earlier message intact after growth */
    assert_false(conv_msg_has_image(m));
    conv_free(c);
}

static void test_text_join(void **state)
{
    struct conv *c = conv_new();
    struct conv_msg *m = conv_add_msg(c, CONV_TOOL);
    char *t;

    t = conv_msg_text(m);
    assert_string_equal(t, "");
    free(t);
    conv_msg_add_image(m, "image/jpeg", "AAAA", NULL);
    t = conv_msg_text(m);
    assert_string_equal(t, "");
    free(t);
    conv_msg_add_text(m, "one", 3);
    conv_msg_add_image(m, "image/jpeg", "AAAA", NULL);
    conv_msg_add_text(m, "", 0);
    conv_msg_add_text(m, "three", 5);
    t = conv_msg_text(m);
    assert_string_equal(t, "one\n\nthree");
    free(t);
    conv_free(c);
}

static void test_calls(void **state)
{
    struct conv *c = conv_new();
    struct conv_msg *m = conv_add_msg(c, CONV_ASSISTANT);
    struct conv_tool_call *tc;

    tc = conv_msg_add_call(m, "call_1", "get_weather", "{\"city\":\"Paris\"}");
    assert_string_equal(tc->id, "call_1");
    assert_string_equal(tc->name, "get_weather");
    assert_string_equal(tc->arguments, "{\"city\":\"Paris\"}");
    tc = conv_msg_add_call(m, "call_2", "now", NULL);
    assert_string_equal(tc->arguments, "{}");
    assert_int_equal(m->ncalls, 2);
    assert_string_equal(m->calls[0].id, "call_1");
    m->reasoning = strdup("because");
    m = conv_add_msg(c, CONV_TOOL);
    m->tool_call_id = strdup("call_1");
    m->is_error = 1;
    conv_msg_add_text(m, "sunny", 5);
    conv_free(c);
}

static void test_tools_and_owned_json(void **state)
{
    struct conv *c = conv_new();
    struct conv_tool *t;
    json_t *params = json_pack("{s:s, s:{}}", "type", "object", "properties");

    t = conv_add_tool(c, "get_weather", "Weather by city", params); /* stolen */
    assert_string_equal(t->name, "get_weather");
    assert_string_equal(t->description, "Weather by city");
    assert_ptr_equal(t->parameters, params);
    t = conv_add_tool(c, "noop", NULL, NULL);
    assert_null(t->description);
    assert_null(t->parameters);
    assert_int_equal(c->ntools, 2);
    assert_string_equal(c->tools[0].name, "get_weather");
    c->model = strdup("gpt-4o");
    c->system = strdup("be brief");
    c->reasoning_effort = strdup("low");
    c->response_format = json_pack("{s:s, s:{}}", "name", "x", "schema");
    conv_free(c); /* LeakSanitizer checks everything above is released */
}

/* Many appends: the implied-capacity growth must keep every element. */
static void test_growth(void **state)
{
    struct conv *c = conv_new();
    char name[32];

    for (int i = 0; i < 1000; i++) {
        struct conv_msg *m = conv_add_msg(c, (enum conv_role)(i % 3));
        for (int k = 0; k <= i % 9; k++) {
            snprintf(name, sizeof(name), "%d.%d", i, k);
            conv_msg_add_text(m, name, strlen(name));
            conv_msg_add_call(m, name, "f", "{}");
        }
        snprintf(name, sizeof(name), "t%d", i);
        conv_add_tool(c, name, NULL, json_object());
    }
    assert_int_equal(c->nmsgs, 1000);
    assert_int_equal(c->ntools, 1000);
    for (int i = 0; i < 1000; i++) {
        const struct conv_msg *m = &c->msgs[i];
        assert_int_equal(m->role, i % 3);
        assert_int_equal(m->nparts, (size_t)(i % 9 + 1));
        assert_int_equal(m->ncalls, m->nparts);
        snprintf(name, sizeof(name), "%d.%d", i, i % 9);
        assert_string_equal(m->parts[m->nparts - 1].text, name);
        assert_string_equal(m->calls[m->ncalls - 1].id, name);
        snprintf(name, sizeof(name), "t%d", i);
        assert_string_equal(c->tools[i].name, name);
    }
    conv_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_and_free),
        cmocka_unit_test(test_messages_and_parts),
        cmocka_unit_test(test_text_join),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_tools_and_owned_json),
        cmocka_unit_test(test_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
