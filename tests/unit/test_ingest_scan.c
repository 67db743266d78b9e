/* tests/unit/test_ingest_scan.c -- the fast scanner (ingest/scan.h) on
 * hand-picked inputs: what it takes (and reads exactly like jansson: every
 * number compared bit for bit with strtod), and what it must leave to the
 * jansson path. Each taken case is also decoded with jansson only and the
 * readings compared. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/decode.h"
#include "ingest/scan.h"

#define REC 1795478400000LL     /* 2026-11-24T00:00:00Z */
#define MIN (REC - 7LL * 24 * 3600 * 1000)
#define MAX (REC + 5LL * 60 * 1000)
#define SDT "\"site\":\"s\",\"device\":\"d\",\"ts\":\"2026-11-24T00:00:00Z\""

static int scan(ingest_scan *s, const char *in)
{
        return ingest_scan_run(s, in, strlen(in), MIN, MAX);
}

/* ---- numbers ----------------------------------------------------------- */

static void test_numbers(void **state)
{
        static const char *reals[] = {
                "0.1", "-0.0", "0.5", "3.4", "-14.125", "1070.75", "1e22",
                "1e23", "9007199254740993.0", "9007199254740992.0",
                "1.7976931348623157e308", "4.9e-324", "1e-400", "2.5E-3",
                "2e+3", "0.30000000000000004", "1234567890.123456789",
                "123456789012345678e-5", "0.000000000000000000000001",
                "17976931348623157e292", "1.00000000000000011102230246251565",
                "-7e-23", "8.5e22", "1.5e-22", "999999999999999999.5",
        };
        ingest_scan s = {0};
        char in[256];

        (void)state;
        for (size_t i = 0; i < sizeof(reals) / sizeof(*reals); i++) {
                double want = strtod(reals[i], NULL);

                snprintf(in, sizeof(in), "{" SDT ",\"readings\":{\"a\":%s}}",
                         reals[i]);
                if (scan(&s, in) != 0)
                        fail_msg("%s: not taken", reals[i]);
                assert_int_equal(s.n, 1);
                if (memcmp(&s.items[0].r.value, &want, sizeof(want)) != 0)
                        fail_msg("%s: %.17g, strtod %.17g", reals[i],
                                 s.items[0].r.value, want);
        }
        /* integers are exact up to 18 digits, -0 is +0 (an integer) */
        assert_int_equal(scan(&s, "{" SDT ",\"readings\":{\"a\":-0,"
                                  "\"b\":123456789012345678,\"c\":true,"
                                  "\"d\":false}}"), 0);
        assert_int_equal(s.n, 4);
        assert_false(signbit(s.items[0].r.value));
        assert_true(s.items[1].r.value == 123456789012345678.0);
        assert_true(s.items[2].r.value == 1.0);
        assert_true(s.items[3].r.value == 0.0);
        ingest_scan_free(&s);
}

/* ---- what is taken ----------------------------------------------------- */

static void test_taken(void **state)
{
        ingest_scan s = {0};

        (void)state;
        /* report, keys in any order, whitespace anywhere JSON allows */
        assert_int_equal(scan(&s, "{ \"readings\" : { \"x\" : 1 ,\"y\":2 } ,"
                                  "\"seq\":-3,\r\n\t\"ts\":1795478400000,"
                                  "\"device\":\"d\",\"site\":\"s\"}  \n"), 0);
        assert_int_equal(s.n, 2);
        assert_memory_equal(s.items[1].r.metric, "y", 1);
        assert_memory_equal(s.items[1].r.site, "s", 1);
        assert_int_equal(s.items[1].r.ts_ms, REC);
        /* array: elements numbered, indexes follow */
        assert_int_equal(scan(&s, "[{" SDT ",\"metric\":\"m\",\"value\":1},"
                                  "{" SDT ",\"readings\":{\"a\":1,\"b\":2}}]"),
                         0);
        assert_int_equal(s.n, 3);
        assert_int_equal(s.items[0].element, 0);
        assert_int_equal(s.items[2].element, 1);
        /* NDJSON, blank lines do not count */
        assert_int_equal(scan(&s, "{" SDT ",\"metric\":\"m\",\"value\":1}\n"
                                  " \n\n{" SDT ",\"metric\":\"n\",\"value\":2}"
                                  "\r\n"), 0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.items[1].element, 1);
        /* UTF-8 names, 200 bytes, time zone offsets */
        assert_int_equal(scan(&s, "{\"site\":\"caf\xc3\xa9\",\"device\":"
                                  "\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"ts\":"
                                  "\"2026-11-24T01:00:00+01:00\",\"metric\":"
                                  "\"\xc2\xa0\",\"value\":1}"), 0);
        assert_int_equal(s.items[0].r.site_len, 5);
        assert_int_equal(s.items[0].r.ts_ms, REC);
        ingest_scan_free(&s);
}

