/* store/coarse.h -- a batch's rows as they are written: in key order,
 * one per (series, bucket) (the newest version), and their merge into
 * each coarser resolution computed here rather than in SQL. The coarse
 * rows are what the batch adds to each (series, coarse bucket) when none
 * of its finest rows was stored before -- the common case; batch.c
 * checks that in the same transaction and otherwise merges in SQL from
 * the stored versions. Works on the batch only; no I/O. */
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

/* The coarse rows of the ordered batch: one per (coarse window index
 * k >= 1, series, coarse bucket), count/sum/version added (sum in bucket
 * order), min/max, first and last by (ts, origin). A row whose key is in
 * b->coarse_known (this worker wrote that key before) goes to b->coarse
 * (COPY data for store_coarse: win, then the STAGE_COLS), to be merged
 * into the stored row; any other to b->coarse_new[k] (the STAGE_COLS),
 * to be copied straight into the table, as the key is most likely not
 * stored yet (a unique violation says otherwise). Every key goes to
 * b->ckeys, for store_coarse_mark_known once the batch is committed. */
void store_coarse_split(store_batch *b, const tally_windows *w);

/* Remembers the batch's coarse keys as written (after its COMMIT). Keys
 * are kept while their bucket ended less than one coarse window before
 * the newest finest window this worker wrote (the current and the
 * previous hour, for 1h): once b->coarse_known holds coarse_prune_at
 * keys, the older ones are forgotten and the next prune waits until it
 * holds twice what remained (at least STORE_COARSE_PRUNE_MIN). A
 * forgotten key costs a late row one SQL merge, never a wrong row; the
 * set no longer grows with the length of the input. */
#define STORE_COARSE_PRUNE_MIN ((size_t)1 << 16)
void store_coarse_mark_known(store_batch *b);
