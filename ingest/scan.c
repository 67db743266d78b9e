/* ingest/scan.c -- fast path of the raw decoder (see scan.h).
 *
 * Every rule here is "accept only what the jansson path (decode.c) would
 * accept, and read it the same way"; everything else returns -1 and the
 * message goes through jansson:
 * - syntax: JSON as jansson 2.14 reads it (whitespace is space, tab, LF,
 *   CR; numbers -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, no token
 *   glued to the next), but only the shapes tally reads;
 * - strings: no escapes, no control characters, no DEL, no C1 controls
 *   (all of which either make jansson fail or a name be rejected), and
 *   well-formed UTF-8 exactly as jansson checks it (no overlongs, no
 *   surrogates, nothing above U+10FFFF);
 * - objects: only the keys site, device, ts, seq and either readings or
 *   metric + value; each at most once (jansson keeps the last of
 *   duplicates; we do not guess);
 * - numbers: a token without '.', 'e' or 'E' is an integer (jansson: json
 *   integer via strtoll; we take at most 18 digits so it always fits); any
 *   other is a real, read with strtod on a copy of the token as jansson
 *   does, or, when the digits fit in 53 bits and the power of ten is at
 *   most 22, as one exactly rounded IEEE multiplication or division, which
 *   is the correctly rounded result strtod also gives;
 * - readings: every reading must be accepted (valid names, finite value,
 *   ts in bounds); any rejection goes to jansson, which makes the dead
 *   letters. */
#include "ingest/scan.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/timefmt.h"

#define REPORT_MAX 256          /* readings of one report (duplicate check) */
#define NUM_COPY 64             /* longest real token copied for strtod */

typedef struct cur {
        const unsigned char *p, *end;
} cur;

enum {
        K_SITE = 1, K_DEVICE = 2, K_TS = 4, K_SEQ = 8, K_METRIC = 16,
        K_VALUE = 32, K_READINGS = 64,
};

typedef struct scan_num {
        int is_int;
        int64_t i;
        double d;
} scan_num;

static inline void skip_ws(cur *c)
{
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' ||
                                 *c->p == '\r' || *c->p == '\t'))
                c->p++;
}

static inline int is_cont(unsigned char b)
{
        return (b & 0xc0) == 0x80;
}

/* A plain string at c->p (which is '"'): sets s/len to its bytes and
 * moves past the closing quote. -1 on anything we do not take. */
static int scan_str(cur *c, const char **s, size_t *len)
{
        const unsigned char *start = c->p + 1, *p = start, *end = c->end;

        while (p < end) {
                unsigned char b = *p;

                if (b == '"') {
                        *s = (const char *)start;
                        *len = (size_t)(p - start);
                        c->p = p + 1;
                        return 0;
                }
                if (b < 0x80) {
                        if (b < 0x20 || b == '\\' || b == 0x7f)
                                return -1;
                        p++;
                        continue;
                }
                if (b < 0xc2)           /* continuation or overlong lead */
                        return -1;
                if (b < 0xe0) {
                        /* C2 80..C2 9F are the C1 controls: a name with
                         * one is rejected, so not ours */
                        if (end - p < 2 || !is_cont(p[1]) ||
                            (b == 0xc2 && p[1] < 0xa0))
                                return -1;
                        p += 2;
                        continue;
                }
                if (b < 0xf0) {
                        if (end - p < 3 || !is_cont(p[1]) || !is_cont(p[2]) ||
                            (b == 0xe0 && p[1] < 0xa0) ||      /* overlong */
                            (b == 0xed && p[1] >= 0xa0))       /* surrogate */
                                return -1;
                        p += 3;
                        continue;
                }
                if (b < 0xf5) {
                        if (end - p < 4 || !is_cont(p[1]) || !is_cont(p[2]) ||
                            !is_cont(p[3]) ||
                            (b == 0xf0 && p[1] < 0x90) ||      /* overlong */
                            (b == 0xf4 && p[1] >= 0x90))       /* > U+10FFFF */
                                return -1;
                        p += 4;
                        continue;
                }
                return -1;
        }
        return -1;
}

