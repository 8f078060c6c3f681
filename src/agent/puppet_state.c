/* puppet_state.c - see puppet_state.h. */
#include "agent/puppet_state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/puppet_yaml.h"
#include "agent/runcmd.h"
#include "agent/validate.h"
#include "core/file.h"
#include "core/xalloc.h"

#define PID_FILE_MAX 4096          /* a pid file is a number and a newline */
#define STATEDIR_MODE 01755        /* Puppet's statedir */
#define PARENT_MODE 0755           /* Puppet's vardir, rundir, publicdir */
#define LOCKFILE_MODE 0644         /* what Puppet 7 leaves on the lock */
#define SENTENCE_MAX 2048
#define WHY_MAX 256

static const char *const status_names[] = {
#define PUPPET_STATE_NAME(name, text) text,
    PUPPET_STATE_STATUSES(PUPPET_STATE_NAME)
#undef PUPPET_STATE_NAME
};

const char *puppet_state_status_name(enum puppet_state_status s)
{
    if ((size_t)s >= sizeof(status_names) / sizeof(status_names[0]))
        return "unknown";
    return status_names[s];
}

/* ---- pids and locks ------------------------------------------------------ */

/* The pid in a pid or lock file (surrounding white space allowed), or 0. */
static pid_t pidfile_pid(const char *path)
{
    char *buf, *p, *end;
    size_t len;
    long v;

    if (!path || file_read(path, PID_FILE_MAX, &buf, &len) != 0)
        return 0;
    for (p = buf; *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'; p++)
        ;
    errno = 0;
    v = (*p >= '0' && *p <= '9') ? strtol(p, &end, 10) : 0;
    if (v > 0)
        for (; *end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'; end++)
            ;
    if (v <= 0 || errno || *end || v > INT_MAX || end != buf + len)
        v = 0;
    free(buf);
    return (pid_t)v;
}

/* kill(pid, 0): alive, or alive but not ours (EPERM). */
static bool pid_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* Puppet's File.exist?: the path stats. */
static bool path_exists(const char *path)
{
    struct stat st;

    return path && stat(path, &st) == 0;
}

/* A copy of s cut to at most max bytes on a UTF-8 character boundary. */
static char *utf8_cut(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len <= max)
        return xstrdup(s);
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return xstrndup(s, max);
}

/* The lock's disabled_message, "" for an empty, non-JSON or keyless lock. */
static char *lock_message(const char *path)
{
    json_t *doc, *msg;
    char *buf, *out;
    size_t len;

    if (file_read(path, PUPPET_STATE_LOCK_MAX, &buf, &len) != 0)
        return xstrdup("");
    doc = len ? json_loadb(buf, len, 0, NULL) : NULL;
    msg = json_is_object(doc) ? json_object_get(doc, "disabled_message") : NULL;
    out = utf8_cut(json_is_string(msg) ? json_string_value(msg) : "", PUPPET_STATE_SHOWN_MAX);
    json_decref(doc);
    free(buf);
    return out;
}

/* ---- the summary's last_run ---------------------------------------------- */

/* Leading spaces of a line (YAML indents with spaces only). */
static size_t indent_of(const char *s, size_t len)
{
    size_t i = 0;

    while (i < len && s[i] == ' ')
        i++;
    return i;
}

/* True when s[0..len) is `key:` followed by the end, a space or a comment. */
static bool is_key(const char *s, size_t len, const char *key)
{
    size_t k = strlen(key);

    return len > k && memcmp(s, key, k) == 0 && s[k] == ':' &&
           (len == k + 1 || s[k + 1] == ' ' || s[k + 1] == '#');
}

/* A non-negative decimal integer, optionally quoted, with optional trailing
 * spaces and comment; 0 when the text is anything else. */
static long long yaml_integer(const char *s, size_t len)
{
    long long v = 0;
    size_t i = 0, digits = 0;
    char quote = 0;

    while (i < len && s[i] == ' ')
        i++;
    if (i < len && (s[i] == '"' || s[i] == '\''))
        quote = s[i++];
    for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (v > (LLONG_MAX - 9) / 10)
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    if (quote && (i >= len || s[i++] != quote))
        return 0;
    while (i < len && s[i] == ' ')
        i++;
    if (!digits || (i < len && s[i] != '#'))
        return 0;
    return v;
}

struct lastrun_scan {
    long top;          /* indent of the top-level keys, -1 before the first */
    long child;        /* indent of time's keys, -1 before the first */
    bool in_time;
};

/* Looks at one line; returns true with *value once last_run is found. */
static bool lastrun_line(struct lastrun_scan *sc, const char *line, size_t len, long long *value)
{
    size_t ind = indent_of(line, len);
    const char *s = line + ind;
    size_t rest = len - ind;

    if (rest == 0 || s[0] == '#' || (ind == 0 && len >= 3 &&
                                     (!memcmp(line, "---", 3) || !memcmp(line, "...", 3))))
        return false;
    if (sc->top < 0)
        sc->top = (long)ind;
    if (sc->in_time && (long)ind > sc->top) {
        if (sc->child < 0)
            sc->child = (long)ind;
        if ((long)ind == sc->child && is_key(s, rest, "last_run")) {
            *value = yaml_integer(s + 9, rest - 9);
            return true;
        }
        return false;
    }
    sc->in_time = (long)ind == sc->top && is_key(s, rest, "time");
    sc->child = -1;
    return false;
}

long long puppet_state_lastrun_text(const char *text, size_t len)
{
    struct lastrun_scan sc = {-1, -1, false};
    const char *end = text + len, *line = text;
    long long value = 0;

    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl ? nl : end) - line);

        if (n && line[n - 1] == '\r')
            n--;
        if (lastrun_line(&sc, line, n, &value))
            return value;
        line = nl ? nl + 1 : end;
    }
    return 0;
}

