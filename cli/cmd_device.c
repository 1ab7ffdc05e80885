/* `tether register`, `tether run`, `tether send`: the device flow from the command line. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "tether/dps_session.h"
#include "tether/hub_session.h"
#include "tether/port.h"
#include "tether/sntp.h"
#include "tether/sas.h"
#include "tether/store.h"

const cli_option cli_provisioning_options[] = {
    {"endpoint", "HOST[:PORT]", "DPS endpoint (default global.azure-devices-provisioning.net)"},
    {"id-scope", "SCOPE", "the DPS id scope, e.g. 0ne00AB12CD"},
    {"registration-id", "ID", "registration id (X.509: the certificate's CN)"},
    {"symmetric-key", "KEY", "the device's own key (base64): symmetric-key attestation"},
    {"group-key", "KEY", "an enrollment group's key: the device key is derived from it"},
    {"payload", "JSON", "custom data sent with the registration"},
    {"state", "FILE",
     "the stored provisioning result (default .tether/state/ID.state); it gives the ids when "
     "--id-scope or --registration-id is not given"},
    {"force", NULL, "register with DPS even when a valid result is stored"},
    {"timeout", "S", "give up provisioning after S seconds (default 120)"},
    {NULL, NULL, NULL},
};

static const cli_option run_options[] = {
    {"message", "TEXT", "telemetry payload; {n} is replaced by the message number"},
    {"interval", "MS", "pause between messages (default 1000)"},
    {"count", "N", "messages to send (run: default 0 = none; send: 1)"},
    {"qos", "0|1", "telemetry quality of service (default 1)"},
    {"property", "NAME=VALUE", "a message property, e.g. $.ct=application/json (repeatable)"},
    {"method", "NAME=JSON",
     "answer direct method NAME with JSON (repeatable; ping and echo "
     "are built in)"},
    {"report", "JSON", "reported properties to send on connect"},
    {"sas-ttl", "S", "lifetime of hub SAS tokens (default 3600); renewed at 80 % by reconnecting"},
    {"duration", "S",
     "stop after S seconds (default: when the messages are acknowledged, or "
     "never when --count is 0)"},
    {NULL, NULL, NULL},
};

static const cli_option *const register_sets[] = {cli_provisioning_options, cli_tls_options, NULL};
static const cli_option *const run_sets[] = {cli_provisioning_options, run_options,
                                             cli_keep_alive_options, cli_tls_options, NULL};

static const cli_command register_cmd = {
    "tether register --id-scope SCOPE --registration-id ID (--cert F --key F | "
    "--symmetric-key K | --group-key K) --cafile F [options]",
    "Registers the device with DPS and stores where it was sent. When a valid result for these\n"
    "credentials is stored already, DPS is not called (--force to register anyway).\n"
    "--connect-to HOST:PORT dials that address for DPS and later for the hub, while SNI, the\n"
    "user name and certificate checks keep the real names.",
    register_sets, 0};

static const cli_command run_cmd = {
    "tether run [provisioning options] [--message TEXT --interval MS --count N] [options]",
    "Connects to the hub with the stored result (registering first when there is none), sends\n"
    "telemetry, prints cloud-to-device messages, twin changes and method calls, answers\n"
    "methods and reports twin properties. Reprovisions once when the hub refuses the device\n"
    "or stays unreachable.",
    run_sets, 0};

static const cli_command send_cmd = {
    "tether send --message TEXT [provisioning options] [options]",
    "Sends one telemetry message (QoS 1, acknowledged) with the stored result and exits.", run_sets,
    0};

/* IoT Hub's keep-alive limit, commonly quoted (PROTOCOL.md): it ends a connection silent for
 * 1.5 times the keep-alive, at most about 29.5 minutes. */
#define HUB_KEEP_ALIVE_MAX_S 1177

typedef struct device {
    const cli_args *args;
    cli_tls conn;
    bool json;
    char endpoint_host[256];
    uint16_t endpoint_port;
    char dial_host[256];
    uint16_t dial_port;
    char derived_key[64];
    const char *sas_key;
    char state_path[512];
    tether_provisioning_record record;
    bool registered_now;
    uint64_t elapsed_ms; /* of the registration */
    /* progress of a registration, printed when the next step is known */
    tether_dps_progress last_response;
    bool have_response;
} device;

static tether_dps_session dps;
static tether_hub_session hub;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int usage(const char *what)
{
    fprintf(stderr, "tether: %s (see --help)\n", what);
    return CLI_EXIT_USAGE;
}

