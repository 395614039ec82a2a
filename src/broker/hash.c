/* Conversation identity: SHA-256 over an unambiguous encoding of the canonical conversation. */
#include "broker/hash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/xmalloc.h"

/*
 * The encoding fed to SHA-256 is a sequence of fields.  Every field is one
 * tag byte, then an 8-byte little-endian length, then that many bytes; an
 * integer field is a tag byte and its 8-byte little-endian value.  Because
 * every field carries its own tag and length, two different sequences of
 * fields never produce the same bytes ("ab"+"c" is not "a"+"bc"), and a
 * field can never be mistaken for another one.
 *
 *   root:    'V' "gw-conv-v2", 'U' principal, 'O' profile id, 'M' model,
 *            'S' system, 'N' ntools, then per tool 'T' name, 'D' description,
 *            'P' canonical parameters
 *   message: 'H' previous hash, 'R' role, 'X' joined text, 'N' nimages,
 *            then per image 'd' mime + 'b' base64 data, or 'u' url;
 *            'N' ncalls, then per call 'C' id, 'F' name, 'A' canonical
 *            arguments (or 'a' raw text when they are not JSON);
 *            'K' tool_call_id, 'E' is_error (0 or 1)
 *
 * A NULL string is the empty string throughout; NULL tool parameters are {}.
 * The root starts with 'V' and a message with 'H', so no message encoding
 * is ever a root encoding.
 */

/* Tag bytes, one per field kind. */
enum {
    TAG_VERSION = 'V',
    TAG_PRINCIPAL = 'U',
    TAG_PROFILE = 'O',
    TAG_MODEL = 'M',
    TAG_SYSTEM = 'S',
    TAG_COUNT = 'N',
    TAG_TOOL_NAME = 'T',
    TAG_TOOL_DESC = 'D',
    TAG_TOOL_PARAMS = 'P',
    TAG_PREV = 'H',
    TAG_ROLE = 'R',
    TAG_TEXT = 'X',
    TAG_IMAGE_DATA = 'd',
    TAG_IMAGE_B64 = 'b',
    TAG_IMAGE_URL = 'u',
    TAG_CALL_ID = 'C',
    TAG_CALL_NAME = 'F',
    TAG_CALL_ARGS = 'A',
    TAG_CALL_ARGS_RAW = 'a',
    TAG_TOOL_CALL_ID = 'K',
    TAG_IS_ERROR = 'E',
};

#define HASH_VERSION "gw-conv-v2"
#define JSON_CANON_FLAGS (JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY)

/* SHA-256 failing to start or finish is not bad input: it is a broken library or no memory. */
static void digest_failed(const char *what)
{
    fprintf(stderr, "copilot-gateway: sha-256 %s failed\n", what);
    abort();
}

static EVP_MD_CTX *digest_begin(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx)
        digest_failed("context allocation");
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        digest_failed("init");
    return ctx;
}

static void digest_end(EVP_MD_CTX *ctx, struct hash *out)
{
    unsigned int n = 0;

    if (EVP_DigestFinal_ex(ctx, out->b, &n) != 1 || n != HASH_LEN)
        digest_failed("final");
    EVP_MD_CTX_free(ctx);
}

static void digest_raw(EVP_MD_CTX *ctx, const void *p, size_t n)
{
    if (n && EVP_DigestUpdate(ctx, p, n) != 1)
        digest_failed("update");
}

static void put_u64(EVP_MD_CTX *ctx, unsigned char tag, uint64_t v)
{
    unsigned char b[9];

    b[0] = tag;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (unsigned char)(v >> (8 * i));
    digest_raw(ctx, b, sizeof(b));
}

static void put_bytes(EVP_MD_CTX *ctx, unsigned char tag, const void *p, size_t n)
{
    put_u64(ctx, tag, (uint64_t)n);
    digest_raw(ctx, p, n);
}

/* A NULL string is hashed as "". */
static void put_str(EVP_MD_CTX *ctx, unsigned char tag, const char *s)
{
    put_bytes(ctx, tag, s ? s : "", s ? strlen(s) : 0);
}

static void put_json(EVP_MD_CTX *ctx, unsigned char tag, const json_t *j)
{
    char *s = json_dumps(j, JSON_CANON_FLAGS);

    /*
     * jansson fails only on out-of-memory or a string that is not UTF-8
     * (which its parser never produces); hash such a schema as the empty
     * string under the tag, rather than crash on input.
     */
    put_str(ctx, tag, s);
    free(s);
}

/*
 * Tool-call arguments hash as their canonical JSON (sorted keys, compact) so
 * that a client re-serializing them with other key order or whitespace still
 * matches.  Text that is not JSON, or has duplicate keys (which parsing would
 * silently collapse), hashes as given under its own tag.
 */
