/* Unit tests for api/chat: request validation, response builders, OpenAI error shapes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "jsontest.h"

/*
 * Request bodies are written with single quotes for readability; dq() turns
 * them into JSON.  No test body needs a literal single quote.
 */
static char *dq(const char *s)
{
    char *out = strdup(s);
    assert_non_null(out);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

static int parse(const char *body, struct conv **c, struct chat_opts *o, struct gw_err *e)
{
    char *json = dq(body);
    int rc;

    memset(e, 0, sizeof(*e));
    rc = chat_parse(json, strlen(json), c, o, e);
    free(json);
    return rc;
}

static struct conv *parse_ok(const char *body, struct chat_opts *o)
{
    struct conv *c = NULL;
    struct gw_err e;
    int rc = parse(body, &c, o, &e);

    if (rc)
        print_error("unexpected error for %s: %s (param '%s')\n", body, e.msg, e.param);
    assert_int_equal(rc, GW_OK);
    assert_non_null(c);
    return c;
}

#define USER_HI "[{'role':'user','content':'hi'}]"
#define REQ(extra) "{'model':'gpt-4o','messages':" USER_HI extra "}"
#define MSGS(m) "{'model':'m','messages':" m "}"
#define ASSIST_CALL                                                                                \
    "{'role':'assistant','tool_calls':[{'id':'call_1','type':'function','function':{'name':"       \
    "'f','arguments':'{}'}}]}"
#define TOOLS1 "'tools':[{'type':'function','function':{'name':'f'}}]"

/* ---- valid requests ------------------------------------------------------- */

static void check_string_content(struct conv *c, const struct chat_opts *o)
{
    assert_string_equal(c->model, "gpt-4o");
    assert_null(c->system);
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(c->msgs[0].nparts, 1);
    assert_int_equal(c->msgs[0].parts[0].kind, CONV_TEXT);
    assert_string_equal(c->msgs[0].parts[0].text, "hi");
    assert_int_equal(c->ntools, 0);
    assert_null(c->response_format);
    assert_null(c->reasoning_effort);
    assert_int_equal(c->stream, 0);
    assert_int_equal(o->stream, 0);
    assert_int_equal(o->include_usage, 0);
}

static void check_text_parts(struct conv *c, const struct chat_opts *o)
{
    char *t = conv_msg_text(&c->msgs[0]);
    assert_int_equal(c->msgs[0].nparts, 2);
    assert_string_equal(t, "a\nb");
    free(t);
}

static void check_images(struct conv *c, const struct chat_opts *o)
{
    const struct conv_msg *m = &c->msgs[0];
    assert_int_equal(m->nparts, 4);
    assert_int_equal(m->parts[1].kind, CONV_IMAGE);
    assert_string_equal(m->parts[1].mime, "image/png");
    assert_string_equal(m->parts[1].data_b64, "iVBORw0KGgo=");
    assert_null(m->parts[1].url);
    assert_int_equal(m->parts[2].kind, CONV_IMAGE);
    assert_null(m->parts[2].data_b64);
    assert_string_equal(m->parts[2].url, "https://example.com/cat.jpg");
    assert_string_equal(m->parts[3].url, "http://example.com/a.png?x=1");
    assert_true(conv_msg_has_image(m));
}

static void check_system_join(struct conv *c, const struct chat_opts *o)
{
    assert_string_equal(c->system, "A\n\nB\nC\n\nD");
    assert_int_equal(c->nmsgs, 2);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(c->msgs[1].role, CONV_USER);
}

static void check_multi_turn(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->nmsgs, 5);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_string_equal(c->msgs[1].parts[0].text, "hello");
    assert_string_equal(c->msgs[1].reasoning, "thinking");
    assert_null(c->msgs[3].reasoning); /* empty reasoning is no reasoning */
    assert_string_equal(c->msgs[3].parts[0].text, "I cannot");
    assert_int_equal(c->msgs[4].role, CONV_USER);
}

static void check_tool_messages(struct conv *c, const struct chat_opts *o)
{
    const struct conv_msg *a = &c->msgs[1];
    char *t;

    assert_int_equal(c->nmsgs, 5);
    assert_int_equal(a->role, CONV_ASSISTANT);
    assert_int_equal(a->nparts, 0);
    assert_int_equal(a->ncalls, 2);
    assert_string_equal(a->calls[0].id, "call_1");
    assert_string_equal(a->calls[0].name, "get_weather");
    assert_string_equal(a->calls[0].arguments, "{\"city\":\"Paris\"}");
    assert_string_equal(a->calls[1].id, "call_2");
    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_string_equal(c->msgs[2].tool_call_id, "call_2");
    assert_int_equal(c->msgs[2].is_error, 0);
    t = conv_msg_text(&c->msgs[3]);
    assert_string_equal(t, "sunny\n20C");
    free(t);
    assert_string_equal(c->msgs[3].tool_call_id, "call_1");
    assert_int_equal(c->msgs[4].role, CONV_USER);
}

static void check_tools(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->ntools, 2);
    assert_string_equal(c->tools[0].name, "get_weather");
    assert_string_equal(c->tools[0].description, "Weather by city");
    assert_non_null(c->tools[0].parameters);
    assert_string_equal(json_string_value(json_object_get(c->tools[0].parameters, "type")),
                        "object");
    assert_string_equal(c->tools[1].name, "no-args_2");
    assert_null(c->tools[1].description);
    assert_null(c->tools[1].parameters);
}

/* tool_choice 'none': the tools were validated but are not declared; history stays. */
static void check_tools_dropped(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->ntools, 0);
    assert_null(c->tools);
    assert_int_equal(c->nmsgs, 1);
}

static void check_tools_none_history(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->ntools, 0);
    assert_int_equal(c->nmsgs, 4);
    assert_int_equal(c->msgs[1].ncalls, 1);
    assert_string_equal(c->msgs[1].calls[0].name, "f");
}

static void check_json_schema(struct conv *c, const struct chat_opts *o)
{
    json_t *rf = c->response_format;
    assert_non_null(rf);
    assert_string_equal(json_string_value(json_object_get(rf, "name")), "answer");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rf, "schema"), "type")),
                        "object");
    assert_true(json_is_true(json_object_get(rf, "strict")));
    assert_string_equal(json_string_value(json_object_get(rf, "description")), "The answer");
    assert_null(json_object_get(rf, "type"));
}

static void check_json_schema_min(struct conv *c, const struct chat_opts *o)
{
    json_t *rf = c->response_format;
    assert_non_null(rf);
    assert_string_equal(json_string_value(json_object_get(rf, "name")), "x");
    assert_non_null(json_object_get(rf, "schema"));
    assert_null(json_object_get(rf, "strict"));
    assert_null(json_object_get(rf, "description"));
}

