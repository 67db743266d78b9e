/* tools/devbroker/main.c -- tally-devbroker: serves librdkafka's built-in
 * mock Kafka cluster on loopback, with every tally topic created up front
 * (a Metadata request naming an unknown topic would auto-create it with 4
 * partitions). A development and test tool only: see docs/devbroker.md and
 * /work/shared/DEVBROKER.md for what the mock does not do.
 *
 * Signals are blocked in every thread (before librdkafka starts its
 * threads, which inherit the mask) and taken synchronously with
 * sigtimedwait() in the main loop, so the mock calls for SIGUSR1/SIGUSR2
 * never run inside a signal handler. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/config.h"
#include "common/err.h"
#include "common/log.h"

#define DEVBROKER_PARTITIONS_MAX 100000

typedef struct devbroker_cfg {
        tally_common_cfg common;
        int64_t brokers;
        int64_t partitions_raw;
        int64_t partitions_clean;
        int64_t partitions_rollups;
        int64_t partitions_dlq;
        char *bootstrap_file;
} devbroker_cfg;

static const tally_opt devbroker_opts[] = {
        /* --brokers is a count here, not the bootstrap list the other
         * programs take, so it reads its own variable, never TALLY_BROKERS */
        {"brokers", TALLY_OPT_INT, "1", offsetof(devbroker_cfg, brokers),
         "number of mock brokers", 1, 16, 0, "TALLY_DEVBROKER_BROKERS"},
        TALLY_TOPIC_OPTS(devbroker_cfg),
        {"log-level", TALLY_OPT_STR, "info",
         offsetof(devbroker_cfg, common.log_level),
         "debug, info, warn or error", 0, 0, 0},
        {"partitions-raw", TALLY_OPT_INT, "16",
         offsetof(devbroker_cfg, partitions_raw),
         "partitions of the raw topic", 1, DEVBROKER_PARTITIONS_MAX, 0},
        {"partitions-clean", TALLY_OPT_INT, "16",
         offsetof(devbroker_cfg, partitions_clean),
         "partitions of the clean topic", 1, DEVBROKER_PARTITIONS_MAX, 0},
        {"partitions-rollups", TALLY_OPT_INT, "8",
         offsetof(devbroker_cfg, partitions_rollups),
         "partitions of the rollups topic", 1, DEVBROKER_PARTITIONS_MAX, 0},
        {"partitions-dlq", TALLY_OPT_INT, "4",
         offsetof(devbroker_cfg, partitions_dlq),
         "partitions of the dead-letter topic", 1, DEVBROKER_PARTITIONS_MAX,
         0},
        {"bootstrap-file", TALLY_OPT_STR, "",
         offsetof(devbroker_cfg, bootstrap_file),
         "also write the bootstrap list to this file (atomically)", 0, 0, 0},
};

#define DEVBROKER_NOPTS (sizeof(devbroker_opts) / sizeof(devbroker_opts[0]))

static const char devbroker_about[] =
        "DEVELOPMENT TOOL, NOT FOR PRODUCTION. Serves librdkafka's mock Kafka\n"
        "cluster on loopback with the tally topics created. The mock keeps\n"
        "nothing on disk (a restart loses every topic, record and offset, and\n"
        "listens on new ports), keeps only 5 MiB of record batches per\n"
        "partition (older ones are dropped silently), does not enforce\n"
        "idempotence, and only pretends to support transactions. Use Apache\n"
        "Kafka for anything real.\n"
        "Prints bootstrap=HOST:PORT[,...] on stdout. Runs until SIGTERM or\n"
        "SIGINT. SIGUSR1 takes every broker down, SIGUSR2 brings them up.\n"
        "SIGHUP makes the brokers refuse every Produce request with a\n"
        "retriable error (not enough in-sync replicas) until SIGUSR2.";

/* Produce's API key: rdkafka_mock.h takes protocol keys, which librdkafka
 * does not export */
#define DEVBROKER_PRODUCE 0
/* Produce requests refused per SIGHUP: the mock answers each request with
 * the next error of its stack (and moves the rest up), and a producer
 * retries about 10 times a second per broker (retry.backoff.ms), so this
 * lasts an hour or more; SIGUSR2 clears it. */
#define DEVBROKER_REFUSALS 100000

/* The brokers answer every Produce request with a retriable error, as
 * Kafka does when a partition has too few in-sync replicas: producers
 * keep their messages and retry, nothing is written. 0, or -1 when out
 * of memory. */
