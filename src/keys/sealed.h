/*
 * keys/sealed.h - secrets kept at rest (issue 11: users' GitHub tokens in gateway.db),
 * sealed with AES-256-GCM under a key the operator provides in a file.
 *
 * The key file (--token-key-file) holds at least 32 bytes of secret material (e.g.
 * `openssl rand -base64 48 > key; chmod 600 key`); the AES key is the SHA-256 of its whole
 * contents (a trailing newline included: keep the file as written).  A sealed text is
 * "v1." + hex(12-byte random nonce || ciphertext || 16-byte tag), with the purpose and
 * the owner as associated data ("github-token:alice@corp"): a sealed token copied to
 * another user's row does not open.
 *
 * Ownership: a struct sealer holds the key (wiped on free).  Pure: no I/O but reading the
 * key file in sealer_load().  Errors: GW_EINVAL with err (never the secret or the key).
 */
#ifndef GW_KEYS_SEALED_H
#define GW_KEYS_SEALED_H

#include <stddef.h>

#include "util/err.h"

#define SEALED_MAX 8192 /* longest plaintext sealed */

struct sealer;

/* Reads the key file at path (a regular file, not readable by others, >= 32 bytes). */
int sealer_load(const char *path, struct sealer **out, struct gw_err *err) WARN_UNUSED;
/* A sealer from key material in memory (for tests). */
struct sealer *sealer_new(const void *material, size_t n);
void sealer_free(struct sealer *s);

/* Seals plain (n bytes, <= SEALED_MAX) for ad: a new NUL-terminated string (free()). */
char *sealer_seal(const struct sealer *s, const char *ad, const void *plain, size_t n);
/* Opens sealed for ad into a new NUL-terminated string (free() after wiping), or NULL
 * with err when it is not a sealed text of this key and ad. */
char *sealer_open(const struct sealer *s, const char *ad, const char *sealed, struct gw_err *err);

#endif
