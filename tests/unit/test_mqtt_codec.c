/* Unit tests of the MQTT 3.1.1 codec: round trips, exact bytes, the sizing contract, partial
 * input and every rule of strict decoding. Decoded inputs live in heap blocks of exactly their
 * size so that AddressSanitizer catches any read past len. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tether/mqtt_codec.h"

#define CANARY      0xA5u
#define CANARY_SPAN 16u

/* ---- helpers ------------------------------------------------------------------------------ */

/* An exact-size heap copy (never zero-sized, so malloc cannot return NULL for an empty one). */
static uint8_t *heap_copy(const uint8_t *bytes, size_t len)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    assert_non_null(p);
    if (len > 0)
        memcpy(p, bytes, len);
    return p;
}

static tether_status decode_copy(const uint8_t *bytes, size_t len, tether_mqtt_packet *pkt,
                                 size_t *consumed)
{
    uint8_t *p = heap_copy(bytes, len);
    tether_status st = tether_mqtt_decode(p, len, pkt, consumed);
    free(p);
    return st;
}

/* Status of decoding raw bytes (views into the copy are not used afterwards). */
static tether_status decode_status(const uint8_t *bytes, size_t len)
{
    tether_mqtt_packet pkt;
    size_t consumed = 99;
    return decode_copy(bytes, len, &pkt, &consumed);
}

#define DECODE_STATUS(arr)    decode_status((arr), sizeof(arr))
#define assert_malformed(arr) assert_int_equal(DECODE_STATUS(arr), TETHER_MQTT_MALFORMED)

/* Every strict prefix of a valid packet is "incomplete", with the needed size once the fixed
 * header is in. */
static void assert_all_prefixes_block(const uint8_t *bytes, size_t len)
{
    uint8_t first;
    uint32_t remaining;
    size_t header_len;
    assert_int_equal(tether_mqtt_decode_fixed_header(bytes, len, &first, &remaining, &header_len),
                     TETHER_OK);
    assert_int_equal(header_len + remaining, len);
    for (size_t cut = 0; cut < len; cut++) {
        tether_mqtt_packet pkt;
        size_t consumed = 12345;
        assert_int_equal(decode_copy(bytes, cut, &pkt, &consumed), TETHER_WOULD_BLOCK);
        assert_int_equal(consumed, cut < header_len ? 0 : len);
    }
}

/* Decodes a valid packet from @p bytes (which the packet must fill exactly), checks every
 * prefix, and checks that a following packet is not consumed. @p pkt views into @p bytes. */
