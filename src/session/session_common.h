/* What the DPS and hub sessions share; not public API. */
#ifndef TETHER_SESSION_COMMON_H
#define TETHER_SESSION_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "tether/mqtt.h"

/* A uniformly random value from the port, for backoff jitter (a clock-derived value if the
 * port fails: devices still spread out). */
uint32_t tether_session_random32(void);

/* The MQTT client's configuration over a session's own buffers. */
tether_mqtt_config tether_session_mqtt_config(uint8_t *tx, size_t tx_len, uint8_t *rx,
                                              size_t rx_len, uint8_t *store, size_t store_len,
                                              tether_mqtt_inflight *slots, size_t slot_count,
                                              tether_mqtt_message_fn on_message, void *context);

#endif
