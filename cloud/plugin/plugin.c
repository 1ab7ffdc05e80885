/* Entry points and event registration. Ownership: the broker owns every event structure;
 * the plugin copies what it keeps (sessions) and frees it on DISCONNECT. Payloads published
 * with tc_publish() are copied by the broker (mosquitto_broker_publish_copy). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"
#include "util.h"

struct tc_plugin tc_g;

static int on_message(int event, void *event_data, void *userdata);
static int on_disconnect(int event, void *event_data, void *userdata);

void tc_log(int level, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mosquitto_log_printf(level, "tether-cloud: %s", buf);
}

void tc_publish(const char *client_id, const char *topic, const char *payload, size_t len, int qos)
{
    if (len > 0x7fffffff) {
        return;
    }
    int rc = mosquitto_broker_publish_copy(client_id, topic, (int)len, len > 0 ? payload : NULL,
                                           qos, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS) {
        /* A DPS connection's id is renamed in place with bit 7 set (auth.c, dps_own_id_space):
         * log the id the client sent, not those bytes. */
        char shown[160];
        size_t n = 0;
        bool dps = false;
        for (const char *c = client_id; c != NULL && *c != '\0' && n + 1 < sizeof shown; c++) {
            dps |= (*c & 0x80) != 0;
            shown[n++] = (char)(*c & 0x7f);
        }
        shown[n] = '\0';
        tc_log(MOSQ_LOG_WARNING, "publish to %s%s on %s failed (%d)", shown,
               dps ? " (its DPS connection)" : "", topic, rc);
    }
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++) {
        if (supported_versions[i] == 5) {
            return 5;
        }
    }
    return -1;
}

/* Registers fn with the TLS shim's stream reader (NULL: stops it). -1 without the shim. */
static int shim_tap(void (*fn)(uint64_t, int, const char *, size_t, unsigned))
{
    void (*set_tap)(void (*)(uint64_t, int, const char *, size_t, unsigned)) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, "tether_tls_shim_tap");
    *(void **)&set_tap = sym;
    if (set_tap == NULL) {
        return -1;
    }
    set_tap(fn);
    return 0;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    (void)userdata;
    memset(&tc_g, 0, sizeof tc_g);
    tc_g.id = identifier;
    for (int i = 0; i < option_count; i++) {
        if (strcmp(options[i].key, "dir") == 0) {
            snprintf(tc_g.dir, sizeof tc_g.dir, "%s", options[i].value);
        }
    }
    if (tc_g.dir[0] == '\0') {
        tc_log(MOSQ_LOG_ERR, "plugin_opt_dir is required");
        return MOSQ_ERR_INVAL;
    }
    tc_g.db = tc_reg_open(tc_g.dir);
    if (tc_g.db == NULL) {
        return MOSQ_ERR_UNKNOWN;
    }
    /* The broker was (re)started: nobody is connected, nothing is in flight. */
    tc_reg_exec(tc_g.db, "UPDATE devices SET connected=0", NULL);
    tc_reg_exec(tc_g.db, "UPDATE c2d SET state='queued' WHERE state='sent'", NULL);
    tc_service_reload();
    void *sym = dlsym(RTLD_DEFAULT, "tether_tls_shim_chain");
    *(void **)&tc_g.shim_chain = sym;
    if (tc_g.shim_chain == NULL) {
        tc_log(MOSQ_LOG_WARNING, "TLS shim not loaded: clients are not asked for certificates");
    }
    if (shim_tap(tc_hub_on_tap) != 0) {
        tc_log(MOSQ_LOG_WARNING, "TLS shim not loaded: cloud-to-device messages are completed"
                                 " by timing, not on PUBACK");
    }
    int rc =
        mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, tc_on_basic_auth, NULL, NULL);
    rc |= mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, tc_on_acl_check, NULL, NULL);
    rc |= mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
    rc |= mosquitto_callback_register(identifier, MOSQ_EVT_TICK, tc_on_tick, NULL, NULL);
    rc |= mosquitto_callback_register(identifier, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
    tc_log(MOSQ_LOG_NOTICE, "id scope %s, registry %s/registry.db", tc_g.id_scope, tc_g.dir);
    return rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_SUCCESS : MOSQ_ERR_UNKNOWN;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    (void)userdata;
    (void)options;
    (void)option_count;
    mosquitto_callback_unregister(tc_g.id, MOSQ_EVT_BASIC_AUTH, tc_on_basic_auth, NULL);
    mosquitto_callback_unregister(tc_g.id, MOSQ_EVT_ACL_CHECK, tc_on_acl_check, NULL);
    mosquitto_callback_unregister(tc_g.id, MOSQ_EVT_MESSAGE, on_message, NULL);
    mosquitto_callback_unregister(tc_g.id, MOSQ_EVT_TICK, tc_on_tick, NULL);
    mosquitto_callback_unregister(tc_g.id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    (void)shim_tap(NULL);
    if (tc_g.db != NULL) {
        tc_reg_exec(tc_g.db, "UPDATE devices SET connected=0", NULL);
        tc_reg_close(tc_g.db);
    }
    tc_session_free_all();
    return MOSQ_ERR_SUCCESS;
}

/* Every PUBLISH a device sends ends here after the ACL allowed it. Requests are answered by
 * the plugin and never routed: returning MOSQ_ERR_ACL_DENIED makes the broker complete the
 * QoS flow (PUBACK) and drop the message, so RETAIN is never kept either. Any other error
 * makes the broker close the connection (used for oversized messages, as IoT Hub does). */
static int on_message(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    struct mosquitto_evt_message *ed = event_data;
    struct tc_session *s = tc_session_find(ed->client);
    struct tc_topic t;
    if (s == NULL) {
        return MOSQ_ERR_ACL_DENIED;
    }
    if (s->kind == TC_USER_DPS) {
        tc_topic_parse(ed->topic, NULL, &t);
        return tc_dps_on_message(s, &t, ed->payload, ed->payloadlen);
    }
    tc_topic_parse(ed->topic, s->id, &t);
    return tc_hub_on_message(s, &t, ed->payload, ed->payloadlen);
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    struct mosquitto_evt_disconnect *ed = event_data;
    struct tc_session *s = tc_session_find(ed->client);
    if (s == NULL) {
        return MOSQ_ERR_SUCCESS;
    }
    if (s->kind == TC_USER_HUB) {
        tc_hub_on_disconnect(s, ed->reason);
    }
    tc_session_keep(s);
    tc_session_remove(ed->client);
    return MOSQ_ERR_SUCCESS;
}
