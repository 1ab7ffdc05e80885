/* Small helpers shared by the plugin and the command: encodings, time, ids. */
#ifndef TC_UTIL_H
#define TC_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Base64 (standard alphabet, padded). Encode returns a malloc'd string or NULL. */
char *tc_base64_encode(const unsigned char *data, size_t len);
/* Decode into out (at least len*3/4+3 bytes); returns the byte count, or -1 when the input
 * is not valid padded base64. */
long tc_base64_decode(const char *text, unsigned char *out, size_t out_size);

/* 1 when p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF), else 0. */
int tc_utf8_valid(const unsigned char *p, size_t n);

/* Percent-decoding ('+' is kept as is). Returns malloc'd text, or NULL on a bad escape or
 * an embedded NUL. */
char *tc_url_decode(const char *text, size_t len);
/* Percent-encoding of everything but unreserved characters; upper-case escapes. */
char *tc_url_encode(const char *text);

/* HMAC-SHA256 of msg with key; out holds 32 bytes. Returns 0 on success. */
int tc_hmac_sha256(const unsigned char *key, size_t key_len, const char *msg, size_t msg_len,
                   unsigned char out[32]);

/* Time. */
int64_t tc_now_ms(void);
/* ISO 8601 UTC with seven fractional digits, as Azure writes it. buf >= 32. */
void tc_iso_time(int64_t ms, char *buf, size_t size);

/* Random hex text of n bytes (2n chars + NUL into buf). */
void tc_random_hex(char *buf, size_t n_bytes, int upper);
/* A GUID-shaped random string (37 bytes). */
void tc_uuid(char buf[37]);

/* Lower-case copy into out (truncates to size-1). */
void tc_lower(const char *in, char *out, size_t size);
/* Read a whole file; returns malloc'd text (NUL-terminated) or NULL. */
char *tc_read_file(const char *path, size_t *out_len);
/* Write a whole file with the given mode, atomically: a temporary file of this process created
 * exclusively without following links, fsync, rename. 0 on success. */
int tc_write_file(const char *path, const char *data, size_t len, unsigned mode);

#endif
