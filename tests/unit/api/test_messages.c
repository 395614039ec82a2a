/* Unit tests for api/messages: request validation, message builders, SSE events, error shapes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/messages.h"
#include "jsontest.h"

static int parse(const char *body, struct conv **c, struct msg_opts *o, struct gw_err *e)
{
    char *json = sq(body);
    int rc;

    memset(e, 0, sizeof(*e));
    rc = msg_parse(json, strlen(json), c, o, e);
    free(json);
    return rc;
}

static struct conv *parse_ok(const char *body, struct msg_opts *o)
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

/* The text of message i (joined parts). */
static void assert_text(const struct conv *c, size_t i, const char *want)
{
    char *t;

    assert_true(i < c->nmsgs);
    t = conv_msg_text(&c->msgs[i]);
    assert_string_equal(t, want);
    free(t);
}

#define HEAD "{'model':'claude-sonnet-4-5','max_tokens':1024,"
#define REQ(extra) HEAD "'messages':[{'role':'user','content':'hi'}]" extra "}"
#define MSGS(m) HEAD "'messages':" m "}"
#define PNG "iVBORw0KGgo="
#define USE1                                                                                       \
    "{'role':'assistant','content':[{'type':'tool_use','id':'toolu_1','name':'f','input':{}}]}"
#define RESULT1 "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_1'}]}"

/* ---- valid requests ------------------------------------------------------- */

static void check_minimal(struct conv *c, const struct msg_opts *o)
{
    assert_string_equal(c->model, "claude-sonnet-4-5");
    assert_null(c->system);
    assert_null(c->pin);
    assert_null(c->reasoning_effort);
    assert_null(c->response_format);
    assert_int_equal(c->ntools, 0);
    assert_int_equal(c->stream, 0);
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(c->msgs[0].nparts, 1);
    assert_string_equal(c->msgs[0].parts[0].text, "hi");
    assert_int_equal(o->stream, 0);
    assert_int_equal(o->thinking, 0);
    assert_int_equal(o->max_tokens, 1024);
    assert_null(o->stop_sequences_json);
}

static void check_system_entries(struct conv *c, const struct msg_opts *o)
{
    assert_string_equal(c->system, "S\n\nX\n\nY1\n\nY2");
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[2].role, CONV_USER);
    assert_text(c, 2, "c");
}

static void check_system_blocks(struct conv *c, const struct msg_opts *o)
{
    assert_string_equal(c->system, "A\n\nB");
}

static void check_system_entries_only(struct conv *c, const struct msg_opts *o)
{
    assert_string_equal(c->system, "only");
    assert_int_equal(c->nmsgs, 1);
}

static void check_images(struct conv *c, const struct msg_opts *o)
{
    const struct conv_msg *m = &c->msgs[0];

    assert_int_equal(m->nparts, 3);
    assert_string_equal(m->parts[0].text, "what?");
    assert_int_equal(m->parts[1].kind, CONV_IMAGE);
    assert_string_equal(m->parts[1].mime, "image/png");
    assert_string_equal(m->parts[1].data_b64, PNG);
    assert_null(m->parts[1].url);
    assert_int_equal(m->parts[2].kind, CONV_IMAGE);
    assert_null(m->parts[2].mime);
    assert_null(m->parts[2].data_b64);
    assert_string_equal(m->parts[2].url, "https://example.com/cat.jpg");
}

static void check_documents(struct conv *c, const struct msg_opts *o)
{
    const struct conv_msg *m = &c->msgs[0];

    assert_int_equal(m->nparts, 7);
    assert_string_equal(m->parts[0].text, "[document: notes.txt]\nplain text");
    assert_string_equal(m->parts[1].text, "[document: document]\nhello");
    assert_string_equal(m->parts[2].text, "[document: doc]\ninline");
    assert_string_equal(m->parts[3].text, "[document: document]\n");
    assert_string_equal(m->parts[4].text, "part");
    assert_int_equal(m->parts[5].kind, CONV_IMAGE);
    assert_string_equal(m->parts[6].text, "summarise");
}

static void check_tools_roundtrip(struct conv *c, const struct msg_opts *o)
{
    const struct conv_msg *a = &c->msgs[1];

    assert_int_equal(c->nmsgs, 5);
    assert_int_equal(a->role, CONV_ASSISTANT);
    assert_string_equal(a->reasoning, "hmm");
    assert_int_equal(a->nparts, 1);
    assert_string_equal(a->parts[0].text, "Let me check.");
    assert_int_equal(a->ncalls, 2);
    assert_string_equal(a->calls[0].id, "toolu_1");
    assert_string_equal(a->calls[0].name, "get_weather");
    assert_string_equal(a->calls[0].arguments, "{\"city\":\"Paris\",\"days\":[1,2]}");
    assert_string_equal(a->calls[1].id, "toolu_2");
    assert_string_equal(a->calls[1].arguments, "{}");

    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_string_equal(c->msgs[2].tool_call_id, "toolu_2");
    assert_int_equal(c->msgs[2].is_error, 0);
    assert_text(c, 2, "noon");
    assert_int_equal(c->msgs[3].role, CONV_TOOL);
    assert_string_equal(c->msgs[3].tool_call_id, "toolu_1");
    assert_int_equal(c->msgs[3].is_error, 1);
    assert_text(c, 3, "sunny\n20C\n[image omitted]");
    assert_false(conv_msg_has_image(&c->msgs[3]));
    /* The user text after the results is a message of its own. */
    assert_int_equal(c->msgs[4].role, CONV_USER);
    assert_text(c, 4, "thanks");
    assert_null(c->msgs[4].tool_call_id);
}

static void check_results_only(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_int_equal(c->msgs[2].nparts, 0);
    assert_int_equal(c->msgs[2].is_error, 0);
}

static void check_same_roles(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 4);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(c->msgs[1].role, CONV_USER);
    assert_int_equal(c->msgs[2].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[3].role, CONV_ASSISTANT);
    assert_text(c, 3, "d");
}

static void check_prefill_tool_use(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 2);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[1].ncalls, 1);
}

static void check_empty_prefill(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].role, CONV_USER);
}

static void check_thinking_blocks(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 3);
    assert_string_equal(c->msgs[1].reasoning, "one\n\ntwo");
    assert_int_equal(c->msgs[1].nparts, 1);
    assert_null(c->msgs[2].reasoning);
}

static void check_tools(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->ntools, 2);
    assert_string_equal(c->tools[0].name, "get_weather");
    assert_string_equal(c->tools[0].description, "Weather by city");
    assert_string_equal(json_string_value(json_object_get(c->tools[0].parameters, "type")),
                        "object");
    assert_string_equal(c->tools[1].name, "mcp__ide__getDiagnostics");
    assert_null(c->tools[1].description);
    assert_non_null(c->tools[1].parameters);
}

static void check_tools_none(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->ntools, 0);
    assert_null(c->tools);
    assert_int_equal(c->nmsgs, 4);
    assert_int_equal(c->msgs[1].ncalls, 1);
}

static void check_pin(struct conv *c, const struct msg_opts *o)
{
    assert_string_equal(c->pin, "user_abc_account__session_1234");
}

static void check_no_pin(struct conv *c, const struct msg_opts *o)
{
    assert_null(c->pin);
}

static void check_ignored(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(o->stream, 1);
    assert_int_equal(c->stream, 1);
    assert_int_equal(o->max_tokens, 1024);
    assert_string_equal(o->stop_sequences_json, "[\"END\",\"\\n\\nHuman:\"]");
}

static void check_plain(struct conv *c, const struct msg_opts *o)
{
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(o->thinking, 0);
    assert_null(c->reasoning_effort);
}

