/* The JSON reader (validation, tokens, paths, getters) and writer (exact text, escaping,
 * sizing, misuse). Texts are parsed from exact-size heap copies so that AddressSanitizer sees
 * any read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/json.h"
#include "writer_check.h"

#define MAX_TOKENS 64

typedef struct parsed {
    char *text;
    tether_json_token tokens[MAX_TOKENS];
    tether_json doc;
} parsed;

static tether_status parse_copy(parsed *p, const char *text)
{
    size_t n = strlen(text);
    p->text = malloc(n > 0 ? n : 1);
    assert_non_null(p->text);
    memcpy(p->text, text, n);
    return tether_json_parse(p->text, n, p->tokens, MAX_TOKENS, &p->doc);
}

static void parse_ok(parsed *p, const char *text)
{
    assert_int_equal(parse_copy(p, text), TETHER_OK);
}

static tether_status parse_status(const char *text)
{
    parsed *p = malloc(sizeof *p);
    assert_non_null(p);
    tether_status st = parse_copy(p, text);
    size_t tokens;
    /* The validator agrees with the parser. */
    tether_status v = tether_json_validate(p->text, strlen(text), &tokens);
    assert_int_equal(v, st == TETHER_JSON_TOO_MANY_TOKENS ? TETHER_OK : st);
    free(p->text);
    free(p);
    return st;
}

static size_t find(const parsed *p, const char *path)
{
    size_t at = 999;
    assert_int_equal(tether_json_find(&p->doc, 0, path, &at), TETHER_OK);
    return at;
}

static void assert_string_at(const parsed *p, size_t at, const char *expected, size_t n)
{
    char buf[64];
    size_t len = 0;
    assert_int_equal(tether_json_get_string(&p->doc, at, buf, sizeof buf, &len), TETHER_OK);
    assert_int_equal(len, n);
    assert_memory_equal(buf, expected, n);
    assert_true(tether_json_string_equals(&p->doc, at, expected, n));
}

static const char doc_text[] =
    " {\"operationId\":\"4.abc\",\"status\":\"assigned\",\n"
    "  \"registrationState\":{\"assignedHub\":\"hub.example\",\"count\":-42,"
    "\"ok\":true,\"off\":false,\"nothing\":null,\"list\":[1,[2,3],{\"k\":\"v\"}],"
    "\"payload\":{\"a\":[1,2]},\"pi\":3.25e-1},\"esc\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\","
    "\"empty\":\"\",\"big\":9223372036854775807,\"small\":-9223372036854775808,"
    "\"over\":9223372036854775808,\"a\\u002eb\":1,\"dup\":1,\"dup\":2} ";

