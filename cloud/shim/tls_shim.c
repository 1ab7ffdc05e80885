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
 * TLS versions: Azure DPS speaks TLS 1.2 only, and IoT Hub speaks 1.2 on its regular host
 * name, offering 1.3 only on its separate device host name `{hub}.device.{suffix}`
 * (PROTOCOL.md, "TLS"). Mosquitto 2.0's `tls_version tlsv1.2` only sets a minimum, so every
 * listener context gets TLS 1.2 as its maximum here, and a ClientHello callback lifts it to
 * 1.3 for a server name of that form (tc_tls13_host).
 *
 * MQTT over WebSockets: Mosquitto 2.0.11's own websockets listener (libwebsockets) cannot
 * stand in for Azure's: it bound `::` (all interfaces) although the configuration named
 * 127.0.0.1 (checked with strace), and mosquitto_client_certificate() returns NULL for its
 * clients, so X.509 devices could not authenticate. Instead the WebSocket listener is an
 * ordinary Mosquitto TLS listener (so binding, client certificates, TLS versions and the
 * plugin behave exactly as on the MQTT port) whose connections, recognised by the local port
 * named in TETHER_CLOUD_WS_PORT, get the HTTP upgrade and RFC 6455 framing here: SSL_read,
 * SSL_write and SSL_pending are interposed for those SSL objects only (common/ws.c holds the
 * parsing). Every other connection goes straight to OpenSSL.
 *
 * And: IoT Hub completes a cloud-to-device message on the device's PUBACK, which Mosquitto
 * 2.0 does not show plugins. SSL_read and SSL_write are interposed to read (never change)
 * the MQTT stream of each server-side TLS connection with mqtt_tap.c (on the WebSocket
 * listener, the stream inside the frames), and the plugin, which
 * registers a function with tether_tls_shim_tap(), is told of each CONNECT (client id),
 * outgoing QoS 1 PUBLISH (topic, packet id) and incoming PUBACK (packet id), each with the
 * connection's serial number: the plugin ties a connection to its session when it
 * authenticates it (BASIC_AUTH follows that CONNECT in the same call), never by client id,
 * which any connection may claim. The broker is single-threaded; so is this. 1.2 KB per
 * connection (x86-64: sizeof struct conn_tap, 1,192 bytes), freed with its SSL.
 *
 * Fragment length: Azure DPS ignores the TLS max_fragment_length extension (RFC 6066) and sends
 * records of up to 16 KB; IoT Hub negotiated it only in a preview. OpenSSL honours it, and has no
 * option to ignore it. Listener contexts get a server-name callback, which OpenSSL runs
 * after it has parsed every ClientHello extension and before it writes the ServerHello:
 * there the fragment length the session recorded is set back to none, so the ServerHello
 * does not echo it and records are sent at full size. SNI tells the services apart: a name
 * under azure-devices-provisioning.net, localhost, or no name is DPS; any other name is a
 * hub, which honours the extension when TETHER_CLOUD_HUB_MFL=honour (tether cloud up
 * --hub-fragment-length honour). OpenSSL 3.0 has a getter for that session field but no
 * setter; its offset is found once by probing a fresh SSL_SESSION through the getter.
 *
 * Before login a client is anonymous, and Mosquitto 2.0.11 gives it 90 s (1.5 x its
 * default keep-alive of 60 s) to send CONNECT, and buffers whatever length its first packet
 * announces (up to max_packet_size). SSL_accept, SSL_read and the SSL's ex_data are
 * interposed to watch each TLS connection from its accept until its CONNECT is complete: the
 * first packet must be a CONNECT (type 0x10) of at most TC_SHIM_CONNECT_MAX bytes, and it must
 * be complete within TC_SHIM_CONNECT_TIMEOUT_S of the accept; otherwise the socket is shut
 * down, and Mosquitto closes the connection at its next read. On the WebSocket listener the
 * watch reads the MQTT bytes inside the frames, so the upgrade counts against the same time.
 *
 * Nothing else of mosquitto is changed. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "mqtt_tap.h"
#include "ws.h"

