#include "registry.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS hubs(name TEXT PRIMARY KEY, host TEXT UNIQUE NOT NULL,"
    " created_ms INTEGER);"
    /* kind 'individual' (id = lower-case registration id) or 'group' (id = group id) */
    "CREATE TABLE IF NOT EXISTS enrollments(kind TEXT NOT NULL, id TEXT NOT NULL,"
    " attestation TEXT NOT NULL, cert_pem TEXT, thumbprint TEXT, primary_key TEXT,"
    " secondary_key TEXT, device_id TEXT, hubs TEXT, allocation TEXT NOT NULL DEFAULT 'hashed',"
    " reprovision TEXT NOT NULL DEFAULT 'migrate', status TEXT NOT NULL DEFAULT 'enabled',"
    " initial_twin TEXT, created_ms INTEGER, updated_ms INTEGER, etag TEXT, custom_command TEXT,"
    " PRIMARY KEY(kind, id));"
    "CREATE TABLE IF NOT EXISTS registrations(registration_id TEXT PRIMARY KEY,"
    " enrollment_kind TEXT, enrollment_id TEXT, device_id TEXT, hub TEXT, status TEXT,"
    " substatus TEXT, created_ms INTEGER, updated_ms INTEGER, etag TEXT, payload TEXT,"
    " error_code INTEGER, error_message TEXT);"
    "CREATE TABLE IF NOT EXISTS operations(id TEXT PRIMARY KEY, registration_id TEXT,"
    " ready_ms INTEGER, status TEXT, result TEXT, created_ms INTEGER);"
    /* every registration forgets operations over an hour old: without this, a full scan */
    "CREATE INDEX IF NOT EXISTS operations_created ON operations(created_ms);"
    "CREATE TABLE IF NOT EXISTS devices(device_id TEXT PRIMARY KEY, hub TEXT NOT NULL,"
    " registration_id TEXT, auth TEXT NOT NULL, thumbprint TEXT, ca_pem TEXT, primary_key TEXT,"
    " secondary_key TEXT, status TEXT NOT NULL DEFAULT 'enabled', connected INTEGER DEFAULT 0,"
    " last_activity_ms INTEGER, tags TEXT, desired TEXT, desired_version INTEGER DEFAULT 1,"
    " reported TEXT, reported_version INTEGER DEFAULT 1, created_ms INTEGER);"
    "CREATE TABLE IF NOT EXISTS c2d(id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT,"
    " message_id TEXT, payload BLOB, props TEXT, state TEXT NOT NULL DEFAULT 'queued',"
    " sent_ms INTEGER, created_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS c2d_device ON c2d(device_id, state);"
    "CREATE TABLE IF NOT EXISTS telemetry(id INTEGER PRIMARY KEY AUTOINCREMENT, device_id TEXT,"
    " hub TEXT, props TEXT, payload BLOB, received_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS telemetry_device ON telemetry(device_id, id);"
    "CREATE TABLE IF NOT EXISTS requests(id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT,"
    " device_id TEXT, name TEXT, payload TEXT, timeout_ms INTEGER, state TEXT NOT NULL DEFAULT"
    " 'new', status INTEGER, response TEXT, created_ms INTEGER, deadline_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS requests_state ON requests(state);"
    "CREATE TABLE IF NOT EXISTS faults(name TEXT PRIMARY KEY, rate REAL, status INTEGER,"
    " seconds INTEGER, device_id TEXT);";

static int bind_args(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int idx = 1;
    for (const char *f = fmt != NULL ? fmt : ""; *f != '\0'; f++, idx++) {
        int rc = SQLITE_OK;
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            rc = s != NULL ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT)
                           : sqlite3_bind_null(st, idx);
            break;
        }
        case 'i':
            rc = sqlite3_bind_int64(st, idx, va_arg(ap, int64_t));
            break;
        case 'd':
            rc = sqlite3_bind_double(st, idx, va_arg(ap, double));
            break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            size_t n = va_arg(ap, size_t);
            rc = sqlite3_bind_blob64(st, idx, p != NULL ? p : "", (sqlite3_uint64)n,
                                     SQLITE_TRANSIENT);
            break;
        }
        default:
            return -1;
        }
        if (rc != SQLITE_OK) {
            return -1;
        }
    }
    return 0;
}

