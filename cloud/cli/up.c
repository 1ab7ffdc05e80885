/* tether cloud up / down / status: the broker's life cycle. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "registry.h"
#include "util.h"

static const char up_usage[] =
    "usage: tether cloud up [--dir D] [--port 8883] [--ws-port 443] [--foreground]\n"
    "                       [--retry-after S] [--server-shape azure-rsa|azure-ecc|compact]\n"
    "                       [--hub-fragment-length ignore|honour] [--json]\n"
    "\n"
    "Writes D/mosquitto.conf, makes the PKI if absent, starts Mosquitto with the tether\n"
    "plugin on 127.0.0.1 (TLS 1.2; client certificates requested, optional), waits until it\n"
    "answers and prints the endpoints, id scope, CA file, the hubs (the first is named\n"
    "after the id scope, so two clouds never share a hub name) and the one /etc/hosts step\n"
    "that lets unmodified official samples find DPS and the hubs. --port is MQTT over TLS,\n"
    "--ws-port MQTT over WebSockets (wss://HOST:PORT/$iothub/websocket), both for DPS and\n"
    "every hub. The WebSocket port defaults to 443, as on Azure, or 8443 when this user may\n"
    "not bind 443 or it is taken, else a free one. --retry-after sets the seconds DPS asks\n"
    "devices to wait before polling (default 1).\n"
    "--server-shape: the chain the server presents (default azure-rsa: RSA-2048 leaf of\n"
    "Azure's size under an RSA-4096 issuing CA and a DigiCert G2-shaped root; azure-ecc:\n"
    "P-384 chain under a G3-shaped root, ECDSA suites only; compact: two small EC\n"
    "certificates). DPS ignores the TLS max_fragment_length extension as Azure's does;\n"
    "--hub-fragment-length honour makes hubs negotiate it (IoT Hub's preview). Ports,\n"
    "shape and fragment-length choice are remembered.\n";
static const char down_usage[] = "usage: tether cloud down [--dir D]\n\nStops the broker.\n";
static const char status_usage[] =
    "usage: tether cloud status [--dir D] [--json]\n\n"
    "Running or not, endpoint, id scope, CA file, hubs and counts, and the one /etc/hosts\n"
    "line that lets unmodified samples resolve Azure's global DPS name and this cloud's hubs\n"
    "(with the command that adds it, as root, and the one that removes it).\n";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

static int port_answers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = loopback(port);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Whether a socket listens on 127.0.0.1:port, from the kernel's table (/proc/net/tcp),
 * without connecting: a readiness probe that connected and left would be logged by the
 * broker as a failed TLS handshake ("unexpected eof while reading") on every start. */
