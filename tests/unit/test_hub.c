/* IoT Hub helpers: exact user names, client ids and topics with the sizing contract; the
 * topic parser on every kind and on malformed topics; property bags decoded one by one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/hub.h"
#include "writer_check.h"

#define V(s) tether_view_of(s)

static const tether_hub_identity device = {"tether-hub.azure-devices.net", "dev-01", NULL};
static const tether_hub_identity module = {"tether-hub.azure-devices.net", "dev-01", "m1"};

static void assert_view(tether_view v, const char *expected)
{
    if (!tether_view_equals(v, expected))
        fail_msg("got \"%.*s\", expected \"%s\"", (int)v.len, v.ptr ? v.ptr : "", expected);
}

static void identities(void **state)
{
    (void)state;
    char longest[TETHER_HUB_ID_MAX + 2];
    memset(longest, 'd', sizeof longest);
    longest[TETHER_HUB_ID_MAX] = '\0';
    tether_hub_identity id = {"h.example", longest, NULL};
    assert_int_equal(tether_hub_identity_check(&id), TETHER_OK);
    id.device_id = "a-.%_*?!(),:;=@$'Z9";
    assert_int_equal(tether_hub_identity_check(&id), TETHER_OK);
    longest[TETHER_HUB_ID_MAX] = 'd';
    longest[TETHER_HUB_ID_MAX + 1] = '\0';
    const char *bad[] = {"", "a/b", "a b", "a#", "a+b", "a&b", "a\"", longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        id.device_id = bad[i];
        assert_int_equal(tether_hub_identity_check(&id), TETHER_INVALID_DEVICE_ID);
        id.device_id = "d";
        id.module_id = bad[i];
        assert_int_equal(tether_hub_identity_check(&id), TETHER_INVALID_DEVICE_ID);
        id.module_id = NULL;
    }
    id.device_id = NULL;
    assert_int_equal(tether_hub_identity_check(&id), TETHER_INVALID_DEVICE_ID);
    id.device_id = "d";
    const char *bad_hosts[] = {"", "h/x", "h:8883", "h x"};
    for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
        id.host = bad_hosts[i];
        assert_int_equal(tether_hub_identity_check(&id), TETHER_INVALID_ARGUMENT);
    }
    assert_int_equal(tether_hub_identity_check(NULL), TETHER_INVALID_ARGUMENT);
}

static void usernames_and_client_ids(void **state)
{
    (void)state;
    ASSERT_WRITES("tether-hub.azure-devices.net/dev-01/?api-version=2021-04-12",
                  tether_hub_username(&device, NULL, NULL, BUF, CAP, LEN));
    ASSERT_WRITES("tether-hub.azure-devices.net/dev-01/m1/?api-version=2021-04-12"
                  "&DeviceClientType=tether%2F0.1.0&model-id=dtmi%3Acom%3Aexample%3Bthermostat%3B1",
                  tether_hub_username(&module, "tether/0.1.0", "dtmi:com:example;thermostat;1", BUF,
                                      CAP, LEN));
    ASSERT_WRITES("tether-hub.azure-devices.net/dev-01/?api-version=2021-04-12&model-id=dtmi%3Ax",
                  tether_hub_username(&device, NULL, "dtmi:x", BUF, CAP, LEN));
    ASSERT_WRITES("dev-01", tether_hub_client_id(&device, BUF, CAP, LEN));
    ASSERT_WRITES("dev-01/m1", tether_hub_client_id(&module, BUF, CAP, LEN));
    char buf[64];
    size_t len;
    tether_hub_identity bad = {"h", "a b", NULL};
    assert_int_equal(tether_hub_username(&bad, NULL, NULL, buf, sizeof buf, &len),
                     TETHER_INVALID_DEVICE_ID);
    assert_int_equal(tether_hub_client_id(&bad, buf, sizeof buf, &len), TETHER_INVALID_DEVICE_ID);
}

static void telemetry_topics(void **state)
{
    (void)state;
    ASSERT_WRITES("devices/dev-01/messages/events/",
                  tether_hub_telemetry_topic(&device, NULL, 0, BUF, CAP, LEN));
    ASSERT_WRITES("devices/dev-01/modules/m1/messages/events/",
                  tether_hub_telemetry_topic(&module, NULL, 0, BUF, CAP, LEN));
    const tether_hub_property props[] = {
        {V(TETHER_HUB_PROPERTY_CONTENT_TYPE), V("application/json")},
        {V(TETHER_HUB_PROPERTY_CONTENT_ENCODING), V("utf-8")},
        {V(TETHER_HUB_PROPERTY_MESSAGE_ID), V("m-1")},
        {V(TETHER_HUB_PROPERTY_CORRELATION_ID), V("c 1")},
        {V("alert level"), V("a&b=c")},
        {V("empty"), V("")},
    };
    ASSERT_WRITES("devices/dev-01/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&"
                  "%24.mid=m-1&%24.cid=c%201&alert%20level=a%26b%3Dc&empty=",
                  tether_hub_telemetry_topic(&device, props, 6, BUF, CAP, LEN));
    char buf[128];
    size_t len;
    const tether_hub_property no_name[] = {{V(""), V("x")}};
    assert_int_equal(tether_hub_telemetry_topic(&device, no_name, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_hub_telemetry_topic(&device, NULL, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
}

static void other_topics(void **state)
{
    (void)state;
    ASSERT_WRITES("devices/dev-01/messages/devicebound/#",
                  tether_hub_c2d_filter(&device, BUF, CAP, LEN));
    ASSERT_WRITES("$iothub/twin/GET/?$rid=5", tether_hub_twin_get_topic(V("5"), BUF, CAP, LEN));
    ASSERT_WRITES("$iothub/twin/PATCH/properties/reported/?$rid=6",
                  tether_hub_twin_patch_topic(V("6"), BUF, CAP, LEN));
    ASSERT_WRITES("$iothub/methods/res/200/?$rid=7f",
                  tether_hub_method_response_topic(200, V("7f"), BUF, CAP, LEN));
    ASSERT_WRITES("$iothub/methods/res/0/?$rid=1",
                  tether_hub_method_response_topic(0, V("1"), BUF, CAP, LEN));
    ASSERT_WRITES("$iothub/methods/res/65535/?$rid=1",
                  tether_hub_method_response_topic(65535, V("1"), BUF, CAP, LEN));
    char buf[128];
    size_t len;
    assert_int_equal(tether_hub_c2d_filter(&module, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_hub_twin_get_topic(V(""), buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_hub_twin_patch_topic(V("a&b"), buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_hub_method_response_topic(200, V("a b"), buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
}

/* Parses from an exact-size copy and rebases the views onto @p topic. */
static tether_status parse(const char *topic, tether_hub_topic *out)
{
    size_t n = strlen(topic);
    char *p = malloc(n > 0 ? n : 1);
    assert_non_null(p);
    memcpy(p, topic, n);
    tether_status st = tether_hub_topic_parse(p, n, out);
    tether_view *views[] = {&out->rid, &out->method_name, &out->device_id, &out->properties};
    for (size_t i = 0; i < 4; i++) {
        tether_view *v = views[i];
        if (v->ptr == NULL) {
            assert_int_equal(v->len, 0);
            continue;
        }
        assert_int_equal(st, TETHER_OK);
        assert_true(v->ptr >= p && v->ptr + v->len <= p + n);
        v->ptr = topic + (v->ptr - p);
    }
    free(p);
    return st;
}

