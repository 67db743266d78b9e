/* common/daemon.h -- the start of every daemon's main: options (table,
 * environment, flags), logging, signal handling and the allocator's
 * large-block policy, in one call, so each main.c only wires its
 * modules. */
#pragma once
#include "common/config.h"

/* Parses the options into cfg (whose tally_common_cfg is *common), starts
 * logging as daemon and installs the signal handlers. Returns 0 to go on,
 * or -1 when the program should exit with *code: 0 after --help, 2 after a
 * bad option (the one-line error is printed to stderr). */
int tally_daemon_init(const char *prog, const char *daemon, const char *about,
                      const tally_opt *opts, size_t nopts, void *cfg,
                      tally_common_cfg *common, int argc, char **argv,
                      int *code);
