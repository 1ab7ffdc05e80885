/* Bench only: many simulated devices against the local cloud from one process and one thread.
 *
 * Each device is a coroutine (ucontext, its own mmap'ed stack with a guard page) that runs
 * tether's real, unmodified blocking calls as a device would: tether_tls_init/add_trust,
 * tether_dps_register (symmetric key derived from an enrollment group key), then in a second
 * phase tether_hub_session_start, one QoS 1 telemetry message, its PUBACK, stop, free.
 * The blocking points are the POSIX port's socket and sleep functions, replaced at link time
 * (-Wl,--wrap): non-blocking sockets whose waits register with one epoll and a timer heap and
 * swap back to the scheduler, honouring the caller's timeout as the port contract says.
 *
 *   loadgen --port P --id-scope S --group-key K (--cafile F | --insecure) [--devices N]
 *           [--concurrency C] [--time-limit S] [--poll-ms MS] [--prefix ID] [--hub-port P]
 *           [--broker-pid PID] [--latencies FILE]
 *
 * Registration runs for all devices first (at most C in flight), then telemetry for every
 * registered device: each phase is timed apart and bounded by --time-limit seconds; devices
 * still running then are abandoned (counted) and the process exits. --cafile verifies the
 * cloud's chain (the trust store gets the file); --insecure sets tether_tls_options.insecure
 * and no trust store, as the tether command does. One JSON object on stdout (bench/load reads
 * it); --broker-pid adds the broker's CPU per device of each phase (/proc), --latencies
 * writes the registration latencies (ms, one per line). Loopback only: the port refuses any
 * address outside 127.0.0.0/8 and resolves nothing. */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <ucontext.h>
#include <unistd.h>

#include "tether/dps_session.h"
#include "tether/heap.h"
#include "tether/hub_session.h"
#include "tether/port.h"
#include "tether/sas.h"
#include "tether/tls.h"
#include "tether/transport.h"

#include "port/posix/port_posix.h"

#define STACK_SIZE  (64u * 1024u)
#define NO_DEADLINE UINT64_MAX
#define MAX_KINDS   16

/* What one device leaves behind. */
typedef struct device {
    char key[TETHER_SAS_KEY_BASE64_LEN + 1];
    char *hub;       /* assigned hub (strdup), NULL until registered */
    char *device_id; /* strdup */
    double reg_ms;   /* start of tether_dps_register to its return */
    const char *reg_fail;
    const char *tel_fail;
    bool registered, tel_started, tel_sent, tel_acked;
    uint32_t polls;
} device;

/* The working memory of a device in flight: what a real device keeps in RAM. */
typedef struct work {
    tether_tls tls;
    union {
        tether_dps_session dps;
        tether_hub_session hub;
    } u;
    tether_dps_result result;
} work;

typedef struct slot {
    ucontext_t ctx;
    uint8_t *map; /* guard page + stack */
    work *w;
    size_t device; /* index in devs */
    bool busy, done, ready;
    int fd;            /* socket of this device, -1 if none (closed when abandoned) */
    uint32_t want;     /* epoll events awaited, 0 when not waiting on the socket */
    bool fired;        /* woken by the socket (else by the timer) */
    uint64_t deadline; /* timer, NO_DEADLINE if none */
    size_t heap_pos;   /* position in the timer heap + 1, 0 if not in it */
    int phase;         /* 0 registration, 1 telemetry */
} slot;

static struct {
    const char *id_scope, *group_key, *cafile, *prefix, *endpoint, *latencies;
    uint16_t port, hub_port;
    bool insecure;
    size_t devices, concurrency;
    double time_limit_s;
    uint32_t poll_ms;
    long broker_pid;
} opt = {.prefix = "load",
         .endpoint = "localhost",
         .devices = 100,
         .concurrency = 1000,
         .time_limit_s = 120,
         .poll_ms = 0};

