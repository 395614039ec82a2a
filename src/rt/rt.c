/* Supervision of one Copilot runtime child and the JSON-RPC client that talks to it. */
#include "rt/rt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/util.h>

#include "rt/frame.h"
#include "rt/orphans.h"
#include "rt/probe.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "util/xmalloc.h"

#define PROTOCOL_VERSION 3
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 60000 /* uptime after which the backoff starts over */
#define POLL_SLOW_MS 1000      /* waitpid() check while all looks well */
#define POLL_FAST_MS 10        /* ... and while the child is known to be going */
#define GRACE_MS 2000          /* exited-but-pipe-open or closed-but-alive, then SIGKILL */
#define SHUTDOWN_TIMEOUT_MS 2000
#define STOP_TERM_MS 1000 /* after stdin is closed */
#define STOP_KILL_MS 3000
#define ERR_LINE_MAX 2048
#define READ_CHUNK 65536
#define MAX_FRAME_LIMIT (1024u * 1024 * 1024)

/*
 * A small chained hash table of intrusive nodes that also keeps its entries
 * on a list in insertion order, so "fail everything" can pop the oldest entry
 * while callbacks remove others.
 */
struct hnode {
    struct hnode *chain;
    struct hnode *prev, *next; /* insertion order */
    uint64_t hash;
};

struct htab {
    struct hnode **b;
    size_t nb, n;
    struct hnode *head, *tail;
};

struct call {
    struct hnode node; /* first member: keyed by id */
    struct rt *rt;
    uint64_t id;
    char *method;
    int timeout_ms;
    rt_reply_cb cb;
    void *ud;
    struct event *timer;
};

struct watch {
    struct hnode node; /* first member: keyed by session id */
    char *sid;
    struct rt_watch_ops ops;
    void *ud;
};

/* A process-wide handler of one runtime request method. */
struct handler {
    struct hnode node; /* first member: keyed by method */
    char *method;
    rt_request_cb cb;
    void *ud;
};

/* A request from the runtime waiting for its handler's answer. */
struct req {
    struct hnode node; /* first member: keyed by handle */
    struct rt *rt;
    uint64_t handle;
    json_t *id;   /* the runtime's own id, echoed in the answer */
    char *method; /* for the log */
    char *sid;    /* the watch it went to, or NULL (a process-wide handler) */
    struct event *timer;
};

struct stop_waiter {
    struct stop_waiter *next;
    void (*done)(void *ud);
    void *ud;
};

struct rt {
    struct event_base *base;
    char *path, *home, *cwd, *log_level;
    const char *const *env_drop; /* borrowed from the config: outlives the rt */
    int no_auto_login;
    size_t max_frame;
    int call_timeout_ms;
    void (*on_up)(struct rt *rt, void *ud);
    void (*on_down)(struct rt *rt, void *ud, const char *why);
    void *ud;
    int ping_interval_ms, ping_timeout_ms;
    int request_timeout_ms;

    enum rt_state state;
    uint64_t generation, next_id;
    char version[64];
    int backoff_ms;

    /* The current child; pid is 0 when there is none. */
    pid_t pid;
    int exited, status_known, wstatus;
    int dying; /* known to be going away: accept no new calls */
    int fatal; /* do not restart once it is gone */
    int stop_phase;
    uint64_t spawned_ms;
    char down_why[512];
    int in_fd, out_fd, err_fd;
    struct event *in_ev, *out_ev, *err_ev;
    struct evbuffer *in_buf;
    struct buf rbuf, ebuf;

    struct event *poll_ev, *grace_ev, *restart_ev, *stop_ev;
    /* Liveness probe: the next ping, or the end of the outstanding one's window. */
    struct event *ping_ev;
    uint64_t ping_id; /* the outstanding ping call, 0 when none */
    uint64_t ping_sent_ms;
    struct probe_sample ping_sample; /* the process, when the current window began */
    struct htab calls, watches;
    struct htab handlers, reqs; /* by method; unanswered runtime requests by handle */
    uint64_t next_req;          /* last request handle given out (never reused) */
    struct stop_waiter *waiters;

    int busy;   /* how many of our event callbacks are on the stack */
    int doomed; /* rt_free() ran while busy: free when the last one returns */
};

static const char *state_names[] = {"stopped", "starting", "warming",
                                    "ready",   "backoff",  "stopping"};

static void check_exit(struct rt *rt);
static struct watch *find_watch(const struct rt *rt, const char *sid);

/* --- hash table ---------------------------------------------------------- */

static void htab_grow(struct htab *t)
{
    size_t nb = t->nb ? t->nb * 2 : 16;
    struct hnode **b = xcalloc(nb, sizeof(*b));

    for (struct hnode *e = t->head; e; e = e->next) {
        e->chain = b[e->hash & (nb - 1)];
        b[e->hash & (nb - 1)] = e;
    }
    free(t->b);
    t->b = b;
    t->nb = nb;
}

static void htab_add(struct htab *t, struct hnode *e, uint64_t hash)
{
    if (t->n >= t->nb)
        htab_grow(t);
    e->hash = hash;
    e->chain = t->b[hash & (t->nb - 1)];
    t->b[hash & (t->nb - 1)] = e;
    e->next = NULL;
    e->prev = t->tail;
    if (t->tail)
        t->tail->next = e;
    else
        t->head = e;
    t->tail = e;
    t->n++;
}

static struct hnode *htab_chain(const struct htab *t, uint64_t hash)
{
    return t->nb ? t->b[hash & (t->nb - 1)] : NULL;
}

static void htab_del(struct htab *t, struct hnode *e)
{
    struct hnode **pp = &t->b[e->hash & (t->nb - 1)];

    while (*pp != e)
        pp = &(*pp)->chain;
    *pp = e->chain;
    if (e->prev)
        e->prev->next = e->next;
    else
        t->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        t->tail = e->prev;
    t->n--;
}

/* Removes and returns the oldest entry, or NULL. */
static struct hnode *htab_pop(struct htab *t)
{
    struct hnode *e = t->head;
    if (e)
        htab_del(t, e);
    return e;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The entry keyed by id (calls, requests), or NULL. */
static struct hnode *htab_find_id(const struct htab *t, uint64_t id)
{
    for (struct hnode *e = htab_chain(t, id); e; e = e->chain)
        if (e->hash == id)
            return e;
    return NULL;
}

/* The entry whose string key, the char * at key_off in it, is key; or NULL. */
static struct hnode *htab_find_str(const struct htab *t, const char *key, size_t key_off)
{
    uint64_t h = hash_str(key);

