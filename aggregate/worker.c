#include "aggregate/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/part.h"
#include "common/clean_codec.h"
#include "common/dlq.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/producer.h"
#include "common/rollup.h"
#include "common/signals.h"
#include "common/timefmt.h"

#define BATCH_MSGS 4096

typedef struct agg_pstate {
        uint32_t gen;
        agg_part *part;
        int64_t next_offset;            /* -1: nothing read yet */
        int touched;
} agg_pstate;

struct agg_worker {
        agg_ctx *ctx;
        const agg_cfg *cfg;
        agg_params params;
        int id;
        int fatal;
        tally_producer prod;
        rd_kafka_queue_t *queue;        /* borrowed from the group */
        agg_pstate *ps;                 /* [clean_partitions] */
        tally_ckpt_queue ckq;
        tally_ckpt_pos *snap;           /* [clean_partitions] scratch */
        int64_t last_commit_mono, last_emit_mono;
        int64_t open_reported;          /* its share of stats.open_windows */
        int64_t bytes_reported;         /* and of stats.state_bytes */
        tally_buf out;
        tally_rollup rollup;
        const rd_kafka_message_t *msg;  /* being handled */
        long long emitted;              /* rollups not yet in stats.rollups */
};

static void worker_fail(agg_worker *w, const char *msg, const tally_err *err)
{
        tally_log_error(msg, "worker=%d reason=%s error=\"%s\"", w->id,
                        err->reason, err->msg);
        w->fatal = 1;
        atomic_store(&w->ctx->failed, 1);
        tally_stop_request();
}

static int worker_owned(agg_worker *w, int32_t p)
{
        uint32_t gen = tally_group_gen(w->ctx->group, p);

        return (gen & 1) && w->ps[p].gen == gen && w->ps[p].part;
}

static void name_copy(char *dst, const char *s, size_t n)
{
        memcpy(dst, s, n);
        dst[n] = '\0';
}

static int worker_emit(void *opaque, const agg_series *s, int64_t start,
                       const agg_win *win)
{
        agg_worker *w = opaque;
        tally_rollup *r = &w->rollup;
        tally_err err;

        name_copy(r->site, s->site, s->site_len);
        name_copy(r->device, s->device, s->device_len);
        name_copy(r->metric, s->metric, s->metric_len);
        r->window_ms = w->params.window_ms;
        r->start_ms = start;
        r->count = win->count;
        r->sum = win->sum;
        r->min = win->min;
        r->max = win->max;
        r->first.ts_ms = win->first_ts;
        r->first.value = win->first_value;
        r->first.pos = win->first_pos;
        r->last.ts_ms = win->last_ts;
        r->last.value = win->last_value;
        r->last.pos = win->last_pos;
        r->version = win->count;
        tally_buf_reset(&w->out);
        tally_rollup_encode(r, &w->out);
        if (tally_producer_send(&w->prod, w->cfg->common.topic_rollups,
                                tally_partition_for(s->device, s->device_len,
                                                    w->ctx->rollup_partitions),
                                s->device, s->device_len, w->out.data, w->out.len,
                                tally_ckpt_open(&w->ckq), &err)) {
                worker_fail(w, "produce_failed", &err);
                return -1;
        }
        w->emitted++;
        return 0;
}

