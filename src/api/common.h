/*
 * api/common.h - helpers shared by the API translators (api/chat.c,
 * api/messages.c): checks on client values, quoting them back in error
 * messages, and UTF-8 safe JSON output.
 *
 * Ownership: api_jstr()/api_jstr0() return new references; api_json_append()
 *   only reads its json_t.
 * Errors: api_json_append() returns 0 or a negative GW_E* code and then has
 *   released the buffer (util/buf.h), so a half-written value is never sent.
 * Threading: pure, any thread.
 */
#ifndef GW_API_COMMON_H
#define GW_API_COMMON_H

#include <stddef.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

#define API_SHOW_MAX 64 /* bytes of a client's value quoted back in an error message */

/* How many bytes of s (n long) to quote: at most API_SHOW_MAX, never half a
 * UTF-8 character.  For "%.*s". */
int api_clipn(const char *s, size_t n);
int api_clip(const char *s); /* the same for a NUL-terminated s */

/* The JSON types a request field may be required to have. */
enum api_kind { API_STRING, API_INT, API_NUMBER, API_BOOL, API_OBJECT, API_ARRAY, API_ANY };

/* 1 if v has kind k (API_NUMBER: integer or real; API_ANY: anything). */
int api_kind_ok(const json_t *v, enum api_kind k);
/* 1 if s is one of the strings of the NULL-terminated set. */
int api_one_of(const char *s, const char *const *set);
/* ^[a-zA-Z0-9_-]{1,64}$, the rule for tool and schema names. */
int api_valid_name(const char *s);
/* Standard or URL-safe base64 alphabet, '=' only as trailing padding, non-empty. */
int api_is_base64(const char *s);
/* An absolute http:// or https:// URL, as libcurl's URL parser reads it. */
int api_is_http_url(const char *url);

/*
 * A new JSON string for n bytes of s (NULL gives "").  Embedded NULs are
 * kept (jansson writes them as \u0000) and invalid UTF-8 becomes U+FFFD, so
 * bytes from a model or a client can never make a reply fail to serialise.
 */
json_t *api_jstr(const char *s, size_t n);
json_t *api_jstr0(const char *s); /* the same for a NUL-terminated s (NULL-safe) */

/* Appends j as compact JSON to out.  On failure out is released. */
int api_json_append(struct buf *out, const json_t *j) WARN_UNUSED;

/* Appends s (clipped like api_clip) to the ", "-separated list[0..cap) at
 * *off; on overflow the list ends at the last whole item. */
void api_list_add(char *list, size_t cap, size_t *off, const char *s);

#endif
