/*
 * api/responses.h - OpenAI Responses API <-> canonical conversation.
 *
 * Pure translation, like api/chat.h: no I/O, no event loop, no storage.
 *
 * A request is handled in two steps, because `previous_response_id` makes
 * the conversation depend on stored responses the caller has to look up:
 *   1. resp_parse() validates the body the way OpenAI does and fills a
 *      struct resp_req (settings, the request's own input items normalised
 *      to item objects, the fields echoed back in the response object).
 *   2. resp_conv() builds the canonical conversation from the items of the
 *      stored chain (`prior`, oldest first: each stored response's input
 *      items then its output items) followed by the request's own items,
 *      plus `instructions` and `tools` of this request only (OpenAI does not
 *      carry them over from a previous response).
 *
 * Item mapping (input and prior):
 *   message role user            -> CONV_USER (input_text, input_image)
 *   message role assistant       -> text of the current assistant message
 *                                   (output_text, refusal)
 *   message role system/developer-> appended to the system prompt, after
 *                                   `instructions` ("\n\n"-joined, in order)
 *   reasoning                    -> reasoning text (summary_text joined) of
 *                                   the current assistant message
 *   function_call                -> a call of the current assistant message
 *   function_call_output         -> CONV_TOOL (tool_call_id = call_id)
 * "The current assistant message" is the one a run of consecutive
 * assistant-side items (assistant message, reasoning, function_call) builds:
 * a run becomes exactly one CONV_ASSISTANT message, so a response's output
 * replayed as input hashes like the turn that produced it.  Its text is the
 * run's output_text and refusal texts run together (as the broker's turn
 * text is its deltas run together), its reasoning the summary texts
 * "\n\n"-joined.  System and developer messages neither end a run nor
 * answer calls.  Images inside a function_call_output are checked and
 * become the text "[image omitted]" (the runtime takes tool results as
 * text), as in api/messages.c.
 *
 * The output side: struct resp_stream builds the output items (ids msg_…,
 * rs_…, fc_…) from the broker's deltas and, when `out` is non-NULL, appends
 * the Responses SSE events for them ("event: T\ndata: {...}\n\n", each with
 * its sequence_number).  The final response object comes from the same
 * state, so streamed events, the final object and what the caller stores
 * agree on ids and content.
 *
 * Ownership: resp_parse() fills *req, released with resp_req_release();
 * resp_conv() gives the caller an owned conv.  Builders return new json_t
 * references or append to a caller's buf.  A struct resp_stream borrows
 * req for its lifetime and is released with resp_stream_release().
 */
#ifndef GW_API_RESPONSES_H
#define GW_API_RESPONSES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "broker/broker.h"
#include "broker/conv.h"
#include "util/buf.h"
#include "util/err.h"

struct resp_req {
    char *model;                /* as requested */
    char *previous_response_id; /* or NULL */
    int stream;
    int store;                  /* default 1 */
    int background;             /* background: true (requires store; not with stream) */
    int summary;                /* reasoning.summary (or generate_summary) is auto/concise/
                                 * detailed: emit summary text ("none" is no summary) */
    json_t *input;              /* the request's own input items, normalised: a string input
                                 * becomes [{"type":"message","role":"user","content":
                                 * [{"type":"input_text","text":...}]}]; items without "type"
                                 * get "type":"message" (an {"id"} alone is an
                                 * "item_reference"); string message content becomes one
                                 * input_text (user/system/developer) or output_text
                                 * (assistant) part.  Owned. */
    json_t *echo;               /* the request settings the response object repeats, with
                                 * OpenAI's defaults filled in: instructions, max_output_tokens,
                                 * metadata, parallel_tool_calls, previous_response_id,
                                 * reasoning {effort, summary}, store, temperature, text
                                 * {format, verbosity}, tool_choice, tools, top_p,
                                 * truncation, user, background, and max_tool_calls,
                                 * prompt_cache_key, safety_identifier, service_tier,
                                 * top_logprobs.  Owned. */
    /* Private to resp_conv(): */
    char *instructions;
    json_t *tools;              /* the request's tools array as given (validated), or NULL
                                 * (also for tool_choice "none") */
    char *reasoning_effort;     /* mapped for the runtime: low/medium/high, or NULL */
    json_t *response_format;    /* as conv->response_format, or NULL */
};

/*
 * Validates body and fills *req (cleared first; safe to release whatever the
 * result).  Bad input: GW_EINVAL with err->param the request path in
 * OpenAI's spelling ("input[2].content[0].image_url", "tools[1].name",
 * "text.format.schema") and err->msg in OpenAI's wording.
 *
 * Rules: model required (string); input required (string or non-empty
 * array); unknown item types, input_file parts, item_reference, and tool
 * history items of tool types the gateway never offers (custom_tool_call,
 * local_shell_call, web_search_call, ...) are a clear 400.  tools: function
 * tools are kept; hosted and client-side tool types the runtime cannot run
 * (web_search*, file_search, code_interpreter, image_generation,
 * computer_use*, mcp, local_shell, custom, namespace, ...) are accepted and
 * not offered to the model.  tool_choice: auto and none work (none: no
 * tools declared); required, a named function and allowed_tools are a 400
 * (as chat completions).  reasoning.effort none/minimal/low/medium/high/xhigh
 * is mapped to the runtime's low/medium/high (none: no effort set).
 * text.format json_schema becomes conv->response_format as in chat
 * completions; json_object likewise; text is the default.  background with
 * stream, or background without store, is a 400.  prompt (reusable
 * prompts) and conversation are a 400 (not supported).  Sampling fields
 * (temperature, top_p, max_output_tokens, truncation, top_logprobs,
 * max_tool_calls, service_tier, ...) are range-checked like OpenAI and not
 * applied.  Unknown top-level fields are ignored (Codex sends
 * client_metadata).
 */
