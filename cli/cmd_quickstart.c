/* `tether quickstart`: the whole flow on one machine. It starts the local cloud (unless one
 * runs), makes and enrolls a device certificate, registers, connects to the hub, sends
 * telemetry, answers a method the cloud invokes, reports a twin property, receives a C2D
 * message queued while it was offline, prints a summary and stops the cloud it started.
 * The cloud side is driven through `tether cloud` in child processes, as a user would. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "cli.h"
#include "tether/json.h"

static const cli_option quickstart_options[] = {
    {"dir", "D", "the local cloud's directory (default .tether)"},
    {"port", "P", "the cloud's port when it is started here (default 8883, else a free one)"},
    {"registration-id", "ID", "the device (default quickstart-device)"},
    {"count", "N", "telemetry messages to send (default 5)"},
    {"keep-cloud", NULL, "leave the cloud running at the end"},
    {NULL, NULL, NULL},
};
static const cli_option *const quickstart_sets[] = {quickstart_options, NULL};
static const cli_command quickstart_cmd = {
    "tether quickstart [--dir D] [--port P] [--registration-id ID] [--count N] [--keep-cloud]",
    "Runs the whole flow against a local cloud: DPS registration with an X.509 certificate,\n"
    "the stored result, then the hub: telemetry, a direct method, a twin property and a\n"
    "cloud-to-device message. Nothing leaves this machine (127.0.0.1 only).",
    quickstart_sets, 0};

static char self_dir[PATH_MAX];
static char self_path[PATH_MAX];

static bool find_self(void)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0)
        return false;
    self_path[n] = 0;
    snprintf(self_dir, sizeof self_dir, "%s", self_path);
    char *slash = strrchr(self_dir, '/');
    if (slash)
        *slash = 0;
    return true;
}

/* Runs a command; its stdout goes into @p out (NUL-terminated, may be NULL to pass it
 * through), stderr passes through. Returns the exit status, or -1. */
