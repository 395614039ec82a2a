/* A YAML configuration file as a checked tree of nodes, built from libyaml's events. */
#include "util/yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "util/xmalloc.h"

struct builder {
    yaml_parser_t parser;
    const char *file;
    struct gw_err *err;
    struct ypath path;
};

/* ---- key paths and messages --------------------------------------------------------------- */

static void path_add(struct ypath *p, const char *s, size_t n)
{
    static const char cut[] = "...";
    size_t room = sizeof(p->s) - sizeof(cut) - p->len;

    if (p->len >= sizeof(p->s) - sizeof(cut))
        return; /* already cut */
    for (size_t i = 0; i < n && i < room; i++) {
        unsigned char c = (unsigned char)s[i];
        p->s[p->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (n > room) {
        memcpy(p->s + p->len, cut, sizeof(cut) - 1);
        p->len += sizeof(cut) - 1;
    }
    p->s[p->len] = '\0';
}

size_t ypath_push_key(struct ypath *p, const char *key)
{
    size_t old = p->len;

    if (p->len)
        path_add(p, ".", 1);
    path_add(p, key, strlen(key));
    return old;
}

size_t ypath_push_index(struct ypath *p, size_t i)
{
    size_t old = p->len;
    char s[32];
    int n = snprintf(s, sizeof(s), "[%zu]", i);

    path_add(p, s, (size_t)n);
    return old;
}

void ypath_pop(struct ypath *p, size_t len)
{
    p->len = len;
    p->s[len] = '\0';
}

int ydoc_errf(struct gw_err *err, const char *file, unsigned line, const char *path,
              const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path && *path)
        return gw_err_set(err, GW_EINVAL, "%s:%u: '%s': %s", file, line, path, msg);
    return gw_err_set(err, GW_EINVAL, "%s:%u: %s", file, line, msg);
}

/* ---- nodes -------------------------------------------------------------------------------- */

static void node_free(struct ynode *n)
{
    if (!n)
        return;
    free(n->str);
    for (size_t i = 0; n->pairs && i < n->len; i++) {
        free((char *)n->pairs[i].key);
        node_free(n->pairs[i].value);
    }
    for (size_t i = 0; n->items && i < n->len; i++)
        node_free(n->items[i]);
    free(n->pairs);
    free(n->items);
    free(n);
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, const yaml_event_t *ev)
{
    struct ynode *n = xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->line = (unsigned)ev->start_mark.line + 1;
    n->file = b->file;
    return n;
}

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->pairs[i].key, key) == 0)
            return map->pairs[i].value;
    return NULL;
}

bool ynode_is_null(const struct ynode *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (!n || n->kind != YNODE_SCALAR || n->quoted)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp(n->str, nulls[i]) == 0)
            return true;
    return false;
}

const char *ynode_kind_name(const struct ynode *n)
{
    if (n->kind == YNODE_MAP)
        return "a mapping";
    if (n->kind == YNODE_SEQ)
        return "a list";
    return ynode_is_null(n) ? "nothing (null)" : "a string";
}

/* ---- building ----------------------------------------------------------------------------- */

static int fail(struct builder *b, size_t line0, const char *fmt, ...) PRINTF(3, 4);
static int fail(struct builder *b, size_t line0, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ydoc_errf(b->err, b->file, (unsigned)line0 + 1, b->path.s, "%s", msg);
}

static int next(struct builder *b, yaml_event_t *ev)
{
    if (yaml_parser_parse(&b->parser, ev))
        return GW_OK;
    return ydoc_errf(b->err, b->file, (unsigned)b->parser.problem_mark.line + 1, NULL, "%s%s%s",
                     b->parser.context ? b->parser.context : "", b->parser.context ? ": " : "",
                     b->parser.problem ? b->parser.problem : "YAML syntax error");
}

/* Anchors, aliases and tags: refused wherever they appear (keys included). */
static int check_plain(struct builder *b, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;

    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return fail(b, ev->start_mark.line, "YAML aliases (*%s) are not supported",
                    (const char *)ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
        break;
    default:
        return fail(b, ev->start_mark.line, "unexpected YAML event");
    }
    if (anchor)
        return fail(b, ev->start_mark.line, "YAML anchors (&%s) are not supported",
                    (const char *)anchor);
    if (tag)
        return fail(b, ev->start_mark.line, "YAML tags (%s) are not supported", (const char *)tag);
    return GW_OK;
}

