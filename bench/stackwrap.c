/* Bench only: the peak stack of the device library (tether + mbedTLS), without the command's
 * own frames and without the POSIX port's system calls.
 *
 * The command runs on a painted stack (stackpaint.c). The library's entry points that the
 * command calls are wrapped at link time (-Wl,--wrap=NAME): the outermost wrapper paints the
 * unused stack below its own frame, calls the real function, then finds the deepest byte that
 * changed. The difference is what that call needed, callbacks into the command included
 * (they print little in --json mode). The POSIX port's socket, resolver and entropy calls run
 * on a separate painted stack, so getaddrinfo and friends (what an lwIP port replaces) are
 * not counted in the library figure; their own peak is reported apart.
 * Figures are written at exit to BENCH_STACK_FILE by stackpaint.c (bench_stack_report). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>

#include "tether/dps_session.h"
#include "tether/hub_session.h"
#include "tether/mqtt.h"
#include "tether/port.h"
#include "tether/tls.h"

#define PAINT 0xA5
/* Only this much below the wrapper's frame is painted and scanned at each outermost call, so
 * that measuring costs little; a library needing more would show as exactly WINDOW. */
#define WINDOW (64u * 1024u)

extern uint8_t *bench_stack_low; /* lowest address of the command's stack (stackpaint.c) */
size_t bench_lib_stack_peak, bench_port_stack_peak;
static int depth;

static uint8_t *window_low(uint8_t *sp)
{
    return (size_t)(sp - bench_stack_low) > WINDOW + 256 ? sp - 256 - WINDOW : bench_stack_low;
}

static uint8_t *enter(void)
{
    uint8_t *sp = (uint8_t *)__builtin_frame_address(0);
    if (depth++ == 0 && bench_stack_low && sp > bench_stack_low + 256)
        memset(window_low(sp), PAINT, (size_t)(sp - 256 - window_low(sp)));
    return sp;
}

static void leave(uint8_t *sp)
{
    if (--depth != 0 || bench_stack_low == NULL)
        return;
    uint8_t *p = window_low(sp);
    while (p < sp && *p == PAINT)
        p++;
    size_t used = (size_t)(sp - p);
    if (used > bench_lib_stack_peak)
        bench_lib_stack_peak = used;
}

#define WRAP(ret, name, params, args)                                                              \
    ret __real_##name params;                                                                      \
    ret __wrap_##name params;                                                                      \
    ret __wrap_##name params                                                                       \
    {                                                                                              \
        uint8_t *bench_sp_ = enter();                                                              \
        ret bench_r_ = __real_##name args;                                                         \
        leave(bench_sp_);                                                                          \
        return bench_r_;                                                                           \
    }

WRAP(tether_status, tether_tls_add_trust, (tether_tls * t, const uint8_t *d, size_t n), (t, d, n))
WRAP(tether_status, tether_tls_set_identity,
     (tether_tls * t, const uint8_t *c, size_t cl, const uint8_t *k, size_t kl, const char *pw),
     (t, c, cl, k, kl, pw))
WRAP(tether_status, tether_tls_connect, (tether_tls * t, const tether_tls_options *o), (t, o))
WRAP(tether_status, tether_dps_register,
     (tether_dps_session * s, tether_tls *t, const tether_dps_config *c, tether_dps_result *r),
     (s, t, c, r))
WRAP(tether_status, tether_hub_session_start,
     (tether_hub_session * s, tether_tls *t, const tether_hub_config *c), (s, t, c))
WRAP(tether_status, tether_hub_session_send,
     (tether_hub_session * s, const uint8_t *p, size_t n, const tether_hub_property *pr, size_t c,
      uint8_t q),
     (s, p, n, pr, c, q))
WRAP(tether_status, tether_hub_session_report, (tether_hub_session * s, const char *j, size_t n),
     (s, j, n))
WRAP(tether_status, tether_hub_session_process, (tether_hub_session * s, uint32_t t), (s, t))
WRAP(tether_status, tether_mqtt_client_connect,
     (tether_mqtt_client * c, const tether_mqtt_connect_opts *o, uint32_t t, bool *sp),
     (c, o, t, sp))
