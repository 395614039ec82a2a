/* Unit tests for api/responses: request validation, conversations from items, output items,
 * SSE events and response objects. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/responses.h"
#include "broker/hash.h"
#include "jsontest.h"

static int parse(const char *body, struct resp_req *req, struct gw_err *e)
{
    char *json = sq(body);
    int rc;

    memset(e, 0, sizeof(*e));
    rc = resp_parse(json, strlen(json), req, e);
    free(json);
    return rc;
}

static void parse_ok(const char *body, struct resp_req *req)
{
    struct gw_err e;
    int rc = parse(body, req, &e);

    if (rc)
        print_error("unexpected error for %s: %s (param '%s')\n", body, e.msg, e.param);
    assert_int_equal(rc, GW_OK);
}

/* resp_parse() then resp_conv() with prior (a JSON text in single quotes, or NULL). */
static struct conv *conv_ok(const char *body, const char *prior, struct resp_req *req)
{
    struct conv *c = NULL;
    struct gw_err e;
    json_t *p = prior ? jsq(prior) : NULL;
    int rc;

    parse_ok(body, req);
    memset(&e, 0, sizeof(e));
    rc = resp_conv(req, p, &c, &e);
    if (rc)
        print_error("unexpected conv error for %s: %s (param '%s')\n", body, e.msg, e.param);
    assert_int_equal(rc, GW_OK);
    assert_non_null(c);
    json_decref(p);
    return c;
}

static void assert_text(const struct conv_msg *m, const char *want)
{
    char *t = conv_msg_text(m);
    assert_string_equal(t, want);
    free(t);
}

#define REQ(extra) "{'model':'gpt-5','input':'hi'" extra "}"
#define ITEMS(items) "{'model':'m','input':" items "}"
#define USER(text) "{'role':'user','content':'" text "'}"
#define CALL(id) "{'type':'function_call','call_id':'" id "','name':'f','arguments':'{}'}"
#define OUT(id) "{'type':'function_call_output','call_id':'" id "','output':'ok'}"
#define PNG "iVBORw0KGgo="

/* ---- valid requests ------------------------------------------------------- */

static void check_string_input(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(c->model, "gpt-5");
    assert_null(c->system);
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_text(&c->msgs[0], "hi");
    assert_int_equal(c->ntools, 0);
    assert_null(c->reasoning_effort);
    assert_null(c->response_format);
    assert_int_equal(c->stream, 0);
    assert_int_equal(r->stream, 0);
    assert_int_equal(r->store, 1);
    assert_int_equal(r->background, 0);
    assert_int_equal(r->summary, 0);
    assert_null(r->previous_response_id);
    assert_string_equal(str_at(r->input, "0.type"), "message");
    assert_string_equal(str_at(r->input, "0.role"), "user");
    assert_string_equal(str_at(r->input, "0.content.0.type"), "input_text");
    assert_string_equal(str_at(r->input, "0.content.0.text"), "hi");
}

static void check_system_join(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(c->system, "Be brief.\n\nD1\n\nS1\nS2\n\nD2");
    assert_int_equal(c->nmsgs, 2);
    assert_text(&c->msgs[0], "a");
    assert_text(&c->msgs[1], "b");
    /* Items without a type are messages; string content becomes one part. */
    assert_string_equal(str_at(r->input, "0.type"), "message");
    assert_string_equal(str_at(r->input, "0.content.0.type"), "input_text");
    assert_string_equal(str_at(r->input, "0.content.0.text"), "D1");
}

static void check_images(struct conv *c, const struct resp_req *r)
{
    const struct conv_msg *m = &c->msgs[0];

    assert_int_equal(m->nparts, 4);
    assert_string_equal(m->parts[0].text, "what?");
    assert_int_equal(m->parts[1].kind, CONV_IMAGE);
    assert_string_equal(m->parts[1].mime, "image/png");
    assert_string_equal(m->parts[1].data_b64, PNG);
    assert_null(m->parts[1].url);
    assert_int_equal(m->parts[2].kind, CONV_IMAGE);
    assert_null(m->parts[2].data_b64);
    assert_string_equal(m->parts[2].url, "https://example.com/cat.jpg");
    assert_string_equal(m->parts[3].url, "http://example.com/a.png?x=1");
}

/* reasoning, message, function_call, function_call: one assistant message. */
static void check_one_run(struct conv *c, const struct resp_req *r)
{
    const struct conv_msg *a = &c->msgs[1];

    assert_int_equal(c->nmsgs, 5);
    assert_int_equal(c->msgs[0].role, CONV_USER);
    assert_int_equal(a->role, CONV_ASSISTANT);
    assert_string_equal(a->reasoning, "think 1\n\nthink 2");
    assert_int_equal(a->nparts, 1);
    assert_text(a, "Let me check.");
    assert_int_equal(a->ncalls, 2);
    assert_string_equal(a->calls[0].id, "call_1");
    assert_string_equal(a->calls[0].name, "get_weather");
    assert_string_equal(a->calls[0].arguments, "{\"city\":\"Paris\"}");
    assert_string_equal(a->calls[1].id, "call_2");
    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_string_equal(c->msgs[2].tool_call_id, "call_2");
    assert_text(&c->msgs[2], "noon");
    assert_int_equal(c->msgs[3].role, CONV_TOOL);
    assert_string_equal(c->msgs[3].tool_call_id, "call_1");
    assert_text(&c->msgs[3], "sunny\n[image omitted]");
    assert_int_equal(c->msgs[4].role, CONV_USER);
}

/* Text split over two message items of one run is one text, run together. */
static void check_split_text(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[1].nparts, 1);
    assert_text(&c->msgs[1], "Hello, world.I refuse.");
    assert_null(c->msgs[1].reasoning);
    assert_text(&c->msgs[2], "again");
}

/* Two runs separated by outputs stay two assistant messages. */
static void check_two_runs(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->nmsgs, 5);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[1].ncalls, 1);
    assert_int_equal(c->msgs[1].nparts, 0);
    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_int_equal(c->msgs[3].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[3].ncalls, 1);
    assert_string_equal(c->msgs[3].calls[0].id, "c2");
    assert_string_equal(c->msgs[3].reasoning, "r2");
    assert_int_equal(c->msgs[4].role, CONV_TOOL);
}

/* A run of reasoning alone is an assistant message without text. */
static void check_reasoning_only(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[1].nparts, 0);
    assert_int_equal(c->msgs[1].ncalls, 0);
    assert_null(c->msgs[1].reasoning); /* empty summaries are no reasoning */
}

static void check_tools(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->ntools, 2);
    assert_string_equal(c->tools[0].name, "get_weather");
    assert_string_equal(c->tools[0].description, "Weather by city");
    assert_string_equal(json_string_value(json_object_get(c->tools[0].parameters, "type")),
                        "object");
    assert_string_equal(c->tools[1].name, "g");
    assert_null(c->tools[1].description);
    assert_null(c->tools[1].parameters);
    assert_int_equal(json_array_size(r->tools), 5);
    assert_int_equal(json_array_size(at(r->echo, "tools")), 5);
    assert_string_equal(str_at(r->echo, "tool_choice"), "auto");
}

static void check_tools_none(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->ntools, 0);
    assert_null(r->tools);
    assert_int_equal(json_array_size(at(r->echo, "tools")), 1); /* still echoed */
    assert_string_equal(str_at(r->echo, "tool_choice"), "none");
    assert_int_equal(c->nmsgs, 4); /* the history keeps its calls */
}

static void check_settings(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(c->reasoning_effort, "high");
    assert_int_equal(r->summary, 1);
    assert_int_equal(r->stream, 1);
    assert_int_equal(c->stream, 1);
    assert_int_equal(r->store, 0);
    assert_string_equal(str_at(c->response_format, "name"), "answer");
    assert_true(json_is_true(at(c->response_format, "strict")));
    assert_string_equal(str_at(c->response_format, "schema.type"), "object");
    assert_string_equal(str_at(r->echo, "reasoning.effort"), "xhigh");
    assert_string_equal(str_at(r->echo, "reasoning.summary"), "detailed");
    assert_string_equal(str_at(r->echo, "text.format.type"), "json_schema");
    assert_string_equal(str_at(r->echo, "text.verbosity"), "low");
    assert_true(json_is_false(at(r->echo, "store")));
    assert_true(json_is_false(at(r->echo, "parallel_tool_calls")));
    assert_int_equal(int_at(r->echo, "max_output_tokens"), 16);
    assert_true(json_real_value(at(r->echo, "temperature")) == 0.5);
    assert_int_equal(int_at(r->echo, "top_p"), 1);
    assert_string_equal(str_at(r->echo, "truncation"), "auto");
    assert_string_equal(str_at(r->echo, "user"), "u1");
    assert_string_equal(str_at(r->echo, "metadata.k"), "v");
    assert_string_equal(str_at(r->echo, "service_tier"), "flex");
}

static void check_json_object(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(str_at(c->response_format, "name"), "json_object");
    assert_string_equal(str_at(c->response_format, "schema.type"), "object");
    assert_string_equal(c->reasoning_effort, "low");
    assert_int_equal(r->summary, 0);
}

static void check_defaults_echo(struct conv *c, const struct resp_req *r)
{
    static const char *const nulls[] = {
        "instructions",         "max_output_tokens", "max_tool_calls",
        "previous_response_id", "prompt_cache_key",  "reasoning.effort",
        "reasoning.summary",    "safety_identifier", "user"};
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++) {
        if (!json_is_null(at(r->echo, nulls[i])))
            print_error("echo %s is not null\n", nulls[i]);
        assert_true(json_is_null(at(r->echo, nulls[i])));
    }
    assert_true(json_is_false(at(r->echo, "background")));
    assert_true(json_is_true(at(r->echo, "parallel_tool_calls")));
    assert_true(json_is_true(at(r->echo, "store")));
    assert_true(json_real_value(at(r->echo, "temperature")) == 1.0);
    assert_true(json_real_value(at(r->echo, "top_p")) == 1.0);
    assert_string_equal(str_at(r->echo, "text.format.type"), "text");
    assert_string_equal(str_at(r->echo, "text.verbosity"), "medium");
    assert_string_equal(str_at(r->echo, "tool_choice"), "auto");
    assert_int_equal(json_array_size(at(r->echo, "tools")), 0);
    assert_int_equal(int_at(r->echo, "top_logprobs"), 0);
    assert_string_equal(str_at(r->echo, "truncation"), "disabled");
    assert_string_equal(str_at(r->echo, "service_tier"), "default");
    assert_int_equal(json_object_size(at(r->echo, "metadata")), 0);
}

