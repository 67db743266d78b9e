#include "common/metrics.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/procstat.h"

#define METRICS_MAX 64

typedef struct metric {
        tally_metric_kind kind;
        const char *name, *help;
        atomic_llong *value;
} metric;

static metric metrics[METRICS_MAX];
static int nmetrics;
static struct MHD_Daemon *httpd;
static tally_health_fn health_fn;
static void *health_opaque;

atomic_llong tally_metric_position_lost;

void tally_metrics_add(tally_metric_kind kind, const char *name,
                       const char *help, atomic_llong *value)
{
        if (nmetrics == METRICS_MAX)
                return;
        metrics[nmetrics].kind = kind;
        metrics[nmetrics].name = name;
        metrics[nmetrics].help = help;
        metrics[nmetrics].value = value;
        nmetrics++;
}

void tally_metrics_put(tally_buf *out, tally_metric_kind kind,
                       const char *name, const char *help, double v)
{
        const char *type = kind == TALLY_COUNTER ? "counter" : "gauge";

        tally_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n",
                         name, help, name, type, name, v);
}

static enum MHD_Result http_reply(struct MHD_Connection *c, unsigned status,
                                  const char *type, tally_buf *body)
{
        struct MHD_Response *r;
        enum MHD_Result ret;
        size_t len;
        void *data = tally_buf_take(body, &len);

        r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
        if (!r)
                return MHD_NO;
        MHD_add_response_header(r, "Content-Type", type);
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *c,
                                    const char *url, const char *method,
                                    const char *version, const char *upload,
                                    size_t *upload_len, void **state)
{
        tally_buf body = TALLY_BUF_INIT;
        const char *bad;

        (void)cls;
        (void)version;
        (void)upload;
        (void)upload_len;
        (void)state;
        if (strcmp(method, "GET")) {
                tally_buf_printf(&body, "method not allowed\n");
                return http_reply(c, 405, "text/plain", &body);
        }
        if (!strcmp(url, "/healthz")) {
                bad = health_fn ? health_fn(health_opaque) : NULL;
                tally_buf_printf(&body, "%s\n", bad ? bad : "ok");
                return http_reply(c, bad ? 503 : 200, "text/plain", &body);
        }
        if (!strcmp(url, "/metrics")) {
                for (int i = 0; i < nmetrics; i++)
                        tally_metrics_put(&body, metrics[i].kind, metrics[i].name,
                                          metrics[i].help,
                                          (double)atomic_load(metrics[i].value));
                tally_metrics_put(&body, TALLY_COUNTER,
                                  "tally_consumer_position_lost_total",
                                  "partitions whose consumer position was removed by retention",
                                  (double)atomic_load(&tally_metric_position_lost));
                tally_procstat_write(&body);
                return http_reply(c, 200, "text/plain; version=0.0.4", &body);
        }
        tally_buf_printf(&body, "not found: try /metrics or /healthz\n");
        return http_reply(c, 404, "text/plain", &body);
}

const char *tally_health_failed(void *failed_flag)
{
        return atomic_load((atomic_int *)failed_flag) ? "failed: see the log" : NULL;
}

int tally_http_start(int port, tally_health_fn health, void *opaque,
                     tally_err *err)
{
        if (!port)
                return 0;
        health_fn = health;
        health_opaque = opaque;
        httpd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                 MHD_USE_ERROR_LOG,
                                 (uint16_t)port, NULL, NULL, http_handler, NULL,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                                 MHD_OPTION_END);
        if (!httpd)
                return tally_err_set(err, "http", "cannot listen on port %d", port);
        return 0;
}

void tally_http_stop(void)
{
        if (httpd)
                MHD_stop_daemon(httpd);
        httpd = NULL;
}
