/*
 * Adopts and ends the processes the runtimes' tools leave behind (rt/orphans.h).
 */
#include "rt/orphans.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "util/log.h"
#include "util/xmalloc.h"

struct pids {
    pid_t *v;
    size_t n, cap;
};

static struct {
    struct event *scan;
    struct pids owned;  /* runtimes: rt.c waits for them */
    struct pids killed; /* sent SIGKILL, not reaped yet */
    unsigned long long ended;
} o;

static int pids_has(const struct pids *p, pid_t pid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i] == pid)
            return 1;
    return 0;
}

static void pids_add(struct pids *p, pid_t pid)
{
    if (pids_has(p, pid))
        return;
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->v = xrealloc(p->v, p->cap * sizeof(*p->v));
    }
    p->v[p->n++] = pid;
}

static void pids_del(struct pids *p, pid_t pid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i] == pid) {
            p->v[i] = p->v[--p->n];
            return;
        }
}

void orphans_own(pid_t pid)
{
    pids_add(&o.owned, pid);
}

void orphans_disown(pid_t pid)
{
    pids_del(&o.owned, pid);
}

unsigned long long orphans_ended(void)
{
    return o.ended;
}

/* One child that is not a runtime: reaped if it is gone, else ended (once). */
static void end_child(pid_t pid)
{
    char path[64], comm[64] = "?";
    FILE *f;

    if (waitpid(pid, NULL, WNOHANG) == pid) {
        pids_del(&o.killed, pid);
        return;
    }
    if (pids_has(&o.killed, pid))
        return;
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    if ((f = fopen(path, "re")) != NULL) {
        if (fgets(comm, sizeof(comm), f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
    }
    if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
        return;
    pids_add(&o.killed, pid);
    o.ended++;
    log_msg(LOG_WARN, "rt", "ended process %d (%s): left running by a runtime's tool", (int)pid,
            comm);
}

/* The gateway's children, from /proc/self/task/<tid>/children (every thread's). */
static void scan(evutil_socket_t fd, short what, void *ud)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    struct pids kids = {0};

    (void)fd, (void)what, (void)ud;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], buf[4096];
        FILE *f;
        size_t n;

        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
        if ((f = fopen(path, "re")) == NULL)
            continue;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        for (char *p = buf, *end; *p; p = end) {
            long pid = strtol(p, &end, 10);
            if (end == p)
                break;
            if (pid > 0 && !pids_has(&o.owned, (pid_t)pid))
                pids_add(&kids, (pid_t)pid);
        }
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < kids.n; i++)
        end_child(kids.v[i]);
    /* killed children no longer listed were reaped elsewhere or are gone */
    for (size_t i = 0; i < o.killed.n;)
        if (!pids_has(&kids, o.killed.v[i]))
            o.killed.v[i] = o.killed.v[--o.killed.n];
        else
            i++;
    free(kids.v);
}

int orphans_start(struct event_base *base)
{
    struct timeval tv = {ORPHANS_SCAN_MS / 1000, (ORPHANS_SCAN_MS % 1000) * 1000};

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        log_msg(LOG_WARN, "rt",
                "cannot adopt the processes tools leave behind (PR_SET_CHILD_SUBREAPER: %s)",
                strerror(errno));
        return -1;
    }
    o.scan = event_new(base, -1, EV_PERSIST, scan, NULL);
    event_add(o.scan, &tv);
    return 0;
}

void orphans_stop(void)
{
    if (o.scan) {
        scan(-1, 0, NULL); /* what the runtimes left as they stopped */
        event_free(o.scan);
        o.scan = NULL;
    }
    free(o.owned.v);
    free(o.killed.v);
    memset(&o, 0, sizeof(o));
}
