/* common/buf.h -- growable byte buffer. The buffer owns its data; reuse it
 * across batches (tally_buf_reset keeps the allocation). Not thread-safe:
 * one owner at a time. Allocation failure aborts (a daemon cannot go on). */
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct tally_buf {
        unsigned char *data;
        size_t len;
        size_t cap;
} tally_buf;

#define TALLY_BUF_INIT {NULL, 0, 0}

void tally_buf_reserve(tally_buf *b, size_t extra);
void tally_buf_append(tally_buf *b, const void *p, size_t n);
void tally_buf_putc(tally_buf *b, unsigned char c);
void tally_buf_printf(tally_buf *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* unsigned LEB128 varint, zigzag for signed */
void tally_buf_put_uvarint(tally_buf *b, uint64_t v);
void tally_buf_put_svarint(tally_buf *b, int64_t v);
void tally_buf_put_f64(tally_buf *b, double v);   /* 8 bytes LE IEEE-754 */
static inline void tally_buf_reset(tally_buf *b) { b->len = 0; }
void tally_buf_free(tally_buf *b);
/* Transfers ownership of the data to the caller (free() it); b is emptied. */
unsigned char *tally_buf_take(tally_buf *b, size_t *len);
