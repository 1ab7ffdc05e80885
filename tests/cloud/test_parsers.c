/* Unit tests of the local cloud's parsers of untrusted input (usernames, topics, queries,
 * property bags, SAS tokens, base64/URL decoding), on good and malformed input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqtt_tap.h"
#include "parse.h"
#include "sas.h"
#include "util.h"

#include "check.h"

static void test_usernames(void)
{
    struct tc_username u;
    CHECK(tc_username_parse("0ne0001/registrations/dev-1/api-version=2019-03-31", &u) == 0);
    CHECK(u.kind == TC_USER_DPS && strcmp(u.scope_or_host, "0ne0001") == 0 &&
          strcmp(u.id, "dev-1") == 0 && strcmp(u.api_version, "2019-03-31") == 0);
    CHECK(tc_username_parse("0ne0001/registrations/dev-1/api-version=2021-06-01&ClientVersion=x",
                            &u) == 0);
    CHECK(tc_username_parse("hub.localhost/dev-1/?api-version=2021-04-12&DeviceClientType=a%2Fb"
                            "&model-id=dtmi%3Ax%3By",
                            &u) == 0);
    CHECK(u.kind == TC_USER_HUB && strcmp(u.scope_or_host, "hub.localhost") == 0 &&
          strcmp(u.id, "dev-1") == 0 && u.module[0] == '\0');
    CHECK(tc_username_parse("hub/dev/mod/?api-version=2020-09-30", &u) == 0 &&
          strcmp(u.module, "mod") == 0);
    const char *bad[] = {"",
                         "nothing",
                         "0ne/registrations/dev/api-version=2000-01-01",
                         "0ne/registrations//api-version=2019-03-31",
                         "/registrations/dev/api-version=2019-03-31",
                         "0ne/registrations/dev",
                         "0ne/registrations/dev/api-version=",
                         "hub/dev/?api-version=1",
                         "hub//?api-version=2021-04-12",
                         "hub/dev?api-version=2021-04-12",
                         "hub/dev/a/b/?api-version=2021-04-12",
                         "/dev/?api-version=2021-04-12",
                         NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        if (tc_username_parse(bad[i], &u) == 0) {
            fprintf(stderr, "accepted bad username '%s'\n", bad[i]);
            failures++;
        }
    }
    CHECK(tc_username_parse(NULL, &u) != 0);
    char longid[400];
    memset(longid, 'a', sizeof longid);
    snprintf(longid + 200, 200, "/registrations/x/api-version=2019-03-31");
    CHECK(tc_username_parse(longid, &u) == 0); /* 200-char scope fits */
    memset(longid, 'a', sizeof longid);
    memcpy(longid, "s/registrations/", 16);
    snprintf(longid + 16 + 200, 100, "/api-version=2019-03-31");
    CHECK(tc_username_parse(longid, &u) != 0); /* 200-char registration id does not */
}

