/* aggregate/worker.h -- one aggregate worker thread. It owns the clean
 * partitions p with p % threads == id: their event-time state (part.h),
 * its own producer for rollups and dead letters, and the checkpoints that
 * decide what may be committed: per clean partition, the lowest offset an
 * open window still needs, with final_below in the commit metadata, once
 * every rollup and dead letter derived from the readings before it is
 * acknowledged. A delivery failure is fatal (the successor replays). */
#pragma once
#include "common/pool.h"
#include "aggregate/agg.h"
#include "common/err.h"

typedef struct agg_worker agg_worker;

agg_worker *agg_worker_new(agg_ctx *ctx, int id, tally_err *err);
void agg_worker_free(agg_worker *w);

/* For tally_pool_run: creates, runs and frees workers of a agg_ctx. */
extern const tally_pool_ops agg_worker_pool_ops;
