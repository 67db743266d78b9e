/* store/pg.h -- libpq helpers for tally-store: connecting with backoff,
 * turning a failed result into a tally_err, and sorting failures into
 * "retry" (connection lost, serialization failure, deadlock) and "fatal"
 * (everything else: a bug or a schema problem, never retried). Owns no
 * state; each PGconn is used by one thread at a time. */
#pragma once
#include <libpq-fe.h>

#include "common/buf.h"
#include "common/err.h"

typedef enum store_pg_rc {
        STORE_PG_OK = 0,
        STORE_PG_RETRY = -1,    /* reconnect if needed, then redo */
        STORE_PG_FATAL = -2,
        /* -3 is STORE_PG_STALE (batch.h) */
        STORE_PG_UNIQUE = -4,   /* unique violation: the caller chose to
                                 * try an insert that may conflict */
} store_pg_rc;

/* Connects (blocking, at most STORE_PG_CONNECT_TIMEOUT seconds unless
 * the conninfo or PGCONNECT_TIMEOUT says otherwise: libpq's own default
 * waits on an unanswered host as long as TCP does, minutes, and a
 * connect cannot be interrupted by SIGTERM). Returns NULL with err set. */
#define STORE_PG_CONNECT_TIMEOUT "10"
PGconn *store_pg_connect(const char *conninfo, tally_err *err);

/* Connects, retrying with backoff (100 ms doubling to 5 s) until it works
 * or tally_stop_requested(). Logs each failure (without secrets).
 * Returns NULL only when a stop was requested. */
PGconn *store_pg_connect_retry(const char *conninfo, const char *who);

/* Classifies a failure of the last command on conn (res may be NULL) and
 * fills err with "what: message (SQLSTATE x)". */
store_pg_rc store_pg_fail(PGconn *conn, const PGresult *res, const char *what,
                          tally_err *err);

/* Runs a command that returns no rows. */
store_pg_rc store_pg_exec(PGconn *conn, const char *sql, const char *what,
                          tally_err *err);

/* Runs a COPY ... FROM STDIN statement and sends data (whole) to it.
 * A failed send means the connection is gone: RETRY. */
store_pg_rc store_pg_copy(PGconn *conn, const char *sql, const tally_buf *data,
                          const char *what, tally_err *err);

/* conninfo with any password=... value masked, for logs. */
void store_pg_redact(const char *conninfo, char *out, size_t cap);
