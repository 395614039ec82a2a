/*
 * Image URLs: the runtime takes inline images only, so the gateway downloads
 * the ones a request gives by http(s) URL, in parallel, each capped and
 * timed, after every cheaper check passed.
 * NEEDSWORK: no cap on the total (16 x 20 MiB, then base64), nor on the
 * downloads in flight across requests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/flow.h"
#include "util/base64.h"
#include "util/fetch.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define IMAGE_MAX_URLS 16
#define IMAGE_MAX_BYTES (20u * 1024 * 1024)
#define IMAGE_TIMEOUT_MS 20000

/* One image the client gave by http(s) URL, downloaded before the turn starts. */
struct flow_image {
    struct flow *f;
    struct conv_part *part; /* in f->conv */
    size_t msg, idx;        /* f->conv->msgs[msg].parts[idx] */
    int pending;            /* its fetch is in flight */
};

/* The request parameter naming an image, for its error. */
static void image_param(struct flow *f, const struct flow_image *im, char *out, size_t n)
{
    if (f->ops->image_param)
        f->ops->image_param(f, im->msg, im->idx, out, n);
    else
        snprintf(out, n, "%s", f->ops->input_param);
}

void flow_images_cancel(struct flow *f)
{
    struct fetch *fe = f->svc->fetch;

    for (size_t i = 0; i < f->nimages; i++) {
        if (!f->images[i].pending)
            continue;
        fetch_cancel(fe, &f->images[i]);
        f->images[i].pending = 0;
    }
    f->images_pending = 0;
}

/* Ends the request with a 400 naming the image: the others are dropped. */
static void image_fail(struct flow *f, const struct flow_image *im, const char *api_code,
                       const char *why)
{
    struct gw_err e;
    char param[sizeof(e.param)];

    flow_images_cancel(f);
    image_param(f, im, param, sizeof(param));
    gw_err_param(&e, GW_EINVAL, param, "could not download the image at '%s': %s", param, why);
    snprintf(e.api_code, sizeof(e.api_code), "%s", api_code);
    log_msg(LOG_INFO, "http", "req=%s %s", f->r->id, e.msg);
    flow_fail(f, &e);
}

/* The bare media type of a Content-Type ("image/png; x=y" -> "image/png"), lowercased. */
static void media_type(const char *ctype, char *out, size_t n)
{
    size_t k = 0;
    const char *p = ctype ? ctype : "";

    while (*p == ' ' || *p == '\t')
        p++;
    for (; *p && *p != ';' && *p != ' ' && *p != '\t' && k + 1 < n; p++) {
        char ch = *p;
        /* Keep what a media type may hold; it is quoted back to the client. */
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("/+.-_", ch)))
            ch = '?';
        out[k++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
    }
    out[k] = '\0';
}

/* The mime type the runtime gets for a media type, or NULL if it takes no such image. */
static const char *image_mime(const char *type)
{
    static const char *const ok[] = {"image/png", "image/jpeg", "image/gif", "image/webp"};

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!strcmp(type, ok[i]))
            return ok[i];
    if (!strcmp(type, "image/jpg")) /* not registered, but servers send it */
        return "image/jpeg";
    return NULL;
}

/* Fills im->part from a response, or fails the request (1) saying why. */
static int image_store(struct flow *f, struct flow_image *im, const struct fetch_resp *resp)
{
    char type[64], why[160];
    const char *mime;
    struct conv_part *p = im->part;

    if (resp->status < 200 || resp->status > 299) {
        snprintf(why, sizeof(why), "HTTP %d", resp->status);
        image_fail(f, im, "invalid_image_url", why);
        return 1;
    }
    media_type(resp->content_type, type, sizeof(type));
    mime = image_mime(type);
    if (!mime) {
        if (strncmp(type, "image/", 6) == 0)
            snprintf(why, sizeof(why),
                     "unsupported image type (content-type %s); supported: png, jpeg, gif, webp",
                     type);
        else
            snprintf(why, sizeof(why), "it is not an image (content-type %s)",
                     type[0] ? type : "missing");
        image_fail(f, im, "invalid_image_format", why);
        return 1;
    }
    if (resp->len == 0) {
        image_fail(f, im, "invalid_image_format", "the image is empty");
        return 1;
    }
    free(p->mime);
    free(p->data_b64);
    free(p->url);
    p->mime = xstrdup(mime);
    p->data_b64 = base64_encode(resp->body, resp->len, NULL);
    p->url = NULL; /* an inline image now, as if given by data: URL */
    log_msg(LOG_DEBUG, "http", "req=%s image %zu.%zu: %zu bytes of %s", f->r->id, im->msg, im->idx,
            resp->len, mime);
    return 0;
}

