/* common/dlq.h -- dead-letter records (tally.dlq). The value is the
 * original bytes (or the offending element); headers carry the reason and
 * the raw origin so that duplicates can be recognised:
 *   tally-reason, tally-detail, tally-stage, tally-origin-topic,
 *   tally-origin-partition, tally-origin-offset, tally-origin-index,
 *   tally-origin-element
 * Thread-safe as librdkafka's producev is. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/err.h"

typedef struct tally_dlq_rec {
        const char *stage;              /* "ingest", "aggregate", "store" */
        const char *reason;             /* machine-readable */
        const char *detail;             /* human text (may be NULL) */
        const char *origin_topic;
        int32_t origin_partition;
        int64_t origin_offset;
        int32_t origin_index;           /* -1: the whole message */
        int32_t origin_element;         /* -1: not applicable */
        const void *value;
        size_t value_len;
        const void *key;
        size_t key_len;
} tally_dlq_rec;

/* Produces one record (value copied) with msg_opaque. Retries while the
 * local queue is full (polling the producer). Returns 0 or -1 (err). */
int tally_dlq_produce(rd_kafka_t *producer, const char *topic,
                      const tally_dlq_rec *rec, void *msg_opaque,
                      tally_err *err);
