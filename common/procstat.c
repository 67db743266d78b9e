#include "common/procstat.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#ifdef TALLY_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

#include "common/metrics.h"

/* "VmRSS:    1234 kB" lines of /proc/self/status, in bytes (kB fields)
 * or as counted (Threads) */
static void put_status(tally_buf *out)
{
        static const struct {
                const char *field, *name, *help;
                double scale;
        } f[] = {
                {"VmRSS:", "process_resident_memory_bytes",
                 "resident memory size in bytes", 1024},
                {"VmHWM:", "tally_process_peak_resident_memory_bytes",
                 "peak resident memory size since the start, in bytes", 1024},
                {"VmSize:", "process_virtual_memory_bytes",
                 "virtual memory size in bytes", 1024},
                {"Threads:", "tally_process_threads", "threads of the process", 1},
        };
        char line[256];
        FILE *st = fopen("/proc/self/status", "r");

        if (!st)
                return;
        while (fgets(line, sizeof(line), st)) {
                for (size_t i = 0; i < sizeof(f) / sizeof(*f); i++) {
                        size_t n = strlen(f[i].field);
                        double v;

                        if (!strncmp(line, f[i].field, n) &&
                            sscanf(line + n, "%lf", &v) == 1)
                                tally_metrics_put(out, TALLY_GAUGE, f[i].name,
                                                  f[i].help, v * f[i].scale);
                }
        }
        fclose(st);
}

static void put_malloc(tally_buf *out)
{
#ifdef TALLY_TCMALLOC
        static const struct {
                const char *prop, *name, *help;
        } p[] = {
                {"generic.current_allocated_bytes", "tally_malloc_allocated_bytes",
                 "bytes in use by the program (tcmalloc)"},
                {"generic.heap_size", "tally_malloc_heap_bytes",
                 "bytes tcmalloc has taken from the system, returned ones included"},
                {"tcmalloc.pageheap_free_bytes", "tally_malloc_free_bytes",
                 "free bytes tcmalloc keeps mapped in its page heap"},
                {"tcmalloc.pageheap_unmapped_bytes", "tally_malloc_unmapped_bytes",
                 "free bytes tcmalloc has returned to the system"},
                {"tcmalloc.current_total_thread_cache_bytes",
                 "tally_malloc_thread_cache_bytes", "bytes in tcmalloc's thread caches"},
        };

        for (size_t i = 0; i < sizeof(p) / sizeof(*p); i++) {
                size_t v;

                if (MallocExtension_GetNumericProperty(p[i].prop, &v))
                        tally_metrics_put(out, TALLY_GAUGE, p[i].name,
                                          p[i].help, (double)v);
        }
#else
        (void)out;
#endif
}

void tally_procstat_write(tally_buf *out)
{
        struct rusage ru;

        if (!getrusage(RUSAGE_SELF, &ru))
                tally_metrics_put(out, TALLY_COUNTER, "process_cpu_seconds_total",
                                  "user and system CPU time spent in seconds",
                                  (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                                  ((double)ru.ru_utime.tv_usec +
                                   (double)ru.ru_stime.tv_usec) / 1e6);
        put_status(out);
        put_malloc(out);
}
