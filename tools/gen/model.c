/* tools/gen/model.c -- the simulated devices: which reports exist, their
 * event times, values and message shapes, and the bytes of each message.
 *
 * Report g (0-based, production order) is report k = g / devices of
 * device i = g % devices; its nominal time is
 *   start + k * interval + (i * interval) / devices,
 * so production order is nominal-time order. Every random choice is a
 * hash of (seed, i, k, purpose): see gen.h. Values are multiples of 1/8,
 * 1/2, 1/4 and 1, exact in binary, so every sum is exact whatever order
 * anyone adds them in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/reading.h"
#include "common/timefmt.h"
#include "tools/gen/gen.h"

const char *const gen_reason_names[GEN_R_COUNT] = {
        "none", "malformed_json", "missing_field", "bad_field", "bad_value",
        "bad_timestamp", "decompression_failed", "empty", "too_late",
};

const char *const gen_metric_names[GEN_METRICS_MAX] = {
        "temperature_c", "humidity_pct", "power_w", "door_open",
};

static const unsigned char gen_metric_lens[GEN_METRICS_MAX] = {13, 12, 7, 9};

/* hash purposes */
enum {
        P_LATE = 1, P_JITTER, P_LATEISH, P_VALUE, P_BASE, P_TSFMT, P_BOOL,
        P_SHAPE, P_GZIP, P_MAL, P_MALKIND, P_MALX,
};

/* malformed message kinds (docs/gen.md) */
enum {
        MK_TRUNCATED, MK_NOT_JSON, MK_MISSING_VALUE, MK_BAD_TS_STRING,
        MK_VALUE_STRING, MK_SITE_NUMBER, MK_TS_FUTURE, MK_TS_PAST,
        MK_GZIP_GARBAGE, MK_EMPTY, MK_BAD_ELEMENT, MK_COUNT,
};

/* timestamp spellings */
enum { TS_Z, TS_EPOCH, TS_PLUS2, TS_MINUS0530 };

static inline uint64_t mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        x ^= x >> 31;
        return x;
}

static inline uint64_t gen_hash(const gen_model *m, int64_t dev, int64_t k,
                                uint64_t purpose)
{
        uint64_t h = mix64(m->seed + 0x9e3779b97f4a7c15ULL * purpose);

        h = mix64(h ^ ((uint64_t)dev * 0xd1b54a32d192ed03ULL));
        return mix64(h ^ (uint64_t)k);
}

static inline double unit(uint64_t h)
{
        return (double)(h >> 11) * 0x1.0p-53;
}

