/**
 * @file sas.h
 * @brief Shared access signature (SAS) tokens for DPS and IoT Hub, and device keys derived
 *        from a group enrollment key. HMAC-SHA256 and base64 come from mbedTLS; nothing is
 *        allocated (the HMAC runs on a SHA-256 context on the stack, not through mbedtls_md,
 *        whose HMAC context is allocated).
 *
 * A token is
 * `SharedAccessSignature sr={urlencoded resource}&sig={urlencoded signature}&se={expiry}`
 * (`&skn=registration` for DPS), where the signature is the base64 HMAC-SHA256, keyed with
 * the base64-decoded key, of `{urlencoded resource}\n{expiry}`. The resource is
 * `{idScope}/registrations/{registrationId}` for DPS and `{host}/devices/{deviceId}` (plus
 * `/modules/{moduleId}`) for a hub. The expiry is in Unix seconds: the caller reads the
 * clock. Writers follow tether's sizing contract (`buf = NULL` sizes; nothing is written
 * when ::TETHER_BUFFER_TOO_SMALL is returned).
 *
 * @code
 * char token[256];
 * size_t len;
 * st = tether_sas_dps_token("0ne00ABCDEF", "dev1", key_b64, now + 3600, token, sizeof token,
 *                           &len); // the MQTT password
 * @endcode
 */
#ifndef TETHER_SAS_H
#define TETHER_SAS_H

#include <stddef.h>
#include <stdint.h>

#include "tether/hub.h"
#include "tether/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest key accepted, in bytes once decoded (Azure keys are 32 or 64 bytes). */
#define TETHER_SAS_KEY_MAX 128
/** Length of a base64 HMAC-SHA256 signature or derived key, e.g. "Jsm0...rmc=". */
#define TETHER_SAS_KEY_BASE64_LEN 44

/**
 * Writes a DPS token for @p registration_id with `skn=registration`.
 * @return TETHER_OK, TETHER_BUFFER_TOO_SMALL, TETHER_INVALID_ID_SCOPE,
 *         TETHER_INVALID_REGISTRATION_ID, or TETHER_SAS_KEY_INVALID when @p key_base64 is
 *         not base64 of 1 to TETHER_SAS_KEY_MAX bytes.
 */
TETHER_MUST_USE tether_status tether_sas_dps_token(const char *id_scope,
                                                   const char *registration_id,
                                                   const char *key_base64, uint64_t expiry,
                                                   char *buf, size_t cap, size_t *out_len);

/**
 * Writes a hub token for the device (or module) of @p id, without `skn`.
 * @return as tether_sas_dps_token(), with tether_hub_identity_check()'s statuses.
 */
TETHER_MUST_USE tether_status tether_sas_hub_token(const tether_hub_identity *id,
                                                   const char *key_base64, uint64_t expiry,
                                                   char *buf, size_t cap, size_t *out_len);

/**
 * Writes the device key of a group enrollment:
 * base64(HMAC-SHA256(key = base64decode(group_key), message = registration_id)),
 * TETHER_SAS_KEY_BASE64_LEN characters.
 */
TETHER_MUST_USE tether_status tether_sas_derive_device_key(const char *group_key_base64,
                                                           const char *registration_id, char *buf,
                                                           size_t cap, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* TETHER_SAS_H */
