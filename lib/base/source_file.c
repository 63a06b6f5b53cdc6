/* source_file.c — the local-file byte source. A file of MAP_MIN bytes or more is mapped whole
 * and hashed where the page cache holds it, with no copy into a buffer (v1 create of a 2 GiB
 * file: 0.81 s with pread, 0.79 s mapped; docs/DESIGN.md §4); a stream's pages leave the
 * mapping MAP_SPAN bytes at a time once read, so the resident set stays that much and a chunk
 * per stream. A file truncated under the mapping faults with SIGBUS where it no longer has
 * pages: the guard below maps a page of zeros there and marks the source, and finish() reports
 * the change, an error line and never a crash. Smaller files, a directory's files
 * (source_file_opener), and files opened while all guard slots are taken use pread. */
#include "s3torrent/source.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_MIN     (4u << 20) /* smaller files: pread (a mapping per file costs more) */
#define MAP_SPAN    (8u << 20) /* a mapped stream's pages leave the mapping this many at a time */
#define MAP_SPAN_MIN_FILE ((uint64_t)MAP_SPAN * 16) /* files with jobs of MAP_SPAN bytes */
#define GUARD_SLOTS 64         /* mappings open at once in a process */
/* what a guard hit means: a truncation, or an I/O error on a page (a file on a network mount) */
#define PAGES_LOST "file shrank while hashing, or a page of it could not be read"

/* The mappings the SIGBUS guard answers for: [lo, hi), hit set when it had to fill a page. A
 * slot is claimed by a compare-and-swap on lo and its hi is set after; freed hi first. */
struct guard {
    _Atomic uintptr_t lo, hi;
    atomic_bool hit;
};

static struct guard guards[GUARD_SLOTS];
static struct sigaction guard_prev; /* the SIGBUS action before ours */
static uintptr_t guard_page;
static bool guard_ready;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;

static void guard_on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    /* only a fault has an address: a SIGBUS sent by kill or sigqueue is never ours */
    for (size_t i = 0; si->si_code > 0 && i < GUARD_SLOTS; i++) {
        /* hi read again after lo: a slot freed and claimed again in between is skipped */
        uintptr_t hi = atomic_load(&guards[i].hi), lo = atomic_load(&guards[i].lo);
        if (a < lo || a >= hi || atomic_load(&guards[i].hi) != hi)
            continue;
        /* the file lost this page: zeros in its place, and the source knows (mmap is a plain
         * system call here, safe in a handler as on every Linux libc) */
        void *page = (void *)(a & ~(guard_page - 1));
        if (mmap(page, guard_page, PROT_READ, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
            MAP_FAILED)
            break;
        atomic_store(&guards[i].hit, true);
        return;
    }
    /* not one of ours: what would have happened without the guard */
    if (guard_prev.sa_flags & SA_SIGINFO) {
        guard_prev.sa_sigaction(sig, si, uc);
    } else if (guard_prev.sa_handler != SIG_DFL && guard_prev.sa_handler != SIG_IGN) {
        guard_prev.sa_handler(sig);
    } else if (guard_prev.sa_handler == SIG_IGN && si->si_code <= 0) {
        /* a sent SIGBUS the process ignored: still ignored */
    } else { /* default: the process ends, as it would have */
        signal(sig, SIG_DFL);
        raise(sig);
    }
}

static void guard_init(void)
{
    long pg = sysconf(_SC_PAGESIZE);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = guard_on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    guard_page = pg > 0 ? (uintptr_t)pg : 4096;
    guard_ready = sigaction(SIGBUS, &sa, &guard_prev) == 0;
}

/* A slot for [p, p + len), or NULL when the guard cannot be had (then no mapping). */
static struct guard *guard_add(const void *p, size_t len)
{
    pthread_once(&guard_once, guard_init);
    if (!guard_ready)
        return NULL;
    for (size_t i = 0; i < GUARD_SLOTS; i++) {
        uintptr_t free_lo = 0;
        if (atomic_compare_exchange_strong(&guards[i].lo, &free_lo, (uintptr_t)p)) {
            atomic_store(&guards[i].hit, false);
            atomic_store(&guards[i].hi, (uintptr_t)p + len);
            return &guards[i];
        }
    }
    return NULL;
}

