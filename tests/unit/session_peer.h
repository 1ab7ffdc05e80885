/* The scripted port of the session tests: a clock and a sleep the test drives, and a TLS layer
 * that "connects" to a small MQTT server in memory whose behaviour each test programs. Link-time
 * replacement: this file defines every tether_port_* function of port.h and the few
 * tether_tls_* and tether_sas_* functions the sessions call, so the sessions' real code runs
 * against it unchanged. Include it from exactly one file of a test executable.
 *
 * Time passes only when the session waits: tether_port_sleep_ms() moves the clock (and counts
 * what was slept), and a receive that finds nothing moves it by the I/O timeout the session
 * set, as a real socket wait would. Every connection attempt and every PUBLISH the device sent
 * is recorded with its time, for the tests to assert counts and intervals. */
#ifndef SESSION_PEER_H
#define SESSION_PEER_H

#include <stdio.h>
#include <string.h>

#include "tether/port.h"
#include "tether/sas.h"
#include "tether/tls.h"

/* --- what the test programs ---------------------------------------------------------------- */

typedef struct server_script {
    tether_status refuse_connect; /* not TETHER_OK: every TLS connect fails with it */
    uint8_t connack;              /* CONNACK return code */
    /* Close the connection this long after CONNACK (once the device is idle); 0: never. */
    uint64_t close_after_ms;
    bool close_at_connack; /* close right after an accepting CONNACK, before SUBACK */
    bool silent_pings;     /* never answer PINGREQ */
    /* The server's answer to a PUBLISH from the device: queue it with peer_publish(). */
    void (*on_publish)(const char *topic, const uint8_t *payload, size_t len);
} server_script;

static server_script S;

/* --- what the test observes ------------------------------------------------------------------ */

#define PEER_MAX_RECORDS 1024
static uint64_t clock_ms = 1000000;
static uint64_t slept_ms; /* waited through tether_port_sleep_ms() */
static uint64_t connect_at[PEER_MAX_RECORDS];
static size_t connects; /* TLS connection attempts */
static size_t connacks; /* CONNACKs sent */
typedef struct request_record {
    uint64_t at;
    char topic[200];
    size_t payload_len;
} request_record;
static request_record requests[PEER_MAX_RECORDS];
static size_t nrequests;     /* PUBLISH packets from the device */
static uint16_t pubacks[64]; /* packet ids the device acknowledged */
static size_t npubacks;
static size_t pingreqs;

/* --- the connection ----------------------------------------------------------------------------
 */

typedef struct peer {
    bool open;    /* the device has it open */
    bool closing; /* the server closes it once its queued bytes are read */
    uint64_t close_at;
    uint8_t to_client[32768];
    size_t to_len, to_pos;
    uint8_t from_client[8192];
    size_t from_len;
} peer;

static peer P;
static uint32_t io_timeout_ms = 200;
static uint32_t rand_state = 12345u;

static void peer_reset_all(void)
{
    memset(&S, 0, sizeof S);
    memset(&P, 0, sizeof P);
    clock_ms = 1000000;
    slept_ms = 0;
    connects = connacks = nrequests = npubacks = pingreqs = 0;
    io_timeout_ms = 200;
    rand_state = 12345u;
}

static void peer_queue(const uint8_t *b, size_t n)
{
    assert_true(P.to_len + n <= sizeof P.to_client);
    memcpy(P.to_client + P.to_len, b, n);
    P.to_len += n;
}

/* A remaining-length field; returns its size. */
static size_t put_length(uint8_t *out, size_t len)
{
    size_t i = 0;
    do {
        uint8_t b = (uint8_t)(len % 128u);
        len /= 128u;
        out[i++] = (uint8_t)(len ? b | 0x80u : b);
    } while (len);
    return i;
}

/* A PUBLISH from the server; qos 1 with the packet id, else qos 0. */
static void peer_publish_qos(const char *topic, const uint8_t *payload, size_t len, uint8_t qos,
                             uint16_t id)
{
    size_t tl = strlen(topic);
    size_t rem = 2 + tl + (qos ? 2 : 0) + len;
    uint8_t h[5];
    h[0] = (uint8_t)(0x30u | (qos ? 0x02u : 0u));
    size_t hl = 1 + put_length(h + 1, rem);
    peer_queue(h, hl);
    uint8_t tlen[2] = {(uint8_t)(tl >> 8), (uint8_t)tl};
    peer_queue(tlen, 2);
    peer_queue((const uint8_t *)topic, tl);
    if (qos) {
        uint8_t pid[2] = {(uint8_t)(id >> 8), (uint8_t)id};
        peer_queue(pid, 2);
    }
    if (len)
        peer_queue(payload, len);
}

static void peer_publish(const char *topic, const char *payload)
{
    peer_publish_qos(topic, (const uint8_t *)payload, strlen(payload), 0, 0);
}

