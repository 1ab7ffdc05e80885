/* tether cloud c2d | twin | method | monitor: live actions. They go through the registry
 * (see plugin/service.c): the command writes a request and, where there is an answer,
 * polls for it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "parse.h"
#include "registry.h"
#include "util.h"

static const char c2d_usage[] =
    "usage: tether cloud c2d send DEVICE MESSAGE [--props 'k=v&k2=v2'] [--message-id ID]\n"
    "                              [--dir D] [--json]\n"
    "       tether cloud c2d list DEVICE [--json]\n"
    "\n"
    "Queues a cloud-to-device message (at most 50 pending per device, 64 KB each). It is\n"
    "delivered at QoS 1 when the device subscribes, and kept while the device is offline.\n"
    "--props names and values are URL-encoded by you, as they appear in the topic.\n";
static const char twin_usage[] =
    "usage: tether cloud twin show DEVICE [--dir D] [--json]\n"
    "       tether cloud twin update DEVICE --desired JSON [--dir D] [--json]\n"
    "\n"
    "update merges JSON into the desired properties (null removes a member), increments\n"
    "$version and pushes the patch to the device if it is connected and subscribed.\n";
static const char method_usage[] =
    "usage: tether cloud method invoke DEVICE NAME [--payload JSON] [--timeout S] [--dir D]\n"
    "                                  [--json]\n"
    "\n"
    "Calls a direct method and prints the device's status and payload (any status the\n"
    "device answers, 404 included). When the hub answers instead: 404 with errorCode 404103\n"
    "when the device is offline (or not subscribed to methods), 504 with errorCode 504101\n"
    "when it does not answer in time (default 30 s). Exit code 0 when the device answered,\n"
    "1 otherwise.\n";
static const char monitor_usage[] =
    "usage: tether cloud monitor [--device ID] [--count N] [--timeout S] [--all] [--dir D]\n"
    "                            [--json]\n"
    "\n"
    "Streams device-to-cloud messages as they arrive (--json: one JSON document per line).\n"
    "--all first prints the messages already recorded (the last 100 per device).\n"
    "Stops after N messages or S seconds (exit code 1 if fewer than N arrived).\n";

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int need_running(const char *dir)
{
    if (cloud_pid(dir) == 0) {
        return fail("tether cloud is not running in %s (start it: tether cloud up --dir %s)", dir,
                    dir);
    }
    return 0;
}

static int device_exists(sqlite3 *db, const char *device)
{
    if (tc_reg_int(db, 0, "SELECT count(*) FROM devices WHERE device_id=?", "s", device) == 0) {
        return fail("no device '%s' (devices appear when DPS assigns them; see tether cloud device"
                    " list)",
                    device);
    }
    return 0;
}

int cmd_c2d(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(c2d_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *props = arg_opt(&a, "--props");
    const char *mid_opt = arg_opt(&a, "--message-id");
    const char *pos[2];
    int n;
    if (args_finish(&a, pos, 2, &n) != 0) {
        return 2;
    }
    bool send = strcmp(argv[0], "send") == 0;
    if ((send && n != 2) || (!send && (strcmp(argv[0], "list") != 0 || n != 1))) {
        fputs(c2d_usage, stderr);
        return 2;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL || device_exists(db, pos[0]) != 0) {
        tc_reg_close(db);
        return 1;
    }
    int rc = 0;
    if (!send) {
        cJSON *rows = tc_reg_rows(db,
                                  "SELECT message_id AS messageId, payload, props AS properties,"
                                  " state FROM c2d WHERE device_id=? ORDER BY id",
                                  "s", pos[0]);
        if (json) {
            print_json(rows);
        } else {
            cJSON *r;
            cJSON_ArrayForEach(r, rows)
            {
                printf("%s  %-7s %s  %s\n", tc_row_str(r, "messageId"), tc_row_str(r, "state"),
                       tc_row_str(r, "properties"), tc_row_str(r, "payload"));
            }
        }
        cJSON_Delete(rows);
        tc_reg_close(db);
        return 0;
    }
    size_t len = strlen(pos[1]);
    int64_t pending = tc_reg_int(db, 0, "SELECT count(*) FROM c2d WHERE device_id=?", "s", pos[0]);
    if (len > 64 * 1024) {
        rc = fail("message is %zu bytes; IoT Hub's limit for cloud-to-device is 65,536", len);
    } else if (pending >= TC_C2D_MAX_PENDING) {
        rc = fail("%lld messages are already pending for %s (IoT Hub's limit is %d); the device"
                  " must receive some first",
                  (long long)pending, pos[0], TC_C2D_MAX_PENDING);
    } else if (mid_opt != NULL && !tc_device_id_valid(mid_opt)) {
        /* IoT Hub's rule for message ids is the one for device ids */
        rc = fail("--message-id must be 1-128 ASCII letters, digits or - : . + %% _ # * ? ! ( ) ,"
                  " = @ ; $ '");
    }
    /* The bag is decoded and encoded again for the topic: `+`, `#`, `/` typed in a value
     * must not reach the topic name (MQTT forbids wildcards there). System properties
     * ($.mid, $.to, ...) are the hub's: --message-id sets the one a sender may choose. */
    char *bag = NULL;
    if (rc == 0 && props != NULL) {
        cJSON *p = tc_props_to_json(props);
        const cJSON *it;
        const char *system = NULL;
        cJSON_ArrayForEach(it, p)
        {
            if (system == NULL && strncmp(it->string, "$.", 2) == 0) {
                system = it->string;
            }
        }
        if (p == NULL) {
            rc = fail("--props must be 'k=v&k2=v2' with valid %%-escapes");
        } else if (system != NULL) {
            rc = fail("--props cannot set the system property '%s' (the hub sets those;"
                      " use --message-id for $.mid)",
                      system);
        } else {
            bag = tc_props_encode(p, 1);
        }
        cJSON_Delete(p);
    }
    if (rc == 0) {
        char mid[TC_ID_MAX + 1];
        if (mid_opt != NULL) {
            snprintf(mid, sizeof mid, "%s", mid_opt);
        } else {
            tc_uuid(mid);
        }
        int64_t now = tc_now_ms();
        tc_reg_exec(db,
                    "INSERT INTO c2d(device_id, message_id, payload, props, created_ms)"
                    " VALUES(?,?,?,?,?)",
                    "ssbsi", pos[0], mid, pos[1], len, bag != NULL ? bag : "", now);
        tc_reg_exec(db, "INSERT INTO requests(kind, device_id, created_ms) VALUES('c2d',?,?)", "si",
                    pos[0], now);
        if (json) {
            printf("{\"messageId\":\"%s\",\"deviceId\":\"%s\",\"pending\":%lld}\n", mid, pos[0],
                   (long long)pending + 1);
        } else {
            printf("queued message %s for %s (%lld pending)\n", mid, pos[0],
                   (long long)pending + 1);
        }
    }
    free(bag);
    tc_reg_close(db);
    return rc;
}

