/* tether pki: a root CA, an intermediate CA, the cloud's server certificate, and device
 * certificates, all with OpenSSL. Files (PEM) in D/pki and D/devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli.h"
#include "parse.h"
#include "registry.h"
#include "util.h"
#include "x509util.h"

static const char pki_usage[] =
    "usage: tether pki init [--dir D] [--force] [--json]\n"
    "       tether pki device REGISTRATION_ID [--dir D] [--key ec-p256|ec-p384|rsa2048|rsa4096]\n"
    "                         [--issuer root|intermediate|self] [--days N] [--json]\n"
    "\n"
    "init    makes the root CAs, an intermediate CA and the cloud's server certificate\n"
    "        (SAN localhost, global.azure-devices-provisioning.net, 127.0.0.1, ::1 and\n"
    "        every hub host name; shaped as `tether cloud up --server-shape` says) in D/pki.\n"
    "        Devices trust D/pki/ca.pem (every shape's root; one at a time: root.pem,\n"
    "        azure-rsa-root.pem, azure-ecc-root.pem).\n"
    "device  issues a device certificate with CN = REGISTRATION_ID (default issuer:\n"
    "        intermediate; 'self' makes a self-signed one for thumbprint enrollments) and\n"
    "        writes D/devices/ID.key, ID.pem and ID.chain.pem (leaf first, then the\n"
    "        intermediate: the chain a device sends).\n"
    "Default D: ./.tether\n";

static EVP_PKEY *make_key(const char *kind)
{
    if (kind == NULL || strcmp(kind, "ec-p256") == 0) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    }
    if (strcmp(kind, "ec-p384") == 0) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    }
    if (strcmp(kind, "rsa2048") == 0) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    }
    if (strcmp(kind, "rsa4096") == 0) {
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
    }
    return NULL;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        return -1;
    }
    int rc = X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
    X509_EXTENSION_free(ext);
    return rc;
}

enum cert_role { ROLE_ROOT, ROLE_INTERMEDIATE, ROLE_SERVER, ROLE_DEVICE };

/* issuer == NULL: self-signed. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, enum cert_role role, X509 *issuer,
                       EVP_PKEY *issuer_key, long days, const char *san)
{
    X509 *cert = X509_new();
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_set_version(cert, 2);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), days * 86400L);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               (const unsigned char *)"tether local cloud", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer != NULL ? issuer : cert;
    add_ext(cert, signer, NID_subject_key_identifier, "hash");
    add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
    switch (role) {
    case ROLE_ROOT:
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
        break;
    case ROLE_INTERMEDIATE:
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
        break;
    case ROLE_SERVER:
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(cert, signer, NID_ext_key_usage, "serverAuth");
        add_ext(cert, signer, NID_subject_alt_name, san);
        break;
    case ROLE_DEVICE:
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        add_ext(cert, signer, NID_ext_key_usage, "clientAuth");
        break;
    }
    if (X509_sign(cert, issuer_key != NULL ? issuer_key : key, EVP_sha256()) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

static int write_pem(const char *path, EVP_PKEY *key, X509 *c1, X509 *c2)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (key != NULL) {
        PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    }
    if (c1 != NULL) {
        PEM_write_bio_X509(bio, c1);
    }
    if (c2 != NULL) {
        PEM_write_bio_X509(bio, c2);
    }
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    int rc = tc_write_file(path, data, (size_t)len, key != NULL ? 0600 : 0644);
    BIO_free(bio);
    if (rc != 0) {
        return fail("cannot write %s", path);
    }
    return 0;
}

static EVP_PKEY *read_key(const char *path)
{
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    return k;
}

static X509 *read_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *c = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) {
        fclose(f);
    }
    return c;
}

static void path_of(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/pki/%s", dir, name);
}

/* ---- server shapes ---------------------------------------------------------------------
 * The chain the cloud presents, shaped like the one a device meets on Azure (cloud/README.md,
 * "Server shapes", gives the sources). What costs a device memory is reproduced: key types
 * and sizes, signature hashes, the extensions a public CA puts in, and the DER size of each
 * certificate (the leaf's SAN list is padded with names under .invalid until the leaf is as
 * large as Azure's; a CA's CRL URL likewise). Only the names of the CAs differ. */

