/*
 * cmd.h - the client commands (`copilot-gateway claude`, `copilot-gateway
 * codex`): each prints the settings that point a tool at this gateway or,
 * given `-- ARGS`, runs the tool with them; and `copilot-gateway audit`,
 * which reads the audit log.
 */
#ifndef GW_CMD_H
#define GW_CMD_H

#include <stddef.h>

#include "util/cfg.h"

/* argv[0] is the tool's name, argv[1..argc) its arguments; argc 0: print only. */
int claude_main(const struct gw_config *cfg, int argc, char **argv);
int codex_main(const struct gw_config *cfg, int argc, char **argv);

/* `copilot-gateway audit [flags]`: argv as main() got it (argv[1] is "audit").  The exit
 * status: 0, 1 (the store failed), 2 (a bad flag: error and usage on stderr). */
int audit_main(int argc, char **argv);
/* `copilot-gateway keys create|list|show|update|revoke ...` (cmd_keys.c): exit status. */
int keys_main(int argc, char **argv);
/* `copilot-gateway usage [--group-by G] [--since T] [--until T] [--key K] [--json]`. */
int usage_main(int argc, char **argv);

/* The URL clients use for cfg->listen ("http://HOST:PORT"): a wildcard listen
 * address is reached on loopback. */
void cmd_base_url(const char *listen, char *out, size_t n);
/* The client key to use: the first --api-key, or a placeholder when the
 * gateway requires none. */
void cmd_client_key(const struct gw_config *cfg, char *out, size_t n);

#endif
