/*
 * broker/hash.h - conversation identity: a hash chain over the canonical
 * conversation, so a request can be matched to the live runtime session
 * whose history it extends.
 *
 *   h0 = H("gw-conv-v2", principal, profile id, model, system, tools)
 *   hi = H(h(i-1), canonical(message i))
 *
 * The principal (who asks) and the session profile (what kind of session
 * serves them, broker/profile.h) are part of the root, so two principals, or
 * one principal under two profiles, never hold the same history hash: no
 * session, live or persisted, is ever matched across them.
 *
 * H is SHA-256.  The canonical form of a message is independent of JSON key
 * order and whitespace in tool-call arguments (they are re-serialized with
 * sorted keys, compactly) and of how a client spelled "no content" (null,
 * "" or no text parts are the same).  Reasoning is not part of it: clients
 * drop it.  Text is hashed exactly as given.
 */
#ifndef GW_BROKER_HASH_H
#define GW_BROKER_HASH_H

#include <stddef.h>

#include "broker/conv.h"

#define HASH_LEN 32

struct hash {
    unsigned char b[HASH_LEN];
};

/* h0 for c (model, system prompt, tools) asked by principal under profile_id
 * (NULL is the empty string for both). */
void hash_root(const struct conv *c, const char *principal, const char *profile_id,
               struct hash *out);
/* The next link: H(prev, canonical(m)). */
void hash_msg(const struct hash *prev, const struct conv_msg *m, struct hash *out);
/*
 * The whole chain: out[0] = h0 (hash_root()), out[i] = hash after message i-1, for
 * i = 0..c->nmsgs.  Returns a malloc'd array of nmsgs + 1 (caller frees).
 */
struct hash *hash_chain(const struct conv *c, const char *principal, const char *profile_id);
/* Lower-case hex of h into out (2 * HASH_LEN + 1 bytes). */
void hash_hex(const struct hash *h, char out[2 * HASH_LEN + 1]);
int hash_eq(const struct hash *a, const struct hash *b);

#endif