static void check_nulls(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(c->nmsgs, 1);
    assert_int_equal(r->store, 1);
    assert_null(c->system);
    check_defaults_echo(c, r);
}

static void check_background(struct conv *c, const struct resp_req *r)
{
    assert_int_equal(r->background, 1);
    assert_int_equal(r->store, 1);
    assert_true(json_is_true(at(r->echo, "background")));
    assert_string_equal(r->previous_response_id, "resp_abc");
    assert_string_equal(str_at(r->echo, "previous_response_id"), "resp_abc");
}

static void check_instructions(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(c->system, "Be brief.");
    assert_string_equal(str_at(r->echo, "instructions"), "Be brief.");
}

/* Codex CLI: the developer prompt, the environment, the task, many tools. */
static void check_codex(struct conv *c, const struct resp_req *r)
{
    assert_string_equal(c->system,
                        "You are Codex, a coding agent.\n\n<permissions>none</permissions>");
    assert_int_equal(c->nmsgs, 2);
    assert_text(&c->msgs[0], "<environment_context>cwd</environment_context>");
    assert_text(&c->msgs[1], "fix the failing test");
    assert_int_equal(c->ntools, 2); /* web_search and the namespace are not offered */
    assert_string_equal(c->tools[0].name, "shell_command");
    assert_string_equal(c->tools[1].name, "update_plan");
    assert_null(c->reasoning_effort);
    assert_int_equal(r->summary, 1);
    assert_int_equal(r->stream, 1);
    assert_int_equal(r->store, 0);
    assert_string_equal(str_at(r->echo, "prompt_cache_key"), "019a-session");
    assert_string_equal(str_at(r->input, "1.id"), "msg_env");
}

/* Codex's next request replays the last output with the tool result. */
static void check_codex_replay(struct conv *c, const struct resp_req *r)
{
    const struct conv_msg *a = &c->msgs[2];

    assert_int_equal(c->nmsgs, 4);
    assert_int_equal(a->role, CONV_ASSISTANT);
    assert_string_equal(a->reasoning, "**Running the tests**");
    assert_int_equal(a->nparts, 1);
    assert_text(a, "I will run the tests.");
    assert_int_equal(a->ncalls, 1);
    assert_string_equal(a->calls[0].id, "call_X1");
    assert_string_equal(a->calls[0].name, "shell_command");
    assert_int_equal(c->msgs[3].role, CONV_TOOL);
    assert_string_equal(c->msgs[3].tool_call_id, "call_X1");
    assert_text(&c->msgs[3], "Exit code: 0");
}

#define CODEX_TOOLS                                                                                \
    "'tools':[{'type':'function','name':'shell_command','description':'Runs a shell "              \
    "command','strict':false,'parameters':{'type':'object','properties':{'command':{'type':"       \
    "'string'},'workdir':{'type':'string'}},'required':['command'],'additionalProperties':"        \
    "false}},{'type':'function','name':'update_plan','description':'Updates the plan','strict':"   \
    "false,'parameters':{'type':'object','properties':{}}},{'type':'web_search','external_web_"    \
    "access':false},{'type':'namespace','name':'multi_agent_v1','description':'Sub-agents',"       \
    "'tools':[{'type':'function','name':'spawn_agent','description':'Spawns','strict':false,"      \
    "'parameters':{'type':'object','properties':{}}}]}]"
#define CODEX_HEAD                                                                                 \
    "{'model':'gpt-5.1-codex','instructions':'You are Codex, a coding agent.'," CODEX_TOOLS        \
    ",'tool_choice':'auto','parallel_tool_calls':true,'reasoning':{'summary':'auto'},'store':"     \
    "false,'stream':true,'include':['reasoning.encrypted_content'],'prompt_cache_key':'019a-"      \
    "session','client_metadata':{'x-codex-turn-metadata':'{}'},'text':{'verbosity':'low'},"        \
    "'input':[{'type':'message','role':'developer','id':'msg_dev','content':[{'type':'input_"      \
    "text','text':'<permissions>none</permissions>'}]},{'type':'message','role':'user','id':"      \
    "'msg_env','content':[{'type':'input_text','text':'<environment_context>cwd</environment_"     \
    "context>'}]},{'type':'message','role':'user','id':'msg_task','content':[{'type':'input_"      \
    "text','text':'fix the failing test'}]}"

static const struct valid_case {
    const char *name;
    const char *body;
    void (*check)(struct conv *c, const struct resp_req *r);
} valid_cases[] = {
    {"string input", REQ(""), check_string_input},
    {"system and developer join after instructions",
     "{'model':'m','instructions':'Be brief.','input':[{'role':'developer','content':'D1'},"
     "{'role':'user','content':'a'},{'type':'message','role':'system','content':[{'type':"
     "'input_text','text':'S1'},{'type':'input_text','text':'S2'}]},{'role':'developer',"
     "'content':[]},{'role':'user','content':[{'type':'input_text','text':'b'}]},{'role':"
     "'developer','content':'D2','status':'completed'}]}",
     check_system_join},
    {"images",
     ITEMS("[{'role':'user','content':[{'type':'input_text','text':'what?'},{'type':"
           "'input_image','image_url':'data:image/PNG;base64," PNG "','detail':'original'},{"
           "'type':'input_image','image_url':'https://example.com/cat.jpg','detail':'low'},{"
           "'type':'input_image','image_url':'http://example.com/a.png?x=1','file_id':null}]}]"),
     check_images},
    {"one run: reasoning, message, two calls",
     ITEMS("[" USER(
         "weather?") ",{'type':'reasoning','id':'rs_1','summary':[{'type':'summary_"
                     "text','text':'think 1'},{'type':'summary_text','text':'think "
                     "2'}],'encrypted_content':'gAAA','content':[{'type':'reasoning_"
                     "text','text':'raw'}]},{'type':'message','role':'assistant','id':"
                     "'msg_1','status':'completed','phase':'commentary','content':[{"
                     "'type':'output_text','text':'Let me check.','annotations':[],"
                     "'logprobs':[]}]},{'type':'function_call','id':'fc_1','call_id':"
                     "'call_1','name':'get_weather','arguments':'{\\'city\\':\\'Paris\\'}"
                     "','status':'completed'},{'type':'function_call','call_id':'call_"
                     "2','name':'get_time','arguments':'{}','namespace':'x'},{'type':"
                     "'function_call_output','call_id':'call_2','output':'noon'},{"
                     "'type':'function_call_output','id':'fco_1','call_id':'call_1',"
                     "'output':[{'type':'input_text','text':'sunny'},{'type':'input_"
                     "image','image_url':'data:image/png;base64," PNG "'}]}," USER("thanks") "]"),
     check_one_run},
    {"split text in one run",
     ITEMS("[" USER("hi") ",{'role':'assistant','content':'Hello, '},{'type':'message','role':"
                          "'assistant','content':[{'type':'output_text','text':'world.'},{'type':"
                          "'refusal','refusal':'I refuse.'}]}," USER("again") "]"),
     check_split_text},
    {"two runs",
     ITEMS("[" USER("go") "," CALL("c1") "," OUT("c1") ",{'type':'reasoning','summary':[{'type':"
                                                       "'summary_text','text':'r2'}]}," CALL(
                                                           "c2") "," OUT("c2") "]"),
     check_two_runs},
    {"reasoning alone", ITEMS("[" USER("a") ",{'type':'reasoning','summary':[]}," USER("b") "]"),
     check_reasoning_only},
    {"tools",
     REQ(",'tools':[{'type':'function','name':'get_weather','description':'Weather by city',"
         "'parameters':{'type':'object'},'strict':true},{'type':'web_search_preview'},{'type':"
         "'function','name':'g','description':null,'parameters':null,'strict':null},{'type':"
         "'custom','name':'apply_patch'},{'type':'mcp','server_label':'x'}],'tool_choice':"
         "'auto'"),
     check_tools},
    {"tool_choice none keeps the history",
     ITEMS("[" USER("go") "," CALL("c1") "," OUT("c1") "," USER("more") "],'tools':[{'type':"
                                                                        "'function','name':'f'}],"
                                                                        "'tool_choice':'none'"),
     check_tools_none},
    {"settings",
     REQ(",'reasoning':{'effort':'xhigh','summary':'detailed'},'text':{'format':{'type':"
         "'json_schema','name':'answer','schema':{'type':'object'},'strict':true},'verbosity':"
         "'low'},'stream':true,'store':false,'parallel_tool_calls':false,'max_output_tokens':16,"
         "'temperature':0.5,'top_p':1,'truncation':'auto','user':'u1','metadata':{'k':'v'},"
         "'service_tier':'flex','stream_options':{'include_obfuscation':false},'top_logprobs':"
         "20,'max_tool_calls':3,'safety_identifier':'s','prompt_cache_retention':'24h',"
         "'include':['reasoning.encrypted_content','message.output_text.logprobs'],"
         "'unknown_field':{'a':1}"),
     check_settings},
    {"json_object and generate_summary none",
     REQ(",'text':{'format':{'type':'json_object'}},'reasoning':{'effort':'minimal','generate_"
         "summary':'none','summary':null}"),
     check_json_object},
    {"defaults", REQ(""), check_defaults_echo},
    {"nulls for optional parameters",
     REQ(",'instructions':null,'tools':null,'tool_choice':null,'reasoning':null,'text':null,"
         "'stream':null,'store':null,'background':null,'metadata':null,'previous_response_id':"
         "null,'temperature':null,'max_output_tokens':null,'include':null,'prompt':null,"
         "'conversation':null,'user':null"),
     check_nulls},
    {"background", REQ(",'background':true,'previous_response_id':'resp_abc'"), check_background},
    {"instructions", REQ(",'instructions':'Be brief.'"), check_instructions},
    {"codex", CODEX_HEAD "]}", check_codex},
    {"codex replay",
     CODEX_HEAD ",{'type':'reasoning','id':'rs_1','summary':[{'type':'summary_text','text':'**"
                "Running the tests**'}],'content':null,'encrypted_content':'gAAAAB'},{'type':"
                "'message','role':'assistant','id':'msg_2','content':[{'type':'output_text',"
                "'text':'I will run the tests.'}],'phase':'commentary'},{'type':'function_call',"
                "'id':'fc_3','call_id':'call_X1','name':'shell_command','arguments':'{\\'command"
                "\\':\\'make test\\'}'},{'type':'function_call_output','call_id':'call_X1',"
                "'output':'Exit code: 0'}]}",
     check_codex_replay},
};

