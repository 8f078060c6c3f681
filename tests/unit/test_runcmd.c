/* test_runcmd.c - the command line of a Puppet run (src/agent/runcmd.h):
 * splitting the run.command template, {job_id} inside words, the order and
 * spelling of the options a runonce request adds, refused job ids and
 * templates, runcmd_format; and the runonce inputs as agent_puppet_call
 * checks them before any run (src/agent/puppet_state.h), with Puppet's
 * refusals while disabled or applying and status naming choird's run. */
#include "cmocka_setup.h"
#include "test_fs.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/puppet_paths.h"
#include "agent/puppet_state.h"
#include "agent/runcmd.h"
#include "core/error.h"

/* ---- helpers -------------------------------------------------------------- */

/* argv built from tmpl and the JSON text in (NULL = no inputs); fails the test on error. */
static char **build(const char *tmpl, const char *in_text, const char *job_id)
{
    json_t *in = in_text ? json_loads(in_text, 0, NULL) : NULL;
    char **argv = NULL, why[256] = "";

    if (in_text)
        assert_non_null(in);
    if (runcmd_build(tmpl, in, job_id, &argv, why, sizeof(why)) != 0)
        fail_msg("runcmd_build failed: %s", why);
    json_decref(in);
    assert_non_null(argv);
    return argv;
}

/* argv compared with the NULL-terminated want. */
static void assert_argv(char **argv, const char *const *want)
{
    size_t i;

    for (i = 0; want[i]; i++) {
        if (!argv[i])
            fail_msg("argv ends at %zu, wanted '%s'", i, want[i]);
        assert_string_equal(argv[i], want[i]);
    }
    if (argv[i])
        fail_msg("argv has an extra word %zu: '%s'", i, argv[i]);
}

static void check(const char *tmpl, const char *in_text, const char *job_id,
                  const char *const *want)
{
    char **argv = build(tmpl, in_text, job_id);

    assert_argv(argv, want);
    runcmd_free(argv);
}

/* runcmd_build must refuse; why is then non-empty. */
static void refused(const char *tmpl, const char *job_id, const char *why_has)
{
    char **argv = (char **)1, why[256] = "";

    assert_int_equal(runcmd_build(tmpl, NULL, job_id, &argv, why, sizeof(why)), -1);
    assert_null(argv);
    assert_true(why[0] != '\0');
    if (why_has && !strstr(why, why_has))
        fail_msg("why '%s' lacks '%s'", why, why_has);
}

/* ---- the template ------------------------------------------------------------ */

static void test_template_split(void **state)
{
    (void)state;
    check("puppet agent --onetime", NULL, "j1",
          (const char *const[]){"puppet", "agent", "--onetime", NULL});
    check("  puppet\tagent \t  --onetime\t\t--verbose   ", NULL, "j1",
          (const char *const[]){"puppet", "agent", "--onetime", "--verbose", NULL});
    check("/opt/puppetlabs/bin/puppet", NULL, "j1",
          (const char *const[]){"/opt/puppetlabs/bin/puppet", NULL});
}

static void test_job_id_substitution(void **state)
{
    (void)state;
    check("puppet agent --job-id {job_id}", NULL, "abc-12_X",
          (const char *const[]){"puppet", "agent", "--job-id", "abc-12_X", NULL});
    check("puppet agent --job_id={job_id}", NULL, "j42",
          (const char *const[]){"puppet", "agent", "--job_id=j42", NULL});
    check("echo {job_id}:{job_id}", NULL, "j42",
          (const char *const[]){"echo", "j42:j42", NULL});
    check("echo {job_id}{job_id}{job_id}", NULL, "x",
          (const char *const[]){"echo", "xxx", NULL});
    /* a 64-character job id in a word made only of {job_id}s */
    check("echo {job_id}{job_id}", NULL,
          "0123456789012345678901234567890123456789012345678901234567890123",
          (const char *const[]){"echo",
                                "0123456789012345678901234567890123456789012345678901234567890123"
                                "0123456789012345678901234567890123456789012345678901234567890123",
                                NULL});
    /* near misses are left alone */
    check("echo {job_id {jobid} job_id}", NULL, "j1",
          (const char *const[]){"echo", "{job_id", "{jobid}", "job_id}", NULL});
    assert_true(runcmd_carries_job_id("puppet agent --job-id {job_id}"));
    assert_true(runcmd_carries_job_id("puppet agent --job_id={job_id}"));
}

static void test_template_without_job_id(void **state)
{
    static const char tmpl[] = "puppet apply --detailed-exitcodes /etc/puppet/site.pp";
    char **argv;

    (void)state;
    assert_false(runcmd_carries_job_id(tmpl));
    assert_false(runcmd_carries_job_id(NULL));
    argv = build(tmpl, NULL, "job7");
    assert_argv(argv, (const char *const[]){"puppet", "apply", "--detailed-exitcodes",
                                            "/etc/puppet/site.pp", NULL});
    for (size_t i = 0; argv[i]; i++)
        assert_null(strstr(argv[i], "job7"));
    runcmd_free(argv);
}