static void test_topics(void)
{
    struct tc_topic t;
    tc_topic_parse("$dps/registrations/PUT/iotdps-register/?$rid=42", NULL, &t);
    CHECK(t.kind == TC_TOPIC_DPS_REGISTER && strcmp(t.rid, "42") == 0);
    tc_topic_parse("$dps/registrations/GET/iotdps-get-operationstatus/?operationId=4.a.b&$rid=7",
                   NULL, &t);
    CHECK(t.kind == TC_TOPIC_DPS_POLL && strcmp(t.rid, "7") == 0 &&
          strcmp(t.operation_id, "4.a.b") == 0);
    const char *bad_dps[] = {
        "$dps/registrations/PUT/iotdps-register/",
        "$dps/registrations/PUT/iotdps-register/?$rid=",
        "$dps/registrations/PUT/iotdps-register/?rid=1",
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1",
        "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=1&operationId=",
        "$dps/registrations/PUT/iotdps-register?$rid=1",
        "devices/x/messages/events/",
        "",
        NULL};
    for (int i = 0; bad_dps[i] != NULL; i++) {
        tc_topic_parse(bad_dps[i], NULL, &t);
        if (t.kind != TC_TOPIC_UNKNOWN) {
            fprintf(stderr, "accepted bad DPS topic '%s'\n", bad_dps[i]);
            failures++;
        }
    }
    char long_rid[200];
    snprintf(long_rid, sizeof long_rid, "$dps/registrations/PUT/iotdps-register/?$rid=%0100d", 1);
    tc_topic_parse(long_rid, NULL, &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN); /* a $rid longer than 64 is refused, not truncated */

    tc_topic_parse("devices/d1/messages/events/a=1&b=2", "d1", &t);
    CHECK(t.kind == TC_TOPIC_TELEMETRY && strcmp(t.props, "a=1&b=2") == 0);
    tc_topic_parse("devices/d1/messages/events", "d1", &t);
    CHECK(t.kind == TC_TOPIC_TELEMETRY && t.props[0] == '\0');
    tc_topic_parse("devices/d10/messages/events/", "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
    tc_topic_parse("devices/d2/messages/events/", "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
    tc_topic_parse("$iothub/twin/GET/?$rid=1", "d1", &t);
    CHECK(t.kind == TC_TOPIC_TWIN_GET);
    tc_topic_parse("$iothub/twin/PATCH/properties/reported/?$rid=x&$version=3", "d1", &t);
    CHECK(t.kind == TC_TOPIC_TWIN_PATCH_REPORTED && strcmp(t.rid, "x") == 0);
    tc_topic_parse("$iothub/methods/res/200/?$rid=12", "d1", &t);
    CHECK(t.kind == TC_TOPIC_METHOD_RESPONSE && t.status == 200 && strcmp(t.rid, "12") == 0);
    tc_topic_parse("$iothub/methods/res/99999/?$rid=12", "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
    tc_topic_parse("$iothub/methods/res//?$rid=12", "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
    tc_topic_parse("$iothub/methods/res/200?$rid=12", "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
    tc_topic_parse(NULL, "d1", &t);
    CHECK(t.kind == TC_TOPIC_UNKNOWN);
}

static void test_props_encode(void)
{
    /* decoded then encoded again: no wildcard, separator or slash reaches a topic */
    cJSON *p = tc_props_to_json("a=1+2&b=x#y/z&c%2Bd=%23&%24.mid=forged&e=");
    CHECK(p != NULL);
    char *bag = tc_props_encode(p, 1);
    CHECK(bag != NULL && strcmp(bag, "a=1%2B2&b=x%23y%2Fz&c%2Bd=%23&e=") == 0);
    free(bag);
    bag = tc_props_encode(p, 0);
    CHECK(bag != NULL && strstr(bag, "%24.mid=forged") != NULL);
    free(bag);
    cJSON_Delete(p);
    cJSON *empty = cJSON_CreateObject();
    bag = tc_props_encode(empty, 1);
    CHECK(bag != NULL && bag[0] == '\0');
    free(bag);
    cJSON_AddNumberToObject(empty, "n", 1); /* not a string: left out */
    bag = tc_props_encode(empty, 1);
    CHECK(bag != NULL && bag[0] == '\0');
    free(bag);
    cJSON_Delete(empty);
}

static void test_query_and_props(void)
{
    char v[8];
    CHECK(tc_query_get("a=1&$rid=22&b", "$rid", v, sizeof v) == 1 && strcmp(v, "22") == 0);
    CHECK(tc_query_get("a=1&b=2", "$rid", v, sizeof v) == 0);
    CHECK(tc_query_get("$rid=12345678", "$rid", v, sizeof v) == -1); /* does not fit */
    CHECK(tc_query_get("", "a", v, sizeof v) == 0);
    CHECK(tc_query_get("aa=1", "a", v, sizeof v) == 0);

    cJSON *p = tc_props_to_json("%24.ct=application%2Fjson&k=v&flag&k=w&=x");
    CHECK(p != NULL);
    CHECK(strcmp(cJSON_GetObjectItem(p, "$.ct")->valuestring, "application/json") == 0);
    CHECK(strcmp(cJSON_GetObjectItem(p, "k")->valuestring, "w") == 0); /* last wins */
    CHECK(strcmp(cJSON_GetObjectItem(p, "flag")->valuestring, "") == 0);
    cJSON_Delete(p);
    CHECK(tc_props_to_json("a=%zz") == NULL);
    CHECK(tc_props_to_json("a=%2") == NULL);
    CHECK(tc_props_to_json("a=%00") == NULL);
    p = tc_props_to_json("");
    CHECK(p != NULL && cJSON_GetArraySize(p) == 0);
    cJSON_Delete(p);
}

static void test_registration_ids(void)
{
    CHECK(tc_registration_id_valid("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"));
    CHECK(tc_registration_id_valid("a.b_c:d-"));
    CHECK(!tc_registration_id_valid(""));
    CHECK(!tc_registration_id_valid("ends-with."));
    CHECK(!tc_registration_id_valid("has space"));
    CHECK(!tc_registration_id_valid("slash/x"));
    char longid[130];
    memset(longid, 'a', 129);
    longid[129] = '\0';
    CHECK(!tc_registration_id_valid(longid));
    longid[128] = '\0';
    CHECK(tc_registration_id_valid(longid));
    /* device ids (IoT Hub): ASCII only, a wider punctuation set */
    CHECK(tc_device_id_valid(longid));
    CHECK(tc_device_id_valid("dev-1:a.b+c%d_e#f*g?h!i(j)k,l=m@n;o$p'q"));
    CHECK(!tc_device_id_valid(""));
    CHECK(!tc_device_id_valid("has space"));
    CHECK(!tc_device_id_valid("slash/x"));
    CHECK(!tc_device_id_valid("\xc3\xa9t\xc3\xa9"));
    CHECK(!tc_device_id_valid("\xe4"
                              "ev1"));
    longid[128] = 'a';
    CHECK(!tc_device_id_valid(longid));
}

static void test_sas(void)
{
    /* The public check value from PROTOCOL.md. */
    char *k = tc_sas_derive_key(
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
        "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
    CHECK(k != NULL && strcmp(k, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=") == 0);
    free(k);
    CHECK(tc_sas_derive_key("not base64!", "x") == NULL);

    const char *key = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=";
    char *tok = tc_sas_make(key, "0ne1/registrations/dev", 2000000000, "registration");
    CHECK(tok != NULL && strstr(tok, "sr=0ne1%2Fregistrations%2Fdev&") != NULL);
    CHECK(tc_sas_check(tok, key, "0ne1/registrations/dev", 1000) == TC_SAS_OK);
    CHECK(tc_sas_check(tok, key, "0NE1/registrations/DEV", 1000) == TC_SAS_OK);
    CHECK(tc_sas_check(tok, key, "0ne1/registrations/other", 1000) == TC_SAS_WRONG_RESOURCE);
    CHECK(tc_sas_check(tok, key, "0ne1/registrations/dev", 2000000001) == TC_SAS_EXPIRED);
    CHECK(tc_sas_check(tok, "AAAAAAAAAAAAAAAAAAAAAA==", "0ne1/registrations/dev", 1000) ==
          TC_SAS_BAD_SIGNATURE);
    CHECK(tc_sas_check(tok, "!!", "0ne1/registrations/dev", 1000) == TC_SAS_BAD_KEY);
    free(tok);

    /* Lower-case escapes: signed over sr as sent. */
    char lower[256];
    {
        const char *sr = "0ne1%2fregistrations%2fdev";
        unsigned char mac[32];
        unsigned char raw[64];
        long n = tc_base64_decode(key, raw, sizeof raw);
        char msg[128];
        snprintf(msg, sizeof msg, "%s\n%s", sr, "2000000000");
        tc_hmac_sha256(raw, (size_t)n, msg, strlen(msg), mac);
        char *sig = tc_base64_encode(mac, 32);
        char *enc = tc_url_encode(sig);
        snprintf(lower, sizeof lower, "SharedAccessSignature sr=%s&sig=%s&se=2000000000", sr, enc);
        free(sig);
        free(enc);
    }
    CHECK(tc_sas_check(lower, key, "0ne1/registrations/dev", 1000) == TC_SAS_OK);

    const char *malformed[] = {"",
                               "SharedAccessSignature",
                               "SharedAccessSignature ",
                               "sr=a&sig=b&se=1",
                               "SharedAccessSignature sr=a&sig=b",
                               "SharedAccessSignature sr=a&se=1",
                               "SharedAccessSignature sig=b&se=1",
                               "SharedAccessSignature sr=a&sig=b&se=12x",
                               "SharedAccessSignature sr=a&sig=b&se=",
                               "SharedAccessSignature sr=a&sig=b&se=1&se=2",
                               "SharedAccessSignature sr=a&sig=b&se=99999999999999999999",
                               "SharedAccessSignature sr=%zz&sig=b&se=1",
                               "SharedAccessSignature sr=a&sig=%&se=1",
                               "SharedAccessSignature sr=a&junk&se=1",
                               NULL};
    for (int i = 0; malformed[i] != NULL; i++) {
        enum tc_sas_result r = tc_sas_check(malformed[i], key, "a", 0);
        if (r != TC_SAS_MALFORMED) {
            fprintf(stderr, "token '%s' gave %d, not malformed\n", malformed[i], (int)r);
            failures++;
        }
    }
    /* fields in any order, unknown fields ignored */
    tok = tc_sas_make(key, "h/devices/d", 2000000000, NULL);
    char reordered[512];
    struct tc_sas parts;
    CHECK(tc_sas_parse(tok, &parts) == 0 && parts.skn == NULL);
    snprintf(reordered, sizeof reordered, "SharedAccessSignature se=%s&x=y&sig=%s&sr=%s", parts.se,
             parts.sig, parts.sr);
    CHECK(tc_sas_check(reordered, key, "h/devices/d", 1000) == TC_SAS_OK);
    tc_sas_free(&parts);
    free(tok);
}

static void test_codecs(void)
{
    unsigned char out[16];
    CHECK(tc_base64_decode("AAAA", out, sizeof out) == 3);
    CHECK(tc_base64_decode("AAA", out, sizeof out) == -1);
    CHECK(tc_base64_decode("A===", out, sizeof out) == -1);
    CHECK(tc_base64_decode("AA=A", out, sizeof out) == -1);
    CHECK(tc_base64_decode("AA==", out, sizeof out) == 1);
    CHECK(tc_base64_decode("AAAAAAAAAAAAAAAAAAAAAAAA", out, 4) == -1); /* too long for out */
    char *d = tc_url_decode("a%2Fb%2fc+", 10);
    CHECK(d != NULL && strcmp(d, "a/b/c+") == 0);
    free(d);
    CHECK(tc_url_decode("%", 1) == NULL);
    CHECK(tc_url_decode("%4", 2) == NULL);
    CHECK(tc_url_decode("%g0", 3) == NULL);
    char *e = tc_url_encode("a/b=c+d");
    CHECK(e != NULL && strcmp(e, "a%2Fb%3Dc%2Bd") == 0);
    free(e);
}

static void test_filters_and_merge(void)
{
    CHECK(tc_topic_matches("a/#", "a/b/c"));
    CHECK(tc_topic_matches("a/#", "a"));
    CHECK(tc_topic_matches("a/+/c", "a/b/c"));
    CHECK(!tc_topic_matches("a/+/c", "a/b/d"));
    CHECK(!tc_topic_matches("#", "$iothub/x"));
    CHECK(tc_topic_matches("$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1"));
    cJSON *t = cJSON_Parse("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":4}");
    cJSON *p = cJSON_Parse("{\"a\":null,\"b\":{\"c\":5},\"e\":[1],\"$version\":9}");
    tc_json_merge(t, p);
    char *s = cJSON_PrintUnformatted(t);
    CHECK(strcmp(s, "{\"b\":{\"c\":5,\"d\":3},\"e\":[1]}") == 0);
    free(s);
    cJSON_Delete(t);
    cJSON_Delete(p);
}

/* --- the TLS shim's MQTT stream reader ------------------------------------------------ */

struct tap_log {
    int events[16];
    unsigned ids[16];
    char data[16][64];
    int n;
};

static void tap_record(void *ctx, enum tc_tap_event event, const char *d, size_t len,
                       unsigned packet_id)
{
    struct tap_log *l = ctx;
    if (l->n < 16) {
        l->events[l->n] = (int)event;
        l->ids[l->n] = packet_id;
        size_t k = len < 63 ? len : 63;
        if (k > 0) {
            memcpy(l->data[l->n], d, k);
        }
        l->data[l->n][k] = '\0';
        l->n++;
    }
}

static int tap_bytes(struct tc_tap *t, const unsigned char *p, size_t n, size_t step,
                     struct tap_log *l)
{
    int rc = 0;
    for (size_t at = 0; at < n; at += step) {
        rc = tc_tap_feed(t, p + at, step < n - at ? step : n - at, tap_record, l);
    }
    return rc;
}

static void test_mqtt_tap(void)
{
    /* CONNECT (3.1.1, client id "dev-1"), PINGREQ, PUBACK 0x0102, a QoS 0 PUBLISH */
    static const unsigned char in[] = {0x10, 17, 0, 4,    'M', 'Q', 'T', 'T', 4,    2,  0,
                                       60,   0,  5, 'd',  'e', 'v', '-', '1', 0xc0, 0,  0x40,
                                       2,    1,  2, 0x30, 5,   0,   1,   't', 'x',  'y'};
    for (size_t step = 1; step <= sizeof in; step++) {
        struct tc_tap t;
        struct tap_log l = {0};
        tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
        CHECK(tap_bytes(&t, in, sizeof in, step, &l) == 0);
        CHECK(l.n == 2);
        CHECK(l.events[0] == TC_TAP_CONNECT && strcmp(l.data[0], "dev-1") == 0);
        CHECK(l.events[1] == TC_TAP_PUBACK && l.ids[1] == 0x0102);
    }
    /* MQTT 5 CONNECT with 3 bytes of properties */
    static const unsigned char in5[] = {0x10, 19, 0,    4, 'M', 'Q', 'T', 'T', 5,   2,  0,
                                        60,   3,  0x21, 0, 10,  0,   3,   'a', 'b', 'c'};
    struct tc_tap t;
    struct tap_log l = {0};
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, in5, sizeof in5, 1, &l) == 0 && l.n == 1 && strcmp(l.data[0], "abc") == 0);
    /* broker side: CONNACK, then a QoS 1 PUBLISH (topic "c2d/x", packet id 7), a QoS 0 one */
    static const unsigned char out[] = {0x20, 2, 0, 0,   0x32, 11,   0, 5, 'c', '2', 'd', '/',
                                        'x',  0, 7, 'h', 'i',  0x30, 4, 0, 1,   'q', '!'};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNACK);
    CHECK(tap_bytes(&t, out, sizeof out, 3, &l) == 0);
    CHECK(l.n == 1 && l.events[0] == TC_TAP_PUBLISH_QOS1 && l.ids[0] == 7 &&
          strcmp(l.data[0], "c2d/x") == 0);
    /* a large QoS 1 PUBLISH: the packet id after a 600-byte topic is still found */
    static unsigned char big[4 + 600 + 2 + 1000];
    big[0] = 0x32;
    big[1] = (unsigned char)(0x80 | ((600 + 4 + 1000) & 0x7f));
    big[2] = (unsigned char)((600 + 4 + 1000) >> 7);
    big[3] = 600 >> 8;
    big[4] = 600 & 0xff;
    memset(big + 5, 'a', 600);
    big[605] = 0xbe;
    big[606] = 0xef;
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNACK);
    t.first = 0; /* mid-stream */
    CHECK(tap_bytes(&t, big, 3 + 2 + 600 + 2 + 1000 - 0, 97, &l) == 0);
    CHECK(l.n == 1 && l.ids[0] == 0xbeef);
    /* not MQTT at all; then a reserved type, a 5-byte Remaining Length */
    static const unsigned char junk[] = {0x00, 0x10, 0};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, junk, sizeof junk, 1, &l) == -1 && l.n == 0);
    CHECK(tc_tap_feed(&t, in, sizeof in, tap_record, &l) == -1 && l.n == 0); /* stays dead */
    static const unsigned char reserved[] = {0x10, 0, 0x00, 0};
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, reserved, sizeof reserved, 1, &l) == -1);
    static const unsigned char longlen[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0x01};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, longlen, sizeof longlen, 2, &l) == -1 && l.n == 0);
    /* malformed CONNECT bodies: lengths past the end give an empty client id */
    static const unsigned char badc[] = {0x10, 6, 0, 200, 'M', 'Q', 'T', 'T'};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, badc, sizeof badc, 1, &l) == 0 && l.n == 1 && l.data[0][0] == '\0');
    static const unsigned char badid[] = {0x10, 14, 0, 4,  'M', 'Q', 'T', 'T',
                                          4,    2,  0, 60, 0,   9,   'a', 'b'};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, badid, sizeof badid, 1, &l) == 0 && l.n == 1 && l.data[0][0] == '\0');
    /* each event from its own direction only: a client's QoS 1 PUBLISH and the broker's
     * PUBACK (packet ids are numbered apart in each direction) report nothing */
    static const unsigned char cpub[] = {0x10, 17, 0, 4,   'M', 'Q', 'T',  'T', 4,   2,
                                         0,    60, 0, 5,   'd', 'e', 'v',  '-', '1', 0x32,
                                         5,    0,  1, 'x', 0,   7,   0x40, 2,   0,   9};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNECT);
    CHECK(tap_bytes(&t, cpub, sizeof cpub, 1, &l) == 0 && l.n == 2);
    CHECK(l.events[0] == TC_TAP_CONNECT && l.events[1] == TC_TAP_PUBACK && l.ids[1] == 9);
    static const unsigned char bpuback[] = {0x20, 2, 0, 0, 0x40, 2, 0, 7, 0x10, 0};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNACK);
    CHECK(tap_bytes(&t, bpuback, sizeof bpuback, 1, &l) == 0 && l.n == 0);
    /* a PUBLISH whose topic length runs past its body reports nothing */
    static const unsigned char badp[] = {0x20, 2, 0, 0, 0x32, 4, 0, 9, 'a', 'b'};
    memset(&l, 0, sizeof l);
    tc_tap_init(&t, TC_TAP_FIRST_CONNACK);
    CHECK(tap_bytes(&t, badp, sizeof badp, 1, &l) == 0 && l.n == 0);
}

