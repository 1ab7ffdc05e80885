/*
 * Profile `tight`: 4 KB in / 2 KB out, TLS 1.2 only, fragment-length negotiation.
 *
 * For a device with a few tens of KB free. The device asks the server for records of at most
 * 2 KB (RFC 6066 max_fragment_length; the limit applies both ways, so mbedTLS allows no more
 * than the smaller buffer), which OpenSSL servers, the local cloud and IoT Hub's preview
 * honour; a handshake message larger than one record is re-assembled by mbedTLS 3.6. The
 * 4 KB input buffer leaves room for the record expansion of encrypted records.
 * Variable buffer length lets mbedTLS shrink the buffers once the handshake is done. A client
 * chain must fit 2 KB: one EC P-256 leaf (about 600 B) plus an intermediate does.
 * TLS 1.3 is off: it would keep the server certificate in RAM and has no fragment-length
 * negotiation in mbedTLS 3.6.
 */
#ifndef TETHER_PROFILE_TIGHT_H
#define TETHER_PROFILE_TIGHT_H
#define TETHER_PROFILE_NAME         "tight"
#define MBEDTLS_SSL_IN_CONTENT_LEN  4096
#define MBEDTLS_SSL_OUT_CONTENT_LEN 2048
#define MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
#define TETHER_MFL_DEFAULT 2048
/* A 3-bit window for the points the device does not know in advance (the server's keys):
 * 1.7 KB less at the peak for 1.8 % more instructions per registration (bench/config/
 * lever-window-3.h; see BENCHMARKS.md). */
#define MBEDTLS_ECP_WINDOW_SIZE 3
#include "tether_common.h"
#endif