/* ---- the request's options ------------------------------------------------------ */

static void test_noop_and_cached_catalog(void **state)
{
    (void)state;
    check("puppet agent", "{\"noop\": true}", "j",
          (const char *const[]){"puppet", "agent", "--noop", NULL});
    check("puppet agent", "{\"noop\": false}", "j",
          (const char *const[]){"puppet", "agent", "--no-noop", NULL});
    check("puppet agent", "{}", "j", (const char *const[]){"puppet", "agent", NULL});
    check("puppet agent", NULL, "j", (const char *const[]){"puppet", "agent", NULL});
    check("puppet agent", "{\"use_cached_catalog\": true}", "j",
          (const char *const[]){"puppet", "agent", "--use_cached_catalog", NULL});
    check("puppet agent", "{\"use_cached_catalog\": false}", "j",
          (const char *const[]){"puppet", "agent", NULL});
    check("puppet agent", "{\"use_cached_catalog\": true, \"noop\": true}", "j",
          (const char *const[]){"puppet", "agent", "--noop", "--use_cached_catalog", NULL});
}

static void test_option_order(void **state)
{
    (void)state;
    /* the request's key order does not matter: the options come in runcmd's order */
    check("puppet agent --job-id {job_id}",
          "{\"server\": \"puppet.example.com:8140\", \"environment\": \"staging\","
          " \"skip_tags\": \"b::c\", \"tags\": \"a,b\", \"use_cached_catalog\": true,"
          " \"noop\": false}",
          "j9",
          (const char *const[]){"puppet", "agent", "--job-id", "j9", "--no-noop",
                                "--use_cached_catalog", "--tags", "a,b", "--skip_tags", "b::c",
                                "--environment", "staging", "--server",
                                "puppet.example.com:8140", NULL});
    check("puppet agent", "{\"environment\": \"production\"}", "j",
          (const char *const[]){"puppet", "agent", "--environment", "production", NULL});
    check("puppet agent", "{\"server\": \"p1\", \"tags\": \"x\"}", "j",
          (const char *const[]){"puppet", "agent", "--tags", "x", "--server", "p1", NULL});
}

static void test_ignored_options(void **state)
{
    (void)state;
    check("puppet agent --no-splay",
          "{\"force\": true, \"splay\": true, \"splaylimit\": 30, \"process_results\": true}", "j",
          (const char *const[]){"puppet", "agent", "--no-splay", NULL});
    check("puppet agent", "{\"force\": false, \"splay\": false}", "j",
          (const char *const[]){"puppet", "agent", NULL});
}

/* ---- refusals ---------------------------------------------------------------------- */

static void test_bad_job_ids(void **state)
{
    char id65[66];

    (void)state;
    memset(id65, 'a', 65);
    id65[65] = '\0';
    refused("puppet agent", "", "job id");
    refused("puppet agent", NULL, "job id");
    refused("puppet agent", id65, "job id");
    refused("puppet agent", "a.b", "job id");
    refused("puppet agent", "a b", "job id");
    refused("puppet agent", "a/b", "job id");
    refused("puppet agent", "../x", "job id");
    id65[64] = '\0'; /* 64 is the longest */
    runcmd_free(build("puppet agent", NULL, id65));
}

/* A template of n words "w". */
static char *words(size_t n)
{
    char *s = calloc(n * 2 + 1, 1);

    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * 2, i ? " w" : "w ", 2);
    return s;
}

static void test_bad_templates(void **state)
{
    char why[256];
    char *max = words(RUNCMD_ARGS_MAX), *over = words(RUNCMD_ARGS_MAX + 1);
    char **argv;
    size_t n;

    (void)state;
    refused("", "j", "empty");
    refused(" \t  \t", "j", "empty");
    refused(NULL, "j", "empty");
    refused(over, "j", "more than");
    why[0] = '\0';
    assert_int_equal(runcmd_check_template("", why, sizeof(why)), -1);
    assert_true(why[0] != '\0');
    why[0] = '\0';
    assert_int_equal(runcmd_check_template(over, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "129"));
    assert_int_equal(runcmd_check_template(max, why, sizeof(why)), 0);
    assert_int_equal(runcmd_check_template("puppet", why, sizeof(why)), 0);
    /* RUNCMD_ARGS_MAX words still take the request's options after them */
    argv = build(max, "{\"noop\": true, \"tags\": \"t\"}", "j");
    for (n = 0; argv[n]; n++)
        ;
    assert_int_equal(n, RUNCMD_ARGS_MAX + 3);
    assert_string_equal(argv[RUNCMD_ARGS_MAX], "--noop");
    assert_string_equal(argv[RUNCMD_ARGS_MAX + 2], "t");
    runcmd_free(argv);
    runcmd_free(NULL);
    free(max);
    free(over);
}

