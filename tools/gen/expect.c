/* tools/gen/expect.c -- replays the event-time rules of ingest and
 * aggregate (/work/notes/semantics.md, docs/gen.md) over the messages in
 * production order, to say exactly which rollups and dead-letter records
 * the pipeline must produce from them.
 *
 * Per raw partition: progress starts at INT64_MIN; each message's readings
 * are checked against the timestamp bounds (record ts - max past, + max
 * future), then judged too_late against the progress before the message,
 * then progress moves to max(progress, min(ts, rec_ts + disorder)) over
 * the message's accepted readings. Every device lives in one raw
 * partition and is produced in order, so production order is the origin
 * position order that breaks first/last ties.
 *
 * Rollups are kept in one open-addressing hash table keyed by (series,
 * resolution, bucket), every resolution fed directly: values are exact
 * binary fractions, so this equals the merge of the finest rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"
#include "tools/gen/gen.h"

typedef struct exp_row {
        int64_t bucket;         /* window start, ms */
        uint32_t series;        /* device * GEN_METRICS_MAX + metric */
        uint8_t res;            /* index into windows */
        uint8_t used;
        int64_t count;
        double sum, min, max;
        int64_t first_ts, last_ts;
        double first_v, last_v;
} exp_row;

struct gen_expect {
        const gen_model *m;
        tally_windows w;
        int64_t d, L, max_past, max_future;
        int64_t *progress;
        int rollups;            /* keep the table (--expect given) */
        exp_row *rows;
        size_t cap, used;       /* cap: power of two */
        int64_t dlq[GEN_R_COUNT];
        int64_t accepted;
        uint32_t *dev_rank, *site_rank; /* name order, for sorting */
};

gen_expect *gen_expect_new(const gen_model *m, const tally_windows *w,
                           int64_t disorder_ms, int64_t lateness_ms,
                           int64_t max_past_ms, int64_t max_future_ms,
                           int rollups)
{
        gen_expect *e = calloc(1, sizeof(*e));

        if (!e)
                return NULL;
        e->m = m;
        e->w = *w;
        e->d = disorder_ms;
        e->L = lateness_ms;
        e->max_past = max_past_ms;
        e->max_future = max_future_ms;
        e->rollups = rollups;
        e->progress = malloc((size_t)m->partitions * sizeof(int64_t));
        if (!e->progress) {
                free(e);
                return NULL;
        }
        for (int32_t p = 0; p < m->partitions; p++)
                e->progress[p] = INT64_MIN;
        if (rollups) {
                e->cap = 1u << 16;
                e->rows = calloc(e->cap, sizeof(exp_row));
                if (!e->rows) {
                        gen_expect_free(e);
                        return NULL;
                }
        }
        return e;
}

void gen_expect_free(gen_expect *e)
{
        if (!e)
                return;
        free(e->progress);
        free(e->rows);
        free(e->dev_rank);
        free(e->site_rank);
        free(e);
}

static inline uint64_t row_hash(uint32_t series, uint8_t res, int64_t bucket)
{
        uint64_t x = (uint64_t)bucket * 0x9e3779b97f4a7c15ULL ^
                     ((uint64_t)series << 4 | res);

        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 29;
        return x;
}

static void table_grow(gen_expect *e)
{
        size_t ncap = e->cap * 2;
        exp_row *nrows = calloc(ncap, sizeof(exp_row));

        if (!nrows)
                abort();        /* the expectation cannot be partial */
        for (size_t i = 0; i < e->cap; i++) {
                exp_row *r = &e->rows[i];
                size_t at;

                if (!r->used)
                        continue;
                at = row_hash(r->series, r->res, r->bucket) & (ncap - 1);
                while (nrows[at].used)
                        at = (at + 1) & (ncap - 1);
                nrows[at] = *r;
        }
        free(e->rows);
        e->rows = nrows;
        e->cap = ncap;
}

