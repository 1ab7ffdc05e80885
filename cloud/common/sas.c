#include "sas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util.h"

static const char prefix[] = "SharedAccessSignature ";

void tc_sas_free(struct tc_sas *sas)
{
    free(sas->sr);
    free(sas->sig);
    free(sas->se);
    free(sas->skn);
    memset(sas, 0, sizeof *sas);
}

int tc_sas_parse(const char *token, struct tc_sas *out)
{
    memset(out, 0, sizeof *out);
    if (token == NULL || strncmp(token, prefix, sizeof prefix - 1) != 0) {
        return -1;
    }
    const char *p = token + sizeof prefix - 1;
    while (*p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq == NULL) {
            tc_sas_free(out);
            return -1;
        }
        size_t klen = (size_t)(eq - p);
        char **slot = NULL;
        if (klen == 2 && strncmp(p, "sr", 2) == 0) {
            slot = &out->sr;
        } else if (klen == 3 && strncmp(p, "sig", 3) == 0) {
            slot = &out->sig;
        } else if (klen == 2 && strncmp(p, "se", 2) == 0) {
            slot = &out->se;
        } else if (klen == 3 && strncmp(p, "skn", 3) == 0) {
            slot = &out->skn;
        }
        if (slot != NULL) {
            if (*slot != NULL) { /* a field twice */
                tc_sas_free(out);
                return -1;
            }
            *slot = strndup(eq + 1, (size_t)(end - eq - 1));
        }
        if (amp == NULL) {
            break;
        }
        p = amp + 1;
    }
    if (out->sr == NULL || out->sig == NULL || out->se == NULL || out->sr[0] == '\0' ||
        out->sig[0] == '\0' || out->se[0] == '\0' || strlen(out->se) > 19) {
        tc_sas_free(out);
        return -1;
    }
    for (const char *d = out->se; *d != '\0'; d++) {
        if (*d < '0' || *d > '9') {
            tc_sas_free(out);
            return -1;
        }
    }
    return 0;
}

static char *sign(const char *key_b64, const char *sr, const char *se)
{
    unsigned char key[256];
    unsigned char mac[32];
    long key_len = tc_base64_decode(key_b64, key, sizeof key);
    if (key_len <= 0) {
        return NULL;
    }
    size_t n = strlen(sr) + 1 + strlen(se);
    char *msg = malloc(n + 1);
    if (msg == NULL) {
        return NULL;
    }
    snprintf(msg, n + 1, "%s\n%s", sr, se);
    int rc = tc_hmac_sha256(key, (size_t)key_len, msg, n, mac);
    free(msg);
    OPENSSL_cleanse(key, sizeof key);
    return rc == 0 ? tc_base64_encode(mac, sizeof mac) : NULL;
}

enum tc_sas_result tc_sas_check(const char *token, const char *key_b64, const char *resource,
                                int64_t now_s)
{
    struct tc_sas sas;
    enum tc_sas_result result = TC_SAS_OK;
    char *decoded_sr = NULL;
    char *decoded_sig = NULL;
    char *expected = NULL;
    if (tc_sas_parse(token, &sas) != 0) {
        return TC_SAS_MALFORMED;
    }
    decoded_sr = tc_url_decode(sas.sr, strlen(sas.sr));
    decoded_sig = tc_url_decode(sas.sig, strlen(sas.sig));
    if (decoded_sr == NULL || decoded_sig == NULL) {
        result = TC_SAS_MALFORMED;
    } else if (strcasecmp(decoded_sr, resource) != 0) {
        result = TC_SAS_WRONG_RESOURCE;
    } else if (strtoll(sas.se, NULL, 10) <= now_s) {
        result = TC_SAS_EXPIRED;
    } else if ((expected = sign(key_b64, sas.sr, sas.se)) == NULL) {
        result = TC_SAS_BAD_KEY;
    } else if (strlen(expected) != strlen(decoded_sig) ||
               CRYPTO_memcmp(expected, decoded_sig, strlen(expected)) != 0) {
        result = TC_SAS_BAD_SIGNATURE;
    }
    free(expected);
    free(decoded_sr);
    free(decoded_sig);
    tc_sas_free(&sas);
    return result;
}

const char *tc_sas_result_text(enum tc_sas_result r)
{
    switch (r) {
    case TC_SAS_OK:
        return "valid";
    case TC_SAS_MALFORMED:
        return "malformed SharedAccessSignature";
    case TC_SAS_WRONG_RESOURCE:
        return "token resource (sr) does not match";
    case TC_SAS_EXPIRED:
        return "token expired";
    case TC_SAS_BAD_SIGNATURE:
        return "signature does not match the key";
    case TC_SAS_BAD_KEY:
        return "stored key is not base64";
    }
    return "unknown";
}

char *tc_sas_make(const char *key_b64, const char *resource, int64_t expiry, const char *skn)
{
    char se[24];
    snprintf(se, sizeof se, "%lld", (long long)expiry);
    char *sr = tc_url_encode(resource);
    char *sig = sr != NULL ? sign(key_b64, sr, se) : NULL;
    char *sig_enc = sig != NULL ? tc_url_encode(sig) : NULL;
    char *out = NULL;
    if (sig_enc != NULL) {
        size_t n = strlen(prefix) + strlen(sr) + strlen(sig_enc) + strlen(se) +
                   (skn != NULL ? strlen(skn) : 0) + 32;
        out = malloc(n);
        if (out != NULL) {
            snprintf(out, n, "%ssr=%s&sig=%s&se=%s%s%s", prefix, sr, sig_enc, se,
                     skn != NULL ? "&skn=" : "", skn != NULL ? skn : "");
        }
    }
    free(sr);
    free(sig);
    free(sig_enc);
    return out;
}

char *tc_sas_derive_key(const char *group_key_b64, const char *registration_id)
{
    unsigned char key[256];
    unsigned char mac[32];
    long key_len = tc_base64_decode(group_key_b64, key, sizeof key);
    if (key_len <= 0) {
        return NULL;
    }
    int rc = tc_hmac_sha256(key, (size_t)key_len, registration_id, strlen(registration_id), mac);
    OPENSSL_cleanse(key, sizeof key);
    return rc == 0 ? tc_base64_encode(mac, sizeof mac) : NULL;
}