static void check_json_object(struct conv *c, const struct chat_opts *o)
{
    json_t *rf = c->response_format;
    assert_non_null(rf);
    assert_string_equal(json_string_value(json_object_get(rf, "name")), "json_object");
    assert_string_equal(json_string_value(json_object_get(json_object_get(rf, "schema"), "type")),
                        "object");
}

static void check_plain(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->nmsgs, 1);
    assert_null(c->response_format);
    assert_null(c->reasoning_effort);
}

static void check_stream(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->stream, 1);
    assert_int_equal(o->stream, 1);
    assert_int_equal(o->include_usage, 1);
}

static void check_stream_no_usage(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->stream, 1);
    assert_int_equal(o->stream, 1);
    assert_int_equal(o->include_usage, 0);
}

static void check_empty_assistant_string(struct conv *c, const struct chat_opts *o)
{
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[1].nparts, 1);
    assert_string_equal(c->msgs[1].parts[0].text, "");
}

static const struct valid_case {
    const char *name;
    const char *body;
    void (*check)(struct conv *c, const struct chat_opts *o);
} valid_cases[] = {
    {"string content", REQ(""), check_string_content},
    {"text parts",
     "{'model':'gpt-4o','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
     "{'type':'text','text':'b'}]}]}",
     check_text_parts},
    {"images",
     "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'what?'},"
     "{'type':'image_url','image_url':{'url':'data:IMAGE/PNG;base64,iVBORw0KGgo=','detail':'low'}},"
     "{'type':'image_url','image_url':{'url':'https://example.com/cat.jpg','detail':'auto'}},"
     "{'type':'image_url','image_url':'http://example.com/a.png?x=1'}]}]}",
     check_images},
    {"system and developer joined",
     "{'model':'m','messages':[{'role':'system','content':'A'},"
     "{'role':'developer','content':[{'type':'text','text':'B'},{'type':'text','text':'C'}]},"
     "{'role':'user','content':'u1','name':'bob'},{'role':'system','content':''},"
     "{'role':'system','content':'D','name':'sys'},{'role':'user','content':'u2'}]}",
     check_system_join},
    {"multi-turn with assistant",
     "{'model':'m','messages':[{'role':'user','content':'hi'},"
     "{'role':'assistant','content':'hello','reasoning_content':'thinking','name':'a'},"
     "{'role':'user','content':'do it'},"
     "{'role':'assistant','content':[{'type':'refusal','refusal':'I cannot'}],"
     "'reasoning_content':'','tool_calls':null,'refusal':null},"
     "{'role':'user','content':'ok'}]}",
     check_multi_turn},
    {"tool messages",
     "{'model':'m','messages':[{'role':'user','content':'weather?'},"
     "{'role':'assistant','content':null,'tool_calls':["
     "{'id':'call_1','type':'function','function':{'name':'get_weather','arguments':'{\\'city\\':"
     "\\'Paris\\'}'}},"
     "{'id':'call_2','type':'function','function':{'name':'get_time','arguments':'{}'}}]},"
     "{'role':'tool','tool_call_id':'call_2','content':'noon'},"
     "{'role':'tool','tool_call_id':'call_1','content':[{'type':'text','text':'sunny'},"
     "{'type':'text','text':'20C'}]},"
     "{'role':'user','content':'thanks'}]}",
     check_tool_messages},
    {"tools",
     REQ(",'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather "
         "by city','parameters':{'type':'object','properties':{}},'strict':true}},"
         "{'type':'function','function':{'name':'no-args_2'}}],'tool_choice':'auto',"
         "'parallel_tool_calls':false"),
     check_tools},
    {"tools without tool_choice",
     REQ(",'tools':[{'type':'function','function':{'name':'get_weather','description':'Weather "
         "by city','parameters':{'type':'object','properties':{}},'strict':true}},"
         "{'type':'function','function':{'name':'no-args_2'}}],'parallel_tool_calls':true"),
     check_tools},
    {"tool_choice none drops tools",
     REQ(",'tools':[{'type':'function','function':{'name':'get_weather','parameters':{'type':"
         "'object'}}},{'type':'function','function':{'name':'g'}}],'tool_choice':'none'"),
     check_tools_dropped},
    {"tool_choice none keeps tool history",
     MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':'call_1',"
          "'content':'r'},{'role':'user','content':'b'}],'tool_choice':'none'," TOOLS1),
     check_tools_none_history},
    {"64-character tool name",
     REQ(",'tools':[{'type':'function','function':{'name':'a12345678901234567890123456789012345"
         "678901234567890123456789012'}}]"),
     check_plain},
    {"tool_choice auto without tools", REQ(",'tool_choice':'auto'"), check_plain},
    {"tool_choice none without tools", REQ(",'tool_choice':'none','tools':[]"), check_plain},
    {"json_schema",
     REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'answer','description':"
         "'The answer','strict':true,'schema':{'type':'object','properties':{'a':{'type':"
         "'string'}}}}}"),
     check_json_schema},
    {"json_schema without schema",
     REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'x','strict':null}}"),
     check_json_schema_min},
    {"json_object", REQ(",'response_format':{'type':'json_object'}"), check_json_object},
    {"response_format text", REQ(",'response_format':{'type':'text'}"), check_plain},
    {"ignored sampling params",
     REQ(",'temperature':0.7,'top_p':1,'frequency_penalty':-2,'presence_penalty':2,'stop':['a',"
         "'b','c','d'],'seed':42,'max_tokens':100,'max_completion_tokens':1,'logprobs':true,"
         "'top_logprobs':20,'logit_bias':{'50256':-100},'user':'u1','metadata':{'k':'v'},"
         "'store':false,'service_tier':'auto','modalities':['text'],'prediction':{'type':"
         "'content','content':'x'},'audio':null,'web_search_options':{},'verbosity':'low',"
         "'n':1,'prompt_cache_key':'k','safety_identifier':'s'"),
     check_plain},
    {"stop as string, nulls, unknown fields",
     REQ(",'stop':'END','temperature':null,'n':null,'stream':null,'functions':[],"
         "'x_custom':{'anything':[1,2]},'tools':null,'reasoning_effort':null"),
     check_plain},
    {"stream with usage", REQ(",'stream':true,'stream_options':{'include_usage':true}"),
     check_stream},
    {"stream without stream_options", REQ(",'stream':true,'stream_options':null"),
     check_stream_no_usage},
    {"assistant empty string content",
     "{'model':'m','messages':[{'role':'user','content':'a'},{'role':'assistant','content':''},"
     "{'role':'user','content':'b'}]}",
     check_empty_assistant_string},
};

static void test_valid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct chat_opts o;
        struct conv *c;

        print_message("valid: %s\n", vc->name);
        memset(&o, 0xff, sizeof(o)); /* chat_parse must reset it */
        c = parse_ok(vc->body, &o);
        vc->check(c, &o);
        conv_free(c);
    }
}

