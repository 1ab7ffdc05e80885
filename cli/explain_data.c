/* What `tether explain` knows beyond the status table: mbedTLS 2.x codes (users paste logs
 * from ESP-IDF v4 devices), which tether status an mbedTLS code becomes, and the error codes
 * of DPS and IoT Hub. */
#include <stddef.h>

#include "explain_data.h"

/* mbedTLS 2.28's SSL codes: several changed meaning or number in 3.x. */
const explain_code explain_mbedtls2[] = {
    {-0x7080, "MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE", "the requested feature is not available"},
    {-0x7100, "MBEDTLS_ERR_SSL_BAD_INPUT_DATA", "bad input parameters to function"},
    {-0x7180, "MBEDTLS_ERR_SSL_INVALID_MAC", "verification of the message MAC failed"},
    {-0x7200, "MBEDTLS_ERR_SSL_INVALID_RECORD", "an invalid SSL record was received"},
    {-0x7280, "MBEDTLS_ERR_SSL_CONN_EOF", "the connection indicated an EOF"},
    {-0x7300, "MBEDTLS_ERR_SSL_UNKNOWN_CIPHER", "an unknown cipher was received"},
    {-0x7380, "MBEDTLS_ERR_SSL_NO_CIPHER_CHOSEN",
     "the server has no ciphersuites in common with the client"},
    {-0x7400, "MBEDTLS_ERR_SSL_NO_RNG", "no RNG was provided to the SSL module"},
    {-0x7480, "MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE",
     "no client certification received from the client, but required"},
    {-0x7500, "MBEDTLS_ERR_SSL_CERTIFICATE_TOO_LARGE",
     "our own certificate(s) is/are too large to send in an SSL message"},
    {-0x7580, "MBEDTLS_ERR_SSL_CERTIFICATE_REQUIRED",
     "the own certificate is not set, but needed by the server"},
    {-0x7600, "MBEDTLS_ERR_SSL_PRIVATE_KEY_REQUIRED",
     "the own private key or pre-shared key is not set, but needed"},
    {-0x7680, "MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED", "no CA chain is set, but required to operate"},
    {-0x7700, "MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE", "an unexpected message was received"},
    {-0x7780, "MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE", "a fatal alert message was received"},
    {-0x7800, "MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED", "verification of our peer failed"},
    {-0x7880, "MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY", "the peer notified us that it closes"},
    {-0x7900, "MBEDTLS_ERR_SSL_BAD_HS_CLIENT_HELLO", "processing of the ClientHello failed"},
    {-0x7980, "MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO", "processing of the ServerHello failed"},
    {-0x7A00, "MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE", "processing of the Certificate failed"},
    {-0x7A80, "MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE_REQUEST",
     "processing of the CertificateRequest failed"},
    {-0x7B00, "MBEDTLS_ERR_SSL_BAD_HS_SERVER_KEY_EXCHANGE",
     "processing of the ServerKeyExchange failed"},
    {-0x7B80, "MBEDTLS_ERR_SSL_BAD_HS_SERVER_HELLO_DONE",
     "processing of the ServerHelloDone failed"},
    {-0x7C00, "MBEDTLS_ERR_SSL_BAD_HS_CLIENT_KEY_EXCHANGE",
     "processing of the ClientKeyExchange failed"},
    {-0x7D80, "MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE_VERIFY",
     "processing of the CertificateVerify failed"},
    {-0x7E00, "MBEDTLS_ERR_SSL_BAD_HS_CHANGE_CIPHER_SPEC",
     "processing of the ChangeCipherSpec failed"},
    {-0x7E80, "MBEDTLS_ERR_SSL_BAD_HS_FINISHED", "processing of the Finished failed"},
    {-0x7F00, "MBEDTLS_ERR_SSL_ALLOC_FAILED", "memory allocation failed"},
    {-0x7F80, "MBEDTLS_ERR_SSL_HW_ACCEL_FAILED", "hardware acceleration function failed"},
    {-0x6E80, "MBEDTLS_ERR_SSL_BAD_HS_PROTOCOL_VERSION", "handshake protocol not within min/max"},
    {-0x6A00, "MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL", "a buffer is too small to receive or write"},
    {-0x6980, "MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE", "none of the common ciphersuites is usable"},
    {-0x6800, "MBEDTLS_ERR_SSL_TIMEOUT", "the operation timed out"},
    {0, NULL, NULL},
};

