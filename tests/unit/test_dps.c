/* DPS helpers: identities, exact user names, topics and payloads with the sizing contract,
 * and the response parsers on real shapes and on malformed topics and payloads. Parsed
 * inputs are exact-size heap copies so that AddressSanitizer sees any read past the end. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>

#include "tether/dps.h"
#include "writer_check.h"

#define RID(s) tether_view_of(s)

static char *copy(const char *s)
{
    size_t n = strlen(s);
    char *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

static void assert_view(tether_view v, const char *expected)
{
    if (!tether_view_equals(v, expected))
        fail_msg("got \"%.*s\", expected \"%s\"", (int)v.len, v.ptr ? v.ptr : "", expected);
}

/* ---- identities and writers --------------------------------------------------------------- */

static void registration_ids(void **state)
{
    (void)state;
    char longest[TETHER_DPS_REGISTRATION_ID_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[TETHER_DPS_REGISTRATION_ID_MAX] = '\0';
    const char *good[] = {"sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", "a", "A:b.c_d-", "0", longest};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(tether_dps_registration_id_check(good[i]), TETHER_OK);
    longest[TETHER_DPS_REGISTRATION_ID_MAX] = 'a';
    longest[TETHER_DPS_REGISTRATION_ID_MAX + 1] = '\0';
    const char *bad[] = {"", "a.", "a_", "a:", "a b", "a/b", "a+b", "dev\xC3\xA9", "a#", longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(tether_dps_registration_id_check(bad[i]), TETHER_INVALID_REGISTRATION_ID);
    assert_int_equal(tether_dps_registration_id_check(NULL), TETHER_INVALID_REGISTRATION_ID);
}

static void username_and_client_id(void **state)
{
    (void)state;
    ASSERT_WRITES("0ne00000A0A/registrations/dev-1/api-version=2021-06-01",
                  tether_dps_username("0ne00000A0A", "dev-1", NULL, BUF, CAP, LEN));
    ASSERT_WRITES(
        "0ne00000A0A/registrations/dev-1/api-version=2021-06-01"
        "&ClientVersion=tether%2F0.1.0%20%28linux%29",
        tether_dps_username("0ne00000A0A", "dev-1", "tether/0.1.0 (linux)", BUF, CAP, LEN));
    ASSERT_WRITES("dev-1", tether_dps_client_id("dev-1", BUF, CAP, LEN));

    char buf[128];
    size_t len;
    assert_int_equal(tether_dps_username("", "dev-1", NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_ID_SCOPE);
    assert_int_equal(tether_dps_username("0ne/x", "dev-1", NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_ID_SCOPE);
    assert_int_equal(tether_dps_username(NULL, "dev-1", NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_ID_SCOPE);
    assert_int_equal(tether_dps_username("0ne00000A0A", "dev 1", NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_REGISTRATION_ID);
    assert_int_equal(tether_dps_client_id("dev_", buf, sizeof buf, &len),
                     TETHER_INVALID_REGISTRATION_ID);
    assert_int_equal(tether_dps_client_id("dev", buf, sizeof buf, NULL), TETHER_INVALID_ARGUMENT);
}

static void topics(void **state)
{
    (void)state;
    ASSERT_WRITES("$dps/registrations/PUT/iotdps-register/?$rid=1",
                  tether_dps_register_topic(RID("1"), BUF, CAP, LEN));
    ASSERT_WRITES("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=42&operationId="
                  "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d",
                  tether_dps_poll_topic(RID("42"),
                                        RID("4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-"
                                            "aeb1b89e6c7d"),
                                        BUF, CAP, LEN));
    ASSERT_WRITES("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=7&operationId="
                  "a%2Fb%20c%26d%3De",
                  tether_dps_poll_topic(RID("7"), RID("a/b c&d=e"), BUF, CAP, LEN));

    char buf[256];
    size_t len;
    char long_rid[130];
    memset(long_rid, '1', sizeof long_rid - 1);
    long_rid[129] = '\0';
    const char *bad_rids[] = {"", "a&b", "a b", "a#", "a+b", "a/b", "a=b", "a?b", "\x7f", long_rid};
    for (size_t i = 0; i < sizeof bad_rids / sizeof bad_rids[0]; i++) {
        assert_int_equal(tether_dps_register_topic(RID(bad_rids[i]), buf, sizeof buf, &len),
                         TETHER_INVALID_ARGUMENT);
        assert_int_equal(tether_dps_poll_topic(RID(bad_rids[i]), RID("op"), buf, sizeof buf, &len),
                         TETHER_INVALID_ARGUMENT);
    }
    assert_int_equal(tether_dps_poll_topic(RID("1"), RID(""), buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
}

static void register_payload(void **state)
{
    (void)state;
    ASSERT_WRITES("{\"registrationId\":\"dev-1\"}",
                  tether_dps_register_payload("dev-1", NULL, 0, BUF, CAP, LEN));
    const char *custom = "{\"model\":\"x\",\"n\":[1,2]}";
    ASSERT_WRITES("{\"registrationId\":\"dev-1\",\"payload\":{\"model\":\"x\",\"n\":[1,2]}}",
                  tether_dps_register_payload("dev-1", custom, strlen(custom), BUF, CAP, LEN));
    ASSERT_WRITES("{\"registrationId\":\"dev-1\",\"payload\":7}",
                  tether_dps_register_payload("dev-1", "7", 1, BUF, CAP, LEN));

    char buf[256];
    size_t len;
    const char *bad[] = {"{\"a\":}", "{", "", "{'a':1}", "[1,]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(
            tether_dps_register_payload("dev-1", bad[i], strlen(bad[i]), buf, sizeof buf, &len),
            TETHER_JSON_MALFORMED);
    char deep[2 * TETHER_JSON_MAX_DEPTH + 3];
    memset(deep, '[', TETHER_JSON_MAX_DEPTH + 1);
    memset(deep + TETHER_JSON_MAX_DEPTH + 1, ']', TETHER_JSON_MAX_DEPTH + 1);
    assert_int_equal(tether_dps_register_payload("dev-1", deep, 2 * TETHER_JSON_MAX_DEPTH + 2, buf,
                                                 sizeof buf, &len),
                     TETHER_JSON_TOO_DEEP);
    assert_int_equal(tether_dps_register_payload("dev.", NULL, 0, buf, sizeof buf, &len),
                     TETHER_INVALID_REGISTRATION_ID);
}

/* ---- response topics ---------------------------------------------------------------------- */

static tether_status parse_topic(const char *topic, tether_dps_response_topic *out)
{
    char *p = copy(topic);
    tether_status st = tether_dps_response_topic_parse(p, strlen(topic), out);
    if (st == TETHER_OK) { /* views into the copy are checked before it goes */
        assert_true(out->rid.ptr >= p && out->rid.ptr + out->rid.len <= p + strlen(topic));
        out->rid.ptr = topic + (out->rid.ptr - p);
    }
    free(p);
    return st;
}

static void response_topics(void **state)
{
    (void)state;
    tether_dps_response_topic t;
    assert_int_equal(parse_topic("$dps/registrations/res/202/?$rid=1&retry-after=3", &t),
                     TETHER_OK);
    assert_int_equal(t.status, 202);
    assert_view(t.rid, "1");
    assert_true(t.has_retry_after);
    assert_int_equal(t.retry_after_s, 3);

    assert_int_equal(
        parse_topic("$dps/registrations/res/429/?retry-after=4294967295&x=y&$rid=ab", &t),
        TETHER_OK);
    assert_int_equal(t.status, 429);
    assert_view(t.rid, "ab");
    assert_int_equal(t.retry_after_s, 4294967295u);

    assert_int_equal(parse_topic("$dps/registrations/res/200/?$rid=17", &t), TETHER_OK);
    assert_int_equal(t.status, 200);
    assert_false(t.has_retry_after);
    assert_int_equal(parse_topic("$dps/registrations/res/401/?&$rid=9&&flag&", &t), TETHER_OK);
    assert_int_equal(t.status, 401);
    assert_view(t.rid, "9");
    assert_true(tether_dps_response_is_retriable(429));
    assert_true(tether_dps_response_is_retriable(503));
    assert_false(tether_dps_response_is_retriable(401));
    assert_false(tether_dps_response_is_retriable(202));

    static const char *const bad[] = {
        "",
        "$dps/registrations/res/",
        "$dps/registrations/res/20",
        "$dps/registrations/res/202",
        "$dps/registrations/res/202/",
        "$dps/registrations/res/202/?",
        "$dps/registrations/res/202?$rid=1",
        "$dps/registrations/res/202/$rid=1",
        "$dps/registrations/res/202/?retry-after=3",
        "$dps/registrations/res/202/?$rid",
        "$dps/registrations/res/202/?$rid=",
        "$dps/registrations/res/202/?$rid=1&$rid=2",
        "$dps/registrations/res/202/?$rid=a b",
        "$dps/registrations/res/2x2/?$rid=1",
        "$dps/registrations/res/099/?$rid=1",
        "$dps/registrations/res/600/?$rid=1",
        "$dps/registrations/res/+20/?$rid=1",
        "$dps/registrations/res/2020/?$rid=1",
        "$dps/registrations/res/ 20/?$rid=1",
        "$dps/registrations/res/202/?$rid=1&retry-after=abc",
        "$dps/registrations/res/202/?$rid=1&retry-after=-1",
        "$dps/registrations/res/202/?$rid=1&retry-after=",
        "$dps/registrations/res/202/?$rid=1&retry-after",
        "$dps/registrations/res/202/?$rid=1&retry-after=03",
        "$dps/registrations/res/202/?$rid=1&retry-after=4294967296",
        "$dps/registrations/res/202/?$rid=1&retry-after=1&retry-after=2",
        "$dps/registrations/req/202/?$rid=1",
        "$iothub/twin/res/200/?$rid=1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tether_status st = parse_topic(bad[i], &t);
        if (st != TETHER_DPS_MALFORMED_RESPONSE)
            fail_msg("\"%s\": %s", bad[i], tether_status_name(st));
    }
    assert_int_equal(tether_dps_response_topic_parse(NULL, 3, &t), TETHER_INVALID_ARGUMENT);
}

/* ---- response payloads -------------------------------------------------------------------- */

typedef struct payload_result {
    char *input;
    tether_json_token tokens[64];
    char scratch[512];
    tether_dps_registration reg;
} payload_result;

static tether_status parse_payload(payload_result *r, const char *json)
{
    r->input = copy(json);
    return tether_dps_response_payload_parse(r->input, strlen(json), r->tokens, 64, r->scratch,
                                             sizeof r->scratch, &r->reg);
}

static const char assigned[] =
    "{\"operationId\":\"4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d\","
    "\"status\":\"assigned\",\"registrationState\":{\"registrationId\":\"dev-1\","
    "\"createdDateTimeUtc\":\"2026-01-01T00:00:00.0000000Z\","
    "\"assignedHub\":\"tether-hub.azure-devices.net\",\"deviceId\":\"dev-1\","
    "\"status\":\"assigned\",\"substatus\":\"initialAssignment\","
    "\"lastUpdatedDateTimeUtc\":\"2026-01-01T00:00:01.0000000Z\",\"etag\":\"IjAwMDAi\","
    "\"payload\":{\"hello\":\"world\",\"n\":[1,2]}}}";

static void assigned_response(void **state)
{
    (void)state;
    payload_result *r = malloc(sizeof *r);
    assert_non_null(r);
    assert_int_equal(parse_payload(r, assigned), TETHER_OK);
    tether_dps_registration *g = &r->reg;
    assert_view(g->operation_id, "4.d0a671905ea5b2c8.e7173b7b-0e54-4aa0-9d20-aeb1b89e6c7d");
    assert_int_equal(g->status, TETHER_DPS_ASSIGNED);
    assert_true(tether_dps_status_is_final(g->status));
    assert_string_equal(tether_dps_status_name(g->status), "assigned");
    assert_view(g->registration_id, "dev-1");
    assert_int_equal(g->state_status, TETHER_DPS_ASSIGNED);
    assert_view(g->assigned_hub, "tether-hub.azure-devices.net");
    assert_view(g->device_id, "dev-1");
    assert_view(g->substatus, "initialAssignment");
    assert_view(g->created_utc, "2026-01-01T00:00:00.0000000Z");
    assert_view(g->last_updated_utc, "2026-01-01T00:00:01.0000000Z");
    assert_view(g->etag, "IjAwMDAi");
    assert_view(g->payload, "{\"hello\":\"world\",\"n\":[1,2]}");
    assert_true(g->payload.ptr > r->input && g->payload.ptr < r->input + strlen(assigned));
    assert_true(g->assigned_hub.ptr >= r->scratch &&
                g->assigned_hub.ptr < r->scratch + sizeof r->scratch);
    assert_int_equal(g->error_code, 0);
    assert_null(g->error_message.ptr);
    size_t used = g->scratch_len;
    free(r->input);

    /* The scratch size is exact: one byte less reports the need and fills in nothing. */
    r->input = copy(assigned);
    assert_int_equal(tether_dps_response_payload_parse(r->input, strlen(assigned), r->tokens, 64,
                                                       r->scratch, used - 1, &r->reg),
                     TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(r->reg.scratch_len, used);
    assert_null(r->reg.assigned_hub.ptr);
    assert_int_equal(tether_dps_response_payload_parse(r->input, strlen(assigned), r->tokens, 64,
                                                       NULL, 0, &r->reg),
                     TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(r->reg.scratch_len, used);
    assert_int_equal(tether_dps_response_payload_parse(r->input, strlen(assigned), r->tokens, 64,
                                                       r->scratch, used, &r->reg),
                     TETHER_OK);
    assert_view(r->reg.assigned_hub, "tether-hub.azure-devices.net");

    /* Too few tokens. */
    assert_int_equal(tether_dps_response_payload_parse(r->input, strlen(assigned), r->tokens, 10,
                                                       r->scratch, sizeof r->scratch, &r->reg),
                     TETHER_JSON_TOO_MANY_TOKENS);
    free(r->input);
    free(r);
}

static void other_responses(void **state)
{
    (void)state;
    payload_result *r = malloc(sizeof *r);
    assert_non_null(r);

    assert_int_equal(parse_payload(r, "{\"operationId\":\"4.x\",\"status\":\"assigning\"}"),
                     TETHER_OK);
    assert_view(r->reg.operation_id, "4.x");
    assert_int_equal(r->reg.status, TETHER_DPS_ASSIGNING);
    assert_false(tether_dps_status_is_final(r->reg.status));
    assert_null(r->reg.assigned_hub.ptr);
    free(r->input);

    /* A failed assignment carries its error in the registration state. */
    assert_int_equal(parse_payload(r, "{\"operationId\":\"4.y\",\"status\":\"failed\","
                                      "\"registrationState\":{\"registrationId\":\"dev-1\","
                                      "\"status\":\"failed\",\"errorCode\":400207,"
                                      "\"errorMessage\":\"Custom allocation failed\","
                                      "\"etag\":null}}"),
                     TETHER_OK);
    assert_int_equal(r->reg.status, TETHER_DPS_FAILED);
    assert_int_equal(r->reg.state_status, TETHER_DPS_FAILED);
    assert_int_equal(r->reg.error_code, 400207);
    assert_view(r->reg.error_message, "Custom allocation failed");
    assert_null(r->reg.etag.ptr); /* null is absent */
    free(r->input);

    /* A request that failed outright. */
    assert_int_equal(parse_payload(r, "{\"errorCode\":401002,\"trackingId\":\"abc-123\","
                                      "\"message\":\"Invalid certificate.\","
                                      "\"timestampUtc\":\"2026-01-01T00:00:00.1234567Z\"}"),
                     TETHER_OK);
    assert_int_equal(r->reg.error_code, 401002);
    assert_int_equal(r->reg.error_code / 1000, 401);
    assert_view(r->reg.error_message, "Invalid certificate.");
    assert_view(r->reg.tracking_id, "abc-123");
    assert_view(r->reg.timestamp_utc, "2026-01-01T00:00:00.1234567Z");
    assert_int_equal(r->reg.status, TETHER_DPS_STATUS_NONE);
    free(r->input);

    /* Escapes are undone; disabled and unassigned are read; unknown members ignored. */
    assert_int_equal(parse_payload(r, "{\"operationId\":\"4.z\",\"status\":\"disabled\",\"x\":[{}],"
                                      "\"registrationState\":{\"assignedHub\":"
                                      "\"hub\\u002eexample\\/x\",\"status\":\"unassigned\"}}"),
                     TETHER_OK);
    assert_int_equal(r->reg.status, TETHER_DPS_DISABLED);
    assert_int_equal(r->reg.state_status, TETHER_DPS_UNASSIGNED);
    assert_view(r->reg.assigned_hub, "hub.example/x");
    free(r->input);
    free(r);
}

static void malformed_payloads(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "{\"operationId\":\"4.x\"",
        "[{\"operationId\":\"4.x\"}]",
        "\"assigned\"",
        "{}",
        "{\"unrelated\":1}",
        "{\"operationId\":4}",
        "{\"operationId\":\"4.x\",\"status\":\"pending\"}",
        "{\"operationId\":\"4.x\",\"status\":\"Assigned\"}",
        "{\"operationId\":\"4.x\",\"status\":1}",
        "{\"operationId\":\"4.x\",\"registrationState\":\"assigned\"}",
        "{\"operationId\":\"4.x\",\"registrationState\":[]}",
        "{\"operationId\":\"4.x\",\"registrationState\":{\"assignedHub\":7}}",
        "{\"operationId\":\"4.x\",\"registrationState\":{\"status\":\"nope\"}}",
        "{\"operationId\":\"4.x\",\"registrationState\":{\"errorCode\":\"400207\"}}",
        "{\"errorCode\":\"401002\"}",
        "{\"errorCode\":-1}",
        "{\"errorCode\":401002.5}",
        "{\"errorCode\":4294967296}",
        "{\"errorCode\":401002,\"message\":false}",
        "{\"operationId\":\"4.x\",\"status\":\"assigned\",}",
    };
    payload_result *r = malloc(sizeof *r);
    assert_non_null(r);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tether_status st = parse_payload(r, bad[i]);
        free(r->input);
        if (st != TETHER_DPS_MALFORMED_RESPONSE)
            fail_msg("\"%s\": %s", bad[i], tether_status_name(st));
    }
    /* Deep nesting (here unclosed too) in the custom payload. */
    char deep[2 * TETHER_JSON_MAX_DEPTH + 64];
    int n =
        snprintf(deep, sizeof deep, "{\"operationId\":\"4.x\",\"registrationState\":{\"payload\":");
    for (int i = 0; i < TETHER_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_equal(parse_payload(r, deep), TETHER_DPS_MALFORMED_RESPONSE);
    free(r->input);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registration_ids), cmocka_unit_test(username_and_client_id),
        cmocka_unit_test(topics),           cmocka_unit_test(register_payload),
        cmocka_unit_test(response_topics),  cmocka_unit_test(assigned_response),
        cmocka_unit_test(other_responses),  cmocka_unit_test(malformed_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
