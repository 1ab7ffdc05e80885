/**
 * @file mqtt.h
 * @brief MQTT 3.1.1 client over a ::tether_transport, in caller memory only.
 *
 * The caller gives a transmit buffer, a receive buffer (the largest incoming packet it
 * accepts), and for QoS 1 a store that keeps each unacknowledged PUBLISH until its PUBACK, plus
 * a fixed table of in-flight entries. Nothing is allocated. After a reconnect the stored
 * PUBLISH packets are sent again with DUP set, so QoS 1 messages survive a broker restart.
 *
 * The client is single-threaded and driven by the caller: tether_mqtt_client_process() reads and
 * dispatches incoming packets for a while and keeps the link alive (PINGREQ when idle; a
 * missing PINGRESP is a dead link). Blocking calls (connect, subscribe) pump the same loop,
 * so messages that arrive meanwhile still reach the callback.
 *
 * An incoming packet larger than the receive buffer is discarded whole; the call returns
 * ::TETHER_MQTT_PACKET_TOO_LARGE once, with the size needed in tether_mqtt_client_last_needed(),
 * and the connection stays usable. A discarded QoS 1 PUBLISH is acknowledged (PUBACK) once its
 * last byte has passed, as long as its topic fits the receive buffer (else its packet id was
 * never seen): unacknowledged, the server would send it again on every reconnect (MQTT 3.1.1
 * section 4.4) and the client could never get past it. Dropping it is the application's to
 * know, through the status above; the message is not delivered.
 *
 * @code
 * static uint8_t tx[1024], rx[1024], store[4096];
 * static tether_mqtt_inflight slots[8];
 * tether_mqtt_config cfg = tether_mqtt_config_default();
 * cfg.transport = tether_tls_transport(&tls);
 * cfg.tx_buf = tx; cfg.tx_len = sizeof tx;  cfg.rx_buf = rx; cfg.rx_len = sizeof rx;
 * cfg.store_buf = store; cfg.store_len = sizeof store;
 * cfg.inflight = slots; cfg.inflight_max = 8;
 * cfg.on_message = print_message;
 * tether_mqtt_client c;
 * tether_mqtt_client_init(&c, &cfg);
 * tether_mqtt_connect_opts co = {.client_id = "d1", .client_id_len = 2, .keep_alive_s = 60,
 *                                .clean_session = true};
 * if (tether_mqtt_client_connect(&c, &co, 10000, NULL) == TETHER_OK) ...
 * @endcode
 */
#ifndef TETHER_MQTT_H
#define TETHER_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/mqtt_codec.h"
#include "tether/status.h"
#include "tether/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** CONNECT options are the codec's CONNECT contents. */
typedef tether_mqtt_connect tether_mqtt_connect_opts;

/** One unacknowledged QoS 1 PUBLISH kept in the store. */
typedef struct tether_mqtt_inflight {
    uint16_t packet_id;
    size_t offset; /**< Where its bytes start in the store. */
    size_t len;
} tether_mqtt_inflight;

/**
 * Called for each incoming PUBLISH. The views point into the receive buffer and are valid
 * only during the call. The callback may publish; it must not call tether_mqtt_client_process().
 */
typedef void (*tether_mqtt_message_fn)(void *context, const tether_mqtt_publish *message);

/** Client configuration; start from tether_mqtt_config_default(). */
typedef struct tether_mqtt_config {
    tether_transport transport;
    uint8_t *tx_buf; /**< Serializes outgoing packets other than QoS 1 PUBLISH. */
    size_t tx_len;
    uint8_t *rx_buf; /**< Holds one incoming packet: its size bounds what can be received. */
    size_t rx_len;
    uint8_t *store_buf; /**< QoS 1 PUBLISH packets until acknowledged; NULL: QoS 0 only. */
    size_t store_len;
    tether_mqtt_inflight *inflight; /**< Table of store_buf entries. */
    size_t inflight_max;
    tether_mqtt_message_fn on_message;
    void *on_message_context;
    uint64_t (*now_ms)(void); /**< Monotonic clock; default tether_port_now_ms. */
    uint32_t send_timeout_ms; /**< Longest wait for the transport to take a packet; default 10 s. */
} tether_mqtt_config;

/** Counters a caller or a test can check. */
typedef struct tether_mqtt_stats {
    uint32_t publishes_sent; /**< PUBLISH packets written, resends included. */
    uint32_t resends;        /**< PUBLISH packets sent again with DUP after a reconnect. */
    uint32_t acks_received;  /**< PUBACKs matched to an in-flight message. */
    uint32_t messages_received;
    uint32_t pings_sent;
    uint32_t packets_discarded;      /**< Incoming packets too large for the receive buffer. */
    uint32_t discarded_acknowledged; /**< Of them, QoS 1 messages acknowledged (PUBACK). */
    uint32_t packets_received;       /**< Incoming packets decoded and handled, of every type. */
} tether_mqtt_stats;

