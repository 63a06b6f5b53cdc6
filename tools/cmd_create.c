/* cmd_create.c — `s3torrent create`: hash a file into a .torrent. */
#include "cli.h"
#include "s3torrent/config.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/torrent.h"
#include "s3torrent/version.h"

#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: s3torrent create [OPTIONS] FILE|s3://BUCKET/KEY\n"
          "\n"
          "Hash a local file, or an S3 object streamed through parallel ranged GETs (no\n"
          "temporary file), and write its torrent.\n"
          "\n"
          "  -l, --piece-length SIZE    piece length, a power of two from 16K to 256M\n"
          "                             (default: smallest >= 256K giving <= 2048 pieces,\n"
          "                             at most 16M)\n"
          "  -m, --meta-version V       v1 (default), v2 or hybrid (BEP 52)\n"
          "  -t, --tracker URL          announce URL; repeat for more, each its own tier\n"
          "                             (default: $TRACKERS, comma-separated, else a\n"
          "                             built-in list of public UDP trackers)\n"
          "  -w, --webseed BASE         web seed: BASE + the percent-encoded key (the file\n"
          "                             name for local files) (BEP 19)\n"
          "                             (default: $WEBSEED_BASE)\n"
          "  -p, --private              set the private flag\n"
          "  -s, --source S             set the info 'source' field\n"
          "  -c, --comment C            set the comment\n"
          "  -d, --no-date              omit the creation date (default: the file's mtime)\n"
          "  -n, --name N               torrent name (default: the file's name)\n"
          "  -j, --threads N            hashing threads (default: all cores)\n"
          "  -o, --output OUT           write to OUT, '-' for stdout (default: NAME.torrent)\n"
          "  -f, --force                overwrite OUT if it exists\n"
          "      --json                 print info-hashes, piece length, piece count and size\n"
          "                             as JSON on stdout\n"
          "  -h, --help                 show this help\n"
          "\n" CLI_S3_HELP,
          f);
}

enum { OPT_JSON = 256 };

