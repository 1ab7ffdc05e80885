/**
 * @file hub.h
 * @brief Azure IoT Hub over MQTT: user name, client id, topics and property bags written
 *        into caller buffers, and incoming topics read into views. Pure functions: no I/O,
 *        no clock, no allocation.
 *
 * Writers follow tether's sizing contract: on success @p out_len is the number of bytes
 * written (no NUL is added); with `buf = NULL` or a @p cap that is too small they write
 * nothing, return ::TETHER_BUFFER_TOO_SMALL and set @p out_len to the size needed. A
 * request id (`$rid`) is 1 to 128 printable ASCII characters other than space & # + / = ?.
 *
 * Every message from the hub goes through tether_hub_topic_parse(), which says what it is
 * (cloud-to-device message, twin response, desired-properties patch, method request) and
 * returns its fields as views into the topic. Property bags stay URL-encoded in the topic;
 * tether_hub_property_next() decodes them one at a time into a caller buffer.
 *
 * @code
 * tether_hub_identity id = {.host = "myhub.azure-devices.net", .device_id = "dev1"};
 * tether_hub_property props[] = {{tether_view_of(TETHER_HUB_PROPERTY_CONTENT_TYPE),
 *                                 tether_view_of("application/json")}};
 * char topic[256];
 * size_t len;
 * if (tether_hub_telemetry_topic(&id, props, 1, topic, sizeof topic, &len) == TETHER_OK)
 *     publish(topic, len, payload, payload_len); // devices/dev1/messages/events/%24.ct=...
 * @endcode
 */
#ifndef TETHER_HUB_H
#define TETHER_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"
#include "tether/view.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The API version tether speaks to IoT Hub. */
#define TETHER_HUB_API_VERSION "2021-04-12"
/** Longest device or module id IoT Hub accepts. */
#define TETHER_HUB_ID_MAX 128

/** Filters to subscribe to (QoS 1 at most; the hub grants QoS 2 as 1). */
#define TETHER_HUB_TWIN_RESPONSE_FILTER "$iothub/twin/res/#"
#define TETHER_HUB_TWIN_DESIRED_FILTER  "$iothub/twin/PATCH/properties/desired/#"
#define TETHER_HUB_METHODS_FILTER       "$iothub/methods/POST/#"

/** System properties of a device-to-cloud message (URL-encoded to %24.ct etc. when sent). */
#define TETHER_HUB_PROPERTY_CONTENT_TYPE     "$.ct"
#define TETHER_HUB_PROPERTY_CONTENT_ENCODING "$.ce"
#define TETHER_HUB_PROPERTY_MESSAGE_ID       "$.mid"
#define TETHER_HUB_PROPERTY_CORRELATION_ID   "$.cid"

/** Who is talking to which hub. */
typedef struct tether_hub_identity {
    const char *host; /**< The hub host name, e.g. DPS's assignedHub. */
    /** 1 to 128 of letters, digits and - . % _ * ? ! ( ) , : ; = @ $ ' (IoT Hub also allows
     * + and #, which cannot travel in MQTT topic names). */
    const char *device_id;
    const char *module_id; /**< NULL for a device; same rules as the device id. */
} tether_hub_identity;

/** One application or system property: a name and a value, not yet URL-encoded. */
typedef struct tether_hub_property {
    tether_view name;
    tether_view value;
} tether_hub_property;

/** What tether_hub_topic_parse() found. */
typedef enum tether_hub_topic_kind {
    TETHER_HUB_TOPIC_C2D = 1,       /**< devices/{id}/messages/devicebound/{properties} */
    TETHER_HUB_TOPIC_TWIN_RESPONSE, /**< $iothub/twin/res/{status}/?$rid=..[&$version=..] */
    TETHER_HUB_TOPIC_DESIRED_PATCH, /**< $iothub/twin/PATCH/properties/desired/?$version=.. */
    TETHER_HUB_TOPIC_METHOD         /**< $iothub/methods/POST/{name}/?$rid=.. */
} tether_hub_topic_kind;

/** An incoming topic: the fields of its kind are set, the others are zero. */
typedef struct tether_hub_topic {
    tether_hub_topic_kind kind;
    uint16_t status;         /**< Twin response: 200, 204, 4xx, 5xx ... */
    tether_view rid;         /**< Twin response and method: the request id as sent. */
    bool has_version;        /**< Twin response (204) and desired patch. */
    uint64_t version;        /**< The twin section's $version. */
    tether_view method_name; /**< Method. */
    tether_view device_id;   /**< C2D. */
    tether_view properties;  /**< C2D: the raw (URL-encoded) property bag, maybe empty. */
} tether_hub_topic;

