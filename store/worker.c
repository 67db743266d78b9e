/* store/worker.c -- the worker loop (see worker.h).
 *
 * Ordering: a record's offset enters the batch whether it became a row or
 * a dead letter; dead letters are flushed to Kafka (acknowledged) before
 * the transaction that advances their offset commits, so a crash can only
 * repeat a dead letter, never lose one. A partition whose generation
 * changed (revoked, maybe reassigned) first has the batch written under
 * its old epoch (which then fails fencing if another owner took it). */
#include "store/worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dlq.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "store/batch.h"
#include "store/pg.h"
#include "store/registrar.h"

struct store_worker {
        store_ctx *ctx;
        int id;
        pthread_t th;
        atomic_int stop;
        PGconn *conn;
        store_registrar *reg;           /* NULL: registers at flush only */
        store_batch batch;
        tally_rollup scratch;           /* the record being decoded */
        char who[16];
        uint32_t gen[TALLY_GROUP_MAX_PARTITIONS];   /* gen our state is for */
        uint32_t lost[TALLY_GROUP_MAX_PARTITIONS];  /* gen taken over */
        int64_t epoch[TALLY_GROUP_MAX_PARTITIONS];
        unsigned char at_end[TALLY_GROUP_MAX_PARTITIONS]; /* read to its end */
        tally_nudge nudge;              /* see worker_nudge_fetcher */
        int32_t last_part;              /* partition of the last record */
        int abandoned;                  /* gave up at stop: write no more */
};

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

        nanosleep(&ts, NULL);
}

/* Waits until every dead letter is acknowledged: 0; -1 when one failed
 * (dr_cb stops the store); 1 when a stop was requested and they were
 * still unacknowledged --stop-timeout later (the brokers are gone, or
 * refuse them). A wait past a second is logged once: the batch is held
 * meanwhile, since its offsets must not commit before its dead letters. */
static int dlq_settle(store_worker *w)
{
        rd_kafka_t *p = w->ctx->producer;
        int64_t start = tally_now_mono_ms(), give_up = -1;
        int warned = 0;

        while (rd_kafka_outq_len(p) > 0 && !atomic_load(&w->ctx->dlq_failed)) {
                int64_t now = tally_now_mono_ms();

                if (!warned && now - start >= 1000) {
                        warned = 1;
                        tally_log_warn("dlq_unacknowledged",
                                "worker=%d pending=%d note=\"batch held until "
                                "its dead letters are acknowledged\"",
                                w->id, rd_kafka_outq_len(p));
                }
                if (tally_stop_requested()) {
                        if (atomic_load(&w->ctx->dlq_gave_up))
                                return 1;       /* another wait gave up */
                        if (give_up < 0)
                                give_up = now + w->ctx->cfg->stop_timeout_ms;
                        else if (now >= give_up)
                                return 1;
                }
                rd_kafka_flush(p, 100);
        }
        return atomic_load(&w->ctx->dlq_failed) ? -1 : 0;
}

/* dlq_settle before a batch is written: 0 to write it, -1 fatal, 1 to
 * abandon it (the stop gave up on its dead letters; both logged). */
static int batch_dlq_settled(store_worker *w)
{
        int rc = dlq_settle(w);

        if (rc < 0) {
                tally_log_error("dlq_delivery_failed", "worker=%d", w->id);
        } else if (rc > 0) {
                atomic_store(&w->ctx->dlq_gave_up, 1);
                w->abandoned = 1;
                tally_log_error("stop_unacknowledged",
                        "worker=%d pending=%d rows=%zu timeout_ms=%lld "
                        "note=\"dead letters not acknowledged: the batch is "
                        "not written and its rollups are read again by the "
                        "next owner\"", w->id,
                        rd_kafka_outq_len(w->ctx->producer), w->batch.n,
                        (long long)w->ctx->cfg->stop_timeout_ms);
        }
        return rc;
}

static int worker_reject_refused(store_worker *w);

/* Writes the batch; retries connection and serialization failures.
 * Returns 0 (written or abandoned on stop) or -1 (fatal, logged). */
static int worker_flush_once(store_worker *w, int *waiting_out);

/* A batch committed: its coarse deltas wait for the fold (store/fold.h),
 * which holds off while batches keep coming. */
static void worker_count_deltas(store_worker *w)
{
        long long n = 0;

        for (int k = 1; k < w->ctx->cfg->common.windows.n; k++)
                n += (long long)w->batch.ncoarse[k];
        if (w->batch.merged_in_sql)
                n += (long long)w->batch.n;     /* at most this many */
        atomic_fetch_add(&w->ctx->fold_pending, n);
        atomic_store(&w->ctx->last_write_ms, tally_now_mono_ms());
}

