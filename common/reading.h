/* common/reading.h -- the normalized reading that flows from ingest to
 * aggregate, and its origin (the raw Kafka position it came from). Plain
 * values; strings are borrowed from whatever buffer they were decoded from. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Position of a reading in the raw topic. index numbers the readings of
 * one raw message in document order, rejected ones included, so that a
 * replay gives every reading the same position. Compared lexicographically
 * (partition, offset, index) to break ties of equal event times. */
typedef struct tally_pos {
        int32_t partition;
        int32_t index;
        int64_t offset;
} tally_pos;

typedef struct tally_reading {
        const char *site;
        const char *device;
        const char *metric;
        uint16_t site_len, device_len, metric_len;
        /* set by the clean reader (tally_clean_reader_next), 0 elsewhere:
         * bit 0 site, bit 1 device, bit 2 metric are byte for byte the
         * previous reading's of the same record */
        uint8_t repeat;
        /* set by the clean reader, 0 elsewhere: 1 + the slot of the
         * metric in its record's table (every reading of one record with
         * the same slot has the same metric), 0 for none */
        uint8_t metric_slot;
        int64_t ts_ms;          /* event time, epoch milliseconds UTC */
        double value;           /* finite */
        tally_pos origin;
        int64_t progress_ms;    /* origin progress before its raw message */
} tally_reading;

#define TALLY_NAME_MAX 200      /* longest site/device/metric accepted */

/* <0, 0, >0 like memcmp */
static inline int tally_pos_cmp(const tally_pos *a, const tally_pos *b)
{
        if (a->partition != b->partition)
                return a->partition < b->partition ? -1 : 1;
        if (a->offset != b->offset)
                return a->offset < b->offset ? -1 : 1;
        if (a->index != b->index)
                return a->index < b->index ? -1 : 1;
        return 0;
}

/* Stable 32-bit FNV-1a: picks a series' clean and rollup partition. Every
 * program (ingest, aggregate, tally-gen) must use this one. */
static inline uint32_t tally_hash(const void *p, size_t n)
{
        const unsigned char *s = p;
        uint32_t h = 2166136261u;

        for (size_t i = 0; i < n; i++) {
                h ^= s[i];
                h *= 16777619u;
        }
        return h;
}

static inline int32_t tally_partition_for(const char *key, size_t n,
                                          int32_t partitions)
{
        return (int32_t)(tally_hash(key, n) % (uint32_t)partitions);
}
