/* The canonical conversation: growable arrays of messages, parts, calls and tools. */
#include "broker/conv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/*
 * Makes room for one more element in an array holding n of them.  The
 * capacity is implied by the count (the next power of two), so the structs
 * in conv.h need no capacity field: the array is full exactly when n is 0 or
 * a power of two, and that is when it doubles.
 */
static void *grow(void *arr, size_t n, size_t elem)
{
    size_t cap;

    if (n != 0 && (n & (n - 1)) != 0)
        return arr;
    cap = n ? n * 2 : 1;
    if (cap > SIZE_MAX / elem)
        abort(); /* cannot happen before memory runs out */
    return xrealloc(arr, cap * elem);
}

struct conv *conv_new(void)
{
    return xcalloc(1, sizeof(struct conv));
}

static void part_release(struct conv_part *p)
{
    free(p->text);
    free(p->mime);
    free(p->data_b64);
    free(p->url);
}

static void msg_release(struct conv_msg *m)
{
    for (size_t i = 0; i < m->nparts; i++)
        part_release(&m->parts[i]);
    free(m->parts);
    for (size_t i = 0; i < m->ncalls; i++) {
        free(m->calls[i].id);
        free(m->calls[i].name);
        free(m->calls[i].arguments);
    }
    free(m->calls);
    free(m->tool_call_id);
    free(m->reasoning);
}

void conv_free(struct conv *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nmsgs; i++)
        msg_release(&c->msgs[i]);
    free(c->msgs);
    for (size_t i = 0; i < c->ntools; i++) {
        free(c->tools[i].name);
        free(c->tools[i].description);
        json_decref(c->tools[i].parameters);
    }
    free(c->tools);
    free(c->model);
    free(c->system);
    free(c->reasoning_effort);
    json_decref(c->response_format);
    free(c->pin);
    free(c);
}

struct conv_msg *conv_add_msg(struct conv *c, enum conv_role role)
{
    struct conv_msg *m;

    c->msgs = grow(c->msgs, c->nmsgs, sizeof(*c->msgs));
    m = &c->msgs[c->nmsgs++];
    memset(m, 0, sizeof(*m));
    m->role = role;
    return m;
}

static struct conv_part *add_part(struct conv_msg *m, enum conv_part_kind kind)
{
    struct conv_part *p;

    m->parts = grow(m->parts, m->nparts, sizeof(*m->parts));
    p = &m->parts[m->nparts++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    return p;
}

struct conv_part *conv_msg_add_text(struct conv_msg *m, const char *text, size_t n)
{
    struct conv_part *p = add_part(m, CONV_TEXT);
    p->text = xstrndup(text ? text : "", text ? n : 0);
    return p;
}

struct conv_part *conv_msg_add_image(struct conv_msg *m, const char *mime, const char *data_b64,
                                     const char *url)
{
    struct conv_part *p = add_part(m, CONV_IMAGE);
    p->mime = xstrdup(mime);
    p->data_b64 = xstrdup(data_b64);
    p->url = xstrdup(url);
    return p;
}

struct conv_tool_call *conv_msg_add_call(struct conv_msg *m, const char *id, const char *name,
                                         const char *arguments)
{
    struct conv_tool_call *tc;

    m->calls = grow(m->calls, m->ncalls, sizeof(*m->calls));
    tc = &m->calls[m->ncalls++];
    tc->id = xstrdup(id);
    tc->name = xstrdup(name);
    /* No arguments is an empty arguments object, so consumers can parse it. */
    tc->arguments = xstrdup(arguments ? arguments : "{}");
    return tc;
}

struct conv_tool *conv_add_tool(struct conv *c, const char *name, const char *description,
                                json_t *parameters)
{
    struct conv_tool *t;

    c->tools = grow(c->tools, c->ntools, sizeof(*c->tools));
    t = &c->tools[c->ntools++];
    t->name = xstrdup(name);
    t->description = xstrdup(description);
    t->parameters = parameters;
    return t;
}

char *conv_msg_text(const struct conv_msg *m)
{
    size_t len = 0, off = 0;
    int first = 1;
    char *s;

    for (size_t i = 0; i < m->nparts; i++)
        if (m->parts[i].kind == CONV_TEXT && m->parts[i].text)
            len += strlen(m->parts[i].text) + 1;
    s = xmalloc(len + 1);
    for (size_t i = 0; i < m->nparts; i++) {
        const char *t = m->parts[i].text;
        size_t n;
        if (m->parts[i].kind != CONV_TEXT || !t)
            continue;
        if (!first)
            s[off++] = '\n';
        first = 0;
        n = strlen(t);
        memcpy(s + off, t, n);
        off += n;
    }
    s[off] = '\0';
    return s;
}

int conv_msg_has_image(const struct conv_msg *m)
{
    for (size_t i = 0; i < m->nparts; i++)
        if (m->parts[i].kind == CONV_IMAGE)
            return 1;
    return 0;
}

/* Bytes of s, 0 for NULL. */
static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Bytes of j as compact JSON, counted without building the text (0 for NULL). */
static size_t json_len(const json_t *j)
{
    return j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
}

/*
 * One pass over what the conversation already holds: strlen() of each text
 * and a counting dump of each JSON schema, so the cost is linear in the
 * request's size and nothing the size of the request is allocated.
 */
int64_t conv_estimate_tokens(const struct conv *c)
{
    size_t bytes = slen(c->system) + json_len(c->response_format);
    int64_t extra = 0;

    for (size_t i = 0; i < c->nmsgs; i++) {
        const struct conv_msg *m = &c->msgs[i];
        extra += 4;
        for (size_t j = 0; j < m->nparts; j++) {
            if (m->parts[j].kind == CONV_IMAGE)
                extra += 765; /* an image tile budget */
            else
                bytes += slen(m->parts[j].text);
        }
        for (size_t j = 0; j < m->ncalls; j++)
            bytes += slen(m->calls[j].name) + slen(m->calls[j].arguments);
    }
    for (size_t i = 0; i < c->ntools; i++)
        bytes += slen(c->tools[i].name) + slen(c->tools[i].description) +
                 json_len(c->tools[i].parameters);
    return (int64_t)((bytes + 3) / 4) + extra + 1;
}
