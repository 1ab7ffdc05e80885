/**
 * @file view.h
 * @brief A read-only text view: a pointer and a length into a buffer someone else owns.
 *
 * Parsers return views into the bytes they were given (or into a caller scratch buffer);
 * nothing is copied and nothing is NUL-terminated. A view is valid as long as the buffer it
 * points into. Print one with `printf("%.*s", (int)v.len, v.ptr)`.
 *
 * @code
 * tether_view id = tether_view_of("my-device");
 * if (tether_view_equals(id, "my-device"))
 *     puts("same");
 * @endcode
 */
#ifndef TETHER_VIEW_H
#define TETHER_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Text that is not owned: @p ptr is NULL only when @p len is 0 and the value is absent. */
typedef struct tether_view {
    const char *ptr;
    size_t len;
} tether_view;

/** A view of a NUL-terminated string (of nothing for NULL). */
static inline tether_view tether_view_of(const char *cstr)
{
    tether_view v = {cstr, cstr ? strlen(cstr) : 0};
    return v;
}

/** True when the view holds exactly the characters of @p cstr. */
static inline bool tether_view_equals(tether_view v, const char *cstr)
{
    size_t n = cstr ? strlen(cstr) : 0;
    return v.len == n && (n == 0 || memcmp(v.ptr, cstr, n) == 0);
}

#ifdef __cplusplus
}
#endif
#endif /* TETHER_VIEW_H */
