/* common/timefmt.h -- event-time parsing and formatting without libc
 * locale or timezone calls (thread-safe, no state). Times are epoch
 * milliseconds UTC. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Parses RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|z|+hh:mm|-hh:mm), 'T' or
 * 't' or ' ' as separator; fraction of 1-9 digits, truncated to ms
 * (floor towards the past). Checks day-of-month with leap years, hour <= 23,
 * minute <= 59, second <= 60 (a leap second 60 counts as 59.999...),
 * years 0001-9999. s need not be NUL-terminated. Returns 0 or -1. */
int tally_time_parse(const char *s, size_t n, int64_t *ms);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" and a NUL into out (>= 25 bytes).
 * Returns the length (24). */
size_t tally_time_format(int64_t ms, char *out);

/* floor division, for aligning negative times to windows */
static inline int64_t tally_floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;
        return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* start of the window of size w that contains t (windows aligned to epoch) */
static inline int64_t tally_window_start(int64_t t, int64_t w)
{
        return tally_floor_div(t, w) * w;
}
