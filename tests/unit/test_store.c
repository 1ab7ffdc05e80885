/* The provisioning record: round trip, every kind of damage, identity checks, the file store. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tether/store.h"

static tether_provisioning_record sample(void)
{
    tether_provisioning_record r;
    memset(&r, 0, sizeof r);
    strcpy(r.id_scope, "0ne00AB12CD");
    strcpy(r.registration_id, "pump-17");
    strcpy(r.assigned_hub, "contoso-hub-2.azure-devices.net");
    strcpy(r.device_id, "pump-17");
    strcpy(r.connect_to, "127.0.0.1:8883");
    for (int i = 0; i < 32; i++)
        r.credential_sha256[i] = (uint8_t)(i * 7 + 1);
    r.assigned_at = 1795630000;
    return r;
}

static uint8_t buf[TETHER_RECORD_MAX];

static size_t encoded(const tether_provisioning_record *r)
{
    size_t len = 0;
    assert_int_equal(tether_record_encode(r, buf, sizeof buf, &len), TETHER_OK);
    return len;
}

static void round_trip_keeps_every_field(void **state)
{
    (void)state;
    tether_provisioning_record r = sample(), back;
    size_t len = encoded(&r);
    assert_memory_equal(buf, "tether-provisioning 1\nid_scope=0ne00AB12CD\n", 43);
    assert_int_equal(tether_record_decode(buf, len, &back), TETHER_OK);
    assert_memory_equal(&r, &back, sizeof r);
}

static void sizing_contract(void **state)
{
    (void)state;
    tether_provisioning_record r = sample();
    size_t need = 0, len = encoded(&r);
    assert_int_equal(tether_record_encode(&r, NULL, 0, &need), TETHER_BUFFER_TOO_SMALL);
    assert_int_equal(need, len);
    assert_int_equal(tether_record_encode(&r, buf, len - 1, &need), TETHER_BUFFER_TOO_SMALL);
}

static void any_flipped_byte_is_corrupt(void **state)
{
    (void)state;
    tether_provisioning_record r = sample(), back;
    size_t len = encoded(&r);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        assert_int_equal(tether_record_decode(buf, len, &back), TETHER_STORE_CORRUPT);
        buf[i] ^= 0x01;
    }
}

static void every_truncation_is_corrupt(void **state)
{
    (void)state;
    tether_provisioning_record r = sample(), back;
    size_t len = encoded(&r);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tether_record_decode(buf, cut, &back), TETHER_STORE_CORRUPT);
}

/* Builds a record from body lines with a correct checksum, to test the parser past the CRC. */
static size_t with_crc(const char *body)
{
    /* Use the encoder's CRC by encoding, then replace the body: recompute via a tiny copy. */
    uint32_t crc = 0xFFFFFFFFu;
    size_t n = strlen(body);
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint8_t)body[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return (size_t)snprintf((char *)buf, sizeof buf, "%scrc32=%08x\n", body, (unsigned)~crc);
}

static void missing_or_duplicate_keys_are_corrupt(void **state)
{
    (void)state;
    tether_provisioning_record back;
    const char *cred = "credential=sha256:"
                       "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    char body[600];
    snprintf(body, sizeof body,
             "tether-provisioning 1\nregistration_id=a\nassigned_hub=h\ndevice_id=d\n%s", cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_OK);
    assert_string_equal(back.assigned_hub, "h");

    snprintf(body, sizeof body, "tether-provisioning 1\nregistration_id=a\ndevice_id=d\n%s", cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_STORE_CORRUPT);

    snprintf(body, sizeof body,
             "tether-provisioning 1\nregistration_id=a\nassigned_hub=h\nassigned_hub=h2\n"
             "device_id=d\n%s",
             cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_STORE_CORRUPT);

    snprintf(body, sizeof body,
             "tether-provisioning 1\nregistration_id=a\nassigned_hub=h\ndevice_id=d\n"
             "credential=sha256:xyz\n");
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_STORE_CORRUPT);

    snprintf(body, sizeof body,
             "tether-provisioning 2\nregistration_id=a\nassigned_hub=h\ndevice_id=d\n%s", cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_STORE_CORRUPT);

    /* A newer writer's extra keys are ignored. */
    snprintf(body, sizeof body,
             "tether-provisioning 1\nregistration_id=a\nassigned_hub=h\ndevice_id=d\n%s"
             "future_key=1\n",
             cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_OK);

    char longv[300];
    memset(longv, 'h', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    snprintf(body, sizeof body,
             "tether-provisioning 1\nregistration_id=a\nassigned_hub=%s\ndevice_id=d\n%s", longv,
             cred);
    assert_int_equal(tether_record_decode(buf, with_crc(body), &back), TETHER_STORE_CORRUPT);
}

