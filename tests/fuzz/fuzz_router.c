/*
 * libFuzzer target for the route matcher (http/router.c): the input is a
 * pattern, a NUL, then a path.  Checks that matching stays inside both
 * strings, that a capture is a non-empty piece of the path that fits its
 * buffer, and that a pattern without a capture matches only itself.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 2), param[16], allow[96];
    const char *pattern, *path;
    struct http_route rt = {1u << 1, NULL, HTTP_API_OPENAI, 0, "f", NULL, NULL};

    memcpy(in, data, size);
    in[size] = in[size + 1] = '\0';
    pattern = in;
    path = in + strlen(in) + 1;
    if (path > in + size)
        path = in + size + 1;
    rt.pattern = pattern;
    if (route_path_match(pattern, path, param, sizeof(param))) {
        size_t n = strlen(param);
        assert(n < sizeof(param));
        if (!strchr(pattern, '{'))
            assert(strcmp(pattern, path) == 0 && n == 0);
        else if (n)
            assert(strstr(path, param) != NULL);
        assert(route_find(&rt, 1, path, 1u << 1, param, sizeof(param)) == &rt);
    }
    route_allow((unsigned)size, allow, sizeof(allow));
    assert(strlen(allow) < sizeof(allow));
    free(in);
    return 0;
}
