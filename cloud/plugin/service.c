/* The service path between `tether cloud` commands and the plugin.
 *
 * Design: the commands never talk MQTT. They write rows into the registry (D/registry.db,
 * in a directory of mode 0700 that only the cloud's owner can open): method invocations and
 * desired-property updates in `requests`, cloud-to-device messages in `c2d`, faults in
 * `faults`. The plugin watches the file on its TICK (PRAGMA data_version tells it cheaply
 * that another connection committed), executes the requests against the connected devices
 * and writes the results back (a method's status and payload), which the command polls.
 * A request the device answered ends in state 'done' with the device's status; one the hub
 * answered for it (device offline or not subscribed: 404 with errorCode 404103; no answer
 * in time: 504 with 504101) ends in 'failed', so that a device's own 404 is told apart.
 * Devices reach the plugin only through MQTT, where the ACL (acl.c) allows nothing but their
 * own DPS and hub topics, so this path is out of their reach by construction. */
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "plugin.h"
#include "util.h"

#define POLL_MS 20

bool tc_fault_fires(double rate)
{
    if (rate <= 0.0) {
        return false;
    }
    if (rate >= 1.0) {
        return true;
    }
    unsigned int r = 0;
    RAND_bytes((unsigned char *)&r, sizeof r);
    return (double)r / 4294967296.0 < rate;
}

void tc_service_reload(void)
{
    char *scope = tc_reg_meta_get(tc_g.db, "id_scope");
    char *retry = tc_reg_meta_get(tc_g.db, "retry_after");
    snprintf(tc_g.id_scope, sizeof tc_g.id_scope, "%s", scope != NULL ? scope : "");
    tc_g.retry_after_s = retry != NULL ? atoi(retry) : 1;
    if (tc_g.retry_after_s < 0 || tc_g.retry_after_s > 3600) {
        tc_g.retry_after_s = 1;
    }
    free(scope);
    free(retry);
    memset(&tc_g.faults, 0, sizeof tc_g.faults);
    cJSON *rows = tc_reg_rows(tc_g.db, "SELECT * FROM faults", NULL);
    cJSON *f;
    cJSON_ArrayForEach(f, rows)
    {
        const char *name = tc_row_str(f, "name");
        cJSON *rate_item = cJSON_GetObjectItemCaseSensitive(f, "rate");
        double rate = cJSON_IsNumber(rate_item) ? rate_item->valuedouble : 1.0;
        int status = (int)tc_row_int(f, "status", 0);
        int seconds = (int)tc_row_int(f, "seconds", 0);
        const char *dev = tc_row_str(f, "device_id");
        if (name == NULL) {
            continue;
        }
        if (strcmp(name, "dps-throttle") == 0) {
            tc_g.faults.dps_throttle_rate = rate;
            tc_g.faults.dps_throttle_retry_after = seconds > 0 ? seconds : 1;
        } else if (strcmp(name, "dps-error") == 0) {
            tc_g.faults.dps_error_rate = rate;
            tc_g.faults.dps_error_status = status > 0 ? status : 500;
        } else if (strcmp(name, "slow-assignment") == 0) {
            tc_g.faults.dps_slow_seconds = seconds;
        } else if (strcmp(name, "hub-refuse") == 0) {
            tc_g.faults.hub_refuse_rate = rate;
            snprintf(tc_g.faults.hub_refuse_device, sizeof tc_g.faults.hub_refuse_device, "%s",
                     dev != NULL ? dev : "");
        }
    }
    cJSON_Delete(rows);
}

