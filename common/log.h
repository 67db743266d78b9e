/* common/log.h -- structured logs (logfmt) on stderr, one event per line:
 *   ts=2026-11-25T10:00:00.123Z level=warn daemon=ingest msg=rejected k=v
 * msg is a constant snake_case event name; kv is a printf format of
 * further key=value pairs. Thread-safe (one write(2) per line). */
#pragma once

enum tally_log_level { TALLY_LOG_DEBUG, TALLY_LOG_INFO, TALLY_LOG_WARN,
                       TALLY_LOG_ERROR };

void tally_log_init(const char *daemon, enum tally_log_level min);
/* "debug", "info", "warn", "error" -> 0; else -1 */
int tally_log_level_parse(const char *s, enum tally_log_level *out);
void tally_log(enum tally_log_level lvl, const char *msg, const char *kv, ...)
        __attribute__((format(printf, 3, 4)));

#define tally_log_debug(msg, ...) tally_log(TALLY_LOG_DEBUG, msg, __VA_ARGS__)
#define tally_log_info(msg, ...)  tally_log(TALLY_LOG_INFO, msg, __VA_ARGS__)
#define tally_log_warn(msg, ...)  tally_log(TALLY_LOG_WARN, msg, __VA_ARGS__)
#define tally_log_error(msg, ...) tally_log(TALLY_LOG_ERROR, msg, __VA_ARGS__)