/**
 * Checks the host name (letters, digits, - and .), the device id and the module id.
 * @return TETHER_OK, TETHER_INVALID_ARGUMENT (host) or TETHER_INVALID_DEVICE_ID.
 */
TETHER_MUST_USE tether_status tether_hub_identity_check(const tether_hub_identity *id);

/**
 * Writes the MQTT user name
 * `{host}/{deviceId}[/{moduleId}]/?api-version=2021-04-12[&DeviceClientType={enc}][&model-id={enc}]`.
 * @param client_type NULL for none, e.g. "tether/0.1.0".
 * @param model_id    NULL for none; an IoT Plug and Play model id such as "dtmi:com:x;1".
 */
TETHER_MUST_USE tether_status tether_hub_username(const tether_hub_identity *id,
                                                  const char *client_type, const char *model_id,
                                                  char *buf, size_t cap, size_t *out_len);

/** Writes the MQTT client id: `{deviceId}` or `{deviceId}/{moduleId}`. */
TETHER_MUST_USE tether_status tether_hub_client_id(const tether_hub_identity *id, char *buf,
                                                   size_t cap, size_t *out_len);

/**
 * Writes the telemetry topic `devices/{deviceId}[/modules/{moduleId}]/messages/events/`
 * followed by the property bag `name=value&...`, names and values URL-encoded.
 * @param properties may be NULL when @p count is 0; names must not be empty.
 */
TETHER_MUST_USE tether_status tether_hub_telemetry_topic(const tether_hub_identity *id,
                                                         const tether_hub_property *properties,
                                                         size_t count, char *buf, size_t cap,
                                                         size_t *out_len);

/** Writes the cloud-to-device filter `devices/{deviceId}/messages/devicebound/#` (devices
 * only: modules get no cloud-to-device messages). */
TETHER_MUST_USE tether_status tether_hub_c2d_filter(const tether_hub_identity *id, char *buf,
                                                    size_t cap, size_t *out_len);

/** Writes `$iothub/twin/GET/?$rid={rid}`; publish it with an empty payload. */
TETHER_MUST_USE tether_status tether_hub_twin_get_topic(tether_view rid, char *buf, size_t cap,
                                                        size_t *out_len);

/** Writes `$iothub/twin/PATCH/properties/reported/?$rid={rid}`; the payload is the patch. */
TETHER_MUST_USE tether_status tether_hub_twin_patch_topic(tether_view rid, char *buf, size_t cap,
                                                          size_t *out_len);

/** Writes `$iothub/methods/res/{status}/?$rid={rid}`, @p rid as the request carried it. */
TETHER_MUST_USE tether_status tether_hub_method_response_topic(uint16_t status, tether_view rid,
                                                               char *buf, size_t cap,
                                                               size_t *out_len);

/**
 * Reads the topic of a message from the hub.
 * @return TETHER_OK with the kind and its fields; TETHER_HUB_UNKNOWN_TOPIC when it is none
 *         of the four kinds; TETHER_HUB_MALFORMED_TOPIC when it starts as one of them but
 *         the rest is wrong (a status that is not three digits from 100 to 599, a missing
 *         or repeated `$rid` or `$version`, a bad number, an empty method name or device id,
 *         a bad percent-escape or an empty property name in the bag).
 */
TETHER_MUST_USE tether_status tether_hub_topic_parse(const char *topic, size_t topic_len,
                                                     tether_hub_topic *out);

/**
 * Walks a property bag (tether_hub_topic::properties), decoding each name and value into
 * @p buf (name first, then value); the views in @p out point there. Empty pairs are
 * skipped.
 * @param offset in/out position in @p bag; start at 0.
 * @param out_len bytes of @p buf used, or on TETHER_BUFFER_TOO_SMALL bytes needed (the
 *        offset then stays, so the call can be repeated with a larger buffer).
 * @return TETHER_OK; TETHER_WOULD_BLOCK when no property is left; TETHER_BUFFER_TOO_SMALL;
 *         TETHER_HUB_MALFORMED_TOPIC for a bad escape or an empty name.
 */
TETHER_MUST_USE tether_status tether_hub_property_next(tether_view bag, size_t *offset, char *buf,
                                                       size_t cap, tether_hub_property *out,
                                                       size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_HUB_H */
