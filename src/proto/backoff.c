/* Retry delays (include/tether/backoff.h): exponential with jitter, capped; pure. */
#include "tether/backoff.h"

#include <stddef.h>

tether_backoff_options tether_backoff_options_default(void)
{
    tether_backoff_options o = {1000u, 60000u, 100u, TETHER_BACKOFF_FULL_JITTER, 0u};
    return o;
}

/* Maps a uniform 32-bit value onto [lo, hi] (lo <= hi) without modulo bias worth noting. */
static uint32_t uniform(uint32_t random, uint32_t lo, uint32_t hi)
{
    uint64_t span = (uint64_t)hi - lo + 1u;
    return lo + (uint32_t)(((uint64_t)random * span) >> 32);
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

uint32_t tether_backoff_delay_ms(const tether_backoff_options *options,
                                 const tether_backoff_step *step)
{
    tether_backoff_options o = options ? *options : tether_backoff_options_default();
    if (o.base_ms == 0)
        o.base_ms = 1;
    if (o.cap_ms < o.min_ms)
        o.cap_ms = o.min_ms;
    if (step == NULL)
        return o.min_ms;

    if (step->has_retry_after && step->retry_after_s > 0) {
        uint64_t ms = (uint64_t)step->retry_after_s * 1000u;
        uint32_t most = o.retry_after_cap_ms ? o.retry_after_cap_ms : o.cap_ms;
        return clamp(ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms, o.min_ms,
                     most < o.min_ms ? o.min_ms : most);
    }

    uint32_t lo, hi;
    if (o.jitter == TETHER_BACKOFF_DECORRELATED_JITTER) {
        uint64_t three = (uint64_t)(step->previous_ms ? step->previous_ms : o.base_ms) * 3u;
        lo = o.base_ms;
        hi = three > o.cap_ms ? o.cap_ms : (uint32_t)three;
    } else {
        /* base * 2^attempt, saturating at the cap. */
        uint64_t bound = o.base_ms;
        for (uint32_t i = 0; i < step->attempt && bound < o.cap_ms; i++)
            bound *= 2u;
        hi = bound > o.cap_ms ? o.cap_ms : (uint32_t)bound;
        lo = o.jitter == TETHER_BACKOFF_EQUAL_JITTER ? hi / 2u : o.min_ms;
    }
    if (lo > hi)
        lo = hi;
    return clamp(uniform(step->random, lo, hi), o.min_ms, o.cap_ms);
}
