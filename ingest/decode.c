/* ingest/decode.c -- raw message -> readings (spec: docs/input.md).
 *
 * Flow: size check, gunzip into the decoder's reusable buffer when the
 * gzip magic is present, then the fast scanner (scan.h), which either
 * accepts the whole message (every reading good) or hands it on untouched.
 * Otherwise: pick the shape from the first non-blank byte ('[' array, '{'
 * object or NDJSON), parse with jansson, then walk the
 * elements in document order handing each reading (or rejection) to the
 * callback with the next index. Accepted readings are never copied: their
 * strings point into the jansson tree, which lives until the element (or
 * the message) is done. */
#include "ingest/decode.h"
#include "ingest/json_arena.h"
#include "ingest/scan.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/timefmt.h"

struct ingest_decoder {
        ingest_limits lim;
        z_stream zs;
        int zs_ready;           /* inflateInit2 done */
        unsigned char *out;     /* inflated bytes, reused across messages */
        size_t out_cap;
        ingest_decode_mode mode;
        ingest_scan scan;       /* fast path state, reused */
};

/* State of one ingest_decode call. */
typedef struct dec_run {
        ingest_decoder *d;
        int64_t ts_min, ts_max; /* accepted event-time bounds */
        ingest_event_cb cb;
        void *opaque;
        int32_t index;          /* next reading index */
        int32_t element;        /* current top-level element */
        int stopped;            /* callback asked to stop */
        char detail[256];
} dec_run;

void ingest_limits_default(ingest_limits *lim)
{
        lim->max_message = 1u << 20;
        lim->max_inflated = 16u << 20;
        lim->max_past_ms = 7LL * 24 * 3600 * 1000;
        lim->max_future_ms = 5LL * 60 * 1000;
}

ingest_decoder *ingest_decoder_new(const ingest_limits *lim)
{
        ingest_decoder *d = calloc(1, sizeof(*d));

        if (!d)
                return NULL;
        ingest_json_arena_install();
        if (lim)
                d->lim = *lim;
        else
                ingest_limits_default(&d->lim);
        return d;
}

void ingest_decoder_free(ingest_decoder *d)
{
        if (!d)
                return;
        if (d->zs_ready)
                inflateEnd(&d->zs);
        free(d->out);
        ingest_scan_free(&d->scan);
        free(d);
}

void ingest_decoder_set_mode(ingest_decoder *d, ingest_decode_mode mode)
{
        d->mode = mode;
}