static void print_record_json(const device *d)
{
    printf("\"assigned_hub\":");
    cli_json_string(stdout, d->record.assigned_hub, strlen(d->record.assigned_hub));
    printf(",\"device_id\":");
    cli_json_string(stdout, d->record.device_id, strlen(d->record.device_id));
    printf(",\"state_file\":");
    cli_json_string(stdout, d->state_path, strlen(d->state_path));
}

/* --- provisioning ------------------------------------------------------------------- */

void cli_dps_details(FILE *f, bool json, const void *result)
{
    const tether_dps_result *r = result;
    const char *op = tether_dps_status_name(r->operation); /* "" when none */
    if (json) {
        fprintf(f,
                "\"http_status\":%u,\"error_code\":%u,\"error_message\":", (unsigned)r->http_status,
                (unsigned)r->error_code);
        cli_untrusted_bytes(f, (const uint8_t *)r->error_message, strlen(r->error_message), true);
        fprintf(f, ",\"operation_status\":\"%s\",\"response\":", op);
        cli_untrusted_bytes(f, r->response, r->response_len, true);
        fprintf(f, ",\"response_bytes\":%u,\"response_truncated\":%s", (unsigned)r->response_total,
                r->response_total > r->response_len ? "true" : "false");
        return;
    }
    if (r->http_status) {
        fprintf(f, "  DPS answered %u", (unsigned)r->http_status);
        if (op[0])
            fprintf(f, " (%s)", op);
        if (r->error_code)
            fprintf(f, ", errorCode %u", (unsigned)r->error_code);
        if (r->error_message[0]) {
            fprintf(f, ": ");
            cli_untrusted_bytes(f, (const uint8_t *)r->error_message, strlen(r->error_message),
                                false);
        }
        fprintf(f, "\n");
    } else if (r->error_message[0]) {
        fprintf(f, "  %s\n", r->error_message);
    }
    if (r->response_len) {
        fprintf(f, "  response: ");
        cli_untrusted_bytes(f, r->response, r->response_len, false);
        if (r->response_total > r->response_len)
            fprintf(f, " ... (%u more of %u bytes)",
                    (unsigned)(r->response_total - r->response_len), (unsigned)r->response_total);
        fprintf(f, "\n");
    }
}

static void progress(void *context, const tether_dps_progress *p)
{
    device *d = context;
    if (d->json)
        return;
    switch (p->event) {
    case TETHER_DPS_EVENT_CONNECTING:
        if (p->attempt == 0)
            printf("registering %s with DPS (%s) ...\n", d->record.registration_id,
                   d->endpoint_host);
        break;
    case TETHER_DPS_EVENT_RESPONSE:
        d->last_response = *p;
        d->have_response = true;
        break;
    case TETHER_DPS_EVENT_CONNECTION_LOST:
        printf("  connection lost: %s\n", tether_status_name(p->cause));
        break;
    case TETHER_DPS_EVENT_WAITING: {
        if (d->have_response) {
            const tether_dps_progress *r = &d->last_response;
            printf("  %u %s", (unsigned)r->http_status,
                   r->http_status == 429   ? "throttled"
                   : r->http_status >= 500 ? "server error"
                                           : tether_dps_status_name(r->operation));
            if (r->operation_id && r->operation_id[0] && r->http_status == 202)
                printf(", operation %.12s%s", r->operation_id,
                       strlen(r->operation_id) > 12 ? "..." : "");
            d->have_response = false;
        } else {
            printf("  retrying");
        }
        printf("; %s %.1f s\n", p->server_retry_after ? "server asks to retry after" : "waiting",
               (double)p->wait_ms / 1000.0);
        break;
    }
    default:
        break;
    }
    fflush(stdout);
}

static uint8_t record_buf[TETHER_RECORD_MAX];

