/* config.h - the configuration shared by choir and choird.
 *
 * One `key = value` file format (see docs/configuration.md).  Layers, from
 * weakest to strongest: built-in defaults, the system file, the user file
 * (choir only), the file named by --config, CHOIR_* environment variables,
 * command-line flags.  Every value remembers where it came from
 * ("/etc/choir/choir.conf:12", "environment CHOIR_PUPPET_SERVER",
 * "--server", "default").  Keys are declared once in a table (config.c)
 * with their type, bounds, default and one-line description; unknown keys
 * and invalid values are errors that give file:line and the reason.  A
 * file may hold keys meant for the other program: they are checked and
 * kept but not used.
 *
 * Files are untrusted: size and line length are bounded, NUL bytes and
 * invalid UTF-8 are rejected, nothing is ever executed. */
#ifndef CHOIR_CONFIG_H
#define CHOIR_CONFIG_H

#include <stddef.h>

#include "core/error.h"
#include "core/kvfile.h"

enum config_program { CONFIG_CHOIR, CONFIG_CHOIRD };

enum config_source {
    CONFIG_SRC_DEFAULT,
    CONFIG_SRC_SYSTEM,
    CONFIG_SRC_USER,
    CONFIG_SRC_FILE,
    CONFIG_SRC_ENV,
    CONFIG_SRC_FLAG,
};

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_BOOL, CONFIG_ENUM, CONFIG_PATH, CONFIG_HOSTPORT };

struct config_key {
    const char *name;        /* "puppet.server" */
    enum config_type type;
    long min, max;           /* CONFIG_INT bounds */
    const char *choices;     /* CONFIG_ENUM: "auto|always|never" */
    const char *def;         /* default text, NULL = unset or computed */
    unsigned programs;       /* bit (1 << CONFIG_CHOIR) | (1 << CONFIG_CHOIRD) */
    const char *help;        /* one line for `choir config --keys` and docs */
};

struct config;

#define CONFIG_MAX_FILE_BYTES (1024 * 1024)
#define CONFIG_MAX_LINE KVFILE_MAX_LINE
#define CONFIG_MAX_BROKERS 16

/* A new configuration holding the defaults for `prog` (computed defaults
 * such as puppet.ssldir and puppet.certname resolved for the current user). */
struct config *config_new(enum config_program prog);
void config_free(struct config *cfg);

/* Reads one file.  A missing file is not an error when !must_exist. */
int config_load_file(struct config *cfg, const char *path, enum config_source src,
                     int must_exist, struct choir_error *err);

/* Reads the text of a file already in memory; `origin` names it in errors. */
int config_load_buffer(struct config *cfg, const char *buf, size_t len, const char *origin,
                       enum config_source src, struct choir_error *err);

/* Applies CHOIR_<KEY> variables (key upper-cased, '.' -> '_').  Unknown
 * CHOIR_ variables are ignored except CHOIR_CONFIG / CHOIR_SYSTEM_CONFIG. */
int config_load_env(struct config *cfg, struct choir_error *err);

/* The standard layering for the program: system file (CHOIR_SYSTEM_CONFIG
 * overrides its path, for tests and packagers), user file for choir
 * ($XDG_CONFIG_HOME/choir/choir.conf or ~/.config/choir/choir.conf),
 * `explicit_file` (--config, must exist) or else $CHOIR_CONFIG, then the
 * environment. */
int config_load_standard(struct config *cfg, const char *explicit_file, struct choir_error *err);

/* Sets one value (flags use CONFIG_SRC_FLAG and origin "--flag"). */
int config_set(struct config *cfg, const char *key, const char *value, enum config_source src,
               const char *origin, struct choir_error *err);

/* Current value, NULL when unset.  Asking for an undeclared key is a bug
 * and aborts. */
const char *config_get(const struct config *cfg, const char *key);
long config_get_int(const struct config *cfg, const char *key);
int config_get_bool(const struct config *cfg, const char *key);
const char *config_origin(const struct config *cfg, const char *key);

/* Parses a boolean word the way configuration values are read (true/false,
 * yes/no, on/off, 1/0, any case): 0 and *out set, or -1.  For flags. */
int config_parse_bool(const char *text, int *out);

/* The declared keys, for listings and the docs check. */
size_t config_key_count(void);
const struct config_key *config_key_at(size_t i);

#endif
