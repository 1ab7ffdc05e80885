/* The provisioning record in NOR flash, two slots (include/tether/nor_store.h). */
#include "tether/nor_store.h"

#include <string.h>

#define MAGIC      0x31534E54u /* "TNS1" */
#define HEADER_LEN 16u
#define COMMITTED  0x00000000u

typedef struct slot_info {
    int valid;
    uint32_t seq;
    uint32_t len;
} slot_info;

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t slot_addr(const tether_nor_store *ns, int slot)
{
    return ns->base + (uint32_t)slot * ns->nor.sector_size;
}

static uint32_t record_cap(const tether_nor_store *ns)
{
    return ns->nor.sector_size - TETHER_NOR_SLOT_OVERHEAD;
}

/* A slot is valid when its magic, length, CRC and commit word are all right. */
static tether_status inspect(const tether_nor_store *ns, int slot, slot_info *out)
{
    memset(out, 0, sizeof *out);
    uint32_t at = slot_addr(ns, slot);
    uint8_t hdr[HEADER_LEN], commit[4];
    tether_status st = ns->nor.read(ns->nor.context, at, hdr, sizeof hdr);
    if (st == TETHER_OK)
        st = ns->nor.read(ns->nor.context, at + ns->nor.sector_size - 4, commit, sizeof commit);
    if (st != TETHER_OK)
        return st;
    uint32_t len = get_le32(hdr + 8);
    if (get_le32(hdr) != MAGIC || get_le32(commit) != COMMITTED || len > record_cap(ns))
        return TETHER_OK;
    uint32_t crc = tether_crc32(0, hdr + 4, 8);
    uint8_t chunk[64];
    for (uint32_t done = 0; done < len;) {
        uint32_t n = len - done < sizeof chunk ? len - done : (uint32_t)sizeof chunk;
        st = ns->nor.read(ns->nor.context, at + HEADER_LEN + done, chunk, n);
        if (st != TETHER_OK)
            return st;
        crc = tether_crc32(crc, chunk, n);
        done += n;
    }
    out->valid = crc == get_le32(hdr + 12);
    out->seq = get_le32(hdr + 4);
    out->len = len;
    return TETHER_OK;
}

/* The slot holding the current record (-1: none), after inspecting both. */
static tether_status current(const tether_nor_store *ns, slot_info info[2], int *out)
{
    /* Every operation starts here: a sector that cannot hold a slot's header and commit
     * word would make record_cap() wrap to about 4 GB. */
    if (ns->nor.sector_size < TETHER_NOR_SLOT_OVERHEAD || ns->nor.sector_size % 4 != 0)
        return TETHER_INVALID_ARGUMENT;
    for (int i = 0; i < 2; i++) {
        tether_status st = inspect(ns, i, &info[i]);
        if (st != TETHER_OK)
            return st;
    }
    if (info[0].valid && info[1].valid) /* newer by serial-number arithmetic */
        *out = (int32_t)(info[1].seq - info[0].seq) > 0 ? 1 : 0;
    else
        *out = info[0].valid ? 0 : info[1].valid ? 1 : -1;
    return TETHER_OK;
}

static tether_status nor_read(void *context, uint8_t *buf, size_t cap, size_t *out_len)
{
    const tether_nor_store *ns = context;
    slot_info info[2];
    int cur;
    tether_status st = current(ns, info, &cur);
    if (st != TETHER_OK)
        return st;
    if (cur < 0)
        return TETHER_STORE_EMPTY;
    if (info[cur].len > cap)
        return TETHER_FILE_TOO_LARGE;
    st = ns->nor.read(ns->nor.context, slot_addr(ns, cur) + HEADER_LEN, buf, info[cur].len);
    if (st == TETHER_OK)
        *out_len = info[cur].len;
    return st;
}

static tether_status nor_write(void *context, const uint8_t *buf, size_t len)
{
    const tether_nor_store *ns = context;
    if (len > record_cap(ns))
        return TETHER_BUFFER_TOO_SMALL;
    slot_info info[2];
    int cur;
    tether_status st = current(ns, info, &cur);
    if (st != TETHER_OK)
        return st;
    int target = cur < 0 ? 0 : 1 - cur;
    uint32_t seq = cur < 0 ? 1u : info[cur].seq + 1u;
    uint32_t at = slot_addr(ns, target);

    uint8_t hdr[HEADER_LEN], commit[4];
    put_le32(hdr, MAGIC);
    put_le32(hdr + 4, seq);
    put_le32(hdr + 8, (uint32_t)len);
    put_le32(hdr + 12, tether_crc32(tether_crc32(0, hdr + 4, 8), buf, len));
    put_le32(commit, COMMITTED);

    /* The four steps; the current slot is never written. */
    st = ns->nor.erase_sector(ns->nor.context, at);
    if (st == TETHER_OK && len > 0)
        st = ns->nor.program(ns->nor.context, at + HEADER_LEN, buf, len);
    if (st == TETHER_OK)
        st = ns->nor.program(ns->nor.context, at, hdr, sizeof hdr);
    if (st == TETHER_OK)
        st = ns->nor.program(ns->nor.context, at + ns->nor.sector_size - 4, commit, 4);
    if (st != TETHER_OK)
        return TETHER_STORE_WRITE_FAILED;

    /* Read back: a program that did not take (a worn cell) must not pass for a save. */
    slot_info check;
    st = inspect(ns, target, &check);
    if (st != TETHER_OK || !check.valid || check.seq != seq || check.len != len)
        return TETHER_STORE_WRITE_FAILED;
    return TETHER_OK;
}

static tether_status nor_erase(void *context)
{
    const tether_nor_store *ns = context;
    slot_info info[2];
    int cur;
    tether_status st = current(ns, info, &cur);
    if (st != TETHER_OK)
        return st;
    /* The older slot first: a cut in between leaves the current record, not an older one. */
    int first = cur < 0 ? 0 : 1 - cur;
    st = ns->nor.erase_sector(ns->nor.context, slot_addr(ns, first));
    if (st == TETHER_OK)
        st = ns->nor.erase_sector(ns->nor.context, slot_addr(ns, 1 - first));
    return st == TETHER_OK ? TETHER_OK : TETHER_STORE_WRITE_FAILED;
}

tether_store tether_nor_store_init(tether_nor_store *ns, const tether_nor *nor, uint32_t base)
{
    ns->nor = *nor;
    ns->base = base;
    tether_store s = {.read = nor_read, .write = nor_write, .erase = nor_erase, .context = ns};
    return s;
}
