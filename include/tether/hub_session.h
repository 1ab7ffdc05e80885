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
 * Reconnects, whatever ended the connection (a transport error, a close by the hub, a
 * keep-alive timeout, a refused CONNACK, a failed connect), are paced the same way, because a
 * fleet multiplies them (with the defaults):
 * - the wait before attempt n (n = 0, 1, ...) is uniform in [b/2, b] with
 *   b = min(60 s, 1 s * 2^n) ("equal jitter": it grows with every attempt and spreads a fleet);
 * - n goes back to 0 only after a connection stayed up ::TETHER_HUB_HEALTHY_MS (60 s): a
 *   connection that the hub accepts and then drops does not reset it;
 * - never more than ::TETHER_HUB_CONNECTS_PER_MINUTE (10) connection attempts in any 60 s,
 *   token renewals included, whatever the backoff options say;
 * - when ::TETHER_HUB_EARLY_DROPS_NAMED connections in a row end within
 *   ::TETHER_HUB_EARLY_DROP_MS of their CONNACK, the WAITING event's cause is
 *   ::TETHER_HUB_DROPPED_AFTER_CONNECT: typically another client is using this device identity
 *   (the hub keeps one connection per device and drops the older one).
 * Together: at most 6 attempts in the first minute after a loss, then one every 30 to 60 s.
 *
 * Requests that get a status (the twin GET, a reported patch): 429 and 5xx are retried with
 * the same backoff (a REQUEST_FAILED event each time, cause ::TETHER_HUB_THROTTLED or
 * ::TETHER_HUB_SERVER_ERROR, with the status and the wait); any other 4xx is final
 * (::TETHER_HUB_REQUEST_REFUSED). A patch not yet stored is sent again after a reconnect.
 *
 * A message larger than the receive buffer is dropped, and the application is told (a
 * DISCARDED event with its size and the buffer size); at QoS 1 it is still acknowledged, so
 * the hub does not deliver it again on every reconnect.
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
#ifndef TETHER_HUB_REPORT_LEN
/** Largest reported patch: the session keeps a copy until the hub stores it, to resend it. */
#define TETHER_HUB_REPORT_LEN 1024
#endif
#ifndef TETHER_HUB_HEALTHY_MS
/** A connection up this long resets the reconnect backoff. */
#define TETHER_HUB_HEALTHY_MS 60000u
#endif
#ifndef TETHER_HUB_CONNECTS_PER_MINUTE
/** Hard cap on connection attempts in any 60 s window. */
#define TETHER_HUB_CONNECTS_PER_MINUTE 10
#endif
/** A connection that ends sooner than this after its CONNACK ended early... */
#define TETHER_HUB_EARLY_DROP_MS 10000u
/** ...and this many early ends in a row are named ::TETHER_HUB_DROPPED_AFTER_CONNECT. */
#define TETHER_HUB_EARLY_DROPS_NAMED 3u

/** What the event callback is told. */
typedef enum tether_hub_event_kind {
    TETHER_HUB_EVENT_CONNECTED,     /**< Connected and subscribed; the twin was asked for. */
    TETHER_HUB_EVENT_DISCONNECTED,  /**< The connection was lost (cause). */
    TETHER_HUB_EVENT_WAITING,       /**< Reconnecting after wait_ms. */
    TETHER_HUB_EVENT_TOKEN_RENEWAL, /**< Reconnecting with a fresh SAS token. */
    TETHER_HUB_EVENT_REPORTED,      /**< The hub stored a reported patch (version). */
    /** A message too large for the receive buffer was dropped (size, buffer_size); a QoS 1
     *  one is acknowledged all the same, so the hub does not send it again. */
    TETHER_HUB_EVENT_DISCARDED,
    /** A request got an error status (request, status, cause); wait_ms > 0: retried then. */
    TETHER_HUB_EVENT_REQUEST_FAILED,
    /** A message on a topic tether cannot read (cause HUB_MALFORMED_TOPIC or
     *  HUB_UNKNOWN_TOPIC; the topic and the payload's size): it was not handled. */
    TETHER_HUB_EVENT_UNREADABLE
} tether_hub_event_kind;

/** The requests of the session that get a status from the hub. */
typedef enum tether_hub_request_kind {
    TETHER_HUB_REQUEST_TWIN,    /**< `$iothub/twin/GET` */
    TETHER_HUB_REQUEST_REPORTED /**< `$iothub/twin/PATCH/properties/reported` */
} tether_hub_request_kind;

