/* store/batch.h -- one worker's batch of decoded rollups and the
 * PostgreSQL transaction that writes it (docs/schema.md, "How a batch is
 * written"): advance (and lock) the offsets rows of the batch's
 * partitions, fenced by their owner epoch; COPY the newest version per
 * key straight into the finest table and what it adds to the coarse rows
 * (merged in C: store/coarse.h) into their delta tables -- or, when a key
 * was stored before, redo it with the SQL merge from the stored
 * versions; COMMIT. Series are registered
 * before (store/series.h).
 * A batch is owned by one worker thread and reused (memory is bounded by
 * its capacity). Nothing here logs; results come back as codes + err. */
#pragma once
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/config.h"
#include "common/rollup.h"
#include "store/pg.h"
#include "store/series.h"

/* what a rollup adds to its row: everything but names, window and start */
typedef struct store_agg {
        int64_t count, version;
        double sum, min, max;
        tally_rollup_edge first, last;
} store_agg;

/* One rollup of the batch, compact (its names are in the batch's arena). */
typedef struct store_row {
        int64_t series;                 /* store_series_id of the names */
        uint64_t check;                 /* store_series_check */
        int64_t offset;                 /* in the rollups partition */
        int32_t partition;
        uint32_t names;                 /* "site\0device\0metric\0" in names */
        int64_t start_ms;               /* finest window start */
        store_agg a;
        int refused;                    /* series id taken: dead-letter */
} store_row;

typedef struct store_batch_part {
        int32_t partition;
        int64_t next_offset;            /* last offset in the batch + 1 */
        int64_t epoch;                  /* owner epoch from assignment */
} store_batch_part;

typedef struct store_batch {
        store_row *rows;
        size_t n, cap;
        tally_buf names;                /* the rows' names, back to back */
        store_batch_part *parts;
        size_t nparts, parts_cap;
        size_t dlq;                     /* records sent to the DLQ */
        int64_t opened_ms;              /* monotonic time of first record */
        tally_buf copy;                 /* COPY data, rebuilt per attempt */
        store_series_set known;         /* series registered by us */
        store_series_set fresh;         /* scratch: this batch's new ones */
        store_series_new *nv;           /* scratch: to register */
        unsigned char *bad;
        size_t nv_cap;
        uint32_t *ord;                  /* store_coarse_order */
        size_t nord, ord_cap;
        void *order_keys;               /* its sort keys (cap of them) */
        /* COPY data per coarse window k >= 1: what the batch adds to
         * each (series, coarse bucket), for the delta table */
        tally_buf coarse[TALLY_WINDOWS_MAX];
        size_t ncoarse[TALLY_WINDOWS_MAX];
        int merged_in_sql;              /* last write took the SQL path */
        /* timings of the last written batch, for the debug log */
        int64_t ms_fence, ms_merge, ms_commit;
} store_batch;

/* STORE_PG_OK / RETRY / FATAL, or STALE: some partitions' epochs moved on
 * (another owner); the transaction was rolled back and their partition
 * numbers are in stale[] (count *nstale). */
#define STORE_PG_STALE (-3)

/* Sizes every buffer of the batch for cap rows and touches them (see
 * batch.c): its memory is then its bound from the start. */
void store_batch_init(store_batch *b, size_t cap);
/* Touches every page of [p, p + n) (memory it will use anyway). */
void store_prefault(void *p, size_t n);
void store_batch_free(store_batch *b);
void store_batch_clear(store_batch *b);
static inline int store_batch_empty(const store_batch *b)
{
        return b->nparts == 0;
}
/* Adds a decoded rollup as the next row (the caller checked n < cap). */
void store_batch_add_row(store_batch *b, int32_t partition, int64_t offset,
                         const tally_rollup *r);
/* The names of a row. */
void store_row_names(const store_batch *b, const store_row *row,
                     const char **site, const char **device,
                     const char **metric);
/* The row as the rollup record it came from (window_ms: the finest). */
void store_row_rollup(const store_batch *b, const store_row *row,
                      int64_t window_ms, tally_rollup *r);
/* Records that offset of partition is consumed under epoch. */
void store_batch_offset(store_batch *b, int32_t partition, int64_t offset,
                        int64_t epoch);
/* Removes every row and offset of partition (it was taken over). */
void store_batch_drop_partition(store_batch *b, int32_t partition);

/* Registers the series of the batch that this worker has not registered
 * yet (one short transaction of its own). Rows whose series id is taken
 * by other names get refused = 1; *refused counts them. The caller
 * dead-letters them and calls store_batch_drop_refused. */
store_pg_rc store_batch_register(PGconn *conn, store_batch *b,
                                 size_t *refused, tally_err *err);
void store_batch_drop_refused(store_batch *b);

/* Once per new connection: session settings and the staging table. */
store_pg_rc store_batch_prepare(PGconn *conn, tally_err *err);

/* Writes the batch in one transaction (see top). windows->ms[0] is the
 * finest window. Partitions for the touched buckets are created first,
 * outside the transaction. */
int store_batch_write(PGconn *conn, store_batch *b, const char *topic,
                      const tally_windows *windows, int32_t *stale,
                      size_t *nstale, tally_err *err);
