/* outfile.c — a whole file written for a user: atomically when it is a file, in place when it
 * is a device, a FIFO or a symlink (outfile.h). */
#include "s3torrent/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outfile_write_fd(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return errno;
        if (w == 0)
            return EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Writes into what path names, opened as a shell's `>` opens it. */
static int write_in_place(const char *path, const void *data, size_t len, unsigned flags,
                          err_t *err)
{
    int nb = flags & OUTFILE_NONBLOCK ? O_NONBLOCK : 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | nb, 0644);
    if (fd < 0)
        return err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
    int rc = outfile_write_fd(fd, data, len);
    /* a device or a FIFO has nothing to sync (EINVAL) */
    if (rc == 0 && (flags & OUTFILE_SYNC) && fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    return rc ? err_set(err, rc, "writing %s: %s", path, strerror(rc)) : 0;
}

/* Writes a new temporary file beside path (0644 less the umask: open applies it, where a
 * umask() call to read it would change it for every thread a moment) and puts it in place. */
static int write_replacing(const char *path, const void *data, size_t len, unsigned flags,
                           err_t *err)
{
    static atomic_uint serial;
    size_t n = strlen(path) + 48;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return err_set(err, ENOMEM, "out of memory");
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&serial, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return err_set(err, e, "cannot create %s: %s", path, strerror(e));
    }
    int rc = outfile_write_fd(fd, data, len);
    if (rc == 0 && (flags & OUTFILE_SYNC) && fsync(fd) != 0)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc) {
        err_set(err, rc, "writing %s: %s", path, strerror(rc));
    } else if (flags & OUTFILE_REPLACE) {
        if (rename(tmp, path) != 0)
            rc = err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
    } else if (link(tmp, path) != 0) { /* link() refuses to replace what appeared meanwhile */
        rc = errno == EEXIST ? err_set(err, EEXIST, "%s already exists", path)
                             : err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
    }
    if (rc || !(flags & OUTFILE_REPLACE))
        unlink(tmp);
    free(tmp);
    return rc;
}

int outfile_write(const char *path, const void *data, size_t len, unsigned flags, err_t *err)
{
    struct stat l, t;
    if (lstat(path, &l) != 0) {
        if (errno != ENOENT)
            return err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
        return write_replacing(path, data, len, flags, err);
    }
    if (S_ISREG(l.st_mode)) {
        if (!(flags & OUTFILE_REPLACE))
            return err_set(err, EEXIST, "%s already exists", path);
        return write_replacing(path, data, len, flags, err);
    }
    if (S_ISDIR(l.st_mode))
        return err_set(err, EISDIR, "cannot write %s: it is a directory", path);
    /* a symlink is followed; a dangling one makes its target, as `>` does */
    bool target = stat(path, &t) == 0;
    if (target && S_ISDIR(t.st_mode))
        return err_set(err, EISDIR, "cannot write %s: it names a directory", path);
    if (target && S_ISBLK(t.st_mode))
        return err_set(err, EINVAL, "cannot write %s: it names a block device", path);
    if (target && S_ISREG(t.st_mode) && !(flags & OUTFILE_REPLACE))
        return err_set(err, EEXIST, "%s already exists", path);
    return write_in_place(path, data, len, flags, err);
}