struct shape_cert {
    const char *key;    /* make_key kind */
    const char *cn;     /* subject CN */
    const char *digest; /* the issuer's signature hash */
    int der_size;       /* at least this many DER bytes (0: as built) */
};

struct shape {
    const char *name;
    struct shape_cert root, intermediate, leaf;
    /* The leaf names each hub's device host name {hub}.device.{suffix} (TLS 1.3). Not
     * azure-ecc: its leaf is not padded to a known size, so every name adds to the record a
     * device must hold (35 B more would end minimal's fit in 2,048 B), and at Azure the device
     * endpoint and the ECC certificate are separate previews. */
    bool device_hosts;
};

/* Sizes: DigiCert Global Root G2 is 914 B DER (RSA-2048, sha256WithRSA), G3 579 B (P-384,
 * ecdsa-with-SHA384); Azure's RSA DPS/hub leaf 1,875 B and its Microsoft Azure RSA TLS
 * issuing CA (RSA-4096, sha384WithRSA) 1,509 B: a 3,397-byte Certificate message. The ECC
 * chain's CA and leaf are not padded: their size follows from the same extensions and names. */
static const struct shape shapes[] = {
    {"azure-rsa",
     {"rsa2048", "tether G2 shape", "sha256", 914},
     {"rsa4096", "tether Azure RSA TLS Issuing CA (shape)", "sha384", 1509},
     {"rsa2048", "global.azure-devices-provisioning.net", "sha384", 1875},
     true},
    {"azure-ecc",
     {"ec-p384", "tether G3 shape", "sha384", 579},
     {"ec-p384", "tether Azure ECC TLS Issuing CA (shape)", "sha384", 0},
     {"ec-p384", "global.azure-devices-provisioning.net", "sha384", 0},
     false},
    {"compact",
     {NULL, NULL, NULL, 0},
     {NULL, NULL, NULL, 0},
     {"ec-p256", "localhost", "sha256", 0},
     true},
};

static const struct shape *shape_find(const char *name)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (name != NULL && strcmp(shapes[i].name, name) == 0) {
            return &shapes[i];
        }
    }
    return NULL;
}

bool pki_shape_valid(const char *name)
{
    return shape_find(name) != NULL;
}

bool pki_shape_names_device_hosts(const char *name)
{
    const struct shape *sh = shape_find(name);
    return (sh != NULL ? sh : &shapes[0])->device_hosts;
}

/* An extension given as its OID and the DER of its value (the SCT list's size, for one). */
static int add_raw_ext(X509 *cert, const char *oid, const unsigned char *der, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    int rc = -1;
    if (obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, len) == 1) {
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        rc = ext != NULL && X509_add_ext(cert, ext, -1) == 1 ? 0 : -1;
        X509_EXTENSION_free(ext);
    }
    ASN1_OBJECT_free(obj);
    ASN1_OCTET_STRING_free(os);
    return rc;
}

/* Names under .invalid (RFC 6761: never resolve) adding about `bytes` DER bytes to a SAN. */
static void pad_names(char *san, size_t cap, size_t bytes)
{
    for (int i = 0; bytes > 0; i++) {
        char name[64];
        /* the last name takes what is left (a name is at least 17 characters) */
        size_t want = bytes <= 64 ? bytes - 2 : (bytes < 48 + 19 ? bytes / 2 - 2 : 46);
        char label[48];
        int l = snprintf(label, sizeof label, "p%02d", i);
        while ((size_t)l + 14 < want && (size_t)l + 1 < sizeof label) {
            label[l++] = 'x';
        }
        label[l] = '\0';
        int n = snprintf(name, sizeof name, "%s.shape.invalid", label);
        if (strlen(san) + (size_t)n + 8 >= cap) {
            return;
        }
        strcat(san, ",DNS:");
        strcat(san, name);
        bytes = bytes > (size_t)n + 2 ? bytes - ((size_t)n + 2) : 0;
    }
}

