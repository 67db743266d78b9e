#include "ingest/worker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ckpt.h"
#include "common/clean_codec.h"
#include "common/dlq.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/producer.h"
#include "common/signals.h"

#define BATCH_MSGS 4096

typedef struct ingest_origin {
        uint32_t gen;                   /* group generation state is for */
        int64_t next_offset;            /* -1: nothing processed yet */
        int64_t progress;               /* INT64_MIN: unknown */
        int64_t marked;                 /* progress last sent in a marker */
        int at_eof;
        int hb_pending;
        int64_t hb_sent_mono;
        int64_t eof_mono;               /* when the head was last reached */
        int64_t last_activity_mono;
} ingest_origin;

struct ingest_worker {
        ingest_ctx *ctx;
        const ingest_cfg *cfg;
        int id;
        tally_producer prod;
        rd_kafka_queue_t *queue;        /* borrowed from the group */
        ingest_decoder *dec;
        tally_clean_writer *writers;    /* [clean_partitions] */
        size_t pending_bytes;
        ingest_origin *origins;         /* [raw_partitions] */
        tally_ckpt_queue ckq;
        tally_ckpt_pos *snap;           /* [raw_partitions] scratch */
        int64_t last_flush_mono, last_commit_mono;
        int fatal;
        /* message being decoded */
        ingest_origin *msg_origin;
        const rd_kafka_message_t *msg;
        int64_t msg_contrib;
        int64_t msg_contrib_max;        /* record time + disorder */
        tally_buf scratch;
        /* the clean partition of the last device seen: the readings of a
         * device report share their device, and hashing it for each took
         * ~5 % of the worker (a copy of the bytes, not the pointer: the
         * decoder may reuse its buffers) */
        char last_dev[TALLY_NAME_MAX];
        uint16_t last_dev_len;          /* 0: none */
        int32_t last_dev_cp;
        /* counted here, added to the shared stats once per consumed batch
         * (an atomic per reading on a line both workers write was a
         * cache-line ping-pong between the threads) */
        long long n_messages, n_readings;
        /* prefetch: librdkafka stops fetching a partition whose queue
         * holds queued.min.messages, and 2.0.2 decides again only when
         * its broker thread wakes (up to a second later). A worker that
         * saw its queue near that limit nudges the fetcher once the queue
         * is down to half, so the prefetch stays bounded and never runs
         * dry (docs/performance.md, "ingest memory") */
        tally_nudge nudge;
        /* the nudge is a request/response: a helper thread sends it so
         * the worker never waits for it */
        pthread_t waker;
        int waker_started;
        pthread_mutex_t wake_mu;
        pthread_cond_t wake_cv;
        int wake_asked;                 /* guarded by wake_mu */
        int wake_stop;                  /* guarded by wake_mu */
};

static void *worker_waker_main(void *arg)
{
        ingest_worker *w = arg;

        pthread_mutex_lock(&w->wake_mu);
        for (;;) {
                while (!w->wake_asked && !w->wake_stop)
                        pthread_cond_wait(&w->wake_cv, &w->wake_mu);
                if (w->wake_stop)
                        break;
                w->wake_asked = 0;
                pthread_mutex_unlock(&w->wake_mu);
                tally_group_wake_fetchers(w->ctx->group,
                                          w->cfg->common.topic_raw, w->id,
                                          1000);
                pthread_mutex_lock(&w->wake_mu);
        }
        pthread_mutex_unlock(&w->wake_mu);
        return NULL;
}

static void worker_stats_flush(ingest_worker *w)
{
        if (w->n_messages)
                atomic_fetch_add(&w->ctx->stats.messages, w->n_messages);
        if (w->n_readings)
                atomic_fetch_add(&w->ctx->stats.readings, w->n_readings);
        w->n_messages = w->n_readings = 0;
}

static void worker_fail(ingest_worker *w, const char *msg, const tally_err *err)
{
        tally_log_error(msg, "worker=%d reason=%s error=\"%s\"", w->id,
                        err->reason, err->msg);
        w->fatal = 1;
        atomic_store(&w->ctx->failed, 1);
        tally_stop_request();
}