int gen_model_init(gen_model *m, const gen_cfg *cfg, int64_t start_ms,
                   int32_t partitions, char *errbuf, size_t errlen)
{
        double rate, shares[3];
        const char *share_txt[3] = {cfg->late_share, cfg->lateish_share,
                                    cfg->malformed_share};
        const char *share_name[3] = {"late-share", "lateish-share",
                                     "malformed-share"};
        char *end;
        z_stream *zs;

        memset(m, 0, sizeof(*m));
        m->day_cached = INT64_MIN;
        rate = strtod(cfg->rate_per_device, &end);
        if (*end || !(rate > 0) || rate > 1000) {
                snprintf(errbuf, errlen, "--rate-per-device: '%s' is not a "
                         "number in (0, 1000]", cfg->rate_per_device);
                return -1;
        }
        for (int i = 0; i < 3; i++) {
                shares[i] = strtod(share_txt[i], &end);
                if (*end || !(shares[i] >= 0) || shares[i] > 1) {
                        snprintf(errbuf, errlen, "--%s: '%s' is not a "
                                 "number in [0, 1]", share_name[i],
                                 share_txt[i]);
                        return -1;
                }
        }
        if (shares[0] + shares[1] > 1) {
                snprintf(errbuf, errlen, "--late-share + --lateish-share "
                         "must not exceed 1");
                return -1;
        }
        if (!strcmp(cfg->shapes, "report")) {
                m->all_shapes = 0;
        } else if (!strcmp(cfg->shapes, "all")) {
                m->all_shapes = 1;
        } else {
                snprintf(errbuf, errlen, "--shapes: '%s' is not report or "
                         "all", cfg->shapes);
                return -1;
        }
        m->seed = (uint64_t)cfg->seed;
        m->sites = cfg->sites;
        m->devices = cfg->devices;
        m->metrics = (int)cfg->metrics;
        m->interval_ms = (int64_t)(1000.0 / rate + 0.5);
        if (m->interval_ms < 1)
                m->interval_ms = 1;
        m->start_ms = start_ms;
        if (cfg->reports > 0) {
                m->total_reports = cfg->reports;
        } else {
                int64_t rounds = (cfg->duration_ms + m->interval_ms - 1) /
                                 m->interval_ms;
                m->total_reports = rounds * m->devices;
        }
        m->jitter_ms = cfg->jitter_ms;
        m->late_share = shares[0];
        m->lateish_share = shares[1];
        m->malformed_share = shares[2];
        m->batch = cfg->batch;
        m->partitions = partitions;
        m->window_ms = cfg->common.windows.ms[0];
        m->disorder_ms = cfg->common.disorder_ms;
        m->lateness_ms = cfg->common.lateness_ms;
        if (m->all_shapes) {
                m->batch_start = calloc((size_t)m->devices, sizeof(int64_t));
                m->batch_size = calloc((size_t)m->devices, sizeof(int32_t));
                m->batch_shape = calloc((size_t)m->devices, 1);
                if (!m->batch_start || !m->batch_size || !m->batch_shape) {
                        snprintf(errbuf, errlen, "out of memory");
                        gen_model_free(m);
                        return -1;
                }
        }
        zs = calloc(1, sizeof(*zs));
        if (!zs || deflateInit2(zs, 1, Z_DEFLATED, 31, 8,
                                Z_DEFAULT_STRATEGY) != Z_OK) {
                free(zs);
                snprintf(errbuf, errlen, "zlib init failed");
                gen_model_free(m);
                return -1;
        }
        m->zs = zs;
        return 0;
}

void gen_model_free(gen_model *m)
{
        free(m->batch_start);
        free(m->batch_size);
        free(m->batch_shape);
        if (m->zs) {
                deflateEnd(m->zs);
                free(m->zs);
        }
        memset(m, 0, sizeof(*m));
}

void gen_msg_free(gen_msg *msg)
{
        free(msg->points);
        tally_buf_free(&msg->body);
        tally_buf_free(&msg->scratch);
        memset(msg, 0, sizeof(*msg));
}

int64_t gen_model_nominal(const gen_model *m, int64_t g)
{
        int64_t k = g / m->devices, i = g % m->devices;

        return m->start_ms + k * m->interval_ms +
               (i * m->interval_ms) / m->devices;
}

/* reports of device i in the whole run */
static int64_t device_reports(const gen_model *m, int64_t i)
{
        return m->total_reports / m->devices +
               (i < m->total_reports % m->devices ? 1 : 0);
}

/* ---- writing ---------------------------------------------------------- */

/* Appending through a raw pointer after one reserve: tally_buf_append per
 * token would cost a call each. Every writer below reserves for itself. */
static inline char *w_at(tally_buf *b, size_t need)
{
        tally_buf_reserve(b, need);
        return (char *)b->data + b->len;
}

static inline void w_lit(tally_buf *b, const char *s, size_t n)
{
        memcpy(w_at(b, n), s, n);
        b->len += n;
}

#define W_LIT(b, s) w_lit((b), (s), sizeof(s) - 1)

static inline void w_u64(tally_buf *b, uint64_t v)
{
        char tmp[24];
        int n = 0;

        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        char *p = w_at(b, (size_t)n);
        for (int j = 0; j < n; j++)
                p[j] = tmp[n - 1 - j];
        b->len += (size_t)n;
}

