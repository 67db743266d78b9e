/* tests/unit/test_rollup.c -- tally.rollups codec: round trips and every
 * validation error (table-driven). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/rollup.h"

static tally_rollup sample(void)
{
        tally_rollup r;

        memset(&r, 0, sizeof(r));
        strcpy(r.site, "DAL-07");
        strcpy(r.device, "cooler-17");
        strcpy(r.metric, "temperature_c");
        r.window_ms = 60000;
        r.start_ms = INT64_C(1795515300000);    /* 2026-11-24T10:15:00Z */
        r.count = 12;
        r.sum = 40.2;
        r.min = 3.1;
        r.max = 3.6;
        r.first.ts_ms = r.start_ms + 3120;
        r.first.value = 3.4;
        r.first.pos = (tally_pos){.partition = 3, .offset = 1200, .index = 0};
        r.last.ts_ms = r.start_ms + 59999;
        r.last.value = 3.5;
        r.last.pos = (tally_pos){.partition = 3, .offset = 1290, .index = 1};
        r.version = 12;
        return r;
}

static void assert_same(const tally_rollup *a, const tally_rollup *b)
{
        assert_string_equal(a->site, b->site);
        assert_string_equal(a->device, b->device);
        assert_string_equal(a->metric, b->metric);
        assert_int_equal(a->window_ms, b->window_ms);
        assert_int_equal(a->start_ms, b->start_ms);
        assert_int_equal(a->count, b->count);
        assert_memory_equal(&a->sum, &b->sum, sizeof(double));
        assert_memory_equal(&a->min, &b->min, sizeof(double));
        assert_memory_equal(&a->max, &b->max, sizeof(double));
        assert_int_equal(a->first.ts_ms, b->first.ts_ms);
        assert_memory_equal(&a->first.value, &b->first.value, sizeof(double));
        assert_int_equal(a->first.pos.partition, b->first.pos.partition);
        assert_int_equal(a->first.pos.offset, b->first.pos.offset);
        assert_int_equal(a->first.pos.index, b->first.pos.index);
        assert_int_equal(a->last.ts_ms, b->last.ts_ms);
        assert_memory_equal(&a->last.value, &b->last.value, sizeof(double));
        assert_int_equal(a->last.pos.partition, b->last.pos.partition);
        assert_int_equal(a->last.pos.offset, b->last.pos.offset);
        assert_int_equal(a->last.pos.index, b->last.pos.index);
        assert_int_equal(a->version, b->version);
}

static void round_trip(const tally_rollup *in)
{
        tally_buf b = TALLY_BUF_INIT;
        tally_rollup out;
        tally_err err;

        tally_rollup_encode(in, &b);
        if (tally_rollup_decode(b.data, b.len, &out, &err) != 0)
                fail_msg("decode: %s: %s\n%.*s", err.reason, err.msg,
                         (int)b.len, (char *)b.data);
        assert_same(in, &out);
        tally_buf_free(&b);
}

static void test_round_trip(void **state)
{
        tally_rollup r = sample();

        (void)state;
        round_trip(&r);

        /* awkward doubles, names that need escaping, big positions */
        r.sum = 0.1 + 0.2;
        r.min = -0.0;
        r.max = 1e300;
        r.first.value = -0.0;
        r.last.value = 5e-324;
        strcpy(r.site, "quote\" back\\slash \x01\x1f tab\t é");
        memset(r.device, 'd', TALLY_NAME_MAX);
        r.device[TALLY_NAME_MAX] = 0;
        r.first.pos.offset = INT64_MAX;
        r.first.pos.partition = INT32_MAX;
        r.last.pos = r.first.pos;
        r.last.pos.index = INT32_MAX;
        round_trip(&r);

        /* integral sums beyond 2^53, negative window starts */
        r = sample();
        r.sum = 9007199254740993.0 * 4;
        r.start_ms = -120000;
        r.first.ts_ms = -120000;
        r.last.ts_ms = -60001;
        round_trip(&r);

        /* count 1: first == last */
        r = sample();
        r.count = r.version = 1;
        r.last = r.first;
        round_trip(&r);

        /* 1h window */
        r = sample();
        r.window_ms = 3600000;
        r.start_ms = INT64_C(1795514400000);
        r.first.ts_ms = r.start_ms;
        r.last.ts_ms = r.start_ms + 3599999;
        round_trip(&r);
}

/* Doubles are written short when a few decimals read back to the same
 * double, else with 17 digits: either way every value must come back
 * bit for bit, through the direct decoder and through jansson. */
