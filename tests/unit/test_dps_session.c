/* The DPS session against a scripted server and a clock the test drives: the poll interval
 * when retry-after is 0 or absent, retry-after honoured (small, large, past the deadline),
 * 429 and 5xx retried, other 4xx final; requests counted and their intervals measured. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tether/dps_session.h"

#include "session_peer.h"

static tether_dps_session dps;
static tether_tls tls;
static tether_dps_config cfg;
static tether_dps_result result;

#define MAX_PROGRESS 256
static tether_dps_progress progress[MAX_PROGRESS];
static size_t nprogress;

static void on_progress(void *context, const tether_dps_progress *p)
{
    (void)context;
    if (nprogress < MAX_PROGRESS)
        progress[nprogress++] = *p;
}

/* The server's script: the answers to the register request and the polls, in order. Each has
 * a status and a retry-after query ("" for none); past the last, the last repeats. */
typedef struct answer {
    int status;
    const char *query;        /* e.g. "&retry-after=0" */
    const char *status_field; /* "assigning", "assigned", or NULL for an error payload */
} answer;
static answer script[16];
static size_t script_len, answered;

static const char assigned_json[] =
    "{\"operationId\":\"op-1\",\"status\":\"assigned\",\"registrationState\":{"
    "\"registrationId\":\"dev-1\",\"assignedHub\":\"hub.example\",\"deviceId\":\"dev-1\","
    "\"status\":\"assigned\",\"substatus\":\"initialAssignment\"}}";

static void dps_answers(const char *topic, const uint8_t *payload, size_t len)
{
    (void)payload;
    (void)len;
    char rid[16], t[160];
    topic_rid(topic, rid, sizeof rid);
    const answer *a = &script[answered < script_len ? answered : script_len - 1];
    answered++;
    snprintf(t, sizeof t, "$dps/registrations/res/%d/?$rid=%s%s", a->status, rid, a->query);
    if (a->status_field == NULL)
        peer_publish(t, "{\"errorCode\":429001,\"message\":\"busy\"}");
    else if (strcmp(a->status_field, "assigned") == 0)
        peer_publish(t, assigned_json);
    else
        peer_publish(t, "{\"operationId\":\"op-1\",\"status\":\"assigning\"}");
}

static int setup(void **state)
{
    (void)state;
    peer_reset_all();
    S.on_publish = dps_answers;
    script_len = answered = 0;
    nprogress = 0;
    cfg = tether_dps_config_default();
    cfg.id_scope = "0ne00000001";
    cfg.registration_id = "dev-1";
    cfg.on_progress = on_progress;
    return 0;
}

static void add(int status, const char *query, const char *field)
{
    script[script_len++] = (answer){status, query, field};
}

static tether_status run(void)
{
    return tether_dps_register(&dps, &tls, &cfg, &result);
}

/* The most requests (register or poll) in any 10 s window. */
static size_t max_requests_in_10s(void)
{
    size_t best = 0;
    for (size_t i = 0; i < nrequests; i++) {
        size_t k = 0;
        for (size_t j = i; j < nrequests && requests[j].at < requests[i].at + 10000u; j++)
            k++;
        best = k > best ? k : best;
    }
    return best;
}

static void assert_gaps_at_least(uint64_t ms)
{
    for (size_t i = 0; i + 1 < nrequests; i++)
        if (requests[i + 1].at - requests[i].at < ms)
            fail_msg("request %zu came %llu ms after the previous, wanted >= %llu", i + 1,
                     (unsigned long long)(requests[i + 1].at - requests[i].at),
                     (unsigned long long)ms);
}

