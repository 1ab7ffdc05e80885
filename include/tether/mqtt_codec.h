/**
 * @file mqtt_codec.h
 * @brief MQTT 3.1.1 packet codec: pure functions, no I/O, no allocation.
 *
 * Encoders write one whole packet into a caller buffer. Each takes @p buf and @p cap and
 * reports the packet size in @p out_len: on success the bytes written; on
 * ::TETHER_BUFFER_TOO_SMALL the size needed. Passing `buf = NULL, cap = 0` therefore sizes a
 * packet without writing it.
 *
 * The decoder reads one packet from the front of a byte stream and returns views into that
 * same buffer (nothing is copied). It validates strictly as the MQTT 3.1.1 standard requires
 * (reserved flag bits, remaining-length encoding, string lengths, UTF-8 well-formedness and
 * no U+0000 in topics, non-zero packet identifiers, QoS 3, packet-specific sizes) and reports
 * ::TETHER_MQTT_MALFORMED for anything else.
 *
 * @code
 * uint8_t buf[128];
 * size_t len;
 * tether_mqtt_publish pub = {.topic = "devices/d1/messages/events/", .topic_len = 27,
 *                            .payload = (const uint8_t *)"hi", .payload_len = 2, .qos = 1,
 *                            .packet_id = 7};
 * if (tether_mqtt_encode_publish(&pub, buf, sizeof buf, &len) == TETHER_OK)
 *     send_all(buf, len);
 * @endcode
 */
#ifndef TETHER_MQTT_CODEC_H
#define TETHER_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest value the remaining-length field can carry (4 bytes of 7 bits). */
#define TETHER_MQTT_MAX_REMAINING_LENGTH 268435455u

/** Control packet types (the high nibble of the first byte). */
typedef enum tether_mqtt_type {
    TETHER_MQTT_CONNECT = 1,
    TETHER_MQTT_CONNACK = 2,
    TETHER_MQTT_PUBLISH = 3,
    TETHER_MQTT_PUBACK = 4,
    TETHER_MQTT_PUBREC = 5,
    TETHER_MQTT_PUBREL = 6,
    TETHER_MQTT_PUBCOMP = 7,
    TETHER_MQTT_SUBSCRIBE = 8,
    TETHER_MQTT_SUBACK = 9,
    TETHER_MQTT_UNSUBSCRIBE = 10,
    TETHER_MQTT_UNSUBACK = 11,
    TETHER_MQTT_PINGREQ = 12,
    TETHER_MQTT_PINGRESP = 13,
    TETHER_MQTT_DISCONNECT = 14
} tether_mqtt_type;

/** CONNACK return codes of MQTT 3.1.1. */
typedef enum tether_mqtt_connack_code {
    TETHER_MQTT_CONNACK_ACCEPTED = 0,
    TETHER_MQTT_CONNACK_REFUSED_PROTOCOL_VERSION = 1,
    TETHER_MQTT_CONNACK_REFUSED_IDENTIFIER = 2,
    TETHER_MQTT_CONNACK_REFUSED_SERVER_UNAVAILABLE = 3,
    TETHER_MQTT_CONNACK_REFUSED_BAD_CREDENTIALS = 4,
    TETHER_MQTT_CONNACK_REFUSED_NOT_AUTHORIZED = 5
} tether_mqtt_connack_code;

/** SUBACK return code meaning "refused". */
#define TETHER_MQTT_SUBACK_FAILURE 0x80u

/** CONNECT contents. Strings are not NUL-terminated views: pointer plus length. */
typedef struct tether_mqtt_connect {
    const char *client_id;
    size_t client_id_len;
    const char *username; /**< NULL: no user name. */
    size_t username_len;
    const uint8_t *password; /**< NULL: no password (needs a user name when set). */
    size_t password_len;
    const char *will_topic; /**< NULL: no will. */
    size_t will_topic_len;
    const uint8_t *will_payload;
    size_t will_payload_len;
    uint8_t will_qos;
    bool will_retain;
    bool clean_session;
    uint16_t keep_alive_s;
} tether_mqtt_connect;

/** PUBLISH contents. */
typedef struct tether_mqtt_publish {
    const char *topic;
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos; /**< 0, 1 or 2. */
    bool retain;
    bool dup;
    uint16_t packet_id; /**< Non-zero for QoS 1 and 2; ignored for QoS 0. */
} tether_mqtt_publish;

/** One topic filter of a SUBSCRIBE or UNSUBSCRIBE. */
typedef struct tether_mqtt_filter {
    const char *filter;
    size_t filter_len;
    uint8_t qos; /**< Requested QoS (SUBSCRIBE only). */
} tether_mqtt_filter;

/** A decoded packet. Pointers refer into the buffer given to tether_mqtt_decode(). */
typedef struct tether_mqtt_packet {
    tether_mqtt_type type;
    uint8_t flags;          /**< Low nibble of the first byte. */
    uint32_t remaining_len; /**< Remaining length from the fixed header. */
    uint16_t packet_id;     /**< PUBLISH (QoS>0), PUBACK..PUBCOMP, (UN)SUBSCRIBE, (UN)SUBACK. */
    union {
        struct {
            bool session_present;
            uint8_t return_code;
        } connack;
        tether_mqtt_publish publish;
        tether_mqtt_connect connect;
        struct {
            const uint8_t *return_codes; /**< One per filter: 0, 1, 2 or 0x80. */
            size_t count;
        } suback;
        struct {
            /** Raw payload of filters; walk it with tether_mqtt_filter_next(). */
            const uint8_t *filters;
            size_t filters_len;
            size_t count;
        } subscribe; /**< For SUBSCRIBE and UNSUBSCRIBE. */
    } u;
} tether_mqtt_packet;