static int is_ws(unsigned char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int64_t sat_add(int64_t a, int64_t b)
{
        if (b > 0 && a > INT64_MAX - b)
                return INT64_MAX;
        if (b < 0 && a < INT64_MIN - b)
                return INT64_MIN;
        return a + b;
}

/* ---- gzip ------------------------------------------------------------ */

/* Inflates every gzip member of buf into d->out, at most max_inflated
 * bytes. Returns 0 with *outlen set, or -1 with err set (too_large or
 * decompression_failed). */
static int gunzip(ingest_decoder *d, const unsigned char *buf, size_t len,
                  size_t *outlen, tally_err *err)
{
        size_t limit = d->lim.max_inflated;
        size_t total = 0;
        /* one byte more than allowed, to tell "exactly the limit" from
         * "over it" */
        size_t cap_max = limit < SIZE_MAX ? limit + 1 : limit;

        if (len > UINT_MAX)
                return tally_err_set(err, "too_large",
                                     "gzip message of %zu bytes", len);
        if (!d->zs_ready) {
                memset(&d->zs, 0, sizeof(d->zs));
                if (inflateInit2(&d->zs, 16 + MAX_WBITS) != Z_OK)
                        return tally_err_set(err, "decompression_failed",
                                             "inflateInit2 failed");
                d->zs_ready = 1;
        } else if (inflateReset(&d->zs) != Z_OK) {
                return tally_err_set(err, "decompression_failed",
                                     "inflateReset failed");
        }
        d->zs.next_in = (unsigned char *)buf;
        d->zs.avail_in = (uInt)len;

        for (;;) {
                size_t room;
                int zrc;

                if (total == d->out_cap) {
                        /* total <= limit < cap_max here, so this grows */
                        size_t ncap = d->out_cap ? d->out_cap * 2 : 65536;
                        unsigned char *nout;

                        if (ncap < d->out_cap || ncap > cap_max)
                                ncap = cap_max;
                        nout = realloc(d->out, ncap);
                        if (!nout)
                                return tally_err_set(err, "too_large",
                                        "cannot allocate %zu bytes", ncap);
                        d->out = nout;
                        d->out_cap = ncap;
                }
                room = d->out_cap - total;
                if (room > UINT_MAX)
                        room = UINT_MAX;
                d->zs.next_out = d->out + total;
                d->zs.avail_out = (uInt)room;
                zrc = inflate(&d->zs, Z_NO_FLUSH);
                total += room - d->zs.avail_out;
                if (total > limit)
                        return tally_err_set(err, "too_large",
                                "inflates to more than %zu bytes", limit);
                if (zrc == Z_STREAM_END) {
                        if (d->zs.avail_in == 0)
                                break;
                        /* another gzip member follows (as gzip(1) and
                         * zcat accept); anything else fails on reset */
                        if (inflateReset(&d->zs) != Z_OK)
                                return tally_err_set(err,
                                        "decompression_failed",
                                        "inflateReset failed");
                        continue;
                }
                if (zrc == Z_OK)
                        continue;
                if (zrc == Z_BUF_ERROR && d->zs.avail_out == 0)
                        continue;       /* needs room: loop grows */
                if (zrc == Z_BUF_ERROR)
                        return tally_err_set(err, "decompression_failed",
                                             "gzip stream truncated");
                return tally_err_set(err, "decompression_failed",
                                     "inflate: %s",
                                     d->zs.msg ? d->zs.msg : "error");
        }
        *outlen = total;
        return 0;
}

/* ---- events ---------------------------------------------------------- */

static int emit_reading(dec_run *run, const tally_reading *r)
{
        ingest_event ev = {0};

        ev.kind = INGEST_EV_READING;
        ev.index = run->index++;
        ev.element = run->element;
        ev.reading = r;
        if (run->cb(run->opaque, &ev) != 0) {
                run->stopped = 1;
                return -1;
        }
        return 0;
}

/* Rejects one index worth of input. text/len is the offending bytes if
 * the caller has them; otherwise elem (never NULL then) is dumped. */
static int emit_reject(dec_run *run, const char *reason, const char *text,
                       size_t len, json_t *elem)
{
        ingest_event ev = {0};
        char *dump = NULL;
        int rc = 0;

        if (!text) {
                dump = json_dumps(elem, JSON_COMPACT | JSON_ENCODE_ANY);
                text = dump ? dump : "";
                len = dump ? strlen(dump) : 0;
        }
        ev.kind = INGEST_EV_REJECT;
        ev.index = run->index++;
        ev.element = run->element;
        ev.reason = reason;
        ev.detail = run->detail;
        ev.element_text = text;
        ev.element_len = len;
        if (run->cb(run->opaque, &ev) != 0) {
                run->stopped = 1;
                rc = -1;
        }
        ingest_json_free(dump);
        return rc;
}

#define DETAIL(run, ...) \
        snprintf((run)->detail, sizeof((run)->detail), __VA_ARGS__)

/* ---- field rules ----------------------------------------------------- */

/* Checks a site/device/metric name: 1..TALLY_NAME_MAX bytes, no C0/C1
 * control character (jansson already guarantees valid UTF-8). Returns
 * NULL if fine, else what is wrong. */
static const char *name_problem(const char *s, size_t n)
{
        if (n == 0)
                return "is empty";
        if (n > TALLY_NAME_MAX)
                return "is longer than 200 bytes";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f)
                        return "has a control character";
                /* U+0080..U+009F are C2 80..C2 9F in UTF-8 */
                if (c == 0xc2 && i + 1 < n &&
                    (unsigned char)s[i + 1] >= 0x80 &&
                    (unsigned char)s[i + 1] <= 0x9f)
                        return "has a control character";
        }
        return NULL;
}