    for (struct hnode *e = htab_chain(t, h); e; e = e->chain)
        if (e->hash == h && strcmp(*(char *const *)((const char *)e + key_off), key) == 0)
            return e;
    return NULL;
}

/* --- small helpers --------------------------------------------------------- */

static void add_ms(struct event *ev, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

static void set_state(struct rt *rt, enum rt_state s)
{
    if (rt->state == s)
        return;
    log_msg(LOG_INFO, "rt", "state %s -> %s", state_names[rt->state], state_names[s]);
    rt->state = s;
}

static int connected(const struct rt *rt)
{
    return (rt->state == RT_WARMING || rt->state == RT_READY) && !rt->dying && rt->in_fd >= 0;
}

/* Our callbacks bracket their work with enter/leave so rt_free can be deferred. */
static void enter(struct rt *rt)
{
    rt->busy++;
}

static void destroy(struct rt *rt);

static void leave(struct rt *rt)
{
    if (--rt->busy == 0 && rt->doomed)
        destroy(rt);
}

static void kill_group(struct rt *rt, int sig)
{
    /* The child leads its own group, so this also reaches its helpers. */
    if (rt->pid > 0 && killpg(rt->pid, sig) < 0 && errno != ESRCH)
        log_msg(LOG_WARN, "rt", "cannot signal runtime group %d: %s", (int)rt->pid,
                strerror(errno));
}

/* --- spawning ------------------------------------------------------------- */

/* Our environment with COPILOT_HOME replaced; only the last entry is ours to free. */
/* GitHub token variables, in the runtime's order of precedence (protocol reference §3). */
static const char *const token_vars[] = {"COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", NULL};

static int env_is(const char *entry, const char *name)
{
    size_t n = strlen(name);
    return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/*
 * The runtime's environment: the gateway's, less what its tools (an agent's bash, say)
 * must not read, which the runtime passes on to them.  Dropped: the gateway's own
 * settings (COPILOT_GATEWAY_*: keys), env_drop (secrets for MCP servers), and the
 * GitHub token variables; the winning token is passed back as COPILOT_GITHUB_TOKEN alone,
 * which the runtime signs in with and keeps from its tools (GH_TOKEN it hands to them).
 * COPILOT_HOME is set to home.  The strings this adds are the entries after *nfixed.
 */
static char **build_env(const char *home, const char *const *env_drop, size_t *nfixed)
{
    extern char **environ;
    const char *token = NULL;
    size_t n = 0, k = 0;
    char **env;
    struct buf b;

    while (environ[n])
        n++;
    for (int t = 0; token_vars[t] && !token; t++) {
        token = getenv(token_vars[t]);
        if (token && !*token)
            token = NULL;
    }
    env = xcalloc(n + 3, sizeof(*env));
    for (size_t i = 0; i < n; i++) {
        int drop = strncmp(environ[i], "COPILOT_GATEWAY_", 16) == 0 ||
                   env_is(environ[i], "COPILOT_HOME");
        for (int t = 0; token_vars[t] && !drop; t++)
            drop = env_is(environ[i], token_vars[t]);
        for (size_t d = 0; env_drop && env_drop[d] && !drop; d++)
            drop = env_is(environ[i], env_drop[d]);
        if (!drop)
            env[k++] = environ[i];
    }
    *nfixed = k;
    buf_init(&b, PATH_MAX + 32);
    if (buf_addf(&b, "COPILOT_HOME=%s", home) == 0)
        env[k++] = buf_take(&b, NULL);
    if (token) {
        buf_init(&b, strlen(token) + 32);
        if (buf_addf(&b, "COPILOT_GITHUB_TOKEN=%s", token) == 0)
            env[k++] = buf_take(&b, NULL);
    }
    env[k] = NULL;
    return env;
}

static void free_env(char **env, size_t nfixed)
{
    for (size_t i = nfixed; env[i]; i++) {
        if (env_is(env[i], "COPILOT_GITHUB_TOKEN"))
            explicit_bzero(env[i], strlen(env[i]));
        free(env[i]);
    }
    free(env);
}

static void build_argv(const struct rt *rt, const char *argv[9])
{
    int k = 0;
    argv[k++] = rt->path;
    argv[k++] = "--headless";
    argv[k++] = "--no-auto-update";
    argv[k++] = "--stdio";
    if (rt->no_auto_login)
        argv[k++] = "--no-auto-login";
    if (rt->log_level) {
        argv[k++] = "--log-level";
        argv[k++] = rt->log_level;
    }
    argv[k] = NULL;
}

/* Keeps fd clear of 0..2 so the dup2() calls below cannot clobber each other. */
static int move_high(int fd)
{
    return fd > 2 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, 3);
}

/* In the forked child: only async-signal-safe calls from here to exec. */
__attribute__((noreturn)) static void child_exec(const struct rt *rt, const int fds[3],
                                                 int report_fd, const char *const *argv,
                                                 char **envp)
{
    struct sigaction sa;
    sigset_t none;
    int in = move_high(fds[0]), out = move_high(fds[1]), errfd = move_high(fds[2]), e;

    report_fd = move_high(report_fd);

    /* Ignored signals survive exec; the runtime should start from defaults. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (in < 0 || out < 0 || errfd < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 ||
        dup2(errfd, 2) < 0 || (rt->cwd && chdir(rt->cwd) < 0))
        goto fail;
    execve(rt->path, (char *const *)argv, envp);
fail:
    e = errno;
    if (write(report_fd, &e, sizeof(e)) < 0) {
        /* Nothing left to tell anyone. */
    }
    _exit(127);
}

/* Blocks until exec succeeded (EOF on the CLOEXEC pipe) or failed (errno). */
static int read_exec_report(int fd)
{
    int e = 0;
    ssize_t r;

    do
        r = read(fd, &e, sizeof(e));
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof(e) ? e : 0;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

static void on_in_ready(evutil_socket_t fd, short what, void *arg);
static void on_out_ready(evutil_socket_t fd, short what, void *arg);
static void on_err_ready(evutil_socket_t fd, short what, void *arg);
static void arm_poll(struct rt *rt);

/* Hooks our ends of the pipes into the event loop. */
static void attach(struct rt *rt, pid_t pid, int in_fd, int out_fd, int err_fd)
{
    evutil_make_socket_nonblocking(in_fd);
    evutil_make_socket_nonblocking(out_fd);
    evutil_make_socket_nonblocking(err_fd);
    rt->pid = pid;
    rt->exited = rt->status_known = rt->wstatus = 0;
    rt->dying = rt->fatal = rt->stop_phase = 0;
    rt->down_why[0] = '\0';
    rt->spawned_ms = util_now_ms();
    rt->in_fd = in_fd;
    rt->out_fd = out_fd;
    rt->err_fd = err_fd;
    rt->in_buf = evbuffer_new();
    rt->in_ev = event_new(rt->base, in_fd, EV_WRITE | EV_PERSIST, on_in_ready, rt);
    rt->out_ev = event_new(rt->base, out_fd, EV_READ | EV_PERSIST, on_out_ready, rt);
    rt->err_ev = event_new(rt->base, err_fd, EV_READ | EV_PERSIST, on_err_ready, rt);
    event_add(rt->out_ev, NULL);
    event_add(rt->err_ev, NULL);
    buf_init(&rt->rbuf, rt->max_frame + FRAME_MAX_HEADER);
    buf_init(&rt->ebuf, ERR_LINE_MAX);
    arm_poll(rt);
}

static int spawn(struct rt *rt, struct gw_err *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    const char *argv[9], *what = "cannot create pipes";
    char **envp;
    size_t nfixed;
    pid_t pid;
    int e;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        pipe2(rep, O_CLOEXEC) < 0) {
        e = errno;
        goto fail;
    }
    build_argv(rt, argv);
    envp = build_env(rt->home, rt->env_drop, &nfixed);
    pid = fork();
    if (pid == 0)
        child_exec(rt, (int[3]){in[0], out[1], errp[1]}, rep[1], argv, envp);
    e = errno;
    free_env(envp, nfixed);
    close_fds((int[4]){in[0], out[1], errp[1], rep[1]}, 4);
    in[0] = out[1] = errp[1] = rep[1] = -1;
    what = "cannot fork";
    if (pid < 0)
        goto fail;
    setpgid(pid, pid); /* also here, so killpg() works even before the child ran */
    orphans_own(pid);
    e = read_exec_report(rep[0]);
    if (e) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        orphans_disown(pid);
        what = "cannot run it";
        goto fail;
    }
    close(rep[0]);
    attach(rt, pid, in[1], out[0], errp[0]);
    return GW_OK;
fail:
    close_fds((int[8]){in[0], in[1], out[0], out[1], errp[0], errp[1], rep[0], rep[1]}, 8);
    return gw_err_set(err, GW_ERUNTIME, "cannot start copilot runtime '%s': %s: %s", rt->path, what,
                      strerror(e));
}

