/* Provisioning through DPS: connect, register, poll while assigning, retry what is transient,
 * stop on what is final. Time is the session's: it asks the port, the helpers never do. */
#include "tether/dps_session.h"

#include <stdio.h>
#include <string.h>

#include "tether/port.h"
#include "tether/sas.h"
#include "tether/sntp.h"

#include "session_common.h"

tether_dps_config tether_dps_config_default(void)
{
    tether_dps_config c;
    memset(&c, 0, sizeof c);
    c.endpoint = TETHER_DPS_GLOBAL_ENDPOINT;
    c.port = 8883;
    c.sas_ttl_s = 3600;
    c.timeout_ms = 120000;
    c.response_timeout_ms = 30000;
    c.default_poll_ms = 3000;
    c.backoff = tether_backoff_options_default();
    c.tls = tether_tls_options_default();
    return c;
}

static void copy_view(char *dst, size_t cap, tether_view v)
{
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    if (n > 0)
        memcpy(dst, v.ptr, n);
    dst[n] = 0;
}

static uint64_t elapsed(uint64_t start)
{
    return tether_port_now_ms() - start;
}

static void report(tether_dps_session *s, tether_dps_progress *p, uint64_t start)
{
    p->elapsed_ms = elapsed(start);
    if (p->operation_id == NULL)
        p->operation_id = s->result->operation_id;
    if (s->cfg->on_progress)
        s->cfg->on_progress(s->cfg->progress_context, p);
}

/* A response to our request: copy what the result keeps while the message is still there. */
static void on_message(void *context, const tether_mqtt_publish *m)
{
    tether_dps_session *s = context;
    tether_dps_response_topic rt;
    if (tether_dps_response_topic_parse(m->topic, m->topic_len, &rt) != TETHER_OK)
        return; /* Not a DPS response: nothing of ours. */
    if (!tether_view_equals(rt.rid, s->rid))
        return; /* An answer to an earlier request, after a retry: stale. */
    rt.rid = (tether_view){NULL, 0};
    s->response = rt;
    s->got_response = true;
    tether_dps_result *r = s->result;
    r->http_status = rt.status;
    tether_dps_registration reg;
    s->parse_status =
        m->payload_len == 0
            ? TETHER_DPS_MALFORMED_RESPONSE
            : tether_dps_response_payload_parse((const char *)m->payload, m->payload_len, s->tokens,
                                                sizeof s->tokens / sizeof s->tokens[0], s->scratch,
                                                sizeof s->scratch, &reg);
    if (s->parse_status != TETHER_OK)
        return;
    r->operation = reg.status != TETHER_DPS_STATUS_NONE ? reg.status : reg.state_status;
    if (reg.operation_id.len > 0)
        copy_view(r->operation_id, sizeof r->operation_id, reg.operation_id);
    copy_view(r->assigned_hub, sizeof r->assigned_hub, reg.assigned_hub);
    copy_view(r->device_id, sizeof r->device_id, reg.device_id);
    copy_view(r->substatus, sizeof r->substatus, reg.substatus);
    copy_view(r->payload, sizeof r->payload, reg.payload);
    r->error_code = reg.error_code;
    copy_view(r->error_message, sizeof r->error_message, reg.error_message);
}

static tether_status open_connection(tether_dps_session *s, tether_tls *tls)
{
    const tether_dps_config *cfg = s->cfg;
    tether_tls_options o = cfg->tls;
    o.host = cfg->endpoint;
    o.connect_host = cfg->connect_to;
    o.port = cfg->port;
    tether_status st = tether_tls_connect(tls, &o);
    if (st != TETHER_OK)
        return st;

    size_t len = 0;
    tether_mqtt_connect_opts co;
    memset(&co, 0, sizeof co);
    co.client_id = cfg->registration_id;
    co.client_id_len = strlen(cfg->registration_id);
    co.username = s->username;
    co.username_len = strlen(s->username);
    co.clean_session = true; /* DPS sessions are never persistent. */
    co.keep_alive_s = 60;
    if (cfg->sas_key != NULL) {
        /* A fresh token per connection: its expiry counts from now. */
        uint64_t expiry = (uint64_t)tether_port_time_s() + cfg->sas_ttl_s;
        st = tether_sas_dps_token(cfg->id_scope, cfg->registration_id, cfg->sas_key, expiry,
                                  s->password, sizeof s->password - 1, &len);
        if (st != TETHER_OK) {
            tether_tls_close(tls);
            return st;
        }
        s->password[len] = 0;
        co.password = (const uint8_t *)s->password;
        co.password_len = len;
    }
    tether_mqtt_client_set_transport(&s->mqtt, tether_tls_transport(tls));
    st = tether_mqtt_client_connect(&s->mqtt, &co, cfg->response_timeout_ms, NULL);
    if (st == TETHER_OK) {
        tether_mqtt_filter f = {TETHER_DPS_RESPONSE_FILTER, strlen(TETHER_DPS_RESPONSE_FILTER), 1};
        st = tether_mqtt_client_subscribe(&s->mqtt, &f, 1, cfg->response_timeout_ms, NULL);
    }
    if (st == TETHER_MQTT_CONNACK_BAD_CREDENTIALS || st == TETHER_MQTT_CONNACK_NOT_AUTHORIZED) {
        snprintf(s->result->error_message, sizeof s->result->error_message,
                 "DPS refused the MQTT connection (%s)", tether_status_name(st));
        st = TETHER_DPS_UNAUTHORIZED;
    }
    if (st != TETHER_OK)
        tether_tls_close(tls);
    return st;
}

