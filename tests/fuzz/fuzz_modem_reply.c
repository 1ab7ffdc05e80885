/* The modem's replies are bytes from another chip on a serial line: any stream must give each
 * request a status or a byte count within what was asked, and never write past a buffer. */
#include <stdint.h>
#include <string.h>

#include "../../src/port/cortex-m/modem.h"
#include "fuzz_check.h"

static const uint8_t *in;
static size_t in_len, in_pos;
static uint64_t clock_ms;

static void w(void *c, const uint8_t *buf, size_t len)
{
    (void)c;
    (void)buf;
    (void)len;
}

static int r(void *c)
{
    (void)c;
    return in_pos < in_len ? in[in_pos++] : -1;
}

static void idle(void *c)
{
    (void)c;
    clock_ms += 500; /* a missing reply times out in a few steps */
}

static uint64_t now(void *c)
{
    (void)c;
    return clock_ms;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in = data;
    in_len = size;
    in_pos = 0;
    clock_ms = 0;
    tether_modem m;
    tether_modem_uart u = {w, r, idle, now, NULL};
    tether_modem_init(&m, &u);
    /* The first reply seqs are 1, 2, ...: let the input hit them as often as it can. */
    uint8_t buf[64 + 1];
    buf[64] = 0x5A; /* guard */
    for (int round = 0; round < 4 && in_pos < in_len; round++) {
        (void)tether_modem_open(&m, 0, "localhost", 8883, 100);
        int32_t n = tether_modem_read(&m, 0, buf, 64, 10);
        CHECK(n <= 64);
        n = tether_modem_write(&m, 0, buf, 64);
        CHECK(n <= 64);
        int64_t t;
        (void)tether_modem_time_ms(&m, &t);
        (void)tether_modem_emulation_entropy(&m, buf, 64);
        CHECK(buf[64] == 0x5A);
    }
    return 0;
}