/* --- child exit --------------------------------------------------------------- */

/*
 * Like tmux job.c, a child is finished only once it has exited (reaped by
 * waitpid on its own pid, so other children of the program are left alone)
 * AND its stdout is closed.  Exit is detected by polling, fast once stdout hit
 * EOF or we killed it, so no SIGCHLD handler is needed.
 */
static void arm_poll(struct rt *rt)
{
    if (rt->pid && !rt->exited)
        add_ms(rt->poll_ev, rt->dying || rt->out_fd < 0 ? POLL_FAST_MS : POLL_SLOW_MS);
}

/*
 * Reaps the child if it has exited.  It is first looked at without reaping
 * (WNOWAIT): while the zombie exists its process group id cannot be reused, so
 * helpers it left in the group (MCP servers) can be killed without a race.
 */
static void try_reap(struct rt *rt)
{
    siginfo_t si;
    pid_t r;
    int st = 0, w;

    if (!rt->pid || rt->exited)
        return;
    memset(&si, 0, sizeof(si));
    w = waitid(P_PID, (id_t)rt->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if ((w == 0 && si.si_pid == 0) || (w < 0 && errno == EINTR))
        return; /* still running */
    if (w == 0)
        killpg(rt->pid, SIGKILL);
    do
        r = waitpid(rt->pid, &st, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) /* ECHILD: reaped elsewhere (SIGCHLD ignored?); the status is lost */
        log_msg(LOG_WARN, "rt", "cannot wait for runtime %d: %s", (int)rt->pid, strerror(errno));
    rt->exited = 1;
    orphans_disown(rt->pid);
    rt->status_known = r > 0;
    rt->wstatus = st;
}

static void close_in(struct rt *rt)
{
    if (rt->in_ev) {
        event_free(rt->in_ev);
        rt->in_ev = NULL;
    }
    if (rt->in_buf) {
        evbuffer_free(rt->in_buf);
        rt->in_buf = NULL;
    }
    if (rt->in_fd >= 0) {
        close(rt->in_fd);
        rt->in_fd = -1;
    }
}

static void close_out(struct rt *rt)
{
    if (rt->out_ev) {
        event_free(rt->out_ev);
        rt->out_ev = NULL;
    }
    if (rt->out_fd >= 0) {
        close(rt->out_fd);
        rt->out_fd = -1;
    }
    buf_release(&rt->rbuf);
}

static void flush_err_line(struct rt *rt)
{
    char *p = rt->ebuf.ptr;
    size_t n = rt->ebuf.len;

    if (n && p[n - 1] == '\r')
        n--;
    for (size_t i = 0; i < n; i++) /* keep one line per message, whatever it printed */
        if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
            p[i] = '?';
    if (n)
        log_msg(LOG_INFO, "rt", "runtime: %.*s", (int)n, p);
    buf_reset(&rt->ebuf);
}

/* Splits stderr output into lines; over-long lines are logged in pieces. */
static void err_bytes(struct rt *rt, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        size_t room = ERR_LINE_MAX - rt->ebuf.len;
        size_t take = k < room ? k : room;

        if (buf_add(&rt->ebuf, p, take))
            return; /* cannot happen: take fits in the cap */
        p += take;
        n -= take;
        if (nl && take == k) {
            flush_err_line(rt);
            p++;
            n--;
        } else if (rt->ebuf.len >= ERR_LINE_MAX) {
            flush_err_line(rt);
        }
    }
}

/* Reads what stderr has: 1 after some bytes, 0 when there are none yet, -1 once closed. */
static int read_err(struct rt *rt)
{
    char chunk[4096];
    ssize_t r = read(rt->err_fd, chunk, sizeof(chunk));

    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (r <= 0) {
        flush_err_line(rt);
        event_free(rt->err_ev);
        rt->err_ev = NULL;
        close(rt->err_fd);
        rt->err_fd = -1;
        return -1;
    }
    err_bytes(rt, chunk, (size_t)r);
    return 1;
}

static void on_err_ready(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;
    enter(rt);
    read_err(rt);
    leave(rt);
}

/* Forgets the child: closes every pipe (logging what stderr still had). */
static void release_child(struct rt *rt)
{
    close_in(rt);
    close_out(rt);
    /* Bounded: a helper still holding stderr open must not keep us here. */
    for (int i = 0; i < 64 && rt->err_fd >= 0; i++)
        if (read_err(rt) == 0)
            break;
    if (rt->err_fd >= 0) {
        flush_err_line(rt);
        event_free(rt->err_ev);
        rt->err_ev = NULL;
        close(rt->err_fd);
        rt->err_fd = -1;
    }
    buf_release(&rt->ebuf);
    evtimer_del(rt->poll_ev);
    evtimer_del(rt->grace_ev);
    evtimer_del(rt->stop_ev);
    evtimer_del(rt->ping_ev);
    rt->ping_id = 0;
    rt->pid = 0;
    rt->exited = rt->dying = 0;
}

/* Stops accepting calls and bounds how long the child may take to go away. */
static void going(struct rt *rt)
{
    rt->dying = 1;
    if (!evtimer_pending(rt->grace_ev, NULL))
        add_ms(rt->grace_ev, GRACE_MS);
    arm_poll(rt);
}

/*
 * The child broke the protocol or failed its handshake: record why (first
 * reason wins), kill its group and stop reading, since a broken stream cannot
 * be resynced.  The normal exit path follows once it is reaped.
 */
static void PRINTF(3, 4) fail_child(struct rt *rt, int fatal, const char *fmt, ...)
{
    va_list ap;

    if (!rt->down_why[0]) {
        va_start(ap, fmt);
        vsnprintf(rt->down_why, sizeof(rt->down_why), fmt, ap);
        va_end(ap);
        log_msg(LOG_ERROR, "rt", "%s", rt->down_why);
    }
    if (fatal)
        rt->fatal = 1;
    kill_group(rt, SIGKILL);
    close_out(rt);
    going(rt);
}

/* --- writing and calls -------------------------------------------------------- */

static void on_in_ready(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;

    enter(rt);
    if (evbuffer_write(rt->in_buf, rt->in_fd) < 0 && errno != EAGAIN && errno != EINTR) {
        log_msg(LOG_WARN, "rt", "cannot write to runtime %d: %s", (int)rt->pid, strerror(errno));
        close_in(rt);
        going(rt);
    } else if (evbuffer_get_length(rt->in_buf) == 0) {
        event_del(rt->in_ev);
    }
    leave(rt);
}

