/* SAS tokens and derived keys against values computed independently with OpenSSL, and the
 * public check value of PROTOCOL.md.
 *
 * How the expected signatures were made (once, by hand):
 *   KEY=Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=
 *   HK=$(echo -n "$KEY" | base64 -d | xxd -p -c 200)
 *   printf '0ne00000A0A%%2Fregistrations%%2Fsn-007-888-abc-mac-a1-b2-c3-d4-e5-f6\n1767225600' |
 *     openssl dgst -sha256 -mac HMAC -macopt hexkey:$HK -binary | base64
 * and likewise for the other strings to sign named beside each test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/sas.h"
#include "writer_check.h"

#define DEVICE_KEY "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
#define GROUP_KEY                                                                                  \
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw=="
#define REG_ID "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"
#define EXPIRY 1767225600u /* 2026-01-01T00:00:00Z */

static void derives_the_public_check_value(void **state)
{
    (void)state;
    ASSERT_WRITES(DEVICE_KEY, tether_sas_derive_device_key(GROUP_KEY, REG_ID, BUF, CAP, LEN));
}

static void derives_with_a_key_longer_than_a_block(void **state)
{
    (void)state;
    /* Key bytes 0..99 (hashed first, RFC 2104); message "dev-01". */
    const char *key =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4O"
        "To7PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiYw==";
    ASSERT_WRITES("i83WeN1ZoSOrQAkjySSR2YvsvCf3YESv65SP73SpN4U=",
                  tether_sas_derive_device_key(key, "dev-01", BUF, CAP, LEN));
}

static void dps_token(void **state)
{
    (void)state;
    ASSERT_WRITES("SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2F" REG_ID
                  "&sig=rtvhKDIMpR1F9AQgr2xbuAQi0bzBqoNE0OqQIPwIImg%3D&se=1767225600"
                  "&skn=registration",
                  tether_sas_dps_token("0ne00000A0A", REG_ID, DEVICE_KEY, EXPIRY, BUF, CAP, LEN));
    /* "0ne00000A0A%2Fregistrations%2Fdev-01\n0" */
    ASSERT_WRITES("SharedAccessSignature sr=0ne00000A0A%2Fregistrations%2Fdev-01"
                  "&sig=VrWAcW7Mo2EVqlskbFZb2daGoiFr9MHV3DhONBhx%2FS4%3D&se=0&skn=registration",
                  tether_sas_dps_token("0ne00000A0A", "dev-01", DEVICE_KEY, 0, BUF, CAP, LEN));
}

static void hub_tokens(void **state)
{
    (void)state;
    /* "tether-hub.azure-devices.net%2Fdevices%2Fdev-01\n1767225600" */
    tether_hub_identity device = {"tether-hub.azure-devices.net", "dev-01", NULL};
    ASSERT_WRITES("SharedAccessSignature sr=tether-hub.azure-devices.net%2Fdevices%2Fdev-01"
                  "&sig=wUGClXhJNQSq4VWSkJP77l%2FLa7T4Y1jAGVY7IYyS%2BgQ%3D&se=1767225600",
                  tether_sas_hub_token(&device, DEVICE_KEY, EXPIRY, BUF, CAP, LEN));
    /* "tether-hub.azure-devices.net%2Fdevices%2Fdev-01%2Fmodules%2Fm1\n1767225600" */
    tether_hub_identity module = {"tether-hub.azure-devices.net", "dev-01", "m1"};
    ASSERT_WRITES("SharedAccessSignature sr=tether-hub.azure-devices.net%2Fdevices%2Fdev-01"
                  "%2Fmodules%2Fm1&sig=nwaUjVM2uIanom7nA%2FwIsQQosesXzNVpRlP7IZgzKBg%3D"
                  "&se=1767225600",
                  tether_sas_hub_token(&module, DEVICE_KEY, EXPIRY, BUF, CAP, LEN));
}

static void refuses_bad_keys_and_ids(void **state)
{
    (void)state;
    char buf[256];
    size_t len;
    char too_long[400];
    memset(too_long, 'A', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    const char *bad_keys[] = {"", "not base64!", "QUJD=A", "QQ", too_long};
    tether_hub_identity device = {"h.example", "dev-01", NULL};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        assert_int_equal(tether_sas_derive_device_key(bad_keys[i], "dev-01", buf, sizeof buf, &len),
                         TETHER_SAS_KEY_INVALID);
        assert_int_equal(
            tether_sas_dps_token("0ne0", "dev-01", bad_keys[i], 1, buf, sizeof buf, &len),
            TETHER_SAS_KEY_INVALID);
        assert_int_equal(tether_sas_hub_token(&device, bad_keys[i], 1, buf, sizeof buf, &len),
                         TETHER_SAS_KEY_INVALID);
    }
    assert_int_equal(tether_sas_derive_device_key(NULL, "dev-01", buf, sizeof buf, &len),
                     TETHER_SAS_KEY_INVALID);
    assert_int_equal(tether_sas_derive_device_key(GROUP_KEY, "dev_", buf, sizeof buf, &len),
                     TETHER_INVALID_REGISTRATION_ID);
    assert_int_equal(tether_sas_dps_token("0ne/0", "dev-01", DEVICE_KEY, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ID_SCOPE);
    assert_int_equal(tether_sas_dps_token("0ne0", "dev 1", DEVICE_KEY, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_REGISTRATION_ID);
    device.device_id = "a/b";
    assert_int_equal(tether_sas_hub_token(&device, DEVICE_KEY, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_DEVICE_ID);
    assert_int_equal(tether_sas_hub_token(NULL, DEVICE_KEY, 1, buf, sizeof buf, &len),
                     TETHER_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(derives_the_public_check_value),
        cmocka_unit_test(derives_with_a_key_longer_than_a_block),
        cmocka_unit_test(dps_token),
        cmocka_unit_test(hub_tokens),
        cmocka_unit_test(refuses_bad_keys_and_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
