/* store/schema.h -- the PostgreSQL schema of tally (docs/schema.md):
 * versioned migrations (tally.schema_migrations, applied under an
 * advisory lock so that copies starting together do not race), one
 * range-partitioned table and one view per window size, and the time
 * partitions (created ahead of need and on demand; a DEFAULT partition
 * catches the rest). The partition cache is shared by all threads and
 * guarded by its own mutex; each call uses the caller's connection. */
#pragma once
#include <libpq-fe.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "store/pg.h"

/* "1m", "5m", "1h", "1d", "30s", "1500ms": names tables and views. */
void store_window_label(int64_t ms, char *out, size_t cap);

/* Span of one time partition for a window size. */
int64_t store_partition_span(int64_t window_ms);

/* Applies missing migrations, then creates the per-window tables, views,
 * grants and the partitions around now (now - 2 days .. now + ahead_ms).
 * Idempotent; takes the advisory lock for its duration. */
store_pg_rc store_schema_migrate(PGconn *conn, const tally_windows *w,
                                 int64_t ahead_ms, tally_err *err);

/* Makes sure the partition holding bucket start_ms of window w exists,
 * unless it is outside [now - 35 days, now + 35 days] (those buckets go
 * to the DEFAULT partition) or the DEFAULT partition already holds rows
 * of its range. Runs in its own short transaction: call it outside the
 * batch transaction. Cached: cheap when the partition is known. */
store_pg_rc store_partition_ensure(PGconn *conn, int64_t window_ms,
                                   int64_t start_ms, tally_err *err);

/* Partitions wholly older than now - retention_ms are never created (0 =
 * no limit). Set once from main before any other call. */
void store_schema_set_retention(int64_t retention_ms);

/* Drops the partitions of every window whose whole range is older than
 * now - retention_ms. Returns the number dropped via *dropped. */
store_pg_rc store_retention_apply(PGconn *conn, const tally_windows *w,
                                  int64_t retention_ms, int *dropped,
                                  tally_err *err);
