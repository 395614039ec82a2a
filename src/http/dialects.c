/*
 * The OpenAI Chat Completions and Anthropic Messages dialects of the request
 * flow: thin wrappers over the translators in api/chat.c and api/messages.c.
 * Also POST /v1/messages/count_tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "api/messages.h"
#include "http/flow.h"
#include "http/handlers.h"
#include "util/xmalloc.h"

/* ---- OpenAI Chat Completions ----------------------------------------------- */

static int chat_d_parse(struct flow *f, const char *body, size_t len, struct gw_err *err)
{
    struct chat_opts *o = xcalloc(1, sizeof(*o));
    int rc;

    f->st = o;
    rc = chat_parse(body, len, &f->conv, o, err);
    if (rc)
        return rc;
    f->stream = o->stream;
    return GW_OK;
}

static int chat_d_start(struct flow *f, struct buf *out)
{
    return chat_chunk_role(out, f->id, f->model, f->created);
}

static int chat_d_text(struct flow *f, struct buf *out, const char *s, size_t n)
{
    return chat_chunk_text(out, f->id, f->model, f->created, s, n);
}

static int chat_d_reasoning(struct flow *f, struct buf *out, const char *s, size_t n)
{
    return chat_chunk_reasoning(out, f->id, f->model, f->created, s, n);
}

static int chat_d_tool(struct flow *f, struct buf *out, size_t index, const char *id,
                       const char *name, const char *args, size_t n)
{
    return chat_chunk_tool_call(out, f->id, f->model, f->created, index, id, name, args, n);
}

static int chat_d_end(struct flow *f, struct buf *out, const struct turn_result *res)
{
    const struct chat_opts *o = f->st;
    int rc;

    if (!res->ok) {
        rc = chat_chunk_error(out, &res->err);
    } else {
        rc = chat_chunk_finish(out, f->id, f->model, f->created, res->finish);
        if (!rc && o->include_usage)
            rc = chat_chunk_usage(out, f->id, f->model, f->created, &res->usage);
    }
    return rc ? rc : chat_chunk_done(out);
}

static json_t *chat_d_answer(struct flow *f, const struct turn_result *res, struct gw_err *err)
{
    if (!res->ok) {
        *err = res->err;
        return NULL;
    }
    return chat_response(f->id, f->model, f->created, res);
}

/*
 * The request parameter of an image part, "messages[i].content[j].image_url".
 * chat_parse() joins system and developer messages into conv->system and
 * maps every other message, and every part of a user message, one to one;
 * so skipping those roles in the request maps conv's indexes back.
 * NEEDSWORK: have chat_parse() keep each part's request path in the conv.
 */
static void chat_d_image_param(struct flow *f, size_t msg, size_t part, char *out, size_t n)
{
    size_t len, i, k = 0, req = msg;
    const char *body = http_req_body(f->r, &len);
    json_t *root = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *msgs = json_object_get(root, "messages"), *m;

    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));

        if (role && (!strcmp(role, "system") || !strcmp(role, "developer")))
            continue;
        if (k++ == msg) {
            req = i;
            break;
        }
    }
    json_decref(root);
    snprintf(out, n, "messages[%zu].content[%zu].image_url", req, part);
}

const struct dialect_ops dialect_chat = {
    .id_prefix = "chatcmpl-",
    .input_param = "messages",
    .parse = chat_d_parse,
    .free_state = free,
    .stream_start = chat_d_start,
    .text = chat_d_text,
    .reasoning = chat_d_reasoning,
    .tool_call = chat_d_tool,
    .stream_end = chat_d_end,
    .answer = chat_d_answer,
    .image_param = chat_d_image_param,
};

/* ---- Anthropic Messages ------------------------------------------------------ */

struct msg_state {
    struct msg_opts opts;
    struct msg_stream ms;
};

static void msg_d_free(void *p)
{
    struct msg_state *s = p;
    msg_opts_release(&s->opts);
    free(s);
}

