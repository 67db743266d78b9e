/* tally-store's coarse merge in C (store/coarse.h): a batch's newest
 * versions, one per (series, finest bucket), become one row per (series,
 * coarse bucket) of COPY data for the delta table, with counts, sums and
 * versions added, min and max, first and last by (ts, origin). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/batch.h"
#include "store/coarse.h"

#define MIN_MS ((int64_t)60000)
#define HOUR_MS ((int64_t)3600000)
/* server timestamps count microseconds from 2000-01-01 UTC */
#define PG_EPOCH_MS INT64_C(946684800000)
#define COLS 17

/* one decoded tuple of the binary COPY data, as raw 8/4-byte fields */
typedef struct tuple {
        uint64_t f[COLS];
} tuple;

static uint64_t be(const unsigned char *p, int n)
{
        uint64_t v = 0;

        for (int i = 0; i < n; i++)
                v = v << 8 | p[i];
        return v;
}

/* decodes up to max tuples of out; returns how many */
static size_t decode(const tally_buf *out, tuple *t, size_t max)
{
        const unsigned char *p = out->data + 19;        /* header */
        size_t n = 0;

        while (be(p, 2) != 0xffff) {
                assert_int_equal(be(p, 2), COLS);
                assert_true(n < max);
                p += 2;
                for (int c = 0; c < COLS; c++) {
                        int len = (int)be(p, 4);

                        t[n].f[c] = be(p + 4, len);
                        p += 4 + len;
                }
                n++;
        }
        assert_int_equal(p + 2 - out->data, out->len);
        return n;
}

static double f8(uint64_t bits)
{
        double d;

        memcpy(&d, &bits, sizeof(d));
        return d;
}

static int64_t ts_ms(uint64_t us)
{
        return (int64_t)us / 1000 + PG_EPOCH_MS;
}

static void add(store_batch *b, int64_t series, int64_t start, int64_t count,
                int64_t version, double sum, double min, double max,
                int64_t first_ms, int64_t last_ms, int64_t offset)
{
        store_row *r = &b->rows[b->n++];

        memset(r, 0, sizeof(*r));
        r->series = series;
        r->start_ms = start;
        r->a = (store_agg){count, version, sum, min, max,
                           {first_ms, min, {0, 0, offset}},
                           {last_ms, max, {0, 1, offset}}};
}

static void test_split_merges_per_coarse_bucket(void **state)
{
        tally_windows w = {3, {MIN_MS, HOUR_MS, 24 * HOUR_MS}};
        int64_t h = 1000 * 24 * HOUR_MS;
        store_batch b;
        tuple t[8];

        (void)state;
        store_batch_init(&b, 64);
        /* series 7: two minutes of hour 0 (the second as two versions),
         * one of hour 1; series 3: one minute of hour 0 */
        add(&b, 7, h + MIN_MS, 2, 2, 10, 4, 6, h + MIN_MS + 5, h + MIN_MS + 50, 1);
        add(&b, 7, h + 2 * MIN_MS, 1, 1, 7, 7, 7, h + 2 * MIN_MS, h + 2 * MIN_MS, 2);
        add(&b, 7, h + 2 * MIN_MS, 3, 3, 9, 1, 5, h + 2 * MIN_MS + 1, h + 2 * MIN_MS + 9, 5);
        add(&b, 7, h + HOUR_MS, 1, 1, 2, 2, 2, h + HOUR_MS, h + HOUR_MS, 3);
        add(&b, 3, h, 4, 4, 40, 10, 10, h + 1, h + 59000, 4);
        store_coarse_order(&b);
        assert_int_equal(b.nord, 4);    /* the older version of 7/min 2 */
        store_coarse_split(&b, &w);

        assert_int_equal(b.ncoarse[1], 3);
        assert_int_equal(decode(&b.coarse[1], t, 8), 3);
        /* in key order: (3, hour 0), (7, hour 0), (7, hour 1) */
        assert_int_equal(t[0].f[0], 3);
        assert_int_equal(t[1].f[0], 7);
        assert_int_equal(ts_ms(t[1].f[1]), h);
        assert_int_equal(t[1].f[2], 5);                 /* count 2 + 3 */
        assert_true(f8(t[1].f[3]) == 19);               /* sum 10 + 9 */
        assert_true(f8(t[1].f[4]) == 1);                /* min */
        assert_true(f8(t[1].f[5]) == 6);                /* max */
        assert_true(f8(t[1].f[6]) == 4);                /* first: minute 1 */
        assert_int_equal(ts_ms(t[1].f[7]), h + MIN_MS + 5);
        assert_int_equal(t[1].f[9], 1);                 /* its offset */
        assert_true(f8(t[1].f[11]) == 5);               /* last: minute 2 */
        assert_int_equal(ts_ms(t[1].f[12]), h + 2 * MIN_MS + 9);
        assert_int_equal(t[1].f[14], 5);
        assert_int_equal(t[1].f[16], 5);                /* version 2 + 3 */
        assert_int_equal(ts_ms(t[2].f[1]), h + HOUR_MS);
        assert_int_equal(t[2].f[2], 1);

        /* the day: one row per series */
        assert_int_equal(b.ncoarse[2], 2);
        assert_int_equal(decode(&b.coarse[2], t, 8), 2);
        assert_int_equal(t[1].f[0], 7);
        assert_int_equal(t[1].f[2], 6);
        assert_true(f8(t[1].f[3]) == 21);
        assert_int_equal(ts_ms(t[1].f[12]), h + HOUR_MS);

        /* the next batch starts afresh */
        store_batch_clear(&b);
        add(&b, 9, h, 1, 1, 1, 1, 1, h, h, 9);
        store_coarse_order(&b);
        store_coarse_split(&b, &w);
        assert_int_equal(b.ncoarse[1], 1);
        assert_int_equal(decode(&b.coarse[1], t, 8), 1);
        assert_int_equal(t[0].f[0], 9);
        store_batch_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_split_merges_per_coarse_bucket),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
