/* `tether time sync`: ask an SNTP server for the time; --sntp-server on connecting commands. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tether/port.h"
#include "tether/sntp.h"

bool cli_split_host_port(const char *text, char *host, size_t host_cap, uint16_t *port,
                         uint16_t default_port)
{
    const char *colon = strrchr(text, ':');
    const char *host_start = text;
    size_t host_len;
    *port = default_port;
    if (text[0] == '[') { /* [::1]:123 */
        const char *close = strchr(text, ']');
        if (close == NULL)
            return false;
        host_start = text + 1;
        host_len = (size_t)(close - host_start);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else if (colon != NULL && strchr(text, ':') != colon) {
        colon = NULL; /* a bare IPv6 address */
        host_len = strlen(text);
    } else {
        host_len = colon ? (size_t)(colon - text) : strlen(text);
    }
    if (colon != NULL) {
        char *end = NULL;
        long p = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end != 0 || p < 1 || p > 65535)
            return false;
        *port = (uint16_t)p;
    }
    if (host_len == 0 || host_len >= host_cap)
        return false;
    memcpy(host, host_start, host_len);
    host[host_len] = 0;
    return true;
}

/* The failure, with the kiss code a kiss-o'-death carries (its hint points to it). */
static void print_failure(tether_status st, const char *server, const tether_sntp_result *r,
                          bool json)
{
    const char *kiss = st == TETHER_SNTP_KISS_OF_DEATH ? r->reply.ref_id : "";
    if (json) {
        printf("{\"status\":\"%s\",\"server\":", tether_status_name(st));
        cli_json_string(stdout, server, strlen(server));
        printf(",\"message\":");
        cli_json_string(stdout, tether_status_message(st), strlen(tether_status_message(st)));
        printf(",\"hint\":");
        cli_json_string(stdout, tether_status_hint(st), strlen(tether_status_hint(st)));
        printf(",\"kiss_code\":");
        cli_json_string(stdout, kiss, strlen(kiss));
        printf("}\n");
        return;
    }
    fprintf(stderr, "error %s asking %s for the time\n  %s\n  fix: %s\n", tether_status_name(st),
            server, tether_status_message(st), tether_status_hint(st));
    if (st == TETHER_SNTP_KISS_OF_DEATH)
        fprintf(stderr, "  kiss code: %s\n", kiss[0] ? kiss : "(not printable)");
}

static tether_status query(const char *server, tether_sntp_result *r)
{
    char host[256];
    uint16_t port;
    if (!cli_split_host_port(server, host, sizeof host, &port, 123))
        return TETHER_INVALID_ARGUMENT;
    return tether_sntp_query(host, port, 3000, r);
}

tether_status cli_sync_clock(const char *server, bool verbose, bool json)
{
    tether_sntp_result r;
    tether_status st = query(server, &r);
    if (st != TETHER_OK) {
        print_failure(st, server, &r, json);
        return st;
    }
    /* The offset was measured against tether's clock, which may be corrected already (doctor
     * syncs, then the connection's set-up syncs again): add it, never replace. */
    tether_clock_set_offset_ms(tether_clock_offset_ms() + r.offset_ms);
    if (verbose)
        fprintf(stderr, "clock set from %s (stratum %u): offset %+lld ms, round trip %lld ms\n",
                server, (unsigned)r.reply.stratum, (long long)r.offset_ms, (long long)r.delay_ms);
    return TETHER_OK;
}

static const cli_option time_options[] = {
    {"server", "HOST[:PORT]", "SNTP server (port 123 unless given)"},
    {"json", NULL, "print one JSON document"},
    {NULL, NULL, NULL},
};
static const cli_option *const time_sets[] = {time_options, NULL};
static const cli_command sync_cmd = {
    "tether time sync --server HOST[:PORT] [--json]",
    "Asks an SNTP server for the time and prints how far this clock is off, the round trip\n"
    "and the server's stratum. The system clock is not changed; connecting commands take\n"
    "--sntp-server to correct tether's own clock the same way before TLS.",
    time_sets, 0};

int cmd_time(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "sync") != 0) {
        if (argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
            cli_print_help(&sync_cmd);
            return CLI_EXIT_OK;
        }
        fprintf(stderr, "usage: %s\n", sync_cmd.usage);
        return CLI_EXIT_USAGE;
    }
    cli_args a;
    int rc = cli_parse(&sync_cmd, argc - 1, argv + 1, &a);
    if (rc >= 0)
        return rc;
    const char *server = cli_get(&a, "server");
    if (server == NULL) {
        fprintf(stderr, "tether: --server is required (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    bool json = cli_has(&a, "json");
    int64_t before = tether_clock_unix_s();
    tether_sntp_result r;
    tether_status st = query(server, &r);
    if (st == TETHER_INVALID_ARGUMENT) {
        fprintf(stderr, "tether: --server wants HOST or HOST:PORT, not '%s'\n", server);
        return CLI_EXIT_USAGE;
    }
    if (st != TETHER_OK) {
        print_failure(st, server, &r, json);
        return CLI_EXIT_FAILED;
    }
    if (json) {
        printf("{\"status\":\"OK\",\"server\":");
        cli_json_string(stdout, server, strlen(server));
        printf(",\"offset_ms\":%lld,\"delay_ms\":%lld,\"stratum\":%u,\"server_time_ms\":%lld,"
               "\"clock_was_set\":%s}\n",
               (long long)r.offset_ms, (long long)r.delay_ms, (unsigned)r.reply.stratum,
               (long long)r.reply.transmit_ms, tether_clock_is_set(before) ? "true" : "false");
    } else {
        printf("%s (stratum %u, reference %s): this clock is off by %+lld ms, round trip %lld ms\n",
               server, (unsigned)r.reply.stratum, r.reply.ref_id[0] ? r.reply.ref_id : "-",
               (long long)r.offset_ms, (long long)r.delay_ms);
        if (!tether_clock_is_set(before))
            printf("this clock reads earlier than the day tether was built: it was never set; "
                   "use --sntp-server on connecting commands\n");
    }
    return CLI_EXIT_OK;
}
