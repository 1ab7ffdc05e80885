/*
 * JSON reader and writer (include/tether/json.h). The reader validates the whole text with a
 * strict, iterative scanner (no recursion; nesting bounded by TETHER_JSON_MAX_DEPTH), which
 * also counts the tokens, and then lets jsmn tokenize it. jsmn alone accepts texts that are
 * not JSON (`[1 2]`, `{"a":1,}`, `tru`) and is quadratic on flat arrays without parent
 * links, hence both the scanner and JSMN_PARENT_LINKS. This is the one file that includes
 * jsmn.h.
 */
#include "tether/json.h"

#include "proto.h"
#include "utf8.h"

#include <limits.h>
#include <string.h>

/* Not JSMN_STRICT: jsmn only ever sees text the scanner accepted, for which its strict mode
 * makes the same tokens; non-strict mode also takes a bare top-level number or literal. */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#include <jsmn.h>

_Static_assert(TETHER_JSON_MAX_DEPTH >= 1 && TETHER_JSON_MAX_DEPTH <= 64,
               "TETHER_JSON_MAX_DEPTH must be 1 to 64 (one bit per level)");
/* The caller's token array is handed to jsmn: the public token is a jsmn token in disguise.
 * Only this file reads or writes it, always as jsmntok_t. */
_Static_assert(sizeof(tether_json_token) == sizeof(jsmntok_t), "token layout");
_Static_assert(_Alignof(tether_json_token) == _Alignof(jsmntok_t), "token alignment");

static const jsmntok_t *tok(const tether_json *doc, size_t index)
{
    return (const jsmntok_t *)(const void *)doc->tokens + index;
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */

size_t tether_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char b = s[0];
    if (b < 0x80u)
        return 1;
    size_t need;
    unsigned char lo = 0x80u, hi = 0xBFu;
    if (b >= 0xC2u && b <= 0xDFu) {
        need = 1;
    } else if (b >= 0xE0u && b <= 0xEFu) {
        need = 2;
        if (b == 0xE0u)
            lo = 0xA0u;
        else if (b == 0xEDu)
            hi = 0x9Fu;
    } else if (b >= 0xF0u && b <= 0xF4u) {
        need = 3;
        if (b == 0xF0u)
            lo = 0x90u;
        else if (b == 0xF4u)
            hi = 0x8Fu;
    } else {
        return 0;
    }
    if (n - 1 < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k <= need; k++) {
        if ((s[k] & 0xC0u) != 0x80u)
            return 0;
    }
    return need + 1;
}

