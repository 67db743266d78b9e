/* ingest/worker.h -- one ingest worker thread. It owns the raw partitions
 * p with p % threads == id (their origin state: progress, next offset,
 * heartbeat timing), its own producer (so delivery reports come back to
 * it and per-origin output order is the produce order), its decoder and
 * one clean-record writer per clean partition.
 *
 * Checkpoints: everything produced between two flushes belongs to one
 * checkpoint, which snapshots the origins' next offsets and progress at
 * the flush. Checkpoints complete in order once every record they contain
 * is acknowledged; only then are their offsets committed (with the
 * progress in the commit metadata). A delivery failure is fatal: the
 * worker stops committing and the process exits so its successor replays. */
#pragma once
#include "common/pool.h"
#include "ingest/ingest.h"

typedef struct ingest_worker ingest_worker;

ingest_worker *ingest_worker_new(ingest_ctx *ctx, int id, tally_err *err);
void ingest_worker_free(ingest_worker *w);

/* For tally_pool_run: creates, runs and frees workers of a ingest_ctx. */
extern const tally_pool_ops ingest_worker_pool_ops;
