/* The POSIX port: BSD sockets with poll() timeouts, clock_gettime, getrandom, stdio files. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "tether/port.h"
#include "tether/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "port_posix.h"

tether_status tether_port_posix_status_of_errno(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return TETHER_CONNECT_REFUSED;
    case ETIMEDOUT:
        return TETHER_CONNECT_TIMEOUT;
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EADDRNOTAVAIL:
    case EAFNOSUPPORT:
        return TETHER_NETWORK_UNREACHABLE;
    case ECONNRESET:
    case EPIPE:
        return TETHER_CONNECTION_RESET;
    default:
        return TETHER_SOCKET_ERROR;
    }
}

static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&p, 1, timeout_ms > INT32_MAX ? -1 : (int)timeout_ms);
    } while (n < 0 && errno == EINTR);
    return n;
}

/* Non-blocking connect bounded by the time left; the socket stays non-blocking so that
 * send/recv never block past their own timeouts. */
static tether_status connect_one(tether_socket *sock, const struct addrinfo *ai,
                                 uint64_t deadline_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
        sock->last_errno = errno;
        return tether_port_posix_status_of_errno(errno);
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        sock->last_errno = errno;
        close(fd);
        return tether_port_posix_status_of_errno(sock->last_errno);
    }
    uint64_t now = tether_port_now_ms();
    uint32_t left = deadline_ms > now ? (uint32_t)(deadline_ms - now) : 0;
    int n = wait_fd(fd, POLLOUT, left);
    if (n == 0) {
        sock->last_errno = ETIMEDOUT;
        close(fd);
        return TETHER_CONNECT_TIMEOUT;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        sock->last_errno = err ? err : errno;
        close(fd);
        return tether_port_posix_status_of_errno(sock->last_errno);
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sock->fd = fd;
    sock->last_errno = 0;
    return TETHER_OK;
}

tether_status tether_port_tcp_connect(tether_socket *sock, const char *host, uint16_t port,
                                      uint32_t timeout_ms)
{
    if (sock == NULL || host == NULL || port == 0)
        return TETHER_INVALID_ARGUMENT;
    memset(sock, 0, sizeof *sock);
    sock->fd = -1;

    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list = NULL;
    uint64_t start = tether_port_now_ms();
    int gai = getaddrinfo(host, service, &hints, &list);
    if (gai != 0) {
        sock->last_errno = gai == EAI_SYSTEM ? errno : 0;
        return TETHER_DNS_FAILED;
    }
    tether_status st = TETHER_CONNECT_REFUSED;
    uint64_t deadline = start + timeout_ms;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        st = connect_one(sock, ai, deadline);
        if (st == TETHER_OK) {
            void *addr = ai->ai_family == AF_INET6
                             ? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                             : (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
            inet_ntop(ai->ai_family, addr, sock->address, sizeof sock->address);
            break;
        }
        if (tether_port_now_ms() >= deadline)
            break;
    }
    freeaddrinfo(list);
    sock->connect_ms = (uint32_t)(tether_port_now_ms() - start);
    return st;
}

