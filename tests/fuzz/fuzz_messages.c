/*
 * libFuzzer target for the Anthropic Messages translator: arbitrary bytes go
 * to msg_parse(); an accepted request is walked like the broker would walk
 * it, a rejected one must give an error object with its path in the
 * message.  The same bytes then drive a whole stream (thinking, text, tool
 * call pieces, finish) and a response object, whose output must always be
 * well-formed events of valid JSON with block indices in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/messages.h"

static void walk(const struct conv *c)
{
    for (size_t i = 0; i < c->nmsgs; i++) {
        char *t = conv_msg_text(&c->msgs[i]);
        free(t);
        (void)conv_msg_has_image(&c->msgs[i]);
        if (c->msgs[i].role == CONV_TOOL && !c->msgs[i].tool_call_id)
            abort();
        for (size_t k = 0; k < c->msgs[i].ncalls; k++) {
            json_t *args = json_loads(c->msgs[i].calls[k].arguments, 0, NULL);
            if (!json_is_object(args))
                abort(); /* arguments are always the compact JSON of an object */
            json_decref(args);
        }
    }
    if (!c->model || !*c->model)
        abort();
}

static void check_error(const struct gw_err *err)
{
    json_t *e = anthropic_error(err);

    if (!e || (err->code == GW_EINVAL && err->http_status != 400))
        abort();
    /* "<param>: ..." whenever a param is named (it may be cut short in param). */
    if (err->param[0] && strncmp(err->msg, err->param, strlen(err->param)) != 0)
        abort();
    json_decref(e);
}

/*
 * Every event must be "event: <type>\ndata: <JSON with that type>\n\n";
 * content blocks open and close in index order, one at a time.
 */
static void check_events(struct buf *b)
{
    const char *p = buf_str(b), *end = p + b->len;
    long open = -1, next = 0;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *stop;
        const char *type;
        json_t *j;

        if (!nl || strncmp(p, "event: ", 7) != 0 || strncmp(nl + 1, "data: ", 6) != 0)
            abort();
        stop = strstr(nl + 1, "\n\n");
        if (!stop)
            abort();
        j = json_loadb(nl + 7, (size_t)(stop - nl - 7), JSON_ALLOW_NUL, NULL);
        type = json_string_value(json_object_get(j, "type"));
        if (!type || strlen(type) != (size_t)(nl - p - 7) || strncmp(type, p + 7, strlen(type)))
            abort();
        if (!strcmp(type, "content_block_start")) {
            if (open != -1 || json_integer_value(json_object_get(j, "index")) != next)
                abort();
            open = next++;
        } else if (!strcmp(type, "content_block_delta")) {
            if (open == -1 || json_integer_value(json_object_get(j, "index")) != open)
                abort();
        } else if (!strcmp(type, "content_block_stop")) {
            if (open == -1 || json_integer_value(json_object_get(j, "index")) != open)
                abort();
            open = -1;
        }
        json_decref(j);
        p = stop + 2;
    }
    if (open != -1)
        abort(); /* finish closes every block */
    buf_reset(b);
}

/* Drives a stream with the input cut into pieces, as a turn would deliver it. */
static void stream(const char *s, size_t size, const char *z)
{
    struct turn_tool_call call = {z, z, z};
    struct turn_result r = {.ok = 1, .text = z, .reasoning = z, .calls = &call};
    struct msg_stream st = {.id = z, .model = z, .thinking = size % 2};
    size_t third = size / 3;
    struct buf b;
    json_t *j;

    buf_init(&b, 1u << 26);
    r.ncalls = size % 3 == 0;
    r.finish = (enum turn_finish)(size % 3);
    if (msg_stream_thinking(&st, &b, s, third) || msg_stream_text(&st, &b, s + third, third) ||
        msg_stream_tool(&st, &b, 0, z, z, s, third) ||
        msg_stream_tool(&st, &b, 0, NULL, NULL, s + 2 * third, size - 2 * third) ||
        msg_stream_text(&st, &b, s, size) || msg_stream_ping(&b) || msg_stream_finish(&st, &b, &r))
        abort();
    check_events(&b);
    buf_release(&b);
    j = msg_response(z, z, st.thinking, &r);
    if (!j)
        abort();
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct msg_opts opts;
    struct conv *c = NULL;
    struct gw_err err;
    char *z;

    if (msg_parse(s, size, &c, &opts, &err) == GW_OK) {
        walk(c);
        msg_opts_release(&opts);
    } else {
        check_error(&err);
        if (c || opts.stop_sequences_json)
            abort();
    }
    conv_free(c);

    /* The input as a C string too, for ids, names and whole texts (cut at any NUL). */
    z = malloc(size + 1);
    if (!z)
        abort();
    memcpy(z, data, size);
    z[size] = '\0';
    stream(s, size, z);
    free(z);
    return 0;
}
