/*
 * libFuzzer target for the MQTT decoder. The input is a byte stream; packets are decoded from
 * its front one after another until the decoder stops. For every packet decoded OK:
 *   - its views lie inside that packet's bytes and its sizes agree with the fixed header;
 *   - every strict prefix tried is reported incomplete, never OK;
 *   - SUBSCRIBE/UNSUBSCRIBE filters walk to exactly the decoded count;
 *   - the matching encoder sizes it, refuses one byte less, and writes the same bytes back
 *     (the decoder accepts only canonical packets, so encode(decode(x)) == x);
 *   - decoding those bytes gives the same fields;
 *   - the client's decoder (tether_mqtt_decode_from_server) agrees with the full one: the
 *     same verdict and size on every input, the same fields for what a server sends, and
 *     only the header fields for what only a client sends.
 * Any violation traps.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/mqtt_codec.h"
#include "fuzz_check.h"

static void check_views(const tether_mqtt_packet *pkt, const uint8_t *base, size_t n)
{
    switch (pkt->type) {
    case TETHER_MQTT_CONNECT: {
        const tether_mqtt_connect *c = &pkt->u.connect;
        CHECK(c->client_id != NULL);
        fuzz_check_inside(c->client_id, c->client_id_len, base, n);
        fuzz_check_inside(c->username, c->username_len, base, n);
        fuzz_check_inside(c->password, c->password_len, base, n);
        fuzz_check_inside(c->will_topic, c->will_topic_len, base, n);
        fuzz_check_inside(c->will_payload, c->will_payload_len, base, n);
        CHECK((c->will_topic == NULL) == (c->will_payload == NULL));
        CHECK(c->password == NULL || c->username != NULL);
        CHECK(c->will_qos <= 2);
        CHECK(c->client_id_len > 0 || c->clean_session);
        break;
    }
    case TETHER_MQTT_PUBLISH: {
        const tether_mqtt_publish *p = &pkt->u.publish;
        CHECK(p->topic != NULL && p->topic_len > 0 && p->payload != NULL);
        fuzz_check_inside(p->topic, p->topic_len, base, n);
        fuzz_check_inside(p->payload, p->payload_len, base, n);
        CHECK(p->qos <= 2);
        CHECK(p->qos == 0 ? p->packet_id == 0 && !p->dup : p->packet_id != 0);
        CHECK(p->packet_id == pkt->packet_id);
        break;
    }
    case TETHER_MQTT_SUBACK:
        CHECK(pkt->u.suback.count > 0);
        fuzz_check_inside(pkt->u.suback.return_codes, pkt->u.suback.count, base, n);
        break;
    case TETHER_MQTT_SUBSCRIBE:
    case TETHER_MQTT_UNSUBSCRIBE:
        CHECK(pkt->u.subscribe.count > 0);
        fuzz_check_inside(pkt->u.subscribe.filters, pkt->u.subscribe.filters_len, base, n);
        break;
    case TETHER_MQTT_CONNACK:
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_UNSUBACK:
    case TETHER_MQTT_PINGREQ:
    case TETHER_MQTT_PINGRESP:
    case TETHER_MQTT_DISCONNECT:
        break;
    }
}

static bool same_packet(const tether_mqtt_packet *a, const tether_mqtt_packet *b)
{
    if (a->type != b->type || a->flags != b->flags || a->remaining_len != b->remaining_len ||
        a->packet_id != b->packet_id)
        return false;
    switch (a->type) {
    case TETHER_MQTT_CONNECT: {
        const tether_mqtt_connect *x = &a->u.connect, *y = &b->u.connect;
        return fuzz_same(x->client_id, x->client_id_len, y->client_id, y->client_id_len) &&
               fuzz_same(x->username, x->username_len, y->username, y->username_len) &&
               fuzz_same(x->password, x->password_len, y->password, y->password_len) &&
               fuzz_same(x->will_topic, x->will_topic_len, y->will_topic, y->will_topic_len) &&
               fuzz_same(x->will_payload, x->will_payload_len, y->will_payload,
                         y->will_payload_len) &&
               x->will_qos == y->will_qos && x->will_retain == y->will_retain &&
               x->clean_session == y->clean_session && x->keep_alive_s == y->keep_alive_s;
    }
    case TETHER_MQTT_CONNACK:
        return a->u.connack.session_present == b->u.connack.session_present &&
               a->u.connack.return_code == b->u.connack.return_code;
    case TETHER_MQTT_PUBLISH: {
        const tether_mqtt_publish *x = &a->u.publish, *y = &b->u.publish;
        return fuzz_same(x->topic, x->topic_len, y->topic, y->topic_len) &&
               fuzz_same(x->payload, x->payload_len, y->payload, y->payload_len) &&
               x->qos == y->qos && x->retain == y->retain && x->dup == y->dup &&
               x->packet_id == y->packet_id;
    }
    case TETHER_MQTT_SUBACK:
        return fuzz_same(a->u.suback.return_codes, a->u.suback.count, b->u.suback.return_codes,
                         b->u.suback.count);
    case TETHER_MQTT_SUBSCRIBE:
    case TETHER_MQTT_UNSUBSCRIBE:
        return a->u.subscribe.count == b->u.subscribe.count &&
               fuzz_same(a->u.subscribe.filters, a->u.subscribe.filters_len, b->u.subscribe.filters,
                         b->u.subscribe.filters_len);
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_UNSUBACK:
    case TETHER_MQTT_PINGREQ:
    case TETHER_MQTT_PINGRESP:
    case TETHER_MQTT_DISCONNECT:
        return true;
    }
    return false;
}

/* Walks the filters into a new array (caller frees); NULL for other packet types. */
static tether_mqtt_filter *walk_filters(const tether_mqtt_packet *pkt)
{
    if (pkt->type != TETHER_MQTT_SUBSCRIBE && pkt->type != TETHER_MQTT_UNSUBSCRIBE)
        return NULL;
    size_t count = pkt->u.subscribe.count;
    tether_mqtt_filter *filters = malloc(count * sizeof *filters);
    CHECK(filters != NULL);
    size_t off = 0, i = 0;
    tether_mqtt_filter f;
    tether_status st;
    while ((st = tether_mqtt_filter_next(pkt, &off, &f)) == TETHER_OK) {
        CHECK(i < count);
        CHECK(f.filter != NULL && f.filter_len > 0);
        fuzz_check_inside(f.filter, f.filter_len, pkt->u.subscribe.filters,
                          pkt->u.subscribe.filters_len);
        CHECK(pkt->type == TETHER_MQTT_SUBSCRIBE ? f.qos <= 2 : f.qos == 0);
        filters[i++] = f;
    }
    CHECK(st == TETHER_WOULD_BLOCK);
    CHECK(i == count && off == pkt->u.subscribe.filters_len);
    return filters;
}

