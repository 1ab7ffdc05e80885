/**
 * @file url.h
 * @brief Percent-encoding of URL components (RFC 3986) into caller buffers.
 *
 * Encoding keeps the unreserved characters `A-Z a-z 0-9 - . _ ~` and writes every other byte
 * as `%XX` with upper-case hex digits. Decoding accepts escapes in either case, leaves `+`
 * as it is, and refuses a `%` that is not followed by two hex digits.
 *
 * Both follow the sizing contract of tether's writers: on success @p out_len is the number
 * of bytes written (no NUL is added); with `buf = NULL` or a @p cap that is too small they
 * write nothing, return ::TETHER_BUFFER_TOO_SMALL and set @p out_len to the size needed.
 *
 * @code
 * char buf[64];
 * size_t len;
 * if (tether_url_encode("$.ct", 4, buf, sizeof buf, &len) == TETHER_OK)
 *     printf("%.*s\n", (int)len, buf); // %24.ct
 * @endcode
 */
#ifndef TETHER_URL_H
#define TETHER_URL_H

#include <stddef.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Percent-encodes @p in_len bytes of @p in (which may be NULL when @p in_len is 0). */
TETHER_MUST_USE tether_status tether_url_encode(const char *in, size_t in_len, char *buf,
                                                size_t cap, size_t *out_len);

/**
 * Decodes percent-escapes. The result is never longer than the input.
 * @return TETHER_OK, TETHER_BUFFER_TOO_SMALL, or TETHER_URL_MALFORMED for a bad escape.
 */
TETHER_MUST_USE tether_status tether_url_decode(const char *in, size_t in_len, char *buf,
                                                size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_URL_H */
