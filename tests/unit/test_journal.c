/* test_journal.c - the job journal (src/core/journal.h): round trips of
 * jobs, nodes and events; batching (last put wins, nothing visible before
 * a flush, a failed flush keeps its batch); event seqs across flushes,
 * reopens and two writers; list order; a 10,000-node batch; a second
 * handle reading while the first writes (WAL); a writer killed without
 * closing; file modes; the errors for a non-database, a foreign database,
 * an unknown schema version, an uncreatable directory and an oversized
 * text; the default path. */
#include "cmocka_setup.h"
#include "test_fs.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/error.h"
#include "core/journal.h"

/* ---- fixture ------------------------------------------------------------------- */

struct fx {
    char root[200];
    char path[300];         /* root/state/choir/journal.db (directories not made) */
    struct journal *j;
};

static struct journal *open_ok(const char *path)
{
    struct journal *j = NULL;
    struct choir_error err = {0};

    if (journal_open(&j, path, &err) != 0)
        fail_msg("journal_open %s: %s", path, err.msg);
    assert_non_null(j);
    return j;
}

static int fx_setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");

    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/choir-journal.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/state/choir/journal.db", f->root);
    f->j = open_ok(f->path);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;

    journal_close(f->j);
    remove_tree(f->root);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static void flush_ok(struct journal *j)
{
    struct choir_error err = {0};

    if (journal_flush(j, &err) != 0)
        fail_msg("journal_flush: %s", err.msg);
    assert_int_equal(journal_pending(j), 0);
}

static void put_job(struct journal *j, const char *id, const char *state, long long created)
{
    struct journal_job job = {
        .id = (char *)id, .state = (char *)state, .reason = "", .caller = "rip.mcollective",
        .environment = "production", .plan = "{\"groups\":[[\"db1\"],[\"web1\",\"web2\"]]}",
        .created_ms = created, .updated_ms = created + 5,
    };

    journal_job_put(j, &job);
}

static void put_node(struct journal *j, const char *job, const char *node, int group, int batch,
                     const char *state)
{
    struct journal_node n = {
        .job_id = (char *)job, .node = (char *)node, .group = group, .batch = batch,
        .state = (char *)state, .reason = "", .verdict = "", .run_id = "", .exit_code = -1,
        .locked = 0, .attempts = 0, .failed = "[]",
    };

    journal_node_put(j, &n);
}

/* Events collected by journal_events. */
struct seen {
    long long seq[64];
    char kind[64][32];
    char detail[64][64];
    size_t n, stop_after;
    long long last;         /* the seq seen last */
    int gap;                /* a seq that did not follow the one before */
};

