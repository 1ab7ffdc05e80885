/* Bench only: N QoS 1 messages over TLS with Eclipse Paho C's asynchronous client (Debian's
 * libpaho-mqtt-dev, MQTTAsync over OpenSSL), at most 32 in flight as tether's `mqtt pub`,
 * TLS 1.2. The publishing thread waits only when the window is full; Paho's own thread does
 * the network I/O and calls back on each PUBACK.
 * usage: paho_async_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT */
#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected, failed, acked;

static void set(int *what, int value)
{
    pthread_mutex_lock(&lock);
    *what = value;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_connect(void *ctx, MQTTAsync_successData *r)
{
    (void)ctx, (void)r;
    set(&connected, 1);
}

static void on_failure(void *ctx, MQTTAsync_failureData *r)
{
    (void)ctx;
    fprintf(stderr, "paho_async_pub: failed (%d)\n", r ? r->code : 0);
    set(&failed, 1);
}

static void on_sent(void *ctx, MQTTAsync_successData *r)
{
    (void)ctx, (void)r;
    pthread_mutex_lock(&lock);
    acked++;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static int on_message(void *ctx, char *topic, int len, MQTTAsync_message *m)
{
    (void)ctx, (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* Waits until *what reaches at least value (or a failure). */
static int wait_for(const int *what, int value)
{
    pthread_mutex_lock(&lock);
    while (*what < value && !failed)
        pthread_cond_wait(&changed, &lock);
    int ok = !failed;
    pthread_mutex_unlock(&lock);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: paho_async_pub HOST PORT CAFILE CERT KEY TOPIC PAYLOAD COUNT\n");
        return 2;
    }
    int count = atoi(argv[8]);
    char uri[256];
    snprintf(uri, sizeof uri, "ssl://%s:%s", argv[1], argv[2]);
    MQTTAsync c;
    if (MQTTAsync_create(&c, uri, "paho-async-bench", MQTTCLIENT_PERSISTENCE_NONE, NULL) !=
        MQTTASYNC_SUCCESS)
        return 1;
    MQTTAsync_setCallbacks(c, NULL, NULL, on_message, NULL);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
    so.trustStore = argv[3];
    so.keyStore = argv[4];
    so.privateKey = argv[5];
    so.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
    so.enableServerCertAuth = 1;
    co.ssl = &so;
    co.keepAliveInterval = 60;
    co.cleansession = 1;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.maxInflight = WINDOW;
    co.onSuccess = on_connect;
    co.onFailure = on_failure;
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS || !wait_for(&connected, 1))
        return 1;
    const char *payload = argv[7];
    for (int i = 0; i < count; i++) {
        if (!wait_for(&acked, i - WINDOW + 1))
            return 1;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        ro.onSuccess = on_sent;
        ro.onFailure = on_failure;
        MQTTAsync_message m = MQTTAsync_message_initializer;
        m.payload = (void *)payload;
        m.payloadlen = (int)strlen(payload);
        m.qos = 1;
        if (MQTTAsync_sendMessage(c, argv[6], &m, &ro) != MQTTASYNC_SUCCESS)
            return 1;
    }
    if (!wait_for(&acked, count))
        return 1;
    MQTTAsync_disconnectOptions dop = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnect(c, &dop);
    MQTTAsync_destroy(&c);
    printf("{\"sent\":%d,\"acknowledged\":%d}\n", count, acked);
    return 0;
}
