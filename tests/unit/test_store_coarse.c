/* tally-store's memory of the coarse rows it wrote: the id set forgets by
 * its check value and shrinks; a batch's coarse keys go to the merge while
 * their bucket is recent, and are forgotten (copied as new, which only a
 * unique violation would send to the SQL merge) once the worker's data
 * has moved a coarse window past their end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "store/batch.h"
#include "store/coarse.h"
#include "store/series.h"

#define MIN_MS ((int64_t)60000)
#define HOUR_MS ((int64_t)3600000)

static void test_set_drop_below(void **state)
{
        store_series_set s;
        uint64_t check;

        (void)state;
        store_series_set_init(&s);
        for (int64_t i = 1; i <= 100000; i++)
                store_series_set_put(&s, i * 7919, (uint64_t)i);
        assert_int_equal(s.used, 100000);
        assert_true(s.cap >= 200000);
        assert_int_equal(store_series_set_drop_below(&s, 99001), 1000);
        assert_int_equal(s.used, 1000);
        assert_true(s.cap <= 4096);
        assert_false(store_series_set_find(&s, 99000 * 7919, &check));
        assert_true(store_series_set_find(&s, 99001 * 7919, &check));
        assert_int_equal(check, 99001);
        assert_true(store_series_set_find(&s, 100000 * 7919, &check));
        /* still a working table: overwrite, add, drop everything */
        store_series_set_put(&s, 5, 1);
        store_series_set_put(&s, 100000 * 7919, 3);
        assert_int_equal(s.used, 1001);
        assert_int_equal(store_series_set_drop_below(&s, UINT64_MAX), 0);
        assert_false(store_series_set_find(&s, 5, &check));
        store_series_set_free(&s);
}

/* one row per series of 1..nseries, finest window start start_ms */
static void run_batch(store_batch *b, const tally_windows *w, int nseries,
                      int64_t start_ms)
{
        store_batch_clear(b);
        for (int i = 0; i < nseries; i++) {
                store_row *r = &b->rows[b->n++];

                memset(r, 0, sizeof(*r));
                r->series = i + 1;
                r->start_ms = start_ms;
                r->a.count = 1;
                r->a.version = 1;
                r->a.sum = r->a.min = r->a.max = i;
        }
        store_coarse_order(b);
        store_coarse_split(b, w);
        store_coarse_mark_known(b);     /* as after the COMMIT */
}

static void test_coarse_keys_forgotten(void **state)
{
        tally_windows w = {2, {MIN_MS, HOUR_MS}};
        int64_t t0 = 1000 * HOUR_MS;
        store_batch b;

        (void)state;
        store_batch_init(&b, 64);
        run_batch(&b, &w, 4, t0 + MIN_MS);              /* hour 0: new */
        assert_int_equal(b.nnew[1], 4);
        assert_int_equal(b.ncoarse, 0);
        run_batch(&b, &w, 4, t0 + 2 * MIN_MS);          /* hour 0 again */
        assert_int_equal(b.nnew[1], 0);
        assert_int_equal(b.ncoarse, 4);
        assert_int_equal(b.coarse_known.used, 4);

        b.coarse_prune_at = 1;                          /* prune every time */
        run_batch(&b, &w, 4, t0 + HOUR_MS + MIN_MS);    /* hour 1 */
        assert_int_equal(b.nnew[1], 4);
        /* hour 0 ended less than an hour before: kept */
        assert_int_equal(b.coarse_known.used, 8);
        assert_int_equal(b.coarse_prune_at, STORE_COARSE_PRUNE_MIN);

        b.coarse_prune_at = 1;
        run_batch(&b, &w, 4, t0 + 2 * HOUR_MS);         /* hour 2 */
        /* hour 0 ended an hour before hour 2 began: forgotten */
        assert_int_equal(b.coarse_known.used, 8);
        assert_int_equal(b.coarse_latest, t0 + 2 * HOUR_MS);

        run_batch(&b, &w, 2, t0 + 30 * MIN_MS);         /* late, hour 0 */
        assert_int_equal(b.nnew[1], 2);                 /* copied as new */
        assert_int_equal(b.ncoarse, 0);
        run_batch(&b, &w, 2, t0 + HOUR_MS + 30 * MIN_MS); /* late, hour 1 */
        assert_int_equal(b.nnew[1], 0);                 /* merged */
        assert_int_equal(b.ncoarse, 2);
        /* a late batch does not move the horizon back */
        assert_int_equal(b.coarse_latest, t0 + 2 * HOUR_MS);
        store_batch_free(&b);
}

/* a long input: the set stays at about two hours of keys */
static void test_coarse_keys_bounded(void **state)
{
        tally_windows w = {2, {MIN_MS, HOUR_MS}};
        store_batch b;
        size_t most = 0;

        (void)state;
        store_batch_init(&b, 40000);
        for (int h = 0; h < 24; h++) {
                run_batch(&b, &w, 40000, (int64_t)h * HOUR_MS);
                if (b.coarse_known.used > most)
                        most = b.coarse_known.used;
        }
        /* pruned at 64 k keys down to two hours (80 k), then at 160 k
         * down to the last two hours again */
        assert_true(most <= 160000);
        assert_true(b.coarse_known.used <= 160000);
        assert_true(b.coarse_known.cap <= 524288);
        store_batch_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_set_drop_below),
                cmocka_unit_test(test_coarse_keys_forgotten),
                cmocka_unit_test(test_coarse_keys_bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
