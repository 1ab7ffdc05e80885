/* Bench only, a lever measured on top of a profile: SHA-256 as the only SHA-2 size and no
 * X25519, so the TLS 1.2 handshake keeps one running hash and the suites are AES-*-SHA256.
 * P-384 stays: the local cloud's root (and many real ones) sign with it. */
#undef MBEDTLS_ECP_DP_CURVE25519_ENABLED
#undef MBEDTLS_SHA384_C
#undef MBEDTLS_SHA512_C
