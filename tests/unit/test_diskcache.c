/* test_diskcache.c — the disk block cache (lib/store/diskcache.c) in a temporary directory:
 * put and get, LRU eviction under the cap and the free-space floor, the index rebuilt on reopen,
 * damaged files (truncated, a flipped byte, another block's file) never served, a crash's
 * temporary files deleted, the directory's modes; and behind the block cache over the in-memory
 * store: a second cache reads nothing from the store, concurrent readers included. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "diskcache_file.h"
#include "s3torrent/blocks.h"
#include "s3torrent/diskcache.h"
#include "s3torrent/store_mem.h"
#include "s3torrent/util.h"
#include "testutil.h"

#define BS 4096

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/s3t-disk-XXXXXX", P_tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static struct diskcache *open_cache(uint64_t max)
{
    struct diskcache_config c = {.dir = dir, .max = max, .block_size = BS};
    struct diskcache *dc = NULL;
    err_t err = {0};
    ck_assert_msg(diskcache_open(&c, &dc, &err) == 0, "%s", err.msg);
    return dc;
}

static struct diskcache_id id_of(uint64_t index)
{
    return (struct diskcache_id){.bucket = "bkt",
                                 .key = "dir/ключ \xe2\x9c\x93.bin",
                                 .etag = "0123abcd",
                                 .version_id = "",
                                 .block_size = BS,
                                 .index = index};
}

static void fill(uint8_t *p, size_t n, uint64_t index)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 7 + index * 13 + i / 255);
}

/* The path of block id's file. */
static void path_of(const struct diskcache_id *id, char *out, size_t n)
{
    struct buf b;
    uint8_t md[32];
    char hex[65];
    buf_init(&b, DISKCACHE_IDENT_MAX);
    ck_assert_int_eq(diskcache_ident(id, &b), 0);
    EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL);
    buf_free(&b);
    snprintf(out, n, "%s/%s", dir, util_hex(md, 32, hex));
}

static void put(struct diskcache *dc, uint64_t index, size_t len)
{
    uint8_t data[BS];
    fill(data, len, index);
    struct diskcache_id id = id_of(index);
    ck_assert_int_eq(diskcache_put(dc, &id, data, len, NULL), 0);
}

/* diskcache_get of block index: its result, and the bytes checked on a hit. */
static int get(struct diskcache *dc, uint64_t index, size_t len)
{
    uint8_t got[BS], want[BS];
    struct diskcache_id id = id_of(index);
    memset(got, 0xee, sizeof(got));
    int rc = diskcache_get(dc, &id, got, len);
    fill(want, len, index);
    if (rc == 0)
        ck_assert_msg(memcmp(got, want, len) == 0, "block %llu: wrong bytes",
                      (unsigned long long)index);
    return rc;
}

static uint64_t dir_bytes(unsigned *files)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    struct stat st;
    char p[512];
    uint64_t sum = 0;
    *files = 0;
    while ((de = readdir(d)) != NULL) {
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            sum += (uint64_t)st.st_size;
            (*files)++;
        }
    }
    closedir(d);
    return sum;
}

#define FILE_SIZE(len) (DISKCACHE_HEADER + 4 * 4 + 3 + strlen(id_of(0).key) + 8 + 16 + (len))

START_TEST(test_put_get)
{
    struct diskcache *dc = open_cache(1 << 20);
    ck_assert_int_eq(get(dc, 0, BS), ENOENT);
    put(dc, 0, BS);
    put(dc, 1, 100); /* a short last block */
    ck_assert_int_eq(get(dc, 0, BS), 0);
    ck_assert_int_eq(get(dc, 1, 100), 0);
    ck_assert_int_eq(get(dc, 2, BS), ENOENT);
    /* the same block of another version is another file */
    struct diskcache_id other = id_of(0);
    other.etag = "ffff";
    uint8_t got[BS];
    ck_assert_int_eq(diskcache_get(dc, &other, got, BS), ENOENT);
    other.etag = "0123abcd";
    other.version_id = "v2";
    ck_assert_int_eq(diskcache_get(dc, &other, got, BS), ENOENT);
    /* a put again replaces the file, counted once */
    put(dc, 0, BS);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.hits, 2);
    ck_assert_uint_eq(s.misses, 4);
    ck_assert_uint_eq(s.writes, 3);
    ck_assert_uint_eq(s.files, 2);
    unsigned files;
    ck_assert_uint_eq(s.bytes, dir_bytes(&files));
    ck_assert_uint_eq(files, 2);
    ck_assert_uint_eq(s.bytes, FILE_SIZE(BS) + FILE_SIZE(100));
    diskcache_free(dc);
}
END_TEST

