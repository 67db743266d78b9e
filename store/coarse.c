/* store/coarse.c -- ordering, dedupe and coarse merge of a batch (see
 * coarse.h). */
#include "store/coarse.h"

#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "store/copybin.h"

static int by_key(const void *pa, const void *pb, void *ctx)
{
        const store_row *rows = ctx;
        const store_row *a = &rows[*(const uint32_t *)pa];
        const store_row *b = &rows[*(const uint32_t *)pb];

        if (a->series != b->series)
                return a->series < b->series ? -1 : 1;
        if (a->r.start_ms != b->r.start_ms)
                return a->r.start_ms < b->r.start_ms ? -1 : 1;
        if (a->r.version != b->r.version)   /* newest first */
                return a->r.version > b->r.version ? -1 : 1;
        return 0;
}

void store_coarse_order(store_batch *b)
{
        size_t j = 0;

        if (b->ord_cap < b->n) {
                free(b->ord);
                b->ord_cap = b->cap;
                b->ord = malloc(b->ord_cap * sizeof(*b->ord));
                if (!b->ord)
                        abort();
        }
        for (size_t i = 0; i < b->n; i++)
                b->ord[i] = (uint32_t)i;
        qsort_r(b->ord, b->n, sizeof(*b->ord), by_key, b->rows);
        for (size_t i = 0; i < b->n; i++) {
                const store_row *r = &b->rows[b->ord[i]];
                const store_row *p = j ? &b->rows[b->ord[j - 1]] : NULL;

                if (p && p->series == r->series &&
                    p->r.start_ms == r->r.start_ms)
                        continue;       /* an older version of the key */
                b->ord[j++] = b->ord[i];
        }
        b->nord = j;
}

static void put_edge(tally_buf *out, const tally_rollup_edge *e)
{
        store_copybin_float8(out, e->value);
        store_copybin_ts(out, e->ts_ms);
        store_copybin_int4(out, e->pos.partition);
        store_copybin_int8(out, e->pos.offset);
        store_copybin_int4(out, e->pos.index);
}

/* the 17 STORE_COLS of a rollup under series, bucket */
static void put_row(tally_buf *out, int64_t series, int64_t bucket,
                    const tally_rollup *r)
{
        store_copybin_int8(out, series);
        store_copybin_ts(out, bucket);
        store_copybin_int8(out, r->count);
        store_copybin_float8(out, r->sum);
        store_copybin_float8(out, r->min);
        store_copybin_float8(out, r->max);
        put_edge(out, &r->first);
        put_edge(out, &r->last);
        store_copybin_int8(out, r->version);
}

void store_coarse_copy_finest(const store_batch *b, tally_buf *out)
{
        tally_buf_reset(out);
        store_copybin_header(out);
        for (size_t i = 0; i < b->nord; i++) {
                const store_row *row = &b->rows[b->ord[i]];

                store_copybin_tuple(out, 17);
                put_row(out, row->series, row->r.start_ms, &row->r);
        }
        store_copybin_trailer(out);
}

static int edge_cmp(const tally_rollup_edge *a, const tally_rollup_edge *b)
{
        if (a->ts_ms != b->ts_ms)
                return a->ts_ms < b->ts_ms ? -1 : 1;
        return tally_pos_cmp(&a->pos, &b->pos);
}

/* folds finest row r into the coarse accumulator m (m->count == 0: empty) */
static void fold(tally_rollup *m, const tally_rollup *r)
{
        if (!m->count) {
                *m = *r;
                return;
        }
        m->count += r->count;
        m->sum += r->sum;
        m->version += r->version;
        if (r->min < m->min)
                m->min = r->min;
        if (r->max > m->max)
                m->max = r->max;
        if (edge_cmp(&r->first, &m->first) < 0)
                m->first = r->first;
        if (edge_cmp(&r->last, &m->last) > 0)
                m->last = r->last;
}

void store_coarse_copy_merged(const store_batch *b, const tally_windows *w,
                              tally_buf *out)
{
        tally_buf_reset(out);
        store_copybin_header(out);
        for (int k = 1; k < w->n; k++) {
                tally_rollup m;
                int64_t series = 0, cb = 0;

                memset(&m, 0, sizeof(m));       /* count 0: empty */
                for (size_t i = 0; i <= b->nord; i++) {
                        const store_row *row = i < b->nord ?
                                               &b->rows[b->ord[i]] : NULL;
                        int64_t s = row ? tally_window_start(row->r.start_ms,
                                                             w->ms[k]) : 0;

                        if (m.count && (!row || row->series != series ||
                                        s != cb)) {
                                store_copybin_tuple(out, 18);
                                store_copybin_int4(out, k);
                                put_row(out, series, cb, &m);
                                m.count = 0;
                        }
                        if (!row)
                                break;
                        series = row->series;
                        cb = s;
                        fold(&m, &row->r);
                }
        }
        store_copybin_trailer(out);
}
