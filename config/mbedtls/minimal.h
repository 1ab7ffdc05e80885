/*
 * Profile `minimal`: 2 KB in / 2 KB out, TLS 1.2 only, fragment-length negotiation.
 *
 * The smallest setting that still provisions with an EC P-256 certificate: the device asks
 * for 2 KB records; server certificates arrive over several records and are re-assembled.
 * Application messages are limited by the 2 KB records too (MQTT payloads are split by TLS,
 * so that limits nothing but the size of one TLS record). TLS 1.3 is off, as in `tight`.
 */
#ifndef TETHER_PROFILE_MINIMAL_H
#define TETHER_PROFILE_MINIMAL_H
/* azure.h and azure-ecc.h are this profile with their own name, input buffer or key types. */
#ifndef TETHER_PROFILE_NAME
#define TETHER_PROFILE_NAME "minimal"
#endif
#ifndef MBEDTLS_SSL_IN_CONTENT_LEN
#define MBEDTLS_SSL_IN_CONTENT_LEN 2048
#endif
#ifndef MBEDTLS_SSL_OUT_CONTENT_LEN
#define MBEDTLS_SSL_OUT_CONTENT_LEN 2048
#endif
#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
#ifndef TETHER_MFL_DEFAULT
#define TETHER_MFL_DEFAULT 2048
#endif
/* AES-GCM suites only (IoT Hub and DPS prefer them): without CBC each record buffer is 288 B
 * smaller, at the handshake's peak and while connected. The price: a password-protected key
 * cannot be decrypted on the device (TLS_KEY_ENCRYPTED_UNSUPPORTED); store it in clear,
 * protected by flash encryption or a secure element. */
#define TETHER_AEAD_ONLY
/* A 2-bit window for the points the device does not know in advance (the server's keys):
 * 1.9 KB less at the peak (verifying the server's chain) for 6.6 % more instructions per
 * registration; the generator keeps mbedTLS's precomputed table in flash. Measured with
 * bench/config/lever-window-2.h; see BENCHMARKS.md. */
#define MBEDTLS_ECP_WINDOW_SIZE 2
/* The entropy pool hashes with SHA-256 instead of SHA-512: a smaller context, kept for the
 * life of the TLS context. */
#define MBEDTLS_ENTROPY_FORCE_SHA256
#include "tether_common.h"
#endif
