/* tether-cloud: the commands behind `tether cloud …` and `tether pki …`. */
#ifndef TC_CLI_H
#define TC_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#define TC_DEFAULT_DIR ".tether"

/* Options: `--name VALUE`, `--name=VALUE` and flags; the rest are positional. */
struct tc_args {
    int n;
    char **v;
    unsigned char used[512];
};

void args_init(struct tc_args *a, int argc, char **argv);
const char *arg_opt(struct tc_args *a, const char *name);
bool arg_flag(struct tc_args *a, const char *name);
/* Positional arguments left after the options were taken; NULL past the end. Call after
 * every arg_opt/arg_flag of the command. Reports unknown options and returns -1. */
int args_finish(struct tc_args *a, const char **pos, int max_pos, int *n_pos);
bool want_help(int argc, char **argv);

/* Output. */
void print_json(const cJSON *doc);
__attribute__((format(printf, 1, 2))) int fail(const char *fmt,
                                               ...); /* "error: …" on stderr, returns 1 */

/* The cloud directory: created mode 0700 when absent. */
const char *cloud_dir(struct tc_args *a);
int ensure_dir(const char *dir);
sqlite3 *open_registry(const char *dir);
/* Running broker: its pid, or 0. */
long cloud_pid(const char *dir);

/* Commands. Each returns the process exit code. */
int cmd_pki(int argc, char **argv);
int cmd_up(int argc, char **argv);
int cmd_down(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_enrollment(int argc, char **argv, bool group);
int cmd_hub(int argc, char **argv);
int cmd_device(int argc, char **argv);
int cmd_c2d(int argc, char **argv);
int cmd_twin(int argc, char **argv);
int cmd_method(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_fault(int argc, char **argv);
int cmd_proxy(int argc, char **argv);

/* PKI (pki.c), also used by `cloud up` and `cloud hub create`. */
int pki_ensure(const char *dir, bool quiet);
/* Re-issue the server certificate when a host is missing from its SANs. 1 if re-issued. */
int pki_server_sync(const char *dir, sqlite3 *db);
/* azure-rsa, azure-ecc or compact (pki.c, "server shapes"). */
bool pki_shape_valid(const char *name);
/* Whether that shape's server certificate names the hubs' device host names (NULL: the
 * default shape). */
bool pki_shape_names_device_hosts(const char *name);

/* Make a running broker reload its certificates (SIGHUP) after a server certificate change. */
int cloud_reload_if_running(const char *dir);

#endif
