/*
 * The runtime pool: starts each runtime process, warms it up with one turn
 * against the gateway's own loopback endpoint, tracks sign-in and
 * readiness, places new sessions on the least loaded ready process,
 * recycles a process past its budget, and watches the free disk space.
 */
#include "broker/broker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "broker/errmap.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

static int rtp_usable(const struct rtp *p)
{
    return rt_usable(p->rt) && !p->draining;
}

struct rtp *pool__pick(struct broker *b)
{
    struct rtp *best = NULL;
    for (int i = 0; i < b->npool; i++) {
        struct rtp *p = &b->pool[i];
        if (rtp_usable(p) && (!best || p->nsess < best->nsess))
            best = p;
    }
    return best;
}

/* ---- recycling ---------------------------------------------------------------------- */

static void on_recycled(void *ud)
{
    struct rtp *p = ud;
    p->draining = 0;
    p->opened = 0;
    p->recycled++;
    if (rt_start(p->rt))
        log_msg(LOG_ERROR, "broker", "runtime %d: cannot restart it after recycling", p->idx);
}

/* A draining process hands its idle sessions over (sess__hand_over()); once
 * it holds no session it is restarted. */
void pool__maybe_recycle(struct rtp *p)
{
    if (!p->draining || p->in_recycle || rt_state(p->rt) != RT_READY)
        return;
    p->in_recycle = 1; /* closing a session frees it, which calls us again */
    sess__hand_over(p);
    p->in_recycle = 0;
    if (p->nsess == 0 && rt_state(p->rt) == RT_READY) {
        log_msg(LOG_INFO, "broker", "runtime %d (pid %d) drained: restarting it", p->idx,
                rt_pid(p->rt));
        rt_stop(p->rt, on_recycled, p);
    }
}

/* ---- budgets, warm-up, sign-in -------------------------------------------------------- */

static long rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

/* Marks a process for recycling past its session or memory budget; the
 * last ready process is never drained. */
static void check_budget(struct rtp *p)
{
    struct broker *b = p->b;
    long kb;
    int others = 0;

    if (p->draining) {
        pool__maybe_recycle(p);
        return;
    }
    if (rt_state(p->rt) != RT_READY)
        return;
    for (int i = 0; i < b->npool; i++)
        others += &b->pool[i] != p && rtp_usable(&b->pool[i]);
    kb = rss_kb(rt_pid(p->rt));
    if ((b->cfg.recycle_sessions > 0 && p->opened >= (uint64_t)b->cfg.recycle_sessions) ||
        (b->cfg.recycle_mb > 0 && kb > (long)b->cfg.recycle_mb * 1024)) {
        if (!others)
            return; /* never drain the last process that can serve: wait for another */
        log_msg(LOG_INFO, "broker", "runtime %d (pid %d): %llu sessions, %ld MB: recycling it",
                p->idx, rt_pid(p->rt), (unsigned long long)p->opened, kb / 1024);
        p->draining = 1;
        pool__maybe_recycle(p);
    }
}

static void recycle_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    for (int i = 0; i < b->npool; i++)
        check_budget(&b->pool[i]);
}

/* Fails the waiting turns when no process of the pool can come back. */
static void fail_waiting(struct broker *b)
{
    struct gw_err err;

    for (int i = 0; i < b->npool; i++)
        if (rt_state(b->pool[i].rt) != RT_STOPPED)
            return;
    gw_err_set(&err, GW_ERUNTIME, "the Copilot runtime stopped and is not coming back");
    turn__fail_waiting(b, &err);
}

void pool__warmup_done(struct rtp *p, int ok)
{
    if (rt_state(p->rt) != RT_WARMING)
        return; /* the process went away during its warm-up */
    if (!ok)
        log_msg(LOG_WARN, "broker", "runtime %d: warm-up turn failed; serving anyway", p->idx);
    else
        log_msg(LOG_INFO, "broker", "runtime %d warmed up", p->idx);
    rt_set_ready(p->rt);
    turn__wake_waiting(p->b);
}

