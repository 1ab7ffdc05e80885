/* DPS: attestation, registrations as operations, allocation across hubs, reprovisioning.
 * Payload field names and topics as in PROTOCOL.md. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "plugin.h"
#include "sas.h"
#include "util.h"
#include "x509util.h"

#define ERR_UNAUTHORIZED 401002
#define ERR_BAD_REQUEST  400004
#define ERR_NOT_FOUND    404205 /* operation not found */
#define ERR_NO_HUB       400209 /* no linked hub could be allocated (local choice) */
#define ERR_THROTTLED    429001
#define ERR_SERVER       500000

__attribute__((format(printf, 2, 3))) static void deny(struct tc_session *s, const char *fmt, ...)
{
    va_list ap;
    s->dps_error = ERR_UNAUTHORIZED;
    va_start(ap, fmt);
    vsnprintf(s->dps_message, sizeof s->dps_message, fmt, ap);
    va_end(ap);
    tc_log(MOSQ_LOG_NOTICE, "DPS %s: %s", s->id, s->dps_message);
}

static int sas_try(const char *token, const char *key, const char *resource)
{
    return key != NULL && tc_sas_check(token, key, resource, tc_now_ms() / 1000) == TC_SAS_OK;
}

static void attest_x509(struct tc_session *s, const char *reg_lower, X509 *cert)
{
    char cn[TC_ID_MAX + 2];
    char sha1[41];
    char sha256[65];
    if (tc_x509_cn(cert, cn, sizeof cn) != 0) {
        deny(s, "certificate has no subject CN%s%s", "", "");
        return;
    }
    if (strlen(cn) > 64) {
        deny(s, "certificate CN is longer than 64 characters%s%s", "", "");
        return;
    }
    if (strcasecmp(cn, s->id) != 0) {
        deny(s, "certificate CN '%s' does not match the registration id '%s'", cn, s->id);
        return;
    }
    if (tc_x509_check_time(cert) != 0) {
        deny(s, "certificate is expired or not yet valid%s%s", "", "");
        return;
    }
    tc_x509_thumbprints(cert, sha1, sha256);
    snprintf(s->thumbprint, sizeof s->thumbprint, "%s", sha256);
    cJSON *row = tc_reg_row(tc_g.db,
                            "SELECT attestation, thumbprint FROM enrollments"
                            " WHERE kind='individual' AND id=?",
                            "s", reg_lower);
    if (row != NULL) {
        const char *att = tc_row_str(row, "attestation");
        const char *tp = tc_row_str(row, "thumbprint");
        if (att == NULL || strcmp(att, "x509") != 0) {
            deny(s, "enrollment of '%s' does not use X.509 attestation%s", s->id, "");
        } else if (tp == NULL || (strcasecmp(tp, sha1) != 0 && strcasecmp(tp, sha256) != 0)) {
            deny(s, "certificate thumbprint does not match the enrollment of '%s'%s", s->id, "");
        } else {
            snprintf(s->enrollment_kind, sizeof s->enrollment_kind, "individual");
            snprintf(s->enrollment_id, sizeof s->enrollment_id, "%s", reg_lower);
        }
        cJSON_Delete(row);
        return;
    }
    /* Enrollment groups: the device chain must lead to the group's CA or intermediate. */
    STACK_OF(X509) *chain = tc_g.shim_chain != NULL ? tc_g.shim_chain(cert) : NULL;
    cJSON *groups = tc_reg_rows(tc_g.db,
                                "SELECT id, cert_pem FROM enrollments WHERE kind='group'"
                                " AND attestation='x509' ORDER BY id",
                                NULL);
    cJSON *g;
    char why[160] = "no enrollment for this certificate";
    cJSON_ArrayForEach(g, groups)
    {
        const char *pem = tc_row_str(g, "cert_pem");
        char err[128];
        if (pem != NULL && tc_x509_verify_to(cert, chain, pem, err, sizeof err) == 0) {
            snprintf(s->enrollment_kind, sizeof s->enrollment_kind, "group");
            snprintf(s->enrollment_id, sizeof s->enrollment_id, "%s", tc_row_str(g, "id"));
            cJSON_Delete(groups);
            return;
        }
    }
    cJSON_Delete(groups);
    deny(s, "%s (registration id '%s')", why, s->id);
}

