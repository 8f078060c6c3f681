/* netconf.h - the bus and security settings of a configuration.
 *
 * Contract: netconf_init fills a bus_config and a security_config from the
 * bus.*, security.* and puppet.* keys of `cfg` (docs/configuration.md);
 * `identity` is the node's identity for choird, NULL for the console.  The
 * structs point into cfg and into nc, which must outlive them. */
#ifndef CHOIR_NETCONF_H
#define CHOIR_NETCONF_H

#include "core/config.h"
#include "net/bus.h"
#include "net/security.h"

struct netconf {
    struct bus_config bus;
    struct security_config sec;
    char brokers_text[1100];
    const char *brokers[CONFIG_MAX_BROKERS];
};

void netconf_init(struct netconf *nc, const struct config *cfg, const char *identity);

#endif
