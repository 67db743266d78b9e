#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tally_buf_reserve(tally_buf *b, size_t extra)
{
        size_t need = b->len + extra, cap = b->cap ? b->cap : 256;

        if (need <= b->cap)
                return;
        while (cap < need)
                cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
                abort();
        b->cap = cap;
}

void tally_buf_append(tally_buf *b, const void *p, size_t n)
{
        if (!n)
                return;
        tally_buf_reserve(b, n);
        memcpy(b->data + b->len, p, n);
        b->len += n;
}

void tally_buf_putc(tally_buf *b, unsigned char c)
{
        tally_buf_reserve(b, 1);
        b->data[b->len++] = c;
}

void tally_buf_printf(tally_buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n <= 0)
                return;
        tally_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
}

void tally_buf_put_uvarint(tally_buf *b, uint64_t v)
{
        tally_buf_reserve(b, 10);
        while (v >= 0x80) {
                b->data[b->len++] = (unsigned char)(v | 0x80);
                v >>= 7;
        }
        b->data[b->len++] = (unsigned char)v;
}

void tally_buf_put_svarint(tally_buf *b, int64_t v)
{
        tally_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void tally_buf_put_f64(tally_buf *b, double v)
{
        uint64_t u;
        unsigned char out[8];

        memcpy(&u, &v, 8);
        for (int i = 0; i < 8; i++)
                out[i] = (unsigned char)(u >> (8 * i));
        tally_buf_append(b, out, 8);
}

void tally_buf_free(tally_buf *b)
{
        free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

unsigned char *tally_buf_take(tally_buf *b, size_t *len)
{
        unsigned char *p = b->data;

        *len = b->len;
        b->data = NULL;
        b->len = b->cap = 0;
        return p;
}
