/**
 * @file modem.h
 * @brief The UART "modem" link: a TCP socket offered by a cellular or Wi-Fi module over a
 *        serial line, as the bare-metal Cortex-M port uses it.
 *
 * Many devices reach the network through a module that speaks TCP for them over a UART (AT
 * commands such as AT+QIOPEN / AT+QISEND / AT+QIRD). This is the same service in a small binary
 * framing, carried on the emulated board by QEMU's `-serial tcp:` to tools/modem_bridge.py,
 * which opens the real connections (loopback only). TLS, MQTT, DPS and the hub session all
 * run on the MCU: the modem only moves bytes.
 *
 * ## Framing (every integer big-endian)
 *
 *     frame   = type (1) | seq (1) | length (2) | payload (length bytes, at most 1024)
 *
 * The MCU sends a request; the modem answers it with exactly one reply frame carrying the same
 * seq and the request's type in lower case. The modem never speaks unasked (reads are pulled,
 * as with AT+QIRD), so a reply is never interleaved with anything else and no byte needs to be
 * buffered on the MCU beyond what the caller asked for. A reply with another seq (one that
 * arrived after its request timed out) is skipped.
 *
 * | request | payload                                   | reply payload                     |
 * | ------- | ----------------------------------------- | --------------------------------- |
 * | `O` open  | link (1), port (2), host (ASCII, no NUL) | link, result                     |
 * | `W` write | link (1), data (1..512)                  | link, result, accepted (2)       |
 * | `R` read  | link (1), max (2, ≤ 512), wait_ms (2)    | link, result, data (0..max)      |
 * | `C` close | link (1)                                 | link, result                     |
 * | `T` time of day (as AT+CCLK / network time)  | -    | result, Unix milliseconds (8)    |
 * | `X` **emulation-only** entropy | count (2, ≤ 256) | result, count random bytes        |
 *
 * A read waits up to wait_ms for data and answers with what is there (0 bytes: nothing came).
 * `X` exists because the emulated board has no TRNG: the bridge answers it from the host's
 * os.urandom(). A real modem has no such command and a production port must not use one: it
 * reads the MCU's TRNG (see docs/porting.md).
 *
 * Results: ::tether_modem_result. Link numbers let a module hold several sockets; tether uses
 * one at a time.
 */
#ifndef TETHER_PORT_MODEM_H
#define TETHER_PORT_MODEM_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

/** Largest payload of a frame. */
#define TETHER_MODEM_FRAME_MAX 1024
/** Largest data chunk of one write or read. */
#define TETHER_MODEM_CHUNK 512
/** Largest entropy request. */
#define TETHER_MODEM_ENTROPY_MAX 256

/** The result byte of a reply. */
typedef enum tether_modem_result {
    TETHER_MODEM_OK = 0,
    TETHER_MODEM_REFUSED = 1,     /**< Connection refused. */
    TETHER_MODEM_DNS = 2,         /**< Name not resolved, or not a loopback address (bridge). */
    TETHER_MODEM_TIMEOUT = 3,     /**< Connect timed out. */
    TETHER_MODEM_UNREACHABLE = 4, /**< Network unreachable. */
    TETHER_MODEM_CLOSED = 5,      /**< The peer closed the connection (end of stream). */
    TETHER_MODEM_RESET = 6,       /**< The connection was reset. */
    TETHER_MODEM_ERROR = 7,       /**< Anything else (bad link, bad request). */
    TETHER_MODEM_NO_TIME = 8      /**< The module does not know the time of day yet. */
} tether_modem_result;

/** What the modem layer needs from the board: a byte UART and a way to idle. */
typedef struct tether_modem_uart {
    /** Sends @p len bytes (blocking until the UART took them). */
    void (*write)(void *context, const uint8_t *buf, size_t len);
    /** One received byte, or -1 when none is waiting. */
    int (*read_byte)(void *context);
    /** Waits for the next interrupt (WFI) or returns at once. */
    void (*idle)(void *context);
    /** Monotonic milliseconds. */
    uint64_t (*now_ms)(void *context);
    void *context;
} tether_modem_uart;

/** The modem link's state. */
typedef struct tether_modem {
    tether_modem_uart uart;
    uint8_t seq;
    uint32_t reply_slack_ms; /**< Added to a request's own wait before giving up on a reply. */
} tether_modem;

/** Prepares @p m over @p uart; the reply slack defaults to 5000 ms. */
void tether_modem_init(tether_modem *m, const tether_modem_uart *uart);

/** The tether status for a result byte (TETHER_CONNECT_REFUSED, TETHER_DNS_FAILED, ...). */
tether_status tether_modem_status(uint8_t result);

/** Opens @p link to @p host:@p port; the module waits up to @p timeout_ms. */
tether_status tether_modem_open(tether_modem *m, uint8_t link, const char *host, uint16_t port,
                                uint32_t timeout_ms);

/** Writes up to ::TETHER_MODEM_CHUNK bytes: bytes accepted, or a negative transport error. */
int32_t tether_modem_write(tether_modem *m, uint8_t link, const uint8_t *buf, size_t len);

/** Reads up to @p len bytes, waiting up to @p wait_ms: bytes read, 0, or a negative error. */
int32_t tether_modem_read(tether_modem *m, uint8_t link, uint8_t *buf, size_t len,
                          uint32_t wait_ms);

/** Closes @p link. */
void tether_modem_close(tether_modem *m, uint8_t link);

/** The module's time of day (Unix ms). @return TETHER_CLOCK_NOT_SET when it has none. */
tether_status tether_modem_time_ms(tether_modem *m, int64_t *out_unix_ms);

/**
 * EMULATION ONLY: random bytes from the host behind the bridge (the emulated board has no
 * TRNG). Never in a production port.
 */
tether_status tether_modem_emulation_entropy(tether_modem *m, uint8_t *buf, size_t len);

#endif /* TETHER_PORT_MODEM_H */
