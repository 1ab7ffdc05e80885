/**
 * @file port.h
 * @brief The platform port: sockets, clocks, randomness, files. Small on purpose.
 *
 * Everything tether needs from the platform is here; a port for ESP-IDF or FreeRTOS
 * reimplements these functions and nothing else (docs/porting.md, function by function). Two
 * ports exist: POSIX (src/port/posix, the default) and bare-metal Cortex-M with a UART modem
 * (src/port/cortex-m). Socket functions follow the transport contract of transport.h: bytes
 * moved, 0 for "nothing within the timeout", a negative ::tether_status on error.
 *
 * What the device library (TLS, MQTT, DPS and hub sessions) calls: the four TCP functions,
 * the clocks, tether_port_entropy() and tether_port_sleep_ms(). tether_port_udp_exchange() is
 * called only by SNTP (sntp.h) and tether_port_read_file() only by the command line and the
 * POSIX file store: a port without UDP or files returns TETHER_SOCKET_ERROR and
 * TETHER_FILE_NOT_FOUND from them. Where mbedTLS has no POSIX clock the port also supplies
 * mbedtls_ms_time() (MBEDTLS_PLATFORM_MS_TIME_ALT) and, without gmtime_r,
 * mbedtls_platform_gmtime_r() (MBEDTLS_PLATFORM_GMTIME_R_ALT).
 *
 * @code
 * tether_socket s;
 * if (tether_port_tcp_connect(&s, "localhost", 8883, 5000) == TETHER_OK) {
 *     int32_t n = tether_port_tcp_send(&s, (const uint8_t *)"x", 1, 1000);
 *     tether_port_tcp_close(&s);
 * }
 * @endcode
 */
#ifndef TETHER_PORT_H
#define TETHER_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A TCP connection, as the port keeps it. The fields mean what the port makes them mean:
 * `fd` is the port's handle (a POSIX descriptor, a modem's link number), -1 when closed;
 * `last_errno` is the system error code where the platform has one (errno), else 0.
 */
typedef struct tether_socket {
    int fd;              /**< The port's connection handle; -1 when closed. */
    int last_errno;      /**< errno of the last failure on POSIX; 0 if none or no errno. */
    char address[64];    /**< Address connected to (numeric, or the name a modem dialled). */
    uint32_t connect_ms; /**< Time the TCP connect took. */
} tether_socket;

/**
 * Resolves @p host (IPv4 or IPv6, getaddrinfo) and connects to the first address that
 * answers within @p timeout_ms overall.
 * @return TETHER_OK, TETHER_DNS_FAILED, TETHER_CONNECT_REFUSED, TETHER_CONNECT_TIMEOUT,
 *         TETHER_NETWORK_UNREACHABLE or TETHER_SOCKET_ERROR (errno in last_errno).
 */
TETHER_MUST_USE tether_status tether_port_tcp_connect(tether_socket *sock, const char *host,
                                                      uint16_t port, uint32_t timeout_ms);

/** Sends up to @p len bytes, waiting at most @p timeout_ms for the socket to take any. */
int32_t tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                             uint32_t timeout_ms);

/** Receives up to @p len bytes, waiting at most @p timeout_ms for any to arrive. */
int32_t tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len, uint32_t timeout_ms);

/** Closes the connection; safe on a closed socket. */
void tether_port_tcp_close(tether_socket *sock);

/** Monotonic milliseconds since an arbitrary start; never goes back. */
uint64_t tether_port_now_ms(void);

/**
 * The platform's wall clock in Unix milliseconds, as the platform knows it: the system clock
 * (POSIX CLOCK_REALTIME), an RTC, or, on a board with neither, its uptime (which reads 1970,
 * so the clock gate refuses TLS until the time is learnt). The port keeps no correction:
 * tether adds its own offset (tether_clock_set_offset_ms(), sntp.h), the same on every port.
 */
int64_t tether_port_wall_ms(void);

/**
 * Sends one UDP datagram to @p host:@p port and waits up to @p timeout_ms for one reply from
 * that address (SNTP). Replies from elsewhere are ignored.
 * @return TETHER_OK, TETHER_DNS_FAILED, TETHER_TIMEOUT or TETHER_SOCKET_ERROR.
 */
TETHER_MUST_USE tether_status tether_port_udp_exchange(const char *host, uint16_t port,
                                                       const uint8_t *request, size_t request_len,
                                                       uint8_t *reply, size_t reply_cap,
                                                       size_t *out_len, uint32_t timeout_ms);

/** Fills @p buf with cryptographically strong random bytes. */
TETHER_MUST_USE tether_status tether_port_entropy(uint8_t *buf, size_t len);

/** Sleeps for @p ms milliseconds. */
void tether_port_sleep_ms(uint32_t ms);

/**
 * Reads a whole file into a caller buffer and NUL-terminates it (PEM parsers want that).
 * @param out_len bytes read, without the terminator; on TETHER_FILE_TOO_LARGE, the file size.
 * @return TETHER_OK, TETHER_FILE_NOT_FOUND, TETHER_FILE_READ_FAILED or TETHER_FILE_TOO_LARGE.
 */
TETHER_MUST_USE tether_status tether_port_read_file(const char *path, uint8_t *buf, size_t cap,
                                                    size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_PORT_H */
