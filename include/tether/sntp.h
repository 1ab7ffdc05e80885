/**
 * @file sntp.h
 * @brief A small SNTP client (RFC 4330): a device whose clock reads 1970 learns the time
 *        before TLS, whose certificate checks need it.
 *
 * The packet functions are pure; tether_sntp_query() sends one request through the port and
 * computes the clock offset. The request carries a random nonce in place of the client's time
 * (as NTP data minimisation recommends), and a reply is accepted only if it echoes that nonce,
 * comes from a synchronised server (not a kiss-o'-death) and is well-formed.
 *
 * @code
 * tether_sntp_result r;
 * if (tether_sntp_query("pool.ntp.org", 123, 3000, &r) == TETHER_OK)
 *     tether_clock_set_offset_ms(tether_clock_offset_ms() + r.offset_ms);
 * @endcode
 */
#ifndef TETHER_SNTP_H
#define TETHER_SNTP_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TETHER_SNTP_PACKET_LEN 48

/** What a server's reply says. */
typedef struct tether_sntp_reply {
    uint8_t leap;        /**< 0..2; 3 (unsynchronised) is refused. */
    uint8_t version;     /**< 3 or 4. */
    uint8_t stratum;     /**< 1..15. */
    char ref_id[5];      /**< Reference id as text when printable (e.g. "GPS", "LOCL"). */
    int64_t receive_ms;  /**< Server time the request arrived, Unix ms. */
    int64_t transmit_ms; /**< Server time the reply left, Unix ms. */
} tether_sntp_reply;

/** The outcome of a query. */
typedef struct tether_sntp_result {
    int64_t offset_ms; /**< Add to the local clock to get the server's. */
    int64_t delay_ms;  /**< Round trip minus the server's processing. */
    tether_sntp_reply reply;
} tether_sntp_result;

/** Writes a client request carrying @p nonce as its transmit timestamp. */
void tether_sntp_encode_request(uint8_t out[TETHER_SNTP_PACKET_LEN], uint64_t nonce);

/**
 * Parses and checks a reply to the request that carried @p nonce.
 * @return TETHER_OK; TETHER_SNTP_BAD_REPLY (short, wrong mode or version, nonce not echoed,
 *         zero transmit time); TETHER_SNTP_KISS_OF_DEATH (stratum 0: the server says go away,
 *         the code is in ref_id); TETHER_SNTP_UNSYNCHRONIZED (leap 3 or stratum 16).
 */
TETHER_MUST_USE tether_status tether_sntp_parse_reply(const uint8_t *buf, size_t len,
                                                      uint64_t nonce, tether_sntp_reply *out);

/** Offset and delay from the four times of an exchange (Unix ms): sent, received by the
 *  server, sent by the server, received back. */
void tether_sntp_compute(int64_t t1, int64_t t2, int64_t t3, int64_t t4, int64_t *out_offset_ms,
                         int64_t *out_delay_ms);

/** One exchange with @p host:@p port through the port's UDP function. */
TETHER_MUST_USE tether_status tether_sntp_query(const char *host, uint16_t port,
                                                uint32_t timeout_ms, tether_sntp_result *out);

/**
 * The clock gate: true when the wall clock reads at least the build's floor (the date this
 * tether was built), i.e. it has been set. TLS and SAS refuse to run before.
 */
int tether_clock_is_set(int64_t unix_s);

/** The floor used by tether_clock_is_set(), in Unix seconds. */
int64_t tether_clock_floor(void);

/**
 * tether's wall clock in Unix milliseconds: the port's (tether_port_wall_ms()) plus the offset
 * set by tether_clock_set_offset_ms(). Everything in tether reads the time through this (TLS
 * certificate dates, SAS expiry, the clock gate); the system clock is never changed.
 */
int64_t tether_clock_unix_ms(void);

/** tether_clock_unix_ms() in whole seconds, rounded down (also before 1970). */
int64_t tether_clock_unix_s(void);

/**
 * Sets the correction added to the port's wall clock, in ms (from SNTP, a modem's time of
 * day, a gateway): it replaces the previous one. Process-wide, as the clock is; a device with
 * no battery-backed clock keeps it until it reboots.
 */
void tether_clock_set_offset_ms(int64_t offset_ms);

/** The correction in force (0 until set). */
int64_t tether_clock_offset_ms(void);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_SNTP_H */
