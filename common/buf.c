#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tally_buf_grow(tally_buf *b, size_t extra)
{
        size_t need = b->len + extra, cap = b->cap ? b->cap : 256;

        if (need < b->len)
                abort();        /* size_t overflow: a caller's bug */
        if (need <= b->cap)
                return;
        while (cap < need)
                cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data)
                abort();
        b->cap = cap;
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