static void parses_each_kind(void **state)
{
    (void)state;
    tether_hub_topic t;
    assert_int_equal(parse("devices/dev-01/messages/devicebound/%24.to=%2Fdevices%2Fdev-01%2F"
                           "messages%2FdeviceBound&%24.ct=text%2Fplain&color=blue",
                           &t),
                     TETHER_OK);
    assert_int_equal(t.kind, TETHER_HUB_TOPIC_C2D);
    assert_view(t.device_id, "dev-01");
    assert_view(t.properties, "%24.to=%2Fdevices%2Fdev-01%2Fmessages%2FdeviceBound&%24.ct=text%2F"
                              "plain&color=blue");
    assert_int_equal(parse("devices/dev-01/messages/devicebound/", &t), TETHER_OK);
    assert_int_equal(t.kind, TETHER_HUB_TOPIC_C2D);
    assert_int_equal(t.properties.len, 0);

    assert_int_equal(parse("$iothub/twin/res/200/?$rid=5", &t), TETHER_OK);
    assert_int_equal(t.kind, TETHER_HUB_TOPIC_TWIN_RESPONSE);
    assert_int_equal(t.status, 200);
    assert_view(t.rid, "5");
    assert_false(t.has_version);
    assert_int_equal(parse("$iothub/twin/res/204/?$version=18446744073709551615&$rid=6", &t),
                     TETHER_OK);
    assert_int_equal(t.status, 204);
    assert_view(t.rid, "6");
    assert_true(t.has_version);
    assert_true(t.version == UINT64_MAX);

    assert_int_equal(parse("$iothub/twin/PATCH/properties/desired/?$version=12", &t), TETHER_OK);
    assert_int_equal(t.kind, TETHER_HUB_TOPIC_DESIRED_PATCH);
    assert_int_equal(t.version, 12);
    assert_null(t.rid.ptr);

    assert_int_equal(parse("$iothub/methods/POST/reboot/?$rid=a1", &t), TETHER_OK);
    assert_int_equal(t.kind, TETHER_HUB_TOPIC_METHOD);
    assert_view(t.method_name, "reboot");
    assert_view(t.rid, "a1");
}

