/* tools/gen/main.c -- tally-gen: deterministic warehouse device simulator
 * and load generator for tally.raw (docs/gen.md). Reads the options,
 * walks the model's reports in production order and writes each message
 * to Kafka or stdout, feeding the expected-result simulation on the way. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "common/kafka.h"
#include "common/log.h"
#include "common/signals.h"
#include "common/timefmt.h"
#include "tools/gen/gen.h"

static const tally_opt gen_opts[] = {
        TALLY_COMMON_OPTS(gen_cfg),
        {"seed", TALLY_OPT_INT, "1", offsetof(gen_cfg, seed),
         "random seed: same options and seed give the same messages",
         0, INT64_MAX, 0},
        {"sites", TALLY_OPT_INT, "20", offsetof(gen_cfg, sites),
         "number of sites (device i is in site i % sites)", 1, 100000, 0},
        {"devices", TALLY_OPT_INT, "10000", offsetof(gen_cfg, devices),
         "number of devices in all", 1, 10000000, 0},
        {"metrics", TALLY_OPT_INT, "4", offsetof(gen_cfg, metrics),
         "readings per report: temperature_c, humidity_pct, power_w, "
         "door_open (the first N)", 1, GEN_METRICS_MAX, 0},
        {"rate-per-device", TALLY_OPT_STR, "1",
         offsetof(gen_cfg, rate_per_device),
         "reports per device per second of event time (e.g. 0.1)", 0, 0, 0},
        {"start", TALLY_OPT_STR, "2026-11-24T00:00:00Z",
         offsetof(gen_cfg, start),
         "event time of the first report (RFC 3339), or now", 0, 0, 0},
        {"duration", TALLY_OPT_DURATION, "60s",
         offsetof(gen_cfg, duration_ms),
         "event time covered (ignored when --reports is set)",
         1, 3153600000000LL, 0},
        {"reports", TALLY_OPT_INT, "0", offsetof(gen_cfg, reports),
         "total reports over all devices (0 = from --duration)",
         0, INT64_MAX, 0},
        {"jitter", TALLY_OPT_DURATION, "2s", offsetof(gen_cfg, jitter_ms),
         "disorder: ts = nominal time - random [0, jitter]", 0, 3600000, 0},
        {"late-share", TALLY_OPT_STR, "0", offsetof(gen_cfg, late_share),
         "share of reports made too late (ts = nominal - (W+d+L+10s))",
         0, 0, 0},
        {"lateish-share", TALLY_OPT_STR, "0",
         offsetof(gen_cfg, lateish_share),
         "share of reports made late but within the allowed lateness",
         0, 0, 0},
        {"malformed-share", TALLY_OPT_STR, "0",
         offsetof(gen_cfg, malformed_share),
         "share of messages replaced by broken ones", 0, 0, 0},
        {"shapes", TALLY_OPT_STR, "report", offsetof(gen_cfg, shapes),
         "report (one report per message) or all (single readings, "
         "reports, arrays, NDJSON, gzip)", 0, 0, 0},
        {"batch", TALLY_OPT_INT, "10", offsetof(gen_cfg, batch),
         "reports per array or NDJSON message (--shapes all)", 1, 1000, 0},
        {"out", TALLY_OPT_STR, "kafka", offsetof(gen_cfg, out),
         "kafka, or stdout (key<TAB>message lines)", 0, 0, 0},
        {"rate", TALLY_OPT_INT, "0", offsetof(gen_cfg, rate),
         "messages per second at most (0 = full speed); with --start now, "
         "also never ahead of the wall clock", 0, INT64_MAX, 0},
        {"expect", TALLY_OPT_STR, "", offsetof(gen_cfg, expect),
         "write the exact expected rollups (TSV) to this file", 0, 0, 0},
        {"expect-dlq", TALLY_OPT_STR, "", offsetof(gen_cfg, expect_dlq),
         "write the expected dead-letter counts (TSV) to this file",
         0, 0, 0},
        {"partitions", TALLY_OPT_INT, "16", offsetof(gen_cfg, partitions),
         "raw partitions (stdout mode; kafka mode reads the topic)",
         1, 100000, 0},
        {"max-past", TALLY_OPT_DURATION, "7d", offsetof(gen_cfg, max_past_ms),
         "ingest's --max-past (for --expect)", 1000, 0x7fffffffffffLL, 0},
        {"max-future", TALLY_OPT_DURATION, "5m",
         offsetof(gen_cfg, max_future_ms),
         "ingest's --max-future (for --expect)", 0, 86400000, 0},
};
#define GEN_NOPTS (sizeof(gen_opts) / sizeof(gen_opts[0]))

static const char gen_about[] =
        "Deterministic warehouse device simulator: writes device reports to "
        "tally.raw\n(or stdout) and, on request, the exact rollups and "
        "dead-letter counts the\npipeline must produce from them.";

typedef struct gen_stats {
        int64_t messages, reports, points, bytes;
        int64_t delivered, failed;
        int64_t max_behind_ms;          /* --start now: wall - event time */
        int live;                       /* --start now */
        char first_error[256];
} gen_stats;