static inline int is_digit(const cur *c, const unsigned char *p)
{
        return p < c->end && *p >= '0' && *p <= '9';
}

static const double pow10_exact[23] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* A JSON number at c->p. */
static int scan_number(cur *c, scan_num *out)
{
        const unsigned char *start = c->p, *p = start;
        uint64_t m = 0;
        int neg = 0, digits = 0, frac = 0, exp = 0, exp_neg = 0, is_int = 1;

        if (p < c->end && *p == '-') {
                neg = 1;
                p++;
        }
        if (!is_digit(c, p))
                return -1;
        if (*p == '0') {
                p++;
        } else {
                while (is_digit(c, p)) {
                        if (digits < 19)
                                m = m * 10 + (uint64_t)(*p - '0');
                        digits++;
                        p++;
                }
        }
        if (p < c->end && *p == '.') {
                is_int = 0;
                p++;
                if (!is_digit(c, p))
                        return -1;
                while (is_digit(c, p)) {
                        if (digits < 19)
                                m = m * 10 + (uint64_t)(*p - '0');
                        digits++;
                        frac++;
                        p++;
                }
        }
        if (p < c->end && (*p == 'e' || *p == 'E')) {
                is_int = 0;
                p++;
                if (p < c->end && (*p == '+' || *p == '-')) {
                        exp_neg = *p == '-';
                        p++;
                }
                if (!is_digit(c, p))
                        return -1;
                while (is_digit(c, p)) {
                        if (exp < 100000)
                                exp = exp * 10 + (*p - '0');
                        p++;
                }
        }
        c->p = p;
        out->is_int = is_int;
        if (is_int) {
                if (digits > 18)        /* may not fit: jansson decides */
                        return -1;
                out->i = neg ? -(int64_t)m : (int64_t)m;
                return 0;
        }
        {
                int e10 = (exp_neg ? -exp : exp) - frac;
                double d;

#if FLT_EVAL_METHOD == 0
                if (digits <= 18 && m <= (UINT64_C(1) << 53) &&
                    e10 >= -22 && e10 <= 22) {
                        d = (double)m;
                        d = e10 < 0 ? d / pow10_exact[-e10]
                                    : d * pow10_exact[e10];
                        out->d = neg ? -d : d;
                        return 0;
                }
#endif
                {
                        char buf[NUM_COPY];
                        size_t n = (size_t)(p - start);
                        char *end;

                        if (n >= sizeof(buf))
                                return -1;
                        memcpy(buf, start, n);
                        buf[n] = '\0';
                        d = strtod(buf, &end);
                        if (end != buf + n || !isfinite(d))
                                return -1;
                        out->d = d;
                }
        }
        return 0;
}

/* A reading's value: a number or true/false. */
static int scan_value(cur *c, double *out)
{
        scan_num num;

        if (c->p >= c->end)
                return -1;
        switch (*c->p) {
        case 't':
                if (c->end - c->p < 4 || memcmp(c->p, "true", 4) != 0)
                        return -1;
                c->p += 4;
                *out = 1;
                return 0;
        case 'f':
                if (c->end - c->p < 5 || memcmp(c->p, "false", 5) != 0)
                        return -1;
                c->p += 5;
                *out = 0;
                return 0;
        default:
                if (scan_number(c, &num) != 0)
                        return -1;
                *out = num.is_int ? (double)num.i : num.d;
                return 0;
        }
}

static int key_id(const char *k, size_t n)
{
        switch (n) {
        case 2:
                return memcmp(k, "ts", 2) == 0 ? K_TS : 0;
        case 3:
                return memcmp(k, "seq", 3) == 0 ? K_SEQ : 0;
        case 4:
                return memcmp(k, "site", 4) == 0 ? K_SITE : 0;
        case 5:
                return memcmp(k, "value", 5) == 0 ? K_VALUE : 0;
        case 6:
                if (memcmp(k, "device", 6) == 0)
                        return K_DEVICE;
                return memcmp(k, "metric", 6) == 0 ? K_METRIC : 0;
        case 8:
                return memcmp(k, "readings", 8) == 0 ? K_READINGS : 0;
        default:
                return 0;
        }
}

