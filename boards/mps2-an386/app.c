/*
 * The device on the emulated mps2-an386: the whole tether flow on the MCU, through the UART
 * modem. Modes (QEMU -semihosting-config arg=...):
 *
 *   flow (default)   time of day from the modem (the clock gate is shown to hold before it),
 *                    the stored record or else DPS (X.509) and the record saved then exit 10
 *                    ("reboot"); with a record: the hub, QoS 1 telemetry, a reported property,
 *                    a direct method answered, a C2D message; then one "MCU {json}" line.
 *   store-save=HUB   saves a record for HUB in the flash store (the power-cut test).
 *   store-show       prints the stored record's hub.
 *   cut=K            power cut at flash write step K (see flash_emul.c).
 *   flash=PATH       the host file behind the emulated flash (default mcu-flash.bin).
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "factory.h"
#include "../../src/port/cortex-m/port_cortex_m.h"
#include "tether/dps_session.h"
#include "tether/heap.h"
#include "tether/hub_session.h"
#include "tether/nor_store.h"
#include "tether/port.h"
#include "tether/sntp.h"
#include "tether/status.h"
#include "tether/store.h"
#include "tether/tls.h"

#define EXIT_REBOOT     10 /* asks scripts/mcu to restart the emulator (flash kept) */
#define RECORD_BASE     0u /* the store's two sectors: the whole emulated NOR region */
#define HUB_DEADLINE_MS 90000u

static tether_tls tls;
/* DPS and the hub session are never alive together: one block of RAM serves both. */
static union {
    tether_dps_session dps;
    tether_hub_session hub;
} session;
static tether_dps_result result;
static tether_provisioning_record record;
static uint8_t scratch[TETHER_RECORD_MAX];
static tether_nor_store nor_store;

static struct {
    bool clock_gate_held;
    bool registered;
    bool record_stored;
    bool reboot_skipped_dps;
    bool telemetry_acked;
    bool reported_acked;
    bool method_answered;
    bool c2d_received;
    uint32_t hub_connects;
    char c2d[64];
    /* The first failure, named in the report line: scripts/mcu puts it in its summary. */
    tether_status status;
    const char *failed;
} flow;

static void fail(const char *what, tether_status st)
{
    board_printf("FAIL %s: %s (%s)\n", what, tether_status_name(st), tether_status_message(st));
    if (flow.failed == NULL) {
        flow.status = st;
        flow.failed = what;
    }
    if (tls.diag.status != TETHER_OK) {
        static char text[768];
        tether_tls_describe(tether_tls_last_diag(&tls), text, sizeof text);
        board_puts(text);
    }
}

static tether_store open_store(void)
{
    char path[96], cut[16];
    if (board_arg("flash", path, sizeof path) == NULL)
        strcpy(path, "mcu-flash.bin");
    uint32_t cut_at = 0;
    if (board_arg("cut", cut, sizeof cut) != NULL)
        for (const char *c = cut; *c >= '0' && *c <= '9'; c++)
            cut_at = cut_at * 10u + (uint32_t)(*c - '0');
    board_flash_init(path, cut_at);
    tether_nor nor = board_flash_driver();
    return tether_nor_store_init(&nor_store, &nor, RECORD_BASE);
}

/* ---- the power-cut test's two modes ---------------------------------------------------------- */

static int store_save(const tether_store *store, const char *hub)
{
    memset(&record, 0, sizeof record);
    strcpy(record.id_scope, "0ne00000000");
    strcpy(record.registration_id, "store-test");
    strncpy(record.assigned_hub, hub, sizeof record.assigned_hub - 1);
    strcpy(record.device_id, "store-test");
    tether_status st = tether_store_save(store, scratch, sizeof scratch, &record);
    board_printf("STORE saved %s: %s after %lu write steps\n", hub, tether_status_name(st),
                 (unsigned long)board_flash_steps());
    return st == TETHER_OK ? 0 : 1;
}

