/*
 * libFuzzer target for the DPS response parsers. The input is a topic, a NUL byte (MQTT
 * forbids it in topics) and a payload; without a NUL it is all topic. Checked:
 *   - topic: on OK the status is 100..599, the rid is a view inside the topic right after
 *     "$rid=", and the canonical topic written from the fields parses to the same fields;
 *     the rid is accepted by the request writers;
 *   - payload (parsed from an exact-size copy): on TETHER_BUFFER_TOO_SMALL the reported size
 *     is enough and exact; on OK every string view lies in the scratch buffer, the custom
 *     payload view lies in the input and is JSON, statuses are in range; the payload written
 *     back from the fields with the JSON writer parses to the same fields.
 * Any violation traps.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/dps.h"
#include "fuzz_check.h"

#define MAX_TOKENS 128

static bool same(tether_view a, tether_view b)
{
    return fuzz_same(a.ptr, a.len, b.ptr, b.len);
}

static void check_inside(tether_view v, const char *base, size_t n)
{
    fuzz_check_inside(v.ptr, v.len, base, n);
}

static void check_topic(const char *topic, size_t n)
{
    tether_dps_response_topic t;
    tether_status st = tether_dps_response_topic_parse(topic, n, &t);
    if (st != TETHER_OK) {
        CHECK(st == TETHER_DPS_MALFORMED_RESPONSE);
        return;
    }
    CHECK(t.status >= 100 && t.status <= 599);
    check_inside(t.rid, topic, n);
    CHECK(t.rid.len > 0 && t.rid.ptr - topic >= 5 && memcmp(t.rid.ptr - 5, "$rid=", 5) == 0);

    char canon[256];
    int len = snprintf(canon, sizeof canon, "$dps/registrations/res/%u/?$rid=%.*s",
                       (unsigned)t.status, (int)t.rid.len, t.rid.ptr);
    CHECK(len > 0 && (size_t)len < sizeof canon);
    if (t.has_retry_after)
        len += snprintf(canon + len, sizeof canon - (size_t)len, "&retry-after=%lu",
                        (unsigned long)t.retry_after_s);
    tether_dps_response_topic again;
    CHECK(tether_dps_response_topic_parse(canon, (size_t)len, &again) == TETHER_OK);
    CHECK(again.status == t.status && same(again.rid, t.rid));
    CHECK(again.has_retry_after == t.has_retry_after && again.retry_after_s == t.retry_after_s);

    size_t need = 0;
    CHECK(tether_dps_register_topic(t.rid, NULL, 0, &need) == TETHER_BUFFER_TOO_SMALL);
    CHECK(tether_dps_poll_topic(t.rid, tether_view_of("op"), NULL, 0, &need) ==
          TETHER_BUFFER_TOO_SMALL);
}

/* The string views of a registration, for walking them all. */
#define VIEWS 12 /* the 11 strings in the scratch buffer, then the custom payload */

static void views_of(tether_dps_registration *r, tether_view *out[VIEWS])
{
    tether_view *v[VIEWS] = {
        &r->operation_id,  &r->registration_id, &r->assigned_hub,     &r->device_id,
        &r->substatus,     &r->created_utc,     &r->last_updated_utc, &r->etag,
        &r->error_message, &r->tracking_id,     &r->timestamp_utc,    &r->payload};
    memcpy(out, v, sizeof v);
}

static void put_string(tether_json_writer *w, const char *key, tether_view v)
{
    if (v.ptr == NULL)
        return;
    tether_json_write_key(w, key, strlen(key));
    tether_json_write_string(w, v.ptr, v.len);
}

static void put_status(tether_json_writer *w, tether_dps_status s)
{
    if (s == TETHER_DPS_STATUS_NONE)
        return;
    const char *name = tether_dps_status_name(s);
    tether_json_write_key(w, "status", 6);
    tether_json_write_string(w, name, strlen(name));
}

/* Writes the fields back as a DPS payload. The top-level error fields are written at the
 * top, so that a reparse reads them first, as the parser does. */
