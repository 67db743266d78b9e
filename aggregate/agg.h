/* aggregate/agg.h -- tally-aggregate's configuration and the run state
 * shared by its threads (read-only after start, but for the atomics and
 * the start positions written by the main thread before assignment). */
#pragma once
#include <stdatomic.h>
#include <stdint.h>

#include "common/config.h"
#include "common/group.h"

typedef struct agg_cfg {
        tally_common_cfg common;
        char *group;
        int64_t commit_ms;
        int64_t emit_ms;
        int64_t stop_timeout_ms;        /* longest wait for acks at stop */
} agg_cfg;

typedef struct agg_stats {
        atomic_llong readings, duplicates, too_late, final_skipped,
                rollups, markers, open_windows, state_bytes;
} agg_stats;

typedef struct agg_ctx {
        const agg_cfg *cfg;
        tally_group *group;
        int32_t clean_partitions;
        int32_t rollup_partitions;
        int64_t final_below[TALLY_GROUP_MAX_PARTITIONS]; /* from commits */
        agg_stats stats;
        atomic_int failed;
} agg_ctx;

/* Commit metadata: "tally-aggregate/1 final_below=<ms|none>" */
void agg_meta_format(char *out, size_t n, int64_t final_below);
int agg_meta_parse(const char *s, size_t len, int64_t *final_below);
