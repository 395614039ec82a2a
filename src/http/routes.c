/*
 * Route handlers: glue between an HTTP request, the API translators and the
 * broker.  Translation lives in api/; this file only moves data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/keyvalq_struct.h>

#include "api/chat.h"
#include "api/common.h"
#include "api/messages.h"
#include "api/models.h"
#include "api/responses.h"
#include "broker/broker.h"
#include "http/server.h"
#include "rt/rt.h"
#include "store/store.h"
#include "util/base64.h"
#include "util/buf.h"
#include "util/fetch.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

/* ---- POST /v1/chat/completions --------------------------------------------- */

/*
 * Image URLs of one request: downloaded in parallel, each capped and timed.
 * NEEDSWORK: no cap on the total (16 x 20 MiB, then base64), nor on the
 * downloads in flight across requests.
 */
#define IMAGE_MAX_URLS 16
#define IMAGE_MAX_BYTES (20u * 1024 * 1024)
#define IMAGE_TIMEOUT_MS 20000
#define PING_S 10

struct chat;

/* One image the client gave by http(s) URL, downloaded before the turn starts. */
struct chat_image {
    struct chat *c;
    struct conv_part *part; /* in c->conv */
    size_t msg, idx;        /* c->conv->msgs[msg].parts[idx] */
    int pending;            /* its fetch is in flight */
};

/*
 * One model request, in any API: the OpenAI chat completion, the Anthropic
 * message or the OpenAI response.  The flow (image downloads, model check,
 * turn) is the same; only the output format differs, chosen by `anthropic`
 * and `responses`.
 */
struct chat {
    struct http_req *r;      /* NULL once a background response has been answered */
    struct conv *conv;       /* until the turn starts */
    struct chat_opts opts;
    int anthropic;
    struct msg_opts mopts;
    struct msg_stream ms;
    int responses;
    struct resp_req rq;
    struct resp_stream rs;
    int background;          /* answered at turn start; the outcome is only stored */
    int64_t created_ms;
    struct http_server *srv;
    struct chat *bg_next, *bg_prev; /* running background responses */
    int64_t input_estimate;  /* conv_estimate_tokens(): the size check, message_start usage */
    struct event *ping;      /* Anthropic streams: ping while the model is silent */
    struct turn *turn;
    char id[48];
    char *model;
    int64_t created;
    int started;             /* SSE headers and the role chunk are out */
    int waiting_models;
    struct chat_image *images;
    size_t nimages, images_pending;
    struct buf out;
};

static void chat_free(struct chat *c)
{
    if (c->ping)
        event_free(c->ping);
    if (c->responses) {
        resp_stream_release(&c->rs);
        resp_req_release(&c->rq);
    }
    msg_opts_release(&c->mopts);
    conv_free(c->conv);
    free(c->images);
    free(c->model);
    buf_release(&c->out);
    free(c);
}

/* Sends what c->out holds as one SSE write and empties it. */
static void chat_flush(struct chat *c)
{
    if (c->out.len)
        http_stream_write(c->r, c->out.ptr, c->out.len);
    buf_reset(&c->out);
}

/* Streams start lazily, at the first delta: an error before any output can
 * still be a proper HTTP status instead of an error event. */
static void chat_begin_stream(struct chat *c)
{
    int rc;

    if (c->started)
        return;
    c->started = 1;
    http_stream_start(c->r);
    if (c->anthropic)
        rc = msg_stream_start(&c->ms, &c->out, c->input_estimate);
    else if (c->responses)
        rc = resp_stream_start(&c->rs, &c->out);
    else
        rc = chat_chunk_role(&c->out, c->id, c->model, c->created);
    if (rc)
        buf_reset(&c->out);
}

/* Appends a delta in the request's API, then writes it out at once. */
static void chat_emit(struct chat *c, int rc)
{
    if (rc)
        buf_reset(&c->out);
    chat_flush(c);
}

static void on_text(void *ud, const char *s, size_t n)
{
    struct chat *c = ud;
    if (!c->opts.stream)
        return;
    chat_begin_stream(c);
    if (c->responses)
        chat_emit(c, resp_stream_text(&c->rs, &c->out, s, n));
    else
        chat_emit(c, c->anthropic ? msg_stream_text(&c->ms, &c->out, s, n)
                                  : chat_chunk_text(&c->out, c->id, c->model, c->created, s, n));
}

static void on_reasoning(void *ud, const char *s, size_t n)
{
    struct chat *c = ud;
    if (!c->opts.stream)
        return;
    chat_begin_stream(c);
    if (c->responses)
        chat_emit(c, resp_stream_reasoning(&c->rs, &c->out, s, n));
    else
        chat_emit(c, c->anthropic
                         ? msg_stream_thinking(&c->ms, &c->out, s, n)
                         : chat_chunk_reasoning(&c->out, c->id, c->model, c->created, s, n));
}

static void on_tool_call(void *ud, size_t index, const char *id, const char *name,
                         const char *args, size_t n)
{
    struct chat *c = ud;
    if (!c->opts.stream)
        return;
    chat_begin_stream(c);
    if (c->responses)
        chat_emit(c, resp_stream_tool(&c->rs, &c->out, index, id, name, args, n));
    else
        chat_emit(c, c->anthropic ? msg_stream_tool(&c->ms, &c->out, index, id, name, args, n)
                                  : chat_chunk_tool_call(&c->out, c->id, c->model, c->created,
                                                         index, id, name, args, n));
}

/* Anthropic clients expect pings while the model is silent; the first one
 * also starts the stream (message_start) if no delta has yet. */
static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct chat *c = arg;
    if (!c->turn)
        return;
    chat_begin_stream(c);
    chat_emit(c, msg_stream_ping(&c->out));
}

static json_t *chat_final(struct chat *c, const struct turn_result *res)
{
    if (c->anthropic)
        return msg_response(c->id, c->model, c->mopts.thinking, res);
    return chat_response(c->id, c->model, c->created, res);
}

static int chat_stream_end(struct chat *c, const struct turn_result *res)
{
    int rc;

    if (c->anthropic)
        return res->ok ? msg_stream_finish(&c->ms, &c->out, res)
                       : msg_stream_error(&c->out, &res->err);
    if (!res->ok) {
        rc = chat_chunk_error(&c->out, &res->err);
    } else {
        rc = chat_chunk_finish(&c->out, c->id, c->model, c->created, res->finish);
        if (!rc && c->opts.include_usage)
            rc = chat_chunk_usage(&c->out, c->id, c->model, c->created, &res->usage);
    }
    return rc ? rc : chat_chunk_done(&c->out);
}

static void resp_on_done(struct chat *c, const struct turn_result *res);