/* The value of "$rid=" in a topic (digits), or "" */
static const char *topic_rid(const char *topic, char *out, size_t cap)
{
    const char *r = strstr(topic, "$rid=");
    size_t n = 0;
    if (r)
        for (r += 5; r[n] && r[n] != '&' && n + 1 < cap; n++)
            out[n] = r[n];
    out[n] = 0;
    return out;
}

/* Handles every complete packet the device sent. */
static void server_handle(void)
{
    for (;;) {
        if (P.from_len < 2)
            return;
        size_t rem = 0, mult = 1, h = 1;
        while (h < P.from_len && (P.from_client[h] & 0x80u)) {
            rem += (size_t)(P.from_client[h] & 0x7Fu) * mult;
            mult *= 128u;
            h++;
        }
        if (h >= P.from_len)
            return;
        rem += (size_t)(P.from_client[h] & 0x7Fu) * mult;
        h++;
        if (P.from_len < h + rem)
            return;
        const uint8_t *b = P.from_client;
        uint8_t type = (uint8_t)(b[0] >> 4);
        if (type == 1) { /* CONNECT */
            uint8_t ack[4] = {0x20, 0x02, 0x00, S.connack};
            peer_queue(ack, 4);
            connacks++;
            if (S.connack != 0 || S.close_at_connack)
                P.closing = true;
            else if (S.close_after_ms)
                P.close_at = clock_ms + S.close_after_ms;
        } else if (type == 8) { /* SUBSCRIBE: grant each filter at the QoS asked */
            uint8_t ack[16] = {0x90, 0, b[h], b[h + 1]};
            size_t n = 4, at = h + 2;
            while (at + 2 < h + rem && n < sizeof ack) {
                size_t fl = (size_t)b[at] << 8 | b[at + 1];
                ack[n++] = b[at + 2 + fl];
                at += 3 + fl;
            }
            ack[1] = (uint8_t)(n - 2);
            peer_queue(ack, n);
        } else if (type == 3) { /* PUBLISH */
            size_t tl = (size_t)b[h] << 8 | b[h + 1];
            uint8_t qos = (uint8_t)((b[0] >> 1) & 3u);
            if (nrequests >= PEER_MAX_RECORDS)
                fail_msg("runaway: more than %d requests", PEER_MAX_RECORDS);
            request_record *r = &requests[nrequests++];
            size_t copy = tl < sizeof r->topic - 1 ? tl : sizeof r->topic - 1;
            memcpy(r->topic, b + h + 2, copy);
            r->topic[copy] = 0;
            r->at = clock_ms;
            size_t body = h + 2 + tl + (qos ? 2u : 0u);
            r->payload_len = h + rem - body;
            if (qos) {
                uint8_t ack[4] = {0x40, 0x02, b[h + 2 + tl], b[h + 3 + tl]};
                peer_queue(ack, 4);
            }
            if (S.on_publish)
                S.on_publish(r->topic, b + body, r->payload_len);
        } else if (type == 4) { /* PUBACK */
            if (npubacks < 64)
                pubacks[npubacks++] = (uint16_t)(b[h] << 8 | b[h + 1]);
        } else if (type == 12) { /* PINGREQ */
            pingreqs++;
            if (!S.silent_pings) {
                uint8_t resp[2] = {0xD0, 0x00};
                peer_queue(resp, 2);
            }
        } else if (type == 14) { /* DISCONNECT */
            P.closing = true;
        }
        memmove(P.from_client, P.from_client + h + rem, P.from_len - h - rem);
        P.from_len -= h + rem;
    }
}

static int32_t peer_send(void *ctx, const uint8_t *buf, size_t len)
{
    (void)ctx;
    if (!P.open || (P.closing && P.to_pos == P.to_len))
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    assert_true(P.from_len + len <= sizeof P.from_client);
    memcpy(P.from_client + P.from_len, buf, len);
    P.from_len += len;
    clock_ms += 1; /* the network is not instant: a loop that only sends still moves time */
    server_handle();
    return (int32_t)len;
}

static int32_t peer_recv(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    if (!P.open)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    if (P.to_pos == P.to_len) {
        P.to_pos = P.to_len = 0;
        if (P.close_at && clock_ms >= P.close_at)
            P.closing = true;
        if (P.closing)
            return tether_transport_error(TETHER_CONNECTION_CLOSED);
        clock_ms += io_timeout_ms ? io_timeout_ms : 1; /* a wait on the socket takes time */
        return 0;
    }
    size_t n = P.to_len - P.to_pos;
    if (n > len)
        n = len;
    memcpy(buf, P.to_client + P.to_pos, n);
    P.to_pos += n;
    return (int32_t)n;
}

/* --- the replaced functions --------------------------------------------------------------------
 */

