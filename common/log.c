#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_daemon = "tally";
static enum tally_log_level log_min = TALLY_LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

void tally_log_init(const char *daemon, enum tally_log_level min)
{
        log_daemon = daemon;
        log_min = min;
}

int tally_log_level_parse(const char *s, enum tally_log_level *out)
{
        for (int i = 0; i < 4; i++) {
                if (!strcmp(s, log_names[i])) {
                        *out = (enum tally_log_level)i;
                        return 0;
                }
        }
        return -1;
}

void tally_log(enum tally_log_level lvl, const char *msg, const char *kv, ...)
{
        char line[2048];
        struct timespec ts;
        struct tm tm;
        size_t n;
        va_list ap;

        if (lvl < log_min)
                return;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n,
                              ".%03ldZ level=%s daemon=%s msg=%s",
                              ts.tv_nsec / 1000000, log_names[lvl],
                              log_daemon, msg);
        if (kv && *kv && n < sizeof(line) - 2) {
                line[n++] = ' ';
                va_start(ap, kv);
                vsnprintf(line + n, sizeof(line) - n, kv, ap);
                va_end(ap);
                n = strlen(line);
        }
        if (n > sizeof(line) - 2)
                n = sizeof(line) - 2;
        line[n++] = '\n';
        /* one write per line keeps lines whole across threads */
        if (write(STDERR_FILENO, line, n) < 0)
                return;
}