static void decode_valid(const uint8_t *bytes, size_t len, tether_mqtt_packet *pkt)
{
    assert_all_prefixes_block(bytes, len);

    /* Followed by a PINGREQ: only the first packet is consumed. */
    uint8_t *two = malloc(len + 2);
    assert_non_null(two);
    memcpy(two, bytes, len);
    two[len] = 0xC0;
    two[len + 1] = 0x00;
    size_t consumed = 0;
    tether_mqtt_packet first;
    assert_int_equal(tether_mqtt_decode(two, len + 2, &first, &consumed), TETHER_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(tether_mqtt_decode(two + len, 2, &first, &consumed), TETHER_OK);
    assert_int_equal(first.type, TETHER_MQTT_PINGREQ);
    assert_int_equal(consumed, 2);
    free(two);

    consumed = 0;
    assert_int_equal(tether_mqtt_decode(bytes, len, pkt, &consumed), TETHER_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(pkt->type, bytes[0] >> 4);
    assert_int_equal(pkt->flags, bytes[0] & 0x0F);
}

/* One calling convention for all encoders, so the sizing contract is checked on each. */
typedef tether_status (*encode_fn)(const void *arg, uint8_t *buf, size_t cap, size_t *out_len);

/* Encodes into @p buf with the whole sizing contract checked: NULL gives the size, one byte
 * short writes nothing, exact and generous capacities give the same bytes, and nothing past
 * the packet is touched. Returns the packet size. */
static size_t encode_checked(encode_fn enc, const void *arg, uint8_t *buf, size_t bufsize)
{
    size_t need = 777;
    assert_int_equal(enc(arg, NULL, 0, &need), TETHER_BUFFER_TOO_SMALL);
    assert_true(need >= 2);
    assert_true(need + CANARY_SPAN <= bufsize);

    size_t len = 0;
    assert_int_equal(enc(arg, NULL, need, &len), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(len, need);

    memset(buf, CANARY, bufsize);
    len = 0;
    assert_int_equal(enc(arg, buf, need - 1, &len), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(len, need);
    for (size_t i = 0; i < bufsize; i++)
        assert_int_equal(buf[i], CANARY);

    len = 0;
    assert_int_equal(enc(arg, buf, bufsize, &len), TETHER_OK);
    assert_int_equal(len, need);
    uint8_t *roomy = heap_copy(buf, need);

    memset(buf, CANARY, bufsize);
    len = 0;
    assert_int_equal(enc(arg, buf, need, &len), TETHER_OK);
    assert_int_equal(len, need);
    assert_memory_equal(buf, roomy, need);
    for (size_t i = need; i < bufsize; i++)
        assert_int_equal(buf[i], CANARY);
    free(roomy);
    return need;
}

static tether_status enc_connect(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    return tether_mqtt_encode_connect(arg, buf, cap, out_len);
}

static tether_status enc_publish(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    return tether_mqtt_encode_publish(arg, buf, cap, out_len);
}

typedef struct connack_arg {
    bool session_present;
    uint8_t code;
} connack_arg;

static tether_status enc_connack(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const connack_arg *a = arg;
    return tether_mqtt_encode_connack(a->session_present, a->code, buf, cap, out_len);
}

typedef struct ack_arg {
    tether_mqtt_type type;
    uint16_t id;
} ack_arg;

static tether_status enc_ack(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const ack_arg *a = arg;
    return tether_mqtt_encode_ack(a->type, a->id, buf, cap, out_len);
}

static tether_status enc_empty(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const ack_arg *a = arg;
    return tether_mqtt_encode_empty(a->type, buf, cap, out_len);
}

typedef struct filters_arg {
    uint16_t id;
    const tether_mqtt_filter *filters;
    size_t count;
} filters_arg;

static tether_status enc_subscribe(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const filters_arg *a = arg;
    return tether_mqtt_encode_subscribe(a->id, a->filters, a->count, buf, cap, out_len);
}

static tether_status enc_unsubscribe(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const filters_arg *a = arg;
    return tether_mqtt_encode_unsubscribe(a->id, a->filters, a->count, buf, cap, out_len);
}

typedef struct suback_arg {
    uint16_t id;
    const uint8_t *codes;
    size_t count;
} suback_arg;

static tether_status enc_suback(const void *arg, uint8_t *buf, size_t cap, size_t *out_len)
{
    const suback_arg *a = arg;
    return tether_mqtt_encode_suback(a->id, a->codes, a->count, buf, cap, out_len);
}

static void assert_view(const void *view, size_t view_len, const void *expected, size_t len)
{
    assert_int_equal(view_len, len);
    assert_non_null(view);
    if (len > 0)
        assert_memory_equal(view, expected, len);
}

#define S(lit) (lit), (sizeof(lit) - 1)

/* ---- remaining length and fixed header ---------------------------------------------------- */

static const struct {
    uint32_t value;
    size_t len;
    uint8_t bytes[4];
} rl_cases[] = {
    {0, 1, {0x00}},
    {127, 1, {0x7F}},
    {128, 2, {0x80, 0x01}},
    {16383, 2, {0xFF, 0x7F}},
    {16384, 3, {0x80, 0x80, 0x01}},
    {2097151, 3, {0xFF, 0xFF, 0x7F}},
    {2097152, 4, {0x80, 0x80, 0x80, 0x01}},
    {268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
};

static void test_remaining_length_boundaries(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rl_cases / sizeof rl_cases[0]; i++) {
        uint8_t out[8];
        memset(out, CANARY, sizeof out);
        size_t n = 0;
        assert_int_equal(tether_mqtt_encode_remaining_length(rl_cases[i].value, out, &n),
                         TETHER_OK);
        assert_int_equal(n, rl_cases[i].len);
        assert_memory_equal(out, rl_cases[i].bytes, n);
        for (size_t k = n; k < sizeof out; k++)
            assert_int_equal(out[k], CANARY);

        /* The fixed header reads it back, and blocks on every shorter prefix. */
        uint8_t hdr[5] = {0x30};
        memcpy(hdr + 1, rl_cases[i].bytes, n);
        uint8_t first = 0;
        uint32_t remaining = 1;
        size_t header_len = 0;
        assert_int_equal(
            tether_mqtt_decode_fixed_header(hdr, 1 + n, &first, &remaining, &header_len),
            TETHER_OK);
        assert_int_equal(first, 0x30);
        assert_int_equal(remaining, rl_cases[i].value);
        assert_int_equal(header_len, 1 + n);
        for (size_t cut = 0; cut < 1 + n; cut++) {
            uint8_t *p = heap_copy(hdr, cut);
            assert_int_equal(
                tether_mqtt_decode_fixed_header(p, cut, &first, &remaining, &header_len),
                TETHER_WOULD_BLOCK);
            free(p);
        }

        /* The packet decoder reports the full size it needs (without the body present). */
        tether_mqtt_packet pkt;
        size_t consumed = 0;
        tether_status want = rl_cases[i].value == 0 ? TETHER_MQTT_MALFORMED : TETHER_WOULD_BLOCK;
        assert_int_equal(decode_copy(hdr, 1 + n, &pkt, &consumed), want);
        if (want == TETHER_WOULD_BLOCK)
            assert_int_equal(consumed, 1 + n + rl_cases[i].value);
    }
}

static void test_remaining_length_too_large(void **state)
{
    (void)state;
    uint8_t out[8];
    memset(out, CANARY, sizeof out);
    size_t n = 99;
    assert_int_equal(tether_mqtt_encode_remaining_length(268435456u, out, &n),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_remaining_length(UINT32_MAX, out, &n),
                     TETHER_INVALID_ARGUMENT);
    for (size_t k = 0; k < sizeof out; k++)
        assert_int_equal(out[k], CANARY);
    assert_int_equal(tether_mqtt_encode_remaining_length(1, NULL, &n), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_remaining_length(1, out, NULL), TETHER_INVALID_ARGUMENT);
}

static void test_remaining_length_five_bytes(void **state)
{
    (void)state;
    static const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    uint8_t first;
    uint32_t remaining;
    size_t header_len;
    assert_int_equal(
        tether_mqtt_decode_fixed_header(five, sizeof five, &first, &remaining, &header_len),
        TETHER_MQTT_MALFORMED);
    assert_malformed(five);
    /* Known as soon as the fourth length byte still says "more". */
    assert_int_equal(tether_mqtt_decode_fixed_header(five, 5, &first, &remaining, &header_len),
                     TETHER_MQTT_MALFORMED);
    assert_int_equal(decode_status(five, 5), TETHER_MQTT_MALFORMED);
}

static void test_remaining_length_not_shortest(void **state)
{
    (void)state;
    static const uint8_t cases[][5] = {
        {0x30, 0x80, 0x00},             /* 0 in two bytes */
        {0x30, 0xFF, 0x00},             /* 127 in two bytes */
        {0x30, 0x80, 0x80, 0x00},       /* 0 in three bytes */
        {0x30, 0xFF, 0xFF, 0x00},       /* 16383 in three bytes */
        {0x30, 0x80, 0x80, 0x80, 0x00}, /* 0 in four bytes */
        {0xC0, 0x80, 0x00},             /* a PINGREQ whose 0 is padded */
    };
    static const size_t lens[] = {3, 3, 4, 4, 5, 3};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t first;
        uint32_t remaining;
        size_t header_len;
        assert_int_equal(
            tether_mqtt_decode_fixed_header(cases[i], lens[i], &first, &remaining, &header_len),
            TETHER_MQTT_MALFORMED);
        assert_int_equal(decode_status(cases[i], lens[i]), TETHER_MQTT_MALFORMED);
    }
}

static void test_fixed_header_arguments(void **state)
{
    (void)state;
    uint8_t first;
    uint32_t remaining;
    size_t header_len;
    static const uint8_t ping[] = {0xC0, 0x00};
    assert_int_equal(tether_mqtt_decode_fixed_header(NULL, 0, &first, &remaining, &header_len),
                     TETHER_WOULD_BLOCK);
    assert_int_equal(tether_mqtt_decode_fixed_header(NULL, 2, &first, &remaining, &header_len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_decode_fixed_header(ping, 2, NULL, &remaining, &header_len),
                     TETHER_INVALID_ARGUMENT);
    tether_mqtt_packet pkt;
    size_t consumed = 5;
    assert_int_equal(tether_mqtt_decode(NULL, 0, &pkt, &consumed), TETHER_WOULD_BLOCK);
    assert_int_equal(consumed, 0);
    assert_int_equal(tether_mqtt_decode(ping, 2, NULL, &consumed), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_decode(ping, 2, &pkt, NULL), TETHER_INVALID_ARGUMENT);
}

/* ---- round trips -------------------------------------------------------------------------- */

static void test_connect_minimal(void **state)
{
    (void)state;
    tether_mqtt_connect c = {
        .client_id = "dev", .client_id_len = 3, .clean_session = true, .keep_alive_s = 60};
    uint8_t buf[64];
    size_t len = encode_checked(enc_connect, &c, buf, sizeof buf);
    static const uint8_t want[] = {0x10, 0x0F, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                   0x02, 0x00, 0x3C, 0x00, 0x03, 'd', 'e', 'v'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.type, TETHER_MQTT_CONNECT);
    assert_int_equal(pkt.remaining_len, 15);
    const tether_mqtt_connect *d = &pkt.u.connect;
    assert_view(d->client_id, d->client_id_len, "dev", 3);
    assert_true(d->clean_session);
    assert_int_equal(d->keep_alive_s, 60);
    assert_null(d->username);
    assert_null(d->password);
    assert_null(d->will_topic);
    assert_null(d->will_payload);
    assert_int_equal(d->username_len + d->password_len + d->will_topic_len + d->will_payload_len,
                     0);
    assert_int_equal(d->will_qos, 0);
    assert_false(d->will_retain);
}

static void test_connect_full(void **state)
{
    (void)state;
    static const uint8_t pw[] = {0x00, 0xFF, 's', 'e', 'c'};
    static const uint8_t will[] = {'g', 'o', 'n', 'e', 0x00};
    tether_mqtt_connect c = {.client_id = "d\xC3\xA9v",
                             .client_id_len = 4,
                             .username = "user",
                             .username_len = 4,
                             .password = pw,
                             .password_len = sizeof pw,
                             .will_topic = "devices/d1/status",
                             .will_topic_len = 17,
                             .will_payload = will,
                             .will_payload_len = sizeof will,
                             .will_qos = 1,
                             .will_retain = true,
                             .clean_session = false,
                             .keep_alive_s = 0xFFFF};
    uint8_t buf[128];
    size_t len = encode_checked(enc_connect, &c, buf, sizeof buf);
    assert_int_equal(len, 2 + 10 + (2 + 4) + (2 + 17) + (2 + 5) + (2 + 4) + (2 + 5));
    assert_int_equal(buf[9], 0xEC); /* user, password, will retain, will QoS 1, will */
    assert_int_equal(buf[10], 0xFF);
    assert_int_equal(buf[11], 0xFF);

    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    const tether_mqtt_connect *d = &pkt.u.connect;
    assert_view(d->client_id, d->client_id_len, "d\xC3\xA9v", 4);
    assert_view(d->username, d->username_len, "user", 4);
    assert_view(d->password, d->password_len, pw, sizeof pw);
    assert_view(d->will_topic, d->will_topic_len, "devices/d1/status", 17);
    assert_view(d->will_payload, d->will_payload_len, will, sizeof will);
    assert_int_equal(d->will_qos, 1);
    assert_true(d->will_retain);
    assert_false(d->clean_session);
    assert_int_equal(d->keep_alive_s, 0xFFFF);
}

static void test_connect_username_only(void **state)
{
    (void)state;
    tether_mqtt_connect c = {.client_id = "c",
                             .client_id_len = 1,
                             .username = "hub.example/d1/?api-version=2021-04-12",
                             .username_len = 38,
                             .clean_session = true,
                             .keep_alive_s = 240};
    uint8_t buf[128];
    size_t len = encode_checked(enc_connect, &c, buf, sizeof buf);
    assert_int_equal(buf[9], 0x82);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_view(pkt.u.connect.username, pkt.u.connect.username_len, c.username, 38);
    assert_null(pkt.u.connect.password);
    assert_null(pkt.u.connect.will_topic);
}

/* Present-but-empty fields stay present: a non-NULL view of length 0. */
static void test_connect_empty_fields(void **state)
{
    (void)state;
    static const uint8_t nothing[1] = {0};
    tether_mqtt_connect c = {.client_id = NULL,
                             .client_id_len = 0,
                             .username = "",
                             .username_len = 0,
                             .password = nothing,
                             .password_len = 0,
                             .will_topic = "w",
                             .will_topic_len = 1,
                             .will_payload = NULL,
                             .will_payload_len = 0,
                             .will_qos = 2,
                             .clean_session = true};
    uint8_t buf[64];
    size_t len = encode_checked(enc_connect, &c, buf, sizeof buf);
    assert_int_equal(buf[9], 0xC0 | 0x10 | 0x04 | 0x02);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    const tether_mqtt_connect *d = &pkt.u.connect;
    assert_view(d->client_id, d->client_id_len, "", 0);
    assert_view(d->username, d->username_len, "", 0);
    assert_view(d->password, d->password_len, "", 0);
    assert_view(d->will_topic, d->will_topic_len, "w", 1);
    assert_view(d->will_payload, d->will_payload_len, "", 0);
    assert_int_equal(d->will_qos, 2);
    assert_false(d->will_retain);
}

static void test_connack(void **state)
{
    (void)state;
    static const connack_arg cases[] = {{false, 0}, {true, 0}, {false, 1}, {false, 5}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[32];
        size_t len = encode_checked(enc_connack, &cases[i], buf, sizeof buf);
        assert_int_equal(len, 4);
        const uint8_t want[] = {0x20, 0x02, cases[i].session_present ? 1 : 0, cases[i].code};
        assert_memory_equal(buf, want, 4);
        tether_mqtt_packet pkt;
        decode_valid(buf, len, &pkt);
        assert_int_equal(pkt.type, TETHER_MQTT_CONNACK);
        assert_int_equal(pkt.u.connack.session_present, cases[i].session_present);
        assert_int_equal(pkt.u.connack.return_code, cases[i].code);
    }
}

static void test_publish_qos0_retain(void **state)
{
    (void)state;
    tether_mqtt_publish p = {.topic = "a/b",
                             .topic_len = 3,
                             .payload = (const uint8_t *)"hi",
                             .payload_len = 2,
                             .qos = 0,
                             .retain = true,
                             .packet_id = 77};
    uint8_t buf[64];
    size_t len = encode_checked(enc_publish, &p, buf, sizeof buf);
    static const uint8_t want[] = {0x31, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.type, TETHER_MQTT_PUBLISH);
    assert_int_equal(pkt.packet_id, 0); /* QoS 0 carries none: 77 was ignored */
    assert_int_equal(pkt.u.publish.packet_id, 0);
    assert_int_equal(pkt.u.publish.qos, 0);
    assert_true(pkt.u.publish.retain);
    assert_false(pkt.u.publish.dup);
    assert_view(pkt.u.publish.topic, pkt.u.publish.topic_len, "a/b", 3);
    assert_view(pkt.u.publish.payload, pkt.u.publish.payload_len, "hi", 2);
}

static void test_publish_qos1_qos2(void **state)
{
    (void)state;
    static const struct {
        uint8_t qos;
        bool retain, dup;
        uint16_t id;
        uint8_t first;
    } cases[] = {
        {1, false, false, 1, 0x32},
        {1, false, true, 0x1234, 0x3A},
        {2, false, false, 0xFFFF, 0x34},
        {2, true, true, 0x0100, 0x3D},
    };
    static const uint8_t payload[] = {0x00, 0x01, 0xFF, 0x80}; /* binary, not UTF-8 */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tether_mqtt_publish p = {.topic = "devices/d1/messages/events/",
                                 .topic_len = 27,
                                 .payload = payload,
                                 .payload_len = sizeof payload,
                                 .qos = cases[i].qos,
                                 .retain = cases[i].retain,
                                 .dup = cases[i].dup,
                                 .packet_id = cases[i].id};
        uint8_t buf[64];
        size_t len = encode_checked(enc_publish, &p, buf, sizeof buf);
        assert_int_equal(len, 2 + 2 + 27 + 2 + 4);
        assert_int_equal(buf[0], cases[i].first);
        assert_int_equal(buf[31], cases[i].id >> 8);
        assert_int_equal(buf[32], cases[i].id & 0xFF);
        tether_mqtt_packet pkt;
        decode_valid(buf, len, &pkt);
        assert_int_equal(pkt.packet_id, cases[i].id);
        assert_int_equal(pkt.u.publish.packet_id, cases[i].id);
        assert_int_equal(pkt.u.publish.qos, cases[i].qos);
        assert_int_equal(pkt.u.publish.retain, cases[i].retain);
        assert_int_equal(pkt.u.publish.dup, cases[i].dup);
        assert_view(pkt.u.publish.topic, pkt.u.publish.topic_len, p.topic, 27);
        assert_view(pkt.u.publish.payload, pkt.u.publish.payload_len, payload, sizeof payload);
    }
}

static void test_publish_empty_payload(void **state)
{
    (void)state;
    tether_mqtt_publish p = {.topic = "t", .topic_len = 1, .payload = NULL, .payload_len = 0};
    uint8_t buf[32];
    size_t len = encode_checked(enc_publish, &p, buf, sizeof buf);
    static const uint8_t want[] = {0x30, 0x03, 0x00, 0x01, 't'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.u.publish.payload_len, 0);
}

/* Remaining lengths 127/128 and 16383/16384 through whole packets. */
static void test_publish_header_sizes(void **state)
{
    (void)state;
    static const struct {
        size_t remaining;
        size_t header_len;
    } cases[] = {{127, 2}, {128, 3}, {16383, 3}, {16384, 4}};
    static uint8_t payload[16384];
    static uint8_t buf[16384 + 4 + CANARY_SPAN];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7u);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tether_mqtt_publish p = {.topic = "x",
                                 .topic_len = 1,
                                 .payload = payload,
                                 .payload_len = cases[i].remaining - 3};
        size_t len = encode_checked(enc_publish, &p, buf, sizeof buf);
        assert_int_equal(len, cases[i].header_len + cases[i].remaining);
        tether_mqtt_packet pkt;
        decode_valid(buf, len, &pkt);
        assert_int_equal(pkt.remaining_len, cases[i].remaining);
        assert_view(pkt.u.publish.payload, pkt.u.publish.payload_len, payload, p.payload_len);
    }
}

static void test_acks(void **state)
{
    (void)state;
    static const struct {
        tether_mqtt_type type;
        uint8_t first;
    } cases[] = {{TETHER_MQTT_PUBACK, 0x40},
                 {TETHER_MQTT_PUBREC, 0x50},
                 {TETHER_MQTT_PUBREL, 0x62},
                 {TETHER_MQTT_PUBCOMP, 0x70},
                 {TETHER_MQTT_UNSUBACK, 0xB0}};
    static const uint16_t ids[] = {1, 0x1234, 0xFFFF};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            ack_arg a = {cases[i].type, ids[k]};
            uint8_t buf[32];
            size_t len = encode_checked(enc_ack, &a, buf, sizeof buf);
            const uint8_t want[] = {cases[i].first, 0x02, (uint8_t)(ids[k] >> 8),
                                    (uint8_t)(ids[k] & 0xFF)};
            assert_int_equal(len, 4);
            assert_memory_equal(buf, want, 4);
            tether_mqtt_packet pkt;
            decode_valid(buf, len, &pkt);
            assert_int_equal(pkt.type, cases[i].type);
            assert_int_equal(pkt.packet_id, ids[k]);
            assert_int_equal(pkt.remaining_len, 2);
        }
    }
}