static void encoder_refuses_line_breaks_and_empty_identity(void **state)
{
    (void)state;
    tether_provisioning_record r = sample();
    size_t len;
    strcpy(r.device_id, "a\nassigned_hub=evil");
    assert_int_equal(tether_record_encode(&r, buf, sizeof buf, &len), TETHER_INVALID_ARGUMENT);
    r = sample();
    r.assigned_hub[0] = 0;
    assert_int_equal(tether_record_encode(&r, buf, sizeof buf, &len), TETHER_INVALID_ARGUMENT);
}

static char path[256];

static int make_path(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/tether-store-test-%ld.state", (long)getpid());
    unlink(path);
    return 0;
}

static int remove_path(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void file_store_saves_loads_and_checks_identity(void **state)
{
    (void)state;
    tether_file_store fs;
    tether_store store = tether_file_store_init(&fs, path);
    tether_provisioning_record r = sample(), back, expected = sample();
    uint8_t scratch[TETHER_RECORD_MAX];
    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, &expected, &back),
                     TETHER_STORE_EMPTY);
    assert_int_equal(tether_store_save(&store, scratch, sizeof scratch, &r), TETHER_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp*", path); /* no temporary file is left behind */
    glob_t g;
    assert_int_equal(glob(tmp, 0, NULL, &g), GLOB_NOMATCH);

    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, &expected, &back),
                     TETHER_OK);
    assert_string_equal(back.assigned_hub, r.assigned_hub);

    expected.credential_sha256[0] ^= 1; /* credentials changed: reprovision */
    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, &expected, &back),
                     TETHER_STORE_FOREIGN);
    expected = sample();
    strcpy(expected.registration_id, "pump-18");
    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, &expected, &back),
                     TETHER_STORE_FOREIGN);

    /* Damage on disk is reported, not trusted. */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 30, SEEK_SET);
    fputc('X', f);
    fclose(f);
    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, NULL, &back),
                     TETHER_STORE_CORRUPT);

    assert_int_equal(store.erase(store.context), TETHER_OK);
    assert_int_equal(tether_store_load(&store, scratch, sizeof scratch, NULL, &back),
                     TETHER_STORE_EMPTY);
}

static void unwritable_directory_fails_cleanly(void **state)
{
    (void)state;
    tether_file_store fs;
    tether_store store = tether_file_store_init(&fs, "/nonexistent-dir/x.state");
    tether_provisioning_record r = sample();
    uint8_t scratch[TETHER_RECORD_MAX];
    assert_int_equal(tether_store_save(&store, scratch, sizeof scratch, &r),
                     TETHER_STORE_WRITE_FAILED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_keeps_every_field),
        cmocka_unit_test(sizing_contract),
        cmocka_unit_test(any_flipped_byte_is_corrupt),
        cmocka_unit_test(every_truncation_is_corrupt),
        cmocka_unit_test(missing_or_duplicate_keys_are_corrupt),
        cmocka_unit_test(encoder_refuses_line_breaks_and_empty_identity),
        cmocka_unit_test_setup_teardown(file_store_saves_loads_and_checks_identity, make_path,
                                        remove_path),
        cmocka_unit_test(unwritable_directory_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
