/*
 * OpenAI Responses, the output side: output items, the Responses SSE event
 * sequence and the response object, built from the broker's deltas (or from
 * a finished turn's result) by struct resp_stream.  One item is open at a
 * time; each event carries the next sequence_number.  The request side is
 * api/responses.c.
 */
#include "api/responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/common.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define TEXT_MAX (SIZE_MAX / 2) /* the request body cap is the real limit */
#define ITEM_ID_LEN 48          /* random characters after an output item's prefix */
#define FAILED_MSG "The server had an error while processing your request."

/* ---- output items --------------------------------------------------------- */

enum { OPEN_NONE = 0, OPEN_MESSAGE = 1, OPEN_REASONING = 2, OPEN_CALL = 3 };

static int summaries(const struct resp_stream *s)
{
    return s->req && s->req->summary;
}

static json_t *text_part(const char *text, size_t n)
{
    return json_pack("{s:s, s:o, s:[], s:[]}", "type", "output_text", "text", api_jstr(text, n),
                     "annotations", "logprobs");
}

static json_t *summary_part(const char *text, size_t n)
{
    return json_pack("{s:s, s:o}", "type", "summary_text", "text", api_jstr(text, n));
}

/*
 * The open item as it stands: with full 0 as output_item.added shows it
 * (no content, no summary, no arguments yet), else with what it holds.
 */
static json_t *open_item_json(const struct resp_stream *s, const char *status, int full)
{
    const char *t = buf_str(&s->open_text);
    size_t n = full ? s->open_text.len : 0;

    switch (s->open) {
    case OPEN_MESSAGE:
        return json_pack("{s:s, s:s, s:s, s:o, s:s}", "id", s->open_id, "type", "message", "status",
                         status, "content", full ? json_pack("[o]", text_part(t, n)) : json_array(),
                         "role", "assistant");
    case OPEN_REASONING:
        return json_pack("{s:s, s:s, s:o}", "id", s->open_id, "type", "reasoning", "summary",
                         full && summaries(s) ? json_pack("[o]", summary_part(t, n))
                                              : json_array());
    case OPEN_CALL:
    default:
        return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "id", s->open_id, "type",
                         "function_call", "status", status, "arguments", api_jstr(t, n), "call_id",
                         api_jstr0(s->open_call_id), "name", api_jstr0(s->open_name));
    }
}

void resp_stream_init(struct resp_stream *s, const struct resp_req *req, const char *id,
                      int64_t created_at)
{
    memset(s, 0, sizeof(*s));
    s->req = req;
    snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
    s->created_at = created_at;
    s->output = json_array();
    s->calls_done = json_object();
    buf_init(&s->open_text, TEXT_MAX);
}

static void drop_open(struct resp_stream *s)
{
    s->open = OPEN_NONE;
    s->open_id[0] = '\0';
    free(s->open_call_id);
    free(s->open_name);
    s->open_call_id = s->open_name = NULL;
    buf_reset(&s->open_text);
}

void resp_stream_release(struct resp_stream *s)
{
    drop_open(s);
    buf_release(&s->open_text);
    json_decref(s->output);
    json_decref(s->calls_done);
    s->output = s->calls_done = NULL;
}

/*
 * Appends event `type` with fields (stolen) when out is set: "type" and
 * "sequence_number" first, then the fields.  On failure out is released.
 */
static int emit(struct resp_stream *s, struct buf *out, const char *type, json_t *fields)
{
    json_t *ev;
    int rc;

    if (!out) {
        json_decref(fields);
        return GW_OK;
    }
    ev = json_pack("{s:s, s:I}", "type", type, "sequence_number", (json_int_t)s->seq);
    if (!ev || !fields || json_object_update(ev, fields) != 0) {
        json_decref(ev);
        json_decref(fields);
        buf_release(out);
        return GW_ENOMEM;
    }
    json_decref(fields);
    rc = api_sse(out, type, ev);
    if (!rc)
        s->seq++;
    return rc;
}

/* The output_index of the open item: finished items come before it. */
static json_int_t open_index(const struct resp_stream *s)
{
    return (json_int_t)json_array_size(s->output);
}