/* Queues one message for the child's stdin; the loop writes it (never blocks). */
static int send_msg(struct rt *rt, const json_t *msg)
{
    struct buf out;
    char *s;
    int rc;

    if (rt->in_fd < 0)
        return GW_ERUNTIME;
    s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return GW_EINVAL;
    buf_init(&out, rt->max_frame + 64);
    rc = frame_write(&out, s, strlen(s));
    free(s);
    if (rc)
        return rc;
    if (evbuffer_add(rt->in_buf, out.ptr, out.len) < 0)
        rc = GW_ENOMEM;
    else
        event_add(rt->in_ev, NULL);
    buf_release(&out);
    return rc;
}

static void free_call(struct call *c)
{
    event_free(c->timer);
    free(c->method);
    free(c);
}

/* Runs the callback (unless rt_free is pending) and frees the call. */
static void complete(struct call *c, const json_t *result, const struct gw_err *err)
{
    if (c->cb && !c->rt->doomed)
        c->cb(c->ud, result, err);
    free_call(c);
}

static struct call *find_call(const struct rt *rt, uint64_t id)
{
    return (struct call *)htab_find_id(&rt->calls, id);
}

static void on_call_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;
    struct rt *rt = c->rt;
    struct gw_err e;

    enter(rt);
    htab_del(&rt->calls, &c->node);
    /* The message may reach a client: the method name stays in the log. */
    gw_err_set(&e, GW_ETIMEDOUT, "the Copilot runtime did not answer in time");
    log_msg(LOG_WARN, "rt", "runtime %d: call '%s' (id %llu) timed out after %d ms", (int)rt->pid,
            c->method, (unsigned long long)c->id, c->timeout_ms);
    complete(c, NULL, &e);
    leave(rt);
}

/* Sends a request without looking at the state (connect and shutdown need that). */
static int start_call(struct rt *rt, const char *method, json_t *params, int timeout_ms,
                      rt_reply_cb cb, void *ud, uint64_t *idp)
{
    uint64_t id = ++rt->next_id;
    json_t *msg = json_object();
    struct call *c;
    int rc;

    json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    json_object_set_new(msg, "id", json_integer((json_int_t)id));
    if (json_object_set_new(msg, "method", json_string(method)) < 0) {
        json_decref(params);
        rc = GW_EINVAL; /* not UTF-8 */
    } else {
        if (params)
            json_object_set_new(msg, "params", params); /* steals params */
        rc = send_msg(rt, msg);
    }
    json_decref(msg);
    if (rc) {
        log_msg(LOG_WARN, "rt", "cannot send '%s' to the runtime (%d)", method, rc);
        return rc;
    }
    c = xcalloc(1, sizeof(*c));
    c->rt = rt;
    c->id = id;
    c->method = xstrdup(method);
    c->timeout_ms = timeout_ms;
    c->cb = cb;
    c->ud = ud;
    c->timer = evtimer_new(rt->base, on_call_timeout, c);
    add_ms(c->timer, timeout_ms);
    htab_add(&rt->calls, &c->node, id);
    if (idp)
        *idp = id;
    return GW_OK;
}

/*
 * Fails the calls up to id `last` one at a time, oldest first, so a callback
 * may still rt_cancel() the others, and a child it starts keeps its calls.
 */
static void fail_calls(struct rt *rt, uint64_t last, const struct gw_err *err)
{
    while (rt->calls.head && ((struct call *)rt->calls.head)->id <= last)
        complete((struct call *)htab_pop(&rt->calls), NULL, err);
}

/* --- reading messages ---------------------------------------------------------- */

/*
 * The runtime words its errors "Request session.send failed with message:
 * Session not found ...": what failed is ours to say, not a method name.
 */
static const char *rpc_error_text(const char *text)
{
    static const char marker[] = "failed with message: ";
    const char *p = strstr(text, marker);

    if (strncmp(text, "Request ", 8) == 0 && p)
        return p + sizeof(marker) - 1;
    return text;
}

static void handle_reply(struct rt *rt, json_t *msg, json_int_t id)
{
    struct call *c = id > 0 ? find_call(rt, (uint64_t)id) : NULL;
    json_t *error = json_object_get(msg, "error");
    json_t *result = json_object_get(msg, "result");
    const char *text = "(no message)";
    json_int_t code = 0;
    struct gw_err e;

    if (!c) {
        log_msg(LOG_DEBUG, "rt", "dropping reply to unknown call %lld", (long long)id);
        return;
    }
    htab_del(&rt->calls, &c->node);
    if (error && !json_is_null(error)) {
        json_unpack(error, "{s?I, s?s}", "code", &code, "message", &text);
        log_msg(LOG_DEBUG, "rt", "call '%s' failed: %lld %s", c->method, (long long)code, text);
        gw_err_set(&e, GW_EUPSTREAM, "the Copilot runtime refused the request: %s",
                   rpc_error_text(text));
        complete(c, NULL, &e);
        return;
    }
    complete(c, result ? result : json_null(), NULL);
}

/* A request nobody handles gets "method not found", as the runtime's own do. */
static void answer_unhandled(struct rt *rt, json_t *id, const char *method)
{
    json_t *msg = json_pack("{s:s, s:O, s:{s:i, s:s+}}", "jsonrpc", "2.0", "id", id, "error",
                            "code", -32601, "message", "Unhandled method ", method);

    log_msg(LOG_INFO, "rt", "runtime asked for unhandled method '%.100s'", method);
    if (!msg || send_msg(rt, msg) != GW_OK)
        log_msg(LOG_WARN, "rt", "cannot answer the runtime's '%.100s' request", method);
    json_decref(msg);
}

/* --- requests from the runtime ------------------------------------------------ */

static struct handler *find_handler(const struct rt *rt, const char *method)
{
    return (struct handler *)htab_find_str(&rt->handlers, method,
                                           offsetof(struct handler, method));
}

static struct req *find_req(const struct rt *rt, uint64_t handle)
{
    return (struct req *)htab_find_id(&rt->reqs, handle);
}

static void free_req(struct req *r)
{
    event_free(r->timer);
    json_decref(r->id);
    free(r->method);
    free(r->sid);
    free(r);
}

/* Sends the JSON-RPC error {code, message} in answer to the runtime's id. */
static int send_error(struct rt *rt, json_t *id, int code, const char *message)
{
    json_t *msg = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error",
                            "code", code, "message", message);
    int rc;

    if (!msg) /* message not UTF-8 */
        msg = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id, "error", "code",
                        code, "message", "error");
    rc = msg ? send_msg(rt, msg) : GW_EINVAL;
    json_decref(msg);
    return rc;
}

static void on_req_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct req *r = arg;
    struct rt *rt = r->rt;

    enter(rt);
    htab_del(&rt->reqs, &r->node);
    log_msg(LOG_WARN, "rt",
            "runtime %d: request '%.100s' (req %llu) not answered in %d ms; answering with an "
            "error",
            (int)rt->pid, r->method, (unsigned long long)r->handle, rt->request_timeout_ms);
    if (send_error(rt, r->id, -32603, "copilot-gateway did not answer in time") != GW_OK)
        log_msg(LOG_INFO, "rt", "cannot answer the runtime's '%.100s' request", r->method);
    free_req(r);
    leave(rt);
}

