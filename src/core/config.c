/* config.c - layered `key = value` configuration for choir and choird.
 *
 * Contract (the long form is in config.h, the user's view in
 * docs/configuration.md): every key is declared once in config_table with
 * its type, bounds, default and help.  Values are validated when they are
 * set and stored in canonical form together with their origin.  A weaker
 * source never replaces a value from a stronger one (default < system <
 * user < file < environment < flag), whatever the call order.  A file is
 * parsed completely before any of its values is applied, so a file with an
 * error changes nothing.  Errors are one line, "ORIGIN[:LINE]: reason",
 * class CHOIR_EXIT_INPUT.  A '#' inside a value is part of the value: only
 * whole lines can be comments. */
#include "core/config.h"

#include "core/file.h"
#include "core/kvfile.h"
#include "core/names.h"
#include "core/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#define BOTH ((1u << CONFIG_CHOIR) | (1u << CONFIG_CHOIRD))
#define CHOIR_ONLY (1u << CONFIG_CHOIR)
#define CHOIRD_ONLY (1u << CONFIG_CHOIRD)

#define STRING_MAX 1024      /* longest CONFIG_STRING value */
#define PATH_MAX_LEN 4095    /* longest CONFIG_PATH value, after ~/ */
#define HOST_MAX 255         /* longest host part of a CONFIG_HOSTPORT */
#define NAME_MAX_LEN 255     /* certnames and environment names */
#define WHY_MAX 512          /* a reason, before the origin is added */
#define SHOW_MAX 64          /* bytes of a bad value quoted in a message */
#define SHOW_BUF (4 * (SHOW_MAX + 3) + 8)
#define SUGGEST_MAX 64       /* longer names get no "did you mean" */
#define HOST_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-"

typedef int config_check_fn(const char *value, char *why, size_t n);
typedef char *config_default_fn(enum config_program prog);

struct config_def {
    struct config_key key;
    config_check_fn *check;       /* rule on top of the type's, or NULL */
    config_default_fn *compute;   /* computed default, or NULL */
};

static int check_domain(const char *value, char *why, size_t n);
static int check_certname(const char *value, char *why, size_t n);
static int check_environment(const char *value, char *why, size_t n);
static int check_brokers(const char *value, char *why, size_t n);
static int check_collective(const char *value, char *why, size_t n);
static int check_regex(const char *value, char *why, size_t n);
static int check_tui_keys(const char *value, char *why, size_t n);
static char *default_ssldir(enum config_program prog);
static char *default_certname(enum config_program prog);

/* The one table of keys.  Keep docs/configuration.md and
 * packaging/choir.conf.example in step with it. */
