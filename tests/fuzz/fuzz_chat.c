/*
 * libFuzzer target for the OpenAI Chat Completions translator: arbitrary
 * bytes go to chat_parse(); an accepted request is walked like the broker
 * would walk it, and the same bytes go through the SSE chunk builders, whose
 * output must always be one well-formed event of valid JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/chat.h"

static void walk(const struct conv *c)
{
    for (size_t i = 0; i < c->nmsgs; i++) {
        char *t = conv_msg_text(&c->msgs[i]);
        free(t);
        (void)conv_msg_has_image(&c->msgs[i]);
    }
}

/* Every event the builders write must be "data: <JSON>\n\n" with nothing that splits it. */
static void check_event(struct buf *b)
{
    json_t *j;

    if (b->len < 8 || memcmp(b->ptr, "data: ", 6) != 0 ||
        strstr(b->ptr, "\n\n") != b->ptr + b->len - 2)
        abort();
    j = json_loadb(b->ptr + 6, b->len - 8, JSON_ALLOW_NUL, NULL);
    if (!j)
        abort();
    json_decref(j);
    buf_reset(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct chat_opts opts;
    struct conv *c = NULL;
    struct gw_err err;
    struct buf b;
    json_t *e;
    char *z;

    if (chat_parse(s, size, &c, &opts, &err) == GW_OK) {
        walk(c);
    } else {
        e = openai_error(&err);
        if (!e)
            abort();
        json_decref(e);
    }
    conv_free(c);

    /* The input as a C string too, for the id and model (cut at any NUL). */
    z = malloc(size + 1);
    if (!z)
        abort();
    memcpy(z, data, size);
    z[size] = '\0';
    buf_init(&b, 1u << 26);
    if (chat_chunk_text(&b, "chatcmpl-fuzz", "m", 1, s, size) != GW_OK)
        abort();
    check_event(&b);
    if (chat_chunk_reasoning(&b, z, z, 1, s, size) != GW_OK)
        abort();
    check_event(&b);
    buf_release(&b);
    free(z);
    return 0;
}