/* Which tether status a code becomes (3.x numbering unless noted). */
const explain_mapping explain_mbedtls_status[] = {
    {-0x6A00, 3, TETHER_TLS_CERT_CHAIN_TOO_LARGE,
     "when it happens at the client certificate: the chain does not fit the output buffer"},
    {-0x7500, 2, TETHER_TLS_CERT_CHAIN_TOO_LARGE, "the client chain does not fit the buffer"},
    {-0x7280, 0, TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE,
     "during the handshake: the server hung up (accepted nothing offered, or refused the "
     "certificate)"},
    {-0x7F00, 0, TETHER_TLS_ALLOC_FAILED, "TLS ran out of heap"},
    {-0x2700, 0, TETHER_TLS_SERVER_CERT_UNTRUSTED,
     "or SERVER_CERT_EXPIRED / NOT_YET_VALID / HOSTNAME_MISMATCH, from the verify flags"},
    {-0x7780, 0, TETHER_TLS_ALERT,
     "tether names the alert; client-certificate alerts become "
     "TLS_CLIENT_CERT_REJECTED"},
    {-0x7780, 0, TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL,
     "a record_overflow alert after the client sent a handshake message (its Certificate) "
     "longer than the maximum fragment length it asked for"},
    {-0x6600, 0, TETHER_TLS_SERVER_SIGNATURE_REJECTED,
     "at the server's key exchange, TLS 1.2 chosen while the client offered 1.3 too: the "
     "server signed with RSA-PSS, which mbedTLS 3.6.6 refuses in TLS 1.2"},
    {-0x7200, 0, TETHER_TLS_RECORD_TOO_LARGE,
     "when the record is larger than the input buffer (the server ignored fragment length)"},
    {-0x6800, 3, TETHER_TLS_HANDSHAKE_TIMEOUT, "the peer went quiet"},
    {-0x6E00, 3, TETHER_TLS_HANDSHAKE_REFUSED, "no common suite, curve or signature algorithm"},
    {-0x7880, 0, TETHER_CONNECTION_CLOSED, "the peer closed cleanly"},
    {0, 0, TETHER_OK, NULL},
};

/* IoT Hub's common error codes (Azure REST and MQTT). */
const explain_azure explain_hub_codes[] = {
    {400004, "ArgumentInvalid", "the request body is not valid", "check the JSON sent"},
    {400027, "ConnectionForcefullyClosedOnNewConnection",
     "another connection with the same device id replaced this one",
     "give every device its own id; stop the duplicate"},
    {400103, "InvalidContentEncodingOrType", "bad content type or encoding",
     "send $.ct=application/json and $.ce=utf-8 for JSON"},
    {401002, "IotHubUnauthorizedAccess", "unauthorized access",
     "check the device's credentials and that it is registered on this hub"},
    {401003, "IoTHubUnauthorized", "the token expired or does not apply to this resource",
     "sync the clock; renew the SAS token; check the resource (hub/devices/id)"},
    {403002, "IoTHubQuotaExceeded", "the hub's daily message quota is used up",
     "raise the hub tier or send less"},
    {403004, "DeviceMaximumQueueDepthExceeded", "too many cloud-to-device messages are queued",
     "the device must receive (and acknowledge) its C2D messages"},
    {404001, "DeviceNotFound", "the device is not registered on this hub",
     "reprovision through DPS"},
    {404103, "DeviceNotOnline", "a direct method was called while the device was offline",
     "connect the device first; invoke again"},
    {404104, "DeviceConnectionClosedRemotely", "the device closed the connection during a call",
     "see the device's log"},
    {409001, "DeviceAlreadyExists", "a device with that id exists", "choose another id"},
    {429001, "ThrottlingException", "the hub throttles this operation",
     "retry with exponential backoff and jitter"},
    {500001, "ServerError", "the service failed", "retry with backoff"},
    {503003, "PartitionNotFound", "the service is temporarily unavailable", "retry with backoff"},
    {504101, "GatewayTimeout", "the device did not answer the direct method in time",
     "answer methods faster, or give a longer timeout"},
    {0, NULL, NULL, NULL},
};

/* DPS: answers by HTTP class, with the codes tether and the local cloud name. */
const explain_azure explain_dps_codes[] = {
    {400004, "ArgumentInvalid", "the registration request is not valid",
     "check the register payload (custom JSON)"},
    {400209, "AllocationFailed", "no hub could be assigned",
     "check the enrollment's hubs and allocation policy"},
    {401002, "Unauthorized",
     "DPS did not accept this device's credentials: no enrollment, CN/registration-id "
     "mismatch, chain not trusted, or a wrong or expired SAS token",
     "check the enrollment; tether doctor checks CN, chain and clock"},
    {429001, "Throttled", "too many requests", "wait for retry-after; tether does"},
    {0, NULL, NULL, NULL},
};

const char *explain_dps_class(unsigned http)
{
    switch (http) {
    case 400:
        return "the body of the request is not valid (cannot be parsed or validated)";
    case 401:
        return "the credentials could not be validated (expired, wrong resource, no enrollment, "
               "untrusted chain)";
    case 404:
        return "the DPS instance or a resource (an enrollment) does not exist";
    case 409:
        return "the request conflicts with the current state";
    case 412:
        return "the etag does not match";
    case 429:
        return "throttled: retry after the time DPS gives, with backoff and jitter";
    default:
        return http >= 500 ? "a service error: retry with backoff"
                           : "a refusal: the request is not retried";
    }
}
