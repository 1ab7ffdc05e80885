/* WebSocket upgrade and framing for MQTT over WebSockets (RFC 6455). See ws.h. */
#include "ws.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

/* RFC 6455 section 1.3: the GUID appended to Sec-WebSocket-Key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static size_t find_end(const char *req, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(req + i, "\r\n\r\n", 4) == 0) {
            return i + 4;
        }
    }
    return 0;
}

/* Does the comma-separated list v[0..n) hold token (case-insensitive)? Writes the token as
 * the client spelled it into found (size >= 16) when given. */
static int has_token(const char *v, size_t n, const char *token, char *found)
{
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        size_t start = i;
        while (i < n && v[i] != ',') {
            i++;
        }
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) {
            end--;
        }
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0) {
            if (found != NULL) {
                memcpy(found, v + start, tl);
                found[tl] = '\0';
            }
            return 1;
        }
    }
    return 0;
}

static enum tc_ws_handshake answer(enum tc_ws_handshake status, char *response, size_t size)
{
    const char *reason = status == TC_WS_NOT_FOUND   ? "Not Found"
                         : status == TC_WS_TOO_LARGE ? "Request Header Fields Too Large"
                                                     : "Bad Request";
    snprintf(response, size, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             (int)status, reason);
    return status;
}

enum tc_ws_handshake tc_ws_handshake(const char *req, size_t len, size_t *used, char *response,
                                     size_t size)
{
    size_t end = find_end(req, len < TC_WS_REQUEST_MAX ? len : TC_WS_REQUEST_MAX);
    *used = 0;
    if (end == 0) {
        return len >= TC_WS_REQUEST_MAX ? answer(TC_WS_TOO_LARGE, response, size) : TC_WS_NEED_MORE;
    }
    /* Request line: GET SP target SP HTTP/1.1 */
    const char *line_end = memchr(req, '\r', end);
    size_t ll = (size_t)(line_end - req);
    if (ll < 14 || memcmp(req, "GET ", 4) != 0 || memcmp(req + ll - 9, " HTTP/1.1", 9) != 0) {
        return answer(TC_WS_BAD, response, size);
    }
    const char *target = req + 4;
    size_t tlen = ll - 13;
    const char *q = memchr(target, '?', tlen);
    size_t plen = q != NULL ? (size_t)(q - target) : tlen;
    if (!((plen == 18 && memcmp(target, "/$iothub/websocket", 18) == 0) ||
          (plen == 20 && strncasecmp(target, "/%24iothub/websocket", 20) == 0))) {
        return answer(TC_WS_NOT_FOUND, response, size);
    }
    int upgrade = 0;
    int connection = 0;
    int version = 0;
    char key[64] = "";
    char proto[16] = "";
    const char *p = line_end + 2;
    const char *stop = req + end - 2; /* the final CRLF */
    while (p < stop) {
        const char *eol = memchr(p, '\r', (size_t)(stop - p) + 1);
        if (eol == NULL || eol[1] != '\n') {
            return answer(TC_WS_BAD, response, size);
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p) {
            return answer(TC_WS_BAD, response, size);
        }
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) {
            v++;
        }
        size_t vl = (size_t)(eol - v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
            vl--;
        }
        if (nl == 7 && strncasecmp(p, "Upgrade", 7) == 0) {
            upgrade = has_token(v, vl, "websocket", NULL);
        } else if (nl == 10 && strncasecmp(p, "Connection", 10) == 0) {
            connection = has_token(v, vl, "upgrade", NULL);
        } else if (nl == 21 && strncasecmp(p, "Sec-WebSocket-Version", 21) == 0) {
            version = vl == 2 && memcmp(v, "13", 2) == 0;
        } else if (nl == 17 && strncasecmp(p, "Sec-WebSocket-Key", 17) == 0) {
            if (vl == 0 || vl >= sizeof key) {
                return answer(TC_WS_BAD, response, size);
            }
            memcpy(key, v, vl);
            key[vl] = '\0';
        } else if (nl == 22 && strncasecmp(p, "Sec-WebSocket-Protocol", 22) == 0) {
            has_token(v, vl, "mqtt", proto);
        }
        p = eol + 2;
    }
    /* The key is 16 random bytes in base64: 24 characters ending in "==". */
    unsigned char raw[20];
    if (!upgrade || !connection || !version || proto[0] == '\0' || strlen(key) != 24 ||
        EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18) {
        return answer(TC_WS_BAD, response, size);
    }
    unsigned char digest[SHA_DIGEST_LENGTH];
    char joined[64 + sizeof ws_guid];
    snprintf(joined, sizeof joined, "%s%s", key, ws_guid);
    SHA1((const unsigned char *)joined, strlen(joined), digest);
    unsigned char accept[32];
    EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
    snprintf(response, size,
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
             (const char *)accept, proto);
    *used = end;
    return TC_WS_UPGRADE;
}

/* Header bytes needed once the first two are known. */
static size_t header_need(const uint8_t *h)
{
    size_t n = 2 + 4; /* clients always mask (checked below) */
    uint8_t l = h[1] & 0x7f;
    return n + (l == 126 ? 2 : l == 127 ? 8 : 0);
}

