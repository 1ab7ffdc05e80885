/* The hub session against a scripted server and a clock the test drives: how often it
 * reconnects whatever ended the connection (refused connects, drops right after CONNACK, a
 * silent keep-alive, refused CONNACKs), that the backoff resets only after a healthy
 * connection, the per-minute cap, the retries of the twin GET and the reported patch, and an
 * oversized QoS 1 message acknowledged. Counts and intervals, measured on the fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/hub_session.h"

#include "session_peer.h"

static tether_hub_session hub;
static tether_tls tls;
static tether_hub_config cfg;

#define MAX_EVENTS 512
static tether_hub_event events[MAX_EVENTS];
static size_t nevents;
static int twins;
static int c2ds;

static void on_event(void *context, const tether_hub_event *e)
{
    (void)context;
    if (nevents < MAX_EVENTS)
        events[nevents++] = *e;
}

static void on_twin(void *context, const char *json, size_t len)
{
    (void)context;
    (void)json;
    (void)len;
    twins++;
}

static void on_c2d(void *context, const tether_hub_c2d *m)
{
    (void)context;
    (void)m;
    c2ds++;
}

/* A hub that answers the twin GET with 200 and a reported patch with 204. */
static int twin_status[8], report_status[8]; /* scripted statuses in order; 0: the default */
static size_t twin_n, report_n;

static void hub_answers(const char *topic, const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    char rid[16], t[128];
    topic_rid(topic, rid, sizeof rid);
    if (strncmp(topic, "$iothub/twin/GET/", 17) == 0) {
        int st = twin_n < 8 && twin_status[twin_n] ? twin_status[twin_n] : 200;
        twin_n++;
        snprintf(t, sizeof t, "$iothub/twin/res/%d/?$rid=%s", st, rid);
        peer_publish(t, st == 200 ? "{\"desired\":{\"$version\":1},\"reported\":{}}"
                                  : "{\"errorCode\":429001,\"message\":\"throttled\"}");
    } else if (strncmp(topic, "$iothub/twin/PATCH/properties/reported/", 39) == 0) {
        int st = report_n < 8 && report_status[report_n] ? report_status[report_n] : 204;
        report_n++;
        snprintf(t, sizeof t, "$iothub/twin/res/%d/?$rid=%s&$version=%zu", st, rid, report_n);
        peer_publish(t, "");
    }
}

static int setup(void **state)
{
    (void)state;
    peer_reset_all();
    S.on_publish = hub_answers;
    memset(twin_status, 0, sizeof twin_status);
    memset(report_status, 0, sizeof report_status);
    twin_n = report_n = 0;
    nevents = 0;
    twins = c2ds = 0;
    cfg = tether_hub_config_default();
    cfg.host = "hub.example";
    cfg.device_id = "dev-1";
    cfg.max_failures = 1000;
    cfg.on_event = on_event;
    cfg.on_twin = on_twin;
    cfg.on_c2d = on_c2d;
    return 0;
}

static void start(void)
{
    assert_int_equal(tether_hub_session_start(&hub, &tls, &cfg), TETHER_OK);
}

/* Runs the session for ms of fake time. */
static tether_status run_for(uint64_t ms)
{
    uint64_t end = clock_ms + ms;
    tether_status st = TETHER_OK;
    while (clock_ms < end && st == TETHER_OK)
        st = tether_hub_session_process(&hub, 1000);
    return st;
}

/* Every gap between the attempts first, first + 1, ... (count of them) lies in the
 * equal-jitter range of its step: [b/2, b] with b = min(60 s, 1 s * 2^k), k counting from
 * step0 (the wait between the loss and the first reconnect is step 0). */
static void assert_gaps_grow(size_t first, size_t count, size_t step0)
{
    for (size_t i = 0; i + 1 < count; i++) {
        size_t k = i + step0;
        uint64_t gap = connect_at[first + i + 1] - connect_at[first + i];
        uint64_t b = k < 6 ? 1000u << k : 60000u;
        if (b > 60000u)
            b = 60000u;
        /* The connection itself may have lasted a little before it ended. */
        if (gap < b / 2 || gap > b + 1000u)
            fail_msg("gap %zu: %llu ms, wanted [%llu, %llu]", k, (unsigned long long)gap,
                     (unsigned long long)(b / 2), (unsigned long long)(b + 1000u));
    }
}

