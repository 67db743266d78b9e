/* store/batch.c -- the batch transaction (see batch.h). Round trips per
 * batch: BEGIN, the fenced offsets UPDATE, COPY of the finest rows, COPY
 * of the coarse deltas per coarse window, COMMIT; never one per row. The
 * general merge below (merge_sql) is used when a key of the batch is
 * already stored.
 *
 * Coarse rows are maintained incrementally, never recomputed: a newer
 * version of a finest rollup always counts a superset of the readings of
 * an older one (the aggregate adds readings to a window in clean-log
 * order, and version = readings counted), so replacing the stored version
 * o of a finest row by a newer n changes its coarse row by
 *   count += n.count - o.count, sum += n.sum - o.sum,
 *   version += n.version - o.version, min = least(min, n.min),
 *   max = greatest(max, n.max), first = the earlier of (first, n.first)
 *   by (ts, origin), last = the later one,
 * which is exactly what a recompute from the finest rows would give
 * (sum up to rounding: see docs/schema.md). A batch appends these
 * changes to the delta table of the coarse window, in the transaction
 * that writes the finest rows; the view merges them with the stored row
 * until the fold adds them to it (store/coarse_sql.h, store/fold.h), so
 * coarse rows are as complete as the finest ones at every commit and no
 * batch waits on a coarse row's update. The old versions are read in
 * the same statement; no other transaction can change them meanwhile,
 * because every row of a series comes through one rollups partition and
 * the offsets rows of the batch's partitions are locked first (that
 * UPDATE is also the epoch fence). */
#include "store/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/timefmt.h"
#include "store/coarse.h"
#include "store/coarse_sql.h"
#include "store/copybin.h"
#include "store/schema.h"

/* bytes of binary COPY data per row (17 columns: 13 of 8 bytes, 4 of 4,
 * each with its length word, and the field count) and of names per row
 * (site, device and metric of typical lengths with their NULs) */
#define COPY_ROW_BYTES 192
#define BATCH_NAME_BYTES 48

void store_prefault(void *p, size_t n)
{
        for (size_t i = 0; i < n; i += 4096)
                ((volatile char *)p)[i] = 0;
}

/* touches the first n bytes only: tally_buf_reserve may round the
 * capacity up to twice that, which stays untouched (and out of RSS)
 * unless a batch needs it */
static void reserve_touched(tally_buf *b, size_t n)
{
        tally_buf_reserve(b, n);
        store_prefault(b->data, n);
}

void store_batch_init(store_batch *b, size_t cap)
{
        memset(b, 0, sizeof(*b));
        b->cap = cap;
        b->rows = calloc(cap, sizeof(*b->rows));
        if (!b->rows)
                abort();
        /* A batch's memory is sized for batch-max rows now and touched:
         * it is the bound anyway, so RSS does not creep up with the first
         * large backlogs, and the first batch after a start (a backlog,
         * often) does not pay tens of thousands of page faults. Names
         * longer than typical, or several coarse windows, may still grow
         * the buffers past this, once. */
        store_prefault(b->rows, cap * sizeof(*b->rows));
        reserve_touched(&b->names, cap * BATCH_NAME_BYTES);
        reserve_touched(&b->copy, cap * COPY_ROW_BYTES);
        reserve_touched(&b->coarse[1], cap * COPY_ROW_BYTES);
        b->nv_cap = cap;
        b->nv = malloc(cap * sizeof(*b->nv));
        b->bad = malloc(cap);
        if (!b->nv || !b->bad)
                abort();
        store_prefault(b->nv, cap * sizeof(*b->nv));
        store_prefault(b->bad, cap);
        store_coarse_alloc(b);
        store_series_set_init(&b->known);
        store_series_set_init(&b->fresh);
}

void store_batch_free(store_batch *b)
{
        free(b->rows);
        tally_buf_free(&b->names);
        free(b->parts);
        free(b->nv);
        free(b->bad);
        free(b->ord);
        free(b->order_keys);
        for (int k = 0; k < TALLY_WINDOWS_MAX; k++)
                tally_buf_free(&b->coarse[k]);
        tally_buf_free(&b->copy);
        store_series_set_free(&b->known);
        store_series_set_free(&b->fresh);
        memset(b, 0, sizeof(*b));
}

void store_batch_clear(store_batch *b)
{
        b->n = 0;
        b->nparts = 0;
        b->dlq = 0;
        b->opened_ms = 0;
        tally_buf_reset(&b->names);
}

