/* libFuzzer target for what a client puts in front of the cloud's authentication before it is
 * known: the MQTT username and password (SAS token) of a CONNECT, and the certificate it sent
 * in the TLS handshake (DER as on the wire, or PEM as enrolled). The first byte picks the
 * input kind; the checks are those of the plugin (auth.c, dps.c, hub.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "parse.h"
#include "sas.h"
#include "util.h"
#include "x509util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A CA of the shape `tether pki init` makes (EC P-256), for chain checks against leaves. */
static const char ca_pem[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBlzCCAT6gAwIBAgITFqVCcVXVTKnKI3lZgwbLuBBHIzAKBggqhkjOPQQDAjAZ\n"
                             "MRcwFQYDVQQDDA50ZXRoZXIgZnV6eiBDQTAgFw0yNjExMzAwNzE1MjlaGA8yMTI2\n"
                             "MTEwNjA3MTUyOVowGTEXMBUGA1UEAwwOdGV0aGVyIGZ1enogQ0EwWTATBgcqhkjO\n"
                             "PQIBBggqhkjOPQMBBwNCAATxCzK0zb+MYWTG/zXK6q5YU07sC1UT+Dssha+0uPrO\n"
                             "sLCERxiJ8XvcwV+7ypp/19DU3/qdNofJfrnaU+01yppho2MwYTAdBgNVHQ4EFgQU\n"
                             "hzH2MolQNB4h/hr2H/0c9ka0UK0wHwYDVR0jBBgwFoAUhzH2MolQNB4h/hr2H/0c\n"
                             "9ka0UK0wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAgQwCgYIKoZIzj0E\n"
                             "AwIDRwAwRAIgV24lM5ydKmQQGJYC2lcXS5LVpg2x+3Uka8/K37P2fqkCIAs7vPVF\n"
                             "WmMWBJLjG+h7r6BZfYuVP+FoEuPh8LYf6/EB\n"
                             "-----END CERTIFICATE-----\n";

static void check_certificate(X509 *cert, const char *claimed_id)
{
    char sha1[41];
    char sha256[65];
    char cn[TC_ID_MAX + 2];
    char err[128];
    (void)tc_x509_thumbprints(cert, sha1, sha256);
    if (tc_x509_cn(cert, cn, sizeof cn) == 0) {
        (void)tc_registration_id_valid(cn);
        (void)strcmp(cn, claimed_id);
    }
    (void)tc_x509_check_time(cert);
    (void)tc_x509_verify_to(cert, NULL, ca_pem, err, sizeof err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) {
        return 0;
    }
    size_t n = size - 1;
    char *text = malloc(n + 1);
    memcpy(text, data + 1, n);
    text[n] = '\0';
    switch (data[0] % 4) {
    case 0: { /* the certificate a client sent, DER as in the TLS Certificate message */
        const unsigned char *p = data + 1;
        X509 *cert = d2i_X509(NULL, &p, (long)n);
        if (cert != NULL) {
            check_certificate(cert, "dev-1");
            X509_free(cert);
        }
        break;
    }
    case 1: { /* an enrolled certificate or CA, PEM */
        X509 *cert = tc_x509_from_pem(text);
        if (cert != NULL) {
            check_certificate(cert, "dev-1");
            X509_free(cert);
        }
        char tp[80];
        tc_thumbprint_normalise(text, tp, sizeof tp);
        break;
    }
    case 2: { /* CONNECT: "username\npassword", checked as DPS or a hub would */
        char *nl = strchr(text, '\n');
        const char *password = "";
        if (nl != NULL) {
            *nl = '\0';
            password = nl + 1;
        }
        struct tc_username u;
        if (tc_username_parse(text, &u) == 0) {
            char resource[TC_HOST_MAX + TC_ID_MAX + 32];
            if (u.kind == TC_USER_DPS) {
                snprintf(resource, sizeof resource, "%s/registrations/%s", u.scope_or_host, u.id);
            } else {
                snprintf(resource, sizeof resource, "%s/devices/%s", u.scope_or_host, u.id);
            }
            (void)tc_sas_check(password, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", resource,
                               1000);
            char *derived = tc_sas_derive_key("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", u.id);
            free(derived);
        }
        break;
    }
    default: { /* a SAS token on its own: its fields, and a key from the input */
        struct tc_sas sas;
        if (tc_sas_parse(text, &sas) == 0) {
            tc_sas_free(&sas);
        }
        (void)tc_sas_check(text, text, "0ne1/registrations/d", 1000);
        char *derived = tc_sas_derive_key(text, "dev-1");
        free(derived);
        break;
    }
    }
    free(text);
    return 0;
}
