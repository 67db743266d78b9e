/* ingest/ingest.h -- tally-ingest's configuration and shared run state.
 * The config is read once in main and then only read. */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "common/config.h"
#include "common/group.h"
#include "ingest/decode.h"

typedef struct ingest_cfg {
        tally_common_cfg common;
        char *group;
        int64_t idle_timeout_ms;        /* quiet time before a heartbeat */
        int64_t flush_ms;               /* max time readings wait in a batch */
        int64_t batch_bytes;            /* clean record size that forces a flush */
        int64_t commit_ms;
        int64_t max_message;
        int64_t max_past_ms, max_future_ms;
        int64_t stop_timeout_ms;        /* longest wait for acks at stop */
} ingest_cfg;

/* Committed position of a raw partition, read on assignment. */
typedef struct ingest_start {
        int64_t offset;                 /* RD_KAFKA_OFFSET_BEGINNING if none */
        int64_t progress_ms;            /* INT64_MIN if none */
} ingest_start;

typedef struct ingest_stats {
        atomic_llong messages, readings, rejected, heartbeats, batches;
} ingest_stats;

typedef struct ingest_ctx {
        const ingest_cfg *cfg;
        tally_group *group;
        int32_t raw_partitions;
        int32_t clean_partitions;
        ingest_start start[TALLY_GROUP_MAX_PARTITIONS]; /* written before assign */
        ingest_stats stats;
        atomic_int failed;              /* a worker hit a fatal error */
} ingest_ctx;

/* Commit metadata: "tally-ingest/1 progress=<ms|none> clean=<n>" */
int ingest_meta_parse(const char *s, size_t len, int64_t *progress,
                      int32_t *clean);
void ingest_meta_format(char *out, size_t n, int64_t progress, int32_t clean);

#define INGEST_HEARTBEAT_HEADER "tally-heartbeat"