/**
 * Writes @p value as a remaining-length field.
 * @param out at least 4 bytes.
 * @return TETHER_INVALID_ARGUMENT when @p value exceeds TETHER_MQTT_MAX_REMAINING_LENGTH.
 */
TETHER_MUST_USE tether_status tether_mqtt_encode_remaining_length(uint32_t value, uint8_t *out,
                                                                  size_t *out_len);

/**
 * Reads a fixed header from the front of @p buf.
 * @return TETHER_OK with the first byte, the remaining length and the header size;
 *         TETHER_WOULD_BLOCK if @p buf ends before the header does (read more and retry);
 *         TETHER_MQTT_MALFORMED if the remaining length takes more than 4 bytes or is not
 *         encoded in its shortest form.
 */
TETHER_MUST_USE tether_status tether_mqtt_decode_fixed_header(const uint8_t *buf, size_t len,
                                                              uint8_t *out_first_byte,
                                                              uint32_t *out_remaining,
                                                              size_t *out_header_len);

/**
 * Decodes the packet at the front of @p buf.
 * @param out_consumed size of the whole packet (header + remaining length) on success; on
 *        TETHER_WOULD_BLOCK, the total size needed when the header was complete, else 0.
 * @return TETHER_OK, TETHER_WOULD_BLOCK (incomplete: read more), or TETHER_MQTT_MALFORMED.
 */
TETHER_MUST_USE tether_status tether_mqtt_decode(const uint8_t *buf, size_t len,
                                                 tether_mqtt_packet *out, size_t *out_consumed);

/**
 * The decoder a client needs: as tether_mqtt_decode() for every packet a server sends, and
 * for those only a client sends (CONNECT, SUBSCRIBE, UNSUBSCRIBE) the type, flags and
 * remaining length with no fields, the body not read. A client refuses such a packet whatever
 * it holds; with this decoder a device linked with `--gc-sections` carries no code to read
 * them. The MQTT client (mqtt.h) uses it.
 * @return as tether_mqtt_decode().
 */
TETHER_MUST_USE tether_status tether_mqtt_decode_from_server(const uint8_t *buf, size_t len,
                                                             tether_mqtt_packet *out,
                                                             size_t *out_consumed);

/**
 * Walks the filters of a decoded SUBSCRIBE or UNSUBSCRIBE.
 * @param offset in/out position in packet->u.subscribe.filters, start at 0.
 * @return TETHER_OK with the next filter, TETHER_WOULD_BLOCK when there is none left.
 */
TETHER_MUST_USE tether_status tether_mqtt_filter_next(const tether_mqtt_packet *packet,
                                                      size_t *offset,
                                                      tether_mqtt_filter *out_filter);

/* Encoders: see the file comment for the buf/cap/out_len contract. */

TETHER_MUST_USE tether_status tether_mqtt_encode_connect(const tether_mqtt_connect *c, uint8_t *buf,
                                                         size_t cap, size_t *out_len);
TETHER_MUST_USE tether_status tether_mqtt_encode_connack(bool session_present, uint8_t return_code,
                                                         uint8_t *buf, size_t cap, size_t *out_len);
TETHER_MUST_USE tether_status tether_mqtt_encode_publish(const tether_mqtt_publish *p, uint8_t *buf,
                                                         size_t cap, size_t *out_len);
/** PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet id and nothing else. */
TETHER_MUST_USE tether_status tether_mqtt_encode_ack(tether_mqtt_type type, uint16_t packet_id,
                                                     uint8_t *buf, size_t cap, size_t *out_len);
TETHER_MUST_USE tether_status tether_mqtt_encode_subscribe(uint16_t packet_id,
                                                           const tether_mqtt_filter *filters,
                                                           size_t count, uint8_t *buf, size_t cap,
                                                           size_t *out_len);
TETHER_MUST_USE tether_status tether_mqtt_encode_suback(uint16_t packet_id,
                                                        const uint8_t *return_codes, size_t count,
                                                        uint8_t *buf, size_t cap, size_t *out_len);
TETHER_MUST_USE tether_status tether_mqtt_encode_unsubscribe(uint16_t packet_id,
                                                             const tether_mqtt_filter *filters,
                                                             size_t count, uint8_t *buf, size_t cap,
                                                             size_t *out_len);
/** PINGREQ, PINGRESP and DISCONNECT: two bytes. */
TETHER_MUST_USE tether_status tether_mqtt_encode_empty(tether_mqtt_type type, uint8_t *buf,
                                                       size_t cap, size_t *out_len);

/** "CONNECT", "PUBLISH", ...; "RESERVED" for 0 and 15. */
const char *tether_mqtt_type_name(unsigned type);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_MQTT_CODEC_H */
