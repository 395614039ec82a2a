/*
 * Virtual API keys: the key objects in and out of JSON, secrets and digests, and a key's
 * model globs (keys/keys.h).  No I/O: the fuzzer links this file alone.
 */
#include "keys/keys.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util/log.h"
#include "util/tstamp.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define MODELS_MAX 64      /* globs in a key's models */
#define MODEL_GLOB_MAX 256 /* bytes in one */
#define USER_MAX 256
#define LIMIT_MAX 1000000000000LL

/* ---- keys ---------------------------------------------------------------------------- */

struct vkey *vkey_ref(struct vkey *k)
{
    if (k)
        k->refs++;
    return k;
}

void vkey_unref(struct vkey *k)
{
    if (!k || --k->refs > 0)
        return;
    free(k->name);
    free(k->user);
    for (size_t i = 0; k->models && k->models[i]; i++)
        free(k->models[i]);
    free(k->models);
    free(k->budget_period);
    if (k->github_token) {
        explicit_bzero(k->github_token, strlen(k->github_token)); /* a secret */
        free(k->github_token);
    }
    free(k);
}

/* ---- users' GitHub tokens ------------------------------------------------------------- */

const char *vkey_github_token(const struct vkey *k, int byok)
{
    return k && k->token_state == VKEY_TOKEN_OK && !byok ? k->github_token : NULL;
}

const char *keys_token_owner(const char *user, const char *name)
{
    return user && *user ? user : name;
}

void keys_token_ad(const char *owner, char *out, size_t n)
{
    snprintf(out, n, "github-token:%s", owner ? owner : "");
}

