/* tally-aggregate: rolls normalized readings (tally.clean) up into
 * event-time windows at the finest resolution and writes versioned rollups
 * (tally.rollups); too-late readings go to the dead-letter topic. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/agg.h"
#include "aggregate/part.h"
#include "aggregate/worker.h"
#include "common/daemon.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/signals.h"

static const tally_opt agg_opts[] = {
        TALLY_COMMON_OPTS(agg_cfg),
        {"group", TALLY_OPT_STR, "tally-aggregate", offsetof(agg_cfg, group),
         "consumer group id", 0, 0, 0},
        {"commit-interval", TALLY_OPT_DURATION, "500ms", offsetof(agg_cfg, commit_ms),
         "how often acknowledged offsets are committed", 10, 60000, 0},
        {"emit-interval", TALLY_OPT_DURATION, "20ms", offsetof(agg_cfg, emit_ms),
         "how often watermarks are checked for windows to emit", 1, 10000, 0},
        TALLY_STOP_TIMEOUT_OPT(agg_cfg),
};
#define NOPTS (sizeof(agg_opts) / sizeof(agg_opts[0]))

static int agg_assign(void *app, rd_kafka_topic_partition_list_t *parts,
                      tally_err *err)
{
        agg_ctx *ctx = app;

        if (tally_group_committed(ctx->group, parts, err))
                return -1;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t *fb = &ctx->final_below[tp->partition];

                if (tp->offset == RD_KAFKA_OFFSET_BEGINNING) {
                        *fb = INT64_MIN;
                        continue;
                }
                if (!tp->metadata ||
                    agg_meta_parse(tp->metadata, tp->metadata_size, fb))
                        return tally_err_set(err, "bad_commit",
                                "%s [%d]: committed offset %" PRId64
                                " has no tally-aggregate metadata (committed by another tool?)",
                                tp->topic, tp->partition, tp->offset);
        }
        tally_group_resolve_beginning(ctx->group, parts);
        return 0;
}

static void agg_metrics(agg_ctx *ctx)
{
        agg_stats *s = &ctx->stats;

        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_readings_total",
                          "readings counted into windows", &s->readings);
        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_duplicates_total",
                          "re-delivered readings recognised and dropped", &s->duplicates);
        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_too_late_total",
                          "readings past the allowed lateness (dead-lettered)", &s->too_late);
        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_final_skipped_total",
                          "replayed readings of windows already final", &s->final_skipped);
        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_rollups_total",
                          "rollup versions emitted", &s->rollups);
        tally_metrics_add(TALLY_COUNTER, "tally_aggregate_markers_total",
                          "progress markers read", &s->markers);
        tally_metrics_add(TALLY_GAUGE, "tally_aggregate_open_windows",
                          "open (series, window) states held", &s->open_windows);
        tally_metrics_add(TALLY_GAUGE, "tally_aggregate_state_bytes",
                          "bytes held by windows, their indexes and the series tables",
                          &s->state_bytes);
}

/* aggregate's own librdkafka defaults, put before the user's -X and
 * TALLY_KAFKA_* properties (later entries win, so those still override):
 * - queue.buffering.max.kbytes: rollups waiting in one worker's producer.
 *   A window closing for 1 M series emits 1 M rollups at once, so the
 *   shared 256 MiB grew with open series (bench/run memory: ~35 MB peak
 *   for 100 k rollups); 8 MiB (~25 k rollups, many 1 MB batches) bounds
 *   the burst, the producer then waits for delivery reports. Aggregate
 *   alone (111 k rollups) was not slower.
 * The consumer's prefetch (queued.max.messages.kbytes, 64 MiB per worker
 * queue) stays: it is bounded, and 16 MiB or 8 MiB made aggregate alone
 * 1.5-2 x slower (likely because librdkafka 2.0 re-checks a paused fetch only when its
 * broker thread wakes up, so a small queue runs dry). */
