/* tether-cloud: `tether cloud …` and `tether pki …` exec this with `cloud` or `pki` first. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char cloud_usage[] =
    "usage: tether cloud COMMAND [ARGS] [--dir D]\n"
    "\n"
    "An Azure-compatible DPS and IoT Hub on this machine (Mosquitto + plugin, SQLite registry).\n"
    "State lives in D (default ./.tether) and survives down/up.\n"
    "\n"
    "  up [--port 8883] [--foreground] [--retry-after S]   start the cloud\n"
    "  down                                    stop it\n"
    "  status [--json]                         endpoint, id scope, CA file, hubs, the\n"
    "                                          /etc/hosts step for other SDKs\n"
    "  enrollment create|list|show|update|delete       individual enrollments\n"
    "  enrollment-group create|list|show|update|delete enrollment groups\n"
    "  hub create NAME | hub list              IoT hubs (one exists by default)\n"
    "  device list|show                        devices DPS assigned to hubs\n"
    "  monitor [--device ID] [--count N]       stream device-to-cloud messages\n"
    "  c2d send DEVICE MESSAGE [--props k=v&…] queue a cloud-to-device message\n"
    "  twin show|update DEVICE [--desired JSON] device twins\n"
    "  method invoke DEVICE NAME [--payload JSON] [--timeout S]  direct methods\n"
    "  fault set|clear|list                    faults on purpose (throttling, 5xx, …)\n"
    "  proxy --listen P --to HOST:PORT [...]   a TCP proxy that breaks connections on purpose\n"
    "\n"
    "Every command takes --help; listings and show commands take --json.\n"
    "Exit codes: 0 success, 1 error, 2 usage.\n";

static int cloud_main(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        fputs(cloud_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *c = argv[0];
    if (strcmp(c, "up") == 0) {
        return cmd_up(argc - 1, argv + 1);
    }
    if (strcmp(c, "down") == 0) {
        return cmd_down(argc - 1, argv + 1);
    }
    if (strcmp(c, "status") == 0) {
        return cmd_status(argc - 1, argv + 1);
    }
    if (strcmp(c, "enrollment") == 0) {
        return cmd_enrollment(argc - 1, argv + 1, false);
    }
    if (strcmp(c, "enrollment-group") == 0) {
        return cmd_enrollment(argc - 1, argv + 1, true);
    }
    if (strcmp(c, "hub") == 0) {
        return cmd_hub(argc - 1, argv + 1);
    }
    if (strcmp(c, "device") == 0) {
        return cmd_device(argc - 1, argv + 1);
    }
    if (strcmp(c, "c2d") == 0) {
        return cmd_c2d(argc - 1, argv + 1);
    }
    if (strcmp(c, "twin") == 0) {
        return cmd_twin(argc - 1, argv + 1);
    }
    if (strcmp(c, "method") == 0) {
        return cmd_method(argc - 1, argv + 1);
    }
    if (strcmp(c, "monitor") == 0) {
        return cmd_monitor(argc - 1, argv + 1);
    }
    if (strcmp(c, "fault") == 0) {
        return cmd_fault(argc - 1, argv + 1);
    }
    if (strcmp(c, "proxy") == 0) {
        return cmd_proxy(argc - 1, argv + 1);
    }
    fprintf(stderr, "error: unknown command 'tether cloud %s'\n\n%s", c, cloud_usage);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "cloud") == 0) {
        return cloud_main(argc - 2, argv + 2);
    }
    if (argc >= 2 && strcmp(argv[1], "pki") == 0) {
        return cmd_pki(argc - 2, argv + 2);
    }
    fprintf(stderr, "usage: tether cloud COMMAND ... | tether pki COMMAND ...\n"
                    "(tether-cloud is run by the tether command; see tether cloud --help)\n");
    return 2;
}