int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        {"piece-length", required_argument, NULL, 'l'},
        {"meta-version", required_argument, NULL, 'm'},
        {"tracker", required_argument, NULL, 't'},
        {"webseed", required_argument, NULL, 'w'},
        {"private", no_argument, NULL, 'p'},
        {"source", required_argument, NULL, 's'},
        {"comment", required_argument, NULL, 'c'},
        {"no-date", no_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 'j'},
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        CLI_S3_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    struct torrent_opts to = {.meta = TORRENT_V1, .created_by = S3T_CREATED_BY};
    const char **trackers = calloc((size_t)argc + 1, sizeof(char *));
    const char **webbases = calloc((size_t)argc + 1, sizeof(char *));
    char **env_trackers = NULL, **webseeds = NULL;
    size_t ntrackers = 0, nwebbases = 0;
    const char *out = NULL, *name = NULL;
    bool force = false, json = false;
    struct source *src = NULL;
    struct cli_s3 g = {0};
    char *key = NULL;
    struct buf tb;
    int rc = CLI_USAGE, c;
    err_t err = {0};

    buf_init(&tb, (size_t)1 << 30);
    if (trackers == NULL || webbases == NULL) {
        rc = cli_error(CLI_FAIL, "out of memory");
        goto out;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "l:m:t:w:ps:c:dn:j:o:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cli_parse_size(optarg, &to.piece_length) != 0 ||
                to.piece_length < TORRENT_MIN_PIECE || to.piece_length > TORRENT_MAX_PIECE ||
                (to.piece_length & (to.piece_length - 1)) != 0) {
                cli_error(CLI_USAGE, "--piece-length '%s' is not a power of two from 16K to 256M",
                          optarg);
                goto out;
            }
            break;
        case 'm':
            if (torrent_parse_meta(optarg, &to.meta) != 0) {
                cli_error(CLI_USAGE, "--meta-version must be v1, v2 or hybrid, not '%s'", optarg);
                goto out;
            }
            break;
        case 't':
            trackers[ntrackers++] = optarg;
            break;
        case 'w':
            webbases[nwebbases++] = optarg;
            break;
        case 'p':
            to.private_ = true;
            break;
        case 's':
            to.source = optarg;
            break;
        case 'c':
            to.comment = optarg;
            break;
        case 'd':
            to.no_date = true;
            break;
        case 'n':
            name = optarg;
            break;
        case 'j':
            if (cli_parse_uint(optarg, 256, &to.threads) != 0) {
                cli_error(CLI_USAGE, "--threads must be a number from 1 to 256, not '%s'", optarg);
                goto out;
            }
            break;
        case 'o':
            out = optarg;
            break;
        case 'f':
            force = true;
            break;
        case OPT_JSON:
            json = true;
            break;
        case 'h':
            usage(stdout);
            rc = CLI_OK;
            goto out;
        default:
            if (cli_s3_option(&g, c, optarg))
                break;
            usage(stderr);
            goto out;
        }
    }
    if (optind != argc - 1) {
        cli_error(CLI_USAGE, "create needs exactly one FILE or s3://BUCKET/KEY (see s3torrent "
                             "create --help)");
        goto out;
    }
    if (name != NULL && torrent_check_name(name, &err) != 0) {
        cli_error(CLI_USAGE, "--name: %s", err.msg);
        goto out;
    }
    rc = CLI_FAIL;
    if (cli_open_source(&g, argv[optind], &src, &key, &err) != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }
    if (name == NULL)
        name = src->name;
    if (src->size == 0) {
        /* DESIGN §3: say so, don't fail */
        fprintf(stderr, "s3torrent: %s: zero-byte object, nothing to share; no torrent written\n",
                src->display);
        rc = CLI_OK;
        goto out;
    }
    if (ntrackers == 0) {
        const char *env = getenv("TRACKERS");
        if (env != NULL && *env) {
            ntrackers = config_split_list(env, &env_trackers);
            to.trackers = (const char *const *)env_trackers;
        } else {
            to.trackers = config_default_trackers;
            ntrackers = config_default_ntrackers;
        }
    } else {
        to.trackers = trackers;
    }
    to.ntrackers = ntrackers;
    if (nwebbases == 0 && getenv("WEBSEED_BASE") && *getenv("WEBSEED_BASE"))
        webbases[nwebbases++] = getenv("WEBSEED_BASE");
    if (nwebbases > 0) {
        if ((webseeds = calloc(nwebbases, sizeof(char *))) == NULL) {
            cli_error(CLI_FAIL, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < nwebbases; i++)
            if ((webseeds[i] = torrent_webseed_url(webbases[i], strncmp(argv[optind], "s3://", 5) == 0 ? key : name)) == NULL) {
                cli_error(CLI_FAIL, "out of memory");
                goto out;
            }
        to.webseeds = (const char *const *)webseeds;
        to.nwebseeds = nwebbases;
    }
    to.creation_date = src->mtime;

    struct cli_progress prog;
    cli_progress_init(&prog, "hashing");
    to.progress = cli_progress_cb;
    to.progress_arg = &prog;
    uint8_t ih1[20], ih2[32];
    int hr = torrent_create(src, name, &to, &tb, ih1, ih2, &err);
    cli_progress_end(&prog);
    if (hr != 0) {
        cli_error(CLI_FAIL, "%s", err.msg);
        goto out;
    }

    char *outpath = NULL;
    if (out == NULL) {
        size_t n = strlen(name) + sizeof(".torrent");
        if ((outpath = malloc(n)) == NULL) {
            cli_error(CLI_FAIL, "out of memory");
            goto out;
        }
        snprintf(outpath, n, "%s.torrent", name);
        out = outpath;
    }
    int wr = cli_write_output(out, tb.data, tb.len, force);
    if (wr == 0 && json) {
        char hex[65];
        uint64_t plen = to.piece_length ? to.piece_length : torrent_auto_piece_length(src->size);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        json_object_object_add(o, "output", json_object_new_string(out));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)src->size));
        json_object_object_add(o, "piece_length", json_object_new_int64((int64_t)plen));
        json_object_object_add(o, "piece_count",
                               json_object_new_int64((int64_t)((src->size + plen - 1) / plen)));
        json_object_object_add(o, "meta_version",
                               json_object_new_string(torrent_meta_name(to.meta)));
        if (to.meta & TORRENT_V1)
            json_object_object_add(o, "info_hash",
                                   json_object_new_string(metainfo_hex(ih1, 20, hex)));
        if (to.meta & TORRENT_V2)
            json_object_object_add(o, "info_hash_v2",
                                   json_object_new_string(metainfo_hex(ih2, 32, hex)));
        json_object_object_add(o, "torrent_size", json_object_new_int64((int64_t)tb.len));
        FILE *jf = strcmp(out, "-") == 0 ? stderr : stdout;
        fprintf(jf, "%s\n",
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
    }
    free(outpath);
    rc = wr == 0 ? CLI_OK : CLI_FAIL;
out:
    if (webseeds)
        for (size_t i = 0; i < nwebbases; i++)
            free(webseeds[i]);
    free(webseeds);
    free(env_trackers);
    free(trackers);
    free(webbases);
    buf_free(&tb);
    source_free(src);
    free(key);
    cli_s3_close(&g);
    return rc;
}
