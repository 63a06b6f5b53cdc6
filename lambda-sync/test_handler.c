/* test_handler.c — the Lambda's item outcomes (handler.c) over the in-memory store: created,
 * then up to date; skipped by rule (.torrent key, excluded prefix, bucket not allowed, zero
 * bytes); failed for good (no such object, a malformed record, a bad bucket name) or for now
 * (throttled); and not started when the deadline is too close, with no request made. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "s3torrent/store_mem.h"
#include "testutil.h"

static struct store *st;
static struct maker mk;
static struct torrent_recipe recipe = {.meta = TORRENT_V1};
static struct sync_config sc;
static char *allow[] = {"media"}, *exclude[] = {"tmp/"};
static struct handler_rules rules = {allow, exclude, 1, 1};

static void setup(void)
{
    st = store_mem_new();
    mk = (struct maker){.store = st, .threads = 1};
    sc = (struct sync_config){.maker = &mk, .recipe = &recipe, .source = "lambda"};
    uint8_t data[70000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i % 241);
    ck_assert_int_eq(store_mem_add(st, "media", "rec/a.wav", data, sizeof(data), 9), 0);
    ck_assert_int_eq(store_mem_add(st, "media", "tmp/b.wav", data, sizeof(data), 9), 0);
    ck_assert_int_eq(store_mem_add(st, "media", "empty.wav", "", 0, 9), 0);
}

static void teardown(void)
{
    store_free(st);
}

/* The outcome of one item naming bucket/key (error: a malformed record's reason). */
static struct events_outcome run(const char *bucket, const char *key, const char *error,
                                 int64_t deadline_ms, struct handler_slot *s)
{
    struct events_item it = {.bucket = (char *)bucket, .key = (char *)key, .error = (char *)error};
    struct events_outcome o;
    memset(s, 0, sizeof(*s));
    handler_item(&rules, &sc, deadline_ms, &it, &o, s);
    return o;
}

START_TEST(test_outcomes)
{
    static const struct {
        const char *bucket, *key, *error;
        enum events_outcome_code code;
        const char *action, *message;
    } v[] = {
        {"media", "rec/a.wav", NULL, EVENTS_DONE, "created", ""},
        {"media", "rec/a.wav", NULL, EVENTS_DONE, "up-to-date", ""},
        {"media", "rec/a.wav.torrent", NULL, EVENTS_SKIPPED, "skipped", "a .torrent object"},
        {"media", "tmp/b.wav", NULL, EVENTS_SKIPPED, "skipped", "EXCLUDE_PREFIXES"},
        {"other", "rec/a.wav", NULL, EVENTS_SKIPPED, "skipped", "S3_BUCKET"},
        {"media", "empty.wav", NULL, EVENTS_SKIPPED, "skipped", "zero-byte"},
        {"media", "rec/none.wav", NULL, EVENTS_PERMANENT, "failed", "no such object"},
        {NULL, NULL, "record 3: no s3.object.key", EVENTS_PERMANENT, "failed", "no s3.object"},
        {"bad bucket!", "k", NULL, EVENTS_PERMANENT, "failed", "bad bucket!"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct handler_slot s;
        struct events_outcome o = run(v[i].bucket, v[i].key, v[i].error, 0, &s);
        ck_assert_msg(o.code == v[i].code, "%zu: code %d", i, o.code);
        ck_assert_str_eq(o.action, v[i].action);
        ck_assert_msg(strstr(o.message, v[i].message), "%zu: %s", i, o.message);
        if (o.code == EVENTS_DONE)
            ck_assert_uint_eq(strlen(o.info_hash), 40);
    }
    /* the .torrent is in the store, with the info-hash reported */
    size_t len;
    struct store_meta meta;
    ck_assert_ptr_nonnull(store_mem_data(st, "media", "rec/a.wav.torrent", &len, &meta));
    ck_assert_ptr_nonnull(store_meta_get(&meta, "s3torrent-infohash"));
}
END_TEST

START_TEST(test_throttled_is_temporary)
{
    struct store_mem_fault f = {.ops = STORE_OP_HEAD, .error = EAGAIN};
    ck_assert_int_eq(store_mem_fault(st, &f), 0);
    struct handler_slot s;
    struct events_outcome o = run("media", "rec/a.wav", NULL, 0, &s);
    ck_assert_int_eq(o.code, EVENTS_TEMPORARY);
    ck_assert_ptr_nonnull(strstr(o.message, "rec/a.wav"));
}
END_TEST

START_TEST(test_deadline_too_close)
{
    struct handler_slot s;
    int64_t soon = handler_now_ms() + HANDLER_MIN_TIME_LEFT_MS / 2;
    struct events_outcome o = run("media", "rec/a.wav", NULL, soon, &s);
    ck_assert_int_eq(o.code, EVENTS_NOT_DONE);
    ck_assert_str_eq(o.action, "not-done");
    ck_assert_uint_eq(store_mem_calls(st, ~0u, NULL), 0);
    /* with time enough it is done */
    o = run("media", "rec/a.wav", NULL, handler_now_ms() + 60000, &s);
    ck_assert_int_eq(o.code, EVENTS_DONE);
    ck_assert(s.headed);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("handler");
    TCase *t = tcase_create("handler");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_outcomes);
    tcase_add_test(t, test_throttled_is_temporary);
    tcase_add_test(t, test_deadline_too_close);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return tu_run(suite());
}