/* ---- what is left to jansson ------------------------------------------- */

static const char *const left[] = {
        /* escapes, controls, invalid or unwanted UTF-8 */
        "{" SDT ",\"metric\":\"a\\u0041\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\\\"\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\x7f\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xc2\x85\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xc0\xaf\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xe0\x80\xaf\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xed\xa0\x80\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xf4\x90\x80\x80\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xf0\x8f\xbf\xbf\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xff\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\xe2\x82\",\"value\":1}",
        "{" SDT ",\"metric\":\"a\t\",\"value\":1}",
        /* keys */
        "{" SDT ",\"metric\":\"m\",\"value\":1,\"unit\":\"C\"}",
        "{" SDT ",\"metric\":\"m\",\"value\":1,\"value\":2}",
        "{" SDT ",\"readings\":{\"a\":1,\"a\":2}}",
        "{" SDT ",\"metric\":\"m\",\"value\":1,\"readings\":{\"a\":1}}",
        "{" SDT ",\"readings\":{}}",
        "{" SDT ",\"metric\":\"m\"}",
        "{\"site\":\"s\",\"ts\":1795478400000,\"metric\":\"m\",\"value\":1}",
        "{}",
        /* values */
        "{" SDT ",\"metric\":\"m\",\"value\":null}",
        "{" SDT ",\"metric\":\"m\",\"value\":\"1\"}",
        "{" SDT ",\"metric\":\"m\",\"value\":[1]}",
        "{" SDT ",\"metric\":\"m\",\"value\":01}",
        "{" SDT ",\"metric\":\"m\",\"value\":1.}",
        "{" SDT ",\"metric\":\"m\",\"value\":.5}",
        "{" SDT ",\"metric\":\"m\",\"value\":1e}",
        "{" SDT ",\"metric\":\"m\",\"value\":+1}",
        "{" SDT ",\"metric\":\"m\",\"value\":1e400}",
        "{" SDT ",\"metric\":\"m\",\"value\":9223372036854775807}",
        "{" SDT ",\"metric\":\"m\",\"value\":truex}",
        "{" SDT ",\"metric\":\"m\",\"value\":tru}",
        "{" SDT ",\"metric\":\"m\",\"value\":NaN}",
        "{" SDT ",\"metric\":\"\",\"value\":1}",
        "{" SDT ",\"seq\":1.0,\"metric\":\"m\",\"value\":1}",
        /* time */
        "{\"site\":\"s\",\"device\":\"d\",\"ts\":1795478400000.0,"
        "\"metric\":\"m\",\"value\":1}",
        "{\"site\":\"s\",\"device\":\"d\",\"ts\":\"2026-11-24\","
        "\"metric\":\"m\",\"value\":1}",
        "{\"site\":\"s\",\"device\":\"d\",\"ts\":\"2026-11-24T00:05:00.001Z\","
        "\"metric\":\"m\",\"value\":1}",
        "{\"site\":\"s\",\"device\":\"d\",\"ts\":1790000000000,"
        "\"metric\":\"m\",\"value\":1}",
        /* structure */
        "[]",
        "[{" SDT ",\"metric\":\"m\",\"value\":1},]",
        "[{" SDT ",\"metric\":\"m\",\"value\":1}] x",
        "[{" SDT ",\"metric\":\"m\",\"value\":1},1]",
        "{" SDT ",\"metric\":\"m\",\"value\":1} x",
        "{" SDT ",\"metric\":\"m\",\"value\":1}{" SDT ",\"metric\":\"m\","
        "\"value\":1}",
        "{" SDT ",\"metric\":\"m\",\"value\":1}\n{" SDT ",\"metric\":\"m\","
        "\"value\":1} x",
        "{" SDT ",\n\"metric\":\"m\",\"value\":1}\n{" SDT ",\"metric\":\"m\","
        "\"value\":1}",
        "{" SDT ",\"metric\":\"m\",\"value\":1,}",
        "{" SDT ",\"metric\":\"m\",\"value\":1",
};

