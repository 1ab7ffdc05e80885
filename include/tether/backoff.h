/**
 * @file backoff.h
 * @brief How long to wait before retrying: exponential backoff with jitter, a cap, and the
 *        server's retry-after honoured. Pure: the caller passes the attempt number and a
 *        random value, and reads the clock itself.
 *
 * With full jitter the delay is uniform in [min_ms, min(cap_ms, base_ms * 2^attempt)]; with
 * equal jitter in the upper half of that range, so it grows with every attempt (what a
 * reconnect loop wants: a fleet is spread out and no device ever retries fast again); with
 * decorrelated jitter it is uniform in [base_ms, min(cap_ms, 3 * previous delay)]. When the
 * server said retry-after (more than 0 s), that wins, bounded by retry_after_cap_ms (cap_ms
 * when 0) and at least min_ms; a retry-after of 0 is no advice at all, and the exponential
 * delay applies. The delay is never below min_ms, so a retry loop is never tight.
 *
 * @code
 * tether_backoff_options opts = tether_backoff_options_default();
 * tether_backoff_step step = {.attempt = attempts++, .previous_ms = last,
 *                             .random = port_random_u32()};
 * if (rt.has_retry_after) {
 *     step.has_retry_after = true;
 *     step.retry_after_s = rt.retry_after_s;
 * }
 * last = tether_backoff_delay_ms(&opts, &step);
 * @endcode
 */
#ifndef TETHER_BACKOFF_H
#define TETHER_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How the random value spreads the delays of a fleet retrying together. */
typedef enum tether_backoff_jitter {
    TETHER_BACKOFF_FULL_JITTER = 0,     /**< Uniform up to the exponential bound. */
    TETHER_BACKOFF_DECORRELATED_JITTER, /**< Uniform between base and 3x the last delay. */
    TETHER_BACKOFF_EQUAL_JITTER         /**< Uniform in the upper half of the exponential bound. */
} tether_backoff_jitter;

/** Settings; start from tether_backoff_options_default(). */
typedef struct tether_backoff_options {
    uint32_t base_ms; /**< First bound (full) or lower bound (decorrelated); default 1000. */
    uint32_t cap_ms;  /**< No delay exceeds it, retry-after included; default 60000. */
    uint32_t min_ms;  /**< No delay is shorter; default 100. */
    tether_backoff_jitter jitter; /**< Default full jitter. */
    /** Largest retry-after honoured; 0 (the default): cap_ms. A caller with its own overall
     *  deadline (DPS) sets UINT32_MAX and bounds the wait by the deadline itself. */
    uint32_t retry_after_cap_ms;
} tether_backoff_options;

/** One retry to plan. */
typedef struct tether_backoff_step {
    uint32_t attempt;       /**< 0 for the first retry, then 1, 2, ... */
    uint32_t previous_ms;   /**< The delay returned for the previous attempt (decorrelated). */
    uint32_t random;        /**< A uniformly random 32-bit value from the port. */
    bool has_retry_after;   /**< The server gave retry-after... */
    uint32_t retry_after_s; /**< ...of this many seconds; 0 counts as none. */
} tether_backoff_step;

/** base 1 s, cap 60 s, min 100 ms, full jitter. */
tether_backoff_options tether_backoff_options_default(void);

/**
 * The delay before the next attempt, in milliseconds. Options out of order are read
 * sensibly: a cap below the minimum is raised to it, a base of 0 counts as 1.
 */
uint32_t tether_backoff_delay_ms(const tether_backoff_options *options,
                                 const tether_backoff_step *step);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_BACKOFF_H */
