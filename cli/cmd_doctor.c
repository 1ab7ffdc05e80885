/* `tether doctor`: a checklist a person can act on, from the files to a real registration.
 * Each line is PASS, WARN, FAIL or SKIP with what was found and what to change. */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS /* certificate dates and names, read for the checks */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mbedtls/oid.h"
#include "mbedtls/pk.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/x509_crt.h"
#include "tether/dps_session.h"
#include "tether/hub_session.h"
#include "tether/port.h"
#include "tether/sas.h"
#include "tether/sntp.h"

static const cli_option doctor_options[] = {
    {"server-shape", "S", "the server to check this build against: azure-rsa, azure-ecc, compact"},
    {"offline", NULL, "only the checks that need no network (files, clock, server fit)"},
    {"no-register", NULL, "stop after the handshake: no DPS registration"},
    {"force", NULL, "run the handshake even after a FAIL"},
    {NULL, NULL, NULL},
};
static const cli_option *const doctor_sets[] = {cli_provisioning_options, doctor_options,
                                                cli_tls_options, NULL};
static const cli_command doctor_cmd = {
    "tether doctor [the options of tether register] [--no-register]",
    "Checks everything a registration depends on, one line per check: the files parse, the\n"
    "key matches the certificate, the certificate is valid on this clock, the clock is set,\n"
    "the chain is complete and in order, the CN is the registration id, the Certificate\n"
    "message fits this build's TLS output buffer, DNS and TCP reach the endpoint, a real\n"
    "handshake (stage by stage, with heap), then a real registration (not saved).\n"
    "Before a device is flashed, with no network: for Azure's host names (or --server-shape)\n"
    "it says whether this build's buffers hold the server's handshake records and the\n"
    "largest cloud-to-device message and twin document the device can receive.\n"
    "  tether doctor --offline --endpoint global.azure-devices-provisioning.net",
    doctor_sets, 0};

typedef struct doctor {
    bool json;
    bool first;
    int fails;
    int warns;
} doctor;

