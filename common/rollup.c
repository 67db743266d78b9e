/* common/rollup.c -- tally.rollups JSON codec (docs/rollups.md).
 *
 * Encoding is hand-written (fixed field order, 17 significant digits, no
 * allocation beyond the output buffer). Decoding uses jansson and checks
 * every field, because other consumers may produce into the topic too and
 * the store must never write a row it cannot vouch for. Unknown fields are
 * ignored so the format can grow without breaking old readers. */
#include "common/rollup.h"

#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/timefmt.h"

#define ROLLUP_VERSION 1

/* ---- encoding ---------------------------------------------------------- */

/* The encoder reserves room for the longest record once and writes
 * through a pointer: a capacity check per character and per field, and a
 * strlen per literal, were half of its time (~0.6 us a rollup). */

/* Bytes of the longest record: three names of TALLY_NAME_MAX bytes that
 * all need \u00XX escapes, and the rest (keys, 13 integers of at most 20
 * characters, 5 doubles of at most 25, the start time) well under 1 KiB. */
#define ENCODED_MAX (3 * (2 + 6 * TALLY_NAME_MAX) + 1024)

/* a string literal, without its terminating NUL */
#define PUT_LIT(o, s) (memcpy((o), (s), sizeof(s) - 1), (o) + sizeof(s) - 1)
/* a key (a literal with its separator and colon) and its value */
#define PUT_I64_FIELD(o, key, v) put_i64(PUT_LIT(o, key), (v))
#define PUT_F64_FIELD(o, key, v) put_f64(PUT_LIT(o, key), (v))
#define PUT_STR_FIELD(o, key, v) put_str(PUT_LIT(o, key), (v))

static const char digit_pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";

/* the decimal digits of u; returns the end */
static char *put_u64(char *o, uint64_t u)
{
        char tmp[20];
        int n = (int)sizeof(tmp);

        while (u >= 100) {
                unsigned k = (unsigned)(u % 100) * 2;

                u /= 100;
                tmp[--n] = digit_pairs[k + 1];
                tmp[--n] = digit_pairs[k];
        }
        if (u >= 10) {
                tmp[--n] = digit_pairs[u * 2 + 1];
                tmp[--n] = digit_pairs[u * 2];
        } else {
                tmp[--n] = (char)('0' + u);
        }
        memcpy(o, tmp + n, sizeof(tmp) - (size_t)n);
        return o + sizeof(tmp) - n;
}

/* decimal digits of v (any int64) */
static char *put_i64(char *o, int64_t v)
{
        if (v < 0) {
                *o++ = '-';
                return put_u64(o, 0 - (uint64_t)v);
        }
        return put_u64(o, (uint64_t)v);
}

/* a JSON string: names are mostly plain, copied whole */
static char *put_str(char *o, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;

        *o++ = '"';
        for (;;) {
                const unsigned char *q = p;

                while (*q >= 0x20 && *q != '"' && *q != '\\')
                        q++;
                memcpy(o, p, (size_t)(q - p));
                o += q - p;
                if (!*q)
                        break;
                if (*q == '"' || *q == '\\') {
                        *o++ = '\\';
                        *o++ = (char)*q;
                } else {
                        o = PUT_LIT(o, "\\u00");
                        *o++ = hex[*q >> 4];
                        *o++ = hex[*q & 15];
                }
                p = q + 1;
        }
        *o++ = '"';
        return o;
}

/* Every double is written so that it reads back to itself, always as a
 * JSON real. Readings mostly have few decimals: when v equals k / 10^d
 * for an integer k (|k| < 2^53) and d <= 6, it is written as k with d
 * decimals ("3.4", "21.0"); a decimal string reads back to the nearest
 * double, and k / 10^d (both exact, division correctly rounded) is that
 * double, so the check k / 10^d == v proves the round trip. Otherwise 17
 * significant digits, which round-trip every double. -0 keeps its sign. */
