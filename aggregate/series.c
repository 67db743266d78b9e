#include "aggregate/series.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(TALLY_NAME_MAX <= 255, "a name's length must fit its length byte");

/* A name reference: block number << NAME_BLOCK_BITS | offset in block. */
#define NAME_BLOCK_BITS 16
#define NAME_BLOCK (1u << NAME_BLOCK_BITS)
#define NAME_BLOCKS_MAX (1u << (32 - NAME_BLOCK_BITS))

typedef struct series_rec {
        uint32_t site, device, metric;  /* name references */
        uint32_t hash;
        uint32_t user;                  /* agg_series_user */
} series_rec;

struct agg_series_table {
        series_rec *recs;
        uint32_t n, cap;
        uint32_t *index;        /* open addressing: id + 1, 0 = empty */
        uint32_t mask;
        /* the names: [len][bytes], deduplicated */
        char **blocks;
        uint32_t nblocks, block_used;
        uint32_t *nindex;       /* name reference + 1, 0 = empty */
        uint32_t nmask, nnames;
};

static void *xcalloc(size_t n, size_t sz)
{
        void *p = calloc(n, sz);

        if (!p)
                abort();
        return p;
}

agg_series_table *agg_series_table_new(void)
{
        agg_series_table *t = xcalloc(1, sizeof(*t));

        t->mask = 255;
        t->index = xcalloc(t->mask + 1, sizeof(*t->index));
        t->nmask = 63;
        t->nindex = xcalloc(t->nmask + 1, sizeof(*t->nindex));
        return t;
}

void agg_series_table_free(agg_series_table *t)
{
        if (!t)
                return;
        for (uint32_t b = 0; b < t->nblocks; b++)
                free(t->blocks[b]);
        free(t->blocks);
        free(t->nindex);
        free(t->recs);
        free(t->index);
        free(t);
}

static inline const unsigned char *name_at(const agg_series_table *t, uint32_t ref)
{
        return (const unsigned char *)t->blocks[ref >> NAME_BLOCK_BITS] +
               (ref & (NAME_BLOCK - 1));
}

static inline int name_eq(const agg_series_table *t, uint32_t ref,
                          const char *s, uint16_t n)
{
        const unsigned char *p = name_at(t, ref);

        return p[0] == n && !memcmp(p + 1, s, n);
}

/* Load factor at most 3/4: grow when n exceeds it. */
static inline int over_load(uint32_t n, uint32_t mask)
{
        return (uint64_t)n * 4 > (uint64_t)(mask + 1) * 3;
}

static void names_grow(agg_series_table *t)
{
        uint32_t mask = t->nmask * 2 + 1;
        uint32_t *idx = xcalloc((size_t)mask + 1, sizeof(*idx));

        for (uint32_t i = 0; i <= t->nmask; i++) {
                uint32_t ref, h;
                const unsigned char *p;

                if (!t->nindex[i])
                        continue;
                ref = t->nindex[i] - 1;
                p = name_at(t, ref);
                h = tally_hash(p + 1, p[0]) & mask;
                while (idx[h])
                        h = (h + 1) & mask;
                idx[h] = ref + 1;
        }
        free(t->nindex);
        t->nindex = idx;
        t->nmask = mask;
}