/* {"item_id","output_index"} plus the event's own fields (stolen), for the open item. */
static json_t *item_fields(const struct resp_stream *s, json_t *more)
{
    json_t *f = json_pack("{s:s, s:I}", "item_id", s->open_id, "output_index", open_index(s));

    if (f && more && json_object_update(f, more) != 0) {
        json_decref(f);
        f = NULL;
    }
    json_decref(more);
    return f;
}

/* The done events of the open item; it then joins s->output with status. */
static int close_item(struct resp_stream *s, struct buf *out, const char *status)
{
    const char *t = buf_str(&s->open_text);
    size_t n = s->open_text.len;
    json_int_t idx = open_index(s);
    json_t *item;
    char key[32];
    int rc = GW_OK;

    if (s->open == OPEN_NONE)
        return GW_OK;
    if (s->open == OPEN_MESSAGE) {
        rc = emit(s, out, "response.output_text.done",
                  item_fields(s, json_pack("{s:i, s:o, s:[]}", "content_index", 0, "text",
                                           api_jstr(t, n), "logprobs")));
        if (!rc)
            rc = emit(s, out, "response.content_part.done",
                      item_fields(
                          s, json_pack("{s:i, s:o}", "content_index", 0, "part", text_part(t, n))));
    } else if (s->open == OPEN_REASONING && summaries(s)) {
        rc = emit(
            s, out, "response.reasoning_summary_text.done",
            item_fields(s, json_pack("{s:i, s:o}", "summary_index", 0, "text", api_jstr(t, n))));
        if (!rc)
            rc = emit(s, out, "response.reasoning_summary_part.done",
                      item_fields(s, json_pack("{s:i, s:o}", "summary_index", 0, "part",
                                               summary_part(t, n))));
    } else if (s->open == OPEN_CALL) {
        rc = emit(s, out, "response.function_call_arguments.done",
                  item_fields(s, json_pack("{s:o, s:o}", "name", api_jstr0(s->open_name),
                                           "arguments", api_jstr(t, n))));
        snprintf(key, sizeof(key), "%zu", s->open_call);
        json_object_set_new(s->calls_done, key, json_integer(idx));
    }
    item = open_item_json(s, status, 1);
    if (!rc)
        rc = emit(s, out, "response.output_item.done",
                  json_pack("{s:I, s:O}", "output_index", idx, "item", item));
    /* The item is kept even when the event failed: the final object stays whole. */
    json_array_append_new(s->output, item);
    drop_open(s);
    return rc;
}

/* Closes the open item and opens one of kind: output_item.added and its part's added event. */
static int open_item(struct resp_stream *s, struct buf *out, int kind, size_t call,
                     const char *call_id, const char *name)
{
    static const char *const prefix[] = {"", "msg_", "rs_", "fc_"};
    size_t k = strlen(prefix[kind]);
    int rc = close_item(s, out, "completed");

    if (rc)
        return rc;
    memcpy(s->open_id, prefix[kind], k);
    util_rand_id(s->open_id + k, ITEM_ID_LEN);
    s->open = kind;
    s->open_call = call;
    if (kind == OPEN_CALL) {
        s->open_call_id = xstrdup(call_id ? call_id : "");
        s->open_name = xstrdup(name ? name : "");
    }
    rc = emit(s, out, "response.output_item.added",
              json_pack("{s:I, s:o}", "output_index", open_index(s), "item",
                        open_item_json(s, "in_progress", 0)));
    if (!rc && kind == OPEN_MESSAGE)
        rc = emit(
            s, out, "response.content_part.added",
            item_fields(s, json_pack("{s:i, s:o}", "content_index", 0, "part", text_part("", 0))));
    if (!rc && kind == OPEN_REASONING && summaries(s))
        rc = emit(s, out, "response.reasoning_summary_part.added",
                  item_fields(
                      s, json_pack("{s:i, s:o}", "summary_index", 0, "part", summary_part("", 0))));
    return rc;
}

int resp_stream_start(struct resp_stream *s, struct buf *out)
{
    int rc;

    if (s->started)
        return GW_OK;
    rc = emit(s, out, "response.created",
              json_pack("{s:o}", "response", resp_object(s, "in_progress", NULL)));
    if (!rc)
        rc = emit(s, out, "response.in_progress",
                  json_pack("{s:o}", "response", resp_object(s, "in_progress", NULL)));
    if (!rc)
        s->started = 1;
    return rc;
}

