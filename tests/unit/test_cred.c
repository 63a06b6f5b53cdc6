/* test_cred.c — the credential provider chain: environment, shared files, ECS and IMDSv2
 * against the loopback fake server, refresh before expiry, and the refusals. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "fakehttp.h"
#include "s3torrent/cred.h"
#include "s3torrent/http.h"
#include "testutil.h"

#define FIX_AKID   "ASIAIOSFODNN7EXAMPLE"
#define FIX_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define FIX_TOKEN  "IQoJb3JpZ2luX2VjEXAMPLETOKEN=="
#define FIX_EXP    1567561047 /* 2019-09-04T01:37:27Z */
#define FIX_NOW    1567555200 /* 2019-09-04T00:00:00Z */
#define NO_CREDS   "no AWS credentials found (environment, shared files, ECS, IMDS)"

/* The injected environment: name, value pairs ending with NULL. Each test runs in its own
 * process (check forks), so these test-only globals never leak between tests. */
static const char *g_env[64];
static time_t g_now = FIX_NOW;

static const char *tenv(const char *name)
{
    for (size_t i = 0; g_env[i]; i += 2)
        if (strcmp(g_env[i], name) == 0)
            return g_env[i + 1];
    return NULL;
}

static time_t tnow(void)
{
    return g_now;
}

/* Sets the environment to the pairs given, ending with NULL. */
static void set_env(const char *first, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *)) {
        ck_assert_uint_lt(n, sizeof(g_env) / sizeof(g_env[0]) - 1);
        g_env[n++] = s;
    }
    va_end(ap);
    ck_assert_uint_eq(n % 2, 0);
    g_env[n] = NULL;
}

static struct cred_chain *new_chain(const char *profile, const char *ecs_base,
                                    struct http_client *http)
{
    struct cred_chain_opts o = {.profile = profile,
                                .http = http,
                                .getenv = tenv,
                                .now = tnow,
                                .ecs_relative_base = ecs_base};
    struct cred_chain *c = cred_chain_new(&o);
    ck_assert_ptr_nonnull(c);
    return c;
}

/* ---- temporary home folders ------------------------------------------------------------ */

static char g_home[64];