static const struct config_def config_table[] = {
    {{"puppet.server", CONFIG_HOSTPORT, 0, 0, NULL, NULL, BOTH,
      "PuppetServer host[:port] for the site graph; unset: SRV record, then puppet:8140"},
     NULL, NULL},
    {{"puppet.srv_domain", CONFIG_STRING, 0, 0, NULL, NULL, BOTH,
      "DNS domain for the _x-puppet._tcp SRV lookup; unset: the host's domain"},
     check_domain, NULL},
    {{"puppet.ssldir", CONFIG_PATH, 0, 0, NULL, NULL, BOTH,
      "Puppet SSL directory; default: /etc/puppetlabs/puppet/ssl for root, "
      "else ~/.puppetlabs/etc/puppet/ssl"},
     NULL, default_ssldir},
    {{"puppet.certname", CONFIG_STRING, 0, 0, NULL, NULL, BOTH,
      "certificate name to present; default: <user>.mcollective for choir, "
      "the host's FQDN for choird"},
     check_certname, default_certname},
    {{"puppet.environment", CONFIG_STRING, 0, 0, NULL, "production", BOTH,
      "Puppet environment whose site graph is deployed"},
     check_environment, NULL},
    {{"http.connect_timeout", CONFIG_INT, 1, 300, NULL, "10", CHOIR_ONLY,
      "seconds to wait for a TCP+TLS connection"},
     NULL, NULL},
    {{"http.timeout", CONFIG_INT, 1, 3600, NULL, "60", CHOIR_ONLY,
      "seconds for a whole HTTP request"},
     NULL, NULL},
    {{"site.max_bytes", CONFIG_INT, 1024, 1073741824, NULL, "67108864", CHOIR_ONLY,
      "largest site graph accepted, in bytes"},
     NULL, NULL},
    {{"color", CONFIG_ENUM, 0, 0, "auto|always|never", "auto", CHOIR_ONLY,
      "colour in text output: auto = only on a terminal, NO_COLOR honoured"},
     NULL, NULL},
    {{"theme", CONFIG_STRING, 0, 0, NULL, "default", CHOIR_ONLY,
      "colour theme: a name from the theme path (themes/NAME.theme) or a file path"},
     NULL, NULL},
    {{"tui.keys", CONFIG_STRING, 0, 0, NULL, NULL, CHOIR_ONLY,
      "console key bindings over the defaults, e.g. 'pause=P abort=X down=j,down' (the console's help lists the actions)"},
     check_tui_keys, NULL},
    {{"bus.brokers", CONFIG_STRING, 0, 0, NULL, "puppet:5671", BOTH,
      "RabbitMQ brokers, host:port separated by commas, tried in order (failover)"},
     check_brokers, NULL},
    {{"bus.tls", CONFIG_BOOL, 0, 0, NULL, "true", BOTH,
      "amqps with the Puppet certificates; false = plain AMQP with bus.user/bus.password (development)"},
     NULL, NULL},
    {{"bus.user", CONFIG_STRING, 0, 0, NULL, NULL, BOTH,
      "AMQP user for plain connections (with TLS: unset = the certificate, SASL EXTERNAL)"},
     NULL, NULL},
    {{"bus.password", CONFIG_STRING, 0, 0, NULL, NULL, BOTH, "AMQP password for bus.user"},
     NULL, NULL},
    {{"bus.vhost", CONFIG_STRING, 0, 0, NULL, "/", BOTH, "AMQP virtual host"}, NULL, NULL},
    {{"bus.collective", CONFIG_STRING, 0, 0, NULL, "mcollective", BOTH,
      "collective: names the exchanges <collective>_broadcast and <collective>_directed"},
     check_collective, NULL},
    {{"bus.heartbeat", CONFIG_INT, 0, 600, NULL, "30", BOTH,
      "AMQP heartbeat in seconds (0 = off)"},
     NULL, NULL},
    {{"bus.connect_timeout", CONFIG_INT, 1, 300, NULL, "10", BOTH,
      "seconds to wait for one broker connection"},
     NULL, NULL},
    {{"security.allow", CONFIG_STRING, 0, 0, NULL, "\\.mcollective$", CHOIRD_ONLY,
      "POSIX extended regex a caller's certname must match"},
     check_regex, NULL},
    {{"security.privileged", CONFIG_STRING, 0, 0, NULL, "\\.privileged\\.mcollective$", CHOIRD_ONLY,
      "POSIX extended regex of certificates that may act for any caller"},
     check_regex, NULL},
    {{"security.policy_file", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "action policy: lines 'allow|deny CALLER_REGEX AGENT ACTION'; unset = every allowed caller may run every action"},
     NULL, NULL},
    {{"security.clock_skew", CONFIG_INT, 0, 3600, NULL, "60", CHOIRD_ONLY,
      "seconds of clock difference tolerated between caller and node"},
     NULL, NULL},
    {{"rpc.ttl", CONFIG_INT, 30, 86400, NULL, "60", CHOIR_ONLY,
      "seconds a request stays valid"},
     NULL, NULL},
    {{"rpc.timeout", CONFIG_INT, 1, 3600, NULL, "20", CHOIR_ONLY,
      "seconds to wait for the replies of named nodes"},
     NULL, NULL},
    {{"rpc.discovery_timeout", CONFIG_INT, 1, 600, NULL, "3", CHOIR_ONLY,
      "seconds to wait for replies to a broadcast (no nodes named)"},
     NULL, NULL},
    {{"job.journal", CONFIG_PATH, 0, 0, NULL, NULL, CHOIR_ONLY,
      "the job journal (SQLite); unset = $XDG_STATE_HOME/choir/journal.db or ~/.local/state/choir/journal.db"},
     NULL, NULL},
    {{"job.start_timeout", CONFIG_INT, 1, 86400, NULL, "120", CHOIR_ONLY,
      "seconds a node may take from runonce to its started event before it is asked"},
     NULL, NULL},
    {{"job.run_timeout", CONFIG_INT, 1, 604800, NULL, "1800", CHOIR_ONLY,
      "seconds a Puppet run may take before the node counts as failed (timeout)"},
     NULL, NULL},
    {{"puppet.command", CONFIG_STRING, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "the puppet program; unset = puppet from PATH, then /opt/puppetlabs/bin/puppet"},
     NULL, NULL},
    {{"puppet.lastrunfile", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "Puppet's last_run_summary.yaml; unset = ask 'puppet config print' at start-up"},
     NULL, NULL},
    {{"puppet.lastrunreport", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "Puppet's last_run_report.yaml; unset = ask Puppet"},
     NULL, NULL},
    {{"puppet.agent_catalog_run_lockfile", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "the lock file of a running catalog; unset = ask Puppet"},
     NULL, NULL},
    {{"puppet.agent_disabled_lockfile", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "the lock file that disables Puppet; unset = ask Puppet"},
     NULL, NULL},
    {{"puppet.pidfile", CONFIG_PATH, 0, 0, NULL, NULL, CHOIRD_ONLY,
      "the Puppet agent daemon's pid file; unset = ask Puppet"},
     NULL, NULL},
    {{"run.command", CONFIG_STRING, 0, 0, NULL,
      "puppet agent --onetime --no-daemonize --color=false --show_diff --verbose --no-splay "
      "--no-use_cached_catalog --detailed-exitcodes --job-id {job_id}", CHOIRD_ONLY,
      "the command of a Puppet run, split on blanks, no shell; {job_id} becomes the job id"},
     NULL, NULL},
    {{"run.state_dir", CONFIG_PATH, 0, 0, NULL, "/var/lib/choird", CHOIRD_ONLY,
      "where choird keeps the run it started (run.json, run.log, run.exit)"},
     NULL, NULL},
    {{"run.output_rate", CONFIG_INT, 1, 1000000, NULL, "2000", CHOIRD_ONLY,
      "output lines per second a run may stream to the console; the rest are counted"},
     NULL, NULL},
    {{"log", CONFIG_ENUM, 0, 0, "auto|stderr|syslog", "auto", CHOIRD_ONLY,
      "where choird logs: auto = stderr in the foreground, syslog otherwise"},
     NULL, NULL},
};