static void on_image(void *ud, const struct fetch_resp *resp, const struct gw_err *err)
{
    struct flow_image *im = ud;
    struct flow *f = im->f;
    char why[sizeof(err->msg) + 32];

    im->pending = 0;
    f->images_pending--;
    if (err) {
        /* fetch_get_ex() reports a refused private address as GW_EINVAL. */
        if (err->code == GW_EINVAL)
            snprintf(why, sizeof(why), "the image URL resolves to a private or local address");
        else if (err->code == GW_ETIMEDOUT)
            snprintf(why, sizeof(why), "timed out after %d s", IMAGE_TIMEOUT_MS / 1000);
        else if (err->code == GW_ETOOBIG)
            snprintf(why, sizeof(why), "the image is larger than %u MiB",
                     IMAGE_MAX_BYTES / (1024 * 1024));
        else
            snprintf(why, sizeof(why), "%s", err->msg);
        image_fail(f, im, "invalid_image_url", why);
        return;
    }
    if (image_store(f, im, resp))
        return;
    if (f->images_pending)
        return;
    free(f->images); /* they point into f->conv, which the turn will own */
    f->images = NULL;
    f->nimages = 0;
    flow_run(f);
}

/* Notes every image part given by URL; a request may carry at most IMAGE_MAX_URLS. */
int flow_images_collect(struct flow *f, struct gw_err *err)
{
    struct conv *conv = f->conv;
    size_t n = 0;

    for (size_t i = 0; i < conv->nmsgs; i++)
        for (size_t j = 0; j < conv->msgs[i].nparts; j++) {
            const struct conv_part *p = &conv->msgs[i].parts[j];
            n += p->kind == CONV_IMAGE && p->url && !p->data_b64;
        }
    if (n > IMAGE_MAX_URLS)
        return gw_err_param(err, GW_EINVAL, "messages",
                            "too many image URLs: %zu; a request may give at most %d (send the "
                            "others as data: URLs)",
                            n, IMAGE_MAX_URLS);
    if (n == 0)
        return GW_OK;
    f->images = xcalloc(n, sizeof(*f->images));
    for (size_t i = 0; i < conv->nmsgs; i++)
        for (size_t j = 0; j < conv->msgs[i].nparts; j++) {
            struct conv_part *p = &conv->msgs[i].parts[j];
            if (p->kind != CONV_IMAGE || !p->url || p->data_b64)
                continue;
            f->images[f->nimages++] = (struct flow_image){.f = f, .part = p, .msg = i, .idx = j};
        }
    return GW_OK;
}

/* Starts every download at once; the last one to finish starts the turn. */
void flow_images_start(struct flow *f)
{
    struct fetch *fe = f->svc->fetch;
    struct fetch_opts o = {.accept = "image/png, image/jpeg, image/gif, image/webp, */*;q=0.5",
                           .timeout_ms = IMAGE_TIMEOUT_MS,
                           .max_body = IMAGE_MAX_BYTES,
                           .public_only = !f->svc->image_fetch_private};

    for (size_t i = 0; i < f->nimages; i++) {
        struct flow_image *im = &f->images[i];
        int rc = fe ? fetch_get_ex(fe, im->part->url, &o, on_image, im) : GW_EIO;

        if (rc) {
            /* Never called back: fail now, dropping those already started. */
            image_fail(f, im, "invalid_image_url",
                       rc == GW_EINVAL ? "not a valid http(s) URL" : "downloads are unavailable");
            return;
        }
        im->pending = 1;
        f->images_pending++;
    }
}

