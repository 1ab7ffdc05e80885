/* BASIC_AUTH: who is connecting, told apart by the username form (PROTOCOL.md).
 *
 * DPS: a CONNECT with a well-formed DPS username is accepted and the attestation (X.509 or
 * SAS) is judged here, but a refusal is answered on the register request as
 * `$dps/registrations/res/401/?$rid=…` with errorCode 401002. This is what Azure DPS does
 * over MQTT: it accepts the connection with a bad SAS token and answers the register
 * publish with 401 (see MicrosoftDocs/azure-docs issue 43157, "I could connect with that
 * SAS token, but got 'unauthorized' when I tried to register"). A malformed username, or a
 * client id other than the registration id, is refused in the CONNACK.
 *
 * IoT Hub: authentication failures are refused in the CONNACK (not authorised), as the hub
 * does. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "plugin.h"
#include "util.h"

/* DPS and IoT Hub are separate services on Azure: a DPS connection never ends a hub
 * connection, and a client that has proved nothing never ends anybody's connection. Here
 * they share one broker, whose client-id takeover (a second CONNECT with a client id
 * already connected closes the first, Mosquitto 2.0.11 connect__on_authorised) runs after
 * BASIC_AUTH. Mosquitto 2.0 has no call to change a client id from a plugin
 * (mosquitto_set_clientid arrives in 2.1), but the broker keys its clients by the id
 * string it allocated for this connection, and looks it up only after this callback
 * returns. So DPS connections get their own id space, same length, in place:
 *   attested   : first byte | 0x80              ("dev1" -> "\xe4ev1")
 *   unattested : first and last byte | 0x80     ("dev1" -> "\xe4ev\xb1")
 * A registration id is ASCII, so both are injective and never valid UTF-8 (a lead byte
 * followed by ASCII, or alone), while every id a client sends is valid UTF-8 (the broker
 * checks) and every hub id is ASCII (tc_device_id_valid). Hence a DPS connection can end
 * only a DPS connection that claimed the same registration id with the same outcome of
 * attestation, and never a hub connection. 0 = done, -1 = refuse the CONNECT (an
 * unattested one-character id, the only case with no free name). */
static int dps_own_id_space(struct mosquitto *client, struct tc_session *s)
{
    char *id = (char *)(uintptr_t)mosquitto_client_id(client);
    size_t len = id != NULL ? strlen(id) : 0;
    if (len == 0 || (unsigned char)id[0] >= 0x80) {
        /* not a registration id: attestation failed already, and no hub id is non-ASCII */
        return 0;
    }
    if (s->dps_error != 0 && len == 1) {
        return -1;
    }
    id[0] = (char)((unsigned char)id[0] | 0x80);
    if (s->dps_error != 0) {
        id[len - 1] = (char)((unsigned char)id[len - 1] | 0x80);
    }
    snprintf(s->client_id, sizeof s->client_id, "%s", id);
    return 0;
}

static void mark_taken_over(const char *device_id, struct tc_session *keep)
{
    for (struct tc_session *o = tc_g.sessions; o != NULL; o = o->next) {
        if (o != keep && o->kind == TC_USER_HUB && strcmp(o->id, device_id) == 0) {
            o->took_over = true;
        }
    }
}

int tc_on_basic_auth(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)userdata;
    struct mosquitto_evt_basic_auth *ed = event_data;
    struct tc_username u;
    const char *client_id = mosquitto_client_id(ed->client);
    int rc = MOSQ_ERR_AUTH;

    tc_session_remove(ed->client);
    tc_service_sync(false); /* faults set a moment ago apply to this connection */
    if (tc_username_parse(ed->username, &u) != 0) {
        tc_log(MOSQ_LOG_NOTICE, "refused %s: username is neither the DPS nor the hub form",
               client_id != NULL ? client_id : "?");
        return MOSQ_ERR_AUTH;
    }
    if (client_id == NULL || strcmp(client_id, u.id) != 0 || u.module[0] != '\0') {
        tc_log(MOSQ_LOG_NOTICE, "refused %s: client id must equal the id in the username",
               client_id != NULL ? client_id : "?");
        return MOSQ_ERR_AUTH;
    }
    X509 *cert = mosquitto_client_certificate(ed->client);
    struct tc_session *s = tc_session_new(ed->client);
    if (s == NULL) {
        X509_free(cert);
        return MOSQ_ERR_NOMEM;
    }
    s->kind = u.kind;
    s->connected_ms = tc_now_ms();
    snprintf(s->client_id, sizeof s->client_id, "%s", client_id);
    /* the shim read this CONNECT a moment ago (same packet, same loop iteration) */
    s->tap_conn = strcmp(tc_g.tap_connect_id, client_id) == 0 ? tc_g.tap_connect_conn : 0;
    tc_g.tap_connect_id[0] = '\0';
    tc_g.tap_connect_conn = 0;
    snprintf(s->id, sizeof s->id, "%s", u.id);
    snprintf(s->host, sizeof s->host, "%s", u.scope_or_host);
    if (u.kind == TC_USER_DPS) {
        tc_dps_attest(s, ed->password, cert);
        rc = dps_own_id_space(ed->client, s) == 0 ? MOSQ_ERR_SUCCESS : MOSQ_ERR_AUTH;
    } else if (!tc_device_id_valid(u.id)) {
        tc_log(MOSQ_LOG_NOTICE, "refused %s: not a valid device id", client_id);
    } else if (tc_hub_authenticate(s, &u, ed->password, cert) == 0) {
        mark_taken_over(s->id, s);
        tc_reg_exec(tc_g.db, "UPDATE devices SET connected=1, last_activity_ms=? WHERE device_id=?",
                    "is", tc_now_ms(), s->id);
        rc = MOSQ_ERR_SUCCESS;
    }
    X509_free(cert);
    if (rc != MOSQ_ERR_SUCCESS) {
        tc_session_remove(ed->client);
        return rc;
    }
    tc_session_resume(s);
    s->c2d_check = (s->subs & TC_SUB_C2D) != 0;
    return rc;
}
