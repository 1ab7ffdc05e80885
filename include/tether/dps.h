/**
 * @file dps.h
 * @brief Azure IoT Device Provisioning Service over MQTT: what to send and how to read the
 *        answers. Pure functions: no I/O, no clock, no allocation.
 *
 * Writers follow tether's sizing contract: on success @p out_len is the number of bytes
 * written (no NUL is added); with `buf = NULL` or a @p cap that is too small they write
 * nothing, return ::TETHER_BUFFER_TOO_SMALL and set @p out_len to the size needed.
 * Identifiers are NUL-terminated strings and are checked (::TETHER_INVALID_REGISTRATION_ID,
 * ::TETHER_INVALID_ID_SCOPE). A request id (`$rid`) is 1 to 128 printable ASCII characters
 * other than space & # + / = ?, e.g. a decimal counter.
 *
 * A response comes as a topic and a payload: tether_dps_response_topic_parse() reads the
 * topic (status, `$rid`, `retry-after`), tether_dps_response_payload_parse() the JSON. The
 * payload's strings are unescaped into a caller scratch buffer and the views point there;
 * `payload` (the custom allocation data) is a view of the raw JSON in the message.
 *
 * @code
 * char topic[128], scratch[512];
 * size_t len;
 * tether_view rid = tether_view_of("1");
 * st = tether_dps_register_topic(rid, topic, sizeof topic, &len); // then publish
 * // ... on a message:
 * tether_dps_response_topic rt;
 * tether_dps_registration reg;
 * tether_json_token tokens[64];
 * if (tether_dps_response_topic_parse(t, t_len, &rt) == TETHER_OK &&
 *     tether_dps_response_payload_parse(p, p_len, tokens, 64, scratch, sizeof scratch, &reg)
 *         == TETHER_OK && reg.status == TETHER_DPS_ASSIGNED)
 *     printf("%.*s\n", (int)reg.assigned_hub.len, reg.assigned_hub.ptr);
 * @endcode
 */
#ifndef TETHER_DPS_H
#define TETHER_DPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/json.h"
#include "tether/status.h"
#include "tether/view.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The API version tether speaks to DPS. */
#define TETHER_DPS_API_VERSION "2021-06-01"
/** The global DPS endpoint (MQTT over TLS on port 8883). */
#define TETHER_DPS_GLOBAL_ENDPOINT "global.azure-devices-provisioning.net"
/** The filter to subscribe to (QoS 1) before registering. */
#define TETHER_DPS_RESPONSE_FILTER "$dps/registrations/res/#"
/** Longest registration id DPS accepts. */
#define TETHER_DPS_REGISTRATION_ID_MAX 128

/** Status of a registration operation (top level) or of the registration state. */
typedef enum tether_dps_status {
    TETHER_DPS_STATUS_NONE = 0, /**< Absent from the payload. */
    TETHER_DPS_UNASSIGNED,
    TETHER_DPS_ASSIGNING,
    TETHER_DPS_ASSIGNED,
    TETHER_DPS_FAILED,
    TETHER_DPS_DISABLED
} tether_dps_status;

/** What the topic of a response says. */
typedef struct tether_dps_response_topic {
    uint16_t status; /**< HTTP-like: 200, 202, 401, 429, 500, ... */
    tether_view rid; /**< The request id, as sent (a view into the topic). */
    bool has_retry_after;
    uint32_t retry_after_s; /**< Seconds to wait before the next request, when given. */
} tether_dps_response_topic;

/**
 * What the payload of a response says. Every member is optional: absent strings are empty
 * views with a NULL pointer. Strings point into the scratch buffer, @c payload into the
 * message.
 */
typedef struct tether_dps_registration {
    tether_view operation_id;
    tether_dps_status status; /**< Top-level "status". */

    /* registrationState */
    tether_view registration_id;
    tether_dps_status state_status; /**< registrationState.status */
    tether_view assigned_hub;
    tether_view device_id;
    tether_view substatus; /**< initialAssignment, deviceDataMigrated, ... */
    tether_view created_utc;
    tether_view last_updated_utc;
    tether_view etag;
    tether_view payload; /**< Custom allocation data: raw JSON text, a view of the message. */

    /* Errors: of the registration state, or of a request that failed outright
     * ({"errorCode":401002,"trackingId":...,"message":...,"timestampUtc":...}). */
    uint32_t error_code;       /**< 0 when none; e.g. 401002, whose HTTP class is 401. */
    tether_view error_message; /**< registrationState.errorMessage or top-level message. */
    tether_view tracking_id;
    tether_view timestamp_utc;

    size_t scratch_len; /**< Scratch bytes used; on TETHER_BUFFER_TOO_SMALL, bytes needed. */
} tether_dps_registration;