static char *put_f64(char *o, double v)
{
        static const double pow10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6};
        char tmp[40];
        int n;

        if (v == 0)
                return signbit(v) ? PUT_LIT(o, "-0.0") : PUT_LIT(o, "0.0");
        for (int d = 0; d < 7 && fabs(v) < 1e9; d++) {
                double k = nearbyint(v * pow10[d]);
                uint64_t u;
                char dig[24];
                int nd = 0;

                if (k / pow10[d] != v)
                        continue;
                u = (uint64_t)fabs(k);          /* < 1e15: exact */
                do {                            /* at least d + 1 digits */
                        dig[nd++] = (char)('0' + u % 10);
                        u /= 10;
                } while (u || nd <= d);
                if (k < 0)
                        *o++ = '-';
                while (nd > d)
                        *o++ = dig[--nd];
                *o++ = '.';
                if (!d)
                        *o++ = '0';
                while (nd > 0)
                        *o++ = dig[--nd];
                return o;
        }
        n = snprintf(tmp, sizeof(tmp), "%.17g", v);
        if (!strpbrk(tmp, ".eEn"))      /* "n": inf/nan never get here */
                tmp[n++] = '.', tmp[n++] = '0', tmp[n] = 0;
        memcpy(o, tmp, (size_t)n);
        return o + n;
}

static char *put_edge(char *o, const tally_rollup_edge *e)
{
        o = PUT_I64_FIELD(o, "\":{\"ts_ms\":", e->ts_ms);
        o = PUT_F64_FIELD(o, ",\"value\":", e->value);
        o = PUT_I64_FIELD(o, ",\"origin\":[", e->pos.partition);
        *o++ = ',';
        o = put_i64(o, e->pos.offset);
        *o++ = ',';
        o = put_i64(o, e->pos.index);
        return PUT_LIT(o, "]}");
}

/* The start time of the last call on this thread: a window's rollups
 * come together and share it. */
static _Thread_local struct {
        int64_t ms;
        size_t len;
        char text[32];
} start_text = {INT64_MIN, 0, ""};

void tally_rollup_encode(const tally_rollup *r, tally_buf *out)
{
        char *o;

        if (start_text.ms != r->start_ms || !start_text.len) {
                start_text.len = tally_time_format(r->start_ms, start_text.text);
                start_text.ms = r->start_ms;
        }
        tally_buf_reserve(out, ENCODED_MAX);
        o = (char *)out->data + out->len;
        o = PUT_I64_FIELD(o, "{\"v\":", ROLLUP_VERSION);
        o = PUT_STR_FIELD(o, ",\"site\":", r->site);
        o = PUT_STR_FIELD(o, ",\"device\":", r->device);
        o = PUT_STR_FIELD(o, ",\"metric\":", r->metric);
        o = PUT_I64_FIELD(o, ",\"window_ms\":", r->window_ms);
        o = PUT_LIT(o, ",\"start\":\"");
        memcpy(o, start_text.text, start_text.len);
        o += start_text.len;
        o = PUT_I64_FIELD(o, "\",\"start_ms\":", r->start_ms);
        o = PUT_I64_FIELD(o, ",\"count\":", r->count);
        o = PUT_F64_FIELD(o, ",\"sum\":", r->sum);
        o = PUT_F64_FIELD(o, ",\"min\":", r->min);
        o = PUT_F64_FIELD(o, ",\"max\":", r->max);
        o = PUT_LIT(o, ",\"first");
        o = put_edge(o, &r->first);
        o = PUT_LIT(o, ",\"last");
        o = put_edge(o, &r->last);
        o = PUT_I64_FIELD(o, ",\"version\":", r->version);
        *o++ = '}';
        out->len = (size_t)((unsigned char *)o - out->data);
}

/* ---- decoding ---------------------------------------------------------- */

static json_t *need(json_t *obj, const char *path, const char *key,
                    tally_err *err)
{
        json_t *v = json_object_get(obj, key);

        if (!v)
                tally_err_set(err, "missing_field", "%s%s is missing",
                              path, key);
        return v;
}