static void test_left(void **state)
{
        ingest_scan s = {0};
        char name[256];

        (void)state;
        for (size_t i = 0; i < sizeof(left) / sizeof(*left); i++)
                if (scan(&s, left[i]) == 0)
                        fail_msg("taken: %s", left[i]);
        /* 201-byte name */
        memset(name, 'n', 201);
        name[201] = '\0';
        {
                char in[512];

                snprintf(in, sizeof(in), "{" SDT ",\"metric\":\"%s\","
                         "\"value\":1}", name);
                assert_int_equal(scan(&s, in), -1);
                snprintf(in, sizeof(in), "{" SDT ",\"metric\":\"%.200s\","
                         "\"value\":1}", name);
                assert_int_equal(scan(&s, in), 0);
        }
        /* a NUL byte anywhere */
        {
                static const char nul[] = "{" SDT ",\"metric\":\"m\0\","
                                          "\"value\":1}";

                assert_int_equal(ingest_scan_run(&s, nul, sizeof(nul) - 1,
                                                 MIN, MAX), -1);
        }
        ingest_scan_free(&s);
}

/* ---- the decoder's modes agree on what the scanner takes ---------------- */

struct rec {
        char text[4096];
        size_t len;
};

static int rec_cb(void *opaque, const ingest_event *ev)
{
        struct rec *r = opaque;
        const tally_reading *x = ev->reading;

        assert_int_equal(ev->kind, INGEST_EV_READING);
        r->len += (size_t)snprintf(r->text + r->len, sizeof(r->text) - r->len,
                                   "%d/%d %.*s %.*s %.*s %lld %a\n", ev->index,
                                   ev->element, x->site_len, x->site,
                                   x->device_len, x->device, x->metric_len,
                                   x->metric, (long long)x->ts_ms, x->value);
        return 0;
}

static void test_modes(void **state)
{
        static const char *const in[] = {
                "{" SDT ",\"seq\":1,\"readings\":{\"t\":-15.25,\"h\":51.5,"
                "\"p\":1070.75,\"door\":false}}",
                "[{" SDT ",\"metric\":\"m\",\"value\":1},{" SDT ",\"readings\":"
                "{\"a\":0.1,\"b\":2e-3}}]",
                "{" SDT ",\"metric\":\"m\",\"value\":1}\n\n{" SDT ",\"metric\":"
                "\"n\",\"value\":true}\n",
        };
        ingest_decoder *dj = ingest_decoder_new(NULL);
        ingest_decoder *df = ingest_decoder_new(NULL);
        tally_err err;

        (void)state;
        ingest_decoder_set_mode(dj, INGEST_DECODE_JANSSON);
        ingest_decoder_set_mode(df, INGEST_DECODE_FAST);
        for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
                struct rec a = {{0}, 0}, b = {{0}, 0};

                assert_int_equal(ingest_decode(dj, in[i], strlen(in[i]), REC,
                                               rec_cb, &a, &err), 0);
                assert_int_equal(ingest_decode(df, in[i], strlen(in[i]), REC,
                                               rec_cb, &b, &err), 0);
                assert_true(a.len > 0);
                assert_string_equal(a.text, b.text);
        }
        /* fast only refuses what it leaves, with no event */
        {
                struct rec b = {{0}, 0};

                assert_int_equal(ingest_decode(df, left[0], strlen(left[0]),
                                               REC, rec_cb, &b, &err), -1);
                assert_string_equal(err.reason, "not_handled");
                assert_int_equal(b.len, 0);
        }
        ingest_decoder_free(dj);
        ingest_decoder_free(df);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_numbers),
                cmocka_unit_test(test_taken),
                cmocka_unit_test(test_left),
                cmocka_unit_test(test_modes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
