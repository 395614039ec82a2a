/*
 * util/base64.h - base64 encoding: RFC 4648 section 4, standard alphabet, padded.
 *
 * Ownership: base64_encode() returns a new NUL-terminated string; the caller frees it.
 * Errors: none reported; running out of memory aborts (util/xmalloc.h).
 * Threading: pure, any thread.
 */
#ifndef GW_UTIL_BASE64_H
#define GW_UTIL_BASE64_H

#include <stddef.h>

/*
 * Encodes n bytes at p (p may be NULL when n is 0, giving "").  If outlen is
 * non-NULL it gets the length of the result, 4 * ceil(n / 3), without the NUL.
 */
char *base64_encode(const void *p, size_t n, size_t *outlen);

#endif
