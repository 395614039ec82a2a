/*
 * api/common.h - helpers shared by the API translators (api/chat.c,
 * api/messages.c, api/responses.c): checks on client values, quoting them
 * back in error messages, UTF-8 safe JSON output and SSE events, and the
 * request-walking machinery of the two OpenAI APIs (typed getters that name
 * the exact parameter path in OpenAI's wording, images by URL, structured
 * output formats, reasoning efforts, range-checked parameters) and of all
 * three (the tool-call pairing tracker, the system prompt accumulator).
 *
 * Ownership: api_jstr()/api_jstr0() return new references; api_json_append()
 *   only reads its json_t; api_sse() steals its.  Getters hand out borrowed
 *   references into the caller's JSON.
 * Errors: api_json_append() and api_sse() return 0 or a negative GW_E* code
 *   and then have released the buffer (util/buf.h), so a half-written value
 *   is never sent.  The request checks return GW_OK or GW_EINVAL with the
 *   caller's struct gw_err (may be NULL) filled: param = the request path,
 *   msg in OpenAI's words, api_code OpenAI's error code where it has one.
 * Threading: pure, any thread.
 */
#ifndef GW_API_COMMON_H
#define GW_API_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/conv.h"
#include "util/buf.h"
#include "util/err.h"

#define API_SHOW_MAX 64 /* bytes of a client's value quoted back in an error message */
/*
 * Room for a parameter path ("input[2].content[0].image_url").  Paths may
 * outgrow gw_err.param, which then holds a cut-short copy; error messages
 * quote them whole.
 */
#define API_PATH_LEN 160

/* Why tool_choice values that force a tool call are refused. */
#define API_NO_FORCING                                                                             \
    "the Copilot runtime lets the model decide whether to call a tool; use 'auto'"

/* OpenAI's answer to a body that is not a JSON object. */
#define API_OPENAI_NOT_JSON                                                                        \
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "       \
    "using your HTTP library correctly. The API expects a JSON object as the request body, but "   \
    "what was sent was not valid JSON or not an object.)"

/* How many bytes of s (n long) to quote: at most API_SHOW_MAX, never half a
 * UTF-8 character.  For "%.*s". */
int api_clipn(const char *s, size_t n);
int api_clip(const char *s); /* the same for a NUL-terminated s */

/* The JSON types a request field may be required to have. */
enum api_kind { API_STRING, API_INT, API_NUMBER, API_BOOL, API_OBJECT, API_ARRAY, API_ANY };

/* 1 if v has kind k (API_NUMBER: integer or real; API_ANY: anything). */
int api_kind_ok(const json_t *v, enum api_kind k);
/* 1 if s is one of the strings of the NULL-terminated set. */
int api_one_of(const char *s, const char *const *set);
/* ^[a-zA-Z0-9_-]{1,64}$, the rule for tool and schema names. */
int api_valid_name(const char *s);
/* Standard or URL-safe base64 alphabet, '=' only as trailing padding, non-empty. */
int api_is_base64(const char *s);
/* An absolute http:// or https:// URL, as libcurl's URL parser reads it. */
int api_is_http_url(const char *url);

/*
 * A new JSON string for n bytes of s (NULL gives "").  Embedded NULs are
 * kept (jansson writes them as \u0000) and invalid UTF-8 becomes U+FFFD, so
 * bytes from a model or a client can never make a reply fail to serialise.
 */
json_t *api_jstr(const char *s, size_t n);
json_t *api_jstr0(const char *s); /* the same for a NUL-terminated s (NULL-safe) */

/* Appends j as compact JSON to out.  On failure out is released. */
int api_json_append(struct buf *out, const json_t *j) WARN_UNUSED;

/* Appends s (clipped like api_clip) to the ", "-separated list[0..cap) at
 * *off; on overflow the list ends at the last whole item. */
void api_list_add(char *list, size_t cap, size_t *off, const char *s);

/*
 * Appends "event: <event>\ndata: <compact data>\n\n" (no event line when
 * event is NULL) and drops data (NULL data: GW_ENOMEM).  On failure out is
 * released.
 */
int api_sse(struct buf *out, const char *event, json_t *data) WARN_UNUSED;

/*
 * Appends "\n\n" (when b already holds text) and then n bytes of s; nothing
 * for n == 0.  For joining system prompts and reasoning texts.  On failure
 * b is released.
 */
int api_buf_join(struct buf *b, const char *s, size_t n) WARN_UNUSED;

/* ---- OpenAI request checks (chat completions, responses) ------------------ */

/* Fails with a 400 naming param, with OpenAI's error code (may be NULL). */
int api_bad(struct gw_err *err, const char *param, const char *code, const char *fmt, ...)
    PRINTF(4, 5);
/* "Invalid type for 'p': expected <expected>, but got <type of got> instead." */
int api_bad_type(struct gw_err *err, const char *param, const char *expected, const json_t *got);
/* "Invalid value: 'v'. Supported values are: <supported>." */
int api_bad_value(struct gw_err *err, const char *param, const char *value, const char *supported);
/* "Invalid 'p': empty array. ..." */
int api_empty_array(struct gw_err *err, const char *param);
/* "Invalid 'p': string does not match pattern. ..." (the api_valid_name rule) */
int api_bad_pattern(struct gw_err *err, const char *param);

/*
 * The 400 for a conversation of about `tokens` (estimated) over a model's
 * `limit`.  anthropic: Anthropic's invalid_request_error "prompt is too long:
 * M tokens > N maximum"; otherwise OpenAI's context_length_exceeded, naming
 * param ("messages" for chat completions, "input" for responses).
 */
