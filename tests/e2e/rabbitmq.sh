#!/usr/bin/env bash
# rabbitmq.sh - a private RabbitMQ broker for the end-to-end tests.
#
# Source it from a test (after lib.sh) and start a broker in a directory of
# its own; nothing outside that directory is read or written, and nothing
# listens anywhere but on free 127.0.0.1 ports:
#
#   . "$HERE/lib.sh"; . "$HERE/rabbitmq.sh"
#   e2e_tmpdir
#   rmq_start "$E2E_TMP/rmq" || e2e_die "broker did not start"
#   ... use RMQ_HOST RMQ_PORT (plain AMQP) RMQ_TLS_PORT (amqps)
#       RMQ_USER RMQ_PASS RMQ_VHOST    (plain and TLS logins with a password)
#       RMQ_CA_DIR                     (a scripts/testca DIR: "$RMQ_CA_DIR/<name>/ssl"
#                                       is the Puppet ssldir of <name>)
#   rmq_restart [--kill]               # stop and start again on the same ports
#   rmq_stop [--kill]                  # --kill: SIGKILL, no clean shutdown
#   rmq_ctl list_queues name           # rabbitmqctl against this broker
#
# rmq_start DIR [TESTCA_OPTIONS...] makes a test Puppet CA with
# scripts/testca DIR/pki --hosts localhost [TESTCA_OPTIONS...] (the broker's
# identity is "localhost", its certificate also names 127.0.0.1; pass
# --clients/--foreign/... to make more identities; a --hosts list must keep
# "localhost").  Every client identity signed by the test CA is also a
# broker user without a password, for SASL EXTERNAL logins with the
# certificate (rabbitmq_auth_mechanism_ssl, ssl_cert_login_from =
# common_name).  The TLS listener requires a client certificate from the
# test CA (verify_peer, fail_if_no_peer_cert).
#
# Also set: RMQ_DIR, RMQ_NODENAME, RMQ_EPMD_PORT, RMQ_DIST_PORT, RMQ_LOG (the
# broker's log file), RMQ_START_SECONDS (how long the last start took).
# Start-up takes 6-9 s on 2 vCPUs (RabbitMQ 3.10, Erlang 25), a clean stop
# about 1.5 s; RMQ_START_TIMEOUT (default 90 s) bounds the wait.
#
# All functions are quiet on success.  On failure they print one line
# saying what failed, then the tail of the broker's log, and return 1.
# Cleanup: rmq_start registers rmq_cleanup with lib.sh's e2e_on_exit, so the
# broker (its whole process tree: the start script, beam.smp,
# erl_child_setup, inet_gethost) and the private epmd are killed when the
# test exits, pass or fail.
#
# Isolation, and why: Debian's /usr/sbin/rabbitmq-server su's to the
# rabbitmq user and uses /var/lib/rabbitmq; we run
# /usr/lib/rabbitmq/bin/rabbitmq-server directly, as whoever we are (root
# works), with RABBITMQ_CONF_ENV_FILE, RABBITMQ_CONFIG_FILE,
# RABBITMQ_MNESIA_BASE, RABBITMQ_LOG_BASE and RABBITMQ_ENABLED_PLUGINS_FILE
# in DIR.  Erlang distribution needs epmd: we start our own epmd on a free
# port (ERL_EPMD_PORT) bound to loopback, so a system epmd on 4369 is
# neither used nor disturbed and none is left behind.  HOME is DIR/home for
# the broker and rabbitmqctl only, so the .erlang.cookie is private.  The
# distribution port (RABBITMQ_DIST_PORT) is free and loopback-only.
#
# Run directly for manual debugging or from a child process:
#   tests/e2e/rabbitmq.sh run DIR      start, print the RMQ_* settings, wait for ^C
#   tests/e2e/rabbitmq.sh restart DIR  restart a broker that DIR already holds
#   tests/e2e/rabbitmq.sh stop DIR     stop it
# (state lives in DIR/state.env, so any process may restart the broker; the
# process that called rmq_start still cleans it up at exit).