static void reads_a_document(void **state)
{
    (void)state;
    parsed p;
    parse_ok(&p, doc_text);
    assert_int_equal(tether_json_type_of(&p.doc, 0), TETHER_JSON_OBJECT);
    assert_int_equal(tether_json_size(&p.doc, 0), 11);
    assert_int_equal(tether_json_next(&p.doc, 0), p.doc.count);

    assert_string_at(&p, find(&p, "operationId"), "4.abc", 5);
    assert_string_at(&p, find(&p, "registrationState.assignedHub"), "hub.example", 11);
    assert_string_at(&p, find(&p, "esc"), "a\"b\\c/d\n\xC3\xA9\xF0\x9F\x98\x80", 14);
    assert_string_at(&p, find(&p, "empty"), "", 0);
    assert_true(tether_json_string_equals(&p.doc, find(&p, "status"), "assigned", 8));
    assert_false(tether_json_string_equals(&p.doc, find(&p, "status"), "assigne", 7));
    assert_false(tether_json_string_equals(&p.doc, find(&p, "status"), "assignedX", 9));

    int64_t v = 0;
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "registrationState.count"), &v),
                     TETHER_OK);
    assert_int_equal(v, -42);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "big"), &v), TETHER_OK);
    assert_true(v == INT64_MAX);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "small"), &v), TETHER_OK);
    assert_true(v == INT64_MIN);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "over"), &v), TETHER_JSON_WRONG_TYPE);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "registrationState.pi"), &v),
                     TETHER_JSON_WRONG_TYPE);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "status"), &v), TETHER_JSON_WRONG_TYPE);

    bool b = false;
    assert_int_equal(tether_json_get_bool(&p.doc, find(&p, "registrationState.ok"), &b), TETHER_OK);
    assert_true(b);
    assert_int_equal(tether_json_get_bool(&p.doc, find(&p, "registrationState.off"), &b),
                     TETHER_OK);
    assert_false(b);
    assert_int_equal(tether_json_get_bool(&p.doc, find(&p, "registrationState.nothing"), &b),
                     TETHER_JSON_WRONG_TYPE);
    assert_int_equal(tether_json_type_of(&p.doc, find(&p, "registrationState.nothing")),
                     TETHER_JSON_NULL);
    assert_int_equal(tether_json_type_of(&p.doc, find(&p, "registrationState.pi")),
                     TETHER_JSON_NUMBER);

    tether_view raw;
    assert_int_equal(tether_json_get_raw(&p.doc, find(&p, "registrationState.payload"), &raw),
                     TETHER_OK);
    assert_true(tether_view_equals(raw, "{\"a\":[1,2]}"));
    assert_int_equal(tether_json_get_raw(&p.doc, find(&p, "operationId"), &raw), TETHER_OK);
    assert_true(tether_view_equals(raw, "\"4.abc\""));

    /* Arrays: elements follow one another with tether_json_next. */
    size_t list = find(&p, "registrationState.list");
    assert_int_equal(tether_json_type_of(&p.doc, list), TETHER_JSON_ARRAY);
    assert_int_equal(tether_json_size(&p.doc, list), 3);
    size_t e1 = list + 1, e2 = tether_json_next(&p.doc, e1), e3 = tether_json_next(&p.doc, e2);
    assert_int_equal(tether_json_type_of(&p.doc, e2), TETHER_JSON_ARRAY);
    assert_int_equal(tether_json_size(&p.doc, e2), 2);
    assert_int_equal(tether_json_type_of(&p.doc, e3), TETHER_JSON_OBJECT);
    size_t k;
    assert_int_equal(tether_json_member(&p.doc, e3, "k", 1, &k), TETHER_OK);
    assert_string_at(&p, k, "v", 1);

    /* Keys compare unescaped; the first of duplicate keys wins. */
    assert_int_equal(tether_json_member(&p.doc, 0, "a.b", 3, &k), TETHER_OK);
    assert_int_equal(tether_json_get_int(&p.doc, find(&p, "dup"), &v), TETHER_OK);
    assert_int_equal(v, 1);

    /* Missing members and wrong types. */
    assert_int_equal(tether_json_find(&p.doc, 0, "nope", &k), TETHER_JSON_NOT_FOUND);
    assert_int_equal(tether_json_find(&p.doc, 0, "registrationState.nope", &k),
                     TETHER_JSON_NOT_FOUND);
    assert_int_equal(tether_json_find(&p.doc, 0, "status.x", &k), TETHER_JSON_WRONG_TYPE);
    assert_int_equal(tether_json_member(&p.doc, list, "k", 1, &k), TETHER_JSON_WRONG_TYPE);
    char buf[8];
    size_t len;
    assert_int_equal(tether_json_get_string(&p.doc, list, buf, sizeof buf, &len),
                     TETHER_JSON_WRONG_TYPE);
    assert_int_equal(tether_json_type_of(&p.doc, p.doc.count), TETHER_JSON_NONE);
    assert_int_equal(tether_json_get_raw(&p.doc, p.doc.count, &raw), TETHER_JSON_NOT_FOUND);
    free(p.text);
}