static void refuses_malformed_topics(void **state)
{
    (void)state;
    static const char *const malformed[] = {
        "devices//messages/devicebound/",
        "devices/d/messages/devicebound/a=%2",
        "devices/d/messages/devicebound/a=%zz",
        "devices/d/messages/devicebound/=v",
        "devices/d/messages/devicebound/a=1&=2",
        "$iothub/twin/res/",
        "$iothub/twin/res/20",
        "$iothub/twin/res/200",
        "$iothub/twin/res/200/",
        "$iothub/twin/res/200/?",
        "$iothub/twin/res/200?$rid=1",
        "$iothub/twin/res/2o0/?$rid=1",
        "$iothub/twin/res/099/?$rid=1",
        "$iothub/twin/res/600/?$rid=1",
        "$iothub/twin/res/2000/?$rid=1",
        "$iothub/twin/res/204/?$version=1",
        "$iothub/twin/res/200/?$rid=1&$rid=1",
        "$iothub/twin/res/204/?$rid=1&$version=x",
        "$iothub/twin/res/204/?$rid=1&$version=",
        "$iothub/twin/res/204/?$rid=1&$version=18446744073709551616",
        "$iothub/twin/res/204/?$rid=1&$version=1&$version=2",
        "$iothub/twin/res/200/?$rid=",
        "$iothub/twin/PATCH/properties/desired/",
        "$iothub/twin/PATCH/properties/desired/?",
        "$iothub/twin/PATCH/properties/desired/?$version=-1",
        "$iothub/twin/PATCH/properties/desired/$version=1",
        "$iothub/twin/PATCH/properties/desired/?$rid=1",
        "$iothub/methods/POST/",
        "$iothub/methods/POST//?$rid=1",
        "$iothub/methods/POST/reboot",
        "$iothub/methods/POST/reboot/",
        "$iothub/methods/POST/reboot/?",
        "$iothub/methods/POST/reboot?$rid=1",
        "$iothub/methods/POST/reboot/now/?$rid=1",
        "$iothub/methods/POST/reboot/?$rid",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        tether_hub_topic t;
        tether_status st = parse(malformed[i], &t);
        if (st != TETHER_HUB_MALFORMED_TOPIC)
            fail_msg("\"%s\": %s", malformed[i], tether_status_name(st));
        assert_int_equal(t.kind, 0);
    }
    static const char *const unknown[] = {
        "",
        "devices/d/messages/events/",
        "devices/d",
        "devices/",
        "$iothub/twin/GET/?$rid=1",
        "$iothub/methods/res/200/?$rid=1",
        "$dps/registrations/res/200/?$rid=1",
        "other",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        tether_hub_topic t;
        tether_status st = parse(unknown[i], &t);
        if (st != TETHER_HUB_UNKNOWN_TOPIC)
            fail_msg("\"%s\": %s", unknown[i], tether_status_name(st));
    }
}

static void walks_property_bags(void **state)
{
    (void)state;
    const char *bag_text = "%24.to=%2Fdevices%2Fd%2Fmessages%2FdeviceBound&&%24.ct=text%2fplain&"
                           "flag&name%20x=a%26b&";
    tether_view bag = V(bag_text);
    char buf[64];
    size_t off = 0, len = 0;
    tether_hub_property p;
    const char *expected[][2] = {
        {"$.to", "/devices/d/messages/deviceBound"},
        {"$.ct", "text/plain"},
        {"flag", ""},
        {"name x", "a&b"},
    };
    for (size_t i = 0; i < 4; i++) {
        size_t need = strlen(expected[i][0]) + strlen(expected[i][1]);
        size_t before = off;
        /* Too small: the need is reported and the walk stays where it was. */
        assert_int_equal(tether_hub_property_next(bag, &off, buf, need - 1, &p, &len),
                         TETHER_BUFFER_TOO_SMALL);
        assert_int_equal(len, need);
        assert_int_equal(off, before);
        assert_int_equal(tether_hub_property_next(bag, &off, NULL, 0, &p, &len),
                         TETHER_BUFFER_TOO_SMALL);
        assert_int_equal(tether_hub_property_next(bag, &off, buf, need, &p, &len), TETHER_OK);
        assert_int_equal(len, need);
        assert_view(p.name, expected[i][0]);
        assert_view(p.value, expected[i][1]);
        assert_true(p.name.ptr == buf);
    }
    assert_int_equal(tether_hub_property_next(bag, &off, buf, sizeof buf, &p, &len),
                     TETHER_WOULD_BLOCK);
    off = 0;
    assert_int_equal(tether_hub_property_next(V(""), &off, buf, sizeof buf, &p, &len),
                     TETHER_WOULD_BLOCK);
    off = 0;
    assert_int_equal(tether_hub_property_next(V("a=%4"), &off, buf, sizeof buf, &p, &len),
                     TETHER_HUB_MALFORMED_TOPIC);
    off = 0;
    assert_int_equal(tether_hub_property_next(V("=x"), &off, buf, sizeof buf, &p, &len),
                     TETHER_HUB_MALFORMED_TOPIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(identities),          cmocka_unit_test(usernames_and_client_ids),
        cmocka_unit_test(telemetry_topics),    cmocka_unit_test(other_topics),
        cmocka_unit_test(parses_each_kind),    cmocka_unit_test(refuses_malformed_topics),
        cmocka_unit_test(walks_property_bags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
