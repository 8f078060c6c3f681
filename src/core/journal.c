/* journal.c - see journal.h.
 *
 * The file is an SQLite 3 database in WAL mode.  Schema version 1:
 *
 *   meta   (key TEXT PRIMARY KEY, value TEXT NOT NULL)
 *          -- one row: ('schema_version', '1')
 *   jobs   (id TEXT PRIMARY KEY, state, reason, caller, environment,
 *           plan TEXT,                       -- JSON: plan + options
 *           created_ms, updated_ms INTEGER)
 *   nodes  (job_id, node TEXT, group_idx, batch_idx INTEGER, state, reason,
 *           verdict, run_id TEXT, exit_code, locked, attempts INTEGER,
 *           failed TEXT,                     -- JSON array
 *           started_ms, finished_ms INTEGER,
 *           PRIMARY KEY (job_id, node))
 *   events (job_id TEXT, seq, time_ms INTEGER, actor, kind, node,
 *           detail TEXT,                     -- JSON object
 *           PRIMARY KEY (job_id, seq))
 *
 * Writes are copied into an in-memory batch (jobs and nodes keyed, so the
 * last put of one wins; events in order) and journal_flush writes the
 * batch in one BEGIN IMMEDIATE .. COMMIT with upserts.  Event seqs are
 * given out inside that write transaction, continuing from MAX(seq) of the
 * job as the database has it then, so a second writer (`choir unlock` in
 * another process) cannot make two events share a seq.  A failed flush
 * rolls back and keeps the batch, so a retry can succeed.
 *
 * Durability: synchronous=NORMAL in WAL mode means a committed flush
 * survives the process being killed (the WAL is in the kernel's page
 * cache); only a power loss may cost the last flushes, never consistency. */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/xalloc.h"

/* ---- statements ------------------------------------------------------------ */

#define JOURNAL_STATEMENTS(X)                                                          \
    X(ST_BEGIN, "BEGIN IMMEDIATE")                                                     \
    X(ST_COMMIT, "COMMIT")                                                             \
    X(ST_ROLLBACK, "ROLLBACK")                                                         \
    X(ST_JOB_PUT,                                                                      \
      "INSERT INTO jobs (id, state, reason, caller, environment, plan, created_ms,"    \
      " updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"                           \
      " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"                        \
      " reason = excluded.reason, caller = excluded.caller,"                           \
      " environment = excluded.environment, plan = excluded.plan,"                     \
      " created_ms = excluded.created_ms, updated_ms = excluded.updated_ms")           \
    X(ST_NODE_PUT,                                                                     \
      "INSERT INTO nodes (job_id, node, group_idx, batch_idx, state, reason, verdict," \
      " run_id, exit_code, locked, attempts, failed, started_ms, finished_ms)"         \
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"          \
      " ON CONFLICT (job_id, node) DO UPDATE SET group_idx = excluded.group_idx,"      \
      " batch_idx = excluded.batch_idx, state = excluded.state,"                       \
      " reason = excluded.reason, verdict = excluded.verdict,"                         \
      " run_id = excluded.run_id, exit_code = excluded.exit_code,"                     \
      " locked = excluded.locked, attempts = excluded.attempts,"                       \
      " failed = excluded.failed, started_ms = excluded.started_ms,"                   \
      " finished_ms = excluded.finished_ms")                                           \
    X(ST_EVENT_PUT,                                                                    \
      "INSERT INTO events (job_id, seq, time_ms, actor, kind, node, detail)"           \
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")                                          \
    X(ST_SEQ_MAX, "SELECT COALESCE(MAX(seq), 0) FROM events WHERE job_id = ?1")        \
    X(ST_JOB_EXISTS, "SELECT 1 FROM jobs WHERE id = ?1")                               \
    X(ST_JOBS,                                                                         \
      "SELECT id, state, reason, caller, environment, plan, created_ms, updated_ms"    \
      " FROM jobs ORDER BY created_ms DESC, rowid DESC")                               \
    X(ST_JOB_GET,                                                                      \
      "SELECT id, state, reason, caller, environment, plan, created_ms, updated_ms"    \
      " FROM jobs WHERE id = ?1")                                                      \
    X(ST_NODES,                                                                        \
      "SELECT job_id, node, group_idx, batch_idx, state, reason, verdict, run_id,"     \
      " exit_code, locked, attempts, failed, started_ms, finished_ms"                  \
      " FROM nodes WHERE job_id = ?1 ORDER BY group_idx, batch_idx, node")             \
    X(ST_EVENTS,                                                                       \
      "SELECT job_id, seq, time_ms, actor, kind, node, detail FROM events"             \
      " WHERE job_id = ?1 AND seq > ?2 ORDER BY seq")

