/*
 * IoT Hub over MQTT (include/tether/hub.h): user name, client id, topics and property bags
 * written into caller buffers; incoming topics read into views. Pure.
 */
#include "tether/hub.h"

#include <string.h>

#include "tether/url.h"

#include "proto.h"

#define C2D_PREFIX      "devices/"
#define C2D_MIDDLE      "/messages/devicebound/"
#define TWIN_RES_PREFIX "$iothub/twin/res/"
#define DESIRED_PREFIX  "$iothub/twin/PATCH/properties/desired/"
#define METHOD_PREFIX   "$iothub/methods/POST/"

/* ---- identities --------------------------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* IoT Hub's set of characters without + and #, which MQTT topics cannot carry. */
static bool device_id_valid(const char *s)
{
    size_t n = tether_cstr_len(s, TETHER_HUB_ID_MAX + 1);
    if (n == 0 || n > TETHER_HUB_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && strchr("-.%_*?!(),:;=@$'", s[i]) == NULL)
            return false;
    }
    return true;
}

static bool host_valid(const char *s)
{
    size_t n = tether_cstr_len(s, 254);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '.')
            return false;
    }
    return true;
}

tether_status tether_hub_identity_check(const tether_hub_identity *id)
{
    if (id == NULL || id->host == NULL || !host_valid(id->host))
        return TETHER_INVALID_ARGUMENT;
    if (id->device_id == NULL || !device_id_valid(id->device_id))
        return TETHER_INVALID_DEVICE_ID;
    if (id->module_id != NULL && !device_id_valid(id->module_id))
        return TETHER_INVALID_DEVICE_ID;
    return TETHER_OK;
}

/* ---- writers ------------------------------------------------------------------------------ */

typedef struct username_arg {
    const tether_hub_identity *id;
    const char *client_type;
    const char *model_id;
} username_arg;

static void build_username(tether_text *t, const void *arg)
{
    const username_arg *a = arg;
    tether_text_cstr(t, a->id->host);
    tether_text_cstr(t, "/");
    tether_text_cstr(t, a->id->device_id);
    if (a->id->module_id != NULL) {
        tether_text_cstr(t, "/");
        tether_text_cstr(t, a->id->module_id);
    }
    tether_text_cstr(t, "/?api-version=" TETHER_HUB_API_VERSION);
    if (a->client_type != NULL) {
        tether_text_cstr(t, "&DeviceClientType=");
        tether_text_url(t, a->client_type, strlen(a->client_type));
    }
    if (a->model_id != NULL) {
        tether_text_cstr(t, "&model-id=");
        tether_text_url(t, a->model_id, strlen(a->model_id));
    }
}

tether_status tether_hub_username(const tether_hub_identity *id, const char *client_type,
                                  const char *model_id, char *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_hub_identity_check(id);
    if (st != TETHER_OK)
        return st;
    username_arg a = {id, client_type, model_id};
    return tether_text_run(build_username, &a, buf, cap, out_len);
}

static void build_client_id(tether_text *t, const void *arg)
{
    const tether_hub_identity *id = arg;
    tether_text_cstr(t, id->device_id);
    if (id->module_id != NULL) {
        tether_text_cstr(t, "/");
        tether_text_cstr(t, id->module_id);
    }
}

tether_status tether_hub_client_id(const tether_hub_identity *id, char *buf, size_t cap,
                                   size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_hub_identity_check(id);
    if (st != TETHER_OK)
        return st;
    return tether_text_run(build_client_id, id, buf, cap, out_len);
}

typedef struct telemetry_arg {
    const tether_hub_identity *id;
    const tether_hub_property *properties;
    size_t count;
} telemetry_arg;

static void build_telemetry(tether_text *t, const void *arg)
{
    const telemetry_arg *a = arg;
    tether_text_cstr(t, "devices/");
    tether_text_cstr(t, a->id->device_id);
    if (a->id->module_id != NULL) {
        tether_text_cstr(t, "/modules/");
        tether_text_cstr(t, a->id->module_id);
    }
    tether_text_cstr(t, "/messages/events/");
    for (size_t i = 0; i < a->count; i++) {
        const tether_hub_property *p = &a->properties[i];
        if (i > 0)
            tether_text_cstr(t, "&");
        tether_text_url(t, p->name.ptr, p->name.len);
        tether_text_cstr(t, "=");
        tether_text_url(t, p->value.ptr, p->value.len);
    }
}

tether_status tether_hub_telemetry_topic(const tether_hub_identity *id,
                                         const tether_hub_property *properties, size_t count,
                                         char *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL || (properties == NULL && count > 0))
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_hub_identity_check(id);
    if (st != TETHER_OK)
        return st;
    for (size_t i = 0; i < count; i++) {
        const tether_hub_property *p = &properties[i];
        if (p->name.len == 0 || p->name.ptr == NULL || (p->value.ptr == NULL && p->value.len))
            return TETHER_INVALID_ARGUMENT;
    }
    telemetry_arg a = {id, properties, count};
    return tether_text_run(build_telemetry, &a, buf, cap, out_len);
}

