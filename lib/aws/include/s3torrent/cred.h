/* cred.h — AWS credentials and the provider chain, in the AWS order: environment, shared
 * credentials/config files, ECS container credentials, EC2 IMDSv2. Refreshed before expiry;
 * thread-safe; secrets are never logged. */
#ifndef S3TORRENT_CRED_H
#define S3TORRENT_CRED_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "s3torrent/err.h"
#include "s3torrent/http.h"

struct cred {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* empty when none */
    int64_t expiration;       /* Unix seconds; 0 when the credentials do not expire */
};

struct cred_chain_opts {
    /* NULL: $AWS_PROFILE, else "default". When set (--profile), the environment keys are
     * skipped, as the AWS CLI does, and a missing profile is an error. */
    const char *profile;
    struct http_client *http; /* for the ECS provider (and the logger); may be NULL */
    /* injectable for tests; NULL: getenv and time() */
    const char *(*getenv)(const char *name);
    time_t (*now)(void);
    /* tests only: replaces http://169.254.170.2 in front of
     * $AWS_CONTAINER_CREDENTIALS_RELATIVE_URI; NULL in programs */
    const char *ecs_relative_base;
};

struct cred_chain;

/* Returns a new chain (nothing is fetched yet; the strings in opts are copied, opts->http must
 * outlive the chain), or NULL when out of memory. */
struct cred_chain *cred_chain_new(const struct cred_chain_opts *opts);
void cred_chain_free(struct cred_chain *c);

/* Copies current credentials into *out, resolving the chain on first use and refreshing
 * expiring ones (5 minutes ahead). Returns 0, ENOENT when no provider has credentials, EACCES
 * for a credentials file others can read, or another errno with err set. The caller wipes
 * *out with cred_wipe when done. */
int cred_chain_get(struct cred_chain *c, struct cred *out, err_t *err);

/* Which provider answered ("environment", "shared-file", "ecs", "imds"), or NULL. */
const char *cred_chain_source(const struct cred_chain *c);

/* Fills out from an ECS or IMDS credential document (JSON: AccessKeyId, SecretAccessKey,
 * Token, Expiration; with want_code, Code must be "Success"); what names the source in
 * messages. Returns 0 or EPROTO/ENOMEM/EOVERFLOW with err set. */
int cred_parse_document(const char *what, const uint8_t *body, size_t len, bool want_code,
                        struct cred *out, err_t *err);

/* Zeroes a credential in memory. */
void cred_wipe(struct cred *c);

#endif