static inline void w_i64(tally_buf *b, int64_t v)
{
        if (v < 0) {
                W_LIT(b, "-");
                w_u64(b, (uint64_t)0 - (uint64_t)v);
        } else {
                w_u64(b, (uint64_t)v);
        }
}

/* zero-padded decimal of at least width digits */
static inline void w_pad(tally_buf *b, uint64_t v, int width)
{
        char tmp[24];
        int n = 0;

        do {
                tmp[n++] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        while (n < width)
                tmp[n++] = '0';
        char *p = w_at(b, (size_t)n);
        for (int j = 0; j < n; j++)
                p[j] = tmp[n - 1 - j];
        b->len += (size_t)n;
}

/* num/den with den in {1, 2, 4, 8}: exact decimal, shortest form */
static void w_value(tally_buf *b, int64_t num, int den)
{
        uint64_t a;
        unsigned frac;

        if (num < 0) {
                W_LIT(b, "-");
                a = (uint64_t)0 - (uint64_t)num;
        } else {
                a = (uint64_t)num;
        }
        w_u64(b, a / (unsigned)den);
        frac = (unsigned)(a % (unsigned)den) * (1000u / (unsigned)den);
        if (frac) {
                char *p = w_at(b, 4);
                int n = 1;

                p[0] = '.';
                p[n++] = (char)('0' + frac / 100);
                if (frac % 100) {
                        p[n++] = (char)('0' + frac / 10 % 10);
                        if (frac % 10)
                                p[n++] = (char)('0' + frac % 10);
                }
                b->len += (size_t)n;
        }
}

/* "YYYY-MM-DDTHH:MM:SS.mmm" + suffix, quoted; or bare epoch ms */
static void w_ts(gen_model *m, tally_buf *b, int64_t ts, int fmt)
{
        int64_t off_ms = 0, local, day, msod;
        char *p;

        if (fmt == TS_EPOCH) {
                w_i64(b, ts);
                return;
        }
        if (fmt == TS_PLUS2)
                off_ms = 2 * 3600000;
        else if (fmt == TS_MINUS0530)
                off_ms = -(5 * 3600000 + 30 * 60000);
        local = ts + off_ms;
        day = tally_floor_div(local, 86400000);
        msod = local - day * 86400000;
        if (day != m->day_cached) {
                char full[32];

                tally_time_format(day * 86400000, full);
                memcpy(m->date_cached, full, 10);
                m->day_cached = day;
        }
        p = w_at(b, 40);
        p[0] = '"';
        memcpy(p + 1, m->date_cached, 10);
        p[11] = 'T';
        {
                int hh = (int)(msod / 3600000), mm = (int)(msod / 60000 % 60);
                int ss = (int)(msod / 1000 % 60), ms = (int)(msod % 1000);

                p[12] = (char)('0' + hh / 10);
                p[13] = (char)('0' + hh % 10);
                p[14] = ':';
                p[15] = (char)('0' + mm / 10);
                p[16] = (char)('0' + mm % 10);
                p[17] = ':';
                p[18] = (char)('0' + ss / 10);
                p[19] = (char)('0' + ss % 10);
                p[20] = '.';
                p[21] = (char)('0' + ms / 100);
                p[22] = (char)('0' + ms / 10 % 10);
                p[23] = (char)('0' + ms % 10);
        }
        if (fmt == TS_Z) {
                p[24] = 'Z';
                p[25] = '"';
                b->len += 26;
        } else {
                memcpy(p + 24, fmt == TS_PLUS2 ? "+02:00\"" : "-05:30\"", 7);
                b->len += 31;
        }
}

static void w_site(const gen_model *m, tally_buf *b, int64_t i)
{
        W_LIT(b, "site-");
        w_pad(b, (uint64_t)(i % m->sites), 2);
}

static size_t device_name(int64_t i, char *out)
{
        tally_buf tmp = {(unsigned char *)out, 0, 31};

        /* tmp borrows out (cap 31 > longest name): never reallocates */
        W_LIT(&tmp, "dev-");
        w_pad(&tmp, (uint64_t)i, 6);
        out[tmp.len] = '\0';
        return tmp.len;
}

/* ---- the model -------------------------------------------------------- */

typedef struct report_vals {
        int64_t ts;
        int64_t num[GEN_METRICS_MAX];
        int den[GEN_METRICS_MAX];
        int door_bool;          /* door_open as true/false */
        int tsfmt;
} report_vals;

static void report_make(gen_model *m, int64_t i, int64_t k, report_vals *r)
{
        int64_t n = m->start_ms + k * m->interval_ms +
                    (i * m->interval_ms) / m->devices;
        double u = unit(gen_hash(m, i, k, P_LATE));
        int64_t W = m->window_ms, d = m->disorder_ms, L = m->lateness_ms;
        uint64_t h;

        r->ts = n - (int64_t)(gen_hash(m, i, k, P_JITTER) %
                              (uint64_t)(m->jitter_ms + 1));
        if (u < m->late_share) {
                /* past its window's end + d + L by 10 s once the origin
                 * has reached the nominal time */
                r->ts = n - (W + d + L + 10000);
        } else if (u < m->late_share + m->lateish_share) {
                /* into the last window whose end + d is behind n, if that
                 * window is still within the allowed lateness */
                int64_t E = tally_floor_div(n - d - 1, W) * W;
                int64_t gap = n - d - E;

                if (gap > m->jitter_ms + 1000 && gap <= L)
                        r->ts = E - 1 - (int64_t)(gen_hash(m, i, k,
                                                           P_LATEISH) % 1000);
        }
        h = gen_hash(m, i, k, P_VALUE);
        /* temperature: a per-device set point in -20..12 C, +-1 C in 1/8 */
        r->num[0] = ((int64_t)(gen_hash(m, i, 0, P_BASE) % 33) - 20) * 8 +
                    (int64_t)(h % 17) - 8;
        r->den[0] = 8;
        r->num[1] = 60 + (int64_t)(h >> 8) % 121;       /* 30..90.5 % */
        r->den[1] = 2;
        r->num[2] = 400 + (int64_t)(h >> 16) % 4000;    /* 100..1099.75 W */
        r->den[2] = 4;
        r->num[3] = (h >> 32) % 10 == 0;
        r->den[3] = 1;
        r->door_bool = (h >> 40) & 1;
        if (m->all_shapes) {
                unsigned f = (unsigned)(gen_hash(m, i, k, P_TSFMT) % 8);

                r->tsfmt = f < 5 ? TS_Z : f == 5 ? TS_EPOCH :
                           f == 6 ? TS_PLUS2 : TS_MINUS0530;
        } else {
                r->tsfmt = TS_Z;
        }
}

static gen_point *msg_point(gen_msg *msg)
{
        if (msg->npoints == msg->cap_points) {
                size_t cap = msg->cap_points ? msg->cap_points * 2 : 64;
                gen_point *p = realloc(msg->points, cap * sizeof(*p));

                if (!p)
                        abort();
                msg->points = p;
                msg->cap_points = cap;
        }
        return &msg->points[msg->npoints++];
}

static void w_reading_value(tally_buf *b, const report_vals *r, int j)
{
        if (j == 3 && r->door_bool) {
                if (r->num[3])
                        W_LIT(b, "true");
                else
                        W_LIT(b, "false");
        } else {
                w_value(b, r->num[j], r->den[j]);
        }
}

static void add_point(gen_msg *msg, int64_t ts, const report_vals *r, int j,
                      int reject)
{
        gen_point *pt = msg_point(msg);

        pt->ts_ms = ts;
        pt->value = r ? (double)r->num[j] / r->den[j] : 0;
        pt->metric = (uint8_t)j;
        pt->reject = (uint8_t)reject;
}

static void w_report(gen_model *m, gen_msg *msg, int64_t i, int64_t k)
{
        tally_buf *b = &msg->body;
        report_vals r;

        report_make(m, i, k, &r);
        W_LIT(b, "{\"site\":\"");
        w_site(m, b, i);
        W_LIT(b, "\",\"device\":\"");
        w_lit(b, msg->key, msg->key_len);
        W_LIT(b, "\",\"ts\":");
        w_ts(m, b, r.ts, r.tsfmt);
        W_LIT(b, ",\"seq\":");
        w_i64(b, k);
        W_LIT(b, ",\"readings\":{");
        for (int j = 0; j < m->metrics; j++) {
                if (j)
                        W_LIT(b, ",");
                W_LIT(b, "\"");
                w_lit(b, gen_metric_names[j], gen_metric_lens[j]);
                W_LIT(b, "\":");
                w_reading_value(b, &r, j);
                add_point(msg, r.ts, &r, j, GEN_R_NONE);
        }
        W_LIT(b, "}}");
        msg->reports++;
}

static void w_single(gen_model *m, gen_msg *msg, int64_t i, int64_t k, int j)
{
        tally_buf *b = &msg->body;
        report_vals r;

        report_make(m, i, k, &r);
        W_LIT(b, "{\"site\":\"");
        w_site(m, b, i);
        W_LIT(b, "\",\"device\":\"");
        w_lit(b, msg->key, msg->key_len);
        W_LIT(b, "\",\"metric\":\"");
        w_lit(b, gen_metric_names[j], gen_metric_lens[j]);
        W_LIT(b, "\",\"value\":");
        w_reading_value(b, &r, j);
        W_LIT(b, ",\"ts\":");
        w_ts(m, b, r.ts, r.tsfmt);
        W_LIT(b, "}");
        add_point(msg, r.ts, &r, j, GEN_R_NONE);
}

/* A broken replacement for the message of (i, k0..k1). */
static void w_malformed(gen_model *m, gen_msg *msg, int64_t i, int64_t k0,
                        int64_t k1, int single, uint64_t salt)
{
        tally_buf *b = &msg->body;
        uint64_t h = gen_hash(m, i, k0, P_MALKIND + salt);
        int kind = (int)(h % MK_COUNT);
        int metric = (int)((h >> 8) % (uint64_t)m->metrics);
        report_vals r;

        /* a single-reading message stands for one reading of a report:
         * whole reports in it would duplicate its siblings' readings */
        if (kind == MK_BAD_ELEMENT && single)
                kind = MK_MISSING_VALUE;
        report_make(m, i, k1, &r);
        switch (kind) {
        case MK_TRUNCATED:
                W_LIT(b, "{\"site\":\"");
                w_site(m, b, i);
                W_LIT(b, "\",\"device\":\"");
                w_lit(b, msg->key, msg->key_len);
                W_LIT(b, "\",\"ts\":");
                msg->whole_reject = GEN_R_MALFORMED_JSON;
                return;
        case MK_NOT_JSON:
                W_LIT(b, "device ");
                w_lit(b, msg->key, msg->key_len);
                W_LIT(b, " says hello");
                msg->whole_reject = GEN_R_MALFORMED_JSON;
                return;
        case MK_GZIP_GARBAGE: {
                static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0,
                                                      0, 0, 0, 0, 3};
                tally_buf_append(b, hdr, sizeof(hdr));
                for (int n = 0; n < 24; n++)
                        tally_buf_putc(b, (unsigned char)(gen_hash(
                                m, i, k0, P_MALX + (uint64_t)n) & 0xff));
                msg->whole_reject = GEN_R_DECOMPRESSION_FAILED;
                msg->binary = 1;
                return;
        }
        case MK_EMPTY:
                msg->whole_reject = GEN_R_EMPTY;
                return;
        case MK_BAD_ELEMENT: {
                /* the good reports, plus one bad element among them: the
                 * good readings must survive it */
                int64_t nrep = k1 - k0 + 1;
                int64_t bad_at = (int64_t)((h >> 16) % (uint64_t)(nrep + 1));

                W_LIT(b, "[");
                for (int64_t x = 0; x <= nrep; x++) {
                        if (x)
                                W_LIT(b, ",");
                        if (x == bad_at) {
                                W_LIT(b, "{\"site\":\"");
                                w_site(m, b, i);
                                W_LIT(b, "\",\"device\":\"");
                                w_lit(b, msg->key, msg->key_len);
                                W_LIT(b, "\",\"metric\":\"power_w\","
                                         "\"ts\":");
                                w_ts(m, b, r.ts, TS_Z);
                                W_LIT(b, "}");
                                add_point(msg, r.ts, NULL, 2,
                                          GEN_R_MISSING_FIELD);
                        } else {
                                w_report(m, msg, i,
                                         k0 + x - (x > bad_at ? 1 : 0));
                        }
                }
                W_LIT(b, "]");
                return;
        }
        default:
                break;
        }
        /* one single-reading object with one thing wrong */
        {
                int64_t ts = r.ts;
                int reject = GEN_R_NONE;

                if (kind == MK_TS_FUTURE)
                        ts = msg->rec_ts_ms + 360000 +
                             (int64_t)((h >> 20) % 86400000);
                else if (kind == MK_TS_PAST)
                        ts = msg->rec_ts_ms - 8 * 86400000LL -
                             (int64_t)((h >> 20) % 86400000);
                W_LIT(b, "{\"site\":");
                if (kind == MK_SITE_NUMBER) {
                        w_i64(b, i % m->sites);
                        reject = GEN_R_BAD_FIELD;
                } else {
                        W_LIT(b, "\"");
                        w_site(m, b, i);
                        W_LIT(b, "\"");
                }
                W_LIT(b, ",\"device\":\"");
                w_lit(b, msg->key, msg->key_len);
                W_LIT(b, "\",\"metric\":\"");
                w_lit(b, gen_metric_names[metric], gen_metric_lens[metric]);
                W_LIT(b, "\"");
                if (kind == MK_MISSING_VALUE) {
                        reject = GEN_R_MISSING_FIELD;
                } else if (kind == MK_VALUE_STRING) {
                        W_LIT(b, ",\"value\":\"warm\"");
                        reject = GEN_R_BAD_VALUE;
                } else {
                        W_LIT(b, ",\"value\":");
                        w_value(b, r.num[metric], r.den[metric]);
                }
                W_LIT(b, ",\"ts\":");
                if (kind == MK_BAD_TS_STRING) {
                        W_LIT(b, "\"the day after tomorrow\"");
                        reject = GEN_R_BAD_TIMESTAMP;
                } else {
                        w_ts(m, b, ts, TS_Z);
                }
                W_LIT(b, "}");
                add_point(msg, ts, &r, metric, reject);
        }
}

