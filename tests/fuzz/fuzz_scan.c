/* tests/fuzz/fuzz_scan.c -- differential: the fast scanner (ingest/scan.h)
 * must give exactly the events of the jansson path, or take nothing.
 *
 * Every input is decoded three times: jansson only, fast only, and the
 * default (fast, falling back to jansson). The default must give the same
 * return code, error reason and event sequence as jansson only (readings
 * compared field by field, values bit for bit; rejections by reason,
 * detail and element text). Fast only must either refuse with
 * "not_handled" before any event, or give the same as jansson too.
 *
 * Input byte 0 picks a variant: bit 0 gzips the rest first; bits 1-2 move
 * the record time (so that time bounds cut through typical reports); bits
 * 3-4 wrap the rest into a well-formed report, as a reading's value (to
 * compare number reading), as the site's string (strings, UTF-8) or as a
 * metric key, so the fuzzer spends its time where the scanner decides. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ingest/decode.h"
#include "tests/fuzz/gzip_input.h"

#define REC 1795478400000LL     /* 2026-11-24T00:00:00Z, tally-gen's start */

typedef struct trace {
        unsigned char *data;
        size_t len, cap;
} trace;

static void put(trace *t, const void *p, size_t n)
{
        if (t->len + n > t->cap) {
                size_t ncap = t->cap ? t->cap * 2 : 4096;

                while (ncap < t->len + n)
                        ncap *= 2;
                t->data = realloc(t->data, ncap);
                if (!t->data)
                        abort();
                t->cap = ncap;
        }
        memcpy(t->data + t->len, p, n);
        t->len += n;
}

static void put_str(trace *t, const char *s, size_t n)
{
        uint64_t n64 = n;

        put(t, &n64, sizeof(n64));
        put(t, s, n);
}

static int trace_cb(void *opaque, const ingest_event *ev)
{
        trace *t = opaque;
        int32_t head[3] = {(int32_t)ev->kind, ev->index, ev->element};

        put(t, head, sizeof(head));
        if (ev->kind == INGEST_EV_READING) {
                const tally_reading *r = ev->reading;

                put_str(t, r->site, r->site_len);
                put_str(t, r->device, r->device_len);
                put_str(t, r->metric, r->metric_len);
                put(t, &r->ts_ms, sizeof(r->ts_ms));
                put(t, &r->value, sizeof(r->value));    /* bits */
        } else {
                put_str(t, ev->reason, strlen(ev->reason));
                put_str(t, ev->detail, strlen(ev->detail));
                put_str(t, ev->element_text, ev->element_len);
        }
        return 0;
}

static const char *wrap[4][2] = {
        {"", ""},
        {"{\"site\":\"s\",\"device\":\"d\",\"ts\":\"2026-11-24T00:00:00Z\","
         "\"readings\":{\"a\":", ",\"b\":1}}"},
        {"{\"site\":\"", "\",\"device\":\"d\",\"ts\":1795478400000,"
         "\"metric\":\"m\",\"value\":1.5}"},
        {"{\"site\":\"s\",\"device\":\"d\",\"ts\":\"2026-11-24T00:00:00Z\","
         "\"readings\":{\"", "\":1}}"},
};

static int run(ingest_decoder *d, const void *in, size_t n, int64_t rec,
               trace *t, tally_err *err)
{
        t->len = 0;
        return ingest_decode(d, in, n, rec, trace_cb, t, err);
}

static int same(const trace *a, const trace *b)
{
        return a->len == b->len &&
               (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

static void differ(const char *what)
{
        fprintf(stderr, "fuzz_scan: %s\n", what);
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static ingest_decoder *dj, *df, *da;
        static trace tj, tf, ta;
        static const int64_t recs[4] = {
                REC, REC - 5LL * 60 * 1000 + 1,   /* cuts the future bound */
                REC + 7LL * 24 * 3600 * 1000,     /* the past bound */
                1795478399500LL,
        };
        static trace wrapped;
        unsigned char *gz = NULL;
        const uint8_t *in;
        int w;
        size_t n;
        int64_t rec;
        tally_err ej, ef, ea;
        int rj, rf, ra;

        if (size < 1)
                return 0;
        if (!dj) {
                dj = ingest_decoder_new(NULL);
                df = ingest_decoder_new(NULL);
                da = ingest_decoder_new(NULL);
                if (!dj || !df || !da)
                        abort();
                ingest_decoder_set_mode(dj, INGEST_DECODE_JANSSON);
                ingest_decoder_set_mode(df, INGEST_DECODE_FAST);
        }
        rec = recs[(data[0] >> 1) & 3];
        in = data + 1;
        n = size - 1;
        w = (data[0] >> 3) & 3;
        if (w) {
                wrapped.len = 0;
                put(&wrapped, wrap[w][0], strlen(wrap[w][0]));
                put(&wrapped, in, n);
                put(&wrapped, wrap[w][1], strlen(wrap[w][1]));
                in = wrapped.data;
                n = wrapped.len;
        }
        if (data[0] & 1) {
                gz = fuzz_gzip(in, n, &n);
                if (!gz)
                        return 0;
                in = gz;
        }
        rj = run(dj, in, n, rec, &tj, &ej);
        rf = run(df, in, n, rec, &tf, &ef);
        ra = run(da, in, n, rec, &ta, &ea);

        /* the default mode is indistinguishable from jansson */
        if (ra != rj)
                differ("return code of auto vs jansson");
        if (ra != 0 && strcmp(ea.reason, ej.reason) != 0)
                differ("error reason of auto vs jansson");
        if (!same(&ta, &tj))
                differ("events of auto vs jansson");

        /* fast only: nothing, or the same */
        if (rf != 0 && strcmp(ef.reason, "not_handled") == 0) {
                if (tf.len != 0)
                        differ("fast emitted events, then refused");
        } else {
                if (rf != rj)
                        differ("return code of fast vs jansson");
                if (rf != 0 && strcmp(ef.reason, ej.reason) != 0)
                        differ("error reason of fast vs jansson");
                if (!same(&tf, &tj))
                        differ("events of fast vs jansson");
        }
        free(gz);
        return 0;
}
