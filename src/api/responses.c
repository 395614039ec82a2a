/*
 * OpenAI Responses, the request side: validate a request and build the
 * canonical conversation from stored and new items.  The output side
 * (items, SSE events, response objects) is api/responses_out.c.
 *
 * Validation walks the request with the typed getters of api/common.h, as
 * api/chat.c does, so every error names its exact path ("input[2].content[0]
 * .image_url") in OpenAI's wording.
 *
 * Mapping decisions (see also api/responses.h):
 * - The items are walked twice with the same code: resp_parse() checks the
 *   request's own items into a scratch conversation, resp_conv() builds the
 *   real one from the stored items and the request's, and only then checks
 *   that calls and outputs pair up (the calls may be in the stored part).
 * - A run of assistant-side items (assistant messages, reasoning,
 *   function_call) is one CONV_ASSISTANT message.  Its text is the texts of
 *   the run's output_text and refusal parts run together, as the broker's
 *   turn text is its deltas run together, so that a response whose text
 *   was split over several message items still hashes like its turn.  Its
 *   reasoning is the summary texts, "\n\n"-joined.
 * - System and developer messages join the system prompt wherever they
 *   stand; they neither end a run nor answer calls.
 * - Images inside function_call_output become "[image omitted]", as in
 *   api/messages.c: the runtime takes tool results as text.
 * - A function_call must be answered by function_call_output items before
 *   the next user message or assistant-side run, and by the end of the
 *   input; an output must answer a call of the run before it.
 */
#include "api/responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define PATH_LEN API_PATH_LEN
#define TEXT_MAX (SIZE_MAX / 2) /* the request body cap is the real limit */
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define NO_RUN SIZE_MAX

#define METADATA_MAX_KEYS 16
#define METADATA_MAX_KEY 64
#define METADATA_MAX_VALUE 512

#define ITEM_TYPES "'message', 'function_call', 'function_call_output', and 'reasoning'"

/* ---- items ---------------------------------------------------------------- */

/*
 * Item walking state: the conversation being built, the system prompt, the
 * open assistant run, and the calls waiting for their outputs.
 */
struct wctx {
    struct gw_err *err;
    struct conv *conv;
    struct buf system;
    struct buf text;      /* the open run's text */
    struct buf reasoning; /* and reasoning */
    size_t run;           /* index in conv->msgs of the open run's message, or NO_RUN */
    int run_text;         /* the open run has a message item */
    int pairing;          /* check calls against outputs (resp_conv) */
    struct api_calls calls;
};

/* Item types that belong to tools the gateway never offers. */
/* clang-format off */
static const char *const foreign_items[] = {
    "custom_tool_call", "custom_tool_call_output", "local_shell_call", "local_shell_call_output",
    "shell_call", "shell_call_output", "apply_patch_call", "apply_patch_call_output",
    "web_search_call", "file_search_call", "computer_call", "computer_call_output",
    "image_generation_call", "code_interpreter_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "mcp_call", "tool_search_call", "tool_search_output",
    "additional_tools", "configuration_update", "program", "program_output", "compaction",
    "compaction_trigger", NULL};
/* clang-format on */

static void wctx_init(struct wctx *w, struct gw_err *err, int pairing)
{
    memset(w, 0, sizeof(*w));
    w->err = err;
    w->conv = conv_new();
    buf_init(&w->system, TEXT_MAX);
    buf_init(&w->text, TEXT_MAX);
    buf_init(&w->reasoning, TEXT_MAX);
    w->run = NO_RUN;
    w->pairing = pairing;
}

static void wctx_release(struct wctx *w)
{
    conv_free(w->conv);
    buf_release(&w->system);
    buf_release(&w->text);
    buf_release(&w->reasoning);
    api_calls_release(&w->calls);
}

static int too_large(struct wctx *w, int rc, const char *path, const char *what)
{
    return gw_err_param(w->err, rc, path, "Invalid '%s': the %s is too large.", path, what);
}

/* Ends the open run: its text and reasoning go into its message. */
static void run_end(struct wctx *w)
{
    struct conv_msg *m;

    if (w->run == NO_RUN)
        return;
    m = &w->conv->msgs[w->run];
    if (w->run_text)
        conv_msg_add_text(m, buf_str(&w->text), w->text.len);
    if (w->reasoning.len)
        m->reasoning = buf_take(&w->reasoning, NULL);
    buf_reset(&w->text);
    buf_reset(&w->reasoning);
    w->run = NO_RUN;
    w->run_text = 0;
}

/* Ends the calls' block: each call of the last run must have had its output. */
static int close_calls(struct wctx *w)
{
    char list[320];

    if (!api_calls_close(&w->calls, w->conv, list, sizeof(list)))
        return GW_OK;
    return api_bad(w->err, "input", NULL, "No tool output found for function call %s.", list);
}

/* The assistant message of the open run; a new run first ends the calls' block. */
static int run_msg(struct wctx *w, struct conv_msg **m)
{
    int rc;

    if (w->run == NO_RUN) {
        rc = close_calls(w);
        if (rc)
            return rc;
        conv_add_msg(w->conv, CONV_ASSISTANT);
        w->run = w->conv->nmsgs - 1;
    }
    *m = &w->conv->msgs[w->run];
    return GW_OK;
}

