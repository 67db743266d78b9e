/* tests/unit/test_part.c -- aggregate/part.h (and the series table under
 * it): window boundaries, emission and finalization thresholds, too_late,
 * duplicates, first/last tie-breaks, watermark, commit offsets, many
 * series, and an order-independence property over random interleavings. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#ifdef TALLY_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#include "aggregate/part.h"
#include "common/clean_codec.h"
#include "common/timefmt.h"

/* Bytes the allocator has handed out and not had back: tcmalloc's own
 * count when the build links it (CMakeLists.txt), else glibc's
 * mallinfo2 (small blocks + mmapped large ones, the big arrays). */
static size_t heap_in_use(void)
{
#ifdef TALLY_TCMALLOC
        size_t v = 0;

        MallocExtension_GetNumericProperty("generic.current_allocated_bytes",
                                           &v);
        return v;
#else
        struct mallinfo2 m = mallinfo2();

        return m.uordblks + m.hblkhd;
#endif
}

#define W 60000
#define D 5000
#define L 30000

static const agg_params params = {W, D, L};

/* ---- helpers ---- */

static tally_reading rd(const char *device, int64_t ts, double value,
                        int32_t partition, int64_t offset, int32_t index,
                        int64_t progress)
{
        tally_reading r;

        memset(&r, 0, sizeof(r));
        r.site = "DAL-07";
        r.site_len = 6;
        r.device = device;
        r.device_len = (uint16_t)strlen(device);
        r.metric = "temp";
        r.metric_len = 4;
        r.ts_ms = ts;
        r.value = value;
        r.origin.partition = partition;
        r.origin.offset = offset;
        r.origin.index = index;
        r.progress_ms = progress;
        return r;
}

typedef struct emitted {
        char device[TALLY_NAME_MAX + 1];
        int64_t start;
        agg_win w;              /* copy */
} emitted;

typedef struct sink {
        emitted *e;
        size_t n, cap;
        int fail_next;          /* make the next N calls fail */
        int calls;
} sink;

static int sink_emit(void *opaque, const agg_series *s, int64_t start,
                     const agg_win *w)
{
        sink *k = opaque;
        emitted *e;

        k->calls++;
        if (k->fail_next > 0) {
                k->fail_next--;
                return -1;
        }
        if (k->n == k->cap) {
                k->cap = k->cap ? k->cap * 2 : 16;
                k->e = realloc(k->e, k->cap * sizeof(*k->e));
                assert_non_null(k->e);
        }
        e = &k->e[k->n++];
        memcpy(e->device, s->device, s->device_len);
        e->device[s->device_len] = '\0';
        e->start = start;
        e->w = *w;
        return 0;
}

static void sink_free(sink *k)
{
        free(k->e);
        memset(k, 0, sizeof(*k));
}

static int advance(agg_part *pt, sink *k)
{
        return agg_part_advance(pt, sink_emit, k);
}

/* one raw partition at progress p, then advance */
static int advance_to(agg_part *pt, sink *k, int64_t p)
{
        agg_part_progress(pt, 1, 0, p);
        return advance(pt, k);
}

/* ---- window boundaries ---- */

static void test_window_boundaries(void **state)
{
        static const struct {
                int64_t ts, start;
        } cases[] = {
                {0, 0},
                {1, 0},
                {W - 1, 0},
                {W, W},
                {W + 1, W},
                {-1, -W},
                {-W, -W},
                {-W + 1, -W},
                {-W - 1, -2 * W},
                {INT64_C(1795515300000), INT64_C(1795515300000)},
                {INT64_C(1795515359999), INT64_C(1795515300000)},
                {INT64_C(-86400000) * 365 * 100 - 1, INT64_C(-3153600060000)},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                agg_part *pt = agg_part_new(&params, INT64_MIN);
                sink k = {0};
                tally_reading r = rd("d", cases[i].ts, 1.5, 0, 7, 0, INT64_MIN);

                assert_int_equal(agg_part_add(pt, &r, 0), AGG_COUNTED);
                /* not yet: watermark at end + disorder */
                assert_int_equal(advance_to(pt, &k, cases[i].start + W + D), 0);
                assert_int_equal(k.n, 0);
                assert_int_equal(advance_to(pt, &k, cases[i].start + W + D + 1), 0);
                assert_int_equal(k.n, 1);
                assert_int_equal(k.e[0].start, cases[i].start);
                assert_int_equal(k.e[0].w.count, 1);
                assert_int_equal(k.e[0].w.first_ts, cases[i].ts);
                sink_free(&k);
                agg_part_free(pt);
        }
}

static void test_end_exclusive(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading a = rd("d", W - 1, 1, 0, 1, 0, INT64_MIN);
        tally_reading b = rd("d", W, 2, 0, 2, 0, INT64_MIN);

        (void)state;
        assert_int_equal(agg_part_add(pt, &a, 0), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 1), AGG_COUNTED);
        assert_int_equal(agg_part_open_windows(pt), 2);
        /* only the first window is past end + disorder */
        assert_int_equal(advance_to(pt, &k, 2 * W + D), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.e[0].start, 0);
        assert_true(k.e[0].w.sum == 1);
        assert_int_equal(advance_to(pt, &k, 2 * W + D + 1), 0);
        assert_int_equal(k.n, 2);
        assert_int_equal(k.e[1].start, W);
        assert_true(k.e[1].w.sum == 2);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- emission, re-emission ---- */

