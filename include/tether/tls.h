/**
 * @file tls.h
 * @brief TLS transport on mbedTLS: trust store, client identity, SNI, fragment length,
 *        handshake with named stages, and a diagnosis of every failure.
 *
 * A ::tether_tls is owned by the caller (static or on the stack); mbedTLS allocates its
 * record buffers and certificates through tether's heap hooks (heap.h). Credentials are given
 * as memory buffers (PEM, NUL-terminated with the NUL counted in the length, or DER), so a
 * device can keep them in flash; tether_port_read_file() loads them on a host.
 *
 * Credentials are referenced, not copied: the buffers given to tether_tls_add_trust() and
 * tether_tls_set_identity() (and the key password) must stay valid and unchanged until
 * tether_tls_free(). Each handshake parses what it needs when it needs it and frees it as
 * soon as it is done with it: the trust store only around the server-certificate check, the
 * device's chain and key only from the client-certificate step to the end of the handshake.
 * So the heap of a connection holds no parsed certificate or key, and the handshake's peak
 * holds only one of the two.
 *
 * Every failure fills a ::tether_tls_diag: the tether status, the raw mbedTLS code (split into
 * its high- and low-level parts), the handshake stage, the TLS alert received, verify flags,
 * byte counts, and the heap in use and at peak, so that a message can give the cause and the
 * numbers (see tether_tls_describe()).
 *
 * @code
 * static tether_tls tls;
 * tether_tls_init(&tls);
 * tether_tls_add_trust(&tls, ca_pem, ca_pem_len + 1);
 * tether_tls_set_identity(&tls, chain_pem, chain_len + 1, key_pem, key_len + 1, NULL);
 * tether_tls_options o = tether_tls_options_default();
 * o.host = "global.azure-devices-provisioning.net";
 * o.port = 8883;
 * if (tether_tls_connect(&tls, &o) != TETHER_OK)
 *     print(tether_tls_last_diag(&tls));
 * tether_transport t = tether_tls_transport(&tls);   // hand to MQTT
 * @endcode
 */
#ifndef TETHER_TLS_H
#define TETHER_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mbedtls/ctr_drbg.h"
#include "mbedtls/entropy.h"
#include "mbedtls/pk.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509_crt.h"

#include "tether/port.h"
#include "tether/status.h"
#include "tether/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The stages of a client handshake, in the order they happen. */
typedef enum tether_tls_stage {
    TETHER_TLS_STAGE_NONE = 0,
    TETHER_TLS_STAGE_TCP_CONNECT,        /**< 1: TCP connection to the server. */
    TETHER_TLS_STAGE_CLIENT_HELLO,       /**< 2: ClientHello sent. */
    TETHER_TLS_STAGE_SERVER_HELLO,       /**< 3: ServerHello received. */
    TETHER_TLS_STAGE_SERVER_CERTIFICATE, /**< 4: server certificate received and verified. */
    TETHER_TLS_STAGE_CLIENT_CERTIFICATE, /**< 5: client certificate sent. */
    TETHER_TLS_STAGE_KEY_EXCHANGE,       /**< 6: key exchange and certificate verify. */
    TETHER_TLS_STAGE_FINISHED,           /**< 7: Finished messages exchanged. */
    TETHER_TLS_STAGE_CONNECTED           /**< Handshake over; application data flows. */
} tether_tls_stage;

/** Number of numbered stages (1..7), for "stage N of 7". */
#define TETHER_TLS_STAGE_COUNT 7

/** What happened, with the numbers. Filled on every failure and kept until the next call. */
typedef struct tether_tls_diag {
    tether_status status;
    int mbedtls_code;        /**< Raw code as returned (negative), 0 if none. */
    int mbedtls_high;        /**< High-level (SSL, X509, PK) part of the code, or 0. */
    int mbedtls_low;         /**< Low-level (MPI, ECP, AES...) part of the code, or 0. */
    tether_tls_stage stage;  /**< The stage in progress when it failed (or the last one reached). */
    int alert;               /**< Fatal alert received from the peer, -1 if none. */
    uint32_t verify_flags;   /**< MBEDTLS_X509_BADCERT_* flags of the server verification. */
    int sys_errno;           /**< errno of a socket failure, 0 if none. */
    size_t bytes_sent;       /**< TCP bytes sent on this connection. */
    size_t bytes_received;   /**< TCP bytes received on this connection. */
    size_t heap_in_use;      /**< TLS heap in use when it failed. */
    size_t heap_peak;        /**< TLS heap peak when it failed. */
    size_t heap_cap;         /**< Heap limit in force (0 = none). */
    size_t heap_request;     /**< Bytes asked for by the refused allocation. */
    size_t heap_at_failure;  /**< Bytes in use when it was refused. */
    size_t needed;           /**< E.g. the Certificate message size, or the record length. */
    size_t available;        /**< E.g. the output buffer, the input buffer, or the fragment
                                  length asked for. */
    uint8_t handshake_type;  /**< The client's handshake message too large for the fragment
                                  length: 11 Certificate, 15 CertificateVerify; 0 if none. */
    uint16_t server_sig_alg; /**< TLS SignatureScheme the server's key exchange named, when
                                  refused (TLS_SERVER_SIGNATURE_REJECTED); 0 if none. */
    int64_t clock_s;         /**< The wall clock when it failed (for CLOCK_NOT_SET). */
    char server_subject[128]; /**< Subject of the server's leaf certificate, if seen. */
    char server_issuer[128];  /**< Issuer at the top of the chain the server presented. */
    char trusted_roots[256];  /**< Subjects in the trust store, "; "-separated (verify failures). */
} tether_tls_diag;

