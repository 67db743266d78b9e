/* store/schema.c -- migrations, per-window tables and time partitions.
 *
 * Static objects (schema, roles, offsets table) are numbered migrations
 * recorded in tally.schema_migrations. Per-window objects depend on the
 * configured window sizes, so they are created idempotently (IF NOT
 * EXISTS / OR REPLACE) on every start, under the same advisory lock. */
#include "store/schema.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "store/coarse_sql.h"

#define DAY_MS INT64_C(86400000)
#define SCHEMA_LOCK_KEY INT64_C(7216373200001)  /* "tally" schema lock */
#define PART_LOCK_KEY INT64_C(7216373200002)    /* partition creation */

static int64_t retention_ms;    /* 0 = keep everything */
/* Coarse rows are updated in place by nearly every batch: leave room on
 * their pages so that the updates are HOT (no new index entries; none
 * of the indexed columns ever changes). */
#define COARSE_FILLFACTOR 70
static _Atomic int64_t finest_ms;       /* set by store_schema_migrate */

void store_schema_set_retention(int64_t ms)
{
        retention_ms = ms;
}

/* Is a partition [start, start + span) wholly past retention? */
static int expired(int64_t start, int64_t span)
{
        return retention_ms > 0 &&
               start + span <= tally_now_wall_ms() - retention_ms;
}

static const char *const migrations[] = {
        /* 1: offsets, roles */
        "CREATE TABLE IF NOT EXISTS tally.store_offsets ("
        " topic text NOT NULL,"
        " partition integer NOT NULL,"
        " next_offset bigint NOT NULL DEFAULT -1,"
        " epoch bigint NOT NULL DEFAULT 0,"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (topic, partition));"
        "COMMENT ON TABLE tally.store_offsets IS 'tally-store positions in "
        "the rollups topic (next_offset -1 = from the beginning) and the "
        "owner epoch bumped on every assignment';"
        "DO $$ BEGIN"
        " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tally_writer')"
        " THEN CREATE ROLE tally_writer NOLOGIN; END IF;"
        " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tally_reader')"
        " THEN CREATE ROLE tally_reader NOLOGIN; END IF;"
        " END $$;"
        "GRANT USAGE ON SCHEMA tally TO tally_writer, tally_reader;"
        "GRANT SELECT, INSERT, UPDATE ON tally.store_offsets TO tally_writer;",
        /* 2: series ids (store/series.h) */
        "CREATE TABLE IF NOT EXISTS tally.series ("
        " id bigint PRIMARY KEY,"
        " site text COLLATE \"C\" NOT NULL,"
        " device text COLLATE \"C\" NOT NULL,"
        " metric text COLLATE \"C\" NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now());"
        "CREATE INDEX IF NOT EXISTS series_device ON tally.series (device);"
        "CREATE INDEX IF NOT EXISTS series_site_metric"
        " ON tally.series (site, metric);"
        "COMMENT ON TABLE tally.series IS 'one row per (site, device, "
        "metric); id is a fixed 63-bit hash of the names (docs/schema.md) "
        "that the rollup tables are keyed by';"
        "GRANT SELECT, INSERT ON tally.series TO tally_writer;"
        "GRANT SELECT ON tally.series TO tally_reader;",
};

