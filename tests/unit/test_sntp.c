/* SNTP packets: the request, every reason to refuse a reply, the offset arithmetic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "tether/port.h"
#include "tether/sntp.h"

#define NONCE 0x0123456789ABCDEFull

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* A good reply: version 4, mode 4, stratum 2, times 2026-11-25 00:00:00.5 UTC. */
static void good_reply(uint8_t *r)
{
    memset(r, 0, TETHER_SNTP_PACKET_LEN);
    r[0] = 0x24;
    r[1] = 2;
    memcpy(r + 12, "GPS", 3);
    put64(r + 24, NONCE);
    uint64_t ntp = (uint64_t)(1795564800LL + 2208988800LL) << 32 | 0x80000000u;
    put64(r + 32, ntp);
    put64(r + 40, ntp);
}

static void request_is_a_v4_client_packet_carrying_the_nonce(void **state)
{
    (void)state;
    uint8_t q[TETHER_SNTP_PACKET_LEN];
    tether_sntp_encode_request(q, NONCE);
    assert_int_equal(q[0], 0x23);
    for (int i = 1; i < 40; i++)
        assert_int_equal(q[i], 0);
    assert_int_equal(q[40], 0x01);
    assert_int_equal(q[47], 0xEF);
}

static void good_reply_gives_unix_milliseconds(void **state)
{
    (void)state;
    uint8_t r[TETHER_SNTP_PACKET_LEN];
    good_reply(r);
    tether_sntp_reply out;
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_OK);
    assert_int_equal(out.stratum, 2);
    assert_string_equal(out.ref_id, "GPS");
    assert_int_equal(out.transmit_ms, 1795564800500LL);
    assert_int_equal(out.receive_ms, 1795564800500LL);
}

static void era_one_after_2036_is_understood(void **state)
{
    (void)state;
    uint8_t r[TETHER_SNTP_PACKET_LEN];
    good_reply(r);
    /* NTP seconds 0x00000010 in era 1 is 2036-02-07 06:28:32 UTC (+16 s). */
    put64(r + 40, (uint64_t)0x10 << 32);
    tether_sntp_reply out;
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_OK);
    assert_int_equal(out.transmit_ms, (2085978496LL + 16) * 1000);
}

static void replies_that_are_refused(void **state)
{
    (void)state;
    uint8_t r[TETHER_SNTP_PACKET_LEN];
    tether_sntp_reply out;

    good_reply(r);
    assert_int_equal(tether_sntp_parse_reply(r, 47, NONCE, &out), TETHER_SNTP_BAD_REPLY);
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE + 1, &out),
                     TETHER_SNTP_BAD_REPLY); /* not an answer to our request */
    r[0] = 0x23;                             /* mode 3: a client packet echoed back */
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_BAD_REPLY);
    good_reply(r);
    r[0] = 0x14; /* version 2 */
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_BAD_REPLY);
    good_reply(r);
    r[1] = 0;
    memcpy(r + 12, "RATE", 4);
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_KISS_OF_DEATH);
    assert_string_equal(out.ref_id, "RATE");
    good_reply(r);
    r[0] = 0xE4; /* leap 3: unsynchronised */
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_UNSYNCHRONIZED);
    good_reply(r);
    r[1] = 16;
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_UNSYNCHRONIZED);
    good_reply(r);
    memset(r + 40, 0, 8);
    assert_int_equal(tether_sntp_parse_reply(r, sizeof r, NONCE, &out), TETHER_SNTP_BAD_REPLY);
}

static void offset_and_delay(void **state)
{
    (void)state;
    int64_t offset, delay;
    /* Local clock 1000 s behind; 40 ms each way; 5 ms in the server. */
    tether_sntp_compute(0, 1000040, 1000045, 85, &offset, &delay);
    assert_int_equal(offset, 1000000);
    assert_int_equal(delay, 80);
}

static void clock_gate_uses_the_build_day(void **state)
{
    (void)state;
    assert_false(tether_clock_is_set(0));
    assert_false(tether_clock_is_set(tether_clock_floor() - 1));
    assert_true(tether_clock_is_set(tether_clock_floor()));
    assert_true(tether_clock_floor() > 1767225600 - 1); /* built in 2026 or later */
}

/* tether's clock is the port's wall clock plus one offset, kept in the core for every port. */
static void clock_is_the_port_wall_clock_plus_the_offset(void **state)
{
    (void)state;
    assert_int_equal(tether_clock_offset_ms(), 0);
    int64_t wall = tether_port_wall_ms();
    int64_t mine = tether_clock_unix_ms();
    assert_true(mine >= wall && mine <= tether_port_wall_ms());

    tether_clock_set_offset_ms(-wall - 1500); /* about 1.5 s before 1970 */
    assert_int_equal(tether_clock_offset_ms(), -wall - 1500);
    mine = tether_clock_unix_ms();
    int64_t later = tether_port_wall_ms() - wall - 1500; /* however long the reads took */
    assert_true(mine >= -1500 && mine <= later);
    int64_t s1 = tether_clock_unix_s();
    later = tether_port_wall_ms() - wall - 1500;
    if (later < -1000) /* still in the second before -1 s: rounded down, not toward zero */
        assert_int_equal(s1, -2);

    tether_clock_set_offset_ms(86400000); /* replaces, does not add */
    int64_t w0 = tether_port_wall_ms();
    int64_t s = tether_clock_unix_s();
    int64_t w1 = tether_port_wall_ms();
    assert_true(s >= (w0 + 86400000) / 1000 && s <= (w1 + 86400000) / 1000);
    tether_clock_set_offset_ms(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_is_a_v4_client_packet_carrying_the_nonce),
        cmocka_unit_test(good_reply_gives_unix_milliseconds),
        cmocka_unit_test(era_one_after_2036_is_understood),
        cmocka_unit_test(replies_that_are_refused),
        cmocka_unit_test(offset_and_delay),
        cmocka_unit_test(clock_gate_uses_the_build_day),
        cmocka_unit_test(clock_is_the_port_wall_clock_plus_the_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
