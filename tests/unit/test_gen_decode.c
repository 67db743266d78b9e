/* tests/unit/test_gen_decode.c -- tally-gen against the real raw decoder:
 * every message the generator makes (all shapes, gzip, every malformed
 * kind, late and out-of-bounds timestamps) is decoded by ingest_decode,
 * and what the decoder accepts and rejects must be exactly what tally-gen
 * says it will (its points, and its dead-letter counts by reason). Also
 * checks determinism and that the expected rollups count every accepted
 * point once per resolution. tools/gen is not a library: its sources are
 * compiled into this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ingest/decode.h"
#include "tools/gen/expect.c"
#include "tools/gen/model.c"

typedef struct run_cfg {
        const char *name;
        const char *shapes;
        const char *malformed, *late, *lateish;
        int64_t devices, metrics, reports, seed, batch;
} run_cfg;

typedef struct check_ctx {
        const gen_msg *msg;
        size_t next_point;      /* next gen point expected to be read */
        int64_t dlq[GEN_R_COUNT];
        int64_t readings;
        int mismatches;
} check_ctx;

static int reason_index(const char *reason)
{
        for (int r = 1; r < GEN_R_COUNT; r++)
                if (!strcmp(gen_reason_names[r], reason))
                        return r;
        fail_msg("decoder reason %s unknown to tally-gen", reason);
        return 0;
}

static int in_bounds(const gen_msg *msg, const gen_point *pt)
{
        return !pt->reject &&
               pt->ts_ms >= msg->rec_ts_ms - 7 * 86400000LL &&
               pt->ts_ms <= msg->rec_ts_ms + 300000;
}

static int on_event(void *opaque, const ingest_event *ev)
{
        check_ctx *c = opaque;
        const gen_msg *msg = c->msg;

        if (ev->kind == INGEST_EV_REJECT) {
                c->dlq[reason_index(ev->reason)]++;
                return 0;
        }
        /* the next point tally-gen counts as accepted must be this one */
        while (c->next_point < msg->npoints &&
               !in_bounds(msg, &msg->points[c->next_point]))
                c->next_point++;
        if (c->next_point >= msg->npoints) {
                c->mismatches++;
                return 0;
        }
        {
                const gen_point *pt = &msg->points[c->next_point++];
                const tally_reading *r = ev->reading;
                const char *metric = gen_metric_names[pt->metric];

                if (r->ts_ms != pt->ts_ms || r->value != pt->value ||
                    r->metric_len != strlen(metric) ||
                    memcmp(r->metric, metric, r->metric_len) ||
                    r->device_len != msg->key_len ||
                    memcmp(r->device, msg->key, msg->key_len)) {
                        if (c->mismatches++ < 5)
                                print_message("mismatch: %.*s %.*s %lld %g "
                                              "vs %s %lld %g\n",
                                              (int)r->device_len, r->device,
                                              (int)r->metric_len, r->metric,
                                              (long long)r->ts_ms, r->value,
                                              metric, (long long)pt->ts_ms,
                                              pt->value);
                }
        }
        c->readings++;
        return 0;
}

static void fill_cfg(gen_cfg *cfg, const run_cfg *rc)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->common.windows.n = 2;
        cfg->common.windows.ms[0] = 60000;
        cfg->common.windows.ms[1] = 3600000;
        cfg->common.disorder_ms = 5000;
        cfg->common.lateness_ms = 30000;
        cfg->seed = rc->seed;
        cfg->sites = 7;
        cfg->devices = rc->devices;
        cfg->metrics = rc->metrics;
        cfg->rate_per_device = (char *)"1";
        cfg->reports = rc->reports;
        cfg->duration_ms = 60000;
        cfg->jitter_ms = 2000;
        cfg->late_share = (char *)rc->late;
        cfg->lateish_share = (char *)rc->lateish;
        cfg->malformed_share = (char *)rc->malformed;
        cfg->shapes = (char *)rc->shapes;
        cfg->batch = rc->batch;
        cfg->max_past_ms = 7 * 86400000LL;
        cfg->max_future_ms = 300000;
}