int cli_provisioning_ids(const cli_args *a, char *scope_out, size_t scope_cap, char *reg_out,
                         size_t reg_cap)
{
    /* The ids on the command line, else those of the stored result named by --state: a
     * command asks only for what that result does not hold. */
    const char *scope = cli_get(a, "id-scope"), *reg_id = cli_get(a, "registration-id");
    const char *state = cli_get(a, "state");
    tether_provisioning_record stored; /* outlives the block: scope and reg_id point into it */
    if ((scope == NULL || reg_id == NULL) && state != NULL) {
        tether_file_store fs;
        tether_store store = tether_file_store_init(&fs, state);
        tether_status st = tether_store_load(&store, record_buf, sizeof record_buf, NULL, &stored);
        if (st != TETHER_OK) {
            fprintf(stderr,
                    "tether: --id-scope and --registration-id are required: the state file %s "
                    "holds no result (%s: %s)\n",
                    state, tether_status_name(st), tether_status_message(st));
            return CLI_EXIT_USAGE;
        }
        scope = scope ? scope : stored.id_scope;
        reg_id = reg_id ? reg_id : stored.registration_id;
    }
    if (reg_id == NULL || scope == NULL)
        return usage("--id-scope and --registration-id are required (or --state FILE of a "
                     "stored result)");
    snprintf(scope_out, scope_cap, "%s", scope);
    snprintf(reg_out, reg_cap, "%s", reg_id);
    return -1;
}

static int setup_identity(device *d)
{
    const cli_args *a = d->args;
    const char *endpoint = cli_get(a, "endpoint");
    if (!cli_split_host_port(endpoint ? endpoint : TETHER_DPS_GLOBAL_ENDPOINT, d->endpoint_host,
                             sizeof d->endpoint_host, &d->endpoint_port, 8883))
        return usage("--endpoint wants HOST or HOST:PORT");
    const char *via = cli_get(a, "connect-to");
    if (via && !cli_split_host_port(via, d->dial_host, sizeof d->dial_host, &d->dial_port, 8883))
        return usage("--connect-to wants HOST:PORT");
    memset(&d->record, 0, sizeof d->record);
    int rc = cli_provisioning_ids(a, d->record.id_scope, sizeof d->record.id_scope,
                                  d->record.registration_id, sizeof d->record.registration_id);
    if (rc >= 0)
        return rc;
    const char *reg_id = d->record.registration_id;
    int kinds = cli_has(a, "cert") + cli_has(a, "symmetric-key") + cli_has(a, "group-key");
    if (kinds != 1)
        return usage("give one credential: --cert/--key, --symmetric-key or --group-key");
    if (!cli_has(a, "cafile") && !cli_has(a, "insecure"))
        return usage("--cafile is required: the root that signs the DPS and hub certificates");

    d->sas_key = cli_get(a, "symmetric-key");
    if (cli_has(a, "group-key")) {
        size_t len = 0;
        tether_status st = tether_sas_derive_device_key(
            cli_get(a, "group-key"), reg_id, d->derived_key, sizeof d->derived_key - 1, &len);
        if (st != TETHER_OK) {
            cli_report_failure(&d->conn, st, "deriving the device key", d->json);
            return CLI_EXIT_FAILED;
        }
        d->derived_key[len] = 0;
        d->sas_key = d->derived_key;
    }

    /* The record is tied to the scope, the id and these credentials. */
    if (d->sas_key)
        tether_sha256(d->sas_key, strlen(d->sas_key), d->record.credential_sha256);
    else if (tether_tls_identity_sha256(&d->conn.tls, d->record.credential_sha256) != TETHER_OK)
        return usage("--cert and --key are required for X.509 attestation");

    const char *state = cli_get(a, "state");
    if (state) {
        snprintf(d->state_path, sizeof d->state_path, "%s", state);
    } else {
        mkdir(".tether", 0700);
        mkdir(".tether/state", 0700);
        snprintf(d->state_path, sizeof d->state_path, ".tether/state/%s.state", reg_id);
    }
    return -1;
}

