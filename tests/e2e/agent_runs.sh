#!/usr/bin/env bash
# agent_runs.sh - `choir runonce` against real choird nodes over a real
# RabbitMQ, each node running real `puppet apply` of a small manifest in
# Puppet directories of its own; the runs' signed events, verdicts and
# their survival across choird restarts.
# Usage: agent_runs.sh PATH_TO_CHOIR PATH_TO_CHOIRD
#
# Nodes: dev1 (changing, clean and noop runs; disabled), dev2 (failing
# resources, then a manifest that does not compile), dev3 and dev4 (long
# runs: an exec that touches started.TAG, sleeps 6 s and touches done.TAG),
# dev5 (run.command prints 50,000 lines against run.output_rate 1000).
# What is checked: verdicts (changed, ok, failed_resources, failed_exit,
# missing_report) with the summary figures, failed resource names, output
# lines and the report's transaction_uuid against last_run_report.yaml;
# noop leaves the file alone; refusals while disabled (no run started) and
# while applying (status names the job); forged events (agent_runs_forge.py:
# unsigned, another node's key, a node outside the job) never reach the
# console while a correctly signed control event does; a run outlives a
# choird SIGTERM (adopted, finished event sent) and a SIGKILL (the next
# choird sends the finished event it owes, once across three choirds).
# Runs of different nodes overlap where the cases allow (about 30-60 s).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

CHOIR=${1:?usage: agent_runs.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: agent_runs.sh CHOIR CHOIRD}
PY=/usr/bin/python3
PUPPET=$(command -v puppet || echo /usr/bin/puppet)
NODES="dev1.example.net dev2.example.net dev3.example.net dev4.example.net dev5.example.net"
N1=dev1.example.net N2=dev2.example.net N3=dev3.example.net N4=dev4.example.net N5=dev5.example.net

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective $NODES" || e2e_die "broker did not start"

# The node's Puppet run: puppet apply of its manifests/site.pp (sandbox.sh).
puppet_node() { sandbox_puppet_node "$@"; }
manifest() { sandbox_manifest "$@"; }
# A run that takes a while: marker S when the exec starts, M when it ended.
slow_manifest() { # NODE TAG
    local d=$E2E_TMP/$1
    rm -f "$d/started.$2" "$d/done.$2"
    manifest "$1" "exec { 'slow $2': command => '/bin/sh -c \"touch $d/started.$2; sleep 6; touch $d/done.$2\"' }"
}

wait_for() { e2e_wait_for "$@"; }
node_pid() { cat "$E2E_TMP/$1/pid"; }
log_count() { grep -cF -- "$2" "$E2E_TMP/$1/choird.log"; }
log_count_is() { [ "$(log_count "$1" "$2")" = "$3" ]; }
log_has() { grep -qF -- "$2" "$E2E_TMP/$1/choird.log"; }
# Starts choird on NAME again and waits until it serves (its Nth start).
restart_node() { # NAME N
    sandbox_start "$1" "$CHOIRD"
    wait_for 10 log_count_is "$1" "serving puppet as $1" "$2" || e2e_log_tail "$E2E_TMP/$1/choird.log"
}
stop_node() { # NAME SIGNAL
    local pid
    pid=$(node_pid "$1")
    kill "-$2" "$pid"
    wait "$pid" 2>/dev/null
}
run_json() { sandbox_run_json "$@"; }

stop_runs() { sandbox_stop_runs $NODES; }
e2e_on_exit stop_runs

puppet_node "$N1"
puppet_node "$N2"
puppet_node "$N3"
puppet_node "$N4"
sandbox_node "$N5" "run.state_dir=$E2E_TMP/$N5/runstate" "run.command=/usr/bin/seq 1 50000" \
    "run.output_rate=1000"
for n in $NODES; do sandbox_start "$n" "$CHOIRD"; done
for n in $NODES; do sandbox_wait "$n" || e2e_log_tail "$E2E_TMP/$n/choird.log"; done
sandbox_operator alice.mcollective rpc.timeout=5
choir() { "$CHOIR" "$@" --config "$E2E_TMP/alice.mcollective.conf"; }