static inline int name_ok(size_t n)
{
        /* scan_str already refused every control character */
        return n >= 1 && n <= TALLY_NAME_MAX;
}

static ingest_scan_item *push(ingest_scan *s)
{
        if (s->n == s->cap) {
                size_t ncap = s->cap ? s->cap * 2 : 64;
                ingest_scan_item *ni = realloc(s->items, ncap * sizeof(*ni));

                if (!ni)
                        return NULL;
                s->items = ni;
                s->cap = ncap;
        }
        return &s->items[s->n++];
}

/* A name-valued field: a plain string of 1..TALLY_NAME_MAX bytes. */
static int scan_name(cur *c, const char **s, uint16_t *len)
{
        size_t n;

        if (*c->p != '"' || scan_str(c, s, &n) != 0 || !name_ok(n))
                return -1;
        *len = (uint16_t)n;
        return 0;
}

static inline int expect(cur *c, unsigned char ch)
{
        skip_ws(c);
        if (c->p >= c->end || *c->p != ch)
                return -1;
        c->p++;
        skip_ws(c);
        return c->p < c->end ? 0 : -1;
}

/* The readings object of a report at c->p: appends one item per member
 * (metric and value set). */
static int scan_readings(ingest_scan *s, cur *c, int32_t element)
{
        size_t first = s->n;

        if (*c->p != '{')
                return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == '}')
                return -1;              /* empty: rejected */
        for (;;) {
                const char *k;
                uint16_t kn;
                ingest_scan_item *it;
                double v;

                if (c->p >= c->end || scan_name(c, &k, &kn) != 0)
                        return -1;
                if (s->n - first >= REPORT_MAX)
                        return -1;
                for (size_t i = first; i < s->n; i++)
                        if (s->items[i].r.metric_len == kn &&
                            memcmp(s->items[i].r.metric, k, kn) == 0)
                                return -1;      /* duplicate key */
                if (expect(c, ':') != 0 || scan_value(c, &v) != 0)
                        return -1;
                if (!(it = push(s)))
                        return -1;
                memset(it, 0, sizeof(*it));
                it->r.metric = k;
                it->r.metric_len = kn;
                it->r.value = v;
                it->element = element;
                skip_ws(c);
                if (c->p >= c->end)
                        return -1;
                if (*c->p == '}') {
                        c->p++;
                        return 0;
                }
                if (*c->p != ',')
                        return -1;
                c->p++;
                skip_ws(c);
        }
}

