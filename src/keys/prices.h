/*
 * keys/prices.h - what a request costs in AI credits, for usage and budgets.
 *
 * `--model-prices MODEL=IN/OUT[/CACHED],...` (config file: model-prices, a mapping or that
 * string) gives the AI credits per million input, output and cached input tokens of a model
 * (a glob: "gpt-5*"); the first entry that matches prices the request, by the model it ran
 * on (an agent's model for "agent/<name>").  Cached tokens are part of the input tokens
 * and are charged at CACHED instead of IN (default: IN).
 *
 * A request's credits come from the first of these that applies (http/flow.c on_done()):
 *   1. the runtime reported its cost: the sum of its model calls' copilotUsage.totalNanoAiu
 *      (CAPI's copilot_usage; a BYOK provider may send it too) / 1e9, 1 AI credit being 1e9
 *      nano-AIU;
 *   2. an entry here matches the model it ran on: prices_find(), model_price_credits();
 *   3. the model catalogue prices it: Copilot's models.list billing.tokenPrices, as
 *      api/models.h models_pricing() reads them (credits per batch of batchSize tokens,
 *      converted to credits per million);
 *   4. else 0: so a BYOK model costs 0 (its bill is the provider's) unless an entry here
 *      prices it or its provider reports copilot_usage.
 * So an entry here overrides the catalogue's price but never a cost the runtime reported.
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

/* The first entry whose glob matches model (borrowed), or NULL: none, or p or model NULL. */
const struct model_price *prices_find(const struct prices *p, const char *model);
/* The credits of these token counts at mp's rates; cached tokens are part of input (cached
 * is clamped to 0..input).  mp NULL: 0. */
double model_price_credits(const struct model_price *mp, int64_t input, int64_t output,
                           int64_t cached);
/* model_price_credits(prices_find(p, model), ...). */
double prices_credits(const struct prices *p, const char *model, int64_t input, int64_t output,
                      int64_t cached);

#endif