static int get_name(json_t *obj, const char *key, char *out, tally_err *err)
{
        json_t *v = need(obj, "", key, err);
        size_t n;

        if (!v)
                return -1;
        if (!json_is_string(v))
                return tally_err_set(err, "bad_field", "%s: not a string",
                                     key);
        n = json_string_length(v);
        if (n == 0 || n > TALLY_NAME_MAX)
                return tally_err_set(err, "bad_field",
                                     "%s: length %zu not in 1..%d", key, n,
                                     TALLY_NAME_MAX);
        if (memchr(json_string_value(v), 0, n))
                return tally_err_set(err, "bad_field", "%s: contains NUL",
                                     key);
        memcpy(out, json_string_value(v), n);
        out[n] = 0;
        return 0;
}

static int get_int(json_t *obj, const char *path, const char *key,
                   int64_t lo, int64_t hi, int64_t *out, tally_err *err)
{
        json_t *v = need(obj, path, key, err);

        if (!v)
                return -1;
        if (!json_is_integer(v))
                return tally_err_set(err, "bad_field",
                                     "%s%s: not an integer", path, key);
        *out = json_integer_value(v);
        if (*out < lo || *out > hi)
                return tally_err_set(err, "bad_field",
                                     "%s%s: %" PRId64 " not in %" PRId64
                                     "..%" PRId64, path, key, *out, lo, hi);
        return 0;
}

/* jansson refuses inf/nan and overflowing literals at parse time, but a
 * finite check keeps this independent of that. */
static int get_num(json_t *obj, const char *path, const char *key,
                   double *out, tally_err *err)
{
        json_t *v = need(obj, path, key, err);

        if (!v)
                return -1;
        if (!json_is_number(v))
                return tally_err_set(err, "bad_field", "%s%s: not a number",
                                     path, key);
        *out = json_number_value(v);
        if (!isfinite(*out))
                return tally_err_set(err, "bad_field", "%s%s: not finite",
                                     path, key);
        return 0;
}

/* Event times the store can represent (years 1..9999). */
#define TS_MIN INT64_C(-62135596800000)
#define TS_MAX INT64_C(253402300799999)

static int get_edge(json_t *obj, const char *key, tally_rollup_edge *e,
                    tally_err *err)
{
        json_t *v = need(obj, "", key, err);
        json_t *origin;
        char path[16];
        int64_t part, off, idx;

        if (!v)
                return -1;
        if (!json_is_object(v))
                return tally_err_set(err, "bad_field", "%s: not an object",
                                     key);
        snprintf(path, sizeof(path), "%s.", key);
        if (get_int(v, path, "ts_ms", TS_MIN, TS_MAX, &e->ts_ms, err) ||
            get_num(v, path, "value", &e->value, err))
                return -1;
        origin = need(v, path, "origin", err);
        if (!origin)
                return -1;
        if (!json_is_array(origin) || json_array_size(origin) != 3 ||
            !json_is_integer(json_array_get(origin, 0)) ||
            !json_is_integer(json_array_get(origin, 1)) ||
            !json_is_integer(json_array_get(origin, 2)))
                return tally_err_set(err, "bad_field",
                                     "%s.origin: not [partition,offset,index]",
                                     key);
        part = json_integer_value(json_array_get(origin, 0));
        off = json_integer_value(json_array_get(origin, 1));
        idx = json_integer_value(json_array_get(origin, 2));
        if (part < 0 || part > INT32_MAX || off < 0 || idx < 0 ||
            idx > INT32_MAX)
                return tally_err_set(err, "bad_field",
                                     "%s.origin: negative or out of range",
                                     key);
        e->pos.partition = (int32_t)part;
        e->pos.offset = off;
        e->pos.index = (int32_t)idx;
        return 0;
}

static int edge_cmp(const tally_rollup_edge *a, const tally_rollup_edge *b)
{
        if (a->ts_ms != b->ts_ms)
                return a->ts_ms < b->ts_ms ? -1 : 1;
        return tally_pos_cmp(&a->pos, &b->pos);
}

static int check_values(const tally_rollup *r, int has_start, const char *s,
                        size_t n, tally_err *err);