static int blob_is_text(const unsigned char *p, size_t n)
{
    /* cJSON prints invalid UTF-8 as is; accept only valid UTF-8 without NUL as text. */
    return memchr(p, 0, n) == NULL && tc_utf8_valid(p, n);
}

static cJSON *row_to_json(sqlite3_stmt *st)
{
    cJSON *row = cJSON_CreateObject();
    int n = sqlite3_column_count(st);
    for (int c = 0; c < n; c++) {
        const char *name = sqlite3_column_name(st, c);
        switch (sqlite3_column_type(st, c)) {
        case SQLITE_INTEGER:
            cJSON_AddNumberToObject(row, name, (double)sqlite3_column_int64(st, c));
            break;
        case SQLITE_FLOAT:
            cJSON_AddNumberToObject(row, name, sqlite3_column_double(st, c));
            break;
        case SQLITE_TEXT:
            cJSON_AddStringToObject(row, name, (const char *)sqlite3_column_text(st, c));
            break;
        case SQLITE_BLOB: {
            const unsigned char *p = sqlite3_column_blob(st, c);
            size_t len = (size_t)sqlite3_column_bytes(st, c);
            if (p == NULL || blob_is_text(p, len)) {
                char *s = malloc(len + 1);
                if (s != NULL) {
                    if (len > 0) {
                        memcpy(s, p, len);
                    }
                    s[len] = '\0';
                    cJSON_AddStringToObject(row, name, s);
                    free(s);
                }
            } else {
                char key[128];
                char *b64 = tc_base64_encode(p, len);
                snprintf(key, sizeof key, "%sBase64", name);
                cJSON_AddNullToObject(row, name);
                if (b64 != NULL) {
                    cJSON_AddStringToObject(row, key, b64);
                    free(b64);
                }
            }
            break;
        }
        default:
            cJSON_AddNullToObject(row, name);
            break;
        }
    }
    return row;
}

/* Prepared statements kept per (connection, SQL text): parsing the SQL was an eighth of the
 * broker's CPU per registration. Direct-mapped by a hash of the text; a statement is always
 * reset after use, so a cached one holds no lock or read transaction. */
#define STMT_CACHE 128
static struct {
    sqlite3 *db;
    uint64_t hash;
    sqlite3_stmt *st;
} stmt_cache[STMT_CACHE];

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211u;
    }
    return h;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    uint64_t h = sql_hash(sql);
    size_t slot = (size_t)(h % STMT_CACHE);
    if (stmt_cache[slot].db == db && stmt_cache[slot].hash == h &&
        strcmp(sqlite3_sql(stmt_cache[slot].st), sql) == 0) {
        return stmt_cache[slot].st;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    sqlite3_finalize(stmt_cache[slot].st);
    stmt_cache[slot].db = db;
    stmt_cache[slot].hash = h;
    stmt_cache[slot].st = st;
    return st;
}

static cJSON *run(sqlite3 *db, const char *sql, const char *fmt, va_list ap, int first_only,
                  int *rc_out)
{
    sqlite3_stmt *st = prepare(db, sql);
    cJSON *rows = cJSON_CreateArray();
    int rc = -1;
    if (st == NULL) {
        fprintf(stderr, "registry: %s: %s\n", sqlite3_errmsg(db), sql);
        goto done;
    }
    if (bind_args(st, fmt, ap) != 0) {
        goto done;
    }
    for (;;) {
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            cJSON_AddItemToArray(rows, row_to_json(st));
            if (first_only) {
                rc = 0;
                break;
            }
        } else if (s == SQLITE_DONE) {
            rc = 0;
            break;
        } else {
            fprintf(stderr, "registry: %s\n", sqlite3_errmsg(db));
            break;
        }
    }
done:
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    *rc_out = rc;
    return rows;
}

int tc_reg_exec(sqlite3 *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    cJSON_Delete(run(db, sql, fmt, ap, 0, &rc));
    va_end(ap);
    return rc;
}

cJSON *tc_reg_rows(sqlite3 *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    cJSON *rows = run(db, sql, fmt, ap, 0, &rc);
    va_end(ap);
    if (rc != 0) {
        cJSON_Delete(rows);
        return NULL;
    }
    return rows;
}