static void check(doctor *d, const char *result, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void check(doctor *d, const char *result, const char *name, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (strcmp(result, "FAIL") == 0)
        d->fails++;
    if (strcmp(result, "WARN") == 0)
        d->warns++;
    if (d->json) {
        printf("%s{\"check\":\"%s\",\"result\":\"%s\",\"detail\":", d->first ? "" : ",", name,
               result);
        cli_json_string(stdout, text, strlen(text));
        printf("}");
        d->first = false;
    } else {
        printf("%-5s %s\n", result, text);
    }
    fflush(stdout);
}

static void format_time(const mbedtls_x509_time *t, char *buf, size_t len)
{
    snprintf(buf, len, "%04d-%02d-%02d", t->year, t->mon, t->day);
}

static void format_now(char *buf, size_t len)
{
    mbedtls_time_t now = (mbedtls_time_t)tether_clock_unix_s();
    struct tm tm;
    if (mbedtls_platform_gmtime_r(&now, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)now);
}

static const char *key_kind(const mbedtls_pk_context *pk, char *buf, size_t len)
{
    if (mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECKEY || mbedtls_pk_get_type(pk) == MBEDTLS_PK_ECDSA)
        snprintf(buf, len, "EC P-%zu", mbedtls_pk_get_bitlen(pk));
    else
        snprintf(buf, len, "%s %zu", mbedtls_pk_get_name(pk), mbedtls_pk_get_bitlen(pk));
    return buf;
}

static bool same_name(const mbedtls_x509_buf *a, const mbedtls_x509_buf *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static uint8_t file_buf[64 * 1024];

static int load(const char *path, size_t *len)
{
    tether_status st = tether_port_read_file(path, file_buf, sizeof file_buf, len);
    if (st == TETHER_OK)
        *len += 1;
    return (int)st;
}

/* The client's handshake messages against the maximum fragment length asked for: mbedTLS 3.6
 * sends each in one record, and a server that accepts the limit refuses a longer one. */
static void check_fragment_length(doctor *d, const cli_args *a, const tether_tls_build_info *b,
                                  size_t certificate, size_t verify)
{
    tether_tls_options o = tether_tls_options_default();
    const char *asked = cli_get(a, "max-fragment");
    if (asked != NULL)
        o.max_fragment = strcmp(asked, "none") == 0 ? TETHER_TLS_MAX_FRAGMENT_NONE
                                                    : (uint16_t)strtoul(asked, NULL, 10);
    size_t limit = tether_tls_fragment_limit(&o);
    if (limit == 0)
        return;
    const char *from = asked ? "--max-fragment" : "the profile's default";
    const char *what = certificate > limit ? "Certificate" : "CertificateVerify";
    size_t size = certificate > limit ? certificate : verify;
    if (size <= limit) {
        check(d, "PASS", "fragment-length",
              "Certificate message %zu B and CertificateVerify %zu B fit the %zu-byte maximum "
              "fragment length (%s)",
              certificate, verify, limit, from);
        return;
    }
    size_t fits = 0;
    for (size_t v = 512; v <= 4096 && fits == 0; v *= 2)
        if (v >= size && v <= b->in_content_len && v <= b->out_content_len)
            fits = v;
    char fix[64];
    if (fits)
        snprintf(fix, sizeof fix, "ask for --max-fragment %zu", fits);
    else
        snprintf(fix, sizeof fix, "ask for no fragment length");
    check(d, "FAIL", "fragment-length",
          "%s message %zu B > the %zu-byte maximum fragment length (%s): mbedTLS 3.6 sends it "
          "in one record and cannot split it, and the server would answer record_overflow; %s, "
          "or send a shorter chain",
          what, size, limit, from, fix);
}

/* The X.509 checks; returns false when the certificate or key could not be read. */
static bool check_x509(doctor *d, const cli_args *a, const tether_tls_build_info *b,
                       const char *reg_id)
{
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_x509_crt_init(&chain);
    mbedtls_pk_init(&key);
    bool ok = true;
    size_t len;
    char dn[256], kind[64], from[16], to[16], now[40];

    int st = load(cli_get(a, "cert"), &len);
    int ret = st == TETHER_OK ? mbedtls_x509_crt_parse(&chain, file_buf, len) : -1;
    if (st != TETHER_OK || ret < 0 || chain.raw.len == 0) {
        check(d, "FAIL", "certificate", "%s: %s", cli_get(a, "cert"),
              st != TETHER_OK ? tether_status_message((tether_status)st)
                              : "no certificate tether can parse (PEM or DER)");
        ok = false;
        goto out;
    }
    size_t count = 0;
    for (const mbedtls_x509_crt *c = &chain; c && c->raw.len; c = c->next)
        count++;
    mbedtls_x509_dn_gets(dn, sizeof dn, &chain.subject);
    check(d, "PASS", "certificate", "certificate chain parses: %zu certificate(s), leaf %s, %s",
          count, key_kind(&chain.pk, kind, sizeof kind), dn);

    const char *password = cli_get(a, "key-password");
    st = load(cli_get(a, "key"), &len);
    ret = st == TETHER_OK
              ? mbedtls_pk_parse_key(&key, file_buf, len, (const unsigned char *)password,
                                     password ? strlen(password) : 0, NULL, NULL)
              : -1;
    if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED || ret == MBEDTLS_ERR_PK_PASSWORD_MISMATCH) {
        check(d, "FAIL", "key", "the key is encrypted and %s (--key-password)",
              ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED ? "no password was given"
                                                      : "the password does not decrypt it");
        ok = false;
        goto out;
    }
    if (ret != 0) {
        check(d, "FAIL", "key", "%s: not a private key tether can parse", cli_get(a, "key"));
        ok = false;
        goto out;
    }
    /* mbedtls_pk_check_pair wants a random generator for RSA blinding. */
    tether_tls rng;
    if (tether_tls_init(&rng) == TETHER_OK &&
        mbedtls_pk_check_pair(&chain.pk, &key, mbedtls_ctr_drbg_random, &rng.drbg) == 0)
        check(d, "PASS", "key-match", "key matches certificate (%s)",
              key_kind(&key, kind, sizeof kind));
    else
        check(d, "FAIL", "key-match",
              "the key does not belong to the certificate: give the key made with it");
    tether_tls_free(&rng);

    format_time(&chain.valid_from, from, sizeof from);
    format_time(&chain.valid_to, to, sizeof to);
    format_now(now, sizeof now);
    if (mbedtls_x509_time_is_past(&chain.valid_to))
        check(d, "FAIL", "validity", "certificate expired on %s; clock reads %s: issue a new one",
              to, now);
    else if (mbedtls_x509_time_is_future(&chain.valid_from))
        check(d, "FAIL", "validity",
              "certificate valid from %s only; clock reads %s: set the clock or wait", from, now);
    else
        check(d, "PASS", "validity", "certificate valid %s .. %s; clock reads %s", from, to, now);

    /* Order: each certificate is issued by the next one. */
    bool ordered = true;
    const mbedtls_x509_crt *last = &chain;
    for (const mbedtls_x509_crt *c = &chain; c->next && c->next->raw.len; c = c->next) {
        if (!same_name(&c->issuer_raw, &c->next->subject_raw))
            ordered = false;
        last = c->next;
    }
    bool root_included = same_name(&last->issuer_raw, &last->subject_raw) && count > 1;
    if (!ordered)
        check(d, "FAIL", "chain",
              "the chain is out of order: send the leaf first, then each issuer in turn");
    else if (count == 1 && !same_name(&chain.issuer_raw, &chain.subject_raw))
        check(d, "WARN", "chain",
              "chain has no intermediate; a group enrollment on the intermediate will reject it");
    else if (root_included)
        check(d, "WARN", "chain",
              "the chain includes its root (%zu bytes): DPS does not need it, and it costs "
              "output buffer",
              last->raw.len);
    else
        check(d, "PASS", "chain", "chain in order: leaf, then %zu issuer(s)", count - 1);

    /* CN = registration id. */
    const mbedtls_x509_name *n = &chain.subject;
    char cn[130] = "";
    for (; n; n = n->next)
        if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0 && n->val.len < sizeof cn) {
            memcpy(cn, n->val.p, n->val.len);
            cn[n->val.len] = 0;
        }
    if (reg_id && strcmp(cn, reg_id) == 0)
        check(d, "PASS", "cn", "certificate CN is the registration id (%s)", cn);
    else
        check(d, "FAIL", "cn",
              "certificate CN is '%s' but the registration id is '%s': DPS refuses the "
              "mismatch (401002)",
              cn, reg_id ? reg_id : "");

    /* The -0x7500 case: the Certificate handshake message against the output buffer. */
    size_t message, message13, verify;
    tether_tls_handshake_sizes(&chain, &key, &message, &message13, &verify);
    if (message <= b->out_content_len)
        check(d, "PASS", "certificate-message",
              "Certificate message %zu B fits the TLS output buffer %zu B (profile %s)", message,
              b->out_content_len, b->profile);
    else
        check(d, "FAIL", "certificate-message",
              "certificate message %zu B > TLS output buffer %zu B (profile %s): send a shorter "
              "chain, or build with an output buffer of at least %zu B (profile desktop)",
              message, b->out_content_len, b->profile, (message + 511) / 512 * 512);
    /* TLS 1.3's Certificate message is the larger: it counts where 1.3 would be offered. */
    tether_tls_options o = tether_tls_options_default();
    o.host = cli_get(a, "endpoint") ? cli_get(a, "endpoint") : TETHER_DPS_GLOBAL_ENDPOINT;
    o.versions = cli_tls_versions(a);
    check_fragment_length(d, a, b, tether_tls_offers_tls13(&o) ? message13 : message, verify);
out:
    mbedtls_x509_crt_free(&chain);
    mbedtls_pk_free(&key);
    return ok;
}

