#!/usr/bin/env bash
# record.sh - records tests/ui/streams/sample_contain.ndjson: a real
# `choir run --json --yes --contain` of the 2016 example site
# (examples/sample_app.json: Lamp[app1] and Lamp[app2], the databases on
# dev1, the web apps on dev2..dev4) against four real choird nodes running
# real `puppet apply`, where the database node's run fails (an exec that
# exits 1).  With --contain the failure skips only the nodes that depend on
# dev1, which are all three web nodes.
#
# The stream also holds one `report` event (docs/protocol.md §12) for the
# failed node, so that a replay can show its report view: while dev1 runs
# the script pauses the job, waits for dev1's verdict, asks the job for
# dev1's report (`choir ctl J2016 report dev1.devco.net`, the command the
# TUI's report view sends), then resumes and the job ends.  The pause and
# resume are in the stream as operator events, as a console would show.
#
# Usage: tests/ui/streams/record.sh [CHOIR CHOIRD [OUT]]
#   (defaults: build/choir, build/choird, tests/ui/streams/sample_contain.ndjson)
# Takes about a minute (broker start-up and four puppet runs).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
E2E=$ROOT/tests/e2e
. "$E2E/lib.sh"
. "$E2E/rabbitmq.sh"
. "$E2E/sandbox.sh"

CHOIR=${1:-$ROOT/build/choir}
CHOIRD=${2:-$ROOT/build/choird}
OUT=${3:-$HERE/sample_contain.ndjson}
JOB=J2016
DB=dev1.devco.net
NODES="dev1.devco.net dev2.devco.net dev3.devco.net dev4.devco.net"
PY=/usr/bin/python3

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG="" XDG_RUNTIME_DIR=$E2E_TMP/xdg
unset CHOIR_CONFIG XDG_CONFIG_HOME NO_COLOR
mkdir -p "$HOME" && mkdir -m 0700 "$XDG_RUNTIME_DIR"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective $NODES" || e2e_die "the broker did not start"

# LAMP-like manifests: packages are files here, services are notifies.
web_manifest() { # NODE
    local d=$E2E_TMP/$1/www
    cat <<EOF
file { 'docroot': path => '$d', ensure => directory }
file { 'index.php': path => '$d/index.php', ensure => file, content => "<?php echo 'app on $1'; ?>\n" }
file { 'config.php': path => '$d/config.php', ensure => file, content => "<?php \\\$db = 'dev1.devco.net'; ?>\n" }
notify { 'httpd restarted on $1': subscribe => File['config.php'] }
EOF
}
db_manifest() { # NODE
    local d=$E2E_TMP/$1/mysql
    cat <<EOF
file { 'datadir': path => '$d', ensure => directory }
file { 'my.cnf': path => '$d/my.cnf', ensure => file, content => "[mysqld]\nbind-address = 0.0.0.0\n" }
notify { 'mysqld configured on $1': require => File['my.cnf'] }
exec { 'mysql schema migration app1':
  command   => '/bin/sh -c "echo applying 0042_add_orders.sql; sleep 4; echo ERROR 1146: Table app1.orders does not exist >&2; exit 1"',
  logoutput => true,
  require   => Notify['mysqld configured on $1'],
}
EOF
}

for n in $NODES; do
    sandbox_puppet_node "$n"
    if [ "$n" = "$DB" ]; then
        sandbox_manifest "$n" "$(db_manifest "$n")"
    else
        sandbox_manifest "$n" "$(web_manifest "$n")"
    fi
    sandbox_start "$n" "$CHOIRD"
done
for n in $NODES; do
    sandbox_wait "$n" || e2e_die "choird on $n did not start: $(tail -n 3 "$E2E_TMP/$n/choird.log")"
done
sandbox_operator alice.mcollective rpc.timeout=5 "job.journal=$E2E_TMP/journal.db"
CONF=$E2E_TMP/alice.mcollective.conf

ctl() { "$CHOIR" ctl "$JOB" "$@"; }

# Polls for a line of the stream matching a Python expression on event e.
wait_event() { # SECONDS EXPR
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        "$PY" -c '
import json, sys
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    if '"$2"': sys.exit(0)
sys.exit(1)' "$E2E_TMP/stream" && return 0
        sleep 0.1
    done
    return 1
}

"$CHOIR" run --site "$ROOT/examples/sample_app.json" --contain --json --yes --job-id "$JOB" \
    --config "$CONF" >"$E2E_TMP/stream" 2>"$E2E_TMP/run.err" &
run_pid=$!
e2e_on_exit kill "$run_pid"

wait_event 60 "e['type'] == 'node' and e['node'] == '$DB' and e['state'] == 'running'" ||
    e2e_die "$DB never ran: $(tail -n 5 "$E2E_TMP/run.err")"
ctl pause || e2e_die "pause refused"
wait_event 120 "e['type'] == 'node' and e['node'] == '$DB' and e['state'] == 'failed'" ||
    e2e_die "$DB never failed"
ctl report "$DB" || e2e_die "report refused"
wait_event 30 "e['type'] == 'report'" || e2e_die "no report event"
ctl resume || e2e_die "resume refused"
rc=0
wait "$run_pid" || rc=$?
[ "$rc" = 1 ] || { cat "$E2E_TMP/run.err" >&2; e2e_die "choir run exited $rc, wanted 1 (a node failed)"; }
"$PY" -c '
import json, sys
last = json.loads(open(sys.argv[1]).read().splitlines()[-1])
assert last["type"] == "result" and last["failed"] == 1 and last["skipped"] == 3, last' "$E2E_TMP/stream" ||
    e2e_die "the stream does not end as expected"
cp "$E2E_TMP/stream" "$OUT"
echo "record.sh: $(wc -l <"$OUT") events in $OUT"
