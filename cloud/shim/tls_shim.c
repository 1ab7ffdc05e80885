/* TLS shim preloaded into mosquitto by `tether cloud up` (LD_PRELOAD).
 *
 * Why: Azure DPS and IoT Hub ask every client for a certificate in the first handshake but
 * do not require one (symmetric-key devices send none), and they accept any certificate at
 * the TLS layer: whether it is trusted is decided per enrollment (thumbprint, or chain up to
 * a group's CA). Mosquitto 2.0 cannot express this: with `require_certificate false` it
 * sets SSL_VERIFY_NONE, so no CertificateRequest is sent and a device cannot present its
 * certificate at all (checked with `openssl s_client -msg`: no CertificateRequest); with
 * `require_certificate true` a device without a certificate is refused, and the chain must
 * lead to the listener's cafile.
 *
 * What: this library interposes SSL_CTX_set_verify so that listener contexts use
 * SSL_VERIFY_PEER without FAIL_IF_NO_PEER_CERT (request, do not require) and a callback that
 * accepts the chain; OpenSSL still checks the CertificateVerify signature, so the client
 * proves it holds the key. The chain the client sent is attached to the leaf certificate
 * (X509 ex_data) so that the plugin, which only gets the leaf from
 * mosquitto_client_certificate(), can verify group enrollments; tether_tls_shim_chain()
 * returns it.
 *
 * Also: Mosquitto 2.0 listens with a fixed backlog of 100. A burst of devices connecting at
 * once (a fleet after an outage, bench/load) overflows it, and the kernel drops the
 * handshakes' last ACK: those devices wait out TCP retransmissions (1 s, then 3 s...). listen()
 * is interposed to ask for SOMAXCONN instead (the kernel caps it at net.core.somaxconn).
 *
 * And: IoT Hub completes a cloud-to-device message on the device's PUBACK, which Mosquitto
 * 2.0 does not show plugins. SSL_read and SSL_write are interposed to read (never change)
 * the MQTT stream of each server-side TLS connection with mqtt_tap.c, and the plugin, which
 * registers a function with tether_tls_shim_tap(), is told of each CONNECT (client id),
 * outgoing QoS 1 PUBLISH (topic, packet id) and incoming PUBACK (packet id). The broker is
 * single-threaded; so is this. 1.4 KB per connection (x86-64), freed with its SSL.
 * Nothing else of mosquitto is changed. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mqtt_tap.h"

/* What the plugin is told: event is enum tc_tap_event; client_id is the id the client sent
 * in CONNECT; data/len the client id (CONNECT) or topic (PUBLISH). */
typedef void (*tether_tap_fn)(const char *client_id, int event, const char *data, size_t len,
                              unsigned packet_id);

STACK_OF(X509) * tether_tls_shim_chain(X509 *leaf);
void tether_tls_shim_tap(tether_tap_fn fn);
void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb callback);
int listen(int fd, int backlog);
int SSL_read(SSL *ssl, void *buf, int num);
int SSL_write(SSL *ssl, const void *buf, int num);

static int chain_index = -1;

static void chain_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        sk_X509_pop_free((STACK_OF(X509) *)ptr, X509_free);
    }
}

static int ensure_index(void)
{
    if (chain_index < 0) {
        chain_index = X509_get_ex_new_index(0, NULL, NULL, NULL, chain_free);
    }
    return chain_index;
}

STACK_OF(X509) * tether_tls_shim_chain(X509 *leaf)
{
    if (leaf == NULL || ensure_index() < 0) {
        return NULL;
    }
    return (STACK_OF(X509) *)X509_get_ex_data(leaf, chain_index);
}