int32_t tether_port_posix_send_once(tether_socket *sock, const uint8_t *buf, size_t len)
{
    if (sock == NULL || sock->fd < 0)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    if (len > INT32_MAX)
        len = INT32_MAX;
    for (;;) {
        ssize_t n = send(sock->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return (int32_t)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        sock->last_errno = errno;
        return tether_transport_error(tether_port_posix_status_of_errno(errno));
    }
}

int32_t tether_port_posix_recv_once(tether_socket *sock, uint8_t *buf, size_t len)
{
    if (sock == NULL || sock->fd < 0)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    if (len > INT32_MAX)
        len = INT32_MAX;
    for (;;) {
        ssize_t n = recv(sock->fd, buf, len, 0);
        if (n > 0)
            return (int32_t)n;
        if (n == 0)
            return tether_transport_error(TETHER_CONNECTION_CLOSED);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        sock->last_errno = errno;
        return tether_transport_error(tether_port_posix_status_of_errno(errno));
    }
}

/* One attempt, then waits for the socket and tries again, until something moved, an error, or
 * @p timeout_ms of waiting in vain (0 returned). */
static int32_t move_bytes(tether_socket *sock, uint8_t *rbuf, const uint8_t *sbuf, size_t len,
                          uint32_t timeout_ms)
{
    for (;;) {
        int32_t n = sbuf != NULL ? tether_port_posix_send_once(sock, sbuf, len)
                                 : tether_port_posix_recv_once(sock, rbuf, len);
        if (n != 0 || len == 0)
            return n;
        int w = wait_fd(sock->fd, sbuf != NULL ? POLLOUT : POLLIN, timeout_ms);
        if (w == 0)
            return 0;
        if (w < 0) {
            sock->last_errno = errno;
            return tether_transport_error(TETHER_SOCKET_ERROR);
        }
    }
}

int32_t tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                             uint32_t timeout_ms)
{
    return move_bytes(sock, NULL, buf, len, timeout_ms);
}

int32_t tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    return move_bytes(sock, buf, NULL, len, timeout_ms);
}

void tether_port_tcp_close(tether_socket *sock)
{
    if (sock != NULL && sock->fd >= 0) {
        close(sock->fd);
        sock->fd = -1;
    }
}

uint64_t tether_port_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t tether_port_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tether_status tether_port_udp_exchange(const char *host, uint16_t port, const uint8_t *request,
                                       size_t request_len, uint8_t *reply, size_t reply_cap,
                                       size_t *out_len, uint32_t timeout_ms)
{
    if (host == NULL || request == NULL || reply == NULL || out_len == NULL || port == 0)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0)
        return TETHER_DNS_FAILED;
    tether_status st = TETHER_SOCKET_ERROR;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    /* A connected UDP socket only receives from that peer. */
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
        send(fd, request, request_len, 0) == (ssize_t)request_len) {
        uint64_t deadline = tether_port_now_ms() + timeout_ms;
        st = TETHER_TIMEOUT;
        for (;;) {
            uint64_t now = tether_port_now_ms();
            if (now >= deadline || wait_fd(fd, POLLIN, (uint32_t)(deadline - now)) <= 0)
                break;
            ssize_t n = recv(fd, reply, reply_cap, 0);
            if (n > 0) {
                *out_len = (size_t)n;
                st = TETHER_OK;
                break;
            }
            if (n < 0 && errno != EINTR && errno != EAGAIN) {
                /* ICMP port unreachable: nothing listens there. */
                st = errno == ECONNREFUSED ? TETHER_CONNECT_REFUSED : TETHER_SOCKET_ERROR;
                break;
            }
        }
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return st;
}

tether_status tether_port_entropy(uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = getrandom(buf, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TETHER_ENTROPY_FAILED;
        }
        buf += n;
        len -= (size_t)n;
    }
    return TETHER_OK;
}

void tether_port_sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

tether_status tether_port_read_file(const char *path, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (path == NULL || buf == NULL || cap == 0 || out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return errno == ENOENT ? TETHER_FILE_NOT_FOUND : TETHER_FILE_READ_FAILED;
    size_t n = fread(buf, 1, cap - 1, f);
    tether_status st = TETHER_OK;
    if (ferror(f)) {
        st = TETHER_FILE_READ_FAILED;
    } else if (n == cap - 1 && fgetc(f) != EOF) {
        /* Report the real size so the message can say how much room the file needs. */
        if (fseek(f, 0, SEEK_END) == 0) {
            long size = ftell(f);
            n = size > 0 ? (size_t)size : n;
        }
        st = TETHER_FILE_TOO_LARGE;
    }
    fclose(f);
    *out_len = n;
    if (st == TETHER_OK)
        buf[n] = 0;
    return st;
}
