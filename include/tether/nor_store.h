/**
 * @file nor_store.h
 * @brief The provisioning record in NOR flash: two slots, a sequence number, and a power cut
 *        at any write step leaves the old record or the new one, never neither.
 *
 * NOR rules, as the driver (::tether_nor) must give them: an erase sets a whole sector to 0xFF;
 * a program can only turn bits from 1 to 0. Each slot is one sector:
 *
 *     offset 0   magic "TNS1"      (4 bytes, little-endian 0x31534E54)
 *     offset 4   sequence          (4, little-endian; the newer slot has the larger, mod 2^32)
 *     offset 8   length            (4, of the record)
 *     offset 12  CRC-32            (4, tether_crc32 of sequence, length and record)
 *     offset 16  the record        (length bytes: tether_record_encode's text)
 *     last 4     commit word       (0x00000000 once the slot is complete; 0xFFFFFFFF erased)
 *
 * A save writes the slot that does not hold the current record, in four steps: erase the
 * sector, program the record, program the header, program the commit word, then reads the
 * slot back. The current slot is never touched, so a cut before the commit word is complete
 * leaves the old record (the new slot fails its commit or CRC check) and a cut after it leaves
 * the new one. A load takes the valid slot with the newer sequence. Forgetting the record
 * erases the older slot first, then the current one.
 *
 * @code
 * static tether_nor_store ns;
 * tether_nor nor = {my_read, my_program, my_erase, NULL, 4096};
 * tether_store store = tether_nor_store_init(&ns, &nor, FLASH_RECORD_BASE);
 * @endcode
 */
#ifndef TETHER_NOR_STORE_H
#define TETHER_NOR_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"
#include "tether/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes of a slot that are not the record: header and commit word. */
#define TETHER_NOR_SLOT_OVERHEAD 20u

/** A NOR flash driver. Addresses are byte offsets in the device. Each returns a status. */
typedef struct tether_nor {
    /** Reads @p len bytes at @p addr. */
    tether_status (*read)(void *context, uint32_t addr, uint8_t *buf, size_t len);
    /** Programs @p len bytes at @p addr: each stored bit becomes old AND new (1 -> 0 only). */
    tether_status (*program)(void *context, uint32_t addr, const uint8_t *buf, size_t len);
    /** Erases the sector starting at @p addr to 0xFF. */
    tether_status (*erase_sector)(void *context, uint32_t addr);
    void *context;
    uint32_t sector_size; /**< Bytes per sector, a multiple of 4 and at least
                               ::TETHER_NOR_SLOT_OVERHEAD (else every operation fails with
                               ::TETHER_INVALID_ARGUMENT); one slot is one sector. */
} tether_nor;

/** The store's state. Treat the fields as private. */
typedef struct tether_nor_store {
    tether_nor nor;
    uint32_t base; /**< Address of slot 0; slot 1 follows it. */
} tether_nor_store;

/**
 * A store over two sectors of @p nor starting at @p base (sector-aligned). Writes fail with
 * ::TETHER_BUFFER_TOO_SMALL for a record longer than a sector can hold (sector size minus
 * ::TETHER_NOR_SLOT_OVERHEAD); reads with ::TETHER_FILE_TOO_LARGE when the caller's buffer is
 * shorter than the record.
 */
tether_store tether_nor_store_init(tether_nor_store *ns, const tether_nor *nor, uint32_t base);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_NOR_STORE_H */
