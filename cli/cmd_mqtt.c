/* `tether mqtt pub` and `tether mqtt sub`: mosquitto_pub/_sub over tether's own stack. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tether/port.h"

static const cli_option mqtt_options[] = {
    {"client-id", "ID", "MQTT client id (default tether-pub-PID / tether-sub-PID)"},
    {"username", "NAME", "MQTT user name"},
    {"password", "TEXT", "MQTT password"},
    {"topic", "TOPIC", "topic to publish to, or filter to subscribe to (sub: repeatable)"},
    {"qos", "0|1", "quality of service (default 0)"},
    {"keepalive", "S", "same as --keep-alive (mosquitto_pub's spelling)"},
    {"count", "N", "pub: messages to send (default 1); sub: exit after N messages"},
    {"reconnect-timeout", "S", "keep reconnecting for this long after a loss (default 30)"},
    {NULL, NULL, NULL},
};

static const cli_option pub_options[] = {
    {"message", "TEXT", "payload; {n} is replaced by the message number (1..N)"},
    {"file", "FILE", "payload read from a file"},
    {"interval", "MS", "pause between messages (default 0)"},
    {NULL, NULL, NULL},
};

static const cli_option sub_options[] = {
    {"timeout", "S", "exit after S seconds without error even if --count was not reached"},
    {NULL, NULL, NULL},
};

static const cli_option *const pub_sets[] = {cli_host_options,       cli_tls_options, mqtt_options,
                                             cli_keep_alive_options, pub_options,     NULL};
static const cli_option *const sub_sets[] = {cli_host_options,       cli_tls_options, mqtt_options,
                                             cli_keep_alive_options, sub_options,     NULL};

static const cli_command pub_cmd = {
    "tether mqtt pub --topic TOPIC (--message TEXT | --file FILE) [options]",
    "Publishes over TLS with tether's MQTT client and prints the TLS heap peak. QoS 1 messages\n"
    "are kept until acknowledged and sent again after a reconnect, so none is lost when the\n"
    "broker restarts.",
    pub_sets, 0};

static const cli_command sub_cmd = {
    "tether mqtt sub --topic FILTER [--topic FILTER ...] [options]",
    "Subscribes over TLS with tether's MQTT client and prints each payload on a line (with\n"
    "--json, one JSON object per message). The summary with the TLS heap peak goes to stderr.",
    sub_sets, 0};

/* Session state shared by pub and sub. */
typedef struct session {
    cli_tls conn;
    tether_mqtt_client mqtt;
    tether_mqtt_connect_opts connect;
    char client_id[64];
    tether_mqtt_filter filters[CLI_MAX_REPEAT];
    size_t filter_count;
    long reconnect_timeout_s;
    unsigned reconnects;
    bool json;
    /* sub */
    long want;
    long received;
} session;

static uint8_t tx[8192], rx[64 * 1024], store[64 * 1024];
static tether_mqtt_inflight slots[32];

/* Runs the client for @p ms; a read never waits longer, so 0 only polls. */
static tether_status pump(session *s, uint32_t ms)
{
    tether_tls_set_io_timeout(&s->conn.tls, ms < 200 ? ms : 200);
    return tether_mqtt_client_process(&s->mqtt, ms);
}

static tether_status open_session(session *s)
{
    tether_status st = cli_tls_connect(&s->conn);
    if (st != TETHER_OK)
        return st;
    tether_mqtt_client_set_transport(&s->mqtt, tether_tls_transport(&s->conn.tls));
    st = tether_mqtt_client_connect(&s->mqtt, &s->connect, 10000, NULL);
    if (st == TETHER_OK && s->filter_count > 0)
        st = tether_mqtt_client_subscribe(&s->mqtt, s->filters, s->filter_count, 10000, NULL);
    if (st != TETHER_OK)
        tether_tls_close(&s->conn.tls);
    return st;
}