/* The frame header in d->header is complete: check it and start the frame. */
static enum tc_ws_event start_frame(struct tc_ws_decoder *d)
{
    const uint8_t *h = d->header;
    int fin = (h[0] & 0x80) != 0;
    uint8_t op = h[0] & 0x0f;
    uint8_t l = h[1] & 0x7f;
    uint64_t len = l;
    size_t at = 2;
    if ((h[0] & 0x70) != 0 || (h[1] & 0x80) == 0) {
        return TC_WS_EV_ERROR; /* no extension was negotiated; client frames must be masked */
    }
    if (l == 126) {
        len = ((uint64_t)h[2] << 8) | h[3];
        at = 4;
    } else if (l == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) {
            len = (len << 8) | h[2 + i];
        }
        at = 10;
        if ((len >> 63) != 0) {
            return TC_WS_EV_ERROR;
        }
    }
    memcpy(d->mask, h + at, 4);
    d->mask_pos = 0;
    d->header_len = 0;
    d->remaining = len;
    d->opcode = op;
    d->ctrl_len = 0;
    if (op >= 0x8) {
        if (!fin || len > sizeof d->ctrl ||
            (op != TC_WS_OP_CLOSE && op != TC_WS_OP_PING && op != TC_WS_OP_PONG)) {
            return TC_WS_EV_ERROR;
        }
        return TC_WS_EV_NONE;
    }
    if (op == TC_WS_OP_CONT) {
        if (d->message == 0) {
            return TC_WS_EV_ERROR;
        }
    } else if (op == TC_WS_OP_BINARY && d->message == 0) {
        d->message = op;
    } else {
        return TC_WS_EV_ERROR; /* text (MQTT is binary), reserved, or a message inside one */
    }
    if (fin) {
        d->message = 0;
    }
    return TC_WS_EV_NONE;
}

static enum tc_ws_event end_control(struct tc_ws_decoder *d)
{
    uint8_t op = d->opcode;
    d->opcode = TC_WS_OP_CONT;
    return op == TC_WS_OP_CLOSE  ? TC_WS_EV_CLOSE
           : op == TC_WS_OP_PING ? TC_WS_EV_PING
                                 : TC_WS_EV_NONE;
}

enum tc_ws_event tc_ws_decode(struct tc_ws_decoder *d, const uint8_t *in, size_t in_len,
                              size_t *consumed, uint8_t *out, size_t cap, size_t *produced)
{
    size_t i = 0;
    size_t o = 0;
    enum tc_ws_event ev = TC_WS_EV_NONE;
    while (ev == TC_WS_EV_NONE) {
        if (d->remaining == 0 && d->opcode < 0x8) {
            /* between frames (or inside a header) */
            if (i == in_len || (o > 0 && d->header_len == 0)) {
                break; /* hand over the data before the next frame */
            }
            d->header[d->header_len++] = in[i++];
            if (d->header_len >= 2 && d->header_len == header_need(d->header)) {
                ev = start_frame(d);
                if (ev == TC_WS_EV_NONE && d->opcode >= 0x8 && d->remaining == 0) {
                    ev = end_control(d);
                }
            }
            continue;
        }
        size_t avail = in_len - i;
        size_t n = d->remaining < avail ? (size_t)d->remaining : avail;
        uint8_t *dst;
        if (d->opcode >= 0x8) {
            dst = d->ctrl + d->ctrl_len;
            d->ctrl_len += n;
        } else {
            n = n < cap - o ? n : cap - o;
            dst = out + o;
            o += n;
        }
        if (n == 0) {
            break;
        }
        for (size_t k = 0; k < n; k++) {
            dst[k] = in[i + k] ^ d->mask[d->mask_pos];
            d->mask_pos = (d->mask_pos + 1) & 3;
        }
        i += n;
        d->remaining -= n;
        if (d->remaining == 0 && d->opcode >= 0x8) {
            ev = end_control(d);
        }
    }
    *consumed = i;
    *produced = o;
    if (ev == TC_WS_EV_NONE && o > 0) {
        ev = TC_WS_EV_DATA;
    }
    return ev;
}

size_t tc_ws_frame_header(uint8_t opcode, uint64_t payload_len, uint8_t hdr[10])
{
    hdr[0] = (uint8_t)(0x80 | opcode);
    if (payload_len < 126) {
        hdr[1] = (uint8_t)payload_len;
        return 2;
    }
    if (payload_len < 65536) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(payload_len >> 8);
        hdr[3] = (uint8_t)payload_len;
        return 4;
    }
    hdr[1] = 127;
    for (int k = 0; k < 8; k++) {
        hdr[2 + k] = (uint8_t)(payload_len >> (56 - 8 * k));
    }
    return 10;
}

int tc_tls13_host(const unsigned char *ext, size_t len)
{
    /* ServerNameList: uint16 length, then entries of type (0 = host_name), uint16 length,
     * name. Only the first host_name counts (RFC 6066 allows one per type). */
    if (ext == NULL || len < 5 || (size_t)((ext[0] << 8) | ext[1]) != len - 2 || ext[2] != 0) {
        return 0;
    }
    size_t n = (size_t)((ext[3] << 8) | ext[4]);
    if (n == 0 || n > len - 5) {
        return 0;
    }
    const char *name = (const char *)ext + 5;
    const char *dot = memchr(name, '.', n);
    if (dot == NULL || dot == name) {
        return 0;
    }
    size_t rest = n - (size_t)(dot + 1 - name);
    /* "device." and at least one more label */
    return rest > 7 && strncasecmp(dot + 1, "device.", 7) == 0 && dot[8] != '.';
}
