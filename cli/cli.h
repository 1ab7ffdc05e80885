/* What the commands of the tether CLI share: TLS set-up from options, failure reports, JSON. */
#ifndef TETHER_CLI_H
#define TETHER_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "args.h"
#include "tether/heap.h"
#include "tether/mqtt.h"
#include "tether/tls.h"

/* --endpoint, --id-scope, --registration-id, credentials of DPS, --state, --force. */
extern const cli_option cli_provisioning_options[];
/* --host and --port, for commands that name the server directly. */
extern const cli_option cli_host_options[];
/* Options of every command that opens a TLS connection: credentials, trust, limits. */
extern const cli_option cli_tls_options[];

/* --keep-alive S, for every command that opens an MQTT session. */
extern const cli_option cli_keep_alive_options[];
/* The keep-alive given (--keep-alive, or --keepalive where the command has it) within
 * [min, max] seconds, else the fallback; prints a usage error and returns false if invalid. */
bool cli_keep_alive(const cli_args *a, long fallback, long min, long max, uint16_t *out);

/* The TLS versions --tls12 and --tls13 ask for (Azure's split by host name if neither). */
tether_tls_versions cli_tls_versions(const cli_args *a);

/* A TLS connection made from command-line options. */
typedef struct cli_tls {
    tether_tls tls;
    tether_tls_options opts;
    void *arena;
    bool json;
    bool verbose;
    bool initialized;      /* tether_tls_init() was called: cli_tls_free() to do */
    size_t handshake_peak; /* Heap peak of the first handshake. */
    size_t connected_heap; /* Heap in use right after the first handshake. */
    unsigned connects;
    const char *version; /* Negotiated at the last connect, for summaries after closing. */
    const char *suite;
} cli_tls;

/* Reads --cafile/--cert/--key/..., installs the heap hooks (--heap-limit). Prints and returns
 * an exit status on failure, -1 on success. */
int cli_tls_setup(cli_tls *c, const cli_args *a, const char *default_host);
/* The same, serving mbedTLS from an arena of @p arena bytes (0: as the options say). */
int cli_tls_setup_heap(cli_tls *c, const cli_args *a, const char *default_host, size_t arena);

/* Connects (TCP + handshake), printing the stage trace with --verbose. */
tether_status cli_tls_connect(cli_tls *c);

void cli_tls_free(cli_tls *c);

/* Prints a failure: the TLS diagnosis when the status came from TLS, else name, message and
 * hint; as one JSON object with --json. `during` names the step ("MQTT CONNECT"). */
void cli_report_failure(const cli_tls *c, tether_status st, const char *during, bool json);

/* Prints the details a status's hint points to: JSON members (no braces, no leading comma)
 * with json, else indented lines of text. */
typedef void (*cli_details_fn)(FILE *f, bool json, const void *context);
/* cli_report_failure, then the details. */
void cli_report_failure_with(const cli_tls *c, tether_status st, const char *during, bool json,
                             cli_details_fn details, const void *context);

/* Untrusted bytes (a server's response), cut or not, printed so that nothing in them can
 * break the output: as a JSON string with every byte outside printable ASCII as \u00XX, or as
 * text with those as \xXX. */
void cli_untrusted_bytes(FILE *f, const uint8_t *p, size_t len, bool json);

/* The id scope and registration id: the flags', else those of the result stored in --state.
 * Returns -1 with both copied, else an exit status after saying what is missing. */
int cli_provisioning_ids(const cli_args *a, char *scope, size_t scope_cap, char *reg_id,
                         size_t reg_cap);

/* The details of a failed DPS registration (a tether_dps_result): status, errorCode and
 * message, the operation's state, and the last response as it came. */
void cli_dps_details(FILE *f, bool json, const void *result);

/* Writes @p tmpl into @p out with each "{n}" replaced by @p n (telemetry numbering); returns
 * the bytes written, at most cap - 1. */
size_t cli_expand_template(const char *tmpl, size_t tmpl_len, long n, char *out, size_t cap);

/* JSON helpers: a quoted, escaped string. */
void cli_json_string(FILE *f, const char *s, size_t len);

/* Heap and TLS facts for a summary, as JSON members (no braces) or as one human line. */
void cli_json_tls_summary(FILE *f, const cli_tls *c);
void cli_print_tls_summary(FILE *f, const cli_tls *c);

/* Queries an SNTP server ("host" or "host:port") and applies the offset to tether's clock.
 * Prints a line with --verbose, or the failure; returns the status. */
tether_status cli_sync_clock(const char *server, bool verbose, bool json);

/* Splits "host:port" / "[v6]:port" / "host" into its parts; false if the port is invalid. */
bool cli_split_host_port(const char *text, char *host, size_t host_cap, uint16_t *port,
                         uint16_t default_port);

int cmd_mqtt(int argc, char **argv);
int cmd_time(int argc, char **argv);
int cmd_device(const char *name, int argc, char **argv);
int cmd_sas(int argc, char **argv);
int cmd_quickstart(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

#ifndef TETHER_VERSION
#define TETHER_VERSION "0.0.0"
#endif
#define TETHER_CLI_VERSION TETHER_VERSION
int cmd_explain(int argc, char **argv);

#endif
