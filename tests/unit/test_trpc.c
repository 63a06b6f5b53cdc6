/* test_trpc.c — the Transmission RPC client against a scripted local HTTP server: the 409
 * session-id handshake (first and again later), Basic auth kept out of error messages, torrent-add
 * and its duplicate answer, refusals as one line, the answer cap, and the answer parser. */
#include <check.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakehttp.h"
#include "s3torrent/trpc.h"
#include "testutil.h"

#define RPC  "/transmission/rpc"
#define HASH "4dcd0922792ece6fd9d87fd70763b2bc24f2b4a0"
/* base64 of "alice:s3cr3t pass" */
#define AUTH_B64 "YWxpY2U6czNjcjN0IHBhc3M="
#define PASSWORD "s3cr3t pass"

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

/* A client of the fake server; user may be NULL. max 0: the default cap. */
static struct trpc_client *client(const char *user, const char *pass, size_t max)
{
    char url[128];
    snprintf(url, sizeof(url), "%s" RPC, fakehttp_url(fake));
    struct trpc_config cfg = {
        .url = url, .username = user, .password = pass, .http = http, .max_response = max};
    struct trpc_client *c;
    err_t err = {0};
    ck_assert_msg(trpc_client_new(&cfg, &c, &err) == 0, "%s", err.msg);
    return c;
}

/* The i-th request's JSON body, parsed (the caller puts it). */
static json_object *request_json(size_t i)
{
    const struct fakehttp_request *r = fakehttp_request(fake, i);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_lt(r->body_len, sizeof(r->body));
    json_object *o = json_tokener_parse(r->body);
    ck_assert_msg(o != NULL, "request body is not JSON: %s", r->body);
    return o;
}

static const char *jstr(json_object *o, const char *k1, const char *k2)
{
    json_object *v;
    ck_assert(json_object_object_get_ex(o, k1, &v));
    if (k2)
        ck_assert(json_object_object_get_ex(v, k2, &v));
    return json_object_get_string(v);
}

static const char *SESSION_OK =
    "{\"arguments\":{\"rpc-version\":16,\"version\":\"3.00 (bb6b5a062e)\"},\"result\":\"success\"}";

START_TEST(test_session_handshake)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    fakehttp_add_ex(fake, "POST", RPC, 409, "X-Transmission-Session-Id: first-id\r\n",
                    "<h1>409: Conflict</h1>");
    fakehttp_add(fake, "POST", RPC, 200, SESSION_OK);
    /* the daemon restarted: a new id, learnt from the next 409 */
    fakehttp_add_ex(fake, "POST", RPC, 409, "X-Transmission-Session-Id: second-id\r\n", "");
    fakehttp_add(fake, "POST", RPC, 200, SESSION_OK);
    char version[64];
    err_t err = {0};
    ck_assert_msg(trpc_ping(c, version, sizeof(version), &err) == 0, "%s", err.msg);
    ck_assert_str_eq(version, "3.00 (bb6b5a062e)");
    ck_assert_uint_eq(fakehttp_count(fake), 2);
    const struct fakehttp_request *r0 = fakehttp_request(fake, 0), *r1 = fakehttp_request(fake, 1);
    ck_assert_ptr_null(fakehttp_header(r0, "X-Transmission-Session-Id"));
    ck_assert_str_eq(fakehttp_header(r1, "X-Transmission-Session-Id"), "first-id");
    ck_assert_str_eq(fakehttp_header(r1, "Content-Type"), "application/json");
    ck_assert_ptr_null(fakehttp_header(r1, "Authorization"));
    /* the resent request is the same request */
    ck_assert_str_eq(r0->body, r1->body);
    json_object *o = request_json(1);
    ck_assert_str_eq(jstr(o, "method", NULL), "session-get");
    json_object_put(o);

    ck_assert_msg(trpc_ping(c, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_uint_eq(fakehttp_count(fake), 4);
    ck_assert_str_eq(fakehttp_header(fakehttp_request(fake, 2), "X-Transmission-Session-Id"),
                     "first-id");
    ck_assert_str_eq(fakehttp_header(fakehttp_request(fake, 3), "X-Transmission-Session-Id"),
                     "second-id");
    trpc_client_free(c);
}
END_TEST

START_TEST(test_handshake_is_bounded)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    fakehttp_add_ex(fake, "POST", RPC, 409, "X-Transmission-Session-Id: again\r\n", "");
    err_t err = {0};
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EPROTO);
    ck_assert_uint_eq(fakehttp_count(fake), 3);
    ck_assert_msg(strstr(err.msg, "HTTP 409") != NULL, "%s", err.msg);
    trpc_client_free(c);

    /* a 409 without the header cannot be answered */
    fakehttp_stop(fake);
    fake = fakehttp_start();
    c = client(NULL, NULL, 0);
    fakehttp_add(fake, "POST", RPC, 409, "");
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EPROTO);
    ck_assert_msg(strstr(err.msg, "X-Transmission-Session-Id") != NULL, "%s", err.msg);
    ck_assert_uint_eq(fakehttp_count(fake), 1);
    trpc_client_free(c);
}
END_TEST

