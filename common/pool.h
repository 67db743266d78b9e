/* common/pool.h -- the worker threads of a consumer-group daemon and the
 * main thread's loop: start the workers, serve the group's rebalances until
 * a stop is requested, then let every worker finish (each drains, flushes
 * and commits on its own), join and free them. The pool owns the workers
 * for the duration of tally_pool_run; the group stays the caller's. */
#pragma once
#include "common/err.h"
#include "common/group.h"

typedef struct tally_pool_ops {
        /* Creates worker id (0..n-1) of ctx; NULL with err on failure. */
        void *(*create)(void *ctx, int id, tally_err *err);
        /* The thread body; returns when a stop is requested. */
        void *(*run)(void *worker);
        void (*destroy)(void *worker);
} tally_pool_ops;

/* Returns 0 after a requested stop, or -1 with err when a worker could not
 * start or an assign hook failed (a stop is then requested too). */
int tally_pool_run(tally_group *g, int n, const tally_pool_ops *ops,
                   void *ctx, tally_err *err);
