/* Checks one call of a text writer against the whole sizing contract: with no buffer it
 * reports the exact size; one byte short it writes nothing and reports the size; with the
 * exact size and with room to spare it writes exactly the expected text and nothing past it.
 * CALL is an expression using BUF, CAP and LEN, e.g.
 *     ASSERT_WRITES("abc", tether_x(arg, BUF, CAP, LEN)); */
#ifndef TETHER_WRITER_CHECK_H
#define TETHER_WRITER_CHECK_H

#include <stdlib.h>
#include <string.h>

#define WRITER_CANARY      0xA5
#define WRITER_CANARY_SPAN 16u

static inline void writer_check_canary(const char *mem, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        assert_int_equal((unsigned char)mem[i], WRITER_CANARY);
}

#define ASSERT_WRITES(expected, CALL) ASSERT_WRITES_CHECKED(expected, CALL, 0)
/* For the JSON writer, which may leave a prefix when the text does not fit (never more). */
#define ASSERT_WRITES_PREFIX(expected, CALL) ASSERT_WRITES_CHECKED(expected, CALL, CAP)

#define ASSERT_WRITES_CHECKED(expected, CALL, untouched_from)                                      \
    do {                                                                                           \
        const char *exp_ = (expected);                                                             \
        size_t n_ = strlen(exp_), got_ = 999, total_ = n_ + WRITER_CANARY_SPAN;                    \
        char *BUF = NULL;                                                                          \
        size_t CAP = 0;                                                                            \
        size_t *LEN = &got_;                                                                       \
        assert_int_equal((CALL), TETHER_BUFFER_TOO_SMALL);                                         \
        assert_int_equal(got_, n_);                                                                \
        char *mem_ = malloc(total_);                                                               \
        assert_non_null(mem_);                                                                     \
        memset(mem_, WRITER_CANARY, total_);                                                       \
        BUF = mem_;                                                                                \
        if (n_ > 0) {                                                                              \
            CAP = n_ - 1;                                                                          \
            got_ = 0;                                                                              \
            assert_int_equal((CALL), TETHER_BUFFER_TOO_SMALL);                                     \
            assert_int_equal(got_, n_);                                                            \
            writer_check_canary(mem_, (untouched_from), total_);                                   \
        }                                                                                          \
        CAP = n_;                                                                                  \
        got_ = 0;                                                                                  \
        assert_int_equal((CALL), TETHER_OK);                                                       \
        assert_int_equal(got_, n_);                                                                \
        assert_memory_equal(mem_, exp_, n_);                                                       \
        writer_check_canary(mem_, n_, total_);                                                     \
        CAP = total_;                                                                              \
        got_ = 0;                                                                                  \
        assert_int_equal((CALL), TETHER_OK);                                                       \
        assert_int_equal(got_, n_);                                                                \
        assert_memory_equal(mem_, exp_, n_);                                                       \
        free(mem_);                                                                                \
    } while (0)

#endif /* TETHER_WRITER_CHECK_H */