static void make_home(void)
{
    char path[128];
    snprintf(g_home, sizeof(g_home), "/tmp/s3t-cred-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_home));
    snprintf(path, sizeof(path), "%s/.aws", g_home);
    ck_assert_int_eq(mkdir(path, 0700), 0);
}

/* Writes text to g_home/rel with exactly mode (umask aside); returns the path (static). */
static const char *put_file(const char *rel, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", g_home, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void remove_home(void)
{
    if (g_home[0])
        nftw(g_home, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    g_home[0] = '\0';
}

static const char CREDENTIALS[] = "# a comment\n"
                                  "[default]\n"
                                  "aws_access_key_id = AKIDDEFAULT\n"
                                  "aws_secret_access_key=SECRETDEFAULT\n"
                                  "  ; an indented comment\n"
                                  "\n"
                                  "[other]\r\n"
                                  "  aws_access_key_id = AKIDOTHER  \r\n"
                                  "  aws_secret_access_key = SECRETOTHER\r\n"
                                  "  aws_session_token = TOKENOTHER\r\n";

static const char CONFIG[] = "[default]\n"
                             "region = us-east-1\n"
                             "[x]\n"
                             "aws_access_key_id = WRONG1\n"
                             "aws_secret_access_key = WRONG1\n"
                             "[profile x]\n"
                             "region = eu-west-1\n"
                             "s3 =\n"
                             "    aws_access_key_id = NESTED\n"
                             "aws_access_key_id: AKIDX\n"
                             "aws_secret_access_key = SECRETX\n"
                             "[sso-session x]\n"
                             "aws_access_key_id = WRONG2\n"
                             "[profile regiononly]\n"
                             "region = us-west-2\n";

/* ---- a logger that keeps what it was given, to prove no secret reaches it ---------------- */

static char g_log[65536];

static void log_keep(void *arg, int level, const char *line)
{
    (void)arg, (void)level;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof(g_log) - n, "%s\n", line);
}

static const struct logger keep_logger = {log_keep, NULL, LOG_DEBUG};

/* ---- 1. environment ----------------------------------------------------------------------- */

START_TEST(test_env)
{
    struct cred cr;
    err_t err = {0};
    set_env("AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "SECRETENV",
            "AWS_SESSION_TOKEN", "TOKENENV", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_ptr_null(cred_chain_source(c));
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDENV");
    ck_assert_str_eq(cr.secret_key, "SECRETENV");
    ck_assert_str_eq(cr.session_token, "TOKENENV");
    ck_assert_int_eq(cr.expiration, 0);
    ck_assert_str_eq(cred_chain_source(c), "environment");
    cred_wipe(&cr);
    cred_chain_free(c);

    /* no token; an empty variable counts as unset */
    set_env("AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "SECRETENV",
            "AWS_SESSION_TOKEN", "", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.session_token, "");
    cred_chain_free(c);

    /* half a key pair is a mistake, not "no credentials" */
    set_env("AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EINVAL);
    ck_assert_str_eq(err.msg, "environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY "
                              "is not");
    cred_chain_free(c);
}
END_TEST

START_TEST(test_env_caps)
{
    struct cred cr;
    err_t err = {0};
    char big[5000];
    memset(big, 'A', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    set_env("AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "SECRETENV",
            "AWS_SESSION_TOKEN", big, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EOVERFLOW);
    ck_assert_str_eq(err.msg, "environment: AWS_SESSION_TOKEN is longer than 4095 bytes");
    cred_chain_free(c);

    set_env("AWS_ACCESS_KEY_ID", "AKID\r\nX-Evil: 1", "AWS_SECRET_ACCESS_KEY", "SECRETENV",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "control character"));
    cred_chain_free(c);
}
END_TEST

/* ---- 2. shared files ---------------------------------------------------------------------- */

START_TEST(test_shared_credentials)
{
    struct cred cr;
    err_t err = {0};
    make_home();
    put_file(".aws/credentials", CREDENTIALS, 0600);
    set_env("HOME", g_home, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDDEFAULT");
    ck_assert_str_eq(cr.secret_key, "SECRETDEFAULT");
    ck_assert_str_eq(cr.session_token, "");
    ck_assert_int_eq(cr.expiration, 0);
    ck_assert_str_eq(cred_chain_source(c), "shared-file");
    cred_chain_free(c);

    /* AWS_PROFILE picks a section; CRLF line ends and indented keys are fine */
    set_env("HOME", g_home, "AWS_PROFILE", "other", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDOTHER");
    ck_assert_str_eq(cr.secret_key, "SECRETOTHER");
    ck_assert_str_eq(cr.session_token, "TOKENOTHER");
    cred_chain_free(c);

    /* environment keys come first... */
    set_env("HOME", g_home, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "S",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDENV");
    cred_chain_free(c);
    /* ...unless a profile is named explicitly, as with the AWS CLI's --profile */
    c = new_chain("other", NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDOTHER");
    cred_chain_free(c);

    /* AWS_SHARED_CREDENTIALS_FILE replaces ~/.aws/credentials ("~/" is $HOME) */
    put_file("elsewhere", "[default]\naws_access_key_id=AKIDELSE\naws_secret_access_key=S\n", 0400);
    set_env("HOME", g_home, "AWS_SHARED_CREDENTIALS_FILE", "~/elsewhere",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDELSE");
    cred_chain_free(c);
    remove_home();
}
END_TEST

START_TEST(test_config_profile)
{
    struct cred cr;
    err_t err = {0};
    make_home();
    put_file(".aws/credentials", CREDENTIALS, 0600);
    put_file(".aws/config", CONFIG, 0600);
    set_env("HOME", g_home, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain("x", NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDX");
    ck_assert_str_eq(cr.secret_key, "SECRETX");
    ck_assert_str_eq(cred_chain_source(c), "shared-file");
    cred_chain_free(c);

    /* AWS_CONFIG_FILE elsewhere, found through AWS_PROFILE */
    const char *cfg = put_file("cfg",
                               "[profile y]\naws_access_key_id=AKIDY\n"
                               "aws_secret_access_key=SECRETY\n",
                               0600);
    char cfg_path[256];
    snprintf(cfg_path, sizeof(cfg_path), "%s", cfg);
    set_env("HOME", g_home, "AWS_CONFIG_FILE", cfg_path, "AWS_PROFILE", "y",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKIDY");
    cred_chain_free(c);

    /* a named profile without keys is an error, not a silent fall-through */
    set_env("HOME", g_home, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain("regiononly", NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "profile regiononly in "));
    ck_assert_ptr_nonnull(strstr(err.msg, "has no aws_access_key_id"));
    cred_chain_free(c);
    remove_home();
}
END_TEST

START_TEST(test_missing_profile)
{
    struct cred cr;
    err_t err = {0};
    char want[512];
    make_home();
    put_file(".aws/credentials", CREDENTIALS, 0600);
    set_env("HOME", g_home, "AWS_PROFILE", "nope", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    snprintf(want, sizeof(want), "profile nope not found in %s/.aws/credentials or %s/.aws/config",
             g_home, g_home);
    ck_assert_str_eq(err.msg, want);
    cred_chain_free(c);

    /* the default profile may be absent: the chain goes on, and here finds nothing */
    set_env("HOME", g_home, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    put_file(".aws/credentials", "[someone]\naws_access_key_id=A\naws_secret_access_key=B\n", 0600);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    ck_assert_str_eq(err.msg, NO_CREDS);
    ck_assert_ptr_null(cred_chain_source(c));
    cred_chain_free(c);
    remove_home();
}
END_TEST

START_TEST(test_open_file_refused)
{
    struct cred cr;
    err_t err = {0};
    char want[512];
    make_home();
    const char *p = put_file(".aws/credentials", CREDENTIALS, 0644);
    snprintf(want, sizeof(want),
             "refusing %s (mode 0644): readable by group or others; chmod 600 it", p);
    set_env("HOME", g_home, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EACCES);
    ck_assert_str_eq(err.msg, want);
    cred_chain_free(c);

    /* the config file too */
    put_file(".aws/credentials", "", 0600);
    p = put_file(".aws/config", CONFIG, 0640);
    snprintf(want, sizeof(want),
             "refusing %s (mode 0640): readable by group or others; chmod 600 it", p);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EACCES);
    ck_assert_str_eq(err.msg, want);
    cred_chain_free(c);
    remove_home();
}
END_TEST

/* ---- 3. ECS ------------------------------------------------------------------------------- */

static char *fixture(const char *name)
{
    char rel[128];
    size_t len;
    snprintf(rel, sizeof(rel), "fixtures/%s", name);
    return (char *)tu_read_data(rel, &len);
}

START_TEST(test_ecs_relative)
{
    struct cred cr;
    err_t err = {0};
    char *doc = fixture("ecs-container-credentials.json");
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fakehttp_add(f, "GET", "/v2/credentials/6f1a-task", 200, doc), 0);
    struct http_opts ho = {.log = &keep_logger};
    struct http_client *http = http_client_new(&ho);
    set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/6f1a-task",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), http);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, FIX_AKID);
    ck_assert_str_eq(cr.secret_key, FIX_SECRET);
    ck_assert_str_eq(cr.session_token, FIX_TOKEN);
    ck_assert_int_eq(cr.expiration, FIX_EXP);
    ck_assert_str_eq(cred_chain_source(c), "ecs");
    ck_assert_uint_eq(fakehttp_count(f), 1);
    const struct fakehttp_request *r = fakehttp_request(f, 0);
    ck_assert_str_eq(r->method, "GET");
    ck_assert_str_eq(r->path, "/v2/credentials/6f1a-task");
    ck_assert_ptr_null(fakehttp_header(r, "Authorization"));
    /* cached: a second get asks nobody */
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_uint_eq(fakehttp_count(f), 1);
    /* the debug log says which provider answered and never what it said */
    ck_assert_ptr_nonnull(strstr(g_log, "AWS credentials from ecs"));
    ck_assert_ptr_null(strstr(g_log, FIX_SECRET));
    ck_assert_ptr_null(strstr(g_log, FIX_TOKEN));
    ck_assert_ptr_null(strstr(g_log, FIX_AKID));
    cred_wipe(&cr);
    cred_chain_free(c);
    http_client_free(http);
    fakehttp_stop(f);
    free(doc);
}
END_TEST

START_TEST(test_ecs_full_token_file)
{
    struct cred cr;
    err_t err = {0};
    char url[128], want[256];
    char *doc = fixture("ecs-container-credentials.json");
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    fakehttp_require_auth(f, "pod-identity-token");
    fakehttp_add(f, "GET", "/v1/credentials", 200, doc);
    make_home();
    char token_path[256];
    snprintf(token_path, sizeof(token_path), "%s",
             put_file("token", "  pod-identity-token\n", 0644)); /* not a secret file */
    snprintf(url, sizeof(url), "%s/v1/credentials", fakehttp_url(f));
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_path, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "the-file-wins",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, FIX_AKID);
    ck_assert_str_eq(cred_chain_source(c), "ecs");
    ck_assert_uint_eq(fakehttp_count(f), 1);
    ck_assert_str_eq(fakehttp_header(fakehttp_request(f, 0), "Authorization"),
                     "pod-identity-token");
    cred_chain_free(c);

    /* the variable when there is no file; a wrong token gets the endpoint's 403 */
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EACCES);
    ck_assert_str_eq(err.msg, "ECS container credentials: HTTP 403 from the credentials endpoint");
    ck_assert_str_eq(fakehttp_header(fakehttp_request(f, 1), "Authorization"), "wrong");
    cred_chain_free(c);

    /* no token at all: 403 as well */
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EACCES);
    ck_assert_ptr_null(fakehttp_header(fakehttp_request(f, 2), "Authorization"));
    cred_chain_free(c);

    /* a named token file that is missing */
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "/nonexistent/token", "AWS_EC2_METADATA_DISABLED", "true", NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    snprintf(want, sizeof(want),
             "ECS container credentials: token file /nonexistent/token not found");
    ck_assert_str_eq(err.msg, want);
    cred_chain_free(c);
    fakehttp_stop(f);
    remove_home();
    free(doc);
}
END_TEST

static const struct {
    const char *url;
    bool allowed;
} full_uris[] = {
    {"http://example.com/creds", false},
    {"http://169.254.170.3/creds", false},
    {"http://169.254.169.254/latest", false},
    {"http://127.0.0.1@evil.example/creds", false},
    {"http://evil.example#@127.0.0.1/", false},
    {"http://localhost.evil.example/", false},
    {"http://127.0.0.1.nip.io/", false},
    {"http://[::2]/", false},
    {"http://2130706433/", false}, /* 127.0.0.1 spelled as a number: refused, not decoded */
    {"ftp://127.0.0.1/creds", false},
    {"http://127.0.0.1:99999/", false},
    {"http://127.0.0.1:1/creds", true},
    {"http://127.8.9.10:1/creds", true},
    {"http://LOCALHOST:1/creds", true},
    {"http://[::1]:1/creds", true},
};

START_TEST(test_ecs_full_refused)
{
    struct cred cr;
    err_t err = {0};
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uris[_i].url, "AWS_EC2_METADATA_DISABLED",
            "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    int rc = cred_chain_get(c, &cr, &err);
    if (full_uris[_i].allowed) {
        /* allowed, so it was tried: port 1 does not answer */
        ck_assert_msg(rc != 0 && rc != EINVAL, "%s: %d %s", full_uris[_i].url, rc, err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "ECS container credentials: HTTP: "));
    } else {
        ck_assert_msg(rc == EINVAL, "%s: %d %s", full_uris[_i].url, rc, err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    }
    cred_chain_free(c);
}
END_TEST

START_TEST(test_ecs_full_refused_message)
{
    struct cred cr;
    err_t err = {0};
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://example.com:8080/creds",
            "AWS_EC2_METADATA_DISABLED", "true", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EINVAL);
    ck_assert_str_eq(err.msg, "AWS_CONTAINER_CREDENTIALS_FULL_URI host example.com is not "
                              "allowed: use https, or http to a loopback address or "
                              "169.254.170.2, 169.254.170.23 or [fd00:ec2::23]");
    cred_chain_free(c);
}
END_TEST

/* ECS answers with credentials expiring at exp (ISO 8601 as given). */
static int ecs_with_expiration(const char *exp, struct cred *cr, err_t *err)
{
    char doc[512];
    snprintf(doc, sizeof(doc),
             "{\"AccessKeyId\":\"AKID\",\"SecretAccessKey\":\"S\",\"Token\":\"T\","
             "\"Expiration\":\"%s\"}",
             exp);
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    fakehttp_add(f, "GET", "/c", 200, doc);
    set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c", "AWS_EC2_METADATA_DISABLED", "true",
            NULL);
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
    int rc = cred_chain_get(c, cr, err);
    cred_chain_free(c);
    fakehttp_stop(f);
    return rc;
}

START_TEST(test_expiration_formats)
{
    static const struct {
        const char *s;
        long long want; /* -1: refused */
    } cases[] = {
        {"2026-11-23T22:00:00Z", 1795471200},
        {"2026-11-23T22:00:00.123Z", 1795471200},
        {"2026-11-23T23:30:00+01:30", 1795471200},
        {"2026-11-23T20:00:00-0200", 1795471200},
        {"2024-02-29T12:30:00Z", 1709209800},
        {"2023-02-29T12:30:00Z", -1},
        {"2026-11-23 22:00:00", -1},
        {"2026-13-01T00:00:00Z", -1},
        {"1795471200", -1},
        {"", -1},
    };
    g_now = 1700000000;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cred cr;
        err_t err = {0};
        int rc = ecs_with_expiration(cases[i].s, &cr, &err);
        if (cases[i].want < 0) {
            ck_assert_msg(rc == EPROTO, "%s: %d %s", cases[i].s, rc, err.msg);
            ck_assert_str_eq(err.msg,
                             "ECS container credentials: Expiration is not an ISO 8601 time");
        } else {
            ck_assert_msg(rc == 0, "%s: %s", cases[i].s, err.msg);
            ck_assert_int_eq(cr.expiration, cases[i].want);
        }
    }
}
END_TEST

START_TEST(test_ecs_bad_documents)
{
    static const struct {
        int status;
        const char *body;
        int rc;
        const char *msg;
    } cases[] = {
        {500, "oops", EIO, "ECS container credentials: HTTP 500 from the credentials endpoint"},
        {200, "{\"AccessKeyId\":\"A\"}", EPROTO,
         "ECS container credentials: the response has no AccessKeyId or SecretAccessKey"},
        {200, "{\"AccessKeyId\":\"A\",", EPROTO,
         "ECS container credentials: the response is not valid JSON (it ends early)"},
        {200, "", EPROTO, "ECS container credentials: the response is empty"},
        {200, "[1]", EPROTO, "ECS container credentials: the response is not a JSON object"},
        {200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\",\"Token\":\"T\"}", EPROTO,
         "ECS container credentials: temporary credentials without an Expiration"},
        {200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"} x", EPROTO,
         "ECS container credentials: the response is not valid JSON (unexpected character)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cred cr;
        err_t err = {0};
        struct fakehttp *f = fakehttp_start();
        fakehttp_add(f, "GET", "/c", cases[i].status, cases[i].body);
        set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c", "AWS_EC2_METADATA_DISABLED", "true",
                NULL);
        struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
        ck_assert_int_eq(cred_chain_get(c, &cr, &err), cases[i].rc);
        ck_assert_str_eq(err.msg, cases[i].msg);
        cred_chain_free(c);
        fakehttp_stop(f);
    }

    /* static keys (no token, no expiration) from a local credential server are fine */
    struct cred cr;
    err_t err = {0};
    struct fakehttp *f = fakehttp_start();
    fakehttp_add(f, "GET", "/c", 200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"}");
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_int_eq(cr.expiration, 0);
    cred_chain_free(c);
    fakehttp_stop(f);

    /* a token longer than struct cred holds is an error, not truncated */
    char *doc = malloc(6000);
    int n = snprintf(doc, 6000, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\",\"Token\":\"");
    memset(doc + n, 'T', 5000);
    snprintf(doc + n + 5000, 6000 - (size_t)n - 5000,
             "\",\"Expiration\":\"2030-01-01T00:00:00Z\"}");
    f = fakehttp_start();
    fakehttp_add(f, "GET", "/c", 200, doc);
    c = new_chain(NULL, fakehttp_url(f), NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EOVERFLOW);
    ck_assert_str_eq(err.msg, "ECS container credentials: Token is longer than 4095 bytes");
    cred_chain_free(c);
    fakehttp_stop(f);
    free(doc);
}
END_TEST

/* ---- 4. IMDSv2 ---------------------------------------------------------------------------- */

#define ROLES "/latest/meta-data/iam/security-credentials/"

START_TEST(test_imds)
{
    struct cred cr;
    err_t err = {0};
    char *doc = fixture("imds-role-credentials.json");
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    fakehttp_imds(f, "imds-session-token");
    fakehttp_add(f, "GET", ROLES, 200, "my-role\n");
    fakehttp_add(f, "GET", ROLES "my-role", 200, doc);
    struct http_opts ho = {.log = &keep_logger};
    struct http_client *http = http_client_new(&ho);
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakehttp_url(f), NULL);
    struct cred_chain *c = new_chain(NULL, NULL, http);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, FIX_AKID);
    ck_assert_str_eq(cr.secret_key, FIX_SECRET);
    ck_assert_str_eq(cr.session_token, FIX_TOKEN);
    ck_assert_int_eq(cr.expiration, FIX_EXP);
    ck_assert_str_eq(cred_chain_source(c), "imds");

    ck_assert_uint_eq(fakehttp_count(f), 3);
    const struct fakehttp_request *r = fakehttp_request(f, 0);
    ck_assert_str_eq(r->method, "PUT");
    ck_assert_str_eq(r->path, "/latest/api/token");
    ck_assert_str_eq(fakehttp_header(r, "X-aws-ec2-metadata-token-ttl-seconds"), "21600");
    r = fakehttp_request(f, 1);
    ck_assert_str_eq(r->method, "GET");
    ck_assert_str_eq(r->path, ROLES);
    ck_assert_str_eq(fakehttp_header(r, "X-aws-ec2-metadata-token"), "imds-session-token");
    r = fakehttp_request(f, 2);
    ck_assert_str_eq(r->method, "GET");
    ck_assert_str_eq(r->path, ROLES "my-role");
    ck_assert_str_eq(fakehttp_header(r, "X-aws-ec2-metadata-token"), "imds-session-token");

    ck_assert_ptr_nonnull(strstr(g_log, "AWS credentials from imds"));
    ck_assert_ptr_null(strstr(g_log, FIX_SECRET));
    ck_assert_ptr_null(strstr(g_log, FIX_TOKEN));
    ck_assert_ptr_null(strstr(g_log, "imds-session-token"));
    cred_wipe(&cr);
    cred_chain_free(c);
    http_client_free(http);
    fakehttp_stop(f);
    free(doc);
}
END_TEST

/* The fake follows IMDSv2: no token, no metadata; the TTL header is required. */
START_TEST(test_fake_imds_rules)
{
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    fakehttp_imds(f, "tok");
    fakehttp_add(f, "GET", ROLES, 200, "my-role\n");
    struct http_client *h = http_client_new(NULL);
    static const struct {
        const char *method, *path, *hname, *hvalue;
        long status;
    } cases[] = {
        {"GET", ROLES, NULL, NULL, 401},
        {"GET", ROLES, "X-aws-ec2-metadata-token", "other", 401},
        {"GET", ROLES, "X-aws-ec2-metadata-token", "tok", 200},
        {"PUT", "/latest/api/token", NULL, NULL, 400},
        {"PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "21601", 400},
        {"PUT", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "60", 200},
        {"PUT", "/latest/api/token", "X-Forwarded-For", "1.2.3.4", 403},
        {"GET", "/latest/api/token", "X-aws-ec2-metadata-token-ttl-seconds", "60", 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char url[256];
        err_t err = {0};
        struct http_header hd[2] = {{cases[i].hname, cases[i].hvalue},
                                    {"X-aws-ec2-metadata-token-ttl-seconds", "60"}};
        bool xff = cases[i].hname && strcmp(cases[i].hname, "X-Forwarded-For") == 0;
        snprintf(url, sizeof(url), "%s%s", fakehttp_url(f), cases[i].path);
        struct http_request req = {.method = cases[i].method,
                                   .url = url,
                                   .headers = hd,
                                   .nheaders = cases[i].hname ? (xff ? 2 : 1) : 0};
        struct http_stream *s;
        ck_assert_int_eq(http_stream_open(h, &req, &s, &err), 0);
        ck_assert_msg(http_stream_status(s) == cases[i].status, "case %zu: %ld", i,
                      http_stream_status(s));
        http_stream_close(s);
    }
    http_client_free(h);
    fakehttp_stop(f);
}
END_TEST

START_TEST(test_imds_disabled)
{
    struct cred cr;
    err_t err = {0};
    struct fakehttp *f = fakehttp_start();
    ck_assert_ptr_nonnull(f);
    fakehttp_imds(f, "tok");
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakehttp_url(f), "AWS_EC2_METADATA_DISABLED",
            "TRUE", NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    ck_assert_str_eq(err.msg, NO_CREDS);
    ck_assert_uint_eq(fakehttp_count(f), 0);
    cred_chain_free(c);
    fakehttp_stop(f);
}
END_TEST

START_TEST(test_imds_no_role)
{
    struct cred cr;
    err_t err = {0};
    struct fakehttp *f = fakehttp_start();
    fakehttp_imds(f, "tok");
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakehttp_url(f), NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    ck_assert_str_eq(err.msg, "IMDS: no IAM role is attached to this instance (HTTP 404)");
    cred_chain_free(c);
    fakehttp_stop(f);

    /* a role whose credentials are not "Success" */
    f = fakehttp_start();
    fakehttp_imds(f, "tok");
    fakehttp_add(f, "GET", ROLES, 200, "r1\nr2\n");
    fakehttp_add(f, "GET", ROLES "r1", 200, "{\"Code\":\"AssumeRoleUnauthorizedAccess\"}");
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakehttp_url(f), NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EPROTO);
    ck_assert_str_eq(err.msg, "IMDS: the role credentials have Code AssumeRoleUnauthorizedAccess, "
                              "not Success");
    cred_chain_free(c);
    fakehttp_stop(f);

    /* a metadata service that refuses tokens (here: no token rules, so 404 on the PUT) */
    f = fakehttp_start();
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", fakehttp_url(f), NULL);
    c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EIO);
    ck_assert_str_eq(err.msg, "IMDS: HTTP 404 on the session token request");
    cred_chain_free(c);
    fakehttp_stop(f);
}
END_TEST

static double elapsed_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

START_TEST(test_imds_absent)
{
    struct cred cr;
    err_t err = {0};
    char url[64];
    struct timespec t0;

    /* nothing listens: refused at once */
    struct fakehttp *f = fakehttp_start();
    snprintf(url, sizeof(url), "%s", fakehttp_url(f));
    fakehttp_stop(f);
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, NULL);
    struct cred_chain *c = new_chain(NULL, NULL, NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    ck_assert_str_eq(err.msg, NO_CREDS);
    cred_chain_free(c);

    /* something accepts and never answers: the chain gives up after about 2 s */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s, 4), 0);
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &al), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, NULL);
    c = new_chain(NULL, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), ENOENT);
    ck_assert_str_eq(err.msg, NO_CREDS);
    double took = elapsed_since(&t0);
    ck_assert_msg(took < 4.0, "IMDS wait took %.1f s", took);
    cred_chain_free(c);
    close(s);
}
END_TEST