static void gzip_body(gen_model *m, gen_msg *msg)
{
        z_stream *zs = m->zs;
        size_t bound = deflateBound(zs, (uLong)msg->body.len);
        int zrc;

        tally_buf_reset(&msg->scratch);
        tally_buf_reserve(&msg->scratch, bound);
        deflateReset(zs);
        zs->next_in = msg->body.data;
        zs->avail_in = (uInt)msg->body.len;
        zs->next_out = msg->scratch.data;
        zs->avail_out = (uInt)bound;
        zrc = deflate(zs, Z_FINISH);
        if (zrc != Z_STREAM_END)
                abort();        /* deflateBound guarantees room */
        msg->scratch.len = bound - zs->avail_out;
        {
                tally_buf t = msg->body;

                msg->body = msg->scratch;
                msg->scratch = t;
        }
        msg->gzip = 1;
        msg->binary = 1;
}

int gen_model_due(gen_model *m, int64_t g)
{
        int64_t k = g / m->devices, i = g % m->devices;

        if (!m->all_shapes)
                return 1;
        if (m->batch_size[i] == 0 ||
            k >= m->batch_start[i] + m->batch_size[i]) {
                /* open the device's next message */
                uint64_t h = gen_hash(m, i, k, P_SHAPE) % 100;
                int shape = h < 15 ? GEN_SHAPE_SINGLE :
                            h < 55 ? GEN_SHAPE_REPORT :
                            h < 75 ? GEN_SHAPE_ARRAY : GEN_SHAPE_NDJSON;
                int64_t left = device_reports(m, i) - k;
                int64_t size = 1;

                if (shape == GEN_SHAPE_ARRAY || shape == GEN_SHAPE_NDJSON)
                        size = m->batch < left ? m->batch : left;
                m->batch_start[i] = k;
                m->batch_size[i] = (int32_t)size;
                m->batch_shape[i] = (uint8_t)shape;
        }
        if (k != m->batch_start[i] + m->batch_size[i] - 1)
                return 0;
        return m->batch_shape[i] == GEN_SHAPE_SINGLE ? m->metrics : 1;
}

