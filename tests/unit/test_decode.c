/* tests/unit/test_decode.c -- raw message decoder, table-driven. Every
 * case runs on the plain bytes and again gzip-compressed, and must give
 * the same events. An event is rendered as one line:
 *   <index>/<element> R <site> <device> <metric> <ts_ms> <value %g>
 *   <index>/<element> X <reason> <element_text> */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include "common/buf.h"
#include "ingest/decode.h"

#define REC 1704067200000LL     /* record time: 2024-01-01T00:00:00Z */

/* building blocks for inputs */
#define TS "\"ts\":\"2024-01-01T00:00:00Z\""
#define SD "\"site\":\"S\",\"device\":\"D\""
#define ONE(m, v) "{" SD ",\"metric\":\"" m "\",\"value\":" v "," TS "}"
#define ONE_TS(ts) "{" SD ",\"metric\":\"m\",\"value\":1,\"ts\":" ts "}"
#define REP(r) "{" SD "," TS ",\"seq\":3,\"readings\":{" r "}}"
/* building blocks for expected events */
#define R(ie, m, v) ie " R S D " m " 1704067200000 " v "\n"
#define RT(ie, ts) ie " R S D m " ts " 1\n"
#define X(ie, reason, text) ie " X " reason " " text "\n"
/* text of a rejected reading of a report (REP with metric m, value v) */
#define REPX(m, v) "{" SD "," TS ",\"metric\":\"" m "\",\"value\":" v "}"

struct dcase {
        const char *name;
        const char *in;
        const char *whole;      /* reason of a whole-message reject */
        const char *events;
};

