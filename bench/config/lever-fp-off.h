/* Bench only, a lever measured on top of a profile: no fixed-point comb for the generator, so
 * signatures and key generation multiply without mbedTLS's precomputed table (less heap for
 * the comb, much more time). */
#undef MBEDTLS_ECP_FIXED_POINT_OPTIM
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