void store_window_label(int64_t ms, char *out, size_t cap)
{
        if (ms % DAY_MS == 0)
                snprintf(out, cap, "%" PRId64 "d", ms / DAY_MS);
        else if (ms % 3600000 == 0)
                snprintf(out, cap, "%" PRId64 "h", ms / 3600000);
        else if (ms % 60000 == 0)
                snprintf(out, cap, "%" PRId64 "m", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(out, cap, "%" PRId64 "s", ms / 1000);
        else
                snprintf(out, cap, "%" PRId64 "ms", ms);
}

int64_t store_partition_span(int64_t window_ms)
{
        if (window_ms < 3600000)
                return DAY_MS;
        if (window_ms < DAY_MS)
                return 7 * DAY_MS;
        return 28 * DAY_MS;
}

#define ROLLUP_COLUMNS                                                  \
        " series bigint NOT NULL,"                                      \
        " bucket timestamptz NOT NULL,"                                 \
        " count bigint NOT NULL,"                                       \
        " sum double precision NOT NULL,"                               \
        " min double precision NOT NULL,"                               \
        " max double precision NOT NULL,"                               \
        " first_value double precision NOT NULL,"                       \
        " first_ts timestamptz NOT NULL,"                               \
        " first_partition integer NOT NULL,"                            \
        " first_offset bigint NOT NULL,"                                \
        " first_index integer NOT NULL,"                                \
        " last_value double precision NOT NULL,"                        \
        " last_ts timestamptz NOT NULL,"                                \
        " last_partition integer NOT NULL,"                             \
        " last_offset bigint NOT NULL,"                                 \
        " last_index integer NOT NULL,"                                 \
        " version bigint NOT NULL,"                                     \
        " updated_at timestamptz NOT NULL DEFAULT now(),"

/* One table per resolution keyed by (series, bucket): the only index,
 * integer-keyed. "One device over time" and "one site and metric" find
 * their series in tally.series (indexed by device and by site, metric),
 * then read each series' buckets by the primary key. A coarse resolution
 * also has its delta table (what batches added, not folded in yet: no
 * index, appended to) and the view tally.rollup_<w>_rows merging the two
 * (store/coarse_sql.h); the analysts' view reads that one. */
static void window_sql(tally_buf *b, int64_t ms, int finest)
{
        char l[24];

        store_window_label(ms, l, sizeof(l));
        tally_buf_printf(b,
                "CREATE TABLE IF NOT EXISTS tally.rollup_%s_data (" ROLLUP_COLUMNS
                " PRIMARY KEY (series, bucket))"
                " PARTITION BY RANGE (bucket);"
                "CREATE TABLE IF NOT EXISTS tally.rollup_%s_data_default"
                " PARTITION OF tally.rollup_%s_data DEFAULT"
                " WITH (fillfactor = %d);"
                "COMMENT ON TABLE tally.rollup_%s_data IS '%s rollups per "
                "(series, bucket)%s; query the view tally.rollup_%s';"
                "GRANT SELECT, INSERT, UPDATE, DELETE ON tally.rollup_%s_data"
                " TO tally_writer;",
                l, l, l, finest ? 100 : COARSE_FILLFACTOR, l, l,
                finest ? ", written from tally.rollups"
                       : ", merged from the finest rows; the deltas in "
                         "tally.rollup_<w>_delta are not in it yet",
                l, l);
        if (!finest) {
                tally_buf_printf(b,
                        "CREATE TABLE IF NOT EXISTS tally.rollup_%s_delta"
                        " (LIKE tally.rollup_%s_data INCLUDING DEFAULTS);"
                        "COMMENT ON TABLE tally.rollup_%s_delta IS 'what "
                        "batches added to %s rows, not folded into "
                        "tally.rollup_%s_data yet';"
                        "GRANT SELECT, INSERT, DELETE ON tally.rollup_%s_delta"
                        " TO tally_writer;",
                        l, l, l, l, l, l);
                store_sql_rows_view(b, l);
                tally_buf_printf(b,
                        "GRANT SELECT ON tally.rollup_%s_rows"
                        " TO tally_reader, tally_writer;", l);
        }
        store_sql_named_view(b, l, !finest);
        tally_buf_printf(b,
                "GRANT SELECT ON tally.rollup_%s TO tally_reader, tally_writer;",
                l);
}

/* Rollup tables from before tally.series (keyed by the names) cannot be
 * written by this version: refuse with a clear error, never mix. */
static store_pg_rc check_layout(PGconn *conn, tally_err *err)
{
        PGresult *res = PQexec(conn,
                "SELECT c.table_name FROM information_schema.columns c"
                " WHERE c.table_schema = 'tally'"
                " AND c.table_name ~ '^rollup_[0-9a-z]+_data$'"
                " AND c.column_name = 'device' LIMIT 1");
        store_pg_rc rc = STORE_PG_OK;

        if (PQresultStatus(res) != PGRES_TUPLES_OK)
                rc = store_pg_fail(conn, res, "check layout", err);
        else if (PQntuples(res) > 0) {
                tally_err_set(err, "schema", "tally.%s has the layout keyed "
                              "by (site, device, metric) of an older "
                              "tally-store; rename or drop it "
                              "(docs/schema.md)", PQgetvalue(res, 0, 0));
                rc = STORE_PG_FATAL;
        }
        PQclear(res);
        return rc;
}

static store_pg_rc run_migrations(PGconn *conn, tally_err *err)
{
        PGresult *res;
        int have;
        store_pg_rc rc;

        rc = store_pg_exec(conn,
                "CREATE SCHEMA IF NOT EXISTS tally;"
                "CREATE TABLE IF NOT EXISTS tally.schema_migrations ("
                " version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                "schema_migrations", err);
        if (rc)
                return rc;
        res = PQexec(conn, "SELECT coalesce(max(version), 0) "
                           "FROM tally.schema_migrations");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(conn, res, "read migrations", err);
                PQclear(res);
                return rc;
        }
        have = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
        for (int v = have + 1;
             v <= (int)(sizeof(migrations) / sizeof(*migrations)); v++) {
                tally_buf b = TALLY_BUF_INIT;

                tally_buf_printf(&b, "BEGIN;%s;INSERT INTO "
                                 "tally.schema_migrations(version) VALUES "
                                 "(%d);COMMIT", migrations[v - 1], v);
                tally_buf_putc(&b, 0);
                rc = store_pg_exec(conn, (char *)b.data, "migration", err);
                tally_buf_free(&b);
                if (rc) {
                        PQclear(PQexec(conn, "ROLLBACK"));
                        return rc;
                }
                tally_log_info("schema_migrated", "version=%d", v);
        }
        return STORE_PG_OK;
}

static store_pg_rc create_partition(PGconn *conn, int64_t window_ms,
                                    int64_t part_start, tally_err *err);

store_pg_rc store_schema_migrate(PGconn *conn, const tally_windows *w,
                                 int64_t ahead_ms, tally_err *err)
{
        char sql[128];
        tally_buf b = TALLY_BUF_INIT;
        store_pg_rc rc;
        int64_t now = tally_now_wall_ms();

        finest_ms = w->ms[0];
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%" PRId64 ")",
                 SCHEMA_LOCK_KEY);
        if ((rc = store_pg_exec(conn, sql, "schema lock", err)))
                return rc;
        if ((rc = run_migrations(conn, err)) || (rc = check_layout(conn, err)))
                goto out;
        tally_buf_printf(&b, "BEGIN;");
        for (int i = 0; i < w->n; i++)
                window_sql(&b, w->ms[i], i == 0);
        tally_buf_printf(&b, "COMMIT");
        tally_buf_putc(&b, 0);
        rc = store_pg_exec(conn, (char *)b.data, "window tables", err);
        if (rc) {
                PQclear(PQexec(conn, "ROLLBACK"));
                goto out;
        }
        for (int i = 0; i < w->n; i++) {
                int64_t span = store_partition_span(w->ms[i]);
                int64_t from = tally_window_start(now - 2 * DAY_MS, span);

                for (int64_t t = from; t <= now + ahead_ms; t += span)
                        if (!expired(t, span) && (rc = create_partition(conn, w->ms[i], t, err)))
                                goto out;
        }