static int worker_dlq(ingest_worker *w, const char *reason, const char *detail,
                      int32_t index, int32_t element, const void *val,
                      size_t len, tally_err *err)
{
        const rd_kafka_message_t *m = w->msg;
        tally_dlq_rec rec = {
                .stage = "ingest", .reason = reason, .detail = detail,
                .origin_topic = w->cfg->common.topic_raw,
                .origin_partition = m->partition, .origin_offset = m->offset,
                .origin_index = index, .origin_element = element,
                .value = val, .value_len = len,
                .key = m->key, .key_len = m->key_len,
        };
        tally_ckpt *c = tally_ckpt_open(&w->ckq);

        if (tally_dlq_produce(w->prod.rk, w->cfg->common.topic_dlq, &rec, c, err))
                return -1;
        tally_ckpt_sent(c);
        atomic_fetch_add(&w->ctx->stats.rejected, 1);
        tally_log_debug("rejected", "reason=%s partition=%d offset=%" PRId64
                        " index=%d detail=\"%s\"", reason, m->partition,
                        m->offset, index, detail ? detail : "");
        return 0;
}

static int worker_flush(ingest_worker *w, tally_err *err);

static int worker_on_event(void *opaque, const ingest_event *ev)
{
        ingest_worker *w = opaque;
        tally_err err;

        if (ev->kind == INGEST_EV_REJECT) {
                if (worker_dlq(w, ev->reason, ev->detail, ev->index, ev->element,
                               ev->element_text, ev->element_len, &err)) {
                        worker_fail(w, "produce_failed", &err);
                        return -1;
                }
                return 0;
        }
        tally_reading r = *ev->reading;
        int64_t contrib;
        int32_t cp;
        tally_clean_writer *cw;

        if (r.device_len && r.device_len == w->last_dev_len &&
            !memcmp(r.device, w->last_dev, r.device_len)) {
                cp = w->last_dev_cp;
        } else {
                cp = tally_partition_for(r.device, r.device_len,
                                         w->ctx->clean_partitions);
                if (r.device_len <= sizeof(w->last_dev)) {
                        memcpy(w->last_dev, r.device, r.device_len);
                        w->last_dev_len = r.device_len;
                        w->last_dev_cp = cp;
                }
        }
        cw = &w->writers[cp];
        size_t before = cw->buf.len;

        r.origin.partition = w->msg->partition;
        r.origin.offset = w->msg->offset;
        r.origin.index = ev->index;
        r.progress_ms = w->msg_origin->progress;
        tally_clean_writer_add(cw, &r);
        w->pending_bytes += cw->buf.len - before;
        /* a reading moves progress at most to its record time + disorder */
        contrib = r.ts_ms;
        if (contrib > w->msg_contrib_max)
                contrib = w->msg_contrib_max;
        if (contrib > w->msg_contrib)
                w->msg_contrib = contrib;
        w->n_readings++;
        return 0;
}

static const char *worker_heartbeat_value(const rd_kafka_message_t *m)
{
        rd_kafka_headers_t *hdrs = NULL;
        const void *val;
        size_t len;

        if (rd_kafka_message_headers(m, &hdrs) || !hdrs)
                return NULL;
        if (rd_kafka_header_get_last(hdrs, INGEST_HEARTBEAT_HEADER, &val, &len))
                return NULL;
        return "";
}

static void worker_origin_reset(ingest_worker *w, ingest_origin *o, int32_t p,
                                uint32_t gen)
{
        o->gen = gen;
        o->next_offset = -1;
        o->progress = w->ctx->start[p].progress_ms;
        o->marked = INT64_MIN;
        o->at_eof = 0;
        o->hb_pending = 0;
        o->last_activity_mono = tally_now_mono_ms();
}

/* now: when the batch holding m was consumed (one clock read per batch,
 * not per message: a few per cent of the worker's time) */
