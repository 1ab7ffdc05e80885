/*
 * URL encoding (include/tether/url.h) and the small text tools shared by the protocol
 * helpers (src/proto/proto.h). Pure: no allocation, no I/O.
 */
#include "tether/url.h"

#include <string.h>

#include "proto.h"

/* ---- text writer -------------------------------------------------------------------------- */

void tether_text_put(tether_text *t, const char *s, size_t n)
{
    if (n > SIZE_MAX - t->len) {
        t->len = SIZE_MAX; /* cannot fit any buffer: only the count matters now */
        return;
    }
    if (t->buf != NULL && n > 0)
        memcpy(t->buf + t->len, s, n);
    t->len += n;
}

void tether_text_cstr(tether_text *t, const char *s)
{
    tether_text_put(t, s, strlen(s));
}

void tether_text_view(tether_text *t, tether_view v)
{
    tether_text_put(t, v.ptr, v.len);
}

void tether_text_u64(tether_text *t, uint64_t v)
{
    char digits[20];
    size_t n = 0;
    do {
        digits[sizeof digits - 1 - n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v > 0);
    tether_text_put(t, digits + sizeof digits - n, n);
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void tether_text_url(tether_text *t, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t run = 0; /* unreserved bytes not yet appended, copied in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            run++;
            continue;
        }
        tether_text_put(t, s + i - run, run);
        run = 0;
        char esc[3] = {'%', hex[c >> 4], hex[c & 0x0Fu]};
        tether_text_put(t, esc, sizeof esc);
    }
    tether_text_put(t, s + n - run, run);
}

tether_status tether_text_run(tether_text_builder build, const void *arg, char *buf, size_t cap,
                              size_t *out_len)
{
    tether_text count = {NULL, 0};
    build(&count, arg);
    *out_len = count.len;
    if (buf == NULL || count.len > cap)
        return TETHER_BUFFER_TOO_SMALL;
    tether_text write = {buf, 0};
    build(&write, arg);
    return TETHER_OK;
}

/* ---- URL encoding ------------------------------------------------------------------------- */

typedef struct url_arg {
    const char *s;
    size_t n;
} url_arg;

static void build_url(tether_text *t, const void *arg)
{
    const url_arg *a = arg;
    tether_text_url(t, a->s, a->n);
}

tether_status tether_url_encode(const char *in, size_t in_len, char *buf, size_t cap,
                                size_t *out_len)
{
    if (out_len == NULL || (in == NULL && in_len > 0))
        return TETHER_INVALID_ARGUMENT;
    url_arg a = {in, in_len};
    return tether_text_run(build_url, &a, buf, cap, out_len);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool tether_url_escapes_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%')
            continue;
        if (n - i < 3 || hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0)
            return false;
        i += 2;
    }
    return true;
}

tether_status tether_url_decode(const char *in, size_t in_len, char *buf, size_t cap,
                                size_t *out_len)
{
    if (out_len == NULL || (in == NULL && in_len > 0))
        return TETHER_INVALID_ARGUMENT;
    if (!tether_url_escapes_valid(in, in_len))
        return TETHER_URL_MALFORMED;
    size_t need = 0;
    for (size_t i = 0; i < in_len; i++, need++) {
        if (in[i] == '%')
            i += 2;
    }
    *out_len = need;
    if (buf == NULL || need > cap)
        return TETHER_BUFFER_TOO_SMALL;
    size_t o = 0;
    for (size_t i = 0; i < in_len; i++) {
        if (in[i] == '%') {
            buf[o++] = (char)(hex_value(in[i + 1]) << 4 | hex_value(in[i + 2]));
            i += 2;
        } else {
            buf[o++] = in[i];
        }
    }
    return TETHER_OK;
}

/* ---- query strings, numbers, request ids -------------------------------------------------- */

size_t tether_cstr_len(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0')
        n++;
    return n;
}

bool tether_view_starts_with(tether_view s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

bool tether_query_next(tether_view query, size_t *offset, tether_query_param *out)
{
    size_t start = *offset;
    if (start >= query.len)
        return false;
    size_t end = start;
    while (end < query.len && query.ptr[end] != '&')
        end++;
    size_t eq = start;
    while (eq < end && query.ptr[eq] != '=')
        eq++;
    out->name = tether_view_span(query.ptr, start, eq);
    out->has_value = eq < end;
    out->value = out->has_value ? tether_view_span(query.ptr, eq + 1, end)
                                : tether_view_span(query.ptr, end, end);
    *offset = end < query.len ? end + 1 : end; /* step over the '&' */
    return true;
}

bool tether_parse_u64(tether_view v, uint64_t max, uint64_t *out)
{
    if (v.len == 0 || v.len > 20 || (v.len > 1 && v.ptr[0] == '0'))
        return false;
    uint64_t value = 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (d > max || value > (max - d) / 10u)
            return false;
        value = value * 10u + d;
    }
    *out = value;
    return true;
}

bool tether_rid_valid(tether_view rid)
{
    if (rid.len == 0 || rid.len > 128)
        return false;
    for (size_t i = 0; i < rid.len; i++) {
        char c = rid.ptr[i];
        if (c <= ' ' || c > '~' || c == '&' || c == '#' || c == '+' || c == '/' || c == '=' ||
            c == '?')
            return false;
    }
    return true;
}