cJSON *tc_reg_row(sqlite3 *db, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    cJSON *rows = run(db, sql, fmt, ap, 1, &rc);
    va_end(ap);
    cJSON *row = NULL;
    if (rc == 0 && cJSON_GetArraySize(rows) > 0) {
        row = cJSON_DetachItemFromArray(rows, 0);
    }
    cJSON_Delete(rows);
    return row;
}

int64_t tc_reg_int(sqlite3 *db, int64_t def, const char *sql, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    cJSON *rows = run(db, sql, fmt, ap, 1, &rc);
    va_end(ap);
    int64_t v = def;
    cJSON *row = cJSON_GetArrayItem(rows, 0);
    if (rc == 0 && row != NULL && row->child != NULL && cJSON_IsNumber(row->child)) {
        v = (int64_t)row->child->valuedouble;
    }
    cJSON_Delete(rows);
    return v;
}

char *tc_reg_meta_get(sqlite3 *db, const char *key)
{
    cJSON *row = tc_reg_row(db, "SELECT value FROM meta WHERE key=?", "s", key);
    const char *v = tc_row_str(row, "value");
    char *out = v != NULL ? strdup(v) : NULL;
    cJSON_Delete(row);
    return out;
}

int tc_reg_meta_set(sqlite3 *db, const char *key, const char *value)
{
    return tc_reg_exec(db,
                       "INSERT INTO meta(key,value) VALUES(?,?) ON CONFLICT(key) DO UPDATE"
                       " SET value=excluded.value",
                       "ss", key, value);
}

const char *tc_row_str(const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t tc_row_int(const cJSON *row, const char *key, int64_t def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : def;
}

int tc_reg_hub_create(sqlite3 *db, const char *name)
{
    char host[300];
    size_t len = strlen(name);
    if (len == 0 || len > 50) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0))) {
            return -1;
        }
    }
    if (tc_reg_int(db, 0, "SELECT count(*) FROM hubs WHERE name=?", "s", name) > 0) {
        return -1;
    }
    snprintf(host, sizeof host, "%s%s", name, TC_HUB_DOMAIN);
    return tc_reg_exec(db, "INSERT INTO hubs(name,host,created_ms) VALUES(?,?,?)", "ssi", name,
                       host, tc_now_ms());
}

sqlite3 *tc_reg_open(const char *dir)
{
    char path[4096];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/registry.db", dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "registry: cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "");
        sqlite3_close(db);
        return NULL;
    }
    chmod(path, 0600); /* keys live here; the WAL files inherit this mode */
    sqlite3_busy_timeout(db, 2000);
    char *err = NULL;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &err) !=
            SQLITE_OK ||
        sqlite3_exec(db, schema, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "registry: %s\n", err != NULL ? err : "schema");
        sqlite3_free(err);
        sqlite3_close(db);
        return NULL;
    }
    /* registries made before custom allocation: the column is added (an error when it
     * exists already is expected) */
    sqlite3_exec(db, "ALTER TABLE enrollments ADD COLUMN custom_command TEXT", NULL, NULL, NULL);
    char *scope = tc_reg_meta_get(db, "id_scope");
    if (scope == NULL) {
        char hex[17];
        char s[32];
        tc_random_hex(hex, 4, 1);
        snprintf(s, sizeof s, "0ne%s", hex);
        tc_reg_meta_set(db, "id_scope", s);
        tc_reg_meta_set(db, "retry_after", "1");
        tc_reg_meta_set(db, "schema_version", "1");
        char hub[32];
        snprintf(hub, sizeof hub, "%s%s", TC_DEFAULT_HUB_PREFIX, hex);
        for (char *c = hub; *c != '\0'; c++) {
            *c = (char)tolower((unsigned char)*c);
        }
        tc_reg_hub_create(db, hub);
    }
    free(scope);
    return db;
}

void tc_reg_close(sqlite3 *db)
{
    for (size_t i = 0; i < STMT_CACHE; i++) {
        if (stmt_cache[i].db == db) {
            sqlite3_finalize(stmt_cache[i].st);
            stmt_cache[i].db = NULL;
            stmt_cache[i].st = NULL;
        }
    }
    sqlite3_close(db);
}

void tc_device_host_of(const char *host, char *out, size_t size)
{
    const char *dot = strchr(host, '.');
    out[0] = '\0';
    if (dot != NULL && dot != host) {
        snprintf(out, size, "%.*s.device%s", (int)(dot - host), host, dot);
    }
}