static void test_valid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *vc = &valid_cases[i];
        struct resp_req r;
        struct conv *c;

        print_message("valid: %s\n", vc->name);
        c = conv_ok(vc->body, NULL, &r);
        vc->check(c, &r);
        conv_free(c);
        resp_req_release(&r);
    }
}

/* The request's items as stored: types filled in, string content as parts, the rest as sent. */
static void test_normalised_input(void **state)
{
    struct resp_req r;

    parse_ok(ITEMS("[{'role':'assistant','content':'x','id':'msg_9'},{'type':null,'role':'user',"
                   "'content':'y'}," CALL("c") "," OUT("c") "]"),
             &r);
    assert_int_equal(json_array_size(r.input), 4);
    assert_string_equal(str_at(r.input, "0.type"), "message");
    assert_string_equal(str_at(r.input, "0.id"), "msg_9");
    assert_string_equal(str_at(r.input, "0.content.0.type"), "output_text");
    assert_string_equal(str_at(r.input, "0.content.0.text"), "x");
    assert_int_equal(json_array_size(at(r.input, "0.content.0.annotations")), 0);
    assert_string_equal(str_at(r.input, "1.type"), "message");
    assert_string_equal(str_at(r.input, "1.content.0.type"), "input_text");
    assert_string_equal(str_at(r.input, "2.type"), "function_call");
    assert_string_equal(str_at(r.input, "3.output"), "ok");
    resp_req_release(&r);
    resp_req_release(&r); /* twice is fine */
}

/* ---- invalid requests ----------------------------------------------------- */

#define NOT_SUPPORTED "is not supported by this gateway"