/* Dead-letters a too-late reading as JSON, with its raw origin. */
static int worker_too_late(agg_worker *w, const tally_reading *r,
                           tally_err *err)
{
        char ts[32], detail[160];
        tally_dlq_rec rec;
        int64_t end = tally_window_start(r->ts_ms, w->params.window_ms) +
                      w->params.window_ms;

        tally_time_format(r->ts_ms, ts);
        tally_buf_reset(&w->out);
        tally_buf_printf(&w->out, "{\"site\":\"%.*s\",\"device\":\"%.*s\",\"metric\":\"%.*s\",\"ts\":\"%s\",\"value\":%.17g}",
                         r->site_len, r->site, r->device_len, r->device,
                         r->metric_len, r->metric, ts, r->value);
        snprintf(detail, sizeof(detail),
                 "origin progress %" PRId64 " passed window end %" PRId64
                 " + disorder + lateness", r->progress_ms, end);
        memset(&rec, 0, sizeof(rec));
        rec.stage = "aggregate";
        rec.reason = "too_late";
        rec.detail = detail;
        rec.origin_topic = w->cfg->common.topic_raw;
        rec.origin_partition = r->origin.partition;
        rec.origin_offset = r->origin.offset;
        rec.origin_index = r->origin.index;
        rec.origin_element = -1;
        rec.value = w->out.data;
        rec.value_len = w->out.len;
        rec.key = r->device;
        rec.key_len = r->device_len;
        tally_ckpt *c = tally_ckpt_open(&w->ckq);
        if (tally_dlq_produce(w->prod.rk, w->cfg->common.topic_dlq, &rec, c, err))
                return -1;
        tally_ckpt_sent(c);
        atomic_fetch_add(&w->ctx->stats.too_late, 1);
        return 0;
}

/* A clean record we cannot read: dead-letter it, never stop on it. */
static int worker_bad_record(agg_worker *w, const rd_kafka_message_t *m,
                             const tally_err *why, tally_err *err)
{
        tally_dlq_rec rec = {
                .stage = "aggregate", .reason = why->reason, .detail = why->msg,
                .origin_topic = w->cfg->common.topic_clean,
                .origin_partition = m->partition, .origin_offset = m->offset,
                .origin_index = -1, .origin_element = -1,
                .value = m->payload, .value_len = m->len,
        };
        tally_ckpt *c = tally_ckpt_open(&w->ckq);

        tally_log_warn("rejected", "reason=%s partition=%d offset=%" PRId64
                       " error=\"%s\"", why->reason, m->partition, m->offset,
                       why->msg);
        if (tally_dlq_produce(w->prod.rk, w->cfg->common.topic_dlq, &rec, c, err))
                return -1;
        tally_ckpt_sent(c);
        return 0;
}

static void worker_reset(agg_worker *w, agg_pstate *ps, int32_t p, uint32_t gen)
{
        agg_part_free(ps->part);
        ps->part = agg_part_new(&w->params, w->ctx->final_below[p]);
        ps->gen = gen;
        ps->next_offset = -1;
        ps->touched = 0;
}

static int worker_handle(agg_worker *w, const rd_kafka_message_t *m,
                         tally_err *err)
{
        int32_t p = m->partition;
        agg_pstate *ps;
        uint32_t gen;
        tally_clean_reader rd;
        tally_err why;
        int rc;

        if (p < 0 || p >= w->ctx->clean_partitions)
                return tally_err_set(err, "clean_topic_changed",
                                     "clean partition %d beyond the %d known at start",
                                     p, w->ctx->clean_partitions);
        if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        tally_log_warn("consumer_error", "partition=%d error=\"%s\"",
                                       p, rd_kafka_message_errstr(m));
                return 0;
        }
        ps = &w->ps[p];
        gen = tally_group_gen(w->ctx->group, p);
        if (ps->gen != gen || !ps->part)
                worker_reset(w, ps, p, gen);
        if (ps->next_offset >= 0 && m->offset < ps->next_offset)
                return 0;
        tally_ckpt_open(&w->ckq);
        ps->next_offset = m->offset + 1;
        ps->touched = 1;
        if (tally_clean_reader_init(&rd, m->payload, m->len, &why))
                return worker_bad_record(w, m, &why, err);
        if (rd.kind == TALLY_CLEAN_PROGRESS) {
                tally_clean_origin o;

                while ((rc = tally_clean_reader_next_origin(&rd, &o, &why)) == 1)
                        agg_part_progress(ps->part, rd.raw_partitions, o.partition,
                                          o.progress_ms);
                atomic_fetch_add(&w->ctx->stats.markers, 1);
                return rc < 0 ? worker_bad_record(w, m, &why, err) : 0;
        }
        /* counted here and added to the shared stats once per record: an
         * atomic per reading bounced their cache line between the workers */
        long long n[AGG_BAD_ORIGIN + 1] = {0};

        while ((rc = tally_clean_reader_step(&rd, &why)) == 1) {
                const tally_reading *r = &rd.prev;
                agg_add_result res = agg_part_add(ps->part, r, m->offset);

                n[res]++;
                if (res == AGG_TOO_LATE && worker_too_late(w, r, err)) {
                        rc = -2;
                        break;
                }
                if (res == AGG_BAD_ORIGIN) {
                        /* ingest never writes these: a foreign record */
                        tally_err_set(&why, "malformed_clean",
                                      "origin partition %d offset %" PRId64
                                      " beyond aggregate's limits",
                                      r->origin.partition, r->origin.offset);
                        break;
                }
        }
        if (n[AGG_COUNTED])
                atomic_fetch_add(&w->ctx->stats.readings, n[AGG_COUNTED]);
        if (n[AGG_DUPLICATE])
                atomic_fetch_add(&w->ctx->stats.duplicates, n[AGG_DUPLICATE]);
        if (n[AGG_FINAL])
                atomic_fetch_add(&w->ctx->stats.final_skipped, n[AGG_FINAL]);
        if (rc == -2)
                return -1;
        /* readings before the corruption were counted; the record as a
         * whole goes to the DLQ so nothing is lost silently */
        return rc < 0 || n[AGG_BAD_ORIGIN] ? worker_bad_record(w, m, &why, err) : 0;
}