#define KEY_COUNT (sizeof(config_table) / sizeof(config_table[0]))

struct config_value {
    char *text;                 /* canonical value, NULL = unset */
    char *origin;               /* NULL = "default" */
    enum config_source src;
};

struct config {
    enum config_program prog;
    struct config_value val[KEY_COUNT];
};

/* Values read from one file or from the environment, applied only once the
 * whole source has been checked. */
struct pending {
    char *text;
    char *origin;
    unsigned line;
};

struct parser {
    const char *origin;
    struct pending pend[KEY_COUNT];
};

/* ---- small helpers ---------------------------------------------------- */

static char *bad(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes a reason into why and returns NULL, for the value checkers. */
static char *bad(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return NULL;
}

static void out_of_memory(struct choir_error *err)
{
    error_set(err, CHOIR_EXIT_INTERNAL, "configuration: out of memory");
}

static int has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* Quotes s for a message: escapes '"', '\', control bytes (and every high
 * byte if s is not UTF-8), shortened to about SHOW_MAX bytes.  buf must
 * hold SHOW_BUF bytes. */
static const char *show(const char *s, char *buf)
{
    int utf8 = utf8_valid(s, strlen(s));
    size_t o = 0, i;

    buf[o++] = '"';
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];

        if (i >= SHOW_MAX && (!utf8 || (c & 0xC0) != 0x80)) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
            o += (size_t)snprintf(buf + o, SHOW_BUF - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *source_name(enum config_source src)
{
    switch (src) {
    case CONFIG_SRC_DEFAULT: return "default";
    case CONFIG_SRC_SYSTEM: return "system configuration";
    case CONFIG_SRC_USER: return "user configuration";
    case CONFIG_SRC_FILE: return "configuration file";
    case CONFIG_SRC_ENV: return "environment";
    case CONFIG_SRC_FLAG: return "command line";
    }
    return "configuration";
}

/* $HOME (or the password database's home) followed by suffix, or NULL. */
static char *home_join(const char *suffix)
{
    const char *home = getenv("HOME");
    struct passwd *pw;
    size_t len;
    char *out;

    if (!home || !*home) {
        pw = getpwuid(geteuid());
        home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    if (!home)
        return NULL;
    len = strlen(home);
    while (len > 0 && home[len - 1] == '/')
        len--;
    if (asprintf(&out, "%.*s%s", (int)len, home, suffix) < 0)
        return NULL;
    return out;
}

/* ---- keys -------------------------------------------------------------- */

static int key_index(const char *name)
{
    size_t i;

    for (i = 0; i < KEY_COUNT; i++)
        if (strcmp(config_table[i].key.name, name) == 0)
            return (int)i;
    return -1;
}

/* The index of a key the program asks for; an undeclared key is a bug. */
static size_t key_must(const char *name)
{
    int i = key_index(name);

    if (i < 0) {
        fprintf(stderr, "choir: bug: undeclared configuration key \"%s\"\n", name);
        abort();
    }
    return (size_t)i;
}

static int key_syntax_ok(const char *name)
{
    return *name && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_.") == strlen(name);
}

/* Case-insensitive Levenshtein distance, SIZE_MAX for long strings. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[SUGGEST_MAX + 1], i, j;

    if (la > SUGGEST_MAX || lb > SUGGEST_MAX)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (tolower((unsigned char)a[i - 1]) != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* A declared key close to name (at most two edits, or name is the part
 * after the last dot), or NULL. */
static const char *suggest(const char *name)
{
    const char *best = NULL;
    size_t i, best_d = 3;

    for (i = 0; i < KEY_COUNT; i++) {
        const char *k = config_table[i].key.name;
        const char *dot = strrchr(k, '.');
        size_t d = edit_distance(name, k);

        if (dot && strcmp(dot + 1, name) == 0)
            d = 1;
        if (d < best_d && d < strlen(name)) {
            best = k;
            best_d = d;
        }
    }
    return best;
}

static int unknown_key(struct choir_error *err, const char *origin, unsigned line, const char *name)
{
    int valid = key_syntax_ok(name);
    const char *hint = suggest(name);
    char shown[SHOW_BUF];

    show(name, shown);
    if (hint)
        kvfile_fail(err, origin, line, "%s key %s (did you mean \"%s\"?)", valid ? "unknown" : "invalid",
             shown, hint);
    else if (valid)
        kvfile_fail(err, origin, line, "unknown key %s", shown);
    else
        kvfile_fail(err, origin, line, "invalid key %s (keys use only a-z, 0-9, '_' and '.')", shown);
    return -1;
}

/* ---- value checkers: each returns the canonical text or NULL + why ------ */

static char *check_int(const struct config_key *k, const char *v, char *why, size_t n)
{
    const char *p = v + (*v == '-' && k->min < 0);
    int neg = p != v, over = 0;
    unsigned long acc = 0;
    char shown[SHOW_BUF], *out;
    long val;

    if (!*p || strspn(p, "0123456789") != strlen(p))
        return bad(why, n, "%s is not a whole number", show(v, shown));
    for (; *p; p++) {
        unsigned d = (unsigned)(*p - '0');

        if (acc > ((unsigned long)LONG_MAX - d) / 10)
            over = 1;
        else
            acc = acc * 10 + d;
    }
    val = neg ? -(long)acc : (long)acc;
    if (over || val < k->min || val > k->max)
        return bad(why, n, "%.40s%s is out of range %ld..%ld", v, strlen(v) > 40 ? "..." : "",
                   k->min, k->max);
    if (asprintf(&out, "%ld", val) < 0)
        return bad(why, n, "out of memory");
    return out;
}

int config_parse_bool(const char *text, int *out)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    size_t i;

    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcasecmp(text, words[i]) == 0) {
            *out = i % 2 == 0;
            return 0;
        }
    }
    return -1;
}