static size_t count_events(tether_hub_event_kind kind, tether_status cause)
{
    size_t n = 0;
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == kind && (cause == TETHER_OK || events[i].cause == cause))
            n++;
    return n;
}

static void refused_connects_back_off_exponentially(void **state)
{
    (void)state;
    start();
    P.closing = true;                          /* the hub goes away... */
    S.refuse_connect = TETHER_CONNECT_REFUSED; /* ...and stays away */
    assert_int_equal(run_for(10 * 60000u), TETHER_OK);
    print_message("refused: %zu attempts in 600 s, at most %zu in any 60 s\n", connects,
                  max_connects_in(60000u));
    /* 1 + about 6 in the first minute of the outage, then one every 30-60 s. */
    assert_true(connects >= 10 && connects <= 25);
    assert_gaps_grow(1, connects - 1, 1);
    assert_true(max_connects_in(60000u) <= 7);
    /* The waits were slept, not spun. */
    assert_true(slept_ms >= 9 * 60000u);
    assert_true(count_events(TETHER_HUB_EVENT_WAITING, TETHER_CONNECT_REFUSED) >= 9);
}

/* Another client with the same identity: every connection is dropped right after CONNACK and
 * the twin answer. Before the fix: one reconnect per poll slice, forever. */
static void drops_right_after_connack_back_off_and_are_named(void **state)
{
    (void)state;
    S.close_after_ms = 100;
    start();
    assert_int_equal(run_for(5 * 60000u), TETHER_OK);
    print_message("dropped after CONNACK: %zu connections in 300 s, at most %zu in any 60 s\n",
                  connects, max_connects_in(60000u));
    assert_true(connects >= 6 && connects <= 15);
    assert_int_equal(connacks, connects);
    assert_gaps_grow(0, connects, 0);
    assert_true(max_connects_in(60000u) <= 7);
    /* Each connection asked for the twin once: no request storm either. */
    assert_int_equal(requests_to("$iothub/twin/GET/", NULL, 0), connects);
    assert_true(count_events(TETHER_HUB_EVENT_WAITING, TETHER_HUB_DROPPED_AFTER_CONNECT) >=
                connects - 3);
    assert_true(slept_ms >= 4 * 60000u);
}

/* A connection that stays up 61 s is healthy: the next wait starts again at 0.5-1 s. One
 * that stays up 20 s is not: the waits keep growing. */
static void backoff_resets_only_after_a_healthy_connection(void **state)
{
    (void)state;
    S.close_after_ms = TETHER_HUB_HEALTHY_MS + 1000u;
    start();
    assert_int_equal(run_for(6 * 60000u), TETHER_OK);
    assert_true(connects >= 5);
    for (size_t k = 0; k + 1 < connects; k++) {
        uint64_t gap = connect_at[k + 1] - connect_at[k] - S.close_after_ms;
        assert_true(gap >= 500 && gap <= 1000 + 200);
    }
    assert_int_equal(count_events(TETHER_HUB_EVENT_WAITING, TETHER_HUB_DROPPED_AFTER_CONNECT), 0);

    setup(NULL);
    S.close_after_ms = 20000u;
    start();
    assert_int_equal(run_for(6 * 60000u), TETHER_OK);
    assert_true(connects >= 4);
    for (size_t k = 0; k + 1 < connects; k++) {
        uint64_t gap = connect_at[k + 1] - connect_at[k] - S.close_after_ms;
        uint64_t b = k < 6 ? 1000u << k : 60000u;
        assert_true(gap >= (b > 60000u ? 60000u : b) / 2);
    }
}

/* The server never answers PINGREQ: the keep-alive ends each connection, and the reconnects
 * back off as for any other end. */
static void keep_alive_timeouts_back_off(void **state)
{
    (void)state;
    cfg.keep_alive_s = 2;
    S.silent_pings = true;
    start();
    assert_int_equal(run_for(3 * 60000u), TETHER_OK);
    assert_true(count_events(TETHER_HUB_EVENT_DISCONNECTED, TETHER_MQTT_KEEPALIVE_TIMEOUT) >= 3);
    assert_true(pingreqs >= 3);
    assert_true(max_connects_in(60000u) <= 7);
    /* Each connection lasts two keep-alive periods (ping after 2 s idle, 2 s for the answer). */
    for (size_t k = 0; k + 1 < connects; k++) {
        uint64_t gap = connect_at[k + 1] - connect_at[k];
        uint64_t b = k < 6 ? 1000u << k : 60000u;
        assert_true(gap >= 4000u + (b > 60000u ? 60000u : b) / 2);
    }
}