static void test_reasoning_effort_mapping(void **state)
{
    static const struct {
        const char *in, *out;
    } map[] = {{"minimal", "low"}, {"low", "low"},    {"medium", "medium"},
               {"high", "high"},   {"xhigh", "high"}, {"none", NULL}};
    char body[256];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct conv *c;
        snprintf(body, sizeof(body), REQ(",'reasoning_effort':'%s'"), map[i].in);
        c = parse_ok(body, NULL);
        if (map[i].out)
            assert_string_equal(c->reasoning_effort, map[i].out);
        else
            assert_null(c->reasoning_effort);
        conv_free(c);
    }
}

static void test_raw_bodies(void **state)
{
    static const char *const bad[] = {"",
                                      "not json",
                                      "[1,2]",
                                      "\"str\"",
                                      "42",
                                      "{",
                                      "{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}"};
    struct conv *c = (struct conv *)&c; /* must be reset to NULL */
    struct gw_err e;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        assert_int_equal(chat_parse(bad[i], strlen(bad[i]), &c, NULL, &e), GW_EINVAL);
        assert_null(c);
        assert_int_equal(e.http_status, 400);
        assert_string_equal(e.param, "");
        assert_non_null(strstr(e.msg, "We could not parse the JSON body of your request."));
    }
    /* A NUL inside the body is not JSON either. */
    assert_int_equal(chat_parse("{\"a\":1}\0x", 9, &c, NULL, &e), GW_EINVAL);
    assert_int_equal(chat_parse(NULL, 0, &c, NULL, NULL), GW_EINVAL);
    assert_null(c);
}

/* ---- invalid requests ----------------------------------------------------- */

