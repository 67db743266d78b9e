/* tests/unit/test_config.c -- common/config.h: defaults, environment and
 * flag precedence, both flag forms, durations, window lists, bounds,
 * librdkafka pass-through, error messages naming the option, and
 * tally_config_free (the sanitizer build checks for leaks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"

extern char **environ;

typedef struct test_cfg {
        tally_common_cfg common;
        char *password;
        int verbose;
        int64_t big;
        int64_t timeout_ms;
        char *dsn;
        char *custom;
        int64_t pin;
} test_cfg;

static const tally_opt opts[] = {
        TALLY_COMMON_OPTS(test_cfg),
        {"password", TALLY_OPT_STR, "", offsetof(test_cfg, password),
         "a secret", 0, 0, 1, NULL},
        {"verbose", TALLY_OPT_BOOL, "false", offsetof(test_cfg, verbose),
         "a boolean", 0, 0, 0, NULL},
        {"big", TALLY_OPT_INT, "0", offsetof(test_cfg, big),
         "an unbounded integer", 0, 0, 0, NULL},
        {"timeout", TALLY_OPT_DURATION, "250ms", offsetof(test_cfg, timeout_ms),
         "an unbounded duration", 0, 0, 0, NULL},
        {"dsn", TALLY_OPT_STR, NULL, offsetof(test_cfg, dsn),
         "no default", 0, 0, 0, NULL},
        {"custom", TALLY_OPT_STR, "c0", offsetof(test_cfg, custom),
         "own environment name", 0, 0, 0, "MY_CUSTOM_VAR"},
        {"pin", TALLY_OPT_INT, NULL, offsetof(test_cfg, pin),
         "a secret integer", 0, 9999, 1, NULL},
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

typedef struct fixture {
        test_cfg cfg;
        tally_kafka_props kafka;
        tally_err err;
} fixture;

/* No TALLY_* variable of the caller's environment leaks in (the test
 * switch TALLY_TEST_KNOWN_BUGS excepted). */
static void clear_env(void)
{
        char names[64][128];
        int n = 0;

        for (char **e = environ; e && *e && n < 64; e++) {
                const char *eq = strchr(*e, '=');
                size_t len = eq ? (size_t)(eq - *e) : strlen(*e);

                if ((!strncmp(*e, "TALLY_", 6) || !strncmp(*e, "MY_CUSTOM_VAR", 13)) &&
                    strncmp(*e, "TALLY_TEST_", 11) &&
                    len < sizeof(names[0])) {
                        memcpy(names[n], *e, len);
                        names[n++][len] = '\0';
                }
        }
        for (int i = 0; i < n; i++)
                unsetenv(names[i]);
}

static int setup(void **state)
{
        fixture *f = calloc(1, sizeof(*f));

        clear_env();
        *state = f;
        return f ? 0 : -1;
}

static int teardown(void **state)
{
        fixture *f = *state;

        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        free(f);
        clear_env();
        return 0;
}

/* Parses a NULL-terminated argument list (program name added). */
static int parse_v(fixture *f, int with_kafka, const char *const *args)
{
        char *argv[64];
        int argc = 0;

        argv[argc++] = (char *)"tally-test";
        while (*args && argc < 63)
                argv[argc++] = (char *)*args++;
        argv[argc] = NULL;
        memset(&f->err, 0, sizeof(f->err));
        return tally_config_parse("tally-test", "a test", opts, NOPTS, &f->cfg,
                                  with_kafka ? &f->kafka : NULL, argc, argv,
                                  &f->err);
}

#define PARSE(f, ...) parse_v((f), 1, (const char *const[]){__VA_ARGS__, NULL})
#define PARSE0(f) parse_v((f), 1, (const char *const[]){NULL})

static void assert_err_names(const fixture *f, const char *name)
{
        assert_string_equal(f->err.reason, "bad_config");
        if (!strstr(f->err.msg, name))
                fail_msg("error '%s' does not name '%s'", f->err.msg, name);
}

