/* TLS client on mbedTLS: credentials, a stepped handshake that records its stage, and the
 * translation of every mbedTLS failure into a tether status with its numbers. */

/* mbedTLS 3.6 has no getter for the handshake state or the last alert received; tether pins
 * the 3.6 LTS line, so it reads those two fields directly. */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS

#include "tether/tls.h"

#include <stdio.h>
#include <ctype.h>
#include <string.h>

#include "mbedtls/ecdsa.h"
#include "mbedtls/error.h"
#include "mbedtls/net_sockets.h"
#include "mbedtls/pem.h"
#include "mbedtls/platform.h"
#include "mbedtls/sha256.h"
#include "mbedtls/version.h"
#if defined(MBEDTLS_PSA_CRYPTO_C)
#include "psa/crypto.h"
#endif

#include "tether/heap.h"
#include "tether/sntp.h"
#include "tls_internal.h"

#ifndef TETHER_MBEDTLS_DEBIAN_VERSION
#define TETHER_MBEDTLS_DEBIAN_VERSION "unknown"
#endif
#ifndef TETHER_MFL_DEFAULT
#define TETHER_MFL_DEFAULT 0
#endif

void tether_tls_get_build_info(tether_tls_build_info *out)
{
    memset(out, 0, sizeof *out);
    out->mbedtls_version = MBEDTLS_VERSION_STRING;
    out->debian_version = TETHER_MBEDTLS_DEBIAN_VERSION;
    out->profile = TETHER_PROFILE_NAME;
    out->in_content_len = MBEDTLS_SSL_IN_CONTENT_LEN;
    out->out_content_len = MBEDTLS_SSL_OUT_CONTENT_LEN;
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    out->tls13 = true;
#endif
#if defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
    out->variable_buffers = true;
#endif
    out->default_max_fragment = (uint16_t)TETHER_MFL_DEFAULT;
}

tether_tls_options tether_tls_options_default(void)
{
    tether_tls_options o;
    memset(&o, 0, sizeof o);
    o.port = 8883;
    o.connect_timeout_ms = 10000;
    o.handshake_timeout_ms = 30000;
    o.io_timeout_ms = 1000;
    return o;
}

bool tether_tls_is_device_host_name(const char *host)
{
    if (host == NULL)
        return false;
    const char *dot = strchr(host, '.');
    if (dot == NULL || dot == host)
        return false;
    /* "device." and at least one more label, as Azure's {hub}.device.azure-devices.net */
    const char *rest = dot + 1;
    static const char label[] = "device.";
    for (size_t i = 0; i < sizeof label - 1; i++)
        if (rest[i] == 0 || tolower((unsigned char)rest[i]) != label[i])
            return false;
    return rest[7] != 0 && rest[7] != '.';
}

bool tether_tls_offers_tls13(const tether_tls_options *opts)
{
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    if (opts == NULL || opts->versions == TETHER_TLS_VERSIONS_1_2)
        return false;
    return opts->versions == TETHER_TLS_VERSIONS_1_2_AND_1_3 ||
           tether_tls_is_device_host_name(opts->host);
#else
    (void)opts;
    return false;
#endif
}

static int entropy_source(void *data, unsigned char *out, size_t len, size_t *olen)
{
    (void)data;
    if (tether_port_entropy(out, len) != TETHER_OK)
        return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
    *olen = len;
    return 0;
}

#if defined(MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG)
/* PSA's random generator (TLS 1.3 builds) draws from the port too. */
psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context,
                                             uint8_t *output, size_t output_size,
                                             size_t *output_length);
psa_status_t mbedtls_psa_external_get_random(mbedtls_psa_external_random_context_t *context,
                                             uint8_t *output, size_t output_size,
                                             size_t *output_length)
{
    (void)context;
    if (tether_port_entropy(output, output_size) != TETHER_OK)
        return PSA_ERROR_INSUFFICIENT_ENTROPY;
    *output_length = output_size;
    return PSA_SUCCESS;
}
#endif

/* mbedTLS checks certificate dates against this clock: the port's, SNTP-corrected. */
static mbedtls_time_t port_time(mbedtls_time_t *out)
{
    mbedtls_time_t now = (mbedtls_time_t)tether_clock_unix_s();
    if (out)
        *out = now;
    return now;
}

static void clear_diag(tether_tls *tls)
{
    memset(&tls->diag, 0, sizeof tls->diag);
    tls->diag.alert = -1;
}