/** Called when a handshake stage completes (for a trace), with the diag as it stands. */
typedef void (*tether_tls_stage_fn)(void *context, tether_tls_stage stage,
                                    const tether_tls_diag *diag);

/** tether_tls_options.max_fragment: do not ask for a maximum fragment length at all. */
#define TETHER_TLS_MAX_FRAGMENT_NONE 0xFFFFu

/**
 * Which TLS versions the client offers (tether_tls_options.versions).
 *
 * Azure splits them by host name (PROTOCOL.md, "TLS"; Microsoft Learn, "IoT Hub endpoints",
 * TLS 1.3-enabled endpoints, preview: the classic `{hub}.azure-devices.net` "TLS 1.2 (existing
 * behavior)", the device endpoint `{hub}.device.azure-devices.net` "TLS 1.2 (restricted) + TLS
 * 1.3"; DPS speaks TLS 1.2): TLS 1.3 is offered only on a hub's device host name. Offering 1.3 to
 * a 1.2-only server costs a TLS 1.3 key share in the ClientHello for nothing, and with
 * mbedTLS 3.6.6 it fails against an RSA server that then signs its TLS 1.2 key exchange with
 * RSA-PSS (which a 1.3-capable client lists): ::TETHER_TLS_SERVER_SIGNATURE_REJECTED.
 */
typedef enum tether_tls_versions {
    /** Azure's split (the default): TLS 1.2 and 1.3 to a host name of the form
     *  `{hub}.device.{suffix}` (tether_tls_is_device_host_name()), TLS 1.2 to every other. */
    TETHER_TLS_VERSIONS_AZURE = 0,
    TETHER_TLS_VERSIONS_1_2,         /**< TLS 1.2 only, to every host. */
    TETHER_TLS_VERSIONS_1_2_AND_1_3, /**< Both to every host (a server of your own). */
} tether_tls_versions;

/** Connection options; start from tether_tls_options_default(). */
typedef struct tether_tls_options {
    const char *host;         /**< Server name: SNI and certificate verification. */
    const char *connect_host; /**< Address actually dialled; NULL = host (cf. curl --connect-to). */
    uint16_t port;
    uint32_t connect_timeout_ms;
    uint32_t handshake_timeout_ms;
    uint32_t io_timeout_ms; /**< How long recv waits before returning 0 ("try again"). */
    uint16_t max_fragment;  /**< 0 = profile default; else 512, 1024, 2048 or 4096. */
    /** Versions offered; a build without TLS 1.3 offers 1.2 whatever this says. */
    tether_tls_versions versions;
    bool insecure; /**< Skip server verification. Tests only; callers must warn. */
    /** Connect even when a handshake message exceeds max_fragment (see
     *  tether_tls_check_fragment_length()): to see how a server answers. Tests only. */
    bool send_oversized_handshake;
    tether_tls_stage_fn on_stage;
    void *on_stage_context;
} tether_tls_options;

#ifndef TETHER_TLS_MAX_TRUST
/** How many buffers tether_tls_add_trust() accepts (each may hold several PEM roots). */
#define TETHER_TLS_MAX_TRUST 4
#endif

/** Where a credential lives: the caller's memory (flash on a device). */
typedef struct tether_tls_source {
    const uint8_t *data;
    size_t len;
} tether_tls_source;