/*
 * Kills the handles of the requests that went to the watch of sid (NULL: all
 * of them); with a `why`, the runtime gets it as an error for each.
 */
static void drop_reqs(struct rt *rt, const char *sid, const char *why)
{
    struct hnode *e, *next;
    size_t n = 0;

    for (e = rt->reqs.head; e; e = next) {
        struct req *r = (struct req *)e;

        next = e->next;
        if (sid && (!r->sid || strcmp(r->sid, sid) != 0))
            continue;
        htab_del(&rt->reqs, e);
        if (why)
            send_error(rt, r->id, -32603, why);
        free_req(r);
        n++;
    }
    if (n)
        log_msg(LOG_INFO, "rt", "%zu unanswered runtime request(s) dropped: %s", n,
                why ? why : "the runtime is gone");
}

/* Hands a request to its handler: the session's watch, the method's, or none. */
static void dispatch_request(struct rt *rt, json_t *id, const char *method, const json_t *params)
{
    json_t *jsid = json_is_object(params) ? json_object_get(params, "sessionId") : NULL;
    const char *sid = json_is_string(jsid) ? json_string_value(jsid) : NULL;
    struct watch *w = sid ? find_watch(rt, sid) : NULL;
    struct handler *h = find_handler(rt, method);
    rt_request_cb cb;
    void *ud;
    struct req *r;

    if (w && w->ops.request) {
        cb = w->ops.request;
        ud = w->ud;
    } else if (h) {
        cb = h->cb;
        ud = h->ud;
        w = NULL;
    } else {
        answer_unhandled(rt, id, method);
        return;
    }
    r = xcalloc(1, sizeof(*r));
    r->rt = rt;
    r->handle = ++rt->next_req;
    r->id = json_incref(id);
    r->method = xstrdup(method);
    r->sid = w ? xstrdup(sid) : NULL;
    r->timer = evtimer_new(rt->base, on_req_timeout, r);
    add_ms(r->timer, rt->request_timeout_ms);
    htab_add(&rt->reqs, &r->node, r->handle);
    log_msg(LOG_DEBUG, "rt", "runtime request '%.100s' (req %llu) to the %s handler", method,
            (unsigned long long)r->handle, w ? "session's" : "method's");
    /* The handler may answer, unwatch or free rt: r is not touched after it. */
    cb(ud, r->handle, method, params);
}

/* Sends the answer to req: an error when message is set, else result (stolen). */
static int answer(struct rt *rt, uint64_t handle, json_t *result, int code, const char *message)
{
    struct req *r = find_req(rt, handle);
    json_t *msg;
    int rc;

    if (!r) {
        json_decref(result);
        log_msg(LOG_DEBUG, "rt", "dropping the answer to runtime request %llu: no longer pending",
                (unsigned long long)handle);
        return GW_ENOTFOUND;
    }
    htab_del(&rt->reqs, &r->node);
    if (message) {
        rc = send_error(rt, r->id, code, message);
    } else {
        msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", r->id, "result",
                        result ? result : json_null());
        rc = msg ? send_msg(rt, msg) : GW_EINVAL;
        json_decref(msg);
        if (rc != GW_OK && rc != GW_ERUNTIME) {
            log_msg(LOG_WARN, "rt", "cannot encode the answer to runtime request '%.100s' (%d)",
                    r->method, rc);
            send_error(rt, r->id, -32603, "copilot-gateway could not encode its answer");
            rc = GW_EINVAL;
        }
    }
    free_req(r);
    return rc;
}

static void route_event(struct rt *rt, json_t *params)
{
    const char *sid, *type = "";
    json_t *event;
    struct watch *w = NULL;

    if (json_unpack(params, "{s:s, s:o}", "sessionId", &sid, "event", &event) != 0) {
        log_msg(LOG_WARN, "rt", "dropping malformed session.event");
        return;
    }
    json_unpack(event, "{s?s}", "type", &type);
    w = find_watch(rt, sid);
    if (!w) {
        log_msg(LOG_DEBUG, "rt", "dropping %s event for unwatched session %.64s", type, sid);
        return;
    }
    if (w->ops.event)
        w->ops.event(w->ud, type, event);
}

static void handle_message(struct rt *rt, const char *body, size_t len)
{
    json_error_t jerr;
    /* The peer is our own child; a duplicate key would cost a call its reply. */
    json_t *msg, *method, *id;

    if (frame_skippable(body, len))
        return; /* a diagnostic event the size of the conversation: never parsed */
    msg = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(msg)) {
        log_msg(LOG_WARN, "rt", "dropping unparsable message from the runtime: %s", jerr.text);
        json_decref(msg);
        return;
    }
    method = json_object_get(msg, "method");
    id = json_object_get(msg, "id");
    if (json_is_string(method) && id && !json_is_null(id))
        dispatch_request(rt, id, json_string_value(method), json_object_get(msg, "params"));
    else if (json_is_string(method) && strcmp(json_string_value(method), "session.event") == 0)
        route_event(rt, json_object_get(msg, "params"));
    else if (json_is_string(method))
        log_msg(LOG_DEBUG, "rt", "ignoring %.64s notification", json_string_value(method));
    else if (json_is_integer(id))
        handle_reply(rt, msg, json_integer_value(id));
    else
        log_msg(LOG_WARN, "rt", "dropping a runtime message without a usable id: %.*s",
                (int)(len < 200 ? len : 200), body);
    json_decref(msg);
}

/*
 * Handles every whole frame in rbuf.  Callbacks run from here, so re-check
 * after each one whether we were freed or the stream was shut.
 */
static void parse_frames(struct rt *rt)
{
    size_t off = 0, body_off, body_len;

    while (rt->out_fd >= 0 && !rt->doomed) {
        enum frame_status st = frame_parse(rt->rbuf.ptr + off, rt->rbuf.len - off, rt->max_frame,
                                           &body_off, &body_len);
        if (st == FRAME_NEED_MORE)
            break;
        if (st != FRAME_OK) {
            fail_child(rt, 0, "copilot runtime %d sent %s; killing it", (int)rt->pid,
                       st == FRAME_TOO_BIG ? "a frame over the size limit"
                                           : "a malformed frame header");
            return;
        }
        off += body_off + body_len;
        handle_message(rt, rt->rbuf.ptr + off - body_len, body_len);
    }
    if (rt->out_fd >= 0 && !rt->doomed)
        buf_consume(&rt->rbuf, off);
}

/* Reads and handles what stdout has: 1 if it read bytes, 0 if none, -1 once closed. */
static int read_out(struct rt *rt)
{
    char chunk[READ_CHUNK];
    size_t room = rt->rbuf.max - rt->rbuf.len;
    ssize_t r;

    if (room == 0) { /* cannot happen: a partial frame always fits (see frame.h) */
        fail_child(rt, 0, "copilot runtime %d overflowed the read buffer", (int)rt->pid);
        return -1;
    }
    r = read(rt->out_fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk));
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (r <= 0) {
        if (r < 0)
            log_msg(LOG_WARN, "rt", "cannot read from runtime: %s", strerror(errno));
        close_out(rt);
        try_reap(rt);
        check_exit(rt);
        return -1;
    }
    if (buf_add(&rt->rbuf, chunk, (size_t)r) != GW_OK) {
        fail_child(rt, 0, "copilot runtime %d overflowed the read buffer", (int)rt->pid);
        return -1;
    }
    parse_frames(rt);
    return 1;
}