out:
        tally_buf_free(&b);
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%" PRId64 ")",
                 SCHEMA_LOCK_KEY);
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, sql));
        return rc;
}

/* ---- partitions -------------------------------------------------------- */

#define CACHE_SLOTS 4096
/* (window, partition start) sets, shared by the threads of this process */
typedef struct part_set {
        pthread_mutex_t mu;
        int used;
        struct { int64_t window, start; } slot[CACHE_SLOTS];
} part_set;

static part_set created = {PTHREAD_MUTEX_INITIALIZER, 0, {{0, 0}}};

static size_t set_slot(int64_t window, int64_t start)
{
        uint64_t h = (uint64_t)window * 0x9e3779b97f4a7c15u ^
                     (uint64_t)start * 0xc2b2ae3d27d4eb4fu;

        return (size_t)(h % CACHE_SLOTS);
}

static int set_has(part_set *set, int64_t window, int64_t start)
{
        int found = 0;

        pthread_mutex_lock(&set->mu);
        for (size_t i = set_slot(window, start); set->slot[i].window;
             i = (i + 1) % CACHE_SLOTS) {
                if (set->slot[i].window == window &&
                    set->slot[i].start == start) {
                        found = 1;
                        break;
                }
        }
        pthread_mutex_unlock(&set->mu);
        return found;
}

static void set_add(part_set *set, int64_t window, int64_t start)
{
        size_t i;

        pthread_mutex_lock(&set->mu);
        if (set->used >= CACHE_SLOTS / 2) {     /* keep probing short */
                memset(set->slot, 0, sizeof(set->slot));
                set->used = 0;
        }
        for (i = set_slot(window, start); set->slot[i].window;
             i = (i + 1) % CACHE_SLOTS)
                if (set->slot[i].window == window &&
                    set->slot[i].start == start)
                        goto out;
        set->slot[i].window = window;
        set->slot[i].start = start;
        set->used++;
out:
        pthread_mutex_unlock(&set->mu);
}

static void set_clear(part_set *set)
{
        pthread_mutex_lock(&set->mu);
        memset(set->slot, 0, sizeof(set->slot));
        set->used = 0;
        pthread_mutex_unlock(&set->mu);
}

static void part_name(int64_t window_ms, int64_t start, char *out,
                      size_t cap)
{
        char l[24], ts[32];

        store_window_label(window_ms, l, sizeof(l));
        tally_time_format(start, ts);
        snprintf(out, cap, "rollup_%s_data_p%.4s%.2s%.2s", l, ts, ts + 5,
                 ts + 8);
}

