/* Layout (all integers LEB128 varints, s = zigzag; docs/clean-format.md):
 *   'T' 'C' version kind u32le:count
 *   READINGS version 2, per reading:
 *     flags: bit0 site, bit1 device same as previous; bit2 metric from
 *       the table, slot in bits 4-7; bit3 same raw message as previous
 *       (partition, offset, progress equal, index + 1)
 *     [uvarint len + bytes] for site, device, metric unless flagged
 *       (an inline metric joins the table while it has room)
 *     s ts_ms delta, f64le value,
 *     unless bit3: uvarint origin partition, s origin offset delta,
 *       uvarint index, s progress delta
 *   READINGS version 1 (still read): flags bits 0-2 site, device, metric
 *     same as previous, and always the four origin fields.
 *   PROGRESS: uvarint raw_partitions, then count x (uvarint partition,
 *     s progress_ms)
 * Deltas are against the previous reading of the record (0 for the first).
 */
#include "common/clean_codec.h"

#include <math.h>
#include <string.h>

#define HDR_LEN 8

static void clean_header(tally_buf *b, tally_clean_kind kind)
{
        unsigned char h[HDR_LEN] = {TALLY_CLEAN_MAGIC0, TALLY_CLEAN_MAGIC1,
                                    TALLY_CLEAN_VERSION, (unsigned char)kind,
                                    0, 0, 0, 0};
        tally_buf_append(b, h, HDR_LEN);
}

static void clean_put_count(tally_buf *b, uint32_t n)
{
        for (int i = 0; i < 4; i++)
                b->data[4 + i] = (unsigned char)(n >> (8 * i));
}

void tally_clean_writer_reset(tally_clean_writer *w)
{
        tally_buf_reset(&w->buf);
        w->count = 0;
        w->nmetrics = 0;
        w->last_metric = -1;
        memset(&w->prev, 0, sizeof(w->prev));
        clean_header(&w->buf, TALLY_CLEAN_READINGS);
}

/* a - b modulo 2^64: INT64_MIN (unknown progress) must not overflow; the
 * reader adds the delta back modulo 2^64 */
static int64_t clean_delta(int64_t a, int64_t b)
{
        return (int64_t)((uint64_t)a - (uint64_t)b);
}

static void put_str(tally_buf *b, const char *s, size_t n)
{
        tally_buf_put_uvarint(b, n);
        tally_buf_append(b, s, n);
}

static int writer_metric_is(const tally_clean_writer *w, int slot,
                            const tally_reading *r)
{
        return w->metric_len[slot] == r->metric_len &&
               !memcmp(w->buf.data + w->metric_off[slot], r->metric,
                       r->metric_len);
}

/* The table slot holding r's metric, or -1. A device's readings come in
 * the same order report after report: the previous reading's slot and
 * the one after it are tried first. */
static int writer_metric_find(const tally_clean_writer *w,
                              const tally_reading *r)
{
        int n = (int)w->nmetrics, last = w->last_metric;

        if (last >= 0) {
                if (writer_metric_is(w, last, r))
                        return last;
                if (last + 1 < n && writer_metric_is(w, last + 1, r))
                        return last + 1;
        }
        for (int i = 0; i < n; i++)
                if (i != last && writer_metric_is(w, i, r))
                        return i;
        return -1;
}