static int store_show(const tether_store *store)
{
    tether_status st = tether_store_load(store, scratch, sizeof scratch, NULL, &record);
    board_printf("STORE record %s %s\n", tether_status_name(st),
                 st == TETHER_OK ? record.assigned_hub : "-");
    return st == TETHER_OK || st == TETHER_STORE_EMPTY ? 0 : 1;
}

/* ---- the hub's callbacks --------------------------------------------------------------------- */

static uint16_t on_method(void *context, tether_view name, const uint8_t *payload, size_t len,
                          char *response, size_t cap, size_t *response_len)
{
    (void)context;
    (void)payload;
    (void)len;
    static const char ok[] = "{\"pong\":true,\"board\":\"mps2-an386\"}";
    if (!tether_view_equals(name, "ping") || cap < sizeof ok - 1)
        return 404;
    memcpy(response, ok, sizeof ok - 1);
    *response_len = sizeof ok - 1;
    flow.method_answered = true;
    board_puts("EVENT method ping answered 200\n");
    return 200;
}

static void on_c2d(void *context, const tether_hub_c2d *m)
{
    (void)context;
    size_t n = m->payload_len < sizeof flow.c2d - 1 ? m->payload_len : sizeof flow.c2d - 1;
    /* Kept printable and free of JSON metacharacters: it goes into the report line. */
    for (size_t i = 0; i < n; i++) {
        uint8_t c = m->payload[i];
        flow.c2d[i] = c < 0x20 || c > 0x7e || c == '"' || c == '\\' ? '?' : (char)c;
    }
    flow.c2d[n] = 0;
    flow.c2d_received = true;
    board_printf("EVENT c2d \"%s\"\n", flow.c2d);
}

static void on_event(void *context, const tether_hub_event *e)
{
    (void)context;
    if (e->kind == TETHER_HUB_EVENT_CONNECTED) {
        flow.hub_connects++;
        board_puts("EVENT hub connected\n");
    } else if (e->kind == TETHER_HUB_EVENT_REPORTED) {
        flow.reported_acked = true;
        board_printf("EVENT reported property stored, version %lu\n", (unsigned long)e->version);
    } else if (e->kind == TETHER_HUB_EVENT_DISCONNECTED) {
        board_printf("EVENT hub disconnected: %s\n", tether_status_name(e->cause));
    }
}

/* ---- the flow -------------------------------------------------------------------------------- */

static tether_status registration(const tether_store *store)
{
    tether_dps_config cfg = tether_dps_config_default();
    cfg.endpoint = factory_dps_endpoint;
    cfg.connect_to = factory_connect_to[0] ? factory_connect_to : NULL;
    cfg.port = factory_port;
    cfg.id_scope = factory_id_scope;
    cfg.registration_id = factory_registration_id;
    board_printf("DPS registering %s with %s:%u\n", factory_registration_id, factory_dps_endpoint,
                 (unsigned)factory_port);
    tether_status st = tether_dps_register(&session.dps, &tls, &cfg, &result);
    if (st != TETHER_OK) {
        fail("DPS registration", st);
        return st;
    }
    flow.registered = true;
    board_printf("DPS assigned %s to %s\n", result.device_id, result.assigned_hub);
    strncpy(record.assigned_hub, result.assigned_hub, sizeof record.assigned_hub - 1);
    strncpy(record.device_id, result.device_id, sizeof record.device_id - 1);
    strncpy(record.connect_to, factory_connect_to, sizeof record.connect_to - 1);
    record.assigned_at = tether_clock_unix_s();
    st = tether_store_save(store, scratch, sizeof scratch, &record);
    if (st != TETHER_OK) {
        fail("record save", st);
        return st;
    }
    flow.record_stored = true;
    board_printf("STORE record saved in flash (%lu write steps)\n",
                 (unsigned long)board_flash_steps());
    return TETHER_OK;
}