void store_batch_add_row(store_batch *b, int32_t partition, int64_t offset,
                         const tally_rollup *r)
{
        store_row *row = &b->rows[b->n++];
        size_t ls = strlen(r->site) + 1, ld = strlen(r->device) + 1,
               lm = strlen(r->metric) + 1;

        row->partition = partition;
        row->offset = offset;
        row->series = store_series_id(r->site, r->device, r->metric);
        row->check = store_series_check(r->site, r->device, r->metric);
        row->refused = 0;
        row->start_ms = r->start_ms;
        row->a = (store_agg){r->count, r->version, r->sum, r->min, r->max,
                             r->first, r->last};
        row->names = (uint32_t)b->names.len;
        tally_buf_append(&b->names, r->site, ls);
        tally_buf_append(&b->names, r->device, ld);
        tally_buf_append(&b->names, r->metric, lm);
}

void store_row_names(const store_batch *b, const store_row *row,
                     const char **site, const char **device,
                     const char **metric)
{
        *site = (const char *)b->names.data + row->names;
        *device = *site + strlen(*site) + 1;
        *metric = *device + strlen(*device) + 1;
}

void store_row_rollup(const store_batch *b, const store_row *row,
                      int64_t window_ms, tally_rollup *r)
{
        const char *site, *device, *metric;

        store_row_names(b, row, &site, &device, &metric);
        memset(r, 0, sizeof(*r));
        snprintf(r->site, sizeof(r->site), "%s", site);
        snprintf(r->device, sizeof(r->device), "%s", device);
        snprintf(r->metric, sizeof(r->metric), "%s", metric);
        r->window_ms = window_ms;
        r->start_ms = row->start_ms;
        r->count = row->a.count;
        r->version = row->a.version;
        r->sum = row->a.sum;
        r->min = row->a.min;
        r->max = row->a.max;
        r->first = row->a.first;
        r->last = row->a.last;
}

void store_batch_offset(store_batch *b, int32_t partition, int64_t offset,
                        int64_t epoch)
{
        size_t i;

        if (!b->opened_ms)
                b->opened_ms = tally_now_mono_ms();
        for (i = 0; i < b->nparts; i++)
                if (b->parts[i].partition == partition)
                        break;
        if (i == b->nparts) {
                if (b->nparts == b->parts_cap) {
                        b->parts_cap = b->parts_cap ? b->parts_cap * 2 : 16;
                        b->parts = realloc(b->parts, b->parts_cap *
                                                      sizeof(*b->parts));
                        if (!b->parts)
                                abort();
                }
                b->nparts++;
        }
        b->parts[i].partition = partition;
        b->parts[i].next_offset = offset + 1;
        b->parts[i].epoch = epoch;
}

void store_batch_drop_partition(store_batch *b, int32_t partition)
{
        size_t j = 0;

        for (size_t i = 0; i < b->n; i++)
                if (b->rows[i].partition != partition)
                        b->rows[j++] = b->rows[i];
        b->n = j;
        j = 0;
        for (size_t i = 0; i < b->nparts; i++)
                if (b->parts[i].partition != partition)
                        b->parts[j++] = b->parts[i];
        b->nparts = j;
}

store_pg_rc store_batch_prepare(PGconn *conn, tally_err *err)
{
        /* the merge sorts a batch (a few MB) and is planned once per
         * batch: no spill to disk, and no JIT compilation (tens of ms
         * per statement, more than it saves on these plans) */
        store_pg_rc rc = store_pg_exec(conn,
                "SET work_mem = '64MB'; SET jit = off",
                "session settings", err);

        if (rc || (rc = store_series_prepare(conn, err)))
                return rc;
        return store_pg_exec(conn,
                "CREATE TEMP TABLE IF NOT EXISTS store_stage ("
                " series bigint, bucket timestamptz,"
                " count bigint, sum float8, min float8, max float8,"
                " first_value float8, first_ts timestamptz,"
                " first_partition int, first_offset bigint, first_index int,"
                " last_value float8, last_ts timestamptz,"
                " last_partition int, last_offset bigint, last_index int,"
                " version bigint) ON COMMIT DELETE ROWS",
                "staging tables", err);
}

/* ---- series ------------------------------------------------------------- */

