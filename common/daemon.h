/* common/daemon.h -- the start of every daemon's main: options (table,
 * environment, flags), logging and signal handling, in one call, so each
 * main.c only wires its modules. */
#pragma once
#include <stddef.h>

#include "common/config.h"

/* Parses the options into cfg (whose tally_common_cfg is *common), starts
 * logging as daemon and installs the signal handlers. Returns 0 to go on,
 * or -1 when the program should exit with *code: 0 after --help, 2 after a
 * bad option (the one-line error is printed to stderr). */
int tally_daemon_init(const char *prog, const char *daemon, const char *about,
                      const tally_opt *opts, size_t nopts, void *cfg,
                      tally_common_cfg *common, int argc, char **argv,
                      int *code);

/* Fixes glibc's mmap threshold at bytes, unless MALLOC_MMAP_THRESHOLD_ is
 * set. glibc raises the threshold to the size of every mapped block
 * freed (up to 32 MiB); after that, librdkafka's megabyte fetch and
 * decompression buffers, allocated by a broker thread and freed by a
 * worker, come from the heap arenas and leave them fragmented, so peak
 * RSS crept up with the length of a backlog. A fixed threshold keeps
 * such blocks in mappings of their own, returned when freed; the price
 * is a mapping and its page faults per block (docs/performance.md,
 * "memory and input length": worth it in store and aggregate, not in
 * ingest, whose raw fetches are many and short-lived). Does nothing in a
 * build linked with tcmalloc (the default: CMakeLists.txt), which keeps
 * its own free lists and ignores mallopt. */
void tally_daemon_mmap_threshold(size_t bytes);