static bool hub_done(const tether_hub_session *hub)
{
    const tether_hub_stats *s = tether_hub_session_stats(hub);
    flow.telemetry_acked = s->telemetry_sent > 0 && tether_hub_session_pending(hub) == 0;
    return flow.telemetry_acked && flow.reported_acked && flow.method_answered && flow.c2d_received;
}

static tether_status hub(void)
{
    static tether_hub_config cfg;
    cfg = tether_hub_config_default();
    cfg.host = record.assigned_hub;
    cfg.device_id = record.device_id;
    cfg.connect_to = record.connect_to[0] ? record.connect_to : NULL;
    cfg.port = factory_port;
    cfg.on_method = on_method;
    cfg.on_c2d = on_c2d;
    cfg.on_event = on_event;
    cfg.max_failures = 3;
    board_printf("HUB connecting to %s as %s (no DPS)\n", record.assigned_hub, record.device_id);
    tether_status st = tether_hub_session_start(&session.hub, &tls, &cfg);
    if (st != TETHER_OK) {
        fail("hub connection", st);
        return st;
    }
    static const char body[] = "{\"temperature\":21.5,\"board\":\"mps2-an386\"}";
    tether_hub_property ct = {tether_view_of(TETHER_HUB_PROPERTY_CONTENT_TYPE),
                              tether_view_of("application/json")};
    st = tether_hub_session_send(&session.hub, (const uint8_t *)body, sizeof body - 1, &ct, 1, 1);
    if (st == TETHER_OK) {
        static const char rep[] = "{\"firmware\":\"tether-mcu\",\"board\":\"mps2-an386\"}";
        st = tether_hub_session_report(&session.hub, rep, sizeof rep - 1);
    }
    board_puts("HUB telemetry (QoS 1) and reported property sent; waiting for a method and C2D\n");
    uint64_t end = tether_port_now_ms() + HUB_DEADLINE_MS;
    while (st == TETHER_OK && !hub_done(&session.hub) && tether_port_now_ms() < end)
        st = tether_hub_session_process(&session.hub, 500);
    if (flow.telemetry_acked)
        board_puts("EVENT telemetry acknowledged (PUBACK)\n");
    if (st == TETHER_OK && !hub_done(&session.hub))
        st = TETHER_TIMEOUT; /* the deadline passed before the method, C2D or acks came */
    tether_hub_session_stop(&session.hub);
    if (st != TETHER_OK)
        fail("hub session", st);
    return st;
}

static void report(void)
{
    board_memory m;
    board_memory_get(&m);
    tether_heap_stats h;
    tether_heap_get_stats(&h);
    uint32_t ram_static = m.data + m.bss;
    uint32_t total = ram_static + (uint32_t)h.arena_peak + m.stack_peak;
    board_printf(
        "MCU {\"registered\":%s,\"record_stored\":%s,\"reboot_skipped_dps\":%s,"
        "\"clock_gate_held\":%s,\"telemetry_acked\":%s,\"reported_acked\":%s,"
        "\"method_answered\":%s,\"c2d_received\":%s,\"c2d\":\"%s\","
        "\"status\":\"%s\",\"failed\":\"%s\",",
        flow.registered ? "true" : "false", flow.record_stored ? "true" : "false",
        flow.reboot_skipped_dps ? "true" : "false", flow.clock_gate_held ? "true" : "false",
        flow.telemetry_acked ? "true" : "false", flow.reported_acked ? "true" : "false",
        flow.method_answered ? "true" : "false", flow.c2d_received ? "true" : "false", flow.c2d,
        tether_status_name(flow.failed ? flow.status : TETHER_OK), flow.failed ? flow.failed : "");
    board_printf("\"ram_region\":%lu,\"data\":%lu,\"bss\":%lu,\"ram_static\":%lu,"
                 "\"heap_peak\":%lu,\"heap_requested_peak\":%lu,\"heap_arena\":%lu,"
                 "\"stack_peak\":%lu,\"stack_reserved\":%lu,\"ram_total\":%lu,"
                 "\"libc_malloc_attempts\":%lu}\n",
                 (unsigned long)m.ram_region, (unsigned long)m.data, (unsigned long)m.bss,
                 (unsigned long)ram_static, (unsigned long)h.arena_peak, (unsigned long)h.peak,
                 (unsigned long)m.heap_len, (unsigned long)m.stack_peak, (unsigned long)m.stack_len,
                 (unsigned long)total, (unsigned long)board_libc_malloc_attempts());
}

