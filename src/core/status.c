/* The status table: one entry per code, in enum order (checked at compile time). */
#include "tether/status.h"

#include <ctype.h>
#include <string.h>

typedef struct status_entry {
    const char *name;
    const char *message;
    const char *hint;
} status_entry;

static const status_entry table[] = {
    [TETHER_OK] = {"OK", "success", "nothing to change"},

    [TETHER_INVALID_ARGUMENT] = {"INVALID_ARGUMENT", "a value passed to tether is out of range",
                                 "check the option or parameter named in the message"},
    [TETHER_BUFFER_TOO_SMALL] = {"BUFFER_TOO_SMALL", "a caller buffer is too small for the result",
                                 "give a buffer of at least the size reported as needed"},
    [TETHER_WOULD_BLOCK] = {"WOULD_BLOCK", "nothing to do yet; the operation needs more data",
                            "call again when the transport has data"},
    [TETHER_TIMEOUT] = {"TIMEOUT", "the operation did not finish in the time allowed",
                        "check that the peer is up and reachable, or allow more time"},

    [TETHER_FILE_NOT_FOUND] = {"FILE_NOT_FOUND", "a file given to tether does not exist",
                               "check the path; relative paths start from the current directory"},
    [TETHER_FILE_READ_FAILED] = {"FILE_READ_FAILED", "a file given to tether could not be read",
                                 "check the file's permissions"},
    [TETHER_FILE_TOO_LARGE] = {"FILE_TOO_LARGE", "a file is larger than the buffer that holds it",
                               "certificates and keys are a few KB; check that this is the "
                               "right file"},
    [TETHER_ENTROPY_FAILED] = {"ENTROPY_FAILED", "the platform gave no random bytes",
                               "the port's entropy source failed; on a device, check the RNG "
                               "driver is started before TLS"},
    [TETHER_DNS_FAILED] = {"DNS_FAILED", "the host name could not be resolved",
                           "check the spelling of the host and the device's DNS server"},
    [TETHER_CONNECT_REFUSED] = {"CONNECT_REFUSED",
                                "the server refused the connection (nothing listens on that port)",
                                "check the host and port; is the broker or cloud running?"},
    [TETHER_CONNECT_TIMEOUT] = {"CONNECT_TIMEOUT", "the TCP connection was not answered in time",
                                "a firewall may drop port 8883; check the route to the server"},
    [TETHER_NETWORK_UNREACHABLE] = {"NETWORK_UNREACHABLE", "no route to the server",
                                    "check the device's network link and address"},
    [TETHER_CONNECTION_CLOSED] = {"CONNECTION_CLOSED", "the server closed the connection",
                                  "see the server's log; tether reconnects where it can"},
    [TETHER_CONNECTION_RESET] = {"CONNECTION_RESET", "the connection was reset by the peer",
                                 "the server or a middlebox dropped the connection; retry"},
    [TETHER_SOCKET_ERROR] = {"SOCKET_ERROR", "a socket operation failed",
                             "see the system error in the details"},

    [TETHER_TLS_CA_PARSE_FAILED] = {"TLS_CA_PARSE_FAILED",
                                    "the trust store (CA file) holds no certificate tether can "
                                    "parse",
                                    "give a PEM or DER file of root certificates (--cafile)"},
    [TETHER_TLS_CERT_PARSE_FAILED] = {"TLS_CERT_PARSE_FAILED",
                                      "the client certificate could not be parsed",
                                      "give the device certificate chain as PEM or DER, leaf "
                                      "first (--cert)"},
    [TETHER_TLS_KEY_PARSE_FAILED] = {"TLS_KEY_PARSE_FAILED", "the private key could not be parsed",
                                     "give an EC P-256/P-384 or RSA 2048-4096 key as PEM or DER "
                                     "(--key)"},
    [TETHER_TLS_KEY_PASSWORD_REQUIRED] = {"TLS_KEY_PASSWORD_REQUIRED",
                                          "the private key is encrypted and no password was "
                                          "given",
                                          "pass the key's password (--key-password)"},
    [TETHER_TLS_KEY_PASSWORD_WRONG] = {"TLS_KEY_PASSWORD_WRONG",
                                       "the password does not decrypt the private key",
                                       "check the password given with --key-password"},
    [TETHER_TLS_KEY_ENCRYPTED_UNSUPPORTED] =
        {"TLS_KEY_ENCRYPTED_UNSUPPORTED",
         "the private key is encrypted in a way this build cannot decrypt (the minimal "
         "profile has no AES-CBC)",
         "decrypt it once on a host (openssl pkey -in key.pem -out clear.pem) and protect the "
         "clear key with flash encryption or a secure element, or use the tight, esp-idf or "
         "desktop profile"},
    [TETHER_TLS_KEY_MISMATCH] = {"TLS_KEY_MISMATCH",
                                 "the private key does not belong to the certificate",
                                 "give the key that was made with this certificate"},
    [TETHER_TLS_NO_TRUST_ANCHOR] = {"TLS_NO_TRUST_ANCHOR", "no trusted root certificate was given",
                                    "give the root that signs the server (--cafile); "
                                    "verification cannot be skipped silently"},
    [TETHER_TLS_INSECURE_NOT_ALLOWED] = {"TLS_INSECURE_NOT_ALLOWED",
                                         "server verification can only be disabled explicitly",
                                         "use --insecure for a test only; never on a device"},

    [TETHER_TLS_CERT_CHAIN_TOO_LARGE] = {"TLS_CERT_CHAIN_TOO_LARGE",
                                         "the client certificate chain does not fit the TLS "
                                         "output buffer",
                                         "send a shorter chain (leaf + the one intermediate the "
                                         "service knows), or build with a larger output buffer "
                                         "(profile desktop, or raise "
                                         "MBEDTLS_SSL_OUT_CONTENT_LEN)"},
    [TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE] = {"TLS_PEER_CLOSED_IN_HANDSHAKE",
                                             "the server closed the connection during the TLS "
                                             "handshake",
                                             "the server accepted nothing offered (TLS version, "
                                             "cipher suites, SNI) or rejected the client "
                                             "certificate; check the host name, the profile's "
                                             "suites and the device certificate"},
    [TETHER_TLS_ALLOC_FAILED] = {"TLS_ALLOC_FAILED", "TLS ran out of heap",
                                 "free heap before connecting, raise the heap limit, or use a "
                                 "profile with smaller record buffers (tight, minimal); tether "
                                 "doctor measures what this path needs"},
    [TETHER_TLS_SERVER_CERT_UNTRUSTED] = {"TLS_SERVER_CERT_UNTRUSTED",
                                          "the server's certificate does not chain to a trusted "
                                          "root",
                                          "give the root CA that issued the server's chain "
                                          "(--cafile); for Azure, DigiCert Global Root G2"},
    [TETHER_TLS_SERVER_CERT_EXPIRED] = {"TLS_SERVER_CERT_EXPIRED",
                                        "the server's certificate has expired (or the clock is "
                                        "ahead)",
                                        "check the device clock; if it is right, the server "
                                        "must renew its certificate"},
    [TETHER_TLS_SERVER_CERT_NOT_YET_VALID] = {"TLS_SERVER_CERT_NOT_YET_VALID",
                                              "the server's certificate is not valid yet (or the "
                                              "clock is behind)",
                                              "set the device clock (SNTP) before connecting"},
    [TETHER_TLS_HOSTNAME_MISMATCH] = {"TLS_HOSTNAME_MISMATCH",
                                      "the server's certificate is for another host name",
                                      "connect with the name the certificate was issued for; "
                                      "with an address override keep the real host name"},
    [TETHER_TLS_CLIENT_CERT_REJECTED] = {"TLS_CLIENT_CERT_REJECTED",
                                         "the server rejected the client certificate",
                                         "the server does not trust the CA that issued the "
                                         "device certificate, or the certificate is expired or "
                                         "revoked; check the enrollment"},
    [TETHER_TLS_CLIENT_CERT_REQUIRED] = {"TLS_CLIENT_CERT_REQUIRED",
                                         "the server requires a client certificate and none was "
                                         "given",
                                         "pass the device certificate and key (--cert, --key)"},
    [TETHER_TLS_HANDSHAKE_REFUSED] = {"TLS_HANDSHAKE_REFUSED",
                                      "the server found no cipher suite or curve in common",
                                      "use a profile whose suites the server offers (ECDHE with "
                                      "AES-GCM); check the server's TLS settings"},
    [TETHER_TLS_PROTOCOL_VERSION] = {"TLS_PROTOCOL_VERSION",
                                     "the server does not speak a TLS version this build offers",
                                     "Azure needs TLS 1.2 or later; check the server's minimum "
                                     "and maximum version (a server of your own that speaks "
                                     "only TLS 1.3: --tls13)"},
    [TETHER_TLS_RECORD_TOO_LARGE] = {"TLS_RECORD_TOO_LARGE",
                                     "the server sent a TLS record larger than the input buffer",
                                     "the server ignored fragment-length negotiation; use a "
                                     "profile with a 16 KB input buffer (esp-idf, desktop)"},
    [TETHER_TLS_HANDSHAKE_MESSAGE_TOO_LARGE] =
        {"TLS_HANDSHAKE_MESSAGE_TOO_LARGE",
         "a handshake message from the server (usually its certificate chain) does not fit the "
         "TLS input buffer",
         "use a profile with a larger input buffer (tight: 4 KB, esp-idf: 16 KB), or have the "
         "server send a shorter chain (EC keys, no root)"},
    [TETHER_TLS_FRAGMENT_LENGTH_REFUSED] = {"TLS_FRAGMENT_LENGTH_REFUSED",
                                            "the server refused a record within the fragment "
                                            "length asked for (record_overflow)",
                                            "ask for none, with a profile whose input buffer "
                                            "is 16 KB"},
    [TETHER_TLS_HANDSHAKE_TIMEOUT] = {"TLS_HANDSHAKE_TIMEOUT",
                                      "the TLS handshake did not finish in time",
                                      "the server stopped answering mid-handshake; check the "
                                      "network and the server's load"},
    [TETHER_TLS_ALERT] = {"TLS_ALERT", "the server ended the connection with a TLS alert",
                          "see the alert named in the details"},
    [TETHER_TLS_FAILED] = {"TLS_FAILED", "a TLS operation failed",
                           "see the mbedTLS code in the details: tether explain CODE"},

    [TETHER_MQTT_MALFORMED] = {"MQTT_MALFORMED", "a malformed MQTT packet was received",
                               "the peer is not an MQTT 3.1.1 server, or the stream is corrupt"},
    [TETHER_MQTT_PROTOCOL_ERROR] = {"MQTT_PROTOCOL_ERROR",
                                    "the server sent a packet that is not allowed here",
                                    "check that the server speaks MQTT 3.1.1"},
    [TETHER_MQTT_PACKET_TOO_LARGE] = {"MQTT_PACKET_TOO_LARGE",
                                      "an incoming MQTT packet is larger than the receive buffer",
                                      "give a receive buffer of at least the size needed; the "
                                      "packet was discarded and the connection stays open"},
    [TETHER_MQTT_CONNACK_PROTOCOL_VERSION] = {"MQTT_CONNACK_PROTOCOL_VERSION",
                                              "the server refused MQTT 3.1.1 (CONNACK 1)",
                                              "the server does not accept protocol level 4"},
    [TETHER_MQTT_CONNACK_IDENTIFIER_REJECTED] = {"MQTT_CONNACK_IDENTIFIER_REJECTED",
                                                 "the server refused the client id (CONNACK 2)",
                                                 "use the registration id (DPS) or device id "
                                                 "(hub) as the client id"},
    [TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE] = {"MQTT_CONNACK_SERVER_UNAVAILABLE",
                                                "the server is unavailable (CONNACK 3)",
                                                "retry later with backoff"},
    [TETHER_MQTT_CONNACK_BAD_CREDENTIALS] = {"MQTT_CONNACK_BAD_CREDENTIALS",
                                             "the server refused the user name or password "
                                             "(CONNACK 4)",
                                             "check the user name form and the SAS token (key, "
                                             "resource, expiry)"},
    [TETHER_MQTT_CONNACK_NOT_AUTHORIZED] = {"MQTT_CONNACK_NOT_AUTHORIZED",
                                            "the server did not authorize this client (CONNACK 5)",
                                            "the identity is unknown or disabled there; for a "
                                            "hub, reprovision through DPS"},
    [TETHER_MQTT_CONNACK_TIMEOUT] = {"MQTT_CONNACK_TIMEOUT",
                                     "the server did not answer CONNECT in time",
                                     "check that the port is an MQTT port; allow more time"},
    [TETHER_MQTT_SUBSCRIBE_REFUSED] = {"MQTT_SUBSCRIBE_REFUSED",
                                       "the server refused a subscription (SUBACK 0x80)",
                                       "the client is not allowed that topic filter; check the "
                                       "broker's ACL"},
    [TETHER_MQTT_INFLIGHT_FULL] = {"MQTT_INFLIGHT_FULL",
                                   "too many QoS 1 messages await acknowledgement",
                                   "wait for PUBACKs (call the process loop) or give a larger "
                                   "in-flight store"},
    [TETHER_MQTT_KEEPALIVE_TIMEOUT] = {"MQTT_KEEPALIVE_TIMEOUT",
                                       "the server did not answer a ping: the link is dead",
                                       "reconnect; if it repeats, check the network path"},
    [TETHER_MQTT_NOT_CONNECTED] = {"MQTT_NOT_CONNECTED", "the MQTT client is not connected",
                                   "connect first, or reconnect after a failure"},
    [TETHER_MQTT_ACK_TIMEOUT] = {"MQTT_ACK_TIMEOUT", "the server did not acknowledge in time",
                                 "check the broker; messages stay queued for resend"},

    [TETHER_INVALID_REGISTRATION_ID] = {"INVALID_REGISTRATION_ID",
                                        "the registration id is not one DPS accepts",
                                        "use at most 128 letters, digits and - . _ : ending with "
                                        "a letter, a digit or -; with X.509 it is the "
                                        "certificate's CN"},
    [TETHER_INVALID_DEVICE_ID] = {"INVALID_DEVICE_ID",
                                  "the device or module id is not one IoT Hub accepts",
                                  "use at most 128 letters, digits and - . % _ * ? ! ( ) , : ; = @ "
                                  "$ ' (+ and # cannot travel in MQTT topics); it is "
                                  "case-sensitive"},
    [TETHER_INVALID_ID_SCOPE] = {"INVALID_ID_SCOPE",
                                 "the DPS ID scope is empty or not alphanumeric",
                                 "copy the ID scope (e.g. 0ne00ABCDEF) from the DPS overview "
                                 "page or from tether cloud"},
    [TETHER_DPS_MALFORMED_RESPONSE] = {"DPS_MALFORMED_RESPONSE",
                                       "a DPS response topic or payload is not in the form DPS "
                                       "sends",
                                       "the peer is not DPS or speaks another API version; check "
                                       "the endpoint and see the response in the details"},
    [TETHER_HUB_MALFORMED_TOPIC] = {"HUB_MALFORMED_TOPIC",
                                    "an IoT Hub message arrived on a topic tether cannot read",
                                    "the peer is not IoT Hub or uses another API version; see "
                                    "the topic in the details"},
    [TETHER_HUB_UNKNOWN_TOPIC] = {"HUB_UNKNOWN_TOPIC",
                                  "a message arrived on a topic that is not an IoT Hub device "
                                  "topic",
                                  "subscribe only to the hub's device topics; the message was "
                                  "not handled"},
    [TETHER_SAS_KEY_INVALID] = {"SAS_KEY_INVALID",
                                "the symmetric key is not valid base64 or has a wrong length",
                                "copy the primary key of the enrollment or device exactly (a "
                                "base64 string of 32 or 64 bytes, ending in =)"},
    [TETHER_JSON_MALFORMED] = {"JSON_MALFORMED", "a JSON text is not well-formed",
                               "check quotes, commas and brackets; the text must be one JSON "
                               "value in UTF-8"},
    [TETHER_JSON_TOO_DEEP] = {"JSON_TOO_DEEP", "a JSON text nests objects or arrays too deeply",
                              "flatten the document, or raise TETHER_JSON_MAX_DEPTH"},
    [TETHER_JSON_TOO_MANY_TOKENS] = {"JSON_TOO_MANY_TOKENS",
                                     "a JSON text has more values than the token array holds",
                                     "give a token array of at least the count reported as "
                                     "needed, or send a smaller document"},
    [TETHER_JSON_NOT_FOUND] = {"JSON_NOT_FOUND", "a JSON member is missing",
                               "check the member name and the document sent by the peer"},
    [TETHER_JSON_WRONG_TYPE] = {"JSON_WRONG_TYPE",
                                "a JSON value has another type or range than expected",
                                "check the document: e.g. a number was sent as a string"},
    [TETHER_URL_MALFORMED] = {"URL_MALFORMED", "a URL-encoded text has a bad percent-escape",
                              "every % must be followed by two hexadecimal digits"},

    [TETHER_STORE_EMPTY] = {"STORE_EMPTY", "no provisioning result is stored yet",
                            "nothing to fix: the device registers with DPS once"},
    [TETHER_STORE_CORRUPT] = {"STORE_CORRUPT",
                              "the stored provisioning result is damaged (bad format or "
                              "checksum)",
                              "it is treated as absent: the device registers with DPS again"},
    [TETHER_STORE_FOREIGN] = {"STORE_FOREIGN",
                              "the stored provisioning result belongs to another identity or "
                              "credentials",
                              "it is treated as absent: the device registers with DPS again"},
    [TETHER_STORE_WRITE_FAILED] = {"STORE_WRITE_FAILED",
                                   "the provisioning result could not be saved",
                                   "check that the state directory exists and is writable; the "
                                   "previous record, if any, is intact"},
    [TETHER_STORE_NOT_DURABLE] = {"STORE_NOT_DURABLE",
                                  "the new provisioning result is in place, but its directory "
                                  "could not be flushed to storage",
                                  "it is used now; a power cut before the storage flushes may "
                                  "bring back the previous record (or none): check the storage "
                                  "device (full, read-only, failing)"},

    [TETHER_CLOCK_NOT_SET] = {"CLOCK_NOT_SET",
                              "the clock is not set: it reads earlier than the date this tether "
                              "was built",
                              "sync time first (SNTP: tether time sync, or --sntp-server); "
                              "certificate dates and SAS expiry cannot be checked without it"},
    [TETHER_SNTP_BAD_REPLY] = {"SNTP_BAD_REPLY",
                               "the time server's reply is malformed or not an answer to our "
                               "request",
                               "check that the address is an NTP server (UDP port 123)"},
    [TETHER_SNTP_KISS_OF_DEATH] = {"SNTP_KISS_OF_DEATH",
                                   "the time server refused to answer (kiss-o'-death)",
                                   "ask less often, or use another server; the kiss code is in "
                                   "the details"},
    [TETHER_SNTP_UNSYNCHRONIZED] = {"SNTP_UNSYNCHRONIZED",
                                    "the time server does not know the time itself",
                                    "use a synchronised server (stratum 1-15, leap not 3)"},

    [TETHER_DPS_UNAUTHORIZED] = {"DPS_UNAUTHORIZED",
                                 "DPS did not accept this device's credentials (401)",
                                 "no enrollment for this registration id, a certificate CN that "
                                 "differs from the registration id, a chain DPS does not trust, or "
                                 "a wrong or expired SAS key; check the enrollment"},
    [TETHER_DPS_REQUEST_REFUSED] = {"DPS_REQUEST_REFUSED",
                                    "DPS refused the registration request (4xx)",
                                    "see the errorCode and message in the details; the request "
                                    "is not retried"},
    [TETHER_DPS_ASSIGNMENT_FAILED] = {"DPS_ASSIGNMENT_FAILED",
                                      "DPS could not assign this device to a hub",
                                      "check the enrollment's hubs and allocation policy; see the "
                                      "errorCode in the details"},
    [TETHER_DPS_ENROLLMENT_DISABLED] = {"DPS_ENROLLMENT_DISABLED",
                                        "the enrollment of this device is disabled",
                                        "enable the enrollment (provisioning status) in DPS"},
    [TETHER_DPS_DEADLINE_EXCEEDED] = {"DPS_DEADLINE_EXCEEDED",
                                      "provisioning did not finish within its deadline",
                                      "DPS kept answering assigning or throttling; allow more "
                                      "time, or look at the last status in the details"},
    [TETHER_HUB_IDENTITY_REFUSED] = {"HUB_IDENTITY_REFUSED",
                                     "the hub refused this device's identity (CONNACK 4 or 5)",
                                     "the device may have been moved or deleted: reprovision "
                                     "through DPS (tether register --force)"},
    [TETHER_HUB_UNREACHABLE] = {"HUB_UNREACHABLE",
                                "the hub could not be reached after repeated attempts",
                                "check the network and the assigned hub name; tether "
                                "reprovisions after this many failures"},
    [TETHER_HUB_QUEUE_FULL] = {"HUB_QUEUE_FULL",
                               "the outbound queue is full: the message was not accepted",
                               "let the session run (acknowledgements free the queue) or give it "
                               "more memory; nothing was dropped"},
    [TETHER_HUB_DROPPED_AFTER_CONNECT] = {"HUB_DROPPED_AFTER_CONNECT",
                                          "the hub keeps closing the connection right after "
                                          "accepting it",
                                          "another client may be using this device identity: "
                                          "the hub keeps one connection per device and drops "
                                          "the older one; give each device its own identity"},
    [TETHER_HUB_THROTTLED] = {"HUB_THROTTLED", "the hub throttled a request (429)",
                              "nothing to do: tether retries with backoff; if it persists, the "
                              "hub's operation quota is exhausted (tier, units)"},
    [TETHER_HUB_SERVER_ERROR] = {"HUB_SERVER_ERROR",
                                 "the hub answered a request with a server error (5xx)",
                                 "nothing to do: tether retries with backoff; if it persists, "
                                 "check the hub's health"},
    [TETHER_HUB_REQUEST_REFUSED] = {"HUB_REQUEST_REFUSED",
                                    "the hub refused a request (4xx other than 429)",
                                    "the request is not retried: check the status in the "
                                    "details (400: a malformed patch, 413: too large)"},

    [TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL] =
        {"TLS_FRAGMENT_LENGTH_TOO_SMALL",
         "the client's Certificate message exceeds the maximum fragment length asked for",
         "mbedTLS sends it in one record (the server answers record_overflow): ask for a "
         "larger fragment length, or none, or send a shorter chain"},
    [TETHER_TLS_SERVER_SIGNATURE_REJECTED] =
        {"TLS_SERVER_SIGNATURE_REJECTED",
         "the server signed its TLS 1.2 key exchange with RSA-PSS, which this mbedTLS refuses "
         "when the client also offers TLS 1.3",
         "offer TLS 1.2 only to this server (--tls12, or leave out --tls13: by default TLS 1.3 "
         "goes only to a hub's device host name); mbedTLS 3.6.6 has this fault, fixed upstream "
         "after it (Mbed-TLS/mbedtls#10674)"},
};

