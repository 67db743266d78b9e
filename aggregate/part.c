#include "aggregate/part.h"

#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"

typedef struct agg_slot {
        int64_t start;
        agg_win **blocks;       /* windows in fixed blocks: no realloc
                                   slack or copying as a slot grows */
        uint32_t n, nblocks;
        uint32_t *index;        /* series -> win idx + 1 (open addressing) */
        uint32_t mask;
        uint32_t *dirty;        /* idx of dirty wins */
        uint32_t ndirty, dcap;
        int64_t min_offset;
} agg_slot;

#define WIN_BLOCK_BITS 10
#define WIN_BLOCK (1u << WIN_BLOCK_BITS)
#define WIN(s, i) (&(s)->blocks[(i) >> WIN_BLOCK_BITS][(i) & (WIN_BLOCK - 1)])

struct agg_part {
        agg_params p;
        agg_series_table *series;
        agg_slot *slots;        /* sorted by start */
        int nslots, slot_cap;
        int64_t *progress;      /* [raw_partitions] */
        int32_t raw_partitions;
        int64_t watermark;
        int64_t final_below;
        uint64_t open;
};

agg_part *agg_part_new(const agg_params *p, int64_t final_below)
{
        agg_part *pt = calloc(1, sizeof(*pt));

        if (!pt)
                abort();
        pt->p = *p;
        pt->series = agg_series_table_new();
        pt->watermark = INT64_MIN;
        pt->final_below = final_below;
        return pt;
}

static void slot_free(agg_slot *s)
{
        for (uint32_t i = 0; i < s->n; i++)
                free(WIN(s, i)->more);
        for (uint32_t b = 0; b < s->nblocks; b++)
                free(s->blocks[b]);
        free(s->blocks);
        free(s->index);
        free(s->dirty);
}

void agg_part_free(agg_part *pt)
{
        if (!pt)
                return;
        for (int i = 0; i < pt->nslots; i++)
                slot_free(&pt->slots[i]);
        free(pt->slots);
        free(pt->progress);
        agg_series_table_free(pt->series);
        free(pt);
}

static agg_slot *part_slot(agg_part *pt, int64_t start)
{
        int i;

        for (i = pt->nslots - 1; i >= 0; i--) {
                if (pt->slots[i].start == start)
                        return &pt->slots[i];
                if (pt->slots[i].start < start)
                        break;
        }
        /* insert at i + 1 */
        if (pt->nslots == pt->slot_cap) {
                pt->slot_cap = pt->slot_cap ? pt->slot_cap * 2 : 8;
                pt->slots = realloc(pt->slots, (size_t)pt->slot_cap * sizeof(*pt->slots));
                if (!pt->slots)
                        abort();
        }
        i++;
        memmove(&pt->slots[i + 1], &pt->slots[i],
                (size_t)(pt->nslots - i) * sizeof(*pt->slots));
        pt->nslots++;
        memset(&pt->slots[i], 0, sizeof(pt->slots[i]));
        pt->slots[i].start = start;
        pt->slots[i].mask = 255;
        pt->slots[i].index = calloc(256, sizeof(uint32_t));
        pt->slots[i].min_offset = INT64_MAX;
        if (!pt->slots[i].index)
                abort();
        return &pt->slots[i];
}

static uint32_t slot_hash(uint32_t series)
{
        return series * 2654435761u;
}

static void slot_grow(agg_slot *s)
{
        uint32_t mask = s->mask * 2 + 1;
        uint32_t *idx = calloc(mask + 1, sizeof(*idx));

        if (!idx)
                abort();
        for (uint32_t i = 0; i < s->n; i++) {
                uint32_t h = slot_hash(WIN(s, i)->series) & mask;
                while (idx[h])
                        h = (h + 1) & mask;
                idx[h] = i + 1;
        }
        free(s->index);
        s->index = idx;
        s->mask = mask;
}