static void table_add(gen_expect *e, uint32_t series, uint8_t res,
                      int64_t bucket, int64_t ts, double v)
{
        size_t at;
        exp_row *r;

        if ((e->used + 1) * 10 > e->cap * 7)
                table_grow(e);
        at = row_hash(series, res, bucket) & (e->cap - 1);
        for (;;) {
                r = &e->rows[at];
                if (!r->used)
                        break;
                if (r->series == series && r->res == res &&
                    r->bucket == bucket) {
                        r->count++;
                        r->sum += v;
                        if (v < r->min)
                                r->min = v;
                        if (v > r->max)
                                r->max = v;
                        /* later in production order = later position */
                        if (ts < r->first_ts) {
                                r->first_ts = ts;
                                r->first_v = v;
                        }
                        if (ts >= r->last_ts) {
                                r->last_ts = ts;
                                r->last_v = v;
                        }
                        return;
                }
                at = (at + 1) & (e->cap - 1);
        }
        r->used = 1;
        r->series = series;
        r->res = res;
        r->bucket = bucket;
        r->count = 1;
        r->sum = r->min = r->max = v;
        r->first_ts = r->last_ts = ts;
        r->first_v = r->last_v = v;
        e->used++;
}

void gen_expect_add(gen_expect *e, const gen_msg *msg)
{
        int64_t *progress = &e->progress[msg->partition];
        int64_t before = *progress, adv = INT64_MIN;
        int64_t W = e->w.ms[0];

        if (msg->whole_reject) {
                e->dlq[msg->whole_reject]++;
                return;
        }
        for (size_t n = 0; n < msg->npoints; n++) {
                const gen_point *pt = &msg->points[n];
                int64_t ts = pt->ts_ms, lim, wend;

                if (pt->reject) {
                        e->dlq[pt->reject]++;
                        continue;
                }
                if (ts < msg->rec_ts_ms - e->max_past ||
                    ts > msg->rec_ts_ms + e->max_future) {
                        e->dlq[GEN_R_BAD_TIMESTAMP]++;
                        continue;
                }
                /* accepted by ingest: moves progress, too_late or not */
                lim = ts < msg->rec_ts_ms + e->d ? ts : msg->rec_ts_ms + e->d;
                if (lim > adv)
                        adv = lim;
                wend = tally_window_start(ts, W) + W;
                if (before > wend + e->d + e->L) {
                        e->dlq[GEN_R_TOO_LATE]++;
                        continue;
                }
                e->accepted++;
                if (!e->rollups)
                        continue;
                for (int r = 0; r < e->w.n; r++)
                        table_add(e, (uint32_t)(msg->device * GEN_METRICS_MAX +
                                                pt->metric),
                                  (uint8_t)r,
                                  tally_window_start(ts, e->w.ms[r]), ts,
                                  pt->value);
        }
        if (adv > *progress)
                *progress = adv;
}

const int64_t *gen_expect_dlq(const gen_expect *e)
{
        return e->dlq;
}

int64_t gen_expect_accepted(const gen_expect *e)
{
        return e->accepted;
}

/* ---- output ----------------------------------------------------------- */

static const char *const *rank_names;

static int cmp_name(const void *a, const void *b)
{
        return strcmp(rank_names[*(const uint32_t *)a],
                      rank_names[*(const uint32_t *)b]);
}

