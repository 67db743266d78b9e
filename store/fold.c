/* store/fold.c -- the fold transaction and its thread (see fold.h). */
#include "store/fold.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/signals.h"
#include "store/coarse_sql.h"
#include "store/schema.h"

#define FOLD_LOCK_KEY INT64_C(7216373200003)    /* one fold at a time */
#define FOLD_TICK_MS 100

struct store_folder {
        store_ctx *ctx;
        pthread_t th;
        atomic_int stop;
        PGconn *conn;
};

store_pg_rc store_fold_once(PGconn *conn, const tally_windows *w,
                            long long *rows, int *skipped, tally_err *err)
{
        tally_buf q = TALLY_BUF_INIT;
        PGresult *res;
        store_pg_rc rc;
        char l[24], sql[64];

        *rows = 0;
        *skipped = 0;
        if ((rc = store_pg_exec(conn, "BEGIN", "fold begin", err)))
                return rc;
        snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_xact_lock(%" PRId64
                 ")", FOLD_LOCK_KEY);
        res = PQexec(conn, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(conn, res, "fold lock", err);
                PQclear(res);
                goto fail;
        }
        *skipped = strcmp(PQgetvalue(res, 0, 0), "t") != 0;
        PQclear(res);
        if (*skipped) {
                PQclear(PQexec(conn, "ROLLBACK"));
                return STORE_PG_OK;
        }
        for (int k = 1; k < w->n; k++) {
                store_window_label(w->ms[k], l, sizeof(l));
                tally_buf_reset(&q);
                store_sql_fold(&q, l);
                tally_buf_putc(&q, 0);
                res = PQexec(conn, (const char *)q.data);
                if (PQresultStatus(res) != PGRES_COMMAND_OK) {
                        rc = store_pg_fail(conn, res, "fold", err);
                        PQclear(res);
                        goto fail;
                }
                *rows += atoll(PQcmdTuples(res));
                PQclear(res);
        }
        tally_buf_free(&q);
        return store_pg_exec(conn, "COMMIT", "fold commit", err);
fail:
        tally_buf_free(&q);
        if (PQstatus(conn) == CONNECTION_OK)
                PQclear(PQexec(conn, "ROLLBACK"));
        return rc;
}

/* Is a fold due? pending: deltas appended since the last fold, first:
 * when the oldest of them was seen (monotonic ms). */
static int fold_due(const store_ctx *ctx, long long pending, int64_t first,
                    int64_t now)
{
        const store_cfg *cfg = ctx->cfg;

        if (pending <= 0)
                return 0;
        return now - atomic_load(&ctx->last_write_ms) >= cfg->fold_idle_ms ||
               now - first >= cfg->fold_interval_ms ||
               pending >= STORE_FOLD_MAX_ROWS;
}

/* One fold on the folder's connection: 0 when done, 1 when not (skipped,
 * or PostgreSQL unreachable), -1 on a fatal error. */
static int folder_run(store_folder *f, long long pending)
{
        store_ctx *ctx = f->ctx;
        int64_t t0 = tally_now_mono_ms();
        long long rows;
        int skipped;
        tally_err err;
        store_pg_rc rc;

        if (!f->conn) {
                f->conn = store_pg_connect_retry(ctx->cfg->pg, "fold");
                if (!f->conn)
                        return 0;       /* stop requested */
                if (store_pg_exec(f->conn, "SET work_mem = '64MB';"
                                  " SET jit = off", "fold settings", &err)) {
                        tally_log_warn("fold_retry", "error=\"%s\"", err.msg);
                        PQfinish(f->conn);
                        f->conn = NULL;
                        return 1;
                }
        }
        rc = store_fold_once(f->conn, &ctx->cfg->common.windows, &rows,
                             &skipped, &err);
        if (rc == STORE_PG_OK) {
                if (!skipped) {
                        atomic_fetch_sub(&ctx->fold_pending, pending);
                        atomic_fetch_add(&ctx->folds, 1);
                        atomic_fetch_add(&ctx->folded, rows);
                }
                tally_log_debug("folded", "rows=%lld pending=%lld skipped=%d"
                                " ms=%lld", rows, pending, skipped,
                                (long long)(tally_now_mono_ms() - t0));
                return skipped;
        }
        if (rc == STORE_PG_RETRY) {
                tally_log_warn("fold_retry", "error=\"%s\"", err.msg);
                if (PQstatus(f->conn) != CONNECTION_OK) {
                        PQfinish(f->conn);
                        f->conn = NULL;
                }
                return 1;
        }
        tally_log_error("fold_failed", "error=\"%s\"", err.msg);
        return -1;
}

static void *folder_main(void *arg)
{
        store_folder *f = arg;
        store_ctx *ctx = f->ctx;
        int64_t first = 0, hold_until = 0;
        long long seen = 0;

        while (!atomic_load(&f->stop)) {
                struct timespec ts = {0, FOLD_TICK_MS * 1000000L};
                long long pending = atomic_load(&ctx->fold_pending);
                int64_t now = tally_now_mono_ms();
                int rc;

                if (pending > 0 && seen <= 0)
                        first = now;    /* the oldest delta not folded */
                seen = pending;
                if (now >= hold_until && fold_due(ctx, pending, first, now)) {
                        rc = folder_run(f, pending);
                        if (rc < 0) {
                                atomic_store(&ctx->fatal, 1);
                                tally_stop_request();
                                break;
                        }
                        now = tally_now_mono_ms();
                        /* not done (another copy folds, PostgreSQL is
                         * away): again in a fold-idle, not every tick */
                        hold_until = rc ? now + ctx->cfg->fold_idle_ms : 0;
                        first = now;
                        seen = atomic_load(&ctx->fold_pending);
                }
                nanosleep(&ts, NULL);
        }
        return NULL;
}

store_folder *store_folder_start(store_ctx *ctx, tally_err *err)
{
        store_folder *f = calloc(1, sizeof(*f));

        if (!f)
                abort();
        f->ctx = ctx;
        /* what an earlier run (or a copy that died) left is folded first */
        atomic_fetch_add(&ctx->fold_pending, 1);
        atomic_store(&ctx->last_write_ms,
                     tally_now_mono_ms() - ctx->cfg->fold_idle_ms);
        if (pthread_create(&f->th, NULL, folder_main, f)) {
                free(f);
                tally_err_set(err, "thread", "cannot start the fold thread");
                return NULL;
        }
        return f;
}

void store_folder_stop(store_folder *f)
{
        if (!f)
                return;
        atomic_store(&f->stop, 1);
        pthread_join(f->th, NULL);
        PQfinish(f->conn);
        free(f);
}