static const struct bad_case {
    const char *body;
    const char *param; /* "" for none */
    const char *needle;
    const char *code; /* NULL: none */
} bad_cases[] = {
    {"{'input':'hi'}", "model", "Missing required parameter: 'model'.",
     "missing_required_parameter"},
    {"{'model':5,'input':'hi'}", "model",
     "Invalid type for 'model': expected a string, but got an integer instead.", "invalid_type"},
    {"{'model':'','input':'hi'}", "model", "Invalid 'model': empty string.", "empty_string"},
    {"{'model':'m'}", "input", "Missing required parameter: 'input'.",
     "missing_required_parameter"},
    {"{'model':'m','input':5}", "input",
     "Invalid type for 'input': expected one of a string or array of input items, but got an "
     "integer instead.",
     "invalid_type"},
    {"{'model':'m','input':null}", "input", "Invalid type for 'input'", "invalid_type"},
    {"{'model':'m','input':[]}", "input", "Invalid 'input': empty array.", "empty_array"},
    {ITEMS("['hi']"), "input[0]",
     "Invalid type for 'input[0]': expected an object, but got a "
     "string instead.",
     "invalid_type"},
    {ITEMS("[{'content':'hi'}]"), "input[0].role", "Missing required parameter: 'input[0].role'.",
     "missing_required_parameter"},
    {ITEMS("[{'role':'tool','content':'x'}]"), "input[0].role",
     "Invalid value: 'tool'. Supported values are: 'user', 'assistant', 'system', and "
     "'developer'.",
     "invalid_value"},
    {ITEMS("[{'role':'user'}]"), "input[0].content",
     "Missing required parameter: 'input[0].content'.", "missing_required_parameter"},
    {ITEMS("[{'role':'user','content':5}]"), "input[0].content",
     "Invalid type for 'input[0].content': expected one of a string or array of objects",
     "invalid_type"},
    {ITEMS("[{'role':'user','content':[]}]"), "input[0].content",
     "Invalid 'input[0].content': empty array.", "empty_array"},
    {ITEMS("[{'role':'user','content':[{'type':'input_text'}]}]"), "input[0].content[0].text",
     "Missing required parameter: 'input[0].content[0].text'.", "missing_required_parameter"},
    {ITEMS("[{'role':'user','content':[{'type':'output_text','text':'x'}]}]"),
     "input[0].content[0].type",
     "Invalid value: 'output_text'. Supported values are: 'input_text' and 'input_image'.",
     "invalid_value"},
    {ITEMS("[{'role':'assistant','content':[{'type':'input_text','text':'x'}]}]"),
     "input[0].content[0].type",
     "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
     "invalid_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_file','file_id':'f'}]}]"),
     "input[0].content[0].type",
     "Content part type 'input_file' in 'input[0].content[0].type' " NOT_SUPPORTED,
     "unsupported_value"},
    {ITEMS("[{'role':'developer','content':[{'type':'input_image','image_url':'https://a.b/c'}]}]"),
     "input[0].content[0].type",
     "Content part type 'input_image' in 'input[0].content[0].type' " NOT_SUPPORTED
     "; supported part types here are 'input_text'.",
     "unsupported_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','file_id':'file_1'}]}]"),
     "input[0].content[0].file_id", "Invalid 'input[0].content[0].file_id': images by file id",
     "unsupported_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image'}]}]"), "input[0].content[0].image_url",
     "Missing required parameter: 'input[0].content[0].image_url'.", "missing_required_parameter"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','image_url':'ftp://x/y.png'}]}]"),
     "input[0].content[0].image_url",
     "Invalid 'input[0].content[0].image_url': expected an "
     "http(s) URL or a base64 data URL",
     "invalid_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','image_url':'data:text/plain;"
           "base64,aGk='}]}]"),
     "input[0].content[0].image_url", "Invalid MIME type 'text/plain'", "invalid_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','image_url':'data:image/png,"
           "abc'}]}]"),
     "input[0].content[0].image_url",
     "Invalid 'input[0].content[0].image_url': only base64 data "
     "URLs",
     "invalid_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','image_url':'data:image/png;"
           "base64,***'}]}]"),
     "input[0].content[0].image_url",
     "Invalid 'input[0].content[0].image_url': the data URL "
     "does not contain valid base64 data.",
     "invalid_value"},
    {ITEMS("[{'role':'user','content':[{'type':'input_image','image_url':'https://a.b/c','detail':"
           "'max'}]}]"),
     "input[0].content[0].detail",
     "Invalid value: 'max'. Supported values are: 'low', 'high', "
     "'auto', and 'original'.",
     "invalid_value"},
    {ITEMS("[{'role':'assistant','content':[{'type':'output_text'}]}]"), "input[0].content[0].text",
     "Missing required parameter: 'input[0].content[0].text'.", "missing_required_parameter"},
    {ITEMS("[{'role':'assistant','content':'x','phase':'final'}]"), "input[0].phase",
     "Invalid value: 'final'. Supported values are: 'commentary' and 'final_answer'.",
     "invalid_value"},
    {ITEMS("[{'type':'function_call','name':'f','arguments':'{}'}]"), "input[0].call_id",
     "Missing required parameter: 'input[0].call_id'.", "missing_required_parameter"},
    {ITEMS("[{'type':'function_call','call_id':'c','name':'f','arguments':{}}]"),
     "input[0].arguments",
     "Invalid type for 'input[0].arguments': expected a string, but got an "
     "object instead.",
     "invalid_type"},
    {ITEMS("[{'type':'function_call_output','call_id':'c'}]"), "input[0].output",
     "Missing required parameter: 'input[0].output'.", "missing_required_parameter"},
    {ITEMS("[{'type':'function_call_output','call_id':'c','output':5}]"), "input[0].output",
     "Invalid type for 'input[0].output'", "invalid_type"},
    {ITEMS("[{'type':'function_call_output','call_id':'c','output':[{'type':'input_file'}]}]"),
     "input[0].output[0].type",
     "Content part type 'input_file' in 'input[0].output[0].type' " NOT_SUPPORTED,
     "unsupported_value"},
    {ITEMS("[{'type':'reasoning'}]"), "input[0].summary",
     "Missing required parameter: 'input[0].summary'.", "missing_required_parameter"},
    {ITEMS("[{'type':'reasoning','summary':[{'type':'text','text':'x'}]}]"),
     "input[0].summary[0].type", "Invalid value: 'text'. Supported values are: 'summary_text'.",
     "invalid_value"},
    {ITEMS("[{'type':'reasoning','summary':[],'content':[{'type':'reasoning_text'}]}]"),
     "input[0].content[0].text", "Missing required parameter: 'input[0].content[0].text'.",
     "missing_required_parameter"},
    {ITEMS("[{'type':'reasoning','summary':[],'encrypted_content':5}]"),
     "input[0].encrypted_content", "Invalid type for 'input[0].encrypted_content'", "invalid_type"},
    {ITEMS("[{'type':'item_reference','id':'msg_1'}]"), "input[0].type",
     "Item type 'item_reference' in 'input[0].type' " NOT_SUPPORTED, "unsupported_value"},
    {ITEMS("[{'id':'msg_1'}]"), "input[0].type",
     "Item type 'item_reference' in 'input[0].type' " NOT_SUPPORTED, "unsupported_value"},
    {ITEMS("[" USER("a") ",{'type':'custom_tool_call','call_id':'c','name':'x','input':''}]"),
     "input[1].type", "Item type 'custom_tool_call' in 'input[1].type' " NOT_SUPPORTED,
     "unsupported_value"},
    {ITEMS("[{'type':'web_search_call','id':'ws_1','status':'completed'}]"), "input[0].type",
     "Item type 'web_search_call' in 'input[0].type' " NOT_SUPPORTED, "unsupported_value"},
    {ITEMS("[{'type':'local_shell_call_output','id':'x','output':''}]"), "input[0].type",
     "Item type 'local_shell_call_output' in 'input[0].type' " NOT_SUPPORTED, "unsupported_value"},
    {ITEMS("[{'type':'bogus'}]"), "input[0].type",
     "Invalid value: 'bogus'. Supported values are: 'message', 'function_call', "
     "'function_call_output', and 'reasoning'.",
     "invalid_value"},
    {ITEMS("[{'type':'message','role':'user','content':'x','id':5}]"), "input[0].id",
     "Invalid type for 'input[0].id': expected a string", "invalid_type"},
    {REQ(",'instructions':5"), "instructions", "Invalid type for 'instructions'", "invalid_type"},
    {REQ(",'tools':{}"), "tools", "Invalid type for 'tools': expected an array", "invalid_type"},
    {REQ(",'tools':[5]"), "tools[0]", "Invalid type for 'tools[0]': expected an object",
     "invalid_type"},
    {REQ(",'tools':[{'name':'f'}]"), "tools[0].type",
     "Missing required parameter: 'tools[0].type'.", "missing_required_parameter"},
    {REQ(",'tools':[{'type':'functions','name':'f'}]"), "tools[0].type",
     "Invalid value: 'functions'. Supported values are: 'function', 'custom'", "invalid_value"},
    {REQ(",'tools':[{'type':'function'}]"), "tools[0].name",
     "Missing required parameter: 'tools[0].name'.", "missing_required_parameter"},
    {REQ(",'tools':[{'type':'function','name':'a b'}]"), "tools[0].name",
     "Invalid 'tools[0].name': string does not match pattern.", "invalid_value"},
    {REQ(",'tools':[{'type':'function','name':'f'},{'type':'function','name':'f'}]"),
     "tools[1].name", "Invalid 'tools[1].name': duplicate tool name 'f'.", "invalid_value"},
    {REQ(",'tools':[{'type':'function','name':'f','parameters':'x'}]"), "tools[0].parameters",
     "Invalid type for 'tools[0].parameters': expected an object", "invalid_type"},
    {REQ(",'tool_choice':'any'"), "tool_choice",
     "Invalid value: 'any'. Supported values are: 'none', 'auto', and 'required'.",
     "invalid_value"},
    {REQ(",'tool_choice':'required'"), "tool_choice", "tool_choice 'required' is not supported",
     "unsupported_value"},
    {REQ(",'tool_choice':{'type':'function','name':'f'}"), "tool_choice",
     "tool_choice naming function 'f' is not supported", "unsupported_value"},
    {REQ(",'tool_choice':{'type':'function'}"), "tool_choice.name",
     "Missing required parameter: 'tool_choice.name'.", "missing_required_parameter"},
    {REQ(",'tool_choice':{'type':'allowed_tools','mode':'auto','tools':[]}"), "tool_choice",
     "tool_choice of type 'allowed_tools' is not supported", "unsupported_value"},
    {REQ(",'tool_choice':{'type':'web_search_preview'}"), "tool_choice",
     "tool_choice of type 'web_search_preview' is not supported", "unsupported_value"},
    {REQ(",'tool_choice':5"), "tool_choice", "Invalid type for 'tool_choice'", "invalid_type"},
    {REQ(",'reasoning':'high'"), "reasoning", "Invalid type for 'reasoning': expected an object",
     "invalid_type"},
    {REQ(",'reasoning':{'effort':'max'}"), "reasoning.effort",
     "Invalid value: 'max'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', "
     "and 'xhigh'.",
     "invalid_value"},
    {REQ(",'reasoning':{'summary':'short'}"), "reasoning.summary",
     "Invalid value: 'short'. Supported values are: 'auto', 'concise', and 'detailed'.",
     "invalid_value"},
    {REQ(",'reasoning':{'generate_summary':1}"), "reasoning.generate_summary",
     "Invalid type for 'reasoning.generate_summary'", "invalid_type"},
    {REQ(",'text':{'format':{'type':'xml'}}"), "text.format.type",
     "Invalid value: 'xml'. Supported values are: 'text', 'json_object', and 'json_schema'.",
     "invalid_value"},
    {REQ(",'text':{'format':{}}"), "text.format.type",
     "Missing required parameter: 'text.format.type'.", "missing_required_parameter"},
    {REQ(",'text':{'format':{'type':'json_schema','schema':{}}}"), "text.format.name",
     "Missing required parameter: 'text.format.name'.", "missing_required_parameter"},
    {REQ(",'text':{'format':{'type':'json_schema','name':'n'}}"), "text.format.schema",
     "Missing required parameter: 'text.format.schema'.", "missing_required_parameter"},
    {REQ(",'text':{'format':{'type':'json_schema','name':'a.b','schema':{}}}"), "text.format.name",
     "Invalid 'text.format.name': string does not match pattern.", "invalid_value"},
    {REQ(",'text':{'verbosity':'loud'}"), "text.verbosity",
     "Invalid value: 'loud'. Supported values are: 'low', 'medium', and 'high'.", "invalid_value"},
    {REQ(",'stream':'yes'"), "stream", "Invalid type for 'stream': expected a boolean",
     "invalid_type"},
    {REQ(",'store':1"), "store", "Invalid type for 'store': expected a boolean", "invalid_type"},
    {REQ(",'stream_options':{}"), "stream_options",
     "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "invalid_value"},
    {REQ(",'background':true,'stream':true"), "background", "Unsupported value: 'background'",
     "unsupported_value"},
    {REQ(",'background':true,'store':false"), "background",
     "Invalid value for 'background': background responses must be stored", "invalid_value"},
    {REQ(",'metadata':[]"), "metadata", "Invalid type for 'metadata': expected an object",
     "invalid_type"},
    {REQ(",'metadata':{'k':1}"), "metadata.k",
     "Invalid type for 'metadata.k': expected a string, but got an integer instead.",
     "invalid_type"},
    {REQ(",'previous_response_id':'msg_1'"), "previous_response_id",
     "Invalid 'previous_response_id': 'msg_1'. Expected an ID that begins with 'resp'.",
     "invalid_value"},
    {REQ(",'previous_response_id':7"), "previous_response_id",
     "Invalid type for 'previous_response_id'", "invalid_type"},
    {REQ(",'prompt':{'id':'pmpt_1'}"), "prompt", "Unsupported parameter: 'prompt'",
     "unsupported_parameter"},
    {REQ(",'conversation':'conv_1'"), "conversation", "Unsupported parameter: 'conversation'",
     "unsupported_parameter"},
    {REQ(",'temperature':2.5"), "temperature",
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 "
     "instead.",
     "decimal_above_max_value"},
    {REQ(",'top_p':-1"), "top_p",
     "Invalid 'top_p': decimal below minimum value. Expected a value >= 0, but got -1 instead.",
     "decimal_below_min_value"},
    {REQ(",'max_output_tokens':15"), "max_output_tokens",
     "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got "
     "15 instead.",
     "integer_below_min_value"},
    {REQ(",'max_output_tokens':1.5"), "max_output_tokens",
     "Invalid type for 'max_output_tokens': expected an integer, but got a decimal instead.",
     "invalid_type"},
    {REQ(",'top_logprobs':21"), "top_logprobs", "Invalid 'top_logprobs': integer above maximum",
     "integer_above_max_value"},
    {REQ(",'truncation':'middle'"), "truncation",
     "Invalid value: 'middle'. Supported values are: 'auto' and 'disabled'.", "invalid_value"},
    {REQ(",'include':[1]"), "include[0]", "Invalid type for 'include[0]': expected a string",
     "invalid_type"},
    {REQ(",'user':5"), "user", "Invalid type for 'user'", "invalid_type"},
    {REQ(",'service_tier':5"), "service_tier", "Invalid type for 'service_tier'", "invalid_type"},
    {"[1]", "", "We could not parse the JSON body of your request.", NULL},
    {"{'model':'m','model':'n','input':'x'}", "", "We could not parse the JSON body", NULL},
    {"", "", "We could not parse the JSON body", NULL},
};

static void check_bad(const char *body, const char *param, const char *needle, const char *code)
{
    struct resp_req r;
    struct gw_err e;
    int rc;

    print_message("invalid: %s\n", param);
    memset(&r, 0xff, sizeof(r)); /* resp_parse must clear it */
    rc = parse(body, &r, &e);
    if (rc != GW_EINVAL)
        print_error("expected an error for %s\n", body);
    assert_int_equal(rc, GW_EINVAL);
    assert_int_equal(e.code, GW_EINVAL);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.param, param);
    if (!strstr(e.msg, needle))
        print_error("got:  %s\nwant: ...%s...\n", e.msg, needle);
    assert_non_null(strstr(e.msg, needle));
    assert_string_equal(e.api_code, code ? code : "");
    assert_null(r.model);
    assert_null(r.input);
    assert_null(r.echo);
    assert_null(r.tools);
    resp_req_release(&r);
}

static void test_invalid_requests(void **state)
{
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        check_bad(bad_cases[i].body, bad_cases[i].param, bad_cases[i].needle, bad_cases[i].code);
}