static void test_emit_and_reemit(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading r1 = rd("d", 1000, 10, 0, 1, 0, 0);
        tally_reading r2 = rd("d", 2000, 5, 0, 2, 0, W + D + 1);
        tally_reading r3 = rd("d", 59000, 7, 0, 3, 0, W + D + L);

        (void)state;
        assert_int_equal(agg_part_add(pt, &r1, 100), AGG_COUNTED);
        assert_int_equal(advance_to(pt, &k, W + D + 1), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.e[0].w.count, 1);
        /* nothing new: nothing re-emitted */
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(k.n, 1);
        /* a late reading within lateness re-emits with the new count */
        assert_int_equal(agg_part_add(pt, &r2, 101), AGG_COUNTED);
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(k.n, 2);
        assert_int_equal(k.e[1].start, 0);
        assert_int_equal(k.e[1].w.count, 2);
        assert_true(k.e[1].w.sum == 15);
        assert_true(k.e[1].w.min == 5);
        assert_true(k.e[1].w.max == 10);
        assert_true(k.e[1].w.first_value == 10);
        assert_true(k.e[1].w.last_value == 5);
        /* stamped exactly at end + d + L: still counted */
        assert_int_equal(agg_part_add(pt, &r3, 102), AGG_COUNTED);
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(k.n, 3);
        assert_int_equal(k.e[2].w.count, 3);
        assert_int_equal(k.e[2].w.last_ts, 59000);
        assert_int_equal(agg_part_open_windows(pt), 1);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- too_late ---- */

static void test_too_late_boundary(void **state)
{
        static const struct {
                int64_t ts, stamp;
                agg_add_result want;
        } cases[] = {
                {0, W + D + L, AGG_COUNTED},
                {0, W + D + L + 1, AGG_TOO_LATE},
                {W - 1, W + D + L, AGG_COUNTED},
                {W - 1, W + D + L + 1, AGG_TOO_LATE},
                {W, W + D + L + 1, AGG_COUNTED},        /* next window */
                {-1, D + L, AGG_COUNTED},
                {-1, D + L + 1, AGG_TOO_LATE},
                {0, INT64_MIN, AGG_COUNTED},
                {0, INT64_MAX, AGG_TOO_LATE},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                agg_part *pt = agg_part_new(&params, INT64_MIN);
                tally_reading r = rd("d", cases[i].ts, 1, 0, 5, 0, cases[i].stamp);

                assert_int_equal(agg_part_add(pt, &r, 3), cases[i].want);
                assert_int_equal(agg_part_open_windows(pt),
                                 cases[i].want == AGG_COUNTED ? 1 : 0);
                assert_int_equal(agg_part_min_offset(pt),
                                 cases[i].want == AGG_COUNTED ? 3 : -1);
                agg_part_free(pt);
        }
}

/* ---- finalization ---- */

static void test_finalization(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading r = rd("d", 30000, 1, 0, 10, 0, INT64_MIN);
        tally_reading replay = rd("d", 31000, 2, 0, 11, 0, W + D + L);
        tally_reading late = rd("d", 31000, 2, 0, 11, 0, W + D + L + 1);
        tally_reading next = rd("d", W, 3, 0, 12, 0, W + D + L);

        (void)state;
        assert_int_equal(agg_part_add(pt, &r, 0), AGG_COUNTED);
        assert_int_equal(advance_to(pt, &k, W + D + L), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(agg_part_open_windows(pt), 1);       /* still open */
        assert_true(agg_part_final_below(pt) <= W);
        assert_int_equal(advance_to(pt, &k, W + D + L + 1), 0);
        assert_int_equal(k.n, 1);                               /* not re-emitted */
        assert_int_equal(agg_part_open_windows(pt), 0);        /* freed */
        assert_int_equal(agg_part_final_below(pt), W + 1);
        assert_int_equal(agg_part_min_offset(pt), -1);
        /* a later reading of that window, not too late: final */
        assert_int_equal(agg_part_add(pt, &replay, 1), AGG_FINAL);
        /* too late wins over final */
        assert_int_equal(agg_part_add(pt, &late, 1), AGG_TOO_LATE);
        assert_int_equal(agg_part_open_windows(pt), 0);
        /* the next window is not final */
        assert_int_equal(agg_part_add(pt, &next, 2), AGG_COUNTED);
        assert_int_equal(agg_part_open_windows(pt), 1);
        sink_free(&k);
        agg_part_free(pt);
}

static void test_final_below_constructor(void **state)
{
        static const struct {
                int64_t final_below, ts;
                agg_add_result want;
        } cases[] = {
                {W, W - 1, AGG_COUNTED},        /* end == final_below */
                {W + 1, W - 1, AGG_FINAL},      /* end < final_below */
                {W + 1, W, AGG_COUNTED},
                {W + 1, 0, AGG_FINAL},
                {W + 1, -5, AGG_FINAL},
                {0, -1, AGG_COUNTED},
                {1, -1, AGG_FINAL},
                {INT64_MIN, -W * 1000, AGG_COUNTED},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                agg_part *pt = agg_part_new(&params, cases[i].final_below);
                tally_reading r = rd("d", cases[i].ts, 1, 0, 5, 0, INT64_MIN);

                assert_int_equal(agg_part_final_below(pt), cases[i].final_below);
                assert_int_equal(agg_part_add(pt, &r, 0), cases[i].want);
                assert_int_equal(agg_part_open_windows(pt),
                                 cases[i].want == AGG_COUNTED ? 1 : 0);
                agg_part_free(pt);
        }
}

/* ---- duplicates ---- */

static void test_duplicates(void **state)
{
        static const struct {
                int32_t part;
                int64_t off;
                int32_t idx;
                agg_add_result want;
        } seq[] = {
                {0, 100, 1, AGG_COUNTED},
                {0, 100, 1, AGG_DUPLICATE},     /* same position */
                {0, 100, 0, AGG_DUPLICATE},     /* lower index */
                {0, 99, 5, AGG_DUPLICATE},      /* lower offset */
                {0, 100, 2, AGG_COUNTED},       /* higher index */
                {1, 3, 0, AGG_COUNTED},         /* another origin, lower pos */
                {1, 3, 0, AGG_DUPLICATE},
                {2, 50, 0, AGG_COUNTED},
                {3, 1, 0, AGG_COUNTED},
                {2, 49, 9, AGG_DUPLICATE},
                {3, 1, 0, AGG_DUPLICATE},
                {1, 2, 0, AGG_DUPLICATE},
                {0, 101, 0, AGG_COUNTED},
                {3, 2, 0, AGG_COUNTED},
                {2, 50, 0, AGG_DUPLICATE},
        };
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        int counted = 0;

        (void)state;
        for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
                tally_reading r = rd("d", 1000 + (int64_t)i, (double)i, seq[i].part,
                                     seq[i].off, seq[i].idx, INT64_MIN);

                assert_int_equal(agg_part_add(pt, &r, (int64_t)i), seq[i].want);
                counted += seq[i].want == AGG_COUNTED;
        }
        agg_part_progress(pt, 4, 0, W + D + 1);
        agg_part_progress(pt, 4, 1, W + D + 1);
        agg_part_progress(pt, 4, 2, W + D + 1);
        agg_part_progress(pt, 4, 3, W + D + 1);
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.e[0].w.count, counted);
        assert_int_equal(agg_part_min_offset(pt), 0);
        sink_free(&k);
        agg_part_free(pt);
}

/* Positions are remembered per series and window. */
static void test_duplicates_scope(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        tally_reading a = rd("d", 1000, 1, 0, 10, 0, INT64_MIN);
        tally_reading b = rd("d", W + 1000, 1, 0, 5, 0, INT64_MIN);
        tally_reading c = rd("e", 1000, 1, 0, 10, 0, INT64_MIN);
        tally_reading d = rd("e", 1000, 1, 0, 10, 0, INT64_MIN);

        (void)state;
        assert_int_equal(agg_part_add(pt, &a, 0), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 1), AGG_COUNTED);  /* other window */
        assert_int_equal(agg_part_add(pt, &c, 2), AGG_COUNTED);  /* other series */
        assert_int_equal(agg_part_add(pt, &d, 3), AGG_DUPLICATE);
        assert_int_equal(agg_part_open_windows(pt), 3);
        assert_int_equal(agg_series_count(agg_part_series(pt)), 2);
        agg_part_free(pt);
}

/* ---- first/last ---- */