static int worker_flush(store_worker *w)
{
        int waiting = 0;
        int rc = worker_flush_once(w, &waiting);

        if (waiting)
                atomic_fetch_sub(&w->ctx->pg_waiting, 1);
        return rc;
}

static int worker_flush_once(store_worker *w, int *waiting_out)
{
        const store_cfg *cfg = w->ctx->cfg;
        store_batch *b = &w->batch;
        int64_t backoff = 100;
        int32_t stale[TALLY_GROUP_MAX_PARTITIONS];
        int *waiting = waiting_out;
        int settled;

        if (store_batch_empty(b))
                return 0;
        /* a later batch of the same partitions must not commit past the
         * abandoned one */
        if (w->abandoned)
                goto abandon;
        if (b->dlq && (settled = batch_dlq_settled(w)) != 0) {
                if (settled < 0)
                        return -1;
                goto abandon;
        }
        for (;;) {
                tally_err err;
                size_t nstale = 0, refused;
                int64_t t0 = tally_now_mono_ms();
                int rc;

                if (!w->conn) {
                        w->conn = store_pg_connect_retry(cfg->pg, w->who);
                        if (!w->conn)
                                goto abandon;   /* stop requested */
                        if (store_batch_prepare(w->conn, &err)) {
                                tally_log_warn("pg_error", "worker=%d error=\"%s\"",
                                               w->id, err.msg);
                                PQfinish(w->conn);
                                w->conn = NULL;
                                continue;
                        }
                }
                if (w->reg)
                        store_registrar_collect(w->reg, &b->known);
                rc = store_batch_register(w->conn, b, &refused, &err);
                if (rc == STORE_PG_OK && refused) {
                        if (worker_reject_refused(w)) {
                                tally_log_error("dlq_delivery_failed",
                                                "worker=%d", w->id);
                                return -1;
                        }
                        if ((settled = batch_dlq_settled(w)) < 0)
                                return -1;
                        if (settled)
                                goto abandon;
                }
                if (rc == STORE_PG_OK)
                        rc = store_batch_write(w->conn, b,
                                               cfg->common.topic_rollups,
                                               &cfg->common.windows, stale,
                                               &nstale, &err);
                if (rc == STORE_PG_OK) {
                        tally_log_debug("batch_written",
                                "worker=%d rows=%zu partitions=%zu dlq=%zu ms=%lld"
                                " fence_ms=%lld write_ms=%lld commit_ms=%lld"
                                " sql_merge=%d",
                                w->id, b->n, b->nparts, b->dlq,
                                (long long)(tally_now_mono_ms() - t0),
                                (long long)b->ms_fence,
                                (long long)b->ms_merge,
                                (long long)b->ms_commit, b->merged_in_sql);
                        atomic_fetch_add(&w->ctx->rows, (long long)b->n);
                        atomic_fetch_add(&w->ctx->dlq, (long long)b->dlq);
                        atomic_fetch_add(&w->ctx->batches, 1);
                        worker_count_deltas(w);
                        store_batch_clear(b);
                        return 0;
                }
                if (rc == STORE_PG_STALE) {
                        for (size_t i = 0; i < nstale; i++) {
                                int32_t p = stale[i];

                                tally_log_warn("partition_taken_over",
                                        "worker=%d partition=%d epoch=%" PRId64
                                        " note=\"another owner; batch part dropped\"",
                                        w->id, p, w->epoch[p]);
                                w->lost[p] = w->gen[p];
                                store_batch_drop_partition(b, p);
                                atomic_fetch_add(&w->ctx->stale, 1);
                        }
                        if (store_batch_empty(b)) {
                                store_batch_clear(b);
                                return 0;
                        }
                        continue;
                }
                if (rc == STORE_PG_RETRY) {
                        atomic_fetch_add(&w->ctx->retries, 1);
                        if (!*waiting) {
                                *waiting = 1;
                                atomic_fetch_add(&w->ctx->pg_waiting, 1);
                        }
                        tally_log_warn("batch_retry", "worker=%d retry_ms=%lld "
                                       "error=\"%s\"", w->id,
                                       (long long)backoff, err.msg);
                        if (PQstatus(w->conn) != CONNECTION_OK) {
                                PQfinish(w->conn);
                                w->conn = NULL;
                        }
                        if (tally_stop_requested() && !w->conn)
                                goto abandon;
                        sleep_ms(backoff);
                        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                        continue;
                }
                tally_log_error("batch_failed", "worker=%d rows=%zu error=\"%s\"",
                                w->id, b->n, err.msg);
                return -1;
        }
abandon:
        /* nothing was committed: the next owner re-reads these offsets */
        tally_log_warn("batch_abandoned", "worker=%d rows=%zu", w->id, b->n);
        store_batch_clear(b);
        return 0;
}

