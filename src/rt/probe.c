/* Deciding whether a runtime process that does not answer its ping is frozen or just busy. */
#include "rt/probe.h"

#include <stdlib.h>
#include <string.h>

/* Reads a decimal field and the blank after it; NULL if there is none. */
static const char *field_u64(const char *p, uint64_t *v)
{
    char *end;

    if (*p < '0' || *p > '9')
        return NULL;
    *v = strtoull(p, &end, 10);
    return *end == ' ' || *end == '\n' || *end == '\0' ? end + (*end == ' ') : NULL;
}

/* Skips one blank-separated field (which may be negative, e.g. tty_nr). */
static const char *skip_field(const char *p)
{
    const char *sp = strchr(p, ' ');
    return sp && sp != p ? sp + 1 : NULL;
}

int probe_parse_stat(const char *line, long ticks_per_s, struct probe_sample *out)
{
    const char *p = line ? strrchr(line, ')') : NULL;
    uint64_t ut = 0, st = 0;

    memset(out, 0, sizeof(*out));
    if (!p || p[1] != ' ' || !p[2] || p[3] != ' ' || ticks_per_s <= 0)
        return -1;
    out->state = p[2];
    p += 4;
    /* ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt, then utime stime */
    for (int i = 0; i < 10 && p; i++)
        p = skip_field(p);
    if (p)
        p = field_u64(p, &ut);
    if (p)
        p = field_u64(p, &st);
    if (!p) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    out->cpu_ms = (ut + st) * 1000 / (uint64_t)ticks_per_s;
    return 0;
}

enum probe_verdict probe_judge(const struct probe_sample *before, const struct probe_sample *now,
                               uint64_t window_ms, uint64_t waited_ms)
{
    uint64_t used;

    if (now->state == 'T' || now->state == 't')
        return PROBE_STOPPED;
    if (!before->state || !now->state || now->cpu_ms < before->cpu_ms)
        return PROBE_SILENT; /* nothing to go on but the clock */
    used = now->cpu_ms - before->cpu_ms;
    if (used * PROBE_BUSY_SHARE < window_ms)
        return PROBE_SILENT;
    if (waited_ms >= window_ms * PROBE_BUSY_WINDOWS)
        return PROBE_TOO_LONG;
    return PROBE_WAIT;
}

const char *probe_verdict_text(enum probe_verdict v)
{
    switch (v) {
    case PROBE_STOPPED:
        return "the process is stopped";
    case PROBE_SILENT:
        return "it is hung: it used no CPU";
    case PROBE_TOO_LONG:
        return "the process stayed busy without answering";
    case PROBE_WAIT:
        break;
    }
    return "busy";
}