/* metadata limits: 16 keys, keys up to 64, values up to 512. */
static void test_metadata_limits(void **state)
{
    char body[2048], val[600], key[80];
    size_t off;
    struct resp_req r;

    off = (size_t)snprintf(body, sizeof(body), "{'model':'m','input':'x','metadata':{");
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off, "%s'k%d':'v'", i ? "," : "", i);
    snprintf(body + off, sizeof(body) - off, "}}");
    check_bad(body, "metadata",
              "Invalid 'metadata': too many properties. Expected an object "
              "with at most 16 properties, but got an object with 17",
              "object_above_max_properties");
    body[strlen(body) - 2] = '\0';
    *strrchr(body, ',') = '\0';
    strcat(body, "}}");
    parse_ok(body, &r); /* 16 is fine */
    resp_req_release(&r);

    memset(val, 'v', 513);
    val[513] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'k':'%s'}"), val);
    check_bad(body, "metadata.k",
              "Invalid 'metadata.k': string too long. Expected a string with "
              "maximum length 512, but got a string with length 513 instead.",
              "string_above_max_length");
    val[512] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'k':'%s'}"), val);
    parse_ok(body, &r);
    resp_req_release(&r);

    memset(key, 'k', 65);
    key[65] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'%s':'v'}"), key);
    check_bad(body, "metadata", "Invalid 'metadata': key 'kkkk", "invalid_value");
    key[64] = '\0';
    snprintf(body, sizeof(body), REQ(",'metadata':{'%s':'v'}"), key);
    parse_ok(body, &r);
    resp_req_release(&r);
}

/* ---- conversations: pairing and prior items -------------------------------- */

static void check_conv_bad(const char *body, const char *prior, const char *param,
                           const char *needle)
{
    struct resp_req r;
    struct conv *c = (struct conv *)&r;
    struct gw_err e;
    json_t *p = prior ? jsq(prior) : NULL;
    int rc;

    print_message("conv error: %s\n", needle);
    parse_ok(body, &r);
    memset(&e, 0, sizeof(e));
    rc = resp_conv(&r, p, &c, &e);
    if (rc != GW_EINVAL)
        print_error("expected a conv error for %s\n", body);
    assert_int_equal(rc, GW_EINVAL);
    assert_null(c);
    assert_int_equal(e.http_status, 400);
    assert_string_equal(e.param, param);
    if (!strstr(e.msg, needle))
        print_error("got:  %s\nwant: ...%s...\n", e.msg, needle);
    assert_non_null(strstr(e.msg, needle));
    json_decref(p);
    resp_req_release(&r);
}

static void test_pairing_errors(void **state)
{
    check_conv_bad(ITEMS("[" OUT("call_9") "]"), NULL, "input",
                   "No tool call found for function call output with call_id call_9.");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," OUT("c2") "]"), NULL, "input",
                   "No tool call found for function call output with call_id c2.");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," USER("b") "]"), NULL, "input",
                   "No tool output found for function call c1.");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," CALL("c2") "]"), NULL, "input",
                   "No tool output found for function call c1, c2.");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," CALL("c2") "," OUT("c2") "]"), NULL,
                   "input", "No tool output found for function call c1.");
    /* A new run before the outputs. */
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," CALL("c2") "," OUT(
                       "c1") ","
                             "{'role':'assistant','content':'x'}," OUT("c2") "]"),
                   NULL, "input", "No tool output found for function call c2.");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") ",{'type':'function_call_output','call_"
                                                      "id':'c1','output':'x'}," OUT("c1") "]"),
                   NULL, "input[3].call_id", "was already answered by an earlier");
    check_conv_bad(ITEMS("[" USER("a") "," CALL("c1") "," CALL("c1") "]"), NULL, "input[2].call_id",
                   "Invalid 'input[2].call_id': duplicate function call id 'c1'.");
    /* An output answers only the run right before it. */
    check_conv_bad(
        ITEMS("[" USER("a") "," CALL("c1") "," OUT("c1") "," USER("b") "," OUT("c1") "]"), NULL,
        "input", "No tool call found for function call output with call_id c1.");
    /* Only system messages. */
    check_conv_bad(ITEMS("[{'role':'developer','content':'x'}]"), NULL, "input",
                   "holds only system and developer messages");
    /* The previous response ended with calls: the new input must answer them. */
    check_conv_bad(REQ(",'previous_response_id':'resp_1'"), "[" USER("a") "," CALL("c1") "]",
                   "input", "No tool output found for function call c1.");
    /* A broken store names previous_response_id. */
    check_conv_bad(REQ(",'previous_response_id':'resp_1'"), "[{'type':'bogus'}]",
                   "previous_response_id",
                   "The stored conversation of 'previous_response_id' cannot be continued: "
                   "Invalid value: 'bogus'.");
}

/* Developer messages carry over in the stored items; instructions do not. */
static void test_prior_items(void **state)
{
    struct resp_req r;
    struct conv *c;

    c = conv_ok(
        "{'model':'m','instructions':'new','previous_response_id':'resp_1','input':["
        "{'type':'function_call_output','call_id':'c1','output':'42'}]}",
        "[{'type':'message','role':'developer','content':[{'type':'input_text','text':"
        "'old dev'}]}," USER(
            "q") ",{'type':'reasoning','id':'rs_1','summary':[]},{'id':"
                 "'fc_1','type':'function_call','status':'completed','call_id':'c1','name':'f',"
                 "'arguments':'{}'}]",
        &r);
    assert_string_equal(c->system, "new\n\nold dev");
    assert_int_equal(c->nmsgs, 3);
    assert_int_equal(c->msgs[1].role, CONV_ASSISTANT);
    assert_int_equal(c->msgs[1].ncalls, 1);
    assert_int_equal(c->msgs[2].role, CONV_TOOL);
    assert_text(&c->msgs[2], "42");
    conv_free(c);
    resp_req_release(&r);

    /* An empty prior array is no history. */
    c = conv_ok(REQ(",'previous_response_id':'resp_2'"), "[]", &r);
    assert_int_equal(c->nmsgs, 1);
    conv_free(c);
    resp_req_release(&r);
}

/* ---- streams -------------------------------------------------------------- */

/*
 * Parses SSE text back into an array of the events' data objects, checking
 * the framing ("event: <type>\ndata: <json>\n\n", the JSON's type is <type>)
 * and that sequence numbers count up from first.
 */
static json_t *sse_parse(const struct buf *b, json_int_t first)
{
    json_t *events = json_array();
    const char *p = buf_str(b), *end = p + b->len;
    json_int_t seq = first;

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
        assert_true(memchr(p, '\n', (size_t)(stop - p)) == NULL); /* one data line */
        data = json_loadb(p + 6, (size_t)(stop - p) - 6, JSON_ALLOW_NUL, NULL);
        assert_non_null(data);
        assert_string_equal(str_at(data, "type"), type);
        assert_int_equal(int_at(data, "sequence_number"), seq++);
        json_array_append_new(events, data);
        p = stop + 2;
    }
    return events;
}

/*
 * Checks that the events describe the items consistently: each item is
 * added, gets its deltas and done events with its own id and output_index,
 * and is done before the next is added; deltas add up to the done texts; the
 * final response object holds the same items.  Returns that object
 * (borrowed from ev).
 */
static json_t *check_items(json_t *ev)
{
    json_t *e, *final = NULL, *items = json_array();
    const char *open_id = NULL;
    json_int_t open_idx = -1;
    char acc[4096];
    size_t i;

    acc[0] = '\0';
    json_array_foreach(ev, i, e)
    {
        const char *t = str_at(e, "type");

        if (!strcmp(t, "response.created") || !strcmp(t, "response.in_progress")) {
            assert_int_equal(i < 2, 1);
            assert_string_equal(str_at(e, "response.status"), "in_progress");
            assert_int_equal(json_array_size(at(e, "response.output")), 0);
            assert_true(json_is_null(at(e, "response.usage")));
        } else if (!strcmp(t, "response.output_item.added")) {
            assert_null(open_id);
            open_id = str_at(e, "item.id");
            open_idx = int_at(e, "output_index");
            assert_int_equal(open_idx, json_array_size(items));
            acc[0] = '\0';
        } else if (!strcmp(t, "response.output_item.done")) {
            assert_non_null(open_id);
            assert_string_equal(str_at(e, "item.id"), open_id);
            assert_int_equal(int_at(e, "output_index"), open_idx);
            json_array_append(items, at(e, "item"));
            open_id = NULL;
        } else if (!strncmp(t, "response.output_item", 20) || !strcmp(t, "response.completed") ||
                   !strcmp(t, "response.incomplete") || !strcmp(t, "response.failed")) {
            assert_null(open_id);
            assert_null(final);
            final = at(e, "response");
            assert_int_equal(i, json_array_size(ev) - 1);
        } else {
            /* Events of the open item. */
            assert_non_null(open_id);
            assert_string_equal(str_at(e, "item_id"), open_id);
            assert_int_equal(int_at(e, "output_index"), open_idx);
            if (strstr(t, ".delta")) {
                assert_true(strlen(acc) + strlen(str_at(e, "delta")) < sizeof(acc));
                strcat(acc, str_at(e, "delta"));
            } else if (!strcmp(t, "response.output_text.done") ||
                       !strcmp(t, "response.reasoning_summary_text.done")) {
                assert_string_equal(str_at(e, "text"), acc);
            } else if (!strcmp(t, "response.function_call_arguments.done")) {
                assert_string_equal(str_at(e, "arguments"), acc);
            }
        }
    }
    assert_non_null(final);
    assert_true(json_equal(at(final, "output"), items));
    json_decref(items);
    return final;
}