tether_status tether_tls_init(tether_tls *tls)
{
    if (tls == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(tls, 0, sizeof *tls);
    tls->sock.fd = -1;
    clear_diag(tls);
    tether_heap_install_default();
    mbedtls_platform_set_time(port_time);
    mbedtls_ssl_init(&tls->ssl);
    mbedtls_ssl_config_init(&tls->conf);
    mbedtls_x509_crt_init(&tls->trust);
    mbedtls_x509_crt_init(&tls->chain);
    mbedtls_pk_init(&tls->key);
    mbedtls_entropy_init(&tls->entropy);
    mbedtls_ctr_drbg_init(&tls->drbg);

    int ret = mbedtls_entropy_add_source(&tls->entropy, entropy_source, NULL, 32,
                                         MBEDTLS_ENTROPY_SOURCE_STRONG);
    if (ret == 0) {
        static const unsigned char personal[] = "tether";
        ret = mbedtls_ctr_drbg_seed(&tls->drbg, mbedtls_entropy_func, &tls->entropy, personal,
                                    sizeof personal - 1);
    }
    if (ret != 0)
        return tether_tls_fail(tls, ret);
#if defined(MBEDTLS_PSA_CRYPTO_C)
    if (psa_crypto_init() != PSA_SUCCESS) {
        tls->diag.status = TETHER_ENTROPY_FAILED;
        return TETHER_ENTROPY_FAILED;
    }
#endif
    return TETHER_OK;
}

/* Whether the roots are parsed when mbedTLS looks for an issuer (trusted_roots_for). */
static bool trust_on_demand(void)
{
#if defined(MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK)
    return true;
#else
    return false;
#endif
}

/* The trust store, parsed from the caller's buffers. Returns mbedTLS's code (0 = parsed). */
static int parse_trust(tether_tls *tls)
{
    int ret = 0;
    for (size_t i = 0; i < tls->trust_count && ret >= 0; i++)
        ret = mbedtls_x509_crt_parse(&tls->trust, tls->trust_src[i].data, tls->trust_src[i].len);
    /* A positive return counts certificates that failed while others parsed. */
    if (ret >= 0 && tls->trust.raw.len == 0)
        ret = MBEDTLS_ERR_X509_INVALID_FORMAT;
    tls->trust_parsed = true;
    return ret < 0 ? ret : 0;
}

static void release_trust(tether_tls *tls)
{
    if (!tls->trust_parsed)
        return;
    mbedtls_x509_crt_free(&tls->trust);
    mbedtls_x509_crt_init(&tls->trust);
    tls->trust_parsed = false;
}

static void release_identity(tether_tls *tls)
{
    if (!tls->identity_parsed)
        return;
    mbedtls_x509_crt_free(&tls->chain);
    mbedtls_x509_crt_init(&tls->chain);
    mbedtls_pk_free(&tls->key);
    mbedtls_pk_init(&tls->key);
    tls->identity_parsed = false;
}

/* Adds a root's subject to the diag's list of trusted roots (named on verify failures). */
static void name_root(tether_tls_diag *d, size_t *used, const mbedtls_x509_crt *c)
{
    if (*used + 4 >= sizeof d->trusted_roots)
        return;
    if (*used > 0) {
        memcpy(d->trusted_roots + *used, "; ", 2);
        *used += 2;
    }
    int n = mbedtls_x509_dn_gets(d->trusted_roots + *used, sizeof d->trusted_roots - *used,
                                 &c->subject);
    if (n > 0)
        *used += (size_t)n;
}

#if defined(MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK)
/* The trust store on demand (profiles that define MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK):
 * when mbedTLS looks for the issuer of a certificate of the server's chain, the caller's roots
 * are parsed one certificate at a time and only those whose subject is that issuer are kept,
 * so a bundle of roots costs the heap of the one in use. mbedTLS frees the candidates. */
typedef struct root_search {
    tether_tls *tls;
    const mbedtls_x509_crt *child;
    mbedtls_x509_crt *found;
    size_t named;
} root_search;

/* One root, DER, parsed in place. The first root whose subject is the child's issuer becomes
 * the found chain as parsed, without a second copy (its DER is the caller's, which outlives
 * the handshake, or a decoded PEM block the caller hands over): returns 1 then. */
static int consider_root(root_search *rs, unsigned char *der, size_t len, int *ret_out)
{
    mbedtls_x509_crt one;
    mbedtls_x509_crt_init(&one);
    int ret = mbedtls_x509_crt_parse_der_nocopy(&one, der, len);
    int taken = 0;
    if (ret == 0) {
        name_root(&rs->tls->diag, &rs->named, &one);
        bool issuer = one.subject_raw.len == rs->child->issuer_raw.len &&
                      memcmp(one.subject_raw.p, rs->child->issuer_raw.p, one.subject_raw.len) == 0;
        if (issuer && rs->found->raw.len == 0) {
            *rs->found = one; /* the parsed root itself: no second copy */
            taken = 1;
        } else if (issuer) {
            ret = mbedtls_x509_crt_parse_der(rs->found, der, len);
        }
    }
    if (!taken)
        mbedtls_x509_crt_free(&one);
    /* A root this build cannot read (an RSA root without RSA) is skipped, as
     * tether_tls_add_trust accepted the bundle for the roots it can read. */
    *ret_out = tether_mbedtls_is_alloc_failure(ret) ? ret : 0;
    return taken;
}

static int consider_source(root_search *rs, const uint8_t *data, size_t len)
{
    int ret = 0;
    if (len == 0 || data[len - 1] != '\0' ||
        strstr((const char *)data, "-----BEGIN CERTIFICATE-----") == NULL) {
        consider_root(rs, (unsigned char *)(uintptr_t)data, len, &ret); /* read, not written */
        return ret;
    }
    for (size_t off = 0; off < len && ret == 0;) {
        mbedtls_pem_context pem;
        mbedtls_pem_init(&pem);
        size_t used = 0;
        ret = mbedtls_pem_read_buffer(&pem, "-----BEGIN CERTIFICATE-----",
                                      "-----END CERTIFICATE-----", data + off, NULL, 0, &used);
        if (ret == 0 && consider_root(rs, pem.buf, pem.buflen, &ret)) {
            rs->found->own_buffer = 1; /* freed with the chain, by mbedTLS */
            pem.buf = NULL;
        }
        mbedtls_pem_free(&pem);
        if (ret == MBEDTLS_ERR_PEM_NO_HEADER_FOOTER_PRESENT || used == 0)
            return 0; /* no further certificate */
        off += used;
    }
    return ret;
}

static int trusted_roots_for(void *context, mbedtls_x509_crt const *child,
                             mbedtls_x509_crt **candidates)
{
    root_search rs = {(tether_tls *)context, child, mbedtls_calloc(1, sizeof(mbedtls_x509_crt)), 0};
    *candidates = NULL;
    if (rs.found == NULL)
        return MBEDTLS_ERR_X509_ALLOC_FAILED;
    mbedtls_x509_crt_init(rs.found);
    rs.tls->diag.trusted_roots[0] = '\0';
    int ret = 0;
    for (size_t i = 0; i < rs.tls->trust_count && ret == 0; i++)
        ret = consider_source(&rs, rs.tls->trust_src[i].data, rs.tls->trust_src[i].len);
    if (ret != 0 || rs.found->raw.len == 0) {
        mbedtls_x509_crt_free(rs.found);
        mbedtls_free(rs.found);
        return tether_mbedtls_is_alloc_failure(ret) ? ret : 0;
    }
    *candidates = rs.found;
    return 0;
}
#endif

static void set_parse_failure(tether_tls *tls, tether_status st, int ret)
{
    tls->diag.status = st;
    tls->diag.mbedtls_code = ret < 0 ? ret : 0;
    tether_mbedtls_split(tls->diag.mbedtls_code, &tls->diag.mbedtls_high, &tls->diag.mbedtls_low);
}

tether_status tether_tls_add_trust(tether_tls *tls, const uint8_t *data, size_t len)
{
    if (tls == NULL || data == NULL || len == 0 || tls->trust_count == TETHER_TLS_MAX_TRUST)
        return TETHER_INVALID_ARGUMENT;
    clear_diag(tls);
    /* Checked alone, so that a bad buffer is named when it is given, not at the handshake. */
    release_trust(tls);
    int ret = mbedtls_x509_crt_parse(&tls->trust, data, len);
    /* A positive return counts certificates that failed while others parsed. */
    if (ret >= 0 && tls->trust.raw.len == 0)
        ret = MBEDTLS_ERR_X509_INVALID_FORMAT;
    tls->trust_parsed = true;
    release_trust(tls);
    if (ret < 0) {
        set_parse_failure(tls,
                          tether_mbedtls_is_alloc_failure(ret) ? TETHER_TLS_ALLOC_FAILED
                                                               : TETHER_TLS_CA_PARSE_FAILED,
                          ret);
        return tls->diag.status;
    }
    tls->trust_src[tls->trust_count++] = (tether_tls_source){data, len};
    tls->has_trust = true;
    return TETHER_OK;
}

static tether_status key_status(int ret)
{
    switch (ret) {
    case MBEDTLS_ERR_PK_PASSWORD_REQUIRED:
        return TETHER_TLS_KEY_PASSWORD_REQUIRED;
    case MBEDTLS_ERR_PK_PASSWORD_MISMATCH:
        return TETHER_TLS_KEY_PASSWORD_WRONG;
    case MBEDTLS_ERR_PEM_FEATURE_UNAVAILABLE: /* "Proc-Type: 4,ENCRYPTED" without AES-CBC */
        return TETHER_TLS_KEY_ENCRYPTED_UNSUPPORTED;
    default:
        return tether_mbedtls_is_alloc_failure(ret) ? TETHER_TLS_ALLOC_FAILED
                                                    : TETHER_TLS_KEY_PARSE_FAILED;
    }
}

static bool contains(const uint8_t *data, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(data + i, word, n) == 0)
            return true;
    return false;
}