/* Before login (see above and cloud/README.md "Bounds"): the largest CONNECT packet accepted
 * (client id, user name and a SAS token need well under 2 KB), and the time from the TCP
 * accept to a complete CONNECT. */
#define TC_SHIM_CONNECT_MAX       16384u
#define TC_SHIM_CONNECT_TIMEOUT_S 10

/* What the plugin is told: conn is the connection's serial number (from 1, never reused);
 * event is enum tc_tap_event; data/len the client id (CONNECT) or topic (PUBLISH). */
typedef void (*tether_tap_fn)(uint64_t conn, int event, const char *data, size_t len,
                              unsigned packet_id);

STACK_OF(X509) * tether_tls_shim_chain(X509 *leaf);
void tether_tls_shim_tap(tether_tap_fn fn);
void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb callback);
int listen(int fd, int backlog);
int SSL_accept(SSL *ssl);
int SSL_read(SSL *ssl, void *buf, int num);
int SSL_write(SSL *ssl, const void *buf, int num);
int SSL_pending(const SSL *ssl);

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

/* Runs before the version is chosen: 1.3 only for a hub's device host name. */
static int by_server_name(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) == 1 &&
        tc_tls13_host(ext, len)) {
        SSL_set_max_proto_version(ssl, TLS1_3_VERSION);
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Offset of the negotiated fragment-length code in OpenSSL's SSL_SESSION; -1: not found. */
static long mfl_offset(void)
{
    static long offset = -2;
    if (offset != -2) {
        return offset;
    }
    offset = -1;
    SSL_SESSION *s = SSL_SESSION_new();
    if (s == NULL) {
        return offset;
    }
    unsigned char *bytes = (unsigned char *)s;
    size_t size = malloc_usable_size(s); /* OpenSSL allocates with malloc */
    for (size_t i = 0; i < size && offset < 0; i++) {
        unsigned char saved = bytes[i];
        bytes[i] = TLSEXT_max_fragment_length_2048;
        if (SSL_SESSION_get_max_fragment_length(s) == TLSEXT_max_fragment_length_2048) {
            offset = (long)i;
        }
        bytes[i] = saved;
    }
    SSL_SESSION_free(s);
    return offset;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* DPS: no SNI, localhost, or Azure's DPS domain. Everything else is a hub. */
static int honours_fragment_length(const char *sni)
{
    if (sni == NULL || strcasecmp(sni, "localhost") == 0 ||
        ends_with(sni, "azure-devices-provisioning.net")) {
        return 0;
    }
    const char *hub = getenv("TETHER_CLOUD_HUB_MFL");
    return hub != NULL && strcmp(hub, "honour") == 0;
}

static int forget_fragment_length(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    SSL_SESSION *sess = SSL_get_session(ssl);
    long off = mfl_offset();
    if (sess != NULL && off >= 0 && SSL_SESSION_get_max_fragment_length(sess) != 0 &&
        !honours_fragment_length(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name))) {
        ((unsigned char *)sess)[off] = 0;
    }
    return SSL_TLSEXT_ERR_NOACK; /* what OpenSSL does without a callback */
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
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_client_hello_cb(ctx, by_server_name, NULL);
        SSL_CTX_set_tlsext_servername_callback(ctx, forget_fragment_length);
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
    /* Tests only: TETHER_CLOUD_SNDBUF=N gives every connection an N-byte send buffer
     * (accepted sockets inherit it), so that a slow reader makes the broker's writes block
     * and the WebSocket framing's WANT_WRITE retry is exercised. */
    const char *sndbuf = getenv("TETHER_CLOUD_SNDBUF");
    if (sndbuf != NULL) {
        int n = atoi(sndbuf);
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof n);
    }
    return real(fd, backlog < SOMAXCONN ? SOMAXCONN : backlog);
}

/* ---- MQTT over WebSockets on the listener named by TETHER_CLOUD_WS_PORT ---- */

enum ws_phase { WS_HTTP, WS_OPEN, WS_CLOSED };

/* Per WebSocket connection: under 400 bytes while idle. The buffers exist only while they
 * hold bytes (Mosquitto's SSL_MODE_RELEASE_BUFFERS likewise frees OpenSSL's). */
