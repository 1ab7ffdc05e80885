/* The POSIX port's internals that another POSIX socket layer reuses (bench/loadgen.c, which
 * drives the same sockets without blocking and must report errors exactly as this port does). */
#ifndef TETHER_PORT_POSIX_H
#define TETHER_PORT_POSIX_H

#include <stddef.h>
#include <stdint.h>

#include "tether/port.h"
#include "tether/status.h"

/** The tether status for a socket errno (ECONNREFUSED, ETIMEDOUT, ECONNRESET, ...). */
tether_status tether_port_posix_status_of_errno(int err);

/**
 * One send without waiting: the bytes taken (> 0), 0 when the socket would block (or @p len is
 * 0), or a negative transport error (tether_transport_error()) with sock->last_errno set.
 */
int32_t tether_port_posix_send_once(tether_socket *sock, const uint8_t *buf, size_t len);

/** One receive without waiting: bytes read (> 0), 0 when none are there, or a negative
 *  transport error (TETHER_CONNECTION_CLOSED at the end of the stream). */
int32_t tether_port_posix_recv_once(tether_socket *sock, uint8_t *buf, size_t len);

#endif /* TETHER_PORT_POSIX_H */
