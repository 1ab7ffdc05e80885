/* See mqtt_tap.h. */
#include "mqtt_tap.h"

#include <string.h>

#define DEAD 3

void tc_tap_init(struct tc_tap *t, enum tc_tap_first first)
{
    memset(t, 0, sizeof *t);
    t->first = (uint8_t)first;
}

static uint16_t be16(const unsigned char *p)
{
    return (uint16_t)(((unsigned)p[0] << 8) | p[1]);
}

/* CONNECT body: protocol name, level, flags, keep-alive, [v5 properties], client id. */
static void connect_done(const struct tc_tap *t, size_t kept, tc_tap_fn fn, void *ctx)
{
    const unsigned char *b = t->keep;
    size_t at = 0;
    if (kept < 2) {
        fn(ctx, TC_TAP_CONNECT, "", 0, 0);
        return;
    }
    at = 2u + be16(b);
    if (at + 4 > kept) {
        fn(ctx, TC_TAP_CONNECT, "", 0, 0);
        return;
    }
    unsigned level = b[at];
    at += 4; /* level, flags, keep-alive */
    if (level == 5) {
        size_t props = 0;
        unsigned shift = 0;
        for (int i = 0; i < 4; i++, at++) {
            if (at >= kept) {
                fn(ctx, TC_TAP_CONNECT, "", 0, 0);
                return;
            }
            props |= (size_t)(b[at] & 0x7f) << shift;
            shift += 7;
            if ((b[at] & 0x80) == 0) {
                at++;
                break;
            }
        }
        at += props;
    }
    if (at + 2 > kept || at + 2 + be16(b + at) > kept) {
        fn(ctx, TC_TAP_CONNECT, "", 0, 0);
        return;
    }
    fn(ctx, TC_TAP_CONNECT, (const char *)b + at + 2, be16(b + at), 0);
}

static void packet_done(struct tc_tap *t, tc_tap_fn fn, void *ctx)
{
    size_t kept = t->remaining < TC_TAP_KEEP ? t->remaining : TC_TAP_KEEP;
    unsigned type = t->header >> 4;
    if (type == 1) {
        connect_done(t, kept, fn, ctx);
    } else if (type == 4 && t->remaining >= 2) {
        fn(ctx, TC_TAP_PUBACK, NULL, 0, be16(t->keep));
    } else if (type == 3 && ((t->header >> 1) & 3) == 1 && t->remaining >= 2) {
        size_t topic_len = be16(t->keep);
        if (2 + topic_len + 2 <= t->remaining) {
            size_t shown = topic_len < kept - 2 ? topic_len : kept - 2;
            fn(ctx, TC_TAP_PUBLISH_QOS1, (const char *)t->keep + 2, shown, t->packet_id);
        }
    }
}

/* A QoS 1 PUBLISH's packet id follows its topic; the bytes at those two offsets. */
static void packet_id_byte(struct tc_tap *t, unsigned char c)
{
    if ((t->header >> 4) != 3 || ((t->header >> 1) & 3) != 1 || t->pos < 2) {
        return;
    }
    uint32_t at = 2u + be16(t->keep);
    if (t->pos == at) {
        t->packet_id = (uint16_t)(c << 8);
    } else if (t->pos == at + 1) {
        t->packet_id = (uint16_t)(t->packet_id | c);
    }
}

static int mqtt_feed(struct tc_tap *t, const unsigned char *p, size_t n, tc_tap_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n && t->state != DEAD) {
        unsigned char c = p[i];
        switch (t->state) {
        case 0:
            if (t->first != 0 && c != t->first) {
                t->state = DEAD;
                break;
            }
            if ((c >> 4) == 0) { /* type 0 is reserved */
                t->state = DEAD;
                break;
            }
            t->first = 0;
            t->header = c;
            t->remaining = 0;
            t->len_bytes = 0;
            t->pos = 0;
            t->packet_id = 0;
            t->state = 1;
            i++;
            break;
        case 1:
            t->remaining |= (uint32_t)(c & 0x7f) << (7 * t->len_bytes);
            t->len_bytes++;
            i++;
            if ((c & 0x80) != 0) {
                if (t->len_bytes == 4) {
                    t->state = DEAD;
                }
                break;
            }
            if (t->remaining == 0) {
                packet_done(t, fn, ctx);
                t->state = 0;
            } else {
                t->state = 2;
            }
            break;
        default: {
            /* body: keep the first bytes, watch for a PUBLISH's packet id, skip the rest */
            size_t left = t->remaining - t->pos;
            size_t avail = n - i;
            size_t take = avail < left ? avail : left;
            for (size_t k = 0; k < take; k++) {
                unsigned char b = p[i + k];
                if (t->pos < TC_TAP_KEEP) {
                    t->keep[t->pos] = b;
                }
                packet_id_byte(t, b);
                t->pos++;
                if (t->pos >= TC_TAP_KEEP &&
                    ((t->header >> 4) != 3 || t->pos > 2u + be16(t->keep) + 1u)) {
                    /* nothing more to see in this packet: skip in one step */
                    size_t rest = take - k - 1;
                    t->pos += (uint32_t)rest;
                    break;
                }
            }
            i += take;
            if (t->pos == t->remaining) {
                packet_done(t, fn, ctx);
                t->state = 0;
            }
            break;
        }
        }
    }
    return t->state == DEAD ? -1 : 0;
}

