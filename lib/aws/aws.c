/* aws.c — the signed AWS request both clients send (docs/DESIGN.md §8): credentials, SigV4 and
 * the trace id on every attempt, the standard retry mode, and the one table of AWS error codes. */
#include "s3torrent/aws.h"
#include "s3torrent/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 32

struct aws {
    struct aws_config cfg;
    pthread_mutex_t lock; /* guards key_cache and trace */
    struct sigv4_key_cache key_cache;
    char trace[256]; /* X-Amzn-Trace-Id, "" for none */
};

/* ---- the error table ---- */

#define HINT_KEY_ID                                                                                \
    "; the access key id is unknown to the server: check the credentials in use "                  \
    "(AWS_ACCESS_KEY_ID, AWS_PROFILE)"
#define HINT_SIGNATURE                                                                             \
    "; the signature was refused: check the secret access key that goes with the access key id"
#define HINT_TOKEN "; the session token is expired or invalid: refresh the credentials"
#define HINT_CLOCK                                                                                 \
    "; the local clock is off by more than S3 allows (15 minutes): fix the system clock (NTP)"

/* Codes (S3's, DynamoDB's, and the throttling and transient codes of the standard retry mode)
 * whose errno does not follow from the HTTP status alone, that decide retrying, or that the
 * user can act on. Codes starting with "Throttl" are throttling without being listed. */
static const struct {
    const char *code;
    int errnum;
    bool retry;
    const char *hint;
} codes[] = {
    {"NoSuchKey", ENOENT, false, NULL},
    {"NoSuchBucket", ENOENT, false, NULL},
    {"NoSuchUpload", ENOENT, false, NULL},
    {"NoSuchVersion", ENOENT, false, NULL},
    {"ResourceNotFoundException", ENOENT, false, NULL},
    {"TableNotFoundException", ENOENT, false, NULL},
    {"AccessDenied", EACCES, false, NULL},
    {"AccessDeniedException", EACCES, false, NULL},
    {"AllAccessDisabled", EACCES, false, NULL},
    {"AccountProblem", EACCES, false, NULL},
    {"InvalidAccessKeyId", EACCES, false, HINT_KEY_ID},
    {"UnrecognizedClientException", EACCES, false, HINT_KEY_ID},
    {"SignatureDoesNotMatch", EACCES, false, HINT_SIGNATURE},
    {"InvalidSignatureException", EACCES, false, HINT_SIGNATURE},
    {"IncompleteSignatureException", EACCES, false, NULL},
    {"MissingAuthenticationTokenException", EACCES, false, NULL},
    {"InvalidToken", EACCES, false, HINT_TOKEN},
    {"ExpiredToken", EACCES, false, HINT_TOKEN},
    {"ExpiredTokenException", EACCES, false, HINT_TOKEN},
    {"TokenRefreshRequired", EACCES, false, HINT_TOKEN},
    {"MissingSecurityHeader", EACCES, false, NULL},
    {"InvalidObjectState", EACCES, false, NULL},
    {"PreconditionFailed", ESTALE, false, NULL},
    {"ConditionalRequestConflict", ESTALE, false, NULL},
    /* a DynamoDB condition said no: the caller's answer, not a failure */
    {"ConditionalCheckFailedException", EEXIST, false, NULL},
    {"TransactionCanceledException", ECANCELED, false, NULL},
    {"TransactionConflictException", EBUSY, false, NULL},
    {"ResourceInUseException", EBUSY, false, NULL},
    {"RequestTimeTooSkewed", ETIME, false, HINT_CLOCK},
    {"InvalidRange", EINVAL, false, NULL},
    {"ValidationException", EINVAL, false, NULL},
    {"SerializationException", EINVAL, false, NULL},
    {"EntityTooLarge", EFBIG, false, NULL},
    {"ItemCollectionSizeLimitExceededException", EFBIG, false, NULL},
    {"KeyTooLongError", ENAMETOOLONG, false, NULL},
    {"NotImplemented", ENOSYS, false, NULL},
    {"InternalError", EIO, true, NULL},
    {"InternalServerError", EIO, true, NULL},
    {"RequestTimeout", ETIMEDOUT, true, NULL},
    {"RequestTimeoutException", ETIMEDOUT, true, NULL},
    {"ServiceUnavailable", EAGAIN, true, NULL},
    {"ServiceUnavailableException", EAGAIN, true, NULL},
    {"SlowDown", EAGAIN, true, NULL},
    {"PriorRequestNotComplete", EAGAIN, true, NULL},
    {"TooManyRequestsException", EAGAIN, true, NULL},
    {"ProvisionedThroughputExceededException", EAGAIN, true, NULL},
    {"TransactionInProgressException", EAGAIN, true, NULL},
    {"RequestLimitExceeded", EAGAIN, true, NULL},
    {"BandwidthLimitExceeded", EAGAIN, true, NULL},
    {"LimitExceededException", EAGAIN, true, NULL},
    {"RequestThrottled", EAGAIN, true, NULL},
    {"RequestThrottledException", EAGAIN, true, NULL},
    {"EC2ThrottledException", EAGAIN, true, NULL},
};