# runonce WANT NAME ARGS...: choir runonce --json ARGS..., expecting exit
# WANT; its NDJSON stays in $E2E_TMP/NAME.ndjson.
runonce() {
    local want=$1 name=$2
    shift 2
    assert_exit "$want" choir runonce --json --wait 120 "$@"
    cp "$E2E_STDOUT" "$E2E_TMP/$name.ndjson"
}
# A runonce in the background: its NDJSON in NAME.ndjson, its pid in $BG.
runonce_bg() { # NAME ARGS...
    local name=$1
    shift
    choir runonce --json --wait 120 "$@" >"$E2E_TMP/$name.ndjson" 2>"$E2E_TMP/$name.err" </dev/null &
    BG=$!
    e2e_on_exit kill "$BG"
}
# jcheck NAME NODE EXPR: EXPR holds over NAME.ndjson, where d is every
# object, ev NODE's events, out the text of its output lines, fin its
# finished event (or None), rep its reply (or None), tot the closing line.
jcheck() {
    $PY - "$E2E_TMP/$1.ndjson" "$2" "$3" <<'EOF'
import json, sys
path, node, expr = sys.argv[1:4]
d = [json.loads(l) for l in open(path) if l.strip()]
ev = [x["event"] for x in d if x.get("node") == node and "event" in x]
out = [l.get("text", "") for e in ev if e["event"] == "output" for l in e["lines"]]
fins = [e for e in ev if e["event"] == "finished"]
fin = fins[0] if fins else None
rep = next((x["reply"] for x in d if x.get("node") == node and "reply" in x), None)
tot = d[-1] if d else None
if not eval(expr):
    print("not true:", expr)
    print("reply:", rep)
    print("finished:", json.dumps(fin)[:1500])
    print("closing:", tot)
    print("output:", "\n".join(out[-8:]))
    sys.exit(1)
EOF
}
# The transaction_uuid of a node's last_run_report.yaml.
report_uuid() {
    sed -n "s/^transaction_uuid: *['\"]\{0,1\}\([0-9a-f-]*\).*/\1/p" \
        "$E2E_TMP/$1/var/state/last_run_report.yaml" | head -n 1
}

D1=$E2E_TMP/$N1 D2=$E2E_TMP/$N2 D3=$E2E_TMP/$N3 D4=$E2E_TMP/$N4

# ---- dev1 changes a file, dev2 fails two resources: one call ------------------
e2e_case "a changing run and a failing one"
manifest "$N1" "file { '$D1/managed': content => \"v1\\n\" }"
manifest "$N2" "exec { '/bin/false': }
file { '$D2/missing/dir/f': content => 'x' }"
runonce 1 first --job-id first "$N1" "$N2"
assert_true "closing line: 1 succeeded, 1 failed" jcheck first "$N1" \
    "tot == {'job_id': 'first', 'nodes': 2, 'succeeded': 1, 'failed': 1}"
assert_true "dev1: started, output, finished" jcheck first "$N1" \
    "[e['event'] for e in ev][0] == 'started' and ev[-1]['event'] == 'finished' and len(fins) == 1 and all(e['job_id'] == 'first' for e in ev)"
assert_true "dev1: changed, by the spawned run" jcheck first "$N1" \
    "fin['verdict']['verdict'] == 'changed' and fin['verdict']['success'] is True and fin['verdict']['correlation'] == 'spawned_run' and fin['exit_code'] == 2"
assert_true "dev1: the summary counts the change" jcheck first "$N1" \
    "fin['summary']['changed_resources'] >= 1 and fin['summary']['failed_resources'] == 0 and fin['failed'] == []"
assert_true "dev1: the change's Notice line came as output" jcheck first "$N1" \
    "any(l['level'] == 'notice' and 'File[$D1/managed]/ensure: defined content as' in l['text'] for e in ev if e['event'] == 'output' for l in e['lines'])"
assert_true "the file was written" grep -qx v1 "$D1/managed"
uuid=$(report_uuid "$N1")
assert_true "dev1: the report named is the one on disk ($uuid)" jcheck first "$N1" \
    "'$uuid' != '' and fin['report']['transaction_uuid'] == '$uuid' and fin['report']['noop'] is False"
assert_true "dev2: failed_resources naming both" jcheck first "$N2" \
    "fin['verdict']['verdict'] == 'failed_resources' and fin['verdict']['success'] is False and fin['exit_code'] in (4, 6) and 'Exec[/bin/false]' in fin['failed'] and 'File[$D2/missing/dir/f]' in fin['failed'] and fin['summary']['failed_resources'] == 2"
assert_true "dev2: Puppet's error line came as output" jcheck first "$N2" \
    "any('/bin/false' in t and 'returned 1' in t for t in out)"

# ---- 50,000 lines against run.output_rate = 1000 ------------------------------
e2e_case "output rate limit"
runonce 1 flood --job-id flood "$N5"
assert_true "fewer lines than printed, and the rest counted as skipped" jcheck flood "$N5" \
    "0 < len(out) < 50000 and len(out) + sum(e['skipped'] for e in ev if e['event'] == 'output') == 50000"
