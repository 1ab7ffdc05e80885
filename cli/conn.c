#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tether/port.h"

const cli_option cli_host_options[] = {
    {"host", "HOST", "server host name: SNI and certificate check (default localhost)"},
    {"port", "PORT", "server port (default 8883)"},
    {NULL, NULL, NULL},
};

const cli_option cli_tls_options[] = {
    {"connect-to", "ADDR",
     "dial this address instead of --host (and of a stored address); SNI and checks keep the "
     "real name"},
    {"cafile", "FILE", "trusted root certificates, PEM or DER (repeatable)"},
    {"cert", "FILE", "client certificate chain, leaf first, PEM or DER"},
    {"key", "FILE", "client private key (EC P-256/P-384, RSA 2048-4096), PEM or DER"},
    {"key-password", "TEXT", "password of an encrypted private key"},
    {"max-fragment", "N",
     "ask for records of at most N bytes (512..4096), or none; the Certificate message must "
     "fit"},
    {"tls12", NULL, "offer TLS 1.2 only"},
    {"tls13", NULL,
     "offer TLS 1.3 (and 1.2) to any host; by default only a hub's device host name "
     "{hub}.device.{suffix} gets it, as only there does Azure speak 1.3"},
    {"heap-limit", "BYTES", "serve every mbedTLS allocation from an arena of this size"},
    {"sntp-server", "HOST[:PORT]", "set tether's clock from this SNTP server before connecting"},
    {"insecure", NULL, "do not verify the server (tests only; warns on every use)"},
    {"verbose", NULL, "print the TLS handshake stage by stage, with heap figures"},
    {"json", NULL, "print one JSON document instead of text"},
    {NULL, NULL, NULL},
};

tether_tls_versions cli_tls_versions(const cli_args *a)
{
    if (cli_has(a, "tls12"))
        return TETHER_TLS_VERSIONS_1_2;
    return cli_has(a, "tls13") ? TETHER_TLS_VERSIONS_1_2_AND_1_3 : TETHER_TLS_VERSIONS_AZURE;
}

/* One definition for every command that opens an MQTT session (run, send, mqtt pub/sub): each
 * reads it with cli_keep_alive() and its own range and default. */
const cli_option cli_keep_alive_options[] = {
    {"keep-alive", "S",
     "MQTT keep-alive in seconds: a ping after S s without sending, and no answer S s later "
     "ends the connection (run, send: 1..1177, IoT Hub's limit, default 240; mqtt: 0..65535, "
     "default 60, 0 for none)"},
    {NULL, NULL, NULL},
};

bool cli_keep_alive(const cli_args *a, long fallback, long min, long max, uint16_t *out)
{
    /* mqtt pub/sub also take mosquitto_pub's spelling, --keepalive. */
    const char *name =
        cli_has(a, "keep-alive") || !cli_has(a, "keepalive") ? "keep-alive" : "keepalive";
    long v;
    if (!cli_get_long(a, name, fallback, min, max, &v))
        return false;
    *out = (uint16_t)v;
    return true;
}

/* Credentials are read into buffers of the command; the library never touches files, and it
 * keeps referring to these buffers (it parses them at each handshake), so they are static. */
#define FILE_CAP (64 * 1024)
static uint8_t ca_buf[FILE_CAP], cert_buf[FILE_CAP], key_buf[FILE_CAP];

static int load_into(const char *what, const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    tether_status st = cap > 1 ? tether_port_read_file(path, buf, cap, len) : TETHER_FILE_TOO_LARGE;
    if (st == TETHER_OK) {
        *len += 1; /* mbedTLS wants the NUL of PEM text counted. */
        return -1;
    }
    fprintf(stderr, "error %s reading the %s file %s\n  %s\n  fix: %s\n", tether_status_name(st),
            what, path, tether_status_message(st), tether_status_hint(st));
    return CLI_EXIT_FAILED;
}

