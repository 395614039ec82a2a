/*
 * The warm-up endpoint: an instant OpenAI-compatible chat completion on a
 * private loopback port, so each new runtime process pays its first-turn
 * tokenizer set-up (operations reference §1.4) without calling Copilot.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "http/server.h"
#include "util/log.h"

static const char sse_reply[] =
    "data: {\"id\":\"chatcmpl-warmup\",\"object\":\"chat.completion.chunk\",\"created\":0,"
    "\"model\":\"warmup\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"ok\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-warmup\",\"object\":\"chat.completion.chunk\",\"created\":0,"
    "\"model\":\"warmup\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

static const char json_reply[] =
    "{\"id\":\"chatcmpl-warmup\",\"object\":\"chat.completion\",\"created\":0,\"model\":"
    "\"warmup\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
    "\"ok\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
    "\"completion_tokens\":1,\"total_tokens\":2}}";

static void on_warmup(struct evhttp_request *req, void *arg)
{
    const char *key = arg;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evbuffer *out;
    int stream;

    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, key) != 0) {
        evhttp_send_error(req, 401, "Unauthorized");
        return;
    }
    /* The runtime streams when the session has streaming on; look for it. */
    stream = evbuffer_search(in, "\"stream\":true", 13, NULL).pos >= 0;
    out = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      stream ? "text/event-stream" : "application/json");
    if (stream)
        evbuffer_add(out, sse_reply, sizeof(sse_reply) - 1);
    else
        evbuffer_add(out, json_reply, sizeof(json_reply) - 1);
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

struct evhttp *http_warmup_listen(struct event_base *base, const char *key, char *url,
                                  size_t urllen, struct gw_err *err)
{
    struct evhttp *h = evhttp_new(base);
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    evhttp_set_max_body_size(h, 8u * 1024 * 1024);
    evhttp_set_timeout(h, 30);
    evhttp_set_gencb(h, on_warmup, (void *)key);
    sock = evhttp_bind_socket_with_handle(h, "127.0.0.1", 0);
    if (!sock || getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &sl) < 0) {
        evhttp_free(h);
        gw_err_set(err, GW_EIO, "cannot open the warm-up endpoint on 127.0.0.1: %s",
                   strerror(errno));
        return NULL;
    }
    snprintf(url, urllen, "http://127.0.0.1:%d/v1", ntohs(sa.sin_port));
    return h;
}
