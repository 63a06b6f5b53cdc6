/* awsfix.h — the fixture the AWS client tests (test_s3, test_ddb) share: a scripted local HTTP
 * server, an HTTP client, a credential chain holding AWS's documented example keys, and the
 * injected jitter and sleep that make the retry schedule observable. */
#ifndef S3T_AWSFIX_H
#define S3T_AWSFIX_H

#include <stddef.h>

#include "fakehttp.h"
#include "s3torrent/cred.h"
#include "s3torrent/http.h"

struct awsfix {
    struct fakehttp *fake;
    struct http_client *http;
    struct cred_chain *creds;
    long sleeps[16]; /* the backoff delays asked for, in ms, in order */
    size_t nsleeps;
};

/* One per test process: the sleep hook has no context argument. */
extern struct awsfix awsfix;

/* Starts the server and the clients, clears the recorded sleeps and AWS_MAX_ATTEMPTS. */
void awsfix_setup(void);
/* Frees what awsfix_setup made. */
void awsfix_teardown(void);
/* The jitter source: always 0.5, so backoff delays are exact. */
double awsfix_half(void);
/* The sleep hook: records ms instead of sleeping. */
void awsfix_record_sleep(long ms);

#endif