int resp_parse(const char *body, size_t len, struct resp_req *req, struct gw_err *err)
    WARN_UNUSED;
void resp_req_release(struct resp_req *req);

/*
 * The conversation for req: prior items (a JSON array, may be NULL) then
 * req->input.  Checks the pairing of calls and outputs across both, as chat
 * completions does for tool messages: a function_call_output whose call_id
 * no function_call of the run right before it has (GW_EINVAL, param
 * "input", "No tool call found for function call output with call_id X."),
 * a function_call left unanswered before the next user message or
 * assistant-side run or at the end ("No tool output found for function
 * call X."), an output given twice, a call_id twice in one run.  The
 * conversation must not be empty of messages.  A prior item that does not
 * parse (a broken store) fails with param "previous_response_id".
 * conv->stream = req->stream.  On failure *out is NULL.
 */
int resp_conv(const struct resp_req *req, const json_t *prior, struct conv **out,
              struct gw_err *err) WARN_UNUSED;

/* Output state of one response. */
struct resp_stream {
    const struct resp_req *req; /* borrowed */
    char id[64];                /* resp_… */
    int64_t created_at;
    int64_t seq;                /* next sequence_number */
    int started;                /* response.created / in_progress written */
    json_t *output;             /* finished output items, in order (owned) */
    /* The open item, if any: */
    int open;                   /* 0 none, 1 message, 2 reasoning, 3 function_call */
    char open_id[64];
    size_t open_call;           /* the broker's call index of an open function_call */
    struct buf open_text;       /* text / summary / arguments so far */
    char *open_call_id, *open_name;
    json_t *calls_done;         /* {"<broker index>": output index} of closed calls */
};

/* id is the response id the caller chose (resp_ + random). */
void resp_stream_init(struct resp_stream *s, const struct resp_req *req, const char *id,
                      int64_t created_at);
void resp_stream_release(struct resp_stream *s);

/* Each appends complete SSE events to out when out is non-NULL, and records
 * the items either way.  start: response.created then response.in_progress. */
int resp_stream_start(struct resp_stream *s, struct buf *out) WARN_UNUSED;
int resp_stream_text(struct resp_stream *s, struct buf *out, const char *p, size_t n)
    WARN_UNUSED;
/* Reasoning text: a reasoning item; with req->summary its text is streamed as
 * reasoning_summary_text deltas and kept as summary_text, else the item has
 * an empty summary. */
int resp_stream_reasoning(struct resp_stream *s, struct buf *out, const char *p, size_t n)
    WARN_UNUSED;
/* A piece of client tool call `index` (the broker's sink contract: id and
 * name on the first piece only).  A piece of a call whose item is already
 * done (interleaved parallel calls) only joins that item's arguments in
 * the output; no event can carry it. */
int resp_stream_tool(struct resp_stream *s, struct buf *out, size_t index, const char *id,
                     const char *name, const char *args, size_t n) WARN_UNUSED;
/*
 * The turn ended.  For a non-streamed response (or one whose deltas were not
 * fed) the items are built from r here instead: reasoning, message,
 * function_calls, in that order.  A successful r closes the open item and
 * writes response.completed (TURN_STOP, TURN_TOOL_CALLS) or
 * response.incomplete with incomplete_details {"reason":"max_output_tokens"}
 * (TURN_LENGTH); a failed r writes response.failed with response.error
 * {"code","message"} (code e.g. "server_error", "rate_limit_exceeded").
 * use_result: build the items from r (1) or keep the streamed ones (0);
 * with 1 any recorded items are dropped first and, for a failed r, the
 * output is empty.  The open item is done with status "completed", or
 * "incomplete" when the response is not completed.  A successful turn whose
 * output holds no message and no function_call gets one empty message, as
 * chat completions answers "".
 */
int resp_stream_finish(struct resp_stream *s, struct buf *out, const struct turn_result *r,
                       int use_result) WARN_UNUSED;

/*
 * The response object in its current state: {"id","object":"response",
 * "created_at","status","background","error","incomplete_details","model",
 * "output":[...],"usage",...echo}; the open item, if any, is in output as
 * it stands (status in_progress).  status: "queued", "in_progress",
 * "completed", "incomplete", "failed", "cancelled".  r (may be NULL) gives
 * usage ({input_tokens, input_tokens_details{cached_tokens,
 * cache_write_tokens}, output_tokens, output_tokens_details
 * {reasoning_tokens}, total_tokens}) and, when failed, error (code
 * rate_limit_exceeded for GW_ERATELIMIT/429, invalid_prompt for
 * GW_EINVAL/400, else server_error; failed without r: server_error with a
 * generic message); without r usage is null.
 */
json_t *resp_object(const struct resp_stream *s, const char *status,
                    const struct turn_result *r);

/* The status resp_stream_finish() gives r: completed, incomplete or failed. */
const char *resp_status(const struct turn_result *r);

#endif