static const struct valid_case {
    const char *name;
    const char *body;
    void (*check)(struct conv *c, const struct msg_opts *o);
} valid_cases[] = {
    {"minimal", REQ(""), check_minimal},
    {"system string and role system entries",
     HEAD "'system':'S','messages':[{'role':'user','content':'a'},{'role':'system','content':'X'},"
          "{'role':'assistant','content':'b'},{'role':'system','content':[{'type':'text','text':"
          "'Y1'},{'type':'text','text':''},{'type':'text','text':'Y2'}]},{'role':'system',"
          "'content':''},{'role':'user','content':'c'}]}",
     check_system_entries},
    {"system blocks",
     REQ(",'system':[{'type':'text','text':'A','cache_control':{'type':'ephemeral'}},"
         "{'type':'text','text':'B','citations':null}]"),
     check_system_blocks},
    {"system entries only before the user",
     MSGS("[{'role':'system','content':'only'},{'role':'user','content':'q'}]"),
     check_system_entries_only},
    {"images",
     MSGS("[{'role':'user','content':[{'type':'text','text':'what?'},{'type':'image','source':{"
          "'type':'base64','media_type':'image/png','data':'" PNG "'},'cache_control':{'type':"
          "'ephemeral'}},{'type':'image','source':{'type':'url','url':'https://example.com/cat."
          "jpg'}}]}]"),
     check_images},
    {"documents",
     MSGS("[{'role':'user','content':[{'type':'document','title':'notes.txt','source':{'type':"
          "'text','media_type':'text/plain','data':'plain text'}},{'type':'document','source':{"
          "'type':'base64','media_type':'text/plain','data':'aGVsbG8='},'citations':{'enabled':"
          "true},'context':'ctx'},{'type':'document','title':'doc','source':{'type':'content',"
          "'content':'inline'}},{'type':'document','title':'','source':{'type':'content',"
          "'content':[{'type':'text','text':'part'},{'type':'image','source':{'type':'base64',"
          "'media_type':'image/gif','data':'R0lGOD=='}}]}},{'type':'text','text':'summarise'}]}]"),
     check_documents},
    {"tool_use and tool_result",
     MSGS("[{'role':'user','content':'weather?'},{'role':'assistant','content':[{'type':"
          "'thinking','thinking':'hmm','signature':'sig'},{'type':'text','text':'Let me check.'},"
          "{'type':'tool_use','id':'toolu_1','name':'get_weather','input':{'city':'Paris',"
          "'days':[1, 2]}},{'type':'tool_use','id':'toolu_2','name':'get_time','input':{}}]},"
          "{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_2','content':"
          "'noon','is_error':false},{'type':'tool_result','tool_use_id':'toolu_1','is_error':"
          "true,'content':[{'type':'text','text':'sunny'},{'type':'text','text':'20C'},{'type':"
          "'image','source':{'type':'base64','media_type':'image/jpeg','data':'" PNG "'}}],"
          "'cache_control':{'type':'ephemeral'}},{'type':'text','text':'thanks'}]}]"),
     check_tools_roundtrip},
    {"tool results only, no content", MSGS("[{'role':'user','content':'go'}," USE1 "," RESULT1 "]"),
     check_results_only},
    {"tool result with empty content list and null is_error",
     MSGS("[{'role':'user','content':'go'}," USE1 ",{'role':'user','content':[{'type':"
          "'tool_result','tool_use_id':'toolu_1','content':[],'is_error':null}]}]"),
     check_results_only},
    {"system entry between tool_use and tool_result",
     MSGS("[{'role':'user','content':'go'}," USE1 ",{'role':'system','content':'note'}," RESULT1
          "]"),
     check_results_only},
    {"consecutive messages of one role",
     MSGS("[{'role':'user','content':'a'},{'role':'user','content':'b'},{'role':'assistant',"
          "'content':'c'},{'role':'assistant','content':[{'type':'text','text':'d'}]}]"),
     check_same_roles},
    {"final assistant with unanswered tool_use", MSGS("[{'role':'user','content':'go'}," USE1 "]"),
     check_prefill_tool_use},
    {"empty final assistant dropped",
     MSGS("[{'role':'user','content':'go'},{'role':'assistant','content':''}]"),
     check_empty_prefill},
    {"empty final assistant list dropped",
     MSGS("[{'role':'user','content':'go'},{'role':'assistant','content':[]}]"),
     check_empty_prefill},
    {"thinking and redacted thinking",
     MSGS("[{'role':'user','content':'a'},{'role':'assistant','content':[{'type':'thinking',"
          "'thinking':'one'},{'type':'redacted_thinking','data':'xyz'},{'type':'thinking',"
          "'thinking':'','signature':''},{'type':'thinking','thinking':'two','signature':'s'},"
          "{'type':'text','text':'ans'}]},{'role':'user','content':'b'}]"),
     check_thinking_blocks},
    {"tools and tool_choice auto",
     REQ(",'tools':[{'name':'get_weather','description':'Weather by city','input_schema':{"
         "'type':'object','properties':{'city':{'type':'string'}}},'cache_control':{'type':"
         "'ephemeral'}},{'type':'custom','name':'mcp__ide__getDiagnostics','input_schema':{"
         "'type':'object'},'description':null}],'tool_choice':{'type':'auto',"
         "'disable_parallel_tool_use':true}"),
     check_tools},
    {"tools without tool_choice",
     REQ(",'tools':[{'name':'get_weather','description':'Weather by city','input_schema':{"
         "'type':'object'}},{'name':'mcp__ide__getDiagnostics','input_schema':{}}]"),
     check_tools},
    {"tool_choice none drops tools, keeps history",
     MSGS("[{'role':'user','content':'go'}," USE1 "," RESULT1
          ",{'role':'user','content':'more'}],'tools':[{'name':'f','input_schema':{}}],"
          "'tool_choice':{'type':'none'}"),
     check_tools_none},
    {"metadata.user_id pins",
     REQ(",'metadata':{'user_id':'user_abc_account__session_1234','other':1}"), check_pin},
    {"empty metadata", REQ(",'metadata':{}"), check_no_pin},
    {"empty user_id", REQ(",'metadata':{'user_id':''}"), check_no_pin},
    {"null user_id", REQ(",'metadata':{'user_id':null}"), check_no_pin},
    {"accepted and ignored parameters",
     REQ(",'stream':true,'temperature':0.5,'top_p':1,'top_k':40,'stop_sequences':['END',"
         "'\\n\\nHuman:'],'service_tier':'auto','container':'cnt_1','mcp_servers':[],"
         "'context_management':{'edits':[]},'x_unknown':{'a':[1]},'anthropic_version':'x'"),
     check_ignored},
    {"nulls for optional parameters",
     REQ(",'system':null,'tools':null,'tool_choice':null,'thinking':null,'stream':null,"
         "'metadata':null,'temperature':null,'stop_sequences':null,'container':{'id':'c'}"),
     check_plain},
    {"thinking disabled", REQ(",'thinking':{'type':'disabled'}"), check_plain},
};

static void test_valid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct msg_opts o;
        struct conv *c;

        print_message("valid: %s\n", vc->name);
        memset(&o, 0, sizeof(o));
        c = parse_ok(vc->body, &o);
        vc->check(c, &o);
        conv_free(c);
        msg_opts_release(&o);
    }
}

