/* fuzz_recipe.c — libFuzzer target for the one recipe builder (lib/torrent/recipe.c) and size parser
 * (lib/base/config.c) every front end feeds: the first byte picks a field, the rest is the value;
 * each is accepted or refused with a one-line reason, never a crash, and an accepted recipe
 * lays out a torrent whose size torrent_size knows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/config.h"
#include "s3torrent/recipe.h"
#include "s3torrent/torrent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    char *v = malloc(size);
    memcpy(v, data + 1, size - 1);
    v[size - 1] = '\0';
    err_t err = {0};
    uint64_t n;
    if (config_parse_size("size", v, &n, &err) != 0 &&
        (err.msg[0] == '\0' || strchr(err.msg, '\n')))
        abort();
    struct recipe b;
    recipe_init(&b);
    enum recipe_field f = (enum recipe_field)(data[0] % (RECIPE_NO_DATE + 1));
    memset(&err, 0, sizeof(err));
    if (recipe_set(&b, f, "field", v, &err) != 0 && (err.msg[0] == '\0' || strchr(err.msg, '\n')))
        abort();
    recipe_finish(&b);
    struct torrent_opts o;
    char *ws = NULL;
    uint64_t plen;
    if (torrent_recipe_opts(&b.r, "dir/key.bin", 1700000000, &o, &ws) == 0 &&
        torrent_resolve(1000000, &o, &plen, NULL) == 0 && torrent_size("key.bin", 1000000, &o) == 0)
        abort();
    free(ws);
    recipe_free(&b);
    free(v);
    return 0;
}
