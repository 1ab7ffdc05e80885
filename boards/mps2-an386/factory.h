/* What the factory put in the device's flash: trust anchor, identity, where DPS is. On the
 * emulated board scripts/mcu generates factory.c for the device it enrolled in the local cloud;
 * the strings are PEM with their NUL (tls.h wants it counted). */
#ifndef TETHER_BOARD_FACTORY_H
#define TETHER_BOARD_FACTORY_H

#include <stdint.h>

extern const char factory_trust_anchor[];
extern const uint32_t factory_trust_anchor_len; /* with the NUL */
extern const char factory_device_chain[];
extern const uint32_t factory_device_chain_len;
extern const char factory_device_key[];
extern const uint32_t factory_device_key_len;
extern const char factory_id_scope[];
extern const char factory_registration_id[];
extern const char factory_dps_endpoint[]; /* SNI and certificate name */
extern const char factory_connect_to[];   /* address dialled instead, "" for none */
extern const uint16_t factory_port;

#endif