static void test_thinking_budget(void **state)
{
    static const struct {
        const char *thinking;
        const char *effort;
    } map[] = {
        {"{'type':'enabled','budget_tokens':1024}", "low"},
        {"{'type':'enabled','budget_tokens':4095}", "low"},
        {"{'type':'enabled','budget_tokens':4096}", "medium"},
        {"{'type':'enabled','budget_tokens':16383}", "medium"},
        {"{'type':'enabled','budget_tokens':16384}", "high"},
        {"{'type':'enabled','budget_tokens':200000}", "high"},
        {"{'type':'adaptive'}", "medium"},
    };
    char body[512];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct msg_opts o;
        struct conv *c;

        snprintf(body, sizeof(body), REQ(",'thinking':%s"), map[i].thinking);
        c = parse_ok(body, &o);
        assert_int_equal(o.thinking, 1);
        assert_string_equal(c->reasoning_effort, map[i].effort);
        conv_free(c);
        msg_opts_release(&o);
    }
}

/* No opts: the stop sequences are parsed and freed inside. */
static void test_null_opts(void **state)
{
    struct conv *c = parse_ok(REQ(",'stop_sequences':['a']"), NULL);

    conv_free(c);
    msg_opts_release(NULL);
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
        assert_int_equal(msg_parse(bad[i], strlen(bad[i]), &c, NULL, &e), GW_EINVAL);
        assert_null(c);
        assert_int_equal(e.http_status, 400);
        assert_string_equal(e.param, "");
        assert_non_null(strstr(e.msg, "error parsing the body of your request"));
    }
    assert_int_equal(msg_parse("{\"a\":1}\0x", 9, &c, NULL, &e), GW_EINVAL);
    assert_int_equal(msg_parse(NULL, 0, &c, NULL, NULL), GW_EINVAL);
    assert_null(c);
}

/* ---- invalid requests ----------------------------------------------------- */

#define USER_Q "{'role':'user','content':'q'}"
#define IMG(src) MSGS("[{'role':'user','content':[{'type':'image','source':" src "}]}]")
#define DOC(src) MSGS("[{'role':'user','content':[{'type':'document','source':" src "}]}]")
#define UBLK(b) MSGS("[{'role':'user','content':[" b "]}]")
#define ABLK(b) MSGS("[" USER_Q ",{'role':'assistant','content':[" b "]}," USER_Q "]")
#define AFTER_USE1(u) MSGS("[" USER_Q "," USE1 "," u "]")
#define TR(extra) "{'type':'tool_result','tool_use_id':'toolu_1'" extra "}"
#define TOOLS(t) REQ(",'tools':[" t "]")
#define NOT_SUPPORTED "not supported by this gateway"
#define PAIRING "`tool_use` ids were found without `tool_result` blocks immediately after: "

