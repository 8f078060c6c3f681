# sandbox.sh - choird nodes and an operator on a private broker, for the
# end-to-end tests, the benchmarks and scripts/demo.  Source it after
# lib.sh and rabbitmq.sh, once rmq_start has run:
#
#   sandbox_node NAME [KEY=VALUE...]   writes $E2E_TMP/NAME/choird.conf: the
#                                      node's ssldir from the test CA, Puppet
#                                      directories under $E2E_TMP/NAME, logs
#                                      to stderr; extra keys are appended
#   sandbox_start NAME CHOIRD          starts choird on it (log:
#                                      $E2E_TMP/NAME/choird.log, pid:
#                                      $E2E_TMP/NAME/pid), stopped at exit
#   sandbox_wait NAME                  waits until it serves (10 s at most)
#   sandbox_operator NAME [KEY=VALUE...]  writes $E2E_TMP/NAME.conf for choir
#   sandbox_puppet_node NAME [KEY=VALUE...]  sandbox_node whose runonce runs a
#                                      real `puppet apply` of
#                                      $E2E_TMP/NAME/manifests/site.pp (no job
#                                      id: puppet apply has none), run state in
#                                      $E2E_TMP/NAME/runstate
#   sandbox_manifest NAME TEXT         writes that manifest
#   sandbox_run_json NAME KEY          a field of that node's run.json
#   sandbox_stop_runs NODE...          stops the runs (keepers) still going
#
# NAME must be an identity the test CA made (rmq_start --clients).

# The settings every program needs to reach the private broker.
sandbox_bus_conf() {
    printf 'bus.brokers = 127.0.0.1:%s\nbus.vhost = %s\n' "$RMQ_TLS_PORT" "$RMQ_VHOST"
    printf 'puppet.ssldir = %s\npuppet.certname = %s\n' "$RMQ_CA_DIR/$1/ssl" "$1"
}

sandbox_node() {
    local name=$1 d=$E2E_TMP/$1 kv
    shift
    mkdir -p "$d/var/state" "$d/run" "$d/public" "$d/conf" "$d/log" "$d/code"
    {
        sandbox_bus_conf "$name"
        printf 'puppet.lastrunfile = %s\n' "$d/public/last_run_summary.yaml"
        printf 'puppet.lastrunreport = %s\n' "$d/var/state/last_run_report.yaml"
        printf 'puppet.agent_catalog_run_lockfile = %s\n' "$d/var/state/agent_catalog_run.lock"
        printf 'puppet.agent_disabled_lockfile = %s\n' "$d/var/state/agent_disabled.lock"
        printf 'puppet.pidfile = %s\n' "$d/run/agent.pid"
        printf 'log = stderr\n'
        for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
    } > "$d/choird.conf"
}

sandbox_start() {
    "$2" --foreground --config "$E2E_TMP/$1/choird.conf" 2>>"$E2E_TMP/$1/choird.log" &
    echo $! > "$E2E_TMP/$1/pid"
    e2e_on_exit kill "$!"
}

sandbox_wait() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -qF "serving puppet as $1" "$E2E_TMP/$1/choird.log" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

sandbox_operator() {
    local name=$1 kv
    shift
    {
        sandbox_bus_conf "$name"
        for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
    } > "$E2E_TMP/$name.conf"
}

sandbox_puppet_node() {
    local n=$1 d=$E2E_TMP/$1 puppet
    puppet=$(command -v puppet || echo /usr/bin/puppet)
    shift
    mkdir -p "$d/manifests"
    sandbox_node "$n" "run.state_dir=$d/runstate" \
        "run.command=$puppet apply --detailed-exitcodes --color=false --verbose --confdir $d/conf --vardir $d/var --rundir $d/run --logdir $d/log --codedir $d/code --publicdir $d/public $d/manifests/site.pp" \
        "$@"
}

sandbox_manifest() {
    printf '%s\n' "$2" >"$E2E_TMP/$1/manifests/site.pp"
}

sandbox_run_json() {
    /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
        "$E2E_TMP/$1/runstate/run.json" "$2"
}

# Keepers (and their Puppet runs) still going when a test ends.
sandbox_stop_runs() {
    local n pid
    for n in "$@"; do
        pid=$(sandbox_run_json "$n" keeper 2>/dev/null) || continue
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q choird && e2e_stop_tree "$pid" kill 1 keeper
    done
    return 0
}

