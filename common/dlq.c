#include "common/dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int tally_dlq_produce(rd_kafka_t *producer, const char *topic,
                      const tally_dlq_rec *r, void *msg_opaque,
                      tally_err *err)
{
        char part[16], off[24], idx[16], elem[16];
        rd_kafka_resp_err_t e;

        snprintf(part, sizeof(part), "%" PRId32, r->origin_partition);
        snprintf(off, sizeof(off), "%" PRId64, r->origin_offset);
        snprintf(idx, sizeof(idx), "%" PRId32, r->origin_index);
        snprintf(elem, sizeof(elem), "%" PRId32, r->origin_element);
        for (;;) {
                e = rd_kafka_producev(
                        producer, RD_KAFKA_V_TOPIC(topic),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                        RD_KAFKA_V_VALUE((void *)r->value, r->value_len),
                        RD_KAFKA_V_KEY((void *)r->key, r->key_len),
                        RD_KAFKA_V_HEADER("tally-reason", r->reason, -1),
                        RD_KAFKA_V_HEADER("tally-detail",
                                          r->detail ? r->detail : "", -1),
                        RD_KAFKA_V_HEADER("tally-stage", r->stage, -1),
                        RD_KAFKA_V_HEADER("tally-origin-topic", r->origin_topic, -1),
                        RD_KAFKA_V_HEADER("tally-origin-partition", part, -1),
                        RD_KAFKA_V_HEADER("tally-origin-offset", off, -1),
                        RD_KAFKA_V_HEADER("tally-origin-index", idx, -1),
                        RD_KAFKA_V_HEADER("tally-origin-element", elem, -1),
                        RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        break;
                rd_kafka_poll(producer, 10);    /* serve delivery reports */
        }
        if (e)
                return tally_err_set(err, "kafka", "produce to %s: %s", topic,
                                     rd_kafka_err2str(e));
        return 0;
}
