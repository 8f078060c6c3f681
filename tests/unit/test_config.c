/* test_config.c - unit tests for src/core/config.c.
 *
 * Each test runs with a fresh temporary directory as HOME and
 * XDG_CONFIG_HOME's parent, no system file (CHOIR_SYSTEM_CONFIG="") and no
 * CHOIR_* overrides, so the machine's own configuration never leaks in. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/config.h"

static char tmpdir[256];
static char homedir[300];
static char xdgdir[300];

/* ---- fixtures ---------------------------------------------------------- */

static void unset_key_vars(void)
{
    size_t i;

    for (i = 0; i < config_key_count(); i++) {
        char name[128];
        const char *k = config_key_at(i)->name;
        size_t o = (size_t)snprintf(name, sizeof(name), "CHOIR_");

        for (; *k; k++)
            name[o++] = *k == '.' ? '_' : (char)(*k >= 'a' && *k <= 'z' ? *k - 32 : *k);
        name[o] = '\0';
        unsetenv(name);
    }
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/choir-test-config-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(homedir, sizeof(homedir), "%s/home", tmpdir);
    snprintf(xdgdir, sizeof(xdgdir), "%s/xdg", tmpdir);
    if (mkdir(homedir, 0700) != 0 || mkdir(xdgdir, 0700) != 0)
        return -1;
    setenv("HOME", homedir, 1);
    setenv("XDG_CONFIG_HOME", xdgdir, 1);
    setenv("CHOIR_SYSTEM_CONFIG", "", 1);
    unsetenv("CHOIR_CONFIG");
    unset_key_vars();
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    unset_key_vars();
    return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes content to a new mkstemp file in tmpdir; path holds 512 bytes. */
static void write_temp(char *path, const char *content)
{
    int fd;

    snprintf(path, 512, "%s/cfg-XXXXXX", tmpdir);
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

/* Writes content to dir/choir/choir.conf (the user file); path holds 512. */
static void write_user_file(char *path, const char *dir, const char *content)
{
    FILE *f;

    assert_true(snprintf(path, 512, "%s/choir", dir) < 512);
    mkdir(path, 0700);
    assert_true(snprintf(path, 512, "%s/choir/choir.conf", dir) < 512);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static int load(struct config *cfg, const char *text, struct choir_error *err)
{
    return config_load_buffer(cfg, text, strlen(text), "x.conf", CONFIG_SRC_FILE, err);
}

/* ---- the key table and defaults ---------------------------------------- */

static void test_key_table(void **state)
{
    static const char *const names[] = {
        "puppet.server", "puppet.srv_domain", "puppet.ssldir", "puppet.certname",
        "puppet.environment", "http.connect_timeout", "http.timeout", "site.max_bytes", "color", "theme", "tui.keys", "bus.brokers", "bus.tls", "bus.user",
        "bus.password", "bus.vhost", "bus.collective", "bus.heartbeat", "bus.connect_timeout",
        "security.allow", "security.privileged", "security.policy_file", "security.clock_skew",
        "rpc.ttl", "rpc.timeout", "rpc.discovery_timeout", "job.journal", "job.start_timeout", "job.run_timeout", "puppet.command", "puppet.lastrunfile",
        "puppet.lastrunreport", "puppet.agent_catalog_run_lockfile",
        "puppet.agent_disabled_lockfile", "puppet.pidfile", "run.command", "run.state_dir", "run.output_rate", "log",
    };
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    size_t i;

    (void)state;
    assert_int_equal(config_key_count(), sizeof(names) / sizeof(names[0]));
    for (i = 0; i < config_key_count(); i++) {
        const struct config_key *k = config_key_at(i);

        assert_string_equal(k->name, names[i]);
        assert_true(k->help && *k->help);
        assert_true(k->programs & ((1u << CONFIG_CHOIR) | (1u << CONFIG_CHOIRD)));
        if (k->def)   /* every declared default passes its own validation */
            assert_int_equal(config_set(cfg, k->name, k->def, CONFIG_SRC_DEFAULT, NULL, &err), 0);
    }
    assert_null(config_key_at(config_key_count()));
    config_free(cfg);
}

static void test_defaults(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);

    (void)state;
    assert_non_null(cfg);
    assert_string_equal(config_get(cfg, "puppet.environment"), "production");
    assert_string_equal(config_origin(cfg, "puppet.environment"), "default");
    assert_int_equal(config_get_int(cfg, "http.connect_timeout"), 10);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 60);
    assert_int_equal(config_get_int(cfg, "site.max_bytes"), 67108864);
    assert_string_equal(config_get(cfg, "color"), "auto");
    assert_null(config_get(cfg, "puppet.server"));
    assert_string_equal(config_origin(cfg, "puppet.server"), "default");
    assert_null(config_get(cfg, "puppet.srv_domain"));
    config_free(cfg);
}

static void test_computed_defaults(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct config *d = config_new(CONFIG_CHOIRD);
    const char *cert = config_get(cfg, "puppet.certname");
    const char *dcert = config_get(d, "puppet.certname");
    char want[512];
    size_t len;

    (void)state;
    assert_non_null(cert);
    len = strlen(cert);
    assert_true(len > strlen(".mcollective"));
    assert_string_equal(cert + len - strlen(".mcollective"), ".mcollective");
    assert_string_equal(config_origin(cfg, "puppet.certname"), "default");
    assert_non_null(dcert);
    assert_true(strspn(dcert, "abcdefghijklmnopqrstuvwxyz0123456789._-") == strlen(dcert));
    assert_true(dcert[0] != '.');
    if (geteuid() == 0)
        snprintf(want, sizeof(want), "/etc/puppetlabs/puppet/ssl");
    else
        snprintf(want, sizeof(want), "%s/.puppetlabs/etc/puppet/ssl", homedir);
    assert_string_equal(config_get(cfg, "puppet.ssldir"), want);
    assert_string_equal(config_get(d, "puppet.ssldir"), want);
    config_free(cfg);
    config_free(d);
}

/* ---- the file format --------------------------------------------------- */

static void test_parse_format(void **state)
{
    static const char text[] =
        "\xEF\xBB\xBF# choir test file\r\n"
        "\n"
        "   # an indented comment\n"
        "\t puppet.server   =   puppet.example.com:8140   \r\n"
        "puppet.ssldir = \"  /srv/a \\\"b\\\" \\\\c  \"\n"
        "puppet.environment=\"staging\"\n"
        "color=never\n"
        "# a last line without newline";
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(load(cfg, text, &err), 0);
    assert_string_equal(config_get(cfg, "puppet.server"), "puppet.example.com:8140");
    assert_string_equal(config_origin(cfg, "puppet.server"), "x.conf:4");
    assert_string_equal(config_get(cfg, "puppet.ssldir"), "  /srv/a \"b\" \\c  ");
    assert_string_equal(config_get(cfg, "puppet.environment"), "staging");
    assert_string_equal(config_origin(cfg, "puppet.environment"), "x.conf:6");
    assert_string_equal(config_get(cfg, "color"), "never");
    assert_string_equal(config_origin(cfg, "color"), "x.conf:7");
    config_free(cfg);
}

static void test_hash_is_part_of_value(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(load(cfg, "puppet.ssldir = /srv/ssl # main\n", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.ssldir"), "/srv/ssl # main");
    config_free(cfg);
}

static void test_error_messages(void **state)
{
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"# comment\nnot a pair\n", "x.conf:2: expected \"key = value\""},
        {"= value\n", "x.conf:1: expected \"key = value\""},
        {"\n\n\npuppet.sever = x\n",
         "x.conf:4: unknown key \"puppet.sever\" (did you mean \"puppet.server\"?)"},
        {"timeout = 5\n", "x.conf:1: unknown key \"timeout\" (did you mean \"http.timeout\"?)"},
        {"frobnicate = 1\n", "x.conf:1: unknown key \"frobnicate\""},
        {"Puppet.Server = x\n",
         "x.conf:1: invalid key \"Puppet.Server\" (did you mean \"puppet.server\"?)"},
        {"bad key! = 1\n", "x.conf:1: invalid key \"bad key!\" (keys use only a-z, 0-9, '_' and '.')"},
        {"# a\n# b\nhttp.timeout = abc\n", "x.conf:3: http.timeout: \"abc\" is not a whole number"},
        {"\n\n\nhttp.timeout = 0\n", "x.conf:4: http.timeout: 0 is out of range 1..3600"},
        {"http.timeout = 99999999999999999999\n",
         "x.conf:1: http.timeout: 99999999999999999999 is out of range 1..3600"},
        {"http.timeout = -5\n", "x.conf:1: http.timeout: \"-5\" is not a whole number"},
        {"http.timeout = +5\n", "x.conf:1: http.timeout: \"+5\" is not a whole number"},
        {"http.timeout =\n", "x.conf:1: http.timeout: value is empty"},
        {"puppet.server = \"\"\n", "x.conf:1: puppet.server: value is empty"},
        {"puppet.environment = \"prod\n", "x.conf:1: missing closing quote"},
        {"puppet.environment = \"prod\\\"\n", "x.conf:1: missing closing quote"},
        {"puppet.environment = \"a\\nb\"\n",
         "x.conf:1: invalid escape in quoted value (only \\\" and \\\\)"},
        {"puppet.environment = \"prod\" # live\n",
         "x.conf:1: text after the closing quote (comments must be on their own line)"},
        {"color = blue\n", "x.conf:1: color: \"blue\" is not one of auto, always, never"},
        {"color = Always\n", "x.conf:1: color: \"Always\" is not one of auto, always, never"},
        {"puppet.server = puppet:0\n",
         "x.conf:1: puppet.server: \"puppet:0\" has a port out of range 1..65535"},
        {"puppet.certname = .hidden\n",
         "x.conf:1: puppet.certname: \".hidden\" is not a valid certname (a-z, 0-9, '.', '_' and '-', "
         "not starting with '.' or '-', at most 255 bytes)"},
        {"puppet.certname = Node1\n",
         "x.conf:1: puppet.certname: \"Node1\" is not a valid certname (a-z, 0-9, '.', '_' and '-', "
         "not starting with '.' or '-', at most 255 bytes)"},
        {"puppet.environment = my-env\n",
         "x.conf:1: puppet.environment: \"my-env\" is not a valid Puppet environment name "
         "(a-z, 0-9 and '_', at most 255 bytes)"},
        {"puppet.environment = \"x\\\"y\"\n",
         "x.conf:1: puppet.environment: \"x\\\"y\" is not a valid Puppet environment name "
         "(a-z, 0-9 and '_', at most 255 bytes)"},
        {"puppet.srv_domain = exa mple.com\n",
         "x.conf:1: puppet.srv_domain: \"exa mple.com\" is not a DNS domain name"},
        {"puppet.ssldir = /srv/a\tb\n",
         "x.conf:1: puppet.ssldir: \"/srv/a\\x09b\" contains a control character"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config *cfg = config_new(CONFIG_CHOIR);
        struct choir_error err = {0};

        assert_int_equal(load(cfg, cases[i].text, &err), -1);
        assert_string_equal(err.msg, cases[i].msg);
        assert_int_equal(err.code, CHOIR_EXIT_INPUT);
        config_free(cfg);
    }
}

static void test_duplicate_key(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(load(cfg, "puppet.server = a\n# x\n\npuppet.server = b\n", &err), -1);
    assert_string_equal(err.msg, "x.conf:4: puppet.server: duplicate key, first set at line 1");
    /* the same key in two different files is layering, not a duplicate */
    assert_int_equal(load(cfg, "puppet.server = a\n", &err), 0);
    assert_int_equal(load(cfg, "\npuppet.server = b\n", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.server"), "b");
    assert_string_equal(config_origin(cfg, "puppet.server"), "x.conf:2");
    config_free(cfg);
}

static void test_bad_file_changes_nothing(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(load(cfg, "http.timeout = 30\ncolor = blue\n", &err), -1);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 60);
    assert_string_equal(config_origin(cfg, "http.timeout"), "default");
    config_free(cfg);
}

static void test_line_too_long(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char *text = malloc(CONFIG_MAX_LINE + 16);

    (void)state;
    /* exactly CONFIG_MAX_LINE bytes is fine */
    text[0] = '#';
    memset(text + 1, 'x', CONFIG_MAX_LINE - 1);
    strcpy(text + CONFIG_MAX_LINE, "\n");
    assert_int_equal(load(cfg, text, &err), 0);
    /* one more byte on line 2 is not */
    memmove(text + 2, text, CONFIG_MAX_LINE + 2);
    memcpy(text, "\n#", 2);
    assert_int_equal(load(cfg, text, &err), -1);
    assert_string_equal(err.msg, "x.conf:2: line is longer than 4096 bytes");
    free(text);
    config_free(cfg);
}

static void test_file_too_large(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    size_t n = CONFIG_MAX_FILE_BYTES, i;
    char *text = malloc(n + 1);

    (void)state;
    for (i = 0; i < n; i += 1024) {   /* 1024 comment lines of 1024 bytes */
        memset(text + i, '#', 1023);
        text[i + 1023] = '\n';
    }
    assert_int_equal(config_load_buffer(cfg, text, n, "x.conf", CONFIG_SRC_FILE, &err), 0);
    text[n] = '\n';
    assert_int_equal(config_load_buffer(cfg, text, n + 1, "x.conf", CONFIG_SRC_FILE, &err), -1);
    assert_string_equal(err.msg, "x.conf: file is larger than 1048576 bytes");
    free(text);
    config_free(cfg);
}

static void test_nul_byte(void **state)
{
    static const char text[] = "color = never\n# x\0y\n";
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(config_load_buffer(cfg, text, sizeof(text) - 1, "x.conf", CONFIG_SRC_FILE, &err),
                     -1);
    assert_string_equal(err.msg, "x.conf:2: contains a NUL byte");
    assert_string_equal(config_get(cfg, "color"), "auto");
    config_free(cfg);
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "# caf\xff\n",              /* never valid */
        "# \xc0\xaf\n",             /* overlong '/' */
        "# \xed\xa0\x80\n",         /* surrogate */
        "# \xf4\x90\x80\x80\n",     /* above U+10FFFF */
        "# \xe2\x82\n",             /* truncated */
    };
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];

        snprintf(text, sizeof(text), "color = never\n%s", bad[i]);
        assert_int_equal(load(cfg, text, &err), -1);
        assert_string_equal(err.msg, "x.conf:2: invalid UTF-8");
    }
    assert_int_equal(load(cfg, "# caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xb5\n", &err), 0);
    config_free(cfg);
}

