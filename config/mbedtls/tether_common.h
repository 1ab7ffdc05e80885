/*
 * tether's mbedTLS configuration, the part every profile shares.
 *
 * A profile file (desktop.h, esp-idf.h, tight.h, minimal.h) sets the record buffer sizes and
 * the TLS versions, then includes this file. The build passes the profile as
 * MBEDTLS_CONFIG_FILE, so this replaces mbedtls_config.h entirely: what is not named here is
 * not compiled in. The choice follows what Azure DPS and IoT Hub offer (PROTOCOL.md, TLS):
 * ECDHE with AES-GCM or AES-CBC-SHA256/384, over RSA or ECDSA keys, P-256/P-384 and X25519.
 */
#ifndef TETHER_MBEDTLS_COMMON_H
#define TETHER_MBEDTLS_COMMON_H

/* Every allocation goes through tether's hooks (tether_heap_*): counted, and cappable. */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY

/* Certificates carry validity dates; the clock comes from the platform. */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
/* ...and that clock is tether's port (which carries an SNTP correction), not time(). */
#define MBEDTLS_PLATFORM_TIME_ALT

/* Randomness: tether's port supplies the entropy source (getrandom on POSIX, the hardware
 * RNG on a device), so mbedTLS's own platform probing is off. */
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* Symmetric crypto and hashes used by the suites Azure offers. */
#define MBEDTLS_AES_C
#define MBEDTLS_GCM_C
#define MBEDTLS_CIPHER_C
#if !defined(TETHER_AEAD_ONLY)
/* CBC suites make every record buffer 288 B larger (256 B of padding and a 48-byte MAC
 * allowance), and CBC also decrypts password-protected PEM and PKCS#8 keys. */
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_PADDING_PKCS7
#endif
#define MBEDTLS_MD_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
/* MD5 only to derive the key of a legacy password-protected PEM key ("Proc-Type: 4,ENCRYPTED"). */
#define MBEDTLS_MD5_C
/* HMAC-SHA256 for SAS tokens, HKDF for TLS 1.3. */
#define MBEDTLS_HKDF_C

/* Public-key crypto: EC P-256/P-384 and RSA 2048-4096 device and server keys. */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#if !defined(TETHER_NO_RSA)
/* TETHER_NO_RSA (azure-ecc): an ECDSA-only server and EC device keys need no RSA. */
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#endif

/* Parsing certificates and keys, PEM or DER, and PKCS#8 keys with a password. */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PKCS5_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
/* Device chains are short (leaf + one or two intermediates); the default of 8 costs stack. */
#define MBEDTLS_X509_MAX_INTERMEDIATE_CA 4

/* TLS client. */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#if !defined(TETHER_NO_RSA)
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#endif
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH
/* Tell the server why a handshake was abandoned, so its log says it too. */
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES

/* Words for codes in logs (mbedtls_strerror); tether keeps the raw code beside its own. */
#define MBEDTLS_ERROR_C

#if defined(TETHER_TLS13)
/* TLS 1.3 in mbedTLS 3.6 runs on PSA crypto, and verifies the server after the handshake
 * messages are hashed, which needs the whole peer certificate kept (more heap). The random
 * generator for PSA comes from tether's port, as for the legacy side. */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
/* TLS 1.3 signs CertificateVerify with RSA-PSS for an RSA device key; mbedTLS offers the PSS
 * signature algorithms only with this (without it an RSA client certificate fails the
 * handshake with HANDSHAKE_FAILURE at the key exchange). */
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT
#endif

#endif /* TETHER_MBEDTLS_COMMON_H */
