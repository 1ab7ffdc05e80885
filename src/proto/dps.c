/*
 * DPS over MQTT (include/tether/dps.h): user name, topics and register payload written into
 * caller buffers, and the response topic and payload read into views. Pure.
 */
#include "tether/dps.h"

#include <stddef.h>
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

typedef struct payload_arg {
    const char *registration_id;
    const char *custom_json; /* NULL: none */
    size_t custom_len;
} payload_arg;

/* The registration id needs no JSON escaping (letters, digits and - . _ : only), and the
 * custom payload was validated: plain text makes the same bytes as a JSON writer would. */
static void build_payload(tether_text *t, const void *arg)
{
    const payload_arg *a = arg;
    tether_text_cstr(t, "{\"registrationId\":\"");
    tether_text_cstr(t, a->registration_id);
    tether_text_cstr(t, "\"");
    if (a->custom_json != NULL) {
        tether_text_cstr(t, ",\"payload\":");
        tether_text_put(t, a->custom_json, a->custom_len);
    }
    tether_text_cstr(t, "}");
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
    payload_arg a = {registration_id, custom_json, custom_len};
    return tether_text_run(build_payload, &a, buf, cap, out_len);
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
    uint64_t retry_after = 0;
    /* Anything in the query besides $rid and retry-after is for another client version. */
    if (!tether_view_starts_with(t, RESPONSE_PREFIX) ||
        !tether_response_status(t, p, &out->status) ||
        !tether_response_query(tether_view_span(topic, p + 5, topic_len), &out->rid, "retry-after",
                               UINT32_MAX, &out->has_retry_after, &retry_after))
        return TETHER_DPS_MALFORMED_RESPONSE;
    out->retry_after_s = (uint32_t)retry_after;
    return TETHER_OK;
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

/* The string at index at, unescaped into the scratch buffer (or only counted once short). */
static bool read_string(payload_reader *r, size_t at, tether_view *out)
{
    size_t need = 0;
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

/* A member of the response and where it goes in a tether_dps_registration. */
typedef enum member_kind {
    MEMBER_STRING,
    MEMBER_STATUS,
    MEMBER_ERROR_CODE,
    MEMBER_RAW
} member_kind;

typedef struct member {
    const char *name;
    uint8_t kind;     /* member_kind */
    uint8_t in_state; /* in registrationState rather than at the top */
    uint16_t offset;  /* in tether_dps_registration */
} member;

#define MEMBER(name, kind, in_state, field)                                                        \
    {                                                                                              \
        name, kind, in_state, (uint16_t)offsetof(tether_dps_registration, field)                   \
    }

/* In the order they are read, which is the order strings take their place in the scratch
 * buffer. A member whose place is already filled is not read again: the error code and
 * message of the registration state only stand in for absent top-level ones. */
static const member members[] = {
    MEMBER("status", MEMBER_STATUS, 0, status),
    MEMBER("errorCode", MEMBER_ERROR_CODE, 0, error_code),
    MEMBER("operationId", MEMBER_STRING, 0, operation_id),
    MEMBER("message", MEMBER_STRING, 0, error_message),
    MEMBER("trackingId", MEMBER_STRING, 0, tracking_id),
    MEMBER("timestampUtc", MEMBER_STRING, 0, timestamp_utc),
    MEMBER("status", MEMBER_STATUS, 1, state_status),
    MEMBER("registrationId", MEMBER_STRING, 1, registration_id),
    MEMBER("assignedHub", MEMBER_STRING, 1, assigned_hub),
    MEMBER("deviceId", MEMBER_STRING, 1, device_id),
    MEMBER("substatus", MEMBER_STRING, 1, substatus),
    MEMBER("createdDateTimeUtc", MEMBER_STRING, 1, created_utc),
    MEMBER("lastUpdatedDateTimeUtc", MEMBER_STRING, 1, last_updated_utc),
    MEMBER("etag", MEMBER_STRING, 1, etag),
    MEMBER("errorCode", MEMBER_ERROR_CODE, 1, error_code),
    MEMBER("errorMessage", MEMBER_STRING, 1, error_message),
    MEMBER("payload", MEMBER_RAW, 1, payload),
};

/* Reads one member into dst; true when absent or null, or read; false when malformed. */
static bool read_member(payload_reader *r, size_t object, const member *m, void *dst)
{
    size_t at;
    if (!present(r, object, m->name, &at))
        return true;
    switch (m->kind) {
    case MEMBER_STRING:
        return read_string(r, at, dst);
    case MEMBER_STATUS:
        for (size_t s = TETHER_DPS_UNASSIGNED; s <= TETHER_DPS_DISABLED; s++) {
            if (tether_json_string_equals(r->doc, at, status_names[s], strlen(status_names[s]))) {
                *(tether_dps_status *)dst = (tether_dps_status)s;
                return true;
            }
        }
        return false; /* not a string, or not a status DPS has */
    case MEMBER_ERROR_CODE: {
        int64_t v;
        if (tether_json_get_int(r->doc, at, &v) != TETHER_OK || v < 0 || v > (int64_t)UINT32_MAX)
            return false;
        *(uint32_t *)dst = (uint32_t)v;
        return true;
    }
    default:
        return tether_json_get_raw(r->doc, at, dst) == TETHER_OK;
    }
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
    size_t at, state = 0;
    bool has_state = present(&r, 0, "registrationState", &state);
    /* Neither an operation nor an error: not a response. */
    if (!has_state && !present(&r, 0, "operationId", &at) && !present(&r, 0, "status", &at) &&
        !present(&r, 0, "errorCode", &at))
        return TETHER_DPS_MALFORMED_RESPONSE;
    if (has_state && tether_json_type_of(&doc, state) != TETHER_JSON_OBJECT)
        return TETHER_DPS_MALFORMED_RESPONSE;
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        const member *m = &members[i];
        if (m->in_state && !has_state)
            break; /* the registration state's members come last */
        void *dst = (char *)out + m->offset;
        /* Already filled (by a top-level error code or message): not read again. */
        if (m->kind == MEMBER_ERROR_CODE ? *(const uint32_t *)dst != 0
            : m->kind != MEMBER_STATUS   ? ((const tether_view *)dst)->ptr != NULL
                                         : false)
            continue;
        if (!read_member(&r, m->in_state ? state : 0, m, dst))
            return TETHER_DPS_MALFORMED_RESPONSE;
    }
    out->scratch_len = r.used;
    if (r.short_of_space) {
        tether_dps_registration needed = {.scratch_len = r.used};
        *out = needed; /* no half-filled views */
        return TETHER_BUFFER_TOO_SMALL;
    }
    return TETHER_OK;
}
