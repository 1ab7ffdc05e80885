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
    c.backoff.jitter = TETHER_BACKOFF_EQUAL_JITTER; /* grows every attempt: no fast retries */
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

/* The next backoff delay of a sequence of retries (attempt counts up, previous remembered). */
static uint32_t backoff_next(const tether_hub_session *s, uint32_t *attempt, uint32_t *previous)
{
    tether_backoff_step step = {
        .attempt = (*attempt)++, .previous_ms = *previous, .random = tether_session_random32()};
    *previous = tether_backoff_delay_ms(&s->cfg->backoff, &step);
    return *previous;
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

/* Sends the twin GET (kind TWIN) or the kept reported patch (REPORTED) with a fresh rid. */
static tether_status send_request(tether_hub_session *s, tether_hub_request_kind kind)
{
    bool twin = kind == TETHER_HUB_REQUEST_TWIN;
    tether_hub_request *r = twin ? &s->twin : &s->report;
    tether_view rid = tether_view_of(next_rid(s));
    size_t topic_len = 0;
    tether_status st =
        twin ? tether_hub_twin_get_topic(rid, s->topic, sizeof s->topic, &topic_len)
             : tether_hub_twin_patch_topic(rid, s->topic, sizeof s->topic, &topic_len);
    if (st == TETHER_OK)
        st = twin ? publish(s, topic_len, NULL, 0, 0)
                  : publish(s, topic_len, (const uint8_t *)s->report_json, s->report_len, 0);
    r->retry_at_ms = 0;
    if (st != TETHER_OK)
        return st;
    memcpy(r->rid, s->rid, sizeof r->rid);
    if (twin)
        s->stats.twin_requests++;
    else
        s->stats.report_requests++;
    return TETHER_OK;
}

/* An error status for one of our requests: 429 and 5xx are retried with backoff, any other
 * status is final; the application is told either way. */
static void request_failed(tether_hub_session *s, tether_hub_request_kind kind, uint16_t status)
{
    tether_hub_request *r = kind == TETHER_HUB_REQUEST_TWIN ? &s->twin : &s->report;
    r->rid[0] = 0;
    bool retriable = status == 429 || status >= 500;
    s->event.cause = status == 429 ? TETHER_HUB_THROTTLED
                     : retriable   ? TETHER_HUB_SERVER_ERROR
                                   : TETHER_HUB_REQUEST_REFUSED;
    if (retriable) {
        s->event.wait_ms = backoff_next(s, &r->attempt, &r->previous_ms);
        r->retry_at_ms = tether_port_now_ms() + s->event.wait_ms;
    } else {
        r->attempt = 0;
        r->previous_ms = 0;
        if (kind == TETHER_HUB_REQUEST_REPORTED)
            s->report_len = 0; /* refused: sending it again cannot help */
    }
    s->event.request = kind;
    s->event.status = status;
    emit(s, TETHER_HUB_EVENT_REQUEST_FAILED);
}

/* Which of our requests a twin response answers; false for none (an earlier one's). */
static bool match_request(tether_hub_session *s, tether_view rid, tether_hub_request_kind *kind)
{
    if (s->twin.rid[0] && tether_view_equals(rid, s->twin.rid))
        *kind = TETHER_HUB_REQUEST_TWIN;
    else if (s->report.rid[0] && tether_view_equals(rid, s->report.rid))
        *kind = TETHER_HUB_REQUEST_REPORTED;
    else
        return false;
    return true;
}

static void on_twin_response(tether_hub_session *s, const tether_hub_topic *t,
                             const tether_mqtt_publish *m)
{
    const tether_hub_config *cfg = s->cfg;
    tether_hub_request_kind kind = TETHER_HUB_REQUEST_TWIN;
    bool ours = match_request(s, t->rid, &kind);
    if (t->status >= 300) {
        if (ours)
            request_failed(s, kind, t->status);
        return;
    }
    if (ours) {
        tether_hub_request *r = kind == TETHER_HUB_REQUEST_TWIN ? &s->twin : &s->report;
        memset(r, 0, sizeof *r);
        if (kind == TETHER_HUB_REQUEST_REPORTED)
            s->report_len = 0;
    }
    if (t->status == 200) {
        s->stats.twin_received++;
        if (cfg->on_twin)
            cfg->on_twin(cfg->context, (const char *)m->payload, m->payload_len);
    } else if (t->status == 204) {
        s->stats.reported_acknowledged++;
        s->event.version = t->version;
        emit(s, TETHER_HUB_EVENT_REPORTED);
    }
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
        on_twin_response(s, &t, m);
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

/* The earliest time at or after t that keeps attempts within the per-minute cap. */
static uint64_t within_cap(const tether_hub_session *s, uint64_t t)
{
    if (s->attempts_count < TETHER_HUB_CONNECTS_PER_MINUTE)
        return t;
    uint64_t free_at = s->attempts_ms[s->attempts_next] + 60000u; /* the oldest's slot */
    return free_at > t ? free_at : t;
}

/* One connection attempt; *accepted: the hub accepted the CONNECT, whatever followed. */
static tether_status connect_once(tether_hub_session *s, bool *accepted)
{
    const tether_hub_config *cfg = s->cfg;
    s->attempts_ms[s->attempts_next] = tether_port_now_ms();
    s->attempts_next = (s->attempts_next + 1u) % TETHER_HUB_CONNECTS_PER_MINUTE;
    if (s->attempts_count < TETHER_HUB_CONNECTS_PER_MINUTE)
        s->attempts_count++;
    s->stats.connect_attempts++;
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
        uint64_t expiry = (uint64_t)tether_clock_unix_s() + cfg->sas_ttl_s;
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
        st = tether_session_mqtt_connect(&s->mqtt, s->tls, &co, 30000, f, count, accepted);
    if (st == TETHER_MQTT_CONNACK_BAD_CREDENTIALS || st == TETHER_MQTT_CONNACK_NOT_AUTHORIZED)
        st = TETHER_HUB_IDENTITY_REFUSED;
    /* The twin on every (re)connect: desired changes made while away are not pushed. A
     * reported patch the hub had not stored yet goes again. */
    if (st == TETHER_OK)
        st = send_request(s, TETHER_HUB_REQUEST_TWIN);
    if (st == TETHER_OK && s->report_len > 0)
        st = send_request(s, TETHER_HUB_REQUEST_REPORTED);
    if (st != TETHER_OK) {
        tether_mqtt_client_connection_lost(&s->mqtt);
        tether_tls_close(s->tls);
        return st;
    }
    s->connected = true;
    s->connected_at_ms = tether_port_now_ms();
    s->failures = 0; /* the backoff goes on until the connection has proved healthy */
    s->stats.connects++;
    emit(s, TETHER_HUB_EVENT_CONNECTED);
    return TETHER_OK;
}

/* Schedules the next connection attempt: the backoff's wait, within the per-minute cap. */
static void schedule(tether_hub_session *s, tether_status cause)
{
    uint64_t now = tether_port_now_ms();
    uint32_t delay = backoff_next(s, &s->backoff_attempt, &s->previous_delay);
    s->retry_at_ms = within_cap(s, now + delay);
    s->event.cause = cause;
    s->event.wait_ms = (uint32_t)(s->retry_at_ms - now);
    s->event.failures = s->failures;
    emit(s, TETHER_HUB_EVENT_WAITING);
}

/* Paces the next attempt after one that failed. A connection the hub accepted and then
 * dropped before it was set up ended early (the duplicate-identity sign); any other failure
 * counts towards max_failures. */
static tether_status after_failed_connect(tether_hub_session *s, tether_status st, bool accepted)
{
    if (accepted) {
        s->early_drops++;
        schedule(s, s->early_drops >= TETHER_HUB_EARLY_DROPS_NAMED
                        ? TETHER_HUB_DROPPED_AFTER_CONNECT
                        : st);
        return TETHER_OK;
    }
    s->failures++;
    if (s->failures >= s->cfg->max_failures)
        return TETHER_HUB_UNREACHABLE;
    schedule(s, st);
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
    if (cfg->sas_key != NULL && !tether_clock_is_set(tether_clock_unix_s()))
        return TETHER_CLOCK_NOT_SET;

    st = tether_session_mqtt_init(&s->mqtt, s->tx, sizeof s->tx, s->rx, sizeof s->rx, s->queue,
                                  sizeof s->queue, s->slots, sizeof s->slots / sizeof s->slots[0],
                                  on_message, s);
    if (st != TETHER_OK)
        return st;
    bool accepted = false;
    st = connect_once(s, &accepted);
    if (st != TETHER_OK && st != TETHER_HUB_IDENTITY_REFUSED &&
        (accepted || tether_status_is_transient(st))) {
        /* The hub may be restarting: process() goes on trying, paced like any reconnect. */
        (void)after_failed_connect(s, st, accepted);
    }
    return st;
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
    if (len > sizeof s->report_json)
        return TETHER_BUFFER_TOO_SMALL;
    memcpy(s->report_json, json, len);
    s->report_len = len;
    memset(&s->report, 0, sizeof s->report);
    /* Disconnected, it goes out with the next connection. */
    return s->connected ? send_request(s, TETHER_HUB_REQUEST_REPORTED) : TETHER_OK;
}

/* Ends the connection. The backoff starts again from the first step only if it was healthy. */
static void close_connection(tether_hub_session *s)
{
    uint64_t up = tether_port_now_ms() - s->connected_at_ms;
    if (up >= TETHER_HUB_HEALTHY_MS) {
        s->backoff_attempt = 0;
        s->previous_delay = 0;
    }
    s->early_drops = up < TETHER_HUB_EARLY_DROP_MS ? s->early_drops + 1u : 0u;
    tether_tls_close(s->tls);
    s->connected = false;
    memset(s->twin.rid, 0, sizeof s->twin.rid); /* answers to them will never come */
    memset(s->report.rid, 0, sizeof s->report.rid);
}

static void lost(tether_hub_session *s, tether_status cause)
{
    tether_mqtt_client_connection_lost(&s->mqtt);
    close_connection(s);
    if (cause == TETHER_MQTT_KEEPALIVE_TIMEOUT)
        s->early_drops = 0; /* a silent link that tether ended, not a drop by the hub */
    s->event.cause = cause;
    emit(s, TETHER_HUB_EVENT_DISCONNECTED);
    schedule(s, s->early_drops >= TETHER_HUB_EARLY_DROPS_NAMED ? TETHER_HUB_DROPPED_AFTER_CONNECT
                                                               : cause);
}

/* One reconnection attempt when its time has come; schedules the next on failure. */
static tether_status try_reconnect(tether_hub_session *s)
{
    bool accepted = false;
    tether_status st = connect_once(s, &accepted);
    if (st == TETHER_OK || st == TETHER_HUB_IDENTITY_REFUSED)
        return st;
    return after_failed_connect(s, st, accepted);
}

/* Sends again a request whose retry time has come. */
static tether_status retry_requests(tether_hub_session *s, uint64_t now)
{
    tether_status st = TETHER_OK;
    if (s->twin.retry_at_ms != 0 && now >= s->twin.retry_at_ms)
        st = send_request(s, TETHER_HUB_REQUEST_TWIN);
    if (st == TETHER_OK && s->report.retry_at_ms != 0 && now >= s->report.retry_at_ms &&
        s->report_len > 0)
        st = send_request(s, TETHER_HUB_REQUEST_REPORTED);
    return st;
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
            close_connection(s);
            s->early_drops = 0; /* ours, not the hub's */
            s->retry_at_ms = within_cap(s, now);
            continue;
        }
        tether_status st = retry_requests(s, now);
        if (st != TETHER_OK) {
            lost(s, st);
            continue;
        }
        uint64_t left = end > now ? end - now : 0;
        uint32_t slice = left < 200 ? (uint32_t)left : 200;
        /* A read waits no longer than the caller's time: process(0) only polls. */
        tether_tls_set_io_timeout(s->tls, slice);
        st = tether_mqtt_client_process(&s->mqtt, slice);
        if (st == TETHER_MQTT_PACKET_TOO_LARGE) {
            s->stats.discarded++;
            s->event.size = tether_mqtt_client_last_needed(&s->mqtt);
            s->event.buffer_size = sizeof s->rx;
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
