/* tether cloud enrollment | enrollment-group | hub | device: the registry, named as in the
 * Azure CLI (az iot dps enrollment …). These write SQLite directly; the running plugin
 * reads the registry on every request, so changes apply at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "cli.h"
#include "parse.h"
#include "registry.h"
#include "util.h"
#include "x509util.h"

static const char enrollment_usage[] =
    "usage: tether cloud enrollment create --registration-id ID [--attestation "
    "x509|symmetric-key]\n"
    "           [--cert FILE | --thumbprint HEX] [--primary-key K] [--secondary-key K]\n"
    "           [--device-id ID] [--hubs H1,H2] [--allocation hashed|static|custom]\n"
    "           [--custom-command CMD]\n"
    "           [--reprovision migrate|reset|never] [--provisioning-status enabled|disabled]\n"
    "           [--initial-twin JSON] [--dir D] [--json]\n"
    "       tether cloud enrollment list [--json]\n"
    "       tether cloud enrollment show ID [--json]\n"
    "       tether cloud enrollment update ID [same options as create]\n"
    "       tether cloud enrollment delete ID\n"
    "\n"
    "X.509 enrollments match the device certificate by its SHA-1 or SHA-256 thumbprint\n"
    "(--cert computes it). Symmetric-key enrollments get random keys unless given.\n";

static const char group_usage[] =
    "usage: tether cloud enrollment-group create --group-id ID\n"
    "           (--attestation x509 --ca FILE | --attestation symmetric-key [--primary-key K])\n"
    "           [--hubs H1,H2] [--allocation hashed|static|custom] [--custom-command CMD]\n"
    "           [--reprovision migrate|reset|never]\n"
    "           [--provisioning-status enabled|disabled] [--initial-twin JSON] [--dir D] [--json]\n"
    "       tether cloud enrollment-group list|show ID|update ID [...]|delete ID [--json]\n"
    "\n"
    "X.509 groups accept device chains that verify up to --ca (a root or an intermediate;\n"
    "CN = registration id). Symmetric-key groups print the group key; a device's key is\n"
    "base64(HMAC-SHA256(base64decode(group key), registration id)).\n";

static const char hub_usage[] =
    "usage: tether cloud hub create NAME [--dir D] [--json]\n"
    "       tether cloud hub list [--dir D] [--json]\n"
    "       tether cloud hub delete NAME [--dir D]\n"
    "\n"
    "A hub NAME is served as NAME.localhost on the cloud's one listener; the server\n"
    "certificate is re-issued to carry the name (a running broker reloads it). A new\n"
    "cloud's first hub is tether-<its id scope's hex digits>.localhost, its own. Other SDKs\n"
    "resolve the names after the /etc/hosts step that tether cloud status prints.\n";

static const char device_usage[] = "usage: tether cloud device list [--dir D] [--json]\n"
                                   "       tether cloud device show DEVICE [--dir D] [--json]\n";

static char *random_key(void)
{
    unsigned char raw[64];
    RAND_bytes(raw, sizeof raw);
    return tc_base64_encode(raw, sizeof raw);
}

static int valid_key(const char *k)
{
    unsigned char buf[256];
    long n = tc_base64_decode(k, buf, sizeof buf);
    return n >= 16 && n <= 64;
}

static cJSON *enrollment_json(const cJSON *row, bool group)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, group ? "enrollmentGroupId" : "registrationId",
                            tc_row_str(row, "id"));
    const char *dev = tc_row_str(row, "device_id");
    if (!group) {
        if (dev != NULL) {
            cJSON_AddStringToObject(o, "deviceId", dev);
        } else {
            cJSON_AddNullToObject(o, "deviceId");
        }
    }
    cJSON *att = cJSON_AddObjectToObject(o, "attestation");
    const char *type = tc_row_str(row, "attestation");
    if (type != NULL && strcmp(type, "x509") == 0) {
        cJSON_AddStringToObject(att, "type", "x509");
        cJSON *x = cJSON_AddObjectToObject(att, "x509");
        if (group) {
            const char *pem = tc_row_str(row, "cert_pem");
            X509 *ca = pem != NULL ? tc_x509_from_pem(pem) : NULL;
            char cn[256] = "";
            char sha1[41] = "";
            char sha256[65] = "";
            if (ca != NULL) {
                tc_x509_cn(ca, cn, sizeof cn);
                tc_x509_thumbprints(ca, sha1, sha256);
                X509_free(ca);
            }
            cJSON_AddStringToObject(x, "caSubject", cn);
            cJSON_AddStringToObject(x, "caThumbprint", sha1);
            cJSON_AddStringToObject(x, "caThumbprintSha256", sha256);
        } else {
            const char *tp = tc_row_str(row, "thumbprint");
            cJSON_AddStringToObject(x, "thumbprint", tp != NULL ? tp : "");
        }
    } else {
        cJSON_AddStringToObject(att, "type", "symmetricKey");
        cJSON *k = cJSON_AddObjectToObject(att, "symmetricKey");
        cJSON_AddStringToObject(k, "primaryKey", tc_row_str(row, "primary_key"));
        cJSON_AddStringToObject(k, "secondaryKey", tc_row_str(row, "secondary_key"));
    }
    cJSON *hubs = cJSON_AddArrayToObject(o, "iotHubs");
    const char *hl = tc_row_str(row, "hubs");
    if (hl != NULL && hl[0] != '\0') {
        char *copy = strdup(hl);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            cJSON_AddItemToArray(hubs, cJSON_CreateString(t));
        }
        free(copy);
    }
    cJSON_AddStringToObject(o, "allocationPolicy", tc_row_str(row, "allocation"));
    if (tc_row_str(row, "custom_command") != NULL) {
        cJSON *ca = cJSON_AddObjectToObject(o, "customAllocationDefinition");
        cJSON_AddStringToObject(ca, "command", tc_row_str(row, "custom_command"));
    }
    cJSON_AddStringToObject(o, "reprovisionPolicy", tc_row_str(row, "reprovision"));
    cJSON_AddStringToObject(o, "provisioningStatus", tc_row_str(row, "status"));
    const char *twin = tc_row_str(row, "initial_twin");
    cJSON *t = twin != NULL ? cJSON_Parse(twin) : NULL;
    cJSON_AddItemToObject(o, "initialTwin", t != NULL ? t : cJSON_CreateNull());
    char when[40];
    tc_iso_time(tc_row_int(row, "created_ms", 0), when, sizeof when);
    cJSON_AddStringToObject(o, "createdDateTimeUtc", when);
    tc_iso_time(tc_row_int(row, "updated_ms", 0), when, sizeof when);
    cJSON_AddStringToObject(o, "lastUpdatedDateTimeUtc", when);
    cJSON_AddStringToObject(o, "etag", tc_row_str(row, "etag"));
    return o;
}

static void print_enrollment(const cJSON *row, bool group, bool json)
{
    cJSON *o = enrollment_json(row, group);
    if (json) {
        print_json(o);
    } else {
        const char *type = tc_row_str(row, "attestation");
        printf("%s %s\n", group ? "enrollment group" : "enrollment", tc_row_str(row, "id"));
        printf("  attestation   %s\n", type);
        if (type != NULL && strcmp(type, "x509") == 0) {
            if (group) {
                cJSON *x = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "attestation"), "x509");
                printf("  CA            %s (SHA-1 %s)\n",
                       cJSON_GetStringValue(cJSON_GetObjectItem(x, "caSubject")),
                       cJSON_GetStringValue(cJSON_GetObjectItem(x, "caThumbprint")));
            } else {
                printf("  thumbprint    %s\n", tc_row_str(row, "thumbprint"));
            }
        } else {
            printf("  primary key   %s\n  secondary key %s\n", tc_row_str(row, "primary_key"),
                   tc_row_str(row, "secondary_key"));
        }
        if (!group) {
            const char *d = tc_row_str(row, "device_id");
            printf("  device id     %s\n", d != NULL ? d : "(the registration id)");
        }
        const char *hl = tc_row_str(row, "hubs");
        printf("  hubs          %s\n", hl != NULL && hl[0] != '\0' ? hl : "(all)");
        printf("  allocation    %s\n  reprovision   %s\n  status        %s\n",
               tc_row_str(row, "allocation"), tc_row_str(row, "reprovision"),
               tc_row_str(row, "status"));
        const char *twin = tc_row_str(row, "initial_twin");
        if (twin != NULL) {
            printf("  initial twin  %s\n", twin);
        }
    }
    cJSON_Delete(o);
}

/* Options shared by create and update; NULL = not given. */
struct enr_opts {
    const char *attestation, *cert, *thumbprint, *ca, *k1, *k2, *device_id, *hubs, *allocation,
        *reprovision, *status, *twin, *custom;
};

