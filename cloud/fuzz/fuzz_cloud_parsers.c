/* One libFuzzer target for everything a device can put in front of the plugin: the first
 * byte picks the parser, the rest is the input (NUL-terminated copy). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "parse.h"
#include "sas.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 70000) {
        return 0;
    }
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 7) {
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