static void run_requests(void)
{
    cJSON *rows = tc_reg_rows(tc_g.db,
                              "SELECT id, kind, device_id, name, payload, timeout_ms FROM requests"
                              " WHERE state='new' ORDER BY id",
                              NULL);
    cJSON *r;
    int64_t now = tc_now_ms();
    cJSON_ArrayForEach(r, rows)
    {
        int64_t id = tc_row_int(r, "id", 0);
        const char *kind = tc_row_str(r, "kind");
        const char *dev = tc_row_str(r, "device_id");
        const char *name = tc_row_str(r, "name");
        const char *payload = tc_row_str(r, "payload");
        if (kind == NULL || dev == NULL) {
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='done', status=400 WHERE id=?", "i",
                        id);
            continue;
        }
        struct tc_session *s = tc_session_find_device(dev);
        if (strcmp(kind, "method") == 0) {
            if (s == NULL || (s->subs & TC_SUB_METHODS) == 0 || name == NULL) {
                tc_reg_exec(tc_g.db,
                            "UPDATE requests SET state='failed', status=404, response=? WHERE id=?",
                            "si",
                            "{\"errorCode\":404103,\"message\":\"The device is not online (not "
                            "connected or not subscribed to methods).\"}",
                            id);
                continue;
            }
            char topic[300];
            snprintf(topic, sizeof topic, "$iothub/methods/POST/%s/?$rid=%lld", name,
                     (long long)id);
            const char *body = payload != NULL ? payload : "null";
            tc_publish(s->client_id, topic, body, strlen(body), 0);
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='sent', deadline_ms=? WHERE id=?", "ii",
                        now + tc_row_int(r, "timeout_ms", 30000), id);
        } else if (strcmp(kind, "desired") == 0) {
            int64_t version = name != NULL ? strtoll(name, NULL, 10) : 0;
            if (payload != NULL) {
                tc_hub_push_desired(dev, payload, version);
            }
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='done', status=200 WHERE id=?", "i",
                        id);
        } else if (strcmp(kind, "c2d") == 0) {
            if (s != NULL) {
                tc_hub_deliver_c2d(s);
            }
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='done', status=200 WHERE id=?", "i",
                        id);
        } else if (strcmp(kind, "reload") == 0) {
            tc_service_reload();
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='done', status=200 WHERE id=?", "i",
                        id);
        } else {
            tc_reg_exec(tc_g.db, "UPDATE requests SET state='done', status=400 WHERE id=?", "i",
                        id);
        }
    }
    cJSON_Delete(rows);
    /* finished requests are kept for a minute for the command to read */
    tc_reg_exec(tc_g.db, "DELETE FROM requests WHERE state IN ('done','failed') AND created_ms < ?",
                "i", now - 60000);
}

void tc_service_sync(bool run)
{
    int64_t version = tc_reg_int(tc_g.db, 0, "PRAGMA data_version", NULL);
    if (version != tc_g.data_version) {
        tc_g.data_version = version;
        tc_service_reload();
        tc_g.requests_waiting = true;
    }
    if (run && tc_g.requests_waiting) {
        tc_g.requests_waiting = false;
        run_requests();
    }
}

int tc_on_tick(int event, void *event_data, void *userdata)
{
    (void)event;
    (void)event_data;
    (void)userdata;
    int64_t now = tc_now_ms();
    if (now < tc_g.next_poll_ms) {
        return MOSQ_ERR_SUCCESS;
    }
    tc_g.next_poll_ms = now + POLL_MS;
    tc_service_sync(true);
    /* method calls past their deadline: 504 (checked every 200 ms) */
    static int64_t next_sweep_ms;
    if (now >= next_sweep_ms) {
        next_sweep_ms = now + 200;
        tc_reg_exec(
            tc_g.db,
            "UPDATE requests SET state='failed', status=504, response=? WHERE state='sent' AND"
            " deadline_ms < ?",
            "si",
            "{\"errorCode\":504101,\"message\":\"Timed out waiting for the response from the"
            " device.\"}",
            now);
    }
    for (struct tc_session *s = tc_g.sessions; s != NULL; s = s->next) {
        if (s->kind == TC_USER_HUB && !s->took_over) {
            tc_hub_on_subscribed(s);
        }
    }
    return MOSQ_ERR_SUCCESS;
}