/* ---- refresh ------------------------------------------------------------------------------ */

static void ecs_doc(char *dst, size_t cap, const char *akid, time_t exp)
{
    struct tm tm;
    char iso[32];
    gmtime_r(&exp, &tm);
    strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(dst, cap,
             "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"S-%s\",\"Token\":\"T-%s\","
             "\"Expiration\":\"%s\"}",
             akid, akid, akid, iso);
}

START_TEST(test_refresh)
{
    struct cred cr;
    err_t err = {0};
    char doc[512];
    g_now = 1800000000;
    struct fakehttp *f = fakehttp_start();
    ecs_doc(doc, sizeof(doc), "AKID1", g_now + 240); /* 4 minutes: inside the window */
    fakehttp_add(f, "GET", "/c", 200, doc);
    ecs_doc(doc, sizeof(doc), "AKID2", g_now + 3600);
    fakehttp_add(f, "GET", "/c", 200, doc);
    set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c", "AWS_EC2_METADATA_DISABLED", "true",
            NULL);
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKID1");
    ck_assert_uint_eq(fakehttp_count(f), 1);
    /* expires in 240 s < 300 s: the next get fetches again */
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKID2");
    ck_assert_str_eq(cr.secret_key, "S-AKID2");
    ck_assert_str_eq(cr.session_token, "T-AKID2");
    ck_assert_uint_eq(fakehttp_count(f), 2);
    /* an hour ahead: cached */
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_uint_eq(fakehttp_count(f), 2);
    /* 55 minutes later it is time again */
    g_now += 3600 - 299;
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_uint_eq(fakehttp_count(f), 3);
    cred_chain_free(c);
    fakehttp_stop(f);
}
END_TEST