static void get_string_follows_the_sizing_contract(void **state)
{
    (void)state;
    parsed p;
    parse_ok(&p, "[\"tab\\there \\u20ac\"]");
    ASSERT_WRITES("tab\there \xE2\x82\xAC", tether_json_get_string(&p.doc, 1, BUF, CAP, LEN));
    free(p.text);
}

static void top_level_scalars(void **state)
{
    (void)state;
    parsed p;
    int64_t v;
    parse_ok(&p, " 17 ");
    assert_int_equal(p.doc.count, 1);
    assert_int_equal(tether_json_get_int(&p.doc, 0, &v), TETHER_OK);
    assert_int_equal(v, 17);
    free(p.text);
    parse_ok(&p, "\"x\"");
    assert_string_at(&p, 0, "x", 1);
    free(p.text);
    parse_ok(&p, "null");
    assert_int_equal(tether_json_type_of(&p.doc, 0), TETHER_JSON_NULL);
    free(p.text);
    bool b;
    parse_ok(&p, "\nfalse\t");
    assert_int_equal(tether_json_get_bool(&p.doc, 0, &b), TETHER_OK);
    assert_false(b);
    tether_view raw;
    assert_int_equal(tether_json_get_raw(&p.doc, 0, &raw), TETHER_OK);
    assert_true(tether_view_equals(raw, "false"));
    free(p.text);
}

static void refuses_what_is_not_json(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[",
        "]",
        "[1 2]",
        "[1,]",
        "[,1]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{\"a\"}",
        "{\"a\":}",
        "{1:2}",
        "{\"a\",\"b\"}",
        "{\"a\":1 \"b\":2}",
        "[1]]",
        "[[1]",
        "{]",
        "[}",
        "tru",
        "truex",
        "nul",
        "True",
        "01",
        "-",
        "1.",
        ".5",
        "1e",
        "1e+",
        "+1",
        "0x10",
        "1 2",
        "\"abc",
        "\"a\\x\"",
        "\"a\\u12\"",
        "\"a\\u12G4\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\ud800\\u0041\"",
        "\"tab\there\"",
        "\"\xC3\"",
        "\"\xC0\xAF\"",
        "\"\xED\xA0\x80\"",
        "\"\xF5\x80\x80\x80\"",
        "\"\xE0\x80\x80\"",
        "\"\xF0\x80\x80\x80\"",
        "\"\xF4\x90\x80\x80\"",
        "\"\xE2\x82\x41\"",
        "\"\xC3\xA9\xA9\"",
        "\"\\ud800\\uzzzz\"",
        "'a'",
        "[1,,2]",
        "{\"a\":1}{}",
        "[]x",
        "NaN",
        "[Infinity]",
        "\"a\"\"b\"",
        "{\"a\":1}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tether_status st = parse_status(bad[i]);
        if (st != TETHER_JSON_MALFORMED)
            fail_msg("accepted or misread \"%s\": %s", bad[i], tether_status_name(st));
    }
    /* A NUL byte is not JSON either, inside or outside a string. */
    parsed p;
    const char nul_in[] = "[\"a\0b\"]";
    assert_int_equal(tether_json_parse(nul_in, sizeof nul_in - 1, p.tokens, MAX_TOKENS, &p.doc),
                     TETHER_JSON_MALFORMED);
    const char nul_after[] = "[1]\0";
    assert_int_equal(
        tether_json_parse(nul_after, sizeof nul_after - 1, p.tokens, MAX_TOKENS, &p.doc),
        TETHER_JSON_MALFORMED);
}

static void accepts_what_is_json(void **state)
{
    (void)state;
    static const char *const good[] = {
        "{}",
        "[]",
        "[[]]",
        "{\"\":0}",
        "-0",
        "0.0e+0",
        "1E-7",
        "[true,false,null]",
        "\"\\u0000\"",
        "\"\\uD83D\\uDE00\"",
        "\"\xF4\x8F\xBF\xBF\"",
        "\"\xE0\xA0\x80\xF0\x90\x80\x80\xED\x9F\xBF\"",
        " [ 1 , { \"a\" : [ ] } ] ",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tether_status st = parse_status(good[i]);
        if (st != TETHER_OK)
            fail_msg("refused \"%s\": %s", good[i], tether_status_name(st));
    }
}