static int device_flow(const tether_store *store)
{
    tether_cortex_m_init();
    tether_status st = tether_tls_init(&tls);
    if (st == TETHER_OK)
        st = tether_tls_add_trust(&tls, (const uint8_t *)factory_trust_anchor,
                                  factory_trust_anchor_len);
    if (st == TETHER_OK)
        st = tether_tls_set_identity(&tls, (const uint8_t *)factory_device_chain,
                                     factory_device_chain_len, (const uint8_t *)factory_device_key,
                                     factory_device_key_len, NULL);
    memset(&record, 0, sizeof record);
    strncpy(record.id_scope, factory_id_scope, sizeof record.id_scope - 1);
    strncpy(record.registration_id, factory_registration_id, sizeof record.registration_id - 1);
    if (st == TETHER_OK)
        st = tether_tls_identity_sha256(&tls, record.credential_sha256);
    if (st != TETHER_OK) {
        fail("credentials", st);
        report(); /* every end of the flow reports, naming the status */
        return 1;
    }

    /* The clock gate on the MCU: the board boots at 1970; no TLS until the modem gave the time. */
    tether_tls_options o = tether_tls_options_default();
    o.host = factory_dps_endpoint;
    o.connect_host = factory_connect_to[0] ? factory_connect_to : NULL;
    o.port = factory_port;
    st = tether_tls_connect(&tls, &o);
    flow.clock_gate_held = st == TETHER_CLOCK_NOT_SET;
    board_printf("CLOCK before the modem's time: TLS %s (clock reads %ld s)\n",
                 tether_status_name(st), (long)tether_clock_unix_s());
    if (st == TETHER_OK)
        tether_tls_close(&tls);
    st = tether_cortex_m_sync_time();
    if (st != TETHER_OK) {
        fail("time of day from the modem", st);
        report();
        return 1;
    }
    board_printf("CLOCK set from the modem: %ld s\n", (long)tether_clock_unix_s());

    tether_provisioning_record me = record;
    st = tether_store_load(store, scratch, sizeof scratch, &me, &record);
    if (st == TETHER_OK) {
        flow.reboot_skipped_dps = true;
        board_printf("STORE record found: %s on %s; DPS skipped\n", record.device_id,
                     record.assigned_hub);
        st = hub();
    } else {
        board_printf("STORE no usable record (%s): registering\n", tether_status_name(st));
        record = me;
        st = registration(store);
        if (st == TETHER_OK) {
            report();
            board_puts("REBOOT to connect from the stored record\n");
            return EXIT_REBOOT;
        }
    }
    report();
    return st == TETHER_OK && hub_done(&session.hub) ? 0 : 1;
}

int main(void)
{
    size_t heap_len;
    void *heap = board_heap(&heap_len);
    if (tether_heap_use_arena(heap, heap_len) != TETHER_OK)
        return 1;
    tether_store store = open_store();
    char arg[64];
    if (board_arg("store-save", arg, sizeof arg) != NULL)
        return store_save(&store, arg);
    if (strstr(board_cmdline(), "store-show") != NULL)
        return store_show(&store);
    board_puts("BOOT tether on mps2-an386 (Cortex-M4, no RTOS)\n");
    return device_flow(&store);
}