static void attest_sas(struct tc_session *s, const char *reg_lower, const char *token)
{
    char resource[TC_HOST_MAX + TC_ID_MAX + 32];
    snprintf(resource, sizeof resource, "%s/registrations/%s", s->host, s->id);
    struct tc_sas parsed;
    if (tc_sas_parse(token, &parsed) != 0) {
        deny(s, "malformed SharedAccessSignature%s%s", "", "");
        return;
    }
    tc_sas_free(&parsed);
    enum tc_sas_result first = tc_sas_check(token, "AAAA", resource, tc_now_ms() / 1000);
    if (first == TC_SAS_WRONG_RESOURCE || first == TC_SAS_EXPIRED || first == TC_SAS_MALFORMED) {
        deny(s, "SAS token rejected: %s%s", tc_sas_result_text(first), "");
        return;
    }
    cJSON *row = tc_reg_row(tc_g.db,
                            "SELECT attestation, primary_key, secondary_key FROM enrollments"
                            " WHERE kind='individual' AND id=?",
                            "s", reg_lower);
    if (row != NULL) {
        const char *att = tc_row_str(row, "attestation");
        const char *k1 = tc_row_str(row, "primary_key");
        const char *k2 = tc_row_str(row, "secondary_key");
        if (att == NULL || strcmp(att, "symmetric-key") != 0) {
            deny(s, "enrollment of '%s' does not use symmetric-key attestation%s", s->id, "");
        } else if (sas_try(token, k1, resource) || sas_try(token, k2, resource)) {
            snprintf(s->enrollment_kind, sizeof s->enrollment_kind, "individual");
            snprintf(s->enrollment_id, sizeof s->enrollment_id, "%s", reg_lower);
            snprintf(s->device_key, sizeof s->device_key, "%s",
                     sas_try(token, k1, resource) ? k1 : k2);
        } else {
            deny(s, "SAS signature does not match the enrollment key of '%s'%s", s->id, "");
        }
        cJSON_Delete(row);
        return;
    }
    cJSON *groups = tc_reg_rows(tc_g.db,
                                "SELECT id, primary_key, secondary_key FROM enrollments"
                                " WHERE kind='group' AND attestation='symmetric-key' ORDER BY id",
                                NULL);
    cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        const char *keys[2] = {tc_row_str(g, "primary_key"), tc_row_str(g, "secondary_key")};
        for (int k = 0; k < 2; k++) {
            if (keys[k] == NULL) {
                continue;
            }
            char *derived = tc_sas_derive_key(keys[k], s->id);
            int ok = sas_try(token, derived, resource);
            if (ok) {
                snprintf(s->enrollment_kind, sizeof s->enrollment_kind, "group");
                snprintf(s->enrollment_id, sizeof s->enrollment_id, "%s", tc_row_str(g, "id"));
                snprintf(s->device_key, sizeof s->device_key, "%s", derived);
            }
            free(derived);
            if (ok) {
                cJSON_Delete(groups);
                return;
            }
        }
    }
    cJSON_Delete(groups);
    deny(s, "no enrollment for registration id '%s' accepts this SAS token%s", s->id, "");
}

void tc_dps_attest(struct tc_session *s, const char *password, X509 *cert)
{
    char reg_lower[TC_ID_MAX + 1];
    tc_lower(s->id, reg_lower, sizeof reg_lower);
    if (strcasecmp(s->host, tc_g.id_scope) != 0) {
        deny(s, "unknown id scope '%s'%s", s->host, "");
    } else if (!tc_registration_id_valid(s->id)) {
        deny(s, "invalid registration id '%s'%s", s->id, "");
    } else if (cert != NULL) {
        attest_x509(s, reg_lower, cert);
    } else if (password != NULL && password[0] != '\0') {
        attest_sas(s, reg_lower, password);
    } else {
        deny(s, "no client certificate and no SAS token%s%s", "", "");
    }
}

/* --- responses ----------------------------------------------------------------------- */

static void respond(struct tc_session *s, int status, const char *rid, int retry_after, cJSON *body)
{
    char topic[256];
    if (retry_after > 0) {
        snprintf(topic, sizeof topic, "$dps/registrations/res/%d/?$rid=%s&retry-after=%d", status,
                 rid, retry_after);
    } else {
        snprintf(topic, sizeof topic, "$dps/registrations/res/%d/?$rid=%s", status, rid);
    }
    char *text = cJSON_PrintUnformatted(body);
    if (text != NULL && (s->subs & TC_SUB_DPS_RES) != 0) {
        tc_publish(s->client_id, topic, text, strlen(text), 1);
    }
    free(text);
    cJSON_Delete(body);
}

