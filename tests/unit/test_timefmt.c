/* tests/unit/test_timefmt.c -- RFC 3339 parsing/formatting, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/timefmt.h"

/* 2024-01-01T00:00:00Z */
#define T2024 1704067200000LL

struct parse_case {
        const char *in;
        int ok;
        int64_t ms;
};

static const struct parse_case parse_cases[] = {
        {"1970-01-01T00:00:00Z", 1, 0},
        {"1970-01-01T00:00:00.001Z", 1, 1},
        {"2024-01-01T00:00:00Z", 1, T2024},
        {"2024-01-01t00:00:00z", 1, T2024},
        {"2024-01-01 00:00:00Z", 1, T2024},
        {"2026-11-24T10:15:03.120Z", 1, 1795515303120LL},
        /* offsets */
        {"2024-01-01T05:30:00+05:30", 1, T2024},
        {"2023-12-31T16:00:00-08:00", 1, T2024},
        {"2024-01-01T00:00:00+00:00", 1, T2024},
        {"2024-01-01T00:00:00-00:00", 1, T2024},
        {"2024-01-01T23:59:00+23:59", 1, T2024},
        /* fractions of 1..9 digits, truncated */
        {"2024-01-01T00:00:00.1Z", 1, T2024 + 100},
        {"2024-01-01T00:00:00.12Z", 1, T2024 + 120},
        {"2024-01-01T00:00:00.123Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.1239Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.12399Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.123999Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.1239999Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.12399999Z", 1, T2024 + 123},
        {"2024-01-01T00:00:00.999999999Z", 1, T2024 + 999},
        {"2024-01-01T00:00:00.0000000000Z", 0, 0},      /* 10 digits */
        {"2024-01-01T00:00:00.Z", 0, 0},
        {"2024-01-01T05:30:00.5+05:30", 1, T2024 + 500},
        /* leap years */
        {"2024-02-29T00:00:00Z", 1, 1709164800000LL},
        {"2023-02-29T00:00:00Z", 0, 0},
        {"1900-02-29T00:00:00Z", 0, 0},
        {"2000-02-29T00:00:00Z", 1, 951782400000LL},
        {"2100-02-29T00:00:00Z", 0, 0},
        {"2024-04-31T00:00:00Z", 0, 0},
        {"2024-12-31T23:59:59.999Z", 1, 1735689599999LL},
        /* before the epoch: floor towards the past */
        {"1969-12-31T23:59:59.999Z", 1, -1},
        {"1969-12-31T23:59:59.9999Z", 1, -1},
        {"1900-01-01T00:00:00Z", 1, -2208988800000LL},
        {"0001-01-01T00:00:00Z", 1, -62135596800000LL},
        {"9999-12-31T23:59:59.999Z", 1, 253402300799999LL},
        /* leap second */
        {"2016-12-31T23:59:60Z", 1, 1483228799999LL},
        {"2016-12-31T23:59:60.5Z", 1, 1483228799999LL},
        {"2016-12-31T23:59:61Z", 0, 0},
        /* ranges */
        {"0000-01-01T00:00:00Z", 0, 0},
        {"2024-00-01T00:00:00Z", 0, 0},
        {"2024-13-01T00:00:00Z", 0, 0},
        {"2024-01-00T00:00:00Z", 0, 0},
        {"2024-01-32T00:00:00Z", 0, 0},
        {"2024-01-01T24:00:00Z", 0, 0},
        {"2024-01-01T00:60:00Z", 0, 0},
        {"2024-01-01T00:00:00+24:00", 0, 0},
        {"2024-01-01T00:00:00+05:60", 0, 0},
        /* syntax */
        {"", 0, 0},
        {"2024-01-01", 0, 0},
        {"2024-01-01T00:00:00", 0, 0},          /* no offset */
        {"2024-01-01T00:00:00ZZ", 0, 0},
        {"2024-01-01T00:00:00 Z", 0, 0},
        {"2024-01-01T00:00:00+0530", 0, 0},
        {"2024-01-01T00:00:00+05:3", 0, 0},
        {"2024-01-01T00:00:00+05:30 ", 0, 0},
        {"2024-01-01X00:00:00Z", 0, 0},
        {"2024/01/01T00:00:00Z", 0, 0},
        {"2024-1-01T00:00:00Z", 0, 0},
        {"+024-01-01T00:00:00Z", 0, 0},
        {"2024-01-01T00:00:0aZ", 0, 0},
        {"2024-01-01T00:00:00,5Z", 0, 0},
        {" 2024-01-01T00:00:00Z", 0, 0},
        {"1704067200000", 0, 0},
};

