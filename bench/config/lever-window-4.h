/* Bench only, a lever measured on top of a profile: mbedTLS's default 4-bit elliptic-curve
 * window (minimal uses 2, tight 3): faster scalar multiplication, larger tables on the heap. */
#undef MBEDTLS_ECP_WINDOW_SIZE
#define MBEDTLS_ECP_WINDOW_SIZE 4
