/* The tether command: dispatch to subcommands; cloud and pki live in tether-cloud. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void print_version(void)
{
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    printf("tether %s\n", TETHER_VERSION);
    printf("mbedTLS %s (Debian source package %s)\n", b.mbedtls_version, b.debian_version);
    printf("profile %s: TLS input buffer %zu bytes, output buffer %zu bytes, TLS 1.2%s", b.profile,
           b.in_content_len, b.out_content_len, b.tls13 ? " and 1.3" : " only");
    if (b.default_max_fragment)
        printf(", asks for %u-byte records", (unsigned)b.default_max_fragment);
    if (b.variable_buffers)
        printf(", buffers shrink after the handshake");
    printf("\n");
}

static void print_help(void)
{
    printf("usage: tether COMMAND [options]\n\n"
           "Takes a device from fresh-from-the-factory to connected to its Azure IoT hub, in a\n"
           "known memory budget, and explains every failure.\n\n"
           "commands:\n"
           "  register         provision the device through DPS and store the result\n"
           "  run              connect to the hub: telemetry, c2d, twin, methods\n"
           "  send             send one telemetry message and exit\n"
           "  quickstart       the whole flow against a local cloud, in one command\n"
           "  doctor           check files, clock, chain size, network, handshake, DPS\n"
           "  sas dps|hub|derive-key   SAS tokens and group-derived device keys\n"
           "  mqtt pub|sub     publish or subscribe over tether's TLS + MQTT stack\n"
           "  explain CODE     a status name or mbedTLS code in words\n"
           "  time sync        ask an SNTP server how far this clock is off\n"
           "  cloud ...        the local Azure-compatible DPS and IoT Hub\n"
           "  pki ...          certificates for the local cloud and its devices\n"
           "  --version        tether, mbedTLS and the TLS profile of this build\n"
           "  --help           this text; COMMAND --help for each command\n\n"
           "exit status:\n"
           "  0  success\n"
           "  1  the operation failed; the status name, what happened and the fix are printed\n"
           "  2  the command line is wrong\n");
}

/* `tether cloud` and `tether pki` are host tools with their own dependencies (OpenSSL,
 * SQLite): they live in tether-cloud beside this binary. */
static int exec_cloud(int argc, char **argv)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("tether: cannot find its own path");
        return CLI_EXIT_FAILED;
    }
    self[n] = 0;
    char *slash = strrchr(self, '/');
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%.*s/tether-cloud", slash ? (int)(slash - self) : 1,
             slash ? self : ".");
    argv[-1] = path; /* argv[0] stays the command word: tether-cloud cloud|pki ... */
    (void)argc;
    execv(path, argv - 1);
    fprintf(stderr, "tether: cannot run %s: is the local cloud built? (cmake --build build)\n",
            path);
    return CLI_EXIT_FAILED;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_help();
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_version();
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "mqtt") == 0)
        return cmd_mqtt(argc - 2, argv + 2);
    if (strcmp(cmd, "register") == 0 || strcmp(cmd, "run") == 0 || strcmp(cmd, "send") == 0)
        return cmd_device(cmd, argc - 2, argv + 2);
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor(argc - 2, argv + 2);
    if (strcmp(cmd, "sas") == 0)
        return cmd_sas(argc - 2, argv + 2);
    if (strcmp(cmd, "quickstart") == 0)
        return cmd_quickstart(argc - 2, argv + 2);
    if (strcmp(cmd, "time") == 0)
        return cmd_time(argc - 2, argv + 2);
    if (strcmp(cmd, "explain") == 0)
        return cmd_explain(argc - 2, argv + 2);
    if (strcmp(cmd, "cloud") == 0 || strcmp(cmd, "pki") == 0)
        return exec_cloud(argc - 1, argv + 1);
    fprintf(stderr, "tether: unknown command '%s' (see tether --help)\n", cmd);
    return CLI_EXIT_USAGE;
}