static void on_out_ready(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;
    enter(rt);
    read_out(rt);
    leave(rt);
}

/* --- liveness probe ----------------------------------------------------------- */

/* What the kernel says of the child now; zeroed when it cannot be read. */
static void sample_child(const struct rt *rt, struct probe_sample *out)
{
    char path[64], line[1024];
    FILE *f;

    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)rt->pid);
    f = fopen(path, "r");
    if (!f)
        return;
    if (fgets(line, sizeof(line), f))
        probe_parse_stat(line, sysconf(_SC_CLK_TCK), out);
    fclose(f);
}

static void ping_arm(struct rt *rt, int ms)
{
    if (rt->ping_interval_ms > 0)
        add_ms(rt->ping_ev, ms);
}

/* Any reply counts, an error included: the process read and answered. */
static void on_pong(void *ud, const json_t *result, const struct gw_err *err)
{
    struct rt *rt = ud;

    rt->ping_id = 0;
    if (err && err->code != GW_EUPSTREAM)
        return; /* gone (re-armed once ready again), or past the judged cap */
    evtimer_del(rt->ping_ev);
    if (rt->state == RT_READY && connected(rt))
        ping_arm(rt, rt->ping_interval_ms);
}

static void send_ping(struct rt *rt)
{
    /* The call's own timeout only cleans up: the windows below decide. */
    int64_t cap = (int64_t)rt->ping_timeout_ms * (PROBE_BUSY_WINDOWS + 2);

    if (start_call(rt, "ping", json_object(), cap > INT_MAX ? INT_MAX : (int)cap, on_pong, rt,
                   &rt->ping_id))
        return; /* the write path finds out what is wrong */
    rt->ping_sent_ms = util_now_ms();
    sample_child(rt, &rt->ping_sample);
    ping_arm(rt, rt->ping_timeout_ms);
}

/* A window of ping_timeout_ms passed with the ping unanswered. */
static void ping_overdue(struct rt *rt)
{
    uint64_t waited = util_now_ms() - rt->ping_sent_ms;
    struct probe_sample now;
    enum probe_verdict v;

    /* Our own loop may have been slow: first read what the runtime already said. */
    for (int i = 0; i < 64 && rt->ping_id && rt->out_fd >= 0 && !rt->doomed; i++)
        if (read_out(rt) <= 0)
            break;
    if (!rt->ping_id || !rt->pid || rt->dying || rt->doomed)
        return;
    sample_child(rt, &now);
    v = probe_judge(&rt->ping_sample, &now, (uint64_t)rt->ping_timeout_ms, waited);
    if (v == PROBE_WAIT) {
        log_msg(LOG_INFO, "rt", "runtime %d has not answered a ping for %llu ms, but it is busy",
                (int)rt->pid, (unsigned long long)waited);
        rt->ping_sample = now;
        ping_arm(rt, rt->ping_timeout_ms);
        return;
    }
    fail_child(rt, 0, "copilot runtime %d did not answer a ping for %llu ms (%s); killing it",
               (int)rt->pid, (unsigned long long)waited, probe_verdict_text(v));
}

static void on_ping_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;

    enter(rt);
    if (rt->state == RT_READY && connected(rt)) {
        if (rt->ping_id)
            ping_overdue(rt);
        else
            send_ping(rt);
    }
    leave(rt);
}

/* --- lifecycle ---------------------------------------------------------------- */

static void free_watch(struct watch *w)
{
    free(w->sid);
    free(w);
}

static void free_handler(struct handler *h)
{
    free(h->method);
    free(h);
}

/* Detaches every watch first, so lost() may call rt_watch/rt_unwatch freely. */
static void lose_watches(struct rt *rt, const struct gw_err *err)
{
    struct hnode *list = NULL, *e;

    while ((e = htab_pop(&rt->watches)) != NULL) {
        e->next = list;
        list = e;
    }
    while (list) {
        struct watch *w = (struct watch *)list;
        list = list->next;
        if (w->ops.lost && !rt->doomed)
            w->ops.lost(w->ud, err);
        free_watch(w);
    }
}

static void run_waiters(struct rt *rt)
{
    struct stop_waiter *w = rt->waiters;

    rt->waiters = NULL;
    while (w) {
        struct stop_waiter *next = w->next;
        if (w->done && !rt->doomed)
            w->done(w->ud);
        free(w);
        w = next;
    }
}

static void exit_text(const struct rt *rt, char *out, size_t n)
{
    if (!rt->status_known)
        snprintf(out, n, "copilot runtime exited");
    else if (WIFSIGNALED(rt->wstatus))
        snprintf(out, n, "copilot runtime killed by signal %d", WTERMSIG(rt->wstatus));
    else
        snprintf(out, n, "copilot runtime exited (status %d)", WEXITSTATUS(rt->wstatus));
}

static void schedule_restart(struct rt *rt, uint64_t uptime_ms)
{
    int delay;

    if (uptime_ms > BACKOFF_RESET_MS)
        rt->backoff_ms = BACKOFF_MIN_MS;
    delay = rt->backoff_ms;
    rt->backoff_ms = rt->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rt->backoff_ms * 2;
    log_msg(LOG_INFO, "rt", "restarting the runtime in %d ms", delay);
    add_ms(rt->restart_ev, delay);
}

/*
 * The child has exited and its stdout is closed.  State first, so callbacks
 * see a runtime that is down; then calls, watches, on_down, stop waiters.
 */
static void finish(struct rt *rt)
{
    int stopping = rt->state == RT_STOPPING, fatal = rt->fatal;
    uint64_t uptime = util_now_ms() - rt->spawned_ms, last_id = rt->next_id;
    char why[sizeof(rt->down_why)], text[128];
    struct gw_err e;

    exit_text(rt, text, sizeof(text));
    gw_err_set(&e, GW_ERUNTIME, "%s", text);
    snprintf(why, sizeof(why), "%s", rt->down_why[0] ? rt->down_why : text);
    log_msg(stopping ? LOG_INFO : LOG_WARN, "rt", "runtime %d gone after %llu ms: %s", (int)rt->pid,
            (unsigned long long)uptime, text);
    release_child(rt);
    if (stopping || fatal) {
        set_state(rt, RT_STOPPED);
    } else {
        set_state(rt, RT_BACKOFF);
        schedule_restart(rt, uptime);
    }
    drop_reqs(rt, NULL, NULL); /* before any callback: those handles are dead */
    fail_calls(rt, last_id, &e);
    lose_watches(rt, &e);
    if (!stopping && rt->on_down && !rt->doomed)
        rt->on_down(rt, rt->ud, why);
    if (stopping)
        run_waiters(rt);
}

/* Called after any change in "exited" or "stdout closed". */
static void check_exit(struct rt *rt)
{
    if (!rt->pid)
        return;
    if (rt->exited && rt->out_fd < 0) {
        finish(rt);
        return;
    }
    if (rt->exited || rt->out_fd < 0)
        going(rt);
    arm_poll(rt);
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;
    enter(rt);
    try_reap(rt);
    check_exit(rt);
    leave(rt);
}

