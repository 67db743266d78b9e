/* aggregate/worker.h -- one aggregate worker thread. It owns the clean
 * partitions p with p % threads == id: their event-time state (part.h),
 * its own producer for rollups and dead letters, and the checkpoints that
 * decide what may be committed: per clean partition, the lowest offset an
 * open window still needs, with final_below in the commit metadata, once
 * every rollup and dead letter derived from the readings before it is
 * acknowledged. A delivery failure is fatal (the successor replays). */
#pragma once
#include "aggregate/agg.h"
#include "common/err.h"

typedef struct agg_worker agg_worker;

agg_worker *agg_worker_new(agg_ctx *ctx, int id, tally_err *err);
int agg_worker_start(agg_worker *w, tally_err *err);
void agg_worker_join(agg_worker *w);
void agg_worker_free(agg_worker *w);
