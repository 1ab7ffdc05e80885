/*
 * libFuzzer target for the IoT Hub topic parser and property bags (and so URL decoding and
 * encoding). The input is one topic, parsed from an exact-size copy. Checked:
 *   - on failure the result is all zero and the status is UNKNOWN or MALFORMED;
 *   - on OK every view lies inside the topic and its kind's fields are set (and no other);
 *     the canonical topic written from the fields parses to the same fields; a method's or
 *     twin response's rid is accepted by the writers;
 *   - a C2D property bag walks to its end with the sizing contract honoured at each step,
 *     and the bag re-encoded from the decoded names and values walks to the same properties.
 * Any violation traps.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/hub.h"
#include "tether/url.h"
#include "fuzz_check.h"

#define MAX_PROPS 64

static bool same(tether_view a, tether_view b)
{
    return fuzz_same(a.ptr, a.len, b.ptr, b.len);
}

static void check_inside(tether_view v, const char *base, size_t n)
{
    fuzz_check_inside(v.ptr, v.len, base, n);
}

static bool same_topic(const tether_hub_topic *a, const tether_hub_topic *b)
{
    return a->kind == b->kind && a->status == b->status && same(a->rid, b->rid) &&
           a->has_version == b->has_version && a->version == b->version &&
           same(a->method_name, b->method_name) && same(a->device_id, b->device_id) &&
           same(a->properties, b->properties);
}

/* Decoded properties, each name then value in one heap block. */
typedef struct decoded {
    char *bytes[MAX_PROPS];
    size_t name_len[MAX_PROPS];
    size_t value_len[MAX_PROPS];
    size_t count;
} decoded;

/* Walks a bag (which the parser accepted) into d; false if it holds too many to keep. */
static bool walk(tether_view bag, decoded *d)
{
    size_t off = 0;
    d->count = 0;
    for (;;) {
        size_t before = off, need = 0;
        tether_hub_property p;
        tether_status st = tether_hub_property_next(bag, &off, NULL, 0, &p, &need);
        if (st == TETHER_WOULD_BLOCK)
            return true;
        CHECK(st == TETHER_BUFFER_TOO_SMALL && off == before);
        if (d->count == MAX_PROPS)
            return false;
        char *buf = malloc(need ? need : 1);
        CHECK(buf != NULL);
        size_t len = 0;
        if (need > 0) {
            CHECK(tether_hub_property_next(bag, &off, buf, need - 1, &p, &len) ==
                  TETHER_BUFFER_TOO_SMALL);
            CHECK(len == need && off == before);
        }
        CHECK(tether_hub_property_next(bag, &off, buf, need, &p, &len) == TETHER_OK);
        CHECK(len == need && off > before && off <= bag.len);
        CHECK(p.name.ptr == buf && p.name.len > 0 && p.value.ptr == buf + p.name.len);
        CHECK(p.name.len + p.value.len == need);
        d->bytes[d->count] = buf;
        d->name_len[d->count] = p.name.len;
        d->value_len[d->count] = p.value.len;
        d->count++;
    }
}

static void release(decoded *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->bytes[i]);
    d->count = 0;
}

static void put(char *buf, size_t *n, const void *p, size_t len)
{
    if (len > 0)
        memcpy(buf + *n, p, len);
    *n += len;
}

