/* Shared access signature tokens, as DPS and IoT Hub check them (PROTOCOL.md). */
#ifndef TC_SAS_H
#define TC_SAS_H

#include <stdint.h>

enum tc_sas_result {
    TC_SAS_OK = 0,
    TC_SAS_MALFORMED,      /* not `SharedAccessSignature sr=…&sig=…&se=…[&skn=…]` */
    TC_SAS_WRONG_RESOURCE, /* sr does not name the expected resource */
    TC_SAS_EXPIRED,        /* se is in the past */
    TC_SAS_BAD_SIGNATURE,  /* sig is not HMAC-SHA256(key, sr + "\n" + se) */
    TC_SAS_BAD_KEY,        /* the stored key is not base64 */
};

struct tc_sas {
    char *sr;  /* as sent (still URL-encoded) */
    char *sig; /* as sent */
    char *se;
    char *skn; /* NULL when absent */
};

/* Split a token into its fields (malloc'd copies; free with tc_sas_free). 0 or -1. */
int tc_sas_parse(const char *token, struct tc_sas *out);
void tc_sas_free(struct tc_sas *sas);

/* Check a token against a base64 key and the expected (decoded) resource, compared without
 * regard to case (the SDKs differ in the case of percent-escapes). The signature is checked
 * over the sr text exactly as sent. */
enum tc_sas_result tc_sas_check(const char *token, const char *key_b64, const char *resource,
                                int64_t now_s);
const char *tc_sas_result_text(enum tc_sas_result r);

/* Build a token (used by tests and the command). Returns malloc'd text. */
char *tc_sas_make(const char *key_b64, const char *resource, int64_t expiry, const char *skn);

/* Group enrollment device key: base64(HMAC-SHA256(base64decode(group_key), reg_id)).
 * Returns malloc'd text or NULL when the group key is not base64. */
char *tc_sas_derive_key(const char *group_key_b64, const char *registration_id);

#endif
