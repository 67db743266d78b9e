/* tests/unit/test_clean_codec.c -- tally.clean records (common/clean_codec.h):
 * round trips of readings and progress records, and every corruption
 * rejected with -1 (buffers are allocated to their exact length, so the
 * sanitizer build catches any read past the end). */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/clean_codec.h"

static char name200[TALLY_NAME_MAX + 1];

static tally_reading mk(const char *site, const char *device, const char *metric,
                        int64_t ts, double value, int32_t part, int64_t off,
                        int32_t idx, int64_t progress)
{
        tally_reading r;

        memset(&r, 0, sizeof(r));
        r.site = site;
        r.site_len = (uint16_t)strlen(site);
        r.device = device;
        r.device_len = (uint16_t)strlen(device);
        r.metric = metric;
        r.metric_len = (uint16_t)strlen(metric);
        r.ts_ms = ts;
        r.value = value;
        r.origin.partition = part;
        r.origin.offset = off;
        r.origin.index = idx;
        r.progress_ms = progress;
        return r;
}

/* Encodes rs into an exactly sized malloc'd copy. */
static unsigned char *encode(const tally_reading *rs, size_t n, size_t *len)
{
        tally_clean_writer w;
        const unsigned char *b;
        unsigned char *copy;

        memset(&w, 0, sizeof(w));
        tally_clean_writer_reset(&w);
        for (size_t i = 0; i < n; i++)
                tally_clean_writer_add(&w, &rs[i]);
        b = tally_clean_writer_finish(&w, len);
        copy = malloc(*len ? *len : 1);
        assert_non_null(copy);
        memcpy(copy, b, *len);
        tally_clean_writer_free(&w);
        return copy;
}

static unsigned char *dup_exact(const void *p, size_t n)
{
        unsigned char *c = malloc(n ? n : 1);

        assert_non_null(c);
        memcpy(c, p, n);
        return c;
}

static void assert_reading_eq(const tally_reading *a, const tally_reading *b)
{
        assert_int_equal(a->site_len, b->site_len);
        assert_memory_equal(a->site, b->site, a->site_len);
        assert_int_equal(a->device_len, b->device_len);
        assert_memory_equal(a->device, b->device, a->device_len);
        assert_int_equal(a->metric_len, b->metric_len);
        assert_memory_equal(a->metric, b->metric, a->metric_len);
        assert_int_equal(a->ts_ms, b->ts_ms);
        assert_memory_equal(&a->value, &b->value, sizeof(double));
        assert_int_equal(a->origin.partition, b->origin.partition);
        assert_int_equal(a->origin.offset, b->origin.offset);
        assert_int_equal(a->origin.index, b->origin.index);
        assert_int_equal(a->progress_ms, b->progress_ms);
}

/* Decodes a whole record of either kind: number of items, or -1. Checks
 * that every failure names the reason. */
static long decode_all(const unsigned char *buf, size_t len)
{
        tally_clean_reader rd;
        tally_err err;
        long n = 0;
        int rc;

        memset(&err, 0, sizeof(err));
        if (tally_clean_reader_init(&rd, buf, len, &err)) {
                assert_string_equal(err.reason, "malformed_clean");
                return -1;
        }
        for (;;) {
                if (rd.kind == TALLY_CLEAN_READINGS) {
                        tally_reading r;
                        rc = tally_clean_reader_next(&rd, &r, &err);
                } else {
                        tally_clean_origin o;
                        rc = tally_clean_reader_next_origin(&rd, &o, &err);
                }
                if (rc < 0) {
                        assert_int_equal(rc, -1);
                        assert_string_equal(err.reason, "malformed_clean");
                        assert_true(err.msg[0] != '\0');
                        return -1;
                }
                if (rc == 0)
                        return n;
                assert_int_equal(rc, 1);
                n++;
        }
}

static void round_trip(const tally_reading *rs, size_t n)
{
        size_t len;
        unsigned char *b = encode(rs, n, &len);
        tally_clean_reader rd;
        tally_reading r;
        tally_err err;

        assert_int_equal(tally_clean_reader_init(&rd, b, len, &err), 0);
        assert_int_equal(rd.kind, TALLY_CLEAN_READINGS);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 1);
                assert_reading_eq(&r, &rs[i]);
                /* strings point into the record */
                assert_true((const unsigned char *)r.site >= b &&
                            (const unsigned char *)r.site < b + len);
        }
        assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 0);
        assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 0);
        free(b);
}

/* ---- round trips ---- */

static void test_round_trip_basic(void **state)
{
        const tally_reading rs[] = {
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515303120), 3.4,
                   3, 1200, 0, INT64_C(1795515290000)),
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515302000), 3.5,
                   3, 1200, 1, INT64_C(1795515290000)),
                mk("DAL-07", "cooler-17", "humidity", INT64_C(1795515301000), -1e300,
                   3, 1199, 7, INT64_C(1795515280000)),       /* negative deltas */
                mk("FRA-01", "cooler-17", "humidity", INT64_C(-86400000), 0.0,
                   0, 0, 0, INT64_C(-5)),                      /* pre-1970 */
                mk("FRA-01", "x", "y", 0, -0.0, INT32_MAX, INT64_MAX, INT32_MAX,
                   INT64_C(-6)),
                mk("a", "b", "c", 1, 1, 0, 0, 0, INT64_C(-7)),
        };
        (void)state;
        round_trip(rs, sizeof(rs) / sizeof(rs[0]));
        round_trip(rs, 1);
        round_trip(rs, 0);
}

