/**
 * @file dps_session.h
 * @brief Provisioning: from credentials to an assigned hub, through DPS over MQTT and TLS.
 *
 * tether_dps_register() runs the whole flow: TLS to the DPS endpoint (X.509: the identity set
 * on the ::tether_tls; symmetric key: a SAS token as the MQTT password), subscribe, register
 * (with an optional custom payload), poll as long as DPS answers `assigning` (honouring
 * retry-after), retry 429 and 5xx with backoff and jitter, reconnect after a lost connection,
 * and stop on a final answer or the overall deadline. Every step is reported to an optional
 * progress callback, so a command can say what it waits for.
 *
 * Pacing (each request is a register or a poll; DPS allows a device at most 5 status polls
 * in 10 s, design/PROTOCOL.md "DPS"): requests are at least ::TETHER_DPS_MIN_REQUEST_INTERVAL_MS (2
 * s) apart, whatever the server says, so never more than 5 in any 10 s. While assigning (202), the
 * next poll comes after the server's retry-after, or after default_poll_ms (3 s) when it gives none
 * or 0. A 429 or 5xx is retried after the server's retry-after, or with exponential backoff and
 * jitter when it gives none or 0; any other 4xx is final (401: ::TETHER_DPS_UNAUTHORIZED, else
 * ::TETHER_DPS_REQUEST_REFUSED). A retry-after is honoured however large: the WAITING event
 * carries it (server_retry_after, wait_ms); if it reaches past the deadline, the registration
 * stops at once with ::TETHER_DPS_DEADLINE_EXCEEDED and says so in the result's
 * error_message, rather than asking sooner than the server allowed.
 *
 * All memory is the caller's: the ::tether_dps_session holds the MQTT buffers (sizes below),
 * the ::tether_tls holds mbedTLS's state.
 *
 * @code
 * static tether_dps_session s;
 * tether_dps_config cfg = tether_dps_config_default();
 * cfg.id_scope = "0ne00AB12CD";
 * cfg.registration_id = "pump-17";
 * tether_dps_result r;
 * if (tether_dps_register(&s, &tls, &cfg, &r) == TETHER_OK)
 *     printf("assigned to %s as %s\n", r.assigned_hub, r.device_id);
 * @endcode
 */
#ifndef TETHER_DPS_SESSION_H
#define TETHER_DPS_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/backoff.h"
#include "tether/dps.h"
#include "tether/mqtt.h"
#include "tether/status.h"
#include "tether/tls.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TETHER_DPS_TX_LEN
/** Largest outgoing DPS packet: the register request with its custom payload. */
#define TETHER_DPS_TX_LEN 1536
#endif
#ifndef TETHER_DPS_RX_LEN
/** Largest incoming DPS packet: an assignment with its custom allocation payload. */
#define TETHER_DPS_RX_LEN 2048
#endif
#ifndef TETHER_DPS_MIN_REQUEST_INTERVAL_MS
/** The shortest time between two DPS requests (2 s: at most 5 in any 10 s). */
#define TETHER_DPS_MIN_REQUEST_INTERVAL_MS 2000u
#endif
#ifndef TETHER_DPS_PAYLOAD_MAX
/** Largest custom allocation payload kept in the result. */
#define TETHER_DPS_PAYLOAD_MAX 512
#endif

/** What the progress callback is told. */
typedef enum tether_dps_event {
    TETHER_DPS_EVENT_CONNECTING,  /**< Opening TLS and MQTT to the endpoint. */
    TETHER_DPS_EVENT_REGISTERING, /**< The register request went out. */
    TETHER_DPS_EVENT_POLLING,     /**< A poll went out. */
    TETHER_DPS_EVENT_RESPONSE,    /**< A response arrived (status, operation status). */
    TETHER_DPS_EVENT_WAITING,     /**< Waiting wait_ms before the next request. */
    TETHER_DPS_EVENT_CONNECTION_LOST
} tether_dps_event;

/** One step of the flow, for a progress line. */
typedef struct tether_dps_progress {
    tether_dps_event event;
    uint16_t http_status;        /**< RESPONSE: 200, 202, 429, ... */
    tether_dps_status operation; /**< RESPONSE: assigning, assigned, ... */
    const char *operation_id;    /**< RESPONSE, POLLING: the operation, or "". */
    bool server_retry_after;     /**< WAITING: the delay is the server's retry-after. */
    uint32_t wait_ms;            /**< WAITING. */
    tether_status cause;         /**< CONNECTION_LOST, and WAITING after a failure. */
    uint32_t attempt;            /**< Retries so far. */
    uint64_t elapsed_ms;         /**< Since the start. */
} tether_dps_progress;

