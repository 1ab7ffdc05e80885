/* Bench only, a lever measured on top of a profile: buffers keep their size after the
 * handshake (no MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH): more heap while connected, but a record
 * as large as the input buffer can still arrive (a larger cloud-to-device message). */
#undef MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