/* Registers with DPS and saves the result. Returns -1 on success, else an exit status. */
static int do_register(device *d)
{
    const cli_args *a = d->args;
    long timeout_s;
    if (!cli_get_long(a, "timeout", 120, 1, 86400, &timeout_s))
        return CLI_EXIT_USAGE;
    tether_dps_config cfg = tether_dps_config_default();
    cfg.endpoint = d->endpoint_host;
    cfg.port = d->dial_host[0] ? d->dial_port : d->endpoint_port;
    cfg.connect_to = d->dial_host[0] ? d->dial_host : NULL;
    cfg.id_scope = d->record.id_scope;
    cfg.registration_id = d->record.registration_id;
    cfg.sas_key = d->sas_key;
    cfg.payload = cli_get(a, "payload");
    cfg.timeout_ms = (uint32_t)timeout_s * 1000u;
    cfg.tls = d->conn.opts;
    cfg.on_progress = progress;
    cfg.progress_context = d;
    tether_dps_result r;
    tether_status st = tether_dps_register(&dps, &d->conn.tls, &cfg, &r);
    if (d->conn.connects++ == 0) {
        tether_heap_stats hs;
        tether_heap_get_stats(&hs);
        d->conn.handshake_peak = hs.peak;
    }
    if (st != TETHER_OK) {
        cli_report_failure_with(&d->conn, st, "DPS registration", d->json, cli_dps_details, &r);
        return CLI_EXIT_FAILED;
    }
    snprintf(d->record.assigned_hub, sizeof d->record.assigned_hub, "%s", r.assigned_hub);
    snprintf(d->record.device_id, sizeof d->record.device_id, "%s", r.device_id);
    if (d->dial_host[0])
        snprintf(d->record.connect_to, sizeof d->record.connect_to, "%s", cli_get(a, "connect-to"));
    d->record.assigned_at = tether_clock_unix_s();
    d->registered_now = true;
    d->elapsed_ms = r.elapsed_ms;
    if (!d->json)
        printf("  %u assigned to %s as %s (%s) in %.1f s\n", (unsigned)r.http_status,
               r.assigned_hub, r.device_id, r.substatus[0] ? r.substatus : "assigned",
               (double)r.elapsed_ms / 1000.0);
    tether_file_store fs;
    tether_store store = tether_file_store_init(&fs, d->state_path);
    st = tether_store_save(&store, record_buf, sizeof record_buf, &d->record);
    if (st == TETHER_STORE_NOT_DURABLE) /* saved and in use; only its durability is in doubt */
        fprintf(stderr, "warning %s: %s\n  %s\n", tether_status_name(st), tether_status_message(st),
                tether_status_hint(st));
    else if (st != TETHER_OK) {
        cli_report_failure(&d->conn, st, "saving the provisioning result", d->json);
        return CLI_EXIT_FAILED;
    }
    if (!d->json)
        printf("saved to %s; later starts go straight to the hub\n", d->state_path);
    return -1;
}

/* Uses the stored result when it is valid for these credentials, else registers. */
static int provision(device *d, bool force)
{
    if (!force) {
        tether_file_store fs;
        tether_store store = tether_file_store_init(&fs, d->state_path);
        tether_provisioning_record stored, expected = d->record;
        tether_status st =
            tether_store_load(&store, record_buf, sizeof record_buf, &expected, &stored);
        if (st == TETHER_OK) {
            d->record = stored;
            return -1;
        }
        if (st != TETHER_STORE_EMPTY && !d->json)
            printf("stored result not used: %s (%s)\n", tether_status_name(st),
                   tether_status_message(st));
    }
    return do_register(d);
}

static int setup_device(device *d, const cli_args *a)
{
    memset(d, 0, sizeof *d);
    d->args = a;
    int rc = cli_tls_setup(&d->conn, a, NULL);
    if (rc >= 0)
        return rc;
    d->json = d->conn.json;
    rc = setup_identity(d);
    if (rc >= 0)
        cli_tls_free(&d->conn);
    return rc;
}

static int cmd_register(const cli_args *a)
{
    device d;
    int rc = setup_device(&d, a);
    if (rc >= 0)
        return rc;
    bool force = cli_has(a, "force");
    rc = provision(&d, force);
    const char *via = cli_get(a, "connect-to");
    if (rc < 0 && !d.registered_now && via != NULL && strcmp(via, d.record.connect_to) != 0) {
        /* The flag wins over the stored address: keep the new one for later starts. */
        snprintf(d.record.connect_to, sizeof d.record.connect_to, "%s", via);
        tether_file_store fs;
        tether_store store = tether_file_store_init(&fs, d.state_path);
        tether_status st = tether_store_save(&store, record_buf, sizeof record_buf, &d.record);
        if (st != TETHER_OK) {
            cli_report_failure(&d.conn, st, "saving the provisioning result", d.json);
            rc = CLI_EXIT_FAILED;
        } else if (!d.json) {
            printf("stored --connect-to address is now %s\n", via);
        }
    }
    if (rc < 0) {
        if (d.json) {
            printf("{\"status\":\"OK\",\"from_store\":%s,\"elapsed_ms\":%llu,",
                   d.registered_now ? "false" : "true", (unsigned long long)d.elapsed_ms);
            print_record_json(&d);
            printf(",");
            cli_json_tls_summary(stdout, &d.conn);
            printf("}\n");
        } else if (!d.registered_now) {
            printf("already provisioned: %s as %s (stored in %s); DPS not called (--force to "
                   "register again)\n",
                   d.record.assigned_hub, d.record.device_id, d.state_path);
        }
        rc = CLI_EXIT_OK;
    }
    cli_tls_free(&d.conn);
    return rc;
}