static void test_first_last_ties(void **state)
{
        /* equal timestamps from three origins: first/last by position */
        static const tally_pos pos[3] = {
                {.partition = 0, .offset = 900, .index = 3},
                {.partition = 1, .offset = 5, .index = 0},
                {.partition = 2, .offset = 1, .index = 0},
        };
        static const int perms[6][3] = {
                {0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0},
        };
        (void)state;
        for (int p = 0; p < 6; p++) {
                agg_part *pt = agg_part_new(&params, INT64_MIN);
                sink k = {0};

                for (int j = 0; j < 3; j++) {
                        int i = perms[p][j];
                        tally_reading r = rd("d", 30000, 10.0 + i, pos[i].partition,
                                             pos[i].offset, pos[i].index, INT64_MIN);
                        assert_int_equal(agg_part_add(pt, &r, j), AGG_COUNTED);
                }
                for (int o = 0; o < 3; o++)
                        agg_part_progress(pt, 3, o, W + D + 1);
                assert_int_equal(advance(pt, &k), 0);
                assert_int_equal(k.n, 1);
                assert_true(k.e[0].w.first_value == 10.0);
                assert_true(k.e[0].w.last_value == 12.0);
                assert_int_equal(k.e[0].w.first_pos.partition, 0);
                assert_int_equal(k.e[0].w.first_pos.offset, 900);
                assert_int_equal(k.e[0].w.first_pos.index, 3);
                assert_int_equal(k.e[0].w.last_pos.partition, 2);
                assert_int_equal(k.e[0].w.first_ts, 30000);
                assert_int_equal(k.e[0].w.last_ts, 30000);
                sink_free(&k);
                agg_part_free(pt);
        }
}

static void test_first_last_ts_wins(void **state)
{
        /* time decides before position; same origin, increasing positions */
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading a = rd("d", 20000, 1, 0, 1, 0, INT64_MIN);
        tally_reading b = rd("d", 10000, 2, 0, 1, 1, INT64_MIN);  /* earliest */
        tally_reading c = rd("d", 50000, 3, 0, 2, 0, INT64_MIN);  /* latest */
        tally_reading e = rd("d", 50000, 4, 0, 2, 1, INT64_MIN);  /* tie, later pos */
        tally_reading f = rd("d", 10000, 5, 0, 3, 0, INT64_MIN);  /* tie, later pos */

        (void)state;
        assert_int_equal(agg_part_add(pt, &a, 0), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 1), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &c, 2), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &e, 3), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &f, 4), AGG_COUNTED);
        assert_int_equal(advance_to(pt, &k, W + D + 1), 0);
        assert_int_equal(k.n, 1);
        assert_true(k.e[0].w.first_value == 2);
        assert_int_equal(k.e[0].w.first_ts, 10000);
        assert_true(k.e[0].w.last_value == 4);
        assert_int_equal(k.e[0].w.last_ts, 50000);
        assert_int_equal(k.e[0].w.last_pos.index, 1);
        assert_true(k.e[0].w.min == 1 && k.e[0].w.max == 5 && k.e[0].w.sum == 15);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- watermark ---- */

static void test_watermark_min(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading r = rd("d", 1000, 1, 0, 1, 0, 500000);

        (void)state;
        assert_int_equal(agg_part_watermark(pt), INT64_MIN);
        /* a reading before any marker: raw partition count unknown */
        assert_int_equal(agg_part_add(pt, &r, 0), AGG_TOO_LATE);
        assert_int_equal(agg_part_watermark(pt), INT64_MIN);
        /* learn 3 raw partitions; origins 1 and 2 unheard */
        agg_part_progress(pt, 3, 0, 100000);
        assert_int_equal(agg_part_watermark(pt), INT64_MIN);
        agg_part_progress(pt, 3, 1, 200000);
        assert_int_equal(agg_part_watermark(pt), INT64_MIN);
        assert_int_equal(advance(pt, &k), 0);   /* INT64_MIN: nothing moves */
        assert_int_equal(agg_part_final_below(pt), INT64_MIN);
        agg_part_progress(pt, 3, 2, 150000);
        assert_int_equal(agg_part_watermark(pt), 100000);
        /* the minimum moves */
        agg_part_progress(pt, 3, 0, 300000);
        assert_int_equal(agg_part_watermark(pt), 150000);
        /* a non-minimum origin moving leaves it */
        agg_part_progress(pt, 3, 1, 400000);
        assert_int_equal(agg_part_watermark(pt), 150000);
        agg_part_progress(pt, 3, 2, 350000);
        assert_int_equal(agg_part_watermark(pt), 300000);
        /* an origin going back changes nothing */
        agg_part_progress(pt, 3, 0, 1000);
        assert_int_equal(agg_part_watermark(pt), 300000);
        agg_part_progress(pt, 3, 0, INT64_MIN);
        assert_int_equal(agg_part_watermark(pt), 300000);
        /* a reading's stamp moves its origin's progress */
        r = rd("d", 400000, 1, 0, 2, 0, 360000);
        assert_int_equal(agg_part_add(pt, &r, 1), AGG_COUNTED);
        assert_int_equal(agg_part_watermark(pt), 350000);
        /* out-of-range origins are ignored */
        agg_part_progress(pt, 3, 7, INT64_MAX);
        agg_part_progress(pt, 3, -1, INT64_MAX);
        assert_int_equal(agg_part_watermark(pt), 350000);
        /* a smaller raw partition count does not shrink anything */
        agg_part_progress(pt, 2, 1, 500000);
        assert_int_equal(agg_part_watermark(pt), 350000);
        sink_free(&k);
        agg_part_free(pt);
}

/* Equal minimums on two origins: moving one keeps the other's. */
static void test_watermark_equal_min(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);

        (void)state;
        agg_part_progress(pt, 2, 0, 1000);
        agg_part_progress(pt, 2, 1, 1000);
        assert_int_equal(agg_part_watermark(pt), 1000);
        agg_part_progress(pt, 2, 0, 5000);
        assert_int_equal(agg_part_watermark(pt), 1000);
        agg_part_progress(pt, 2, 1, 3000);
        assert_int_equal(agg_part_watermark(pt), 3000);
        agg_part_free(pt);
}

/* The raw topic gains a partition after the watermark has moved: the
 * watermark must not go back, must wait for the new origin, and must
 * follow the minimum again once the new origin has passed it. */
static void test_watermark_after_partition_growth(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);

        (void)state;
        agg_part_progress(pt, 2, 0, 100000);
        agg_part_progress(pt, 2, 1, 200000);
        assert_int_equal(agg_part_watermark(pt), 100000);
        agg_part_progress(pt, 3, 0, 300000);            /* origin 2 appears */
        assert_int_equal(agg_part_watermark(pt), 100000);   /* never back */
        agg_part_progress(pt, 3, 1, 400000);
        assert_int_equal(agg_part_watermark(pt), 100000);   /* held by origin 2 */
        agg_part_progress(pt, 3, 2, 50000);
        assert_int_equal(agg_part_watermark(pt), 100000);
        agg_part_progress(pt, 3, 2, 350000);
        /* BUG: agg_part_progress recomputes the minimum only when the
         * origin that moved was exactly at the watermark (old ==
         * watermark). After the raw partition count grows, the watermark
         * (kept from before, since it never goes back) is above the new
         * origin's progress, so no origin ever equals it again and the
         * watermark freezes at 100000 for good: nothing is emitted or
         * finalized any more. Expected 300000 here. Fix: recompute when
         * old <= watermark. Enable once aggregate/part.c is fixed. */
        assert_int_equal(agg_part_watermark(pt), 300000);
        agg_part_progress(pt, 3, 0, 500000);
        assert_int_equal(agg_part_watermark(pt), 350000);
        agg_part_free(pt);
}