static int load(const char *what, const char *path, uint8_t *buf, size_t *len)
{
    return load_into(what, path, buf, FILE_CAP, len);
}

static void report_setup_failure(const cli_tls *c, tether_status st, const char *what,
                                 const char *path)
{
    const tether_tls_diag *d = tether_tls_last_diag(&c->tls);
    fprintf(stderr, "error %s in %s (%s)\n  %s\n  fix: %s\n", tether_status_name(st), what, path,
            tether_status_message(st), tether_status_hint(st));
    if (d->mbedtls_code) {
        char raw[128];
        tether_mbedtls_text(d->mbedtls_code, raw, sizeof raw);
        fprintf(stderr, "  mbedTLS: -0x%04X %s\n", (unsigned)-d->mbedtls_code, raw);
    }
}

static int setup_options_and_credentials(cli_tls *c, const cli_args *a, const char *default_host,
                                         bool no_mfl, long mfl, long port);

int cli_tls_setup(cli_tls *c, const cli_args *a, const char *default_host)
{
    return cli_tls_setup_heap(c, a, default_host, 0);
}

static int setup(cli_tls *c, const cli_args *a, const char *default_host, size_t arena);

/* --verbose: each handshake stage as it completes, with the TLS heap (every connection of the
 * command: DPS, the hub, a broker). */
static void trace_stage(void *context, tether_tls_stage stage, const tether_tls_diag *d)
{
    (void)context;
    fprintf(stderr, "  tls %d/%d %-18s sent %6zu B  received %6zu B  heap %6zu B (peak %zu)\n",
            (int)stage, TETHER_TLS_STAGE_COUNT, tether_tls_stage_name(stage), d->bytes_sent,
            d->bytes_received, d->heap_in_use, d->heap_peak);
}

int cli_tls_setup_heap(cli_tls *c, const cli_args *a, const char *default_host, size_t arena)
{
    int rc = setup(c, a, default_host, arena);
    if (rc >= 0 && c->initialized) {
        cli_tls_free(c); /* a failed set-up leaves nothing for the caller to free */
    } else if (rc >= 0 && c->arena != NULL) {
        tether_heap_use_system(0);
        free(c->arena);
        c->arena = NULL;
    }
    return rc;
}

static int setup(cli_tls *c, const cli_args *a, const char *default_host, size_t arena)
{
    memset(c, 0, sizeof *c);
    c->json = cli_has(a, "json");
    c->verbose = cli_has(a, "verbose");
    long port, mfl = 0, limit;
    bool no_mfl = cli_get(a, "max-fragment") && strcmp(cli_get(a, "max-fragment"), "none") == 0;
    if (!cli_get_long(a, "port", 8883, 1, 65535, &port) ||
        (!no_mfl && !cli_get_long(a, "max-fragment", 0, 0, 4096, &mfl)) ||
        !cli_get_long(a, "heap-limit", 0, 0, 64L * 1024 * 1024, &limit))
        return CLI_EXIT_USAGE;
    tether_tls_build_info build;
    tether_tls_get_build_info(&build);
    size_t smaller =
        build.in_content_len < build.out_content_len ? build.in_content_len : build.out_content_len;
    if ((mfl != 0 && mfl != 512 && mfl != 1024 && mfl != 2048 && mfl != 4096) ||
        (size_t)mfl > smaller) {
        fprintf(stderr,
                "tether: --max-fragment must be 512, 1024, 2048 or 4096, and at most %zu in "
                "profile %s (the limit applies both ways, so it cannot exceed the smaller "
                "record buffer)\n",
                smaller, build.profile);
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "cert") != cli_has(a, "key")) {
        fprintf(stderr, "tether: --cert and --key go together\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "tls12") && cli_has(a, "tls13")) {
        fprintf(stderr, "tether: --tls12 and --tls13 exclude each other\n");
        return CLI_EXIT_USAGE;
    }
    if (cli_has(a, "tls13") && !build.tls13)
        fprintf(stderr,
                "warning: --tls13: this build (profile %s) has no TLS 1.3 and offers TLS "
                "1.2 only\n",
                build.profile);
    if (arena > 0)
        limit = (long)arena;
    if (limit > 0) {
        c->arena = malloc((size_t)limit);
        if (c->arena == NULL || tether_heap_use_arena(c->arena, (size_t)limit) != TETHER_OK) {
            fprintf(stderr, "tether: --heap-limit %ld is too small for one allocation\n", limit);
            free(c->arena);
            c->arena = NULL;
            return CLI_EXIT_USAGE;
        }
    } else {
        tether_heap_use_system(0);
    }
    tether_status st = tether_tls_init(&c->tls);
    c->initialized = true;
    if (st != TETHER_OK) {
        cli_report_failure(c, st, "TLS set-up", c->json);
        cli_tls_free(c);
        return CLI_EXIT_FAILED;
    }
    /* Past this point a failure frees what tether_tls_init allocated: callers only free a
     * context that was set up. */
    int rc = setup_options_and_credentials(c, a, default_host, no_mfl, mfl, port);
    if (rc >= 0)
        cli_tls_free(c);
    return rc;
}