/* --- the hub ------------------------------------------------------------------------ */

typedef struct run_state {
    device *dev;
    const cli_args *args;
} run_state;

static void print_event_json(const char *event, const char *key, const char *value, size_t len)
{
    printf("{\"event\":\"%s\",\"%s\":", event, key);
    cli_json_string(stdout, value, len);
    printf("}\n");
}

static void on_c2d(void *context, const tether_hub_c2d *m)
{
    run_state *r = context;
    if (r->dev->json) {
        printf("{\"event\":\"c2d\",\"payload\":");
        cli_json_string(stdout, (const char *)m->payload, m->payload_len);
        printf(",\"properties\":");
        cli_json_string(stdout, m->properties.ptr ? m->properties.ptr : "", m->properties.len);
        printf("}\n");
    } else {
        printf("c2d: %.*s", (int)m->payload_len, (const char *)m->payload);
        if (m->properties.len)
            printf("  [%.*s]", (int)m->properties.len, m->properties.ptr);
        printf("\n");
    }
    fflush(stdout);
}

static void on_twin(void *context, const char *json, size_t len)
{
    run_state *r = context;
    if (r->dev->json)
        print_event_json("twin", "twin", json, len);
    else
        printf("twin: %.*s\n", (int)len, json);
    fflush(stdout);
}

static void on_desired(void *context, const char *json, size_t len, uint64_t version)
{
    run_state *r = context;
    if (r->dev->json) {
        printf("{\"event\":\"desired\",\"version\":%llu,\"patch\":", (unsigned long long)version);
        cli_json_string(stdout, json, len);
        printf("}\n");
    } else {
        printf("desired (version %llu): %.*s\n", (unsigned long long)version, (int)len, json);
    }
    fflush(stdout);
}

static uint16_t on_method(void *context, tether_view name, const uint8_t *payload, size_t len,
                          char *response, size_t cap, size_t *response_len)
{
    run_state *r = context;
    uint16_t status = 404;
    int n = 0;
    if (tether_view_equals(name, "ping")) {
        status = 200;
        n = snprintf(response, cap, "{\"pong\":true}");
    } else if (tether_view_equals(name, "echo")) {
        status = 200;
        n = snprintf(response, cap, "%.*s", (int)len, len ? (const char *)payload : "null");
    } else {
        for (size_t i = 0; i < cli_count(r->args, "method"); i++) {
            const char *def = cli_get_nth(r->args, "method", i);
            const char *eq = strchr(def, '=');
            if (eq && (size_t)(eq - def) == name.len && memcmp(def, name.ptr, name.len) == 0) {
                status = 200;
                n = snprintf(response, cap, "%s", eq + 1);
            }
        }
        if (status == 404)
            n = snprintf(response, cap, "{\"message\":\"no method %.*s on this device\"}",
                         (int)name.len, name.ptr);
    }
    *response_len = n > 0 ? ((size_t)n < cap ? (size_t)n : cap - 1) : 0;
    if (r->dev->json) {
        printf("{\"event\":\"method\",\"name\":");
        cli_json_string(stdout, name.ptr, name.len);
        printf(",\"payload\":");
        cli_json_string(stdout, (const char *)payload, len);
        printf(",\"status\":%u,\"response\":", (unsigned)status);
        cli_json_string(stdout, response, *response_len);
        printf("}\n");
    } else {
        printf("method %.*s(%.*s) -> %u %.*s\n", (int)name.len, name.ptr, (int)len,
               (const char *)payload, (unsigned)status, (int)*response_len, response);
    }
    fflush(stdout);
    return status;
}

