#include "store/pg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/signals.h"

/* NOTICEs ("already exists, skipping") are expected: keep stderr logfmt */
static void pg_notice(void *arg, const char *msg)
{
        (void)arg;
        tally_log_debug("pg_notice", "text=\"%.*s\"",
                        (int)strcspn(msg, "\n"), msg);
}

PGconn *store_pg_connect(const char *conninfo, tally_err *err)
{
        /* keywords are applied in order and the conninfo (expanded from
         * dbname) comes last, so a connect_timeout in it wins */
        const char *const keys[] = {"connect_timeout", "dbname", NULL};
        const char *const vals[] = {STORE_PG_CONNECT_TIMEOUT, conninfo, NULL};
        int skip = getenv("PGCONNECT_TIMEOUT") != NULL;
        PGconn *conn = PQconnectdbParams(keys + skip, vals + skip, 1);

        if (PQstatus(conn) != CONNECTION_OK) {
                char msg[400];

                snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
                msg[strcspn(msg, "\n")] = 0;
                tally_err_set(err, "pg_connect", "connect: %s", msg);
                PQfinish(conn);
                return NULL;
        }
        PQsetNoticeProcessor(conn, pg_notice, NULL);
        return conn;
}

static void sleep_ms(int64_t ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

        nanosleep(&ts, NULL);
}

PGconn *store_pg_connect_retry(const char *conninfo, const char *who)
{
        int64_t backoff = 100;

        while (!tally_stop_requested()) {
                tally_err err;
                PGconn *conn = store_pg_connect(conninfo, &err);

                if (conn)
                        return conn;
                tally_log_warn("pg_unreachable", "who=%s retry_ms=%lld "
                               "error=\"%s\"", who, (long long)backoff,
                               err.msg);
                for (int64_t t = 0; t < backoff && !tally_stop_requested();
                     t += 50)
                        sleep_ms(50);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
        }
        return NULL;
}

store_pg_rc store_pg_fail(PGconn *conn, const PGresult *res, const char *what,
                          tally_err *err)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                                : NULL;
        const char *text = res ? PQresultErrorMessage(res) : NULL;
        char msg[400];

        if (!text || !*text)
                text = PQerrorMessage(conn);
        snprintf(msg, sizeof(msg), "%s", text);
        msg[strcspn(msg, "\n")] = 0;    /* libpq ends messages with \n */
        tally_err_set(err, "pg", "%s: %s (SQLSTATE %s)", what, msg,
                      state ? state : "none");
        if (PQstatus(conn) != CONNECTION_OK)
                return STORE_PG_RETRY;
        if (state && (!strcmp(state, "40001") || !strcmp(state, "40P01") ||
                      !strncmp(state, "08", 2) || !strcmp(state, "57P01") ||
                      !strcmp(state, "57P02") || !strcmp(state, "57P03")))
                return STORE_PG_RETRY;
        if (state && !strcmp(state, "23505"))
                return STORE_PG_UNIQUE;
        return STORE_PG_FATAL;
}

store_pg_rc store_pg_exec(PGconn *conn, const char *sql, const char *what,
                          tally_err *err)
{
        PGresult *res = PQexec(conn, sql);
        store_pg_rc rc = STORE_PG_OK;

        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK)
                rc = store_pg_fail(conn, res, what, err);
        PQclear(res);
        return rc;
}

#define COPY_PIECE ((size_t)256 << 10)

store_pg_rc store_pg_copy(PGconn *conn, const char *sql, const tally_buf *data,
                          const char *what, tally_err *err)
{
        PGresult *res = PQexec(conn, sql);
        store_pg_rc rc;
        int ok = 1;

        if (PQresultStatus(res) != PGRES_COPY_IN) {
                rc = store_pg_fail(conn, res, what, err);
                PQclear(res);
                return rc;
        }
        PQclear(res);
        /* in pieces: libpq grows its output buffer to hold what one call
         * passes, and keeps it; 256 KiB pieces bound it */
        for (size_t off = 0; off < data->len && ok; off += COPY_PIECE) {
                size_t n = data->len - off < COPY_PIECE ? data->len - off :
                                                          COPY_PIECE;

                ok = PQputCopyData(conn, (const char *)data->data + off,
                                   (int)n) == 1;
        }
        if (!ok || PQputCopyEnd(conn, NULL) != 1) {
                rc = store_pg_fail(conn, NULL, what, err);
                while ((res = PQgetResult(conn)))
                        PQclear(res);
                return rc == STORE_PG_OK ? STORE_PG_RETRY : rc;
        }
        rc = STORE_PG_OK;
        while ((res = PQgetResult(conn))) {
                if (PQresultStatus(res) != PGRES_COMMAND_OK && !rc)
                        rc = store_pg_fail(conn, res, what, err);
                PQclear(res);
        }
        return rc;
}

void store_pg_redact(const char *conninfo, char *out, size_t cap)
{
        const char *p = strstr(conninfo, "password=");

        if (!p) {
                snprintf(out, cap, "%s", conninfo);
                return;
        }
        snprintf(out, cap, "%.*spassword=***", (int)(p - conninfo), conninfo);
        p += 9;
        p += strcspn(p, " ");
        if (*p && strlen(out) + strlen(p) < cap)
                strcat(out, p);
}
