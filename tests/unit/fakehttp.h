/* fakehttp.h — a scripted HTTP/1.1 server on 127.0.0.1 for unit tests: answers (method, path)
 * with canned responses, records every request, and can play the IMDSv2 and ECS token rules. */
#ifndef S3T_FAKEHTTP_H
#define S3T_FAKEHTTP_H

#include <stddef.h>

#define FAKEHTTP_MAX_HEADERS 64
#define FAKEHTTP_BODY_KEEP   65536

struct fakehttp;

/* One request as the server received it. */
struct fakehttp_request {
    char method[16];
    char path[2048]; /* the request target, query included */
    size_t nheaders;
    const char *name[FAKEHTTP_MAX_HEADERS], *value[FAKEHTTP_MAX_HEADERS];
    size_t body_len;
    char raw[16384];               /* where name[] and value[] point */
    char body[FAKEHTTP_BODY_KEEP]; /* the body's first bytes, NUL-terminated */
};

/* Binds 127.0.0.1 on a free port and serves from a thread. Returns the server, or NULL (with
 * errno) when it cannot start. Stop it with fakehttp_stop. */
struct fakehttp *fakehttp_start(void);
/* Stops the thread, closes the socket and frees everything, recorded requests included. */
void fakehttp_stop(struct fakehttp *f);
/* "http://127.0.0.1:PORT", owned by f. */
const char *fakehttp_url(const struct fakehttp *f);
int fakehttp_port(const struct fakehttp *f);

/* Scripts a response to method + path (exact, query included). Several responses for one
 * route are served in order and the last one repeats. status 0 closes the connection without
 * answering. extra_headers (may be NULL) holds "Name: value\r\n" lines; a Content-Length among
 * them replaces the body's own (for HEAD answers). Unscripted routes get
 * 404. Returns 0 or ENOMEM. The strings are copied. */
int fakehttp_add_ex(struct fakehttp *f, const char *method, const char *path, int status,
                    const char *extra_headers, const char *body);
int fakehttp_add(struct fakehttp *f, const char *method, const char *path, int status,
                 const char *body);

/* Plays IMDSv2: PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds in 1..21600
 * (else 400; 403 when X-Forwarded-For is present) and answers token; any other request
 * under /latest/ without X-aws-ec2-metadata-token: token gets 401. The string is copied. */
void fakehttp_imds(struct fakehttp *f, const char *token);
/* Plays the ECS / EKS credential endpoint: a request whose Authorization header is not
 * exactly value gets 403. The string is copied. */
void fakehttp_require_auth(struct fakehttp *f, const char *value);

/* How many requests were received so far. */
size_t fakehttp_count(struct fakehttp *f);
/* The i-th request (from 0), or NULL; valid until fakehttp_stop. */
const struct fakehttp_request *fakehttp_request(struct fakehttp *f, size_t i);
/* The value of r's first header called name (case-insensitive), or NULL. */
const char *fakehttp_header(const struct fakehttp_request *r, const char *name);

#endif