struct ws_conn {
    enum ws_phase phase;
    struct tc_ws_decoder dec;
    uint8_t *in; /* decrypted bytes not yet used: the upgrade request, then frames */
    size_t in_pos, in_len;
    uint8_t *out; /* the frame being written: retried with the same buffer on WANT_WRITE */
    size_t out_len;
    int out_num;       /* the caller's byte count it carries; 0 = a pong of our own */
    int out_pending;   /* SSL_write said WANT_WRITE for it */
    uint8_t pong[125]; /* a ping's payload, answered before the next frame */
    size_t pong_len;
    int pong_due;
};

static struct ws_conn not_ws; /* marks SSL objects of other listeners */
static int ws_index = -1;

typedef int (*ssl_io_fn)(SSL *, void *, int);
typedef int (*ssl_wr_fn)(SSL *, const void *, int);
typedef int (*ssl_pending_fn)(const SSL *);

static void *real_sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

static int real_read(SSL *ssl, void *buf, int num)
{
    static ssl_io_fn fn = NULL;
    if (fn == NULL) {
        *(void **)&fn = real_sym("SSL_read");
    }
    return fn(ssl, buf, num);
}

static int real_write(SSL *ssl, const void *buf, int num)
{
    static ssl_wr_fn fn = NULL;
    if (fn == NULL) {
        *(void **)&fn = real_sym("SSL_write");
    }
    return fn(ssl, buf, num);
}

static void ws_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    struct ws_conn *c = ptr;
    if (c != NULL && c != &not_ws) {
        free(c->in);
        free(c->out);
        free(c);
    }
}

static int ws_port(void)
{
    static int port = -1;
    if (port < 0) {
        const char *e = getenv("TETHER_CLOUD_WS_PORT");
        port = e != NULL ? atoi(e) : 0;
    }
    return port;
}

/* The WebSocket state of a server SSL, created on first use; NULL for every other SSL. */
static struct ws_conn *ws_of(const SSL *ssl)
{
    if (ws_port() <= 0 || !SSL_is_server((SSL *)ssl)) {
        return NULL;
    }
    if (ws_index < 0) {
        ws_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ws_free);
        if (ws_index < 0) {
            return NULL;
        }
    }
    struct ws_conn *c = SSL_get_ex_data(ssl, ws_index);
    if (c == NULL) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof sa;
        int fd = SSL_get_fd(ssl);
        int port = 0;
        if (fd >= 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
            port = sa.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&sa)->sin_port)
                   : sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                              : 0;
        }
        c = port == ws_port() ? calloc(1, sizeof *c) : NULL;
        if (SSL_set_ex_data((SSL *)ssl, ws_index, c != NULL ? c : &not_ws) != 1) {
            free(c);
            return NULL;
        }
        if (c == NULL) {
            return NULL;
        }
    }
    return c == &not_ws ? NULL : c;
}

/* End the connection: Mosquitto sees SSL_ERROR_SSL (the reason is in its log) and closes. */
static int ws_fail(struct ws_conn *c, const char *why)
{
    c->phase = WS_CLOSED;
    ERR_raise_data(ERR_LIB_USER, 0, "tether websocket: %s", why);
    return -1;
}

static void ws_sent(struct ws_conn *c)
{
    free(c->out);
    c->out = NULL;
    c->out_pending = 0;
}

/* Bytes in c->in were used up to c->in_pos: drop the buffer when nothing is left. */
static void ws_used(struct ws_conn *c)
{
    if (c->in_pos == c->in_len) {
        free(c->in);
        c->in = NULL;
        c->in_pos = c->in_len = 0;
    }
}

/* Write a whole frame of ours or of the caller's; keeps it for a retry on WANT_WRITE. */
static int ws_send(SSL *ssl, struct ws_conn *c, uint8_t op, const void *data, size_t len, int num)
{
    uint8_t hdr[10];
    size_t hl = tc_ws_frame_header(op, len, hdr);
    c->out = malloc(hl + len);
    if (c->out == NULL) {
        return ws_fail(c, "out of memory");
    }
    memcpy(c->out, hdr, hl);
    if (len > 0) {
        memcpy(c->out + hl, data, len);
    }
    c->out_len = hl + len;
    c->out_num = num;
    int r = real_write(ssl, c->out, (int)c->out_len);
    c->out_pending = r <= 0;
    if (!c->out_pending) {
        ws_sent(c);
    }
    return r <= 0 ? r : (num > 0 ? num : 1);
}

