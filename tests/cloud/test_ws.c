/* Unit tests of the WebSocket upgrade and framing (cloud/common/ws.c) that carry MQTT over
 * WebSockets into the local cloud: good input from the RFC 6455 examples and the Azure
 * SDKs' requests, and malformed input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

#include "check.h"

static enum tc_ws_handshake shake(const char *req, size_t *used, char *resp)
{
    return tc_ws_handshake(req, strlen(req), used, resp, 512);
}

static void test_handshake(void)
{
    char resp[512];
    size_t used = 0;
    /* RFC 6455 section 1.3's key and accept value; the Node SDK's subprotocol. */
    const char *node = "GET /$iothub/websocket HTTP/1.1\r\n"
                       "Host: localhost:443\r\n"
                       "Connection: Upgrade\r\nUpgrade: websocket\r\n"
                       "Sec-WebSocket-Version: 13\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
    CHECK(shake(node, &used, resp) == TC_WS_UPGRADE);
    CHECK(used == strlen(node));
    CHECK(strstr(resp, "HTTP/1.1 101 ") == resp);
    CHECK(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
    CHECK(strstr(resp, "Sec-WebSocket-Protocol: mqtt\r\n") != NULL);

    /* The C SDKs: "MQTT", a query, header names in other cases, token lists, a frame
     * already behind the request. */
    char csdk[600];
    snprintf(csdk, sizeof csdk, "%s",
             "GET /$iothub/websocket?iothub-no-client-cert=true HTTP/1.1\r\n"
             "host: h\r\nconnection: keep-alive, Upgrade\r\nupgrade: WebSocket\r\n"
             "sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "sec-websocket-protocol: chat, MQTT\r\n\r\n\x82\x80");
    CHECK(shake(csdk, &used, resp) == TC_WS_UPGRADE);
    CHECK(used == strlen(csdk) - 2);
    CHECK(strstr(resp, "Sec-WebSocket-Protocol: MQTT\r\n") != NULL);

    /* Percent-encoded dollar sign. */
    char pct[600];
    snprintf(pct, sizeof pct, "GET /%%24iothub/websocket HTTP/1.1\r\n%s", strchr(node, '\n') + 1);
    CHECK(shake(pct, &used, resp) == TC_WS_UPGRADE);

    /* Incomplete: wait for more; too long: refuse. */
    CHECK(tc_ws_handshake(node, strlen(node) - 1, &used, resp, sizeof resp) == TC_WS_NEED_MORE);
    char *big = malloc(TC_WS_REQUEST_MAX + 10);
    memset(big, 'a', TC_WS_REQUEST_MAX + 10);
    CHECK(tc_ws_handshake(big, TC_WS_REQUEST_MAX + 10, &used, resp, sizeof resp) ==
          TC_WS_TOO_LARGE);
    free(big);

    /* Refusals. */
    const char *bad[] = {
        "GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        "GET /$iothub/websocketX HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(shake(bad[i], &used, resp) == TC_WS_NOT_FOUND);
        CHECK(strstr(resp, "HTTP/1.1 404 ") == resp);
    }
    const char *refused[] = {
        /* no subprotocol, another subprotocol */
        "GET /$iothub/websocket HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: mqttv3.1x\r\n\r\n",
        /* version 8, a short key, no Upgrade, POST, HTTP/1.0, a header without a colon */
        "GET /$iothub/websocket HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: abcd\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.1\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
        "POST /$iothub/websocket HTTP/1.1\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.0\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET /$iothub/websocket HTTP/1.1\r\n: empty name\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        CHECK(shake(refused[i], &used, resp) == TC_WS_BAD);
        CHECK(strstr(resp, "HTTP/1.1 400 ") == resp);
        CHECK(used == 0);
    }
}

/* A client frame: FIN + opcode, masked with key "\x37\xfa\x21\x3d" (RFC 6455 5.7). */
static size_t frame(uint8_t *out, int fin, uint8_t op, const uint8_t *payload, size_t len)
{
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = 0;
    out[n++] = (uint8_t)((fin ? 0x80 : 0) | op);
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    }
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++) {
        out[n + i] = payload[i] ^ key[i & 3];
    }
    return n + len;
}

/* Decode everything in in[] feeding step bytes at a time; collects data into out. */
static enum tc_ws_event decode_all(const uint8_t *in, size_t len, size_t step, uint8_t *out,
                                   size_t *out_len, int *pings)
{
    struct tc_ws_decoder d;
    memset(&d, 0, sizeof d);
    size_t at = 0;
    *out_len = 0;
    *pings = 0;
    while (at < len) {
        size_t chunk = len - at < step ? len - at : step;
        size_t used = 0;
        size_t got = 0;
        enum tc_ws_event ev =
            tc_ws_decode(&d, in + at, chunk, &used, out + *out_len, 7, &got); /* small out */
        at += used;
        *out_len += got;
        if (ev == TC_WS_EV_PING) {
            (*pings)++;
            CHECK(d.ctrl_len == 2 && memcmp(d.ctrl, "hi", 2) == 0);
        } else if (ev == TC_WS_EV_CLOSE || ev == TC_WS_EV_ERROR) {
            return ev;
        }
        if (used == 0 && got == 0 && ev == TC_WS_EV_NONE) {
            CHECK(chunk == 0);
            break;
        }
    }
    return TC_WS_EV_NONE;
}

