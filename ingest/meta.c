#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ingest/ingest.h"

void ingest_meta_format(char *out, size_t n, int64_t progress, int32_t clean)
{
        if (progress == INT64_MIN)
                snprintf(out, n, "tally-ingest/1 progress=none clean=%" PRId32,
                         clean);
        else
                snprintf(out, n, "tally-ingest/1 progress=%" PRId64
                         " clean=%" PRId32, progress, clean);
}

int ingest_meta_parse(const char *s, size_t len, int64_t *progress,
                      int32_t *clean)
{
        char buf[128], none[8];
        long long p;
        int c, used = 0;

        if (len >= sizeof(buf))
                return -1;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (sscanf(buf, "tally-ingest/1 progress=%lld clean=%d%n", &p, &c,
                   &used) == 2 && (size_t)used == len) {
                *progress = p;
                *clean = c;
                return 0;
        }
        if (sscanf(buf, "tally-ingest/1 progress=%4s clean=%d%n", none, &c,
                   &used) == 2 && !strcmp(none, "none") && (size_t)used == len) {
                *progress = INT64_MIN;
                *clean = c;
                return 0;
        }
        return -1;
}