static void test_round_trip_extremes(void **state)
{
        const tally_reading rs[] = {
                mk(name200, name200, name200, INT64_C(4102444800000), DBL_MAX,
                   0, INT64_C(1) << 62, 0, INT64_C(4102444700000)),
                mk(name200, "d", name200, -INT64_C(62135596800000), -DBL_MAX,
                   1, 0, 1, INT64_C(4102444700000)),
                mk("s", "d", "m", 0, DBL_MIN, 2, INT64_MAX, 2, TALLY_CLEAN_TIME_LIMIT),
                mk("s", "d", "m", 0, 4.9406564584124654e-324, 3, 1, 3, 0),
                mk("s", "d", "m", 0, -4.9406564584124654e-324, 4, INT64_MAX - 1, 4, 0),
                mk("s", "d", "m", 0, 0.1, 5, 0, 5, 0),
        };
        (void)state;
        round_trip(rs, sizeof(rs) / sizeof(rs[0]));
}

/* A progress stamp of INT64_MIN (origin never heard from), alone or
 * after other non-positive stamps. */
static void test_round_trip_int64_min_progress(void **state)
{
        const tally_reading rs[] = {
                mk("s", "d", "m", 1000, 1, 0, 10, 0, INT64_MIN),
                mk("s", "d", "m", 2000, 2, 0, 11, 0, INT64_MIN),
                mk("s", "d", "m", 3000, 3, 1, 12, 0, -1),
                mk("s", "d", "m", 3000, 3, 1, 13, 0, INT64_MIN),
                mk("s", "d", "m", 3000, 3, 1, 14, 0, -1000),
                mk("s", "d", "m", 3000, 3, 1, 15, 0, INT64_MIN),
        };
        (void)state;
        round_trip(rs, sizeof(rs) / sizeof(rs[0]));
}

/* Deltas are modulo 2^64: a fresh origin's first message (progress
 * INT64_MIN) followed by its next one in the same batch, and the widest
 * jumps of ts and offset, must round-trip without signed overflow (the
 * sanitizer build checks). */
static void test_round_trip_progress_from_int64_min(void **state)
{
        const tally_reading rs[] = {
                mk("s", "d", "m", INT64_C(1795515300000), 1, 0, 10, 0, INT64_MIN),
                mk("s", "d", "m", INT64_C(1795515300000), 2, 0, 11, 0,
                   INT64_C(1795515290000)),
                mk("s", "d", "m", INT64_C(1795515300000), 3, 1, 12, 0, INT64_MIN),
        };
        const tally_reading wide[] = {
                mk("s", "d", "m", -TALLY_CLEAN_TIME_LIMIT, 1, 0, 0, 0,
                   TALLY_CLEAN_TIME_LIMIT),
                mk("s", "d", "m", TALLY_CLEAN_TIME_LIMIT, 2, 0, INT64_MAX, 0, INT64_MIN),
                mk("s", "d", "m", -TALLY_CLEAN_TIME_LIMIT, 3, 0, 0, 0,
                   -TALLY_CLEAN_TIME_LIMIT),
        };
        (void)state;
        round_trip(rs, sizeof(rs) / sizeof(rs[0]));
        round_trip(wide, sizeof(wide) / sizeof(wide[0]));
}

/* Strings equal to the previous reading's are a flag bit, not bytes. */
static void test_string_flags(void **state)
{
        const tally_reading same[] = {
                mk("site-1", "device-1", "metric-1", 0, 1, 0, 0, 0, 0),
                mk("site-1", "device-1", "metric-1", 0, 1, 0, 0, 0, 0),
                mk("site-1", "device-1", "metric-1", 0, 1, 0, 0, 0, 0),
        };
        const tally_reading diff[] = {
                mk("site-1", "device-1", "metric-1", 0, 1, 0, 0, 0, 0),
                mk("site-2", "device-2", "metric-2", 0, 1, 0, 0, 0, 0),
                mk("site-3", "device-3", "metric-3", 0, 1, 0, 0, 0, 0),
        };
        const tally_reading some[] = {
                mk("site-1", "device-1", "metric-1", 0, 1, 0, 0, 0, 0),
                mk("site-1", "device-2", "metric-1", 0, 1, 0, 0, 0, 0),
                mk("site-1", "device-2", "metric-2", 0, 1, 0, 0, 0, 0),
        };
        /* one reading: flags, 3 strings (1+n each), ts, f64, part, off, idx, prog */
        const size_t r1 = 1 + (1 + 6) + (1 + 8) + (1 + 8) + 1 + 8 + 1 + 1 + 1 + 1;
        const size_t rflag = 1 + 1 + 8 + 1 + 1 + 1 + 1;
        size_t ls, ld, lm;
        unsigned char *bs = encode(same, 3, &ls);
        unsigned char *bd = encode(diff, 3, &ld);
        unsigned char *bm = encode(some, 3, &lm);

        (void)state;
        assert_int_equal(ld, 8 + 3 * r1);
        assert_int_equal(ls, 8 + r1 + 2 * rflag);
        assert_int_equal(lm, 8 + r1 + (rflag + 9) + (rflag + 9));
        assert_int_equal(bs[8], 0);                     /* first: no flags */
        assert_int_equal(bs[8 + r1], 7);
        assert_int_equal(bs[8 + r1 + rflag], 7);
        assert_int_equal(bm[8 + r1], 1 | 4);            /* device differs */
        assert_int_equal(bm[8 + r1 + rflag + 9], 1 | 2);        /* metric differs */
        assert_int_equal(decode_all(bs, ls), 3);
        assert_int_equal(decode_all(bd, ld), 3);
        assert_int_equal(decode_all(bm, lm), 3);
        round_trip(same, 3);
        round_trip(diff, 3);
        round_trip(some, 3);
        free(bs);
        free(bd);
        free(bm);
}