static const struct bad_case {
    const char *body;
    const char *param;
    const char *needle; /* NULL: the message must quote the param */
    const char *code;   /* NULL: not checked */
} bad_cases[] = {
    /* model and messages */
    {"{'messages':" USER_HI "}", "model", "Missing required parameter: 'model'.",
     "missing_required_parameter"},
    {"{'model':5,'messages':" USER_HI "}", "model",
     "Invalid type for 'model': expected a string, but got an integer instead.", "invalid_type"},
    {"{'model':null,'messages':" USER_HI "}", "model", "but got null instead", NULL},
    {"{'model':'','messages':" USER_HI "}", "model", "empty string", "empty_string"},
    {"{'model':'m'}", "messages", "Missing required parameter: 'messages'.", NULL},
    {"{'model':'m','messages':{}}", "messages", "expected an array, but got an object", NULL},
    {"{'model':'m','messages':[]}", "messages", "empty array", "empty_array"},
    {MSGS("[1]"), "messages[0]", "expected an object, but got an integer", NULL},
    {MSGS("[{'content':'x'}]"), "messages[0].role", NULL, "missing_required_parameter"},
    {MSGS("[{'role':5,'content':'x'}]"), "messages[0].role", NULL, "invalid_type"},
    {MSGS("[{'role':'wizard','content':'x'}]"), "messages[0].role",
     "Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', 'function', "
     "'tool', and 'developer'.",
     "invalid_value"},
    {MSGS("[{'role':'function','name':'f','content':'x'}]"), "messages[0].role", "not supported",
     NULL},
    {MSGS("[{'role':'user','content':'x','name':5}]"), "messages[0].name", NULL, NULL},
    /* content */
    {MSGS("[{'role':'user','content':5}]"), "messages[0].content",
     "Invalid type for 'messages[0].content': expected one of a string or array of objects, but "
     "got an integer instead.",
     "invalid_type"},
    {MSGS("[{'role':'user'}]"), "messages[0].content", NULL, "missing_required_parameter"},
    {MSGS("[{'role':'user','content':null}]"), "messages[0].content", "got null", NULL},
    {MSGS("[{'role':'user','content':[]}]"), "messages[0].content", NULL, "empty_array"},
    {MSGS("[{'role':'user','content':['hi']}]"), "messages[0].content[0]", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'text':'hi'}]}]"), "messages[0].content[0].type", NULL,
     NULL},
    {MSGS("[{'role':'user','content':[{'type':'text'}]}]"), "messages[0].content[0].text", NULL,
     NULL},
    {MSGS("[{'role':'user','content':[{'type':'text','text':1}]}]"), "messages[0].content[0].text",
     NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'x','format':"
          "'wav'}}]}]"),
     "messages[0].content[0].type", "not supported", "unsupported_value"},
    {MSGS("[{'role':'user','content':[{'type':'file','file':{'file_id':'f'}}]}]"),
     "messages[0].content[0].type", "not supported", NULL},
    {MSGS("[{'role':'user','content':[{'type':'video'}]}]"), "messages[0].content[0].type",
     "Invalid value: 'video'. Supported values are: 'text' and 'image_url'.", NULL},
    {MSGS("[{'role':'user','content':[{'type':'refusal','refusal':'x'}]}]"),
     "messages[0].content[0].type", "'refusal'", NULL},
    {MSGS("[{'role':'system','content':[{'type':'image_url','image_url':{'url':'https://a/b'}}]},"
          "{'role':'user','content':'x'}]"),
     "messages[0].content[0].type", "Invalid value: 'image_url'. Supported values are: 'text'.",
     NULL},
    {MSGS("[{'role':'developer','content':5}]"), "messages[0].content", NULL, NULL},
    /* images */
    {MSGS("[{'role':'user','content':[{'type':'image_url'}]}]"), "messages[0].content[0].image_url",
     NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':5}]}]"),
     "messages[0].content[0].image_url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{}}]}]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:text/plain;"
          "base64,aGk='}}]}]"),
     "messages[0].content[0].image_url.url", "MIME type 'text/plain'", NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png;"
          "base64,@@@@'}}]}]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png;"
          "base64,'}}]}]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png;"
          "base64,aGk=aGk='}}]}]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'data:image/png,"
          "abc'}}]}]"),
     "messages[0].content[0].image_url.url", "base64", NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'ftp://a/b.png'}}]}"
          "]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'cat.png'}}]}]"),
     "messages[0].content[0].image_url.url", NULL, NULL},
    {MSGS("[{'role':'user','content':[{'type':'image_url','image_url':{'url':'https://a/b',"
          "'detail':'ultra'}}]}]"),
     "messages[0].content[0].image_url.detail", "Invalid value: 'ultra'.", NULL},
    /* assistant */
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant'}]"), "messages[1].content", NULL,
     NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':null,'tool_calls':[]}]"),
     "messages[1].content", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':5}]"),
     "messages[1].content", NULL, "invalid_type"},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':[{'type':'image_url',"
          "'image_url':{'url':'https://a/b'}}]}]"),
     "messages[1].content[0].type", "Supported values are: 'text' and 'refusal'.", NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':'x','tool_calls':'x'}]"),
     "messages[1].tool_calls", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':'x',"
          "'reasoning_content':5}]"),
     "messages[1].reasoning_content", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[5]}]"),
     "messages[1].tool_calls[0]", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'type':'function',"
          "'function':{'name':'f','arguments':'{}'}}]}]"),
     "messages[1].tool_calls[0].id", NULL, "missing_required_parameter"},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c','type':"
          "'custom','function':{'name':'f','arguments':'{}'}}]}]"),
     "messages[1].tool_calls[0].type", "Invalid value: 'custom'.", NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c','type':"
          "'function'}]}]"),
     "messages[1].tool_calls[0].function", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c','type':"
          "'function','function':{'name':'f','arguments':{}}}]}]"),
     "messages[1].tool_calls[0].function.arguments", NULL, "invalid_type"},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c','type':"
          "'function','function':{'arguments':'{}'}}]}]"),
     "messages[1].tool_calls[0].function.name", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c','type':"
          "'function','function':{'name':'f','arguments':'{}'}},{'id':'c','type':'function',"
          "'function':{'name':'f','arguments':'{}'}}]}]"),
     "messages[1].tool_calls[1].id", "duplicate tool call id 'c'", NULL},
    /* tool messages and pairing */
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','content':'r'}]"),
     "messages[2].tool_call_id", NULL, "missing_required_parameter"},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':5,"
          "'content':'r'}]"),
     "messages[2].tool_call_id", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':"
          "'call_1'}]"),
     "messages[2].content", NULL, NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':"
          "'call_1','content':[{'type':'image_url','image_url':{'url':'https://a/b'}}]}]"),
     "messages[2].content[0].type", "Invalid value: 'image_url'.", NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'tool','tool_call_id':'x','content':'r'}]"),
     "messages[1].role", "must be a response to a preceding message with 'tool_calls'", NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':"
          "'call_9','content':'r'}]"),
     "messages[2].tool_call_id", "'tool_call_id' of 'call_9' not found", NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'tool','tool_call_id':"
          "'call_1','content':'r'},{'role':'tool','tool_call_id':'call_1','content':'r'}]"),
     "messages[3].tool_call_id", "already answered", NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL ",{'role':'user','content':'b'}]"),
     "messages[1].role", "did not have response messages: call_1", NULL},
    {MSGS("[{'role':'user','content':'a'}," ASSIST_CALL "]"), "messages[1].role",
     "did not have response messages: call_1", NULL},
    {MSGS("[{'role':'user','content':'a'},{'role':'assistant','tool_calls':[{'id':'c1','type':"
          "'function','function':{'name':'f','arguments':'{}'}},{'id':'c2','type':'function',"
          "'function':{'name':'f','arguments':'{}'}},{'id':'c3','type':'function','function':{"
          "'name':'f','arguments':'{}'}}]},{'role':'tool','tool_call_id':'c2','content':'r'},"
          "{'role':'system','content':'s'}]"),
     "messages[1].role", "response messages: c1, c3", NULL},
    /* tools */
    {REQ(",'tools':'x'"), "tools", NULL, "invalid_type"},
    {REQ(",'tools':[5]"), "tools[0]", NULL, NULL},
    {REQ(",'tools':[{'function':{'name':'f'}}]"), "tools[0].type", NULL, NULL},
    {REQ(",'tools':[{'type':'web_search'}]"), "tools[0].type", "'web_search'", NULL},
    {REQ(",'tools':[{'type':'function'}]"), "tools[0].function", NULL, NULL},
    {REQ(",'tools':[{'type':'function','function':{}}]"), "tools[0].function.name", NULL, NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'bad name'}}]"), "tools[0].function.name",
     "does not match pattern", NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':''}}]"), "tools[0].function.name", NULL,
     NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'a12345678901234567890123456789012345"
         "67890123456789012345678901234'}}]"),
     "tools[0].function.name", NULL, NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'f'}},{'type':'function','function':"
         "{'name':'f'}}]"),
     "tools[1].function.name", "duplicate tool name 'f'", NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'f','parameters':'x'}}]"),
     "tools[0].function.parameters", NULL, NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'f','description':5}}]"),
     "tools[0].function.description", NULL, NULL},
    {REQ(",'tools':[{'type':'function','function':{'name':'f','strict':'yes'}}]"),
     "tools[0].function.strict", NULL, NULL},
    {REQ(",'tool_choice':'sometimes'," TOOLS1), "tool_choice", "'sometimes'", NULL},
    {REQ(",'tool_choice':'required'"), "tool_choice", NULL, NULL},
    {REQ(",'tool_choice':{'type':'function','function':{'name':'f'}}"), "tool_choice", NULL, NULL},
    /* the runtime cannot force a tool call: refused, never silently ignored */
    {REQ(",'tool_choice':'required'," TOOLS1), "tool_choice",
     "tool_choice 'required' is not supported: the Copilot runtime lets the model decide whether "
     "to call a tool; use 'auto'",
     "unsupported_value"},
    {REQ(",'tool_choice':{'type':'function','function':{'name':'f'}}," TOOLS1), "tool_choice",
     "tool_choice naming function 'f' is not supported", "unsupported_value"},
    /* 'none' still validates the tools it does not declare */
    {REQ(",'tool_choice':'none','tools':[{'type':'function','function':{'name':'bad name'}}]"),
     "tools[0].function.name", "does not match pattern", NULL},
    {REQ(",'tool_choice':'none','tools':'x'"), "tools", NULL, "invalid_type"},
    {REQ(",'tool_choice':5," TOOLS1), "tool_choice", NULL, "invalid_type"},
    {REQ(",'tool_choice':{'type':'function'}," TOOLS1), "tool_choice.function", NULL, NULL},
    {REQ(",'tool_choice':{'type':'allowed_tools'}," TOOLS1), "tool_choice.type", "allowed_tools",
     NULL},
    {REQ(",'tool_choice':{'type':'function','function':{'name':5}}," TOOLS1),
     "tool_choice.function.name", NULL, NULL},
    {REQ(",'functions':[{'name':'f'}]"), "functions", NULL, "unsupported_parameter"},
    {REQ(",'functions':5"), "functions", NULL, NULL},
    /* stream, n */
    {REQ(",'stream':'yes'"), "stream", "expected a boolean, but got a string", NULL},
    {REQ(",'stream_options':{'include_usage':true}"), "stream_options",
     "The 'stream_options' parameter is only allowed when 'stream' is enabled.", NULL},
    {REQ(",'stream':false,'stream_options':{'include_usage':true}"), "stream_options", NULL, NULL},
    {REQ(",'stream':true,'stream_options':5"), "stream_options", NULL, NULL},
    {REQ(",'stream':true,'stream_options':{'include_usage':'x'}"), "stream_options.include_usage",
     NULL, NULL},
    {REQ(",'n':2"), "n", "one choice per request", "unsupported_value"},
    {REQ(",'n':0"), "n", "Expected a value >= 1, but got 0 instead.", "integer_below_min_value"},
    {REQ(",'n':-3"), "n", NULL, NULL},
    {REQ(",'n':1.5"), "n", "expected an integer, but got a decimal", NULL},
    /* response_format, reasoning_effort */
    {REQ(",'response_format':'json'"), "response_format", NULL, NULL},
    {REQ(",'response_format':{}"), "response_format.type", NULL, NULL},
    {REQ(",'response_format':{'type':'xml'}"), "response_format.type", "Invalid value: 'xml'.",
     NULL},
    {REQ(",'response_format':{'type':'json_schema'}"), "response_format.json_schema", NULL, NULL},
    {REQ(",'response_format':{'type':'json_schema','json_schema':{'schema':{}}}"),
     "response_format.json_schema.name", NULL, NULL},
    {REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'a b'}}"),
     "response_format.json_schema.name", "pattern", NULL},
    {REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'a','schema':[]}}"),
     "response_format.json_schema.schema", NULL, NULL},
    {REQ(",'response_format':{'type':'json_schema','json_schema':{'name':'a','strict':1}}"),
     "response_format.json_schema.strict", NULL, NULL},
    {REQ(",'reasoning_effort':'max'"), "reasoning_effort", "Invalid value: 'max'.",
     "invalid_value"},
    {REQ(",'reasoning_effort':1"), "reasoning_effort", NULL, NULL},
    /* accepted-but-ignored parameters are still type-checked */
    {REQ(",'temperature':3"), "temperature",
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 "
     "instead.",
     "decimal_above_max_value"},
    {REQ(",'temperature':'hot'"), "temperature", "expected a decimal, but got a string", NULL},
    {REQ(",'top_p':-0.5"), "top_p", "decimal below minimum value", "decimal_below_min_value"},
    {REQ(",'top_p':1.5"), "top_p", NULL, NULL},
    {REQ(",'frequency_penalty':2.5"), "frequency_penalty", NULL, NULL},
    {REQ(",'presence_penalty':-2.5"), "presence_penalty", NULL, NULL},
    {REQ(",'stop':5"), "stop", "expected one of a string or array of strings", NULL},
    {REQ(",'stop':['a','b','c','d','e']"), "stop", "array too long", "array_above_max_length"},
    {REQ(",'stop':['a',1]"), "stop[1]", NULL, NULL},
    {REQ(",'seed':1.5"), "seed", NULL, NULL},
    {REQ(",'max_tokens':0"), "max_tokens", "integer below minimum value",
     "integer_below_min_value"},
    {REQ(",'max_completion_tokens':'x'"), "max_completion_tokens", NULL, NULL},
    {REQ(",'logprobs':'x'"), "logprobs", NULL, NULL},
    {REQ(",'top_logprobs':21"), "top_logprobs", "integer above maximum value", NULL},
    {REQ(",'logit_bias':[]"), "logit_bias", NULL, NULL},
    {REQ(",'user':5"), "user", NULL, NULL},
    {REQ(",'metadata':'x'"), "metadata", NULL, NULL},
    {REQ(",'store':'x'"), "store", NULL, NULL},
    {REQ(",'parallel_tool_calls':1"), "parallel_tool_calls", NULL, NULL},
    {REQ(",'service_tier':1"), "service_tier", NULL, NULL},
    {REQ(",'modalities':'text'"), "modalities", NULL, NULL},
    {REQ(",'modalities':['text',5]"), "modalities[1]", NULL, NULL},
    {REQ(",'prediction':'x'"), "prediction", NULL, NULL},
    {REQ(",'audio':'x'"), "audio", NULL, NULL},
    {REQ(",'web_search_options':1"), "web_search_options", NULL, NULL},
    {REQ(",'verbosity':1"), "verbosity", NULL, NULL},
};