/* The upgrade request: collect it, answer it. Returns 1 when open, -1 on an error. */
static int ws_upgrade(SSL *ssl, struct ws_conn *c)
{
    while (c->phase == WS_HTTP) {
        if (c->in == NULL && (c->in = malloc(TC_WS_REQUEST_MAX)) == NULL) {
            return ws_fail(c, "out of memory");
        }
        int r = real_read(ssl, c->in + c->in_len, (int)(TC_WS_REQUEST_MAX - c->in_len));
        if (r <= 0) {
            return r;
        }
        c->in_len += (size_t)r;
        char response[512];
        size_t used = 0;
        enum tc_ws_handshake h =
            tc_ws_handshake((const char *)c->in, c->in_len, &used, response, sizeof response);
        if (h == TC_WS_NEED_MORE) {
            continue;
        }
        (void)real_write(ssl, response, (int)strlen(response));
        if (h != TC_WS_UPGRADE) {
            return ws_fail(c, "not an MQTT WebSocket upgrade on /$iothub/websocket");
        }
        /* Frames the client sent right behind its request stay in c->in. */
        c->in_pos = used;
        ws_used(c);
        c->phase = WS_OPEN;
    }
    return 1;
}

/* MQTT over WebSockets: the MQTT bytes of a frame (or OpenSSL's, on other listeners). */
static int ws_read(SSL *ssl, void *buf, int num)
{
    struct ws_conn *c = ws_of(ssl);
    if (c == NULL) {
        return real_read(ssl, buf, num);
    }
    if (c->phase == WS_CLOSED) {
        return ws_fail(c, "connection closed");
    }
    if (num <= 0) {
        return 0;
    }
    if (c->phase == WS_HTTP) {
        int r = ws_upgrade(ssl, c);
        if (r <= 0) {
            return r;
        }
    }
    for (;;) {
        if (c->in == NULL) {
            enum { chunk = 16384 }; /* one TLS record */
            if ((c->in = malloc(chunk)) == NULL) {
                return ws_fail(c, "out of memory");
            }
            int r = real_read(ssl, c->in, chunk);
            if (r <= 0) {
                free(c->in);
                c->in = NULL;
                return r;
            }
            c->in_pos = 0;
            c->in_len = (size_t)r;
        }
        size_t used = 0;
        size_t got = 0;
        enum tc_ws_event ev = tc_ws_decode(&c->dec, c->in + c->in_pos, c->in_len - c->in_pos, &used,
                                           buf, (size_t)num, &got);
        c->in_pos += used;
        ws_used(c);
        switch (ev) {
        case TC_WS_EV_DATA:
            return (int)got;
        case TC_WS_EV_PING:
            memcpy(c->pong, c->dec.ctrl, c->dec.ctrl_len);
            c->pong_len = c->dec.ctrl_len;
            c->pong_due = 1;
            if (!c->out_pending) {
                c->pong_due = 0;
                (void)ws_send(ssl, c, TC_WS_OP_PONG, c->pong, c->pong_len, 0);
            }
            break;
        case TC_WS_EV_CLOSE:
            if (!c->out_pending) {
                (void)ws_send(ssl, c, TC_WS_OP_CLOSE, c->dec.ctrl, c->dec.ctrl_len >= 2 ? 2 : 0, 0);
            }
            return ws_fail(c, "closed by the client");
        case TC_WS_EV_ERROR:
            return ws_fail(c, "protocol error in a frame");
        case TC_WS_EV_NONE:
            break;
        }
    }
}