static void test_missing_file(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char path[512];

    (void)state;
    snprintf(path, sizeof(path), "%s/nope.conf", tmpdir);
    assert_int_equal(config_load_file(cfg, path, CONFIG_SRC_SYSTEM, 0, &err), 0);
    assert_int_equal(config_load_file(cfg, path, CONFIG_SRC_FILE, 1, &err), -1);
    assert_string_equal(err.msg + strlen(path), ": cannot read: No such file or directory");
    assert_memory_equal(err.msg, path, strlen(path));
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_int_equal(config_load_file(cfg, tmpdir, CONFIG_SRC_FILE, 0, &err), -1);
    assert_string_equal(err.msg + strlen(tmpdir), ": cannot read: Is a directory");
    config_free(cfg);
}

static void test_file_origin(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char path[512], want[600];

    (void)state;
    write_temp(path, "# x\n\ncolor = always\nhttp.timeout = abc\n");
    assert_int_equal(config_load_file(cfg, path, CONFIG_SRC_FILE, 1, &err), -1);
    snprintf(want, sizeof(want), "%s:4: http.timeout: \"abc\" is not a whole number", path);
    assert_string_equal(err.msg, want);
    write_temp(path, "# x\n\ncolor = always\n");
    assert_int_equal(config_load_file(cfg, path, CONFIG_SRC_FILE, 1, &err), 0);
    snprintf(want, sizeof(want), "%s:3", path);
    assert_string_equal(config_origin(cfg, "color"), want);
    config_free(cfg);
}

