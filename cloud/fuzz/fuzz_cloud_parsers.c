/* One libFuzzer target for everything a device can put in front of the plugin: the first
 * byte picks the parser, the rest is the input (NUL-terminated copy). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mqtt_tap.h"
#include "parse.h"
#include "sas.h"
#include "util.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void tap_seen(void *ctx, enum tc_tap_event event, const char *d, size_t len,
                     unsigned packet_id)
{
    (void)ctx;
    (void)event;
    (void)packet_id;
    if (len > TC_TAP_KEEP || (len > 0 && d == NULL)) {
        abort();
    }
    volatile char sink = len > 0 ? d[len - 1] : 0; /* ASan checks the span */
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000) {
        return 0;
    }
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    /* The first byte picks the parser; the seeds start with its digit ('0' to '8'). */
    switch ((unsigned)(data[0] - '0') % 9u) {
    case 0: {
        struct tc_username u;
        tc_username_parse(text, &u);
        break;
    }
    case 1: {
        struct tc_topic t;
        tc_topic_parse(text, NULL, &t);
        tc_topic_parse(text, "dev-1", &t);
        break;
    }
    case 2: {
        cJSON *p = tc_props_to_json(text);
        cJSON_Delete(p);
        char v[65];
        tc_query_get(text, "$rid", v, sizeof v);
        break;
    }
    case 3:
        tc_sas_check(text, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=", "0ne1/registrations/d",
                     1000);
        break;
    case 4: {
        /* payload handling as the plugin does it: register body, twin patch merge */
        char why[96];
        cJSON *doc = tc_json_parse_device(data + 1, size - 1, why, sizeof why);
        cJSON *rid = cJSON_GetObjectItemCaseSensitive(doc, "registrationId");
        (void)cJSON_IsString(rid);
        cJSON *target = cJSON_Parse("{\"a\":{\"b\":1},\"c\":2}");
        if (cJSON_IsObject(doc)) {
            tc_json_merge(target, doc);
            char *out = cJSON_PrintUnformatted(target);
            free(out);
        }
        cJSON_Delete(target);
        cJSON_Delete(doc);
        break;
    }
    case 5: {
        unsigned char out[256];
        tc_base64_decode(text, out, sizeof out);
        char *d = tc_url_decode(text, strlen(text));
        free(d);
        break;
    }
    case 6: {
        /* the TLS shim's MQTT stream reader, both directions, fed in uneven pieces */
        struct tc_tap in, out;
        tc_tap_init(&in, TC_TAP_FIRST_CONNECT);
        tc_tap_init(&out, TC_TAP_FIRST_CONNACK);
        const unsigned char *p = data + 1;
        size_t n = size - 1;
        for (size_t at = 0, step = 1; at < n; at += step, step = step % 7 + 1) {
            size_t k = step < n - at ? step : n - at;
            tc_tap_feed(&in, p + at, k, tap_seen, NULL);
        }
        tc_tap_feed(&out, p, n, tap_seen, NULL);
        break;
    }
    case 7: {
        /* MQTT over WebSockets: the upgrade request, then the same bytes as frames */
        char resp[512];
        size_t used = 0;
        tc_ws_handshake((const char *)data + 1, size - 1, &used, resp, sizeof resp);
        tc_tls13_host(data + 1, size - 1);
        struct tc_ws_decoder d;
        memset(&d, 0, sizeof d);
        unsigned char out[64];
        size_t at = 1;
        while (at < size) {
            size_t got = 0;
            size_t n = 0;
            enum tc_ws_event ev = tc_ws_decode(&d, data + at, size - at, &n, out, sizeof out, &got);
            at += n;
            if (ev == TC_WS_EV_ERROR || ev == TC_WS_EV_CLOSE || (n == 0 && got == 0)) {
                break;
            }
        }
        break;
    }
    default: {
        char f[64];
        size_t half = strlen(text) / 2;
        if (half >= sizeof f) {
            half = sizeof f - 1;
        }
        memcpy(f, text, half);
        f[half] = '\0';
        tc_topic_matches(f, text + half);
        tc_registration_id_valid(text);
        break;
    }
    }
    free(text);
    return 0;
}
