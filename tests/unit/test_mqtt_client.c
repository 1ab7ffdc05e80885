/* The MQTT client against a scripted peer: the cases a real Mosquitto will not produce on
 * demand (SUBACK 0x80, a silent server, a stream cut mid-flight) with a clock the test owns. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tether/mqtt.h"

typedef struct peer {
    uint8_t to_client[4096]; /* bytes the client will receive */
    size_t to_len, to_pos;
    uint8_t from_client[8192]; /* bytes the client sent */
    size_t from_len;
    bool closed;       /* recv/send fail as a closed connection */
    size_t recv_chunk; /* deliver at most this many bytes per recv (0 = all) */
} peer;

static peer P;
static uint64_t clock_ms = 1000;

static uint64_t fake_now(void)
{
    return clock_ms;
}

static int32_t peer_send(void *ctx, const uint8_t *buf, size_t len)
{
    peer *p = ctx;
    if (p->closed)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    assert_true(p->from_len + len <= sizeof p->from_client);
    memcpy(p->from_client + p->from_len, buf, len);
    p->from_len += len;
    return (int32_t)len;
}

static int32_t peer_recv(void *ctx, uint8_t *buf, size_t len)
{
    peer *p = ctx;
    if (p->to_pos == p->to_len) {
        if (p->closed)
            return tether_transport_error(TETHER_CONNECTION_CLOSED);
        clock_ms += 100; /* a recv that waits costs time, as a real one does */
        return 0;
    }
    size_t n = p->to_len - p->to_pos;
    if (n > len)
        n = len;
    if (p->recv_chunk && n > p->recv_chunk)
        n = p->recv_chunk;
    memcpy(buf, p->to_client + p->to_pos, n);
    p->to_pos += n;
    return (int32_t)n;
}

static void queue(const uint8_t *bytes, size_t len)
{
    memcpy(P.to_client + P.to_len, bytes, len);
    P.to_len += len;
}

static void queue_connack(uint8_t code)
{
    uint8_t b[4] = {0x20, 0x02, 0x00, code};
    queue(b, sizeof b);
}

static uint8_t tx[512], rx[256], store[512];
static tether_mqtt_inflight slots[4];
static tether_mqtt_client client;
static int messages;
static char last_payload[64];

static void on_message(void *ctx, const tether_mqtt_publish *m)
{
    (void)ctx;
    messages++;
    size_t n = m->payload_len < sizeof last_payload - 1 ? m->payload_len : sizeof last_payload - 1;
    memcpy(last_payload, m->payload, n);
    last_payload[n] = 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&P, 0, sizeof P);
    messages = 0;
    clock_ms = 1000;
    tether_mqtt_config cfg = tether_mqtt_config_default();
    cfg.transport = (tether_transport){.send = peer_send, .recv = peer_recv, .context = &P};
    cfg.tx_buf = tx;
    cfg.tx_len = sizeof tx;
    cfg.rx_buf = rx;
    cfg.rx_len = sizeof rx;
    cfg.store_buf = store;
    cfg.store_len = sizeof store;
    cfg.inflight = slots;
    cfg.inflight_max = 4;
    cfg.on_message = on_message;
    cfg.now_ms = fake_now;
    assert_int_equal(tether_mqtt_client_init(&client, &cfg), TETHER_OK);
    return 0;
}

static tether_status connect_with(uint16_t keep_alive)
{
    tether_mqtt_connect_opts o = {
        .client_id = "dev", .client_id_len = 3, .clean_session = true, .keep_alive_s = keep_alive};
    return tether_mqtt_client_connect(&client, &o, 5000, NULL);
}

/* The type of each packet the client sent, in order. */
static size_t sent_types(uint8_t *types, size_t max)
{
    size_t n = 0, pos = 0;
    while (pos < P.from_len && n < max) {
        tether_mqtt_packet p;
        size_t used;
        assert_int_equal(tether_mqtt_decode(P.from_client + pos, P.from_len - pos, &p, &used),
                         TETHER_OK);
        types[n++] = (uint8_t)p.type;
        pos += used;
    }
    return n;
}

static void connack_codes_are_named(void **state)
{
    const tether_status want[] = {TETHER_OK,
                                  TETHER_MQTT_CONNACK_PROTOCOL_VERSION,
                                  TETHER_MQTT_CONNACK_IDENTIFIER_REJECTED,
                                  TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE,
                                  TETHER_MQTT_CONNACK_BAD_CREDENTIALS,
                                  TETHER_MQTT_CONNACK_NOT_AUTHORIZED};
    for (uint8_t code = 0; code <= 5; code++) {
        setup(state);
        queue_connack(code);
        assert_int_equal(connect_with(60), want[code]);
    }
}

static void silent_server_times_out_connack(void **state)
{
    (void)state;
    assert_int_equal(connect_with(60), TETHER_MQTT_CONNACK_TIMEOUT);
}