/* ---- types ------------------------------------------------------------- */

static void test_int(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(config_set(cfg, "http.timeout", "1", CONFIG_SRC_FLAG, "--timeout", &err), 0);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 1);
    assert_int_equal(config_set(cfg, "http.timeout", "3600", CONFIG_SRC_FLAG, "--timeout", &err), 0);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 3600);
    assert_int_equal(config_set(cfg, "http.timeout", "0010", CONFIG_SRC_FLAG, "--timeout", &err), 0);
    assert_string_equal(config_get(cfg, "http.timeout"), "10");
    assert_int_equal(config_set(cfg, "http.timeout", "3601", CONFIG_SRC_FLAG, "--timeout", &err), -1);
    assert_string_equal(err.msg, "--timeout: http.timeout: 3601 is out of range 1..3600");
    assert_int_equal(config_set(cfg, "site.max_bytes", "9223372036854775808", CONFIG_SRC_FLAG,
                                "--max", &err), -1);
    assert_string_equal(err.msg,
                        "--max: site.max_bytes: 9223372036854775808 is out of range 1024..1073741824");
    assert_int_equal(config_set(cfg, "site.max_bytes", "1073741824", CONFIG_SRC_FLAG, "--max", &err),
                     0);
    assert_int_equal(config_get_int(cfg, "site.max_bytes"), 1073741824);
    assert_int_equal(config_set(cfg, "http.connect_timeout", "1e3", CONFIG_SRC_FLAG, "--c", &err), -1);
    assert_string_equal(err.msg, "--c: http.connect_timeout: \"1e3\" is not a whole number");
    assert_int_equal(config_get_int(cfg, "http.connect_timeout"), 10);
    config_free(cfg);
}

