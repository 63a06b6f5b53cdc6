/* cmd_ls.c — `s3torrent ls`: list objects under an S3 prefix (what sync would consider). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent ls [OPTIONS] s3://BUCKET[/PREFIX]\n"
          "\n"
          "List the objects under PREFIX: size, Last-Modified (UTC), ETag and key, one per line;\n"
          "sub-prefixes as 'PRE name/' unless --recursive. Keys are printed as decoded from\n"
          "S3's URL-encoded listing; control characters are shown as \\xNN.\n"
          "\n"
          "  -r, --recursive   list every key below PREFIX (no delimiter)\n"
          "  -h, --help        show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

static void print_key(const char *k)
{
    cli_print_escaped(stdout, k);
    putchar('\n');
}

static int on_object(void *ctx, const struct s3xml_object *o, err_t *err)
{
    (void)ctx;
    (void)err;
    char when[32] = "-";
    time_t t = (time_t)o->last_modified;
    struct tm tm;
    if (o->last_modified && gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%12llu %s %-34s ", (unsigned long long)o->size, when, o->etag);
    print_key(o->key);
    return 0;
}

static int on_prefix(void *ctx, const char *prefix, size_t len, err_t *err)
{
    (void)ctx;
    (void)len;
    (void)err;
    printf("%12s %20s %-34s ", "PRE", "", "");
    print_key(prefix);
    return 0;
}

int cmd_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"recursive", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct cli_s3 g = {0};
    bool recursive = false;
    int c, rc = CLI_FAIL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "rh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            recursive = true;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            if (cli_s3_option(&g, c, optarg))
                break;
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_error(CLI_USAGE, "ls needs one s3://BUCKET[/PREFIX] (see s3torrent ls --help)");
    char *bucket = NULL, *prefix = NULL;
    err_t err = {0};
    if (s3_parse_uri(argv[optind], &bucket, &prefix, &err) != 0)
        return cli_error(CLI_USAGE, "%s", err.msg);
    struct s3_client *s3;
    if (cli_s3_connect(&g, &s3, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    struct s3xml_list_opts lo = {.on_object = on_object, .on_prefix = on_prefix};
    if (s3_list(s3, bucket, prefix, recursive ? NULL : "/", &lo, &err) != 0) {
        fflush(stdout);
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    rc = CLI_OK;
out:
    free(bucket);
    free(prefix);
    cli_s3_close(&g);
    return rc;
}