static void respond_error(struct tc_session *s, int status, const char *rid, int retry_after,
                          int code, const char *message)
{
    char tracking[37];
    char now[40];
    tc_uuid(tracking);
    tc_iso_time(tc_now_ms(), now, sizeof now);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "errorCode", code);
    cJSON_AddStringToObject(body, "trackingId", tracking);
    cJSON_AddStringToObject(body, "message", message);
    cJSON_AddStringToObject(body, "timestampUtc", now);
    respond(s, status, rid, retry_after, body);
}

/* Faults on purpose (tether cloud fault set): throttling and server errors. 1 if answered. */
static int apply_faults(struct tc_session *s, const char *rid)
{
    if (tc_fault_fires(tc_g.faults.dps_throttle_rate)) {
        respond_error(
            s, 429, rid,
            tc_g.faults.dps_throttle_retry_after > 0 ? tc_g.faults.dps_throttle_retry_after : 1,
            ERR_THROTTLED, "Operations are being throttled (fault set by tether cloud).");
        return 1;
    }
    if (tc_fault_fires(tc_g.faults.dps_error_rate)) {
        int status = tc_g.faults.dps_error_status >= 500 ? tc_g.faults.dps_error_status : 500;
        respond_error(s, status, rid, 0, status * 1000,
                      "Internal server error (fault set by tether cloud).");
        return 1;
    }
    return 0;
}

/* --- allocation ---------------------------------------------------------------------- */

/* The hubs an enrollment may be assigned to (its list, or every hub), as host names. */
static cJSON *linked_hubs(const cJSON *enrollment)
{
    const char *list = tc_row_str(enrollment, "hubs");
    cJSON *hubs = tc_reg_rows(tc_g.db, "SELECT name, host FROM hubs ORDER BY name", NULL);
    cJSON *cands = cJSON_CreateArray();
    cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        const char *name = tc_row_str(h, "name");
        const char *host = tc_row_str(h, "host");
        int take = list == NULL || list[0] == '\0';
        if (!take) {
            char *copy = strdup(list);
            char *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                if (strcasecmp(tok, name) == 0 || strcasecmp(tok, host) == 0) {
                    take = 1;
                }
            }
            free(copy);
        }
        if (take) {
            cJSON_AddItemToArray(cands, cJSON_CreateString(host));
        }
    }
    cJSON_Delete(hubs);
    return cands;
}

static char *pick_hub(const cJSON *enrollment, const char *reg_lower)
{
    const char *policy = tc_row_str(enrollment, "allocation");
    cJSON *cands = linked_hubs(enrollment);
    int n = cJSON_GetArraySize(cands);
    char *out = NULL;
    if (n > 0) {
        int idx = 0;
        if (policy == NULL || strcmp(policy, "static") != 0) {
            /* hashed: evenly weighted by a hash of the registration id */
            unsigned char md[32];
            unsigned mdlen = 0;
            EVP_Digest(reg_lower, strlen(reg_lower), md, &mdlen, EVP_sha256(), NULL);
            unsigned long v = ((unsigned long)md[0] << 24) | ((unsigned long)md[1] << 16) |
                              ((unsigned long)md[2] << 8) | md[3];
            idx = (int)(v % (unsigned long)n);
        }
        out = strdup(cJSON_GetArrayItem(cands, idx)->valuestring);
    }
    cJSON_Delete(cands);
    return out;
}

/* Custom allocation, the way a local tester uses it. On Azure an enrollment with the
 * custom policy makes DPS POST an AllocationRequest to a webhook (an Azure Function) and
 * assign the hub named in its AllocationResponse, handing the response's payload to the
 * device (Microsoft Learn, "Understand custom allocation policies", concepts-custom-allocation).
 * Here the webhook is a local command (`--custom-command CMD`, run by /bin/sh): it reads
 * the AllocationRequest JSON on stdin and writes the AllocationResponse JSON on stdout.
 * Bounds: it runs inside the broker, which waits for it; at most TC_CUSTOM_TIMEOUT_MS, then
 * it is killed, and at most 64 KB of output. Returns the hub (malloc'ed) and sets
 * *payload_out (the response's payload, or NULL), or NULL with why set. */
#define TC_CUSTOM_TIMEOUT_MS 5000
#define TC_CUSTOM_OUT_MAX    (64 * 1024)

