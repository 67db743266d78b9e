/* tests/fuzz/fuzz_timefmt.c -- tally_time_parse never reads past n nor
 * crashes; whatever it accepts formats and parses back to the same
 * instant (within the 4-digit-year range); formatting any 8 bytes read as
 * an int64 parses back to itself, clamped. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"

#define FMT_MIN_MS (-62135596800000LL)
#define FMT_MAX_MS (253402300799999LL)

static void round_trip(int64_t ms)
{
        char out[32];
        int64_t back;

        if (tally_time_format(ms, out) != 24 || strlen(out) != 24)
                abort();
        if (tally_time_parse(out, 24, &back) != 0)
                abort();
        if (ms < FMT_MIN_MS)
                ms = FMT_MIN_MS;
        if (ms > FMT_MAX_MS)
                ms = FMT_MAX_MS;
        if (back != ms)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* an exact-size copy, so ASan catches any read past n */
        char *s = malloc(size ? size : 1);
        int64_t ms;

        memcpy(s, data, size);
        if (tally_time_parse(s, size, &ms) == 0) {
                if (ms >= FMT_MIN_MS && ms <= FMT_MAX_MS)
                        round_trip(ms);
        }
        free(s);
        if (size >= 8) {
                memcpy(&ms, data, 8);
                round_trip(ms);
        }
        return 0;
}