store_pg_rc store_batch_register(PGconn *conn, store_batch *b,
                                 size_t *refused, tally_err *err)
{
        size_t nn = 0;
        uint64_t check;
        store_pg_rc rc;

        *refused = 0;
        store_series_set_clear(&b->fresh);
        for (size_t i = 0; i < b->n; i++) {
                const store_row *row = &b->rows[i];

                if (store_series_set_find(&b->known, row->series, &check) ||
                    store_series_set_find(&b->fresh, row->series, &check))
                        continue;       /* a mismatch is refused below */
                if (nn == b->nv_cap) {
                        b->nv_cap = b->nv_cap ? b->nv_cap * 2 : 1024;
                        b->nv = realloc(b->nv, b->nv_cap * sizeof(*b->nv));
                        b->bad = realloc(b->bad, b->nv_cap);
                        if (!b->nv || !b->bad)
                                abort();
                }
                b->nv[nn].id = row->series;
                store_row_names(b, row, &b->nv[nn].site, &b->nv[nn].device,
                                &b->nv[nn].metric);
                store_series_set_put(&b->fresh, row->series, row->check);
                nn++;
        }
        if ((rc = store_series_register(conn, b->nv, nn, b->bad, &b->copy,
                                        err)))
                return rc;
        for (size_t i = 0; i < nn; i++) {
                if (b->bad[i])
                        continue;
                store_series_set_find(&b->fresh, b->nv[i].id, &check);
                store_series_set_put(&b->known, b->nv[i].id, check);
        }
        for (size_t i = 0; i < b->n; i++) {
                store_row *row = &b->rows[i];

                row->refused = !store_series_set_find(&b->known, row->series,
                                                      &check) ||
                               check != row->check;
                *refused += (size_t)row->refused;
        }
        return STORE_PG_OK;
}

void store_batch_drop_refused(store_batch *b)
{
        size_t j = 0;

        for (size_t i = 0; i < b->n; i++)
                if (!b->rows[i].refused)
                        b->rows[j++] = b->rows[i];
        b->n = j;
}

/* ---- SQL --------------------------------------------------------------- */

#define SET_COLS                                                         \
        " count = excluded.count, sum = excluded.sum,"                   \
        " min = excluded.min, max = excluded.max,"                       \
        " first_value = excluded.first_value,"                           \
        " first_ts = excluded.first_ts,"                                 \
        " first_partition = excluded.first_partition,"                   \
        " first_offset = excluded.first_offset,"                         \
        " first_index = excluded.first_index,"                           \
        " last_value = excluded.last_value, last_ts = excluded.last_ts," \
        " last_partition = excluded.last_partition,"                     \
        " last_offset = excluded.last_offset,"                           \
        " last_index = excluded.last_index,"                             \
        " version = excluded.version, updated_at = now()"

/* d: the batch's rows (already one per key, the newest version:
 * store_coarse_order) that are newer than the stored one, with the
 * stored count/sum/version (0 when none). The
 * LIMIT keeps the LATERAL from being pulled up into a join: each old row
 * is then a primary-key lookup, whereas a hash join would read the whole
 * finest table (millions of rows). */
static void delta_sql(tally_buf *q, const char *fine)
{
        tally_buf_printf(q,
                "WITH d AS MATERIALIZED (SELECT s.*,"
                " coalesce(o.count, 0) AS o_count,"
                " coalesce(o.sum, 0) AS o_sum,"
                " coalesce(o.version, 0) AS o_version"
                " FROM store_stage s"
                " LEFT JOIN LATERAL (SELECT f.count, f.sum, f.version"
                "  FROM tally.rollup_%s_data f WHERE f.series = s.series"
                "  AND f.bucket = s.bucket LIMIT 1) o ON true"
                " WHERE o.version IS NULL OR s.version > o.version)",
                fine);
}

static void finest_sql(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "INSERT INTO tally.rollup_%s_data AS t (" STORE_STAGE_COLS ")"
                " SELECT " STORE_STAGE_COLS " FROM d"
                " ON CONFLICT (series, bucket) DO UPDATE SET"
                SET_COLS " WHERE excluded.version > t.version", l);
}

/* The batch's changes per (series, coarse bucket), appended to the delta
 * table (for a key not stored yet they are the whole row, since every
 * finest row of the bucket is new). first and last of a group come from
 * the row numbered 1 by a window ordering (cheaper than an ordered
 * array_agg per column, which sorts per group). Sums are added in bucket
 * order so that a batch always gives the same bits. */
