/* IoT Hub: device authentication, telemetry, twin, direct methods, cloud-to-device.
 * Topics and limits as in PROTOCOL.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "mqtt_tap.h"
#include "plugin.h"
#include "sas.h"
#include "util.h"
#include "x509util.h"

int tc_hub_authenticate(struct tc_session *s, const struct tc_username *u, const char *password,
                        X509 *cert)
{
    int ok = 0;
    const char *why = "unknown device";
    if (tc_fault_fires(tc_g.faults.hub_refuse_rate) &&
        (tc_g.faults.hub_refuse_device[0] == '\0' ||
         strcmp(tc_g.faults.hub_refuse_device, u->id) == 0)) {
        tc_log(MOSQ_LOG_NOTICE, "hub %s: CONNACK refused by fault", u->id);
        return -1;
    }
    cJSON *dev = tc_reg_row(tc_g.db, "SELECT * FROM devices WHERE device_id=?", "s", u->id);
    const char *hub = tc_row_str(dev, "hub");
    const char *auth = tc_row_str(dev, "auth");
    const char *status = tc_row_str(dev, "status");
    if (dev == NULL || hub == NULL || auth == NULL) {
        why = "device not registered (not assigned by DPS)";
    } else if (strcasecmp(hub, u->scope_or_host) != 0) {
        why = "device is assigned to another hub";
    } else if (status != NULL && strcmp(status, "enabled") != 0) {
        why = "device is disabled";
    } else if (strcmp(auth, "x509") == 0) {
        char sha1[41];
        char sha256[65];
        char cn[TC_ID_MAX + 2];
        const char *tp = tc_row_str(dev, "thumbprint");
        const char *ca = tc_row_str(dev, "ca_pem");
        if (cert == NULL) {
            why = "X.509 device sent no client certificate";
        } else if (tc_x509_check_time(cert) != 0) {
            why = "certificate expired or not yet valid";
        } else if (tc_x509_thumbprints(cert, sha1, sha256) == 0 && tp != NULL &&
                   (strcasecmp(tp, sha256) == 0 || strcasecmp(tp, sha1) == 0)) {
            ok = 1;
        } else if (ca != NULL && tc_x509_cn(cert, cn, sizeof cn) == 0 && strcmp(cn, u->id) == 0) {
            char err[128];
            STACK_OF(X509) *chain = tc_g.shim_chain != NULL ? tc_g.shim_chain(cert) : NULL;
            ok = tc_x509_verify_to(cert, chain, ca, err, sizeof err) == 0;
            why = "certificate chain does not lead to the device's CA";
        } else {
            why = "certificate does not match the registered device";
        }
    } else {
        char resource[TC_HOST_MAX + TC_ID_MAX + 32];
        snprintf(resource, sizeof resource, "%s/devices/%s", u->scope_or_host, u->id);
        const char *k1 = tc_row_str(dev, "primary_key");
        const char *k2 = tc_row_str(dev, "secondary_key");
        enum tc_sas_result r = TC_SAS_MALFORMED;
        if (password != NULL && k1 != NULL) {
            r = tc_sas_check(password, k1, resource, tc_now_ms() / 1000);
            if (r == TC_SAS_BAD_SIGNATURE && k2 != NULL) {
                r = tc_sas_check(password, k2, resource, tc_now_ms() / 1000);
            }
        }
        ok = r == TC_SAS_OK;
        why = tc_sas_result_text(r);
    }
    if (!ok) {
        tc_log(MOSQ_LOG_NOTICE, "hub %s: refused: %s", u->id, why);
    }
    cJSON_Delete(dev);
    (void)s;
    return ok ? 0 : -1;
}

static void twin_respond(struct tc_session *s, int status, const char *rid, int64_t version,
                         const char *body)
{
    char topic[200];
    if (version > 0) {
        snprintf(topic, sizeof topic, "$iothub/twin/res/%d/?$rid=%s&$version=%lld", status, rid,
                 (long long)version);
    } else {
        snprintf(topic, sizeof topic, "$iothub/twin/res/%d/?$rid=%s", status, rid);
    }
    if ((s->subs & TC_SUB_TWIN_RES) != 0) {
        tc_publish(s->client_id, topic, body, body != NULL ? strlen(body) : 0, 0);
    }
}

static const char *twin_error(int code, const char *message, char *buf, size_t size)
{
    snprintf(buf, size, "{\"errorCode\":%d,\"message\":\"%s\"}", code, message);
    return buf;
}

static void on_twin_get(struct tc_session *s, const struct tc_topic *t)
{
    cJSON *dev = tc_reg_row(tc_g.db,
                            "SELECT desired, desired_version, reported, reported_version"
                            " FROM devices WHERE device_id=?",
                            "s", s->id);
    char err[160];
    if (dev == NULL) {
        twin_respond(s, 404, t->rid, 0, twin_error(404001, "Device not found.", err, sizeof err));
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    const char *d = tc_row_str(dev, "desired");
    const char *r = tc_row_str(dev, "reported");
    cJSON *desired = d != NULL ? cJSON_Parse(d) : NULL;
    cJSON *reported = r != NULL ? cJSON_Parse(r) : NULL;
    if (!cJSON_IsObject(desired)) {
        cJSON_Delete(desired);
        desired = cJSON_CreateObject();
    }
    if (!cJSON_IsObject(reported)) {
        cJSON_Delete(reported);
        reported = cJSON_CreateObject();
    }
    cJSON_AddNumberToObject(desired, "$version", (double)tc_row_int(dev, "desired_version", 1));
    cJSON_AddNumberToObject(reported, "$version", (double)tc_row_int(dev, "reported_version", 1));
    cJSON_AddItemToObject(doc, "desired", desired);
    cJSON_AddItemToObject(doc, "reported", reported);
    char *text = cJSON_PrintUnformatted(doc);
    twin_respond(s, 200, t->rid, 0, text);
    free(text);
    cJSON_Delete(doc);
    cJSON_Delete(dev);
}

static void on_twin_patch(struct tc_session *s, const struct tc_topic *t, const void *payload,
                          uint32_t len)
{
    char err[160];
    char why[96];
    cJSON *patch = tc_json_parse_device(payload, len, why, sizeof why);
    if (patch == NULL) {
        twin_respond(s, 400, t->rid, 0, twin_error(400004, why, err, sizeof err));
        return;
    }
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(patch);
        twin_respond(
            s, 400, t->rid, 0,
            twin_error(400004, "Reported properties must be a JSON object.", err, sizeof err));
        return;
    }
    cJSON *dev = tc_reg_row(tc_g.db,
                            "SELECT reported, reported_version FROM devices"
                            " WHERE device_id=?",
                            "s", s->id);
    const char *r = tc_row_str(dev, "reported");
    cJSON *reported = r != NULL ? cJSON_Parse(r) : NULL;
    if (!cJSON_IsObject(reported)) {
        cJSON_Delete(reported);
        reported = cJSON_CreateObject();
    }
    tc_json_merge(reported, patch);
    char *text = cJSON_PrintUnformatted(reported);
    if (text != NULL && strlen(text) > TC_TWIN_SECTION_MAX) {
        twin_respond(s, 400, t->rid, 0,
                     twin_error(400004, "Reported properties exceed 32 KB.", err, sizeof err));
    } else if (text != NULL) {
        int64_t version = tc_row_int(dev, "reported_version", 1) + 1;
        tc_reg_exec(tc_g.db,
                    "UPDATE devices SET reported=?, reported_version=?, last_activity_ms=?"
                    " WHERE device_id=?",
                    "siis", text, version, tc_now_ms(), s->id);
        twin_respond(s, 204, t->rid, version, NULL);
    }
    free(text);
    cJSON_Delete(reported);
    cJSON_Delete(dev);
    cJSON_Delete(patch);
}

static void on_telemetry(struct tc_session *s, const struct tc_topic *t, const void *payload,
                         uint32_t len)
{
    cJSON *props = tc_props_to_json(t->props);
    char *props_text = props != NULL ? cJSON_PrintUnformatted(props) : NULL;
    cJSON_Delete(props);
    int64_t now = tc_now_ms();
    tc_reg_exec(tc_g.db,
                "INSERT INTO telemetry(device_id, hub, props, payload, received_ms)"
                " VALUES(?,?,?,?,?)",
                "sssbi", s->id, s->host, props_text != NULL ? props_text : "{}", payload,
                (size_t)len, now);
    free(props_text);
    tc_reg_exec(tc_g.db,
                "DELETE FROM telemetry WHERE device_id=?1 AND id <= (SELECT id FROM telemetry"
                " WHERE device_id=?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                "si", s->id, (int64_t)TC_TELEMETRY_KEEP);
}

static void on_method_response(struct tc_session *s, const struct tc_topic *t, const void *payload,
                               uint32_t len)
{
    char *end = NULL;
    long long id = strtoll(t->rid, &end, 10);
    if (end == NULL || *end != '\0' || len > TC_METHOD_MAX) {
        tc_log(MOSQ_LOG_NOTICE, "hub %s: dropped a method response (rid %s, %u bytes)", s->id,
               t->rid, len);
        return;
    }
    char why[96];
    cJSON *doc = len > 0 ? tc_json_parse_device(payload, len, why, sizeof why) : NULL;
    if (len > 0 && doc == NULL) {
        /* The invoker gets the service's refusal, not the device's bytes ('failed': the hub
         * answered, not the device). */
        char err[160];
        tc_log(MOSQ_LOG_NOTICE, "hub %s: method response (rid %s) refused: %s", s->id, t->rid, why);
        tc_reg_exec(tc_g.db,
                    "UPDATE requests SET state='failed', status=400, response=? WHERE id=? AND"
                    " device_id=? AND kind='method' AND state='sent'",
                    "sis", twin_error(400004, why, err, sizeof err), (int64_t)id, s->id);
        return;
    }
    cJSON_Delete(doc);
    char *text = malloc((size_t)len + 1);
    if (text == NULL) {
        return;
    }
    if (len > 0) {
        memcpy(text, payload, len);
    }
    text[len] = '\0';
    tc_reg_exec(tc_g.db,
                "UPDATE requests SET state='done', status=?, response=? WHERE id=? AND"
                " device_id=? AND kind='method' AND state='sent'",
                "isis", (int64_t)t->status, text, (int64_t)id, s->id);
    free(text);
}

