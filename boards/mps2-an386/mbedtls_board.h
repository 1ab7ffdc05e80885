/* mbedTLS additions for a microcontroller, on top of the tether profile (MBEDTLS_USER_CONFIG_FILE).
 * AES tables as constants in flash: otherwise mbedTLS builds 8 KB of them in RAM at run time. */
#define MBEDTLS_AES_ROM_TABLES