/** A TLS client connection and its credentials. Treat the fields as private. */
typedef struct tether_tls {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt trust;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    tether_socket sock;
    tether_tls_options opts;
    tether_tls_diag diag;
    tether_tls_source trust_src[TETHER_TLS_MAX_TRUST];
    size_t trust_count;
    tether_tls_source chain_src;
    tether_tls_source key_src;
    const char *key_password;
    size_t certificate_message_size;       /* TLS 1.2 */
    size_t certificate_message_size_tls13; /* TLS 1.3: a context byte, 2 per certificate */
    size_t certificate_verify_size;        /* the largest signature the key makes */
    uint8_t identity_sha256[32];
    bool has_trust;
    bool has_identity;
    bool trust_parsed;    /* tls->trust holds the parsed roots (during the handshake only). */
    bool identity_parsed; /* tls->chain and tls->key hold the parsed identity (idem). */
    bool ssl_ready;
    bool connected;
    bool offered_tls13; /* this handshake's ClientHello offered TLS 1.3 (configure()) */
    uint64_t deadline_ms;
    /* Record-header tracker over received bytes: finds the length of an oversized record. */
    uint8_t rec_header[5];
    size_t rec_header_have;
    size_t rec_body_left;
    size_t last_record_len;
    tether_status io_status; /* Socket failure behind an mbedTLS I/O error. */
    size_t heap_failures_at_start;
} tether_tls;

/** Build facts: mbedTLS version, profile, record buffer sizes, TLS versions. */
typedef struct tether_tls_build_info {
    const char *mbedtls_version; /**< e.g. "3.6.6". */
    const char *debian_version;  /**< Debian source package version it was built from. */
    const char *profile;         /**< desktop, esp-idf, tight, minimal. */
    size_t in_content_len;
    size_t out_content_len;
    bool tls13;
    bool variable_buffers;
    uint16_t default_max_fragment; /**< 0 when the profile does not ask for one. */
} tether_tls_build_info;

/**
 * Whether @p host has the form of an IoT hub's device host name, `{hub}.device.{suffix}`: a
 * first label, then the label `device` (any case), then at least one more label. Such hosts
 * are where Azure offers TLS 1.3.
 */
bool tether_tls_is_device_host_name(const char *host);

/**
 * Whether a connection with @p opts offers TLS 1.3: never in a build without it; with
 * ::TETHER_TLS_VERSIONS_AZURE only to a device host name (opts->host).
 */
bool tether_tls_offers_tls13(const tether_tls_options *opts);

/** The facts of this build. */
void tether_tls_get_build_info(tether_tls_build_info *out);

/** Defaults: port 8883, connect 10 s, handshake 30 s, io 1 s, profile's fragment length. */
tether_tls_options tether_tls_options_default(void);

/** Prepares @p tls; seeds the random generator from the port. Call once. */
TETHER_MUST_USE tether_status tether_tls_init(tether_tls *tls);

/**
 * Adds root certificates to the trust store: PEM (NUL counted in @p len; several certs may
 * follow each other) or DER. May be called up to ::TETHER_TLS_MAX_TRUST times. The buffer is
 * checked now (parsed, then freed) and referenced: it must outlive @p tls.
 * @return TETHER_OK if at least one certificate was found, else TETHER_TLS_CA_PARSE_FAILED
 *         (TETHER_TLS_ALLOC_FAILED when the heap refused; TETHER_INVALID_ARGUMENT past
 *         ::TETHER_TLS_MAX_TRUST buffers).
 */
TETHER_MUST_USE tether_status tether_tls_add_trust(tether_tls *tls, const uint8_t *data,
                                                   size_t len);

/**
 * Sets the client certificate chain (leaf first) and its private key. Both are checked now
 * (parsed, the key matched to the leaf, then freed) and referenced: @p chain, @p key and
 * @p password must outlive @p tls.
 * @param password for an encrypted key, NULL otherwise.
 * @return TETHER_TLS_CERT_PARSE_FAILED, TETHER_TLS_KEY_PARSE_FAILED,
 *         TETHER_TLS_KEY_PASSWORD_REQUIRED, TETHER_TLS_KEY_PASSWORD_WRONG or
 *         TETHER_TLS_KEY_MISMATCH on failure.
 */
TETHER_MUST_USE tether_status tether_tls_set_identity(tether_tls *tls, const uint8_t *chain,
                                                      size_t chain_len, const uint8_t *key,
                                                      size_t key_len, const char *password);

/**
 * Size in bytes of the TLS 1.2 Certificate handshake message the identity makes, and the
 * output buffer it needs (0 if no identity). This is what must fit MBEDTLS_SSL_OUT_CONTENT_LEN.
 */
size_t tether_tls_certificate_message_size(const tether_tls *tls);

