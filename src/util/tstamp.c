/* Timestamps: RFC 3339 and unix seconds in, RFC 3339 UTC with milliseconds out. */
#include "util/tstamp.h"

#include <stdio.h>
#include <string.h>

/* Reads exactly n digits at *p (advancing it) into *out; 0 on success. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, char c)
{
    if (**p != c)
        return -1;
    (*p)++;
    return 0;
}

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (a valid date, y >= 1970): Howard Hinnant's days_from_civil. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* 9999-12-31T23:59:59Z: the last second RFC 3339 can write. */
#define MAX_SECONDS 253402300799LL

static int unix_seconds(const char *s, int64_t *ms)
{
    size_t n = strspn(s, "0123456789");
    int64_t v = 0;

    if (n == 0 || n > 12 || s[n])
        return GW_EINVAL;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v > MAX_SECONDS)
        return GW_EINVAL;
    *ms = v * 1000;
    return GW_OK;
}

/* The fraction after '.', as milliseconds (further digits dropped). */
static int fraction(const char **p, int *msec)
{
    int n = 0, v = 0;

    if (**p != '.')
        return 0;
    (*p)++;
    while (**p >= '0' && **p <= '9') {
        if (n < 3)
            v = v * 10 + (**p - '0');
        n++;
        (*p)++;
    }
    if (n == 0 || n > 9)
        return -1;
    for (; n < 3; n++)
        v *= 10;
    *msec = v;
    return 0;
}

/* 'Z', or +HH:MM / -HH:MM as seconds east of UTC. */
static int zone(const char **p, int *east)
{
    int sign, hh, mm;

    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        *east = 0;
        return 0;
    }
    if (**p != '+' && **p != '-')
        return -1;
    sign = **p == '-' ? -1 : 1;
    (*p)++;
    if (digits(p, 2, &hh) || expect(p, ':') || digits(p, 2, &mm) || hh > 23 || mm > 59)
        return -1;
    *east = sign * (hh * 3600 + mm * 60);
    return 0;
}

int tstamp_parse(const char *s, int64_t *ms)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int y, mo, d, h, mi, sec, msec = 0, east = 0;
    int64_t t;

    if (!s)
        return GW_EINVAL;
    if (!strchr(s, '-'))
        return unix_seconds(s, ms);
    if (digits(&p, 4, &y) || expect(&p, '-') || digits(&p, 2, &mo) || expect(&p, '-') ||
        digits(&p, 2, &d))
        return GW_EINVAL;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return GW_EINVAL;
    p++;
    if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &mi) || expect(&p, ':') ||
        digits(&p, 2, &sec) || fraction(&p, &msec) || zone(&p, &east) || *p)
        return GW_EINVAL;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
        d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 || mi > 59 || sec > 60)
        return GW_EINVAL;
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - east;
    if (t < 0)
        return GW_EINVAL;
    *ms = t * 1000 + msec;
    return GW_OK;
}

void tstamp_format(int64_t ms, char out[32])
{
    int64_t secs = ms / 1000, days = secs / 86400, rem = secs % 86400;
    /* civil_from_days, the inverse of days_from_civil() */
    int64_t z = days + 719468, era = z / 146097, doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    int64_t y = yoe + era * 400 + (m <= 2);

    if (ms < 0) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    snprintf(out, 32, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%03lldZ", (long long)y,
             (long long)m, (long long)d, (long long)(rem / 3600), (long long)(rem / 60 % 60),
             (long long)(rem % 60), (long long)(ms % 1000));
}