static void suback_failure_is_detected(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    /* SUBACK for packet id 1: first filter granted QoS 1, second refused. */
    uint8_t suback[] = {0x90, 0x04, 0x00, 0x01, 0x01, 0x80};
    queue(suback, sizeof suback);
    tether_mqtt_filter f[2] = {{"a/b", 3, 1}, {"c/d", 3, 1}};
    uint8_t granted[2] = {0xEE, 0xEE};
    assert_int_equal(tether_mqtt_client_subscribe(&client, f, 2, 5000, granted),
                     TETHER_MQTT_SUBSCRIBE_REFUSED);
    assert_int_equal(granted[0], 1);
    assert_int_equal(granted[1], 0x80);
}

static void qos1_is_kept_until_puback_and_resent_with_dup(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    tether_mqtt_publish m = {.topic = "t",
                             .topic_len = 1,
                             .payload = (const uint8_t *)"one",
                             .payload_len = 3,
                             .qos = 1};
    uint16_t id1 = 0, id2 = 0;
    assert_int_equal(tether_mqtt_client_publish(&client, &m, &id1), TETHER_OK);
    m.payload = (const uint8_t *)"two";
    assert_int_equal(tether_mqtt_client_publish(&client, &m, &id2), TETHER_OK);
    assert_int_not_equal(id1, id2);
    assert_int_equal(tether_mqtt_client_inflight_count(&client), 2);

    /* The broker acknowledges the first, then the connection drops. */
    uint8_t puback[] = {0x40, 0x02, (uint8_t)(id1 >> 8), (uint8_t)id1};
    queue(puback, sizeof puback);
    assert_int_equal(tether_mqtt_client_process(&client, 0), TETHER_OK);
    assert_int_equal(tether_mqtt_client_inflight_count(&client), 1);
    P.closed = true;
    assert_int_equal(tether_mqtt_client_process(&client, 0), TETHER_CONNECTION_CLOSED);

    /* Reconnect: the second message goes again, DUP set, same id. */
    memset(&P, 0, sizeof P);
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    uint8_t types[4];
    assert_int_equal(sent_types(types, 4), 2);
    assert_int_equal(types[0], TETHER_MQTT_CONNECT);
    assert_int_equal(types[1], TETHER_MQTT_PUBLISH);
    tether_mqtt_packet p;
    size_t used, connect_len = (size_t)P.from_client[1] + 2;
    assert_int_equal(
        tether_mqtt_decode(P.from_client + connect_len, P.from_len - connect_len, &p, &used),
        TETHER_OK);
    assert_true(p.u.publish.dup);
    assert_int_equal(p.packet_id, id2);
    assert_memory_equal(p.u.publish.payload, "two", 3);
    assert_int_equal(tether_mqtt_client_get_stats(&client)->resends, 1);
}

static void publish_while_offline_is_queued(void **state)
{
    (void)state;
    tether_mqtt_publish m = {
        .topic = "t", .topic_len = 1, .payload = (const uint8_t *)"x", .payload_len = 1, .qos = 1};
    assert_int_equal(tether_mqtt_client_publish(&client, &m, NULL), TETHER_OK);
    m.qos = 0;
    assert_int_equal(tether_mqtt_client_publish(&client, &m, NULL), TETHER_MQTT_NOT_CONNECTED);
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    uint8_t types[4];
    assert_int_equal(sent_types(types, 4), 2); /* CONNECT, then the queued PUBLISH */
    assert_int_equal(types[1], TETHER_MQTT_PUBLISH);
}

static void full_store_says_so_and_sends_nothing(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    tether_mqtt_publish m = {
        .topic = "t", .topic_len = 1, .payload = (const uint8_t *)"x", .payload_len = 1, .qos = 1};
    for (int i = 0; i < 4; i++)
        assert_int_equal(tether_mqtt_client_publish(&client, &m, NULL), TETHER_OK);
    size_t before = P.from_len;
    assert_int_equal(tether_mqtt_client_publish(&client, &m, NULL), TETHER_MQTT_INFLIGHT_FULL);
    assert_int_equal(P.from_len, before);
    /* A message that can never fit the store names the size it needs. */
    static uint8_t big[600];
    m.payload = big;
    m.payload_len = sizeof big;
    assert_int_equal(tether_mqtt_client_publish(&client, &m, NULL), TETHER_BUFFER_TOO_SMALL);
    /* header byte, 2-byte remaining length, topic length + "t", packet id, payload */
    assert_int_equal(tether_mqtt_client_last_needed(&client), 1 + 2 + (2 + 1 + 2 + 600));
}

static void incoming_qos1_is_delivered_and_acknowledged(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    uint8_t pub[] = {0x32, 0x08, 0x00, 0x01, 'c', 0x00, 0x07, 'h', 'e', 'y'};
    P.recv_chunk = 3; /* arrives in pieces */
    queue(pub, sizeof pub);
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_OK);
    assert_int_equal(messages, 1);
    assert_string_equal(last_payload, "hey");
    uint8_t types[4];
    assert_int_equal(sent_types(types, 4), 2);
    assert_int_equal(types[1], TETHER_MQTT_PUBACK);
    assert_int_equal(P.from_client[P.from_len - 1], 7);
}