static void coarse_sql(tally_buf *q, const char *l, int64_t ms)
{
        char cb[128];

        snprintf(cb, sizeof(cb), "date_bin(interval '%" PRId64
                 " milliseconds', bucket, timestamptz '1970-01-01 00:00:00+00')",
                 ms);
        tally_buf_printf(q,
                "INSERT INTO tally.rollup_%s_delta (" STORE_STAGE_COLS ")"
                " SELECT series, cb,"
                " sum(count - o_count)::bigint,"
                " sum(sum - o_sum ORDER BY bucket), min(min), max(max),"
                STORE_OF_FIRST("first_value") " min(first_ts),"
                STORE_OF_FIRST("first_partition")
                STORE_OF_FIRST("first_offset")
                STORE_OF_FIRST("first_index")
                STORE_OF_LAST("last_value") " max(last_ts),"
                STORE_OF_LAST("last_partition") STORE_OF_LAST("last_offset")
                STORE_OF_LAST("last_index")
                " sum(version - o_version)::bigint"
                " FROM (SELECT d.*, %s AS cb,"
                " row_number() OVER (PARTITION BY series, %s "
                STORE_FIRST_ORDER ") AS fr,"
                " row_number() OVER (PARTITION BY series, %s "
                STORE_LAST_ORDER ") AS lr FROM d) x"
                " GROUP BY 1, 2",
                l, cb, cb, cb);
}

/* One statement: the deltas, the finest upsert and one merge per coarse
 * table, as data-modifying CTEs over the same deltas. */
static void merge_sql(tally_buf *q, const tally_windows *w)
{
        char l[24];

        store_window_label(w->ms[0], l, sizeof(l));
        delta_sql(q, l);
        if (w->n == 1) {
                finest_sql(q, l);
                return;
        }
        tally_buf_printf(q, ", f AS (");
        finest_sql(q, l);
        tally_buf_printf(q, ")");
        for (int k = 1; k < w->n; k++) {
                store_window_label(w->ms[k], l, sizeof(l));
                if (k < w->n - 1)
                        tally_buf_printf(q, ", c%d AS (", k);
                coarse_sql(q, l, w->ms[k]);
                if (k < w->n - 1)
                        tally_buf_printf(q, ")");
        }
}

/* UPDATE ... WHERE epoch = ours RETURNING partition, first thing in the
 * transaction: it locks the offsets rows of the batch's partitions until
 * COMMIT (an assignment elsewhere waits to bump the epoch), and the
 * partitions not returned were taken over: the caller rolls back before
 * anything else is written. */
static int update_offsets(PGconn *conn, store_batch *b, const char *topic,
                          int32_t *stale, size_t *nstale, tally_err *err)
{
        tally_buf parts = TALLY_BUF_INIT, offs = TALLY_BUF_INIT,
                  epochs = TALLY_BUF_INIT;
        const char *params[4];
        PGresult *res;
        int rc = STORE_PG_OK;

        for (size_t i = 0; i < b->nparts; i++) {
                const char *sep = i ? "," : "{";

                tally_buf_printf(&parts, "%s%" PRId32, sep,
                                 b->parts[i].partition);
                tally_buf_printf(&offs, "%s%" PRId64, sep,
                                 b->parts[i].next_offset);
                tally_buf_printf(&epochs, "%s%" PRId64, sep,
                                 b->parts[i].epoch);
        }
        tally_buf_append(&parts, "}", 2);
        tally_buf_append(&offs, "}", 2);
        tally_buf_append(&epochs, "}", 2);
        params[0] = topic;
        params[1] = (const char *)parts.data;
        params[2] = (const char *)offs.data;
        params[3] = (const char *)epochs.data;
        res = PQexecParams(conn,
                "UPDATE tally.store_offsets o SET next_offset = v.next_offset,"
                " updated_at = now()"
                " FROM unnest($2::int[], $3::bigint[], $4::bigint[])"
                "  AS v(partition, next_offset, epoch)"
                " WHERE o.topic = $1 AND o.partition = v.partition"
                "  AND o.epoch = v.epoch RETURNING o.partition",
                4, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(conn, res, "update offsets", err);
                goto out;
        }
        *nstale = 0;
        for (size_t i = 0; i < b->nparts; i++) {
                int found = 0;

                for (int r = 0; r < PQntuples(res) && !found; r++)
                        found = atoi(PQgetvalue(res, r, 0)) ==
                                b->parts[i].partition;
                if (!found)
                        stale[(*nstale)++] = b->parts[i].partition;
        }
        if (*nstale)
                rc = STORE_PG_STALE;
out:
        PQclear(res);
        tally_buf_free(&parts);
        tally_buf_free(&offs);
        tally_buf_free(&epochs);
        return rc;
}