static void test_parse_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(parse_cases) / sizeof(*parse_cases);
             i++) {
                const struct parse_case *c = &parse_cases[i];
                int64_t ms = 42;
                int rc = tally_time_parse(c->in, strlen(c->in), &ms);

                if ((rc == 0) != c->ok || (c->ok && ms != c->ms))
                        fail_msg("case %zu \"%s\": rc=%d ms=%lld, want "
                                 "ok=%d ms=%lld", i, c->in, rc,
                                 (long long)ms, c->ok, (long long)c->ms);
        }
}

/* s need not be NUL-terminated: only n bytes are read */
static void test_parse_not_terminated(void **state)
{
        const char s[] = "2024-01-01T00:00:00Z garbage";
        int64_t ms;

        (void)state;
        assert_int_equal(tally_time_parse(s, 20, &ms), 0);
        assert_int_equal(ms, T2024);
        assert_int_equal(tally_time_parse(s, 21, &ms), -1);
        assert_int_equal(tally_time_parse(s, 19, &ms), -1);
        assert_int_equal(tally_time_parse(NULL, 0, &ms), -1);
}

struct fmt_case {
        int64_t ms;
        const char *out;
};

static const struct fmt_case fmt_cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {T2024, "2024-01-01T00:00:00.000Z"},
        {1709164800000LL, "2024-02-29T00:00:00.000Z"},
        {951782400000LL, "2000-02-29T00:00:00.000Z"},
        {1795515303120LL, "2026-11-24T10:15:03.120Z"},
        {1735689599999LL, "2024-12-31T23:59:59.999Z"},
        {-2208988800000LL, "1900-01-01T00:00:00.000Z"},
        {-62135596800000LL, "0001-01-01T00:00:00.000Z"},
        {253402300799999LL, "9999-12-31T23:59:59.999Z"},
        /* clamped to what four year digits can say */
        {INT64_MIN, "0001-01-01T00:00:00.000Z"},
        {INT64_MAX, "9999-12-31T23:59:59.999Z"},
};

static void test_format_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(*fmt_cases); i++) {
                char out[32];

                memset(out, 'x', sizeof(out));
                assert_int_equal(tally_time_format(fmt_cases[i].ms, out), 24);
                assert_string_equal(out, fmt_cases[i].out);
        }
}

/* format then parse gives the same instant, across many days and years
 * (including leap days and times before the epoch) */
static void test_round_trip(void **state)
{
        (void)state;
        /* step a prime number of ms so that every field varies */
        for (int64_t ms = -62135596800000LL; ms <= 253402300799999LL;
             ms += 86400000LL * 7 + 3600000 * 5 + 60000 * 7 + 1013) {
                char out[32];
                int64_t back;

                tally_time_format(ms, out);
                assert_int_equal(tally_time_parse(out, 24, &back), 0);
                if (back != ms)
                        fail_msg("%lld -> %s -> %lld", (long long)ms, out,
                                 (long long)back);
        }
        /* every day of 1999-2000 and 2023-2024 at 23:59:59.999 */
        for (int64_t day = 10592; day < 11323; day++) {
                for (int64_t base = 0; base <= 8766; base += 8766) {
                        int64_t ms = (day + base) * 86400000LL + 86399999;
                        char out[32];
                        int64_t back;

                        tally_time_format(ms, out);
                        assert_int_equal(tally_time_parse(out, 24, &back), 0);
                        assert_int_equal(back, ms);
                }
        }
}

static void test_floor_div(void **state)
{
        (void)state;
        assert_int_equal(tally_floor_div(7, 2), 3);
        assert_int_equal(tally_floor_div(-7, 2), -4);
        assert_int_equal(tally_floor_div(-6, 2), -3);
        assert_int_equal(tally_window_start(-1, 60000), -60000);
        assert_int_equal(tally_window_start(119999, 60000), 60000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_table),
                cmocka_unit_test(test_parse_not_terminated),
                cmocka_unit_test(test_format_table),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_floor_div),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