START_TEST(test_refresh_failure)
{
    struct cred cr;
    err_t err = {0};
    char doc[512];
    g_now = 1800000000;
    struct fakehttp *f = fakehttp_start();
    ecs_doc(doc, sizeof(doc), "AKID1", g_now + 200);
    fakehttp_add(f, "GET", "/c", 200, doc);
    fakehttp_add(f, "GET", "/c", 503, "busy");
    set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c", "AWS_EC2_METADATA_DISABLED", "true",
            NULL);
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    /* the refresh fails, but the credentials are still good for 200 s: keep them */
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), 0);
    ck_assert_str_eq(cr.access_key, "AKID1");
    ck_assert_uint_eq(fakehttp_count(f), 2);
    /* once they have expired, the failure is the answer */
    g_now += 200;
    ck_assert_int_eq(cred_chain_get(c, &cr, &err), EIO);
    ck_assert_str_eq(err.msg, "refreshing expired AWS credentials: ECS container credentials: "
                              "HTTP 503 from the credentials endpoint");
    cred_chain_free(c);
    fakehttp_stop(f);
}
END_TEST

/* ---- threads ------------------------------------------------------------------------------ */

struct getter {
    struct cred_chain *c;
    int rc;
    char akid[128];
};

static void *get_thread(void *arg)
{
    struct getter *g = arg;
    struct cred cr;
    err_t err = {0};
    g->rc = cred_chain_get(g->c, &cr, &err);
    snprintf(g->akid, sizeof(g->akid), "%s", g->rc ? "" : cr.access_key);
    cred_wipe(&cr);
    return NULL;
}