static const struct dcase cases[] = {
        /* ---- shapes ---- */
        {"single", ONE("temp", "3.4"), NULL, R("0/0", "temp", "3.4")},
        {"single design example",
         "{\"site\":\"DAL-07\",\"device\":\"cooler-17\",\"metric\":"
         "\"temperature_c\",\"value\":3.4,\"ts\":\"2024-01-01T00:01:03.120Z\"}",
         NULL, "0/0 R DAL-07 cooler-17 temperature_c 1704067263120 3.4\n"},
        {"report", REP("\"t\":3.4,\"door\":0,\"on\":true,\"off\":false"), NULL,
         R("0/0", "t", "3.4") R("1/0", "door", "0") R("2/0", "on", "1")
         R("3/0", "off", "0")},
        {"report without seq",
         "{" SD "," TS ",\"readings\":{\"a\":1}}", NULL, R("0/0", "a", "1")},
        {"array", "[" ONE("a", "1") "," REP("\"b\":2,\"c\":3") ","
         ONE("d", "4") "]", NULL,
         R("0/0", "a", "1") R("1/1", "b", "2") R("2/1", "c", "3")
         R("3/2", "d", "4")},
        {"ndjson", ONE("a", "1") "\n" REP("\"b\":2,\"c\":3") "\n"
         ONE("d", "4") "\n", NULL,
         R("0/0", "a", "1") R("1/1", "b", "2") R("2/1", "c", "3")
         R("3/2", "d", "4")},
        {"ndjson blank lines skipped, not numbered",
         "\n \n" ONE("a", "1") "\n\n  \t\n" ONE("b", "2") "\n\n", NULL,
         R("0/0", "a", "1") R("1/1", "b", "2")},
        {"ndjson crlf", ONE("a", "1") "\r\n" ONE("b", "2") "\r\n", NULL,
         R("0/0", "a", "1") R("1/1", "b", "2")},
        {"ndjson no final newline", ONE("a", "1") "\n" ONE("b", "2"), NULL,
         R("0/0", "a", "1") R("1/1", "b", "2")},
        {"leading and trailing whitespace", " \n\t" ONE("a", "1") " \n ",
         NULL, R("0/0", "a", "1")},
        {"pretty printed object",
         "{\n  \"site\": \"S\",\n  \"device\": \"D\",\n  \"metric\": \"a\",\n"
         "  \"value\": 1,\n  " TS "\n}\n", NULL, R("0/0", "a", "1")},
        {"pretty printed array", "[\n " ONE("a", "1") ",\n " ONE("b", "2")
         "\n]", NULL, R("0/0", "a", "1") R("1/1", "b", "2")},
        {"unknown fields ignored",
         "{\"x\":[1,{}]," SD ",\"metric\":\"a\",\"value\":1,\"unit\":\"C\","
         TS "}", NULL, R("0/0", "a", "1")},
        {"report fields metric/value ignored",
         "{" SD "," TS ",\"metric\":\"zz\",\"value\":9,\"readings\":"
         "{\"a\":1}}", NULL, R("0/0", "a", "1")},
        {"utf-8 names", "{\"site\":\"Z\\u00fcrich\",\"device\":\"D\","
         "\"metric\":\"\xc3\xa9t\xc3\xa9\",\"value\":1," TS "}", NULL,
         "0/0 R Z\xc3\xbcrich D \xc3\xa9t\xc3\xa9 1704067200000 1\n"},
        {"duplicate key: last wins, first position",
         "{" SD "," TS ",\"readings\":{\"a\":1,\"b\":2,\"a\":3}}", NULL,
         R("0/0", "a", "3") R("1/0", "b", "2")},

        /* ---- values ---- */
        {"value integer", ONE("a", "-17"), NULL, R("0/0", "a", "-17")},
        {"value big integer", ONE("a", "9223372036854775807"), NULL,
         R("0/0", "a", "9.22337e+18")},
        {"value exponent", ONE("a", "1.5e300"), NULL,
         R("0/0", "a", "1.5e+300")},
        {"value true", ONE("a", "true"), NULL, R("0/0", "a", "1")},
        {"value false", ONE("a", "false"), NULL, R("0/0", "a", "0")},
        {"value string", ONE("a", "\"3.4\""), NULL,
         X("0/0", "bad_value", ONE("a", "\"3.4\""))},
        {"value null", ONE("a", "null"), NULL,
         X("0/0", "bad_value", ONE("a", "null"))},
        {"value object", ONE("a", "{}"), NULL,
         X("0/0", "bad_value", ONE("a", "{}"))},
        {"value array", ONE("a", "[1]"), NULL,
         X("0/0", "bad_value", ONE("a", "[1]"))},
        {"value overflow is malformed json", ONE("a", "1e400"),
         "malformed_json", ""},
        {"integer beyond int64 is malformed json",
         ONE("a", "9223372036854775808"), "malformed_json", ""},
        {"NaN literal", ONE("a", "NaN"), "malformed_json", ""},

        /* ---- fields ---- */
        {"missing site", "{\"device\":\"D\",\"metric\":\"a\",\"value\":1,"
         TS "}", NULL, X("0/0", "missing_field",
         "{\"device\":\"D\",\"metric\":\"a\",\"value\":1," TS "}")},
        {"missing device", "{\"site\":\"S\",\"metric\":\"a\",\"value\":1,"
         TS "}", NULL, X("0/0", "missing_field",
         "{\"site\":\"S\",\"metric\":\"a\",\"value\":1," TS "}")},
        {"missing metric", "{" SD ",\"value\":1," TS "}", NULL,
         X("0/0", "missing_field", "{" SD ",\"value\":1," TS "}")},
        {"missing value", "{" SD ",\"metric\":\"a\"," TS "}", NULL,
         X("0/0", "missing_field", "{" SD ",\"metric\":\"a\"," TS "}")},
        {"missing ts", "{" SD ",\"metric\":\"a\",\"value\":1}", NULL,
         X("0/0", "missing_field", "{" SD ",\"metric\":\"a\",\"value\":1}")},
        {"site not a string",
         "{\"site\":7,\"device\":\"D\",\"metric\":\"a\",\"value\":1," TS "}",
         NULL, X("0/0", "bad_field", "{\"site\":7,\"device\":\"D\","
         "\"metric\":\"a\",\"value\":1," TS "}")},
        {"device null",
         "{\"site\":\"S\",\"device\":null,\"metric\":\"a\",\"value\":1," TS
         "}", NULL, X("0/0", "bad_field", "{\"site\":\"S\",\"device\":null,"
         "\"metric\":\"a\",\"value\":1," TS "}")},
        {"empty metric", ONE("", "1"), NULL,
         X("0/0", "bad_field", ONE("", "1"))},
        {"control character", ONE("a\\u0001", "1"), NULL,
         X("0/0", "bad_field", ONE("a\\u0001", "1"))},
        {"newline in name", ONE("a\\nb", "1"), NULL,
         X("0/0", "bad_field", ONE("a\\nb", "1"))},
        {"DEL in name", ONE("a\\u007f", "1"), NULL,
         X("0/0", "bad_field", ONE("a\x7f", "1"))},
        {"C1 control in name", ONE("a\\u0085", "1"), NULL,
         X("0/0", "bad_field", ONE("a\xc2\x85", "1"))},
        {"seq not an integer", "{" SD "," TS ",\"seq\":\"x\",\"readings\":"
         "{\"a\":1}}", NULL, X("0/0", "bad_field", "{" SD "," TS
         ",\"seq\":\"x\",\"readings\":{\"a\":1}}")},
        {"readings not an object", "{" SD "," TS ",\"readings\":[1,2]}",
         NULL, X("0/0", "bad_field", "{" SD "," TS ",\"readings\":[1,2]}")},
        {"readings null", "{" SD "," TS ",\"readings\":null}",
         NULL, X("0/0", "bad_field", "{" SD "," TS ",\"readings\":null}")},
        {"readings empty", "{" SD "," TS ",\"readings\":{}}",
         NULL, X("0/0", "bad_field", "{" SD "," TS ",\"readings\":{}}")},
        {"report missing site", "{\"device\":\"D\"," TS ",\"readings\":"
         "{\"a\":1,\"b\":2}}", NULL, X("0/0", "missing_field",
         "{\"device\":\"D\"," TS ",\"readings\":{\"a\":1,\"b\":2}}")},
        {"report with bad readings",
         REP("\"a\":1,\"b\":\"x\",\"\":2,\"c\":null,\"d\":4"), NULL,
         R("0/0", "a", "1")
         X("1/0", "bad_value", REPX("b", "\"x\""))
         X("2/0", "bad_field", REPX("", "2"))
         X("3/0", "bad_value", REPX("c", "null"))
         R("4/0", "d", "4")},

        /* ---- timestamps ---- */
        {"ts offset +05:30", ONE_TS("\"2024-01-01T05:30:00+05:30\""), NULL,
         RT("0/0", "1704067200000")},
        {"ts offset -08:00", ONE_TS("\"2023-12-31T16:00:00.250-08:00\""),
         NULL, RT("0/0", "1704067200250")},
        {"ts 9 digit fraction", ONE_TS("\"2023-12-31T23:59:59.123456789Z\""),
         NULL, RT("0/0", "1704067199123")},
        {"ts integer ms", ONE_TS("1704067199999"), NULL,
         RT("0/0", "1704067199999")},
        {"ts float", ONE_TS("1704067199999.0"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("1704067199999.0"))},
        {"ts null", ONE_TS("null"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("null"))},
        {"ts bool", ONE_TS("true"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("true"))},
        {"ts garbage", ONE_TS("\"yesterday\""), NULL,
         X("0/0", "bad_timestamp", ONE_TS("\"yesterday\""))},
        {"ts no offset", ONE_TS("\"2024-01-01T00:00:00\""), NULL,
         X("0/0", "bad_timestamp", ONE_TS("\"2024-01-01T00:00:00\""))},
        {"ts invalid leap day", ONE_TS("\"2023-02-29T00:00:00Z\""), NULL,
         X("0/0", "bad_timestamp", ONE_TS("\"2023-02-29T00:00:00Z\""))},
        /* bounds: [REC - 7 d, REC + 5 min] inclusive */
        {"ts oldest allowed", ONE_TS("1703462400000"), NULL,
         RT("0/0", "1703462400000")},
        {"ts too old", ONE_TS("1703462399999"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("1703462399999"))},
        {"ts newest allowed", ONE_TS("\"2024-01-01T00:05:00Z\""), NULL,
         RT("0/0", "1704067500000")},
        {"ts too new", ONE_TS("\"2024-01-01T00:05:00.001Z\""), NULL,
         X("0/0", "bad_timestamp", ONE_TS("\"2024-01-01T00:05:00.001Z\""))},
        {"ts epoch seconds", ONE_TS("1704067200"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("1704067200"))},
        {"ts huge", ONE_TS("-9223372036854775808"), NULL,
         X("0/0", "bad_timestamp", ONE_TS("-9223372036854775808"))},
        {"report ts out of bounds: checked per reading, after the value",
         "{" SD ",\"ts\":1703462399999,\"readings\":{\"a\":1,\"b\":\"x\","
         "\"c\":2}}", NULL,
         X("0/0", "bad_timestamp", "{" SD ",\"ts\":1703462399999,"
           "\"metric\":\"a\",\"value\":1}")
         X("1/0", "bad_value", "{" SD ",\"ts\":1703462399999,"
           "\"metric\":\"b\",\"value\":\"x\"}")
         X("2/0", "bad_timestamp", "{" SD ",\"ts\":1703462399999,"
           "\"metric\":\"c\",\"value\":2}")},
        {"single: bad value before ts bounds",
         "{" SD ",\"metric\":\"m\",\"value\":null,\"ts\":0}", NULL,
         X("0/0", "bad_value",
           "{" SD ",\"metric\":\"m\",\"value\":null,\"ts\":0}")},
        {"single: unparsable ts before value",
         "{" SD ",\"metric\":\"m\",\"value\":null,\"ts\":\"x\"}", NULL,
         X("0/0", "bad_timestamp",
           "{" SD ",\"metric\":\"m\",\"value\":null,\"ts\":\"x\"}")},
        {"report bad ts: one index", "{" SD ",\"ts\":\"x\",\"readings\":"
         "{\"a\":1,\"b\":2}}", NULL, X("0/0", "bad_timestamp",
         "{" SD ",\"ts\":\"x\",\"readings\":{\"a\":1,\"b\":2}}")},

        /* ---- index numbering with rejects mixed in ---- */
        {"array mixed",
         "[" ONE("a", "1") ",5,{\"device\":\"D\"},"
         REP("\"b\":2,\"c\":\"x\",\"d\":3") ",{\"readings\":[1]},\"s\","
         "[" ONE("e", "5") "]," ONE("f", "6") "]", NULL,
         R("0/0", "a", "1")
         X("1/1", "bad_field", "5")
         X("2/2", "missing_field", "{\"device\":\"D\"}")
         R("3/3", "b", "2")
         X("4/3", "bad_value", REPX("c", "\"x\""))
         R("5/3", "d", "3")
         X("6/4", "missing_field", "{\"readings\":[1]}")
         X("7/5", "bad_field", "\"s\"")
         X("8/6", "bad_field", "[" ONE("e", "5") "]")
         R("9/7", "f", "6")},
        {"ndjson mixed",
         ONE("a", "1") "\n{\"site\":\n\n" REP("\"b\":2,\"c\":3") "\n"
         "[1]\n3\n" ONE("d", "true") " x\n" ONE_TS("0") "\n" ONE("e", "5"),
         NULL,
         R("0/0", "a", "1")
         X("1/1", "malformed_json", "{\"site\":")
         R("2/2", "b", "2") R("3/2", "c", "3")
         X("4/3", "bad_field", "[1]")
         X("5/4", "malformed_json", "3")
         X("6/5", "malformed_json", ONE("d", "true") " x")
         X("7/6", "bad_timestamp", ONE_TS("0"))
         R("8/7", "e", "5")},
        {"ndjson first line malformed", "{bad\n" ONE("a", "1") "\n", NULL,
         X("0/0", "malformed_json", "{bad") R("1/1", "a", "1")},
        {"ndjson first line has trailing data",
         ONE("a", "1") " {}\n" ONE("b", "2"), NULL,
         X("0/0", "malformed_json", ONE("a", "1") " {}")
         R("1/1", "b", "2")},
        {"ndjson malformed line keeps its cr", ONE("a", "1") "\n{x\r\n",
         NULL, R("0/0", "a", "1") X("1/1", "malformed_json", "{x\r")},

        /* ---- whole-message rejects ---- */
        {"empty", "", "empty", ""},
        {"whitespace only", " \r\n\t\n", "empty", ""},
        {"empty array", " [ ] ", "empty", ""},
        {"bare number", "42", "malformed_json", ""},
        {"bare string", "\"x\"", "malformed_json", ""},
        {"garbage", "hello", "malformed_json", ""},
        {"array truncated", "[" ONE("a", "1"), "malformed_json", ""},
        {"array trailing comma", "[" ONE("a", "1") ",]", "malformed_json",
         ""},
        {"array trailing data", "[" ONE("a", "1") "] x", "malformed_json",
         ""},
        {"array then ndjson", "[" ONE("a", "1") "]\n" ONE("b", "1"),
         "malformed_json", ""},
        {"object truncated", "{\"site\":\"S\"", "malformed_json", ""},
        {"object trailing data", ONE("a", "1") " x", "malformed_json", ""},
        {"two objects one line", ONE("a", "1") ONE("b", "1"),
         "malformed_json", ""},
        {"invalid utf-8", "{\"site\":\"\xff\"}", "malformed_json", ""},
        {"NUL escape", ONE("a\\u0000", "1"), "malformed_json", ""},
};

