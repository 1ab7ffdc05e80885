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
 * Also: Azure DPS ignores the TLS max_fragment_length extension (RFC 6066) and sends records
 * of up to 16 KB; IoT Hub negotiated it only in a preview. OpenSSL honours it, and has no
 * option to ignore it. Listener contexts get a server-name callback, which OpenSSL runs
 * after it has parsed every ClientHello extension and before it writes the ServerHello:
 * there the fragment length the session recorded is set back to none, so the ServerHello
 * does not echo it and records are sent at full size. SNI tells the services apart: a name
 * under azure-devices-provisioning.net, localhost, or no name is DPS; any other name is a
 * hub, which honours the extension when TETHER_CLOUD_HUB_MFL=honour (tether cloud up
 * --hub-fragment-length honour). OpenSSL 3.0 has a getter for that session field but no
 * setter; its offset is found once by probing a fresh SSL_SESSION through the getter.
 * Nothing else of mosquitto is changed. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

STACK_OF(X509) * tether_tls_shim_chain(X509 *leaf);
void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb callback);
int listen(int fd, int backlog);

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
    return real(fd, backlog < SOMAXCONN ? SOMAXCONN : backlog);
}
