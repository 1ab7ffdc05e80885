/*
 * The emulated NOR flash: a memory-mapped region (FLASH_NOR in the linker script) with NOR
 * rules kept by this driver (erase sets a 4 KB sector to 0xFF, program only clears bits),
 * persisted in a host file through semihosting so that it survives a restart of the emulator
 * (the file is the flash chip). A power cut can be armed at write step k: the step is then
 * half done, persisted, and the emulator stops at once, as a board loses power.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"

#define SECTOR    4096u
#define SYS_OPEN  0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_READ  0x06
#define SYS_SEEK  0x0A
#define OPEN_RPB  3u /* "r+b" */
#define OPEN_WPB  7u /* "w+b" */

int board_semihost(int op, void *arg);
extern uint8_t __nor_start[], __nor_len[];

static int handle = -1;
static uint32_t steps, cut_at;

static uint32_t nor_len(void)
{
    return (uint32_t)(uintptr_t)__nor_len;
}

static int sh_open(const char *path, uint32_t mode)
{
    uint32_t block[3] = {(uint32_t)(uintptr_t)path, mode, (uint32_t)strlen(path)};
    return board_semihost(SYS_OPEN, block);
}

/* Writes the region's bytes [at, at+len) to the same place in the file. */
static void persist(uint32_t at, uint32_t len)
{
    uint32_t seek[2] = {(uint32_t)handle, at};
    uint32_t wr[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)(__nor_start + at), len};
    if (handle < 0 || board_semihost(SYS_SEEK, seek) != 0 || board_semihost(SYS_WRITE, wr) != 0) {
        board_puts("FAULT: the flash file could not be written\n");
        board_exit(98);
    }
}

void board_flash_init(const char *path, uint32_t cut)
{
    cut_at = cut;
    steps = 0;
    handle = sh_open(path, OPEN_RPB);
    uint32_t rd[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)__nor_start, nor_len()};
    if (handle < 0 || board_semihost(SYS_READ, rd) != 0) {
        /* No flash yet (or a short file): a new chip, erased. */
        if (handle >= 0)
            board_semihost(SYS_CLOSE, &handle);
        handle = sh_open(path, OPEN_WPB);
        memset(__nor_start, 0xFF, nor_len());
        persist(0, nor_len());
    }
}

/* One write step: on the armed step, half of it happens, is persisted, and power goes. */
static uint32_t begin_step(uint32_t len)
{
    steps++;
    return cut_at != 0 && steps == cut_at ? len / 2 : len;
}

static void end_step(uint32_t at, uint32_t done, uint32_t len)
{
    persist(at, len);
    if (done != len) {
        board_printf("POWER CUT at flash write step %lu\n", (unsigned long)steps);
        board_exit(BOARD_EXIT_POWER_CUT);
    }
}

static tether_status nor_read(void *context, uint32_t addr, uint8_t *buf, size_t len)
{
    (void)context;
    if (addr > nor_len() || len > nor_len() - addr)
        return TETHER_INVALID_ARGUMENT;
    memcpy(buf, __nor_start + addr, len);
    return TETHER_OK;
}

static tether_status nor_program(void *context, uint32_t addr, const uint8_t *buf, size_t len)
{
    (void)context;
    if (addr > nor_len() || len > nor_len() - addr)
        return TETHER_INVALID_ARGUMENT;
    uint32_t done = begin_step((uint32_t)len);
    for (uint32_t i = 0; i < done; i++)
        __nor_start[addr + i] &= buf[i]; /* NOR: a program only clears bits */
    end_step(addr, done, (uint32_t)len);
    return TETHER_OK;
}

static tether_status nor_erase(void *context, uint32_t addr)
{
    (void)context;
    if (addr % SECTOR != 0 || addr >= nor_len())
        return TETHER_INVALID_ARGUMENT;
    uint32_t done = begin_step(SECTOR);
    memset(__nor_start + addr, 0xFF, done);
    end_step(addr, done, SECTOR);
    return TETHER_OK;
}

tether_nor board_flash_driver(void)
{
    tether_nor nor = {nor_read, nor_program, nor_erase, NULL, SECTOR};
    return nor;
}

uint32_t board_flash_steps(void)
{
    return steps;
}