/* UTF-8 as RFC 3629 and JSON documents as the service checks them before use. */
static void test_documents(void)
{
    static const struct {
        const char *bytes;
        int valid;
    } utf8[] = {
        {"plain", 1},
        {"caf\xc3\xa9", 1},
        {"\xe2\x82\xac", 1},
        {"\xf0\x9f\x98\x80", 1},
        {"\xf4\x8f\xbf\xbf", 1},
        {"\xc3", 0},
        {"\xc0\xaf", 0},
        {"\xe0\x80\xaf", 0},
        {"\xed\xa0\x80", 0},
        {"\xf4\x90\x80\x80", 0},
        {"\xf8\x88\x80\x80\x80", 0},
        {"\xff\xfe", 0},
        {"\x80", 0},
        {"a\xe2\x82", 0},
    };
    for (size_t i = 0; i < sizeof utf8 / sizeof utf8[0]; i++) {
        CHECK(tc_utf8_valid((const unsigned char *)utf8[i].bytes, strlen(utf8[i].bytes)) ==
              utf8[i].valid);
    }
    char why[96];
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\":1} x",
        "{\"a\":\"\xff\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":1}}",
        "nul",
        "{\"a\":\"\\ud800\"}",
        "[1,]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *d = tc_json_parse_device(bad[i], strlen(bad[i]), why, sizeof why);
        CHECK(d == NULL && why[0] != '\0');
        cJSON_Delete(d);
    }
    CHECK(tc_json_parse_device("{\"a\":1}\0{}", 10, why, sizeof why) == NULL &&
          strstr(why, "NUL") != NULL);
    CHECK(tc_json_parse_device("{\"a\":\"\xff\"}", 9, why, sizeof why) == NULL &&
          strstr(why, "UTF-8") != NULL);
    const char *good = " {\"fw\":\"caf\xc3\xa9\",\"n\":null} \n";
    cJSON *d = tc_json_parse_device(good, strlen(good), why, sizeof why);
    CHECK(cJSON_IsObject(d));
    cJSON_Delete(d);
    d = tc_json_parse_device("42", 2, why, sizeof why);
    CHECK(cJSON_IsNumber(d)); /* a value, not only an object: the caller checks the shape */
    cJSON_Delete(d);
}

