/* mps2-an386 under QEMU: vector table and reset, the CMSDK UART the modem is on, semihosting. */
#include "board.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../src/port/cortex-m/board.h"
#include "../../src/port/cortex-m/port_cortex_m.h"

/* ---- reset and vectors ---------------------------------------------------------------------- */

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[], __stack_limit[], __heap_start[], __heap_end[], __ram_len[];

#define STACK_PAINT 0xA5A5A5A5u

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void UART0_RX_Handler(void);

void Reset_Handler(void)
{
    for (uint32_t *s = __data_load, *d = __data_start; d < __data_end;)
        *d++ = *s++;
    for (uint32_t *d = __bss_start; d < __bss_end;)
        *d++ = 0;
    /* Paint the stack below this frame, so that its deepest use can be read later. */
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_limit; p < sp - 16;)
        *p++ = STACK_PAINT;
    __asm__ volatile("cpsie i" ::: "memory");
    board_exit(main());
}

void Default_Handler(void)
{
    board_puts("FAULT: unexpected exception\n");
    board_exit(99);
}

/* Cortex-M4: 16 system vectors, then the board's interrupts (UART0 RX is IRQ 0 on mps2). */
__attribute__((section(".vectors"), used)) static void (*const vectors[16 + 32])(void) = {
    [0] = (void (*)(void))(uintptr_t)__stack_top,
    [1] = Reset_Handler,
    [2 ... 14] = Default_Handler,
    [15] = SysTick_Handler,
    [16] = UART0_RX_Handler,
    [17 ... 47] = Default_Handler,
};

/* ---- CMSDK APB UART 0: the modem ------------------------------------------------------------ */

#define UART0         0x40004000u
#define UART_DATA     (*(volatile uint32_t *)(UART0 + 0x00u))
#define UART_STATE    (*(volatile uint32_t *)(UART0 + 0x04u))
#define UART_CTRL     (*(volatile uint32_t *)(UART0 + 0x08u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0 + 0x0Cu))
#define UART_BAUDDIV  (*(volatile uint32_t *)(UART0 + 0x10u))
#define STATE_TXFULL  1u
#define STATE_RXFULL  2u
#define CTRL_TXEN     1u
#define CTRL_RXEN     2u
#define CTRL_RXINTEN  8u
#define INT_RX        2u
#define NVIC_ISER0    (*(volatile uint32_t *)0xE000E100u)
#define CPU_HZ        25000000u /* mps2 FPGA image clock (QEMU: 25 MHz) */

/* Bytes the RX interrupt took from the UART, for the modem layer to read. */
static uint8_t rx_ring[256];
static volatile uint32_t rx_head, rx_tail; /* head: written by the interrupt */
static int uart_ready;

static void uart_init(void)
{
    UART_BAUDDIV = 16; /* the smallest the CMSDK UART accepts */
    UART_CTRL = CTRL_TXEN | CTRL_RXEN | CTRL_RXINTEN;
    NVIC_ISER0 = 1u << 0;
    uart_ready = 1;
}

void UART0_RX_Handler(void)
{
    while (UART_STATE & STATE_RXFULL) {
        if (rx_head - rx_tail == sizeof rx_ring) {
            /* Full: leave the byte in the UART (QEMU then stops reading the socket) and stop
             * the interrupt until the reader makes room. */
            UART_CTRL &= ~CTRL_RXINTEN;
            return;
        }
        rx_ring[rx_head % sizeof rx_ring] = (uint8_t)UART_DATA;
        rx_head++;
    }
    UART_INTCLEAR = INT_RX;
}

void tether_board_uart_write(const uint8_t *buf, size_t len)
{
    if (!uart_ready)
        uart_init();
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & STATE_TXFULL) {
        }
        UART_DATA = buf[i];
    }
}

int tether_board_uart_read_byte(void)
{
    if (!uart_ready)
        uart_init();
    int c = -1;
    __asm__ volatile("cpsid i" ::: "memory");
    if (rx_tail != rx_head) {
        c = rx_ring[rx_tail % sizeof rx_ring];
        rx_tail++;
    } else if (UART_STATE & STATE_RXFULL) {
        c = (int)(UART_DATA & 0xFFu);
    }
    if (!(UART_CTRL & CTRL_RXINTEN))
        UART_CTRL |= CTRL_RXINTEN; /* room again */
    __asm__ volatile("cpsie i" ::: "memory");
    return c;
}

uint32_t tether_board_cpu_hz(void)
{
    return CPU_HZ;
}

/* ---- semihosting (Arm "Semihosting for AArch32 and AArch64", v2) ---------------------------- */

#define SYS_WRITE0                   0x04
#define SYS_GET_CMDLINE              0x15
#define SYS_EXIT_EXTENDED            0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

int board_semihost(int op, void *arg);
int board_semihost(int op, void *arg)
{
    register int r0 __asm__("r0") = op;
    register void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void board_puts(const char *s)
{
    board_semihost(SYS_WRITE0, (void *)(uintptr_t)s);
}

void board_printf(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    board_puts(line);
}

const char *board_cmdline(void)
{
    static char cmdline[256];
    static int done;
    if (!done) {
        struct {
            char *buf;
            int len;
        } block = {cmdline, (int)sizeof cmdline - 1};
        if (board_semihost(SYS_GET_CMDLINE, &block) != 0)
            cmdline[0] = 0;
        done = 1;
    }
    return cmdline;
}

const char *board_arg(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = board_cmdline(); *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = len - n - 1 < cap - 1 ? len - n - 1 : cap - 1;
            memcpy(out, p + n + 1, v);
            out[v] = 0;
            return out;
        }
        p += len;
    }
    return NULL;
}

void board_exit(int code)
{
    uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    for (;;)
        board_semihost(SYS_EXIT_EXTENDED, block);
}

/* ---- memory ------------------------------------------------------------------------------- */

void board_memory_get(board_memory *out)
{
    out->ram_region = (uint32_t)(uintptr_t)__ram_len;
    out->data = (uint32_t)((uintptr_t)__data_end - (uintptr_t)__data_start);
    out->bss = (uint32_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start);
    out->heap_len = (uint32_t)((uintptr_t)__heap_end - (uintptr_t)__heap_start);
    out->stack_len = (uint32_t)((uintptr_t)__stack_top - (uintptr_t)__stack_limit);
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == STACK_PAINT)
        p++;
    out->stack_peak = (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

void *board_heap(size_t *len)
{
    *len = (size_t)((uintptr_t)__heap_end - (uintptr_t)__heap_start);
    return __heap_start;
}

/* libc's malloc must not take RAM behind the arena's back: its sbrk always fails, and counts. */
static uint32_t sbrk_calls;

void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    (void)incr;
    sbrk_calls++;
    return (void *)-1;
}

/* abort() and a failed assert() end here: stop the emulator instead of spinning. */
void _exit(int code);
void _exit(int code)
{
    board_puts("FAULT: the C library stopped the program (abort or assert)\n");
    board_exit(128 + code);
}

uint32_t board_libc_malloc_attempts(void)
{
    return sbrk_calls;
}