static char *run_command(const char *cmd, const char *input, char *why, size_t why_size)
{
    int in[2];
    int out[2];
    if (pipe(in) != 0) {
        snprintf(why, why_size, "cannot make a pipe");
        return NULL;
    }
    if (pipe(out) != 0) {
        close(in[0]);
        close(in[1]);
        snprintf(why, why_size, "cannot make a pipe");
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        /* none of the broker's sockets or files may outlive it in the command */
        for (int fd = 3; fd < 1024; fd++) {
            close(fd);
        }
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        close(in[1]);
        close(out[0]);
        snprintf(why, why_size, "cannot start the command");
        return NULL;
    }
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    char *buf = malloc(TC_CUSTOM_OUT_MAX + 1);
    size_t got = 0;
    size_t sent = 0;
    size_t in_len = strlen(input);
    int64_t deadline = tc_now_ms() + TC_CUSTOM_TIMEOUT_MS;
    int wfd = in[1];
    int done = 0;
    while (!done && buf != NULL) {
        int64_t left = deadline - tc_now_ms();
        if (left <= 0) {
            snprintf(why, why_size, "the command took longer than %d ms", TC_CUSTOM_TIMEOUT_MS);
            break;
        }
        struct pollfd p[2] = {{out[0], POLLIN, 0}, {wfd, POLLOUT, 0}};
        if (poll(p, wfd >= 0 ? 2 : 1, (int)left) < 0) {
            continue;
        }
        if (wfd >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t w = write(wfd, input + sent, in_len - sent);
            if (w > 0) {
                sent += (size_t)w;
            }
            if (w < 0 || sent == in_len) {
                close(wfd);
                wfd = -1;
            }
        }
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
            ssize_t r = read(out[0], buf + got, TC_CUSTOM_OUT_MAX - got);
            if (r > 0) {
                got += (size_t)r;
                if (got == TC_CUSTOM_OUT_MAX) {
                    snprintf(why, why_size, "the command wrote more than 64 KB");
                    break;
                }
            } else {
                done = 1;
            }
        }
    }
    if (wfd >= 0) {
        close(wfd);
    }
    close(out[0]);
    int status = 0;
    /* its end is bounded too: a command that closed its output may still be running */
    while (done && waitpid(pid, &status, WNOHANG) == 0) {
        if (tc_now_ms() >= deadline) {
            snprintf(why, why_size, "the command took longer than %d ms", TC_CUSTOM_TIMEOUT_MS);
            done = 0;
        } else {
            (void)poll(NULL, 0, 5);
        }
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    if (!done || buf == NULL) {
        free(buf);
        return NULL;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_size, "the command failed (exit status %d)",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        free(buf);
        return NULL;
    }
    buf[got] = '\0';
    return buf;
}

static char *custom_allocate(struct tc_session *s, const cJSON *enr, const cJSON *prev,
                             const cJSON *device_payload, cJSON **payload_out, char *why,
                             size_t why_size)
{
    *payload_out = NULL;
    cJSON *req = cJSON_CreateObject();
    int group = strcmp(s->enrollment_kind, "group") == 0;
    cJSON *e = cJSON_AddObjectToObject(req, group ? "enrollmentGroup" : "individualEnrollment");
    cJSON_AddStringToObject(e, group ? "enrollmentGroupId" : "registrationId", s->enrollment_id);
    cJSON_AddStringToObject(e, "allocationPolicy", "custom");
    cJSON *ctx = cJSON_AddObjectToObject(req, "deviceRuntimeContext");
    cJSON_AddStringToObject(ctx, "registrationId", s->id);
    if (tc_row_str(prev, "hub") != NULL) {
        cJSON_AddStringToObject(ctx, "currentIotHubHostName", tc_row_str(prev, "hub"));
        cJSON_AddStringToObject(ctx, "currentDeviceId", tc_row_str(prev, "device_id"));
    }
    const char *att = tc_row_str(enr, "attestation");
    cJSON_AddObjectToObject(ctx, att != NULL && strcmp(att, "x509") == 0 ? "x509" : "symmetricKey");
    if (device_payload != NULL) {
        cJSON_AddItemToObject(ctx, "payload", cJSON_Duplicate(device_payload, 1));
    }
    cJSON *hubs = linked_hubs(enr);
    cJSON_AddItemToObject(req, "linkedHubs", hubs);
    char *input = cJSON_PrintUnformatted(req);
    char *output =
        input != NULL ? run_command(tc_row_str(enr, "custom_command"), input, why, why_size) : NULL;
    free(input);
    char *hub = NULL;
    cJSON *res = output != NULL ? cJSON_Parse(output) : NULL;
    free(output);
    cJSON *host = cJSON_GetObjectItemCaseSensitive(res, "iotHubHostName");
    if (output != NULL && !cJSON_IsObject(res)) {
        snprintf(why, why_size, "the command's output is not a JSON object");
    } else if (res != NULL && !cJSON_IsString(host)) {
        snprintf(why, why_size, "the command's output has no iotHubHostName");
    } else if (res != NULL) {
        cJSON *h;
        cJSON_ArrayForEach(h, hubs)
        {
            if (strcasecmp(h->valuestring, host->valuestring) == 0) {
                hub = strdup(h->valuestring);
            }
        }
        if (hub == NULL) {
            snprintf(why, why_size, "iotHubHostName '%.60s' is not a linked hub",
                     host->valuestring);
        } else {
            cJSON *p = cJSON_DetachItemFromObjectCaseSensitive(res, "payload");
            if (p != NULL && !cJSON_IsNull(p)) {
                *payload_out = p;
            } else {
                cJSON_Delete(p);
            }
        }
    }
    cJSON_Delete(res);
    cJSON_Delete(req);
    if (hub == NULL) {
        tc_log(MOSQ_LOG_NOTICE, "DPS %s: custom allocation failed: %s", s->id, why);
    }
    return hub;
}

