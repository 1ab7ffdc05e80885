/* MQTT over WebSockets as Azure DPS and IoT Hub offer it: the HTTP/1.1 upgrade request on
 * `/$iothub/websocket` and the RFC 6455 framing. Pure code (no I/O), shared by the TLS shim
 * (which runs it inside Mosquitto, see shim/tls_shim.c), the unit tests and the fuzzer.
 *
 * Facts (PROTOCOL.md, "MQTT over WebSockets"): `wss://{host}:443/$iothub/websocket` for DPS
 * and hubs alike, subprotocol `mqtt` (the C SDKs send `MQTT`; both are accepted and the one
 * the client sent is echoed), MQTT 3.1.1 inside binary frames, X.509 or SAS. A hub device
 * without a certificate may add `?iothub-no-client-cert=true`. */
#ifndef TC_WS_H
#define TC_WS_H

#include <stddef.h>
#include <stdint.h>

/* Longest upgrade request accepted (request line and headers). */
#define TC_WS_REQUEST_MAX 8192

enum tc_ws_handshake {
    TC_WS_NEED_MORE = 0,   /* no blank line yet: read more */
    TC_WS_UPGRADE = 101,   /* a valid upgrade: answer 101 */
    TC_WS_BAD = 400,       /* not a WebSocket upgrade for MQTT, or malformed */
    TC_WS_NOT_FOUND = 404, /* a path other than /$iothub/websocket */
    TC_WS_TOO_LARGE = 431, /* no end of headers within TC_WS_REQUEST_MAX bytes */
};

/* Parse the upgrade request in req[0..len). On TC_WS_UPGRADE, *used is the request's length
 * (bytes after it are the first frames) and response (size >= 256) holds the 101 answer;
 * on an error status it holds the error answer (then close). Returns the status. */
enum tc_ws_handshake tc_ws_handshake(const char *req, size_t len, size_t *used, char *response,
                                     size_t size);

/* Incremental frame decoder for the client-to-server direction. */
enum tc_ws_event {
    TC_WS_EV_NONE = 0, /* needs more input */
    TC_WS_EV_DATA,     /* *produced payload bytes of a binary message are in out */
    TC_WS_EV_PING,     /* a complete ping: answer with a pong carrying ctrl[0..ctrl_len) */
    TC_WS_EV_CLOSE,    /* the client closed: answer with a close frame, then close */
    TC_WS_EV_ERROR,    /* protocol error (unmasked, text, reserved bits, bad control): close */
};

struct tc_ws_decoder {
    uint8_t header[14];
    size_t header_len;
    uint64_t remaining; /* payload bytes left in the current frame */
    uint8_t mask[4];
    unsigned mask_pos;
    uint8_t opcode;  /* of the current frame */
    uint8_t message; /* opcode of the message in progress (binary), 0 when none */
    uint8_t ctrl[125];
    size_t ctrl_len;
};

/* Feed in[0..in_len); *consumed bytes are used. Payload of binary frames is unmasked into
 * out[0..cap) (*produced bytes). Stops at the first control event or when out is full. */
enum tc_ws_event tc_ws_decode(struct tc_ws_decoder *d, const uint8_t *in, size_t in_len,
                              size_t *consumed, uint8_t *out, size_t cap, size_t *produced);

/* Server-to-client frame header (FIN, opcode, unmasked length) into hdr[10]; returns its
 * length. */
size_t tc_ws_frame_header(uint8_t opcode, uint64_t payload_len, uint8_t hdr[10]);

/* TLS versions by server name (PROTOCOL.md, "TLS"): DPS and a hub's regular host name speak
 * TLS 1.2 only; TLS 1.3 is offered only on a hub's separate device host name,
 * `{hub}.device.{suffix}` for the hub `{hub}.{suffix}` (Azure: `{hub}.device.azure-devices.net`,
 * the Node SDK's tls_13_device sample). ext[0..len) is the ClientHello's server_name
 * extension (RFC 6066 section 3). Returns 1 when it names such a device host name, else 0
 * (also for a malformed or absent extension). */
int tc_tls13_host(const unsigned char *ext, size_t len);

#define TC_WS_OP_CONT   0x0
#define TC_WS_OP_TEXT   0x1
#define TC_WS_OP_BINARY 0x2
#define TC_WS_OP_CLOSE  0x8
#define TC_WS_OP_PING   0x9
#define TC_WS_OP_PONG   0xA

#endif