/* The id and status every item may carry. */
static int item_common(struct wctx *w, json_t *item, const char *path)
{
    json_t *v;
    int rc = api_get_opt(w->err, item, path, "id", API_STRING, &v);

    if (!rc)
        rc = api_get_opt(w->err, item, path, "status", API_STRING, &v);
    return rc;
}

/* ---- content parts -------------------------------------------------------- */

/* Which parts a message (or a function_call_output) may hold. */
enum part_allow {
    ALLOW_INPUT = 1 << 0,  /* input_text */
    ALLOW_IMAGE = 1 << 1,  /* input_image */
    ALLOW_OUTPUT = 1 << 2, /* output_text, refusal */
    OMIT_IMAGE = 1 << 3,   /* input_image checked, then "[image omitted]" */
};

static const char *allowed_list(unsigned allow)
{
    if (allow & ALLOW_OUTPUT)
        return "'output_text' and 'refusal'";
    if (allow & (ALLOW_IMAGE | OMIT_IMAGE))
        return "'input_text' and 'input_image'";
    return "'input_text'";
}

/* {"type":"input_image","image_url"?,"file_id"?,"detail"?} */
static int parse_image(struct wctx *w, json_t *part, const char *path, unsigned allow,
                       struct conv_msg *m)
{
    static const char *const details[] = {"auto", "low", "high", "original", NULL};
    char p[PATH_LEN];
    json_t *url, *file, *detail;
    int rc = api_get_opt(w->err, part, path, "file_id", API_STRING, &file);

    if (!rc)
        rc = api_get_opt(w->err, part, path, "detail", API_STRING, &detail);
    if (rc)
        return rc;
    if (detail && !api_one_of(json_string_value(detail), details)) {
        api_path_key(p, path, "detail");
        return api_bad_value(w->err, p, json_string_value(detail),
                             "'low', 'high', 'auto', and 'original'");
    }
    if (file) {
        api_path_key(p, path, "file_id");
        return api_bad(w->err, p, "unsupported_value",
                       "Invalid '%s': images by file id (the Files API) are not supported by this "
                       "gateway; send 'image_url' with an http(s) URL or a base64 data URL.",
                       p);
    }
    rc = api_get_req(w->err, part, path, "image_url", API_STRING, &url);
    if (rc)
        return rc;
    api_path_key(p, path, "image_url");
    rc = api_add_image_url(w->err, json_string_value(url), p, allow & OMIT_IMAGE ? NULL : m);
    if (!rc && (allow & OMIT_IMAGE))
        conv_msg_add_text(m, "[image omitted]", 15);
    return rc;
}

/* {"type":"output_text","text","annotations"?,"logprobs"?} or {"type":"refusal","refusal"} */
static int parse_output_part(struct wctx *w, json_t *part, const char *path, const char *t,
                             struct conv_msg *m)
{
    json_t *v, *extra;
    int rc;

    if (!strcmp(t, "refusal")) {
        rc = api_get_req(w->err, part, path, "refusal", API_STRING, &v);
    } else {
        rc = api_get_req(w->err, part, path, "text", API_STRING, &v);
        if (!rc)
            rc = api_get_opt(w->err, part, path, "annotations", API_ARRAY, &extra);
        if (!rc)
            rc = api_get_opt(w->err, part, path, "logprobs", API_ARRAY, &extra);
    }
    if (!rc)
        conv_msg_add_text(m, json_string_value(v), json_string_length(v));
    return rc;
}

static int parse_part(struct wctx *w, json_t *part, const char *path, unsigned allow,
                      struct conv_msg *m)
{
    static const char *const unsupported[] = {"input_file", "input_audio", "input_image", NULL};
    static const char *const outputs[] = {"output_text", "refusal", NULL};
    char tp[PATH_LEN];
    json_t *type, *v;
    const char *t;
    int rc;

    if (!json_is_object(part))
        return api_bad_type(w->err, path, "an object", part);
    rc = api_get_req(w->err, part, path, "type", API_STRING, &type);
    if (rc)
        return rc;
    t = json_string_value(type);
    if ((allow & ALLOW_INPUT) && !strcmp(t, "input_text")) {
        rc = api_get_req(w->err, part, path, "text", API_STRING, &v);
        if (!rc)
            conv_msg_add_text(m, json_string_value(v), json_string_length(v));
        return rc;
    }
    if ((allow & (ALLOW_IMAGE | OMIT_IMAGE)) && !strcmp(t, "input_image"))
        return parse_image(w, part, path, allow, m);
    if ((allow & ALLOW_OUTPUT) && api_one_of(t, outputs))
        return parse_output_part(w, part, path, t, m);
    api_path_key(tp, path, "type");
    if (!(allow & ALLOW_OUTPUT) && api_one_of(t, unsupported))
        return api_bad(w->err, tp, "unsupported_value",
                       "Content part type '%s' in '%s' is not supported by this gateway; "
                       "supported part types here are %s.",
                       t, tp, allowed_list(allow));
    return api_bad_value(w->err, tp, t, allowed_list(allow));
}

