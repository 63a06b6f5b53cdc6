/* outfile.h — writing a whole file a user named (a torrent with -o, the mount's metrics file):
 * a new or regular file is replaced atomically, and anything else is written into as a shell's
 * `>` would, never replaced (docs/DESIGN.md §8). */
#ifndef S3TORRENT_OUTFILE_H
#define S3TORRENT_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "s3torrent/err.h"

/* outfile_write's flags */
enum {
    OUTFILE_REPLACE = 1,  /* an existing file is replaced (else refused: EEXIST) */
    OUTFILE_SYNC = 2,     /* the bytes are on disk before the file is in place */
    OUTFILE_NONBLOCK = 4, /* a FIFO without a reader, or full, is an error, not a wait */
};

/* Writes the len bytes of data to path, mode 0644 less the umask. A path that does not exist
 * or is a regular file gets a temporary file beside it, then rename() (OUTFILE_REPLACE) or
 * link(), which keeps a file that appeared meanwhile: a reader sees the old bytes or the new,
 * never part. A symlink to a regular file is followed and the file it names replaced the same
 * way, the link kept. Anything else is opened and written in place, as the shell's `>` does: a
 * character device (/dev/null, a terminal), a FIFO (with OUTFILE_NONBLOCK, all of data or none,
 * so a reader never gets half), a dangling symlink (its target made); /dev/stdout, /dev/stderr
 * and /dev/fd/N are that descriptor, written as it is. A rename would replace it, and a
 * rename over /dev/null leaves a regular file in its place. A directory or a block device is
 * refused. Returns 0, or an errno with err set to one line naming path. */
int outfile_write(const char *path, const void *data, size_t len, unsigned flags, err_t *err);

/* Writes all len bytes of data to fd, again after EINTR. Returns 0 or an errno (EIO when a
 * write makes no progress). */
int outfile_write_fd(int fd, const void *data, size_t len);

#endif
