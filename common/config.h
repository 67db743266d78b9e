/* common/config.h -- table-driven configuration shared by every program.
 *
 * One table of tally_opt per program is the only place a setting exists:
 * option "disorder" is the flag --disorder and the variable
 * TALLY_DISORDER, with a default and help text; --help is printed from it.
 * Precedence: default < environment < command line. librdkafka properties
 * pass through as -X key=value or TALLY_KAFKA_<KEY> (KEY upper-case, '_'
 * for '.'; e.g. TALLY_KAFKA_SASL_MECHANISM=PLAIN -> sasl.mechanism).
 * A wrong value is one error naming the option; the caller exits 2.
 * Parsed values are stored at offsetof() in the caller's config struct;
 * strings are owned by the config (tally_config_free releases them). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

typedef enum tally_opt_type {
        TALLY_OPT_STR,          /* char *            */
        TALLY_OPT_INT,          /* int64_t, in [min, max] */
        TALLY_OPT_DURATION,     /* int64_t ms: "250ms", "5s", "2m", "1h", "7d"; bare = ms */
        TALLY_OPT_BOOL,         /* int: true/false/1/0/yes/no */
        TALLY_OPT_WINDOWS,      /* tally_windows: "1m,1h" */
} tally_opt_type;

typedef struct tally_opt {
        const char *name;       /* flag name without "--" */
        tally_opt_type type;
        const char *def;        /* default as text; NULL = none (required if str?) */
        size_t offset;
        const char *help;
        int64_t min, max;       /* INT and DURATION bounds (0,0 = unbounded) */
        int secret;             /* never printed, never logged */
        const char *env;        /* environment name if not TALLY_<NAME> */
} tally_opt;

#define TALLY_WINDOWS_MAX 8
typedef struct tally_windows {
        int n;
        int64_t ms[TALLY_WINDOWS_MAX];  /* ascending; ms[0] is the finest;
                                           each a multiple of ms[0] */
} tally_windows;

typedef struct tally_kv {
        char *key;
        char *val;
} tally_kv;

typedef struct tally_kafka_props {
        size_t n;
        tally_kv *kv;
} tally_kafka_props;

/* Settings every program shares; embed as the member `common` of the
 * program's config struct and put TALLY_COMMON_OPTS(type) in its table. */
typedef struct tally_common_cfg {
        char *brokers;
        char *topic_raw, *topic_clean, *topic_rollups, *topic_dlq;
        tally_windows windows;
        int64_t disorder_ms;
        int64_t lateness_ms;
        int64_t threads;
        int64_t http_port;      /* 0 = no HTTP endpoint */
        char *log_level;
        tally_kafka_props kafka;
} tally_common_cfg;

#define TALLY_COMMON_OPTS(T)                                                   \
        {"brokers", TALLY_OPT_STR, "127.0.0.1:9092",                          \
         offsetof(T, common.brokers), "Kafka bootstrap servers", 0, 0, 0, 0}, \
        TALLY_TOPIC_OPTS(T),                                                   \
        TALLY_TIME_OPTS(T)

/* --stop-timeout of a daemon whose output must be acknowledged before it
 * commits its input; T has int64_t stop_timeout_ms. */
#define TALLY_STOP_TIMEOUT_OPT(T)                                              \
        {"stop-timeout", TALLY_OPT_DURATION, "30s", offsetof(T, stop_timeout_ms), \
         "longest wait at stop for the acknowledgement of what was produced;" \
         " then exit 1 without committing it", 0, 3600000, 0}

/* The topic names alone (for tools that take no bootstrap list). */
#define TALLY_TOPIC_OPTS(T)                                                    \
        {"topic-raw", TALLY_OPT_STR, "tally.raw",                             \
         offsetof(T, common.topic_raw), "raw readings topic", 0, 0, 0},       \
        {"topic-clean", TALLY_OPT_STR, "tally.clean",                         \
         offsetof(T, common.topic_clean), "normalized readings topic", 0, 0, 0}, \
        {"topic-rollups", TALLY_OPT_STR, "tally.rollups",                     \
         offsetof(T, common.topic_rollups), "rollups topic", 0, 0, 0},        \
        {"topic-dlq", TALLY_OPT_STR, "tally.dlq",                             \
         offsetof(T, common.topic_dlq), "dead-letter topic", 0, 0, 0, 0}

/* Windows, event-time bounds, threads, HTTP and logging. */
#define TALLY_TIME_OPTS(T)                                                     \
        {"windows", TALLY_OPT_WINDOWS, "1m,1h",                               \
         offsetof(T, common.windows),                                         \
         "window sizes, finest first; each a multiple of the finest", 0, 0, 0}, \
        {"disorder", TALLY_OPT_DURATION, "5s",                                \
         offsetof(T, common.disorder_ms), "event-time disorder bound",        \
         0, 86400000, 0},                                                     \
        {"lateness", TALLY_OPT_DURATION, "30s",                               \
         offsetof(T, common.lateness_ms),                                     \
         "allowed lateness after a window is emitted", 0, 86400000, 0},       \
        {"threads", TALLY_OPT_INT, "2", offsetof(T, common.threads),          \
         "worker threads", 1, 64, 0},                                         \
        {"http-port", TALLY_OPT_INT, "0", offsetof(T, common.http_port),      \
         "port of /metrics and /healthz, all interfaces (0 = off)", \
         0, 65535, 0},                                                        \
        {"log-level", TALLY_OPT_STR, "info", offsetof(T, common.log_level),   \
         "debug, info, warn or error", 0, 0, 0}

/* Parses env then argv into cfg. Returns 0, 1 when --help was printed to
 * stdout (caller exits 0), or -1 with err naming the option (exit 2); on
 * 1 and -1 everything parsed is already released (freeing again is a no-op).
 * kafka (may be NULL if the program takes no -X) receives pass-through
 * properties in order: env first, then -X. */
int tally_config_parse(const char *prog, const char *about,
                       const tally_opt *opts, size_t nopts, void *cfg,
                       tally_kafka_props *kafka, int argc, char **argv,
                       tally_err *err);

/* Prints the option table (flag, env, default, help) to out, and -X
 * when the program takes librdkafka properties (takes_kafka). */
void tally_config_usage(FILE *out, const char *prog, const char *about,
                        const tally_opt *opts, size_t nopts, int takes_kafka);

/* Releases strings and properties set by tally_config_parse. */
void tally_config_free(const tally_opt *opts, size_t nopts, void *cfg,
                       tally_kafka_props *kafka);

/* Puts n librdkafka properties {key, value} before the ones in k, so that
 * a program's own defaults still yield to -X and TALLY_KAFKA_* (later
 * entries win). */
void tally_kafka_props_prepend(tally_kafka_props *k,
                               const char *const (*d)[2], size_t n);

/* Parses "250ms", "5s", "2m", "1h", "1d" or bare milliseconds. */
int tally_duration_parse(const char *s, int64_t *ms);
