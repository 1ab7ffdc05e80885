/* tether cloud fault: faults on purpose, read by the plugin from the registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "registry.h"
#include "util.h"

static const char fault_usage[] =
    "usage: tether cloud fault set NAME [--rate R] [--status S] [--seconds N] [--device ID]\n"
    "       tether cloud fault clear [NAME]\n"
    "       tether cloud fault list [--json]\n"
    "\n"
    "NAME is one of\n"
    "  dps-throttle     DPS answers 429 with retry-after (--seconds, default 1) at rate R\n"
    "  dps-error        DPS answers a 5xx (--status, default 500) at rate R\n"
    "  slow-assignment  DPS assignments take --seconds longer (202 assigning until then)\n"
    "  hub-refuse       the hub refuses CONNECT (CONNACK not authorised) at rate R, for\n"
    "                   --device ID only if given\n"
    "R is a probability 0..1 (default 1: always). Faults apply at once and survive restarts.\n";

static const char *const names[] = {"dps-throttle", "dps-error", "slow-assignment", "hub-refuse",
                                    NULL};

int cmd_fault(int argc, char **argv)
{
    if (argc < 1 || want_help(argc, argv)) {
        fputs(fault_usage, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    struct tc_args a;
    args_init(&a, argc - 1, argv + 1);
    const char *dir = cloud_dir(&a);
    bool json = arg_flag(&a, "--json");
    const char *rate = arg_opt(&a, "--rate");
    const char *status = arg_opt(&a, "--status");
    const char *seconds = arg_opt(&a, "--seconds");
    const char *device = arg_opt(&a, "--device");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 1, &n) != 0) {
        return 2;
    }
    if (pos[0] != NULL) {
        bool known = false;
        for (int i = 0; names[i] != NULL; i++) {
            known = known || strcmp(names[i], pos[0]) == 0;
        }
        if (!known) {
            return fail("unknown fault '%s' (dps-throttle, dps-error, slow-assignment,"
                        " hub-refuse)",
                        pos[0]);
        }
    }
    sqlite3 *db = open_registry(dir);
    if (db == NULL) {
        return 1;
    }
    int rc = 0;
    if (strcmp(argv[0], "set") == 0 && pos[0] != NULL) {
        double r = rate != NULL ? atof(rate) : 1.0;
        int st = status != NULL ? atoi(status) : 0;
        int sec = seconds != NULL ? atoi(seconds) : 0;
        if (r < 0 || r > 1) {
            rc = fail("--rate must be between 0 and 1");
        } else if (status != NULL && (st < 500 || st > 599)) {
            rc = fail("--status must be a 5xx status");
        } else if (sec < 0 || sec > 3600) {
            rc = fail("--seconds must be 0..3600");
        } else {
            tc_reg_exec(db,
                        "INSERT OR REPLACE INTO faults(name, rate, status, seconds, device_id)"
                        " VALUES(?,?,?,?,?)",
                        "sdiis", pos[0], r, (int64_t)st, (int64_t)sec, device);
            tc_reg_exec(db, "INSERT INTO requests(kind, created_ms) VALUES('reload',?)", "i",
                        tc_now_ms());
            printf(json ? "{\"set\":\"%s\"}\n" : "fault %s set\n", pos[0]);
        }
    } else if (strcmp(argv[0], "clear") == 0) {
        if (pos[0] != NULL) {
            tc_reg_exec(db, "DELETE FROM faults WHERE name=?", "s", pos[0]);
        } else {
            tc_reg_exec(db, "DELETE FROM faults", NULL);
        }
        tc_reg_exec(db, "INSERT INTO requests(kind, created_ms) VALUES('reload',?)", "i",
                    tc_now_ms());
        printf(json ? "{\"cleared\":\"%s\"}\n" : "cleared %s\n",
               pos[0] != NULL ? pos[0] : "all faults");
    } else if (strcmp(argv[0], "list") == 0) {
        cJSON *rows = tc_reg_rows(db,
                                  "SELECT name, rate, status, seconds, device_id AS deviceId"
                                  " FROM faults ORDER BY name",
                                  NULL);
        if (json) {
            print_json(rows);
        } else {
            cJSON *r;
            if (cJSON_GetArraySize(rows) == 0) {
                printf("no faults set\n");
            }
            cJSON_ArrayForEach(r, rows)
            {
                char *line = cJSON_PrintUnformatted(r);
                printf("%s\n", line);
                free(line);
            }
        }
        cJSON_Delete(rows);
    } else {
        fputs(fault_usage, stderr);
        rc = 2;
    }
    tc_reg_close(db);
    return rc;
}
