/* common/procstat.h -- the process's own resource use for GET /metrics,
 * read at each scrape: CPU seconds, resident and peak resident memory and
 * threads (/proc/self/status, getrusage), under the names Prometheus
 * clients use where one exists (process_*), and, when tally links
 * tcmalloc, what the allocator holds: bytes in use, its heap, and the free
 * bytes it keeps (docs/operations.md, "Metrics"). */
#pragma once
#include "common/buf.h"

/* Appends the figures in the text exposition format. A figure that cannot
 * be read (no /proc) is left out. */
void tally_procstat_write(tally_buf *out);
