/* test_run.c - the one run a node may have going (src/agent/run.h), with
 * real processes in temporary directories: exit codes, signals, a missing
 * command, the state files, reporting once, one run at a time, adoption
 * by a new manager, a killed keeper, a reused keeper pid, a bad run.json,
 * the keeper not holding the parent's descriptors, an unreported end that
 * survives a reopen.  Runs wait on a gate file where a test needs them
 * going, so nothing depends on timing; polling loops are only bounded. */
#include "cmocka_setup.h"
#include "test_fs.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/run.h"
#include "core/error.h"
#include "core/file.h"
#include "net/wire.h"

#define POLL_ROUNDS 6000 /* x 10 ms: only a bound, never an expectation */

/* ---- fixture --------------------------------------------------------------- */

struct out {
    char *buf;
    size_t len;
    int calls;
};

struct fx {
    char root[256];
    char dir[300], gate[300], json[320], log[320], exit[320];
    char gated[1024]; /* a script that says "started", waits for the gate, says "late", exits 2 */
    struct run_mgr *m;
    struct out out;
};

static void collect(void *ctx, const char *buf, size_t len)
{
    struct out *o = ctx;

    o->buf = realloc(o->buf, o->len + len + 1);
    assert_non_null(o->buf);
    memcpy(o->buf + o->len, buf, len);
    o->len += len;
    o->buf[o->len] = '\0';
    o->calls++;
}