static int check(json_t *root, tally_rollup *r, tally_err *err)
{
        int64_t v;
        json_t *start;

        if (!json_is_object(root))
                return tally_err_set(err, "malformed_json",
                                     "record is not a JSON object");
        if (get_int(root, "", "v", INT64_MIN, INT64_MAX, &v, err))
                return -1;
        if (v != ROLLUP_VERSION)
                return tally_err_set(err, "bad_field",
                                     "v: unsupported format version %" PRId64,
                                     v);
        if (get_name(root, "site", r->site, err) ||
            get_name(root, "device", r->device, err) ||
            get_name(root, "metric", r->metric, err) ||
            get_int(root, "", "window_ms", 1, INT64_C(86400000) * 366,
                    &r->window_ms, err) ||
            get_int(root, "", "start_ms", TS_MIN, TS_MAX, &r->start_ms,
                    err) ||
            get_int(root, "", "count", 1, INT64_MAX, &r->count, err) ||
            get_num(root, "", "sum", &r->sum, err) ||
            get_num(root, "", "min", &r->min, err) ||
            get_num(root, "", "max", &r->max, err) ||
            get_edge(root, "first", &r->first, err) ||
            get_edge(root, "last", &r->last, err) ||
            get_int(root, "", "version", 1, INT64_MAX, &r->version, err))
                return -1;
        /* "start" is a readable copy of start_ms: optional, but when
         * present it must agree, so a reader may use either. */
        start = json_object_get(root, "start");
        if (!start)
                return check_values(r, 0, NULL, 0, err);
        if (!json_is_string(start))
                return check_values(r, -1, NULL, 0, err);
        return check_values(r, 1, json_string_value(start),
                            json_string_length(start), err);
}

/* The checks across fields, after each field was read. has_start: 1 when
 * "start" is a string (s, n), -1 when it is something else, 0 absent. */
static int check_values(const tally_rollup *r, int has_start, const char *s,
                        size_t n, tally_err *err)
{
        int64_t ms;

        if (tally_window_start(r->start_ms, r->window_ms) != r->start_ms)
                return tally_err_set(err, "bad_field",
                                     "start_ms: %" PRId64 " not aligned to "
                                     "window_ms %" PRId64, r->start_ms,
                                     r->window_ms);
        if (has_start && (has_start < 0 || tally_time_parse(s, n, &ms) ||
                          ms != r->start_ms))
                return tally_err_set(err, "bad_field",
                                     "start: not the RFC 3339 form "
                                     "of start_ms");
        if (r->min > r->max)
                return tally_err_set(err, "bad_field", "min: greater than max");
        if (r->first.ts_ms < r->start_ms ||
            r->first.ts_ms - r->start_ms >= r->window_ms ||
            r->last.ts_ms < r->start_ms ||
            r->last.ts_ms - r->start_ms >= r->window_ms)
                return tally_err_set(err, "bad_field",
                                     "first/last: ts_ms outside the window");
        if (edge_cmp(&r->first, &r->last) > 0)
                return tally_err_set(err, "bad_field",
                                     "first: after last");
        if (r->count == 1 && edge_cmp(&r->first, &r->last) != 0)
                return tally_err_set(err, "bad_field",
                                     "first/last: differ with count 1");
        return 0;
}

/* ---- the fast path ---------------------------------------------------- */

/* Reads exactly the layout tally_rollup_encode writes (field order, no
 * blanks, plain printable-ASCII names, numbers in JSON's grammar) without
 * building a tree. Anything else -- and any value out of range -- returns
 * 1 before deciding, and the record goes through jansson, which is the
 * one place that words errors. So both paths accept the same records
 * and give the same values (tests/fuzz/fuzz_rollup.c compares them). */
typedef struct scan {
        const char *p, *end;
} scan;

static int lit(scan *sc, const char *s)
{
        size_t n = strlen(s);

        if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, s, n))
                return 1;
        sc->p += n;
        return 0;
}