static void test_f64_round_trip(void **state)
{
        static const double fixed[] = {
                0.1, 0.2, 0.1 + 0.2, 1.0 / 3, 2.5, -2.5, 1e-7, 123456.789,
                999999999.999999, 1e9, 1e9 - 0.5, 1e15, 1e16, 1e300, -1e-300,
                5e-324, 4.9406564584124654e-324, 1.7976931348623157e308,
                9007199254740993.0 * 4, 0.000001, 0.0000015, 21.37, -0.0, 0.0,
        };
        uint64_t x = 0x9e3779b97f4a7c15u;
        tally_rollup r = sample();

        (void)state;
        for (int i = 0; i < 200000; i++) {
                double v;

                if (i < (int)(sizeof(fixed) / sizeof(*fixed))) {
                        v = fixed[i];
                } else {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        if (i % 3 == 0) {       /* any finite bit pattern */
                                memcpy(&v, &x, sizeof(v));
                                if (!isfinite(v))
                                        continue;
                        } else {                /* a reading-like decimal */
                                static const double p[] = {1, 10, 100, 1e3,
                                                           1e4, 1e5, 1e6, 1e7};
                                v = (double)(int64_t)(x % 2000000000) /
                                    p[(x >> 40) % 8] * ((x >> 50) & 1 ? -1 : 1);
                        }
                }
                r.sum = v;
                for (int json = 0; json < 2; json++) {
                        tally_buf b = TALLY_BUF_INIT;
                        tally_rollup out;
                        tally_err err;
                        int rc;

                        tally_rollup_encode(&r, &b);
                        rc = json ? tally_rollup_decode_json(b.data, b.len,
                                                             &out, &err)
                                  : tally_rollup_decode(b.data, b.len, &out,
                                                        &err);
                        if (rc || memcmp(&out.sum, &v, sizeof(v)))
                                fail_msg("%.17g does not read back: %.*s", v,
                                         (int)b.len, (char *)b.data);
                        tally_buf_free(&b);
                }
        }
}

static void test_encode_shape(void **state)
{
        tally_rollup r = sample();
        tally_buf b = TALLY_BUF_INIT;
        const char *want =
                "{\"v\":1,\"site\":\"DAL-07\",\"device\":\"cooler-17\","
                "\"metric\":\"temperature_c\",\"window_ms\":60000,"
                "\"start\":\"2026-11-24T10:15:00.000Z\","
                "\"start_ms\":1795515300000,\"count\":12,"
                "\"sum\":40.2,\"min\":3.1,"
                "\"max\":3.6,"
                "\"first\":{\"ts_ms\":1795515303120,\"value\":3.4,"
                "\"origin\":[3,1200,0]},"
                "\"last\":{\"ts_ms\":1795515359999,\"value\":3.5,"
                "\"origin\":[3,1290,1]},\"version\":12}";

        (void)state;
        tally_rollup_encode(&r, &b);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        tally_buf_free(&b);
}

/* Names with characters JSON must escape, negative integers, a record
 * appended after other bytes, and the start time of each record (the
 * encoder keeps the last one's text) even when starts alternate. */
static void test_encode_escapes_and_starts(void **state)
{
        tally_rollup r = sample();
        tally_buf b = TALLY_BUF_INIT;
        const char *p;

        (void)state;
        strcpy(r.site, "a\"b\\c\x01\x1f\x7f");
        r.first.pos.offset = 0;
        r.count = r.version = INT64_MIN;
        tally_buf_append(&b, "[", 1);
        tally_rollup_encode(&r, &b);
        tally_buf_putc(&b, 0);
        p = (const char *)b.data;
        assert_non_null(strstr(p, "[{\"v\":1,\"site\":\"a\\\"b\\\\c\\u0001\\u001f\x7f\","));
        assert_non_null(strstr(p, "\"count\":-9223372036854775808,"));
        assert_non_null(strstr(p, "\"origin\":[3,0,0]"));
        for (int i = 0; i < 4; i++) {
                r = sample();
                r.start_ms = i % 2 ? -60000 : INT64_C(1795515300000);
                tally_buf_reset(&b);
                tally_rollup_encode(&r, &b);
                tally_buf_putc(&b, 0);
                assert_non_null(strstr((const char *)b.data,
                                       i % 2 ? "\"start\":\"1969-12-31T23:59:00.000Z\""
                                             : "\"start\":\"2026-11-24T10:15:00.000Z\""));
        }
        tally_buf_free(&b);
}