/* ---- runcmd_format -------------------------------------------------------------------- */

static void test_format(void **state)
{
    char *const argv[] = {"puppet", "agent", "--job-id", "j1", NULL};
    char *const none[] = {NULL};
    char big[128], small[12], tiny[3];

    (void)state;
    runcmd_format(argv, big, sizeof(big));
    assert_string_equal(big, "puppet agent --job-id j1");
    /* exactly fitting: no marker */
    runcmd_format(argv, big, strlen("puppet agent --job-id j1") + 1);
    assert_string_equal(big, "puppet agent --job-id j1");
    /* one byte short: cut, ending in "..." */
    runcmd_format(argv, big, strlen("puppet agent --job-id j1"));
    assert_string_equal(big, "puppet agent --job-i...");
    memset(small, 'X', sizeof(small));
    runcmd_format(argv, small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_string_equal(small, "puppet a...");
    runcmd_format(none, big, sizeof(big));
    assert_string_equal(big, "");
    runcmd_format(NULL, big, sizeof(big));
    assert_string_equal(big, "");
    memset(tiny, 'X', sizeof(tiny));
    runcmd_format(argv, tiny, sizeof(tiny));
    assert_int_equal(strlen(tiny), 2);
    runcmd_format(argv, tiny, 0); /* writes nothing */
}

/* ---- runonce through agent_puppet_call ------------------------------------------------- */

struct fx {
    char root[256];
    char vardir[300], statedir[300], rundir[300];
    struct puppet_paths p;
    struct puppet_agent agent;
    int calls;         /* runonce hook calls */
    json_t *got;       /* the inputs the hook got last */
    const char *job;   /* what the running hook says */
};

static int fake_runonce(void *ctx, json_t *in, json_t *out, char *msg, size_t n)
{
    struct fx *f = ctx;

    f->calls++;
    json_decref(f->got);
    f->got = json_deep_copy(in);
    json_object_set_new(out, "summary", json_string("Started a Puppet run"));
    snprintf(msg, n, "OK");
    return AGENT_OK;
}

static const char *fake_running(void *ctx)
{
    return ((struct fx *)ctx)->job;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    struct choir_error err;

    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/choir-runcmd.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->vardir, sizeof(f->vardir), "%s/var", f->root);
    snprintf(f->statedir, sizeof(f->statedir), "%s/var/state", f->root);
    snprintf(f->rundir, sizeof(f->rundir), "%s/run", f->root);
    puppet_paths_init(&f->p);
    if (puppet_paths_from_dir(&f->p, f->vardir, f->rundir, NULL, &err) != 0)
        return -1;
    f->agent.paths = &f->p;
    f->agent.runonce = fake_runonce;
    f->agent.running = fake_running;
    f->agent.ctx = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    puppet_paths_done(&f->p);
    remove_tree(f->root);
    json_decref(f->got);
    free(f);
    return 0;
}

/* agent_puppet_call with the JSON text in; returns the statuscode, msg filled. */
static int call(struct fx *f, const char *action, const char *in_text, json_t **out, char *msg,
                size_t n)
{
    json_t *in = json_loads(in_text, 0, NULL);
    int code = -1, rc;

    assert_non_null(in);
    rc = agent_puppet_call(&f->agent, action, in, out, &code, msg, n);
    assert_int_equal(rc, code);
    assert_non_null(*out);
    json_decref(in);
    return code;
}

static void test_runonce_valid_reaches_hook(void **state)
{
    struct fx *f = *state;
    char msg[512];
    json_t *out;

    assert_int_equal(call(f, "runonce",
                          "{\"noop\": true, \"force\": true, \"splay\": false, \"splaylimit\": 10,"
                          " \"use_cached_catalog\": false, \"tags\": \"a,b::c\","
                          " \"skip_tags\": \"d\", \"environment\": \"production\","
                          " \"server\": \"puppet.example.com:8140\", \"job_id\": \"job-1_A\","
                          " \"process_results\": true}",
                          &out, msg, sizeof(msg)),
                     AGENT_OK);
    assert_string_equal(msg, "OK");
    assert_int_equal(f->calls, 1);
    assert_string_equal(json_string_value(json_object_get(f->got, "job_id")), "job-1_A");
    assert_string_equal(json_string_value(json_object_get(f->got, "tags")), "a,b::c");
    assert_true(json_is_true(json_object_get(f->got, "noop")));
    assert_string_equal(json_string_value(json_object_get(out, "summary")),
                        "Started a Puppet run");
    json_decref(out);
    /* no inputs at all is fine too */
    assert_int_equal(call(f, "runonce", "{}", &out, msg, sizeof(msg)), AGENT_OK);
    assert_int_equal(f->calls, 2);
    json_decref(out);
}