static int worker_handle(ingest_worker *w, const rd_kafka_message_t *m,
                         int64_t now, tally_err *err)
{
        int32_t p = m->partition;
        ingest_origin *o;
        uint32_t gen;
        rd_kafka_timestamp_type_t tt;
        int64_t rec_ts;

        if (p < 0 || p >= w->ctx->raw_partitions)
                return tally_err_set(err, "raw_topic_changed",
                                     "raw partition %d beyond the %d known at start: restart to take it",
                                     p, w->ctx->raw_partitions);
        o = &w->origins[p];
        gen = tally_group_gen(w->ctx->group, p);
        if (o->gen != gen)
                worker_origin_reset(w, o, p, gen);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* quiet time starts when the head is confirmed, not at the
                 * last message: a fetch that only reaches the head after a
                 * broker outage must not count the outage as quiet */
                if (!o->at_eof)
                        o->eof_mono = now;
                o->at_eof = 1;
                return 0;
        }
        if (m->err) {
                tally_log_warn("consumer_error", "partition=%d error=\"%s\"", p,
                               rd_kafka_message_errstr(m));
                return 0;
        }
        if (o->next_offset >= 0 && m->offset < o->next_offset)
                return 0;       /* already processed in this assignment */
        o->at_eof = 0;
        o->last_activity_mono = now;
        w->n_messages++;
        w->msg = m;
        w->msg_origin = o;
        tally_ckpt_open(&w->ckq);
        if (worker_heartbeat_value(m)) {
                char buf[32];
                long long h;
                char *end;

                o->hb_pending = 0;
                if (m->len && m->len < sizeof(buf)) {
                        memcpy(buf, m->payload, m->len);
                        buf[m->len] = '\0';
                        h = strtoll(buf, &end, 10);
                        if (!*end && end != buf && h > -TALLY_CLEAN_TIME_LIMIT &&
                            h < TALLY_CLEAN_TIME_LIMIT) {
                                if (h > o->progress)
                                        o->progress = h;
                                o->next_offset = m->offset + 1;
                                atomic_fetch_add(&w->ctx->stats.heartbeats, 1);
                                return 0;
                        }
                }
                o->next_offset = m->offset + 1;
                return worker_dlq(w, "bad_heartbeat", "heartbeat value is not an integer",
                                  -1, -1, m->payload, m->len, err);
        }
        rec_ts = rd_kafka_message_timestamp(m, &tt);
        /* readings may lie a week around the record time: keep both well
         * inside the range the clean format carries */
        if (rec_ts < 0 || rec_ts > TALLY_CLEAN_TIME_LIMIT / 2) {
                o->next_offset = m->offset + 1;
                return worker_dlq(w, "bad_timestamp",
                                  rec_ts < 0 ? "record has no Kafka timestamp"
                                             : "record timestamp out of range",
                                  -1, -1, m->payload, m->len, err);
        }
        w->msg_contrib = INT64_MIN;
        w->msg_contrib_max = rec_ts + w->cfg->common.disorder_ms;
        {
                tally_err derr;

                if (ingest_decode(w->dec, m->payload, m->len, rec_ts,
                                  worker_on_event, w, &derr)) {
                        if (w->fatal)
                                return tally_err_set(err, "fatal", "%s", derr.msg);
                        if (worker_dlq(w, derr.reason, derr.msg, -1, -1,
                                       m->payload, m->len, err))
                                return -1;
                }
        }
        if (w->msg_contrib > o->progress)
                o->progress = w->msg_contrib;
        o->next_offset = m->offset + 1;
        if (w->pending_bytes >= (size_t)w->cfg->batch_bytes)
                return worker_flush(w, err);
        return 0;
}

static int worker_owned(const ingest_worker *w, int32_t p)
{
        uint32_t gen = tally_group_gen(w->ctx->group, p);

        return (gen & 1) && w->origins[p].gen == gen;
}

/* the capacity a clean writer keeps between batches, at least */
#define WRITER_KEEP_MIN ((size_t)16 << 10)

/* Produces the pending batches and progress markers and seals the
 * current checkpoint with a snapshot of the origins. */