static void test_subscribe(void **state)
{
    (void)state;
    static const tether_mqtt_filter filters[] = {
        {"devices/d1/messages/devicebound/#", 33, 1},
        {"a/+/b", 5, 0},
        {"#", 1, 2},
        {"+", 1, 1},
        {"caf\xC3\xA9/+", 7, 0},
    };
    filters_arg a = {0x0A0B, filters, 5};
    uint8_t buf[128];
    size_t len = encode_checked(enc_subscribe, &a, buf, sizeof buf);
    assert_int_equal(len,
                     2 + 2 + (2 + 33 + 1) + (2 + 5 + 1) + (2 + 1 + 1) + (2 + 1 + 1) + (2 + 7 + 1));
    static const uint8_t head[] = {0x82, 64, 0x0A, 0x0B, 0x00, 33, 'd'};
    assert_memory_equal(buf, head, sizeof head);

    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.type, TETHER_MQTT_SUBSCRIBE);
    assert_int_equal(pkt.packet_id, 0x0A0B);
    assert_int_equal(pkt.u.subscribe.count, 5);
    assert_int_equal(pkt.u.subscribe.filters_len, len - 4);
    size_t off = 0;
    for (size_t i = 0; i < 5; i++) {
        tether_mqtt_filter f = {0};
        assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_OK);
        assert_view(f.filter, f.filter_len, filters[i].filter, filters[i].filter_len);
        assert_int_equal(f.qos, filters[i].qos);
    }
    assert_int_equal(off, pkt.u.subscribe.filters_len);
    tether_mqtt_filter f;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_WOULD_BLOCK);
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_WOULD_BLOCK);
    off = pkt.u.subscribe.filters_len + 1;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_INVALID_ARGUMENT);
}

