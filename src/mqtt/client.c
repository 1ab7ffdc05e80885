/* MQTT 3.1.1 client: a caller-driven loop over the transport seam, caller memory only. */
#include "tether/mqtt.h"

#include <string.h>

#include "tether/port.h"

/* The smallest receive buffer that holds any fixed header and small control packets. */
#define MIN_RX 16

tether_mqtt_config tether_mqtt_config_default(void)
{
    tether_mqtt_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.now_ms = tether_port_now_ms;
    cfg.send_timeout_ms = 10000;
    return cfg;
}

tether_status tether_mqtt_client_init(tether_mqtt_client *client, const tether_mqtt_config *config)
{
    if (client == NULL || config == NULL || config->tx_buf == NULL || config->tx_len < 4 ||
        config->rx_buf == NULL || config->rx_len < MIN_RX ||
        (config->store_buf != NULL && (config->inflight == NULL || config->inflight_max == 0)))
        return TETHER_INVALID_ARGUMENT;
    memset(client, 0, sizeof *client);
    client->cfg = *config;
    if (client->cfg.now_ms == NULL)
        client->cfg.now_ms = tether_port_now_ms;
    if (client->cfg.send_timeout_ms == 0)
        client->cfg.send_timeout_ms = 10000;
    client->next_packet_id = 1;
    return TETHER_OK;
}

void tether_mqtt_client_set_transport(tether_mqtt_client *client, tether_transport transport)
{
    client->cfg.transport = transport;
}

static uint64_t now_ms(const tether_mqtt_client *c)
{
    return c->cfg.now_ms();
}

void tether_mqtt_client_connection_lost(tether_mqtt_client *client)
{
    client->connected = false;
    client->rx_have = 0;
    client->skip_left = 0;
    client->skip_ack_id = 0;
    client->ping_sent_ms = 0;
}

static bool id_in_flight(const tether_mqtt_client *c, uint16_t id)
{
    for (size_t i = 0; i < c->inflight_count; i++)
        if (c->cfg.inflight[i].packet_id == id)
            return true;
    return false;
}

static uint16_t take_packet_id(tether_mqtt_client *c)
{
    uint16_t id;
    do {
        id = c->next_packet_id++;
        if (c->next_packet_id == 0)
            c->next_packet_id = 1;
    } while (id == 0 || id_in_flight(c, id));
    return id;
}

static tether_status send_all(tether_mqtt_client *c, const uint8_t *buf, size_t len)
{
    uint64_t deadline = now_ms(c) + c->cfg.send_timeout_ms;
    while (len > 0) {
        int32_t n = c->cfg.transport.send(c->cfg.transport.context, buf, len);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        tether_status st = n == 0 ? TETHER_TIMEOUT : tether_transport_status(n);
        if (n == 0 && now_ms(c) < deadline)
            continue;
        /* A packet cut in the middle leaves the stream unusable: reconnect. */
        tether_mqtt_client_connection_lost(c);
        return st;
    }
    c->last_tx_ms = now_ms(c);
    return TETHER_OK;
}

static void remove_inflight(tether_mqtt_client *c, size_t index)
{
    tether_mqtt_inflight gone = c->cfg.inflight[index];
    size_t tail = c->store_used - (gone.offset + gone.len);
    memmove(c->cfg.store_buf + gone.offset, c->cfg.store_buf + gone.offset + gone.len, tail);
    for (size_t i = index + 1; i < c->inflight_count; i++) {
        c->cfg.inflight[i - 1] = c->cfg.inflight[i];
        c->cfg.inflight[i - 1].offset -= gone.len;
    }
    c->inflight_count--;
    c->store_used -= gone.len;
}

static tether_status send_ack(tether_mqtt_client *c, uint16_t id)
{
    uint8_t ack[4];
    size_t len;
    tether_status st = tether_mqtt_encode_ack(TETHER_MQTT_PUBACK, id, ack, sizeof ack, &len);
    return st == TETHER_OK ? send_all(c, ack, len) : st;
}

