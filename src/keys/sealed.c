/* Secrets at rest, sealed with AES-256-GCM under the operator's key file (keys/sealed.h). */
#include "keys/sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util/util.h"
#include "util/xmalloc.h"

#define NONCE 12
#define TAG 16
#define PREFIX "v1."
#define KEYFILE_MIN 32
#define KEYFILE_MAX 4096

struct sealer {
    unsigned char key[32];
};

struct sealer *sealer_new(const void *material, size_t n)
{
    struct sealer *s = xcalloc(1, sizeof(*s));
    unsigned int len = 0;

    if (EVP_Digest(material, n, s->key, &len, EVP_sha256(), NULL) != 1 || len != 32)
        abort(); /* a failing digest is a broken library */
    return s;
}

void sealer_free(struct sealer *s)
{
    if (!s)
        return;
    explicit_bzero(s->key, sizeof(s->key));
    free(s);
}

int sealer_load(const char *path, struct sealer **out, struct gw_err *err)
{
    unsigned char buf[KEYFILE_MAX + 1];
    struct stat st;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    *out = NULL;
    if (fd < 0)
        return gw_err_set(err, GW_EINVAL, "cannot read the token key file '%.200s': %s", path,
                          strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        close(fd);
        return gw_err_set(err, GW_EINVAL,
                          "the token key file '%.200s' must be a regular file that only its "
                          "owner can read (chmod 600)",
                          path);
    }
    n = read(fd, buf, sizeof(buf));
    close(fd);
    if (n < KEYFILE_MIN || n > KEYFILE_MAX) {
        explicit_bzero(buf, sizeof(buf));
        return gw_err_set(err, GW_EINVAL,
                          "the token key file '%.200s' must hold %d to %d bytes "
                          "(e.g. openssl rand -base64 48)",
                          path, KEYFILE_MIN, KEYFILE_MAX);
    }
    *out = sealer_new(buf, (size_t)n);
    explicit_bzero(buf, sizeof(buf));
    return GW_OK;
}

/* AES-256-GCM of in (n bytes) for ad into out (n bytes) and tag; 0 or -1. */
static int gcm(const struct sealer *s, int enc, const unsigned char nonce[NONCE], const char *ad,
               const unsigned char *in, size_t n, unsigned char *out, unsigned char tag[TAG])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok;

    ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE, NULL) == 1 &&
         EVP_CipherInit_ex(c, NULL, NULL, s->key, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, NULL, &len, (const unsigned char *)ad, (int)strlen(ad)) == 1 &&
         (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1) &&
         (enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1) &&
         EVP_CipherFinal_ex(c, out + (n ? len : 0), &len) == 1 &&
         (!enc || EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1);
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : -1;
}

char *sealer_seal(const struct sealer *s, const char *ad, const void *plain, size_t n)
{
    size_t raw_n = NONCE + n + TAG;
    unsigned char *raw;
    char *out;

    if (n > SEALED_MAX)
        return NULL;
    raw = xmalloc(raw_n);
    if (RAND_bytes(raw, NONCE) != 1 ||
        gcm(s, 1, raw, ad, plain, n, raw + NONCE, raw + NONCE + n) != 0) {
        free(raw);
        return NULL;
    }
    out = xmalloc(sizeof(PREFIX) + 2 * raw_n);
    memcpy(out, PREFIX, sizeof(PREFIX) - 1);
    for (size_t i = 0; i < raw_n; i++)
        snprintf(out + sizeof(PREFIX) - 1 + 2 * i, 3, "%02x", raw[i]);
    free(raw);
    return out;
}

char *sealer_open(const struct sealer *s, const char *ad, const char *sealed, struct gw_err *err)
{
    size_t hex = sealed ? strlen(sealed) : 0, raw_n, n;
    unsigned char *raw;
    char *out;

    if (hex < sizeof(PREFIX) - 1 || strncmp(sealed, PREFIX, sizeof(PREFIX) - 1) != 0 ||
        (hex - (sizeof(PREFIX) - 1)) % 2 != 0 ||
        (raw_n = (hex - (sizeof(PREFIX) - 1)) / 2) < NONCE + TAG ||
        raw_n > NONCE + SEALED_MAX + TAG) {
        gw_err_set(err, GW_EINVAL, "not a sealed secret");
        return NULL;
    }
    raw = xmalloc(raw_n);
    for (size_t i = 0; i < raw_n; i++) {
        int hi = util_hexval(sealed[sizeof(PREFIX) - 1 + 2 * i]);
        int lo = util_hexval(sealed[sizeof(PREFIX) - 1 + 2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(raw);
            gw_err_set(err, GW_EINVAL, "not a sealed secret");
            return NULL;
        }
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    n = raw_n - NONCE - TAG;
    out = xmalloc(n + 1);
    if (gcm(s, 0, raw, ad, raw + NONCE, n, (unsigned char *)out, raw + NONCE + n) != 0) {
        explicit_bzero(out, n + 1);
        free(out);
        free(raw);
        gw_err_set(err, GW_EINVAL, "the sealed secret does not open with this key file");
        return NULL;
    }
    out[n] = '\0';
    free(raw);
    return out;
}