/* Content: a string (one text part) or an array of the parts allow permits. */
static int parse_content(struct wctx *w, json_t *content, const char *path, unsigned allow,
                         int may_be_empty, struct conv_msg *m)
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
        return api_bad_type(w->err, path, "one of a string or array of objects", content);
    if (json_array_size(content) == 0 && !may_be_empty)
        return api_empty_array(w->err, path);
    json_array_foreach(content, i, part)
    {
        api_path_idx(pp, path, i);
        rc = parse_part(w, part, pp, allow, m);
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* ---- message items -------------------------------------------------------- */

/* user: a CONV_USER message; it ends the run and the calls' block. */
static int message_user(struct wctx *w, json_t *content, const char *cp)
{
    int rc;

    run_end(w);
    rc = close_calls(w);
    if (rc)
        return rc;
    return parse_content(w, content, cp, ALLOW_INPUT | ALLOW_IMAGE, 0,
                         conv_add_msg(w->conv, CONV_USER));
}

/* system / developer: text only, joined into the system prompt. */
static int message_system(struct wctx *w, json_t *content, const char *cp)
{
    struct conv *tmp = conv_new();
    char *text;
    int rc = parse_content(w, content, cp, ALLOW_INPUT, 1, conv_add_msg(tmp, CONV_USER));

    if (!rc) {
        text = conv_msg_text(&tmp->msgs[0]);
        rc = api_buf_join(&w->system, text, strlen(text));
        if (rc)
            rc = too_large(w, rc, cp, "system prompt");
        free(text);
    }
    conv_free(tmp);
    return rc;
}

/* assistant: its text joins the run's. */
static int message_assistant(struct wctx *w, json_t *content, const char *cp)
{
    struct conv *tmp = conv_new();
    struct conv_msg *m, *parts = conv_add_msg(tmp, CONV_ASSISTANT);
    int rc = parse_content(w, content, cp, ALLOW_OUTPUT, 1, parts);

    if (!rc)
        rc = run_msg(w, &m);
    for (size_t i = 0; !rc && i < parts->nparts; i++) {
        rc = buf_adds(&w->text, parts->parts[i].text);
        if (rc)
            rc = too_large(w, rc, cp, "assistant text");
    }
    if (!rc)
        w->run_text = 1;
    conv_free(tmp);
    return rc;
}

/* {"type":"message","role","content","id"?,"status"?,"phase"?} */
static int item_message(struct wctx *w, json_t *item, const char *path)
{
    static const char *const phases[] = {"commentary", "final_answer", NULL};
    char p[PATH_LEN];
    json_t *role, *content, *phase;
    const char *r;
    int rc = api_get_req(w->err, item, path, "role", API_STRING, &role);

    if (!rc)
        rc = api_get_req(w->err, item, path, "content", API_ANY, &content);
    if (!rc)
        rc = api_get_opt(w->err, item, path, "phase", API_STRING, &phase);
    if (rc)
        return rc;
    r = json_string_value(role);
    if (phase && !api_one_of(json_string_value(phase), phases)) {
        api_path_key(p, path, "phase");
        return api_bad_value(w->err, p, json_string_value(phase),
                             "'commentary' and 'final_answer'");
    }
    api_path_key(p, path, "content");
    if (!strcmp(r, "user"))
        return message_user(w, content, p);
    if (!strcmp(r, "assistant"))
        return message_assistant(w, content, p);
    if (!strcmp(r, "system") || !strcmp(r, "developer"))
        return message_system(w, content, p);
    api_path_key(p, path, "role");
    return api_bad_value(w->err, p, r, "'user', 'assistant', 'system', and 'developer'");
}

/* ---- tool and reasoning items --------------------------------------------- */

/* {"type":"function_call","call_id","name","arguments","id"?,"status"?,"namespace"?} */
static int item_call(struct wctx *w, json_t *item, const char *path)
{
    char p[PATH_LEN];
    json_t *id, *name, *args, *ns;
    struct conv_msg *m;
    const char *ids;
    int rc = api_get_req(w->err, item, path, "call_id", API_STRING, &id);

    if (!rc)
        rc = api_get_req(w->err, item, path, "name", API_STRING, &name);
    if (!rc)
        rc = api_get_req(w->err, item, path, "arguments", API_STRING, &args);
    if (!rc)
        rc = api_get_opt(w->err, item, path, "namespace", API_STRING, &ns);
    if (!rc)
        rc = run_msg(w, &m);
    if (rc)
        return rc;
    ids = json_string_value(id);
    if (w->pairing) {
        if (!w->calls.pending) {
            api_calls_open(&w->calls);
            w->calls.msg = w->run;
        }
        api_path_key(p, path, "call_id");
        if (api_calls_add(&w->calls, ids))
            return api_bad(w->err, p, "invalid_value",
                           "Invalid '%s': duplicate function call id '%.*s'.", p, api_clip(ids),
                           ids);
    }
    conv_msg_add_call(m, ids, json_string_value(name), json_string_value(args));
    return GW_OK;
}

/* A function_call_output answers a call of the run before it. */
static int answer_call(struct wctx *w, const char *id, const char *path)
{
    char p[PATH_LEN];

    switch (w->pairing ? api_calls_answer(&w->calls, id) : API_ANSWER_OK) {
    case API_ANSWER_OK:
        return GW_OK;
    case API_ANSWER_DUPLICATE:
        api_path_key(p, path, "call_id");
        return api_bad(w->err, p, "invalid_value",
                       "Invalid '%s': the function call '%.*s' was already answered by an earlier "
                       "function_call_output.",
                       p, api_clip(id), id);
    case API_ANSWER_NO_BLOCK:
    case API_ANSWER_UNKNOWN:
    default:
        return api_bad(w->err, "input", NULL,
                       "No tool call found for function call output with call_id %.*s.",
                       api_clip(id), id);
    }
}

/* {"type":"function_call_output","call_id","output": string | parts,"id"?,"status"?} */
static int item_output(struct wctx *w, json_t *item, const char *path)
{
    char p[PATH_LEN];
    json_t *id, *output;
    struct conv_msg *m;
    int rc = api_get_req(w->err, item, path, "call_id", API_STRING, &id);

    if (!rc)
        rc = api_get_req(w->err, item, path, "output", API_ANY, &output);
    if (rc)
        return rc;
    run_end(w);
    rc = answer_call(w, json_string_value(id), path);
    if (rc)
        return rc;
    m = conv_add_msg(w->conv, CONV_TOOL);
    m->tool_call_id = xstrdup(json_string_value(id));
    api_path_key(p, path, "output");
    return parse_content(w, output, p, ALLOW_INPUT | OMIT_IMAGE, 1, m);
}

/* summary [{"type":"summary_text","text"}] or content [{"type":"reasoning_text","text"}] */
static int reasoning_texts(struct wctx *w, json_t *arr, const char *path, const char *type,
                           int keep)
{
    char ep[PATH_LEN], tp[PATH_LEN];
    json_t *e, *t, *text;
    size_t i;
    int rc;

    json_array_foreach(arr, i, e)
    {
        api_path_idx(ep, path, i);
        if (!json_is_object(e))
            return api_bad_type(w->err, ep, "an object", e);
        rc = api_get_req(w->err, e, ep, "type", API_STRING, &t);
        if (!rc)
            rc = api_get_req(w->err, e, ep, "text", API_STRING, &text);
        if (rc)
            return rc;
        api_path_key(tp, ep, "type");
        if (strcmp(json_string_value(t), type) != 0) {
            char want[64];
            snprintf(want, sizeof(want), "'%s'", type);
            return api_bad_value(w->err, tp, json_string_value(t), want);
        }
        rc = keep ? api_buf_join(&w->reasoning, json_string_value(text), json_string_length(text))
                  : GW_OK;
        if (rc)
            return too_large(w, rc, ep, "reasoning");
    }
    return GW_OK;
}

/* {"type":"reasoning","summary":[...],"content"?,"encrypted_content"?,"id"?,"status"?} */
static int item_reasoning(struct wctx *w, json_t *item, const char *path)
{
    char p[PATH_LEN];
    json_t *summary, *content, *enc;
    struct conv_msg *m;
    int rc = api_get_req(w->err, item, path, "summary", API_ARRAY, &summary);

    if (!rc)
        rc = api_get_opt(w->err, item, path, "content", API_ARRAY, &content);
    if (!rc)
        rc = api_get_opt(w->err, item, path, "encrypted_content", API_STRING, &enc);
    if (!rc)
        rc = run_msg(w, &m);
    api_path_key(p, path, "summary");
    if (!rc)
        rc = reasoning_texts(w, summary, p, "summary_text", 1);
    api_path_key(p, path, "content");
    if (!rc && content)
        rc = reasoning_texts(w, content, p, "reasoning_text", 0);
    return rc;
}

typedef int (*item_fn)(struct wctx *w, json_t *item, const char *path);

static const struct item_entry {
    const char *type;
    item_fn parse;
} item_types[] = {
    {"message", item_message},
    {"function_call", item_call},
    {"function_call_output", item_output},
    {"reasoning", item_reasoning},
};

static int walk_item(struct wctx *w, json_t *item, const char *path)
{
    char tp[PATH_LEN];
    json_t *type;
    const char *t;
    int rc;

    if (!json_is_object(item))
        return api_bad_type(w->err, path, "an object", item);
    rc = api_get_opt(w->err, item, path, "type", API_STRING, &type);
    if (!rc)
        rc = item_common(w, item, path);
    if (rc)
        return rc;
    t = type ? json_string_value(type) : "message";
    for (size_t i = 0; i < NELEM(item_types); i++)
        if (!strcmp(t, item_types[i].type))
            return item_types[i].parse(w, item, path);
    api_path_key(tp, path, "type");
    if (!strcmp(t, "item_reference"))
        return api_bad(w->err, tp, "unsupported_value",
                       "Item type 'item_reference' in '%s' is not supported by this gateway; send "
                       "the items themselves, or continue with 'previous_response_id'.",
                       tp);
    if (api_one_of(t, foreign_items))
        return api_bad(w->err, tp, "unsupported_value",
                       "Item type '%s' in '%s' is not supported by this gateway: it belongs to a "
                       "tool the gateway does not offer. Supported item types are " ITEM_TYPES ".",
                       t, tp);
    return api_bad_value(w->err, tp, t, ITEM_TYPES);
}

static int walk_items(struct wctx *w, json_t *items, const char *base)
{
    char p[PATH_LEN];
    json_t *item;
    size_t i;
    int rc;

    json_array_foreach(items, i, item)
    {
        api_path_idx(p, base, i);
        rc = walk_item(w, item, p);
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* After the last item: the open run ends and its calls must have had their outputs. */
static int walk_end(struct wctx *w)
{
    run_end(w);
    return w->pairing ? close_calls(w) : GW_OK;
}

/* ---- input normalisation -------------------------------------------------- */

/* 1 if obj["type"] is the string type. */
static int is_type(json_t *obj, const char *type)
{
    const char *t = json_string_value(json_object_get(obj, "type"));

    return t && !strcmp(t, type);
}

/* An item without a type: a message, or an item reference ({"id"} alone). */
static const char *implied_type(json_t *item)
{
    if (!json_object_get(item, "role") && !json_object_get(item, "content") &&
        json_object_get(item, "id"))
        return "item_reference";
    return "message";
}

/* String content becomes one input_text part (output_text for the assistant). */
static void normalise_content(json_t *item)
{
    json_t *content = json_object_get(item, "content");
    const char *role = json_string_value(json_object_get(item, "role"));
    json_t *part;

    if (!json_is_string(content) || !role)
        return;
    if (!strcmp(role, "assistant"))
        part = json_pack("{s:s, s:O, s:[]}", "type", "output_text", "text", content, "annotations");
    else
        part = json_pack("{s:s, s:O}", "type", "input_text", "text", content);
    json_object_set_new(item, "content", json_pack("[o]", part));
}

/* req->input from the request's input (see struct resp_req). */
static json_t *normalise_input(json_t *input)
{
    json_t *items, *item, *type;
    size_t i;

    if (json_is_string(input))
        return json_pack("[{s:s, s:s, s:[{s:s, s:O}]}]", "type", "message", "role", "user",
                         "content", "type", "input_text", "text", input);
    items = json_deep_copy(input);
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item))
            continue;
        type = json_object_get(item, "type");
        if (!type || json_is_null(type))
            json_object_set_new(item, "type", json_string(implied_type(item)));
        if (is_type(item, "message"))
            normalise_content(item);
    }
    return items;
}