static void on_event(void *context, const tether_hub_event *e)
{
    run_state *r = context;
    if (r->dev->json) {
        if (e->kind == TETHER_HUB_EVENT_REPORTED)
            printf("{\"event\":\"reported\",\"version\":%llu}\n", (unsigned long long)e->version);
        else if (e->kind == TETHER_HUB_EVENT_CONNECTED)
            printf("{\"event\":\"connected\"}\n");
        else if (e->kind == TETHER_HUB_EVENT_DISCONNECTED)
            printf("{\"event\":\"disconnected\",\"cause\":\"%s\"}\n", tether_status_name(e->cause));
        else if (e->kind == TETHER_HUB_EVENT_WAITING)
            printf("{\"event\":\"waiting\",\"cause\":\"%s\",\"wait_ms\":%u}\n",
                   tether_status_name(e->cause), (unsigned)e->wait_ms);
        else if (e->kind == TETHER_HUB_EVENT_REQUEST_FAILED)
            printf("{\"event\":\"request_failed\",\"request\":\"%s\",\"status\":%u,"
                   "\"cause\":\"%s\",\"retry_in_ms\":%u}\n",
                   e->request == TETHER_HUB_REQUEST_TWIN ? "twin" : "reported", (unsigned)e->status,
                   tether_status_name(e->cause), (unsigned)e->wait_ms);
        else if (e->kind == TETHER_HUB_EVENT_DISCARDED)
            printf("{\"event\":\"discarded\",\"size\":%zu,\"buffer_size\":%zu}\n", e->size,
                   e->buffer_size);
        else if (e->kind == TETHER_HUB_EVENT_UNREADABLE) {
            printf("{\"event\":\"unreadable\",\"cause\":\"%s\",\"size\":%zu,\"topic\":",
                   tether_status_name(e->cause), e->size);
            cli_untrusted_bytes(stdout, (const uint8_t *)e->topic.ptr, e->topic.len, true);
            printf("}\n");
        }
        fflush(stdout);
        return;
    }
    switch (e->kind) {
    case TETHER_HUB_EVENT_CONNECTED:
        printf("connected to %s as %s\n", r->dev->record.assigned_hub, r->dev->record.device_id);
        break;
    case TETHER_HUB_EVENT_DISCONNECTED:
        printf("connection lost: %s; reconnecting\n", tether_status_name(e->cause));
        break;
    case TETHER_HUB_EVENT_WAITING:
        if (e->cause == TETHER_HUB_DROPPED_AFTER_CONNECT)
            printf("  %s: %s (%s); next try in %.1f s\n", tether_status_name(e->cause),
                   tether_status_message(e->cause), tether_status_hint(e->cause),
                   (double)e->wait_ms / 1000.0);
        else if (e->failures > 0)
            printf("  reconnect failed (%s); next try in %.1f s (%u failed)\n",
                   tether_status_name(e->cause), (double)e->wait_ms / 1000.0,
                   (unsigned)e->failures);
        else
            printf("  next try in %.1f s\n", (double)e->wait_ms / 1000.0);
        break;
    case TETHER_HUB_EVENT_REQUEST_FAILED:
        printf("%s: %u %s (%s)", e->request == TETHER_HUB_REQUEST_TWIN ? "twin" : "reported patch",
               (unsigned)e->status, tether_status_message(e->cause), tether_status_name(e->cause));
        if (e->wait_ms > 0)
            printf("; retrying in %.1f s\n", (double)e->wait_ms / 1000.0);
        else
            printf("; not retried\n");
        break;
    case TETHER_HUB_EVENT_TOKEN_RENEWAL:
        printf("renewing the SAS token: reconnecting\n");
        break;
    case TETHER_HUB_EVENT_REPORTED:
        printf("reported properties stored (twin version %llu)\n", (unsigned long long)e->version);
        break;
    case TETHER_HUB_EVENT_UNREADABLE:
        printf("warning: %s: a %zu-byte message on topic ", tether_status_name(e->cause), e->size);
        cli_untrusted_bytes(stdout, (const uint8_t *)e->topic.ptr, e->topic.len, false);
        printf(" was not handled (%s)\n", tether_status_message(e->cause));
        break;
    case TETHER_HUB_EVENT_DISCARDED:
        printf("warning: a %zu-byte message was dropped: larger than the receive buffer (%zu "
               "bytes); acknowledged, so the hub does not send it again\n",
               e->size, e->buffer_size);
        break;
    }
    fflush(stdout);
}

static char telemetry[4096];

