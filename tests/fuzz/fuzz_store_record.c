/* The stored provisioning record is a file a user (or a damaged flash) hands back: decode any
 * bytes; whatever decodes must encode and decode to the same record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/store.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tether_provisioning_record rec, again;
    if (tether_record_decode(data, size, &rec) != TETHER_OK)
        return 0;
    uint8_t buf[TETHER_RECORD_MAX];
    size_t len;
    if (tether_record_encode(&rec, buf, sizeof buf, &len) != TETHER_OK)
        abort(); /* a record we accepted must be writable again */
    if (tether_record_decode(buf, len, &again) != TETHER_OK ||
        memcmp(&rec, &again, sizeof rec) != 0)
        abort();
    return 0;
}