/* Header bytes and count; an empty record; writer reuse. */
static void test_header_and_reuse(void **state)
{
        tally_clean_writer w;
        const unsigned char *b;
        size_t len;
        tally_reading r = mk("s", "d", "m", 5, 1, 0, 0, 0, 0);
        tally_reading got;
        tally_clean_reader rd;
        tally_err err;

        (void)state;
        memset(&w, 0, sizeof(w));
        b = tally_clean_writer_finish(&w, &len);       /* never reset: empty */
        assert_int_equal(len, 8);
        assert_memory_equal(b, "TC\x02\x01\0\0\0\0", 8);
        assert_int_equal(decode_all(b, len), 0);
        tally_clean_writer_reset(&w);
        for (int i = 0; i < 300; i++)
                tally_clean_writer_add(&w, &r);
        b = tally_clean_writer_finish(&w, &len);
        assert_int_equal(b[4], 300 & 0xff);
        assert_int_equal(b[5], 1);
        assert_int_equal(b[6], 0);
        assert_int_equal(b[7], 0);
        assert_int_equal(decode_all(b, len), 300);
        /* after a reset, no delta or string state leaks in */
        tally_clean_writer_reset(&w);
        r = mk("s", "d", "m", 9, 2, 4, 77, 3, -9);
        tally_clean_writer_add(&w, &r);
        b = tally_clean_writer_finish(&w, &len);
        assert_int_equal(b[8], 0);
        assert_int_equal(tally_clean_reader_init(&rd, b, len, &err), 0);
        assert_int_equal(tally_clean_reader_next(&rd, &got, &err), 1);
        assert_reading_eq(&got, &r);
        assert_int_equal(tally_clean_reader_next(&rd, &got, &err), 0);
        /* the wrong accessor for the kind */
        tally_clean_origin o;
        assert_int_equal(tally_clean_reader_next_origin(&rd, &o, &err), -1);
        tally_clean_writer_free(&w);
}

static void test_progress_round_trip(void **state)
{
        const tally_clean_origin os[] = {
                {0, INT64_MIN},
                {11, TALLY_CLEAN_TIME_LIMIT},
                {5, -1},
                {3, INT64_C(1795515300000)},
                {0, 0},
        };
        const size_t n = sizeof(os) / sizeof(os[0]);
        tally_buf b = TALLY_BUF_INIT;
        tally_clean_reader rd;
        tally_clean_origin o;
        tally_reading r;
        tally_err err;
        unsigned char *c;

        (void)state;
        tally_buf_append(&b, "xyz", 3);         /* appends after existing bytes */
        tally_clean_progress_encode(&b, 12, os, n);
        c = dup_exact(b.data + 3, b.len - 3);
        assert_memory_equal(c, "TC\x02\x02\x05\0\0\0", 8);
        assert_int_equal(tally_clean_reader_init(&rd, c, b.len - 3, &err), 0);
        assert_int_equal(rd.kind, TALLY_CLEAN_PROGRESS);
        assert_int_equal(rd.raw_partitions, 12);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(tally_clean_reader_next_origin(&rd, &o, &err), 1);
                assert_int_equal(o.partition, os[i].partition);
                assert_int_equal(o.progress_ms, os[i].progress_ms);
        }
        assert_int_equal(tally_clean_reader_next_origin(&rd, &o, &err), 0);
        assert_int_equal(tally_clean_reader_next(&rd, &r, &err), -1);
        free(c);
        /* no origins */
        tally_buf_reset(&b);
        tally_clean_progress_encode(&b, 1, NULL, 0);
        c = dup_exact(b.data, b.len);
        assert_int_equal(decode_all(c, b.len), 0);
        free(c);
        /* a large partition count */
        tally_buf_reset(&b);
        {
                tally_clean_origin big = {INT32_MAX - 1, 42};
                tally_clean_progress_encode(&b, INT32_MAX, &big, 1);
        }
        c = dup_exact(b.data, b.len);
        assert_int_equal(decode_all(c, b.len), 1);
        free(c);
        tally_buf_free(&b);
}

/* ---- corruption ---- */

static void expect_reject(const unsigned char *p, size_t n, const char *what)
{
        unsigned char *c = dup_exact(p, n);
        long rc = decode_all(c, n);

        if (rc != -1)
                fail_msg("%s: accepted (%ld items)", what, rc);
        free(c);
}

