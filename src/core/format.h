/* Internal: decimal text of an int64 without printf's %lld, which newlib-nano (the usual C
 * library of Cortex-M firmware, and of ESP-IDF's nano option) does not have. tether's own
 * printf formats stay within what nano offers: no %lld/%llu, no %zu (use %lu and a cast). */
#ifndef TETHER_CORE_FORMAT_H
#define TETHER_CORE_FORMAT_H

#include <stdint.h>

/** Room for any int64 in decimal, sign and NUL included. */
#define TETHER_I64_DIGITS 21

/** Writes @p v in decimal into @p out; returns @p out. (Defined in store.c, its first user.) */
char *tether_format_i64(int64_t v, char out[TETHER_I64_DIGITS]);

#endif