/* The device's chain and key, parsed from the caller's buffers. On failure *st says which. */
static int parse_identity(tether_tls *tls, tether_status *st)
{
    tls->identity_parsed = true;
    *st = TETHER_OK;
    int ret = mbedtls_x509_crt_parse(&tls->chain, tls->chain_src.data, tls->chain_src.len);
    if (ret < 0 || tls->chain.raw.len == 0) {
        *st = tether_mbedtls_is_alloc_failure(ret) ? TETHER_TLS_ALLOC_FAILED
                                                   : TETHER_TLS_CERT_PARSE_FAILED;
        return ret < 0 ? ret : MBEDTLS_ERR_X509_INVALID_FORMAT;
    }
    const char *password = tls->key_password;
    ret = mbedtls_pk_parse_key(&tls->key, tls->key_src.data, tls->key_src.len,
                               (const unsigned char *)password, password ? strlen(password) : 0,
                               mbedtls_ctr_drbg_random, &tls->drbg);
    if (ret != 0)
        *st = key_status(ret);
    /* An encrypted PKCS#8 key whose cipher is not in this build says only "unavailable
     * feature"; name the real cause when the key says it is encrypted (or came with a
     * password). */
    if (ret == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE &&
        (password != NULL || contains(tls->key_src.data, tls->key_src.len, "ENCRYPTED")))
        *st = TETHER_TLS_KEY_ENCRYPTED_UNSUPPORTED;
    return ret;
}

tether_status tether_tls_set_identity(tether_tls *tls, const uint8_t *chain, size_t chain_len,
                                      const uint8_t *key, size_t key_len, const char *password)
{
    if (tls == NULL || chain == NULL || chain_len == 0 || key == NULL || key_len == 0)
        return TETHER_INVALID_ARGUMENT;
    clear_diag(tls);
    release_identity(tls);
    tls->has_identity = false;
    tls->chain_src = (tether_tls_source){chain, chain_len};
    tls->key_src = (tether_tls_source){key, key_len};
    tls->key_password = password;

    tether_status st;
    int ret = parse_identity(tls, &st);
    if (st == TETHER_OK) {
        ret = mbedtls_pk_check_pair(&tls->chain.pk, &tls->key, mbedtls_ctr_drbg_random, &tls->drbg);
        if (ret != 0)
            st = tether_mbedtls_is_alloc_failure(ret) ? TETHER_TLS_ALLOC_FAILED
                                                      : TETHER_TLS_KEY_MISMATCH;
    }
    if (st == TETHER_OK) {
        tether_tls_handshake_sizes(&tls->chain, &tls->key, &tls->certificate_message_size,
                                   &tls->certificate_message_size_tls13,
                                   &tls->certificate_verify_size);
        tether_sha256(tls->chain.raw.p, tls->chain.raw.len, tls->identity_sha256);
    }
    release_identity(tls);
    if (st != TETHER_OK) {
        set_parse_failure(tls, st, ret);
        return st;
    }
    tls->has_identity = true;
    return TETHER_OK;
}

void tether_tls_handshake_sizes(const mbedtls_x509_crt *chain, const mbedtls_pk_context *key,
                                size_t *certificate_tls12, size_t *certificate_tls13,
                                size_t *certificate_verify)
{
    /* Handshake header (4) + list length (3) + per certificate a 3-byte length and the DER:
     * the arithmetic mbedtls_ssl_write_certificate() checks against OUT_CONTENT_LEN. TLS 1.3
     * adds the request context's length byte and an empty extension list per certificate. */
    size_t tls12 = 7, tls13 = 8;
    for (const mbedtls_x509_crt *c = chain; c != NULL && c->raw.len > 0; c = c->next) {
        tls12 += 3 + c->raw.len;
        tls13 += 3 + c->raw.len + 2;
    }
    size_t signature = 0;
    if (key != NULL && mbedtls_pk_get_type(key) != MBEDTLS_PK_NONE)
        signature = mbedtls_pk_can_do(key, MBEDTLS_PK_ECKEY)
                        ? (size_t)MBEDTLS_ECDSA_MAX_SIG_LEN(mbedtls_pk_get_bitlen(key))
                        : mbedtls_pk_get_len(key);
    if (certificate_tls12)
        *certificate_tls12 = tls12;
    if (certificate_tls13)
        *certificate_tls13 = tls13;
    /* Header (4), signature algorithm (2), signature length (2), signature. */
    if (certificate_verify)
        *certificate_verify = signature ? 8 + signature : 0;
}

uint16_t tether_tls_fragment_limit(const tether_tls_options *opts)
{
    uint16_t mfl = opts->max_fragment ? opts->max_fragment : (uint16_t)TETHER_MFL_DEFAULT;
    return mfl == TETHER_TLS_MAX_FRAGMENT_NONE ? 0 : mfl;
}

/* The client's handshake message (Certificate, then CertificateVerify) that a record of at
 * most @p limit bytes cannot hold under TLS 1.3 (tls13) or 1.2; 0 and no size if none. */