/* ---- commit offsets ---- */

static void test_min_offset(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading a = rd("d", 1000, 1, 0, 1, 0, INT64_MIN);
        tally_reading b = rd("d", W + 1000, 1, 0, 2, 0, INT64_MIN);
        tally_reading c = rd("e", 2000, 1, 0, 3, 0, INT64_MIN);
        tally_reading dup = rd("d", 1000, 1, 0, 1, 0, INT64_MIN);
        tally_reading tl = rd("d", 1000, 1, 0, 9, 0, W + D + L + 1);

        (void)state;
        assert_int_equal(agg_part_min_offset(pt), -1);
        assert_int_equal(agg_part_add(pt, &a, 10), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 11), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &c, 12), AGG_COUNTED);
        assert_int_equal(agg_part_min_offset(pt), 10);
        /* neither a duplicate nor a too-late reading holds an offset */
        assert_int_equal(agg_part_add(pt, &dup, 2), AGG_DUPLICATE);
        assert_int_equal(agg_part_add(pt, &tl, 3), AGG_TOO_LATE);
        assert_int_equal(agg_part_min_offset(pt), 10);
        /* emitted but open: still needed */
        assert_int_equal(advance_to(pt, &k, W + D + 1), 0);
        assert_int_equal(k.n, 2);
        assert_int_equal(agg_part_min_offset(pt), 10);
        /* first window final: moves to the second */
        assert_int_equal(advance_to(pt, &k, W + D + L + 1), 0);
        assert_int_equal(agg_part_open_windows(pt), 1);
        assert_int_equal(agg_part_min_offset(pt), 11);
        assert_int_equal(advance_to(pt, &k, 2 * W + D + L + 1), 0);
        assert_int_equal(k.n, 3);
        assert_int_equal(agg_part_open_windows(pt), 0);
        assert_int_equal(agg_part_min_offset(pt), -1);
        sink_free(&k);
        agg_part_free(pt);
}

/* A late reading for an older window lowers nothing below what that
 * window already holds, and a later window's offset can be the lowest. */
static void test_min_offset_late(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading a = rd("d", W + 1000, 1, 0, 1, 0, INT64_MIN);
        tally_reading b = rd("d", 1000, 1, 1, 1, 0, W + D + 1);

        (void)state;
        agg_part_progress(pt, 2, 0, 0);
        agg_part_progress(pt, 2, 1, 0);
        assert_int_equal(agg_part_add(pt, &a, 40), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 41), AGG_COUNTED);
        assert_int_equal(agg_part_min_offset(pt), 40);
        agg_part_progress(pt, 2, 0, W + D + L + 1);
        agg_part_progress(pt, 2, 1, W + D + L + 1);
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(agg_part_open_windows(pt), 1);
        assert_int_equal(agg_part_min_offset(pt), 40);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- packed state: limits and round trip ---- */

static void test_packed_limits(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        const int64_t big = AGG_ORIGIN_OFFSET_LIMIT - 1;
        /* extremes of every packed field, two origins in one window */
        tally_reading a = rd("a", W - 1, -1.5, AGG_ORIGIN_PARTITION_MAX, big,
                             INT32_MAX, INT64_MIN);
        tally_reading b = rd("a", 0, 2.25, 0, 0, 0, INT64_MIN);
        tally_reading c = rd("a", W - 1, 7.0, AGG_ORIGIN_PARTITION_MAX, big - 1,
                             INT32_MAX, INT64_MIN);
        tally_reading bad;

        (void)state;
        assert_int_equal(agg_part_add(pt, &a, 0), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 1), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &a, 2), AGG_DUPLICATE);
        assert_int_equal(agg_part_add(pt, &b, 3), AGG_DUPLICATE);
        assert_int_equal(agg_part_add(pt, &c, 4), AGG_DUPLICATE);  /* below a */
        bad = a;
        bad.origin.partition = AGG_ORIGIN_PARTITION_MAX + 1;
        assert_int_equal(agg_part_add(pt, &bad, 5), AGG_BAD_ORIGIN);
        bad = a;
        bad.origin.offset = AGG_ORIGIN_OFFSET_LIMIT;
        assert_int_equal(agg_part_add(pt, &bad, 5), AGG_BAD_ORIGIN);
        bad = a;
        bad.origin.partition = -1;
        assert_int_equal(agg_part_add(pt, &bad, 5), AGG_BAD_ORIGIN);
        assert_int_equal(agg_part_open_windows(pt), 1);
        assert_int_equal(advance_to(pt, &k, W + D + L + 1), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(k.e[0].w.count, 2);
        assert_true(k.e[0].w.sum == 0.75);
        assert_true(k.e[0].w.min == -1.5 && k.e[0].w.max == 2.25);
        assert_int_equal(k.e[0].w.first_ts, 0);
        assert_true(k.e[0].w.first_value == 2.25);
        assert_int_equal(k.e[0].w.first_pos.partition, 0);
        assert_int_equal(k.e[0].w.first_pos.offset, 0);
        assert_int_equal(k.e[0].w.first_pos.index, 0);
        assert_int_equal(k.e[0].w.last_ts, W - 1);
        assert_true(k.e[0].w.last_value == -1.5);
        assert_int_equal(k.e[0].w.last_pos.partition, AGG_ORIGIN_PARTITION_MAX);
        assert_int_equal(k.e[0].w.last_pos.offset, big);
        assert_int_equal(k.e[0].w.last_pos.index, INT32_MAX);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- emit failure ---- */

static void test_emit_failure_retry(void **state)
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        sink k = {0};
        tally_reading a = rd("a", 1000, 1, 0, 1, 0, INT64_MIN);
        tally_reading b = rd("b", 1000, 2, 0, 2, 0, INT64_MIN);
        tally_reading c = rd("c", 1000, 3, 0, 3, 0, INT64_MIN);

        (void)state;
        assert_int_equal(agg_part_add(pt, &a, 0), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &b, 1), AGG_COUNTED);
        assert_int_equal(agg_part_add(pt, &c, 2), AGG_COUNTED);
        agg_part_progress(pt, 1, 0, W + D + L + 1);
        /* a failing emit stops and keeps the window open */
        k.fail_next = 1;
        assert_int_equal(advance(pt, &k), -1);
        assert_int_equal(k.n, 0);
        assert_int_equal(agg_part_open_windows(pt), 3);
        assert_int_equal(agg_part_min_offset(pt), 0);
        assert_int_equal(advance(pt, &k), 0);
        assert_int_equal(agg_part_open_windows(pt), 0);
        /* the window whose emit failed is emitted on the retry: all 3 */
        assert_int_equal(k.n, 3);
        sink_free(&k);
        agg_part_free(pt);
}

