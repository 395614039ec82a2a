/* Base64 encoding with the standard alphabet and padding (RFC 4648 section 4). */
#include "util/base64.h"

#include <assert.h>
#include <stdint.h>

#include "util/xmalloc.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const void *p, size_t n, size_t *outlen)
{
    const unsigned char *in = p;
    size_t len, i, o = 0;
    char *out;

    /* 4 * ceil(n / 3) + 1 must fit in a size_t; no caller comes near it. */
    assert(n / 3 < (SIZE_MAX - 5) / 4);
    len = (n / 3 + (n % 3 != 0)) * 4;
    out = xmalloc(len + 1);
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 0x3f];
        out[o++] = alphabet[v >> 12 & 0x3f];
        out[o++] = alphabet[v >> 6 & 0x3f];
        out[o++] = alphabet[v & 0x3f];
    }
    if (i < n) {
        /* One or two bytes left: two or three characters, then padding to four. */
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 0x3f];
        out[o++] = alphabet[v >> 12 & 0x3f];
        out[o++] = i + 1 < n ? alphabet[v >> 6 & 0x3f] : '=';
        out[o++] = '=';
    }
    assert(o == len);
    out[o] = '\0';
    if (outlen)
        *outlen = len;
    return out;
}
