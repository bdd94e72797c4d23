/*
 * time.c: RFC 3339 timestamps to microseconds since the epoch.
 *
 * Audit events carry stageTimestamp and requestReceivedTimestamp as RFC 3339 with
 * microseconds ("2024-05-01T12:00:00.123456Z"). The decoder calls this once or twice per
 * event, so it is a straight-line parser: no locale, no timegm, no allocation. Dates go
 * through Howard Hinnant's days-from-civil algorithm, valid for every year 0000-9999.
 */
#include "event.h"

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