/* ---- many series ---- */

typedef struct counter {
        uint64_t n, total;
} counter;

static int count_emit(void *opaque, const agg_series *s, int64_t start,
                      const agg_win *w)
{
        counter *c = opaque;

        (void)s;
        (void)start;
        c->n++;
        c->total += (uint64_t)w->count;
        return 0;
}

static void test_many_series(void **state)
{
        enum { NS = 100000 };
        size_t used_before, used_after;
        agg_part *pt;
        counter c = {0, 0};
        char dev[32];

        (void)state;
        used_before = heap_in_use();
        pt = agg_part_new(&params, INT64_MIN);
        agg_part_progress(pt, 1, 0, 0);
        for (int win = 0; win < 2; win++) {
                for (int i = 0; i < NS; i++) {
                        int reps = win == 0 ? 1 + (i % 3) : 1;

                        snprintf(dev, sizeof(dev), "device-%06d", i);
                        for (int j = 0; j < reps; j++) {
                                tally_reading r = rd(dev, (int64_t)win * W + 100 * j,
                                                     (double)j, 0,
                                                     (int64_t)win * 10 + j, i, 0);
                                assert_int_equal(agg_part_add(pt, &r, win), AGG_COUNTED);
                        }
                }
        }
        used_after = heap_in_use();
        assert_int_equal(agg_part_open_windows(pt), 2 * NS);
        assert_int_equal(agg_series_count(agg_part_series(pt)), NS);
        if (used_after > used_before)
                print_message("# part: %.1f bytes per open window (%d series x 2 windows, "
                              "series table included; heap in use)\n",
                              (double)(used_after - used_before) / (2.0 * NS), NS);
        /* the series table resolves names back */
        for (uint32_t id = 0; id < NS; id += 9999) {
                agg_series sv, *s = &sv;

                agg_series_get(agg_part_series(pt), id, &sv);
                snprintf(dev, sizeof(dev), "device-%06u", id);
                assert_int_equal(s->device_len, strlen(dev));
                assert_memory_equal(s->device, dev, s->device_len);
                assert_memory_equal(s->site, "DAL-07", 6);
        }
        /* emit the first window */
        agg_part_progress(pt, 1, 0, W + D + 1);
        assert_int_equal(agg_part_advance(pt, count_emit, &c), 0);
        assert_int_equal(c.n, NS);
        assert_int_equal(c.total, (uint64_t)NS / 3 * 6 + 1);  /* 1+2+3 per 3 */
        assert_int_equal(agg_part_open_windows(pt), 2 * NS);
        /* finalize the first, emit the second */
        agg_part_progress(pt, 1, 0, 2 * W + D + 1);
        assert_int_equal(agg_part_advance(pt, count_emit, &c), 0);
        assert_int_equal(c.n, 2 * NS);
        assert_int_equal(agg_part_open_windows(pt), NS);
        assert_int_equal(agg_part_min_offset(pt), 1);
        agg_part_progress(pt, 1, 0, 2 * W + D + L + 1);
        assert_int_equal(agg_part_advance(pt, count_emit, &c), 0);
        assert_int_equal(c.n, 2 * NS);
        assert_int_equal(agg_part_open_windows(pt), 0);
        assert_int_equal(agg_part_min_offset(pt), -1);
        agg_part_free(pt);
}

/* ---- the series table's lookups ---- */

/* Devices with more series than the chain walk, more metrics than the
 * recent-metric list, one device name at two sites, names that differ
 * only in length or in their last byte, and every order of lookups:
 * each (site, device, metric) keeps one id, and reads back its names. */
static void test_series_lookups(void **state)
{
        enum { SITES = 2, DEVS = 5, METRICS = 20 };
        static const char *const sites[SITES] = {"DAL-07", "DAL-070"};
        static const char *const devs[DEVS] = {"dev-1", "dev-2", "dev-10",
                                               "dev-100", "dev-1x"};
        char metric[32];
        uint32_t ids[SITES][DEVS][METRICS];
        agg_series_table *t = agg_series_table_new();
        tally_reading r;
        unsigned seed = 7;

        (void)state;
        memset(&r, 0, sizeof(r));
        /* first pass: report order (a device's metrics one after another) */
        for (int s = 0; s < SITES; s++)
                for (int d = 0; d < DEVS; d++)
                        for (int m = 0; m < METRICS; m++) {
                                snprintf(metric, sizeof(metric), "metric-%d", m);
                                r.site = sites[s];
                                r.site_len = (uint16_t)strlen(sites[s]);
                                r.device = devs[d];
                                r.device_len = (uint16_t)strlen(devs[d]);
                                r.metric = metric;
                                r.metric_len = (uint16_t)strlen(metric);
                                ids[s][d][m] = agg_series_intern(t, &r);
                        }
        assert_int_equal(agg_series_count(t), SITES * DEVS * METRICS);
        /* then random order, with copies of the names at new addresses */
        for (int i = 0; i < 20000; i++) {
                char site[16], dev[16];
                int s, d, m;

                seed = seed * 1103515245u + 12345u;
                s = (int)(seed >> 16) % SITES;
                d = (int)(seed >> 8) % DEVS;
                m = (int)(seed >> 20) % METRICS;
                if (i % 7 == 0)
                        m = (m + 1) % METRICS;  /* same device, next metric */
                snprintf(site, sizeof(site), "%s", sites[s]);
                snprintf(dev, sizeof(dev), "%s", devs[d]);
                snprintf(metric, sizeof(metric), "metric-%d", m);
                r.site = site;
                r.site_len = (uint16_t)strlen(site);
                r.device = dev;
                r.device_len = (uint16_t)strlen(dev);
                r.metric = metric;
                r.metric_len = (uint16_t)strlen(metric);
                assert_int_equal(agg_series_intern(t, &r), ids[s][d][m]);
        }
        assert_int_equal(agg_series_count(t), SITES * DEVS * METRICS);
        for (int s = 0; s < SITES; s++)
                for (int d = 0; d < DEVS; d++)
                        for (int m = 0; m < METRICS; m++) {
                                agg_series v;

                                agg_series_get(t, ids[s][d][m], &v);
                                snprintf(metric, sizeof(metric), "metric-%d", m);
                                assert_int_equal(v.site_len, strlen(sites[s]));
                                assert_memory_equal(v.site, sites[s], v.site_len);
                                assert_int_equal(v.device_len, strlen(devs[d]));
                                assert_memory_equal(v.device, devs[d], v.device_len);
                                assert_int_equal(v.metric_len, strlen(metric));
                                assert_memory_equal(v.metric, metric, v.metric_len);
                        }
        agg_series_table_free(t);
}

/* ---- memory in the benchmark's shape ---- */

