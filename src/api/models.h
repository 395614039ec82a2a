/*
 * api/models.h - the model catalogue behind GET /v1/models and model checks.
 *
 * With a BYOK provider the list is the provider's own GET {url}/models;
 * otherwise the runtime's `models.list` (needs GitHub sign-in).  Results are
 * cached for ttl seconds; concurrent lookups share one fetch.
 * Ownership: callbacks get a borrowed list valid only during the call.
 */
#ifndef GW_API_MODELS_H
#define GW_API_MODELS_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "broker/broker.h"
#include "util/err.h"
#include "util/fetch.h"

struct models;

/*
 * list: OpenAI-shaped array of {"id","object":"model","created","owned_by", extras...}.
 * On failure list is NULL and err says why.
 */
typedef void (*models_cb)(void *ud, const json_t *list, const struct gw_err *err);

/*
 * BYOK when provider->url is set (provider is copied; b may then be NULL),
 * otherwise the runtime behind broker_rt(b).  ttl_s <= 0 disables the cache
 * (concurrent lookups still share one fetch).  Free m before f and b.
 */
struct models *models_new(struct event_base *base, struct broker *b, struct fetch *f,
                          const struct provider_config *provider, int ttl_s);
void models_free(struct models *m); /* NULL-safe; pending callbacks never run */
/*
 * cb runs later (never inside this call) - or immediately-deferred from cache.
 * Errors are not cached.  err->code: GW_EAUTH (runtime not signed in),
 * GW_ERUNTIME (runtime not ready), GW_ETIMEDOUT, GW_ETOOBIG (provider list
 * over 4 MiB), GW_ERATELIMIT (provider said 429), GW_EUPSTREAM (provider
 * unreachable or answered non-2xx / bad JSON; runtime RPC error), GW_EINVAL
 * (provider URL not http(s), key with a line break), GW_EPROTO (runtime
 * result of the wrong shape).
 */
void models_get(struct models *m, models_cb cb, void *ud);
/* Cancels a pending models_get for ud (the request went away). */
void models_cancel(struct models *m, void *ud);
/*
 * Finds id in list (borrowed entry) or NULL.  Exact match first; then an
 * entry "models/<id>" (or the reverse), for providers that prefix ids so.
 */
const json_t *models_find(const json_t *list, const char *id);

/*
 * How many tokens (estimated) a conversation for the model of catalogue
 * entry e may hold: the smallest positive input bound the entry states
 * (Copilot: max_prompt_tokens and context_window from capabilities.limits;
 * a provider: context_window, context_length, max_context_length,
 * max_model_len, max_input_tokens, ... as models.c lists them), capped by
 * cap.  Values other than positive numbers are ignored.
 * With e NULL or stating no bound, cap alone.  cap <= 0 means no cap, and
 * then 0 means no limit at all.
 */
int64_t models_input_limit(const json_t *e, int64_t cap);

/*
 * The AI credits per million input, output and cached input tokens that catalogue entry e
 * states ("pricing", as models_from_runtime() writes it): 1 with the three set, or 0 when e
 * has none (NULL, a provider's entry, numbers that are not finite and >= 0).  cached
 * defaults to input.
 */
int models_pricing(const json_t *e, double *input, double *output, double *cached);

/*
 * The conversions behind models_get(), exposed for tests.  Both return a new
 * reference to an OpenAI-shaped list, or NULL if the input has the wrong shape
 * (entries without a string id are skipped, not fatal).
 *
 * models_from_runtime: `models.list` result {"models":[...]} -> entries
 *   {"id","object","created":0,"owned_by":"github-copilot","name",
 *    "context_window","max_output_tokens","max_prompt_tokens",
 *    "capabilities":{"vision","reasoning_effort":[...]},
 *    "premium_request_multiplier","default_reasoning_effort",
 *    "pricing":{"ai_credits_per_million_tokens":{"input","output","cached_input"}}};
 *   limits and multiplier only when present; policy.state "disabled" entries
 *   dropped.  pricing comes from billing.tokenPrices, whose prices are AI credits
 *   per batch of batchSize tokens: price * 1e6 / batchSize, when batchSize > 0 and
 *   inputPrice and outputPrice are numbers >= 0 (cached_input: cacheReadPrice, else
 *   cachePrice, else inputPrice; cache writes and the long-context tier are not
 *   carried).
 * models_from_provider: {"data":[...]}, {"models":[...]} or a bare array of
 *   {"id", "created"?, "created_at"? (RFC 3339), "owned_by"?, ...} -> entries
 *   {"id","object":"model","created" (else 0),"owned_by" (else "byok")} plus
 *   the provider's other scalar fields copied as they are ("display_name"
 *   also becomes "name" when there is none).
 */
json_t *models_from_runtime(const json_t *result);
json_t *models_from_provider(const json_t *body);

#endif