long long puppet_state_lastrun(const char *summary_path)
{
    long long v;
    char *buf;
    size_t len;

    if (!summary_path || file_read(summary_path, PUPPET_STATE_SUMMARY_MAX, &buf, &len) != 0)
        return 0;
    v = puppet_state_lastrun_text(buf, len);
    free(buf);
    return v;
}

/* ---- status ------------------------------------------------------------------ */

void puppet_state_duration(long long seconds, char *buf, size_t n)
{
    static const struct { const char *name; long long size; } units[] = {
        {"day", 86400}, {"hour", 3600}, {"minute", 60}, {"second", 1},
    };
    size_t i, used = 0;

    if (n == 0)
        return;
    buf[0] = '\0';
    if (seconds <= 0) {
        snprintf(buf, n, "0 seconds");
        return;
    }
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        long long count = seconds / units[i].size;
        int w;

        seconds %= units[i].size;
        if (count == 0)
            continue;
        w = snprintf(buf + used, n - used, "%s%lld %s%s", used ? " " : "", count, units[i].name,
                     count == 1 ? "" : "s");
        if (w < 0 || (size_t)w >= n - used)
            return;
        used += (size_t)w;
    }
}

static enum puppet_state_status status_of(const struct puppet_state_info *info)
{
    if (!info->enabled)
        return PUPPET_STATE_DISABLED;
    if (info->applying)
        return PUPPET_STATE_APPLYING;
    if (info->idling)
        return PUPPET_STATE_IDLING;
    return PUPPET_STATE_STOPPED;
}

