#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "registry.h"
#include "util.h"

void args_init(struct tc_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->n = argc < 512 ? argc : 512;
    a->v = argv;
}

const char *arg_opt(struct tc_args *a, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < a->n; i++) {
        if (a->used[i]) {
            continue;
        }
        if (strcmp(a->v[i], "--") == 0) {
            break;
        }
        if (strcmp(a->v[i], name) == 0 && i + 1 < a->n) {
            a->used[i] = a->used[i + 1] = 1;
            return a->v[i + 1];
        }
        if (strncmp(a->v[i], name, len) == 0 && a->v[i][len] == '=') {
            a->used[i] = 1;
            return a->v[i] + len + 1;
        }
    }
    return NULL;
}

bool arg_flag(struct tc_args *a, const char *name)
{
    for (int i = 0; i < a->n; i++) {
        if (!a->used[i] && strcmp(a->v[i], name) == 0) {
            a->used[i] = 1;
            return true;
        }
    }
    return false;
}

int args_finish(struct tc_args *a, const char **pos, int max_pos, int *n_pos)
{
    int n = 0;
    bool dashdash = false;
    for (int i = 0; i < a->n; i++) {
        if (a->used[i]) {
            continue;
        }
        if (!dashdash && strcmp(a->v[i], "--") == 0) {
            dashdash = true;
            continue;
        }
        if (!dashdash && strncmp(a->v[i], "--", 2) == 0) {
            fail("unknown option %s (see --help)", a->v[i]);
            return -1;
        }
        if (n >= max_pos) {
            fail("unexpected argument '%s' (see --help)", a->v[i]);
            return -1;
        }
        pos[n++] = a->v[i];
    }
    for (int i = n; i < max_pos; i++) {
        pos[i] = NULL;
    }
    *n_pos = n;
    return 0;
}

bool want_help(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return true;
        }
    }
    return false;
}

void print_json(const cJSON *doc)
{
    char *text = cJSON_Print(doc);
    if (text != NULL) {
        printf("%s\n", text);
        free(text);
    }
}

int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int ensure_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return fail("cannot create %s: %s", dir, strerror(errno));
    }
    return 0;
}

const char *cloud_dir(struct tc_args *a)
{
    const char *d = arg_opt(a, "--dir");
    return d != NULL ? d : TC_DEFAULT_DIR;
}

sqlite3 *open_registry(const char *dir)
{
    if (ensure_dir(dir) != 0) {
        return NULL;
    }
    sqlite3 *db = tc_reg_open(dir);
    if (db == NULL) {
        fail("cannot open the registry in %s", dir);
    }
    return db;
}

long cloud_pid(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/mosquitto.pid", dir);
    char *text = tc_read_file(path, NULL);
    long pid = text != NULL ? strtol(text, NULL, 10) : 0;
    free(text);
    if (pid <= 0 || kill((pid_t)pid, 0) != 0) {
        return 0;
    }
    /* a recycled pid is not our broker */
    char cmd_path[64];
    size_t len = 0;
    snprintf(cmd_path, sizeof cmd_path, "/proc/%ld/cmdline", pid);
    char *cmd = tc_read_file(cmd_path, &len);
    bool ours = false;
    for (size_t i = 0; cmd != NULL && i < len; i += strlen(cmd + i) + 1) {
        const char *base = strrchr(cmd + i, '/');
        ours = ours || strcmp(base != NULL ? base + 1 : cmd + i, "mosquitto") == 0;
    }
    free(cmd);
    return ours ? pid : 0;
}
