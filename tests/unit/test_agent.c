/* test_agent.c - the node side of the `puppet` agent over temporary
 * directories: path discovery and layout, status in every combination of
 * lock, pid and summary files, disable/enable round trips with their
 * statuscodes and Puppet-identical lock bytes, and the input validators. */
#include "cmocka_setup.h"
#include "test_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/puppet_paths.h"
#include "agent/puppet_state.h"
#include "agent/validate.h"
#include "core/error.h"
#include "core/file.h"

#ifndef CHOIR_SOURCE_DIR
#error "the build defines CHOIR_SOURCE_DIR"
#endif

#define MCO_SUMMARY CHOIR_SOURCE_DIR "/tests/data/last_run_summary.mcollective-puppet-agent-fixture.yaml"
#define FOREMAN_SUMMARY CHOIR_SOURCE_DIR "/tests/data/last_run_summary.theforeman-puppet-6.9.0-fixture.yaml"
#define MCO_LASTRUN 1347903297LL
#define FOREMAN_LASTRUN 1571832278LL

/* ---- fixture: a private Puppet layout in a temporary directory ----------- */

struct fx {
    char root[256];
    char vardir[300], rundir[300], statedir[300], publicdir[300];
    struct puppet_paths p;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
    char *buf = NULL;
    size_t len;

    assert_int_equal(file_read(path, 1 << 20, &buf, &len), 0);
    return buf;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    struct choir_error err;

