#include "aggregate/series.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK (256 * 1024)

typedef struct arena_block {
        struct arena_block *next;
        size_t used;
        char data[];
} arena_block;

struct agg_series_table {
        agg_series *series;
        uint32_t n, cap;
        uint32_t *index;        /* open addressing: id + 1, 0 = empty */
        uint32_t mask;
        arena_block *arena;
};

static char *arena_copy(agg_series_table *t, const char *s, size_t n)
{
        arena_block *b = t->arena;
        char *p;

        if (!b || b->used + n > ARENA_BLOCK) {
                b = malloc(sizeof(*b) + ARENA_BLOCK);
                if (!b)
                        abort();
                b->next = t->arena;
                b->used = 0;
                t->arena = b;
        }
        p = b->data + b->used;
        memcpy(p, s, n);
        b->used += n;
        return p;
}

agg_series_table *agg_series_table_new(void)
{
        agg_series_table *t = calloc(1, sizeof(*t));

        if (!t)
                abort();
        t->mask = 1023;
        t->index = calloc(t->mask + 1, sizeof(*t->index));
        if (!t->index)
                abort();
        return t;
}

void agg_series_table_free(agg_series_table *t)
{
        if (!t)
                return;
        while (t->arena) {
                arena_block *b = t->arena;
                t->arena = b->next;
                free(b);
        }
        free(t->series);
        free(t->index);
        free(t);
}

static uint32_t series_hash(const tally_reading *r)
{
        uint32_t h = tally_hash(r->device, r->device_len);

        h = h * 31 + tally_hash(r->metric, r->metric_len);
        return h * 31 + tally_hash(r->site, r->site_len);
}

static int series_eq(const agg_series *s, const tally_reading *r)
{
        return s->device_len == r->device_len && s->metric_len == r->metric_len &&
               s->site_len == r->site_len &&
               !memcmp(s->device, r->device, r->device_len) &&
               !memcmp(s->metric, r->metric, r->metric_len) &&
               !memcmp(s->site, r->site, r->site_len);
}

static void series_grow(agg_series_table *t)
{
        uint32_t mask = t->mask * 2 + 1;
        uint32_t *idx = calloc(mask + 1, sizeof(*idx));

        if (!idx)
                abort();
        for (uint32_t i = 0; i < t->n; i++) {
                uint32_t h = t->series[i].hash & mask;
                while (idx[h])
                        h = (h + 1) & mask;
                idx[h] = i + 1;
        }
        free(t->index);
        t->index = idx;
        t->mask = mask;
}

uint32_t agg_series_intern(agg_series_table *t, const tally_reading *r)
{
        uint32_t hash = series_hash(r), h = hash & t->mask;
        agg_series *s;

        while (t->index[h]) {
                s = &t->series[t->index[h] - 1];
                if (s->hash == hash && series_eq(s, r))
                        return t->index[h] - 1;
                h = (h + 1) & t->mask;
        }
        if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 1024;
                t->series = realloc(t->series, t->cap * sizeof(*t->series));
                if (!t->series)
                        abort();
        }
        s = &t->series[t->n];
        s->site = arena_copy(t, r->site, r->site_len);
        s->device = arena_copy(t, r->device, r->device_len);
        s->metric = arena_copy(t, r->metric, r->metric_len);
        s->site_len = r->site_len;
        s->device_len = r->device_len;
        s->metric_len = r->metric_len;
        s->hash = hash;
        t->index[h] = ++t->n;
        if (t->n * 2 > t->mask)
                series_grow(t);
        return t->n - 1;
}

const agg_series *agg_series_get(const agg_series_table *t, uint32_t id)
{
        return &t->series[id];
}

uint32_t agg_series_count(const agg_series_table *t)
{
        return t->n;
}
