/* store/series.h -- series ids: the 64-bit key that stands for a
 * (site, device, metric) in the rollup tables, and the set of ids a worker
 * knows to be registered in tally.series.
 *
 * The id is a fixed hash of the three names (docs/schema.md), so it
 * needs no round trip to assign and is the same in every process. Before
 * a batch uses an id, the series is registered (the ids already stored
 * are looked up, the others copied in; if another worker registered one
 * meanwhile, staged and inserted with ON CONFLICT DO NOTHING instead)
 * and the stored names are compared with ours: two series with
 * one id (a hash collision, about 1 in 10^7 at a million series) are
 * refused, never merged. A store_series_set belongs to one worker. */
#pragma once
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/pg.h"

/* In [1, 2^63): never 0 (the set's empty slot), never negative. */
int64_t store_series_id(const char *site, const char *device,
                        const char *metric);
/* A second, independent hash of the names: a series known under an id
 * with another check value is a collision. */
uint64_t store_series_check(const char *site, const char *device,
                            const char *metric);

/* id -> check: the series this worker has registered (or is about to). */
typedef struct store_series_set {
        struct store_series_slot { int64_t id; uint64_t check; } *slot;
        size_t cap, used;               /* open addressing, id 0 = empty */
} store_series_set;

void store_series_set_init(store_series_set *s);
void store_series_set_free(store_series_set *s);
void store_series_set_clear(store_series_set *s);
/* 1 and *check when id is in the set, else 0. */
int store_series_set_find(const store_series_set *s, int64_t id,
                          uint64_t *check);
/* Adds or overwrites. The set forgets everything beyond a few million
 * ids (it is a cache: forgetting costs one more registration). */
void store_series_set_put(store_series_set *s, int64_t id, uint64_t check);

/* One series to register: its id and borrowed names. */
typedef struct store_series_new {
        int64_t id;
        const char *site, *device, *metric;
} store_series_new;

/* Once per connection: the temp table registration copies into. */
store_pg_rc store_series_prepare(PGconn *conn, tally_err *err);

/* Registers n series (ids unique within the array) in one short
 * transaction of its own. On return bad[i] is 1 for each series whose id is already
 * registered under other names (the caller refuses its rows); the others
 * are registered and may be added to the set. */
store_pg_rc store_series_register(PGconn *conn, const store_series_new *nv,
                                  size_t n, unsigned char *bad,
                                  tally_buf *scratch, tally_err *err);
