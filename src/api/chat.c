/*
 * OpenAI Chat Completions: validate a request into a canonical conversation,
 * and build chat.completion objects and SSE chunks from turn results.
 *
 * Validation walks the request with small typed getters rather than one
 * json_unpack_ex() format: OpenAI's errors name the exact parameter path
 * ("messages[2].content[0].type") and the JSON type that was found, which
 * jansson's own error text cannot give us.
 */
#include "api/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "util/xmalloc.h"

#define PATH_LEN API_PATH_LEN
#define SYSTEM_MAX (SIZE_MAX / 2) /* the request body cap is the real limit */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Parse state: the conversation being built and the open tool-call block. */
struct pctx {
    struct conv *conv;
    struct chat_opts *opts;
    struct gw_err *err;
    struct buf system;
    struct api_calls calls; /* the tool calls of the last assistant message, to be answered */
};

/* ---- images --------------------------------------------------------------- */

/* {"type":"image_url","image_url":{"url","detail"?}}; the old bare-string form is accepted too. */
static int parse_image_part(struct pctx *x, json_t *part, const char *path, struct conv_msg *m)
{
    static const char *const details[] = {"auto", "low", "high", NULL};
    char ip[PATH_LEN], p[PATH_LEN];
    json_t *img, *url = NULL, *detail = NULL;
    int rc;

    rc = api_get_req(x->err, part, path, "image_url", API_ANY, &img);
    if (rc)
        return rc;
    api_path_key(ip, path, "image_url");
    if (json_is_string(img)) {
        url = img;
        return api_add_image_url(x->err, json_string_value(url), ip, m);
    }
    if (!json_is_object(img))
        return api_bad_type(x->err, ip, "an object", img);
    rc = api_get_req(x->err, img, ip, "url", API_STRING, &url);
    if (!rc)
        rc = api_get_opt(x->err, img, ip, "detail", API_STRING, &detail);
    if (rc)
        return rc;
    if (detail && !api_one_of(json_string_value(detail), details)) {
        api_path_key(p, ip, "detail");
        return api_bad_value(x->err, p, json_string_value(detail), "'auto', 'low', and 'high'");
    }
    api_path_key(p, ip, "url");
    return api_add_image_url(x->err, json_string_value(url), p, m);
}

/* ---- content -------------------------------------------------------------- */

enum part_allow { ALLOW_TEXT = 1 << 0, ALLOW_IMAGE = 1 << 1, ALLOW_REFUSAL = 1 << 2 };

static const char *allowed_list(unsigned allow)
{
    if (allow & ALLOW_IMAGE)
        return "'text' and 'image_url'";
    if (allow & ALLOW_REFUSAL)
        return "'text' and 'refusal'";
    return "'text'";
}

static int parse_part(struct pctx *x, json_t *part, const char *path, unsigned allow,
                      struct conv_msg *m)
{
    static const char *const unsupported[] = {"input_audio", "audio", "file", NULL};
    char tp[PATH_LEN];
    json_t *type, *v;
    const char *t;
    int rc;

    if (!json_is_object(part))
        return api_bad_type(x->err, path, "an object", part);
    rc = api_get_req(x->err, part, path, "type", API_STRING, &type);
    if (rc)
        return rc;
    t = json_string_value(type);
    if (!strcmp(t, "text") || ((allow & ALLOW_REFUSAL) && !strcmp(t, "refusal"))) {
        rc = api_get_req(x->err, part, path, t, API_STRING, &v);
        if (!rc)
            conv_msg_add_text(m, json_string_value(v), json_string_length(v));
        return rc;
    }
    if ((allow & ALLOW_IMAGE) && !strcmp(t, "image_url"))
        return parse_image_part(x, part, path, m);
    api_path_key(tp, path, "type");
    if (api_one_of(t, unsupported))
        return api_bad(x->err, tp, "unsupported_value",
                       "Content part type '%s' in '%s' is not supported by this gateway; supported "
                       "part types here are %s.",
                       t, tp, allowed_list(allow));
    return api_bad_value(x->err, tp, t, allowed_list(allow));
}