/* ---- defaults, environment, flags ---- */

static void test_defaults(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE0(f), 0);
        assert_string_equal(f->cfg.common.brokers, "127.0.0.1:9092");
        assert_string_equal(f->cfg.common.topic_raw, "tally.raw");
        assert_string_equal(f->cfg.common.topic_clean, "tally.clean");
        assert_string_equal(f->cfg.common.topic_rollups, "tally.rollups");
        assert_string_equal(f->cfg.common.topic_dlq, "tally.dlq");
        assert_int_equal(f->cfg.common.windows.n, 2);
        assert_int_equal(f->cfg.common.windows.ms[0], 60000);
        assert_int_equal(f->cfg.common.windows.ms[1], 3600000);
        assert_int_equal(f->cfg.common.disorder_ms, 5000);
        assert_int_equal(f->cfg.common.lateness_ms, 30000);
        assert_int_equal(f->cfg.common.threads, 2);
        assert_int_equal(f->cfg.common.http_port, 0);
        assert_string_equal(f->cfg.common.log_level, "info");
        assert_string_equal(f->cfg.password, "");
        assert_int_equal(f->cfg.verbose, 0);
        assert_int_equal(f->cfg.big, 0);
        assert_int_equal(f->cfg.timeout_ms, 250);
        assert_null(f->cfg.dsn);
        assert_string_equal(f->cfg.custom, "c0");
        assert_int_equal(f->kafka.n, 0);
}

static void test_env_override(void **state)
{
        fixture *f = *state;

        setenv("TALLY_BROKERS", "kafka-1:9092,kafka-2:9092", 1);
        setenv("TALLY_TOPIC_RAW", "raw2", 1);
        setenv("TALLY_WINDOWS", "5m,1h", 1);
        setenv("TALLY_DISORDER", "2s", 1);
        setenv("TALLY_THREADS", "8", 1);
        setenv("TALLY_HTTP_PORT", "9100", 1);
        setenv("TALLY_VERBOSE", "yes", 1);
        setenv("TALLY_DSN", "host=db", 1);
        setenv("MY_CUSTOM_VAR", "c1", 1);
        setenv("TALLY_CUSTOM", "ignored", 1);   /* the option names its own */
        assert_int_equal(PARSE0(f), 0);
        assert_string_equal(f->cfg.common.brokers, "kafka-1:9092,kafka-2:9092");
        assert_string_equal(f->cfg.common.topic_raw, "raw2");
        assert_string_equal(f->cfg.common.topic_clean, "tally.clean");
        assert_int_equal(f->cfg.common.windows.n, 2);
        assert_int_equal(f->cfg.common.windows.ms[0], 300000);
        assert_int_equal(f->cfg.common.disorder_ms, 2000);
        assert_int_equal(f->cfg.common.threads, 8);
        assert_int_equal(f->cfg.common.http_port, 9100);
        assert_int_equal(f->cfg.verbose, 1);
        assert_string_equal(f->cfg.dsn, "host=db");
        assert_string_equal(f->cfg.custom, "c1");
}

static void test_flag_overrides_env(void **state)
{
        fixture *f = *state;

        setenv("TALLY_THREADS", "8", 1);
        setenv("TALLY_BROKERS", "env:1", 1);
        setenv("TALLY_LATENESS", "1m", 1);
        setenv("MY_CUSTOM_VAR", "c1", 1);
        assert_int_equal(PARSE(f, "--threads", "4", "--brokers=flag:1", "--custom", "c2"), 0);
        assert_int_equal(f->cfg.common.threads, 4);
        assert_string_equal(f->cfg.common.brokers, "flag:1");
        assert_int_equal(f->cfg.common.lateness_ms, 60000);    /* env kept */
        assert_string_equal(f->cfg.custom, "c2");
        /* the last occurrence wins; no leak of the replaced string */
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        assert_int_equal(PARSE(f, "--brokers", "a", "--brokers", "b", "--brokers=c"), 0);
        assert_string_equal(f->cfg.common.brokers, "c");
}

