/* tally-decode: prints tally.clean records (docs/clean-format.md) as JSON
 * lines. Reads record files named on the command line, or, with --kafka,
 * every record of the clean topic from the beginning to the current end
 * (assigned directly: no consumer group, nothing committed). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clean_codec.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/timefmt.h"

typedef struct decode_cfg {
        tally_common_cfg common;
        int kafka;
        char *file;
} decode_cfg;

static const tally_opt decode_opts[] = {
        TALLY_COMMON_OPTS(decode_cfg),
        {"kafka", TALLY_OPT_BOOL, "false", offsetof(decode_cfg, kafka),
         "read the whole clean topic from the brokers", 0, 0, 0},
        {"file", TALLY_OPT_STR, "", offsetof(decode_cfg, file),
         "a file holding one record ('-' = stdin)", 0, 0, 0},
};
#define NOPTS (sizeof(decode_opts) / sizeof(decode_opts[0]))

static void json_str(FILE *out, const char *s, size_t n)
{
        fputc('"', out);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '"' || c == '\\')
                        fprintf(out, "\\%c", c);
                else if (c < 0x20)
                        fprintf(out, "\\u%04x", c);
                else
                        fputc(c, out);
        }
        fputc('"', out);
}

/* Prints one record; returns 0 or -1 (err) for a corrupt one. */
static int decode_print(FILE *out, const void *buf, size_t len,
                        int32_t partition, int64_t offset, tally_err *err)
{
        tally_clean_reader rd;
        tally_reading r;
        tally_clean_origin o;
        char ts[32];
        int rc;

        if (tally_clean_reader_init(&rd, buf, len, err))
                return -1;
        fprintf(out, "{\"partition\":%" PRId32 ",\"offset\":%" PRId64
                ",\"version\":%u,\"kind\":\"%s\"", partition, offset,
                rd.version,
                rd.kind == TALLY_CLEAN_READINGS ? "readings" : "progress");
        if (rd.kind == TALLY_CLEAN_PROGRESS) {
                fprintf(out, ",\"raw_partitions\":%" PRId32 ",\"origins\":[",
                        rd.raw_partitions);
                for (int i = 0; (rc = tally_clean_reader_next_origin(&rd, &o, err)) == 1; i++)
                        fprintf(out, "%s{\"partition\":%" PRId32 ",\"progress_ms\":%" PRId64 "}",
                                i ? "," : "", o.partition, o.progress_ms);
        } else {
                fprintf(out, ",\"readings\":[");
                for (int i = 0; (rc = tally_clean_reader_next(&rd, &r, err)) == 1; i++) {
                        tally_time_format(r.ts_ms, ts);
                        fprintf(out, "%s{\"site\":", i ? "," : "");
                        json_str(out, r.site, r.site_len);
                        fprintf(out, ",\"device\":");
                        json_str(out, r.device, r.device_len);
                        fprintf(out, ",\"metric\":");
                        json_str(out, r.metric, r.metric_len);
                        fprintf(out, ",\"ts\":\"%s\",\"ts_ms\":%" PRId64
                                ",\"value\":%.17g,\"origin\":[%" PRId32 ",%" PRId64
                                ",%" PRId32 "],\"progress_ms\":",
                                ts, r.ts_ms, r.value, r.origin.partition,
                                r.origin.offset, r.origin.index);
                        if (r.progress_ms == INT64_MIN)
                                fprintf(out, "null}");
                        else
                                fprintf(out, "%" PRId64 "}", r.progress_ms);
                }
        }
        fprintf(out, "]}\n");
        return rc < 0 ? -1 : 0;
}

static int decode_file(const char *path, tally_err *err)
{
        FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
        tally_buf b = TALLY_BUF_INIT;
        char chunk[65536];
        size_t n;
        int rc;

        if (!f)
                return tally_err_set(err, "io", "%s: cannot open", path);
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                tally_buf_append(&b, chunk, n);
        if (f != stdin)
                fclose(f);
        rc = decode_print(stdout, b.data, b.len, -1, -1, err);
        tally_buf_free(&b);
        return rc;
}

static int decode_kafka(const decode_cfg *cfg, tally_err *err)
{
        rd_kafka_conf_t *conf = tally_kafka_conf_new(&cfg->common,
                                                     TALLY_KAFKA_CONSUMER, err);
        rd_kafka_topic_partition_list_t *parts;
        rd_kafka_t *rk;
        int n, eof = 0, rc = 0;

        if (!conf || tally_kafka_conf_set(conf, "group.id", "tally-decode", err))
                return -1;
        rk = tally_kafka_new(RD_KAFKA_CONSUMER, conf, err);
        if (!rk)
                return -1;
        if (tally_kafka_partitions(rk, cfg->common.topic_clean, &n, 10000, err)) {
                rd_kafka_destroy(rk);
                return -1;
        }
        parts = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
                rd_kafka_topic_partition_list_add(parts, cfg->common.topic_clean, p)
                        ->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        while (eof < n) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
                tally_err e;

                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
                        eof++;
                else if (m->err)
                        fprintf(stderr, "tally-decode: %s\n", rd_kafka_message_errstr(m));
                else if (decode_print(stdout, m->payload, m->len, m->partition,
                                      m->offset, &e)) {
                        fprintf(stderr, "tally-decode: partition %d offset %" PRId64 ": %s\n",
                                m->partition, m->offset, e.msg);
                        rc = -1;
                }
                rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        if (rc)
                tally_err_set(err, "corrupt", "some records could not be decoded");
        return rc;
}

int main(int argc, char **argv)
{
        decode_cfg cfg;
        tally_err err;
        int rc;

        memset(&cfg, 0, sizeof(cfg));
        rc = tally_config_parse("tally-decode",
                "Prints tally.clean records as JSON lines: --file F (one record) or --kafka (the whole clean topic).",
                decode_opts, NOPTS, &cfg, &cfg.common.kafka, argc, argv, &err);
        if (rc == 1)
                return 0;
        if (rc < 0 || (!cfg.kafka && !*cfg.file)) {
                fprintf(stderr, "tally-decode: %s\n",
                        rc < 0 ? err.msg : "give --file F or --kafka");
                tally_config_free(decode_opts, NOPTS, &cfg, &cfg.common.kafka);
                return 2;
        }
        tally_log_init("decode", TALLY_LOG_WARN);
        rc = cfg.kafka ? decode_kafka(&cfg, &err) : decode_file(cfg.file, &err);
        if (rc)
                fprintf(stderr, "tally-decode: %s\n", err.msg);
        tally_config_free(decode_opts, NOPTS, &cfg, &cfg.common.kafka);
        return rc ? 1 : 0;
}