static int worker_flush(ingest_worker *w, tally_err *err)
{
        const tally_common_cfg *c = &w->cfg->common;
        tally_ckpt *ck = w->ckq.cur;
        int32_t np = w->ctx->raw_partitions, nc = w->ctx->clean_partitions;
        int changed = 0, n = 0;
        size_t keep = 4 * (size_t)w->cfg->batch_bytes / (size_t)nc;

        if (!ck)
                return 0;
        if (keep < WRITER_KEEP_MIN)
                keep = WRITER_KEEP_MIN;
        for (int32_t cp = 0; cp < nc; cp++) {
                tally_clean_writer *cw = &w->writers[cp];
                const unsigned char *bytes;
                size_t len;

                if (!cw->count)
                        continue;
                bytes = tally_clean_writer_finish(cw, &len);
                if (tally_producer_send(&w->prod, c->topic_clean, cp, NULL, 0, bytes, len, ck, err))
                        return -1;
                tally_clean_writer_reset(cw);
                /* a writer keeps the capacity of its largest batch, and
                 * the readings of a stretch of one raw partition's
                 * messages all go to a few writers: over a long backlog
                 * every writer once took nearly a whole batch (heaptrack:
                 * 13 MB of writers at half the benchmark's length, 30 MB
                 * at double). Past a few times its share, let it go. */
                if (cw->buf.cap > keep)
                        tally_clean_writer_free(cw);
                atomic_fetch_add(&w->ctx->stats.batches, 1);
        }
        w->pending_bytes = 0;
        for (int32_t p = w->id; p < np; p += (int32_t)c->threads)
                if (worker_owned(w, p) && w->origins[p].progress != INT64_MIN &&
                    w->origins[p].progress != w->origins[p].marked)
                        changed = 1;
        if (changed) {
                /* tell every clean partition how far our origins are */
                tally_clean_origin *org = calloc((size_t)np, sizeof(*org));
                size_t no = 0;

                if (!org)
                        abort();
                for (int32_t p = w->id; p < np; p += (int32_t)c->threads) {
                        ingest_origin *o = &w->origins[p];
                        if (!worker_owned(w, p) || o->progress == INT64_MIN)
                                continue;
                        org[no].partition = p;
                        org[no].progress_ms = o->progress;
                        no++;
                        o->marked = o->progress;
                }
                tally_buf_reset(&w->scratch);
                tally_clean_progress_encode(&w->scratch, np, org, no);
                free(org);
                for (int32_t cp = 0; cp < nc; cp++)
                        if (tally_producer_send(&w->prod, c->topic_clean, cp, NULL, 0,
                                                w->scratch.data, w->scratch.len,
                                                ck, err))
                                return -1;
        }
        for (int32_t p = w->id; p < np; p += (int32_t)c->threads) {
                ingest_origin *o = &w->origins[p];
                if (!worker_owned(w, p) || o->next_offset < 0)
                        continue;
                w->snap[n].partition = p;
                w->snap[n].offset = o->next_offset;
                w->snap[n].value = o->progress;
                n++;
        }
        tally_ckpt_seal(&w->ckq, w->snap, n);
        w->last_flush_mono = tally_now_mono_ms();
        return 0;
}

static void worker_meta(char *buf, size_t n, const tally_ckpt_pos *pos,
                        void *opaque)
{
        ingest_worker *w = opaque;

        ingest_meta_format(buf, n, pos->value, w->ctx->clean_partitions);
}

static int worker_keep(void *opaque, int32_t partition)
{
        return worker_owned(opaque, partition);
}

/* Commits the offsets of the completed checkpoints at the queue's head. */
static void worker_commit(ingest_worker *w, int sync)
{
        tally_err err;

        w->last_commit_mono = tally_now_mono_ms();
        if (w->prod.failed && !w->fatal)
                worker_fail(w, "delivery_failed", &w->prod.err);
        if (w->fatal)
                return;
        if (tally_kafka_commit_done(tally_group_rk(w->ctx->group), &w->ckq,
                                    w->cfg->common.topic_raw, worker_meta,
                                    worker_keep, w, !sync, &err))
                tally_log_warn("commit_failed", "worker=%d error=\"%s\"",
                               w->id, err.msg);
}

