/* aggregate/series.h -- interns series (site, device, metric) of one clean
 * partition into dense ids. Strings are copied into arena blocks that
 * never move, so an agg_series stays valid until agg_series_table_free.
 * Owned by the partition's worker thread. */
#pragma once
#include <stdint.h>

#include "common/reading.h"

typedef struct agg_series {
        const char *site, *device, *metric;
        uint16_t site_len, device_len, metric_len;
        uint32_t hash;
} agg_series;

typedef struct agg_series_table agg_series_table;

agg_series_table *agg_series_table_new(void);
void agg_series_table_free(agg_series_table *t);
/* Id of r's series, interning it if new. */
uint32_t agg_series_intern(agg_series_table *t, const tally_reading *r);
const agg_series *agg_series_get(const agg_series_table *t, uint32_t id);
uint32_t agg_series_count(const agg_series_table *t);
