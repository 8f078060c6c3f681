/* agent_cli.c - a small driver of the `puppet` agent's node side for the
 * end-to-end tests (tests/e2e/agent_puppet.sh).
 *
 *   agent_cli ACTION [MESSAGE]      status, enable, disable [MESSAGE], or any
 *                                   other name (answered with statuscode 2)
 *   agent_cli --data JSON ACTION    ACTION with JSON as the request data
 *   agent_cli paths                 the discovered paths and how long
 *                                   `puppet config print` took
 *
 * Paths come from puppet_paths_discover, so CHOIR_PUPPET and
 * CHOIR_PUPPET_ARGS (e.g. "--confdir D/conf --vardir D/var ...") point it
 * at a private Puppet.  It prints one JSON line {"statuscode", "statusmsg",
 * "data"} and exits with the statuscode; 10 when the paths could not be
 * discovered, 64 for bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "agent/puppet_paths.h"
#include "agent/puppet_state.h"
#include "core/error.h"

#define EXIT_DISCOVERY 10
#define EXIT_USAGE 64

static int usage(void)
{
    fprintf(stderr, "usage: agent_cli ACTION [MESSAGE] | agent_cli --data JSON ACTION | "
                    "agent_cli paths\n");
    return EXIT_USAGE;
}

static long elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (long)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);

    printf("%s\n", text ? text : "null");
    free(text);
}

static int print_paths(const struct puppet_paths *p, long ms)
{
    json_t *doc = json_object();
    size_t i;

    for (i = 0; i < PUPPET_PATHS_COUNT; i++)
        json_object_set_new(doc, puppet_paths_name(i), json_string(puppet_paths_get(p, i)));
    json_object_set_new(doc, "discover_ms", json_integer(ms));
    print_json(doc);
    json_decref(doc);
    return 0;
}

/* The request data from the command line, or NULL for none. */
static json_t *request_data(int argc, char **argv, const char **action)
{
    json_t *data = NULL;

    if (strcmp(argv[1], "--data") == 0) {
        if (argc != 4)
            return NULL;
        data = json_loads(argv[2], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        *action = argv[3];
    } else {
        *action = argv[1];
        if (argc == 3)
            data = json_pack("{s:s}", "message", argv[2]);
        else
            data = json_object();
    }
    return data;
}

static int run_action(const struct puppet_paths *p, const char *action, json_t *data)
{
    json_t *out = NULL, *reply;
    char msg[2048];
    int code = 0;

    struct puppet_agent agent = {p, NULL, NULL, NULL};

    agent_puppet_call(&agent, action, data, &out, &code, msg, sizeof(msg));
    reply = json_pack("{s:i, s:s, s:o}", "statuscode", code, "statusmsg", msg, "data", out);
    print_json(reply);
    json_decref(reply);
    return code;
}

int main(int argc, char **argv)
{
    struct puppet_paths p;
    struct choir_error err;
    struct timespec t0;
    const char *action = NULL;
    json_t *data;
    long ms;
    int rc;

    if (argc < 2 || argc > 4 || (argc == 4 && strcmp(argv[1], "--data") != 0))
        return usage();
    puppet_paths_init(&p);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (puppet_paths_discover(&p, &err) < 0) {
        fprintf(stderr, "agent_cli: error: %s\n", err.msg);
        return EXIT_DISCOVERY;
    }
    ms = elapsed_ms(&t0);
    if (strcmp(argv[1], "paths") == 0) {
        rc = print_paths(&p, ms);
    } else if (!(data = request_data(argc, argv, &action))) {
        rc = usage();
    } else {
        rc = run_action(&p, action, data);
        json_decref(data);
    }
    puppet_paths_done(&p);
    return rc;
}