assert_true "the finished event's figures agree" jcheck flood "$N5" \
    "fin['output_lines'] == 50000 and fin['output_lines'] - fin['output_skipped'] == len(out) and fin['exit_code'] == 0"
assert_true "the lines that came are seq's first ones, in order" jcheck flood "$N5" \
    "out[:3] == ['1', '2', '3'] and [int(t) for t in out] == sorted(int(t) for t in out)"
assert_true "no Puppet report: a failure verdict" jcheck flood "$N5" \
    "fin['verdict']['verdict'] == 'missing_report' and fin['verdict']['success'] is False and fin['report'] is None"

# ---- dev4 busy for a while: refusals, status, forged events -------------------
e2e_case "busy node"
slow_manifest "$N4" six
runonce_bg six --job-id six "$N4"
BG6=$BG
wait_for 60 test -e "$D4/started.six" || e2e_log_tail "$D4/choird.log"
assert_true "the long run started" test -e "$D4/started.six"
runonce 1 busy --job-id busy "$N4"
assert_true "refused with Puppet's words, naming the job going" jcheck busy "$N4" \
    "rep['statuscode'] != 0 and 'Run of Puppet configuration client already in progress' in rep['statusmsg'] and 'job six' in rep['statusmsg'] and ev == [] and tot['failed'] == 1"
assert_exit 0 choir status --json "$N4"
assert_true "status: applying, with the job id" $PY -c "import json,sys; d=json.loads(open(sys.argv[1]).readline())['data']; sys.exit(0 if d['applying'] is True and d['job_id'] == 'six' else 1)" "$E2E_STDOUT"

e2e_case "forged events"
export FORGE_PASSWORD=$RMQ_PASS
assert_true "forged events published" $PY "$HERE/agent_runs_forge.py" \
    --host 127.0.0.1 --port "$RMQ_PORT" --vhost "$RMQ_VHOST" --user "$RMQ_USER" \
    --ca-dir "$RMQ_CA_DIR" --job six --node "$N4" --other "$N2" --run-id "$(run_json "$N4" run_id)"

# ---- dev1 again: nothing to change; then noop ---------------------------------
e2e_case "a run with nothing to change"
runonce 0 clean --job-id clean "$N1"
assert_true "ok, spawned run, nothing changed" jcheck clean "$N1" \
    "fin['verdict']['verdict'] == 'ok' and fin['verdict']['success'] is True and fin['verdict']['correlation'] == 'spawned_run' and fin['exit_code'] == 0 and fin['summary']['changed_resources'] == 0"
assert_true "the report named is the new one on disk" jcheck clean "$N1" \
    "fin['report']['transaction_uuid'] == '$(report_uuid "$N1")' != '$uuid'"

e2e_case "noop"
manifest "$N1" "file { '$D1/managed': content => \"v2\\n\" }"
runonce 0 noop --job-id noop --noop "$N1"
assert_true "the file is unchanged" grep -qx v1 "$D1/managed"
assert_true "the report says noop" jcheck noop "$N1" \
    "fin['report']['noop'] is True and fin['report']['transaction_uuid'] == '$(report_uuid "$N1")' and fin['verdict']['success'] is True"
assert_true "the command carried --noop" jcheck noop "$N1" "' --noop' in ev[0]['command']"
assert_true "Puppet said what it would change" jcheck noop "$N1" \
    "any('File[$D1/managed]/content' in t and 'noop' in t for t in out)"

e2e_case "disabled node"
assert_exit 0 choir disable "$N1" --message x
before=$(cat "$D1/runstate/run.json" "$D1/runstate/run.log" | cksum)
runonce 1 disabled --job-id disabled "$N1"
assert_true "refused with Puppet's words" jcheck disabled "$N1" \
    "rep['statuscode'] != 0 and 'administratively disabled' in rep['statusmsg'] and \"Reason: 'x'\" in rep['statusmsg'] and ev == []"
assert_true "no run: run.json and run.log unchanged" test "$before" = "$(cat "$D1/runstate/run.json" "$D1/runstate/run.log" | cksum)"
assert_exit 0 choir enable "$N1"

e2e_case "busy node"
wait "$BG6"
assert_true "the long run's console exits 0 (got $?)" test "$?" = 0
assert_true "the long run: changed, its exec completed" jcheck six "$N4" \
    "fin['verdict']['verdict'] == 'changed' and fin['exit_code'] == 2 and tot['succeeded'] == 1"
assert_true "marker of the completed exec" test -e "$D4/done.six"

e2e_case "forged events"
assert_true "the control came: forged events were judged, not lost" jcheck six "$N4" \
    "\"forgery control: signed by the node's own key\" in out"