/* A valid record as text, for the error table below. */
#define HEAD "{\"v\":1,\"site\":\"S\",\"device\":\"D\",\"metric\":\"M\","
#define WIN "\"window_ms\":60000,\"start_ms\":120000,"
#define STATS "\"count\":2,\"sum\":3,\"min\":1,\"max\":2,"
#define FIRST "\"first\":{\"ts_ms\":120000,\"value\":1,\"origin\":[0,5,0]},"
#define LAST "\"last\":{\"ts_ms\":120001,\"value\":2,\"origin\":[0,6,0]},"
#define VERS "\"version\":2}"
#define END "\"_\":0}"
#define VALID HEAD WIN STATS FIRST LAST VERS

struct bad_case {
        const char *name;
        const char *input;
        const char *reason;
        const char *msg_part;   /* substring of err.msg */
};

static const struct bad_case bad_cases[] = {
        {"empty", "", "malformed_json", ""},
        {"truncated", "{\"v\":1", "malformed_json", ""},
        {"trailing", VALID "x", "malformed_json", ""},
        {"two objects", VALID VALID, "malformed_json", ""},
        {"array", "[1]", "malformed_json", "not a JSON object"},
        {"duplicate key", "{\"v\":1,\"v\":1}", "malformed_json", ""},
        {"nan literal", HEAD WIN "\"count\":2,\"sum\":NaN", "malformed_json", ""},
        {"huge real", HEAD WIN "\"count\":2,\"sum\":1e999,\"min\":1,\"max\":2,"
                FIRST LAST VERS, "malformed_json", ""},
        {"missing v", "{\"site\":\"S\"}", "missing_field", "v is missing"},
        {"v string", "{\"v\":\"1\"}", "bad_field", "v: not an integer"},
        {"v 2", "{\"v\":2}", "bad_field", "unsupported"},
        {"missing site", "{\"v\":1}", "missing_field", "site"},
        {"site number", "{\"v\":1,\"site\":5}", "bad_field", "site"},
        {"site empty", "{\"v\":1,\"site\":\"\"}", "bad_field", "site: length"},
        {"site NUL", "{\"v\":1,\"site\":\"a\\u0000b\"}", "malformed_json", ""},
        {"missing device", "{\"v\":1,\"site\":\"S\"}", "missing_field", "device"},
        {"missing metric", "{\"v\":1,\"site\":\"S\",\"device\":\"D\"}",
                "missing_field", "metric"},
        {"missing window", HEAD END, "missing_field", "window_ms"},
        {"window zero", HEAD "\"window_ms\":0}", "bad_field", "window_ms"},
        {"window real", HEAD "\"window_ms\":6e4}", "bad_field", "window_ms"},
        {"missing start_ms", HEAD "\"window_ms\":60000}", "missing_field",
                "start_ms"},
        {"start_ms huge", HEAD "\"window_ms\":60000,"
                "\"start_ms\":9223372036854775807}", "bad_field", "start_ms"},
        {"missing count", HEAD WIN END, "missing_field", "count"},
        {"count zero", HEAD WIN "\"count\":0}", "bad_field", "count"},
        {"count negative", HEAD WIN "\"count\":-3}", "bad_field", "count"},
        {"missing sum", HEAD WIN "\"count\":2}", "missing_field", "sum"},
        {"sum string", HEAD WIN "\"count\":2,\"sum\":\"3\"}", "bad_field", "sum"},
        {"sum null", HEAD WIN "\"count\":2,\"sum\":null}", "bad_field", "sum"},
        {"missing min", HEAD WIN "\"count\":2,\"sum\":3}", "missing_field", "min"},
        {"missing max", HEAD WIN "\"count\":2,\"sum\":3,\"min\":1}",
                "missing_field", "max"},
        {"max bool", HEAD WIN "\"count\":2,\"sum\":3,\"min\":1,\"max\":true}",
                "bad_field", "max"},
        {"missing first", HEAD WIN STATS END, "missing_field", "first"},
        {"first not object", HEAD WIN STATS "\"first\":[]}", "bad_field",
                "first: not an object"},
        {"first no ts", HEAD WIN STATS "\"first\":{}}", "missing_field",
                "first.ts_ms"},
        {"first no value", HEAD WIN STATS "\"first\":{\"ts_ms\":120000}}",
                "missing_field", "first.value"},
        {"first no origin", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1}}", "missing_field",
                "first.origin"},
        {"origin short", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1,\"origin\":[0,1]}}",
                "bad_field", "first.origin"},
        {"origin real", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1,\"origin\":[0,1,0.5]}}",
                "bad_field", "first.origin"},
        {"origin negative", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1,\"origin\":[0,-1,0]}}",
                "bad_field", "first.origin"},
        {"origin partition big", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1,"
                "\"origin\":[2147483648,1,0]}}", "bad_field", "first.origin"},
        {"missing last", HEAD WIN STATS FIRST END, "missing_field", "last"},
        {"last value string", HEAD WIN STATS FIRST
                "\"last\":{\"ts_ms\":120001,\"value\":\"x\",\"origin\":[0,6,0]}}",
                "bad_field", "last.value"},
        {"missing version", HEAD WIN STATS FIRST LAST END, "missing_field",
                "version"},
        {"version zero", HEAD WIN STATS FIRST LAST "\"version\":0}",
                "bad_field", "version"},
        {"unaligned start", HEAD "\"window_ms\":60000,\"start_ms\":120001,"
                STATS FIRST LAST VERS, "bad_field", "aligned"},
        {"start disagrees", HEAD WIN "\"start\":\"1970-01-01T00:03:00Z\","
                STATS FIRST LAST VERS, "bad_field", "start:"},
        {"start not time", HEAD WIN "\"start\":\"soon\"," STATS FIRST LAST
                VERS, "bad_field", "start:"},
        {"min over max", HEAD WIN "\"count\":2,\"sum\":3,\"min\":3,\"max\":2,"
                FIRST LAST VERS, "bad_field", "min"},
        {"first before window", HEAD WIN STATS
                "\"first\":{\"ts_ms\":119999,\"value\":1,\"origin\":[0,5,0]},"
                LAST VERS, "bad_field", "outside the window"},
        {"last after window", HEAD WIN STATS FIRST
                "\"last\":{\"ts_ms\":180000,\"value\":2,\"origin\":[0,6,0]},"
                VERS, "bad_field", "outside the window"},
        {"first after last", HEAD WIN STATS
                "\"first\":{\"ts_ms\":120000,\"value\":1,\"origin\":[0,7,0]},"
                "\"last\":{\"ts_ms\":120000,\"value\":2,\"origin\":[0,6,0]},"
                VERS, "bad_field", "first: after last"},
        {"count 1 two edges", HEAD WIN
                "\"count\":1,\"sum\":3,\"min\":1,\"max\":2," FIRST LAST VERS,
                "bad_field", "count 1"},
};

