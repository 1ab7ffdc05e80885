/* Bench only, a lever measured on top of a profile: a 3-bit elliptic-curve window for points
 * other than the generator (the generator keeps mbedTLS's precomputed table in flash). */
#undef MBEDTLS_ECP_WINDOW_SIZE
#define MBEDTLS_ECP_WINDOW_SIZE 3
