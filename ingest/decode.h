/* ingest/decode.h -- decodes one raw Kafka message (tally.raw) into
 * readings, per the accepted shapes of docs/input.md: a single reading, a
 * device report with several readings, a JSON array of those, NDJSON, and
 * gzip of any of them (detected by magic bytes 1f 8b).
 *
 * Every reading gets an index: its position in document order among all
 * readings of the message, rejected ones included (a rejected element that
 * holds no parsable readings uses one index). The same bytes always give
 * the same indexes, which is what makes replays deduplicable.
 *
 * The decoder owns a reusable scratch buffer (for inflating) and is used by
 * one thread at a time. Strings handed to the callback are borrowed, valid
 * only during the call, and not NUL-terminated (use the lengths). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/reading.h"

typedef struct ingest_limits {
        size_t max_message;     /* bytes as received (default 1 MiB) */
        size_t max_inflated;    /* bytes after gunzip (default 16 MiB) */
        int64_t max_past_ms;    /* ts >= record_ts - max_past (default 7 d) */
        int64_t max_future_ms;  /* ts <= record_ts + max_future (default 5 min) */
} ingest_limits;

typedef enum ingest_event_kind {
        INGEST_EV_READING,      /* reading is set */
        INGEST_EV_REJECT,       /* reason/detail/element set */
} ingest_event_kind;

typedef struct ingest_event {
        ingest_event_kind kind;
        int32_t index;          /* reading index within the message */
        int32_t element;        /* top-level element (array index / NDJSON line, 0 for a lone object) */
        /* READING: site/device/metric/ts_ms/value set; origin and
         * progress_ms are left 0 for the caller to fill. */
        const tally_reading *reading;
        /* REJECT: machine reason (missing_field, bad_field,
         * bad_timestamp, non_finite_value, bad_value, malformed_json,
         * too_large, empty), a message naming the field, and the
         * offending element's text (compact JSON, or the raw line). */
        const char *reason;
        const char *detail;
        const char *element_text;
        size_t element_len;
} ingest_event;

/* Return 0 to go on, -1 to stop decoding (ingest_decode then returns -1
 * with err reason "callback"). */
typedef int (*ingest_event_cb)(void *opaque, const ingest_event *ev);

typedef struct ingest_decoder ingest_decoder;

/* Which parser decodes: AUTO (the default) tries the fast scanner
 * (ingest/scan.h) and takes jansson for what it does not handle; JANSSON
 * never uses the scanner; FAST never uses jansson and fails with err
 * reason "not_handled" instead (for tests comparing the two). */
typedef enum ingest_decode_mode {
        INGEST_DECODE_AUTO,
        INGEST_DECODE_JANSSON,
        INGEST_DECODE_FAST,
} ingest_decode_mode;

void ingest_limits_default(ingest_limits *lim);
ingest_decoder *ingest_decoder_new(const ingest_limits *lim);
void ingest_decoder_free(ingest_decoder *d);
void ingest_decoder_set_mode(ingest_decoder *d, ingest_decode_mode mode);

/* Decodes buf[0..len). record_ts_ms is the Kafka record timestamp, the
 * only clock the timestamp bounds are judged against. Returns 0 when the
 * message was decoded (individual elements may have been rejected through
 * cb), or -1 when the message as a whole is rejected: err->reason is
 * malformed_json, too_large, decompression_failed or empty, and the caller
 * dead-letters the original bytes. Never crashes on any input. */
int ingest_decode(ingest_decoder *d, const void *buf, size_t len,
                  int64_t record_ts_ms, ingest_event_cb cb, void *opaque,
                  tally_err *err);