/**
 * Checks a registration id: 1 to 128 letters, digits and `- . _ :`, ending with a letter, a
 * digit or `-`.
 * @return TETHER_OK or TETHER_INVALID_REGISTRATION_ID.
 */
TETHER_MUST_USE tether_status tether_dps_registration_id_check(const char *registration_id);

/**
 * Writes the MQTT user name
 * `{idScope}/registrations/{registrationId}/api-version=2021-06-01[&ClientVersion={enc}]`.
 * @param client_version NULL for none; URL-encoded when written.
 */
TETHER_MUST_USE tether_status tether_dps_username(const char *id_scope, const char *registration_id,
                                                  const char *client_version, char *buf, size_t cap,
                                                  size_t *out_len);

/** Writes the MQTT client id, which for DPS is the registration id. */
TETHER_MUST_USE tether_status tether_dps_client_id(const char *registration_id, char *buf,
                                                   size_t cap, size_t *out_len);

/** Writes `$dps/registrations/PUT/iotdps-register/?$rid={rid}`. */
TETHER_MUST_USE tether_status tether_dps_register_topic(tether_view rid, char *buf, size_t cap,
                                                        size_t *out_len);

/**
 * Writes `$dps/registrations/GET/iotdps-get-operationstatus/?$rid={rid}&operationId={id}`,
 * the operation id URL-encoded. Publish it with an empty payload.
 */
TETHER_MUST_USE tether_status tether_dps_poll_topic(tether_view rid, tether_view operation_id,
                                                    char *buf, size_t cap, size_t *out_len);

/**
 * Writes the register payload `{"registrationId":"{id}"}`, or with @p custom_json (not
 * NULL) `{"registrationId":"{id}","payload":{custom_json}}`.
 * @return TETHER_JSON_MALFORMED or TETHER_JSON_TOO_DEEP when @p custom_json is not JSON.
 */
TETHER_MUST_USE tether_status tether_dps_register_payload(const char *registration_id,
                                                          const char *custom_json,
                                                          size_t custom_len, char *buf, size_t cap,
                                                          size_t *out_len);

/**
 * Reads `$dps/registrations/res/{status}/?{query}`. The query must hold `$rid` and may hold
 * `retry-after` (decimal seconds), in any order; other parameters are ignored.
 * @return TETHER_OK; TETHER_DPS_MALFORMED_RESPONSE for any other topic, a status that is not
 *         three digits from 100 to 599, a missing or repeated `$rid`, or a bad `retry-after`.
 */
TETHER_MUST_USE tether_status tether_dps_response_topic_parse(const char *topic, size_t topic_len,
                                                              tether_dps_response_topic *out);

/**
 * Reads a response payload: an operation (`operationId`, `status`, `registrationState`) or
 * the error of a request that failed outright (`errorCode`, `message`, ...).
 * @param tokens    JSON tokens for the payload (64 fit a full assignment with a small
 *                  custom payload).
 * @param scratch   receives the unescaped strings; its size bounds them all together.
 * @return TETHER_OK; TETHER_JSON_TOO_MANY_TOKENS; TETHER_BUFFER_TOO_SMALL when @p scratch is
 *         too small; TETHER_DPS_MALFORMED_RESPONSE when the payload is not JSON, a member
 *         has the wrong type, a status is unknown, or it is neither an operation nor an
 *         error.
 */
TETHER_MUST_USE tether_status tether_dps_response_payload_parse(
    const char *payload, size_t payload_len, tether_json_token *tokens, size_t max_tokens,
    char *scratch, size_t scratch_cap, tether_dps_registration *out);

/** True for the statuses after which the operation is over: assigned, failed, disabled. */
bool tether_dps_status_is_final(tether_dps_status status);

/** "assigned", "assigning", ...; "" for TETHER_DPS_STATUS_NONE. */
const char *tether_dps_status_name(tether_dps_status status);

/** True for a response status worth retrying: 429 (throttled) and 5xx. */
bool tether_dps_response_is_retriable(uint16_t status);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_DPS_H */
