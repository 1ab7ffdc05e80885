#include "session_common.h"

#include <string.h>

#include "tether/port.h"

uint32_t tether_session_random32(void)
{
    uint8_t b[4] = {0};
    if (tether_port_entropy(b, sizeof b) != TETHER_OK)
        return (uint32_t)tether_port_now_ms() * 2654435761u;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

tether_status tether_session_mqtt_init(tether_mqtt_client *mqtt, uint8_t *tx, size_t tx_len,
                                       uint8_t *rx, size_t rx_len, uint8_t *store, size_t store_len,
                                       tether_mqtt_inflight *slots, size_t slot_count,
                                       tether_mqtt_message_fn on_message, void *context)
{
    /* Zero rather than tether_mqtt_config_default(): tether_mqtt_client_init() gives a zero
     * clock and send timeout the same defaults. */
    tether_mqtt_config mc;
    memset(&mc, 0, sizeof mc);
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
    return tether_mqtt_client_init(mqtt, &mc);
}

tether_status tether_session_tls_connect(tether_tls *tls, const tether_tls_options *options,
                                         const char *host, const char *connect_to, uint16_t port)
{
    tether_tls_options o = *options;
    o.host = host;
    o.connect_host = connect_to;
    o.port = port;
    return tether_tls_connect(tls, &o);
}

tether_status tether_session_mqtt_connect(tether_mqtt_client *mqtt, tether_tls *tls,
                                          const tether_mqtt_connect_opts *opts, uint32_t timeout_ms,
                                          const tether_mqtt_filter *filters, size_t count,
                                          bool *accepted)
{
    tether_mqtt_client_set_transport(mqtt, tether_tls_transport(tls));
    tether_status st = tether_mqtt_client_connect(mqtt, opts, timeout_ms, NULL);
    if (accepted)
        *accepted = st == TETHER_OK;
    if (st == TETHER_OK)
        st = tether_mqtt_client_subscribe(mqtt, filters, count, timeout_ms, NULL);
    return st;
}
