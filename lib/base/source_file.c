/* source_file.c — the local-file byte source: pread into the worker's buffer. Not mmap: a file
 * truncated under us must be an error message, never a SIGBUS, and mapping measured no faster. */
#include "s3torrent/source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_source {
    struct source base;
    int fd;
    struct stat st;
};

struct file_stream {
    uint64_t off, end;
};

static int file_stream_open(struct source *s, uint64_t off, uint64_t len, void **stream, err_t *err)
{
    struct file_stream *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", s->display);
    fs->off = off;
    fs->end = off + len;
    *stream = fs;
    return 0;
}

static int file_stream_next(struct source *s, void *stream, size_t n, uint8_t *buf,
                            const uint8_t **data, err_t *err)
{
    struct file_source *f = (struct file_source *)s;
    struct file_stream *fs = stream;
    if (n > fs->end - fs->off)
        return err_set(err, EINVAL, "%s: read past the range", s->display);
    *data = buf;
    while (n > 0) {
        ssize_t r = pread(f->fd, buf, n, (off_t)fs->off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return err_set(err, errno, "%s: read failed: %s", s->display, strerror(errno));
        if (r == 0)
            return err_set(err, ESTALE, "%s: file shrank while hashing", s->display);
        buf += r;
        n -= (size_t)r;
        fs->off += (uint64_t)r;
    }
    return 0;
}

static void file_stream_close(struct source *s, void *stream)
{
    (void)s;
    free(stream);
}

static int file_finish(struct source *s, err_t *err)
{
    struct file_source *f = (struct file_source *)s;
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return err_set(err, errno, "%s: %s", s->display, strerror(errno));
    if (st.st_size != f->st.st_size || st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec)
        return err_set(err, ESTALE, "%s: file changed while hashing", s->display);
    return 0;
}

static void file_destroy(struct source *s)
{
    struct file_source *f = (struct file_source *)s;
    if (f->fd >= 0)
        close(f->fd);
}

static const struct source_ops file_ops = {
    file_stream_open, file_stream_next, NULL, file_stream_close, file_finish, file_destroy,
};

int source_file_open(const char *path, struct source **out, err_t *err)
{
    struct file_source *f = calloc(1, sizeof(*f));
    int rc = 0;
    *out = NULL;
    if (f == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", path);
    f->base.ops = &file_ops;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        rc = err_set(err, errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(f->fd, &f->st) != 0) {
        rc = err_set(err, errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(f->st.st_mode)) {
        rc = err_set(err, ENOTSUP, "%s: is a directory, not a file", path);
        goto fail;
    }
    if (!S_ISREG(f->st.st_mode)) {
        rc = err_set(err, ENOTSUP, "%s: not a regular file", path);
        goto fail;
    }
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    f->base.name = strdup(name);
    f->base.display = strdup(path);
    f->base.size = (uint64_t)f->st.st_size;
    f->base.mtime = f->st.st_mtim.tv_sec;
    f->base.span = 1u << 20; /* small pieces are batched into 1 MiB runs */
    if (f->base.name == NULL || f->base.display == NULL) {
        rc = err_set(err, ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    *out = &f->base;
    return 0;
fail:
    source_free(&f->base);
    return rc;
}