static const struct bad_case {
    const char *body;
    const char *param;
    const char *needle; /* the text after "<param>: " starts with it */
} bad_cases[] = {
    /* model, max_tokens, messages */
    {"{'max_tokens':1,'messages':[" USER_Q "]}", "model", "Field required"},
    {"{'model':5,'max_tokens':1,'messages':[" USER_Q "]}", "model",
     "Input should be a valid string"},
    {"{'model':'','max_tokens':1,'messages':[" USER_Q "]}", "model",
     "String should have at least 1 character"},
    {"{'model':'m','messages':[" USER_Q "]}", "max_tokens", "Field required"},
    {"{'model':'m','max_tokens':null,'messages':[" USER_Q "]}", "max_tokens",
     "Input should be a valid integer"},
    {"{'model':'m','max_tokens':0,'messages':[" USER_Q "]}", "max_tokens",
     "Input should be greater than or equal to 1"},
    {"{'model':'m','max_tokens':1.5,'messages':[" USER_Q "]}", "max_tokens",
     "Input should be a valid integer"},
    {HEAD "'stream':true}", "messages", "Field required"},
    {MSGS("[]"), "messages", "at least one message is required"},
    {MSGS("{}"), "messages", "Input should be a valid list"},
    {MSGS("[1]"), "messages.0", "Input should be a valid dictionary"},
    {MSGS("[{'content':'x'}]"), "messages.0.role", "Field required"},
    {MSGS("[{'role':'tool','content':'x'}]"), "messages.0.role",
     "Input should be 'user' or 'assistant'"},
    {MSGS("[{'role':'user'}]"), "messages.0.content", "Field required"},
    {MSGS("[{'role':'user','content':null}]"), "messages.0.content",
     "Input should be a valid string or a list of content blocks"},
    {MSGS("[{'role':'user','content':5}]"), "messages.0.content",
     "Input should be a valid string or a list of content blocks"},
    {MSGS("[{'role':'user','content':[]}]"), "messages.0",
     "all messages must have non-empty content except for the optional final assistant message"},
    {MSGS("[{'role':'user','content':''}]"), "messages.0", "all messages must have non-empty"},
    {MSGS("[" USER_Q ",{'role':'assistant','content':[]}," USER_Q "]"), "messages.1",
     "all messages must have non-empty"},
    {MSGS("[{'role':'system','content':'s'}]"), "messages",
     "at least one user or assistant message is required"},
    {MSGS("[{'role':'system','content':5}," USER_Q "]"), "messages.0.content",
     "Input should be a valid string or a list of text blocks"},
    {MSGS("[{'role':'system','content':[{'type':'image'}]}," USER_Q "]"),
     "messages.0.content.0.type", "Input tag 'image' found using 'type'"},
    /* content blocks */
    {UBLK("'text'"), "messages.0.content.0", "Input should be a valid dictionary"},
    {UBLK("{'text':'x'}"), "messages.0.content.0.type", "Field required"},
    {UBLK("{'type':5}"), "messages.0.content.0.type", "Input should be a valid string"},
    {UBLK("{'type':'video'}"), "messages.0.content.0.type",
     "Input tag 'video' found using 'type' does not match any of the expected tags: 'text', "
     "'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"},
    {UBLK("{'type':'text'}"), "messages.0.content.0.text", "Field required"},
    {UBLK("{'type':'text','text':['a']}"), "messages.0.content.0.text",
     "Input should be a valid string"},
    {UBLK("{'type':'text','text':'a','cache_control':'x'}"), "messages.0.content.0.cache_control",
     "Input should be a valid dictionary"},
    {UBLK("{'type':'text','text':'a','citations':{}}"), "messages.0.content.0.citations",
     "Input should be a valid list"},
    {UBLK("{'type':'tool_use','id':'t','name':'f','input':{}}"), "messages.0.content.0",
     "`tool_use` blocks can only be in `assistant` messages"},
    {UBLK("{'type':'thinking','thinking':'x'}"), "messages.0.content.0",
     "`thinking` blocks can only be in `assistant` messages"},
    {UBLK("{'type':'search_result','source':'s','title':'t','content':[]}"),
     "messages.0.content.0.type", "content blocks of type 'search_result' are " NOT_SUPPORTED},
    {ABLK("{'type':'server_tool_use','id':'s','name':'web_search','input':{}}"),
     "messages.1.content.0.type", "content blocks of type 'server_tool_use' are " NOT_SUPPORTED},
    {ABLK("{'type':'tool_result','tool_use_id':'x'}"), "messages.1.content.0",
     "`tool_result` blocks can only be in `user` messages"},
    {ABLK("{'type':'image','source':{'type':'url','url':'https://x.y/a.png'}}"),
     "messages.1.content.0", "`image` blocks can only be in `user` messages"},
    {ABLK("{'type':'bogus'}"), "messages.1.content.0.type", "Input tag 'bogus'"},
    {ABLK("{'type':'thinking','signature':'s'}"), "messages.1.content.0.thinking",
     "Field required"},
    {ABLK("{'type':'thinking','thinking':'t','signature':1}"), "messages.1.content.0.signature",
     "Input should be a valid string"},
    {ABLK("{'type':'redacted_thinking'}"), "messages.1.content.0.data", "Field required"},
    /* images */
    {UBLK("{'type':'image'}"), "messages.0.content.0.source", "Field required"},
    {IMG("'x'"), "messages.0.content.0.source", "Input should be a valid dictionary"},
    {IMG("{'data':'x'}"), "messages.0.content.0.source.type", "Field required"},
    {IMG("{'type':'base64','media_type':'image/bmp','data':'" PNG "'}"),
     "messages.0.content.0.source.media_type",
     "Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"},
    {IMG("{'type':'base64','data':'" PNG "'}"), "messages.0.content.0.source.media_type",
     "Field required"},
    {IMG("{'type':'base64','media_type':'image/png'}"), "messages.0.content.0.source.data",
     "Field required"},
    {IMG("{'type':'base64','media_type':'image/png','data':'not base64!'}"),
     "messages.0.content.0.source.data", "The image data is not valid base64"},
    {IMG("{'type':'url','url':'ftp://example.com/a.png'}"), "messages.0.content.0.source.url",
     "Input should be an http or https URL"},
    {IMG("{'type':'url'}"), "messages.0.content.0.source.url", "Field required"},
    {IMG("{'type':'file','file_id':'file_1'}"), "messages.0.content.0.source.type",
     "file sources (the Files API) are " NOT_SUPPORTED},
    {IMG("{'type':'svg'}"), "messages.0.content.0.source.type",
     "Input tag 'svg' found using 'type' does not match any of the expected tags: 'base64', "
     "'url'"},
    /* documents */
    {DOC("{'type':'base64','media_type':'application/pdf','data':'JVBERi0='}"),
     "messages.0.content.0.source.media_type", "PDF documents are " NOT_SUPPORTED},
    {DOC("{'type':'base64','media_type':'text/html','data':'aGk='}"),
     "messages.0.content.0.source.media_type", "Input should be 'application/pdf' or 'text/plain'"},
    {DOC("{'type':'base64','media_type':'text/plain','data':'@@'}"),
     "messages.0.content.0.source.data", "The document data is not valid base64"},
    {DOC("{'type':'base64','media_type':'text/plain','data':'/w=='}"),
     "messages.0.content.0.source.data", "The document data is not valid UTF-8 text"},
    {DOC("{'type':'url','url':'https://example.com/a.pdf'}"), "messages.0.content.0.source.type",
     "documents by URL (PDF) are " NOT_SUPPORTED},
    {DOC("{'type':'file','file_id':'f'}"), "messages.0.content.0.source.type",
     "file sources (the Files API)"},
    {DOC("{'type':'text','media_type':'text/markdown','data':'x'}"),
     "messages.0.content.0.source.media_type", "Input should be 'text/plain'"},
    {DOC("{'type':'text','media_type':'text/plain'}"), "messages.0.content.0.source.data",
     "Field required"},
    {DOC("{'type':'content','content':5}"), "messages.0.content.0.source.content",
     "Input should be a valid string or a list of content blocks"},
    {DOC("{'type':'content','content':[{'type':'document'}]}"),
     "messages.0.content.0.source.content.0.type", "Input tag 'document'"},
    {DOC("{'type':'zip'}"), "messages.0.content.0.source.type", "Input tag 'zip'"},
    {UBLK("{'type':'document','source':{'type':'text','media_type':'text/plain','data':'x'},"
          "'title':5}"),
     "messages.0.content.0.title", "Input should be a valid string"},
    /* tool_use / tool_result pairing */
    {MSGS("[" USER_Q ",{'role':'assistant','content':[{'type':'tool_use','id':'toolu_1','name':"
          "'f','input':{}},{'type':'tool_use','id':'toolu_2','name':'g','input':{}}]}," RESULT1
          "]"),
     "messages.1",
     PAIRING "toolu_2. Each `tool_use` block must have a corresponding `tool_result` block in "
             "the next message."},
    {AFTER_USE1(USER_Q), "messages.1", PAIRING "toolu_1."},
    {AFTER_USE1("{'role':'assistant','content':'x'}"), "messages.1", PAIRING "toolu_1."},
    {AFTER_USE1("{'role':'user','content':[{'type':'text','text':'x'}," TR("") "]}"),
     "messages.2.content.1",
     "`tool_result` blocks must be at the beginning of the message, before any other content"},
    {AFTER_USE1("{'role':'user','content':[" TR("") "," TR("") "]}"), "messages.2.content.1",
     "duplicate `tool_result` block for `tool_use_id` toolu_1"},
    {AFTER_USE1("{'role':'user','content':[{'type':'tool_result','tool_use_id':'toolu_9'}]}"),
     "messages.2.content.0",
     "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block "
     "must have a corresponding `tool_use` block in the previous message."},
    {UBLK(TR("")), "messages.0.content.0", "unexpected `tool_use_id` found"},
    {AFTER_USE1("{'role':'user','content':[{'type':'tool_result'}]}"),
     "messages.2.content.0.tool_use_id", "Field required"},
    {AFTER_USE1("{'role':'user','content':[" TR(",'is_error':'yes'") "]}"),
     "messages.2.content.0.is_error", "Input should be a valid boolean"},
    {AFTER_USE1("{'role':'user','content':[" TR(",'content':5") "]}"),
     "messages.2.content.0.content", "Input should be a valid string or a list of content blocks"},
    {AFTER_USE1("{'role':'user','content':[" TR(",'content':[{'type':'tool_use'}]") "]}"),
     "messages.2.content.0.content.0.type",
     "Input tag 'tool_use' found using 'type' does not match any of the expected tags: 'text', "
     "'image', 'document'"},
    {AFTER_USE1(
         "{'role':'user','content':[" TR(",'content':[{'type':'image','source':{'type':"
                                         "'base64','media_type':'image/png','data':'!'}}]") "]}"),
     "messages.2.content.0.content.0.source.data", "The image data is not valid base64"},
    {ABLK("{'type':'tool_use','id':'t','name':'f'}"), "messages.1.content.0.input",
     "Field required"},
    {ABLK("{'type':'tool_use','id':'t','name':'f','input':[]}"), "messages.1.content.0.input",
     "Input should be a valid dictionary"},
    {ABLK("{'type':'tool_use','name':'f','input':{}}"), "messages.1.content.0.id",
     "Field required"},
    {ABLK("{'type':'tool_use','id':'t','input':{}}"), "messages.1.content.0.name",
     "Field required"},
    {MSGS("[" USER_Q ",{'role':'assistant','content':[{'type':'tool_use','id':'t','name':'f',"
          "'input':{}},{'type':'tool_use','id':'t','name':'g','input':{}}]}]"),
     "messages.1.content.1.id", "`tool_use` ids must be unique: t"},
    /* system */
    {REQ(",'system':5"), "system", "Input should be a valid string or a list of text blocks"},
    {REQ(",'system':['x']"), "system.0", "Input should be a valid dictionary"},
    {REQ(",'system':[{'type':'image'}]"), "system.0.type",
     "Input tag 'image' found using 'type' does not match any of the expected tags: 'text'"},
    {REQ(",'system':[{'type':'text'}]"), "system.0.text", "Field required"},
    /* tools and tool_choice */
    {REQ(",'tools':{}"), "tools", "Input should be a valid list"},
    {TOOLS("1"), "tools.0", "Input should be a valid dictionary"},
    {TOOLS("{'input_schema':{}}"), "tools.0.name", "Field required"},
    {TOOLS("{'name':'f'}"), "tools.0.input_schema", "Field required"},
    {TOOLS("{'name':'f','input_schema':'x'}"), "tools.0.input_schema",
     "Input should be a valid dictionary"},
    {TOOLS("{'name':'f','input_schema':{},'description':5}"), "tools.0.description",
     "Input should be a valid string"},
    {TOOLS("{'name':'a b','input_schema':{}}"), "tools.0.name",
     "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"},
    {TOOLS("{'name':'f','input_schema':{}},{'name':'f','input_schema':{}}"), "tools.1.name",
     "Tool names must be unique"},
    {TOOLS("{'type':'web_search_20250305','name':'web_search','max_uses':5}"), "tools.0.type",
     "tool type 'web_search_20250305' is " NOT_SUPPORTED},
    {TOOLS("{'type':'bash_20250124','name':'bash'}"), "tools.0.type",
     "tool type 'bash_20250124' is " NOT_SUPPORTED},
    {TOOLS("{'type':'text_editor_20250728','name':'str_replace_based_edit_tool'}"), "tools.0.type",
     "tool type 'text_editor_20250728' is " NOT_SUPPORTED},
    {REQ(",'tool_choice':{'type':'any'}"), "tool_choice.type",
     "tool_choice 'any' is not supported: the Copilot runtime lets the model decide"},
    {REQ(",'tool_choice':{'type':'tool','name':'f'}"), "tool_choice.type",
     "tool_choice naming tool 'f' is not supported"},
    {REQ(",'tool_choice':{'type':'tool'}"), "tool_choice.name", "Field required"},
    {REQ(",'tool_choice':'auto'"), "tool_choice", "Input should be a valid dictionary"},
    {REQ(",'tool_choice':{}"), "tool_choice.type", "Field required"},
    {REQ(",'tool_choice':{'type':'required'}"), "tool_choice.type",
     "Input tag 'required' found using 'type' does not match any of the expected tags: 'auto', "
     "'any', 'tool', 'none'"},
    {REQ(",'tool_choice':{'type':'auto','disable_parallel_tool_use':1}"),
     "tool_choice.disable_parallel_tool_use", "Input should be a valid boolean"},
    {REQ(",'tool_choice':{'type':'none'},'tools':[{'name':'f'}]"), "tools.0.input_schema",
     "Field required"},
    /* thinking */
    {REQ(",'thinking':'on'"), "thinking", "Input should be a valid dictionary"},
    {REQ(",'thinking':{}"), "thinking.type", "Field required"},
    {REQ(",'thinking':{'type':'on'}"), "thinking.type",
     "Input tag 'on' found using 'type' does not match any of the expected tags: 'enabled', "
     "'disabled', 'adaptive'"},
    {REQ(",'thinking':{'type':'enabled'}"), "thinking.budget_tokens", "Field required"},
    {REQ(",'thinking':{'type':'enabled','budget_tokens':1023}"), "thinking.budget_tokens",
     "Input should be greater than or equal to 1024"},
    {REQ(",'thinking':{'type':'enabled','budget_tokens':'2048'}"), "thinking.budget_tokens",
     "Input should be a valid integer"},
    /* other parameters */
    {REQ(",'stream':'yes'"), "stream", "Input should be a valid boolean"},
    {REQ(",'metadata':[]"), "metadata", "Input should be a valid dictionary"},
    {REQ(",'metadata':{'user_id':5}"), "metadata.user_id", "Input should be a valid string"},
    {REQ(",'temperature':1.5"), "temperature", "Input should be less than or equal to 1"},
    {REQ(",'temperature':-0.1"), "temperature", "Input should be greater than or equal to 0"},
    {REQ(",'temperature':'hot'"), "temperature", "Input should be a valid number"},
    {REQ(",'top_p':2"), "top_p", "Input should be less than or equal to 1"},
    {REQ(",'top_k':-1"), "top_k", "Input should be greater than or equal to 0"},
    {REQ(",'top_k':1.5"), "top_k", "Input should be a valid integer"},
    {REQ(",'stop_sequences':'END'"), "stop_sequences", "Input should be a valid list"},
    {REQ(",'stop_sequences':['a',1]"), "stop_sequences.1", "Input should be a valid string"},
    {REQ(",'service_tier':5"), "service_tier", "Input should be a valid string"},
    {REQ(",'context_management':5"), "context_management", "Input should be a valid dictionary"},
    {REQ(",'container':5"), "container", "Input should be a valid string or a valid dictionary"},
    {REQ(",'mcp_servers':{}"), "mcp_servers", "Input should be a valid list"},
    {REQ(",'mcp_servers':[{'type':'url','url':'https://mcp.example.com','name':'x'}]"),
     "mcp_servers", "MCP servers (the MCP connector) are " NOT_SUPPORTED},
};

