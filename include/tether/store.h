/**
 * @file store.h
 * @brief The remembered provisioning result: where DPS sent this device, and with which
 *        credentials, so that later boots go straight to the hub.
 *
 * A record is a few lines of `key=value` text closed by a CRC-32 line, small enough for one
 * NVS entry or flash page and readable with `cat`. Saving is an atomic replace; loading checks
 * the format and the checksum (::TETHER_STORE_CORRUPT) and that the record belongs to the
 * identity and credentials in use (::TETHER_STORE_FOREIGN). Either is reported and treated as
 * "no record": the device registers again.
 *
 * Storage is a small interface (::tether_store): a port reimplements three functions for NVS or
 * flash; tether_file_store() is the POSIX file implementation.
 *
 * @code
 * tether_file_store fs;
 * tether_store store = tether_file_store_init(&fs, "/var/lib/tether/pump-17.state");
 * uint8_t scratch[TETHER_RECORD_MAX];
 * tether_provisioning_record rec;
 * tether_status st = tether_store_load(&store, scratch, sizeof scratch, &expected, &rec);
 * if (st != TETHER_OK) register_with_dps();   // STORE_EMPTY, STORE_CORRUPT or STORE_FOREIGN
 * @endcode
 */
#ifndef TETHER_STORE_H
#define TETHER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest encoded record. */
#define TETHER_RECORD_MAX 1024

/** What a device remembers after DPS assigned it. Strings are NUL-terminated. */
typedef struct tether_provisioning_record {
    char id_scope[32];
    char registration_id[129];
    char assigned_hub[256];
    char device_id[129];
    char connect_to[128];          /**< Address override "host:port", empty when none. */
    uint8_t credential_sha256[32]; /**< Fingerprint of the certificate or key used. */
    int64_t assigned_at;           /**< Unix seconds. */
} tether_provisioning_record;

/** Storage of one record. Each function returns a ::tether_status. */
typedef struct tether_store {
    /** Reads the stored bytes; ::TETHER_STORE_EMPTY when there are none. */
    tether_status (*read)(void *context, uint8_t *buf, size_t cap, size_t *out_len);
    /**
     * Replaces the stored bytes atomically: after a crash, the old or the new record, also with
     * two writers at once (the last to finish wins).
     * @return TETHER_OK; ::TETHER_STORE_WRITE_FAILED when nothing was replaced (the previous
     *         record, if any, is intact); ::TETHER_STORE_NOT_DURABLE when the new record is in
     *         place but may not survive a power cut (the previous one may come back).
     */
    tether_status (*write)(void *context, const uint8_t *buf, size_t len);
    /** Removes the record (forced reprovisioning). */
    tether_status (*erase)(void *context);
    void *context;
} tether_store;

/** Writes @p rec as text (sizing contract of mqtt_codec.h). */
TETHER_MUST_USE tether_status tether_record_encode(const tether_provisioning_record *rec,
                                                   uint8_t *buf, size_t cap, size_t *out_len);

/** Parses a record; ::TETHER_STORE_CORRUPT on any format or checksum fault. */
TETHER_MUST_USE tether_status tether_record_decode(const uint8_t *buf, size_t len,
                                                   tether_provisioning_record *out);

/**
 * Loads the record and checks that it belongs to @p expected (id scope, registration id and
 * credential fingerprint; pass NULL to skip the check).
 * @return TETHER_OK, TETHER_STORE_EMPTY, TETHER_STORE_CORRUPT, TETHER_STORE_FOREIGN, or the
 *         storage's read error.
 */
TETHER_MUST_USE tether_status tether_store_load(const tether_store *store, uint8_t *scratch,
                                                size_t scratch_len,
                                                const tether_provisioning_record *expected,
                                                tether_provisioning_record *out);

/** Encodes and saves @p rec. */
TETHER_MUST_USE tether_status tether_store_save(const tether_store *store, uint8_t *scratch,
                                                size_t scratch_len,
                                                const tether_provisioning_record *rec);

/**
 * CRC-32 (IEEE 802.3, as zlib's crc32()) of @p n bytes, continuing from @p crc (0 to start):
 * the record's checksum line and the flash store's slot check.
 */
uint32_t tether_crc32(uint32_t crc, const void *data, size_t n);

/** The POSIX file store: the path is kept by pointer and must outlive the store. */
typedef struct tether_file_store {
    const char *path;
} tether_file_store;

/**
 * A store over the file @p path. A save writes a temporary file of its own in the same
 * directory (`path.tmp-<pid>-<hex>`, created with O_CREAT | O_EXCL | O_NOFOLLOW, mode 0600),
 * fsyncs it, renames it over @p path and fsyncs the directory. Two processes saving at once
 * never share a temporary file; a link planted at a temporary name is refused, never followed.
 * A failure before the rename removes the temporary file and leaves @p path untouched
 * (::TETHER_STORE_WRITE_FAILED); a failed directory fsync after the rename returns
 * ::TETHER_STORE_NOT_DURABLE. A process killed mid-save may leave its temporary file behind
 * (never read; safe to delete).
 */
tether_store tether_file_store_init(tether_file_store *fs, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_STORE_H */