static void oversized_packet_is_discarded_and_the_stream_goes_on(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    /* A 300-byte PUBLISH (QoS 0) into a 256-byte buffer, then a small one. */
    uint8_t big[303] = {0x30, 0xAC, 0x02, 0x00, 0x01, 'b'};
    queue(big, sizeof big);
    uint8_t small[] = {0x30, 0x05, 0x00, 0x01, 's', 'o', 'k'};
    queue(small, sizeof small);
    P.recv_chunk = 100;
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_MQTT_PACKET_TOO_LARGE);
    assert_int_equal(tether_mqtt_client_last_needed(&client), 303);
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_OK);
    assert_int_equal(messages, 1);
    assert_string_equal(last_payload, "ok");
    assert_int_equal(tether_mqtt_client_get_stats(&client)->packets_discarded, 1);
}

static void oversized_qos1_message_is_acknowledged_once_skipped(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    /* A 300-byte QoS 1 PUBLISH (topic "b", packet id 0x1234) into a 256-byte buffer. */
    uint8_t big[303] = {0x32, 0xAC, 0x02, 0x00, 0x01, 'b', 0x12, 0x34};
    queue(big, sizeof big);
    P.recv_chunk = 100;
    size_t before = P.from_len;
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_MQTT_PACKET_TOO_LARGE);
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_OK);
    assert_int_equal(messages, 0); /* dropped, not delivered */
    /* One PUBACK for it, after its last byte, and nothing else. */
    assert_int_equal(P.from_len, before + 4);
    const uint8_t puback[] = {0x40, 0x02, 0x12, 0x34};
    assert_memory_equal(P.from_client + before, puback, 4);
    assert_int_equal(tether_mqtt_client_get_stats(&client)->discarded_acknowledged, 1);
    /* A QoS 0 one is not acknowledged. */
    uint8_t big0[303] = {0x30, 0xAC, 0x02, 0x00, 0x01, 'b'};
    queue(big0, sizeof big0);
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_MQTT_PACKET_TOO_LARGE);
    assert_int_equal(tether_mqtt_client_process(&client, 1000), TETHER_OK);
    assert_int_equal(P.from_len, before + 4);
}

static void keepalive_pings_and_detects_a_dead_link(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(2), TETHER_OK);
    size_t before = P.from_len;
    /* 2 s of silence: a PINGREQ goes out. */
    assert_int_equal(tether_mqtt_client_process(&client, 2100), TETHER_OK);
    assert_int_equal(P.from_len, before + 2);
    assert_int_equal(P.from_client[before], 0xC0);
    /* The PINGRESP arrives: all well; then nothing answers the next ping. */
    uint8_t pingresp[] = {0xD0, 0x00};
    queue(pingresp, sizeof pingresp);
    assert_int_equal(tether_mqtt_client_process(&client, 100), TETHER_OK);
    assert_int_equal(tether_mqtt_client_process(&client, 10000), TETHER_MQTT_KEEPALIVE_TIMEOUT);
    assert_int_equal(tether_mqtt_client_process(&client, 0), TETHER_MQTT_NOT_CONNECTED);
}

static void malformed_input_ends_the_connection(void **state)
{
    (void)state;
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    uint8_t junk[] = {0x40, 0x03, 0x00, 0x01, 0x00}; /* PUBACK with remaining length 3 */
    queue(junk, sizeof junk);
    assert_int_equal(tether_mqtt_client_process(&client, 100), TETHER_MQTT_MALFORMED);
    uint8_t unexpected[] = {0x10, 0x00}; /* a CONNECT from the server */
    setup(state);
    queue_connack(0);
    assert_int_equal(connect_with(60), TETHER_OK);
    queue(unexpected, sizeof unexpected);
    assert_int_not_equal(tether_mqtt_client_process(&client, 100), TETHER_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(connack_codes_are_named, setup),
        cmocka_unit_test_setup(silent_server_times_out_connack, setup),
        cmocka_unit_test_setup(suback_failure_is_detected, setup),
        cmocka_unit_test_setup(qos1_is_kept_until_puback_and_resent_with_dup, setup),
        cmocka_unit_test_setup(publish_while_offline_is_queued, setup),
        cmocka_unit_test_setup(full_store_says_so_and_sends_nothing, setup),
        cmocka_unit_test_setup(incoming_qos1_is_delivered_and_acknowledged, setup),
        cmocka_unit_test_setup(oversized_packet_is_discarded_and_the_stream_goes_on, setup),
        cmocka_unit_test_setup(oversized_qos1_message_is_acknowledged_once_skipped, setup),
        cmocka_unit_test_setup(keepalive_pings_and_detects_a_dead_link, setup),
        cmocka_unit_test_setup(malformed_input_ends_the_connection, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
