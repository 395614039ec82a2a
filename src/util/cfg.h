/*
 * util/cfg.h - the gateway's configuration, from one declarative table.
 *
 * Every setting has a flag (--name VALUE or --name=VALUE), an environment
 * variable (COPILOT_GATEWAY_NAME, dashes as underscores) and a key in the YAML
 * config file (--config FILE; a flat mapping, keys as the flag names).
 * Precedence: flag > environment > config file > default.
 * Ownership: cfg_load() fills an owned struct gw_config; cfg_release() frees it.
 */
#ifndef GW_UTIL_CFG_H
#define GW_UTIL_CFG_H

#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

struct gw_config {
    char *listen;
    char *config;
    char *copilot;
    char *home;
    char *data;
    char *provider_url;
    char *provider_key;
    char *provider_type;
    char *log_level;
    char *api_key; /* comma-separated list */
    int64_t max_body_bytes;
    int64_t max_header_bytes;
    int64_t read_timeout_s;
    int64_t turn_timeout_ms;
    int64_t call_timeout_ms;
    int64_t shutdown_timeout_s;
    int64_t models_ttl_s;
    int64_t tool_timeout_s;
    int64_t session_idle_s;
    int64_t max_sessions;
    int64_t runtime_pool;
    char *anthropic_default_model;
    char *model_alias;
    int64_t runtime_recycle_sessions;
    int64_t runtime_recycle_mb;
    int64_t image_fetch_private; /* 0 or 1 */
    int64_t responses_ttl_s;
    int64_t responses_max;
    /* hardening (issue 8) */
    char *cors_origins;          /* comma-separated exact origins, or NULL: no CORS */
    char *allowed_hosts;         /* comma-separated extra Host names, or NULL */
    int64_t max_connections;     /* 0: derived from the descriptor limit */
    int64_t header_timeout_s;    /* whole header block deadline */
    int64_t write_timeout_s;     /* a client that takes no output this long is dropped */
    int64_t max_write_buffer_bytes; /* queued output per connection */
    int64_t max_input_tokens;    /* largest conversation sent to the runtime (estimate) */
    int64_t runtime_ping_interval_ms; /* liveness probe period (0: off) */
    int64_t runtime_ping_timeout_ms;  /* a ping unanswered this long marks the process down */
    int64_t min_free_mb;         /* below this free space on data/home, writes are refused */
};

/*
 * Parses argv[first..argc) (flags only), the environment and the config file.
 * On a bad value returns GW_EINVAL with err naming the source (flag, variable
 * or file:line) and the key.
 */
int cfg_load(struct gw_config *c, int argc, char **argv, int first, struct gw_err *err)
    WARN_UNUSED;
void cfg_release(struct gw_config *c);
/* Prints the flag table (for --help). */
void cfg_usage(FILE *out);

#endif