static cJSON *initial_desired(const cJSON *enrollment, char **tags_out)
{
    const char *twin_text = tc_row_str(enrollment, "initial_twin");
    cJSON *twin = twin_text != NULL ? cJSON_Parse(twin_text) : NULL;
    cJSON *desired = NULL;
    *tags_out = NULL;
    if (twin != NULL) {
        cJSON *props = cJSON_GetObjectItemCaseSensitive(twin, "properties");
        cJSON *d = cJSON_GetObjectItemCaseSensitive(props, "desired");
        if (cJSON_IsObject(d)) {
            desired = cJSON_Duplicate(d, 1);
        }
        cJSON *tags = cJSON_GetObjectItemCaseSensitive(twin, "tags");
        if (cJSON_IsObject(tags)) {
            *tags_out = cJSON_PrintUnformatted(tags);
        }
        cJSON_Delete(twin);
    }
    if (desired == NULL) {
        desired = cJSON_CreateObject();
    }
    cJSON_DeleteItemFromObjectCaseSensitive(desired, "$version");
    return desired;
}

static void etag_new(char *out, size_t size)
{
    char uuid[37];
    char quoted[48];
    tc_uuid(uuid);
    snprintf(quoted, sizeof quoted, "\"%s\"", uuid);
    char *b64 = tc_base64_encode((const unsigned char *)quoted, strlen(quoted));
    snprintf(out, size, "%s", b64 != NULL ? b64 : uuid);
    free(b64);
}

/* Decide the outcome of a registration now; it is revealed when the operation is ready.
 * Returns the registrationState object and sets *status ("assigned", "failed", "disabled"). */
