/* URL encoding and decoding: exact outputs, the sizing contract, bad escapes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/url.h"
#include "writer_check.h"

static void encode_keeps_unreserved_and_escapes_the_rest(void **state)
{
    (void)state;
    const char *plain = "AZaz09-._~";
    ASSERT_WRITES("AZaz09-._~", tether_url_encode(plain, strlen(plain), BUF, CAP, LEN));
    const char *mixed = "$.ct=a/b+c d&e%\xC3\xA9";
    ASSERT_WRITES("%24.ct%3Da%2Fb%2Bc%20d%26e%25%C3%A9",
                  tether_url_encode(mixed, strlen(mixed), BUF, CAP, LEN));
    const char nul[] = {'a', '\0', 'b'};
    ASSERT_WRITES("a%00b", tether_url_encode(nul, 3, BUF, CAP, LEN));
}

static void encode_empty(void **state)
{
    (void)state;
    size_t len = 7;
    char buf[4];
    assert_int_equal(tether_url_encode(NULL, 0, buf, sizeof buf, &len), TETHER_OK);
    assert_int_equal(len, 0);
    assert_int_equal(tether_url_encode(NULL, 1, buf, sizeof buf, &len), TETHER_INVALID_ARGUMENT);
    assert_int_equal(tether_url_encode("a", 1, buf, sizeof buf, NULL), TETHER_INVALID_ARGUMENT);
}

static void decode_accepts_both_cases(void **state)
{
    (void)state;
    const char *in = "%24.to=%2fdevices%2Fd1&x+y";
    ASSERT_WRITES("$.to=/devices/d1&x+y", tether_url_decode(in, strlen(in), BUF, CAP, LEN));
    ASSERT_WRITES("", tether_url_decode("", 0, BUF, CAP, LEN));
}

static void decode_refuses_bad_escapes(void **state)
{
    (void)state;
    const char *bad[] = {"%", "%2", "a%2", "%G0", "%0g", "%%", "ab%-1", "%2%41"};
    char buf[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = 99;
        assert_int_equal(tether_url_decode(bad[i], strlen(bad[i]), buf, sizeof buf, &len),
                         TETHER_URL_MALFORMED);
        assert_int_equal(tether_url_decode(bad[i], strlen(bad[i]), NULL, 0, &len),
                         TETHER_URL_MALFORMED);
    }
}

static void round_trip_every_byte(void **state)
{
    (void)state;
    char in[256], enc[768], dec[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t enc_len, dec_len;
    assert_int_equal(tether_url_encode(in, 256, enc, sizeof enc, &enc_len), TETHER_OK);
    assert_int_equal(enc_len, 66 + 190 * 3); /* 66 unreserved bytes */
    assert_int_equal(tether_url_decode(enc, enc_len, dec, sizeof dec, &dec_len), TETHER_OK);
    assert_int_equal(dec_len, 256);
    assert_memory_equal(dec, in, 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_keeps_unreserved_and_escapes_the_rest),
        cmocka_unit_test(encode_empty),
        cmocka_unit_test(decode_accepts_both_cases),
        cmocka_unit_test(decode_refuses_bad_escapes),
        cmocka_unit_test(round_trip_every_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
