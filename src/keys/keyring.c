/*
 * The keyring: the active virtual keys in memory by digest, loaded from the store and
 * reloaded when its keys version changes (keys/keys.h).
 */
#include "keys/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/xmalloc.h"

/* ---- the keyring --------------------------------------------------------------------- */

struct keyring {
    struct event_base *base;
    struct store *store;
    struct event *poll;
    struct vkey **slot; /* open addressing by digest, cap a power of two */
    size_t cap, n;
    int loaded;
    int version;        /* of the last load; -1 before */
    int busy;           /* a version check or load in flight */
    int again;          /* a reload was asked for while busy */
    uint64_t op;        /* its store operation */
    void (*on_load)(void *ud, struct vkey *k);
    void *on_load_ud;
    int holds;          /* keyring_hold()s outstanding */
    int ready;          /* the first load and its holds are done (sticky) */
};

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

static struct vkey *vkey_from_row(const struct store_key *r)
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
        return;
    }
    while (cap < res->n_keys * 2)
        cap *= 2;
    struct vkey **slot = xcalloc(cap, sizeof(*slot));
    for (size_t i = 0; i < res->n_keys; i++) {
        size_t j = slot_of(res->keys[i].digest, cap);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = vkey_from_row(&res->keys[i]);
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
    if (kr->again) {
        kr->again = 0;
        start_check(kr);
    }
}

static void on_version(void *ud, const struct store_result *res)
{
    struct keyring *kr = ud;
    struct gw_err err;

    kr->busy = 0;
    if (res->rc < 0) {
        log_msg(LOG_WARN, "keys", "cannot read the API keys' version: %s", res->err->msg);
        return;
    }
    if (kr->loaded && res->rc == kr->version && !kr->again)
        return;
    kr->again = 0;
    kr->version = res->rc;
    if (store_keys_list(kr->store, 0, on_list, kr, &kr->op, &err) == GW_OK)
        kr->busy = 1;
    else
        log_msg(LOG_WARN, "keys", "cannot load the API keys: %s", err.msg);
}

static void start_check(struct keyring *kr)
{
    struct gw_err err;

    if (kr->busy) {
        kr->again = 1;
        return;
    }
    if (store_keys_version(kr->store, on_version, kr, &kr->op, &err) == GW_OK)
        kr->busy = 1;
    else
        log_msg(LOG_WARN, "keys", "cannot read the API keys' version: %s", err.msg);
}

static void on_poll(evutil_socket_t fd, short what, void *ud)
{
    (void)fd, (void)what;
    start_check(ud);
}

struct keyring *keyring_new(struct event_base *base, struct store *store)
{
    struct keyring *kr = xcalloc(1, sizeof(*kr));
    struct timeval tv = {KEYRING_POLL_MS / 1000, (KEYRING_POLL_MS % 1000) * 1000};

    kr->base = base;
    kr->store = store;
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

