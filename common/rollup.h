/* common/rollup.h -- the tally.rollups record: one version of one
 * (series, finest window) rollup, as documented JSON (docs/rollups.md).
 * Owns no state: safe from any thread. Names are copied into the struct
 * so a decoded rollup does not borrow the message. */
#pragma once
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/reading.h"

typedef struct tally_rollup_edge {      /* first or last reading */
        int64_t ts_ms;
        double value;
        tally_pos pos;                  /* breaks ties of equal ts */
} tally_rollup_edge;

typedef struct tally_rollup {
        char site[TALLY_NAME_MAX + 1];
        char device[TALLY_NAME_MAX + 1];
        char metric[TALLY_NAME_MAX + 1];
        int64_t window_ms;              /* size of the (finest) window */
        int64_t start_ms;               /* window start, epoch ms UTC */
        int64_t count;
        double sum, min, max;
        tally_rollup_edge first, last;
        int64_t version;                /* distinct readings counted (== count) */
} tally_rollup;

/* Appends one JSON object (no newline) to out:
 * {"v":1,"site":"DAL-07","device":"cooler-17","metric":"temperature_c",
 *  "window_ms":60000,"start":"2026-11-24T10:15:00.000Z","start_ms":1795...,
 *  "count":12,"sum":40.2,"min":3.1,"max":3.6,
 *  "first":{"ts_ms":...,"value":3.4,"origin":[3,1200,0]},
 *  "last":{"ts_ms":...,"value":3.5,"origin":[3,1290,1]},"version":12}
 * Doubles are written with 17 significant digits (exact round trip). */
void tally_rollup_encode(const tally_rollup *r, tally_buf *out);

/* Decodes one record. Validates every field (types, finite numbers,
 * count >= 1, min <= max, version >= 1, start aligned to window_ms, name
 * lengths <= TALLY_NAME_MAX, v == 1). Returns 0, or -1 with err naming the
 * field (reason "malformed_json", "missing_field", "bad_field"). */
int tally_rollup_decode(const void *buf, size_t len, tally_rollup *r,
                        tally_err *err);
/* The same through jansson alone, for any layout. tally_rollup_decode
 * reads its own encoder's layout directly and hands everything else to
 * this; both give the same result on every input (fuzz_rollup). */
int tally_rollup_decode_json(const void *buf, size_t len, tally_rollup *r,
                             tally_err *err);
