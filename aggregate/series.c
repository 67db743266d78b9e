#include "aggregate/series.h"

#include <stdlib.h>
#include <string.h>

#include "common/clean_codec.h"

_Static_assert(TALLY_NAME_MAX <= 255, "a name's length must fit its length byte");
_Static_assert(TALLY_CLEAN_METRICS <= 32, "a record's slots must fit slot_known");

/* A name reference: block number << NAME_BLOCK_BITS | offset in block. */
#define NAME_BLOCK_BITS 16
#define NAME_BLOCK (1u << NAME_BLOCK_BITS)
#define NAME_BLOCKS_MAX (1u << (32 - NAME_BLOCK_BITS))

/* A device: (site, device) of one or more series. Readings of one
 * report come one after another, so the device of the last reading is
 * checked first, then the device whose report followed that device's
 * last time (devices report in much the same order every interval): two
 * short name compares each instead of hashing the names. A series is then
 * found by integers, (device, metric name reference): the one created
 * after the last reading's (a report lists its metrics in the same order
 * every time), else along the device's chain of series (created
 * together, so mostly in one cache line), else through the index for a
 * device with many series. */
typedef struct device_rec {
        uint32_t site, device;          /* name references */
        uint32_t hash;
        uint32_t first;                 /* its oldest series + 1, 0 = none */
        uint32_t succ;                  /* the device that came next + 1 */
} device_rec;

typedef struct series_rec {
        uint32_t dev;                   /* device_rec index */
        uint32_t metric;                /* name reference */
        uint32_t next;                  /* the device's next series + 1 */
        uint32_t user;                  /* agg_series_user */
} series_rec;

#define CHAIN_WALK 8

/* Recently met metric names (a partition usually has a handful): found by
 * comparing bytes instead of hashing them. */
#define RECENT_METRICS 8

struct agg_series_table {
        series_rec *recs;
        uint32_t n, cap;
        uint32_t *index;        /* open addressing: id + 1, 0 = empty */
        uint32_t mask;
        device_rec *devs;
        uint32_t ndevs, dev_cap;
        uint32_t *dindex;       /* open addressing: device + 1, 0 = empty */
        uint32_t dmask;
        uint32_t last_dev;      /* device of the last reading, if ndevs */
        uint32_t last_series;   /* series of the last reading + 1, 0 = none */
        uint32_t last_metric;   /* and its metric name reference */
        uint32_t recent[RECENT_METRICS];        /* name references */
        uint32_t nrecent, recent_next;
        /* the metrics of one record's table slots (metric_slot - 1) */
        int64_t slot_record;
        uint32_t slot_known;            /* bit per slot */
        uint32_t slot_ref[TALLY_CLEAN_METRICS];
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
        t->dmask = 63;
        t->dindex = xcalloc(t->dmask + 1, sizeof(*t->dindex));
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
        free(t->devs);
        free(t->dindex);
        free(t);
}

static inline const unsigned char *name_at(const agg_series_table *t, uint32_t ref)
{
        return (const unsigned char *)t->blocks[ref >> NAME_BLOCK_BITS] +
               (ref & (NAME_BLOCK - 1));
}

/* memcmp without the call: names are short. Words that overlap at the
 * end instead of a loop over the last bytes, whose trip count the branch
 * predictor missed for names of mixed lengths. */
static inline int bytes_eq(const unsigned char *a, const char *b, size_t n)
{
        uint64_t x, y;
        uint32_t u, v;

        if (n >= 8) {
                for (; n > 8; n -= 8, a += 8, b += 8) {
                        memcpy(&x, a, 8);
                        memcpy(&y, b, 8);
                        if (x != y)
                                return 0;
                }
                memcpy(&x, a + n - 8, 8);
                memcpy(&y, b + n - 8, 8);
                return x == y;
        }
        if (n >= 4) {
                memcpy(&u, a, 4);
                memcpy(&v, b, 4);
                if (u != v)
                        return 0;
                memcpy(&u, a + n - 4, 4);
                memcpy(&v, b + n - 4, 4);
                return u == v;
        }
        for (; n; n--)
                if (*a++ != (unsigned char)*b++)
                        return 0;
        return 1;
}