static void gen_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque)
{
        gen_stats *st = opaque;

        (void)rk;
        if (rkm->err) {
                if (st->failed++ == 0)
                        snprintf(st->first_error, sizeof(st->first_error),
                                 "%s [%" PRId32 "]: %s",
                                 rd_kafka_topic_name(rkm->rkt),
                                 rkm->partition, rd_kafka_err2str(rkm->err));
        } else {
                st->delivered++;
        }
}

/* Producer with the tool's defaults, which -X / TALLY_KAFKA_* still beat:
 * lz4, as the daemons use, at high-compression level 3 (about 25 B per
 * report: the standard workload fits the devbroker's 5 MiB per partition,
 * and it is fast enough to produce live). */
static rd_kafka_t *gen_producer_new(const gen_cfg *cfg, gen_stats *st,
                                    tally_err *err)
{
        static const char *const defaults[][2] = {
                {"compression.codec", "lz4"},
                {"compression.level", "3"},
                {"linger.ms", "20"},
                {"batch.size", "1000000"},
                {"enable.idempotence", "true"},
                {"message.timeout.ms", "0"},
        };
        const size_t ndef = sizeof(defaults) / sizeof(defaults[0]);
        tally_common_cfg c = cfg->common;
        tally_kv *kv = calloc(ndef + c.kafka.n, sizeof(tally_kv));
        rd_kafka_conf_t *conf;

        if (!kv)
                abort();
        for (size_t i = 0; i < ndef; i++) {
                kv[i].key = (char *)defaults[i][0];
                kv[i].val = (char *)defaults[i][1];
        }
        for (size_t i = 0; i < c.kafka.n; i++)
                kv[ndef + i] = c.kafka.kv[i];
        c.kafka.kv = kv;
        c.kafka.n += ndef;
        conf = tally_kafka_conf_new(&c, TALLY_KAFKA_PRODUCER, err);
        free(kv);
        if (!conf)
                return NULL;
        rd_kafka_conf_set_dr_msg_cb(conf, gen_dr_cb);
        rd_kafka_conf_set_opaque(conf, st);
        return tally_kafka_new(RD_KAFKA_PRODUCER, conf, err);
}

/* Partition count of the raw topic, and its handle. First make sure the
 * topic exists with an all-topics request: naming an unknown topic in a
 * metadata request (which a producer's rd_kafka_topic_new does at once)
 * would create it on some brokers. Then ask for that topic alone. */
