#include "common/daemon.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "common/signals.h"

void tally_daemon_mmap_threshold(size_t bytes)
{
#ifdef TALLY_TCMALLOC
        (void)bytes;
#else
        if (!getenv("MALLOC_MMAP_THRESHOLD_"))
                mallopt(M_MMAP_THRESHOLD, (int)bytes);
#endif
}

int tally_daemon_init(const char *prog, const char *daemon, const char *about,
                      const tally_opt *opts, size_t nopts, void *cfg,
                      tally_common_cfg *common, int argc, char **argv,
                      int *code)
{
        enum tally_log_level lvl;
        tally_err err;
        int rc;

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
