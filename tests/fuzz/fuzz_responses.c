/*
 * libFuzzer target for the OpenAI Responses translator: arbitrary bytes go
 * to resp_parse(); an accepted request goes through resp_conv() alone and
 * after two small stored histories (one whole, one ending with a call), and
 * the conversation is walked like the broker would walk it; a rejected one
 * must give a 400 and leave nothing behind.  The same bytes then drive a
 * whole stream (reasoning, text, tool call pieces, finish) whose output
 * must always be well-formed events of valid JSON, numbered in order, with
 * output items added and done one at a time.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"
#include "api/responses.h"

static const char prior_whole[] =
    "[{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\","
    "\"text\":\"dev\"}]},{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":"
    "\"input_text\",\"text\":\"q\"}]},{\"id\":\"rs_1\",\"type\":\"reasoning\",\"summary\":[{"
    "\"type\":\"summary_text\",\"text\":\"t\"}]},{\"id\":\"fc_1\",\"type\":\"function_call\","
    "\"status\":\"completed\",\"call_id\":\"call_a\",\"name\":\"f\",\"arguments\":\"{}\"},{"
    "\"type\":\"function_call_output\",\"call_id\":\"call_a\",\"output\":\"ok\"},{\"id\":"
    "\"msg_1\",\"type\":\"message\",\"status\":\"completed\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"text\":\"done\",\"annotations\":[],\"logprobs\":"
    "[]}]}]";
static const char prior_call[] =
    "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"go\"},{\"id\":\"fc_2\",\"type\":"
    "\"function_call\",\"status\":\"completed\",\"call_id\":\"call_1\",\"name\":\"f\","
    "\"arguments\":\"{}\"}]";

static void walk(const struct conv *c)
{
    if (!c->model || !*c->model || c->nmsgs == 0)
        abort();
    for (size_t i = 0; i < c->nmsgs; i++) {
        const struct conv_msg *m = &c->msgs[i];
        char *t = conv_msg_text(m);
        free(t);
        (void)conv_msg_has_image(m);
        if ((m->role == CONV_TOOL) != (m->tool_call_id != NULL))
            abort();
        if (m->ncalls && m->role != CONV_ASSISTANT)
            abort();
        for (size_t k = 0; k < m->ncalls; k++)
            if (!m->calls[k].id || !m->calls[k].name || !m->calls[k].arguments)
                abort();
    }
    for (size_t i = 0; i < c->ntools; i++)
        if (!c->tools[i].name)
            abort();
}

static void conv_with(const struct resp_req *req, const char *prior)
{
    json_t *p = prior ? json_loads(prior, 0, NULL) : NULL;
    struct conv *c = NULL;
    struct gw_err err;
    int rc;

    if (prior && !p)
        abort();
    rc = resp_conv(req, p, &c, &err);
    if (rc == GW_OK)
        walk(c);
    else if (c || rc != GW_EINVAL || err.http_status != 400)
        abort();
    conv_free(c);
    json_decref(p);
}

static void check_error(const struct resp_req *req, const struct gw_err *err)
{
    json_t *e = openai_error(err);

    if (!e || err->code != GW_EINVAL || err->http_status != 400)
        abort();
    if (req->model || req->input || req->echo || req->tools || req->response_format)
        abort(); /* a failed parse leaves nothing */
    json_decref(e);
}

/*
 * Every event must be "event: <type>\ndata: <JSON with that type>\n\n",
 * sequence numbers count up from 0, items are added and done one at a time
 * in output_index order, and the last event ends the response.
 */
