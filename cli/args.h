/* Command-line options of the tether command: a table per command, with help made from it. */
#ifndef TETHER_CLI_ARGS_H
#define TETHER_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_MAX_OPTIONS    48
#define CLI_MAX_REPEAT     8
#define CLI_MAX_POSITIONAL 8

typedef struct cli_option {
    const char *name;    /* Without the leading dashes. */
    const char *metavar; /* NULL: a flag without a value. */
    const char *help;
} cli_option;

typedef struct cli_command {
    const char *usage;                    /* e.g. "tether mqtt pub [options]" */
    const char *summary;                  /* One paragraph. */
    const cli_option *const *option_sets; /* NULL-terminated list of NULL-name-terminated arrays. */
    size_t max_positional;
} cli_command;

typedef struct cli_args {
    const cli_command *cmd;
    const cli_option *opts[CLI_MAX_OPTIONS];
    size_t opt_count;
    const char *values[CLI_MAX_OPTIONS][CLI_MAX_REPEAT];
    size_t counts[CLI_MAX_OPTIONS];
    const char *positional[CLI_MAX_POSITIONAL];
    size_t positional_count;
} cli_args;

/* Exit statuses of every command (documented in `tether --help`). */
enum { CLI_EXIT_OK = 0, CLI_EXIT_FAILED = 1, CLI_EXIT_USAGE = 2 };

/* Parses argv (after the command words). Returns -1 to go on, or an exit status: 0 after
 * printing help, CLI_EXIT_USAGE after printing what is wrong. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_args *out);

void cli_print_help(const cli_command *cmd);

bool cli_has(const cli_args *a, const char *name);
/* Last value given, or NULL. */
const char *cli_get(const cli_args *a, const char *name);
size_t cli_count(const cli_args *a, const char *name);
const char *cli_get_nth(const cli_args *a, const char *name, size_t i);
/* Integer option within [min, max]; prints a usage error and returns false if invalid. */
bool cli_get_long(const cli_args *a, const char *name, long fallback, long min, long max,
                  long *out);

#endif