static int port_listening(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (f == NULL) {
        return port_answers(port);
    }
    char line[256];
    char want[16];
    snprintf(want, sizeof want, "0100007F:%04X", (unsigned)port);
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        char local[64];
        char remote[64];
        unsigned state = 0;
        if (sscanf(line, " %*d: %63s %63s %x", local, remote, &state) == 3 &&
            strcmp(local, want) == 0 && state == 0x0A /* TCP_LISTEN */) {
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Can this process listen on 127.0.0.1:port (privileged ports need root or
 * net.ipv4.ip_unprivileged_port_start)? */
static int port_bindable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = loopback(port);
    int one = 1;
    int ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
             bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* The WebSocket port when none was given or remembered: Azure's 443 when this user may bind
 * it and it is free, else 8443, else one the kernel picks. */
static int ws_default(int mqtt_port)
{
    if (mqtt_port != 443 && port_bindable(443)) {
        return 443;
    }
    if (mqtt_port != 8443 && port_bindable(8443)) {
        return 8443;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = loopback(0);
    socklen_t len = sizeof sa;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static const char *exe_dir(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0) {
        return NULL;
    }
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    return buf;
}

/* The plugin and the shim: next to tether-cloud (cloud/ below it), else where they were
 * built. TETHER_CLOUD_PLUGIN / TETHER_CLOUD_SHIM override. */
static int find_module(const char *env, const char *name, const char *built, char *out, size_t size)
{
    const char *e = getenv(env);
    char dir[PATH_MAX];
    if (e != NULL && access(e, R_OK) == 0) {
        snprintf(out, size, "%s", e);
        return 0;
    }
    if (exe_dir(dir, sizeof dir) != NULL) {
        snprintf(out, size, "%s/cloud/%s", dir, name);
        if (access(out, R_OK) == 0) {
            return 0;
        }
        snprintf(out, size, "%s/%s", dir, name);
        if (access(out, R_OK) == 0) {
            return 0;
        }
    }
    snprintf(out, size, "%s", built);
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* The broker's bounds (cloud/README.md, "Bounds"). The largest legitimate packet is a
 * 256 KB telemetry message (IoT Hub's device-to-cloud limit) with the longest topic MQTT allows:
 * fixed header 5 + topic length 2 + topic 65535 + packet id 2 + payload 262144. */
#define TC_MAX_CONNECTIONS 10000
#define TC_MAX_PACKET      (5 + 2 + 65535 + 2 + 256 * 1024)

/* The settings of a device listener (TLS, client certificates, hub rules); the same for
 * MQTT and WebSockets, which differ only in the shim's framing. */
static int listener_conf(char *out, size_t size, const char *what, int port, const char *abs)
{
    return snprintf(
        out, size,
        "\n# %s\n"
        "listener %d 127.0.0.1\n"
        "certfile %s/pki/server.pem\n"
        "keyfile %s/pki/server.key\n"
        "cafile %s/pki/ca.pem\n"
        "# Certificates are requested but optional (symmetric-key devices send none):\n"
        "# see the TLS shim preloaded by tether cloud up, which also caps TLS at 1.2\n"
        "# (DPS speaks 1.2 only, IoT Hub 1.2 on its regular host names). The identity\n"
        "# is never the username.\n"
        "require_certificate false\n"
        "use_identity_as_username false\n"
        "tls_version tlsv1.2\n"
        "# IoT Hub: a QoS 2 publish closes the connection; QoS 2 subscriptions get QoS 1.\n"
        "max_qos 1\n"
        "# Bounds (cloud/README.md): at most %d connections, logged in or not.\n"
        "max_connections %d\n",
        what, port, abs, abs, abs, TC_MAX_CONNECTIONS, TC_MAX_CONNECTIONS);
}

static int write_conf(const char *dir, int port, int ws_port, const char *plugin, char *conf,
                      size_t size)
{
    char abs[PATH_MAX];
    if (realpath(dir, abs) == NULL) {
        return fail("cannot resolve %s", dir);
    }
    struct passwd *pw = getpwuid(getuid());
    snprintf(conf, size, "%s/mosquitto.conf", abs);
    char text[32768];
    snprintf(text, sizeof text,
             "# Written by `tether cloud up`; rewritten on every start.\n"
             "per_listener_settings false\n"
             "allow_anonymous false\n"
             "persistence false\n"
             "pid_file %s/mosquitto.pid\n"
             "log_dest file %s/mosquitto.log\n"
             "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
             "connection_messages true\n"
             "set_tcp_nodelay true\n"
             "log_timestamp_format %%Y-%%m-%%dT%%H:%%M:%%S\n"
             "%s%s%s"
             "plugin %s\n"
             "plugin_opt_dir %s\n",
             abs, abs, pw != NULL ? "user " : "", pw != NULL ? pw->pw_name : "",
             pw != NULL ? "\n" : "", plugin, abs);
    size_t used = strlen(text);
    listener_conf(text + used, sizeof text - used,
                  "MQTT over TLS for DPS and every hub, told apart by the MQTT username.", port,
                  abs);
    used = strlen(text);
    listener_conf(text + used, sizeof text - used,
                  "MQTT over WebSockets (wss://HOST:PORT/$iothub/websocket, subprotocol mqtt):\n"
                  "# a TLS listener whose WebSocket upgrade and framing the TLS shim handles\n"
                  "# (TETHER_CLOUD_WS_PORT names this port to it).",
                  ws_port, abs);
    used = strlen(text);
    snprintf(text + used, sizeof text - used,
             "\n# Bounds (cloud/README.md): no packet above a 256 KB telemetry message with a\n"
             "# 64 KB topic (a longer one closes the connection before it is buffered). Before\n"
             "# login the TLS shim allows a CONNECT of 16 KB, complete within 10 s of the accept.\n"
             "max_packet_size %d\n",
             TC_MAX_PACKET);
    return tc_write_file(conf, text, strlen(text), 0600) == 0 ? 0 : fail("cannot write %s", conf);
}

/* The one step that lets an unmodified sample find this cloud (cloud/README.md, "Using the local
 * cloud with other SDKs"): an /etc/hosts line naming Azure's global DPS host and every hub host
 * of this cloud, each followed by its device host name (TLS 1.3) when the server certificate
 * names those (pki_shape_names_device_hosts()). Debian resolves with `hosts:
 * files dns`, which knows no `*.localhost`, and /etc/hosts is the one mechanism every resolver
 * (glibc, musl, Node's dns.lookup) reads. The trailing comment names the cloud, so the line can be
 * found and removed again. Malloc'd. */
static char *hosts_line(const cJSON *hubs, const char *scope, bool device_hosts)
{
    size_t cap = 128;
    const cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        cap += 2 * strlen(tc_row_str(h, "host")) + 10;
    }
    cap += strlen(scope);
    char *line = malloc(cap);
    if (line == NULL) {
        return NULL;
    }
    size_t used = (size_t)snprintf(line, cap, "127.0.0.1 global.azure-devices-provisioning.net");
    cJSON_ArrayForEach(h, hubs)
    {
        char device[300] = "";
        if (device_hosts) {
            tc_device_host_of(tc_row_str(h, "host"), device, sizeof device);
        }
        used += (size_t)snprintf(line + used, cap - used, " %s%s%s", tc_row_str(h, "host"),
                                 device[0] != '\0' ? " " : "", device);
    }
    snprintf(line + used, cap - used, " # tether cloud %s", scope);
    return line;
}

static void print_endpoint(const char *dir, sqlite3 *db, bool json, long pid)
{
    char *scope = tc_reg_meta_get(db, "id_scope");
    char *port = tc_reg_meta_get(db, "port");
    char *ws_port = tc_reg_meta_get(db, "ws_port");
    char *shape = tc_reg_meta_get(db, "server_shape");
    char *mfl = tc_reg_meta_get(db, "hub_mfl");
    char abs[PATH_MAX];
    char ca[PATH_MAX + 16];
    if (realpath(dir, abs) == NULL) {
        snprintf(abs, sizeof abs, "%s", dir);
    }
    snprintf(ca, sizeof ca, "%s/pki/ca.pem", abs);
    cJSON *hubs = tc_reg_rows(db, "SELECT name, host FROM hubs ORDER BY name", NULL);
    int64_t enrollments = tc_reg_int(db, 0, "SELECT count(*) FROM enrollments", NULL);
    int64_t devices = tc_reg_int(db, 0, "SELECT count(*) FROM devices", NULL);
    int64_t connected =
        pid > 0 ? tc_reg_int(db, 0, "SELECT count(*) FROM devices WHERE connected=1", NULL) : 0;
    char *hosts = hosts_line(hubs, scope != NULL ? scope : "", pki_shape_names_device_hosts(shape));
    size_t step_size = (hosts != NULL ? strlen(hosts) : 0) + 64;
    char *step = malloc(step_size);
    char undo[128];
    if (step == NULL) {
        abort(); /* a few hundred bytes */
    }
    snprintf(step, step_size, "echo '%s' | sudo tee -a /etc/hosts", hosts != NULL ? hosts : "");
    snprintf(undo, sizeof undo, "sudo sed -i '/# tether cloud %s$/d' /etc/hosts",
             scope != NULL ? scope : "");
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "running", pid > 0);
        if (pid > 0) {
            cJSON_AddNumberToObject(o, "pid", (double)pid);
        }
        cJSON_AddStringToObject(o, "dir", abs);
        cJSON_AddNumberToObject(o, "port", port != NULL ? atoi(port) : 8883);
        char ep[64];
        snprintf(ep, sizeof ep, "localhost:%s", port != NULL ? port : "8883");
        cJSON_AddStringToObject(o, "endpoint", ep);
        cJSON_AddNumberToObject(o, "wsPort", ws_port != NULL ? atoi(ws_port) : 443);
        snprintf(ep, sizeof ep, "wss://localhost:%s/$iothub/websocket",
                 ws_port != NULL ? ws_port : "443");
        cJSON_AddStringToObject(o, "wsEndpoint", ep);
        cJSON_AddStringToObject(o, "address", "127.0.0.1");
        cJSON_AddStringToObject(o, "idScope", scope != NULL ? scope : "");
        cJSON_AddStringToObject(o, "caFile", ca);
        cJSON_AddStringToObject(o, "serverShape", shape != NULL ? shape : "azure-rsa");
        cJSON_AddStringToObject(o, "hubFragmentLength", mfl != NULL ? mfl : "ignore");
        cJSON *ha = cJSON_AddArrayToObject(o, "hubs");
        cJSON *h;
        cJSON_ArrayForEach(h, hubs)
        {
            cJSON_AddItemToArray(ha, cJSON_CreateString(tc_row_str(h, "host")));
        }
        /* other SDKs: the /etc/hosts line, the command that adds it, the one that removes it */
        cJSON_AddStringToObject(o, "hostsLine", hosts != NULL ? hosts : "");
        cJSON_AddStringToObject(o, "hostsStep", step);
        cJSON_AddStringToObject(o, "hostsUndo", undo);
        cJSON_AddNumberToObject(o, "enrollments", (double)enrollments);
        cJSON_AddNumberToObject(o, "devices", (double)devices);
        cJSON_AddNumberToObject(o, "connectedDevices", (double)connected);
        print_json(o);
        cJSON_Delete(o);
    } else {
        if (pid > 0) {
            printf("tether cloud is running (mosquitto pid %ld, state in %s)\n", pid, abs);
        } else {
            printf("tether cloud is stopped (state in %s)\n", abs);
        }
        printf("  DPS endpoint  localhost:%s (127.0.0.1)\n", port != NULL ? port : "8883");
        printf("  WebSockets    wss://localhost:%s/$iothub/websocket (DPS and hubs)\n",
               ws_port != NULL ? ws_port : "443");
        printf("  id scope      %s\n", scope != NULL ? scope : "?");
        printf("  CA file       %s\n", ca);
        printf("  server shape  %s (hubs %s max_fragment_length; DPS ignores it)\n",
               shape != NULL ? shape : "azure-rsa",
               mfl != NULL && strcmp(mfl, "honour") == 0 ? "honour" : "ignore");
        cJSON *h;
        cJSON_ArrayForEach(h, hubs)
        {
            printf("  hub           %s (reach it at 127.0.0.1:%s)\n", tc_row_str(h, "host"),
                   port != NULL ? port : "8883");
        }
        printf("  %lld enrollments, %lld devices, %lld connected\n", (long long)enrollments,
               (long long)devices, (long long)connected);
        printf(
            "  other SDKs    one step, as root, lets unmodified samples resolve DPS and the hubs:\n"
            "                %s\n"
            "                (undo: %s)\n",
            step, undo);
    }
    cJSON_Delete(hubs);
    free(hosts);
    free(step);
    free(scope);
    free(port);
    free(ws_port);
    free(shape);
    free(mfl);
}

static void tail_log(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/mosquitto.log", dir);
    char *log = tc_read_file(p, NULL);
    if (log == NULL) {
        return;
    }
    size_t len = strlen(log);
    size_t start = len > 1200 ? len - 1200 : 0;
    fprintf(stderr, "last lines of %s:\n%s", p, log + start);
    free(log);
}

/* The shim reads which listeners honour max_fragment_length (cloud/shim/tls_shim.c). */
static void hub_fragment_env(const char *dir)
{
    sqlite3 *db = open_registry(dir);
    char *mfl = db != NULL ? tc_reg_meta_get(db, "hub_mfl") : NULL;
    setenv("TETHER_CLOUD_HUB_MFL", mfl != NULL ? mfl : "ignore", 1);
    free(mfl);
    tc_reg_close(db);
}

static int start(const char *dir, int port, int ws_port, bool foreground, bool json, bool quiet)
{
    char plugin[PATH_MAX];
    char shim[PATH_MAX];
    char conf[PATH_MAX + 32];
    if (find_module("TETHER_CLOUD_PLUGIN", "tether_cloud_plugin.so", TC_PLUGIN_PATH, plugin,
                    sizeof plugin) != 0) {
        return fail("tether_cloud_plugin.so not found (looked next to tether-cloud and in %s)",
                    TC_PLUGIN_PATH);
    }
    if (find_module("TETHER_CLOUD_SHIM", "tether_cloud_tls_shim.so", TC_SHIM_PATH, shim,
                    sizeof shim) != 0) {
        return fail("tether_cloud_tls_shim.so not found");
    }
    if (write_conf(dir, port, ws_port, plugin, conf, sizeof conf) != 0) {
        return 1;
    }
    if (port_answers(port)) {
        return fail("port %d on 127.0.0.1 is already in use; choose another with --port", port);
    }
    if (port_answers(ws_port)) {
        return fail("port %d on 127.0.0.1 is already in use; choose another with --ws-port",
                    ws_port);
    }
    char ws_port_s[16];
    snprintf(ws_port_s, sizeof ws_port_s, "%d", ws_port);
    setenv("TETHER_CLOUD_WS_PORT", ws_port_s, 1);
    /* max_connections means something only if the broker may open that many sockets: a
     * default soft limit of 1024 descriptors would end accept() first (EMFILE). */
    struct rlimit fds;
    if (getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur < TC_MAX_CONNECTIONS + 64) {
        fds.rlim_cur =
            fds.rlim_max < TC_MAX_CONNECTIONS + 64 ? fds.rlim_max : TC_MAX_CONNECTIONS + 64;
        (void)setrlimit(RLIMIT_NOFILE, &fds);
    }
    setenv("LD_PRELOAD", shim, 1);
    hub_fragment_env(dir);
    if (foreground) {
        char pidp[4096];
        char pid_text[32];
        snprintf(pidp, sizeof pidp, "%s/mosquitto.pid", dir);
        snprintf(pid_text, sizeof pid_text, "%ld\n", (long)getpid());
        tc_write_file(pidp, pid_text, strlen(pid_text), 0644);
        printf("starting mosquitto in the foreground (log: %s/mosquitto.log); Ctrl-C stops it\n",
               dir);
        fflush(stdout);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        return fail("cannot run mosquitto: %s (install the mosquitto package)", strerror(errno));
    }
    pid_t child = fork();
    if (child < 0) {
        return fail("fork: %s", strerror(errno));
    }
    if (child == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        for (int fd = 3; fd < 1024; fd++) {
            close(fd); /* the daemon must not hold our caller's pipes */
        }
        /* TETHER_CLOUD_WRAPPER (e.g. "valgrind --log-file=/tmp/vg.%p") runs the broker
         * under a tool; words separated by spaces. */
        const char *wrapper = getenv("TETHER_CLOUD_WRAPPER");
        char *argv_w[32];
        int n = 0;
        char *copy = wrapper != NULL ? strdup(wrapper) : NULL;
        char *save = NULL;
        for (char *w = copy != NULL ? strtok_r(copy, " ", &save) : NULL; w != NULL && n < 26;
             w = strtok_r(NULL, " ", &save)) {
            argv_w[n++] = w;
        }
        argv_w[n++] = "mosquitto";
        argv_w[n++] = "-d";
        argv_w[n++] = "-c";
        argv_w[n++] = conf;
        argv_w[n] = NULL;
        execvp(argv_w[0], argv_w);
        _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    unsetenv("LD_PRELOAD");
    unsetenv("TETHER_CLOUD_HUB_MFL");
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        return fail("cannot run mosquitto (install the mosquitto package)");
    }
    for (int i = 0; i < 100; i++) {
        if (port_listening(port) && port_listening(ws_port) && cloud_pid(dir) > 0) {
            sqlite3 *db = open_registry(dir);
            if (db == NULL) {
                return 1;
            }
            if (!quiet) {
                print_endpoint(dir, db, json, cloud_pid(dir));
            }
            tc_reg_close(db);
            return 0;
        }
        if (i > 5 && cloud_pid(dir) == 0 && !WIFEXITED(status)) {
            break;
        }
        sleep_ms(100);
    }
    fail("mosquitto did not start listening on 127.0.0.1:%d and :%d", port, ws_port);
    tail_log(dir);
    return 1;
}

/* Whether `wanted` (NULL: not asked) differs from the stored setting (default `dflt`). */
static bool meta_differs(sqlite3 *db, const char *key, const char *wanted, const char *dflt)
{
    if (wanted == NULL) {
        return false;
    }
    char *now = tc_reg_meta_get(db, key);
    bool differs = strcmp(now != NULL ? now : dflt, wanted) != 0;
    free(now);
    return differs;
}

int cmd_up(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(up_usage, stdout);
        return 0;
    }
    struct tc_args a;
    args_init(&a, argc, argv);
    const char *dir = cloud_dir(&a);
    const char *port_text = arg_opt(&a, "--port");
    const char *ws_port_text = arg_opt(&a, "--ws-port");
    const char *retry = arg_opt(&a, "--retry-after");
    const char *shape = arg_opt(&a, "--server-shape");
    const char *hub_mfl = arg_opt(&a, "--hub-fragment-length");
    bool foreground = arg_flag(&a, "--foreground");
    bool json = arg_flag(&a, "--json");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 0, &n) != 0) {
        return 2;
    }
    if (shape != NULL && !pki_shape_valid(shape)) {
        return fail("--server-shape must be azure-rsa, azure-ecc or compact");
    }
    if (hub_mfl != NULL && strcmp(hub_mfl, "ignore") != 0 && strcmp(hub_mfl, "honour") != 0) {
        return fail("--hub-fragment-length must be ignore or honour");
    }
    if (ensure_dir(dir) != 0 || pki_ensure(dir, json) != 0) {
        return 1;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    char *saved_port = tc_reg_meta_get(db, "port");
    int port = port_text != NULL ? atoi(port_text) : (saved_port != NULL ? atoi(saved_port) : 8883);
    free(saved_port);
    char *saved_ws = tc_reg_meta_get(db, "ws_port");
    int ws_port = ws_port_text != NULL ? atoi(ws_port_text)
                  : saved_ws != NULL   ? atoi(saved_ws)
                                       : ws_default(port);
    free(saved_ws);
    if (port <= 0 || port > 65535 || ws_port <= 0 || ws_port > 65535 || ws_port == port) {
        tc_reg_close(db);
        return fail("--port and --ws-port must be two different ports in 1..65535");
    }
    if (retry != NULL) {
        int r = atoi(retry);
        if (r < 0 || r > 3600) {
            tc_reg_close(db);
            return fail("--retry-after must be 0..3600 seconds");
        }
        tc_reg_meta_set(db, "retry_after", retry);
    }
    long pid = cloud_pid(dir);
    if (pid > 0 && (meta_differs(db, "server_shape", shape, "azure-rsa") ||
                    meta_differs(db, "hub_mfl", hub_mfl, "ignore"))) {
        tc_reg_close(db);
        return fail("tether cloud is running with another server shape or fragment-length "
                    "setting: stop it first (tether cloud down --dir %s)",
                    dir);
    }
    if (shape != NULL) {
        tc_reg_meta_set(db, "server_shape", shape);
    }
    if (hub_mfl != NULL) {
        tc_reg_meta_set(db, "hub_mfl", hub_mfl);
    }
    if (pid > 0) {
        if (!json) {
            printf("already running\n");
        }
        print_endpoint(dir, db, json, pid);
        tc_reg_close(db);
        return 0;
    }
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    tc_reg_meta_set(db, "port", port_s);
    snprintf(port_s, sizeof port_s, "%d", ws_port);
    tc_reg_meta_set(db, "ws_port", port_s);
    int sync = pki_server_sync(dir, db);
    tc_reg_close(db);
    if (sync < 0) {
        return 1;
    }
    return start(dir, port, ws_port, foreground, json, false);
}