enum journal_st {
#define JOURNAL_ST_ENUM(name, sql) name,
    JOURNAL_STATEMENTS(JOURNAL_ST_ENUM)
#undef JOURNAL_ST_ENUM
    ST_COUNT
};

static const char *const journal_sql[] = {
#define JOURNAL_ST_SQL(name, sql) sql,
    JOURNAL_STATEMENTS(JOURNAL_ST_SQL)
#undef JOURNAL_ST_SQL
};

static const char journal_schema_sql[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL,"
    " caller TEXT NOT NULL, environment TEXT NOT NULL, plan TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE nodes (job_id TEXT NOT NULL, node TEXT NOT NULL,"
    " group_idx INTEGER NOT NULL, batch_idx INTEGER NOT NULL, state TEXT NOT NULL,"
    " reason TEXT NOT NULL, verdict TEXT NOT NULL, run_id TEXT NOT NULL,"
    " exit_code INTEGER NOT NULL, locked INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " failed TEXT NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,"
    " PRIMARY KEY (job_id, node));"
    "CREATE TABLE events (job_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " time_ms INTEGER NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,"
    " node TEXT NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (job_id, seq));";

/* ---- the batch ---------------------------------------------------------------- */

struct pending_event {
    char *job_id, *actor, *kind, *node, *detail;
    long long time_ms;
};

struct journal {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];

    struct journal_job *jobs;       /* pending, one per id */
    size_t njobs, capjobs;
    struct journal_node *nodes;     /* pending, one per (job, node) */
    size_t nnodes, capnodes;
    uint32_t *node_index;           /* open addressing: index+1 into nodes, 0 = empty */
    size_t node_slots;              /* a power of two, or 0 */
    struct pending_event *events;   /* pending, in order */
    size_t nevents, capevents;

    size_t refused;                 /* puts refused since the last flush */
    char refused_msg[512];          /* the first of them */
};

static char *dup_or(const char *s, const char *dflt)
{
    return xstrdup(s ? s : dflt);
}

static const char *text_or(const unsigned char *s)
{
    return s ? (const char *)s : "";
}

/* Remembers a refused put; the next journal_flush reports it. */
static void refuse(struct journal *j, const char *what, const char *job_id, size_t len)
{
    if (j->refused++ == 0)
        snprintf(j->refused_msg, sizeof(j->refused_msg),
                 "journal %s: refused %s of %zu bytes for job %.64s (the limit is %u MiB)",
                 j->path, what, len, job_id ? job_id : "", JOURNAL_TEXT_MAX >> 20);
}

/* 0, or the length of the first string over JOURNAL_TEXT_MAX (names it in *what). */
static size_t too_long(const char *const *s, const char *const *names, size_t n, const char **what)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = s[i] ? strlen(s[i]) : 0;

        if (len > JOURNAL_TEXT_MAX) {
            *what = names[i];
            return len;
        }
    }
    return 0;
}

static void pending_event_clear(struct pending_event *e)
{
    free(e->job_id);
    free(e->actor);
    free(e->kind);
    free(e->node);
    free(e->detail);
}

static void batch_clear(struct journal *j)
{
    for (size_t i = 0; i < j->njobs; i++)
        journal_job_clear(&j->jobs[i]);
    for (size_t i = 0; i < j->nnodes; i++)
        journal_node_clear(&j->nodes[i]);
    for (size_t i = 0; i < j->nevents; i++)
        pending_event_clear(&j->events[i]);
    j->njobs = j->nnodes = j->nevents = 0;
    if (j->node_index)
        memset(j->node_index, 0, j->node_slots * sizeof(*j->node_index));
}

