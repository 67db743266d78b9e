/*
 * kafka_tool -- the benchmark's Kafka probes, on the same broker as the
 * daemons:
 *   kafka_tool watermarks BROKERS TOPIC
 *       one line per partition "p low high", then "total low_sum high_sum"
 *       (low 0 everywhere = retention dropped nothing)
 *   kafka_tool consume BROKERS TOPIC
 *       the primitive under a consuming stage: assign every partition
 *       from the beginning (no group), large prefetch, read until each
 *       partition reaches the high watermark seen at start; prints
 *       messages, bytes, seconds, msgs_per_s
 *   kafka_tool wait-committed BROKERS GROUP TOPIC TIMEOUT_S
 *       polls the group's committed offsets every 100 ms until their sum
 *       reaches the topic's high watermarks; prints seconds waited
 *       (exit 1 on timeout). Only reads offsets, never commits.
 * Single-threaded; everything is a benchmark tool, errors end it (exit 1).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

static rd_kafka_t *client(const char *brokers, const char *group,
                          int big_prefetch)
{
        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;

        rd_kafka_conf_set(conf, "bootstrap.servers", brokers, NULL, 0);
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", NULL, 0);
        rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", NULL, 0);
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        if (group)
                rd_kafka_conf_set(conf, "group.id", group, NULL, 0);
        if (big_prefetch) {
                rd_kafka_conf_set(conf, "queued.min.messages", "1000000",
                                  NULL, 0);
                rd_kafka_conf_set(conf, "queued.max.messages.kbytes",
                                  "2097151", NULL, 0);
                rd_kafka_conf_set(conf, "fetch.wait.max.ms", "10", NULL, 0);
        }
        rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "kafka_tool: %s\n", errstr);
                exit(1);
        }
        return rk;
}

/* Partition count of topic, from an all-topics metadata request (naming
 * an unknown topic would create it on the devbroker). */
static int partitions(rd_kafka_t *rk, const char *topic)
{
        const struct rd_kafka_metadata *md;
        int i, n = -1;

        if (rd_kafka_metadata(rk, 1, NULL, &md, 10000)) {
                fprintf(stderr, "kafka_tool: metadata failed\n");
                exit(1);
        }
        for (i = 0; i < md->topic_cnt; i++)
                if (!strcmp(md->topics[i].topic, topic))
                        n = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
        if (n < 0) {
                fprintf(stderr, "kafka_tool: no topic %s\n", topic);
                exit(1);
        }
        return n;
}

static void marks(rd_kafka_t *rk, const char *topic, int p, int64_t *lo,
                  int64_t *hi)
{
        if (rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi, 10000)) {
                fprintf(stderr, "kafka_tool: watermarks of %s/%d failed\n",
                        topic, p);
                exit(1);
        }
}

static int cmd_watermarks(const char *brokers, const char *topic)
{
        rd_kafka_t *rk = client(brokers, NULL, 0);
        int n = partitions(rk, topic), p;
        int64_t lo, hi, slo = 0, shi = 0;

        for (p = 0; p < n; p++) {
                marks(rk, topic, p, &lo, &hi);
                printf("%d %lld %lld\n", p, (long long)lo, (long long)hi);
                slo += lo;
                shi += hi;
        }
        printf("total %lld %lld\n", (long long)slo, (long long)shi);
        rd_kafka_destroy(rk);
        return 0;
}

static int cmd_consume(const char *brokers, const char *topic)
{
        char group[64];
        rd_kafka_t *rk;
        int n, p, left = 0;
        rd_kafka_topic_partition_list_t *tp;
        int64_t *hi, lo;
        long long msgs = 0, bytes = 0;
        double t0, t1;

        /* a consumer queue needs a group id; this one is only assigned,
         * never subscribed, and never commits */
        snprintf(group, sizeof(group), "bench-consume-%ld", (long)getpid());
        rk = client(brokers, group, 1);
        n = partitions(rk, topic);
        tp = rd_kafka_topic_partition_list_new(n);
        hi = calloc(n, sizeof(*hi));
        for (p = 0; p < n; p++) {
                marks(rk, topic, p, &lo, &hi[p]);
                if (hi[p] > lo)
                        left++;
                /* the log start as a number, as the daemons start: at the
                 * logical BEGINNING librdkafka 2.0.2 sometimes retries
                 * its own offset lookup only after 500 ms */
                rd_kafka_topic_partition_list_add(tp, topic, p)->offset = lo;
        }
        rd_kafka_poll_set_consumer(rk);
        t0 = now_s();
        rd_kafka_assign(rk, tp);
        while (left > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

                if (!m)
                        continue;
                if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        fprintf(stderr, "kafka_tool: %s\n", rd_kafka_message_errstr(m));
                if (!m->err) {
                        msgs++;
                        bytes += m->len;
                        if (m->offset + 1 == hi[m->partition])
                                left--;
                }
                rd_kafka_message_destroy(m);
        }
        t1 = now_s();
        printf("messages=%lld bytes=%lld seconds=%.4f msgs_per_s=%.0f\n",
               msgs, bytes, t1 - t0, msgs / (t1 - t0));
        rd_kafka_topic_partition_list_destroy(tp);
        free(hi);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return 0;
}

