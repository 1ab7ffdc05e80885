/* mbedTLS facts in words: code splitting, alert names, verify flags, and the full
 * explanation of a failed connection (stage, cause, numbers, fix, raw code). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mbedtls/cipher.h"
#include "mbedtls/ecp.h"
#include "mbedtls/error.h"
#include "mbedtls/md.h"
#include "mbedtls/pem.h"
#include "mbedtls/platform_time.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/ssl.h"
#include "mbedtls/x509.h"

#include "tether/sntp.h"
#include "tether/tls.h"
#include "tls_internal.h"
#include "../core/format.h"

void tether_mbedtls_split(int code, int *out_high, int *out_low)
{
    int high = 0, low = 0;
    if (code < 0) {
        int magnitude = -code;
        /* mbedTLS adds a high-level code (0x1000..0x7F80) to a low-level one (0x0001..0x00FF,
         * and the 0x1000-free range of module codes): split them as mbedtls_strerror does. */
        high = -(magnitude & 0xFF80);
        low = -(magnitude & ~0xFF80);
        if (high > -0x1000 && high != 0) {
            /* Only low-level modules use this range: the whole code is low-level. */
            low = code;
            high = 0;
        }
    }
    if (out_high)
        *out_high = high;
    if (out_low)
        *out_low = low;
}

void tether_mbedtls_text(int code, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    mbedtls_strerror(code, buf, len);
}

bool tether_mbedtls_is_alloc_failure(int code)
{
    int high, low;
    tether_mbedtls_split(code, &high, &low);
    switch (high) {
    case MBEDTLS_ERR_SSL_ALLOC_FAILED:
    case MBEDTLS_ERR_X509_ALLOC_FAILED:
    case MBEDTLS_ERR_PK_ALLOC_FAILED:
    case MBEDTLS_ERR_CIPHER_ALLOC_FAILED:
    case MBEDTLS_ERR_MD_ALLOC_FAILED:
    case MBEDTLS_ERR_PEM_ALLOC_FAILED:
    case MBEDTLS_ERR_ECP_ALLOC_FAILED:
        return true;
    default:
        break;
    }
    return low == MBEDTLS_ERR_MPI_ALLOC_FAILED || low == MBEDTLS_ERR_ASN1_ALLOC_FAILED;
}

typedef struct named {
    int value;
    const char *name;
} named;

static const named alerts[] = {
    {0, "close_notify"},
    {10, "unexpected_message"},
    {20, "bad_record_mac"},
    {22, "record_overflow"},
    {40, "handshake_failure"},
    {42, "bad_certificate"},
    {43, "unsupported_certificate"},
    {44, "certificate_revoked"},
    {45, "certificate_expired"},
    {46, "certificate_unknown"},
    {47, "illegal_parameter"},
    {48, "unknown_ca"},
    {49, "access_denied"},
    {50, "decode_error"},
    {51, "decrypt_error"},
    {70, "protocol_version"},
    {71, "insufficient_security"},
    {80, "internal_error"},
    {86, "inappropriate_fallback"},
    {90, "user_canceled"},
    {109, "missing_extension"},
    {110, "unsupported_extension"},
    {112, "unrecognized_name"},
    {116, "certificate_required"},
    {120, "no_application_protocol"},
};

const char *tether_tls_alert_name(int alert)
{
    for (size_t i = 0; i < sizeof alerts / sizeof alerts[0]; i++)
        if (alerts[i].value == alert)
            return alerts[i].name;
    return NULL;
}

typedef struct flag_text {
    uint32_t flag;
    const char *name;
    const char *meaning;
} flag_text;

