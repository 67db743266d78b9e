#include "common/pool.h"

#include <pthread.h>
#include <stdlib.h>

#include "common/signals.h"

int tally_pool_run(tally_group *g, int n, const tally_pool_ops *ops,
                   void *ctx, tally_err *err)
{
        void **workers = calloc((size_t)n, sizeof(*workers));
        pthread_t *threads = calloc((size_t)n, sizeof(*threads));
        int started = 0, rc = -1;

        if (!workers || !threads)
                abort();
        for (; started < n; started++) {
                workers[started] = ops->create(ctx, started, err);
                if (!workers[started])
                        goto out;
                if (pthread_create(&threads[started], NULL, ops->run,
                                   workers[started])) {
                        ops->destroy(workers[started]);
                        workers[started] = NULL;
                        tally_err_set(err, "thread", "cannot start worker %d",
                                      started);
                        goto out;
                }
        }
        while (!tally_stop_requested())
                if (tally_group_poll(g, 100, err))
                        goto out;
        rc = 0;
out:
        tally_stop_request();
        for (int i = 0; i < started; i++)
                pthread_join(threads[i], NULL);
        for (int i = 0; i < started; i++)
                ops->destroy(workers[i]);
        free(workers);
        free(threads);
        return rc;
}