static int find_code(const char *code)
{
    if (code == NULL || *code == '\0')
        return -1;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(codes[i].code, code) == 0)
            return (int)i;
    return -1;
}

int aws_error_errno(int http_status, const char *code, bool *retryable)
{
    int e = EIO, i;
    bool retry = false;
    if (code != NULL && strncmp(code, "Throttl", 7) == 0) { /* Throttling, ThrottlingException */
        e = EAGAIN;
        retry = true;
        goto out;
    }
    if ((i = find_code(code)) >= 0) {
        e = codes[i].errnum;
        retry = codes[i].retry;
        goto out;
    }
    switch (http_status) {
    case 400:
    case 411:
    case 416:
        e = EINVAL;
        break;
    case 401:
    case 403:
        e = EACCES;
        break;
    case 404:
        e = ENOENT;
        break;
    case 405:
        e = EPERM;
        break;
    case 408:
        e = ETIMEDOUT;
        retry = true;
        break;
    case 409:
        e = EBUSY;
        break;
    case 412:
        e = ESTALE;
        break;
    case 429:
    case 503:
        e = EAGAIN;
        retry = true;
        break;
    case 501:
        e = ENOSYS;
        break;
    default:
        e = EIO;
        retry = http_status >= 500 && http_status <= 599;
        break;
    }
out:
    if (retryable != NULL)
        *retryable = retry;
    return e;
}

const char *aws_error_hint(const char *code)
{
    int i = find_code(code);
    return i >= 0 && codes[i].hint ? codes[i].hint : "";
}

bool aws_date_skewed(const struct http_stream *hs, time_t now, int64_t *server)
{
    int64_t t;
    if (util_http_date(http_stream_header(hs, "date"), &t) != 0 || t <= 0)
        return false;
    if (server)
        *server = t;
    return (t > now ? t - now : now - t) > 15 * 60;
}

/* ---- the request ---- */

int aws_new(const struct aws_config *cfg, struct aws **out, err_t *err)
{
    struct aws *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (a == NULL)
        return err_set(err, ENOMEM, "out of memory");
    a->cfg = *cfg;
    pthread_mutex_init(&a->lock, NULL);
    aws_set_trace_id(a, cfg->trace_id);
    *out = a;
    return 0;
}

void aws_set_trace_id(struct aws *a, const char *trace_id)
{
    pthread_mutex_lock(&a->lock);
    snprintf(a->trace, sizeof(a->trace), "%s", trace_id ? trace_id : "");
    pthread_mutex_unlock(&a->lock);
}