static tether_status send_request(tether_dps_session *s)
{
    tether_dps_result *r = s->result;
    snprintf(s->rid, sizeof s->rid, "%u", (unsigned)++s->rid_counter);
    tether_view rid = tether_view_of(s->rid);
    size_t topic_len = 0, body_len = 0;
    tether_status st;
    if (r->operation_id[0] == 0) {
        st = tether_dps_register_topic(rid, s->topic, sizeof s->topic, &topic_len);
        if (st == TETHER_OK)
            st = tether_dps_register_payload(s->cfg->registration_id, s->cfg->payload,
                                             s->cfg->payload ? strlen(s->cfg->payload) : 0, s->body,
                                             sizeof s->body, &body_len);
        r->register_requests++;
    } else {
        st = tether_dps_poll_topic(rid, tether_view_of(r->operation_id), s->topic, sizeof s->topic,
                                   &topic_len);
        r->polls++;
    }
    if (st != TETHER_OK)
        return st;
    s->got_response = false;
    s->parse_status = TETHER_OK;
    tether_mqtt_publish p = {.topic = s->topic,
                             .topic_len = topic_len,
                             .payload = (const uint8_t *)s->body,
                             .payload_len = body_len,
                             .qos = 1};
    return tether_mqtt_client_publish(&s->mqtt, &p, NULL);
}

/* Pumps the connection until our response arrives or @p timeout_ms passes. */
static tether_status await_response(tether_dps_session *s, uint32_t timeout_ms)
{
    uint64_t end = tether_port_now_ms() + timeout_ms;
    while (!s->got_response) {
        uint64_t now = tether_port_now_ms();
        if (now >= end)
            return TETHER_TIMEOUT;
        uint64_t left = end - now;
        uint32_t slice = left < 200 ? (uint32_t)left : 200;
        tether_tls_set_io_timeout(s->tls, slice);
        tether_status st = tether_mqtt_client_process(&s->mqtt, slice);
        if (st != TETHER_OK && st != TETHER_MQTT_PACKET_TOO_LARGE)
            return st;
    }
    return TETHER_OK;
}

/* Waits, keeping the link alive while connected. Returns false if the link died meanwhile. */
static bool wait_ms(tether_dps_session *s, uint32_t ms, bool connected)
{
    uint64_t end = tether_port_now_ms() + ms;
    while (tether_port_now_ms() < end) {
        uint64_t left = end - tether_port_now_ms();
        uint32_t slice = left < 200 ? (uint32_t)left : 200;
        if (connected) {
            tether_tls_set_io_timeout(s->tls, slice);
            if (tether_mqtt_client_process(&s->mqtt, slice) != TETHER_OK)
                connected = false;
        } else {
            tether_port_sleep_ms(slice);
        }
    }
    return connected;
}

static tether_status final_status(const tether_dps_result *r)
{
    switch (r->operation) {
    case TETHER_DPS_ASSIGNED:
        return r->assigned_hub[0] && r->device_id[0] ? TETHER_OK : TETHER_DPS_MALFORMED_RESPONSE;
    case TETHER_DPS_DISABLED:
        return TETHER_DPS_ENROLLMENT_DISABLED;
    default:
        return TETHER_DPS_ASSIGNMENT_FAILED;
    }
}

