#include "common/kafka.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/signals.h"

ssize_t tally_kafka_consume_batch(rd_kafka_queue_t *q, int timeout_ms,
                                  rd_kafka_message_t **msgs, size_t max)
{
        ssize_t n = rd_kafka_consume_batch_queue(q, 0, msgs, max);

        if (n || !max)
                return n;
        msgs[0] = rd_kafka_consume_queue(q, timeout_ms);
        if (!msgs[0])
                return 0;
        n = rd_kafka_consume_batch_queue(q, 0, msgs + 1, max - 1);
        return n > 0 ? n + 1 : 1;
}

int64_t tally_now_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tally_now_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int tally_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                         const char *val, tally_err *err)
{
        char errstr[256];

        if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
                return tally_err_set(err, "bad_config",
                                     "kafka property %s: %s", key, errstr);
        return 0;
}

/* Errors are informational (librdkafka retries) unless fatal. */
static void kafka_error_cb(rd_kafka_t *rk, int code, const char *reason,
                           void *opaque)
{
        (void)opaque;
        if (code == RD_KAFKA_RESP_ERR__FATAL) {
                char buf[512];

                rd_kafka_fatal_error(rk, buf, sizeof(buf));
                tally_log_error("kafka_fatal", "client=%s error=\"%s\"",
                                rd_kafka_name(rk), buf);
                tally_stop_request();
                return;
        }
        tally_log_warn("kafka_error", "client=%s code=%s error=\"%s\"",
                       rd_kafka_name(rk), rd_kafka_err2name(code), reason);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
        (void)rk;
        /* the gapless guarantee is set on purpose; its "experimental"
         * warning would be printed by every producer */
        if (!strcmp(fac, "CONFWARN") && strstr(buf, "gapless"))
                return;
        tally_log(level <= 3 ? TALLY_LOG_ERROR :
                  level <= 4 ? TALLY_LOG_WARN :
                  level <= 6 ? TALLY_LOG_INFO : TALLY_LOG_DEBUG,
                  "kafka_log", "facility=%s text=\"%s\"", fac, buf);
}

/* A consumer's message.max.bytes bounds only the requests it sends (a
 * record larger than the fetch size still arrives: receive.message.max.bytes
 * bounds that) and the least fetch.max.bytes librdkafka accepts ("must be
 * >= message.max.bytes", 1 MB by default). So a consumer's is lowered to
 * its fetch.max.bytes when that is smaller: a small fetch takes one
 * property, and a message.max.bytes raised for the producers does not stop
 * the consumer. (It also caps the first guess of an lz4 decoder's output
 * buffer, which then grows by realloc: a few copies per record batch.) */
static int kafka_consumer_fit_fetch(rd_kafka_conf_t *conf, tally_err *err)
{
        char fetch[32], msg[32];
        size_t nf = sizeof(fetch), nm = sizeof(msg);

        if (rd_kafka_conf_get(conf, "fetch.max.bytes", fetch, &nf) != RD_KAFKA_CONF_OK ||
            rd_kafka_conf_get(conf, "message.max.bytes", msg, &nm) != RD_KAFKA_CONF_OK)
                return 0;
        /* below message.max.bytes' own minimum librdkafka names the
         * conflict itself when the client is created */
        if (atoll(fetch) >= atoll(msg) || atoll(fetch) < 1000)
                return 0;
        return tally_kafka_conf_set(conf, "message.max.bytes", fetch, err);
}