static int scan_name(scan *sc, char *out)
{
        const char *q = sc->p;
        size_t n;

        if (q >= sc->end || *q != '"')
                return 1;
        for (q++; q < sc->end && *q != '"'; q++)
                if (*q < 0x20 || *q > 0x7e || *q == '\\')
                        return 1;
        if (q >= sc->end)
                return 1;
        n = (size_t)(q - sc->p - 1);
        if (n == 0 || n > TALLY_NAME_MAX)
                return 1;
        memcpy(out, sc->p + 1, n);
        out[n] = 0;
        sc->p = q + 1;
        return 0;
}

/* an integer literal of at most 18 digits (no overflow) in [lo, hi] */
static int scan_int(scan *sc, int64_t lo, int64_t hi, int64_t *out)
{
        const char *q = sc->p;
        int neg = 0, digits = 0;
        int64_t v = 0;

        if (q < sc->end && *q == '-') {
                neg = 1;
                q++;
        }
        if (q < sc->end && *q == '0' && q + 1 < sc->end && q[1] >= '0' &&
            q[1] <= '9')
                return 1;       /* leading zero: not JSON */
        for (; q < sc->end && *q >= '0' && *q <= '9'; q++, digits++)
                if (digits < 18)        /* more: given up below */
                        v = v * 10 + (*q - '0');
        if (!digits || digits > 18 ||
            (q < sc->end && (*q == '.' || *q == 'e' || *q == 'E')))
                return 1;
        v = neg ? -v : v;
        if (v < lo || v > hi)
                return 1;
        *out = v;
        sc->p = q;
        return 0;
}

/* [p, end): a JSON number already checked; one without exponent and with
 * at most 15 significant digits is m / 10^f with m < 2^53 and 10^f exact
 * (f <= 22), so one IEEE division gives the correctly rounded value, the
 * same bits as strtod (the encoder writes most values this way). Returns
 * 0 when the literal needs strtod. */
static int fast_decimal(const char *p, const char *end, double *out)
{
        static const double pow10[] = {
                1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
                1e21, 1e22,
        };
        int neg = *p == '-', digits = 0, frac = -1;
        uint64_t m = 0;

#if FLT_EVAL_METHOD != 0
        return 0;       /* extended precision would round twice */
#endif
        for (p += neg; p < end; p++) {
                if (*p == '.') {
                        frac = 0;
                        continue;
                }
                if (*p < '0' || *p > '9')
                        return 0;       /* an exponent */
                if (m || *p != '0')
                        digits++;
                if (digits > 15)
                        return 0;
                m = m * 10 + (uint64_t)(*p - '0');
                frac += frac >= 0;
        }
        if (frac < 0 || frac > 22)
                return 0;
        *out = (double)m / pow10[frac];
        if (neg)
                *out = -*out;
        return 1;
}

/* a JSON number, finite, as jansson reads it: an integer literal as an
 * integer converted to double (so "-0" is +0.0), anything else by
 * strtod */
static int scan_num(scan *sc, double *out)
{
        const char *q = sc->p, *d;
        char tmp[64];
        size_t n;
        int64_t i;

        if (q < sc->end && *q == '-')
                q++;
        d = q;
        while (q < sc->end && *q >= '0' && *q <= '9')
                q++;
        if (q == d || (*d == '0' && q - d > 1))
                return 1;
        if (q < sc->end && *q == '.') {
                d = ++q;
                while (q < sc->end && *q >= '0' && *q <= '9')
                        q++;
                if (q == d)
                        return 1;
        } else if (q == sc->end || (*q != 'e' && *q != 'E')) {
                if (scan_int(sc, INT64_MIN, INT64_MAX, &i))
                        return 1;       /* a long integer: jansson's rules */
                *out = (double)i;
                return 0;
        }
        if (q < sc->end && (*q == 'e' || *q == 'E')) {
                q++;
                if (q < sc->end && (*q == '+' || *q == '-'))
                        q++;
                d = q;
                while (q < sc->end && *q >= '0' && *q <= '9')
                        q++;
                if (q == d)
                        return 1;
        }
        if (fast_decimal(sc->p, q, out)) {
                sc->p = q;
                return 0;
        }
        n = (size_t)(q - sc->p);
        if (n >= sizeof(tmp))
                return 1;
        memcpy(tmp, sc->p, n);
        tmp[n] = 0;
        *out = strtod(tmp, NULL);
        if (!isfinite(*out))
                return 1;
        sc->p = q;
        return 0;
}