void tally_clean_writer_add(tally_clean_writer *w, const tally_reading *r)
{
        tally_buf *b = &w->buf;
        tally_reading *p = &w->prev;
        const char *s[2] = {r->site, r->device};
        uint16_t n[2] = {r->site_len, r->device_len};
        unsigned flags = 0;
        int slot;

        if (!w->buf.len)
                tally_clean_writer_reset(w);
        for (int i = 0; i < 2; i++)
                if (w->count && w->str_len[i] == n[i] &&
                    !memcmp(b->data + w->str_off[i], s[i], n[i]))
                        flags |= 1u << i;
        slot = writer_metric_find(w, r);
        if (slot >= 0)
                flags |= 4u | (unsigned)slot << 4;
        if (w->count && r->origin.partition == p->origin.partition &&
            r->origin.offset == p->origin.offset &&
            (int64_t)r->origin.index == (int64_t)p->origin.index + 1 &&
            r->progress_ms == p->progress_ms)
                flags |= 8u;
        tally_buf_putc(b, (unsigned char)flags);
        for (int i = 0; i < 2; i++) {
                if (flags & (1u << i))
                        continue;
                put_str(b, s[i], n[i]);
                w->str_off[i] = b->len - n[i];
                w->str_len[i] = n[i];
        }
        if (slot < 0) {
                put_str(b, r->metric, r->metric_len);
                if (w->nmetrics < TALLY_CLEAN_METRICS) {
                        slot = (int)w->nmetrics++;
                        w->metric_off[slot] = b->len - r->metric_len;
                        w->metric_len[slot] = (uint8_t)r->metric_len;
                }
        }
        w->last_metric = slot;
        tally_buf_put_svarint(b, clean_delta(r->ts_ms, p->ts_ms));
        tally_buf_put_f64(b, r->value);
        if (!(flags & 8u)) {
                tally_buf_put_uvarint(b, (uint32_t)r->origin.partition);
                tally_buf_put_svarint(b, clean_delta(r->origin.offset,
                                                     p->origin.offset));
                tally_buf_put_uvarint(b, (uint32_t)r->origin.index);
                tally_buf_put_svarint(b, clean_delta(r->progress_ms,
                                                     p->progress_ms));
        }
        p->ts_ms = r->ts_ms;
        p->origin = r->origin;
        p->progress_ms = r->progress_ms;
        w->count++;
}

const unsigned char *tally_clean_writer_finish(tally_clean_writer *w,
                                               size_t *len)
{
        if (!w->buf.len)
                tally_clean_writer_reset(w);
        clean_put_count(&w->buf, w->count);
        *len = w->buf.len;
        return w->buf.data;
}

void tally_clean_writer_free(tally_clean_writer *w)
{
        tally_buf_free(&w->buf);
}

void tally_clean_progress_encode(tally_buf *out, int32_t raw_partitions,
                                 const tally_clean_origin *o, size_t n)
{
        size_t start = out->len;

        clean_header(out, TALLY_CLEAN_PROGRESS);
        tally_buf_put_uvarint(out, (uint32_t)raw_partitions);
        for (size_t i = 0; i < n; i++) {
                tally_buf_put_uvarint(out, (uint32_t)o[i].partition);
                tally_buf_put_svarint(out, o[i].progress_ms);
        }
        for (int i = 0; i < 4; i++)
                out->data[start + 4 + i] = (unsigned char)(n >> (8 * i));
}

/* ---- reader ---- */

/* uvarint at *pp, up to 10 bytes; advances *pp. The slow path of
 * uv_get below, for 3 bytes and more, and for running out of bytes. */
static int uv_get_slow(const unsigned char **pp, const unsigned char *end,
                       uint64_t *v)
{
        const unsigned char *p = *pp;
        uint64_t x = 0;

        for (int shift = 0; shift < 64; shift += 7) {
                if (p >= end)
                        return -1;
                unsigned char c = *p++;
                x |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *v = x;
                        *pp = p;
                        return 0;
                }
        }
        return -1;
}

/* Readings are mostly 1- and 2-byte varints: those inline. */
static inline int uv_get(const unsigned char **pp, const unsigned char *end,
                         uint64_t *v)
{
        const unsigned char *p = *pp;

        if (p < end && !(p[0] & 0x80)) {
                *v = p[0];
                *pp = p + 1;
                return 0;
        }
        if (end - p >= 2 && !(p[1] & 0x80)) {
                *v = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
                *pp = p + 2;
                return 0;
        }
        return uv_get_slow(pp, end, v);
}

static inline int sv_get(const unsigned char **pp, const unsigned char *end,
                         int64_t *v)
{
        uint64_t u;

        if (uv_get(pp, end, &u))
                return -1;
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return 0;
}

static inline int u31_get(const unsigned char **pp, const unsigned char *end,
                          int32_t *v)
{
        uint64_t u;

        if (uv_get(pp, end, &u) || u > INT32_MAX)
                return -1;
        *v = (int32_t)u;
        return 0;
}