static tether_status encode(const tether_mqtt_packet *pkt, const tether_mqtt_filter *filters,
                            uint8_t *buf, size_t cap, size_t *out_len)
{
    switch (pkt->type) {
    case TETHER_MQTT_CONNECT:
        return tether_mqtt_encode_connect(&pkt->u.connect, buf, cap, out_len);
    case TETHER_MQTT_CONNACK:
        return tether_mqtt_encode_connack(pkt->u.connack.session_present,
                                          pkt->u.connack.return_code, buf, cap, out_len);
    case TETHER_MQTT_PUBLISH:
        return tether_mqtt_encode_publish(&pkt->u.publish, buf, cap, out_len);
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_UNSUBACK:
        return tether_mqtt_encode_ack(pkt->type, pkt->packet_id, buf, cap, out_len);
    case TETHER_MQTT_SUBSCRIBE:
        return tether_mqtt_encode_subscribe(pkt->packet_id, filters, pkt->u.subscribe.count, buf,
                                            cap, out_len);
    case TETHER_MQTT_UNSUBSCRIBE:
        return tether_mqtt_encode_unsubscribe(pkt->packet_id, filters, pkt->u.subscribe.count, buf,
                                              cap, out_len);
    case TETHER_MQTT_SUBACK:
        return tether_mqtt_encode_suback(pkt->packet_id, pkt->u.suback.return_codes,
                                         pkt->u.suback.count, buf, cap, out_len);
    case TETHER_MQTT_PINGREQ:
    case TETHER_MQTT_PINGRESP:
    case TETHER_MQTT_DISCONNECT:
        return tether_mqtt_encode_empty(pkt->type, buf, cap, out_len);
    }
    __builtin_trap();
}

/* A strict prefix of a valid packet is incomplete: WOULD_BLOCK, with the size once known. */
static void check_prefix(const uint8_t *pkt_bytes, size_t n, size_t cut, size_t header_len)
{
    uint8_t *copy = malloc(cut > 0 ? cut : 1); /* exact size: ASan sees any over-read */
    CHECK(copy != NULL);
    if (cut > 0)
        memcpy(copy, pkt_bytes, cut);
    tether_mqtt_packet pkt;
    size_t consumed = 1;
    CHECK(tether_mqtt_decode(copy, cut, &pkt, &consumed) == TETHER_WOULD_BLOCK);
    CHECK(consumed == (cut < header_len ? 0 : n));
    free(copy);
}