static int devbroker_refuse_produce(rd_kafka_mock_cluster_t *mcluster)
{
        rd_kafka_resp_err_t *errs = malloc(DEVBROKER_REFUSALS * sizeof(*errs));

        if (!errs)
                return -1;
        for (size_t i = 0; i < DEVBROKER_REFUSALS; i++)
                errs[i] = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
        rd_kafka_mock_clear_request_errors(mcluster, DEVBROKER_PRODUCE);
        rd_kafka_mock_push_request_errors_array(mcluster, DEVBROKER_PRODUCE,
                                                DEVBROKER_REFUSALS, errs);
        free(errs);
        return 0;
}

/* Writes list + '\n' to path via a temporary name and rename(2), so that
 * a reader never sees a partial file. */
static int devbroker_write_bootstrap(const char *path, const char *list,
                                     tally_err *err)
{
        size_t n = strlen(path) + 32;
        char *tmp = malloc(n);
        FILE *f;
        int rc = -1;

        if (!tmp)
                return tally_err_set(err, "io", "out of memory");
        snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
        f = fopen(tmp, "w");
        if (!f) {
                tally_err_set(err, "io", "open %s: %s", tmp, strerror(errno));
                goto out;
        }
        if (fprintf(f, "%s\n", list) < 0 || fflush(f) != 0 ||
            fsync(fileno(f)) != 0) {
                tally_err_set(err, "io", "write %s: %s", tmp,
                              strerror(errno));
                fclose(f);
                unlink(tmp);
                goto out;
        }
        if (fclose(f) != 0) {
                tally_err_set(err, "io", "close %s: %s", tmp,
                              strerror(errno));
                unlink(tmp);
                goto out;
        }
        if (rename(tmp, path) != 0) {
                tally_err_set(err, "io", "rename %s to %s: %s", tmp, path,
                              strerror(errno));
                unlink(tmp);
                goto out;
        }
        rc = 0;
out:
        free(tmp);
        return rc;
}

static int devbroker_set_all(rd_kafka_mock_cluster_t *mcluster, int nbrokers,
                             int up)
{
        int failed = 0;

        for (int32_t id = 1; id <= nbrokers; id++) {
                rd_kafka_resp_err_t e = up ?
                        rd_kafka_mock_broker_set_up(mcluster, id) :
                        rd_kafka_mock_broker_set_down(mcluster, id);
                if (e) {
                        tally_log_error("broker_state_failed",
                                        "broker=%d up=%d error=\"%s\"",
                                        (int)id, up, rd_kafka_err2str(e));
                        failed = 1;
                }
        }
        return failed ? -1 : 0;
}

