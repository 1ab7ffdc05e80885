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
    c.backoff.retry_after_cap_ms = UINT32_MAX; /* any retry-after; the deadline bounds it */
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

static uint64_t elapsed(const tether_dps_session *s)
{
    return tether_port_now_ms() - s->start_ms;
}

/* Tells the progress callback about s->progress, then clears it for the next event. */
static void report(tether_dps_session *s, tether_dps_event event)
{
    tether_dps_progress *p = &s->progress;
    p->event = event;
    p->elapsed_ms = elapsed(s);
    p->operation_id = s->result->operation_id;
    if (s->cfg->on_progress)
        s->cfg->on_progress(s->cfg->progress_context, p);
    memset(p, 0, sizeof *p);
}

/* The response as it came, cut to the result's buffer: what a diagnosis shows. */
static void keep_response(tether_dps_result *r, const tether_mqtt_publish *m)
{
    size_t cap = sizeof r->response, n = 0;
    const struct {
        const void *p;
        size_t len;
    } parts[] = {{m->topic, m->topic_len}, {" ", 1}, {m->payload, m->payload_len}};
    for (size_t i = 0; i < 3; i++) {
        size_t k = parts[i].len < cap - n ? parts[i].len : cap - n;
        if (k > 0)
            memcpy(r->response + n, parts[i].p, k);
        n += k;
    }
    r->response_len = (uint16_t)n;
    r->response_total = (uint32_t)(m->topic_len + 1 + m->payload_len);
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
    keep_response(r, m);
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
    tether_status st =
        tether_session_tls_connect(tls, &cfg->tls, cfg->endpoint, cfg->connect_to, cfg->port);
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
        uint64_t expiry = (uint64_t)tether_clock_unix_s() + cfg->sas_ttl_s;
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
    tether_mqtt_filter f = {TETHER_DPS_RESPONSE_FILTER, strlen(TETHER_DPS_RESPONSE_FILTER), 1};
    st = tether_session_mqtt_connect(&s->mqtt, tls, &co, cfg->response_timeout_ms, &f, 1, NULL);
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

/* Pumps the connection for @p ms, or sleeps once there is none. Awaiting, it returns at our
 * response (TETHER_TIMEOUT if none came) or at a failure; else a failure only ends the link.
 * 32-bit time differences: no wait is longer than 2^32 ms. */
static tether_status pump(tether_dps_session *s, uint32_t ms, bool awaiting, bool *connected)
{
    uint32_t t0 = (uint32_t)tether_port_now_ms();
    for (;;) {
        if (awaiting && s->got_response)
            return TETHER_OK;
        uint32_t gone = (uint32_t)tether_port_now_ms() - t0;
        if (gone >= ms)
            return awaiting ? TETHER_TIMEOUT : TETHER_OK;
        uint32_t slice = ms - gone < 200 ? ms - gone : 200;
        if (!*connected) {
            tether_port_sleep_ms(slice);
            continue;
        }
        tether_tls_set_io_timeout(s->tls, slice);
        tether_status st = tether_mqtt_client_process(&s->mqtt, slice);
        if (st == TETHER_OK || (awaiting && st == TETHER_MQTT_PACKET_TOO_LARGE))
            continue;
        if (awaiting)
            return st;
        *connected = false; /* waiting, any failure ends the link; the time is still waited */
    }
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
    s->start_ms = tether_port_now_ms();
    uint64_t deadline = s->start_ms + cfg->timeout_ms;

    tether_status st = tether_dps_registration_id_check(cfg->registration_id);
    size_t len = 0;
    if (st == TETHER_OK)
        st = tether_dps_username(cfg->id_scope, cfg->registration_id, NULL, s->username,
                                 sizeof s->username - 1, &len);
    if (st != TETHER_OK)
        return st;
    s->username[len] = 0;
    if (cfg->sas_key != NULL && !tether_clock_is_set(tether_clock_unix_s()))
        return TETHER_CLOCK_NOT_SET; /* A token's expiry means nothing on an unset clock. */

    st = tether_session_mqtt_init(&s->mqtt, s->tx, sizeof s->tx, s->rx, sizeof s->rx, s->store,
                                  sizeof s->store, s->slots, sizeof s->slots / sizeof s->slots[0],
                                  on_message, s);
    if (st != TETHER_OK)
        return st;

    tether_dps_progress *p = &s->progress; /* each event's details; report() clears them */
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
        if (!connected) {
            p->attempt = attempt;
            report(s, TETHER_DPS_EVENT_CONNECTING);
            st = open_connection(s, tls);
            connected = st == TETHER_OK;
            if (connected && attempt > 0)
                result->reconnects++;
        }
        if (connected) {
            st = send_request(s);
            if (st == TETHER_OK) {
                report(s, result->operation_id[0] ? TETHER_DPS_EVENT_POLLING
                                                  : TETHER_DPS_EVENT_REGISTERING);
                uint64_t left = deadline - tether_port_now_ms();
                uint32_t wait =
                    cfg->response_timeout_ms < left ? cfg->response_timeout_ms : (uint32_t)left;
                st = pump(s, wait, true, &connected);
            }
        }
        bool server_delay = false, retry = true;
        if (st == TETHER_OK) {
            p->http_status = s->response.status;
            p->operation = result->operation;
            report(s, TETHER_DPS_EVENT_RESPONSE);
            uint16_t code = s->response.status;
            /* retry-after=0 is no advice: the default interval or the backoff applies. */
            server_delay = s->response.has_retry_after && s->response.retry_after_s > 0;
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
                uint64_t asked = (uint64_t)s->response.retry_after_s * 1000u;
                delay = !server_delay        ? cfg->default_poll_ms
                        : asked > UINT32_MAX ? UINT32_MAX
                                             : (uint32_t)asked;
                attempt = 0;
                retry = false;
            } else if (!tether_dps_response_is_retriable(code)) {
                st = code == 401 ? TETHER_DPS_UNAUTHORIZED : TETHER_DPS_REQUEST_REFUSED;
                break;
            }
        } else if (tether_status_is_transient(st) || st == TETHER_TIMEOUT) {
            /* The connection failed or went quiet: start again on a new one. */
            last_failure = st;
            p->cause = st;
            report(s, TETHER_DPS_EVENT_CONNECTION_LOST);
            if (connected) {
                tether_mqtt_client_connection_lost(&s->mqtt);
                tether_tls_close(tls);
                connected = false;
            }
        } else {
            break; /* Credentials, configuration, a refusal: retrying cannot help. */
        }
        if (retry) { /* 429 or 5xx (honouring retry-after), or a lost connection */
            tether_backoff_step step = {.attempt = attempt++,
                                        .previous_ms = previous_delay,
                                        .random = tether_session_random32(),
                                        .has_retry_after = server_delay,
                                        .retry_after_s = s->response.retry_after_s};
            delay = tether_backoff_delay_ms(&cfg->backoff, &step);
        }
        if (delay < TETHER_DPS_MIN_REQUEST_INTERVAL_MS)
            delay = TETHER_DPS_MIN_REQUEST_INTERVAL_MS; /* DPS: at most 5 requests in 10 s */
        previous_delay = delay;
        uint64_t now = tether_port_now_ms();
        bool past_deadline = now + delay > deadline;
        if (past_deadline && !server_delay) /* our own backoff: wait what is left */
            delay = now < deadline ? (uint32_t)(deadline - now) : 0;
        p->wait_ms = delay;
        p->server_retry_after = server_delay;
        p->cause = st;
        p->attempt = attempt;
        report(s, TETHER_DPS_EVENT_WAITING);
        if (past_deadline && server_delay) {
            /* Asking again sooner would not be honouring it; waiting would only fail later. */
            snprintf(result->error_message, sizeof result->error_message,
                     "DPS asked to retry after %u s, past the deadline (%u s left)",
                     (unsigned)s->response.retry_after_s,
                     (unsigned)(now < deadline ? (deadline - now) / 1000u : 0u));
            st = TETHER_DPS_DEADLINE_EXCEEDED;
            break;
        }
        (void)pump(s, delay, false, &connected);
        if (!connected)
            tether_tls_close(tls);
    }
    if (connected) {
        tether_mqtt_client_disconnect(&s->mqtt);
        tether_tls_close(tls);
    }
    result->elapsed_ms = elapsed(s);
    return st;
}