void gen_model_message(gen_model *m, int64_t g, int j, gen_msg *msg)
{
        int64_t k = g / m->devices, i = g % m->devices;
        int64_t k0 = k;
        int shape = GEN_SHAPE_REPORT;

        if (m->all_shapes) {
                k0 = m->batch_start[i];
                shape = m->batch_shape[i];
        }
        msg->device = i;
        msg->key_len = device_name(i, msg->key);
        msg->partition = tally_partition_for(msg->key, msg->key_len,
                                             m->partitions);
        msg->rec_ts_ms = gen_model_nominal(m, g);
        msg->whole_reject = GEN_R_NONE;
        msg->gzip = 0;
        msg->binary = 0;
        msg->reports = 0;
        msg->npoints = 0;
        tally_buf_reset(&msg->body);

        if (m->malformed_share > 0 &&
            unit(gen_hash(m, i, k0, P_MAL + 100 * (uint64_t)j)) <
            m->malformed_share) {
                w_malformed(m, msg, i, k0, k, shape == GEN_SHAPE_SINGLE,
                            100 * (uint64_t)j);
                return;
        }
        switch (shape) {
        case GEN_SHAPE_SINGLE:
                w_single(m, msg, i, k, j);
                if (j == 0)
                        msg->reports = 1;
                break;
        case GEN_SHAPE_ARRAY:
                W_LIT(&msg->body, "[");
                for (int64_t x = k0; x <= k; x++) {
                        if (x > k0)
                                W_LIT(&msg->body, ",");
                        w_report(m, msg, i, x);
                }
                W_LIT(&msg->body, "]");
                break;
        case GEN_SHAPE_NDJSON:
                for (int64_t x = k0; x <= k; x++) {
                        if (x > k0) {
                                W_LIT(&msg->body, "\n");
                                msg->binary = 1;
                        }
                        w_report(m, msg, i, x);
                }
                break;
        default:
                w_report(m, msg, i, k);
                break;
        }
        if (m->all_shapes && gen_hash(m, i, k0, P_GZIP + (uint64_t)j) % 5 == 0)
                gzip_body(m, msg);
}

void gen_base64(const unsigned char *s, size_t n, tally_buf *out)
{
        static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789+/";
        char *p = w_at(out, (n + 2) / 3 * 4);
        size_t i, o = 0;

        for (i = 0; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
                             s[i + 2];
                p[o++] = tab[v >> 18];
                p[o++] = tab[(v >> 12) & 63];
                p[o++] = tab[(v >> 6) & 63];
                p[o++] = tab[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)s[i] << 16 |
                             (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
                p[o++] = tab[v >> 18];
                p[o++] = tab[(v >> 12) & 63];
                p[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
                p[o++] = '=';
        }
        out->len += o;
}
