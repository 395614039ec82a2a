/*
 * util/xmalloc.h - allocation that aborts on out-of-memory.
 *
 * Size caps on every buffer keep allocations bounded; running out of memory
 * anyway is not recoverable for a daemon like this one, so we die loudly
 * (tmux xmalloc.c, h2o h2o_mem_alloc).
 */
#ifndef GW_UTIL_XMALLOC_H
#define GW_UTIL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);           /* NULL-safe: returns NULL for NULL */
char *xstrndup(const char *s, size_t n);

#endif
