/*
 * util/buf.h - a growable byte buffer with a hard size cap (curl dynbuf, git strbuf).
 *
 * ptr is always NUL-terminated once anything was added.  An append that would
 * pass `max` fails with GW_ETOOBIG and releases the buffer, so a half-built
 * message can never be used by mistake.
 */
#ifndef GW_UTIL_BUF_H
#define GW_UTIL_BUF_H

#include <stddef.h>

#include "util/err.h"

#define BUF_MAX_RPC_FRAME (64u * 1024 * 1024) /* default cap on one runtime frame */
#define BUF_MAX_SMALL (64u * 1024)

struct buf {
    char *ptr;
    size_t len, cap, max;
};

void buf_init(struct buf *b, size_t max); /* allocates nothing, cannot fail */
int buf_add(struct buf *b, const void *p, size_t n) WARN_UNUSED;
int buf_adds(struct buf *b, const char *s) WARN_UNUSED;
int buf_addf(struct buf *b, const char *fmt, ...) WARN_UNUSED PRINTF(2, 3);
/* Removes the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
/* Hands the memory to the caller (never NULL: "" when empty); b is reset. */
char *buf_take(struct buf *b, size_t *len);
void buf_release(struct buf *b);
/* The contents as a C string ("" when empty). */
const char *buf_str(const struct buf *b);

#endif