WRAP(tether_status, tether_mqtt_client_subscribe,
     (tether_mqtt_client * c, const tether_mqtt_filter *f, size_t n, uint32_t t, uint8_t *g),
     (c, f, n, t, g))
WRAP(tether_status, tether_mqtt_client_publish,
     (tether_mqtt_client * c, const tether_mqtt_publish *m, uint16_t *id), (c, m, id))
WRAP(tether_status, tether_mqtt_client_process, (tether_mqtt_client * c, uint32_t t), (c, t))

/* --- the POSIX port on a stack of its own ------------------------------------------------ */

#define PORT_STACK (64u * 1024u)
static uint8_t port_stack[PORT_STACK];
static ucontext_t port_caller, port_ctx;
static void (*port_fn)(void);
static bool port_painted;

static void port_trampoline(void)
{
    port_fn();
}

static void on_port_stack(void (*fn)(void))
{
    if (!port_painted) {
        memset(port_stack, PAINT, sizeof port_stack);
        port_painted = true;
    }
    port_fn = fn;
    getcontext(&port_ctx);
    port_ctx.uc_stack.ss_sp = port_stack;
    port_ctx.uc_stack.ss_size = sizeof port_stack;
    port_ctx.uc_link = &port_caller;
    makecontext(&port_ctx, port_trampoline, 0);
    swapcontext(&port_caller, &port_ctx);
    size_t untouched = 0;
    while (untouched < sizeof port_stack && port_stack[untouched] == PAINT)
        untouched++;
    if (sizeof port_stack - untouched > bench_port_stack_peak)
        bench_port_stack_peak = sizeof port_stack - untouched;
}

static struct {
    tether_socket *sock;
    const char *host;
    uint16_t port;
    uint32_t timeout;
    const uint8_t *cbuf;
    uint8_t *buf;
    size_t len;
    tether_status st;
    int32_t n;
} pa;

tether_status __real_tether_port_tcp_connect(tether_socket *, const char *, uint16_t, uint32_t);
tether_status __wrap_tether_port_tcp_connect(tether_socket *, const char *, uint16_t, uint32_t);
int32_t __real_tether_port_tcp_send(tether_socket *, const uint8_t *, size_t, uint32_t);
int32_t __wrap_tether_port_tcp_send(tether_socket *, const uint8_t *, size_t, uint32_t);
int32_t __real_tether_port_tcp_recv(tether_socket *, uint8_t *, size_t, uint32_t);
int32_t __wrap_tether_port_tcp_recv(tether_socket *, uint8_t *, size_t, uint32_t);
tether_status __real_tether_port_entropy(uint8_t *, size_t);
tether_status __wrap_tether_port_entropy(uint8_t *, size_t);

static void do_connect(void)
{
    pa.st = __real_tether_port_tcp_connect(pa.sock, pa.host, pa.port, pa.timeout);
}
static void do_send(void)
{
    pa.n = __real_tether_port_tcp_send(pa.sock, pa.cbuf, pa.len, pa.timeout);
}
static void do_recv(void)
{
    pa.n = __real_tether_port_tcp_recv(pa.sock, pa.buf, pa.len, pa.timeout);
}
static void do_entropy(void)
{
    pa.st = __real_tether_port_entropy(pa.buf, pa.len);
}

tether_status __wrap_tether_port_tcp_connect(tether_socket *s, const char *h, uint16_t p,
                                             uint32_t t)
{
    pa.sock = s, pa.host = h, pa.port = p, pa.timeout = t;
    on_port_stack(do_connect);
    return pa.st;
}
int32_t __wrap_tether_port_tcp_send(tether_socket *s, const uint8_t *b, size_t n, uint32_t t)
{
    pa.sock = s, pa.cbuf = b, pa.len = n, pa.timeout = t;
    on_port_stack(do_send);
    return pa.n;
}
int32_t __wrap_tether_port_tcp_recv(tether_socket *s, uint8_t *b, size_t n, uint32_t t)
{
    pa.sock = s, pa.buf = b, pa.len = n, pa.timeout = t;
    on_port_stack(do_recv);
    return pa.n;
}
tether_status __wrap_tether_port_entropy(uint8_t *b, size_t n)
{
    pa.buf = b, pa.len = n;
    on_port_stack(do_entropy);
    return pa.st;
}