struct sink {
        tally_buf out;
        int32_t next_index;
        int stop_after;         /* > 0: return -1 on that event */
        int seen;
};

static int sink_cb(void *opaque, const ingest_event *ev)
{
        struct sink *s = opaque;

        /* indexes are consecutive from 0: every event uses exactly one */
        assert_int_equal(ev->index, s->next_index);
        s->next_index++;
        if (ev->kind == INGEST_EV_READING) {
                const tally_reading *r = ev->reading;

                assert_non_null(r);
                /* strings are lengths, not NUL-terminated (the fast
                 * path points into the message), and hold no NUL */
                assert_null(memchr(r->site, '\0', r->site_len));
                assert_null(memchr(r->device, '\0', r->device_len));
                assert_null(memchr(r->metric, '\0', r->metric_len));
                tally_buf_printf(&s->out, "%d/%d R %.*s %.*s %.*s %lld %g\n",
                                 ev->index, ev->element, r->site_len, r->site,
                                 r->device_len, r->device, r->metric_len,
                                 r->metric, (long long)r->ts_ms, r->value);
        } else {
                assert_int_equal(ev->kind, INGEST_EV_REJECT);
                assert_non_null(ev->reason);
                assert_non_null(ev->detail);
                assert_true(ev->detail[0] != '\0');
                assert_non_null(ev->element_text);
                tally_buf_printf(&s->out, "%d/%d X %s %.*s\n", ev->index,
                                 ev->element, ev->reason,
                                 (int)ev->element_len, ev->element_text);
        }
        if (++s->seen == s->stop_after)
                return -1;
        return 0;
}

