/* tether's allocator hooks, driven through mbedTLS's own calloc/free entry points. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mbedtls/platform.h"
#include "tether/heap.h"
#include "tether/status.h"
#include "tether/tls.h"

static _Alignas(16) uint8_t arena[4096];

static void system_mode_counts_bytes_and_peak(void **state)
{
    (void)state;
    tether_heap_use_system(0);
    void *a = mbedtls_calloc(1, 100);
    void *b = mbedtls_calloc(10, 20);
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_equal(s.in_use, 300);
    assert_int_equal(s.peak, 300);
    assert_int_equal(s.allocations, 2);
    mbedtls_free(a);
    tether_heap_get_stats(&s);
    assert_int_equal(s.in_use, 200);
    assert_int_equal(s.peak, 300);
    tether_heap_reset_peak();
    tether_heap_get_stats(&s);
    assert_int_equal(s.peak, 200);
    mbedtls_free(b);
    mbedtls_free(NULL);
    tether_heap_get_stats(&s);
    assert_int_equal(s.in_use, 0);
    assert_int_equal(s.frees, 2);
}

static void system_cap_refuses_and_records_the_request(void **state)
{
    (void)state;
    tether_heap_use_system(1000);
    void *a = mbedtls_calloc(1, 900);
    assert_non_null(a);
    assert_null(mbedtls_calloc(1, 101));
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.last_failed_size, 101);
    assert_int_equal(s.cap, 1000);
    void *b = mbedtls_calloc(1, 100); /* exactly up to the cap is fine */
    assert_non_null(b);
    mbedtls_free(a);
    mbedtls_free(b);
}

static void overflowing_request_is_refused(void **state)
{
    (void)state;
    tether_heap_use_system(0);
    assert_null(mbedtls_calloc(SIZE_MAX / 2, 4));
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_equal(s.failures, 1);
}

static void arena_serves_zeroed_aligned_memory_within_bounds(void **state)
{
    (void)state;
    assert_int_equal(tether_heap_use_arena(arena, sizeof arena), TETHER_OK);
    uint8_t *p = mbedtls_calloc(3, 33);
    assert_non_null(p);
    assert_true(p >= arena && p + 99 <= arena + sizeof arena);
    assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
    for (int i = 0; i < 99; i++)
        assert_int_equal(p[i], 0);
    memset(p, 0xAB, 99);
    mbedtls_free(p);
    uint8_t *q = mbedtls_calloc(1, 99);
    for (int i = 0; i < 99; i++)
        assert_int_equal(q[i], 0); /* calloc semantics even on reuse */
    mbedtls_free(q);
}

static void arena_refuses_past_its_size_then_recovers(void **state)
{
    (void)state;
    assert_int_equal(tether_heap_use_arena(arena, sizeof arena), TETHER_OK);
    void *big = mbedtls_calloc(1, 3000);
    assert_non_null(big);
    assert_null(mbedtls_calloc(1, 2000));
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.last_failed_size, 2000);
    mbedtls_free(big);
    void *again = mbedtls_calloc(1, 3500);
    assert_non_null(again); /* freed space coalesced back into one block */
    mbedtls_free(again);
}

static void arena_coalesces_fragmented_blocks(void **state)
{
    (void)state;
    assert_int_equal(tether_heap_use_arena(arena, sizeof arena), TETHER_OK);
    void *p[8];
    for (int i = 0; i < 8; i++)
        p[i] = mbedtls_calloc(1, 400);
    for (int i = 0; i < 8; i++)
        assert_non_null(p[i]);
    /* Free in an order that leaves holes, then the rest. */
    for (int i = 0; i < 8; i += 2)
        mbedtls_free(p[i]);
    assert_null(mbedtls_calloc(1, 1200)); /* no hole is that large */
    for (int i = 1; i < 8; i += 2)
        mbedtls_free(p[i]);
    void *whole = mbedtls_calloc(1, 3900);
    assert_non_null(whole);
    mbedtls_free(whole);
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_equal(s.in_use, 0);
    assert_true(s.arena_peak <= sizeof arena);
}

static void arena_too_small_is_rejected(void **state)
{
    (void)state;
    uint8_t tiny[8];
    assert_int_equal(tether_heap_use_arena(tiny, sizeof tiny), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_heap_use_arena(NULL, 100), TETHER_INVALID_ARGUMENT);
}

static void tls_setup_under_a_tiny_arena_reports_alloc_failure(void **state)
{
    (void)state;
    /* Parsing a certificate needs heap: with 200 bytes it must fail as an allocation
     * failure, not as a parse error. */
    static _Alignas(16) uint8_t small[200];
    static tether_tls tls;
    assert_int_equal(tether_heap_use_arena(small, sizeof small), TETHER_OK);
    tether_status st = tether_tls_init(&tls);
    if (st == TETHER_OK) {
        static const char pem[] =
            "-----BEGIN CERTIFICATE-----\n"
            "MIIBfjCCASOgAwIBAgIUQ0VwQ4fIK9FN0VdDc3jkvMEvXJ0wCgYIKoZIzj0EAwIw\n"
            "FDESMBAGA1UEAwwJdGV0aGVyIENBMB4XDTI2MDEwMTAwMDAwMFoXDTM2MDEwMTAw\n"
            "MDAwMFowFDESMBAGA1UEAwwJdGV0aGVyIENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
            "AQcDQgAE6hN0N6aoMbyGVn3gYqQ6W6UMWcA7OfvdfIQwLZ9Gw2nXvkJkmw7GSnO1\n"
            "mXVy3fwJcRj8UhXwJ0mJZrl0pT0PkaNTMFEwHQYDVR0OBBYEFGpWq0g4YW5E9JZs\n"
            "dW1Yb3ZWc0xnMB8GA1UdIwQYMBaAFGpWq0g4YW5E9JZsdW1Yb3ZWc0xnMA8GA1Ud\n"
            "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAN3VwZ5pF8m1S0Vd1pXG9QKD\n"
            "c9Fh7m2XxWqUQ0pEHfvtAiEAqK9VYx1r1fQpQ1d3yVtTz7d0FgK1XxG4sW3rNQ2v\n"
            "iE0=\n"
            "-----END CERTIFICATE-----\n";
        st = tether_tls_add_trust(&tls, (const uint8_t *)pem, sizeof pem);
    }
    tether_heap_stats s;
    tether_heap_get_stats(&s);
    assert_int_not_equal(st, TETHER_OK);
    assert_true(s.failures > 0);
    tether_tls_free(&tls);
    tether_heap_use_system(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(system_mode_counts_bytes_and_peak),
        cmocka_unit_test(system_cap_refuses_and_records_the_request),
        cmocka_unit_test(overflowing_request_is_refused),
        cmocka_unit_test(arena_serves_zeroed_aligned_memory_within_bounds),
        cmocka_unit_test(arena_refuses_past_its_size_then_recovers),
        cmocka_unit_test(arena_coalesces_fragmented_blocks),
        cmocka_unit_test(arena_too_small_is_rejected),
        cmocka_unit_test(tls_setup_under_a_tiny_arena_reports_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
