/* store/batch.c -- the batch transaction (see batch.h). Round trips per
 * batch: BEGIN, COPY, one upsert per table, one offsets UPDATE, COMMIT;
 * never one per row. */
#include "store/batch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka.h"
#include "common/timefmt.h"
#include "store/schema.h"

#define STAGE_COLS                                                        \
        "site, device, metric, bucket, count, sum, min, max,"             \
        " first_value, first_ts, first_partition, first_offset,"          \
        " first_index, last_value, last_ts, last_partition, last_offset," \
        " last_index, version"

void store_batch_init(store_batch *b, size_t cap)
{
        memset(b, 0, sizeof(*b));
        b->cap = cap;
        b->rows = calloc(cap, sizeof(*b->rows));
        if (!b->rows)
                abort();
}

void store_batch_free(store_batch *b)
{
        free(b->rows);
        free(b->parts);
        tally_buf_free(&b->copy);
        memset(b, 0, sizeof(*b));
}

void store_batch_clear(store_batch *b)
{
        b->n = 0;
        b->nparts = 0;
        b->dlq = 0;
        b->opened_ms = 0;
}

store_row *store_batch_next_row(store_batch *b)
{
        return b->n < b->cap ? &b->rows[b->n] : NULL;
}

void store_batch_commit_row(store_batch *b, int32_t partition)
{
        b->rows[b->n++].partition = partition;
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
        return store_pg_exec(conn,
                "CREATE TEMP TABLE IF NOT EXISTS store_stage ("
                " site text, device text, metric text, bucket timestamptz,"
                " count bigint, sum float8, min float8, max float8,"
                " first_value float8, first_ts timestamptz,"
                " first_partition int, first_offset bigint, first_index int,"
                " last_value float8, last_ts timestamptz,"
                " last_partition int, last_offset bigint, last_index int,"
                " version bigint) ON COMMIT DELETE ROWS",
                "staging table", err);
}

/* ---- COPY text --------------------------------------------------------- */

static void copy_text(tally_buf *out, const char *s)
{
        for (; *s; s++) {
                switch (*s) {
                case '\\': tally_buf_append(out, "\\\\", 2); break;
                case '\t': tally_buf_append(out, "\\t", 2); break;
                case '\n': tally_buf_append(out, "\\n", 2); break;
                case '\r': tally_buf_append(out, "\\r", 2); break;
                default: tally_buf_putc(out, (unsigned char)*s);
                }
        }
        tally_buf_putc(out, '\t');
}

static void copy_ts(tally_buf *out, int64_t ms)
{
        char ts[32];
        size_t n = tally_time_format(ms, ts);

        tally_buf_append(out, ts, n);
        tally_buf_putc(out, '\t');
}

static void copy_edge(tally_buf *out, const tally_rollup_edge *e)
{
        tally_buf_printf(out, "%.17g\t", e->value);
        copy_ts(out, e->ts_ms);
        tally_buf_printf(out, "%" PRId32 "\t%" PRId64 "\t%" PRId32 "\t",
                         e->pos.partition, e->pos.offset, e->pos.index);
}

static void build_copy(store_batch *b)
{
        tally_buf *out = &b->copy;

        tally_buf_reset(out);
        for (size_t i = 0; i < b->n; i++) {
                const tally_rollup *r = &b->rows[i].r;

                copy_text(out, r->site);
                copy_text(out, r->device);
                copy_text(out, r->metric);
                copy_ts(out, r->start_ms);
                tally_buf_printf(out, "%" PRId64 "\t%.17g\t%.17g\t%.17g\t",
                                 r->count, r->sum, r->min, r->max);
                copy_edge(out, &r->first);
                copy_edge(out, &r->last);
                tally_buf_printf(out, "%" PRId64 "\n", r->version);
        }
}

static store_pg_rc copy_rows(PGconn *conn, store_batch *b, tally_err *err)
{
        PGresult *res = PQexec(conn, "COPY store_stage (" STAGE_COLS
                                     ") FROM STDIN");
        store_pg_rc rc;

        if (PQresultStatus(res) != PGRES_COPY_IN) {
                rc = store_pg_fail(conn, res, "copy start", err);
                PQclear(res);
                return rc;
        }
        PQclear(res);
        /* a failed send means the connection is gone: retried whole */
        if (PQputCopyData(conn, (const char *)b->copy.data,
                          (int)b->copy.len) != 1 ||
            PQputCopyEnd(conn, NULL) != 1) {
                rc = store_pg_fail(conn, NULL, "copy send", err);
                while ((res = PQgetResult(conn)))
                        PQclear(res);
                return rc == STORE_PG_OK ? STORE_PG_RETRY : rc;
        }
        rc = STORE_PG_OK;
        while ((res = PQgetResult(conn))) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
                        rc = store_pg_fail(conn, res, "copy end", err);
                PQclear(res);
        }
        return rc;
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

static void finest_sql(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "INSERT INTO tally.rollup_%s_data AS t (" STAGE_COLS ")"
                " SELECT DISTINCT ON (site, device, metric, bucket) "
                STAGE_COLS " FROM store_stage"
                " ORDER BY site, device, metric, bucket, version DESC"
                " ON CONFLICT (site, device, metric, bucket) DO UPDATE SET"
                SET_COLS " WHERE excluded.version > t.version", l);
}

/* first = smallest (first_ts, origin), last = largest (last_ts, origin);
 * sums added in bucket order so that every run gives the same bits. */
#define FIRST_ORDER "ORDER BY f.first_ts, f.first_partition, " \
        "f.first_offset, f.first_index"