static void start_warmup(struct rtp *p)
{
    struct broker *b = p->b;
    struct conv *c = conv_new();
    struct conv_msg *m;
    struct gw_err err;
    struct turn *t;
    struct timeval tv = {WARMUP_TIMEOUT_MS / 1000, 0};

    c->model = xstrdup("warmup");
    c->system = xstrdup("warm-up");
    m = conv_add_msg(c, CONV_USER);
    conv_msg_add_text(m, "warm-up", 7);
    t = turn__new(b, c, NULL, NULL, NULL);
    t->warmup = 1;
    t->canceled = 1;
    evtimer_add(t->deadline, &tv);
    if (turn__open_new(t, p, &err)) {
        t->failed = 1;
        pool__warmup_done(p, 0);
        turn__finish(t);
    }
}

static void on_auth(void *ud, const json_t *result, const struct gw_err *err)
{
    struct broker *b = ud;
    int was = b->signed_in;
    const char *login;

    if (err)
        return;
    b->auth_known = 1;
    b->signed_in = json_is_true(json_object_get(result, "isAuthenticated"));
    login = json_string_value(json_object_get(result, "login"));
    snprintf(b->auth_login, sizeof(b->auth_login), "%s", login ? login : "");
    if (b->signed_in && !was) {
        log_msg(LOG_INFO, "broker", "signed in to GitHub%s%s", b->auth_login[0] ? " as " : "",
                b->auth_login);
        b->auth_warned = 0;
    } else if (!b->signed_in && !b->provider_url && !b->auth_warned) {
        log_msg(LOG_WARN, "broker", "%s", errmap_signin_msg); /* once, not every poll */
        b->auth_warned = 1;
    }
}

/* Sign-in lives in the shared home: any connected process can tell. */
static void check_auth(struct broker *b)
{
    uint64_t id;
    for (int i = 0; i < b->npool; i++) {
        struct rt *rt = b->pool[i].rt;
        if (rt_state(rt) < RT_WARMING || rt_state(rt) > RT_READY)
            continue;
        if (rt_call(rt, "auth.getStatus", json_object(), 10000, on_auth, b, &id) == 0)
            return;
    }
}

static void auth_tick(evutil_socket_t fd, short what, void *arg)
{
    struct broker *b = arg;
    if (!b->signed_in && !b->provider_url)
        check_auth(b);
}

static void on_rt_up(struct rt *rt, void *ud)
{
    struct rtp *p = ud;
    log_msg(LOG_INFO, "broker", "runtime %d: %s connected (pid %d)", p->idx, rt_version(rt),
            rt_pid(rt));
    check_auth(p->b);
    start_warmup(p);
}

static void on_rt_down(struct rt *rt, void *ud, const char *why)
{
    struct rtp *p = ud;
    log_msg(LOG_WARN, "broker", "runtime %d down: %s", p->idx, why);
    fail_waiting(p->b);
}


/* ---- the pool's life ------------------------------------------------------------------ */

void pool__init(struct broker *b)
{
    struct timeval tv = {AUTH_POLL_MS / 1000, 0}, rtv = {RECYCLE_CHECK_S, 0};

    b->npool = b->cfg.pool_size > 0 ? b->cfg.pool_size : 1;
    b->pool = xcalloc((size_t)b->npool, sizeof(*b->pool));
    for (int i = 0; i < b->npool; i++) {
        struct rt_config rc = b->cfg.rt;
        b->pool[i].b = b;
        b->pool[i].idx = i;
        rc.on_up = on_rt_up;
        rc.on_down = on_rt_down;
        rc.ud = &b->pool[i];
        rc.ping_interval_ms = b->cfg.ping_interval_ms;
        rc.ping_timeout_ms = b->cfg.ping_timeout_ms;
        rc.cwd = b->workdir;
        b->pool[i].rt = rt_new(b->base, &rc);
    }
    b->auth_timer = event_new(b->base, -1, EV_PERSIST, auth_tick, b);
    event_add(b->auth_timer, &tv);
    b->recycle_timer = event_new(b->base, -1, EV_PERSIST, recycle_tick, b);
    event_add(b->recycle_timer, &rtv);
}

void pool__release(struct broker *b)
{
    for (int i = 0; i < b->npool; i++)
        rt_free(b->pool[i].rt);
    free(b->pool);
    event_free(b->auth_timer);
    event_free(b->recycle_timer);
}

/* ---- readiness and disk space --------------------------------------------------------- */

int broker_ready(const struct broker *b, const char **why)
{
    return broker__ready_for(b, 1, why);
}

int broker_ready_for_users(const struct broker *b, const char **why)
{
    return broker__ready_for(b, 0, why);
}