static void guard_remove(struct guard *g)
{
    atomic_store(&g->hi, 0);
    atomic_store(&g->lo, 0);
}

struct file_source {
    struct source base;
    int fd;
    struct stat st;
    uint8_t *map; /* the whole file, or NULL: pread */
    struct guard *guard;
};

struct file_stream {
    uint64_t off, end;
    uint64_t held_off; /* mapped bytes read and not yet dropped: [held_off, held_off + held) */
    uint64_t held;
};

/* Takes the pages of the bytes the reader has finished with out of the mapping (the page cache
 * keeps them), once they make MAP_SPAN bytes (every call: one TLB flush on every core the
 * process runs on) or when force is set. A page shared with a neighbouring range is only mapped
 * again if read again. */
static void file_drop(struct file_source *f, struct file_stream *fs, bool force)
{
    if (fs->held == 0 || (!force && fs->held < MAP_SPAN))
        return;
    uint64_t lo = fs->held_off & ~(uint64_t)(guard_page - 1);
    madvise(f->map + lo, (size_t)(fs->held_off + fs->held - lo), MADV_DONTNEED);
    fs->held = 0;
}

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
    if (f->map) {
        file_drop(f, fs, false);
        if (atomic_load(&f->guard->hit)) /* no use reading on */
            return err_set(err, ESTALE, "%s: " PAGES_LOST, s->display);
        *data = f->map + fs->off;
        if (fs->held == 0)
            fs->held_off = fs->off;
        fs->held += n;
        fs->off += n;
        return 0;
    }
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
    struct file_source *f = (struct file_source *)s;
    if (f->map)
        file_drop(f, stream, true);
    free(stream);
}

static int file_finish(struct source *s, err_t *err)
{
    struct file_source *f = (struct file_source *)s;
    struct stat st;
    if (f->guard && atomic_load(&f->guard->hit))
        return err_set(err, ESTALE, "%s: " PAGES_LOST, s->display);
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
    if (f->map) {
        guard_remove(f->guard);
        munmap(f->map, (size_t)f->st.st_size);
    }
    if (f->fd >= 0)
        close(f->fd);
}

static const struct source_ops file_ops = {
    file_stream_open, file_stream_next, NULL, file_stream_close, file_finish, file_destroy,
};

/* Opens path; map: through a mapping when it is large enough (see the top of the file). */
static int file_open(const char *path, bool map, struct source **out, err_t *err)
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
    if (map && (uint64_t)f->st.st_size >= MAP_MIN && (uint64_t)f->st.st_size <= SIZE_MAX) {
        void *m = mmap(NULL, (size_t)f->st.st_size, PROT_READ, MAP_SHARED, f->fd, 0);
        if (m != MAP_FAILED && (f->guard = guard_add(m, (size_t)f->st.st_size)) != NULL) {
            f->map = m;
            /* runs of pieces as long as a drop, where that still leaves many jobs for the
             * threads (a smaller file keeps 1 MiB runs, so no core waits on a long last one) */
            if ((uint64_t)f->st.st_size >= MAP_SPAN_MIN_FILE)
                f->base.span = MAP_SPAN;
        } else if (m != MAP_FAILED)
            munmap(m, (size_t)f->st.st_size);
    }
    *out = &f->base;
    return 0;
fail:
    source_free(&f->base);
    return rc;
}

int source_file_open(const char *path, struct source **out, err_t *err)
{
    return file_open(path, true, out, err);
}

/* The parts of a directory are read with pread: the concatenation copies each part's bytes into
 * its chunk anyway, and faulting a mapping in costs more than the read (1000 files, 4 GiB: v1
 * 0.94x mktorrent's time with pread, 0.99x mapped). */
int source_file_opener(void *arg, struct source **out, err_t *err)
{
    return file_open(arg, false, out, err);
}