static int setup_options_and_credentials(cli_tls *c, const cli_args *a, const char *default_host,
                                         bool no_mfl, long mfl, long port)
{
    tether_status st;

    c->opts = tether_tls_options_default();
    c->opts.host = cli_get(a, "host") ? cli_get(a, "host") : default_host;
    c->opts.connect_host = cli_get(a, "connect-to");
    c->opts.port = (uint16_t)port;
    c->opts.max_fragment = no_mfl ? TETHER_TLS_MAX_FRAGMENT_NONE : (uint16_t)mfl;
    c->opts.versions = cli_tls_versions(a);
    c->opts.insecure = cli_has(a, "insecure");
    c->opts.io_timeout_ms = 200;
    if (c->verbose) /* the sessions copy these options: DPS and hub handshakes are traced too */
        c->opts.on_stage = trace_stage;
    if (cli_get(a, "sntp-server")) {
        tether_status ts = cli_sync_clock(cli_get(a, "sntp-server"), c->verbose, c->json);
        if (ts != TETHER_OK)
            return CLI_EXIT_FAILED;
    }
    if (c->opts.insecure)
        fprintf(stderr, "warning: --insecure: the server is NOT verified; anyone on the path can "
                        "read and change this connection\n");

    size_t ca_used = 0; /* Each CA file after the previous one: the library keeps them all. */
    for (size_t i = 0; i < cli_count(a, "cafile"); i++) {
        const char *path = cli_get_nth(a, "cafile", i);
        size_t len;
        int rc = load_into("CA", path, ca_buf + ca_used, FILE_CAP - ca_used, &len);
        if (rc >= 0)
            return rc;
        st = tether_tls_add_trust(&c->tls, ca_buf + ca_used, len);
        ca_used += len;
        if (st != TETHER_OK) {
            report_setup_failure(c, st, "the CA file", path);
            return CLI_EXIT_FAILED;
        }
    }
    if (cli_has(a, "cert")) {
        size_t cert_len, key_len;
        int rc = load("certificate", cli_get(a, "cert"), cert_buf, &cert_len);
        if (rc < 0)
            rc = load("key", cli_get(a, "key"), key_buf, &key_len);
        if (rc >= 0)
            return rc;
        st = tether_tls_set_identity(&c->tls, cert_buf, cert_len, key_buf, key_len,
                                     cli_get(a, "key-password"));
        if (st != TETHER_OK) {
            report_setup_failure(c, st, "the client certificate and key", cli_get(a, "cert"));
            return CLI_EXIT_FAILED;
        }
    }
    /* Before any connection (DPS, hub, broker): a message that cannot fit the fragment length
     * fails every handshake. The variable lets a test see what the server then says. */
    if (getenv("TETHER_SEND_OVERSIZED_HANDSHAKE") != NULL) {
        c->opts.send_oversized_handshake = true;
        fprintf(stderr, "warning: TETHER_SEND_OVERSIZED_HANDSHAKE: handshake messages larger "
                        "than the fragment length are sent anyway (tests only)\n");
    } else if ((st = tether_tls_check_fragment_length(&c->tls, &c->opts)) != TETHER_OK) {
        cli_report_failure(c, st, "the fragment length check", c->json);
        return CLI_EXIT_FAILED;
    }
    return -1;
}

