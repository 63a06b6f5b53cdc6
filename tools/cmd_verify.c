/* cmd_verify.c — `s3torrent verify`: check a file, or a directory for a multi-file torrent, against
 * a torrent, piece by piece. */
#include "cli.h"
#include "s3torrent/verify.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent verify [OPTIONS] TORRENT FILE|DIR|s3://BUCKET/KEY\n"
          "\n"
          "Hash the data (a local file or an S3 object) and compare every piece with TORRENT\n"
          "(v1 SHA-1 pieces, v2 piece layer and pieces root). For a multi-file torrent, DIR is\n"
          "the directory holding its files (the one it was made from). Exits 0 when all match,\n"
          "1 naming the first bad file and piece otherwise.\n"
          "\n"
          "  -j, --threads N   hashing threads (default: all cores)\n"
          "  -q, --quiet       print nothing on success\n"
          "  -h, --help        show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

/* A torrent's path, refused when a segment is empty, "." or "..": it must stay below DIR. */
static bool safe_path(const char *p)
{
    for (const char *seg = p;;) {
        size_t len = strcspn(seg, "/");
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return false;
        if (seg[len] == '\0')
            return true;
        seg += len + 1;
    }
}

/* Verifies the files of multi-file torrent m below dir. Returns an exit code. */
static int verify_dir(const struct metainfo *m, const char *dir, const struct verify_opts *vo,
                      bool quiet)
{
    struct source_part *parts = calloc(m->nfiles ? m->nfiles : 1, sizeof(*parts));
    err_t err = {0};
    int rc = CLI_FAIL;
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--; /* "dir/" names files as "dir/a", not "dir//a" */
    if (parts == NULL)
        return cli_error(CLI_FAIL, "out of memory");
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct metainfo_file *f = &m->files[i];
        struct stat st;
        parts[i].size = f->length;
        if (f->pad)
            continue;
        if (!safe_path(f->path)) {
            cli_error(CLI_FAIL, "%s: the torrent's path '%s' leaves the directory", dir, f->path);
            goto out;
        }
        size_t n = dlen + 1 + strlen(f->path) + 1;
        if ((parts[i].path = malloc(n)) == NULL) {
            cli_error(CLI_FAIL, "out of memory");
            goto out;
        }
        snprintf(parts[i].path, n, "%.*s/%s", (int)dlen, dir, f->path);
        parts[i].arg = parts[i].path;
        parts[i].open = source_file_opener;
        if (stat(parts[i].path, &st) != 0) {
            cli_error(CLI_FAIL, "%s: %s", parts[i].path, strerror(errno));
            goto out;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != f->length) {
            cli_error(CLI_FAIL, "%s: size differs: the torrent says %llu bytes, the data has %llu",
                      parts[i].path, (unsigned long long)f->length, (unsigned long long)st.st_size);
            goto out;
        }
    }
    size_t bad_file;
    uint64_t bad_piece;
    if (verify_files(m, parts, vo, &bad_file, &bad_piece, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    size_t nfiles = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        nfiles += !m->files[i].pad;
    if (!quiet)
        printf("%s: OK, %llu pieces of %zu files match\n", dir, (unsigned long long)m->npieces,
               nfiles);
    rc = CLI_OK;
out:
    for (size_t i = 0; i < m->nfiles; i++)
        free(parts[i].path);
    free(parts);
    return rc;
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
    struct cli_progress prog;
    cli_progress_init(&prog, "verifying");
    vo.progress = cli_progress_cb;
    vo.progress_arg = &prog;
    if (metainfo_load(argv[optind], &m, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (m->multi) {
        if (strncmp(argv[optind + 1], "s3://", 5) == 0) {
            cli_error(CLI_FAIL, "%s: a multi-file torrent is verified against a local directory",
                      argv[optind + 1]);
            goto out;
        }
        rc = verify_dir(m, argv[optind + 1], &vo, quiet);
        cli_progress_end(&prog);
        goto out;
    }
    if (cli_open_source(&g, argv[optind + 1], &src, &key, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
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