/** The client. Treat the fields as private. */
typedef struct tether_mqtt_client {
    tether_mqtt_config cfg;
    bool connected;
    uint16_t next_packet_id;
    uint32_t keep_alive_ms;
    uint64_t last_tx_ms;
    uint64_t last_rx_ms;
    uint64_t ping_sent_ms; /* 0 when no PINGREQ is outstanding. */
    size_t rx_have;
    size_t skip_left;     /* Bytes still to discard of an oversized packet. */
    uint16_t skip_ack_id; /* Its packet id to acknowledge once skipped; 0 for none. */
    size_t last_needed;
    size_t inflight_count;
    size_t store_used;
    /* What a blocking call waits for. */
    tether_mqtt_type wait_type;
    uint16_t wait_id;
    bool wait_done;
    uint8_t wait_codes[8];
    size_t wait_code_count;
    bool session_present;
    uint8_t connack_code;
    tether_mqtt_stats stats;
} tether_mqtt_client;

/** Defaults: the POSIX clock, everything else empty. */
tether_mqtt_config tether_mqtt_config_default(void);

/** Prepares @p client. The buffers in @p config must outlive it. */
TETHER_MUST_USE tether_status tether_mqtt_client_init(tether_mqtt_client *client,
                                                      const tether_mqtt_config *config);

/** Replaces the transport, e.g. after reopening TLS; in-flight messages are kept. */
void tether_mqtt_client_set_transport(tether_mqtt_client *client, tether_transport transport);

/**
 * Sends CONNECT and waits for CONNACK over an open transport. On success, stored QoS 1
 * messages are sent again with DUP.
 * @param out_session_present may be NULL.
 * @return TETHER_OK, a TETHER_MQTT_CONNACK_* refusal, TETHER_MQTT_CONNACK_TIMEOUT, or the
 *         transport's error.
 */
TETHER_MUST_USE tether_status tether_mqtt_client_connect(tether_mqtt_client *client,
                                                         const tether_mqtt_connect_opts *opts,
                                                         uint32_t timeout_ms,
                                                         bool *out_session_present);

/**
 * Subscribes and waits for SUBACK.
 * @param out_granted @p count granted QoS bytes (0x80 = refused); may be NULL. At most 8 filters.
 * @return TETHER_MQTT_SUBSCRIBE_REFUSED if any filter was refused.
 */
TETHER_MUST_USE tether_status tether_mqtt_client_subscribe(tether_mqtt_client *client,
                                                           const tether_mqtt_filter *filters,
                                                           size_t count, uint32_t timeout_ms,
                                                           uint8_t *out_granted);

/** Unsubscribes and waits for UNSUBACK. */
TETHER_MUST_USE tether_status tether_mqtt_client_unsubscribe(tether_mqtt_client *client,
                                                             const tether_mqtt_filter *filters,
                                                             size_t count, uint32_t timeout_ms);

/**
 * Publishes at QoS 0 or 1. A QoS 1 message is copied to the store and kept until its PUBACK;
 * the packet id is assigned here (the one in @p message is ignored).
 * @param out_packet_id may be NULL.
 * @return TETHER_MQTT_INFLIGHT_FULL when the store or the table is full (nothing was sent),
 *         TETHER_BUFFER_TOO_SMALL when the packet can never fit (tether_mqtt_client_last_needed()).
 */
TETHER_MUST_USE tether_status tether_mqtt_client_publish(tether_mqtt_client *client,
                                                         const tether_mqtt_publish *message,
                                                         uint16_t *out_packet_id);

/**
 * Receives and dispatches until at least one packet has been handled or @p timeout_ms has
 * passed (0: one poll), and keeps the link alive. It returns as soon as something arrived, so
 * a caller waiting for a PUBACK to free a slot can publish again at once; to wait a whole
 * period, call it in a loop until the period is over.
 * @return TETHER_OK, TETHER_MQTT_PACKET_TOO_LARGE (once per discarded packet),
 *         TETHER_MQTT_KEEPALIVE_TIMEOUT, or a transport or protocol error (then disconnected).
 */
TETHER_MUST_USE tether_status tether_mqtt_client_process(tether_mqtt_client *client,
                                                         uint32_t timeout_ms);

/** Sends DISCONNECT (best effort) and marks the client disconnected. */
void tether_mqtt_client_disconnect(tether_mqtt_client *client);

/** Marks the client disconnected after a transport failure; in-flight messages are kept. */
void tether_mqtt_client_connection_lost(tether_mqtt_client *client);

/** QoS 1 messages still waiting for their PUBACK. */
size_t tether_mqtt_client_inflight_count(const tether_mqtt_client *client);

/** Size needed by the last TETHER_BUFFER_TOO_SMALL or TETHER_MQTT_PACKET_TOO_LARGE. */
size_t tether_mqtt_client_last_needed(const tether_mqtt_client *client);

/** The counters. */
const tether_mqtt_stats *tether_mqtt_client_get_stats(const tether_mqtt_client *client);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_MQTT_H */