static cJSON *twin_doc(sqlite3 *db, const char *device)
{
    cJSON *row = tc_reg_row(db, "SELECT * FROM devices WHERE device_id=?", "s", device);
    if (row == NULL) {
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "deviceId", device);
    cJSON_AddStringToObject(o, "hub", tc_row_str(row, "hub"));
    const char *tags = tc_row_str(row, "tags");
    cJSON *t = tags != NULL ? cJSON_Parse(tags) : NULL;
    cJSON_AddItemToObject(o, "tags", t != NULL ? t : cJSON_CreateObject());
    cJSON *props = cJSON_AddObjectToObject(o, "properties");
    const char *d = tc_row_str(row, "desired");
    const char *r = tc_row_str(row, "reported");
    cJSON *desired = d != NULL ? cJSON_Parse(d) : NULL;
    cJSON *reported = r != NULL ? cJSON_Parse(r) : NULL;
    if (desired == NULL) {
        desired = cJSON_CreateObject();
    }
    if (reported == NULL) {
        reported = cJSON_CreateObject();
    }
    cJSON_AddNumberToObject(desired, "$version", (double)tc_row_int(row, "desired_version", 1));
    cJSON_AddNumberToObject(reported, "$version", (double)tc_row_int(row, "reported_version", 1));
    cJSON_AddItemToObject(props, "desired", desired);
    cJSON_AddItemToObject(props, "reported", reported);
    cJSON_Delete(row);
    return o;
}