static void put_arguments(EVP_MD_CTX *ctx, const char *args)
{
    json_t *j = NULL;
    char *canon = NULL;

    if (args)
        j = json_loads(args, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (j)
        canon = json_dumps(j, JSON_CANON_FLAGS);
    if (canon)
        put_str(ctx, TAG_CALL_ARGS, canon);
    else
        put_str(ctx, TAG_CALL_ARGS_RAW, args);
    free(canon);
    json_decref(j);
}

void hash_root(const struct conv *c, const char *principal, const char *profile_id,
               struct hash *out)
{
    EVP_MD_CTX *ctx = digest_begin();

    put_str(ctx, TAG_VERSION, HASH_VERSION);
    put_str(ctx, TAG_PRINCIPAL, principal);
    put_str(ctx, TAG_PROFILE, profile_id);
    put_str(ctx, TAG_MODEL, c->model);
    put_str(ctx, TAG_SYSTEM, c->system);
    put_u64(ctx, TAG_COUNT, c->ntools);
    for (size_t i = 0; i < c->ntools; i++) {
        const struct conv_tool *t = &c->tools[i];
        put_str(ctx, TAG_TOOL_NAME, t->name);
        put_str(ctx, TAG_TOOL_DESC, t->description);
        if (t->parameters)
            put_json(ctx, TAG_TOOL_PARAMS, t->parameters);
        else
            put_str(ctx, TAG_TOOL_PARAMS, "{}");
    }
    /* reasoning_effort and response_format are per-turn settings, not identity. */
    digest_end(ctx, out);
}

/*
 * Images after the text, in order.  A data image is its type and bytes; a
 * URL image is its URL alone (its mime, if any, is a guess from the URL).
 */
static void put_images(EVP_MD_CTX *ctx, const struct conv_msg *m)
{
    size_t n = 0;

    for (size_t i = 0; i < m->nparts; i++)
        if (m->parts[i].kind == CONV_IMAGE)
            n++;
    put_u64(ctx, TAG_COUNT, n);
    for (size_t i = 0; i < m->nparts; i++) {
        const struct conv_part *p = &m->parts[i];
        if (p->kind != CONV_IMAGE)
            continue;
        if (p->data_b64) {
            put_str(ctx, TAG_IMAGE_DATA, p->mime);
            put_str(ctx, TAG_IMAGE_B64, p->data_b64);
        } else {
            put_str(ctx, TAG_IMAGE_URL, p->url);
        }
    }
}

void hash_msg(const struct hash *prev, const struct conv_msg *m, struct hash *out)
{
    EVP_MD_CTX *ctx = digest_begin();
    char *text;

    put_bytes(ctx, TAG_PREV, prev->b, HASH_LEN);
    put_u64(ctx, TAG_ROLE, (uint64_t)m->role);
    /*
     * The text is what the runtime is given (seed.c joins the parts the same
     * way), so parts that join to the same text are the same message, and no
     * text parts at all is the empty text.
     */
    text = conv_msg_text(m);
    put_str(ctx, TAG_TEXT, text);
    free(text);
    put_images(ctx, m);
    put_u64(ctx, TAG_COUNT, m->ncalls);
    for (size_t i = 0; i < m->ncalls; i++) {
        put_str(ctx, TAG_CALL_ID, m->calls[i].id);
        put_str(ctx, TAG_CALL_NAME, m->calls[i].name);
        put_arguments(ctx, m->calls[i].arguments);
    }
    put_str(ctx, TAG_TOOL_CALL_ID, m->tool_call_id);
    put_u64(ctx, TAG_IS_ERROR, m->is_error ? 1 : 0);
    /* m->reasoning is left out: clients drop it from the history they send back. */
    digest_end(ctx, out);
}

struct hash *hash_chain(const struct conv *c, const char *principal, const char *profile_id)
{
    struct hash *chain;

    if (c->nmsgs >= SIZE_MAX / sizeof(*chain))
        abort(); /* cannot happen: the messages themselves would not fit */
    chain = xmalloc((c->nmsgs + 1) * sizeof(*chain));
    hash_root(c, principal, profile_id, &chain[0]);
    for (size_t i = 0; i < c->nmsgs; i++)
        hash_msg(&chain[i], &c->msgs[i], &chain[i + 1]);
    return chain;
}

void hash_hex(const struct hash *h, char out[2 * HASH_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < HASH_LEN; i++) {
        out[2 * i] = digits[h->b[i] >> 4];
        out[2 * i + 1] = digits[h->b[i] & 0xf];
    }
    out[2 * HASH_LEN] = '\0';
}

int hash_eq(const struct hash *a, const struct hash *b)
{
    return memcmp(a->b, b->b, HASH_LEN) == 0;
}