static agg_win *slot_win(agg_part *pt, agg_slot *s, uint32_t series, uint32_t *idx_out)
{
        uint32_t h = slot_hash(series) & s->mask;
        agg_win *w;

        while (s->index[h]) {
                w = WIN(s, s->index[h] - 1);
                if (w->series == series) {
                        *idx_out = s->index[h] - 1;
                        return w;
                }
                h = (h + 1) & s->mask;
        }
        if (s->n == s->nblocks * WIN_BLOCK) {
                s->blocks = realloc(s->blocks, (s->nblocks + 1) * sizeof(*s->blocks));
                if (!s->blocks)
                        abort();
                s->blocks[s->nblocks] = malloc(WIN_BLOCK * sizeof(agg_win));
                if (!s->blocks[s->nblocks])
                        abort();
                s->nblocks++;
        }
        w = WIN(s, s->n);
        memset(w, 0, sizeof(*w));
        w->series = series;
        w->seen.partition = -1;
        w->min_offset = INT64_MAX;
        s->index[h] = ++s->n;
        *idx_out = s->n - 1;
        pt->open++;
        if (s->n * 2 > s->mask)
                slot_grow(s);
        return w;
}

/* Highest position counted from r's origin in w; NULL slot to add. */
static tally_pos *win_seen(agg_win *w, int32_t origin)
{
        if (w->seen.partition == origin || w->seen.partition == -1)
                return &w->seen;
        for (uint16_t i = 0; i < w->nmore; i++)
                if (w->more[i].partition == origin)
                        return &w->more[i];
        w->more = realloc(w->more, (w->nmore + 1u) * sizeof(*w->more));
        if (!w->more)
                abort();
        w->more[w->nmore].partition = -1;
        return &w->more[w->nmore++];
}

static void slot_mark_dirty(agg_slot *s, agg_win *w, uint32_t idx)
{
        if (w->dirty)
                return;
        w->dirty = 1;
        if (s->ndirty == s->dcap) {
                s->dcap = s->dcap ? s->dcap * 2 : 64;
                s->dirty = realloc(s->dirty, s->dcap * sizeof(*s->dirty));
                if (!s->dirty)
                        abort();
        }
        s->dirty[s->ndirty++] = idx;
}

static int edge_before(int64_t ts_a, const tally_pos *a, int64_t ts_b,
                       const tally_pos *b)
{
        return ts_a < ts_b || (ts_a == ts_b && tally_pos_cmp(a, b) < 0);
}

agg_add_result agg_part_add(agg_part *pt, const tally_reading *r,
                            int64_t clean_offset)
{
        int64_t start = tally_window_start(r->ts_ms, pt->p.window_ms);
        int64_t end = start + pt->p.window_ms;
        agg_slot *s;
        agg_win *w;
        tally_pos *seen;
        uint32_t idx;

        agg_part_progress(pt, pt->raw_partitions, r->origin.partition,
                          r->progress_ms);
        if (r->progress_ms != INT64_MIN &&
            r->progress_ms > end + pt->p.disorder_ms + pt->p.lateness_ms)
                return AGG_TOO_LATE;
        if (end < pt->final_below)
                return AGG_FINAL;
        s = part_slot(pt, start);
        w = slot_win(pt, s, agg_series_intern(pt->series, r), &idx);
        seen = win_seen(w, r->origin.partition);
        if (seen->partition == r->origin.partition &&
            tally_pos_cmp(&r->origin, seen) <= 0)
                return AGG_DUPLICATE;
        *seen = r->origin;
        if (!w->count) {
                w->min = w->max = w->sum = r->value;
                w->first_ts = w->last_ts = r->ts_ms;
                w->first_value = w->last_value = r->value;
                w->first_pos = w->last_pos = r->origin;
        } else {
                w->sum += r->value;
                if (r->value < w->min)
                        w->min = r->value;
                if (r->value > w->max)
                        w->max = r->value;
                if (edge_before(r->ts_ms, &r->origin, w->first_ts, &w->first_pos)) {
                        w->first_ts = r->ts_ms;
                        w->first_value = r->value;
                        w->first_pos = r->origin;
                }
                if (edge_before(w->last_ts, &w->last_pos, r->ts_ms, &r->origin)) {
                        w->last_ts = r->ts_ms;
                        w->last_value = r->value;
                        w->last_pos = r->origin;
                }
        }
        w->count++;
        if (clean_offset < w->min_offset)
                w->min_offset = clean_offset;
        if (clean_offset < s->min_offset)
                s->min_offset = clean_offset;
        slot_mark_dirty(s, w, idx);
        return AGG_COUNTED;
}