/* Makes sure the time partitions of every touched bucket exist (cached;
 * rows of a batch mostly share their buckets, so skip repeats). */
static int ensure_partitions(PGconn *conn, const store_batch *b,
                             const tally_windows *w, tally_err *err)
{
        int64_t last[TALLY_WINDOWS_MAX];
        int rc;

        for (int k = 0; k < w->n; k++)
                last[k] = INT64_MIN;
        for (size_t i = 0; i < b->n; i++) {
                const store_row *r = &b->rows[i];

                for (int k = 0; k < w->n; k++) {
                        int64_t s = tally_window_start(r->start_ms, w->ms[k]);

                        if (s == last[k])
                                continue;
                        if ((rc = store_partition_ensure(conn, w->ms[k], s,
                                                         err)))
                                return rc;
                        last[k] = s;
                }
        }
        return STORE_PG_OK;
}

/* The common case: no row of the batch was stored before. The finest
 * rows are copied straight into their table (a unique violation means
 * some were: STORE_PG_UNIQUE, and the caller redoes the transaction by
 * the SQL merge), and what they add to the coarse rows, merged in C,
 * into the delta tables. */
static int write_direct(PGconn *conn, store_batch *b, const tally_windows *w,
                        tally_err *err)
{
        tally_buf q = TALLY_BUF_INIT;
        char l[24];
        int rc = STORE_PG_OK;

        for (int k = 0; k < w->n && !rc; k++) {
                if (k && !b->ncoarse[k])
                        continue;
                store_window_label(w->ms[k], l, sizeof(l));
                tally_buf_reset(&q);
                tally_buf_printf(&q, "COPY tally.rollup_%s_%s ("
                                 STORE_STAGE_COLS ") FROM STDIN (FORMAT binary)",
                                 l, k ? "delta" : "data");
                tally_buf_putc(&q, 0);
                rc = store_pg_copy(conn, (const char *)q.data,
                                   k ? &b->coarse[k] : &b->copy,
                                   k ? "copy coarse" : "copy", err);
        }
        tally_buf_free(&q);
        return rc;
}

/* Any case: the rows go to the staging table and one statement merges
 * them with the stored versions (see the top of this file). */
static int write_merged(PGconn *conn, store_batch *b, const tally_windows *w,
                        tally_err *err)
{
        tally_buf q = TALLY_BUF_INIT;
        int rc;

        rc = store_pg_copy(conn, "COPY store_stage (" STORE_STAGE_COLS
                           ") FROM STDIN (FORMAT binary)", &b->copy, "copy",
                           err);
        if (rc)
                return rc;
        merge_sql(&q, w);
        tally_buf_putc(&q, 0);
        rc = store_pg_exec(conn, (const char *)q.data, "merge", err);
        tally_buf_free(&q);
        return rc;
}

int store_batch_write(PGconn *conn, store_batch *b, const char *topic,
                      const tally_windows *w, int32_t *stale, size_t *nstale,
                      tally_err *err)
{
        int64_t t0 = tally_now_mono_ms(), t1, t2;
        int rc, merged = 0;

        *nstale = 0;
        /* partitions first, in their own transactions (they lock the
         * parent table; the batch transaction should not wait on that) */
        if ((rc = ensure_partitions(conn, b, w, err)))
                return rc;
        if (b->n) {
                store_coarse_order(b);
                store_coarse_copy_finest(b, &b->copy);
                if (w->n > 1)
                        store_coarse_split(b, w);
        }
again:
        if ((rc = store_pg_exec(conn, "BEGIN", "begin", err)))
                return rc;
        if ((rc = update_offsets(conn, b, topic, stale, nstale, err)))
                goto fail;
        t1 = tally_now_mono_ms();
        if (b->n && !merged)
                rc = write_direct(conn, b, w, err);
        else if (b->n)
                rc = write_merged(conn, b, w, err);
        if (rc == STORE_PG_UNIQUE && !merged) {
                PQclear(PQexec(conn, "ROLLBACK"));
                merged = 1;
                goto again;
        }
        if (rc)
                goto fail;
        t2 = tally_now_mono_ms();
        rc = store_pg_exec(conn, "COMMIT", "commit", err);
        b->merged_in_sql = merged;
        b->ms_fence = t1 - t0;
        b->ms_merge = t2 - t1;
        b->ms_commit = tally_now_mono_ms() - t2;
        return rc;
fail:
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
}