static void worker_heartbeats(ingest_worker *w, int64_t now)
{
        const ingest_cfg *cfg = w->cfg;
        int32_t np = w->ctx->raw_partitions;

        for (int32_t p = w->id; p < np; p += (int32_t)cfg->common.threads) {
                ingest_origin *o = &w->origins[p];
                char val[32];
                int64_t hb, quiet_start;
                tally_err err;

                if (!worker_owned(w, p) || !o->at_eof)
                        continue;
                /* one heartbeat at a time: the next only once this one was
                 * read back, which also restarts the quiet time. So a broker
                 * outage queues at most one heartbeat (computed before it),
                 * and time spent unable to reach the brokers never counts
                 * as quiet time. */
                if (o->hb_pending)
                        continue;
                quiet_start = o->last_activity_mono > o->eof_mono ?
                              o->last_activity_mono : o->eof_mono;
                if (now - quiet_start < cfg->idle_timeout_ms)
                        continue;
                /* the heartbeat is data in the raw log: replay sees the
                 * same value, so progress stays a function of the log */
                if (o->progress == INT64_MIN)
                        hb = tally_now_wall_ms() - cfg->idle_timeout_ms -
                             cfg->common.disorder_ms;
                else
                        hb = o->progress + (now - quiet_start);
                snprintf(val, sizeof(val), "%" PRId64, hb);
                if (rd_kafka_producev(w->prod.rk,
                                      RD_KAFKA_V_TOPIC(cfg->common.topic_raw),
                                      RD_KAFKA_V_PARTITION(p),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_VALUE(val, strlen(val)),
                                      RD_KAFKA_V_HEADER(INGEST_HEARTBEAT_HEADER, "1", 1),
                                      RD_KAFKA_V_END)) {
                        tally_err_set(&err, "kafka", "heartbeat produce failed");
                        tally_log_warn("heartbeat_failed", "partition=%d", p);
                        continue;
                }
                o->hb_pending = 1;
                o->hb_sent_mono = now;
        }
}

/* Any request to a partition's leader wakes that broker's thread, which
 * then decides again which partitions to fetch: the waker thread asks
 * every leader of ours at once (tally_group_wake_fetchers). */
static void worker_wake_fetcher(ingest_worker *w, ssize_t consumed,
                                int64_t now)
{
        int64_t len = rd_kafka_queue_length(w->queue);

        if (!w->waker_started)
                return;
        /* near the count limit, or dry right after a full batch (a
         * queue of large messages stops at queued.max.messages.kbytes) */
        if (!tally_nudge_due(&w->nudge,
                             (len + consumed) * 4 >= w->nudge.limit * 3 ||
                             (consumed == BATCH_MSGS && len == 0),
                             len, now))
                return;
        pthread_mutex_lock(&w->wake_mu);
        w->wake_asked = 1;
        pthread_cond_signal(&w->wake_cv);
        pthread_mutex_unlock(&w->wake_mu);
        tally_nudge_sent(&w->nudge, tally_now_mono_ms());
}

/* How long the next consume may wait for input: up to the next flush
 * while readings wait in batches, ~5 ms while records wait for their
 * acknowledgement, up to the next commit while acknowledged checkpoints
 * wait for it, 50 ms when there is nothing to do. (A fixed 50 ms put up
 * to three waits, flush, acks and commit, between the last message and
 * its commit.) */
static int worker_wait_ms(const ingest_worker *w, int64_t now)
{
        int64_t t = 50;

        if (w->pending_bytes) {
                int64_t due = w->last_flush_mono + w->cfg->flush_ms - now;
                if (due < t)
                        t = due;
        }
        return tally_ckpt_wait_ms(&w->ckq, w->last_commit_mono,
                                  w->cfg->commit_ms, now, t);
}

