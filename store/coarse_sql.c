/* store/coarse_sql.c -- the SQL text of the coarse rows (see
 * coarse_sql.h). */
#include "store/coarse_sql.h"

#include <stdio.h>

#define MERGED_COLS                                                       \
        " series, bucket, sum(count)::bigint AS count, sum(sum) AS sum,"  \
        " min(min) AS min, max(max) AS max,"                              \
        " min(first_value) FILTER (WHERE fr = 1) AS first_value,"         \
        " min(first_ts) AS first_ts,"                                     \
        " min(first_partition) FILTER (WHERE fr = 1) AS first_partition," \
        " min(first_offset) FILTER (WHERE fr = 1) AS first_offset,"       \
        " min(first_index) FILTER (WHERE fr = 1) AS first_index,"         \
        " min(last_value) FILTER (WHERE lr = 1) AS last_value,"           \
        " max(last_ts) AS last_ts,"                                       \
        " min(last_partition) FILTER (WHERE lr = 1) AS last_partition,"   \
        " min(last_offset) FILTER (WHERE lr = 1) AS last_offset,"         \
        " min(last_index) FILTER (WHERE lr = 1) AS last_index,"           \
        " sum(version)::bigint AS version"

void store_sql_merged(tally_buf *q, const char *src, int with_updated_at)
{
        tally_buf_printf(q,
                "SELECT" MERGED_COLS "%s FROM (SELECT u.*,"
                " row_number() OVER (PARTITION BY series, bucket "
                STORE_FIRST_ORDER ") AS fr,"
                " row_number() OVER (PARTITION BY series, bucket "
                STORE_LAST_ORDER ") AS lr FROM (%s) u) x"
                " GROUP BY series, bucket",
                with_updated_at ? ", max(updated_at) AS updated_at" : "",
                src);
}

#define FIRST_KEY(r) "(" r ".first_ts, " r ".first_partition, " \
        r ".first_offset, " r ".first_index)"
#define LAST_KEY(r) "(" r ".last_ts, " r ".last_partition, " \
        r ".last_offset, " r ".last_index)"
#define FIRST_SET(c) " " c " = CASE WHEN " FIRST_KEY("excluded") " < " \
        FIRST_KEY("t") " THEN excluded." c " ELSE t." c " END,"
#define LAST_SET(c) " " c " = CASE WHEN " LAST_KEY("excluded") " > " \
        LAST_KEY("t") " THEN excluded." c " ELSE t." c " END,"

/* the first or last column c of delta md merged with stored row r
 * (NULL when the key has no stored row yet) */
#define PICK_FIRST(c) " CASE WHEN r.series IS NULL OR " FIRST_KEY("md") \
        " < " FIRST_KEY("r") " THEN md." c " ELSE r." c " END AS " c ","
#define PICK_LAST(c) " CASE WHEN r.series IS NULL OR " LAST_KEY("md") \
        " > " LAST_KEY("r") " THEN md." c " ELSE r." c " END AS " c ","

/* The keys with deltas, merged with their stored rows: the deltas are
 * merged per key first (every query reads the whole delta table, which
 * the fold keeps small), then each key's stored row is looked up by the
 * primary key (the LIMIT keeps the LATERAL from becoming a join that
 * reads the whole table) -- after any filter on the series, when the
 * caller joins tally.series to this. */
static void with_deltas(tally_buf *q, const char *l)
{
        char src[64];

        snprintf(src, sizeof(src), "SELECT * FROM tally.rollup_%s_delta", l);
        tally_buf_printf(q,
                "SELECT md.series, md.bucket,"
                " md.count + coalesce(r.count, 0) AS count,"
                " md.sum + coalesce(r.sum, 0) AS sum,"
                " least(md.min, r.min) AS min,"
                " greatest(md.max, r.max) AS max,"
                PICK_FIRST("first_value") PICK_FIRST("first_ts")
                PICK_FIRST("first_partition") PICK_FIRST("first_offset")
                PICK_FIRST("first_index")
                PICK_LAST("last_value") PICK_LAST("last_ts")
                PICK_LAST("last_partition") PICK_LAST("last_offset")
                PICK_LAST("last_index")
                " md.version + coalesce(r.version, 0) AS version,"
                " greatest(md.updated_at, r.updated_at) AS updated_at"
                " FROM (");
        store_sql_merged(q, src, 1);
        tally_buf_printf(q, ") md LEFT JOIN LATERAL (SELECT * FROM"
                " tally.rollup_%s_data r WHERE r.series = md.series"
                " AND r.bucket = md.bucket LIMIT 1) r ON true", l);
}

void store_sql_rows_view(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "CREATE OR REPLACE VIEW tally.rollup_%s_rows AS"
                " SELECT " STORE_STAGE_COLS ", updated_at"
                " FROM tally.rollup_%s_data r"
                " WHERE NOT EXISTS (SELECT FROM tally.rollup_%s_delta d"
                " WHERE d.series = r.series AND d.bucket = r.bucket)"
                " UNION ALL SELECT " STORE_STAGE_COLS ", updated_at FROM (",
                l, l, l);
        with_deltas(q, l);
        tally_buf_printf(q, ") m;");
}

#define NAMED_COLS(r)                                                     \
        " s.site, s.device, s.metric, " r ".bucket, " r ".count, "       \
        r ".sum, " r ".sum / " r ".count AS mean, " r ".min, " r ".max, " \
        r ".first_value, " r ".first_ts, " r ".last_value, "              \
        r ".last_ts, " r ".version, " r ".updated_at"

void store_sql_named_view(tally_buf *q, const char *l)
{
        /* tally.series is joined inside each branch, so that a filter on
         * the names selects the series before any row is read */
        tally_buf_printf(q,
                "CREATE OR REPLACE VIEW tally.rollup_%s AS"
                " SELECT" NAMED_COLS("r") " FROM tally.rollup_%s_data r"
                " JOIN tally.series s ON s.id = r.series"
                " WHERE NOT EXISTS (SELECT FROM tally.rollup_%s_delta d"
                " WHERE d.series = r.series AND d.bucket = r.bucket)"
                " UNION ALL SELECT" NAMED_COLS("m") " FROM (", l, l, l);
        with_deltas(q, l);
        tally_buf_printf(q, ") m JOIN tally.series s ON s.id = m.series;");
}

void store_sql_fold(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "WITH m AS (DELETE FROM tally.rollup_%s_delta RETURNING "
                STORE_STAGE_COLS ")"
                " INSERT INTO tally.rollup_%s_data AS t (" STORE_STAGE_COLS ") ",
                l, l);
        store_sql_merged(q, "SELECT * FROM m", 0);
        tally_buf_printf(q,
                " ON CONFLICT (series, bucket) DO UPDATE SET"
                " count = t.count + excluded.count,"
                " sum = t.sum + excluded.sum,"
                " min = least(t.min, excluded.min),"
                " max = greatest(t.max, excluded.max),"
                FIRST_SET("first_value") FIRST_SET("first_ts")
                FIRST_SET("first_partition") FIRST_SET("first_offset")
                FIRST_SET("first_index")
                LAST_SET("last_value") LAST_SET("last_ts")
                LAST_SET("last_partition") LAST_SET("last_offset")
                LAST_SET("last_index")
                " version = t.version + excluded.version,"
                " updated_at = now()");
}
