/* See mqtt_tap.h. */
#include "mqtt_tap.h"

#include <string.h>

#define DEAD 3

void tc_tap_init(struct tc_tap *t, enum tc_tap_first first)
{
    memset(t, 0, sizeof *t);
    t->first = (uint8_t)first;
    t->from_client = first == TC_TAP_FIRST_CONNECT;
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
    if (type == 1 && t->from_client) {
        connect_done(t, kept, fn, ctx);
    } else if (type == 4 && t->from_client && t->remaining >= 2) {
        fn(ctx, TC_TAP_PUBACK, NULL, 0, be16(t->keep));
    } else if (type == 3 && !t->from_client && ((t->header >> 1) & 3) == 1 && t->remaining >= 2) {
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

int tc_tap_feed(struct tc_tap *t, const unsigned char *p, size_t n, tc_tap_fn fn, void *ctx)
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
