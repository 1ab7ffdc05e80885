/* The status table: every code named, explained and reachable by its name. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <string.h>

#include "tether/status.h"

static void every_code_has_name_message_and_hint(void **state)
{
    (void)state;
    for (int i = 0; i < TETHER_STATUS_COUNT; i++) {
        tether_status st = (tether_status)i;
        const char *name = tether_status_name(st);
        assert_string_not_equal(name, "UNKNOWN");
        assert_true(strlen(tether_status_message(st)) > 5);
        assert_true(strlen(tether_status_hint(st)) > 5);
        for (const char *p = name; *p; p++)
            assert_true(isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_');
    }
}

static void names_are_unique_and_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < TETHER_STATUS_COUNT; i++) {
        for (int j = i + 1; j < TETHER_STATUS_COUNT; j++)
            assert_string_not_equal(tether_status_name((tether_status)i),
                                    tether_status_name((tether_status)j));
        tether_status back = TETHER_STATUS_COUNT;
        assert_int_equal(tether_status_from_name(tether_status_name((tether_status)i), &back),
                         TETHER_OK);
        assert_int_equal(back, i);
    }
}

static void lookup_accepts_prefix_and_any_case(void **state)
{
    (void)state;
    tether_status st = TETHER_OK;
    assert_int_equal(tether_status_from_name("tether_tls_cert_chain_too_large", &st), TETHER_OK);
    assert_int_equal(st, TETHER_TLS_CERT_CHAIN_TOO_LARGE);
    assert_int_equal(tether_status_from_name("NO_SUCH_THING", &st), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_status_from_name(NULL, &st), TETHER_INVALID_ARGUMENT);
}

static void out_of_range_is_unknown(void **state)
{
    (void)state;
    assert_string_equal(tether_status_name(TETHER_STATUS_COUNT), "UNKNOWN");
    assert_string_equal(tether_status_name((tether_status)-1), "UNKNOWN");
}

static void seed_failures_are_named(void **state)
{
    (void)state;
    /* The forum thread's three codes each have their own status. */
    assert_string_equal(tether_status_name(TETHER_TLS_CERT_CHAIN_TOO_LARGE),
                        "TLS_CERT_CHAIN_TOO_LARGE");
    assert_string_equal(tether_status_name(TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE),
                        "TLS_PEER_CLOSED_IN_HANDSHAKE");
    assert_string_equal(tether_status_name(TETHER_TLS_ALLOC_FAILED), "TLS_ALLOC_FAILED");
    assert_string_equal(tether_status_name(TETHER_MQTT_CONNACK_NOT_AUTHORIZED),
                        "MQTT_CONNACK_NOT_AUTHORIZED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_name_message_and_hint),
        cmocka_unit_test(names_are_unique_and_round_trip),
        cmocka_unit_test(lookup_accepts_prefix_and_any_case),
        cmocka_unit_test(out_of_range_is_unknown),
        cmocka_unit_test(seed_failures_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