static void gzip_bytes(const void *in, size_t n, tally_buf *out)
{
        z_stream zs;

        memset(&zs, 0, sizeof(zs));
        assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                      Z_DEFAULT_STRATEGY), Z_OK);
        tally_buf_reserve(out, deflateBound(&zs, n));
        zs.next_in = (unsigned char *)in;
        zs.avail_in = (uInt)n;
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)(out->cap - out->len);
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        out->len += zs.total_out;
        deflateEnd(&zs);
}

/* Decodes in; returns the rc, events in s->out, err filled. */
static int run(ingest_decoder *d, const void *in, size_t n, struct sink *s,
               tally_err *err)
{
        tally_buf_reset(&s->out);
        s->next_index = 0;
        s->seen = 0;
        int rc = ingest_decode(d, in, n, REC, sink_cb, s, err);
        tally_buf_putc(&s->out, '\0');
        s->out.len--;
        return rc;
}

static void check_case(ingest_decoder *d, const struct dcase *c,
                       const void *in, size_t n, const char *how)
{
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        tally_err err;
        int rc = run(d, in, n, &s, &err);

        if (c->whole) {
                if (rc != -1 || strcmp(err.reason, c->whole) != 0)
                        fail_msg("%s (%s): rc=%d reason=%s, want %s", c->name,
                                 how, rc, err.reason, c->whole);
                assert_true(err.msg[0] != '\0');
        } else if (rc != 0) {
                fail_msg("%s (%s): rc=-1 reason=%s msg=%s", c->name, how,
                         err.reason, err.msg);
        }
        if (strcmp((char *)s.out.data, c->events) != 0)
                fail_msg("%s (%s): events\n%s\nwant\n%s", c->name, how,
                         (char *)s.out.data, c->events);
        tally_buf_free(&s.out);
}

