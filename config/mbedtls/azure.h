/*
 * Profile `azure`: made for Azure's RSA endpoints (tether cloud up --server-shape azure-rsa):
 * `minimal` with a 3,456-byte input buffer and a 1,280-byte output buffer. TLS 1.2 only, a
 * device chain of up to 1,280 B (EC P-256 leaf + intermediate), RSA and EC servers.
 *
 * Input: Azure DPS ignores max_fragment_length and sends its 3,397-byte Certificate record
 * whole (RSA-2048 leaf of 1,875 B + RSA-4096 issuing CA of 1,509 B; cloud/README.md "Server
 * shapes"), so the input buffer is that record with 59 B to spare: the smallest that
 * provisions.
 * Output: it must hold the device's own Certificate message in one record (mbedTLS cannot
 * split an outgoing handshake message): an EC P-256 leaf and its intermediate take about
 * 1,040 B (an RSA-2048 leaf from the same CA about 1.2 KB); a longer chain or an RSA-4096 leaf
 * does not fit (TLS_CERT_CHAIN_TOO_LARGE; tether doctor checks it). 768 B less than
 * minimal's 2 KB at the peak and while connected; what the device sends after the handshake
 * is split into records as needed.
 * Fragment length is not asked for (a request larger than the output buffer is not allowed).
 * Once connected, mbedTLS 3.6 with variable buffers shrinks the input buffer to the smaller of
 * the two buffers (MBEDTLS_TLS_EXT_ADV_CONTENT_LEN), 1,280 B here, and a hub that ignores
 * fragment length sends one MQTT packet as one record: the largest cloud-to-device message is
 * about 1.1 KB of payload (`tether doctor --offline --server-shape azure-rsa` gives it).
 * What else it keeps from `minimal` was measured against the Azure RSA shape (BENCHMARKS.md,
 * "Levers against the Azure RSA shape"): AES-GCM suites only, the 2-bit EC window, the
 * SHA-256 entropy pool, variable buffers.
 */
#ifndef TETHER_PROFILE_AZURE_H
#define TETHER_PROFILE_AZURE_H
#define TETHER_PROFILE_NAME         "azure"
#define MBEDTLS_SSL_IN_CONTENT_LEN  3456
#define MBEDTLS_SSL_OUT_CONTENT_LEN 1280
#define TETHER_MFL_DEFAULT          0
/* Roots parsed on demand, one at a time, keeping only the issuer of the server's chain
 * (src/tls/tls.c, trusted_roots_for): a CA file with several roots costs no more heap than
 * one, and one root costs less, as it is no longer held from before the Certificate record
 * arrives (x86-64, registration against azure-rsa: one root 22,598 -> 20,796 B; the local
 * cloud's three-root ca.pem 26,447 -> 20,796 B). */
#define MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK
#include "minimal.h"
#endif