#define LAST_ORDER "ORDER BY f.last_ts DESC, f.last_partition DESC, " \
        "f.last_offset DESC, f.last_index DESC"

/* One LATERAL aggregate per touched (series, coarse bucket): each is an
 * index range scan on the finest table's primary key, whatever the
 * planner's statistics (a join here may sort the whole finest table). */
static void coarse_sql(tally_buf *q, const char *fine, const char *l,
                       int64_t ms)
{
        tally_buf_printf(q,
                "INSERT INTO tally.rollup_%s_data AS t (" STAGE_COLS ")"
                " SELECT k.site, k.device, k.metric, k.cb, a.count, a.sum,"
                " a.min, a.max, a.first_value, a.first_ts,"
                " a.first_partition, a.first_offset, a.first_index,"
                " a.last_value, a.last_ts, a.last_partition, a.last_offset,"
                " a.last_index, a.version"
                " FROM (SELECT DISTINCT site, device, metric,"
                "  date_bin(interval '%" PRId64 " milliseconds', bucket,"
                "  timestamptz '1970-01-01 00:00:00+00') AS cb"
                "  FROM store_stage) k,"
                " LATERAL (SELECT sum(f.count) AS count,"
                " sum(f.sum ORDER BY f.bucket) AS sum,"
                " min(f.min) AS min, max(f.max) AS max,"
                " (array_agg(f.first_value " FIRST_ORDER "))[1] AS first_value,"
                " min(f.first_ts) AS first_ts,"
                " (array_agg(f.first_partition " FIRST_ORDER "))[1] AS first_partition,"
                " (array_agg(f.first_offset " FIRST_ORDER "))[1] AS first_offset,"
                " (array_agg(f.first_index " FIRST_ORDER "))[1] AS first_index,"
                " (array_agg(f.last_value " LAST_ORDER "))[1] AS last_value,"
                " max(f.last_ts) AS last_ts,"
                " (array_agg(f.last_partition " LAST_ORDER "))[1] AS last_partition,"
                " (array_agg(f.last_offset " LAST_ORDER "))[1] AS last_offset,"
                " (array_agg(f.last_index " LAST_ORDER "))[1] AS last_index,"
                " sum(f.version) AS version"
                "  FROM tally.rollup_%s_data f WHERE f.site = k.site"
                "  AND f.device = k.device AND f.metric = k.metric"
                "  AND f.bucket >= k.cb"
                "  AND f.bucket < k.cb + interval '%" PRId64 " milliseconds') a"
                " WHERE a.count > 0"
                " ON CONFLICT (site, device, metric, bucket) DO UPDATE SET"
                SET_COLS " WHERE t.version IS DISTINCT FROM excluded.version"
                " OR t.count IS DISTINCT FROM excluded.count",
                l, ms, fine, ms);
}

static store_pg_rc exec_q(PGconn *conn, tally_buf *q, const char *what,
                          tally_err *err)
{
        tally_buf_putc(q, 0);
        return store_pg_exec(conn, (const char *)q->data, what, err);
}

/* UPDATE ... WHERE epoch = ours RETURNING partition; the partitions not
 * returned were taken over. */
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

int store_batch_write(PGconn *conn, store_batch *b, const char *topic,
                      const tally_windows *w, int32_t *stale, size_t *nstale,
                      tally_err *err)
{
        tally_buf q = TALLY_BUF_INIT;
        char fine[24];
        int rc;

        *nstale = 0;
        /* partitions first, in their own transactions (they lock the
         * parent table; the batch transaction should not wait on that) */
        for (size_t i = 0; i < b->n; i++) {
                const tally_rollup *r = &b->rows[i].r;

                for (int k = 0; k < w->n; k++) {
                        int64_t s = tally_window_start(r->start_ms, w->ms[k]);

                        if ((rc = store_partition_ensure(conn, w->ms[k], s,
                                                         err)))
                                return rc;
                }
        }
        if ((rc = store_pg_exec(conn, "BEGIN", "begin", err)))
                return rc;
        store_window_label(w->ms[0], fine, sizeof(fine));
        if (b->n) {
                build_copy(b);
                if ((rc = copy_rows(conn, b, err)))
                        goto fail;
                /* temp tables get no autovacuum statistics; without them
                 * the planner may scan whole tables for the merges */
                if ((rc = store_pg_exec(conn, "ANALYZE store_stage",
                                        "analyze staging", err)))
                        goto fail;
                finest_sql(&q, fine);
                if ((rc = exec_q(conn, &q, "upsert finest", err)))
                        goto fail;
                for (int k = 1; k < w->n; k++) {
                        char l[24];

                        store_window_label(w->ms[k], l, sizeof(l));
                        tally_buf_reset(&q);
                        coarse_sql(&q, fine, l, w->ms[k]);
                        if ((rc = exec_q(conn, &q, "upsert coarse", err)))
                                goto fail;
                }
        }
        if ((rc = update_offsets(conn, b, topic, stale, nstale, err)))
                goto fail;
        rc = store_pg_exec(conn, "COMMIT", "commit", err);
        tally_buf_free(&q);
        /* after the first sizeable batch into a fresh partition, give the
         * planner statistics (a failure here is retried like any other:
         * the batch is idempotent) */
        if (!rc && b->n >= 1000 && w->n > 1)
                rc = store_partition_analyze_once(conn, w->ms[0],
                                                  b->rows[0].r.start_ms, err);
        return rc;
fail:
        tally_buf_free(&q);
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
}