static void on_done(void *ud, const struct turn_result *res)
{
    struct chat *c = ud;
    struct http_req *r = c->r;

    c->turn = NULL;
    if (c->responses) {
        resp_on_done(c, res);
        return;
    }
    r->on_gone = NULL;
    if (!c->opts.stream || (!res->ok && !c->started)) {
        if (res->ok)
            http_reply_json(r, 200, chat_final(c, res));
        else
            http_reply_error(r, &res->err);
        chat_free(c);
        return;
    }
    chat_begin_stream(c);
    chat_emit(c, chat_stream_end(c, res));
    http_stream_end(r);
    chat_free(c);
}

static void images_cancel(struct chat *c);
static void resp_unstore(struct chat *c);

static void chat_gone(struct http_req *r)
{
    struct chat *c = r->hdata;
    if (c->images_pending)
        images_cancel(c);
    if (c->turn) {
        broker_turn_cancel(c->turn);
        if (c->responses)
            resp_unstore(c); /* a response the client left is not kept: its in_progress row */
    }
    if (c->waiting_models)
        models_cancel(http_server_models(r->srv), c);
    chat_free(c);
}

/* The shutdown timeout passed with the answer still running: end it now with
 * an error its client can read (a stream gets its API's error event and
 * terminator), instead of a cut connection. */
static void chat_shutdown(struct http_req *r)
{
    struct chat *c = r->hdata;
    struct turn_result res;

    memset(&res, 0, sizeof(res));
    gw_err_set(&res.err, GW_ERUNTIME, "the gateway is shutting down; retry the request");
    if (!c || !c->turn) {
        if (c)
            chat_gone(r); /* cancels downloads and the model lookup, frees c */
        r->on_gone = NULL;
        r->hdata = NULL;
        http_reply_error(r, &res.err);
        return;
    }
    broker_turn_cancel(c->turn);
    c->turn = NULL;
    on_done(c, &res);
}

static const struct turn_sink chat_sink = {on_text, on_reasoning, on_tool_call, on_done};

static void resp_background_started(struct chat *c);
static int resp_store_first(struct chat *c, struct gw_err *err);

static void chat_run(struct chat *c)
{
    struct gw_err err;
    struct conv *conv = c->conv;

    c->conv = NULL;
    if (c->responses && resp_store_first(c, &err)) {
        conv_free(conv);
        c->r->on_gone = NULL;
        http_reply_error(c->r, &err);
        chat_free(c);
        return;
    }
    struct turn_req tr = {.principal = "anon", .profile = &profile_pure_model,
                          .request_id = c->r->id};
    c->turn = broker_turn_start(http_server_broker(c->r->srv), conv, &tr, &chat_sink, c, &err);
    if (!c->turn) {
        if (c->responses)
            resp_unstore(c);
        c->r->on_gone = NULL;
        http_reply_error(c->r, &err);
        chat_free(c);
        return;
    }
    if (c->background) {
        resp_background_started(c);
        return;
    }
    if (c->anthropic && c->opts.stream) {
        struct timeval tv = {PING_S, 0};
        c->ping = event_new(http_server_base(c->r->srv), -1, EV_PERSIST, on_ping, c);
        event_add(c->ping, &tv);
    }
}

/*
 * Claude Code sends Anthropic's ids (claude-sonnet-4-5-20250929,
 * claude-opus-4-1); Copilot names them claude-sonnet-4.5.  Strip a date
 * suffix, write the version with dots, and fall back to the configured
 * default for any other claude-* id.  Returns 1 if c->conv->model was set.
 */
static int resolve_claude(struct chat *c, const json_t *list, const char *fallback)
{
    char id[256];
    size_t n;

    if (strncmp(c->conv->model, "claude", 6) != 0)
        return 0;
    snprintf(id, sizeof(id), "%s", c->conv->model);
    n = strlen(id);
    if (n > 9 && id[n - 9] == '-' && strspn(id + n - 8, "0123456789") == 8)
        id[n -= 9] = '\0';
    for (size_t i = 1; i + 1 < n; i++)
        if (id[i] == '-' && id[i - 1] >= '0' && id[i - 1] <= '9' && id[i + 1] >= '0' &&
            id[i + 1] <= '9')
            id[i] = '.';
    if (!models_find(list, id)) {
        if (!fallback || !*fallback)
            return 0;
        snprintf(id, sizeof(id), "%s", fallback);
    }
    free(c->conv->model);
    c->conv->model = xstrdup(id);
    log_msg(LOG_DEBUG, "http", "req=%s model '%.100s' served by '%s'", c->r->id, c->model, id);
    return 1;
}

/*
 * A conversation larger than the model's context window (or than
 * --max-input-tokens) never reaches the runtime: it is refused with the
 * API's own 400, as OpenAI and Anthropic do.  m is the model's catalogue
 * entry, or NULL when unknown.  Returns 1 if the request was answered.
 */
static int chat_too_long(struct chat *c, const json_t *m)
{
    int64_t limit = models_input_limit(m, http_server_max_input_tokens(c->srv));
    struct gw_err e;

    if (limit <= 0 || c->input_estimate <= limit)
        return 0;
    api_context_exceeded(&e, c->anthropic, c->responses ? "input" : "messages", limit,
                         c->input_estimate);
    log_msg(LOG_INFO, "http", "req=%s about %lld tokens for '%.100s', whose limit is %lld",
            c->r->id, (long long)c->input_estimate, c->conv->model, (long long)limit);
    c->r->on_gone = NULL;
    http_reply_error(c->r, &e);
    chat_free(c);
    return 1;
}

static void images_start(struct chat *c);

/* The model must be one the catalogue knows; if the catalogue cannot be had
 * (provider without /models), the request goes on and the provider decides.
 * Then the conversation must fit it, and only then are image URLs fetched. */
static void on_models(void *ud, const json_t *list, const struct gw_err *err)
{
    struct chat *c = ud;
    struct gw_err e;

    c->waiting_models = 0;
    if (err && err->code == GW_EAUTH) {
        c->r->on_gone = NULL;
        http_reply_error(c->r, err);
        chat_free(c);
        return;
    }
    if (list && !models_find(list, c->conv->model) && c->anthropic &&
        resolve_claude(c, list, http_server_anthropic_default(c->r->srv))) {
        /* resolved: c->conv->model names the catalogue's model */
    } else if (list && !models_find(list, c->conv->model)) {
        gw_err_param(&e, GW_ENOTFOUND, "model",
                     "The model '%.200s' does not exist or you do not have access to it.",
                     c->model);
        snprintf(e.api_code, sizeof(e.api_code), "model_not_found");
        c->r->on_gone = NULL;
        http_reply_error(c->r, &e);
        chat_free(c);
        return;
    }
    if (err)
        log_msg(LOG_DEBUG, "http", "req=%s model list unavailable (%s): not checking the model",
                c->r->id, err->msg);
    if (chat_too_long(c, models_find(list, c->conv->model)))
        return;
    if (c->nimages) {
        images_start(c);
        return;
    }
    chat_run(c);
}

