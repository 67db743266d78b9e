/* tools/gen/gen.h -- tally-gen, the deterministic warehouse device
 * simulator. Owns the model (which reports exist, their times, values and
 * message shapes: model.c), the expected-result simulation of ingest and
 * aggregate (expect.c) and the program loop (main.c).
 *
 * Determinism: every random choice is a hash of (seed, device, report
 * number, purpose), never a stream of draws, so the same options give the
 * same messages in the same order whatever the output or pacing. Single
 * threaded. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"

#define GEN_METRICS_MAX 4

/* Message shapes (docs/input.md); GEN_SHAPE_SINGLE sends a report as one
 * message per reading. */
enum gen_shape {
        GEN_SHAPE_REPORT,
        GEN_SHAPE_SINGLE,
        GEN_SHAPE_ARRAY,
        GEN_SHAPE_NDJSON,
};

/* Expected dead-letter reasons, as ingest and aggregate name them. */
enum gen_reason {
        GEN_R_NONE,
        GEN_R_MALFORMED_JSON,
        GEN_R_MISSING_FIELD,
        GEN_R_BAD_FIELD,
        GEN_R_BAD_VALUE,
        GEN_R_BAD_TIMESTAMP,
        GEN_R_DECOMPRESSION_FAILED,
        GEN_R_EMPTY,
        GEN_R_TOO_LATE,
        GEN_R_COUNT,
};

extern const char *const gen_reason_names[GEN_R_COUNT];
extern const char *const gen_metric_names[GEN_METRICS_MAX];

typedef struct gen_cfg {
        tally_common_cfg common;
        int64_t seed;
        int64_t sites;
        int64_t devices;
        int64_t metrics;
        char *rate_per_device;
        char *start;
        int64_t duration_ms;
        int64_t reports;
        int64_t jitter_ms;
        char *late_share;
        char *lateish_share;
        char *malformed_share;
        char *shapes;
        int64_t batch;
        char *out;
        int64_t rate;
        char *expect;
        char *expect_dlq;
        int64_t partitions;
        int64_t max_past_ms;
        int64_t max_future_ms;
} gen_cfg;

/* The model's parameters, derived from gen_cfg by main. */
typedef struct gen_model {
        uint64_t seed;
        int64_t sites, devices;
        int metrics;
        int64_t interval_ms;    /* between reports of one device */
        int64_t start_ms;
        int64_t total_reports;  /* reports over all devices */
        int64_t jitter_ms;
        double late_share, lateish_share, malformed_share;
        int all_shapes;         /* 0: report only */
        int64_t batch;
        int32_t partitions;     /* raw partitions */
        int64_t window_ms, disorder_ms, lateness_ms;    /* for late/lateish */
        /* per-device batching state (all_shapes only) */
        int64_t *batch_start;   /* report number that opened the batch */
        int32_t *batch_size;    /* reports in it */
        uint8_t *batch_shape;
        void *zs;               /* z_stream for gzip messages */
        int64_t day_cached;     /* day of date_cached ("YYYY-MM-DD") */
        char date_cached[16];
} gen_model;

/* One reading of a message as ingest will see it. */
typedef struct gen_point {
        int64_t ts_ms;
        double value;
        uint8_t metric;         /* index into gen_metric_names */
        uint8_t reject;         /* enum gen_reason: rejected element */
} gen_point;

/* One raw message, rebuilt for every message. */
typedef struct gen_msg {
        int64_t device;
        int32_t partition;
        int64_t rec_ts_ms;      /* Kafka record timestamp */
        int whole_reject;       /* enum gen_reason if the message is rejected */
        int gzip;
        int binary;             /* contains '\n' or is gzip: stdout base64 */
        int64_t reports;        /* good reports carried */
        size_t npoints;
        size_t cap_points;
        gen_point *points;
        char key[32];
        size_t key_len;
        tally_buf body;         /* the message bytes */
        tally_buf scratch;      /* used while building gzip */
} gen_msg;

/* model.c */
int gen_model_init(gen_model *m, const gen_cfg *cfg, int64_t start_ms,
                   int32_t partitions, char *errbuf, size_t errlen);
void gen_model_free(gen_model *m);
void gen_msg_free(gen_msg *msg);

/* Advances through reports in production order. Call with g = 0, 1, ...
 * up to total_reports - 1; for each g, *nmsgs (0 to metrics) messages are
 * due: fetch them with gen_model_message(m, g, j, msg) for j < *nmsgs. */
int gen_model_due(gen_model *m, int64_t g);
void gen_model_message(gen_model *m, int64_t g, int j, gen_msg *msg);
/* (Batches never outlive their device's last report, so nothing is
 * left open after g = total_reports - 1.) */

/* Nominal time (= record timestamp) of report g. */
int64_t gen_model_nominal(const gen_model *m, int64_t g);

/* Writes s as base64 to out. */
void gen_base64(const unsigned char *s, size_t n, tally_buf *out);

/* expect.c: simulates ingest + aggregate over the produced messages.
 * Progress and dead-letter counts are always kept (cheap); the rollup
 * table only when rollups != 0. */
typedef struct gen_expect gen_expect;

gen_expect *gen_expect_new(const gen_model *m, const tally_windows *w,
                           int64_t disorder_ms, int64_t lateness_ms,
                           int64_t max_past_ms, int64_t max_future_ms,
                           int rollups);
void gen_expect_free(gen_expect *e);
/* Feeds one message, in production order. */
void gen_expect_add(gen_expect *e, const gen_msg *msg);
/* dead-letter records expected so far, by enum gen_reason */
const int64_t *gen_expect_dlq(const gen_expect *e);
int64_t gen_expect_accepted(const gen_expect *e);
/* Writes the rollups TSV and the DLQ TSV (either path may be NULL).
 * Returns 0 or -1 with errbuf set. */
int gen_expect_write(gen_expect *e, const char *rollups_path,
                     const char *dlq_path, char *errbuf, size_t errlen);