/* A message's content: a string, or a non-empty array of the parts allow permits. */
static int parse_content(struct pctx *x, json_t *content, const char *path, unsigned allow,
                         struct conv_msg *m)
{
    char pp[PATH_LEN];
    json_t *part;
    size_t i;
    int rc;

    if (json_is_string(content)) {
        conv_msg_add_text(m, json_string_value(content), json_string_length(content));
        return GW_OK;
    }
    if (!json_is_array(content))
        return api_bad_type(x->err, path, "one of a string or array of objects", content);
    if (json_array_size(content) == 0)
        return api_empty_array(x->err, path);
    json_array_foreach(content, i, part)
    {
        api_path_idx(pp, path, i);
        rc = parse_part(x, part, pp, allow, m);
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* ---- tool-call pairing ---------------------------------------------------- */

/*
 * Ends the open tool-call block (if any): like OpenAI, every tool call of
 * an assistant message must be answered by the tool messages right after it.
 */
static int close_tool_block(struct pctx *x)
{
    char list[320], p[PATH_LEN];
    size_t req = x->calls.req;

    if (!api_calls_close(&x->calls, x->conv, list, sizeof(list)))
        return GW_OK;
    snprintf(p, sizeof(p), "messages[%zu].role", req);
    return api_bad(x->err, p, NULL,
                   "An assistant message with 'tool_calls' must be followed by tool messages "
                   "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                   "response messages: %s",
                   list);
}

/* A tool message answers one pending call of the assistant message before it. */
static int answer_call(struct pctx *x, const char *id, const char *base)
{
    char p[PATH_LEN];

    switch (api_calls_answer(&x->calls, id)) {
    case API_ANSWER_OK:
        return GW_OK;
    case API_ANSWER_NO_BLOCK:
        api_path_key(p, base, "role");
        return api_bad(x->err, p, NULL,
                       "Invalid parameter: messages with role 'tool' must be a response to a "
                       "preceding message with 'tool_calls'.");
    case API_ANSWER_DUPLICATE:
        api_path_key(p, base, "tool_call_id");
        return api_bad(x->err, p, NULL,
                       "Invalid parameter: 'tool_call_id' of '%.*s' was already answered by an "
                       "earlier tool message.",
                       api_clip(id), id);
    case API_ANSWER_UNKNOWN:
    default:
        api_path_key(p, base, "tool_call_id");
        return api_bad(x->err, p, NULL,
                       "Invalid parameter: 'tool_call_id' of '%.*s' not found in 'tool_calls' of "
                       "previous message.",
                       api_clip(id), id);
    }
}

/* ---- messages ------------------------------------------------------------- */

static int system_append(struct pctx *x, const char *text)
{
    int rc = api_buf_join(&x->system, text, strlen(text));

    if (rc)
        return gw_err_param(x->err, rc, "messages", "the system prompt is too large");
    return GW_OK;
}

/* system and developer messages: text only, joined into conv->system. */
static int parse_system(struct pctx *x, json_t *msg, const char *base, size_t idx)
{
    char cp[PATH_LEN];
    struct conv *tmp;
    json_t *content;
    char *text;
    int rc;

    rc = api_get_req(x->err, msg, base, "content", API_ANY, &content);
    if (rc)
        return rc;
    api_path_key(cp, base, "content");
    tmp = conv_new();
    rc = parse_content(x, content, cp, ALLOW_TEXT, conv_add_msg(tmp, CONV_USER));
    if (!rc) {
        text = conv_msg_text(&tmp->msgs[0]);
        rc = system_append(x, text);
        free(text);
    }
    conv_free(tmp);
    return rc;
}

static int parse_user(struct pctx *x, json_t *msg, const char *base, size_t idx)
{
    char cp[PATH_LEN];
    json_t *content;
    int rc;

    rc = api_get_req(x->err, msg, base, "content", API_ANY, &content);
    if (rc)
        return rc;
    api_path_key(cp, base, "content");
    return parse_content(x, content, cp, ALLOW_TEXT | ALLOW_IMAGE,
                         conv_add_msg(x->conv, CONV_USER));
}

static int parse_call(struct pctx *x, json_t *call, const char *path, struct conv_msg *m)
{
    char fp[PATH_LEN], p[PATH_LEN];
    json_t *id, *type, *fn, *name, *args;
    const char *ids;
    int rc;

    if (!json_is_object(call))
        return api_bad_type(x->err, path, "an object", call);
    rc = api_get_req(x->err, call, path, "id", API_STRING, &id);
    if (!rc)
        rc = api_get_req(x->err, call, path, "type", API_STRING, &type);
    if (!rc)
        rc = api_get_req(x->err, call, path, "function", API_OBJECT, &fn);
    if (rc)
        return rc;
    api_path_key(p, path, "type");
    if (strcmp(json_string_value(type), "function") != 0)
        return api_bad_value(x->err, p, json_string_value(type), "'function'");
    api_path_key(fp, path, "function");
    rc = api_get_req(x->err, fn, fp, "name", API_STRING, &name);
    if (!rc)
        rc = api_get_req(x->err, fn, fp, "arguments", API_STRING, &args);
    if (rc)
        return rc;
    ids = json_string_value(id);
    api_path_key(p, path, "id");
    if (api_calls_add(&x->calls, ids))
        return api_bad(x->err, p, "invalid_value", "Invalid '%s': duplicate tool call id '%.*s'.",
                       p, api_clip(ids), ids);
    conv_msg_add_call(m, ids, json_string_value(name), json_string_value(args));
    return GW_OK;
}

/* Adds m's tool calls and opens the block their tool messages must answer. */
static int parse_calls(struct pctx *x, json_t *calls, const char *base, size_t idx,
                       struct conv_msg *m)
{
    char cp[PATH_LEN], p[PATH_LEN];
    json_t *call;
    size_t i;
    int rc;

    if (json_array_size(calls) == 0)
        return GW_OK;
    api_calls_open(&x->calls);
    x->calls.msg = x->conv->nmsgs - 1;
    x->calls.req = idx;
    api_path_key(cp, base, "tool_calls");
    json_array_foreach(calls, i, call)
    {
        api_path_idx(p, cp, i);
        rc = parse_call(x, call, p, m);
        if (rc)
            return rc;
    }
    return GW_OK;
}

static int parse_assistant(struct pctx *x, json_t *msg, const char *base, size_t idx)
{
    char p[PATH_LEN];
    json_t *content, *calls = NULL, *reasoning = NULL, *refusal = NULL;
    struct conv_msg *m;
    int rc;

    rc = api_get_opt(x->err, msg, base, "content", API_ANY, &content);
    if (!rc)
        rc = api_get_opt(x->err, msg, base, "tool_calls", API_ARRAY, &calls);
    if (!rc)
        rc = api_get_opt(x->err, msg, base, "reasoning_content", API_STRING, &reasoning);
    if (!rc)
        rc = api_get_opt(x->err, msg, base, "refusal", API_STRING, &refusal);
    if (rc)
        return rc;
    api_path_key(p, base, "content");
    if (!content && !refusal && json_array_size(calls) == 0)
        return api_bad(x->err, p, "invalid_value",
                       "Invalid value for '%s': expected a string, got null. An assistant message "
                       "needs 'content' or 'tool_calls'.",
                       p);
    m = conv_add_msg(x->conv, CONV_ASSISTANT);
    if (content)
        rc = parse_content(x, content, p, ALLOW_TEXT | ALLOW_REFUSAL, m);
    else if (refusal)
        conv_msg_add_text(m, json_string_value(refusal), json_string_length(refusal));
    if (!rc && reasoning && json_string_length(reasoning))
        m->reasoning = xstrdup(json_string_value(reasoning));
    if (!rc)
        rc = parse_calls(x, calls, base, idx, m);
    return rc;
}

static int parse_tool_msg(struct pctx *x, json_t *msg, const char *base, size_t idx)
{
    char cp[PATH_LEN];
    json_t *id, *content;
    struct conv_msg *m;
    int rc;

    rc = api_get_req(x->err, msg, base, "tool_call_id", API_STRING, &id);
    if (!rc)
        rc = api_get_req(x->err, msg, base, "content", API_ANY, &content);
    if (!rc)
        rc = answer_call(x, json_string_value(id), base);
    if (rc)
        return rc;
    m = conv_add_msg(x->conv, CONV_TOOL);
    m->tool_call_id = xstrdup(json_string_value(id));
    api_path_key(cp, base, "content");
    return parse_content(x, content, cp, ALLOW_TEXT, m);
}

typedef int (*role_fn)(struct pctx *x, json_t *msg, const char *base, size_t idx);

static const struct role_entry {
    const char *name;
    role_fn parse;
} roles[] = {
    {"system", parse_system},       {"developer", parse_system}, {"user", parse_user},
    {"assistant", parse_assistant}, {"tool", parse_tool_msg},
};

static int parse_message(struct pctx *x, json_t *msg, size_t idx)
{
    char base[PATH_LEN], p[PATH_LEN];
    json_t *role, *name;
    const char *r;
    int rc;

    api_path_idx(base, "messages", idx);
    if (!json_is_object(msg))
        return api_bad_type(x->err, base, "an object", msg);
    rc = api_get_req(x->err, msg, base, "role", API_STRING, &role);
    if (!rc)
        rc = api_get_opt(x->err, msg, base, "name", API_STRING, &name);
    if (rc)
        return rc;
    r = json_string_value(role);
    for (size_t i = 0; i < NELEM(roles); i++) {
        if (strcmp(r, roles[i].name) != 0)
            continue;
        if (roles[i].parse != parse_tool_msg)
            rc = close_tool_block(x);
        return rc ? rc : roles[i].parse(x, msg, base, idx);
    }
    api_path_key(p, base, "role");
    if (!strcmp(r, "function"))
        return api_bad(
            x->err, p, "unsupported_value",
            "The 'function' role in '%s' (deprecated function calling) is not supported; "
            "answer 'tool_calls' with 'tool' messages instead.",
            p);
    return api_bad_value(x->err, p, r,
                         "'system', 'assistant', 'user', 'function', 'tool', and 'developer'");
}

/* ---- top-level parameters ------------------------------------------------- */

static int parse_model(struct pctx *x, json_t *root)
{
    return api_get_model(x->err, root, &x->conv->model);
}

static int parse_messages(struct pctx *x, json_t *root)
{
    json_t *msgs, *msg;
    size_t i;
    int rc = api_get_req(x->err, root, "", "messages", API_ARRAY, &msgs);

    if (rc)
        return rc;
    if (json_array_size(msgs) == 0)
        return api_empty_array(x->err, "messages");
    json_array_foreach(msgs, i, msg)
    {
        rc = parse_message(x, msg, i);
        if (rc)
            return rc;
    }
    rc = close_tool_block(x);
    if (!rc && x->system.len)
        x->conv->system = buf_take(&x->system, NULL);
    return rc;
}

static int parse_tool(void *ctx, json_t *tool, const char *base, json_t *names)
{
    struct pctx *x = ctx;
    char fp[PATH_LEN], p[PATH_LEN];
    json_t *type, *fn, *params;
    const char *n, *desc;
    int rc;

    if (!json_is_object(tool))
        return api_bad_type(x->err, base, "an object", tool);
    rc = api_get_req(x->err, tool, base, "type", API_STRING, &type);
    if (rc)
        return rc;
    n = json_string_value(type);
    api_path_key(p, base, "type");
    if (strcmp(n, "function") != 0)
        return api_bad(x->err, p, "unsupported_value",
                       "Tool type '%.*s' in '%s' is not supported; only 'function' tools are.",
                       api_clip(n), n, p);
    api_path_key(fp, base, "function");
    rc = api_get_req(x->err, tool, base, "function", API_OBJECT, &fn);
    if (!rc)
        rc = api_function(x->err, fn, fp, names, &n, &desc, &params);
    if (!rc)
        conv_add_tool(x->conv, n, desc, json_incref(params));
    return rc;
}

static int parse_tools(struct pctx *x, json_t *root)
{
    json_t *tools;
    return api_walk_tools(x->err, root, &tools, parse_tool, x);
}

/* Moves the declared tools into a scratch conv and frees them with it (conv owns them). */
static void drop_tools(struct conv *c)
{
    struct conv *gone = conv_new();

    gone->tools = c->tools;
    gone->ntools = c->ntools;
    c->tools = NULL;
    c->ntools = 0;
    conv_free(gone);
}

/*
 * "none" | "auto" | "required" | {"type":"function","function":{"name"}}.
 * The runtime has no tool_choice: it never tells the model which tool, if
 * any, to call.  "auto" is what it always does.  "none" is honoured by not
 * declaring the tools (they are still validated), so the model cannot call
 * them.  "required" and the named form would need tool_choice sent to the
 * model, so they are refused rather than silently ignored.
 */
static int parse_tool_choice(struct pctx *x, json_t *root)
{
    json_t *tc, *type, *fn, *name;
    const char *s;
    int none, rc = api_get_opt(x->err, root, "", "tool_choice", API_ANY, &tc);

    if (rc || !tc)
        return rc;
    if (json_is_string(tc)) {
        rc = api_tool_choice_mode(x->err, json_string_value(tc), &none);
        if (!rc && none)
            drop_tools(x->conv);
        return rc;
    }
    if (!json_is_object(tc))
        return api_bad_type(x->err, "tool_choice", "one of a string or object", tc);
    rc = api_get_req(x->err, tc, "tool_choice", "type", API_STRING, &type);
    if (rc)
        return rc;
    if (strcmp(json_string_value(type), "function") != 0)
        return api_bad_value(x->err, "tool_choice.type", json_string_value(type), "'function'");
    rc = api_get_req(x->err, tc, "tool_choice", "function", API_OBJECT, &fn);
    if (!rc)
        rc = api_get_req(x->err, fn, "tool_choice.function", "name", API_STRING, &name);
    if (rc)
        return rc;
    s = json_string_value(name);
    return api_bad(x->err, "tool_choice", "unsupported_value",
                   "tool_choice naming function '%.*s' is not supported: " API_NO_FORCING ".",
                   api_clip(s), s);
}

static int parse_stream(struct pctx *x, json_t *root)
{
    json_t *stream, *so, *usage;
    int rc = api_get_opt(x->err, root, "", "stream", API_BOOL, &stream);

    if (!rc)
        rc = api_get_opt(x->err, root, "", "stream_options", API_OBJECT, &so);
    if (rc)
        return rc;
    x->opts->stream = x->conv->stream = json_is_true(stream);
    if (!so)
        return GW_OK;
    if (!x->opts->stream)
        return api_bad(x->err, "stream_options", "invalid_value",
                       "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    rc = api_get_opt(x->err, so, "stream_options", "include_usage", API_BOOL, &usage);
    if (!rc)
        x->opts->include_usage = json_is_true(usage);
    return rc;
}

static int parse_n(struct pctx *x, json_t *root)
{
    json_t *v;
    json_int_t n;
    int rc = api_get_opt(x->err, root, "", "n", API_INT, &v);

    if (rc || !v)
        return rc;
    n = json_integer_value(v);
    if (n < 1)
        return api_bad(x->err, "n", "integer_below_min_value",
                       "Invalid 'n': integer below minimum value. Expected a value >= 1, but got "
                       "%" JSON_INTEGER_FORMAT " instead.",
                       n);
    if (n > 1)
        return api_bad(x->err, "n", "unsupported_value",
                       "Unsupported value: 'n' must be 1 (got %" JSON_INTEGER_FORMAT
                       "); this gateway returns one choice per request.",
                       n);
    return GW_OK;
}

static int parse_json_schema(struct pctx *x, json_t *rf)
{
    json_t *js;
    int rc = api_get_req(x->err, rf, "response_format", "json_schema", API_OBJECT, &js);

    if (!rc)
        rc = api_json_schema(x->err, js, "response_format.json_schema", 0,
                             &x->conv->response_format);
    return rc;
}

static int parse_response_format(struct pctx *x, json_t *root)
{
    json_t *rf, *type;
    const char *t;
    int rc = api_get_opt(x->err, root, "", "response_format", API_OBJECT, &rf);

    if (!rc && rf)
        rc = api_get_req(x->err, rf, "response_format", "type", API_STRING, &type);
    if (rc || !rf)
        return rc;
    t = json_string_value(type);
    if (!strcmp(t, "text"))
        return GW_OK;
    if (!strcmp(t, "json_schema"))
        return parse_json_schema(x, rf);
    if (!strcmp(t, "json_object")) {
        x->conv->response_format = api_json_object_format();
        return GW_OK;
    }
    return api_bad_value(x->err, "response_format.type", t,
                         "'text', 'json_object', and 'json_schema'");
}

static int parse_reasoning_effort(struct pctx *x, json_t *root)
{
    json_t *v;
    const char *effort;
    int rc = api_get_opt(x->err, root, "", "reasoning_effort", API_STRING, &v);

    if (rc || !v)
        return rc;
    if (!api_effort(json_string_value(v), &effort))
        return api_bad_value(x->err, "reasoning_effort", json_string_value(v), API_EFFORTS);
    x->conv->reasoning_effort = xstrdup(effort);
    return GW_OK;
}

/* Legacy function calling would silently lose the client's tools: refuse it. */
static int parse_functions(struct pctx *x, json_t *root)
{
    json_t *v;
    int rc = api_get_opt(x->err, root, "", "functions", API_ARRAY, &v);

    if (rc || json_array_size(v) == 0)
        return rc;
    return api_bad(
        x->err, "functions", "unsupported_parameter",
        "Unsupported parameter: 'functions' (deprecated function calling) is not supported "
        "by this gateway; use 'tools' instead.");
}

/* ---- accepted and ignored parameters -------------------------------------- */

#define PLAIN API_CHECK_PLAIN
#define BOTH (API_LO | API_HI)

static const struct api_param ignored[] = {
    {"temperature", API_NUMBER, PLAIN, BOTH, 0, 2},
    {"top_p", API_NUMBER, PLAIN, BOTH, 0, 1},
    {"frequency_penalty", API_NUMBER, PLAIN, BOTH, -2, 2},
    {"presence_penalty", API_NUMBER, PLAIN, BOTH, -2, 2},
    {"seed", API_INT, PLAIN, 0, 0, 0},
    {"max_tokens", API_INT, PLAIN, API_LO, 1, 0},
    {"max_completion_tokens", API_INT, PLAIN, API_LO, 1, 0},
    {"logprobs", API_BOOL, PLAIN, 0, 0, 0},
    {"top_logprobs", API_INT, PLAIN, BOTH, 0, 20},
    {"logit_bias", API_OBJECT, PLAIN, 0, 0, 0},
    {"user", API_STRING, PLAIN, 0, 0, 0},
    {"metadata", API_OBJECT, PLAIN, 0, 0, 0},
    {"store", API_BOOL, PLAIN, 0, 0, 0},
    {"parallel_tool_calls", API_BOOL, PLAIN, 0, 0, 0},
    {"service_tier", API_STRING, PLAIN, 0, 0, 0},
    {"prediction", API_OBJECT, PLAIN, 0, 0, 0},
    {"audio", API_OBJECT, PLAIN, 0, 0, 0},
    {"web_search_options", API_OBJECT, PLAIN, 0, 0, 0},
    {"verbosity", API_STRING, PLAIN, 0, 0, 0},
    {"prompt_cache_key", API_STRING, PLAIN, 0, 0, 0},
    {"safety_identifier", API_STRING, PLAIN, 0, 0, 0},
    {"modalities", API_ARRAY, API_CHECK_STRINGS, 0, 0, 0},
    {"stop", API_ANY, API_CHECK_STOP, 0, 0, 0},
};

static int check_ignored(struct pctx *x, json_t *root)
{
    return api_check_params(x->err, root, ignored, NELEM(ignored));
}

/* ---- chat_parse ----------------------------------------------------------- */

typedef int (*step_fn)(struct pctx *x, json_t *root);

/* Order matters only where a step reads an earlier one's result (tool_choice needs tools). */
static const step_fn steps[] = {
    parse_model, parse_messages,  parse_tools,           parse_tool_choice,      parse_stream,
    parse_n,     parse_functions, parse_response_format, parse_reasoning_effort, check_ignored,
};

int chat_parse(const char *body, size_t len, struct conv **out, struct chat_opts *opts,
               struct gw_err *err)
{
    struct chat_opts scratch;
    struct pctx x;
    json_t *root;
    int rc = GW_OK;

    *out = NULL;
    if (!opts)
        opts = &scratch;
    memset(opts, 0, sizeof(*opts));
    root = api_openai_body(body, len, err);
    if (!root)
        return GW_EINVAL;
    memset(&x, 0, sizeof(x));
    x.conv = conv_new();
    x.opts = opts;
    x.err = err;
    buf_init(&x.system, SYSTEM_MAX);
    for (size_t i = 0; i < NELEM(steps) && !rc; i++)
        rc = steps[i](&x, root);
    if (!rc) {
        *out = x.conv;
        x.conv = NULL;
    } else {
        memset(opts, 0, sizeof(*opts));
    }
    conv_free(x.conv);
    buf_release(&x.system);
    api_calls_release(&x.calls);
    json_decref(root);
    return rc;
}

/* ---- response builders ---------------------------------------------------- */

static const char *finish_name(enum turn_finish f)
{
    switch (f) {
    case TURN_LENGTH:
        return "length";
    case TURN_TOOL_CALLS:
        return "tool_calls";
    case TURN_STOP:
    default:
        return "stop";
    }
}

static json_t *usage_json(const struct turn_usage *u)
{
    return json_pack("{s:I, s:I, s:I, s:{s:I}, s:{s:I}}", "prompt_tokens",
                     (json_int_t)u->input_tokens, "completion_tokens", (json_int_t)u->output_tokens,
                     "total_tokens", (json_int_t)(u->input_tokens + u->output_tokens),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)u->cache_read_tokens,
                     "completion_tokens_details", "reasoning_tokens",
                     (json_int_t)u->reasoning_tokens);
}

/* message.tool_calls: the calls in order; arguments is the model's JSON text as given. */
static json_t *tool_calls_json(const struct turn_tool_call *calls, size_t n)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr && i < n; i++) {
        const struct turn_tool_call *tc = &calls[i];
        /* No arguments at all reads as an empty object, which clients can still parse. */
        json_t *args = tc->arguments ? api_jstr0(tc->arguments) : json_string("{}");
        json_t *call =
            json_pack("{s:o, s:s, s:{s:o, s:o}}", "id", api_jstr0(tc->id), "type", "function",
                      "function", "name", api_jstr0(tc->name), "arguments", args);

        if (json_array_append_new(arr, call) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/*
 * The message's content: with tool calls, the text if any and null
 * otherwise (as OpenAI does); without, "" for no text, except null when the
 * turn still ended for tool calls.
 */
static json_t *content_json(const struct turn_result *r)
{
    if (r->ncalls > 0)
        return r->text && *r->text ? api_jstr0(r->text) : json_null();
    if (r->text)
        return api_jstr0(r->text);
    return r->finish == TURN_TOOL_CALLS ? json_null() : json_string("");
}

json_t *chat_response(const char *id, const char *model, int64_t created,
                      const struct turn_result *r)
{
    json_t *msg;

    msg = json_pack("{s:s, s:o, s:n}", "role", "assistant", "content", content_json(r), "refusal");
    if (msg && r->reasoning && *r->reasoning)
        json_object_set_new(msg, "reasoning_content", api_jstr0(r->reasoning));
    if (msg && r->ncalls > 0)
        json_object_set_new(msg, "tool_calls", tool_calls_json(r->calls, r->ncalls));
    return json_pack("{s:o, s:s, s:I, s:o, s:[{s:i, s:o, s:n, s:s}], s:o, s:n}", "id",
                     api_jstr0(id), "object", "chat.completion", "created", (json_int_t)created,
                     "model", api_jstr0(model), "choices", "index", 0, "message", msg, "logprobs",
                     "finish_reason", finish_name(r->finish), "usage", usage_json(&r->usage),
                     "system_fingerprint");
}

/* A chat.completion.chunk around choices (stolen). */
static json_t *chunk_new(const char *id, const char *model, int64_t created, json_t *choices)
{
    return json_pack("{s:o, s:s, s:I, s:o, s:n, s:o}", "id", api_jstr0(id), "object",
                     "chat.completion.chunk", "created", (json_int_t)created, "model",
                     api_jstr0(model), "system_fingerprint", "choices", choices);
}

/* One chunk with choice 0 carrying delta (stolen) and finish_reason (NULL: null). */
static int delta_chunk(struct buf *out, const char *id, const char *model, int64_t created,
                       json_t *delta, const char *finish)
{
    json_t *choices = json_pack("[{s:i, s:o, s:n, s:s?}]", "index", 0, "delta", delta, "logprobs",
                                "finish_reason", finish);

    if (!choices) {
        buf_release(out);
        return GW_ENOMEM;
    }
    return api_sse(out, NULL, chunk_new(id, model, created, choices));
}

int chat_chunk_role(struct buf *out, const char *id, const char *model, int64_t created)
{
    return delta_chunk(out, id, model, created,
                       json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL);
}

int chat_chunk_text(struct buf *out, const char *id, const char *model, int64_t created,
                    const char *s, size_t n)
{
    return delta_chunk(out, id, model, created, json_pack("{s:o}", "content", api_jstr(s, n)),
                       NULL);
}

int chat_chunk_reasoning(struct buf *out, const char *id, const char *model, int64_t created,
                         const char *s, size_t n)
{
    return delta_chunk(out, id, model, created,
                       json_pack("{s:o}", "reasoning_content", api_jstr(s, n)), NULL);
}

/*
 * One piece of a tool call.  The first piece of a call carries its id, type
 * and name; later ones only the index and the next arguments fragment.
 * In json_pack, "o*"/"s*" leave the key out for NULL ("?" would write null).
 */
int chat_chunk_tool_call(struct buf *out, const char *id, const char *model, int64_t created,
                         size_t index, const char *call_id, const char *name, const char *args,
                         size_t n)
{
    json_t *delta = json_pack("{s:[{s:I, s:o*, s:s*, s:{s:o*, s:o}}]}", "tool_calls", "index",
                              (json_int_t)index, "id", call_id ? api_jstr0(call_id) : NULL, "type",
                              call_id ? "function" : NULL, "function", "name",
                              name ? api_jstr0(name) : NULL, "arguments", api_jstr(args, n));

    return delta_chunk(out, id, model, created, delta, NULL);
}

int chat_chunk_finish(struct buf *out, const char *id, const char *model, int64_t created,
                      enum turn_finish finish)
{
    return delta_chunk(out, id, model, created, json_object(), finish_name(finish));
}

int chat_chunk_usage(struct buf *out, const char *id, const char *model, int64_t created,
                     const struct turn_usage *u)
{
    json_t *c = chunk_new(id, model, created, json_array());

    if (c)
        json_object_set_new(c, "usage", usage_json(u));
    return api_sse(out, NULL, c);
}

int chat_chunk_error(struct buf *out, const struct gw_err *err)
{
    return api_sse(out, NULL, openai_error(err));
}

int chat_chunk_done(struct buf *out)
{
    return buf_adds(out, "data: [DONE]\n\n");
}

/* ---- errors out ----------------------------------------------------------- */

static const char *error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *default_code(int status)
{
    if (status == 429)
        return "rate_limit_exceeded";
    if (status == 503)
        return "service_unavailable";
    return NULL;
}

json_t *openai_error(const struct gw_err *err)
{
    static const char generic[] = "The server had an error while processing your request.";
    int status = 500;
    const char *msg = generic, *param = NULL, *code = NULL;

    if (err) {
        status = err->http_status ? err->http_status : gw_status_http(err->code);
        if (err->msg[0])
            msg = err->msg;
        if (err->param[0])
            param = err->param;
        code = err->api_code[0] ? err->api_code : NULL;
    }
    if (!code)
        code = default_code(status);
    /* The fields are fixed-size arrays: bound every read by the array, not by a NUL. */
    return json_pack("{s:{s:o, s:s, s:o?, s:o?}}", "error", "message",
                     api_jstr(msg, strnlen(msg, sizeof(err->msg))), "type", error_type(status),
                     "param", param ? api_jstr(param, strnlen(param, sizeof(err->param))) : NULL,
                     "code", code ? api_jstr(code, strnlen(code, sizeof(err->api_code))) : NULL);
}
