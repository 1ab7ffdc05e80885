/* Tables of `tether explain` (see explain_data.c). */
#ifndef TETHER_CLI_EXPLAIN_DATA_H
#define TETHER_CLI_EXPLAIN_DATA_H

#include "tether/status.h"

typedef struct explain_code {
    int code;
    const char *name;
    const char *meaning;
} explain_code;

typedef struct explain_mapping {
    int code;
    int major; /* 2 or 3: the mbedTLS line where the code means this; 0: both */
    tether_status status;
    const char *when;
} explain_mapping;

typedef struct explain_azure {
    unsigned code;
    const char *name;
    const char *meaning;
    const char *fix;
} explain_azure;

extern const explain_code explain_mbedtls2[];
extern const explain_mapping explain_mbedtls_status[];
extern const explain_azure explain_hub_codes[];
extern const explain_azure explain_dps_codes[];

const char *explain_dps_class(unsigned http);

#endif