static int run_command(char *const argv[], char *out, size_t cap, bool quiet)
{
    int fds[2] = {-1, -1};
    if (out && pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        if (out) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            close(fds[1]);
        }
        if (quiet) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0)
                dup2(null, STDERR_FILENO);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    size_t used = 0;
    if (out) {
        close(fds[1]);
        ssize_t n;
        while ((n = read(fds[0], out + used, cap - 1 - used)) > 0)
            used += (size_t)n;
        close(fds[0]);
        out[used] = 0;
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run_capture(char *const argv[], char *out, size_t cap)
{
    return run_command(argv, out, cap, false);
}

/* Removes the layout whitespace of a JSON text in place (strings untouched). */
static void compact_json(char *s)
{
    char *w = s;
    bool in_string = false;
    for (char *r = s; *r; r++) {
        if (in_string) {
            *w++ = *r;
            if (*r == '\\' && r[1])
                *w++ = *++r;
            else if (*r == '"')
                in_string = false;
        } else if (*r == '"') {
            in_string = true;
            *w++ = *r;
        } else if (*r != ' ' && *r != '\t' && *r != '\n' && *r != '\r') {
            *w++ = *r;
        }
    }
    *w = 0;
}

static char cloud_bin[PATH_MAX + 16];

#define CLOUD(...)                                                                                 \
    (char *const[])                                                                                \
    {                                                                                              \
        cloud_bin, __VA_ARGS__, NULL                                                               \
    }

/* A JSON document's string or integer member, for reading the children's --json output. */
static bool json_field(const char *text, const char *path, char *buf, size_t cap, int64_t *num)
{
    tether_json_token tokens[256];
    tether_json doc;
    size_t index, len = 0;
    if (tether_json_parse(text, strlen(text), tokens, 256, &doc) != TETHER_OK ||
        tether_json_find(&doc, 0, path, &index) != TETHER_OK)
        return false;
    if (num)
        return tether_json_get_int(&doc, index, num) == TETHER_OK;
    tether_view raw;
    if (tether_json_type_of(&doc, index) == TETHER_JSON_STRING) {
        if (tether_json_get_string(&doc, index, buf, cap - 1, &len) != TETHER_OK)
            return false;
    } else if (tether_json_get_raw(&doc, index, &raw) == TETHER_OK && raw.len < cap) {
        memcpy(buf, raw.ptr, raw.len);
        len = raw.len;
    } else {
        return false;
    }
    buf[len] = 0;
    compact_json(buf);
    return true;
}

static bool port_free(long port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static long pick_port(long wanted)
{
    if (port_free(wanted))
        return wanted;
    for (long p = 18883; p < 18983; p++)
        if (port_free(p))
            return p;
    return wanted;
}

static char out[65536];

int cmd_quickstart(int argc, char **argv)
{
    cli_args a;
    int rc = cli_parse(&quickstart_cmd, argc, argv, &a);
    if (rc >= 0)
        return rc;
    long port, count;
    if (!cli_get_long(&a, "port", 8883, 1, 65535, &port) ||
        !cli_get_long(&a, "count", 5, 1, 1000, &count))
        return CLI_EXIT_USAGE;
    const char *dir = cli_get(&a, "dir") ? cli_get(&a, "dir") : ".tether";
    const char *id =
        cli_get(&a, "registration-id") ? cli_get(&a, "registration-id") : "quickstart-device";
    if (!find_self())
        return CLI_EXIT_FAILED;
    snprintf(cloud_bin, sizeof cloud_bin, "%s/tether-cloud", self_dir);
    if (access(cloud_bin, X_OK) != 0) {
        fprintf(stderr, "tether: %s is missing: build the local cloud (scripts/build)\n",
                cloud_bin);
        return CLI_EXIT_FAILED;
    }
    char dir_arg[PATH_MAX];
    snprintf(dir_arg, sizeof dir_arg, "%s", dir);

    /* 1. The cloud. */
    bool started = false;
    char port_text[16], scope[64] = "", ca[PATH_MAX] = "";
    int64_t running_port = 0;
    if (run_capture(CLOUD("cloud", "status", "--dir", dir_arg, "--json"), out, sizeof out) == 0 &&
        strstr(out, "\"running\":\ttrue") != NULL) {
        json_field(out, "port", NULL, 0, &running_port);
        printf("== 1/6 the local cloud is already running in %s\n", dir);
    } else {
        port = pick_port(port);
        snprintf(port_text, sizeof port_text, "%ld", port);
        printf("== 1/6 starting the local cloud in %s on 127.0.0.1:%ld\n", dir, port);
        fflush(stdout);
        if (run_capture(CLOUD("cloud", "up", "--dir", dir_arg, "--port", port_text), NULL, 0) != 0)
            return CLI_EXIT_FAILED;
        started = true;
    }
    if (run_capture(CLOUD("cloud", "status", "--dir", dir_arg, "--json"), out, sizeof out) != 0 ||
        !json_field(out, "idScope", scope, sizeof scope, NULL) ||
        !json_field(out, "caFile", ca, sizeof ca, NULL) ||
        !json_field(out, "port", NULL, 0, &running_port)) {
        fprintf(stderr, "tether: cannot read the cloud's status\n");
        return CLI_EXIT_FAILED;
    }
    snprintf(port_text, sizeof port_text, "%lld", (long long)running_port);
    printf("   DPS endpoint localhost:%s, id scope %s, CA %s\n", port_text, scope, ca);

    /* 2. A device certificate, and 3. its enrollment (both kept when they exist). */
    char cert[PATH_MAX + 64], chain[PATH_MAX + 64], key[PATH_MAX + 64], state[PATH_MAX + 64];
    snprintf(cert, sizeof cert, "%s/devices/%s.pem", dir, id);
    snprintf(chain, sizeof chain, "%s/devices/%s.chain.pem", dir, id);
    snprintf(key, sizeof key, "%s/devices/%s.key", dir, id);
    snprintf(state, sizeof state, "%s/%s.state", dir, id);
    char idbuf[160];
    snprintf(idbuf, sizeof idbuf, "%s", id);
    if (access(cert, R_OK) != 0) {
        printf("== 2/6 a device certificate for %s (EC P-256, CN = registration id)\n", id);
        fflush(stdout);
        if (run_capture(CLOUD("pki", "device", idbuf, "--dir", dir_arg), out, sizeof out) != 0)
            goto fail;
    } else {
        printf("== 2/6 the device certificate %s exists\n", cert);
    }
    if (run_command(CLOUD("cloud", "enrollment", "show", idbuf, "--dir", dir_arg), out, sizeof out,
                    true) != 0) {
        printf("== 3/6 enrolling %s (X.509 individual enrollment)\n", id);
        fflush(stdout);
        if (run_capture(CLOUD("cloud", "enrollment", "create", "--registration-id", idbuf,
                              "--attestation", "x509", "--cert", cert, "--dir", dir_arg),
                        out, sizeof out) != 0)
            goto fail;
    } else {
        printf("== 3/6 %s is enrolled\n", id);
    }

    /* 4. Registration through DPS (this binary, as a device would run it). */
    char endpoint[64], via[64];
    snprintf(endpoint, sizeof endpoint, "localhost:%s", port_text);
    snprintf(via, sizeof via, "127.0.0.1:%s", port_text);
    printf("== 4/6 provisioning\n");
    fflush(stdout);
    char *const reg[] = {
        self_path,    "register", "--endpoint",        endpoint, "--connect-to", via,
        "--id-scope", scope,      "--registration-id", idbuf,    "--cert",       chain,
        "--key",      key,        "--cafile",          ca,       "--state",      state,
        NULL};
    if (run_capture(reg, NULL, 0) != 0)
        goto fail;

    /* 5. The hub: a C2D message waits for the device; once it is connected the cloud invokes
     * a method and changes a desired property. */
    printf("== 5/6 the hub: telemetry, a C2D message queued while offline, method \"ping\", a "
           "twin change\n");
    fflush(stdout);
    run_capture(
        CLOUD("cloud", "c2d", "send", idbuf, "hello from the local cloud", "--dir", dir_arg), out,
        sizeof out);
    char count_text[16];
    snprintf(count_text, sizeof count_text, "%ld", count);
    int fds[2];
    if (pipe(fds) != 0)
        goto fail;
    pid_t dev = fork();
    if (dev == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        char *const runv[] = {self_path,
                              "run",
                              "--endpoint",
                              endpoint,
                              "--connect-to",
                              via,
                              "--id-scope",
                              scope,
                              "--registration-id",
                              idbuf,
                              "--cert",
                              chain,
                              "--key",
                              key,
                              "--cafile",
                              ca,
                              "--state",
                              state,
                              "--message",
                              "{\"temperature\":21.{n}}",
                              "--count",
                              count_text,
                              "--interval",
                              "300",
                              "--duration",
                              "5",
                              "--json",
                              NULL};
        execv(self_path, runv);
        _exit(127);
    }
    close(fds[1]);
    FILE *devout = fdopen(fds[0], "r");
    char line[8192], summary[8192] = "", method_result[512] = "(not invoked)";
    bool invoked = false;
    int c2d = 0;
    while (devout && fgets(line, sizeof line, devout)) {
        if (strstr(line, "\"event\":\"c2d\""))
            c2d++;
        if (strncmp(line, "{\"status\"", 9) == 0)
            snprintf(summary, sizeof summary, "%s", line);
        if (strstr(line, "\"event\"")) {
            printf("   device | %s", line);
            fflush(stdout);
        }
        if (!invoked && strstr(line, "\"event\":\"connected\"")) {
            invoked = true;
            if (run_capture(CLOUD("cloud", "method", "invoke", idbuf, "ping", "--payload",
                                  "{\"from\":\"quickstart\"}", "--timeout", "10", "--dir", dir_arg,
                                  "--json"),
                            out, sizeof out) == 0) {
                int64_t status = 0;
                char payload[256] = "";
                json_field(out, "status", NULL, 0, &status);
                json_field(out, "payload", payload, sizeof payload, NULL);
                snprintf(method_result, sizeof method_result, "%lld %s", (long long)status,
                         payload);
            }
            run_capture(CLOUD("cloud", "twin", "update", idbuf, "--desired",
                              "{\"telemetryInterval\":300}", "--dir", dir_arg),
                        out, sizeof out);
        }
    }
    if (devout)
        fclose(devout);
    int status = 0;
    waitpid(dev, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || summary[0] == 0)
        goto fail;

    /* 6. The summary, from the device's own report and the cloud's twin. */
    char hub[256] = "", device_id[160] = "", reported[512] = "";
    int64_t sent = 0, unacked = 0, peak = 0, handshake = 0;
    json_field(summary, "assigned_hub", hub, sizeof hub, NULL);
    json_field(summary, "device_id", device_id, sizeof device_id, NULL);
    json_field(summary, "sent", NULL, 0, &sent);
    json_field(summary, "unacknowledged", NULL, 0, &unacked);
    json_field(summary, "heap_peak", NULL, 0, &peak);
    json_field(summary, "handshake_heap_peak", NULL, 0, &handshake);
    if (run_capture(CLOUD("cloud", "twin", "show", idbuf, "--dir", dir_arg, "--json"), out,
                    sizeof out) == 0)
        json_field(out, "properties.reported", reported, sizeof reported, NULL);
    tether_tls_build_info b;
    tether_tls_get_build_info(&b);
    printf("== 6/6 summary\n");
    printf("   assigned hub      %s\n", hub);
    printf("   device id         %s\n", device_id);
    printf("   messages sent     %lld (%lld unacknowledged)\n", (long long)sent,
           (long long)unacked);
    printf("   method ping       %s\n", method_result);
    printf("   twin reported     %s\n", reported);
    printf("   c2d received      %d\n", c2d);
    printf("   TLS heap peak     %lld bytes (profile %s, %zu in / %zu out)\n", (long long)peak,
           b.profile, b.in_content_len, b.out_content_len);
    printf("   state             %s (later starts skip DPS)\n", state);
    if (started && !cli_has(&a, "keep-cloud")) {
        run_capture(CLOUD("cloud", "down", "--dir", dir_arg), out, sizeof out);
        printf("== stopped the local cloud it started (tether cloud up --dir %s to start it "
               "again)\n",
               dir);
    }
    return (unacked == 0 && c2d > 0 && strncmp(method_result, "200", 3) == 0) ? CLI_EXIT_OK
                                                                              : CLI_EXIT_FAILED;
fail:
    fprintf(stderr, "quickstart stopped: the step above failed\n");
    if (started && !cli_has(&a, "keep-cloud"))
        run_capture(CLOUD("cloud", "down", "--dir", dir_arg), out, sizeof out);
    return CLI_EXIT_FAILED;
}
