/* main.c — the s3torrent command: dispatches to its subcommands. */
#include "cli.h"
#include "s3torrent/version.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent COMMAND [OPTIONS] ARGS\n"
          "\n"
          "Make and inspect BitTorrent metainfo for local files, directories and S3 objects.\n"
          "\n"
          "Commands:\n"
          "  create   hash a file, a directory or an S3 object and write its .torrent\n"
          "  show     print what a .torrent holds\n"
          "  magnet   print a .torrent's magnet link\n"
          "  verify   check a file, directory or object against a .torrent, piece by piece\n"
          "  ls       list the objects under an S3 prefix\n"
          "  sync     put an up-to-date KEY.torrent beside objects in S3, with their status\n"
          "           in DynamoDB\n"
          "  status   print an object's status item\n"
          "  seed     have a Transmission daemon seed objects from an s3torrentfs mount\n"
          "  serve    serve buckets over HTTP: a web seed for private buckets, ?torrent\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help (COMMAND --help for a command's options)\n"
          "  -V, --version  show the version\n"
          "\n"
          "Exit status: 0 success, 1 failure or mismatch, 2 usage error.\n"
          "See s3torrent(1).\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("s3torrent %s\n", S3T_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "create") == 0)
        return cmd_create(argc - 1, argv + 1);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (strcmp(cmd, "magnet") == 0)
        return cmd_magnet(argc - 1, argv + 1);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(cmd, "ls") == 0)
        return cmd_ls(argc - 1, argv + 1);
    if (strcmp(cmd, "sync") == 0)
        return cmd_sync(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cmd_status(argc - 1, argv + 1);
    if (strcmp(cmd, "seed") == 0)
        return cmd_seed(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    cli_error(CLI_USAGE, "unknown command '%s' (see s3torrent --help)", cmd);
    return CLI_USAGE;
}