/* ---- top-level parameters ------------------------------------------------- */

/* resp_parse() state: the request being filled and the settings echoed back. */
struct pctx {
    struct resp_req *req;
    struct gw_err *err;
    json_t *echo;
};

static int parse_model(struct pctx *x, json_t *root)
{
    return api_get_model(x->err, root, &x->req->model);
}

/* The request's items, normalised, then checked (without pairing) into a scratch conversation. */
static int parse_input(struct pctx *x, json_t *root)
{
    struct wctx w;
    json_t *v;
    int rc = api_get_req(x->err, root, "", "input", API_ANY, &v);

    if (rc)
        return rc;
    if (!json_is_string(v) && !json_is_array(v))
        return api_bad_type(x->err, "input", "one of a string or array of input items", v);
    if (json_is_array(v) && json_array_size(v) == 0)
        return api_empty_array(x->err, "input");
    x->req->input = normalise_input(v);
    wctx_init(&w, x->err, 0);
    rc = walk_items(&w, x->req->input, "input");
    if (!rc)
        rc = walk_end(&w);
    wctx_release(&w);
    return rc;
}

static int parse_instructions(struct pctx *x, json_t *root)
{
    json_t *v;
    int rc = api_get_opt(x->err, root, "", "instructions", API_STRING, &v);

    if (!rc && v) {
        x->req->instructions = xstrdup(json_string_value(v));
        json_object_set(x->echo, "instructions", v);
    }
    return rc;
}

