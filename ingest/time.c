/*
 * time.c: RFC 3339 timestamps to microseconds since the epoch, and back.
 *
 * Audit events carry stageTimestamp and requestReceivedTimestamp as RFC 3339 with
 * microseconds ("2024-05-01T12:00:00.123456Z"). The decoder calls this once or twice per
 * event, so it is a straight-line parser: no locale, no timegm, no allocation. Dates go
 * through Howard Hinnant's days-from-civil algorithm, valid for every year 0000-9999.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kt.h"

/* Value of n ASCII digits at p, or -1 if any of them is not a digit. */
static int digits(const char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        unsigned c = (unsigned char)p[i] - '0';
        if (c > 9) {
            return -1;
        }
        v = v * 10 + (int)c;
    }
    return v;
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1-12, d 1-31). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/*
 * Accepts YYYY-MM-DDTHH:MM:SS[.F{1,9}](Z|+hh:mm|-hh:mm), with t and z in either case.
 * Seconds may be 60 (RFC 3339 leap second; it lands on the next minute's :00). Fractions
 * finer than a microsecond are truncated. Borrowed p is not NUL-terminated.
 */
int kt_parse_rfc3339(const char *p, size_t len, int64_t *out_us)
{
    if (p == NULL || len < 20) {
        return KT_EPARSE;
    }
    int year = digits(p, 4);
    int mon = digits(p + 5, 2);
    int day = digits(p + 8, 2);
    int hour = digits(p + 11, 2);
    int min = digits(p + 14, 2);
    int sec = digits(p + 17, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || hour < 0 || hour > 23 || min < 0 ||
        min > 59 || sec < 0 || sec > 60 || p[4] != '-' || p[7] != '-' ||
        (p[10] != 'T' && p[10] != 't') || p[13] != ':' || p[16] != ':') {
        return KT_EPARSE;
    }
    if (day > days_in_month(year, mon)) {
        return KT_EPARSE;
    }

    size_t i = 19;
    int64_t frac_us = 0;
    if (p[i] == '.') {
        size_t start = ++i;
        int64_t scale = 100000;
        while (i < len && (unsigned)((unsigned char)p[i] - '0') <= 9) {
            frac_us += (p[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9) {
            return KT_EPARSE;
        }
    }
    if (i >= len) {
        return KT_EPARSE;
    }

    int64_t offset_s = 0;
    if (p[i] == 'Z' || p[i] == 'z') {
        i++;
    } else if (p[i] == '+' || p[i] == '-') {
        if (len - i < 6) {
            return KT_EPARSE;
        }
        int oh = digits(p + i + 1, 2);
        int om = digits(p + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59 || p[i + 3] != ':') {
            return KT_EPARSE;
        }
        offset_s = (int64_t)(oh * 3600 + om * 60);
        if (p[i] == '-') {
            offset_s = -offset_s;
        }
        i += 6;
    } else {
        return KT_EPARSE;
    }
    if (i != len) {
        return KT_EPARSE;
    }

    int64_t secs = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec;
    /* Local time = UTC + offset, so UTC = local - offset. */
    *out_us = (secs - offset_s) * 1000000 + frac_us;
    return 0;
}

/* The proleptic Gregorian date of a day count since 1970-01-01 (inverse of the above). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;                                      /* [0, 146096] */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* [0, 365] */
    int64_t mp = (5 * doy + 2) / 153;                                    /* [0, 11] */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

size_t kt_format_rfc3339(int64_t us, char *out)
{
    int64_t secs = us >= 0 ? us / 1000000 : (us - 999999) / 1000000;
    int64_t frac = us - secs * 1000000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        out[0] = '\0';
        return 0;
    }
    int v[7] = {(int)y, m, d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), (int)frac};
    static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
    static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    size_t k = 0;
    for (int i = 0; i < 7; i++) { /* no snprintf: GCC cannot bound its output here */
        for (int j = width[i] - 1; j >= 0; j--) {
            out[k + (size_t)j] = (char)('0' + v[i] % 10);
            v[i] /= 10;
        }
        k += (size_t)width[i];
        out[k++] = sep[i];
    }
    out[k] = '\0';
    return k;
}

int kt_parse_duration(const char *s, int64_t *out_us)
{
    static const struct {
        const char *unit;
        double us;
    } units[] = {{"ms", 1e3},   {"s", 1e6},     {"", 1e6},      {"m", 60e6},
                 {"h", 3600e6}, {"d", 86400e6}, {"w", 604800e6}};
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0)) {
        return KT_EPARSE;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v * units[i].us > 9e18) {
                return KT_EPARSE;
            }
            *out_us = (int64_t)(v * units[i].us);
            return 0;
        }
    }
    return KT_EPARSE;
}
