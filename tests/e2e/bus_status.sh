#!/usr/bin/env bash
# bus_status.sh - choir status/disable/enable against real choird nodes over
# a real RabbitMQ (TLS, client certificates from a test Puppet CA), and real
# Puppet honouring a disable that came over the bus.
# Usage: bus_status.sh PATH_TO_CHOIR PATH_TO_CHOIRD
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

CHOIR=${1:?usage: bus_status.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: bus_status.sh CHOIR CHOIRD}
PY=/usr/bin/python3
PUPPET=$(command -v puppet || echo /usr/bin/puppet)
NODES="dev1.example.net dev2.example.net dev3.example.net"

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective bob.example.net $NODES" || e2e_die "broker did not start"

node_log_has() { grep -qF -- "$2" "$E2E_TMP/$1/choird.log"; }

for n in $NODES; do sandbox_node "$n"; sandbox_start "$n" "$CHOIRD"; done
for n in $NODES; do sandbox_wait "$n"; done
sandbox_operator alice.mcollective rpc.discovery_timeout=2 rpc.timeout=5
choir() { "$CHOIR" "$@" --config "$E2E_TMP/alice.mcollective.conf"; }
json_lines() { $PY -c "import json,sys; d=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(0 if ($1) else 1)" "$E2E_STDOUT"; }

e2e_case "nodes start"
for n in $NODES; do assert_true "$n serves" node_log_has "$n" "serving puppet as $n"; done

e2e_case "status by discovery"
assert_exit 0 choir status
for n in $NODES; do assert_contains "$E2E_STDOUT" "$n"; done
assert_contains "$E2E_STDOUT" "3 nodes: 3 enabled, 0 disabled, 0 applying"

e2e_case "status of named nodes, one missing"
assert_exit 1 choir status dev1.example.net dev9.example.net --timeout 3
assert_contains "$E2E_STDOUT" "1 did not answer: dev9.example.net"
assert_exit 0 choir status --json dev2.example.net dev3.example.net
assert_true "one JSON object per node with the agent's outputs" json_lines \
  "[x['node'] for x in d] == ['dev2.example.net','dev3.example.net'] and all(x['statuscode'] == 0 and x['data']['enabled'] is True and x['data']['status'] == 'stopped' and set(['applying','idling','daemon_present','lastrun','since_lastrun','disable_message','message']) <= set(x['data']) for x in d)"

e2e_case "disable over the bus, Puppet refuses"
assert_exit 0 choir disable dev1.example.net --message "deploying app1"
assert_contains "$E2E_STDOUT" "dev1.example.net: disabled"
assert_true "Puppet's own lock file" grep -qF '{"disabled_message":"deploying app1"}' "$E2E_TMP/dev1.example.net/var/state/agent_disabled.lock"
D=$E2E_TMP/dev1.example.net
PORT=$(e2e_free_port)
assert_exit 1 "$PUPPET" agent --onetime --no-daemonize --verbose --color=false --confdir "$D/conf" \
  --vardir "$D/var" --rundir "$D/run" --logdir "$D/log" --codedir "$D/code" --publicdir "$D/public" \
  --server 127.0.0.1 --masterport "$PORT"
assert_contains "$E2E_STDOUT" "administratively disabled (Reason: 'deploying app1')"
assert_exit 0 choir status --json dev1.example.net
assert_true "the message reads back" json_lines \
  "d[0]['data']['enabled'] is False and d[0]['data']['disable_message'] == 'deploying app1' and d[0]['data']['status'] == 'disabled'"
assert_exit 1 choir disable dev1.example.net --message again
assert_contains "$E2E_STDOUT" "dev1.example.net: failed:"
assert_exit 1 choir disable dev2.example.net --message 'rm -rf /; echo'
assert_contains "$E2E_STDOUT" "dev2.example.net: failed:"
assert_true "no lock from a refused message" test ! -e "$E2E_TMP/dev2.example.net/var/state/agent_disabled.lock"

e2e_case "enable"
assert_exit 0 choir enable dev1.example.net
assert_contains "$E2E_STDOUT" "dev1.example.net: enabled"
assert_true "the lock is gone" test ! -e "$D/var/state/agent_disabled.lock"
assert_exit 1 choir enable dev1.example.net
assert_contains "$E2E_STDOUT" "dev1.example.net: failed:"

e2e_case "callers the nodes refuse"
sandbox_operator bob.example.net
assert_exit 1 "$CHOIR" status dev3.example.net --config "$E2E_TMP/bob.example.net.conf" --timeout 2
assert_contains "$E2E_STDOUT" "1 did not answer: dev3.example.net"
assert_true "dev3 logged why" node_log_has dev3.example.net "caller_not_allowed"

e2e_case "usage and unreachable broker"
assert_exit 2 choir disable
assert_contains "$E2E_STDERR" "name at least one node"
assert_exit 2 choir status 'BAD NODE'
sed -e "s/$RMQ_TLS_PORT/$(e2e_free_port)/" "$E2E_TMP/alice.mcollective.conf" > "$E2E_TMP/nobroker.conf"
assert_exit 4 "$CHOIR" status --config "$E2E_TMP/nobroker.conf"
assert_contains "$E2E_STDERR" "127.0.0.1"

e2e_case "clean shutdown"
kill -TERM "$(cat "$E2E_TMP/dev2.example.net/pid")"
for _ in $(seq 50); do kill -0 "$(cat "$E2E_TMP/dev2.example.net/pid")" 2>/dev/null || break; sleep 0.1; done
assert_true "choird exits on SIGTERM" bash -c "! kill -0 $(cat "$E2E_TMP/dev2.example.net/pid") 2>/dev/null"
assert_true "and says so" node_log_has dev2.example.net "stopping on signal 15"

e2e_summary
