#include "aggregate/part.h"

#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"

/* An open (series, window), packed to 104 bytes: times as offsets from
 * the window start, positions as partition << 48 | offset plus index
 * (limits in part.h). seen is the highest position counted from the
 * window's first origin (count > 0 means it is set); positions of
 * further origins are chained from `more` into the slot's pool. */
typedef struct win_state {
        uint32_t series;
        uint32_t more;                  /* pool entry + 1, 0 = none */
        int64_t count;
        double sum, min, max;
        double first_value, last_value;
        uint64_t first_po, last_po, seen_po;
        uint32_t first_dt, last_dt;
        int32_t first_idx, last_idx, seen_idx;
} win_state;

_Static_assert(sizeof(win_state) == 104, "window state grew");

#define PO_OFFSET_MASK (((uint64_t)1 << 48) - 1)

static inline uint64_t pos_pack(const tally_pos *p)
{
        return (uint64_t)p->partition << 48 | (uint64_t)p->offset;
}

static inline tally_pos pos_unpack(uint64_t po, int32_t index)
{
        tally_pos p = {.partition = (int32_t)(po >> 48), .index = index,
                       .offset = (int64_t)(po & PO_OFFSET_MASK)};
        return p;
}

/* (a_po, a_idx) < (b_po, b_idx): the order of tally_pos_cmp */
static inline int po_less(uint64_t a_po, int32_t a_idx, uint64_t b_po, int32_t b_idx)
{
        return a_po < b_po || (a_po == b_po && a_idx < b_idx);
}

#define WIN_BLOCK_BITS 10
#define WIN_BLOCK (1u << WIN_BLOCK_BITS)

/* Windows in fixed blocks: no realloc slack or copying as a slot grows,
 * and the dirty bits next to them instead of a list. */
typedef struct win_block {
        uint64_t dirty[WIN_BLOCK / 64];
        win_state w[WIN_BLOCK];
} win_block;

/* Positions of origins beyond a window's first (rare: a series whose
 * readings come from several raw partitions), chained per window. */
typedef struct more_pos {
        tally_pos pos;
        uint32_t next;          /* entry + 1, 0 = end */
} more_pos;

typedef struct agg_slot {
        int64_t start;
        win_block **blocks;
        uint32_t n, nblocks;
        uint32_t *index;        /* series -> win idx + 1 (open addressing) */
        uint32_t mask;
        uint32_t ndirty;
        more_pos *more;
        uint32_t nmore, more_cap;
        int64_t min_offset;
} agg_slot;

#define WIN(s, i) (&(s)->blocks[(i) >> WIN_BLOCK_BITS]->w[(i) & (WIN_BLOCK - 1)])

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
        int64_t last_start;     /* window start of the last reading added */
        int last_slot;          /* its slot's index, a guess (checked) */
        int chained;            /* the last reading added was interned */
};

agg_part *agg_part_new(const agg_params *p, int64_t final_below)
{
        agg_part *pt = calloc(1, sizeof(*pt));

        if (!pt || p->window_ms < 1 || p->window_ms > AGG_WINDOW_MS_MAX)
                abort();        /* out of memory, or a caller's bug */
        pt->p = *p;
        pt->series = agg_series_table_new();
        pt->watermark = INT64_MIN;
        pt->final_below = final_below;
        pt->last_start = INT64_MIN;
        return pt;
}