int cmd_twin(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(twin_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *desired_text = arg_opt(&a, "--desired");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 1, &n) != 0) {
        return 2;
    }
    bool update = strcmp(argv[0], "update") == 0;
    if (n != 1 || (!update && strcmp(argv[0], "show") != 0) || (update && desired_text == NULL)) {
        fputs(twin_usage, stderr);
        return 2;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL || device_exists(db, pos[0]) != 0) {
        tc_reg_close(db);
        return 1;
    }
    int rc = 0;
    if (update) {
        cJSON *patch = cJSON_Parse(desired_text);
        if (!cJSON_IsObject(patch)) {
            cJSON_Delete(patch);
            tc_reg_close(db);
            return fail("--desired must be a JSON object");
        }
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        cJSON *row = tc_reg_row(db,
                                "SELECT desired, desired_version FROM devices WHERE"
                                " device_id=?",
                                "s", pos[0]);
        const char *d = tc_row_str(row, "desired");
        cJSON *desired = d != NULL ? cJSON_Parse(d) : NULL;
        if (!cJSON_IsObject(desired)) {
            cJSON_Delete(desired);
            desired = cJSON_CreateObject();
        }
        tc_json_merge(desired, patch);
        char *text = cJSON_PrintUnformatted(desired);
        char *patch_text = cJSON_PrintUnformatted(patch);
        int64_t version = tc_row_int(row, "desired_version", 1) + 1;
        if (strlen(text) > 32 * 1024) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            rc = fail("desired properties would be %zu bytes; the limit is 32 KB", strlen(text));
        } else {
            char vtext[24];
            snprintf(vtext, sizeof vtext, "%lld", (long long)version);
            tc_reg_exec(db, "UPDATE devices SET desired=?, desired_version=? WHERE device_id=?",
                        "sis", text, version, pos[0]);
            tc_reg_exec(db,
                        "INSERT INTO requests(kind, device_id, name, payload, created_ms)"
                        " VALUES('desired',?,?,?,?)",
                        "sssi", pos[0], vtext, patch_text, tc_now_ms());
            sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        free(text);
        free(patch_text);
        cJSON_Delete(desired);
        cJSON_Delete(row);
        cJSON_Delete(patch);
        if (rc == 0 && !json) {
            printf("desired properties of %s now at $version %lld%s\n", pos[0], (long long)version,
                   cloud_pid(dir) > 0 ? ""
                                      : " (the cloud is not running: the device gets them"
                                        " with its next twin GET)");
        }
    }
    if (rc == 0 && (json || !update)) {
        cJSON *doc = twin_doc(db, pos[0]);
        print_json(doc);
        cJSON_Delete(doc);
    }
    tc_reg_close(db);
    return rc;
}

int cmd_method(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(method_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *payload = arg_opt(&a, "--payload");
    const char *timeout_text = arg_opt(&a, "--timeout");
    const char *pos[2];
    int n;
    if (args_finish(&a, pos, 2, &n) != 0) {
        return 2;
    }
    if (strcmp(argv[0], "invoke") != 0 || n != 2) {
        fputs(method_usage, stderr);
        return 2;
    }
    double timeout = timeout_text != NULL ? atof(timeout_text) : 30.0;
    if (timeout <= 0 || timeout > 300) {
        return fail("--timeout must be 0..300 seconds");
    }
    if (payload != NULL) {
        cJSON *p = cJSON_Parse(payload);
        bool ok = p != NULL;
        cJSON_Delete(p);
        if (!ok) {
            return fail("--payload must be JSON");
        }
        if (strlen(payload) > 128 * 1024) {
            return fail("method payload is larger than 128 KB");
        }
    }
    if (strlen(pos[1]) == 0 || strlen(pos[1]) > 100 || strpbrk(pos[1], "/+#?") != NULL) {
        return fail("invalid method name '%s'", pos[1]);
    }
    if (need_running(dir) != 0) {
        return 1;
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL || device_exists(db, pos[0]) != 0) {
        tc_reg_close(db);
        return 1;
    }
    tc_reg_exec(db,
                "INSERT INTO requests(kind, device_id, name, payload, timeout_ms, created_ms)"
                " VALUES('method',?,?,?,?,?)",
                "sssii", pos[0], pos[1], payload != NULL ? payload : "null",
                (int64_t)(timeout * 1000), tc_now_ms());
    int64_t id = (int64_t)sqlite3_last_insert_rowid(db);
    int64_t give_up = tc_now_ms() + (int64_t)(timeout * 1000) + 5000;
    cJSON *row = NULL;
    while (tc_now_ms() < give_up) {
        row = tc_reg_row(db,
                         "SELECT status, response, state FROM requests WHERE id=? AND state IN"
                         " ('done','failed')",
                         "i", id);
        if (row != NULL) {
            break;
        }
        sleep_ms(20);
    }
    int rc = 0;
    if (row == NULL) {
        tc_reg_close(db);
        return fail("the cloud did not pick up the request (is it running?)");
    }
    /* 'failed': the hub answered for the device (offline: 404 errorCode 404103, no answer
     * in time: 504 errorCode 504101), as the service API does with an HTTP error; 'done': the
     * device answered, whatever its status (its own 404 included) */
    int status = (int)tc_row_int(row, "status", 0);
    const char *resp = tc_row_str(row, "response");
    const char *state = tc_row_str(row, "state");
    bool by_hub = state != NULL && strcmp(state, "failed") == 0;
    cJSON *body = resp != NULL ? cJSON_Parse(resp) : NULL;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "status", status);
        cJSON *code = by_hub ? cJSON_GetObjectItemCaseSensitive(body, "errorCode") : NULL;
        if (cJSON_IsNumber(code)) {
            cJSON_AddNumberToObject(o, "errorCode", code->valuedouble);
        }
        if (body != NULL) {
            cJSON_AddItemToObject(o, "payload", body);
            body = NULL;
        } else if (resp != NULL) {
            cJSON_AddStringToObject(o, "payload", resp);
        } else {
            cJSON_AddNullToObject(o, "payload");
        }
        print_json(o);
        cJSON_Delete(o);
    } else {
        const char *what = !by_hub         ? " (answered by the device)"
                           : status == 404 ? " (device offline or not subscribed to methods)"
                           : status == 504 ? " (the device did not answer in time)"
                           : status == 400 ? " (the device's response was not valid UTF-8 JSON)"
                                           : "";
        printf("status %d%s\n%s\n", status, what, resp != NULL ? resp : "");
    }
    cJSON_Delete(body);
    rc = by_hub ? 1 : 0;
    cJSON_Delete(row);
    tc_reg_close(db);
    return rc;
}