static void chat_check_model(struct chat *c)
{
    c->waiting_models = 1;
    models_get(http_server_models(c->r->srv), on_models, c);
}

/* ---- image URLs: downloaded by the gateway, since the runtime takes inline images only ---- */

/*
 * The request parameter of an image part, "messages[i].content[j].image_url".
 * chat_parse() joins system and developer messages into conv->system and
 * maps every other message, and every part of a user message, one to one;
 * so skipping those roles in the request maps conv's indexes back.
 * NEEDSWORK: have chat_parse() keep each part's request path in the conv.
 */
static void image_param(struct chat *c, const struct chat_image *im, char *out, size_t n)
{
    size_t len, i, k = 0, req = im->msg;

    if (c->anthropic || c->responses) { /* NEEDSWORK: the exact path, as for chat */
        snprintf(out, n, c->responses ? "input" : "messages");
        return;
    }
    const char *body = http_req_body(c->r, &len);
    json_t *root = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *msgs = json_object_get(root, "messages"), *m;

    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));

        if (role && (!strcmp(role, "system") || !strcmp(role, "developer")))
            continue;
        if (k++ == im->msg) {
            req = i;
            break;
        }
    }
    json_decref(root);
    snprintf(out, n, "messages[%zu].content[%zu].image_url", req, im->idx);
}

static void images_cancel(struct chat *c)
{
    struct fetch *f = http_server_fetch(c->r->srv);

    for (size_t i = 0; i < c->nimages; i++) {
        if (!c->images[i].pending)
            continue;
        fetch_cancel(f, &c->images[i]);
        c->images[i].pending = 0;
    }
    c->images_pending = 0;
}

/* Ends the request with a 400 naming the image: the others are dropped. */
static void image_fail(struct chat *c, const struct chat_image *im, const char *api_code,
                       const char *why)
{
    struct gw_err e;
    char param[sizeof(e.param)];

    images_cancel(c);
    image_param(c, im, param, sizeof(param));
    gw_err_param(&e, GW_EINVAL, param, "could not download the image at '%s': %s", param, why);
    snprintf(e.api_code, sizeof(e.api_code), "%s", api_code);
    log_msg(LOG_INFO, "http", "req=%s %s", c->r->id, e.msg);
    c->r->on_gone = NULL;
    http_reply_error(c->r, &e);
    chat_free(c);
}

/* The bare media type of a Content-Type ("image/png; x=y" -> "image/png"), lowercased. */
static void media_type(const char *ctype, char *out, size_t n)
{
    size_t k = 0;
    const char *p = ctype ? ctype : "";

    while (*p == ' ' || *p == '\t')
        p++;
    for (; *p && *p != ';' && *p != ' ' && *p != '\t' && k + 1 < n; p++) {
        char ch = *p;
        /* Keep what a media type may hold; it is quoted back to the client. */
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("/+.-_", ch)))
            ch = '?';
        out[k++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    out[k] = '\0';
}

/* The mime type the runtime gets for a media type, or NULL if it takes no such image. */
static const char *image_mime(const char *type)
{
    static const char *const ok[] = {"image/png", "image/jpeg", "image/gif", "image/webp"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(type, ok[i]))
            return ok[i];
    if (!strcmp(type, "image/jpg")) /* not registered, but servers send it */
        return "image/jpeg";
    return NULL;
}

/* Fills im->part from a response, or fails the request (1) saying why. */
static int image_store(struct chat *c, struct chat_image *im, const struct fetch_resp *resp)
{
    char type[64], why[160];
    const char *mime;
    struct conv_part *p = im->part;

    if (resp->status < 200 || resp->status > 299) {
        snprintf(why, sizeof(why), "HTTP %d", resp->status);
        image_fail(c, im, "invalid_image_url", why);
        return 1;
    }
    media_type(resp->content_type, type, sizeof(type));
    mime = image_mime(type);
    if (!mime) {
        if (strncmp(type, "image/", 6) == 0)
            snprintf(why, sizeof(why),
                     "unsupported image type (content-type %s); supported: png, jpeg, gif, webp",
                     type);
        else
            snprintf(why, sizeof(why), "it is not an image (content-type %s)",
                     type[0] ? type : "missing");
        image_fail(c, im, "invalid_image_format", why);
        return 1;
    }
    if (resp->len == 0) {
        image_fail(c, im, "invalid_image_format", "the image is empty");
        return 1;
    }
    free(p->mime);
    free(p->data_b64);
    free(p->url);
    p->mime = xstrdup(mime);
    p->data_b64 = base64_encode(resp->body, resp->len, NULL);
    p->url = NULL; /* an inline image now, as if given by data: URL */
    log_msg(LOG_DEBUG, "http", "req=%s image %zu.%zu: %zu bytes of %s", c->r->id, im->msg, im->idx,
            resp->len, mime);
    return 0;
}

static void on_image(void *ud, const struct fetch_resp *resp, const struct gw_err *err)
{
    struct chat_image *im = ud;
    struct chat *c = im->c;
    char why[sizeof(err->msg) + 32];

    im->pending = 0;
    c->images_pending--;
    if (err) {
        /* fetch_get_ex() reports a refused private address as GW_EINVAL. */
        if (err->code == GW_EINVAL)
            snprintf(why, sizeof(why), "the image URL resolves to a private or local address");
        else if (err->code == GW_ETIMEDOUT)
            snprintf(why, sizeof(why), "timed out after %d s", IMAGE_TIMEOUT_MS / 1000);
        else if (err->code == GW_ETOOBIG)
            snprintf(why, sizeof(why), "the image is larger than %u MiB",
                     IMAGE_MAX_BYTES / (1024 * 1024));
        else
            snprintf(why, sizeof(why), "%s", err->msg);
        image_fail(c, im, "invalid_image_url", why);
        return;
    }
    if (image_store(c, im, resp))
        return;
    if (c->images_pending)
        return;
    free(c->images); /* they point into c->conv, which the turn will own */
    c->images = NULL;
    c->nimages = 0;
    chat_run(c);
}

/* Notes every image part given by URL; a request may carry at most IMAGE_MAX_URLS. */
static int images_collect(struct chat *c, struct gw_err *err)
{
    struct conv *conv = c->conv;
    size_t n = 0;

    for (size_t i = 0; i < conv->nmsgs; i++)
        for (size_t j = 0; j < conv->msgs[i].nparts; j++) {
            const struct conv_part *p = &conv->msgs[i].parts[j];
            n += p->kind == CONV_IMAGE && p->url && !p->data_b64;
        }
    if (n > IMAGE_MAX_URLS)
        return gw_err_param(err, GW_EINVAL, "messages",
                            "too many image URLs: %zu; a request may give at most %d (send the "
                            "others as data: URLs)",
                            n, IMAGE_MAX_URLS);
    if (n == 0)
        return GW_OK;
    c->images = xcalloc(n, sizeof(*c->images));
    for (size_t i = 0; i < conv->nmsgs; i++)
        for (size_t j = 0; j < conv->msgs[i].nparts; j++) {
            struct conv_part *p = &conv->msgs[i].parts[j];
            if (p->kind != CONV_IMAGE || !p->url || p->data_b64)
                continue;
            c->images[c->nimages++] = (struct chat_image){.c = c, .part = p, .msg = i, .idx = j};
        }
    return GW_OK;
}

