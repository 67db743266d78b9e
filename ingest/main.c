/* tally-ingest: validates raw device readings (tally.raw), writes
 * normalized batches to tally.clean and rejects to tally.dlq; commits a
 * raw offset only once everything it led to is acknowledged. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/daemon.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "ingest/ingest.h"
#include "ingest/worker.h"

static const tally_opt ingest_opts[] = {
        TALLY_COMMON_OPTS(ingest_cfg),
        {"group", TALLY_OPT_STR, "tally-ingest", offsetof(ingest_cfg, group),
         "consumer group id", 0, 0, 0},
        {"idle-timeout", TALLY_OPT_DURATION, "2s",
         offsetof(ingest_cfg, idle_timeout_ms),
         "quiet time at the head of a raw partition before a heartbeat", 100, 3600000, 0},
        {"flush", TALLY_OPT_DURATION, "50ms", offsetof(ingest_cfg, flush_ms),
         "longest time a reading waits in a clean batch", 1, 10000, 0},
        {"batch-bytes", TALLY_OPT_INT, "262144", offsetof(ingest_cfg, batch_bytes),
         "clean batch size (all partitions) that forces a flush", 1024, 2000000, 0},
        {"commit-interval", TALLY_OPT_DURATION, "500ms",
         offsetof(ingest_cfg, commit_ms), "how often acknowledged offsets are committed",
         10, 60000, 0},
        {"max-message", TALLY_OPT_INT, "1048576", offsetof(ingest_cfg, max_message),
         "largest raw message accepted (bytes)", 64, 100000000, 0},
        {"max-past", TALLY_OPT_DURATION, "7d", offsetof(ingest_cfg, max_past_ms),
         "oldest event time accepted, before the record timestamp", 1000, 0x7fffffffffffLL, 0},
        {"max-future", TALLY_OPT_DURATION, "5m", offsetof(ingest_cfg, max_future_ms),
         "newest event time accepted, after the record timestamp", 0, 86400000, 0},
        TALLY_STOP_TIMEOUT_OPT(ingest_cfg),
};
#define NOPTS (sizeof(ingest_opts) / sizeof(ingest_opts[0]))

static int ingest_assign(void *app, rd_kafka_topic_partition_list_t *parts,
                         tally_err *err)
{
        ingest_ctx *ctx = app;

        if (tally_group_committed(ctx->group, parts, err))
                return -1;
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                ingest_start *st = &ctx->start[tp->partition];
                int32_t clean;

                if (tp->offset == RD_KAFKA_OFFSET_BEGINNING) {
                        st->offset = RD_KAFKA_OFFSET_BEGINNING;
                        st->progress_ms = INT64_MIN;
                        continue;
                }
                if (!tp->metadata ||
                    ingest_meta_parse(tp->metadata, tp->metadata_size,
                                      &st->progress_ms, &clean))
                        return tally_err_set(err, "bad_commit",
                                "%s [%d]: committed offset %" PRId64
                                " has no tally-ingest metadata (committed by another tool?)",
                                tp->topic, tp->partition, tp->offset);
                if (clean != ctx->clean_partitions)
                        return tally_err_set(err, "clean_partitions_changed",
                                "%s has %d partitions but the pipeline ran with %d: a changed count would split series between aggregates; refusing to go on",
                                ctx->cfg->common.topic_clean, ctx->clean_partitions,
                                clean);
                st->offset = tp->offset;
        }
        tally_group_resolve_beginning(ctx->group, parts);
        return 0;
}

static void ingest_metrics(ingest_ctx *ctx)
{
        ingest_stats *s = &ctx->stats;

        tally_metrics_add(TALLY_COUNTER, "tally_ingest_messages_total",
                          "raw messages processed (heartbeats included)", &s->messages);
        tally_metrics_add(TALLY_COUNTER, "tally_ingest_readings_total",
                          "readings accepted and written to the clean topic", &s->readings);
        tally_metrics_add(TALLY_COUNTER, "tally_ingest_rejected_total",
                          "messages, elements or readings sent to the dead-letter topic",
                          &s->rejected);
        tally_metrics_add(TALLY_COUNTER, "tally_ingest_heartbeats_total",
                          "heartbeat records processed", &s->heartbeats);
        tally_metrics_add(TALLY_COUNTER, "tally_ingest_batches_total",
                          "clean batch records produced", &s->batches);
}

/* ingest's own librdkafka defaults, put before the user's -X and
 * TALLY_KAFKA_* properties (later entries win, so those still override).
 * They bound the peak RSS whatever the backlog (docs/performance.md,
 * "ingest memory"):
 * - queued.min.messages: raw messages prefetched per worker queue (the
 *   partition queues are forwarded to it). The worker nudges librdkafka's
 *   fetcher when its queue is down to half of this (worker.c), so the
 *   2.0.2 fetch pause at a full queue does not stall it.
 * - fetch.max.bytes: one fetch response holds one batch per partition
 *   until this size, so with the 50 MB default it grew with the number of
 *   raw partitions (a 1 MB lz4 batch is ~6 MB decoded). librdkafka checks
 *   queued.min.messages before it sends a fetch, and a response lands in
 *   the queue whole, so each broker's response may overshoot it: at 1 MB
 *   a worker queue peaked at 37-45 k messages for a 20 k limit, higher
 *   the longer the backlog; at 256 KiB at 27-30 k whatever its length
 *   (the consumer's message.max.bytes is lowered to it: common/kafka.c).
 * - queue.buffering.max.kbytes: clean batches waiting in one worker's
 *   producer; at 256 MiB it grew with the backlog (and 32 MiB still did
 *   end to end). At 8 MiB the worker waits for delivery reports now and
 *   then (tally_producer_send); end to end was not slower. */