int keys_check_github_token(const char *tok, struct gw_err *err)
{
    static const char *const ok[] = {"gho_", "ghu_", "github_pat_"};
    size_t len = tok ? strlen(tok) : 0;

    if (!len)
        return gw_err_param(err, GW_EINVAL, "token", "the GitHub token is empty");
    if (len > GITHUB_TOKEN_MAX)
        return gw_err_param(err, GW_EINVAL, "token",
                            "that is not a GitHub token: longer than %d characters",
                            GITHUB_TOKEN_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tok[i];
        if (!(c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z')))
            return gw_err_param(err, GW_EINVAL, "token",
                                "that is not a GitHub token: it has a character other than "
                                "letters, digits and '_'");
    }
    if (strncmp(tok, "ghp_", 4) == 0)
        return gw_err_param(err, GW_EINVAL, "token",
                            "Copilot does not accept classic personal access tokens (ghp_): use "
                            "a fine-grained personal access token (github_pat_) with the "
                            "\"Copilot Requests\" permission, or an OAuth token (gho_, as "
                            "`gh auth token` prints)");
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strncmp(tok, ok[i], strlen(ok[i])) == 0 && len > strlen(ok[i]))
            return GW_OK;
    return gw_err_param(err, GW_EINVAL, "token",
                        "that is not a GitHub user token: use a fine-grained personal access "
                        "token (github_pat_), an OAuth token (gho_) or a GitHub App user token "
                        "(ghu_)");
}

int vkey_model_allowed(const struct vkey *k, const char *model)
{
    if (!k || !k->models)
        return 1;
    for (size_t i = 0; k->models[i]; i++)
        if (fnmatch(k->models[i], model, 0) == 0)
            return 1;
    return 0;
}

void keys_digest(const char *secret, unsigned char out[32])
{
    unsigned int len = 0;

    if (EVP_Digest(secret, strlen(secret), out, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort(); /* a failing digest is a broken library */
}

void keys_new_secret(char secret[64], char id[40])
{
    memcpy(secret, KEY_SECRET_PREFIX, sizeof(KEY_SECRET_PREFIX) - 1);
    util_rand_id(secret + sizeof(KEY_SECRET_PREFIX) - 1, 48);
    memcpy(id, "vk_", 3);
    util_rand_id(id + 3, 24);
}

/* ---- key objects ----------------------------------------------------------------------- */

static int good_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > KEY_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._@+-", *s)))
            return 0;
    return 1;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? xstrdup(v) : NULL;
}

static int get_limit(const json_t *v, const char *field, int64_t *out, struct gw_err *err)
{
    if (json_is_null(v)) {
        *out = 0;
        return GW_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > LIMIT_MAX)
        return gw_err_set(err, GW_EINVAL, "'%s' must be a whole number from 0 (no limit) up",
                          field);
    *out = json_integer_value(v);
    return GW_OK;
}

static int get_models(const json_t *v, struct store_key *out, struct gw_err *err)
{
    size_t i;
    json_t *e;

    if (json_is_null(v)) {
        set_str(&out->models, NULL);
        return GW_OK;
    }
    if (!json_is_array(v) || json_array_size(v) > MODELS_MAX)
        return gw_err_set(err, GW_EINVAL,
                          "'models' must be an array of at most %d model names or globs",
                          MODELS_MAX);
    json_array_foreach(v, i, e) {
        if (!json_is_string(e) || json_string_length(e) == 0 ||
            json_string_length(e) > MODEL_GLOB_MAX ||
            strlen(json_string_value(e)) != json_string_length(e))
            return gw_err_set(err, GW_EINVAL, "'models[%zu]' must be a model name or glob", i);
    }
    free(out->models);
    out->models = json_dumps(v, JSON_COMPACT);
    return GW_OK;
}

int keys_from_json(const json_t *body, int patch, struct store_key *out, struct gw_err *err)
{
    static const char *const known[] = {"name", "user", "models", "rpm", "tpm",
                                        "max_concurrent", "budget_credits", "budget_period",
                                        "expires_at", NULL};
    const char *field;
    json_t *v;

    if (!json_is_object(body))
        return gw_err_set(err, GW_EINVAL, "the body must be a JSON object (a key)");
    json_object_foreach((json_t *)body, field, v) {
        size_t i = 0;
        while (known[i] && strcmp(known[i], field) != 0)
            i++;
        if (!known[i])
            return gw_err_set(err, GW_EINVAL, "unknown field '%.64s'", field);
    }
    v = json_object_get(body, "name");
    if (v || !patch) {
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            !good_name(json_string_value(v)))
            return gw_err_set(err, GW_EINVAL,
                              "'name' must be 1 to %d letters, digits or . _ @ + -",
                              KEY_NAME_MAX);
        set_str(&out->name, json_string_value(v));
    }
    if ((v = json_object_get(body, "user")) != NULL) {
        if (!json_is_null(v) &&
            (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > USER_MAX ||
             strlen(json_string_value(v)) != json_string_length(v)))
            return gw_err_set(err, GW_EINVAL, "'user' must be a string of 1 to %d bytes",
                              USER_MAX);
        set_str(&out->user, json_string_value(v));
    }
    if ((v = json_object_get(body, "models")) != NULL && get_models(v, out, err))
        return GW_EINVAL;
    if ((v = json_object_get(body, "rpm")) != NULL && get_limit(v, "rpm", &out->rpm, err))
        return GW_EINVAL;
    if ((v = json_object_get(body, "tpm")) != NULL && get_limit(v, "tpm", &out->tpm, err))
        return GW_EINVAL;
    if ((v = json_object_get(body, "max_concurrent")) != NULL &&
        get_limit(v, "max_concurrent", &out->max_concurrent, err))
        return GW_EINVAL;
    if ((v = json_object_get(body, "budget_credits")) != NULL) {
        double d = json_is_null(v) ? 0 : json_number_value(v);
        if ((!json_is_null(v) && !json_is_number(v)) || !isfinite(d) || d < 0 || d > 1e12)
            return gw_err_set(err, GW_EINVAL,
                              "'budget_credits' must be a number from 0 (no budget) up");
        out->budget_credits = d;
    }
    if ((v = json_object_get(body, "budget_period")) != NULL) {
        const char *p = json_string_value(v);
        if (!json_is_null(v) &&
            (!p || (strcmp(p, "day") != 0 && strcmp(p, "week") != 0 && strcmp(p, "month") != 0)))
            return gw_err_set(err, GW_EINVAL, "'budget_period' must be day, week or month");
        set_str(&out->budget_period, p);
    }
    if (out->budget_credits > 0 && !out->budget_period)
        set_str(&out->budget_period, "month");
    if ((v = json_object_get(body, "expires_at")) != NULL) {
        int64_t ms = 0;
        if (!json_is_null(v) && (!json_is_string(v) || tstamp_parse(json_string_value(v), &ms)))
            return gw_err_set(err, GW_EINVAL,
                              "'expires_at' must be an RFC 3339 time, e.g. 2027-06-30T00:00:00Z");
        out->expires_ms = ms;
    }
    return GW_OK;
}

json_t *keys_to_json(const struct store_key *k)
{
    char t[32];
    json_t *o = json_pack("{s:s, s:s, s:s?}", "object", "key", "name", k->name, "user", k->user);
    json_t *m = k->models ? json_loads(k->models, 0, NULL) : NULL;

    json_object_set_new(o, "user", k->user ? json_string(k->user) : json_null());
    json_object_set_new(o, "models", m ? m : json_null());
    json_object_set_new(o, "rpm", k->rpm ? json_integer(k->rpm) : json_null());
    json_object_set_new(o, "tpm", k->tpm ? json_integer(k->tpm) : json_null());
    json_object_set_new(o, "max_concurrent",
                        k->max_concurrent ? json_integer(k->max_concurrent) : json_null());
    json_object_set_new(o, "budget_credits",
                        k->budget_credits > 0 ? json_real(k->budget_credits) : json_null());
    json_object_set_new(o, "budget_period",
                        k->budget_period ? json_string(k->budget_period) : json_null());
    if (k->expires_ms > 0) {
        tstamp_format(k->expires_ms, t);
        json_object_set_new(o, "expires_at", json_string(t));
    } else {
        json_object_set_new(o, "expires_at", json_null());
    }
    tstamp_format(k->created_ms, t);
    json_object_set_new(o, "created_at", json_string(t));
    if (k->revoked_ms > 0) {
        tstamp_format(k->revoked_ms, t);
        json_object_set_new(o, "revoked_at", json_string(t));
    }
    return o;
}

