/* tether cloud proxy: a small TCP proxy that breaks connections on purpose, for the device's
 * error-path tests. One process per connection (fork), so each can sleep and count bytes on
 * its own; the listener is bound to 127.0.0.1 only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

static const char proxy_usage[] =
    "usage: tether cloud proxy --listen PORT --to HOST:PORT [--close-after-client-hello]\n"
    "                          [--cut-after N [--direction up|down]] [--delay MS]\n"
    "                          [--reset-after MS] [--random SEED]\n"
    "\n"
    "Listens on 127.0.0.1:PORT and forwards each connection to HOST:PORT, breaking it on\n"
    "purpose:\n"
    "  --close-after-client-hello  close both sides once the client's first TLS record\n"
    "                              (the ClientHello) has arrived; nothing is forwarded\n"
    "  --cut-after N               close both sides after N bytes went in --direction\n"
    "                              (up: device to cloud, down: cloud to device; default down)\n"
    "  --delay MS                  hold every chunk MS milliseconds before forwarding it\n"
    "  --reset-after MS            reset both sides (TCP RST) MS milliseconds after accept\n"
    "  --random SEED               each connection draws its own fault from SEED: a reset\n"
    "                              after 3-45 s, a cut after 256 B-16 KB up or down, or\n"
    "                              0-50 ms of delay per chunk and a reset after 10-45 s\n"
    "Runs until interrupted; logs one line per connection on stderr.\n";

struct proxy_opts {
    const char *host;
    const char *port;
    bool close_after_hello;
    long cut_after;
    bool cut_down;
    long delay_ms;
    long reset_after_ms;
    long random_seed; /* < 0: none */
};