START_TEST(test_basic_auth)
{
    struct trpc_client *c = client("alice", PASSWORD, 0);
    fakehttp_require_auth(fake, "Basic " AUTH_B64);
    fakehttp_add(fake, "POST", RPC, 200, SESSION_OK);
    err_t err = {0};
    ck_assert_msg(trpc_ping(c, NULL, 0, &err) == 0, "%s", err.msg);
    ck_assert_str_eq(fakehttp_header(fakehttp_request(fake, 0), "Authorization"),
                     "Basic " AUTH_B64);
    trpc_client_free(c);

    /* refused credentials: the message says so without them */
    c = client("alice", "wrong", 0);
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EACCES);
    ck_assert_msg(strstr(err.msg, "HTTP 403") != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(err.msg, "wrong"));
    ck_assert_ptr_null(strstr(err.msg, "Basic"));
    trpc_client_free(c);
}
END_TEST

START_TEST(test_credentials_never_in_messages)
{
    /* Transmission answers 401 to a wrong password */
    struct trpc_client *c = client("alice", PASSWORD, 0);
    fakehttp_add(fake, "POST", RPC, 401, "<h1>401: Unauthorized</h1>");
    err_t err = {0};
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EACCES);
    ck_assert_msg(strstr(err.msg, "HTTP 401") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "TRANSMISSION_RPC_USERNAME") != NULL, "%s", err.msg);
    ck_assert_ptr_null(strstr(err.msg, PASSWORD));
    ck_assert_ptr_null(strstr(err.msg, AUTH_B64));
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    trpc_client_free(c);

    /* a daemon that is not there */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:1" RPC);
    struct trpc_config cfg = {.url = url, .username = "alice", .password = PASSWORD, .http = http};
    ck_assert_int_eq(trpc_client_new(&cfg, &c, &err), 0);
    int rc = trpc_ping(c, NULL, 0, &err);
    ck_assert_int_eq(rc, ECONNREFUSED);
    ck_assert_msg(strstr(err.msg, "Transmission at http://127.0.0.1:1/transmission/rpc") != NULL,
                  "%s", err.msg);
    ck_assert_ptr_null(strstr(err.msg, PASSWORD));
    ck_assert_ptr_null(strstr(err.msg, AUTH_B64));
    trpc_client_free(c);

    /* a password in the URL is refused, and not echoed */
    cfg.url = "http://bob:hunter2@127.0.0.1:9091/transmission/rpc";
    ck_assert_int_eq(trpc_client_new(&cfg, &c, &err), EINVAL);
    ck_assert_ptr_null(strstr(err.msg, "hunter2"));
    ck_assert_msg(strstr(err.msg, "TRANSMISSION_RPC_PASSWORD") != NULL, "%s", err.msg);
    cfg.url = "ftp://127.0.0.1/x";
    ck_assert_int_eq(trpc_client_new(&cfg, &c, &err), EINVAL);
    cfg.url = "http://127.0.0.1:9091/trans mission/rpc";
    ck_assert_int_eq(trpc_client_new(&cfg, &c, &err), EINVAL);
    cfg.url = "http://127.0.0.1:9091/rpc";
    cfg.username = "a:b";
    ck_assert_int_eq(trpc_client_new(&cfg, &c, &err), EINVAL);
}
END_TEST

static const uint8_t TORRENT[] = "d8:announce9:http://x/4:infod6:lengthi1e4:name1:x12:piece "
                                 "lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";

