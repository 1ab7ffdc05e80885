/*
 * DPS over MQTT (include/tether/dps.h): user name, topics and register payload written into
 * caller buffers, and the response topic and payload read into views. Pure.
 */
#include "tether/dps.h"

#include <string.h>

#include "proto.h"

#define RESPONSE_PREFIX "$dps/registrations/res/"

/* ---- identities --------------------------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

tether_status tether_dps_registration_id_check(const char *registration_id)
{
    if (registration_id == NULL)
        return TETHER_INVALID_REGISTRATION_ID;
    size_t n = tether_cstr_len(registration_id, TETHER_DPS_REGISTRATION_ID_MAX + 1);
    if (n == 0 || n > TETHER_DPS_REGISTRATION_ID_MAX)
        return TETHER_INVALID_REGISTRATION_ID;
    for (size_t i = 0; i < n; i++) {
        char c = registration_id[i];
        if (!is_alnum(c) && c != '-' && c != '.' && c != '_' && c != ':')
            return TETHER_INVALID_REGISTRATION_ID;
    }
    char last = registration_id[n - 1];
    return is_alnum(last) || last == '-' ? TETHER_OK : TETHER_INVALID_REGISTRATION_ID;
}

static tether_status id_scope_check(const char *id_scope)
{
    if (id_scope == NULL || id_scope[0] == '\0')
        return TETHER_INVALID_ID_SCOPE;
    size_t n = tether_cstr_len(id_scope, 65);
    if (n > 64)
        return TETHER_INVALID_ID_SCOPE;
    for (size_t i = 0; i < n; i++) {
        if (!is_alnum(id_scope[i]))
            return TETHER_INVALID_ID_SCOPE;
    }
    return TETHER_OK;
}

/* ---- writers ------------------------------------------------------------------------------ */

typedef struct username_arg {
    const char *id_scope;
    const char *registration_id;
    const char *client_version;
} username_arg;

static void build_username(tether_text *t, const void *arg)
{
    const username_arg *a = arg;
    tether_text_cstr(t, a->id_scope);
    tether_text_cstr(t, "/registrations/");
    tether_text_cstr(t, a->registration_id);
    tether_text_cstr(t, "/api-version=" TETHER_DPS_API_VERSION);
    if (a->client_version != NULL) {
        tether_text_cstr(t, "&ClientVersion=");
        tether_text_url(t, a->client_version, strlen(a->client_version));
    }
}

tether_status tether_dps_username(const char *id_scope, const char *registration_id,
                                  const char *client_version, char *buf, size_t cap,
                                  size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = id_scope_check(id_scope);
    if (st == TETHER_OK)
        st = tether_dps_registration_id_check(registration_id);
    if (st != TETHER_OK)
        return st;
    username_arg a = {id_scope, registration_id, client_version};
    return tether_text_run(build_username, &a, buf, cap, out_len);
}

static void build_cstr(tether_text *t, const void *arg)
{
    tether_text_cstr(t, arg);
}

tether_status tether_dps_client_id(const char *registration_id, char *buf, size_t cap,
                                   size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_dps_registration_id_check(registration_id);
    if (st != TETHER_OK)
        return st;
    return tether_text_run(build_cstr, registration_id, buf, cap, out_len);
}

typedef struct topic_arg {
    tether_view rid;
    tether_view operation_id; /* poll only */
} topic_arg;

static void build_register_topic(tether_text *t, const void *arg)
{
    const topic_arg *a = arg;
    tether_text_cstr(t, "$dps/registrations/PUT/iotdps-register/?$rid=");
    tether_text_view(t, a->rid);
}

static void build_poll_topic(tether_text *t, const void *arg)
{
    const topic_arg *a = arg;
    tether_text_cstr(t, "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=");
    tether_text_view(t, a->rid);
    tether_text_cstr(t, "&operationId=");
    tether_text_url(t, a->operation_id.ptr, a->operation_id.len);
}

tether_status tether_dps_register_topic(tether_view rid, char *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL || !tether_rid_valid(rid))
        return TETHER_INVALID_ARGUMENT;
    topic_arg a = {rid, {NULL, 0}};
    return tether_text_run(build_register_topic, &a, buf, cap, out_len);
}

tether_status tether_dps_poll_topic(tether_view rid, tether_view operation_id, char *buf,
                                    size_t cap, size_t *out_len)
{
    if (out_len == NULL || !tether_rid_valid(rid) || operation_id.len == 0 ||
        operation_id.ptr == NULL)
        return TETHER_INVALID_ARGUMENT;
    topic_arg a = {rid, operation_id};
    return tether_text_run(build_poll_topic, &a, buf, cap, out_len);
}

