/*
 * http/metrics.h - request counters and duration histograms for /metrics.
 *
 * Fixed-size tables: a route is one of a few constant names (never the raw
 * path, so a client cannot blow up the label set), a status is an HTTP code.
 */
#ifndef GW_HTTP_METRICS_H
#define GW_HTTP_METRICS_H

#include <stdint.h>

#include "util/buf.h"

#define METRICS_MAX_SERIES 64
#define METRICS_NBUCKETS 15

struct http_metrics {
    struct {
        const char *route;
        int status;
        uint64_t count;
    } req[METRICS_MAX_SERIES];
    int nreq;
    struct {
        const char *route;
        uint64_t bucket[METRICS_NBUCKETS]; /* cumulative counts per le */
        uint64_t count;
        double sum;
    } dur[16];
    int ndur;
};

/* route must be a string constant. */
void http_metrics_observe(struct http_metrics *m, const char *route, int status, double seconds);
/* Appends the request series in Prometheus text format. */
int http_metrics_render(const struct http_metrics *m, struct buf *out) WARN_UNUSED;

#endif