static void *worker_main(void *arg)
{
        ingest_worker *w = arg;
        rd_kafka_message_t *msgs[BATCH_MSGS];
        tally_err err;

        while (!tally_stop_requested() && !w->fatal && !w->prod.failed) {
                /* waits for a whole batch (or the timeout), unlike
                 * aggregate (tally_kafka_consume_batch): taking what was
                 * queued made 2 threads slower, 1.27-1.70 s against
                 * 1.11-1.18 s, with librdkafka's threads at up to 1.8 x
                 * the CPU */
                ssize_t n = rd_kafka_consume_batch_queue(
                        w->queue, worker_wait_ms(w, tally_now_mono_ms()), msgs,
                        BATCH_MSGS);
                int64_t now = tally_now_mono_ms();

                for (ssize_t i = 0; i < n; i++) {
                        if (!w->fatal && worker_handle(w, msgs[i], now, &err))
                                worker_fail(w, "ingest_failed", &err);
                        rd_kafka_message_destroy(msgs[i]);
                }
                worker_stats_flush(w);
                now = tally_now_mono_ms();
                worker_wake_fetcher(w, n, now);
                if (!w->fatal && now - w->last_flush_mono >= w->cfg->flush_ms &&
                    worker_flush(w, &err))
                        worker_fail(w, "ingest_failed", &err);
                worker_heartbeats(w, now);
                rd_kafka_poll(w->prod.rk, 0);
                if (now - w->last_commit_mono >= w->cfg->commit_ms)
                        worker_commit(w, 0);
        }
        /* graceful: finish in-flight work, wait for acks, commit */
        if (!w->fatal && worker_flush(w, &err))
                worker_fail(w, "ingest_failed", &err);
        /* without the acknowledgements (the brokers are gone) the worker
         * ends failed and commits nothing more */
        if (!w->fatal && tally_producer_drain(&w->prod, &w->ckq,
                                              w->cfg->stop_timeout_ms, &err))
                worker_fail(w, "stop_unacknowledged", &err);
        worker_commit(w, 1);
        worker_stats_flush(w);
        return NULL;
}

ingest_worker *ingest_worker_new(ingest_ctx *ctx, int id, tally_err *err)
{
        ingest_worker *w = calloc(1, sizeof(*w));
        ingest_limits lim;

        if (!w)
                abort();
        w->ctx = ctx;
        w->cfg = ctx->cfg;
        w->id = id;
        w->queue = tally_group_queue(ctx->group, id);
        ingest_limits_default(&lim);
        lim.max_message = (size_t)ctx->cfg->max_message;
        lim.max_past_ms = ctx->cfg->max_past_ms;
        lim.max_future_ms = ctx->cfg->max_future_ms;
        w->dec = ingest_decoder_new(&lim);
        w->writers = calloc((size_t)ctx->clean_partitions, sizeof(*w->writers));
        w->origins = calloc((size_t)ctx->raw_partitions, sizeof(*w->origins));
        w->snap = calloc((size_t)ctx->raw_partitions, sizeof(*w->snap));
        if (!w->dec || !w->writers || !w->origins || !w->snap)
                abort();
        if (tally_producer_init(&w->prod, &ctx->cfg->common, err))
                goto fail;
        tally_producer_warm(&w->prod, ctx->cfg->common.topic_clean, 5000);
        tally_producer_warm(&w->prod, ctx->cfg->common.topic_dlq, 1000);
        w->last_flush_mono = w->last_commit_mono = tally_now_mono_ms();
        tally_nudge_init(&w->nudge, ctx->group);
        pthread_mutex_init(&w->wake_mu, NULL);
        pthread_cond_init(&w->wake_cv, NULL);
        if (w->nudge.limit > 0 &&
            !pthread_create(&w->waker, NULL, worker_waker_main, w))
                w->waker_started = 1;
        return w;
fail:
        ingest_worker_free(w);
        return NULL;
}

void ingest_worker_free(ingest_worker *w)
{
        if (!w)
                return;
        if (w->waker_started) {
                pthread_mutex_lock(&w->wake_mu);
                w->wake_stop = 1;
                pthread_cond_signal(&w->wake_cv);
                pthread_mutex_unlock(&w->wake_mu);
                pthread_join(w->waker, NULL);
                pthread_mutex_destroy(&w->wake_mu);
                pthread_cond_destroy(&w->wake_cv);
        }
        tally_producer_close(&w->prod, 10000);
        tally_ckpt_queue_free(&w->ckq);
        free(w->snap);
        for (int32_t i = 0; w->writers && i < w->ctx->clean_partitions; i++)
                tally_clean_writer_free(&w->writers[i]);
        free(w->writers);
        free(w->origins);
        ingest_decoder_free(w->dec);
        tally_buf_free(&w->scratch);
        free(w);
}

static void *worker_create(void *ctx, int id, tally_err *err)
{
        return ingest_worker_new(ctx, id, err);
}

static void worker_destroy(void *w)
{
        ingest_worker_free(w);
}

const tally_pool_ops ingest_worker_pool_ops = {worker_create, worker_main, worker_destroy};