static void test_bad_header(void **state)
{
        size_t len;
        tally_reading r = mk("s", "d", "m", 5, 1, 0, 0, 0, 0);
        unsigned char *b = encode(&r, 1, &len);
        unsigned char *c = dup_exact(b, len);
        static const struct {
                size_t at;
                unsigned char v;
                const char *what;
        } cases[] = {
                {0, 'X', "bad magic 0"},
                {1, 'X', "bad magic 1"},
                {0, 0, "zero magic"},
                {2, 0, "version 0"},
                {2, 3, "version 3"},
                {2, 0xff, "version 255"},
                {3, 0, "kind 0"},
                {3, 3, "kind 3"},
                {3, 0xff, "kind 255"},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memcpy(c, b, len);
                c[cases[i].at] = cases[i].v;
                expect_reject(c, len, cases[i].what);
        }
        expect_reject((const unsigned char *)"", 0, "empty");
        free(b);
        free(c);
}

static void test_truncated_everywhere(void **state)
{
        const tally_reading rs[] = {
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515303120), 3.4,
                   3, 1200, 0, INT64_C(1795515290000)),
                mk("DAL-07", "cooler-17", "humidity", INT64_C(1795515302000), -2.5,
                   3, 1201, 1, INT64_C(1795515290000)),
                mk(name200, "cooler-18", "humidity", INT64_C(1795515202000), 1e300,
                   4, INT64_C(1) << 50, 2, INT64_C(-1)),
        };
        const tally_clean_origin os[] = {{0, INT64_MIN}, {7, INT64_C(1795515300000)}};
        tally_buf pb = TALLY_BUF_INIT;
        size_t len;
        unsigned char *b = encode(rs, 3, &len);
        char what[64];

        (void)state;
        assert_int_equal(decode_all(b, len), 3);
        for (size_t n = 0; n < len; n++) {
                snprintf(what, sizeof(what), "readings truncated at %zu/%zu", n, len);
                expect_reject(b, n, what);
        }
        tally_clean_progress_encode(&pb, 8, os, 2);
        assert_int_equal(decode_all(pb.data, pb.len), 2);
        for (size_t n = 0; n < pb.len; n++) {
                snprintf(what, sizeof(what), "progress truncated at %zu/%zu", n, pb.len);
                expect_reject(pb.data, n, what);
        }
        free(b);
        tally_buf_free(&pb);
}

static void set_count(unsigned char *b, uint32_t n)
{
        for (int i = 0; i < 4; i++)
                b[4 + i] = (unsigned char)(n >> (8 * i));
}

static void test_count_mismatch(void **state)
{
        const tally_reading rs[] = {
                mk("s", "d", "m", 5, 1, 0, 0, 0, 0),
                mk("s", "d", "m", 6, 2, 0, 1, 0, 0),
        };
        const tally_clean_origin os[] = {{0, 1}, {1, 2}};
        tally_buf pb = TALLY_BUF_INIT;
        size_t len;
        unsigned char *b = encode(rs, 2, &len);
        unsigned char *c = malloc(len + 1);

        (void)state;
        assert_non_null(c);
        memcpy(c, b, len);
        set_count(c, 3);
        expect_reject(c, len, "count larger than content");
        set_count(c, UINT32_MAX);
        expect_reject(c, len, "count 2^32-1");
        set_count(c, 1);
        expect_reject(c, len, "count smaller: trailing bytes");
        set_count(c, 0);
        expect_reject(c, len, "count 0 with content");
        set_count(c, 2);
        c[len] = 0;
        expect_reject(c, len + 1, "one trailing byte");
        tally_clean_progress_encode(&pb, 2, os, 2);
        set_count(pb.data, 3);
        expect_reject(pb.data, pb.len, "progress count larger");
        set_count(pb.data, 1);
        expect_reject(pb.data, pb.len, "progress trailing bytes");
        set_count(pb.data, 2);
        tally_buf_putc(&pb, 0);
        expect_reject(pb.data, pb.len, "progress one trailing byte");
        free(b);
        free(c);
        tally_buf_free(&pb);
}

/* Hand-built records: header, then the given body. */
static void hdr_version(tally_buf *b, unsigned version, unsigned kind,
                        uint32_t count)
{
        unsigned char h[8] = {'T', 'C', (unsigned char)version,
                              (unsigned char)kind, 0, 0, 0, 0};

        tally_buf_reset(b);
        tally_buf_append(b, h, 8);
        set_count(b->data, count);
}

/* version 1: what the cases below were written for, and still read */
static void hdr(tally_buf *b, unsigned kind, uint32_t count)
{
        hdr_version(b, 1, kind, count);
}

static void put_str(tally_buf *b, const char *s, size_t n)
{
        tally_buf_put_uvarint(b, n);
        tally_buf_append(b, s, n);
}

/* the numeric tail of a reading */
static void put_tail(tally_buf *b, int64_t dts, double v, uint64_t part,
                     int64_t doff, uint64_t idx, int64_t dprog)
{
        tally_buf_put_svarint(b, dts);
        tally_buf_put_f64(b, v);
        tally_buf_put_uvarint(b, part);
        tally_buf_put_svarint(b, doff);
        tally_buf_put_uvarint(b, idx);
        tally_buf_put_svarint(b, dprog);
}