/** Settings; start from tether_dps_config_default(). */
typedef struct tether_dps_config {
    const char *endpoint;   /**< Host name: SNI and certificate check. Default global endpoint. */
    const char *connect_to; /**< Address to dial instead (local cloud, tests); NULL for none. */
    uint16_t port;          /**< Default 8883. */
    const char *id_scope;
    const char *registration_id;
    const char *sas_key; /**< Base64 device key for symmetric-key attestation; NULL: X.509. */
    uint32_t sas_ttl_s;  /**< Lifetime of the SAS token; default 3600. */
    const char *payload; /**< Custom JSON sent with the registration; NULL for none. */
    uint32_t timeout_ms; /**< Overall deadline; default 120 s. */
    uint32_t response_timeout_ms; /**< Wait for one response; default 30 s. */
    uint32_t default_poll_ms;     /**< Poll interval when DPS gives no retry-after (or 0); 3 s. */
    tether_backoff_options backoff;
    tether_tls_options tls; /**< Timeouts, fragment length...; host and port are set here. */
    void (*on_progress)(void *context, const tether_dps_progress *progress);
    void *progress_context;
} tether_dps_config;

#ifndef TETHER_DPS_RESPONSE_KEEP
/** How many bytes of the last DPS response a tether_dps_result keeps for a diagnosis. */
#define TETHER_DPS_RESPONSE_KEEP 256
#endif

/** The outcome. Strings are NUL-terminated. */
typedef struct tether_dps_result {
    char assigned_hub[256];
    char device_id[129];
    char substatus[48];
    char operation_id[128];
    char payload[TETHER_DPS_PAYLOAD_MAX]; /**< Custom allocation data (JSON), "" if none. */
    uint16_t http_status;                 /**< Of the last response. */
    tether_dps_status operation;          /**< Of the last response. */
    uint32_t error_code;                  /**< e.g. 401002; 0 when none. */
    char error_message[256];
    /** The last response to our request as it came, "TOPIC PAYLOAD", cut to the buffer:
     *  untrusted bytes, not NUL-terminated (see response_len), for a diagnosis. */
    uint8_t response[TETHER_DPS_RESPONSE_KEEP];
    uint16_t response_len;      /**< Bytes kept in response. */
    uint32_t response_total;    /**< Length of the whole response (topic, space, payload). */
    uint32_t register_requests; /**< Register requests sent (1 unless retried). */
    uint32_t polls;
    uint32_t reconnects;
    uint64_t elapsed_ms;
} tether_dps_result;

/** The caller-owned working memory of one registration. Treat the fields as private. */
typedef struct tether_dps_session {
    /* The small fields first, the big buffers last: fields near the start cost the code
     * fewer instructions to reach. */
    const tether_dps_config *cfg;
    tether_dps_result *result;
    tether_tls *tls;
    bool got_response;
    tether_status parse_status;
    uint32_t rid_counter;
    char rid[12];
    tether_dps_response_topic response;
    uint64_t start_ms;
    tether_dps_progress progress; /* the next event's details */
    tether_mqtt_client mqtt;
    char username[256];
    char password[512];
    char topic[256];
    char body[TETHER_DPS_TX_LEN - 300];
    char scratch[1024];
    tether_json_token tokens[96];
    tether_mqtt_inflight slots[2];
    /* The MQTT client's buffers last: only their start is ever taken. */
    uint8_t tx[TETHER_DPS_TX_LEN];
    uint8_t rx[TETHER_DPS_RX_LEN];
    uint8_t store[TETHER_DPS_TX_LEN];
} tether_dps_session;

/** Defaults: global endpoint, port 8883, 120 s deadline, 3 s poll, default backoff. */
tether_dps_config tether_dps_config_default(void);

/**
 * Registers with DPS and waits for the assignment.
 * @param tls initialised, with the trust store and (X.509) the device identity set.
 * @return TETHER_OK with the hub in @p result; TETHER_DPS_UNAUTHORIZED,
 *         TETHER_DPS_REQUEST_REFUSED, TETHER_DPS_ASSIGNMENT_FAILED,
 *         TETHER_DPS_ENROLLMENT_DISABLED, TETHER_DPS_DEADLINE_EXCEEDED, TETHER_CLOCK_NOT_SET,
 *         or the TLS / MQTT status of a connection that could not be made (see
 *         tether_tls_last_diag()).
 */
TETHER_MUST_USE tether_status tether_dps_register(tether_dps_session *session, tether_tls *tls,
                                                  const tether_dps_config *config,
                                                  tether_dps_result *result);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_DPS_SESSION_H */
