/* fuzz_fsconfig.c — libFuzzer target for the s3torrentfs config file: any file is settings (then
 * resolved as at mount time) or one line naming the file and the line. The input is written to
 * a scratch file, because the reader takes a path as the mount does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (path[0] == '\0')
        snprintf(path, sizeof(path), "/tmp/fuzz_fsconfig.%d", (int)getpid());
    FILE *f = fopen(path, "we");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
    struct settings_opts cmd = {0}, file;
    err_t err = {0};
    if (settings_read_file(path, &file, &err) != 0) {
        /* one line that names the file */
        if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL || strstr(err.msg, path) == NULL)
            abort();
        return 0;
    }
    cmd.bucket = "fuzz-bucket"; /* a bucket, when the file does not name one */
    struct fs_config fixed;
    struct fs_settings *live = NULL;
    if (settings_resolve(&cmd, &file, &fixed, &live, &err) == 0) {
        if (live->max_generations == 0 || live->dir_torrents > DIR_TORRENTS_MAX ||
            fixed.bucket == NULL || fixed.prefix == NULL)
            abort();
        fs_config_clear(&fixed);
        settings_free(live);
    } else if (err.msg[0] == '\0' || strchr(err.msg, '\n') != NULL) {
        abort();
    }
    settings_opts_clear(&file);
    return 0;
}
