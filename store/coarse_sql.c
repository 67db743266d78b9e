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

/* one merged column: "expr AS col" in a SELECT, "col = expr" in an
 * upsert's SET */
static void put(tally_buf *q, int assign, const char *col, const char *expr)
{
        if (assign)
                tally_buf_printf(q, " %s = %s,", col, expr);
        else
                tally_buf_printf(q, " %s AS %s,", expr, col);
}

/* Row a merged into row b (b's columns NULL: b has no row), every column
 * but series, bucket and updated_at, each followed by a comma. */
static void merge_exprs(tally_buf *q, const char *a, const char *b,
                        int assign)
{
        static const char *const added[] = {"count", "sum", "version"};
        static const char *const edge[] = {"value", "ts", "partition",
                                           "offset", "index"};
        char e[512], col[32], ka[160], kb[160];

        for (size_t i = 0; i < sizeof(added) / sizeof(*added); i++) {
                snprintf(e, sizeof(e), "%s.%s + coalesce(%s.%s, 0)", a,
                         added[i], b, added[i]);
                put(q, assign, added[i], e);
        }
        snprintf(e, sizeof(e), "least(%s.min, %s.min)", a, b);
        put(q, assign, "min", e);
        snprintf(e, sizeof(e), "greatest(%s.max, %s.max)", a, b);
        put(q, assign, "max", e);
        for (int last = 0; last < 2; last++) {
                const char *w = last ? "last" : "first";

                /* first = smallest (ts, origin), last = largest */
                snprintf(ka, sizeof(ka), "(%s.%s_ts, %s.%s_partition,"
                         " %s.%s_offset, %s.%s_index)", a, w, a, w, a, w, a, w);
                snprintf(kb, sizeof(kb), "(%s.%s_ts, %s.%s_partition,"
                         " %s.%s_offset, %s.%s_index)", b, w, b, w, b, w, b, w);
                for (size_t i = 0; i < sizeof(edge) / sizeof(*edge); i++) {
                        snprintf(col, sizeof(col), "%s_%s", w, edge[i]);
                        snprintf(e, sizeof(e), "CASE WHEN %s.series IS NULL"
                                 " OR %s %s %s THEN %s.%s ELSE %s.%s END", b,
                                 ka, last ? ">" : "<", kb, a, col, b, col);
                        put(q, assign, col, e);
                }
        }
}

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
        tally_buf_printf(q, "SELECT md.series, md.bucket,");
        merge_exprs(q, "md", "r", 0);
        tally_buf_printf(q, " greatest(md.updated_at, r.updated_at)"
                         " AS updated_at FROM (");
        store_sql_merged(q, src, 1);
        tally_buf_printf(q, ") md LEFT JOIN LATERAL (SELECT * FROM"
                " tally.rollup_%s_data r WHERE r.series = md.series"
                " AND r.bucket = md.bucket LIMIT 1) r ON true", l);
}

/* the stored rows r of window %s without deltas */
#define NO_DELTAS " WHERE NOT EXISTS (SELECT FROM tally.rollup_%s_delta d" \
        " WHERE d.series = r.series AND d.bucket = r.bucket)"

void store_sql_rows_view(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "CREATE OR REPLACE VIEW tally.rollup_%s_rows AS"
                " SELECT " STORE_STAGE_COLS ", updated_at"
                " FROM tally.rollup_%s_data r" NO_DELTAS
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

void store_sql_named_view(tally_buf *q, const char *l, int deltas)
{
        tally_buf_printf(q,
                "CREATE OR REPLACE VIEW tally.rollup_%s AS"
                " SELECT" NAMED_COLS("r") " FROM tally.rollup_%s_data r"
                " JOIN tally.series s ON s.id = r.series", l, l);
        if (!deltas) {
                tally_buf_printf(q, ";");
                return;
        }
        /* tally.series is joined inside each branch, so that a filter on
         * the names selects the series before any row is read */
        tally_buf_printf(q, NO_DELTAS " UNION ALL SELECT" NAMED_COLS("m")
                         " FROM (", l);
        with_deltas(q, l);
        tally_buf_printf(q, ") m JOIN tally.series s ON s.id = m.series;");
}

void store_sql_fold(tally_buf *q, const char *l)
{
        tally_buf_printf(q,
                "WITH m AS (DELETE FROM tally.rollup_%s_delta RETURNING "
                STORE_STAGE_COLS ")"
                " INSERT INTO tally.rollup_%s_data AS t ("
                STORE_STAGE_COLS ") ",
                l, l);
        store_sql_merged(q, "SELECT * FROM m", 0);
        tally_buf_printf(q, " ON CONFLICT (series, bucket) DO UPDATE SET");
        merge_exprs(q, "excluded", "t", 1);
        tally_buf_printf(q, " updated_at = now()");
}
