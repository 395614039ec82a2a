/* Finding the Copilot runtime binary: flag, environment, npm install, PATH. */
#include "rt/locate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char not_found_msg[] =
    "no Copilot runtime found: run `npm ci` in the copilot-gateway directory (installs "
    "@github/copilot-sdk), or pass --copilot PATH / set COPILOT_CLI_PATH, or install the "
    "Copilot CLI (`npm install -g @github/copilot`)";

/* 0 when path is an executable regular file, else an errno value. */
static int check_exe(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return EISDIR;
    if (access(path, X_OK) < 0)
        return errno;
    return 0;
}

/*
 * Writes dir/name (or just name when dir is NULL) into out, made absolute
 * against the current directory when relative.  Returns -1 when it does not fit.
 */
static int join(char *out, size_t outlen, const char *dir, const char *name)
{
    char cwd[PATH_MAX];
    const char *first = dir ? dir : name;
    int n;

    if (first[0] == '/')
        cwd[0] = '\0';
    else if (!getcwd(cwd, sizeof(cwd)))
        return -1;
    if (dir)
        n = snprintf(out, outlen, "%s%s%s/%s", cwd, cwd[0] ? "/" : "", dir, name);
    else
        n = snprintf(out, outlen, "%s%s%s", cwd, cwd[0] ? "/" : "", name);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* An explicitly configured path: it must work, or we say which one did not. */
static int use_given(const char *path, const char *origin, char *out, size_t outlen,
                     struct gw_err *err)
{
    int e = check_exe(path);

    if (e)
        return gw_err_set(err, GW_ERUNTIME, "copilot runtime '%s' (from %s) is not usable: %s",
                          path, origin, strerror(e));
    if (join(out, outlen, NULL, path) < 0)
        return gw_err_set(err, GW_EINVAL, "copilot runtime path '%s' is too long", path);
    return GW_OK;
}

/* Tries dir/name (name alone: under the cwd); 1 when found, 0 when absent or unusable. */
static int try_candidate(const char *dir, const char *name, char *out, size_t outlen)
{
    if (join(out, outlen, dir, name) < 0)
        return 0;
    return check_exe(out) == 0;
}

static int search_path(char *out, size_t outlen)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX];

    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);

        /* An empty PATH element means the current directory. */
        if (n < sizeof(dir)) {
            memcpy(dir, path, n);
            dir[n] = '\0';
            if (try_candidate(n ? dir : ".", "copilot", out, outlen))
                return 1;
        }
        path = colon ? colon + 1 : NULL;
    }
    return 0;
}

int rt_locate(const char *flag_path, const char *self_exe_dir, char *out, size_t outlen,
              struct gw_err *err)
{
    const char *env = getenv("COPILOT_CLI_PATH");
    char dir[PATH_MAX], parent[PATH_MAX];

    if (flag_path && *flag_path)
        return use_given(flag_path, "--copilot", out, outlen, err);
    if (env && *env)
        return use_given(env, "COPILOT_CLI_PATH", out, outlen, err);
    if (self_exe_dir && *self_exe_dir) {
        /* build/copilot-gateway -> the project directory above build/ */
        int n = snprintf(dir, sizeof(dir), "%s/..", self_exe_dir);
        if (n > 0 && (size_t)n < sizeof(dir) && realpath(dir, parent) &&
            try_candidate(parent, RT_NPM_RUNTIME, out, outlen))
            return GW_OK;
    }
    if (try_candidate(NULL, RT_NPM_RUNTIME, out, outlen))
        return GW_OK;
    if (search_path(out, outlen))
        return GW_OK;
    return gw_err_set(err, GW_ERUNTIME, "%s", not_found_msg);
}

int rt_is_cli(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;

    return strcmp(base, "copilot-runtime") != 0;
}
