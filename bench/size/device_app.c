/*
 * The device application the Cortex-M4 code size is measured on (bench/run, code_size()):
 * what a real device does with tether, through the public API only. It is linked, never run:
 * the credentials below are placeholders, and the port is bench/size/port_stub.c.
 *
 * Boot: TLS with the trust anchor and the device's identity (an X.509 certificate and key,
 * or a SAS key when no certificate is provisioned); the remembered provisioning result if it
 * belongs to this identity, else a DPS registration whose result is saved; then the hub:
 * start, telemetry with a property, a reported property, desired properties and direct
 * methods through callbacks, and the process loop.
 */
#include <stdint.h>
#include <string.h>

#include "tether/dps_session.h"
#include "tether/hub_session.h"
#include "tether/port.h"
#include "tether/sntp.h"
#include "tether/status.h"
#include "tether/store.h"
#include "tether/tls.h"

/* ---- what the factory put in flash ------------------------------------------------------- */

static const char trust_anchor[] = "-----BEGIN CERTIFICATE-----\n(placeholder)\n"
                                   "-----END CERTIFICATE-----\n";
static const char device_chain[] = "-----BEGIN CERTIFICATE-----\n(placeholder)\n"
                                   "-----END CERTIFICATE-----\n";
static const char device_key[] = "-----BEGIN EC PRIVATE KEY-----\n(placeholder)\n"
                                 "-----END EC PRIVATE KEY-----\n";
/* Empty when the device is provisioned with a certificate. */
static const char sas_key[] = "";
static const char id_scope[] = "0ne00000000";
static const char registration_id[] = "pump-17";

/* ---- the device's own pieces: a log line and one flash page for the record --------------- */

void device_log(const char *what, tether_status st);

static uint8_t flash_page[TETHER_RECORD_MAX];
static size_t flash_used;

static tether_status flash_read(void *context, uint8_t *buf, size_t cap, size_t *out_len)
{
    (void)context;
    if (flash_used == 0)
        return TETHER_STORE_EMPTY;
    if (flash_used > cap)
        return TETHER_FILE_TOO_LARGE;
    memcpy(buf, flash_page, flash_used);
    *out_len = flash_used;
    return TETHER_OK;
}

static tether_status flash_write(void *context, const uint8_t *buf, size_t len)
{
    (void)context;
    if (len > sizeof flash_page)
        return TETHER_BUFFER_TOO_SMALL;
    memcpy(flash_page, buf, len);
    flash_used = len;
    return TETHER_OK;
}

static tether_status flash_erase(void *context)
{
    (void)context;
    flash_used = 0;
    return TETHER_OK;
}

/* ---- hub callbacks ----------------------------------------------------------------------- */

static int32_t setpoint = 20;

static void on_desired(void *context, const char *json, size_t len, uint64_t version)
{
    (void)context;
    (void)version;
    /* A real device reads its settings out of the patch; a digit is enough here. */
    for (size_t i = 0; i < len; i++) {
        if (json[i] >= '0' && json[i] <= '9') {
            setpoint = json[i] - '0';
            break;
        }
    }
}

static uint16_t on_method(void *context, tether_view name, const uint8_t *payload, size_t len,
                          char *response, size_t cap, size_t *response_len)
{
    (void)context;
    (void)payload;
    (void)len;
    static const char ok[] = "{\"rebooting\":true}";
    if (!tether_view_equals(name, "reboot") || cap < sizeof ok - 1)
        return 404;
    memcpy(response, ok, sizeof ok - 1);
    *response_len = sizeof ok - 1;
    return 200;
}

/* ---- the application --------------------------------------------------------------------- */

static tether_tls tls;
static tether_dps_session dps;
static tether_hub_session hub;
static tether_dps_result result;
static tether_provisioning_record record;
static uint8_t scratch[TETHER_RECORD_MAX];

static tether_status provision(const tether_store *store, const tether_provisioning_record *me)
{
    tether_status st = tether_store_load(store, scratch, sizeof scratch, me, &record);
    if (st == TETHER_OK)
        return st;
    device_log("no usable record", st);
    tether_dps_config cfg = tether_dps_config_default();
    cfg.id_scope = id_scope;
    cfg.registration_id = registration_id;
    cfg.sas_key = sas_key[0] ? sas_key : NULL;
    st = tether_dps_register(&dps, &tls, &cfg, &result);
    if (st != TETHER_OK)
        return st;
    record = *me;
    strncpy(record.assigned_hub, result.assigned_hub, sizeof record.assigned_hub - 1);
    strncpy(record.device_id, result.device_id, sizeof record.device_id - 1);
    record.assigned_at = tether_clock_unix_s();
    st = tether_store_save(store, scratch, sizeof scratch, &record);
    if (st != TETHER_OK)
        device_log("record not saved", st);
    return TETHER_OK;
}

int main(void)
{
    tether_status st = tether_tls_init(&tls);
    if (st == TETHER_OK)
        st = tether_tls_add_trust(&tls, (const uint8_t *)trust_anchor, sizeof trust_anchor);
    tether_provisioning_record me;
    memset(&me, 0, sizeof me);
    strncpy(me.id_scope, id_scope, sizeof me.id_scope - 1);
    strncpy(me.registration_id, registration_id, sizeof me.registration_id - 1);
    if (st == TETHER_OK && sas_key[0] == 0) {
        st = tether_tls_set_identity(&tls, (const uint8_t *)device_chain, sizeof device_chain,
                                     (const uint8_t *)device_key, sizeof device_key, NULL);
        if (st == TETHER_OK)
            st = tether_tls_identity_sha256(&tls, me.credential_sha256);
    } else if (st == TETHER_OK) {
        tether_sha256(sas_key, strlen(sas_key), me.credential_sha256);
    }
    if (st != TETHER_OK) {
        device_log("credentials", st);
        return 1;
    }

    tether_store store = {flash_read, flash_write, flash_erase, NULL};
    for (;;) {
        st = provision(&store, &me);
        if (st != TETHER_OK) {
            device_log("provisioning", st);
            tether_port_sleep_ms(60000);
            continue;
        }
        tether_hub_config cfg = tether_hub_config_default();
        cfg.host = record.assigned_hub;
        cfg.device_id = record.device_id;
        cfg.sas_key = sas_key[0] ? sas_key : NULL;
        cfg.on_desired = on_desired;
        cfg.on_method = on_method;
        st = tether_hub_session_start(&hub, &tls, &cfg);
        while (st == TETHER_OK) {
            char body[32] = "{\"temperature\":21}";
            body[15] = (char)('0' + setpoint % 10);
            tether_hub_property ct = {tether_view_of(TETHER_HUB_PROPERTY_CONTENT_TYPE),
                                      tether_view_of("application/json")};
            st = tether_hub_session_send(&hub, (const uint8_t *)body, strlen(body), &ct, 1, 1);
            if (st == TETHER_HUB_QUEUE_FULL)
                st = TETHER_OK; /* The queue drains as acknowledgements arrive. */
            if (st == TETHER_OK)
                st = tether_hub_session_report(&hub, "{\"firmware\":\"1.0.0\"}", 20);
            if (st == TETHER_MQTT_NOT_CONNECTED)
                st = TETHER_OK; /* Reported again on the next round. */
            if (st == TETHER_OK)
                st = tether_hub_session_process(&hub, 10000);
        }
        device_log("hub", st);
        tether_hub_session_stop(&hub);
        if (st == TETHER_HUB_IDENTITY_REFUSED || st == TETHER_HUB_UNREACHABLE)
            (void)store.erase(store.context); /* Back to DPS. */
    }
}