START_TEST(test_threads)
{
    char *doc = fixture("ecs-container-credentials.json");
    struct fakehttp *f = fakehttp_start();
    fakehttp_add(f, "GET", "/c", 200, doc);
    set_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/c", "AWS_EC2_METADATA_DISABLED", "true",
            NULL);
    struct cred_chain *c = new_chain(NULL, fakehttp_url(f), NULL);
    pthread_t t[8];
    struct getter g[8];
    for (int i = 0; i < 8; i++) {
        g[i] = (struct getter){.c = c};
        ck_assert_int_eq(pthread_create(&t[i], NULL, get_thread, &g[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(g[i].rc, 0);
        ck_assert_str_eq(g[i].akid, FIX_AKID);
    }
    ck_assert_uint_eq(fakehttp_count(f), 1); /* resolved once, under the lock */
    cred_chain_free(c);
    fakehttp_stop(f);
    free(doc);
}
END_TEST

/* Every test starts from the same globals, with or without CK_FORK. */
static void setup(void)
{
    g_env[0] = NULL;
    g_now = FIX_NOW;
    g_log[0] = '\0';
    g_home[0] = '\0';
}

static void teardown(void)
{
    remove_home();
}

START_TEST(test_wipe)
{
    struct cred cr, zero;
    memset(&zero, 0, sizeof(zero));
    memset(&cr, 'x', sizeof(cr));
    cred_wipe(&cr);
    ck_assert_mem_eq(&cr, &zero, sizeof(cr));
    cred_wipe(NULL);
    cred_chain_free(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cred");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_env);
    tcase_add_test(tc, test_env_caps);
    tcase_add_test(tc, test_shared_credentials);
    tcase_add_test(tc, test_config_profile);
    tcase_add_test(tc, test_missing_profile);
    tcase_add_test(tc, test_open_file_refused);
    tcase_add_test(tc, test_ecs_relative);
    tcase_add_test(tc, test_ecs_full_token_file);
    tcase_add_loop_test(tc, test_ecs_full_refused, 0, sizeof(full_uris) / sizeof(full_uris[0]));
    tcase_add_test(tc, test_ecs_full_refused_message);
    tcase_add_test(tc, test_expiration_formats);
    tcase_add_test(tc, test_ecs_bad_documents);
    tcase_add_test(tc, test_imds);
    tcase_add_test(tc, test_fake_imds_rules);
    tcase_add_test(tc, test_imds_disabled);
    tcase_add_test(tc, test_imds_no_role);
    tcase_add_test(tc, test_imds_absent);
    tcase_add_test(tc, test_refresh);
    tcase_add_test(tc, test_refresh_failure);
    tcase_add_test(tc, test_threads);
    tcase_add_test(tc, test_wipe);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