static void test_bad_readings(void **state)
{
        tally_buf b = TALLY_BUF_INIT;
        char big[TALLY_NAME_MAX + 2];

        (void)state;
        memset(big, 'x', sizeof(big));

        /* control: a valid hand-built record */
        hdr(&b, 1, 1);
        tally_buf_putc(&b, 0);
        put_str(&b, "s", 1);
        put_str(&b, "d", 1);
        put_str(&b, name200, TALLY_NAME_MAX);
        put_tail(&b, 5, 1.0, 0, 0, 0, 0);
        assert_int_equal(decode_all(b.data, b.len), 1);

        static const char *const which[3] = {"site", "device", "metric"};
        for (int s = 0; s < 3; s++) {
                char what[64];

                /* zero-length string */
                hdr(&b, 1, 1);
                tally_buf_putc(&b, 0);
                for (int i = 0; i < 3; i++)
                        put_str(&b, "abc", i == s ? 0 : 3);
                put_tail(&b, 5, 1.0, 0, 0, 0, 0);
                snprintf(what, sizeof(what), "empty %s", which[s]);
                expect_reject(b.data, b.len, what);
                /* longer than TALLY_NAME_MAX */
                hdr(&b, 1, 1);
                tally_buf_putc(&b, 0);
                for (int i = 0; i < 3; i++)
                        put_str(&b, big, i == s ? TALLY_NAME_MAX + 1 : 3);
                put_tail(&b, 5, 1.0, 0, 0, 0, 0);
                snprintf(what, sizeof(what), "%s of 201 bytes", which[s]);
                expect_reject(b.data, b.len, what);
                /* length past the end */
                hdr(&b, 1, 1);
                tally_buf_putc(&b, 0);
                for (int i = 0; i < s; i++)
                        put_str(&b, "abc", 3);
                tally_buf_put_uvarint(&b, 50);
                tally_buf_append(&b, "abc", 3);
                snprintf(what, sizeof(what), "%s length past the end", which[s]);
                expect_reject(b.data, b.len, what);
                /* flag on the first reading: nothing to repeat */
                hdr(&b, 1, 1);
                tally_buf_putc(&b, (unsigned char)(1u << s));
                for (int i = 0; i < 3; i++)
                        if (i != s)
                                put_str(&b, "abc", 3);
                put_tail(&b, 5, 1.0, 0, 0, 0, 0);
                snprintf(what, sizeof(what), "%s flag on the first reading", which[s]);
                expect_reject(b.data, b.len, what);
        }

        static const struct {
                unsigned flags;
                double v;
                uint64_t part, idx;
                int64_t doff;
                const char *what;
        } tails[] = {
                {8, 1.0, 0, 0, 0, "flags 8"},
                {0xff, 1.0, 0, 0, 0, "flags 255"},
                {0, NAN, 0, 0, 0, "NaN"},
                {0, INFINITY, 0, 0, 0, "+inf"},
                {0, -INFINITY, 0, 0, 0, "-inf"},
                {0, 1.0, (uint64_t)INT32_MAX + 1, 0, 0, "partition 2^31"},
                {0, 1.0, UINT64_MAX, 0, 0, "partition 2^64-1"},
                {0, 1.0, 0, (uint64_t)INT32_MAX + 1, 0, "index 2^31"},
                {0, 1.0, 0, 0, -1, "negative offset"},
                {0, 1.0, 0, 0, INT64_MIN, "offset INT64_MIN"},
        };
        for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
                hdr(&b, 1, 1);
                tally_buf_putc(&b, (unsigned char)tails[i].flags);
                put_str(&b, "s", 1);
                put_str(&b, "d", 1);
                put_str(&b, "m", 1);
                put_tail(&b, 5, tails[i].v, tails[i].part, tails[i].doff,
                         tails[i].idx, 0);
                expect_reject(b.data, b.len, tails[i].what);
        }

        /* the second reading's offset delta takes it below zero */
        hdr(&b, 1, 2);
        tally_buf_putc(&b, 0);
        put_str(&b, "s", 1);
        put_str(&b, "d", 1);
        put_str(&b, "m", 1);
        put_tail(&b, 5, 1.0, 0, 10, 0, 0);
        tally_buf_putc(&b, 7);
        put_tail(&b, 5, 1.0, 0, -11, 0, 0);
        expect_reject(b.data, b.len, "offset below zero by delta");

        /* overlong varint: 11 continuation bytes for the ts delta */
        hdr(&b, 1, 1);
        tally_buf_putc(&b, 0);
        put_str(&b, "s", 1);
        put_str(&b, "d", 1);
        put_str(&b, "m", 1);
        for (int i = 0; i < 11; i++)
                tally_buf_putc(&b, 0x80);
        tally_buf_putc(&b, 0);
        expect_reject(b.data, b.len, "overlong varint");

        /* huge deltas wrap without undefined behaviour; times beyond
         * +-2^50 ms are rejected (downstream arithmetic must not overflow) */
        hdr(&b, 1, 2);
        tally_buf_putc(&b, 0);
        put_str(&b, "s", 1);
        put_str(&b, "d", 1);
        put_str(&b, "m", 1);
        put_tail(&b, INT64_MAX, 1.0, 0, 0, 0, INT64_MAX);
        tally_buf_putc(&b, 7);
        put_tail(&b, INT64_MAX, 1.0, 0, 0, 0, INT64_MAX);
        expect_reject(b.data, b.len, "event time out of range");
        hdr(&b, 1, 1);
        tally_buf_putc(&b, 0);
        put_str(&b, "s", 1);
        put_str(&b, "d", 1);
        put_str(&b, "m", 1);
        put_tail(&b, 1000, 1.0, 0, 0, 0, TALLY_CLEAN_TIME_LIMIT + 1);
        expect_reject(b.data, b.len, "progress out of range");
        tally_buf_free(&b);
}

