/* source.c — what every byte source shares (see source.h): freeing one of any kind. */
#include "s3torrent/source.h"

#include <stdlib.h>

void source_free(struct source *s)
{
    if (s == NULL)
        return;
    s->ops->destroy(s);
    free(s->name);
    free(s->display);
    free(s);
}