static cJSON *allocate(struct tc_session *s, const char *reg_lower, const cJSON *device_payload,
                       const char **status)
{
    cJSON *custom = NULL; /* the payload returned to the device: custom allocation only */
    char why[200] = "No linked IoT hub could be allocated for this enrollment.";
    int64_t now = tc_now_ms();
    char now_text[40];
    char etag[80];
    tc_iso_time(now, now_text, sizeof now_text);
    etag_new(etag, sizeof etag);
    cJSON *state = cJSON_CreateObject();
    cJSON_AddStringToObject(state, "registrationId", s->id);
    cJSON *enr = tc_reg_row(tc_g.db, "SELECT * FROM enrollments WHERE kind=? AND id=?", "ss",
                            s->enrollment_kind, s->enrollment_id);
    cJSON *prev =
        tc_reg_row(tc_g.db, "SELECT * FROM registrations WHERE registration_id=?", "s", reg_lower);
    int64_t created = tc_row_int(prev, "created_ms", now);
    char created_text[40];
    tc_iso_time(created, created_text, sizeof created_text);
    cJSON_AddStringToObject(state, "createdDateTimeUtc", created_text);

    const char *st = tc_row_str(enr, "status");
    if (enr == NULL || (st != NULL && strcmp(st, "disabled") == 0)) {
        *status = "disabled";
        cJSON_AddStringToObject(state, "status", "disabled");
        cJSON_AddStringToObject(state, "lastUpdatedDateTimeUtc", now_text);
        cJSON_AddStringToObject(state, "etag", etag);
        tc_reg_exec(tc_g.db,
                    "INSERT INTO registrations(registration_id, enrollment_kind, enrollment_id,"
                    " status, created_ms, updated_ms, etag) VALUES(?,?,?,'disabled',?,?,?)"
                    " ON CONFLICT(registration_id) DO UPDATE SET status='disabled',"
                    " updated_ms=excluded.updated_ms, etag=excluded.etag",
                    "sssiis", reg_lower, s->enrollment_kind, s->enrollment_id, created, now, etag);
        goto done;
    }
    const char *prev_hub = tc_row_str(prev, "hub");
    const char *prev_status = tc_row_str(prev, "status");
    const char *policy = tc_row_str(enr, "reprovision");
    int assigned_before =
        prev_hub != NULL && prev_status != NULL && strcmp(prev_status, "assigned") == 0;
    char *hub = NULL;
    const char *substatus = "initialAssignment";
    int reset_twin = 1;
    if (assigned_before && policy != NULL && strcmp(policy, "never") == 0) {
        hub = strdup(prev_hub);
        substatus = tc_row_str(prev, "substatus") != NULL ? tc_row_str(prev, "substatus")
                                                          : "initialAssignment";
        reset_twin = 0;
    } else {
        const char *alloc = tc_row_str(enr, "allocation");
        if (alloc != NULL && strcmp(alloc, "custom") == 0) {
            char reason[160] = "";
            hub = custom_allocate(s, enr, prev, device_payload, &custom, reason, sizeof reason);
            if (hub == NULL) {
                snprintf(why, sizeof why, "Custom allocation failed: %s.", reason);
            }
        } else {
            hub = pick_hub(enr, reg_lower);
        }
        if (hub != NULL && assigned_before) {
            int moved = strcasecmp(hub, prev_hub) != 0;
            if (policy != NULL && strcmp(policy, "reset") == 0) {
                substatus = moved ? "deviceDataReset" : "reprovisionedToInitialAssignment";
                reset_twin = 1;
            } else {
                substatus = moved ? "deviceDataMigrated" : "reprovisionedToInitialAssignment";
                reset_twin = 0;
            }
        }
    }
    if (hub == NULL) {
        *status = "failed";
        cJSON_AddStringToObject(state, "status", "failed");
        cJSON_AddNumberToObject(state, "errorCode", ERR_NO_HUB);
        cJSON_AddStringToObject(state, "errorMessage", why);
        cJSON_AddStringToObject(state, "lastUpdatedDateTimeUtc", now_text);
        cJSON_AddStringToObject(state, "etag", etag);
        tc_reg_exec(tc_g.db,
                    "INSERT INTO registrations(registration_id, enrollment_kind, enrollment_id,"
                    " status, created_ms, updated_ms, etag, error_code) VALUES(?,?,?,'failed',?,?,"
                    "?,?) ON CONFLICT(registration_id) DO UPDATE SET status='failed',"
                    " updated_ms=excluded.updated_ms, etag=excluded.etag, error_code=?",
                    "sssiisii", reg_lower, s->enrollment_kind, s->enrollment_id, created, now, etag,
                    (int64_t)ERR_NO_HUB, (int64_t)ERR_NO_HUB);
        goto done;
    }
    const char *dev_from_enr =
        strcmp(s->enrollment_kind, "individual") == 0 ? tc_row_str(enr, "device_id") : NULL;
    const char *device_id = dev_from_enr != NULL && dev_from_enr[0] != '\0' ? dev_from_enr : s->id;
    const char *att = tc_row_str(enr, "attestation");
    int x509 = att != NULL && strcmp(att, "x509") == 0;
    const char *ca_pem =
        x509 && strcmp(s->enrollment_kind, "group") == 0 ? tc_row_str(enr, "cert_pem") : NULL;
    /* The device identity gets both keys: the enrollment's own (individual) or the ones
     * derived from the group keys. */
    char *k1 = NULL;
    char *k2 = NULL;
    if (!x509) {
        const char *g1 = tc_row_str(enr, "primary_key");
        const char *g2 = tc_row_str(enr, "secondary_key");
        if (strcmp(s->enrollment_kind, "group") == 0) {
            k1 = g1 != NULL ? tc_sas_derive_key(g1, s->id) : NULL;
            k2 = g2 != NULL ? tc_sas_derive_key(g2, s->id) : NULL;
        } else {
            k1 = g1 != NULL ? strdup(g1) : NULL;
            k2 = g2 != NULL ? strdup(g2) : NULL;
        }
    }
    char *tags = NULL;
    cJSON *desired = initial_desired(enr, &tags);
    char *desired_text = cJSON_PrintUnformatted(desired);
    cJSON_Delete(desired);
    int exists = tc_reg_int(tc_g.db, 0, "SELECT count(*) FROM devices WHERE device_id=?", "s",
                            device_id) > 0;
    if (!exists) {
        tc_reg_exec(tc_g.db,
                    "INSERT INTO devices(device_id, hub, registration_id, auth, thumbprint, ca_pem,"
                    " primary_key, secondary_key, tags, desired, desired_version, reported,"
                    " reported_version, created_ms) VALUES(?,?,?,?,?,?,?,?,?,?,1,'{}',1,?)",
                    "ssssssssssi", device_id, hub, reg_lower, x509 ? "x509" : "sas",
                    x509 ? s->thumbprint : NULL, ca_pem, k1, k2, tags, desired_text, now);
    } else {
        tc_reg_exec(tc_g.db,
                    "UPDATE devices SET hub=?, registration_id=?, auth=?, thumbprint=?, ca_pem=?,"
                    " primary_key=?, secondary_key=? WHERE device_id=?",
                    "ssssssss", hub, reg_lower, x509 ? "x509" : "sas", x509 ? s->thumbprint : NULL,
                    ca_pem, k1, k2, device_id);
        if (reset_twin) {
            tc_reg_exec(tc_g.db,
                        "UPDATE devices SET tags=?, desired=?, desired_version=desired_version+1,"
                        " reported='{}', reported_version=reported_version+1 WHERE device_id=?",
                        "sss", tags, desired_text, device_id);
        }
    }
    free(tags);
    free(desired_text);
    free(k1);
    free(k2);
    char *payload_text = custom != NULL ? cJSON_PrintUnformatted(custom) : NULL;
    tc_reg_exec(tc_g.db,
                "INSERT INTO registrations(registration_id, enrollment_kind, enrollment_id,"
                " device_id, hub, status, substatus, created_ms, updated_ms, etag, payload)"
                " VALUES(?,?,?,?,?,'assigned',?,?,?,?,?) ON CONFLICT(registration_id) DO UPDATE"
                " SET enrollment_kind=excluded.enrollment_kind,"
                " enrollment_id=excluded.enrollment_id, device_id=excluded.device_id,"
                " hub=excluded.hub, status='assigned', substatus=excluded.substatus,"
                " updated_ms=excluded.updated_ms, etag=excluded.etag, payload=excluded.payload,"
                " error_code=NULL",
                "ssssssiiss", reg_lower, s->enrollment_kind, s->enrollment_id, device_id, hub,
                substatus, created, now, etag, payload_text);
    free(payload_text);
    *status = "assigned";
    cJSON_AddStringToObject(state, "assignedHub", hub);
    cJSON_AddStringToObject(state, "deviceId", device_id);
    cJSON_AddStringToObject(state, "status", "assigned");
    cJSON_AddStringToObject(state, "substatus", substatus);
    cJSON_AddStringToObject(state, "lastUpdatedDateTimeUtc", now_text);
    cJSON_AddStringToObject(state, "etag", etag);
    if (custom != NULL) {
        cJSON_AddItemToObject(state, "payload", custom);
        custom = NULL;
    }
    free(hub);
done:
    cJSON_Delete(custom);
    cJSON_Delete(enr);
    cJSON_Delete(prev);
    return state;
}

