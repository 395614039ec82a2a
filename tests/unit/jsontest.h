/*
 * JSON helpers shared by the translator unit tests (header only, like testsrv.h; static
 * inline so that a test using only some of them builds with -Werror): request bodies written
 * with single quotes, a JSON round trip, and values at dotted paths.
 */
#ifndef GW_TESTS_UNIT_JSONTEST_H
#define GW_TESTS_UNIT_JSONTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/*
 * Request bodies are written with single quotes for readability; sq() turns
 * them into JSON.  No test body needs a literal single quote.
 */
static inline char *sq(const char *s)
{
    char *out = strdup(s);
    assert_non_null(out);
    for (char *p = out; *p; p++)
        if (*p == '\'')
            *p = '"';
    return out;
}

/* The JSON value of a single-quoted text. */
static inline json_t *jsq(const char *s)
{
    char *text = sq(s);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);

    if (!j)
        print_error("bad test JSON: %s: %s\n", jerr.text, text);
    assert_non_null(j);
    free(text);
    return j;
}

/* j serialised and parsed back, as a client would see it (j is released). */
static inline json_t *roundtrip(json_t *j)
{
    char *s;
    json_t *back;

    assert_non_null(j);
    s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    back = json_loads(s, 0, NULL);
    assert_non_null(back);
    free(s);
    json_decref(j);
    return back;
}

/* j at a dotted path ("output.0.content.0.text"); numbers index arrays. */
static inline json_t *at(json_t *j, const char *p)
{
    char key[64];

    while (*p && j) {
        size_t n = strcspn(p, ".");
        assert_true(n < sizeof(key));
        memcpy(key, p, n);
        key[n] = '\0';
        j = json_is_array(j) ? json_array_get(j, strtoul(key, NULL, 10)) : json_object_get(j, key);
        p += n + (p[n] == '.');
    }
    return j;
}

static inline const char *str_at(json_t *j, const char *p)
{
    json_t *v = at(j, p);
    if (!json_is_string(v))
        print_error("no string at %s\n", p);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static inline json_int_t int_at(json_t *j, const char *p)
{
    json_t *v = at(j, p);
    if (!json_is_integer(v))
        print_error("no integer at %s\n", p);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

#endif
