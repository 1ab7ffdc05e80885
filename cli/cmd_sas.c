/* `tether sas dps|hub|derive-key`: tokens and derived keys, like az iot hub generate-sas-token. */
#include <string.h>

#include "cli.h"
#include "tether/port.h"
#include "tether/sntp.h"
#include "tether/sas.h"

static const cli_option sas_options[] = {
    {"id-scope", "SCOPE", "dps: the DPS id scope"},
    {"registration-id", "ID", "dps, derive-key: the registration id"},
    {"hub", "HOST", "hub: the hub host name"},
    {"device-id", "ID", "hub: the device id"},
    {"module-id", "ID", "hub: the module id, for a module token"},
    {"key", "KEY", "dps, hub: the device's key (base64)"},
    {"group-key", "KEY", "derive-key: the enrollment group's key (base64)"},
    {"ttl", "S", "dps, hub: lifetime in seconds (default 3600)"},
    {"json", NULL, "print one JSON document"},
    {NULL, NULL, NULL},
};
static const cli_option *const sas_sets[] = {sas_options, NULL};
static const cli_command sas_cmd = {
    "tether sas dps|hub|derive-key [options]",
    "Prints a SAS token for DPS (--id-scope --registration-id --key) or a hub (--hub\n"
    "--device-id --key), or the device key of a symmetric-key group enrollment (--group-key\n"
    "--registration-id), as a device computes them.",
    sas_sets, 1};

int cmd_sas(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&sas_cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    if (a.positional_count != 1) {
        fprintf(stderr, "tether: sas wants one of dps, hub, derive-key (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    const char *what = a.positional[0];
    long ttl;
    if (!cli_get_long(&a, "ttl", 3600, 1, 31536000, &ttl))
        return CLI_EXIT_USAGE;
    char out[1024];
    size_t len = 0;
    tether_status st;
    uint64_t expiry = (uint64_t)tether_clock_unix_s() + (uint64_t)ttl;
    if (strcmp(what, "derive-key") == 0) {
        if (!cli_get(&a, "group-key") || !cli_get(&a, "registration-id")) {
            fprintf(stderr, "tether: derive-key needs --group-key and --registration-id\n");
            return CLI_EXIT_USAGE;
        }
        st = tether_sas_derive_device_key(cli_get(&a, "group-key"), cli_get(&a, "registration-id"),
                                          out, sizeof out - 1, &len);
    } else if (strcmp(what, "dps") == 0) {
        if (!cli_get(&a, "id-scope") || !cli_get(&a, "registration-id") || !cli_get(&a, "key")) {
            fprintf(stderr, "tether: sas dps needs --id-scope, --registration-id and --key\n");
            return CLI_EXIT_USAGE;
        }
        st = tether_sas_dps_token(cli_get(&a, "id-scope"), cli_get(&a, "registration-id"),
                                  cli_get(&a, "key"), expiry, out, sizeof out - 1, &len);
    } else if (strcmp(what, "hub") == 0) {
        if (!cli_get(&a, "hub") || !cli_get(&a, "device-id") || !cli_get(&a, "key")) {
            fprintf(stderr, "tether: sas hub needs --hub, --device-id and --key\n");
            return CLI_EXIT_USAGE;
        }
        tether_hub_identity id = {cli_get(&a, "hub"), cli_get(&a, "device-id"),
                                  cli_get(&a, "module-id")};
        st = tether_sas_hub_token(&id, cli_get(&a, "key"), expiry, out, sizeof out - 1, &len);
    } else {
        fprintf(stderr, "tether: unknown 'sas %s' (dps, hub or derive-key)\n", what);
        return CLI_EXIT_USAGE;
    }
    if (st != TETHER_OK) {
        fprintf(stderr, "error %s\n  %s\n  fix: %s\n", tether_status_name(st),
                tether_status_message(st), tether_status_hint(st));
        return CLI_EXIT_FAILED;
    }
    out[len] = 0;
    if (cli_has(&a, "json")) {
        printf("{\"%s\":", strcmp(what, "derive-key") == 0 ? "key" : "sas");
        cli_json_string(stdout, out, len);
        if (strcmp(what, "derive-key") != 0)
            printf(",\"expiry\":%llu", (unsigned long long)expiry);
        printf("}\n");
    } else {
        printf("%s\n", out);
    }
    return CLI_EXIT_OK;
}
