/* tests/unit/test_metrics.c -- common/metrics.h over HTTP: GET /metrics
 * serves the registered counters and gauges in the text exposition format,
 * GET /healthz answers 200 "ok" or 503 with the health function's reason
 * (tally_health_failed: a worker's failure flag), anything else 404. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/metrics.h"

static int port;

static struct sockaddr_in loopback(int p)
{
        struct sockaddr_in a;

        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)p);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return a;
}

/* a loopback port nobody listens on right now */
static int free_port(void)
{
        struct sockaddr_in a = loopback(0);
        socklen_t n = sizeof(a);
        int fd = socket(AF_INET, SOCK_STREAM, 0), p;

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &n), 0);
        p = ntohs(a.sin_port);
        close(fd);
        return p;
}

/* GET path over HTTP/1.0; the whole response (status line, headers,
 * body) into out, NUL-terminated */
static void get(const char *path, char *out, size_t cap)
{
        struct sockaddr_in a = loopback(port);
        char req[256];
        size_t len = 0;
        ssize_t r;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
        assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
        while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
                len += (size_t)r;
        out[len] = '\0';
        close(fd);
}

static void test_http(void **state)
{
        static atomic_llong readings, open_windows;
        static atomic_int failed;
        char resp[65536];
        tally_err err;

        (void)state;
        tally_err_clear(&err);
        tally_metrics_add(TALLY_COUNTER, "tally_test_readings_total",
                          "readings seen by the test", &readings);
        tally_metrics_add(TALLY_GAUGE, "tally_test_open_windows",
                          "windows open in the test", &open_windows);
        port = free_port();
        assert_int_equal(tally_http_start(port, tally_health_failed, &failed, &err), 0);

        get("/healthz", resp, sizeof(resp));
        assert_non_null(strstr(resp, " 200 "));
        assert_non_null(strstr(resp, "\r\n\r\nok"));

        atomic_store(&readings, 123456789012LL);
        atomic_store(&open_windows, 42);
        get("/metrics", resp, sizeof(resp));
        assert_non_null(strstr(resp, " 200 "));
        assert_non_null(strstr(resp, "# HELP tally_test_readings_total readings seen by the test\n"
                                     "# TYPE tally_test_readings_total counter\n"
                                     "tally_test_readings_total 123456789012\n"));
        assert_non_null(strstr(resp, "# TYPE tally_test_open_windows gauge\n"
                                     "tally_test_open_windows 42\n"));
        /* the process figures come with every scrape (common/procstat.h) */
        assert_non_null(strstr(resp, "\nprocess_resident_memory_bytes "));

        atomic_store(&failed, 1);
        get("/healthz", resp, sizeof(resp));
        assert_non_null(strstr(resp, " 503 "));
        assert_non_null(strstr(resp, "failed: see the log"));

        get("/nothing", resp, sizeof(resp));
        assert_non_null(strstr(resp, " 404 "));
        tally_http_stop();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