/* Starts every download at once; the last one to finish starts the turn. */
static void images_start(struct chat *c)
{
    struct fetch *f = http_server_fetch(c->r->srv);
    struct fetch_opts o = {.accept = "image/png, image/jpeg, image/gif, image/webp, */*;q=0.5",
                           .timeout_ms = IMAGE_TIMEOUT_MS,
                           .max_body = IMAGE_MAX_BYTES,
                           .public_only = !http_server_image_fetch_private(c->r->srv)};

    for (size_t i = 0; i < c->nimages; i++) {
        struct chat_image *im = &c->images[i];
        int rc = f ? fetch_get_ex(f, im->part->url, &o, on_image, im) : GW_EIO;

        if (rc) {
            /* Never called back: fail now, dropping those already started. */
            image_fail(c, im, "invalid_image_url",
                       rc == GW_EINVAL ? "not a valid http(s) URL" : "downloads are unavailable");
            return;
        }
        im->pending = 1;
        c->images_pending++;
    }
}

/* The body, if it is within the size limit (else the reply is sent). */
static const char *body_or_413(struct http_req *r, size_t *len)
{
    const char *body = http_req_body(r, len);
    struct gw_err err;

    if (*len <= http_server_max_body(r->srv))
        return body;
    gw_err_set(&err, GW_ETOOBIG, "request body is %zu bytes; the limit is %zu bytes", *len,
               http_server_max_body(r->srv));
    http_reply_error(r, &err);
    return NULL;
}

/* X-Session-Id overrides any pin the API's own fields gave.  0 or replied. */
static int apply_pin(struct http_req *r, struct conv *conv)
{
    const char *pin = http_req_header(r, "X-Session-Id");
    struct gw_err err;

    if (!pin)
        return 0;
    if (!*pin || strlen(pin) > 128) {
        gw_err_set(&err, GW_EINVAL, "X-Session-Id must be 1 to 128 characters");
        http_reply_error(r, &err);
        return -1;
    }
    free(conv->pin);
    conv->pin = xstrdup(pin);
    return 0;
}

static struct chat *chat_new(struct http_req *r, struct conv *conv, const char *id_prefix)
{
    struct chat *c = xcalloc(1, sizeof(*c));
    size_t k = strlen(id_prefix);

    c->r = r;
    c->srv = r->srv;
    c->conv = conv;
    c->model = xstrdup(conv->model);
    c->input_estimate = conv_estimate_tokens(conv);
    c->created_ms = util_wall_ms();
    c->created = c->created_ms / 1000;
    memcpy(c->id, id_prefix, k);
    util_rand_id(c->id + k, 29);
    buf_init(&c->out, 64u * 1024 * 1024);
    return c;
}

/* Rewrites conv->model by the --model-alias list ("FROM=TO,FROM=TO"). */
static void apply_alias(struct chat *c, const char *aliases)
{
    const char *p = aliases, *model = c->conv->model;
    size_t mlen = strlen(model);

    while (p && *p) {
        size_t len = strcspn(p, ","), flen = strcspn(p, "=");
        if (flen < len && flen == mlen && strncmp(p, model, mlen) == 0 && len > flen + 1) {
            char *to = xstrndup(p + flen + 1, len - flen - 1);
            log_msg(LOG_DEBUG, "http", "req=%s model '%s' is an alias of '%s'", c->r->id, model,
                    to);
            free(c->conv->model);
            c->conv->model = to;
            return;
        }
        p += len;
        p += *p == ',';
    }
}

/* Checks the model and the conversation's size, downloads URL images if any, runs the turn. */
static void chat_go(struct chat *c)
{
    struct http_req *r = c->r;
    struct gw_err err;

    apply_alias(c, http_server_model_aliases(r->srv));

    if (images_collect(c, &err)) {
        http_reply_error(r, &err);
        chat_free(c);
        return;
    }
    r->hdata = c;
    r->on_gone = chat_gone;
    r->on_shutdown = chat_shutdown;
    chat_check_model(c);
}

void http_route_chat(struct http_req *r)
{
    struct chat *c;
    struct gw_err err;
    size_t len;
    const char *body = body_or_413(r, &len);
    struct conv *conv = NULL;
    struct chat_opts opts = {0};

    if (!body)
        return;
    if (chat_parse(body, len, &conv, &opts, &err)) {
        http_reply_error(r, &err);
        return;
    }
    if (apply_pin(r, conv)) {
        conv_free(conv);
        return;
    }
    c = chat_new(r, conv, "chatcmpl-");
    c->opts = opts;
    chat_go(c);
}

/* ---- POST /v1/messages, /v1/messages/count_tokens (Anthropic) ------------------------- */

void http_route_messages(struct http_req *r)
{
    struct chat *c;
    struct gw_err err;
    size_t len;
    const char *body = body_or_413(r, &len);
    struct conv *conv = NULL;
    struct msg_opts mopts;

    memset(&mopts, 0, sizeof(mopts));
    if (!body)
        return;
    if (msg_parse(body, len, &conv, &mopts, &err)) {
        http_reply_error(r, &err);
        return;
    }
    if (apply_pin(r, conv)) {
        conv_free(conv);
        msg_opts_release(&mopts);
        return;
    }
    c = chat_new(r, conv, "msg_");
    c->anthropic = 1;
    c->mopts = mopts;
    c->opts.stream = mopts.stream;
    c->ms.id = c->id;
    c->ms.model = c->model;
    c->ms.thinking = mopts.thinking;
    chat_go(c);
}

/*
 * The same estimate as message_start's usage.input_tokens: about four bytes
 * a token over the system prompt, the messages and the tool definitions.
 * The runtime counts the real tokens only when it calls the model.
 */