static void test_flag_forms(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "--threads=3", "--lateness", "10s",
                               "--topic-dlq=", "--dsn=host=db user=x",
                               "--big", "-5", "--log-level", "debug"), 0);
        assert_int_equal(f->cfg.common.threads, 3);
        assert_int_equal(f->cfg.common.lateness_ms, 10000);
        assert_string_equal(f->cfg.common.topic_dlq, "");
        assert_string_equal(f->cfg.dsn, "host=db user=x");      /* first '=' splits */
        assert_int_equal(f->cfg.big, -5);
        assert_string_equal(f->cfg.common.log_level, "debug");
}

static void test_bool_forms(void **state)
{
        fixture *f = *state;
        static const struct {
                const char *a, *b;
                int rc, want;
        } cases[] = {
                {"--verbose", NULL, 0, 1},
                {"--verbose", "--threads=3", 0, 1},
                {"--verbose=true", NULL, 0, 1},
                {"--verbose=1", NULL, 0, 1},
                {"--verbose=YES", NULL, 0, 1},
                {"--verbose=false", NULL, 0, 0},
                {"--verbose=0", NULL, 0, 0},
                {"--verbose", "no", 0, 0},
                {"--verbose", "true", 0, 1},
                {"--verbose=maybe", NULL, -1, 0},
                {"--verbose=", NULL, -1, 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc = cases[i].b ? PARSE(f, cases[i].a, cases[i].b) :
                                      PARSE(f, cases[i].a);

                if (rc != cases[i].rc)
                        fail_msg("%s %s: rc %d (%s)", cases[i].a,
                                 cases[i].b ? cases[i].b : "", rc, f->err.msg);
                if (rc == 0)
                        assert_int_equal(f->cfg.verbose, cases[i].want);
                else
                        assert_err_names(f, "--verbose");
                tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        }
        setenv("TALLY_VERBOSE", "sometimes", 1);
        assert_int_equal(PARSE0(f), -1);
        assert_err_names(f, "TALLY_VERBOSE");
}

/* A boolean flag followed by -X (or -h) is true; the property passes. */
static void test_bool_then_x(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "--verbose", "-X", "security.protocol=SSL"), 0);
        assert_int_equal(f->cfg.verbose, 1);
        assert_int_equal(f->kafka.n, 1);
}

/* ---- durations ---- */

static void test_durations(void **state)
{
        static const struct {
                const char *s;
                int rc;
                int64_t ms;
        } cases[] = {
                {"250ms", 0, 250},
                {"5s", 0, 5000},
                {"2m", 0, 120000},
                {"1h", 0, 3600000},
                {"7d", 0, 604800000},
                {"1500", 0, 1500},
                {"0", 0, 0},
                {"0s", 0, 0},
                {"0ms", 0, 0},
                {"106751991167d", 0, INT64_C(106751991167) * 86400000},
                {"9223372036854775807", 0, INT64_MAX},
                {"", -1, 0},
                {"s", -1, 0},
                {"ms", -1, 0},
                {"5x", -1, 0},
                {"5sec", -1, 0},
                {"5S", -1, 0},
                {"5mss", -1, 0},
                {"5ms5", -1, 0},
                {"1.5s", -1, 0},
                {"-5s", -1, 0},
                {"+5s", -1, 0},
                {" 5s", -1, 0},
                {"5s ", -1, 0},
                {"5 s", -1, 0},
                {"1w", -1, 0},
                {"106751991168d", -1, 0},               /* overflows int64 ms */
                {"9223372036854775808", -1, 0},
                {"99999999999999999999s", -1, 0},
        };
        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int64_t ms = -12345;
                int rc = tally_duration_parse(cases[i].s, &ms);

                if (rc != cases[i].rc)
                        fail_msg("'%s': rc %d, want %d", cases[i].s, rc, cases[i].rc);
                if (rc == 0 && ms != cases[i].ms)
                        fail_msg("'%s': %lld ms, want %lld", cases[i].s,
                                 (long long)ms, (long long)cases[i].ms);
        }
}