static void test_frames(void)
{
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof msg; i++) {
        msg[i] = (uint8_t)(i * 7);
    }
    uint8_t in[1024];
    uint8_t out[1024];
    size_t n = 0;
    /* a binary message in two fragments with a ping between them, then a 300-byte frame
     * (16-bit length), then an empty binary frame and a pong (ignored) */
    n += frame(in + n, 0, TC_WS_OP_BINARY, msg, 10);
    n += frame(in + n, 1, TC_WS_OP_PING, (const uint8_t *)"hi", 2);
    n += frame(in + n, 1, TC_WS_OP_CONT, msg + 10, 20);
    n += frame(in + n, 1, TC_WS_OP_BINARY, msg + 30, 270);
    n += frame(in + n, 1, TC_WS_OP_BINARY, msg, 0);
    n += frame(in + n, 1, TC_WS_OP_PONG, msg, 3);
    for (size_t step = 1; step <= n; step = step * 3 + 1) {
        size_t got = 0;
        int pings = 0;
        CHECK(decode_all(in, n, step, out, &got, &pings) == TC_WS_EV_NONE);
        CHECK(got == 300 && memcmp(out, msg, 300) == 0);
        CHECK(pings == 1);
    }
    /* close */
    size_t m = frame(in, 1, TC_WS_OP_CLOSE, (const uint8_t *)"\x03\xe8", 2);
    size_t got = 0;
    int pings = 0;
    CHECK(decode_all(in, m, m, out, &got, &pings) == TC_WS_EV_CLOSE);

    /* errors: text, unmasked, reserved bits, reserved opcode, continuation first, a new
     * message inside a fragmented one, fragmented or long control frames, 64-bit length
     * with the top bit set */
    uint8_t e[200];
    size_t k = 0;
    uint8_t bad[10][200];
    size_t bl[10];
    bl[k] = frame(bad[k], 1, TC_WS_OP_TEXT, msg, 4), k++;
    bl[k] = frame(bad[k], 1, TC_WS_OP_BINARY, msg, 4), bad[k][1] &= 0x7f, k++;
    bl[k] = frame(bad[k], 1, TC_WS_OP_BINARY, msg, 4), bad[k][0] |= 0x40, k++;
    bl[k] = frame(bad[k], 1, 0x3, msg, 4), k++;
    bl[k] = frame(bad[k], 1, TC_WS_OP_CONT, msg, 4), k++;
    bl[k] = frame(bad[k], 0, TC_WS_OP_BINARY, msg, 4);
    bl[k] += frame(bad[k] + bl[k], 1, TC_WS_OP_BINARY, msg, 4), k++;
    bl[k] = frame(bad[k], 0, TC_WS_OP_PING, msg, 4), k++;
    bl[k] = frame(bad[k], 1, TC_WS_OP_PING, msg, 126), k++;
    memcpy(bad[k], "\x82\xff\x80\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00", 14);
    bl[k] = 14, k++;
    bl[k] = frame(bad[k], 1, 0xB, msg, 0), k++;
    for (size_t i = 0; i < k; i++) {
        CHECK(decode_all(bad[i], bl[i], 1, e, &got, &pings) == TC_WS_EV_ERROR);
        CHECK(decode_all(bad[i], bl[i], bl[i], e, &got, &pings) == TC_WS_EV_ERROR);
    }
}

static void test_frame_header(void)
{
    uint8_t h[10];
    CHECK(tc_ws_frame_header(TC_WS_OP_BINARY, 5, h) == 2 && h[0] == 0x82 && h[1] == 5);
    CHECK(tc_ws_frame_header(TC_WS_OP_BINARY, 126, h) == 4 && h[1] == 126 && h[2] == 0 &&
          h[3] == 126);
    CHECK(tc_ws_frame_header(TC_WS_OP_PONG, 70000, h) == 10 && h[0] == 0x8a && h[1] == 127 &&
          h[7] == 0x01 && h[8] == 0x11 && h[9] == 0x70);
}

/* A server_name extension naming host. */
static size_t sni(unsigned char *out, const char *host)
{
    size_t n = strlen(host);
    out[0] = (unsigned char)((n + 3) >> 8);
    out[1] = (unsigned char)(n + 3);
    out[2] = 0;
    out[3] = (unsigned char)(n >> 8);
    out[4] = (unsigned char)n;
    memcpy(out + 5, host, n);
    return n + 5;
}

static void test_tls13_host(void)
{
    unsigned char e[300];
    CHECK(tc_tls13_host(e, sni(e, "myhub.device.azure-devices.net")) == 1);
    CHECK(tc_tls13_host(e, sni(e, "tether-hub-1.DEVICE.localhost")) == 1);
    const char *no[] = {"myhub.azure-devices.net",
                        "global.azure-devices-provisioning.net",
                        "localhost",
                        "device.localhost",
                        ".device.localhost",
                        "hub.device.",
                        "hub.device",
                        "hub.devices.localhost",
                        "hub.x.device.localhost",
                        "hub.device..x"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        CHECK(tc_tls13_host(e, sni(e, no[i])) == 0);
    }
    /* malformed: lengths that disagree, another name type, empty, absent */
    size_t n = sni(e, "myhub.device.azure-devices.net");
    CHECK(tc_tls13_host(e, n - 1) == 0);
    e[4]++;
    CHECK(tc_tls13_host(e, n) == 0);
    n = sni(e, "myhub.device.azure-devices.net");
    e[2] = 1;
    CHECK(tc_tls13_host(e, n) == 0);
    CHECK(tc_tls13_host(e, 0) == 0 && tc_tls13_host(NULL, 10) == 0);
    CHECK(tc_tls13_host(e, sni(e, "")) == 0);
}

int main(void)
{
    test_tls13_host();
    test_handshake();
    test_frames();
    test_frame_header();
    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("cloud websocket: all checks passed\n");
    return 0;
}
