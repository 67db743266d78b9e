/* ingest/scan.h -- the fast path of the raw decoder: a streaming scanner
 * for the common, well-formed shapes of docs/input.md (a device report, a
 * single reading, a JSON array or NDJSON of those), with no allocation per
 * message or per reading.
 *
 * It only ever says "all of these readings are accepted" or "not handled":
 * anything it is not sure of (escapes in strings, unknown or duplicate
 * keys, null, nested values, numbers it would not read exactly like
 * jansson, invalid UTF-8, a reading that would be rejected, any syntax
 * error) makes the whole message "not handled", before any event went out,
 * and ingest_decode then takes the jansson path for it. So rejections have
 * exactly one implementation (decode.c), and for every message the scanner
 * accepts, its readings equal what the jansson path would produce.
 *
 * Strings of the readings point into the scanned bytes. The scanner's item
 * array is reused from message to message; one scanner is used by one
 * thread at a time. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/reading.h"

typedef struct ingest_scan_item {
        tally_reading r;        /* site/device/metric/ts_ms/value set */
        int32_t element;        /* top-level element */
} ingest_scan_item;

typedef struct ingest_scan {
        ingest_scan_item *items;        /* [n], index i is reading index i */
        size_t n, cap;
} ingest_scan;

/* Scans p[0..n), which starts with '{' or '['. Accepted readings must
 * have ts in [ts_min, ts_max]. Returns 0 with s->items[0..s->n) set when
 * the whole message was understood and every reading is accepted, or -1
 * ("not handled": use the jansson path). */
int ingest_scan_run(ingest_scan *s, const char *p, size_t n, int64_t ts_min,
                    int64_t ts_max);

void ingest_scan_free(ingest_scan *s);