static void check_packet(const uint8_t *bytes, size_t n, const tether_mqtt_packet *pkt)
{
    uint8_t first;
    uint32_t remaining;
    size_t header_len;
    CHECK(tether_mqtt_decode_fixed_header(bytes, n, &first, &remaining, &header_len) == TETHER_OK);
    CHECK(header_len >= 2 && header_len <= 5 && header_len + remaining == n);
    CHECK(first == bytes[0] && pkt->type == first >> 4 && pkt->flags == (first & 0x0F));
    CHECK(pkt->remaining_len == remaining);

    /* The fixed header re-encodes to the same bytes. */
    uint8_t rl[4];
    size_t rl_len;
    CHECK(tether_mqtt_encode_remaining_length(remaining, rl, &rl_len) == TETHER_OK);
    CHECK(rl_len == header_len - 1 && memcmp(rl, bytes + 1, rl_len) == 0);

    check_views(pkt, bytes, n);
    check_prefix(bytes, n, n - 1, header_len);
    check_prefix(bytes, n, header_len - 1, header_len);
    if (n > header_len) /* a cut inside the body */
        check_prefix(bytes, n, header_len + (n - header_len) / 2, header_len);

    tether_mqtt_filter *filters = walk_filters(pkt);

    size_t need = 0;
    CHECK(encode(pkt, filters, NULL, 0, &need) == TETHER_BUFFER_TOO_SMALL);
    CHECK(need == n);
    uint8_t *out = malloc(n);
    CHECK(out != NULL);
    size_t len = 0;
    CHECK(encode(pkt, filters, out, n - 1, &len) == TETHER_BUFFER_TOO_SMALL && len == n);
    CHECK(encode(pkt, filters, out, n, &len) == TETHER_OK && len == n);
    CHECK(memcmp(out, bytes, n) == 0);

    tether_mqtt_packet again;
    size_t consumed = 0;
    CHECK(tether_mqtt_decode(out, n, &again, &consumed) == TETHER_OK && consumed == n);
    CHECK(same_packet(pkt, &again));
    free(out);
    free(filters);
}

/* The client's decoder against the full one's verdict on the same bytes. A packet only a
 * client sends may be malformed for the full decoder and still come back (type only) from
 * the client's, which does not read its body. */
static void check_from_server(const uint8_t *bytes, size_t n, tether_status st,
                              const tether_mqtt_packet *full, size_t consumed)
{
    tether_mqtt_packet pkt;
    size_t used = 0;
    tether_status ds = tether_mqtt_decode_from_server(bytes, n, &pkt, &used);
    unsigned type = n > 0 ? bytes[0] >> 4 : 0;
    bool client_only = type == TETHER_MQTT_CONNECT || type == TETHER_MQTT_SUBSCRIBE ||
                       type == TETHER_MQTT_UNSUBSCRIBE;
    if (!client_only || st == TETHER_WOULD_BLOCK) {
        CHECK(ds == st && used == consumed);
        if (st == TETHER_OK && !client_only)
            CHECK(memcmp(&pkt, full, sizeof pkt) == 0);
    } else if (ds == TETHER_OK) {
        CHECK(st == TETHER_OK || st == TETHER_MQTT_MALFORMED);
        CHECK(pkt.type == type && pkt.flags == (bytes[0] & 0x0Fu) && pkt.packet_id == 0);
        CHECK(used <= n && used > pkt.remaining_len && used - pkt.remaining_len <= 5);
        if (st == TETHER_OK)
            CHECK(used == consumed && pkt.remaining_len == full->remaining_len);
    } else {
        CHECK(ds == st); /* a bad header is bad for both */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        tether_mqtt_packet pkt;
        size_t consumed = 0;
        tether_status st = tether_mqtt_decode(data + off, size - off, &pkt, &consumed);
        check_from_server(data + off, size - off, st, &pkt, consumed);
        if (st == TETHER_WOULD_BLOCK) {
            /* Either the header is cut (0) or the packet is longer than what is left. */
            CHECK(consumed == 0 || consumed > size - off);
            break;
        }
        if (st != TETHER_OK) {
            CHECK(st == TETHER_MQTT_MALFORMED && consumed == 0);
            break;
        }
        CHECK(consumed >= 2 && consumed <= size - off);
        check_packet(data + off, consumed, &pkt);
        off += consumed;
    }
    return 0;
}