/* Tool types accepted and not offered: hosted tools, and client tools the runtime cannot run. */
/* clang-format off */
static const char *const other_tools[] = {
    "custom", "namespace", "web_search", "web_search_preview", "web_search_preview_2025_03_11",
    "web_search_2025_08_26", "file_search", "code_interpreter", "image_generation", "computer",
    "computer_use_preview", "mcp", "local_shell", "shell", "apply_patch", "tool_search",
    "programmatic_tool_calling", NULL};
/* clang-format on */

#define TOOL_TYPES                                                                                 \
    "'function', 'custom', 'namespace', 'web_search', 'web_search_preview', 'file_search', "       \
    "'code_interpreter', 'image_generation', 'computer_use_preview', 'mcp', 'local_shell', "       \
    "'shell', and 'apply_patch'"

/* {"type":"function","name","description"?,"parameters"?,"strict"?}; others are not offered. */
static int parse_tool(void *ctx, json_t *tool, const char *base, json_t *names)
{
    struct pctx *x = ctx;
    char p[PATH_LEN];
    json_t *type;
    const char *n;
    int rc;

    if (!json_is_object(tool))
        return api_bad_type(x->err, base, "an object", tool);
    rc = api_get_req(x->err, tool, base, "type", API_STRING, &type);
    if (rc)
        return rc;
    n = json_string_value(type);
    api_path_key(p, base, "type");
    if (api_one_of(n, other_tools))
        return GW_OK;
    if (strcmp(n, "function") != 0)
        return api_bad_value(x->err, p, n, TOOL_TYPES);
    return api_function(x->err, tool, base, names, NULL, NULL, NULL);
}

static int parse_tools(struct pctx *x, json_t *root)
{
    json_t *tools;
    int rc = api_walk_tools(x->err, root, &tools, parse_tool, x);

    if (!rc && tools) {
        x->req->tools = json_incref(tools);
        json_object_set(x->echo, "tools", tools);
    }
    return rc;
}

/*
 * "none" | "auto" | "required" | {"type":"function","name"} |
 * {"type":"allowed_tools",...} | {"type":<hosted tool>}.  As in api/chat.c,
 * the runtime never forces a tool call: "auto" is what it does, "none"
 * declares no tools, and the rest is refused.
 */
