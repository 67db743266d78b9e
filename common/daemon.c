#include "common/daemon.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/signals.h"

/* glibc raises its mmap threshold to the size of each mapped block that
 * is freed (up to 32 MiB). After the first few, librdkafka's fetch,
 * decompression and produce buffers (about a megabyte each, allocated by
 * a broker thread and freed by a worker, or the other way round) came
 * from the heap arenas instead and left them fragmented: the daemons'
 * peak RSS crept up with the length of the input (docs/performance.md,
 * "memory and input length"). A fixed threshold keeps every block of
 * 1 MiB or more in a mapping of its own, returned when it is freed.
 * MALLOC_MMAP_THRESHOLD_ in the environment still decides. */
static void daemon_malloc_policy(void)
{
        if (!getenv("MALLOC_MMAP_THRESHOLD_"))
                mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

int tally_daemon_init(const char *prog, const char *daemon, const char *about,
                      const tally_opt *opts, size_t nopts, void *cfg,
                      tally_common_cfg *common, int argc, char **argv,
                      int *code)
{
        enum tally_log_level lvl;
        tally_err err;
        int rc;

        daemon_malloc_policy();
        tally_err_clear(&err);
        rc = tally_config_parse(prog, about, opts, nopts, cfg, &common->kafka,
                                argc, argv, &err);
        if (rc == 1) {
                *code = 0;
                return -1;
        }
        if (rc < 0 || tally_log_level_parse(common->log_level, &lvl)) {
                fprintf(stderr, "%s: %s\n", prog, rc < 0 ? err.msg :
                        "--log-level: expected debug, info, warn or error");
                tally_config_free(opts, nopts, cfg, &common->kafka);
                *code = 2;
                return -1;
        }
        tally_log_init(daemon, lvl);
        tally_signals_install();
        return 0;
}
