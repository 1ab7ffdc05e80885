/* The IoT Hub session: one MQTT connection kept alive, everything the hub sends dispatched
 * to the application, and recovery paced by backoff. */
#include "tether/hub_session.h"

#include <stdio.h>
#include <string.h>

#include "tether/port.h"
#include "tether/sas.h"
#include "tether/sntp.h"

#include "session_common.h"

tether_hub_config tether_hub_config_default(void)
{
    tether_hub_config c;
    memset(&c, 0, sizeof c);
    c.port = 8883;
    c.sas_ttl_s = 3600;
    c.keep_alive_s = 240;
    c.max_failures = 10;
    c.backoff = tether_backoff_options_default();
    c.tls = tether_tls_options_default();
    return c;
}

/* Tells the application about s->event, then clears it for the next one. */
static void emit(tether_hub_session *s, tether_hub_event_kind kind)
{
    s->event.kind = kind;
    if (s->cfg->on_event)
        s->cfg->on_event(s->cfg->context, &s->event);
    memset(&s->event, 0, sizeof s->event);
}

static const char *next_rid(tether_hub_session *s)
{
    snprintf(s->rid, sizeof s->rid, "%u", (unsigned)++s->rid_counter);
    return s->rid;
}

/* Publishes to the topic written in s->topic. */
static tether_status publish(tether_hub_session *s, size_t topic_len, const uint8_t *payload,
                             size_t len, uint8_t qos)
{
    tether_mqtt_publish p = {.topic = s->topic,
                             .topic_len = topic_len,
                             .payload = payload,
                             .payload_len = len,
                             .qos = qos};
    return tether_mqtt_client_publish(&s->mqtt, &p, NULL);
}

static void answer_method(tether_hub_session *s, const tether_hub_topic *t,
                          const tether_mqtt_publish *m)
{
    static const char not_found[] = "{\"message\":\"no handler for this method\"}";
    const char *response = not_found;
    size_t response_len = sizeof not_found - 1;
    uint16_t status = 404;
    if (s->cfg->on_method) {
        response = s->response;
        response_len = 0;
        status = s->cfg->on_method(s->cfg->context, t->method_name, m->payload, m->payload_len,
                                   s->response, sizeof s->response, &response_len);
        if (response_len > sizeof s->response)
            response_len = 0;
    }
    size_t topic_len = 0;
    if (tether_hub_method_response_topic(status, t->rid, s->topic, sizeof s->topic, &topic_len) ==
            TETHER_OK &&
        publish(s, topic_len, (const uint8_t *)response, response_len, 0) == TETHER_OK)
        s->stats.methods_answered++;
}

static void on_message(void *context, const tether_mqtt_publish *m)
{
    tether_hub_session *s = context;
    tether_hub_topic t;
    tether_status st = tether_hub_topic_parse(m->topic, m->topic_len, &t);
    if (st != TETHER_OK) { /* not handled; the application is told, with the topic */
        s->event.cause = st;
        s->event.topic = (tether_view){m->topic, m->topic_len};
        s->event.size = m->payload_len;
        emit(s, TETHER_HUB_EVENT_UNREADABLE);
        return;
    }
    const tether_hub_config *cfg = s->cfg;
    switch (t.kind) {
    case TETHER_HUB_TOPIC_C2D: {
        s->stats.c2d_received++;
        tether_hub_c2d c = {m->payload, m->payload_len, t.properties};
        if (cfg->on_c2d)
            cfg->on_c2d(cfg->context, &c);
        break;
    }
    case TETHER_HUB_TOPIC_TWIN_RESPONSE:
        if (t.status == 200) {
            s->stats.twin_received++;
            if (cfg->on_twin)
                cfg->on_twin(cfg->context, (const char *)m->payload, m->payload_len);
        } else if (t.status == 204) {
            s->stats.reported_acknowledged++;
            s->event.version = t.version;
            emit(s, TETHER_HUB_EVENT_REPORTED);
        }
        break;
    case TETHER_HUB_TOPIC_DESIRED_PATCH:
        s->stats.desired_received++;
        if (cfg->on_desired)
            cfg->on_desired(cfg->context, (const char *)m->payload, m->payload_len, t.version);
        break;
    case TETHER_HUB_TOPIC_METHOD:
        answer_method(s, &t, m);
        break;
    }
}

