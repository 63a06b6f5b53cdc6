/* test_bencode.c — the strict decoder against every case of tests/data/bencode/cases.tsv
 * (libtorrent's test_bdecode verdicts), plus spans and the encoder. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "s3torrent/bencode.h"
#include "testutil.h"

/* Decodes the C escapes used in the TSV's first column (\0, \\, \t, \n). */
static size_t unescape(const char *s, uint8_t *out)
{
    size_t n = 0;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            out[n++] = *s == '0' ? 0 : *s == 't' ? '\t' : *s == 'n' ? '\n' : (uint8_t)*s;
        } else {
            out[n++] = (uint8_t)*s;
        }
    }
    return n;
}

/* Builds the inputs that the TSV describes by formula (its rows whose input starts with '('
 * or '"'), keyed by the libtorrent test name in column 4. */
static uint8_t *generated(const char *source, size_t *len, struct bencode_limits *lim)
{
    uint8_t *p;
    if (strcmp(source, "depth_limit") == 0) {
        p = malloc(2048);
        memset(p, 'l', 1024);
        memset(p + 1024, 'e', 1024);
        *len = 2048;
        return p;
    }
    if (strcmp(source, "item_limit") == 0) {
        *len = 1 + 2 * 5119 + 1;
        p = malloc(*len);
        p[0] = 'l';
        for (size_t i = 0; i < 5119; i++)
            memcpy(p + 1 + 2 * i, "0:", 2);
        p[*len - 1] = 'e';
        lim->max_tokens = 1000;
        return p;
    }
    if (strcmp(source, "long_string_100000000") == 0) {
        *len = 10 + 100000000;
        p = malloc(*len);
        memcpy(p, "100000000:", 10);
        memset(p + 10, '_', 100000000);
        return p;
    }
    ck_abort_msg("no generator for %s", source);
    return NULL;
}

START_TEST(test_cases_tsv)
{
    size_t len;
    char *tsv = (char *)tu_read_data("bencode/cases.tsv", &len);
    int ok_seen = 0, reject_seen = 0;
    char *save = NULL;
    for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || strncmp(line, "input\t", 6) == 0)
            continue;
        char *cols[4] = {0};
        char *p = line;
        for (int i = 0; i < 4 && p; i++) {
            cols[i] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
        }
        ck_assert_msg(cols[3] != NULL, "malformed row: %s", line);
        struct bencode_limits lim = BENCODE_DEFAULT_LIMITS;
        uint8_t *in;
        size_t n;
        if (cols[0][0] == '(' || cols[0][0] == '"') {
            in = generated(cols[3], &n, &lim);
        } else {
            in = malloc(strlen(cols[0]) + 1);
            n = unescape(cols[0], in);
        }
        struct bencode_doc doc;
        err_t err = {0};
        int rc = bencode_decode(in, n, &lim, &doc, &err);
        if (strcmp(cols[1], "ok") == 0) {
            ck_assert_msg(rc == 0, "'%s' (%s) should decode: %s", cols[0], cols[3], err.msg);
            bencode_doc_free(&doc);
            ok_seen++;
        } else {
            ck_assert_msg(rc != 0, "'%s' (%s: %s) should be rejected", cols[0], cols[1], cols[2]);
            ck_assert_msg(err.msg[0] != '\0', "rejection of '%s' has no reason", cols[0]);
            reject_seen++;
        }
        free(in);
    }
    free(tsv);
    /* the file has 8 accepted and 29 rejected rows: make sure none were skipped */
    ck_assert_int_eq(ok_seen, 8);
    ck_assert_int_eq(reject_seen, 29);
}
END_TEST

START_TEST(test_spans_and_lookup)
{
    const char *s = "d4:infod4:name1:xe3:zzzli1ei-2eee";
    struct bencode_doc doc;
    err_t err = {0};
    ck_assert_int_eq(bencode_decode((const uint8_t *)s, strlen(s), NULL, &doc, &err), 0);
    const struct bencode_node *info = bencode_dict_get(&doc, &doc.nodes[0], "info");
    ck_assert_ptr_nonnull(info);
    ck_assert_int_eq(info->type, BENCODE_DICT);
    ck_assert_int_eq((int)(info->end - info->start), (int)strlen("d4:name1:xe"));
    ck_assert_int_eq(memcmp(s + info->start, "d4:name1:xe", info->end - info->start), 0);
    const struct bencode_node *l = bencode_dict_get(&doc, &doc.nodes[0], "zzz");
    const struct bencode_node *a = bencode_child(&doc, l);
    const struct bencode_node *b = bencode_sibling(&doc, l, a);
    ck_assert_int_eq(a->ival, 1);
    ck_assert_int_eq(b->ival, -2);
    ck_assert_ptr_null(bencode_sibling(&doc, l, b));
    ck_assert_ptr_null(bencode_dict_get(&doc, &doc.nodes[0], "nope"));
    bencode_doc_free(&doc);
}
END_TEST

START_TEST(test_rejections_have_reasons)
{
    static const struct {
        const char *in;
        const char *reason;
    } cases[] = {
        {"i-0e", "negative zero"},
        {"d1:bi1e1:ai2ee", "unsorted dictionary key"},
        {"d1:ai1e1:ai2ee", "duplicate dictionary key"},
        {"i1ei2e", "trailing data"},
        {"i9223372036854775808e", "number too large"},
        {"", "empty input"},
        {"x", "unexpected byte"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bencode_doc doc;
        err_t err = {0};
        ck_assert_int_ne(
            bencode_decode((const uint8_t *)cases[i].in, strlen(cases[i].in), NULL, &doc, &err), 0);
        ck_assert_msg(strstr(err.msg, cases[i].reason) != NULL, "'%s': got '%s'", cases[i].in,
                      err.msg);
    }
}
END_TEST

START_TEST(test_encoder_round_trip)
{
    struct buf b;
    buf_init(&b, 1024);
    bencode_begin_dict(&b);
    bencode_put_cstr(&b, "a");
    bencode_put_int(&b, INT64_MIN);
    bencode_put_cstr(&b, "b");
    bencode_begin_list(&b);
    bencode_put_str(&b, "\0x", 2);
    bencode_end(&b);
    bencode_end(&b);
    ck_assert_int_eq(b.err, 0);
    const char want[] = "d1:ai-9223372036854775808e1:bl2:\0xee";
    ck_assert_uint_eq(b.len, sizeof(want) - 1);
    ck_assert_int_eq(memcmp(b.data, want, b.len), 0);
    struct bencode_doc doc;
    ck_assert_int_eq(bencode_decode(b.data, b.len, NULL, &doc, NULL), 0);
    bencode_doc_free(&doc);
    buf_free(&b);

    struct buf small;
    buf_init(&small, 4);
    ck_assert_int_ne(bencode_put_cstr(&small, "hello"), 0);
    buf_free(&small);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bencode");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_cases_tsv);
    tcase_add_test(tc, test_spans_and_lookup);
    tcase_add_test(tc, test_rejections_have_reasons);
    tcase_add_test(tc, test_encoder_round_trip);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
