/* common/metrics.h -- the process's Prometheus metrics and its HTTP
 * endpoint (libmicrohttpd): GET /metrics (text exposition format) and
 * GET /healthz (200 "ok", or 503 with the reason). Metrics are registered
 * once from main before tally_http_start, as pointers to atomics that the
 * workers update; the registry itself is then read-only, so serving it
 * needs no lock. The HTTP server runs on its own thread. */
#pragma once
#include <stdatomic.h>

#include "common/buf.h"
#include "common/err.h"

typedef enum tally_metric_kind { TALLY_COUNTER, TALLY_GAUGE } tally_metric_kind;

/* name: e.g. "tally_ingest_readings_total"; value is borrowed and must
 * outlive the server. At most 64 metrics. */
void tally_metrics_add(tally_metric_kind kind, const char *name,
                       const char *help, atomic_llong *value);

/* Appends one sample with its HELP and TYPE lines in the text exposition
 * format: the registry's, and figures read at scrape time
 * (common/procstat.c). */
void tally_metrics_put(tally_buf *out, tally_metric_kind kind,
                       const char *name, const char *help, double v);

/* Returns NULL when healthy, else a short reason (borrowed). */
typedef const char *(*tally_health_fn)(void *opaque);

/* A tally_health_fn for a daemon whose only unhealthy state is a failed
 * worker: opaque is its atomic_int flag. */
const char *tally_health_failed(void *failed_flag);

/* Starts serving on port (all interfaces); port 0 does nothing. Returns 0
 * or -1 (err). */
int tally_http_start(int port, tally_health_fn health, void *opaque,
                     tally_err *err);
void tally_http_stop(void);

/* Process-wide counter: consumers that found their position removed by
 * retention (they stop that partition and log an error). */
extern atomic_llong tally_metric_position_lost;