/* Reference of the name s, storing it if new. */
static uint32_t name_intern(agg_series_table *t, const char *s, uint16_t n,
                            uint32_t hash)
{
        uint32_t h = hash & t->nmask, ref;
        char *p;

        if (n > 255)
                abort();        /* the clean codec refuses these */
        while (t->nindex[h]) {
                if (name_eq(t, t->nindex[h] - 1, s, n))
                        return t->nindex[h] - 1;
                h = (h + 1) & t->nmask;
        }
        if (!t->nblocks || t->block_used + 1u + n > NAME_BLOCK) {
                if (t->nblocks == NAME_BLOCKS_MAX)
                        abort();        /* 4 GiB of names */
                t->blocks = realloc(t->blocks, (t->nblocks + 1) * sizeof(*t->blocks));
                if (!t->blocks)
                        abort();
                t->blocks[t->nblocks] = malloc(NAME_BLOCK);
                if (!t->blocks[t->nblocks])
                        abort();
                t->nblocks++;
                t->block_used = 0;
        }
        ref = (t->nblocks - 1) << NAME_BLOCK_BITS | t->block_used;
        p = t->blocks[t->nblocks - 1] + t->block_used;
        p[0] = (char)(unsigned char)n;
        memcpy(p + 1, s, n);
        t->block_used += 1u + n;
        t->nindex[h] = ref + 1;
        if (over_load(++t->nnames, t->nmask))
                names_grow(t);
        return ref;
}

static inline uint32_t series_hash(uint32_t hsite, uint32_t hdevice, uint32_t hmetric)
{
        return (hdevice * 31 + hmetric) * 31 + hsite;
}

static inline int series_eq(const agg_series_table *t, const series_rec *s,
                            const tally_reading *r)
{
        return name_eq(t, s->device, r->device, r->device_len) &&
               name_eq(t, s->metric, r->metric, r->metric_len) &&
               name_eq(t, s->site, r->site, r->site_len);
}

static void series_grow(agg_series_table *t)
{
        uint32_t mask = t->mask * 2 + 1;
        uint32_t *idx = xcalloc((size_t)mask + 1, sizeof(*idx));

        for (uint32_t i = 0; i < t->n; i++) {
                uint32_t h = t->recs[i].hash & mask;
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
        uint32_t hs = tally_hash(r->site, r->site_len),
                 hd = tally_hash(r->device, r->device_len),
                 hm = tally_hash(r->metric, r->metric_len);
        uint32_t hash = series_hash(hs, hd, hm), h = hash & t->mask;
        series_rec *s;

        while (t->index[h]) {
                s = &t->recs[t->index[h] - 1];
                if (s->hash == hash && series_eq(t, s, r))
                        return t->index[h] - 1;
                h = (h + 1) & t->mask;
        }
        if (t->n == UINT32_MAX - 1)
                abort();
        if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 256;
                t->recs = realloc(t->recs, (size_t)t->cap * sizeof(*t->recs));
                if (!t->recs)
                        abort();
        }
        s = &t->recs[t->n];
        s->site = name_intern(t, r->site, r->site_len, hs);
        s->device = name_intern(t, r->device, r->device_len, hd);
        s->metric = name_intern(t, r->metric, r->metric_len, hm);
        s->hash = hash;
        s->user = UINT32_MAX;
        t->index[h] = ++t->n;
        if (over_load(t->n, t->mask))
                series_grow(t);
        return t->n - 1;
}

void agg_series_get(const agg_series_table *t, uint32_t id, agg_series *out)
{
        const series_rec *s = &t->recs[id];
        const unsigned char *p;

        p = name_at(t, s->site);
        out->site = (const char *)p + 1;
        out->site_len = p[0];
        p = name_at(t, s->device);
        out->device = (const char *)p + 1;
        out->device_len = p[0];
        p = name_at(t, s->metric);
        out->metric = (const char *)p + 1;
        out->metric_len = p[0];
}

uint32_t *agg_series_user(agg_series_table *t, uint32_t id)
{
        return &t->recs[id].user;
}

uint32_t agg_series_count(const agg_series_table *t)
{
        return t->n;
}

size_t agg_series_bytes(const agg_series_table *t)
{
        return sizeof(*t) + (size_t)t->cap * sizeof(*t->recs) +
               ((size_t)t->mask + 1) * sizeof(*t->index) +
               (size_t)t->nblocks * (NAME_BLOCK + sizeof(*t->blocks)) +
               ((size_t)t->nmask + 1) * sizeof(*t->nindex);
}
