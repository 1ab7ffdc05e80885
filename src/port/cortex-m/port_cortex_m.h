/**
 * @file port_cortex_m.h
 * @brief The bare-metal Cortex-M port (no RTOS): SysTick milliseconds, WFI sleep, the wall
 *        clock from the modem's time of day, TCP through the UART modem (modem.h).
 *
 * Call tether_cortex_m_init() once from main(), with interrupts enabled, before any other
 * tether function. The wall clock reads 1970 + uptime until tether_cortex_m_sync_time()
 * (or SNTP through tether_clock_set_offset_ms()) sets it, so the clock gate refuses TLS
 * until then. Entropy: see tether_port_entropy() in port_cortex_m.c (emulation-only source on
 * the emulated board; a TRNG in production).
 */
#ifndef TETHER_PORT_CORTEX_M_H
#define TETHER_PORT_CORTEX_M_H

#include "modem.h"
#include "tether/status.h"

/** Starts SysTick at 1 kHz and the modem link over the board's UART. */
void tether_cortex_m_init(void);

/** The modem link (for the time of day, or diagnostics). */
tether_modem *tether_cortex_m_modem(void);

/** Sets the wall clock from the modem's time of day. @return TETHER_CLOCK_NOT_SET if unknown. */
tether_status tether_cortex_m_sync_time(void);

/** SysTick's interrupt handler (the vector table points here). */
void SysTick_Handler(void);

#endif