static const flag_text verify_flags[] = {
    {MBEDTLS_X509_BADCERT_EXPIRED, "EXPIRED", "a certificate's validity has ended"},
    {MBEDTLS_X509_BADCERT_REVOKED, "REVOKED", "a certificate is on a revocation list"},
    {MBEDTLS_X509_BADCERT_CN_MISMATCH, "CN_MISMATCH",
     "the certificate's names do not include the host name tether connected to"},
    {MBEDTLS_X509_BADCERT_NOT_TRUSTED, "NOT_TRUSTED",
     "the chain does not lead to any root in the trust store"},
    {MBEDTLS_X509_BADCRL_NOT_TRUSTED, "CRL_NOT_TRUSTED", "a revocation list is not trusted"},
    {MBEDTLS_X509_BADCRL_EXPIRED, "CRL_EXPIRED", "a revocation list has expired"},
    {MBEDTLS_X509_BADCERT_MISSING, "MISSING", "the server sent no certificate"},
    {MBEDTLS_X509_BADCERT_SKIP_VERIFY, "SKIP_VERIFY", "verification was skipped"},
    {MBEDTLS_X509_BADCERT_OTHER, "OTHER", "another reason (see the certificate)"},
    {MBEDTLS_X509_BADCERT_FUTURE, "FUTURE", "a certificate is not valid yet (is the clock set?)"},
    {MBEDTLS_X509_BADCRL_FUTURE, "CRL_FUTURE", "a revocation list is not valid yet"},
    {MBEDTLS_X509_BADCERT_KEY_USAGE, "KEY_USAGE", "key usage does not allow this use"},
    {MBEDTLS_X509_BADCERT_EXT_KEY_USAGE, "EXT_KEY_USAGE",
     "extended key usage does not allow server authentication"},
    {MBEDTLS_X509_BADCERT_NS_CERT_TYPE, "NS_CERT_TYPE", "Netscape certificate type mismatch"},
    {MBEDTLS_X509_BADCERT_BAD_MD, "BAD_MD", "signed with a hash this build does not accept"},
    {MBEDTLS_X509_BADCERT_BAD_PK, "BAD_PK", "a key algorithm this build does not accept"},
    {MBEDTLS_X509_BADCERT_BAD_KEY, "BAD_KEY", "a key too small for this build's profile"},
    {MBEDTLS_X509_BADCRL_BAD_MD, "CRL_BAD_MD", "a revocation list signed with a rejected hash"},
    {MBEDTLS_X509_BADCRL_BAD_PK, "CRL_BAD_PK", "a revocation list with a rejected key type"},
    {MBEDTLS_X509_BADCRL_BAD_KEY, "CRL_BAD_KEY", "a revocation list with a rejected key"},
};

size_t tether_tls_describe_verify_flags(uint32_t flags, char *buf, size_t len)
{
    size_t count = 0, used = 0;
    if (buf && len)
        buf[0] = 0;
    for (size_t i = 0; i < sizeof verify_flags / sizeof verify_flags[0]; i++) {
        if (!(flags & verify_flags[i].flag))
            continue;
        count++;
        if (buf && used < len) {
            int n = snprintf(buf + used, len - used, "  - %s: %s\n", verify_flags[i].name,
                             verify_flags[i].meaning);
            if (n > 0)
                used += (size_t)n;
        }
    }
    return count;
}

const char *tether_tls_stage_name(tether_tls_stage stage)
{
    switch (stage) {
    case TETHER_TLS_STAGE_TCP_CONNECT:
        return "TCP connect";
    case TETHER_TLS_STAGE_CLIENT_HELLO:
        return "ClientHello";
    case TETHER_TLS_STAGE_SERVER_HELLO:
        return "ServerHello";
    case TETHER_TLS_STAGE_SERVER_CERTIFICATE:
        return "server certificate";
    case TETHER_TLS_STAGE_CLIENT_CERTIFICATE:
        return "client certificate";
    case TETHER_TLS_STAGE_KEY_EXCHANGE:
        return "key exchange";
    case TETHER_TLS_STAGE_FINISHED:
        return "Finished";
    case TETHER_TLS_STAGE_CONNECTED:
        return "connected";
    default:
        return "not started";
    }
}