int main(int argc, char **argv)
{
        devbroker_cfg cfg;
        tally_err err;
        enum tally_log_level lvl;
        sigset_t sigs;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        char errstr[512];
        const char *bootstraps;
        int rc;
        int status = 1;
        struct {
                const char *name;
                int64_t parts;
        } topics[4];

        memset(&cfg, 0, sizeof(cfg));
        tally_err_clear(&err);
        rc = tally_config_parse("tally-devbroker", devbroker_about,
                                devbroker_opts, DEVBROKER_NOPTS, &cfg, NULL,
                                argc, argv, &err);
        if (rc == 1) {
                tally_config_free(devbroker_opts, DEVBROKER_NOPTS, &cfg, NULL);
                return 0;
        }
        if (rc < 0) {
                fprintf(stderr, "tally-devbroker: %s\n", err.msg);
                tally_config_free(devbroker_opts, DEVBROKER_NOPTS, &cfg, NULL);
                return 2;
        }
        if (tally_log_level_parse(cfg.common.log_level, &lvl) != 0) {
                fprintf(stderr, "tally-devbroker: bad --log-level %s\n",
                        cfg.common.log_level);
                tally_config_free(devbroker_opts, DEVBROKER_NOPTS, &cfg, NULL);
                return 2;
        }
        tally_log_init("devbroker", lvl);

        topics[0].name = cfg.common.topic_raw;
        topics[0].parts = cfg.partitions_raw;
        topics[1].name = cfg.common.topic_clean;
        topics[1].parts = cfg.partitions_clean;
        topics[2].name = cfg.common.topic_rollups;
        topics[2].parts = cfg.partitions_rollups;
        topics[3].name = cfg.common.topic_dlq;
        topics[3].parts = cfg.partitions_dlq;
        /* The mock asserts (kills the process) on -1 partitions and makes a
         * dead topic of 0: check here whatever the option table allowed. */
        for (int i = 0; i < 4; i++) {
                if (topics[i].parts < 1 ||
                    topics[i].parts > DEVBROKER_PARTITIONS_MAX) {
                        fprintf(stderr, "tally-devbroker: topic %s: "
                                "partitions must be 1..%d\n", topics[i].name,
                                DEVBROKER_PARTITIONS_MAX);
                        goto out;
                }
                if (!topics[i].name || !topics[i].name[0]) {
                        fprintf(stderr, "tally-devbroker: empty topic name\n");
                        goto out;
                }
        }
        if (cfg.brokers < 1 || cfg.brokers > 16) {
                fprintf(stderr, "tally-devbroker: --brokers must be "
                        "1..16\n");
                goto out;
        }

        /* Block before librdkafka creates its threads: they inherit the
         * mask, so the signals stay pending for sigtimedwait below. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGUSR1);
        sigaddset(&sigs, SIGUSR2);
        sigaddset(&sigs, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0) {
                tally_log_error("sigprocmask_failed", "error=\"%s\"",
                                strerror(errno));
                goto out;
        }

        conf = rd_kafka_conf_new();
        /* the handle only carries the mock and never connects anywhere:
         * hide its notice about having no bootstrap.servers */
        if (rd_kafka_conf_set(conf, "log_level", "4", errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
                tally_log_warn("conf_failed", "error=\"%s\"", errstr);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                tally_log_error("kafka_new_failed", "error=\"%s\"", errstr);
                goto out;
        }
        mcluster = rd_kafka_mock_cluster_new(rk, (int)cfg.brokers);
        if (!mcluster) {
                tally_log_error("mock_cluster_failed", "brokers=%d",
                                (int)cfg.brokers);
                goto out;
        }
        for (int i = 0; i < 4; i++) {
                rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
                        mcluster, topics[i].name, (int)topics[i].parts, 1);
                if (e) {
                        tally_log_error("topic_create_failed",
                                        "topic=%s partitions=%d error=\"%s\"",
                                        topics[i].name, (int)topics[i].parts,
                                        rd_kafka_err2str(e));
                        goto out;
                }
                tally_log_info("topic_created", "topic=%s partitions=%d",
                               topics[i].name, (int)topics[i].parts);
        }
        bootstraps = rd_kafka_mock_cluster_bootstraps(mcluster);
        if (cfg.bootstrap_file && cfg.bootstrap_file[0] &&
            devbroker_write_bootstrap(cfg.bootstrap_file, bootstraps,
                                      &err) != 0) {
                tally_log_error("bootstrap_file_failed", "error=\"%s\"",
                                err.msg);
                goto out;
        }
        printf("bootstrap=%s\n", bootstraps);
        fflush(stdout);
        tally_log_info("started", "bootstrap=%s brokers=%d", bootstraps,
                       (int)cfg.brokers);

        for (;;) {
                struct timespec tmo = {1, 0};
                siginfo_t si;
                int sig = sigtimedwait(&sigs, &si, &tmo);

                if (sig < 0)
                        continue;       /* EAGAIN (timeout) or EINTR */
                if (sig == SIGTERM || sig == SIGINT) {
                        tally_log_info("stopping", "signal=%d", sig);
                        break;
                }
                if (sig == SIGUSR1) {
                        devbroker_set_all(mcluster, (int)cfg.brokers, 0);
                        tally_log_info("brokers_down", "brokers=%d",
                                       (int)cfg.brokers);
                } else if (sig == SIGUSR2) {
                        devbroker_set_all(mcluster, (int)cfg.brokers, 1);
                        rd_kafka_mock_clear_request_errors(mcluster,
                                                           DEVBROKER_PRODUCE);
                        tally_log_info("brokers_up", "brokers=%d",
                                       (int)cfg.brokers);
                } else if (sig == SIGHUP) {
                        if (devbroker_refuse_produce(mcluster)) {
                                tally_log_error("produce_refusal_failed",
                                                "note=\"out of memory\"");
                                goto out;
                        }
                        tally_log_info("produce_refused",
                                       "error=NOT_ENOUGH_REPLICAS "
                                       "until=SIGUSR2");
                }
        }
        status = 0;
out:
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (status == 0 && cfg.bootstrap_file && cfg.bootstrap_file[0])
                unlink(cfg.bootstrap_file);
        tally_config_free(devbroker_opts, DEVBROKER_NOPTS, &cfg, NULL);
        return status;
}
