/* test_meta.c — the mount's listing rules (fs/meta.c, docs/DESIGN.md §5) over the in-memory
 * store: files with their synthetic torrents and their exact sizes, directories, keys that
 * cannot be paths hidden, a directory shadowing a file of its name, no torrent for zero-byte
 * objects, .torrent objects, real KEY.torrent objects or control-byte names; the TTL (one
 * listing per directory while fresh, again after meta_forget or meta_flush); a mount prefix;
 * and a failed listing that is an error, not an empty directory. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"

#define B "fsb"

static struct store *store;
static struct meta *meta;
static struct fs_settings set;
static struct live live;

static void add(const char *key, size_t n)
{
    uint8_t *p = calloc(1, n + 1);
    ck_assert_int_eq(store_mem_add(store, B, key, p, n, 1700000000), 0);
    free(p);
}

static void start(const char *prefix)
{
    memset(&set, 0, sizeof(set));
    store = store_mem_new();
    ck_assert_ptr_nonnull(store);
    set.recipe.meta = TORRENT_V1;
    set.ttl = 3600;
    set.negative_ttl = 3600;
    live_init(&live, &set);
    struct meta_config c = {.store = store,
                            .bucket = B,
                            .prefix = prefix,
                            .max_entries = 100000,
                            .log = NULL,
                            .live = &live};
    meta = meta_new(&c);
    ck_assert_ptr_nonnull(meta);
}

static void stop(void)
{
    meta_free(meta);
    store_free(store);
}

static unsigned lists(void)
{
    return store_mem_calls(store, STORE_OP_LIST, NULL);
}

/* "name:kind" of every entry of path, space-separated. */
static char *names(const char *path, size_t *hidden)
{
    struct meta_dir *d;
    err_t err = {0};
    ck_assert_msg(meta_dir_get(meta, path, &d, &err) == 0, "%s", err.msg);
    static char out[4096];
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < d->n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s:%c", i ? " " : "", d->entries[i].name,
                              "DFTR"[d->entries[i].kind]);
    if (hidden)
        *hidden = d->hidden;
    meta_dir_release(meta, d);
    return out;
}

START_TEST(test_rules)
{
    start("");
    add("a.bin", 1000);
    add("dir/x.bin", 10);
    add("same", 5); /* shadowed by the directory same/ */
    add("same/y", 5);
    add("empty", 0);     /* no torrent */
    add("t.torrent", 7); /* shown as it is, no torrent of its own */
    add("r.bin", 9);
    add("r.bin.torrent", 3); /* a real one: no synthetic beside it */
    add("ctl\x01name", 4);   /* no torrent can be named after it */
    add("a//b", 1);          /* cannot be paths */
    add("../up", 1);
    add("./here", 1);
    size_t hidden;
    ck_assert_str_eq(names("/", &hidden),
                     "a:D a.bin:F a.bin.torrent:T ctl\x01name:F dir:D empty:F r.bin:F "
                     "r.bin.torrent:F same:D t.torrent:F");
    ck_assert_uint_eq(hidden, 3);               /* the directories .. and ., the file same */
    ck_assert_str_eq(names("/a", &hidden), ""); /* a//b: an empty segment */
    ck_assert_uint_eq(hidden, 1);
    ck_assert_str_eq(names("/dir", NULL), "x.bin:F x.bin.torrent:T");
    /* a torrent's size is the exact size of its bytes (docs/DESIGN.md §3) */
    struct meta_entry e;
    err_t err = {0};
    ck_assert_int_eq(meta_lookup(meta, "/a.bin.torrent", &e, &err), 0);
    struct torrent_opts o;
    char *ws;
    ck_assert_int_eq(torrent_recipe_opts(&set.recipe, "a.bin", 1700000000, &o, &ws), 0);
    ck_assert_uint_eq(e.size, torrent_size("a.bin", 1000, &o));
    ck_assert_uint_eq(e.object_size, 1000);
    ck_assert_str_eq(e.key, "a.bin");
    free(ws);
    meta_entry_clear(&e);
    ck_assert_int_eq(meta_lookup(meta, "/nope", &e, &err), ENOENT);
    ck_assert_int_eq(meta_lookup(meta, "/empty.torrent", &e, &err), ENOENT);
    stop();
}
END_TEST

