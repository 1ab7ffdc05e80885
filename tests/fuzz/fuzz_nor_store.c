/* The flash store reads whatever a damaged or foreign chip holds: any two sectors must load as
 * a checked record or as none, and a save over them must then load back. */
#include <stdint.h>
#include <string.h>

#include "tether/nor_store.h"
#include "tether/store.h"
#include "fuzz_check.h"

#define SECTOR 1024u
static uint8_t chip[2 * SECTOR];

static tether_status rd(void *c, uint32_t addr, uint8_t *buf, size_t len)
{
    (void)c;
    CHECK(addr + len <= sizeof chip);
    memcpy(buf, chip + addr, len);
    return TETHER_OK;
}

static tether_status prog(void *c, uint32_t addr, const uint8_t *buf, size_t len)
{
    (void)c;
    CHECK(addr + len <= sizeof chip);
    for (size_t i = 0; i < len; i++)
        chip[addr + i] &= buf[i];
    return TETHER_OK;
}

static tether_status erase(void *c, uint32_t addr)
{
    (void)c;
    CHECK(addr % SECTOR == 0 && addr < sizeof chip);
    memset(chip + addr, 0xFF, SECTOR);
    return TETHER_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(chip, 0xFF, sizeof chip);
    memcpy(chip, data, size < sizeof chip ? size : sizeof chip);
    tether_nor_store ns;
    tether_nor nor = {rd, prog, erase, NULL, SECTOR};
    tether_store st = tether_nor_store_init(&ns, &nor, 0);
    uint8_t scratch[TETHER_RECORD_MAX];
    size_t len = 0;
    tether_status s = st.read(st.context, scratch, sizeof scratch, &len);
    CHECK(s == TETHER_OK || s == TETHER_STORE_EMPTY || s == TETHER_FILE_TOO_LARGE);
    CHECK(s != TETHER_OK || len <= SECTOR - TETHER_NOR_SLOT_OVERHEAD);
    static const uint8_t rec[] = "tether-nor-fuzz";
    CHECK(st.write(st.context, rec, sizeof rec) == TETHER_OK);
    CHECK(st.read(st.context, scratch, sizeof scratch, &len) == TETHER_OK);
    CHECK(len == sizeof rec && memcmp(scratch, rec, len) == 0);
    return 0;
}