/**
 * Sizes of the handshake messages a client identity makes the client send: its Certificate
 * message (TLS 1.2: 4 + 3 + per certificate 3 + DER; TLS 1.3 adds a context byte and 2 bytes
 * of extensions per certificate, RFC 8446 4.4.2) and the largest CertificateVerify its key
 * can make (4 + 2 + 2 + signature: the modulus size for RSA, MBEDTLS_ECDSA_MAX_SIG_LEN for EC).
 * Any pointer may be NULL.
 */
void tether_tls_handshake_sizes(const mbedtls_x509_crt *chain, const mbedtls_pk_context *key,
                                size_t *certificate_tls12, size_t *certificate_tls13,
                                size_t *certificate_verify);

/** The maximum fragment length @p opts asks for, in bytes (the profile's default when
 * max_fragment is 0), or 0 when it asks for none. */
uint16_t tether_tls_fragment_limit(const tether_tls_options *opts);

/**
 * Checks before connecting that the client's handshake messages fit the maximum fragment
 * length @p opts asks for. mbedTLS 3.6 writes a handshake message as one record and cannot
 * split it (library/ssl_msg.c: "We deliberately do not check for the MTU or MFL here"), and
 * a server that accepted the limit answers a longer record with a record_overflow alert
 * (RFC 6066, section 4). tether_tls_connect() makes this check first (unless
 * tether_tls_options.send_oversized_handshake).
 * @return TETHER_OK (also with no identity or no fragment length), or
 *         TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL with the diag's needed (the message size),
 *         available (the fragment length) and handshake_type (11 Certificate, 15
 *         CertificateVerify). The Certificate message counted is TLS 1.3's when this
 *         connection would offer TLS 1.3 (tether_tls_offers_tls13()), for the server may
 *         choose it.
 */
TETHER_MUST_USE tether_status tether_tls_check_fragment_length(tether_tls *tls,
                                                               const tether_tls_options *opts);

/** SHA-256 of @p len bytes (mbedTLS), e.g. to fingerprint a symmetric key. */
void tether_sha256(const void *data, size_t len, uint8_t out[32]);

/**
 * SHA-256 of the identity's leaf certificate (DER): the fingerprint a stored provisioning
 * result is tied to. @return TETHER_INVALID_ARGUMENT when no identity is set.
 */
TETHER_MUST_USE tether_status tether_tls_identity_sha256(const tether_tls *tls, uint8_t out[32]);

/** Connects over TCP and completes the handshake. On failure see tether_tls_last_diag(). */
TETHER_MUST_USE tether_status tether_tls_connect(tether_tls *tls, const tether_tls_options *opts);

/** How long the transport's recv waits for data before returning 0 ("try again"). */
void tether_tls_set_io_timeout(tether_tls *tls, uint32_t ms);

/** The connection as a transport for MQTT. */
tether_transport tether_tls_transport(tether_tls *tls);

/** Sends close_notify and closes the socket; credentials stay for the next connect. */
void tether_tls_close(tether_tls *tls);

/** Frees everything mbedTLS allocated for @p tls. */
void tether_tls_free(tether_tls *tls);

/** The diagnosis of the last failure (or of the last successful handshake). */
const tether_tls_diag *tether_tls_last_diag(const tether_tls *tls);

/** "TCP connect", "ClientHello", ... */
const char *tether_tls_stage_name(tether_tls_stage stage);

/** The TLS version and cipher suite negotiated ("TLSv1.2", ...), after connect. */
const char *tether_tls_version_name(const tether_tls *tls);
const char *tether_tls_ciphersuite_name(const tether_tls *tls);

/* --- translation of mbedTLS facts into words (also used by `tether explain`) --------- */

/** Splits a combined mbedTLS code into its high-level and low-level parts. */
void tether_mbedtls_split(int code, int *out_high, int *out_low);

/** mbedTLS's own text for a code (mbedtls_strerror), into @p buf. */
void tether_mbedtls_text(int code, char *buf, size_t len);

/** Name of a TLS alert description ("unknown_ca"), or NULL. */
const char *tether_tls_alert_name(int alert);

/**
 * Writes one line per set MBEDTLS_X509_BADCERT_/BADCRL_ flag into @p buf, each "- NAME: meaning".
 * @return the number of flags described.
 */
size_t tether_tls_describe_verify_flags(uint32_t flags, char *buf, size_t len);

/**
 * Writes the full explanation of @p diag (what, why, the numbers, what to change, the raw
 * code), several lines, into @p buf.
 */
void tether_tls_describe(const tether_tls_diag *diag, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_TLS_H */
