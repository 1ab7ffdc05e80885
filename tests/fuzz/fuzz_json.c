/*
 * libFuzzer target for the JSON reader and writer. For every input:
 *   - tether_json_validate() and tether_json_parse() agree on the verdict and token count;
 *   - for a text parsed OK, every value's raw view lies inside the input, types and sizes
 *     are consistent with tether_json_next(), string getters honour the sizing contract;
 *   - the writer re-serializes the document (strings unescaped then escaped again, numbers
 *     and literals as they were); its output parses, and has the same structure, types and
 *     string contents (parse -> write -> parse gives the same document);
 *   - writing the same output again from the second document gives the same bytes.
 * Any violation traps.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/json.h"
#include "fuzz_check.h"

#define MAX_TOKENS 512

static void check_inside(tether_view v, const char *base, size_t n)
{
    fuzz_check_inside(v.ptr, v.len, base, n);
}

/* Unescapes the string at index into a fresh heap block (caller frees), checking sizing. */
static char *string_of(const tether_json *doc, size_t index, size_t *out_len)
{
    size_t need = 0;
    CHECK(tether_json_get_string(doc, index, NULL, 0, &need) == TETHER_BUFFER_TOO_SMALL);
    char *s = malloc(need + 1);
    CHECK(s != NULL);
    size_t len = 0;
    if (need > 0) {
        CHECK(tether_json_get_string(doc, index, s, need - 1, &len) == TETHER_BUFFER_TOO_SMALL);
        CHECK(len == need);
    }
    CHECK(tether_json_get_string(doc, index, s, need, &len) == TETHER_OK && len == need);
    CHECK(tether_json_string_equals(doc, index, s, len));
    *out_len = len;
    return s;
}

/* Writes the value at index into w; returns the index after it. */
static size_t rewrite(const tether_json *doc, size_t index, tether_json_writer *w, unsigned depth)
{
    CHECK(depth <= TETHER_JSON_MAX_DEPTH);
    tether_view raw;
    CHECK(tether_json_get_raw(doc, index, &raw) == TETHER_OK);
    check_inside(raw, doc->text, doc->len);
    size_t next = tether_json_next(doc, index);
    CHECK(next > index && next <= doc->count);
    switch (tether_json_type_of(doc, index)) {
    case TETHER_JSON_OBJECT: {
        CHECK(raw.ptr[0] == '{' && raw.ptr[raw.len - 1] == '}');
        tether_json_write_object_begin(w);
        size_t at = index + 1;
        for (size_t m = 0; m < tether_json_size(doc, index); m++) {
            CHECK(tether_json_type_of(doc, at) == TETHER_JSON_STRING);
            size_t len;
            char *key = string_of(doc, at, &len);
            tether_json_write_key(w, key, len);
            /* The member is found by its name (the first of duplicates). */
            size_t found;
            CHECK(tether_json_member(doc, index, key, len, &found) == TETHER_OK);
            CHECK(found <= at + 1);
            free(key);
            at = rewrite(doc, at + 1, w, depth + 1);
        }
        CHECK(at == next);
        tether_json_write_object_end(w);
        break;
    }
    case TETHER_JSON_ARRAY: {
        CHECK(raw.ptr[0] == '[' && raw.ptr[raw.len - 1] == ']');
        tether_json_write_array_begin(w);
        size_t at = index + 1;
        for (size_t e = 0; e < tether_json_size(doc, index); e++)
            at = rewrite(doc, at, w, depth + 1);
        CHECK(at == next);
        tether_json_write_array_end(w);
        break;
    }
    case TETHER_JSON_STRING: {
        CHECK(next == index + 1 && raw.len >= 2 && raw.ptr[0] == '"');
        size_t len;
        char *s = string_of(doc, index, &len);
        tether_json_write_string(w, s, len);
        free(s);
        break;
    }
    case TETHER_JSON_NUMBER: {
        int64_t v;
        if (tether_json_get_int(doc, index, &v) == TETHER_OK)
            tether_json_write_int(w, v); /* canonical: "-0" becomes "0" */
        else
            tether_json_write_raw(w, raw.ptr, raw.len);
        break;
    }
    case TETHER_JSON_BOOL: {
        bool b;
        CHECK(tether_json_get_bool(doc, index, &b) == TETHER_OK);
        tether_json_write_bool(w, b);
        break;
    }
    case TETHER_JSON_NULL:
        CHECK(raw.len == 4 && memcmp(raw.ptr, "null", 4) == 0);
        tether_json_write_null(w);
        break;
    case TETHER_JSON_NONE:
        CHECK(false);
    }
    return next;
}

/* The same document: same types, sizes and string contents, token by token. */
static void check_same(const tether_json *a, const tether_json *b)
{
    CHECK(a->count == b->count);
    for (size_t i = 0; i < a->count; i++) {
        tether_json_type t = tether_json_type_of(a, i);
        CHECK(t == tether_json_type_of(b, i));
        CHECK(tether_json_size(a, i) == tether_json_size(b, i));
        CHECK(tether_json_next(a, i) == tether_json_next(b, i));
        if (t == TETHER_JSON_STRING) {
            size_t len;
            char *s = string_of(a, i, &len);
            CHECK(tether_json_string_equals(b, i, s, len));
            free(s);
        } else if (t == TETHER_JSON_NUMBER) {
            int64_t x, y;
            tether_status sx = tether_json_get_int(a, i, &x), sy = tether_json_get_int(b, i, &y);
            CHECK(sx == sy && (sx != TETHER_OK || x == y));
        }
    }
}

static char *write_doc(const tether_json *doc, size_t *out_len)
{
    tether_json_writer w;
    tether_json_writer_init(&w, NULL, 0);
    rewrite(doc, 0, &w, 0);
    size_t need = 0;
    CHECK(tether_json_writer_finish(&w, &need) == TETHER_BUFFER_TOO_SMALL && need > 0);
    char *out = malloc(need);
    CHECK(out != NULL);
    tether_json_writer_init(&w, out, need);
    rewrite(doc, 0, &w, 0);
    size_t len = 0;
    CHECK(tether_json_writer_finish(&w, &len) == TETHER_OK && len == need);
    *out_len = len;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    static tether_json_token tokens[MAX_TOKENS], tokens2[MAX_TOKENS];
    tether_json doc;
    size_t counted = 0;
    tether_status v = tether_json_validate(text, size, &counted);
    tether_status st = tether_json_parse(text, size, tokens, MAX_TOKENS, &doc);
    if (v != TETHER_OK) {
        CHECK(st == v && (v == TETHER_JSON_MALFORMED || v == TETHER_JSON_TOO_DEEP));
        return 0;
    }
    CHECK(doc.count == counted && counted > 0);
    if (st == TETHER_JSON_TOO_MANY_TOKENS) {
        CHECK(counted > MAX_TOKENS && tether_json_type_of(&doc, 0) == TETHER_JSON_NONE);
        return 0;
    }
    CHECK(st == TETHER_OK);

    size_t len1;
    char *out1 = write_doc(&doc, &len1);
    tether_json doc2;
    CHECK(tether_json_parse(out1, len1, tokens2, MAX_TOKENS, &doc2) == TETHER_OK);
    check_same(&doc, &doc2);
    size_t len2;
    char *out2 = write_doc(&doc2, &len2);
    CHECK(len1 == len2 && memcmp(out1, out2, len1) == 0);
    free(out1);
    free(out2);
    return 0;
}
