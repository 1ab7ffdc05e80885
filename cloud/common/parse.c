#include "parse.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const dps_api_versions[] = {"2019-03-31", "2021-06-01", NULL};
static const char *const hub_api_versions[] = {"2020-09-30", "2021-04-12", NULL};

static int in_list(const char *v, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcmp(v, list[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Copy [start, end) into out; -1 if it does not fit or is empty. */
static int copy_span(const char *start, const char *end, char *out, size_t out_size)
{
    size_t len = (size_t)(end - start);
    if (len == 0 || len >= out_size) {
        return -1;
    }
    memcpy(out, start, len);
    out[len] = '\0';
    return 0;
}

int tc_query_get(const char *query, const char *key, char *out, size_t out_size)
{
    size_t key_len = strlen(key);
    const char *p = query;
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        if ((size_t)(end - p) > key_len && strncmp(p, key, key_len) == 0 && p[key_len] == '=') {
            const char *v = p + key_len + 1;
            size_t len = (size_t)(end - v);
            if (len >= out_size) {
                return -1;
            }
            memcpy(out, v, len);
            out[len] = '\0';
            return 1;
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return 0;
}

int tc_username_parse(const char *username, struct tc_username *out)
{
    memset(out, 0, sizeof *out);
    if (username == NULL) {
        return -1;
    }
    const char *s1 = strchr(username, '/');
    if (s1 == NULL) {
        return -1;
    }
    /* DPS: {scope}/registrations/{id}/api-version=... */
    if (strncmp(s1, "/registrations/", 15) == 0) {
        const char *id = s1 + 15;
        const char *s3 = strchr(id, '/');
        if (s3 == NULL || strncmp(s3, "/api-version=", 13) != 0) {
            return -1;
        }
        if (copy_span(username, s1, out->scope_or_host, sizeof out->scope_or_host) != 0 ||
            copy_span(id, s3, out->id, sizeof out->id) != 0) {
            return -1;
        }
        if (tc_query_get(s3 + 1, "api-version", out->api_version, sizeof out->api_version) != 1 ||
            !in_list(out->api_version, dps_api_versions)) {
            return -1;
        }
        out->kind = TC_USER_DPS;
        return 0;
    }
    /* Hub: {host}/{device}[/{module}]/?api-version=... */
    const char *q = strstr(s1, "/?");
    if (q == NULL) {
        return -1;
    }
    if (copy_span(username, s1, out->scope_or_host, sizeof out->scope_or_host) != 0) {
        return -1;
    }
    const char *dev = s1 + 1;
    const char *s2 = memchr(dev, '/', (size_t)(q - dev + 1));
    if (s2 == NULL || s2 > q) {
        return -1;
    }
    if (copy_span(dev, s2, out->id, sizeof out->id) != 0) {
        return -1;
    }
    if (s2 < q && copy_span(s2 + 1, q, out->module, sizeof out->module) != 0) {
        return -1;
    }
    if (strchr(out->module, '/') != NULL) {
        return -1;
    }
    if (tc_query_get(q + 2, "api-version", out->api_version, sizeof out->api_version) != 1 ||
        !in_list(out->api_version, hub_api_versions)) {
        return -1;
    }
    out->kind = TC_USER_HUB;
    return 0;
}

int tc_registration_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > TC_ID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != ':') {
            return 0;
        }
    }
    unsigned char last = (unsigned char)id[len - 1];
    return isalnum(last) || last == '-';
}

int tc_device_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > TC_ID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c >= 0x80 || (!isalnum(c) && strchr("-:.+%_#*?!(),=@;$'", c) == NULL)) {
            return 0;
        }
    }
    return 1;
}

static int parse_rid(const char *query, struct tc_topic *out)
{
    return tc_query_get(query, "$rid", out->rid, sizeof out->rid) == 1 && out->rid[0] != '\0';
}

void tc_topic_parse(const char *topic, const char *device_id, struct tc_topic *out)
{
    memset(out, 0, sizeof *out);
    if (topic == NULL) {
        return;
    }
    if (device_id == NULL) {
        static const char reg[] = "$dps/registrations/PUT/iotdps-register/?";
        static const char poll[] = "$dps/registrations/GET/iotdps-get-operationstatus/?";
        if (strncmp(topic, reg, sizeof reg - 1) == 0) {
            if (parse_rid(topic + sizeof reg - 1, out)) {
                out->kind = TC_TOPIC_DPS_REGISTER;
            }
        } else if (strncmp(topic, poll, sizeof poll - 1) == 0) {
            const char *q = topic + sizeof poll - 1;
            if (parse_rid(q, out) &&
                tc_query_get(q, "operationId", out->operation_id, sizeof out->operation_id) == 1 &&
                out->operation_id[0] != '\0') {
                out->kind = TC_TOPIC_DPS_POLL;
            }
        }
        return;
    }
    static const char twin_get[] = "$iothub/twin/GET/?";
    static const char twin_patch[] = "$iothub/twin/PATCH/properties/reported/?";
    static const char method_res[] = "$iothub/methods/res/";
    if (strncmp(topic, twin_get, sizeof twin_get - 1) == 0) {
        if (parse_rid(topic + sizeof twin_get - 1, out)) {
            out->kind = TC_TOPIC_TWIN_GET;
        }
        return;
    }
    if (strncmp(topic, twin_patch, sizeof twin_patch - 1) == 0) {
        if (parse_rid(topic + sizeof twin_patch - 1, out)) {
            out->kind = TC_TOPIC_TWIN_PATCH_REPORTED;
        }
        return;
    }
    if (strncmp(topic, method_res, sizeof method_res - 1) == 0) {
        const char *p = topic + sizeof method_res - 1;
        int status = 0;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 4) {
            status = status * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits == 0 || strncmp(p, "/?", 2) != 0) {
            return;
        }
        if (parse_rid(p + 2, out)) {
            out->kind = TC_TOPIC_METHOD_RESPONSE;
            out->status = status;
        }
        return;
    }
    /* devices/{id}/messages/events/{bag} */
    size_t id_len = strlen(device_id);
    if (strncmp(topic, "devices/", 8) == 0 && strncmp(topic + 8, device_id, id_len) == 0) {
        const char *p = topic + 8 + id_len;
        if (strcmp(p, "/messages/events") == 0) {
            out->kind = TC_TOPIC_TELEMETRY;
            out->props = p + strlen(p);
        } else if (strncmp(p, "/messages/events/", 17) == 0) {
            out->kind = TC_TOPIC_TELEMETRY;
            out->props = p + 17;
        }
    }
}