RMQ_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RMQ_SRC_DIR=$(cd "$RMQ_LIB_DIR/../.." && pwd)
if ! declare -F e2e_free_port >/dev/null; then
    . "$RMQ_LIB_DIR/lib.sh"
fi

RMQ_SERVER=${RMQ_SERVER:-/usr/lib/rabbitmq/bin/rabbitmq-server}
RMQ_CTL=${RMQ_CTL:-/usr/lib/rabbitmq/bin/rabbitmqctl}
RMQ_EPMD=${RMQ_EPMD:-epmd}
RMQ_START_TIMEOUT=${RMQ_START_TIMEOUT:-90}
RMQ_STOP_TIMEOUT=${RMQ_STOP_TIMEOUT:-30}
RMQ_CLEANUP_REGISTERED=""

_rmq_err() {
    echo "rabbitmq.sh: $*" >&2
}

# The broker's process tree (erl_child_setup and inet_gethost put
# themselves in sessions of their own): SIGTERM to the start script, which
# stops beam cleanly, or SIGKILL to all.
_rmq_stop_tree() { # PID TERM|KILL SECONDS
    e2e_stop_tree "$1" "$([ "$2" = KILL ] && echo kill || echo term-root)" "$3" "rabbitmq.sh: the broker"
}

_rmq_fail() {
    _rmq_err "$*"
    e2e_log_tail "$RMQ_LOG" "$RMQ_DIR/console.out"
    return 1
}

