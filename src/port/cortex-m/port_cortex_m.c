/* The bare-metal Cortex-M port: include/tether/port.h on SysTick, WFI and the UART modem. */
#define _POSIX_C_SOURCE 200809L /* gmtime_r */

#include "port_cortex_m.h"

#include <string.h>
#include <time.h>

#include "board.h"
#include "mbedtls/platform_time.h"
#include "mbedtls/platform_util.h"
#include "tether/port.h"
#include "tether/sntp.h"
#include "tether/transport.h"

/* SysTick (ARMv7-M architecture reference manual, B3.3). */
#define SYST_CSR                        (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR                        (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR                        (*(volatile uint32_t *)0xE000E018u)
#define SYST_CSR_ENABLE_TICKINT_CORECLK 7u

/* The link number tether's one connection uses on the module. */
#define LINK 0

static volatile uint32_t ticks_lo;
static volatile uint32_t ticks_hi;
static tether_modem modem;

void SysTick_Handler(void)
{
    if (++ticks_lo == 0)
        ticks_hi++;
}

uint64_t tether_port_now_ms(void)
{
    uint32_t hi, lo;
    do { /* re-read if the tick carried between the two reads */
        hi = ticks_hi;
        lo = ticks_lo;
    } while (hi != ticks_hi);
    return (uint64_t)hi << 32 | lo;
}

static void wait_for_interrupt(void)
{
    __asm__ volatile("wfi" ::: "memory");
}

static void uart_write(void *context, const uint8_t *buf, size_t len)
{
    (void)context;
    tether_board_uart_write(buf, len);
}

static int uart_read_byte(void *context)
{
    (void)context;
    return tether_board_uart_read_byte();
}

static void uart_idle(void *context)
{
    (void)context;
    wait_for_interrupt();
}

static uint64_t uart_now_ms(void *context)
{
    (void)context;
    return tether_port_now_ms();
}

void tether_cortex_m_init(void)
{
    SYST_RVR = tether_board_cpu_hz() / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = SYST_CSR_ENABLE_TICKINT_CORECLK;
    tether_modem_uart uart = {uart_write, uart_read_byte, uart_idle, uart_now_ms, NULL};
    tether_modem_init(&modem, &uart);
}

tether_modem *tether_cortex_m_modem(void)
{
    return &modem;
}

tether_status tether_cortex_m_sync_time(void)
{
    int64_t unix_ms = 0;
    tether_status st = tether_modem_time_ms(&modem, &unix_ms);
    if (st == TETHER_OK)
        tether_clock_set_offset_ms(unix_ms - tether_port_wall_ms());
    return st;
}

/* ---- TCP through the modem ---------------------------------------------------------------- */

tether_status tether_port_tcp_connect(tether_socket *sock, const char *host, uint16_t port,
                                      uint32_t timeout_ms)
{
    if (sock == NULL || host == NULL || port == 0)
        return TETHER_INVALID_ARGUMENT;
    memset(sock, 0, sizeof *sock);
    sock->fd = -1;
    uint64_t start = tether_port_now_ms();
    tether_status st = tether_modem_open(&modem, LINK, host, port, timeout_ms);
    sock->connect_ms = (uint32_t)(tether_port_now_ms() - start);
    if (st != TETHER_OK)
        return st; /* no errno on this port: last_errno stays 0 */
    sock->fd = LINK;
    /* The module resolves the name; the address is the name as given. */
    strncpy(sock->address, host, sizeof sock->address - 1);
    return TETHER_OK;
}

int32_t tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                             uint32_t timeout_ms)
{
    (void)timeout_ms; /* the module takes the bytes or fails: it buffers them itself */
    if (sock == NULL || sock->fd < 0)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    return tether_modem_write(&modem, (uint8_t)sock->fd, buf, len);
}

int32_t tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
    if (sock == NULL || sock->fd < 0)
        return tether_transport_error(TETHER_CONNECTION_CLOSED);
    return tether_modem_read(&modem, (uint8_t)sock->fd, buf, len, timeout_ms);
}

void tether_port_tcp_close(tether_socket *sock)
{
    if (sock != NULL && sock->fd >= 0) {
        tether_modem_close(&modem, (uint8_t)sock->fd);
        sock->fd = -1;
    }
}

/* ---- clocks and sleep ---------------------------------------------------------------------- */

/* No RTC: the wall clock is the uptime (1970 at boot) until tether_cortex_m_sync_time() sets
 * tether's offset from the modem. */
int64_t tether_port_wall_ms(void)
{
    return (int64_t)tether_port_now_ms();
}

/* MBEDTLS_PLATFORM_MS_TIME_ALT: mbedTLS's millisecond clock is SysTick. */
mbedtls_ms_time_t mbedtls_ms_time(void)
{
    return (mbedtls_ms_time_t)tether_port_now_ms();
}

#if defined(MBEDTLS_PLATFORM_GMTIME_R_ALT)
/* Certificate dates: the C library's reentrant gmtime_r (newlib's gmtime() would malloc). */
struct tm *mbedtls_platform_gmtime_r(const mbedtls_time_t *tt, struct tm *tm_buf)
{
    time_t t = (time_t)*tt;
    return gmtime_r(&t, tm_buf);
}
#endif

void tether_port_sleep_ms(uint32_t ms)
{
    uint64_t end = tether_port_now_ms() + ms;
    while (tether_port_now_ms() < end)
        wait_for_interrupt(); /* SysTick wakes the core every millisecond */
}

/* ---- entropy -------------------------------------------------------------------------------- */

#if defined(TETHER_EMULATION_ENTROPY)
/* EMULATION ONLY: the emulated board has no TRNG, so the bytes come from the host behind the
 * modem bridge (modem.h, request X). A production port reads the MCU's TRNG here (STM32 RNG,
 * nRF RNG, ESP32 esp_fill_random, ...): see docs/porting.md. */
tether_status tether_port_entropy(uint8_t *buf, size_t len)
{
    return tether_modem_emulation_entropy(&modem, buf, len);
}
#else
#error "tether_port_entropy: define TETHER_EMULATION_ENTROPY (emulator only) or read a TRNG"
#endif

/* ---- what a modem link does not offer ------------------------------------------------------ */

/* No UDP through this module: the time of day comes from the module instead of SNTP. */
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
    (void)timeout_ms;
    if (out_len != NULL)
        *out_len = 0;
    return TETHER_SOCKET_ERROR;
}

/* No file system: credentials are in flash as memory buffers, the record in the NOR store. */
tether_status tether_port_read_file(const char *path, uint8_t *buf, size_t cap, size_t *out_len)
{
    (void)path;
    (void)buf;
    (void)cap;
    if (out_len != NULL)
        *out_len = 0;
    return TETHER_FILE_NOT_FOUND;
}
