#include "common/err.h"

#include <stdio.h>
#include <string.h>

int tally_err_set(tally_err *err, const char *reason, const char *fmt, ...)
{
        va_list ap;

        if (!err)
                return -1;
        snprintf(err->reason, sizeof(err->reason), "%s", reason);
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return -1;
}

void tally_err_clear(tally_err *err)
{
        if (err) {
                err->reason[0] = '\0';
                err->msg[0] = '\0';
        }
}
