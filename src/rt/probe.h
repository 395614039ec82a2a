/*
 * rt/probe.h - the liveness verdict on a runtime process that leaves a ping
 * unanswered (pure functions, so they can be unit-tested).
 *
 * A ping that is not answered within the timeout does not by itself mean the
 * process is gone: a runtime tokenizing a huge prompt stops answering
 * requests for seconds (a 30 MB prompt on runtime 1.0.85: over 100 s) while
 * using a whole core.  So the process's own state is looked at too
 * (/proc/PID/stat): stopped (SIGSTOP, a debugger) is frozen at once; a
 * process that used no more than a trickle of CPU over the last window is
 * wedged (an idle runtime uses well under 1% of a core); one that is busy is
 * given more windows, up to PROBE_BUSY_WINDOWS of them in all.
 *
 * Threading: none (pure).  Errors: probe_parse_stat() returns -1 on a line
 * it cannot read; the caller then judges on time alone.
 */
#ifndef GW_RT_PROBE_H
#define GW_RT_PROBE_H

#include <stdint.h>

/* A busy but silent process is killed after this many ping timeouts. */
#define PROBE_BUSY_WINDOWS 12
/* Busy means at least 1/PROBE_BUSY_SHARE of a core over the window (5%). */
#define PROBE_BUSY_SHARE 20

enum probe_verdict {
    PROBE_WAIT = 0,  /* busy: give it another window */
    PROBE_STOPPED,   /* the process is stopped (state T or t) */
    PROBE_SILENT,    /* it used (almost) no CPU while the ping waited */
    PROBE_TOO_LONG,  /* busy, but silent for PROBE_BUSY_WINDOWS windows */
};

/* What /proc/PID/stat said about the process. */
struct probe_sample {
    char state;         /* 'R', 'S', 'T', ...; 0 when unknown */
    uint64_t cpu_ms;    /* user + system time of all its threads */
};

/*
 * Parses one /proc/PID/stat line (the command name may hold blanks and
 * parentheses: the fields are read after its last ')').  ticks_per_s is
 * sysconf(_SC_CLK_TCK).  Returns 0, or -1 and leaves *out zeroed.
 */
int probe_parse_stat(const char *line, long ticks_per_s, struct probe_sample *out);

/*
 * The verdict once a ping has waited a whole window of window_ms: `before`
 * was sampled when the window began, `now` at its end (state 0 = unknown:
 * then only time counts, and silence for one window is enough), and
 * `waited_ms` is how long the ping has been waiting in all.
 */
enum probe_verdict probe_judge(const struct probe_sample *before, const struct probe_sample *now,
                               uint64_t window_ms, uint64_t waited_ms);

/* A few words for the log: "is stopped", "used no CPU", "stayed busy". */
const char *probe_verdict_text(enum probe_verdict v);

#endif
