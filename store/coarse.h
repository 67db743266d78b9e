/* store/coarse.h -- a batch's rows as they are written: in key order,
 * one per (series, bucket) (the newest version), and their merge into
 * each coarser resolution computed here rather than in SQL. The coarse
 * rows are what the batch adds to each (series, coarse bucket) when none
 * of its finest rows was stored before -- the common case; batch.c
 * checks that in the same transaction and otherwise derives them in SQL
 * from the stored versions. Works on the batch only; no I/O. */
#pragma once
#include "common/buf.h"
#include "common/config.h"
#include "store/batch.h"

/* Allocates the ordering's arrays for b->cap rows (store_batch_init);
 * store_batch_free frees them. Returns their size in bytes. */
size_t store_coarse_alloc(store_batch *b);

/* Fills b->ord with the indexes of the newest version of each key,
 * sorted by (series, bucket); sets b->nord. */
void store_coarse_order(store_batch *b);

/* Binary COPY data of the ordered finest rows (columns STAGE_COLS in batch.c). */
void store_coarse_copy_finest(const store_batch *b, tally_buf *out);

/* What the ordered batch adds to the coarse rows: one row per (coarse
 * window index k >= 1, series, coarse bucket) -- count, sum (in bucket
 * order) and version added, min/max, first and last by (ts, origin) --
 * as COPY data (the STAGE_COLS) in b->coarse[k], counted in
 * b->ncoarse[k]. When none of the batch's finest rows was stored before,
 * these are exactly the changes to the stored coarse rows. */
void store_coarse_split(store_batch *b, const tally_windows *w);