/* Fetches obj.key as a valid name. Returns NULL if fine (s/n set), else
 * the reason, with run->detail naming the field. */
static const char *get_name(dec_run *run, json_t *obj, const char *key,
                            const char **s, uint16_t *n)
{
        json_t *v = json_object_get(obj, key);
        const char *why;
        size_t len;

        if (!v) {
                DETAIL(run, "%s is missing", key);
                return "missing_field";
        }
        if (!json_is_string(v)) {
                DETAIL(run, "%s is not a string", key);
                return "bad_field";
        }
        *s = json_string_value(v);
        len = json_string_length(v);
        why = name_problem(*s, len);
        if (why) {
                DETAIL(run, "%s %s", key, why);
                return "bad_field";
        }
        *n = (uint16_t)len;
        return NULL;
}

/* value: a finite number, or a boolean as 0/1. */
static const char *get_value(dec_run *run, json_t *v, const char *what,
                             double *out)
{
        switch (json_typeof(v)) {
        case JSON_INTEGER:
                *out = (double)json_integer_value(v);
                return NULL;
        case JSON_REAL:
                *out = json_real_value(v);
                if (!isfinite(*out)) {  /* jansson refuses these; be sure */
                        DETAIL(run, "%s is not finite", what);
                        return "non_finite_value";
                }
                return NULL;
        case JSON_TRUE:
                *out = 1;
                return NULL;
        case JSON_FALSE:
                *out = 0;
                return NULL;
        default:
                DETAIL(run, "%s is not a number or boolean", what);
                return "bad_value";
        }
}

/* ts: an RFC 3339 string or integer epoch ms. The bounds are checked per
 * reading, after its value (in_bounds). */
static const char *get_ts(dec_run *run, json_t *obj, int64_t *out)
{
        json_t *v = json_object_get(obj, "ts");

        if (!v) {
                DETAIL(run, "ts is missing");
                return "missing_field";
        }
        if (json_is_string(v)) {
                if (tally_time_parse(json_string_value(v),
                                     json_string_length(v), out) != 0) {
                        DETAIL(run, "ts is not an RFC 3339 time");
                        return "bad_timestamp";
                }
        } else if (json_is_integer(v)) {
                *out = json_integer_value(v);
        } else {
                DETAIL(run, "ts is neither an RFC 3339 string nor "
                       "integer epoch milliseconds");
                return "bad_timestamp";
        }
        return NULL;
}

static const char *ts_bounds(dec_run *run, int64_t ts)
{
        if (ts >= run->ts_min && ts <= run->ts_max)
                return NULL;
        DETAIL(run, "ts %lld is outside [%lld, %lld] (record time bounds)",
               (long long)ts, (long long)run->ts_min, (long long)run->ts_max);
        return "bad_timestamp";
}

/* Text of one rejected reading of a report: its own single-reading
 * object, so that the dead letter stands alone. */
static int reject_report_reading(dec_run *run, const char *reason,
                                 json_t *obj, const char *metric,
                                 json_t *value)
{
        json_t *one = json_object();
        int rc;

        if (one) {
                json_object_set(one, "site", json_object_get(obj, "site"));
                json_object_set(one, "device",
                                json_object_get(obj, "device"));
                json_object_set(one, "ts", json_object_get(obj, "ts"));
                json_object_set_new(one, "metric", json_string(metric));
                json_object_set(one, "value", value);
                rc = emit_reject(run, reason, NULL, 0, one);
                json_decref(one);
                return rc;
        }
        return emit_reject(run, reason, NULL, 0, obj);
}