static void test_unsubscribe(void **state)
{
    (void)state;
    static const tether_mqtt_filter filters[] = {{"a/b", 3, 2}, {"c/#", 3, 0}};
    filters_arg a = {7, filters, 2};
    uint8_t buf[64];
    size_t len = encode_checked(enc_unsubscribe, &a, buf, sizeof buf);
    /* The QoS field is not encoded for UNSUBSCRIBE. */
    static const uint8_t want[] = {0xA2, 0x0C, 0x00, 0x07, 0x00, 0x03, 'a',
                                   '/',  'b',  0x00, 0x03, 'c',  '/',  '#'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.type, TETHER_MQTT_UNSUBSCRIBE);
    assert_int_equal(pkt.packet_id, 7);
    assert_int_equal(pkt.u.subscribe.count, 2);
    size_t off = 0;
    tether_mqtt_filter f;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_OK);
        assert_view(f.filter, f.filter_len, filters[i].filter, 3);
        assert_int_equal(f.qos, 0);
    }
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_WOULD_BLOCK);
}

static void test_filter_next_wrong_packet(void **state)
{
    (void)state;
    static const uint8_t puback[] = {0x40, 0x02, 0x00, 0x01};
    tether_mqtt_packet pkt;
    size_t consumed;
    assert_int_equal(tether_mqtt_decode(puback, sizeof puback, &pkt, &consumed), TETHER_OK);
    size_t off = 0;
    tether_mqtt_filter f;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_filter_next(NULL, &off, &f), TETHER_INVALID_ARGUMENT);
}

static void test_suback(void **state)
{
    (void)state;
    static const uint8_t codes[] = {0, 1, 2, 0x80};
    suback_arg a = {0xBEEF, codes, 4};
    uint8_t buf[32];
    size_t len = encode_checked(enc_suback, &a, buf, sizeof buf);
    static const uint8_t want[] = {0x90, 0x06, 0xBE, 0xEF, 0x00, 0x01, 0x02, 0x80};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    tether_mqtt_packet pkt;
    decode_valid(buf, len, &pkt);
    assert_int_equal(pkt.type, TETHER_MQTT_SUBACK);
    assert_int_equal(pkt.packet_id, 0xBEEF);
    assert_view(pkt.u.suback.return_codes, pkt.u.suback.count, codes, 4);
}

static void test_empty_packets(void **state)
{
    (void)state;
    static const struct {
        tether_mqtt_type type;
        uint8_t first;
    } cases[] = {
        {TETHER_MQTT_PINGREQ, 0xC0}, {TETHER_MQTT_PINGRESP, 0xD0}, {TETHER_MQTT_DISCONNECT, 0xE0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ack_arg a = {cases[i].type, 0};
        uint8_t buf[32];
        size_t len = encode_checked(enc_empty, &a, buf, sizeof buf);
        assert_int_equal(len, 2);
        assert_int_equal(buf[0], cases[i].first);
        assert_int_equal(buf[1], 0x00);
        tether_mqtt_packet pkt;
        decode_valid(buf, len, &pkt);
        assert_int_equal(pkt.type, cases[i].type);
        assert_int_equal(pkt.remaining_len, 0);
    }
}

/* ---- encoder limits and argument checks --------------------------------------------------- */

static void test_publish_max_remaining_length(void **state)
{
    (void)state;
    /* Sized only (buf NULL), so the payload is never read: a 1-byte stand-in is enough. */
    static const uint8_t one = 0;
    tether_mqtt_publish p = {
        .topic = "t", .topic_len = 1, .payload = &one, .qos = 1, .packet_id = 1};
    size_t len = 0;
    p.payload_len = TETHER_MQTT_MAX_REMAINING_LENGTH - 5; /* 2 + 1 + 2 of topic and id */
    assert_int_equal(tether_mqtt_encode_publish(&p, NULL, 0, &len), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(len, 1 + 4 + (size_t)TETHER_MQTT_MAX_REMAINING_LENGTH);

    p.payload_len = TETHER_MQTT_MAX_REMAINING_LENGTH - 4;
    assert_int_equal(tether_mqtt_encode_publish(&p, NULL, 0, &len), TETHER_INVALID_ARGUMENT);
    p.payload_len = SIZE_MAX; /* must not wrap around */
    assert_int_equal(tether_mqtt_encode_publish(&p, NULL, 0, &len), TETHER_INVALID_ARGUMENT);
}

static void test_publish_invalid_arguments(void **state)
{
    (void)state;
    static char long_topic[65536];
    memset(long_topic, 'a', sizeof long_topic);
    uint8_t buf[64];
    size_t len;
    const tether_mqtt_publish good = {.topic = "t", .topic_len = 1, .qos = 1, .packet_id = 3};
    tether_mqtt_publish p;

    p = good;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len), TETHER_OK);
    p.qos = 3;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(len, 0);
    p = good;
    p.packet_id = 0;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    p = good;
    p.qos = 0;
    p.dup = true;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    p = good;
    p.topic = long_topic;
    p.topic_len = 65536;
    assert_int_equal(tether_mqtt_encode_publish(&p, NULL, 0, &len), TETHER_INVALID_ARGUMENT);
    p.topic_len = 65535;
    assert_int_equal(tether_mqtt_encode_publish(&p, NULL, 0, &len), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(len, 1 + 3 + 2 + 65535 + 2);
    p = good;
    p.topic_len = 0;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    p = good;
    p.topic = NULL;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    static const char *bad_topics[] = {"a/+", "#", "a/#", "a+b", "\xC0\x80", "a\xED\xA0\x80"};
    for (size_t i = 0; i < sizeof bad_topics / sizeof bad_topics[0]; i++) {
        p = good;
        p.topic = bad_topics[i];
        p.topic_len = strlen(bad_topics[i]);
        assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                         TETHER_INVALID_ARGUMENT);
    }
    p = good;
    p.topic = "a\0b";
    p.topic_len = 3;
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    p = good;
    p.payload_len = 1; /* with a NULL payload */
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_publish(NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_publish(&good, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
}

static void test_connect_invalid_arguments(void **state)
{
    (void)state;
    static char long_id[65536];
    memset(long_id, 'i', sizeof long_id);
    static const uint8_t pw[] = {1, 2};
    uint8_t buf[128];
    size_t len;
    const tether_mqtt_connect good = {.client_id = "id", .client_id_len = 2, .clean_session = true};
    tether_mqtt_connect c;

    c = good;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len), TETHER_OK);
    c.password = pw; /* without a user name */
    c.password_len = 2;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.client_id_len = 0;
    c.clean_session = false;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.client_id = long_id;
    c.client_id_len = sizeof long_id;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.will_topic = "w";
    c.will_topic_len = 1;
    c.will_qos = 3;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c.will_qos = 2;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len), TETHER_OK);
    c.will_topic = "w/#";
    c.will_topic_len = 3;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.will_qos = 1; /* no will topic */
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.will_retain = true;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.username = "\xFF";
    c.username_len = 1;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.username = "u";
    c.username_len = 1;
    c.password_len = 1; /* with a NULL password */
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c.password_len = 0;
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len), TETHER_OK);
    c = good;
    c.username_len = 1; /* with a NULL user name */
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    c = good;
    c.client_id = "a\0";
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_connect(NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
}

