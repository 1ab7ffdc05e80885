/* Bench only, a lever measured on top of a profile: the AES-CBC suites back (minimal offers
 * AES-GCM only), which adds 288 B of padding and MAC allowance to each record buffer. */
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_PADDING_PKCS7