static void ingest_kafka_defaults(tally_kafka_props *k)
{
        static const char *const d[][2] = {
                {"queued.min.messages", "20000"},
                {"fetch.max.bytes", "262144"},
                {"queue.buffering.max.kbytes", "8192"},
        };
        tally_kafka_props_prepend(k, d, sizeof(d) / sizeof(*d));
}

int main(int argc, char **argv)
{
        ingest_cfg cfg;
        ingest_ctx *ctx;
        rd_kafka_conf_t *conf;
        tally_err err;
        int rc, exit_code = 1;
        static const tally_group_hooks hooks = {ingest_assign, NULL};

        memset(&cfg, 0, sizeof(cfg));
        tally_err_clear(&err);
        if (tally_daemon_init("tally-ingest", "ingest",
                "Validates raw readings (tally.raw) into normalized batches (tally.clean); rejects go to the dead-letter topic.",
                              ingest_opts, NOPTS, &cfg, &cfg.common, argc, argv, &rc))
                return rc;
        ctx = calloc(1, sizeof(*ctx));
        if (!ctx)
                abort();
        ctx->cfg = &cfg;
        ingest_kafka_defaults(&cfg.common.kafka);
        conf = tally_kafka_conf_new(&cfg.common, TALLY_KAFKA_CONSUMER, &err);
        if (!conf || tally_kafka_conf_set(conf, "group.id", cfg.group, &err))
                goto out;
        ctx->group = tally_group_new(conf, cfg.common.topic_raw,
                                     (int)cfg.common.threads, &hooks, ctx, &err);
        if (!ctx->group)
                goto out;
        if (tally_kafka_partitions(tally_group_rk(ctx->group), cfg.common.topic_raw,
                                   &ctx->raw_partitions, 30000, &err) ||
            tally_kafka_partitions(tally_group_rk(ctx->group), cfg.common.topic_clean,
                                   &ctx->clean_partitions, 30000, &err))
                goto out;
        if (ctx->raw_partitions > TALLY_GROUP_MAX_PARTITIONS) {
                tally_err_set(&err, "bad_topic", "%s has more than %d partitions",
                              cfg.common.topic_raw, TALLY_GROUP_MAX_PARTITIONS);
                goto out;
        }
        ingest_metrics(ctx);
        if (tally_http_start((int)cfg.common.http_port, tally_health_failed,
                             &ctx->failed, &err))
                goto out;
        tally_log_info("started", "raw=%s raw_partitions=%d clean=%s clean_partitions=%d threads=%d",
                       cfg.common.topic_raw, ctx->raw_partitions,
                       cfg.common.topic_clean, ctx->clean_partitions, (int)cfg.common.threads);
        if (tally_pool_run(ctx->group, (int)cfg.common.threads,
                           &ingest_worker_pool_ops, ctx, &err))
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
        tally_log_info("exit", "code=%d messages=%lld readings=%lld rejected=%lld heartbeats=%lld",
                       exit_code, (long long)ctx->stats.messages,
                       (long long)ctx->stats.readings, (long long)ctx->stats.rejected,
                       (long long)ctx->stats.heartbeats);
        free(ctx);
        tally_config_free(ingest_opts, NOPTS, &cfg, &cfg.common.kafka);
        return exit_code;
}