static int gen_topic_partitions(rd_kafka_t *rk, const char *topic,
                                rd_kafka_topic_t **rktp, int *count,
                                tally_err *err)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t e;
        int all = 0;

        if (tally_kafka_partitions(rk, topic, &all, 30000, err) != 0)
                return -1;
        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt)
                return tally_err_set(err, "kafka", "topic %s: %s", topic,
                                     rd_kafka_err2str(rd_kafka_last_error()));
        e = rd_kafka_metadata(rk, 0, rkt, &md, 30000);
        if (e) {
                rd_kafka_topic_destroy(rkt);
                return tally_err_set(err, "kafka", "metadata for %s: %s",
                                     topic, rd_kafka_err2str(e));
        }
        if (md->topic_cnt != 1 || md->topics[0].err ||
            md->topics[0].partition_cnt != all) {
                tally_err_set(err, "kafka", "metadata for %s disagrees "
                              "(%d partitions, listing said %d)", topic,
                              md->topic_cnt ? md->topics[0].partition_cnt : -1,
                              all);
                rd_kafka_metadata_destroy(md);
                rd_kafka_topic_destroy(rkt);
                return -1;
        }
        rd_kafka_metadata_destroy(md);
        *count = all;
        *rktp = rkt;
        return 0;
}

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

        while (nanosleep(&ts, &ts) != 0 && errno == EINTR &&
               !tally_stop_requested())
                ;
}

static void gen_log_counts(const char *msg, const gen_stats *st,
                           const gen_expect *ex, int64_t elapsed_ms)
{
        const int64_t *dlq = gen_expect_dlq(ex);
        double secs = elapsed_ms > 0 ? elapsed_ms / 1000.0 : 0.001;
        char rej[512];
        char behind[48] = "";
        size_t n = 0;

        if (st->live)
                snprintf(behind, sizeof(behind), " max_behind_ms=%lld",
                         (long long)st->max_behind_ms);
        rej[0] = '\0';
        for (int r = 1; r < GEN_R_COUNT; r++) {
                if (r == GEN_R_TOO_LATE || !dlq[r])
                        continue;
                n += (size_t)snprintf(rej + n, sizeof(rej) - n,
                                      " rejected_%s=%lld", gen_reason_names[r],
                                      (long long)dlq[r]);
                if (n >= sizeof(rej))
                        break;
        }
        tally_log_info(msg, "messages=%lld reports=%lld points=%lld "
                       "bytes=%lld accepted=%lld too_late=%lld%s "
                       "elapsed_ms=%lld msgs_per_s=%.0f reports_per_s=%.0f%s",
                       (long long)st->messages, (long long)st->reports,
                       (long long)st->points, (long long)st->bytes,
                       (long long)gen_expect_accepted(ex),
                       (long long)dlq[GEN_R_TOO_LATE], rej,
                       (long long)elapsed_ms, st->messages / secs,
                       st->reports / secs, behind);
}

/* key<TAB>payload: JSON as is; base64 after "gz:" for bytes that start
 * with the gzip magic, after "b64:" for other bytes holding a newline */
static void gen_stdout_line(const gen_msg *msg, tally_buf *out)
{
        tally_buf_append(out, msg->key, msg->key_len);
        tally_buf_putc(out, '\t');
        if (msg->binary) {
                int gz = msg->body.len >= 2 && msg->body.data[0] == 0x1f &&
                         msg->body.data[1] == 0x8b;

                if (gz)
                        tally_buf_append(out, "gz:", 3);
                else
                        tally_buf_append(out, "b64:", 4);
                gen_base64(msg->body.data, msg->body.len, out);
        } else {
                tally_buf_append(out, msg->body.data, msg->body.len);
        }
        tally_buf_putc(out, '\n');
}