static void nesting_is_bounded(void **state)
{
    (void)state;
    char text[2 * (TETHER_JSON_MAX_DEPTH + 1) + 1];
    for (int d = TETHER_JSON_MAX_DEPTH; d <= TETHER_JSON_MAX_DEPTH + 1; d++) {
        size_t n = 0;
        for (int i = 0; i < d; i++)
            text[n++] = '[';
        for (int i = 0; i < d; i++)
            text[n++] = ']';
        text[n] = '\0';
        assert_int_equal(parse_status(text),
                         d <= TETHER_JSON_MAX_DEPTH ? TETHER_OK : TETHER_JSON_TOO_DEEP);
    }
    /* Deep objects too, and an unclosed deep text is still refused for its depth. */
    char objects[8 * (TETHER_JSON_MAX_DEPTH + 1) + 1] = "";
    for (int i = 0; i <= TETHER_JSON_MAX_DEPTH; i++)
        strcat(objects, "{\"a\":");
    assert_int_equal(parse_status(objects), TETHER_JSON_TOO_DEEP);
}

static void token_array_is_bounded(void **state)
{
    (void)state;
    const char *text = "{\"a\":[1,2,3],\"b\":\"c\"}"; /* 8 tokens */
    tether_json_token tokens[8];
    tether_json doc;
    for (size_t max = 0; max < 8; max++) {
        assert_int_equal(tether_json_parse(text, strlen(text), max ? tokens : NULL, max, &doc),
                         TETHER_JSON_TOO_MANY_TOKENS);
        assert_int_equal(doc.count, 8);
        assert_int_equal(tether_json_type_of(&doc, 0), TETHER_JSON_NONE); /* nothing to read */
    }
    assert_int_equal(tether_json_parse(text, strlen(text), tokens, 8, &doc), TETHER_OK);
    assert_int_equal(doc.count, 8);
    size_t tokens_needed = 0;
    assert_int_equal(tether_json_validate(text, strlen(text), &tokens_needed), TETHER_OK);
    assert_int_equal(tokens_needed, 8);
}

/* ---- writer ------------------------------------------------------------------------------- */

static tether_status write_sample(char *buf, size_t cap, size_t *out_len)
{
    tether_json_writer w;
    tether_json_writer_init(&w, buf, cap);
    tether_json_write_object_begin(&w);
    tether_json_write_key(&w, "registrationId", 14);
    tether_json_write_string(&w, "dev-1", 5);
    tether_json_write_key(&w, "n", 1);
    tether_json_write_array_begin(&w);
    tether_json_write_int(&w, 0);
    tether_json_write_int(&w, INT64_MIN);
    tether_json_write_int(&w, INT64_MAX);
    tether_json_write_bool(&w, true);
    tether_json_write_bool(&w, false);
    tether_json_write_null(&w);
    tether_json_write_array_begin(&w);
    tether_json_write_array_end(&w);
    tether_json_write_object_begin(&w);
    tether_json_write_object_end(&w);
    tether_json_write_array_end(&w);
    tether_json_write_key(&w, "q\"\\\n", 4);
    tether_json_write_string(&w, "\x01\b\f\r\t\x1f\x7f/\xC3\xA9", 10);
    tether_json_write_key(&w, "payload", 7);
    tether_json_write_raw(&w, " {\"a\": [1, 2]} ", 15);
    tether_json_write_object_end(&w);
    return tether_json_writer_finish(&w, out_len);
}