/* One top-level element at c->p (must be an object). */
static int scan_element(ingest_scan *s, cur *c, int32_t element,
                        int64_t ts_min, int64_t ts_max)
{
        tally_reading r = {0};
        unsigned seen = 0;
        size_t first = s->n;

        if (c->p >= c->end || *c->p != '{')
                return -1;
        c->p++;
        skip_ws(c);
        if (c->p < c->end && *c->p == '}')
                return -1;              /* {}: missing fields */
        for (;;) {
                const char *k, *t;
                size_t kn, tn;
                scan_num num;
                int id;

                if (c->p >= c->end || *c->p != '"' ||
                    scan_str(c, &k, &kn) != 0)
                        return -1;
                id = key_id(k, kn);
                if (!id || (seen & (unsigned)id))
                        return -1;      /* unknown or duplicate key */
                seen |= (unsigned)id;
                if (expect(c, ':') != 0)
                        return -1;
                switch (id) {
                case K_SITE:
                        if (scan_name(c, &r.site, &r.site_len) != 0)
                                return -1;
                        break;
                case K_DEVICE:
                        if (scan_name(c, &r.device, &r.device_len) != 0)
                                return -1;
                        break;
                case K_METRIC:
                        if (scan_name(c, &r.metric, &r.metric_len) != 0)
                                return -1;
                        break;
                case K_TS:
                        if (*c->p == '"') {
                                if (scan_str(c, &t, &tn) != 0 ||
                                    tally_time_parse(t, tn, &r.ts_ms) != 0)
                                        return -1;
                        } else if (scan_number(c, &num) != 0 || !num.is_int) {
                                return -1;
                        } else {
                                r.ts_ms = num.i;
                        }
                        break;
                case K_SEQ:
                        if (scan_number(c, &num) != 0 || !num.is_int)
                                return -1;
                        break;
                case K_VALUE:
                        if (scan_value(c, &r.value) != 0)
                                return -1;
                        break;
                case K_READINGS:
                        if (scan_readings(s, c, element) != 0)
                                return -1;
                        break;
                }
                skip_ws(c);
                if (c->p >= c->end)
                        return -1;
                if (*c->p == '}') {
                        c->p++;
                        break;
                }
                if (*c->p != ',')
                        return -1;
                c->p++;
                skip_ws(c);
        }
        if ((seen & (K_SITE | K_DEVICE | K_TS)) != (K_SITE | K_DEVICE | K_TS))
                return -1;
        if (r.ts_ms < ts_min || r.ts_ms > ts_max)
                return -1;
        if (seen & K_READINGS) {
                if (seen & (K_METRIC | K_VALUE))
                        return -1;
                for (size_t i = first; i < s->n; i++) {
                        tally_reading *o = &s->items[i].r;

                        o->site = r.site;
                        o->site_len = r.site_len;
                        o->device = r.device;
                        o->device_len = r.device_len;
                        o->ts_ms = r.ts_ms;
                }
                return 0;
        }
        if ((seen & (K_METRIC | K_VALUE)) != (K_METRIC | K_VALUE))
                return -1;
        {
                ingest_scan_item *it = push(s);

                if (!it)
                        return -1;
                memset(it, 0, sizeof(*it));
                it->r = r;
                it->element = element;
        }
        return 0;
}

/* NDJSON: every non-blank line is exactly one object; at least two. */
static int scan_lines(ingest_scan *s, const unsigned char *p, size_t n,
                      int64_t ts_min, int64_t ts_max)
{
        const unsigned char *end = p + n;
        int32_t element = 0;

        for (;;) {
                const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
                cur c = {p, nl ? nl : end};

                skip_ws(&c);
                if (c.p < c.end) {
                        if (element == INT32_MAX ||
                            scan_element(s, &c, element++, ts_min,
                                         ts_max) != 0)
                                return -1;
                        skip_ws(&c);
                        if (c.p != c.end)
                                return -1;
                }
                if (!nl)
                        break;
                p = nl + 1;
        }
        return element >= 2 ? 0 : -1;
}

int ingest_scan_run(ingest_scan *s, const char *buf, size_t n, int64_t ts_min,
                    int64_t ts_max)
{
        const unsigned char *p = (const unsigned char *)buf;
        cur c = {p, p + n};

        s->n = 0;
        if (n == 0)
                return -1;
        if (*p == '[') {
                int32_t element = 0;

                c.p++;
                skip_ws(&c);
                if (c.p < c.end && *c.p == ']')
                        return -1;      /* empty array */
                for (;;) {
                        if (element == INT32_MAX ||
                            scan_element(s, &c, element++, ts_min,
                                         ts_max) != 0)
                                return -1;
                        skip_ws(&c);
                        if (c.p >= c.end)
                                return -1;
                        if (*c.p == ']') {
                                c.p++;
                                break;
                        }
                        if (*c.p != ',')
                                return -1;
                        c.p++;
                        skip_ws(&c);
                }
                skip_ws(&c);
                return c.p == c.end ? 0 : -1;
        }
        if (scan_element(s, &c, 0, ts_min, ts_max) != 0)
                return -1;
        skip_ws(&c);
        if (c.p == c.end)
                return 0;
        /* more after the first object: NDJSON, scanned line by line */
        s->n = 0;
        return scan_lines(s, p, n, ts_min, ts_max);
}

void ingest_scan_free(ingest_scan *s)
{
        free(s->items);
        s->items = NULL;
        s->n = s->cap = 0;
}