static bool utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = tether_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* ---- the scanner -------------------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s (the caller checked they are there); -1 if one is not hex. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A string starting at the quote s[*pos]; on success *pos is just past the closing quote. */
static bool scan_string(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos + 1;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            *pos = i + 1;
            return true;
        }
        if (c < 0x20u)
            return false;
        if (c == '\\') {
            if (n - i < 2)
                return false;
            char e = s[i + 1];
            if (e == 'u') {
                if (n - i < 6)
                    return false;
                long cp = hex4(s + i + 2);
                if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                    return false; /* not hex, or a low surrogate alone */
                i += 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* a high surrogate needs its low half */
                    if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u')
                        return false;
                    long lo = hex4(s + i + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return false;
                    i += 6;
                }
                continue;
            }
            if (strchr("\"\\/bfnrt", e) == NULL || e == '\0')
                return false;
            i += 2;
            continue;
        }
        size_t k = tether_utf8_seq((const unsigned char *)s + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Past the run of digits starting at i. */
static size_t skip_digits(const char *s, size_t n, size_t i)
{
    while (i < n && is_digit(s[i]))
        i++;
    return i;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool scan_number(const char *s, size_t n, size_t *pos)
{
    size_t i = *pos;
    if (s[i] == '-')
        i++;
    size_t d = skip_digits(s, n, i);
    if (d == i || (s[i] == '0' && d > i + 1))
        return false; /* no digit, or a leading zero */
    i = d;
    if (i < n && s[i] == '.') {
        d = skip_digits(s, n, i + 1);
        if (d == i + 1)
            return false;
        i = d;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        d = skip_digits(s, n, i);
        if (d == i)
            return false;
        i = d;
    }
    *pos = i;
    return true;
}

static bool scan_literal(const char *s, size_t n, size_t *pos, const char *word)
{
    size_t k = strlen(word);
    if (n - *pos < k || memcmp(s + *pos, word, k) != 0)
        return false;
    *pos += k;
    return true;
}

/* What the scanner expects next. */
typedef enum expect {
    EXPECT_VALUE,          /* a value (top level, after ':' or after ',' in an array) */
    EXPECT_VALUE_OR_CLOSE, /* just after '[' */
    EXPECT_KEY,            /* after ',' in an object */
    EXPECT_KEY_OR_CLOSE,   /* just after '{' */
    EXPECT_COLON,          /* after a key */
    EXPECT_AFTER_VALUE     /* ',' or a closing bracket, or the end at the top level */
} expect;

static tether_status scan(const char *s, size_t n, size_t *out_tokens)
{
    char open[TETHER_JSON_MAX_DEPTH]; /* the bracket that opened each level: bytes are cheaper
                                         to reach than the bits of a uint64_t on 32-bit CPUs */
    unsigned depth = 0;
    size_t tokens = 0;
    expect state = EXPECT_VALUE;
    for (size_t i = 0;; i++) {
        while (i < n && is_ws(s[i]))
            i++;
        if (i == n)
            break;
        char c = s[i];
        if (state == EXPECT_AFTER_VALUE) {
            if (depth == 0)
                return TETHER_JSON_MALFORMED; /* something after the top value */
            char opened = open[depth - 1];
            if (c == ',')
                state = opened == '{' ? EXPECT_KEY : EXPECT_VALUE;
            else if (c == opened + 2) /* '{' + 2 is '}', '[' + 2 is ']' */
                depth--;
            else
                return TETHER_JSON_MALFORMED;
            continue;
        }
        if (state == EXPECT_COLON) {
            if (c != ':')
                return TETHER_JSON_MALFORMED;
            state = EXPECT_VALUE;
            continue;
        }
        if ((c == '}' && state == EXPECT_KEY_OR_CLOSE) ||
            (c == ']' && state == EXPECT_VALUE_OR_CLOSE)) {
            depth--; /* an empty container */
            state = EXPECT_AFTER_VALUE;
            continue;
        }
        bool key = state == EXPECT_KEY || state == EXPECT_KEY_OR_CLOSE;
        tokens++;
        if (!key && (c == '{' || c == '[')) {
            if (depth == TETHER_JSON_MAX_DEPTH)
                return TETHER_JSON_TOO_DEEP;
            open[depth++] = c;
            state = c == '{' ? EXPECT_KEY_OR_CLOSE : EXPECT_VALUE_OR_CLOSE;
            continue;
        }
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : c == 'n' ? "null" : NULL;
        bool ok;
        if (c == '"')
            ok = scan_string(s, n, &i);
        else if (key)
            ok = false;
        else if (word != NULL)
            ok = scan_literal(s, n, &i, word);
        else
            ok = scan_number(s, n, &i);
        if (!ok)
            return TETHER_JSON_MALFORMED;
        i--; /* the loop steps past the value's last byte */
        state = key ? EXPECT_COLON : EXPECT_AFTER_VALUE;
    }
    if (state != EXPECT_AFTER_VALUE || depth != 0)
        return TETHER_JSON_MALFORMED; /* empty, or cut short */
    if (out_tokens != NULL)
        *out_tokens = tokens;
    return TETHER_OK;
}

tether_status tether_json_validate(const char *text, size_t len, size_t *out_tokens)
{
    if (text == NULL && len > 0)
        return TETHER_INVALID_ARGUMENT;
    return scan(text, len, out_tokens);
}

/* ---- parsing ------------------------------------------------------------------------------ */

tether_status tether_json_parse(const char *text, size_t len, tether_json_token *tokens,
                                size_t max_tokens, tether_json *out_doc)
{
    if (out_doc == NULL || (text == NULL && len > 0) || (tokens == NULL && max_tokens > 0))
        return TETHER_INVALID_ARGUMENT;
    memset(out_doc, 0, sizeof *out_doc);
    if (len > INT_MAX - 1)
        return TETHER_JSON_TOO_MANY_TOKENS; /* jsmn counts positions in int */
    size_t need = 0;
    tether_status st = scan(text, len, &need);
    if (st != TETHER_OK)
        return st;
    out_doc->text = text;
    out_doc->len = len;
    out_doc->tokens = tokens;
    out_doc->count = need;
    if (need > max_tokens) {
        out_doc->tokens = NULL; /* the count says how many are needed; nothing to read */
        return TETHER_JSON_TOO_MANY_TOKENS;
    }

    jsmn_parser p;
    jsmn_init(&p);
    int r = jsmn_parse(&p, text, len, (jsmntok_t *)(void *)tokens, (unsigned)need);
    if (r < 0 || (size_t)r != need)
        return TETHER_JSON_MALFORMED; /* cannot happen for a text the scanner accepted */
    return TETHER_OK;
}

tether_json_type tether_json_type_of(const tether_json *doc, size_t index)
{
    if (doc == NULL || index >= doc->count || doc->tokens == NULL)
        return TETHER_JSON_NONE;
    const jsmntok_t *t = tok(doc, index);
    switch (t->type) {
    case JSMN_OBJECT:
        return TETHER_JSON_OBJECT;
    case JSMN_ARRAY:
        return TETHER_JSON_ARRAY;
    case JSMN_STRING:
        return TETHER_JSON_STRING;
    case JSMN_PRIMITIVE: {
        char c = doc->text[t->start];
        if (c == 't' || c == 'f')
            return TETHER_JSON_BOOL;
        return c == 'n' ? TETHER_JSON_NULL : TETHER_JSON_NUMBER;
    }
    case JSMN_UNDEFINED:
        break;
    }
    return TETHER_JSON_NONE;
}

size_t tether_json_size(const tether_json *doc, size_t index)
{
    tether_json_type type = tether_json_type_of(doc, index);
    if (type != TETHER_JSON_OBJECT && type != TETHER_JSON_ARRAY)
        return 0;
    return (size_t)tok(doc, index)->size;
}

size_t tether_json_next(const tether_json *doc, size_t index)
{
    if (doc == NULL || index >= doc->count)
        return index + 1;
    int end = tok(doc, index)->end;
    size_t j = index + 1;
    while (j < doc->count && tok(doc, j)->start < end)
        j++;
    return j;
}

/* Decodes one character of a validated string body at s[*i] into out; returns its bytes. */
static size_t unescape_next(const char *s, size_t *i, char out[4])
{
    if (s[*i] != '\\') {
        out[0] = s[(*i)++];
        return 1;
    }
    char e = s[*i + 1];
    *i += 2;
    if (e != 'u') {
        /* The scanner let only " \ / b f n r t through; the first three stand for themselves. */
        const char *m = strchr("b\bf\fn\nr\rt\t", e);
        out[0] = m != NULL ? m[1] : e;
        return 1;
    }
    unsigned long cp = (unsigned long)hex4(s + *i);
    *i += 4;
    if (cp >= 0xD800u && cp <= 0xDBFFu) { /* the scanner checked the low half follows */
        unsigned long lo = (unsigned long)hex4(s + *i + 2);
        *i += 6;
        cp = 0x10000u + ((cp - 0xD800u) << 10) + (lo - 0xDC00u);
    }
    if (cp < 0x80u) {
        out[0] = (char)cp;
        return 1;
    }
    size_t n = cp < 0x800u ? 2 : cp < 0x10000u ? 3 : 4;
    for (size_t k = n - 1; k > 0; k--) {
        out[k] = (char)(0x80u | (cp & 0x3Fu));
        cp >>= 6;
    }
    out[0] = (char)((0xFF00u >> n | cp) & 0xFFu); /* 110xxxxx, 1110xxxx or 11110xxx */
    return n;
}

bool tether_json_string_equals(const tether_json *doc, size_t index, const char *s, size_t n)
{
    if (tether_json_type_of(doc, index) != TETHER_JSON_STRING || (s == NULL && n > 0))
        return false;
    const jsmntok_t *t = tok(doc, index);
    const char *body = doc->text;
    size_t i = (size_t)t->start, end = (size_t)t->end, o = 0;
    while (i < end) {
        char ch[4];
        size_t k = unescape_next(body, &i, ch);
        if (n - o < k || memcmp(s + o, ch, k) != 0)
            return false;
        o += k;
    }
    return o == n;
}

tether_status tether_json_member(const tether_json *doc, size_t object, const char *name,
                                 size_t name_len, size_t *out_index)
{
    if (out_index == NULL || (name == NULL && name_len > 0))
        return TETHER_INVALID_ARGUMENT;
    if (tether_json_type_of(doc, object) != TETHER_JSON_OBJECT)
        return TETHER_JSON_WRONG_TYPE;
    size_t members = (size_t)tok(doc, object)->size;
    size_t key = object + 1;
    for (size_t m = 0; m < members; m++) {
        if (tether_json_string_equals(doc, key, name, name_len)) {
            *out_index = key + 1;
            return TETHER_OK;
        }
        key = tether_json_next(doc, key + 1);
    }
    return TETHER_JSON_NOT_FOUND;
}

tether_status tether_json_find(const tether_json *doc, size_t from, const char *path,
                               size_t *out_index)
{
    if (path == NULL || out_index == NULL)
        return TETHER_INVALID_ARGUMENT;
    size_t at = from;
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        tether_status st = tether_json_member(doc, at, path, n, &at);
        if (st != TETHER_OK)
            return st;
        if (dot == NULL)
            break;
        path = dot + 1;
    }
    *out_index = at;
    return TETHER_OK;
}

tether_status tether_json_get_string(const tether_json *doc, size_t index, char *buf, size_t cap,
                                     size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (tether_json_type_of(doc, index) != TETHER_JSON_STRING)
        return TETHER_JSON_WRONG_TYPE;
    const jsmntok_t *t = tok(doc, index);
    size_t end = (size_t)t->end, need = 0;
    char ch[4];
    for (size_t i = (size_t)t->start; i < end;)
        need += unescape_next(doc->text, &i, ch);
    *out_len = need;
    if (buf == NULL || need > cap)
        return TETHER_BUFFER_TOO_SMALL;
    size_t o = 0;
    for (size_t i = (size_t)t->start; i < end;) {
        size_t k = unescape_next(doc->text, &i, ch);
        memcpy(buf + o, ch, k);
        o += k;
    }
    return TETHER_OK;
}

tether_status tether_json_get_int(const tether_json *doc, size_t index, int64_t *out_value)
{
    if (out_value == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (tether_json_type_of(doc, index) != TETHER_JSON_NUMBER)
        return TETHER_JSON_WRONG_TYPE;
    const jsmntok_t *t = tok(doc, index);
    bool negative = doc->text[t->start] == '-';
    size_t start = (size_t)t->start + negative;
    /* The magnitude as url.c reads any decimal number (digits only: a fraction or an exponent
     * fails); INT64_MIN's is one more than INT64_MAX's. */
    uint64_t mag;
    if (!tether_parse_u64(tether_view_span(doc->text, start, (size_t)t->end),
                          (uint64_t)INT64_MAX + negative, &mag))
        return TETHER_JSON_WRONG_TYPE;
    /* mag - 1 fits in int64_t even for INT64_MIN's magnitude. */
    *out_value = negative && mag > 0 ? -(int64_t)(mag - 1u) - 1 : (int64_t)mag;
    return TETHER_OK;
}

tether_status tether_json_get_bool(const tether_json *doc, size_t index, bool *out_value)
{
    if (out_value == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (tether_json_type_of(doc, index) != TETHER_JSON_BOOL)
        return TETHER_JSON_WRONG_TYPE;
    *out_value = doc->text[tok(doc, index)->start] == 't';
    return TETHER_OK;
}

tether_status tether_json_get_raw(const tether_json *doc, size_t index, tether_view *out_raw)
{
    if (out_raw == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_json_type type = tether_json_type_of(doc, index);
    if (type == TETHER_JSON_NONE)
        return TETHER_JSON_NOT_FOUND;
    const jsmntok_t *t = tok(doc, index);
    size_t start = (size_t)t->start, end = (size_t)t->end;
    if (type == TETHER_JSON_STRING) { /* jsmn's string token excludes the quotes */
        start--;
        end++;
    }
    out_raw->ptr = doc->text + start;
    out_raw->len = end - start;
    return TETHER_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

void tether_json_writer_init(tether_json_writer *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf != NULL ? cap : 0;
    w->error = TETHER_OK;
}

static void fail(tether_json_writer *w, tether_status st)
{
    if (w->error == TETHER_OK)
        w->error = st;
}

static void put(tether_json_writer *w, const char *s, size_t n)
{
    if (n > SIZE_MAX - w->len) {
        w->len = SIZE_MAX;
        return;
    }
    /* Past the capacity only count, so that finish() can say how much is needed; cap drops
     * to 0 at the first piece that does not fit, so nothing is written after it. */
    if (w->buf != NULL && w->len <= w->cap && n <= w->cap - w->len)
        memcpy(w->buf + w->len, s, n);
    else
        w->cap = 0;
    w->len += n;
}

static bool in_object(const tether_json_writer *w)
{
    return w->depth > 0 && ((w->in_object >> (w->depth - 1)) & 1u);
}

/* Before a value: checks it may come here and writes the comma that separates it. */
static bool begin_value(tether_json_writer *w)
{
    if (w->error != TETHER_OK)
        return false;
    if (w->done || (in_object(w) && !w->after_key)) {
        fail(w, TETHER_INVALID_ARGUMENT);
        return false;
    }
    if (w->depth > 0 && !in_object(w)) {
        uint64_t bit = (uint64_t)1 << (w->depth - 1);
        if (w->has_items & bit)
            put(w, ",", 1);
        w->has_items |= bit;
    }
    w->after_key = false;
    return true;
}

/* After a value: at the top level the text is complete. */
static void end_value(tether_json_writer *w)
{
    if (w->depth == 0)
        w->done = true;
}

static void open_container(tether_json_writer *w, bool object)
{
    if (!begin_value(w))
        return;
    if (w->depth == TETHER_JSON_MAX_DEPTH) {
        fail(w, TETHER_JSON_TOO_DEEP);
        return;
    }
    uint64_t bit = (uint64_t)1 << w->depth;
    w->in_object = object ? w->in_object | bit : w->in_object & ~bit;
    w->has_items &= ~bit;
    w->depth++;
    put(w, object ? "{" : "[", 1);
}

static void close_container(tether_json_writer *w, bool object)
{
    if (w->error != TETHER_OK)
        return;
    if (w->depth == 0 || in_object(w) != object || w->after_key) {
        fail(w, TETHER_INVALID_ARGUMENT);
        return;
    }
    w->depth--;
    put(w, object ? "}" : "]", 1);
    end_value(w);
}

void tether_json_write_object_begin(tether_json_writer *w)
{
    open_container(w, true);
}

void tether_json_write_object_end(tether_json_writer *w)
{
    close_container(w, true);
}

void tether_json_write_array_begin(tether_json_writer *w)
{
    open_container(w, false);
}

void tether_json_write_array_end(tether_json_writer *w)
{
    close_container(w, false);
}

static void put_escaped(tether_json_writer *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0x0Fu]};
        size_t esc_len = 2;
        switch (c) {
        case '"':
            esc = "\\\"";
            break;
        case '\\':
            esc = "\\\\";
            break;
        case '\n':
            esc = "\\n";
            break;
        case '\r':
            esc = "\\r";
            break;
        case '\t':
            esc = "\\t";
            break;
        case '\b':
            esc = "\\b";
            break;
        case '\f':
            esc = "\\f";
            break;
        default:
            if (c < 0x20u) {
                esc = u;
                esc_len = sizeof u;
            }
            break;
        }
        if (esc == NULL) {
            run++;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        put(w, esc, esc_len);
    }
    put(w, s + n - run, run);
    put(w, "\"", 1);
}

void tether_json_write_key(tether_json_writer *w, const char *name, size_t len)
{
    if (w->error != TETHER_OK)
        return;
    if (!in_object(w) || w->after_key || (name == NULL && len > 0) || !utf8_valid(name, len)) {
        fail(w, TETHER_INVALID_ARGUMENT);
        return;
    }
    uint64_t bit = (uint64_t)1 << (w->depth - 1);
    if (w->has_items & bit)
        put(w, ",", 1);
    w->has_items |= bit;
    put_escaped(w, name, len);
    put(w, ":", 1);
    w->after_key = true;
}

void tether_json_write_string(tether_json_writer *w, const char *s, size_t len)
{
    if ((s == NULL && len > 0) || !utf8_valid(s, len)) {
        fail(w, TETHER_INVALID_ARGUMENT);
        return;
    }
    if (!begin_value(w))
        return;
    put_escaped(w, s, len);
    end_value(w);
}

void tether_json_write_int(tether_json_writer *w, int64_t value)
{
    if (!begin_value(w))
        return;
    char digits[20];
    size_t n = 0;
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + mag % 10u);
        mag /= 10u;
    } while (mag > 0);
    if (value < 0)
        put(w, "-", 1);
    put(w, digits + sizeof digits - n, n);
    end_value(w);
}

void tether_json_write_bool(tether_json_writer *w, bool value)
{
    if (!begin_value(w))
        return;
    put(w, value ? "true" : "false", value ? 4 : 5);
    end_value(w);
}

void tether_json_write_null(tether_json_writer *w)
{
    if (!begin_value(w))
        return;
    put(w, "null", 4);
    end_value(w);
}

void tether_json_write_raw(tether_json_writer *w, const char *json, size_t len)
{
    if (json == NULL && len > 0) {
        fail(w, TETHER_INVALID_ARGUMENT);
        return;
    }
    tether_status st = scan(json, len, NULL);
    if (st != TETHER_OK) {
        fail(w, st);
        return;
    }
    if (!begin_value(w))
        return;
    put(w, json, len);
    end_value(w);
}

tether_status tether_json_writer_finish(const tether_json_writer *w, size_t *out_len)
{
    if (w == NULL || out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (w->error != TETHER_OK)
        return w->error;
    if (!w->done)
        return TETHER_INVALID_ARGUMENT;
    *out_len = w->len;
    if (w->buf == NULL || w->cap == 0 || w->len > w->cap)
        return TETHER_BUFFER_TOO_SMALL;
    return TETHER_OK;
}
