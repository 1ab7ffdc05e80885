/* Bench only: N QoS 1 messages over TLS with the Eclipse Paho C client (Debian's
 * libpaho-mqtt-dev, synchronous MQTTClient over OpenSSL), at most 32 in flight as tether's
 * `mqtt pub`, TLS 1.2.
 * usage: paho_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT */
#include <MQTTClient.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 32

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: paho_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT\n");
        return 2;
    }
    int count = atoi(argv[8]);
    char uri[256];
    snprintf(uri, sizeof uri, "ssl://%s:%s", argv[1], argv[2]);
    MQTTClient c;
    if (MQTTClient_create(&c, uri, "paho-bench", MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTCLIENT_SUCCESS)
        return 1;
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    MQTTClient_SSLOptions so = MQTTClient_SSLOptions_initializer;
    so.trustStore = argv[3];
    so.keyStore = argv[4];
    so.privateKey = argv[5];
    so.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    so.enableServerCertAuth = 1;
    co.ssl = &so;
    co.keepAliveInterval = 60;
    co.cleansession = 1;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.maxInflightMessages = WINDOW;
    int rc = MQTTClient_connect(c, &co);
    if (rc != MQTTCLIENT_SUCCESS) {
        fprintf(stderr, "paho_pub: connect failed (%d)\n", rc);
        return 1;
    }
    MQTTClient_deliveryToken tokens[WINDOW];
    const char *payload = argv[7];
    int acked = 0;
    for (int i = 0; i < count; i++) {
        if (i >= WINDOW) {
            if (MQTTClient_waitForCompletion(c, tokens[i % WINDOW], 10000) != MQTTCLIENT_SUCCESS)
                return 1;
            acked++;
        }
        rc = MQTTClient_publish(c, argv[6], (int)strlen(payload), payload, 1, 0,
                                &tokens[i % WINDOW]);
        if (rc != MQTTCLIENT_SUCCESS) {
            fprintf(stderr, "paho_pub: publish failed (%d)\n", rc);
            return 1;
        }
    }
    for (int i = count > WINDOW ? count - WINDOW : 0; i < count; i++) {
        if (MQTTClient_waitForCompletion(c, tokens[i % WINDOW], 10000) != MQTTCLIENT_SUCCESS)
            return 1;
        acked++;
    }
    MQTTClient_disconnect(c, 1000);
    MQTTClient_destroy(&c);
    printf("{\"sent\":%d,\"acknowledged\":%d}\n", count, acked);
    return 0;
}