static void write_back(const tether_dps_registration *r, tether_json_writer *w)
{
    tether_json_write_object_begin(w);
    put_string(w, "operationId", r->operation_id);
    put_status(w, r->status);
    if (r->error_code != 0) {
        tether_json_write_key(w, "errorCode", 9);
        tether_json_write_int(w, r->error_code);
    }
    put_string(w, "message", r->error_message);
    put_string(w, "trackingId", r->tracking_id);
    put_string(w, "timestampUtc", r->timestamp_utc);
    tether_json_write_key(w, "registrationState", 17);
    tether_json_write_object_begin(w);
    put_string(w, "registrationId", r->registration_id);
    put_status(w, r->state_status);
    put_string(w, "assignedHub", r->assigned_hub);
    put_string(w, "deviceId", r->device_id);
    put_string(w, "substatus", r->substatus);
    put_string(w, "createdDateTimeUtc", r->created_utc);
    put_string(w, "lastUpdatedDateTimeUtc", r->last_updated_utc);
    put_string(w, "etag", r->etag);
    if (r->payload.ptr != NULL) {
        tether_json_write_key(w, "payload", 7);
        tether_json_write_raw(w, r->payload.ptr, r->payload.len);
    }
    tether_json_write_object_end(w);
    tether_json_write_object_end(w);
}

static tether_json_token tokens[MAX_TOKENS];

static void check_payload(const char *payload, size_t n)
{
    char small[64];
    tether_dps_registration r;
    tether_status st =
        tether_dps_response_payload_parse(payload, n, tokens, MAX_TOKENS, small, sizeof small, &r);
    char *scratch = small;
    size_t cap = sizeof small;
    if (st == TETHER_BUFFER_TOO_SMALL) {
        size_t need = r.scratch_len;
        CHECK(need > sizeof small);
        scratch = malloc(need);
        CHECK(scratch != NULL);
        cap = need;
        CHECK(tether_dps_response_payload_parse(payload, n, tokens, MAX_TOKENS, scratch, need - 1,
                                                &r) == TETHER_BUFFER_TOO_SMALL);
        CHECK(r.scratch_len == need);
        st = tether_dps_response_payload_parse(payload, n, tokens, MAX_TOKENS, scratch, need, &r);
        CHECK(st == TETHER_OK && r.scratch_len == need);
    }
    if (st != TETHER_OK) {
        CHECK(st == TETHER_DPS_MALFORMED_RESPONSE || st == TETHER_JSON_TOO_MANY_TOKENS);
        return;
    }
    CHECK(r.scratch_len <= cap);
    CHECK(r.status <= TETHER_DPS_DISABLED && r.state_status <= TETHER_DPS_DISABLED);
    tether_view *views[VIEWS];
    views_of(&r, views);
    for (size_t i = 0; i < VIEWS - 1; i++)
        check_inside(*views[i], scratch, r.scratch_len);
    check_inside(r.payload, payload, n);
    if (r.payload.ptr != NULL)
        CHECK(tether_json_validate(r.payload.ptr, r.payload.len, NULL) == TETHER_OK);

    /* parse -> write -> parse */
    tether_json_writer w;
    tether_json_writer_init(&w, NULL, 0);
    write_back(&r, &w);
    size_t need = 0;
    CHECK(tether_json_writer_finish(&w, &need) == TETHER_BUFFER_TOO_SMALL);
    char *out = malloc(need);
    CHECK(out != NULL);
    tether_json_writer_init(&w, out, need);
    write_back(&r, &w);
    size_t len = 0;
    CHECK(tether_json_writer_finish(&w, &len) == TETHER_OK && len == need);

    static tether_json_token tokens2[MAX_TOKENS + 32];
    char *scratch2 = malloc(r.scratch_len + 1);
    CHECK(scratch2 != NULL);
    tether_dps_registration again;
    st = tether_dps_response_payload_parse(out, len, tokens2, MAX_TOKENS + 32, scratch2,
                                           r.scratch_len + 1, &again);
    CHECK(st == TETHER_OK);
    CHECK(again.status == r.status && again.state_status == r.state_status &&
          again.error_code == r.error_code);
    tether_view *views2[VIEWS];
    views_of(&again, views2);
    for (size_t i = 0; i < VIEWS; i++)
        CHECK(same(*views[i], *views2[i]));
    free(scratch2);
    free(out);
    if (scratch != small)
        free(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t topic_len = nul ? (size_t)(nul - data) : size;
    /* Exact-size copies, so that AddressSanitizer sees any read past either end. */
    char *topic = malloc(topic_len ? topic_len : 1);
    CHECK(topic != NULL);
    memcpy(topic, data, topic_len);
    check_topic(topic, topic_len);
    free(topic);
    if (nul != NULL) {
        size_t n = size - topic_len - 1;
        char *payload = malloc(n ? n : 1);
        CHECK(payload != NULL);
        memcpy(payload, nul + 1, n);
        check_payload(payload, n);
        free(payload);
    }
    return 0;
}