/* FNV-1a over every message's partition, timestamp, key and bytes */
static uint64_t run_one(const run_cfg *rc, int check_decoder)
{
        gen_cfg cfg;
        gen_model m;
        gen_msg msg;
        gen_expect *ex;
        ingest_limits lim;
        ingest_decoder *dec;
        check_ctx c;
        char errbuf[256];
        uint64_t h = 1469598103934665603ULL;
        int64_t points_ok = 0;

        fill_cfg(&cfg, rc);
        memset(&msg, 0, sizeof(msg));
        memset(&c, 0, sizeof(c));
        assert_int_equal(gen_model_init(&m, &cfg, 1795478400000LL, 8, errbuf,
                                        sizeof(errbuf)), 0);
        ex = gen_expect_new(&m, &cfg.common.windows, 5000, 30000,
                            cfg.max_past_ms, cfg.max_future_ms, 1);
        assert_non_null(ex);
        ingest_limits_default(&lim);
        dec = ingest_decoder_new(&lim);
        assert_non_null(dec);
        for (int64_t g = 0; g < m.total_reports; g++) {
                int due = gen_model_due(&m, g);

                for (int j = 0; j < due; j++) {
                        tally_err err;
                        size_t before;

                        gen_model_message(&m, g, j, &msg);
                        gen_expect_add(ex, &msg);
                        h = (h ^ (uint64_t)msg.partition) * 1099511628211ULL;
                        h = (h ^ (uint64_t)msg.rec_ts_ms) * 1099511628211ULL;
                        for (size_t n = 0; n < msg.key_len; n++)
                                h = (h ^ (unsigned char)msg.key[n]) *
                                    1099511628211ULL;
                        for (size_t n = 0; n < msg.body.len; n++)
                                h = (h ^ msg.body.data[n]) * 1099511628211ULL;
                        if (!check_decoder)
                                continue;
                        c.msg = &msg;
                        c.next_point = 0;
                        before = (size_t)c.readings;
                        if (ingest_decode(dec, msg.body.data, msg.body.len,
                                          msg.rec_ts_ms, on_event, &c,
                                          &err) != 0) {
                                c.dlq[reason_index(err.reason)]++;
                                if (!msg.whole_reject)
                                        print_message("%s: whole reject %s "
                                                "(%s) of %.*s\n", rc->name,
                                                err.reason, err.msg,
                                                (int)msg.body.len,
                                                msg.body.data);
                                assert_int_equal(msg.whole_reject,
                                                 reason_index(err.reason));
                        } else {
                                assert_int_equal(msg.whole_reject, 0);
                        }
                        for (size_t n = 0; n < msg.npoints; n++)
                                if (!msg.whole_reject &&
                                    in_bounds(&msg, &msg.points[n]))
                                        points_ok++;
                        (void)before;
                }
        }
        if (check_decoder) {
                const int64_t *want = gen_expect_dlq(ex);

                assert_int_equal(c.mismatches, 0);
                assert_int_equal(c.readings, points_ok);
                for (int r = 1; r < GEN_R_COUNT; r++) {
                        if (r == GEN_R_TOO_LATE)
                                continue;
                        if (c.dlq[r] != want[r])
                                print_message("%s: reason %s decoder %lld "
                                              "gen %lld\n", rc->name,
                                              gen_reason_names[r],
                                              (long long)c.dlq[r],
                                              (long long)want[r]);
                        assert_int_equal(c.dlq[r], want[r]);
                }
                /* the run must exercise what it claims to */
                if (strcmp(rc->malformed, "0")) {
                        int kinds = 0;

                        for (int r = 1; r < GEN_R_COUNT; r++)
                                kinds += want[r] > 0 && r != GEN_R_TOO_LATE;
                        assert_true(kinds >= 6);
                }
                if (strcmp(rc->late, "0"))
                        assert_true(want[GEN_R_TOO_LATE] > 0);
                print_message("%s: messages ok, readings=%lld accepted=%lld "
                              "too_late=%lld\n", rc->name,
                              (long long)c.readings,
                              (long long)gen_expect_accepted(ex),
                              (long long)want[GEN_R_TOO_LATE]);
                /* accepted + too_late = every reading the decoder gave */
                assert_int_equal(gen_expect_accepted(ex) +
                                 want[GEN_R_TOO_LATE], c.readings);
        }
        /* every accepted point is in exactly one row per resolution */
        {
                int64_t per_res[2] = {0, 0};

                for (size_t n = 0; n < ex->cap; n++)
                        if (ex->rows[n].used)
                                per_res[ex->rows[n].res] += ex->rows[n].count;
                assert_int_equal(per_res[0], gen_expect_accepted(ex));
                assert_int_equal(per_res[1], gen_expect_accepted(ex));
        }
        ingest_decoder_free(dec);
        gen_expect_free(ex);
        gen_msg_free(&msg);
        gen_model_free(&m);
        return h;
}

static const run_cfg runs[] = {
        {"report", "report", "0", "0", "0", 50, 4, 20000, 1, 10},
        {"all", "all", "0", "0", "0", 50, 4, 20000, 2, 10},
        {"all_malformed", "all", "0.2", "0", "0", 40, 4, 20000, 3, 5},
        {"report_malformed", "report", "0.3", "0.05", "0.05", 30, 3, 20000,
         4, 10},
        {"late", "all", "0.05", "0.1", "0.1", 100, 2, 30000, 5, 3},
        {"one_metric", "all", "0.1", "0.02", "0", 7, 1, 5000, 6, 1},
};

static void test_against_decoder(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
                run_one(&runs[i], 1);
}

static void test_deterministic(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
                run_cfg other = runs[i];

                assert_true(run_one(&runs[i], 0) == run_one(&runs[i], 0));
                other.seed += 100;
                assert_true(run_one(&runs[i], 0) != run_one(&other, 0));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_against_decoder),
                cmocka_unit_test(test_deterministic),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
