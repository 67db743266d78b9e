/* store/coarse.c -- ordering, dedupe and coarse merge of a batch (see
 * coarse.h). */
#include "store/coarse.h"

#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "store/copybin.h"

/* the sort key of a row, compact: sorting these touches a few cache
 * lines per comparison, the rows themselves several hundred bytes */
struct order_key {
        int64_t series, start_ms, version;
        uint32_t i;
};

static int by_key(const void *pa, const void *pb)
{
        const struct order_key *a = pa, *b = pb;

        if (a->series != b->series)
                return a->series < b->series ? -1 : 1;
        if (a->start_ms != b->start_ms)
                return a->start_ms < b->start_ms ? -1 : 1;
        if (a->version != b->version)   /* newest first */
                return a->version > b->version ? -1 : 1;
        return a->i < b->i ? -1 : a->i > b->i;
}

size_t store_coarse_alloc(store_batch *b)
{
        b->ord_cap = b->cap;
        b->ord = malloc(b->cap * sizeof(*b->ord));
        b->order_keys = malloc(b->cap * sizeof(struct order_key));
        if (!b->ord || !b->order_keys)
                abort();
        store_prefault(b->ord, b->cap * sizeof(*b->ord));
        store_prefault(b->order_keys, b->cap * sizeof(struct order_key));
        return b->cap * (sizeof(*b->ord) + sizeof(struct order_key));
}

void store_coarse_order(store_batch *b)
{
        struct order_key *k = b->order_keys;
        size_t j = 0;

        for (size_t i = 0; i < b->n; i++) {
                const store_row *r = &b->rows[i];

                k[i] = (struct order_key){r->series, r->start_ms,
                                          r->a.version, (uint32_t)i};
        }
        qsort(k, b->n, sizeof(*k), by_key);
        for (size_t i = 0; i < b->n; i++) {
                if (j && k[i].series == k[i - 1].series &&
                    k[i].start_ms == k[i - 1].start_ms)
                        continue;       /* an older version of the key */
                b->ord[j++] = k[i].i;
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

/* the 17 STORE_COLS of an aggregate under series, bucket */
static void put_row(tally_buf *out, int64_t series, int64_t bucket,
                    const store_agg *a)
{
        store_copybin_int8(out, series);
        store_copybin_ts(out, bucket);
        store_copybin_int8(out, a->count);
        store_copybin_float8(out, a->sum);
        store_copybin_float8(out, a->min);
        store_copybin_float8(out, a->max);
        put_edge(out, &a->first);
        put_edge(out, &a->last);
        store_copybin_int8(out, a->version);
}

void store_coarse_copy_finest(const store_batch *b, tally_buf *out)
{
        tally_buf_reset(out);
        store_copybin_header(out);
        for (size_t i = 0; i < b->nord; i++) {
                const store_row *row = &b->rows[b->ord[i]];

                store_copybin_tuple(out, 17);
                put_row(out, row->series, row->start_ms, &row->a);
        }
        store_copybin_trailer(out);
}

static int edge_cmp(const tally_rollup_edge *a, const tally_rollup_edge *b)
{
        if (a->ts_ms != b->ts_ms)
                return a->ts_ms < b->ts_ms ? -1 : 1;
        return tally_pos_cmp(&a->pos, &b->pos);
}

/* adds finest row r to the coarse accumulator m (m->count == 0: empty) */
static void add_row(store_agg *m, const store_agg *r)
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

void store_coarse_split(store_batch *b, const tally_windows *w)
{
        for (int k = 1; k < w->n; k++) {
                tally_buf *out = &b->coarse[k];
                store_agg m;
                int64_t series = 0, cb = 0;

                b->ncoarse[k] = 0;
                tally_buf_reset(out);
                store_copybin_header(out);
                memset(&m, 0, sizeof(m));       /* count 0: empty */
                for (size_t i = 0; i <= b->nord; i++) {
                        const store_row *row = i < b->nord ?
                                               &b->rows[b->ord[i]] : NULL;
                        int64_t s = row ? tally_window_start(row->start_ms,
                                                             w->ms[k]) : 0;

                        if (m.count && (!row || row->series != series ||
                                        s != cb)) {
                                store_copybin_tuple(out, 17);
                                put_row(out, series, cb, &m);
                                b->ncoarse[k]++;
                                m.count = 0;
                        }
                        if (!row)
                                break;
                        series = row->series;
                        cb = s;
                        add_row(&m, &row->a);
                }
                store_copybin_trailer(out);
        }
}
