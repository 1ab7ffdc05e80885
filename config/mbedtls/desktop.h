/*
 * Profile `desktop`: mbedTLS's own defaults, 16 KB in / 16 KB out, TLS 1.2 and 1.3.
 *
 * For hosts and gateways where memory is not the question. Any record a server sends fits
 * the 16 KB input buffer, and any client chain fits the 16 KB output buffer, so this is the
 * profile to compare the others with when a handshake fails. TLS 1.3 is on: it costs the
 * kept peer certificate and PSA state, which a desktop can pay.
 */
#ifndef TETHER_PROFILE_DESKTOP_H
#define TETHER_PROFILE_DESKTOP_H
#define TETHER_PROFILE_NAME         "desktop"
#define MBEDTLS_SSL_IN_CONTENT_LEN  16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 16384
#define TETHER_TLS13
#include "tether_common.h"
#endif