/* After a loss: reconnect with capped exponential backoff until the reconnect timeout. */
static tether_status recover(session *s, tether_status why)
{
    tether_tls_close(&s->conn.tls);
    tether_mqtt_client_connection_lost(&s->mqtt);
    uint64_t give_up = tether_port_now_ms() + (uint64_t)s->reconnect_timeout_s * 1000u;
    uint32_t delay = 250;
    tether_status st = why;
    while (tether_status_is_transient(st) && tether_port_now_ms() < give_up) {
        fprintf(stderr, "connection lost (%s); reconnecting in %u ms\n", tether_status_name(st),
                delay);
        tether_port_sleep_ms(delay);
        delay = delay < 4000 ? delay * 2 : 8000;
        st = open_session(s);
        if (st == TETHER_OK) {
            s->reconnects++;
            fprintf(stderr, "reconnected; %zu unacknowledged message(s) sent again\n",
                    tether_mqtt_client_inflight_count(&s->mqtt));
            return TETHER_OK;
        }
    }
    return st;
}

static int setup_session(session *s, const cli_args *a, const char *role,
                         tether_mqtt_message_fn on_message)
{
    memset(s, 0, sizeof *s);
    int rc = cli_tls_setup(&s->conn, a, "localhost");
    if (rc >= 0)
        return rc;
    s->json = s->conn.json;
    long qos;
    /* Any broker: MQTT's whole range, 0 (no keep-alive) included. */
    if (!cli_get_long(a, "qos", 0, 0, 1, &qos) ||
        !cli_keep_alive(a, 60, 0, 65535, &s->connect.keep_alive_s) ||
        !cli_get_long(a, "reconnect-timeout", 30, 0, 3600, &s->reconnect_timeout_s))
        return CLI_EXIT_USAGE;
    if (!cli_has(a, "topic")) {
        fprintf(stderr, "tether: --topic is required (see --help)\n");
        return CLI_EXIT_USAGE;
    }
    const char *id = cli_get(a, "client-id");
    if (id == NULL) {
        snprintf(s->client_id, sizeof s->client_id, "tether-%s-%ld", role, (long)getpid());
        id = s->client_id;
    }
    s->connect.client_id = id;
    s->connect.client_id_len = strlen(id);
    s->connect.clean_session = true;
    if (cli_get(a, "username")) {
        s->connect.username = cli_get(a, "username");
        s->connect.username_len = strlen(s->connect.username);
    }
    if (cli_get(a, "password")) {
        if (!s->connect.username) {
            fprintf(stderr, "tether: --password needs --username (MQTT 3.1.1)\n");
            return CLI_EXIT_USAGE;
        }
        s->connect.password = (const uint8_t *)cli_get(a, "password");
        s->connect.password_len = strlen(cli_get(a, "password"));
    }
    for (size_t i = 0; i < cli_count(a, "topic"); i++) {
        s->filters[i].filter = cli_get_nth(a, "topic", i);
        s->filters[i].filter_len = strlen(s->filters[i].filter);
        s->filters[i].qos = (uint8_t)qos;
    }
    tether_mqtt_config cfg = tether_mqtt_config_default();
    cfg.tx_buf = tx;
    cfg.tx_len = sizeof tx;
    cfg.rx_buf = rx;
    cfg.rx_len = sizeof rx;
    cfg.store_buf = store;
    cfg.store_len = sizeof store;
    cfg.inflight = slots;
    cfg.inflight_max = sizeof slots / sizeof slots[0];
    cfg.on_message = on_message;
    cfg.on_message_context = s;
    if (tether_mqtt_client_init(&s->mqtt, &cfg) != TETHER_OK)
        return CLI_EXIT_FAILED;
    return -1;
}

static uint8_t payload_file[48 * 1024];
static char payload[48 * 1024];

