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
#define TETHER_PROFILE_NAME         "minimal"
#define MBEDTLS_SSL_IN_CONTENT_LEN  2048
#define MBEDTLS_SSL_OUT_CONTENT_LEN 2048
#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
#define TETHER_MFL_DEFAULT 2048
#include "tether_common.h"
#endif