/* Emits what the watermarks allow, then seals a checkpoint. */
static int worker_advance(agg_worker *w)
{
        int32_t nc = w->ctx->clean_partitions;
        int n = 0;
        uint64_t open = 0, bytes = 0;

        for (int32_t p = w->id; p < nc; p += (int32_t)w->cfg->common.threads) {
                agg_pstate *ps = &w->ps[p];

                if (!worker_owned(w, p))
                        continue;
                int rc = agg_part_advance(ps->part, worker_emit, w);

                atomic_fetch_add(&w->ctx->stats.rollups, w->emitted);
                w->emitted = 0;
                if (rc)
                        return -1;
                open += agg_part_open_windows(ps->part);
                bytes += agg_part_bytes(ps->part);
                if (ps->next_offset < 0)
                        continue;
                int64_t need = agg_part_min_offset(ps->part);
                w->snap[n].partition = p;
                w->snap[n].offset = need >= 0 && need < ps->next_offset ?
                                    need : ps->next_offset;
                w->snap[n].value = agg_part_final_below(ps->part);
                n++;
        }
        atomic_fetch_add(&w->ctx->stats.open_windows,
                         (long long)open - w->open_reported);
        w->open_reported = (int64_t)open;
        atomic_fetch_add(&w->ctx->stats.state_bytes,
                         (long long)bytes - w->bytes_reported);
        w->bytes_reported = (int64_t)bytes;
        if (w->ckq.cur)
                tally_ckpt_seal(&w->ckq, w->snap, n);
        w->last_emit_mono = tally_now_mono_ms();
        return 0;
}

static void worker_meta(char *buf, size_t n, const tally_ckpt_pos *pos,
                        void *opaque)
{
        (void)opaque;
        agg_meta_format(buf, n, pos->value);
}

static int worker_keep(void *opaque, int32_t partition)
{
        return worker_owned(opaque, partition);
}

static void worker_commit(agg_worker *w, int sync)
{
        tally_err err;

        w->last_commit_mono = tally_now_mono_ms();
        if (w->prod.failed && !w->fatal)
                worker_fail(w, "delivery_failed", &w->prod.err);
        if (w->fatal)
                return;
        if (tally_kafka_commit_done(tally_group_rk(w->ctx->group), &w->ckq,
                                    w->cfg->common.topic_clean, worker_meta,
                                    worker_keep, w, !sync, &err))
                tally_log_warn("commit_failed", "worker=%d error=\"%s\"",
                               w->id, err.msg);
}

