/* What the fuzz targets share: a check that stops the run, and the properties of views. */
#ifndef TETHER_FUZZ_CHECK_H
#define TETHER_FUZZ_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that does not hold is a finding: stop with a crash libFuzzer records. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* A view is NULL exactly when absent, and otherwise lies within [base, base + n). */
static inline void fuzz_check_inside(const void *view, size_t len, const void *base, size_t n)
{
    if (view == NULL) {
        CHECK(len == 0);
        return;
    }
    const uint8_t *p = view, *b = base;
    CHECK(p >= b && p <= b + n && len <= (size_t)(b + n - p));
}

/* Two views hold the same bytes (and are both absent or both present). */
static inline bool fuzz_same(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if ((a == NULL) != (b == NULL) || a_len != b_len)
        return false;
    return a_len == 0 || memcmp(a, b, a_len) == 0;
}

#endif
