/* cmd_verify.c — `s3torrent verify`: check a file against a torrent, piece by piece. */
#include "cli.h"
#include "s3torrent/verify.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent verify [OPTIONS] TORRENT FILE|s3://BUCKET/KEY\n"
          "\n"
          "Hash the data (a local file or an S3 object) and compare every piece with TORRENT (v1 SHA-1 pieces, v2 piece layer and\n"
          "pieces root). Exits 0 when all match, 1 naming the first bad piece otherwise.\n"
          "\n"
          "  -j, --threads N   hashing threads (default: all cores)\n"
          "  -q, --quiet       print nothing on success\n"
          "  -h, --help        show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct verify_opts vo = {0};
    struct cli_s3 g = {0};
    char *key = NULL;
    bool quiet = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "j:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            if (cli_parse_uint(optarg, 256, &vo.threads) != 0)
                return cli_error(CLI_USAGE, "--threads must be a number from 1 to 256, not '%s'",
                                 optarg);
            break;
        case 'q':
            quiet = true;
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
    if (optind != argc - 2)
        return cli_error(CLI_USAGE, "verify needs TORRENT and FILE (see s3torrent verify --help)");
    struct metainfo *m = NULL;
    struct source *src = NULL;
    err_t err = {0};
    uint64_t bad;
    int rc = CLI_FAIL;
    if (metainfo_load(argv[optind], &m, &err) != 0 ||
        cli_open_source(&g, argv[optind + 1], &src, &key, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    struct cli_progress prog;
    cli_progress_init(&prog, "verifying");
    vo.progress = cli_progress_cb;
    vo.progress_arg = &prog;
    int vr = verify_source(m, src, &vo, &bad, &err);
    cli_progress_end(&prog);
    if (vr != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (!quiet)
        printf("%s: OK, %llu pieces match\n", src->display, (unsigned long long)m->npieces);
    rc = CLI_OK;
out:
    source_free(src);
    metainfo_free(m);
    free(key);
    cli_s3_close(&g);
    return rc;
}