/* A copy with control characters turned into spaces, for one-line text. */
static char *one_line(const char *s)
{
    char *out = xstrdup(s), *c;

    for (c = out; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = ' ';
    return out;
}

/* "Currently <what>; last completed run <when>". */
static char *status_sentence(const struct puppet_state_info *info)
{
    char what[SENTENCE_MAX], when[128], out[SENTENCE_MAX + 160];
    char *reason = one_line(info->disable_message);

    if (info->status != PUPPET_STATE_DISABLED)
        snprintf(what, sizeof(what), "%s", puppet_state_status_name(info->status));
    else
        snprintf(what, sizeof(what), "disabled%s%s%s", reason[0] ? ": " : " (no reason given)",
                 reason, info->applying ? " (a catalog run is still applying)" : "");
    free(reason);
    if (info->lastrun <= 0)
        snprintf(when, sizeof(when), "no completed run recorded");
    else {
        char dur[96];

        puppet_state_duration(info->since_lastrun, dur, sizeof(dur));
        snprintf(when, sizeof(when), "last completed run %s ago", dur);
    }
    snprintf(out, sizeof(out), "Currently %s; %s", what, when);
    return xstrdup(out);
}

void puppet_state_status(const struct puppet_paths *p, time_t now,
                         struct puppet_state_info *info)
{
    memset(info, 0, sizeof(*info));
    info->enabled = !path_exists(p->agent_disabled_lockfile);
    info->disable_message = info->enabled ? xstrdup("") : lock_message(p->agent_disabled_lockfile);
    info->applying = pid_alive(pidfile_pid(p->agent_catalog_run_lockfile));
    info->daemon_present = pid_alive(pidfile_pid(p->pidfile));
    info->idling = info->daemon_present && !info->applying;
    info->lastrun = puppet_state_lastrun(p->lastrunfile);
    info->since_lastrun = (long long)now - info->lastrun;
    info->status = status_of(info);
    info->message = status_sentence(info);
}

void puppet_state_mark_applying(struct puppet_state_info *info)
{
    info->applying = true;
    info->idling = false;
    info->status = status_of(info);
    free(info->message);
    info->message = status_sentence(info);
}

void puppet_state_info_done(struct puppet_state_info *info)
{
    free(info->disable_message);
    free(info->message);
    info->disable_message = info->message = NULL;
}

json_t *puppet_state_info_json(const struct puppet_state_info *info)
{
    return json_pack("{s:b, s:b, s:b, s:b, s:I, s:I, s:s, s:s, s:s}",
                     "applying", info->applying, "idling", info->idling,
                     "enabled", info->enabled, "daemon_present", info->daemon_present,
                     "lastrun", (json_int_t)info->lastrun,
                     "since_lastrun", (json_int_t)info->since_lastrun,
                     "status", puppet_state_status_name(info->status),
                     "disable_message", info->disable_message,
                     "message", info->message);
}

/* ---- disable and enable ---------------------------------------------------- */

/* The directory part of path ("/" for "/x"). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (!slash || slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

/* mkdir with an exact mode (umask ignored); EEXIST is fine. */
static int make_dir(const char *dir, mode_t mode, struct choir_error *err)
{
    if (mkdir(dir, mode) == 0) {
        if (chmod(dir, mode) == 0)
            return 0;
    } else if (errno == EEXIST) {
        return 0;
    }
    error_set(err, CHOIR_EXIT_INPUT, "cannot create directory %s: %s", dir, strerror(errno));
    return -1;
}

/* mkdir -p: missing parents 0755, dir itself 01755; then dir must be a
 * directory. */
static int ensure_dir(const char *dir, struct choir_error *err)
{
    char *buf = xstrdup(dir), *s;
    struct stat st;
    int rc = 0;

    for (s = buf + 1; rc == 0 && (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (stat(buf, &st) != 0)
            rc = make_dir(buf, PARENT_MODE, err);
        *s = '/';
    }
    if (rc == 0 && stat(buf, &st) != 0)
        rc = make_dir(buf, STATEDIR_MODE, err);
    if (rc == 0 && (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
        error_set(err, CHOIR_EXIT_INPUT, "%s is not a directory", buf);
        rc = -1;
    }
    free(buf);
    return rc;
}

/* Writes all of text to fd. */
static int write_all(int fd, const char *text, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, text, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        text += w;
        len -= (size_t)w;
    }
    return 0;
}

/* A new file "DIR/.BASE.XXXXXX" holding text, fsynced, mode 0644; its
 * path is returned (heap), or NULL with err filled. */
static char *write_temp(const char *dir, const char *lockpath, const char *text,
                        struct choir_error *err)
{
    const char *base = strrchr(lockpath, '/') ? strrchr(lockpath, '/') + 1 : lockpath;
    size_t size = strlen(dir) + strlen(base) + 16;
    char *tmp = xmalloc(size);
    int fd, e;

    snprintf(tmp, size, "%s/.%s.XXXXXX", dir, base);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create a file in %s: %s", dir, strerror(errno));
        free(tmp);
        return NULL;
    }
    if (write_all(fd, text, strlen(text)) == 0 && fchmod(fd, LOCKFILE_MODE) == 0 &&
        fsync(fd) == 0 && close(fd) == 0)
        return tmp;
    e = errno;
    close(fd);
    unlink(tmp);
    error_set(err, CHOIR_EXIT_INPUT, "cannot write %s: %s", tmp, strerror(e));
    free(tmp);
    return NULL;
}

/* fsync of a directory, so the new name survives a crash (best effort). */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Puts tmp in place as path only if path does not exist. */
static int publish(const char *tmp, const char *path, struct choir_error *err)
{
    if (link(tmp, path) == 0)
        return PUPPET_STATE_DONE;
    if (errno == EEXIST)
        return PUPPET_STATE_ALREADY;
    if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS && errno != EMLINK) {
        error_set(err, CHOIR_EXIT_INPUT, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (path_exists(path))
        return PUPPET_STATE_ALREADY;
    if (rename(tmp, path) == 0)
        return PUPPET_STATE_DONE;
    error_set(err, CHOIR_EXIT_INPUT, "cannot create %s: %s", path, strerror(errno));
    return -1;
}

/* The lock text Puppet writes: {"disabled_message":"..."}, no newline. */
static char *lock_text(const char *message, struct choir_error *err)
{
    json_t *doc = json_pack("{s:s}", "disabled_message", message);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

    json_decref(doc);
    if (!text)
        error_set(err, CHOIR_EXIT_INPUT, "the message is not valid UTF-8");
    return text;
}

int puppet_state_disable(const struct puppet_paths *p, const char *message,
                         struct choir_error *err)
{
    const char *path = p->agent_disabled_lockfile;
    char *dir, *text, *tmp = NULL;
    int rc = -1;

    if (!path) {
        error_set(err, CHOIR_EXIT_INPUT, "the agent_disabled_lockfile path is not known");
        return -1;
    }
    if (path_exists(path))
        return PUPPET_STATE_ALREADY;
    if (!(text = lock_text(message, err)))
        return -1;
    dir = dir_of(path);
    if (ensure_dir(dir, err) == 0 && (tmp = write_temp(dir, path, text, err))) {
        rc = publish(tmp, path, err);
        unlink(tmp);
        if (rc == PUPPET_STATE_DONE)
            sync_dir(dir);
    }
    free(tmp);
    free(dir);
    free(text);
    return rc;
}

int puppet_state_enable(const struct puppet_paths *p, struct choir_error *err)
{
    const char *path = p->agent_disabled_lockfile;

    if (!path) {
        error_set(err, CHOIR_EXIT_INPUT, "the agent_disabled_lockfile path is not known");
        return -1;
    }
    if (unlink(path) == 0) {
        char *dir = dir_of(path);

        sync_dir(dir);
        free(dir);
        return PUPPET_STATE_DONE;
    }
    if (errno == ENOENT)
        return PUPPET_STATE_ALREADY;
    error_set(err, CHOIR_EXIT_INPUT, "cannot remove %s: %s", path, strerror(errno));
    return -1;
}

/* ---- the RPC face ---------------------------------------------------------- */

enum agent_input_type { AGENT_INPUT_STRING, AGENT_INPUT_BOOLEAN, AGENT_INPUT_INTEGER };

struct agent_input {
    const char *name;
    enum agent_input_type type;
    bool optional;
    size_t maxlength;          /* characters; 0 = no limit (booleans) */
    validate_fn *validate;     /* string rule, or NULL */
};

/* A handler fills out and msg and returns the statuscode. */
typedef int agent_handler(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                          size_t n);

struct agent_action {
    const char *name;
    agent_handler *handler;
    const struct agent_input *inputs; /* terminated by a NULL name */
};

static void msg_set(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void msg_set(char *msg, size_t n, const char *fmt, ...)
{
    va_list ap;

    if (!msg || n == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
}

static int handle_status(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                         size_t n)
{
    const char *job = a->running ? a->running(a->ctx) : NULL;
    struct puppet_state_info info;
    json_t *data;

    (void)in;
    puppet_state_status(a->paths, time(NULL), &info);
    if (job && !info.applying)
        puppet_state_mark_applying(&info);
    data = puppet_state_info_json(&info);
    puppet_state_info_done(&info);
    if (!data) {
        msg_set(msg, n, "could not build the status reply");
        return AGENT_UNKNOWN_ERROR;
    }
    json_object_update(out, data);
    json_decref(data);
    if (job)
        json_object_set_new(out, "job_id", json_string(job));
    msg_set(msg, n, "OK");
    return AGENT_OK;
}

/* The message for a disable without one (the Choria agent also names the
 * caller, which the RPC layer knows and may pass as `message`). */
static void default_disable_message(char *buf, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;
    char when[32] = "";

    if (localtime_r(&now, &tm))
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
    snprintf(buf, n, "Disabled via choird at %s", when);
}

/* A JSON string of text; bytes that are not valid UTF-8 (a path, a cut
 * sentence) become '?'. */
static json_t *text_json(char *text)
{
    json_t *j = json_string(text);
    char *c;

    if (j)
        return j;
    for (c = text; *c; c++)
        if ((unsigned char)*c >= 0x80)
            *c = '?';
    return json_string(text);
}

/* Sets the `status` output and the statusmsg to the same sentence. */
static void reply_status(json_t *out, char *msg, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_status(json_t *out, char *msg, size_t n, const char *fmt, ...)
{
    char text[SENTENCE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    json_object_set_new(out, "status", text_json(text));
    msg_set(msg, n, "%s", text);
}

static int handle_disable(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                          size_t n)
{
    const struct puppet_paths *p = a->paths;
    const char *given = json_string_value(json_object_get(in, "message"));
    char message[SENTENCE_MAX], *held;
    struct choir_error err = {0, ""};
    int rc, code = AGENT_ABORTED;

    if (given && *given)
        snprintf(message, sizeof(message), "%s", given);
    else
        default_disable_message(message, sizeof(message));
    rc = puppet_state_disable(p, message, &err);
    if (rc == PUPPET_STATE_DONE) {
        reply_status(out, msg, n, "Successfully locked the Puppet agent: %s", message);
        code = AGENT_OK;
    } else if (rc == PUPPET_STATE_ALREADY) {
        held = lock_message(p->agent_disabled_lockfile);
        reply_status(out, msg, n, "Could not disable Puppet: already disabled%s%s",
                     held[0] ? ": " : "", held);
        free(held);
    } else {
        reply_status(out, msg, n, "Could not disable Puppet: %s", err.msg);
    }
    json_object_set_new(out, "enabled", json_boolean(!path_exists(p->agent_disabled_lockfile)));
    return code;
}

static int handle_enable(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                         size_t n)
{
    const struct puppet_paths *p = a->paths;
    struct choir_error err = {0, ""};
    int rc = puppet_state_enable(p, &err), code = AGENT_ABORTED;

    (void)in;
    if (rc == PUPPET_STATE_DONE) {
        reply_status(out, msg, n, "Successfully enabled the Puppet agent");
        code = AGENT_OK;
    } else if (rc == PUPPET_STATE_ALREADY) {
        reply_status(out, msg, n, "Could not enable Puppet: already enabled");
    } else {
        reply_status(out, msg, n, "Could not enable Puppet: %s", err.msg);
    }
    json_object_set_new(out, "enabled", json_boolean(!path_exists(p->agent_disabled_lockfile)));
    return code;
}

/* Reads one of Puppet's YAML files; a statuscode with msg set on failure. */
static int read_yaml(const char *path, const char *setting, bool report, json_t **doc,
                     char *msg, size_t n)
{
    struct choir_error err = {0, ""};
    int errnum = 0, rc;

    *doc = NULL;
    if (!path) {
        msg_set(msg, n, "The %s path is not known", setting);
        return AGENT_ABORTED;
    }
    rc = report ? puppet_yaml_report_file(path, NULL, doc, &err, &errnum)
                : puppet_yaml_summary_file(path, NULL, time(NULL), doc, &err, &errnum);
    if (rc == 0)
        return AGENT_OK;
    if (errnum == ENOENT)
        msg_set(msg, n, "No %s: %s does not exist (Puppet has not completed a run yet)",
                report ? "last run report" : "last run summary", path);
    else
        msg_set(msg, n, "Could not read the %s: %s", report ? "last run report" : "last run summary",
                err.msg);
    return AGENT_ABORTED;
}

static int handle_last_run_summary(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                                   size_t n)
{
    const struct puppet_paths *p = a->paths;
    json_t *summary, *report;
    char ignored[8];
    int code = read_yaml(p->lastrunfile, "lastrunfile", false, &summary, msg, n);

    if (code != AGENT_OK)
        return code;
    json_object_update(out, summary);
    json_decref(summary);
    /* type_distribution and, when asked, logs come from the report */
    if (read_yaml(p->lastrunreport, "lastrunreport", true, &report, ignored, sizeof(ignored)) ==
        AGENT_OK) {
        json_object_set(out, "type_distribution", json_object_get(report, "type_distribution"));
        if (json_is_true(json_object_get(in, "logs")))
            json_object_set(out, "logs", json_object_get(report, "logs"));
        json_decref(report);
    }
    msg_set(msg, n, "OK");
    return AGENT_OK;
}

static int handle_last_run_report(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                                  size_t n)
{
    const struct puppet_paths *p = a->paths;
    json_t *report;
    int code = read_yaml(p->lastrunreport, "lastrunreport", true, &report, msg, n);

    (void)in;
    if (code != AGENT_OK)
        return code;
    json_object_update(out, report);
    json_decref(report);
    msg_set(msg, n, "OK");
    return AGENT_OK;
}

/* Puppet's own words when it refuses a run. */
static int handle_runonce(const struct puppet_agent *a, json_t *in, json_t *out, char *msg,
                          size_t n)
{
    struct puppet_state_info info;
    int code = AGENT_ABORTED;

    puppet_state_status(a->paths, time(NULL), &info);
    if (!info.enabled) {
        char *reason = one_line(info.disable_message);

        msg_set(msg, n, "Skipping run of Puppet configuration client; administratively disabled "
                "(Reason: '%s'); Use 'puppet agent --enable' to re-enable.", reason);
        free(reason);
    } else if (info.applying) {
        msg_set(msg, n, "Run of Puppet configuration client already in progress; skipping (%s "
                "exists)", a->paths->agent_catalog_run_lockfile);
    } else if (!a->runonce) {
        msg_set(msg, n, "This node cannot start Puppet runs");
    } else {
        code = a->runonce(a->ctx, in, out, msg, n);
    }
    puppet_state_info_done(&info);
    return code;
}

static const struct agent_input no_inputs[] = {{NULL, AGENT_INPUT_STRING, true, 0, NULL}};

static const struct agent_input disable_inputs[] = {
    {"message", AGENT_INPUT_STRING, true, PUPPET_STATE_DISABLE_MAX, validate_shellsafe},
    {NULL, AGENT_INPUT_STRING, true, 0, NULL},
};

static const struct agent_input summary_inputs[] = {
    {"logs", AGENT_INPUT_BOOLEAN, true, 0, NULL},
    {NULL, AGENT_INPUT_STRING, true, 0, NULL},
};

static const struct agent_input runonce_inputs[] = {
    {"force", AGENT_INPUT_BOOLEAN, true, 0, NULL},
    {"noop", AGENT_INPUT_BOOLEAN, true, 0, NULL},
    {"splay", AGENT_INPUT_BOOLEAN, true, 0, NULL},
    {"splaylimit", AGENT_INPUT_INTEGER, true, 0, NULL},
    {"use_cached_catalog", AGENT_INPUT_BOOLEAN, true, 0, NULL},
    {"tags", AGENT_INPUT_STRING, true, 120, validate_tags},
    {"skip_tags", AGENT_INPUT_STRING, true, 120, validate_tags},
    {"environment", AGENT_INPUT_STRING, true, 50, validate_puppet_variable},
    {"server", AGENT_INPUT_STRING, true, 50, validate_server},
    {"job_id", AGENT_INPUT_STRING, true, RUNCMD_JOB_ID_MAX, validate_job_id},
    {NULL, AGENT_INPUT_STRING, true, 0, NULL},
};

static const struct agent_action agent_actions[] = {
    {"status", handle_status, no_inputs},
    {"enable", handle_enable, no_inputs},
    {"disable", handle_disable, disable_inputs},
    {"last_run_summary", handle_last_run_summary, summary_inputs},
    {"last_run_report", handle_last_run_report, no_inputs},
    {"runonce", handle_runonce, runonce_inputs},
};

static const struct agent_action *action_find(const char *name)
{
    size_t i;

    for (i = 0; name && i < sizeof(agent_actions) / sizeof(agent_actions[0]); i++)
        if (strcmp(agent_actions[i].name, name) == 0)
            return &agent_actions[i];
    return NULL;
}

/* Checks one string input; 0 or -1 with why filled. */
static int check_string(const struct agent_input *in, json_t *v, char *why, size_t n)
{
    if (!json_is_string(v)) {
        snprintf(why, n, "should be a string");
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, n, "should not contain NUL bytes");
        return -1;
    }
    if (in->maxlength && validate_length(json_string_value(v), in->maxlength, why, n) < 0)
        return -1;
    return in->validate ? in->validate(json_string_value(v), why, n) : 0;
}

/* Checks the request's data against the action's inputs: a statuscode. */
static int check_inputs(const struct agent_action *a, json_t *data, char *msg, size_t n)
{
    const struct agent_input *in;
    char why[WHY_MAX];

    for (in = a->inputs; in->name; in++) {
        json_t *v = json_object_get(data, in->name);
        int bad;

        if (!v || json_is_null(v)) {
            if (in->optional)
                continue;
            msg_set(msg, n, "Missing data: input '%s' is required by %s", in->name, a->name);
            return AGENT_MISSING_DATA;
        }
        if (in->type == AGENT_INPUT_BOOLEAN)
            bad = validate_boolean(v, why, sizeof(why));
        else if (in->type == AGENT_INPUT_INTEGER)
            bad = validate_count(v, why, sizeof(why));
        else
            bad = check_string(in, v, why, sizeof(why));
        if (bad < 0) {
            msg_set(msg, n, "Invalid data: input '%s' %s", in->name, why);
            return AGENT_INVALID_DATA;
        }
    }
    return AGENT_OK;
}

int agent_puppet_call(const struct puppet_agent *pa, const char *action, json_t *data_in,
                      json_t **data_out, int *statuscode, char *statusmsg, size_t n)
{
    const struct agent_action *a = action_find(action);
    json_t *empty = NULL;
    int code;

    *data_out = json_object();
    if (!a) {
        msg_set(statusmsg, n, "Unknown action '%.64s' for agent puppet", action ? action : "");
        return *statuscode = AGENT_UNKNOWN_ACTION;
    }
    if (!data_in)
        data_in = empty = json_object();
    if (!json_is_object(data_in)) {
        msg_set(statusmsg, n, "Invalid data: the request data should be a JSON object");
        code = AGENT_INVALID_DATA;
    } else if ((code = check_inputs(a, data_in, statusmsg, n)) == AGENT_OK) {
        code = a->handler(pa, data_in, *data_out, statusmsg, n);
    }
    json_decref(empty);
    return *statuscode = code;
}
