/* config.c — shared defaults and environment parsing. */
#include "s3torrent/config.h"

#include <stdlib.h>
#include <string.h>

const char *const config_default_trackers[] = {
    "udp://tracker.opentrackr.org:1337/announce",
    "udp://open.stealth.si:80/announce",
    "udp://tracker.torrent.eu.org:451/announce",
};
const size_t config_default_ntrackers =
    sizeof(config_default_trackers) / sizeof(config_default_trackers[0]);

size_t config_split_list(const char *s, char ***out)
{
    size_t len = strlen(s), max = 1;
    for (const char *p = s; *p; p++)
        max += *p == ',';
    /* the pointer array and a copy of the text share one block */
    char **v = malloc(max * sizeof(char *) + len + 1);
    size_t n = 0;
    *out = v;
    if (v == NULL)
        return 0;
    char *text = (char *)(v + max);
    memcpy(text, s, len + 1);
    for (char *tok = text; tok != NULL;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (*tok)
            v[n++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    return n;
}
