/*
 * Internal to the protocol helpers (src/proto): a text writer that sizes before it writes,
 * URL escapes, query-string walking and strict decimal numbers. Not installed.
 */
#ifndef TETHER_PROTO_H
#define TETHER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"
#include "tether/view.h"

/* Appends text to buf, or only counts when buf is NULL. Every writer runs its builder twice
 * (tether_text_run): once to count, then, when the result fits, to write. So a writer never
 * writes a partial result, and the count is exact. len saturates at SIZE_MAX. */
typedef struct tether_text {
    char *buf;
    size_t len;
} tether_text;

void tether_text_put(tether_text *t, const char *s, size_t n);
void tether_text_cstr(tether_text *t, const char *s);
void tether_text_view(tether_text *t, tether_view v);
void tether_text_u64(tether_text *t, uint64_t v);
/* Appends s percent-encoded (see tether_url_encode). */
void tether_text_url(tether_text *t, const char *s, size_t n);

typedef void (*tether_text_builder)(tether_text *t, const void *arg);

/* Runs build into buf with the sizing contract: OK with the length written, or
 * TETHER_BUFFER_TOO_SMALL (nothing written) with the length needed. */
tether_status tether_text_run(tether_text_builder build, const void *arg, char *buf, size_t cap,
                              size_t *out_len);

/* One name=value pair of a query string, raw (still percent-encoded). A pair without '='
 * has has_value false and an empty value. */
typedef struct tether_query_param {
    tether_view name;
    tether_view value;
    bool has_value;
} tether_query_param;

/* Walks "a=1&b=2": returns false when no pair is left. Empty pairs ("a=1&&b=2") are
 * returned with an empty name; callers decide what that means. */
bool tether_query_next(tether_view query, size_t *offset, tether_query_param *out);

/* True when every '%' in s starts a valid escape. */
bool tether_url_escapes_valid(const char *s, size_t n);

/* Decimal digits only (no sign, no space, at most one leading zero for "0"), no overflow. */
bool tether_parse_u64(tether_view v, uint64_t max, uint64_t *out);

/* A request id ($rid) as tether writes and reads it: 1 to 128 printable ASCII characters
 * other than space & # + / = ? (so it stays one query value without escaping). */
bool tether_rid_valid(tether_view rid);

/* The two halves of a response topic as DPS and IoT Hub write them, "{status}/?{query}"
 * (defined in hub.c, used by dps.c too). tether_response_status reads "{ddd}/?" at t[p..], a
 * status from 100 to 599. tether_response_query reads "$rid" (when rid is not NULL: required,
 * once, valid) and the decimal parameter called name (when not NULL: at most once, at most
 * max, *has_value set); anything else is ignored. Both return false on a malformed topic. */
bool tether_response_status(tether_view t, size_t p, uint16_t *status);
bool tether_response_query(tether_view query, tether_view *rid, const char *name, uint64_t max,
                           bool *has_value, uint64_t *value);

/* strlen that stops counting at max (strnlen is POSIX, not C11). */
size_t tether_cstr_len(const char *s, size_t max);

/* A view of the bytes at [start, end) of s. Inline: a call would return the view through
 * memory, which costs the caller more than the two stores. */
static inline tether_view tether_view_span(const char *s, size_t start, size_t end)
{
    tether_view v = {s + start, end - start};
    return v;
}

/* True when s starts with the NUL-terminated prefix. */
bool tether_view_starts_with(tether_view s, const char *prefix);

#endif /* TETHER_PROTO_H */