static void out_clear(struct out *o)
{
    free(o->buf);
    memset(o, 0, sizeof(*o));
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    struct choir_error err;

    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/choir-run.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/state", f->root);
    snprintf(f->gate, sizeof(f->gate), "%s/gate", f->root);
    snprintf(f->json, sizeof(f->json), "%s/run.json", f->dir);
    snprintf(f->log, sizeof(f->log), "%s/run.log", f->dir);
    snprintf(f->exit, sizeof(f->exit), "%s/run.exit", f->dir);
    /* bounded (30 s) so a broken run.c fails a test instead of hanging it */
    snprintf(f->gated, sizeof(f->gated),
             "echo started; i=0; while [ ! -e '%s' ] && [ $i -lt 600 ]; do sleep 0.05; "
             "i=$((i+1)); done; echo late; exit 2",
             f->gate);
    if (run_mgr_open(&f->m, f->dir, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    run_mgr_free(f->m);
    out_clear(&f->out);
    remove_tree(f->root);
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

static void start_sh(struct fx *f, const char *script, const char *job)
{
    char *const argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    struct choir_error err = {0};

    if (run_start(f->m, argv, job, 0, &err) != 0)
        fail_msg("run_start: %s", err.msg);
}

static void nap(void)
{
    struct timespec ts = {0, 10 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

/* Polls until the run ended; its output goes to f->out. */
static void wait_end(struct fx *f)
{
    for (int i = 0; i < POLL_ROUNDS; i++) {
        enum run_poll p = run_mgr_poll(f->m, collect, &f->out);

        if (p == RUN_ENDED)
            return;
        assert_int_equal(p, RUN_GOING);
        nap();
    }
    fail_msg("the run did not end");
}

/* Polls until the output holds text (the run going). */
static void wait_output(struct fx *f, const char *text)
{
    for (int i = 0; i < POLL_ROUNDS; i++) {
        assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_GOING);
        if (f->out.buf && strstr(f->out.buf, text))
            return;
        nap();
    }
    fail_msg("no '%s' in the run's output", text);
}

static void open_gate(struct fx *f)
{
    FILE *g = fopen(f->gate, "w");

    assert_non_null(g);
    assert_int_equal(fclose(g), 0);
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len;

    if (file_read(path, 1 << 20, &buf, &len) != 0)
        fail_msg("cannot read %s", path);
    return buf;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

static int exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void reopen(struct fx *f)
{
    struct choir_error err = {0};

    run_mgr_free(f->m);
    f->m = NULL;
    if (run_mgr_open(&f->m, f->dir, &err) != 0)
        fail_msg("run_mgr_open: %s", err.msg);
}

static void mark_reported(struct fx *f)
{
    struct choir_error err = {0};

    if (run_mgr_mark_reported(f->m, &err) != 0)
        fail_msg("run_mgr_mark_reported: %s", err.msg);
}

/* The keeper is no child of ours any more (reaped, not a zombie). */
static void assert_reaped(pid_t keeper)
{
    errno = 0;
    assert_int_equal(waitpid(keeper, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* ---- tests --------------------------------------------------------------------- */

static void test_exit_code_output_and_files(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    char *text, run_id[sizeof(i->run_id)];
    json_t *j;
    pid_t keeper;

    assert_null(run_mgr_info(f->m));
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
    start_sh(f, "echo one; echo two >&2; exit 3", "job1");
    i = run_mgr_info(f->m);
    assert_non_null(i);
    assert_true(run_mgr_busy(f->m));
    assert_false(run_mgr_unreported(f->m));
    assert_true(wire_requestid_ok(i->run_id));
    assert_string_equal(i->job_id, "job1");
    assert_string_equal(i->command, "/bin/sh -c echo one; echo two >&2; exit 3");
    assert_true(i->keeper > 0);
    assert_true(i->keeper_start > 0);
    assert_true(i->started_ms > 0);
    assert_int_equal(i->ended_ms, 0);
    assert_false(i->adopted);
    keeper = i->keeper;
    snprintf(run_id, sizeof(run_id), "%s", i->run_id);

    /* run.json is written before run_start returns */
    text = slurp(f->json);
    j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "run_id")), run_id);
    assert_string_equal(json_string_value(json_object_get(j, "job_id")), "job1");
    assert_int_equal(json_integer_value(json_object_get(j, "keeper")), keeper);
    assert_true(json_is_false(json_object_get(j, "reported")));
    json_decref(j);

    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, 3);
    assert_int_equal(i->signal, 0);
    assert_string_equal(i->lost, "");
    assert_true(i->ended_ms >= i->started_ms);
    assert_false(run_mgr_busy(f->m));
    assert_true(run_mgr_unreported(f->m));
    assert_non_null(f->out.buf);
    assert_int_equal(f->out.len, strlen("one\ntwo\n"));
    assert_non_null(strstr(f->out.buf, "one\n"));
    assert_non_null(strstr(f->out.buf, "two\n"));
    assert_reaped(keeper);

    text = slurp(f->log);
    assert_int_equal(strlen(text), strlen("one\ntwo\n"));
    assert_non_null(strstr(text, "one\n"));
    assert_non_null(strstr(text, "two\n"));
    free(text);
    text = slurp(f->exit);
    assert_string_equal(text, "3 0\n");
    free(text);

    /* ended: said again until reported, without the output again */
    f->out.calls = 0;
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_ENDED);
    assert_int_equal(f->out.calls, 0);
    mark_reported(f);
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
    assert_false(run_mgr_unreported(f->m));
    assert_false(run_mgr_busy(f->m));
    assert_int_equal(run_mgr_info(f->m)->exit_code, 3);

    text = slurp(f->json);
    j = json_loads(text, 0, NULL);
    free(text);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "reported")));
    assert_int_equal(json_integer_value(json_object_get(j, "exit_code")), 3);
    json_decref(j);

    /* a new manager has nothing to do, but knows the last run */
    reopen(f);
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
    assert_false(run_mgr_busy(f->m));
    assert_false(run_mgr_unreported(f->m));
    i = run_mgr_info(f->m);
    assert_non_null(i);
    assert_string_equal(i->run_id, run_id);
    assert_int_equal(i->exit_code, 3);
    assert_true(i->reported);
    assert_int_equal(f->out.calls, 0);
}

static void test_killed_by_signal(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    char *text;

    start_sh(f, "kill -TERM $$", "job2");
    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, -1);
    assert_int_equal(i->signal, SIGTERM);
    assert_string_equal(i->lost, "");
    text = slurp(f->exit);
    assert_string_equal(text, "-1 15\n");
    free(text);
}

static void test_missing_command(void **state)
{
    struct fx *f = *state;
    char *const argv[] = {"/nonexistent/choir-no-such-command", "--x", NULL};
    struct choir_error err = {0};
    const struct run_info *i;
    char *text;

    assert_int_equal(run_start(f->m, argv, "job3", 1, &err), 0);
    assert_true(run_mgr_info(f->m)->carries_job_id);
    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, 127);
    assert_int_equal(i->signal, 0);
    text = slurp(f->log);
    assert_non_null(strstr(text, "cannot run"));
    assert_non_null(strstr(text, "/nonexistent/choir-no-such-command"));
    free(text);
    assert_non_null(f->out.buf);
    assert_non_null(strstr(f->out.buf, "cannot run"));
}