START_TEST(test_add)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrent-added\":{\"hashString\":\"" HASH
                 "\",\"id\":7,\"name\":\"x.bin\"}},\"result\":\"success\",\"tag\":1}");
    struct trpc_add_result res;
    err_t err = {0};
    ck_assert_msg(trpc_add(c, TORRENT, sizeof(TORRENT) - 1, "/srv/mnt/rec", &res, &err) == 0, "%s",
                  err.msg);
    ck_assert(!res.duplicate);
    ck_assert_int_eq(res.torrent.id, 7);
    ck_assert_str_eq(res.torrent.hash, HASH);
    ck_assert_str_eq(res.torrent.name, "x.bin");
    json_object *o = request_json(0), *paused;
    ck_assert_str_eq(jstr(o, "method", NULL), "torrent-add");
    ck_assert_str_eq(jstr(o, "arguments", "download-dir"), "/srv/mnt/rec");
    ck_assert(json_object_object_get_ex(json_object_object_get(o, "arguments"), "paused", &paused));
    ck_assert(json_object_is_type(paused, json_type_boolean) && !json_object_get_boolean(paused));
    /* metainfo is the torrent in base64 */
    const char *b64 = jstr(o, "arguments", "metainfo");
    uint8_t back[sizeof(TORRENT) + 4];
    int n = EVP_DecodeBlock(back, (const unsigned char *)b64, (int)strlen(b64));
    ck_assert_int_ge(n, (int)sizeof(TORRENT) - 1);
    ck_assert_mem_eq(back, TORRENT, sizeof(TORRENT) - 1);
    json_object_put(o);
    trpc_client_free(c);
}
END_TEST

START_TEST(test_duplicate_is_an_answer)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    /* Transmission 3.00 */
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrent-duplicate\":{\"hashString\":\"" HASH
                 "\",\"id\":3,\"name\":\"x.bin\"}},\"result\":\"success\"}");
    /* Transmission 2.x */
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrent-duplicate\":{\"hashString\":\"" HASH
                 "\",\"id\":3,\"name\":\"x.bin\"}},\"result\":\"duplicate torrent\"}");
    struct trpc_add_result res;
    err_t err = {0};
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(trpc_add(c, TORRENT, sizeof(TORRENT) - 1, NULL, &res, &err) == 0, "%s",
                      err.msg);
        ck_assert(res.duplicate);
        ck_assert_int_eq(res.torrent.id, 3);
        ck_assert_str_eq(res.torrent.hash, HASH);
    }
    /* without a download dir the daemon's default is used */
    json_object *o = request_json(0);
    ck_assert(
        !json_object_object_get_ex(json_object_object_get(o, "arguments"), "download-dir", NULL));
    json_object_put(o);
    trpc_client_free(c);
}
END_TEST

START_TEST(test_refusal_is_one_line)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{},\"result\":\"invalid or corrupt torrent file\"}");
    struct trpc_add_result res;
    err_t err = {0};
    ck_assert_int_eq(trpc_add(c, TORRENT, sizeof(TORRENT) - 1, "/x", &res, &err), EIO);
    ck_assert_str_eq(err.msg, "Transmission: torrent-add: invalid or corrupt torrent file");
    trpc_client_free(c);

    /* control bytes in a result stay on the line */
    fakehttp_stop(fake);
    fake = fakehttp_start();
    c = client(NULL, NULL, 0);
    fakehttp_add(fake, "POST", RPC, 200, "{\"result\":\"bad\\nthing\"}");
    fakehttp_add(fake, "POST", RPC, 500, "oops");
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EIO);
    ck_assert_str_eq(err.msg, "Transmission: session-get: bad?thing");
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EIO);
    ck_assert_msg(strstr(err.msg, "HTTP 500") != NULL, "%s", err.msg);
    trpc_client_free(c);
}
END_TEST