int broker__ready_for(const struct broker *b, int need_signin, const char **why)
{
    enum rt_state best = RT_STOPPED;
    const char *w = NULL;

    for (int i = 0; i < b->npool; i++) {
        enum rt_state s = rt_state(b->pool[i].rt);
        if (s == RT_READY && !rtp_usable(&b->pool[i]))
            s = b->pool[i].draining ? RT_STOPPING : RT_BACKOFF; /* or its child is going away */
        if (s == RT_READY || (best != RT_READY && s == RT_WARMING))
            best = s;
        else if (best == RT_STOPPED && s != RT_STOPPED)
            best = s;
    }
    if (best != RT_READY)
        w = best == RT_WARMING ? "runtime warming up" : best == RT_STOPPED ? "runtime stopped"
                                                    : best == RT_STOPPING ? "shutting down"
                                                    : best == RT_BACKOFF  ? "runtime restarting"
                                                                          : "runtime starting";
    else if (need_signin && !b->provider_url && !b->signed_in)
        w = "not signed in to GitHub";
    else if (b->sweep)
        w = "reading the session map"; /* sessions.c: the start-up sweep */
    if (why)
        *why = w ? w : "ready";
    return w == NULL;
}

/* Free MB on dir's file system for an unprivileged writer, or -1. */
static int64_t free_mb(const char *dir)
{
    struct statvfs v;

    if (!dir || statvfs(dir, &v) != 0)
        return -1;
    return (int64_t)((uint64_t)v.f_bavail * v.f_frsize / (1024 * 1024));
}

/* Reads the free space again once the last reading is DISK_CHECK_MS old, and judges it
 * against --min-free-mb (0: never low). */
static void disk_check(struct broker *b)
{
    int64_t min = b->cfg.min_free_mb;
    int was_low = b->disk.err.code != GW_OK;
    const char *which = NULL;
    int64_t mb = 0;
    uint64_t now = util_now_ms();

    if (b->disk.at_ms && now - b->disk.at_ms < DISK_CHECK_MS)
        return;
    b->disk.at_ms = now;
    b->disk.data_mb = free_mb(b->cfg.data_dir);
    b->disk.home_mb = free_mb(b->home);
    memset(&b->disk.err, 0, sizeof(b->disk.err));
    if (min <= 0)
        return;
    if (b->disk.data_mb >= 0 && b->disk.data_mb < min) {
        which = "data directory (--data)";
        mb = b->disk.data_mb;
    } else if (b->disk.home_mb >= 0 && b->disk.home_mb < min) {
        which = "runtime home (--home)";
        mb = b->disk.home_mb;
    }
    if (which)
        errmap_storage(&b->disk.err,
                       "the gateway is low on disk space: %lld MB free for its %s, below "
                       "--min-free-mb %lld; retry once space has been freed",
                       (long long)mb, which, (long long)min);
    if (which && !was_low)
        log_msg(LOG_WARN, "broker", "%s", b->disk.err.msg);
    else if (!which && was_low)
        log_msg(LOG_INFO, "broker", "disk space is back above --min-free-mb %lld", (long long)min);
}

int broker_can_write(struct broker *b, struct gw_err *err)
{
    if (b->cfg.min_free_mb <= 0)
        return 1;
    disk_check(b);
    if (b->disk.err.code == GW_OK)
        return 1;
    if (err)
        *err = b->disk.err;
    return 0;
}

void broker_disk_free(struct broker *b, int64_t *data_mb, int64_t *home_mb, int64_t *min_mb)
{
    disk_check(b);
    *data_mb = b->disk.data_mb;
    *home_mb = b->disk.home_mb;
    *min_mb = b->cfg.min_free_mb;
}

int broker_signed_in(const struct broker *b)
{
    return b->signed_in;
}

int broker_byok(const struct broker *b)
{
    return b->provider_url != NULL;
}

struct rt *broker_rt(struct broker *b)
{
    for (int i = 0; i < b->npool; i++)
        if (rt_usable(b->pool[i].rt))
            return b->pool[i].rt;
    return b->pool[0].rt;
}

int broker_pool_size(const struct broker *b)
{
    return b->npool;
}

struct rt *broker_pool_rt(struct broker *b, int i, int *sessions, int *draining)
{
    if (sessions)
        *sessions = b->pool[i].nsess;
    if (draining)
        *draining = b->pool[i].draining;
    return b->pool[i].rt;
}