static void test_one_run_at_a_time(void **state)
{
    struct fx *f = *state;
    char *const argv[] = {"/bin/sh", "-c", "exit 0", NULL};
    struct choir_error err = {0};
    char first[sizeof(((struct run_info *)0)->run_id)];

    start_sh(f, f->gated, "jobA");
    snprintf(first, sizeof(first), "%s", run_mgr_info(f->m)->run_id);
    assert_int_equal(run_start(f->m, argv, "jobB", 0, &err), -1);
    assert_non_null(strstr(err.msg, "jobA"));
    /* the going run is untouched */
    assert_string_equal(run_mgr_info(f->m)->job_id, "jobA");
    assert_string_equal(run_mgr_info(f->m)->run_id, first);
    assert_true(run_mgr_busy(f->m));
    open_gate(f);
    wait_end(f);
    assert_int_equal(run_mgr_info(f->m)->exit_code, 2);
    mark_reported(f);
    /* then the next one may start, with its own run id and a fresh log */
    out_clear(&f->out);
    assert_int_equal(run_start(f->m, argv, "jobB", 0, &err), 0);
    assert_string_not_equal(run_mgr_info(f->m)->run_id, first);
    wait_end(f);
    assert_int_equal(run_mgr_info(f->m)->exit_code, 0);
    assert_int_equal(f->out.len, 0);
}

static void test_adoption(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    char run_id[sizeof(i->run_id)];
    pid_t keeper;

    start_sh(f, f->gated, "job4");
    keeper = run_mgr_info(f->m)->keeper;
    snprintf(run_id, sizeof(run_id), "%s", run_mgr_info(f->m)->run_id);
    reopen(f); /* as if choird restarted: the run goes on */
    assert_true(run_mgr_busy(f->m));
    assert_false(run_mgr_unreported(f->m));
    i = run_mgr_info(f->m);
    assert_non_null(i);
    assert_true(i->adopted);
    assert_string_equal(i->run_id, run_id);
    assert_string_equal(i->job_id, "job4");
    assert_int_equal(i->keeper, keeper);
    wait_output(f, "started");
    open_gate(f);
    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, 2);
    assert_int_equal(i->signal, 0);
    assert_string_equal(i->lost, "");
    assert_non_null(strstr(f->out.buf, "late\n"));
    /* the output was read again from the start, once */
    assert_ptr_equal(strstr(f->out.buf, "started\n"), f->out.buf);
    assert_null(strstr(f->out.buf + 1, "started\n"));
    mark_reported(f);
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
    /* the keeper is the test's child: an adopting manager cannot reap it */
    assert_int_equal(waitpid(keeper, NULL, 0), keeper);
}

static void test_keeper_killed(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    char pid[32];
    pid_t keeper;

    start_sh(f, f->gated, "job5");
    wait_output(f, "started"); /* the keeper's setsid is done */
    keeper = run_mgr_info(f->m)->keeper;
    assert_int_equal(getpgid(keeper), keeper);
    assert_int_equal(kill(-keeper, SIGKILL), 0);
    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, -1);
    assert_int_equal(i->signal, 0);
    assert_true(i->lost[0] != '\0');
    snprintf(pid, sizeof(pid), "%ld", (long)keeper);
    assert_non_null(strstr(i->lost, pid));
    assert_false(exists(f->exit));
    assert_true(run_mgr_unreported(f->m));
    assert_reaped(keeper);
}

/* A run.json as an earlier choird would have left it. */
static void write_record(struct fx *f, pid_t keeper, unsigned long long keeper_start)
{
    char text[1024];

    assert_true(mkdir(f->dir, 0700) == 0 || errno == EEXIST);
    snprintf(text, sizeof(text),
             "{\"run_id\":\"0123456789abcdef0123456789abcdef\",\"job_id\":\"old\","
             "\"command\":\"puppet agent\",\"carries_job_id\":true,\"keeper\":%ld,"
             "\"keeper_start\":%llu,\"started_ms\":1000,\"ended_ms\":0,\"exit_code\":0,"
             "\"signal\":0,\"reported\":false,\"lost\":\"\"}",
             (long)keeper, keeper_start);
    write_text(f->json, text);
}

static void test_reused_keeper_pid(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    pid_t other = getppid();

    /* a live process, but not the keeper: its start time differs */
    assert_int_equal(kill(other, 0), 0);
    assert_true(run_proc_start(other) != 0);
    assert_true(run_proc_start(other) != 12345);
    write_record(f, other, 12345);
    reopen(f);
    i = run_mgr_info(f->m);
    assert_non_null(i);
    assert_string_equal(i->job_id, "old");
    /* taken over, but not as going: the first poll ends it */
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_ENDED);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, -1);
    assert_true(i->lost[0] != '\0');
    assert_true(run_mgr_unreported(f->m));
    assert_int_equal(kill(other, 0), 0); /* nothing was done to it */
    mark_reported(f);
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
}