static int collect(void *ctx, const struct journal_event *ev)
{
    struct seen *s = ctx;

    if (s->n && ev->seq != s->last + 1)
        s->gap = 1;
    s->last = ev->seq;
    if (s->n < 64) {
        s->seq[s->n] = ev->seq;
        snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", ev->kind);
        snprintf(s->detail[s->n], sizeof(s->detail[0]), "%s", ev->detail);
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static struct seen events_of(struct journal *j, const char *id, long long after)
{
    struct seen s;
    struct choir_error err = {0};

    memset(&s, 0, sizeof(s));
    if (journal_events(j, id, after, collect, &s, &err) != 0)
        fail_msg("journal_events %s: %s", id, err.msg);
    return s;
}

/* The seqs seen must be first, first+1, ..., first+n-1. */
static void assert_seqs(const struct seen *s, size_t n, long long first)
{
    assert_int_equal(s->n, n);
    assert_false(s->gap);
    if (n)
        assert_int_equal(s->last, first + (long long)n - 1);
    for (size_t i = 0; i < n && i < 64; i++)
        assert_int_equal(s->seq[i], first + (long long)i);
}

static size_t count_jobs(struct journal *j)
{
    struct journal_job *jobs;
    size_t n;
    struct choir_error err = {0};

    if (journal_jobs(j, &jobs, &n, &err) != 0)
        fail_msg("journal_jobs: %s", err.msg);
    journal_jobs_free(jobs, n);
    return n;
}

static void sql(const char *path, const char *text)
{
    sqlite3 *db = NULL;
    char *msg = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, text, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("sql %s: %s", text, msg);
    sqlite3_close(db);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle))
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- round trips ---------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    struct fx *f = *state;
    struct journal_job job;
    struct journal_node *nodes;
    struct journal_node full = {
        .job_id = "j1", .node = "web1.example.com", .group = 1, .batch = 2, .state = "succeeded",
        .reason = "done", .verdict = "changed", .run_id = "r-42", .exit_code = 2, .locked = 1,
        .attempts = 3, .failed = "[\"File[/etc/motd]\"]", .started_ms = 1000,
        .finished_ms = 2000,
    };
    size_t n;
    struct seen s;
    struct choir_error err = {0};

    put_job(f->j, "j1", "running", 100);
    journal_node_put(f->j, &full);
    journal_event(f->j, "j1", 1500, "engine", "node", "web1.example.com", "{\"to\":\"running\"}");
    journal_event(f->j, "j1", 1600, "rip.mcollective", "operator", NULL, NULL);
    assert_int_equal(journal_pending(f->j), 4);
    flush_ok(f->j);

    assert_int_equal(journal_job_get(f->j, "j1", &job, &err), 0);
    assert_string_equal(job.id, "j1");
    assert_string_equal(job.state, "running");
    assert_string_equal(job.reason, "");
    assert_string_equal(job.caller, "rip.mcollective");
    assert_string_equal(job.environment, "production");
    assert_string_equal(job.plan, "{\"groups\":[[\"db1\"],[\"web1\",\"web2\"]]}");
    assert_int_equal(job.created_ms, 100);
    assert_int_equal(job.updated_ms, 105);
    journal_job_clear(&job);

    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0].job_id, "j1");
    assert_string_equal(nodes[0].node, "web1.example.com");
    assert_int_equal(nodes[0].group, 1);
    assert_int_equal(nodes[0].batch, 2);
    assert_string_equal(nodes[0].state, "succeeded");
    assert_string_equal(nodes[0].reason, "done");
    assert_string_equal(nodes[0].verdict, "changed");
    assert_string_equal(nodes[0].run_id, "r-42");
    assert_int_equal(nodes[0].exit_code, 2);
    assert_int_equal(nodes[0].locked, 1);
    assert_int_equal(nodes[0].attempts, 3);
    assert_string_equal(nodes[0].failed, "[\"File[/etc/motd]\"]");
    assert_int_equal(nodes[0].started_ms, 1000);
    assert_int_equal(nodes[0].finished_ms, 2000);
    journal_nodes_free(nodes, n);

    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 2, 1);
    assert_string_equal(s.kind[0], "node");
    assert_string_equal(s.detail[0], "{\"to\":\"running\"}");
    assert_string_equal(s.kind[1], "operator");
    assert_string_equal(s.detail[1], "{}"); /* NULL detail is an empty object */
}