/* One WebSocket frame header, once complete: 2 bytes, then 2 or 8 of length, then 4 of mask.
 * Returns 0 when more bytes are needed, 1 when complete, -1 when malformed. */
static int ws_header(struct tc_tap_ws *w)
{
    if (w->hlen < 2) {
        return 0;
    }
    unsigned len7 = w->head[1] & 0x7fu;
    unsigned need = 2u +
                    (len7 == 126   ? 2u
                     : len7 == 127 ? 8u
                                   : 0u) +
                    ((w->head[1] & 0x80) ? 4u : 0u);
    if (w->hlen < need) {
        return 0;
    }
    uint64_t len = len7;
    if (len7 == 126) {
        len = ((uint64_t)w->head[2] << 8) | w->head[3];
    } else if (len7 == 127) {
        len = 0;
        for (int k = 0; k < 8; k++) {
            len = (len << 8) | w->head[2 + k];
        }
        if (len >> 63) {
            return -1;
        }
    }
    w->masked = (w->head[1] & 0x80) != 0;
    if (w->masked) {
        memcpy(w->mask, w->head + need - 4, 4);
    }
    unsigned opcode = w->head[0] & 0x0fu;
    if ((w->head[0] & 0x70) != 0 || (opcode > 2 && opcode < 8) || opcode > 10) {
        return -1; /* reserved bits (no extension is negotiated) or reserved opcodes */
    }
    w->data = opcode <= 2;
    if (opcode == 8) {
        w->state = 3;
    }
    w->left = len;
    w->at = 0;
    return 1;
}

static int ws_feed(struct tc_tap *t, const unsigned char *p, size_t n, tc_tap_fn fn, void *ctx)
{
    struct tc_tap_ws *w = &t->ws;
    size_t i = 0;
    while (i < n && t->state != DEAD) {
        if (w->state == 0) { /* HTTP head, up to the empty line */
            unsigned char c = p[i++];
            w->crlf = (uint8_t)(c == (w->crlf % 2 == 0 ? '\r' : '\n') ? w->crlf + 1
                                : c == '\r'                           ? 1
                                                                      : 0);
            if (w->crlf == 4) {
                w->state = 1;
                w->hlen = 0;
            }
        } else if (w->state == 1) {
            w->head[w->hlen++] = p[i++];
            int rc = ws_header(w);
            if (rc < 0) {
                t->state = DEAD;
            } else if (rc == 1) {
                w->hlen = 0;
                if (w->state == 1) {
                    w->state = w->left > 0 ? 2 : 1;
                } else {
                    return 0; /* close: nothing more to read */
                }
            }
        } else if (w->state == 2) {
            size_t take = n - i < w->left ? n - i : (size_t)w->left;
            if (w->data) {
                unsigned char plain[256];
                size_t done = 0;
                while (done < take && t->state != DEAD) {
                    size_t k = take - done < sizeof plain ? take - done : sizeof plain;
                    for (size_t j = 0; j < k; j++) {
                        unsigned char b = p[i + done + j];
                        plain[j] = w->masked ? (unsigned char)(b ^ w->mask[(w->at + j) % 4]) : b;
                    }
                    w->at += k;
                    mqtt_feed(t, plain, k, fn, ctx);
                    done += k;
                }
            }
            i += take;
            w->left -= take;
            if (w->left == 0) {
                w->state = 1;
            }
        } else {
            return 0;
        }
    }
    return t->state == DEAD ? -1 : 0;
}

int tc_tap_feed(struct tc_tap *t, const unsigned char *p, size_t n, tc_tap_fn fn, void *ctx)
{
    if (n == 0 || t->state == DEAD) {
        return t->state == DEAD ? -1 : 0;
    }
    /* the first byte tells MQTT from a WebSocket upgrade: "GET" (client) or "HTTP" (broker) */
    if (!t->ws.on && t->first != 0 && p[0] == (t->first == TC_TAP_FIRST_CONNECT ? 'G' : 'H')) {
        t->ws.on = 1;
    }
    return t->ws.on ? ws_feed(t, p, n, fn, ctx) : mqtt_feed(t, p, n, fn, ctx);
}
