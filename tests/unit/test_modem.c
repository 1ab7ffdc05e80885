/* The UART modem link (src/port/cortex-m/modem.c) against a scripted module: the request
 * frames, every reply kind, and replies that are stale, oversized, truncated or missing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "../src/port/cortex-m/modem.h"
#include "tether/transport.h"

/* The scripted module: what the MCU wrote, what it will read, and a clock that idling moves. */
static struct {
    uint8_t sent[4096];
    size_t sent_len;
    uint8_t script[4096];
    size_t script_len, script_pos;
    uint64_t now;
} mod;

static void w(void *c, const uint8_t *buf, size_t len)
{
    (void)c;
    assert_true(mod.sent_len + len <= sizeof mod.sent);
    memcpy(mod.sent + mod.sent_len, buf, len);
    mod.sent_len += len;
}

static int r(void *c)
{
    (void)c;
    return mod.script_pos < mod.script_len ? mod.script[mod.script_pos++] : -1;
}

static void idle(void *c)
{
    (void)c;
    mod.now += 1;
}

static uint64_t now(void *c)
{
    (void)c;
    return mod.now;
}

static tether_modem m;

static int setup(void **state)
{
    (void)state;
    memset(&mod, 0, sizeof mod);
    tether_modem_uart u = {w, r, idle, now, NULL};
    tether_modem_init(&m, &u);
    return 0;
}

/* Appends a reply frame to the script. */
static void reply(char type, uint8_t seq, const uint8_t *payload, size_t len)
{
    uint8_t h[4] = {(uint8_t)type, seq, (uint8_t)(len >> 8), (uint8_t)len};
    memcpy(mod.script + mod.script_len, h, 4);
    memcpy(mod.script + mod.script_len + 4, payload, len);
    mod.script_len += 4 + len;
}

static void open_sends_the_frame_and_maps_results(void **state)
{
    (void)state;
    reply('o', 1, (const uint8_t[]){0, TETHER_MODEM_OK}, 2);
    assert_int_equal(tether_modem_open(&m, 0, "localhost", 8883, 1000), TETHER_OK);
    const uint8_t want[] = {'O', 1,   0,   12,  0,   0x22, 0xB3, 'l',
                            'o', 'c', 'a', 'l', 'h', 'o',  's',  't'};
    assert_int_equal(mod.sent_len, sizeof want);
    assert_memory_equal(mod.sent, want, sizeof want);

    const struct {
        uint8_t result;
        tether_status st;
    } map[] = {{TETHER_MODEM_REFUSED, TETHER_CONNECT_REFUSED},
               {TETHER_MODEM_DNS, TETHER_DNS_FAILED},
               {TETHER_MODEM_TIMEOUT, TETHER_CONNECT_TIMEOUT},
               {TETHER_MODEM_UNREACHABLE, TETHER_NETWORK_UNREACHABLE},
               {TETHER_MODEM_ERROR, TETHER_SOCKET_ERROR},
               {200, TETHER_SOCKET_ERROR}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        reply('o', (uint8_t)(2 + i), (const uint8_t[]){0, map[i].result}, 2);
        assert_int_equal(tether_modem_open(&m, 0, "localhost", 8883, 1000), map[i].st);
    }
    assert_int_equal(tether_modem_open(&m, 0, "", 8883, 1000), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_modem_open(&m, 0, "localhost", 0, 1000), TETHER_INVALID_ARGUMENT);
}

static void read_and_write_move_data_and_report_the_end(void **state)
{
    (void)state;
    uint8_t buf[600];
    reply('r', 1, (const uint8_t[]){0, TETHER_MODEM_OK, 'a', 'b', 'c'}, 5);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 100), 3);
    assert_memory_equal(buf, "abc", 3);
    /* The request asked for at most one chunk, and for the wait given. */
    const uint8_t want[] = {'R', 1, 0, 5, 0, 0x02, 0x00, 0, 100};
    assert_memory_equal(mod.sent, want, sizeof want);

    reply('r', 2, (const uint8_t[]){0, TETHER_MODEM_OK}, 2);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 100), 0);
    reply('r', 3, (const uint8_t[]){0, TETHER_MODEM_CLOSED}, 2);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 100),
                     tether_transport_error(TETHER_CONNECTION_CLOSED));
    reply('r', 4, (const uint8_t[]){0, TETHER_MODEM_RESET}, 2);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 100),
                     tether_transport_error(TETHER_CONNECTION_RESET));

    memset(buf, 'x', sizeof buf);
    reply('w', 5, (const uint8_t[]){0, TETHER_MODEM_OK, 0x02, 0x00}, 4);
    assert_int_equal(tether_modem_write(&m, 0, buf, sizeof buf), TETHER_MODEM_CHUNK);
    reply('w', 6, (const uint8_t[]){0, TETHER_MODEM_OK, 0x00, 0x07}, 4);
    assert_int_equal(tether_modem_write(&m, 0, buf, 10), 7);
    reply('w', 7, (const uint8_t[]){0, TETHER_MODEM_CLOSED, 0, 0}, 4);
    assert_int_equal(tether_modem_write(&m, 0, buf, 10),
                     tether_transport_error(TETHER_CONNECTION_CLOSED));
    assert_int_equal(tether_modem_write(&m, 0, buf, 0), 0);
}

