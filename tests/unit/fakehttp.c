/* fakehttp.c — a one-thread, one-connection-at-a-time HTTP/1.1 server for unit tests; every
 * response says "Connection: close", so clients never depend on keep-alive here. */
#include "fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_REQUESTS 256
#define MAX_BODY     (1024 * 1024)
#define IO_WAIT_MS   5000

struct route {
    char *method, *path, *headers, *body;
    int status;
    bool served;
    struct route *next;
};

struct fakehttp {
    int lfd, wake[2];
    int port;
    char url[64];
    pthread_t thread;
    pthread_mutex_t lock;
    struct route *routes, **tail;
    char *imds_token, *auth;
    struct fakehttp_request *reqs[MAX_REQUESTS];
    size_t nreq;
};

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Waits until fd is readable; false on timeout or error. */
static bool wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, IO_WAIT_MS);
    while (r < 0 && errno == EINTR);
    return r > 0;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *headers, const char *body)
{
    char head[4096], length[64] = "";
    size_t bl = body ? strlen(body) : 0;
    /* a scripted Content-Length wins (a HEAD answer describes a body it does not send) */
    if (headers == NULL || strcasestr(headers, "Content-Length:") == NULL)
        snprintf(length, sizeof(length), "Content-Length: %zu\r\n", bl);
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d %s\r\n%sConnection: close\r\n%s\r\n",
                     status, reason(status), length, headers ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(head))
        return;
    write_all(fd, head, (size_t)n);
    write_all(fd, body ? body : "", bl);
}

/* Copies the n body bytes at p, which start at offset off of the body, into r->body as far as
 * they fit. */
static void keep_body(struct fakehttp_request *r, const char *p, size_t n, size_t off)
{
    if (off >= sizeof(r->body) - 1)
        return;
    if (n > sizeof(r->body) - 1 - off)
        n = sizeof(r->body) - 1 - off;
    memcpy(r->body + off, p, n);
    r->body[off + n] = '\0';
}

