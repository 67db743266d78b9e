/* tests/fuzz/fuzz_decode.c -- ingest_decode must never crash, and what it
 * hands out must keep the contract of ingest/decode.h: indexes consecutive
 * from 0, elements never decreasing, readings with valid names, finite
 * values and in-bounds times.
 *
 * Input byte 0 picks a variant: bit 0 gzips the rest first (so that the
 * JSON paths behind gzip get fuzzed, which a fuzzer rarely reaches through
 * a valid CRC), bit 1 uses a small max_inflated (too_large paths). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ingest/decode.h"
#include "tests/fuzz/gzip_input.h"

#define REC 1704067200000LL

struct check {
        int32_t next_index;
        int32_t last_element;
        int64_t ts_min, ts_max;
};

static int check_cb(void *opaque, const ingest_event *ev)
{
        struct check *c = opaque;

        if (ev->index != c->next_index++ || ev->element < c->last_element)
                abort();
        c->last_element = ev->element;
        if (ev->kind == INGEST_EV_READING) {
                const tally_reading *r = ev->reading;

                if (!r || r->site_len == 0 || r->device_len == 0 ||
                    r->metric_len == 0 || r->site_len > TALLY_NAME_MAX ||
                    r->device_len > TALLY_NAME_MAX ||
                    r->metric_len > TALLY_NAME_MAX || !isfinite(r->value) ||
                    r->ts_ms < c->ts_min || r->ts_ms > c->ts_max)
                        abort();
                /* touch every byte the reading claims */
                if (memchr(r->site, 0, r->site_len) ||
                    memchr(r->device, 0, r->device_len) ||
                    memchr(r->metric, 0, r->metric_len))
                        abort();
        } else {
                if (ev->kind != INGEST_EV_REJECT || !ev->reason ||
                    !ev->detail || !ev->element_text)
                        abort();
                /* touch every byte of the element text */
                volatile unsigned char sum = 0;
                for (size_t i = 0; i < ev->element_len; i++)
                        sum += (unsigned char)ev->element_text[i];
                (void)sum;
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static ingest_decoder *dec[2];
        struct check c = {0, 0, 0, 0};
        ingest_limits lim;
        unsigned char *gz = NULL;
        const uint8_t *in;
        size_t n;
        tally_err err;
        int small;

        if (size < 1)
                return 0;
        small = (data[0] >> 1) & 1;
        if (!dec[small]) {
                ingest_limits_default(&lim);
                if (small)
                        lim.max_inflated = 64;
                dec[small] = ingest_decoder_new(&lim);
        }
        in = data + 1;
        n = size - 1;
        if (data[0] & 1) {
                gz = fuzz_gzip(in, n, &n);
                if (!gz)
                        return 0;
                in = gz;
        }
        c.ts_min = REC - 7LL * 24 * 3600 * 1000;
        c.ts_max = REC + 5LL * 60 * 1000;
        if (ingest_decode(dec[small], in, n, REC, check_cb, &c, &err) != 0) {
                if (strcmp(err.reason, "malformed_json") != 0 &&
                    strcmp(err.reason, "too_large") != 0 &&
                    strcmp(err.reason, "decompression_failed") != 0 &&
                    strcmp(err.reason, "empty") != 0)
                        abort();
        }
        free(gz);
        return 0;
}
