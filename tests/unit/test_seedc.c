/* test_seedc.c — the seed clients beside Transmission's: qBittorrent's login cookie, "Fails."
 * and the multipart add against a scripted local HTTP server; the answer parsers of qBittorrent
 * and Deluge; --client names; which Transmission takes v2; the v1-only magnet. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakehttp.h"
#include "s3torrent/deluge.h"
#include "s3torrent/magnet.h"
#include "s3torrent/qbt.h"
#include "s3torrent/seedc.h"
#include "s3torrent/util.h"
#include "testutil.h"

#define HASH     "0123456789abcdef0123456789abcdef01234567"
#define PASSWORD "qb s3cr3t&pass"

START_TEST(test_kind_names)
{
    enum seedc_kind k;
    ck_assert_int_eq(seedc_kind_parse("qbittorrent", &k), 0);
    ck_assert_int_eq(k, SEEDC_QBITTORRENT);
    ck_assert_int_eq(seedc_kind_parse("deluge", &k), 0);
    ck_assert_int_eq(k, SEEDC_DELUGE);
    ck_assert_int_eq(seedc_kind_parse("transmission", &k), 0);
    ck_assert_int_eq(k, SEEDC_TRANSMISSION);
    ck_assert_int_eq(seedc_kind_parse("rtorrent", &k), EINVAL);
    ck_assert_int_eq(seedc_kind_parse("", &k), EINVAL);
    ck_assert_str_eq(seedc_kind_name(SEEDC_QBITTORRENT), "qBittorrent");
}
END_TEST

START_TEST(test_transmission_versions)
{
    static const struct {
        const char *version;
        bool v2;
    } cases[] = {
        {"3.00 (bb6b5a062e)", false},
        {"2.94 (d8e60ee44f)", false},
        {"4.0.2 (...)", true},
        {"4.1.0", true},
        {"", false},
        {"garbage", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(seedc_transmission_takes_v2(cases[i].version) == cases[i].v2, "%s",
                      cases[i].version);
}
END_TEST

START_TEST(test_qbt_parse_info)
{
    static const struct {
        const char *body;
        int rc;
        bool found;
    } cases[] = {
        {"[]", 0, false},
        {"[{\"hash\":\"" HASH "\",\"name\":\"a\\nb\",\"save_path\":\"/m/\"}]", 0, true},
        {"[{\"hash\":\"0123456789ABCDEF0123456789ABCDEF01234567\"}]", 0, true},
        {"[{\"hash\":\"ffff\"}]", 0, false},
        {"[{\"name\":\"x\"}]", EPROTO, false},
        {"{\"hash\":\"" HASH "\"}", EPROTO, false},
        {"[1]", EPROTO, false},
        {"Forbidden", EPROTO, false},
        {"", EPROTO, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct qbt_torrent t;
        bool found;
        err_t err = {0};
        int rc = qbt_parse_info(cases[i].body, strlen(cases[i].body), 0, HASH, &found, &t, &err);
        ck_assert_msg(rc == cases[i].rc, "%zu: %d %s", i, rc, err.msg);
        if (rc == 0)
            ck_assert_msg(found == cases[i].found, "%zu", i);
        else
            ck_assert_ptr_null(strchr(err.msg, '\n'));
        if (i == 1) {
            ck_assert_str_eq(t.name, "a?b"); /* control bytes never reach a terminal */
            ck_assert_str_eq(t.save_path, "/m/");
        }
    }
}
END_TEST