static void check_trust(doctor *d, const cli_args *a)
{
    for (size_t i = 0; i < cli_count(a, "cafile"); i++) {
        const char *path = cli_get_nth(a, "cafile", i);
        mbedtls_x509_crt ca;
        mbedtls_x509_crt_init(&ca);
        size_t len;
        int st = load(path, &len);
        if (st != TETHER_OK || mbedtls_x509_crt_parse(&ca, file_buf, len) < 0 || ca.raw.len == 0) {
            check(d, "FAIL", "trust", "%s: %s", path,
                  st != TETHER_OK ? tether_status_message((tether_status)st)
                                  : "no certificate tether can parse");
        } else {
            char names[512] = "";
            size_t used = 0, count = 0;
            for (const mbedtls_x509_crt *c = &ca; c && c->raw.len; c = c->next, count++) {
                char dn[160];
                mbedtls_x509_dn_gets(dn, sizeof dn, &c->subject);
                int w = snprintf(names + used, sizeof names - used, "%s%s", count ? "; " : "", dn);
                if (w > 0 && (size_t)w < sizeof names - used)
                    used += (size_t)w;
            }
            check(d, "PASS", "trust", "trust store %s: %zu root(s): %s", path, count, names);
        }
        mbedtls_x509_crt_free(&ca);
    }
}

