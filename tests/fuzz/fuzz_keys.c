/*
 * libFuzzer target for the key objects of the admin API and the CLI (keys/keyobj.c
 * keys_from_json / keys_to_json) and a key's model globs (vkey_model_allowed): the input
 * is a request body.  Checks that a body is either refused with a message or gives a key
 * whose values are in range, that its JSON form reads back to the same key, and that a
 * patch of a valid key keeps it valid.  The same input as --model-prices: parsed or
 * refused, and a parsed table prices any request at 0 or more credits.  And as a sealed
 * secret (keys/sealed.c): it opens or is refused, and sealed, it opens back to itself.  And
 * as a user's GitHub token (keys_check_github_token).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys/keys.h"
#include "keys/prices.h"
#include "keys/sealed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* keys/keyobj.c alone is linked: the store's release, for the strings it fills. */
void store_key_release(struct store_key *sk)
{
    free(sk->name);
    free(sk->user);
    free(sk->models);
    free(sk->budget_period);
    sk->name = sk->user = sk->models = sk->budget_period = NULL;
}

static void check(const struct store_key *k)
{
    assert(k->rpm >= 0 && k->tpm >= 0 && k->max_concurrent >= 0 && k->budget_credits >= 0);
    assert(!k->budget_period || !strcmp(k->budget_period, "day") ||
           !strcmp(k->budget_period, "week") || !strcmp(k->budget_period, "month"));
    assert(k->expires_ms >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    struct store_key k, back;
    struct gw_err e;

    memset(&k, 0, sizeof(k));
    if (keys_from_json(body, 0, &k, &e) == GW_OK) {
        check(&k);
        assert(k.name && *k.name);
        /* its JSON form, read back as a key object, is the same key */
        json_t *o = keys_to_json(&k);
        json_object_del(o, "object");
        json_object_del(o, "created_at");
        memset(&back, 0, sizeof(back));
        assert(keys_from_json(o, 0, &back, &e) == GW_OK);
        assert(!strcmp(back.name, k.name) && back.rpm == k.rpm && back.tpm == k.tpm &&
               back.max_concurrent == k.max_concurrent && back.expires_ms == k.expires_ms);
        assert(!back.models == !k.models);
        json_decref(o);
        store_key_release(&back);
        /* the models globs, against a few names */
        struct vkey v = {0};
        json_t *m = k.models ? json_loads(k.models, 0, NULL) : NULL;
        if (m) {
            size_t i;
            json_t *x;
            v.models = calloc(json_array_size(m) + 1, sizeof(char *));
            json_array_foreach(m, i, x) v.models[i] = (char *)json_string_value(x);
            (void)vkey_model_allowed(&v, "gpt-5-mini");
            (void)vkey_model_allowed(&v, "agent/logs");
            free(v.models);
            json_decref(m);
        }
    } else {
        assert(e.msg[0]);
    }
    /* the same body as a patch of a valid key */
    store_key_release(&k);
    memset(&k, 0, sizeof(k));
    k.name = strdup("base");
    if (keys_from_json(body, 1, &k, &e) == GW_OK)
        check(&k);
    else
        assert(e.msg[0]);
    store_key_release(&k);
    /* the input as --model-prices */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct prices p;
    if (prices_parse(text, &p, &e) == GW_OK) {
        for (size_t i = 0; i < p.n; i++) {
            double c = prices_credits(&p, p.v[i].glob, 1000, 500, 2000);
            assert(c >= 0 && p.v[i].input >= 0 && p.v[i].output >= 0 && p.v[i].cached >= 0);
        }
        prices_free(&p);
    } else {
        assert(e.msg[0] && p.n == 0);
    }
    /* the input as a user's GitHub token: accepted ones are of the kinds Copilot takes, and
     * a refusal never quotes the token */
    if (keys_check_github_token(text, &e) == GW_OK)
        assert(strlen(text) <= GITHUB_TOKEN_MAX && (!strncmp(text, "gho_", 4) || !strncmp(text, "ghu_", 4) ||
                                            !strncmp(text, "github_pat_", 11)));
    else
        assert(e.msg[0] && (strlen(text) < 16 || !strstr(e.msg, text)));
    static struct sealer *sl;
    if (!sl)
        sl = sealer_new("fuzz key material, at least 32 bytes long", 42);
    char *opened = sealer_open(sl, "github-token:u", text, &e);
    assert(opened || e.msg[0]);
    free(opened);
    if (size <= SEALED_MAX && !memchr(data, 0, size)) {
        char *sealed = sealer_seal(sl, "github-token:u", text, size);
        assert(sealed);
        opened = sealer_open(sl, "github-token:u", sealed, &e);
        assert(opened && strcmp(opened, text) == 0);
        free(opened);
        free(sealed);
    }
    free(text);
    json_decref(body);
    return 0;
}
