/* jsondoc.c — strict JSON object bodies on json-c's tokener. */
#include "s3torrent/jsondoc.h"

#include <errno.h>
#include <stdint.h>

int jsondoc_parse_any(const char *what, const void *body, size_t len, size_t max, int depth,
                      json_object **out, err_t *err)
{
    struct json_tokener *tok = NULL;
    json_object *doc = NULL;
    int rc = 0;
    *out = NULL;
    if (len > max || len > INT32_MAX)
        return err_set(err, EFBIG, "%s: the response is over the %zu-byte cap", what, max);
    if (len == 0)
        return err_set(err, EPROTO, "%s: the response is empty", what);
    if ((tok = json_tokener_new_ex(depth)) == NULL)
        return err_set(err, ENOMEM, "%s: out of memory", what);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    doc = json_tokener_parse_ex(tok, body, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    if (doc == NULL || je != json_tokener_success) {
        rc = err_set(err, EPROTO, "%s: the response is not valid JSON (%s)", what,
                     je == json_tokener_continue ? "it ends early" : json_tokener_error_desc(je));
        goto out;
    }
    for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
        char ch = ((const char *)body)[i];
        if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
            rc = err_set(err, EPROTO, "%s: the response has data after its JSON document", what);
            goto out;
        }
    }
    *out = doc;
    doc = NULL;
out:
    json_object_put(doc);
    json_tokener_free(tok);
    return rc;
}

int jsondoc_parse(const char *what, const void *body, size_t len, size_t max, int depth,
                  json_object **out, err_t *err)
{
    int rc = jsondoc_parse_any(what, body, len, max, depth, out, err);
    if (rc == 0 && !json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        rc = err_set(err, EPROTO, "%s: the response is not a JSON object", what);
    }
    return rc;
}