/* One top-level element (array item, NDJSON line, lone object). */
static int decode_element(dec_run *run, json_t *elem)
{
        tally_reading r = {0};
        const char *why;
        json_t *readings, *v;

        if (!json_is_object(elem)) {
                DETAIL(run, "element is not an object");
                return emit_reject(run, "bad_field", NULL, 0, elem);
        }
        if ((why = get_name(run, elem, "site", &r.site, &r.site_len)) ||
            (why = get_name(run, elem, "device", &r.device,
                            &r.device_len)) ||
            (why = get_ts(run, elem, &r.ts_ms)))
                return emit_reject(run, why, NULL, 0, elem);
        v = json_object_get(elem, "seq");
        if (v && !json_is_integer(v)) {
                DETAIL(run, "seq is not an integer");
                return emit_reject(run, "bad_field", NULL, 0, elem);
        }

        readings = json_object_get(elem, "readings");
        if (!readings) {
                /* single reading */
                if ((why = get_name(run, elem, "metric", &r.metric,
                                    &r.metric_len)))
                        return emit_reject(run, why, NULL, 0, elem);
                v = json_object_get(elem, "value");
                if (!v) {
                        DETAIL(run, "value is missing");
                        return emit_reject(run, "missing_field", NULL, 0,
                                           elem);
                }
                if ((why = get_value(run, v, "value", &r.value)) ||
                    (why = ts_bounds(run, r.ts_ms)))
                        return emit_reject(run, why, NULL, 0, elem);
                return emit_reading(run, &r);
        }

        /* device report */
        if (!json_is_object(readings)) {
                DETAIL(run, "readings is not an object");
                return emit_reject(run, "bad_field", NULL, 0, elem);
        }
        if (json_object_size(readings) == 0) {
                DETAIL(run, "readings is empty");
                return emit_reject(run, "bad_field", NULL, 0, elem);
        }
        {
                const char *key;
                json_t *val;

                /* jansson 2.14 iterates in insertion (document) order */
                json_object_foreach(readings, key, val) {
                        size_t klen = strlen(key);
                        const char *kwhy = name_problem(key, klen);
                        int rc;

                        if (kwhy) {
                                DETAIL(run, "readings key (metric) %s",
                                       kwhy);
                                rc = reject_report_reading(run, "bad_field",
                                                           elem, key, val);
                        } else if ((why = get_value(run, val,
                                                    "readings value",
                                                    &r.value)) ||
                                   (why = ts_bounds(run, r.ts_ms))) {
                                rc = reject_report_reading(run, why, elem,
                                                           key, val);
                        } else {
                                r.metric = key;
                                r.metric_len = (uint16_t)klen;
                                rc = emit_reading(run, &r);
                        }
                        if (rc != 0)
                                return -1;
                }
        }
        return 0;
}

/* The fast path: 1 if the scanner took the whole message (its readings
 * were emitted), 0 if it is jansson's. */
static int decode_fast(dec_run *run, const char *p, size_t n)
{
        ingest_scan *s = &run->d->scan;

        if (ingest_scan_run(s, p, n, run->ts_min, run->ts_max) != 0)
                return 0;
        for (size_t k = 0; k < s->n; k++) {
                run->element = s->items[k].element;
                if (emit_reading(run, &s->items[k].r) != 0)
                        break;
        }
        return 1;
}

/* ---- shapes ---------------------------------------------------------- */

static int decode_array(dec_run *run, const char *p, size_t n,
                        tally_err *err)
{
        json_error_t jerr;
        json_t *root = json_loadb(p, n, 0, &jerr);
        size_t i;
        json_t *elem;
        int rc = 0;

        if (!root)
                return tally_err_set(err, "malformed_json",
                                     "line %d column %d: %s", jerr.line,
                                     jerr.column, jerr.text);
        if (json_array_size(root) == 0) {
                json_decref(root);
                return tally_err_set(err, "empty", "empty array");
        }
        json_array_foreach(root, i, elem) {
                run->element = (int32_t)i;
                if ((rc = decode_element(run, elem)) != 0)
                        break;
        }
        json_decref(root);
        return rc;
}

static int blank(const char *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!is_ws((unsigned char)p[i]))
                        return 0;
        return 1;
}

/* NDJSON: every non-blank line is one element. first, if not NULL, is the
 * already parsed object of the first non-blank line (reference taken). */