static void trace(void *context, tether_tls_stage stage, const tether_tls_diag *diag)
{
    doctor *d = context;
    if (!d->json)
        printf("        %d/%d %-18s heap %6zu B (peak %zu)\n", (int)stage, TETHER_TLS_STAGE_COUNT,
               tether_tls_stage_name(stage), diag->heap_in_use, diag->heap_peak);
}

/* The smallest --heap-limit that works on this path: everything again (credentials and the
 * handshake) served from a large arena, whose high-water mark counts block headers and
 * fragmentation as a device's heap would. */
static void measure_arena(doctor *d, const cli_args *a, const tether_tls_options *opts)
{
    cli_tls probe;
    if (cli_tls_setup_heap(&probe, a, NULL, 512 * 1024) >= 0)
        return;
    tether_tls_options o = *opts;
    o.on_stage = NULL;
    tether_status st = tether_tls_connect(&probe.tls, &o);
    tether_heap_stats hs;
    tether_heap_get_stats(&hs);
    tether_tls_close(&probe.tls);
    cli_tls_free(&probe);
    if (st == TETHER_OK)
        check(d, "PASS", "heap-limit",
              "the smallest --heap-limit for this handshake: %zu bytes (credentials and "
              "handshake in one arena, block headers included)",
              hs.arena_peak);
}

/* The server a device meets, per shape (cloud/README.md "Server shapes": sizes measured on
 * Azure's endpoints and reproduced by `tether cloud up --server-shape`). Azure DPS ignores
 * max_fragment_length; IoT Hub honoured it only in a preview: a record is as large as the
 * server makes it, up to 16 KB, and one MQTT packet goes out as one record. */
typedef struct server_shape {
    const char *name;
    const char *what;
    size_t largest_handshake_record; /* the Certificate message, in one record */
    bool rsa;                        /* RSA signatures in the chain (RSA-4096 issuing CA) */
    bool p384;                       /* P-384 keys in the chain */
} server_shape;

static const server_shape server_shapes[] = {
    {"azure-rsa",
     "Azure's RSA chain (RSA-2048 leaf 1,875 B + RSA-4096 issuing CA 1,509 B, sha384WithRSA, "
     "under DigiCert Global Root G2)",
     3397, true, false},
    {"azure-ecc",
     "IoT Hub's ECC chain (P-384, ecdsa-with-SHA384, under DigiCert Global Root G3; ECDSA "
     "suites only)",
     2023, false, true},
    {"compact", "the local cloud's compact EC chain (P-256 leaf and CA under a P-384 root)", 1153,
     false, true},
};

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The shape of a known endpoint: Azure's DPS and hub host names present the RSA chain. */
static const server_shape *shape_of(const char *option, const char *host)
{
    for (size_t i = 0; option != NULL && i < sizeof server_shapes / sizeof server_shapes[0]; i++)
        if (strcmp(server_shapes[i].name, option) == 0)
            return &server_shapes[i];
    if (option == NULL && host != NULL &&
        (ends_with(host, "azure-devices-provisioning.net") ||
         ends_with(host, ".azure-devices.net")))
        return &server_shapes[0];
    return NULL;
}

/* Payload bytes of the largest MQTT PUBLISH that fits one record of `record` bytes and the
 * hub session's receive buffer, under a topic of `topic_len` bytes (QoS 1). */
static size_t largest_payload(size_t record, size_t topic_len)
{
    size_t packet = record < TETHER_HUB_RX_LEN ? record : TETHER_HUB_RX_LEN;
    size_t overhead = 1 + 3 + 2 + topic_len + 2; /* header, length, topic length, packet id */
    return packet > overhead ? packet - overhead : 0;
}