static void test_bad(void **state)
{
        tally_rollup r;
        tally_err err;

        (void)state;
        for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
                const struct bad_case *c = &bad_cases[i];

                tally_err_clear(&err);
                if (tally_rollup_decode(c->input, strlen(c->input), &r,
                                        &err) != -1)
                        fail_msg("case '%s' decoded", c->name);
                if (strcmp(err.reason, c->reason) != 0 ||
                    !strstr(err.msg, c->msg_part))
                        fail_msg("case '%s': got %s: %s", c->name, err.reason,
                                 err.msg);
        }
}

static void test_valid_text(void **state)
{
        const char *ok[] = {
                VALID,
                " " VALID "\n",
                HEAD WIN "\"future\":{\"x\":1}," STATS FIRST LAST VERS,
                HEAD WIN "\"start\":\"1970-01-01T00:02:00.000Z\"," STATS
                        FIRST LAST VERS,
        };
        tally_rollup r;
        tally_err err;

        (void)state;
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                if (tally_rollup_decode(ok[i], strlen(ok[i]), &r, &err) != 0)
                        fail_msg("case %zu: %s: %s", i, err.reason, err.msg);
                assert_int_equal(r.start_ms, 120000);
                assert_int_equal(r.count, 2);
                assert_true(r.sum == 3.0);
                assert_int_equal(r.last.pos.offset, 6);
        }
}

static void test_name_too_long(void **state)
{
        char buf[1024];
        char name[TALLY_NAME_MAX + 2];
        tally_rollup r;
        tally_err err;

        (void)state;
        memset(name, 'x', TALLY_NAME_MAX + 1);
        name[TALLY_NAME_MAX + 1] = 0;
        snprintf(buf, sizeof(buf), "{\"v\":1,\"site\":\"%s\"}", name);
        assert_int_equal(tally_rollup_decode(buf, strlen(buf), &r, &err), -1);
        assert_string_equal(err.reason, "bad_field");
        assert_non_null(strstr(err.msg, "site: length 201"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_encode_shape),
                cmocka_unit_test(test_encode_escapes_and_starts),
                cmocka_unit_test(test_f64_round_trip),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_valid_text),
                cmocka_unit_test(test_name_too_long),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