static void check_events(const struct buf *b)
{
    const char *p = buf_str(b), *end = p + b->len;
    json_int_t seq = 0, open = -1, next = 0;
    const char *type = NULL;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop;
        json_t *j, *idx;

        if (!nl || strncmp(p, "event: ", 7) != 0 || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        stop = strstr(nl + 1, "\n\n");
        if (!stop)
            abort();
        j = json_loadb(nl + 7, (size_t)(stop - nl - 7), JSON_ALLOW_NUL, NULL);
        type = json_string_value(json_object_get(j, "type"));
        if (!type || strlen(type) != (size_t)(nl - p - 7) || strncmp(type, p + 7, strlen(type)))
            abort();
        if (json_integer_value(json_object_get(j, "sequence_number")) != seq++)
            abort();
        idx = json_object_get(j, "output_index");
        if (!strcmp(type, "response.output_item.added")) {
            if (open != -1 || json_integer_value(idx) != next)
                abort();
            open = next++;
        } else if (!strcmp(type, "response.output_item.done")) {
            if (open == -1 || json_integer_value(idx) != open)
                abort();
            open = -1;
        } else if (idx && (open == -1 || json_integer_value(idx) != open)) {
            abort();
        }
        type = NULL;
        if (json_object_get(j, "response"))
            type = "end";
        json_decref(j);
        p = stop + 2;
    }
    if (open != -1 || !type)
        abort(); /* finish closes every item and ends with the response */
}

/* Drives a stream with the input cut into pieces, as a turn would deliver it. */
static void stream(const struct resp_req *req, const char *s, size_t size, const char *z)
{
    struct turn_tool_call call = {z, z, z};
    struct turn_result r = {.ok = size % 4 != 3, .text = z, .reasoning = z, .calls = &call};
    size_t third = size / 3;
    struct resp_stream st;
    struct buf b;
    json_t *o;

    r.ncalls = size % 3 == 0;
    r.finish = (enum turn_finish)(size % 3);
    gw_err_set(&r.err, size % 2 ? GW_ERATELIMIT : GW_EUPSTREAM, "%s", z);
    resp_stream_init(&st, req, z, (int64_t)size);
    buf_init(&b, 1u << 26);
    if (resp_stream_reasoning(&st, &b, s, third) || resp_stream_text(&st, &b, s + third, third) ||
        resp_stream_tool(&st, &b, 0, z, z, s, third) ||
        resp_stream_tool(&st, &b, 0, NULL, NULL, s + 2 * third, size - 2 * third) ||
        resp_stream_tool(&st, &b, size % 5, NULL, size % 2 ? z : NULL, s, third) ||
        resp_stream_text(&st, &b, s, size) || resp_stream_finish(&st, &b, &r, 0))
        abort();
    check_events(&b);
    o = resp_object(&st, resp_status(&r), &r);
    if (!o)
        abort();
    json_decref(o);
    resp_stream_release(&st);

    /* The same turn built from its result, without events. */
    resp_stream_init(&st, req, "resp_x", 0);
    if (resp_stream_finish(&st, NULL, &r, 1))
        abort();
    o = resp_object(&st, "in_progress", NULL);
    if (!o)
        abort();
    json_decref(o);
    resp_stream_release(&st);
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char plain[] = "{\"model\":\"m\",\"input\":\"x\",\"reasoning\":{\"summary\":"
                                "\"auto\"}}";
    const char *s = (const char *)data;
    struct resp_req req, fixed;
    struct gw_err err;
    char *z;

    if (resp_parse(s, size, &req, &err) == GW_OK) {
        if (!req.model || !json_is_array(req.input) || !json_is_object(req.echo))
            abort();
        conv_with(&req, NULL);
        conv_with(&req, prior_whole);
        conv_with(&req, prior_call);
    } else {
        check_error(&req, &err);
    }

    /* The input as a C string too, for ids, names and whole texts (cut at any NUL). */
    z = malloc(size + 1);
    if (!z)
        abort();
    memcpy(z, data, size);
    z[size] = '\0';
    if (req.model) {
        stream(&req, s, size, z);
    } else {
        if (resp_parse(plain, strlen(plain), &fixed, &err))
            abort();
        stream(&fixed, s, size, z);
        resp_req_release(&fixed);
    }
    resp_req_release(&req);
    free(z);
    return 0;
}