static int parse_tool_choice(struct pctx *x, json_t *root)
{
    json_t *tc, *type, *name;
    const char *s;
    int none, rc = api_get_opt(x->err, root, "", "tool_choice", API_ANY, &tc);

    if (rc || !tc)
        return rc;
    if (json_is_string(tc)) {
        rc = api_tool_choice_mode(x->err, json_string_value(tc), &none);
        if (rc)
            return rc;
        if (none) {
            json_decref(x->req->tools);
            x->req->tools = NULL;
        }
        json_object_set(x->echo, "tool_choice", tc);
        return GW_OK;
    }
    if (!json_is_object(tc))
        return api_bad_type(x->err, "tool_choice", "one of a string or object", tc);
    rc = api_get_req(x->err, tc, "tool_choice", "type", API_STRING, &type);
    if (rc)
        return rc;
    s = json_string_value(type);
    if (!strcmp(s, "function") || !strcmp(s, "custom")) {
        rc = api_get_req(x->err, tc, "tool_choice", "name", API_STRING, &name);
        if (rc)
            return rc;
        return api_bad(x->err, "tool_choice", "unsupported_value",
                       "tool_choice naming %s '%.*s' is not supported: " API_NO_FORCING ".",
                       !strcmp(s, "function") ? "function" : "tool",
                       api_clip(json_string_value(name)), json_string_value(name));
    }
    return api_bad(x->err, "tool_choice", "unsupported_value",
                   "tool_choice of type '%.*s' is not supported: " API_NO_FORCING ".", api_clip(s),
                   s);
}

/* {"effort"?,"summary"?,"generate_summary"?}: effort mapped, summary turns summaries on. */
static int parse_reasoning(struct pctx *x, json_t *root)
{
    static const char *const summaries[] = {"auto", "concise", "detailed", NULL};
    static const char *const keys[] = {"summary", "generate_summary"};
    json_t *r, *effort, *sum, *echo;
    const char *mapped;
    int rc = api_get_opt(x->err, root, "", "reasoning", API_OBJECT, &r);

    if (!rc && r)
        rc = api_get_opt(x->err, r, "reasoning", "effort", API_STRING, &effort);
    if (rc || !r)
        return rc;
    echo = json_object_get(x->echo, "reasoning");
    if (effort) {
        if (!api_effort(json_string_value(effort), &mapped))
            return api_bad_value(x->err, "reasoning.effort", json_string_value(effort),
                                 API_EFFORTS);
        x->req->reasoning_effort = xstrdup(mapped);
        json_object_set(echo, "effort", effort);
    }
    for (size_t i = 0; i < NELEM(keys); i++) {
        char p[PATH_LEN];
        const char *s;

        rc = api_get_opt(x->err, r, "reasoning", keys[i], API_STRING, &sum);
        if (rc)
            return rc;
        if (!sum)
            continue;
        s = json_string_value(sum);
        api_path_key(p, "reasoning", keys[i]);
        if (!strcmp(s, "none")) /* Codex's "no summaries", as null */
            continue;
        if (!api_one_of(s, summaries))
            return api_bad_value(x->err, p, s, "'auto', 'concise', and 'detailed'");
        x->req->summary = 1;
        json_object_set(echo, "summary", sum);
    }
    return GW_OK;
}

/* text: {"format"?: {"type":"text"|"json_object"|"json_schema",...}, "verbosity"?} */
static int parse_text(struct pctx *x, json_t *root)
{
    static const char *const verbosities[] = {"low", "medium", "high", NULL};
    json_t *text, *format, *type, *verb, *echo;
    const char *t;
    int rc = api_get_opt(x->err, root, "", "text", API_OBJECT, &text);

    if (!rc && text)
        rc = api_get_opt(x->err, text, "text", "format", API_OBJECT, &format);
    if (!rc && text)
        rc = api_get_opt(x->err, text, "text", "verbosity", API_STRING, &verb);
    if (rc || !text)
        return rc;
    echo = json_object_get(x->echo, "text");
    if (verb && !api_one_of(json_string_value(verb), verbosities))
        return api_bad_value(x->err, "text.verbosity", json_string_value(verb),
                             "'low', 'medium', and 'high'");
    if (verb)
        json_object_set(echo, "verbosity", verb);
    if (!format)
        return GW_OK;
    rc = api_get_req(x->err, format, "text.format", "type", API_STRING, &type);
    if (rc)
        return rc;
    t = json_string_value(type);
    if (!strcmp(t, "json_schema"))
        rc = api_json_schema(x->err, format, "text.format", 1, &x->req->response_format);
    else if (!strcmp(t, "json_object"))
        x->req->response_format = api_json_object_format();
    else if (strcmp(t, "text") != 0)
        return api_bad_value(x->err, "text.format.type", t,
                             "'text', 'json_object', and 'json_schema'");
    if (!rc)
        json_object_set(echo, "format", format);
    return rc;
}

