/* diskcache.c — the disk tier of the block cache (docs/DESIGN.md §15): one file per block in one
 * directory, an in-memory index (a hash table and an lru_ list) rebuilt from the directory on
 * open, files written to a temporary name and renamed, so a crash leaves a whole file, a stray
 * temporary (deleted on the next open) or a damaged file (found by its checksum, deleted). */
#include "s3torrent/diskcache.h"
#include "diskcache_file.h"
#include "s3torrent/lru.h"
#include "s3torrent/outfile.h"
#include "s3torrent/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define NAME_LEN   64 /* hex SHA-256 of the identity */
#define TMP_PREFIX ".tmp."

struct entry {
    uint8_t digest[32];
    uint64_t size; /* bytes of the file */
    struct entry *hnext;
    struct lru_node lru;
};

#define ENTRY(n) LRU_ENTRY(n, struct entry, lru)

struct diskcache {
    int dirfd;
    uint64_t max, min_free;
    size_t max_files;
    const struct logger *log;
    pthread_mutex_t lock;
    struct entry **table;
    size_t nbuckets;
    struct lru lru; /* files, most recently used last */
    uint64_t used;  /* bytes of the files indexed, and of writes under way */
    uint64_t tmp_seq;
    struct diskcache_stats stats;
};

/* ---- the file format ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int put_field(struct buf *b, const char *s)
{
    uint8_t n[4];
    size_t len = s ? strlen(s) : 0;
    put32(n, (uint32_t)len);
    buf_put(b, n, 4);
    return buf_put(b, s ? s : "", len);
}

int diskcache_ident(const struct diskcache_id *id, struct buf *b)
{
    uint8_t n[16];
    put_field(b, id->bucket);
    put_field(b, id->key);
    put_field(b, id->etag);
    put_field(b, id->version_id);
    put64(n, id->block_size);
    put64(n + 8, id->index);
    buf_put(b, n, 16);
    return b->err ? ENOMEM : 0;
}

static void sum(const uint8_t *ident, size_t ident_len, const uint8_t *data, size_t data_len,
                uint8_t out[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(c, ident, ident_len) || !EVP_DigestUpdate(c, data, data_len) ||
        !EVP_DigestFinal_ex(c, out, NULL))
        memset(out, 0, 32); /* matches no file: a miss, never wrong bytes */
    EVP_MD_CTX_free(c);
}

void diskcache_header_make(const uint8_t *ident, size_t ident_len, const uint8_t *data,
                           size_t data_len, uint8_t out[DISKCACHE_HEADER])
{
    memcpy(out, DISKCACHE_MAGIC, 8);
    put32(out + 8, DISKCACHE_VERSION);
    put32(out + 12, (uint32_t)ident_len);
    put64(out + 16, data_len);
    sum(ident, ident_len, data, data_len, out + 24);
}

int diskcache_header_parse(const uint8_t *p, struct diskcache_header *h)
{
    if (memcmp(p, DISKCACHE_MAGIC, 8) != 0)
        return EBADMSG;
    h->version = get32(p + 8);
    h->ident_len = get32(p + 12);
    h->data_len = get64(p + 16);
    memcpy(h->sum, p + 24, 32);
    if (h->version != DISKCACHE_VERSION || h->ident_len > DISKCACHE_IDENT_MAX ||
        h->data_len > DISKCACHE_DATA_MAX)
        return EBADMSG;
    return 0;
}

int diskcache_sum_ok(const struct diskcache_header *h, const uint8_t *ident, const uint8_t *data)
{
    uint8_t md[32];
    sum(ident, h->ident_len, data, (size_t)h->data_len, md);
    return memcmp(md, h->sum, 32) == 0;
}

int diskcache_file_parse(const uint8_t *p, size_t n, const uint8_t **ident, size_t *ident_len,
                         const uint8_t **data, size_t *data_len)
{
    struct diskcache_header h;
    if (n < DISKCACHE_HEADER || diskcache_header_parse(p, &h) != 0 ||
        n - DISKCACHE_HEADER < h.ident_len || n - DISKCACHE_HEADER - h.ident_len != h.data_len)
        return EBADMSG;
    const uint8_t *id = p + DISKCACHE_HEADER, *d = id + h.ident_len;
    if (!diskcache_sum_ok(&h, id, d))
        return EBADMSG;
    *ident = id;
    *ident_len = h.ident_len;
    *data = d;
    *data_len = (size_t)h.data_len;
    return 0;
}

/* ---- the index ---- */

