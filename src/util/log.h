/*
 * util/log.h - leveled logging to stderr, one line per message.
 *
 * log_msg() checks the level before formatting (redis serverLog).  Every line
 * carries a module name; request and session ids go in the message.  Never log
 * tokens or prompts at LOG_INFO or above.
 */
#ifndef GW_UTIL_LOG_H
#define GW_UTIL_LOG_H

#include "util/err.h"

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

extern enum log_level log_level_current; /* one of the two allowed globals */

#define log_msg(lvl, mod, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) >= log_level_current)                                                            \
            log_write((lvl), (mod), __VA_ARGS__);                                                  \
    } while (0)

void log_write(enum log_level lvl, const char *module, const char *fmt, ...) PRINTF(3, 4);
/* Parses "debug", "info", "warn", "error"; returns -1 if unknown. */
int log_level_parse(const char *s);
/* Routes libevent's own messages into log_write(). */
void log_hook_libevent(void);

#endif