/* One clean partition of bench/run's 1 M series case (16 partitions):
 * 15,625 devices over 20 sites x 4 metrics, two readings each, all in one
 * window. Reports the bytes per open (series, window) by the heap and by
 * agg_part_bytes, and holds them to the budget with room for the
 * daemon's own overhead. */
static void test_bench_shape_memory(void **state)
{
        enum { DEVICES = 15625 };
        static const char *const metric[4] = {"temperature_c", "humidity_pct",
                                               "power_w", "door_open"};
        size_t before;
        char dev[16], site[16];
        agg_part *pt;
        counter c = {0, 0};
        uint64_t windows;
        size_t used;

        (void)state;
        before = heap_in_use();
        pt = agg_part_new(&params, INT64_MIN);
        agg_part_progress(pt, 1, 0, 0);
        for (int k = 0; k < 2; k++) {
                for (int i = 0; i < DEVICES; i++) {
                        snprintf(dev, sizeof(dev), "dev-%06d", i);
                        snprintf(site, sizeof(site), "site-%02d", i % 20);
                        for (int m = 0; m < 4; m++) {
                                tally_reading r = rd(dev, 10000 * k + i % 1000,
                                                     (double)(i + m), 0,
                                                     (int64_t)k * DEVICES + i, m, 0);
                                r.site = site;
                                r.site_len = (uint16_t)strlen(site);
                                r.metric = metric[m];
                                r.metric_len = (uint16_t)strlen(metric[m]);
                                assert_int_equal(agg_part_add(pt, &r, k), AGG_COUNTED);
                        }
                }
        }
        used = heap_in_use() - before;
        windows = agg_part_open_windows(pt);
        assert_int_equal(windows, DEVICES * 4);
        assert_int_equal(agg_series_count(agg_part_series(pt)), DEVICES * 4);
        print_message("# part: %.1f bytes per open window by the heap, %.1f by "
                      "agg_part_bytes (%u series, 1 window each)\n",
                      (double)used / (double)windows,
                      (double)agg_part_bytes(pt) / (double)windows, DEVICES * 4);
        assert_true(agg_part_bytes(pt) / windows <= 192);
        agg_part_progress(pt, 1, 0, W + D + L + 1);
        assert_int_equal(agg_part_advance(pt, count_emit, &c), 0);
        assert_int_equal(c.n, DEVICES * 4);
        assert_int_equal(c.total, DEVICES * 8);
        assert_int_equal(agg_part_open_windows(pt), 0);
        agg_part_free(pt);
}


/* ---- order independence ---- */

#define P_ORIGINS 3
#define P_SERIES 5
#define P_MSGS 60

typedef struct pitem {
        int is_marker;
        tally_reading r;        /* device points into dev_names */
        int32_t origin;
        int64_t progress;       /* marker */
} pitem;

typedef struct pstream {
        pitem *it;
        size_t n, cap;
} pstream;

static const char *dev_names[P_SERIES] = {"s0", "s1", "s2", "s3", "s4"};

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static void pstream_push(pstream *s, const pitem *it)
{
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 64;
                s->it = realloc(s->it, s->cap * sizeof(*s->it));
                assert_non_null(s->it);
        }
        s->it[s->n++] = *it;
}

/* expected final state per (series, window): brute force from semantics */
typedef struct pexp {
        int64_t start;
        int series;
        int64_t count;
        double sum, min, max;
        int64_t first_ts, last_ts;
        tally_pos first_pos, last_pos;
} pexp;

static int exp_find(pexp *e, size_t n, int series, int64_t start)
{
        for (size_t i = 0; i < n; i++)
                if (e[i].series == series && e[i].start == start)
                        return (int)i;
        return -1;
}

static void build_streams(pstream *st, pexp **expp, size_t *nexp)
{
        uint64_t rng = 0x9e3779b97f4a7c15u;
        pexp *e = NULL;
        size_t ne = 0;

        for (int o = 0; o < P_ORIGINS; o++) {
                int64_t progress = INT64_MIN, rec_ts = 1000000 + o * 7000;
                size_t msg_begin = 0;

                for (int m = 0; m < P_MSGS; m++) {
                        int nr = 1 + (int)(rng_next(&rng) % 3);
                        int64_t before = progress, after = progress;

                        rec_ts += (int64_t)(rng_next(&rng) % 9000);
                        msg_begin = st[o].n;
                        for (int i = 0; i < nr; i++) {
                                pitem it;
                                uint64_t x = rng_next(&rng);
                                int64_t ts = rec_ts - (int64_t)(x % 40000) + 3000;
                                int series = (int)((x >> 20) % P_SERIES);

                                if ((x >> 40) % 10 == 0)
                                        ts -= 70000;    /* sometimes very late */
                                memset(&it, 0, sizeof(it));
                                it.origin = o;
                                it.r = rd(dev_names[series], ts,
                                          (double)(int64_t)((x >> 8) % 1000) - 500.0,
                                          o, m, i, before);
                                pstream_push(&st[o], &it);
                                int64_t adv = ts < rec_ts + D ? ts : rec_ts + D;
                                if (adv > after)
                                        after = adv;

                                /* expectation */
                                int64_t start = tally_window_start(ts, W);
                                if (before != INT64_MIN && before > start + W + D + L)
                                        continue;       /* too late */
                                int k = exp_find(e, ne, series, start);
                                if (k < 0) {
                                        e = realloc(e, (ne + 1) * sizeof(*e));
                                        assert_non_null(e);
                                        k = (int)ne++;
                                        memset(&e[k], 0, sizeof(e[k]));
                                        e[k].series = series;
                                        e[k].start = start;
                                }
                                pexp *x2 = &e[k];
                                double v = it.r.value;
                                if (!x2->count) {
                                        x2->sum = x2->min = x2->max = v;
                                        x2->first_ts = x2->last_ts = ts;
                                        x2->first_pos = x2->last_pos = it.r.origin;
                                } else {
                                        x2->sum += v;
                                        if (v < x2->min)
                                                x2->min = v;
                                        if (v > x2->max)
                                                x2->max = v;
                                        if (ts < x2->first_ts ||
                                            (ts == x2->first_ts &&
                                             tally_pos_cmp(&it.r.origin, &x2->first_pos) < 0)) {
                                                x2->first_ts = ts;
                                                x2->first_pos = it.r.origin;
                                        }
                                        if (ts > x2->last_ts ||
                                            (ts == x2->last_ts &&
                                             tally_pos_cmp(&it.r.origin, &x2->last_pos) > 0)) {
                                                x2->last_ts = ts;
                                                x2->last_pos = it.r.origin;
                                        }
                                }
                                x2->count++;
                        }
                        progress = after;
                        {
                                pitem mk;

                                memset(&mk, 0, sizeof(mk));
                                mk.is_marker = 1;
                                mk.origin = o;
                                mk.progress = progress;
                                pstream_push(&st[o], &mk);
                        }
                }
                /* a re-delivered tail: the last messages again */
                {
                        size_t from = msg_begin > 60 ? msg_begin - 60 : 0;
                        size_t to = st[o].n;

                        for (size_t i = from; i < to; i++) {
                                pitem copy = st[o].it[i];
                                pstream_push(&st[o], &copy);
                        }
                }
                /* the end: the origin goes far ahead */
                {
                        pitem mk;

                        memset(&mk, 0, sizeof(mk));
                        mk.is_marker = 1;
                        mk.origin = o;
                        mk.progress = progress + 86400000;
                        pstream_push(&st[o], &mk);
                }
        }
        *expp = e;
        *nexp = ne;
}