static void test_runonce_invalid_inputs(void **state)
{
    static const struct {
        const char *in, *name;
    } bad[] = {
        {"{\"tags\": \"a,,b\"}", "tags"},
        {"{\"tags\": \"a;b\"}", "tags"},
        {"{\"skip_tags\": \"a b\"}", "skip_tags"},
        {"{\"server\": \"x;y\"}", "server"},
        {"{\"environment\": \"bad-env\"}", "environment"},
        {"{\"job_id\": \"a.b\"}", "job_id"},
        {"{\"job_id\": \"\"}", "job_id"},
        {"{\"splaylimit\": -1}", "splaylimit"},
        {"{\"splaylimit\": \"10\"}", "splaylimit"},
        {"{\"noop\": \"true\"}", "noop"},
        {"{\"force\": 1}", "force"},
    };
    struct fx *f = *state;
    char msg[512];
    json_t *out;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msg[0] = '\0';
        if (call(f, "runonce", bad[i].in, &out, msg, sizeof(msg)) != AGENT_INVALID_DATA)
            fail_msg("%s: statuscode not %d (%s)", bad[i].in, AGENT_INVALID_DATA, msg);
        if (!strstr(msg, bad[i].name))
            fail_msg("%s: message '%s' does not name the input", bad[i].in, msg);
        json_decref(out);
    }
    assert_int_equal(f->calls, 0);
}

static void test_runonce_disabled(void **state)
{
    struct fx *f = *state;
    struct choir_error err;
    char msg[512];
    json_t *out;

    assert_int_equal(puppet_state_disable(&f->p, "deploying app1", &err), PUPPET_STATE_DONE);
    assert_int_equal(call(f, "runonce", "{\"job_id\": \"j1\"}", &out, msg, sizeof(msg)),
                     AGENT_ABORTED);
    assert_non_null(strstr(msg, "administratively disabled (Reason: 'deploying app1')"));
    assert_int_equal(f->calls, 0);
    json_decref(out);
    /* invalid inputs are still invalid data first */
    assert_int_equal(call(f, "runonce", "{\"job_id\": \"a.b\"}", &out, msg, sizeof(msg)),
                     AGENT_INVALID_DATA);
    json_decref(out);
    assert_int_equal(puppet_state_enable(&f->p, &err), PUPPET_STATE_DONE);
    assert_int_equal(call(f, "runonce", "{\"job_id\": \"j1\"}", &out, msg, sizeof(msg)),
                     AGENT_OK);
    assert_int_equal(f->calls, 1);
    json_decref(out);
}

static void test_runonce_applying(void **state)
{
    struct fx *f = *state;
    char msg[512], pid[32];
    json_t *out;
    FILE *fp;

    assert_int_equal(mkdir(f->vardir, 0755), 0);
    assert_int_equal(mkdir(f->statedir, 01755), 0);
    fp = fopen(f->p.agent_catalog_run_lockfile, "w");
    assert_non_null(fp);
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    assert_int_equal(fputs(pid, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(call(f, "runonce", "{}", &out, msg, sizeof(msg)), AGENT_ABORTED);
    assert_non_null(strstr(msg, "already in progress"));
    assert_int_equal(f->calls, 0);
    json_decref(out);
}

static void test_status_names_choird_run(void **state)
{
    struct fx *f = *state;
    char msg[512];
    json_t *out;

    f->job = NULL;
    assert_int_equal(call(f, "status", "{}", &out, msg, sizeof(msg)), AGENT_OK);
    assert_true(json_is_false(json_object_get(out, "applying")));
    assert_null(json_object_get(out, "job_id"));
    json_decref(out);
    f->job = "job7";
    assert_int_equal(call(f, "status", "{}", &out, msg, sizeof(msg)), AGENT_OK);
    assert_true(json_is_true(json_object_get(out, "applying")));
    assert_string_equal(json_string_value(json_object_get(out, "status")), "applying a catalog");
    assert_string_equal(json_string_value(json_object_get(out, "job_id")), "job7");
    json_decref(out);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_split),
        cmocka_unit_test(test_job_id_substitution),
        cmocka_unit_test(test_template_without_job_id),
        cmocka_unit_test(test_noop_and_cached_catalog),
        cmocka_unit_test(test_option_order),
        cmocka_unit_test(test_ignored_options),
        cmocka_unit_test(test_bad_job_ids),
        cmocka_unit_test(test_bad_templates),
        cmocka_unit_test(test_format),
        FX(test_runonce_valid_reaches_hook),
        FX(test_runonce_invalid_inputs),
        FX(test_runonce_disabled),
        FX(test_runonce_applying),
        FX(test_status_names_choird_run),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