static void test_bad_record(void **state)
{
    static const char *const bad[] = {
        "{\"run_id\": ",
        "{}",
        "[]",
        "{\"run_id\":\"nothex\"}",
        "{\"run_id\":\"0123456789abcdef0123456789abcdef\","
        "\"run_id\":\"0123456789abcdef0123456789abcdef\"}",
    };
    struct fx *f = *state;

    run_mgr_free(f->m);
    f->m = NULL;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        struct choir_error err = {0};
        struct run_mgr *m = (struct run_mgr *)1;

        write_text(f->json, bad[k]);
        assert_int_equal(run_mgr_open(&m, f->dir, &err), -1);
        assert_null(m);
        if (!strstr(err.msg, f->json))
            fail_msg("%s: the error '%s' does not name run.json", bad[k], err.msg);
    }
}

static void test_state_dir_created_or_refused(void **state)
{
    struct fx *f = *state;
    struct choir_error err = {0};
    struct run_mgr *m = NULL;
    char path[400];
    struct stat st;

    snprintf(path, sizeof(path), "%s/fresh", f->root);
    assert_int_equal(run_mgr_open(&m, path, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_null(run_mgr_info(m));
    run_mgr_free(m);
    snprintf(path, sizeof(path), "%s/file", f->root);
    write_text(path, "x");
    m = (struct run_mgr *)1;
    assert_int_equal(run_mgr_open(&m, path, &err), -1);
    assert_null(m);
    assert_non_null(strstr(err.msg, path));
}

static void test_keeper_closes_descriptors(void **state)
{
    struct fx *f = *state;
    int p[2];
    char c;

    assert_int_equal(pipe(p), 0); /* no O_CLOEXEC: inherited by fork */
    start_sh(f, f->gated, "job6");
    assert_int_equal(close(p[1]), 0);
    /* EOF now: neither the keeper nor the run holds the write end.  If one
     * did, EOF would come only after the run ended (the gate never opens,
     * so after its bound), and run.exit would then exist. */
    assert_int_equal(read(p[0], &c, 1), 0);
    assert_false(exists(f->exit));
    assert_true(run_mgr_busy(f->m));
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_GOING);
    close(p[0]);
    open_gate(f);
    wait_end(f);
    assert_int_equal(run_mgr_info(f->m)->exit_code, 2);
}

static void test_unreported_survives_reopen(void **state)
{
    struct fx *f = *state;
    const struct run_info *i;
    char run_id[sizeof(i->run_id)];
    long long ended;

    start_sh(f, "echo x; exit 4", "job8");
    wait_end(f);
    i = run_mgr_info(f->m);
    assert_int_equal(i->exit_code, 4);
    ended = i->ended_ms;
    snprintf(run_id, sizeof(run_id), "%s", i->run_id);
    reopen(f); /* not reported: choird stopped before publishing */
    assert_true(run_mgr_unreported(f->m));
    assert_false(run_mgr_busy(f->m));
    i = run_mgr_info(f->m);
    assert_string_equal(i->run_id, run_id);
    assert_false(i->adopted);
    assert_int_equal(i->exit_code, 4);
    assert_int_equal(i->ended_ms, ended); /* the end is the one seen, not the reopen's */
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_ENDED);
    assert_int_equal(run_mgr_info(f->m)->exit_code, 4);
    mark_reported(f);
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
    reopen(f);
    assert_false(run_mgr_unreported(f->m));
    assert_int_equal(run_mgr_poll(f->m, collect, &f->out), RUN_IDLE);
}

static void test_proc_start(void **state)
{
    (void)state;
    assert_true(run_proc_start(getpid()) > 0);
    assert_int_equal(run_proc_start(0), 0);
    assert_int_equal(run_proc_start(-1), 0);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_exit_code_output_and_files),
        FX(test_killed_by_signal),
        FX(test_missing_command),
        FX(test_one_run_at_a_time),
        FX(test_adoption),
        FX(test_keeper_killed),
        FX(test_reused_keeper_pid),
        FX(test_bad_record),
        FX(test_state_dir_created_or_refused),
        FX(test_keeper_closes_descriptors),
        FX(test_unreported_survives_reopen),
        cmocka_unit_test(test_proc_start),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
