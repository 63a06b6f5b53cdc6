/* outfile.c — a whole file written for a user: atomically when it is a file, in place when it
 * is a device, a FIFO or a symlink (outfile.h). */
#include "s3torrent/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* Writes into what path names, opened as a shell's `>` opens it: made only if stat found
 * nothing there (a dangling symlink's target: O_EXCL would refuse the link itself), and checked
 * again once open (fstat), so a symlink turned meanwhile to a directory, a block device or,
 * without OUTFILE_REPLACE, a file with bytes in it is refused, not truncated. A FIFO opened
 * without waiting takes all of data or none of it (a reader never gets half). */
static int write_in_place(const char *path, bool exists, const void *data, size_t len,
                          unsigned flags, err_t *err)
{
    int nb = flags & OUTFILE_NONBLOCK ? O_NONBLOCK : 0;
    int fd = open(path, O_WRONLY | O_CLOEXEC | nb | (exists ? 0 : O_CREAT), 0644);
    if (fd < 0)
        return err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
    struct stat st;
    int rc = fstat(fd, &st) != 0 ? errno : 0;
    if (rc == 0 && S_ISBLK(st.st_mode))
        rc = err_set(err, EINVAL, "cannot write %s: it names a block device", path);
    else if (rc == 0 && S_ISREG(st.st_mode) && (exists || st.st_size > 0) &&
             !(flags & OUTFILE_REPLACE))
        rc = err_set(err, EEXIST, "%s already exists", path);
    else if (rc == 0 && S_ISREG(st.st_mode) && ftruncate(fd, 0) != 0)
        rc = errno;
    if (rc == 0 && nb && S_ISFIFO(st.st_mode)) {
        int cap = fcntl(fd, F_GETPIPE_SZ), queued = 0;
        if (cap < 0 || ioctl(fd, FIONREAD, &queued) != 0 || (size_t)(cap - queued) < len)
            rc = err_set(err, EAGAIN, "cannot write %s: its reader has not taken the last write",
                         path);
    }
    if (rc == 0)
        rc = outfile_write_fd(fd, data, len);
    /* a device or a FIFO has nothing to sync (EINVAL) */
    if (rc == 0 && (flags & OUTFILE_SYNC) && fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        rc = errno;
    if (close(fd) != 0 && rc == 0)
        rc = errno;
    if (rc && err && err->code != rc)
        err_set(err, rc, "writing %s: %s", path, strerror(rc));
    return rc;
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
        /* what the caller saw as a file or nothing, looked at again just before: the window in
         * which a device could take its place and be replaced is this short */
        struct stat l;
        if (lstat(path, &l) == 0 && !S_ISREG(l.st_mode))
            rc = err_set(err, EBUSY, "cannot write %s: it changed while written", path);
        else if (rename(tmp, path) != 0)
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

/* The descriptor a path names as the shell's special files do (/dev/stdout, /dev/stderr,
 * /dev/fd/N), or -1. */
static int own_fd(const char *path)
{
    if (strcmp(path, "/dev/stdout") == 0)
        return STDOUT_FILENO;
    if (strcmp(path, "/dev/stderr") == 0)
        return STDERR_FILENO;
    if (strncmp(path, "/dev/fd/", 8) != 0 || path[8] < '0' || path[8] > '9')
        return -1;
    char *end;
    long fd = strtol(path + 8, &end, 10);
    return *end == '\0' && fd <= INT_MAX ? (int)fd : -1;
}

int outfile_write(const char *path, const void *data, size_t len, unsigned flags, err_t *err)
{
    struct stat l, t;
    int own = own_fd(path);
    if (own >= 0) {
        /* written where the descriptor points, as the shell's `>&N`: renaming a file over
         * what /dev/stdout resolves to would leave the descriptor on the old one */
        int rc = outfile_write_fd(own, data, len);
        return rc ? err_set(err, rc, "writing %s: %s", path, strerror(rc)) : 0;
    }
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
    bool target = stat(path, &t) == 0; /* a symlink followed; a dangling one makes its target */
    if (target && S_ISDIR(t.st_mode))
        return err_set(err, EISDIR, "cannot write %s: it names a directory", path);
    if (target && S_ISREG(t.st_mode)) {
        /* a symlink to a file: the file it names is replaced whole, the link kept */
        if (!(flags & OUTFILE_REPLACE))
            return err_set(err, EEXIST, "%s already exists", path);
        char *real = realpath(path, NULL);
        if (real == NULL)
            return err_set(err, errno, "cannot write %s: %s", path, strerror(errno));
        int rc = write_replacing(real, data, len, flags, err);
        free(real);
        return rc;
    }
    /* a block device is refused by the check once open, no O_TRUNC before it */
    return write_in_place(path, target, data, len, flags, err);
}
