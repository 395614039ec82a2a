/*
 * What the rt tests share (header only, static inline): a scratch directory
 * with the runtime's home and working directory in it, where the real
 * runtime is, and the process set-up of a test program.
 */
#ifndef GW_TESTS_UNIT_RT_RTTEST_H
#define GW_TESTS_UNIT_RT_RTTEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "rt/locate.h"
#include "rt/rt.h"
#include "util/log.h"

/* The real runtime: $COPILOT_RUNTIME, else the npm install under the repo root. */
static inline const char *rttest_runtime_path(void)
{
    const char *p = getenv("COPILOT_RUNTIME");
    return p && *p ? p : RT_NPM_RUNTIME;
}

/* Makes dir a new /tmp/<tag>-XXXXXX; home and cwd name its "home" and "work". */
static inline void rttest_dirs(char dir[64], char home[128], char cwd[128], const char *tag)
{
    snprintf(dir, 64, "/tmp/%s-XXXXXX", tag);
    assert_non_null(mkdtemp(dir));
    snprintf(home, 128, "%s/home", dir);
    snprintf(cwd, 128, "%s/work", dir);
}

/* The config of an rt for the runtime at path, no login, 10 s calls, no callbacks. */
static inline struct rt_config rttest_cfg(const char *path, const char *home, const char *cwd)
{
    struct rt_config cfg = {0};

    cfg.path = path;
    cfg.home = home;
    cfg.cwd = cwd;
    cfg.no_auto_login = 1;
    cfg.call_timeout_ms = 10000;
    return cfg;
}

/* A write to a dead child's stdin must be an error, not a fatal signal; the
 * log level comes from $GW_TEST_LOG (default warn). */
static inline void rttest_main_init(void)
{
    const char *lvl = getenv("GW_TEST_LOG");

    signal(SIGPIPE, SIG_IGN);
    log_level_current =
        lvl && log_level_parse(lvl) >= 0 ? (enum log_level)log_level_parse(lvl) : LOG_WARN;
}

#endif
