/* tally-store: writes tally.rollups into PostgreSQL, exactly once: each
 * batch is one transaction that upserts the newest versions, recomputes
 * the coarser resolutions and advances the consumed offsets (fenced by an
 * owner epoch). Positions live in PostgreSQL, never in Kafka. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/daemon.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "store/fold.h"
#include "store/pg.h"
#include "store/schema.h"
#include "store/store.h"
#include "store/worker.h"

static const tally_opt store_opts[] = {
        TALLY_COMMON_OPTS(store_cfg),
        {"pg", TALLY_OPT_STR, "dbname=tally", offsetof(store_cfg, pg),
         "PostgreSQL connection string (libpq conninfo or URI; connect_timeout defaults to 10 s)", 0, 0, 1},
        {"group", TALLY_OPT_STR, "tally-store", offsetof(store_cfg, group),
         "consumer group id", 0, 0, 0},
        {"batch-max", TALLY_OPT_INT, "100000", offsetof(store_cfg, batch_max),
         "rollups per transaction and worker; each worker's batch memory, about 0.6 KB a rollup, is allocated and touched at start", 1, 1000000, 0},
        {"batch-ms", TALLY_OPT_DURATION, "200ms", offsetof(store_cfg, batch_ms),
         "a batch is written this long after its first rollup, or up to 4 x later while more keep arriving", 1, 60000, 0},
        {"retention", TALLY_OPT_DURATION, "0", offsetof(store_cfg, retention_ms),
         "drop time partitions older than this (0 = keep everything)", 0,
         INT64_C(0x7fffffffffff), 0},
        {"partitions-ahead", TALLY_OPT_DURATION, "3d",
         offsetof(store_cfg, ahead_ms),
         "create time partitions this far ahead of now", 0, 31536000000, 0},
        {"maintenance-interval", TALLY_OPT_DURATION, "10m",
         offsetof(store_cfg, maintenance_ms),
         "how often partitions ahead and retention are checked", 1000,
         86400000, 0},
        {"fold-idle", TALLY_OPT_DURATION, "500ms",
         offsetof(store_cfg, fold_idle_ms),
         "coarse deltas are folded into their rows once no batch was written for this long", 10, 3600000, 0},
        {"fold-interval", TALLY_OPT_DURATION, "30s",
         offsetof(store_cfg, fold_interval_ms),
         "... or once the oldest of them is this old (or there are a million)", 100, 86400000, 0},
        TALLY_STOP_TIMEOUT_OPT(store_cfg),
};
#define NOPTS (sizeof(store_opts) / sizeof(store_opts[0]))

/* Dead letters must never be lost: a failed delivery stops the store
 * before the offsets it covers are committed. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
        store_ctx *ctx = opaque;

        (void)rk;
        if (rkm->err) {
                tally_log_error("dlq_delivery_failed", "error=\"%s\"",
                                rd_kafka_err2str(rkm->err));
                atomic_store(&ctx->dlq_failed, 1);
                tally_stop_request();
        }
}

static const char *health(void *opaque)
{
        store_ctx *ctx = opaque;

        if (atomic_load(&ctx->fatal))
                return "a worker failed";
        if (atomic_load(&ctx->pg_waiting))
                return "waiting for PostgreSQL";
        return NULL;
}

/* Schema and partitions; retried while PostgreSQL is unreachable. */
static int maintain(store_ctx *ctx, PGconn **conn, int first)
{
        const store_cfg *cfg = ctx->cfg;

        for (;;) {
                tally_err err;
                store_pg_rc rc;
                int dropped = 0;

                if (!*conn) {
                        *conn = store_pg_connect_retry(cfg->pg, "maintenance");
                        if (!*conn)
                                return first ? -1 : 0;
                }
                rc = store_schema_migrate(*conn, &cfg->common.windows,
                                          cfg->ahead_ms, &err);
                if (!rc && cfg->retention_ms)
                        rc = store_retention_apply(*conn, &cfg->common.windows,
                                                   cfg->retention_ms, &dropped,
                                                   &err);
                if (!rc)
                        return 0;
                if (rc == STORE_PG_FATAL) {
                        tally_log_error("schema_failed", "error=\"%s\"", err.msg);
                        return -1;
                }
                tally_log_warn("schema_retry", "error=\"%s\"", err.msg);
                PQfinish(*conn);
                *conn = NULL;
                if (!first)
                        return 0;       /* try again next interval */
        }
}

