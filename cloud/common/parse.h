/* Pure parsers for what devices send: MQTT usernames, request topics, query strings and
 * property bags. No I/O, no clock; these are what the unit tests and the fuzz target drive. */
#ifndef TC_PARSE_H
#define TC_PARSE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define TC_ID_MAX   128 /* registration and device ids */
#define TC_HOST_MAX 255
#define TC_RID_MAX  64

enum tc_user_kind { TC_USER_INVALID = 0, TC_USER_DPS, TC_USER_HUB };

struct tc_username {
    enum tc_user_kind kind;
    char scope_or_host[TC_HOST_MAX + 1]; /* id scope (DPS) or hub host name (hub) */
    char id[TC_ID_MAX + 1];              /* registration id (DPS) or device id (hub) */
    char module[TC_ID_MAX + 1];          /* hub module id, empty for a device */
    char api_version[32];
};

/* Parse `{idScope}/registrations/{id}/api-version={v}[&ClientVersion=…]` or
 * `{hubHost}/{deviceId}[/{moduleId}]/?api-version={v}[&…]`. Returns 0, or -1 when the
 * username has neither form or names an api-version the service does not speak. */
int tc_username_parse(const char *username, struct tc_username *out);

/* Find key in a query `k=v&k2=v2` (not decoded). Returns 1 and copies the value (truncating
 * is refused: returns -1), or 0 when absent. */
int tc_query_get(const char *query, const char *key, char *out, size_t out_size);

enum tc_topic_kind {
    TC_TOPIC_UNKNOWN = 0,
    TC_TOPIC_DPS_REGISTER,
    TC_TOPIC_DPS_POLL,
    TC_TOPIC_TELEMETRY,
    TC_TOPIC_TWIN_GET,
    TC_TOPIC_TWIN_PATCH_REPORTED,
    TC_TOPIC_METHOD_RESPONSE,
};

struct tc_topic {
    enum tc_topic_kind kind;
    char rid[TC_RID_MAX + 1];
    char operation_id[TC_ID_MAX + 1];
    int status;        /* method response status */
    const char *props; /* telemetry property bag inside the topic (may be empty) */
};

/* Classify a topic a device published to. device_id is the authenticated device (hub) or
 * NULL (DPS). Unknown or malformed topics give TC_TOPIC_UNKNOWN. */
void tc_topic_parse(const char *topic, const char *device_id, struct tc_topic *out);

/* A registration id: 1..128 of [A-Za-z0-9-._:], ending in a letter, digit or '-'. */
int tc_registration_id_valid(const char *id);
/* An IoT Hub device id: 1..128 ASCII 7-bit alphanumerics and - : . + % _ # * ? ! ( ) , = @ ;
 * $ ' (Microsoft Learn, "IotHubDeviceCreatedEventData.deviceId"). 1 if valid. */
int tc_device_id_valid(const char *id);

/* Property bag `k=v&k2=v2` (URL-encoded) to a JSON object of decoded strings; NULL when an
 * escape is malformed. An empty bag gives an empty object. */
cJSON *tc_props_to_json(const char *bag);

/* A JSON object of strings to a property bag for a topic: `k=v&k2=v2`, every key and value
 * percent-encoded (RFC 3986 unreserved characters stay), so that no `+`, `#`, `/`, `&` or
 * `=` of the text reaches the topic. Keys starting with `$.` (system properties, set by the
 * hub) are left out when skip_system is true. Returns a malloc'ed string ("" when empty),
 * NULL on allocation failure. */
char *tc_props_encode(const cJSON *props, int skip_system);

/* MQTT topic filter match (+ and #). */
int tc_topic_matches(const char *filter, const char *topic);

/* A JSON document a device sent (DPS register body, twin reported patch, method response),
 * checked as the service checks it before use: well-formed UTF-8 (RFC 3629), no NUL byte, exactly
 * one JSON value with nothing after it but white space (RFC 8259). Returns the document, or NULL
 * with a message for the 400 / errorCode 400004 answer in why. */
cJSON *tc_json_parse_device(const void *data, size_t len, char *why, size_t why_size);

/* JSON merge as twin patches do it: null removes a member, objects merge recursively,
 * anything else replaces. Members whose name starts with '$' are ignored. */
void tc_json_merge(cJSON *target, const cJSON *patch);

#endif
