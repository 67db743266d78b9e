/* tests/unit/test_procstat.c -- common/procstat.h: the process figures
 * GET /metrics appends, checked against what this process did (memory
 * touched, CPU spent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/procstat.h"

/* the value of the sample line "name value", or -1 when there is none */
static double sample(const tally_buf *b, const char *name)
{
        char pat[128];
        const char *s = (const char *)b->data, *at;

        snprintf(pat, sizeof(pat), "\n%s ", name);
        at = strstr(s, pat);
        return at ? strtod(at + strlen(pat), NULL) : -1;
}

static void scrape(tally_buf *b)
{
        b->len = 0;
        tally_buf_printf(b, "\n");      /* every sample line follows a '\n' */
        tally_procstat_write(b);
}

static void test_memory_and_cpu(void **state)
{
        const size_t big = (size_t)64 << 20;
        tally_buf b = TALLY_BUF_INIT;
        double rss0, peak0, cpu0;
        volatile unsigned char *p;
        unsigned long spin = 0;

        (void)state;
        scrape(&b);
        rss0 = sample(&b, "process_resident_memory_bytes");
        peak0 = sample(&b, "tally_process_peak_resident_memory_bytes");
        cpu0 = sample(&b, "process_cpu_seconds_total");
        assert_true(rss0 > 0);
        assert_true(peak0 >= rss0);
        assert_true(cpu0 >= 0);
        assert_true(sample(&b, "tally_process_threads") >= 1);
        assert_true(sample(&b, "process_virtual_memory_bytes") >= rss0);
        assert_non_null(strstr((char *)b.data,
                               "# TYPE process_cpu_seconds_total counter\n"));
        assert_non_null(strstr((char *)b.data,
                               "# TYPE process_resident_memory_bytes gauge\n"));

        /* 64 MiB touched: resident and peak grow by about that much */
        p = malloc(big);
        assert_non_null(p);
        for (size_t i = 0; i < big; i += 4096)
                p[i] = 1;
        scrape(&b);
        assert_true(sample(&b, "process_resident_memory_bytes") >= rss0 + 0.9 * big);
        assert_true(sample(&b, "tally_process_peak_resident_memory_bytes") >=
                    peak0 + 0.9 * big - (peak0 - rss0));
#ifdef TALLY_TCMALLOC
        assert_true(sample(&b, "tally_malloc_allocated_bytes") >= big);
        assert_true(sample(&b, "tally_malloc_heap_bytes") >= big);
        assert_true(sample(&b, "tally_malloc_free_bytes") >= 0);
#endif
        free((void *)p);

        /* CPU: the counter does not go back, and moves with work done */
        for (unsigned long i = 0; i < 200000000UL; i++)
                spin += i ^ (spin >> 3);
        assert_true(spin != 1);
        scrape(&b);
        assert_true(sample(&b, "process_cpu_seconds_total") > cpu0);
        tally_buf_free(&b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_memory_and_cpu),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
