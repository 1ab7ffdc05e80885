/* Bench only, a lever measured on top of a profile: a 4 KB input buffer (azure has 3,456 B,
 * the Certificate record of Azure's RSA chain with 59 B to spare). */
#undef MBEDTLS_SSL_IN_CONTENT_LEN
#define MBEDTLS_SSL_IN_CONTENT_LEN 4096