/* The event types in order, each given by a short name. */
static void expect_types(json_t *ev, const char *const *script)
{
    static const struct {
        const char *s, *type;
    } names[] = {
        {"created", "response.created"},
        {"progress", "response.in_progress"},
        {"added", "response.output_item.added"},
        {"done", "response.output_item.done"},
        {"part+", "response.content_part.added"},
        {"part-", "response.content_part.done"},
        {"text", "response.output_text.delta"},
        {"text-", "response.output_text.done"},
        {"sum+", "response.reasoning_summary_part.added"},
        {"sum-", "response.reasoning_summary_part.done"},
        {"sum", "response.reasoning_summary_text.delta"},
        {"sumtext-", "response.reasoning_summary_text.done"},
        {"args", "response.function_call_arguments.delta"},
        {"args-", "response.function_call_arguments.done"},
        {"completed", "response.completed"},
        {"incomplete", "response.incomplete"},
        {"failed", "response.failed"},
    };
    size_t n = 0;

    for (; script[n]; n++) {
        const char *want = NULL;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
            if (!strcmp(names[k].s, script[n]))
                want = names[k].type;
        assert_non_null(want);
        if (!json_array_get(ev, n) || strcmp(str_at(json_array_get(ev, n), "type"), want))
            print_error("event %zu: want %s\n", n, want);
        assert_string_equal(str_at(json_array_get(ev, n), "type"), want);
    }
    assert_int_equal(json_array_size(ev), n);
}

static struct resp_req *stream_req(const char *body)
{
    static struct resp_req r;

    parse_ok(body, &r);
    return &r;
}

static void test_stream_text(void **state)
{
    static const char *const script[] = {"created", "progress",  "added", "part+",
                                         "text",    "text",      "text-", "part-",
                                         "done",    "completed", NULL};
    struct resp_req *req = stream_req(REQ(",'stream':true,'metadata':{'a':'b'}"));
    struct turn_result r = {.ok = 1, .text = "Hi there", .finish = TURN_STOP};
    struct resp_stream s;
    struct buf b;
    json_t *ev, *fin;

    r.usage = (struct turn_usage){.input_tokens = 12,
                                  .output_tokens = 5,
                                  .reasoning_tokens = 2,
                                  .cache_read_tokens = 7,
                                  .cache_write_tokens = 1};
    resp_stream_init(&s, req, "resp_t1", 1700000000);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_start(&s, &b), GW_OK);
    assert_int_equal(resp_stream_start(&s, &b), GW_OK);       /* once only */
    assert_int_equal(resp_stream_text(&s, &b, "", 0), GW_OK); /* nothing */
    assert_int_equal(resp_stream_text(&s, &b, "Hi", 2), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, " there", 6), GW_OK);
    assert_int_equal(resp_stream_finish(&s, &b, &r, 0), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);
    fin = check_items(ev);

    assert_string_equal(str_at(ev, "0.response.id"), "resp_t1");
    assert_string_equal(str_at(ev, "0.response.object"), "response");
    assert_int_equal(int_at(ev, "0.response.created_at"), 1700000000);
    assert_string_equal(str_at(ev, "0.response.model"), "gpt-5");
    assert_string_equal(str_at(ev, "0.response.metadata.a"), "b");
    assert_string_equal(str_at(ev, "2.item.type"), "message");
    assert_string_equal(str_at(ev, "2.item.status"), "in_progress");
    assert_string_equal(str_at(ev, "2.item.role"), "assistant");
    assert_int_equal(json_array_size(at(ev, "2.item.content")), 0);
    assert_true(strncmp(str_at(ev, "2.item.id"), "msg_", 4) == 0);
    assert_int_equal(int_at(ev, "3.content_index"), 0);
    assert_string_equal(str_at(ev, "3.part.type"), "output_text");
    assert_string_equal(str_at(ev, "3.part.text"), "");
    assert_int_equal(json_array_size(at(ev, "3.part.annotations")), 0);
    assert_string_equal(str_at(ev, "4.delta"), "Hi");
    assert_int_equal(int_at(ev, "4.content_index"), 0);
    assert_int_equal(json_array_size(at(ev, "4.logprobs")), 0);
    assert_string_equal(str_at(ev, "6.text"), "Hi there");
    assert_string_equal(str_at(ev, "7.part.text"), "Hi there");
    assert_string_equal(str_at(ev, "8.item.status"), "completed");
    assert_string_equal(str_at(ev, "8.item.content.0.text"), "Hi there");

    assert_string_equal(str_at(fin, "status"), "completed");
    assert_true(json_is_null(at(fin, "error")));
    assert_true(json_is_null(at(fin, "incomplete_details")));
    assert_int_equal(json_array_size(at(fin, "output")), 1);
    assert_int_equal(int_at(fin, "usage.input_tokens"), 12);
    assert_int_equal(int_at(fin, "usage.input_tokens_details.cached_tokens"), 7);
    assert_int_equal(int_at(fin, "usage.output_tokens"), 5);
    assert_int_equal(int_at(fin, "usage.output_tokens_details.reasoning_tokens"), 2);
    assert_int_equal(int_at(fin, "usage.total_tokens"), 17);
    assert_true(json_is_true(at(fin, "store")));
    assert_string_equal(str_at(fin, "tool_choice"), "auto");
    assert_int_equal(s.seq, json_array_size(ev));
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* Reasoning (with summaries), text, two calls; a late piece of a closed call. */
static void test_stream_items(void **state)
{
    static const char *const script[] = {
        "created", "progress", "added", "sum+",  "sum",   "sum",       "sumtext-", "sum-", "done",
        "added",   "part+",    "text",  "text-", "part-", "done",      "added",    "args", "args",
        "args-",   "done",     "added", "args-", "done",  "completed", NULL};
    const struct turn_tool_call calls[] = {{"call_1", "f", "{\"a\":1}"}, {"call_2", "g", "{}"}};
    struct resp_req *req = stream_req(REQ(",'stream':true,'reasoning':{'summary':'auto'}"));
    struct turn_result r = {.ok = 1,
                            .text = "ok",
                            .reasoning = "Let me",
                            .finish = TURN_TOOL_CALLS,
                            .calls = calls,
                            .ncalls = 2};
    struct resp_stream s;
    struct buf b;
    json_t *ev, *fin;

    resp_stream_init(&s, req, "resp_t2", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_reasoning(&s, &b, "Let", 3), GW_OK);
    assert_int_equal(resp_stream_reasoning(&s, &b, " me", 3), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, "ok", 2), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 0, "call_1", "f", "{\"a\":", 5), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 0, NULL, NULL, "1}", 2), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 1, "call_2", "g", "", 0), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 1, NULL, NULL, "", 0), GW_OK); /* nothing */
    /* A late piece of call 0: no event, but the stored item gets it. */
    assert_int_equal(resp_stream_tool(&s, &b, 0, NULL, NULL, " ", 1), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 7, NULL, NULL, "x", 1), GW_OK); /* unknown: dropped */
    assert_int_equal(resp_stream_finish(&s, &b, &r, 0), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);

    assert_true(strncmp(str_at(ev, "2.item.id"), "rs_", 3) == 0);
    assert_string_equal(str_at(ev, "2.item.type"), "reasoning");
    assert_int_equal(json_array_size(at(ev, "2.item.summary")), 0);
    assert_int_equal(int_at(ev, "3.summary_index"), 0);
    assert_string_equal(str_at(ev, "3.part.type"), "summary_text");
    assert_string_equal(str_at(ev, "3.part.text"), "");
    assert_string_equal(str_at(ev, "6.text"), "Let me");
    assert_string_equal(str_at(ev, "7.part.text"), "Let me");
    assert_string_equal(str_at(ev, "8.item.summary.0.type"), "summary_text");
    assert_string_equal(str_at(ev, "8.item.summary.0.text"), "Let me");
    assert_null(at(ev, "8.item.encrypted_content"));
    assert_int_equal(int_at(ev, "9.output_index"), 1);
    assert_int_equal(int_at(ev, "15.output_index"), 2);
    assert_true(strncmp(str_at(ev, "15.item.id"), "fc_", 3) == 0);
    assert_string_equal(str_at(ev, "15.item.type"), "function_call");
    assert_string_equal(str_at(ev, "15.item.status"), "in_progress");
    assert_string_equal(str_at(ev, "15.item.call_id"), "call_1");
    assert_string_equal(str_at(ev, "15.item.name"), "f");
    assert_string_equal(str_at(ev, "15.item.arguments"), "");
    assert_string_equal(str_at(ev, "18.name"), "f");
    assert_string_equal(str_at(ev, "18.arguments"), "{\"a\":1}");
    assert_string_equal(str_at(ev, "19.item.status"), "completed");
    assert_string_equal(str_at(ev, "20.item.call_id"), "call_2");
    assert_string_equal(str_at(ev, "21.arguments"), "");

    /* The final object's call 0 has the late piece the events could not carry. */
    fin = at(ev, "23.response");
    assert_string_equal(str_at(fin, "status"), "completed");
    assert_int_equal(json_array_size(at(fin, "output")), 4);
    assert_string_equal(str_at(fin, "output.2.arguments"), "{\"a\":1} ");
    json_object_set_new(at(fin, "output.2"), "arguments", json_string("{\"a\":1}"));
    check_items(ev);
    assert_string_equal(str_at(fin, "output.1.content.0.text"), "ok");
    assert_string_equal(str_at(fin, "output.3.name"), "g");
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* Without summaries a reasoning item is only added and done; text after a call opens a message. */
static void test_stream_no_summary(void **state)
{
    static const char *const script[] = {
        "created", "progress", "added", "done", "added", "args-", "done",      "added", "part+",
        "text",    "text-",    "part-", "done", "added", "done",  "completed", NULL};
    struct resp_req *req = stream_req(REQ(",'stream':true,'reasoning':{'effort':'low'}"));
    struct turn_result r = {.ok = 1, .finish = TURN_STOP};
    struct resp_stream s;
    struct buf b;
    json_t *ev, *fin;

    resp_stream_init(&s, req, "resp_t3", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_reasoning(&s, &b, "hidden", 6), GW_OK);
    assert_int_equal(resp_stream_tool(&s, &b, 0, "call_1", "f", NULL, 0), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, "x", 1), GW_OK);
    assert_int_equal(resp_stream_reasoning(&s, &b, "more", 4), GW_OK);
    assert_int_equal(resp_stream_finish(&s, &b, &r, 0), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);
    fin = check_items(ev);
    assert_int_equal(json_array_size(at(fin, "output")), 4);
    assert_int_equal(json_array_size(at(fin, "output.0.summary")), 0);
    assert_string_equal(str_at(fin, "output.3.type"), "reasoning");
    assert_int_equal(json_array_size(at(fin, "output.3.summary")), 0);
    assert_true(json_is_null(at(fin, "reasoning.summary")));
    assert_string_equal(str_at(fin, "reasoning.effort"), "low");
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* TURN_LENGTH: the open item is incomplete, and so is the response. */
static void test_stream_incomplete(void **state)
{
    static const char *const script[] = {"created", "progress", "added", "part+",      "text",
                                         "text-",   "part-",    "done",  "incomplete", NULL};
    struct resp_req *req = stream_req(REQ(",'stream':true,'max_output_tokens':100"));
    struct turn_result r = {.ok = 1, .text = "cut", .finish = TURN_LENGTH};
    struct resp_stream s;
    struct buf b;
    json_t *ev, *fin;

    resp_stream_init(&s, req, "resp_t4", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_start(&s, &b), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, "cut", 3), GW_OK);
    assert_int_equal(resp_stream_finish(&s, &b, &r, 0), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);
    fin = check_items(ev);
    assert_string_equal(str_at(ev, "7.item.status"), "incomplete");
    assert_string_equal(str_at(fin, "status"), "incomplete");
    assert_string_equal(str_at(fin, "incomplete_details.reason"), "max_output_tokens");
    assert_true(json_is_null(at(fin, "error")));
    assert_int_equal(int_at(fin, "max_output_tokens"), 100);
    assert_string_equal(resp_status(&r), "incomplete");
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* A failed turn mid-stream: the open item is incomplete, response.failed carries the error. */
static void test_stream_failed(void **state)
{
    static const char *const script[] = {"created", "progress", "added", "part+",  "text",
                                         "text-",   "part-",    "done",  "failed", NULL};
    struct resp_req *req = stream_req(REQ(",'stream':true"));
    struct turn_result r = {.ok = 0};
    struct resp_stream s;
    struct buf b;
    json_t *ev, *fin;

    gw_err_set(&r.err, GW_ERATELIMIT, "the model provider is rate limiting requests");
    resp_stream_init(&s, req, "resp_t5", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_text(&s, &b, "par", 3), GW_OK); /* starts by itself */
    assert_int_equal(resp_stream_finish(&s, &b, &r, 0), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);
    fin = check_items(ev);
    assert_string_equal(str_at(ev, "7.item.status"), "incomplete");
    assert_string_equal(str_at(fin, "status"), "failed");
    assert_string_equal(str_at(fin, "error.code"), "rate_limit_exceeded");
    assert_string_equal(str_at(fin, "error.message"),
                        "the model provider is rate limiting requests");
    assert_true(json_is_null(at(fin, "incomplete_details")));
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* The failure codes, and a failed object without a turn result. */
static void test_failed_codes(void **state)
{
    static const struct {
        enum gw_status code;
        const char *want;
    } map[] = {{GW_ERATELIMIT, "rate_limit_exceeded"},
               {GW_EINVAL, "invalid_prompt"},
               {GW_ERUNTIME, "server_error"},
               {GW_ETIMEDOUT, "server_error"},
               {GW_EUPSTREAM, "server_error"}};
    struct resp_req *req = stream_req(REQ(""));
    struct resp_stream s;
    json_t *o;

    resp_stream_init(&s, req, "resp_t6", 1);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        struct turn_result r = {.ok = 0};
        gw_err_set(&r.err, map[i].code, "boom %zu", i);
        assert_string_equal(resp_status(&r), "failed");
        o = resp_object(&s, resp_status(&r), &r);
        assert_string_equal(str_at(o, "error.code"), map[i].want);
        assert_non_null(strstr(str_at(o, "error.message"), "boom"));
        json_decref(o);
    }
    {
        struct turn_result r = {.ok = 0};
        o = resp_object(&s, "failed", &r); /* no message: the generic one */
        assert_string_equal(str_at(o, "error.code"), "server_error");
        assert_string_equal(str_at(o, "error.message"),
                            "The server had an error while processing your request.");
        json_decref(o);
    }
    o = resp_object(&s, "failed", NULL);
    assert_string_equal(str_at(o, "error.code"), "server_error");
    assert_true(json_is_null(at(o, "usage")));
    json_decref(o);
    o = resp_object(&s, "cancelled", NULL);
    assert_string_equal(str_at(o, "status"), "cancelled");
    assert_true(json_is_null(at(o, "error")));
    json_decref(o);
    assert_string_equal(resp_status(NULL), "failed");
    resp_stream_release(&s);
    resp_req_release(req);
}

