/* The provisioning record as checked text: key=value lines, then a CRC-32 of all before it. */
#include "tether/store.h"

#include "format.h"

#include <stdio.h>
#include <string.h>

#define HEADER "tether-provisioning 1\n"

uint32_t tether_crc32(uint32_t crc, const void *data, size_t n)
{
    /* Bitwise CRC-32 (IEEE): a record is read once per boot, a table is not worth its flash. */
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

char *tether_format_i64(int64_t v, char out[TETHER_I64_DIGITS])
{
    char tmp[TETHER_I64_DIGITS];
    uint64_t u = v < 0 ? 0u - (uint64_t)v : (uint64_t)v;
    int n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0);
    int k = 0;
    if (v < 0)
        out[k++] = '-';
    while (n > 0)
        out[k++] = tmp[--n];
    out[k] = 0;
    return out;
}

/* Values may hold anything printable but the line structure. */
static int value_ok(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return 0;
    return 1;
}

tether_status tether_record_encode(const tether_provisioning_record *rec, uint8_t *buf, size_t cap,
                                   size_t *out_len)
{
    if (rec == NULL || out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    *out_len = 0;
    if (!value_ok(rec->id_scope) || !value_ok(rec->registration_id) ||
        !value_ok(rec->assigned_hub) || !value_ok(rec->device_id) || !value_ok(rec->connect_to) ||
        rec->registration_id[0] == 0 || rec->assigned_hub[0] == 0 || rec->device_id[0] == 0)
        return TETHER_INVALID_ARGUMENT;
    char text[TETHER_RECORD_MAX];
    char hex[65], when[TETHER_I64_DIGITS];
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", rec->credential_sha256[i]);
    int n = snprintf(text, sizeof text,
                     HEADER "id_scope=%s\nregistration_id=%s\nassigned_hub=%s\ndevice_id=%s\n"
                            "connect_to=%s\ncredential=sha256:%s\nassigned_at=%s\n",
                     rec->id_scope, rec->registration_id, rec->assigned_hub, rec->device_id,
                     rec->connect_to, hex, tether_format_i64(rec->assigned_at, when));
    if (n < 0 || (size_t)n + 16 > sizeof text)
        return TETHER_INVALID_ARGUMENT;
    size_t body = (size_t)n;
    int m = snprintf(text + body, sizeof text - body, "crc32=%08x\n",
                     (unsigned)tether_crc32(0, text, body));
    size_t total = body + (size_t)m;
    *out_len = total;
    if (buf == NULL || cap < total)
        return TETHER_BUFFER_TOO_SMALL;
    memcpy(buf, text, total);
    return TETHER_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Copies a value into a field, refusing what does not fit. */
static int take(char *dst, size_t cap, const char *v, size_t len)
{
    if (len >= cap)
        return 0;
    memcpy(dst, v, len);
    dst[len] = 0;
    return 1;
}

static int parse_line(tether_provisioning_record *out, const char *key, size_t key_len,
                      const char *v, size_t len, unsigned *seen)
{
    static const char *const keys[] = {"id_scope",   "registration_id", "assigned_hub", "device_id",
                                       "connect_to", "credential",      "assigned_at"};
    unsigned idx = 0;
    while (idx < 7 && !(strlen(keys[idx]) == key_len && memcmp(keys[idx], key, key_len) == 0))
        idx++;
    if (idx == 7)
        return 1; /* Unknown keys are for newer versions: ignored. */
    if (*seen & (1u << idx))
        return 0;
    *seen |= 1u << idx;
    switch (idx) {
    case 0:
        return take(out->id_scope, sizeof out->id_scope, v, len);
    case 1:
        return take(out->registration_id, sizeof out->registration_id, v, len) && len > 0;
    case 2:
        return take(out->assigned_hub, sizeof out->assigned_hub, v, len) && len > 0;
    case 3:
        return take(out->device_id, sizeof out->device_id, v, len) && len > 0;
    case 4:
        return take(out->connect_to, sizeof out->connect_to, v, len);
    case 5:
        if (len != 7 + 64 || memcmp(v, "sha256:", 7) != 0)
            return 0;
        for (size_t i = 0; i < 32; i++) {
            int hi = hexval(v[7 + 2 * i]), lo = hexval(v[8 + 2 * i]);
            if (hi < 0 || lo < 0)
                return 0;
            out->credential_sha256[i] = (uint8_t)(hi << 4 | lo);
        }
        return 1;
    default: {
        if (len == 0 || len > 19)
            return 0;
        long long t = 0;
        for (size_t i = 0; i < len; i++) {
            if (v[i] < '0' || v[i] > '9')
                return 0;
            t = t * 10 + (v[i] - '0');
        }
        out->assigned_at = (int64_t)t;
        return 1;
    }
    }
}

tether_status tether_record_decode(const uint8_t *buf, size_t len, tether_provisioning_record *out)
{
    if (buf == NULL || out == NULL)
        return TETHER_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    const char *text = (const char *)buf;
    size_t hlen = sizeof HEADER - 1;
    if (len < hlen || memcmp(text, HEADER, hlen) != 0)
        return TETHER_STORE_CORRUPT;
    /* The last line is the checksum of everything before it. */
    static const char crc_key[] = "crc32=";
    if (len < hlen + sizeof crc_key - 1 + 9 || text[len - 1] != '\n')
        return TETHER_STORE_CORRUPT;
    size_t crc_at = len - (sizeof crc_key - 1 + 9);
    if (memcmp(text + crc_at, crc_key, sizeof crc_key - 1) != 0 ||
        (crc_at > 0 && text[crc_at - 1] != '\n'))
        return TETHER_STORE_CORRUPT;
    uint32_t want = 0;
    for (size_t i = 0; i < 8; i++) {
        int h = hexval(text[crc_at + 6 + i]);
        if (h < 0)
            return TETHER_STORE_CORRUPT;
        want = want << 4 | (uint32_t)h;
    }
    if (tether_crc32(0, buf, crc_at) != want)
        return TETHER_STORE_CORRUPT;

    unsigned seen = 0;
    for (size_t pos = hlen; pos < crc_at;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', crc_at - pos);
        const char *eq = memchr(line, '=', (size_t)(nl - line));
        if (nl == NULL || eq == NULL)
            return TETHER_STORE_CORRUPT;
        for (const char *c = line; c < nl; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f)
                return TETHER_STORE_CORRUPT;
        if (!parse_line(out, line, (size_t)(eq - line), eq + 1, (size_t)(nl - eq - 1), &seen))
            return TETHER_STORE_CORRUPT;
        pos = (size_t)(nl - text) + 1;
    }
    /* Where the device goes and who it is must be there. */
    const unsigned required = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5);
    if ((seen & required) != required)
        return TETHER_STORE_CORRUPT;
    return TETHER_OK;
}

tether_status tether_store_load(const tether_store *store, uint8_t *scratch, size_t scratch_len,
                                const tether_provisioning_record *expected,
                                tether_provisioning_record *out)
{
    if (store == NULL || scratch == NULL || out == NULL)
        return TETHER_INVALID_ARGUMENT;
    size_t len = 0;
    tether_status st = store->read(store->context, scratch, scratch_len, &len);
    if (st == TETHER_FILE_TOO_LARGE)
        return TETHER_STORE_CORRUPT; /* No valid record is that large. */
    if (st != TETHER_OK)
        return st;
    st = tether_record_decode(scratch, len, out);
    if (st != TETHER_OK)
        return st;
    if (expected != NULL && (strcmp(expected->id_scope, out->id_scope) != 0 ||
                             strcmp(expected->registration_id, out->registration_id) != 0 ||
                             memcmp(expected->credential_sha256, out->credential_sha256, 32) != 0))
        return TETHER_STORE_FOREIGN;
    return TETHER_OK;
}

tether_status tether_store_save(const tether_store *store, uint8_t *scratch, size_t scratch_len,
                                const tether_provisioning_record *rec)
{
    if (store == NULL)
        return TETHER_INVALID_ARGUMENT;
    size_t len;
    tether_status st = tether_record_encode(rec, scratch, scratch_len, &len);
    if (st != TETHER_OK)
        return st;
    return store->write(store->context, scratch, len);
}
