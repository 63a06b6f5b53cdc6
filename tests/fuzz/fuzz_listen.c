/* fuzz_listen.c — libFuzzer target for the request handler of `s3torrent-lambda --listen`
 * (listen.c, events_parse underneath), called as the server calls it: on the headers, then on
 * the body, then on the work's tally. Any request gets exactly one answer of a known status
 * with one line of text, or work that is valid S3 / EventBridge items.
 *
 * Input: a JSON body alone (POSTed to "/"), or "METHOD PATH\n" then header lines ("Name:
 * value\n"; Content-Length is the one read, "X-Over-Cap:" stands for a body past the cap) up to
 * an empty line, then the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "events.h"
#include "listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE 512

/* The next line of [*p, end) into out (NUL-terminated, cut at MAX_LINE - 1); false at the end. */
static bool next_line(const char **p, const char *end, char out[MAX_LINE])
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = (size_t)((nl ? nl : end) - *p);
    memcpy(out, *p, n < MAX_LINE ? n : MAX_LINE - 1);
    out[n < MAX_LINE ? n : MAX_LINE - 1] = '\0';
    *p = nl ? nl + 1 : end;
    return true;
}

static void check_text(const struct listen_reply *r)
{
    if (r->text[0] == '\0' || strlen(r->text) >= sizeof(r->text))
        abort();
    for (const char *c = r->text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
}

static void check_printable(const char *s, size_t max)
{
    char out[LISTEN_MAX_PATH + 8];
    listen_printable(s, max, out, sizeof(out));
    if (strlen(out) > max + 3)
        abort();
    for (const char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char method[MAX_LINE] = "POST", path[MAX_LINE] = "/", cl[MAX_LINE], line[MAX_LINE];
    const char *p = (const char *)data, *end = p + size;
    struct listen_request rq = {.method = method, .path = path};
    if (size > 0 && data[0] != '{' && next_line(&p, end, line)) {
        char *sp = strchr(line, ' ');
        if (sp)
            *sp = '\0';
        strcpy(method, line);
        strcpy(path, sp ? sp + 1 : "");
        while (next_line(&p, end, line) && line[0] != '\0' && line[0] != '\r') {
            if (strncasecmp(line, "Content-Length:", 15) == 0) {
                strcpy(cl, line + 15 + strspn(line + 15, " \t"));
                rq.content_length = cl;
            } else if (strncasecmp(line, "X-Over-Cap:", 11) == 0) {
                rq.over_cap = true;
            }
        }
    }
    check_printable(rq.method, 16);
    check_printable(rq.path, LISTEN_MAX_PATH);

    /* the headers alone */
    struct listen_reply r;
    enum listen_next next = listen_decide(&rq, NULL, &r);
    if (next == LISTEN_REPLY) {
        if (r.status != 405 && r.status != 413)
            abort();
        check_text(&r);
    } else if (next != LISTEN_READ_BODY) {
        abort();
    }

    /* the body (the server asks only after LISTEN_READ_BODY; the answer must not differ) */
    struct events_batch b;
    rq.body = rq.over_cap ? "" : p;
    rq.len = rq.over_cap ? 0 : (size_t)(end - p);
    enum listen_next then = listen_decide(&rq, &b, &r);
    if (next == LISTEN_REPLY && then != LISTEN_REPLY)
        abort();
    if (then == LISTEN_REPLY) {
        if (r.status != 400 && r.status != 405 && r.status != 413 && r.status != 500)
            abort();
        if (b.n != 0 || b.items != NULL)
            abort();
        check_text(&r);
        return 0;
    }
    if (then != LISTEN_WORK || (b.kind != EVENTS_S3 && b.kind != EVENTS_EVENTBRIDGE))
        abort();

    /* the work, as outcomes and a tally of them */
    struct events_outcome *outs = calloc(b.n ? b.n : 1, sizeof(*outs));
    if (outs == NULL)
        abort();
    struct listen_tally t = {.objects = b.n, .ignored = b.ignored};
    for (size_t i = 0; i < b.n; i++) {
        const struct events_item *it = &b.items[i];
        if (it->error != NULL || it->bucket == NULL || it->key == NULL || it->key[0] == '\0' ||
            strlen(it->key) > EVENTS_MAX_KEY || strchr(it->bucket, '/') != NULL)
            abort();
        enum events_outcome_code c = (enum events_outcome_code)((i + size) % 5);
        outs[i] = (struct events_outcome){c, "failed", "", "x"};
        if (c == EVENTS_DONE) {
            t.done++;
        } else if (c == EVENTS_SKIPPED) {
            t.skipped++;
        } else {
            t.failed++;
            switch ((i + data[0]) % 3) {
            case 0:
                t.recorded++;
                break;
            case 1:
                t.unrecorded++;
                t.unrecorded_retry += c != EVENTS_PERMANENT;
                break;
            default:
                t.record_errors++;
                strcpy(t.record_error, it->key[0] == 'a' ? "" : "status: connection refused");
            }
        }
    }
    listen_after(&t, 0, NULL, &r);
    if (r.status != (t.record_errors || t.unrecorded_retry ? 500u : 200u))
        abort();
    check_text(&r);
    json_object *resp = NULL;
    bool fail;
    if (events_response(&b, outs, &resp, &fail) != 0 || resp == NULL)
        abort();
    json_object_put(resp);
    free(outs);
    events_free(&b);
    return 0;
}
