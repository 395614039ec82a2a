/*
 * util/cfg.h - the gateway's configuration, from declarative tables (schemas).
 *
 * Every flat setting has a flag (--name VALUE or --name=VALUE), an environment
 * variable (COPILOT_GATEWAY_NAME, dashes as underscores) and a key in the YAML
 * config file (--config FILE; keys as the flag names, '_' accepted for '-').
 * Precedence: flag > environment > config file > default.  The whole file is
 * always checked against the schema, also the values a flag or variable overrides:
 * an unknown key, a wrong type or a bad value anywhere is an error naming
 * FILE:LINE and the key path ('agents.logs.tools[2]').  See util/yaml.h for what
 * the file itself may not contain (anchors, duplicate keys, ...).
 *
 * Nested sections are declared as tables too (struct cfg_schema) and decoded with
 * cfg_decode(), either as a row of the top-level table (decoded into gw_config at
 * load time) or by the module that owns them, from cfg_file_node().
 *
 * Ownership: cfg_load() fills an owned struct gw_config (which also owns the loaded
 *   file's tree); cfg_release() frees it.  cfg_decode() fills a caller struct whose
 *   owned members cfg_decoded_release() frees.
 * Threading: none; load once at start-up, then read-only.
 * Errors: GW_OK or GW_EINVAL with a message naming the source (flag, variable or
 *   FILE:LINE) and the key.
 */
#ifndef GW_UTIL_CFG_H
#define GW_UTIL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"
#include "util/yaml.h"

/* ---- schemas ------------------------------------------------------------------------------ */

/* Value types; each row says what the destination member (at .off) is. */
enum cfg_type {
    CFG_STR,     /* char *: any scalar; a plain null (`key:`, `~`) only with CFG_LOOSE */
    CFG_INT,     /* int64_t in [min, max]: a plain YAML integer (CFG_LOOSE: quoted too) */
    CFG_BOOL,    /* bool: true/false/yes/no/on/off/0/1, any case (CFG_LOOSE: quoted too) */
    CFG_ENUM,    /* char *: one of .choices (CFG_NOCASE: any case) */
    CFG_LIST,    /* struct cfg_strlist: a sequence of scalars, or one "a, b, c" string */
    CFG_MAP,     /* struct cfg_strmap: a mapping of scalar to scalar */
    CFG_SECTION, /* the struct .sub describes (embedded at .off): a mapping */
    CFG_ENTRIES, /* struct cfg_entries: a mapping of name to a .sub mapping (`agents:`) */
    CFG_CSV,     /* char *: a list stored as "a,b,c"; a scalar is taken verbatim */
    CFG_PAIRS,   /* char *: a mapping stored as "K=V,K=V"; a scalar is taken verbatim */
    CFG_NODE,    /* const struct ynode *: any value, kept (borrowed from the document) for
                    the module that owns it to cfg_decode() with its own schema */
};

enum cfg_field_flags {
    CFG_REQUIRED = 1 << 0, /* missing from its mapping: an error at the mapping's line */
    CFG_LOOSE = 1 << 1,    /* scalars are read as text, as flags and variables are */
    CFG_NOCASE = 1 << 2,   /* CFG_ENUM: compare without case */
};

struct cfg_schema;

struct cfg_field {
    const char *name; /* key, spelled as in the file */
    enum cfg_type type;
    size_t off;       /* offsetof the destination member */
    unsigned flags;   /* enum cfg_field_flags */
    const char *def;  /* default, as text read like a flag value (scalar types only), or NULL */
    int64_t min, max; /* CFG_INT */
    const char *const *choices;   /* CFG_ENUM: NULL-terminated */
    const struct cfg_schema *sub; /* CFG_SECTION, CFG_ENTRIES */
    const char *help;             /* top-level table: the --help line */
};

enum cfg_schema_flags {
    CFG_UNDERSCORE = 1 << 0, /* '_' in a key matches '-' in a name (the flat settings) */
};

