/* common/err.h -- error value passed up from any module: a machine-readable
 * reason code plus a message naming what was wrong and where. Modules fill
 * it and return -1; only the daemon's loop logs it. No state: thread-safe. */
#pragma once
#include <stdarg.h>

typedef struct tally_err {
        char reason[32];        /* snake_case code, e.g. "bad_timestamp" */
        char msg[480];          /* human text: what and where */
} tally_err;

/* Sets err (if not NULL) to reason and a printf-style message. Returns -1
 * so that callers can write `return tally_err_set(...)`. */
int tally_err_set(tally_err *err, const char *reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

void tally_err_clear(tally_err *err);