static void test_invalid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *bc = &bad_cases[i];
        struct conv *c = (struct conv *)&c;
        struct chat_opts o;
        struct gw_err e;
        int rc = parse(bc->body, &c, &o, &e);
        const char *needle = bc->needle ? bc->needle : bc->param;

        if (rc != GW_EINVAL || strcmp(e.param, bc->param) != 0 || !strstr(e.msg, needle) ||
            (bc->code && strcmp(e.api_code, bc->code) != 0))
            fail_msg("case %zu %s\n  rc=%d param='%s' code='%s'\n  msg=%s\n  wanted param='%s' "
                     "needle='%s' code='%s'",
                     i, bc->body, rc, e.param, e.api_code, e.msg, bc->param, needle,
                     bc->code ? bc->code : "-");
        assert_null(c);
        assert_int_equal(e.code, GW_EINVAL);
        assert_int_equal(e.http_status, 400);
        assert_int_equal(o.stream, 0);
    }
}

/* A long client value is quoted cut short, on a character boundary. */
static void test_error_quotes_are_clipped(void **state)
{
    char body[1024], role[300];
    struct conv *c;
    struct gw_err e;

    /* "a" then "é"s: byte SHOW_MAX (64) falls inside a character. */
    memset(role, 0, sizeof(role));
    role[0] = 'a';
    for (size_t i = 1; i + 2 < 200; i += 2)
        memcpy(role + i, "\xc3\xa9", 2);
    snprintf(body, sizeof(body), "{'model':'m','messages':[{'role':'%s','content':'x'}]}", role);
    assert_int_equal(parse(body, &c, NULL, &e), GW_EINVAL);
    assert_string_equal(e.param, "messages[0].role");
    assert_true(strlen(e.msg) < 300);
    {
        json_t *j = json_string(e.msg); /* valid UTF-8: no half character */
        assert_non_null(j);
        json_decref(j);
    }
}

/* ---- builders ------------------------------------------------------------- */

static json_t *path(json_t *j, const char *p)
{
    char key[64];
    while (*p && j) {
        size_t n = strcspn(p, ".");
        memcpy(key, p, n);
        key[n] = '\0';
        if (json_is_array(j))
            j = json_array_get(j, (size_t)strtoul(key, NULL, 10));
        else
            j = json_object_get(j, key);
        p += n + (p[n] == '.');
    }
    return j;
}

static const char *pstr(json_t *j, const char *p)
{
    return json_string_value(path(j, p));
}

