/* store/copybin.h -- PostgreSQL's binary COPY format, written into a
 * tally_buf: the signature header, tuples of network-order fields, the
 * trailer. Binary COPY spares the server parsing text numbers and
 * timestamps (most of a text COPY's cost). Owns no state. */
#pragma once
#include <stdint.h>

#include "common/buf.h"

void store_copybin_header(tally_buf *b);
void store_copybin_trailer(tally_buf *b);
void store_copybin_tuple(tally_buf *b, int16_t fields);
void store_copybin_int4(tally_buf *b, int32_t v);
void store_copybin_int8(tally_buf *b, int64_t v);
void store_copybin_float8(tally_buf *b, double v);
/* timestamptz from epoch milliseconds (server: microseconds since
 * 2000-01-01 UTC, integer datetimes) */
void store_copybin_ts(tally_buf *b, int64_t epoch_ms);
void store_copybin_text(tally_buf *b, const char *s);