static int accept_and_keep_chain(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(store);
    if (leaf != NULL && sent != NULL && ensure_index() >= 0 &&
        X509_get_ex_data(leaf, chain_index) == NULL) {
        STACK_OF(X509) *copy = sk_X509_new_null();
        if (copy != NULL) {
            for (int i = 0; i < sk_X509_num(sent); i++) {
                X509 *c = sk_X509_value(sent, i);
                if (c != leaf && X509_up_ref(c) == 1) {
                    sk_X509_push(copy, c);
                }
            }
            if (X509_set_ex_data(leaf, chain_index, copy) != 1) {
                sk_X509_pop_free(copy, X509_free);
            }
        }
    }
    return 1; /* trust is decided by the plugin, per enrollment */
}

void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb callback)
{
    typedef void (*real_fn)(SSL_CTX *, int, SSL_verify_cb);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "SSL_CTX_set_verify");
        *(void **)&real = sym;
    }
    if (real == NULL) {
        return;
    }
    if (SSL_CTX_get_ssl_method(ctx) == TLS_server_method()) {
        mode = SSL_VERIFY_PEER;
        callback = accept_and_keep_chain;
    }
    real(ctx, mode, callback);
}

int listen(int fd, int backlog)
{
    typedef int (*real_fn)(int, int);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "listen");
        *(void **)&real = sym;
    }
    if (real == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real(fd, backlog < SOMAXCONN ? SOMAXCONN : backlog);
}

/* --- the MQTT stream, read for the plugin --------------------------------------------- */

struct conn_tap {
    struct tc_tap in;
    struct tc_tap out;
    char client_id[256];
    int connected; /* CONNECT seen */
};

static tether_tap_fn tap_fn;
static int tap_index = -1;

void tether_tls_shim_tap(tether_tap_fn fn)
{
    tap_fn = fn;
}

static void tap_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    free(ptr);
}

static struct conn_tap *tap_of(SSL *ssl)
{
    if (tap_fn == NULL || !SSL_is_server(ssl)) {
        return NULL;
    }
    if (tap_index < 0) {
        tap_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, tap_free);
        if (tap_index < 0) {
            return NULL;
        }
    }
    struct conn_tap *t = SSL_get_ex_data(ssl, tap_index);
    if (t == NULL) {
        t = calloc(1, sizeof *t);
        if (t == NULL || SSL_set_ex_data(ssl, tap_index, t) != 1) {
            free(t);
            return NULL;
        }
        tc_tap_init(&t->in, TC_TAP_FIRST_CONNECT);
        tc_tap_init(&t->out, TC_TAP_FIRST_CONNACK);
    }
    return t;
}

static void on_packet(void *ctx, enum tc_tap_event event, const char *data, size_t len,
                      unsigned packet_id)
{
    struct conn_tap *t = ctx;
    if (event == TC_TAP_CONNECT) {
        size_t n = len < sizeof t->client_id - 1 ? len : 0; /* too long: not tapped */
        memcpy(t->client_id, data, n);
        t->client_id[n] = '\0';
        t->connected = n > 0 && memchr(data, '\0', n) == NULL;
        if (!t->connected) {
            return;
        }
    } else if (!t->connected) {
        return;
    }
    tap_fn(t->client_id, (int)event, data, len, packet_id);
}

int SSL_read(SSL *ssl, void *buf, int num)
{
    typedef int (*real_fn)(SSL *, void *, int);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "SSL_read");
        *(void **)&real = sym;
    }
    int n = real(ssl, buf, num);
    struct conn_tap *t = n > 0 ? tap_of(ssl) : NULL;
    if (t != NULL) {
        tc_tap_feed(&t->in, buf, (size_t)n, on_packet, t);
    }
    return n;
}

int SSL_write(SSL *ssl, const void *buf, int num)
{
    typedef int (*real_fn)(SSL *, const void *, int);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "SSL_write");
        *(void **)&real = sym;
    }
    int n = real(ssl, buf, num);
    struct conn_tap *t = n > 0 ? tap_of(ssl) : NULL;
    if (t != NULL) {
        tc_tap_feed(&t->out, buf, (size_t)n, on_packet, t);
    }
    return n;
}