static device *devs;
static slot *slots;
static slot **ready_q; /* FIFO ring: devices run in the order they became ready */
static size_t ready_head, ready_n;
static slot **heap;
static size_t heap_n;
static ucontext_t sched_ctx;
static slot *cur;
static int ep = -1;
static uint8_t *ca_pem;
static size_t ca_len;
static long page_size;

/* --- timer heap (min-heap on deadline) ---------------------------------------------------- */

static void heap_set(size_t i, slot *s)
{
    heap[i] = s;
    s->heap_pos = i + 1;
}

static void heap_up(size_t i)
{
    slot *s = heap[i];
    while (i > 0 && heap[(i - 1) / 2]->deadline > s->deadline) {
        heap_set(i, heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(i, s);
}

static void heap_down(size_t i)
{
    slot *s = heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= heap_n)
            break;
        if (c + 1 < heap_n && heap[c + 1]->deadline < heap[c]->deadline)
            c++;
        if (heap[c]->deadline >= s->deadline)
            break;
        heap_set(i, heap[c]);
        i = c;
    }
    heap_set(i, s);
}

static void heap_push(slot *s)
{
    heap_set(heap_n++, s);
    heap_up(heap_n - 1);
}

static void heap_remove(slot *s)
{
    if (s->heap_pos == 0)
        return;
    size_t i = s->heap_pos - 1;
    s->heap_pos = 0;
    slot *last = heap[--heap_n];
    if (last == s)
        return;
    heap_set(i, last);
    heap_up(i);
    heap_down(last->heap_pos - 1);
}

/* --- scheduling --------------------------------------------------------------------------- */

static void push_ready(slot *s)
{
    ready_q[(ready_head + ready_n++) % opt.concurrency] = s;
}

static void wake(slot *s, bool by_fd)
{
    heap_remove(s);
    s->want = 0;
    s->fired = by_fd;
    if (!s->ready) {
        s->ready = true;
        push_ready(s);
    }
}

/* Parks the running device until its socket shows @p events or @p deadline passes.
 * Returns true when woken by the socket. */
static bool park(uint32_t events, uint64_t deadline)
{
    slot *s = cur;
    s->want = events;
    s->deadline = deadline;
    if (deadline != NO_DEADLINE)
        heap_push(s);
    swapcontext(&s->ctx, &sched_ctx);
    return s->fired;
}

static uint64_t deadline_after(uint32_t timeout_ms)
{
    return timeout_ms > INT32_MAX ? NO_DEADLINE : tether_port_now_ms() + timeout_ms;
}

/* --- the port's blocking calls, non-blocking ---------------------------------------------- */

tether_status __real_tether_port_tcp_connect(tether_socket *, const char *, uint16_t, uint32_t);
tether_status __wrap_tether_port_tcp_connect(tether_socket *, const char *, uint16_t, uint32_t);
int32_t __real_tether_port_tcp_send(tether_socket *, const uint8_t *, size_t, uint32_t);
int32_t __wrap_tether_port_tcp_send(tether_socket *, const uint8_t *, size_t, uint32_t);
int32_t __real_tether_port_tcp_recv(tether_socket *, uint8_t *, size_t, uint32_t);
int32_t __wrap_tether_port_tcp_recv(tether_socket *, uint8_t *, size_t, uint32_t);
void __real_tether_port_sleep_ms(uint32_t);
void __wrap_tether_port_sleep_ms(uint32_t);

static tether_status connect_fail(tether_socket *sock, int fd, int err)
{
    sock->last_errno = err;
    if (fd >= 0)
        close(fd);
    if (cur != NULL)
        cur->fd = -1;
    return err == ETIMEDOUT ? TETHER_CONNECT_TIMEOUT : tether_port_posix_status_of_errno(err);
}

