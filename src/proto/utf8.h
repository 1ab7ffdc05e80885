/*
 * Internal: the one UTF-8 check (defined in json.c), shared by the JSON reader and writer and
 * the MQTT codec so that a device carries it once. Not installed.
 */
#ifndef TETHER_UTF8_H
#define TETHER_UTF8_H

#include <stddef.h>

/* Length of the well-formed UTF-8 sequence (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF) at s[0..n), n > 0, or 0 if there is none. */
size_t tether_utf8_seq(const unsigned char *s, size_t n);

#endif /* TETHER_UTF8_H */
