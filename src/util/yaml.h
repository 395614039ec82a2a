/*
 * util/yaml.h - a small YAML document tree for configuration files (libyaml underneath).
 *
 * A loaded document is a tree of scalar, mapping and sequence nodes; each node knows its
 * 1-based line and whether a scalar was written plain or quoted/block (so `"1"` and `1`,
 * `true` and `"true"` can be told apart).  Loading rejects, as `FILE:LINE: ...` errors
 * naming the key path: a root that is not a mapping, duplicate keys in any mapping,
 * anchors and aliases, tags, more than one document, nesting deeper than YDOC_MAX_DEPTH,
 * input over YDOC_MAX_BYTES, non-scalar keys and NUL characters.  An empty document
 * (nothing, comments only, or `---` alone) loads as an empty mapping.
 *
 * Key paths in messages: keys joined with '.', sequence items as [i] (0-based), e.g.
 * 'agents.logs.tools[2]'.
 *
 * Ownership: ydoc_load_*() fill a caller-provided struct ydoc that owns every node and
 *   string; ydoc_release() frees them.  Nodes are borrowed from their document.
 * Threading: none; a document is plain data, read-only after loading.
 * Errors: GW_OK or GW_EINVAL with err->msg `FILE:LINE: ...`; err untouched on success.
 */
#ifndef GW_UTIL_YAML_H
#define GW_UTIL_YAML_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define YDOC_MAX_BYTES (1024 * 1024)
#define YDOC_MAX_DEPTH 32

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode;

/* One `key: value` of a mapping; the key is always a scalar. */
struct ypair {
    const char *key;
    unsigned key_line;
    struct ynode *value;
};

struct ynode {
    enum ynode_kind kind;
    unsigned line;        /* 1-based line where the node starts */
    bool quoted;          /* scalar: written quoted or as a block (| >), not plain */
    const char *file;     /* the document's file name, for messages (borrowed from the doc) */
    char *str;            /* scalar: its text, NUL-terminated (never contains NUL) */
    size_t len;           /* scalar: strlen(str); map: pairs; sequence: items */
    struct ypair *pairs;  /* mapping, in file order */
    struct ynode **items; /* sequence, in file order */
};

struct ydoc {
    char *file;         /* name used in messages */
    struct ynode *root; /* always a mapping after a successful load */
};

/* Reads and parses the file at path (at most YDOC_MAX_BYTES). */
int ydoc_load_file(struct ydoc *d, const char *path, struct gw_err *err) WARN_UNUSED;
/* Parses len bytes of YAML text; name stands for the file in messages. */
int ydoc_load_mem(struct ydoc *d, const char *name, const void *text, size_t len,
                  struct gw_err *err) WARN_UNUSED;
/* Frees the tree; leaves d zeroed.  Safe on a zeroed or released document. */
void ydoc_release(struct ydoc *d);

/* The value of key in a mapping node, or NULL (also when map is NULL or not a mapping). */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
/* True for a plain scalar meaning null: empty, "~", "null", "Null" or "NULL". */
bool ynode_is_null(const struct ynode *n);
/* "a string", "a mapping" or "a list": for `expected X, got Y` messages. */
const char *ynode_kind_name(const struct ynode *n);

/*
 * A key path being walked, for messages ('agents.logs.tools[2]').  Push returns the length
 * to pop back to.  Over-long paths are cut with "..."; unprintable bytes show as '?'.
 */
struct ypath {
    char s[200];
    size_t len;
};
size_t ypath_push_key(struct ypath *p, const char *key);
size_t ypath_push_index(struct ypath *p, size_t i);
void ypath_pop(struct ypath *p, size_t len);

/*
 * Sets err to GW_EINVAL with `FILE:LINE: 'PATH': MESSAGE` (without the path part when path
 * is NULL or empty) and returns GW_EINVAL.
 */
int ydoc_errf(struct gw_err *err, const char *file, unsigned line, const char *path,
              const char *fmt, ...) PRINTF(5, 6);

#endif