/* One half of "exited + closed" came and the other did not in time. */
static void on_grace(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;

    enter(rt);
    if (!rt->exited)
        log_msg(LOG_WARN, "rt", "runtime %d is not exiting; killing its group", (int)rt->pid);
    else if (rt->out_fd >= 0)
        log_msg(LOG_WARN, "rt", "runtime %d exited but its stdout stays open; killing its group",
                (int)rt->pid);
    /* After the reap the group may still hold helpers that keep the pipe open. */
    kill_group(rt, SIGKILL);
    if (rt->exited)
        close_out(rt);
    check_exit(rt);
    leave(rt);
}

static void on_connect_reply(void *ud, const json_t *result, const struct gw_err *err)
{
    struct rt *rt = ud;
    json_int_t pv = -1;
    const char *ver = "";

    if (!rt->pid || rt->dying || rt->state != RT_STARTING)
        return; /* already going away, or being stopped */
    if (err) {
        fail_child(rt, 0, "copilot runtime %d failed to connect: %s", (int)rt->pid, err->msg);
        return;
    }
    /* json_unpack() takes no const, but only reads. */
    json_unpack((json_t *)result, "{s?I, s?s}", "protocolVersion", &pv, "version", &ver);
    if (pv != PROTOCOL_VERSION) {
        fail_child(rt, 1,
                   "runtime at %s speaks protocol version %lld; copilot-gateway needs version %d "
                   "(install the pinned @github/copilot-sdk with `npm ci`)",
                   rt->path, (long long)pv, PROTOCOL_VERSION);
        return;
    }
    snprintf(rt->version, sizeof(rt->version), "%s", ver);
    log_msg(LOG_INFO, "rt", "runtime %s (pid %d, protocol %d) connected", rt->version, (int)rt->pid,
            PROTOCOL_VERSION);
    set_state(rt, RT_WARMING);
    if (rt->on_up)
        rt->on_up(rt, rt->ud);
}

/* Spawns the child and sends `connect`; its reply decides what comes next. */
static int launch(struct rt *rt, struct gw_err *err)
{
    json_t *params;
    int rc;

    if (util_mkdirs(rt->home) != GW_OK)
        return gw_err_set(err, GW_ERUNTIME, "cannot create runtime home '%s': %s", rt->home,
                          strerror(errno));
    if (rt->cwd && util_mkdirs(rt->cwd) != GW_OK)
        return gw_err_set(err, GW_ERUNTIME, "cannot create runtime directory '%s': %s", rt->cwd,
                          strerror(errno));
    rc = spawn(rt, err);
    if (rc)
        return rc;
    rt->generation++;
    rt->version[0] = '\0';
    log_msg(LOG_INFO, "rt", "started runtime %s (pid %d, generation %llu)", rt->path, (int)rt->pid,
            (unsigned long long)rt->generation);
    set_state(rt, RT_STARTING);
    /* Never a token: over stdio the runtime refuses a connect that has one. */
    params = json_pack("{s:[sss], s:{s:s, s:s}}", "supportedTaskKinds", "agent", "client", "shell",
                       "clientInfo", "editorName", "copilot-gateway", "editorVersion", "0.1.0");
    if (start_call(rt, "connect", params, rt->call_timeout_ms, on_connect_reply, rt, NULL))
        fail_child(rt, 0, "cannot send connect to runtime %d", (int)rt->pid);
    return GW_OK;
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;
    struct gw_err err;

    enter(rt);
    if (rt->state == RT_BACKOFF && !rt->pid && launch(rt, &err) != GW_OK) {
        log_msg(LOG_ERROR, "rt", "%s", err.msg);
        schedule_restart(rt, 0);
    }
    leave(rt);
}

/* --- stopping ------------------------------------------------------------------ */

/* stdin EOF makes the runtime exit; SIGTERM and SIGKILL follow if it does not. */
static void close_stdin_and_wait(struct rt *rt)
{
    close_in(rt);
    rt->stop_phase = 0;
    add_ms(rt->stop_ev, STOP_TERM_MS);
    arm_poll(rt);
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
    struct rt *rt = arg;

    enter(rt);
    if (rt->stop_phase == 0) {
        log_msg(LOG_INFO, "rt", "runtime %d still running; sending SIGTERM", (int)rt->pid);
        kill_group(rt, SIGTERM);
        rt->stop_phase = 1;
        add_ms(rt->stop_ev, STOP_KILL_MS - STOP_TERM_MS);
    } else {
        log_msg(LOG_WARN, "rt", "runtime %d ignored SIGTERM; sending SIGKILL", (int)rt->pid);
        kill_group(rt, SIGKILL);
        going(rt);
    }
    leave(rt);
}

static void on_shutdown_reply(void *ud, const json_t *result, const struct gw_err *err)
{
    struct rt *rt = ud;

    if (rt->pid && rt->state == RT_STOPPING && rt->in_fd >= 0)
        close_stdin_and_wait(rt);
}

/* --- public interface ------------------------------------------------------- */