static void record_wait(tether_mqtt_client *c, const tether_mqtt_packet *p)
{
    if (c->wait_type != p->type || c->wait_id != p->packet_id)
        return;
    if (p->type == TETHER_MQTT_SUBACK) {
        size_t n = p->u.suback.count;
        if (n > sizeof c->wait_codes)
            n = sizeof c->wait_codes;
        memcpy(c->wait_codes, p->u.suback.return_codes, n);
        c->wait_code_count = n;
    }
    c->wait_done = true;
}

static tether_status handle(tether_mqtt_client *c, const tether_mqtt_packet *p)
{
    switch (p->type) {
    case TETHER_MQTT_CONNACK:
        if (c->wait_type != TETHER_MQTT_CONNACK)
            return TETHER_MQTT_PROTOCOL_ERROR;
        c->session_present = p->u.connack.session_present;
        c->connack_code = p->u.connack.return_code;
        c->wait_done = true;
        return TETHER_OK;
    case TETHER_MQTT_PUBLISH:
        if (p->u.publish.qos > 1)
            return TETHER_MQTT_PROTOCOL_ERROR; /* tether never subscribes at QoS 2. */
        c->stats.messages_received++;
        if (c->cfg.on_message)
            c->cfg.on_message(c->cfg.on_message_context, &p->u.publish);
        return p->u.publish.qos == 1 ? send_ack(c, p->packet_id) : TETHER_OK;
    case TETHER_MQTT_PUBACK:
        for (size_t i = 0; i < c->inflight_count; i++) {
            if (c->cfg.inflight[i].packet_id == p->packet_id) {
                remove_inflight(c, i);
                c->stats.acks_received++;
                break;
            }
        }
        return TETHER_OK; /* A PUBACK for a resent duplicate may come twice: ignore it. */
    case TETHER_MQTT_SUBACK:
    case TETHER_MQTT_UNSUBACK:
        record_wait(c, p);
        return TETHER_OK;
    case TETHER_MQTT_PINGRESP:
        c->ping_sent_ms = 0;
        return TETHER_OK;
    default:
        return TETHER_MQTT_PROTOCOL_ERROR;
    }
}

/* The packet id of a QoS 1 PUBLISH from its first bytes (0 if it is none, or if the buffered
 * start does not reach the id): an oversized message is still acknowledged, else the server
 * would deliver it again after every reconnect and the device could never get past it. */
static uint16_t oversized_publish_id(const uint8_t *b, size_t have)
{
    if (have < 2 || (b[0] >> 4) != TETHER_MQTT_PUBLISH || ((b[0] >> 1) & 3u) != 1u)
        return 0;
    size_t h = 1;
    while (h < have && h < 5 && (b[h] & 0x80u))
        h++;
    h++; /* past the last length byte */
    if (have < h + 2)
        return 0;
    size_t at = h + 2 + ((size_t)b[h] << 8 | b[h + 1]);
    return have < at + 2 ? 0 : (uint16_t)((unsigned)b[at] << 8 | b[at + 1]);
}

/* Dispatches every complete packet in the receive buffer. */
static tether_status dispatch_buffered(tether_mqtt_client *c)
{
    while (c->rx_have > 0) {
        tether_mqtt_packet p;
        size_t used = 0;
        tether_status st = tether_mqtt_decode_from_server(c->cfg.rx_buf, c->rx_have, &p, &used);
        if (st == TETHER_WOULD_BLOCK) {
            if (used > c->cfg.rx_len) {
                /* Everything buffered belongs to this packet: discard it as it streams in. */
                c->last_needed = used;
                c->skip_ack_id = oversized_publish_id(c->cfg.rx_buf, c->rx_have);
                c->skip_left = used - c->rx_have;
                c->rx_have = 0;
                c->stats.packets_discarded++;
                return TETHER_MQTT_PACKET_TOO_LARGE;
            }
            return TETHER_OK;
        }
        if (st != TETHER_OK) {
            tether_mqtt_client_connection_lost(c);
            return TETHER_MQTT_MALFORMED;
        }
        st = handle(c, &p);
        memmove(c->cfg.rx_buf, c->cfg.rx_buf + used, c->rx_have - used);
        c->rx_have -= used;
        if (st != TETHER_OK) {
            tether_mqtt_client_connection_lost(c);
            return st;
        }
        c->stats.packets_received++;
    }
    return TETHER_OK;
}