int resp_stream_text(struct resp_stream *s, struct buf *out, const char *p, size_t n)
{
    int rc;

    if (n == 0)
        return GW_OK;
    rc = resp_stream_start(s, out);
    if (!rc && s->open != OPEN_MESSAGE)
        rc = open_item(s, out, OPEN_MESSAGE, 0, NULL, NULL);
    if (!rc)
        rc = buf_add(&s->open_text, p, n);
    if (!rc && out)
        rc = emit(s, out, "response.output_text.delta",
                  item_fields(s, json_pack("{s:i, s:o, s:[]}", "content_index", 0, "delta",
                                           api_jstr(p, n), "logprobs")));
    return rc;
}

int resp_stream_reasoning(struct resp_stream *s, struct buf *out, const char *p, size_t n)
{
    int rc;

    if (n == 0)
        return GW_OK;
    rc = resp_stream_start(s, out);
    if (!rc && s->open != OPEN_REASONING)
        rc = open_item(s, out, OPEN_REASONING, 0, NULL, NULL);
    if (rc || !summaries(s))
        return rc;
    rc = buf_add(&s->open_text, p, n);
    if (!rc && out)
        rc = emit(
            s, out, "response.reasoning_summary_text.delta",
            item_fields(s, json_pack("{s:i, s:o}", "summary_index", 0, "delta", api_jstr(p, n))));
    return rc;
}

/*
 * A piece of a call whose item was already closed (the model interleaving
 * parallel calls) joins that item's arguments in the output.
 * NEEDSWORK: its events are gone; the client sees the whole arguments only
 * in the final response object.
 */
static void late_piece(struct resp_stream *s, size_t index, const char *args, size_t n)
{
    char key[32];
    json_t *idx, *item, *old;
    struct buf b;

    snprintf(key, sizeof(key), "%zu", index);
    idx = json_object_get(s->calls_done, key);
    item = idx ? json_array_get(s->output, (size_t)json_integer_value(idx)) : NULL;
    old = json_object_get(item, "arguments");
    if (!old)
        return; /* a piece of a call that never started: nothing to add it to */
    buf_init(&b, TEXT_MAX);
    if (buf_add(&b, json_string_value(old), json_string_length(old)) == GW_OK &&
        buf_add(&b, args, n) == GW_OK)
        json_object_set_new(item, "arguments", api_jstr(b.ptr, b.len));
    buf_release(&b);
}

int resp_stream_tool(struct resp_stream *s, struct buf *out, size_t index, const char *id,
                     const char *name, const char *args, size_t n)
{
    int is_open, rc = resp_stream_start(s, out);

    if (rc)
        return rc;
    is_open = s->open == OPEN_CALL && s->open_call == index;
    if (!is_open && (id || name)) {
        rc = open_item(s, out, OPEN_CALL, index, id, name);
        is_open = !rc;
    }
    if (rc || n == 0)
        return rc;
    if (!is_open) {
        late_piece(s, index, args, n);
        return GW_OK;
    }
    rc = buf_add(&s->open_text, args, n);
    if (!rc && out)
        rc = emit(s, out, "response.function_call_arguments.delta",
                  item_fields(s, json_pack("{s:o}", "delta", api_jstr(args, n))));
    return rc;
}

/* The items of a whole turn: reasoning, message, function calls. */
static int from_result(struct resp_stream *s, struct buf *out, const struct turn_result *r)
{
    int rc = GW_OK;

    if (r->reasoning)
        rc = resp_stream_reasoning(s, out, r->reasoning, strlen(r->reasoning));
    if (!rc && r->text)
        rc = resp_stream_text(s, out, r->text, strlen(r->text));
    for (size_t i = 0; !rc && i < r->ncalls; i++) {
        const struct turn_tool_call *tc = &r->calls[i];
        const char *args = tc->arguments ? tc->arguments : "";
        rc = resp_stream_tool(s, out, i, tc->id ? tc->id : "", tc->name ? tc->name : "", args,
                              strlen(args));
    }
    return rc;
}

/* 1 if the output answers: a message or a function call, not reasoning alone. */
static int has_answer(const struct resp_stream *s)
{
    json_t *item;
    size_t i;

    json_array_foreach(s->output, i, item)
    {
        const char *t = json_string_value(json_object_get(item, "type"));
        if (t && strcmp(t, "reasoning") != 0)
            return 1;
    }
    return 0;
}