static int run_pub(const cli_args *a)
{
    session s;
    int rc = setup_session(&s, a, "pub", NULL);
    if (rc >= 0)
        return rc;
    s.filter_count = 0; /* --topic is the publish topic here. */
    long count, interval, qos;
    if (!cli_get_long(a, "count", 1, 1, 10000000, &count) ||
        !cli_get_long(a, "interval", 0, 0, 3600000, &interval) ||
        !cli_get_long(a, "qos", 0, 0, 1, &qos)) {
        cli_tls_free(&s.conn);
        return CLI_EXIT_USAGE;
    }
    const char *tmpl = cli_get(a, "message");
    size_t tmpl_len = tmpl ? strlen(tmpl) : 0;
    if (cli_has(a, "file")) {
        tether_status st =
            tether_port_read_file(cli_get(a, "file"), payload_file, sizeof payload_file, &tmpl_len);
        if (st != TETHER_OK) {
            fprintf(stderr, "error %s reading %s\n  fix: %s\n", tether_status_name(st),
                    cli_get(a, "file"), tether_status_hint(st));
            cli_tls_free(&s.conn);
            return CLI_EXIT_FAILED;
        }
        tmpl = (const char *)payload_file;
    } else if (tmpl == NULL) {
        fprintf(stderr, "tether: --message or --file is required (see --help)\n");
        cli_tls_free(&s.conn);
        return CLI_EXIT_USAGE;
    }
    const char *topic = cli_get(a, "topic");

    tether_status st = open_session(&s);
    if (st != TETHER_OK && tether_status_is_transient(st) && s.conn.connects > 0)
        st = recover(&s, st);
    long sent = 0;
    while (st == TETHER_OK && sent < count) {
        tether_mqtt_publish m = {.topic = topic, .topic_len = strlen(topic), .qos = (uint8_t)qos};
        m.payload = (const uint8_t *)payload;
        m.payload_len = cli_has(a, "file") ? tmpl_len
                                           : cli_expand_template(tmpl, tmpl_len, sent + 1, payload,
                                                                 sizeof payload);
        if (cli_has(a, "file"))
            m.payload = payload_file;
        st = tether_mqtt_client_publish(&s.mqtt, &m, NULL);
        if (st == TETHER_MQTT_INFLIGHT_FULL) {
            st = pump(&s, 50);
        } else if (st == TETHER_OK || (qos == 1 && tether_status_is_transient(st))) {
            /* A QoS 1 message that failed to go out is in the store: it counts as sent. */
            sent++;
            if (st == TETHER_OK && interval > 0) {
                /* The whole interval: a pump returns as soon as a packet was handled. */
                uint64_t until = tether_port_now_ms() + (uint64_t)interval;
                for (uint64_t t = tether_port_now_ms(); st == TETHER_OK && t < until;
                     t = tether_port_now_ms())
                    st = pump(&s, (uint32_t)(until - t));
            } else if (st == TETHER_OK) {
                st = pump(&s, 0);
            }
        }
        if (st == TETHER_MQTT_PACKET_TOO_LARGE)
            st = TETHER_OK;
        if (st != TETHER_OK && tether_status_is_transient(st))
            st = recover(&s, st);
    }
    /* Wait for the last acknowledgements, reconnecting if the broker goes away meanwhile. */
    uint64_t deadline = tether_port_now_ms() + 30000;
    while (st == TETHER_OK && tether_mqtt_client_inflight_count(&s.mqtt) > 0 &&
           tether_port_now_ms() < deadline) {
        st = pump(&s, 100);
        if (st != TETHER_OK && tether_status_is_transient(st))
            st = recover(&s, st);
    }
    if (st == TETHER_OK && tether_mqtt_client_inflight_count(&s.mqtt) > 0)
        st = TETHER_MQTT_ACK_TIMEOUT;

    int result = CLI_EXIT_OK;
    const tether_mqtt_stats *ms = tether_mqtt_client_get_stats(&s.mqtt);
    if (st != TETHER_OK) {
        cli_report_failure(&s.conn, st, s.conn.connects ? "MQTT publish" : "connect", s.json);
        result = CLI_EXIT_FAILED;
    } else {
        tether_mqtt_client_disconnect(&s.mqtt);
        if (s.json) {
            printf("{\"status\":\"OK\",\"published\":%ld,\"qos\":%ld,\"acknowledged\":%u,"
                   "\"resent\":%u,\"reconnects\":%u,",
                   sent, qos, ms->acks_received, ms->resends, s.reconnects);
            cli_json_tls_summary(stdout, &s.conn);
            printf("}\n");
        } else {
            printf("published %ld message(s) to %s at QoS %ld", sent, topic, qos);
            if (qos == 1)
                printf(", %u acknowledged, %u resent after %u reconnect(s)", ms->acks_received,
                       ms->resends, s.reconnects);
            printf("\n");
            cli_print_tls_summary(stdout, &s.conn);
        }
    }
    tether_tls_close(&s.conn.tls);
    cli_tls_free(&s.conn);
    return result;
}