static void test_bool(void **state)
{
    static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "1"};
    static const char *const no[] = {"false", "False", "no", "NO", "off", "0"};
    static const char *const bad[] = {"", "maybe", "2", "y", "truee", " true"};
    size_t i;
    int b;

    (void)state;
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        b = -1;
        assert_int_equal(config_parse_bool(yes[i], &b), 0);
        assert_int_equal(b, 1);
    }
    for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        b = -1;
        assert_int_equal(config_parse_bool(no[i], &b), 0);
        assert_int_equal(b, 0);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(config_parse_bool(bad[i], &b), -1);
}

static void test_enum(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(config_set(cfg, "color", "always", CONFIG_SRC_FLAG, "--color", &err), 0);
    assert_string_equal(config_get(cfg, "color"), "always");
    assert_int_equal(config_set(cfg, "color", "never", CONFIG_SRC_FLAG, "--color", &err), 0);
    assert_string_equal(config_get(cfg, "color"), "never");
    assert_int_equal(config_set(cfg, "color", "al", CONFIG_SRC_FLAG, "--color", &err), -1);
    assert_string_equal(err.msg, "--color: color: \"al\" is not one of auto, always, never");
    assert_string_equal(config_get(cfg, "color"), "never");
    config_free(cfg);
}

static void test_hostport(void **state)
{
    static const char *const good[] = {
        "puppet", "puppet.example.com:8140", "[::1]:8140", "[::1]", "10.0.0.1:443",
        "[fe80::1:2]:1", "a-b.example:65535",
    };
    static const struct {
        const char *value, *msg;
    } bad[] = {
        {"puppet:0", "--server: puppet.server: \"puppet:0\" has a port out of range 1..65535"},
        {"puppet:65536", "--server: puppet.server: \"puppet:65536\" has a port out of range 1..65535"},
        {"puppet:999999999999999999999",
         "--server: puppet.server: \"puppet:999999999999999999999\" has a port out of range 1..65535"},
        {"puppet:", "--server: puppet.server: \"puppet:\" has a port that is not a whole number"},
        {"puppet:http", "--server: puppet.server: \"puppet:http\" has a port that is not a whole number"},
        {"[::1]:-1", "--server: puppet.server: \"[::1]:-1\" has a port that is not a whole number"},
        {"::1", "--server: puppet.server: \"::1\" is not host or host:port "
                "(write IPv6 addresses as [addr]:port)"},
        {"[::1", "--server: puppet.server: \"[::1\" is not host or host:port"},
        {"[::1]8140", "--server: puppet.server: \"[::1]8140\" is not host or host:port"},
        {"[zz]:1", "--server: puppet.server: \"[zz]:1\" is not host or host:port"},
        {"-puppet", "--server: puppet.server: \"-puppet\" is not host or host:port"},
        {"pup pet", "--server: puppet.server: \"pup pet\" is not host or host:port"},
        {"https://puppet", "--server: puppet.server: \"https://puppet\" has a port that is not a "
                           "whole number"},
    };
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char longhost[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(config_set(cfg, "puppet.server", good[i], CONFIG_SRC_FLAG, "--server", &err), 0);
        assert_string_equal(config_get(cfg, "puppet.server"), good[i]);
        assert_string_equal(config_origin(cfg, "puppet.server"), "--server");
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(config_set(cfg, "puppet.server", bad[i].value, CONFIG_SRC_FLAG, "--server",
                                    &err), -1);
        assert_string_equal(err.msg, bad[i].msg);
    }
    memset(longhost, 'a', 256);
    strcpy(longhost + 256, ":8140");
    assert_int_equal(config_set(cfg, "puppet.server", longhost, CONFIG_SRC_FLAG, "--server", &err), -1);
    assert_non_null(strstr(err.msg, "has a host name longer than 255 bytes"));
    assert_string_equal(config_get(cfg, "puppet.server"), good[sizeof(good) / sizeof(good[0]) - 1]);
    config_free(cfg);
}

