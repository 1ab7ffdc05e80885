/* SNTP (RFC 4330) packets, the offset arithmetic, one query through the port, and the
 * clock gate. */
#include "tether/sntp.h"

#include <string.h>

#include "tether/port.h"

#ifndef TETHER_CLOCK_FLOOR
#define TETHER_CLOCK_FLOOR 1767225600 /* 2026-01-01, when the build does not say */
#endif

/* Seconds from the NTP epoch (1900) to the Unix epoch (1970). */
#define NTP_UNIX_DELTA 2208988800LL

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static int64_t ntp_to_unix_ms(uint64_t ts)
{
    int64_t seconds = (int64_t)(ts >> 32);
    /* Era 1 starts in 2036: a value with the top bit clear is past that wrap. */
    if (seconds < 0x80000000LL)
        seconds += 0x100000000LL;
    int64_t ms = (int64_t)(((ts & 0xFFFFFFFFu) * 1000u) >> 32);
    return (seconds - NTP_UNIX_DELTA) * 1000 + ms;
}

void tether_sntp_encode_request(uint8_t out[TETHER_SNTP_PACKET_LEN], uint64_t nonce)
{
    memset(out, 0, TETHER_SNTP_PACKET_LEN);
    out[0] = 0x23; /* leap 0, version 4, mode 3 (client) */
    put_u32(out + 40, (uint32_t)(nonce >> 32));
    put_u32(out + 44, (uint32_t)nonce);
}

tether_status tether_sntp_parse_reply(const uint8_t *buf, size_t len, uint64_t nonce,
                                      tether_sntp_reply *out)
{
    if (buf == NULL || out == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    if (len < TETHER_SNTP_PACKET_LEN)
        return TETHER_SNTP_BAD_REPLY;
    uint8_t leap = buf[0] >> 6, version = (buf[0] >> 3) & 7, mode = buf[0] & 7;
    if ((mode != 4 && mode != 5) || version < 3 || version > 4)
        return TETHER_SNTP_BAD_REPLY;
    /* The originate field must echo our nonce: anything else is not an answer to us. */
    if (get_u64(buf + 24) != nonce)
        return TETHER_SNTP_BAD_REPLY;
    out->leap = leap;
    out->version = version;
    out->stratum = buf[1];
    for (int i = 0; i < 4; i++)
        out->ref_id[i] = (buf[12 + i] >= 0x20 && buf[12 + i] < 0x7f) ? (char)buf[12 + i] : 0;
    if (out->stratum == 0)
        return TETHER_SNTP_KISS_OF_DEATH;
    if (leap == 3 || out->stratum >= 16)
        return TETHER_SNTP_UNSYNCHRONIZED;
    uint64_t receive = get_u64(buf + 32), transmit = get_u64(buf + 40);
    if (transmit == 0 || receive == 0)
        return TETHER_SNTP_BAD_REPLY;
    out->receive_ms = ntp_to_unix_ms(receive);
    out->transmit_ms = ntp_to_unix_ms(transmit);
    return TETHER_OK;
}

void tether_sntp_compute(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *out_offset_ms,
                         int64_t *out_delay_ms)
{
    if (out_offset_ms)
        *out_offset_ms = ((t2 - t1) + (t3 - t4)) / 2;
    if (out_delay_ms)
        *out_delay_ms = (t4 - t1) - (t3 - t2);
}

tether_status tether_sntp_query(const char *host, uint16_t port, uint32_t timeout_ms,
                                tether_sntp_result *out)
{
    if (host == NULL || out == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    uint8_t nonce_bytes[8];
    tether_status st = tether_port_entropy(nonce_bytes, sizeof nonce_bytes);
    if (st != TETHER_OK)
        return st;
    uint64_t nonce = 0;
    for (int i = 0; i < 8; i++)
        nonce = nonce << 8 | nonce_bytes[i];
    uint8_t req[TETHER_SNTP_PACKET_LEN], reply[128];
    tether_sntp_encode_request(req, nonce);
    /* Elapsed time from the monotonic clock: the wall clock may be anything, even 1970. */
    int64_t t1 = tether_clock_unix_ms();
    uint64_t start = tether_port_now_ms();
    size_t len = 0;
    st = tether_port_udp_exchange(host, port, req, sizeof req, reply, sizeof reply, &len,
                                  timeout_ms);
    int64_t t4 = t1 + (int64_t)(tether_port_now_ms() - start);
    if (st != TETHER_OK)
        return st;
    st = tether_sntp_parse_reply(reply, len, nonce, &out->reply);
    if (st != TETHER_OK)
        return st;
    tether_sntp_compute(t1, out->reply.receive_ms, out->reply.transmit_ms, t4, &out->offset_ms,
                        &out->delay_ms);
    return TETHER_OK;
}

/* Process-wide by nature: there is one wall clock. */
static int64_t clock_offset_ms;

int64_t tether_clock_unix_ms(void)
{
    return tether_port_wall_ms() + clock_offset_ms;
}

int64_t tether_clock_unix_s(void)
{
    int64_t ms = tether_clock_unix_ms();
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

void tether_clock_set_offset_ms(int64_t offset_ms)
{
    clock_offset_ms = offset_ms;
}

int64_t tether_clock_offset_ms(void)
{
    return clock_offset_ms;
}

int64_t tether_clock_floor(void)
{
    return (int64_t)TETHER_CLOCK_FLOOR;
}

int tether_clock_is_set(int64_t unix_s)
{
    return unix_s >= tether_clock_floor();
}