static void build_c2d_filter(tether_text *t, const void *arg)
{
    const tether_hub_identity *id = arg;
    tether_text_cstr(t, C2D_PREFIX);
    tether_text_cstr(t, id->device_id);
    tether_text_cstr(t, C2D_MIDDLE "#");
}

tether_status tether_hub_c2d_filter(const tether_hub_identity *id, char *buf, size_t cap,
                                    size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_hub_identity_check(id);
    if (st != TETHER_OK)
        return st;
    if (id->module_id != NULL)
        return TETHER_INVALID_ARGUMENT;
    return tether_text_run(build_c2d_filter, id, buf, cap, out_len);
}

/* No "{status}/" in the topic (a status is at most 65535). */
#define NO_STATUS 0x10000u

typedef struct rid_topic_arg {
    const char *prefix;
    uint32_t status; /* method response: "{status}/" after the prefix; else NO_STATUS */
    tether_view rid;
} rid_topic_arg;

static void build_rid_topic(tether_text *t, const void *arg)
{
    const rid_topic_arg *a = arg;
    tether_text_cstr(t, a->prefix);
    if (a->status != NO_STATUS) {
        tether_text_u64(t, a->status);
        tether_text_cstr(t, "/");
    }
    tether_text_cstr(t, "?$rid=");
    tether_text_view(t, a->rid);
}

static tether_status rid_topic(const char *prefix, uint32_t status, tether_view rid, char *buf,
                               size_t cap, size_t *out_len)
{
    if (out_len == NULL || !tether_rid_valid(rid))
        return TETHER_INVALID_ARGUMENT;
    rid_topic_arg a = {prefix, status, rid};
    return tether_text_run(build_rid_topic, &a, buf, cap, out_len);
}

tether_status tether_hub_twin_get_topic(tether_view rid, char *buf, size_t cap, size_t *out_len)
{
    return rid_topic("$iothub/twin/GET/", NO_STATUS, rid, buf, cap, out_len);
}

tether_status tether_hub_twin_patch_topic(tether_view rid, char *buf, size_t cap, size_t *out_len)
{
    return rid_topic("$iothub/twin/PATCH/properties/reported/", NO_STATUS, rid, buf, cap, out_len);
}

tether_status tether_hub_method_response_topic(uint16_t status, tether_view rid, char *buf,
                                               size_t cap, size_t *out_len)
{
    return rid_topic("$iothub/methods/res/", status, rid, buf, cap, out_len);
}

/* ---- reading topics ----------------------------------------------------------------------- */

bool tether_response_status(tether_view t, size_t p, uint16_t *status)
{
    if (t.len - p < 5 || t.ptr[p + 3] != '/' || t.ptr[p + 4] != '?')
        return false;
    unsigned v = 0;
    for (size_t i = p; i < p + 3; i++) {
        if (t.ptr[i] < '0' || t.ptr[i] > '9')
            return false;
        v = v * 10u + (unsigned)(t.ptr[i] - '0');
    }
    if (v < 100 || v > 599) /* also rules out a leading zero */
        return false;
    *status = (uint16_t)v;
    return true;
}

bool tether_response_query(tether_view query, tether_view *rid, const char *name, uint64_t max,
                           bool *has_value, uint64_t *value)
{
    size_t off = 0;
    tether_query_param q;
    bool has_rid = false;
    while (tether_query_next(query, &off, &q)) {
        if (rid != NULL && tether_view_equals(q.name, "$rid")) {
            if (has_rid || !q.has_value || !tether_rid_valid(q.value))
                return false;
            *rid = q.value;
            has_rid = true;
        } else if (name != NULL && tether_view_equals(q.name, name)) {
            if (*has_value || !q.has_value || !tether_parse_u64(q.value, max, value))
                return false;
            *has_value = true;
        }
    }
    return rid == NULL || has_rid;
}

/* Checks a property bag: escapes valid, and no value without a name. */
static bool bag_valid(tether_view bag)
{
    size_t off = 0;
    tether_query_param q;
    if (!tether_url_escapes_valid(bag.ptr, bag.len))
        return false;
    while (tether_query_next(bag, &off, &q)) {
        if (q.name.len == 0 && q.has_value)
            return false;
    }
    return true;
}

