/*
 * A port that does nothing, so that bench/size/device_app.c links for a Cortex-M4 (bench/run,
 * code_size()). A device brings its own port (include/tether/port.h); this one is not counted
 * in the device library's size. device_log() stands for the device's logging.
 */
#include <stdint.h>

#include "mbedtls/platform_time.h"

#include "tether/port.h"
#include "tether/status.h"

void device_log(const char *what, tether_status st);

tether_status tether_port_tcp_connect(tether_socket *sock, const char *host, uint16_t port,
                                      uint32_t timeout_ms)
{
    (void)host;
    (void)port;
    (void)timeout_ms;
    sock->fd = -1;
    return TETHER_CONNECT_REFUSED;
}

int32_t tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                             uint32_t timeout_ms)
{
    (void)sock;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return TETHER_SOCKET_ERROR;
}

int32_t tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    (void)sock;
    (void)buf;
    (void)len;
    (void)timeout_ms;
    return TETHER_SOCKET_ERROR;
}

void tether_port_tcp_close(tether_socket *sock)
{
    sock->fd = -1;
}

uint64_t tether_port_now_ms(void)
{
    return 0;
}

int64_t tether_port_wall_ms(void)
{
    return 0;
}

tether_status tether_port_udp_exchange(const char *host, uint16_t port, const uint8_t *request,
                                       size_t request_len, uint8_t *reply, size_t reply_cap,
                                       size_t *out_len, uint32_t timeout_ms)
{
    (void)host;
    (void)port;
    (void)request;
    (void)request_len;
    (void)reply;
    (void)reply_cap;
    (void)out_len;
    (void)timeout_ms;
    return TETHER_TIMEOUT;
}

tether_status tether_port_entropy(uint8_t *buf, size_t len)
{
    (void)buf;
    (void)len;
    return TETHER_SOCKET_ERROR;
}

void tether_port_sleep_ms(uint32_t ms)
{
    (void)ms;
}

tether_status tether_port_read_file(const char *path, uint8_t *buf, size_t cap, size_t *out_len)
{
    (void)path;
    (void)buf;
    (void)cap;
    (void)out_len;
    return TETHER_FILE_NOT_FOUND;
}

/* MBEDTLS_PLATFORM_MS_TIME_ALT: on a device the port supplies mbedTLS's clock. */
mbedtls_ms_time_t mbedtls_ms_time(void)
{
    return 0;
}

void device_log(const char *what, tether_status st)
{
    (void)what;
    (void)st;
}
