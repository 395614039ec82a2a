/*
 * `copilot-gateway claude`: the environment that points Claude Code at this
 * gateway.  Without arguments it prints it as shell exports; after `--` it
 * runs `claude` with it and those arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"

struct env_var {
    const char *name;
    char value[512];
};

void cmd_base_url(const char *listen, char *out, size_t n)
{
    const char *colon = strrchr(listen, ':');
    const char *port = colon ? colon + 1 : "3000";
    size_t hl = colon ? (size_t)(colon - listen) : 0;

    if (hl == 0 || strncmp(listen, "0.0.0.0", hl) == 0 || strncmp(listen, "[::]", hl) == 0)
        snprintf(out, n, "http://127.0.0.1:%s", port);
    else
        snprintf(out, n, "http://%.*s:%s", (int)hl, listen, port);
}

void cmd_client_key(const struct gw_config *cfg, char *out, size_t n)
{
    const char *key = cfg->api_key;
    size_t klen = key ? strcspn(key, ",") : 0;

    /* Any value works unless --api-key is set; tools refuse an empty one. */
    snprintf(out, n, "%.*s", (int)(klen ? klen : 15), klen ? key : "copilot-gateway");
}

static size_t build_env(const struct gw_config *cfg, struct env_var *v)
{
    size_t n = 0;

    v[n].name = "ANTHROPIC_BASE_URL";
    cmd_base_url(cfg->listen, v[n++].value, sizeof(v[0].value));
    v[n].name = "ANTHROPIC_AUTH_TOKEN";
    cmd_client_key(cfg, v[n++].value, sizeof(v[0].value));
    if (cfg->anthropic_default_model) {
        v[n].name = "ANTHROPIC_MODEL";
        snprintf(v[n++].value, sizeof(v[0].value), "%s", cfg->anthropic_default_model);
        v[n].name = "ANTHROPIC_SMALL_FAST_MODEL";
        snprintf(v[n++].value, sizeof(v[0].value), "%s", cfg->anthropic_default_model);
    }
    v[n].name = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC";
    snprintf(v[n++].value, sizeof(v[0].value), "1");
    return n;
}

int claude_main(const struct gw_config *cfg, int argc, char **argv)
{
    struct env_var v[8];
    size_t n = build_env(cfg, v);

    if (argc == 0) {
        for (size_t i = 0; i < n; i++)
            printf("export %s='%s'\n", v[i].name, v[i].value);
        printf("# then run: claude   (or: copilot-gateway claude -- -p \"...\")\n");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        setenv(v[i].name, v[i].value, 1);
    execvp("claude", argv);
    fprintf(stderr,
            "copilot-gateway: cannot run 'claude': %s (install Claude Code with `npm install -g "
            "@anthropic-ai/claude-code`)\n",
            strerror(errno));
    return 127;
}
