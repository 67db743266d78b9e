#include "common/producer.h"

#include "common/kafka.h"
#include "common/log.h"
#include "common/signals.h"

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                           void *opaque)
{
        tally_producer *p = opaque;

        (void)rk;
        if (rkm->err) {
                if (!p->failed)
                        tally_err_set(&p->err, "delivery_failed",
                                      "topic=%s partition=%d: %s",
                                      rd_kafka_topic_name(rkm->rkt),
                                      rkm->partition, rd_kafka_err2str(rkm->err));
                p->failed = 1;
                tally_stop_request();
                return;
        }
        if (rkm->_private)
                tally_ckpt_acked(rkm->_private);
}

int tally_producer_init(tally_producer *p, const tally_common_cfg *c,
                        tally_err *err)
{
        rd_kafka_conf_t *conf = tally_kafka_conf_new(c, TALLY_KAFKA_PRODUCER, err);

        p->failed = 0;
        p->gave_up = 0;
        p->rk = NULL;
        p->ntopics = 0;
        if (!conf)
                return -1;
        rd_kafka_conf_set_opaque(conf, p);
        rd_kafka_conf_set_dr_msg_cb(conf, producer_dr_cb);
        p->rk = tally_kafka_new(RD_KAFKA_PRODUCER, conf, err);
        return p->rk ? 0 : -1;
}

void tally_producer_warm(tally_producer *p, const char *topic, int timeout_ms)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t e;

        if (p->ntopics == TALLY_PRODUCER_TOPICS)
                return;
        rkt = rd_kafka_topic_new(p->rk, topic, NULL);
        if (!rkt)
                return;
        p->topics[p->ntopics++] = rkt;
        e = rd_kafka_metadata(p->rk, 0, rkt, &md, timeout_ms);
        if (e)
                tally_log_warn("metadata_failed", "topic=%s error=\"%s\"", topic,
                               rd_kafka_err2str(e));
        else
                rd_kafka_metadata_destroy(md);
}

int tally_producer_send(tally_producer *p, const char *topic,
                        int32_t partition, const void *key, size_t key_len,
                        const void *buf, size_t len, tally_ckpt *c,
                        tally_err *err)
{
        rd_kafka_resp_err_t e;

        for (;;) {
                e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
                                      RD_KAFKA_V_PARTITION(partition),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_KEY((void *)key, key_len),
                                      RD_KAFKA_V_VALUE((void *)buf, len),
                                      RD_KAFKA_V_OPAQUE(c), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(p->rk, 10);       /* serve delivery reports */
        }
        if (e)
                return tally_err_set(err, "kafka", "produce to %s [%d]: %s",
                                     topic, partition, rd_kafka_err2str(e));
        if (c)
                tally_ckpt_sent(c);
        return 0;
}

int tally_producer_drain(tally_producer *p, const tally_ckpt_queue *q,
                         int64_t timeout_ms, tally_err *err)
{
        int64_t until = tally_now_mono_ms() + timeout_ms;
        long left;

        while (!p->failed && (left = tally_ckpt_pending(q)) > 0) {
                int64_t now = tally_now_mono_ms();

                if (now >= until) {
                        p->gave_up = 1;
                        return tally_err_set(err, "unacknowledged",
                                             "%ld records not acknowledged "
                                             "%lld ms after the stop; their "
                                             "input stays uncommitted", left,
                                             (long long)timeout_ms);
                }
                rd_kafka_poll(p->rk, until - now < 100 ? (int)(until - now) : 100);
        }
        return 0;
}

void tally_producer_close(tally_producer *p, int timeout_ms)
{
        if (!p->rk)
                return;
        if (rd_kafka_flush(p->rk, p->gave_up ? 0 : timeout_ms))
                tally_log_warn("producer_unflushed", "pending=%d",
                               rd_kafka_outq_len(p->rk));
        while (p->ntopics > 0)
                rd_kafka_topic_destroy(p->topics[--p->ntopics]);
        rd_kafka_destroy(p->rk);
        p->rk = NULL;
}