static void writer_writes_exact_text(void **state)
{
    (void)state;
    const char *expected =
        "{\"registrationId\":\"dev-1\",\"n\":[0,-9223372036854775808,9223372036854775807,true,"
        "false,null,[],{}],\"q\\\"\\\\\\n\":\"\\u0001\\b\\f\\r\\t\\u001f\x7f/\xC3\xA9\","
        "\"payload\": {\"a\": [1, 2]} }";
    ASSERT_WRITES_PREFIX(expected, write_sample(BUF, CAP, LEN));
    /* What it writes reads back. */
    parsed p;
    parse_ok(&p, expected);
    assert_string_at(&p, find(&p, "q\"\\\n"), "\x01\b\f\r\t\x1f\x7f/\xC3\xA9", 10);
    free(p.text);
}

static tether_status write_top_scalar(char *buf, size_t cap, size_t *out_len)
{
    tether_json_writer w;
    tether_json_writer_init(&w, buf, cap);
    tether_json_write_string(&w, "", 0);
    return tether_json_writer_finish(&w, out_len);
}

static void writer_top_level_scalar(void **state)
{
    (void)state;
    ASSERT_WRITES_PREFIX("\"\"", write_top_scalar(BUF, CAP, LEN));
}

static void writer_refuses_misuse(void **state)
{
    (void)state;
    char buf[64];
    size_t len;
    tether_json_writer w;

    tether_json_writer_init(&w, buf, sizeof buf); /* nothing written */
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* value without a key */
    tether_json_write_object_begin(&w);
    tether_json_write_int(&w, 1);
    tether_json_write_object_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* key in an array */
    tether_json_write_array_begin(&w);
    tether_json_write_key(&w, "a", 1);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* key without a value */
    tether_json_write_object_begin(&w);
    tether_json_write_key(&w, "a", 1);
    tether_json_write_object_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* wrong closing bracket */
    tether_json_write_array_begin(&w);
    tether_json_write_object_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* unclosed */
    tether_json_write_array_begin(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* two top-level values */
    tether_json_write_null(&w);
    tether_json_write_null(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* invalid UTF-8 */
    tether_json_write_string(&w, "\xC3", 1);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* key with invalid UTF-8 */
    tether_json_write_object_begin(&w);
    tether_json_write_key(&w, "\xFF", 1);
    tether_json_write_null(&w);
    tether_json_write_object_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* values after the top value is complete */
    tether_json_write_array_begin(&w);
    tether_json_write_array_end(&w);
    tether_json_write_int(&w, 1);
    tether_json_write_bool(&w, true);
    tether_json_write_object_begin(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_INVALID_ARGUMENT);

    tether_json_writer_init(&w, buf, sizeof buf); /* raw text that is not JSON */
    tether_json_write_array_begin(&w);
    tether_json_write_raw(&w, "[1,]", 4);
    tether_json_write_array_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_JSON_MALFORMED);

    tether_json_writer_init(&w, NULL, 0); /* too deep */
    for (int i = 0; i <= TETHER_JSON_MAX_DEPTH; i++)
        tether_json_write_array_begin(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_JSON_TOO_DEEP);

    tether_json_writer_init(&w, NULL, 0); /* the deepest allowed is fine */
    for (int i = 0; i < TETHER_JSON_MAX_DEPTH; i++)
        tether_json_write_array_begin(&w);
    for (int i = 0; i < TETHER_JSON_MAX_DEPTH; i++)
        tether_json_write_array_end(&w);
    assert_int_equal(tether_json_writer_finish(&w, &len), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(len, 2 * TETHER_JSON_MAX_DEPTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_a_document),
        cmocka_unit_test(get_string_follows_the_sizing_contract),
        cmocka_unit_test(top_level_scalars),
        cmocka_unit_test(refuses_what_is_not_json),
        cmocka_unit_test(accepts_what_is_json),
        cmocka_unit_test(nesting_is_bounded),
        cmocka_unit_test(token_array_is_bounded),
        cmocka_unit_test(writer_writes_exact_text),
        cmocka_unit_test(writer_top_level_scalar),
        cmocka_unit_test(writer_refuses_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