tether_status cli_tls_connect(cli_tls *c)
{
    if (c->verbose) {
        c->opts.on_stage = trace_stage;
        fprintf(stderr, "connecting to %s:%u%s%s ...\n", c->opts.host, (unsigned)c->opts.port,
                c->opts.connect_host ? " via " : "",
                c->opts.connect_host ? c->opts.connect_host : "");
    }
    tether_status st = tether_tls_connect(&c->tls, &c->opts);
    if (st != TETHER_OK)
        return st;
    c->version = tether_tls_version_name(&c->tls);
    c->suite = tether_tls_ciphersuite_name(&c->tls);
    if (c->connects++ == 0) {
        const tether_tls_diag *d = tether_tls_last_diag(&c->tls);
        c->handshake_peak = d->heap_peak;
        c->connected_heap = d->heap_in_use;
    }
    if (c->verbose)
        fprintf(stderr, "  tls connected: %s %s\n", tether_tls_version_name(&c->tls),
                tether_tls_ciphersuite_name(&c->tls));
    return TETHER_OK;
}

void cli_tls_free(cli_tls *c)
{
    c->initialized = false;
    tether_tls_free(&c->tls);
    /* Back to the system allocator before the arena goes. */
    tether_heap_use_system(0);
    free(c->arena);
    c->arena = NULL;
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", f);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static bool from_tls(tether_status st)
{
    return (st >= TETHER_TLS_CA_PARSE_FAILED && st <= TETHER_TLS_FAILED) ||
           st == TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL ||
           st == TETHER_TLS_SERVER_SIGNATURE_REJECTED || st == TETHER_CLOCK_NOT_SET ||
           (st >= TETHER_DNS_FAILED && st <= TETHER_SOCKET_ERROR) || st == TETHER_ENTROPY_FAILED;
}

void cli_untrusted_bytes(FILE *f, const uint8_t *p, size_t len, bool json)
{
    if (json)
        fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = p[i];
        bool plain = ch >= 0x20 && ch < 0x7f;
        if (plain && !(json && (ch == '"' || ch == '\\')))
            fputc(ch, f);
        else if (plain)
            fprintf(f, "\\%c", ch);
        else if (json)
            fprintf(f, "\\u%04x", ch); /* every byte kept, and the JSON stays valid */
        else
            fprintf(f, "\\x%02x", ch);
    }
    if (json)
        fputc('"', f);
}

void cli_report_failure(const cli_tls *c, tether_status st, const char *during, bool json)
{
    cli_report_failure_with(c, st, during, json, NULL, NULL);
}