/* How long the next consume may wait for input: up to the next emission,
 * ~5 ms while rollups wait for their acknowledgement, up to the next
 * commit while acknowledged checkpoints wait for it, else 50 ms. (A fixed
 * 50 ms could hold a closed window's rollups back by that much.) */
static int worker_wait_ms(const agg_worker *w, int64_t now)
{
        int64_t t = w->last_emit_mono + w->cfg->emit_ms - now;

        return tally_ckpt_wait_ms(&w->ckq, w->last_commit_mono,
                                  w->cfg->commit_ms, now, t > 50 ? 50 : t);
}

static void *worker_main(void *arg)
{
        agg_worker *w = arg;
        rd_kafka_message_t *msgs[BATCH_MSGS];
        tally_err err;

        while (!tally_stop_requested() && !w->fatal && !w->prod.failed) {
                ssize_t n = tally_kafka_consume_batch(
                        w->queue, worker_wait_ms(w, tally_now_mono_ms()), msgs,
                        BATCH_MSGS);
                int64_t now;

                for (ssize_t i = 0; i < n; i++) {
                        if (!w->fatal && worker_handle(w, msgs[i], &err))
                                worker_fail(w, "aggregate_failed", &err);
                        rd_kafka_message_destroy(msgs[i]);
                }
                now = tally_now_mono_ms();
                if (!w->fatal && now - w->last_emit_mono >= w->cfg->emit_ms &&
                    worker_advance(w))
                        break;
                rd_kafka_poll(w->prod.rk, 0);
                if (now - w->last_commit_mono >= w->cfg->commit_ms)
                        worker_commit(w, 0);
        }
        if (!w->fatal)
                worker_advance(w);
        /* without the acknowledgements (the brokers are gone) the worker
         * ends failed and commits nothing more */
        if (!w->fatal && tally_producer_drain(&w->prod, &w->ckq,
                                              w->cfg->stop_timeout_ms, &err))
                worker_fail(w, "stop_unacknowledged", &err);
        worker_commit(w, 1);
        return NULL;
}

agg_worker *agg_worker_new(agg_ctx *ctx, int id, tally_err *err)
{
        agg_worker *w = calloc(1, sizeof(*w));

        if (!w)
                abort();
        w->ctx = ctx;
        w->cfg = ctx->cfg;
        w->id = id;
        w->params.window_ms = ctx->cfg->common.windows.ms[0];
        w->params.disorder_ms = ctx->cfg->common.disorder_ms;
        w->params.lateness_ms = ctx->cfg->common.lateness_ms;
        w->queue = tally_group_queue(ctx->group, id);
        w->ps = calloc((size_t)ctx->clean_partitions, sizeof(*w->ps));
        w->snap = calloc((size_t)ctx->clean_partitions, sizeof(*w->snap));
        if (!w->ps || !w->snap)
                abort();
        if (tally_producer_init(&w->prod, &ctx->cfg->common, err)) {
                agg_worker_free(w);
                return NULL;
        }
        /* while the group is still joining (aggregate alone: the first
         * rollups had waited ~0.9 s of a 1.2 s run for the rollups
         * topic's partitions) */
        tally_producer_warm(&w->prod, w->cfg->common.topic_rollups, 1000);
        tally_producer_warm(&w->prod, w->cfg->common.topic_dlq, 1000);
        w->last_commit_mono = w->last_emit_mono = tally_now_mono_ms();
        return w;
}

void agg_worker_free(agg_worker *w)
{
        if (!w)
                return;
        tally_producer_close(&w->prod, 10000);
        tally_ckpt_queue_free(&w->ckq);
        for (int32_t p = 0; w->ps && p < w->ctx->clean_partitions; p++)
                agg_part_free(w->ps[p].part);
        free(w->ps);
        free(w->snap);
        tally_buf_free(&w->out);
        free(w);
}

static void *worker_create(void *ctx, int id, tally_err *err)
{
        return agg_worker_new(ctx, id, err);
}

static void worker_destroy(void *w)
{
        agg_worker_free(w);
}

const tally_pool_ops agg_worker_pool_ops = {worker_create, worker_main, worker_destroy};