static char *check_bool(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF], *out;
    int b;

    if (config_parse_bool(v, &b) < 0)
        return bad(why, n, "%s is not a boolean (true/false, yes/no, on/off, 1/0)", show(v, shown));
    out = strdup(b ? "true" : "false");
    return out ? out : bad(why, n, "out of memory");
}

static char *check_enum(const struct config_key *k, const char *v, char *why, size_t n)
{
    const char *c = k->choices;
    char list[256], shown[SHOW_BUF], *out;
    size_t len = strlen(v), o = 0;

    while (*c) {
        size_t w = strcspn(c, "|");

        if (w == len && strncmp(c, v, len) == 0) {
            out = strdup(v);
            return out ? out : bad(why, n, "out of memory");
        }
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%.*s", o ? ", " : "", (int)w, c);
        if (o >= sizeof(list))
            o = sizeof(list) - 1;
        c += w + (c[w] == '|');
    }
    return bad(why, n, "%s is not one of %s", show(v, shown), list);
}

static char *check_path(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF], *out;

    if (has_control(v))
        return bad(why, n, "%s contains a control character", show(v, shown));
    if (v[0] == '~' && v[1] == '/') {
        out = home_join(v + 1);
        if (!out)
            return bad(why, n, "%s starts with ~/ but HOME is not set", show(v, shown));
    } else {
        out = strdup(v);
        if (!out)
            return bad(why, n, "out of memory");
    }
    if (strlen(out) > PATH_MAX_LEN) {
        free(out);
        return bad(why, n, "path is longer than %d bytes", PATH_MAX_LEN);
    }
    return out;
}