/* A relative binary path would break once the child changes directory. */
static char *absolute(const char *path)
{
    char cwd[PATH_MAX];
    struct buf b;

    if (!path || path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
        return xstrdup(path);
    buf_init(&b, 2 * PATH_MAX);
    if (buf_addf(&b, "%s/%s", cwd, path))
        return xstrdup(path);
    return buf_take(&b, NULL);
}

struct rt *rt_new(struct event_base *base, const struct rt_config *cfg)
{
    struct rt *rt = xcalloc(1, sizeof(*rt));

    rt->base = base;
    rt->path = absolute(cfg->path);
    rt->home = xstrdup(cfg->home);
    rt->cwd = xstrdup(cfg->cwd);
    rt->log_level = xstrdup(cfg->log_level);
    rt->no_auto_login = cfg->no_auto_login;
    rt->env_drop = cfg->env_drop;
    rt->max_frame = cfg->max_frame ? cfg->max_frame : BUF_MAX_RPC_FRAME;
    if (rt->max_frame > MAX_FRAME_LIMIT)
        rt->max_frame = MAX_FRAME_LIMIT;
    rt->call_timeout_ms = cfg->call_timeout_ms > 0 ? cfg->call_timeout_ms : 30000;
    rt->on_up = cfg->on_up;
    rt->on_down = cfg->on_down;
    rt->ud = cfg->ud;
    rt->state = RT_STOPPED;
    rt->backoff_ms = BACKOFF_MIN_MS;
    rt->in_fd = rt->out_fd = rt->err_fd = -1;
    buf_init(&rt->rbuf, 0);
    buf_init(&rt->ebuf, 0);
    rt->poll_ev = evtimer_new(base, on_poll, rt);
    rt->grace_ev = evtimer_new(base, on_grace, rt);
    rt->restart_ev = evtimer_new(base, on_restart, rt);
    rt->stop_ev = evtimer_new(base, on_stop_timer, rt);
    rt->ping_interval_ms = cfg->ping_interval_ms > 0 ? cfg->ping_interval_ms : 0;
    rt->ping_timeout_ms = cfg->ping_timeout_ms > 0 ? cfg->ping_timeout_ms : 10000;
    rt->ping_ev = evtimer_new(base, on_ping_timer, rt);
    rt->request_timeout_ms =
        cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : rt->call_timeout_ms;
    return rt;
}

int rt_start(struct rt *rt)
{
    struct gw_err err;
    int rc;

    if (!rt->path || !rt->home) {
        log_msg(LOG_ERROR, "rt", "runtime path and home must be set");
        return GW_EINVAL;
    }
    if (rt->pid || (rt->state != RT_STOPPED && rt->state != RT_BACKOFF))
        return GW_EINVAL;
    evtimer_del(rt->restart_ev);
    rc = launch(rt, &err);
    if (rc)
        log_msg(LOG_ERROR, "rt", "%s", err.msg);
    return rc;
}

void rt_stop(struct rt *rt, void (*done)(void *ud), void *ud)
{
    struct stop_waiter *w = xcalloc(1, sizeof(*w)), **pp;
    int was_connected = connected(rt);

    enter(rt);
    w->done = done;
    w->ud = ud;
    for (pp = &rt->waiters; *pp; pp = &(*pp)->next)
        ; /* keep them in call order */
    *pp = w;
    if (!rt->pid) {
        evtimer_del(rt->restart_ev);
        set_state(rt, RT_STOPPED);
        run_waiters(rt);
    } else if (rt->state != RT_STOPPING) {
        set_state(rt, RT_STOPPING);
        evtimer_del(rt->ping_ev);
        if (!was_connected || start_call(rt, "runtime.shutdown", json_object(), SHUTDOWN_TIMEOUT_MS,
                                         on_shutdown_reply, rt, NULL))
            close_stdin_and_wait(rt);
    }
    leave(rt);
}

/* Kills the group and reaps synchronously: nothing may outlive rt_free. */
static void destroy(struct rt *rt)
{
    struct hnode *e;

    if (rt->pid) {
        kill_group(rt, SIGKILL);
        while (!rt->exited && waitpid(rt->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        orphans_disown(rt->pid);
    }
    release_child(rt);
    while ((e = htab_pop(&rt->calls)) != NULL)
        free_call((struct call *)e);
    while ((e = htab_pop(&rt->watches)) != NULL)
        free_watch((struct watch *)e);
    while ((e = htab_pop(&rt->reqs)) != NULL)
        free_req((struct req *)e);
    while ((e = htab_pop(&rt->handlers)) != NULL)
        free_handler((struct handler *)e);
    free(rt->calls.b);
    free(rt->watches.b);
    free(rt->reqs.b);
    free(rt->handlers.b);
    rt->doomed = 1; /* run_waiters() then only frees */
    run_waiters(rt);
    event_free(rt->poll_ev);
    event_free(rt->grace_ev);
    event_free(rt->restart_ev);
    event_free(rt->stop_ev);
    event_free(rt->ping_ev);
    free(rt->path);
    free(rt->home);
    free(rt->cwd);
    free(rt->log_level);
    free(rt);
}

void rt_free(struct rt *rt)
{
    if (!rt)
        return;
    if (rt->busy) {
        rt->doomed = 1;
        kill_group(rt, SIGKILL);
        return;
    }
    destroy(rt);
}

enum rt_state rt_state(const struct rt *rt)
{
    return rt->state;
}

const char *rt_state_name(enum rt_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "?";
}

void rt_set_ready(struct rt *rt)
{
    if (rt->state != RT_WARMING)
        return;
    set_state(rt, RT_READY);
    /* Not before: a starting or warming process is busy on purpose. */
    ping_arm(rt, rt->ping_interval_ms);
}

uint64_t rt_generation(const struct rt *rt)
{
    return rt->generation;
}

const char *rt_home(const struct rt *rt)
{
    return rt->home;
}

const char *rt_version(const struct rt *rt)
{
    return rt->version;
}

int rt_pid(const struct rt *rt)
{
    return (int)rt->pid;
}

int rt_usable(const struct rt *rt)
{
    return rt->state == RT_READY && connected(rt);
}

int rt_call(struct rt *rt, const char *method, json_t *params, int timeout_ms, rt_reply_cb cb,
            void *ud, uint64_t *id)
{
    if (!method) {
        json_decref(params);
        return GW_EINVAL;
    }
    if (!connected(rt)) {
        json_decref(params);
        return GW_ERUNTIME;
    }
    return start_call(rt, method, params, timeout_ms > 0 ? timeout_ms : rt->call_timeout_ms, cb, ud,
                      id);
}

void rt_cancel(struct rt *rt, uint64_t id)
{
    struct call *c = find_call(rt, id);

    if (c) {
        htab_del(&rt->calls, &c->node);
        free_call(c);
    }
}

static struct watch *find_watch(const struct rt *rt, const char *sid)
{
    return (struct watch *)htab_find_str(&rt->watches, sid, offsetof(struct watch, sid));
}

int rt_watch(struct rt *rt, const char *session_id, const struct rt_watch_ops *ops, void *ud)
{
    struct watch *w;

    if (!connected(rt))
        return GW_ERUNTIME;
    if (find_watch(rt, session_id))
        return GW_EINVAL;
    w = xcalloc(1, sizeof(*w));
    w->sid = xstrdup(session_id);
    w->ops = *ops;
    w->ud = ud;
    htab_add(&rt->watches, &w->node, hash_str(session_id));
    return GW_OK;
}

void rt_unwatch(struct rt *rt, const char *session_id)
{
    struct watch *w = find_watch(rt, session_id);

    if (w) {
        htab_del(&rt->watches, &w->node);
        free_watch(w);
        drop_reqs(rt, session_id, "the session is no longer watched by copilot-gateway");
    }
}

void rt_handle(struct rt *rt, const char *method, rt_request_cb cb, void *ud)
{
    struct handler *h = find_handler(rt, method);

    if (!cb) {
        if (h) {
            htab_del(&rt->handlers, &h->node);
            free_handler(h);
        }
        return;
    }
    if (!h) {
        h = xcalloc(1, sizeof(*h));
        h->method = xstrdup(method);
        htab_add(&rt->handlers, &h->node, hash_str(method));
    }
    h->cb = cb;
    h->ud = ud;
}

int rt_answer(struct rt *rt, uint64_t req, json_t *result)
{
    return answer(rt, req, result, 0, NULL);
}

int rt_answer_error(struct rt *rt, uint64_t req, int code, const char *message)
{
    return answer(rt, req, NULL, code, message ? message : "error");
}

int rt_request_pending(const struct rt *rt, uint64_t req)
{
    return find_req(rt, req) != NULL;
}

/* Fire-and-forget: what went wrong is only worth a log line. */
static void on_permission_answered(void *ud, const json_t *result, const struct gw_err *err)
{
    if (err)
        log_msg(LOG_WARN, "rt", "permission answer refused: %s", err->msg);
    else if (json_is_false(json_object_get(result, "success")))
        log_msg(LOG_INFO, "rt", "permission answer dropped: the prompt was no longer pending");
}

int rt_permission_answer(struct rt *rt, const char *session_id, const char *request_id,
                         json_t *result)
{
    json_t *params;

    if (!session_id || !request_id) {
        json_decref(result);
        return GW_EINVAL;
    }
    if (!result)
        result = json_pack("{s:s}", "kind", "user-not-available");
    /* "o" steals result, on failure too. */
    params = json_pack("{s:s, s:s, s:o}", "sessionId", session_id, "requestId", request_id,
                       "result", result);
    if (!params)
        return GW_EINVAL;
    return rt_call(rt, "session.permissions.handlePendingPermissionRequest", params, 0,
                   on_permission_answered, NULL, NULL);
}