static void test_bad_progress(void **state)
{
        tally_buf b = TALLY_BUF_INIT;
        static const struct {
                uint64_t raw;
                uint64_t part;
                const char *what;
        } cases[] = {
                {0, 0, "zero raw partitions"},
                {(uint64_t)INT32_MAX + 1, 0, "raw partitions 2^31"},
                {4, 4, "partition == raw_partitions"},
                {4, 5, "partition > raw_partitions"},
                {4, (uint64_t)INT32_MAX + 1, "partition 2^31"},
                {1, 1, "partition 1 of 1"},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                hdr(&b, 2, 1);
                tally_buf_put_uvarint(&b, cases[i].raw);
                tally_buf_put_uvarint(&b, cases[i].part);
                tally_buf_put_svarint(&b, 1000);
                expect_reject(b.data, b.len, cases[i].what);
        }
        /* control: the last valid partition */
        hdr(&b, 2, 1);
        tally_buf_put_uvarint(&b, 4);
        tally_buf_put_uvarint(&b, 3);
        tally_buf_put_svarint(&b, 1000);
        {
                unsigned char *c = dup_exact(b.data, b.len);
                assert_int_equal(decode_all(c, b.len), 1);
                free(c);
        }
        /* header only: no partition count */
        hdr(&b, 2, 0);
        expect_reject(b.data, b.len, "progress without partition count");
        /* an entry on a readings accessor */
        hdr(&b, 2, 0);
        tally_buf_put_uvarint(&b, 1);
        {
                tally_clean_reader rd;
                tally_reading r;
                tally_err err;

                assert_int_equal(tally_clean_reader_init(&rd, b.data, b.len, &err), 0);
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), -1);
        }
        tally_buf_free(&b);
}

/* ---- version 2: metric table and same-message origins ---- */

/* Reads a record and returns the repeat bits of each reading in rep, and
 * its metric_slot in slot unless NULL. */
static void read_repeats(const unsigned char *b, size_t len, uint8_t *rep,
                         uint8_t *slot, size_t n)
{
        tally_clean_reader rd;
        tally_reading r = {0};
        tally_err err;

        assert_int_equal(tally_clean_reader_init(&rd, b, len, &err), 0);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 1);
                rep[i] = r.repeat;
                if (slot)
                        slot[i] = r.metric_slot;
        }
        assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 0);
}

/* Reports of 4 metrics, as ingest writes them: after the first reading
 * of a report only flags, a zero ts delta and the value remain. */
static void test_v2_reports(void **state)
{
        static const char *const met[4] = {"temperature_c", "humidity_pct",
                                           "power_w", "door_open"};
        tally_reading rs[12];
        uint8_t rep[12], slot[12];
        size_t len;
        unsigned char *b;

        (void)state;
        for (int i = 0; i < 12; i++)
                rs[i] = mk("DAL-07", i < 4 ? "cooler-1" : i < 8 ? "cooler-2" : "cooler-3",
                           met[i % 4], INT64_C(1795515300000) + i / 4 * 1000,
                           i * 0.5, 3, 1200 + i / 4, i % 4, INT64_C(1795515290000));
        b = encode(rs, 12, &len);
        /* the first reading: flags, 3 strings, ts, value, 4 origin fields */
        const size_t first = 1 + 7 + 9 + 14 + 6 + 8 + 1 + 2 + 1 + 6;
        const size_t rest = 1 + 1 + 8;
        assert_int_equal(b[8], 0);
        assert_int_equal(b[8 + first], 1 | 2 | 8);     /* new metric, same message */
        /* report 2: site same, device new, metric slot 0, new message */
        size_t r2 = 8 + first + (rest + 13) + (rest + 8) + (rest + 10);
        assert_int_equal(b[r2 - rest - 10], 1 | 2 | 8); /* 4th metric inline */
        assert_int_equal(b[r2], 1 | 4 | 0 << 4);
        /* flags, device, ts delta 1000, value, 4 origin fields */
        size_t r2len = 1 + 9 + 2 + 8 + 1 + 1 + 1 + 1;
        assert_int_equal(b[r2 + r2len], 1 | 2 | 4 | 8 | 1 << 4);
        assert_int_equal(b[r2 + r2len + rest], 1 | 2 | 4 | 8 | 2 << 4);
        assert_int_equal(b[r2 + r2len + 2 * rest], 1 | 2 | 4 | 8 | 3 << 4);
        assert_int_equal(len, r2 + 2 * (r2len + 3 * rest));
        round_trip(rs, 12);
        /* repeat: site and device as flagged, metric only when the slot
         * is the previous reading's (never here) */
        read_repeats(b, len, rep, slot, 12);
        assert_int_equal(rep[0], 0);
        assert_int_equal(rep[1], 3);
        assert_int_equal(rep[4], 1);
        assert_int_equal(rep[5], 3);
        /* each reading names its metric's slot in the table, + 1 */
        for (int i = 0; i < 12; i++)
                assert_int_equal(slot[i], 1 + i % 4);
        free(b);
}

