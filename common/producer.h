/* common/producer.h -- a worker's own producer whose delivery reports
 * acknowledge checkpoints (common/ckpt.h). A failed delivery marks the
 * producer failed and requests a stop: records after a gap must not be
 * committed past, so the process ends and its successor replays.
 * One owner thread, which also serves the delivery reports (poll). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/ckpt.h"
#include "common/config.h"
#include "common/err.h"

#define TALLY_PRODUCER_TOPICS 4

typedef struct tally_producer {
        rd_kafka_t *rk;
        int failed;
        int gave_up;                    /* a drain timed out: close waits no more */
        tally_err err;                  /* the first delivery failure */
        rd_kafka_topic_t *topics[TALLY_PRODUCER_TOPICS]; /* tally_producer_warm */
        int ntopics;
} tally_producer;

/* Creates the producer; returns 0 or -1 (err). */
int tally_producer_init(tally_producer *p, const tally_common_cfg *c,
                        tally_err *err);
/* Learns topic's partitions now and keeps them known. librdkafka 2.0.2
 * otherwise asks for a new topic's partitions only on its 1 s metadata
 * timer, after the first record for it: the first batches (or the first
 * dead letter) waited, and filled the bounded producer buffer meanwhile.
 * Best effort, at most timeout_ms (a broker down at start): on failure
 * (logged) the timer still does it. */
void tally_producer_warm(tally_producer *p, const char *topic, int timeout_ms);
/* Produces a copy of buf to topic/partition (RD_KAFKA_PARTITION_UA for the
 * partitioner) with key; counts it in c (may be NULL). Polls while the
 * local queue is full. Returns 0 or -1 (err). */
int tally_producer_send(tally_producer *p, const char *topic,
                        int32_t partition, const void *key, size_t key_len,
                        const void *buf, size_t len, tally_ckpt *c,
                        tally_err *err);
/* A worker's graceful end: serves delivery reports until nothing in q
 * waits for an acknowledgement, the producer has failed, or timeout_ms
 * has passed (a broker that is gone never answers). Returns 0, or -1
 * (err: how many records stay unacknowledged) at the timeout; those must
 * not be committed, so that the next owner reads their input again, and
 * tally_producer_close then does not wait for them once more. */
int tally_producer_drain(tally_producer *p, const tally_ckpt_queue *q,
                         int64_t timeout_ms, tally_err *err);
/* Waits up to timeout_ms for everything sent to be acknowledged, then
 * destroys the producer. */
void tally_producer_close(tally_producer *p, int timeout_ms);
