/* store/copybin.c -- binary COPY fields (see copybin.h). */
#include "store/copybin.h"

#include <endian.h>
#include <string.h>

/* 2000-01-01T00:00:00Z in epoch milliseconds */
#define PG_EPOCH_MS INT64_C(946684800000)

static void put_be(tally_buf *b, uint64_t v, int bytes)
{
        unsigned char o[8];

        for (int i = 0; i < bytes; i++)
                o[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
        tally_buf_append(b, o, (size_t)bytes);
}

void store_copybin_header(tally_buf *b)
{
        static const unsigned char sig[11] = "PGCOPY\n\377\r\n";

        tally_buf_append(b, sig, sizeof(sig));
        put_be(b, 0, 4);        /* flags: no OIDs */
        put_be(b, 0, 4);        /* header extension length */
}

void store_copybin_trailer(tally_buf *b)
{
        put_be(b, 0xffff, 2);
}

void store_copybin_tuple(tally_buf *b, int16_t fields)
{
        put_be(b, (uint16_t)fields, 2);
}

/* a field's length word and its 4- or 8-byte value, big-endian, with
 * one reservation (these run for every column of every row) */
static void put_field4(tally_buf *b, uint32_t v)
{
        uint32_t w[2] = {htobe32(4), htobe32(v)};

        tally_buf_reserve(b, sizeof(w));
        memcpy(b->data + b->len, w, sizeof(w));
        b->len += sizeof(w);
}

static void put_field8(tally_buf *b, uint64_t v)
{
        uint32_t n = htobe32(8);
        uint64_t x = htobe64(v);

        tally_buf_reserve(b, 12);
        memcpy(b->data + b->len, &n, 4);
        memcpy(b->data + b->len + 4, &x, 8);
        b->len += 12;
}

void store_copybin_int4(tally_buf *b, int32_t v)
{
        put_field4(b, (uint32_t)v);
}

void store_copybin_int8(tally_buf *b, int64_t v)
{
        put_field8(b, (uint64_t)v);
}

void store_copybin_float8(tally_buf *b, double v)
{
        uint64_t u;

        memcpy(&u, &v, sizeof(u));
        put_field8(b, u);
}

void store_copybin_ts(tally_buf *b, int64_t epoch_ms)
{
        /* |epoch_ms| < 2^50 (validated upstream): no overflow */
        store_copybin_int8(b, (epoch_ms - PG_EPOCH_MS) * 1000);
}

void store_copybin_text(tally_buf *b, const char *s)
{
        size_t n = strlen(s);

        put_be(b, (uint32_t)n, 4);
        tally_buf_append(b, s, n);
}