_rmq_alive() { # PIDFILE
    local pid
    [ -s "$1" ] || return 1
    pid=$(cat "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Starts COMMAND... in DIR in a new session (a ^C meant for the test does
# not hit the broker mid-way; the test's cleanup stops it in order), with
# its pid in PIDFILE and its output in LOGFILE.
_rmq_spawn() { # PIDFILE LOGFILE DIR COMMAND...
    local pidfile=$1 logfile=$2 dir=$3 i
    shift 3
    rm -f "$pidfile"
    setsid bash -c 'echo $$ >"$0" && cd "$1" && shift && exec "$@"' "$pidfile" "$dir" "$@" \
        >"$logfile" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do
        [ -s "$pidfile" ] && return 0
        sleep 0.02
    done
    return 1
}

_rmq_write_state() {
    cat >"$RMQ_DIR/state.env" <<EOF
RMQ_DIR=$(printf %q "$RMQ_DIR")
RMQ_HOST=127.0.0.1
RMQ_PORT=$RMQ_PORT
RMQ_TLS_PORT=$RMQ_TLS_PORT
RMQ_EPMD_PORT=$RMQ_EPMD_PORT
RMQ_DIST_PORT=$RMQ_DIST_PORT
RMQ_NODENAME=$(printf %q "$RMQ_NODENAME")
RMQ_USER=$(printf %q "$RMQ_USER")
RMQ_PASS=$(printf %q "$RMQ_PASS")
RMQ_VHOST=$(printf %q "$RMQ_VHOST")
RMQ_CA_DIR=$(printf %q "$RMQ_CA_DIR")
RMQ_LOG=$(printf %q "$RMQ_LOG")
EOF
}

# Loads DIR/state.env into the RMQ_* variables (exported).
_rmq_load_state() { # DIR
    [ -s "$1/state.env" ] || { _rmq_err "$1 holds no broker (no state.env)"; return 1; }
    . "$1/state.env"
    export RMQ_DIR RMQ_HOST RMQ_PORT RMQ_TLS_PORT RMQ_EPMD_PORT RMQ_DIST_PORT \
        RMQ_NODENAME RMQ_USER RMQ_PASS RMQ_VHOST RMQ_CA_DIR RMQ_LOG
}

# A JSON string literal (the names here are certnames: no quotes or
# backslashes, but be safe).
_rmq_json_str() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

# Users for SASL EXTERNAL: every identity the test CA signed.
_rmq_cert_users() {
    local f name
    for f in "$RMQ_CA_DIR"/ca/signed/*.pem; do
        [ -e "$f" ] || continue
        name=$(basename "$f" .pem)
        [ "$name" = localhost ] && continue
        echo "$name"
    done
}

_rmq_write_config() {
    local ssl=$RMQ_CA_DIR/localhost/ssl name users perms sep
    cat >"$RMQ_DIR/rabbitmq.conf" <<EOF
# Written by tests/e2e/rabbitmq.sh for a throwaway test broker.
listeners.tcp.1 = 127.0.0.1:$RMQ_PORT
listeners.ssl.1 = 127.0.0.1:$RMQ_TLS_PORT
ssl_options.cacertfile = $ssl/certs/ca.pem
ssl_options.certfile = $ssl/certs/localhost.pem
ssl_options.keyfile = $ssl/private_keys/localhost.pem
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = EXTERNAL
ssl_cert_login_from = common_name
default_user = $RMQ_USER
default_pass = $RMQ_PASS
default_vhost = $RMQ_VHOST
loopback_users = none
load_definitions = $RMQ_DIR/definitions.json
disk_free_limit.absolute = 1MB
vm_memory_high_watermark.relative = 0.9
log.file.level = info
log.console = false
EOF
    echo "[rabbitmq_auth_mechanism_ssl]." >"$RMQ_DIR/enabled_plugins"
    : >"$RMQ_DIR/rabbitmq-env.conf"

    users="{\"name\": $(_rmq_json_str "$RMQ_USER"), \"password\": $(_rmq_json_str "$RMQ_PASS"), \"tags\": \"administrator\"}"
    perms="{\"user\": $(_rmq_json_str "$RMQ_USER"), \"vhost\": $(_rmq_json_str "$RMQ_VHOST"), \"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}"
    sep=","
    while read -r name; do
        [ -n "$name" ] || continue
        users="$users$sep {\"name\": $(_rmq_json_str "$name"), \"password_hash\": \"\", \"tags\": \"\"}"
        perms="$perms$sep {\"user\": $(_rmq_json_str "$name"), \"vhost\": $(_rmq_json_str "$RMQ_VHOST"), \"configure\": \".*\", \"write\": \".*\", \"read\": \".*\"}"
    done < <(_rmq_cert_users)
    cat >"$RMQ_DIR/definitions.json" <<EOF
{"vhosts": [{"name": $(_rmq_json_str "$RMQ_VHOST")}],
 "users": [$users],
 "permissions": [$perms]}
EOF
}

_rmq_start_epmd() {
    if _rmq_alive "$RMQ_DIR/epmd.pid"; then
        return 0
    fi
    command -v "$RMQ_EPMD" >/dev/null || { _rmq_err "epmd not found (apt-get install erlang-base)"; return 1; }
    _rmq_spawn "$RMQ_DIR/epmd.pid" "$RMQ_DIR/epmd.out" "$RMQ_DIR" \
        "$RMQ_EPMD" -port "$RMQ_EPMD_PORT" -address 127.0.0.1 ||
        { _rmq_err "could not start epmd"; return 1; }
    if ! e2e_wait_port "$RMQ_EPMD_PORT" 10 "$(cat "$RMQ_DIR/epmd.pid")"; then
        _rmq_err "epmd did not listen on 127.0.0.1:$RMQ_EPMD_PORT:"
        sed 's/^/  | /' "$RMQ_DIR/epmd.out" >&2
        return 1
    fi
}

# The environment of the broker and of rabbitmqctl, as env(1) arguments.
_rmq_env_args() {
    RMQ_ENV=(
        HOME="$RMQ_DIR/home"
        ERL_EPMD_PORT="$RMQ_EPMD_PORT"
        RABBITMQ_NODENAME="$RMQ_NODENAME"
        RABBITMQ_USE_LONGNAME=false
        RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/rabbitmq-env.conf"
        RABBITMQ_CONFIG_FILE="$RMQ_DIR/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
        RABBITMQ_LOG_BASE="$RMQ_DIR/log"
        RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
        RABBITMQ_CTL_DIST_PORT_MIN="$1"
        RABBITMQ_CTL_DIST_PORT_MAX="$1"
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    )
}

# Starts the broker process (not waiting for it).
_rmq_launch() {
    [ -x "$RMQ_SERVER" ] || { _rmq_err "$RMQ_SERVER not found (apt-get install rabbitmq-server)"; return 1; }
    _rmq_start_epmd || return 1
    mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
    echo "[]." >"$RMQ_DIR/advanced.config"
    RMQ_LOG_MARK=$(cat "$RMQ_LOG" 2>/dev/null | wc -l)
    RMQ_LAUNCHED_AT=$(date +%s.%N)
    _rmq_env_args "$(e2e_free_port)"
    # In DIR: an Erlang crash dump lands there, not in the caller's directory.
    _rmq_spawn "$RMQ_DIR/broker.pid" "$RMQ_DIR/console.out" "$RMQ_DIR" \
        env "${RMQ_ENV[@]}" "$RMQ_SERVER" ||
        { _rmq_fail "the broker process did not start"; return 1; }
}

# rmq_wait [SECONDS]: waits until the broker has finished booting (its log
# says "Server startup complete") and both listeners accept connections.
rmq_wait() {
    local seconds=${1:-$RMQ_START_TIMEOUT} pid i
    pid=$(cat "$RMQ_DIR/broker.pid" 2>/dev/null)
    for ((i = 0; i < seconds * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            _rmq_fail "the broker exited while starting"
            return 1
        fi
        if tail -n "+$((RMQ_LOG_MARK + 1))" "$RMQ_LOG" 2>/dev/null |
            grep -q "Server startup complete"; then
            break
        fi
        sleep 0.1
    done
    if ((i >= seconds * 10)); then
        _rmq_fail "the broker did not finish starting within ${seconds}s"
        return 1
    fi
    e2e_wait_port "$RMQ_PORT" 10 "$pid" && e2e_wait_port "$RMQ_TLS_PORT" 10 "$pid" ||
        { _rmq_fail "the broker does not listen on 127.0.0.1:$RMQ_PORT and :$RMQ_TLS_PORT"; return 1; }
    RMQ_START_SECONDS=$(awk -v a="$RMQ_LAUNCHED_AT" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }')
    export RMQ_START_SECONDS
}

_rmq_port_closed() { # PORT
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# rmq_stop [--kill]: stops the broker (SIGTERM: a clean shutdown that closes
# client connections with CONNECTION_FORCED; --kill: SIGKILL, connections
# just drop) and waits until its ports are closed.  epmd keeps running.
rmq_stop() {
    local sig=TERM pid i
    [ "${1:-}" = --kill ] && sig=KILL
    [ -n "${RMQ_DIR:-}" ] || { _rmq_err "rmq_stop: no broker started"; return 1; }
    pid=$(cat "$RMQ_DIR/broker.pid" 2>/dev/null)
    [ -n "$pid" ] || return 0
    _rmq_stop_tree "$pid" "$sig" "$RMQ_STOP_TIMEOUT"
    rm -f "$RMQ_DIR/broker.pid"
    for ((i = 0; i < 50; i++)); do
        _rmq_port_closed "$RMQ_PORT" && _rmq_port_closed "$RMQ_TLS_PORT" && return 0
        sleep 0.1
    done
    _rmq_err "ports $RMQ_PORT/$RMQ_TLS_PORT still open after the broker stopped"
    return 1
}

# rmq_restart [--kill]: stop, then start again on the same ports with the
# same data (durable queues survive; transient messages do not).
rmq_restart() {
    rmq_stop "$@" || return 1
    _rmq_launch && rmq_wait
}

# Kills everything rmq_start started.  Safe to call more than once.
rmq_cleanup() {
    [ -n "${RMQ_DIR:-}" ] || return 0
    _rmq_stop_tree "$(cat "$RMQ_DIR/broker.pid" 2>/dev/null)" TERM 5
    _rmq_stop_tree "$(cat "$RMQ_DIR/epmd.pid" 2>/dev/null)" KILL 1
    rm -f "$RMQ_DIR/broker.pid" "$RMQ_DIR/epmd.pid"
    return 0
}

# rmq_ctl ARGS...: rabbitmqctl against this broker.
rmq_ctl() {
    _rmq_env_args "$(e2e_free_port)"
    env "${RMQ_ENV[@]}" "$RMQ_CTL" -q -n "$RMQ_NODENAME" "$@"
}

# rmq_start DIR [TESTCA_OPTIONS...]
rmq_start() {
    local dir=${1:?usage: rmq_start DIR [TESTCA_OPTIONS...]} attempt
    shift
    mkdir -p "$dir" || { _rmq_err "cannot create $dir"; return 1; }
    RMQ_DIR=$(cd "$dir" && pwd)
    RMQ_CA_DIR=$RMQ_DIR/pki
    RMQ_LOG=""
    if _rmq_alive "$RMQ_DIR/broker.pid"; then
        _rmq_load_state "$RMQ_DIR" && rmq_stop --kill || return 1
    fi
    if [ -z "$RMQ_CLEANUP_REGISTERED" ]; then
        e2e_on_exit rmq_cleanup
        RMQ_CLEANUP_REGISTERED=1
    fi
    command -v openssl >/dev/null || { _rmq_err "openssl not found (apt-get install openssl)"; return 1; }
    "$RMQ_SRC_DIR/scripts/testca" "$RMQ_CA_DIR" --hosts localhost "$@" ||
        { _rmq_err "scripts/testca failed"; return 1; }
    RMQ_HOST=127.0.0.1
    RMQ_NODENAME="choirtest-$$-$RANDOM@localhost"
    RMQ_USER=choir
    RMQ_PASS="test-$RANDOM$RANDOM"
    RMQ_VHOST=choirtest
    RMQ_LOG="$RMQ_DIR/log/$RMQ_NODENAME.log"
    # A port can be taken between choosing and binding it: try again.
    for attempt in 1 2 3; do
        [ "$attempt" = 1 ] || _rmq_err "port clash; trying other ports (attempt $attempt)"
        RMQ_PORT=$(e2e_free_port)
        RMQ_TLS_PORT=$(e2e_free_port)
        RMQ_DIST_PORT=$(e2e_free_port)
        [ -s "$RMQ_DIR/epmd.pid" ] && _rmq_alive "$RMQ_DIR/epmd.pid" ||
            RMQ_EPMD_PORT=$(e2e_free_port)
        _rmq_write_config
        _rmq_write_state
        _rmq_load_state "$RMQ_DIR" || return 1
        rm -rf "$RMQ_DIR/mnesia" "$RMQ_DIR/log"
        _rmq_launch && rmq_wait && return 0
        grep -qi eaddrinuse "$RMQ_LOG" "$RMQ_DIR/console.out" 2>/dev/null || break
        rmq_stop --kill >/dev/null 2>&1
    done
    rmq_cleanup
    return 1
}

# ---- run directly --------------------------------------------------------

_rmq_main() {
    local cmd=${1:-} dir=${2:-}
    [ -n "$cmd" ] && [ -n "$dir" ] || {
        echo "usage: $0 run|restart|stop DIR" >&2
        exit 2
    }
    case "$cmd" in
    run)
        rmq_start "$dir" || exit 1
        echo "# broker up in ${RMQ_START_SECONDS}s; ^C stops it"
        sed 's/^/export /' "$RMQ_DIR/state.env"
        while _rmq_alive "$RMQ_DIR/broker.pid"; do sleep 1; done
        ;;
    restart)
        _rmq_load_state "$dir" || exit 1
        rmq_restart || exit 1
        ;;
    stop)
        _rmq_load_state "$dir" || exit 1
        rmq_stop || exit 1
        ;;
    *)
        echo "usage: $0 run|restart|stop DIR" >&2
        exit 2
        ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _rmq_main "$@"
fi
