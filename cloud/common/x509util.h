/* X.509 helpers on OpenSSL: thumbprints, subject CN, chain checks against a group CA. */
#ifndef TC_X509UTIL_H
#define TC_X509UTIL_H

#include <stddef.h>

#include <openssl/x509.h>

/* Upper-case hex SHA-1 (41 bytes) and SHA-256 (65 bytes) of the DER certificate. */
int tc_x509_thumbprints(X509 *cert, char sha1[41], char sha256[65]);
/* Subject CN into out; -1 when absent or too long. */
int tc_x509_cn(X509 *cert, char *out, size_t size);
/* First certificate in PEM text; NULL if none. */
X509 *tc_x509_from_pem(const char *pem);
/* 0 when now is within notBefore..notAfter. */
int tc_x509_check_time(X509 *cert);
/* Verify leaf up to ca_pem (a root or an intermediate: partial chains allowed), using
 * untrusted (may be NULL) for the certificates in between. Returns 0, or the OpenSSL
 * verify error code (> 0), or -1. err_text gets a message. */
int tc_x509_verify_to(X509 *leaf, STACK_OF(X509) * untrusted, const char *ca_pem, char *err_text,
                      size_t err_size);
/* Normalise a thumbprint argument: strip ':' and spaces, upper-case. */
void tc_thumbprint_normalise(const char *in, char *out, size_t size);

#endif