static void test_duration_options(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "--timeout", "7d", "--disorder=1d", "--lateness=0"), 0);
        assert_int_equal(f->cfg.timeout_ms, 604800000);
        assert_int_equal(f->cfg.common.disorder_ms, 86400000);
        assert_int_equal(f->cfg.common.lateness_ms, 0);
        assert_int_equal(PARSE(f, "--disorder", "25h"), -1);     /* above 1d */
        assert_err_names(f, "--disorder");
        assert_int_equal(PARSE(f, "--lateness", "5 minutes"), -1);
        assert_err_names(f, "--lateness");
        setenv("TALLY_TIMEOUT", "5q", 1);
        assert_int_equal(PARSE0(f), -1);
        assert_err_names(f, "TALLY_TIMEOUT");
}

/* ---- window lists ---- */

static void test_windows(void **state)
{
        fixture *f = *state;
        static const struct {
                const char *s;
                int n;
                int64_t ms[TALLY_WINDOWS_MAX];
        } ok[] = {
                {"1m,1h", 2, {60000, 3600000}},
                {"1m", 1, {60000}},
                {"1s", 1, {1000}},
                {"1000", 1, {1000}},
                {"1m,5m,1h,1d", 4, {60000, 300000, 3600000, 86400000}},
                {"10s,1m", 2, {10000, 60000}},
                {"1s,2s,4s,8s,16s,32s,64s,128s", 8,
                 {1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000}},
        };
        static const char *const bad[] = {
                "1h,1m",        /* not ascending */
                "1m,90s",       /* not a multiple of the finest */
                "0s",
                "",
                "999ms",        /* below one second */
                "1m,1m",
                "1m,x",
                "1m;1h",
                "1s,2s,4s,8s,16s,32s,64s,128s,256s",    /* more than 8 */
                "-1m",
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char arg[300];

                snprintf(arg, sizeof(arg), "--windows=%s", ok[i].s);
                if (PARSE(f, arg) != 0)
                        fail_msg("'%s' rejected: %s", ok[i].s, f->err.msg);
                assert_int_equal(f->cfg.common.windows.n, ok[i].n);
                for (int j = 0; j < ok[i].n; j++)
                        assert_int_equal(f->cfg.common.windows.ms[j], ok[i].ms[j]);
        }
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                if (PARSE(f, "--windows", bad[i]) != -1)
                        fail_msg("'%s' accepted", bad[i]);
                assert_err_names(f, "--windows");
        }
        setenv("TALLY_WINDOWS", "1h,1m", 1);
        assert_int_equal(PARSE0(f), -1);
        assert_err_names(f, "TALLY_WINDOWS");
}

/* ---- integers ---- */

static void test_int_bounds(void **state)
{
        fixture *f = *state;
        static const struct {
                const char *opt, *val;
                int rc;
                int64_t want;
        } cases[] = {
                {"--threads", "1", 0, 1},
                {"--threads", "64", 0, 64},
                {"--threads", "0", -1, 0},
                {"--threads", "65", -1, 0},
                {"--threads", "-1", -1, 0},
                {"--threads", "abc", -1, 0},
                {"--threads", "3x", -1, 0},
                {"--threads", "", -1, 0},
                {"--threads", "2.0", -1, 0},
                {"--threads", "99999999999999999999", -1, 0},
                {"--http-port", "0", 0, 0},
                {"--http-port", "65535", 0, 65535},
                {"--http-port", "65536", -1, 0},
                {"--big", "9223372036854775807", 0, INT64_MAX},
                {"--big", "-9223372036854775808", 0, INT64_MIN},
                {"--big", "9223372036854775808", -1, 0},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                int rc = PARSE(f, cases[i].opt, cases[i].val);

                if (rc != cases[i].rc)
                        fail_msg("%s %s: rc %d (%s)", cases[i].opt, cases[i].val, rc,
                                 f->err.msg);
                if (rc)
                        assert_err_names(f, cases[i].opt);
                else if (!strcmp(cases[i].opt, "--threads"))
                        assert_int_equal(f->cfg.common.threads, cases[i].want);
                else if (!strcmp(cases[i].opt, "--http-port"))
                        assert_int_equal(f->cfg.common.http_port, cases[i].want);
                else
                        assert_int_equal(f->cfg.big, cases[i].want);
        }
        setenv("TALLY_THREADS", "100", 1);
        assert_int_equal(PARSE0(f), -1);
        assert_err_names(f, "TALLY_THREADS");
}