tether_status __wrap_tether_port_tcp_connect(tether_socket *sock, const char *host, uint16_t port,
                                             uint32_t timeout_ms)
{
    if (cur == NULL)
        return __real_tether_port_tcp_connect(sock, host, port, timeout_ms);
    if (sock == NULL || host == NULL || port == 0)
        return TETHER_INVALID_ARGUMENT;
    memset(sock, 0, sizeof *sock);
    sock->fd = -1;
    /* Numeric loopback only: no resolver, nothing leaves the machine. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return TETHER_DNS_FAILED;
    if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        sock->last_errno = EHOSTUNREACH;
        return TETHER_NETWORK_UNREACHABLE;
    }
    uint64_t start = tether_port_now_ms();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return connect_fail(sock, -1, errno);
    cur->fd = fd;
    /* Registered once, edge-triggered: a wait follows an EAGAIN, so an edge always comes. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = cur};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        return connect_fail(sock, fd, errno);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINPROGRESS)
            return connect_fail(sock, fd, errno);
        if (!park(EPOLLOUT, deadline_after(timeout_ms)))
            return connect_fail(sock, fd, ETIMEDOUT);
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (err != 0)
            return connect_fail(sock, fd, err);
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sock->fd = fd;
    inet_ntop(AF_INET, &sa.sin_addr, sock->address, sizeof sock->address);
    sock->connect_ms = (uint32_t)(tether_port_now_ms() - start);
    return TETHER_OK;
}

/* The port's one attempt, and where it would block, a wait on the loop instead of poll(). */
static int32_t move_bytes(tether_socket *sock, uint8_t *rbuf, const uint8_t *sbuf, size_t len,
                          uint32_t timeout_ms)
{
    uint64_t deadline = deadline_after(timeout_ms);
    for (;;) {
        int32_t n = sbuf != NULL ? tether_port_posix_send_once(sock, sbuf, len)
                                 : tether_port_posix_recv_once(sock, rbuf, len);
        if (n != 0 || len == 0)
            return n;
        if (timeout_ms == 0 || tether_port_now_ms() >= deadline ||
            !park(sbuf != NULL ? EPOLLOUT : EPOLLIN | EPOLLRDHUP, deadline))
            return 0;
    }
}

int32_t __wrap_tether_port_tcp_send(tether_socket *sock, const uint8_t *buf, size_t len,
                                    uint32_t timeout_ms)
{
    if (cur == NULL)
        return __real_tether_port_tcp_send(sock, buf, len, timeout_ms);
    return move_bytes(sock, NULL, buf, len, timeout_ms);
}

int32_t __wrap_tether_port_tcp_recv(tether_socket *sock, uint8_t *buf, size_t len,
                                    uint32_t timeout_ms)
{
    if (cur == NULL)
        return __real_tether_port_tcp_recv(sock, buf, len, timeout_ms);
    return move_bytes(sock, buf, NULL, len, timeout_ms);
}

void __wrap_tether_port_sleep_ms(uint32_t ms)
{
    if (cur == NULL) {
        __real_tether_port_sleep_ms(ms);
        return;
    }
    (void)park(0, tether_port_now_ms() + ms);
}

/* --- one device --------------------------------------------------------------------------- */

static double now_precise_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static tether_status tls_setup(tether_tls *tls)
{
    tether_status st = tether_tls_init(tls);
    if (st == TETHER_OK && ca_pem != NULL)
        st = tether_tls_add_trust(tls, ca_pem, ca_len + 1);
    return st;
}

static tether_tls_options tls_options(void)
{
    tether_tls_options o = tether_tls_options_default();
    o.insecure = opt.insecure;
    o.io_timeout_ms = 200;
    return o;
}

static void run_registration(device *d, work *w, size_t index)
{
    char reg_id[128];
    snprintf(reg_id, sizeof reg_id, "%s-%zu", opt.prefix, index);
    size_t len = 0;
    tether_status st =
        tether_sas_derive_device_key(opt.group_key, reg_id, d->key, sizeof d->key - 1, &len);
    d->key[st == TETHER_OK ? len : 0] = 0;
    if (st == TETHER_OK)
        st = tls_setup(&w->tls);
    if (st == TETHER_OK) {
        tether_dps_config cfg = tether_dps_config_default();
        cfg.endpoint = opt.endpoint;
        cfg.connect_to = "127.0.0.1";
        cfg.port = opt.port;
        cfg.id_scope = opt.id_scope;
        cfg.registration_id = reg_id;
        cfg.sas_key = d->key;
        cfg.default_poll_ms = opt.poll_ms;
        cfg.tls = tls_options();
        double t0 = now_precise_ms();
        st = tether_dps_register(&w->u.dps, &w->tls, &cfg, &w->result);
        d->reg_ms = now_precise_ms() - t0;
        d->polls = w->result.polls;
        if (st == TETHER_OK) {
            d->hub = strdup(w->result.assigned_hub);
            d->device_id = strdup(w->result.device_id);
            d->registered = d->hub != NULL && d->device_id != NULL;
        }
    }
    if (st != TETHER_OK)
        d->reg_fail = tether_status_name(st);
    tether_tls_free(&w->tls);
}

static void run_telemetry(device *d, work *w, size_t index)
{
    d->tel_started = true;
    tether_status st = tls_setup(&w->tls);
    tether_hub_config cfg = tether_hub_config_default();
    cfg.host = d->hub;
    cfg.connect_to = "127.0.0.1";
    cfg.port = opt.hub_port;
    cfg.device_id = d->device_id;
    cfg.sas_key = d->key;
    cfg.tls = tls_options();
    tether_hub_session *hub = &w->u.hub;
    if (st == TETHER_OK)
        st = tether_hub_session_start(hub, &w->tls, &cfg);
    if (st == TETHER_OK) {
        char msg[64];
        int n = snprintf(msg, sizeof msg, "{\"load\":%zu}", index);
        st = tether_hub_session_send(hub, (const uint8_t *)msg, (size_t)n, NULL, 0, 1);
        d->tel_sent = st == TETHER_OK;
        uint64_t end = tether_port_now_ms() + 30000;
        while (st == TETHER_OK && tether_hub_session_pending(hub) > 0 && tether_port_now_ms() < end)
            st = tether_hub_session_process(hub, 50);
        if (st == TETHER_OK && tether_hub_session_pending(hub) > 0)
            st = TETHER_TIMEOUT;
        d->tel_acked = st == TETHER_OK;
        tether_hub_session_stop(hub);
    }
    if (st != TETHER_OK)
        d->tel_fail = tether_status_name(st);
    tether_tls_free(&w->tls);
}

static void coroutine(int index)
{
    slot *s = &slots[index];
    device *d = &devs[s->device];
    if (s->phase == 0)
        run_registration(d, s->w, s->device);
    else
        run_telemetry(d, s->w, s->device);
    s->done = true;
    swapcontext(&s->ctx, &sched_ctx); /* never resumed */
}

/* --- a phase ------------------------------------------------------------------------------ */

typedef struct phase_stats {
    size_t started, abandoned;
    double start_ms, end_ms; /* CLOCK_MONOTONIC: to merge several generators' figures */
    double seconds;          /* start to the last device's end */
    double cpu_ms;           /* user + system of this process */
    double broker_cpu_ms;    /* of --broker-pid, -1 if unknown */
} phase_stats;

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* CPU (user + system) the broker has used so far, from /proc; -1 if unknown. */
static double broker_cpu_ms(void)
{
    char path[64], buf[1024];
    if (opt.broker_pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%ld/stat", opt.broker_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    /* after the command name: state, then 10 fields, then utime and stime (fields 14, 15) */
    if (p == NULL ||
        sscanf(p + 2, "%*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e3 / (double)sysconf(_SC_CLK_TCK);
}

static void start(slot *s, size_t index, int phase)
{
    memset(s->w, 0, sizeof *s->w);
    s->device = index;
    s->phase = phase;
    s->busy = true;
    s->done = false;
    s->fd = -1;
    s->want = 0;
    getcontext(&s->ctx);
    s->ctx.uc_stack.ss_sp = s->map + page_size;
    s->ctx.uc_stack.ss_size = STACK_SIZE;
    s->ctx.uc_link = NULL;
    makecontext(&s->ctx, (void (*)(void))coroutine, 1, (int)(s - slots));
    s->ready = true;
    push_ready(s);
}

/* The next device to start at or after @p i: telemetry only for the registered. */
static size_t skip(size_t i, int phase)
{
    while (i < opt.devices && phase == 1 && !devs[i].registered)
        i++;
    return i;
}

static phase_stats run_phase(int phase)
{
    phase_stats ps = {0};
    double t0 = now_precise_ms(), cpu0 = cpu_ms(), last_end = t0, broker0 = broker_cpu_ms();
    uint64_t limit = tether_port_now_ms() + (uint64_t)(opt.time_limit_s * 1000.0);
    size_t next = 0, active = 0;
    struct epoll_event evs[256];
    for (;;) {
        if (tether_port_now_ms() >= limit)
            break;
        for (size_t i = 0; i < opt.concurrency && active < opt.concurrency; i++) {
            next = skip(next, phase);
            if (next == opt.devices)
                break;
            if (slots[i].busy)
                continue;
            start(&slots[i], next++, phase);
            ps.started++;
            active++;
        }
        while (ready_n > 0) {
            slot *s = ready_q[ready_head];
            ready_head = (ready_head + 1) % opt.concurrency;
            ready_n--;
            s->ready = false;
            cur = s;
            swapcontext(&sched_ctx, &s->ctx);
            cur = NULL;
            if (s->done) {
                s->busy = false;
                active--;
                last_end = now_precise_ms();
            }
        }
        next = skip(next, phase);
        if (active == 0 && next == opt.devices)
            break;
        if (active < opt.concurrency && next < opt.devices)
            continue; /* free slots: start more before waiting */
        uint64_t now = tether_port_now_ms();
        uint64_t wake_at = heap_n > 0 && heap[0]->deadline < limit ? heap[0]->deadline : limit;
        int timeout = wake_at > now ? (int)(wake_at - now) : 0;
        int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof evs[0]), timeout);
        for (int i = 0; i < n; i++) {
            slot *s = evs[i].data.ptr;
            if (s->busy && s->want != 0 &&
                (evs[i].events & (s->want | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0)
                wake(s, true);
        }
        now = tether_port_now_ms();
        while (heap_n > 0 && heap[0]->deadline <= now)
            wake(heap[0], false);
    }
    /* Time is up: whoever is still running is abandoned, never resumed; its socket closes. */
    for (size_t i = 0; i < opt.concurrency; i++) {
        slot *s = &slots[i];
        if (!s->busy)
            continue;
        heap_remove(s);
        if (s->fd >= 0)
            close(s->fd);
        s->busy = s->ready = false;
        ps.abandoned++;
        if (phase == 0)
            devs[s->device].reg_fail = "ABANDONED";
        else
            devs[s->device].tel_fail = "ABANDONED";
    }
    ready_n = ready_head = 0;
    ps.start_ms = t0;
    ps.end_ms = ps.abandoned ? now_precise_ms() : last_end;
    ps.seconds = ps.end_ms - t0;
    ps.cpu_ms = cpu_ms() - cpu0;
    double broker1 = broker_cpu_ms();
    ps.broker_cpu_ms = broker0 >= 0 && broker1 >= 0 ? broker1 - broker0 : -1;
    return ps;
}

/* --- output ------------------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_kinds(const char *(*pick)(const device *))
{
    const char *names[MAX_KINDS];
    size_t counts[MAX_KINDS], k = 0, other = 0;
    for (size_t i = 0; i < opt.devices; i++) {
        const char *f = pick(&devs[i]);
        if (f == NULL)
            continue;
        size_t j = 0;
        while (j < k && strcmp(names[j], f) != 0)
            j++;
        if (j == k) {
            if (k == MAX_KINDS) {
                other++;
                continue;
            }
            names[k] = f;
            counts[k++] = 0;
        }
        counts[j]++;
    }
    printf("{");
    for (size_t j = 0; j < k; j++)
        printf("%s\"%s\":%zu", j ? "," : "", names[j], counts[j]);
    if (other)
        printf("%s\"other\":%zu", k ? "," : "", other);
    printf("}");
}

static const char *reg_fail(const device *d)
{
    return d->reg_fail;
}

static const char *tel_fail(const device *d)
{
    return d->tel_fail;
}

static double percentile(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void report(const phase_stats *reg, const phase_stats *tel)
{
    size_t registered = 0, reg_failed = 0, sent = 0, acked = 0, tel_failed = 0;
    uint64_t polls = 0;
    double *lat = calloc(opt.devices ? opt.devices : 1, sizeof *lat);
    if (lat == NULL)
        exit(2);
    for (size_t i = 0; i < opt.devices; i++) {
        const device *d = &devs[i];
        if (d->registered) {
            lat[registered++] = d->reg_ms;
            polls += d->polls;
        }
        reg_failed += d->reg_fail != NULL;
        sent += d->tel_sent;
        acked += d->tel_acked;
        tel_failed += d->tel_fail != NULL;
    }
    qsort(lat, registered, sizeof *lat, cmp_double);
    if (opt.latencies != NULL) {
        FILE *f = fopen(opt.latencies, "w");
        for (size_t i = 0; f != NULL && i < registered; i++)
            fprintf(f, "%.3f\n", lat[i]);
        if (f == NULL || fclose(f) != 0)
            fprintf(stderr, "loadgen: cannot write %s\n", opt.latencies);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"devices\":%zu,\"concurrency\":%zu,\"server_verification\":\"%s\",\"poll_ms\":%u,"
           "\"time_limit_s\":%g,",
           opt.devices, opt.concurrency, opt.insecure ? "insecure" : "verify", opt.poll_ms,
           opt.time_limit_s);
    printf("\"registration\":{\"started\":%zu,\"registered\":%zu,\"failures\":%zu,"
           "\"not_started\":%zu,\"abandoned\":%zu,\"failure_kinds\":",
           reg->started, registered, reg_failed, opt.devices - reg->started, reg->abandoned);
    print_kinds(reg_fail);
    printf(
        ",\"start_ms\":%.3f,\"end_ms\":%.3f,\"seconds\":%.3f,\"per_second\":%.1f,"
        "\"p50_ms\":%.1f,\"p99_ms\":%.1f,"
        "\"max_ms\":%.1f,\"polls_per_device\":%.2f,\"loadgen_cpu_ms_per_device\":%.3f,"
        "\"broker_cpu_ms_per_device\":%.3f},",
        reg->start_ms, reg->end_ms, reg->seconds / 1e3,
        reg->seconds > 0 ? (double)registered * 1e3 / reg->seconds : 0,
        percentile(lat, registered, 0.50), percentile(lat, registered, 0.99),
        registered ? lat[registered - 1] : 0, registered ? (double)polls / (double)registered : 0,
        reg->started ? reg->cpu_ms / (double)reg->started : 0,
        reg->started && reg->broker_cpu_ms >= 0 ? reg->broker_cpu_ms / (double)reg->started : -1);
    printf("\"telemetry\":{\"started\":%zu,\"sent\":%zu,\"acked\":%zu,\"failures\":%zu,"
           "\"not_started\":%zu,\"abandoned\":%zu,\"failure_kinds\":",
           tel->started, sent, acked, tel_failed, registered - tel->started, tel->abandoned);
    print_kinds(tel_fail);
    printf(",\"start_ms\":%.3f,\"end_ms\":%.3f,\"seconds\":%.3f,\"per_second\":%.1f,"
           "\"loadgen_cpu_ms_per_device\":%.3f,\"broker_cpu_ms_per_device\":%.3f},",
           tel->start_ms, tel->end_ms, tel->seconds / 1e3,
           tel->seconds > 0 ? (double)acked * 1e3 / tel->seconds : 0,
           tel->started ? tel->cpu_ms / (double)tel->started : 0,
           tel->started && tel->broker_cpu_ms >= 0 ? tel->broker_cpu_ms / (double)tel->started
                                                   : -1);
    printf("\"loadgen_max_rss_kb\":%ld}\n", ru.ru_maxrss);
    free(lat);
}

/* --- set-up ------------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --port P --id-scope S --group-key K [--cafile F | --insecure]\n"
                    "  [--devices N] [--concurrency C] [--time-limit S] [--poll-ms MS]\n"
                    "  [--prefix ID] [--endpoint HOST] [--hub-port P] [--broker-pid PID]\n"
                    "  [--latencies FILE]\n");
    exit(2);
}

static unsigned long number(const char *s, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > max)
        usage();
    return v;
}

static void parse(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--insecure") == 0) {
            opt.insecure = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--port") == 0)
            opt.port = (uint16_t)number(v, 65535);
        else if (strcmp(a, "--hub-port") == 0)
            opt.hub_port = (uint16_t)number(v, 65535);
        else if (strcmp(a, "--id-scope") == 0)
            opt.id_scope = v;
        else if (strcmp(a, "--group-key") == 0)
            opt.group_key = v;
        else if (strcmp(a, "--cafile") == 0)
            opt.cafile = v;
        else if (strcmp(a, "--latencies") == 0)
            opt.latencies = v;
        else if (strcmp(a, "--prefix") == 0)
            opt.prefix = v;
        else if (strcmp(a, "--endpoint") == 0)
            opt.endpoint = v;
        else if (strcmp(a, "--devices") == 0)
            opt.devices = number(v, 10000000);
        else if (strcmp(a, "--concurrency") == 0)
            opt.concurrency = number(v, 100000);
        else if (strcmp(a, "--poll-ms") == 0)
            opt.poll_ms = (uint32_t)number(v, 600000);
        else if (strcmp(a, "--broker-pid") == 0)
            opt.broker_pid = (long)number(v, 1u << 30);
        else if (strcmp(a, "--time-limit") == 0) {
            char *end;
            opt.time_limit_s = strtod(v, &end);
            if (*end || end == v || !(opt.time_limit_s > 0 && opt.time_limit_s <= 86400))
                usage();
        } else
            usage();
    }
    if (opt.port == 0 || opt.id_scope == NULL || opt.group_key == NULL || opt.concurrency == 0 ||
        (opt.cafile == NULL && !opt.insecure))
        usage();
    if (opt.hub_port == 0)
        opt.hub_port = opt.port;
    if (opt.concurrency > opt.devices && opt.devices > 0)
        opt.concurrency = opt.devices;
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    page_size = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (opt.cafile != NULL) {
        static uint8_t buf[64 * 1024];
        if (tether_port_read_file(opt.cafile, buf, sizeof buf, &ca_len) != TETHER_OK) {
            fprintf(stderr, "loadgen: cannot read %s\n", opt.cafile);
            return 2;
        }
        ca_pem = buf;
    }
    /* One allocator for all devices: counting only, no cap (mbedTLS's hooks are global). */
    tether_heap_use_system(0);
    ep = epoll_create1(EPOLL_CLOEXEC);
    devs = calloc(opt.devices ? opt.devices : 1, sizeof *devs);
    slots = calloc(opt.concurrency, sizeof *slots);
    ready_q = calloc(opt.concurrency, sizeof *ready_q);
    heap = calloc(opt.concurrency, sizeof *heap);
    if (ep < 0 || devs == NULL || slots == NULL || ready_q == NULL || heap == NULL)
        return 2;
    for (size_t i = 0; i < opt.concurrency; i++) {
        size_t map_len = (size_t)page_size + STACK_SIZE;
        slots[i].map = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        slots[i].w = malloc(sizeof(work));
        /* The lowest page is the guard: a stack overflow faults instead of corrupting. */
        if (slots[i].map == MAP_FAILED || slots[i].w == NULL ||
            mprotect(slots[i].map, (size_t)page_size, PROT_NONE) != 0) {
            fprintf(stderr, "loadgen: out of memory for %zu devices in flight\n", opt.concurrency);
            return 2;
        }
    }
    phase_stats reg = run_phase(0);
    phase_stats tel = run_phase(1);
    report(&reg, &tel);
    return 0;
}
