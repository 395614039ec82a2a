/*
 * util/util.h - small helpers: random ids, timestamps, checked number parsing.
 */
#ifndef GW_UTIL_UTIL_H
#define GW_UTIL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "util/err.h"

/* The value of hex digit c (0-9, a-f, A-F), or -1.  Inline: parsers use it without util.c. */
static inline int util_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Copies the string src into dst (len >= 4 bytes); one that does not fit is cut, never
 * inside a UTF-8 sequence, and ends with "...".  Inline: parsers use it without util.c.
 */
static inline void util_copy_cut(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    if (n < len) {
        memcpy(dst, src, n + 1);
        return;
    }
    n = len - 4;
    while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
        n--;
    memcpy(dst, src, n);
    memcpy(dst + n, "...", 4);
}

/* Writes a random RFC 4122 version 4 UUID (36 chars + NUL) into out. */
void util_uuid(char out[37]);
/* Writes n random ASCII letters and digits + NUL into out (for ids like chatcmpl-...). */
void util_rand_id(char *out, size_t n);
/* Current time as ISO 8601 UTC with milliseconds, e.g. 2026-11-25T00:05:13.518Z. */
void util_iso8601_now(char out[32]);
/* Monotonic milliseconds (for intervals). */
uint64_t util_now_ms(void);
/* Wall-clock milliseconds since the Unix epoch (for timestamps others read). */
int64_t util_wall_ms(void);
/* Parses a whole decimal string into *out within [min, max]. */
int util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out) WARN_UNUSED;
/* Removes a directory tree (like rm -rf); missing is not an error. */
int util_rmtree(const char *path);
/* mkdir -p with mode 0700 for the created parts. */
int util_mkdirs(const char *path) WARN_UNUSED;

#endif
