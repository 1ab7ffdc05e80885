/* `tether explain`: a status name, an mbedTLS code (2.x and 3.x readings), verify flags, a
 * CONNACK code, or a DPS / IoT Hub error code, in words. `--all --markdown` writes the error
 * reference (docs/errors.md) from the same tables. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "explain_data.h"
#include "mbedtls/build_info.h"

static const cli_option explain_options[] = {
    {"all", NULL, "every tether status (with --markdown: the error reference)"},
    {"markdown", NULL, "with --all: write docs/errors.md"},
    {"json", NULL, "print one JSON document"},
    {NULL, NULL, NULL},
};
static const cli_option *const explain_sets[] = {explain_options, NULL};
static const cli_command explain_cmd = {
    "tether explain NAME | CODE | connack N | verify FLAGS | DPS-or-hub-code",
    "Explains a tether status name (TLS_CERT_CHAIN_TOO_LARGE), an mbedTLS code (-0x7500,\n"
    "0x7500, -29952: both the 2.x and the 3.x reading, combined codes split), MQTT CONNACK\n"
    "return codes (connack 5), X.509 verify flags (verify 0x08), and the six-digit error\n"
    "codes of DPS and IoT Hub (401002, 404103, 429001).",
    explain_sets, 2};

static void print_status(tether_status st, bool json)
{
    if (json) {
        printf("{\"kind\":\"status\",\"name\":\"%s\",\"message\":", tether_status_name(st));
        cli_json_string(stdout, tether_status_message(st), strlen(tether_status_message(st)));
        printf(",\"hint\":");
        cli_json_string(stdout, tether_status_hint(st), strlen(tether_status_hint(st)));
        printf("}\n");
        return;
    }
    printf("%s\n  what: %s\n  fix:  %s\n", tether_status_name(st), tether_status_message(st),
           tether_status_hint(st));
}

static bool parse_number(const char *s, long *out, bool *hex)
{
    bool neg = *s == '-';
    if (neg)
        s++;
    *hex = strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, *hex ? 16 : 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = neg ? -v : v;
    return true;
}

static const explain_code *mbedtls2_entry(int code)
{
    for (const explain_code *e = explain_mbedtls2; e->name; e++)
        if (e->code == code)
            return e;
    return NULL;
}

static void explain_mbedtls(int code, bool json)
{
    int high, low;
    tether_mbedtls_split(code, &high, &low);
    char text[160];
    tether_mbedtls_text(code, text, sizeof text);
    const explain_code *old = mbedtls2_entry(high ? high : code);
    if (json) {
        printf("{\"kind\":\"mbedtls\",\"code\":%d,\"high\":%d,\"low\":%d,\"mbedtls3\":", code, high,
               low);
        cli_json_string(stdout, text, strlen(text));
        if (old) {
            printf(",\"mbedtls2\":");
            cli_json_string(stdout, old->name, strlen(old->name));
        }
        for (const explain_mapping *m = explain_mbedtls_status; m->when; m++)
            if (m->code == (high ? high : code))
                printf(",\"tether\":\"%s\"", tether_status_name(m->status));
        printf("}\n");
        return;
    }
    printf("mbedTLS -0x%04X (%d)\n", (unsigned)-code, code);
    printf("  mbedTLS 3.x (this build, %s): %s\n", MBEDTLS_VERSION_STRING, text);
    if (old)
        printf("  mbedTLS 2.x (ESP-IDF v4 and older): %s: %s\n", old->name, old->meaning);
    if (high && low) {
        char part[160];
        tether_mbedtls_text(high, part, sizeof part);
        printf("  high-level part -0x%04X: %s\n", (unsigned)-high, part);
        tether_mbedtls_text(low, part, sizeof part);
        printf("  low-level part  -0x%04X: %s\n", (unsigned)-low, part);
    }
    for (const explain_mapping *m = explain_mbedtls_status; m->when; m++) {
        if (m->code != (high ? high : code))
            continue;
        printf("  tether reports it as %s%s (%s)\n    what: %s\n    fix:  %s\n",
               tether_status_name(m->status),
               m->major == 2   ? " in the 2.x reading"
               : m->major == 3 ? " in the 3.x reading"
                               : "",
               m->when, tether_status_message(m->status), tether_status_hint(m->status));
    }
}

static void explain_connack(long code, bool json)
{
    static const tether_status map[] = {
        TETHER_OK,
        TETHER_MQTT_CONNACK_PROTOCOL_VERSION,
        TETHER_MQTT_CONNACK_IDENTIFIER_REJECTED,
        TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE,
        TETHER_MQTT_CONNACK_BAD_CREDENTIALS,
        TETHER_MQTT_CONNACK_NOT_AUTHORIZED,
    };
    if (!json)
        printf("MQTT 3.1.1 CONNACK return code %ld\n", code);
    if (code >= 0 && code <= 5)
        print_status(map[code], json);
    else if (!json)
        printf("  not an MQTT 3.1.1 return code (0..5)\n");
}

static int explain_azure_code(unsigned long code, bool json)
{
    const explain_azure *hub = NULL, *dps = NULL;
    for (const explain_azure *e = explain_hub_codes; e->name; e++)
        if (e->code == code)
            hub = e;
    for (const explain_azure *e = explain_dps_codes; e->name; e++)
        if (e->code == code)
            dps = e;
    unsigned http = (unsigned)(code / 1000);
    if (json) {
        printf("{\"kind\":\"azure\",\"code\":%lu,\"http\":%u", code, http);
        if (dps)
            printf(",\"dps\":\"%s\"", dps->name);
        if (hub)
            printf(",\"hub\":\"%s\"", hub->name);
        printf(",\"class\":");
        cli_json_string(stdout, explain_dps_class(http), strlen(explain_dps_class(http)));
        printf("}\n");
        return CLI_EXIT_OK;
    }
    printf("Azure error code %lu (HTTP class %u)\n", code, http);
    if (dps)
        printf("  DPS: %s: %s\n    fix: %s\n", dps->name, dps->meaning, dps->fix);
    if (hub)
        printf("  IoT Hub: %s: %s\n    fix: %s\n", hub->name, hub->meaning, hub->fix);
    printf("  class %u: %s\n", http, explain_dps_class(http));
    return CLI_EXIT_OK;
}

static void print_reference(void)
{
    printf("# tether error reference\n\n"
           "Generated by `tether explain --all --markdown` from the status table "
           "(src/core/status.c) and the tables of cli/explain_data.c; do not edit by hand.\n\n"
           "Every failure tether reports has one of these names, a message and a fix. "
           "`tether explain NAME` prints one; `tether explain CODE` explains an mbedTLS code, "
           "a CONNACK code, verify flags or a DPS / IoT Hub error code.\n\n"
           "## Statuses\n\n| name | what happened | what to change |\n| --- | --- | --- |\n");
    for (int i = 1; i < TETHER_STATUS_COUNT; i++)
        printf("| `%s` | %s | %s |\n", tether_status_name((tether_status)i),
               tether_status_message((tether_status)i), tether_status_hint((tether_status)i));
    printf("\n## mbedTLS codes and the status tether reports\n\n"
           "| code | mbedTLS 2.x name | becomes | when |\n| --- | --- | --- | --- |\n");
    for (const explain_mapping *m = explain_mbedtls_status; m->when; m++) {
        const explain_code *old = mbedtls2_entry(m->code);
        printf("| -0x%04X | %s | `%s`%s | %s |\n", (unsigned)-m->code, old ? old->name : "",
               tether_status_name(m->status),
               m->major == 2   ? " (2.x)"
               : m->major == 3 ? " (3.x)"
                               : "",
               m->when);
    }
    printf("\n## DPS error codes\n\n| code | name | meaning | fix |\n| --- | --- | --- | --- |\n");
    for (const explain_azure *e = explain_dps_codes; e->name; e++)
        printf("| %u | %s | %s | %s |\n", e->code, e->name, e->meaning, e->fix);
    printf("\n## IoT Hub error codes\n\n| code | name | meaning | fix |\n| --- | --- | --- | --- "
           "|\n");
    for (const explain_azure *e = explain_hub_codes; e->name; e++)
        printf("| %u | %s | %s | %s |\n", e->code, e->name, e->meaning, e->fix);
}

int cmd_explain(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&explain_cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    bool json = cli_has(&a, "json");
    if (cli_has(&a, "all")) {
        if (cli_has(&a, "markdown")) {
            print_reference();
        } else {
            for (int i = 1; i < TETHER_STATUS_COUNT; i++)
                print_status((tether_status)i, json);
        }
        return CLI_EXIT_OK;
    }
    if (a.positional_count == 0)
        return fprintf(stderr, "tether: explain wants a name or a code (see --help)\n"),
               CLI_EXIT_USAGE;
    /* "connack 5" / "connack:5", "verify 0x08" / "verify:0x08" */
    char word[32] = "";
    const char *value = a.positional_count == 2 ? a.positional[1] : NULL;
    const char *colon = strchr(a.positional[0], ':');
    if (colon && (size_t)(colon - a.positional[0]) < sizeof word) {
        memcpy(word, a.positional[0], (size_t)(colon - a.positional[0]));
        value = colon + 1;
    } else if (value) {
        snprintf(word, sizeof word, "%s", a.positional[0]);
    }
    long n;
    bool hex;
    if (word[0]) {
        if (!value || !parse_number(value, &n, &hex))
            return fprintf(stderr, "tether: '%s' wants a number\n", word), CLI_EXIT_USAGE;
        if (strcmp(word, "connack") == 0 || strcmp(word, "CONNACK") == 0) {
            explain_connack(n, json);
            return CLI_EXIT_OK;
        }
        if (strcmp(word, "verify") == 0 || strcmp(word, "flags") == 0) {
            char text[2048];
            size_t count = tether_tls_describe_verify_flags((uint32_t)n, text, sizeof text);
            if (json) {
                printf("{\"kind\":\"verify\",\"flags\":%ld,\"count\":%zu,\"text\":", n, count);
                cli_json_string(stdout, text, strlen(text));
                printf("}\n");
            } else {
                printf("X.509 verify flags 0x%08lx (%zu set)\n%s", n, count, text);
            }
            return CLI_EXIT_OK;
        }
        return fprintf(stderr, "tether: unknown kind '%s' (connack, verify)\n", word),
               CLI_EXIT_USAGE;
    }
    const char *what = a.positional[0];
    tether_status st;
    if (tether_status_from_name(what, &st) == TETHER_OK) {
        print_status(st, json);
        return CLI_EXIT_OK;
    }
    if (parse_number(what, &n, &hex)) {
        if (!hex && n >= 100000 && n <= 599999)
            return explain_azure_code((unsigned long)n, json);
        long magnitude = n < 0 ? -n : n;
        if (magnitude > 0 && magnitude <= 0x7FFF) {
            explain_mbedtls((int)-magnitude, json); /* codes are negative; pasted either way */
            return CLI_EXIT_OK;
        }
    }
    fprintf(stderr, "tether: '%s' is not a tether status, an mbedTLS code or an Azure error code\n",
            what);
    return CLI_EXIT_USAGE;
}
