/**
 * @file status.h
 * @brief One status enum for all of tether, with a name, a message and a hint per code.
 *
 * Every public function returns a ::tether_status (or a count, documented where it does).
 * A status never stands alone: tether_status_name() gives a stable upper-case name for logs
 * and searches, tether_status_message() one line saying what happened, and
 * tether_status_hint() what to change. Layers that translate foreign codes (mbedTLS, errno,
 * MQTT return codes) keep the original beside the status in their diagnostics.
 *
 * @code
 * tether_status st = tether_mqtt_client_connect(&client, &opts, 5000);
 * if (st != TETHER_OK)
 *     printf("error %s: %s\n  fix: %s\n", tether_status_name(st),
 *            tether_status_message(st), tether_status_hint(st));
 * @endcode
 */
#ifndef TETHER_STATUS_H
#define TETHER_STATUS_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
/** Marks a result the caller must look at. */
#define TETHER_MUST_USE __attribute__((warn_unused_result))
#else
#define TETHER_MUST_USE
#endif

/** Status of every tether operation. Values are stable; names are what users search for. */
typedef enum tether_status {
    TETHER_OK = 0,

    /* Caller and buffers. */
    TETHER_INVALID_ARGUMENT,
    TETHER_BUFFER_TOO_SMALL,
    TETHER_WOULD_BLOCK,
    TETHER_TIMEOUT,

    /* Port: files, clock, randomness, sockets. */
    TETHER_FILE_NOT_FOUND,
    TETHER_FILE_READ_FAILED,
    TETHER_FILE_TOO_LARGE,
    TETHER_ENTROPY_FAILED,
    TETHER_DNS_FAILED,
    TETHER_CONNECT_REFUSED,
    TETHER_CONNECT_TIMEOUT,
    TETHER_NETWORK_UNREACHABLE,
    TETHER_CONNECTION_CLOSED,
    TETHER_CONNECTION_RESET,
    TETHER_SOCKET_ERROR,

    /* TLS: credentials given to tether. */
    TETHER_TLS_CA_PARSE_FAILED,
    TETHER_TLS_CERT_PARSE_FAILED,
    TETHER_TLS_KEY_PARSE_FAILED,
    TETHER_TLS_KEY_PASSWORD_REQUIRED,
    TETHER_TLS_KEY_PASSWORD_WRONG,
    TETHER_TLS_KEY_ENCRYPTED_UNSUPPORTED,
    TETHER_TLS_KEY_MISMATCH,
    TETHER_TLS_NO_TRUST_ANCHOR,
    TETHER_TLS_INSECURE_NOT_ALLOWED,

    /* TLS: the handshake and records. */
    TETHER_TLS_CERT_CHAIN_TOO_LARGE,
    TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE,
    TETHER_TLS_ALLOC_FAILED,
    TETHER_TLS_SERVER_CERT_UNTRUSTED,
    TETHER_TLS_SERVER_CERT_EXPIRED,
    TETHER_TLS_SERVER_CERT_NOT_YET_VALID,
    TETHER_TLS_HOSTNAME_MISMATCH,
    TETHER_TLS_CLIENT_CERT_REJECTED,
    TETHER_TLS_CLIENT_CERT_REQUIRED,
    TETHER_TLS_HANDSHAKE_REFUSED,
    TETHER_TLS_PROTOCOL_VERSION,
    TETHER_TLS_RECORD_TOO_LARGE,
    TETHER_TLS_HANDSHAKE_MESSAGE_TOO_LARGE,
    TETHER_TLS_FRAGMENT_LENGTH_REFUSED,
    TETHER_TLS_HANDSHAKE_TIMEOUT,
    TETHER_TLS_ALERT,
    TETHER_TLS_FAILED,

    /* MQTT. */
    TETHER_MQTT_MALFORMED,
    TETHER_MQTT_PROTOCOL_ERROR,
    TETHER_MQTT_PACKET_TOO_LARGE,
    TETHER_MQTT_CONNACK_PROTOCOL_VERSION,
    TETHER_MQTT_CONNACK_IDENTIFIER_REJECTED,
    TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE,
    TETHER_MQTT_CONNACK_BAD_CREDENTIALS,
    TETHER_MQTT_CONNACK_NOT_AUTHORIZED,
    TETHER_MQTT_CONNACK_TIMEOUT,
    TETHER_MQTT_SUBSCRIBE_REFUSED,
    TETHER_MQTT_INFLIGHT_FULL,
    TETHER_MQTT_KEEPALIVE_TIMEOUT,
    TETHER_MQTT_NOT_CONNECTED,
    TETHER_MQTT_ACK_TIMEOUT,

    /* Protocol helpers: identities, DPS and hub messages, SAS keys, JSON, URL encoding. */
    TETHER_INVALID_REGISTRATION_ID,
    TETHER_INVALID_DEVICE_ID,
    TETHER_INVALID_ID_SCOPE,
    TETHER_DPS_MALFORMED_RESPONSE,
    TETHER_HUB_MALFORMED_TOPIC,
    TETHER_HUB_UNKNOWN_TOPIC,
    TETHER_SAS_KEY_INVALID,
    TETHER_JSON_MALFORMED,
    TETHER_JSON_TOO_DEEP,
    TETHER_JSON_TOO_MANY_TOKENS,
    TETHER_JSON_NOT_FOUND,
    TETHER_JSON_WRONG_TYPE,
    TETHER_URL_MALFORMED,

    /* The store of the provisioning result. */
    TETHER_STORE_EMPTY,
    TETHER_STORE_CORRUPT,
    TETHER_STORE_FOREIGN,
    TETHER_STORE_WRITE_FAILED,

    /* Time. */
    TETHER_CLOCK_NOT_SET,
    TETHER_SNTP_BAD_REPLY,
    TETHER_SNTP_KISS_OF_DEATH,
    TETHER_SNTP_UNSYNCHRONIZED,

    /* Provisioning and the hub session. */
    TETHER_DPS_UNAUTHORIZED,
    TETHER_DPS_REQUEST_REFUSED,
    TETHER_DPS_ASSIGNMENT_FAILED,
    TETHER_DPS_ENROLLMENT_DISABLED,
    TETHER_DPS_DEADLINE_EXCEEDED,
    TETHER_HUB_IDENTITY_REFUSED,
    TETHER_HUB_UNREACHABLE,
    TETHER_HUB_QUEUE_FULL,
    TETHER_HUB_DROPPED_AFTER_CONNECT,
    TETHER_HUB_THROTTLED,
    TETHER_HUB_SERVER_ERROR,
    TETHER_HUB_REQUEST_REFUSED,

    /* Added after the groups above; values are stable, so new codes come last. */
    TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL,
    TETHER_STORE_NOT_DURABLE,
    TETHER_TLS_SERVER_SIGNATURE_REJECTED,

    TETHER_STATUS_COUNT /**< Not a status: the number of codes. */
} tether_status;

/** Stable upper-case name without prefix, e.g. "TLS_CERT_CHAIN_TOO_LARGE"; "UNKNOWN" if out of
 * range. */
const char *tether_status_name(tether_status status);

/** One line saying what happened, in words a user can act on. */
const char *tether_status_message(tether_status status);

/** What to change so that it does not happen again. */
const char *tether_status_hint(tether_status status);

/**
 * True for failures that may pass by themselves (the network, a server restarting, a
 * throttled or busy service): worth a retry with backoff. False for what needs a change
 * (credentials, configuration, a refusal).
 */
bool tether_status_is_transient(tether_status status);

/**
 * Looks up a status by its name (with or without the "TETHER_" prefix, any case).
 * @return TETHER_OK and the code in @p out_status, or TETHER_INVALID_ARGUMENT if unknown.
 */
TETHER_MUST_USE tether_status tether_status_from_name(const char *name, tether_status *out_status);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_STATUS_H */
