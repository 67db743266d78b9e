/* tests/fuzz/fuzz_rollup.c -- tally.rollups decoder: any input either
 * fails with a reason or decodes to a record that re-encodes and decodes
 * to the same values; and the decoder's direct path gives exactly what
 * jansson alone gives (same result, same error, same bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/rollup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        tally_rollup r, again, ref;
        tally_buf b = TALLY_BUF_INIT;
        tally_err err, ref_err;
        int rc = tally_rollup_decode(data, size, &r, &err);

        if (tally_rollup_decode_json(data, size, &ref, &ref_err) != rc ||
            (rc && (strcmp(err.reason, ref_err.reason) ||
                    strcmp(err.msg, ref_err.msg))) ||
            (!rc && memcmp(&r, &ref, sizeof(r))))
                abort();        /* the direct path differs from jansson */
        if (rc != 0) {
                if (!err.reason[0])
                        abort();        /* every failure names a reason */
                return 0;
        }
        tally_rollup_encode(&r, &b);
        if (tally_rollup_decode(b.data, b.len, &again, &err) != 0)
                abort();
        if (strcmp(r.site, again.site) || strcmp(r.device, again.device) ||
            strcmp(r.metric, again.metric) || r.count != again.count ||
            r.start_ms != again.start_ms || r.window_ms != again.window_ms ||
            r.version != again.version ||
            memcmp(&r.sum, &again.sum, sizeof(double)) ||
            memcmp(&r.min, &again.min, sizeof(double)) ||
            memcmp(&r.max, &again.max, sizeof(double)) ||
            memcmp(&r.first.value, &again.first.value, sizeof(double)) ||
            memcmp(&r.last.value, &again.last.value, sizeof(double)) ||
            r.first.ts_ms != again.first.ts_ms ||
            r.last.ts_ms != again.last.ts_ms ||
            tally_pos_cmp(&r.first.pos, &again.first.pos) ||
            tally_pos_cmp(&r.last.pos, &again.last.pos))
                abort();
        tally_buf_free(&b);
        return 0;
}
