/* Which TLS versions the client offers, by host name as Azure splits them (PROTOCOL.md, "TLS":
 * DPS and {hub}.azure-devices.net speak 1.2 only, {hub}.device.{suffix} offers 1.3), and the
 * words of the failure a 1.2+1.3 offer meets with mbedTLS 3.6.6 against an RSA 1.2 server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tether/status.h"
#include "tether/tls.h"

static void device_host_names(void **state)
{
    (void)state;
    static const char *const device[] = {
        "myhub.device.azure-devices.net", "tether-3f9a01c2.device.localhost",
        "MYHUB.DEVICE.azure-devices.net", "h.Device.x", "myhub.device.azure-devices.net:8883"};
    static const char *const other[] = {"global.azure-devices-provisioning.net",
                                        "myhub.azure-devices.net",
                                        "localhost",
                                        "",
                                        "device.azure-devices.net",
                                        ".device.azure-devices.net",
                                        "myhub.device.",
                                        "myhub.device",
                                        "myhub.device..net",
                                        "myhub.xdevice.net",
                                        "myhub.devices.net",
                                        "myhub.dev",
                                        "a.b.device.azure-devices.net",
                                        "127.0.0.1",
                                        "myhub.device\x0e"
                                        "azure"};
    for (size_t i = 0; i < sizeof device / sizeof device[0]; i++)
        assert_true(tether_tls_is_device_host_name(device[i]));
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
        assert_false(tether_tls_is_device_host_name(other[i]));
    assert_false(tether_tls_is_device_host_name(NULL));
}

static void tls13_is_offered_by_host_unless_told(void **state)
{
    (void)state;
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    tether_tls_options o = tether_tls_options_default();
    assert_int_equal(o.versions, TETHER_TLS_VERSIONS_AZURE);

    o.host = "myhub.device.azure-devices.net";
    assert_int_equal(tether_tls_offers_tls13(&o), b.tls13);
    o.host = "global.azure-devices-provisioning.net";
    assert_false(tether_tls_offers_tls13(&o));
    o.host = "myhub.azure-devices.net";
    assert_false(tether_tls_offers_tls13(&o));

    o.versions = TETHER_TLS_VERSIONS_1_2_AND_1_3;
    assert_int_equal(tether_tls_offers_tls13(&o), b.tls13);
    o.versions = TETHER_TLS_VERSIONS_1_2;
    o.host = "myhub.device.azure-devices.net";
    assert_false(tether_tls_offers_tls13(&o));
    assert_false(tether_tls_offers_tls13(NULL));
}

static void server_signature_rejected_says_what_and_how(void **state)
{
    (void)state;
    tether_status code;
    assert_int_equal(tether_status_from_name("TLS_SERVER_SIGNATURE_REJECTED", &code), TETHER_OK);
    assert_int_equal(code, TETHER_TLS_SERVER_SIGNATURE_REJECTED);
    tether_tls_diag d;
    memset(&d, 0, sizeof d);
    d.status = TETHER_TLS_SERVER_SIGNATURE_REJECTED;
    d.alert = -1;
    d.stage = TETHER_TLS_STAGE_SERVER_CERTIFICATE;
    d.server_sig_alg = 0x0804;
    char text[2048];
    tether_tls_describe(&d, text, sizeof text);
    assert_non_null(strstr(text, "error TLS_SERVER_SIGNATURE_REJECTED during the TLS handshake"));
    assert_non_null(strstr(text, "the server chose TLS 1.2 and signed its ServerKeyExchange with "
                                 "rsa_pss_rsae_sha256 (0x0804)"));
    assert_non_null(strstr(text, "fix: offer TLS 1.2 only to this server (--tls12"));
    assert_non_null(strstr(text, "Mbed-TLS/mbedtls#10674"));
    d.server_sig_alg = 0x0806;
    tether_tls_describe(&d, text, sizeof text);
    assert_non_null(strstr(text, "rsa_pss_rsae_sha512 (0x0806)"));
    d.server_sig_alg = 0x0809; /* rsa_pss_pss_sha256: named by its number */
    tether_tls_describe(&d, text, sizeof text);
    assert_non_null(strstr(text, "an RSA-PSS scheme (0x0809)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(device_host_names),
        cmocka_unit_test(tls13_is_offered_by_host_unless_told),
        cmocka_unit_test(server_signature_rejected_says_what_and_how),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
