/*
 * Anthropic Messages: validate a request into a canonical conversation, and
 * build message objects, SSE events and errors in Anthropic's shape.
 *
 * Like api/chat.c, validation walks the request with typed getters so each
 * error names its exact path.  Anthropic's errors read "<path>: <text>" with
 * dotted paths ("messages.1.content.0.type: ..."); err->param holds the path
 * and err->msg the whole line.  Paths are those of the request JSON itself,
 * without the union tags Anthropic's validator sometimes inserts
 * ("...content.0.image.source.base64.data").
 *
 * Mapping decisions (see also api/messages.h):
 * - The system prompt is the top-level "system" (a string or text blocks)
 *   followed by the text of any role "system" entries in "messages" (Claude
 *   Code sends those), every non-empty piece joined with "\n\n", the way
 *   api/chat.c joins system messages.
 * - A user message's tool_result blocks (which must come first) become
 *   CONV_TOOL messages in block order; its other blocks become one CONV_USER
 *   message after them.  Images inside tool results become the text
 *   "[image omitted]": the runtime takes tool results as text.
 * - Text documents become a text part "[document: <title>]\n<text>"; PDFs are
 *   refused (the runtime takes no PDF input).
 * - An empty final assistant message (a prefill of nothing) is dropped.
 * - Server tools (tools with a "type" other than "custom"), tool_choice
 *   "any"/"tool" and MCP servers are refused with a 400 rather than
 *   silently ignored; "none" is honoured by validating the tools but not
 *   declaring them.
 * - thinking.budget_tokens is not checked against max_tokens: with
 *   interleaved thinking Anthropic lets the budget exceed it.
 */
#include "api/messages.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "util/xmalloc.h"

#define PATH_LEN 160
#define MSG_LEN sizeof(((struct gw_err *)0)->msg)
#define TEXT_MAX (SIZE_MAX / 2) /* the request body cap is the real limit */
#define USER_ID_MAX 256
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define NOT_JSON                                                                                   \
    "There was an error parsing the body of your request: expected a single JSON object with "     \
    "no duplicate keys"
#define FILES_API "file sources (the Files API) are not supported by this gateway"
#define BLOCK_TAGS                                                                                 \
    "'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"

/* Parse state: the conversation being built and the tool_use ids to answer. */
struct mctx {
    struct conv *conv;
    struct msg_opts *opts;
    struct gw_err *err;
    struct buf system;
    int tools_none;         /* tool_choice none: validate the tools, declare none */
    size_t nreq;            /* messages in the request */
    struct api_calls calls; /* the tool_use ids of the last assistant message, to be answered */
};

/* Pydantic's words for the kinds of enum api_kind, in its order. */
static const char *const kind_text[] = {"a valid string",  "a valid integer",    "a valid number",
                                        "a valid boolean", "a valid dictionary", "a valid list",
                                        "a value"};

/* Anthropic block types that need a server-side feature this gateway has not. */
static const char *const server_blocks[] = {"search_result",
                                            "container_upload",
                                            "server_tool_use",
                                            "web_search_tool_result",
                                            "web_fetch_tool_result",
                                            "code_execution_tool_result",
                                            "bash_code_execution_tool_result",
                                            "text_editor_code_execution_tool_result",
                                            "tool_search_tool_result",
                                            "mcp_tool_use",
                                            "mcp_tool_result",
                                            NULL};

/* ---- errors and paths ----------------------------------------------------- */

static void pathf(char *out, const char *fmt, ...) PRINTF(2, 3);

static void pathf(char *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(out, PATH_LEN, fmt, ap) < 0)
        out[0] = '\0';
    va_end(ap);
}

static int bad(struct mctx *x, const char *path, const char *fmt, ...) PRINTF(3, 4);