static void on_register(struct tc_session *s, const struct tc_topic *t, const void *payload,
                        uint32_t len)
{
    char reg_lower[TC_ID_MAX + 1];
    if (apply_faults(s, t->rid)) {
        return;
    }
    if (s->dps_error != 0) {
        respond_error(s, 401, t->rid, 0, s->dps_error, s->dps_message);
        return;
    }
    /* An empty body means {"registrationId":"<the id in the username>"}: the Embedded C
     * SDK's provisioning client publishes exactly that, and DPS accepts it. Any other body
     * must be one valid JSON document (UTF-8), as DPS checks it. */
    char why[96];
    cJSON *req = NULL;
    if (len == 0) {
        req = cJSON_CreateObject();
        cJSON_AddStringToObject(req, "registrationId", s->id);
    } else {
        req = len < 65536 ? tc_json_parse_device(payload, len, why, sizeof why) : NULL;
    }
    if (req == NULL) {
        respond_error(s, 400, t->rid, 0, ERR_BAD_REQUEST,
                      len < 65536 ? why : "The body exceeds 64 KB.");
        return;
    }
    cJSON *rid_item = cJSON_GetObjectItemCaseSensitive(req, "registrationId");
    if (!cJSON_IsObject(req) || !cJSON_IsString(rid_item) ||
        strcasecmp(rid_item->valuestring, s->id) != 0) {
        cJSON_Delete(req);
        respond_error(s, 400, t->rid, 0, ERR_BAD_REQUEST,
                      "The request body must be {\"registrationId\":\"<the id in the username>\"}"
                      " with an optional \"payload\".");
        return;
    }
    /* the device's payload goes to custom allocation only; it is never echoed */
    cJSON *custom = cJSON_GetObjectItemCaseSensitive(req, "payload");
    if (custom != NULL && cJSON_IsNull(custom)) {
        custom = NULL;
    }
    tc_lower(s->id, reg_lower, sizeof reg_lower);
    /* One transaction for the registration's reads and writes: one lock and one WAL commit
     * instead of one per statement. */
    int in_tx = sqlite3_exec(tc_g.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    const char *status = "assigning";
    cJSON *state = allocate(s, reg_lower, custom, &status);
    cJSON_Delete(req);

    char hex[17];
    char uuid[37];
    char op_id[80];
    tc_random_hex(hex, 8, 0);
    tc_uuid(uuid);
    snprintf(op_id, sizeof op_id, "4.%s.%s", hex, uuid);
    cJSON *result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "operationId", op_id);
    cJSON_AddStringToObject(result, "status", status);
    cJSON_AddItemToObject(result, "registrationState", state);
    char *result_text = cJSON_PrintUnformatted(result);
    cJSON_Delete(result);
    int delay = tc_g.retry_after_s + tc_g.faults.dps_slow_seconds;
    int64_t now = tc_now_ms();
    tc_reg_exec(tc_g.db,
                "INSERT INTO operations(id, registration_id, ready_ms, status, result, created_ms)"
                " VALUES(?,?,?,?,?,?)",
                "ssissi", op_id, reg_lower, now + (int64_t)delay * 1000, status, result_text, now);
    /* Completed operations older than an hour are forgotten. */
    tc_reg_exec(tc_g.db, "DELETE FROM operations WHERE created_ms < ?", "i", now - 3600 * 1000);
    if (in_tx && sqlite3_exec(tc_g.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(tc_g.db, "ROLLBACK", NULL, NULL, NULL);
    }
    free(result_text);

    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "operationId", op_id);
    cJSON_AddStringToObject(body, "status", "assigning");
    /* retry-after is the configured value: a slow-assignment fault makes the device poll
     * several times, as a slow real DPS does. No retry-after when assignment is immediate. */
    respond(s, 202, t->rid, delay > 0 ? (tc_g.retry_after_s > 0 ? tc_g.retry_after_s : 1) : 0,
            body);
}

