/* The emulated mps2-an386 board: what the application uses besides tether's port. */
#ifndef TETHER_BOARD_MPS2_AN386_H
#define TETHER_BOARD_MPS2_AN386_H

#include <stddef.h>
#include <stdint.h>

#include "tether/nor_store.h"

/* ---- semihosting (QEMU -semihosting-config enable=on,target=native): the debug console, the
 *      command line, the exit code, and the file behind the emulated flash. Emulation only. */

/** Writes a NUL-terminated string on the host's console. */
void board_puts(const char *s);
/** printf-style line on the console (at most 511 characters; nano formats only). */
void board_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** The command line QEMU passes (-semihosting-config arg=...), "" if none. */
const char *board_cmdline(void);
/** Value of "name=value" in the command line into @p out, or NULL when absent. */
const char *board_arg(const char *name, char *out, size_t cap);
/** Stops the emulator with @p code as its exit status. */
void board_exit(int code) __attribute__((noreturn));

/* ---- memory figures from the linker script and the painted stack ---- */

typedef struct board_memory {
    uint32_t ram_region; /**< Bytes the linker gives the application (RAM_LEN). */
    uint32_t data;       /**< .data */
    uint32_t bss;        /**< .bss */
    uint32_t heap_len;   /**< The arena between .bss and the stack. */
    uint32_t stack_len;
    uint32_t stack_peak; /**< Deepest stack use so far (painted with 0xA5 at reset). */
} board_memory;

void board_memory_get(board_memory *out);
/** Start and length of the heap arena. */
void *board_heap(size_t *len);
/** Bytes of libc malloc asked for (must stay 0: mbedTLS allocates from tether's arena). */
uint32_t board_libc_malloc_attempts(void);

/* ---- the emulated NOR flash (boards/mps2-an386/flash_emul.c) ---- */

/** Power cut: flash_emul exits the emulator with this code in the middle of a write step. */
#define BOARD_EXIT_POWER_CUT 3

/**
 * Maps the NOR region, loads it from the host file @p path (created erased if absent) and
 * arms a power cut at write step @p cut_at (1-based; 0 = never).
 */
void board_flash_init(const char *path, uint32_t cut_at);
/** The NOR driver over the region (sector 4 KB). */
tether_nor board_flash_driver(void);
/** Erase and program steps so far. */
uint32_t board_flash_steps(void);

#endif
