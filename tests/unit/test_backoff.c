/* Retry delays: bounds of both jitters, the cap, the floor, retry-after, and saturation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/backoff.h"

static uint32_t delay(const tether_backoff_options *o, uint32_t attempt, uint32_t previous,
                      uint32_t random)
{
    tether_backoff_step s = {attempt, previous, random, false, 0};
    return tether_backoff_delay_ms(o, &s);
}

static void defaults(void **state)
{
    (void)state;
    tether_backoff_options o = tether_backoff_options_default();
    assert_int_equal(o.base_ms, 1000);
    assert_int_equal(o.cap_ms, 60000);
    assert_int_equal(o.min_ms, 100);
    assert_int_equal(o.jitter, TETHER_BACKOFF_FULL_JITTER);
    assert_int_equal(tether_backoff_delay_ms(NULL, NULL), 100);
}

static void full_jitter_spans_the_exponential_bound(void **state)
{
    (void)state;
    tether_backoff_options o = tether_backoff_options_default();
    /* The lowest random value gives the floor, the highest the bound base * 2^attempt. */
    for (uint32_t attempt = 0; attempt < 40; attempt++) {
        uint64_t bound = (uint64_t)1000 << (attempt < 20 ? attempt : 20);
        if (bound > 60000)
            bound = 60000;
        assert_int_equal(delay(&o, attempt, 0, 0), 100);
        assert_int_equal(delay(&o, attempt, 0, UINT32_MAX), bound);
        uint32_t mid = delay(&o, attempt, 0, 0x80000000u);
        assert_true(mid >= 100 + (bound - 100) / 2 - 1 && mid <= 100 + (bound - 100) / 2 + 1);
    }
    assert_int_equal(delay(&o, UINT32_MAX, 0, UINT32_MAX), 60000);
    /* Monotonic in the random value. */
    uint32_t last = 0;
    for (uint64_t r = 0; r <= UINT32_MAX; r += 0x01000000u) {
        uint32_t d = delay(&o, 3, 0, (uint32_t)r);
        assert_true(d >= last && d >= 100 && d <= 8000);
        last = d;
    }
}

static void decorrelated_jitter_grows_from_the_last_delay(void **state)
{
    (void)state;
    tether_backoff_options o = tether_backoff_options_default();
    o.jitter = TETHER_BACKOFF_DECORRELATED_JITTER;
    assert_int_equal(delay(&o, 0, 0, 0), 1000);
    assert_int_equal(delay(&o, 0, 0, UINT32_MAX), 3000);
    assert_int_equal(delay(&o, 5, 5000, UINT32_MAX), 15000);
    assert_int_equal(delay(&o, 5, 5000, 0), 1000);
    assert_int_equal(delay(&o, 9, 50000, UINT32_MAX), 60000);
    assert_int_equal(delay(&o, 9, UINT32_MAX, UINT32_MAX), 60000);
}

static void equal_jitter_never_falls_below_half_the_bound(void **state)
{
    (void)state;
    tether_backoff_options o = tether_backoff_options_default();
    o.jitter = TETHER_BACKOFF_EQUAL_JITTER;
    for (uint32_t attempt = 0; attempt < 40; attempt++) {
        uint64_t bound = (uint64_t)1000 << (attempt < 20 ? attempt : 20);
        if (bound > 60000)
            bound = 60000;
        assert_int_equal(delay(&o, attempt, 0, 0), bound / 2);
        assert_int_equal(delay(&o, attempt, 0, UINT32_MAX), bound);
    }
}

static void retry_after_wins_within_the_cap(void **state)
{
    (void)state;
    tether_backoff_options o = tether_backoff_options_default();
    tether_backoff_step s = {7, 0, UINT32_MAX, true, 3};
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 3000);
    s.random = 0;
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 3000);
    s.retry_after_s = 0; /* no advice: the exponential delay of attempt 7 (random 0) */
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 100);
    s.random = UINT32_MAX;
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 60000);
    s.retry_after_s = 3600;
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 60000);
    o.retry_after_cap_ms = UINT32_MAX; /* the caller bounds it by its own deadline */
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 3600000);
    o.retry_after_cap_ms = 0;
    s.retry_after_s = UINT32_MAX;
    assert_int_equal(tether_backoff_delay_ms(&o, &s), 60000);
    o.cap_ms = UINT32_MAX;
    assert_int_equal(tether_backoff_delay_ms(&o, &s), UINT32_MAX);
}

static void odd_options_are_read_sensibly(void **state)
{
    (void)state;
    tether_backoff_options o = {0, 50, 200, TETHER_BACKOFF_FULL_JITTER, 0};
    assert_int_equal(delay(&o, 0, 0, UINT32_MAX), 200); /* cap below the floor: the floor */
    o = (tether_backoff_options){0, 1000, 0, TETHER_BACKOFF_FULL_JITTER, 0};
    assert_int_equal(delay(&o, 0, 0, UINT32_MAX), 1); /* base 0 counts as 1 */
    assert_int_equal(delay(&o, 4, 0, UINT32_MAX), 16);
    o = (tether_backoff_options){UINT32_MAX, UINT32_MAX, 0, TETHER_BACKOFF_FULL_JITTER, 0};
    assert_int_equal(delay(&o, 31, 0, UINT32_MAX), UINT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(full_jitter_spans_the_exponential_bound),
        cmocka_unit_test(decorrelated_jitter_grows_from_the_last_delay),
        cmocka_unit_test(equal_jitter_never_falls_below_half_the_bound),
        cmocka_unit_test(retry_after_wins_within_the_cap),
        cmocka_unit_test(odd_options_are_read_sensibly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