static int msg_d_parse(struct flow *f, const char *body, size_t len, struct gw_err *err)
{
    struct msg_state *s = xcalloc(1, sizeof(*s));
    int rc;

    f->st = s;
    rc = msg_parse(body, len, &f->conv, &s->opts, err);
    if (rc)
        return rc;
    f->stream = s->opts.stream;
    s->ms.thinking = s->opts.thinking;
    return GW_OK;
}

static int msg_d_start(struct flow *f, struct buf *out)
{
    struct msg_state *s = f->st;

    s->ms.id = f->id;
    s->ms.model = f->model;
    return msg_stream_start(&s->ms, out, f->input_estimate);
}

static int msg_d_text(struct flow *f, struct buf *out, const char *p, size_t n)
{
    return msg_stream_text(&((struct msg_state *)f->st)->ms, out, p, n);
}

static int msg_d_reasoning(struct flow *f, struct buf *out, const char *p, size_t n)
{
    return msg_stream_thinking(&((struct msg_state *)f->st)->ms, out, p, n);
}

static int msg_d_progress(struct flow *f, struct buf *out, const char *p, size_t n)
{
    return msg_stream_progress(&((struct msg_state *)f->st)->ms, out, p, n);
}

static int msg_d_tool(struct flow *f, struct buf *out, size_t index, const char *id,
                      const char *name, const char *args, size_t n)
{
    return msg_stream_tool(&((struct msg_state *)f->st)->ms, out, index, id, name, args, n);
}

static int msg_d_ping(struct flow *f, struct buf *out)
{
    return msg_stream_ping(out);
}

static int msg_d_end(struct flow *f, struct buf *out, const struct turn_result *res)
{
    struct msg_state *s = f->st;

    return res->ok ? msg_stream_finish(&s->ms, out, res) : msg_stream_error(out, &res->err);
}

static json_t *msg_d_answer(struct flow *f, const struct turn_result *res, struct gw_err *err)
{
    const struct msg_state *s = f->st;

    if (!res->ok) {
        *err = res->err;
        return NULL;
    }
    return msg_response(f->id, f->model, s->opts.thinking, res);
}

const struct dialect_ops dialect_messages = {
    .id_prefix = "msg_",
    .input_param = "messages",
    .parse = msg_d_parse,
    .free_state = msg_d_free,
    .stream_start = msg_d_start,
    .text = msg_d_text,
    .reasoning = msg_d_reasoning,
    .progress = msg_d_progress,
    .tool_call = msg_d_tool,
    .ping = msg_d_ping,
    .stream_end = msg_d_end,
    .answer = msg_d_answer,
};

/*
 * POST /v1/messages/count_tokens: the same estimate as message_start's
 * usage.input_tokens, about four bytes a token over the system prompt, the
 * messages and the tool definitions.  The runtime counts the real tokens
 * only when it calls the model.
 */
void http_route_count_tokens(struct http_req *r)
{
    struct gw_err err;
    size_t len;
    const char *body = http_req_body(r, &len);
    json_t *root;
    char *fixed;
    struct conv *conv = NULL;
    struct msg_opts mopts;

    memset(&mopts, 0, sizeof(mopts));
    /* count_tokens takes a message request without max_tokens. */
    root = json_loadb(body, len, 0, NULL);
    if (json_is_object(root) && !json_object_get(root, "max_tokens"))
        json_object_set_new(root, "max_tokens", json_integer(1));
    fixed = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (msg_parse(fixed ? fixed : body, fixed ? strlen(fixed) : len, &conv, &mopts, &err)) {
        free(fixed);
        http_reply_error(r, &err);
        return;
    }
    free(fixed);
    http_reply_json(r, 200, json_pack("{s:I}", "input_tokens",
                                      (json_int_t)conv_estimate_tokens(conv)));
    conv_free(conv);
    msg_opts_release(&mopts);
}