/* Negative exit codes, large times and text with quotes and UTF-8 survive. */
static void test_values_survive(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    size_t n;
    struct journal_job job = {
        .id = "j-ü", .state = "failed", .reason = "it's \"broken\" — badly", .caller = "c",
        .environment = "e", .plan = "{}", .created_ms = 1700000000123LL, .updated_ms = 0,
    };
    struct journal_job got;
    struct choir_error err = {0};

    journal_job_put(f->j, &job);
    put_node(f->j, "j-ü", "n1", 0, 0, "pending");
    flush_ok(f->j);
    assert_int_equal(journal_job_get(f->j, "j-ü", &got, &err), 0);
    assert_string_equal(got.reason, "it's \"broken\" — badly");
    assert_int_equal(got.created_ms, 1700000000123LL);
    journal_job_clear(&got);
    assert_int_equal(journal_nodes(f->j, "j-ü", &nodes, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(nodes[0].exit_code, -1);
    journal_nodes_free(nodes, n);
}

/* ---- batching ------------------------------------------------------------------ */

static void test_last_put_wins(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    struct journal_job job;
    size_t n;
    struct choir_error err = {0};

    put_job(f->j, "j1", "pending", 100);
    put_job(f->j, "j1", "running", 100);
    put_node(f->j, "j1", "a", 0, 0, "waiting");
    put_node(f->j, "j1", "b", 0, 0, "waiting");
    put_node(f->j, "j1", "a", 0, 0, "running");
    put_node(f->j, "j2", "a", 0, 0, "other job"); /* same node, another job: its own row */
    put_node(f->j, "j1", "a", 0, 1, "succeeded");
    assert_int_equal(journal_pending(f->j), 4);
    put_job(f->j, "j2", "pending", 50);
    flush_ok(f->j);

    assert_int_equal(journal_job_get(f->j, "j1", &job, &err), 0);
    assert_string_equal(job.state, "running");
    journal_job_clear(&job);
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].node, "b"); /* batch 0 before batch 1 */
    assert_string_equal(nodes[0].state, "waiting");
    assert_string_equal(nodes[1].node, "a");
    assert_string_equal(nodes[1].state, "succeeded");
    assert_int_equal(nodes[1].batch, 1);
    journal_nodes_free(nodes, n);
    assert_int_equal(journal_nodes(f->j, "j2", &nodes, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(nodes[0].state, "other job");
    journal_nodes_free(nodes, n);

    /* A later batch updates the row in place (upsert). */
    put_node(f->j, "j1", "b", 0, 0, "failed");
    flush_ok(f->j);
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[0].state, "failed");
    journal_nodes_free(nodes, n);
}

static void test_nothing_before_flush(void **state)
{
    struct fx *f = *state;
    struct journal_job job;
    struct journal_node *nodes;
    size_t n;
    struct seen s;
    struct choir_error err = {0};

    put_job(f->j, "j1", "running", 100);
    flush_ok(f->j);
    put_job(f->j, "j2", "running", 200);
    put_node(f->j, "j1", "a", 0, 0, "running");
    journal_event(f->j, "j1", 1, "engine", "job", "", "{}");
    assert_int_equal(journal_pending(f->j), 3);

    assert_int_equal(count_jobs(f->j), 1);
    assert_int_equal(journal_job_get(f->j, "j2", &job, &err), -1);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_contains(err.msg, "no job j2 in ");
    assert_contains(err.msg, f->path);
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 0);
    journal_nodes_free(nodes, n);
    s = events_of(f->j, "j1", 0);
    assert_int_equal(s.n, 0);

    flush_ok(f->j);
    assert_int_equal(count_jobs(f->j), 2);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 1, 1);
}

/* A flush with nothing to write leaves the file alone. */
static void test_empty_flush_is_noop(void **state)
{
    struct fx *f = *state;
    char wal[700];
    struct stat before, after, wbefore, wafter;
    sqlite3 *db = NULL;
    struct choir_error err = {0};

    put_job(f->j, "j1", "running", 100);
    flush_ok(f->j);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(f->path, &before), 0);
    assert_int_equal(stat(wal, &wbefore), 0);
    flush_ok(f->j);
    flush_ok(f->j);
    assert_int_equal(stat(f->path, &after), 0);
    assert_int_equal(stat(wal, &wafter), 0);
    assert_int_equal(before.st_size, after.st_size);
    assert_int_equal(wbefore.st_size, wafter.st_size);
    assert_true(wbefore.st_mtim.tv_sec == wafter.st_mtim.tv_sec &&
                wbefore.st_mtim.tv_nsec == wafter.st_mtim.tv_nsec);

    /* not even a lock: with another connection holding the write lock,
     * an empty flush still succeeds (a real one would time out) */
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(journal_flush(f->j, &err), 0);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
}

/* A flush that fails (here a trigger refuses events) writes nothing of its
 * batch and keeps it; the retry writes it all, once. */
