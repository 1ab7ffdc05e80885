/* Bench only: every lever of lever-*.h together. */
#include "lever-ecp-window.h"
#include "lever-sha256-only.h"