static tether_status parse_c2d(tether_view t, tether_hub_topic *out)
{
    size_t start = sizeof C2D_PREFIX - 1, mid = sizeof C2D_MIDDLE - 1;
    size_t slash = start;
    while (slash < t.len && t.ptr[slash] != '/')
        slash++;
    tether_view rest = tether_view_span(t.ptr, slash, t.len);
    if (!tether_view_starts_with(rest, C2D_MIDDLE))
        return TETHER_HUB_UNKNOWN_TOPIC; /* telemetry or something else under devices/ */
    if (slash == start)
        return TETHER_HUB_MALFORMED_TOPIC;
    out->kind = TETHER_HUB_TOPIC_C2D;
    out->device_id = tether_view_span(t.ptr, start, slash);
    out->properties = tether_view_span(t.ptr, slash + mid, t.len);
    return bag_valid(out->properties) ? TETHER_OK : TETHER_HUB_MALFORMED_TOPIC;
}

tether_status tether_hub_topic_parse(const char *topic, size_t topic_len, tether_hub_topic *out)
{
    if (out == NULL || (topic == NULL && topic_len > 0))
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    tether_view t = {topic, topic_len};
    tether_status st = TETHER_HUB_MALFORMED_TOPIC;
    /* Twin and method topics end in a query: where it starts, and what it holds. */
    size_t query = 0;
    bool want_rid = true;
    if (tether_view_starts_with(t, C2D_PREFIX)) {
        st = parse_c2d(t, out);
    } else if (tether_view_starts_with(t, TWIN_RES_PREFIX)) {
        size_t p = sizeof TWIN_RES_PREFIX - 1;
        out->kind = TETHER_HUB_TOPIC_TWIN_RESPONSE;
        if (tether_response_status(t, p, &out->status))
            query = p + 5;
    } else if (tether_view_starts_with(t, DESIRED_PREFIX)) {
        size_t p = sizeof DESIRED_PREFIX - 1;
        out->kind = TETHER_HUB_TOPIC_DESIRED_PATCH;
        want_rid = false;
        if (t.len > p && t.ptr[p] == '?')
            query = p + 1;
    } else if (tether_view_starts_with(t, METHOD_PREFIX)) {
        size_t start = sizeof METHOD_PREFIX - 1, end = start;
        while (end < t.len && t.ptr[end] != '/')
            end++;
        out->kind = TETHER_HUB_TOPIC_METHOD;
        out->method_name = tether_view_span(t.ptr, start, end);
        if (end > start && t.len - end >= 2 && t.ptr[end + 1] == '?')
            query = end + 2;
    } else {
        st = TETHER_HUB_UNKNOWN_TOPIC;
    }
    /* $rid in twin responses and methods; $version in twin topics, required in a patch. */
    bool twin = out->kind != TETHER_HUB_TOPIC_METHOD;
    if (query != 0 &&
        tether_response_query(tether_view_span(t.ptr, query, t.len), want_rid ? &out->rid : NULL,
                              twin ? "$version" : NULL, UINT64_MAX, &out->has_version,
                              &out->version) &&
        (want_rid || out->has_version))
        st = TETHER_OK;
    if (st != TETHER_OK)
        memset(out, 0, sizeof *out);
    return st;
}

/* ---- property bags ------------------------------------------------------------------------ */

tether_status tether_hub_property_next(tether_view bag, size_t *offset, char *buf, size_t cap,
                                       tether_hub_property *out, size_t *out_len)
{
    if (offset == NULL || out == NULL || out_len == NULL || (bag.ptr == NULL && bag.len > 0))
        return TETHER_INVALID_ARGUMENT;
    tether_query_param q;
    size_t off = *offset;
    do {
        if (!tether_query_next(bag, &off, &q))
            return TETHER_WOULD_BLOCK;
    } while (q.name.len == 0 && !q.has_value); /* empty pair, e.g. "a=1&&b=2" */
    if (q.name.len == 0)
        return TETHER_HUB_MALFORMED_TOPIC;

    size_t name_len, value_len;
    tether_status st = tether_url_decode(q.name.ptr, q.name.len, NULL, 0, &name_len);
    if (st == TETHER_BUFFER_TOO_SMALL)
        st = tether_url_decode(q.value.ptr, q.value.len, NULL, 0, &value_len);
    if (st != TETHER_BUFFER_TOO_SMALL)
        return TETHER_HUB_MALFORMED_TOPIC;
    *out_len = name_len + value_len;
    if (buf == NULL || *out_len > cap)
        return TETHER_BUFFER_TOO_SMALL;
    /* Both fit, so these cannot fail. */
    if (tether_url_decode(q.name.ptr, q.name.len, buf, name_len, &name_len) != TETHER_OK ||
        tether_url_decode(q.value.ptr, q.value.len, buf + name_len, value_len, &value_len) !=
            TETHER_OK)
        return TETHER_HUB_MALFORMED_TOPIC;
    out->name.ptr = buf;
    out->name.len = name_len;
    out->value.ptr = buf + name_len;
    out->value.len = value_len;
    *offset = off;
    return TETHER_OK;
}
