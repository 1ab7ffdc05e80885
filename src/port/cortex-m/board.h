/* What the bare-metal Cortex-M port needs from its board (boards/<name>/): a byte UART to the
 * modem and the core clock. Everything else (SysTick, WFI) is architectural and in the port. */
#ifndef TETHER_PORT_CORTEX_M_BOARD_H
#define TETHER_PORT_CORTEX_M_BOARD_H

#include <stddef.h>
#include <stdint.h>

/** Sends @p len bytes to the modem UART, waiting while its transmitter is full. */
void tether_board_uart_write(const uint8_t *buf, size_t len);

/** One byte received from the modem UART, or -1 when none is waiting. */
int tether_board_uart_read_byte(void);

/** The core clock in Hz (SysTick counts it). */
uint32_t tether_board_cpu_hz(void);

#endif
