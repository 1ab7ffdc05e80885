#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find(const cli_args *a, const char *name, size_t name_len)
{
    for (size_t i = 0; i < a->opt_count; i++)
        if (strlen(a->opts[i]->name) == name_len && strncmp(a->opts[i]->name, name, name_len) == 0)
            return (int)i;
    return -1;
}

void cli_print_help(const cli_command *cmd)
{
    printf("usage: %s\n\n%s\n", cmd->usage, cmd->summary);
    bool header = false;
    for (const cli_option *const *set = cmd->option_sets; set && *set; set++) {
        for (const cli_option *o = *set; o->name; o++) {
            if (!header) {
                printf("\noptions:\n");
                header = true;
            }
            char left[64];
            snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
            printf("  %-26s %s\n", left, o->help);
        }
    }
    printf("  %-26s %s\n", "--help", "show this help");
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out)
{
    memset(out, 0, sizeof *out);
    out->cmd = cmd;
    for (const cli_option *const *set = cmd->option_sets; set && *set; set++)
        for (const cli_option *o = *set; o->name && out->opt_count < CLI_MAX_OPTIONS; o++)
            out->opts[out->opt_count++] = o;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            cli_print_help(cmd);
            return CLI_EXIT_OK;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == 0) {
            if (out->positional_count >= cmd->max_positional) {
                fprintf(stderr, "tether: unexpected argument '%s' (see --help)\n", arg);
                return CLI_EXIT_USAGE;
            }
            out->positional[out->positional_count++] = arg;
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        int idx = find(out, name, name_len);
        if (idx < 0) {
            fprintf(stderr, "tether: unknown option '--%.*s' (see %s --help)\n", (int)name_len,
                    name, cmd->usage);
            return CLI_EXIT_USAGE;
        }
        const cli_option *o = out->opts[idx];
        const char *value = "";
        if (o->metavar) {
            if (eq) {
                value = eq + 1;
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                fprintf(stderr, "tether: option --%s needs a value (%s)\n", o->name, o->metavar);
                return CLI_EXIT_USAGE;
            }
        } else if (eq) {
            fprintf(stderr, "tether: option --%s takes no value\n", o->name);
            return CLI_EXIT_USAGE;
        }
        size_t n = out->counts[idx];
        if (n >= CLI_MAX_REPEAT) {
            fprintf(stderr, "tether: option --%s given too often\n", o->name);
            return CLI_EXIT_USAGE;
        }
        out->values[idx][n] = value;
        out->counts[idx] = n + 1;
    }
    return -1;
}

bool cli_has(const cli_args *a, const char *name)
{
    return cli_count(a, name) > 0;
}

size_t cli_count(const cli_args *a, const char *name)
{
    int idx = find(a, name, strlen(name));
    return idx < 0 ? 0 : a->counts[idx];
}

const char *cli_get_nth(const cli_args *a, const char *name, size_t i)
{
    int idx = find(a, name, strlen(name));
    if (idx < 0 || i >= a->counts[idx])
        return NULL;
    return a->values[idx][i];
}

const char *cli_get(const cli_args *a, const char *name)
{
    size_t n = cli_count(a, name);
    return n ? cli_get_nth(a, name, n - 1) : NULL;
}

bool cli_get_long(const cli_args *a, const char *name, long fallback, long min, long max, long *out)
{
    const char *v = cli_get(a, name);
    if (v == NULL) {
        *out = fallback;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != 0 || x < min || x > max) {
        fprintf(stderr, "tether: --%s wants a whole number from %ld to %ld, not '%s'\n", name, min,
                max, v);
        return false;
    }
    *out = x;
    return true;
}
