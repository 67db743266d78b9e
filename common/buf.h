/* common/buf.h -- growable byte buffer. The buffer owns its data; reuse it
 * across batches (tally_buf_reset keeps the allocation). Not thread-safe:
 * one owner at a time. Allocation failure aborts (a daemon cannot go on).
 * The small writers are inline: the clean and rollup encoders call them
 * several times per reading, and a call each (with its capacity check)
 * was ~9 % of ingest's worker. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tally_buf {
        unsigned char *data;
        size_t len;
        size_t cap;
} tally_buf;

#define TALLY_BUF_INIT {NULL, 0, 0}

/* Grows the capacity to at least len + extra (the slow path of
 * tally_buf_reserve). */
void tally_buf_grow(tally_buf *b, size_t extra);

/* Makes room for extra more bytes after len. */
static inline void tally_buf_reserve(tally_buf *b, size_t extra)
{
        if (extra > b->cap - b->len)
                tally_buf_grow(b, extra);
}

static inline void tally_buf_append(tally_buf *b, const void *p, size_t n)
{
        if (!n)
                return;
        tally_buf_reserve(b, n);
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

static inline void tally_buf_putc(tally_buf *b, unsigned char c)
{
        tally_buf_reserve(b, 1);
        b->data[b->len++] = c;
}

void tally_buf_printf(tally_buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* unsigned LEB128 varint, zigzag for signed */
static inline void tally_buf_put_uvarint(tally_buf *b, uint64_t v)
{
        tally_buf_reserve(b, 10);
        while (v >= 0x80) {
                b->data[b->len++] = (unsigned char)(v | 0x80);
                v >>= 7;
        }
        b->data[b->len++] = (unsigned char)v;
}

static inline void tally_buf_put_svarint(tally_buf *b, int64_t v)
{
        tally_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* 8 bytes LE IEEE-754 */
static inline void tally_buf_put_f64(tally_buf *b, double v)
{
        uint64_t u;

        memcpy(&u, &v, 8);
        tally_buf_reserve(b, 8);
        for (int i = 0; i < 8; i++)
                b->data[b->len++] = (unsigned char)(u >> (8 * i));
}
static inline void tally_buf_reset(tally_buf *b) { b->len = 0; }
void tally_buf_free(tally_buf *b);
/* Transfers ownership of the data to the caller (free() it); b is emptied. */
unsigned char *tally_buf_take(tally_buf *b, size_t *len);
