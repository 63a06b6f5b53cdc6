/* awsfix.c — the shared fixture of the AWS client tests; see awsfix.h. */
#include "awsfix.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

struct awsfix awsfix;

static const char *example_env(const char *name)
{
    if (strcmp(name, "AWS_ACCESS_KEY_ID") == 0)
        return "AKIDEXAMPLE";
    if (strcmp(name, "AWS_SECRET_ACCESS_KEY") == 0)
        return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    return NULL;
}

double awsfix_half(void)
{
    return 0.5;
}

void awsfix_record_sleep(long ms)
{
    if (awsfix.nsleeps < sizeof awsfix.sleeps / sizeof awsfix.sleeps[0])
        awsfix.sleeps[awsfix.nsleeps++] = ms;
}

void awsfix_setup(void)
{
    unsetenv("AWS_MAX_ATTEMPTS");
    memset(&awsfix, 0, sizeof awsfix);
    awsfix.fake = fakehttp_start();
    ck_assert_ptr_nonnull(awsfix.fake);
    awsfix.http = http_client_new(NULL);
    ck_assert_ptr_nonnull(awsfix.http);
    struct cred_chain_opts co = {.getenv = example_env, .http = awsfix.http};
    awsfix.creds = cred_chain_new(&co);
    ck_assert_ptr_nonnull(awsfix.creds);
}

void awsfix_teardown(void)
{
    cred_chain_free(awsfix.creds);
    http_client_free(awsfix.http);
    fakehttp_stop(awsfix.fake);
    memset(&awsfix, 0, sizeof awsfix);
}