struct cfg_schema {
    const struct cfg_field *fields;
    size_t nfields;
    size_t size;     /* sizeof the struct it decodes into (CFG_SECTION, CFG_ENTRIES) */
    size_t name_off; /* CFG_ENTRIES: offsetof the entry's `char *` name */
    unsigned flags;  /* enum cfg_schema_flags */
};

struct cfg_strlist {
    char **v; /* n strings, then NULL (v is NULL when n == 0) */
    size_t n;
};

struct cfg_strmap {
    char **keys, **values; /* in file order */
    size_t n;
};

/* n entries of schema->size bytes each, in file order; each names itself at name_off. */
struct cfg_entries {
    void *v;
    size_t n;
};

/*
 * Decodes the mapping node into out as schema s describes: every key must be a field (else
 * an error naming it), every CFG_REQUIRED field present, every value of its type; fields
 * absent from the mapping get their .def (if any).  A plain null node counts as an empty
 * mapping.  path is the key path of node for messages ("" or NULL at the top level).
 * out must be zeroed (or hold only what cfg_decoded_release() can free); on error it is
 * released and zeroed, so callers never free half-decoded data.
 */
int cfg_decode(const struct ynode *node, const char *path, const struct cfg_schema *s, void *out,
               struct gw_err *err) WARN_UNUSED;
/* Frees every owned member of out that s describes and zeroes them.  Idempotent. */
void cfg_decoded_release(const struct cfg_schema *s, void *out);

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
    char *admin_key; /* the admin API's key (never logged), or NULL */
    char *token_key_file; /* seals users' GitHub tokens (keys/sealed.h), or NULL */
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
    char *model_prices; /* "MODEL=IN/OUT[/CACHED],..." (keys/prices.h), or NULL */
    int64_t runtime_recycle_sessions;
    int64_t runtime_recycle_mb;
    bool image_fetch_private;
    int64_t responses_ttl_s;
    int64_t responses_max;
    int64_t audit_ttl_days; /* audit rows older than this are deleted (0: never) */
    /* hardening (issue 8) */
    char *cors_origins;               /* comma-separated exact origins, or NULL: no CORS */
    char *allowed_hosts;              /* comma-separated extra Host names, or NULL */
    int64_t max_connections;          /* 0: derived from the descriptor limit */
    int64_t header_timeout_s;         /* whole header block deadline */
    int64_t write_timeout_s;          /* a client that takes no output this long is dropped */
    int64_t max_write_buffer_bytes;   /* queued output per connection */
    int64_t max_input_tokens;         /* largest conversation sent to the runtime (estimate) */
    int64_t runtime_ping_interval_ms; /* liveness probe period (0: off) */
    int64_t runtime_ping_timeout_ms;  /* a ping unanswered this long marks the process down */
    int64_t min_free_mb;              /* below this free space on data/home, writes are refused */
    const struct ynode *agents;       /* the file's `agents:` (agent/config.h), or NULL */
    struct ydoc file;                 /* the --config file's tree (an empty mapping without one) */
};

/*
 * Parses argv[first..argc) (flags only), the environment and the config file.
 * On a bad value returns GW_EINVAL with err naming the source (flag, variable
 * or file:line) and the key.
 */
int cfg_load(struct gw_config *c, int argc, char **argv, int first, struct gw_err *err) WARN_UNUSED;
/*
 * Defaults, then len bytes of YAML text as the config file (name stands for its path in
 * messages); no flags, no environment.  For tests and the fuzzer.
 */
int cfg_load_mem(struct gw_config *c, const char *name, const void *text, size_t len,
                 struct gw_err *err) WARN_UNUSED;
/* Frees everything c owns; c can be released again or reloaded.  Also after a failed load. */
void cfg_release(struct gw_config *c);
/*
 * The value of a top-level key of the config file (borrowed from c; valid until
 * cfg_release), or NULL when absent.  Only keys of the top-level table can be present:
 * a module that decodes its own section declares it there as a CFG_NODE row, then calls
 * cfg_decode(cfg_file_node(c, "agents"), "agents", &its_schema, &its_struct, err).
 */
const struct ynode *cfg_file_node(const struct gw_config *c, const char *key);
/* Prints the flag table (for --help). */
void cfg_usage(FILE *out);

#endif