static void take_opts(struct tc_args *a, struct enr_opts *o)
{
    o->attestation = arg_opt(a, "--attestation");
    o->cert = arg_opt(a, "--cert");
    o->thumbprint = arg_opt(a, "--thumbprint");
    o->ca = arg_opt(a, "--ca");
    o->k1 = arg_opt(a, "--primary-key");
    o->k2 = arg_opt(a, "--secondary-key");
    o->device_id = arg_opt(a, "--device-id");
    o->hubs = arg_opt(a, "--hubs");
    o->allocation = arg_opt(a, "--allocation");
    o->reprovision = arg_opt(a, "--reprovision");
    o->status = arg_opt(a, "--provisioning-status");
    o->twin = arg_opt(a, "--initial-twin");
    o->custom = arg_opt(a, "--custom-command");
}

static int one_of(const char *v, const char *what, const char *a, const char *b, const char *c)
{
    if (v == NULL || strcmp(v, a) == 0 || strcmp(v, b) == 0 || (c != NULL && strcmp(v, c) == 0)) {
        return 0;
    }
    return fail("%s must be %s, %s%s%s (got '%s')", what, a, b, c != NULL ? " or " : "",
                c != NULL ? c : "", v);
}

/* Validate options and write them into the row `kind,id`. */
static int apply_opts(sqlite3 *db, const char *kind, const char *id, struct enr_opts *o,
                      bool create)
{
    bool group = strcmp(kind, "group") == 0;
    if (one_of(o->attestation, "--attestation", "x509", "symmetric-key", NULL) ||
        one_of(o->allocation, "--allocation", "hashed", "static", "custom") ||
        one_of(o->reprovision, "--reprovision", "migrate", "reset", "never") ||
        one_of(o->status, "--provisioning-status", "enabled", "disabled", NULL)) {
        return 1;
    }
    if (o->allocation != NULL && strcmp(o->allocation, "custom") == 0 && o->custom == NULL &&
        (create || tc_reg_int(db, 0,
                              "SELECT count(*) FROM enrollments WHERE kind=? AND id=? AND"
                              " coalesce(custom_command,'')<>''",
                              "ss", kind, id) == 0)) {
        return fail("--allocation custom needs --custom-command CMD (see cloud/README.md)");
    }
    const char *att = o->attestation;
    if (att == NULL && create) {
        att =
            (o->cert != NULL || o->thumbprint != NULL || o->ca != NULL) ? "x509" : "symmetric-key";
    }
    if (att == NULL) {
        cJSON *row = tc_reg_row(db, "SELECT attestation FROM enrollments WHERE kind=? AND id=?",
                                "ss", kind, id);
        static char saved[32];
        snprintf(saved, sizeof saved, "%s", tc_row_str(row, "attestation"));
        cJSON_Delete(row);
        att = saved;
    }
    bool x509 = strcmp(att, "x509") == 0;
    char *cert_pem = NULL;
    char thumb[80] = "";
    if (x509 && !group) {
        if (o->cert != NULL) {
            cert_pem = tc_read_file(o->cert, NULL);
            X509 *c = cert_pem != NULL ? tc_x509_from_pem(cert_pem) : NULL;
            char sha1[41];
            if (c == NULL) {
                free(cert_pem);
                return fail("cannot read a PEM certificate from %s", o->cert);
            }
            tc_x509_thumbprints(c, sha1, thumb);
            X509_free(c);
        } else if (o->thumbprint != NULL) {
            tc_thumbprint_normalise(o->thumbprint, thumb, sizeof thumb);
            size_t n = strlen(thumb);
            if ((n != 40 && n != 64) || strspn(thumb, "0123456789ABCDEF") != n) {
                return fail("--thumbprint must be a SHA-1 (40 hex) or SHA-256 (64 hex) thumbprint");
            }
        } else if (create) {
            return fail("an X.509 enrollment needs --cert FILE or --thumbprint HEX");
        }
    }
    if (x509 && group) {
        if (o->ca != NULL) {
            cert_pem = tc_read_file(o->ca, NULL);
            X509 *c = cert_pem != NULL ? tc_x509_from_pem(cert_pem) : NULL;
            if (c == NULL) {
                free(cert_pem);
                return fail("cannot read a PEM certificate from %s", o->ca);
            }
            X509_free(c);
        } else if (create) {
            return fail("an X.509 enrollment group needs --ca FILE (its root or intermediate CA)");
        }
    }
    if ((o->k1 != NULL && !valid_key(o->k1)) || (o->k2 != NULL && !valid_key(o->k2))) {
        free(cert_pem);
        return fail("keys must be base64 of 16 to 64 bytes");
    }
    if (o->twin != NULL) {
        cJSON *t = cJSON_Parse(o->twin);
        bool ok = cJSON_IsObject(t);
        cJSON_Delete(t);
        if (!ok) {
            free(cert_pem);
            return fail("--initial-twin must be a JSON object such as "
                        "'{\"tags\":{},\"properties\":{\"desired\":{}}}'");
        }
    }
    if (o->hubs != NULL && o->hubs[0] != '\0') {
        char *copy = strdup(o->hubs);
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            if (tc_reg_int(db, 0, "SELECT count(*) FROM hubs WHERE name=? OR host=?", "ss", t, t) ==
                0) {
                fail("no hub named '%s' (see tether cloud hub list)", t);
                free(copy);
                free(cert_pem);
                return 1;
            }
        }
        free(copy);
    }
    if (o->device_id != NULL && !tc_registration_id_valid(o->device_id)) {
        free(cert_pem);
        return fail("'%s' is not a valid device id", o->device_id);
    }
    int64_t now = tc_now_ms();
    char etag[40];
    tc_random_hex(etag, 8, 0);
    if (create) {
        char *k1 = NULL;
        char *k2 = NULL;
        if (!x509) {
            k1 = o->k1 != NULL ? strdup(o->k1) : random_key();
            k2 = o->k2 != NULL ? strdup(o->k2) : random_key();
        }
        int rc =
            tc_reg_exec(db,
                        "INSERT INTO enrollments(kind, id, attestation, created_ms, updated_ms,"
                        " etag, primary_key, secondary_key) VALUES(?,?,?,?,?,?,?,?)",
                        "sssiisss", kind, id, att, now, now, etag, k1, k2);
        free(k1);
        free(k2);
        if (rc != 0) {
            free(cert_pem);
            return fail("could not create %s '%s'", group ? "enrollment group" : "enrollment", id);
        }
    } else {
        tc_reg_exec(db, "UPDATE enrollments SET updated_ms=?, etag=? WHERE kind=? AND id=?", "isss",
                    now, etag, kind, id);
        if (o->attestation != NULL) {
            tc_reg_exec(db, "UPDATE enrollments SET attestation=? WHERE kind=? AND id=?", "sss",
                        att, kind, id);
        }
        if (!x509 && o->attestation != NULL) {
            char *k1 = random_key();
            char *k2 = random_key();
            tc_reg_exec(db,
                        "UPDATE enrollments SET primary_key=coalesce(primary_key,?),"
                        " secondary_key=coalesce(secondary_key,?) WHERE kind=? AND id=?",
                        "ssss", k1, k2, kind, id);
            free(k1);
            free(k2);
        }
    }