static int scan_edge(scan *sc, const char *key, tally_rollup_edge *e)
{
        int64_t part, off, idx;
        char k[16];

        snprintf(k, sizeof(k), ",\"%s\":{", key);
        if (lit(sc, k) || lit(sc, "\"ts_ms\":") ||
            scan_int(sc, TS_MIN, TS_MAX, &e->ts_ms) ||
            lit(sc, ",\"value\":") || scan_num(sc, &e->value) ||
            lit(sc, ",\"origin\":[") || scan_int(sc, 0, INT32_MAX, &part) ||
            lit(sc, ",") || scan_int(sc, 0, INT64_MAX, &off) ||
            lit(sc, ",") || scan_int(sc, 0, INT32_MAX, &idx) ||
            lit(sc, "]}"))
                return 1;
        e->pos.partition = (int32_t)part;
        e->pos.offset = off;
        e->pos.index = (int32_t)idx;
        return 0;
}

/* 0: decoded (rc and err as the jansson path would give), 1: not handled */
static int decode_fast(const void *buf, size_t len, tally_rollup *r,
                       int *rc, tally_err *err)
{
        scan sc = {buf, (const char *)buf + len};
        const char *start;
        size_t start_len;

        if (lit(&sc, "{\"v\":1,\"site\":") || scan_name(&sc, r->site) ||
            lit(&sc, ",\"device\":") || scan_name(&sc, r->device) ||
            lit(&sc, ",\"metric\":") || scan_name(&sc, r->metric) ||
            lit(&sc, ",\"window_ms\":") ||
            scan_int(&sc, 1, INT64_C(86400000) * 366, &r->window_ms) ||
            lit(&sc, ",\"start\":\""))
                return 1;
        start = sc.p;
        while (sc.p < sc.end && *sc.p != '"' && *sc.p != '\\' &&
               (unsigned char)*sc.p >= 0x20 && (unsigned char)*sc.p < 0x7f)
                sc.p++;
        start_len = (size_t)(sc.p - start);
        if (lit(&sc, "\",\"start_ms\":") ||
            scan_int(&sc, TS_MIN, TS_MAX, &r->start_ms) ||
            lit(&sc, ",\"count\":") || scan_int(&sc, 1, INT64_MAX, &r->count) ||
            lit(&sc, ",\"sum\":") || scan_num(&sc, &r->sum) ||
            lit(&sc, ",\"min\":") || scan_num(&sc, &r->min) ||
            lit(&sc, ",\"max\":") || scan_num(&sc, &r->max) ||
            scan_edge(&sc, "first", &r->first) ||
            scan_edge(&sc, "last", &r->last) ||
            lit(&sc, ",\"version\":") ||
            scan_int(&sc, 1, INT64_MAX, &r->version) || lit(&sc, "}") ||
            sc.p != sc.end)
                return 1;
        *rc = check_values(r, 1, start, start_len, err);
        return 0;
}

int tally_rollup_decode_json(const void *buf, size_t len, tally_rollup *r,
                             tally_err *err)
{
        json_error_t jerr;
        json_t *root;
        int rc;

        memset(r, 0, sizeof(*r));
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return tally_err_set(err, "malformed_json",
                                     "%s at line %d column %d", jerr.text,
                                     jerr.line, jerr.column);
        rc = check(root, r, err);
        json_decref(root);
        return rc;
}

int tally_rollup_decode(const void *buf, size_t len, tally_rollup *r,
                        tally_err *err)
{
        int rc;

        memset(r, 0, sizeof(*r));
        if (decode_fast(buf, len, r, &rc, err) == 0)
                return rc;
        return tally_rollup_decode_json(buf, len, r, err);
}