_Static_assert(sizeof table / sizeof table[0] == TETHER_STATUS_COUNT,
               "every tether_status has an entry in the status table");

static const status_entry *entry_of(tether_status status)
{
    if ((unsigned)status >= TETHER_STATUS_COUNT || table[status].name == NULL)
        return NULL;
    return &table[status];
}

const char *tether_status_name(tether_status status)
{
    const status_entry *e = entry_of(status);
    return e ? e->name : "UNKNOWN";
}

const char *tether_status_message(tether_status status)
{
    const status_entry *e = entry_of(status);
    return e ? e->message : "unknown status";
}

const char *tether_status_hint(tether_status status)
{
    const status_entry *e = entry_of(status);
    return e ? e->hint : "this is a bug in tether: report the number";
}

bool tether_status_is_transient(tether_status status)
{
    switch (status) {
    case TETHER_TIMEOUT:
    case TETHER_DNS_FAILED:
    case TETHER_CONNECT_REFUSED:
    case TETHER_CONNECT_TIMEOUT:
    case TETHER_NETWORK_UNREACHABLE:
    case TETHER_CONNECTION_CLOSED:
    case TETHER_CONNECTION_RESET:
    case TETHER_SOCKET_ERROR:
    case TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE:
    case TETHER_TLS_HANDSHAKE_TIMEOUT:
    case TETHER_MQTT_KEEPALIVE_TIMEOUT:
    case TETHER_MQTT_CONNACK_SERVER_UNAVAILABLE:
    case TETHER_MQTT_CONNACK_TIMEOUT:
    case TETHER_MQTT_ACK_TIMEOUT:
    case TETHER_MQTT_NOT_CONNECTED:
    case TETHER_HUB_THROTTLED:
    case TETHER_HUB_SERVER_ERROR:
        return true;
    default:
        return false;
    }
}

static int equals_ignore_case(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (toupper((unsigned char)*a) != toupper((unsigned char)*b))
            return 0;
    return *a == *b;
}

tether_status tether_status_from_name(const char *name, tether_status *out_status)
{
    if (name == NULL || out_status == NULL)
        return TETHER_INVALID_ARGUMENT;
    if (strncmp(name, "TETHER_", 7) == 0 || strncmp(name, "tether_", 7) == 0)
        name += 7;
    for (unsigned i = 0; i < TETHER_STATUS_COUNT; i++) {
        if (table[i].name && equals_ignore_case(name, table[i].name)) {
            *out_status = (tether_status)i;
            return TETHER_OK;
        }
    }
    return TETHER_INVALID_ARGUMENT;
}
