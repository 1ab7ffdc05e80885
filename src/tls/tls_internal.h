/* Shared inside the TLS layer; not part of the public API. */
#ifndef TETHER_TLS_INTERNAL_H
#define TETHER_TLS_INTERNAL_H

#include <stdbool.h>

#include "tether/tls.h"

/** Installs the counting system allocator unless the caller chose one. */
void tether_heap_install_default(void);

/** True for every mbedTLS "allocation failed" code, whichever module returned it. */
bool tether_mbedtls_is_alloc_failure(int code);

/** Records @p ret in the diag, translated into a tether status, and returns that status. */
tether_status tether_tls_fail(tether_tls *tls, int ret);

#endif
