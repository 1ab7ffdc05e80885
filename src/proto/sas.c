/*
 * SAS tokens and derived keys (include/tether/sas.h). HMAC-SHA256 (RFC 2104) is computed
 * here over mbedTLS's SHA-256 on a stack context: mbedtls_md_hmac() would allocate its
 * context and pads (mbedtls_md_setup), and tether's device library does not allocate.
 * Keys and pads are wiped before returning.
 */
#include "tether/sas.h"

#include <string.h>

#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "tether/dps.h"

#include "proto.h"

#define SHA256_LEN   32u
#define SHA256_BLOCK 64u

typedef struct hmac {
    mbedtls_sha256_context sha;
    unsigned char key[SHA256_BLOCK]; /* the key, zero-padded, for the inner and outer pads */
    int failed;
} hmac;

/* Starts a hash with the key XOR pad as its first block. */
static void hmac_begin(hmac *h, unsigned char pad)
{
    unsigned char block[SHA256_BLOCK];
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        block[i] = (unsigned char)(h->key[i] ^ pad);
    mbedtls_sha256_init(&h->sha);
    h->failed |= mbedtls_sha256_starts(&h->sha, 0);
    h->failed |= mbedtls_sha256_update(&h->sha, block, sizeof block);
    mbedtls_platform_zeroize(block, sizeof block);
}

static void hmac_start(hmac *h, const unsigned char *key, size_t key_len)
{
    memset(h->key, 0, sizeof h->key);
    h->failed = 0;
    if (key_len > SHA256_BLOCK) /* a long key is hashed first */
        h->failed |= mbedtls_sha256(key, key_len, h->key, 0);
    else
        memcpy(h->key, key, key_len);
    hmac_begin(h, 0x36u);
}

static void hmac_update(hmac *h, const void *data, size_t len)
{
    h->failed |= mbedtls_sha256_update(&h->sha, data, len);
}

/* Feeds s percent-encoded, a few bytes at a time: no buffer for the whole encoded text. */
static void hmac_update_url(hmac *h, const char *s, size_t n)
{
    char chunk[48];
    for (size_t i = 0; i < n;) {
        tether_text t = {chunk, 0};
        while (i < n && t.len + 3 <= sizeof chunk)
            tether_text_url(&t, s + i++, 1);
        hmac_update(h, chunk, t.len);
    }
}

static int hmac_finish(hmac *h, unsigned char out[SHA256_LEN])
{
    unsigned char inner[SHA256_LEN];
    h->failed |= mbedtls_sha256_finish(&h->sha, inner);
    mbedtls_sha256_free(&h->sha);
    hmac_begin(h, 0x5Cu);
    h->failed |= mbedtls_sha256_update(&h->sha, inner, sizeof inner);
    h->failed |= mbedtls_sha256_finish(&h->sha, out);
    mbedtls_sha256_free(&h->sha);
    mbedtls_platform_zeroize(h->key, sizeof h->key);
    mbedtls_platform_zeroize(inner, sizeof inner);
    return h->failed;
}

/* Decodes a base64 key into key[TETHER_SAS_KEY_MAX]. */
static tether_status decode_key(const char *key_base64, unsigned char *key, size_t *key_len)
{
    if (key_base64 == NULL)
        return TETHER_SAS_KEY_INVALID;
    size_t n = tether_cstr_len(key_base64, 2 * TETHER_SAS_KEY_MAX);
    if (n == 0 || n >= 2 * TETHER_SAS_KEY_MAX)
        return TETHER_SAS_KEY_INVALID;
    if (mbedtls_base64_decode(key, TETHER_SAS_KEY_MAX, key_len, (const unsigned char *)key_base64,
                              n) != 0 ||
        *key_len == 0)
        return TETHER_SAS_KEY_INVALID;
    return TETHER_OK;
}

/* The resource is the concatenation of up to five pieces; NULL ends the list early. */
#define RESOURCE_PIECES 5

typedef struct token_arg {
    const char *resource[RESOURCE_PIECES];
    const char *signature; /* base64, TETHER_SAS_KEY_BASE64_LEN characters */
    uint64_t expiry;
    const char *key_name; /* NULL: no skn */
} token_arg;

static void build_token(tether_text *t, const void *arg)
{
    const token_arg *a = arg;
    tether_text_cstr(t, "SharedAccessSignature sr=");
    for (size_t i = 0; i < RESOURCE_PIECES && a->resource[i] != NULL; i++)
        tether_text_url(t, a->resource[i], strlen(a->resource[i]));
    tether_text_cstr(t, "&sig=");
    tether_text_url(t, a->signature, strlen(a->signature));
    tether_text_cstr(t, "&se=");
    tether_text_u64(t, a->expiry);
    if (a->key_name != NULL) {
        tether_text_cstr(t, "&skn=");
        tether_text_cstr(t, a->key_name);
    }
}