static uint8_t oversized_message(const tether_tls *tls, size_t limit, bool tls13, size_t *size)
{
    size_t certificate =
        tls13 ? tls->certificate_message_size_tls13 : tls->certificate_message_size;
    if (!tls->has_identity || limit == 0)
        return 0;
    if (certificate > limit) {
        *size = certificate;
        return MBEDTLS_SSL_HS_CERTIFICATE;
    }
    if (tls->certificate_verify_size > limit) {
        *size = tls->certificate_verify_size;
        return MBEDTLS_SSL_HS_CERTIFICATE_VERIFY;
    }
    return 0;
}

tether_status tether_tls_check_fragment_length(tether_tls *tls, const tether_tls_options *opts)
{
    if (tls == NULL || opts == NULL)
        return TETHER_INVALID_ARGUMENT;
    size_t limit = tether_tls_fragment_limit(opts), size = 0;
    /* Where 1.3 is offered the server may choose it: count its (larger) Certificate message. */
    bool tls13 = tether_tls_offers_tls13(opts);
    uint8_t type = oversized_message(tls, limit, tls13, &size);
    if (type == 0)
        return TETHER_OK;
    clear_diag(tls);
    tls->diag.status = TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL;
    tls->diag.needed = size;
    tls->diag.available = limit;
    tls->diag.handshake_type = type;
    return TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL;
}

size_t tether_tls_certificate_message_size(const tether_tls *tls)
{
    return tls != NULL && tls->has_identity ? tls->certificate_message_size : 0;
}

void tether_sha256(const void *data, size_t len, uint8_t out[32])
{
    if (mbedtls_sha256(data, len, out, 0) != 0)
        memset(out, 0, 32);
}

tether_status tether_tls_identity_sha256(const tether_tls *tls, uint8_t out[32])
{
    if (tls == NULL || out == NULL || !tls->has_identity)
        return TETHER_INVALID_ARGUMENT;
    memcpy(out, tls->identity_sha256, 32);
    return TETHER_OK;
}

/* --- I/O callbacks ------------------------------------------------------------------ */

/* Follows TLS record headers in the received stream, so that an oversized record can be
 * named with its length even though mbedTLS only says "invalid record". */
static void track_records(tether_tls *tls, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (tls->rec_body_left > 0) {
            size_t k = n < tls->rec_body_left ? n : tls->rec_body_left;
            tls->rec_body_left -= k;
            p += k;
            n -= k;
            continue;
        }
        tls->rec_header[tls->rec_header_have++] = *p++;
        n--;
        if (tls->rec_header_have == sizeof tls->rec_header) {
            tls->last_record_len = ((size_t)tls->rec_header[3] << 8) | tls->rec_header[4];
            tls->rec_body_left = tls->last_record_len;
            tls->rec_header_have = 0;
        }
    }
}

static uint32_t wait_budget(const tether_tls *tls)
{
    uint32_t wait = tls->opts.io_timeout_ms;
    if (!tls->connected && tls->deadline_ms != 0) {
        uint64_t now = tether_port_now_ms();
        uint64_t left = tls->deadline_ms > now ? tls->deadline_ms - now : 0;
        if (left < wait)
            wait = (uint32_t)left;
    }
    return wait;
}

static int io_error(tether_tls *tls, int32_t n)
{
    tls->io_status = tether_transport_status(n);
    tls->diag.sys_errno = tls->sock.last_errno;
    return tls->io_status == TETHER_CONNECTION_RESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                     : MBEDTLS_ERR_NET_RECV_FAILED;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tether_tls *tls = ctx;
    int32_t n = tether_port_tcp_send(&tls->sock, buf, len, wait_budget(tls));
    if (n > 0) {
        tls->diag.bytes_sent += (size_t)n;
        return n;
    }
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    int ret = io_error(tls, n);
    return ret == MBEDTLS_ERR_NET_RECV_FAILED ? MBEDTLS_ERR_NET_SEND_FAILED : ret;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tether_tls *tls = ctx;
    int32_t n = tether_port_tcp_recv(&tls->sock, buf, len, wait_budget(tls));
    if (n > 0) {
        tls->diag.bytes_received += (size_t)n;
        track_records(tls, buf, (size_t)n);
        return n;
    }
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    if (tether_transport_status(n) == TETHER_CONNECTION_CLOSED)
        return 0; /* mbedTLS's word for end of stream: MBEDTLS_ERR_SSL_CONN_EOF. */
    return io_error(tls, n);
}

/* Called for each certificate of the server's chain, top first: keeps the names a
 * verification failure must show. */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    tether_tls *tls = ctx;
    (void)flags;
    if (tls->diag.server_issuer[0] == 0)
        (void)mbedtls_x509_dn_gets(tls->diag.server_issuer, sizeof tls->diag.server_issuer,
                                   &crt->issuer);
    if (depth == 0)
        (void)mbedtls_x509_dn_gets(tls->diag.server_subject, sizeof tls->diag.server_subject,
                                   &crt->subject);
    return 0;
}

/* --- handshake ---------------------------------------------------------------------- */

static tether_tls_stage stage_of_state(int state)
{
    switch (state) {
    case MBEDTLS_SSL_HELLO_REQUEST:
    case MBEDTLS_SSL_CLIENT_HELLO:
        return TETHER_TLS_STAGE_CLIENT_HELLO;
    case MBEDTLS_SSL_SERVER_HELLO:
    case MBEDTLS_SSL_HELLO_RETRY_REQUEST:
    case MBEDTLS_SSL_CLIENT_CCS_AFTER_CLIENT_HELLO:
    case MBEDTLS_SSL_CLIENT_CCS_BEFORE_2ND_CLIENT_HELLO:
    case MBEDTLS_SSL_SERVER_CCS_AFTER_HELLO_RETRY_REQUEST:
        return TETHER_TLS_STAGE_SERVER_HELLO;
    case MBEDTLS_SSL_SERVER_CERTIFICATE:
    case MBEDTLS_SSL_SERVER_KEY_EXCHANGE:
    case MBEDTLS_SSL_CERTIFICATE_REQUEST:
    case MBEDTLS_SSL_SERVER_HELLO_DONE:
    case MBEDTLS_SSL_ENCRYPTED_EXTENSIONS:
    case MBEDTLS_SSL_SERVER_CCS_AFTER_SERVER_HELLO:
        return TETHER_TLS_STAGE_SERVER_CERTIFICATE;
    case MBEDTLS_SSL_CLIENT_CERTIFICATE:
        return TETHER_TLS_STAGE_CLIENT_CERTIFICATE;
    case MBEDTLS_SSL_CLIENT_KEY_EXCHANGE:
    case MBEDTLS_SSL_CERTIFICATE_VERIFY:
    case MBEDTLS_SSL_CLIENT_CERTIFICATE_VERIFY:
    case MBEDTLS_SSL_END_OF_EARLY_DATA:
        return TETHER_TLS_STAGE_KEY_EXCHANGE;
    case MBEDTLS_SSL_CLIENT_CHANGE_CIPHER_SPEC:
    case MBEDTLS_SSL_CLIENT_FINISHED:
    case MBEDTLS_SSL_SERVER_CHANGE_CIPHER_SPEC:
    case MBEDTLS_SSL_SERVER_FINISHED:
    case MBEDTLS_SSL_CLIENT_CCS_AFTER_SERVER_FINISHED:
    case MBEDTLS_SSL_FLUSH_BUFFERS:
    case MBEDTLS_SSL_HANDSHAKE_WRAPUP:
    case MBEDTLS_SSL_NEW_SESSION_TICKET:
        return TETHER_TLS_STAGE_FINISHED;
    default:
        return TETHER_TLS_STAGE_CONNECTED;
    }
}