/* Does this build hold what the server sends? No network needed. */
static void check_server_fit(doctor *d, const cli_args *a, const tether_tls_build_info *b,
                             const char *host)
{
    const char *option = cli_get(a, "server-shape");
    const server_shape *sh = shape_of(option, host);
    if (sh == NULL) {
        if (option != NULL)
            check(d, "FAIL", "server", "unknown --server-shape %s (azure-rsa, azure-ecc, compact)",
                  option);
        else
            check(d, "SKIP", "server",
                  "%s is not an Azure host name: give --server-shape, or let the handshake tell",
                  host);
        return;
    }
    size_t rec = sh->largest_handshake_record;
    if (b->in_content_len >= rec)
        check(d, "PASS", "server-records",
              "%s: its largest handshake record (%zu B, sent whole: fragment length is ignored) "
              "fits this build's %zu-byte input buffer",
              sh->what, rec, b->in_content_len);
    else
        check(d, "FAIL", "server-records",
              "%s: its Certificate record is %zu B, sent whole (the server ignores fragment "
              "length), and this build's input buffer is %zu B: the handshake fails with "
              "TLS_RECORD_TOO_LARGE. Use a profile whose input buffer is at least %zu B (azure, "
              "esp-idf, desktop)",
              sh->what, rec, b->in_content_len, rec);
    bool rsa = false, p384 = false;
#if defined(MBEDTLS_RSA_C)
    rsa = true;
#endif
#if defined(MBEDTLS_ECP_DP_SECP384R1_ENABLED)
    p384 = true;
#endif
    if ((sh->rsa && !rsa) || (sh->p384 && !p384))
        check(d, "FAIL", "server-crypto", "the chain needs %s, which this build (%s) leaves out",
              sh->rsa && !rsa ? "RSA" : "P-384", b->profile);
    else
        check(d, "PASS", "server-crypto", "this build verifies the chain's %s signatures",
              sh->rsa ? "RSA-4096/RSA-2048" : "ECDSA P-384");
    /* The largest record this build takes once connected: the input buffer; with variable
     * buffers, mbedTLS 3.6 shrinks it after the handshake to the fragment length it asked for,
     * or to the smaller buffer when it asked for none, whether or not the server agreed
     * (mbedtls_ssl_get_input_max_frag_len, MBEDTLS_TLS_EXT_ADV_CONTENT_LEN). */
    size_t record = b->in_content_len;
    long asked = (long)b->default_max_fragment;
    const char *mf = cli_get(a, "max-fragment");
    if (mf != NULL)
        asked = strcmp(mf, "none") == 0 ? 0 : strtol(mf, NULL, 10);
#if defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
    size_t shrunk = asked > 0 ? (size_t)asked : b->out_content_len;
    if (shrunk < record)
        record = shrunk;
#endif
    /* Azure's C2D topic: devices/{id}/messages/devicebound/ with $.mid, $.to and the ack
     * property; twin answers and desired patches: $iothub/twin/res/200/?$rid=N&$version=N. */
    const char *id = cli_get(a, "registration-id");
    size_t id_len = id != NULL ? strlen(id) : 36;
    size_t c2d_topic = 8 + id_len + 22 + 48 + 36 + 41 + id_len + 15;
    size_t twin_topic = 48;
    check(d, "INFO", "largest-message",
          "from a hub that ignores fragment length, one MQTT packet is one TLS record of at "
          "most %zu B here%s: this build receives cloud-to-device messages of up to %zu B of "
          "payload (device id of %zu characters, no application properties) and twin documents "
          "of up to %zu B; a larger one closes the connection (TLS_RECORD_TOO_LARGE). From a "
          "hub that honours it (preview)%s",
          record,
          record < b->in_content_len ? " (mbedTLS shrinks the input buffer once connected)" : "",
          largest_payload(record, c2d_topic), id_len, largest_payload(record, twin_topic),
          asked > 0 ? ", up to the session's receive buffer" : ": the same (none is asked for)");
}