static inline int name_eq(const agg_series_table *t, uint32_t ref,
                          const char *s, uint16_t n)
{
        const unsigned char *p = name_at(t, ref);

        return p[0] == n && bytes_eq(p + 1, s, n);
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

static inline uint32_t device_hash(uint32_t hsite, uint32_t hdevice)
{
        return hdevice * 31 + hsite;
}

static inline uint32_t series_hash(uint32_t dev, uint32_t metric)
{
        uint32_t h = dev * 0x9e3779b1u ^ metric * 0x85ebca77u;

        return h ^ h >> 15;
}

static void *grow_array(void *p, uint32_t *cap, size_t elem)
{
        if (*cap >= UINT32_MAX / 2)
                abort();
        *cap = *cap ? *cap * 2 : 256;
        p = realloc(p, (size_t)*cap * elem);
        if (!p)
                abort();
        return p;
}

static void devices_grow(agg_series_table *t)
{
        uint32_t mask = t->dmask * 2 + 1;
        uint32_t *idx = xcalloc((size_t)mask + 1, sizeof(*idx));

        for (uint32_t i = 0; i < t->ndevs; i++) {
                uint32_t h = t->devs[i].hash & mask;
                while (idx[h])
                        h = (h + 1) & mask;
                idx[h] = i + 1;
        }
        free(t->dindex);
        t->dindex = idx;
        t->dmask = mask;
}

/* The device of r, interned if new. */
static uint32_t device_find(agg_series_table *t, const tally_reading *r)
{
        uint32_t hs = tally_hash(r->site, r->site_len),
                 hd = tally_hash(r->device, r->device_len);
        uint32_t hash = device_hash(hs, hd), h = hash & t->dmask;
        device_rec *d;

        while (t->dindex[h]) {
                d = &t->devs[t->dindex[h] - 1];
                if (d->hash == hash &&
                    name_eq(t, d->device, r->device, r->device_len) &&
                    name_eq(t, d->site, r->site, r->site_len))
                        return t->dindex[h] - 1;
                h = (h + 1) & t->dmask;
        }
        if (t->ndevs == UINT32_MAX - 1)
                abort();
        if (t->ndevs == t->dev_cap)
                t->devs = grow_array(t->devs, &t->dev_cap, sizeof(*t->devs));
        d = &t->devs[t->ndevs];
        d->site = name_intern(t, r->site, r->site_len, hs);
        d->device = name_intern(t, r->device, r->device_len, hd);
        d->hash = hash;
        d->first = 0;
        d->succ = 0;
        t->dindex[h] = ++t->ndevs;
        if (over_load(t->ndevs, t->dmask))
                devices_grow(t);
        return t->ndevs - 1;
}

/* Reference of r's metric name, interned if new. */
static uint32_t metric_find(agg_series_table *t, const tally_reading *r)
{
        uint32_t ref;

        for (uint32_t i = 0; i < t->nrecent; i++)
                if (name_eq(t, t->recent[i], r->metric, r->metric_len))
                        return t->recent[i];
        ref = name_intern(t, r->metric, r->metric_len,
                          tally_hash(r->metric, r->metric_len));
        if (t->nrecent < RECENT_METRICS) {
                t->recent[t->nrecent++] = ref;
        } else {
                t->recent[t->recent_next] = ref;
                t->recent_next = (t->recent_next + 1) % RECENT_METRICS;
        }
        return ref;
}

static void series_grow(agg_series_table *t)
{
        uint32_t mask = t->mask * 2 + 1;
        uint32_t *idx = xcalloc((size_t)mask + 1, sizeof(*idx));

        for (uint32_t i = 0; i < t->n; i++) {
                uint32_t h = series_hash(t->recs[i].dev, t->recs[i].metric) & mask;
                while (idx[h])
                        h = (h + 1) & mask;
                idx[h] = i + 1;
        }
        free(t->index);
        t->index = idx;
        t->mask = mask;
}

/* The metric of a reading of record (slot: its metric_slot - 1). */
static inline uint32_t slot_metric(agg_series_table *t, const tally_reading *r,
                                   unsigned slot, int64_t record)
{
        if (record != t->slot_record) {
                t->slot_record = record;
                t->slot_known = 0;
        }
        if (!(t->slot_known & 1u << slot)) {
                t->slot_ref[slot] = metric_find(t, r);
                t->slot_known |= 1u << slot;
        }
        return t->slot_ref[slot];
}

static inline int device_is(const agg_series_table *t, uint32_t dev,
                            const tally_reading *r)
{
        return name_eq(t, t->devs[dev].device, r->device, r->device_len) &&
               name_eq(t, t->devs[dev].site, r->site, r->site_len);
}

/* The device of r: the last reading's, the one that followed it before,
 * or found (and interned) by its names. */
static inline uint32_t device_of(agg_series_table *t, const tally_reading *r,
                                 unsigned repeat)
{
        uint32_t prev = t->last_dev, succ, dev;

        if ((repeat & 3) == 3 || (t->ndevs && device_is(t, prev, r)))
                return prev;
        if (!t->ndevs)
                return t->last_dev = device_find(t, r);
        succ = t->devs[prev].succ;
        if (succ && device_is(t, succ - 1, r))
                return t->last_dev = succ - 1;
        dev = t->last_dev = device_find(t, r);
        t->devs[prev].succ = dev + 1;
        return dev;
}

/* Links series id, new, at the end of its device's chain when that is
 * short (the order of creation is the order of a report's metrics), else
 * at its head. */
static void chain_link(agg_series_table *t, uint32_t dev, uint32_t id)
{
        uint32_t *at = &t->devs[dev].first;
        int steps = 0;

        while (*at && steps++ < CHAIN_WALK)
                at = &t->recs[*at - 1].next;
        if (*at)
                at = &t->devs[dev].first;
        t->recs[id].next = *at;
        *at = id + 1;
}

static inline uint32_t series_of(agg_series_table *t, uint32_t dev, uint32_t metric)
{
        uint32_t h, e;
        int steps = 0;
        series_rec *s;

        /* the next metric of the report whose last reading was dev's */
        if (t->last_series) {
                s = &t->recs[t->last_series - 1];
                if (s->dev == dev && (e = s->next) && t->recs[e - 1].metric == metric)
                        return e - 1;
        }
        for (e = t->devs[dev].first; e; e = t->recs[e - 1].next) {
                if (t->recs[e - 1].metric == metric)
                        return e - 1;
                if (++steps == CHAIN_WALK)
                        break;
        }
        h = series_hash(dev, metric) & t->mask;
        while (t->index[h]) {
                s = &t->recs[t->index[h] - 1];
                if (s->dev == dev && s->metric == metric)
                        return t->index[h] - 1;
                h = (h + 1) & t->mask;
        }
        if (t->n == UINT32_MAX - 1)
                abort();
        if (t->n == t->cap)
                t->recs = grow_array(t->recs, &t->cap, sizeof(*t->recs));
        s = &t->recs[t->n];
        s->dev = dev;
        s->metric = metric;
        s->user = UINT32_MAX;
        chain_link(t, dev, t->n);
        t->index[h] = ++t->n;
        if (over_load(t->n, t->mask))
                series_grow(t);
        return t->n - 1;
}

static inline uint32_t intern(agg_series_table *t, const tally_reading *r,
                              unsigned repeat, int64_t record)
{
        uint32_t dev = device_of(t, r, repeat), metric, id;

        if (repeat & 4)
                metric = t->last_metric;
        else if (r->metric_slot && r->metric_slot <= TALLY_CLEAN_METRICS)
                metric = t->last_metric = slot_metric(t, r, r->metric_slot - 1u, record);
        else
                metric = t->last_metric = metric_find(t, r);
        id = series_of(t, dev, metric);
        t->last_series = id + 1;
        return id;
}

uint32_t agg_series_intern(agg_series_table *t, const tally_reading *r)
{
        t->slot_known = 0;
        return intern(t, r, 0, 0);
}

uint32_t agg_series_intern_next(agg_series_table *t, const tally_reading *r,
                                unsigned repeat, int64_t record)
{
        return intern(t, r, t->n ? repeat : 0, record);
}

void agg_series_get(const agg_series_table *t, uint32_t id, agg_series *out)
{
        const series_rec *s = &t->recs[id];
        const device_rec *d = &t->devs[s->dev];
        const unsigned char *p;

        p = name_at(t, d->site);
        out->site = (const char *)p + 1;
        out->site_len = p[0];
        p = name_at(t, d->device);
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
               (size_t)t->dev_cap * sizeof(*t->devs) +
               ((size_t)t->dmask + 1) * sizeof(*t->dindex) +
               (size_t)t->nblocks * (NAME_BLOCK + sizeof(*t->blocks)) +
               ((size_t)t->nmask + 1) * sizeof(*t->nindex);
}