int cmd_monitor(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(monitor_usage, stdout);
        return 0;
    }
    struct tc_args a;
    args_init(&a, argc, argv);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    bool all = arg_flag(&a, "--all");
    const char *device = arg_opt(&a, "--device");
    const char *count_text = arg_opt(&a, "--count");
    const char *timeout_text = arg_opt(&a, "--timeout");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 0, &n) != 0) {
        return 2;
    }
    long count = count_text != NULL ? atol(count_text) : 0;
    double timeout = timeout_text != NULL ? atof(timeout_text) : 0;
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    int64_t last = all ? 0 : tc_reg_int(db, 0, "SELECT coalesce(max(id),0) FROM telemetry", NULL);
    int64_t deadline = timeout > 0 ? tc_now_ms() + (int64_t)(timeout * 1000) : 0;
    long seen = 0;
    if (!json) {
        fprintf(stderr, "monitoring device-to-cloud messages%s%s (Ctrl-C to stop)\n",
                device != NULL ? " of " : "", device != NULL ? device : "");
    }
    while ((count == 0 || seen < count) && (deadline == 0 || tc_now_ms() < deadline)) {
        cJSON *rows = tc_reg_rows(db,
                                  "SELECT id, device_id, hub, props, payload, received_ms FROM"
                                  " telemetry WHERE id > ? AND (?2 IS NULL OR device_id = ?2)"
                                  " ORDER BY id LIMIT 100",
                                  "is", last, device);
        cJSON *r;
        cJSON_ArrayForEach(r, rows)
        {
            last = tc_row_int(r, "id", last);
            if (count > 0 && seen >= count) {
                break;
            }
            seen++;
            char when[40];
            tc_iso_time(tc_row_int(r, "received_ms", 0), when, sizeof when);
            const char *props = tc_row_str(r, "props");
            const char *payload = tc_row_str(r, "payload");
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "deviceId", tc_row_str(r, "device_id"));
                cJSON_AddStringToObject(o, "hub", tc_row_str(r, "hub"));
                cJSON_AddStringToObject(o, "receivedUtc", when);
                cJSON *p = props != NULL ? cJSON_Parse(props) : NULL;
                cJSON_AddItemToObject(o, "properties", p != NULL ? p : cJSON_CreateObject());
                if (payload != NULL) {
                    cJSON_AddStringToObject(o, "payload", payload);
                } else {
                    cJSON_AddStringToObject(o, "payloadBase64",
                                            tc_row_str(r, "payloadBase64") != NULL
                                                ? tc_row_str(r, "payloadBase64")
                                                : "");
                }
                char *line = cJSON_PrintUnformatted(o);
                printf("%s\n", line);
                free(line);
                cJSON_Delete(o);
            } else {
                printf("%s  %s  %s  %s\n", when, tc_row_str(r, "device_id"),
                       props != NULL ? props : "{}",
                       payload != NULL ? payload : "(binary payload)");
            }
            fflush(stdout);
        }
        cJSON_Delete(rows);
        if (count == 0 || seen < count) {
            sleep_ms(50);
        }
    }
    tc_reg_close(db);
    return count > 0 && seen < count ? 1 : 0;
}
