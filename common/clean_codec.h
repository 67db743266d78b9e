/* common/clean_codec.h -- tally.clean record encoding (spec:
 * docs/clean-format.md): the writer writes version 2, the reader reads
 * versions 1 and 2. Two kinds of record:
 *   readings: a batch of normalized readings bound for one clean partition;
 *   progress: an origin progress marker (raw partition -> progress).
 * Writers and readers are plain values owned by their caller (one thread).
 * Strings returned by the reader point into the decoded buffer. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/reading.h"

#define TALLY_CLEAN_MAGIC0 0x54  /* 'T' */
#define TALLY_CLEAN_MAGIC1 0x43  /* 'C' */
#define TALLY_CLEAN_VERSION 2     /* written */
#define TALLY_CLEAN_VERSION_1 1   /* still read */
/* Metric names a readings record keeps in its table (version 2). */
#define TALLY_CLEAN_METRICS 16
/* Event times and progress must lie within +-2^50 ms (+-35,000 years),
 * INT64_MIN aside for unknown progress: downstream arithmetic on them
 * (window end + disorder + lateness) then cannot overflow. */
#define TALLY_CLEAN_TIME_LIMIT (INT64_C(1) << 50)

typedef enum tally_clean_kind {
        TALLY_CLEAN_READINGS = 1,
        TALLY_CLEAN_PROGRESS = 2,
} tally_clean_kind;

typedef struct tally_clean_writer {
        tally_buf buf;
        uint32_t count;
        tally_reading prev;     /* delta state (strings unused) */
        size_t str_off[2];      /* previous site/device in buf */
        uint16_t str_len[2];
        /* the record's metric table: offsets of the names in buf */
        size_t metric_off[TALLY_CLEAN_METRICS];
        uint8_t metric_len[TALLY_CLEAN_METRICS];
        unsigned nmetrics;
        int last_metric;        /* table slot of the previous reading's, or -1 */
} tally_clean_writer;

void tally_clean_writer_reset(tally_clean_writer *w);
/* Appends r; its strings are copied into the buffer (r may go away). A
 * site or device equal to the previous reading's is written as a flag
 * bit, a metric already in the record's table as its slot, and the
 * origin of the next reading of the same raw message as a flag bit. */
void tally_clean_writer_add(tally_clean_writer *w, const tally_reading *r);
/* Finishes the record; returns its bytes (owned by w until the next reset). */
const unsigned char *tally_clean_writer_finish(tally_clean_writer *w,
                                               size_t *len);
void tally_clean_writer_free(tally_clean_writer *w);

typedef struct tally_clean_origin {
        int32_t partition;      /* raw partition */
        int64_t progress_ms;
} tally_clean_origin;

/* Encodes a progress marker: raw topic partition count, then the origins
 * it reports. */
void tally_clean_progress_encode(tally_buf *out, int32_t raw_partitions,
                                 const tally_clean_origin *o, size_t n);

typedef struct tally_clean_reader {
        const unsigned char *p, *end;
        tally_clean_kind kind;
        unsigned version;
        uint32_t remaining;
        int32_t raw_partitions;         /* progress records */
        tally_reading prev;             /* the reading last decoded */
        int prev_metric;                /* table slot of prev's metric, or -1 */
        unsigned nmetrics;              /* version 2: the metric table */
        const char *metric[TALLY_CLEAN_METRICS];
        uint8_t metric_len[TALLY_CLEAN_METRICS];
} tally_clean_reader;

/* Checks magic and version and reads the header. Returns 0 or -1 (err). */
int tally_clean_reader_init(tally_clean_reader *rd, const void *buf,
                            size_t len, tally_err *err);
/* Next reading of a READINGS record, decoded in place: 1 = got one, in
 * rd->prev until the next call, 0 = end, -1 = corrupt (and so is every
 * call after it). (Handing it out in place saves a copy per reading on
 * aggregate's hot path.) */
int tally_clean_reader_step(tally_clean_reader *rd, tally_err *err);

/* The same, copied into *r. */
static inline int tally_clean_reader_next(tally_clean_reader *rd,
                                          tally_reading *r, tally_err *err)
{
        int rc = tally_clean_reader_step(rd, err);

        if (rc == 1)
                *r = rd->prev;
        return rc;
}
/* Next origin of a PROGRESS record: 1, 0 or -1 likewise. */
int tally_clean_reader_next_origin(tally_clean_reader *rd,
                                   tally_clean_origin *o, tally_err *err);