/* Appends to a bounded buffer; output is cut, never overrun. */
typedef struct text {
    char *buf;
    size_t len, used;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    if (t->used >= t->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        t->used += (size_t)n < t->len - t->used ? (size_t)n : t->len - t->used - 1;
}

static void format_utc(int64_t unix_s, char *buf, size_t len)
{
    mbedtls_time_t t = (mbedtls_time_t)unix_s;
    struct tm tm;
    char digits[TETHER_I64_DIGITS];
    if (mbedtls_platform_gmtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        /* Out of gmtime's range: the number of seconds as it is. */
        tether_format_i64(unix_s, digits);
        size_t n = strlen(digits) < len - 1 ? strlen(digits) : len - 1;
        memcpy(buf, digits, n);
        buf[n] = 0;
    }
}

void tether_tls_describe(const tether_tls_diag *d, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return;
    text t = {buf, len, 0};
    buf[0] = 0;
    add(&t, "error %s", tether_status_name(d->status));
    if (d->status == TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL && d->stage == TETHER_TLS_STAGE_NONE)
        add(&t, " before connecting");
    if (d->stage >= TETHER_TLS_STAGE_TCP_CONNECT && d->stage <= TETHER_TLS_STAGE_FINISHED &&
        d->status != TETHER_CLOCK_NOT_SET)
        add(&t, " during the TLS handshake (%s, stage %d of %d)", tether_tls_stage_name(d->stage),
            (int)d->stage, TETHER_TLS_STAGE_COUNT);
    add(&t, "\n  %s\n", tether_status_message(d->status));

    switch (d->status) {
    case TETHER_TLS_CERT_CHAIN_TOO_LARGE:
        add(&t,
            "  your certificate chain makes a %lu-byte Certificate message; this build's TLS "
            "output buffer holds %lu (MBEDTLS_SSL_OUT_CONTENT_LEN). The server never saw your "
            "certificate.\n",
            (unsigned long)d->needed, (unsigned long)d->available);
        add(&t,
            "  fix: send a shorter chain, or build with an output buffer of at least %lu "
            "bytes (profile desktop)\n",
            (unsigned long)((d->needed + 511) / 512 * 512));
        break;
    case TETHER_TLS_PEER_CLOSED_IN_HANDSHAKE:
        if (d->stage <= TETHER_TLS_STAGE_SERVER_HELLO)
            add(&t,
                "  the server closed right after the ClientHello (%lu bytes sent, %lu "
                "received): it accepted nothing offered (TLS version, cipher suites, SNI "
                "name), or something between drops TLS\n",
                (unsigned long)d->bytes_sent, (unsigned long)d->bytes_received);
        else
            add(&t,
                "  the server closed after %lu bytes sent and %lu received, past the %s: "
                "most often it rejected the client certificate\n",
                (unsigned long)d->bytes_sent, (unsigned long)d->bytes_received,
                tether_tls_stage_name(d->stage));
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    case TETHER_TLS_ALLOC_FAILED:
        add(&t, "  mbedTLS asked for %lu bytes with %lu in use (peak %lu)",
            (unsigned long)d->heap_request, (unsigned long)d->heap_at_failure,
            (unsigned long)d->heap_peak);
        if (d->heap_cap)
            add(&t, " under a heap limit of %lu bytes", (unsigned long)d->heap_cap);
        add(&t, "\n  fix: %s\n", tether_status_hint(d->status));
        break;
    case TETHER_TLS_SERVER_CERT_UNTRUSTED:
    case TETHER_TLS_SERVER_CERT_EXPIRED:
    case TETHER_TLS_SERVER_CERT_NOT_YET_VALID:
    case TETHER_TLS_HOSTNAME_MISMATCH: {
        char flags[1024];
        tether_tls_describe_verify_flags(d->verify_flags, flags, sizeof flags);
        add(&t, "  verification flags 0x%08x:\n%s", (unsigned)d->verify_flags, flags);
        if (d->server_subject[0])
            add(&t, "  server certificate: %s\n", d->server_subject);
        if (d->server_issuer[0])
            add(&t, "  issued by: %s\n", d->server_issuer);
        if (d->trusted_roots[0])
            add(&t, "  trusted roots: %s\n", d->trusted_roots);
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    }
    case TETHER_CLOCK_NOT_SET: {
        char now[32], floor[32];
        format_utc(d->clock_s, now, sizeof now);
        format_utc(tether_clock_floor(), floor, sizeof floor);
        add(&t, "  the clock reads %s; this tether was built on %s, so the clock was never set\n",
            now, floor);
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    }
    case TETHER_TLS_RECORD_TOO_LARGE:
        add(&t, "  the server sent a %lu-byte record; the input buffer holds %lu\n",
            (unsigned long)d->needed, (unsigned long)d->available);
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    case TETHER_TLS_SERVER_SIGNATURE_REJECTED: {
        static const char *const pss[] = {"rsa_pss_rsae_sha256", "rsa_pss_rsae_sha384",
                                          "rsa_pss_rsae_sha512"};
        unsigned low = d->server_sig_alg & 0xffu;
        add(&t,
            "  the server chose TLS 1.2 and signed its ServerKeyExchange with %s (0x%04x), which "
            "the client listed because it also offered TLS 1.3\n",
            low >= 4 && low <= 6 ? pss[low - 4] : "an RSA-PSS scheme", (unsigned)d->server_sig_alg);
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    }
    case TETHER_TLS_FRAGMENT_LENGTH_TOO_SMALL: {
        /* The words name the message, the numbers and mbedTLS's limit: the fix follows. */
        const char *what = d->handshake_type == MBEDTLS_SSL_HS_CERTIFICATE_VERIFY
                               ? "CertificateVerify"
                               : "Certificate";
        if (d->alert >= 0)
            add(&t,
                "  the server accepted the %zu-byte maximum fragment length, got your %zu-byte "
                "%s message in one record and answered record_overflow\n",
                d->available, d->needed, what);
        else
            add(&t,
                "  your %s message is %zu bytes; the maximum fragment length asked for is %zu "
                "bytes. Nothing was sent.\n",
                what, d->needed, d->available);
        size_t fits = 0;
        for (size_t v = 512; v <= 4096; v *= 2)
            if (fits == 0 && v >= d->needed && v <= MBEDTLS_SSL_IN_CONTENT_LEN &&
                v <= MBEDTLS_SSL_OUT_CONTENT_LEN)
                fits = v;
        add(&t, "  mbedTLS 3.6 cannot split a handshake message it sends\n  fix: ");
        if (fits)
            add(&t, "--max-fragment %zu, or ", fits);
        else if (MBEDTLS_SSL_IN_CONTENT_LEN >= 16384) /* the server's 16 KB records fit */
            add(&t, "--max-fragment none, or ");
        add(&t, "a shorter chain\n");
        break;
    }
    case TETHER_TLS_HANDSHAKE_MESSAGE_TOO_LARGE:
        add(&t,
            "  the server's handshake message (its certificate chain, at this stage) is %lu "
            "bytes; this build's input buffer holds %lu\n",
            (unsigned long)d->needed, (unsigned long)d->available);
        add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    default:
        if (d->status != TETHER_OK)
            add(&t, "  fix: %s\n", tether_status_hint(d->status));
        break;
    }
    if (d->alert >= 0) {
        const char *name = tether_tls_alert_name(d->alert);
        add(&t, "  TLS alert from the server: %s (%d)\n", name ? name : "unknown", d->alert);
    }
    if (d->sys_errno)
        add(&t, "  system error: %s (errno %d)\n", strerror(d->sys_errno), d->sys_errno);
    if (d->mbedtls_code) {
        char raw[128];
        tether_mbedtls_text(d->mbedtls_code, raw, sizeof raw);
        add(&t, "  mbedTLS: -0x%04X %s\n", (unsigned)-d->mbedtls_code, raw);
    }
    if (d->status != TETHER_OK && d->heap_peak > 0)
        add(&t, "  heap: %lu bytes in use, peak %lu\n", (unsigned long)d->heap_in_use,
            (unsigned long)d->heap_peak);
}