static void part_recompute_watermark(agg_part *pt)
{
        int64_t wm = INT64_MAX;

        if (!pt->raw_partitions) {
                pt->watermark = INT64_MIN;
                return;
        }
        for (int32_t i = 0; i < pt->raw_partitions; i++)
                if (pt->progress[i] < wm)
                        wm = pt->progress[i];
        /* the watermark never goes back (a replayed origin re-reports) */
        if (wm > pt->watermark)
                pt->watermark = wm;
}

void agg_part_progress(agg_part *pt, int32_t raw_partitions, int32_t origin,
                       int64_t progress_ms)
{
        if (raw_partitions > pt->raw_partitions) {
                pt->progress = realloc(pt->progress,
                                       (size_t)raw_partitions * sizeof(int64_t));
                if (!pt->progress)
                        abort();
                for (int32_t i = pt->raw_partitions; i < raw_partitions; i++)
                        pt->progress[i] = INT64_MIN;
                pt->raw_partitions = raw_partitions;
        }
        if (origin < 0 || origin >= pt->raw_partitions ||
            progress_ms <= pt->progress[origin])
                return;
        int64_t old = pt->progress[origin];
        pt->progress[origin] = progress_ms;
        /* the minimum can only rise when an origin at or below it moved
         * (below it: a partition added since the watermark was set) */
        if (old <= pt->watermark || pt->watermark == INT64_MIN)
                part_recompute_watermark(pt);
}

static int slot_emit(agg_part *pt, agg_slot *s, agg_emit_fn emit, void *opaque)
{
        for (uint32_t i = 0; i < s->ndirty; i++) {
                uint32_t idx = s->dirty[i];
                agg_win *w = WIN(s, idx);

                w->dirty = 0;
                if (emit(opaque, agg_series_get(pt->series, w->series), s->start, w)) {
                        /* keep the rest dirty for the next try */
                        memmove(s->dirty, s->dirty + i + 1,
                                (s->ndirty - i - 1) * sizeof(*s->dirty));
                        s->ndirty -= i + 1;
                        slot_mark_dirty(s, w, idx);
                        return -1;
                }
        }
        s->ndirty = 0;
        return 0;
}

int agg_part_advance(agg_part *pt, agg_emit_fn emit, void *opaque)
{
        const agg_params *p = &pt->p;
        int64_t wm = pt->watermark;
        int nfinal = 0;

        if (wm == INT64_MIN)
                return 0;
        for (int i = 0; i < pt->nslots; i++) {
                agg_slot *s = &pt->slots[i];
                int64_t end = s->start + p->window_ms;

                if (wm <= end + p->disorder_ms)
                        break;          /* sorted: later slots wait too */
                if (slot_emit(pt, s, emit, opaque))
                        return -1;
                if (wm > end + p->disorder_ms + p->lateness_ms)
                        nfinal = i + 1;
        }
        for (int i = 0; i < nfinal; i++) {
                pt->open -= pt->slots[i].n;
                slot_free(&pt->slots[i]);
        }
        if (nfinal) {
                memmove(pt->slots, pt->slots + nfinal,
                        (size_t)(pt->nslots - nfinal) * sizeof(*pt->slots));
                pt->nslots -= nfinal;
        }
        /* every window ending below this is final from now on */
        if (wm - p->disorder_ms - p->lateness_ms > pt->final_below)
                pt->final_below = wm - p->disorder_ms - p->lateness_ms;
        return 0;
}

int64_t agg_part_watermark(const agg_part *pt)
{
        return pt->watermark;
}

int64_t agg_part_final_below(const agg_part *pt)
{
        return pt->final_below;
}

int64_t agg_part_min_offset(const agg_part *pt)
{
        int64_t m = INT64_MAX;

        for (int i = 0; i < pt->nslots; i++)
                if (pt->slots[i].min_offset < m)
                        m = pt->slots[i].min_offset;
        return m == INT64_MAX ? -1 : m;
}

uint64_t agg_part_open_windows(const agg_part *pt)
{
        return pt->open;
}

const agg_series_table *agg_part_series(const agg_part *pt)
{
        return pt->series;
}