tether_tls_options tether_tls_options_default(void)
{
    tether_tls_options o;
    memset(&o, 0, sizeof o);
    return o;
}

tether_status tether_tls_connect(tether_tls *tls, const tether_tls_options *opts)
{
    (void)tls;
    (void)opts;
    if (connects >= PEER_MAX_RECORDS)
        fail_msg("runaway: more than %d connection attempts", PEER_MAX_RECORDS);
    connect_at[connects++] = clock_ms;
    if (S.refuse_connect != TETHER_OK)
        return S.refuse_connect;
    memset(&P, 0, sizeof P);
    P.open = true;
    return TETHER_OK;
}

void tether_tls_set_io_timeout(tether_tls *tls, uint32_t ms)
{
    (void)tls;
    io_timeout_ms = ms;
}

tether_transport tether_tls_transport(tether_tls *tls)
{
    (void)tls;
    return (tether_transport){.send = peer_send, .recv = peer_recv, .context = &P};
}

void tether_tls_close(tether_tls *tls)
{
    (void)tls;
    P.open = false;
}

static tether_status fake_token(char *buf, size_t cap, size_t *out_len)
{
    static const char t[] = "SharedAccessSignature sr=test&sig=x&se=1";
    if (cap < sizeof t)
        return TETHER_BUFFER_TOO_SMALL;
    memcpy(buf, t, sizeof t);
    *out_len = sizeof t - 1;
    return TETHER_OK;
}

tether_status tether_sas_dps_token(const char *id_scope, const char *registration_id,
                                   const char *key_base64, uint64_t expiry, char *buf, size_t cap,
                                   size_t *out_len)
{
    (void)id_scope;
    (void)registration_id;
    (void)key_base64;
    (void)expiry;
    return fake_token(buf, cap, out_len);
}

tether_status tether_sas_hub_token(const tether_hub_identity *id, const char *key_base64,
                                   uint64_t expiry, char *buf, size_t cap, size_t *out_len)
{
    (void)id;
    (void)key_base64;
    (void)expiry;
    return fake_token(buf, cap, out_len);
}

uint64_t tether_port_now_ms(void)
{
    return clock_ms;
}

int64_t tether_port_wall_ms(void)
{
    return 1900000000000 + (int64_t)clock_ms;
}

void tether_port_sleep_ms(uint32_t ms)
{
    clock_ms += ms;
    slept_ms += ms;
}

tether_status tether_port_entropy(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        rand_state = rand_state * 1103515245u + 12345u;
        buf[i] = (uint8_t)(rand_state >> 16);
    }
    return TETHER_OK;
}

tether_status tether_port_tcp_connect(tether_socket *sock, const char *host, uint16_t port,
                                      uint32_t timeout_ms)
{
    (void)sock;
    (void)host;
    (void)port;
    (void)timeout_ms;
    return TETHER_CONNECT_REFUSED;
}

int32_t tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                             uint32_t timeout_ms)
{
    (void)sock;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return tether_transport_error(TETHER_CONNECTION_CLOSED);
}

int32_t tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    (void)sock;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return tether_transport_error(TETHER_CONNECTION_CLOSED);
}

void tether_port_tcp_close(tether_socket *sock)
{
    (void)sock;
}

tether_status tether_port_udp_exchange(const char *host, uint16_t port, const uint8_t *request,
                                       size_t request_len, uint8_t *reply, size_t reply_cap,
                                       size_t *out_len, uint32_t timeout_ms)
{
    (void)host;
    (void)port;
    (void)request;
    (void)request_len;
    (void)reply;
    (void)reply_cap;
    (void)out_len;
    (void)timeout_ms;
    return TETHER_TIMEOUT;
}

tether_status tether_port_read_file(const char *path, uint8_t *buf, size_t cap, size_t *out_len)
{
    (void)path;
    (void)buf;
    (void)cap;
    (void)out_len;
    return TETHER_FILE_NOT_FOUND;
}

/* --- helpers for assertions ----------------------------------------------------------------- */

/* The most connection attempts in any window of window_ms. */
static inline size_t max_connects_in(uint64_t window_ms)
{
    size_t best = 0, n = connects < PEER_MAX_RECORDS ? connects : PEER_MAX_RECORDS;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        for (size_t j = i; j < n && connect_at[j] < connect_at[i] + window_ms; j++)
            k++;
        if (k > best)
            best = k;
    }
    return best;
}

/* The requests whose topic starts with prefix, their times in at[]. */
static inline size_t requests_to(const char *prefix, uint64_t *at, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < nrequests && i < PEER_MAX_RECORDS; i++)
        if (strncmp(requests[i].topic, prefix, strlen(prefix)) == 0) {
            if (at && n < max)
                at[n] = requests[i].at;
            n++;
        }
    return n;
}

#endif