tether_status tether_dps_register_payload(const char *registration_id, const char *custom_json,
                                          size_t custom_len, char *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_dps_registration_id_check(registration_id);
    if (st != TETHER_OK)
        return st;
    if (custom_json != NULL) {
        st = tether_json_validate(custom_json, custom_len, NULL);
        if (st != TETHER_OK)
            return st;
    }
    /* Sized first, so that nothing is written when it does not fit. */
    for (int pass = 0; pass < 2; pass++) {
        tether_json_writer w;
        tether_json_writer_init(&w, pass == 0 ? NULL : buf, pass == 0 ? 0 : cap);
        tether_json_write_object_begin(&w);
        tether_json_write_key(&w, "registrationId", 14);
        tether_json_write_string(&w, registration_id, strlen(registration_id));
        if (custom_json != NULL) {
            tether_json_write_key(&w, "payload", 7);
            tether_json_write_raw(&w, custom_json, custom_len);
        }
        tether_json_write_object_end(&w);
        st = tether_json_writer_finish(&w, out_len);
        if (pass == 0 && (st != TETHER_BUFFER_TOO_SMALL || buf == NULL || *out_len > cap))
            return st;
    }
    return st;
}

/* ---- response topic ----------------------------------------------------------------------- */

tether_status tether_dps_response_topic_parse(const char *topic, size_t topic_len,
                                              tether_dps_response_topic *out)
{
    if (out == NULL || (topic == NULL && topic_len > 0))
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    tether_view t = {topic, topic_len};
    size_t p = sizeof RESPONSE_PREFIX - 1;
    /* "{ddd}/?" after the prefix */
    if (!tether_view_starts_with(t, RESPONSE_PREFIX) || topic_len - p < 5 || topic[p + 3] != '/' ||
        topic[p + 4] != '?')
        return TETHER_DPS_MALFORMED_RESPONSE;
    uint64_t status;
    if (!tether_parse_u64(tether_view_span(topic, p, p + 3), 599, &status) || status < 100)
        return TETHER_DPS_MALFORMED_RESPONSE;
    out->status = (uint16_t)status;

    tether_view query = tether_view_span(topic, p + 5, topic_len);
    size_t off = 0;
    tether_query_param q;
    bool has_rid = false;
    while (tether_query_next(query, &off, &q)) {
        if (tether_view_equals(q.name, "$rid")) {
            if (has_rid || !q.has_value || !tether_rid_valid(q.value))
                return TETHER_DPS_MALFORMED_RESPONSE;
            out->rid = q.value;
            has_rid = true;
        } else if (tether_view_equals(q.name, "retry-after")) {
            uint64_t s;
            if (out->has_retry_after || !q.has_value || !tether_parse_u64(q.value, UINT32_MAX, &s))
                return TETHER_DPS_MALFORMED_RESPONSE;
            out->retry_after_s = (uint32_t)s;
            out->has_retry_after = true;
        }
        /* Anything else is for another client version: ignored. */
    }
    return has_rid ? TETHER_OK : TETHER_DPS_MALFORMED_RESPONSE;
}

/* ---- response payload --------------------------------------------------------------------- */

static const char *const status_names[] = {
    [TETHER_DPS_STATUS_NONE] = "",        [TETHER_DPS_UNASSIGNED] = "unassigned",
    [TETHER_DPS_ASSIGNING] = "assigning", [TETHER_DPS_ASSIGNED] = "assigned",
    [TETHER_DPS_FAILED] = "failed",       [TETHER_DPS_DISABLED] = "disabled",
};

const char *tether_dps_status_name(tether_dps_status status)
{
    if ((unsigned)status >= sizeof status_names / sizeof status_names[0])
        return "";
    return status_names[status];
}

bool tether_dps_status_is_final(tether_dps_status status)
{
    return status == TETHER_DPS_ASSIGNED || status == TETHER_DPS_FAILED ||
           status == TETHER_DPS_DISABLED;
}

bool tether_dps_response_is_retriable(uint16_t status)
{
    return status == 429 || (status >= 500 && status <= 599);
}

/* Reading members into views, with the strings unescaped into the scratch buffer. */
typedef struct payload_reader {
    const tether_json *doc;
    char *scratch;
    size_t cap;
    size_t used; /* bytes placed, or needed once short */
    bool short_of_space;
} payload_reader;

/* Looks up a member: false with *at unchanged when absent or null. */
static bool present(const payload_reader *r, size_t object, const char *name, size_t *at)
{
    size_t i;
    if (tether_json_member(r->doc, object, name, strlen(name), &i) != TETHER_OK ||
        tether_json_type_of(r->doc, i) == TETHER_JSON_NULL)
        return false;
    *at = i;
    return true;
}