static inline int str_get(const unsigned char **pp, const unsigned char *end,
                          const char **s, uint16_t *n)
{
        uint64_t len;

        if (uv_get(pp, end, &len) || len == 0 || len > TALLY_NAME_MAX ||
            len > (uint64_t)(end - *pp))
                return -1;
        *s = (const char *)*pp;
        *n = (uint16_t)len;
        *pp += len;
        return 0;
}

static int get_uvarint(tally_clean_reader *rd, uint64_t *v)
{
        return uv_get(&rd->p, rd->end, v);
}

static int get_svarint(tally_clean_reader *rd, int64_t *v)
{
        uint64_t u;

        if (get_uvarint(rd, &u))
                return -1;
        *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return 0;
}

static int get_u31(tally_clean_reader *rd, int32_t *v)
{
        uint64_t u;

        if (get_uvarint(rd, &u) || u > INT32_MAX)
                return -1;
        *v = (int32_t)u;
        return 0;
}

int tally_clean_reader_init(tally_clean_reader *rd, const void *buf,
                            size_t len, tally_err *err)
{
        const unsigned char *b = buf;

        memset(rd, 0, sizeof(*rd));
        if (len < HDR_LEN || b[0] != TALLY_CLEAN_MAGIC0 ||
            b[1] != TALLY_CLEAN_MAGIC1)
                return tally_err_set(err, "malformed_clean",
                                     "not a tally.clean record (bad magic, %zu bytes)", len);
        if (b[2] != TALLY_CLEAN_VERSION_1 && b[2] != TALLY_CLEAN_VERSION)
                return tally_err_set(err, "malformed_clean",
                                     "unsupported tally.clean version %u", b[2]);
        if (b[3] != TALLY_CLEAN_READINGS && b[3] != TALLY_CLEAN_PROGRESS)
                return tally_err_set(err, "malformed_clean",
                                     "unknown tally.clean kind %u", b[3]);
        rd->kind = (tally_clean_kind)b[3];
        rd->version = b[2];
        rd->prev_metric = -1;
        rd->remaining = (uint32_t)b[4] | (uint32_t)b[5] << 8 |
                        (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        rd->p = b + HDR_LEN;
        rd->end = b + len;
        if (rd->kind == TALLY_CLEAN_PROGRESS &&
            (get_u31(rd, &rd->raw_partitions) || rd->raw_partitions < 1))
                return tally_err_set(err, "malformed_clean",
                                     "progress record: bad partition count");
        return 0;
}

/* 8 bytes little-endian, one load (a byte loop was a fifth of the
 * reader's time) */
static inline uint64_t load_le64(const unsigned char *q)
{
        uint64_t v;

        memcpy(&v, q, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return v;
}

static int clean_time_ok(int64_t t)
{
        return t >= -TALLY_CLEAN_TIME_LIMIT && t <= TALLY_CLEAN_TIME_LIMIT;
}

/* The metric of a version 2 reading: a table slot (flag bit 2, slot in
 * bits 4-7) or a string, which joins the table while it has room. Sets
 * rd->prev_metric to the slot, -1 for a string left out of the table. */
static int metric_get_v2(tally_clean_reader *rd, unsigned flags,
                         const unsigned char **q)
{
        tally_reading *p = &rd->prev;
        unsigned slot = flags >> 4;

        if (flags & 4) {
                if (slot >= rd->nmetrics)
                        return -1;
                p->metric = rd->metric[slot];
                p->metric_len = rd->metric_len[slot];
                rd->prev_metric = (int)slot;
                return 0;
        }
        if (slot || str_get(q, rd->end, &p->metric, &p->metric_len))
                return -1;
        rd->prev_metric = -1;
        if (rd->nmetrics < TALLY_CLEAN_METRICS) {
                rd->prev_metric = (int)rd->nmetrics++;
                rd->metric[rd->prev_metric] = p->metric;
                rd->metric_len[rd->prev_metric] = (uint8_t)p->metric_len;
        }
        return 0;
}

int tally_clean_reader_step(tally_clean_reader *rd, tally_err *err)
{
        tally_reading *p = &rd->prev;
        const unsigned char *q = rd->p, *end = rd->end;
        int64_t d_ts, d_off, d_prog;
        uint64_t bits;
        unsigned flags, repeat;
        int first, v1 = rd->version == TALLY_CLEAN_VERSION_1;
        int prev_metric = rd->prev_metric;

        if (rd->kind != TALLY_CLEAN_READINGS)
                return tally_err_set(err, "malformed_clean", "%s",
                                     rd->kind ? "not a readings record" :
                                                "record already found corrupt");
        if (!rd->remaining) {
                if (rd->p != rd->end)
                        return tally_err_set(err, "malformed_clean",
                                             "%zu trailing bytes", (size_t)(rd->end - rd->p));
                return 0;
        }
        if (q >= end)
                goto corrupt;
        flags = *q++;
        first = !p->site;
        /* version 1: bits 0-2 only; bits 0, 1 (and 2 in version 1) and 3
         * refer to the previous reading, which the first one lacks */
        if ((v1 && flags > 7) || (first && (flags & (v1 ? 7 : 11))))
                goto corrupt;
        if (!(flags & 1) && str_get(&q, end, &p->site, &p->site_len))
                goto corrupt;
        if (!(flags & 2) && str_get(&q, end, &p->device, &p->device_len))
                goto corrupt;
        if (v1) {
                if (!(flags & 4) && str_get(&q, end, &p->metric, &p->metric_len))
                        goto corrupt;
                repeat = flags;
        } else {
                if (metric_get_v2(rd, flags, &q))
                        goto corrupt;
                repeat = (flags & 3) | (prev_metric >= 0 &&
                                        rd->prev_metric == prev_metric ? 4 : 0);
        }
        p->repeat = (uint8_t)repeat;
        p->metric_slot = (uint8_t)(rd->prev_metric + 1);
        if (sv_get(&q, end, &d_ts) || end - q < 8)
                goto corrupt;
        bits = load_le64(q);
        q += 8;
        memcpy(&p->value, &bits, 8);
        /* unsigned arithmetic: corrupt deltas must not be UB */
        if (!v1 && (flags & 8)) {
                /* the same raw message: offset and progress as checked
                 * for the previous reading */
                if (p->origin.index == INT32_MAX)
                        goto corrupt;
                p->origin.index++;
        } else {
                if (u31_get(&q, end, &p->origin.partition) ||
                    sv_get(&q, end, &d_off) ||
                    u31_get(&q, end, &p->origin.index) || sv_get(&q, end, &d_prog))
                        goto corrupt;
                p->origin.offset = (int64_t)((uint64_t)p->origin.offset + (uint64_t)d_off);
                p->progress_ms = (int64_t)((uint64_t)p->progress_ms + (uint64_t)d_prog);
                if (p->origin.offset < 0 ||
                    (p->progress_ms != INT64_MIN && !clean_time_ok(p->progress_ms)))
                        goto corrupt;
        }
        p->ts_ms = (int64_t)((uint64_t)p->ts_ms + (uint64_t)d_ts);
        if (!isfinite(p->value) || !clean_time_ok(p->ts_ms))
                goto corrupt;
        rd->p = q;
        rd->remaining--;
        return 1;
corrupt:
        /* the state may hold what failed: every further call fails */
        rd->kind = 0;
        return tally_err_set(err, "malformed_clean",
                             "corrupt reading %u from the end, %zu bytes before the end",
                             rd->remaining, (size_t)(rd->end - q));
}

int tally_clean_reader_next_origin(tally_clean_reader *rd,
                                   tally_clean_origin *o, tally_err *err)
{
        if (rd->kind != TALLY_CLEAN_PROGRESS)
                return tally_err_set(err, "malformed_clean", "not a progress record");
        if (!rd->remaining)
                return rd->p == rd->end ? 0 :
                        tally_err_set(err, "malformed_clean", "trailing bytes");
        if (get_u31(rd, &o->partition) || get_svarint(rd, &o->progress_ms) ||
            o->partition >= rd->raw_partitions ||
            (o->progress_ms != INT64_MIN && !clean_time_ok(o->progress_ms)))
                return tally_err_set(err, "malformed_clean", "corrupt progress entry");
        rd->remaining--;
        return 1;
}