static void check_bad(const char *body, const char *param, const char *needle)
{
    struct msg_opts o;
    struct conv *c = (struct conv *)&o;
    struct gw_err e;
    char want[640];
    int rc;

    print_message("invalid: %s\n", param);
    memset(&o, 0xff, sizeof(o)); /* msg_parse must reset it */
    rc = parse(body, &c, &o, &e);
    if (rc != GW_EINVAL)
        print_error("expected an error for %s\n", body);
    assert_int_equal(rc, GW_EINVAL);
    assert_null(c);
    assert_int_equal(e.code, GW_EINVAL);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.param, param);
    snprintf(want, sizeof(want), "%s: %s", param, needle);
    if (strncmp(e.msg, want, strlen(want)) != 0)
        print_error("got:  %s\nwant: %s...\n", e.msg, want);
    assert_int_equal(strncmp(e.msg, want, strlen(want)), 0);
    assert_int_equal(o.stream, 0);
    assert_int_equal(o.max_tokens, 0);
    assert_null(o.stop_sequences_json);
}

static void test_invalid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        check_bad(bad_cases[i].body, bad_cases[i].param, bad_cases[i].needle);
}

/* The limit on metadata.user_id, and a stop_sequences error after it was stored. */
static void test_invalid_lengths(void **state)
{
    char id[300], body[512];

    memset(id, 'u', 257);
    id[257] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'user_id':'%s'}"), id);
    check_bad(body, "metadata.user_id", "String should have at most 256 characters");
    id[256] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'user_id':'%s'}"), id);
    conv_free(parse_ok(body, NULL));
    /* stop_sequences is stored, then a later step fails: opts must be released. */
    check_bad(REQ(",'stop_sequences':['x'],'mcp_servers':[{}]"), "mcp_servers",
              "MCP servers (the MCP connector) are " NOT_SUPPORTED);
}

/* Long client values are cut in error messages, never mid-character. */
static void test_error_quotes_are_clipped(void **state)
{
    char body[1024], tag[200], want[128];
    struct conv *c;
    json_t *js;
    struct gw_err e;

    /* 2-byte characters: 32 of them are 64 bytes, the quoting limit. */
    tag[0] = '\0';
    for (int i = 0; i < 60; i++)
        strcat(tag, "\xc3\xa9");
    snprintf(body, sizeof(body), UBLK("{'type':'%s'}"), tag);
    assert_int_equal(parse(body, &c, NULL, &e), GW_EINVAL);
    snprintf(want, sizeof(want), "Input tag '%.64s' found", tag);
    assert_non_null(strstr(e.msg, want));
    js = json_string(e.msg); /* valid UTF-8 */
    assert_non_null(js);
    json_decref(js);
}

/* ---- response ------------------------------------------------------------- */

