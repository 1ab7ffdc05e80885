/* ACL_CHECK: a device reaches only its own topics. A DPS connection may publish the two
 * request topics and subscribe to its responses; a hub connection (only possible once DPS
 * assigned the device) may publish telemetry for itself, twin requests and method
 * responses, and subscribe to its own cloud-to-device, twin and method topics; at most five
 * subscriptions. Everything else is denied (SUBACK 0x80, or the message is not delivered).
 * A subscription made on this connection is refused when repeated on it: Mosquitto 2.0.11 keeps
 * about 47 bytes for every repeat of a filter a client holds (sub__add), which a client could
 * repeat without end; IoT Hub caps subscriptions per connection too. Resubscribing after a
 * reconnect is granted, also when the session was resumed (CleanSession 0) and already holds
 * the filter: every Azure SDK for Embedded C sample reconnects with CleanSession 0 and
 * subscribes again, and MQTT 3.1.1 section 3.8.4 has a repeated filter replace the old one. So
 * a client costs the broker at most one such repeat per filter per connection.
 * There is no topic of the `tether cloud` service path on the broker at all: commands reach
 * the plugin through the registry file (service.c). */
#include <string.h>

#include "plugin.h"

static int starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int dps_check(struct tc_session *s, int access, const char *topic)
{
    switch (access) {
    case MOSQ_ACL_SUBSCRIBE:
        if (starts(topic, "$dps/registrations/res/") && (s->conn_subs & TC_SUB_DPS_RES) == 0) {
            s->subs |= TC_SUB_DPS_RES;
            s->conn_subs |= TC_SUB_DPS_RES;
            return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_UNSUBSCRIBE:
        if (starts(topic, "$dps/registrations/res/")) {
            s->subs &= ~TC_SUB_DPS_RES;
            s->conn_subs &= ~TC_SUB_DPS_RES;
        }
        return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_WRITE:
        if (starts(topic, "$dps/registrations/PUT/iotdps-register/") ||
            starts(topic, "$dps/registrations/GET/iotdps-get-operationstatus/")) {
            return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_READ:
        return starts(topic, "$dps/registrations/res/") ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

/* Which of the device's own subscriptions a filter is; 0 if none. The cloud-to-device
 * filter may name the device or use `+` in its place (the Azure SDK for Embedded C
 * subscribes to `devices/+/messages/devicebound/#`): IoT Hub accepts both, and either way
 * a device receives only its own messages, because nothing is routed between clients here:
 * the plugin hands each message to the one connection of its device (tc_publish). */
static unsigned hub_filter_kind(const struct tc_session *s, const char *filter)
{
    char own[TC_ID_MAX + 64];
    snprintf(own, sizeof own, "devices/%s/messages/devicebound/", s->id);
    const char *rest = NULL;
    if (starts(filter, own)) {
        rest = filter + strlen(own);
    } else if (starts(filter, "devices/+/messages/devicebound/")) {
        rest = filter + strlen("devices/+/messages/devicebound/");
    }
    if (rest != NULL && (strcmp(rest, "#") == 0 || strcmp(rest, "+") == 0)) {
        return TC_SUB_C2D;
    }
    if (strcmp(filter, "$iothub/twin/res/#") == 0) {
        return TC_SUB_TWIN_RES;
    }
    if (strcmp(filter, "$iothub/twin/PATCH/properties/desired/#") == 0) {
        return TC_SUB_TWIN_PATCH;
    }
    if (strcmp(filter, "$iothub/methods/POST/#") == 0) {
        return TC_SUB_METHODS;
    }
    return 0;
}

static int hub_check(struct tc_session *s, struct mosquitto *client, int access, const char *topic)
{
    char own[TC_ID_MAX + 64];
    unsigned kind;
    switch (access) {
    case MOSQ_ACL_SUBSCRIBE:
        kind = hub_filter_kind(s, topic);
        if (kind == 0 || (s->conn_subs & kind) != 0) {
            return MOSQ_ERR_ACL_DENIED;
        }
        /* a resumed filter is replaced, not added: it does not count against the cap */
        if ((s->subs & kind) == 0 && mosquitto_client_sub_count(client) >= TC_MAX_SUBS) {
            return MOSQ_ERR_ACL_DENIED;
        }
        s->subs |= kind;
        s->conn_subs |= kind;
        if (kind == TC_SUB_C2D) {
            s->c2d_check = true;
        }
        return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_UNSUBSCRIBE:
        kind = hub_filter_kind(s, topic);
        s->subs &= ~kind;
        s->conn_subs &= ~kind;
        return MOSQ_ERR_SUCCESS;
    case MOSQ_ACL_WRITE:
        snprintf(own, sizeof own, "devices/%s/messages/events", s->id);
        if ((starts(topic, own) && (topic[strlen(own)] == '\0' || topic[strlen(own)] == '/')) ||
            starts(topic, "$iothub/twin/GET/") ||
            starts(topic, "$iothub/twin/PATCH/properties/reported/") ||
            starts(topic, "$iothub/methods/res/")) {
            return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
    case MOSQ_ACL_READ:
        snprintf(own, sizeof own, "devices/%s/messages/devicebound/", s->id);
        if (starts(topic, own) || starts(topic, "$iothub/twin/res/") ||
            starts(topic, "$iothub/twin/PATCH/properties/desired/") ||
            starts(topic, "$iothub/methods/POST/")) {
            return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
}

int tc_on_acl_check(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    struct mosquitto_evt_acl_check *ed = event_data;
    struct tc_session *s = tc_session_find(ed->client);
    if (s == NULL || ed->topic == NULL) {
        return MOSQ_ERR_ACL_DENIED;
    }
    int rc = s->kind == TC_USER_DPS ? dps_check(s, ed->access, ed->topic)
                                    : hub_check(s, ed->client, ed->access, ed->topic);
    if (rc != MOSQ_ERR_SUCCESS && ed->access != MOSQ_ACL_READ) {
        /* s->id, not the client id: a DPS connection's is moved out of the hub's id space
         * (auth.c dps_own_id_space) and no longer reads as the registration id */
        tc_log(MOSQ_LOG_NOTICE, "denied %s %s on %s", s->id,
               ed->access == MOSQ_ACL_WRITE ? "publish" : "subscribe", ed->topic);
    }
    return rc;
}
