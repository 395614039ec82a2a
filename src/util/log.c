/* Leveled one-line logging to stderr with timestamps. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>

enum log_level log_level_current = LOG_INFO;

static const char *names[] = {"debug", "info", "warn", "error"};

void log_write(enum log_level lvl, const char *module, const char *fmt, ...)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t off;
    va_list ap;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    off += (size_t)snprintf(line + off, sizeof(line) - off, ".%03dZ %-5s %-6s ",
                            (int)(tv.tv_usec / 1000), names[lvl < 4 ? lvl : 3], module);
    va_start(ap, fmt);
    if (off < sizeof(line))
        vsnprintf(line + off, sizeof(line) - off, fmt, ap);
    va_end(ap);
    line[sizeof(line) - 2] = '\0';
    fprintf(stderr, "%s\n", line);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

static void libevent_cb(int severity, const char *msg)
{
    enum log_level l = severity == EVENT_LOG_DEBUG ? LOG_DEBUG
                       : severity == EVENT_LOG_MSG ? LOG_INFO
                       : severity == EVENT_LOG_WARN ? LOG_WARN
                                                    : LOG_ERROR;
    log_msg(l, "event", "%s", msg);
}

void log_hook_libevent(void)
{
    event_set_log_callback(libevent_cb);
}