/* rank[i] = position of name i in byte order (LC_ALL=C sort) */
static uint32_t *make_ranks(int64_t n, const char *pfx, int width)
{
        char **names = calloc((size_t)n, sizeof(char *));
        uint32_t *idx = malloc((size_t)n * sizeof(uint32_t));
        uint32_t *rank = malloc((size_t)n * sizeof(uint32_t));

        if (!names || !idx || !rank)
                abort();
        for (int64_t i = 0; i < n; i++) {
                if (asprintf(&names[i], "%s%0*lld", pfx, width,
                             (long long)i) < 0)
                        abort();
                idx[i] = (uint32_t)i;
        }
        rank_names = (const char *const *)names;
        qsort(idx, (size_t)n, sizeof(uint32_t), cmp_name);
        for (int64_t i = 0; i < n; i++)
                rank[idx[i]] = (uint32_t)i;
        for (int64_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(idx);
        return rank;
}

/* metric names in byte order: door_open, humidity_pct, power_w,
 * temperature_c */
static const uint8_t metric_rank[GEN_METRICS_MAX] = {3, 1, 2, 0};

static const gen_expect *sort_e;

static int cmp_row(const void *pa, const void *pb)
{
        const exp_row *a = pa, *b = pb;
        const gen_expect *e = sort_e;
        uint32_t da = a->series / GEN_METRICS_MAX;
        uint32_t db = b->series / GEN_METRICS_MAX;
        uint32_t sa = e->site_rank[da % e->m->sites];
        uint32_t sb = e->site_rank[db % e->m->sites];
        uint8_t ma = metric_rank[a->series % GEN_METRICS_MAX];
        uint8_t mb = metric_rank[b->series % GEN_METRICS_MAX];

        if (a->res != b->res)
                return a->res < b->res ? -1 : 1;
        if (sa != sb)
                return sa < sb ? -1 : 1;
        if (e->dev_rank[da] != e->dev_rank[db])
                return e->dev_rank[da] < e->dev_rank[db] ? -1 : 1;
        if (ma != mb)
                return ma < mb ? -1 : 1;
        if (a->bucket != b->bucket)
                return a->bucket < b->bucket ? -1 : 1;
        return 0;
}

static int write_rollups(gen_expect *e, const char *path, char *errbuf,
                         size_t errlen)
{
        FILE *f = fopen(path, "w");
        size_t n = 0;

        if (!f) {
                snprintf(errbuf, errlen, "open %s: %m", path);
                return -1;
        }
        /* compact the used rows to the front, then sort them */
        for (size_t i = 0; i < e->cap; i++)
                if (e->rows[i].used)
                        e->rows[n++] = e->rows[i];
        e->dev_rank = make_ranks(e->m->devices, "dev-", 6);
        e->site_rank = make_ranks(e->m->sites, "site-", 2);
        sort_e = e;
        qsort(e->rows, n, sizeof(exp_row), cmp_row);
        for (size_t i = 0; i < n; i++) {
                const exp_row *r = &e->rows[i];
                uint32_t dev = r->series / GEN_METRICS_MAX;

                fprintf(f, "%lld\tsite-%02lld\tdev-%06lu\t%s\t%lld\t%lld\t"
                        "%.17g\t%.17g\t%.17g\t%lld\t%.17g\t%lld\t%.17g\n",
                        (long long)e->w.ms[r->res],
                        (long long)(dev % e->m->sites), (unsigned long)dev,
                        gen_metric_names[r->series % GEN_METRICS_MAX],
                        (long long)r->bucket, (long long)r->count, r->sum,
                        r->min, r->max, (long long)r->first_ts, r->first_v,
                        (long long)r->last_ts, r->last_v);
        }
        /* the table is no longer a table: forget it */
        memset(e->rows, 0, e->cap * sizeof(exp_row));
        e->used = 0;
        if (fclose(f) != 0) {
                snprintf(errbuf, errlen, "write %s: %m", path);
                return -1;
        }
        return 0;
}

static int cmp_reason(const void *a, const void *b)
{
        return strcmp(gen_reason_names[*(const int *)a],
                      gen_reason_names[*(const int *)b]);
}

static int write_dlq(const gen_expect *e, const char *path, char *errbuf,
                     size_t errlen)
{
        FILE *f = fopen(path, "w");
        int order[GEN_R_COUNT], n = 0;

        if (!f) {
                snprintf(errbuf, errlen, "open %s: %m", path);
                return -1;
        }
        for (int r = 1; r < GEN_R_COUNT; r++)
                order[n++] = r;
        qsort(order, (size_t)n, sizeof(int), cmp_reason);
        for (int i = 0; i < n; i++)
                if (e->dlq[order[i]])
                        fprintf(f, "%s\t%lld\n", gen_reason_names[order[i]],
                                (long long)e->dlq[order[i]]);
        if (fclose(f) != 0) {
                snprintf(errbuf, errlen, "write %s: %m", path);
                return -1;
        }
        return 0;
}

int gen_expect_write(gen_expect *e, const char *rollups_path,
                     const char *dlq_path, char *errbuf, size_t errlen)
{
        if (rollups_path && e->rollups &&
            write_rollups(e, rollups_path, errbuf, errlen) != 0)
                return -1;
        if (dlq_path && write_dlq(e, dlq_path, errbuf, errlen) != 0)
                return -1;
        return 0;
}
