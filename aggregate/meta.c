#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "aggregate/agg.h"

void agg_meta_format(char *out, size_t n, int64_t final_below)
{
        if (final_below == INT64_MIN)
                snprintf(out, n, "tally-aggregate/1 final_below=none");
        else
                snprintf(out, n, "tally-aggregate/1 final_below=%" PRId64,
                         final_below);
}

int agg_meta_parse(const char *s, size_t len, int64_t *final_below)
{
        static const char none[] = "tally-aggregate/1 final_below=none";
        char buf[96];
        long long v;
        int used = 0;

        if (len == sizeof(none) - 1 && !memcmp(s, none, len)) {
                *final_below = INT64_MIN;
                return 0;
        }
        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (sscanf(buf, "tally-aggregate/1 final_below=%lld%n", &v, &used) != 1 ||
            (size_t)used != len)
                return -1;
        *final_below = v;
        return 0;
}
