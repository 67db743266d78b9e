/* tests/fuzz/fuzz_clean.c -- tally.clean reader (common/clean_codec.h): any
 * input is either rejected with a reason or decodes completely, and what
 * decodes re-encodes to a record that decodes to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/clean_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_KEEP 4096

static int same_reading(const tally_reading *a, const tally_reading *b)
{
        return a->site_len == b->site_len && a->device_len == b->device_len &&
               a->metric_len == b->metric_len &&
               !memcmp(a->site, b->site, a->site_len) &&
               !memcmp(a->device, b->device, a->device_len) &&
               !memcmp(a->metric, b->metric, a->metric_len) &&
               a->ts_ms == b->ts_ms && !memcmp(&a->value, &b->value, sizeof(double)) &&
               !tally_pos_cmp(&a->origin, &b->origin) &&
               a->progress_ms == b->progress_ms;
}

static void check_readings(tally_clean_reader *rd)
{
        static tally_reading got[MAX_KEEP];
        tally_clean_writer w;
        tally_clean_reader again;
        tally_clean_origin o;
        tally_reading r;
        tally_err err;
        const unsigned char *b;
        size_t n = 0, len;
        int rc;

        while ((rc = tally_clean_reader_next(rd, &r, &err)) == 1) {
                if (r.site_len < 1 || r.site_len > TALLY_NAME_MAX ||
                    r.device_len < 1 || r.device_len > TALLY_NAME_MAX ||
                    r.metric_len < 1 || r.metric_len > TALLY_NAME_MAX ||
                    r.origin.partition < 0 || r.origin.index < 0 ||
                    r.origin.offset < 0 || r.value != r.value)
                        abort();
                if (n < MAX_KEEP)
                        got[n] = r;
                n++;
        }
        if (rc < 0) {
                if (!err.reason[0])
                        abort();
                return;
        }
        if (tally_clean_reader_next(rd, &r, &err) != 0)        /* stays at the end */
                abort();
        if (tally_clean_reader_next_origin(rd, &o, &err) != -1)
                abort();
        if (n > MAX_KEEP)
                return;
        memset(&w, 0, sizeof(w));
        tally_clean_writer_reset(&w);
        for (size_t i = 0; i < n; i++)
                tally_clean_writer_add(&w, &got[i]);
        b = tally_clean_writer_finish(&w, &len);
        if (tally_clean_reader_init(&again, b, len, &err))
                abort();
        for (size_t i = 0; i < n; i++)
                if (tally_clean_reader_next(&again, &r, &err) != 1 ||
                    !same_reading(&r, &got[i]))
                        abort();
        if (tally_clean_reader_next(&again, &r, &err) != 0)
                abort();
        tally_clean_writer_free(&w);
}

static void check_progress(tally_clean_reader *rd)
{
        static tally_clean_origin got[MAX_KEEP];
        tally_clean_reader again;
        tally_clean_origin o;
        tally_reading r;
        tally_buf b = TALLY_BUF_INIT;
        tally_err err;
        size_t n = 0;
        int rc;

        while ((rc = tally_clean_reader_next_origin(rd, &o, &err)) == 1) {
                if (o.partition < 0 || o.partition >= rd->raw_partitions)
                        abort();
                if (n < MAX_KEEP)
                        got[n] = o;
                n++;
        }
        if (rc < 0) {
                if (!err.reason[0])
                        abort();
                return;
        }
        if (tally_clean_reader_next(rd, &r, &err) != -1)
                abort();
        if (n > MAX_KEEP)
                return;
        tally_clean_progress_encode(&b, rd->raw_partitions, got, n);
        if (tally_clean_reader_init(&again, b.data, b.len, &err) ||
            again.raw_partitions != rd->raw_partitions)
                abort();
        for (size_t i = 0; i < n; i++)
                if (tally_clean_reader_next_origin(&again, &o, &err) != 1 ||
                    o.partition != got[i].partition ||
                    o.progress_ms != got[i].progress_ms)
                        abort();
        if (tally_clean_reader_next_origin(&again, &o, &err) != 0)
                abort();
        tally_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        tally_clean_reader rd;
        tally_err err;

        if (tally_clean_reader_init(&rd, data, size, &err)) {
                if (!err.reason[0])
                        abort();
                return 0;
        }
        if (rd.kind == TALLY_CLEAN_READINGS)
                check_readings(&rd);
        else if (rd.kind == TALLY_CLEAN_PROGRESS)
                check_progress(&rd);
        else
                abort();
        return 0;
}