int resp_stream_finish(struct resp_stream *s, struct buf *out, const struct turn_result *r,
                       int use_result)
{
    const char *status = resp_status(r);
    const char *item_status = strcmp(status, "completed") ? "incomplete" : "completed";
    int rc = GW_OK;

    if (use_result) {
        drop_open(s);
        json_array_clear(s->output);
        json_object_clear(s->calls_done);
        if (r->ok)
            rc = from_result(s, out, r);
    }
    if (!rc)
        rc = resp_stream_start(s, out);
    if (!rc)
        rc = close_item(s, out, item_status);
    /* A turn that answered nothing still has a (empty) message, as chat completions has "". */
    if (!rc && r->ok && !has_answer(s)) {
        rc = open_item(s, out, OPEN_MESSAGE, 0, NULL, NULL);
        if (!rc)
            rc = close_item(s, out, item_status);
    }
    if (!rc) {
        char type[32];
        snprintf(type, sizeof(type), "response.%s", status);
        rc = emit(s, out, type, json_pack("{s:o}", "response", resp_object(s, status, r)));
    }
    return rc;
}

/* ---- the response object -------------------------------------------------- */

const char *resp_status(const struct turn_result *r)
{
    if (!r || !r->ok)
        return "failed";
    return r->finish == TURN_LENGTH ? "incomplete" : "completed";
}

static json_t *usage_json(const struct turn_usage *u)
{
    return json_pack("{s:I, s:{s:I, s:I}, s:I, s:{s:I}, s:I}", "input_tokens",
                     (json_int_t)u->input_tokens, "input_tokens_details", "cached_tokens",
                     (json_int_t)u->cache_read_tokens, "cache_write_tokens",
                     (json_int_t)u->cache_write_tokens, "output_tokens",
                     (json_int_t)u->output_tokens, "output_tokens_details", "reasoning_tokens",
                     (json_int_t)u->reasoning_tokens, "total_tokens",
                     (json_int_t)(u->input_tokens + u->output_tokens));
}

/* ResponseError's code for a failed turn. */
static const char *error_code(const struct gw_err *e)
{
    if (e->code == GW_ERATELIMIT || e->http_status == 429)
        return "rate_limit_exceeded";
    if (e->code == GW_EINVAL || e->http_status == 400)
        return "invalid_prompt";
    return "server_error";
}

/* {"code","message"} for a failed response, null otherwise. */
static json_t *error_json(const char *status, const struct turn_result *r)
{
    const char *msg = FAILED_MSG;
    size_t n = sizeof(FAILED_MSG) - 1;

    if (strcmp(status, "failed") != 0)
        return json_null();
    if (!r || r->ok)
        return json_pack("{s:s, s:s}", "code", "server_error", "message", msg);
    if (r->err.msg[0]) {
        msg = r->err.msg;
        n = strnlen(r->err.msg, sizeof(r->err.msg)); /* bounded by the array, not a NUL */
    }
    return json_pack("{s:s, s:o}", "code", error_code(&r->err), "message", api_jstr(msg, n));
}

json_t *resp_object(const struct resp_stream *s, const char *status, const struct turn_result *r)
{
    const struct resp_req *req = s->req;
    json_t *o, *output = json_deep_copy(s->output);

    if (output && s->open != OPEN_NONE)
        json_array_append_new(output, open_item_json(s, "in_progress", 1));
    o = json_pack("{s:o, s:s, s:I, s:s, s:o, s:o, s:o, s:o}", "id", api_jstr0(s->id), "object",
                  "response", "created_at", (json_int_t)s->created_at, "status", status, "error",
                  error_json(status, r), "incomplete_details",
                  strcmp(status, "incomplete") ? json_null()
                                               : json_pack("{s:s}", "reason", "max_output_tokens"),
                  "model", api_jstr0(req ? req->model : NULL), "output",
                  output ? output : json_array());
    if (o && req && req->echo)
        json_object_update_new(o, json_deep_copy(req->echo));
    if (o)
        json_object_set_new(o, "usage", r ? usage_json(&r->usage) : json_null());
    return o;
}