static int batch_has(const store_batch *b, int32_t p)
{
        for (size_t i = 0; i < b->nparts; i++)
                if (b->parts[i].partition == p)
                        return 1;
        return 0;
}

/* rec: value, key and origin set; stage and reason filled here */
static int worker_dead_letter(store_worker *w, tally_dlq_rec *rec,
                              const tally_err *why)
{
        const store_cfg *cfg = w->ctx->cfg;
        tally_err err;

        rec->stage = "store";
        rec->reason = why->reason;
        rec->detail = why->msg;
        rec->origin_topic = cfg->common.topic_rollups;
        rec->origin_index = -1;
        rec->origin_element = -1;
        tally_log_warn("rejected", "worker=%d reason=%s partition=%d "
                       "offset=%" PRId64 " detail=\"%s\"", w->id, why->reason,
                       rec->origin_partition, rec->origin_offset, why->msg);
        if (tally_dlq_produce(w->ctx->producer, cfg->common.topic_dlq, rec,
                              NULL, &err)) {
                tally_log_error("dlq_produce_failed", "worker=%d error=\"%s\"",
                                w->id, err.msg);
                return -1;
        }
        w->batch.dlq++;
        return 0;
}

static int worker_reject_msg(store_worker *w, const rd_kafka_message_t *rkm,
                             const tally_err *why)
{
        tally_dlq_rec rec = {
                .origin_partition = rkm->partition,
                .origin_offset = rkm->offset,
                .value = rkm->payload,
                .value_len = rkm->len,
                .key = rkm->key,
                .key_len = rkm->key_len,
        };

        return worker_dead_letter(w, &rec, why);
}

/* Rows whose series id is registered under other names: dead-lettered
 * as their rollup record (re-encoded: the message is gone by now) and
 * dropped from the batch. Their offsets stay in the batch. */
static int worker_reject_refused(store_worker *w)
{
        store_batch *b = &w->batch;
        tally_buf val = TALLY_BUF_INIT;
        int rc = 0;

        for (size_t i = 0; i < b->n && !rc; i++) {
                const store_row *row = &b->rows[i];
                tally_rollup *r = &w->scratch;
                tally_dlq_rec rec = {
                        .origin_partition = row->partition,
                        .origin_offset = row->offset,
                };
                tally_err why;

                if (!row->refused)
                        continue;
                store_row_rollup(b, row, w->ctx->cfg->common.windows.ms[0], r);
                rec.key = r->device;
                rec.key_len = strlen(r->device);
                tally_buf_reset(&val);
                tally_rollup_encode(r, &val);
                rec.value = val.data;
                rec.value_len = val.len;
                tally_err_set(&why, "series_id_collision",
                              "series id %" PRId64 " of (%s, %s, %s) is "
                              "registered in tally.series under other names",
                              row->series, r->site, r->device, r->metric);
                rc = worker_dead_letter(w, &rec, &why);
        }
        tally_buf_free(&val);
        store_batch_drop_refused(b);
        return rc;
}

static int worker_handle(store_worker *w, const rd_kafka_message_t *rkm)
{
        const store_cfg *cfg = w->ctx->cfg;
        int32_t p = rkm->partition;
        uint32_t gen;
        tally_rollup *r = &w->scratch;
        tally_err err;

        if (rkm->err) {
                if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        if (p >= 0 && p < TALLY_GROUP_MAX_PARTITIONS)
                                w->at_end[p] = 1;
                        return 0;
                }
                if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                        atomic_fetch_add(&tally_metric_position_lost, 1);
                        tally_log_error("consumer_position_lost",
                                "worker=%d partition=%d error=\"%s\" note=\"rollups were removed before they were stored; partition stopped\"",
                                w->id, p, rd_kafka_message_errstr(rkm));
                } else {
                        tally_log_warn("consumer_error", "worker=%d error=\"%s\"",
                                       w->id, rd_kafka_message_errstr(rkm));
                }
                return 0;
        }
        if (p < 0 || p >= TALLY_GROUP_MAX_PARTITIONS)
                return 0;
        w->at_end[p] = 0;
        gen = tally_group_gen(w->ctx->group, p);
        if (!(gen & 1) || gen == w->lost[p])
                return 0;       /* no longer ours: the next owner reads it */
        if (gen != w->gen[p]) {
                /* new assignment: settle what the old one left first */
                if (batch_has(&w->batch, p) && worker_flush(w))
                        return -1;
                w->gen[p] = gen;
                w->epoch[p] = atomic_load(&w->ctx->epoch[p]);
        }
        if (w->batch.n >= w->batch.cap && worker_flush(w))
                return -1;
        if (tally_rollup_decode(rkm->payload, rkm->len, r, &err) == 0) {
                if (r->window_ms == cfg->common.windows.ms[0]) {
                        const store_row *row = &w->batch.rows[w->batch.n];
                        uint64_t check;

                        store_batch_add_row(&w->batch, p, rkm->offset, r);
                        if (w->reg && !store_series_set_find(&w->batch.known,
                                                             row->series,
                                                             &check))
                                store_registrar_offer(w->reg, row->series,
                                                      row->check, r->site,
                                                      r->device, r->metric);
                } else {
                        tally_err_set(&err, "wrong_window",
                                      "window_ms %" PRId64 " is not the "
                                      "finest configured window %" PRId64,
                                      r->window_ms,
                                      cfg->common.windows.ms[0]);
                        if (worker_reject_msg(w, rkm, &err))
                                return -1;
                }
        } else if (worker_reject_msg(w, rkm, &err)) {
                return -1;
        }
        store_batch_offset(&w->batch, p, rkm->offset, w->epoch[p]);
        return 0;
}