/* Fails with a 400: err->msg "<path>: <text>", err->param the path. */
static int bad(struct mctx *x, const char *path, const char *fmt, ...)
{
    char text[MSG_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (!*path)
        return gw_err_param(x->err, GW_EINVAL, NULL, "%s", text);
    return gw_err_param(x->err, GW_EINVAL, path, "%s: %s", path, text);
}

static int bad_kind(struct mctx *x, const char *path, enum api_kind k)
{
    return bad(x, path, "Input should be %s", kind_text[k]);
}

/* An unknown "type" of a tagged union (content block, source, tool_choice...). */
static int bad_tag(struct mctx *x, const char *base, const char *tag, const char *expected)
{
    char p[PATH_LEN];

    pathf(p, "%s.type", base);
    return bad(x, p,
               "Input tag '%.*s' found using 'type' does not match any of the expected tags: %s",
               api_clip(tag), tag, expected);
}

/* ---- typed getters -------------------------------------------------------- */

/*
 * obj[key] (borrowed) into *out, checked against k.  An optional member that
 * is absent or null gives *out = NULL; a required one that is absent fails
 * with "Field required", a required null with a type error (API_ANY lets
 * null through for the caller to judge).  base is the path of obj.
 */
static int get(struct mctx *x, json_t *obj, const char *base, const char *key, enum api_kind k,
               int required, json_t **out)
{
    char p[PATH_LEN];
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    pathf(p, "%s%s%s", base, *base ? "." : "", key);
    if (!v || (json_is_null(v) && !required)) {
        if (!required)
            return GW_OK;
        return bad(x, p, "Field required");
    }
    if (!api_kind_ok(v, k))
        return bad_kind(x, p, k);
    *out = v;
    return GW_OK;
}

static int get_req(struct mctx *x, json_t *obj, const char *base, const char *key, enum api_kind k,
                   json_t **out)
{
    return get(x, obj, base, key, k, 1, out);
}

static int get_opt(struct mctx *x, json_t *obj, const char *base, const char *key, enum api_kind k,
                   json_t **out)
{
    return get(x, obj, base, key, k, 0, out);
}

/* A required string member that must be one of set; expected lists it for the error. */
static int get_enum(struct mctx *x, json_t *obj, const char *base, const char *key,
                    const char *const *set, const char *expected, const char **out)
{
    char p[PATH_LEN];
    json_t *v;
    int rc = get_req(x, obj, base, key, API_STRING, &v);

    if (rc)
        return rc;
    *out = json_string_value(v);
    if (api_one_of(*out, set))
        return GW_OK;
    pathf(p, "%s.%s", base, key);
    return bad(x, p, "Input should be %s", expected);
}

/*
 * A content block: an object with a string "type" (into *type), and an
 * optional cache_control object, accepted on every block and ignored (the
 * runtime manages its own prompt cache).
 */
static int get_block(struct mctx *x, json_t *blk, const char *path, const char **type)
{
    json_t *t, *cc;
    int rc;

    if (!json_is_object(blk))
        return bad_kind(x, path, API_OBJECT);
    rc = get_req(x, blk, path, "type", API_STRING, &t);
    if (!rc)
        rc = get_opt(x, blk, path, "cache_control", API_OBJECT, &cc);
    if (!rc)
        *type = json_string_value(t);
    return rc;
}

/* ---- images and documents ------------------------------------------------- */

/* Decodes base64 that api_is_base64() accepted (either alphabet). */
static char *b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s), o = 0;
    char *out = xmalloc(n / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;

    for (; *s && *s != '='; s++) {
        char c = *s;
        uint32_t v = c >= 'A' && c <= 'Z'   ? (uint32_t)(c - 'A')
                     : c >= 'a' && c <= 'z' ? (uint32_t)(c - 'a' + 26)
                     : c >= '0' && c <= '9' ? (uint32_t)(c - '0' + 52)
                     : c == '+' || c == '-' ? 62
                                            : 63;
        acc = ((acc << 6) | v) & 0xFFFFFF;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

/*
 * {"type":"image","source":{"type":"base64","media_type","data"} |
 * {"type":"url","url"}}.  With omit (inside a tool result) the image is
 * validated but stands in the text as "[image omitted]".
 */
static int parse_image(struct mctx *x, json_t *blk, const char *path, struct conv_msg *m, int omit)
{
    static const char *const types[] = {"image/jpeg", "image/png", "image/gif", "image/webp", NULL};
    char sp[PATH_LEN], p[PATH_LEN];
    json_t *src, *t, *v;
    const char *mime;
    int rc = get_req(x, blk, path, "source", API_OBJECT, &src);

    pathf(sp, "%s.source", path);
    if (!rc)
        rc = get_req(x, src, sp, "type", API_STRING, &t);
    if (rc)
        return rc;
    if (!strcmp(json_string_value(t), "base64")) {
        rc = get_enum(x, src, sp, "media_type", types,
                      "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", &mime);
        if (!rc)
            rc = get_req(x, src, sp, "data", API_STRING, &v);
        if (rc)
            return rc;
        pathf(p, "%s.data", sp);
        if (!api_is_base64(json_string_value(v)))
            return bad(x, p, "The image data is not valid base64");
        if (!omit)
            conv_msg_add_image(m, mime, json_string_value(v), NULL);
    } else if (!strcmp(json_string_value(t), "url")) {
        rc = get_req(x, src, sp, "url", API_STRING, &v);
        if (rc)
            return rc;
        pathf(p, "%s.url", sp);
        if (!api_is_http_url(json_string_value(v)))
            return bad(x, p, "Input should be an http or https URL");
        if (!omit)
            conv_msg_add_image(m, NULL, NULL, json_string_value(v));
    } else if (!strcmp(json_string_value(t), "file")) {
        pathf(p, "%s.type", sp);
        return bad(x, p, FILES_API);
    } else {
        return bad_tag(x, sp, json_string_value(t), "'base64', 'url'");
    }
    if (omit)
        conv_msg_add_text(m, "[image omitted]", 15);
    return GW_OK;
}

/* Adds "[document: <title>]\n<text>" as one text part. */
static int add_doc_text(struct mctx *x, struct conv_msg *m, const char *title, const char *text,
                        size_t n, const char *path)
{
    struct buf b;
    int rc;

    buf_init(&b, TEXT_MAX);
    rc = buf_addf(&b, "[document: %s]\n", title);
    if (!rc)
        rc = buf_add(&b, text, n);
    if (rc)
        return gw_err_param(x->err, rc, path, "%s: the document is too large", path);
    conv_msg_add_text(m, b.ptr, b.len);
    buf_release(&b);
    return GW_OK;
}

/* {"type":"base64","media_type":"text/plain"|"application/pdf","data"} */
static int doc_base64(struct mctx *x, json_t *src, const char *sp, const char *title,
                      struct conv_msg *m)
{
    static const char *const types[] = {"application/pdf", "text/plain", NULL};
    char p[PATH_LEN];
    const char *mime;
    json_t *data, *check;
    char *text;
    size_t n;
    int rc = get_enum(x, src, sp, "media_type", types, "'application/pdf' or 'text/plain'", &mime);

    if (!rc)
        rc = get_req(x, src, sp, "data", API_STRING, &data);
    if (rc)
        return rc;
    pathf(p, "%s.media_type", sp);
    if (!strcmp(mime, "application/pdf"))
        return bad(x, p,
                   "PDF documents are not supported by this gateway (the Copilot runtime takes "
                   "no PDF input); send the document's text instead");
    pathf(p, "%s.data", sp);
    if (!api_is_base64(json_string_value(data)))
        return bad(x, p, "The document data is not valid base64");
    text = b64_decode(json_string_value(data), &n);
    check = json_stringn(text, n); /* jansson's UTF-8 validation */
    rc = check ? add_doc_text(x, m, title, text, n, p)
               : bad(x, p, "The document data is not valid UTF-8 text");
    json_decref(check);
    free(text);
    return rc;
}

/* {"type":"content","content": string | [text and image blocks]} */
static int doc_content(struct mctx *x, json_t *src, const char *sp, const char *title,
                       struct conv_msg *m)
{
    char cp[PATH_LEN], bp[PATH_LEN];
    json_t *content, *blk, *text;
    const char *t;
    size_t i;
    int rc = get_req(x, src, sp, "content", API_ANY, &content);

    pathf(cp, "%s.content", sp);
    if (rc || json_is_string(content))
        return rc ? rc
                  : add_doc_text(x, m, title, json_string_value(content),
                                 json_string_length(content), cp);
    if (!json_is_array(content))
        return bad(x, cp, "Input should be a valid string or a list of content blocks");
    rc = add_doc_text(x, m, title, "", 0, cp);
    if (rc)
        return rc;
    json_array_foreach(content, i, blk)
    {
        pathf(bp, "%s.%zu", cp, i);
        rc = get_block(x, blk, bp, &t);
        if (!rc && !strcmp(t, "text")) {
            rc = get_req(x, blk, bp, "text", API_STRING, &text);
            if (!rc)
                conv_msg_add_text(m, json_string_value(text), json_string_length(text));
        } else if (!rc && !strcmp(t, "image")) {
            rc = parse_image(x, blk, bp, m, 0);
        } else if (!rc) {
            rc = bad_tag(x, bp, t, "'text', 'image'");
        }
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* {"type":"document","source":{...},"title"?,"context"?,"citations"?} */
static int parse_document(struct mctx *x, json_t *blk, const char *path, struct conv_msg *m)
{
    char sp[PATH_LEN], p[PATH_LEN];
    json_t *src, *t, *title, *context, *citations, *data;
    const char *type, *mime, *name;
    int rc = get_req(x, blk, path, "source", API_OBJECT, &src);

    if (!rc)
        rc = get_opt(x, blk, path, "title", API_STRING, &title);
    if (!rc)
        rc = get_opt(x, blk, path, "context", API_STRING, &context);
    if (!rc)
        rc = get_opt(x, blk, path, "citations", API_OBJECT, &citations);
    pathf(sp, "%s.source", path);
    if (!rc)
        rc = get_req(x, src, sp, "type", API_STRING, &t);
    if (rc)
        return rc;
    type = json_string_value(t);
    name = title && json_string_length(title) ? json_string_value(title) : "document";
    pathf(p, "%s.type", sp);
    if (!strcmp(type, "text")) {
        static const char *const plain[] = {"text/plain", NULL};
        rc = get_enum(x, src, sp, "media_type", plain, "'text/plain'", &mime);
        if (!rc)
            rc = get_req(x, src, sp, "data", API_STRING, &data);
        pathf(p, "%s.data", sp);
        return rc ? rc
                  : add_doc_text(x, m, name, json_string_value(data), json_string_length(data), p);
    }
    if (!strcmp(type, "base64"))
        return doc_base64(x, src, sp, name, m);
    if (!strcmp(type, "content"))
        return doc_content(x, src, sp, name, m);
    if (!strcmp(type, "url"))
        return bad(x, p, "documents by URL (PDF) are not supported by this gateway");
    if (!strcmp(type, "file"))
        return bad(x, p, FILES_API);
    return bad_tag(x, sp, type, "'base64', 'text', 'content', 'url', 'file'");
}

/* ---- content blocks ------------------------------------------------------- */

/* A block type that exists but not here: wrong role, server-side, or unknown. */
static int bad_block(struct mctx *x, const char *path, const char *t, enum conv_role role)
{
    static const char *const assistant_only[] = {"tool_use", "thinking", "redacted_thinking", NULL};
    static const char *const user_only[] = {"tool_result", "image", "document", NULL};
    char p[PATH_LEN];

    if (role == CONV_USER && api_one_of(t, assistant_only))
        return bad(x, path, "`%s` blocks can only be in `assistant` messages", t);
    if (role == CONV_ASSISTANT && api_one_of(t, user_only))
        return bad(x, path, "`%s` blocks can only be in `user` messages", t);
    pathf(p, "%s.type", path);
    if (api_one_of(t, server_blocks))
        return bad(x, p, "content blocks of type '%s' are not supported by this gateway", t);
    return bad_tag(x, path, t, BLOCK_TAGS);
}

static int parse_text_block(struct mctx *x, json_t *blk, const char *path, struct conv_msg *m)
{
    json_t *text, *citations;
    int rc = get_req(x, blk, path, "text", API_STRING, &text);

    if (!rc)
        rc = get_opt(x, blk, path, "citations", API_ARRAY, &citations);
    if (!rc)
        conv_msg_add_text(m, json_string_value(text), json_string_length(text));
    return rc;
}

/*
 * A message's content must be a string or a list, non-empty except for the
 * final assistant message (may_be_empty).  *empty tells the caller.
 */
static int check_content(struct mctx *x, json_t *content, const char *base, int may_be_empty,
                         int *empty)
{
    char p[PATH_LEN];

    pathf(p, "%s.content", base);
    if (!json_is_string(content) && !json_is_array(content))
        return bad(x, p, "Input should be a valid string or a list of content blocks");
    *empty =
        json_is_string(content) ? json_string_length(content) == 0 : json_array_size(content) == 0;
    if (*empty && !may_be_empty)
        return bad(x, base,
                   "all messages must have non-empty content except for the optional final "
                   "assistant message");
    return GW_OK;
}

/* ---- system --------------------------------------------------------------- */

static int system_append(struct mctx *x, const char *text, size_t n, const char *path)
{
    int rc = api_buf_join(&x->system, text, n);

    if (rc)
        return gw_err_param(x->err, rc, path, "%s: the system prompt is too large", path);
    return GW_OK;
}

/* A system prompt: a string or a list of text blocks, each appended to conv->system. */
static int parse_system_value(struct mctx *x, json_t *v, const char *path)
{
    static const char *const text_only[] = {"text", NULL};
    char bp[PATH_LEN];
    json_t *blk, *text;
    const char *t;
    size_t i;
    int rc;

    if (json_is_string(v))
        return system_append(x, json_string_value(v), json_string_length(v), path);
    if (!json_is_array(v))
        return bad(x, path, "Input should be a valid string or a list of text blocks");
    json_array_foreach(v, i, blk)
    {
        pathf(bp, "%s.%zu", path, i);
        rc = get_block(x, blk, bp, &t);
        if (!rc && !api_one_of(t, text_only))
            rc = bad_tag(x, bp, t, "'text'");
        if (!rc)
            rc = get_req(x, blk, bp, "text", API_STRING, &text);
        if (!rc)
            rc = system_append(x, json_string_value(text), json_string_length(text), bp);
        if (rc)
            return rc;
    }
    return GW_OK;
}

static int parse_system(struct mctx *x, json_t *root)
{
    json_t *v;
    int rc = get_opt(x, root, "", "system", API_ANY, &v);

    return rc || !v ? rc : parse_system_value(x, v, "system");
}

/* ---- tool_use / tool_result pairing --------------------------------------- */

/*
 * Ends the open tool_use block (if any): like Anthropic, every tool_use of
 * an assistant message must be answered by a tool_result in the message
 * right after it.
 */
static int close_pending(struct mctx *x)
{
    char list[320], p[PATH_LEN];
    size_t req = x->calls.req;

    if (!api_calls_close(&x->calls, x->conv, list, sizeof(list)))
        return GW_OK;
    pathf(p, "messages.%zu", req);
    return bad(x, p,
               "`tool_use` ids were found without `tool_result` blocks immediately after: %s. "
               "Each `tool_use` block must have a corresponding `tool_result` block in the "
               "next message.",
               list);
}

/* A tool_result answers one pending tool_use of the assistant message before it. */
static int answer_call(struct mctx *x, const char *id, const char *path)
{
    switch (api_calls_answer(&x->calls, id)) {
    case API_ANSWER_OK:
        return GW_OK;
    case API_ANSWER_DUPLICATE:
        return bad(x, path, "duplicate `tool_result` block for `tool_use_id` %.*s", api_clip(id),
                   id);
    case API_ANSWER_NO_BLOCK:
    case API_ANSWER_UNKNOWN:
    default:
        return bad(x, path,
                   "unexpected `tool_use_id` found in `tool_result` blocks: %.*s. Each "
                   "`tool_result` block must have a corresponding `tool_use` block in the "
                   "previous message.",
                   api_clip(id), id);
    }
}

/* The content of a tool_result: a string, or text / image / document blocks. */
static int tool_result_content(struct mctx *x, json_t *content, const char *cp, struct conv_msg *m)
{
    char bp[PATH_LEN];
    json_t *blk;
    const char *t;
    size_t i;
    int rc;

    if (json_is_string(content)) {
        conv_msg_add_text(m, json_string_value(content), json_string_length(content));
        return GW_OK;
    }
    if (!json_is_array(content))
        return bad(x, cp, "Input should be a valid string or a list of content blocks");
    json_array_foreach(content, i, blk)
    {
        pathf(bp, "%s.%zu", cp, i);
        rc = get_block(x, blk, bp, &t);
        if (!rc && !strcmp(t, "text"))
            rc = parse_text_block(x, blk, bp, m);
        else if (!rc && !strcmp(t, "image"))
            rc = parse_image(x, blk, bp, m, 1);
        else if (!rc && !strcmp(t, "document"))
            rc = parse_document(x, blk, bp, m);
        else if (!rc)
            rc = bad_tag(x, bp, t, "'text', 'image', 'document'");
        if (rc)
            return rc;
    }
    return GW_OK;
}

/* {"type":"tool_result","tool_use_id","content"?,"is_error"?} -> a CONV_TOOL message. */
static int parse_tool_result(struct mctx *x, json_t *blk, const char *path)
{
    char cp[PATH_LEN];
    json_t *id, *content, *is_error;
    struct conv_msg *m;
    int rc = get_req(x, blk, path, "tool_use_id", API_STRING, &id);

    if (!rc)
        rc = get_opt(x, blk, path, "content", API_ANY, &content);
    if (!rc)
        rc = get_opt(x, blk, path, "is_error", API_BOOL, &is_error);
    if (!rc)
        rc = answer_call(x, json_string_value(id), path);
    if (rc)
        return rc;
    m = conv_add_msg(x->conv, CONV_TOOL);
    m->tool_call_id = xstrdup(json_string_value(id));
    m->is_error = json_is_true(is_error);
    pathf(cp, "%s.content", path);
    return content ? tool_result_content(x, content, cp, m) : GW_OK;
}

/* ---- messages ------------------------------------------------------------- */

/* One block of a user message other than tool_result. */
static int parse_user_block(struct mctx *x, json_t *blk, const char *path, const char *t,
                            struct conv_msg *m)
{
    if (!strcmp(t, "text"))
        return parse_text_block(x, blk, path, m);
    if (!strcmp(t, "image"))
        return parse_image(x, blk, path, m, 0);
    if (!strcmp(t, "document"))
        return parse_document(x, blk, path, m);
    return bad_block(x, path, t, CONV_USER);
}

/*
 * A user message.  Its tool_result blocks come first and each becomes a
 * CONV_TOOL message; the rest become one CONV_USER message after them.
 * Then every tool_use of the assistant message before must be answered.
 */
static int parse_user(struct mctx *x, json_t *content, const char *base)
{
    char bp[PATH_LEN];
    size_t i, um = SIZE_MAX;
    json_t *blk;
    const char *t;
    int rc = GW_OK;

    if (json_is_string(content)) {
        conv_msg_add_text(conv_add_msg(x->conv, CONV_USER), json_string_value(content),
                          json_string_length(content));
        return close_pending(x);
    }
    json_array_foreach(content, i, blk)
    {
        pathf(bp, "%s.content.%zu", base, i);
        rc = get_block(x, blk, bp, &t);
        if (!rc && !strcmp(t, "tool_result")) {
            rc = um == SIZE_MAX ? parse_tool_result(x, blk, bp)
                                : bad(x, bp,
                                      "`tool_result` blocks must be at the beginning of the "
                                      "message, before any other content");
        } else if (!rc) {
            if (um == SIZE_MAX) {
                conv_add_msg(x->conv, CONV_USER);
                um = x->conv->nmsgs - 1;
            }
            rc = parse_user_block(x, blk, bp, t, &x->conv->msgs[um]);
        }
        if (rc)
            return rc;
    }
    return close_pending(x);
}

static int add_reasoning(struct conv_msg *m, json_t *text)
{
    size_t old = m->reasoning ? strlen(m->reasoning) : 0, n = json_string_length(text);

    if (n == 0)
        return GW_OK;
    if (n > TEXT_MAX - old)
        return GW_ETOOBIG;
    m->reasoning = xrealloc(m->reasoning, old + (old ? 2 : 0) + n + 1);
    if (old) {
        memcpy(m->reasoning + old, "\n\n", 2);
        old += 2;
    }
    memcpy(m->reasoning + old, json_string_value(text), n);
    m->reasoning[old + n] = '\0';
    return GW_OK;
}

/* {"type":"tool_use","id","name","input":{...}} -> a tool call, arguments = compact input. */
static int parse_tool_use(struct mctx *x, json_t *blk, const char *path, struct conv_msg *m)
{
    char p[PATH_LEN];
    json_t *id, *name, *input;
    const char *ids;
    char *args;
    int rc = get_req(x, blk, path, "id", API_STRING, &id);

    if (!rc)
        rc = get_req(x, blk, path, "name", API_STRING, &name);
    if (!rc)
        rc = get_req(x, blk, path, "input", API_OBJECT, &input);
    if (rc)
        return rc;
    ids = json_string_value(id);
    pathf(p, "%s.id", path);
    api_calls_open(&x->calls);
    if (api_calls_add(&x->calls, ids))
        return bad(x, p, "`tool_use` ids must be unique: %.*s", api_clip(ids), ids);
    args = json_dumps(input, JSON_COMPACT);
    if (!args)
        return gw_err_param(x->err, GW_ENOMEM, p, "%s: out of memory", p);
    conv_msg_add_call(m, ids, json_string_value(name), args);
    free(args);
    return GW_OK;
}

static int parse_assistant_block(struct mctx *x, json_t *blk, const char *path, const char *t,
                                 struct conv_msg *m)
{
    json_t *v, *sig;
    int rc;

    if (!strcmp(t, "text"))
        return parse_text_block(x, blk, path, m);
    if (!strcmp(t, "tool_use"))
        return parse_tool_use(x, blk, path, m);
    if (!strcmp(t, "thinking")) {
        rc = get_req(x, blk, path, "thinking", API_STRING, &v);
        if (!rc)
            rc = get_opt(x, blk, path, "signature", API_STRING, &sig);
        if (!rc && add_reasoning(m, v))
            rc = gw_err_param(x->err, GW_ETOOBIG, path, "%s: the thinking is too large", path);
        return rc;
    }
    if (!strcmp(t, "redacted_thinking")) /* encrypted for Anthropic's models only */
        return get_req(x, blk, path, "data", API_STRING, &v);
    return bad_block(x, path, t, CONV_ASSISTANT);
}

/*
 * An assistant message: text, thinking (into reasoning), tool_use.  Its
 * tool_use ids open the block the next message must answer.
 */
static int parse_assistant(struct mctx *x, json_t *content, const char *base, size_t idx, int empty)
{
    char bp[PATH_LEN];
    struct conv_msg *m;
    json_t *blk;
    const char *t;
    size_t i;
    int rc = close_pending(x);

    if (rc || empty)
        return rc; /* an empty final assistant message prefills nothing */
    m = conv_add_msg(x->conv, CONV_ASSISTANT);
    if (json_is_string(content)) {
        conv_msg_add_text(m, json_string_value(content), json_string_length(content));
        return GW_OK;
    }
    json_array_foreach(content, i, blk)
    {
        pathf(bp, "%s.content.%zu", base, i);
        rc = get_block(x, blk, bp, &t);
        if (!rc)
            rc = parse_assistant_block(x, blk, bp, t, m);
        if (rc)
            return rc;
    }
    if (x->calls.pending) {
        x->calls.msg = x->conv->nmsgs - 1;
        x->calls.req = idx;
    }
    return GW_OK;
}

static int parse_message(struct mctx *x, json_t *msg, size_t idx)
{
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    char base[PATH_LEN], p[PATH_LEN];
    json_t *role, *content;
    const char *r;
    int empty, rc;

    pathf(base, "messages.%zu", idx);
    if (!json_is_object(msg))
        return bad_kind(x, base, API_OBJECT);
    rc = get_req(x, msg, base, "role", API_STRING, &role);
    if (!rc)
        rc = get_req(x, msg, base, "content", API_ANY, &content);
    if (rc)
        return rc;
    r = json_string_value(role);
    pathf(p, "%s.role", base);
    if (!api_one_of(r, roles))
        return bad(x, p, "Input should be 'user' or 'assistant'");
    pathf(p, "%s.content", base);
    if (!strcmp(r, "system")) /* Claude Code's extra system entries */
        return parse_system_value(x, content, p);
    rc = check_content(x, content, base, !strcmp(r, "assistant") && idx + 1 == x->nreq, &empty);
    if (rc)
        return rc;
    if (!strcmp(r, "user"))
        return parse_user(x, content, base);
    return parse_assistant(x, content, base, idx, empty);
}

static int parse_messages(struct mctx *x, json_t *root)
{
    json_t *msgs, *msg;
    size_t i;
    int rc = get_req(x, root, "", "messages", API_ARRAY, &msgs);

    if (rc)
        return rc;
    x->nreq = json_array_size(msgs);
    if (x->nreq == 0)
        return bad(x, "messages", "at least one message is required");
    json_array_foreach(msgs, i, msg)
    {
        rc = parse_message(x, msg, i);
        if (rc)
            return rc;
    }
    /* Unanswered tool_use in the final assistant message: the client prefills. */
    api_calls_release(&x->calls);
    if (x->conv->nmsgs == 0)
        return bad(x, "messages", "at least one user or assistant message is required");
    if (x->system.len)
        x->conv->system = buf_take(&x->system, NULL);
    return GW_OK;
}

/* ---- tools ---------------------------------------------------------------- */

/* {"name","description"?,"input_schema":{...},"type"?:"custom"}; other types are server tools. */
static int parse_tool(struct mctx *x, json_t *tool, const char *base, json_t *names,
                      struct conv *into)
{
    char p[PATH_LEN];
    json_t *type, *name, *desc, *schema, *cc;
    const char *n;
    int rc;

    if (!json_is_object(tool))
        return bad_kind(x, base, API_OBJECT);
    rc = get_opt(x, tool, base, "type", API_STRING, &type);
    if (rc)
        return rc;
    n = type ? json_string_value(type) : "custom";
    pathf(p, "%s.type", base);
    if (strcmp(n, "custom") != 0)
        return bad(x, p,
                   "tool type '%.*s' is not supported by this gateway; only client tools "
                   "(name, description, input_schema) are",
                   api_clip(n), n);
    rc = get_req(x, tool, base, "name", API_STRING, &name);
    if (!rc)
        rc = get_opt(x, tool, base, "description", API_STRING, &desc);
    if (!rc)
        rc = get_req(x, tool, base, "input_schema", API_OBJECT, &schema);
    if (!rc)
        rc = get_opt(x, tool, base, "cache_control", API_OBJECT, &cc);
    if (rc)
        return rc;
    n = json_string_value(name);
    pathf(p, "%s.name", base);
    if (!api_valid_name(n))
        return bad(x, p, "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'");
    if (json_object_get(names, n))
        return bad(x, p, "Tool names must be unique: '%s'", n);
    json_object_set_new(names, n, json_true());
    conv_add_tool(into, n, json_string_value(desc), json_incref(schema));
    return GW_OK;
}

/* Tools after tool_choice: with "none" they are validated into a scratch conv and dropped. */
static int parse_tools(struct mctx *x, json_t *root)
{
    char p[PATH_LEN];
    json_t *tools, *tool, *names;
    struct conv *into;
    size_t i;
    int rc = get_opt(x, root, "", "tools", API_ARRAY, &tools);

    if (rc || !tools)
        return rc;
    names = json_object(); /* a set, so duplicate checks stay linear */
    into = x->tools_none ? conv_new() : x->conv;
    json_array_foreach(tools, i, tool)
    {
        pathf(p, "tools.%zu", i);
        rc = parse_tool(x, tool, p, names, into);
        if (rc)
            break;
    }
    if (into != x->conv)
        conv_free(into);
    json_decref(names);
    return rc;
}

/*
 * {"type":"auto"|"none"|"any"|"tool","name"?,"disable_parallel_tool_use"?}.
 * The runtime never forces a tool call, so "any" and "tool" are refused
 * (as api/chat.c refuses "required"); "none" declares no tools.
 */
static int parse_tool_choice(struct mctx *x, json_t *root)
{
    json_t *tc, *type, *name, *dp;
    const char *t;
    int rc = get_opt(x, root, "", "tool_choice", API_OBJECT, &tc);

    if (!rc && tc)
        rc = get_req(x, tc, "tool_choice", "type", API_STRING, &type);
    if (!rc && tc)
        rc = get_opt(x, tc, "tool_choice", "disable_parallel_tool_use", API_BOOL, &dp);
    if (rc || !tc)
        return rc;
    t = json_string_value(type);
    if (!strcmp(t, "auto"))
        return GW_OK;
    if (!strcmp(t, "none")) {
        x->tools_none = 1;
        return GW_OK;
    }
    if (!strcmp(t, "any"))
        return bad(x, "tool_choice.type", "tool_choice 'any' is not supported: " API_NO_FORCING);
    if (strcmp(t, "tool") != 0)
        return bad_tag(x, "tool_choice", t, "'auto', 'any', 'tool', 'none'");
    rc = get_req(x, tc, "tool_choice", "name", API_STRING, &name);
    if (rc)
        return rc;
    t = json_string_value(name);
    return bad(x, "tool_choice.type",
               "tool_choice naming tool '%.*s' is not supported: " API_NO_FORCING, api_clip(t), t);
}

/* ---- top-level parameters ------------------------------------------------- */

static int parse_model(struct mctx *x, json_t *root)
{
    json_t *v;
    int rc = get_req(x, root, "", "model", API_STRING, &v);

    if (rc)
        return rc;
    if (json_string_length(v) == 0)
        return bad(x, "model", "String should have at least 1 character");
    x->conv->model = xstrdup(json_string_value(v));
    return GW_OK;
}

static int parse_max_tokens(struct mctx *x, json_t *root)
{
    json_t *v;
    int rc = get_req(x, root, "", "max_tokens", API_INT, &v);

    if (rc)
        return rc;
    if (json_integer_value(v) < 1)
        return bad(x, "max_tokens", "Input should be greater than or equal to 1");
    x->opts->max_tokens = json_integer_value(v);
    return GW_OK;
}

/*
 * {"type":"enabled","budget_tokens":N} maps the budget to the runtime's
 * effort (< 4096 low, < 16384 medium, else high); "adaptive" is medium.
 */
static int parse_thinking(struct mctx *x, json_t *root)
{
    json_t *th, *type, *budget;
    json_int_t n;
    const char *t;
    int rc = get_opt(x, root, "", "thinking", API_OBJECT, &th);

    if (!rc && th)
        rc = get_req(x, th, "thinking", "type", API_STRING, &type);
    if (rc || !th)
        return rc;
    t = json_string_value(type);
    if (!strcmp(t, "disabled"))
        return GW_OK;
    if (!strcmp(t, "adaptive")) {
        x->opts->thinking = 1;
        x->conv->reasoning_effort = xstrdup("medium");
        return GW_OK;
    }
    if (strcmp(t, "enabled") != 0)
        return bad_tag(x, "thinking", t, "'enabled', 'disabled', 'adaptive'");
    rc = get_req(x, th, "thinking", "budget_tokens", API_INT, &budget);
    if (rc)
        return rc;
    n = json_integer_value(budget);
    if (n < 1024)
        return bad(x, "thinking.budget_tokens", "Input should be greater than or equal to 1024");
    x->opts->thinking = 1;
    x->conv->reasoning_effort = xstrdup(n < 4096 ? "low" : n < 16384 ? "medium" : "high");
    return GW_OK;
}

static int parse_stream(struct mctx *x, json_t *root)
{
    json_t *v;
    int rc = get_opt(x, root, "", "stream", API_BOOL, &v);

    if (!rc)
        x->opts->stream = x->conv->stream = json_is_true(v);
    return rc;
}

/* metadata.user_id pins the conversation's sessions, like X-Session-Id ("" pins nothing). */
static int parse_metadata(struct mctx *x, json_t *root)
{
    json_t *md, *uid;
    int rc = get_opt(x, root, "", "metadata", API_OBJECT, &md);

    if (!rc && md)
        rc = get_opt(x, md, "metadata", "user_id", API_STRING, &uid);
    if (rc || !md || !uid)
        return rc;
    if (json_string_length(uid) > USER_ID_MAX)
        return bad(x, "metadata.user_id", "String should have at most %d characters", USER_ID_MAX);
    if (json_string_length(uid))
        x->conv->pin = xstrdup(json_string_value(uid));
    return GW_OK;
}

/* stop_sequences: a list of strings, kept as JSON text in opts (not applied). */
static int parse_stop_sequences(struct mctx *x, json_t *root)
{
    char p[PATH_LEN];
    json_t *v, *s;
    size_t i;
    int rc = get_opt(x, root, "", "stop_sequences", API_ARRAY, &v);

    if (rc || !v)
        return rc;
    json_array_foreach(v, i, s)
    {
        pathf(p, "stop_sequences.%zu", i);
        if (!json_is_string(s))
            return bad_kind(x, p, API_STRING);
    }
    x->opts->stop_sequences_json = json_dumps(v, JSON_COMPACT);
    if (!x->opts->stop_sequences_json)
        return gw_err_param(x->err, GW_ENOMEM, "stop_sequences", "stop_sequences: out of memory");
    return GW_OK;
}

/* mcp_servers (the MCP connector) needs Anthropic's servers to call out: refused. */
static int parse_unsupported(struct mctx *x, json_t *root)
{
    json_t *v, *c;
    int rc = get_opt(x, root, "", "mcp_servers", API_ARRAY, &v);

    if (!rc && json_array_size(v))
        return bad(x, "mcp_servers",
                   "MCP servers (the MCP connector) are not supported by "
                   "this gateway");
    if (!rc)
        rc = get_opt(x, root, "", "container", API_ANY, &c);
    if (!rc && c && !json_is_string(c) && !json_is_object(c))
        return bad(x, "container", "Input should be a valid string or a valid dictionary");
    return rc;
}

enum { LO = 1, HI = 2 };

/* Sampling and service parameters: type- and range-checked, then ignored. */
static const struct knob {
    const char *name;
    enum api_kind kind;
    unsigned bounds;
    double lo, hi;
} knobs[] = {
    {"temperature", API_NUMBER, LO | HI, 0, 1},
    {"top_p", API_NUMBER, LO | HI, 0, 1},
    {"top_k", API_INT, LO, 0, 0},
    {"service_tier", API_STRING, 0, 0, 0},
    {"context_management", API_OBJECT, 0, 0, 0},
};

static int parse_knobs(struct mctx *x, json_t *root)
{
    for (size_t i = 0; i < COUNT(knobs); i++) {
        const struct knob *k = &knobs[i];
        json_t *v;
        double d;
        int rc = get_opt(x, root, "", k->name, k->kind, &v);

        if (rc)
            return rc;
        if (!v)
            continue;
        d = json_number_value(v);
        if ((k->bounds & LO) && d < k->lo)
            return bad(x, k->name, "Input should be greater than or equal to %g", k->lo);
        if ((k->bounds & HI) && d > k->hi)
            return bad(x, k->name, "Input should be less than or equal to %g", k->hi);
    }
    return GW_OK;
}

/* ---- msg_parse ------------------------------------------------------------ */

typedef int (*step_fn)(struct mctx *x, json_t *root);

/* Order matters where a step needs an earlier one: the top-level system comes
 * before the messages' system entries, tool_choice before tools. */
static const step_fn steps[] = {
    parse_model,       parse_max_tokens, parse_system,         parse_messages,
    parse_tool_choice, parse_tools,      parse_thinking,       parse_stream,
    parse_metadata,    parse_knobs,      parse_stop_sequences, parse_unsupported,
};

void msg_opts_release(struct msg_opts *o)
{
    if (!o)
        return;
    free(o->stop_sequences_json);
    memset(o, 0, sizeof(*o));
}

int msg_parse(const char *body, size_t len, struct conv **out, struct msg_opts *opts,
              struct gw_err *err)
{
    struct msg_opts scratch;
    json_error_t jerr;
    struct mctx x;
    json_t *root;
    int rc = GW_OK;

    *out = NULL;
    if (!opts)
        opts = &scratch;
    memset(opts, 0, sizeof(*opts));
    root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return gw_err_set(err, GW_EINVAL, "%s", NOT_JSON);
    }
    memset(&x, 0, sizeof(x));
    x.conv = conv_new();
    x.opts = opts;
    x.err = err;
    buf_init(&x.system, TEXT_MAX);
    for (size_t i = 0; i < COUNT(steps) && !rc; i++)
        rc = steps[i](&x, root);
    if (!rc) {
        *out = x.conv;
        x.conv = NULL;
    } else {
        msg_opts_release(opts);
    }
    if (opts == &scratch)
        msg_opts_release(opts);
    conv_free(x.conv);
    buf_release(&x.system);
    api_calls_release(&x.calls);
    json_decref(root);
    return rc;
}

/* ---- response ------------------------------------------------------------- */

const char *msg_stop_reason(enum turn_finish f)
{
    switch (f) {
    case TURN_LENGTH:
        return "max_tokens";
    case TURN_TOOL_CALLS:
        return "tool_use";
    case TURN_STOP:
    default:
        return "end_turn";
    }
}

static json_t *usage_json(const struct turn_usage *u)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "input_tokens", (json_int_t)u->input_tokens,
                     "output_tokens", (json_int_t)u->output_tokens, "cache_creation_input_tokens",
                     (json_int_t)u->cache_write_tokens, "cache_read_input_tokens",
                     (json_int_t)u->cache_read_tokens);
}

/* A call's arguments as the input object; anything but a JSON object reads as {}. */
static json_t *input_json(const char *arguments)
{
    json_t *j = arguments ? json_loads(arguments, 0, NULL) : NULL;

    if (json_is_object(j))
        return j;
    json_decref(j);
    return json_object();
}

static json_t *text_block(const char *text)
{
    return json_pack("{s:s, s:o}", "type", "text", "text", api_jstr0(text));
}

static json_t *content_json(int thinking, const struct turn_result *r)
{
    json_t *c = json_array();

    if (thinking && r->reasoning && *r->reasoning)
        json_array_append_new(c, json_pack("{s:s, s:o, s:s}", "type", "thinking", "thinking",
                                           api_jstr0(r->reasoning), "signature", ""));
    if (r->text && *r->text)
        json_array_append_new(c, text_block(r->text));
    for (size_t i = 0; i < r->ncalls; i++) {
        const struct turn_tool_call *tc = &r->calls[i];
        json_array_append_new(c, json_pack("{s:s, s:o, s:o, s:o}", "type", "tool_use", "id",
                                           api_jstr0(tc->id), "name", api_jstr0(tc->name), "input",
                                           input_json(tc->arguments)));
    }
    if (json_array_size(c) == 0)
        json_array_append_new(c, text_block(""));
    return c;
}

json_t *msg_response(const char *id, const char *model, int thinking, const struct turn_result *r)
{
    return json_pack("{s:o, s:s, s:s, s:o, s:o, s:s, s:n, s:o}", "id", api_jstr0(id), "type",
                     "message", "role", "assistant", "model", api_jstr0(model), "content",
                     content_json(thinking, r), "stop_reason", msg_stop_reason(r->finish),
                     "stop_sequence", "usage", usage_json(&r->usage));
}

/* ---- stream --------------------------------------------------------------- */

enum { K_TEXT = 0, K_THINKING = 1, K_TOOL = 2 };

static int block_stop(struct msg_stream *s, struct buf *out)
{
    int rc;

    if (!s->open)
        return GW_OK;
    rc = api_sse(out, "content_block_stop",
                 json_pack("{s:s, s:i}", "type", "content_block_stop", "index", s->index));
    if (!rc) {
        s->open = 0;
        s->index++;
    }
    return rc;
}

/* Closes any open block and opens one of kind with content_block (stolen). */
static int block_start(struct msg_stream *s, struct buf *out, int kind, json_t *block)
{
    int rc = block_stop(s, out);

    if (rc) {
        json_decref(block);
        return rc;
    }
    rc = api_sse(out, "content_block_start",
                 json_pack("{s:s, s:i, s:o}", "type", "content_block_start", "index", s->index,
                           "content_block", block));
    if (!rc) {
        s->open = 1;
        s->open_kind = kind;
    }
    return rc;
}

/* A content_block_delta for the open block (delta stolen). */
static int block_delta(struct msg_stream *s, struct buf *out, json_t *delta)
{
    return api_sse(out, "content_block_delta",
                   json_pack("{s:s, s:i, s:o}", "type", "content_block_delta", "index", s->index,
                             "delta", delta));
}

int msg_stream_start(struct msg_stream *s, struct buf *out, int64_t input_tokens)
{
    json_t *msg;
    int rc;

    if (s->started)
        return GW_OK;
    msg = json_pack("{s:o, s:s, s:s, s:o, s:[], s:n, s:n, s:{s:I, s:I}}", "id", api_jstr0(s->id),
                    "type", "message", "role", "assistant", "model", api_jstr0(s->model), "content",
                    "stop_reason", "stop_sequence", "usage", "input_tokens",
                    (json_int_t)input_tokens, "output_tokens", (json_int_t)0);
    rc = api_sse(out, "message_start",
                 msg ? json_pack("{s:s, s:o}", "type", "message_start", "message", msg) : NULL);
    if (!rc)
        s->started = 1;
    return rc;
}

/* A text or thinking delta: opens a block of that kind first if another is open. */
static int stream_delta(struct msg_stream *s, struct buf *out, int kind, const char *p, size_t n)
{
    const char *name = kind == K_TEXT ? "text" : "thinking";
    int rc = msg_stream_start(s, out, 0);

    if (!rc && !(s->open && s->open_kind == kind)) {
        json_t *b = kind == K_TEXT
                        ? json_pack("{s:s, s:s}", "type", name, name, "")
                        : json_pack("{s:s, s:s, s:s}", "type", name, name, "", "signature", "");
        rc = block_start(s, out, kind, b);
    }
    if (rc)
        return rc;
    return block_delta(s, out,
                       json_pack("{s:s, s:o}", "type",
                                 kind == K_TEXT ? "text_delta" : "thinking_delta", name,
                                 api_jstr(p, n)));
}

int msg_stream_text(struct msg_stream *s, struct buf *out, const char *p, size_t n)
{
    return n ? stream_delta(s, out, K_TEXT, p, n) : GW_OK;
}

int msg_stream_thinking(struct msg_stream *s, struct buf *out, const char *p, size_t n)
{
    return s->thinking && n ? stream_delta(s, out, K_THINKING, p, n) : GW_OK;
}

int msg_stream_progress(struct msg_stream *s, struct buf *out, const char *p, size_t n)
{
    return n ? stream_delta(s, out, K_THINKING, p, n) : GW_OK;
}

/*
 * The first piece of a call (id or name set) opens its tool_use block; the
 * pieces of the open call become input_json_delta events.
 * NEEDSWORK: a piece of an earlier call whose block was already closed (the
 * model interleaving parallel calls) cannot be sent and is dropped.
 */
int msg_stream_tool(struct msg_stream *s, struct buf *out, size_t index, const char *id,
                    const char *name, const char *json, size_t n)
{
    int is_open, rc = msg_stream_start(s, out, 0);

    is_open = s->open && s->open_kind == K_TOOL && s->open_call == index;
    if (!rc && !is_open && (id || name)) {
        rc = block_start(s, out, K_TOOL,
                         json_pack("{s:s, s:o, s:o, s:{}}", "type", "tool_use", "id", api_jstr0(id),
                                   "name", api_jstr0(name), "input"));
        if (!rc)
            s->open_call = index;
        is_open = !rc;
    }
    if (rc || !is_open || n == 0)
        return rc;
    return block_delta(
        s, out,
        json_pack("{s:s, s:o}", "type", "input_json_delta", "partial_json", api_jstr(json, n)));
}

/*
 * Closes the open block, then message_delta and message_stop.  A message
 * that had no block gets one empty text block, as msg_response() gives it.
 */
int msg_stream_finish(struct msg_stream *s, struct buf *out, const struct turn_result *r)
{
    int rc = msg_stream_start(s, out, r->usage.input_tokens);

    if (!rc && !s->open && s->index == 0)
        rc = block_start(s, out, K_TEXT, json_pack("{s:s, s:s}", "type", "text", "text", ""));
    if (!rc)
        rc = block_stop(s, out);
    if (!rc)
        rc = api_sse(out, "message_delta",
                     json_pack("{s:s, s:{s:s, s:n}, s:o}", "type", "message_delta", "delta",
                               "stop_reason", msg_stop_reason(r->finish), "stop_sequence", "usage",
                               usage_json(&r->usage)));
    if (!rc)
        rc = api_sse(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    return rc;
}

int msg_stream_ping(struct buf *out)
{
    return api_sse(out, "ping", json_pack("{s:s}", "type", "ping"));
}

int msg_stream_error(struct buf *out, const struct gw_err *err)
{
    return api_sse(out, "error", anthropic_error(err));
}

/* ---- errors out ----------------------------------------------------------- */

static const char *error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

json_t *anthropic_error(const struct gw_err *err)
{
    static const char generic[] = "Internal server error";
    int status = 500;
    const char *msg = generic;
    size_t n = sizeof(generic) - 1;

    if (err) {
        status = err->http_status ? err->http_status : gw_status_http(err->code);
        if (err->msg[0]) {
            msg = err->msg;
            n = strnlen(err->msg, sizeof(err->msg)); /* bounded by the array, not a NUL */
        }
    }
    return json_pack("{s:s, s:{s:s, s:o}}", "type", "error", "error", "type", error_type(status),
                     "message", api_jstr(msg, n));
}