/* One read from the transport (which waits up to its own timeout), then dispatch. */
static tether_status receive_some(tether_mqtt_client *c)
{
    uint8_t *at = c->cfg.rx_buf + c->rx_have;
    int32_t n = c->cfg.transport.recv(c->cfg.transport.context, at, c->cfg.rx_len - c->rx_have);
    if (n < 0) {
        tether_mqtt_client_connection_lost(c);
        return tether_transport_status(n);
    }
    if (n == 0)
        return TETHER_OK;
    c->last_rx_ms = now_ms(c);
    size_t got = (size_t)n;
    if (c->skip_left > 0) {
        size_t k = got < c->skip_left ? got : c->skip_left;
        c->skip_left -= k;
        memmove(at, at + k, got - k);
        got -= k;
        if (c->skip_left == 0 && c->skip_ack_id != 0) {
            /* All of it has passed: acknowledge it, as received and dropped. */
            tether_status st = send_ack(c, c->skip_ack_id);
            c->skip_ack_id = 0;
            if (st != TETHER_OK)
                return st;
            c->stats.discarded_acknowledged++;
        }
    }
    c->rx_have += got;
    return dispatch_buffered(c);
}

static tether_status keep_alive(tether_mqtt_client *c)
{
    if (c->keep_alive_ms == 0)
        return TETHER_OK;
    uint64_t t = now_ms(c);
    if (c->ping_sent_ms != 0) {
        /* The server owes a PINGRESP within the keep-alive period; past it the link is dead. */
        if (t - c->ping_sent_ms >= c->keep_alive_ms) {
            tether_mqtt_client_connection_lost(c);
            return TETHER_MQTT_KEEPALIVE_TIMEOUT;
        }
        return TETHER_OK;
    }
    if (t - c->last_tx_ms < c->keep_alive_ms)
        return TETHER_OK;
    uint8_t ping[2];
    size_t len;
    tether_status st = tether_mqtt_encode_empty(TETHER_MQTT_PINGREQ, ping, sizeof ping, &len);
    if (st == TETHER_OK)
        st = send_all(c, ping, len);
    if (st == TETHER_OK) {
        c->ping_sent_ms = t ? t : 1;
        c->stats.pings_sent++;
    }
    return st;
}

/* Pumps the loop until the awaited packet arrives or time runs out. */
static tether_status wait_for(tether_mqtt_client *c, tether_mqtt_type type, uint16_t id,
                              uint32_t timeout_ms)
{
    c->wait_type = type;
    c->wait_id = id;
    c->wait_done = false;
    c->wait_code_count = 0;
    uint64_t deadline = now_ms(c) + timeout_ms;
    tether_status st = TETHER_OK;
    while (!c->wait_done) {
        if (now_ms(c) >= deadline) {
            st = TETHER_TIMEOUT;
            break;
        }
        st = receive_some(c);
        if (st == TETHER_MQTT_PACKET_TOO_LARGE)
            st = TETHER_OK; /* Reported by the discard counter; keep waiting. */
        if (st != TETHER_OK)
            break;
    }
    c->wait_type = 0;
    return st;
}

static tether_status connack_status(uint8_t code)
{
    switch (code) {
    case TETHER_MQTT_CONNACK_ACCEPTED:
        return TETHER_OK;
    case TETHER_MQTT_CONNACK_REFUSED_PROTOCOL_VERSION:
        return TETHER_MQTT_CONNACK_PROTOCOL_VERSION;
    case TETHER_MQTT_CONNACK_REFUSED_IDENTIFIER:
        return TETHER_MQTT_CONNACK_IDENTIFIER_REJECTED;
    case TETHER_MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE:
        return TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE;
    case TETHER_MQTT_CONNACK_REFUSED_BAD_CREDENTIALS:
        return TETHER_MQTT_CONNACK_BAD_CREDENTIALS;
    default:
        return TETHER_MQTT_CONNACK_NOT_AUTHORIZED;
    }
}