static size_t slot(const struct diskcache *dc, const uint8_t *digest)
{
    uint64_t h;
    memcpy(&h, digest, sizeof(h));
    return (size_t)(h % dc->nbuckets);
}

static struct entry *find(struct diskcache *dc, const uint8_t *digest)
{
    for (struct entry *e = dc->table[slot(dc, digest)]; e; e = e->hnext)
        if (memcmp(e->digest, digest, 32) == 0)
            return e;
    return NULL;
}

static void name_of(const uint8_t *digest, char out[NAME_LEN + 1])
{
    util_hex(digest, 32, out);
}

/* Takes e off the index and frees it. Lock held. */
static void drop(struct diskcache *dc, struct entry *e)
{
    struct entry **pp = &dc->table[slot(dc, e->digest)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_remove(&dc->lru, &e->lru);
    dc->used -= e->size;
    dc->stats.files--;
    dc->stats.bytes -= e->size;
    free(e);
}

/* Deletes e's file and drops it. Lock held, so no put renames a new file over it meanwhile. */
static void delete (struct diskcache *dc, struct entry *e)
{
    char name[NAME_LEN + 1];
    name_of(e->digest, name);
    if (unlinkat(dc->dirfd, name, 0) != 0 && errno != ENOENT)
        log_msg(dc->log, LOG_WARNING, "disk cache: cannot delete %s: %s", name, strerror(errno));
    drop(dc, e);
}

static void add(struct diskcache *dc, const uint8_t *digest, uint64_t size, struct entry *e)
{
    memcpy(e->digest, digest, 32);
    e->size = size;
    size_t s = slot(dc, digest);
    e->hnext = dc->table[s];
    dc->table[s] = e;
    lru_touch(&dc->lru, &e->lru);
    dc->used += size;
    dc->stats.files++;
    dc->stats.bytes += size;
}

/* Bytes the file system has free for us beyond the floor (negative: short of it). Lock held. */
static int64_t spare(struct diskcache *dc)
{
    struct statvfs v;
    if (fstatvfs(dc->dirfd, &v) != 0)
        return INT64_MAX; /* no answer: the cap alone limits */
    uint64_t size = (uint64_t)v.f_blocks * v.f_frsize;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    uint64_t floor = dc->min_free;
    if (floor == 0) {
        floor = size / 100 * DISKCACHE_FLOOR_PERCENT;
        if (floor < DISKCACHE_FLOOR_MIN)
            floor = DISKCACHE_FLOOR_MIN;
    }
    return (int64_t)avail - (int64_t)floor;
}

/* Evicts least recently used files until `need` more bytes fit under the cap and the floor and
 * one more file under the file count. Lock held. Returns false when even an empty cache has no
 * room; *evicted counts the files deleted. */
static bool make_room(struct diskcache *dc, uint64_t need, unsigned *evicted)
{
    int64_t short_by = (int64_t)need - spare(dc);
    for (;;) {
        bool fits = dc->used + need <= dc->max && short_by <= 0 && dc->stats.files < dc->max_files;
        if (fits)
            return true;
        struct lru_node *n = lru_oldest(&dc->lru);
        if (n == NULL)
            return false;
        short_by -= (int64_t)ENTRY(n)->size;
        delete (dc, ENTRY(n));
        dc->stats.evictions++;
        (*evicted)++;
    }
}

/* ---- open ---- */

struct found {
    uint8_t digest[32];
    uint64_t size;
    struct timespec mtime;
};

static int by_mtime(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    return (x->mtime.tv_nsec > y->mtime.tv_nsec) - (x->mtime.tv_nsec < y->mtime.tv_nsec);
}

static bool hex_digest(const char *name, uint8_t out[32])
{
    if (strlen(name) != NAME_LEN)
        return false;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (!strchr("0123456789abcdef", name[2 * i]) ||
            !strchr("0123456789abcdef", name[2 * i + 1]) || sscanf(name + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Indexes the files of the directory, oldest modification first (a hit touches its file, so
 * the order survives a restart), and deletes temporaries a crash left. */
static int scan(struct diskcache *dc, const char *dir, err_t *err)
{
    int fd = dup(dc->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct found *f = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (d == NULL) {
        rc = err_set(err, errno, "disk cache %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        uint8_t digest[32];
        if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)) == 0) {
            unlinkat(dc->dirfd, de->d_name, 0);
            continue;
        }
        if (!hex_digest(de->d_name, digest) ||
            fstatat(dc->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 256;
            struct found *g = realloc(f, ncap * sizeof(*f));
            if (g == NULL) {
                rc = err_set(err, ENOMEM, "out of memory");
                goto out;
            }
            f = g;
            cap = ncap;
        }
        memcpy(f[n].digest, digest, 32);
        f[n].size = (uint64_t)st.st_size;
        f[n].mtime = st.st_mtim;
        n++;
    }
    if (n > 0)
        qsort(f, n, sizeof(*f), by_mtime);
    for (size_t i = 0; i < n; i++) {
        struct entry *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            rc = err_set(err, ENOMEM, "out of memory");
            goto out;
        }
        add(dc, f[i].digest, f[i].size, e);
        unsigned evicted = 0; /* a lower cap than last time: the oldest go */
        make_room(dc, 0, &evicted);
    }
out:
    if (d)
        closedir(d);
    free(f);
    return rc;
}

int diskcache_open(const struct diskcache_config *c, struct diskcache **out, err_t *err)
{
    *out = NULL;
    struct diskcache *dc = calloc(1, sizeof(*dc));
    if (dc == NULL)
        return err_set(err, ENOMEM, "out of memory");
    dc->dirfd = -1;
    pthread_mutex_init(&dc->lock, NULL);
    lru_init(&dc->lru);
    dc->max = c->max;
    dc->min_free = c->min_free;
    dc->log = c->log;
    size_t bs = c->block_size ? c->block_size : 1;
    uint64_t files = c->max / bs * 4 + 16;
    dc->max_files = files > SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)files;
    dc->nbuckets = dc->max_files < (1u << 20) ? dc->max_files : (1u << 20);
    int rc = 0;
    struct stat st;
    if ((dc->table = calloc(dc->nbuckets, sizeof(*dc->table))) == NULL) {
        rc = err_set(err, ENOMEM, "out of memory");
        goto out;
    }
    if (mkdir(c->dir, 0700) != 0 && errno != EEXIST) {
        rc = err_set(err, errno, "disk cache %s: %s", c->dir, strerror(errno));
        goto out;
    }
    if ((dc->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
        fstat(dc->dirfd, &st) != 0) {
        rc = err_set(err, errno, "disk cache %s: %s", c->dir, strerror(errno));
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = err_set(err, EPERM, "disk cache %s: owned by uid %u, not by this user (%u)", c->dir,
                     (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        rc = err_set(err, EPERM,
                     "disk cache %s: group or others may write to it (mode %03o); "
                     "chmod 700 it",
                     c->dir, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    rc = scan(dc, c->dir, err);
out:
    if (rc) {
        diskcache_free(dc);
        return rc;
    }
    *out = dc;
    return 0;
}

void diskcache_free(struct diskcache *dc)
{
    if (dc == NULL)
        return;
    for (struct lru_node *n; (n = lru_pop(&dc->lru)) != NULL;)
        free(ENTRY(n));
    free(dc->table);
    if (dc->dirfd >= 0)
        close(dc->dirfd);
    pthread_mutex_destroy(&dc->lock);
    free(dc);
}

/* ---- get and put ---- */

/* The identity of id into b and its digest. Returns 0 or ENOMEM. */
static int identify(const struct diskcache_id *id, struct buf *b, uint8_t digest[32])
{
    buf_init(b, DISKCACHE_IDENT_MAX);
    if (diskcache_ident(id, b) != 0)
        return ENOMEM;
    if (EVP_Digest(b->data, b->len, digest, NULL, EVP_sha256(), NULL) != 1)
        return ENOMEM;
    return 0;
}

static bool read_all(int fd, uint8_t *p, size_t n, off_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return true;
}

/* Whether the open file fd holds exactly ident and len bytes that match its checksum, read into
 * dst. */
static bool read_block(int fd, const struct buf *ident, uint8_t *dst, size_t len)
{
    uint8_t head[DISKCACHE_HEADER], got[DISKCACHE_IDENT_MAX];
    struct diskcache_header h;
    struct stat st;
    return fstat(fd, &st) == 0 && read_all(fd, head, sizeof(head), 0) &&
           diskcache_header_parse(head, &h) == 0 && h.ident_len == ident->len &&
           h.data_len == len && (uint64_t)st.st_size == DISKCACHE_HEADER + ident->len + len &&
           read_all(fd, got, ident->len, DISKCACHE_HEADER) &&
           memcmp(got, ident->data, ident->len) == 0 &&
           read_all(fd, dst, len, (off_t)(DISKCACHE_HEADER + ident->len)) &&
           diskcache_sum_ok(&h, got, dst);
}

int diskcache_get(struct diskcache *dc, const struct diskcache_id *id, uint8_t *dst, size_t len)
{
    struct buf ident;
    uint8_t digest[32];
    char name[NAME_LEN + 1];
    int rc = identify(id, &ident, digest);
    if (rc)
        goto out;
    name_of(digest, name);
    pthread_mutex_lock(&dc->lock);
    struct entry *e = find(dc, digest);
    if (e == NULL) {
        dc->stats.misses++;
        pthread_mutex_unlock(&dc->lock);
        rc = ENOENT;
        goto out;
    }
    lru_touch(&dc->lru, &e->lru);
    pthread_mutex_unlock(&dc->lock);
    /* an eviction meanwhile unlinks the file; an open one still reads whole */
    int fd = openat(dc->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    bool ok = fd >= 0 && read_block(fd, &ident, dst, len);
    if (ok)
        futimens(fd, NULL); /* the use, for the order after a restart */
    int open_errno = errno;
    if (fd >= 0)
        close(fd);
    pthread_mutex_lock(&dc->lock);
    if (ok) {
        dc->stats.hits++;
    } else if (fd < 0 && open_errno == ENOENT) {
        if ((e = find(dc, digest)) != NULL) /* deleted behind our back */
            drop(dc, e);
        dc->stats.misses++;
        rc = ENOENT;
    } else {
        if ((e = find(dc, digest)) != NULL)
            delete (dc, e);
        else
            unlinkat(dc->dirfd, name, 0);
        dc->stats.corrupt++;
        log_msg(dc->log, LOG_WARNING, "disk cache: %s is damaged; deleted, fetching again", name);
        rc = EBADMSG;
    }
    pthread_mutex_unlock(&dc->lock);
out:
    buf_free(&ident);
    return rc;
}

int diskcache_put(struct diskcache *dc, const struct diskcache_id *id, const uint8_t *data,
                  size_t len, unsigned *evicted)
{
    struct buf ident;
    uint8_t digest[32], head[DISKCACHE_HEADER];
    char name[NAME_LEN + 1], tmp[sizeof(TMP_PREFIX) + NAME_LEN + 24];
    unsigned ev = 0;
    uint64_t size = 0;
    int fd = -1;
    struct entry *e = calloc(1, sizeof(*e));
    int rc = e ? identify(id, &ident, digest) : ENOMEM;
    if (e == NULL)
        buf_init(&ident, 0);
    if (rc == 0 && len > DISKCACHE_DATA_MAX)
        rc = EFBIG;
    if (rc)
        goto out;
    name_of(digest, name);
    size = DISKCACHE_HEADER + ident.len + len;
    pthread_mutex_lock(&dc->lock);
    struct entry *old = find(dc, digest);
    if (old != NULL) /* replaced below: its bytes do not count twice */
        delete (dc, old);
    if (!make_room(dc, size, &ev)) {
        dc->stats.skipped++;
        rc = ENOSPC;
    } else {
        dc->used += size; /* reserved while written */
    }
    snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s.%llu", name, (unsigned long long)++dc->tmp_seq);
    pthread_mutex_unlock(&dc->lock);
    if (rc)
        goto out;
    diskcache_header_make(ident.data, ident.len, data, len, head);
    fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    rc = fd < 0 ? errno : outfile_write_fd(fd, head, sizeof(head));
    rc = rc ? rc : outfile_write_fd(fd, ident.data, ident.len);
    rc = rc ? rc : outfile_write_fd(fd, data, len);
    if (rc)
        log_msg(dc->log, LOG_WARNING, "disk cache: cannot write a block: %s", strerror(rc));
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = errno;
    pthread_mutex_lock(&dc->lock);
    dc->used -= size;
    if (rc == 0 && (old = find(dc, digest)) != NULL) /* a concurrent put of the same block */
        drop(dc, old);
    if (rc == 0 && renameat(dc->dirfd, tmp, dc->dirfd, name) != 0)
        rc = errno;
    if (rc == 0) {
        add(dc, digest, size, e);
        e = NULL;
        dc->stats.writes++;
    } else {
        unlinkat(dc->dirfd, tmp, 0);
    }
    pthread_mutex_unlock(&dc->lock);
out:
    if (evicted)
        *evicted = ev;
    free(e);
    buf_free(&ident);
    return rc;
}

void diskcache_stats(struct diskcache *dc, struct diskcache_stats *out)
{
    pthread_mutex_lock(&dc->lock);
    *out = dc->stats;
    pthread_mutex_unlock(&dc->lock);
}