/* More distinct metrics than the table holds: the rest stay inline. */
static void test_v2_metric_table_full(void **state)
{
        char names[TALLY_CLEAN_METRICS + 4][8];
        tally_reading rs[3 * (TALLY_CLEAN_METRICS + 4)];
        size_t n = 0, len;
        unsigned char *b;

        (void)state;
        for (int i = 0; i < TALLY_CLEAN_METRICS + 4; i++)
                snprintf(names[i], sizeof(names[i]), "m%d", i);
        for (int k = 0; k < 3; k++)
                for (int i = 0; i < TALLY_CLEAN_METRICS + 4; i++)
                        rs[n++] = mk("s", "d", names[k == 1 ? TALLY_CLEAN_METRICS + 3 - i : i],
                                     k, i, 0, k, i, 0);
        round_trip(rs, n);
        /* a metric left out of the table has no slot */
        uint8_t rep[3 * (TALLY_CLEAN_METRICS + 4)], slot[3 * (TALLY_CLEAN_METRICS + 4)];
        b = encode(rs, n, &len);
        read_repeats(b, len, rep, slot, n);
        for (size_t i = 0; i < n; i++) {
                /* the table holds m0 .. m15 in their slots 0 .. 15 */
                size_t k = i / (TALLY_CLEAN_METRICS + 4), j = i % (TALLY_CLEAN_METRICS + 4);
                size_t m = k == 1 ? TALLY_CLEAN_METRICS + 3 - j : j;

                assert_int_equal(slot[i], m < TALLY_CLEAN_METRICS ? m + 1 : 0);
        }
        free(b);
        /* the same metric twice in a row: repeat bit 2, in and out of the table */
        const tally_reading twice[] = {
                mk("s", "d", "a", 0, 1, 0, 0, 0, 0),
                mk("s", "d", "a", 0, 2, 0, 0, 1, 0),
        };
        b = encode(twice, 2, &len);
        read_repeats(b, len, rep, NULL, 2);
        assert_int_equal(rep[1], 7);
        free(b);
}

/* The same-message bit only when partition, offset and progress are
 * equal and the index is the next one. */
static void test_v2_same_message(void **state)
{
        const tally_reading rs[] = {
                mk("s", "d", "m", 0, 1, 2, 10, 0, 5),
                mk("s", "d", "m", 0, 1, 2, 10, 1, 5),          /* same */
                mk("s", "d", "m", 0, 1, 2, 10, 3, 5),          /* index jumps */
                mk("s", "d", "m", 0, 1, 2, 11, 4, 5),          /* offset */
                mk("s", "d", "m", 0, 1, 3, 11, 5, 5),          /* partition */
                mk("s", "d", "m", 0, 1, 3, 11, 6, INT64_MIN),  /* progress */
                mk("s", "d", "m", 0, 1, 3, 11, INT32_MAX, INT64_MIN),
                mk("s", "d", "m", 0, 1, 3, 11, 0, INT64_MIN),  /* not + 1 */
        };
        const unsigned expect[] = {0, 8, 0, 0, 0, 0, 0, 0};
        size_t len, at = 8;
        unsigned char *b = encode(rs, 8, &len);
        tally_clean_reader rd;
        tally_reading r;
        tally_err err;

        (void)state;
        round_trip(rs, 8);
        assert_int_equal(tally_clean_reader_init(&rd, b, len, &err), 0);
        for (int i = 0; i < 8; i++) {
                assert_int_equal(b[at] & 8, expect[i]);
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 1);
                at = (size_t)(rd.p - b);
        }
        free(b);
}

/* A record of `count` readings whose first is ("s", "d", "m", ts 5,
 * value 1, origin [0, 0, index]). */
static void first_reading(tally_buf *b, unsigned version, uint32_t count,
                          uint64_t index)
{
        hdr_version(b, version, 1, count);
        tally_buf_putc(b, 0);
        put_str(b, "s", 1);
        put_str(b, "d", 1);
        put_str(b, "m", 1);
        put_tail(b, 5, 1.0, 0, 0, index, 0);
}

/* A reading that repeats all it can: flags, ts +0, value 2. */
static void short_reading(tally_buf *b, unsigned flags)
{
        tally_buf_putc(b, (unsigned char)flags);
        tally_buf_put_svarint(b, 0);
        tally_buf_put_f64(b, 2.0);
}

