#include "x509util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

static void to_hex(const unsigned char *d, unsigned n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

int tc_x509_thumbprints(X509 *cert, char sha1[41], char sha256[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (X509_digest(cert, EVP_sha1(), md, &n) != 1 || n != 20) {
        return -1;
    }
    to_hex(md, n, sha1);
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1 || n != 32) {
        return -1;
    }
    to_hex(md, n, sha256);
    return 0;
}

int tc_x509_cn(X509 *cert, char *out, size_t size)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) {
        return -1;
    }
    ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char *utf8 = NULL;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) {
        return -1;
    }
    int rc = -1;
    if ((size_t)len < size && memchr(utf8, '\0', (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        out[len] = '\0';
        rc = 0;
    }
    OPENSSL_free(utf8);
    return rc;
}

X509 *tc_x509_from_pem(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert = NULL;
    if (bio != NULL) {
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    return cert;
}

int tc_x509_check_time(X509 *cert)
{
    if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        return -1;
    }
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        return -1;
    }
    return 0;
}

int tc_x509_verify_to(X509 *leaf, STACK_OF(X509) * untrusted, const char *ca_pem, char *err_text,
                      size_t err_size)
{
    int rc = -1;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = NULL;
    int added = 0;
    snprintf(err_text, err_size, "internal error");
    if (store == NULL || ctx == NULL || bio == NULL) {
        goto done;
    }
    while ((ca = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_cert(store, ca);
        X509_free(ca);
        added++;
    }
    if (added == 0) {
        snprintf(err_text, err_size, "no CA certificate stored");
        goto done;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        goto done;
    }
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx) == 1) {
        rc = 0;
        snprintf(err_text, err_size, "ok");
    } else {
        rc = X509_STORE_CTX_get_error(ctx);
        if (rc <= 0) {
            rc = -1;
        }
        snprintf(err_text, err_size, "%s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
done:
    BIO_free(bio);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

void tc_thumbprint_normalise(const char *in, char *out, size_t size)
{
    size_t n = 0;
    if (size == 0) {
        return;
    }
    for (; *in != '\0' && n + 1 < size; in++) {
        if (*in == ':' || *in == ' ') {
            continue;
        }
        out[n++] = (char)toupper((unsigned char)*in);
    }
    out[n] = '\0';
}
