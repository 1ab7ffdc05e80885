#include "session_common.h"

#include "tether/port.h"

uint32_t tether_session_random32(void)
{
    uint8_t b[4] = {0};
    if (tether_port_entropy(b, sizeof b) != TETHER_OK)
        return (uint32_t)tether_port_now_ms() * 2654435761u;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

tether_mqtt_config tether_session_mqtt_config(uint8_t *tx, size_t tx_len, uint8_t *rx,
                                              size_t rx_len, uint8_t *store, size_t store_len,
                                              tether_mqtt_inflight *slots, size_t slot_count,
                                              tether_mqtt_message_fn on_message, void *context)
{
    tether_mqtt_config mc = tether_mqtt_config_default();
    mc.tx_buf = tx;
    mc.tx_len = tx_len;
    mc.rx_buf = rx;
    mc.rx_len = rx_len;
    mc.store_buf = store;
    mc.store_len = store_len;
    mc.inflight = slots;
    mc.inflight_max = slot_count;
    mc.on_message = on_message;
    mc.on_message_context = context;
    return mc;
}