/* 202 with retry-after=0 (before the fix: a poll every ~44 ms): the default 3 s interval. */
static void retry_after_zero_polls_at_the_default_interval(void **state)
{
    (void)state;
    add(202, "&retry-after=0", "assigning");
    for (int i = 0; i < 8; i++)
        add(202, "&retry-after=0", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_int_equal(result.register_requests, 1);
    assert_int_equal(result.polls, 9);
    assert_int_equal(nrequests, 10);
    assert_gaps_at_least(cfg.default_poll_ms);
    print_message("retry-after=0: %zu requests, at most %zu in any 10 s\n", nrequests,
                  max_requests_in_10s());
    assert_true(max_requests_in_10s() <= 4);
}

static void absent_retry_after_polls_at_the_default_interval(void **state)
{
    (void)state;
    add(202, "", "assigning");
    add(202, "", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_int_equal(nrequests, 3);
    assert_gaps_at_least(3000);
}

/* Even a default interval set below 2 s: never more than 5 requests in 10 s. */
static void never_more_than_five_requests_in_ten_seconds(void **state)
{
    (void)state;
    cfg.default_poll_ms = 100;
    add(202, "&retry-after=0", "assigning");
    for (int i = 0; i < 12; i++)
        add(202, "", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_gaps_at_least(TETHER_DPS_MIN_REQUEST_INTERVAL_MS);
    assert_true(max_requests_in_10s() <= 5);
}

/* retry-after=7: the poll comes 7 s later, and the wait is the server's in the progress. */
static void retry_after_is_waited(void **state)
{
    (void)state;
    add(202, "&retry-after=7", "assigning");
    add(202, "&retry-after=7", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_int_equal(nrequests, 3);
    assert_gaps_at_least(7000);
    size_t waits = 0;
    for (size_t i = 0; i < nprogress; i++)
        if (progress[i].event == TETHER_DPS_EVENT_WAITING) {
            assert_true(progress[i].server_retry_after);
            assert_int_equal(progress[i].wait_ms, 7000);
            waits++;
        }
    assert_int_equal(waits, 2);
}

/* A 429 on the register request, with retry-after 4, then a 503 without: both retried, the
 * first after the server's 4 s, the second after at least the 2 s floor. */
static void throttled_and_server_errors_are_retried(void **state)
{
    (void)state;
    add(429, "&retry-after=4", NULL);
    add(503, "", NULL);
    add(202, "&retry-after=3", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_int_equal(result.register_requests, 3);
    assert_int_equal(result.polls, 1);
    assert_true(requests[1].at - requests[0].at >= 4000);
    assert_true(requests[2].at - requests[1].at >= 2000);
    assert_true(requests[3].at - requests[2].at >= 3000);
    assert_int_equal(connects, 1); /* all on one connection */
}

/* A retry-after of 60 s within the 120 s deadline is waited in full. */
static void large_retry_after_within_the_deadline_is_waited(void **state)
{
    (void)state;
    add(202, "&retry-after=60", "assigning");
    add(200, "", "assigned");
    assert_int_equal(run(), TETHER_OK);
    assert_int_equal(nrequests, 2);
    assert_true(requests[1].at - requests[0].at >= 60000);
}

/* A retry-after past the deadline: no earlier request, a prompt stop that says why, and the
 * wait shown in the progress. */
static void retry_after_past_the_deadline_stops_with_the_reason(void **state)
{
    (void)state;
    add(429, "&retry-after=600", NULL);
    uint64_t t0 = clock_ms;
    assert_int_equal(run(), TETHER_DPS_DEADLINE_EXCEEDED);
    assert_int_equal(nrequests, 1);
    assert_true(clock_ms - t0 < 5000);
    assert_non_null(strstr(result.error_message, "retry after 600 s"));
    bool shown = false;
    for (size_t i = 0; i < nprogress; i++)
        if (progress[i].event == TETHER_DPS_EVENT_WAITING && progress[i].server_retry_after &&
            progress[i].wait_ms == 600000u)
            shown = true;
    assert_true(shown);
}

/* The largest retry-after the topic can carry, on a 202: no overflow into a short wait. */
static void huge_retry_after_is_not_cut_short(void **state)
{
    (void)state;
    add(202, "&retry-after=4294967295", "assigning");
    assert_int_equal(run(), TETHER_DPS_DEADLINE_EXCEEDED);
    assert_int_equal(nrequests, 1);
    assert_non_null(strstr(result.error_message, "retry after 4294967295 s"));
}

/* Other 4xx are final: one request, a named status. */
static void other_client_errors_are_final(void **state)
{
    (void)state;
    add(400, "", NULL);
    assert_int_equal(run(), TETHER_DPS_REQUEST_REFUSED);
    assert_int_equal(nrequests, 1);
    setup(NULL);
    add(401, "", NULL);
    assert_int_equal(run(), TETHER_DPS_UNAUTHORIZED);
    assert_int_equal(nrequests, 1);
}

/* The server goes silent: each request waits its response timeout, then a new connection,
 * with backoff, until the deadline. */
static void lost_connections_are_retried_with_backoff(void **state)
{
    (void)state;
    S.refuse_connect = TETHER_CONNECT_REFUSED;
    cfg.timeout_ms = 60000;
    assert_int_equal(run(), TETHER_CONNECT_REFUSED);
    assert_true(connects >= 4 && connects <= 12);
    for (size_t i = 0; i + 1 < connects; i++)
        assert_true(connect_at[i + 1] - connect_at[i] >= TETHER_DPS_MIN_REQUEST_INTERVAL_MS);
    assert_true(slept_ms >= 50000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(retry_after_zero_polls_at_the_default_interval, setup),
        cmocka_unit_test_setup(absent_retry_after_polls_at_the_default_interval, setup),
        cmocka_unit_test_setup(never_more_than_five_requests_in_ten_seconds, setup),
        cmocka_unit_test_setup(retry_after_is_waited, setup),
        cmocka_unit_test_setup(throttled_and_server_errors_are_retried, setup),
        cmocka_unit_test_setup(large_retry_after_within_the_deadline_is_waited, setup),
        cmocka_unit_test_setup(retry_after_past_the_deadline_stops_with_the_reason, setup),
        cmocka_unit_test_setup(huge_retry_after_is_not_cut_short, setup),
        cmocka_unit_test_setup(other_client_errors_are_final, setup),
        cmocka_unit_test_setup(lost_connections_are_retried_with_backoff, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