    snprintf(f->root, sizeof(f->root), "%s/choir-agent.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->vardir, sizeof(f->vardir), "%s/var", f->root);
    snprintf(f->rundir, sizeof(f->rundir), "%s/run", f->root);
    snprintf(f->statedir, sizeof(f->statedir), "%s/var/state", f->root);
    snprintf(f->publicdir, sizeof(f->publicdir), "%s/var/public", f->root);
    puppet_paths_init(&f->p);
    if (puppet_paths_from_dir(&f->p, f->vardir, f->rundir, NULL, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

/* Creates vardir/state, vardir/public and rundir. */
static void fx_mkdirs(struct fx *f)
{
    assert_int_equal(mkdir(f->vardir, 0755), 0);
    assert_int_equal(mkdir(f->statedir, 01755), 0);
    assert_int_equal(mkdir(f->publicdir, 0755), 0);
    assert_int_equal(mkdir(f->rundir, 0755), 0);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    puppet_paths_done(&f->p);
    remove_tree(f->root);
    free(f);
    return 0;
}

/* A pid that existed a moment ago and now does not. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();

    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return pid;
}

static void write_pid(const char *path, pid_t pid, const char *suffix)
{
    char text[64];

    snprintf(text, sizeof(text), "%ld%s", (long)pid, suffix);
    write_file(path, text);
}

/* Status at a fixed time. */
static void status_at(struct fx *f, time_t now, struct puppet_state_info *info)
{
    puppet_state_status(&f->p, now, info);
}

/* ---- paths --------------------------------------------------------------- */

static void test_paths_from_dir_is_puppets_layout(void **state)
{
    struct fx *f = *state;
    struct puppet_paths p;
    struct choir_error err;
    char want[512];

    snprintf(want, sizeof(want), "%s/var/public/last_run_summary.yaml", f->root);
    assert_string_equal(f->p.lastrunfile, want);
    snprintf(want, sizeof(want), "%s/var/state/last_run_report.yaml", f->root);
    assert_string_equal(f->p.lastrunreport, want);
    snprintf(want, sizeof(want), "%s/var/state/agent_catalog_run.lock", f->root);
    assert_string_equal(f->p.agent_catalog_run_lockfile, want);
    snprintf(want, sizeof(want), "%s/var/state/agent_disabled.lock", f->root);
    assert_string_equal(f->p.agent_disabled_lockfile, want);
    snprintf(want, sizeof(want), "%s/run/agent.pid", f->root);
    assert_string_equal(f->p.pidfile, want);
    assert_true(puppet_paths_complete(&f->p));

    puppet_paths_init(&p);
    assert_false(puppet_paths_complete(&p));
    assert_int_equal(puppet_paths_from_dir(&p, "/v/", "/r", "/pub", &err), 0);
    assert_string_equal(p.lastrunfile, "/pub/last_run_summary.yaml");
    assert_string_equal(p.agent_disabled_lockfile, "/v/state/agent_disabled.lock");
    assert_int_equal(puppet_paths_from_dir(&p, "relative", "/r", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "not an absolute path"));
    assert_string_equal(p.pidfile, "/r/agent.pid");  /* unchanged by the failure */
    puppet_paths_done(&p);
}

static void test_paths_set_overrides_one_setting(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    size_t i;

    assert_int_equal(puppet_paths_set(&f->p, "pidfile", "/custom/puppet.pid", &err), 0);
    assert_string_equal(f->p.pidfile, "/custom/puppet.pid");
    assert_int_equal(puppet_paths_set(&f->p, "vardir", "/x", &err), -1);
    assert_non_null(strstr(err.msg, "unknown Puppet path setting 'vardir'"));
    assert_int_equal(puppet_paths_set(&f->p, "lastrunfile", "summary.yaml", &err), -1);
    assert_int_equal(puppet_paths_set(&f->p, "lastrunfile", "/a\nb", &err), -1);
    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        assert_non_null(puppet_paths_get(&f->p, i));
    assert_string_equal(puppet_paths_name(3), "agent_disabled_lockfile");
    assert_null(puppet_paths_name(PUPPET_PATHS_COUNT));
}

/* What Debian's puppet 7.23 prints (sorted, no matter the order asked). */
static const char config_print_output[] =
    "agent_catalog_run_lockfile = /var/cache/puppet/state/agent_catalog_run.lock\n"
    "agent_disabled_lockfile = /var/cache/puppet/state/agent_disabled.lock\n"
    "lastrunfile = /var/cache/puppet/public/last_run_summary.yaml\n"
    "lastrunreport = /var/cache/puppet/state/last_run_report.yaml\n"
    "pidfile = /run/puppet/agent.pid\n";

static void test_paths_parse_puppet_output(void **state)
{
    struct puppet_paths p;
    struct choir_error err;

    (void)state;
    puppet_paths_init(&p);
    assert_int_equal(puppet_paths_parse(&p, config_print_output, strlen(config_print_output), &err), 0);
    assert_string_equal(p.lastrunfile, "/var/cache/puppet/public/last_run_summary.yaml");
    assert_string_equal(p.pidfile, "/run/puppet/agent.pid");
    assert_string_equal(p.agent_catalog_run_lockfile, "/var/cache/puppet/state/agent_catalog_run.lock");
    puppet_paths_done(&p);
}

static void test_paths_parse_tolerates_noise_and_crlf(void **state)
{
    static const char out[] =
        "Warning: something about facter\r\n"
        "agent_catalog_run_lockfile = /s/a b.lock\r\n"
        "agent_disabled_lockfile = /s/d.lock\r\n"
        "unrelated = /x\r\n"
        "lastrunfile = /p/s = x.yaml\r\n"
        "lastrunreport = /s/r.yaml\r\n"
        "pidfile = /r/agent.pid";  /* no final newline */
    struct puppet_paths p;
    struct choir_error err;

    (void)state;
    puppet_paths_init(&p);
    assert_int_equal(puppet_paths_parse(&p, out, strlen(out), &err), 0);
    assert_string_equal(p.agent_catalog_run_lockfile, "/s/a b.lock");
    assert_string_equal(p.lastrunfile, "/p/s = x.yaml");
    assert_string_equal(p.pidfile, "/r/agent.pid");
    puppet_paths_done(&p);
}

static void test_paths_parse_rejects_incomplete_output(void **state)
{
    struct puppet_paths p;
    struct choir_error err;
    static const char missing[] = "lastrunfile = /a\nlastrunreport = /b\n";
    static const char empty_value[] =
        "agent_catalog_run_lockfile = /a\nagent_disabled_lockfile = \nlastrunfile = /c\n"
        "lastrunreport = /d\npidfile = /e\n";
    static const char relative[] =
        "agent_catalog_run_lockfile = a\nagent_disabled_lockfile = /b\nlastrunfile = /c\n"
        "lastrunreport = /d\npidfile = /e\n";

    (void)state;
    puppet_paths_init(&p);
    assert_int_equal(puppet_paths_parse(&p, missing, strlen(missing), &err), -1);
    assert_non_null(strstr(err.msg, "did not report agent_catalog_run_lockfile"));
    assert_int_equal(puppet_paths_parse(&p, empty_value, strlen(empty_value), &err), -1);
    assert_non_null(strstr(err.msg, "agent_disabled_lockfile: no value"));
    assert_int_equal(puppet_paths_parse(&p, relative, strlen(relative), &err), -1);
    assert_non_null(strstr(err.msg, "not an absolute path"));
    assert_int_equal(puppet_paths_parse(&p, "", 0, &err), -1);
    assert_int_equal(puppet_paths_parse(&p, "a\0b", 3, &err), -1);
    assert_null(p.lastrunfile);  /* failures leave the struct alone */
    puppet_paths_done(&p);
}

/* A stand-in `puppet` program: a shell script with the given body. */
static void fake_puppet(struct fx *f, const char *body, char *path, size_t n)
{
    char text[2048];

    snprintf(path, n, "%s/fake-puppet", f->root);
    snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
    write_file(path, text);
    assert_int_equal(chmod(path, 0755), 0);
}

static void test_discover_runs_the_program_with_its_arguments(void **state)
{
    struct fx *f = *state;
    const char *extra[] = {"--confdir", "/c d", NULL};
    char prog[512], body[1024];
    struct puppet_paths p;
    struct choir_error err;

    /* Echo the arguments into the summary path so the test sees them. */
    snprintf(body, sizeof(body),
             "[ \"$1 $2 $8 $9\" = 'config print --section agent' ] || exit 3\n"
             "[ \"$3 $7\" = 'lastrunfile pidfile' ] || exit 4\n"
             "[ \"${10}\" = '--confdir' ] && [ \"${11}\" = '/c d' ] || exit 5\n"
             "printf '%%s' '%s'", config_print_output);
    fake_puppet(f, body, prog, sizeof(prog));
    puppet_paths_init(&p);
    assert_int_equal(puppet_paths_discover_cmd(&p, prog, extra, 5000, &err), 0);
    assert_string_equal(p.agent_disabled_lockfile, "/var/cache/puppet/state/agent_disabled.lock");
    puppet_paths_done(&p);
}

static void test_discover_reports_failures(void **state)
{
    struct fx *f = *state;
    char prog[512];
    struct puppet_paths p;
    struct choir_error err;

    puppet_paths_init(&p);
    fake_puppet(f, "echo 'Error: Could not parse options' >&2; exit 1", prog, sizeof(prog));
    assert_int_equal(puppet_paths_discover_cmd(&p, prog, NULL, 5000, &err), -1);
    assert_non_null(strstr(err.msg, "exited with status 1: Error: Could not parse options"));

    fake_puppet(f, "exec sleep 10", prog, sizeof(prog));
    assert_int_equal(puppet_paths_discover_cmd(&p, prog, NULL, 200, &err), -1);
    assert_non_null(strstr(err.msg, "did not finish within 200 ms"));

    fake_puppet(f, "while :; do echo 'lastrunfile = /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'; done",
                prog, sizeof(prog));
    assert_int_equal(puppet_paths_discover_cmd(&p, prog, NULL, 5000, &err), -1);
    assert_non_null(strstr(err.msg, "wrote more than"));

    fake_puppet(f, "echo 'lastrunfile = /x'", prog, sizeof(prog));
    assert_int_equal(puppet_paths_discover_cmd(&p, prog, NULL, 5000, &err), -1);
    assert_non_null(strstr(err.msg, "config print: did not report"));

    assert_int_equal(puppet_paths_discover_cmd(&p, "/nonexistent/puppet", NULL, 5000, &err), -1);
    assert_non_null(strstr(err.msg, "cannot run /nonexistent/puppet: No such file or directory"));
    assert_null(p.pidfile);
    puppet_paths_done(&p);
}

static void test_discover_honours_the_environment(void **state)
{
    struct fx *f = *state;
    char prog[512], body[1024];
    struct puppet_paths p;
    struct choir_error err;

    snprintf(body, sizeof(body),
             "[ \"${10} ${11} ${12}\" = '--vardir /v --rundir' ] || exit 9\n"
             "printf '%%s' '%s'", config_print_output);
    fake_puppet(f, body, prog, sizeof(prog));
    setenv("CHOIR_PUPPET", prog, 1);
    setenv("CHOIR_PUPPET_ARGS", "  --vardir /v\t--rundir /r ", 1);
    puppet_paths_init(&p);
    assert_int_equal(puppet_paths_discover(&p, &err), 0);
    assert_string_equal(p.lastrunreport, "/var/cache/puppet/state/last_run_report.yaml");
    puppet_paths_done(&p);
    unsetenv("CHOIR_PUPPET");
    unsetenv("CHOIR_PUPPET_ARGS");
}

/* ---- lastrun and durations ----------------------------------------------- */

static void test_lastrun_from_real_summaries(void **state)
{
    (void)state;
    assert_int_equal(puppet_state_lastrun(MCO_SUMMARY), MCO_LASTRUN);
    assert_int_equal(puppet_state_lastrun(FOREMAN_SUMMARY), FOREMAN_LASTRUN);
    assert_int_equal(puppet_state_lastrun("/nonexistent/summary.yaml"), 0);
    assert_int_equal(puppet_state_lastrun(NULL), 0);
}

static void test_lastrun_reader_edge_cases(void **state)
{
    static const struct { const char *text; long long want; } cases[] = {
        {"---\ntime:\n  total: 1.5\n  last_run: 42\n", 42},
        {"time:\r\n  last_run: 43\r\n", 43},
        {"time: # comment\n  last_run: '44' # quoted\n", 44},
        {"time:\n  last_run: \"45\"\n", 45},
        /* only time's own last_run counts */
        {"other:\n  last_run: 1\ntime:\n  total: 2\n", 0},
        {"time:\n  nested:\n    last_run: 7\n  last_run: 8\n", 8},
        {"time:\n  total: 2\nevents:\n  last_run: 9\n", 0},
        {"resources:\n  time:\n    last_run: 10\n", 0},
        /* not an integer: Ruby's Integer() refuses, so do we */
        {"time:\n  last_run: 1347903297.5\n", 0},
        {"time:\n  last_run: -5\n", 0},
        {"time:\n  last_run:\n", 0},
        {"time:\n  last_run: 99999999999999999999999\n", 0},
        {"time:\n  last_runs: 11\n", 0},
        {"timer:\n  last_run: 12\n", 0},
        {"", 0},
        {"---\n...\n", 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = puppet_state_lastrun_text(cases[i].text, strlen(cases[i].text));

        if (got != cases[i].want)
            fail_msg("case %zu: got %lld, want %lld", i, got, cases[i].want);
    }
}

static void test_duration_words(void **state)
{
    static const struct { long long s; const char *want; } cases[] = {
        {-3, "0 seconds"}, {0, "0 seconds"}, {1, "1 second"}, {62, "1 minute 2 seconds"},
        {120, "2 minutes"}, {3600, "1 hour"}, {3602, "1 hour 2 seconds"},
        {90061, "1 day 1 hour 1 minute 1 second"}, {2 * 86400 + 7200, "2 days 2 hours"},
    };
    char buf[96];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        puppet_state_duration(cases[i].s, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].want);
    }
    puppet_state_duration(90061, buf, 8);  /* truncation never overflows */
    assert_true(strlen(buf) < 8);
}

/* ---- status ---------------------------------------------------------------- */

static void test_status_of_a_fresh_node(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;

    status_at(f, 1000, &info);
    assert_true(info.enabled);
    assert_false(info.applying);
    assert_false(info.daemon_present);
    assert_false(info.idling);
    assert_int_equal(info.lastrun, 0);
    assert_int_equal(info.since_lastrun, 1000);
    assert_int_equal(info.status, PUPPET_STATE_STOPPED);
    assert_string_equal(info.disable_message, "");
    assert_string_equal(info.message, "Currently stopped; no completed run recorded");
    puppet_state_info_done(&info);
}

static void test_status_lastrun_and_message(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;
    struct choir_error err;

    assert_int_equal(puppet_paths_set(&f->p, "lastrunfile", MCO_SUMMARY, &err), 0);
    status_at(f, (time_t)(MCO_LASTRUN + 62), &info);
    assert_int_equal(info.lastrun, MCO_LASTRUN);
    assert_int_equal(info.since_lastrun, 62);
    assert_string_equal(info.message, "Currently stopped; last completed run 1 minute 2 seconds ago");
    puppet_state_info_done(&info);

    assert_int_equal(puppet_paths_set(&f->p, "lastrunfile", FOREMAN_SUMMARY, &err), 0);
    status_at(f, (time_t)(FOREMAN_LASTRUN + 86400 + 5), &info);
    assert_int_equal(info.lastrun, FOREMAN_LASTRUN);
    assert_int_equal(info.since_lastrun, 86405);
    assert_string_equal(info.message, "Currently stopped; last completed run 1 day 5 seconds ago");
    puppet_state_info_done(&info);
}

static void test_status_disabled_with_message(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;

    fx_mkdirs(f);
    /* The exact bytes Puppet 7.23 writes for `puppet agent --disable`. */
    write_file(f->p.agent_disabled_lockfile, "{\"disabled_message\":\"a \\\"quoted\\\" \\\\ msg \xc3\xa9\"}");
    status_at(f, 1000, &info);
    assert_false(info.enabled);
    assert_int_equal(info.status, PUPPET_STATE_DISABLED);
    assert_string_equal(info.disable_message, "a \"quoted\" \\ msg \xc3\xa9");
    assert_string_equal(info.message,
                        "Currently disabled: a \"quoted\" \\ msg \xc3\xa9; no completed run recorded");
    puppet_state_info_done(&info);
}

static void test_status_disabled_with_odd_lockfiles(void **state)
{
    static const char *const locks[] = {
        "",                                     /* Puppet 3 */
        "garbage",                              /* Puppet 7 warns "not in JSON" */
        "{}",                                   /* `disable` through Puppet's API without a message */
        "{\"disabled_message\": null}",
        "{\"disabled_message\": 42}",
        "[\"disabled_message\"]",
        "{\"disabled_message\":\"trunc",
    };
    struct fx *f = *state;
    struct puppet_state_info info;
    size_t i;

    fx_mkdirs(f);
    for (i = 0; i < sizeof(locks) / sizeof(locks[0]); i++) {
        write_file(f->p.agent_disabled_lockfile, locks[i]);
        status_at(f, 1000, &info);
        assert_false(info.enabled);
        assert_int_equal(info.status, PUPPET_STATE_DISABLED);
        assert_string_equal(info.disable_message, "");
        assert_string_equal(info.message,
                            "Currently disabled (no reason given); no completed run recorded");
        puppet_state_info_done(&info);
    }
}

static void test_status_long_lock_message_is_cut_on_a_character(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;
    char text[4096];
    size_t i, used;
    json_t *j;

    fx_mkdirs(f);
    used = (size_t)snprintf(text, sizeof(text), "{\"disabled_message\":\"");
    for (i = 0; i < 700; i++, used += 2)
        memcpy(text + used, "\xc3\xa9", 2);  /* 1400 bytes of "é" */
    snprintf(text + used, sizeof(text) - used, "\"}");
    write_file(f->p.agent_disabled_lockfile, text);
    status_at(f, 1000, &info);
    assert_int_equal(strlen(info.disable_message), PUPPET_STATE_SHOWN_MAX);
    j = json_string(info.disable_message);  /* still valid UTF-8 */
    assert_non_null(j);
    json_decref(j);
    puppet_state_info_done(&info);
}

static void test_status_applying_needs_a_live_pid(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;

    fx_mkdirs(f);
    write_pid(f->p.agent_catalog_run_lockfile, getpid(), "");
    status_at(f, 1000, &info);
    assert_true(info.applying);
    assert_true(info.enabled);
    assert_false(info.idling);
    assert_int_equal(info.status, PUPPET_STATE_APPLYING);
    assert_string_equal(info.message, "Currently applying a catalog; no completed run recorded");
    puppet_state_info_done(&info);

    write_pid(f->p.agent_catalog_run_lockfile, getpid(), "\n");
    status_at(f, 1000, &info);
    assert_true(info.applying);
    puppet_state_info_done(&info);

    write_pid(f->p.agent_catalog_run_lockfile, 1, "");  /* init: EPERM when not root, alive */
    status_at(f, 1000, &info);
    assert_true(info.applying);
    puppet_state_info_done(&info);
}

static void test_status_stale_or_bad_run_lock_is_not_applying(void **state)
{
    static const char *const bad[] = {"", "\n", "abc", "-1", "0", "12x", "1 2", "99999999999999999999"};
    struct fx *f = *state;
    struct puppet_state_info info;
    size_t i;

    fx_mkdirs(f);
    write_pid(f->p.agent_catalog_run_lockfile, dead_pid(), "");
    status_at(f, 1000, &info);
    assert_false(info.applying);
    assert_int_equal(info.status, PUPPET_STATE_STOPPED);
    puppet_state_info_done(&info);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(f->p.agent_catalog_run_lockfile, bad[i]);
        status_at(f, 1000, &info);
        if (info.applying)
            fail_msg("run lock \"%s\" counted as applying", bad[i]);
        puppet_state_info_done(&info);
    }
}

static void test_status_disabled_beats_applying(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;

    fx_mkdirs(f);
    write_pid(f->p.agent_catalog_run_lockfile, getpid(), "");
    write_file(f->p.agent_disabled_lockfile, "{\"disabled_message\":\"deploying app1\"}");
    status_at(f, 1000, &info);
    assert_true(info.applying);
    assert_false(info.enabled);
    assert_int_equal(info.status, PUPPET_STATE_DISABLED);
    assert_string_equal(info.message, "Currently disabled: deploying app1 (a catalog run is "
                                      "still applying); no completed run recorded");
    puppet_state_info_done(&info);
}

static void test_status_daemon_idling_and_applying(void **state)
{
    struct fx *f = *state;
    struct puppet_state_info info;

    fx_mkdirs(f);
    write_pid(f->p.pidfile, getpid(), "\n");
    status_at(f, 1000, &info);
    assert_true(info.daemon_present);
    assert_true(info.idling);
    assert_int_equal(info.status, PUPPET_STATE_IDLING);
    assert_string_equal(info.message, "Currently idling; no completed run recorded");
    puppet_state_info_done(&info);

    write_pid(f->p.agent_catalog_run_lockfile, getpid(), "");
    status_at(f, 1000, &info);
    assert_true(info.daemon_present);
    assert_false(info.idling);
    assert_int_equal(info.status, PUPPET_STATE_APPLYING);
    puppet_state_info_done(&info);

    unlink(f->p.agent_catalog_run_lockfile);
    write_pid(f->p.pidfile, dead_pid(), "\n");
    status_at(f, 1000, &info);
    assert_false(info.daemon_present);
    assert_false(info.idling);
    assert_int_equal(info.status, PUPPET_STATE_STOPPED);
    puppet_state_info_done(&info);
}

static void test_status_json_has_the_ddl_outputs(void **state)
{
    static const char *const keys[] = {"applying", "idling", "enabled", "daemon_present", "lastrun",
                                       "since_lastrun", "status", "disable_message", "message"};
    struct fx *f = *state;
    struct puppet_state_info info;
    json_t *j;
    size_t i;

    status_at(f, 1000, &info);
    j = puppet_state_info_json(&info);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 9);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(json_object_get(j, keys[i]));
    assert_true(json_is_boolean(json_object_get(j, "applying")));
    assert_true(json_is_integer(json_object_get(j, "lastrun")));
    assert_true(json_is_integer(json_object_get(j, "since_lastrun")));
    assert_string_equal(json_string_value(json_object_get(j, "status")), "stopped");
    json_decref(j);
    puppet_state_info_done(&info);
    assert_string_equal(puppet_state_status_name(PUPPET_STATE_APPLYING), "applying a catalog");
}

/* ---- disable and enable ---------------------------------------------------- */

static int file_mode(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

/* Entries of a directory, "." and ".." excluded. */
static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void test_disable_writes_puppets_bytes_and_creates_the_dir(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    char *text;
    mode_t old = umask(077);

    assert_int_equal(puppet_state_disable(&f->p, "deploying app1", &err), PUPPET_STATE_DONE);
    umask(old);
    text = read_text(f->p.agent_disabled_lockfile);
    assert_string_equal(text, "{\"disabled_message\":\"deploying app1\"}");
    free(text);
    assert_int_equal(file_mode(f->p.agent_disabled_lockfile), 0644);
    assert_int_equal(file_mode(f->statedir), 01755);
    assert_int_equal(file_mode(f->vardir), 0755);
    assert_int_equal(dir_entries(f->statedir), 1);  /* no temporary file left */

    assert_int_equal(puppet_state_disable(&f->p, "someone else", &err), PUPPET_STATE_ALREADY);
    text = read_text(f->p.agent_disabled_lockfile);
    assert_string_equal(text, "{\"disabled_message\":\"deploying app1\"}");
    free(text);
    assert_int_equal(dir_entries(f->statedir), 1);

    assert_int_equal(puppet_state_enable(&f->p, &err), PUPPET_STATE_DONE);
    assert_int_equal(access(f->p.agent_disabled_lockfile, F_OK), -1);
    assert_int_equal(puppet_state_enable(&f->p, &err), PUPPET_STATE_ALREADY);
}

static void test_disable_escapes_like_puppet(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    char *text;

    assert_int_equal(puppet_state_disable(&f->p, "a \"quoted\" \\ msg \xc3\xa9", &err), PUPPET_STATE_DONE);
    text = read_text(f->p.agent_disabled_lockfile);
    assert_string_equal(text, "{\"disabled_message\":\"a \\\"quoted\\\" \\\\ msg \xc3\xa9\"}");
    free(text);
}

static void test_disable_fails_cleanly(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    struct puppet_paths none;

    write_file(f->vardir, "a file where the vardir should be");
    assert_int_equal(puppet_state_disable(&f->p, "x", &err), -1);
    assert_non_null(strstr(err.msg, "cannot create directory"));
    assert_int_equal(puppet_state_enable(&f->p, &err), -1);
    assert_non_null(strstr(err.msg, "cannot remove"));
    puppet_paths_init(&none);
    assert_int_equal(puppet_state_disable(&none, "x", &err), -1);
    assert_int_equal(puppet_state_enable(&none, &err), -1);
    assert_non_null(strstr(err.msg, "not known"));
}

/* ---- the RPC face ------------------------------------------------------------ */

struct reply {
    int rc, code;
    char msg[512];
    json_t *data;
};

static void call(struct fx *f, const char *action, const char *json_in, struct reply *r)
{
    json_t *in = json_in ? json_loads(json_in, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
    struct puppet_agent agent = {&f->p, NULL, NULL, NULL};

    if (json_in)
        assert_non_null(in);
    r->code = -1;
    r->rc = agent_puppet_call(&agent, action, in, &r->data, &r->code, r->msg, sizeof(r->msg));
    assert_int_equal(r->rc, r->code);
    assert_non_null(r->data);
    json_decref(in);
}

static const char *reply_str(struct reply *r, const char *key)
{
    return json_string_value(json_object_get(r->data, key));
}

static void test_call_disable_enable_round_trip(void **state)
{
    struct fx *f = *state;
    struct reply r;

    call(f, "disable", "{\"message\": \"deploying app1\", \"process_results\": true}", &r);
    assert_int_equal(r.code, AGENT_OK);
    assert_string_equal(r.msg, "Successfully locked the Puppet agent: deploying app1");
    assert_string_equal(reply_str(&r, "status"), r.msg);
    assert_true(json_is_false(json_object_get(r.data, "enabled")));
    json_decref(r.data);

    call(f, "disable", "{\"message\": \"other\"}", &r);
    assert_int_equal(r.code, AGENT_ABORTED);
    assert_string_equal(r.msg, "Could not disable Puppet: already disabled: deploying app1");
    assert_true(json_is_false(json_object_get(r.data, "enabled")));
    json_decref(r.data);

    call(f, "status", "{}", &r);
    assert_int_equal(r.code, AGENT_OK);
    assert_string_equal(r.msg, "OK");
    assert_string_equal(reply_str(&r, "status"), "disabled");
    assert_string_equal(reply_str(&r, "disable_message"), "deploying app1");
    json_decref(r.data);

    call(f, "enable", NULL, &r);
    assert_int_equal(r.code, AGENT_OK);
    assert_string_equal(r.msg, "Successfully enabled the Puppet agent");
    assert_true(json_is_true(json_object_get(r.data, "enabled")));
    json_decref(r.data);

    call(f, "enable", "{}", &r);
    assert_int_equal(r.code, AGENT_ABORTED);
    assert_string_equal(r.msg, "Could not enable Puppet: already enabled");
    assert_string_equal(reply_str(&r, "status"), r.msg);
    assert_true(json_is_true(json_object_get(r.data, "enabled")));
    json_decref(r.data);
}

static void test_call_disable_without_message_uses_a_default(void **state)
{
    struct fx *f = *state;
    struct reply r;
    struct puppet_state_info info;

    call(f, "disable", "{\"message\": \"\"}", &r);
    assert_int_equal(r.code, AGENT_OK);
    json_decref(r.data);
    status_at(f, 1000, &info);
    assert_non_null(strstr(info.disable_message, "Disabled via choird at "));
    puppet_state_info_done(&info);
    call(f, "enable", NULL, &r);
    json_decref(r.data);
    call(f, "disable", NULL, &r);
    assert_int_equal(r.code, AGENT_OK);
    json_decref(r.data);
}

static void test_call_disable_rejects_bad_messages(void **state)
{
    static const char *const bad[] = {
        "{\"message\": \"rm -rf /; x\"}",
        "{\"message\": \"a `b`\"}",
        "{\"message\": \"$HOME\"}",
        "{\"message\": \"a | b\"}",
        "{\"message\": \"a && b\"}",
        "{\"message\": \"a > b\"}",
        "{\"message\": \"a < b\"}",
        "{\"message\": 42}",
        "{\"message\": true}",
        "{\"message\": \"a\\u0000b\"}",
    };
    struct fx *f = *state;
    struct reply r;
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(f, "disable", bad[i], &r);
        if (r.code != AGENT_INVALID_DATA)
            fail_msg("%s: statuscode %d (%s)", bad[i], r.code, r.msg);
        assert_non_null(strstr(r.msg, "Invalid data: input 'message' "));
        json_decref(r.data);
    }
    assert_int_equal(access(f->p.agent_disabled_lockfile, F_OK), -1);
}

static void test_call_disable_message_length(void **state)
{
    struct fx *f = *state;
    char json[1024], msg[512];
    struct reply r;
    size_t i;

    memset(msg, 'x', 121);
    msg[121] = '\0';
    snprintf(json, sizeof(json), "{\"message\": \"%s\"}", msg);
    call(f, "disable", json, &r);
    assert_int_equal(r.code, AGENT_INVALID_DATA);
    assert_string_equal(r.msg, "Invalid data: input 'message' is 121 characters long, "
                               "more than the 120 allowed");
    json_decref(r.data);

    msg[120] = '\0';
    snprintf(json, sizeof(json), "{\"message\": \"%s\"}", msg);
    call(f, "disable", json, &r);
    assert_int_equal(r.code, AGENT_OK);
    json_decref(r.data);
    call(f, "enable", NULL, &r);
    json_decref(r.data);

    for (i = 0; i < 120; i++)      /* 120 characters, 240 bytes */
        memcpy(msg + 2 * i, "\xc3\xa9", 2);
    msg[240] = '\0';
    snprintf(json, sizeof(json), "{\"message\": \"%s\"}", msg);
    call(f, "disable", json, &r);
    assert_int_equal(r.code, AGENT_OK);
    json_decref(r.data);
}

static void test_call_errors(void **state)
{
    struct fx *f = *state;
    struct reply r;

    call(f, "runonce_now", "{}", &r);
    assert_int_equal(r.code, AGENT_UNKNOWN_ACTION);
    assert_string_equal(r.msg, "Unknown action 'runonce_now' for agent puppet");
    assert_int_equal(json_object_size(r.data), 0);
    json_decref(r.data);

    call(f, NULL, "{}", &r);
    assert_int_equal(r.code, AGENT_UNKNOWN_ACTION);
    json_decref(r.data);

    call(f, "status", "[1, 2]", &r);
    assert_int_equal(r.code, AGENT_INVALID_DATA);
    assert_string_equal(r.msg, "Invalid data: the request data should be a JSON object");
    json_decref(r.data);

    write_file(f->vardir, "not a directory");
    call(f, "disable", "{\"message\": \"x\"}", &r);
    assert_int_equal(r.code, AGENT_ABORTED);
    assert_non_null(strstr(r.msg, "Could not disable Puppet: cannot create directory"));
    json_decref(r.data);
}

static void test_call_status_reports_everything(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    struct reply r;

    fx_mkdirs(f);
    assert_int_equal(puppet_paths_set(&f->p, "lastrunfile", MCO_SUMMARY, &err), 0);
    write_pid(f->p.pidfile, getpid(), "\n");
    call(f, "status", "{\"process_results\": true}", &r);
    assert_int_equal(r.code, AGENT_OK);
    assert_int_equal(json_object_size(r.data), 9);
    assert_true(json_is_true(json_object_get(r.data, "daemon_present")));
    assert_true(json_is_true(json_object_get(r.data, "idling")));
    assert_int_equal(json_integer_value(json_object_get(r.data, "lastrun")), MCO_LASTRUN);
    assert_true(json_integer_value(json_object_get(r.data, "since_lastrun")) >
                json_integer_value(json_object_get(r.data, "lastrun")) / 1000);
    assert_string_equal(reply_str(&r, "status"), "idling");
    assert_non_null(strstr(reply_str(&r, "message"), "Currently idling; last completed run "));
    json_decref(r.data);
}

/* ---- validators -------------------------------------------------------------- */

struct vcase {
    const char *value;
    int ok;
};

static void run_cases(const char *name, validate_fn *fn, const struct vcase *c, size_t n)
{
    char why[256];
    size_t i;

    for (i = 0; i < n; i++) {
        int got;

        why[0] = '\0';
        got = fn(c[i].value, why, sizeof(why)) == 0;
        if (got != c[i].ok)
            fail_msg("%s(\"%s\"): got %s, want %s", name, c[i].value, got ? "accept" : "reject",
                     c[i].ok ? "accept" : "reject");
        if (!got && !why[0])
            fail_msg("%s(\"%s\"): rejected without a reason", name, c[i].value);
    }
}

#define RUN_CASES(fn, cases) run_cases(#fn, fn, cases, sizeof(cases) / sizeof(cases[0]))

static void test_validate_shellsafe(void **state)
{
    static const struct vcase cases[] = {
        {"deploying app1", 1}, {"", 1}, {"a & b", 1}, {"it's \"fine\" (really)", 1},
        {"caf\xc3\xa9 #42 * ? ~ \\ ! = , . : /", 1},
        {"`id`", 0}, {"$HOME", 0}, {"a;b", 0}, {"a|b", 0}, {"a||b", 0}, {"a&&b", 0},
        {"a>b", 0}, {"a<b", 0}, {"2>&1", 0},
    };
    char why[128];

    (void)state;
    RUN_CASES(validate_shellsafe, cases);
    validate_shellsafe("x; y", why, sizeof(why));
    assert_string_equal(why, "should not contain the shell metacharacter ';'");
}

static void test_validate_puppet_variable(void **state)
{
    static const struct vcase cases[] = {
        {"production", 1}, {"a", 1}, {"Z", 1}, {"ab", 1}, {"a_b", 1}, {"_a", 1}, {"__", 1},
        {"1bad", 1},  /* only one-character names must be letters */
        {"12", 1}, {"A1", 1},
        {"1", 0}, {"_", 0}, {"", 0}, {"a-b", 0}, {"a b", 0}, {"a::b", 0}, {"a.b", 0},
        {"caf\xc3\xa9", 0}, {"a;b", 0},
    };

    (void)state;
    RUN_CASES(validate_puppet_variable, cases);
}

static void test_validate_tags(void **state)
{
    static const struct vcase cases[] = {
        {"a::b,c", 1}, {"one,two::three", 1}, {"apache", 1}, {"1bad", 1}, {"a::b::c", 1},
        {"x", 1}, {"Apache::Vhost", 1},
        {"1", 0}, {"a,1", 0}, {"a::1", 0}, {"a,", 0}, {",a", 0}, {"a,,b", 0}, {"a:::b", 0},
        {"a::", 0}, {"::a", 0}, {"a:b", 0}, {"a, b", 0}, {"", 0}, {"a;b", 0}, {"$x", 0},
        {"a-b", 0},
    };

    (void)state;
    RUN_CASES(validate_tags, cases);
}

static void test_validate_server(void **state)
{
    static const struct vcase cases[] = {
        {"h", 1}, {"h:8140", 1}, {"puppet.example.com", 1}, {"puppet.example.com:8140", 1},
        {"a-nother.box.com", 1}, {"3com.com", 1}, {"1.1.1.1", 1}, {"1.1.1.1:123", 1},
        {"255.255.255.255", 1}, {"h:1", 1}, {"h:65535", 1}, {"::1", 1},
        {"fe80::7a31:c1ff:fed6:92a2", 1}, {"[::1]:123", 1}, {"[::1]", 1},
        {"[2001:0db8:0000:0000:0000:ff00:0042:8329]:9999", 1},
        {"h:99999", 0}, {"h:65536", 0}, {"h:0", 0}, {"h:", 0}, {"h:a", 0}, {"h:-1", 0},
        {"h:+80", 0}, {"h;rm", 0}, {"h;rm:8140", 0}, {"", 0}, {"foo bar", 0}, {"1", 0},
        {"1000", 0}, {"1.2", 0}, {"300.1.1.1", 0}, {"200.200", 0}, {"a_box", 0},
        {"-h", 0}, {"h-", 0}, {"h..x", 0}, {"h.", 0}, {":8140", 0},
        {"gggg::7a31:c1ff:fed6:92a2", 0}, {"[::1]:a", 0}, {"[::1]x", 0}, {"[h]:1", 0},
        {"[::1", 0}, {"h:8140:1", 0}, {"$(id)", 0},
    };

    (void)state;
    RUN_CASES(validate_server, cases);
}

static void test_validate_boolean(void **state)
{
    json_t *t = json_true(), *f = json_false(), *s = json_string("true"), *i = json_integer(1);
    char why[64];

    (void)state;
    assert_int_equal(validate_boolean(t, why, sizeof(why)), 0);
    assert_int_equal(validate_boolean(f, why, sizeof(why)), 0);
    assert_int_equal(validate_boolean(s, why, sizeof(why)), -1);
    assert_string_equal(why, "should be true or false");
    assert_int_equal(validate_boolean(i, why, sizeof(why)), -1);
    assert_int_equal(validate_boolean(json_null(), why, sizeof(why)), -1);
    assert_int_equal(validate_boolean(NULL, why, sizeof(why)), -1);
    json_decref(s);
    json_decref(i);
}

static void test_validate_length(void **state)
{
    char s[512], why[128];

    (void)state;
    memset(s, 'x', 121);
    s[121] = '\0';
    assert_int_equal(validate_length(s, 120, why, sizeof(why)), -1);
    assert_string_equal(why, "is 121 characters long, more than the 120 allowed");
    s[120] = '\0';
    assert_int_equal(validate_length(s, 120, why, sizeof(why)), 0);
    assert_int_equal(validate_length("", 0, why, sizeof(why)), 0);
    assert_int_equal(validate_length("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 3, why, sizeof(why)), 0);
    assert_int_equal(validate_length("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 2, why, sizeof(why)), -1);
    assert_int_equal(validate_length("\xff", 10, why, sizeof(why)), -1);
    assert_string_equal(why, "is not valid UTF-8");
    assert_int_equal(validate_length("\xc3", 10, why, sizeof(why)), -1);
    assert_int_equal(validate_length("\xc0\xaf", 10, why, sizeof(why)), -1);      /* overlong */
    assert_int_equal(validate_length("\xed\xa0\x80", 10, why, sizeof(why)), -1);  /* surrogate */
    assert_int_equal(validate_length("\xf4\x90\x80\x80", 10, why, sizeof(why)), -1);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_paths_from_dir_is_puppets_layout),
        FX(test_paths_set_overrides_one_setting),
        cmocka_unit_test(test_paths_parse_puppet_output),
        cmocka_unit_test(test_paths_parse_tolerates_noise_and_crlf),
        cmocka_unit_test(test_paths_parse_rejects_incomplete_output),
        FX(test_discover_runs_the_program_with_its_arguments),
        FX(test_discover_reports_failures),
        FX(test_discover_honours_the_environment),
        cmocka_unit_test(test_lastrun_from_real_summaries),
        cmocka_unit_test(test_lastrun_reader_edge_cases),
        cmocka_unit_test(test_duration_words),
        FX(test_status_of_a_fresh_node),
        FX(test_status_lastrun_and_message),
        FX(test_status_disabled_with_message),
        FX(test_status_disabled_with_odd_lockfiles),
        FX(test_status_long_lock_message_is_cut_on_a_character),
        FX(test_status_applying_needs_a_live_pid),
        FX(test_status_stale_or_bad_run_lock_is_not_applying),
        FX(test_status_disabled_beats_applying),
        FX(test_status_daemon_idling_and_applying),
        FX(test_status_json_has_the_ddl_outputs),
        FX(test_disable_writes_puppets_bytes_and_creates_the_dir),
        FX(test_disable_escapes_like_puppet),
        FX(test_disable_fails_cleanly),
        FX(test_call_disable_enable_round_trip),
        FX(test_call_disable_without_message_uses_a_default),
        FX(test_call_disable_rejects_bad_messages),
        FX(test_call_disable_message_length),
        FX(test_call_errors),
        FX(test_call_status_reports_everything),
        cmocka_unit_test(test_validate_shellsafe),
        cmocka_unit_test(test_validate_puppet_variable),
        cmocka_unit_test(test_validate_tags),
        cmocka_unit_test(test_validate_server),
        cmocka_unit_test(test_validate_boolean),
        cmocka_unit_test(test_validate_length),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
