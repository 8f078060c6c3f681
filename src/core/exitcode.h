/* exitcode.h - the exit codes of choir and choird, one table.
 *
 * The X-macro yields the enum and the name/meaning table printed by
 * `--help` and documented in docs/operator-guide.md.  Codes are stable:
 * scripts depend on them. */
#ifndef CHOIR_EXITCODE_H
#define CHOIR_EXITCODE_H

#define CHOIR_EXIT_CODES(X)                                                       \
    X(CHOIR_EXIT_OK,       0, "ok")                                               \
    X(CHOIR_EXIT_PARTIAL,  1, "some nodes did not answer, or the action or their Puppet run failed") \
    X(CHOIR_EXIT_INPUT,    2, "bad input or usage: command line, config, site file, unknown environment or instance, cycle, unresolved capability") \
    X(CHOIR_EXIT_SERVER,   4, "could not reach, authenticate to, or get an answer from a server") \
    X(CHOIR_EXIT_BUDGET,   5, "run: the job stopped because the failure budget (--max-failures) was exceeded") \
    X(CHOIR_EXIT_ABORTED,  6, "run: the operator aborted the job (it can be resumed)") \
    X(CHOIR_EXIT_REFUSED,  7, "run: preflight refused: nodes unreachable, disabled by someone else or applying") \
    X(CHOIR_EXIT_INTERNAL, 70, "internal error (a bug: please report it)")

enum choir_exit {
#define CHOIR_EXIT_ENUM(name, value, meaning) name = value,
    CHOIR_EXIT_CODES(CHOIR_EXIT_ENUM)
#undef CHOIR_EXIT_ENUM
};

struct exitcode_info {
    enum choir_exit code;
    const char *name;
    const char *meaning;
};

/* The table in code order, terminated by an entry with name == NULL. */
extern const struct exitcode_info exitcode_table[];

#endif
