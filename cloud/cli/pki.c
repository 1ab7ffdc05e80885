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
    "init    makes a root CA, an intermediate CA and the cloud's server certificate\n"
    "        (SAN localhost, 127.0.0.1, ::1 and every hub host name) in D/pki.\n"
    "        Devices trust D/pki/ca.pem.\n"
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

/* SAN text for the server certificate: fixed names plus every hub host. */
static char *server_san(sqlite3 *db)
{
    size_t cap = 256;
    char *san = malloc(cap);
    snprintf(san, cap, "DNS:localhost,IP:127.0.0.1,IP:::1");
    cJSON *hubs = db != NULL ? tc_reg_rows(db, "SELECT host FROM hubs ORDER BY name", NULL) : NULL;
    cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        const char *host = tc_row_str(h, "host");
        size_t need = strlen(san) + strlen(host) + 8;
        if (need > cap) {
            cap = need * 2;
            san = realloc(san, cap);
        }
        strcat(san, ",DNS:");
        strcat(san, host);
    }
    cJSON_Delete(hubs);
    return san;
}

static int issue_server(const char *dir, sqlite3 *db)
{
    char p[4096];
    path_of(p, sizeof p, dir, "intermediate.key");
    EVP_PKEY *ikey = read_key(p);
    path_of(p, sizeof p, dir, "intermediate.pem");
    X509 *icert = read_cert(p);
    int rc = 1;
    if (ikey == NULL || icert == NULL) {
        fail("the intermediate CA in %s/pki is missing or unreadable", dir);
        goto done;
    }
    char *san = server_san(db);
    EVP_PKEY *key = make_key("ec-p256");
    X509 *cert = make_cert(key, "localhost", ROLE_SERVER, icert, ikey, 825, san);
    free(san);
    if (cert != NULL) {
        path_of(p, sizeof p, dir, "server.key");
        rc = write_pem(p, key, NULL, NULL);
        path_of(p, sizeof p, dir, "server.pem");
        rc |= write_pem(p, NULL, cert, icert); /* leaf, then intermediate */
    }
    X509_free(cert);
    EVP_PKEY_free(key);
done:
    EVP_PKEY_free(ikey);
    X509_free(icert);
    return rc;
}

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
    if (rc == 0) {
        sqlite3 *db = tc_reg_open(dir);
        rc = issue_server(dir, db);
        tc_reg_close(db);
    }
    if (rc == 0) {
        /* ca.pem last: its presence means the PKI is complete */
        char src[4096];
        path_of(src, sizeof src, dir, "root.pem");
        size_t len = 0;
        char *data = tc_read_file(src, &len);
        rc = data == NULL || tc_write_file(root_pem, data, len, 0644) != 0;
        free(data);
    }
    if (rc == 0 && !quiet) {
        printf("made a PKI in %s/pki: root CA, intermediate CA, server certificate\n", dir);
    }
    return rc;
}

int pki_server_sync(const char *dir, sqlite3 *db)
{
    char p[4096];
    path_of(p, sizeof p, dir, "server.pem");
    X509 *cert = read_cert(p);
    int missing = cert == NULL;
    cJSON *hubs = tc_reg_rows(db, "SELECT host FROM hubs", NULL);
    cJSON *h;
    cJSON_ArrayForEach(h, hubs)
    {
        const char *host = tc_row_str(h, "host");
        if (cert != NULL &&
            X509_check_host(cert, host, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1) {
            missing = 1;
        }
    }
    cJSON_Delete(hubs);
    X509_free(cert);
    if (!missing) {
        return 0;
    }
    return issue_server(dir, db) == 0 ? 1 : -1;
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
