/*
 * util/tstamp.h - timestamps as people type and read them: RFC 3339 in UTC
 * ("2026-12-05T10:00:00Z", "2026-12-05T10:00:00.250+01:00") or unix seconds
 * in, RFC 3339 UTC with milliseconds out.
 *
 * Ownership: callers own every buffer.
 * Threading: pure, any thread.
 * Errors: GW_EINVAL for text that is not a timestamp (no struct gw_err: the
 *   caller knows what it asked for and words the message).
 */
#ifndef GW_UTIL_TSTAMP_H
#define GW_UTIL_TSTAMP_H

#include <stdint.h>

#include "util/err.h"

/*
 * Parses s whole into unix milliseconds: RFC 3339 (date 'T' or 't' or ' '
 * time, optional fraction of up to 9 digits, 'Z' or an offset +HH:MM /
 * -HH:MM; years 1970..9999, a real calendar date, seconds up to 60), or a
 * run of 1..12 digits taken as unix seconds up to 9999-12-31T23:59:59Z.  0 or GW_EINVAL (*ms untouched).
 */
int tstamp_parse(const char *s, int64_t *ms) WARN_UNUSED;

/* "2026-12-05T10:00:00.123Z" for ms (unix milliseconds, >= 0) into out. */
void tstamp_format(int64_t ms, char out[32]);

#endif
