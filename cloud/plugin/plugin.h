/* The tether cloud plugin for Mosquitto 2.0: Azure-compatible DPS and IoT Hub.
 * One file per concern: plugin.c (registration of events), session.c (who is connected),
 * auth.c (BASIC_AUTH), acl.c (ACL_CHECK), dps.c and hub.c (MESSAGE), service.c (TICK: the
 * path from `tether cloud` commands through the registry). */
#ifndef TC_PLUGIN_H
#define TC_PLUGIN_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "parse.h"
#include "registry.h"

#define TC_SUB_DPS_RES      0x01u
#define TC_SUB_TWIN_RES     0x02u
#define TC_SUB_TWIN_PATCH   0x04u
#define TC_SUB_METHODS      0x08u
#define TC_SUB_C2D          0x10u
#define TC_MAX_SUBS         5
#define TC_D2C_MAX          (256 * 1024)
#define TC_C2D_MAX          (64 * 1024)
#define TC_METHOD_MAX       (128 * 1024)
#define TC_TWIN_SECTION_MAX (32 * 1024)
#define TC_C2D_INFLIGHT     8

/* One authenticated connection. Owned by session.c; created in BASIC_AUTH, freed on
 * DISCONNECT. Looked up by the broker's client pointer. */
struct tc_session {
    struct tc_session *next;
    struct mosquitto *client;
    enum tc_user_kind kind;
    char client_id[TC_ID_MAX + 1];
    char id[TC_ID_MAX + 1];     /* registration id as sent (DPS) or device id (hub) */
    char host[TC_HOST_MAX + 1]; /* hub host name (hub) */
    unsigned subs;              /* TC_SUB_*: what the session holds (resumed ones included) */
    unsigned conn_subs;         /* TC_SUB_*: subscribed on this connection (the repeat guard) */
    int64_t connected_ms;
    /* DPS: the attestation result, answered on the first register request */
    int dps_error; /* 0, or an errorCode (401002) */
    char dps_message[160];
    char enrollment_kind[16]; /* "individual" or "group" */
    char enrollment_id[TC_ID_MAX + 1];
    char thumbprint[65]; /* SHA-256 of the presented certificate */
    char device_key[64]; /* the symmetric key the device proved */
    /* hub: cloud-to-device messages handed to the broker, not yet acknowledged */
    struct tc_c2d_flight {
        int64_t row;   /* c2d.id */
        int packet_id; /* MQTT packet id it went out with; -1 until the shim saw it */
        char message_id[TC_ID_MAX + 1]; /* as sent (decoded): at most 128, topic 3 times */
    } c2d_inflight[TC_C2D_INFLIGHT];
    int c2d_inflight_n;
    int64_t c2d_sent_ms;
    /* the TLS shim's serial number of this connection when it reads its MQTT stream (then
     * PUBACKs are seen); 0 when not */
    uint64_t tap_conn;
    bool c2d_check;  /* look for queued cloud-to-device messages on the next tick */
    bool took_over;  /* a newer connection of the same device replaced this one */
    bool persistent; /* CleanSession 0: the broker keeps the subscriptions for the next one */
};

/* Subscriptions of a CleanSession 0 session after its connection ended, by broker client
 * id. Mosquitto keeps such a session (subscriptions, unacknowledged QoS 1 messages) and
 * hands it to the next connection of the client id with CleanSession 0 (sessionPresent 1);
 * the plugin keeps what it knows of the same subscriptions for as long. One entry per
 * client id that used CleanSession 0, as the broker; both are forgotten when a connection
 * with CleanSession 1 arrives, and when the broker stops (persistence is off). */
struct tc_kept_subs {
    struct tc_kept_subs *next;
    unsigned subs;
    char client_id[TC_ID_MAX + 1];
};

struct tc_faults {
    double dps_throttle_rate;
    int dps_throttle_retry_after;
    double dps_error_rate;
    int dps_error_status;
    int dps_slow_seconds;
    double hub_refuse_rate;
    char hub_refuse_device[TC_ID_MAX + 1];
};

struct tc_plugin {
    mosquitto_plugin_id_t *id;
    char dir[4096];
    sqlite3 *db;
    char id_scope[32];
    int retry_after_s;
    int64_t data_version;
    int64_t next_poll_ms;
    bool requests_waiting;
    struct tc_session *sessions;
    struct tc_kept_subs *kept;
    STACK_OF(X509) * (*shim_chain)(X509 *leaf);
    char tap_connect_id[TC_ID_MAX + 1]; /* client id of the CONNECT the shim just read */
    uint64_t tap_connect_conn;          /* and the connection it came on */
    struct tc_faults faults;
};

extern struct tc_plugin tc_g;

/* session.c */
struct tc_session *tc_session_new(struct mosquitto *client);
struct tc_session *tc_session_find(const struct mosquitto *client);
struct tc_session *tc_session_find_device(const char *device_id);
void tc_session_remove(struct mosquitto *client);
void tc_session_free_all(void);
/* Called once a connection is accepted: a CleanSession 0 connection resumes the
 * subscriptions of the client id's previous session (from a connection still open, which
 * the broker is about to replace, or from the kept list); CleanSession 1 forgets them. */
void tc_session_resume(struct tc_session *s);
/* Called when a connection ends: a CleanSession 0 session's subscriptions are kept. */
void tc_session_keep(const struct tc_session *s);

/* auth.c */
int tc_on_basic_auth(int event, void *event_data, void *userdata);

/* acl.c */
int tc_on_acl_check(int event, void *event_data, void *userdata);

/* dps.c */
int tc_dps_on_message(struct tc_session *s, const struct tc_topic *t, const void *payload,
                      uint32_t len);
/* Shared by auth.c (DPS attestation) and dps.c. */
void tc_dps_attest(struct tc_session *s, const char *password, X509 *cert);

/* hub.c */
int tc_hub_on_message(struct tc_session *s, const struct tc_topic *t, const void *payload,
                      uint32_t len);
void tc_hub_on_subscribed(struct tc_session *s);
void tc_hub_deliver_c2d(struct tc_session *s);
void tc_hub_on_disconnect(struct tc_session *s, int reason);
/* The TLS shim read a packet of a connection (see shim/mqtt_tap.h, tether_tls_shim_tap). */
void tc_hub_on_tap(uint64_t conn, int event, const char *data, size_t len, unsigned packet_id);
int tc_hub_push_desired(const char *device_id, const char *patch_json, int64_t version);
/* Check an X.509 or SAS identity for a hub connection. 0 = accept. */
int tc_hub_authenticate(struct tc_session *s, const struct tc_username *u, const char *password,
                        X509 *cert);

/* service.c */
int tc_on_tick(int event, void *event_data, void *userdata);
void tc_service_reload(void);
/* Notice changes other processes made to the registry (faults, settings, requests); run the
 * waiting requests when run is true. Cheap: one PRAGMA when nothing changed. */
void tc_service_sync(bool run);
/* A fault fires with probability rate (1 = always). */
bool tc_fault_fires(double rate);

/* helpers in plugin.c */
void tc_publish(const char *client_id, const char *topic, const char *payload, size_t len, int qos);
__attribute__((format(printf, 2, 3))) void tc_log(int level, const char *fmt, ...);

#endif
