/* The client's handshake messages against the maximum fragment length (issue 10, item 3):
 * their sizes, the check made before connecting, and the words of both diagnoses. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "mbedtls/ecp.h"
#include "mbedtls/pk.h"
#include "mbedtls/rsa.h"
#include "mbedtls/x509_crt.h"
#include "tether/status.h"
#include "tether/tls.h"

/* A chain of two certificates: only their DER lengths count. */
static void two_certificates(mbedtls_x509_crt *leaf, mbedtls_x509_crt *issuer)
{
    memset(leaf, 0, sizeof *leaf);
    memset(issuer, 0, sizeof *issuer);
    leaf->raw.len = 600;
    leaf->next = issuer;
    issuer->raw.len = 400;
}

static void sizes_of_certificate_and_certificate_verify(void **state)
{
    (void)state;
    mbedtls_x509_crt leaf, issuer;
    two_certificates(&leaf, &issuer);
    size_t tls12 = 0, tls13 = 0, verify = 1;
    tether_tls_handshake_sizes(&leaf, NULL, &tls12, &tls13, &verify);
    assert_int_equal(tls12, 4 + 3 + (3 + 600) + (3 + 400));
    assert_int_equal(tls13, 4 + 1 + 3 + (3 + 600 + 2) + (3 + 400 + 2));
    assert_int_equal(verify, 0); /* no key, no CertificateVerify */

    /* EC P-256: an ECDSA signature is at most 72 bytes. */
    mbedtls_pk_context ec;
    mbedtls_pk_init(&ec);
    assert_int_equal(mbedtls_pk_setup(&ec, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    static const uint8_t d[32] = {[31] = 1}; /* any valid private value: only its curve counts */
    assert_int_equal(mbedtls_ecp_read_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(ec), d, sizeof d),
                     0);
    tether_tls_handshake_sizes(&leaf, &ec, NULL, NULL, &verify);
    assert_int_equal(verify, 4 + 2 + 2 + 72);
    mbedtls_pk_free(&ec);

    /* RSA 4096: a 512-byte signature, so CertificateVerify alone exceeds 512. */
    mbedtls_pk_context rsa;
    mbedtls_pk_init(&rsa);
    assert_int_equal(mbedtls_pk_setup(&rsa, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA)), 0);
    static uint8_t n[512] = {0x80};
    n[sizeof n - 1] = 1;
    static const uint8_t e[] = {1, 0, 1};
    assert_int_equal(mbedtls_rsa_import_raw(mbedtls_pk_rsa(rsa), n, sizeof n, NULL, 0, NULL, 0,
                                            NULL, 0, e, sizeof e),
                     0);
    tether_tls_handshake_sizes(&leaf, &rsa, NULL, NULL, &verify);
    assert_int_equal(verify, 4 + 2 + 2 + 512);
    mbedtls_pk_free(&rsa);
}

static void fragment_limit_reads_the_options(void **state)
{
    (void)state;
    tether_tls_options o = tether_tls_options_default();
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    assert_int_equal(tether_tls_fragment_limit(&o), b.default_max_fragment);
    o.max_fragment = 1024;
    assert_int_equal(tether_tls_fragment_limit(&o), 1024);
    o.max_fragment = TETHER_TLS_MAX_FRAGMENT_NONE;
    assert_int_equal(tether_tls_fragment_limit(&o), 0);
}

static tether_tls tls;

static void check_names_the_message_that_does_not_fit(void **state)
{
    (void)state;
    assert_int_equal(tether_tls_init(&tls), TETHER_OK);
    tether_tls_options o = tether_tls_options_default();
    o.versions = TETHER_TLS_VERSIONS_1_2;
    o.max_fragment = 1024;
    /* No identity: nothing of the client's can be too large. */
    assert_int_equal(tether_tls_check_fragment_length(&tls, &o), TETHER_OK);

    tls.has_identity = true;
    tls.certificate_message_size = 1038;
    tls.certificate_message_size_tls13 = 1043;
    tls.certificate_verify_size = 80;
    assert_int_equal(tether_tls_check_fragment_length(&tls, &o),
                     TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL);
    const tether_tls_diag *d = tether_tls_last_diag(&tls);
    assert_int_equal(d->status, TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL);
    assert_int_equal(d->needed, 1038);
    assert_int_equal(d->available, 1024);
    assert_int_equal(d->handshake_type, 11); /* Certificate */
    assert_int_equal(d->alert, -1);

    o.max_fragment = 2048;
    assert_int_equal(tether_tls_check_fragment_length(&tls, &o), TETHER_OK);
    o.max_fragment = TETHER_TLS_MAX_FRAGMENT_NONE;
    assert_int_equal(tether_tls_check_fragment_length(&tls, &o), TETHER_OK);

    /* A short chain with an RSA-4096 key: CertificateVerify is the one. */
    tls.certificate_message_size = 400;
    tls.certificate_message_size_tls13 = 403;
    tls.certificate_verify_size = 520;
    o.max_fragment = 512;
    assert_int_equal(tether_tls_check_fragment_length(&tls, &o),
                     TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL);
    assert_int_equal(tether_tls_last_diag(&tls)->handshake_type, 15); /* CertificateVerify */
    assert_int_equal(tether_tls_last_diag(&tls)->needed, 520);

    /* tether_tls_connect() refuses before dialling (port 1 would not answer anyway). */
    tls.certificate_verify_size = 80;
    tls.has_trust = true;
    o.host = "localhost";
    o.port = 1;
    o.max_fragment = 512;
    tls.certificate_message_size = 1038;
    assert_int_equal(tether_tls_connect(&tls, &o), TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL);
    assert_int_equal(tether_tls_last_diag(&tls)->stage, TETHER_TLS_STAGE_NONE);
    assert_int_equal(tether_tls_last_diag(&tls)->bytes_sent, 0);
    tls.has_identity = false; /* nothing was parsed: nothing to free */
    tether_tls_free(&tls);
}

static void describe_before_and_after_connecting(void **state)
{
    (void)state;
    tether_tls_diag d;
    memset(&d, 0, sizeof d);
    d.status = TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL;
    d.alert = -1;
    d.needed = 1038;
    d.available = 512;
    d.handshake_type = 11;
    char text[2048];
    tether_tls_describe(&d, text, sizeof text);
    assert_non_null(strstr(text, "error TLS_FRAGMENT_LENGTH_TOO_SMALL before connecting\n"));
    assert_non_null(strstr(text, "your Certificate message is 1038 bytes; the maximum fragment "
                                 "length asked for is 512 bytes"));
    assert_non_null(strstr(text, "Nothing was sent."));
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    if (b.in_content_len >= 2048 && b.out_content_len >= 2048)
        assert_non_null(strstr(text, "fix: --max-fragment 2048, or a shorter chain\n"));

    d.alert = 22;
    d.stage = TETHER_TLS_STAGE_FINISHED;
    tether_tls_describe(&d, text, sizeof text);
    assert_null(strstr(text, "before connecting"));
    assert_non_null(strstr(text, "the server accepted the 512-byte maximum fragment length, "
                                 "got your 1038-byte Certificate message in one record and "
                                 "answered record_overflow"));
    assert_non_null(strstr(text, "TLS alert from the server: record_overflow (22)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_of_certificate_and_certificate_verify),
        cmocka_unit_test(fragment_limit_reads_the_options),
        cmocka_unit_test(check_names_the_message_that_does_not_fit),
        cmocka_unit_test(describe_before_and_after_connecting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
