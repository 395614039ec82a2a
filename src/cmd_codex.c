/*
 * `copilot-gateway codex`: the Codex CLI settings that point Codex at this
 * gateway's Responses API.  Without arguments it prints a config.toml
 * provider block and the key variable; after `--` it runs `codex` with the
 * same settings as -c flags, before the given arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "util/xmalloc.h"

#define PROVIDER "copilot-gateway"
#define KEY_VAR "COPILOT_GATEWAY_API_KEY"

int codex_main(const struct gw_config *cfg, int argc, char **argv)
{
    char url[512], key[512], flag[640];
    const char *fixed[] = {
        "model_provider=\"" PROVIDER "\"",
        "model_providers." PROVIDER ".name=\"copilot-gateway\"",
        NULL, /* base_url */
        "model_providers." PROVIDER ".wire_api=\"responses\"",
        "model_providers." PROVIDER ".env_key=\"" KEY_VAR "\"",
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    char **args;
    size_t k = 0;

    cmd_base_url(cfg->listen, url, sizeof(url));
    cmd_client_key(cfg, key, sizeof(key));
    if (argc == 0) {
        printf("# ~/.codex/config.toml\n"
               "model_provider = \"" PROVIDER "\"\n"
               "# model = \"gpt-5.1-codex\"   # any model your Copilot plan offers "
               "(GET %s/v1/models)\n\n"
               "[model_providers." PROVIDER "]\n"
               "name = \"copilot-gateway\"\n"
               "base_url = \"%s/v1\"\n"
               "wire_api = \"responses\"\n"
               "env_key = \"" KEY_VAR "\"\n\n"
               "# and in the shell that runs codex:\n"
               "export " KEY_VAR "='%s'\n"
               "# or, without editing config.toml: copilot-gateway codex -- exec \"...\"\n",
               url, url, key);
        return 0;
    }
    snprintf(flag, sizeof(flag), "model_providers." PROVIDER ".base_url=\"%s/v1\"", url);
    fixed[2] = flag;
    /* codex -c K=V ... ARGS: the settings come first, so the user's own -c flags win. */
    args = xcalloc(2 * nfixed + (size_t)argc + 1, sizeof(*args));
    args[k++] = argv[0];
    for (size_t i = 0; i < nfixed; i++) {
        args[k++] = "-c";
        args[k++] = (char *)fixed[i];
    }
    for (int i = 1; i < argc; i++)
        args[k++] = argv[i];
    args[k] = NULL;
    setenv(KEY_VAR, key, 1);
    execvp("codex", args);
    fprintf(stderr,
            "copilot-gateway: cannot run 'codex': %s (install Codex CLI with `npm install -g "
            "@openai/codex`)\n",
            strerror(errno));
    free(args);
    return 127;
}
