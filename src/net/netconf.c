/* netconf.c - see netconf.h. */
#include "net/netconf.h"

#include <stdio.h>
#include <string.h>

/* Splits bus.brokers ("a:5671, b:5671") into nc->brokers. */
static void netconf_brokers(struct netconf *nc, const char *list)
{
    char *save = NULL;

    snprintf(nc->brokers_text, sizeof(nc->brokers_text), "%s", list);
    for (char *b = strtok_r(nc->brokers_text, ",", &save); b && nc->bus.nbrokers < CONFIG_MAX_BROKERS;
         b = strtok_r(NULL, ",", &save)) {
        while (*b == ' ')
            b++;
        nc->brokers[nc->bus.nbrokers++] = b;
    }
    nc->bus.brokers = nc->brokers;
}

void netconf_init(struct netconf *nc, const struct config *cfg, const char *identity)
{
    memset(nc, 0, sizeof(*nc));
    netconf_brokers(nc, config_get(cfg, "bus.brokers"));
    nc->bus.tls = config_get_bool(cfg, "bus.tls");
    nc->bus.ssldir = config_get(cfg, "puppet.ssldir");
    nc->bus.certname = config_get(cfg, "puppet.certname");
    nc->bus.user = config_get(cfg, "bus.user");
    nc->bus.password = config_get(cfg, "bus.password");
    nc->bus.vhost = config_get(cfg, "bus.vhost");
    nc->bus.heartbeat = (int)config_get_int(cfg, "bus.heartbeat");
    if (nc->bus.heartbeat == 0)
        nc->bus.heartbeat = -1; /* 0 in the configuration means off */
    nc->bus.collective = config_get(cfg, "bus.collective");
    nc->bus.connect_timeout = config_get_int(cfg, "bus.connect_timeout");
    nc->bus.connection_name = identity ? "choird" : "choir";
    /* choird retries forever in its own loop: short attempts keep it
     * responsive to SIGTERM while the broker is away. */
    nc->bus.reconnect_timeout = identity ? 5 : 0;
    /* Nothing larger than one wire document can be a valid request: the
     * node drops it unread instead of buffering up to the bus default. */
    if (identity)
        nc->bus.max_body = WIRE_MAX_BYTES;

    security_config_init(&nc->sec);
    nc->sec.ssldir = nc->bus.ssldir;
    nc->sec.certname = nc->bus.certname;
    nc->sec.collective = nc->bus.collective;
    nc->sec.identity = identity;
    if (identity) {
        nc->sec.allow_regex = config_get(cfg, "security.allow");
        nc->sec.privileged_regex = config_get(cfg, "security.privileged");
        nc->sec.policy_file = config_get(cfg, "security.policy_file");
        nc->sec.clock_skew = config_get_int(cfg, "security.clock_skew");
    }
}
