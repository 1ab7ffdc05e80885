/**
 * @file transport.h
 * @brief The one seam between protocol code and bytes.
 *
 * MQTT and everything above it move bytes only through a ::tether_transport. TLS is one
 * implementation (tether_tls_transport()); a test can put a socket pair or a scripted peer
 * behind it. The contract of both functions:
 *
 * - a positive return is the number of bytes moved (possibly fewer than asked);
 * - 0 means "nothing moved, try again": the call waited up to the transport's own timeout;
 * - a negative return is an error: its negation is a ::tether_status
 *   (e.g. `-(int32_t)TETHER_CONNECTION_CLOSED` when the peer closed the connection).
 *
 * Neither function may be called again after an error until the transport is reopened.
 */
#ifndef TETHER_TRANSPORT_H
#define TETHER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A byte stream: two functions and the context they are called with. */
typedef struct tether_transport {
    /** Sends from buf (not modified). */
    int32_t (*send)(void *context, const uint8_t *buf, size_t len);
    /** Receives into buf. */
    int32_t (*recv)(void *context, uint8_t *buf, size_t len);
    void *context;
} tether_transport;

/** The status carried by a negative transport return (TETHER_OK for non-negative values). */
static inline tether_status tether_transport_status(int32_t ret)
{
    return ret < 0 ? (tether_status)(-ret) : TETHER_OK;
}

/** The negative transport return for a status. */
static inline int32_t tether_transport_error(tether_status st)
{
    return -(int32_t)st;
}

#ifdef __cplusplus
}
#endif
#endif /* TETHER_TRANSPORT_H */
