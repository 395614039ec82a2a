/*
 * keys/keys.h - virtual API keys (issue 11): the key objects of the admin API and the CLI,
 * and the keyring the HTTP server authenticates requests with.
 *
 * A key is created with a name and optional limits; its secret ("sk-cg-" + 48 hex) is
 * shown once and only its SHA-256 is stored (store/store.h, keys domain).  The principal
 * of its requests is "vk:<id>": the id is random and never reused, so a revoked key's
 * successor with the same name does not inherit its stored responses or sessions.
 *
 * The keyring holds the active keys in memory, by digest (a hash table), loaded from the
 * store at start and reloaded when the store's keys version changes: at once after a write
 * through the admin API (keyring_reload()), and within KEYRING_POLL_MS after the CLI
 * wrote to the same database from another process.  Until the first load is in, the
 * keyring is not ready and requests that need a key are refused (503), never let through.
 *
 * Ownership: a struct vkey is reference-counted; the keyring holds one reference, a request
 * that authenticated with it takes another (vkey_ref / vkey_unref), so a reload never
 * frees a key under a running request.  Threading: the event loop's thread only.
 */
#ifndef GW_KEYS_KEYS_H
#define GW_KEYS_KEYS_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "broker/profile.h"
#include "store/store.h"
#include "util/err.h"

#define KEYRING_POLL_MS 1000
#define KEY_NAME_MAX 64
#define KEY_SECRET_PREFIX "sk-cg-"

struct vkey {
    int refs;
    char id[40];                    /* "vk_" + 24 hex */
    char principal[PRINCIPAL_MAX];  /* "vk:" + id */
    char *name;
    char *user;                     /* or NULL */
    char **models;                  /* NULL-terminated globs, or NULL: every model */
    int64_t rpm, tpm, max_concurrent; /* 0: no limit */
    double budget_credits;          /* 0: no budget */
    char *budget_period;            /* "day" | "week" | "month" | NULL */
    int64_t expires_ms;             /* 0: never */
    int64_t created_ms;
    unsigned char digest[32];
    /* Its user's own GitHub token (issue 11), opened from the store at load.  A secret:
     * wiped when the key is freed, never logged.  token_state says which case holds. */
    char *github_token;             /* VKEY_TOKEN_OK only */
    int token_state;                /* VKEY_TOKEN_* */
    int64_t token_updated_ms;       /* when it was set (0: none) */
};

enum {
    VKEY_TOKEN_NONE = 0,     /* the user has none: the gateway's own sign-in serves them */
    VKEY_TOKEN_OK = 1,       /* github_token holds it */
    VKEY_TOKEN_SEALED = -1,  /* stored, but this gateway cannot open it (no or another
                              * --token-key-file): requests are refused, never served
                              * with the gateway's own identity */
};

struct vkey *vkey_ref(struct vkey *k);
void vkey_unref(struct vkey *k); /* NULL-safe */

/* The GitHub token k's requests run with: its user's own, when it has one and the sessions
 * talk to Copilot (byok 0: a BYOK provider involves no GitHub identity); else NULL. */
const char *vkey_github_token(const struct vkey *k, int byok);

/* Whether k may use model (its globs, fnmatch; NULL: every model). */
int vkey_model_allowed(const struct vkey *k, const char *model);

/* ---- key objects: JSON in (admin API, CLI), JSON out -------------------------------- */

/*
 * Reads a key object (POST /admin/keys, or PATCH when patch: name then optional, and only
 * the fields present change) into out, which for a patch holds the current key.  Fields:
 * name, user, models, rpm, tpm, max_concurrent, budget_credits, budget_period,
 * expires_at (RFC 3339); null clears an optional one.  Unknown fields, wrong types and
 * bad values are GW_EINVAL with err naming the field (the message goes to the client).
 * Strings in out are owned by out (store_key_release()).
 */
int keys_from_json(const json_t *body, int patch, struct store_key *out, struct gw_err *err);

/* The key object of k (never the secret, never the digest): name, user, models, limits,
 * expires_at, created_at, revoked_at (when revoked). */
json_t *keys_to_json(const struct store_key *k);

/* A new key's secret (KEY_SECRET_PREFIX + 48 hex, NUL-terminated) and its id. */
void keys_new_secret(char secret[64], char id[40]);

/* SHA-256 of a secret. */
void keys_digest(const char *secret, unsigned char out[32]);

/* ---- users' GitHub tokens ------------------------------------------------------------- */

#define GITHUB_TOKEN_MAX 255

/* The user a key's GitHub token belongs to: its user, or its name when it has none. */
const char *keys_token_owner(const char *user, const char *name);

/* The associated data a user's token is sealed with (keys/sealed.h): "github-token:" +
 * owner, into out (at most n bytes, NUL-terminated). */
void keys_token_ad(const char *owner, char *out, size_t n);

/*
 * Checks that tok looks like a GitHub token Copilot accepts for a user: an OAuth token
 * (gho_), a GitHub App user token (ghu_) or a fine-grained personal access token
 * (github_pat_), of [A-Za-z0-9_] and at most GITHUB_TOKEN_MAX bytes.  A classic personal
 * access token (ghp_) and other kinds are GW_EINVAL with err saying what to use instead
 * (the message never contains the token).
 */
int keys_check_github_token(const char *tok, struct gw_err *err);

/* ---- the keyring --------------------------------------------------------------------- */

struct keyring;

struct sealer;

/* Starts loading from store (borrowed; outlives the keyring) and polling its version.
 * sealer (borrowed, or NULL: --token-key-file not given) opens users' GitHub tokens. */
struct keyring *keyring_new(struct event_base *base, struct store *store,
                            const struct sealer *sealer);
void keyring_free(struct keyring *kr);

/* 1 once the first load is in and what it set off (keyring_hold()) is done; stays 1. */
int keyring_ready(const struct keyring *kr);
/* Until the matching unhold, the first load is not ready (e.g. budgets being seeded). */
void keyring_hold(struct keyring *kr);
void keyring_unhold(struct keyring *kr);
/* Active keys (0: virtual keys are not in use). */
size_t keyring_count(const struct keyring *kr);
/* The active key whose secret has this digest, or NULL (borrowed: vkey_ref() to keep). */
struct vkey *keyring_find(const struct keyring *kr, const unsigned char digest[32]);
/* Reloads now (after a write through the admin API). */
void keyring_reload(struct keyring *kr);
/*
 * Reloads, and calls cb(ud) once a load that began after this call is in (or failed: the
 * next poll catches up), so that an admin write's reply goes out only when requests see
 * it.  Returns a ticket for keyring_reload_cancel() (the request went away first).
 */
uint64_t keyring_reload_then(struct keyring *kr, void (*cb)(void *ud), void *ud);
void keyring_reload_cancel(struct keyring *kr, uint64_t ticket);
/* cb(ud, key) for each active key, after every load (e.g. to seed the keys' budgets). */
void keyring_on_load(struct keyring *kr, void (*cb)(void *ud, struct vkey *k), void *ud);

#endif