static void heap_into_diag(tether_tls *tls)
{
    tether_heap_stats hs;
    tether_heap_get_stats(&hs);
    tls->diag.heap_in_use = hs.in_use;
    tls->diag.heap_peak = hs.peak;
    tls->diag.heap_cap = hs.cap;
    if (hs.failures > tls->heap_failures_at_start) {
        tls->diag.heap_request = hs.last_failed_size;
        tls->diag.heap_at_failure = hs.in_use_at_failure;
    }
}

static void report_stages(tether_tls *tls, tether_tls_stage from, tether_tls_stage to)
{
    /* TLS 1.3 has no separate ServerHello-to-certificate steps in every flow: report each
     * stage passed, in order, so a trace always reads 1..7. */
    for (unsigned s = (unsigned)from; s < (unsigned)to; s++) {
        tls->diag.stage = (tether_tls_stage)s;
        if (tls->opts.on_stage) {
            heap_into_diag(tls);
            tls->opts.on_stage(tls->opts.on_stage_context, (tether_tls_stage)s, &tls->diag);
        }
    }
    tls->diag.stage = to;
}

static int max_frag_code(uint16_t bytes)
{
    switch (bytes) {
    case 512:
        return MBEDTLS_SSL_MAX_FRAG_LEN_512;
    case 1024:
        return MBEDTLS_SSL_MAX_FRAG_LEN_1024;
    case 2048:
        return MBEDTLS_SSL_MAX_FRAG_LEN_2048;
    case 4096:
        return MBEDTLS_SSL_MAX_FRAG_LEN_4096;
    default:
        return -1;
    }
}

/* P-256 first (mbedTLS puts X25519 first): in mbedTLS it is the faster key exchange (with the
 * NIST reduction), it is the curve of the ECC accelerators of small devices (ESP32 family),
 * and Azure offers it. */
static const uint16_t offered_groups[] = {
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
    MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1, MBEDTLS_SSL_IANA_TLS_GROUP_NONE};