tether_status tether_dps_register(tether_dps_session *s, tether_tls *tls,
                                  const tether_dps_config *cfg, tether_dps_result *result)
{
    if (s == NULL || tls == NULL || cfg == NULL || result == NULL || cfg->id_scope == NULL ||
        cfg->registration_id == NULL || cfg->endpoint == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(s, 0, sizeof *s);
    memset(result, 0, sizeof *result);
    s->cfg = cfg;
    s->result = result;
    s->tls = tls;
    uint64_t start = tether_port_now_ms();
    uint64_t deadline = start + cfg->timeout_ms;

    tether_status st = tether_dps_registration_id_check(cfg->registration_id);
    size_t len = 0;
    if (st == TETHER_OK)
        st = tether_dps_username(cfg->id_scope, cfg->registration_id, NULL, s->username,
                                 sizeof s->username - 1, &len);
    if (st != TETHER_OK)
        return st;
    s->username[len] = 0;
    if (cfg->sas_key != NULL && !tether_clock_is_set(tether_port_time_s()))
        return TETHER_CLOCK_NOT_SET; /* A token's expiry means nothing on an unset clock. */

    tether_mqtt_config mc = tether_session_mqtt_config(
        s->tx, sizeof s->tx, s->rx, sizeof s->rx, s->store, sizeof s->store, s->slots,
        sizeof s->slots / sizeof s->slots[0], on_message, s);
    st = tether_mqtt_client_init(&s->mqtt, &mc);
    if (st != TETHER_OK)
        return st;

    bool connected = false;
    uint32_t attempt = 0, previous_delay = 0;
    tether_status last_failure = TETHER_OK;
    for (;;) {
        if (tether_port_now_ms() >= deadline) {
            st = last_failure != TETHER_OK && result->http_status == 0
                     ? last_failure
                     : TETHER_DPS_DEADLINE_EXCEEDED;
            break;
        }
        uint32_t delay = 0;
        tether_dps_progress p;
        memset(&p, 0, sizeof p);
        if (!connected) {
            p.event = TETHER_DPS_EVENT_CONNECTING;
            p.attempt = attempt;
            report(s, &p, start);
            st = open_connection(s, tls);
            connected = st == TETHER_OK;
            if (connected && attempt > 0)
                result->reconnects++;
        }
        if (connected) {
            st = send_request(s);
            if (st == TETHER_OK) {
                memset(&p, 0, sizeof p);
                p.event = result->operation_id[0] ? TETHER_DPS_EVENT_POLLING
                                                  : TETHER_DPS_EVENT_REGISTERING;
                report(s, &p, start);
                uint64_t left = deadline - tether_port_now_ms();
                uint32_t wait =
                    cfg->response_timeout_ms < left ? cfg->response_timeout_ms : (uint32_t)left;
                st = await_response(s, wait);
            }
        }
        if (st == TETHER_OK) {
            memset(&p, 0, sizeof p);
            p.event = TETHER_DPS_EVENT_RESPONSE;
            p.http_status = s->response.status;
            p.operation = result->operation;
            report(s, &p, start);
            uint16_t code = s->response.status;
            if (code == 200 || code == 202) {
                if (s->parse_status != TETHER_OK) {
                    st = s->parse_status;
                    break;
                }
                if (tether_dps_status_is_final(result->operation)) {
                    st = final_status(result);
                    break;
                }
                if (result->operation_id[0] == 0) {
                    st = TETHER_DPS_MALFORMED_RESPONSE; /* assigning, but nothing to poll */
                    break;
                }
                /* Assigning: poll when the server says, or at the default interval. */
                delay = s->response.has_retry_after ? s->response.retry_after_s * 1000u
                                                    : cfg->default_poll_ms;
                attempt = 0;
            } else if (tether_dps_response_is_retriable(code)) {
                tether_backoff_step step = {.attempt = attempt++,
                                            .previous_ms = previous_delay,
                                            .random = tether_session_random32(),
                                            .has_retry_after = s->response.has_retry_after,
                                            .retry_after_s = s->response.retry_after_s};
                delay = tether_backoff_delay_ms(&cfg->backoff, &step);
            } else {
                st = code == 401 ? TETHER_DPS_UNAUTHORIZED : TETHER_DPS_REQUEST_REFUSED;
                break;
            }
        } else if (tether_status_is_transient(st) || st == TETHER_TIMEOUT) {
            /* The connection failed or went quiet: start again on a new one. */
            last_failure = st;
            memset(&p, 0, sizeof p);
            p.event = TETHER_DPS_EVENT_CONNECTION_LOST;
            p.cause = st;
            report(s, &p, start);
            if (connected) {
                tether_mqtt_client_connection_lost(&s->mqtt);
                tether_tls_close(tls);
                connected = false;
            }
            tether_backoff_step step = {.attempt = attempt++,
                                        .previous_ms = previous_delay,
                                        .random = tether_session_random32()};
            delay = tether_backoff_delay_ms(&cfg->backoff, &step);
        } else {
            break; /* Credentials, configuration, a refusal: retrying cannot help. */
        }
        previous_delay = delay;
        uint64_t now = tether_port_now_ms();
        if (now + delay > deadline)
            delay = now < deadline ? (uint32_t)(deadline - now) : 0;
        memset(&p, 0, sizeof p);
        p.event = TETHER_DPS_EVENT_WAITING;
        p.wait_ms = delay;
        p.server_retry_after = s->response.has_retry_after && st == TETHER_OK;
        p.cause = st;
        p.attempt = attempt;
        report(s, &p, start);
        connected = wait_ms(s, delay, connected);
        if (!connected)
            tether_tls_close(tls);
    }
    if (connected) {
        tether_mqtt_client_disconnect(&s->mqtt);
        tether_tls_close(tls);
    }
    result->elapsed_ms = elapsed(start);
    return st;
}