static int run_hub(device *d, const cli_args *a, bool send_only)
{
    long count, interval, qos, duration, sas_ttl;
    if (!cli_get_long(a, "count", send_only ? 1 : 0, 0, 100000000, &count) ||
        !cli_get_long(a, "interval", 1000, 0, 3600000, &interval) ||
        !cli_get_long(a, "qos", 1, 0, 1, &qos) ||
        !cli_get_long(a, "duration", -1, -1, 31536000, &duration) ||
        !cli_get_long(a, "sas-ttl", 3600, 2, 31536000, &sas_ttl))
        return CLI_EXIT_USAGE;
    /* IoT Hub: at most 1177 s (PROTOCOL.md). Not 0: the hub would still end a silent
     * connection at its own limit, while the device, never pinging, would not notice a dead
     * link. Default: the library's (240 s, the Azure SDKs'). */
    uint16_t keep_alive;
    if (!cli_keep_alive(a, tether_hub_config_default().keep_alive_s, 1, HUB_KEEP_ALIVE_MAX_S,
                        &keep_alive))
        return CLI_EXIT_USAGE;
    const char *message = cli_get(a, "message");
    if (count > 0 && message == NULL)
        return usage("--message is required to send telemetry");
    tether_hub_property props[CLI_MAX_REPEAT];
    size_t prop_count = cli_count(a, "property");
    for (size_t i = 0; i < prop_count; i++) {
        const char *p = cli_get_nth(a, "property", i);
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq == p)
            return usage("--property wants NAME=VALUE");
        props[i].name = (tether_view){p, (size_t)(eq - p)};
        props[i].value = tether_view_of(eq + 1);
    }

    int rc = provision(d, cli_has(a, "force"));
    if (rc >= 0)
        return rc;

    run_state rs = {d, a};
    tether_hub_config cfg = tether_hub_config_default();
    char dial[256] = "";
    uint16_t dial_port = 8883;
    cfg.tls = d->conn.opts;
    cfg.device_id = d->record.device_id;
    cfg.host = d->record.assigned_hub;
    cfg.sas_key = d->sas_key;
    cfg.sas_ttl_s = (uint32_t)sas_ttl;
    cfg.keep_alive_s = keep_alive;
    cfg.on_c2d = on_c2d;
    cfg.on_twin = on_twin;
    cfg.on_desired = on_desired;
    cfg.on_method = on_method;
    cfg.on_event = on_event;
    cfg.context = &rs;

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    tether_status st = TETHER_OK;
    tether_hub_stats carried;
    memset(&carried, 0, sizeof carried);
    bool reprovisioned = d->registered_now; /* at most one registration per start */
    for (;;) {
        /* --connect-to on this command line wins over the address stored at registration. */
        const char *via = d->dial_host[0] ? cli_get(a, "connect-to") : d->record.connect_to;
        dial[0] = 0;
        if (via[0] && !cli_split_host_port(via, dial, sizeof dial, &dial_port, 8883))
            dial[0] = 0;
        cfg.connect_to = dial[0] ? dial : NULL;
        cfg.port = dial[0] ? dial_port : 8883;
        st = tether_hub_session_start(&hub, &d->conn.tls, &cfg);
        if (tether_status_is_transient(st) && !send_only) {
            /* The hub may be restarting: the session goes on with backoff, and the device
             * registers again only if the hub stays unreachable (HUB_UNREACHABLE below).
             * send is one attempt: its failure is reported at once. */
            if (!d->json)
                printf("hub connect failed (%s): reconnecting with backoff\n",
                       tether_status_name(st));
            st = TETHER_OK;
        }
        if (st == TETHER_HUB_IDENTITY_REFUSED && !reprovisioned) {
            if (!d->json)
                printf("the hub did not take the stored identity (%s): registering again\n",
                       tether_status_name(st));
            reprovisioned = true;
            rc = do_register(d);
            if (rc >= 0)
                return rc;
            continue;
        }
        break;
    }
    if (st != TETHER_OK) {
        cli_report_failure(&d->conn, st, "hub connect", d->json);
        return CLI_EXIT_FAILED;
    }
    {
        tether_heap_stats hs;
        tether_heap_get_stats(&hs);
        d->conn.connected_heap = hs.in_use;
        if (d->conn.handshake_peak == 0) /* no registration this start: the hub's handshake */
            d->conn.handshake_peak = hs.peak;
        d->conn.version = tether_tls_version_name(&d->conn.tls);
        d->conn.suite = tether_tls_ciphersuite_name(&d->conn.tls);
    }
    const char *report = cli_get(a, "report");
    char default_report[160];
    if (report == NULL) {
        tether_tls_build_info b;
        tether_tls_get_build_info(&b);
        snprintf(default_report, sizeof default_report,
                 "{\"tether\":{\"version\":\"%s\",\"profile\":\"%s\"}}", TETHER_CLI_VERSION,
                 b.profile);
        report = default_report;
    }
    st = tether_hub_session_report(&hub, report, strlen(report));

    uint64_t start = tether_port_now_ms();
    uint64_t next_send = start;
    long sent = 0;
    while (st == TETHER_OK && !stop_requested) {
        uint64_t now = tether_port_now_ms();
        /* With no interval, send in a burst until the queue is full. */
        while (sent < count && now >= next_send) {
            size_t len = cli_expand_template(message, strlen(message), sent + 1, telemetry,
                                             sizeof telemetry);
            tether_status s = tether_hub_session_send(&hub, (const uint8_t *)telemetry, len, props,
                                                      prop_count, (uint8_t)qos);
            if (s == TETHER_OK) {
                sent++;
                next_send = now + (uint64_t)interval;
            } else {
                if (s != TETHER_HUB_QUEUE_FULL)
                    st = s;
                break;
            }
        }
        if (st != TETHER_OK)
            break;
        bool done_sending = sent >= count && tether_hub_session_pending(&hub) == 0;
        if (duration >= 0 && now - start >= (uint64_t)duration * 1000u &&
            (done_sending || count == 0))
            break;
        if (duration < 0 && count > 0 && done_sending)
            break;
        /* Short turns while there is more to send, so acknowledgements free the queue fast. */
        st = tether_hub_session_process(&hub, sent < count ? 5 : 100);
        if ((st == TETHER_HUB_IDENTITY_REFUSED || st == TETHER_HUB_UNREACHABLE) && !reprovisioned) {
            if (!d->json)
                printf("%s: registering again\n", tether_status_name(st));
            reprovisioned = true;
            carried = *tether_hub_session_stats(&hub);
            tether_hub_session_stop(&hub);
            rc = do_register(d);
            if (rc >= 0)
                return rc;
            cfg.host = d->record.assigned_hub;
            cfg.device_id = d->record.device_id;
            st = tether_hub_session_start(&hub, &d->conn.tls, &cfg);
            if (st == TETHER_OK)
                st = tether_hub_session_report(&hub, report, strlen(report));
        }
    }
    tether_hub_stats total = *tether_hub_session_stats(&hub);
    total.c2d_received += carried.c2d_received;
    total.methods_answered += carried.methods_answered;
    total.desired_received += carried.desired_received;
    total.reported_acknowledged += carried.reported_acknowledged;
    total.connects += carried.connects;
    total.token_renewals += carried.token_renewals;
    const tether_hub_stats *hs = &total;
    size_t unacknowledged = tether_hub_session_pending(&hub);
    tether_hub_session_stop(&hub);
    if (st != TETHER_OK) {
        cli_report_failure(&d->conn, st, "hub session", d->json);
        return CLI_EXIT_FAILED;
    }
    if (d->json) {
        printf("{\"status\":\"OK\",\"sent\":%ld,\"unacknowledged\":%zu,\"c2d_received\":%u,"
               "\"methods_answered\":%u,\"desired_received\":%u,\"reported_acknowledged\":%u,"
               "\"connects\":%u,\"token_renewals\":%u,\"registered\":%s,",
               sent, unacknowledged, hs->c2d_received, hs->methods_answered, hs->desired_received,
               hs->reported_acknowledged, hs->connects, hs->token_renewals,
               d->registered_now ? "true" : "false");
        print_record_json(d);
        printf(",");
        cli_json_tls_summary(stdout, &d->conn);
        printf("}\n");
    } else {
        printf("sent %ld message(s) to %s, %zu unacknowledged; %u c2d, %u method(s), %u "
               "desired change(s)\n",
               sent, d->record.assigned_hub, unacknowledged, hs->c2d_received, hs->methods_answered,
               hs->desired_received);
        cli_print_tls_summary(stdout, &d->conn);
    }
    return CLI_EXIT_OK;
}

int cmd_device(const char *name, int argc, char **argv)
{
    const cli_command *cmd = strcmp(name, "register") == 0 ? &register_cmd
                             : strcmp(name, "run") == 0    ? &run_cmd
                                                           : &send_cmd;
    cli_args a;
    int rc = cli_parse(cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (cmd == &register_cmd)
        return cmd_register(&a);
    device d;
    rc = setup_device(&d, &a);
    if (rc >= 0)
        return rc;
    rc = run_hub(&d, &a, cmd == &send_cmd);
    cli_tls_free(&d.conn);
    return rc;
}