static int configure(tether_tls *tls)
{
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_ssl_config_init(&tls->conf);
    int ret = mbedtls_ssl_config_defaults(&tls->conf, MBEDTLS_SSL_IS_CLIENT,
                                          MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return ret;
    mbedtls_ssl_conf_rng(&tls->conf, mbedtls_ctr_drbg_random, &tls->drbg);
    mbedtls_ssl_conf_groups(&tls->conf, offered_groups);
    mbedtls_ssl_conf_min_tls_version(&tls->conf, MBEDTLS_SSL_VERSION_TLS1_2);
    /* Decided once, here: the host string is the caller's and need not outlive the call. */
    tls->offered_tls13 = tether_tls_offers_tls13(&tls->opts);
    if (!tls->offered_tls13)
        mbedtls_ssl_conf_max_tls_version(&tls->conf, MBEDTLS_SSL_VERSION_TLS1_2);
    if (tls->opts.insecure) {
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_NONE);
    } else {
        mbedtls_ssl_conf_authmode(&tls->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
#if defined(MBEDTLS_X509_TRUSTED_CERTIFICATE_CALLBACK)
        mbedtls_ssl_conf_ca_cb(&tls->conf, trusted_roots_for, tls);
#else
        mbedtls_ssl_conf_ca_chain(&tls->conf, &tls->trust, NULL);
#endif
        mbedtls_ssl_conf_verify(&tls->conf, verify_cb, tls);
    }
    uint16_t mfl = tether_tls_fragment_limit(&tls->opts);
    if (mfl != 0) {
        ret = mbedtls_ssl_conf_max_frag_len(&tls->conf, (unsigned char)max_frag_code(mfl));
        if (ret != 0)
            return ret;
    }
    return 0;
}

/* Parses a credential just before the handshake state that reads it: the roots for the
 * server's certificate, the device's chain and key for its own Certificate message (the key
 * signs CertificateVerify two states later). Returns mbedTLS's code; on a parse failure the
 * diag already names it. */
static int credentials_for(tether_tls *tls, int state)
{
    int ret = 0;
    if (state == MBEDTLS_SSL_SERVER_CERTIFICATE && !tls->opts.insecure && !tls->trust_parsed &&
        !trust_on_demand()) {
        ret = parse_trust(tls);
        if (ret != 0)
            set_parse_failure(tls,
                              tether_mbedtls_is_alloc_failure(ret) ? TETHER_TLS_ALLOC_FAILED
                                                                   : TETHER_TLS_CA_PARSE_FAILED,
                              ret);
    } else if (state == MBEDTLS_SSL_CLIENT_CERTIFICATE && tls->has_identity &&
               !tls->identity_parsed) {
        tether_status st;
        ret = parse_identity(tls, &st);
        if (ret == 0)
            ret = mbedtls_ssl_conf_own_cert(&tls->conf, &tls->chain, &tls->key);
        else
            set_parse_failure(tls, st, ret);
    }
    if (ret != 0)
        heap_into_diag(tls);
    return ret;
}

tether_status tether_tls_connect(tether_tls *tls, const tether_tls_options *opts)
{
    if (tls == NULL || opts == NULL || opts->host == NULL || opts->port == 0)
        return TETHER_INVALID_ARGUMENT;
    /* The negotiated limit applies both ways: mbedTLS accepts no more than the smaller buffer. */
    if (opts->max_fragment != 0 && opts->max_fragment != TETHER_TLS_MAX_FRAGMENT_NONE &&
        (max_frag_code(opts->max_fragment) < 0 || opts->max_fragment > MBEDTLS_SSL_IN_CONTENT_LEN ||
         opts->max_fragment > MBEDTLS_SSL_OUT_CONTENT_LEN))
        return TETHER_INVALID_ARGUMENT;
    tether_tls_close(tls);
    clear_diag(tls);
    /* Refused before dialling: the server would only answer with record_overflow. */
    if (!opts->send_oversized_handshake) {
        tether_status fits = tether_tls_check_fragment_length(tls, opts);
        if (fits != TETHER_OK)
            return fits;
    }
    tls->opts = *opts;
    tls->io_status = TETHER_OK;
    tls->rec_header_have = 0;
    tls->rec_body_left = 0;
    tls->last_record_len = 0;
    tether_heap_stats hs;
    tether_heap_get_stats(&hs);
    tls->heap_failures_at_start = hs.failures;
    tls->diag.stage = TETHER_TLS_STAGE_TCP_CONNECT;

    if (!tls->has_trust && !opts->insecure) {
        tls->diag.status = TETHER_TLS_NO_TRUST_ANCHOR;
        return TETHER_TLS_NO_TRUST_ANCHOR;
    }
    /* The clock gate: certificate dates mean nothing on a clock that was never set. */
    tls->diag.clock_s = tether_clock_unix_s();
    if (!opts->insecure && !tether_clock_is_set(tls->diag.clock_s)) {
        tls->diag.status = TETHER_CLOCK_NOT_SET;
        return TETHER_CLOCK_NOT_SET;
    }
    int ret = configure(tls);
    if (ret != 0)
        return tether_tls_fail(tls, ret);

    const char *dial = opts->connect_host ? opts->connect_host : opts->host;
    tether_status st =
        tether_port_tcp_connect(&tls->sock, dial, opts->port, opts->connect_timeout_ms);
    if (st != TETHER_OK) {
        tls->diag.status = st;
        tls->diag.sys_errno = tls->sock.last_errno;
        return st;
    }
    report_stages(tls, TETHER_TLS_STAGE_TCP_CONNECT, TETHER_TLS_STAGE_CLIENT_HELLO);

    ret = mbedtls_ssl_setup(&tls->ssl, &tls->conf);
    tls->ssl_ready = true;
    if (ret == 0)
        ret = mbedtls_ssl_set_hostname(&tls->ssl, opts->host);
    if (ret != 0)
        return tether_tls_fail(tls, ret);
    mbedtls_ssl_set_bio(&tls->ssl, tls, bio_send, bio_recv, NULL);

    tls->deadline_ms = tether_port_now_ms() + opts->handshake_timeout_ms;
    while (!mbedtls_ssl_is_handshake_over(&tls->ssl)) {
        int state = tls->ssl.state;
        ret = credentials_for(tls, state);
        if (ret != 0) {
            tls->diag.stage = stage_of_state(state);
            return tls->diag.status != TETHER_OK ? tls->diag.status : tether_tls_fail(tls, ret);
        }
        ret = mbedtls_ssl_handshake_step(&tls->ssl);
        /* The server's chain is verified within this one state: the roots are done with. */
        if (ret == 0 && state == MBEDTLS_SSL_SERVER_CERTIFICATE && tls->ssl.state != state)
            release_trust(tls);
        tether_tls_stage now = stage_of_state(tls->ssl.state);
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) {
            if (tether_port_now_ms() >= tls->deadline_ms) {
                tls->diag.stage = now;
                heap_into_diag(tls);
                tls->diag.status = TETHER_TLS_HANDSHAKE_TIMEOUT;
                return TETHER_TLS_HANDSHAKE_TIMEOUT;
            }
            continue;
        }
        if (ret != 0) {
            tls->diag.stage = now;
            return tether_tls_fail(tls, ret);
        }
        /* A stage is done once its messages have left: mbedTLS flushes at the next step. */
        if (now > tls->diag.stage && tls->ssl.out_left == 0)
            report_stages(tls, tls->diag.stage, now);
    }
    release_identity(tls);
    release_trust(tls);
    tls->connected = true;
    tls->deadline_ms = 0;
    report_stages(tls, tls->diag.stage, TETHER_TLS_STAGE_CONNECTED);
    heap_into_diag(tls);
    return TETHER_OK;
}

static int32_t tls_send(void *ctx, const uint8_t *buf, size_t len)
{
    tether_tls *tls = ctx;
    if (!tls->connected)
        return tether_transport_error(TETHER_MQTT_NOT_CONNECTED);
    int ret = mbedtls_ssl_write(&tls->ssl, buf, len);
    if (ret > 0)
        return ret;
    if (ret == MBEDTLS_ERR_SSL_WANT_WRITE || ret == MBEDTLS_ERR_SSL_WANT_READ)
        return 0;
    return tether_transport_error(tether_tls_fail(tls, ret));
}

static int32_t tls_recv(void *ctx, uint8_t *buf, size_t len)
{
    tether_tls *tls = ctx;
    if (!tls->connected)
        return tether_transport_error(TETHER_MQTT_NOT_CONNECTED);
    int ret = mbedtls_ssl_read(&tls->ssl, buf, len);
    if (ret > 0)
        return ret;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return 0;
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    /* A TLS 1.3 server may send session tickets after the handshake; nothing to do. */
    if (ret == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET)
        return 0;
#endif
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        tls->diag.status = TETHER_CONNECTION_CLOSED;
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    }
    return tether_transport_error(tether_tls_fail(tls, ret));
}

void tether_tls_set_io_timeout(tether_tls *tls, uint32_t ms)
{
    tls->opts.io_timeout_ms = ms;
}

tether_transport tether_tls_transport(tether_tls *tls)
{
    tether_transport t = {.send = tls_send, .recv = tls_recv, .context = tls};
    return t;
}

void tether_tls_close(tether_tls *tls)
{
    if (tls == NULL)
        return;
    if (tls->connected)
        (void)mbedtls_ssl_close_notify(&tls->ssl);
    tls->connected = false;
    release_identity(tls);
    release_trust(tls);
    if (tls->ssl_ready) {
        /* Free the record buffers between connections: a device gets that heap back. */
        mbedtls_ssl_free(&tls->ssl);
        mbedtls_ssl_init(&tls->ssl);
        tls->ssl_ready = false;
    }
    tether_port_tcp_close(&tls->sock);
}

