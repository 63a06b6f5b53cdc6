/* err.c — one-line error messages carried beside positive errno codes. */
#include "s3torrent/err.h"
#include "s3torrent/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(err_t *err, int code, const char *fmt, ...)
{
    if (err == NULL)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    util_scrub(err->msg);
    err->code = code;
    return code;
}

int err_prefix(err_t *err, const char *fmt, ...)
{
    if (err == NULL)
        return 0;
    char head[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    char both[sizeof(head) + sizeof(old) + 2];
    memcpy(old, err->msg, sizeof(old));
    snprintf(both, sizeof(both), "%s: %s", head, old);
    /* keep the start: what failed comes first */
    size_t n = strlen(both);
    if (n >= sizeof(err->msg))
        n = sizeof(err->msg) - 1;
    memcpy(err->msg, both, n);
    err->msg[n] = '\0';
    util_scrub(err->msg);
    return err->code;
}

void err_clear(err_t *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
