/*
 * Profile `azure`: made for Azure's RSA endpoints (tether cloud up --server-shape azure-rsa):
 * `minimal` with a 3,456-byte input buffer. 3.4 KB in / 2 KB out, TLS 1.2 only, EC P-256 or
 * RSA device keys.
 *
 * Azure DPS ignores max_fragment_length and sends its 3,397-byte Certificate record whole
 * (RSA-2048 leaf of 1,875 B + RSA-4096 issuing CA of 1,509 B; cloud/README.md "Server
 * shapes"), so the input buffer is sized to that record with 59 B to spare: the smallest
 * that provisions. What else it keeps from `minimal` was measured against the Azure RSA shape
 * (BENCHMARKS.md, "Levers against the Azure RSA shape"): AES-GCM suites only, the 2-bit EC
 * window, the SHA-256 entropy pool, variable buffers. Give it one root (DigiCert Global Root
 * G2, or the local cloud's pki/azure-rsa-root.pem) or a bundle: only the root in use is
 * kept (below).
 *
 * Once the handshake is done, mbedTLS 3.6 with variable buffers shrinks the input buffer to
 * the fragment length it asked for, or when it asked for none to the smaller of the two
 * buffers (MBEDTLS_TLS_EXT_ADV_CONTENT_LEN), whether or not the server agreed: 2 KB here. A
 * hub that ignores fragment length sends one MQTT packet as one record, so the largest
 * cloud-to-device message is about 1.8 KB of payload (`tether doctor --offline
 * --server-shape azure-rsa` gives the figure); asking for 2 KB (as minimal does) costs
 * nothing more and lets a hub that honours it (IoT Hub's preview) send larger messages in
 * 2 KB records.
 */
#ifndef TETHER_PROFILE_AZURE_H
#define TETHER_PROFILE_AZURE_H
#define TETHER_PROFILE_NAME        "azure"
#define MBEDTLS_SSL_IN_CONTENT_LEN 3456
/* Roots parsed on demand, one at a time, keeping only the issuer of the server's chain
 * (src/tls/tls.c, trusted_roots_for): a CA file with several roots costs no more heap than
 * one, and one root costs less, as it is no longer held from before the Certificate record
 * arrives (x86-64, registration against azure-rsa: one root 22,598 -> 20,796 B; the local
 * cloud's three-root ca.pem 26,447 -> 20,796 B). */
#define MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK
#include "minimal.h"
#endif