static void test_path(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char want[512];

    (void)state;
    assert_int_equal(config_set(cfg, "puppet.ssldir", "~/ssl", CONFIG_SRC_FLAG, "--ssldir", &err), 0);
    snprintf(want, sizeof(want), "%s/ssl", homedir);
    assert_string_equal(config_get(cfg, "puppet.ssldir"), want);
    assert_int_equal(config_set(cfg, "puppet.ssldir", "~bob/ssl", CONFIG_SRC_FLAG, "--ssldir", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.ssldir"), "~bob/ssl");
    assert_int_equal(config_set(cfg, "puppet.ssldir", "", CONFIG_SRC_FLAG, "--ssldir", &err), -1);
    assert_string_equal(err.msg, "--ssldir: puppet.ssldir: value is empty");
    assert_int_equal(config_set(cfg, "puppet.ssldir", "/a\nb", CONFIG_SRC_FLAG, "--ssldir", &err), -1);
    assert_string_equal(err.msg, "--ssldir: puppet.ssldir: \"/a\\x0ab\" contains a control character");
    assert_null(strchr(err.msg, '\n'));
    config_free(cfg);
}

static void test_certname_and_environment(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(config_set(cfg, "puppet.certname", "web-01.example_x.com", CONFIG_SRC_FLAG,
                                "--certname", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.certname"), "web-01.example_x.com");
    assert_int_equal(config_set(cfg, "puppet.environment", "feature_42", CONFIG_SRC_FLAG, "--env",
                                &err), 0);
    assert_string_equal(config_get(cfg, "puppet.environment"), "feature_42");
    assert_int_equal(config_set(cfg, "puppet.environment", "Prod", CONFIG_SRC_FLAG, "--env", &err), -1);
    assert_int_equal(config_set(cfg, "puppet.srv_domain", "example.com", CONFIG_SRC_FLAG, "--d", &err),
                     0);
    assert_string_equal(config_get(cfg, "puppet.srv_domain"), "example.com");
    config_free(cfg);
}

static void test_bus_and_security_values(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIRD);
    struct choir_error err;

    (void)state;
    assert_string_equal(config_get(cfg, "bus.brokers"), "puppet:5671");
    assert_int_equal(config_get_bool(cfg, "bus.tls"), 1);
    assert_string_equal(config_get(cfg, "security.allow"), "\\.mcollective$");
    assert_int_equal(config_set(cfg, "bus.brokers", "mq1:5671, mq2:5671,[::1]:5671", CONFIG_SRC_FLAG,
                                "--b", &err), 0);
    assert_int_equal(config_set(cfg, "bus.brokers", "mq1:5671,mq2:99999", CONFIG_SRC_FLAG, "--b", &err),
                     -1);
    assert_non_null(strstr(err.msg, "--b: bus.brokers: \"mq2:99999\""));
    assert_int_equal(config_set(cfg, "bus.brokers", ",,", CONFIG_SRC_FLAG, "--b", &err), -1);
    assert_non_null(strstr(err.msg, "must list 1 to 16 brokers"));
    assert_int_equal(config_set(cfg, "bus.collective", "Prod-1", CONFIG_SRC_FLAG, "--c", &err), -1);
    assert_non_null(strstr(err.msg, "is not a collective name"));
    assert_int_equal(config_set(cfg, "security.allow", "(unclosed", CONFIG_SRC_FLAG, "--a", &err), -1);
    assert_non_null(strstr(err.msg, "not a POSIX extended regular expression"));
    assert_int_equal(config_set(cfg, "security.allow", "^ops-[a-z]+\\.mcollective$", CONFIG_SRC_FLAG,
                                "--a", &err), 0);
    assert_int_equal(config_set(cfg, "security.allow", ":puppe+++++++++++t.l", CONFIG_SRC_FLAG, "--a",
                                &err), -1);
    assert_non_null(strstr(err.msg, "at most 256 bytes and 8 repetition operators"));
    assert_int_equal(config_set(cfg, "log", "journal", CONFIG_SRC_FLAG, "--log", &err), -1);
    config_free(cfg);
}

static void test_set_unknown_key(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    assert_int_equal(config_set(cfg, "puppet.sever", "x", CONFIG_SRC_FLAG, "--server", &err), -1);
    assert_string_equal(err.msg, "--server: unknown key \"puppet.sever\" (did you mean \"puppet.server\"?)");
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    config_free(cfg);
}

static void test_get_undeclared_aborts(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    int status = 0;
    pid_t pid;

    (void)state;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);

        dup2(fd, 2);
        (void)config_get(cfg, "no.such.key");
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    config_free(cfg);
}

/* ---- layering ---------------------------------------------------------- */

static void test_layering(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err = {0};
    char sys[512], user[512], file[512], want[600];

    (void)state;
    write_temp(sys, "puppet.server = sys:8140\nhttp.timeout = 11\nhttp.connect_timeout = 12\n"
                    "site.max_bytes = 2048\ncolor = always\npuppet.environment = sysenv\n");
    write_user_file(user, xdgdir, "http.timeout = 21\nhttp.connect_timeout = 22\n"
                                  "site.max_bytes = 4096\npuppet.environment = userenv\n");
    write_temp(file, "http.connect_timeout = 32\nsite.max_bytes = 8192\npuppet.environment = fileenv\n");
    setenv("CHOIR_SYSTEM_CONFIG", sys, 1);
    setenv("CHOIR_SITE_MAX_BYTES", "16384", 1);
    setenv("CHOIR_PUPPET_ENVIRONMENT", "envenv", 1);
    setenv("CHOIR_NOT_A_KEY", "whatever", 1);   /* unknown CHOIR_ variables are ignored */
    /* a flag set first still wins over everything loaded later */
    assert_int_equal(config_set(cfg, "puppet.environment", "flagenv", CONFIG_SRC_FLAG,
                                "--environment", &err), 0);
    assert_int_equal(config_load_standard(cfg, file, &err), 0);
    unsetenv("CHOIR_NOT_A_KEY");

    snprintf(want, sizeof(want), "%s:1", sys);
    assert_string_equal(config_get(cfg, "puppet.server"), "sys:8140");
    assert_string_equal(config_origin(cfg, "puppet.server"), want);
    snprintf(want, sizeof(want), "%s:5", sys);
    assert_string_equal(config_get(cfg, "color"), "always");
    assert_string_equal(config_origin(cfg, "color"), want);
    snprintf(want, sizeof(want), "%s:1", user);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 21);
    assert_string_equal(config_origin(cfg, "http.timeout"), want);
    snprintf(want, sizeof(want), "%s:1", file);
    assert_int_equal(config_get_int(cfg, "http.connect_timeout"), 32);
    assert_string_equal(config_origin(cfg, "http.connect_timeout"), want);
    assert_int_equal(config_get_int(cfg, "site.max_bytes"), 16384);
    assert_string_equal(config_origin(cfg, "site.max_bytes"), "environment CHOIR_SITE_MAX_BYTES");
    assert_string_equal(config_get(cfg, "puppet.environment"), "flagenv");
    assert_string_equal(config_origin(cfg, "puppet.environment"), "--environment");
    assert_null(config_get(cfg, "puppet.srv_domain"));
    assert_string_equal(config_origin(cfg, "puppet.srv_domain"), "default");
    /* a later flag replaces an earlier one */
    assert_int_equal(config_set(cfg, "puppet.environment", "flag2", CONFIG_SRC_FLAG, "-E", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.environment"), "flag2");
    assert_string_equal(config_origin(cfg, "puppet.environment"), "-E");
    config_free(cfg);
}

static void test_choir_config_env(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char good[512], broken[512], want[600];

    (void)state;
    write_temp(good, "color = never\n");
    write_temp(broken, "this is not a config\n");
    setenv("CHOIR_CONFIG", good, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    assert_string_equal(config_get(cfg, "color"), "never");
    /* --config wins: $CHOIR_CONFIG is then not even read */
    setenv("CHOIR_CONFIG", broken, 1);
    assert_int_equal(config_load_standard(cfg, good, &err), 0);
    assert_int_equal(config_load_standard(cfg, NULL, &err), -1);
    snprintf(want, sizeof(want), "%s:1: expected \"key = value\"", broken);
    assert_string_equal(err.msg, want);
    /* both must exist */
    snprintf(broken, sizeof(broken), "%s/missing.conf", tmpdir);
    setenv("CHOIR_CONFIG", broken, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), -1);
    snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", broken);
    assert_string_equal(err.msg, want);
    unsetenv("CHOIR_CONFIG");
    assert_int_equal(config_load_standard(cfg, broken, &err), -1);
    assert_string_equal(err.msg, want);
    config_free(cfg);
}

static void test_user_file_locations(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char dir[512], path[512], want[600];

    (void)state;
    /* without XDG_CONFIG_HOME (or with a relative one): ~/.config */
    snprintf(dir, sizeof(dir), "%s/.config", homedir);
    mkdir(dir, 0700);
    write_user_file(path, dir, "http.timeout = 42\n");
    setenv("XDG_CONFIG_HOME", "relative/dir", 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    snprintf(want, sizeof(want), "%s:1", path);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 42);
    assert_string_equal(config_origin(cfg, "http.timeout"), want);
    config_free(cfg);
    /* a missing user file is fine */
    cfg = config_new(CONFIG_CHOIR);
    setenv("XDG_CONFIG_HOME", xdgdir, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    assert_int_equal(config_get_int(cfg, "http.timeout"), 60);
    /* a bad one is reported */
    write_user_file(path, xdgdir, "http.timeout = soon\n");
    assert_int_equal(config_load_standard(cfg, NULL, &err), -1);
    snprintf(want, sizeof(want), "%s:1: http.timeout: \"soon\" is not a whole number", path);
    assert_string_equal(err.msg, want);
    config_free(cfg);
}

static void test_system_file(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;
    char path[512];

    (void)state;
    /* CHOIR_SYSTEM_CONFIG="" means no system file; a missing one is fine */
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    snprintf(path, sizeof(path), "%s/absent.conf", tmpdir);
    setenv("CHOIR_SYSTEM_CONFIG", path, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    assert_string_equal(config_origin(cfg, "color"), "default");
    write_temp(path, "color = never\n");
    setenv("CHOIR_SYSTEM_CONFIG", path, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    assert_string_equal(config_get(cfg, "color"), "never");
    config_free(cfg);
}

static void test_choird(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIRD);
    struct choir_error err;
    char sys[512], user[512];

    (void)state;
    /* choir-only keys are accepted (and checked) in choird's files */
    write_temp(sys, "http.timeout = 30\ncolor = never\npuppet.server = puppet.example.com\n");
    write_user_file(user, xdgdir, "puppet.environment = userenv\n");
    setenv("CHOIR_SYSTEM_CONFIG", sys, 1);
    setenv("CHOIR_COLOR", "always", 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), 0);
    assert_string_equal(config_get(cfg, "puppet.server"), "puppet.example.com");
    assert_string_equal(config_get(cfg, "color"), "always");
    /* choird has no user file */
    assert_string_equal(config_get(cfg, "puppet.environment"), "production");
    config_free(cfg);

    cfg = config_new(CONFIG_CHOIRD);
    write_temp(sys, "http.timeout = 0\n");
    setenv("CHOIR_SYSTEM_CONFIG", sys, 1);
    assert_int_equal(config_load_standard(cfg, NULL, &err), -1);
    assert_non_null(strstr(err.msg, ":1: http.timeout: 0 is out of range 1..3600"));
    config_free(cfg);
}

static void test_env(void **state)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    (void)state;
    setenv("CHOIR_PUPPET_SERVER", "[::1]:8140", 1);
    setenv("CHOIR_HTTP_CONNECT_TIMEOUT", "", 1);   /* empty = not set */
    assert_int_equal(config_load_env(cfg, &err), 0);
    assert_string_equal(config_get(cfg, "puppet.server"), "[::1]:8140");
    assert_string_equal(config_origin(cfg, "puppet.server"), "environment CHOIR_PUPPET_SERVER");
    assert_string_equal(config_origin(cfg, "http.connect_timeout"), "default");
    /* env beats files loaded afterwards, flags beat env */
    assert_int_equal(load(cfg, "puppet.server = other\n", &err), 0);
    assert_string_equal(config_get(cfg, "puppet.server"), "[::1]:8140");
    assert_int_equal(config_set(cfg, "puppet.server", "flag", CONFIG_SRC_FLAG, "--server", &err), 0);
    assert_string_equal(config_origin(cfg, "puppet.server"), "--server");
    /* a bad variable changes nothing */
    setenv("CHOIR_PUPPET_ENVIRONMENT", "qa", 1);
    setenv("CHOIR_HTTP_TIMEOUT", "abc", 1);
    assert_int_equal(config_load_env(cfg, &err), -1);
    assert_string_equal(err.msg, "environment CHOIR_HTTP_TIMEOUT: http.timeout: \"abc\" is not a whole number");
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_string_equal(config_get(cfg, "puppet.environment"), "production");
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_key_table),
        T(test_defaults),
        T(test_computed_defaults),
        T(test_parse_format),
        T(test_hash_is_part_of_value),
        T(test_error_messages),
        T(test_duplicate_key),
        T(test_bad_file_changes_nothing),
        T(test_line_too_long),
        T(test_file_too_large),
        T(test_nul_byte),
        T(test_invalid_utf8),
        T(test_missing_file),
        T(test_file_origin),
        T(test_int),
        T(test_bool),
        T(test_enum),
        T(test_hostport),
        T(test_path),
        T(test_certname_and_environment),
        T(test_bus_and_security_values),
        T(test_set_unknown_key),
        T(test_get_undeclared_aborts),
        T(test_layering),
        T(test_choir_config_env),
        T(test_user_file_locations),
        T(test_system_file),
        T(test_choird),
        T(test_env),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
