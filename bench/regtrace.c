/* Bench only: one DPS registration through the library's API, printing the heap in use at each
 * step (TCP connect, each TLS handshake stage, MQTT connect + register sent, responses, polls,
 * assigned, closed) as JSON for bench/heap.svg; also the caller-owned memory of this build
 * (sizeof the TLS context and the DPS and hub sessions: static RAM, not heap).
 * usage: regtrace HOST PORT DIAL SCOPE REGID CAFILE CERT KEY [tls12] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tether/dps_session.h"
#include "tether/heap.h"
#include "tether/hub_session.h"
#include "tether/port.h"
#include "tether/tls.h"

/* Under valgrind massif (host only), BENCH_SNAPSHOT=FILE writes a detailed snapshot of the heap
 * when the first register request is out: what stays allocated while connected, by allocation
 * site. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HAVE_VALGRIND 1
#endif
#endif

static void snapshot_connected(void)
{
#ifdef HAVE_VALGRIND
    static int done;
    const char *path = getenv("BENCH_SNAPSHOT");
    if (path && !done++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "detailed_snapshot %s", path);
        VALGRIND_MONITOR_COMMAND(cmd);
    }
#endif
}

static int first = 1;

static void point(const char *what)
{
    tether_heap_stats st;
    tether_heap_get_stats(&st);
    printf("%s\n  {\"step\":\"%s\",\"in_use\":%zu,\"peak\":%zu}", first ? "" : ",", what, st.in_use,
           st.peak);
    first = 0;
}

static void on_stage(void *context, tether_tls_stage stage, const tether_tls_diag *d)
{
    (void)context, (void)d;
    point(tether_tls_stage_name(stage));
}

static void on_progress(void *context, const tether_dps_progress *p)
{
    (void)context;
    static const char *names[] = {"DPS connecting", "MQTT connected, register sent",
                                  "poll sent",      "DPS response",
                                  "waiting",        "connection lost"};
    point(p->event <= TETHER_DPS_EVENT_CONNECTION_LOST ? names[p->event] : "?");
    /* The handshake is over and its credentials are freed once MQTT runs: what stays. */
    if (p->event == TETHER_DPS_EVENT_REGISTERING)
        snapshot_connected();
}

static uint8_t ca[16384], cert[16384], key[16384];
static tether_tls tls;
static tether_dps_session dps;

int main(int argc, char **argv)
{
    if (argc < 9)
        return 2;
    size_t ca_len, cert_len, key_len;
    if (tether_port_read_file(argv[6], ca, sizeof ca - 1, &ca_len) != TETHER_OK ||
        tether_port_read_file(argv[7], cert, sizeof cert - 1, &cert_len) != TETHER_OK ||
        tether_port_read_file(argv[8], key, sizeof key - 1, &key_len) != TETHER_OK)
        return 1;
    tether_heap_use_system(0);
    printf("{\"sizeof_tls\":%zu,\"sizeof_dps_session\":%zu,\"sizeof_hub_session\":%zu,\"steps\":[",
           sizeof(tether_tls), sizeof(tether_dps_session), sizeof(tether_hub_session));
    point("start");
    if (tether_tls_init(&tls) != TETHER_OK ||
        tether_tls_add_trust(&tls, ca, ca_len + 1) != TETHER_OK ||
        tether_tls_set_identity(&tls, cert, cert_len + 1, key, key_len + 1, NULL) != TETHER_OK)
        return 1;
    point("credentials parsed");
    tether_dps_config cfg = tether_dps_config_default();
    cfg.endpoint = argv[1];
    cfg.port = (uint16_t)atoi(argv[2]);
    cfg.connect_to = argv[3];
    cfg.id_scope = argv[4];
    cfg.registration_id = argv[5];
    cfg.tls.on_stage = on_stage;
    cfg.tls.versions = argc > 9 && strcmp(argv[9], "tls12") == 0 ? TETHER_TLS_VERSIONS_1_2
                                                                 : TETHER_TLS_VERSIONS_AZURE;
    cfg.on_progress = on_progress;
    tether_dps_result r;
    tether_status st = tether_dps_register(&dps, &tls, &cfg, &r);
    point(st == TETHER_OK ? "assigned" : tether_status_name(st));
    tether_tls_free(&tls);
    point("closed");
    printf("\n],\"status\":\"%s\",\"hub\":\"%s\"}\n", tether_status_name(st), r.assigned_hub);
    return st == TETHER_OK ? 0 : 1;
}