/* A secret's rejected value is not echoed. */
static void test_secret_not_echoed(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "--pin", "12x4"), -1);
        assert_err_names(f, "--pin");
        assert_null(strstr(f->err.msg, "12x4"));
        assert_int_equal(PARSE(f, "--pin", "1234"), 0);
        assert_int_equal(f->cfg.pin, 1234);
}

/* ---- argument errors ---- */

static void test_unknown_and_missing(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "--nope"), -1);
        assert_err_names(f, "--nope");
        assert_int_equal(PARSE(f, "--nope=3"), -1);
        assert_err_names(f, "--nope");
        assert_int_equal(PARSE(f, "--thread", "3"), -1);       /* no prefix match */
        assert_err_names(f, "--thread");
        assert_int_equal(PARSE(f, "--threadsx=3"), -1);
        assert_err_names(f, "--threadsx");
        assert_int_equal(PARSE(f, "positional"), -1);
        assert_err_names(f, "positional");
        assert_int_equal(PARSE(f, "-t"), -1);
        assert_err_names(f, "-t");
        assert_int_equal(PARSE(f, "--threads"), -1);
        assert_err_names(f, "--threads");
        assert_non_null(strstr(f->err.msg, "missing value"));
        assert_int_equal(PARSE(f, "--threads=4", "--brokers"), -1);
        assert_err_names(f, "--brokers");
        assert_non_null(strstr(f->err.msg, "missing value"));
}

/* ---- librdkafka pass-through ---- */

static void test_kafka_props(void **state)
{
        fixture *f = *state;

        setenv("TALLY_KAFKA_SASL_MECHANISM", "PLAIN", 1);
        assert_int_equal(PARSE(f, "-X", "security.protocol=SASL_SSL",
                               "--threads", "3",
                               "-X", "sasl.jaas.config=a=b c",
                               "-X", "client.id="), 0);
        assert_int_equal(f->cfg.common.threads, 3);
        assert_int_equal(f->kafka.n, 4);
        /* environment first, then -X in order */
        assert_string_equal(f->kafka.kv[0].key, "sasl.mechanism");
        assert_string_equal(f->kafka.kv[0].val, "PLAIN");
        assert_string_equal(f->kafka.kv[1].key, "security.protocol");
        assert_string_equal(f->kafka.kv[1].val, "SASL_SSL");
        assert_string_equal(f->kafka.kv[2].key, "sasl.jaas.config");
        assert_string_equal(f->kafka.kv[2].val, "a=b c");
        assert_string_equal(f->kafka.kv[3].key, "client.id");
        assert_string_equal(f->kafka.kv[3].val, "");
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        assert_int_equal(f->kafka.n, 0);
        assert_null(f->kafka.kv);
}