/* CONNACK 3 (server unavailable) is transient: retried with backoff, counted as failures up
 * to max_failures. */
static void refused_connack_backs_off_until_unreachable(void **state)
{
    (void)state;
    cfg.max_failures = 6;
    start();
    P.closing = true;
    S.connack = 3;
    tether_status st = run_for(10 * 60000u);
    assert_int_equal(st, TETHER_HUB_UNREACHABLE);
    assert_int_equal(connects, 1 + 6); /* the first, then 6 refused */
    assert_gaps_grow(1, connects - 1, 1);
}

/* The hub is down when the device starts: start() says so, and process() goes on trying with
 * backoff, without counting towards reprovisioning sooner than max_failures. */
static void a_failed_first_connect_is_retried_with_backoff(void **state)
{
    (void)state;
    S.refuse_connect = TETHER_CONNECT_REFUSED;
    assert_int_equal(tether_hub_session_start(&hub, &tls, &cfg), TETHER_CONNECT_REFUSED);
    assert_int_equal(run_for(20000u), TETHER_OK);
    assert_true(connects >= 4 && connects <= 6);
    assert_gaps_grow(0, connects, 0);
    S.refuse_connect = TETHER_OK;
    assert_int_equal(run_for(60000u), TETHER_OK);
    assert_int_equal(tether_hub_session_stats(&hub)->connects, 1);
    assert_int_equal(requests_to("$iothub/twin/GET/", NULL, 0), 1);
}

/* Closed right after CONNACK, before the subscription is answered: the hub accepted the
 * device, so it is an early drop (named), not a failed connect (no reprovisioning). */
static void closed_before_suback_is_an_early_drop(void **state)
{
    (void)state;
    cfg.max_failures = 3;
    S.close_at_connack = true;
    assert_int_equal(tether_hub_session_start(&hub, &tls, &cfg), TETHER_CONNECTION_CLOSED);
    assert_int_equal(run_for(5 * 60000u), TETHER_OK);
    assert_true(connects >= 6 && connects <= 15);
    assert_gaps_grow(0, connects, 0);
    assert_true(count_events(TETHER_HUB_EVENT_WAITING, TETHER_HUB_DROPPED_AFTER_CONNECT) >=
                connects - 3);
}

/* Whatever the backoff options, never more than TETHER_HUB_CONNECTS_PER_MINUTE in 60 s. */
static void attempts_per_minute_are_capped(void **state)
{
    (void)state;
    cfg.backoff.base_ms = 10;
    cfg.backoff.cap_ms = 10;
    cfg.backoff.min_ms = 10;
    S.close_after_ms = 1;
    start();
    assert_int_equal(run_for(5 * 60000u), TETHER_OK);
    assert_true(max_connects_in(60000u) <= TETHER_HUB_CONNECTS_PER_MINUTE);
    assert_true(connects >= 4 * TETHER_HUB_CONNECTS_PER_MINUTE);
}

/* The twin GET answered 429, then 500, then 200: retried with a growing wait, reported, and
 * the twin arrives. */
static void twin_throttled_then_answered(void **state)
{
    (void)state;
    twin_status[0] = 429;
    twin_status[1] = 500;
    start();
    assert_int_equal(run_for(10000u), TETHER_OK);
    uint64_t at[8];
    assert_int_equal(requests_to("$iothub/twin/GET/", at, 8), 3);
    assert_true(at[1] - at[0] >= 500 && at[1] - at[0] <= 1200);
    assert_true(at[2] - at[1] >= 1000 && at[2] - at[1] <= 2200);
    assert_int_equal(twins, 1);
    assert_int_equal(tether_hub_session_stats(&hub)->twin_requests, 3);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REQUEST_FAILED, TETHER_HUB_THROTTLED), 1);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REQUEST_FAILED, TETHER_HUB_SERVER_ERROR), 1);
    assert_int_equal(events[1].kind, TETHER_HUB_EVENT_REQUEST_FAILED); /* after CONNECTED */
    assert_int_equal(events[1].status, 429);
    assert_int_equal(events[1].request, TETHER_HUB_REQUEST_TWIN);
    assert_true(events[1].wait_ms >= 500);
    assert_int_equal(connects, 1); /* no reconnect for it */
}

