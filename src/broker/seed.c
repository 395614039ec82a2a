/* Seeding: a canonical history written as a runtime session journal. */
#include "broker/seed.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define SEED_MAX_JOURNAL (256u * 1024 * 1024)

/* Appends one envelope line {type, data, id, timestamp, parentId}; steals data. */
static int add_line(struct buf *out, const char *type, json_t *data, char parent[37])
{
    char id[37], ts[32];
    json_t *line;
    char *s;
    int rc;

    util_uuid(id);
    util_iso8601_now(ts);
    line = json_pack("{s:s, s:o, s:s, s:s, s:s?}", "type", type, "data", data, "id", id,
                     "timestamp", ts, "parentId", parent[0] ? parent : NULL);
    if (!line)
        return GW_EINVAL;
    s = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (!s)
        return GW_EINVAL;
    rc = buf_adds(out, s);
    if (!rc)
        rc = buf_add(out, "\n", 1);
    free(s);
    memcpy(parent, id, sizeof(id));
    return rc;
}

static json_t *user_data(const struct conv_msg *m)
{
    char *text = conv_msg_text(m);
    json_t *data = json_pack("{s:s}", "content", text);
    json_t *att = seed_attachments(m);

    /* Attachments in a seeded user.message reach the model as image parts
     * (verified on 1.0.85), as they do for a live session.send. */
    if (att)
        json_object_set_new(data, "attachments", att);
    free(text);
    return data;
}

static json_t *assistant_data(const struct conv_msg *m)
{
    char mid[37];
    char *text = conv_msg_text(m);
    json_t *reqs = json_array();
    json_t *data;

    for (size_t i = 0; i < m->ncalls; i++) {
        const struct conv_tool_call *tc = &m->calls[i];
        json_t *args = json_loads(tc->arguments ? tc->arguments : "{}", 0, NULL);
        if (!args || !json_is_object(args)) {
            json_decref(args);
            args = json_object();
        }
        json_array_append_new(reqs, json_pack("{s:s, s:s, s:o, s:s}", "toolCallId", tc->id,
                                              "name", tc->name, "arguments", args, "type",
                                              "function"));
    }
    util_uuid(mid);
    data = json_pack("{s:s, s:s, s:o}", "messageId", mid, "content", text, "toolRequests", reqs);
    if (data && m->reasoning && *m->reasoning)
        json_object_set_new(data, "reasoningText", json_string(m->reasoning));
    free(text);
    return data;
}

static json_t *tool_data(const struct conv_msg *m)
{
    char *text = conv_msg_text(m);
    json_t *data;

    if (m->is_error)
        data = json_pack("{s:s, s:b, s:{s:s, s:s}}", "toolCallId", m->tool_call_id, "success", 0,
                         "error", "message", text, "code", "failure");
    else
        data = json_pack("{s:s, s:b, s:{s:s}}", "toolCallId", m->tool_call_id, "success", 1,
                         "result", "content", text);
    free(text);
    return data;
}

json_t *seed_attachments(const struct conv_msg *m)
{
    json_t *att = json_array();
    int n = 0;

    for (size_t i = 0; i < m->nparts; i++) {
        const struct conv_part *p = &m->parts[i];
        char name[32];
        if (p->kind != CONV_IMAGE || !p->data_b64)
            continue;
        snprintf(name, sizeof(name), "image-%d", ++n);
        json_array_append_new(att, json_pack("{s:s, s:s, s:s, s:s}", "type", "blob", "data",
                                             p->data_b64, "mimeType", p->mime, "displayName",
                                             name));
    }
    if (json_array_size(att))
        return att;
    json_decref(att);
    return NULL;
}

int seed_journal(struct buf *out, const char *session_id, const struct conv *c, size_t nmsgs,
                 const char *cwd)
{
    char parent[37] = "";
    char ts[32];
    int rc;

    util_iso8601_now(ts);
    rc = add_line(out, "session.start",
                  json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:{s:s}}", "sessionId", session_id,
                            "version", 1, "producer", "copilot-agent", "copilotVersion", "0.0.0",
                            "startTime", ts, "selectedModel", c->model, "context", "cwd", cwd),
                  parent);
    for (size_t i = 0; !rc && i < nmsgs; i++) {
        const struct conv_msg *m = &c->msgs[i];
        switch (m->role) {
        case CONV_USER:
            rc = add_line(out, "user.message", user_data(m), parent);
            break;
        case CONV_ASSISTANT:
            rc = add_line(out, "assistant.message", assistant_data(m), parent);
            break;
        case CONV_TOOL:
            rc = add_line(out, "tool.execution_complete", tool_data(m), parent);
            break;
        }
    }
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int seed_write(const char *home, const char *session_id, const struct conv *c, size_t nmsgs,
               const char *cwd, struct gw_err *err)
{
    char dir[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
    struct buf j;
    int fd, rc;

    buf_init(&j, SEED_MAX_JOURNAL);
    if (seed_journal(&j, session_id, c, nmsgs, cwd)) {
        buf_release(&j);
        return gw_err_set(err, GW_ETOOBIG, "conversation history is too large to seed");
    }
    snprintf(dir, sizeof(dir), "%s/session-state/%s", home, session_id);
    snprintf(tmp, sizeof(tmp), "%s/events.jsonl.tmp", dir);
    snprintf(path, sizeof(path), "%s/events.jsonl", dir);
    if (util_mkdirs(dir)) {
        log_msg(LOG_ERROR, "broker", "cannot create '%s': %s", dir, strerror(errno));
        buf_release(&j);
        return gw_err_set(err, GW_EIO, "cannot store the conversation for the runtime");
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    rc = fd < 0 ? -1 : write_all(fd, j.ptr, j.len);
    if (fd >= 0 && close(fd) < 0)
        rc = -1;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -1;
    buf_release(&j);
    if (rc) {
        log_msg(LOG_ERROR, "broker", "cannot write '%s': %s", path, strerror(errno));
        util_rmtree(dir);
        return gw_err_set(err, GW_EIO, "cannot store the conversation for the runtime");
    }
    return GW_OK;
}

void seed_remove(const char *home, const char *session_id)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/session-state/%s", home, session_id);
    util_rmtree(dir);
}