/* One connection's fault, drawn from the seed and the connection number (soak tests). */
static void draw_fault(struct proxy_opts *o, int id)
{
    srand((unsigned)(o->random_seed * 7919 + id));
    switch (rand() % 3) {
    case 0:
        o->reset_after_ms = 3000 + rand() % 42000;
        break;
    case 1:
        o->cut_after = 256 + rand() % (16 * 1024);
        o->cut_down = rand() % 2 == 0;
        break;
    default:
        o->delay_ms = rand() % 51;
        o->reset_after_ms = 10000 + rand() % 35000;
        break;
    }
    fprintf(stderr, "proxy #%d: fault reset-after %ld cut-after %ld %s delay %ld\n", id,
            o->reset_after_ms, o->cut_after, o->cut_down ? "down" : "up", o->delay_ms);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int dial(const struct proxy_opts *o)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(o->host, o->port, &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        if (fd >= 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

static void reset(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void serve(int client, const struct proxy_opts *o, int id)
{
    int64_t start = tc_now_ms();
    int upstream = o->close_after_hello ? -1 : dial(o);
    if (!o->close_after_hello && upstream < 0) {
        fprintf(stderr, "proxy #%d: cannot reach %s:%s\n", id, o->host, o->port);
        close(client);
        return;
    }
    unsigned char buf[16384];
    unsigned char head[5];
    size_t hello_have = 0;
    long up = 0;
    long down = 0;
    const char *why = "closed by a peer";
    for (;;) {
        int timeout = -1;
        if (o->reset_after_ms > 0) {
            int64_t left = start + o->reset_after_ms - tc_now_ms();
            if (left <= 0) {
                reset(client);
                if (upstream >= 0) {
                    reset(upstream);
                }
                fprintf(stderr, "proxy #%d: reset after %ld ms (%ld bytes up, %ld down)\n", id,
                        o->reset_after_ms, up, down);
                return;
            }
            timeout = (int)left;
        }
        struct pollfd p[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
        int n = poll(p, upstream >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) {
            break;
        }
        if (n <= 0) {
            continue;
        }
        for (int side = 0; side < 2; side++) {
            if (side == 1 && upstream < 0) {
                continue;
            }
            if ((p[side].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            int from = side == 0 ? client : upstream;
            int to = side == 0 ? upstream : client;
            bool is_down = side == 1;
            size_t want = sizeof buf;
            long *count = is_down ? &down : &up;
            if (o->cut_after >= 0 && is_down == o->cut_down) {
                long left = o->cut_after - *count;
                want = left < (long)want ? (size_t)left : want;
            }
            ssize_t r = want > 0 ? recv(from, buf, want, 0) : 0;
            if (r <= 0) {
                goto done;
            }
            if (o->close_after_hello && side == 0) {
                /* the first record: a 5-byte header, then the length it gives */
                for (ssize_t k = 0; k < r && hello_have < 5; k++) {
                    head[hello_have++] = buf[k];
                }
                up += r;
                if (hello_have == 5 && (size_t)up >= (((size_t)head[3] << 8) | head[4]) + 5) {
                    why = "closed after the ClientHello";
                    goto done;
                }
                continue;
            }
            if (o->delay_ms > 0) {
                sleep_ms(o->delay_ms);
            }
            if (write_all(to, buf, (size_t)r) != 0) {
                goto done;
            }
            *count += r;
            if (o->cut_after >= 0 && is_down == o->cut_down && *count >= o->cut_after) {
                why = "cut";
                goto done;
            }
        }
    }
done:
    close(client);
    if (upstream >= 0) {
        close(upstream);
    }
    fprintf(stderr, "proxy #%d: %s after %lld ms (%ld bytes up, %ld down)\n", id, why,
            (long long)(tc_now_ms() - start), up, down);
}

int cmd_proxy(int argc, char **argv)
{
    if (want_help(argc, argv)) {
        fputs(proxy_usage, stdout);
        return 0;
    }
    struct tc_args a;
    args_init(&a, argc, argv);
    const char *listen_port = arg_opt(&a, "--listen");
    const char *to = arg_opt(&a, "--to");
    const char *cut = arg_opt(&a, "--cut-after");
    const char *direction = arg_opt(&a, "--direction");
    const char *delay = arg_opt(&a, "--delay");
    const char *reset_after = arg_opt(&a, "--reset-after");
    const char *random_seed = arg_opt(&a, "--random");
    struct proxy_opts o;
    memset(&o, 0, sizeof o);
    o.close_after_hello = arg_flag(&a, "--close-after-client-hello");
    const char *pos[1];
    int n;
    if (args_finish(&a, pos, 0, &n) != 0) {
        return 2;
    }
    if (listen_port == NULL || to == NULL || strrchr(to, ':') == NULL) {
        fputs(proxy_usage, stderr);
        return 2;
    }
    static char host[256];
    const char *colon = strrchr(to, ':');
    snprintf(host, sizeof host, "%.*s", (int)(colon - to), to);
    o.host = host;
    o.port = colon + 1;
    o.cut_after = cut != NULL ? atol(cut) : -1;
    o.cut_down = direction == NULL || strcmp(direction, "down") == 0;
    if (direction != NULL && strcmp(direction, "up") != 0 && strcmp(direction, "down") != 0) {
        return fail("--direction must be up or down");
    }
    o.delay_ms = delay != NULL ? atol(delay) : 0;
    o.reset_after_ms = reset_after != NULL ? atol(reset_after) : 0;
    o.random_seed = random_seed != NULL ? atol(random_seed) : -1;
    int port = atoi(listen_port);
    if (port <= 0 || port > 65535) {
        return fail("--listen must be a port number");
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 64) != 0) {
        return fail("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
    }
    signal(SIGCHLD, SIG_IGN); /* children are reaped automatically */
    fprintf(stderr, "proxy listening on 127.0.0.1:%d -> %s:%s\n", port, o.host, o.port);
    int id = 0;
    for (;;) {
        int c = accept(ls, NULL, NULL);
        if (c < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("accept: %s", strerror(errno));
        }
        id++;
        pid_t pid = fork();
        if (pid == 0) {
            close(ls);
            if (o.random_seed >= 0) {
                draw_fault(&o, id);
            }
            serve(c, &o, id);
            _exit(0);
        }
        close(c);
    }
}
