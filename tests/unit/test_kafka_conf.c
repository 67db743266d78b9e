/* tests/unit/test_kafka_conf.c -- common/kafka.h's tally_kafka_conf_new:
 * each role's defaults, pass-through properties winning over them, the
 * other role's properties skipped, and a consumer's message.max.bytes
 * lowered to a smaller fetch.max.bytes so that librdkafka accepts it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kafka.h"

static void assert_conf(rd_kafka_conf_t *conf, const char *key,
                        const char *want)
{
        char v[64];
        size_t n = sizeof(v);

        assert_int_equal(rd_kafka_conf_get(conf, key, v, &n), RD_KAFKA_CONF_OK);
        assert_string_equal(v, want);
}

/* the conf of role with the properties kv (key, value, key, value, ...) */
static rd_kafka_conf_t *conf_with(tally_kafka_role role, const char **kv,
                                  size_t n, tally_err *err)
{
        tally_common_cfg c;
        tally_kv props[8];

        assert_true(n / 2 <= sizeof(props) / sizeof(*props));
        memset(&c, 0, sizeof(c));
        c.brokers = "127.0.0.1:9";
        for (size_t i = 0; i < n / 2; i++) {
                props[i].key = (char *)kv[2 * i];
                props[i].val = (char *)kv[2 * i + 1];
        }
        c.kafka.n = n / 2;
        c.kafka.kv = props;
        tally_err_clear(err);
        return tally_kafka_conf_new(&c, role, err);
}

/* librdkafka checks the properties against each other when the client is
 * created: the conf must make a client */
static void assert_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
        tally_err err;
        rd_kafka_t *rk = tally_kafka_new(type, conf, &err);

        assert_non_null(rk);
        rd_kafka_destroy(rk);
}

static void test_role_defaults(void **state)
{
        tally_err err;
        rd_kafka_conf_t *p, *c;

        (void)state;
        p = conf_with(TALLY_KAFKA_PRODUCER, NULL, 0, &err);
        c = conf_with(TALLY_KAFKA_CONSUMER, NULL, 0, &err);
        assert_non_null(p);
        assert_non_null(c);
        assert_conf(p, "enable.idempotence", "true");
        assert_conf(p, "message.timeout.ms", "0");
        assert_conf(c, "enable.auto.commit", "false");
        assert_conf(c, "auto.offset.reset", "error");
        /* nothing made the request size follow the fetch size */
        assert_conf(c, "message.max.bytes", "1000000");
        assert_client(RD_KAFKA_PRODUCER, p);
        assert_client(RD_KAFKA_CONSUMER, c);
}

static void test_props_win_and_roles(void **state)
{
        static const char *kv[] = {"linger.ms", "50", "queued.min.messages", "7",
                                   "client.id", "x"};
        tally_err err;
        rd_kafka_conf_t *p, *c;

        (void)state;
        p = conf_with(TALLY_KAFKA_PRODUCER, kv, 6, &err);
        c = conf_with(TALLY_KAFKA_CONSUMER, kv, 6, &err);
        assert_non_null(p);
        assert_non_null(c);
        assert_conf(p, "linger.ms", "50");
        assert_conf(c, "queued.min.messages", "7");
        /* each skips the other role's property, and both take the rest */
        assert_conf(p, "queued.min.messages", "100000");
        assert_conf(c, "linger.ms", "5");
        assert_conf(p, "client.id", "x");
        assert_conf(c, "client.id", "x");
        rd_kafka_conf_destroy(p);
        rd_kafka_conf_destroy(c);
}

static void test_small_fetch(void **state)
{
        static const char *fetch[] = {"fetch.max.bytes", "262144"};
        static const char *both[] = {"fetch.max.bytes", "262144",
                                     "message.max.bytes", "100000"};
        static const char *big[] = {"message.max.bytes", "2000000",
                                    "fetch.max.bytes", "262144"};
        static const char *tiny[] = {"fetch.max.bytes", "500"};
        tally_err err;
        rd_kafka_conf_t *conf;
        rd_kafka_t *rk;

        (void)state;
        /* a consumer: the request size follows, and the client starts */
        conf = conf_with(TALLY_KAFKA_CONSUMER, fetch, 2, &err);
        assert_non_null(conf);
        assert_conf(conf, "message.max.bytes", "262144");
        assert_client(RD_KAFKA_CONSUMER, conf);
        /* a producer takes no fetch property and keeps its request size
         * (it bounds the batches it sends) */
        conf = conf_with(TALLY_KAFKA_PRODUCER, fetch, 2, &err);
        assert_non_null(conf);
        assert_conf(conf, "message.max.bytes", "1000000");
        rd_kafka_conf_destroy(conf);
        /* message.max.bytes given below it: it stays */
        conf = conf_with(TALLY_KAFKA_CONSUMER, both, 4, &err);
        assert_non_null(conf);
        assert_conf(conf, "message.max.bytes", "100000");
        assert_client(RD_KAFKA_CONSUMER, conf);
        /* ... above it (raised for the producers): the consumer's is
         * lowered, the producer's stays */
        conf = conf_with(TALLY_KAFKA_CONSUMER, big, 4, &err);
        assert_non_null(conf);
        assert_conf(conf, "message.max.bytes", "262144");
        assert_client(RD_KAFKA_CONSUMER, conf);
        conf = conf_with(TALLY_KAFKA_PRODUCER, big, 4, &err);
        assert_non_null(conf);
        assert_conf(conf, "message.max.bytes", "2000000");
        assert_client(RD_KAFKA_PRODUCER, conf);
        /* a fetch below message.max.bytes' least value: librdkafka names
         * the conflict when the client is created */
        conf = conf_with(TALLY_KAFKA_CONSUMER, tiny, 2, &err);
        assert_non_null(conf);
        rk = tally_kafka_new(RD_KAFKA_CONSUMER, conf, &err);
        assert_null(rk);
        assert_non_null(strstr(err.msg, "fetch.max.bytes"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_role_defaults),
                cmocka_unit_test(test_props_win_and_roles),
                cmocka_unit_test(test_small_fetch),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