/* FNV-1a over job id, a NUL, node name. */
static uint32_t node_hash(const char *job_id, const char *node)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)job_id; *p; p++)
        h = (h ^ *p) * 16777619u;
    h *= 16777619u;
    for (const unsigned char *p = (const unsigned char *)node; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static uint32_t *node_slot(struct journal *j, const char *job_id, const char *node)
{
    size_t mask = j->node_slots - 1;

    for (size_t i = node_hash(job_id, node) & mask;; i = (i + 1) & mask) {
        uint32_t *slot = &j->node_index[i];
        const struct journal_node *n;

        if (!*slot)
            return slot;
        n = &j->nodes[*slot - 1];
        if (!strcmp(n->node, node) && !strcmp(n->job_id, job_id))
            return slot;
    }
}

/* Keeps the index at most half full. */
static void node_index_grow(struct journal *j)
{
    if (j->nnodes + 1 <= j->node_slots / 2)
        return;
    free(j->node_index);
    j->node_slots = j->node_slots ? j->node_slots * 2 : 1024;
    j->node_index = xcalloc(j->node_slots, sizeof(*j->node_index));
    for (size_t i = 0; i < j->nnodes; i++)
        *node_slot(j, j->nodes[i].job_id, j->nodes[i].node) = (uint32_t)(i + 1);
}

/* ---- errors --------------------------------------------------------------- */

/* A file that cannot be used is the operator's to fix; the rest is ours. */
static enum choir_exit sqlite_class(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_AUTH:
        return CHOIR_EXIT_INPUT;
    default:
        return CHOIR_EXIT_INTERNAL;
    }
}

static int sqlite_fail(const struct journal *j, struct choir_error *err)
{
    int rc = sqlite3_extended_errcode(j->db);

    error_set(err, sqlite_class(rc), "journal %s: %s", j->path, sqlite3_errmsg(j->db));
    return -1;
}

/* ---- opening -------------------------------------------------------------------- */

/* mkdir -p of the directory part of path, new directories 0700. */
static int make_parent(const char *path, struct choir_error *err)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int rc = 0;

    if (!slash || slash == dir) {
        free(dir);
        return 0;
    }
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        struct stat st;
        int last = (*p == '\0');

        if (*p != '/' && !last)
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && (errno != EEXIST || stat(dir, &st) != 0 ||
                                      !S_ISDIR(st.st_mode))) {
            int e = errno == EEXIST ? ENOTDIR : errno;

            if (last)
                error_set(err, CHOIR_EXIT_INPUT, "journal %s: cannot create directory %s: %s",
                          path, dir, strerror(e));
            else
                error_set(err, CHOIR_EXIT_INPUT,
                          "journal %s: cannot create directory %.*s: %s: %s", path,
                          (int)(slash - dir), path, dir, strerror(e));
            rc = -1;
            break;
        }
        if (last)
            break;
        *p = '/';
    }
    free(dir);
    return rc;
}

/* Creates the file 0600 before SQLite sees it (SQLite gives its -wal and
 * -shm files the database's mode). */
