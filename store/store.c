/* store/store.c -- the assign hook: positions come from PostgreSQL, never
 * from Kafka. One statement per assignment inserts or bumps the offsets
 * row of every assigned partition and returns (next_offset, epoch). */
#include "store/store.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/signals.h"
#include "store/pg.h"

static PGconn *assign_conn;     /* main thread only */

static int assign_once(store_ctx *ctx, rd_kafka_topic_partition_list_t *parts,
                       tally_err *err)
{
        tally_buf list = TALLY_BUF_INIT;
        const char *params[2];
        PGresult *res;
        int rc = STORE_PG_OK;

        for (int i = 0; i < parts->cnt; i++)
                tally_buf_printf(&list, "%s%" PRId32, i ? "," : "{",
                                 parts->elems[i].partition);
        tally_buf_append(&list, "}", 2);
        params[0] = ctx->cfg->common.topic_rollups;
        params[1] = (const char *)list.data;
        res = PQexecParams(assign_conn,
                "INSERT INTO tally.store_offsets AS o (topic, partition, epoch)"
                " SELECT $1, p, 1 FROM unnest($2::int[]) AS p"
                " ON CONFLICT (topic, partition) DO UPDATE"
                " SET epoch = o.epoch + 1, updated_at = now()"
                " RETURNING partition, next_offset, epoch",
                2, NULL, params, NULL, NULL, 0);
        tally_buf_free(&list);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                rc = store_pg_fail(assign_conn, res, "assign offsets", err);
                PQclear(res);
                return rc;
        }
        for (int r = 0; r < PQntuples(res); r++) {
                int32_t p = (int32_t)atoi(PQgetvalue(res, r, 0));
                int64_t next = strtoll(PQgetvalue(res, r, 1), NULL, 10);
                int64_t epoch = strtoll(PQgetvalue(res, r, 2), NULL, 10);

                for (int i = 0; i < parts->cnt; i++) {
                        if (parts->elems[i].partition != p)
                                continue;
                        parts->elems[i].offset =
                                next < 0 ? RD_KAFKA_OFFSET_BEGINNING : next;
                        atomic_store(&ctx->epoch[p], epoch);
                        tally_log_info("partition_position",
                                "partition=%d next_offset=%" PRId64
                                " epoch=%" PRId64, p, next, epoch);
                }
        }
        PQclear(res);
        return STORE_PG_OK;
}

int store_assign(void *app, rd_kafka_topic_partition_list_t *parts,
                 tally_err *err)
{
        store_ctx *ctx = app;

        for (;;) {
                int rc;

                if (!assign_conn) {
                        /* paused: nothing is assigned until this works */
                        assign_conn = store_pg_connect_retry(ctx->cfg->pg,
                                                             "assign");
                        if (!assign_conn)
                                return tally_err_set(err, "stopping",
                                        "stop requested while PostgreSQL was unreachable");
                }
                rc = assign_once(ctx, parts, err);
                if (rc == STORE_PG_OK) {
                        tally_group_resolve_beginning(ctx->group, parts);
                        return 0;
                }
                if (rc != STORE_PG_RETRY)
                        return -1;
                tally_log_warn("assign_retry", "error=\"%s\"", err->msg);
                if (PQstatus(assign_conn) != CONNECTION_OK) {
                        PQfinish(assign_conn);
                        assign_conn = NULL;
                }
                if (tally_stop_requested())
                        return tally_err_set(err, "stopping",
                                             "stop requested during assign");
        }
}
