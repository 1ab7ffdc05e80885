/*
 * MQTT 3.1.1 codec (see include/tether/mqtt_codec.h): pure functions, no allocation, no I/O,
 * no state. Section numbers refer to the OASIS MQTT 3.1.1 standard.
 *
 * The decoder accepts exactly what an encoder here can produce, and the encoders refuse any
 * input that would give a packet the decoder (or a strict broker) rejects, so that
 * encode(decode(bytes)) == bytes for every packet decoded OK.
 */
#include "tether/mqtt_codec.h"

#include <string.h>

#include "../proto/utf8.h"

/* Strings and binary fields carry a 16-bit length prefix (1.5.3). */
#define MAX_FIELD_LEN 65535u

/* The flag nibble PUBREL, SUBSCRIBE and UNSUBSCRIBE must carry (2.2.2). */
#define FLAGS_0010 0x2u

/* PUBLISH flag bits (3.3.1). */
#define PUBLISH_RETAIN 0x1u
#define PUBLISH_DUP    0x8u

/* CONNECT flag bits (3.1.2.3). */
#define CONNECT_RESERVED      0x01u
#define CONNECT_CLEAN_SESSION 0x02u
#define CONNECT_WILL          0x04u
#define CONNECT_WILL_RETAIN   0x20u
#define CONNECT_PASSWORD      0x40u
#define CONNECT_USERNAME      0x80u

/* Protocol name length prefix + "MQTT" + level + flags + keep alive (3.1.2). */
#define CONNECT_VARIABLE_HEADER_LEN 10u
#define PROTOCOL_LEVEL_311          4u

/* ---- UTF-8 and topic rules ---------------------------------------------------------------- */

/* Well-formed UTF-8 and no U+0000, which MQTT forbids in every string (1.5.3). */
static bool utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = s[i] != 0 ? tether_utf8_seq(s + i, n - i) : 0;
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* A topic name (PUBLISH, will topic): at least one character and no wildcards (4.7.1, 4.7.3). */
static bool topic_name_valid(const uint8_t *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+' || s[i] == '#')
            return false;
    }
    return true;
}

/* A topic filter: at least one character; '+' fills a whole level; '#' fills the whole last
 * level (4.7.1.2, 4.7.1.3). */
static bool topic_filter_valid(const uint8_t *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool level_start = i == 0 || s[i - 1] == '/';
        bool level_end = i + 1 == n || s[i + 1] == '/';
        if (s[i] == '+' && !(level_start && level_end))
            return false;
        if (s[i] == '#' && !(level_start && i + 1 == n))
            return false;
    }
    return true;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* A bounded cursor over a complete packet body: every read checks what is left. */
typedef struct reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
} reader;

static bool rd_u8(reader *r, uint8_t *v)
{
    if (r->len - r->pos < 1)
        return false;
    *v = r->p[r->pos++];
    return true;
}

static bool rd_u16(reader *r, uint16_t *v)
{
    if (r->len - r->pos < 2)
        return false;
    *v = (uint16_t)((unsigned)r->p[r->pos] << 8 | r->p[r->pos + 1]);
    r->pos += 2;
    return true;
}

/* A length-prefixed binary field. */
static bool rd_field(reader *r, const uint8_t **v, size_t *n)
{
    uint16_t len;
    if (!rd_u16(r, &len) || r->len - r->pos < len)
        return false;
    *v = r->p + r->pos;
    *n = len;
    r->pos += len;
    return true;
}

/* A length-prefixed UTF-8 string. */
static bool rd_string(reader *r, const char **s, size_t *n)
{
    const uint8_t *v;
    if (!rd_field(r, &v, n) || !utf8_valid(v, *n))
        return false;
    *s = (const char *)v;
    return true;
}