static void test_other_invalid_arguments(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len;
    static const uint8_t codes[] = {0, 3};
    static const tether_mqtt_filter ok[] = {{"a", 1, 0}};
    static const tether_mqtt_filter bad[][1] = {
        {{"a", 1, 3}},  {{"", 0, 0}},     {{NULL, 0, 0}}, {{"a/#/b", 5, 0}},
        {{"a#", 2, 0}}, {{"a+/b", 4, 0}}, {{"+a", 2, 0}}, {{"\xC3", 1, 0}},
    };

    len = 99;
    assert_int_equal(tether_mqtt_encode_connack(false, 6, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(len, 0);
    assert_int_equal(tether_mqtt_encode_connack(true, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_ack(TETHER_MQTT_PUBACK, 0, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_ack(TETHER_MQTT_PUBLISH, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_ack(TETHER_MQTT_SUBACK, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_empty(TETHER_MQTT_CONNECT, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_empty(TETHER_MQTT_PINGREQ, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);

    assert_int_equal(tether_mqtt_encode_subscribe(1, ok, 1, buf, sizeof buf, &len), TETHER_OK);
    assert_int_equal(tether_mqtt_encode_subscribe(0, ok, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_subscribe(1, ok, 0, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_subscribe(1, NULL, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tether_mqtt_encode_subscribe(1, bad[i], 1, buf, sizeof buf, &len),
                         TETHER_INVALID_ARGUMENT);
        /* UNSUBSCRIBE ignores the QoS but not the filter. */
        assert_int_equal(tether_mqtt_encode_unsubscribe(1, bad[i], 1, buf, sizeof buf, &len),
                         i == 0 ? TETHER_OK : TETHER_INVALID_ARGUMENT);
    }
    assert_int_equal(tether_mqtt_encode_unsubscribe(1, ok, 0, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_unsubscribe(0, ok, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);

    assert_int_equal(tether_mqtt_encode_suback(1, codes, 1, buf, sizeof buf, &len), TETHER_OK);
    assert_int_equal(tether_mqtt_encode_suback(1, codes, 2, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_suback(1, codes, 0, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    len = 99;
    assert_int_equal(tether_mqtt_encode_suback(0, codes, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(len, 0);
}

/* Sizes are checked before any string is read, so these need no big buffers. */
static void test_filters_and_codes_too_many(void **state)
{
    (void)state;
    static const char one = 'a';
    static tether_mqtt_filter many[4097];
    for (size_t i = 0; i < 4097; i++)
        many[i] = (tether_mqtt_filter){&one, 65535, 0}; /* never read: the size fails first */
    size_t len = 99;
    /* 2 + 4097 * (2 + 65535 + 1) > 268435455 */
    assert_int_equal(tether_mqtt_encode_subscribe(1, many, 4097, NULL, 0, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(len, 0);
    assert_int_equal(tether_mqtt_encode_unsubscribe(1, many, 4097, NULL, 0, &len),
                     TETHER_INVALID_ARGUMENT);

    static const uint8_t codes[2] = {0, 1};
    assert_int_equal(
        tether_mqtt_encode_suback(1, codes, TETHER_MQTT_MAX_REMAINING_LENGTH - 1, NULL, 0, &len),
        TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_suback(1, codes, SIZE_MAX, NULL, 0, &len),
                     TETHER_INVALID_ARGUMENT);
}

static void test_encoders_need_out_len(void **state)
{
    (void)state;
    uint8_t buf[64];
    static const tether_mqtt_connect c = {
        .client_id = "a", .client_id_len = 1, .clean_session = true};
    static const tether_mqtt_publish p = {.topic = "t", .topic_len = 1};
    static const tether_mqtt_filter f[] = {{"a", 1, 0}};
    static const uint8_t codes[] = {0};
    assert_int_equal(tether_mqtt_encode_connect(&c, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_connack(false, 0, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_publish(&p, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_ack(TETHER_MQTT_PUBACK, 1, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_subscribe(1, f, 1, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_unsubscribe(1, f, 1, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_suback(1, codes, 1, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_mqtt_encode_empty(TETHER_MQTT_PINGREQ, buf, sizeof buf, NULL),
                     TETHER_INVALID_ARGUMENT);
}

/* A packet assembled by hand (not by the decoder) cannot make the walk read out of bounds. */
static void test_filter_next_hand_made(void **state)
{
    (void)state;
    static const uint8_t cut_length[] = {0x00};
    static const uint8_t cut_filter[] = {0x00, 0x05, 'a', 'b'};
    static const uint8_t no_qos[] = {0x00, 0x01, 'a'};
    tether_mqtt_packet pkt = {.type = TETHER_MQTT_SUBSCRIBE};
    tether_mqtt_filter f;
    size_t off = 0;

    pkt.u.subscribe.filters = cut_length;
    pkt.u.subscribe.filters_len = sizeof cut_length;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_MQTT_MALFORMED);
    pkt.u.subscribe.filters = cut_filter;
    pkt.u.subscribe.filters_len = sizeof cut_filter;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_MQTT_MALFORMED);
    pkt.u.subscribe.filters = no_qos;
    pkt.u.subscribe.filters_len = sizeof no_qos;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_MQTT_MALFORMED);
    assert_int_equal(off, 0);
    pkt.type = TETHER_MQTT_UNSUBSCRIBE; /* no QoS byte expected */
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_OK);
    assert_view(f.filter, f.filter_len, "a", 1);
    assert_int_equal(off, 3);
    pkt.u.subscribe.filters = NULL;
    off = 0;
    assert_int_equal(tether_mqtt_filter_next(&pkt, &off, &f), TETHER_INVALID_ARGUMENT);
}

/* ---- malformed input ---------------------------------------------------------------------- */

static void test_malformed_reserved_types_and_flags(void **state)
{
    (void)state;
    static const uint8_t type0[] = {0x00, 0x00};
    static const uint8_t type15[] = {0xF0, 0x00};
    static const uint8_t connack_flags[] = {0x21, 0x02, 0x00, 0x00};
    static const uint8_t puback_flags[] = {0x42, 0x02, 0x00, 0x01};
    static const uint8_t pubrec_flags[] = {0x52, 0x02, 0x00, 0x01};
    static const uint8_t pubrel_flags0[] = {0x60, 0x02, 0x00, 0x01};
    static const uint8_t pubcomp_flags[] = {0x78, 0x02, 0x00, 0x01};
    static const uint8_t subscribe_flags0[] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00};
    static const uint8_t subscribe_flags3[] = {0x83, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00};
    static const uint8_t suback_flags[] = {0x92, 0x03, 0x00, 0x01, 0x00};
    static const uint8_t unsub_flags[] = {0xA0, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    static const uint8_t unsuback_flags[] = {0xB1, 0x02, 0x00, 0x01};
    static const uint8_t pingreq_flags[] = {0xC1, 0x00};
    static const uint8_t pingresp_flags[] = {0xD8, 0x00};
    static const uint8_t disconnect_flags[] = {0xE2, 0x00};
    static const uint8_t connect_flags[] = {0x12, 0x0F, 0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04,
                                            0x02, 0x00, 0x3C, 0x00, 0x03, 'd', 'e', 'v'};
    assert_malformed(type0);
    assert_malformed(type15);
    assert_malformed(connack_flags);
    assert_malformed(puback_flags);
    assert_malformed(pubrec_flags);
    assert_malformed(pubrel_flags0);
    assert_malformed(pubcomp_flags);
    assert_malformed(subscribe_flags0);
    assert_malformed(subscribe_flags3);
    assert_malformed(suback_flags);
    assert_malformed(unsub_flags);
    assert_malformed(unsuback_flags);
    assert_malformed(pingreq_flags);
    assert_malformed(pingresp_flags);
    assert_malformed(disconnect_flags);
    assert_malformed(connect_flags);

    /* The first byte alone is enough to know. */
    assert_int_equal(decode_status(type15, 1), TETHER_MQTT_MALFORMED);
    assert_int_equal(decode_status(pubrel_flags0, 1), TETHER_MQTT_MALFORMED);
}

static void test_malformed_publish_flags(void **state)
{
    (void)state;
    static const uint8_t qos3[] = {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    static const uint8_t qos3_retain[] = {0x37, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    static const uint8_t dup_qos0[] = {0x38, 0x03, 0x00, 0x01, 't'};
    static const uint8_t dup_qos0_retain[] = {0x39, 0x03, 0x00, 0x01, 't'};
    static const uint8_t dup_qos1[] = {0x3A, 0x05, 0x00, 0x01, 't', 0x00, 0x01};
    assert_malformed(qos3);
    assert_malformed(qos3_retain);
    assert_malformed(dup_qos0);
    assert_malformed(dup_qos0_retain);
    assert_int_equal(DECODE_STATUS(dup_qos1), TETHER_OK);
}

static void test_malformed_fixed_sizes(void **state)
{
    (void)state;
    static const uint8_t connack3[] = {0x20, 0x03, 0x00, 0x00, 0x00};
    static const uint8_t connack1[] = {0x20, 0x01, 0x00};
    static const uint8_t puback3[] = {0x40, 0x03, 0x00, 0x01, 0x00};
    static const uint8_t pubrec1[] = {0x50, 0x01, 0x01};
    static const uint8_t pubrel0[] = {0x62, 0x00};
    static const uint8_t pubcomp4[] = {0x70, 0x04, 0x00, 0x01, 0x00, 0x02};
    static const uint8_t unsuback3[] = {0xB0, 0x03, 0x00, 0x01, 0x00};
    static const uint8_t pingreq1[] = {0xC0, 0x01, 0x00};
    static const uint8_t pingresp1[] = {0xD0, 0x01, 0x00};
    static const uint8_t disconnect2[] = {0xE0, 0x02, 0x00, 0x00};
    assert_malformed(connack3);
    assert_malformed(connack1);
    assert_malformed(puback3);
    assert_malformed(pubrec1);
    assert_malformed(pubrel0);
    assert_malformed(pubcomp4);
    assert_malformed(unsuback3);
    assert_malformed(pingreq1);
    assert_malformed(pingresp1);
    assert_malformed(disconnect2);
    /* Known from the header, before the body arrives. */
    assert_int_equal(decode_status(connack3, 2), TETHER_MQTT_MALFORMED);
    assert_int_equal(decode_status(pingreq1, 2), TETHER_MQTT_MALFORMED);
}

static void test_malformed_connack(void **state)
{
    (void)state;
    static const uint8_t reserved_bit[] = {0x20, 0x02, 0x02, 0x00};
    static const uint8_t reserved_high[] = {0x20, 0x02, 0x80, 0x00};
    static const uint8_t code6[] = {0x20, 0x02, 0x00, 0x06};
    static const uint8_t code_ff[] = {0x20, 0x02, 0x00, 0xFF};
    static const uint8_t session_refused[] = {0x20, 0x02, 0x01, 0x01};
    static const uint8_t code5[] = {0x20, 0x02, 0x00, 0x05};
    assert_malformed(reserved_bit);
    assert_malformed(reserved_high);
    assert_malformed(code6);
    assert_malformed(code_ff);
    assert_malformed(session_refused);
    assert_int_equal(DECODE_STATUS(code5), TETHER_OK);
}

static void test_malformed_packet_id_zero(void **state)
{
    (void)state;
    static const uint8_t puback[] = {0x40, 0x02, 0x00, 0x00};
    static const uint8_t pubrec[] = {0x50, 0x02, 0x00, 0x00};
    static const uint8_t pubrel[] = {0x62, 0x02, 0x00, 0x00};
    static const uint8_t pubcomp[] = {0x70, 0x02, 0x00, 0x00};
    static const uint8_t unsuback[] = {0xB0, 0x02, 0x00, 0x00};
    static const uint8_t publish_qos1[] = {0x32, 0x05, 0x00, 0x01, 't', 0x00, 0x00};
    static const uint8_t publish_qos2[] = {0x34, 0x06, 0x00, 0x01, 't', 0x00, 0x00, 'x'};
    static const uint8_t subscribe[] = {0x82, 0x06, 0x00, 0x00, 0x00, 0x01, 'a', 0x00};
    static const uint8_t suback[] = {0x90, 0x03, 0x00, 0x00, 0x00};
    static const uint8_t unsubscribe[] = {0xA2, 0x05, 0x00, 0x00, 0x00, 0x01, 'a'};
    assert_malformed(puback);
    assert_malformed(pubrec);
    assert_malformed(pubrel);
    assert_malformed(pubcomp);
    assert_malformed(unsuback);
    assert_malformed(publish_qos1);
    assert_malformed(publish_qos2);
    assert_malformed(subscribe);
    assert_malformed(suback);
    assert_malformed(unsubscribe);
}

/* Builds a QoS 0 PUBLISH whose topic holds exactly @p topic (no checks). The payload is a
 * continuation byte, so a cut sequence at the end of the topic fails only if the validator
 * stops at the topic's length. */
static size_t build_publish(uint8_t *out, const uint8_t *topic, size_t topic_len)
{
    out[0] = 0x30;
    out[1] = (uint8_t)(2 + topic_len + 1);
    out[2] = 0;
    out[3] = (uint8_t)topic_len;
    memcpy(out + 4, topic, topic_len);
    out[4 + topic_len] = 0x80;
    return 5 + topic_len;
}

static const struct {
    const char *bytes;
    size_t len;
} bad_utf8[] = {
    {S("a\0b")},             /* U+0000 */
    {S("\0")},               /* U+0000 alone */
    {S("\xC0\x80")},         /* overlong U+0000 */
    {S("\xC1\xBF")},         /* overlong U+007F */
    {S("\xE0\x80\x80")},     /* overlong, three bytes */
    {S("\xE0\x9F\xBF")},     /* overlong U+07FF */
    {S("\xF0\x80\x80\x80")}, /* overlong, four bytes */
    {S("\xF0\x8F\xBF\xBF")}, /* overlong U+FFFF */
    {S("\xED\xA0\x80")},     /* U+D800 */
    {S("\xED\xBF\xBF")},     /* U+DFFF */
    {S("\xF4\x90\x80\x80")}, /* U+110000 */
    {S("\xF5\x80\x80\x80")}, /* lead byte beyond U+10FFFF */
    {S("\xFF")},             /* never valid */
    {S("\x80")},             /* stray continuation */
    {S("a\xBF")},            /* stray continuation after ASCII */
    {S("\xC3")},             /* cut two-byte sequence */
    {S("\xE2\x82")},         /* cut three-byte sequence */
    {S("\xF0\x9F\x98")},     /* cut four-byte sequence */
    {S("\xC3\x28")},         /* bad continuation */
    {S("\xE2\x28\xA1")},     /* bad second byte */
    {S("\xE2\x82\x28")},     /* bad third byte */
    {S("\xF0\x9F\x98\x28")}, /* bad fourth byte */
};

static const struct {
    const char *bytes;
    size_t len;
} good_utf8[] = {
    {S("\x01\x7F")},         /* controls are discouraged but legal */
    {S("\xC2\x80")},         /* U+0080 */
    {S("\xC3\xA9")},         /* U+00E9 */
    {S("\xDF\xBF")},         /* U+07FF */
    {S("\xE0\xA0\x80")},     /* U+0800 */
    {S("\xE2\x82\xAC")},     /* U+20AC */
    {S("\xED\x9F\xBF")},     /* U+D7FF */
    {S("\xEE\x80\x80")},     /* U+E000 */
    {S("\xEF\xBF\xBF")},     /* U+FFFF */
    {S("\xEF\xBB\xBF")},     /* U+FEFF is a character like any other */
    {S("\xF0\x90\x80\x80")}, /* U+10000 */
    {S("\xF0\x9F\x98\x80")}, /* U+1F600 */
    {S("\xF4\x8F\xBF\xBF")}, /* U+10FFFF */
};

static void test_malformed_utf8(void **state)
{
    (void)state;
    uint8_t pkt[64];
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        size_t len = build_publish(pkt, (const uint8_t *)bad_utf8[i].bytes, bad_utf8[i].len);
        assert_int_equal(decode_status(pkt, len), TETHER_MQTT_MALFORMED);
    }
    for (size_t i = 0; i < sizeof good_utf8 / sizeof good_utf8[0]; i++) {
        size_t len = build_publish(pkt, (const uint8_t *)good_utf8[i].bytes, good_utf8[i].len);
        tether_mqtt_packet out;
        size_t consumed;
        assert_int_equal(tether_mqtt_decode(pkt, len, &out, &consumed), TETHER_OK);
        assert_view(out.u.publish.topic, out.u.publish.topic_len, good_utf8[i].bytes,
                    good_utf8[i].len);
        /* The encoder accepts exactly the same and gives the same bytes. */
        tether_mqtt_publish p = out.u.publish;
        uint8_t again[64];
        size_t again_len;
        assert_int_equal(tether_mqtt_encode_publish(&p, again, sizeof again, &again_len),
                         TETHER_OK);
        assert_int_equal(again_len, len);
        assert_memory_equal(again, pkt, len);
    }
}

static void test_malformed_publish_topic(void **state)
{
    (void)state;
    static const char *wild[] = {"+", "#", "a/+", "a/#", "a+b", "sport/tennis/#"};
    uint8_t pkt[64];
    for (size_t i = 0; i < sizeof wild / sizeof wild[0]; i++) {
        size_t len = build_publish(pkt, (const uint8_t *)wild[i], strlen(wild[i]));
        assert_int_equal(decode_status(pkt, len), TETHER_MQTT_MALFORMED);
    }
    static const uint8_t empty_topic[] = {0x30, 0x03, 0x00, 0x00, 'p'};
    static const uint8_t topic_past_end[] = {0x30, 0x04, 0x00, 0x05, 'a', 'b'};
    static const uint8_t no_topic_len[] = {0x30, 0x01, 0x00};
    static const uint8_t no_packet_id[] = {0x32, 0x04, 0x00, 0x01, 't', 0x00};
    static const uint8_t empty_body[] = {0x30, 0x00};
    assert_malformed(empty_topic);
    assert_malformed(topic_past_end);
    assert_malformed(no_topic_len);
    assert_malformed(no_packet_id);
    assert_malformed(empty_body);
}

static void test_malformed_subscribe(void **state)
{
    (void)state;
    static const uint8_t no_filters[] = {0x82, 0x02, 0x00, 0x01};
    static const uint8_t empty_filter[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t qos3[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x03};
    static const uint8_t reserved_bits[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x40};
    static const uint8_t reserved_bits_qos1[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x05};
    static const uint8_t no_qos[] = {0x82, 0x05, 0x00, 0x01, 0x00, 0x01, 'a'};
    static const uint8_t second_no_qos[] = {0x82, 0x09, 0x00, 0x01, 0x00, 0x01,
                                            'a',  0x00, 0x00, 0x01, 'b'};
    static const uint8_t filter_past_end[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x03, 'a', 0x00};
    static const uint8_t bad_hash[] = {0x82, 0x08, 0x00, 0x01, 0x00, 0x03, '#', '/', 'a', 0x00};
    static const uint8_t bad_plus[] = {0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '+', 0x00};
    static const uint8_t nul[] = {0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', 0x00, 0x00};
    static const uint8_t bad_utf8_filter[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 0xFE, 0x00};
    static const uint8_t ok[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x02};
    assert_malformed(no_filters);
    assert_malformed(empty_filter);
    assert_malformed(qos3);
    assert_malformed(reserved_bits);
    assert_malformed(reserved_bits_qos1);
    assert_malformed(no_qos);
    assert_malformed(second_no_qos);
    assert_malformed(filter_past_end);
    assert_malformed(bad_hash);
    assert_malformed(bad_plus);
    assert_malformed(nul);
    assert_malformed(bad_utf8_filter);
    assert_int_equal(DECODE_STATUS(ok), TETHER_OK);
}

static void test_malformed_unsubscribe(void **state)
{
    (void)state;
    static const uint8_t no_filters[] = {0xA2, 0x02, 0x00, 0x01};
    static const uint8_t empty_filter[] = {0xA2, 0x04, 0x00, 0x01, 0x00, 0x00};
    static const uint8_t filter_past_end[] = {0xA2, 0x05, 0x00, 0x01, 0x00, 0x02, 'a'};
    static const uint8_t bad_hash[] = {0xA2, 0x06, 0x00, 0x01, 0x00, 0x02, 'a', '#'};
    static const uint8_t half_length[] = {0xA2, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00};
    assert_malformed(no_filters);
    assert_malformed(empty_filter);
    assert_malformed(filter_past_end);
    assert_int_equal(decode_status(bad_hash, 7), TETHER_WOULD_BLOCK);
    assert_int_equal(decode_status(bad_hash, 8), TETHER_MQTT_MALFORMED);
    assert_malformed(half_length);
}

static void test_malformed_suback(void **state)
{
    (void)state;
    static const uint8_t no_codes[] = {0x90, 0x02, 0x00, 0x01};
    static const uint8_t code3[] = {0x90, 0x03, 0x00, 0x01, 0x03};
    static const uint8_t code81[] = {0x90, 0x04, 0x00, 0x01, 0x00, 0x81};
    static const uint8_t code_ff[] = {0x90, 0x03, 0x00, 0x01, 0xFF};
    static const uint8_t short_id[] = {0x90, 0x01, 0x00};
    assert_malformed(no_codes);
    assert_malformed(code3);
    assert_malformed(code81);
    assert_malformed(code_ff);
    assert_malformed(short_id);
}

/* A CONNECT with the given protocol name, level, flags and raw payload. */
static size_t build_connect(uint8_t *out, const char *name, size_t name_len, uint8_t level,
                            uint8_t flags, const char *payload, size_t payload_len)
{
    size_t n = 2;
    out[n++] = 0x00;
    out[n++] = (uint8_t)name_len;
    memcpy(out + n, name, name_len);
    n += name_len;
    out[n++] = level;
    out[n++] = flags;
    out[n++] = 0x00; /* keep alive 60 */
    out[n++] = 0x3C;
    memcpy(out + n, payload, payload_len);
    n += payload_len;
    out[0] = 0x10;
    out[1] = (uint8_t)(n - 2);
    assert_true(n - 2 < 128);
    return n;
}

static void test_malformed_connect(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        size_t name_len;
        uint8_t level;
        uint8_t flags;
        const char *payload;
        size_t payload_len;
        tether_status want;
    } cases[] = {
        {S("MQTT"), 4, 0x02, S("\0\2id"), TETHER_OK},
        {S("MQTT"), 4, 0x02, S("\0\0"), TETHER_OK},                    /* empty id, clean */
        {S("MQTT"), 4, 0x00, S("\0\0"), TETHER_MQTT_MALFORMED},        /* empty id, not clean */
        {S("MQTT"), 4, 0x00, S("\0\2id"), TETHER_OK},                  /* id, not clean */
        {S("MQIsdp"), 3, 0x02, S("\0\2id"), TETHER_MQTT_MALFORMED},    /* MQTT 3.1 */
        {S("MQTT"), 3, 0x02, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* level 3 */
        {S("MQTT"), 5, 0x02, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* MQTT 5 */
        {S("mqtt"), 4, 0x02, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* case matters */
        {S("MQT"), 4, 0x02, S("\0\2id"), TETHER_MQTT_MALFORMED},       /* short name */
        {S("MQTT"), 4, 0x03, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* reserved bit */
        {S("MQTT"), 4, 0x0A, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* will QoS, no will */
        {S("MQTT"), 4, 0x12, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* will QoS 2, no will */
        {S("MQTT"), 4, 0x22, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* will retain, no will */
        {S("MQTT"), 4, 0x42, S("\0\2id\0\1p"), TETHER_MQTT_MALFORMED}, /* password, no user */
        {S("MQTT"), 4, 0xC2, S("\0\2id\0\1u\0\1p"), TETHER_OK},
        {S("MQTT"), 4, 0x82, S("\0\2id\0\1u"), TETHER_OK},
        {S("MQTT"), 4, 0x82, S("\0\2id"), TETHER_MQTT_MALFORMED},           /* user name missing */
        {S("MQTT"), 4, 0xC2, S("\0\2id\0\1u"), TETHER_MQTT_MALFORMED},      /* password missing */
        {S("MQTT"), 4, 0x82, S("\0\2id\0\1\0"), TETHER_MQTT_MALFORMED},     /* U+0000 in user */
        {S("MQTT"), 4, 0x06, S("\0\2id\0\1w\0\0"), TETHER_OK},              /* will, QoS 0 */
        {S("MQTT"), 4, 0x3E, S("\0\2id\0\1w\0\1m"), TETHER_MQTT_MALFORMED}, /* will QoS 3 */
        {S("MQTT"), 4, 0x36, S("\0\2id\0\1w\0\1m"), TETHER_OK},             /* will QoS 2, retain */
        {S("MQTT"), 4, 0x06, S("\0\2id\0\1w"), TETHER_MQTT_MALFORMED}, /* will message missing */
        {S("MQTT"), 4, 0x06, S("\0\2id"), TETHER_MQTT_MALFORMED},      /* will topic missing */
        {S("MQTT"), 4, 0x06, S("\0\2id\0\1#\0\0"), TETHER_MQTT_MALFORMED}, /* wildcard will */
        {S("MQTT"), 4, 0x06, S("\0\2id\0\0\0\0"), TETHER_MQTT_MALFORMED},  /* empty will topic */
        {S("MQTT"), 4, 0x02, S("\0\2\xC0\x80"), TETHER_MQTT_MALFORMED},    /* overlong id */
        {S("MQTT"), 4, 0x02, S("\0\2id!"), TETHER_MQTT_MALFORMED},         /* trailing byte */
        {S("MQTT"), 4, 0x02, S("\0\3id"), TETHER_MQTT_MALFORMED},          /* id past end */
        {S("MQTT"), 4, 0x02, S(""), TETHER_MQTT_MALFORMED},                /* no client id */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t pkt[64];
        size_t len = build_connect(pkt, cases[i].name, cases[i].name_len, cases[i].level,
                                   cases[i].flags, cases[i].payload, cases[i].payload_len);
        tether_status st = decode_status(pkt, len);
        if (st != cases[i].want)
            fail_msg("CONNECT case %zu: status %d, expected %d", i, (int)st, (int)cases[i].want);
    }
    /* Cut in the variable header. */
    static const uint8_t header_only[] = {0x10, 0x04, 0x00, 0x04, 'M', 'Q'};
    static const uint8_t no_keep_alive[] = {0x10, 0x09, 0x00, 0x04, 'M', 'Q',
                                            'T',  'T',  0x04, 0x02, 0x00};
    static const uint8_t no_flags[] = {0x10, 0x07, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04};
    assert_malformed(header_only);
    assert_malformed(no_keep_alive);
    assert_malformed(no_flags);
}

/* ---- streams and names -------------------------------------------------------------------- */

static void test_stream_of_packets(void **state)
{
    (void)state;
    static const uint8_t stream[] = {
        0x20, 0x02, 0x00, 0x00,                        /* CONNACK */
        0x90, 0x03, 0x00, 0x01, 0x01,                  /* SUBACK */
        0x32, 0x06, 0x00, 0x01, 't',  0x00, 0x02, 'x', /* PUBLISH QoS 1 */
        0xD0, 0x00,                                    /* PINGRESP */
        0x40, 0x02, 0x00,                              /* PUBACK, cut */
    };
    static const tether_mqtt_type types[] = {TETHER_MQTT_CONNACK, TETHER_MQTT_SUBACK,
                                             TETHER_MQTT_PUBLISH, TETHER_MQTT_PINGRESP};
    uint8_t *p = heap_copy(stream, sizeof stream);
    size_t off = 0;
    for (size_t i = 0; i < 4; i++) {
        tether_mqtt_packet pkt;
        size_t consumed = 0;
        assert_int_equal(tether_mqtt_decode(p + off, sizeof stream - off, &pkt, &consumed),
                         TETHER_OK);
        assert_int_equal(pkt.type, types[i]);
        off += consumed;
    }
    tether_mqtt_packet pkt;
    size_t consumed = 0;
    assert_int_equal(tether_mqtt_decode(p + off, sizeof stream - off, &pkt, &consumed),
                     TETHER_WOULD_BLOCK);
    assert_int_equal(consumed, 4);
    assert_int_equal(off, sizeof stream - 3);
    free(p);
}

/* The client's decoder: the same as the full one for what a server sends; what only a client
 * sends comes back as its type alone, its body unread. */
static void test_decode_from_server(void **state)
{
    (void)state;
    static const uint8_t stream[] = {
        0x20, 0x02, 0x01, 0x00,                        /* CONNACK, session present */
        0x90, 0x03, 0x00, 0x01, 0x80,                  /* SUBACK, refused */
        0x32, 0x06, 0x00, 0x01, 't',  0x00, 0x02, 'x', /* PUBLISH QoS 1 */
        0x40, 0x02, 0x00, 0x07,                        /* PUBACK 7 */
        0xD0, 0x00,                                    /* PINGRESP */
    };
    uint8_t *p = heap_copy(stream, sizeof stream);
    size_t off = 0;
    while (off < sizeof stream) {
        tether_mqtt_packet full, device;
        size_t used_full = 0, used_device = 0;
        assert_int_equal(tether_mqtt_decode(p + off, sizeof stream - off, &full, &used_full),
                         TETHER_OK);
        assert_int_equal(
            tether_mqtt_decode_from_server(p + off, sizeof stream - off, &device, &used_device),
            TETHER_OK);
        assert_int_equal(used_device, used_full);
        assert_memory_equal(&device, &full, sizeof full);
        off += used_full;
    }
    free(p);

    /* Malformed is malformed for both. */
    static const uint8_t bad_puback[] = {0x40, 0x03, 0x00, 0x01, 0x00};
    static const uint8_t bad_connack[] = {0x20, 0x02, 0x02, 0x00};
    tether_mqtt_packet pkt;
    size_t used = 0;
    assert_int_equal(tether_mqtt_decode_from_server(bad_puback, sizeof bad_puback, &pkt, &used),
                     TETHER_MQTT_MALFORMED);
    assert_int_equal(tether_mqtt_decode_from_server(bad_connack, sizeof bad_connack, &pkt, &used),
                     TETHER_MQTT_MALFORMED);

    /* A CONNECT (even an empty, malformed one) and a SUBSCRIBE: the type, nothing read. */
    static const uint8_t connect[] = {0x10, 0x00};
    static const uint8_t subscribe[] = {0x82, 0x03, 0x00, 0x01, 0xFF};
    assert_int_equal(tether_mqtt_decode_from_server(connect, sizeof connect, &pkt, &used),
                     TETHER_OK);
    assert_int_equal(pkt.type, TETHER_MQTT_CONNECT);
    assert_int_equal(used, 2);
    assert_null(pkt.u.connect.client_id);
    assert_int_equal(tether_mqtt_decode_from_server(subscribe, sizeof subscribe, &pkt, &used),
                     TETHER_OK);
    assert_int_equal(pkt.type, TETHER_MQTT_SUBSCRIBE);
    assert_int_equal(pkt.remaining_len, 3);
    assert_int_equal(pkt.packet_id, 0);
    assert_int_equal(used, 5);
}

static void test_type_names(void **state)
{
    (void)state;
    static const char *names[] = {"RESERVED",  "CONNECT",  "CONNACK",     "PUBLISH",
                                  "PUBACK",    "PUBREC",   "PUBREL",      "PUBCOMP",
                                  "SUBSCRIBE", "SUBACK",   "UNSUBSCRIBE", "UNSUBACK",
                                  "PINGREQ",   "PINGRESP", "DISCONNECT",  "RESERVED"};
    for (unsigned i = 0; i < 16; i++)
        assert_string_equal(tether_mqtt_type_name(i), names[i]);
    assert_string_equal(tether_mqtt_type_name(16), "UNKNOWN");
    assert_string_equal(tether_mqtt_type_name(UINT32_MAX), "UNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_from_server),
        cmocka_unit_test(test_remaining_length_boundaries),
        cmocka_unit_test(test_remaining_length_too_large),
        cmocka_unit_test(test_remaining_length_five_bytes),
        cmocka_unit_test(test_remaining_length_not_shortest),
        cmocka_unit_test(test_fixed_header_arguments),
        cmocka_unit_test(test_connect_minimal),
        cmocka_unit_test(test_connect_full),
        cmocka_unit_test(test_connect_username_only),
        cmocka_unit_test(test_connect_empty_fields),
        cmocka_unit_test(test_connack),
        cmocka_unit_test(test_publish_qos0_retain),
        cmocka_unit_test(test_publish_qos1_qos2),
        cmocka_unit_test(test_publish_empty_payload),
        cmocka_unit_test(test_publish_header_sizes),
        cmocka_unit_test(test_acks),
        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_unsubscribe),
        cmocka_unit_test(test_filter_next_wrong_packet),
        cmocka_unit_test(test_suback),
        cmocka_unit_test(test_empty_packets),
        cmocka_unit_test(test_publish_max_remaining_length),
        cmocka_unit_test(test_publish_invalid_arguments),
        cmocka_unit_test(test_connect_invalid_arguments),
        cmocka_unit_test(test_other_invalid_arguments),
        cmocka_unit_test(test_filters_and_codes_too_many),
        cmocka_unit_test(test_encoders_need_out_len),
        cmocka_unit_test(test_filter_next_hand_made),
        cmocka_unit_test(test_malformed_reserved_types_and_flags),
        cmocka_unit_test(test_malformed_publish_flags),
        cmocka_unit_test(test_malformed_fixed_sizes),
        cmocka_unit_test(test_malformed_connack),
        cmocka_unit_test(test_malformed_packet_id_zero),
        cmocka_unit_test(test_malformed_utf8),
        cmocka_unit_test(test_malformed_publish_topic),
        cmocka_unit_test(test_malformed_subscribe),
        cmocka_unit_test(test_malformed_unsubscribe),
        cmocka_unit_test(test_malformed_suback),
        cmocka_unit_test(test_malformed_connect),
        cmocka_unit_test(test_stream_of_packets),
        cmocka_unit_test(test_type_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