static X509 *build_shaped(EVP_PKEY *key, const struct shape_cert *sc, enum cert_role role,
                          X509 *issuer, EVP_PKEY *issuer_key, const char *san, size_t pad)
{
    X509 *cert = X509_new();
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x01);
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    X509_set_version(cert, 2);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), (role == ROLE_SERVER ? 365L : 3650L) * 86400L);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_UTF8, (const unsigned char *)"US", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               (const unsigned char *)"tether local cloud", -1, -1, 0);
    if (role == ROLE_ROOT) {
        X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                                   (const unsigned char *)"www.tether.invalid", -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)sc->cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name);
    X509 *signer = issuer != NULL ? issuer : cert;
    char text[4096];
    add_ext(cert, signer, NID_subject_key_identifier, "hash");
    if (role == ROLE_ROOT) {
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    } else {
        add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
        add_ext(cert, signer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(cert, signer, NID_info_access,
                "OCSP;URI:http://ocsp.tether.invalid,caIssuers;URI:http://cacerts.tether.invalid/"
                "tether-shape-issuing-ca.crt");
        snprintf(
            text, sizeof text, "URI:http://crl.tether.invalid/%s-%.*s.crl",
            role == ROLE_SERVER ? "issuing-ca" : "global-root",
            (int)(role == ROLE_SERVER ? 0 : (pad < 2000 ? pad : 2000)),
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
            "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        add_ext(cert, signer, NID_crl_distribution_points, text);
        add_ext(cert, signer, NID_certificate_policies, "2.23.140.1.2.1,2.23.140.1.2.2");
    }
    if (role == ROLE_INTERMEDIATE) {
        add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    }
    if (role == ROLE_SERVER) {
        add_ext(cert, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
        /* Embedded signed certificate timestamps (RFC 6962): public leaves carry two or three
         * of about 120 B; the bytes are opaque to a device but it must hold them. */
        unsigned char body[4 + 240];
        memset(body, 0x5c, sizeof body);
        body[0] = 0x04;
        body[1] = 0x82;
        body[2] = (unsigned char)((sizeof body - 4) >> 8);
        body[3] = (unsigned char)((sizeof body - 4) & 0xff);
        add_raw_ext(cert, "1.3.6.1.4.1.11129.2.4.2", body, (int)sizeof body);
        size_t cap = strlen(san) + pad + 4096;
        char *names = malloc(cap);
        snprintf(names, cap, "%s", san);
        pad_names(names, cap, pad);
        add_ext(cert, signer, NID_subject_alt_name, names);
        free(names);
    }
    const EVP_MD *md = EVP_get_digestbyname(sc->digest);
    if (X509_sign(cert, issuer_key != NULL ? issuer_key : key, md) <= 0) {
        X509_free(cert);
        return NULL;
    }
    return cert;
}

/* A certificate of the shape's size: built once, then again with the shortfall padded. */
static X509 *make_shaped(EVP_PKEY *key, const struct shape_cert *sc, enum cert_role role,
                         X509 *issuer, EVP_PKEY *issuer_key, const char *san)
{
    size_t pad = 0;
    X509 *best = NULL;
    for (int i = 0; i < 6; i++) {
        X509 *c = build_shaped(key, sc, role, issuer, issuer_key, san, pad);
        int len = c != NULL ? i2d_X509(c, NULL) : -1;
        if (c == NULL || len == sc->der_size || sc->der_size == 0) {
            X509_free(best);
            return c;
        }
        if (len > sc->der_size) {
            /* over by a few bytes of DER length encoding: keep it, try a little less */
            X509_free(best);
            best = c;
            size_t over = (size_t)(len - sc->der_size);
            if (pad < over) {
                break;
            }
            pad -= over;
        } else {
            X509_free(c);
            pad += (size_t)(sc->der_size - len);
        }
    }
    return best;
}

/* SAN text for the server certificate: the names devices dial (DPS as localhost or as
 * Azure's global DPS name, which unmodified samples hard-code) plus every hub host and, where
 * the shape has them, their device host names. */
static char *server_san(sqlite3 *db, const struct shape *sh)
{
    size_t cap = 256;
    char *san = malloc(cap);
    snprintf(san, cap,
             "DNS:localhost,DNS:global.azure-devices-provisioning.net,IP:127.0.0.1,"
             "IP:::1");
    cJSON *hubs = db != NULL ? tc_reg_rows(db, "SELECT host FROM hubs ORDER BY name", NULL) : NULL;
    cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        /* The hub's host name and its device host name, {hub}.device.{suffix}, where Azure
         * (and the TLS shim) offer TLS 1.3 (PROTOCOL.md, "TLS"). */
        const char *host = tc_row_str(h, "host");
        char device[300];
        device[0] = '\0';
        if (sh->device_hosts) {
            tc_device_host_of(host, device, sizeof device);
        }
        size_t need = strlen(san) + strlen(host) + strlen(device) + 16;
        if (need > cap) {
            cap = need * 2;
            san = realloc(san, cap);
        }
        size_t at = strlen(san);
        snprintf(san + at, cap - at, ",DNS:%s%s%s", host, device[0] ? ",DNS:" : "", device);
    }
    cJSON_Delete(hubs);
    return san;
}

/* D/pki/NAME-FILE for a shape (compact keeps the original file names). */
static void shape_path(char *out, size_t size, const char *dir, const struct shape *sh,
                       const char *file)
{
    if (strcmp(sh->name, "compact") == 0) {
        snprintf(out, size, "%s/pki/%s%s", dir, strncmp(file, "server", 6) == 0 ? "compact-" : "",
                 file);
    } else {
        snprintf(out, size, "%s/pki/%s-%s", dir, sh->name, file);
    }
}

static int shape_read(const char *dir, const struct shape *sh, const char *what, EVP_PKEY **key,
                      X509 **cert)
{
    char p[4096];
    char f[64];
    snprintf(f, sizeof f, "%s.key", what);
    shape_path(p, sizeof p, dir, sh, f);
    *key = read_key(p);
    snprintf(f, sizeof f, "%s.pem", what);
    shape_path(p, sizeof p, dir, sh, f);
    *cert = read_cert(p);
    return *key != NULL && *cert != NULL ? 0 : -1;
}

static int shape_write(const char *dir, const struct shape *sh, const char *what, EVP_PKEY *key,
                       X509 *c1, X509 *c2)
{
    char p[4096];
    char f[64];
    snprintf(f, sizeof f, "%s.key", what);
    shape_path(p, sizeof p, dir, sh, f);
    int rc = write_pem(p, key, NULL, NULL);
    snprintf(f, sizeof f, "%s.pem", what);
    shape_path(p, sizeof p, dir, sh, f);
    return rc | write_pem(p, NULL, c1, c2);
}

/* A shape's root (made with the PKI: devices trust every shape's root, ca.pem). */
static int shape_make_root(const char *dir, const struct shape *sh)
{
    EVP_PKEY *key = make_key(sh->root.key);
    X509 *cert = key != NULL ? make_shaped(key, &sh->root, ROLE_ROOT, NULL, NULL, NULL) : NULL;
    int rc = cert != NULL ? shape_write(dir, sh, "root", key, cert, NULL) : 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* The shape's issuing CA, made the first time the shape is used (an RSA-4096 key takes a
 * second or more). */
static int shape_ensure_intermediate(const char *dir, const struct shape *sh)
{
    EVP_PKEY *ikey = NULL;
    X509 *icert = NULL;
    if (shape_read(dir, sh, "intermediate", &ikey, &icert) == 0) {
        EVP_PKEY_free(ikey);
        X509_free(icert);
        return 0;
    }
    EVP_PKEY_free(ikey);
    X509_free(icert);
    EVP_PKEY *rkey = NULL;
    X509 *root = NULL;
    int rc = 1;
    if (shape_read(dir, sh, "root", &rkey, &root) == 0) {
        ikey = make_key(sh->intermediate.key);
        icert = make_shaped(ikey, &sh->intermediate, ROLE_INTERMEDIATE, root, rkey, NULL);
        rc = icert != NULL ? shape_write(dir, sh, "intermediate", ikey, icert, NULL) : 1;
        EVP_PKEY_free(ikey);
        X509_free(icert);
    } else {
        fail("the %s root in %s/pki is missing (remake the PKI: tether pki init --force)", sh->name,
             dir);
    }
    EVP_PKEY_free(rkey);
    X509_free(root);
    return rc;
}

static int issue_server(const char *dir, sqlite3 *db, const struct shape *sh)
{
    if (shape_ensure_intermediate(dir, sh) != 0) {
        return 1;
    }
    EVP_PKEY *ikey = NULL;
    X509 *icert = NULL;
    int rc = 1;
    if (shape_read(dir, sh, "intermediate", &ikey, &icert) != 0) {
        fail("the %s issuing CA in %s/pki is missing or unreadable", sh->name, dir);
        goto done;
    }
    char *san = server_san(db, sh);
    EVP_PKEY *key = make_key(sh->leaf.key);
    X509 *cert = strcmp(sh->name, "compact") == 0
                     ? make_cert(key, sh->leaf.cn, ROLE_SERVER, icert, ikey, 825, san)
                     : make_shaped(key, &sh->leaf, ROLE_SERVER, icert, ikey, san);
    free(san);
    if (cert != NULL) {
        rc = shape_write(dir, sh, "server", key, cert, icert); /* leaf, then issuing CA */
    }
    X509_free(cert);
    EVP_PKEY_free(key);
done:
    EVP_PKEY_free(ikey);
    X509_free(icert);
    return rc;
}

static const char *const root_files[] = {"root.pem", "azure-rsa-root.pem", "azure-ecc-root.pem"};

int pki_ensure(const char *dir, bool quiet)
{
    char p[4096];
    char root_pem[4096];
    path_of(root_pem, sizeof root_pem, dir, "ca.pem");
    if (access(root_pem, R_OK) == 0) {
        return 0;
    }
    if (ensure_dir(dir) != 0) {
        return 1;
    }
    snprintf(p, sizeof p, "%s/pki", dir);
    if (ensure_dir(p) != 0) {
        return 1;
    }
    /* The compact shape's root and CA also issue device certificates (tether pki device). */
    EVP_PKEY *rkey = make_key("ec-p384");
    X509 *root = make_cert(rkey, "tether local cloud root CA", ROLE_ROOT, NULL, NULL, 3650, NULL);
    EVP_PKEY *ikey = make_key("ec-p256");
    X509 *inter = make_cert(ikey, "tether local cloud intermediate CA", ROLE_INTERMEDIATE, root,
                            rkey, 3650, NULL);
    int rc = root == NULL || inter == NULL;
    if (!rc) {
        path_of(p, sizeof p, dir, "root.key");
        rc |= write_pem(p, rkey, NULL, NULL);
        path_of(p, sizeof p, dir, "root.pem");
        rc |= write_pem(p, NULL, root, NULL);
        path_of(p, sizeof p, dir, "intermediate.key");
        rc |= write_pem(p, ikey, NULL, NULL);
        path_of(p, sizeof p, dir, "intermediate.pem");
        rc |= write_pem(p, NULL, inter, NULL);
    }
    X509_free(root);
    X509_free(inter);
    EVP_PKEY_free(rkey);
    EVP_PKEY_free(ikey);
    for (size_t i = 0; rc == 0 && i < sizeof shapes / sizeof shapes[0]; i++) {
        if (shapes[i].root.key != NULL) {
            rc = shape_make_root(dir, &shapes[i]);
        }
    }
    if (rc == 0) {
        /* ca.pem last: its presence means the PKI is complete. Devices trust every shape's
         * root, as Azure devices trust G2 and G3 (and Microsoft's roots) together; the roots
         * one at a time are in D/pki/root.pem and D/pki/azure-{rsa,ecc}-root.pem. */
        size_t total = 0;
        char *bundle = NULL;
        for (size_t i = 0; rc == 0 && i < sizeof root_files / sizeof root_files[0]; i++) {
            char src[4096];
            path_of(src, sizeof src, dir, root_files[i]);
            size_t len = 0;
            char *data = tc_read_file(src, &len);
            char *grown = data != NULL ? realloc(bundle, total + len + 1) : NULL;
            if (grown == NULL) {
                rc = 1;
            } else {
                bundle = grown;
                memcpy(bundle + total, data, len);
                total += len;
            }
            free(data);
        }
        rc = rc != 0 || tc_write_file(root_pem, bundle, total, 0644) != 0;
        free(bundle);
    }
    if (rc == 0 && !quiet) {
        printf("made a PKI in %s/pki: root CAs, intermediate CA, server certificate\n", dir);
    }
    return rc;
}

/* The shape the cloud presents: registry meta server_shape, default azure-rsa. */
static const struct shape *shape_in_use(sqlite3 *db)
{
    char *name = db != NULL ? tc_reg_meta_get(db, "server_shape") : NULL;
    const struct shape *sh = shape_find(name);
    free(name);
    return sh != NULL ? sh : &shapes[0];
}

/* Copy src to dst unless they already hold the same bytes. 1 if copied, 0 same, -1 error. */
static int copy_if_changed(const char *src, const char *dst, unsigned mode)
{
    size_t a_len = 0;
    size_t b_len = 0;
    char *a = tc_read_file(src, &a_len);
    char *b = tc_read_file(dst, &b_len);
    int rc = a == NULL ? -1 : 0;
    if (a != NULL && (b == NULL || a_len != b_len || memcmp(a, b, a_len) != 0)) {
        rc = tc_write_file(dst, a, a_len, mode) == 0 ? 1 : -1;
    }
    free(a);
    free(b);
    return rc;
}

int pki_server_sync(const char *dir, sqlite3 *db)
{
    const struct shape *sh = shape_in_use(db);
    char p[4096];
    shape_path(p, sizeof p, dir, sh, "server.pem");
    X509 *cert = read_cert(p);
    int missing = cert == NULL;
    cJSON *hubs = db != NULL ? tc_reg_rows(db, "SELECT host FROM hubs", NULL) : NULL;
    cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        const char *host = tc_row_str(h, "host");
        char device[300] = "";
        if (sh->device_hosts) {
            tc_device_host_of(host, device, sizeof device);
        }
        if (cert != NULL &&
            (X509_check_host(cert, host, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1 ||
             (device[0] != '\0' &&
              X509_check_host(cert, device, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1))) {
            missing = 1;
        }
    }
    cJSON_Delete(hubs);
    X509_free(cert);
    if (missing && issue_server(dir, db, sh) != 0) {
        return -1;
    }
    char dst[4096];
    shape_path(p, sizeof p, dir, sh, "server.key");
    path_of(dst, sizeof dst, dir, "server.key");
    int k = copy_if_changed(p, dst, 0600);
    shape_path(p, sizeof p, dir, sh, "server.pem");
    path_of(dst, sizeof dst, dir, "server.pem");
    int c = copy_if_changed(p, dst, 0644);
    if (k < 0 || c < 0) {
        return -1;
    }
    return missing || k > 0 || c > 0 ? 1 : 0;
}

static int pki_device(const char *dir, const char *reg_id, const char *key_kind,
                      const char *issuer_name, long days, bool json)
{
    char p[4096];
    if (!tc_registration_id_valid(reg_id) || strlen(reg_id) > 64) {
        return fail("'%s' is not a valid registration id for a certificate CN (1..64 of letters,"
                    " digits, - . _ :, ending in a letter, digit or -)",
                    reg_id);
    }
    if (pki_ensure(dir, true) != 0) {
        return 1;
    }
    const char *issuer = issuer_name != NULL ? issuer_name : "intermediate";
    EVP_PKEY *key = make_key(key_kind);
    if (key == NULL) {
        return fail("unknown key type '%s' (ec-p256, ec-p384, rsa2048, rsa4096)", key_kind);
    }
    EVP_PKEY *ikey = NULL;
    X509 *icert = NULL;
    if (strcmp(issuer, "root") == 0 || strcmp(issuer, "intermediate") == 0) {
        snprintf(p, sizeof p, "%s/pki/%s.key", dir, issuer);
        ikey = read_key(p);
        snprintf(p, sizeof p, "%s/pki/%s.pem", dir, issuer);
        icert = read_cert(p);
        if (ikey == NULL || icert == NULL) {
            EVP_PKEY_free(key);
            return fail("cannot read the %s CA in %s/pki", issuer, dir);
        }
    } else if (strcmp(issuer, "self") != 0) {
        EVP_PKEY_free(key);
        return fail("unknown issuer '%s' (root, intermediate, self)", issuer);
    }
    X509 *cert = make_cert(key, reg_id, ROLE_DEVICE, icert, ikey, days, NULL);
    char kp[4096];
    char cp[4096];
    char chp[4096];
    snprintf(p, sizeof p, "%s/devices", dir);
    int rc = ensure_dir(p);
    snprintf(kp, sizeof kp, "%s/devices/%s.key", dir, reg_id);
    snprintf(cp, sizeof cp, "%s/devices/%s.pem", dir, reg_id);
    snprintf(chp, sizeof chp, "%s/devices/%s.chain.pem", dir, reg_id);
    if (rc == 0 && cert != NULL) {
        rc = write_pem(kp, key, NULL, NULL);
        rc |= write_pem(cp, NULL, cert, NULL);
        rc |= write_pem(chp, NULL, cert,
                        icert != NULL && strcmp(issuer, "intermediate") == 0 ? icert : NULL);
    } else {
        rc = 1;
    }
    if (rc == 0) {
        char sha1[41];
        char sha256[65];
        tc_x509_thumbprints(cert, sha1, sha256);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "registrationId", reg_id);
            cJSON_AddStringToObject(o, "key", kp);
            cJSON_AddStringToObject(o, "certificate", cp);
            cJSON_AddStringToObject(o, "chain", chp);
            cJSON_AddStringToObject(o, "issuer", issuer);
            cJSON_AddStringToObject(o, "thumbprintSha1", sha1);
            cJSON_AddStringToObject(o, "thumbprintSha256", sha256);
            print_json(o);
            cJSON_Delete(o);
        } else {
            printf("device certificate for %s (CN=%s, issuer %s, %ld days)\n", reg_id, reg_id,
                   issuer, days);
            printf("  key          %s\n  certificate  %s\n  chain        %s (send this)\n", kp, cp,
                   chp);
            printf("  thumbprint   %s (SHA-1)\n               %s (SHA-256)\n", sha1, sha256);
        }
    }
    X509_free(cert);
    X509_free(icert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    return rc;
}

int cmd_pki(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(pki_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    if (strcmp(argv[0], "init") == 0) {
        bool force = arg_flag(&a, "--force");
        const char *pos[1];
        int n;
        if (args_finish(&a, pos, 0, &n) != 0) {
            return 2;
        }
        char ca[4096];
        snprintf(ca, sizeof ca, "%s/pki/ca.pem", dir);
        if (force) {
            unlink(ca);
        }
        bool existed = access(ca, R_OK) == 0;
        if (pki_ensure(dir, true) != 0) {
            return 1;
        }
        sqlite3 *db = tc_reg_open(dir);
        int synced = pki_server_sync(dir, db);
        tc_reg_close(db);
        if (synced < 0) {
            return 1;
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            char p[4096];
            cJSON_AddStringToObject(o, "caFile", ca);
            path_of(p, sizeof p, dir, "root.pem");
            cJSON_AddStringToObject(o, "root", p);
            path_of(p, sizeof p, dir, "intermediate.pem");
            cJSON_AddStringToObject(o, "intermediate", p);
            path_of(p, sizeof p, dir, "server.pem");
            cJSON_AddStringToObject(o, "serverCertificate", p);
            cJSON_AddBoolToObject(o, "created", !existed);
            print_json(o);
            cJSON_Delete(o);
        } else {
            printf("%s PKI in %s/pki\n  devices trust  %s\n  intermediate   %s/pki/"
                   "intermediate.pem (for enrollment groups)\n",
                   existed ? "kept the existing" : "made a new", dir, ca, dir);
        }
        return 0;
    }
    if (strcmp(argv[0], "device") == 0) {
        const char *key = arg_opt(&a, "--key");
        const char *issuer = arg_opt(&a, "--issuer");
        const char *days_text = arg_opt(&a, "--days");
        const char *pos[1];
        int n;
        if (args_finish(&a, pos, 1, &n) != 0 || n != 1) {
            fputs(pki_usage, stderr);
            return 2;
        }
        long days = days_text != NULL ? strtol(days_text, NULL, 10) : 365;
        if (days == 0 || days < -36500 || days > 36500) {
            return fail("--days must be a non-zero number of days");
        }
        return pki_device(dir, pos[0], key != NULL ? key : "ec-p256", issuer, days, json);
    }
    fprintf(stderr, "error: unknown command 'tether pki %s'\n\n%s", argv[0], pki_usage);
    return 2;
}