START_TEST(test_eviction_under_cap)
{
    uint64_t cap = 3 * FILE_SIZE(BS) + 10;
    struct diskcache *dc = open_cache(cap);
    put(dc, 0, BS);
    put(dc, 1, BS);
    put(dc, 2, BS);
    ck_assert_int_eq(get(dc, 0, BS), 0); /* 0 is now the most recent: 1 goes first */
    unsigned evicted = 0, files;
    uint8_t data[BS];
    fill(data, BS, 3);
    struct diskcache_id id = id_of(3);
    ck_assert_int_eq(diskcache_put(dc, &id, data, BS, &evicted), 0);
    ck_assert_uint_eq(evicted, 1);
    ck_assert_int_eq(get(dc, 1, BS), ENOENT);
    ck_assert_int_eq(get(dc, 0, BS), 0);
    ck_assert_int_eq(get(dc, 2, BS), 0);
    ck_assert_int_eq(get(dc, 3, BS), 0);
    for (uint64_t i = 4; i < 20; i++) {
        put(dc, i, BS);
        ck_assert_uint_le(dir_bytes(&files), cap);
    }
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.files, 3);
    ck_assert_uint_eq(s.evictions, 17);
    ck_assert_uint_eq(dir_bytes(&files), s.bytes);
    /* a block larger than the whole cap is not written */
    diskcache_free(dc);
    dc = open_cache(FILE_SIZE(BS) - 1);
    ck_assert_uint_eq(dir_bytes(&files), 0); /* the lower cap evicted at open */
    ck_assert_int_eq(diskcache_put(dc, &id, data, BS, NULL), ENOSPC);
    diskcache_free(dc);
}
END_TEST

/* The floor: with more asked to stay free than the disk has, every file goes and nothing is
 * written. */
START_TEST(test_free_space_floor)
{
    struct diskcache *dc = open_cache(1 << 20);
    put(dc, 0, BS);
    put(dc, 1, BS);
    diskcache_free(dc);
    struct diskcache_config c = {
        .dir = dir, .max = 1 << 20, .block_size = BS, .min_free = 1ull << 62};
    err_t err = {0};
    ck_assert_int_eq(diskcache_open(&c, &dc, &err), 0);
    unsigned files;
    ck_assert_uint_eq(dir_bytes(&files), 0);
    uint8_t data[BS] = {0};
    struct diskcache_id id = id_of(2);
    ck_assert_int_eq(diskcache_put(dc, &id, data, BS, NULL), ENOSPC);
    ck_assert_uint_eq(dir_bytes(&files), 0);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.skipped, 1);
    diskcache_free(dc);
}
END_TEST

static void set_mtime(uint64_t index, time_t t)
{
    char p[512];
    struct diskcache_id id = id_of(index);
    path_of(&id, p, sizeof(p));
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static time_t mtime(uint64_t index)
{
    char p[512];
    struct stat st;
    struct diskcache_id id = id_of(index);
    path_of(&id, p, sizeof(p));
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_mtime;
}

/* The index comes back from the directory, least recently used first by modification time,
 * which a hit sets. */
START_TEST(test_rebuild_after_reopen)
{
    uint64_t cap = 3 * FILE_SIZE(BS) + 10;
    struct diskcache *dc = open_cache(cap);
    put(dc, 0, BS);
    put(dc, 1, BS);
    put(dc, 2, BS);
    set_mtime(0, 1000);
    set_mtime(1, 2000);
    set_mtime(2, 3000);
    ck_assert_int_eq(get(dc, 0, BS), 0); /* a hit: 0 becomes the newest, on disk too */
    ck_assert_int_gt(mtime(0), 3000);
    diskcache_free(dc);
    dc = open_cache(cap);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.files, 3);
    ck_assert_uint_eq(s.bytes, 3 * FILE_SIZE(BS));
    put(dc, 3, BS); /* evicts the oldest: 1 */
    ck_assert_int_eq(get(dc, 1, BS), ENOENT);
    ck_assert_int_eq(get(dc, 0, BS), 0);
    ck_assert_int_eq(get(dc, 2, BS), 0);
    ck_assert_int_eq(get(dc, 3, BS), 0);
    diskcache_free(dc);
}
END_TEST

/* Damage of every kind to block 0's file: a get says EBADMSG and deletes it, the next is a
 * miss; the other block is untouched. */