static int scalar_text(struct builder *b, const yaml_event_t *ev, char **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;

    if (memchr(v, '\0', n))
        return fail(b, ev->start_mark.line, "NUL characters are not allowed");
    *out = xstrndup(v, n);
    return GW_OK;
}

static int build(struct builder *b, const yaml_event_t *ev, int depth, struct ynode **out);

static int build_seq(struct builder *b, struct ynode *n, int depth)
{
    size_t cap = 0;

    for (;;) {
        yaml_event_t ev;
        struct ynode *item = NULL;
        int rc = next(b, &ev);

        if (rc)
            return rc;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return GW_OK;
        }
        if (n->len == cap) {
            cap = cap ? cap * 2 : 4;
            n->items = xrealloc(n->items, cap * sizeof(*n->items));
        }
        size_t old = ypath_push_index(&b->path, n->len);
        rc = build(b, &ev, depth, &item);
        ypath_pop(&b->path, old);
        yaml_event_delete(&ev);
        n->items[n->len++] = item;
        if (rc)
            return rc;
    }
}

struct keyref {
    const char *key;
    size_t idx;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorting keeps this O(n log n) on large mappings; the earliest repeat in the file is named. */
static int check_duplicates(struct builder *b, const struct ynode *n)
{
    struct keyref *v;
    size_t dup = n->len, first = 0;

    if (n->len < 2)
        return GW_OK;
    v = xmalloc(n->len * sizeof(*v));
    for (size_t i = 0; i < n->len; i++)
        v[i] = (struct keyref){n->pairs[i].key, i};
    qsort(v, n->len, sizeof(*v), keyref_cmp);
    for (size_t i = 1, run = 0; i < n->len; i++) {
        if (strcmp(v[i].key, v[i - 1].key) != 0) {
            run = i;
            continue;
        }
        if (v[i].idx < dup) {
            dup = v[i].idx;
            first = v[run].idx;
        }
    }
    free(v);
    if (dup == n->len)
        return GW_OK;
    size_t old = ypath_push_key(&b->path, n->pairs[dup].key);
    int rc = fail(b, n->pairs[dup].key_line - 1, "duplicate key (first at line %u)",
                  n->pairs[first].key_line);
    ypath_pop(&b->path, old);
    return rc;
}

static int build_map_pair(struct builder *b, struct ynode *n, int depth)
{
    yaml_event_t vev;
    struct ypair *pr = &n->pairs[n->len];
    int rc = next(b, &vev);

    if (rc)
        return rc;
    size_t old = ypath_push_key(&b->path, pr->key);
    rc = build(b, &vev, depth, &pr->value);
    ypath_pop(&b->path, old);
    yaml_event_delete(&vev);
    return rc;
}

static int build_map(struct builder *b, struct ynode *n, int depth)
{
    size_t cap = 0;

    for (;;) {
        yaml_event_t ev;
        int rc = next(b, &ev);

        if (rc)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return check_duplicates(b, n);
        }
        rc = check_plain(b, &ev);
        if (!rc && ev.type != YAML_SCALAR_EVENT)
            rc = fail(b, ev.start_mark.line, "mapping keys must be strings, not %s",
                      ev.type == YAML_MAPPING_START_EVENT ? "mappings" : "lists");
        if (n->len == cap) {
            cap = cap ? cap * 2 : 4;
            n->pairs = xrealloc(n->pairs, cap * sizeof(*n->pairs));
        }
        char *key = NULL;
        if (!rc)
            rc = scalar_text(b, &ev, &key);
        unsigned line = (unsigned)ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (rc)
            return rc;
        n->pairs[n->len] = (struct ypair){key, line, NULL};
        rc = build_map_pair(b, n, depth);
        n->len++;
        if (rc)
            return rc;
    }
}