/* tally-store's own librdkafka defaults, before -X and TALLY_KAFKA_*
 * (later entries win): the prefetch per worker queue. In a backlog the
 * windows close late and the aggregate emits most rollups in one burst;
 * at the common 200,000 the whole burst sat in memory while the workers
 * wrote (peak RSS grew with the backlog). 20,000 rollups (~9 MB) per
 * queue bound it; the worker nudges the fetcher as its queue drains
 * (worker.c), since librdkafka 2.0.2 stops fetching a full queue's
 * partitions until its broker thread wakes. At 4,000 the benchmark's
 * half and double length both fill it (heaptrack: librdkafka 8 vs
 * 31.5 MB at the peak at 20,000), but a window's burst then takes
 * several refills: freshness median 0.70 -> 0.94 s, p99 0.88 -> 1.01 s
 * at 1.38 M points/s.
 * fetch.wait.max.ms stays at 50 (the other daemons use 10, common/kafka.c):
 * with 10 here as well, end to end took 3.30-3.92 s against 3.05-3.36 s
 * (best of 3, 4 alternating pairs), with more CPU in store and PostgreSQL;
 * freshness p99 was 0.88 / 0.90 / 1.20 s that way against 0.99 / 1.23 s
 * with the store at 50, within the spread of one window's p99. */
static void store_kafka_defaults(tally_kafka_props *k)
{
        static const char *const d[][2] = {
                {"queued.min.messages", STORE_PREFETCH_MSGS},
                {"fetch.wait.max.ms", "50"},
        };

        tally_kafka_props_prepend(k, d, sizeof(d) / sizeof(*d));
}