rd_kafka_conf_t *tally_kafka_conf_new(const tally_common_cfg *c,
                                      tally_kafka_role role, tally_err *err)
{
        static const char *const producer_defaults[][2] = {
                {"enable.idempotence", "true"},
                {"enable.gapless.guarantee", "true"},
                /* snappy, not lz4: a snappy block carries its decoded
                 * length, so the consumer allocates the output once.
                 * librdkafka 2.0.2's lz4 frames leave the content size
                 * out, and its decoder starts at 4 x the input and grows
                 * by realloc: on tally.clean (about 5:1 in its format
                 * v1) most of the consumer's page faults and copies.
                 * Measured with the same binaries: aggregate alone 0.55
                 * -> 0.40 s (CPU 0.87 -> 0.68 s), store alone 0.77 ->
                 * 0.64 s; ingest producing it unchanged; the stored size
                 * about the same. Clean format v2 compresses ~2.9:1, and
                 * lz4 for it measured no faster (session 21); the
                 * rollups' JSON still compresses more than 4:1
                 * (docs/performance.md). */
                {"compression.codec", "snappy"},
                {"linger.ms", "5"},
                {"batch.size", "1000000"},
                {"message.timeout.ms", "0"},    /* never drop a message */
                {"queue.buffering.max.kbytes", "262144"},
                {"queue.buffering.max.messages", "1000000"},
                {"reconnect.backoff.max.ms", "1000"},
        };
        static const char *const consumer_defaults[][2] = {
                {"enable.auto.commit", "false"},
                {"enable.auto.offset.store", "false"},
                {"auto.offset.reset", "error"},  /* never skip silently */
                {"queued.min.messages", "200000"},
                {"queued.max.messages.kbytes", "65536"},  /* bounds RSS */
                /* how long a broker may hold a fetch that finds no new
                 * data. A real broker answers as soon as data arrives, so
                 * this only sets how often an idle consumer asks (100 / s
                 * per broker at 10 ms). The devbroker (librdkafka 2.0.2's
                 * mock) holds it the whole time even when data arrives
                 * meanwhile, so a caught-up hop of the chain (raw ->
                 * ingest, clean -> aggregate) waited up to 50 ms at the
                 * previous setting. tally-store keeps 50 ms (store/main.c).
                 * docs/performance.md, session 12. */
                {"fetch.wait.max.ms", "10"},
                {"reconnect.backoff.max.ms", "1000"},
                {"enable.partition.eof", "true"},
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        size_t i;

        rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
        rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
        if (tally_kafka_conf_set(conf, "bootstrap.servers", c->brokers, err))
                goto fail;
        if (role == TALLY_KAFKA_PRODUCER) {
                for (i = 0; i < sizeof(producer_defaults) / sizeof(*producer_defaults); i++)
                        if (tally_kafka_conf_set(conf, producer_defaults[i][0],
                                                 producer_defaults[i][1], err))
                                goto fail;
        } else {
                for (i = 0; i < sizeof(consumer_defaults) / sizeof(*consumer_defaults); i++)
                        if (tally_kafka_conf_set(conf, consumer_defaults[i][0],
                                                 consumer_defaults[i][1], err))
                                goto fail;
        }
        for (i = 0; i < c->kafka.n; i++) {
                const char *k = c->kafka.kv[i].key;

                /* a consumer-only property on a producer (or the other
                 * way round) only warns in librdkafka; skip the ones that
                 * belong to the other role so one -X list serves both */
                if (role == TALLY_KAFKA_PRODUCER &&
                    (!strncmp(k, "group.", 6) || !strncmp(k, "session.", 8) ||
                     !strncmp(k, "heartbeat.", 10) || !strncmp(k, "fetch.", 6) ||
                     !strncmp(k, "queued.", 7) || !strncmp(k, "auto.", 5) ||
                     !strncmp(k, "partition.assignment", 20) ||
                     !strncmp(k, "max.poll", 8) || !strncmp(k, "enable.auto", 11) ||
                     !strncmp(k, "enable.partition.eof", 20)))
                        continue;
                if (role == TALLY_KAFKA_CONSUMER &&
                    (!strncmp(k, "linger", 6) || !strncmp(k, "batch.", 6) ||
                     !strncmp(k, "compression", 11) || !strncmp(k, "acks", 4) ||
                     !strncmp(k, "message.timeout", 15) ||
                     !strncmp(k, "enable.idempotence", 18) ||
                     !strncmp(k, "queue.buffering", 15)))
                        continue;
                if (tally_kafka_conf_set(conf, k, c->kafka.kv[i].val, err))
                        goto fail;
        }
        if (role == TALLY_KAFKA_CONSUMER &&
            kafka_consumer_fit_fetch(conf, err))
                goto fail;
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

rd_kafka_t *tally_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf,
                            tally_err *err)
{
        char errstr[512];
        rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));

        if (!rk) {
                rd_kafka_conf_destroy(conf);
                tally_err_set(err, "kafka", "rd_kafka_new: %s", errstr);
        }
        return rk;
}

int tally_kafka_partitions(rd_kafka_t *rk, const char *topic, int *count,
                           int timeout_ms, tally_err *err)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e;
        int rc = -1;

        /* all_topics=1: naming the topic would auto-create it */
        e = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
        if (e)
                return tally_err_set(err, "kafka", "metadata: %s",
                                     rd_kafka_err2str(e));
        for (int i = 0; i < md->topic_cnt; i++) {
                if (strcmp(md->topics[i].topic, topic))
                        continue;
                if (md->topics[i].err) {
                        tally_err_set(err, "kafka", "topic %s: %s", topic,
                                      rd_kafka_err2str(md->topics[i].err));
                } else if (md->topics[i].partition_cnt < 1) {
                        tally_err_set(err, "missing_topic",
                                      "topic %s has no partitions", topic);
                } else {
                        *count = md->topics[i].partition_cnt;
                        rc = 0;
                }
                goto out;
        }
        tally_err_set(err, "missing_topic",
                      "topic %s does not exist (create it first)", topic);
out:
        rd_kafka_metadata_destroy(md);
        return rc;
}

int tally_kafka_commit(rd_kafka_t *rk, const char *topic,
                       const tally_ckpt_pos *pos, int n,
                       tally_commit_meta_fn meta, int (*keep)(void *, int32_t),
                       void *opaque, int async, tally_err *err)
{
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;

        list = rd_kafka_topic_partition_list_new(n ? n : 1);
        for (int i = 0; i < n; i++) {
                char buf[256];
                rd_kafka_topic_partition_t *tp;

                if (keep && !keep(opaque, pos[i].partition))
                        continue;
                meta(buf, sizeof(buf), &pos[i], opaque);
                tp = rd_kafka_topic_partition_list_add(list, topic,
                                                       pos[i].partition);
                tp->offset = pos[i].offset;
                tp->metadata = strdup(buf);     /* freed with the list */
                tp->metadata_size = strlen(buf);
        }
        if (list->cnt)
                e = rd_kafka_commit(rk, list, async);
        rd_kafka_topic_partition_list_destroy(list);
        if (e)
                return tally_err_set(err, "commit_failed", "commit %s: %s",
                                     topic, rd_kafka_err2str(e));
        return 0;
}

int tally_kafka_commit_done(rd_kafka_t *rk, tally_ckpt_queue *q,
                            const char *topic, tally_commit_meta_fn meta,
                            int (*keep)(void *, int32_t), void *opaque,
                            int async, tally_err *err)
{
        tally_ckpt_pos *pos;
        int n = tally_ckpt_pop_done(q, &pos), rc = 0;

        if (n)
                rc = tally_kafka_commit(rk, topic, pos, n, meta, keep, opaque,
                                        async, err);
        free(pos);
        return rc;
}