static int finish(const doctor *d)
{
    if (d->json)
        printf("],\"fails\":%d,\"warnings\":%d}\n", d->fails, d->warns);
    else
        printf("%d FAIL, %d WARN\n", d->fails, d->warns);
    return d->fails ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

int cmd_doctor(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&doctor_cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    doctor d = {.json = cli_has(&a, "json"), .first = true};
    tether_heap_use_system(0); /* before the first mbedTLS allocation: every byte counted */
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    /* --offline judges this build against a known server without ids or network. */
    bool offline = cli_has(&a, "offline");
    const char *given_scope = cli_get(&a, "id-scope");
    char scope[32], reg_buf[129];
    snprintf(scope, sizeof scope, "%s", given_scope != NULL ? given_scope : "");
    const char *reg_id = cli_get(&a, "registration-id");
    if (!offline) {
        rc = cli_provisioning_ids(&a, scope, sizeof scope, reg_buf, sizeof reg_buf);
        if (rc >= 0)
            return rc;
        reg_id = reg_buf;
    }
    long timeout_s;
    if (!cli_get_long(&a, "timeout", 120, 1, 86400, &timeout_s))
        return CLI_EXIT_USAGE;
    if (d.json)
        printf("{\"profile\":\"%s\",\"checks\":[", b.profile);

    /* --sntp-server corrects tether's clock first, as on every connecting command:
     * the certificate dates are read on it. */
    const char *sntp = cli_get(&a, "sntp-server");
    if (sntp != NULL) {
        tether_status ts = cli_sync_clock(sntp, false, false);
        if (ts == TETHER_OK)
            check(&d, "PASS", "sntp", "clock set from %s", sntp);
        else
            check(&d, "FAIL", "sntp", "%s: %s (%s)", sntp, tether_status_name(ts),
                  tether_status_message(ts));
    }

    if (cli_has(&a, "cafile"))
        check_trust(&d, &a);
    else if (cli_has(&a, "insecure"))
        check(&d, "WARN", "trust", "--insecure: the server is NOT verified (tests only)");
    else if (!offline)
        check(&d, "FAIL", "trust", "no --cafile: tether verifies the server and needs its root");

    if (cli_has(&a, "cert")) {
        if (!cli_has(&a, "key"))
            check(&d, "FAIL", "key", "--cert needs --key");
        else
            check_x509(&d, &a, &b, reg_id);
    } else if (cli_has(&a, "symmetric-key") || cli_has(&a, "group-key")) {
        char token[512];
        size_t len;
        const char *key = cli_get(&a, "symmetric-key");
        char derived[64];
        tether_status st = TETHER_OK;
        if (key == NULL) {
            st = tether_sas_derive_device_key(cli_get(&a, "group-key"), reg_id, derived,
                                              sizeof derived - 1, &len);
            derived[st == TETHER_OK ? len : 0] = 0;
            key = derived;
        }
        if (st == TETHER_OK)
            st = tether_sas_dps_token(scope, reg_id, key, (uint64_t)tether_clock_unix_s() + 3600,
                                      token, sizeof token, &len);
        if (st == TETHER_OK)
            check(&d, "PASS", "key", "symmetric key is valid base64; a DPS token can be signed");
        else
            check(&d, "FAIL", "key", "%s: %s", tether_status_name(st), tether_status_hint(st));
    } else if (!offline) {
        check(&d, "FAIL", "credentials", "give --cert/--key, --symmetric-key or --group-key");
    }

    char now[40];
    format_now(now, sizeof now);
    if (tether_clock_is_set(tether_clock_unix_s()))
        check(&d, "PASS", "clock", "clock is set: %s", now);
    else
        check(&d, "FAIL", "clock",
              "the clock reads %s, before this tether was built: sync time first (--sntp-server)",
              now);

    /* The network. */
    char host[256], dial[256];
    uint16_t port = 8883, dial_port = 8883;
    const char *endpoint = cli_get(&a, "endpoint");
    if (!cli_split_host_port(endpoint ? endpoint : TETHER_DPS_GLOBAL_ENDPOINT, host, sizeof host,
                             &port, 8883)) {
        fprintf(stderr, "tether: --endpoint wants HOST[:PORT]\n");
        return CLI_EXIT_USAGE;
    }
    check_server_fit(&d, &a, &b, host);
    if (offline)
        return finish(&d);
    snprintf(dial, sizeof dial, "%s", host);
    dial_port = port;
    if (cli_get(&a, "connect-to") &&
        !cli_split_host_port(cli_get(&a, "connect-to"), dial, sizeof dial, &dial_port, 8883)) {
        fprintf(stderr, "tether: --connect-to wants HOST:PORT\n");
        return CLI_EXIT_USAGE;
    }
    tether_socket sock;
    tether_status st = tether_port_tcp_connect(&sock, dial, dial_port, 5000);
    if (st == TETHER_OK) {
        check(&d, "PASS", "network", "DNS and TCP: %s -> %s, port %u open (%u ms)", dial,
              sock.address, (unsigned)dial_port, (unsigned)sock.connect_ms);
        tether_port_tcp_close(&sock);
    } else {
        check(&d, "FAIL", "network", "%s:%u: %s (%s)", dial, (unsigned)dial_port,
              tether_status_name(st), tether_status_message(st));
    }

    /* A real handshake, then a registration. */
    cli_tls conn;
    bool can_go = d.fails == 0 || cli_has(&a, "force");
    if (!can_go) {
        check(&d, "SKIP", "handshake", "handshake (fix the FAIL above first, or --force)");
    } else if ((rc = cli_tls_setup(&conn, &a, NULL)) >= 0) {
        check(&d, "FAIL", "handshake", "the credentials could not be loaded (see above)");
    } else {
        conn.opts.host = host;
        conn.opts.connect_host = strcmp(dial, host) ? dial : NULL;
        conn.opts.port = dial_port;
        conn.opts.on_stage = trace;
        conn.opts.on_stage_context = &d;
        if (!d.json)
            printf("....  TLS handshake with %s:\n", host);
        st = tether_tls_connect(&conn.tls, &conn.opts);
        const tether_tls_diag *diag = tether_tls_last_diag(&conn.tls);
        if (st == TETHER_OK) {
            check(&d, "PASS", "handshake", "handshake %s %s: heap peak %zu B, %zu B once connected",
                  tether_tls_version_name(&conn.tls), tether_tls_ciphersuite_name(&conn.tls),
                  diag->heap_peak, diag->heap_in_use);
            tether_tls_close(&conn.tls);
            if (conn.arena == NULL)
                measure_arena(&d, &a, &conn.opts);
        } else {
            char text[2048];
            tether_tls_describe(diag, text, sizeof text);
            /* The first line on the FAIL line; the explanation under it, as tether prints it. */
            char *rest = strchr(text, '\n');
            if (rest != NULL && !d.json)
                *rest++ = 0;
            check(&d, "FAIL", "handshake", "%s", text);
            if (rest != NULL && !d.json)
                printf("%s", rest);
        }
        if (st == TETHER_OK && !cli_has(&a, "no-register")) {
            static tether_dps_session dps;
            tether_dps_config cfg = tether_dps_config_default();
            char key[64] = "";
            cfg.endpoint = host;
            cfg.port = dial_port;
            cfg.connect_to = conn.opts.connect_host;
            cfg.id_scope = scope;
            cfg.registration_id = reg_id;
            cfg.sas_key = cli_get(&a, "symmetric-key");
            if (cli_get(&a, "group-key")) {
                size_t len = 0;
                if (tether_sas_derive_device_key(cli_get(&a, "group-key"), reg_id, key,
                                                 sizeof key - 1, &len) == TETHER_OK)
                    key[len] = 0;
                cfg.sas_key = key;
            }
            cfg.payload = cli_get(&a, "payload");
            cfg.timeout_ms = (uint32_t)timeout_s * 1000u;
            cfg.tls = conn.opts;
            cfg.tls.on_stage = NULL;
            tether_dps_result r;
            st = tether_dps_register(&dps, &conn.tls, &cfg, &r);
            if (st == TETHER_OK)
                check(&d, "PASS", "register",
                      "DPS assigned %s to %s in %.1f s (not saved: use tether register)",
                      r.device_id, r.assigned_hub, (double)r.elapsed_ms / 1000.0);
            else
                check(&d, "FAIL", "register", "%s: %s%s%s; fix: %s", tether_status_name(st),
                      tether_status_message(st), r.error_code ? "; DPS errorCode " : "",
                      r.error_code ? r.error_message : "", tether_status_hint(st));
            if (st != TETHER_OK && !d.json)
                cli_dps_details(stdout, false, &r); /* the status, the response as it came */
        } else if (st == TETHER_OK) {
            check(&d, "SKIP", "register", "registration (--no-register)");
        }
        cli_tls_free(&conn);
    }
    return finish(&d);
}
