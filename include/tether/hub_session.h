/**
 * @file hub_session.h
 * @brief The IoT Hub session: telemetry out, cloud-to-device messages, twin and direct
 *        methods in, and staying connected through failures, in caller memory.
 *
 * tether_hub_session_start() connects (X.509 through the ::tether_tls identity, or a SAS token
 * made from the device key), subscribes to cloud-to-device messages, twin responses, desired
 * changes and methods (4 of the hub's 5 subscriptions), and asks for the twin. From then on
 * tether_hub_session_process() drives everything: it delivers what arrives to the callbacks,
 * keeps the link alive, renews a SAS token by reconnecting before it expires, and after a
 * loss reconnects with capped exponential backoff and jitter, never in a tight loop; the twin
 * is fetched again on every reconnect and QoS 1 messages not yet acknowledged are sent again.
 *
 * Telemetry at QoS 1 goes through a bounded queue in the session (the MQTT client's store):
 * when it is full, tether_hub_session_send() says so (::TETHER_HUB_QUEUE_FULL) and nothing is
 * dropped silently. Messages queued while disconnected go out on the next connection.
 *
 * @code
 * static tether_hub_session hub;
 * tether_hub_config cfg = tether_hub_config_default();
 * cfg.host = result.assigned_hub;
 * cfg.device_id = result.device_id;
 * cfg.on_method = answer_method;
 * if (tether_hub_session_start(&hub, &tls, &cfg) == TETHER_OK) {
 *     tether_hub_session_send(&hub, (const uint8_t *)"{\"t\":21.5}", 10, NULL, 0, 1);
 *     for (;;)
 *         tether_hub_session_process(&hub, 1000);
 * }
 * @endcode
 */
#ifndef TETHER_HUB_SESSION_H
#define TETHER_HUB_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/backoff.h"
#include "tether/hub.h"
#include "tether/mqtt.h"
#include "tether/status.h"
#include "tether/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TETHER_HUB_TX_LEN
/** Largest packet sent other than queued telemetry: method responses, reported patches. */
#define TETHER_HUB_TX_LEN 4096
#endif
#ifndef TETHER_HUB_RX_LEN
/** Largest packet received: a C2D message, a method request or the twin. Larger ones are
 *  discarded and reported. */
#define TETHER_HUB_RX_LEN 8192
#endif
#ifndef TETHER_HUB_QUEUE_LEN
/** Bytes of QoS 1 telemetry kept until acknowledged. */
#define TETHER_HUB_QUEUE_LEN 8192
#endif
#ifndef TETHER_HUB_QUEUE_SLOTS
/** QoS 1 messages kept until acknowledged. */
#define TETHER_HUB_QUEUE_SLOTS 16
#endif

/** What the event callback is told. */
typedef enum tether_hub_event_kind {
    TETHER_HUB_EVENT_CONNECTED,     /**< Connected and subscribed; the twin was asked for. */
    TETHER_HUB_EVENT_DISCONNECTED,  /**< The connection was lost (cause). */
    TETHER_HUB_EVENT_WAITING,       /**< Reconnecting after wait_ms. */
    TETHER_HUB_EVENT_TOKEN_RENEWAL, /**< Reconnecting with a fresh SAS token. */
    TETHER_HUB_EVENT_REPORTED,      /**< The hub stored a reported patch (version). */
    TETHER_HUB_EVENT_DISCARDED,     /**< A message too large for the receive buffer (size). */
    /** A message on a topic tether cannot read (cause HUB_MALFORMED_TOPIC or
     *  HUB_UNKNOWN_TOPIC; the topic and the payload's size): it was not handled. */
    TETHER_HUB_EVENT_UNREADABLE
} tether_hub_event_kind;

typedef struct tether_hub_event {
    tether_hub_event_kind kind;
    tether_status cause;
    uint32_t wait_ms;
    uint32_t failures; /**< Consecutive failed connection attempts. */
    uint64_t version;
    size_t size;
    tether_view topic; /**< UNREADABLE: the topic as received (untrusted), during the call. */
} tether_hub_event;

/** A cloud-to-device message. Views are valid during the callback only. */
typedef struct tether_hub_c2d {
    const uint8_t *payload;
    size_t payload_len;
    tether_view properties; /**< Raw property bag: walk it with tether_hub_property_next(). */
} tether_hub_c2d;

