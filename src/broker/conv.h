/*
 * broker/conv.h - the canonical conversation: what every public API (OpenAI
 * chat, Responses, Anthropic Messages) is translated into before it reaches
 * the broker, and what the broker seeds into a runtime session.
 *
 * The system prompt is already joined (system/developer messages in order,
 * separated by "\n\n").  Messages are user, assistant or tool turns in order.
 * Ownership: a struct conv owns every string and json_t inside it; conv_free()
 * releases all of it.  Strings are UTF-8, NUL-terminated.
 */
#ifndef GW_BROKER_CONV_H
#define GW_BROKER_CONV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum conv_role { CONV_USER = 0, CONV_ASSISTANT, CONV_TOOL };
enum conv_part_kind { CONV_TEXT = 0, CONV_IMAGE };

struct conv_part {
    enum conv_part_kind kind;
    char *text;      /* CONV_TEXT */
    char *mime;      /* CONV_IMAGE: e.g. "image/png" */
    char *data_b64;  /* CONV_IMAGE from a data: URL or base64 source (no "data:" prefix) */
    char *url;       /* CONV_IMAGE given by http(s) URL (data_b64 NULL) */
};

struct conv_tool_call {
    char *id;        /* the model's own id, e.g. call_abc */
    char *name;
    char *arguments; /* JSON text of the arguments object */
};

struct conv_msg {
    enum conv_role role;
    struct conv_part *parts; /* user/assistant content; tool result content */
    size_t nparts;
    struct conv_tool_call *calls; /* assistant only */
    size_t ncalls;
    char *tool_call_id;           /* tool only */
    int is_error;                 /* tool only: the result is an error */
    char *reasoning;              /* assistant only, may be NULL */
};

struct conv_tool {
    char *name;
    char *description;  /* may be NULL */
    json_t *parameters; /* JSON Schema object, owned; may be NULL */
};

struct conv {
    char *model;            /* as requested by the client */
    char *system;           /* joined system prompt, or NULL */
    struct conv_msg *msgs;
    size_t nmsgs;
    struct conv_tool *tools;
    size_t ntools;
    char *reasoning_effort; /* "low" | "medium" | "high" | NULL */
    json_t *response_format; /* {"name","schema","strict"?,"description"?} for json_schema, or NULL */
    int stream;
    char *pin;              /* a client-chosen session name (X-Session-Id), or NULL */
};

struct conv *conv_new(void);
void conv_free(struct conv *c); /* NULL-safe */

/* Appends a zeroed message / part / call and returns it (owned by c). */
struct conv_msg *conv_add_msg(struct conv *c, enum conv_role role);
struct conv_part *conv_msg_add_text(struct conv_msg *m, const char *text, size_t n);
struct conv_part *conv_msg_add_image(struct conv_msg *m, const char *mime, const char *data_b64,
                                     const char *url);
struct conv_tool_call *conv_msg_add_call(struct conv_msg *m, const char *id, const char *name,
                                         const char *arguments);
struct conv_tool *conv_add_tool(struct conv *c, const char *name, const char *description,
                                json_t *parameters /* stolen */);

/* The text parts of m joined with "\n" (caller frees). */
char *conv_msg_text(const struct conv_msg *m);
/*
 * A token estimate of the whole conversation the runtime will see (system
 * prompt, messages with their tool calls, tool definitions, response format):
 * about four bytes a token, plus 4 per message, plus 765 per image (given by
 * URL or inline alike, so it can be had before any download).  Linear in the
 * conversation's size; allocates nothing of that size.
 */
int64_t conv_estimate_tokens(const struct conv *c);
/* 1 if m has at least one image part. */
int conv_msg_has_image(const struct conv_msg *m);

#endif
