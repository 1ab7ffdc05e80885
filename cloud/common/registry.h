/* The registry: one SQLite file, D/registry.db, shared by the plugin (inside mosquitto) and
 * the tether-cloud command. It is also the service path between them: the command writes
 * requests (method calls, desired-property updates, queued cloud-to-device messages, faults)
 * and the plugin picks them up on its tick; devices can never reach it (see service.c).
 * Rows come back as cJSON objects keyed by column name (NULL columns are JSON null, BLOB
 * columns are strings when they are text and `<name>Base64` otherwise). */
#ifndef TC_REGISTRY_H
#define TC_REGISTRY_H

#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

/* The first hub of a new cloud is named TC_DEFAULT_HUB_PREFIX + the id scope's 8 random hex
 * digits in lower case (scope 0ne3F9A01C2 -> tether-3f9a01c2.localhost), so two clouds on one
 * machine never share a hub host name (issue 11 item 6); it is kept in the registry. */
#define TC_DEFAULT_HUB_PREFIX "tether-"
#define TC_HUB_DOMAIN         ".localhost"
#define TC_C2D_MAX_PENDING    50
#define TC_TELEMETRY_KEEP     100

/* Open (and on first use create) D/registry.db: schema, id scope, the default hub (named
 * after the id scope, see TC_DEFAULT_HUB_PREFIX). */
sqlite3 *tc_reg_open(const char *dir);
void tc_reg_close(sqlite3 *db);

/* Bind formats: 's' text (NULL allowed), 'i' int64, 'd' double, 'b' blob (ptr, size_t). */
int tc_reg_exec(sqlite3 *db, const char *sql, const char *fmt, ...);
cJSON *tc_reg_rows(sqlite3 *db, const char *sql, const char *fmt, ...);
cJSON *tc_reg_row(sqlite3 *db, const char *sql, const char *fmt, ...);
/* A single integer (first column of the first row), or def. */
int64_t tc_reg_int(sqlite3 *db, int64_t def, const char *sql, const char *fmt, ...);

/* meta key/value; get returns malloc'd text or NULL. */
char *tc_reg_meta_get(sqlite3 *db, const char *key);
int tc_reg_meta_set(sqlite3 *db, const char *key, const char *value);

/* Helpers on cJSON rows. */
const char *tc_row_str(const cJSON *row, const char *key); /* NULL if absent or not a string */
int64_t tc_row_int(const cJSON *row, const char *key, int64_t def);

/* A hub's device host name, {hub}.device.{suffix} (tether-3f9a01c2.device.localhost): where
 * Azure, and the TLS shim, offer TLS 1.3 (PROTOCOL.md, "TLS"); "" if the host has no dot. */
void tc_device_host_of(const char *host, char *out, size_t size);

/* Create a hub (host = name + TC_HUB_DOMAIN). 0, or -1 when it exists or is invalid. */
int tc_reg_hub_create(sqlite3 *db, const char *name);

#endif