/* Version 2 corruptions, hand-built. */
static void test_v2_bad(void **state)
{
        tally_buf b = TALLY_BUF_INIT;

        (void)state;
        /* control */
        first_reading(&b, 2, 2, 0);
        short_reading(&b, 1 | 2 | 4 | 8);
        assert_int_equal(decode_all(b.data, b.len), 2);

        /* the first reading may not refer to a previous one */
        static const unsigned firsts[] = {8, 4, 4 | 1 << 4};
        for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
                hdr_version(&b, 2, 1, 1);
                tally_buf_putc(&b, (unsigned char)firsts[i]);
                put_str(&b, "s", 1);
                put_str(&b, "d", 1);
                if (!(firsts[i] & 4))
                        put_str(&b, "m", 1);
                put_tail(&b, 5, 1.0, 0, 0, 0, 0);
                expect_reject(b.data, b.len, "v2 first reading refers back");
        }
        /* a slot beyond the table; slot bits without bit 2 */
        static const unsigned seconds[] = {1 | 2 | 4 | 1 << 4, 1 | 2 | 1 << 4,
                                           1 | 2 | 4 | 15 << 4};
        for (size_t i = 0; i < sizeof(seconds) / sizeof(seconds[0]); i++) {
                first_reading(&b, 2, 2, 0);
                tally_buf_putc(&b, (unsigned char)seconds[i]);
                if (!(seconds[i] & 4))
                        put_str(&b, "m", 1);
                put_tail(&b, 0, 2.0, 0, 0, 1, 0);
                expect_reject(b.data, b.len, "v2 bad metric slot");
        }
        /* the next index after INT32_MAX */
        first_reading(&b, 2, 2, INT32_MAX);
        short_reading(&b, 1 | 2 | 4 | 8);
        expect_reject(b.data, b.len, "v2 index past INT32_MAX");
        /* a reading whose offset went negative fails, and so does every
         * call after it: the next reading, of the same message, would
         * otherwise carry that offset unchecked */
        {
                tally_clean_reader rd;
                tally_reading r;
                tally_err err;

                first_reading(&b, 2, 3, 0);
                tally_buf_putc(&b, 1 | 2 | 4);
                put_tail(&b, 0, 2.0, 0, -1, 1, 0);
                short_reading(&b, 1 | 2 | 4 | 8);
                assert_int_equal(tally_clean_reader_init(&rd, b.data, b.len, &err), 0);
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 1);
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), -1);
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), -1);
                assert_non_null(strstr(err.msg, "already found corrupt"));
        }
        /* version 1 has no bit 3 */
        first_reading(&b, 1, 2, 0);
        short_reading(&b, 1 | 2 | 4 | 8);
        expect_reject(b.data, b.len, "v1 with bit 3");
        tally_buf_free(&b);
}

/* A version 1 record (as written before version 2) still reads: bit 2
 * is "metric as the previous reading's", origins always written. */
static void test_v1_still_read(void **state)
{
        tally_buf b = TALLY_BUF_INIT;
        tally_clean_reader rd;
        tally_reading r;
        tally_err err;

        (void)state;
        hdr_version(&b, 1, 1, 3);
        tally_buf_putc(&b, 0);
        put_str(&b, "DAL-07", 6);
        put_str(&b, "cooler-17", 9);
        put_str(&b, "temperature_c", 13);
        put_tail(&b, INT64_C(1795515300000), 3.5, 3, 1200, 0, INT64_C(1795515290000));
        tally_buf_putc(&b, 1 | 2 | 4);
        put_tail(&b, 1000, 3.75, 3, 1, 0, 1000);
        tally_buf_putc(&b, 1 | 2);
        put_str(&b, "humidity", 8);
        put_tail(&b, 0, 40.0, 3, 0, 1, 0);
        assert_int_equal(tally_clean_reader_init(&rd, b.data, b.len, &err), 0);
        assert_int_equal(rd.version, 1);
        const tally_reading want[] = {
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515300000), 3.5,
                   3, 1200, 0, INT64_C(1795515290000)),
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515301000), 3.75,
                   3, 1201, 0, INT64_C(1795515291000)),
                mk("DAL-07", "cooler-17", "humidity", INT64_C(1795515301000), 40.0,
                   3, 1201, 1, INT64_C(1795515291000)),
        };
        static const uint8_t rep[] = {0, 7, 3};
        for (int i = 0; i < 3; i++) {
                assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 1);
                assert_reading_eq(&r, &want[i]);
                assert_int_equal(r.repeat, rep[i]);
        }
        assert_int_equal(tally_clean_reader_next(&rd, &r, &err), 0);
        tally_buf_free(&b);
}

/* Flipping any single byte of a valid record never crashes; whatever is
 * accepted decodes completely. */
static void test_bit_flips(void **state)
{
        const tally_reading rs[] = {
                mk("DAL-07", "cooler-17", "temperature_c", INT64_C(1795515303120), 3.4,
                   3, 1200, 0, INT64_MIN),
                mk("DAL-07", "cooler-17", "humidity", INT64_C(1795515302000), -2.5,
                   3, 1201, 1, INT64_MIN),
        };
        size_t len;
        unsigned char *b = encode(rs, 2, &len);
        unsigned char *c = malloc(len);

        (void)state;
        assert_non_null(c);
        for (size_t i = 0; i < len; i++) {
                for (int bit = 0; bit < 8; bit++) {
                        memcpy(c, b, len);
                        c[i] ^= (unsigned char)(1u << bit);
                        long rc = decode_all(c, len);
                        assert_true(rc >= -1);
                }
        }
        free(b);
        free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip_basic),
                cmocka_unit_test(test_round_trip_extremes),
                cmocka_unit_test(test_round_trip_int64_min_progress),
                cmocka_unit_test(test_round_trip_progress_from_int64_min),
                cmocka_unit_test(test_string_flags),
                cmocka_unit_test(test_header_and_reuse),
                cmocka_unit_test(test_progress_round_trip),
                cmocka_unit_test(test_bad_header),
                cmocka_unit_test(test_truncated_everywhere),
                cmocka_unit_test(test_count_mismatch),
                cmocka_unit_test(test_bad_readings),
                cmocka_unit_test(test_bad_progress),
                cmocka_unit_test(test_v2_reports),
                cmocka_unit_test(test_v2_metric_table_full),
                cmocka_unit_test(test_v2_same_message),
                cmocka_unit_test(test_v2_bad),
                cmocka_unit_test(test_v1_still_read),
                cmocka_unit_test(test_bit_flips),
        };

        memset(name200, 'n', TALLY_NAME_MAX);
        name200[TALLY_NAME_MAX] = '\0';
        return cmocka_run_group_tests(tests, NULL, NULL);
}