void tether_tls_free(tether_tls *tls)
{
    if (tls == NULL)
        return;
    tether_tls_close(tls);
    mbedtls_ssl_config_free(&tls->conf);
    mbedtls_ctr_drbg_free(&tls->drbg);
    mbedtls_entropy_free(&tls->entropy);
#if defined(MBEDTLS_PSA_CRYPTO_C)
    mbedtls_psa_crypto_free();
#endif
}

const tether_tls_diag *tether_tls_last_diag(const tether_tls *tls)
{
    return &tls->diag;
}

const char *tether_tls_version_name(const tether_tls *tls)
{
    return tls->connected ? mbedtls_ssl_get_version(&tls->ssl) : "none";
}

const char *tether_tls_ciphersuite_name(const tether_tls *tls)
{
    return tls->connected ? mbedtls_ssl_get_ciphersuite(&tls->ssl) : "none";
}

/* --- failure translation ------------------------------------------------------------ */

static tether_status verify_status(uint32_t flags)
{
    if (flags & (MBEDTLS_X509_BADCERT_NOT_TRUSTED | MBEDTLS_X509_BADCERT_MISSING))
        return TETHER_TLS_SERVER_CERT_UNTRUSTED;
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        return TETHER_TLS_SERVER_CERT_EXPIRED;
    if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        return TETHER_TLS_SERVER_CERT_NOT_YET_VALID;
    if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH)
        return TETHER_TLS_HOSTNAME_MISMATCH;
    return TETHER_TLS_SERVER_CERT_UNTRUSTED;
}

static tether_status alert_status(const tether_tls *tls, int alert)
{
    switch (alert) {
    case MBEDTLS_SSL_ALERT_MSG_BAD_CERT:
    case MBEDTLS_SSL_ALERT_MSG_UNSUPPORTED_CERT:
    case MBEDTLS_SSL_ALERT_MSG_CERT_REVOKED:
    case MBEDTLS_SSL_ALERT_MSG_CERT_EXPIRED:
    case MBEDTLS_SSL_ALERT_MSG_CERT_UNKNOWN:
    case MBEDTLS_SSL_ALERT_MSG_UNKNOWN_CA:
    case MBEDTLS_SSL_ALERT_MSG_ACCESS_DENIED:
    case MBEDTLS_SSL_ALERT_MSG_DECRYPT_ERROR:
        return tls->has_identity ? TETHER_TLS_CLIENT_CERT_REJECTED
                                 : TETHER_TLS_CLIENT_CERT_REQUIRED;
    case MBEDTLS_SSL_ALERT_MSG_CERT_REQUIRED:
        return TETHER_TLS_CLIENT_CERT_REQUIRED;
    case MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE:
        /* OpenSSL answers a missing client certificate with handshake_failure in TLS 1.2. */
        if (!tls->has_identity && tls->diag.stage >= TETHER_TLS_STAGE_CLIENT_CERTIFICATE)
            return TETHER_TLS_CLIENT_CERT_REQUIRED;
        return TETHER_TLS_HANDSHAKE_REFUSED;
    case MBEDTLS_SSL_ALERT_MSG_INSUFFICIENT_SECURITY:
    case MBEDTLS_SSL_ALERT_MSG_UNRECOGNIZED_NAME:
        return TETHER_TLS_HANDSHAKE_REFUSED;
    case MBEDTLS_SSL_ALERT_MSG_PROTOCOL_VERSION:
        return TETHER_TLS_PROTOCOL_VERSION;
    case MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW:
        return TETHER_TLS_FRAGMENT_LENGTH_REFUSED;
    default:
        return TETHER_TLS_ALERT;
    }
}

/* record_overflow after the client sent a handshake message longer than the fragment length it
 * asked for: the server accepted the limit (a server that ignores the extension enforces
 * none) and mbedTLS sent the message as one record anyway. Names that, with the numbers. */
static void overflow_cause(tether_tls *tls, tether_status *st)
{
    tether_tls_diag *d = &tls->diag;
    size_t size = 0;
    if (d->alert != MBEDTLS_SSL_ALERT_MSG_RECORD_OVERFLOW ||
        d->stage < TETHER_TLS_STAGE_CLIENT_CERTIFICATE)
        return;
#if defined(MBEDTLS_SSL_PROTO_TLS1_3)
    bool tls13 = tls->ssl.tls_version == MBEDTLS_SSL_VERSION_TLS1_3;
#else
    bool tls13 = false;
#endif
    uint8_t type = oversized_message(tls, tether_tls_fragment_limit(&tls->opts), tls13, &size);
    if (type == 0)
        return;
    *st = TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL;
    d->needed = size;
    d->available = tether_tls_fragment_limit(&tls->opts);
    d->handshake_type = type;
}

/* A server that refuses the client certificate sends a fatal alert and closes at once, while
 * the client is still writing its flight: the write fails with a reset, and the alert sits
 * unread in the socket. Read what is pending and look for it, so the user learns why. */