typedef struct tether_hub_event {
    tether_hub_event_kind kind;
    /** DISCONNECTED: what ended it. WAITING: what failed, or TETHER_HUB_DROPPED_AFTER_CONNECT
     *  when connections keep ending right after CONNACK. REQUEST_FAILED: TETHER_HUB_THROTTLED,
     *  TETHER_HUB_SERVER_ERROR or TETHER_HUB_REQUEST_REFUSED. */
    tether_status cause;
    uint32_t wait_ms;  /**< WAITING, REQUEST_FAILED: before the next attempt; 0: none. */
    uint32_t failures; /**< Consecutive failed connection attempts. */
    uint64_t version;
    size_t size;                     /**< DISCARDED: the message's packet size in bytes. */
    size_t buffer_size;              /**< DISCARDED: the receive buffer, TETHER_HUB_RX_LEN. */
    tether_hub_request_kind request; /**< REQUEST_FAILED. */
    uint16_t status;                 /**< REQUEST_FAILED: the hub's status (429, 500, 404...). */
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
    /** Consecutive failed connects before TETHER_HUB_UNREACHABLE; default 10, about three
     *  to five minutes with the default backoff, so a hub restart does not send a fleet to
     *  DPS. Connections that the hub accepts and then drops are not failed connects. */
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
    uint32_t connect_attempts; /**< Successful or not. */
    uint32_t twin_requests;    /**< Twin GETs sent. */
    uint32_t report_requests;  /**< Reported patches sent, resends included. */
    uint32_t discarded;        /**< Messages dropped as too large for the receive buffer. */
} tether_hub_stats;

/** A request that may have to be sent again. Private. */
typedef struct tether_hub_request {
    char rid[12];         /* of the request awaiting its answer; "" if none */
    uint64_t retry_at_ms; /* when to send it again after a 429 or 5xx; 0 if not */
    uint32_t attempt;     /* retries in a row, for the backoff */
    uint32_t previous_ms;
} tether_hub_request;

/** The caller-owned session. Treat the fields as private. */
typedef struct tether_hub_session {
    /* The small fields first, the big buffers last: fields near the start cost the code
     * fewer instructions to reach. */
    tether_tls *tls;
    const tether_hub_config *cfg;
    bool connected;
    uint32_t failures;
    uint32_t backoff_attempt; /* reconnects since the last healthy connection */
    uint32_t previous_delay;
    uint32_t early_drops; /* connections in a row that ended right after CONNACK */
    uint32_t rid_counter;
    uint64_t connected_at_ms;
    uint64_t attempts_ms[TETHER_HUB_CONNECTS_PER_MINUTE]; /* ring of the last attempts */
    uint32_t attempts_next;
    uint32_t attempts_count;
    tether_hub_request twin;
    tether_hub_request report;
    size_t report_len; /* of the patch in report_json not yet stored; 0 if none */
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
    char report_json[TETHER_HUB_REPORT_LEN];
    tether_mqtt_inflight slots[TETHER_HUB_QUEUE_SLOTS];
    /* The MQTT client's buffers last: only their start is ever taken. */
    uint8_t tx[TETHER_HUB_TX_LEN];
    uint8_t rx[TETHER_HUB_RX_LEN];
    uint8_t queue[TETHER_HUB_QUEUE_LEN];
} tether_hub_session;

/** Defaults: port 8883, keep-alive 240 s, token 3600 s, 10 failures, backoff 1 s doubling to
 *  60 s with equal jitter (backoff.h). */
tether_hub_config tether_hub_config_default(void);

/**
 * Connects for the first time, subscribes and asks for the twin.
 * @return TETHER_OK; TETHER_HUB_IDENTITY_REFUSED (CONNACK 4 or 5: reprovision); a TLS or MQTT
 *         status (see tether_tls_last_diag()); TETHER_CLOCK_NOT_SET for a SAS key. After a
 *         transient status (tether_status_is_transient(): the hub restarting, the network)
 *         the session is started all the same: tether_hub_session_process() goes on trying
 *         with the reconnect backoff, and says TETHER_HUB_UNREACHABLE after max_failures, so
 *         a hub hiccup at boot does not send the device back to DPS.
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

/**
 * Sends a reported-properties patch (JSON); the hub's 204 arrives as a REPORTED event. The
 * session keeps a copy until then: it is sent again after a 429 or 5xx (with backoff) and
 * after a reconnect; given while disconnected, it goes out with the next connection. A new
 * patch replaces one not yet stored.
 * @return TETHER_BUFFER_TOO_SMALL above TETHER_HUB_REPORT_LEN bytes.
 */
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