static tether_status connect_once(tether_hub_session *s)
{
    const tether_hub_config *cfg = s->cfg;
    tether_status st =
        tether_session_tls_connect(s->tls, &cfg->tls, cfg->host, cfg->connect_to, cfg->port);
    if (st != TETHER_OK)
        return st;

    tether_mqtt_connect_opts co;
    memset(&co, 0, sizeof co);
    size_t len = 0;
    st = tether_hub_client_id(&s->id, s->topic, sizeof s->topic - 1, &len);
    co.client_id = s->topic;
    co.client_id_len = len;
    co.username = s->username;
    co.username_len = strlen(s->username);
    co.clean_session = true;
    co.keep_alive_s = cfg->keep_alive_s;
    if (st == TETHER_OK && cfg->sas_key != NULL) {
        uint64_t expiry = (uint64_t)tether_port_time_s() + cfg->sas_ttl_s;
        size_t plen = 0;
        st = tether_sas_hub_token(&s->id, cfg->sas_key, expiry, s->password, sizeof s->password - 1,
                                  &plen);
        co.password = (const uint8_t *)s->password;
        co.password_len = plen;
        /* Renew at 80 % of the lifetime, by reconnecting with a fresh token. */
        s->renew_at_ms = tether_port_now_ms() + (uint64_t)cfg->sas_ttl_s * 800u;
    }
    char c2d[256];
    size_t c2d_len = 0;
    tether_mqtt_filter f[4] = {
        {TETHER_HUB_TWIN_RESPONSE_FILTER, strlen(TETHER_HUB_TWIN_RESPONSE_FILTER), 1},
        {TETHER_HUB_TWIN_DESIRED_FILTER, strlen(TETHER_HUB_TWIN_DESIRED_FILTER), 1},
        {TETHER_HUB_METHODS_FILTER, strlen(TETHER_HUB_METHODS_FILTER), 0},
        {c2d, 0, 1},
    };
    size_t count = 3;
    if (cfg->module_id == NULL &&
        tether_hub_c2d_filter(&s->id, c2d, sizeof c2d, &c2d_len) == TETHER_OK) {
        f[3].filter_len = c2d_len;
        count = 4;
    }
    if (st == TETHER_OK)
        st = tether_session_mqtt_connect(&s->mqtt, s->tls, &co, 30000, f, count);
    if (st == TETHER_MQTT_CONNACK_BAD_CREDENTIALS || st == TETHER_MQTT_CONNACK_NOT_AUTHORIZED)
        st = TETHER_HUB_IDENTITY_REFUSED;
    if (st == TETHER_OK) {
        /* The twin on every (re)connect: desired changes made while away are not pushed. */
        size_t topic_len = 0;
        st = tether_hub_twin_get_topic(tether_view_of(next_rid(s)), s->topic, sizeof s->topic,
                                       &topic_len);
        if (st == TETHER_OK)
            st = publish(s, topic_len, NULL, 0, 0);
    }
    if (st != TETHER_OK) {
        tether_mqtt_client_connection_lost(&s->mqtt);
        tether_tls_close(s->tls);
        return st;
    }
    s->connected = true;
    s->failures = 0;
    s->previous_delay = 0;
    s->stats.connects++;
    emit(s, TETHER_HUB_EVENT_CONNECTED);
    return TETHER_OK;
}

