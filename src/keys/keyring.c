/*
 * The keyring: the active virtual keys in memory by digest, loaded from the store and
 * reloaded when its keys version changes (keys/keys.h).
 */
#include "keys/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys/sealed.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* ---- the keyring --------------------------------------------------------------------- */

struct keyring {
    struct event_base *base;
    struct store *store;
    const struct sealer *sealer; /* opens users' GitHub tokens, or NULL */
    struct event *poll;
    struct vkey **slot; /* open addressing by digest, cap a power of two */
    size_t cap, n;
    int loaded;
    int version;        /* of the last load; -1 before */
    int busy;           /* a version check or load in flight */
    int again;          /* a reload was asked for: the next check loads whatever the version */
    int force;          /* the check in flight loads whatever the version */
    uint64_t op;        /* its store operation */
    void (*on_load)(void *ud, struct vkey *k);
    void *on_load_ud;
    int holds;          /* keyring_hold()s outstanding */
    int ready;          /* the first load and its holds are done (sticky) */
    uint64_t checks;    /* version checks started */
    struct kr_wait {
        uint64_t need;  /* runs once check number need is done */
        uint64_t ticket;
        void (*cb)(void *ud);
        void *ud;
    } *waits;
    size_t nwaits, capwaits;
    uint64_t tickets;
};

/* Runs the waits a finished check satisfies (each may add or cancel others). */
static void run_waits(struct keyring *kr, uint64_t check)
{
    for (size_t i = 0; i < kr->nwaits;) {
        if (kr->waits[i].need > check) {
            i++;
            continue;
        }
        struct kr_wait w = kr->waits[i];
        kr->waits[i] = kr->waits[--kr->nwaits];
        w.cb(w.ud);
        i = 0; /* the callback may have changed the list */
    }
}

static size_t slot_of(const unsigned char d[32], size_t cap)
{
    uint64_t h;

    memcpy(&h, d, sizeof(h)); /* a SHA-256: uniformly spread already */
    return (size_t)h & (cap - 1);
}

static void table_free(struct vkey **slot, size_t cap)
{
    for (size_t i = 0; i < cap; i++)
        vkey_unref(slot[i]);
    free(slot);
}

/* Opens the user's sealed GitHub token of row r into k (keys.h: VKEY_TOKEN_*). */
static void open_token(const struct keyring *kr, const struct store_key *r, struct vkey *k)
{
    const char *owner = keys_token_owner(r->user, r->name);
    struct gw_err err;
    char ad[320];

    if (!r->github_sealed)
        return;
    k->token_updated_ms = r->github_updated_ms;
    k->token_state = VKEY_TOKEN_SEALED;
    if (!kr->sealer) {
        log_msg(LOG_WARN, "keys",
                "user '%.100s' has a stored GitHub token, but the gateway was started without "
                "--token-key-file: their requests are refused until it is",
                owner);
        return;
    }
    keys_token_ad(owner, ad, sizeof(ad));
    k->github_token = sealer_open(kr->sealer, ad, r->github_sealed, &err);
    if (k->github_token) {
        k->token_state = VKEY_TOKEN_OK;
        return;
    }
    log_msg(LOG_WARN, "keys",
            "cannot open the stored GitHub token of user '%.100s' (%s): was --token-key-file "
            "changed?  Their requests are refused until the token is set again",
            owner, err.msg);
}

static struct vkey *vkey_from_row(const struct keyring *kr, const struct store_key *r)
{
    struct vkey *k = xcalloc(1, sizeof(*k));
    json_t *m = r->models ? json_loads(r->models, 0, NULL) : NULL;

    k->refs = 1;
    snprintf(k->id, sizeof(k->id), "%s", r->id);
    snprintf(k->principal, sizeof(k->principal), "vk:%s", r->id);
    k->name = xstrdup(r->name);
    k->user = r->user ? xstrdup(r->user) : NULL;
    if (json_is_array(m)) {
        size_t i;
        json_t *e;
        k->models = xcalloc(json_array_size(m) + 1, sizeof(char *));
        json_array_foreach(m, i, e) k->models[i] = xstrdup(json_string_value(e) ? json_string_value(e) : "");
    }
    json_decref(m);
    k->rpm = r->rpm;
    k->tpm = r->tpm;
    k->max_concurrent = r->max_concurrent;
    k->budget_credits = r->budget_credits;
    k->budget_period = r->budget_period ? xstrdup(r->budget_period) : NULL;
    k->expires_ms = r->expires_ms;
    k->created_ms = r->created_ms;
    memcpy(k->digest, r->digest, sizeof(k->digest));
    open_token(kr, r, k);
    return k;
}

static void start_check(struct keyring *kr);

