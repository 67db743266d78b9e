/* aggregate/series.h -- interns series (site, device, metric) of one clean
 * partition into dense ids. Each distinct name is stored once (length
 * byte + bytes) in arena blocks that never move. A device (site, device:
 * two name references, 16 bytes) is found through an open-addressing
 * index, or without hashing when it is the previous reading's device; a
 * series (device, metric name reference, a chain link and a word for its
 * owner: 16 bytes) along its device's chain, or through an index keyed by
 * those integers. Names are read back through a view filled by
 * agg_series_get, valid until agg_series_table_free.
 * Owned by the partition's worker thread. */
#pragma once
#include <stdint.h>

#include "common/reading.h"

/* A series' names, borrowed from the table. */
typedef struct agg_series {
        const char *site, *device, *metric;
        uint16_t site_len, device_len, metric_len;
} agg_series;

typedef struct agg_series_table agg_series_table;

agg_series_table *agg_series_table_new(void);
void agg_series_table_free(agg_series_table *t);
/* Id of r's series, interning it if new (names longer than 255 bytes are
 * refused upstream: TALLY_NAME_MAX). */
uint32_t agg_series_intern(agg_series_table *t, const tally_reading *r);
/* The same for the reading right after the one the last call interned:
 * the names that repeat (tally_reading.repeat bits) says are that
 * reading's are taken from it without comparing them again, and a metric
 * of the same record (any number that no other record has, such as its
 * clean offset) and table slot (tally_reading.metric_slot) as one before
 * is taken from that one. */
uint32_t agg_series_intern_next(agg_series_table *t, const tally_reading *r,
                                unsigned repeat, int64_t record);
void agg_series_get(const agg_series_table *t, uint32_t id, agg_series *out);
uint32_t agg_series_count(const agg_series_table *t);
/* A word kept with the series for its owner (agg_part: a guess of the
 * series' window index), UINT32_MAX when new. Next to what
 * agg_series_intern just read, so it costs no cache miss. */
uint32_t *agg_series_user(agg_series_table *t, uint32_t id);
/* Bytes held by the table (for tests and metrics). */
size_t agg_series_bytes(const agg_series_table *t);
