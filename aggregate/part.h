/* aggregate/part.h -- the event-time state of one clean partition: its
 * origins' progress and watermark, and the open windows (finest
 * resolution) of its series. Pure logic, no I/O: the worker feeds it
 * readings and progress markers and is called back for what to emit.
 * Owned by the partition's worker thread.
 *
 * Rules (docs/delivery.md):
 * - watermark = min over all raw partitions of their progress (an origin
 *   not heard from holds it at INT64_MIN);
 * - a reading is too_late iff its progress stamp > end + disorder + lateness;
 * - a reading at or below the highest origin position already counted from
 *   that origin for its window is a duplicate;
 * - a window is emitted when watermark > end + disorder, re-emitted when a
 *   reading is added later, and final (freed) when watermark > end +
 *   disorder + lateness; readings of windows ending below final_below
 *   were counted before and are skipped. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "aggregate/series.h"
#include "common/err.h"
#include "common/reading.h"

typedef struct agg_params {
        int64_t window_ms;
        int64_t disorder_ms;
        int64_t lateness_ms;
} agg_params;

/* A window's rollup state as handed to the emit callback (a view: the
 * part keeps it packed, see part.c). */
typedef struct agg_win {
        int64_t count;
        double sum, min, max;
        int64_t first_ts, last_ts;
        double first_value, last_value;
        tally_pos first_pos, last_pos;
} agg_win;

/* Limits of the packed state: origins must have partition <= this and
 * offset < 2^48 (ingest has at most 4096 raw partitions; 2^48 offsets
 * are 8.9 years at 1 M messages/s), windows at most UINT32_MAX ms. */
#define AGG_ORIGIN_PARTITION_MAX 32767
#define AGG_ORIGIN_OFFSET_LIMIT ((int64_t)1 << 48)
#define AGG_WINDOW_MS_MAX ((int64_t)UINT32_MAX)

typedef enum agg_add_result {
        AGG_COUNTED,
        AGG_DUPLICATE,
        AGG_TOO_LATE,
        AGG_FINAL,                      /* window already final: counted before */
        AGG_BAD_ORIGIN,                 /* origin beyond the limits above */
} agg_add_result;

typedef struct agg_part agg_part;

/* Called for every window to (re-)emit; return 0, or -1 to stop. */
typedef int (*agg_emit_fn)(void *opaque, const agg_series *s, int64_t start,
                           const agg_win *w);

/* p->window_ms must be in [1, AGG_WINDOW_MS_MAX]. */
agg_part *agg_part_new(const agg_params *p, int64_t final_below);
void agg_part_free(agg_part *pt);

agg_add_result agg_part_add(agg_part *pt, const tally_reading *r,
                            int64_t clean_offset);
/* A progress marker entry (or a reading's stamp) for one origin. */
void agg_part_progress(agg_part *pt, int32_t raw_partitions, int32_t origin,
                       int64_t progress_ms);
/* Emits dirty windows past watermark - disorder and frees final ones. */
int agg_part_advance(agg_part *pt, agg_emit_fn emit, void *opaque);

int64_t agg_part_watermark(const agg_part *pt);
/* Bytes of memory held (windows, indexes, series table). */
size_t agg_part_bytes(const agg_part *pt);
/* Windows whose end is below this are final. */
int64_t agg_part_final_below(const agg_part *pt);
/* Lowest clean offset an open window still needs, or -1 if none. */
int64_t agg_part_min_offset(const agg_part *pt);
uint64_t agg_part_open_windows(const agg_part *pt);
const agg_series_table *agg_part_series(const agg_part *pt);
