/*
 * Bench only: what mbedTLS's reference client ssl_client2 needs on top of a tether profile.
 * Included after the profile header (MBEDTLS_USER_CONFIG_FILE), so buffers, versions,
 * suites, curves and fragment length are the profile's. None of these changes the heap of a
 * handshake: sockets (NET_C), reading files (FS_IO), timers, and mbedTLS's own entropy
 * and time() in place of tether's port.
 */
#undef MBEDTLS_NO_PLATFORM_ENTROPY
#undef MBEDTLS_PLATFORM_TIME_ALT
#define MBEDTLS_NET_C
#define MBEDTLS_FS_IO
#define MBEDTLS_TIMING_C