/* Non-streamed: the items come from the turn result, no events are written. */
static void test_from_result(void **state)
{
    const struct turn_tool_call calls[] = {{"call_1", "get_weather", "{\"city\":\"Paris\"}"},
                                           {"call_2", "none", NULL}};
    struct resp_req *req = stream_req(REQ(",'reasoning':{'summary':'concise'}"));
    struct turn_result r = {.ok = 1,
                            .text = "Checking.",
                            .reasoning = "need weather",
                            .finish = TURN_TOOL_CALLS,
                            .calls = calls,
                            .ncalls = 2};
    struct resp_stream s;
    json_t *o;

    r.usage.input_tokens = 3;
    r.usage.output_tokens = 4;
    resp_stream_init(&s, req, "resp_t7", 99);
    /* Stray deltas are replaced by the result. */
    assert_int_equal(resp_stream_text(&s, NULL, "junk", 4), GW_OK);
    assert_int_equal(resp_stream_finish(&s, NULL, &r, 1), GW_OK);
    assert_int_equal(s.seq, 0);
    o = resp_object(&s, resp_status(&r), &r);
    assert_string_equal(str_at(o, "id"), "resp_t7");
    assert_string_equal(str_at(o, "object"), "response");
    assert_string_equal(str_at(o, "status"), "completed");
    assert_int_equal(int_at(o, "created_at"), 99);
    assert_int_equal(json_array_size(at(o, "output")), 4);
    assert_string_equal(str_at(o, "output.0.type"), "reasoning");
    assert_string_equal(str_at(o, "output.0.summary.0.text"), "need weather");
    assert_string_equal(str_at(o, "output.1.type"), "message");
    assert_string_equal(str_at(o, "output.1.status"), "completed");
    assert_string_equal(str_at(o, "output.1.role"), "assistant");
    assert_string_equal(str_at(o, "output.1.content.0.type"), "output_text");
    assert_string_equal(str_at(o, "output.1.content.0.text"), "Checking.");
    assert_int_equal(json_array_size(at(o, "output.1.content.0.annotations")), 0);
    assert_int_equal(json_array_size(at(o, "output.1.content.0.logprobs")), 0);
    assert_string_equal(str_at(o, "output.2.type"), "function_call");
    assert_string_equal(str_at(o, "output.2.status"), "completed");
    assert_string_equal(str_at(o, "output.2.call_id"), "call_1");
    assert_string_equal(str_at(o, "output.2.name"), "get_weather");
    assert_string_equal(str_at(o, "output.2.arguments"), "{\"city\":\"Paris\"}");
    assert_string_equal(str_at(o, "output.3.arguments"), "");
    assert_true(strncmp(str_at(o, "output.3.id"), "fc_", 3) == 0);
    assert_string_not_equal(str_at(o, "output.2.id"), str_at(o, "output.3.id"));
    assert_int_equal(int_at(o, "usage.total_tokens"), 7);
    assert_string_equal(str_at(o, "reasoning.summary"), "concise");
    json_decref(o);
    resp_stream_release(&s);

    /* Nothing at all: one empty message, so the output still answers. */
    {
        struct turn_result empty = {.ok = 1, .finish = TURN_STOP};
        resp_stream_init(&s, req, "resp_t8", 1);
        assert_int_equal(resp_stream_finish(&s, NULL, &empty, 1), GW_OK);
        o = resp_object(&s, "completed", &empty);
        assert_int_equal(json_array_size(at(o, "output")), 1);
        assert_string_equal(str_at(o, "output.0.content.0.text"), "");
        json_decref(o);
        resp_stream_release(&s);
    }
    /* A failed turn has no items. */
    {
        struct turn_result bad = {.ok = 0, .text = "partial"};
        gw_err_set(&bad.err, GW_ETIMEDOUT, "too slow");
        resp_stream_init(&s, req, "resp_t9", 1);
        assert_int_equal(resp_stream_finish(&s, NULL, &bad, 1), GW_OK);
        o = resp_object(&s, resp_status(&bad), &bad);
        assert_int_equal(json_array_size(at(o, "output")), 0);
        assert_string_equal(str_at(o, "error.code"), "server_error");
        json_decref(o);
        resp_stream_release(&s);
    }
    resp_req_release(req);
}