typedef struct pfinal {
        int series;
        int64_t start;
        agg_win w;
} pfinal;

typedef struct psink {
        pfinal *f;
        size_t n;
} psink;

static int p_emit(void *opaque, const agg_series *s, int64_t start,
                  const agg_win *w)
{
        psink *k = opaque;
        int series = s->device[1] - '0';
        size_t i;

        for (i = 0; i < k->n; i++)
                if (k->f[i].series == series && k->f[i].start == start)
                        break;
        if (i == k->n) {
                k->f = realloc(k->f, (k->n + 1) * sizeof(*k->f));
                assert_non_null(k->f);
                k->n++;
        } else {
                /* re-emission: only ever more readings */
                assert_true(w->count > k->f[i].w.count);
        }
        k->f[i].series = series;
        k->f[i].start = start;
        k->f[i].w = *w;
        return 0;
}

static void run_order(const pstream *st, uint64_t seed, psink *out,
                      unsigned outcomes[4])
{
        agg_part *pt = agg_part_new(&params, INT64_MIN);
        size_t at[P_ORIGINS] = {0};
        int64_t clean_off = 0;
        uint64_t rng = seed;

        memset(out, 0, sizeof(*out));
        for (;;) {
                int live[P_ORIGINS], nl = 0, o;
                const pitem *it;

                for (int i = 0; i < P_ORIGINS; i++)
                        if (at[i] < st[i].n)
                                live[nl++] = i;
                if (!nl)
                        break;
                o = live[rng_next(&rng) % (uint64_t)nl];
                it = &st[o].it[at[o]++];
                if (it->is_marker) {
                        agg_part_progress(pt, P_ORIGINS, it->origin, it->progress);
                } else {
                        agg_add_result res = agg_part_add(pt, &it->r, clean_off++);
                        assert_true(res == AGG_COUNTED || res == AGG_DUPLICATE ||
                                    res == AGG_TOO_LATE || res == AGG_FINAL);
                        outcomes[res]++;
                }
                if (rng_next(&rng) % 5 == 0)
                        assert_int_equal(agg_part_advance(pt, p_emit, out), 0);
        }
        assert_int_equal(agg_part_advance(pt, p_emit, out), 0);
        assert_int_equal(agg_part_open_windows(pt), 0);
        assert_int_equal(agg_part_min_offset(pt), -1);
        agg_part_free(pt);
}

static void test_order_independence(void **state)
{
        pstream st[P_ORIGINS];
        pexp *e = NULL;
        size_t ne = 0;
        psink first = {NULL, 0};

        (void)state;
        memset(st, 0, sizeof(st));
        build_streams(st, &e, &ne);
        assert_true(ne > 10);
        for (int trial = 0; trial < 8; trial++) {
                psink k;
                unsigned outcomes[4] = {0, 0, 0, 0};

                run_order(st, 0x1234567ULL * (uint64_t)(trial + 1) + 77, &k, outcomes);
                /* the data exercise lateness and re-delivery */
                assert_true(outcomes[AGG_COUNTED] > 50);
                assert_true(outcomes[AGG_TOO_LATE] > 0);
                assert_true(outcomes[AGG_DUPLICATE] + outcomes[AGG_FINAL] > 0);
                if (trial == 0)
                        print_message("# order: counted %u, too_late %u, duplicate %u, final %u\n",
                                      outcomes[AGG_COUNTED], outcomes[AGG_TOO_LATE],
                                      outcomes[AGG_DUPLICATE], outcomes[AGG_FINAL]);
                /* equal to the brute-force expectation */
                assert_int_equal(k.n, ne);
                for (size_t i = 0; i < ne; i++) {
                        size_t j;

                        for (j = 0; j < k.n; j++)
                                if (k.f[j].series == e[i].series &&
                                    k.f[j].start == e[i].start)
                                        break;
                        assert_true(j < k.n);
                        const agg_win *w = &k.f[j].w;
                        assert_int_equal(w->count, e[i].count);
                        assert_true(w->sum == e[i].sum);
                        assert_true(w->min == e[i].min);
                        assert_true(w->max == e[i].max);
                        assert_int_equal(w->first_ts, e[i].first_ts);
                        assert_int_equal(w->last_ts, e[i].last_ts);
                        assert_int_equal(tally_pos_cmp(&w->first_pos, &e[i].first_pos), 0);
                        assert_int_equal(tally_pos_cmp(&w->last_pos, &e[i].last_pos), 0);
                }
                /* and to the first order, field by field */
                if (trial == 0) {
                        first = k;
                        continue;
                }
                for (size_t i = 0; i < k.n; i++) {
                        size_t j;

                        for (j = 0; j < first.n; j++)
                                if (first.f[j].series == k.f[i].series &&
                                    first.f[j].start == k.f[i].start)
                                        break;
                        assert_true(j < first.n);
                        assert_memory_equal(&first.f[j].w.sum, &k.f[i].w.sum, sizeof(double));
                        assert_true(first.f[j].w.first_value == k.f[i].w.first_value);
                        assert_true(first.f[j].w.last_value == k.f[i].w.last_value);
                        assert_int_equal(first.f[j].w.count, k.f[i].w.count);
                }
                free(k.f);
        }
        free(first.f);
        for (int o = 0; o < P_ORIGINS; o++)
                free(st[o].it);
        free(e);
}

/* ---- names repeated within a clean record ---- */

static const emitted *find_emitted(const sink *k, const char *device,
                                   int64_t count)
{
        for (size_t i = 0; i < k->n; i++)
                if (!strcmp(k->e[i].device, device) && k->e[i].w.count == count)
                        return &k->e[i];
        return NULL;
}

/* The series table guesses a reading's series from the last one (the
 * device that came next before, the metric created next, the metric of
 * the same table slot of the same record); every guess is checked.
 * Records whose device order, metric order (so their metric tables) and
 * metrics per report differ from one to the next must still give every
 * reading the series of its own names, and one id per series. */
