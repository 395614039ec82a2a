/*
 * keys/prices.h - what a request costs in AI credits, for usage and budgets.
 *
 * `--model-prices MODEL=IN/OUT[/CACHED],...` (config file: model-prices, a mapping or that
 * string) gives the AI credits per million input, output and cached input tokens of a model
 * (a glob: "gpt-5*"); the first entry that matches prices the request, by the model it ran
 * on (an agent's model for "agent/<name>").  A model without an entry costs 0: so do BYOK
 * models, whose bill is the provider's.  Cached tokens are part of the input tokens and are
 * charged at CACHED instead of IN (default: IN).
 *
 * (Copilot's own models carry billing.tokenPrices in models.list; using those is not done
 * yet: their unit is not verified against GitHub's billing.  Until then, price Copilot models
 * here from GitHub's published per-model rates.)
 *
 * Ownership: prices_parse() fills an owned struct prices (prices_free()).  Pure.
 */
#ifndef GW_KEYS_PRICES_H
#define GW_KEYS_PRICES_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct model_price {
    char *glob;
    double input, output, cached; /* credits per million tokens */
};

struct prices {
    struct model_price *v;
    size_t n;
};

/* Parses "MODEL=IN/OUT[/CACHED],..." (NULL or "": no prices).  GW_EINVAL with err naming
 * the entry; out is then empty. */
int prices_parse(const char *s, struct prices *out, struct gw_err *err) WARN_UNUSED;
void prices_free(struct prices *p);

/* The credits of a request to model with these token counts (cached <= input). */
double prices_credits(const struct prices *p, const char *model, int64_t input, int64_t output,
                      int64_t cached);

#endif