/* Any other 4xx is final: one request, a named status, no retry. */
static void twin_refused_is_final(void **state)
{
    (void)state;
    twin_status[0] = 404;
    start();
    assert_int_equal(run_for(60000u), TETHER_OK);
    assert_int_equal(requests_to("$iothub/twin/GET/", NULL, 0), 1);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REQUEST_FAILED, TETHER_HUB_REQUEST_REFUSED), 1);
    assert_int_equal(twins, 0);
}

/* A reported patch answered 503: sent again, same body, until the hub stores it; a 400 is
 * final. */
static void reported_patch_retried_after_5xx(void **state)
{
    (void)state;
    report_status[0] = 503;
    report_status[1] = 400;
    start();
    static const char patch[] = "{\"fw\":\"1.0\"}";
    assert_int_equal(tether_hub_session_report(&hub, patch, sizeof patch - 1), TETHER_OK);
    assert_int_equal(run_for(10000u), TETHER_OK);
    uint64_t at[4];
    assert_int_equal(requests_to("$iothub/twin/PATCH/", at, 4), 2);
    assert_true(at[1] - at[0] >= 500);
    assert_int_equal(requests[nrequests - 1].payload_len, sizeof patch - 1);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REQUEST_FAILED, TETHER_HUB_SERVER_ERROR), 1);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REQUEST_FAILED, TETHER_HUB_REQUEST_REFUSED), 1);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REPORTED, TETHER_OK), 0);
    /* The next patch is stored at once. */
    assert_int_equal(tether_hub_session_report(&hub, patch, sizeof patch - 1), TETHER_OK);
    assert_int_equal(run_for(1000u), TETHER_OK);
    assert_int_equal(count_events(TETHER_HUB_EVENT_REPORTED, TETHER_OK), 1);
    assert_int_equal(tether_hub_session_stats(&hub)->report_requests, 3);
}

/* A 20,000-byte QoS 1 C2D message into the 8 KB receive buffer: dropped, reported with both
 * sizes, and acknowledged so the hub does not deliver it again; the next one arrives. */
static void oversized_c2d_is_acknowledged_and_reported(void **state)
{
    (void)state;
    start();
    static uint8_t big[20000];
    memset(big, 'x', sizeof big);
    peer_publish_qos("devices/dev-1/messages/devicebound/%24.mid=1", big, sizeof big, 1, 77);
    peer_publish_qos("devices/dev-1/messages/devicebound/%24.mid=2", (const uint8_t *)"ok", 2, 1,
                     78);
    assert_int_equal(run_for(2000u), TETHER_OK);
    assert_int_equal(count_events(TETHER_HUB_EVENT_DISCARDED, TETHER_OK), 1);
    for (size_t i = 0; i < nevents; i++)
        if (events[i].kind == TETHER_HUB_EVENT_DISCARDED) {
            assert_true(events[i].size > sizeof big);
            assert_int_equal(events[i].buffer_size, TETHER_HUB_RX_LEN);
        }
    assert_int_equal(npubacks, 2);
    assert_int_equal(pubacks[0], 77);
    assert_int_equal(pubacks[1], 78);
    assert_int_equal(c2ds, 1);
    assert_int_equal(tether_hub_session_stats(&hub)->discarded, 1);
    assert_int_equal(connects, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(refused_connects_back_off_exponentially, setup),
        cmocka_unit_test_setup(drops_right_after_connack_back_off_and_are_named, setup),
        cmocka_unit_test_setup(backoff_resets_only_after_a_healthy_connection, setup),
        cmocka_unit_test_setup(keep_alive_timeouts_back_off, setup),
        cmocka_unit_test_setup(refused_connack_backs_off_until_unreachable, setup),
        cmocka_unit_test_setup(attempts_per_minute_are_capped, setup),
        cmocka_unit_test_setup(a_failed_first_connect_is_retried_with_backoff, setup),
        cmocka_unit_test_setup(closed_before_suback_is_an_early_drop, setup),
        cmocka_unit_test_setup(twin_throttled_then_answered, setup),
        cmocka_unit_test_setup(twin_refused_is_final, setup),
        cmocka_unit_test_setup(reported_patch_retried_after_5xx, setup),
        cmocka_unit_test_setup(oversized_c2d_is_acknowledged_and_reported, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