static void test_series_guesses(void **state)
{
        enum { DEVS = 6, METRICS = 4, RECORDS = 8 };
        static const char *const metrics[METRICS] = {"temperature_c",
                                                     "humidity_pct", "power_w",
                                                     "door_open"};
        char devs[DEVS][16], key[64];
        char keys[DEVS * METRICS][64];
        uint32_t ids[DEVS * METRICS];
        size_t nkeys = 0, nread = 0;
        agg_series_table *t = agg_series_table_new();
        tally_clean_writer cw;
        unsigned seed = 11;

        (void)state;
        memset(&cw, 0, sizeof(cw));
        for (int d = 0; d < DEVS; d++)
                snprintf(devs[d], sizeof(devs[d]), "dev-%d", d * 37);
        for (int rec = 0; rec < RECORDS; rec++) {
                tally_clean_reader cr;
                tally_err err;
                const unsigned char *buf;
                size_t len;
                int order[DEVS], mshift = rec % METRICS;

                for (int d = 0; d < DEVS; d++)
                        order[d] = d;
                /* the same order twice, then a shuffle */
                if (rec % 3 == 2)
                        for (int d = DEVS - 1; d > 0; d--) {
                                int j, x;

                                seed = seed * 1103515245u + 12345u;
                                j = (int)((seed >> 16) % (unsigned)(d + 1));
                                x = order[d];
                                order[d] = order[j];
                                order[j] = x;
                        }
                tally_clean_writer_reset(&cw);
                for (int i = 0; i < DEVS; i++)
                        for (int k = 0; k < METRICS; k++) {
                                tally_reading r = rd(devs[order[i]], W + i, 1,
                                                     0, 100 + i, k, INT64_MIN);
                                /* rotated per record; device 0 skips one */
                                int m = (k + mshift) % METRICS;

                                if (order[i] == 0 && k == 1)
                                        continue;
                                r.site = order[i] % 2 ? "DAL-07" : "DAL-070";
                                r.site_len = (uint16_t)strlen(r.site);
                                r.metric = metrics[m];
                                r.metric_len = (uint16_t)strlen(metrics[m]);
                                tally_clean_writer_add(&cw, &r);
                        }
                buf = tally_clean_writer_finish(&cw, &len);
                assert_int_equal(tally_clean_reader_init(&cr, buf, len, &err), 0);
                while (tally_clean_reader_step(&cr, &err) == 1) {
                        const tally_reading *r = &cr.prev;
                        uint32_t id = agg_series_intern_next(t, r, r->repeat, rec);
                        agg_series v;
                        size_t j;

                        agg_series_get(t, id, &v);
                        assert_int_equal(v.site_len, r->site_len);
                        assert_memory_equal(v.site, r->site, r->site_len);
                        assert_int_equal(v.device_len, r->device_len);
                        assert_memory_equal(v.device, r->device, r->device_len);
                        assert_int_equal(v.metric_len, r->metric_len);
                        assert_memory_equal(v.metric, r->metric, r->metric_len);
                        snprintf(key, sizeof(key), "%.*s/%.*s/%.*s",
                                 r->site_len, r->site, r->device_len, r->device,
                                 r->metric_len, r->metric);
                        for (j = 0; j < nkeys && strcmp(keys[j], key); j++)
                                ;
                        if (j == nkeys) {
                                assert_true(nkeys < DEVS * METRICS);
                                strcpy(keys[nkeys], key);
                                ids[nkeys++] = id;
                        }
                        assert_int_equal(id, ids[j]);
                        nread++;
                }
        }
        assert_int_equal(nread, RECORDS * (DEVS * METRICS - 1));
        /* device 0 skips a different metric as the rotation moves */
        assert_int_equal(nkeys, DEVS * METRICS);
        assert_int_equal(agg_series_count(t), DEVS * METRICS);
        agg_series_table_free(t);
        tally_clean_writer_free(&cw);
}

/* The clean reader marks names equal to the previous reading's, and the
 * part then takes them from the previous reading interned. A reading that
 * returns early (too late, final) is not interned, so the next one must
 * be looked up by its names: here "b" would otherwise count as "a". */
static void test_repeated_names_chain(void **state)
{
        tally_clean_writer cw;
        tally_clean_reader cr;
        tally_reading in[5], r;
        tally_err err;
        const unsigned char *buf;
        size_t len, n = 0;
        sink k = {0};
        agg_part *pt = agg_part_new(&params, 0);
        int64_t late = 10 * W + D + L + 1;

        (void)state;
        in[0] = rd("a", 10 * W + 1, 1, 0, 1, 0, 10 * W);
        in[1] = rd("b", 0, 50, 0, 2, 0, late);          /* too late */
        in[2] = rd("b", 10 * W + 2, 2, 0, 3, 0, 10 * W);
        in[3] = rd("b", 10 * W + 3, 3, 0, 4, 0, 10 * W);
        in[4] = rd("a", 10 * W + 4, 4, 0, 5, 0, 10 * W);
        in[3].metric = "humidity";
        in[3].metric_len = 8;
        memset(&cw, 0, sizeof(cw));
        for (size_t i = 0; i < 5; i++)
                tally_clean_writer_add(&cw, &in[i]);
        buf = tally_clean_writer_finish(&cw, &len);
        assert_int_equal(tally_clean_reader_init(&cr, buf, len, &err), 0);
        static const agg_add_result want[] = {AGG_COUNTED, AGG_TOO_LATE,
                                              AGG_COUNTED, AGG_COUNTED,
                                              AGG_COUNTED};
        static const uint8_t repeat[] = {0, 5, 7, 3, 1};
        while (tally_clean_reader_next(&cr, &r, &err) == 1) {
                assert_int_equal(r.repeat, repeat[n]);
                assert_int_equal(agg_part_add(pt, &r, (int64_t)n), want[n]);
                n++;
        }
        assert_int_equal(n, 5);
        assert_int_equal(agg_series_count(agg_part_series(pt)), 3);
        assert_int_equal(advance_to(pt, &k, 11 * W + D + 1), 0);
        assert_int_equal(k.n, 3);
        assert_non_null(find_emitted(&k, "a", 2));
        const emitted *b = find_emitted(&k, "b", 1);
        assert_non_null(b);
        assert_true(b->w.sum == 2 || b->w.sum == 3);
        assert_null(find_emitted(&k, "a", 3));
        sink_free(&k);
        agg_part_free(pt);
        tally_clean_writer_free(&cw);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_window_boundaries),
                cmocka_unit_test(test_end_exclusive),
                cmocka_unit_test(test_emit_and_reemit),
                cmocka_unit_test(test_too_late_boundary),
                cmocka_unit_test(test_finalization),
                cmocka_unit_test(test_final_below_constructor),
                cmocka_unit_test(test_duplicates),
                cmocka_unit_test(test_duplicates_scope),
                cmocka_unit_test(test_first_last_ties),
                cmocka_unit_test(test_first_last_ts_wins),
                cmocka_unit_test(test_watermark_min),
                cmocka_unit_test(test_watermark_equal_min),
                cmocka_unit_test(test_watermark_after_partition_growth),
                cmocka_unit_test(test_min_offset),
                cmocka_unit_test(test_min_offset_late),
                cmocka_unit_test(test_emit_failure_retry),
                cmocka_unit_test(test_packed_limits),
                cmocka_unit_test(test_many_series),
                cmocka_unit_test(test_series_lookups),
                cmocka_unit_test(test_series_guesses),
                cmocka_unit_test(test_bench_shape_memory),
                cmocka_unit_test(test_order_independence),
                cmocka_unit_test(test_repeated_names_chain),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