/* One short transaction: creates the partition unless it exists or the
 * DEFAULT partition already holds rows of its range (creating it would
 * then fail; those buckets simply stay in DEFAULT). */
static store_pg_rc create_partition(PGconn *conn, int64_t window_ms,
                                    int64_t part_start, tally_err *err)
{
        char name[96], l[24], lo[32], hi[32], sql[1400];
        int64_t span = store_partition_span(window_ms);
        store_pg_rc rc;

        if (set_has(&created, window_ms, part_start))
                return STORE_PG_OK;
        store_window_label(window_ms, l, sizeof(l));
        part_name(window_ms, part_start, name, sizeof(name));
        tally_time_format(part_start, lo);
        tally_time_format(part_start + span, hi);
        snprintf(sql, sizeof(sql),
                 "BEGIN;SELECT pg_advisory_xact_lock(%" PRId64 ");"
                 "DO $$ BEGIN"
                 " IF to_regclass('tally.%s') IS NULL AND NOT EXISTS ("
                 "  SELECT 1 FROM tally.rollup_%s_data_default"
                 "  WHERE bucket >= '%s' AND bucket < '%s') THEN"
                 "  CREATE TABLE tally.%s PARTITION OF tally.rollup_%s_data"
                 "  FOR VALUES FROM ('%s') TO ('%s') WITH (fillfactor = %d);"
                 " END IF; END $$;COMMIT",
                 PART_LOCK_KEY, name, l, lo, hi, name, l, lo, hi,
                 window_ms > finest_ms ? COARSE_FILLFACTOR : 100);
        rc = store_pg_exec(conn, sql, "create partition", err);
        if (rc) {
                if (PQstatus(conn) == CONNECTION_OK)
                        PQclear(PQexec(conn, "ROLLBACK"));
                return rc;
        }
        set_add(&created, window_ms, part_start);
        return STORE_PG_OK;
}

store_pg_rc store_partition_ensure(PGconn *conn, int64_t window_ms,
                                   int64_t start_ms, tally_err *err)
{
        int64_t span = store_partition_span(window_ms);
        int64_t part = tally_window_start(start_ms, span);
        int64_t now = tally_now_wall_ms();

        if (part + span < now - 35 * DAY_MS || part > now + 35 * DAY_MS ||
            expired(part, span))
                return STORE_PG_OK;     /* DEFAULT partition takes it */
        return create_partition(conn, window_ms, part, err);
}

store_pg_rc store_retention_apply(PGconn *conn, const tally_windows *w,
                                  int64_t retention_ms, int *dropped,
                                  tally_err *err)
{
        int64_t cutoff = tally_now_wall_ms() - retention_ms;
        char cut[32];
        store_pg_rc rc = STORE_PG_OK;

        *dropped = 0;
        tally_time_format(cutoff, cut);
        for (int i = 0; i < w->n; i++) {
                char l[24], sql[512];
                int64_t span = store_partition_span(w->ms[i]);
                PGresult *res;

                store_window_label(w->ms[i], l, sizeof(l));
                snprintf(sql, sizeof(sql),
                         "SELECT c.relname FROM pg_inherits i"
                         " JOIN pg_class c ON c.oid = i.inhrelid"
                         " WHERE i.inhparent = 'tally.rollup_%s_data'::regclass"
                         " AND c.relname ~ '_p[0-9]{8}$'", l);
                res = PQexec(conn, sql);
                if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                        rc = store_pg_fail(conn, res, "list partitions", err);
                        PQclear(res);
                        return rc;
                }
                for (int r = 0; r < PQntuples(res); r++) {
                        const char *name = PQgetvalue(res, r, 0);
                        const char *d = name + strlen(name) - 8;
                        char iso[40];
                        int64_t start;

                        snprintf(iso, sizeof(iso),
                                 "%.4s-%.2s-%.2sT00:00:00Z", d, d + 4, d + 6);
                        if (tally_time_parse(iso, strlen(iso), &start) ||
                            start + span > cutoff)
                                continue;
                        snprintf(sql, sizeof(sql), "DROP TABLE tally.%s",
                                 name);
                        if ((rc = store_pg_exec(conn, sql, "drop partition",
                                                err)))
                                break;
                        (*dropped)++;
                        tally_log_info("partition_dropped", "table=%s", name);
                }
                PQclear(res);
                if (rc)
                        return rc;
                if (*dropped)           /* forget dropped partitions */
                        set_clear(&created);
                snprintf(sql, sizeof(sql),
                         "DELETE FROM tally.rollup_%s_data_default"
                         " WHERE bucket < '%s'", l, cut);
                if ((rc = store_pg_exec(conn, sql, "retention default", err)))
                        return rc;
        }
        return rc;
}