static void test_failed_flush_keeps_batch(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    size_t n;
    struct seen s;
    struct choir_error err = {0};

    put_job(f->j, "j1", "running", 100);
    journal_event(f->j, "j1", 1, "engine", "job", "", "{\"n\":1}");
    flush_ok(f->j);

    sql(f->path, "CREATE TRIGGER no_events BEFORE INSERT ON events "
                 "BEGIN SELECT RAISE(ABORT, 'events refused by the test'); END;");
    put_job(f->j, "j1", "done", 100);
    put_node(f->j, "j1", "a", 0, 0, "succeeded");
    journal_event(f->j, "j1", 2, "engine", "job", "", "{\"n\":2}");
    journal_event(f->j, "j1", 3, "engine", "job", "", "{\"n\":3}");
    assert_int_equal(journal_flush(f->j, &err), -1);
    assert_contains(err.msg, f->path);
    assert_contains(err.msg, "events refused by the test");
    assert_int_equal(journal_pending(f->j), 4);

    /* nothing of the failed batch is visible */
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 0);
    journal_nodes_free(nodes, n);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 1, 1);

    sql(f->path, "DROP TRIGGER no_events;");
    flush_ok(f->j);
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 1);
    journal_nodes_free(nodes, n);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 3, 1);
    assert_string_equal(s.detail[1], "{\"n\":2}");
    assert_string_equal(s.detail[2], "{\"n\":3}");
}

/* ---- event seqs ---------------------------------------------------------------- */

static void test_seq_continues(void **state)
{
    struct fx *f = *state;
    struct seen s;

    put_job(f->j, "j1", "running", 100);
    put_job(f->j, "j2", "running", 200);
    journal_event(f->j, "j1", 1, "engine", "a", "", "{}");
    journal_event(f->j, "j2", 1, "engine", "a", "", "{}");
    journal_event(f->j, "j1", 2, "engine", "b", "", "{}");
    flush_ok(f->j);
    journal_event(f->j, "j1", 3, "engine", "c", "", "{}");
    flush_ok(f->j);

    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 3, 1);
    assert_string_equal(s.kind[2], "c");
    s = events_of(f->j, "j2", 0);
    assert_seqs(&s, 1, 1);

    journal_close(f->j);
    f->j = open_ok(f->path);
    journal_event(f->j, "j1", 4, "engine", "d", "", "{}");
    journal_event(f->j, "j2", 4, "engine", "b", "", "{}");
    flush_ok(f->j);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 4, 1);
    assert_string_equal(s.kind[3], "d");
    s = events_of(f->j, "j2", 0);
    assert_seqs(&s, 2, 1);
}

/* Two handles (say the engine and `choir unlock` in another process)
 * writing events of one job never reuse a seq. */
static void test_seq_two_writers(void **state)
{
    struct fx *f = *state;
    struct journal *other = open_ok(f->path);
    struct seen s;

    put_job(f->j, "j1", "running", 100);
    journal_event(f->j, "j1", 1, "engine", "a", "", "{}");
    flush_ok(f->j);
    journal_event(other, "j1", 2, "operator", "b", "", "{}");
    flush_ok(other);
    journal_event(f->j, "j1", 3, "engine", "c", "", "{}");
    flush_ok(f->j);
    journal_event(other, "j1", 4, "operator", "d", "", "{}");
    flush_ok(other);
    journal_close(other);

    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 4, 1);
    assert_string_equal(s.kind[0], "a");
    assert_string_equal(s.kind[1], "b");
    assert_string_equal(s.kind[2], "c");
    assert_string_equal(s.kind[3], "d");
}

/* ---- reads -------------------------------------------------------------------- */