static void check_bag(tether_view bag)
{
    static decoded first, second;
    if (!walk(bag, &first)) {
        release(&first);
        return;
    }
    /* Re-encode: name=value&... with every byte that needs it escaped. */
    size_t cap = 1;
    for (size_t i = 0; i < first.count; i++)
        cap += 3 * (first.name_len[i] + first.value_len[i]) + 2;
    char *text = malloc(cap);
    CHECK(text != NULL);
    size_t n = 0, len;
    for (size_t i = 0; i < first.count; i++) {
        if (i > 0)
            text[n++] = '&';
        CHECK(tether_url_encode(first.bytes[i], first.name_len[i], text + n, cap - n, &len) ==
              TETHER_OK);
        n += len;
        text[n++] = '=';
        CHECK(tether_url_encode(first.bytes[i] + first.name_len[i], first.value_len[i], text + n,
                                cap - n, &len) == TETHER_OK);
        n += len;
    }
    tether_view again = {text, n};
    CHECK(walk(again, &second) && second.count == first.count);
    for (size_t i = 0; i < first.count; i++) {
        CHECK(first.name_len[i] == second.name_len[i] && first.value_len[i] == second.value_len[i]);
        CHECK(memcmp(first.bytes[i], second.bytes[i], first.name_len[i] + first.value_len[i]) == 0);
    }
    release(&first);
    release(&second);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *topic = malloc(size ? size : 1);
    CHECK(topic != NULL);
    memcpy(topic, data, size);
    tether_hub_topic t;
    tether_status st = tether_hub_topic_parse(topic, size, &t);
    if (st != TETHER_OK) {
        static const tether_hub_topic zero;
        CHECK(st == TETHER_HUB_UNKNOWN_TOPIC || st == TETHER_HUB_MALFORMED_TOPIC);
        CHECK(memcmp(&t, &zero, sizeof t) == 0);
        free(topic);
        return 0;
    }
    check_inside(t.rid, topic, size);
    check_inside(t.method_name, topic, size);
    check_inside(t.device_id, topic, size);
    check_inside(t.properties, topic, size);

    /* The canonical topic, built with memcpy: views may hold any byte, NUL included. */
    char *canon = malloc(size + 64);
    CHECK(canon != NULL);
    size_t n = 0, need = 0;
    char number[24];
    switch (t.kind) {
    case TETHER_HUB_TOPIC_C2D:
        CHECK(t.device_id.len > 0 && t.rid.ptr == NULL && !t.has_version);
        put(canon, &n, "devices/", 8);
        put(canon, &n, t.device_id.ptr, t.device_id.len);
        put(canon, &n, "/messages/devicebound/", 22);
        put(canon, &n, t.properties.ptr, t.properties.len);
        check_bag(t.properties);
        break;
    case TETHER_HUB_TOPIC_TWIN_RESPONSE:
        CHECK(t.status >= 100 && t.status <= 599 && t.rid.len > 0);
        put(canon, &n, "$iothub/twin/res/", 17);
        put(canon, &n, number, (size_t)snprintf(number, sizeof number, "%u", (unsigned)t.status));
        put(canon, &n, "/?$rid=", 7);
        put(canon, &n, t.rid.ptr, t.rid.len);
        if (t.has_version) {
            put(canon, &n, "&$version=", 10);
            put(canon, &n, number,
                (size_t)snprintf(number, sizeof number, "%llu", (unsigned long long)t.version));
        }
        CHECK(tether_hub_twin_get_topic(t.rid, NULL, 0, &need) == TETHER_BUFFER_TOO_SMALL);
        break;
    case TETHER_HUB_TOPIC_DESIRED_PATCH:
        CHECK(t.has_version && t.rid.ptr == NULL);
        put(canon, &n, "$iothub/twin/PATCH/properties/desired/?$version=", 48);
        put(canon, &n, number,
            (size_t)snprintf(number, sizeof number, "%llu", (unsigned long long)t.version));
        break;
    case TETHER_HUB_TOPIC_METHOD:
        CHECK(t.method_name.len > 0 && t.rid.len > 0 && !t.has_version);
        CHECK(memchr(t.method_name.ptr, '/', t.method_name.len) == NULL);
        put(canon, &n, "$iothub/methods/POST/", 21);
        put(canon, &n, t.method_name.ptr, t.method_name.len);
        put(canon, &n, "/?$rid=", 7);
        put(canon, &n, t.rid.ptr, t.rid.len);
        CHECK(tether_hub_method_response_topic(200, t.rid, NULL, 0, &need) ==
              TETHER_BUFFER_TOO_SMALL);
        break;
    default:
        CHECK(false);
    }
    CHECK(n <= size + 64);
    tether_hub_topic again;
    CHECK(tether_hub_topic_parse(canon, n, &again) == TETHER_OK);
    CHECK(same_topic(&t, &again));
    free(canon);
    free(topic);
    return 0;
}
