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

/* folds finest row r into the coarse accumulator m (m->count == 0: empty) */
static void fold(store_agg *m, const store_agg *r)
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

/* a key for the known set: (series, bucket, k) mixed into 63 bits,
 * never 0 (the set's empty slot). A collision can only send a new row to
 * the merge, which inserts it: harmless. */
static int64_t coarse_key(int64_t series, int64_t bucket, int k)
{
        uint64_t x = (uint64_t)series ^ ((uint64_t)bucket * 0x9e3779b97f4a7c15u) ^
                     ((uint64_t)k << 56);

        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9u;
        x ^= x >> 29;
        x &= INT64_MAX;
        return x ? (int64_t)x : 1;
}

static void emit(store_batch *b, int k, int64_t ms, int64_t series,
                 int64_t cb, const store_agg *m)
{
        int64_t key = coarse_key(series, cb, k);
        uint64_t check;

        if (b->nckeys == b->ckeys_cap) {
                b->ckeys_cap = b->ckeys_cap ? b->ckeys_cap * 2 : 4096;
                b->ckeys = realloc(b->ckeys, b->ckeys_cap * sizeof(*b->ckeys));
                if (!b->ckeys)
                        abort();
        }
        b->ckeys[b->nckeys].key = key;
        b->ckeys[b->nckeys++].forget_ms = cb + 2 * ms;
        if (store_series_set_find(&b->coarse_known, key, &check)) {
                store_copybin_tuple(&b->coarse, 18);
                store_copybin_int4(&b->coarse, k);
                put_row(&b->coarse, series, cb, m);
                b->ncoarse++;
        } else {
                store_copybin_tuple(&b->coarse_new[k], 17);
                put_row(&b->coarse_new[k], series, cb, m);
                b->nnew[k]++;
        }
}

void store_coarse_split(store_batch *b, const tally_windows *w)
{
        b->nckeys = 0;
        b->ncoarse = 0;
        b->split_latest = INT64_MIN;
        for (size_t i = 0; i < b->nord; i++)
                if (b->rows[b->ord[i]].start_ms > b->split_latest)
                        b->split_latest = b->rows[b->ord[i]].start_ms;
        tally_buf_reset(&b->coarse);
        store_copybin_header(&b->coarse);
        for (int k = 1; k < w->n; k++) {
                store_agg m;
                int64_t series = 0, cb = 0;

                b->nnew[k] = 0;
                tally_buf_reset(&b->coarse_new[k]);
                store_copybin_header(&b->coarse_new[k]);
                memset(&m, 0, sizeof(m));       /* count 0: empty */
                for (size_t i = 0; i <= b->nord; i++) {
                        const store_row *row = i < b->nord ?
                                               &b->rows[b->ord[i]] : NULL;
                        int64_t s = row ? tally_window_start(row->start_ms,
                                                             w->ms[k]) : 0;

                        if (m.count && (!row || row->series != series ||
                                        s != cb)) {
                                emit(b, k, w->ms[k], series, cb, &m);
                                m.count = 0;
                        }
                        if (!row)
                                break;
                        series = row->series;
                        cb = s;
                        fold(&m, &row->a);
                }
                store_copybin_trailer(&b->coarse_new[k]);
        }
        store_copybin_trailer(&b->coarse);
}

void store_coarse_mark_known(store_batch *b)
{
        size_t left;

        for (size_t i = 0; i < b->nckeys; i++) {
                int64_t f = b->ckeys[i].forget_ms;

                store_series_set_put(&b->coarse_known, b->ckeys[i].key,
                                     f > 0 ? (uint64_t)f : 0);
        }
        if (b->split_latest > b->coarse_latest)
                b->coarse_latest = b->split_latest;
        if (b->coarse_known.used < b->coarse_prune_at || b->coarse_latest < 0)
                return;
        left = store_series_set_drop_below(&b->coarse_known,
                                           (uint64_t)b->coarse_latest + 1);
        b->coarse_prune_at = 2 * left > STORE_COARSE_PRUNE_MIN ?
                             2 * left : STORE_COARSE_PRUNE_MIN;
}
