#include "common/group.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/metrics.h"

struct tally_group {
        rd_kafka_t *rk;
        char *topic;
        int nworkers;
        rd_kafka_queue_t **queues;
        tally_group_hooks hooks;
        void *app;
        atomic_uint gen[TALLY_GROUP_MAX_PARTITIONS];
        int failed;
        tally_err fail_err;
};

static void group_set_gen(tally_group *g,
                          const rd_kafka_topic_partition_list_t *parts,
                          int assigned)
{
        for (int i = 0; i < parts->cnt; i++) {
                int32_t p = parts->elems[i].partition;

                if (p < 0 || p >= TALLY_GROUP_MAX_PARTITIONS)
                        continue;
                unsigned v = atomic_load(&g->gen[p]);
                /* odd while assigned */
                if ((v & 1) != (unsigned)assigned)
                        atomic_store(&g->gen[p], v + 1);
        }
}

static void group_forward(tally_group *g,
                          const rd_kafka_topic_partition_list_t *parts,
                          int on)
{
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                rd_kafka_queue_t *pq = rd_kafka_queue_get_partition(
                        g->rk, tp->topic, tp->partition);

                if (!pq)
                        continue;
                rd_kafka_queue_forward(pq, on ? g->queues[tp->partition %
                                                          g->nworkers]
                                              : NULL);
                rd_kafka_queue_destroy(pq);
        }
}

static void group_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t e,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
        tally_group *g = opaque;
        /* NULL once the member has left the group: consumer_close's final
         * revoke after the group rebalanced under it (a copy stopping
         * while the others leave) comes with no protocol, and is eager */
        const char *proto = rd_kafka_rebalance_protocol(rk);
        int cooperative = proto && !strcmp(proto, "COOPERATIVE");

        if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                for (int i = 0; i < parts->cnt; i++) {
                        if (parts->elems[i].partition >= TALLY_GROUP_MAX_PARTITIONS) {
                                tally_err_set(&g->fail_err, "bad_topic",
                                              "partition %d over the supported %d",
                                              parts->elems[i].partition,
                                              TALLY_GROUP_MAX_PARTITIONS);
                                g->failed = 1;
                                return;
                        }
                }
                if (g->hooks.assign &&
                    g->hooks.assign(g->app, parts, &g->fail_err)) {
                        g->failed = 1;
                        return;
                }
                group_set_gen(g, parts, 1);
                group_forward(g, parts, 1);
                if (cooperative)
                        rd_kafka_error_destroy(rd_kafka_incremental_assign(rk, parts));
                else
                        rd_kafka_assign(rk, parts);
                tally_log_info("partitions_assigned", "topic=%s count=%d",
                               g->topic, parts->cnt);
        } else {
                if (cooperative)
                        rd_kafka_error_destroy(rd_kafka_incremental_unassign(rk, parts));
                else
                        rd_kafka_assign(rk, NULL);
                group_set_gen(g, parts, 0);
                group_forward(g, parts, 0);
                if (g->hooks.revoke)
                        g->hooks.revoke(g->app, parts);
                tally_log_info("partitions_revoked", "topic=%s count=%d",
                               g->topic, parts->cnt);
        }
}

tally_group *tally_group_new(rd_kafka_conf_t *conf, const char *topic,
                             int workers, const tally_group_hooks *hooks,
                             void *app, tally_err *err)
{
        tally_group *g = calloc(1, sizeof(*g));
        rd_kafka_topic_partition_list_t *sub;
        rd_kafka_resp_err_t e;
        rd_kafka_t *rk;

        if (!g)
                abort();
        rd_kafka_conf_set_opaque(conf, g);
        rd_kafka_conf_set_rebalance_cb(conf, group_rebalance_cb);
        rk = tally_kafka_new(RD_KAFKA_CONSUMER, conf, err);
        if (!rk) {
                free(g);
                return NULL;
        }
        g->rk = rk;
        g->topic = strdup(topic);
        g->nworkers = workers;
        g->hooks = *hooks;
        g->app = app;
        g->queues = calloc((size_t)workers, sizeof(*g->queues));
        if (!g->topic || !g->queues)
                abort();
        for (int i = 0; i < workers; i++)
                g->queues[i] = rd_kafka_queue_new(rk);
        rd_kafka_poll_set_consumer(rk);
        sub = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
        e = rd_kafka_subscribe(rk, sub);
        rd_kafka_topic_partition_list_destroy(sub);
        if (e) {
                tally_err_set(err, "kafka", "subscribe %s: %s", topic,
                              rd_kafka_err2str(e));
                tally_group_free(g);
                return NULL;
        }
        return g;
}