static void test_response_text(void **state)
{
    struct turn_result r = {.ok = 1, .text = "Hello!", .reasoning = "why", .finish = TURN_STOP};
    json_t *j;

    r.usage = (struct turn_usage){
        .input_tokens = 10, .output_tokens = 3, .cache_read_tokens = 4, .cache_write_tokens = 2};
    j = roundtrip(msg_response("msg_01", "claude-sonnet-4-5", 0, &r));
    assert_string_equal(str_at(j, "id"), "msg_01");
    assert_string_equal(str_at(j, "type"), "message");
    assert_string_equal(str_at(j, "role"), "assistant");
    assert_string_equal(str_at(j, "model"), "claude-sonnet-4-5");
    assert_int_equal(json_array_size(at(j, "content")), 1); /* no thinking: not asked for */
    assert_string_equal(str_at(j, "content.0.type"), "text");
    assert_string_equal(str_at(j, "content.0.text"), "Hello!");
    assert_string_equal(str_at(j, "stop_reason"), "end_turn");
    assert_true(json_is_null(at(j, "stop_sequence")));
    assert_int_equal(int_at(j, "usage.input_tokens"), 10);
    assert_int_equal(int_at(j, "usage.output_tokens"), 3);
    assert_int_equal(int_at(j, "usage.cache_creation_input_tokens"), 2);
    assert_int_equal(int_at(j, "usage.cache_read_input_tokens"), 4);
    assert_int_equal(json_object_size(at(j, "usage")), 4);
    assert_int_equal(json_object_size(j), 8);
    json_decref(j);
}

static void test_response_thinking_and_tools(void **state)
{
    const struct turn_tool_call calls[] = {
        {"toolu_1", "get_weather", "{\"city\": \"Paris\"}"},
        {"toolu_2", "broken", "{\"city\": "},
        {"toolu_3", "arr", "[1,2]"},
        {"toolu_4", "none", NULL},
    };
    struct turn_result r = {.ok = 1,
                            .text = "Checking.",
                            .reasoning = "need weather",
                            .finish = TURN_TOOL_CALLS,
                            .calls = calls,
                            .ncalls = 4};
    json_t *j = roundtrip(msg_response("msg_02", "m", 1, &r));

    assert_int_equal(json_array_size(at(j, "content")), 6);
    assert_string_equal(str_at(j, "content.0.type"), "thinking");
    assert_string_equal(str_at(j, "content.0.thinking"), "need weather");
    assert_string_equal(str_at(j, "content.0.signature"), "");
    assert_string_equal(str_at(j, "content.1.type"), "text");
    assert_string_equal(str_at(j, "content.1.text"), "Checking.");
    assert_string_equal(str_at(j, "content.2.type"), "tool_use");
    assert_string_equal(str_at(j, "content.2.id"), "toolu_1");
    assert_string_equal(str_at(j, "content.2.name"), "get_weather");
    assert_string_equal(str_at(j, "content.2.input.city"), "Paris");
    for (int i = 3; i <= 5; i++) {
        json_t *in = json_object_get(json_array_get(at(j, "content"), (size_t)i), "input");
        assert_true(json_is_object(in));
        assert_int_equal(json_object_size(in), 0);
    }
    assert_string_equal(str_at(j, "stop_reason"), "tool_use");
    json_decref(j);
}

static void test_response_empty(void **state)
{
    struct turn_result r = {.ok = 1, .text = "", .reasoning = "", .finish = TURN_LENGTH};
    json_t *j = roundtrip(msg_response("msg_03", "m", 1, &r));

    assert_int_equal(json_array_size(at(j, "content")), 1);
    assert_string_equal(str_at(j, "content.0.type"), "text");
    assert_string_equal(str_at(j, "content.0.text"), "");
    assert_string_equal(str_at(j, "stop_reason"), "max_tokens");
    json_decref(j);

    r.text = NULL;
    r.reasoning = NULL;
    j = roundtrip(msg_response("msg_04", "m", 1, &r));
    assert_int_equal(json_array_size(at(j, "content")), 1);
    assert_string_equal(str_at(j, "content.0.text"), "");
    json_decref(j);
}

static void test_response_bad_bytes(void **state)
{
    struct turn_result r = {.ok = 1,
                            .text = "a\xff"
                                    "b",
                            .finish = TURN_STOP};
    json_t *j = roundtrip(msg_response("msg_05", "m\xc3", 0, &r));

    assert_string_equal(str_at(j, "content.0.text"), "a\xef\xbf\xbd"
                                                     "b");
    assert_string_equal(str_at(j, "model"), "m\xef\xbf\xbd");
    json_decref(j);
}

static void test_stop_reason(void **state)
{
    assert_string_equal(msg_stop_reason(TURN_STOP), "end_turn");
    assert_string_equal(msg_stop_reason(TURN_LENGTH), "max_tokens");
    assert_string_equal(msg_stop_reason(TURN_TOOL_CALLS), "tool_use");
}

/* ---- stream --------------------------------------------------------------- */

/*
 * Parses SSE text back into an array of the events' data objects, checking
 * the framing: every event is "event: <type>\ndata: <json>\n\n" and its
 * JSON carries "type":"<type>".
 */
static json_t *sse_parse(const struct buf *b)
{
    json_t *events = json_array();
    const char *p = buf_str(b), *end = p + b->len;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop;
        char type[64];
        json_t *data;
        size_t n;

        assert_non_null(nl);
        assert_int_equal(strncmp(p, "event: ", 7), 0);
        n = (size_t)(nl - p) - 7;
        assert_true(n > 0 && n < sizeof(type));
        memcpy(type, p + 7, n);
        type[n] = '\0';
        p = nl + 1;
        assert_int_equal(strncmp(p, "data: ", 6), 0);
        stop = strstr(p, "\n\n");
        assert_non_null(stop);
        data = json_loadb(p + 6, (size_t)(stop - p) - 6, JSON_ALLOW_NUL, NULL);
        assert_non_null(data);
        assert_true(memchr(p, '\n', (size_t)(stop - p)) == NULL); /* one data line */
        assert_string_equal(str_at(data, "type"), type);
        json_array_append_new(events, data);
        p = stop + 2;
    }
    return events;
}

/*
 * Checks the events against a compact script, one token per event:
 * "start", "ping", "stop", "delta", "end" (message_delta), "mstop",
 * "block:<index>:<content type>", "d:<index>:<delta type>", "cstop:<index>".
 */
static void expect_events(json_t *ev, const char *const *script)
{
    size_t n = 0;

    for (; script[n]; n++) {
        json_t *e = json_array_get(ev, n);
        const char *s = script[n];
        unsigned idx;
        char kind[40];

        assert_non_null(e);
        if (!strcmp(s, "start")) {
            assert_string_equal(str_at(e, "type"), "message_start");
        } else if (!strcmp(s, "end")) {
            assert_string_equal(str_at(e, "type"), "message_delta");
        } else if (!strcmp(s, "mstop")) {
            assert_string_equal(str_at(e, "type"), "message_stop");
        } else if (sscanf(s, "block:%u:%39s", &idx, kind) == 2) {
            assert_string_equal(str_at(e, "type"), "content_block_start");
            assert_int_equal(int_at(e, "index"), idx);
            assert_string_equal(str_at(e, "content_block.type"), kind);
        } else if (sscanf(s, "d:%u:%39s", &idx, kind) == 2) {
            assert_string_equal(str_at(e, "type"), "content_block_delta");
            assert_int_equal(int_at(e, "index"), idx);
            assert_string_equal(str_at(e, "delta.type"), kind);
        } else if (sscanf(s, "cstop:%u", &idx) == 1) {
            assert_string_equal(str_at(e, "type"), "content_block_stop");
            assert_int_equal(int_at(e, "index"), idx);
            assert_int_equal(json_object_size(e), 2);
        } else {
            fail_msg("bad script token %s", s);
        }
    }
    assert_int_equal(json_array_size(ev), n);
}