tether_status tether_mqtt_client_connect(tether_mqtt_client *client,
                                         const tether_mqtt_connect_opts *opts, uint32_t timeout_ms,
                                         bool *out_session_present)
{
    if (client == NULL || opts == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_mqtt_client *c = client;
    size_t len;
    tether_status st = tether_mqtt_encode_connect(opts, c->cfg.tx_buf, c->cfg.tx_len, &len);
    if (st == TETHER_BUFFER_TOO_SMALL)
        c->last_needed = len;
    if (st != TETHER_OK)
        return st;
    tether_mqtt_client_connection_lost(c); /* Start from a clean stream. */
    c->keep_alive_ms = (uint32_t)opts->keep_alive_s * 1000u;
    st = send_all(c, c->cfg.tx_buf, len);
    if (st == TETHER_OK)
        st = wait_for(c, TETHER_MQTT_CONNACK, 0, timeout_ms);
    if (st == TETHER_TIMEOUT)
        st = TETHER_MQTT_CONNACK_TIMEOUT;
    if (st == TETHER_OK)
        st = connack_status(c->connack_code);
    if (st != TETHER_OK) {
        tether_mqtt_client_connection_lost(c);
        return st;
    }
    c->connected = true;
    c->last_rx_ms = c->last_tx_ms = now_ms(c);
    if (out_session_present)
        *out_session_present = c->session_present;

    /* At least once: whatever the broker did not acknowledge goes again, in order. */
    for (size_t i = 0; i < c->inflight_count; i++) {
        uint8_t *pkt = c->cfg.store_buf + c->cfg.inflight[i].offset;
        pkt[0] |= 0x08; /* DUP */
        st = send_all(c, pkt, c->cfg.inflight[i].len);
        if (st != TETHER_OK)
            return st;
        c->stats.resends++;
        c->stats.publishes_sent++;
    }
    return TETHER_OK;
}

static tether_status subscribe_or_unsubscribe(tether_mqtt_client *c, bool subscribe,
                                              const tether_mqtt_filter *filters, size_t count,
                                              uint32_t timeout_ms, uint8_t *out_granted)
{
    if (filters == NULL || count == 0 || count > sizeof c->wait_codes)
        return TETHER_INVALID_ARGUMENT;
    if (!c->connected)
        return TETHER_MQTT_NOT_CONNECTED;
    for (size_t i = 0; subscribe && i < count; i++)
        if (filters[i].qos > 1)
            return TETHER_INVALID_ARGUMENT; /* QoS 2 is not offered (Azure grants 1 at most). */
    uint16_t id = take_packet_id(c);
    size_t len;
    tether_status st = subscribe ? tether_mqtt_encode_subscribe(id, filters, count, c->cfg.tx_buf,
                                                                c->cfg.tx_len, &len)
                                 : tether_mqtt_encode_unsubscribe(id, filters, count, c->cfg.tx_buf,
                                                                  c->cfg.tx_len, &len);
    if (st == TETHER_BUFFER_TOO_SMALL)
        c->last_needed = len;
    if (st == TETHER_OK)
        st = send_all(c, c->cfg.tx_buf, len);
    if (st == TETHER_OK)
        st = wait_for(c, subscribe ? TETHER_MQTT_SUBACK : TETHER_MQTT_UNSUBACK, id, timeout_ms);
    if (st == TETHER_TIMEOUT)
        return TETHER_MQTT_ACK_TIMEOUT;
    if (st != TETHER_OK || !subscribe)
        return st;
    if (c->wait_code_count != count)
        return TETHER_MQTT_PROTOCOL_ERROR;
    for (size_t i = 0; i < count; i++) {
        if (out_granted)
            out_granted[i] = c->wait_codes[i];
        if (c->wait_codes[i] == TETHER_MQTT_SUBACK_FAILURE)
            st = TETHER_MQTT_SUBSCRIBE_REFUSED;
    }
    return st;
}

tether_status tether_mqtt_client_subscribe(tether_mqtt_client *client,
                                           const tether_mqtt_filter *filters, size_t count,
                                           uint32_t timeout_ms, uint8_t *out_granted)
{
    if (client == NULL)
        return TETHER_INVALID_ARGUMENT;
    return subscribe_or_unsubscribe(client, true, filters, count, timeout_ms, out_granted);
}

tether_status tether_mqtt_client_unsubscribe(tether_mqtt_client *client,
                                             const tether_mqtt_filter *filters, size_t count,
                                             uint32_t timeout_ms)
{
    if (client == NULL)
        return TETHER_INVALID_ARGUMENT;
    return subscribe_or_unsubscribe(client, false, filters, count, timeout_ms, NULL);
}

tether_status tether_mqtt_client_publish(tether_mqtt_client *client,
                                         const tether_mqtt_publish *message,
                                         uint16_t *out_packet_id)
{
    if (client == NULL || message == NULL || message->qos > 1)
        return TETHER_INVALID_ARGUMENT;
    tether_mqtt_client *c = client;
    tether_mqtt_publish p = *message;
    p.dup = false;
    size_t len;
    if (p.qos == 0) {
        if (!c->connected)
            return TETHER_MQTT_NOT_CONNECTED;
        tether_status st = tether_mqtt_encode_publish(&p, c->cfg.tx_buf, c->cfg.tx_len, &len);
        if (st == TETHER_BUFFER_TOO_SMALL)
            c->last_needed = len;
        if (st == TETHER_OK)
            st = send_all(c, c->cfg.tx_buf, len);
        if (st == TETHER_OK)
            c->stats.publishes_sent++;
        return st;
    }

    if (c->cfg.store_buf == NULL)
        return TETHER_INVALID_ARGUMENT;
    p.packet_id = 1; /* Any non-zero id sizes the packet. */
    tether_status st = tether_mqtt_encode_publish(&p, NULL, 0, &len);
    if (st != TETHER_BUFFER_TOO_SMALL)
        return st;
    if (len > c->cfg.store_len) {
        c->last_needed = len;
        return TETHER_BUFFER_TOO_SMALL;
    }
    if (c->inflight_count == c->cfg.inflight_max || len > c->cfg.store_len - c->store_used)
        return TETHER_MQTT_INFLIGHT_FULL;
    p.packet_id = take_packet_id(c);
    uint8_t *at = c->cfg.store_buf + c->store_used;
    st = tether_mqtt_encode_publish(&p, at, len, &len);
    if (st != TETHER_OK)
        return st;
    c->cfg.inflight[c->inflight_count++] =
        (tether_mqtt_inflight){.packet_id = p.packet_id, .offset = c->store_used, .len = len};
    c->store_used += len;
    if (out_packet_id)
        *out_packet_id = p.packet_id;
    /* Kept in the store either way: sent now if connected, else on the next connect. */
    if (!c->connected)
        return TETHER_OK;
    st = send_all(c, at, len);
    if (st == TETHER_OK)
        c->stats.publishes_sent++;
    return st;
}

tether_status tether_mqtt_client_process(tether_mqtt_client *client, uint32_t timeout_ms)
{
    if (client == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_mqtt_client *c = client;
    if (!c->connected)
        return TETHER_MQTT_NOT_CONNECTED;
    uint64_t deadline = now_ms(c) + timeout_ms;
    uint32_t handled = c->stats.packets_received;
    do {
        tether_status st = keep_alive(c);
        if (st == TETHER_OK)
            st = receive_some(c);
        if (st != TETHER_OK)
            return st;
    } while (c->stats.packets_received == handled && now_ms(c) < deadline);
    return TETHER_OK;
}

void tether_mqtt_client_disconnect(tether_mqtt_client *client)
{
    if (client == NULL || !client->connected)
        return;
    uint8_t pkt[2];
    size_t len;
    if (tether_mqtt_encode_empty(TETHER_MQTT_DISCONNECT, pkt, sizeof pkt, &len) == TETHER_OK)
        (void)send_all(client, pkt, len);
    tether_mqtt_client_connection_lost(client);
}

size_t tether_mqtt_client_inflight_count(const tether_mqtt_client *client)
{
    return client->inflight_count;
}

size_t tether_mqtt_client_last_needed(const tether_mqtt_client *client)
{
    return client->last_needed;
}

const tether_mqtt_stats *tether_mqtt_client_get_stats(const tether_mqtt_client *client)
{
    return &client->stats;
}
