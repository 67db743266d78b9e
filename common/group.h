/* common/group.h -- a consumer-group member whose partitions are worked
 * on by worker threads. The main thread polls the consumer (rebalances,
 * errors); each assigned partition's queue is forwarded to the queue of
 * worker (partition % workers), so a partition is only ever handled by
 * one thread and workers share no mutable state on the hot path.
 *
 * On assignment the group asks the application for start offsets (the
 * assign callback may set them, e.g. from committed metadata or from
 * PostgreSQL), bumps each partition's generation and then assigns. A
 * worker compares a partition's generation with the one its state was
 * built for and rebuilds on change, so a partition that left and came
 * back never reuses stale state. The group owns the worker queues; the
 * consumer handle stays the caller's. */
#pragma once
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "common/err.h"

#define TALLY_GROUP_MAX_PARTITIONS 4096

typedef struct tally_group tally_group;

typedef struct tally_group_hooks {
        /* Main thread, before assign: set parts->elems[i].offset (and
         * anything else the app keeps per partition). Returns 0, or -1 to
         * stop the process (err says why). */
        int (*assign)(void *app, rd_kafka_topic_partition_list_t *parts,
                      tally_err *err);
        /* Main thread, after the partitions stopped (may be NULL). */
        void (*revoke)(void *app,
                       const rd_kafka_topic_partition_list_t *parts);
} tally_group_hooks;

/* Creates the consumer from conf (taken in any case; its opaque and
 * rebalance callback become the group's) and subscribes it to topic.
 * Returns NULL with err on failure. */
tally_group *tally_group_new(rd_kafka_conf_t *conf, const char *topic,
                             int workers, const tally_group_hooks *hooks,
                             void *app, tally_err *err);
/* Destroys the worker queues and the consumer (close it first). */
void tally_group_free(tally_group *g);
rd_kafka_t *tally_group_rk(tally_group *g);

rd_kafka_queue_t *tally_group_queue(tally_group *g, int worker);
/* Generation of a partition's current assignment; 0 = never assigned.
 * Odd = assigned now, even = not assigned. Any thread. */
uint32_t tally_group_gen(tally_group *g, int32_t partition);

/* Main thread: serves rebalances and logs consumer errors for at most
 * timeout_ms. Returns -1 (err) when an assign hook failed. */
int tally_group_poll(tally_group *g, int timeout_ms, tally_err *err);

/* For an assign hook: reads the group's committed offsets (with their
 * metadata) into parts; a partition without one gets
 * RD_KAFKA_OFFSET_BEGINNING and no metadata. Returns 0 or -1 (err). */
int tally_group_committed(tally_group *g, rd_kafka_topic_partition_list_t *parts,
                          tally_err *err);

/* Replaces RD_KAFKA_OFFSET_BEGINNING in parts by the partition's low
 * watermark, asked for here. Started at the logical BEGINNING, librdkafka
 * 2.0.2 looks the offset up itself once the fetcher starts, and when that
 * lookup races the assignment (an outdated reply) it retries only after
 * 500 ms: a stall in about one start of eight. Best effort: on an error
 * (logged) the rest stay at BEGINNING, which is correct, only slower. */
void tally_group_resolve_beginning(tally_group *g,
                                   rd_kafka_topic_partition_list_t *parts);

/* The fetcher nudge. librdkafka 2.0.2 stops fetching the partitions of a
 * queue that holds queued.min.messages and decides again only when that
 * broker's thread wakes (an op, socket I/O, or its 1 s maximum block), so
 * a bounded prefetch would run dry. Any request to a partition's leader
 * wakes it; a worker sends them (tally_group_wake_fetchers, below)
 * when its queue was near the limit and is down to half. This is the
 * worker's bookkeeping for that; one per worker, its thread only. */
typedef struct tally_nudge {
        int64_t limit;                  /* queued.min.messages; 0: off */
        int was_full;
        int64_t last_ms;                /* monotonic time of the last nudge */
} tally_nudge;

/* limit from the group consumer's effective queued.min.messages */
void tally_nudge_init(tally_nudge *n, tally_group *g);
/* near_full: the queue was at 3/4 of the limit (or the caller's own sign
 * of a full queue) at some point since the last call; len: its length
 * now. 1 when a nudge is due (then call tally_nudge_sent). */
int tally_nudge_due(tally_nudge *n, int near_full, int64_t len,
                    int64_t now_ms);
void tally_nudge_sent(tally_nudge *n, int64_t now_ms);

/* The nudge itself: a ListOffsets request for every partition of topic
 * that worker holds now, which librdkafka sends to all their leaders at
 * once (rd_kafka_offsets_for_times), so every broker thread that fetches
 * for the worker wakes (a request to one partition woke one broker only:
 * with several brokers the others slept up to a second). The offsets
 * that come back are not used. Any thread; blocks up to timeout_ms.
 * Returns how many partitions were asked. */
int tally_group_wake_fetchers(tally_group *g, const char *topic, int worker,
                              int timeout_ms);

/* Main thread: leaves the group (revokes everything) and closes rk. */
void tally_group_close(tally_group *g);
