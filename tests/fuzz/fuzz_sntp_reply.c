/* SNTP replies come from the network: any bytes, with the nonce taken from the input too.
 * A reply accepted must echo the nonce and carry times that convert without overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tether/sntp.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    uint64_t nonce = 0;
    for (int i = 0; i < 8; i++)
        nonce = nonce << 8 | data[i];
    tether_sntp_reply r;
    tether_status st = tether_sntp_parse_reply(data + 8, size - 8, nonce, &r);
    if (st != TETHER_OK)
        return 0;
    const uint8_t *p = data + 8;
    uint64_t echoed = 0;
    for (int i = 0; i < 8; i++)
        echoed = echoed << 8 | p[24 + i];
    if (echoed != nonce || r.stratum == 0 || r.stratum > 15 || r.leap == 3)
        abort();
    /* Times lie between 1968 and 2104: the two NTP eras tether reads. */
    if (r.transmit_ms < -100000000000LL || r.transmit_ms > 4300000000000LL)
        abort();
    return 0;
}