/* Reads one request head and body into r. Returns false when the client sent nothing usable. */
static bool read_request(int fd, struct fakehttp_request *r)
{
    char *raw = r->raw, *end = NULL;
    size_t n = 0;
    while (end == NULL) {
        if (n == sizeof(r->raw) - 1 || !wait_readable(fd))
            return false;
        ssize_t got = recv(fd, raw + n, sizeof(r->raw) - 1 - n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        n += (size_t)got;
        raw[n] = '\0';
        end = strstr(raw, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - raw) + 4, have_body = n - head_len;
    *end = '\0';
    /* request line */
    char *line_end = strstr(raw, "\r\n");
    if (line_end)
        *line_end = '\0';
    if (sscanf(raw, "%15s %2047s", r->method, r->path) != 2)
        return false;
    /* headers */
    char *p = line_end ? line_end + 2 : end;
    while (p < end && r->nheaders < FAKEHTTP_MAX_HEADERS) {
        char *eol = strstr(p, "\r\n");
        if (eol)
            *eol = '\0';
        char *colon = strchr(p, ':');
        if (colon) {
            *colon = '\0';
            char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            r->name[r->nheaders] = p;
            r->value[r->nheaders++] = v;
        }
        if (eol == NULL)
            break;
        p = eol + 2;
    }
    /* body: counted, and its first bytes kept */
    const char *cl = fakehttp_header(r, "Content-Length");
    size_t want = cl ? strtoul(cl, NULL, 10) : 0;
    if (want > MAX_BODY)
        return false;
    r->body_len = have_body;
    keep_body(r, end + 4, have_body, 0);
    while (r->body_len < want) {
        char sink[4096];
        if (!wait_readable(fd))
            return false;
        ssize_t got = recv(fd, sink, sizeof(sink), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return false;
        keep_body(r, sink, (size_t)got, r->body_len);
        r->body_len += (size_t)got;
    }
    return true;
}

/* The scripted route for r, or NULL. Called with the lock held. */
static struct route *pick(struct fakehttp *f, const struct fakehttp_request *r)
{
    struct route *last = NULL;
    for (struct route *rt = f->routes; rt; rt = rt->next) {
        if (strcmp(rt->method, r->method) != 0 || strcmp(rt->path, r->path) != 0)
            continue;
        if (!rt->served) {
            rt->served = true;
            return rt;
        }
        last = rt;
    }
    return last;
}

static void serve(struct fakehttp *f, int fd)
{
    struct fakehttp_request *r = calloc(1, sizeof(*r));
    if (r == NULL || !read_request(fd, r)) {
        free(r);
        return;
    }
    int status = 404;
    const char *headers = NULL, *body = NULL;
    char ttl_hdr[96];
    pthread_mutex_lock(&f->lock);
    const struct fakehttp_request *q = r;
    if (f->nreq < MAX_REQUESTS) {
        f->reqs[f->nreq++] = r;
    } else {
        free(r);
        q = NULL;
    }
    if (q == NULL) {
        status = 500;
    } else if (f->imds_token && strcmp(q->path, "/latest/api/token") == 0) {
        const char *ttl = fakehttp_header(q, "X-aws-ec2-metadata-token-ttl-seconds");
        char *e = NULL;
        long t = ttl ? strtol(ttl, &e, 10) : 0;
        if (strcmp(q->method, "PUT") != 0) {
            status = 405;
        } else if (fakehttp_header(q, "X-Forwarded-For")) {
            status = 403;
        } else if (ttl == NULL || *e != '\0' || t < 1 || t > 21600) {
            status = 400;
        } else {
            status = 200;
            snprintf(ttl_hdr, sizeof(ttl_hdr), "X-aws-ec2-metadata-token-ttl-seconds: %ld\r\n", t);
            headers = ttl_hdr;
            body = f->imds_token;
        }
    } else if (f->imds_token && strncmp(q->path, "/latest/", 8) == 0 &&
               (fakehttp_header(q, "X-aws-ec2-metadata-token") == NULL ||
                strcmp(fakehttp_header(q, "X-aws-ec2-metadata-token"), f->imds_token) != 0)) {
        status = 401;
    } else if (f->auth && (fakehttp_header(q, "Authorization") == NULL ||
                           strcmp(fakehttp_header(q, "Authorization"), f->auth) != 0)) {
        status = 403;
        body = "{\"code\":\"AccessDeniedException\",\"message\":\"bad authorization token\"}";
    } else {
        struct route *rt = pick(f, q);
        if (rt) {
            status = rt->status;
            headers = rt->headers;
            body = rt->body;
        }
    }
    /* respond under the lock: the route's strings live until fakehttp_stop anyway */
    if (status != 0)
        respond(fd, status, headers, body);
    pthread_mutex_unlock(&f->lock);
}

static void *loop(void *arg)
{
    struct fakehttp *f = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = f->lfd, .events = POLLIN},
                              {.fd = f->wake[0], .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        serve(f, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

struct fakehttp *fakehttp_start(void)
{
    struct fakehttp *f = calloc(1, sizeof(*f));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t al = sizeof(a);
    int one = 1;
    if (f == NULL)
        return NULL;
    f->lfd = f->wake[0] = f->wake[1] = -1;
    f->tail = &f->routes;
    pthread_mutex_init(&f->lock, NULL);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(f->lfd, 16) != 0 ||
        getsockname(f->lfd, (struct sockaddr *)&a, &al) != 0 || pipe(f->wake) != 0)
        goto fail;
    f->port = ntohs(a.sin_port);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    if ((errno = pthread_create(&f->thread, NULL, loop, f)) != 0)
        goto fail;
    return f;
fail:;
    int e = errno;
    if (f->lfd >= 0)
        close(f->lfd);
    if (f->wake[0] >= 0) {
        close(f->wake[0]);
        close(f->wake[1]);
    }
    pthread_mutex_destroy(&f->lock);
    free(f);
    errno = e;
    return NULL;
}

void fakehttp_stop(struct fakehttp *f)
{
    if (f == NULL)
        return;
    ssize_t w;
    do
        w = write(f->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(f->thread, NULL);
    close(f->lfd);
    close(f->wake[0]);
    close(f->wake[1]);
    for (struct route *rt = f->routes, *next; rt; rt = next) {
        next = rt->next;
        free(rt->method);
        free(rt->path);
        free(rt->headers);
        free(rt->body);
        free(rt);
    }
    for (size_t i = 0; i < f->nreq; i++)
        free(f->reqs[i]);
    free(f->imds_token);
    free(f->auth);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

const char *fakehttp_url(const struct fakehttp *f)
{
    return f->url;
}

int fakehttp_port(const struct fakehttp *f)
{
    return f->port;
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d = s ? strdup(s) : NULL;
    if (s && d == NULL)
        *oom = true;
    return d;
}

int fakehttp_add_ex(struct fakehttp *f, const char *method, const char *path, int status,
                    const char *extra_headers, const char *body)
{
    struct route *rt = calloc(1, sizeof(*rt));
    bool oom = rt == NULL;
    if (rt) {
        rt->method = dup_or_null(method, &oom);
        rt->path = dup_or_null(path, &oom);
        rt->headers = dup_or_null(extra_headers, &oom);
        rt->body = dup_or_null(body, &oom);
        rt->status = status;
    }
    if (oom) {
        if (rt) {
            free(rt->method);
            free(rt->path);
            free(rt->headers);
            free(rt->body);
            free(rt);
        }
        return ENOMEM;
    }
    pthread_mutex_lock(&f->lock);
    *f->tail = rt;
    f->tail = &rt->next;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int fakehttp_add(struct fakehttp *f, const char *method, const char *path, int status,
                 const char *body)
{
    return fakehttp_add_ex(f, method, path, status, NULL, body);
}

void fakehttp_imds(struct fakehttp *f, const char *token)
{
    char *t = strdup(token);
    pthread_mutex_lock(&f->lock);
    free(f->imds_token);
    f->imds_token = t;
    pthread_mutex_unlock(&f->lock);
}

void fakehttp_require_auth(struct fakehttp *f, const char *value)
{
    char *v = strdup(value);
    pthread_mutex_lock(&f->lock);
    free(f->auth);
    f->auth = v;
    pthread_mutex_unlock(&f->lock);
}

size_t fakehttp_count(struct fakehttp *f)
{
    pthread_mutex_lock(&f->lock);
    size_t n = f->nreq;
    pthread_mutex_unlock(&f->lock);
    return n;
}

const struct fakehttp_request *fakehttp_request(struct fakehttp *f, size_t i)
{
    pthread_mutex_lock(&f->lock);
    const struct fakehttp_request *r = i < f->nreq ? f->reqs[i] : NULL;
    pthread_mutex_unlock(&f->lock);
    return r;
}

const char *fakehttp_header(const struct fakehttp_request *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->name[i], name) == 0)
            return r->value[i];
    return NULL;
}