static void stale_replies_are_skipped(void **state)
{
    (void)state;
    uint8_t buf[16];
    /* A late answer to an earlier request, and one of another type, before the real one. */
    reply('r', 9, (const uint8_t[]){0, TETHER_MODEM_OK, 'o', 'l', 'd'}, 5);
    reply('t', 1, (const uint8_t[]){0, 0, 0, 0, 0, 0, 0, 0, 1}, 9);
    reply('r', 1, (const uint8_t[]){0, TETHER_MODEM_OK, 'n', 'e', 'w'}, 5);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 10), 3);
    assert_memory_equal(buf, "new", 3);
    assert_int_equal(mod.script_pos, mod.script_len);
}

static void oversized_short_truncated_and_missing_replies_fail(void **state)
{
    (void)state;
    uint8_t buf[4];
    /* More data than asked: an error, and the frame is consumed whole. */
    reply('r', 1, (const uint8_t[]){0, TETHER_MODEM_OK, '1', '2', '3', '4', '5', '6'}, 8);
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 10),
                     tether_transport_error(TETHER_SOCKET_ERROR));
    assert_int_equal(mod.script_pos, mod.script_len);
    /* Shorter than its fixed part. */
    reply('t', 2, (const uint8_t[]){0, 1, 2}, 3);
    int64_t t = 0;
    assert_int_equal(tether_modem_time_ms(&m, &t), TETHER_SOCKET_ERROR);
    /* Nothing at all: the wait plus the slack, on the module's clock, then a timeout. */
    uint64_t start = mod.now;
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 100),
                     tether_transport_error(TETHER_TIMEOUT));
    assert_int_equal(mod.now - start, 100 + m.reply_slack_ms);
    /* A header, then silence. */
    const uint8_t cut[] = {'r', 4, 0, 10, 0};
    memcpy(mod.script + mod.script_len, cut, sizeof cut);
    mod.script_len += sizeof cut;
    assert_int_equal(tether_modem_read(&m, 0, buf, sizeof buf, 0),
                     tether_transport_error(TETHER_TIMEOUT));
}

static void time_of_day_and_entropy(void **state)
{
    (void)state;
    reply('t', 1, (const uint8_t[]){0, 0, 0, 0x01, 0xA2, 0x3B, 0x4C, 0x5D, 0x6E}, 9);
    int64_t t = 0;
    assert_int_equal(tether_modem_time_ms(&m, &t), TETHER_OK);
    assert_int_equal(t, 0x01A23B4C5D6ELL);
    reply('t', 2, (const uint8_t[]){TETHER_MODEM_NO_TIME, 0, 0, 0, 0, 0, 0, 0, 0}, 9);
    assert_int_equal(tether_modem_time_ms(&m, &t), TETHER_CLOCK_NOT_SET);

    /* 300 bytes: two requests, 256 then 44. */
    static uint8_t big[1 + 256], small[1 + 44], out[300];
    memset(big + 1, 0xAB, 256);
    memset(small + 1, 0xCD, 44);
    reply('x', 3, big, sizeof big);
    reply('x', 4, small, sizeof small);
    size_t before = mod.sent_len;
    assert_int_equal(tether_modem_emulation_entropy(&m, out, sizeof out), TETHER_OK);
    assert_int_equal(out[0], 0xAB);
    assert_int_equal(out[255], 0xAB);
    assert_int_equal(out[256], 0xCD);
    assert_int_equal(out[299], 0xCD);
    const uint8_t req2[] = {'X', 4, 0, 2, 0, 44};
    assert_memory_equal(mod.sent + before + 6, req2, sizeof req2);
    /* Fewer bytes than asked, or a failure: no entropy. */
    reply('x', 5, small, 10);
    assert_int_equal(tether_modem_emulation_entropy(&m, out, 44), TETHER_ENTROPY_FAILED);
    reply('x', 6, (const uint8_t[]){TETHER_MODEM_ERROR}, 1);
    assert_int_equal(tether_modem_emulation_entropy(&m, out, 1), TETHER_ENTROPY_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(open_sends_the_frame_and_maps_results, setup),
        cmocka_unit_test_setup(read_and_write_move_data_and_report_the_end, setup),
        cmocka_unit_test_setup(stale_replies_are_skipped, setup),
        cmocka_unit_test_setup(oversized_short_truncated_and_missing_replies_fail, setup),
        cmocka_unit_test_setup(time_of_day_and_entropy, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
