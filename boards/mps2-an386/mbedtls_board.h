/* mbedTLS additions for a microcontroller, on top of the tether profile (MBEDTLS_USER_CONFIG_FILE).
 * AES tables as constants in flash: otherwise mbedTLS builds 8 KB of them in RAM at run time. */
#define MBEDTLS_AES_ROM_TABLES
/* mbedTLS's certificate-date check calls gmtime() where it does not know gmtime_r (it only
 * knows it on Unix and Windows); newlib-nano's gmtime() allocates its buffer with malloc and
 * asserts when that fails. The port supplies mbedtls_platform_gmtime_r() over gmtime_r(). */
#define MBEDTLS_PLATFORM_GMTIME_R_ALT