cJSON *tc_props_to_json(const char *bag)
{
    cJSON *obj = cJSON_CreateObject();
    const char *p = bag;
    if (obj == NULL) {
        return NULL;
    }
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *key_end = eq != NULL ? eq : end;
        if (key_end > p) {
            char *k = tc_url_decode(p, (size_t)(key_end - p));
            char *v = eq != NULL ? tc_url_decode(eq + 1, (size_t)(end - eq - 1)) : strdup("");
            if (k == NULL || v == NULL) {
                free(k);
                free(v);
                cJSON_Delete(obj);
                return NULL;
            }
            cJSON_DeleteItemFromObjectCaseSensitive(obj, k);
            cJSON_AddStringToObject(obj, k, v);
            free(k);
            free(v);
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
    return obj;
}

int tc_topic_matches(const char *filter, const char *topic)
{
    const char *f = filter;
    const char *t = topic;
    /* Filters starting with a wildcard never match $-topics. */
    if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) {
        return 0;
    }
    for (;;) {
        if (*f == '#') {
            return f[1] == '\0';
        }
        if (*f == '+') {
            while (*t != '\0' && *t != '/') {
                t++;
            }
            f++;
        } else {
            while (*f != '\0' && *f != '/' && *f == *t) {
                f++;
                t++;
            }
            if ((*f == '\0' || *f == '/') && (*t == '\0' || *t == '/')) {
                /* segment ended on both */
            } else {
                return 0;
            }
        }
        if (*f == '\0' && *t == '\0') {
            return 1;
        }
        if (*f == '/' && *t == '/') {
            f++;
            t++;
            continue;
        }
        /* "a/#" matches "a" */
        if (*f == '/' && f[1] == '#' && f[2] == '\0' && *t == '\0') {
            return 1;
        }
        return 0;
    }
}

void tc_json_merge(cJSON *target, const cJSON *patch)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, patch)
    {
        if (item->string == NULL || item->string[0] == '$') {
            continue;
        }
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(target, item->string);
        if (cJSON_IsNull(item)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, item->string);
        } else if (cJSON_IsObject(item) && cJSON_IsObject(cur)) {
            tc_json_merge(cur, item);
        } else if (cur != NULL) {
            cJSON_ReplaceItemInObjectCaseSensitive(target, item->string, cJSON_Duplicate(item, 1));
        } else {
            cJSON_AddItemToObject(target, item->string, cJSON_Duplicate(item, 1));
        }
    }
}

char *tc_props_encode(const cJSON *props, int skip_system)
{
    size_t cap = 1;
    const cJSON *it;
    cJSON_ArrayForEach(it, props)
    {
        if (it->string != NULL && cJSON_IsString(it)) {
            cap += 3 * (strlen(it->string) + strlen(it->valuestring)) + 2;
        }
    }
    char *out = malloc(cap);
    if (out == NULL) {
        return NULL;
    }
    size_t n = 0;
    out[0] = '\0';
    cJSON_ArrayForEach(it, props)
    {
        if (it->string == NULL || !cJSON_IsString(it) ||
            (skip_system && strncmp(it->string, "$.", 2) == 0)) {
            continue;
        }
        char *k = tc_url_encode(it->string);
        char *v = tc_url_encode(it->valuestring);
        if (k == NULL || v == NULL) {
            free(k);
            free(v);
            free(out);
            return NULL;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s%s=%s", n > 0 ? "&" : "", k, v);
        free(k);
        free(v);
    }
    return out;
}

cJSON *tc_json_parse_device(const void *data, size_t len, char *why, size_t why_size)
{
    const unsigned char *p = data;
    if (len == 0 || p == NULL) {
        snprintf(why, why_size, "The body is empty; a JSON document is required.");
        return NULL;
    }
    if (memchr(p, 0, len) != NULL) {
        snprintf(why, why_size, "The body contains a NUL byte: it is not a JSON text.");
        return NULL;
    }
    if (!tc_utf8_valid(p, len)) {
        snprintf(why, why_size, "The body is not valid UTF-8.");
        return NULL;
    }
    /* cJSON needs the text NUL-terminated to refuse what follows the value. */
    char *text = malloc(len + 1);
    if (text == NULL) {
        snprintf(why, why_size, "The body could not be read.");
        return NULL;
    }
    memcpy(text, p, len);
    text[len] = '\0';
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, 1);
    if (doc == NULL) {
        size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
        snprintf(why, why_size, "The body is not valid JSON (at byte %zu of %zu).", at, len);
    }
    free(text);
    return doc;
}