START_TEST(test_find)
{
    struct trpc_client *c = client(NULL, NULL, 0);
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrents\":[{\"downloadDir\":\"/srv/mnt\",\"hashString\":"
                 "\"" HASH "\",\"id\":1,\"name\":\"x.bin\"}]},\"result\":\"success\",\"tag\":1}");
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrents\":[]},\"result\":\"success\",\"tag\":2}");
    /* an answer to another request */
    fakehttp_add(fake, "POST", RPC, 200,
                 "{\"arguments\":{\"torrents\":[]},\"result\":\"success\",\"tag\":99}");
    struct trpc_torrent t;
    bool found;
    err_t err = {0};
    ck_assert_msg(trpc_find(c, "4DCD0922792ECE6FD9D87FD70763B2BC24F2B4A0", &found, &t, &err) == 0,
                  "%s", err.msg);
    ck_assert(found);
    ck_assert_str_eq(t.download_dir, "/srv/mnt");
    ck_assert_str_eq(t.name, "x.bin");
    json_object *o = request_json(0);
    ck_assert_str_eq(jstr(o, "method", NULL), "torrent-get");
    json_object *args = json_object_object_get(o, "arguments");
    ck_assert_str_eq(
        json_object_get_string(json_object_array_get_idx(json_object_object_get(args, "ids"), 0)),
        HASH);
    ck_assert_int_eq(json_object_array_length(json_object_object_get(args, "fields")), 4);
    json_object_put(o);
    ck_assert_int_eq(trpc_find(c, HASH, &found, NULL, &err), 0);
    ck_assert(!found);
    ck_assert_int_eq(trpc_find(c, HASH, &found, NULL, &err), EPROTO);
    ck_assert_int_eq(trpc_find(c, "abc", &found, NULL, &err), EINVAL);
    ck_assert_uint_eq(fakehttp_count(fake), 3);
    trpc_client_free(c);
}
END_TEST

START_TEST(test_answer_cap)
{
    struct trpc_client *c = client(NULL, NULL, 1024);
    char body[4096];
    int n = snprintf(body, sizeof(body), "{\"arguments\":{\"version\":\"");
    memset(body + n, 'v', 2000);
    snprintf(body + n + 2000, sizeof(body) - (size_t)n - 2000, "\"},\"result\":\"success\"}");
    fakehttp_add(fake, "POST", RPC, 200, body);
    err_t err = {0};
    ck_assert_int_eq(trpc_ping(c, NULL, 0, &err), EFBIG);
    ck_assert_msg(strstr(err.msg, "1024") != NULL, "%s", err.msg);
    trpc_client_free(c);

    json_object *doc, *a;
    const char *result;
    ck_assert_int_eq(trpc_parse_response(body, strlen(body), 1024, &doc, &result, &a, &err), EFBIG);
    ck_assert_int_eq(trpc_parse_response(body, strlen(body), 0, &doc, &result, &a, &err), 0);
    json_object_put(doc);
}
END_TEST

START_TEST(test_parse_response)
{
    static const struct {
        const char *body;
        int want;
    } cases[] = {
        {"{\"result\":\"success\"}", 0},
        {"{\"result\":\"success\",\"arguments\":{}}\r\n", 0},
        {"{\"result\":\"no\",\"arguments\":{\"a\":1}}", 0},
        {"", EPROTO},
        {"<html>", EPROTO},
        {"{\"result\":\"success\"", EPROTO},
        {"{\"result\":\"success\"} x", EPROTO},
        {"[\"result\"]", EPROTO},
        {"{\"arguments\":{}}", EPROTO},
        {"{\"result\":1}", EPROTO},
        {"{\"result\":\"success\",\"arguments\":[]}", EPROTO},
        {"{\"result\":\"\xff\"}", EPROTO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *doc, *a;
        const char *result;
        err_t err = {0};
        int rc =
            trpc_parse_response(cases[i].body, strlen(cases[i].body), 0, &doc, &result, &a, &err);
        ck_assert_msg(rc == cases[i].want, "case %zu: %d (%s)", i, rc, err.msg);
        if (rc == 0) {
            ck_assert_ptr_nonnull(result);
            json_object_put(doc);
        } else {
            ck_assert_ptr_null(doc);
            ck_assert(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL);
        }
    }
    /* torrent objects */
    struct trpc_torrent t;
    err_t err = {0};
    json_object *o = json_tokener_parse("{\"hashString\":\"" HASH "\",\"id\":\"1\"}");
    ck_assert_int_eq(trpc_torrent_from_json(o, &t, &err), EPROTO);
    json_object_put(o);
    o = json_tokener_parse("{\"hashString\":\"xyz\",\"id\":1}");
    ck_assert_int_eq(trpc_torrent_from_json(o, &t, &err), EPROTO);
    json_object_put(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trpc");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_session_handshake);
    tcase_add_test(tc, test_handshake_is_bounded);
    tcase_add_test(tc, test_basic_auth);
    tcase_add_test(tc, test_credentials_never_in_messages);
    tcase_add_test(tc, test_add);
    tcase_add_test(tc, test_duplicate_is_an_answer);
    tcase_add_test(tc, test_refusal_is_one_line);
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_answer_cap);
    tcase_add_test(tc, test_parse_response);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