/* dir_torrents=DEPTH: a DIR.torrent (kind R) beside each directory DEPTH levels below the
 * mount's root, unless a real object or directory has its name or DIR cannot be a torrent's
 * name; none at other depths, none when off. */
START_TEST(test_dir_torrents)
{
    start("root/");
    add("root/s/a.bin", 10);
    add("root/s/deep/b.bin", 10);
    add("root/c/x", 1);
    add("root/c.torrent", 3); /* a real one wins */
    add("root/d/x", 1);
    add("root/d.torrent/y", 1); /* a directory of that name wins too, and has none itself */
    add("root/ctl\x01/x", 1);   /* no torrent can be named after it */
    add("root/f.bin", 4);
    ck_assert_str_eq(names("/", NULL), "c:D c.torrent:F ctl\x01:D d:D d.torrent:D f.bin:F "
                                       "f.bin.torrent:T s:D");
    meta_flush(meta);
    set.dir_torrents = 1;
    ck_assert_str_eq(names("/", NULL), "c:D c.torrent:F ctl\x01:D d:D d.torrent:D f.bin:F "
                                       "f.bin.torrent:T s:D s.torrent:R");
    ck_assert_str_eq(names("/s", NULL), "a.bin:F a.bin.torrent:T deep:D");
    struct meta_entry e;
    err_t err = {0};
    ck_assert_int_eq(meta_lookup(meta, "/s.torrent", &e, &err), 0);
    ck_assert_int_eq(e.kind, META_DIR_TORRENT);
    ck_assert_str_eq(e.key, "root/s/");
    meta_entry_clear(&e);
    meta_flush(meta);
    set.dir_torrents = 2;
    ck_assert_str_eq(names("/s", NULL), "a.bin:F a.bin.torrent:T deep:D deep.torrent:R");
    ck_assert_int_eq(meta_lookup(meta, "/s/deep.torrent", &e, &err), 0);
    ck_assert_str_eq(e.key, "root/s/deep/");
    meta_entry_clear(&e);
    ck_assert_int_eq(meta_lookup(meta, "/s.torrent", &e, &err), ENOENT);
    stop();
}
END_TEST

START_TEST(test_ttl_forget_flush)
{
    start("");
    add("a.bin", 10);
    names("/", NULL);
    names("/", NULL);
    ck_assert_uint_eq(lists(), 1);
    add("b.bin", 10); /* not seen while the listing is fresh */
    ck_assert_str_eq(names("/", NULL), "a.bin:F a.bin.torrent:T");
    meta_forget(meta, "/a.bin");
    ck_assert_str_eq(names("/", NULL), "a.bin:F a.bin.torrent:T b.bin:F b.bin.torrent:T");
    ck_assert_uint_eq(lists(), 2);
    meta_flush(meta);
    names("/", NULL);
    ck_assert_uint_eq(lists(), 3);
    stop();
}
END_TEST

START_TEST(test_prefix_and_failure)
{
    start("p/");
    add("p/in.bin", 10);
    add("q/out.bin", 10);
    ck_assert_str_eq(names("/", NULL), "in.bin:F in.bin.torrent:T");
    meta_flush(meta);
    struct store_mem_fault f = {.ops = STORE_OP_LIST, .error = EACCES};
    ck_assert_int_eq(store_mem_fault(store, &f), 0);
    struct meta_dir *d;
    err_t err = {0};
    ck_assert_int_eq(meta_dir_get(meta, "/", &d, &err), EACCES);
    ck_assert_ptr_nonnull(strstr(err.msg, "p/"));
    stop();
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("meta");
    TCase *t = tcase_create("listings");
    tcase_add_test(t, test_rules);
    tcase_add_test(t, test_dir_torrents);
    tcase_add_test(t, test_ttl_forget_flush);
    tcase_add_test(t, test_prefix_and_failure);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