static json_int_t pint(json_t *j, const char *p)
{
    json_t *v = path(j, p);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static void test_response(void **state)
{
    struct turn_result r;
    json_t *j;

    memset(&r, 0, sizeof(r));
    r.ok = 1;
    r.text = "Hello!";
    r.reasoning = "hmm";
    r.finish = TURN_LENGTH;
    r.usage.input_tokens = 11;
    r.usage.output_tokens = 7;
    r.usage.reasoning_tokens = 3;
    r.usage.cache_read_tokens = 5;
    j = roundtrip(chat_response("chatcmpl-1", "gpt-4o", 1700000000, &r));
    assert_string_equal(pstr(j, "id"), "chatcmpl-1");
    assert_string_equal(pstr(j, "object"), "chat.completion");
    assert_int_equal(pint(j, "created"), 1700000000);
    assert_string_equal(pstr(j, "model"), "gpt-4o");
    assert_int_equal(json_array_size(path(j, "choices")), 1);
    assert_int_equal(pint(j, "choices.0.index"), 0);
    assert_string_equal(pstr(j, "choices.0.message.role"), "assistant");
    assert_string_equal(pstr(j, "choices.0.message.content"), "Hello!");
    assert_true(json_is_null(path(j, "choices.0.message.refusal")));
    assert_string_equal(pstr(j, "choices.0.message.reasoning_content"), "hmm");
    assert_true(json_is_null(path(j, "choices.0.logprobs")));
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "length");
    assert_int_equal(pint(j, "usage.prompt_tokens"), 11);
    assert_int_equal(pint(j, "usage.completion_tokens"), 7);
    assert_int_equal(pint(j, "usage.total_tokens"), 18);
    assert_int_equal(pint(j, "usage.prompt_tokens_details.cached_tokens"), 5);
    assert_int_equal(pint(j, "usage.completion_tokens_details.reasoning_tokens"), 3);
    assert_true(json_is_null(path(j, "system_fingerprint")));
    json_decref(j);

    r.reasoning = "";
    r.finish = TURN_STOP;
    r.text = "bad \xff byte";
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_null(path(j, "choices.0.message.reasoning_content"));
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "stop");
    assert_string_equal(pstr(j, "choices.0.message.content"), "bad \xef\xbf\xbd byte");
    json_decref(j);

    r.reasoning = NULL;
    r.text = NULL;
    r.finish = TURN_TOOL_CALLS;
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "tool_calls");
    assert_true(json_is_null(path(j, "choices.0.message.content")));
    json_decref(j);
}

static void test_response_tool_calls(void **state)
{
    static const struct turn_tool_call calls[] = {
        {"call_a", "get_weather", "{\"city\":\"Paris\"}"},
        {"call_b", "get_time", "{}"},
        {"call_c", "bad\xff", NULL},
    };
    struct turn_result r;
    json_t *j, *tc;

    memset(&r, 0, sizeof(r));
    r.ok = 1;
    r.text = "";
    r.finish = TURN_TOOL_CALLS;
    r.calls = calls;
    r.ncalls = 3;
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "tool_calls");
    assert_true(json_is_null(path(j, "choices.0.message.content")));
    assert_string_equal(pstr(j, "choices.0.message.role"), "assistant");
    tc = path(j, "choices.0.message.tool_calls");
    assert_true(json_is_array(tc));
    assert_int_equal(json_array_size(tc), 3);
    assert_int_equal(json_object_size(json_array_get(tc, 0)), 3);
    assert_string_equal(pstr(tc, "0.id"), "call_a");
    assert_string_equal(pstr(tc, "0.type"), "function");
    assert_int_equal(json_object_size(path(tc, "0.function")), 2);
    assert_string_equal(pstr(tc, "0.function.name"), "get_weather");
    /* arguments stay the model's JSON text, a string, not an object */
    assert_string_equal(pstr(tc, "0.function.arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(pstr(tc, "1.id"), "call_b");
    assert_string_equal(pstr(tc, "1.function.name"), "get_time");
    assert_string_equal(pstr(tc, "1.function.arguments"), "{}");
    assert_string_equal(pstr(tc, "2.function.name"), "bad\xef\xbf\xbd");
    assert_string_equal(pstr(tc, "2.function.arguments"), "{}");
    json_decref(j);

    /* Text beside the calls is kept; NULL text is null too. */
    r.text = "Let me check.";
    r.ncalls = 1;
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_string_equal(pstr(j, "choices.0.message.content"), "Let me check.");
    assert_int_equal(json_array_size(path(j, "choices.0.message.tool_calls")), 1);
    json_decref(j);
    r.text = NULL;
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_true(json_is_null(path(j, "choices.0.message.content")));
    json_decref(j);

    /* Without calls there is no tool_calls key at all. */
    r.ncalls = 0;
    r.calls = NULL;
    r.text = "";
    r.finish = TURN_STOP;
    j = roundtrip(chat_response("id", "m", 1, &r));
    assert_null(path(j, "choices.0.message.tool_calls"));
    assert_string_equal(pstr(j, "choices.0.message.content"), "");
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "stop");
    json_decref(j);
}

/* Checks that buf holds exactly one "data: <json>\n\n" event and returns the JSON. */
static json_t *one_event(struct buf *b)
{
    const char *s = buf_str(b);
    json_error_t je;
    json_t *j;

    assert_true(b->len > 8);
    assert_memory_equal(s, "data: ", 6);
    assert_memory_equal(s + b->len - 2, "\n\n", 2);
    assert_ptr_equal(strstr(s, "\n\n"), s + b->len - 2); /* nothing can split the event */
    /* Model bytes may hold NULs: they stay, as \u0000 (valid JSON). */
    j = json_loadb(s + 6, b->len - 8, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, s);
    buf_reset(b);
    return j;
}

static void check_chunk_head(json_t *j)
{
    assert_string_equal(pstr(j, "id"), "chatcmpl-9");
    assert_string_equal(pstr(j, "object"), "chat.completion.chunk");
    assert_int_equal(pint(j, "created"), 42);
    assert_string_equal(pstr(j, "model"), "m");
    assert_true(json_is_null(path(j, "system_fingerprint")));
}

