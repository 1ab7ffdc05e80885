/* The UART modem link (framing in modem.h): one request, one reply, nothing unasked. */
#include "modem.h"

#include <string.h>

#include "tether/transport.h"

void tether_modem_init(tether_modem *m, const tether_modem_uart *uart)
{
    memset(m, 0, sizeof *m);
    m->uart = *uart;
    m->reply_slack_ms = 5000;
}

tether_status tether_modem_status(uint8_t result)
{
    switch (result) {
    case TETHER_MODEM_OK:
        return TETHER_OK;
    case TETHER_MODEM_REFUSED:
        return TETHER_CONNECT_REFUSED;
    case TETHER_MODEM_DNS:
        return TETHER_DNS_FAILED;
    case TETHER_MODEM_TIMEOUT:
        return TETHER_CONNECT_TIMEOUT;
    case TETHER_MODEM_UNREACHABLE:
        return TETHER_NETWORK_UNREACHABLE;
    case TETHER_MODEM_CLOSED:
        return TETHER_CONNECTION_CLOSED;
    case TETHER_MODEM_RESET:
        return TETHER_CONNECTION_RESET;
    case TETHER_MODEM_NO_TIME:
        return TETHER_CLOCK_NOT_SET;
    default:
        return TETHER_SOCKET_ERROR;
    }
}

/* One byte of the reply, waiting (idle between interrupts) until @p deadline. */
static int get_byte(tether_modem *m, uint64_t deadline)
{
    for (;;) {
        int c = m->uart.read_byte(m->uart.context);
        if (c >= 0)
            return c;
        if (m->uart.now_ms(m->uart.context) >= deadline)
            return -1;
        m->uart.idle(m->uart.context);
    }
}

/* Where a reply's payload goes: its first head_len bytes into head, the rest into data. */
typedef struct reply_sink {
    uint8_t *head;
    size_t head_len;
    uint8_t *data;
    size_t data_cap;
    size_t data_len; /* out */
} reply_sink;

/*
 * Sends request @p type with payload @p a (+ @p b appended) and reads its reply into @p sink.
 * Replies to earlier requests (another seq) are skipped. TETHER_TIMEOUT when no reply came
 * within @p wait_ms plus the slack; TETHER_SOCKET_ERROR for a reply that does not fit.
 */
static tether_status exchange(tether_modem *m, char type, const uint8_t *a, size_t a_len,
                              const uint8_t *b, size_t b_len, uint32_t wait_ms, reply_sink *sink)
{
    size_t len = a_len + b_len;
    if (len > TETHER_MODEM_FRAME_MAX)
        return TETHER_INVALID_ARGUMENT;
    uint8_t seq = ++m->seq;
    uint8_t hdr[4] = {(uint8_t)type, seq, (uint8_t)(len >> 8), (uint8_t)len};
    m->uart.write(m->uart.context, hdr, sizeof hdr);
    if (a_len)
        m->uart.write(m->uart.context, a, a_len);
    if (b_len)
        m->uart.write(m->uart.context, b, b_len);

    uint64_t deadline = m->uart.now_ms(m->uart.context) + wait_ms + m->reply_slack_ms;
    char want = (char)(type | 0x20); /* the reply is the request's letter in lower case */
    for (;;) {
        uint8_t h[4];
        for (size_t i = 0; i < sizeof h; i++) {
            int c = get_byte(m, deadline);
            if (c < 0)
                return TETHER_TIMEOUT;
            h[i] = (uint8_t)c;
        }
        size_t n = (size_t)h[2] << 8 | h[3];
        int mine = h[0] == (uint8_t)want && h[1] == seq;
        int fits = n >= sink->head_len && n - sink->head_len <= sink->data_cap;
        sink->data_len = 0;
        for (size_t i = 0; i < n; i++) {
            int c = get_byte(m, deadline);
            if (c < 0)
                return TETHER_TIMEOUT;
            if (!mine || !fits)
                continue;
            if (i < sink->head_len)
                sink->head[i] = (uint8_t)c;
            else
                sink->data[sink->data_len++] = (uint8_t)c;
        }
        if (mine)
            return fits ? TETHER_OK : TETHER_SOCKET_ERROR;
    }
}