static void test_stream_thinking_text(void **state)
{
    static const char *const script[] = {"start",
                                         "block:0:thinking",
                                         "d:0:thinking_delta",
                                         "d:0:thinking_delta",
                                         "cstop:0",
                                         "block:1:text",
                                         "d:1:text_delta",
                                         "d:1:text_delta",
                                         "cstop:1",
                                         "end",
                                         "mstop",
                                         NULL};
    struct msg_stream s = {.id = "msg_s1", .model = "claude-x", .thinking = 1};
    struct turn_result r = {.ok = 1, .text = "Hi!", .reasoning = "Let me", .finish = TURN_STOP};
    struct buf b;
    json_t *ev;

    r.usage = (struct turn_usage){.input_tokens = 12, .output_tokens = 5, .cache_read_tokens = 7};
    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_start(&s, &b, 12), GW_OK);
    assert_int_equal(msg_stream_start(&s, &b, 99), GW_OK); /* once only */
    assert_int_equal(msg_stream_thinking(&s, &b, "Let", 3), GW_OK);
    assert_int_equal(msg_stream_thinking(&s, &b, " me", 3), GW_OK);
    assert_int_equal(msg_stream_text(&s, &b, "", 0), GW_OK); /* nothing */
    assert_int_equal(msg_stream_text(&s, &b, "Hi", 2), GW_OK);
    assert_int_equal(msg_stream_text(&s, &b, "!", 1), GW_OK);
    assert_int_equal(msg_stream_finish(&s, &b, &r), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);

    assert_string_equal(str_at(ev, "0.message.id"), "msg_s1");
    assert_string_equal(str_at(ev, "0.message.type"), "message");
    assert_string_equal(str_at(ev, "0.message.role"), "assistant");
    assert_string_equal(str_at(ev, "0.message.model"), "claude-x");
    assert_int_equal(json_array_size(at(ev, "0.message.content")), 0);
    assert_true(json_is_null(at(ev, "0.message.stop_reason")));
    assert_true(json_is_null(at(ev, "0.message.stop_sequence")));
    assert_int_equal(int_at(ev, "0.message.usage.input_tokens"), 12);
    assert_int_equal(int_at(ev, "0.message.usage.output_tokens"), 0);
    assert_string_equal(str_at(ev, "1.content_block.thinking"), "");
    assert_string_equal(str_at(ev, "1.content_block.signature"), "");
    assert_string_equal(str_at(ev, "2.delta.thinking"), "Let");
    assert_string_equal(str_at(ev, "3.delta.thinking"), " me");
    assert_string_equal(str_at(ev, "5.content_block.text"), "");
    assert_string_equal(str_at(ev, "6.delta.text"), "Hi");
    assert_string_equal(str_at(ev, "7.delta.text"), "!");
    assert_string_equal(str_at(ev, "9.delta.stop_reason"), "end_turn");
    assert_true(json_is_null(at(ev, "9.delta.stop_sequence")));
    assert_int_equal(int_at(ev, "9.usage.output_tokens"), 5);
    assert_int_equal(int_at(ev, "9.usage.input_tokens"), 12);
    assert_int_equal(int_at(ev, "9.usage.cache_read_input_tokens"), 7);
    assert_int_equal(int_at(ev, "9.usage.cache_creation_input_tokens"), 0);
    assert_int_equal(s.started, 1);
    assert_int_equal(s.open, 0);
    assert_int_equal(s.index, 2);
    json_decref(ev);
    buf_release(&b);
}

/* Without thinking the reasoning deltas are dropped; text after text stays one block. */
static void test_stream_thinking_off(void **state)
{
    static const char *const script[] = {
        "start",   "block:0:text", "d:0:text_delta", "d:0:text_delta",
        "cstop:0", "end",          "mstop",          NULL};
    struct msg_stream s = {.id = "msg_s2", .model = "m"};
    struct turn_result r = {.ok = 1, .text = "ab", .finish = TURN_STOP};
    struct buf b;
    json_t *ev;

    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_thinking(&s, &b, "hidden", 6), GW_OK);
    assert_int_equal(b.len, 0);
    assert_int_equal(msg_stream_text(&s, &b, "a", 1), GW_OK);
    assert_int_equal(msg_stream_thinking(&s, &b, "hidden", 6), GW_OK);
    assert_int_equal(msg_stream_text(&s, &b, "b", 1), GW_OK);
    assert_int_equal(msg_stream_finish(&s, &b, &r), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);
    assert_int_equal(int_at(ev, "0.message.usage.input_tokens"), 0);
    json_decref(ev);
    buf_release(&b);
}

static void test_stream_tools(void **state)
{
    static const char *const script[] = {"start",
                                         "block:0:text",
                                         "d:0:text_delta",
                                         "cstop:0",
                                         "block:1:tool_use",
                                         "d:1:input_json_delta",
                                         "d:1:input_json_delta",
                                         "cstop:1",
                                         "block:2:tool_use",
                                         "d:2:input_json_delta",
                                         "cstop:2",
                                         "end",
                                         "mstop",
                                         NULL};
    const struct turn_tool_call calls[] = {{"toolu_1", "f", "{\"a\":1}"}, {"toolu_2", "g", "{}"}};
    struct msg_stream s = {.id = "msg_s3", .model = "m", .thinking = 1};
    struct turn_result r = {
        .ok = 1, .text = "ok", .finish = TURN_TOOL_CALLS, .calls = calls, .ncalls = 2};
    struct buf b;
    json_t *ev, *input;
    char joined[32];

    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_start(&s, &b, 3), GW_OK);
    assert_int_equal(msg_stream_text(&s, &b, "ok", 2), GW_OK);
    assert_int_equal(msg_stream_tool(&s, &b, 0, "toolu_1", "f", "{\"a\":", 5), GW_OK);
    assert_int_equal(s.open_call, 0);
    assert_int_equal(msg_stream_tool(&s, &b, 0, NULL, NULL, "1}", 2), GW_OK);
    assert_int_equal(msg_stream_tool(&s, &b, 1, "toolu_2", "g", "", 0), GW_OK);
    assert_int_equal(s.open_call, 1);
    assert_int_equal(msg_stream_tool(&s, &b, 1, NULL, NULL, "{}", 2), GW_OK);
    assert_int_equal(msg_stream_tool(&s, &b, 1, NULL, NULL, "", 0), GW_OK); /* nothing */
    /* A late piece of call 0, whose block is closed, cannot be sent. */
    assert_int_equal(msg_stream_tool(&s, &b, 0, NULL, NULL, "x", 1), GW_OK);
    assert_int_equal(msg_stream_finish(&s, &b, &r), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);

    assert_string_equal(str_at(ev, "4.content_block.id"), "toolu_1");
    assert_string_equal(str_at(ev, "4.content_block.name"), "f");
    assert_int_equal(json_object_size(at(ev, "4.content_block.input")), 0);
    snprintf(joined, sizeof(joined), "%s%s", str_at(ev, "5.delta.partial_json"),
             str_at(ev, "6.delta.partial_json"));
    input = json_loads(joined, 0, NULL);
    assert_non_null(input);
    assert_int_equal(json_integer_value(json_object_get(input, "a")), 1);
    json_decref(input);
    assert_string_equal(str_at(ev, "8.content_block.id"), "toolu_2");
    assert_string_equal(str_at(ev, "8.content_block.name"), "g");
    assert_string_equal(str_at(ev, "9.delta.partial_json"), "{}");
    assert_string_equal(str_at(ev, "11.delta.stop_reason"), "tool_use");
    json_decref(ev);
    buf_release(&b);
}