static tether_status write_token(token_arg *a, const char *key_base64, char *buf, size_t cap,
                                 size_t *out_len)
{
    unsigned char key[TETHER_SAS_KEY_MAX];
    size_t key_len = 0;
    tether_status st = decode_key(key_base64, key, &key_len);
    if (st != TETHER_OK)
        return st;

    hmac h;
    hmac_start(&h, key, key_len);
    mbedtls_platform_zeroize(key, sizeof key);
    for (size_t i = 0; i < RESOURCE_PIECES && a->resource[i] != NULL; i++)
        hmac_update_url(&h, a->resource[i], strlen(a->resource[i]));
    char expiry[24] = "\n"; /* the line break before the expiry, in one update */
    tether_text e = {expiry, 1};
    tether_text_u64(&e, a->expiry);
    hmac_update(&h, expiry, e.len);
    unsigned char mac[SHA256_LEN];
    if (hmac_finish(&h, mac) != 0)
        return TETHER_INVALID_ARGUMENT; /* SHA-256 does not fail on valid arguments */

    char sig[TETHER_SAS_KEY_BASE64_LEN + 1];
    size_t sig_len = 0;
    if (mbedtls_base64_encode((unsigned char *)sig, sizeof sig, &sig_len, mac, sizeof mac) != 0)
        return TETHER_INVALID_ARGUMENT;
    sig[sig_len] = '\0';
    a->signature = sig;
    return tether_text_run(build_token, a, buf, cap, out_len);
}

tether_status tether_sas_dps_token(const char *id_scope, const char *registration_id,
                                   const char *key_base64, uint64_t expiry, char *buf, size_t cap,
                                   size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    /* The user name writer checks the scope and the id as DPS does. */
    size_t ignored;
    tether_status st = tether_dps_username(id_scope, registration_id, NULL, NULL, 0, &ignored);
    if (st != TETHER_BUFFER_TOO_SMALL)
        return st;
    token_arg a = {
        {id_scope, "/registrations/", registration_id, NULL, NULL}, NULL, expiry, "registration"};
    return write_token(&a, key_base64, buf, cap, out_len);
}

tether_status tether_sas_hub_token(const tether_hub_identity *id, const char *key_base64,
                                   uint64_t expiry, char *buf, size_t cap, size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_hub_identity_check(id);
    if (st != TETHER_OK)
        return st;
    token_arg a = {
        {id->host, "/devices/", id->device_id, id->module_id ? "/modules/" : NULL, id->module_id},
        NULL,
        expiry,
        NULL};
    return write_token(&a, key_base64, buf, cap, out_len);
}

tether_status tether_sas_derive_device_key(const char *group_key_base64,
                                           const char *registration_id, char *buf, size_t cap,
                                           size_t *out_len)
{
    if (out_len == NULL)
        return TETHER_INVALID_ARGUMENT;
    tether_status st = tether_dps_registration_id_check(registration_id);
    if (st != TETHER_OK)
        return st;
    unsigned char key[TETHER_SAS_KEY_MAX];
    size_t key_len = 0;
    st = decode_key(group_key_base64, key, &key_len);
    if (st != TETHER_OK)
        return st;
    hmac h;
    hmac_start(&h, key, key_len);
    mbedtls_platform_zeroize(key, sizeof key);
    hmac_update(&h, registration_id, strlen(registration_id));
    unsigned char mac[SHA256_LEN];
    if (hmac_finish(&h, mac) != 0)
        return TETHER_INVALID_ARGUMENT;
    *out_len = TETHER_SAS_KEY_BASE64_LEN;
    if (buf == NULL || cap < TETHER_SAS_KEY_BASE64_LEN) {
        mbedtls_platform_zeroize(mac, sizeof mac);
        return TETHER_BUFFER_TOO_SMALL;
    }
    unsigned char b64[TETHER_SAS_KEY_BASE64_LEN + 1];
    size_t n = 0;
    int rc = mbedtls_base64_encode(b64, sizeof b64, &n, mac, sizeof mac);
    mbedtls_platform_zeroize(mac, sizeof mac);
    if (rc != 0 || n != TETHER_SAS_KEY_BASE64_LEN)
        return TETHER_INVALID_ARGUMENT;
    memcpy(buf, b64, n);
    mbedtls_platform_zeroize(b64, sizeof b64);
    return TETHER_OK;
}
