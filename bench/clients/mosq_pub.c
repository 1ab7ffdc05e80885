/* Bench only: N QoS 1 messages over TLS with libmosquitto (Debian's libmosquitto1), at most 32
 * in flight as tether's `mqtt pub`, TLS 1.2, one thread (mosquitto_loop in this one).
 * usage: mosq_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT */
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int acked, connected;

static void on_connect(struct mosquitto *m, void *u, int rc)
{
    (void)m, (void)u;
    connected = rc == 0 ? 1 : -1;
}

static void on_publish(struct mosquitto *m, void *u, int mid)
{
    (void)m, (void)u, (void)mid;
    acked++;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: mosq_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT\n");
        return 2;
    }
    int count = atoi(argv[8]), sent = 0;
    const char *payload = argv[7];
    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(NULL, true, NULL);
    mosquitto_connect_callback_set(m, on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_max_inflight_messages_set(m, 32);
    if (mosquitto_tls_set(m, argv[3], NULL, argv[4], argv[5], NULL) != MOSQ_ERR_SUCCESS ||
        mosquitto_tls_opts_set(m, 1, "tlsv1.2", NULL) != MOSQ_ERR_SUCCESS ||
        mosquitto_connect(m, argv[1], atoi(argv[2]), 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "mosq_pub: connect failed\n");
        return 1;
    }
    while (connected == 0)
        if (mosquitto_loop(m, 1000, 1) != MOSQ_ERR_SUCCESS)
            return 1;
    if (connected < 0)
        return 1;
    while (acked < count) {
        while (sent < count && sent - acked < 32) {
            if (mosquitto_publish(m, NULL, argv[6], (int)strlen(payload), payload, 1, false) !=
                MOSQ_ERR_SUCCESS)
                return 1;
            sent++;
        }
        if (mosquitto_loop(m, 1000, 1) != MOSQ_ERR_SUCCESS)
            return 1;
    }
    mosquitto_disconnect(m);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    printf("{\"sent\":%d,\"acknowledged\":%d}\n", sent, acked);
    return 0;
}
