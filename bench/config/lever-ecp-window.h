/* Bench only, a lever measured on top of a profile: the smallest elliptic-curve window and no
 * fixed-point comb speed-up (less heap per point multiplication, more time). */
#undef MBEDTLS_ECP_WINDOW_SIZE
#define MBEDTLS_ECP_WINDOW_SIZE 2
#undef MBEDTLS_ECP_FIXED_POINT_OPTIM
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
