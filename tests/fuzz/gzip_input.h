/* tests/fuzz/gzip_input.h -- gzip of a fuzz input, for the decoders'
 * targets that also feed their input compressed. Header-only (static):
 * each target is its own program. */
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* A gzip stream of in[0..n) (malloc'd; *outlen its length), or NULL. */
static unsigned char *fuzz_gzip(const uint8_t *in, size_t n, size_t *outlen)
{
        z_stream zs;
        unsigned char *out;
        size_t cap;

        memset(&zs, 0, sizeof(zs));
        if (deflateInit2(&zs, 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK)
                return NULL;
        cap = deflateBound(&zs, n);
        out = malloc(cap);
        zs.next_in = (unsigned char *)in;
        zs.avail_in = (uInt)n;
        zs.next_out = out;
        zs.avail_out = (uInt)cap;
        if (!out || deflate(&zs, Z_FINISH) != Z_STREAM_END) {
                free(out);
                deflateEnd(&zs);
                return NULL;
        }
        *outlen = zs.total_out;
        deflateEnd(&zs);
        return out;
}
