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
 * And: before login a client is anonymous, and Mosquitto 2.0.11 gives it 90 s (1.5 x its
 * default keep-alive of 60 s) to send CONNECT, and buffers whatever length its first packet
 * announces (up to max_packet_size). SSL_accept, SSL_read and the SSL's ex_data are
 * interposed to watch each TLS connection from its accept until its CONNECT is complete: the
 * first packet must be a CONNECT (type 0x10) of at most TC_SHIM_CONNECT_MAX bytes, and it must
 * be complete within TC_SHIM_CONNECT_TIMEOUT_S of the accept; otherwise the socket is shut
 * down, and Mosquitto closes the connection at its next read. A connection that announced
 * "GET" (MQTT over WebSockets, handled by libwebsockets) is left alone after its first byte.
 * Nothing else of mosquitto is changed. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Before login (see above and cloud/README.md "Bounds"): the largest CONNECT packet accepted
 * (client id, user name and a SAS token need well under 2 KB), and the time from the TCP
 * accept to a complete CONNECT. */
#define TC_SHIM_CONNECT_MAX       16384u
#define TC_SHIM_CONNECT_TIMEOUT_S 10

STACK_OF(X509) * tether_tls_shim_chain(X509 *leaf);
void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb callback);
int listen(int fd, int backlog);
int SSL_accept(SSL *ssl);
int SSL_read(SSL *ssl, void *buf, int num);

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

/* --- the watch before login ---------------------------------------------------------------- */

enum watch_state { W_TYPE, W_LENGTH, W_BODY };

struct watch {
    struct watch *prev, *next;
    int fd;
    int shut;
    int64_t deadline_ms;
    enum watch_state state;
    uint32_t length; /* the CONNECT's remaining length as decoded so far */
    uint32_t mult;
    uint32_t left; /* bytes of the CONNECT body still to come */
};

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct watch *watching; /* connections accepted, CONNECT not yet complete */
static int watch_index = -1;
static pthread_once_t watch_once = PTHREAD_ONCE_INIT;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under watch_lock. */
static void unlink_watch(struct watch *w)
{
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (watching == w) {
        watching = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
}

/* Called by SSL_free (ex_data): the connection is gone before its socket is closed. */
static void watch_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL) {
        pthread_mutex_lock(&watch_lock);
        unlink_watch(ptr);
        pthread_mutex_unlock(&watch_lock);
        free(ptr);
    }
}

/* Shuts down the sockets whose CONNECT did not arrive in time. Holding watch_lock while
 * shutting down keeps the descriptor valid: SSL_free (watch_free) precedes close(). */
static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec tick = {0, 250 * 1000 * 1000};
        nanosleep(&tick, NULL);
        int64_t now = now_ms();
        pthread_mutex_lock(&watch_lock);
        for (struct watch *w = watching; w != NULL; w = w->next) {
            if (!w->shut && now >= w->deadline_ms) {
                shutdown(w->fd, SHUT_RDWR);
                w->shut = 1;
            }
        }
        pthread_mutex_unlock(&watch_lock);
    }
    return NULL;
}

static void watch_init(void)
{
    watch_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, watch_free);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, watchdog, NULL) != 0) {
        watch_index = -1;
    }
    pthread_attr_destroy(&attr);
}

int SSL_accept(SSL *ssl)
{
    typedef int (*real_fn)(SSL *);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "SSL_accept");
        *(void **)&real = sym;
    }
    if (real == NULL) {
        return -1;
    }
    pthread_once(&watch_once, watch_init);
    /* The first SSL_accept of a connection is Mosquitto's, right after accept(). */
    if (watch_index >= 0 && SSL_get_ex_data(ssl, watch_index) == NULL &&
        !SSL_is_init_finished(ssl) && SSL_get_fd(ssl) >= 0) {
        struct watch *w = calloc(1, sizeof *w);
        if (w != NULL) {
            w->fd = SSL_get_fd(ssl);
            w->deadline_ms = now_ms() + TC_SHIM_CONNECT_TIMEOUT_S * 1000;
            w->mult = 1;
            pthread_mutex_lock(&watch_lock);
            w->next = watching;
            if (watching != NULL) {
                watching->prev = w;
            }
            watching = w;
            pthread_mutex_unlock(&watch_lock);
            if (SSL_set_ex_data(ssl, watch_index, w) != 1) {
                watch_free(NULL, w, NULL, 0, 0, NULL);
            }
        }
    }
    return real(ssl);
}

/* Follows the first packet byte by byte. 1: CONNECT complete or not MQTT (stop watching);
 * -1: refused (not a CONNECT, or too long); 0: still reading. Under watch_lock. */
static int feed(struct watch *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (w->state) {
        case W_TYPE:
            if (p[i] == 'G') {
                return 1; /* an HTTP request: MQTT over WebSockets (libwebsockets) */
            }
            if (p[i] != 0x10) {
                return -1;
            }
            w->state = W_LENGTH;
            break;
        case W_LENGTH:
            w->length += (uint32_t)(p[i] & 127u) * w->mult;
            w->mult *= 128u;
            if (w->length > TC_SHIM_CONNECT_MAX ||
                (w->mult > 128u * 128u * 128u && (p[i] & 128u))) {
                return -1;
            }
            if ((p[i] & 128u) == 0) {
                w->left = w->length;
                w->state = W_BODY;
                if (w->left == 0) {
                    return 1;
                }
            }
            break;
        case W_BODY: {
            size_t take = n - i < w->left ? n - i : w->left;
            w->left -= (uint32_t)take;
            i += take - 1;
            if (w->left == 0) {
                return 1;
            }
            break;
        }
        }
    }
    return 0;
}

int SSL_read(SSL *ssl, void *buf, int num)
{
    typedef int (*real_fn)(SSL *, void *, int);
    static real_fn real = NULL;
    if (real == NULL) {
        void *sym = dlsym(RTLD_NEXT, "SSL_read");
        *(void **)&real = sym;
    }
    if (real == NULL) {
        return -1;
    }
    int n = real(ssl, buf, num);
    struct watch *w = n > 0 && watch_index >= 0 ? SSL_get_ex_data(ssl, watch_index) : NULL;
    if (w == NULL) {
        return n;
    }
    pthread_mutex_lock(&watch_lock);
    int verdict = feed(w, buf, (size_t)n);
    if (verdict != 0) {
        unlink_watch(w);
        if (verdict < 0) {
            shutdown(w->fd, SHUT_RDWR); /* Mosquitto's next read sees the end */
        }
    }
    pthread_mutex_unlock(&watch_lock);
    if (verdict != 0) {
        SSL_set_ex_data(ssl, watch_index, NULL);
        free(w);
    }
    return verdict < 0 ? 0 : n;
}