/* NULL when port is a decimal number 1..65535, else the reason. */
static const char *port_problem(const char *port)
{
    unsigned long val = 0;

    if (!*port || strspn(port, "0123456789") != strlen(port))
        return "has a port that is not a whole number";
    for (; *port && val <= 65535; port++)
        val = val * 10 + (unsigned long)(*port - '0');
    return val >= 1 && val <= 65535 ? NULL : "has a port out of range 1..65535";
}

/* Length of the host part of v ("name" or "[v6]"), 0 if it is malformed. */
static size_t host_part(const char *v)
{
    size_t len;

    if (v[0] == '[') {
        const char *close = strchr(v, ']');

        if (!close || close == v + 1)
            return 0;
        len = (size_t)(close - v - 1);
        return strspn(v + 1, "0123456789abcdefABCDEF:.") == len ? len + 2 : 0;
    }
    len = strcspn(v, ":");
    if (len == 0 || strspn(v, HOST_CHARS) < len || v[0] == '-' || v[0] == '.')
        return 0;
    return len;
}

static char *check_hostport(const char *v, char *why, size_t n)
{
    size_t host = host_part(v);
    const char *problem = NULL;
    char shown[SHOW_BUF], *out;

    show(v, shown);
    if (host == 0 || (v[host] && v[host] != ':'))
        return bad(why, n, "%s is not host or host:port%s", shown,
                   v[0] != '[' && strchr(v, ':') != strrchr(v, ':')
                       ? " (write IPv6 addresses as [addr]:port)" : "");
    if (host > HOST_MAX)
        return bad(why, n, "%s has a host name longer than %d bytes", shown, HOST_MAX);
    if (v[host] == ':')
        problem = port_problem(v + host + 1);
    if (problem)
        return bad(why, n, "%s %s", shown, problem);
    out = strdup(v);
    return out ? out : bad(why, n, "out of memory");
}

static char *check_string(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF], *out;

    if (strlen(v) > STRING_MAX)
        return bad(why, n, "value is longer than %d bytes", STRING_MAX);
    if (has_control(v))
        return bad(why, n, "%s contains a control character", show(v, shown));
    out = strdup(v);
    return out ? out : bad(why, n, "out of memory");
}

static char *check_type(const struct config_key *k, const char *v, char *why, size_t n)
{
    switch (k->type) {
    case CONFIG_INT: return check_int(k, v, why, n);
    case CONFIG_BOOL: return check_bool(v, why, n);
    case CONFIG_ENUM: return check_enum(k, v, why, n);
    case CONFIG_PATH: return check_path(v, why, n);
    case CONFIG_HOSTPORT: return check_hostport(v, why, n);
    case CONFIG_STRING: return check_string(v, why, n);
    }
    return bad(why, n, "key has an unknown type");
}

/* The canonical form of value v for key d, or NULL with the reason (which
 * does not name the key) in why. */
static char *check_value(const struct config_def *d, const char *v, char *why, size_t n)
{
    char *out;

    if (!*v)
        return bad(why, n, "value is empty");
    if (!utf8_valid(v, strlen(v)))
        return bad(why, n, "value is not valid UTF-8");
    out = check_type(&d->key, v, why, n);
    if (out && d->check && d->check(out, why, n) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

static int check_domain(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF];

    if (strlen(v) <= HOST_MAX && strspn(v, HOST_CHARS) == strlen(v) && v[0] != '-' && v[0] != '.')
        return 0;
    bad(why, n, "%s is not a DNS domain name", show(v, shown));
    return -1;
}

static int check_certname(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF];

    if (names_certname_ok(v, strlen(v)))
        return 0;
    bad(why, n, "%s is not a valid certname (a-z, 0-9, '.', '_' and '-', not starting with '.' or '-', "
        "at most %d bytes)", show(v, shown), NAME_MAX_LEN);
    return -1;
}