void cli_report_failure_with(const cli_tls *c, tether_status st, const char *during, bool json,
                             cli_details_fn details, const void *context)
{
    const tether_tls_diag *d = tether_tls_last_diag(&c->tls);
    bool tls = from_tls(st) && d->status == st;
    if (json) {
        printf("{\"status\":\"%s\",\"message\":", tether_status_name(st));
        cli_json_string(stdout, tether_status_message(st), strlen(tether_status_message(st)));
        printf(",\"hint\":");
        cli_json_string(stdout, tether_status_hint(st), strlen(tether_status_hint(st)));
        printf(",\"during\":");
        cli_json_string(stdout, during, strlen(during));
        if (tls) {
            printf(",\"stage\":%d,\"stage_name\":\"%s\",\"mbedtls_code\":%d,\"alert\":%d,"
                   "\"verify_flags\":%u,\"bytes_sent\":%zu,\"bytes_received\":%zu,"
                   "\"heap_in_use\":%zu,\"heap_peak\":%zu,\"heap_cap\":%zu,\"heap_request\":%zu,"
                   "\"needed\":%zu,\"available\":%zu,\"server_issuer\":",
                   (int)d->stage, tether_tls_stage_name(d->stage), d->mbedtls_code, d->alert,
                   (unsigned)d->verify_flags, d->bytes_sent, d->bytes_received, d->heap_in_use,
                   d->heap_peak, d->heap_cap, d->heap_request, d->needed, d->available);
            cli_json_string(stdout, d->server_issuer, strlen(d->server_issuer));
            /* What the text says (alert name, system error, mbedTLS text, the numbers). */
            const char *alert = tether_tls_alert_name(d->alert);
            printf(",\"alert_name\":");
            cli_json_string(stdout, alert ? alert : "", alert ? strlen(alert) : 0);
            printf(",\"system_error\":");
            cli_json_string(stdout, d->sys_errno ? strerror(d->sys_errno) : "",
                            d->sys_errno ? strlen(strerror(d->sys_errno)) : 0);
            char text[4096];
            tether_tls_describe(d, text, sizeof text);
            printf(",\"details\":");
            cli_json_string(stdout, text, strlen(text));
        }
        if (details) {
            printf(",");
            details(stdout, true, context);
        }
        printf("}\n");
        return;
    }
    if (tls) {
        char text[4096];
        tether_tls_describe(d, text, sizeof text);
        fputs(text, stderr);
    } else {
        fprintf(stderr, "error %s during %s\n  %s\n  fix: %s\n", tether_status_name(st), during,
                tether_status_message(st), tether_status_hint(st));
    }
    if (details)
        details(stderr, false, context);
    fprintf(stderr, "  more: tether explain %s\n", tether_status_name(st));
}

void cli_json_tls_summary(FILE *f, const cli_tls *c)
{
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    tether_heap_stats hs;
    tether_heap_get_stats(&hs);
    fprintf(f,
            "\"profile\":\"%s\",\"in_content_len\":%zu,\"out_content_len\":%zu,"
            "\"tls_version\":\"%s\",\"ciphersuite\":\"%s\",\"handshake_heap_peak\":%zu,"
            "\"heap_connected\":%zu,\"heap_peak\":%zu,\"heap_allocations\":%zu,\"heap_cap\":%zu,"
            "\"tls_connects\":%u",
            b.profile, b.in_content_len, b.out_content_len, c->version ? c->version : "none",
            c->suite ? c->suite : "none", c->handshake_peak, c->connected_heap, hs.peak,
            hs.allocations, hs.cap, c->connects);
}

void cli_print_tls_summary(FILE *f, const cli_tls *c)
{
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    tether_heap_stats hs;
    tether_heap_get_stats(&hs);
    fprintf(f,
            "tls: %s %s; heap peak %zu bytes (handshake %zu, %zu in use once connected), "
            "profile %s (%zu in / %zu out)\n",
            c->version ? c->version : "none", c->suite ? c->suite : "none", hs.peak,
            c->handshake_peak, c->connected_heap, b.profile, b.in_content_len, b.out_content_len);
}

/* Replaces each "{n}" of the template with the number. */
size_t cli_expand_template(const char *tmpl, size_t tmpl_len, long n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < tmpl_len && o + 1 < cap; i++) {
        if (i + 3 <= tmpl_len && strncmp(tmpl + i, "{n}", 3) == 0) {
            int w = snprintf(out + o, cap - o, "%ld", n);
            if (w > 0)
                o += (size_t)w < cap - o ? (size_t)w : cap - o - 1;
            i += 2;
        } else {
            out[o++] = tmpl[i];
        }
    }
    return o;
}