#define SET(col, val)                                                                              \
    if ((val) != NULL) {                                                                           \
        tc_reg_exec(db, "UPDATE enrollments SET " col "=? WHERE kind=? AND id=?", "sss", (val),    \
                    kind, id);                                                                     \
    }
    SET("cert_pem", cert_pem);
    SET("thumbprint", thumb[0] != '\0' ? thumb : NULL);
    SET("primary_key", o->k1);
    SET("secondary_key", o->k2);
    SET("device_id", o->device_id);
    SET("hubs", o->hubs);
    SET("allocation", o->allocation);
    SET("reprovision", o->reprovision);
    SET("status", o->status);
    SET("initial_twin", o->twin);
    SET("custom_command", o->custom);
#undef SET
    free(cert_pem);
    return 0;
}

int cmd_enrollment(int argc, char **argv, bool group)
{
    const char *usage = group ? group_usage : enrollment_usage;
    const char *kind = group ? "group" : "individual";
    if (argc < 1 || want_help(argc, argv)) {
        fputs(usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *verb = argv[0];
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *id_opt = arg_opt(&a, group ? "--group-id" : "--registration-id");
    struct enr_opts o;
    take_opts(&a, &o);
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 1, &n) != 0) {
        return 2;
    }
    const char *id_arg = id_opt != NULL ? id_opt : pos[0];
    char id[TC_ID_MAX + 1] = "";
    if (id_arg != NULL) {
        if (!group && !tc_registration_id_valid(id_arg)) {
            return fail("'%s' is not a valid registration id (1..128 of letters, digits,"
                        " - . _ :, ending in a letter, digit or -)",
                        id_arg);
        }
        if (group && (strlen(id_arg) == 0 || strlen(id_arg) > TC_ID_MAX)) {
            return fail("invalid group id");
        }
        /* registration ids are case-insensitive */
        if (!group) {
            tc_lower(id_arg, id, sizeof id);
        } else {
            snprintf(id, sizeof id, "%s", id_arg);
        }
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    int rc = 0;
    if (strcmp(verb, "list") == 0) {
        cJSON *rows =
            tc_reg_rows(db, "SELECT * FROM enrollments WHERE kind=? ORDER BY id", "s", kind);
        cJSON *r;
        if (json) {
            cJSON *arr = cJSON_CreateArray();
            cJSON_ArrayForEach(r, rows)
            {
                cJSON_AddItemToArray(arr, enrollment_json(r, group));
            }
            print_json(arr);
            cJSON_Delete(arr);
        } else {
            printf("%-40s %-14s %-9s %-8s %s\n", group ? "GROUP" : "REGISTRATION ID", "ATTESTATION",
                   "STATUS", "ALLOC", "HUBS");
            cJSON_ArrayForEach(r, rows)
            {
                const char *hl = tc_row_str(r, "hubs");
                printf("%-40s %-14s %-9s %-8s %s\n", tc_row_str(r, "id"),
                       tc_row_str(r, "attestation"), tc_row_str(r, "status"),
                       tc_row_str(r, "allocation"), hl != NULL && hl[0] ? hl : "(all)");
            }
        }
        cJSON_Delete(rows);
    } else if (id[0] == '\0') {
        rc = fail("%s needs %s", verb, group ? "--group-id ID" : "--registration-id ID");
    } else if (strcmp(verb, "create") == 0) {
        if (tc_reg_int(db, 0, "SELECT count(*) FROM enrollments WHERE kind=? AND id=?", "ss", kind,
                       id) > 0) {
            rc = fail("%s '%s' already exists (use update)",
                      group ? "enrollment group" : "enrollment", id);
        } else {
            rc = apply_opts(db, kind, id, &o, true);
        }
    } else if (strcmp(verb, "update") == 0) {
        if (tc_reg_int(db, 0, "SELECT count(*) FROM enrollments WHERE kind=? AND id=?", "ss", kind,
                       id) == 0) {
            rc = fail("no %s '%s'", group ? "enrollment group" : "enrollment", id);
        } else {
            rc = apply_opts(db, kind, id, &o, false);
        }
    } else if (strcmp(verb, "delete") == 0) {
        if (tc_reg_int(db, 0, "SELECT count(*) FROM enrollments WHERE kind=? AND id=?", "ss", kind,
                       id) == 0) {
            rc = fail("no %s '%s'", group ? "enrollment group" : "enrollment", id);
        } else {
            tc_reg_exec(db, "DELETE FROM enrollments WHERE kind=? AND id=?", "ss", kind, id);
            if (!json) {
                printf("deleted %s %s\n", group ? "enrollment group" : "enrollment", id);
            } else {
                printf("{\"deleted\":\"%s\"}\n", id);
            }
        }
    } else if (strcmp(verb, "show") != 0) {
        fprintf(stderr, "error: unknown command '%s'\n\n%s", verb, usage);
        rc = 2;
    }
    if (rc == 0 &&
        (strcmp(verb, "show") == 0 || strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0)) {
        cJSON *row =
            tc_reg_row(db, "SELECT * FROM enrollments WHERE kind=? AND id=?", "ss", kind, id);
        if (row == NULL) {
            rc = fail("no %s '%s'", group ? "enrollment group" : "enrollment", id);
        } else {
            if (!json && strcmp(verb, "create") == 0) {
                printf("created ");
            }
            print_enrollment(row, group, json);
        }
        cJSON_Delete(row);
    }
    tc_reg_close(db);
    return rc;
}

int cmd_hub(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(hub_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 1, &n) != 0) {
        return 2;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[0], "create") == 0) {
        if (n != 1) {
            tc_reg_close(db);
            fputs(hub_usage, stderr);
            return 2;
        }
        if (tc_reg_hub_create(db, pos[0]) != 0) {
            rc = fail("cannot create hub '%s': it exists, or the name is not 1..50 of a-z, 0-9, -",
                      pos[0]);
        } else {
            int synced = pki_server_sync(dir, db);
            bool reloaded = false;
            if (synced > 0 && cloud_pid(dir) > 0) {
                rc = cloud_reload_if_running(dir);
                reloaded = true;
            }
            if (json) {
                printf("{\"name\":\"%s\",\"host\":\"%s%s\"}\n", pos[0], pos[0], TC_HUB_DOMAIN);
            } else {
                printf("created hub %s (host %s%s)%s\n", pos[0], pos[0], TC_HUB_DOMAIN,
                       reloaded ? "; server certificate re-issued and reloaded by the broker" : "");
            }
        }
    } else if (strcmp(argv[0], "delete") == 0 && n == 1) {
        if (tc_reg_int(db, 0, "SELECT count(*) FROM hubs WHERE name=?", "s", pos[0]) == 0) {
            rc = fail("no hub named '%s'", pos[0]);
        } else {
            tc_reg_exec(db, "DELETE FROM hubs WHERE name=?", "s", pos[0]);
            printf(json ? "{\"deleted\":\"%s\"}\n"
                        : "deleted hub %s (its devices can no longer"
                          " connect; they must register again)\n",
                   pos[0]);
        }
    } else if (strcmp(argv[0], "list") == 0) {
        cJSON *rows = tc_reg_rows(db,
                                  "SELECT h.name AS name, h.host AS host, (SELECT count(*) FROM"
                                  " devices d WHERE d.hub=h.host) AS devices FROM hubs h"
                                  " ORDER BY h.name",
                                  NULL);
        if (json) {
            print_json(rows);
        } else {
            cJSON *r;
            printf("%-24s %-40s %s\n", "NAME", "HOST", "DEVICES");
            cJSON_ArrayForEach(r, rows)
            {
                printf("%-24s %-40s %lld\n", tc_row_str(r, "name"), tc_row_str(r, "host"),
                       (long long)tc_row_int(r, "devices", 0));
            }
        }
        cJSON_Delete(rows);
    } else {
        fputs(hub_usage, stderr);
        rc = 2;
    }
    tc_reg_close(db);
    return rc;
}

