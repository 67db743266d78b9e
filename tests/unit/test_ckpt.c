/* Checkpoints complete in order and only when every record is acked; a
 * worker's wait follows what its queue needs next; the commit metadata of ingest and aggregate round-trips and rejects junk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "aggregate/agg.h"
#include "common/ckpt.h"
#include "ingest/ingest.h"

static void test_in_order(void **state)
{
        tally_ckpt_queue q = {0};
        tally_ckpt_pos p1 = {3, 100, 7}, p2 = {3, 200, 9}, *out;
        tally_ckpt *a, *b;

        (void)state;
        a = tally_ckpt_open(&q);
        tally_ckpt_sent(a);
        tally_ckpt_sent(a);
        tally_ckpt_seal(&q, &p1, 1);
        b = tally_ckpt_open(&q);
        assert_ptr_not_equal(a, b);
        tally_ckpt_sent(b);
        tally_ckpt_seal(&q, &p2, 1);
        assert_int_equal(tally_ckpt_pending(&q), 3);
        /* the second completes first: nothing may be committed yet */
        tally_ckpt_acked(b);
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 0);
        free(out);
        tally_ckpt_acked(a);
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 0);
        free(out);
        tally_ckpt_acked(a);
        /* both complete: the newer positions supersede */
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 1);
        assert_int_equal(out[0].offset, 200);
        assert_int_equal(out[0].value, 9);
        free(out);
        assert_int_equal(tally_ckpt_pending(&q), 0);
        tally_ckpt_queue_free(&q);
}

static void test_empty_and_open(void **state)
{
        tally_ckpt_queue q = {0};
        tally_ckpt_pos *out;
        tally_ckpt_pos p = {0, 5, 0};

        (void)state;
        /* sealing without an open checkpoint does nothing */
        tally_ckpt_seal(&q, &p, 1);
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 0);
        free(out);
        /* a checkpoint with nothing produced completes at once */
        tally_ckpt_open(&q);
        tally_ckpt_seal(&q, &p, 1);
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 1);
        assert_int_equal(out[0].offset, 5);
        free(out);
        /* an open (unsealed) checkpoint is never committed */
        tally_ckpt_open(&q);
        assert_int_equal(tally_ckpt_pop_done(&q, &out), 0);
        free(out);
        tally_ckpt_queue_free(&q);
}

static void test_wait_ms(void **state)
{
        tally_ckpt_queue q = {0};
        tally_ckpt_pos p = {0, 5, 0};
        tally_ckpt *c;

        (void)state;
        /* nothing in flight: the caller's limit */
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1100, 50), 50);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1100, -3), 0);
        /* a sealed record waits for its acknowledgement: ~5 ms */
        c = tally_ckpt_open(&q);
        tally_ckpt_sent(c);
        tally_ckpt_seal(&q, &p, 1);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1100, 50), 5);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1100, 2), 2);
        /* acknowledged: until the commit falls due, never below 0 */
        tally_ckpt_acked(c);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1480, 50), 20);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1300, 50), 50);
        assert_int_equal(tally_ckpt_wait_ms(&q, 1000, 500, 1600, 50), 0);
        tally_ckpt_queue_free(&q);
}

static void test_ingest_meta(void **state)
{
        char buf[128];
        int64_t progress;
        int32_t clean;
        static const char *const bad[] = {
                "", "tally-ingest/1", "tally-ingest/2 progress=1 clean=2",
                "tally-ingest/1 progress=x clean=2", "tally-ingest/1 progress=1 clean=2 extra",
                "tally-aggregate/1 final_below=5",
        };

        (void)state;
        ingest_meta_format(buf, sizeof(buf), 1795478400123, 16);
        assert_string_equal(buf, "tally-ingest/1 progress=1795478400123 clean=16");
        assert_int_equal(ingest_meta_parse(buf, strlen(buf), &progress, &clean), 0);
        assert_int_equal(progress, 1795478400123);
        assert_int_equal(clean, 16);
        ingest_meta_format(buf, sizeof(buf), INT64_MIN, 4);
        assert_int_equal(ingest_meta_parse(buf, strlen(buf), &progress, &clean), 0);
        assert_true(progress == INT64_MIN);
        assert_int_equal(clean, 4);
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                assert_int_equal(ingest_meta_parse(bad[i], strlen(bad[i]), &progress,
                                                   &clean), -1);
}

static void test_agg_meta(void **state)
{
        char buf[128];
        int64_t fb;

        (void)state;
        agg_meta_format(buf, sizeof(buf), -60000);
        assert_int_equal(agg_meta_parse(buf, strlen(buf), &fb), 0);
        assert_int_equal(fb, -60000);
        agg_meta_format(buf, sizeof(buf), INT64_MIN);
        assert_int_equal(agg_meta_parse(buf, strlen(buf), &fb), 0);
        assert_true(fb == INT64_MIN);
        assert_int_equal(agg_meta_parse("tally-aggregate/1 final_below=", 30, &fb), -1);
        assert_int_equal(agg_meta_parse("tally-ingest/1 progress=1 clean=2", 33, &fb), -1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_in_order),
                cmocka_unit_test(test_empty_and_open),
                cmocka_unit_test(test_wait_ms),
                cmocka_unit_test(test_ingest_meta),
                cmocka_unit_test(test_agg_meta),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