/* A packet identifier, which must be non-zero (2.3.1). */
static bool rd_packet_id(reader *r, uint16_t *id)
{
    return rd_u16(r, id) && *id != 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Writes are unchecked: every encoder sizes the packet and checks the capacity first. */
typedef struct writer {
    uint8_t *p;
    size_t pos;
} writer;

static void wr_u8(writer *w, uint8_t v)
{
    w->p[w->pos++] = v;
}

static void wr_u16(writer *w, size_t v)
{
    w->p[w->pos++] = (uint8_t)(v >> 8);
    w->p[w->pos++] = (uint8_t)(v & 0xFFu);
}

static void wr_bytes(writer *w, const void *v, size_t n)
{
    if (n > 0) /* v may be NULL when n is 0 */
        memcpy(w->p + w->pos, v, n);
    w->pos += n;
}

static void wr_field(writer *w, const void *v, size_t n)
{
    wr_u16(w, n);
    wr_bytes(w, v, n);
}

static size_t remaining_length_size(size_t value)
{
    if (value < 128u)
        return 1;
    if (value < 16384u)
        return 2;
    if (value < 2097152u)
        return 3;
    return 4;
}

/* Adds n to a remaining length, failing when the sum would exceed what the field can carry. */
static bool add_len(size_t *acc, size_t n)
{
    if (n > TETHER_MQTT_MAX_REMAINING_LENGTH - *acc)
        return false;
    *acc += n;
    return true;
}

/* Adds a length-prefixed field of n bytes. */
static bool add_field(size_t *acc, size_t n)
{
    return add_len(acc, 2) && add_len(acc, n);
}

/* Input checks shared by the encoders: a pointer may be NULL only for an empty field. */
static bool binary_arg_valid(const void *p, size_t n)
{
    return (p != NULL || n == 0) && n <= MAX_FIELD_LEN;
}

static bool string_arg_valid(const char *s, size_t n)
{
    return binary_arg_valid(s, n) && (n == 0 || utf8_valid((const uint8_t *)s, n));
}

static bool topic_name_arg_valid(const char *s, size_t n)
{
    return s != NULL && string_arg_valid(s, n) && topic_name_valid((const uint8_t *)s, n);
}

static bool topic_filter_arg_valid(const char *s, size_t n)
{
    return s != NULL && string_arg_valid(s, n) && topic_filter_valid((const uint8_t *)s, n);
}

/* 7 bits per byte, low group first, top bit set while more follow (2.2.3). The caller has
 * checked value <= TETHER_MQTT_MAX_REMAINING_LENGTH, so at most 4 bytes are written. */
static void wr_remaining_length(writer *w, size_t value)
{
    do {
        uint8_t b = (uint8_t)(value & 0x7Fu);
        value >>= 7;
        if (value > 0)
            b |= 0x80u;
        wr_u8(w, b);
    } while (value > 0);
}

/* Sizes the packet, applies the buf/cap/out_len contract and writes the fixed header. */
static tether_status begin_packet(uint8_t first_byte, size_t remaining, uint8_t *buf, size_t cap,
                                  size_t *out_len, writer *w)
{
    size_t total = 1 + remaining_length_size(remaining) + remaining;
    *out_len = total;
    if (buf == NULL || cap < total)
        return TETHER_BUFFER_TOO_SMALL;
    w->p = buf;
    w->pos = 0;
    wr_u8(w, first_byte);
    wr_remaining_length(w, remaining);
    return TETHER_OK;
}

static uint8_t first_byte(tether_mqtt_type type, unsigned flags)
{
    return (uint8_t)(((unsigned)type << 4) | (flags & 0x0Fu));
}

/* ---- fixed header ------------------------------------------------------------------------- */

tether_status tether_mqtt_encode_remaining_length(uint32_t value, uint8_t *out, size_t *out_len)
{
    if (out == NULL || out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (value > TETHER_MQTT_MAX_REMAINING_LENGTH)
        return TETHER_INVALID_ARGUMENT;
    writer w = {out, 0};
    wr_remaining_length(&w, value);
    *out_len = w.pos;
    return TETHER_OK;
}

tether_status tether_mqtt_decode_fixed_header(const uint8_t *buf, size_t len,
                                              uint8_t *out_first_byte, uint32_t *out_remaining,
                                              size_t *out_header_len)
{
    if ((buf == NULL && len > 0) || out_first_byte == NULL || out_remaining == NULL ||
        out_header_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    uint32_t value = 0;
    for (size_t i = 0; i < 4; i++) {
        if (len < i + 2)
            return TETHER_WOULD_BLOCK;
        uint8_t b = buf[i + 1];
        value |= (uint32_t)(b & 0x7Fu) << (7 * i);
        if ((b & 0x80u) == 0) {
            /* A last byte of 0 after others means a shorter form existed (2.2.3). */
            if (i > 0 && b == 0)
                return TETHER_MQTT_MALFORMED;
            *out_first_byte = buf[0];
            *out_remaining = value;
            *out_header_len = i + 2;
            return TETHER_OK;
        }
    }
    return TETHER_MQTT_MALFORMED; /* the fourth byte still said "more" */
}

/* ---- decoding ----------------------------------------------------------------------------- */

/* The flag nibble each packet type must carry (2.2.2, 3.3.1). Types 0 and 15 are reserved. */
static bool first_byte_valid(uint8_t b)
{
    unsigned flags = b & 0x0Fu;
    switch (b >> 4) {
    case TETHER_MQTT_PUBLISH: {
        unsigned qos = (flags >> 1) & 0x3u;
        return qos != 3 && !(qos == 0 && (flags & PUBLISH_DUP) != 0);
    }
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_SUBSCRIBE:
    case TETHER_MQTT_UNSUBSCRIBE:
        return flags == FLAGS_0010;
    case TETHER_MQTT_CONNECT:
    case TETHER_MQTT_CONNACK:
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_SUBACK:
    case TETHER_MQTT_UNSUBACK:
    case TETHER_MQTT_PINGREQ:
    case TETHER_MQTT_PINGRESP:
    case TETHER_MQTT_DISCONNECT:
        return flags == 0;
    default:
        return false;
    }
}

/* Types whose remaining length is fixed by the standard; false for the variable ones. */
static bool fixed_remaining_length(unsigned type, uint32_t *expected)
{
    switch (type) {
    case TETHER_MQTT_CONNACK:
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_UNSUBACK:
        *expected = 2;
        return true;
    case TETHER_MQTT_PINGREQ:
    case TETHER_MQTT_PINGRESP:
    case TETHER_MQTT_DISCONNECT:
        *expected = 0;
        return true;
    default:
        return false;
    }
}

static tether_status decode_connect(reader *r, tether_mqtt_connect *c)
{
    const uint8_t *name;
    size_t name_len;
    uint8_t level, flags;
    if (!rd_field(r, &name, &name_len) || name_len != 4 || memcmp(name, "MQTT", 4) != 0)
        return TETHER_MQTT_MALFORMED;
    if (!rd_u8(r, &level) || level != PROTOCOL_LEVEL_311)
        return TETHER_MQTT_MALFORMED;
    if (!rd_u8(r, &flags) || (flags & CONNECT_RESERVED) != 0)
        return TETHER_MQTT_MALFORMED;
    bool will = (flags & CONNECT_WILL) != 0;
    uint8_t will_qos = (uint8_t)((flags >> 3) & 0x3u);
    bool will_retain = (flags & CONNECT_WILL_RETAIN) != 0;
    bool has_user = (flags & CONNECT_USERNAME) != 0;
    bool has_password = (flags & CONNECT_PASSWORD) != 0;
    if (will_qos == 3 || (!will && (will_qos != 0 || will_retain)))
        return TETHER_MQTT_MALFORMED;
    if (has_password && !has_user)
        return TETHER_MQTT_MALFORMED;
    c->will_qos = will_qos;
    c->will_retain = will_retain;
    c->clean_session = (flags & CONNECT_CLEAN_SESSION) != 0;
    if (!rd_u16(r, &c->keep_alive_s))
        return TETHER_MQTT_MALFORMED;

    /* Payload order is fixed: client id, will topic, will message, user name, password. */
    if (!rd_string(r, &c->client_id, &c->client_id_len))
        return TETHER_MQTT_MALFORMED;
    if (c->client_id_len == 0 && !c->clean_session)
        return TETHER_MQTT_MALFORMED; /* 3.1.3-7 */
    if (will) {
        if (!rd_string(r, &c->will_topic, &c->will_topic_len) ||
            !topic_name_valid((const uint8_t *)c->will_topic, c->will_topic_len))
            return TETHER_MQTT_MALFORMED;
        if (!rd_field(r, &c->will_payload, &c->will_payload_len))
            return TETHER_MQTT_MALFORMED;
    }
    if (has_user && !rd_string(r, &c->username, &c->username_len))
        return TETHER_MQTT_MALFORMED;
    if (has_password && !rd_field(r, &c->password, &c->password_len))
        return TETHER_MQTT_MALFORMED;
    return TETHER_OK; /* the caller rejects bytes left over */
}

static tether_status decode_publish(reader *r, uint8_t flags, tether_mqtt_packet *out)
{
    tether_mqtt_publish *p = &out->u.publish;
    p->qos = (uint8_t)((flags >> 1) & 0x3u);
    p->retain = (flags & PUBLISH_RETAIN) != 0;
    p->dup = (flags & PUBLISH_DUP) != 0;
    if (!rd_string(r, &p->topic, &p->topic_len) ||
        !topic_name_valid((const uint8_t *)p->topic, p->topic_len))
        return TETHER_MQTT_MALFORMED;
    if (p->qos > 0) {
        if (!rd_packet_id(r, &p->packet_id))
            return TETHER_MQTT_MALFORMED;
        out->packet_id = p->packet_id;
    }
    p->payload = r->p + r->pos;
    p->payload_len = r->len - r->pos;
    r->pos = r->len;
    return TETHER_OK;
}

/* SUBSCRIBE (with a QoS byte per filter) and UNSUBSCRIBE: at least one valid filter. */
static tether_status decode_filters(reader *r, bool with_qos, tether_mqtt_packet *out)
{
    if (!rd_packet_id(r, &out->packet_id))
        return TETHER_MQTT_MALFORMED;
    out->u.subscribe.filters = r->p + r->pos;
    out->u.subscribe.filters_len = r->len - r->pos;
    size_t count = 0;
    while (r->pos < r->len) {
        const uint8_t *f;
        size_t n;
        if (!rd_field(r, &f, &n) || !utf8_valid(f, n) || !topic_filter_valid(f, n))
            return TETHER_MQTT_MALFORMED;
        if (with_qos) {
            uint8_t qos;
            if (!rd_u8(r, &qos) || qos > 2) /* also rejects the 6 reserved bits (3.8.3.1) */
                return TETHER_MQTT_MALFORMED;
        }
        count++;
    }
    if (count == 0)
        return TETHER_MQTT_MALFORMED; /* 3.8.3-3, 3.10.3-2 */
    out->u.subscribe.count = count;
    return TETHER_OK;
}

static tether_status decode_suback(reader *r, tether_mqtt_packet *out)
{
    if (!rd_packet_id(r, &out->packet_id) || r->pos == r->len)
        return TETHER_MQTT_MALFORMED;
    out->u.suback.return_codes = r->p + r->pos;
    out->u.suback.count = r->len - r->pos;
    for (; r->pos < r->len; r->pos++) {
        uint8_t code = r->p[r->pos];
        if (code > 2 && code != TETHER_MQTT_SUBACK_FAILURE)
            return TETHER_MQTT_MALFORMED;
    }
    return TETHER_OK;
}

/* The body of a packet a server sends. What only a client sends (CONNECT, SUBSCRIBE,
 * UNSUBSCRIBE) is passed over unread: a client refuses it whatever it holds, and a device
 * linked with --gc-sections then carries no decoder for it. */
static tether_status decode_server_body(reader *r, tether_mqtt_packet *out)
{
    switch (out->type) {
    case TETHER_MQTT_CONNACK: {
        uint8_t ack, code;
        if (!rd_u8(r, &ack) || !rd_u8(r, &code))
            return TETHER_MQTT_MALFORMED;
        /* Bits 7-1 are reserved; a refused connection has no session (3.2.2). */
        if ((ack & 0xFEu) != 0 || code > TETHER_MQTT_CONNACK_REFUSED_NOT_AUTHORIZED ||
            (ack != 0 && code != 0))
            return TETHER_MQTT_MALFORMED;
        out->u.connack.session_present = ack != 0;
        out->u.connack.return_code = code;
        return TETHER_OK;
    }
    case TETHER_MQTT_PUBLISH:
        return decode_publish(r, out->flags, out);
    case TETHER_MQTT_PUBACK:
    case TETHER_MQTT_PUBREC:
    case TETHER_MQTT_PUBREL:
    case TETHER_MQTT_PUBCOMP:
    case TETHER_MQTT_UNSUBACK:
        return rd_packet_id(r, &out->packet_id) ? TETHER_OK : TETHER_MQTT_MALFORMED;
    case TETHER_MQTT_SUBACK:
        return decode_suback(r, out);
    case TETHER_MQTT_CONNECT:
    case TETHER_MQTT_SUBSCRIBE:
    case TETHER_MQTT_UNSUBSCRIBE:
        r->pos = r->len;
        return TETHER_OK;
    default: /* PINGREQ, PINGRESP, DISCONNECT: nothing to read */
        return TETHER_OK;
    }
}

static tether_status decode_body(reader *r, tether_mqtt_packet *out)
{
    switch (out->type) {
    case TETHER_MQTT_CONNECT:
        return decode_connect(r, &out->u.connect);
    case TETHER_MQTT_SUBSCRIBE:
        return decode_filters(r, true, out);
    case TETHER_MQTT_UNSUBSCRIBE:
        return decode_filters(r, false, out);
    default:
        return decode_server_body(r, out);
    }
}

typedef tether_status (*body_decoder)(reader *r, tether_mqtt_packet *out);

static tether_status decode_with(body_decoder body, const uint8_t *buf, size_t len,
                                 tether_mqtt_packet *out, size_t *out_consumed)
{
    if ((buf == NULL && len > 0) || out == NULL || out_consumed == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_consumed = 0;
    memset(out, 0, sizeof *out);
    if (len == 0)
        return TETHER_WOULD_BLOCK;
    /* A bad first byte or a wrong fixed size is malformed whatever follows: say so at once
     * rather than wait for bytes that cannot make the packet valid. */
    if (!first_byte_valid(buf[0]))
        return TETHER_MQTT_MALFORMED;

    uint8_t first;
    uint32_t remaining;
    size_t header_len;
    tether_status st = tether_mqtt_decode_fixed_header(buf, len, &first, &remaining, &header_len);
    if (st != TETHER_OK)
        return st;
    unsigned type = (unsigned)first >> 4;
    uint32_t expected;
    if (fixed_remaining_length(type, &expected) && remaining != expected)
        return TETHER_MQTT_MALFORMED;

    size_t total = header_len + remaining;
    if (len < total) {
        *out_consumed = total;
        return TETHER_WOULD_BLOCK;
    }
    out->type = (tether_mqtt_type)type;
    out->flags = (uint8_t)(first & 0x0Fu);
    out->remaining_len = remaining;
    reader r = {buf + header_len, remaining, 0};
    st = body(&r, out);
    if (st == TETHER_OK && r.pos != r.len)
        st = TETHER_MQTT_MALFORMED; /* bytes left over inside the packet */
    if (st != TETHER_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    *out_consumed = total;
    return TETHER_OK;
}

tether_status tether_mqtt_decode(const uint8_t *buf, size_t len, tether_mqtt_packet *out,
                                 size_t *out_consumed)
{
    return decode_with(decode_body, buf, len, out, out_consumed);
}

tether_status tether_mqtt_decode_from_server(const uint8_t *buf, size_t len,
                                             tether_mqtt_packet *out, size_t *out_consumed)
{
    return decode_with(decode_server_body, buf, len, out, out_consumed);
}

tether_status tether_mqtt_filter_next(const tether_mqtt_packet *packet, size_t *offset,
                                      tether_mqtt_filter *out_filter)
{
    if (packet == NULL || offset == NULL || out_filter == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (packet->type != TETHER_MQTT_SUBSCRIBE && packet->type != TETHER_MQTT_UNSUBSCRIBE)
        return TETHER_INVALID_ARGUMENT;
    size_t len = packet->u.subscribe.filters_len;
    if (*offset > len || (packet->u.subscribe.filters == NULL && len > 0))
        return TETHER_INVALID_ARGUMENT;
    if (*offset == len)
        return TETHER_WOULD_BLOCK;
    /* The decoder validated the filters; the bounds are still checked in case the packet was
     * assembled by hand. */
    reader r = {packet->u.subscribe.filters, len, *offset};
    const uint8_t *f;
    size_t n;
    uint8_t qos = 0;
    if (!rd_field(&r, &f, &n))
        return TETHER_MQTT_MALFORMED;
    if (packet->type == TETHER_MQTT_SUBSCRIBE && !rd_u8(&r, &qos))
        return TETHER_MQTT_MALFORMED;
    out_filter->filter = (const char *)f;
    out_filter->filter_len = n;
    out_filter->qos = qos;
    *offset = r.pos;
    return TETHER_OK;
}

/* ---- encoding ----------------------------------------------------------------------------- */

static bool connect_arg_valid(const tether_mqtt_connect *c)
{
    if (!string_arg_valid(c->client_id, c->client_id_len))
        return false;
    if (c->client_id_len == 0 && !c->clean_session)
        return false; /* a client must not send it (3.1.3-7) */
    if (c->will_topic != NULL) {
        if (!topic_name_arg_valid(c->will_topic, c->will_topic_len) ||
            !binary_arg_valid(c->will_payload, c->will_payload_len) || c->will_qos > 2)
            return false;
    } else if (c->will_topic_len != 0 || c->will_payload != NULL || c->will_payload_len != 0 ||
               c->will_qos != 0 || c->will_retain) {
        return false; /* will details without a will topic: a caller mistake */
    }
    if (c->username != NULL ? !string_arg_valid(c->username, c->username_len)
                            : c->username_len != 0)
        return false;
    if (c->password != NULL) {
        if (c->username == NULL || !binary_arg_valid(c->password, c->password_len))
            return false; /* a password needs a user name (3.1.2-22) */
    } else if (c->password_len != 0) {
        return false;
    }
    return true;
}

tether_status tether_mqtt_encode_connect(const tether_mqtt_connect *c, uint8_t *buf, size_t cap,
                                         size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (c == NULL || !connect_arg_valid(c))
        return TETHER_INVALID_ARGUMENT;

    /* At most five fields of at most 2 + 65535 bytes: far below the remaining-length limit. */
    size_t rl = CONNECT_VARIABLE_HEADER_LEN + 2 + c->client_id_len;
    unsigned flags = 0;
    if (c->clean_session)
        flags |= CONNECT_CLEAN_SESSION;
    if (c->will_topic != NULL) {
        flags |= CONNECT_WILL | ((unsigned)c->will_qos << 3);
        if (c->will_retain)
            flags |= CONNECT_WILL_RETAIN;
        rl += 2 + c->will_topic_len + 2 + c->will_payload_len;
    }
    if (c->username != NULL) {
        flags |= CONNECT_USERNAME;
        rl += 2 + c->username_len;
    }
    if (c->password != NULL) {
        flags |= CONNECT_PASSWORD;
        rl += 2 + c->password_len;
    }

    writer w;
    tether_status st = begin_packet(first_byte(TETHER_MQTT_CONNECT, 0), rl, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_field(&w, "MQTT", 4);
    wr_u8(&w, PROTOCOL_LEVEL_311);
    wr_u8(&w, (uint8_t)flags);
    wr_u16(&w, c->keep_alive_s);
    wr_field(&w, c->client_id, c->client_id_len);
    if (c->will_topic != NULL) {
        wr_field(&w, c->will_topic, c->will_topic_len);
        wr_field(&w, c->will_payload, c->will_payload_len);
    }
    if (c->username != NULL)
        wr_field(&w, c->username, c->username_len);
    if (c->password != NULL)
        wr_field(&w, c->password, c->password_len);
    return TETHER_OK;
}

tether_status tether_mqtt_encode_connack(bool session_present, uint8_t return_code, uint8_t *buf,
                                         size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (return_code > TETHER_MQTT_CONNACK_REFUSED_NOT_AUTHORIZED ||
        (session_present && return_code != 0))
        return TETHER_INVALID_ARGUMENT;
    writer w;
    tether_status st = begin_packet(first_byte(TETHER_MQTT_CONNACK, 0), 2, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_u8(&w, session_present ? 1u : 0u);
    wr_u8(&w, return_code);
    return TETHER_OK;
}

tether_status tether_mqtt_encode_publish(const tether_mqtt_publish *p, uint8_t *buf, size_t cap,
                                         size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (p == NULL || !topic_name_arg_valid(p->topic, p->topic_len) || p->qos > 2 ||
        (p->payload == NULL && p->payload_len > 0))
        return TETHER_INVALID_ARGUMENT;
    if (p->qos == 0 && p->dup)
        return TETHER_INVALID_ARGUMENT; /* 3.3.1-2 */
    if (p->qos > 0 && p->packet_id == 0)
        return TETHER_INVALID_ARGUMENT;
    size_t rl = 0;
    if (!add_field(&rl, p->topic_len) || !add_len(&rl, p->qos > 0 ? 2u : 0u) ||
        !add_len(&rl, p->payload_len))
        return TETHER_INVALID_ARGUMENT;

    unsigned flags = (unsigned)p->qos << 1;
    if (p->retain)
        flags |= PUBLISH_RETAIN;
    if (p->dup)
        flags |= PUBLISH_DUP;
    writer w;
    tether_status st =
        begin_packet(first_byte(TETHER_MQTT_PUBLISH, flags), rl, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_field(&w, p->topic, p->topic_len);
    if (p->qos > 0)
        wr_u16(&w, p->packet_id);
    wr_bytes(&w, p->payload, p->payload_len);
    return TETHER_OK;
}

tether_status tether_mqtt_encode_ack(tether_mqtt_type type, uint16_t packet_id, uint8_t *buf,
                                     size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (type != TETHER_MQTT_PUBACK && type != TETHER_MQTT_PUBREC && type != TETHER_MQTT_PUBREL &&
        type != TETHER_MQTT_PUBCOMP && type != TETHER_MQTT_UNSUBACK)
        return TETHER_INVALID_ARGUMENT;
    if (packet_id == 0)
        return TETHER_INVALID_ARGUMENT;
    unsigned flags = type == TETHER_MQTT_PUBREL ? FLAGS_0010 : 0u;
    writer w;
    tether_status st = begin_packet(first_byte(type, flags), 2, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_u16(&w, packet_id);
    return TETHER_OK;
}

/* SUBSCRIBE and UNSUBSCRIBE differ only in the QoS byte after each filter. */
static tether_status encode_filters(tether_mqtt_type type, uint16_t packet_id,
                                    const tether_mqtt_filter *filters, size_t count, uint8_t *buf,
                                    size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (packet_id == 0 || filters == NULL || count == 0)
        return TETHER_INVALID_ARGUMENT;
    bool with_qos = type == TETHER_MQTT_SUBSCRIBE;
    size_t rl = 2;
    /* Size before scanning the strings: an oversized request fails without reading them. */
    for (size_t i = 0; i < count; i++) {
        if (!add_field(&rl, filters[i].filter_len) || !add_len(&rl, with_qos ? 1u : 0u))
            return TETHER_INVALID_ARGUMENT;
    }
    for (size_t i = 0; i < count; i++) {
        const tether_mqtt_filter *f = &filters[i];
        if (!topic_filter_arg_valid(f->filter, f->filter_len) || (with_qos && f->qos > 2))
            return TETHER_INVALID_ARGUMENT;
    }
    writer w;
    tether_status st = begin_packet(first_byte(type, FLAGS_0010), rl, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_u16(&w, packet_id);
    for (size_t i = 0; i < count; i++) {
        wr_field(&w, filters[i].filter, filters[i].filter_len);
        if (with_qos)
            wr_u8(&w, filters[i].qos);
    }
    return TETHER_OK;
}

tether_status tether_mqtt_encode_subscribe(uint16_t packet_id, const tether_mqtt_filter *filters,
                                           size_t count, uint8_t *buf, size_t cap, size_t *out_len)
{
    return encode_filters(TETHER_MQTT_SUBSCRIBE, packet_id, filters, count, buf, cap, out_len);
}

tether_status tether_mqtt_encode_unsubscribe(uint16_t packet_id, const tether_mqtt_filter *filters,
                                             size_t count, uint8_t *buf, size_t cap,
                                             size_t *out_len)
{
    return encode_filters(TETHER_MQTT_UNSUBSCRIBE, packet_id, filters, count, buf, cap, out_len);
}

tether_status tether_mqtt_encode_suback(uint16_t packet_id, const uint8_t *return_codes,
                                        size_t count, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    size_t rl = 2;
    if (packet_id == 0 || return_codes == NULL || count == 0 || !add_len(&rl, count))
        return TETHER_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++) {
        if (return_codes[i] > 2 && return_codes[i] != TETHER_MQTT_SUBACK_FAILURE)
            return TETHER_INVALID_ARGUMENT;
    }
    writer w;
    tether_status st = begin_packet(first_byte(TETHER_MQTT_SUBACK, 0), rl, buf, cap, out_len, &w);
    if (st != TETHER_OK)
        return st;
    wr_u16(&w, packet_id);
    wr_bytes(&w, return_codes, count);
    return TETHER_OK;
}

tether_status tether_mqtt_encode_empty(tether_mqtt_type type, uint8_t *buf, size_t cap,
                                       size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (type != TETHER_MQTT_PINGREQ && type != TETHER_MQTT_PINGRESP &&
        type != TETHER_MQTT_DISCONNECT)
        return TETHER_INVALID_ARGUMENT;
    writer w;
    return begin_packet(first_byte(type, 0), 0, buf, cap, out_len, &w);
}

const char *tether_mqtt_type_name(unsigned type)
{
    switch (type) {
    case 0:
    case 15:
        return "RESERVED";
    case TETHER_MQTT_CONNECT:
        return "CONNECT";
    case TETHER_MQTT_CONNACK:
        return "CONNACK";
    case TETHER_MQTT_PUBLISH:
        return "PUBLISH";
    case TETHER_MQTT_PUBACK:
        return "PUBACK";
    case TETHER_MQTT_PUBREC:
        return "PUBREC";
    case TETHER_MQTT_PUBREL:
        return "PUBREL";
    case TETHER_MQTT_PUBCOMP:
        return "PUBCOMP";
    case TETHER_MQTT_SUBSCRIBE:
        return "SUBSCRIBE";
    case TETHER_MQTT_SUBACK:
        return "SUBACK";
    case TETHER_MQTT_UNSUBSCRIBE:
        return "UNSUBSCRIBE";
    case TETHER_MQTT_UNSUBACK:
        return "UNSUBACK";
    case TETHER_MQTT_PINGREQ:
        return "PINGREQ";
    case TETHER_MQTT_PINGRESP:
        return "PINGRESP";
    case TETHER_MQTT_DISCONNECT:
        return "DISCONNECT";
    default:
        return "UNKNOWN"; /* not a 4-bit packet type at all */
    }
}