static void test_chunks(void **state)
{
    struct turn_usage u = {
        .input_tokens = 4, .output_tokens = 6, .reasoning_tokens = 1, .cache_read_tokens = 2};
    struct buf b;
    json_t *j;

    buf_init(&b, 1 << 20);
    assert_int_equal(chat_chunk_role(&b, "chatcmpl-9", "m", 42), GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    assert_string_equal(pstr(j, "choices.0.delta.role"), "assistant");
    assert_string_equal(pstr(j, "choices.0.delta.content"), "");
    assert_int_equal(pint(j, "choices.0.index"), 0);
    assert_true(json_is_null(path(j, "choices.0.logprobs")));
    assert_true(json_is_null(path(j, "choices.0.finish_reason")));
    json_decref(j);

    assert_int_equal(chat_chunk_text(&b, "chatcmpl-9", "m", 42, "a\n\ndata: x", 10), GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    assert_string_equal(pstr(j, "choices.0.delta.content"), "a\n\ndata: x");
    assert_int_equal(json_object_size(path(j, "choices.0.delta")), 1);
    json_decref(j);

    assert_int_equal(chat_chunk_reasoning(&b, "chatcmpl-9", "m", 42, "think", 5), GW_OK);
    j = one_event(&b);
    assert_string_equal(pstr(j, "choices.0.delta.reasoning_content"), "think");
    assert_null(path(j, "choices.0.delta.content"));
    json_decref(j);

    assert_int_equal(chat_chunk_finish(&b, "chatcmpl-9", "m", 42, TURN_TOOL_CALLS), GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    assert_int_equal(json_object_size(path(j, "choices.0.delta")), 0);
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "tool_calls");
    json_decref(j);

    assert_int_equal(chat_chunk_usage(&b, "chatcmpl-9", "m", 42, &u), GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    assert_true(json_is_array(path(j, "choices")));
    assert_int_equal(json_array_size(path(j, "choices")), 0);
    assert_int_equal(pint(j, "usage.prompt_tokens"), 4);
    assert_int_equal(pint(j, "usage.completion_tokens"), 6);
    assert_int_equal(pint(j, "usage.total_tokens"), 10);
    assert_int_equal(pint(j, "usage.prompt_tokens_details.cached_tokens"), 2);
    assert_int_equal(pint(j, "usage.completion_tokens_details.reasoning_tokens"), 1);
    json_decref(j);

    assert_int_equal(chat_chunk_done(&b), GW_OK);
    assert_string_equal(buf_str(&b), "data: [DONE]\n\n");
    buf_release(&b);
}

static void test_chunk_tool_call(void **state)
{
    struct buf b;
    json_t *j, *d;

    buf_init(&b, 1 << 20);
    /* The first piece of a call: index, id, type, name and the first fragment. */
    assert_int_equal(
        chat_chunk_tool_call(&b, "chatcmpl-9", "m", 42, 1, "call_x", "get_weather", "{\"ci", 4),
        GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    assert_int_equal(pint(j, "choices.0.index"), 0);
    assert_true(json_is_null(path(j, "choices.0.finish_reason")));
    assert_true(json_is_null(path(j, "choices.0.logprobs")));
    d = path(j, "choices.0.delta");
    assert_int_equal(json_object_size(d), 1);
    assert_int_equal(json_array_size(path(d, "tool_calls")), 1);
    assert_int_equal(json_object_size(path(d, "tool_calls.0")), 4);
    assert_int_equal(pint(d, "tool_calls.0.index"), 1);
    assert_string_equal(pstr(d, "tool_calls.0.id"), "call_x");
    assert_string_equal(pstr(d, "tool_calls.0.type"), "function");
    assert_int_equal(json_object_size(path(d, "tool_calls.0.function")), 2);
    assert_string_equal(pstr(d, "tool_calls.0.function.name"), "get_weather");
    assert_string_equal(pstr(d, "tool_calls.0.function.arguments"), "{\"ci");
    json_decref(j);

    /* A later piece: index and arguments only. */
    assert_int_equal(
        chat_chunk_tool_call(&b, "chatcmpl-9", "m", 42, 1, NULL, NULL, "ty\":\"Paris\"}", 13),
        GW_OK);
    j = one_event(&b);
    check_chunk_head(j);
    d = path(j, "choices.0.delta.tool_calls.0");
    assert_int_equal(json_object_size(d), 2);
    assert_int_equal(pint(d, "index"), 1);
    assert_null(path(d, "id"));
    assert_null(path(d, "type"));
    assert_int_equal(json_object_size(path(d, "function")), 1);
    assert_null(path(d, "function.name"));
    assert_string_equal(pstr(d, "function.arguments"), "ty\":\"Paris\"}");
    json_decref(j);

    /* A first piece with no arguments yet still carries "arguments":"". */
    assert_int_equal(chat_chunk_tool_call(&b, "chatcmpl-9", "m", 42, 0, "c0", "f", NULL, 0), GW_OK);
    j = one_event(&b);
    d = path(j, "choices.0.delta.tool_calls.0");
    assert_int_equal(pint(d, "index"), 0);
    assert_string_equal(pstr(d, "id"), "c0");
    assert_string_equal(pstr(d, "function.arguments"), "");
    json_decref(j);

    /* Bad bytes anywhere become U+FFFD; a fragment may split a character. */
    assert_int_equal(chat_chunk_tool_call(&b, "id", "m", 1, 2, "c\xff", "n\xc3", "\"\xe2\x82", 3),
                     GW_OK);
    j = one_event(&b);
    d = path(j, "choices.0.delta.tool_calls.0");
    assert_string_equal(pstr(d, "id"), "c\xef\xbf\xbd");
    assert_string_equal(pstr(d, "function.name"), "n\xef\xbf\xbd");
    assert_string_equal(pstr(d, "function.arguments"), "\"\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);

    assert_int_equal(chat_chunk_finish(&b, "chatcmpl-9", "m", 42, TURN_TOOL_CALLS), GW_OK);
    j = one_event(&b);
    assert_string_equal(pstr(j, "choices.0.finish_reason"), "tool_calls");
    json_decref(j);
    buf_release(&b);

    /* Past the cap the buffer is released, never left half-written. */
    buf_init(&b, 64);
    assert_int_equal(chat_chunk_tool_call(&b, "i", "m", 1, 0, "call_1", "f", "{}", 2), GW_ETOOBIG);
    assert_null(b.ptr);
}

static void test_chunk_bad_bytes(void **state)
{
    static const char nasty[] = "ok\xff\xfe"
                                "a\xc3"
                                "\x00z\xed\xa0\x80\xf4\x90\x80\x80\xc0\xaf\xe2\x82";
    struct buf b;
    json_t *j, *c;

    buf_init(&b, 1 << 20);
    assert_int_equal(chat_chunk_text(&b, "id\xff", "m\xc3", 42, nasty, sizeof(nasty) - 1), GW_OK);
    j = one_event(&b);
    c = path(j, "choices.0.delta.content");
    assert_true(json_is_string(c));
    /* ok, 2 x FFFD, a, FFFD, NUL, z, 3 x FFFD (surrogate), 4 x FFFD (> U+10FFFF),
     * 2 x FFFD (overlong), 2 x FFFD (truncated) */
    assert_int_equal(json_string_length(c), 2 + 6 + 1 + 3 + 1 + 1 + 9 + 12 + 6 + 6);
    assert_memory_equal(json_string_value(c),
                        "ok\xef\xbf\xbd\xef\xbf\xbd"
                        "a\xef\xbf\xbd\0z",
                        14);
    assert_string_equal(pstr(j, "id"), "id\xef\xbf\xbd");
    assert_string_equal(pstr(j, "model"), "m\xef\xbf\xbd");
    json_decref(j);

    assert_int_equal(chat_chunk_reasoning(&b, "id", "m", 1, "\x80", 1), GW_OK);
    j = one_event(&b);
    assert_string_equal(pstr(j, "choices.0.delta.reasoning_content"), "\xef\xbf\xbd");
    json_decref(j);

    assert_int_equal(chat_chunk_text(&b, "id", "m", 1, NULL, 0), GW_OK);
    j = one_event(&b);
    assert_string_equal(pstr(j, "choices.0.delta.content"), "");
    json_decref(j);
    buf_release(&b);
}

static void test_chunk_append_and_cap(void **state)
{
    struct buf b;

    buf_init(&b, 1 << 20);
    assert_int_equal(chat_chunk_role(&b, "i", "m", 1), GW_OK);
    assert_int_equal(chat_chunk_text(&b, "i", "m", 1, "x", 1), GW_OK);
    assert_int_equal(chat_chunk_done(&b), GW_OK);
    assert_ptr_not_equal(strstr(buf_str(&b), "\"content\":\"x\""), NULL);
    assert_int_equal(strncmp(buf_str(&b) + b.len - 14, "data: [DONE]\n\n", 14), 0);
    buf_release(&b);

    /* Past the cap the buffer is released, never left half-written. */
    buf_init(&b, 64);
    assert_int_equal(chat_chunk_text(&b, "i", "m", 1, "0123456789012345678901234567890123", 34),
                     GW_ETOOBIG);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
}

/* ---- errors --------------------------------------------------------------- */

static const struct err_case {
    enum gw_status code;
    int http_status;
    const char *param, *api_code;
    const char *type, *want_code; /* want_code NULL: JSON null */
} err_cases[] = {
    {GW_EINVAL, 400, "messages[0].role", "invalid_value", "invalid_request_error", "invalid_value"},
    {GW_EINVAL, 400, "", "", "invalid_request_error", NULL},
    {GW_EAUTH, 401, "", "", "authentication_error", NULL},
    {GW_EAUTH, 401, "", "invalid_api_key", "authentication_error", "invalid_api_key"},
    {GW_EINVAL, 403, "", "", "permission_error", NULL},
    {GW_ENOTFOUND, 404, "model", "model_not_found", "invalid_request_error", "model_not_found"},
    {GW_ENOTFOUND, 405, "", "", "invalid_request_error", NULL},
    {GW_ETOOBIG, 413, "", "", "invalid_request_error", NULL},
    {GW_ERATELIMIT, 429, "", "", "rate_limit_error", "rate_limit_exceeded"},
    {GW_ERATELIMIT, 429, "", "insufficient_quota", "rate_limit_error", "insufficient_quota"},
    {GW_EIO, 500, "", "", "server_error", NULL},
    {GW_EUPSTREAM, 502, "", "", "server_error", NULL},
    {GW_ERUNTIME, 503, "", "", "server_error", "service_unavailable"},
    {GW_ERUNTIME, 503, "", "runtime_restarting", "server_error", "runtime_restarting"},
    {GW_ETIMEDOUT, 504, "", "", "timeout", NULL},
    {GW_ETIMEDOUT, 0, "", "", "timeout", NULL}, /* status from the code */
};

static void test_openai_error(void **state)
{
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *ec = &err_cases[i];
        struct gw_err e;
        json_t *j;

        memset(&e, 0, sizeof(e));
        gw_err_param(&e, ec->code, ec->param, "something failed %zu", i);
        e.http_status = ec->http_status;
        snprintf(e.api_code, sizeof(e.api_code), "%s", ec->api_code);
        j = roundtrip(openai_error(&e));
        assert_int_equal(json_object_size(j), 1);
        assert_int_equal(json_object_size(path(j, "error")), 4);
        assert_non_null(strstr(pstr(j, "error.message"), "something failed"));
        assert_string_equal(pstr(j, "error.type"), ec->type);
        if (ec->param[0])
            assert_string_equal(pstr(j, "error.param"), ec->param);
        else
            assert_true(json_is_null(path(j, "error.param")));
        if (ec->want_code)
            assert_string_equal(pstr(j, "error.code"), ec->want_code);
        else
            assert_true(json_is_null(path(j, "error.code")));
        json_decref(j);
    }
}

static void test_openai_error_odd_input(void **state)
{
    struct gw_err e;
    struct buf b;
    json_t *j;

    /* A message cut mid-character, and fields filled to the last byte. */
    memset(&e, 'x', sizeof(e));
    e.code = GW_EIO;
    e.http_status = 500;
    e.msg[0] = '\xc3';
    j = roundtrip(openai_error(&e));
    assert_string_equal(pstr(j, "error.type"), "server_error");
    assert_int_equal(strlen(pstr(j, "error.message")), 3 + sizeof(e.msg) - 1);
    assert_int_equal(strlen(pstr(j, "error.param")), sizeof(e.param));
    json_decref(j);

    j = roundtrip(openai_error(NULL));
    assert_string_equal(pstr(j, "error.type"), "server_error");
    assert_true(strlen(pstr(j, "error.message")) > 0);
    json_decref(j);

    memset(&e, 0, sizeof(e));
    gw_err_set(&e, GW_ERUNTIME, "the runtime restarted");
    buf_init(&b, 4096);
    assert_int_equal(chat_chunk_error(&b, &e), GW_OK);
    j = one_event(&b);
    assert_string_equal(pstr(j, "error.message"), "the runtime restarted");
    assert_string_equal(pstr(j, "error.type"), "server_error");
    assert_string_equal(pstr(j, "error.code"), "service_unavailable");
    json_decref(j);
    buf_release(&b);
}

/* A parse error from chat_parse comes out of openai_error in OpenAI's shape. */
static void test_parse_error_shape(void **state)
{
    struct conv *c;
    struct gw_err e;
    json_t *j;

    assert_int_equal(parse(MSGS("[{'role':'wizard','content':'x'}]"), &c, NULL, &e), GW_EINVAL);
    j = roundtrip(openai_error(&e));
    assert_string_equal(pstr(j, "error.type"), "invalid_request_error");
    assert_string_equal(pstr(j, "error.param"), "messages[0].role");
    assert_string_equal(pstr(j, "error.code"), "invalid_value");
    assert_non_null(strstr(pstr(j, "error.message"), "'wizard'"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_reasoning_effort_mapping),
        cmocka_unit_test(test_raw_bodies),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_error_quotes_are_clipped),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_response_tool_calls),
        cmocka_unit_test(test_chunks),
        cmocka_unit_test(test_chunk_tool_call),
        cmocka_unit_test(test_chunk_bad_bytes),
        cmocka_unit_test(test_chunk_append_and_cap),
        cmocka_unit_test(test_openai_error),
        cmocka_unit_test(test_openai_error_odd_input),
        cmocka_unit_test(test_parse_error_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