tether_status tether_modem_open(tether_modem *m, uint8_t link, const char *host, uint16_t port,
                                uint32_t timeout_ms)
{
    size_t hlen = host != NULL ? strlen(host) : 0;
    if (hlen == 0 || hlen > 253 || port == 0)
        return TETHER_INVALID_ARGUMENT;
    uint8_t req[3] = {link, (uint8_t)(port >> 8), (uint8_t)port};
    uint8_t head[2];
    reply_sink sink = {head, sizeof head, NULL, 0, 0};
    tether_status st =
        exchange(m, 'O', req, sizeof req, (const uint8_t *)host, hlen, timeout_ms, &sink);
    return st != TETHER_OK ? st : tether_modem_status(head[1]);
}

int32_t tether_modem_write(tether_modem *m, uint8_t link, const uint8_t *buf, size_t len)
{
    if (len > TETHER_MODEM_CHUNK)
        len = TETHER_MODEM_CHUNK;
    if (len == 0)
        return 0;
    uint8_t head[4];
    reply_sink sink = {head, sizeof head, NULL, 0, 0};
    tether_status st = exchange(m, 'W', &link, 1, buf, len, 0, &sink);
    if (st == TETHER_OK)
        st = tether_modem_status(head[1]);
    if (st != TETHER_OK)
        return tether_transport_error(st);
    size_t accepted = (size_t)head[2] << 8 | head[3];
    return (int32_t)(accepted < len ? accepted : len);
}

int32_t tether_modem_read(tether_modem *m, uint8_t link, uint8_t *buf, size_t len, uint32_t wait_ms)
{
    if (len > TETHER_MODEM_CHUNK)
        len = TETHER_MODEM_CHUNK;
    if (wait_ms > 0xFFFFu)
        wait_ms = 0xFFFFu;
    uint8_t req[5] = {link, (uint8_t)(len >> 8), (uint8_t)len, (uint8_t)(wait_ms >> 8),
                      (uint8_t)wait_ms};
    uint8_t head[2];
    reply_sink sink = {head, sizeof head, buf, len, 0};
    tether_status st = exchange(m, 'R', req, sizeof req, NULL, 0, wait_ms, &sink);
    if (st == TETHER_OK)
        st = tether_modem_status(head[1]);
    if (st != TETHER_OK)
        return tether_transport_error(st);
    return (int32_t)sink.data_len;
}

void tether_modem_close(tether_modem *m, uint8_t link)
{
    uint8_t head[2];
    reply_sink sink = {head, sizeof head, NULL, 0, 0};
    (void)exchange(m, 'C', &link, 1, NULL, 0, 0, &sink);
}

tether_status tether_modem_time_ms(tether_modem *m, int64_t *out_unix_ms)
{
    uint8_t head[9];
    reply_sink sink = {head, sizeof head, NULL, 0, 0};
    tether_status st = exchange(m, 'T', NULL, 0, NULL, 0, 0, &sink);
    if (st == TETHER_OK)
        st = tether_modem_status(head[0]);
    if (st != TETHER_OK)
        return st;
    uint64_t v = 0;
    for (size_t i = 1; i < sizeof head; i++)
        v = v << 8 | head[i];
    *out_unix_ms = (int64_t)v;
    return TETHER_OK;
}

tether_status tether_modem_emulation_entropy(tether_modem *m, uint8_t *buf, size_t len)
{
    while (len > 0) {
        size_t n = len < TETHER_MODEM_ENTROPY_MAX ? len : TETHER_MODEM_ENTROPY_MAX;
        uint8_t req[2] = {(uint8_t)(n >> 8), (uint8_t)n};
        uint8_t head[1];
        reply_sink sink = {head, sizeof head, buf, n, 0};
        tether_status st = exchange(m, 'X', req, sizeof req, NULL, 0, 0, &sink);
        if (st == TETHER_OK && (head[0] != TETHER_MODEM_OK || sink.data_len != n))
            st = TETHER_ENTROPY_FAILED;
        if (st != TETHER_OK)
            return TETHER_ENTROPY_FAILED;
        buf += n;
        len -= n;
    }
    return TETHER_OK;
}