int tc_hub_on_message(struct tc_session *s, const struct tc_topic *t, const void *payload,
                      uint32_t len)
{
    switch (t->kind) {
    case TC_TOPIC_TELEMETRY:
        if (len > TC_D2C_MAX) {
            tc_log(MOSQ_LOG_NOTICE, "hub %s: message of %u bytes exceeds 256 KB: disconnecting",
                   s->id, len);
            return MOSQ_ERR_PROTOCOL;
        }
        on_telemetry(s, t, payload, len);
        break;
    case TC_TOPIC_TWIN_GET:
        on_twin_get(s, t);
        break;
    case TC_TOPIC_TWIN_PATCH_REPORTED:
        on_twin_patch(s, t, payload, len);
        break;
    case TC_TOPIC_METHOD_RESPONSE:
        on_method_response(s, t, payload, len);
        break;
    default:
        tc_log(MOSQ_LOG_NOTICE, "hub %s: dropped a publish to a malformed topic", s->id);
        break;
    }
    return MOSQ_ERR_ACL_DENIED; /* consumed here; never routed, never retained */
}

int tc_hub_push_desired(const char *device_id, const char *patch_json, int64_t version)
{
    struct tc_session *s = tc_session_find_device(device_id);
    if (s == NULL || (s->subs & TC_SUB_TWIN_PATCH) == 0) {
        return -1;
    }
    cJSON *patch = cJSON_Parse(patch_json);
    if (!cJSON_IsObject(patch)) {
        cJSON_Delete(patch);
        return -1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(patch, "$version");
    cJSON_AddNumberToObject(patch, "$version", (double)version);
    char *text = cJSON_PrintUnformatted(patch);
    char topic[100];
    snprintf(topic, sizeof topic, "$iothub/twin/PATCH/properties/desired/?$version=%lld",
             (long long)version);
    tc_publish(s->client_id, topic, text, strlen(text), 0);
    free(text);
    cJSON_Delete(patch);
    return 0;
}

/* Cloud-to-device. IoT Hub removes a message from the device's queue when the device
 * completes it, which over MQTT is its PUBACK (MQTT cannot reject or abandon). Mosquitto 2.0
 * gives plugins no PUBACK event, so the TLS shim reads each connection's MQTT stream and
 * reports the QoS 1 PUBLISH packets the broker writes (topic, packet id) and the PUBACKs
 * it reads (tc_hub_on_tap). A message is marked sent when handed to the broker, completed
 * (deleted) on its PUBACK, and queued again when the connection ends before it, however
 * long the connection lived: acknowledged once, never again; unacknowledged, redelivered.
 * A connection the shim does not read (no shim, no TLS, or a stream that breaks the MQTT
 * or WebSocket framing) keeps the old approximation: completed once the connection has
 * lived TC_C2D_SETTLE_MS past the send, requeued when it ends sooner. */
#define TC_C2D_SETTLE_MS 300

void tc_hub_deliver_c2d(struct tc_session *s)
{
    if ((s->subs & TC_SUB_C2D) == 0 || s->took_over || s->c2d_inflight_n >= TC_C2D_INFLIGHT) {
        return;
    }
    cJSON *rows = tc_reg_rows(tc_g.db,
                              "SELECT id, message_id, payload, props FROM c2d WHERE device_id=?"
                              " AND state='queued' ORDER BY id LIMIT ?",
                              "si", s->id, (int64_t)(TC_C2D_INFLIGHT - s->c2d_inflight_n));
    cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        int64_t id = tc_row_int(row, "id", 0);
        const char *mid = tc_row_str(row, "message_id");
        const char *props = tc_row_str(row, "props");
        const char *body = tc_row_str(row, "payload");
        unsigned char *bin = NULL;
        size_t body_len = body != NULL ? strlen(body) : 0;
        const char *b64 = tc_row_str(row, "payloadBase64");
        if (body == NULL && b64 != NULL) {
            bin = malloc(strlen(b64));
            long n = bin != NULL ? tc_base64_decode(b64, bin, strlen(b64)) : -1;
            body = (const char *)bin;
            body_len = n > 0 ? (size_t)n : 0;
        }
        /* every part of the topic that came from a sender is encoded again here (older
         * registries stored bags as typed): no wildcard, no second $.mid */
        char *enc_id = tc_url_encode(s->id);
        char *enc_mid = tc_url_encode(mid != NULL ? mid : "");
        cJSON *pj = tc_props_to_json(props != NULL ? props : "");
        char *bag = pj != NULL ? tc_props_encode(pj, 1) : NULL;
        cJSON_Delete(pj);
        size_t tlen = 200 + 3 * strlen(s->id) + (enc_mid != NULL ? strlen(enc_mid) : 0) +
                      (bag != NULL ? strlen(bag) : 0) + (enc_id != NULL ? strlen(enc_id) : 0);
        char *topic = malloc(tlen);
        if (topic != NULL && enc_id != NULL && enc_mid != NULL) {
            snprintf(topic, tlen,
                     "devices/%s/messages/devicebound/%%24.mid=%s&%%24.to=%%2Fdevices%%2F%s"
                     "%%2Fmessages%%2Fdevicebound%s%s",
                     s->id, enc_mid, enc_id, bag != NULL && bag[0] != '\0' ? "&" : "",
                     bag != NULL ? bag : "");
            tc_publish(s->client_id, topic, body != NULL ? body : "", body_len, 1);
            tc_reg_exec(tc_g.db, "UPDATE c2d SET state='sent', sent_ms=? WHERE id=?", "ii",
                        tc_now_ms(), id);
            struct tc_c2d_flight *f = &s->c2d_inflight[s->c2d_inflight_n++];
            f->row = id;
            f->packet_id = -1;
            snprintf(f->message_id, sizeof f->message_id, "%s", mid != NULL ? mid : "");
            s->c2d_sent_ms = tc_now_ms();
        }
        free(topic);
        free(enc_id);
        free(enc_mid);
        free(bag);
        free(bin);
    }
    cJSON_Delete(rows);
}