static void test_kafka_errors(void **state)
{
        fixture *f = *state;

        assert_int_equal(PARSE(f, "-X"), -1);
        assert_err_names(f, "-X");
        assert_int_equal(PARSE(f, "-X", "novalue"), -1);
        assert_err_names(f, "-X");
        assert_int_equal(PARSE(f, "-X", "=v"), -1);
        assert_err_names(f, "-X");
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        /* a program that takes no properties */
        assert_int_equal(parse_v(f, 0, (const char *const[]){"-X", "a=b", NULL}), -1);
        assert_err_names(f, "-X");
        /* an empty property name in the environment */
        setenv("TALLY_KAFKA_", "x", 1);
        assert_int_equal(PARSE0(f), -1);
        assert_err_names(f, "TALLY_KAFKA_");
        unsetenv("TALLY_KAFKA_");
        /* ... which a program without properties ignores */
        setenv("TALLY_KAFKA_BATCH_SIZE", "1000", 1);
        assert_int_equal(parse_v(f, 0, (const char *const[]){NULL}), 0);
}

/* ---- help and usage ---- */

static void test_help(void **state)
{
        fixture *f = *state;
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        int saved = dup(1);
        FILE *null = fopen("/dev/null", "w");

        assert_non_null(mem);
        tally_config_usage(mem, "tally-test", "a test", opts, NOPTS, 1);
        fclose(mem);
        assert_non_null(strstr(text, "--threads"));
        assert_non_null(strstr(text, "TALLY_THREADS"));
        assert_non_null(strstr(text, "TALLY_TOPIC_RAW"));
        assert_non_null(strstr(text, "MY_CUSTOM_VAR"));
        assert_non_null(strstr(text, "-X key=value"));
        free(text);
        /* a program that takes no librdkafka properties lists no -X */
        text = NULL;
        mem = open_memstream(&text, &len);
        assert_non_null(mem);
        tally_config_usage(mem, "tally-test", "a test", opts, NOPTS, 0);
        fclose(mem);
        assert_null(strstr(text, "-X key=value"));
        assert_non_null(strstr(text, "--help"));
        free(text);
        /* --help and -h print (to stdout, silenced here) and return 1 */
        assert_non_null(null);
        fflush(stdout);
        dup2(fileno(null), 1);
        int a = PARSE(f, "--threads", "3", "--help");
        int b = PARSE(f, "-h");
        fflush(stdout);
        dup2(saved, 1);
        close(saved);
        fclose(null);
        assert_int_equal(a, 1);
        assert_int_equal(b, 1);
}

/* ---- free ---- */

static void test_release(void **state)
{
        fixture *f = *state;

        setenv("TALLY_KAFKA_SASL_USERNAME", "u", 1);
        setenv("TALLY_DSN", "host=a", 1);
        assert_int_equal(PARSE(f, "--dsn", "host=b", "--password=p", "-X", "a=b"), 0);
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        assert_null(f->cfg.common.brokers);
        assert_null(f->cfg.common.topic_raw);
        assert_null(f->cfg.common.log_level);
        assert_null(f->cfg.dsn);
        assert_null(f->cfg.password);
        assert_null(f->cfg.custom);
        assert_int_equal(f->kafka.n, 0);
        /* twice is harmless */
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        /* after a failed parse, what was set is released too */
        assert_int_equal(PARSE(f, "--dsn", "host=c", "-X", "a=b", "--threads", "0"), -1);
        tally_config_free(opts, NOPTS, &f->cfg, &f->kafka);
        assert_null(f->cfg.dsn);
        /* NULL kafka */
        assert_int_equal(parse_v(f, 0, (const char *const[]){"--dsn", "x", NULL}), 0);
        tally_config_free(opts, NOPTS, &f->cfg, NULL);
        assert_null(f->cfg.dsn);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
                cmocka_unit_test_setup_teardown(test_env_override, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flag_overrides_env, setup, teardown),
                cmocka_unit_test_setup_teardown(test_flag_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bool_forms, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bool_then_x, setup, teardown),
                cmocka_unit_test(test_durations),
                cmocka_unit_test_setup_teardown(test_duration_options, setup, teardown),
                cmocka_unit_test_setup_teardown(test_windows, setup, teardown),
                cmocka_unit_test_setup_teardown(test_int_bounds, setup, teardown),
                cmocka_unit_test_setup_teardown(test_secret_not_echoed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_and_missing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kafka_props, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kafka_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_help, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
