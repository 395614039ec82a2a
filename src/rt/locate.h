/*
 * rt/locate.h - finds the Copilot runtime binary to supervise.
 *
 * Search order: the --copilot flag, $COPILOT_CLI_PATH, the project's npm
 * install (node_modules/@github/copilot-sdk-linux-x64/.../copilot-runtime)
 * next to the executable's directory and then under the current directory,
 * and last `copilot` on $PATH.  A path the operator named explicitly (flag or
 * environment) must exist and be executable, or the search stops with an
 * error naming it; the other candidates are skipped silently when absent.
 * The result is always an absolute path (the child runs in another cwd).
 *
 * Errors: 0 or GW_ERUNTIME (nothing usable) / GW_EINVAL (out too small),
 * with a message saying how to fix it in the optional err.
 */
#ifndef GW_RT_LOCATE_H
#define GW_RT_LOCATE_H

#include <stddef.h>

#include "util/err.h"

/* The npm install of the runtime, relative to the project directory. */
#define RT_NPM_RUNTIME                                                                             \
    "node_modules/@github/copilot-sdk-linux-x64/prebuilds/linux-x64/copilot-runtime"

/*
 * Writes the runtime's absolute path into out[0..outlen).  flag_path and
 * self_exe_dir (the directory holding our executable) may be NULL.
 */
int rt_locate(const char *flag_path, const char *self_exe_dir, char *out, size_t outlen,
              struct gw_err *err) WARN_UNUSED;

/* 1 when path is the `copilot` CLI rather than the SDK's copilot-runtime. */
int rt_is_cli(const char *path);

#endif
