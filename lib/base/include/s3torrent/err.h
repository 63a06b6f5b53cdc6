/* err.h — the one error convention of lib/: functions return 0 or a positive errno and may
 * fill an err_t with one human-readable line (what failed, on which object, and why). */
#ifndef S3TORRENT_ERR_H
#define S3TORRENT_ERR_H

#include <stddef.h>

typedef struct err {
    int code;      /* positive errno, 0 when no error */
    char msg[512]; /* one line, no trailing newline */
} err_t;

/* Records code and a formatted message in err (which may be NULL). Returns code. */
int err_set(err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes err's message with a formatted context ("reading x: <old message>"). Returns err->code.
 */
int err_prefix(err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets err to "no error". */
void err_clear(err_t *err);

#endif
