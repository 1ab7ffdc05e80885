/**
 * @file heap.h
 * @brief tether's allocator hooks for mbedTLS: count every byte, and cap the heap on purpose.
 *
 * tether itself allocates nothing; mbedTLS does, and every one of its allocations goes
 * through these hooks (the profiles set MBEDTLS_PLATFORM_MEMORY). They keep the bytes in use,
 * the peak, the number of calls and of failures, so "how much memory does TLS need?" is
 * answered by a measurement. In arena mode every allocation is served from one caller buffer
 * with a hard cap, which simulates a device with N KB free (headers and fragmentation
 * included, as on a real heap).
 *
 * mbedTLS has one global allocator, so these hooks are process-wide: install them once, before
 * any TLS context is set up, and do not switch while one is open.
 *
 * @code
 * static uint8_t arena[40 * 1024];
 * tether_heap_use_arena(arena, sizeof arena);    // a device with 40 KB free
 * ... handshake ...
 * tether_heap_stats st;
 * tether_heap_get_stats(&st);
 * printf("TLS heap peak %zu bytes\n", st.peak);
 * @endcode
 */
#ifndef TETHER_HEAP_H
#define TETHER_HEAP_H

#include <stddef.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What the hooks counted since the last tether_heap_use_*() call. */
typedef struct tether_heap_stats {
    size_t in_use;            /**< Bytes requested and not yet freed. */
    size_t peak;              /**< Largest in_use seen (since the last reset of the peak). */
    size_t allocations;       /**< Successful allocations. */
    size_t frees;             /**< Frees of non-NULL pointers. */
    size_t failures;          /**< Refused allocations. */
    size_t last_failed_size;  /**< Bytes asked for by the last refused allocation. */
    size_t in_use_at_failure; /**< Bytes in use when that allocation was refused. */
    size_t cap;               /**< Limit in force: arena size, or the system-mode cap; 0 = none. */
    size_t arena_peak;        /**< Arena mode: highest arena offset used (headers included). */
} tether_heap_stats;

/**
 * Serves mbedTLS from the C library's calloc/free, counting.
 * @param cap refuse an allocation that would bring in_use above this; 0 for no cap.
 */
void tether_heap_use_system(size_t cap);

/**
 * Serves mbedTLS from @p buf only; an allocation that does not fit fails.
 * @return TETHER_INVALID_ARGUMENT if the buffer is too small to hold one block.
 */
TETHER_MUST_USE tether_status tether_heap_use_arena(void *buf, size_t len);

/** Copies the counters. */
void tether_heap_get_stats(tether_heap_stats *out);

/** Sets the peak to the bytes in use now, to measure one phase. */
void tether_heap_reset_peak(void);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_HEAP_H */