enum damage { TRUNCATE, EMPTY, FLIP_DATA, FLIP_HEADER, FLIP_IDENT, OTHER_BLOCK, LONGER };

static void damage(enum damage how)
{
    char p0[512], p1[512];
    struct diskcache_id id0 = id_of(0), id1 = id_of(1);
    path_of(&id0, p0, sizeof(p0));
    path_of(&id1, p1, sizeof(p1));
    struct stat st;
    ck_assert_int_eq(stat(p0, &st), 0);
    int fd = open(p0, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t c;
    off_t at = how == FLIP_DATA ? st.st_size - 5 : how == FLIP_HEADER ? 20 : DISKCACHE_HEADER + 9;
    switch (how) {
    case TRUNCATE:
        ck_assert_int_eq(ftruncate(fd, st.st_size - 1), 0);
        break;
    case EMPTY:
        ck_assert_int_eq(ftruncate(fd, 0), 0);
        break;
    case LONGER:
        ck_assert_int_eq(pwrite(fd, "x", 1, st.st_size), 1);
        break;
    case FLIP_DATA:
    case FLIP_HEADER:
    case FLIP_IDENT:
        ck_assert_int_eq(pread(fd, &c, 1, at), 1);
        c ^= 0x20;
        ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
        break;
    case OTHER_BLOCK:
        ck_assert_int_eq(rename(p1, p0), 0); /* block 1's file under block 0's name */
        break;
    }
    close(fd);
}

START_TEST(test_damaged_never_served)
{
    static const enum damage all[] = {TRUNCATE,   EMPTY,       FLIP_DATA, FLIP_HEADER,
                                      FLIP_IDENT, OTHER_BLOCK, LONGER};
    enum damage how = all[_i];
    struct diskcache *dc = open_cache(1 << 20);
    put(dc, 0, BS);
    put(dc, 1, BS);
    damage(how);
    if (how == OTHER_BLOCK) { /* the cache saw no rename: reopen to index what is there */
        diskcache_free(dc);
        dc = open_cache(1 << 20);
    }
    ck_assert_int_eq(get(dc, 0, BS), EBADMSG);
    char p0[512];
    struct diskcache_id id0 = id_of(0);
    path_of(&id0, p0, sizeof(p0));
    ck_assert_int_ne(access(p0, F_OK), 0);
    ck_assert_int_eq(get(dc, 0, BS), ENOENT);
    if (how != OTHER_BLOCK)
        ck_assert_int_eq(get(dc, 1, BS), 0);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.corrupt, 1);
    unsigned files;
    ck_assert_uint_eq(dir_bytes(&files), s.bytes);
    put(dc, 0, BS); /* fetched again, written again */
    ck_assert_int_eq(get(dc, 0, BS), 0);
    diskcache_free(dc);
}
END_TEST

/* A crash's leftovers: a temporary file is deleted on open; a file of junk under a block's
 * name is found damaged when read. */
START_TEST(test_leftovers)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/.tmp.abc.1", dir);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "partial", 7), 7);
    close(fd);
    struct diskcache_id id0 = id_of(0);
    char p0[512];
    path_of(&id0, p0, sizeof(p0));
    fd = open(p0, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_eq(write(fd, "junk", 4), 4);
    close(fd);
    struct diskcache *dc = open_cache(1 << 20);
    ck_assert_int_ne(access(p, F_OK), 0);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.files, 1);
    ck_assert_uint_eq(s.bytes, 4);
    ck_assert_int_eq(get(dc, 0, BS), EBADMSG);
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(s.files, 0);
    ck_assert_uint_eq(s.bytes, 0);
    diskcache_free(dc);
}
END_TEST

/* Modes: a new directory is 0700 and its files 0600; a directory others may write to, or
 * another user's, is refused with one line. */