static void on_list(void *ud, const struct store_result *res)
{
    struct keyring *kr = ud;
    size_t cap = 16;

    kr->busy = 0;
    if (res->rc < 0) {
        log_msg(LOG_WARN, "keys", "cannot load the API keys: %s", res->err->msg);
        run_waits(kr, kr->checks);
        return;
    }
    while (cap < res->n_keys * 2)
        cap *= 2;
    struct vkey **slot = xcalloc(cap, sizeof(*slot));
    for (size_t i = 0; i < res->n_keys; i++) {
        size_t j = slot_of(res->keys[i].digest, cap);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = vkey_from_row(kr, &res->keys[i]);
    }
    table_free(kr->slot, kr->cap);
    kr->slot = slot;
    kr->cap = cap;
    kr->n = res->n_keys;
    if (!kr->loaded)
        log_msg(LOG_INFO, "keys", "%zu virtual API key(s)", kr->n);
    kr->loaded = 1;
    kr->holds++; /* the callbacks' own holds end before this one */
    for (size_t i = 0; kr->on_load && i < kr->cap; i++)
        if (kr->slot[i])
            kr->on_load(kr->on_load_ud, kr->slot[i]);
    keyring_unhold(kr);
    run_waits(kr, kr->checks);
    if (kr->again)
        start_check(kr);
}

static void on_version(void *ud, const struct store_result *res)
{
    struct keyring *kr = ud;
    struct gw_err err;

    kr->busy = 0;
    if (res->rc < 0) {
        log_msg(LOG_WARN, "keys", "cannot read the API keys' version: %s", res->err->msg);
        run_waits(kr, kr->checks);
        return;
    }
    if (kr->loaded && res->rc == kr->version && !kr->force) {
        run_waits(kr, kr->checks);
        if (kr->again)
            start_check(kr);
        return;
    }
    kr->version = res->rc;
    if (store_keys_list(kr->store, 0, on_list, kr, &kr->op, &err) == GW_OK) {
        kr->busy = 1;
    } else {
        log_msg(LOG_WARN, "keys", "cannot load the API keys: %s", err.msg);
        run_waits(kr, kr->checks);
    }
}

static void start_check(struct keyring *kr)
{
    struct gw_err err;

    if (kr->busy) {
        kr->again = 1;
        return;
    }
    kr->checks++;
    kr->force = kr->again;
    kr->again = 0;
    if (store_keys_version(kr->store, on_version, kr, &kr->op, &err) == GW_OK) {
        kr->busy = 1;
    } else {
        log_msg(LOG_WARN, "keys", "cannot read the API keys' version: %s", err.msg);
        run_waits(kr, kr->checks);
    }
}

static void on_poll(evutil_socket_t fd, short what, void *ud)
{
    (void)fd, (void)what;
    start_check(ud);
}

struct keyring *keyring_new(struct event_base *base, struct store *store,
                            const struct sealer *sealer)
{
    struct keyring *kr = xcalloc(1, sizeof(*kr));
    struct timeval tv = {KEYRING_POLL_MS / 1000, (KEYRING_POLL_MS % 1000) * 1000};

    kr->base = base;
    kr->store = store;
    kr->sealer = sealer;
    kr->version = -1;
    kr->poll = event_new(base, -1, EV_PERSIST, on_poll, kr);
    event_add(kr->poll, &tv);
    start_check(kr);
    return kr;
}

void keyring_free(struct keyring *kr)
{
    if (!kr)
        return;
    if (kr->busy)
        store_cancel(kr->store, kr->op);
    event_free(kr->poll);
    table_free(kr->slot, kr->cap);
    free(kr->waits);
    free(kr);
}

int keyring_ready(const struct keyring *kr)
{
    return kr && kr->ready;
}

void keyring_hold(struct keyring *kr)
{
    kr->holds++;
}

void keyring_unhold(struct keyring *kr)
{
    if (kr->holds > 0)
        kr->holds--;
    if (kr->loaded && kr->holds == 0)
        kr->ready = 1;
}

size_t keyring_count(const struct keyring *kr)
{
    return kr ? kr->n : 0;
}

struct vkey *keyring_find(const struct keyring *kr, const unsigned char digest[32])
{
    if (!kr || !kr->n)
        return NULL;
    for (size_t j = slot_of(digest, kr->cap); kr->slot[j]; j = (j + 1) & (kr->cap - 1))
        if (memcmp(kr->slot[j]->digest, digest, 32) == 0)
            return kr->slot[j];
    return NULL;
}

void keyring_reload(struct keyring *kr)
{
    kr->again = 1;
    if (!kr->busy)
        start_check(kr);
}

void keyring_on_load(struct keyring *kr, void (*cb)(void *ud, struct vkey *k), void *ud)
{
    kr->on_load = cb;
    kr->on_load_ud = ud;
}


uint64_t keyring_reload_then(struct keyring *kr, void (*cb)(void *ud), void *ud)
{
    struct kr_wait *w;

    if (kr->nwaits == kr->capwaits) {
        kr->capwaits = kr->capwaits ? 2 * kr->capwaits : 8;
        kr->waits = xrealloc(kr->waits, kr->capwaits * sizeof(*kr->waits));
    }
    w = &kr->waits[kr->nwaits++];
    w->need = kr->checks + 1; /* the next check starts after the caller's write */
    w->ticket = ++kr->tickets;
    w->cb = cb;
    w->ud = ud;
    keyring_reload(kr);
    return w->ticket;
}

void keyring_reload_cancel(struct keyring *kr, uint64_t ticket)
{
    for (size_t i = 0; kr && i < kr->nwaits; i++)
        if (kr->waits[i].ticket == ticket) {
            kr->waits[i] = kr->waits[--kr->nwaits];
            return;
        }
}
