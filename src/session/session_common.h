/* What the DPS and hub sessions share; not public API. */
#ifndef TETHER_SESSION_COMMON_H
#define TETHER_SESSION_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "tether/mqtt.h"
#include "tether/tls.h"

/* A uniformly random value from the port, for backoff jitter (a clock-derived value if the
 * port fails: devices still spread out). */
uint32_t tether_session_random32(void);

/* Initialises the MQTT client over a session's own buffers. */
tether_status tether_session_mqtt_init(tether_mqtt_client *mqtt, uint8_t *tx, size_t tx_len,
                                       uint8_t *rx, size_t rx_len, uint8_t *store, size_t store_len,
                                       tether_mqtt_inflight *slots, size_t slot_count,
                                       tether_mqtt_message_fn on_message, void *context);

/* TLS to host (dialling connect_to instead when not NULL) on port, with the session's other
 * TLS options. */
tether_status tether_session_tls_connect(tether_tls *tls, const tether_tls_options *options,
                                         const char *host, const char *connect_to, uint16_t port);

/* MQTT over the TLS connection: CONNECT, then SUBSCRIBE to the count filters, each waiting up
 * to timeout_ms. *accepted (if not NULL) tells whether the server accepted the CONNECT, even
 * when what follows failed. The caller closes what it opened when this fails. */
tether_status tether_session_mqtt_connect(tether_mqtt_client *mqtt, tether_tls *tls,
                                          const tether_mqtt_connect_opts *opts, uint32_t timeout_ms,
                                          const tether_mqtt_filter *filters, size_t count,
                                          bool *accepted);

#endif