START_TEST(test_modes)
{
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/blocks", dir);
    struct diskcache_config c = {.dir = sub, .max = 1 << 20, .block_size = BS};
    struct diskcache *dc = NULL;
    err_t err = {0};
    mode_t old = umask(0);
    ck_assert_int_eq(diskcache_open(&c, &dc, &err), 0);
    umask(old);
    struct stat st;
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    uint8_t data[10] = {1};
    struct diskcache_id id = id_of(0);
    ck_assert_int_eq(diskcache_put(dc, &id, data, sizeof(data), NULL), 0);
    DIR *d = opendir(sub);
    struct dirent *de;
    char p[512];
    unsigned n = 0;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            snprintf(p, sizeof(p), "%s/%s", sub, de->d_name);
            ck_assert_int_eq(stat(p, &st), 0);
            ck_assert_uint_eq(st.st_mode & 0777, 0600);
            n++;
        }
    closedir(d);
    ck_assert_uint_eq(n, 1);
    diskcache_free(dc);
    ck_assert_int_eq(chmod(sub, 0770), 0);
    ck_assert_int_eq(diskcache_open(&c, &dc, &err), EPERM);
    ck_assert_ptr_null(dc);
    ck_assert_ptr_nonnull(strstr(err.msg, "group or others may write"));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    ck_assert_int_eq(chmod(sub, 0703), 0);
    ck_assert_int_eq(diskcache_open(&c, &dc, &err), EPERM);
    ck_assert_int_eq(chmod(sub, 0700), 0);
    if (geteuid() == 0) { /* only root can give it away */
        ck_assert_int_eq(chown(sub, 65534, 65534), 0);
        memset(&err, 0, sizeof(err));
        ck_assert_int_eq(diskcache_open(&c, &dc, &err), EPERM);
        ck_assert_ptr_nonnull(strstr(err.msg, "owned by uid 65534"));
        ck_assert_int_eq(chown(sub, 0, 0), 0);
    }
    /* a file where the directory should be */
    unlink(p);
    rmdir(sub);
    fclose(fopen(sub, "w"));
    ck_assert_int_eq(diskcache_open(&c, &dc, &err), ENOTDIR);
    unlink(sub);
}
END_TEST

/* Behind the block cache over the in-memory store. */
#define OBJ_SIZE (24 * BS + 123)
static struct store *st;
static uint8_t *obj;
static struct store_object pin;

static void store_setup(void)
{
    setup();
    st = store_mem_new();
    obj = malloc(OBJ_SIZE);
    for (size_t i = 0; i < OBJ_SIZE; i++)
        obj[i] = (uint8_t)(i * 31 + i / 251);
    ck_assert_int_eq(store_mem_add(st, "bkt", "obj", obj, OBJ_SIZE, 1), 0);
    ck_assert_int_eq(store_head(st, "bkt", "obj", &pin, NULL, NULL), 0);
}

static void store_teardown(void)
{
    store_free(st);
    free(obj);
    teardown();
}

static void read_all_ok(struct blocks *b, uint64_t ahead)
{
    struct blocks_obj *o = blocks_obj_get(b, "obj", &pin);
    uint8_t *got = malloc(OBJ_SIZE);
    for (uint64_t off = 0; off < OBJ_SIZE; off += 1000) {
        size_t n = OBJ_SIZE - off < 1000 ? OBJ_SIZE - off : 1000;
        ck_assert_int_eq(blocks_read(b, o, off, n, got + off, ahead), (long)n);
    }
    ck_assert(memcmp(got, obj, OBJ_SIZE) == 0);
    free(got);
    blocks_obj_release(b, o);
}

START_TEST(test_behind_blocks)
{
    struct diskcache *dc = open_cache(1 << 20);
    struct blocks *b = blocks_new(st, "bkt", NULL, 4 * BS, BS, 2);
    blocks_set_disk(b, dc);
    read_all_ok(b, 0);
    struct blocks_stats bs;
    blocks_stats(b, &bs);
    ck_assert_uint_eq(bs.disk_writes, 25);
    ck_assert_uint_eq(bs.disk_hits, 0);
    blocks_free(b);
    diskcache_free(dc);
    unsigned calls = store_mem_calls(st, STORE_OP_READ, NULL);
    /* a restart: a new memory cache over the reopened directory reads nothing from the store */
    dc = open_cache(1 << 20);
    b = blocks_new(st, "bkt", NULL, 4 * BS, BS, 2);
    blocks_set_disk(b, dc);
    read_all_ok(b, 2 * BS); /* read-ahead too finds its blocks on disk */
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), calls);
    blocks_stats(b, &bs);
    ck_assert_uint_eq(bs.gets, 0);
    ck_assert_uint_ge(bs.disk_hits, 25);
    ck_assert_uint_eq(bs.disk_writes, 0);
    ck_assert_uint_eq(bs.disk_corrupt, 0);
    blocks_free(b);
    /* a damaged file: the block comes from the store again, right */
    struct diskcache_id id = {.bucket = "bkt",
                              .key = "obj",
                              .etag = pin.etag,
                              .version_id = pin.version_id,
                              .block_size = BS,
                              .index = 5};
    char p[512];
    path_of(&id, p, sizeof(p));
    ck_assert_int_eq(truncate(p, 100), 0);
    b = blocks_new(st, "bkt", NULL, 4 * BS, BS, 2);
    blocks_set_disk(b, dc);
    read_all_ok(b, 0);
    blocks_stats(b, &bs);
    ck_assert_uint_eq(bs.disk_corrupt, 1);
    ck_assert_uint_eq(bs.disk_hits, 24);
    ck_assert_uint_eq(bs.gets, 1);
    ck_assert_uint_eq(bs.disk_writes, 1);
    ck_assert_uint_eq(store_mem_calls(st, STORE_OP_READ, NULL), calls + 1);
    blocks_free(b);
    diskcache_free(dc);
}
END_TEST