void http_route_count_tokens(struct http_req *r)
{
    struct gw_err err;
    size_t len;
    const char *body = body_or_413(r, &len);
    json_t *root;
    char *fixed;
    struct conv *conv = NULL;
    struct msg_opts mopts;

    if (!body)
        return;
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

/* ---- POST /v1/responses, GET/DELETE /v1/responses/{id}, .../cancel (OpenAI Responses) ---- */

/* How many stored responses a previous_response_id chain may span. */
#define RESP_CHAIN_MAX 1000

/* Background responses still running: one server per process, so one list. */
static struct chat *bg_list;

static void bg_link(struct chat *c)
{
    c->bg_next = bg_list;
    c->bg_prev = NULL;
    if (bg_list)
        bg_list->bg_prev = c;
    bg_list = c;
    http_server_hold(c->srv);
}

static void bg_unlink(struct chat *c)
{
    if (c->bg_prev)
        c->bg_prev->bg_next = c->bg_next;
    else
        bg_list = c->bg_next;
    if (c->bg_next)
        c->bg_next->bg_prev = c->bg_prev;
    c->bg_next = c->bg_prev = NULL;
    http_server_release(c->srv);
}

static struct chat *bg_find(const char *id)
{
    for (struct chat *c = bg_list; c; c = c->bg_next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

/*
 * Stores obj as the response's current state (store: true only).  A failure
 * is logged and returned in err: a 507 for a full or failing disk
 * (store/store.h), the client's to see.
 */
static int resp_save(struct chat *c, const json_t *obj, struct gw_err *err)
{
    struct store *st = http_server_responses(c->srv);
    struct store_response sr = {0};
    struct gw_err e;
    int64_t ttl = http_server_responses_ttl_s(c->srv);
    int rc = GW_OK;

    if (!c->rq.store || !st)
        return GW_OK;
    sr.id = c->id;
    sr.prev = c->rq.previous_response_id;
    sr.created = c->created_ms;
    sr.input = json_dumps(c->rq.input, JSON_COMPACT);
    sr.response = json_dumps(obj, JSON_COMPACT);
    if (!sr.input || !sr.response)
        rc = gw_err_set(&e, GW_ENOMEM, "out of memory");
    else
        rc = store_resp_put(st, &sr, http_server_responses_max(c->srv), &e);
    free(sr.input);
    free(sr.response);
    if (rc) {
        log_msg(LOG_WARN, "http", "response %s could not be stored: %s", c->id, e.msg);
        if (err) {
            *err = e;
            snprintf(err->msg, sizeof(err->msg),
                     "the response could not be stored (store: true): %s; retry once the "
                     "gateway has room again",
                     e.msg);
        }
        return rc;
    }
    /* Expiry is housekeeping: its failure loses nothing the client was promised. */
    if (ttl > 0 && store_resp_expire(st, util_wall_ms() - ttl * 1000, &e) < 0)
        log_msg(LOG_WARN, "http", "stored responses could not be expired: %s", e.msg);
    return GW_OK;
}

/*
 * A stored response is written once before its turn starts (status
 * in_progress): a disk that cannot take it fails the request with 507
 * before any 200, streamed and background ones included, and before the
 * model is called.  A low disk is refused even before that write.
 */
static int resp_store_first(struct chat *c, struct gw_err *err)
{
    json_t *obj;
    int rc;

    if (!c->rq.store)
        return GW_OK;
    if (!broker_can_write(http_server_broker(c->srv), err))
        return err->code;
    obj = resp_object(&c->rs, "in_progress", NULL);
    rc = resp_save(c, obj, err);
    json_decref(obj);
    return rc;
}

/* The turn never started: its in_progress row goes (best effort: the request fails anyway). */
static void resp_unstore(struct chat *c)
{
    struct store *st = http_server_responses(c->srv);
    struct gw_err e;

    if (c->rq.store && st && store_resp_delete(st, c->id, &e) < 0)
        log_msg(LOG_WARN, "http", "response %s: its in_progress row stays: %s", c->id, e.msg);
}

/*
 * The final state could not be stored: keep at least a small "failed"
 * object (no output) in place of the in_progress row, so that a GET says
 * what the client was told.
 */
static void resp_save_failed(struct chat *c, const struct gw_err *why)
{
    struct turn_result fres;
    struct gw_err e;
    json_t *obj;

    memset(&fres, 0, sizeof(fres));
    fres.err = *why;
    obj = resp_object(&c->rs, "failed", &fres);
    json_object_set_new(obj, "output", json_array());
    if (resp_save(c, obj, &e))
        log_msg(LOG_ERROR, "http", "response %s is left as in_progress in gateway.db", c->id);
    json_decref(obj);
}

/*
 * A stream whose final state could not be stored: its last event (the
 * response.completed / .incomplete just built into c->out) becomes
 * response.failed with the storage error.  SSE events end with a blank line
 * and compact JSON holds no raw newline, so the last event starts after the
 * last "\n\n" but one.
 */
static void stream_fail_last(struct chat *c, const struct turn_result *res,
                             const struct gw_err *why)
{
    struct turn_result fres = *res;
    size_t start;

    if (c->out.len < 2)
        return;
    start = c->out.len - 2;
    while (start >= 2 && !(c->out.ptr[start - 1] == '\n' && c->out.ptr[start - 2] == '\n'))
        start--;
    if (start < 2)
        start = 0;
    c->out.len = start;
    c->out.ptr[start] = '\0';
    c->rs.seq--;
    fres.ok = 0;
    fres.err = *why;
    if (resp_stream_finish(&c->rs, &c->out, &fres, 0))
        buf_reset(&c->out);
}

/* The turn of a response ended: store the outcome, then finish the stream or reply. */
static void resp_on_done(struct chat *c, const struct turn_result *res)
{
    struct http_req *r = c->r;
    int stream = r && c->opts.stream && (res->ok || c->started);
    struct gw_err serr;
    json_t *obj;
    int saved;

    if (stream) {
        chat_begin_stream(c);
        if (resp_stream_finish(&c->rs, &c->out, res, 0))
            buf_reset(&c->out);
    } else if (resp_stream_finish(&c->rs, NULL, res, 1)) {
        log_msg(LOG_WARN, "http", "req=%s response %s: its output could not be built",
                r ? r->id : "-", c->id);
    }
    obj = resp_object(&c->rs, resp_status(res), res);
    saved = resp_save(c, obj, &serr);
    if (saved != GW_OK)
        resp_save_failed(c, &serr);
    if (!r) { /* background: the client reads the outcome with GET */
        log_msg(LOG_DEBUG, "http", "background response %s %s", c->id, resp_status(res));
        bg_unlink(c);
        json_decref(obj);
        chat_free(c);
        return;
    }
    r->on_gone = NULL;
    if (stream) {
        json_decref(obj);
        if (saved != GW_OK && res->ok)
            stream_fail_last(c, res, &serr);
        chat_emit(c, 0);
        http_stream_end(r);
    } else if (!res->ok) {
        json_decref(obj);
        http_reply_error(r, &res->err);
    } else if (saved != GW_OK) {
        json_decref(obj);
        http_reply_error(r, &serr); /* never a 200 for a response that was not kept */
    } else {
        http_reply_json(r, 200, obj);
    }
    chat_free(c);
}

/* A background response's turn has started: answer now, let it run on.  Its in_progress
 * row was stored before the turn started (resp_store_first). */
static void resp_background_started(struct chat *c)
{
    struct http_req *r = c->r;
    json_t *obj = resp_object(&c->rs, "in_progress", NULL);

    bg_link(c);
    r->on_gone = NULL;
    r->hdata = NULL;
    c->r = NULL;
    http_reply_json(r, 200, obj);
}

/* Ends a running background response as `status` (cancelled, failed) and stores that. */
static json_t *bg_end(struct chat *c, const char *status, const char *why)
{
    struct turn_result res;
    json_t *obj;

    if (c->turn)
        broker_turn_cancel(c->turn);
    c->turn = NULL;
    memset(&res, 0, sizeof(res));
    if (why)
        gw_err_set(&res.err, GW_ERUNTIME, "%s", why);
    obj = resp_object(&c->rs, status, why ? &res : NULL);
    if (resp_save(c, obj, NULL))
        log_msg(LOG_ERROR, "http", "response %s is left as in_progress in gateway.db", c->id);
    bg_unlink(c);
    chat_free(c);
    return obj;
}

void http_routes_shutdown(struct http_server *s)
{
    struct chat *c = bg_list, *next;

    for (; c; c = next) {
        next = c->bg_next;
        if (c->srv != s)
            continue;
        log_msg(LOG_WARN, "http", "background response %s ended by the shutdown", c->id);
        json_decref(bg_end(c, "failed", "the gateway shut down before the response finished"));
    }
}

static void resp_not_found(struct gw_err *err, const char *param, const char *fmt, const char *id)
{
    gw_err_param(err, GW_ENOTFOUND, param, fmt, api_clip(id), id);
}

/*
 * The items a previous_response_id stands for: every stored response of its
 * chain, oldest first, each as its input items then its output items.
 * Returns a new array, or NULL with err set.
 */
static json_t *resp_history(struct http_server *srv, const char *prev, struct gw_err *err)
{
    struct store *st = http_server_responses(srv);
    json_t *items = json_array();
    char *cur = xstrdup(prev);

    for (int depth = 0; cur; depth++) {
        struct store_response sr;
        json_t *in, *obj, *output;
        const char *status;
        int rc, bad;

        if (depth == RESP_CHAIN_MAX) {
            gw_err_param(err, GW_EINVAL, "previous_response_id",
                         "The conversation continues more than %d stored responses; send the "
                         "input in full instead.",
                         RESP_CHAIN_MAX);
            goto fail;
        }
        rc = st ? store_resp_get(st, cur, &sr, err) : 0;
        if (rc < 0)
            goto fail;
        if (rc == 0) {
            if (depth == 0)
                resp_not_found(err, "previous_response_id",
                               "Previous response with id '%.*s' not found.", cur);
            else
                resp_not_found(err, "previous_response_id",
                               "Previous response '%.*s' continues a response that has "
                               "expired or was deleted.",
                               prev);
            goto fail;
        }
        in = json_loads(sr.input, 0, NULL);
        obj = json_loads(sr.response, 0, NULL);
        output = json_object_get(obj, "output");
        status = json_string_value(json_object_get(obj, "status"));
        bad = 1;
        if (!json_is_array(in) || !json_is_array(output) || !status)
            gw_err_set(err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(cur),
                       cur);
        else if (depth == 0 && (bg_find(cur) || !strcmp(status, "in_progress")))
            gw_err_param(err, GW_EINVAL, "previous_response_id",
                         "Previous response '%.*s' is still in progress; wait for it to finish.",
                         api_clip(cur), cur);
        else
            bad = 0;
        free(cur);
        cur = !bad && sr.prev ? xstrdup(sr.prev) : NULL;
        store_response_release(&sr);
        if (!bad) { /* this response's input and output come before what is already here */
            json_array_extend(in, output);
            json_array_extend(in, items);
            json_decref(items);
            items = json_incref(in);
        }
        json_decref(in);
        json_decref(obj);
        if (bad)
            goto fail;
    }
    return items;

fail:
    free(cur);
    json_decref(items);
    return NULL;
}

static void responses_create(struct http_req *r)
{
    struct chat *c;
    struct gw_err err;
    size_t len;
    const char *body = body_or_413(r, &len);
    struct resp_req rq;
    json_t *prior = NULL;
    struct conv *conv = NULL;

    if (!body)
        return;
    if (resp_parse(body, len, &rq, &err))
        goto fail;
    if (rq.previous_response_id) {
        prior = resp_history(r->srv, rq.previous_response_id, &err);
        if (!prior)
            goto fail;
    }
    if (resp_conv(&rq, prior, &conv, &err))
        goto fail;
    json_decref(prior);
    if (apply_pin(r, conv)) {
        conv_free(conv);
        resp_req_release(&rq);
        return;
    }
    c = chat_new(r, conv, "resp_");
    c->responses = 1;
    c->rq = rq;
    c->opts.stream = rq.stream;
    c->background = rq.background;
    resp_stream_init(&c->rs, &c->rq, c->id, c->created);
    chat_go(c);
    return;

fail:
    json_decref(prior);
    resp_req_release(&rq);
    http_reply_error(r, &err);
}

/* GET /v1/responses/{id} */
static void responses_get(struct http_req *r, const char *id)
{
    struct store *st = http_server_responses(r->srv);
    struct store_response sr;
    struct gw_err err;
    int rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    json_t *obj;

    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    obj = json_loads(sr.response, 0, NULL);
    store_response_release(&sr);
    if (!obj) {
        gw_err_set(&err, GW_EIO, "the stored response '%.*s' is unreadable", api_clip(id), id);
        http_reply_error(r, &err);
        return;
    }
    http_reply_json(r, 200, obj);
}

/* DELETE /v1/responses/{id}: a running background response is cancelled first. */
static void responses_delete(struct http_req *r, const char *id)
{
    struct store *st = http_server_responses(r->srv);
    struct chat *c = bg_find(id);
    struct gw_err err;
    int rc;

    if (c)
        json_decref(bg_end(c, "cancelled", NULL));
    rc = st ? store_resp_delete(st, id, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    http_reply_json(r, 200, json_pack("{s:s, s:s, s:b}", "id", id, "object", "response.deleted",
                                      "deleted", 1));
}

/* POST /v1/responses/{id}/cancel: only a running background response can be (as OpenAI). */
static void responses_cancel(struct http_req *r, const char *id)
{
    struct store *st = http_server_responses(r->srv);
    struct chat *c = bg_find(id);
    struct store_response sr;
    struct gw_err err;
    int rc;

    if (c) {
        log_msg(LOG_INFO, "http", "req=%s background response %s cancelled", r->id, id);
        http_reply_json(r, 200, bg_end(c, "cancelled", NULL));
        return;
    }
    rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0) {
        http_reply_error(r, &err);
        return;
    }
    store_response_release(&sr);
    gw_err_set(&err, GW_EINVAL,
               "Only a running response created with background=true can be cancelled; "
               "'%.*s' is not running.",
               api_clip(id), id);
    http_reply_error(r, &err);
}

/* The value of query parameter `name` of the request URI (caller frees), or NULL. */
static char *query_param(struct http_req *r, const char *name)
{
    const char *q = r->query;
    struct evkeyvalq params;
    char *v = NULL;

    if (!q || evhttp_parse_query_str(q, &params) != 0)
        return NULL;
    if (evhttp_find_header(&params, name))
        v = xstrdup(evhttp_find_header(&params, name));
    evhttp_clear_headers(&params);
    return v;
}

/*
 * GET /v1/responses/{id}/input_items: the items the response was given, the
 * previous responses' items included, as a cursor page (order asc|desc,
 * default desc; limit 1-100, default 20; after an item id).  Items stored
 * without an id get one made of the response id and their position.
 */
static void responses_input_items(struct http_req *r, const char *id)
{
    struct store *st = http_server_responses(r->srv);
    struct store_response sr;
    struct gw_err err;
    char *order = query_param(r, "order"), *lim = query_param(r, "limit");
    char *after = query_param(r, "after"), item_id[160];
    json_t *items = NULL, *own = NULL, *data = json_array(), *it;
    int64_t limit = 20;
    int desc = !order || strcmp(order, "asc") != 0, rc;
    size_t i, n, start = 0;

    if (order && strcmp(order, "asc") && strcmp(order, "desc")) {
        gw_err_param(&err, GW_EINVAL, "order",
                     "Invalid value: '%.*s'. Supported values are: 'asc' and 'desc'.",
                     api_clip(order), order);
        goto fail;
    }
    if (lim && util_parse_i64(lim, 1, 100, &limit)) {
        gw_err_param(&err, GW_EINVAL, "limit", "limit must be an integer from 1 to 100");
        goto fail;
    }
    rc = st ? store_resp_get(st, id, &sr, &err) : 0;
    if (rc == 0)
        resp_not_found(&err, NULL, "Response with id '%.*s' not found.", id);
    if (rc <= 0)
        goto fail;
    items = sr.prev ? resp_history(r->srv, sr.prev, &err) : json_array();
    own = json_loads(sr.input, 0, NULL);
    store_response_release(&sr);
    if (!items)
        goto fail;
    json_array_extend(items, own);
    n = json_array_size(items);
    json_array_foreach(items, i, it)
    {
        if (!json_is_object(it) || json_is_string(json_object_get(it, "id")))
            continue;
        snprintf(item_id, sizeof(item_id), "item_%s_%zu", id, i);
        json_object_set_new(it, "id", json_string(item_id));
    }
    for (i = 0; after && i < n; i++) {
        const char *xid = json_string_value(
            json_object_get(json_array_get(items, desc ? n - 1 - i : i), "id"));
        if (xid && !strcmp(xid, after)) {
            start = i + 1;
            break;
        }
    }
    for (i = start; i < n && json_array_size(data) < (size_t)limit; i++)
        json_array_append(data, json_array_get(items, desc ? n - 1 - i : i));
    n = json_array_size(data);
    http_reply_json(r, 200,
                    json_pack("{s:s, s:o, s:O?, s:O?, s:b}", "object", "list", "data", data,
                              "first_id", json_object_get(json_array_get(data, 0), "id"),
                              "last_id", json_object_get(json_array_get(data, n ? n - 1 : 0), "id"),
                              "has_more", i < json_array_size(items)));
    data = NULL;
    goto out;
fail:
    http_reply_error(r, &err);
out:
    json_decref(data);
    json_decref(items);
    json_decref(own);
    free(order);
    free(lim);
    free(after);
}

void http_route_responses(struct http_req *r, const char *rest)
{
    enum evhttp_cmd_type cmd = r->cmd;
    char id[128];
    const char *sub;
    size_t n;

    if (!*rest || !strcmp(rest, "/")) {
        struct gw_err err;
        if (cmd == EVHTTP_REQ_POST) {
            responses_create(r);
            return;
        }
        gw_err_set(&err, GW_EINVAL, "use POST for /v1/responses");
        err.http_status = 405;
        http_reply_error(r, &err);
        return;
    }
    rest++; /* past '/' */
    n = strcspn(rest, "/");
    sub = rest + n;
    if (n == 0 || n >= sizeof(id)) {
        struct gw_err err;
        gw_err_set(&err, GW_ENOTFOUND, "unknown route: %s /v1/responses/%.*s", r->method,
                   api_clip(rest), rest);
        http_reply_error(r, &err);
        return;
    }
    memcpy(id, rest, n);
    id[n] = '\0';
    if (!*sub && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD))
        responses_get(r, id);
    else if (!*sub && cmd == EVHTTP_REQ_DELETE)
        responses_delete(r, id);
    else if (!strcmp(sub, "/cancel") && cmd == EVHTTP_REQ_POST)
        responses_cancel(r, id);
    else if (!strcmp(sub, "/input_items") && cmd == EVHTTP_REQ_GET)
        responses_input_items(r, id);
    else {
        struct gw_err err;
        gw_err_set(&err, GW_ENOTFOUND, "unknown route: %s %s", r->method, r->path);
        err.http_status = *sub && strcmp(sub, "/cancel") && strcmp(sub, "/input_items") ? 404 : 405;
        http_reply_error(r, &err);
    }
}

/* ---- GET /v1/models, /v1/models/{id} ------------------------------------------ */

struct models_req {
    struct http_req *r;
    char *id;
    int anthropic; /* the client sent anthropic-version: answer in Anthropic's format */
};

/* {"type":"model","id","display_name","created_at"} from an OpenAI-shaped entry. */
static json_t *anthropic_model(const json_t *m)
{
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *name = json_string_value(json_object_get(m, "name"));
    time_t created = (time_t)json_integer_value(json_object_get(m, "created"));
    char ts[32];
    struct tm tm;

    gmtime_r(&created, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:s, s:s, s:s, s:s}", "type", "model", "id", id ? id : "", "display_name",
                     name ? name : (id ? id : ""), "created_at", ts);
}

static json_t *anthropic_list(const json_t *list)
{
    json_t *data = json_array();
    size_t i, n = json_array_size(list);
    const json_t *m;

    json_array_foreach(list, i, m)
    {
        json_array_append_new(data, anthropic_model(m));
    }
    return json_pack("{s:o, s:b, s:s?, s:s?}", "data", data, "has_more", 0, "first_id",
                     n ? json_string_value(json_object_get(json_array_get(list, 0), "id")) : NULL,
                     "last_id",
                     n ? json_string_value(json_object_get(json_array_get(list, n - 1), "id"))
                       : NULL);
}

static void models_gone(struct http_req *r)
{
    struct models_req *q = r->hdata;
    models_cancel(http_server_models(r->srv), q);
    free(q->id);
    free(q);
}

static void on_models_list(void *ud, const json_t *list, const struct gw_err *err)
{
    struct models_req *q = ud;
    struct http_req *r = q->r;

    r->on_gone = NULL;
    if (!list) {
        http_reply_error(r, err);
    } else if (q->id) {
        const json_t *m = models_find(list, q->id);
        if (m) {
            http_reply_json(r, 200, q->anthropic ? anthropic_model(m) : json_deep_copy(m));
        } else {
            struct gw_err e;
            gw_err_param(&e, GW_ENOTFOUND, "model", "The model '%.200s' does not exist", q->id);
            snprintf(e.api_code, sizeof(e.api_code), "model_not_found");
            http_reply_error(r, &e);
        }
    } else if (q->anthropic) {
        http_reply_json(r, 200, anthropic_list(list));
    } else {
        http_reply_json(r, 200, json_pack("{s:s, s:O}", "object", "list", "data", list));
    }
    free(q->id);
    free(q);
}

void http_route_models(struct http_req *r, const char *id)
{
    struct models_req *q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->id = id && *id ? xstrdup(id) : NULL;
    q->anthropic = http_req_header(r, "anthropic-version") != NULL;
    if (q->anthropic)
        r->api = HTTP_API_ANTHROPIC;
    r->hdata = q;
    r->on_gone = models_gone;
    models_get(http_server_models(r->srv), on_models_list, q);
}

/* ---- health ------------------------------------------------------------------- */

void http_route_health(struct http_req *r)
{
    http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static json_t *runtime_json(struct rt *rt)
{
    return json_pack("{s:s, s:i, s:s, s:I}", "state", rt_state_name(rt_state(rt)), "pid",
                     rt_pid(rt), "version", rt_version(rt), "generation",
                     (json_int_t)rt_generation(rt));
}

/* The disk section of /readyz: free space and whether gateway.db takes writes. */
static json_t *disk_json(struct broker *b, struct store *st, const struct gw_err *serr, int st_ok)
{
    int64_t data_mb, home_mb, min_mb;

    broker_disk_free(b, &data_mb, &home_mb, &min_mb);
    return json_pack("{s:I, s:I, s:I, s:b, s:s?}", "data_free_mb", (json_int_t)data_mb,
                     "home_free_mb", (json_int_t)home_mb, "min_free_mb", (json_int_t)min_mb,
                     "store_writable", st_ok, "store_error", st_ok ? NULL : serr->msg);
}

/*
 * GET /readyz: 200 {"status":"ready"} or 503 {"status":"not_ready","reason"}.
 * Not ready while no runtime can serve, or while a turn could not write: the
 * data or runtime-home disk below --min-free-mb, or gateway.db refusing
 * writes.  The details (runtime processes with pids and versions, sessions,
 * disk) go only to a request with a valid client key when keys are set.
 */
void http_route_ready(struct http_req *r)
{
    struct broker *b = http_server_broker(r->srv);
    struct store *st = http_server_responses(r->srv);
    struct gw_err derr, serr;
    const char *why;
    int ok = broker_ready(b, &why);
    int disk_ok = broker_can_write(b, &derr);
    int st_ok = !st || store_writable(st, &serr);
    json_t *pool, *body;

    if (ok && !disk_ok)
        why = "low disk space";
    else if (ok && !st_ok)
        why = "cannot write gateway.db";
    ok = ok && disk_ok && st_ok;
    body = json_pack("{s:s, s:s}", "status", ok ? "ready" : "not_ready", "reason", why);
    if (!http_req_authorized(r)) {
        http_reply_json(r, ok ? 200 : 503, body);
        return;
    }
    pool = json_array();
    for (int i = 0; i < broker_pool_size(b); i++) {
        int sessions, draining;
        json_t *o = runtime_json(broker_pool_rt(b, i, &sessions, &draining));
        json_object_set_new(o, "sessions", json_integer(sessions));
        json_object_set_new(o, "draining", json_boolean(draining));
        json_array_append_new(pool, o);
    }
    /* "runtime" is the process serving now (the first ready one). */
    json_object_update_new(
        body, json_pack("{s:o, s:o, s:b, s:b, s:i, s:o}", "runtime", runtime_json(broker_rt(b)),
                        "runtimes", pool, "signed_in", broker_signed_in(b), "byok",
                        broker_byok(b), "turns_active", broker_turns_active(b), "disk",
                        disk_json(b, st, &serr, st_ok)));
    if (!disk_ok)
        json_object_set_new(body, "disk_error", json_string(derr.msg));
    http_reply_json(r, ok ? 200 : 503, body);
}

/* ---- GET /metrics ---------------------------------------------------------------------- */

void http_route_metrics(struct http_req *r)
{
    struct broker_stats st;
    struct buf out;
    int rc;

    broker_stats(http_server_broker(r->srv), &st);
    buf_init(&out, 1024u * 1024);
    rc = buf_addf(&out,
                  "# TYPE copilot_gateway_sessions_created_total counter\n"
                  "copilot_gateway_sessions_created_total %llu\n"
                  "# TYPE copilot_gateway_sessions_seeded_total counter\n"
                  "copilot_gateway_sessions_seeded_total %llu\n"
                  "# TYPE copilot_gateway_sessions_reused_total counter\n"
                  "copilot_gateway_sessions_reused_total %llu\n"
                  "# TYPE copilot_gateway_sessions_evicted_total counter\n"
                  "copilot_gateway_sessions_evicted_total %llu\n"
                  "# TYPE copilot_gateway_sessions_resumed_total counter\n"
                  "copilot_gateway_sessions_resumed_total %llu\n"
                  "# TYPE copilot_gateway_sessions_live gauge\n"
                  "copilot_gateway_sessions_live %d\n"
                  "# TYPE copilot_gateway_sessions_parked gauge\n"
                  "copilot_gateway_sessions_parked %d\n"
                  "# TYPE copilot_gateway_turns_active gauge\n"
                  "copilot_gateway_turns_active %d\n"
                  "# TYPE copilot_gateway_runtime_restarts_total counter\n"
                  "copilot_gateway_runtime_restarts_total %llu\n",
                  (unsigned long long)st.sessions_created, (unsigned long long)st.sessions_seeded,
                  (unsigned long long)st.sessions_reused, (unsigned long long)st.sessions_evicted,
                  (unsigned long long)st.sessions_resumed,
                  st.sessions_live, st.sessions_parked, st.turns_active,
                  (unsigned long long)st.runtime_restarts);
    if (!rc)
        rc = http_server_metrics(r->srv, &out);
    if (rc) {
        struct gw_err err;
        buf_release(&out);
        gw_err_set(&err, GW_ENOMEM, "metrics too large");
        http_reply_error(r, &err);
        return;
    }
    http_reply_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", out.ptr, out.len);
    buf_release(&out);
}