int cmd_device(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(device_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 1, &n) != 0) {
        return 2;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    const char *cols = "SELECT device_id AS deviceId, hub, registration_id AS registrationId,"
                       " auth AS authentication, status, (connected=1 AND ?) AS connected,"
                       " c.pending AS pendingC2d, (SELECT count(*) FROM operations o WHERE"
                       " o.registration_id=devices.registration_id) AS registrations"
                       " FROM devices LEFT JOIN (SELECT device_id AS"
                       " did, count(*) AS pending FROM c2d GROUP BY device_id) c ON"
                       " c.did=device_id";
    char sql[1280];
    int rc = 0;
    int64_t running = cloud_pid(dir) > 0;
    if (strcmp(argv[0], "list") == 0) {
        snprintf(sql, sizeof sql, "%s ORDER BY device_id", cols);
        cJSON *rows = tc_reg_rows(db, sql, "i", running);
        if (json) {
            print_json(rows);
        } else {
            cJSON *r;
            printf("%-36s %-32s %-6s %-9s %s\n", "DEVICE", "HUB", "AUTH", "CONNECTED", "C2D");
            cJSON_ArrayForEach(r, rows)
            {
                printf("%-36s %-32s %-6s %-9s %lld\n", tc_row_str(r, "deviceId"),
                       tc_row_str(r, "hub"), tc_row_str(r, "authentication"),
                       tc_row_int(r, "connected", 0) ? "yes" : "no",
                       (long long)tc_row_int(r, "pendingC2d", 0));
            }
        }
        cJSON_Delete(rows);
    } else if (strcmp(argv[0], "show") == 0 && n == 1) {
        snprintf(sql, sizeof sql, "%s WHERE device_id=?", cols);
        cJSON *row = tc_reg_row(db, sql, "is", running, pos[0]);
        if (row == NULL) {
            rc = fail("no device '%s' (devices appear when DPS assigns them)", pos[0]);
        } else {
            cJSON_ReplaceItemInObject(row, "connected",
                                      cJSON_CreateBool(tc_row_int(row, "connected", 0) != 0));
            if (json) {
                print_json(row);
            } else {
                printf("device %s\n  hub        %s\n  auth       %s\n  connected  %s\n",
                       tc_row_str(row, "deviceId"), tc_row_str(row, "hub"),
                       tc_row_str(row, "authentication"),
                       tc_row_int(row, "connected", 0) ? "yes" : "no");
            }
        }
        cJSON_Delete(row);
    } else {
        fputs(device_usage, stderr);
        rc = 2;
    }
    tc_reg_close(db);
    return rc;
}