static void test_list_order(void **state)
{
    struct fx *f = *state;
    struct journal_job *jobs;
    struct journal_node *nodes;
    size_t n;
    struct seen s;
    struct choir_error err = {0};
    static const char *const want[] = {"b1", "b2", "a1", "c1", "a2", "z1"};

    put_job(f->j, "old", "done", 100);
    put_job(f->j, "newest", "running", 300);
    put_job(f->j, "middle", "failed", 200);
    put_node(f->j, "newest", "z1", 1, 0, "s");
    put_node(f->j, "newest", "a2", 0, 2, "s");
    put_node(f->j, "newest", "c1", 0, 1, "s");
    put_node(f->j, "newest", "a1", 0, 1, "s");
    put_node(f->j, "newest", "b2", 0, 0, "s");
    put_node(f->j, "newest", "b1", 0, 0, "s");
    for (int i = 1; i <= 6; i++) {
        char detail[32];

        snprintf(detail, sizeof(detail), "{\"i\":%d}", i);
        journal_event(f->j, "newest", i, "engine", "x", "", detail);
    }
    flush_ok(f->j);

    assert_int_equal(journal_jobs(f->j, &jobs, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(jobs[0].id, "newest");
    assert_string_equal(jobs[1].id, "middle");
    assert_string_equal(jobs[2].id, "old");
    journal_jobs_free(jobs, n);

    assert_int_equal(journal_nodes(f->j, "newest", &nodes, &n, &err), 0);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(nodes[i].node, want[i]);
    journal_nodes_free(nodes, n);

    s = events_of(f->j, "newest", 3); /* after 3 */
    assert_seqs(&s, 3, 4);
    assert_string_equal(s.detail[0], "{\"i\":4}");
    memset(&s, 0, sizeof(s));
    s.stop_after = 2; /* the callback stops the walk */
    assert_int_equal(journal_events(f->j, "newest", 0, collect, &s, &err), 0);
    assert_seqs(&s, 2, 1);
}

static void test_unknown_job(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes = (void *)1;
    size_t n = 7;
    struct seen s = {0};
    struct choir_error err = {0};

    assert_int_equal(journal_nodes(f->j, "nope", &nodes, &n, &err), -1);
    assert_null(nodes);
    assert_int_equal(n, 0);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_contains(err.msg, "no job nope in ");
    assert_contains(err.msg, f->path);
    err.msg[0] = '\0';
    assert_int_equal(journal_events(f->j, "nope", 0, collect, &s, &err), -1);
    assert_contains(err.msg, "no job nope in ");
    assert_int_equal(s.n, 0);
    assert_int_equal(count_jobs(f->j), 0);
}

/* A callback may read the journal again while the walk goes on. */
struct nested {
    struct journal *j;
    size_t events, nodes_seen;
};

static int nested_read(void *ctx, const struct journal_event *ev)
{
    struct nested *nr = ctx;
    struct seen inner = events_of(nr->j, ev->job_id, 0);
    struct journal_node *nodes;
    size_t n;
    struct choir_error err = {0};

    assert_int_equal(inner.n, 3);
    assert_int_equal(journal_nodes(nr->j, ev->job_id, &nodes, &n, &err), 0);
    nr->nodes_seen += n;
    journal_nodes_free(nodes, n);
    nr->events++;
    return 0;
}

static void test_nested_reads(void **state)
{
    struct fx *f = *state;
    struct nested nr = {f->j, 0, 0};
    struct choir_error err = {0};

    put_job(f->j, "j1", "running", 100);
    put_node(f->j, "j1", "a", 0, 0, "s");
    for (int i = 0; i < 3; i++)
        journal_event(f->j, "j1", i, "engine", "x", "", "{}");
    flush_ok(f->j);
    assert_int_equal(journal_events(f->j, "j1", 0, nested_read, &nr, &err), 0);
    assert_int_equal(nr.events, 3);
    assert_int_equal(nr.nodes_seen, 3);
}

/* ---- scale ------------------------------------------------------------------------ */

static void test_big_batch(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    size_t n, groups[5] = {0};
    struct seen s;
    struct choir_error err = {0};
    double t0, t1;
    char name[64];

    put_job(f->j, "big", "running", 100);
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "node%05d.example.com", i);
        put_node(f->j, "big", name, i % 5, (i / 5) % 10, "running");
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "node%05d.example.com", i % 10000);
        journal_event(f->j, "big", i, "engine", "node", name,
                      i % 2 ? "{\"to\":\"succeeded\"}" : "{\"to\":\"running\"}");
    }
    assert_int_equal(journal_pending(f->j), 30001);
    t0 = now_s();
    flush_ok(f->j);
    t1 = now_s();
    fprintf(stderr, "info: flushed 1 job + 10000 nodes + 20000 events in one transaction "
            "in %.1f ms\n", (t1 - t0) * 1000.0);

    assert_int_equal(journal_nodes(f->j, "big", &nodes, &n, &err), 0);
    assert_int_equal(n, 10000);
    for (size_t i = 0; i < n; i++) {
        assert_in_range(nodes[i].group, 0, 4);
        groups[nodes[i].group]++;
        if (i)
            assert_true(nodes[i - 1].group < nodes[i].group ||
                        (nodes[i - 1].group == nodes[i].group &&
                         nodes[i - 1].batch <= nodes[i].batch));
    }
    for (int g = 0; g < 5; g++)
        assert_int_equal(groups[g], 2000);
    journal_nodes_free(nodes, n);

    s = events_of(f->j, "big", 0);
    assert_seqs(&s, 20000, 1);
    s = events_of(f->j, "big", 19998);
    assert_seqs(&s, 2, 19999);
}