int api_context_exceeded(struct gw_err *err, int anthropic, const char *param, int64_t limit,
                         int64_t tokens);

/*
 * body as a JSON object with no duplicate keys (new reference), or NULL
 * with OpenAI's "could not parse the JSON body" error in err.
 */
json_t *api_openai_body(const char *body, size_t len, struct gw_err *err);

/* Parameter paths: out (API_PATH_LEN bytes) = base.key, or base[i]. */
void api_path_key(char *out, const char *base, const char *key);
void api_path_idx(char *out, const char *base, size_t i);

/*
 * obj[key] (borrowed) into *out, checked against kind.  An optional member
 * that is absent or null gives *out = NULL; a required one that is absent
 * fails as missing, and a required null fails as a type error (API_ANY lets
 * null through for the caller to judge).  base is the path of obj ("" for
 * the top level).
 */
int api_get(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
            int required, json_t **out);
int api_get_req(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
                json_t **out);
int api_get_opt(struct gw_err *err, json_t *obj, const char *base, const char *key, enum api_kind k,
                json_t **out);

/* root's "model": a required, non-empty string, copied into *out. */
int api_get_model(struct gw_err *err, json_t *root, char **out);

/*
 * A function tool's definition in obj (at path base): name (required, the
 * api_valid_name rule, not yet in the set names, then added to it),
 * description, parameters (an object), strict.  The out pointers (each may
 * be NULL) borrow from obj; absent ones are NULL.
 */
int api_function(struct gw_err *err, json_t *obj, const char *base, json_t *names,
                 const char **name, const char **description, json_t **parameters);

/*
 * Walks the optional "tools" array of root: each(ctx, tool, path, names) runs
 * per element with its path ("tools[i]") and a set the callee may use for
 * duplicate-name checks (api_function() does); the walk stops at the first
 * error.  *tools is the array (borrowed from root) or NULL.
 */
int api_walk_tools(struct gw_err *err, json_t *root, json_t **tools,
                   int (*each)(void *ctx, json_t *tool, const char *path, json_t *names),
                   void *ctx);

/*
 * A string tool_choice: "auto" and "none" are accepted (*none is set for
 * "none", which the caller honours by declaring no tools); "required" is
 * refused with API_NO_FORCING; anything else is an invalid value.
 */
int api_tool_choice_mode(struct gw_err *err, const char *s, int *none);

/*
 * An image URL at path: a base64 data: URL of an image type becomes an image
 * part of m with mime and data, an http(s) URL one with url set (the caller
 * downloads it).  With m NULL the URL is only checked.
 */
int api_add_image_url(struct gw_err *err, const char *url, const char *path, struct conv_msg *m);

/*
 * A json_schema structured-output format from obj (at path base): name
 * (required, the api_valid_name rule), schema (required if schema_required;
 * when absent, any JSON object), strict, description.  *out gets a new
 * {"name","schema","strict"?,"description"?} for conv->response_format.
 */
int api_json_schema(struct gw_err *err, json_t *obj, const char *base, int schema_required,
                    json_t **out);
/* The format json_object becomes: a schema that accepts any JSON object (new reference). */
json_t *api_json_object_format(void);

/*
 * OpenAI's reasoning efforts mapped to the runtime's low/medium/high
 * (*out NULL for "none").  0 if s is not one of API_EFFORTS.
 */
int api_effort(const char *s, const char **out);
#define API_EFFORTS "'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'"

/* Parameters that are type- and range-checked, then ignored. */
enum api_param_check {
    API_CHECK_PLAIN = 0, /* the kind, and the bounds if any */
    API_CHECK_STOP,      /* a string or an array of at most 4 strings */
    API_CHECK_STRINGS,   /* an array of strings */
};
enum { API_LO = 1, API_HI = 2 };

struct api_param {
    const char *name;
    enum api_kind kind;
    enum api_param_check check;
    unsigned bounds; /* API_LO | API_HI */
    double lo, hi;
};

/* Checks each of params[0..n) in root (a top-level member, optional, null allowed). */
int api_check_params(struct gw_err *err, json_t *root, const struct api_param *params, size_t n);

/* ---- tool-call pairing ---------------------------------------------------- */

/*
 * The calls of one assistant message waiting for their results.  All three
 * APIs want each call answered right after the message that made it; each
 * words the failures its own way.  Zero-initialised means no open block.
 */
struct api_calls {
    json_t *pending;  /* ids not answered yet (a set), NULL when no block is open */
    json_t *answered; /* ids answered */
    size_t msg;       /* index in conv->msgs of the assistant message (the caller sets it) */
    size_t req;       /* where the request had it (the caller sets it) */
};

enum api_answer {
    API_ANSWER_OK = 0,
    API_ANSWER_NO_BLOCK,
    API_ANSWER_DUPLICATE,
    API_ANSWER_UNKNOWN
};

/* Opens a block if none is open. */
void api_calls_open(struct api_calls *c);
/* Adds id to the open block's pending calls: 0, or -1 if it is already pending. */
int api_calls_add(struct api_calls *c, const char *id);
/* A result for id: OK (and id is answered now), or why it answers nothing. */
enum api_answer api_calls_answer(struct api_calls *c, const char *id);
/*
 * Ends the block (if any).  Returns how many calls of conv->msgs[c->msg]
 * were left unanswered and lists their ids, ", "-separated, in list.
 */
size_t api_calls_close(struct api_calls *c, const struct conv *conv, char *list, size_t cap);
void api_calls_release(struct api_calls *c);

#endif