int main(int argc, char **argv)
{
        static const tally_group_hooks hooks = {store_assign, NULL};
        store_cfg cfg;
        store_ctx *ctx;
        store_worker **workers;
        store_folder *folder = NULL;
        rd_kafka_conf_t *conf;
        PGconn *mconn = NULL;
        tally_err err;
        char safe[512];
        int rc, exit_code = 1, nworkers = 0;
        int64_t next_maint;

        memset(&cfg, 0, sizeof(cfg));
        tally_err_clear(&err);
        if (tally_daemon_init("tally-store", "store",
                "Writes rollups (tally.rollups) into PostgreSQL exactly once and derives the coarser resolutions.",
                              store_opts, NOPTS, &cfg, &cfg.common, argc, argv, &rc))
                return rc;
        tally_daemon_mmap_threshold((size_t)1 << 20);
        store_kafka_defaults(&cfg.common.kafka);
        ctx = calloc(1, sizeof(*ctx));
        workers = calloc((size_t)cfg.common.threads, sizeof(*workers));
        if (!ctx || !workers)
                abort();
        ctx->cfg = &cfg;
        store_pg_redact(cfg.pg, safe, sizeof(safe));
        tally_log_info("starting", "pg=\"%s\" topic=%s group=%s threads=%d",
                       safe, cfg.common.topic_rollups, cfg.group,
                       (int)cfg.common.threads);

        store_schema_set_retention(cfg.retention_ms);
        if (maintain(ctx, &mconn, 1)) {
                if (tally_stop_requested() && !mconn)
                        exit_code = 0;
                goto out;
        }
        next_maint = tally_now_mono_ms() + cfg.maintenance_ms;

        conf = tally_kafka_conf_new(&cfg.common, TALLY_KAFKA_PRODUCER, &err);
        if (!conf)
                goto fail;
        rd_kafka_conf_set_opaque(conf, ctx);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        ctx->producer = tally_kafka_new(RD_KAFKA_PRODUCER, conf, &err);
        if (!ctx->producer)
                goto fail;
        conf = tally_kafka_conf_new(&cfg.common, TALLY_KAFKA_CONSUMER, &err);
        if (!conf || tally_kafka_conf_set(conf, "group.id", cfg.group, &err))
                goto fail;
        ctx->group = tally_group_new(conf, cfg.common.topic_rollups,
                                     (int)cfg.common.threads, &hooks, ctx,
                                     &err);
        if (!ctx->group)
                goto fail;
        for (; nworkers < cfg.common.threads; nworkers++) {
                workers[nworkers] = store_worker_start(ctx, nworkers, &err);
                if (!workers[nworkers])
                        goto fail;
        }
        if (cfg.common.windows.n > 1 &&
            !(folder = store_folder_start(ctx, &err)))
                goto fail;
        tally_metrics_add(TALLY_COUNTER, "tally_store_rows_total",
                          "rollups written to PostgreSQL (before dedup)",
                          &ctx->rows);
        tally_metrics_add(TALLY_COUNTER, "tally_store_rejected_total",
                          "undecodable rollups sent to the dead-letter topic",
                          &ctx->dlq);
        tally_metrics_add(TALLY_COUNTER, "tally_store_batches_total",
                          "committed batch transactions", &ctx->batches);
        tally_metrics_add(TALLY_COUNTER, "tally_store_taken_over_total",
                          "batches parts rolled back: partition owned by "
                          "another copy (stale epoch)", &ctx->stale);
        tally_metrics_add(TALLY_COUNTER, "tally_store_retries_total",
                          "batch transactions retried (connection, "
                          "serialization, deadlock)", &ctx->retries);
        tally_metrics_add(TALLY_GAUGE, "tally_store_pg_waiting",
                          "workers waiting for PostgreSQL", &ctx->pg_waiting);
        tally_metrics_add(TALLY_GAUGE, "tally_store_dlq_pending",
                          "dead letters the brokers have not acknowledged "
                          "yet (their batches wait for them)",
                          &ctx->dlq_pending);
        tally_metrics_add(TALLY_GAUGE, "tally_store_fold_pending",
                          "coarse deltas this copy wrote that are not "
                          "folded into their rows yet", &ctx->fold_pending);
        tally_metrics_add(TALLY_COUNTER, "tally_store_folds_total",
                          "fold transactions committed", &ctx->folds);
        tally_metrics_add(TALLY_COUNTER, "tally_store_folded_rows_total",
                          "coarse rows inserted or updated by folds",
                          &ctx->folded);
        if (tally_http_start((int)cfg.common.http_port, health, ctx, &err))
                goto fail;
        tally_log_info("running", "threads=%d", nworkers);
        while (!tally_stop_requested()) {
                if (tally_group_poll(ctx->group, 100, &err)) {
                        if (!strcmp(err.reason, "stopping"))
                                break;
                        goto fail;
                }
                rd_kafka_poll(ctx->producer, 0);
                atomic_store(&ctx->dlq_pending,
                             rd_kafka_outq_len(ctx->producer));
                if (tally_now_mono_ms() >= next_maint) {
                        if (maintain(ctx, &mconn, 0))
                                goto fail_logged;
                        next_maint = tally_now_mono_ms() + cfg.maintenance_ms;
                }
        }
        exit_code = atomic_load(&ctx->fatal) || atomic_load(&ctx->dlq_failed)
                            ? 1 : 0;
        goto out;
fail:
        tally_log_error("fatal", "reason=%s error=\"%s\"", err.reason, err.msg);
fail_logged:
        exit_code = 1;
out:
        tally_stop_request();
        tally_http_stop();
        store_folder_stop(folder);
        for (int i = 0; i < nworkers; i++)
                store_worker_stop(workers[i]);  /* writes in-flight batches */
        if (atomic_load(&ctx->dlq_gave_up))
                exit_code = 1;  /* a worker's final batch was abandoned */
        if (ctx->group) {
                tally_group_close(ctx->group);
                tally_group_free(ctx->group);
        }
        if (ctx->producer) {
                /* after a worker gave up on its dead letters, no more
                 * waiting: they stay unacknowledged and their rollups
                 * uncommitted */
                if (rd_kafka_flush(ctx->producer,
                                   atomic_load(&ctx->dlq_gave_up) ? 0 : 10000))
                        tally_log_warn("producer_unflushed", "pending=%d",
                                       rd_kafka_outq_len(ctx->producer));
                rd_kafka_destroy(ctx->producer);
        }
        tally_log_info("stopped", "rows=%lld dlq=%lld batches=%lld "
                       "taken_over=%lld exit=%d",
                       (long long)atomic_load(&ctx->rows),
                       (long long)atomic_load(&ctx->dlq),
                       (long long)atomic_load(&ctx->batches),
                       (long long)atomic_load(&ctx->stale), exit_code);
        PQfinish(mconn);
        free(workers);
        free(ctx);
        tally_config_free(store_opts, NOPTS, &cfg, &cfg.common.kafka);
        return exit_code;
}