static int check_brokers(const char *v, char *why, size_t n)
{
    char copy[STRING_MAX + 1], *save = NULL, shown[SHOW_BUF];
    int count = 0;

    snprintf(copy, sizeof(copy), "%s", v);
    for (char *b = strtok_r(copy, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
        char *ok;

        while (*b == ' ')
            b++;
        ok = check_hostport(b, why, n);

        if (!ok)
            return -1;
        free(ok);
        count++;
    }
    if (count == 0 || count > CONFIG_MAX_BROKERS) {
        bad(why, n, "%s must list 1 to %d brokers as host:port separated by commas", show(v, shown),
            CONFIG_MAX_BROKERS);
        return -1;
    }
    return 0;
}

static int check_collective(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF];
    size_t len = strlen(v);

    if (len <= 64 && strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") == len)
        return 0;
    bad(why, n, "%s is not a collective name (a-z, 0-9 and '_', at most 64 bytes)", show(v, shown));
    return -1;
}

/* glibc's regcomp can take gigabytes on short patterns with many nested
 * repetitions (found by fuzz_config), so patterns are bounded first. */
#define REGEX_MAX_LEN 256
#define REGEX_MAX_REPEATS 8

/* "ACTION=KEY[,KEY...] ...": the words' shape; the console checks the
 * actions and key names when it starts (it owns the keymap). */
static int check_tui_keys(const char *v, char *why, size_t n)
{
    const char *p = v;

    while (*p) {
        size_t len = strcspn(p, " \t"), name = strspn(p, "abcdefghijklmnopqrstuvwxyz-");

        if (len && (name == 0 || p[name] != '=' || name + 1 >= len)) {
            snprintf(why, n, "\"%.*s\" is not ACTION=KEY[,KEY...]", (int)(len < 40 ? len : 40), p);
            return -1;
        }
        p += len;
        p += strspn(p, " \t");
    }
    return 0;
}

static int check_regex(const char *v, char *why, size_t n)
{
    size_t repeats = 0;
    regex_t re;
    char msg[200];
    int rc;

    for (const char *c = v; *c; c++)
        repeats += *c == '*' || *c == '+' || *c == '?' || *c == '{';
    if (strlen(v) > REGEX_MAX_LEN || repeats > REGEX_MAX_REPEATS) {
        bad(why, n, "a pattern may have at most %d bytes and %d repetition operators (* + ? {)",
            REGEX_MAX_LEN, REGEX_MAX_REPEATS);
        return -1;
    }
    rc = regcomp(&re, v, REG_EXTENDED | REG_NOSUB);

    if (rc == 0) {
        regfree(&re);
        return 0;
    }
    regerror(rc, &re, msg, sizeof(msg));
    bad(why, n, "not a POSIX extended regular expression: %s", msg);
    return -1;
}

static int check_environment(const char *v, char *why, size_t n)
{
    char shown[SHOW_BUF];
    size_t len = strlen(v);

    if (names_environment_ok(v, len))
        return 0;
    bad(why, n, "%s is not a valid Puppet environment name (a-z, 0-9 and '_', at most %d bytes)",
        show(v, shown), NAME_MAX_LEN);
    return -1;
}

/* ---- computed defaults ------------------------------------------------- */

static char *default_ssldir(enum config_program prog)
{
    (void)prog;
    if (geteuid() == 0)
        return strdup("/etc/puppetlabs/puppet/ssl");
    return home_join("/.puppetlabs/etc/puppet/ssl");
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static char *user_certname(void)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *user = pw && pw->pw_name && *pw->pw_name ? pw->pw_name : getenv("USER");
    char *out;

    if (!user || !*user || asprintf(&out, "%s.mcollective", user) < 0)
        return NULL;
    return out;
}

/* The host's canonical name from the resolver, else its plain hostname. */
static char *host_certname(void)
{
    struct addrinfo hints, *res = NULL;
    char host[256], *out = NULL;

    if (gethostname(host, sizeof(host)) != 0)
        return NULL;
    host[sizeof(host) - 1] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = AI_CANONNAME;
    if (getaddrinfo(host, NULL, &hints, &res) == 0 && res && res->ai_canonname) {
        out = strdup(res->ai_canonname);
        if (out)
            lower(out);
        if (out && !names_certname_ok(out, strlen(out))) {
            free(out);
            out = NULL;
        }
    }
    if (res)
        freeaddrinfo(res);
    return out ? out : strdup(host);
}

static char *default_certname(enum config_program prog)
{
    char *name = prog == CONFIG_CHOIR ? user_certname() : host_certname();

    if (name)
        lower(name);
    if (name && !names_certname_ok(name, strlen(name))) {
        free(name);
        name = NULL;
    }
    return name;
}

/* ---- storing ----------------------------------------------------------- */

/* Takes text and origin; a weaker source never replaces a stronger one. */
static void store(struct config *cfg, size_t i, enum config_source src, char *text, char *origin)
{
    struct config_value *v = &cfg->val[i];

    if (src < v->src) {
        free(text);
        free(origin);
        return;
    }
    free(v->text);
    free(v->origin);
    v->text = text;
    v->origin = origin;
    v->src = src;
}

static void pending_commit(struct config *cfg, struct pending *pend, enum config_source src)
{
    size_t i;

    for (i = 0; i < KEY_COUNT; i++) {
        if (pend[i].text)
            store(cfg, i, src, pend[i].text, pend[i].origin);
        pend[i].text = pend[i].origin = NULL;
    }
}

static void pending_free(struct pending *pend)
{
    size_t i;

    for (i = 0; i < KEY_COUNT; i++) {
        free(pend[i].text);
        free(pend[i].origin);
        pend[i].text = pend[i].origin = NULL;
    }
}

/* ---- public: lifetime and accessors ------------------------------------ */

struct config *config_new(enum config_program prog)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    size_t i;

    if (!cfg)
        return NULL;
    cfg->prog = prog;
    for (i = 0; i < KEY_COUNT; i++) {
        const struct config_def *d = &config_table[i];

        if (d->compute) {
            cfg->val[i].text = d->compute(prog);
        } else if (d->key.def && !(cfg->val[i].text = strdup(d->key.def))) {
            config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

void config_free(struct config *cfg)
{
    size_t i;

    if (!cfg)
        return;
    for (i = 0; i < KEY_COUNT; i++) {
        free(cfg->val[i].text);
        free(cfg->val[i].origin);
    }
    free(cfg);
}

const char *config_get(const struct config *cfg, const char *key)
{
    return cfg->val[key_must(key)].text;
}

long config_get_int(const struct config *cfg, const char *key)
{
    size_t i = key_must(key);

    if (config_table[i].key.type != CONFIG_INT)
        abort();
    return cfg->val[i].text ? strtol(cfg->val[i].text, NULL, 10) : 0;
}

int config_get_bool(const struct config *cfg, const char *key)
{
    size_t i = key_must(key);

    if (config_table[i].key.type != CONFIG_BOOL)
        abort();
    return cfg->val[i].text && strcmp(cfg->val[i].text, "true") == 0;
}

const char *config_origin(const struct config *cfg, const char *key)
{
    const char *origin = cfg->val[key_must(key)].origin;

    return origin ? origin : "default";
}

size_t config_key_count(void)
{
    return KEY_COUNT;
}

const struct config_key *config_key_at(size_t i)
{
    return i < KEY_COUNT ? &config_table[i].key : NULL;
}

int config_set(struct config *cfg, const char *key, const char *value, enum config_source src,
               const char *origin, struct choir_error *err)
{
    char why[WHY_MAX], *text, *org;
    int i = key_index(key);

    if (!origin)
        origin = source_name(src);
    if (i < 0)
        return unknown_key(err, origin, 0, key);
    if (!value) {
        kvfile_fail(err, origin, 0, "%s: no value given", key);
        return -1;
    }
    text = check_value(&config_table[i], value, why, sizeof(why));
    if (!text) {
        kvfile_fail(err, origin, 0, "%s: %s", key, why);
        return -1;
    }
    org = strdup(origin);
    if (!org) {
        free(text);
        out_of_memory(err);
        return -1;
    }
    store(cfg, (size_t)i, src, text, org);
    return 0;
}

/* ---- files ------------------------------------------------------------- */

static int parse_pair(void *ctx, const char *key, const char *value, unsigned line,
                      struct choir_error *err)
{
    struct parser *ps = ctx;
    char why[WHY_MAX], *text, *origin;
    int i = key_index(key);

    if (i < 0)
        return unknown_key(err, ps->origin, line, key);
    if (ps->pend[i].text) {
        kvfile_fail(err, ps->origin, line, "%s: duplicate key, first set at line %u", key,
             ps->pend[i].line);
        return -1;
    }
    text = check_value(&config_table[i], value, why, sizeof(why));
    if (!text) {
        kvfile_fail(err, ps->origin, line, "%s: %s", key, why);
        return -1;
    }
    if (asprintf(&origin, "%s:%u", ps->origin, line) < 0) {
        free(text);
        out_of_memory(err);
        return -1;
    }
    ps->pend[i] = (struct pending){text, origin, line};
    return 0;
}

int config_load_buffer(struct config *cfg, const char *buf, size_t len, const char *origin,
                       enum config_source src, struct choir_error *err)
{
    struct parser ps;

    memset(&ps, 0, sizeof(ps));
    ps.origin = origin ? origin : source_name(src);
    if (len > CONFIG_MAX_FILE_BYTES) {
        kvfile_fail(err, ps.origin, 0, "file is larger than %d bytes", CONFIG_MAX_FILE_BYTES);
        return -1;
    }
    if (kvfile_parse(buf, len, ps.origin, parse_pair, &ps, err) < 0) {
        pending_free(ps.pend);
        return -1;
    }
    pending_commit(cfg, ps.pend, src);
    return 0;
}

int config_load_file(struct config *cfg, const char *path, enum config_source src,
                     int must_exist, struct choir_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    int e = file_read(path, CONFIG_MAX_FILE_BYTES, &buf, &len), rc;

    if ((e == ENOENT || e == ENOTDIR) && !must_exist)
        return 0;
    if (e == EFBIG) {
        kvfile_fail(err, path, 0, "file is larger than %d bytes", CONFIG_MAX_FILE_BYTES);
        return -1;
    }
    if (e) {
        kvfile_fail(err, path, 0, "cannot read: %s", strerror(e));
        return -1;
    }
    rc = config_load_buffer(cfg, buf, len, path, src, err);
    free(buf);
    return rc;
}

/* ---- environment and the standard layering ----------------------------- */

/* "puppet.server" -> "CHOIR_PUPPET_SERVER". */
static void env_name(const char *key, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "CHOIR_");

    for (; *key && o + 1 < n; key++)
        buf[o++] = *key == '.' ? '_' : (char)toupper((unsigned char)*key);
    buf[o] = '\0';
}

static int env_one(struct pending *p, const struct config_def *d, struct choir_error *err)
{
    char name[128], origin[160], why[WHY_MAX];
    const char *v;

    env_name(d->key.name, name, sizeof(name));
    v = getenv(name);
    if (!v || !*v)
        return 0;
    snprintf(origin, sizeof(origin), "environment %s", name);
    p->text = check_value(d, v, why, sizeof(why));
    if (!p->text) {
        kvfile_fail(err, origin, 0, "%s: %s", d->key.name, why);
        return -1;
    }
    p->origin = strdup(origin);
    if (!p->origin) {
        out_of_memory(err);
        return -1;
    }
    return 0;
}

int config_load_env(struct config *cfg, struct choir_error *err)
{
    struct pending pend[KEY_COUNT];
    size_t i;

    memset(pend, 0, sizeof(pend));
    for (i = 0; i < KEY_COUNT; i++) {
        if (env_one(&pend[i], &config_table[i], err) < 0) {
            pending_free(pend);
            return -1;
        }
    }
    pending_commit(cfg, pend, CONFIG_SRC_ENV);
    return 0;
}

static int load_system(struct config *cfg, struct choir_error *err)
{
    const char *path = getenv("CHOIR_SYSTEM_CONFIG");

    if (!path)
        path = cfg->prog == CONFIG_CHOIR ? "/etc/choir/choir.conf" : "/etc/choir/choird.conf";
    if (!*path)
        return 0;
    return config_load_file(cfg, path, CONFIG_SRC_SYSTEM, 0, err);
}

static int load_user(struct config *cfg, struct choir_error *err)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    char *path = NULL;
    int rc;

    if (xdg && xdg[0] == '/') {
        if (asprintf(&path, "%s/choir/choir.conf", xdg) < 0)
            path = NULL;
    } else {
        path = home_join("/.config/choir/choir.conf");
    }
    if (!path)
        return 0;
    rc = config_load_file(cfg, path, CONFIG_SRC_USER, 0, err);
    free(path);
    return rc;
}

int config_load_standard(struct config *cfg, const char *explicit_file, struct choir_error *err)
{
    const char *file = explicit_file ? explicit_file : getenv("CHOIR_CONFIG");

    if (load_system(cfg, err) < 0)
        return -1;
    if (cfg->prog == CONFIG_CHOIR && load_user(cfg, err) < 0)
        return -1;
    if (file && (explicit_file || *file) &&
        config_load_file(cfg, file, CONFIG_SRC_FILE, 1, err) < 0)
        return -1;
    return config_load_env(cfg, err);
}
