/* cmd_show.c — `s3torrent show` and `s3torrent magnet`: read a .torrent and report it. */
#include "cli.h"
#include "s3torrent/magnet.h"
#include "s3torrent/metainfo.h"
#include "s3torrent/util.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void show_usage(FILE *f)
{
    fputs("Usage: s3torrent show [--json] TORRENT\n"
          "\n"
          "Print what TORRENT holds: what transmission-show prints (name, info-hash, creator,\n"
          "date, comment, pieces, size, privacy, trackers by tier, web seeds, files), plus the\n"
          "v2 data (meta version, SHA-256 info-hash, each file's pieces root).\n"
          "\n"
          "      --json   print the same as one JSON object\n"
          "  -h, --help   show this help\n",
          f);
}

static void magnet_usage(FILE *f)
{
    fputs("Usage: s3torrent magnet [--v1-only] TORRENT\n"
          "\n"
          "Print TORRENT's magnet link: xt=urn:btih (v1) and/or xt=urn:btmh:1220... (v2),\n"
          "dn, tr for every tracker and ws for every web seed.\n"
          "\n"
          "  -1, --v1-only  xt=urn:btih alone, also for a hybrid torrent: the form every client\n"
          "                 takes (rTorrent 0.9 refuses a magnet with both, aria2 1.36 misreads\n"
          "                 a hybrid's); a v2-only torrent has none (exit status 1)\n"
          "  -h, --help     show this help\n",
          f);
}

static const char *meta_name(const struct metainfo *m)
{
    return m->v1 && m->v2 ? "hybrid" : m->v2 ? "v2" : "v1";
}

static void print_text(const char *path, const struct metainfo *m)
{
    char hex[65], h1[32], h2[32];
    printf("Name: %s\nFile: %s\n\nGENERAL\n\n  Name: %s\n", m->name, path, m->name);
    if (m->v1)
        printf("  Hash: %s\n", util_hex(m->ih1, 20, hex));
    if (m->v2)
        printf("  Hash v2: %s\n", util_hex(m->ih2, 32, hex));
    printf("  Meta version: %s\n", meta_name(m));
    printf("  Created by: %s\n", m->created_by ? m->created_by : "Unknown");
    if (m->has_date) {
        time_t t = (time_t)m->creation_date;
        char when[64];
        struct tm tm;
        if (localtime_r(&t, &tm) && strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm))
            printf("  Created on: %s\n", when);
        else
            printf("  Created on: %lld\n", (long long)m->creation_date);
    } else {
        printf("  Created on: Unknown\n");
    }
    if (m->comment)
        printf("  Comment: %s\n", m->comment);
    if (m->source)
        printf("  Source: %s\n", m->source);
    printf("  Piece Count: %llu\n", (unsigned long long)m->npieces);
    printf("  Piece Size: %s\n", cli_human(m->piece_length, true, h1, sizeof(h1)));
    printf("  Total Size: %s\n", cli_human(m->total_size, false, h2, sizeof(h2)));
    printf("  Privacy: %s\n", m->private_ ? "Private torrent" : "Public torrent");
    printf("\nTRACKERS\n");
    for (size_t i = 0; i < m->ntrackers; i++) {
        if (i == 0 || m->tiers[i] != m->tiers[i - 1])
            printf("\n  Tier #%zu\n", m->tiers[i] + 1);
        printf("  %s\n", m->trackers[i]);
    }
    if (m->nwebseeds > 0) {
        printf("\nWEBSEEDS\n\n");
        for (size_t i = 0; i < m->nwebseeds; i++)
            printf("  %s\n", m->webseeds[i]);
    }
    printf("\nFILES\n\n");
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct metainfo_file *f = &m->files[i];
        if (f->pad)
            continue;
        printf("  %s%s%s (%s)\n", m->multi ? m->name : "", m->multi ? "/" : "", f->path,
               cli_human(f->length, false, h1, sizeof(h1)));
        if (f->has_root)
            printf("    pieces root: %s\n", util_hex(f->root, 32, hex));
    }
}

