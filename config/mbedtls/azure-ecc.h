/*
 * Profile `azure-ecc`: made for IoT Hub's ECC server certificate (tether cloud up
 * --server-shape azure-ecc): `minimal` without RSA. 2 KB in / 2 KB out, TLS 1.2 only, EC
 * device keys only.
 *
 * The ECC chain (P-384 leaf and issuing CA, ecdsa-with-SHA384, under a DigiCert Global Root
 * G3-shaped root) arrives as a 2,023-byte Certificate record, which a 2 KB input buffer takes
 * whole; the service offers ECDSA suites only there, so RSA is compiled out (an RSA root such
 * as G2 cannot even be parsed: give it G3 alone). Otherwise as `minimal`: AES-GCM only,
 * 2-bit EC window, SHA-256 entropy pool, 2 KB fragment length asked for.
 */
#ifndef TETHER_PROFILE_AZURE_ECC_H
#define TETHER_PROFILE_AZURE_ECC_H
#define TETHER_PROFILE_NAME "azure-ecc"
#define TETHER_NO_RSA
/* Not the on-demand trust store of `azure`: against this chain it measured 744 B more at the
 * peak with one root (x86-64: 13,063 B against 12,319 B), so give this profile G3 alone. */
#include "minimal.h"
#endif