/* ---- concurrency and crashes -------------------------------------------------------- */

/* The file is in WAL mode, and a second handle reads what the first
 * flushed while the first stays open, and keeps reading while another
 * connection holds the write lock with uncommitted rows. */
static void test_second_handle_reads(void **state)
{
    struct fx *f = *state;
    struct journal *reader = open_ok(f->path);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct seen s;

    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);

    put_job(f->j, "j1", "running", 100);
    journal_event(f->j, "j1", 1, "engine", "job", "", "{}");
    assert_int_equal(count_jobs(reader), 0);
    flush_ok(f->j);
    assert_int_equal(count_jobs(reader), 1);
    s = events_of(reader, "j1", 0);
    assert_seqs(&s, 1, 1);

    /* a writer in the middle of a transaction does not block readers */
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO jobs VALUES "
                                      "('half', 's', '', 'c', 'e', '{}', 1, 1);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(count_jobs(reader), 1);
    assert_int_equal(count_jobs(f->j), 1);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(count_jobs(reader), 2);
    sqlite3_close(db);
    journal_close(reader);
}

static void test_reopen_keeps_everything(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    size_t n;
    struct seen s;
    struct choir_error err = {0};

    put_job(f->j, "j1", "done", 100);
    put_node(f->j, "j1", "a", 0, 0, "succeeded");
    put_node(f->j, "j1", "b", 1, 0, "failed");
    journal_event(f->j, "j1", 1, "engine", "job", "", "{}");
    flush_ok(f->j);
    journal_close(f->j);
    f->j = open_ok(f->path);
    assert_int_equal(count_jobs(f->j), 1);
    assert_int_equal(journal_nodes(f->j, "j1", &nodes, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(nodes[1].state, "failed");
    journal_nodes_free(nodes, n);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 1, 1);
}

/* A writer killed (SIGKILL, no close, unflushed writes pending) loses only
 * what it had not flushed. */
static void test_killed_writer(void **state)
{
    struct fx *f = *state;
    struct journal_node *nodes;
    struct journal_job job;
    size_t n;
    struct seen s;
    int status;
    pid_t pid;
    struct choir_error err = {0};

    journal_close(f->j); /* no SQLite connection crosses the fork */
    f->j = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct journal *j = NULL;
        struct choir_error cerr = {0};

        if (journal_open(&j, f->path, &cerr) != 0)
            _exit(3);
        put_job(j, "crash", "running", 100);
        for (int i = 0; i < 100; i++) {
            char name[32];

            snprintf(name, sizeof(name), "n%03d", i);
            put_node(j, "crash", name, 0, 0, "running");
            journal_event(j, "crash", i, "engine", "node", name, "{}");
        }
        if (journal_flush(j, &cerr) != 0)
            _exit(4);
        put_job(j, "crash", "lost", 100);           /* never flushed */
        put_node(j, "crash", "n000", 0, 0, "lost");
        journal_event(j, "crash", 999, "engine", "lost", "", "{}");
        raise(SIGKILL);
        _exit(5);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    f->j = open_ok(f->path);
    assert_int_equal(journal_job_get(f->j, "crash", &job, &err), 0);
    assert_string_equal(job.state, "running");
    journal_job_clear(&job);
    assert_int_equal(journal_nodes(f->j, "crash", &nodes, &n, &err), 0);
    assert_int_equal(n, 100);
    assert_string_equal(nodes[0].node, "n000");
    assert_string_equal(nodes[0].state, "running");
    journal_nodes_free(nodes, n);
    s = events_of(f->j, "crash", 0);
    assert_seqs(&s, 100, 1);
    /* and the journal goes on from there */
    journal_event(f->j, "crash", 1000, "engine", "resumed", "", "{}");
    flush_ok(f->j);
    s = events_of(f->j, "crash", 100);
    assert_seqs(&s, 1, 101);
}

/* ---- files and errors --------------------------------------------------------------- */

static void test_modes(void **state)
{
    struct fx *f = *state;
    char dir[600], wal[700];
    struct stat st;

    put_job(f->j, "j1", "running", 100);
    flush_ok(f->j);
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    assert_int_equal(stat(wal, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/state/choir", f->root);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(dir, sizeof(dir), "%s/state", f->root);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_string_equal(journal_path(f->j), f->path);
}

static void assert_open_fails(const char *path, const char *want1, const char *want2)
{
    struct journal *j = (void *)1;
    struct choir_error err = {0};

    assert_int_equal(journal_open(&j, path, &err), -1);
    assert_null(j);
    assert_int_equal(err.code, CHOIR_EXIT_INPUT);
    assert_contains(err.msg, want1);
    if (want2)
        assert_contains(err.msg, want2);
}

static void test_not_a_database(void **state)
{
    struct fx *f = *state;
    char path[700], *text = NULL;
    static const char junk[] = "this is a text file that someone named journal.db\n";
    FILE *fp;
    size_t len;

    snprintf(path, sizeof(path), "%s/junk.db", f->root);
    write_text(path, junk);
    assert_open_fails(path, path, "file is not a database");
    /* and it is left as it was */
    fp = fopen(path, "r");
    assert_non_null(fp);
    text = calloc(1, 256);
    len = fread(text, 1, 255, fp);
    fclose(fp);
    assert_int_equal(len, strlen(junk));
    assert_string_equal(text, junk);
    free(text);
}

static void test_foreign_database(void **state)
{
    struct fx *f = *state;
    char path[700];

    snprintf(path, sizeof(path), "%s/other.db", f->root);
    sql(path, "CREATE TABLE recipes (name TEXT); INSERT INTO recipes VALUES ('soup');");
    assert_open_fails(path, path, "not a choir journal");
}

static void test_unknown_schema_version(void **state)
{
    struct fx *f = *state;
    char msg[64];

    journal_close(f->j);
    f->j = NULL;
    sql(f->path, "UPDATE meta SET value = '7' WHERE key = 'schema_version';");
    snprintf(msg, sizeof(msg), "this choir knows version %d", JOURNAL_SCHEMA_VERSION);
    assert_open_fails(f->path, f->path, "schema version 7");
    assert_open_fails(f->path, msg, NULL);
    /* and the file was not touched: put the version back and it opens */
    sql(f->path, "UPDATE meta SET value = '1' WHERE key = 'schema_version';");
    f->j = open_ok(f->path);
}

static void test_uncreatable_directory(void **state)
{
    struct fx *f = *state;
    char file[400], path[800], dir[600], want[2048];

    /* a regular file where a directory should be: fails even for root */
    snprintf(file, sizeof(file), "%s/plain", f->root);
    write_text(file, "x");
    snprintf(dir, sizeof(dir), "%s/sub", file);
    snprintf(path, sizeof(path), "%s/journal.db", dir);
    snprintf(want, sizeof(want), "journal %s: cannot create directory %s: %s: Not a directory",
             path, dir, file);
    assert_open_fails(path, want, NULL);
    snprintf(path, sizeof(path), "%s/journal.db", file);
    snprintf(want, sizeof(want), "journal %s: cannot create directory %s: Not a directory", path,
             file);
    assert_open_fails(path, want, NULL);
    /* the journal path itself a directory */
    snprintf(path, sizeof(path), "%s/state", f->root);
    assert_open_fails(path, path, NULL);
}

static void test_oversized_text(void **state)
{
    struct fx *f = *state;
    size_t big = JOURNAL_TEXT_MAX + 1;
    char *detail = malloc(big + 1);
    struct journal_job job = {.id = "huge", .state = "s", .plan = NULL};
    struct seen s;
    struct choir_error err = {0};

    assert_non_null(detail);
    memset(detail, 'x', big);
    detail[big] = '\0';
    put_job(f->j, "j1", "running", 100);
    journal_event(f->j, "j1", 1, "engine", "a", "", "{}");
    journal_event(f->j, "j1", 2, "engine", "big", "", detail);
    job.plan = detail;
    journal_job_put(f->j, &job);
    journal_event(f->j, "j1", 3, "engine", "b", "", "{}");
    assert_int_equal(journal_pending(f->j), 3);
    assert_int_equal(journal_flush(f->j, &err), -1);
    free(detail);
    assert_contains(err.msg, f->path);
    assert_contains(err.msg, "an event detail of 16777217 bytes");
    assert_contains(err.msg, "16 MiB");
    assert_contains(err.msg, "and more");
    /* the rest was written; the refused writes were not */
    assert_int_equal(journal_pending(f->j), 0);
    assert_int_equal(count_jobs(f->j), 1);
    s = events_of(f->j, "j1", 0);
    assert_seqs(&s, 2, 1);
    assert_string_equal(s.kind[1], "b");
    /* reported once */
    flush_ok(f->j);
}

/* ---- the default path -------------------------------------------------------------- */

static void test_default_path(void **state)
{
    char *saved_xdg = getenv("XDG_STATE_HOME") ? strdup(getenv("XDG_STATE_HOME")) : NULL;
    char *saved_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    char *p;

    (void)state;
    setenv("XDG_STATE_HOME", "/srv/state", 1);
    setenv("HOME", "/home/rip", 1);
    p = journal_default_path();
    assert_string_equal(p, "/srv/state/choir/journal.db");
    free(p);
    setenv("XDG_STATE_HOME", "", 1);
    p = journal_default_path();
    assert_string_equal(p, "/home/rip/.local/state/choir/journal.db");
    free(p);
    setenv("XDG_STATE_HOME", "relative/state", 1); /* invalid per the XDG spec */
    p = journal_default_path();
    assert_string_equal(p, "/home/rip/.local/state/choir/journal.db");
    free(p);
    unsetenv("XDG_STATE_HOME");
    p = journal_default_path();
    assert_string_equal(p, "/home/rip/.local/state/choir/journal.db");
    free(p);

    if (saved_xdg)
        setenv("XDG_STATE_HOME", saved_xdg, 1);
    if (saved_home)
        setenv("HOME", saved_home, 1);
    else
        unsetenv("HOME");
    free(saved_xdg);
    free(saved_home);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX(test_round_trip),
        FX(test_values_survive),
        FX(test_last_put_wins),
        FX(test_nothing_before_flush),
        FX(test_empty_flush_is_noop),
        FX(test_failed_flush_keeps_batch),
        FX(test_seq_continues),
        FX(test_seq_two_writers),
        FX(test_list_order),
        FX(test_unknown_job),
        FX(test_nested_reads),
        FX(test_big_batch),
        FX(test_second_handle_reads),
        FX(test_reopen_keeps_everything),
        FX(test_killed_writer),
        FX(test_modes),
        FX(test_not_a_database),
        FX(test_foreign_database),
        FX(test_unknown_schema_version),
        FX(test_uncreatable_directory),
        FX(test_oversized_text),
        cmocka_unit_test(test_default_path),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