int main(int argc, char **argv)
{
        gen_cfg cfg;
        gen_model model;
        gen_msg msg;
        gen_stats st;
        gen_expect *ex = NULL;
        tally_buf out = TALLY_BUF_INIT;
        tally_err err;
        enum tally_log_level lvl;
        rd_kafka_t *rk = NULL;
        rd_kafka_topic_t *rkt = NULL;
        char errbuf[512];
        int to_kafka, start_now, rc, exit_code = 1, model_ok = 0;
        int32_t partitions;
        int64_t start_ms, t0, next_log, paced_from;

        memset(&cfg, 0, sizeof(cfg));
        memset(&msg, 0, sizeof(msg));
        memset(&st, 0, sizeof(st));
        tally_err_clear(&err);
        rc = tally_config_parse("tally-gen", gen_about, gen_opts, GEN_NOPTS,
                                &cfg, &cfg.common.kafka, argc, argv, &err);
        if (rc == 1) {
                tally_config_free(gen_opts, GEN_NOPTS, &cfg,
                                  &cfg.common.kafka);
                return 0;
        }
        if (rc < 0 || tally_log_level_parse(cfg.common.log_level, &lvl)) {
                fprintf(stderr, "tally-gen: %s\n", rc < 0 ? err.msg :
                        "--log-level: expected debug, info, warn or error");
                tally_config_free(gen_opts, GEN_NOPTS, &cfg,
                                  &cfg.common.kafka);
                return 2;
        }
        tally_log_init("gen", lvl);
        tally_signals_install();

        if (!strcmp(cfg.out, "kafka")) {
                to_kafka = 1;
        } else if (!strcmp(cfg.out, "stdout")) {
                to_kafka = 0;
        } else {
                fprintf(stderr, "tally-gen: --out: '%s' is not kafka or "
                        "stdout\n", cfg.out);
                exit_code = 2;
                goto out;
        }
        start_now = !strcmp(cfg.start, "now");
        if (start_now) {
                start_ms = tally_now_wall_ms();
        } else if (tally_time_parse(cfg.start, strlen(cfg.start),
                                    &start_ms) != 0) {
                fprintf(stderr, "tally-gen: --start: '%s' is not RFC 3339 "
                        "or now\n", cfg.start);
                exit_code = 2;
                goto out;
        }

        partitions = (int32_t)cfg.partitions;
        if (to_kafka) {
                int count = 0;

                rk = gen_producer_new(&cfg, &st, &err);
                if (!rk)
                        goto kafka_fail;
                if (gen_topic_partitions(rk, cfg.common.topic_raw, &rkt,
                                         &count, &err) != 0)
                        goto kafka_fail;
                partitions = count;
        }
        if (gen_model_init(&model, &cfg, start_ms, partitions, errbuf,
                           sizeof(errbuf)) != 0) {
                fprintf(stderr, "tally-gen: %s\n", errbuf);
                exit_code = 2;
                goto out;
        }
        model_ok = 1;
        st.live = start_now;
        if (start_now && cfg.rate > 0 && !model.all_shapes &&
            cfg.rate * model.interval_ms < model.devices * 1000)
                tally_log_warn("rate_below_model", "rate=%lld model_reports_per_s"
                               "=%lld interval_ms=%lld: event time falls "
                               "behind the wall clock",
                               (long long)cfg.rate,
                               (long long)(model.devices * 1000 /
                                           model.interval_ms),
                               (long long)model.interval_ms);
        ex = gen_expect_new(&model, &cfg.common.windows,
                            cfg.common.disorder_ms, cfg.common.lateness_ms,
                            cfg.max_past_ms, cfg.max_future_ms,
                            cfg.expect[0] != '\0');
        if (!ex) {
                fprintf(stderr, "tally-gen: out of memory\n");
                goto out;
        }
        tally_log_info("started", "out=%s topic=%s partitions=%d devices=%lld "
                       "reports=%lld interval_ms=%lld start_ms=%lld seed=%lld",
                       cfg.out, cfg.common.topic_raw, (int)partitions,
                       (long long)model.devices,
                       (long long)model.total_reports,
                       (long long)model.interval_ms, (long long)start_ms,
                       (long long)cfg.seed);

        t0 = tally_now_mono_ms();
        next_log = t0 + 1000;
        paced_from = t0;
        for (int64_t g = 0; g < model.total_reports; g++) {
                int due = gen_model_due(&model, g);

                if (tally_stop_requested())
                        break;
                for (int j = 0; j < due; j++) {
                        gen_model_message(&model, g, j, &msg);
                        gen_expect_add(ex, &msg);
                        st.messages++;
                        st.reports += msg.reports;
                        st.points += (int64_t)msg.npoints;
                        st.bytes += (int64_t)msg.body.len;
                        if (!to_kafka) {
                                gen_stdout_line(&msg, &out);
                                if (out.len >= (1u << 20)) {
                                        if (fwrite(out.data, 1, out.len,
                                                   stdout) != out.len)
                                                goto write_fail;
                                        tally_buf_reset(&out);
                                }
                                continue;
                        }
                        for (;;) {
                                rd_kafka_resp_err_t e = rd_kafka_producev(
                                        rk, RD_KAFKA_V_RKT(rkt),
                                        RD_KAFKA_V_PARTITION(msg.partition),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(msg.key, msg.key_len),
                                        RD_KAFKA_V_VALUE(msg.body.data,
                                                         msg.body.len),
                                        RD_KAFKA_V_TIMESTAMP(msg.rec_ts_ms),
                                        RD_KAFKA_V_END);

                                if (!e)
                                        break;
                                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                                        tally_err_set(&err, "kafka",
                                                      "produce: %s",
                                                      rd_kafka_err2str(e));
                                        goto kafka_fail;
                                }
                                /* full queue: serve delivery reports */
                                rd_kafka_poll(rk, 10);
                        }
                        if ((st.messages & 1023) == 0)
                                rd_kafka_poll(rk, 0);
                        if (st.failed) {
                                tally_err_set(&err, "delivery", "%s",
                                              st.first_error);
                                goto kafka_fail;
                        }
                }
                if ((g & 255) == 0 || cfg.rate > 0) {
                        int64_t now = tally_now_mono_ms();

                        if (now >= next_log) {
                                gen_log_counts("progress", &st, ex, now - t0);
                                next_log = now + 1000;
                        }
                        if (cfg.rate > 0) {
                                int64_t due_at = paced_from +
                                                 st.messages * 1000 / cfg.rate;

                                if (due_at > now)
                                        sleep_ms(due_at - now);
                                if (start_now) {
                                        /* never ahead of the wall clock;
                                         * how far behind it is logged */
                                        int64_t wall = tally_now_wall_ms(),
                                                ahead = gen_model_nominal(
                                                &model, g + 1 <
                                                model.total_reports ? g + 1 : g)
                                                - wall,
                                                behind = wall -
                                                gen_model_nominal(&model, g);

                                        if (behind > st.max_behind_ms)
                                                st.max_behind_ms = behind;
                                        if (ahead > 0)
                                                sleep_ms(ahead);
                                }
                        }
                }
        }
        if (!to_kafka) {
                if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
                        goto write_fail;
                if (fflush(stdout) != 0)
                        goto write_fail;
        } else {
                /* never drop: wait for every delivery report */
                while (rd_kafka_outq_len(rk) > 0) {
                        rd_kafka_flush(rk, 1000);
                        if (rd_kafka_outq_len(rk) > 0)
                                tally_log_info("flushing", "queued=%d",
                                               rd_kafka_outq_len(rk));
                }
                if (st.failed) {
                        tally_err_set(&err, "delivery", "%lld messages not "
                                      "delivered, first: %s",
                                      (long long)st.failed, st.first_error);
                        goto kafka_fail;
                }
        }
        gen_log_counts("summary", &st, ex, tally_now_mono_ms() - t0);
        if (tally_stop_requested())
                tally_log_warn("interrupted", "note=\"expected files cover "
                               "the messages written\" messages=%lld",
                               (long long)st.messages);
        if (gen_expect_write(ex, cfg.expect[0] ? cfg.expect : NULL,
                             cfg.expect_dlq[0] ? cfg.expect_dlq : NULL,
                             errbuf, sizeof(errbuf)) != 0) {
                tally_log_error("expect_failed", "error=\"%s\"", errbuf);
                goto out;
        }
        exit_code = 0;
        goto out;

write_fail:
        tally_log_error("write_failed", "error=\"%s\"", strerror(errno));
        goto out;
kafka_fail:
        tally_log_error("kafka_failed", "reason=%s error=\"%s\"", err.reason,
                        err.msg);
out:
        if (rk && exit_code != 0)     /* nothing more will be delivered */
                rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE |
                                   RD_KAFKA_PURGE_F_INFLIGHT);
        if (rkt)
                rd_kafka_topic_destroy(rkt);
        if (rk)
                rd_kafka_destroy(rk);
        gen_expect_free(ex);
        gen_msg_free(&msg);
        if (model_ok)
                gen_model_free(&model);
        tally_buf_free(&out);
        tally_config_free(gen_opts, GEN_NOPTS, &cfg, &cfg.common.kafka);
        return exit_code;
}