void aws_free(struct aws *a)
{
    if (a == NULL)
        return;
    sigv4_key_cache_clear(&a->key_cache);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

/* The signer of a's requests with credentials c (borrowed), at a's time. */
static struct sigv4_signer signer_of(struct aws *a, const struct cred *c)
{
    return (struct sigv4_signer){
        .creds = {c->access_key, c->secret_key, c->session_token},
        .region = a->cfg.region,
        .service = a->cfg.service,
        .now = a->cfg.now ? a->cfg.now() : time(NULL),
        .opt = a->cfg.opt,
        .cache = &a->key_cache,
    };
}

/* Fetches credentials, signs and sends one attempt. Returns 0 with *out open (any status), or a
 * positive errno with err set. */
static int send_signed(struct aws *a, const struct aws_request *r, struct http_stream **out,
                       err_t *err)
{
    struct sigv4_pair sh[MAX_HEADERS + 1];
    struct http_header hh[MAX_HEADERS + SIGV4_MAX_ADD + 1];
    struct sigv4_result sig;
    struct cred cred;
    size_t nh = 0, nsh = 0;
    int rc = 0;

    memset(&sig, 0, sizeof(sig));
    memset(&cred, 0, sizeof(cred));
    if (r->nheaders > MAX_HEADERS)
        return err_set(err, EINVAL, "too many headers");
    sh[nsh++] = (struct sigv4_pair){"Host", r->host};
    for (size_t i = 0; i < r->nheaders; i++) {
        sh[nsh++] = r->headers[i];
        hh[nh++] = (struct http_header){r->headers[i].name, r->headers[i].value};
    }
    if (a->cfg.creds) {
        if ((rc = cred_chain_get(a->cfg.creds, &cred, err)))
            goto out;
        struct sigv4_request sr = {
            .method = r->method,
            .path = r->path,
            .path_is_raw = r->path_is_raw,
            .query = r->query,
            .nquery = r->nquery,
            .headers = sh,
            .nheaders = nsh,
            .payload_hash = r->payload_hash,
            .payload = r->body,
            .payload_len = r->body_len,
        };
        struct sigv4_signer signer = signer_of(a, &cred);
        pthread_mutex_lock(&a->lock);
        rc = sigv4_sign_headers(&signer, &sr, &sig, err);
        pthread_mutex_unlock(&a->lock);
        if (rc)
            goto out;
        for (size_t i = 0; i < sig.nadd; i++)
            hh[nh++] = (struct http_header){sig.add[i].name, sig.add[i].value};
    }
    char trace[sizeof(a->trace)];
    pthread_mutex_lock(&a->lock);
    memcpy(trace, a->trace, sizeof(trace));
    pthread_mutex_unlock(&a->lock);
    if (trace[0])
        hh[nh++] = (struct http_header){"X-Amzn-Trace-Id", trace};
    struct http_request hr = {
        .method = r->method,
        .url = r->url,
        .headers = hh,
        .nheaders = nh,
        .body = r->body,
        .body_len = r->body_len,
    };
    rc = http_stream_open(a->cfg.http, &hr, out, err);
out:
    sigv4_result_free(&sig);
    cred_wipe(&cred);
    return rc;
}

struct attempt_ctx {
    struct aws *a;
    const struct aws_request *r;
    struct http_stream **out;
};

/* One attempt for http_retry_run: sign, send, and let the request's callbacks judge. */
static int attempt(void *arg, bool *retry, err_t *err)
{
    struct attempt_ctx *x = arg;
    const struct aws_request *r = x->r;
    struct http_stream *hs = NULL;
    int rc = send_signed(x->a, r, &hs, err);
    if (rc != 0) {
        *retry = http_transport_retryable(rc);
        if (r->what)
            err_prefix(err, "%s", r->what);
        return rc;
    }
    long status = http_stream_status(hs);
    if (status >= 200 && status < 300 && r->ok == NULL) {
        *x->out = hs;
        return 0;
    }
    if (status >= 200 && status < 300) {
        rc = r->ok(r->ctx, hs, retry, err);
    } else if (r->fail) {
        rc = r->fail(r->ctx, hs, retry, err);
    } else {
        rc = aws_error_errno((int)status, NULL, retry);
        err_set(err, rc, "%s: HTTP %ld", r->what ? r->what : r->url, status);
    }
    http_stream_close(hs);
    return rc;
}

int aws_send(struct aws *a, const struct aws_request *r, struct http_stream **out, err_t *err)
{
    struct attempt_ctx x = {a, r, out};
    struct http_retry p = {r->attempts ? r->attempts : 1, a->cfg.http, a->cfg.random,
                           a->cfg.sleep_ms};
    if (out)
        *out = NULL;
    if (r->ok == NULL && out == NULL)
        return err_set(err, EINVAL, "aws_send: nowhere to put the answer");
    return http_retry_run(&p, attempt, &x, err);
}

int aws_presign(struct aws *a, const struct aws_request *r, unsigned expires, struct buf *b,
                err_t *err)
{
    struct sigv4_result sig;
    struct cred cred;
    int rc = 0;
    memset(&sig, 0, sizeof(sig));
    memset(&cred, 0, sizeof(cred));
    buf_put(b, r->url, strlen(r->url));
    if (a->cfg.creds) {
        if ((rc = cred_chain_get(a->cfg.creds, &cred, err)))
            goto out;
        struct sigv4_pair host = {"Host", r->host};
        struct sigv4_request sr = {
            .method = r->method,
            .path = r->path,
            .path_is_raw = r->path_is_raw,
            .query = r->query,
            .nquery = r->nquery,
            .headers = &host,
            .nheaders = 1,
            .payload_hash = SIGV4_UNSIGNED_PAYLOAD,
        };
        struct sigv4_signer signer = signer_of(a, &cred);
        pthread_mutex_lock(&a->lock);
        rc = sigv4_presign(&signer, &sr, expires, &sig, err);
        pthread_mutex_unlock(&a->lock);
        if (rc)
            goto out;
        buf_put(b, r->nquery > 0 ? "&" : "?", 1);
        buf_put(b, sig.query, strlen(sig.query));
    }
    buf_put(b, "", 1);
    if (b->err)
        rc = err_set(err, b->err, "the presigned URL is too large");
out:
    sigv4_result_free(&sig);
    cred_wipe(&cred);
    if (rc && r->what)
        err_prefix(err, "%s", r->what);
    return rc;
}
