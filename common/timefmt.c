/* common/timefmt.c -- RFC 3339 <-> epoch milliseconds, by civil-calendar
 * arithmetic only (proleptic Gregorian, no libc time or locale calls), so
 * it is thread-safe and independent of TZ. */
#include "common/timefmt.h"

#define MS_PER_DAY 86400000LL

/* Earliest and latest instants tally_time_format can write with a 4-digit
 * year: 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z. */
#define FMT_MIN_MS (-62135596800000LL)
#define FMT_MAX_MS (253402300799999LL)

/* Days since 1970-01-01 of the civil date y-m-d (m 1..12). Years are
 * shifted to start in March so that the leap day is the last day of the
 * shifted year; an era is 400 years = 146097 days. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = tally_floor_div(y, 400);
        yoe = y - era * 400;                            /* 0..399 */
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* 0..365 */
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;    /* 0..146096 */
        return era * 146097 + doe - 719468;             /* 719468: 0000-03-01 to 1970-01-01 */
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
        int64_t era, doe, yoe, doy, mp;

        z += 719468;
        era = tally_floor_div(z, 146097);
        doe = z - era * 146097;                                 /* 0..146096 */
        yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
        doy = doe - (365 * yoe + yoe / 4 - yoe / 100);          /* 0..365 */
        mp = (5 * doy + 2) / 153;                               /* 0..11, March = 0 */
        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
        static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                              31, 31, 30, 31, 30, 31};

        return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n ASCII digits at s; returns the value or -1. */
static int digits(const char *s, int n)
{
        int v = 0;

        for (int i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -1;
                v = v * 10 + (s[i] - '0');
        }
        return v;
}

int tally_time_parse(const char *s, size_t n, int64_t *ms)
{
        int year, mon, day, hour, min, sec, frac_ms = 0, off_min = 0;
        size_t i;
        int64_t t;

        /* shortest form: YYYY-MM-DDTHH:MM:SSZ */
        if (!s || n < 20)
                return -1;
        if (s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':')
                return -1;
        if (s[10] != 'T' && s[10] != 't' && s[10] != ' ')
                return -1;
        year = digits(s, 4);
        mon = digits(s + 5, 2);
        day = digits(s + 8, 2);
        hour = digits(s + 11, 2);
        min = digits(s + 14, 2);
        sec = digits(s + 17, 2);
        if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
            day > days_in_month(year, mon) || hour < 0 || hour > 23 ||
            min < 0 || min > 59 || sec < 0 || sec > 60)
                return -1;

        i = 19;
        if (s[i] == '.') {
                int nd = 0;

                i++;
                while (i < n && s[i] >= '0' && s[i] <= '9') {
                        /* keep the first three digits: truncation of a
                         * non-negative fraction is its floor */
                        if (nd < 3)
                                frac_ms = frac_ms * 10 + (s[i] - '0');
                        nd++;
                        i++;
                }
                if (nd < 1 || nd > 9)
                        return -1;
                for (; nd < 3; nd++)
                        frac_ms *= 10;
        }
        if (i >= n)
                return -1;
        if (s[i] == 'Z' || s[i] == 'z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                int oh, om;

                if (n - i < 6 || s[i + 3] != ':')
                        return -1;
                oh = digits(s + i + 1, 2);
                om = digits(s + i + 4, 2);
                if (oh < 0 || oh > 23 || om < 0 || om > 59)
                        return -1;
                off_min = oh * 60 + om;
                if (s[i] == '-')
                        off_min = -off_min;
                i += 6;
        } else {
                return -1;
        }
        if (i != n)
                return -1;

        /* a leap second cannot be represented: it becomes the last
         * millisecond of the minute */
        if (sec == 60) {
                sec = 59;
                frac_ms = 999;
        }
        t = days_from_civil(year, mon, day) * MS_PER_DAY +
            ((int64_t)hour * 3600 + min * 60 + sec) * 1000 + frac_ms;
        *ms = t - (int64_t)off_min * 60000;
        return 0;
}

static void put2(char *p, int v)
{
        p[0] = (char)('0' + v / 10);
        p[1] = (char)('0' + v % 10);
}

size_t tally_time_format(int64_t ms, char *out)
{
        int64_t days, rem, y;
        int m, d;

        /* outside 0001..9999 a 4-digit year cannot say it: clamp */
        if (ms < FMT_MIN_MS)
                ms = FMT_MIN_MS;
        if (ms > FMT_MAX_MS)
                ms = FMT_MAX_MS;
        days = tally_floor_div(ms, MS_PER_DAY);
        rem = ms - days * MS_PER_DAY;           /* 0..86399999 */
        civil_from_days(days, &y, &m, &d);

        put2(out, (int)(y / 100));
        put2(out + 2, (int)(y % 100));
        out[4] = '-';
        put2(out + 5, m);
        out[7] = '-';
        put2(out + 8, d);
        out[10] = 'T';
        put2(out + 11, (int)(rem / 3600000));
        out[13] = ':';
        put2(out + 14, (int)(rem / 60000 % 60));
        out[16] = ':';
        put2(out + 17, (int)(rem / 1000 % 60));
        out[19] = '.';
        out[20] = (char)('0' + rem % 1000 / 100);
        put2(out + 21, (int)(rem % 100));
        out[23] = 'Z';
        out[24] = '\0';
        return 24;
}