static int pending_alert(tether_tls *tls)
{
    uint8_t buf[64];
    size_t have = 0;
    while (have < sizeof buf) {
        int32_t n = tether_port_tcp_recv(&tls->sock, buf + have, sizeof buf - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    /* Unencrypted alert record: type 21, version 3.x, length 2, level, description. mbedTLS
     * consumes whole records, so what is pending starts at a record boundary. */
    if (have >= 7 && buf[0] == 21 && buf[1] == 3 && buf[3] == 0 && buf[4] == 2 && buf[5] == 2)
        return buf[6];
    return -1;
}

/* mbedTLS 3.6.6's TLS 1.2 client refuses an RSA-PSS SignatureScheme in the server's
 * ServerKeyExchange, although its own 1.2+1.3 ClientHello offered it (Mbed-TLS/mbedtls#10674):
 * returns the scheme when that is what failed, else 0. The message is still in the input
 * buffer, whole: ECParameters (curve_type 3 = named_curve, the group, the point), then the
 * scheme. The same error comes earlier for a group the client did not offer, so the group must
 * be one of ours; a PSS scheme after it is then refused whatever else the message holds. */
static uint16_t refused_server_sig_alg(const tether_tls *tls, int ret)
{
#if defined(MBEDTLS_SSL_PROTO_TLS1_3) && defined(MBEDTLS_SSL_PROTO_TLS1_2)
    const mbedtls_ssl_context *ssl = &tls->ssl;
    if (ret != MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER || tls->connected || !tls->offered_tls13 ||
        ssl->state != MBEDTLS_SSL_SERVER_KEY_EXCHANGE ||
        ssl->tls_version != MBEDTLS_SSL_VERSION_TLS1_2 || ssl->in_msg == NULL ||
        ssl->in_msgtype != MBEDTLS_SSL_MSG_HANDSHAKE || ssl->in_hslen < 4 + 4 + 2 ||
        ssl->in_hslen > MBEDTLS_SSL_IN_CONTENT_LEN ||
        ssl->in_msg[0] != MBEDTLS_SSL_HS_SERVER_KEY_EXCHANGE || ssl->in_msg[4] != 3)
        return 0;
    uint16_t group = (uint16_t)((ssl->in_msg[5] << 8) | ssl->in_msg[6]);
    bool ours = false;
    for (const uint16_t *g = offered_groups; *g != MBEDTLS_SSL_IANA_TLS_GROUP_NONE; g++)
        ours |= *g == group;
    size_t at = 4 + 3 + 1 + (size_t)ssl->in_msg[4 + 3]; /* after the point */
    if (!ours || at + 2 > ssl->in_hslen)
        return 0;
    uint16_t scheme = (uint16_t)((ssl->in_msg[at] << 8) | ssl->in_msg[at + 1]);
    /* rsa_pss_rsae_sha256..512 (0x0804..0x0806), rsa_pss_pss_sha256..512 (0x0809..0x080b) */
    bool pss = (scheme >= 0x0804 && scheme <= 0x0806) || (scheme >= 0x0809 && scheme <= 0x080b);
    return pss ? scheme : 0;
#else
    (void)tls;
    (void)ret;
    return 0;
#endif
}

/* The largest record the input buffer takes now. With variable buffers mbedTLS 3.6 shrinks
 * it once connected, to the fragment length the client asked for or, when it asked for none,
 * to the smaller of the two buffers, whether or not the server agreed. */
static size_t input_record_limit(const tether_tls *tls)
{
#if defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
    if (tls->connected)
        return (size_t)mbedtls_ssl_get_max_in_record_payload(&tls->ssl);
#endif
    (void)tls;
    return MBEDTLS_SSL_IN_CONTENT_LEN;
}

tether_status tether_tls_fail(tether_tls *tls, int ret)
{
    tether_tls_diag *d = &tls->diag;
    bool in_handshake = !tls->connected;
    if (in_handshake && tls->io_status != TETHER_OK && tls->sock.fd >= 0) {
        int alert = pending_alert(tls);
        if (alert >= 0) {
            d->alert = alert;
            ret = MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
        }
    }
    int high, low;
    tether_mbedtls_split(ret, &high, &low);
    d->mbedtls_code = ret;
    d->mbedtls_high = high;
    d->mbedtls_low = low;
    heap_into_diag(tls);

    tether_status st = TETHER_TLS_FAILED;
    if (tether_mbedtls_is_alloc_failure(ret) || d->heap_request != 0) {
        st = TETHER_TLS_ALLOC_FAILED;
    } else if ((d->server_sig_alg = refused_server_sig_alg(tls, ret)) != 0) {
        st = TETHER_TLS_SERVER_SIGNATURE_REJECTED;
    } else if (high == MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL &&
               d->stage == TETHER_TLS_STAGE_CLIENT_CERTIFICATE) {
        st = TETHER_TLS_CERT_CHAIN_TOO_LARGE;
        d->needed = tether_tls_certificate_message_size(tls);
        d->available = MBEDTLS_SSL_OUT_CONTENT_LEN;
    } else if (high == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
        d->verify_flags = mbedtls_ssl_get_verify_result(&tls->ssl);
        st = verify_status(d->verify_flags);
        size_t used = 0; /* on demand, the search already named the roots */
        for (const mbedtls_x509_crt *c = &tls->trust;
             !trust_on_demand() && c != NULL && c->raw.len > 0; c = c->next)
            name_root(d, &used, c);
    } else if (high == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
        if (d->alert < 0)
            d->alert = tls->ssl.in_msg != NULL ? tls->ssl.in_msg[1] : -1;
        st = alert_status(tls, d->alert);
        overflow_cause(tls, &st);
    } else if ((high == MBEDTLS_ERR_SSL_INVALID_RECORD || high == MBEDTLS_ERR_SSL_BAD_INPUT_DATA) &&
               tls->last_record_len > input_record_limit(tls)) {
        /* INVALID_RECORD, or BAD_INPUT_DATA when the record would not even fit the buffer's
         * slack: either way the record header said more than the buffer holds. */
        st = TETHER_TLS_RECORD_TOO_LARGE;
        d->needed = tls->last_record_len;
        d->available = input_record_limit(tls);
    } else if (in_handshake && tls->ssl.in_hslen > MBEDTLS_SSL_IN_CONTENT_LEN &&
               (high == MBEDTLS_ERR_SSL_BAD_INPUT_DATA ||
                ret == MBEDTLS_ERR_ERROR_CORRUPTION_DETECTED)) {
        /* mbedTLS re-assembles a handshake message sent over several records in its input
         * buffer, and says only "bad input data" when the message cannot fit. */
        st = TETHER_TLS_HANDSHAKE_MESSAGE_TOO_LARGE;
        d->needed = tls->ssl.in_hslen;
        d->available = MBEDTLS_SSL_IN_CONTENT_LEN;
    } else if (high == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET) {
        st = in_handshake                        ? TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE
             : ret == MBEDTLS_ERR_NET_CONN_RESET ? TETHER_CONNECTION_RESET
                                                 : TETHER_CONNECTION_CLOSED;
    } else if (tls->io_status != TETHER_OK) {
        st = tls->io_status;
    } else if (high == MBEDTLS_ERR_SSL_BAD_PROTOCOL_VERSION) {
        st = TETHER_TLS_PROTOCOL_VERSION;
    } else if (high == MBEDTLS_ERR_SSL_HANDSHAKE_FAILURE) {
        st = TETHER_TLS_HANDSHAKE_REFUSED;
    } else if (high == MBEDTLS_ERR_SSL_TIMEOUT) {
        st = TETHER_TLS_HANDSHAKE_TIMEOUT;
    } else if (high == 0 && low == MBEDTLS_ERR_ENTROPY_SOURCE_FAILED) {
        st = TETHER_ENTROPY_FAILED;
    }
    d->status = st;
    if (tls->connected && st != TETHER_OK)
        tls->connected = false; /* Any error ends the session: the caller must reconnect. */
    return st;
}