static void slot_free(agg_slot *s)
{
        for (uint32_t b = 0; b < s->nblocks; b++)
                free(s->blocks[b]);
        free(s->blocks);
        free(s->index);
        free(s->more);
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
        int i = pt->last_slot;

        if (i < pt->nslots && pt->slots[i].start == start)
                return &pt->slots[i];
        pt->last_slot = 0;      /* found below, or inserted (indexes move) */

        for (i = pt->nslots - 1; i >= 0; i--) {
                if (pt->slots[i].start == start) {
                        pt->last_slot = i;
                        return &pt->slots[i];
                }
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
        uint32_t *idx = calloc((size_t)mask + 1, sizeof(*idx));

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

/* The window of series in slot s, created if new. The series' user word
 * remembers its window's idx in the slot it was last counted in: a guess
 * (checked) that saves the index probe while readings of one window
 * arrive. */
static win_state *slot_win(agg_part *pt, agg_slot *s, uint32_t series, uint32_t *idx_out)
{
        uint32_t *hint = agg_series_user(pt->series, series);
        uint32_t h;
        win_state *w;

        if (*hint < s->n && WIN(s, *hint)->series == series) {
                *idx_out = *hint;
                return WIN(s, *hint);
        }
        h = slot_hash(series) & s->mask;
        while (s->index[h]) {
                w = WIN(s, s->index[h] - 1);
                if (w->series == series) {
                        *idx_out = *hint = s->index[h] - 1;
                        return w;
                }
                h = (h + 1) & s->mask;
        }
        if (s->n == s->nblocks * WIN_BLOCK) {
                if (s->n == UINT32_MAX - WIN_BLOCK)
                        abort();
                s->blocks = realloc(s->blocks, (s->nblocks + 1) * sizeof(*s->blocks));
                if (!s->blocks)
                        abort();
                s->blocks[s->nblocks] = malloc(sizeof(win_block));
                if (!s->blocks[s->nblocks])
                        abort();
                memset(s->blocks[s->nblocks]->dirty, 0,
                       sizeof(s->blocks[s->nblocks]->dirty));
                s->nblocks++;
        }
        w = WIN(s, s->n);
        memset(w, 0, sizeof(*w));
        w->series = series;
        s->index[h] = ++s->n;
        *idx_out = *hint = s->n - 1;
        pt->open++;
        /* load factor at most 3/4 */
        if ((uint64_t)s->n * 4 > ((uint64_t)s->mask + 1) * 3)
                slot_grow(s);
        return w;
}

/* Highest position counted from a further origin of w (partition -1:
 * none yet). */
static tally_pos *win_more(agg_slot *s, win_state *w, int32_t origin)
{
        uint32_t e;

        for (e = w->more; e; e = s->more[e - 1].next)
                if (s->more[e - 1].pos.partition == origin)
                        return &s->more[e - 1].pos;
        if (s->nmore == s->more_cap) {
                if (s->more_cap >= UINT32_MAX / 2)
                        abort();
                s->more_cap = s->more_cap ? s->more_cap * 2 : 16;
                s->more = realloc(s->more, (size_t)s->more_cap * sizeof(*s->more));
                if (!s->more)
                        abort();
        }
        e = s->nmore++;
        s->more[e].pos.partition = -1;
        s->more[e].next = w->more;
        w->more = e + 1;
        return &s->more[e].pos;
}

static void slot_mark_dirty(agg_slot *s, uint32_t idx)
{
        uint64_t *word = &s->blocks[idx >> WIN_BLOCK_BITS]->dirty[(idx & (WIN_BLOCK - 1)) >> 6];
        uint64_t bit = (uint64_t)1 << (idx & 63);

        if (*word & bit)
                return;
        *word |= bit;
        s->ndirty++;
}

agg_add_result agg_part_add(agg_part *pt, const tally_reading *r,
                            int64_t clean_offset)
{
        /* most readings fall in the last one's window: skip the division */
        int64_t start = r->ts_ms >= pt->last_start &&
                        (uint64_t)r->ts_ms - (uint64_t)pt->last_start <
                                (uint64_t)pt->p.window_ms ?
                        pt->last_start :
                        (pt->last_start = tally_window_start(r->ts_ms, pt->p.window_ms));
        int64_t end = start + pt->p.window_ms;
        int32_t index = r->origin.index;
        uint64_t po;
        uint32_t dt, idx;
        agg_slot *s;
        win_state *w;

        /* a reading that returns before it is interned breaks the chain
         * of repeated names (agg_series_intern_next) */
        int chained = pt->chained;

        pt->chained = 0;
        if (r->origin.partition < 0 ||
            r->origin.partition > AGG_ORIGIN_PARTITION_MAX ||
            r->origin.offset < 0 || r->origin.offset >= AGG_ORIGIN_OFFSET_LIMIT)
                return AGG_BAD_ORIGIN;
        /* most readings repeat their origin's progress: no call */
        if (r->origin.partition < pt->raw_partitions &&
            r->progress_ms > pt->progress[r->origin.partition])
                agg_part_progress(pt, pt->raw_partitions, r->origin.partition,
                                  r->progress_ms);
        if (r->progress_ms != INT64_MIN &&
            r->progress_ms > end + pt->p.disorder_ms + pt->p.lateness_ms)
                return AGG_TOO_LATE;
        if (end < pt->final_below)
                return AGG_FINAL;
        po = pos_pack(&r->origin);
        dt = (uint32_t)(r->ts_ms - start);
        s = part_slot(pt, start);
        w = slot_win(pt, s, agg_series_intern_next(pt->series, r,
                                                   chained ? r->repeat : 0,
                                                   clean_offset),
                     &idx);
        pt->chained = 1;
        if (!w->count) {
                w->seen_po = w->first_po = w->last_po = po;
                w->seen_idx = w->first_idx = w->last_idx = index;
                w->min = w->max = w->sum = r->value;
                w->first_dt = w->last_dt = dt;
                w->first_value = w->last_value = r->value;
        } else {
                if ((int32_t)(w->seen_po >> 48) == r->origin.partition) {
                        if (!po_less(w->seen_po, w->seen_idx, po, index))
                                return AGG_DUPLICATE;
                        w->seen_po = po;
                        w->seen_idx = index;
                } else {
                        tally_pos *seen = win_more(s, w, r->origin.partition);

                        if (seen->partition == r->origin.partition &&
                            tally_pos_cmp(&r->origin, seen) <= 0)
                                return AGG_DUPLICATE;
                        *seen = r->origin;
                }
                w->sum += r->value;
                /* selects, not branches (values are finite): the
                 * predictor missed ~5 % of each */
                w->min = r->value < w->min ? r->value : w->min;
                w->max = r->value > w->max ? r->value : w->max;
                if (dt < w->first_dt ||
                    (dt == w->first_dt && po_less(po, index, w->first_po, w->first_idx))) {
                        w->first_dt = dt;
                        w->first_value = r->value;
                        w->first_po = po;
                        w->first_idx = index;
                }
                if (w->last_dt < dt ||
                    (w->last_dt == dt && po_less(w->last_po, w->last_idx, po, index))) {
                        w->last_dt = dt;
                        w->last_value = r->value;
                        w->last_po = po;
                        w->last_idx = index;
                }
        }
        w->count++;
        if (clean_offset < s->min_offset)
                s->min_offset = clean_offset;
        slot_mark_dirty(s, idx);
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

/* Emits the dirty windows in index order; on failure the window that
 * failed and those after it stay dirty for the next try. */
static void win_view(const agg_slot *s, const win_state *w, agg_win *v)
{
        v->count = w->count;
        v->sum = w->sum;
        v->min = w->min;
        v->max = w->max;
        v->first_ts = s->start + (int64_t)w->first_dt;
        v->last_ts = s->start + (int64_t)w->last_dt;
        v->first_value = w->first_value;
        v->last_value = w->last_value;
        v->first_pos = pos_unpack(w->first_po, w->first_idx);
        v->last_pos = pos_unpack(w->last_po, w->last_idx);
}

static int slot_emit(agg_part *pt, agg_slot *s, agg_emit_fn emit, void *opaque)
{
        agg_series names;
        agg_win view;

        for (uint32_t b = 0; b < s->nblocks && s->ndirty; b++) {
                win_block *blk = s->blocks[b];

                for (uint32_t wd = 0; wd < WIN_BLOCK / 64 && s->ndirty; wd++) {
                        while (blk->dirty[wd]) {
                                int bit = __builtin_ctzll(blk->dirty[wd]);
                                const win_state *w = &blk->w[wd * 64 + (uint32_t)bit];

                                win_view(s, w, &view);
                                agg_series_get(pt->series, w->series, &names);
                                if (emit(opaque, &names, s->start, &view))
                                        return -1;
                                blk->dirty[wd] &= blk->dirty[wd] - 1;
                                s->ndirty--;
                        }
                }
        }
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

size_t agg_part_bytes(const agg_part *pt)
{
        size_t n = sizeof(*pt) + (size_t)pt->slot_cap * sizeof(*pt->slots) +
                   (size_t)pt->raw_partitions * sizeof(*pt->progress) +
                   agg_series_bytes(pt->series);

        for (int i = 0; i < pt->nslots; i++) {
                const agg_slot *s = &pt->slots[i];

                n += (size_t)s->nblocks * (sizeof(win_block) + sizeof(*s->blocks)) +
                     ((size_t)s->mask + 1) * sizeof(*s->index) +
                     (size_t)s->more_cap * sizeof(*s->more);
        }
        return n;
}

const agg_series_table *agg_part_series(const agg_part *pt)
{
        return pt->series;
}