static void print_json(const char *path, const struct metainfo *m)
{
    char hex[65];
    json_object *o = json_object_new_object(), *a;
    json_object_object_add(o, "file", json_object_new_string(path));
    json_object_object_add(o, "name", json_object_new_string(m->name));
    json_object_object_add(o, "meta_version", json_object_new_string(meta_name(m)));
    if (m->v1)
        json_object_object_add(o, "info_hash", json_object_new_string(util_hex(m->ih1, 20, hex)));
    if (m->v2)
        json_object_object_add(o, "info_hash_v2",
                               json_object_new_string(util_hex(m->ih2, 32, hex)));
    if (m->created_by)
        json_object_object_add(o, "created_by", json_object_new_string(m->created_by));
    if (m->has_date)
        json_object_object_add(o, "creation_date", json_object_new_int64(m->creation_date));
    if (m->comment)
        json_object_object_add(o, "comment", json_object_new_string(m->comment));
    if (m->source)
        json_object_object_add(o, "source", json_object_new_string(m->source));
    json_object_object_add(o, "piece_count", json_object_new_int64((int64_t)m->npieces));
    json_object_object_add(o, "piece_length", json_object_new_int64((int64_t)m->piece_length));
    json_object_object_add(o, "total_size", json_object_new_int64((int64_t)m->total_size));
    json_object_object_add(o, "private", json_object_new_boolean(m->private_));
    a = json_object_new_array();
    for (size_t i = 0; i < m->ntrackers; i++) {
        if (i == 0 || m->tiers[i] != m->tiers[i - 1])
            json_object_array_add(a, json_object_new_array());
        json_object_array_add(json_object_array_get_idx(a, json_object_array_length(a) - 1),
                              json_object_new_string(m->trackers[i]));
    }
    json_object_object_add(o, "trackers", a);
    a = json_object_new_array();
    for (size_t i = 0; i < m->nwebseeds; i++)
        json_object_array_add(a, json_object_new_string(m->webseeds[i]));
    json_object_object_add(o, "webseeds", a);
    a = json_object_new_array();
    for (size_t i = 0; i < m->nfiles; i++) {
        const struct metainfo_file *f = &m->files[i];
        if (f->pad)
            continue;
        json_object *fo = json_object_new_object();
        json_object_object_add(fo, "path", json_object_new_string(f->path));
        json_object_object_add(fo, "length", json_object_new_int64((int64_t)f->length));
        if (f->has_root)
            json_object_object_add(fo, "pieces_root",
                                   json_object_new_string(util_hex(f->root, 32, hex)));
        json_object_array_add(a, fo);
    }
    json_object_object_add(o, "files", a);
    printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'J'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'J':
            json = true;
            break;
        case 'h':
            show_usage(stdout);
            return CLI_OK;
        default:
            show_usage(stderr);
            return CLI_USAGE;
        }
    }
    if (optind != argc - 1)
        return cli_error(CLI_USAGE, "show needs exactly one TORRENT (see s3torrent show --help)");
    struct metainfo *m;
    err_t err = {0};
    if (metainfo_load(argv[optind], &m, &err) != 0)
        return cli_error(CLI_FAIL, "%s", err.msg);
    if (json)
        print_json(argv[optind], m);
    else
        print_text(argv[optind], m);
    metainfo_free(m);
    return CLI_OK;
}

int cmd_magnet(int argc, char **argv)
{
    static const struct option opts[] = {
        {"v1-only", no_argument, NULL, '1'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool v1_only = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "1h", opts, NULL)) != -1) {
        if (c == '1') {
            v1_only = true;
            continue;
        }
        if (c == 'h') {
            magnet_usage(stdout);
            return CLI_OK;
        }
        magnet_usage(stderr);
        return CLI_USAGE;
    }
    if (optind != argc - 1)
        return cli_error(CLI_USAGE,
                         "magnet needs exactly one TORRENT (see s3torrent magnet --help)");
    struct metainfo *m;
    err_t err = {0};
    if (metainfo_load(argv[optind], &m, &err) != 0)
        return cli_error(CLI_FAIL, "%s", err.msg);
    if (v1_only && !m->v1) {
        metainfo_free(m);
        return cli_error(CLI_FAIL, "%s: a v2-only torrent has no v1 info-hash for --v1-only",
                         argv[optind]);
    }
    char *uri = v1_only ? magnet_v1_from_metainfo(m) : magnet_from_metainfo(m);
    metainfo_free(m);
    if (uri == NULL)
        return cli_error(CLI_FAIL, "out of memory");
    printf("%s\n", uri);
    free(uri);
    return CLI_OK;
}