assert_true "no forged event was taken; the one finished event is the node's" jcheck six "$N4" \
    "'FORGED' not in open('$E2E_TMP/six.ndjson').read() and len(fins) == 1 and fin['run_id'] == '$(run_json "$N4" run_id)' and fin['verdict']['success'] is True"
assert_true "nothing from the node outside the job" jcheck six "$N2" "ev == []"

# ---- long runs across choird restarts: dev4 SIGTERM, dev3 SIGKILL ------------
e2e_case "restart"
slow_manifest "$N4" seven
slow_manifest "$N3" eight
runonce_bg seven --job-id seven "$N4"
BG7=$BG
runonce_bg eight --job-id eight "$N3"
BG8=$BG
wait_for 60 test -e "$D4/started.seven" -a -e "$D3/started.eight"
assert_true "both long runs started" test -e "$D4/started.seven" -a -e "$D3/started.eight"
stop_node "$N4" TERM
restart_node "$N4" 2
assert_true "the new choird adopted the run" log_has "$N4" "adopted the run of job seven (keeper pid $(run_json "$N4" keeper))"
assert_true "while it was still going" test ! -e "$D4/done.seven"
stop_node "$N3" KILL
e2e_case "crash"
assert_true "choird was killed while the run went on" test ! -e "$D3/done.eight"

# Meanwhile dev1 changes the file for real, and dev2's manifest breaks.
e2e_case "a changing run"
runonce 0 change --job-id change "$N1"
assert_true "changed, the file's content" jcheck change "$N1" \
    "fin['verdict']['verdict'] == 'changed' and fin['summary']['changed_resources'] >= 1 and any(l['level'] == 'notice' and 'File[$D1/managed]/content: content changed' in l['text'] for e in ev if e['event'] == 'output' for l in e['lines'])"
assert_true "the file was written" grep -qx v2 "$D1/managed"
assert_true "the report named is the one on disk" jcheck change "$N1" \
    "fin['report']['transaction_uuid'] == '$(report_uuid "$N1")' and fin['report']['noop'] is False"

e2e_case "a manifest that does not compile"
manifest "$N2" "file { 'oops' "
stale=$(report_uuid "$N2")
runonce 1 broken --job-id broken "$N2"
assert_true "failed_exit: the run failed and its report is not this run's" jcheck broken "$N2" \
    "fin['verdict']['verdict'] == 'failed_exit' and fin['verdict']['success'] is False and fin['exit_code'] == 1 and fin['verdict']['reason'].startswith('the run failed and ') and 'older than the run' in fin['verdict']['reason']"
assert_true "Puppet wrote no report: the one on disk is the last run's" test "$(report_uuid "$N2")" = "$stale"
assert_true "Puppet's syntax error came as output" jcheck broken "$N2" \
    "any(l['level'] == 'err' and 'Syntax error' in l['text'] for e in ev if e['event'] == 'output' for l in e['lines'])"

e2e_case "restart"
wait "$BG7"
assert_true "the console got the adopted run's finished event and exits 0 (got $?)" test "$?" = 0
assert_true "changed, adopted, the exec completed" jcheck seven "$N4" \
    "fin['verdict']['verdict'] == 'changed' and fin['exit_code'] == 2 and fin.get('adopted') is True and fin['signal'] == 0"
assert_true "marker of the completed exec" test -e "$D4/done.seven"
assert_true "the exec's Notice came as output" jcheck seven "$N4" \
    "any('Exec[slow seven]/returns: executed successfully' in t for t in out)"

e2e_case "crash"
wait_for 60 test -e "$D3/runstate/run.exit"
assert_true "the run ended while choird was down" test -e "$D3/done.eight" -a -e "$D3/runstate/run.exit"
assert_true "and nobody reported it yet" jcheck eight "$N3" "fin is None"
restart_node "$N3" 2
assert_true "the new choird took the run over" log_has "$N3" "adopted the run of job eight (keeper pid $(run_json "$N3" keeper))"
wait "$BG8"
assert_true "the restarted choird sent the finished event it owed; the console exits 0 (got $?)" test "$?" = 0
assert_true "changed, exit 2" jcheck eight "$N3" \
    "fin['verdict']['verdict'] == 'changed' and fin['exit_code'] == 2 and len(fins) == 1"
stop_node "$N3" TERM
restart_node "$N3" 3
assert_exit 0 choir status "$N3"
assert_true "reported once across three choirds" log_count_is "$N3" "job eight ended" 1
assert_true "run.json says reported" test "$(run_json "$N3" reported)" = True

e2e_summary
