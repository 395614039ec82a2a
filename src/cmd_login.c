/*
 * `copilot-gateway login`: signs the gateway's runtime in to GitHub.
 *
 * The Copilot CLI has its own device-code flow (`copilot login`), which we run
 * with the gateway's COPILOT_HOME.  The SDK's copilot-runtime has no login
 * command; it takes a GitHub token through its `account.login` method, which
 * validates the token with GitHub and stores it for that home.  This path is
 * written from the runtime's schema: it cannot be exercised without GitHub.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "rt/locate.h"
#include "rt/rt.h"
#include "util/log.h"
#include "util/xmalloc.h"

int login_main(const char *runtime, const char *home, struct event_base *base);

struct login {
    struct event_base *base;
    struct rt *rt;
    char *token;
    int rc;
    int started;
};

static char *read_token(void)
{
    const char *vars[] = {"COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"};
    char line[4096];
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO);

    for (size_t i = 0; i < 3; i++)
        if (getenv(vars[i]) && *getenv(vars[i])) {
            fprintf(stderr, "using the token in %s\n", vars[i]);
            return xstrdup(getenv(vars[i]));
        }
    if (tty) {
        fprintf(stderr, "Paste a GitHub token for an account with a Copilot seat\n"
                        "(for example the output of `gh auth token`), then press Enter: ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    if (!fgets(line, sizeof(line), stdin))
        line[0] = '\0';
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fprintf(stderr, "\n");
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line[0] ? xstrdup(line) : NULL;
}

static void stopped(void *ud)
{
    struct login *l = ud;
    event_base_loopexit(l->base, NULL);
}

static void on_status(void *ud, const json_t *result, const struct gw_err *err)
{
    struct login *l = ud;
    const char *who = json_string_value(json_object_get(result, "login"));
    if (!err && json_is_true(json_object_get(result, "isAuthenticated"))) {
        printf("signed in to GitHub%s%s; start the gateway with `make run`\n", who ? " as " : "",
               who ? who : "");
        l->rc = 0;
    }
    rt_stop(l->rt, stopped, l);
}

static void on_login(void *ud, const json_t *result, const struct gw_err *err)
{
    struct login *l = ud;
    uint64_t id;

    if (err) {
        fprintf(stderr, "copilot-gateway: sign-in failed: %s\n", err->msg);
        rt_stop(l->rt, stopped, l);
        return;
    }
    if (!json_is_true(json_object_get(result, "storedInVault")))
        fprintf(stderr, "note: the runtime could not store the token; set COPILOT_GITHUB_TOKEN "
                        "in the gateway's environment instead\n");
    if (rt_call(l->rt, "auth.getStatus", json_object(), 10000, on_status, l, &id))
        rt_stop(l->rt, stopped, l);
}

static void on_up(struct rt *rt, void *ud)
{
    struct login *l = ud;
    uint64_t id;
    if (l->started)
        return;
    l->started = 1;
    if (rt_call(rt, "account.login",
                json_pack("{s:s, s:s}", "host", "https://github.com", "token", l->token), 60000,
                on_login, l, &id))
        rt_stop(rt, stopped, l);
}

static void on_down(struct rt *rt, void *ud, const char *why)
{
    struct login *l = ud;
    if (!l->started) {
        fprintf(stderr, "copilot-gateway: the runtime could not start: %s\n", why);
        rt_stop(rt, stopped, l);
    }
}

int login_main(const char *runtime, const char *home, struct event_base *base)
{
    struct rt_config c;
    struct login l;

    if (rt_is_cli(runtime)) {
        /* The CLI runs its own device-code flow in this terminal. */
        setenv("COPILOT_HOME", home, 1);
        execl(runtime, runtime, "login", (char *)NULL);
        fprintf(stderr, "copilot-gateway: cannot run the Copilot CLI: %s\n", strerror(errno));
        return 1;
    }
    memset(&l, 0, sizeof(l));
    l.base = base;
    l.rc = 1;
    l.token = read_token();
    if (!l.token) {
        fprintf(stderr, "copilot-gateway: no token given.  Set COPILOT_GITHUB_TOKEN, or run "
                        "`copilot-gateway login` in a terminal and paste one.\n");
        return 1;
    }
    memset(&c, 0, sizeof(c));
    c.path = runtime;
    c.home = home;
    c.cwd = home;
    c.on_up = on_up;
    c.on_down = on_down;
    c.ud = &l;
    l.rt = rt_new(base, &c);
    if (rt_start(l.rt) == 0)
        event_base_dispatch(base);
    rt_free(l.rt);
    memset(l.token, 0, strlen(l.token));
    free(l.token);
    return l.rc;
}