/* Every case in the default mode (plain and gzip), with jansson only,
 * and with the fast scanner only where it takes the message. */
static void test_cases(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        ingest_decoder *dj = ingest_decoder_new(NULL);
        ingest_decoder *df = ingest_decoder_new(NULL);
        int fast = 0;

        (void)state;
        assert_non_null(d);
        assert_non_null(dj);
        assert_non_null(df);
        ingest_decoder_set_mode(dj, INGEST_DECODE_JANSSON);
        ingest_decoder_set_mode(df, INGEST_DECODE_FAST);
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                const struct dcase *c = &cases[i];
                tally_buf gz = TALLY_BUF_INIT;
                struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
                tally_err err;

                check_case(d, c, c->in, strlen(c->in), "plain");
                check_case(dj, c, c->in, strlen(c->in), "jansson");
                if (run(df, c->in, strlen(c->in), &s, &err) == 0) {
                        check_case(df, c, c->in, strlen(c->in), "fast");
                        fast++;
                } else {
                        /* not taken, or refused before the scanner */
                        if (strcmp(err.reason, "not_handled") != 0)
                                check_case(df, c, c->in, strlen(c->in),
                                           "fast");
                        assert_int_equal(s.seen, 0);
                }
                gzip_bytes(c->in, strlen(c->in), &gz);
                check_case(d, c, gz.data, gz.len, "gzip");
                tally_buf_free(&gz);
                tally_buf_free(&s.out);
        }
        /* the scanner takes the plain good cases */
        assert_true(fast >= 10);
        ingest_decoder_free(d);
        ingest_decoder_free(dj);
        ingest_decoder_free(df);
}