/* The MQTT bytes, framed on the WebSocket listener. */
static int ws_write(SSL *ssl, const void *buf, int num)
{
    struct ws_conn *c = ws_of(ssl);
    if (c == NULL || c->phase == WS_HTTP) {
        return real_write(ssl, buf, num);
    }
    if (c->phase == WS_CLOSED) {
        return ws_fail(c, "connection closed");
    }
    if (c->out_pending) {
        /* OpenSSL wants the same buffer again: a frame of ours, or the caller's retry */
        int r = real_write(ssl, c->out, (int)c->out_len);
        if (r <= 0) {
            return r;
        }
        int carried = c->out_num;
        ws_sent(c);
        if (carried > 0) {
            return carried;
        }
    }
    if (c->pong_due) {
        c->pong_due = 0;
        int r = ws_send(ssl, c, TC_WS_OP_PONG, c->pong, c->pong_len, 0);
        if (r <= 0) {
            return r;
        }
    }
    return num <= 0 ? real_write(ssl, buf, num)
                    : ws_send(ssl, c, TC_WS_OP_BINARY, buf, (size_t)num, num);
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

/* Follows the first packet byte by byte. 1: CONNECT complete (stop watching);
 * -1: refused (not a CONNECT, or too long); 0: still reading. Under watch_lock. */
static int feed(struct watch *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (w->state) {
        case W_TYPE:
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

/* The n bytes just read on a watched connection: n, or 0 once its first packet is refused
 * (the socket is shut down; Mosquitto's next read sees the end). */
static int watch_read(SSL *ssl, const void *buf, int n)
{
    struct watch *w = n > 0 && watch_index >= 0 ? SSL_get_ex_data(ssl, watch_index) : NULL;
    if (w == NULL) {
        return n;
    }
    pthread_mutex_lock(&watch_lock);
    int verdict = feed(w, buf, (size_t)n);
    if (verdict != 0) {
        unlink_watch(w);
        if (verdict < 0) {
            shutdown(w->fd, SHUT_RDWR);
        }
    }
    pthread_mutex_unlock(&watch_lock);
    if (verdict != 0) {
        SSL_set_ex_data(ssl, watch_index, NULL);
        free(w);
    }
    return verdict < 0 ? 0 : n;
}

/* --- the MQTT stream, read for the plugin --------------------------------------------- */

struct conn_tap {
    struct tc_tap in;
    struct tc_tap out;
    uint64_t serial;
};

static tether_tap_fn tap_fn;
static int tap_index = -1;
static uint64_t tap_serial;

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
        t->serial = ++tap_serial;
    }
    return t;
}

static void on_packet(void *ctx, enum tc_tap_event event, const char *data, size_t len,
                      unsigned packet_id)
{
    const struct conn_tap *t = ctx;
    tap_fn(t->serial, (int)event, data, len, packet_id);
}

/* OpenSSL: "The current thread's error queue must be empty before the TLS/SSL I/O operation
 * is attempted, or SSL_get_error() will not work reliably." Mosquitto does not clear it
 * before SSL_read/SSL_write, and errors the plugin left there (a PEM reader's "no start line"
 * after the last certificate of a file) made the next WANT_READ look like a fatal error
 * ("Protocol error"): the queue is cleared before every read and write. */
int SSL_read(SSL *ssl, void *buf, int num)
{
    ERR_clear_error();
    int n = watch_read(ssl, buf, ws_read(ssl, buf, num));
    struct conn_tap *t = n > 0 ? tap_of(ssl) : NULL;
    if (t != NULL) {
        tc_tap_feed(&t->in, buf, (size_t)n, on_packet, t);
    }
    return n;
}

int SSL_write(SSL *ssl, const void *buf, int num)
{
    ERR_clear_error();
    int n = ws_write(ssl, buf, num);
    struct conn_tap *t = n > 0 ? tap_of(ssl) : NULL;
    if (t != NULL) {
        tc_tap_feed(&t->out, buf, (size_t)n, on_packet, t);
    }
    return n;
}

int SSL_pending(const SSL *ssl)
{
    static ssl_pending_fn fn = NULL;
    if (fn == NULL) {
        *(void **)&fn = real_sym("SSL_pending");
    }
    int n = fn(ssl);
    struct ws_conn *c = ws_of(ssl);
    if (c != NULL && c->phase == WS_OPEN) {
        n += (int)(c->in_len - c->in_pos);
    }
    return n;
}