static void on_sub_message(void *context, const tether_mqtt_publish *m)
{
    session *s = context;
    s->received++;
    if (s->json) {
        printf("{\"topic\":");
        cli_json_string(stdout, m->topic, m->topic_len);
        printf(",\"payload\":");
        cli_json_string(stdout, (const char *)m->payload, m->payload_len);
        printf(",\"qos\":%u,\"retain\":%s}\n", m->qos, m->retain ? "true" : "false");
    } else {
        fwrite(m->payload, 1, m->payload_len, stdout);
        fputc('\n', stdout);
    }
    fflush(stdout);
}

static int run_sub(const cli_args *a)
{
    session s;
    int rc = setup_session(&s, a, "sub", on_sub_message);
    if (rc >= 0)
        return rc;
    s.filter_count = cli_count(a, "topic");
    long timeout_s;
    if (!cli_get_long(a, "count", 0, 0, 10000000, &s.want) ||
        !cli_get_long(a, "timeout", 0, 0, 86400, &timeout_s)) {
        cli_tls_free(&s.conn);
        return CLI_EXIT_USAGE;
    }
    tether_status st = open_session(&s);
    if (st == TETHER_OK && !s.json)
        fprintf(stderr, "subscribed to %zu filter(s); waiting for messages\n", s.filter_count);
    uint64_t end = timeout_s ? tether_port_now_ms() + (uint64_t)timeout_s * 1000u : 0;
    while (st == TETHER_OK && (s.want == 0 || s.received < s.want) &&
           (end == 0 || tether_port_now_ms() < end)) {
        st = pump(&s, 200);
        if (st == TETHER_MQTT_PACKET_TOO_LARGE) {
            fprintf(stderr, "warning %s: a %zu-byte message was discarded (receive buffer %zu)\n",
                    tether_status_name(st), tether_mqtt_client_last_needed(&s.mqtt), sizeof rx);
            st = TETHER_OK;
        }
        if (st != TETHER_OK && tether_status_is_transient(st))
            st = recover(&s, st);
    }
    int result = CLI_EXIT_OK;
    if (st != TETHER_OK) {
        cli_report_failure(&s.conn, st, s.conn.connects ? "MQTT subscribe" : "connect", s.json);
        result = CLI_EXIT_FAILED;
    } else {
        tether_mqtt_client_disconnect(&s.mqtt);
        FILE *out = s.json ? stdout : stderr;
        if (s.json) {
            printf("{\"status\":\"OK\",\"received\":%ld,\"reconnects\":%u,", s.received,
                   s.reconnects);
            cli_json_tls_summary(stdout, &s.conn);
            printf("}\n");
        } else {
            fprintf(out, "received %ld message(s) after %u reconnect(s)\n", s.received,
                    s.reconnects);
            cli_print_tls_summary(out, &s.conn);
        }
    }
    tether_tls_close(&s.conn.tls);
    cli_tls_free(&s.conn);
    return result;
}

int cmd_mqtt(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        printf("usage: tether mqtt pub|sub [options]\n\n"
               "  pub   publish messages (like mosquitto_pub)\n"
               "  sub   subscribe and print messages (like mosquitto_sub)\n\n"
               "tether mqtt pub --help and tether mqtt sub --help list the options.\n");
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    const cli_command *cmd = strcmp(argv[0], "pub") == 0   ? &pub_cmd
                             : strcmp(argv[0], "sub") == 0 ? &sub_cmd
                                                           : NULL;
    if (cmd == NULL) {
        fprintf(stderr, "tether: unknown command 'mqtt %s' (pub or sub)\n", argv[0]);
        return CLI_EXIT_USAGE;
    }
    cli_args a;
    int rc = cli_parse(cmd, argc - 1, argv + 1, &a);
    if (rc >= 0)
        return rc;
    return cmd == &pub_cmd ? run_pub(&a) : run_sub(&a);
}
