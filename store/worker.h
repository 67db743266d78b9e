/* store/worker.h -- a tally-store worker thread: consumes the partitions
 * forwarded to its queue (partition % threads), decodes rollups into its
 * batch, sends undecodable records to the dead-letter topic, and writes
 * the batch in one PostgreSQL transaction when it is full or batch-ms
 * old. Owns its connection and batch; shares only store_ctx atomics. */
#pragma once
#include "store/store.h"

typedef struct store_worker store_worker;

/* Starts the thread. Returns NULL with err on failure. */
store_worker *store_worker_start(store_ctx *ctx, int id, tally_err *err);
/* Asks the worker to write its last batch and stop; joins; frees. */
void store_worker_stop(store_worker *w);