/* Builds the node that starts with ev (which the caller deletes); *out gets even a partial node. */
static int build(struct builder *b, const yaml_event_t *ev, int depth, struct ynode **out)
{
    int rc = check_plain(b, ev);

    if (rc)
        return rc;
    if (ev->type == YAML_SCALAR_EVENT) {
        struct ynode *n = node_new(b, YNODE_SCALAR, ev);
        *out = n;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        rc = scalar_text(b, ev, &n->str);
        n->len = n->str ? strlen(n->str) : 0;
        return rc;
    }
    if (depth + 1 > YDOC_MAX_DEPTH)
        return fail(b, ev->start_mark.line, "nested deeper than %d levels", YDOC_MAX_DEPTH);
    if (ev->type == YAML_SEQUENCE_START_EVENT) {
        *out = node_new(b, YNODE_SEQ, ev);
        return build_seq(b, *out, depth + 1);
    }
    *out = node_new(b, YNODE_MAP, ev);
    return build_map(b, *out, depth + 1);
}

/* Expects an event of the given type (stream/document framing). */
static int expect(struct builder *b, yaml_event_type_t type)
{
    yaml_event_t ev;
    int rc = next(b, &ev);

    if (rc)
        return rc;
    if (ev.type != type)
        rc = ev.type == YAML_DOCUMENT_START_EVENT
                 ? fail(b, ev.start_mark.line, "more than one YAML document is not supported")
                 : fail(b, ev.start_mark.line, "unexpected YAML structure");
    yaml_event_delete(&ev);
    return rc;
}

static int build_doc(struct builder *b, struct ydoc *d)
{
    yaml_event_t ev;
    int rc = expect(b, YAML_STREAM_START_EVENT);

    if (!rc)
        rc = next(b, &ev);
    if (rc)
        return rc;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        return GW_OK; /* no document at all */
    }
    yaml_event_delete(&ev); /* the document start */
    rc = next(b, &ev);
    if (rc)
        return rc;
    rc = build(b, &ev, 0, &d->root);
    yaml_event_delete(&ev);
    if (!rc && d->root->kind != YNODE_MAP && !ynode_is_null(d->root))
        rc = ydoc_errf(b->err, b->file, d->root->line, NULL,
                       "the top level must be a mapping of 'key: value' settings, not %s",
                       ynode_kind_name(d->root));
    if (!rc)
        rc = expect(b, YAML_DOCUMENT_END_EVENT);
    if (!rc)
        rc = expect(b, YAML_STREAM_END_EVENT);
    return rc;
}

int ydoc_load_mem(struct ydoc *d, const char *name, const void *text, size_t len,
                  struct gw_err *err)
{
    struct builder b = {.err = err};
    int rc;

    memset(d, 0, sizeof(*d));
    d->file = xstrdup(name);
    b.file = d->file;
    if (len > YDOC_MAX_BYTES) {
        rc = gw_err_set(err, GW_EINVAL, "%s: config file larger than %d bytes", name,
                        YDOC_MAX_BYTES);
        goto out;
    }
    yaml_parser_initialize(&b.parser);
    yaml_parser_set_input_string(&b.parser, text, len);
    rc = build_doc(&b, d);
    yaml_parser_delete(&b.parser);
    if (!rc && ynode_is_null(d->root)) {
        node_free(d->root);
        d->root = NULL;
    }
    if (!rc && !d->root) {
        d->root = xcalloc(1, sizeof(*d->root));
        d->root->kind = YNODE_MAP;
        d->root->line = 1;
        d->root->file = d->file;
    }
out:
    if (rc)
        ydoc_release(d);
    return rc;
}

int ydoc_load_file(struct ydoc *d, const char *path, struct gw_err *err)
{
    FILE *f = fopen(path, "rb");
    char *text;
    size_t n;
    int rc;

    memset(d, 0, sizeof(*d));
    if (!f)
        return gw_err_set(err, GW_EINVAL, "cannot open config file '%s': %s", path,
                          strerror(errno));
    /* One byte past the cap tells an over-long file from one exactly at it. */
    text = xmalloc(YDOC_MAX_BYTES + 1);
    n = fread(text, 1, YDOC_MAX_BYTES + 1, f);
    if (ferror(f))
        rc = gw_err_set(err, GW_EINVAL, "cannot read config file '%s': %s", path, strerror(errno));
    else
        rc = ydoc_load_mem(d, path, text, n, err);
    fclose(f);
    free(text);
    return rc;
}

void ydoc_release(struct ydoc *d)
{
    node_free(d->root);
    free(d->file);
    memset(d, 0, sizeof(*d));
}