/* The latest message timestamp (CreateTime: when the producer made it) in
 * the topic: the last message of every partition. */
static int cmd_last_timestamp(const char *brokers, const char *topic)
{
        char group[64];
        rd_kafka_t *rk;
        int n, p, left = 0;
        rd_kafka_topic_partition_list_t *tp;
        int64_t lo, hi, last = -1;

        snprintf(group, sizeof(group), "bench-last-%ld", (long)getpid());
        rk = client(brokers, group, 1);
        n = partitions(rk, topic);
        tp = rd_kafka_topic_partition_list_new(n);
        for (p = 0; p < n; p++) {
                marks(rk, topic, p, &lo, &hi);
                if (hi > lo) {
                        rd_kafka_topic_partition_list_add(tp, topic, p)->offset =
                                hi - 1;
                        left++;
                }
        }
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_assign(rk, tp);
        while (left > 0) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);

                if (!m)
                        continue;
                if (!m->err) {
                        int64_t ts = rd_kafka_message_timestamp(m, NULL);

                        if (ts > last)
                                last = ts;
                        left--;
                } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        fprintf(stderr, "kafka_tool: %s\n",
                                rd_kafka_message_errstr(m));
                }
                rd_kafka_message_destroy(m);
        }
        printf("timestamp_ms=%lld\n", (long long)last);
        rd_kafka_topic_partition_list_destroy(tp);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return 0;
}

static int cmd_wait_committed(const char *brokers, const char *group,
                              const char *topic, double timeout)
{
        rd_kafka_t *rk = client(brokers, group, 0);
        int n = partitions(rk, topic), p, i;
        rd_kafka_topic_partition_list_t *tp =
                rd_kafka_topic_partition_list_new(n);
        int64_t lo, hi, target = 0;
        double t0 = now_s();

        for (p = 0; p < n; p++) {
                marks(rk, topic, p, &lo, &hi);
                target += hi;
                rd_kafka_topic_partition_list_add(tp, topic, p);
        }
        for (;;) {
                int64_t sum = 0;

                if (!rd_kafka_committed(rk, tp, 5000))
                        for (i = 0; i < tp->cnt; i++)
                                if (tp->elems[i].offset > 0)
                                        sum += tp->elems[i].offset;
                if (sum >= target) {
                        struct timespec wall;

                        clock_gettime(CLOCK_REALTIME, &wall);
                        printf("seconds=%.3f committed=%lld end_epoch=%.3f\n",
                               now_s() - t0, (long long)sum,
                               wall.tv_sec + wall.tv_nsec / 1e9);
                        break;
                }
                if (now_s() - t0 > timeout) {
                        printf("timeout committed=%lld target=%lld\n",
                               (long long)sum, (long long)target);
                        return 1;
                }
                fflush(stdout);
                nanosleep(&(struct timespec){0, 10000000}, NULL);
        }
        rd_kafka_topic_partition_list_destroy(tp);
        rd_kafka_destroy(rk);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 4 && !strcmp(argv[1], "watermarks"))
                return cmd_watermarks(argv[2], argv[3]);
        if (argc == 4 && !strcmp(argv[1], "consume"))
                return cmd_consume(argv[2], argv[3]);
        if (argc == 4 && !strcmp(argv[1], "last-timestamp"))
                return cmd_last_timestamp(argv[2], argv[3]);
        if (argc == 6 && !strcmp(argv[1], "wait-committed"))
                return cmd_wait_committed(argv[2], argv[3], argv[4],
                                          atof(argv[5]));
        fprintf(stderr, "usage: kafka_tool watermarks|consume|last-timestamp BROKERS TOPIC\n"
                        "       kafka_tool wait-committed BROKERS GROUP TOPIC TIMEOUT_S\n");
        return 2;
}
