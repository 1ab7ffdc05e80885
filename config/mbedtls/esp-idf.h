/*
 * Profile `esp-idf` (tether's default): 16 KB in / 4 KB out, TLS 1.2 only.
 *
 * ESP-IDF's default since v4.0 (CONFIG_MBEDTLS_ASYMMETRIC_CONTENT_LEN): the input buffer must
 * take any record the server sends (16 KB, as servers need not honour fragment-length
 * negotiation), while the output buffer only has to hold what the device sends. That is the
 * setting the seed's user hit: a client certificate chain over 4 KB no longer fits, and
 * mbedTLS fails the handshake. tether says so with both sizes (TLS_CERT_CHAIN_TOO_LARGE).
 * TLS 1.3 stays off as in ESP-IDF's default: Azure's endpoints speak 1.2, and 1.3 would
 * keep the whole server certificate and PSA state in RAM.
 */
#ifndef TETHER_PROFILE_ESP_IDF_H
#define TETHER_PROFILE_ESP_IDF_H
#define TETHER_PROFILE_NAME         "esp-idf"
#define MBEDTLS_SSL_IN_CONTENT_LEN  16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096
#include "tether_common.h"
#endif
