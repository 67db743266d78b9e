/* store/fold.h -- the fold: moves the coarse deltas (store/coarse_sql.h)
 * into the stored coarse rows, off the batches' path. One transaction per
 * fold, so a reader of tally.rollup_<w>_rows sees every delta either
 * still in the delta table or in its row, never both or neither. A
 * thread of its own, with its own connection, folds once the workers
 * have written nothing for fold-idle, or once the deltas appended since
 * the last fold are fold-interval old or STORE_FOLD_MAX_ROWS many (so the
 * view's work stays bounded under a steady stream), and once at start
 * (what an earlier run left). Copies of the store fold in turn: one
 * holding the advisory lock makes the others skip. */
#pragma once
#include <libpq-fe.h>

#include "common/config.h"
#include "common/err.h"
#include "store/pg.h"
#include "store/store.h"

#define STORE_FOLD_MAX_ROWS 1000000

/* Folds every delta of every coarse window that the transaction sees.
 * *rows: stored rows inserted or updated; *skipped = 1 (and nothing
 * done) when another connection holds the fold lock. */
store_pg_rc store_fold_once(PGconn *conn, const tally_windows *w,
                            long long *rows, int *skipped, tally_err *err);

typedef struct store_folder store_folder;

/* Starts the fold thread (only with coarse windows). NULL with err on
 * failure. */
store_folder *store_folder_start(store_ctx *ctx, tally_err *err);
/* Stops and joins it (a fold under way finishes first); frees. */
void store_folder_stop(store_folder *f);