/** Settings; start from tether_hub_config_default(). */
typedef struct tether_hub_config {
    const char *host;       /**< The assigned hub: SNI, certificate check, user name. */
    const char *connect_to; /**< Address to dial instead; NULL for none. */
    uint16_t port;
    const char *device_id;
    const char *module_id; /**< NULL for a device. */
    const char *sas_key;   /**< Base64 device key; NULL for X.509. */
    uint32_t sas_ttl_s;    /**< Token lifetime; renewed at 80 %. Default 3600. */
    const char *model_id;  /**< IoT Plug and Play model id, or NULL. */
    uint16_t keep_alive_s; /**< Default 240 (what the Azure SDKs use), at most 1177. */
    /** Consecutive failed connects before TETHER_HUB_UNREACHABLE; default 10, about two
     *  minutes with the default backoff, so a hub restart does not send a fleet to DPS. */
    uint32_t max_failures;
    tether_backoff_options backoff;
    tether_tls_options tls;
    void (*on_c2d)(void *context, const tether_hub_c2d *message);
    /** The full twin document, after each (re)connect. */
    void (*on_twin)(void *context, const char *json, size_t len);
    /** A desired-properties change and its version. */
    void (*on_desired)(void *context, const char *json, size_t len, uint64_t version);
    /**
     * A direct method: write the response JSON into @p response (at most @p cap bytes) and
     * return its status (200, 404, ...). NULL: every method answers 404.
     */
    uint16_t (*on_method)(void *context, tether_view name, const uint8_t *payload, size_t len,
                          char *response, size_t cap, size_t *response_len);
    void (*on_event)(void *context, const tether_hub_event *event);
    void *context;
} tether_hub_config;

/** Counters a caller or a test can check. */
typedef struct tether_hub_stats {
    uint32_t telemetry_sent;
    uint32_t c2d_received;
    uint32_t methods_answered;
    uint32_t desired_received;
    uint32_t twin_received;
    uint32_t reported_acknowledged;
    uint32_t connects;
    uint32_t token_renewals;
} tether_hub_stats;

/** The caller-owned session. Treat the fields as private. */
typedef struct tether_hub_session {
    /* The small fields first, the big buffers last: fields near the start cost the code
     * fewer instructions to reach. */
    tether_tls *tls;
    const tether_hub_config *cfg;
    bool connected;
    uint32_t failures;
    uint32_t previous_delay;
    uint32_t rid_counter;
    tether_hub_identity id;
    uint64_t renew_at_ms; /* Monotonic time to renew the SAS token; 0 for X.509. */
    uint64_t retry_at_ms; /* Next connection attempt while disconnected. */
    tether_hub_stats stats;
    tether_hub_event event; /* the next event's details */
    char rid[12];
    tether_mqtt_client mqtt;
    char username[512];
    char password[512];
    char topic[512];
    char response[1024];
    tether_mqtt_inflight slots[TETHER_HUB_QUEUE_SLOTS];
    /* The MQTT client's buffers last: only their start is ever taken. */
    uint8_t tx[TETHER_HUB_TX_LEN];
    uint8_t rx[TETHER_HUB_RX_LEN];
    uint8_t queue[TETHER_HUB_QUEUE_LEN];
} tether_hub_session;

/** Defaults: port 8883, keep-alive 240 s, token 3600 s, 10 failures, default backoff. */
tether_hub_config tether_hub_config_default(void);

/**
 * Connects for the first time, subscribes and asks for the twin.
 * @return TETHER_OK; TETHER_HUB_IDENTITY_REFUSED (CONNACK 4 or 5: reprovision); a TLS or MQTT
 *         status (see tether_tls_last_diag()); TETHER_CLOCK_NOT_SET for a SAS key.
 */
TETHER_MUST_USE tether_status tether_hub_session_start(tether_hub_session *session, tether_tls *tls,
                                                       const tether_hub_config *config);

/**
 * Sends telemetry with optional properties (application and system, e.g. "$.ct").
 * QoS 1 is queued until acknowledged, also while disconnected.
 * @return TETHER_HUB_QUEUE_FULL when the queue cannot take it now; TETHER_BUFFER_TOO_SMALL
 *         when it can never fit; TETHER_MQTT_NOT_CONNECTED for QoS 0 while disconnected.
 */
TETHER_MUST_USE tether_status tether_hub_session_send(tether_hub_session *session,
                                                      const uint8_t *payload, size_t len,
                                                      const tether_hub_property *properties,
                                                      size_t count, uint8_t qos);

/** Sends a reported-properties patch (JSON); the hub's 204 arrives as a REPORTED event. */
TETHER_MUST_USE tether_status tether_hub_session_report(tether_hub_session *session,
                                                        const char *json, size_t len);

/**
 * Runs the session for @p timeout_ms: delivers messages, keeps alive, renews the token,
 * reconnects. While disconnected it waits out the backoff and tries again.
 * @return TETHER_OK while all is well or being recovered; TETHER_HUB_UNREACHABLE after
 *         max_failures failed connects in a row; TETHER_HUB_IDENTITY_REFUSED when the hub
 *         refuses the device. Both call for reprovisioning; the session can still be stopped.
 */
TETHER_MUST_USE tether_status tether_hub_session_process(tether_hub_session *session,
                                                         uint32_t timeout_ms);

/** QoS 1 telemetry not yet acknowledged. */
size_t tether_hub_session_pending(const tether_hub_session *session);

/** The counters. */
const tether_hub_stats *tether_hub_session_stats(const tether_hub_session *session);

/** Disconnects cleanly. */
void tether_hub_session_stop(tether_hub_session *session);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_HUB_SESSION_H */
