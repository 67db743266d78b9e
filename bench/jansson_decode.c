/*
 * jansson_decode -- the primitive under tally-ingest: decode the raw
 * messages with jansson's json_loadb on one thread, nothing else.
 *
 * Input: tally-gen --out stdout lines (key TAB payload; plain JSON
 * payloads only, other lines are skipped). The whole file is read into
 * memory first; only the decode loop is timed. Prints one logfmt line:
 * messages, points (members of "readings", or 1 for a single reading),
 * seconds, msgs_per_s, points_per_s. Single-threaded on purpose.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
        FILE *f;
        char *data = NULL, *p, *end;
        size_t len = 0, cap = 0, n, nmsg = 0, cmsg = 0, i;
        const char **msg = NULL;
        size_t *mlen = NULL;
        long long points = 0;
        int rounds = argc > 2 ? atoi(argv[2]) : 1, r;
        double t0, t1;

        if (argc < 2) {
                fprintf(stderr, "usage: jansson_decode FILE [ROUNDS]\n");
                return 2;
        }
        f = strcmp(argv[1], "-") ? fopen(argv[1], "rb") : stdin;
        if (!f) {
                perror(argv[1]);
                return 1;
        }
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 1 << 24;
                        data = realloc(data, cap);
                        if (!data)
                                return 1;
                }
                n = fread(data + len, 1, cap - len, f);
                if (!n)
                        break;
                len += n;
        }
        for (p = data, end = data + len; p < end;) {
                char *nl = memchr(p, '\n', end - p), *tab;

                if (!nl)
                        nl = end;
                tab = memchr(p, '\t', nl - p);
                if (tab && tab + 1 < nl && tab[1] == '{') {
                        if (nmsg == cmsg) {
                                cmsg = cmsg ? cmsg * 2 : 1 << 16;
                                msg = realloc(msg, cmsg * sizeof(*msg));
                                mlen = realloc(mlen, cmsg * sizeof(*mlen));
                                if (!msg || !mlen)
                                        return 1;
                        }
                        msg[nmsg] = tab + 1;
                        mlen[nmsg++] = nl - tab - 1;
                }
                p = nl + 1;
        }
        t0 = now_s();
        for (r = 0; r < rounds; r++) {
                for (i = 0; i < nmsg; i++) {
                        json_error_t jerr;
                        json_t *j = json_loadb(msg[i], mlen[i], 0, &jerr), *rd;

                        if (!j)
                                continue;
                        rd = json_object_get(j, "readings");
                        points += rd ? (long long)json_object_size(rd) : 1;
                        json_decref(j);
                }
        }
        t1 = now_s();
        printf("messages=%zu points=%lld seconds=%.4f msgs_per_s=%.0f points_per_s=%.0f\n",
               nmsg * rounds, points, t1 - t0, nmsg * rounds / (t1 - t0),
               points / (t1 - t0));
        free(msg);
        free(mlen);
        free(data);
        return 0;
}
