/* `tether explain`: a status name or an mbedTLS code, in words. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_option explain_options[] = {
    {"json", NULL, "print one JSON document"},
    {NULL, NULL, NULL},
};
static const cli_option *const explain_sets[] = {explain_options, NULL};
static const cli_command explain_cmd = {
    "tether explain NAME|CODE",
    "Explains a tether status name (TLS_CERT_CHAIN_TOO_LARGE) or an mbedTLS error code\n"
    "(-0x7280, 0x7280, -29312), splitting combined codes into their parts.",
    explain_sets, 1};

static void explain_status(tether_status st, bool json)
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

static bool parse_code(const char *s, long *out)
{
    bool neg = false;
    if (*s == '-') {
        neg = true;
        s++;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0) ? 16 : 10);
    if (errno || end == s || *end || v < 0 || v > 0xFFFF)
        return false;
    *out = -v; /* mbedTLS codes are negative; users paste them either way. */
    (void)neg;
    return true;
}

static void explain_mbedtls(int code, bool json)
{
    int high, low;
    tether_mbedtls_split(code, &high, &low);
    char text[160];
    tether_mbedtls_text(code, text, sizeof text);
    if (json) {
        printf("{\"kind\":\"mbedtls\",\"code\":%d,\"high\":%d,\"low\":%d,\"text\":", code, high,
               low);
        cli_json_string(stdout, text, strlen(text));
        printf("}\n");
        return;
    }
    printf("mbedTLS -0x%04X: %s\n", (unsigned)-code, text);
    if (high && low) {
        char part[160];
        tether_mbedtls_text(high, part, sizeof part);
        printf("  high-level part -0x%04X: %s\n", (unsigned)-high, part);
        tether_mbedtls_text(low, part, sizeof part);
        printf("  low-level part  -0x%04X: %s\n", (unsigned)-low, part);
    }
}

int cmd_explain(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&explain_cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.positional_count != 1) {
        fprintf(stderr, "tether: explain wants one name or code (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    const char *what = a.positional[0];
    bool json = cli_has(&a, "json");
    tether_status st;
    if (tether_status_from_name(what, &st) == TETHER_OK) {
        explain_status(st, json);
        return CLI_EXIT_OK;
    }
    long code;
    if (parse_code(what, &code)) {
        explain_mbedtls((int)code, json);
        return CLI_EXIT_OK;
    }
    fprintf(stderr, "tether: '%s' is neither a tether status name nor an mbedTLS code\n", what);
    return CLI_EXIT_USAGE;
}