static bool read_string(payload_reader *r, size_t object, const char *name, tether_view *out)
{
    size_t at, need = 0;
    if (!present(r, object, name, &at))
        return true;
    if (tether_json_type_of(r->doc, at) != TETHER_JSON_STRING)
        return false;
    if (tether_json_get_string(r->doc, at, NULL, 0, &need) != TETHER_BUFFER_TOO_SMALL)
        return false; /* sizing with no buffer always reports the size */
    if (r->short_of_space || r->scratch == NULL || need > r->cap - r->used) {
        r->short_of_space = true;
        r->used += need;
        return true;
    }
    if (tether_json_get_string(r->doc, at, r->scratch + r->used, need, &need) != TETHER_OK)
        return false;
    out->ptr = r->scratch + r->used;
    out->len = need;
    r->used += need;
    return true;
}

static bool read_status(payload_reader *r, size_t object, tether_dps_status *out)
{
    size_t at;
    if (!present(r, object, "status", &at))
        return true;
    for (size_t s = TETHER_DPS_UNASSIGNED; s <= TETHER_DPS_DISABLED; s++) {
        if (tether_json_string_equals(r->doc, at, status_names[s], strlen(status_names[s]))) {
            *out = (tether_dps_status)s;
            return true;
        }
    }
    return false; /* not a string, or not a status DPS has */
}

static bool read_error_code(payload_reader *r, size_t object, uint32_t *out)
{
    size_t at;
    int64_t v;
    if (!present(r, object, "errorCode", &at))
        return true;
    if (tether_json_get_int(r->doc, at, &v) != TETHER_OK || v < 0 || v > (int64_t)UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

tether_status tether_dps_response_payload_parse(const char *payload, size_t payload_len,
                                                tether_json_token *tokens, size_t max_tokens,
                                                char *scratch, size_t scratch_cap,
                                                tether_dps_registration *out)
{
    if (out == NULL || (payload == NULL && payload_len > 0))
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    tether_json doc;
    tether_status st = tether_json_parse(payload, payload_len, tokens, max_tokens, &doc);
    if (st == TETHER_JSON_TOO_MANY_TOKENS || st == TETHER_INVALID_ARGUMENT)
        return st;
    if (st != TETHER_OK || tether_json_type_of(&doc, 0) != TETHER_JSON_OBJECT)
        return TETHER_DPS_MALFORMED_RESPONSE;

    payload_reader r = {&doc, scratch, scratch != NULL ? scratch_cap : 0, 0, false};
    size_t at;
    bool is_response = present(&r, 0, "operationId", &at) || present(&r, 0, "status", &at) ||
                       present(&r, 0, "registrationState", &at) || present(&r, 0, "errorCode", &at);
    bool ok = read_string(&r, 0, "operationId", &out->operation_id) &&
              read_status(&r, 0, &out->status) && read_error_code(&r, 0, &out->error_code) &&
              read_string(&r, 0, "message", &out->error_message) &&
              read_string(&r, 0, "trackingId", &out->tracking_id) &&
              read_string(&r, 0, "timestampUtc", &out->timestamp_utc);
    size_t state;
    bool has_state = present(&r, 0, "registrationState", &state);
    if (ok && has_state) {
        ok = tether_json_type_of(&doc, state) == TETHER_JSON_OBJECT &&
             read_string(&r, state, "registrationId", &out->registration_id) &&
             read_status(&r, state, &out->state_status) &&
             read_string(&r, state, "assignedHub", &out->assigned_hub) &&
             read_string(&r, state, "deviceId", &out->device_id) &&
             read_string(&r, state, "substatus", &out->substatus) &&
             read_string(&r, state, "createdDateTimeUtc", &out->created_utc) &&
             read_string(&r, state, "lastUpdatedDateTimeUtc", &out->last_updated_utc) &&
             read_string(&r, state, "etag", &out->etag);
        if (ok && out->error_code == 0)
            ok = read_error_code(&r, state, &out->error_code);
        if (ok && out->error_message.ptr == NULL)
            ok = read_string(&r, state, "errorMessage", &out->error_message);
        size_t custom;
        if (ok && present(&r, state, "payload", &custom))
            ok = tether_json_get_raw(&doc, custom, &out->payload) == TETHER_OK;
    }
    if (!ok)
        return TETHER_DPS_MALFORMED_RESPONSE;
    if (!is_response)
        return TETHER_DPS_MALFORMED_RESPONSE; /* neither an operation nor an error */
    out->scratch_len = r.used;
    if (r.short_of_space) {
        tether_dps_registration needed = {.scratch_len = r.used};
        *out = needed; /* no half-filled views */
        return TETHER_BUFFER_TOO_SMALL;
    }
    return TETHER_OK;
}