static int stop(const char *dir, bool quiet)
{
    long pid = cloud_pid(dir);
    if (pid == 0) {
        if (!quiet) {
            printf("tether cloud is not running (%s)\n", dir);
        }
        return 0;
    }
    kill((pid_t)pid, SIGTERM);
    for (int i = 0; i < 100 && kill((pid_t)pid, 0) == 0; i++) {
        sleep_ms(50);
    }
    if (kill((pid_t)pid, 0) == 0) {
        kill((pid_t)pid, SIGKILL);
        sleep_ms(100);
    }
    char p[4096];
    snprintf(p, sizeof p, "%s/mosquitto.pid", dir);
    unlink(p);
    if (!quiet) {
        printf("stopped tether cloud (mosquitto pid %ld)\n", pid);
    }
    return 0;
}

int cmd_down(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(down_usage, stdout);
        return 0;
    }
    struct tc_args a;
    args_init(&a, argc, argv);
    const char *dir = cloud_dir(&a);
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 0, &n) != 0) {
        return 2;
    }
    return stop(dir, false);
}

int cloud_reload_if_running(const char *dir)
{
    /* Mosquitto 2.0.11 re-reads its certificates on SIGHUP (listeners__reload_all_certificates),
     * and the TLS shim still applies to the new contexts: connected devices stay connected. */
    long pid = cloud_pid(dir);
    if (pid == 0) {
        return 0;
    }
    if (kill((pid_t)pid, SIGHUP) != 0) {
        return fail("cannot signal mosquitto (pid %ld)", pid);
    }
    sleep_ms(300);
    return 0;
}

int cmd_status(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(status_usage, stdout);
        return 0;
    }
    struct tc_args a;
    args_init(&a, argc, argv);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 0, &n) != 0) {
        return 2;
    }
    char reg[4096];
    snprintf(reg, sizeof reg, "%s/registry.db", dir);
    if (access(reg, R_OK) != 0) {
        if (json) {
            printf("{\"running\":false,\"dir\":\"%s\",\"initialised\":false}\n", dir);
            return 0;
        }
        printf("tether cloud has no state in %s (start it with: tether cloud up --dir %s)\n", dir,
               dir);
        return 0;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    print_endpoint(dir, db, json, cloud_pid(dir));
    tc_reg_close(db);
    return 0;
}
