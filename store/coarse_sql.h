/* store/coarse_sql.h -- the SQL text of the coarse rows (docs/schema.md,
 * "Coarse rows"): a batch appends what it adds to each (series, coarse
 * bucket) to the window's delta table; the view tally.rollup_<w>_rows
 * shows every stored row merged with its deltas not yet folded in; the
 * fold (store/fold.h) moves the deltas into the stored rows. The merge
 * is the same everywhere: counts, sums and versions add, min and max,
 * first and last by (ts, origin). Text only; no I/O. */
#pragma once
#include "common/buf.h"

/* the columns a rollup row is written with, in COPY order */
#define STORE_STAGE_COLS                                                  \
        "series, bucket, count, sum, min, max,"                           \
        " first_value, first_ts, first_partition, first_offset,"          \
        " first_index, last_value, last_ts, last_partition, last_offset," \
        " last_index, version"

/* first = smallest (first_ts, origin), last = largest (last_ts, origin) */
#define STORE_FIRST_ORDER "ORDER BY first_ts, first_partition, " \
        "first_offset, first_index"
#define STORE_LAST_ORDER "ORDER BY last_ts DESC, last_partition DESC, " \
        "last_offset DESC, last_index DESC"
/* the value of a column on the row numbered 1 by the first (fr) or the
 * last (lr) ordering of its group */
#define STORE_OF_FIRST(c) " min(" c ") FILTER (WHERE fr = 1),"
#define STORE_OF_LAST(c) " min(" c ") FILTER (WHERE lr = 1),"

/* SELECT of the rows of src (a SELECT of STORE_STAGE_COLS, and of
 * updated_at when with_updated_at) merged into one row per (series,
 * bucket), in the same columns. first and last of a group come from the
 * row numbered 1 by a window ordering (cheaper than an ordered array_agg
 * per column, which sorts per group). */
void store_sql_merged(tally_buf *q, const char *src, int with_updated_at);

/* The view tally.rollup_<label>_rows: every row of the coarse table with
 * its deltas merged in (STORE_STAGE_COLS, updated_at), by series id. */
void store_sql_rows_view(tally_buf *q, const char *label);
/* The analysts' view tally.rollup_<label>: the rows by site, device and
 * metric, with the mean (docs/schema.md); with deltas (a coarse window),
 * the same rows as tally.rollup_<label>_rows. */
void store_sql_named_view(tally_buf *q, const char *label, int deltas);

/* One statement: deletes every delta of the window the transaction sees
 * and adds them, merged per key, to the stored rows (inserting the rows
 * not stored yet). */
void store_sql_fold(tally_buf *q, const char *label);