/* ---- gzip specifics ---------------------------------------------------- */

static void test_gzip_broken(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        const char *in = "[" ONE("a", "1") "," ONE("b", "2") "]";
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        tally_buf gz = TALLY_BUF_INIT;
        tally_err err;
        unsigned char *bad;

        (void)state;
        gzip_bytes(in, strlen(in), &gz);

        /* truncated in the middle, and by the trailer only */
        assert_int_equal(run(d, gz.data, gz.len / 2, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        assert_int_equal(run(d, gz.data, gz.len - 4, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        /* only the magic */
        assert_int_equal(run(d, gz.data, 2, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        /* corrupt crc */
        bad = malloc(gz.len + 16);
        memcpy(bad, gz.data, gz.len);
        bad[gz.len - 6] ^= 0xff;
        assert_int_equal(run(d, bad, gz.len, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        /* corrupt deflate data */
        memcpy(bad, gz.data, gz.len);
        bad[12] ^= 0x55;
        bad[13] ^= 0xaa;
        assert_int_equal(run(d, bad, gz.len, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        /* trailing garbage after the member */
        memcpy(bad, gz.data, gz.len);
        memcpy(bad + gz.len, "garbage", 7);
        assert_int_equal(run(d, bad, gz.len + 7, &s, &err), -1);
        assert_string_equal(err.reason, "decompression_failed");
        /* nothing was emitted on any of these */
        assert_string_equal((char *)s.out.data, "");

        /* the decoder is fine afterwards */
        assert_int_equal(run(d, gz.data, gz.len, &s, &err), 0);
        assert_string_equal((char *)s.out.data,
                            R("0/0", "a", "1") R("1/1", "b", "2"));
        free(bad);
        tally_buf_free(&gz);
        tally_buf_free(&s.out);
        ingest_decoder_free(d);
}

/* two concatenated gzip members decode as their concatenation */
static void test_gzip_members(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        tally_buf gz = TALLY_BUF_INIT;
        const char *a = ONE("a", "1") "\n", *b = ONE("b", "2") "\n";
        tally_err err;

        (void)state;
        gzip_bytes(a, strlen(a), &gz);
        gzip_bytes(b, strlen(b), &gz);
        assert_int_equal(run(d, gz.data, gz.len, &s, &err), 0);
        assert_string_equal((char *)s.out.data,
                            R("0/0", "a", "1") R("1/1", "b", "2"));
        tally_buf_free(&gz);
        tally_buf_free(&s.out);
        ingest_decoder_free(d);
}

/* ---- limits ------------------------------------------------------------ */

static void test_limits(void **state)
{
        ingest_limits lim;
        ingest_decoder *d;
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        tally_buf big = TALLY_BUF_INIT, gz = TALLY_BUF_INIT;
        tally_err err;
        const char *one = ONE("a", "1");

        (void)state;
        ingest_limits_default(&lim);
        assert_int_equal(lim.max_message, 1 << 20);
        assert_int_equal(lim.max_inflated, 16 << 20);
        assert_int_equal(lim.max_past_ms, 604800000);
        assert_int_equal(lim.max_future_ms, 300000);

        /* max_message: exactly the limit is fine */
        lim.max_message = strlen(one);
        d = ingest_decoder_new(&lim);
        assert_int_equal(run(d, one, strlen(one), &s, &err), 0);
        assert_int_equal(run(d, one, strlen(one) + 1, &s, &err), -1);
        assert_string_equal(err.reason, "too_large");
        ingest_decoder_free(d);

        /* max_inflated: a 3 MiB NDJSON gzips small; exactly the limit is
         * fine, one byte less is too_large */
        ingest_limits_default(&lim);
        while (big.len < (3u << 20)) {
                tally_buf_append(&big, one, strlen(one));
                tally_buf_putc(&big, '\n');
        }
        gzip_bytes(big.data, big.len, &gz);
        assert_true(gz.len < lim.max_message);
        lim.max_inflated = big.len;
        d = ingest_decoder_new(&lim);
        assert_int_equal(run(d, gz.data, gz.len, &s, &err), 0);
        assert_int_equal(s.next_index, (int32_t)(big.len / (strlen(one) + 1)));
        ingest_decoder_free(d);
        lim.max_inflated = big.len - 1;
        d = ingest_decoder_new(&lim);
        assert_int_equal(run(d, gz.data, gz.len, &s, &err), -1);
        assert_string_equal(err.reason, "too_large");
        assert_int_equal(s.seen, 0);
        /* and a small one still works on the same decoder */
        tally_buf_reset(&gz);
        gzip_bytes(one, strlen(one), &gz);
        assert_int_equal(run(d, gz.data, gz.len, &s, &err), 0);
        assert_string_equal((char *)s.out.data, R("0/0", "a", "1"));
        ingest_decoder_free(d);

        /* custom time bounds */
        ingest_limits_default(&lim);
        lim.max_past_ms = 0;
        lim.max_future_ms = 0;
        d = ingest_decoder_new(&lim);
        assert_int_equal(run(d, one, strlen(one), &s, &err), 0);
        assert_string_equal((char *)s.out.data, R("0/0", "a", "1"));
        tally_buf_reset(&s.out);
        s.next_index = 0;
        assert_int_equal(ingest_decode(d, one, strlen(one), REC + 1, sink_cb,
                                       &s, &err), 0);
        tally_buf_putc(&s.out, '\0');
        assert_string_equal((char *)s.out.data,
                            X("0/0", "bad_timestamp", ONE("a", "1")));
        ingest_decoder_free(d);

        /* bounds saturate near the int64 limits instead of wrapping */
        d = ingest_decoder_new(NULL);
        {
                const char *lo = ONE_TS("-9223372036854775808");
                const char *hi = ONE_TS("9223372036854775807");

                tally_buf_reset(&s.out);
                s.next_index = 0;
                assert_int_equal(ingest_decode(d, lo, strlen(lo),
                                               INT64_MIN + 5, sink_cb, &s,
                                               &err), 0);
                s.next_index = 0;
                assert_int_equal(ingest_decode(d, hi, strlen(hi),
                                               INT64_MAX - 5, sink_cb, &s,
                                               &err), 0);
                tally_buf_putc(&s.out, '\0');
                assert_string_equal((char *)s.out.data,
                                    RT("0/0", "-9223372036854775808")
                                    RT("0/0", "9223372036854775807"));
        }
        ingest_decoder_free(d);
        tally_buf_free(&big);
        tally_buf_free(&gz);
        tally_buf_free(&s.out);
}

static void test_name_length(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        char name[TALLY_NAME_MAX + 2], in[600];
        tally_err err;

        (void)state;
        memset(name, 'n', sizeof(name));
        name[TALLY_NAME_MAX] = '\0';
        snprintf(in, sizeof(in), "{\"site\":\"%s\",\"device\":\"D\","
                 "\"metric\":\"m\",\"value\":1," TS "}", name);
        assert_int_equal(run(d, in, strlen(in), &s, &err), 0);
        assert_non_null(strstr((char *)s.out.data, " R "));
        name[TALLY_NAME_MAX] = 'n';
        name[TALLY_NAME_MAX + 1] = '\0';
        snprintf(in, sizeof(in), "{\"site\":\"S\",\"device\":\"%s\","
                 "\"metric\":\"m\",\"value\":1," TS "}", name);
        assert_int_equal(run(d, in, strlen(in), &s, &err), 0);
        assert_non_null(strstr((char *)s.out.data, "0/0 X bad_field {"));
        snprintf(in, sizeof(in), "{" SD "," TS ",\"readings\":{\"%s\":1,"
                 "\"ok\":2}}", name);
        assert_int_equal(run(d, in, strlen(in), &s, &err), 0);
        assert_non_null(strstr((char *)s.out.data, "0/0 X bad_field {"));
        assert_non_null(strstr((char *)s.out.data, R("1/0", "ok", "2")));
        tally_buf_free(&s.out);
        ingest_decoder_free(d);
}

/* a callback returning -1 stops decoding: rc -1, reason callback */
static void test_callback_stop(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        struct sink s = {TALLY_BUF_INIT, 0, 2, 0};
        const char *in[] = {
                "[" ONE("a", "1") ",5," ONE("b", "2") "]",
                ONE("a", "1") "\n{x\n" ONE("b", "2"),
                REP("\"a\":1,\"b\":\"x\",\"c\":3"),
        };
        tally_err err;

        (void)state;
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(run(d, in[i], strlen(in[i]), &s, &err), -1);
                assert_string_equal(err.reason, "callback");
                assert_int_equal(s.seen, 2);
        }
        tally_buf_free(&s.out);
        ingest_decoder_free(d);
}

/* many elements: indexes stay consecutive, elements follow the lines */
static void test_many(void **state)
{
        ingest_decoder *d = ingest_decoder_new(NULL);
        struct sink s = {TALLY_BUF_INIT, 0, 0, 0};
        tally_buf in = TALLY_BUF_INIT;
        tally_err err;
        int n = 5000;

        (void)state;
        for (int i = 0; i < n; i++) {
                if (i % 7 == 3)
                        tally_buf_printf(&in, "{broken\n");
                else
                        tally_buf_printf(&in, "%s\n",
                                         REP("\"a\":1,\"b\":2"));
        }
        assert_int_equal(run(d, in.data, in.len, &s, &err), 0);
        /* 2 readings per good line, 1 reject per broken line */
        int broken = 0;
        for (int i = 0; i < n; i++)
                broken += i % 7 == 3;
        assert_int_equal(s.next_index, 2 * (n - broken) + broken);
        tally_buf_free(&in);
        tally_buf_free(&s.out);
        ingest_decoder_free(d);
}

static void test_free_null(void **state)
{
        (void)state;
        ingest_decoder_free(NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cases),
                cmocka_unit_test(test_gzip_broken),
                cmocka_unit_test(test_gzip_members),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_name_length),
                cmocka_unit_test(test_callback_stop),
                cmocka_unit_test(test_many),
                cmocka_unit_test(test_free_null),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