static int decode_lines(dec_run *run, const char *p, size_t n,
                        json_t *first)
{
        const char *end = p + n;
        int32_t element = 0;

        while (p < end) {
                const char *nl = memchr(p, '\n', (size_t)(end - p));
                size_t len = (size_t)((nl ? nl : end) - p);
                json_error_t jerr;
                json_t *obj;
                int rc;

                if (blank(p, len)) {
                        p += len + 1;
                        continue;
                }
                run->element = element++;
                if (first) {
                        obj = first;
                        first = NULL;
                } else {
                        obj = json_loadb(p, len, 0, &jerr);
                }
                if (obj) {
                        rc = decode_element(run, obj);
                        json_decref(obj);
                } else {
                        DETAIL(run, "line column %d: %s", jerr.column,
                               jerr.text);
                        rc = emit_reject(run, "malformed_json", p, len,
                                         NULL);
                }
                if (rc != 0)
                        return -1;
                p += len + 1;
        }
        json_decref(first);
        return 0;
}

/* p starts with '{': one object, or NDJSON if more non-blank lines
 * follow; a single line that is not one object is malformed. */
static int decode_object(dec_run *run, const char *p, size_t n,
                         tally_err *err)
{
        json_error_t jerr;
        json_t *root = json_loadb(p, n, JSON_DISABLE_EOF_CHECK, &jerr);
        const char *nl;
        size_t stop = 0;
        int rc;

        if (root) {
                stop = jerr.position > 0 ? (size_t)jerr.position : 0;
                if (stop > n)
                        stop = n;
                if (blank(p + stop, n - stop)) {
                        run->element = 0;
                        rc = decode_element(run, root);
                        json_decref(root);
                        return rc;
                }
        }
        /* more than one JSON text, or not JSON: NDJSON needs a second
         * non-blank line */
        nl = memchr(p, '\n', n);
        if (!nl || blank(nl, n - (size_t)(nl - p))) {
                json_decref(root);
                if (!root)
                        return tally_err_set(err, "malformed_json",
                                             "line %d column %d: %s",
                                             jerr.line, jerr.column,
                                             jerr.text);
                return tally_err_set(err, "malformed_json",
                                     "data after the object on its line");
        }
        /* reuse the parsed first object if it is exactly line 0 */
        if (root && !(stop <= (size_t)(nl - p) &&
                      blank(p + stop, (size_t)(nl - p) - stop))) {
                json_decref(root);
                root = NULL;
        }
        return decode_lines(run, p, n, root);
}

int ingest_decode(ingest_decoder *d, const void *buf, size_t len,
                  int64_t record_ts_ms, ingest_event_cb cb, void *opaque,
                  tally_err *err)
{
        const unsigned char *p = buf;
        size_t n = len, i = 0;
        dec_run run = {0};
        int rc;

        tally_err_clear(err);
        if (len > d->lim.max_message)
                return tally_err_set(err, "too_large",
                                     "message of %zu bytes (max %zu)", len,
                                     d->lim.max_message);
        if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b) {
                if (gunzip(d, p, n, &n, err) != 0)
                        return -1;
                p = d->out;
        }
        while (i < n && is_ws(p[i]))
                i++;
        if (i == n)
                return tally_err_set(err, "empty", "no content");

        run.d = d;
        run.cb = cb;
        run.opaque = opaque;
        run.ts_min = sat_add(record_ts_ms, -d->lim.max_past_ms);
        run.ts_max = sat_add(record_ts_ms, d->lim.max_future_ms);

        if (p[i] != '[' && p[i] != '{')
                return tally_err_set(err, "malformed_json",
                                     "starts with neither '{' nor '['");
        if (d->mode != INGEST_DECODE_JANSSON) {
                if (decode_fast(&run, (const char *)p + i, n - i)) {
                        if (run.stopped)
                                return tally_err_set(err, "callback",
                                        "callback stopped decoding");
                        return 0;
                }
                if (d->mode == INGEST_DECODE_FAST)
                        return tally_err_set(err, "not_handled",
                                "left to the jansson path");
        }
        ingest_json_arena_open();
        if (p[i] == '[')
                rc = decode_array(&run, (const char *)p + i, n - i, err);
        else
                rc = decode_object(&run, (const char *)p + i, n - i, err);
        ingest_json_arena_close();
        if (run.stopped)
                return tally_err_set(err, "callback",
                                     "callback stopped decoding");
        return rc;
}