/* Every partition of the batch has been read to its end: nothing more
 * is coming for it right now, so waiting for batch-ms only delays it. */
static int batch_caught_up(const store_worker *w)
{
        const store_batch *b = &w->batch;

        if (store_batch_empty(b))
                return 0;
        for (size_t i = 0; i < b->nparts; i++)
                if (!w->at_end[b->parts[i].partition])
                        return 0;
        return 1;
}

/* The fetcher nudge (tally_nudge, common/group.h): the queue fills while
 * a batch is written; once it is down to half, a request to the leaders
 * of our partitions wakes their broker threads. */
static void worker_nudge_fetcher(store_worker *w, rd_kafka_queue_t *q)
{
        int64_t len = rd_kafka_queue_length(q), now = tally_now_mono_ms();

        if (w->last_part < 0 ||
            !tally_nudge_due(&w->nudge, len * 4 >= w->nudge.limit * 3, len,
                             now))
                return;
        tally_nudge_sent(&w->nudge, now);
        tally_group_wake_fetchers(w->ctx->group,
                                  w->ctx->cfg->common.topic_rollups, w->id,
                                  100);
}

static void *worker_main(void *arg)
{
        store_worker *w = arg;
        const store_cfg *cfg = w->ctx->cfg;
        rd_kafka_queue_t *q = tally_group_queue(w->ctx->group, w->id);
        unsigned polled = 0;
        int failed = 0;

        /* A batch is written once it is full, once every partition in it
         * has been read to its end, or batch-ms old and the queue has
         * nothing more right now: a burst (a window closing for every
         * series) goes into one transaction instead of a big one and a
         * late small one, but never waits past 4 x batch-ms. */
        while (!atomic_load(&w->stop) && !failed) {
                int64_t age = store_batch_empty(&w->batch) ? -1 :
                              tally_now_mono_ms() - w->batch.opened_ms;
                int due = age >= cfg->batch_ms;
                rd_kafka_message_t *rkm = rd_kafka_consume_queue(q, due ? 0 : 50);
                int idle = !rkm;

                if (rkm) {
                        idle = rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF &&
                               rd_kafka_queue_length(q) == 0;
                        if (rkm->partition >= 0)
                                w->last_part = rkm->partition;
                        failed = worker_handle(w, rkm) != 0;
                        rd_kafka_message_destroy(rkm);
                        if ((++polled & 255) == 0)
                                worker_nudge_fetcher(w, q);
                }
                if (!failed && ((due && (!rkm || age >= 4 * cfg->batch_ms)) ||
                                (idle && batch_caught_up(w))))
                        failed = worker_flush(w) != 0;
        }
        if (!failed)
                failed = worker_flush(w) != 0;  /* finish in-flight work */
        if (failed) {
                atomic_store(&w->ctx->fatal, 1);
                tally_stop_request();
        }
        return NULL;
}

store_worker *store_worker_start(store_ctx *ctx, int id, tally_err *err)
{
        store_worker *w = calloc(1, sizeof(*w));

        if (!w)
                abort();
        w->ctx = ctx;
        w->id = id;
        snprintf(w->who, sizeof(w->who), "worker-%d", id);
        store_batch_init(&w->batch, (size_t)ctx->cfg->batch_max);
        w->reg = store_registrar_start(ctx->cfg->pg, w->who);
        w->last_part = -1;
        tally_nudge_init(&w->nudge, ctx->group);
        if (pthread_create(&w->th, NULL, worker_main, w)) {
                store_registrar_free(w->reg);
                store_batch_free(&w->batch);
                free(w);
                tally_err_set(err, "thread", "cannot start worker %d", id);
                return NULL;
        }
        return w;
}

void store_worker_stop(store_worker *w)
{
        if (!w)
                return;
        atomic_store(&w->stop, 1);
        pthread_join(w->th, NULL);
        store_registrar_free(w->reg);
        PQfinish(w->conn);
        store_batch_free(&w->batch);
        free(w);
}
