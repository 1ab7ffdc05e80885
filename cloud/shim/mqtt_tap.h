/* A passive reader of one direction of an MQTT 3.1.1 / 5 byte stream, for the TLS shim.
 *
 * Why: Mosquitto 2.0's plugin interface has no PUBACK event, and IoT Hub completes a
 * cloud-to-device message when the device acknowledges it (PUBACK). The shim sees every
 * byte the broker reads and writes on a TLS connection (SSL_read / SSL_write), so it can
 * tell the plugin, per connection, which QoS 1 PUBLISH went out with which packet id and
 * which PUBACK came back. This reader only looks: it never changes, holds back or delays a
 * byte. It frames packets (fixed header, Remaining Length, body) and reports the three
 * packets the plugin needs; everything else is skipped. On the WebSocket listener it reads
 * the stream the shim has already taken out of the frames (common/ws.c), never frames. A
 * stream that breaks the framing is given up for good (-1) and the plugin falls back to
 * its timing rule for that connection.
 *
 * Untrusted input: the client's bytes. State per direction is fixed (struct below, 592
 * bytes on x86-64 by sizeof); no allocation. Unit tests: tests/cloud/test_parsers.c; fuzz
 * target: cloud/fuzz/fuzz_cloud_parsers.c. Packet layouts: MQTT 3.1.1 sections 2.2, 3.1,
 * 3.3, 3.4; MQTT 5.0 sections 2.1, 3.1, 3.3, 3.4. */
#ifndef TC_MQTT_TAP_H
#define TC_MQTT_TAP_H

#include <stddef.h>
#include <stdint.h>

/* Body bytes kept per packet: the client id, and a C2D topic as far as its message id,
 * the longest being 2 (topic length) + "devices/" + 128 + "/messages/devicebound/" +
 * "%24.mid=" + 3 * 128 (every character encoded) + "&" = 553. */
#define TC_TAP_KEEP 576

/* Each event is reported from one direction only: packet ids are numbered apart in each
 * direction, so the broker's PUBACK of a client's PUBLISH says nothing of the broker's
 * PUBLISH with the same id. */
enum tc_tap_event {
    TC_TAP_CONNECT = 1,  /* client: data = client id (may be empty when beyond TC_TAP_KEEP) */
    TC_TAP_PUBLISH_QOS1, /* broker: data = topic, or its first bytes; packet_id set */
    TC_TAP_PUBACK,       /* client: packet_id set */
};

enum tc_tap_first {
    TC_TAP_FIRST_CONNECT = 0x10, /* client to broker: the stream starts with CONNECT */
    TC_TAP_FIRST_CONNACK = 0x20, /* broker to client: the stream starts with CONNACK */
};

struct tc_tap {
    uint8_t state;       /* 0 first byte of a packet, 1 Remaining Length, 2 body, 3 dead */
    uint8_t first;       /* enum tc_tap_first, until the first packet has begun */
    uint8_t from_client; /* the direction: client to broker (1) or broker to client (0) */
    uint8_t header;
    uint8_t len_bytes;
    uint32_t remaining;
    uint32_t pos;
    uint16_t packet_id;
    unsigned char keep[TC_TAP_KEEP];
};

typedef void (*tc_tap_fn)(void *ctx, enum tc_tap_event event, const char *data, size_t len,
                          unsigned packet_id);

/* Start a direction; first is what its first packet must be. */
void tc_tap_init(struct tc_tap *t, enum tc_tap_first first);
/* Read n bytes of the stream; fn is called for each complete packet of interest.
 * Returns 0, or -1 once the stream has been given up (then and afterwards). */
int tc_tap_feed(struct tc_tap *t, const unsigned char *p, size_t n, tc_tap_fn fn, void *ctx);

#endif