static void c2d_settle(struct tc_session *s, int requeue)
{
    for (int i = 0; i < s->c2d_inflight_n; i++) {
        if (requeue) {
            tc_reg_exec(tc_g.db, "UPDATE c2d SET state='queued' WHERE id=? AND state='sent'", "i",
                        s->c2d_inflight[i].row);
        } else {
            tc_reg_exec(tc_g.db, "DELETE FROM c2d WHERE id=? AND state='sent'", "i",
                        s->c2d_inflight[i].row);
        }
    }
    s->c2d_inflight_n = 0;
}

/* The message id in a cloud-to-device topic: `...devicebound/%24.mid=ID&...`, decoded
 * (malloc'ed), or NULL. */
static char *topic_message_id(const char *topic, size_t len)
{
    static const char key[] = "/messages/devicebound/%24.mid=";
    size_t klen = sizeof key - 1;
    for (size_t i = 0; i + klen <= len; i++) {
        if (memcmp(topic + i, key, klen) == 0) {
            size_t start = i + klen;
            size_t end = start;
            while (end < len && topic[end] != '&') {
                end++;
            }
            return tc_url_decode(topic + start, end - start);
        }
    }
    return NULL;
}

void tc_hub_on_tap(uint64_t conn, int event, const char *data, size_t len, unsigned packet_id)
{
    if (event == TC_TAP_CONNECT) {
        /* the next BASIC_AUTH is this connection's (auth.c); an id too long for the
         * buffer matches no client id there (nor does one holding a NUL: the broker
         * refuses it before BASIC_AUTH) */
        snprintf(tc_g.tap_connect_id, sizeof tc_g.tap_connect_id, "%.*s",
                 len < sizeof tc_g.tap_connect_id ? (int)len : 0, data);
        tc_g.tap_connect_conn = conn;
        return;
    }
    /* the session this connection authenticated as, never one found by client id: any
     * connection may claim a device's id (an unattested DPS client, the device's own DPS
     * registration, an older connection being taken over) and its PUBACKs complete nothing */
    struct tc_session *s = tc_g.sessions;
    while (s != NULL && s->tap_conn != conn) {
        s = s->next;
    }
    if (s == NULL || s->kind != TC_USER_HUB) {
        return;
    }
    if (event == TC_TAP_PUBLISH_QOS1) {
        char *mid = topic_message_id(data, len);
        if (mid == NULL) {
            return;
        }
        int i = 0;
        while (i < s->c2d_inflight_n && strcmp(s->c2d_inflight[i].message_id, mid) != 0) {
            i++;
        }
        if (i < s->c2d_inflight_n) {
            s->c2d_inflight[i].packet_id = (int)packet_id;
        } else if (s->c2d_inflight_n < TC_C2D_INFLIGHT) {
            /* the broker resending a message of this device's previous session
             * (CleanSession 0): track it too, so that its PUBACK completes it */
            int64_t row =
                tc_reg_int(tc_g.db, -1, "SELECT id FROM c2d WHERE device_id=? AND message_id=?",
                           "ss", s->id, mid);
            if (row >= 0) {
                struct tc_c2d_flight *f = &s->c2d_inflight[s->c2d_inflight_n++];
                f->row = row;
                f->packet_id = (int)packet_id;
                snprintf(f->message_id, sizeof f->message_id, "%s", mid);
                tc_reg_exec(tc_g.db, "UPDATE c2d SET state='sent' WHERE id=?", "i", row);
            }
        }
        free(mid);
    } else if (event == TC_TAP_PUBACK) {
        for (int i = 0; i < s->c2d_inflight_n; i++) {
            if (s->c2d_inflight[i].packet_id == (int)packet_id) {
                tc_reg_exec(tc_g.db, "DELETE FROM c2d WHERE id=?", "i", s->c2d_inflight[i].row);
                s->c2d_inflight[i] = s->c2d_inflight[--s->c2d_inflight_n];
                s->c2d_check = true;
                return;
            }
        }
    }
}

void tc_hub_on_subscribed(struct tc_session *s)
{
    /* called on every tick for live hub sessions; completion by timing only for a
     * connection whose PUBACKs nobody sees */
    if (s->tap_conn == 0 && s->c2d_inflight_n > 0 &&
        tc_now_ms() - s->c2d_sent_ms >= TC_C2D_SETTLE_MS) {
        c2d_settle(s, 0);
        s->c2d_check = true;
    }
    if (s->c2d_check) {
        s->c2d_check = false;
        tc_hub_deliver_c2d(s);
    }
}

void tc_hub_on_disconnect(struct tc_session *s, int reason)
{
    (void)reason;
    c2d_settle(s, s->tap_conn != 0 || tc_now_ms() - s->c2d_sent_ms < TC_C2D_SETTLE_MS);
    if (tc_session_find_device(s->id) == s || !s->took_over) {
        int others = 0;
        for (struct tc_session *o = tc_g.sessions; o != NULL; o = o->next) {
            if (o != s && o->kind == TC_USER_HUB && strcmp(o->id, s->id) == 0) {
                others = 1;
            }
        }
        if (!others) {
            tc_reg_exec(tc_g.db, "UPDATE devices SET connected=0 WHERE device_id=?", "s", s->id);
        }
    }
}