tether_status tether_hub_session_start(tether_hub_session *s, tether_tls *tls,
                                       const tether_hub_config *cfg)
{
    if (s == NULL || tls == NULL || cfg == NULL || cfg->host == NULL || cfg->device_id == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(s, 0, sizeof *s);
    s->tls = tls;
    s->cfg = cfg;
    s->id = (tether_hub_identity){cfg->host, cfg->device_id, cfg->module_id};
    /* The user name writer checks the identity first: its status is the check's. */
    size_t len = 0;
    tether_status st = tether_hub_username(&s->id, "tether", cfg->model_id, s->username,
                                           sizeof s->username - 1, &len);
    if (st != TETHER_OK)
        return st;
    s->username[len] = 0;
    if (cfg->sas_key != NULL && !tether_clock_is_set(tether_port_time_s()))
        return TETHER_CLOCK_NOT_SET;

    st = tether_session_mqtt_init(&s->mqtt, s->tx, sizeof s->tx, s->rx, sizeof s->rx, s->queue,
                                  sizeof s->queue, s->slots, sizeof s->slots / sizeof s->slots[0],
                                  on_message, s);
    if (st != TETHER_OK)
        return st;
    return connect_once(s);
}

tether_status tether_hub_session_send(tether_hub_session *s, const uint8_t *payload, size_t len,
                                      const tether_hub_property *properties, size_t count,
                                      uint8_t qos)
{
    if (s == NULL || qos > 1)
        return TETHER_INVALID_ARGUMENT;
    size_t topic_len = 0;
    tether_status st = tether_hub_telemetry_topic(&s->id, properties, count, s->topic,
                                                  sizeof s->topic, &topic_len);
    if (st != TETHER_OK)
        return st;
    st = publish(s, topic_len, payload, len, qos);
    if (st == TETHER_MQTT_INFLIGHT_FULL)
        return TETHER_HUB_QUEUE_FULL;
    if (st == TETHER_OK) {
        s->stats.telemetry_sent++;
    } else if (qos == 1 && tether_status_is_transient(st)) {
        /* Queued; the connection dropped while sending: it goes out after the reconnect. */
        s->stats.telemetry_sent++;
        st = TETHER_OK;
    }
    return st;
}

tether_status tether_hub_session_report(tether_hub_session *s, const char *json, size_t len)
{
    if (s == NULL || json == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (!s->connected)
        return TETHER_MQTT_NOT_CONNECTED;
    size_t topic_len = 0;
    tether_status st = tether_hub_twin_patch_topic(tether_view_of(next_rid(s)), s->topic,
                                                   sizeof s->topic, &topic_len);
    if (st == TETHER_OK)
        st = publish(s, topic_len, (const uint8_t *)json, len, 0);
    return st;
}

static void lost(tether_hub_session *s, tether_status cause)
{
    tether_mqtt_client_connection_lost(&s->mqtt);
    tether_tls_close(s->tls);
    s->connected = false;
    s->retry_at_ms = tether_port_now_ms(); /* the first attempt right away */
    s->event.cause = cause;
    emit(s, TETHER_HUB_EVENT_DISCONNECTED);
}

/* One reconnection attempt when its time has come; schedules the next on failure. */
static tether_status try_reconnect(tether_hub_session *s)
{
    tether_status st = connect_once(s);
    if (st == TETHER_OK || st == TETHER_HUB_IDENTITY_REFUSED)
        return st;
    s->failures++;
    if (s->failures >= s->cfg->max_failures)
        return TETHER_HUB_UNREACHABLE;
    tether_backoff_step step = {.attempt = s->failures - 1,
                                .previous_ms = s->previous_delay,
                                .random = tether_session_random32()};
    uint32_t delay = tether_backoff_delay_ms(&s->cfg->backoff, &step);
    s->previous_delay = delay;
    s->retry_at_ms = tether_port_now_ms() + delay;
    s->event.cause = st;
    s->event.wait_ms = delay;
    s->event.failures = s->failures;
    emit(s, TETHER_HUB_EVENT_WAITING);
    return TETHER_OK;
}

tether_status tether_hub_session_process(tether_hub_session *s, uint32_t timeout_ms)
{
    if (s == NULL)
        return TETHER_INVALID_ARGUMENT;
    uint64_t end = tether_port_now_ms() + timeout_ms;
    do {
        uint64_t now = tether_port_now_ms();
        if (!s->connected) {
            if (now >= s->retry_at_ms) {
                tether_status st = try_reconnect(s);
                if (st != TETHER_OK)
                    return st;
                continue;
            }
            uint64_t wake = s->retry_at_ms < end ? s->retry_at_ms : end;
            tether_port_sleep_ms((uint32_t)(wake - now));
            continue;
        }
        if (s->renew_at_ms != 0 && now >= s->renew_at_ms) {
            emit(s, TETHER_HUB_EVENT_TOKEN_RENEWAL);
            s->stats.token_renewals++;
            tether_mqtt_client_disconnect(&s->mqtt);
            tether_tls_close(s->tls);
            s->connected = false;
            s->retry_at_ms = now;
            continue;
        }
        uint64_t left = end > now ? end - now : 0;
        uint32_t slice = left < 200 ? (uint32_t)left : 200;
        /* A read waits no longer than the caller's time: process(0) only polls. */
        tether_tls_set_io_timeout(s->tls, slice);
        tether_status st = tether_mqtt_client_process(&s->mqtt, slice);
        if (st == TETHER_MQTT_PACKET_TOO_LARGE) {
            s->event.size = tether_mqtt_client_last_needed(&s->mqtt);
            emit(s, TETHER_HUB_EVENT_DISCARDED);
        } else if (st != TETHER_OK) {
            lost(s, st);
        }
    } while (tether_port_now_ms() < end);
    return TETHER_OK;
}

size_t tether_hub_session_pending(const tether_hub_session *s)
{
    return tether_mqtt_client_inflight_count(&s->mqtt);
}

const tether_hub_stats *tether_hub_session_stats(const tether_hub_session *s)
{
    return &s->stats;
}

void tether_hub_session_stop(tether_hub_session *s)
{
    if (s == NULL || s->tls == NULL)
        return;
    if (s->connected)
        tether_mqtt_client_disconnect(&s->mqtt);
    tether_tls_close(s->tls);
    s->connected = false;
}
