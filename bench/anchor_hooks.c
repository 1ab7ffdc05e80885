/* Bench only, linked into ssl_client2: counts mbedTLS's heap with tether's own hooks
 * (src/tls/heap.c), so the reference client is measured exactly as tether is. The figures go
 * to the file named by BENCH_HEAP_FILE (JSON) when the program ends:
 *   peak            largest bytes in use, from start (certificates parsed) to exit
 *   handshake_peak  the peak when the handshake returned
 *   connected       bytes in use right after the handshake
 * mbedtls_ssl_handshake is wrapped (-Wl,--wrap) to take the two handshake figures. */
#include <stdio.h>
#include <stdlib.h>

#include "tether/heap.h"

int __real_mbedtls_ssl_handshake(void *ssl);
int __wrap_mbedtls_ssl_handshake(void *ssl);

static size_t handshake_peak, connected;
static int handshakes;

int __wrap_mbedtls_ssl_handshake(void *ssl)
{
    int ret = __real_mbedtls_ssl_handshake(ssl);
    if (ret == 0 && handshakes++ == 0) {
        tether_heap_stats st;
        tether_heap_get_stats(&st);
        handshake_peak = st.peak;
        connected = st.in_use;
    }
    return ret;
}

static void report(void)
{
    const char *path = getenv("BENCH_HEAP_FILE");
    tether_heap_stats st;
    tether_heap_get_stats(&st);
    FILE *f = path ? fopen(path, "w") : stderr;
    if (f == NULL)
        return;
    fprintf(f,
            "{\"peak\":%zu,\"handshake_peak\":%zu,\"connected\":%zu,\"handshakes\":%d,"
            "\"allocations\":%zu}\n",
            st.peak, handshake_peak, connected, handshakes, st.allocations);
    if (path)
        fclose(f);
}

__attribute__((constructor)) static void install(void)
{
    tether_heap_use_system(0);
    atexit(report);
}