/* A stream whose deltas were not fed gets the result's items as events. */
static void test_stream_from_result(void **state)
{
    static const char *const script[] = {"created", "progress", "added", "part+",     "text",
                                         "text-",   "part-",    "done",  "completed", NULL};
    struct resp_req *req = stream_req(REQ(",'stream':true"));
    struct turn_result r = {.ok = 1, .text = "whole", .finish = TURN_STOP};
    struct resp_stream s;
    struct buf b;
    json_t *ev;

    resp_stream_init(&s, req, "resp_t10", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_finish(&s, &b, &r, 1), GW_OK);
    ev = sse_parse(&b, 0);
    expect_types(ev, script);
    check_items(ev);
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* The object in progress shows the open item with what it holds so far. */
static void test_object_in_progress(void **state)
{
    struct resp_req *req = stream_req(REQ(",'background':true,'instructions':'I'"));
    struct resp_stream s;
    json_t *o;

    resp_stream_init(&s, req, "resp_t11", 5);
    o = resp_object(&s, "queued", NULL);
    assert_string_equal(str_at(o, "status"), "queued");
    assert_int_equal(json_array_size(at(o, "output")), 0);
    assert_true(json_is_true(at(o, "background")));
    assert_string_equal(str_at(o, "instructions"), "I");
    assert_true(json_is_null(at(o, "usage")));
    json_decref(o);
    assert_int_equal(resp_stream_text(&s, NULL, "so far", 6), GW_OK);
    o = resp_object(&s, "in_progress", NULL);
    assert_int_equal(json_array_size(at(o, "output")), 1);
    assert_string_equal(str_at(o, "output.0.status"), "in_progress");
    assert_string_equal(str_at(o, "output.0.content.0.text"), "so far");
    json_decref(o);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* Bytes that are not UTF-8 are replaced; NULs survive. */
static void test_stream_bad_bytes(void **state)
{
    struct resp_req *req = stream_req(REQ(",'stream':true"));
    struct resp_stream s;
    struct buf b;
    json_t *ev;

    resp_stream_init(&s, req, "resp_t12", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_text(&s, &b, "a\xff\0b", 4), GW_OK);
    ev = sse_parse(&b, 0);
    assert_int_equal(memcmp(str_at(ev, "4.delta"), "a\xef\xbf\xbd", 4), 0);
    assert_int_equal(json_string_length(at(ev, "4.delta")), 6);
    json_decref(ev);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* An event that does not fit the buffer's cap fails and releases it. */
static void test_stream_cap(void **state)
{
    struct resp_req *req = stream_req(REQ(",'stream':true"));
    struct resp_stream s;
    struct buf b;

    resp_stream_init(&s, req, "resp_t13", 1);
    buf_init(&b, 128);
    assert_int_not_equal(resp_stream_start(&s, &b), GW_OK);
    assert_int_equal(b.len, 0);
    assert_null(b.ptr);
    assert_int_equal(s.started, 0);
    buf_release(&b);
    resp_stream_release(&s);
    resp_req_release(req);
}

/* ---- hash identity: a response's output replayed as input ------------------ */

/* The conversation a turn leaves in its session: the request's, then its answer (broker.c). */
static struct conv *produced(const char *body, const struct turn_result *r)
{
    struct resp_req req;
    struct conv *c = conv_ok(body, NULL, &req);
    struct conv_msg *m = conv_add_msg(c, CONV_ASSISTANT);

    if (r->text && *r->text)
        conv_msg_add_text(m, r->text, strlen(r->text));
    for (size_t i = 0; i < r->ncalls; i++)
        conv_msg_add_call(m, r->calls[i].id, r->calls[i].name, r->calls[i].arguments);
    resp_req_release(&req);
    return c;
}

static void assert_prefix(const struct conv *a, const struct conv *b, size_t n)
{
    struct hash *ha = hash_chain(a, "anon", "model"), *hb = hash_chain(b, "anon", "model");

    assert_true(a->nmsgs >= n && b->nmsgs >= n);
    for (size_t i = 0; i <= n; i++) {
        if (!hash_eq(&ha[i], &hb[i]))
            print_error("hash %zu differs\n", i);
        assert_true(hash_eq(&ha[i], &hb[i]));
    }
    free(ha);
    free(hb);
}

/* Streams the turn in pieces (as the broker would) and returns the output items. */
static json_t *stream_turn(struct resp_req *req, const struct turn_result *r, int split_text)
{
    struct resp_stream s;
    struct buf b;
    json_t *out;
    size_t half = r->text ? strlen(r->text) / 2 : 0;

    resp_stream_init(&s, req, "resp_h", 1);
    buf_init(&b, 1 << 20);
    assert_int_equal(resp_stream_reasoning(&s, &b, "thinking", 8), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, r->text, half), GW_OK);
    if (split_text) /* reasoning between two halves: two message items */
        assert_int_equal(resp_stream_reasoning(&s, &b, "more", 4), GW_OK);
    assert_int_equal(resp_stream_text(&s, &b, r->text + half, strlen(r->text) - half), GW_OK);
    for (size_t i = 0; i < r->ncalls; i++) {
        const char *a = r->calls[i].arguments;
        assert_int_equal(resp_stream_tool(&s, &b, i, r->calls[i].id, r->calls[i].name, a, 3),
                         GW_OK);
        assert_int_equal(resp_stream_tool(&s, &b, i, NULL, NULL, a + 3, strlen(a) - 3), GW_OK);
    }
    assert_int_equal(resp_stream_finish(&s, &b, r, 0), GW_OK);
    out = json_incref(s.output);
    buf_release(&b);
    resp_stream_release(&s);
    return out;
}

static void check_replay(int split_text)
{
    static const char *const body1 =
        "{'model':'m','instructions':'sys','tools':[{'type':'function','name':'f','parameters':"
        "{'type':'object'}}],'reasoning':{'summary':'auto'},'input':[{'role':'developer',"
        "'content':'dev'},{'role':'user','content':'weather?'}]}";
    const struct turn_tool_call calls[] = {{"call_1", "f", "{\"city\": \"Paris\"}"},
                                           {"call_2", "f", "{\"city\":\"Rome\"}"}};
    struct turn_result r = {.ok = 1,
                            .text = "Let me check both.",
                            .finish = TURN_TOOL_CALLS,
                            .calls = calls,
                            .ncalls = 2};
    struct conv *want = produced(body1, &r), *got, *stateless;
    struct resp_req req1, req2, req3;
    json_t *output, *prior, *items;
    char *dump, *body3;
    struct gw_err e;
    size_t n;

    parse_ok(body1, &req1);
    output = stream_turn(&req1, &r, split_text);
    assert_int_equal(json_array_size(output), split_text ? 6 : 4);

    /* previous_response_id: the stored input and output, then the outputs. */
    prior = json_copy(req1.input);
    json_array_extend(prior, output);
    parse_ok("{'model':'m','instructions':'sys','previous_response_id':'resp_h','tools':[{'type':"
             "'function','name':'f','parameters':{'type':'object'}}],'input':[{'type':'function_"
             "call_output','call_id':'call_2','output':'sun'},{'type':'function_call_output',"
             "'call_id':'call_1','output':'rain'}]}",
             &req2);
    memset(&e, 0, sizeof(e));
    assert_int_equal(resp_conv(&req2, prior, &got, &e), GW_OK);
    n = want->nmsgs;
    assert_int_equal(got->nmsgs, n + 2);
    assert_prefix(want, got, n);
    assert_string_equal(got->msgs[1].reasoning, split_text ? "thinking\n\nmore" : "thinking");
    assert_int_equal(got->msgs[1].ncalls, 2);

    /* Stateless (Codex, store:false): the same items sent back in full. */
    items = json_copy(prior);
    json_array_extend(items, req2.input);
    dump = json_dumps(items, JSON_COMPACT);
    body3 = malloc(strlen(dump) + 256);
    assert_non_null(body3);
    sprintf(body3,
            "{\"model\":\"m\",\"instructions\":\"sys\",\"tools\":[{\"type\":\"function\","
            "\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}],\"input\":%s}",
            dump);
    stateless = conv_ok(body3, NULL, &req3);
    assert_prefix(want, stateless, n);
    assert_prefix(got, stateless, n + 2);

    free(body3);
    free(dump);
    json_decref(items);
    json_decref(prior);
    json_decref(output);
    conv_free(want);
    conv_free(got);
    conv_free(stateless);
    resp_req_release(&req1);
    resp_req_release(&req2);
    resp_req_release(&req3);
}

static void test_replay_hash(void **state)
{
    check_replay(0);
    check_replay(1);
}

/* A text-only turn and a turn that said nothing replay like their turns too. */
static void test_replay_hash_plain(void **state)
{
    static const char *const texts[] = {"Hello!", ""};

    for (size_t i = 0; i < 2; i++) {
        struct turn_result r = {.ok = 1, .text = texts[i], .finish = TURN_STOP};
        struct conv *want = produced(REQ(""), &r), *got;
        struct resp_req req, req2;
        struct resp_stream s;
        json_t *prior;
        struct gw_err e;

        parse_ok(REQ(""), &req);
        resp_stream_init(&s, &req, "resp_p", 1);
        assert_int_equal(resp_stream_finish(&s, NULL, &r, 1), GW_OK);
        prior = json_copy(req.input);
        json_array_extend(prior, s.output);
        parse_ok("{'model':'gpt-5','input':'next','previous_response_id':'resp_p'}", &req2);
        assert_int_equal(resp_conv(&req2, prior, &got, &e), GW_OK);
        assert_int_equal(got->nmsgs, 3);
        assert_prefix(want, got, 2);
        conv_free(want);
        conv_free(got);
        json_decref(prior);
        resp_stream_release(&s);
        resp_req_release(&req);
        resp_req_release(&req2);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),     cmocka_unit_test(test_normalised_input),
        cmocka_unit_test(test_invalid_requests),   cmocka_unit_test(test_metadata_limits),
        cmocka_unit_test(test_pairing_errors),     cmocka_unit_test(test_prior_items),
        cmocka_unit_test(test_stream_text),        cmocka_unit_test(test_stream_items),
        cmocka_unit_test(test_stream_no_summary),  cmocka_unit_test(test_stream_incomplete),
        cmocka_unit_test(test_stream_failed),      cmocka_unit_test(test_failed_codes),
        cmocka_unit_test(test_from_result),        cmocka_unit_test(test_stream_from_result),
        cmocka_unit_test(test_object_in_progress), cmocka_unit_test(test_stream_bad_bytes),
        cmocka_unit_test(test_stream_cap),         cmocka_unit_test(test_replay_hash),
        cmocka_unit_test(test_replay_hash_plain),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