START_TEST(test_deluge_parse_response)
{
    static const struct {
        const char *body;
        int rc;
    } cases[] = {
        {"{\"result\":true,\"error\":null,\"id\":7}", 0},
        {"{\"result\":null,\"error\":null,\"id\":7}", 0},
        {"{\"result\":true,\"error\":null,\"id\":8}", EPROTO},
        {"{\"error\":null,\"id\":7}", EPROTO},
        {"{\"result\":null,\"error\":{\"message\":\"Not authenticated\",\"code\":1},\"id\":7}",
         EACCES},
        {"{\"result\":null,\"error\":{\"message\":\"Torrent already in session\",\"code\":4},"
         "\"id\":7}",
         EIO},
        {"{\"result\":null,\"error\":\"odd\",\"id\":7}", EIO},
        {"[1]", EPROTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *doc, *result;
        err_t err = {0};
        int rc =
            deluge_parse_response(cases[i].body, strlen(cases[i].body), 0, 7, &doc, &result, &err);
        ck_assert_msg(rc == cases[i].rc, "%zu: %d %s", i, rc, err.msg);
        if (rc == 0)
            json_object_put(doc);
        else
            ck_assert_msg(err.msg[0] && !strchr(err.msg, '\n'), "%zu", i);
        if (rc == EIO && i == 5)
            ck_assert_str_eq(err.msg, "Torrent already in session");
    }
}
END_TEST

static struct fakehttp *fake;
static struct http_client *http;

static void setup(void)
{
    fake = fakehttp_start();
    ck_assert_ptr_nonnull(fake);
    http = http_client_new(NULL);
    ck_assert_ptr_nonnull(http);
}

static void teardown(void)
{
    http_client_free(http);
    fakehttp_stop(fake);
}

static struct qbt_client *qclient(const char *user)
{
    struct qbt_config cfg = {
        .url = fakehttp_url(fake), .username = user, .password = PASSWORD, .http = http};
    struct qbt_client *c;
    err_t err = {0};
    ck_assert_msg(qbt_client_new(&cfg, &c, &err) == 0, "%s", err.msg);
    return c;
}

START_TEST(test_qbt_login_cookie_and_add)
{
    fakehttp_add_ex(fake, "POST", "/api/v2/auth/login", 200,
                    "Set-Cookie: SID=abc123; HttpOnly; path=/\r\n", "Ok.");
    fakehttp_add(fake, "GET", "/api/v2/app/version", 200, "v4.5.2");
    fakehttp_add(fake, "POST", "/api/v2/torrents/add", 200, "Ok.");
    fakehttp_add(fake, "POST", "/api/v2/torrents/add", 200, "Fails.");
    struct qbt_client *c = qclient("alice");
    char version[32];
    err_t err = {0};
    ck_assert_msg(qbt_login(c, version, sizeof(version), &err) == 0, "%s", err.msg);
    ck_assert_str_eq(version, "v4.5.2");
    /* the password goes form-encoded in the login body, never elsewhere */
    const struct fakehttp_request *r = fakehttp_request(fake, 0);
    ck_assert_ptr_nonnull(strstr(r->body, "username=alice&password=qb%20s3cr3t%26pass"));
    r = fakehttp_request(fake, 1);
    ck_assert_str_eq(fakehttp_header(r, "Cookie"), "SID=abc123");
    struct qbt_add a = {.savepath = "/mnt/rec", .category = "cat", .tags = "a,b"};
    static const uint8_t torrent[] = "d4:infod4:name1:xee";
    ck_assert_int_eq(qbt_add(c, torrent, sizeof(torrent) - 1, &a, &err), 0);
    r = fakehttp_request(fake, 2);
    ck_assert_str_eq(fakehttp_header(r, "Cookie"), "SID=abc123");
    ck_assert_ptr_nonnull(strstr(fakehttp_header(r, "Content-Type"), "multipart/form-data"));
    ck_assert_ptr_nonnull(strstr(r->body, "name=\"skip_checking\"\r\n\r\ntrue"));
    ck_assert_ptr_nonnull(strstr(r->body, "name=\"savepath\"\r\n\r\n/mnt/rec"));
    ck_assert_ptr_nonnull(strstr(r->body, "name=\"category\"\r\n\r\ncat"));
    ck_assert_ptr_nonnull(strstr(r->body, "name=\"tags\"\r\n\r\na,b"));
    ck_assert_ptr_nonnull(strstr(r->body, "d4:infod4:name1:xee"));
    ck_assert_int_eq(qbt_add(c, torrent, sizeof(torrent) - 1, &a, &err), EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "Fails."));
    qbt_client_free(c);
}
END_TEST

START_TEST(test_qbt_refused_login)
{
    fakehttp_add(fake, "POST", "/api/v2/auth/login", 200, "Fails.");
    fakehttp_add(fake, "POST", "/api/v2/auth/login", 403, "banned");
    struct qbt_client *c = qclient("alice");
    err_t err = {0};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(qbt_login(c, NULL, 0, &err), EACCES);
        ck_assert_ptr_nonnull(strstr(err.msg, "QBITTORRENT_PASSWORD"));
        ck_assert_ptr_null(strstr(err.msg, "s3cr3t"));
        ck_assert_ptr_null(strchr(err.msg, '\n'));
    }
    qbt_client_free(c);
    /* a URL with credentials in it is refused, not echoed */
    struct qbt_config cfg = {.url = "http://u:pw@127.0.0.1:1/", .http = http};
    ck_assert_int_eq(qbt_client_new(&cfg, &c, &err), EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "pw@"));
}
END_TEST

START_TEST(test_v1_only_magnet)
{
    uint8_t ih1[20], ih2[32];
    char hex[65];
    memset(ih1, 0xab, sizeof(ih1));
    memset(ih2, 0xcd, sizeof(ih2));
    static const char *const tr[] = {"http://t.example/announce"};
    char *both = magnet_make(ih1, ih2, "a b.bin", tr, 1, NULL, 0);
    char *v1 = magnet_make(ih1, NULL, "a b.bin", tr, 1, NULL, 0);
    ck_assert_ptr_nonnull(both);
    ck_assert_ptr_nonnull(v1);
    char want[256];
    snprintf(want, sizeof(want),
             "magnet:?xt=urn:btih:%s&dn=a%%20b.bin&tr=", util_hex(ih1, 20, hex));
    ck_assert_msg(strncmp(v1, want, strlen(want)) == 0, "%s", v1);
    ck_assert_ptr_null(strstr(v1, "btmh"));
    ck_assert_ptr_nonnull(strstr(both, "&xt=urn:btmh:1220"));
    free(both);
    free(v1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("seedc");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_transmission_versions);
    tcase_add_test(tc, test_qbt_parse_info);
    tcase_add_test(tc, test_deluge_parse_response);
    tcase_add_test(tc, test_v1_only_magnet);
    suite_add_tcase(s, tc);
    TCase *tn = tcase_create("qbt");
    tcase_add_checked_fixture(tn, setup, teardown);
    tcase_set_timeout(tn, 30);
    tcase_add_test(tn, test_qbt_login_cookie_and_add);
    tcase_add_test(tn, test_qbt_refused_login);
    suite_add_tcase(s, tn);
    return tu_run(s);
}
