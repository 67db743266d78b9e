/* store/registrar.h -- registers a worker's new series ahead of its
 * batch. While the worker reads rollups, each series it has not seen is
 * offered here; a thread of the registrar's own, on a connection of its
 * own, registers them in tally.series (store_series_register) as they
 * come, so that registration overlaps reading instead of delaying the
 * batch. Before writing, the worker collects what was registered into its
 * set of known series; anything the registrar could not do (a series
 * stored under other names, a PostgreSQL failure) is left out of that
 * set, and the worker's own store_batch_register deals with it as
 * before. So the registrar only ever saves time: correctness never
 * depends on it.
 *
 * Thread rules: offer/collect/free from the worker thread only; the
 * registrar thread touches only its own connection and the shared lists
 * under its mutex. */
#pragma once
#include <stdint.h>

#include "store/series.h"

typedef struct store_registrar store_registrar;

/* Starts the thread (the connection is opened on first use). NULL when
 * the thread could not start: the caller goes on without one. */
store_registrar *store_registrar_start(const char *conninfo, const char *who);

/* Offers a series seen in a rollup (names copied). Offers of an id
 * already offered are ignored. */
void store_registrar_offer(store_registrar *r, int64_t id, uint64_t check,
                           const char *site, const char *device,
                           const char *metric);

/* Waits until every offer so far was handled, then adds the series
 * registered under our names to known (id -> check). */
void store_registrar_collect(store_registrar *r, store_series_set *known);

/* Stops the thread and frees everything (NULL is fine). */
void store_registrar_free(store_registrar *r);