struct reader {
    struct blocks *b;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    for (int i = 0; i < 3; i++)
        read_all_ok(r->b, i == 1 ? 4 * BS : 0);
    return NULL;
}

/* Readers at once through a small memory cache and a disk cache smaller than the object, with
 * read-ahead: every byte right, the directory under its cap (and, under TSan, no race). */
START_TEST(test_concurrent)
{
    uint64_t cap = 10 * (BS + 200);
    struct diskcache *dc = open_cache(cap);
    struct blocks *b = blocks_new(st, "bkt", NULL, 8 * BS, BS, 3);
    blocks_set_disk(b, dc);
    pthread_t t[4];
    struct reader r = {b};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, reader_main, &r), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    blocks_free(b);
    unsigned files;
    ck_assert_uint_le(dir_bytes(&files), cap);
    struct diskcache_stats s;
    diskcache_stats(dc, &s);
    ck_assert_uint_eq(dir_bytes(&files), s.bytes);
    ck_assert_uint_eq(files, s.files);
    ck_assert_uint_eq(s.corrupt, 0);
    diskcache_free(dc);
}
END_TEST

/* The file parser the fuzz target drives: a file the cache wrote parses back; every shorter
 * prefix and every single flipped bit is refused. */
START_TEST(test_file_parse)
{
    uint8_t data[300], id[DISKCACHE_IDENT_MAX];
    fill(data, sizeof(data), 9);
    struct buf b;
    buf_init(&b, DISKCACHE_IDENT_MAX);
    struct diskcache_id di = id_of(9);
    ck_assert_int_eq(diskcache_ident(&di, &b), 0);
    size_t idn = b.len, n = DISKCACHE_HEADER + idn + sizeof(data);
    memcpy(id, b.data, idn);
    buf_free(&b);
    uint8_t *f = malloc(n);
    diskcache_header_make(id, idn, data, sizeof(data), f);
    memcpy(f + DISKCACHE_HEADER, id, idn);
    memcpy(f + DISKCACHE_HEADER + idn, data, sizeof(data));
    const uint8_t *pi, *pd;
    size_t li, ld;
    ck_assert_int_eq(diskcache_file_parse(f, n, &pi, &li, &pd, &ld), 0);
    ck_assert_uint_eq(li, idn);
    ck_assert_uint_eq(ld, sizeof(data));
    ck_assert(memcmp(pd, data, ld) == 0);
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(diskcache_file_parse(f, k, &pi, &li, &pd, &ld), EBADMSG);
    for (size_t k = 0; k < n * 8; k += 7) {
        f[k / 8] ^= (uint8_t)(1u << (k % 8));
        ck_assert_int_eq(diskcache_file_parse(f, n, &pi, &li, &pd, &ld), EBADMSG);
        f[k / 8] ^= (uint8_t)(1u << (k % 8));
    }
    free(f);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("diskcache");
    TCase *t = tcase_create("diskcache");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_set_timeout(t, 60);
    tcase_add_test(t, test_put_get);
    tcase_add_test(t, test_eviction_under_cap);
    tcase_add_test(t, test_free_space_floor);
    tcase_add_test(t, test_rebuild_after_reopen);
    tcase_add_loop_test(t, test_damaged_never_served, 0, 7);
    tcase_add_test(t, test_leftovers);
    tcase_add_test(t, test_modes);
    tcase_add_test(t, test_file_parse);
    suite_add_tcase(s, t);
    TCase *tb = tcase_create("blocks");
    tcase_add_checked_fixture(tb, store_setup, store_teardown);
    tcase_set_timeout(tb, 120);
    tcase_add_test(tb, test_behind_blocks);
    tcase_add_test(tb, test_concurrent);
    suite_add_tcase(s, tb);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
