/* common/kafka.h -- librdkafka set-up shared by every program: base
 * configuration from tally_common_cfg plus pass-through properties, the
 * error callback (fatal errors request a stop), and a topic lookup that
 * never auto-creates. Owns nothing after return: conf objects go to
 * rd_kafka_new, which takes them. */
#pragma once
#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "common/ckpt.h"
#include "common/config.h"
#include "common/err.h"

typedef enum tally_kafka_role {
        TALLY_KAFKA_PRODUCER,
        TALLY_KAFKA_CONSUMER,
} tally_kafka_role;

/* New conf with bootstrap.servers, the role's tuned defaults (producers:
 * compression, linger, idempotence, no message timeout; consumers: no
 * auto commit or offset store, large prefetch), then every pass-through
 * property (which win). Returns NULL with err naming a bad property. */
rd_kafka_conf_t *tally_kafka_conf_new(const tally_common_cfg *c,
                                      tally_kafka_role role, tally_err *err);

/* rd_kafka_conf_set that fills err with the property name on failure. */
int tally_kafka_conf_set(rd_kafka_conf_t *conf, const char *key,
                         const char *val, tally_err *err);

/* rd_kafka_new with err filled on failure; takes conf in any case. */
rd_kafka_t *tally_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf,
                            tally_err *err);

/* Partition count of an existing topic, asking for all topics so that an
 * unknown name is never auto-created. Returns 0, or -1 with err
 * (reason "missing_topic" when it does not exist). */
int tally_kafka_partitions(rd_kafka_t *rk, const char *topic, int *count,
                           int timeout_ms, tally_err *err);

/* Up to max messages of q: those queued now, without waiting for more;
 * only when none is queued, waits up to timeout_ms for the first one.
 * (rd_kafka_consume_batch_queue waits until the whole batch is there or
 * the timeout passes: a worker that found a partly filled queue slept
 * its 50 ms, ~0.1 s of a 0.45 s aggregate run.) Returns the count, 0 on
 * timeout, -1 on error (errno). */
ssize_t tally_kafka_consume_batch(rd_kafka_queue_t *q, int timeout_ms,
                                  rd_kafka_message_t **msgs, size_t max);

/* Milliseconds of CLOCK_MONOTONIC, for timers (never for event time). */
int64_t tally_now_mono_ms(void);
/* Wall clock in epoch ms (only for record timestamps of heartbeats). */
int64_t tally_now_wall_ms(void);

/* Formats the commit metadata of one position into buf (NUL-terminated). */
typedef void (*tally_commit_meta_fn)(char *buf, size_t n,
                                     const tally_ckpt_pos *pos, void *opaque);

/* Commits pos[0..n) of topic for the group of consumer rk, each with
 * metadata (rd_kafka_commit keeps it; the offset store would drop it).
 * keep(partition) filters positions of partitions no longer owned.
 * Returns 0, or -1 with err (a synchronous commit that failed). */
int tally_kafka_commit(rd_kafka_t *rk, const char *topic,
                       const tally_ckpt_pos *pos, int n,
                       tally_commit_meta_fn meta, int (*keep)(void *, int32_t),
                       void *opaque, int async, tally_err *err);

/* Commits the newest positions of the completed checkpoints at q's head
 * (see tally_kafka_commit); nothing when none completed. Returns 0 or -1. */
int tally_kafka_commit_done(rd_kafka_t *rk, tally_ckpt_queue *q,
                            const char *topic, tally_commit_meta_fn meta,
                            int (*keep)(void *, int32_t), void *opaque,
                            int async, tally_err *err);