rd_kafka_t *tally_group_rk(tally_group *g)
{
        return g->rk;
}

rd_kafka_queue_t *tally_group_queue(tally_group *g, int worker)
{
        return g->queues[worker];
}

uint32_t tally_group_gen(tally_group *g, int32_t partition)
{
        if (partition < 0 || partition >= TALLY_GROUP_MAX_PARTITIONS)
                return 0;
        return atomic_load(&g->gen[partition]);
}

int tally_group_poll(tally_group *g, int timeout_ms, tally_err *err)
{
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(g->rk, timeout_ms);

        if (rkm) {
                if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
                        atomic_fetch_add(&tally_metric_position_lost, 1);
                        tally_log_error("consumer_position_lost",
                                "topic=%s partition=%d error=\"%s\" note=\"data was removed before it was read; partition stopped\"",
                                rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?",
                                rkm->partition, rd_kafka_message_errstr(rkm));
                } else if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        tally_log_warn("consumer_error", "error=\"%s\"",
                                       rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
        }
        if (g->failed) {
                if (err)
                        *err = g->fail_err;
                return -1;
        }
        return 0;
}

int tally_group_committed(tally_group *g, rd_kafka_topic_partition_list_t *parts,
                          tally_err *err)
{
        rd_kafka_resp_err_t e;

        for (int i = 0; i < parts->cnt; i++)
                parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        e = rd_kafka_committed(g->rk, parts, 30000);
        if (e)
                return tally_err_set(err, "kafka", "reading committed offsets: %s",
                                     rd_kafka_err2str(e));
        for (int i = 0; i < parts->cnt; i++)
                if (parts->elems[i].offset < 0)
                        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        return 0;
}

void tally_group_resolve_beginning(tally_group *g,
                                   rd_kafka_topic_partition_list_t *parts)
{
        for (int i = 0; i < parts->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &parts->elems[i];
                int64_t lo, hi;
                rd_kafka_resp_err_t e;

                if (tp->offset != RD_KAFKA_OFFSET_BEGINNING)
                        continue;
                e = rd_kafka_query_watermark_offsets(g->rk, tp->topic,
                                                     tp->partition, &lo, &hi,
                                                     2000);
                if (e || lo < 0) {
                        tally_log_warn("start_offset_unknown",
                                       "topic=%s partition=%d error=\"%s\"",
                                       tp->topic, tp->partition,
                                       e ? rd_kafka_err2str(e) :
                                           "negative offset");
                        return;
                }
                tp->offset = lo;
        }
}

void tally_nudge_init(tally_nudge *n, tally_group *g)
{
        char val[32];
        size_t sz = sizeof(val);

        memset(n, 0, sizeof(*n));
        if (rd_kafka_conf_get(rd_kafka_conf(g->rk), "queued.min.messages",
                              val, &sz) == RD_KAFKA_CONF_OK)
                n->limit = strtoll(val, NULL, 10);
        if (n->limit < 0)
                n->limit = 0;
}

int tally_nudge_due(tally_nudge *n, int near_full, int64_t len,
                    int64_t now_ms)
{
        if (n->limit <= 0)
                return 0;
        if (near_full)
                n->was_full = 1;
        /* at most one nudge per 5 ms */
        return n->was_full && len * 2 <= n->limit && now_ms - n->last_ms >= 5;
}

void tally_nudge_sent(tally_nudge *n, int64_t now_ms)
{
        n->was_full = 0;
        n->last_ms = now_ms;
}

int tally_group_wake_fetchers(tally_group *g, const char *topic, int worker,
                              int timeout_ms)
{
        rd_kafka_topic_partition_list_t *parts =
                rd_kafka_topic_partition_list_new(16);
        int n;

        for (int32_t p = worker; p < TALLY_GROUP_MAX_PARTITIONS;
             p += g->nworkers)
                if (atomic_load(&g->gen[p]) & 1)
                        rd_kafka_topic_partition_list_add(parts, topic, p)
                                ->offset = RD_KAFKA_OFFSET_END;
        n = parts->cnt;
        if (n)
                (void)rd_kafka_offsets_for_times(g->rk, parts, timeout_ms);
        rd_kafka_topic_partition_list_destroy(parts);
        return n;
}

void tally_group_close(tally_group *g)
{
        rd_kafka_consumer_close(g->rk);
}

void tally_group_free(tally_group *g)
{
        if (!g)
                return;
        for (int i = 0; i < g->nworkers; i++)
                if (g->queues[i])
                        rd_kafka_queue_destroy(g->queues[i]);
        free(g->queues);
        free(g->topic);
        if (g->rk)
                rd_kafka_destroy(g->rk);
        free(g);
}