/* stream, store, background, parallel_tool_calls, stream_options. */
static int parse_flags(struct pctx *x, json_t *root)
{
    static const char *const names[] = {"stream", "store", "background", "parallel_tool_calls"};
    json_t *v[NELEM(names)], *so, *obf;
    int rc = GW_OK;

    for (size_t i = 0; i < NELEM(names) && !rc; i++)
        rc = api_get_opt(x->err, root, "", names[i], API_BOOL, &v[i]);
    if (!rc)
        rc = api_get_opt(x->err, root, "", "stream_options", API_OBJECT, &so);
    if (rc)
        return rc;
    x->req->stream = json_is_true(v[0]);
    x->req->store = !json_is_false(v[1]);
    x->req->background = json_is_true(v[2]);
    for (size_t i = 1; i < NELEM(names); i++)
        if (v[i])
            json_object_set(x->echo, names[i], v[i]);
    if (so && !x->req->stream)
        return api_bad(x->err, "stream_options", "invalid_value",
                       "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
    if (so)
        rc = api_get_opt(x->err, so, "stream_options", "include_obfuscation", API_BOOL, &obf);
    if (rc || !x->req->background)
        return rc;
    if (x->req->stream)
        return api_bad(x->err, "background", "unsupported_value",
                       "Unsupported value: 'background' responses cannot be streamed by this "
                       "gateway; create the response in the background and retrieve it with GET "
                       "/v1/responses/{response_id}, or stream it in the foreground.");
    if (!x->req->store)
        return api_bad(x->err, "background", "invalid_value",
                       "Invalid value for 'background': background responses must be stored; "
                       "set 'store' to true.");
    return GW_OK;
}

/* Up to 16 string values under keys of at most 64 characters, each at most 512 long. */
static int parse_metadata(struct pctx *x, json_t *root)
{
    char p[PATH_LEN];
    const char *key;
    json_t *md, *v;
    int rc = api_get_opt(x->err, root, "", "metadata", API_OBJECT, &md);

    if (rc || !md)
        return rc;
    if (json_object_size(md) > METADATA_MAX_KEYS)
        return api_bad(x->err, "metadata", "object_above_max_properties",
                       "Invalid 'metadata': too many properties. Expected an object with at most "
                       "%d properties, but got an object with %zu properties instead.",
                       METADATA_MAX_KEYS, json_object_size(md));
    json_object_foreach(md, key, v)
    {
        api_path_key(p, "metadata", key);
        if (strlen(key) > METADATA_MAX_KEY)
            return api_bad(x->err, "metadata", "invalid_value",
                           "Invalid 'metadata': key '%.*s' is too long. Expected keys with "
                           "maximum length %d, but got a key with length %zu instead.",
                           api_clip(key), key, METADATA_MAX_KEY, strlen(key));
        if (!json_is_string(v))
            return api_bad_type(x->err, p, "a string", v);
        if (json_string_length(v) > METADATA_MAX_VALUE)
            return api_bad(x->err, p, "string_above_max_length",
                           "Invalid '%s': string too long. Expected a string with maximum length "
                           "%d, but got a string with length %zu instead.",
                           p, METADATA_MAX_VALUE, json_string_length(v));
    }
    json_object_set(x->echo, "metadata", md);
    return GW_OK;
}

static int parse_previous(struct pctx *x, json_t *root)
{
    json_t *v;
    const char *s;
    int rc = api_get_opt(x->err, root, "", "previous_response_id", API_STRING, &v);

    if (rc || !v)
        return rc;
    s = json_string_value(v);
    if (strncmp(s, "resp", 4) != 0)
        return api_bad(x->err, "previous_response_id", "invalid_value",
                       "Invalid 'previous_response_id': '%.*s'. Expected an ID that begins with "
                       "'resp'.",
                       api_clip(s), s);
    x->req->previous_response_id = xstrdup(s);
    json_object_set(x->echo, "previous_response_id", v);
    return GW_OK;
}

/* Reusable prompts and the Conversations API need OpenAI's storage: refused. */
static int parse_unsupported(struct pctx *x, json_t *root)
{
    json_t *v;
    int rc = api_get_opt(x->err, root, "", "prompt", API_ANY, &v);

    if (!rc && v)
        return api_bad(x->err, "prompt", "unsupported_parameter",
                       "Unsupported parameter: 'prompt' (reusable prompts) is not supported by "
                       "this gateway; send 'instructions' and 'input' instead.");
    rc = api_get_opt(x->err, root, "", "conversation", API_ANY, &v);
    if (!rc && v)
        return api_bad(x->err, "conversation", "unsupported_parameter",
                       "Unsupported parameter: 'conversation' (the Conversations API) is not "
                       "supported by this gateway; continue with 'previous_response_id' or send "
                       "the whole conversation in 'input'.");
    return rc;
}

#define PLAIN API_CHECK_PLAIN
#define BOTH (API_LO | API_HI)

/* Accepted, checked like OpenAI, not applied; those in echoed[] are repeated in the response. */
static const struct api_param knobs[] = {
    {"temperature", API_NUMBER, PLAIN, BOTH, 0, 2},
    {"top_p", API_NUMBER, PLAIN, BOTH, 0, 1},
    {"max_output_tokens", API_INT, PLAIN, API_LO, 16, 0},
    {"top_logprobs", API_INT, PLAIN, BOTH, 0, 20},
    {"max_tool_calls", API_INT, PLAIN, API_LO, 1, 0},
    {"truncation", API_STRING, PLAIN, 0, 0, 0},
    {"user", API_STRING, PLAIN, 0, 0, 0},
    {"prompt_cache_key", API_STRING, PLAIN, 0, 0, 0},
    {"prompt_cache_retention", API_STRING, PLAIN, 0, 0, 0},
    {"safety_identifier", API_STRING, PLAIN, 0, 0, 0},
    {"service_tier", API_STRING, PLAIN, 0, 0, 0},
    {"include", API_ARRAY, API_CHECK_STRINGS, 0, 0, 0},
};

static const char *const echoed[] = {
    "temperature", "top_p", "max_output_tokens", "top_logprobs",      "max_tool_calls",
    "truncation",  "user",  "prompt_cache_key",  "safety_identifier", "service_tier",
};

static int parse_knobs(struct pctx *x, json_t *root)
{
    static const char *const truncations[] = {"auto", "disabled", NULL};
    json_t *v;
    int rc = api_check_params(x->err, root, knobs, NELEM(knobs));

    if (rc)
        return rc;
    v = json_object_get(root, "truncation");
    if (json_is_string(v) && !api_one_of(json_string_value(v), truncations))
        return api_bad_value(x->err, "truncation", json_string_value(v), "'auto' and 'disabled'");
    for (size_t i = 0; i < NELEM(echoed); i++) {
        v = json_object_get(root, echoed[i]);
        if (v && !json_is_null(v))
            json_object_set(x->echo, echoed[i], v);
    }
    return GW_OK;
}

/* The settings a response object repeats, with OpenAI's defaults. */
static json_t *echo_defaults(void)
{
    return json_pack("{s:b, s:n, s:n, s:n, s:b, s:n, s:n, s:{s:n, s:n}, s:n, s:s, s:b, s:f, "
                     "s:{s:{s:s}, s:s}, s:s, s:[], s:i, s:f, s:s, s:n, s:{}}",
                     "background", 0, "instructions", "max_output_tokens", "max_tool_calls",
                     "parallel_tool_calls", 1, "previous_response_id", "prompt_cache_key",
                     "reasoning", "effort", "summary", "safety_identifier", "service_tier",
                     "default", "store", 1, "temperature", 1.0, "text", "format", "type", "text",
                     "verbosity", "medium", "tool_choice", "auto", "tools", "top_logprobs", 0,
                     "top_p", 1.0, "truncation", "disabled", "user", "metadata");
}

/* ---- resp_parse ----------------------------------------------------------- */

typedef int (*step_fn)(struct pctx *x, json_t *root);

/* Order matters only where a step reads an earlier one's result (tool_choice needs tools). */
static const step_fn steps[] = {
    parse_model,       parse_input,     parse_instructions, parse_tools,
    parse_tool_choice, parse_reasoning, parse_text,         parse_flags,
    parse_metadata,    parse_previous,  parse_unsupported,  parse_knobs,
};

int resp_parse(const char *body, size_t len, struct resp_req *req, struct gw_err *err)
{
    struct pctx x;
    json_t *root;
    int rc = GW_OK;

    memset(req, 0, sizeof(*req));
    root = api_openai_body(body, len, err);
    if (!root)
        return GW_EINVAL;
    req->store = 1;
    req->echo = echo_defaults();
    x.req = req;
    x.err = err;
    x.echo = req->echo;
    for (size_t i = 0; i < NELEM(steps) && !rc; i++)
        rc = steps[i](&x, root);
    if (rc)
        resp_req_release(req);
    json_decref(root);
    return rc;
}

void resp_req_release(struct resp_req *req)
{
    if (!req)
        return;
    free(req->model);
    free(req->previous_response_id);
    free(req->instructions);
    free(req->reasoning_effort);
    json_decref(req->input);
    json_decref(req->echo);
    json_decref(req->tools);
    json_decref(req->response_format);
    memset(req, 0, sizeof(*req));
}

/* ---- resp_conv ------------------------------------------------------------ */

/* The function tools of req, declared to the model. */
static void add_tools(struct conv *c, json_t *tools)
{
    json_t *t, *params;
    size_t i;

    json_array_foreach(tools, i, t)
    {
        if (!is_type(t, "function"))
            continue;
        params = json_object_get(t, "parameters");
        conv_add_tool(c, json_string_value(json_object_get(t, "name")),
                      json_string_value(json_object_get(t, "description")),
                      json_is_object(params) ? json_incref(params) : NULL);
    }
}

/* Stored items are ours and were checked when stored: one that fails is a broken store. */
static int prior_failed(struct gw_err *err)
{
    char msg[sizeof(err->msg)];

    if (!err || !strcmp(err->param, "input"))
        return GW_EINVAL; /* a pairing error is the client's */
    snprintf(msg, sizeof(msg), "%s", err->msg);
    return gw_err_param(err, GW_EINVAL, "previous_response_id",
                        "The stored conversation of 'previous_response_id' cannot be continued: "
                        "%s",
                        msg);
}

int resp_conv(const struct resp_req *req, const json_t *prior, struct conv **out,
              struct gw_err *err)
{
    struct wctx w;
    struct conv *c;
    int rc = GW_OK;

    *out = NULL;
    wctx_init(&w, err, 1);
    c = w.conv;
    c->model = xstrdup(req->model);
    if (req->instructions)
        rc = api_buf_join(&w.system, req->instructions, strlen(req->instructions));
    if (rc)
        rc = too_large(&w, rc, "instructions", "system prompt");
    if (!rc && prior) {
        rc = walk_items(&w, (json_t *)prior, "input");
        if (rc == GW_EINVAL)
            rc = prior_failed(err);
    }
    if (!rc)
        rc = walk_items(&w, req->input, "input");
    if (!rc)
        rc = walk_end(&w);
    if (!rc && c->nmsgs == 0)
        rc = api_bad(err, "input", NULL,
                     "Invalid 'input': it holds only system and developer messages; add a user "
                     "message.");
    if (!rc) {
        if (w.system.len)
            c->system = buf_take(&w.system, NULL);
        add_tools(c, req->tools);
        c->reasoning_effort = xstrdup(req->reasoning_effort);
        c->response_format = json_deep_copy(req->response_format);
        c->stream = req->stream;
        *out = c;
        w.conv = NULL;
    }
    wctx_release(&w);
    return rc;
}