static void on_poll(struct tc_session *s, const struct tc_topic *t)
{
    char reg_lower[TC_ID_MAX + 1];
    if (apply_faults(s, t->rid)) {
        return;
    }
    if (s->dps_error != 0) {
        respond_error(s, 401, t->rid, 0, s->dps_error, s->dps_message);
        return;
    }
    tc_lower(s->id, reg_lower, sizeof reg_lower);
    cJSON *op = tc_reg_row(tc_g.db,
                           "SELECT ready_ms, result FROM operations WHERE id=? AND"
                           " registration_id=?",
                           "ss", t->operation_id, reg_lower);
    if (op == NULL) {
        respond_error(s, 404, t->rid, 0, ERR_NOT_FOUND, "Operation not found.");
        return;
    }
    int64_t ready = tc_row_int(op, "ready_ms", 0);
    int64_t now = tc_now_ms();
    if (now < ready) {
        int64_t left = (ready - now + 999) / 1000;
        cJSON *body = cJSON_CreateObject();
        cJSON_AddStringToObject(body, "operationId", t->operation_id);
        cJSON_AddStringToObject(body, "status", "assigning");
        cJSON *st = cJSON_AddObjectToObject(body, "registrationState");
        cJSON_AddStringToObject(st, "registrationId", s->id);
        cJSON_AddStringToObject(st, "status", "assigning");
        int wait =
            tc_g.retry_after_s > 0 && tc_g.retry_after_s < left ? tc_g.retry_after_s : (int)left;
        respond(s, 202, t->rid, wait > 0 ? wait : 1, body);
    } else {
        const char *text = tc_row_str(op, "result");
        cJSON *body = text != NULL ? cJSON_Parse(text) : NULL;
        if (body == NULL) {
            respond_error(s, 500, t->rid, 0, ERR_SERVER, "Operation result lost.");
        } else {
            respond(s, 200, t->rid, 0, body);
        }
    }
    cJSON_Delete(op);
}

int tc_dps_on_message(struct tc_session *s, const struct tc_topic *t, const void *payload,
                      uint32_t len)
{
    switch (t->kind) {
    case TC_TOPIC_DPS_REGISTER:
        on_register(s, t, payload, len);
        break;
    case TC_TOPIC_DPS_POLL:
        on_poll(s, t);
        break;
    default:
        tc_log(MOSQ_LOG_NOTICE, "DPS %s: dropped a publish to an unknown topic", s->id);
        break;
    }
    return MOSQ_ERR_ACL_DENIED; /* answered here; never routed */
}