/* tc_write_file (keys, certificates, the broker's configuration): a link planted at its
 * temporary name is removed, never written through. */
static void test_write_file_refuses_links(void)
{
    char dir[] = "/tmp/tc-write-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], tmp[96], victim[64];
    snprintf(path, sizeof path, "%s/key.pem", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    snprintf(victim, sizeof victim, "%s/victim", dir);
    CHECK(tc_write_file(victim, "precious", 8, 0600) == 0);
    CHECK(symlink(victim, tmp) == 0);
    CHECK(tc_write_file(path, "secret", 6, 0600) == 0);
    size_t n = 0;
    char *v = tc_read_file(victim, &n);
    CHECK(v != NULL && n == 8 && memcmp(v, "precious", 8) == 0);
    free(v);
    char *k = tc_read_file(path, &n);
    CHECK(k != NULL && n == 6 && memcmp(k, "secret", 6) == 0);
    free(k);
    CHECK(access(tmp, F_OK) != 0);
    unlink(path);
    unlink(victim);
    rmdir(dir);
}

int main(void)
{
    test_mqtt_tap();
    test_usernames();
    test_topics();
    test_query_and_props();
    test_props_encode();
    test_registration_ids();
    test_sas();
    test_codecs();
    test_filters_and_merge();
    test_documents();
    test_write_file_refuses_links();
    if (failures != 0) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("cloud parsers: all checks passed\n");
    return 0;
}