static void agg_kafka_defaults(tally_kafka_props *k)
{
        static const char *const d[][2] = {
                {"queue.buffering.max.kbytes", "8192"},
        };
        tally_kafka_props_prepend(k, d, sizeof(d) / sizeof(*d));
}

int main(int argc, char **argv)
{
        agg_cfg cfg;
        agg_ctx *ctx;
        rd_kafka_conf_t *conf;
        tally_err err;
        int rc, exit_code = 1;
        static const tally_group_hooks hooks = {agg_assign, NULL};

        memset(&cfg, 0, sizeof(cfg));
        tally_err_clear(&err);
        if (tally_daemon_init("tally-aggregate", "aggregate",
                "Rolls normalized readings (tally.clean) up into event-time windows and writes versioned rollups (tally.rollups).",
                              agg_opts, NOPTS, &cfg, &cfg.common, argc, argv, &rc))
                return rc;
        tally_daemon_mmap_threshold((size_t)1 << 20);
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                abort();
        ctx->cfg = &cfg;
        if (cfg.common.windows.ms[0] > AGG_WINDOW_MS_MAX) {
                tally_err_set(&err, "bad_config", "the finest window must be at most "
                              "%" PRId64 " ms (49 days)", AGG_WINDOW_MS_MAX);
                goto out;
        }
        agg_kafka_defaults(&cfg.common.kafka);
        conf = tally_kafka_conf_new(&cfg.common, TALLY_KAFKA_CONSUMER, &err);
        if (!conf || tally_kafka_conf_set(conf, "group.id", cfg.group, &err) ||
            tally_kafka_conf_set(conf, "enable.partition.eof", "false", &err))
                goto out;
        ctx->group = tally_group_new(conf, cfg.common.topic_clean,
                                     (int)cfg.common.threads, &hooks, ctx, &err);
        if (!ctx->group)
                goto out;
        if (tally_kafka_partitions(tally_group_rk(ctx->group), cfg.common.topic_clean,
                                   &ctx->clean_partitions, 30000, &err) ||
            tally_kafka_partitions(tally_group_rk(ctx->group), cfg.common.topic_rollups,
                                   &ctx->rollup_partitions, 30000, &err))
                goto out;
        if (ctx->clean_partitions > TALLY_GROUP_MAX_PARTITIONS) {
                tally_err_set(&err, "bad_topic", "%s has more than %d partitions",
                              cfg.common.topic_clean, TALLY_GROUP_MAX_PARTITIONS);
                goto out;
        }
        agg_metrics(ctx);
        if (tally_http_start((int)cfg.common.http_port, tally_health_failed,
                             &ctx->failed, &err))
                goto out;
        tally_log_info("started", "clean=%s clean_partitions=%d rollups=%s rollup_partitions=%d threads=%d window_ms=%" PRId64,
                       cfg.common.topic_clean, ctx->clean_partitions,
                       cfg.common.topic_rollups, ctx->rollup_partitions, (int)cfg.common.threads,
                       cfg.common.windows.ms[0]);
        if (tally_pool_run(ctx->group, (int)cfg.common.threads,
                           &agg_worker_pool_ops, ctx, &err))
                goto out;
        exit_code = atomic_load(&ctx->failed) ? 1 : 0;
        err.reason[0] = '\0';
out:
        tally_stop_request();
        tally_http_stop();
        if (ctx->group)
                tally_group_close(ctx->group);
        tally_group_free(ctx->group);
        if (exit_code && err.reason[0])
                tally_log_error("stopped", "reason=%s error=\"%s\"", err.reason, err.msg);
        tally_log_info("exit", "code=%d readings=%lld duplicates=%lld too_late=%lld final_skipped=%lld rollups=%lld markers=%lld",
                       exit_code, (long long)ctx->stats.readings,
                       (long long)ctx->stats.duplicates, (long long)ctx->stats.too_late,
                       (long long)ctx->stats.final_skipped,
                       (long long)ctx->stats.rollups, (long long)ctx->stats.markers);
        free(ctx);
        tally_config_free(agg_opts, NOPTS, &cfg, &cfg.common.kafka);
        return exit_code;
}
