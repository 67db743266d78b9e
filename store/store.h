/* store/store.h -- tally-store's configuration and the state shared by
 * its threads. The main thread owns the consumer group, the DLQ producer
 * and its own PostgreSQL connection (assignments, maintenance); each
 * worker owns a connection and a batch. Shared fields below are atomics,
 * written by the main thread in the assign hook before the partition's
 * generation is bumped (so a worker that sees the new generation sees
 * the new epoch). */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/config.h"
#include "common/group.h"

/* rollups prefetched per worker queue (queued.min.messages default) */
#define STORE_PREFETCH_MSGS "20000"

typedef struct store_cfg {
        tally_common_cfg common;
        char *pg;                       /* libpq conninfo (secret) */
        char *group;
        int64_t batch_max;              /* rows per transaction */
        int64_t batch_ms;               /* longest a record waits */
        int64_t retention_ms;           /* 0 = keep everything */
        int64_t ahead_ms;               /* partitions created ahead */
        int64_t maintenance_ms;
        int64_t stop_timeout_ms;        /* longest wait for dead letters at stop */
        int64_t fold_idle_ms;           /* fold once no batch came this long */
        int64_t fold_interval_ms;       /* ... or deltas are this old */
} store_cfg;

typedef struct store_ctx {
        const store_cfg *cfg;
        tally_group *group;
        rd_kafka_t *producer;           /* dead letters */
        _Atomic int64_t epoch[TALLY_GROUP_MAX_PARTITIONS];
        atomic_int fatal;               /* a worker hit a non-retryable error */
        atomic_int dlq_failed;          /* a dead letter was not delivered */
        atomic_int dlq_gave_up;         /* stopped with dead letters unacknowledged */
        atomic_llong rows, dlq, batches, stale, retries;
        atomic_llong pg_waiting;        /* workers retrying a batch */
        atomic_llong dlq_pending;       /* dead letters not yet acknowledged */
        atomic_llong fold_pending;      /* coarse deltas written, not folded */
        _Atomic int64_t last_write_ms;  /* monotonic time of the last commit */
        atomic_llong folds, folded;     /* folds done, stored rows they wrote */
} store_ctx;

/* Assign hook (main thread): bumps the epoch of every partition in one
 * statement and sets each start offset from PostgreSQL (BEGINNING when
 * there is no row). Retries with backoff while PostgreSQL is unreachable,
 * so partitions stay unassigned (paused) meanwhile. */
int store_assign(void *app, rd_kafka_topic_partition_list_t *parts,
                 tally_err *err);