static int make_file(const char *path, struct choir_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "journal %s: %s", path, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

static int exec_sql(struct journal *j, const char *sql, struct choir_error *err)
{
    if (sqlite3_exec(j->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sqlite_fail(j, err);
    return 0;
}

/* What the file holds: -1 error, 0 empty, 1 a journal (its schema_version
 * text in version), 2 some other database. */
static int schema_probe(struct journal *j, char version[32], struct choir_error *err)
{
    sqlite3_stmt *st = NULL;
    int tables = 0, has_meta = 0, rc;

    if (sqlite3_prepare_v2(j->db, "SELECT name FROM sqlite_master WHERE type = 'table'", -1,
                           &st, NULL) != SQLITE_OK)
        return sqlite_fail(j, err);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tables++;
        if (!strcmp(text_or(sqlite3_column_text(st, 0)), "meta"))
            has_meta = 1;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sqlite_fail(j, err);
    if (!tables)
        return 0;
    if (!has_meta)
        return 2;
    if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = 'schema_version'", -1,
                           &st, NULL) != SQLITE_OK)
        return sqlite_fail(j, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(version, 32, "%.31s", text_or(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return 2;
    return sqlite_fail(j, err);
}

static int schema_create(struct journal *j, struct choir_error *err)
{
    char sql[128], version[32];
    int kind;

    if (exec_sql(j, "BEGIN IMMEDIATE", err) != 0)
        return -1;
    kind = schema_probe(j, version, err); /* again, now that we write alone */
    if (kind == 0) {
        snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES ('schema_version', '%d')",
                 JOURNAL_SCHEMA_VERSION);
        if (exec_sql(j, journal_schema_sql, err) != 0 || exec_sql(j, sql, err) != 0) {
            sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    if (kind < 0) {
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    if (exec_sql(j, "COMMIT", err) != 0) {
        sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

/* WAL mode, or an error: SQLite quietly keeps its rollback journal where
 * WAL cannot work (some network filesystems). */
static int wal_on(struct journal *j, struct choir_error *err)
{
    sqlite3_stmt *st = NULL;
    char mode[16] = "";
    int rc;

    if (sqlite3_prepare_v2(j->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(j, err);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(mode, sizeof(mode), "%.15s", text_or(sqlite3_column_text(st, 0)));
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return sqlite_fail(j, err);
    if (strcmp(mode, "wal")) {
        error_set(err, CHOIR_EXIT_INPUT, "journal %s: cannot use WAL mode here (SQLite stays in "
                  "%s mode)", j->path, mode);
        return -1;
    }
    return 0;
}

/* Checks (or, for an empty file, creates) the schema. */
static int schema_check(struct journal *j, struct choir_error *err)
{
    char version[32] = "", want[16];
    int kind = schema_probe(j, version, err);

    if (kind < 0)
        return -1;
    if (kind == 2) {
        error_set(err, CHOIR_EXIT_INPUT, "journal %s: not a choir journal (a database without its "
                  "schema_version)", j->path);
        return -1;
    }
    snprintf(want, sizeof(want), "%d", JOURNAL_SCHEMA_VERSION);
    if (kind == 1 && strcmp(version, want)) {
        error_set(err, CHOIR_EXIT_INPUT,
                  "journal %s: schema version %s, but this choir knows version %s", j->path,
                  version, want);
        return -1;
    }
    if (wal_on(j, err) != 0)
        return -1;
    if (kind == 0 && schema_create(j, err) != 0)
        return -1;
    if (kind == 0)
        return schema_check(j, err); /* another process may have won the race */
    return 0;
}

static int journal_prepare(struct journal *j, struct choir_error *err)
{
    for (int i = 0; i < ST_COUNT; i++)
        if (sqlite3_prepare_v3(j->db, journal_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &j->st[i],
                               NULL) != SQLITE_OK)
            return sqlite_fail(j, err);
    return 0;
}

int journal_open(struct journal **out, const char *path, struct choir_error *err)
{
    struct journal *j;

    *out = NULL;
    if (make_parent(path, err) != 0 || make_file(path, err) != 0)
        return -1;
    j = xcalloc(1, sizeof(*j));
    j->path = xstrdup(path);
    if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        if (j->db)
            sqlite_fail(j, err);
        else
            error_set(err, CHOIR_EXIT_INTERNAL, "journal %s: out of memory", path);
        journal_close(j);
        return -1;
    }
    sqlite3_extended_result_codes(j->db, 1);
    sqlite3_busy_timeout(j->db, 5000);
    if (schema_check(j, err) != 0 || exec_sql(j, "PRAGMA synchronous = NORMAL", err) != 0 ||
        journal_prepare(j, err) != 0) {
        journal_close(j);
        return -1;
    }
    *out = j;
    return 0;
}

void journal_close(struct journal *j)
{
    if (!j)
        return;
    batch_clear(j);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(j->st[i]);
    sqlite3_close(j->db);
    free(j->jobs);
    free(j->nodes);
    free(j->node_index);
    free(j->events);
    free(j->path);
    free(j);
}

const char *journal_path(const struct journal *j)
{
    return j->path;
}

/* ---- buffered writes ---------------------------------------------------------- */

static void job_copy(struct journal_job *dst, const struct journal_job *src)
{
    dst->id = dup_or(src->id, "");
    dst->state = dup_or(src->state, "");
    dst->reason = dup_or(src->reason, "");
    dst->caller = dup_or(src->caller, "");
    dst->environment = dup_or(src->environment, "");
    dst->plan = dup_or(src->plan, "{}");
    dst->created_ms = src->created_ms;
    dst->updated_ms = src->updated_ms;
}

void journal_job_put(struct journal *j, const struct journal_job *job)
{
    const char *s[] = {job->id, job->state, job->reason, job->caller, job->environment, job->plan};
    static const char *const names[] = {"a job id", "a job state", "a job reason", "a job caller",
                                        "a job environment", "a job plan"};
    const char *what = NULL;
    size_t len = too_long(s, names, 6, &what), i;

    if (len) {
        refuse(j, what, job->id, len);
        return;
    }
    for (i = 0; i < j->njobs; i++)
        if (!strcmp(j->jobs[i].id, job->id ? job->id : ""))
            break;
    if (i < j->njobs) {
        journal_job_clear(&j->jobs[i]);
    } else {
        if (j->njobs == j->capjobs) {
            j->capjobs = j->capjobs ? j->capjobs * 2 : 4;
            j->jobs = xreallocarray(j->jobs, j->capjobs, sizeof(*j->jobs));
        }
        j->njobs++;
    }
    job_copy(&j->jobs[i], job);
}

static void node_copy(struct journal_node *dst, const struct journal_node *src)
{
    dst->job_id = dup_or(src->job_id, "");
    dst->node = dup_or(src->node, "");
    dst->group = src->group;
    dst->batch = src->batch;
    dst->state = dup_or(src->state, "");
    dst->reason = dup_or(src->reason, "");
    dst->verdict = dup_or(src->verdict, "");
    dst->run_id = dup_or(src->run_id, "");
    dst->exit_code = src->exit_code;
    dst->locked = src->locked;
    dst->attempts = src->attempts;
    dst->failed = dup_or(src->failed, "[]");
    dst->started_ms = src->started_ms;
    dst->finished_ms = src->finished_ms;
}

void journal_node_put(struct journal *j, const struct journal_node *node)
{
    const char *s[] = {node->job_id, node->node, node->state, node->reason, node->verdict,
                       node->run_id, node->failed};
    static const char *const names[] = {"a job id", "a node name", "a node state",
                                        "a node reason", "a verdict", "a run id",
                                        "a failed-resources list"};
    const char *what = NULL;
    size_t len = too_long(s, names, 7, &what);
    uint32_t *slot;

    if (len) {
        refuse(j, what, node->job_id, len);
        return;
    }
    if (j->nnodes >= UINT32_MAX - 1)
        abort(); /* four billion distinct nodes in one batch: a bug */
    node_index_grow(j);
    slot = node_slot(j, node->job_id ? node->job_id : "", node->node ? node->node : "");
    if (*slot) {
        journal_node_clear(&j->nodes[*slot - 1]);
        node_copy(&j->nodes[*slot - 1], node);
        return;
    }
    if (j->nnodes == j->capnodes) {
        j->capnodes = j->capnodes ? j->capnodes * 2 : 64;
        j->nodes = xreallocarray(j->nodes, j->capnodes, sizeof(*j->nodes));
    }
    node_copy(&j->nodes[j->nnodes], node);
    *slot = (uint32_t)++j->nnodes;
}

void journal_event(struct journal *j, const char *job_id, long long time_ms, const char *actor,
                   const char *kind, const char *node, const char *detail_json)
{
    const char *s[] = {job_id, actor, kind, node, detail_json};
    static const char *const names[] = {"a job id", "an event actor", "an event kind",
                                        "an event node", "an event detail"};
    const char *what = NULL;
    size_t len = too_long(s, names, 5, &what);
    struct pending_event *e;

    if (len) {
        refuse(j, what, job_id, len);
        return;
    }
    if (j->nevents == j->capevents) {
        j->capevents = j->capevents ? j->capevents * 2 : 64;
        j->events = xreallocarray(j->events, j->capevents, sizeof(*j->events));
    }
    e = &j->events[j->nevents++];
    e->job_id = dup_or(job_id, "");
    e->time_ms = time_ms;
    e->actor = dup_or(actor, "");
    e->kind = dup_or(kind, "");
    e->node = dup_or(node, "");
    e->detail = dup_or(detail_json, "{}");
}

size_t journal_pending(const struct journal *j)
{
    return j->njobs + j->nnodes + j->nevents;
}

/* ---- flush ------------------------------------------------------------------- */

/* Steps a write statement once and resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int flush_jobs(struct journal *j)
{
    sqlite3_stmt *st = j->st[ST_JOB_PUT];

    for (size_t i = 0; i < j->njobs; i++) {
        const struct journal_job *b = &j->jobs[i];

        sqlite3_bind_text(st, 1, b->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b->state, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, b->reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, b->caller, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, b->environment, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, b->plan, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, b->created_ms);
        sqlite3_bind_int64(st, 8, b->updated_ms);
        if (step_done(st) != 0)
            return -1;
    }
    return 0;
}

static int flush_nodes(struct journal *j)
{
    sqlite3_stmt *st = j->st[ST_NODE_PUT];

    for (size_t i = 0; i < j->nnodes; i++) {
        const struct journal_node *b = &j->nodes[i];

        sqlite3_bind_text(st, 1, b->job_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, b->node, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, b->group);
        sqlite3_bind_int(st, 4, b->batch);
        sqlite3_bind_text(st, 5, b->state, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, b->reason, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, b->verdict, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, b->run_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 9, b->exit_code);
        sqlite3_bind_int(st, 10, b->locked);
        sqlite3_bind_int(st, 11, b->attempts);
        sqlite3_bind_text(st, 12, b->failed, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 13, b->started_ms);
        sqlite3_bind_int64(st, 14, b->finished_ms);
        if (step_done(st) != 0)
            return -1;
    }
    return 0;
}

/* The last seq the database has for job_id (inside the write transaction). */
static int seq_max(struct journal *j, const char *job_id, long long *seq)
{
    sqlite3_stmt *st = j->st[ST_SEQ_MAX];
    int rc;

    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *seq = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

struct seq_cache {
    const char *job_id; /* borrowed from the batch */
    long long last;
};

static int flush_events(struct journal *j)
{
    sqlite3_stmt *st = j->st[ST_EVENT_PUT];
    struct seq_cache *cache = NULL, *c = NULL;
    size_t ncache = 0;
    int rc = 0;

    for (size_t i = 0; i < j->nevents && rc == 0; i++) {
        const struct pending_event *e = &j->events[i];

        if (!c || strcmp(c->job_id, e->job_id)) {
            size_t k;

            for (k = 0; k < ncache && strcmp(cache[k].job_id, e->job_id); k++)
                ;
            if (k == ncache) {
                cache = xreallocarray(cache, ncache + 1, sizeof(*cache));
                cache[k].job_id = e->job_id;
                if (seq_max(j, e->job_id, &cache[k].last) != 0) {
                    rc = -1;
                    break;
                }
                ncache++;
            }
            c = &cache[k];
        }
        sqlite3_bind_text(st, 1, e->job_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, ++c->last);
        sqlite3_bind_int64(st, 3, e->time_ms);
        sqlite3_bind_text(st, 4, e->actor, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, e->kind, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, e->node, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, e->detail, -1, SQLITE_STATIC);
        rc = step_done(st);
    }
    free(cache);
    return rc;
}

static int flush_refused(struct journal *j, struct choir_error *err)
{
    if (!j->refused)
        return 0;
    error_set(err, CHOIR_EXIT_INTERNAL, "%s%s", j->refused_msg,
              j->refused > 1 ? ", and more" : "");
    j->refused = 0;
    return -1;
}

int journal_flush(struct journal *j, struct choir_error *err)
{
    if (!journal_pending(j))
        return flush_refused(j, err);
    if (step_done(j->st[ST_BEGIN]) != 0)
        return sqlite_fail(j, err);
    if (flush_jobs(j) != 0 || flush_nodes(j) != 0 || flush_events(j) != 0 ||
        step_done(j->st[ST_COMMIT]) != 0) {
        sqlite_fail(j, err);
        if (!sqlite3_get_autocommit(j->db))
            step_done(j->st[ST_ROLLBACK]);
        return -1; /* the batch stays for a retry */
    }
    batch_clear(j);
    return flush_refused(j, err);
}

/* ---- reads ---------------------------------------------------------------------- */

/* The kept statement, or a fresh one when it is in use (a read from inside
 * a journal_events callback).  Release with stmt_release. */
static sqlite3_stmt *stmt_get(struct journal *j, enum journal_st which, struct choir_error *err)
{
    sqlite3_stmt *st = j->st[which];

    if (!sqlite3_stmt_busy(st))
        return st;
    if (sqlite3_prepare_v2(j->db, journal_sql[which], -1, &st, NULL) != SQLITE_OK) {
        sqlite_fail(j, err);
        return NULL;
    }
    return st;
}

static void stmt_release(struct journal *j, enum journal_st which, sqlite3_stmt *st)
{
    if (st == j->st[which]) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    } else {
        sqlite3_finalize(st);
    }
}

static int no_job(struct journal *j, const char *id, struct choir_error *err)
{
    error_set(err, CHOIR_EXIT_INPUT, "no job %s in %s", id, j->path);
    return -1;
}

/* 1 when the job is in the database, 0 when not (err set), -1 on error. */
static int job_exists(struct journal *j, const char *id, struct choir_error *err)
{
    sqlite3_stmt *st = stmt_get(j, ST_JOB_EXISTS, err);
    int rc;

    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    stmt_release(j, ST_JOB_EXISTS, st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc == SQLITE_DONE)
        return no_job(j, id, err) + 1;
    return sqlite_fail(j, err);
}

static char *col_dup(sqlite3_stmt *st, int col)
{
    return xstrdup(text_or(sqlite3_column_text(st, col)));
}

static void job_from_row(sqlite3_stmt *st, struct journal_job *job)
{
    job->id = col_dup(st, 0);
    job->state = col_dup(st, 1);
    job->reason = col_dup(st, 2);
    job->caller = col_dup(st, 3);
    job->environment = col_dup(st, 4);
    job->plan = col_dup(st, 5);
    job->created_ms = sqlite3_column_int64(st, 6);
    job->updated_ms = sqlite3_column_int64(st, 7);
}

static void node_from_row(sqlite3_stmt *st, struct journal_node *node)
{
    node->job_id = col_dup(st, 0);
    node->node = col_dup(st, 1);
    node->group = sqlite3_column_int(st, 2);
    node->batch = sqlite3_column_int(st, 3);
    node->state = col_dup(st, 4);
    node->reason = col_dup(st, 5);
    node->verdict = col_dup(st, 6);
    node->run_id = col_dup(st, 7);
    node->exit_code = sqlite3_column_int(st, 8);
    node->locked = sqlite3_column_int(st, 9);
    node->attempts = sqlite3_column_int(st, 10);
    node->failed = col_dup(st, 11);
    node->started_ms = sqlite3_column_int64(st, 12);
    node->finished_ms = sqlite3_column_int64(st, 13);
}

int journal_jobs(struct journal *j, struct journal_job **out, size_t *n, struct choir_error *err)
{
    sqlite3_stmt *st = stmt_get(j, ST_JOBS, err);
    struct journal_job *jobs = NULL;
    size_t count = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            jobs = xreallocarray(jobs, cap, sizeof(*jobs));
        }
        job_from_row(st, &jobs[count++]);
    }
    if (rc != SQLITE_DONE) {
        sqlite_fail(j, err);
        stmt_release(j, ST_JOBS, st);
        journal_jobs_free(jobs, count);
        return -1;
    }
    stmt_release(j, ST_JOBS, st);
    *out = jobs;
    *n = count;
    return 0;
}

int journal_job_get(struct journal *j, const char *id, struct journal_job *out,
                    struct choir_error *err)
{
    sqlite3_stmt *st = stmt_get(j, ST_JOB_GET, err);
    int rc;

    memset(out, 0, sizeof(*out));
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        job_from_row(st, out);
    else if (rc == SQLITE_DONE)
        no_job(j, id, err);
    else
        sqlite_fail(j, err);
    stmt_release(j, ST_JOB_GET, st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int journal_nodes(struct journal *j, const char *id, struct journal_node **out, size_t *n,
                  struct choir_error *err)
{
    sqlite3_stmt *st;
    struct journal_node *nodes = NULL;
    size_t count = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (job_exists(j, id, err) != 1 || !(st = stmt_get(j, ST_NODES, err)))
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            nodes = xreallocarray(nodes, cap, sizeof(*nodes));
        }
        node_from_row(st, &nodes[count++]);
    }
    if (rc != SQLITE_DONE) {
        sqlite_fail(j, err);
        stmt_release(j, ST_NODES, st);
        journal_nodes_free(nodes, count);
        return -1;
    }
    stmt_release(j, ST_NODES, st);
    *out = nodes;
    *n = count;
    return 0;
}

int journal_events(struct journal *j, const char *id, long long after,
                   int (*fn)(void *ctx, const struct journal_event *ev), void *ctx,
                   struct choir_error *err)
{
    sqlite3_stmt *st;
    int rc;

    if (job_exists(j, id, err) != 1 || !(st = stmt_get(j, ST_EVENTS, err)))
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, after);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct journal_event ev = {
            .job_id = (char *)text_or(sqlite3_column_text(st, 0)),
            .seq = sqlite3_column_int64(st, 1),
            .time_ms = sqlite3_column_int64(st, 2),
            .actor = (char *)text_or(sqlite3_column_text(st, 3)),
            .kind = (char *)text_or(sqlite3_column_text(st, 4)),
            .node = (char *)text_or(sqlite3_column_text(st, 5)),
            .detail = (char *)text_or(sqlite3_column_text(st, 6)),
        };

        if (fn(ctx, &ev) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    if (rc != SQLITE_DONE)
        sqlite_fail(j, err);
    stmt_release(j, ST_EVENTS, st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- freeing -------------------------------------------------------------------- */

void journal_job_clear(struct journal_job *job)
{
    if (!job)
        return;
    free(job->id);
    free(job->state);
    free(job->reason);
    free(job->caller);
    free(job->environment);
    free(job->plan);
    memset(job, 0, sizeof(*job));
}

void journal_jobs_free(struct journal_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        journal_job_clear(&jobs[i]);
    free(jobs);
}

void journal_node_clear(struct journal_node *node)
{
    if (!node)
        return;
    free(node->job_id);
    free(node->node);
    free(node->state);
    free(node->reason);
    free(node->verdict);
    free(node->run_id);
    free(node->failed);
    memset(node, 0, sizeof(*node));
}

void journal_nodes_free(struct journal_node *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        journal_node_clear(&nodes[i]);
    free(nodes);
}

/* ---- the default path ---------------------------------------------------------- */

static char *path_join(const char *base, const char *rest)
{
    size_t n = strlen(base) + strlen(rest) + 1;
    char *p = xmalloc(n);

    snprintf(p, n, "%s%s", base, rest);
    return p;
}

char *journal_default_path(void)
{
    const char *state = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");

    /* The XDG spec: a relative XDG_STATE_HOME is invalid and ignored. */
    if (state && state[0] == '/')
        return path_join(state, "/choir/journal.db");
    if (!home || !*home) {
        const struct passwd *pw = getpwuid(getuid());

        home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    return home ? path_join(home, "/.local/state/choir/journal.db") : NULL;
}