/* A turn that streamed nothing: message_start, one empty text block, the end. */
static void test_stream_finish_only(void **state)
{
    static const char *const script[] = {"start", "block:0:text", "cstop:0", "end", "mstop", NULL};
    struct msg_stream s = {.id = "msg_s4", .model = "m", .thinking = 1};
    struct turn_result r = {.ok = 1, .text = "", .finish = TURN_LENGTH};
    struct buf b;
    json_t *ev;

    r.usage.input_tokens = 42;
    r.usage.output_tokens = 9;
    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_finish(&s, &b, &r), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);
    assert_int_equal(int_at(ev, "0.message.usage.input_tokens"), 42);
    assert_string_equal(str_at(ev, "1.content_block.text"), "");
    assert_string_equal(str_at(ev, "3.delta.stop_reason"), "max_tokens");
    assert_int_equal(int_at(ev, "3.usage.output_tokens"), 9);
    json_decref(ev);
    buf_release(&b);
}

/* A tool call right after thinking, and thinking again after text: each switch is a new block. */
static void test_stream_block_switches(void **state)
{
    static const char *const script[] = {"start",
                                         "block:0:thinking",
                                         "d:0:thinking_delta",
                                         "cstop:0",
                                         "block:1:tool_use",
                                         "cstop:1",
                                         "block:2:text",
                                         "d:2:text_delta",
                                         "cstop:2",
                                         "block:3:thinking",
                                         "d:3:thinking_delta",
                                         "cstop:3",
                                         "end",
                                         "mstop",
                                         NULL};
    struct msg_stream s = {.id = "msg_s5", .model = "m", .thinking = 1};
    struct turn_result r = {.ok = 1, .finish = TURN_STOP};
    struct buf b;
    json_t *ev;

    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_thinking(&s, &b, "t", 1), GW_OK);
    assert_int_equal(msg_stream_tool(&s, &b, 0, "toolu_1", "f", NULL, 0), GW_OK);
    assert_int_equal(msg_stream_text(&s, &b, "x", 1), GW_OK);
    assert_int_equal(msg_stream_thinking(&s, &b, "u", 1), GW_OK);
    assert_int_equal(msg_stream_finish(&s, &b, &r), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);
    json_decref(ev);
    buf_release(&b);
}

static void test_stream_ping_error_bytes(void **state)
{
    static const char *const script[] = {"start", "block:0:text", "d:0:text_delta", NULL};
    struct msg_stream s = {.id = "msg_s6", .model = "m"};
    struct gw_err err;
    struct buf b;
    json_t *ev;

    buf_init(&b, 1 << 20);
    assert_int_equal(msg_stream_ping(&b), GW_OK);
    assert_string_equal(buf_str(&b), "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    buf_reset(&b);
    assert_int_equal(msg_stream_text(&s, &b, "a\xff\0b", 4), GW_OK);
    ev = sse_parse(&b);
    expect_events(ev, script);
    assert_int_equal(memcmp(str_at(ev, "2.delta.text"), "a\xef\xbf\xbd", 4), 0);
    assert_int_equal(json_string_length(at(ev, "2.delta.text")), 6);
    json_decref(ev);
    buf_reset(&b);

    gw_err_set(&err, GW_ERATELIMIT, "slow down");
    assert_int_equal(msg_stream_error(&b, &err), GW_OK);
    ev = sse_parse(&b);
    assert_int_equal(json_array_size(ev), 1);
    assert_string_equal(str_at(ev, "0.error.type"), "rate_limit_error");
    assert_string_equal(str_at(ev, "0.error.message"), "slow down");
    assert_true(strncmp(buf_str(&b), "event: error\n", 13) == 0);
    json_decref(ev);
    buf_release(&b);
}

/* An event that does not fit the buffer's cap fails and releases it. */
static void test_stream_cap(void **state)
{
    struct msg_stream s = {.id = "msg_s7", .model = "m"};
    char big[256];
    struct buf b;

    memset(big, 'x', sizeof(big));
    buf_init(&b, 128);
    assert_int_not_equal(msg_stream_text(&s, &b, big, sizeof(big)), GW_OK);
    assert_int_equal(b.len, 0);
    assert_null(b.ptr);
    buf_release(&b);
}

/* ---- errors --------------------------------------------------------------- */

static void test_anthropic_error(void **state)
{
    static const struct {
        int status;
        const char *type;
    } map[] = {{400, "invalid_request_error"},
               {401, "authentication_error"},
               {403, "permission_error"},
               {404, "not_found_error"},
               {413, "request_too_large"},
               {429, "rate_limit_error"},
               {500, "api_error"},
               {502, "api_error"},
               {503, "overloaded_error"},
               {529, "overloaded_error"},
               {504, "api_error"},
               {422, "invalid_request_error"}};
    struct gw_err err;
    json_t *j;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        gw_err_set(&err, GW_EUPSTREAM, "boom %d", map[i].status);
        err.http_status = map[i].status;
        j = roundtrip(anthropic_error(&err));
        assert_string_equal(str_at(j, "type"), "error");
        assert_string_equal(str_at(j, "error.type"), map[i].type);
        assert_non_null(strstr(str_at(j, "error.message"), "boom"));
        assert_int_equal(json_object_size(j), 2);
        assert_int_equal(json_object_size(at(j, "error")), 2);
        json_decref(j);
    }
    /* No status: the code's default; no error at all: a generic 500. */
    memset(&err, 0, sizeof(err));
    err.code = GW_ERUNTIME;
    j = roundtrip(anthropic_error(&err));
    assert_string_equal(str_at(j, "error.type"), "overloaded_error");
    assert_true(strlen(str_at(j, "error.message")) > 0);
    json_decref(j);
    j = roundtrip(anthropic_error(NULL));
    assert_string_equal(str_at(j, "error.type"), "api_error");
    json_decref(j);
    /* A message filling the whole array, with no NUL. */
    memset(&err, 0, sizeof(err));
    err.code = GW_EINVAL;
    memset(err.msg, 'a', sizeof(err.msg));
    j = roundtrip(anthropic_error(&err));
    assert_int_equal(strlen(str_at(j, "error.message")), sizeof(err.msg));
    json_decref(j);
}

/* A parse error comes out of anthropic_error in Anthropic's shape. */
static void test_parse_error_shape(void **state)
{
    struct conv *c;
    struct gw_err e;
    json_t *j;

    assert_int_equal(parse(MSGS("[{'role':'wizard','content':'x'}]"), &c, NULL, &e), GW_EINVAL);
    j = roundtrip(anthropic_error(&e));
    assert_string_equal(str_at(j, "error.type"), "invalid_request_error");
    assert_string_equal(str_at(j, "error.message"),
                        "messages.0.role: Input should be 'user' or 'assistant'");
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_thinking_budget),
        cmocka_unit_test(test_null_opts),
        cmocka_unit_test(test_raw_bodies),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_invalid_lengths),
        cmocka_unit_test(test_error_quotes_are_clipped),
        cmocka_unit_test(test_response_text),
        cmocka_unit_test(test_response_thinking_and_tools),
        cmocka_unit_test(test_response_empty),
        cmocka_unit_test(test_response_bad_bytes),
        cmocka_unit_test(test_stop_reason),
        cmocka_unit_test(test_stream_thinking_text),
        cmocka_unit_test(test_stream_thinking_off),
        cmocka_unit_test(test_stream_tools),
        cmocka_unit_test(test_stream_finish_only),
        cmocka_unit_test(test_stream_block_switches),
        cmocka_unit_test(test_stream_ping_error_bytes),
        cmocka_unit_test(test_stream_cap),
        cmocka_unit_test(test_anthropic_error),
        cmocka_unit_test(test_parse_error_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
