#!/usr/bin/env bash
# agent_sim.sh - `choird --simulate N`: N fake nodes served by one choird
# over a real RabbitMQ (TLS, client certificates from a test Puppet CA,
# one CA-issued certificate per simulated node for the simulator's key),
# driven by the real `choir status`, `disable` and `runonce`.
# Usage: agent_sim.sh PATH_TO_CHOIR PATH_TO_CHOIRD PATH_TO_SIMCERTS
#
# Simulator A: 40 nodes, runs of 0.2-0.8 s, a quarter failing, seed 7
# (broadcast and directed status, a job over 12 nodes, disable, noop).
# Simulator B: the same seed and failure rate with runs of 5 s, from a
# fresh state: the same job fails on the same nodes, and a node whose run
# is going refuses another.  Then the options choird refuses.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

CHOIR=${1:?usage: agent_sim.sh CHOIR CHOIRD SIMCERTS}
CHOIRD=${2:?usage: agent_sim.sh CHOIR CHOIRD SIMCERTS}
export CHOIR_SIMCERTS=${3:?usage: agent_sim.sh CHOIR CHOIRD SIMCERTS}
PY=/usr/bin/python3
SIM=choird-sim
NSIM=40
# The job's nodes: sim-00001 ... sim-00012.
JOB_NODES=$(for i in $(seq 1 12); do printf 'sim-%05d ' "$i"; done)

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective" --sim "$NSIM" || e2e_die "broker did not start"
CERTS=$RMQ_CA_DIR/$SIM/ssl/certs
LOG=$E2E_TMP/$SIM/choird.log

wait_for() { e2e_wait_for "$@"; }
log_count() { grep -cF -- "$1" "$LOG"; }
serving_at_least() { test "$(log_count "serving puppet as $NSIM simulated nodes")" -ge "$1"; }
# Starts the simulator with its state in STATE and OPTIONS, and waits
# until it serves (its Nth start: the log is appended to).
sim_start() { # N STATE OPTIONS...
    local n=$1
    sandbox_node "$SIM" "run.state_dir=$2"
    "$CHOIRD" --foreground --config "$E2E_TMP/$SIM/choird.conf" "${@:3}" 2>>"$LOG" &
    SIM_PID=$!
    e2e_on_exit kill "$SIM_PID"
    wait_for 20 serving_at_least "$n" ||
        { e2e_log_tail "$LOG"; e2e_die "the simulator did not start"; }
}
sim_stop() {
    kill -TERM "$SIM_PID"
    wait "$SIM_PID" 2>/dev/null
}

sandbox_operator alice.mcollective rpc.discovery_timeout=3 rpc.timeout=10
choir() { "$CHOIR" "$@" --config "$E2E_TMP/alice.mcollective.conf"; }
# jcheck FILE EXPR: EXPR holds over the NDJSON in FILE, where d is every
# object, fin maps node -> its finished events, rep node -> its reply,
# tot is the closing line.
jcheck() {
    $PY - "$1" "$2" <<'EOF'
import json, sys
path, expr = sys.argv[1:3]
d = [json.loads(l) for l in open(path) if l.strip()]
fin, rep = {}, {}
for x in d:
    if "event" in x and x["event"].get("event") == "finished":
        fin.setdefault(x["node"], []).append(x["event"])
    if "reply" in x:
        rep[x["node"]] = x["reply"]
tot = d[-1] if d else None
if not eval(expr):
    print("not true:", expr)
    print("closing:", tot)
    for n in sorted(set(fin) | set(rep)):
        print(n, rep.get(n), [json.dumps(e)[:300] for e in fin.get(n, [])])
    sys.exit(1)
EOF
}
# The nodes whose finished event says failed, sorted, one line.
failed_nodes() { # FILE
    $PY -c 'import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(" ".join(sorted(x["node"] for x in d if "event" in x and x["event"].get("event") == "finished" and not x["event"]["verdict"]["success"])))' "$1"
}

sim_start 1 "$E2E_TMP/stateA" --simulate "$NSIM" --sim-duration 0.2:0.8 --sim-fail 0.25 --sim-seed 7
STATE=$E2E_TMP/stateA/sim

e2e_case "broadcast status"
assert_exit 0 choir status --json
assert_true "exactly sim-00001 ... sim-00040 answer, each once" $PY -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = ["sim-%05d" % i for i in range(1, 41)]
sys.exit(0 if [x["node"] for x in d] == want and all(x["statuscode"] == 0 and x["data"]["enabled"] is True for x in d) else 1)' "$E2E_STDOUT"
assert_true "no forged or malformed replies" bash -c "! grep -q 'forged or malformed' '$E2E_STDERR'"
assert_exit 0 choir status
assert_contains "$E2E_STDOUT" "40 nodes: 40 enabled, 0 disabled, 0 applying"
assert_true "no forged or malformed replies (table)" bash -c "! grep -q 'forged or malformed' '$E2E_STDERR'"

e2e_case "directed status, one node beyond the simulation"
assert_exit 1 choir status sim-00003 sim-00041 --timeout 3
assert_contains "$E2E_STDOUT" "1 did not answer: sim-00041"
assert_contains "$E2E_STDOUT" "sim-00003  yes"

e2e_case "runonce of 12 nodes"
# shellcheck disable=SC2086
assert_exit 1 choir runonce --json --wait 60 --job-id J1 $JOB_NODES
cp "$E2E_STDOUT" "$E2E_TMP/J1.ndjson"
assert_true "every node: one finished event, correlated by job_id" jcheck "$E2E_TMP/J1.ndjson" \
  "sorted(fin) == ['sim-%05d' % i for i in range(1, 13)] and all(len(f) == 1 and f[0]['verdict']['correlation'] == 'job_id' and f[0]['job_id'] == 'J1' for f in fin.values())"
assert_true "succeeded + failed == 12, some of each" jcheck "$E2E_TMP/J1.ndjson" \
  "tot['job_id'] == 'J1' and tot['nodes'] == 12 and tot['succeeded'] + tot['failed'] == 12 and tot['succeeded'] >= 1 and tot['failed'] >= 1"
assert_true "failed runs name File[/etc/sim], exit 6; the others changed it, exit 2" jcheck "$E2E_TMP/J1.ndjson" \
  "all((f[0]['failed'] == ['File[/etc/sim]'] and f[0]['exit_code'] == 6) if not f[0]['verdict']['success'] else (f[0]['failed'] == [] and f[0]['exit_code'] == 2 and f[0]['verdict']['verdict'] == 'changed') for f in fin.values())"
J1_FAILED=$(failed_nodes "$E2E_TMP/J1.ndjson")
echo "# failed in J1 (seed 7): $J1_FAILED"
for n in $JOB_NODES; do
  assert_true "$n's Puppet report carries job_id J1" grep -qx "job_id: J1" "$STATE/$n/var/state/last_run_report.yaml"
done
assert_true "no report for a node outside the job" test ! -e "$STATE/sim-00013/var/state/last_run_report.yaml"

e2e_case "a disabled node refuses in Puppet's words"
assert_exit 0 choir disable sim-00020 --message "sim maintenance"
assert_exit 1 choir runonce --json --job-id D1 sim-00020
assert_true "statuscode 1, Puppet's message, no run" jcheck "$E2E_STDOUT" \
  "rep['sim-00020']['statuscode'] == 1 and \"administratively disabled (Reason: 'sim maintenance')\" in rep['sim-00020']['statusmsg'] and rep['sim-00020']['statusmsg'].startswith('Skipping run of Puppet configuration client') and not fin and tot['failed'] == 1"
assert_true "Puppet's lock file" grep -qF '{"disabled_message":"sim maintenance"}' "$STATE/sim-00020/var/state/agent_disabled.lock"

e2e_case "noop run"
assert_exit 0 choir runonce --json --wait 60 --noop --job-id N1 sim-00030
assert_true "verdict ok, exit 0, nothing changed" jcheck "$E2E_STDOUT" \
  "fin['sim-00030'][0]['verdict']['verdict'] == 'ok' and fin['sim-00030'][0]['verdict']['success'] is True and fin['sim-00030'][0]['exit_code'] == 0 and fin['sim-00030'][0]['summary']['changed_resources'] == 0 and fin['sim-00030'][0]['report']['noop'] is True and tot['succeeded'] == 1"
sim_stop

e2e_case "simulator B: same seed, the same nodes fail; a running node refuses"
sim_start 2 "$E2E_TMP/stateB" --simulate "$NSIM" --sim-duration 5:5 --sim-fail 0.25 --sim-seed 7
# shellcheck disable=SC2086
choir runonce --json --wait 60 --job-id J2 $JOB_NODES >"$E2E_TMP/J2.ndjson" 2>"$E2E_TMP/J2.err" </dev/null &
BG=$!
e2e_on_exit kill "$BG"
wait_for 20 grep -q '"node":"sim-00001","event":{[^}]*"event":"started"' "$E2E_TMP/J2.ndjson"
assert_exit 1 choir runonce --json --job-id B2 sim-00001
assert_true "refused: already in progress, naming the job going" jcheck "$E2E_STDOUT" \
  "rep['sim-00001']['statuscode'] == 1 and rep['sim-00001']['statusmsg'].startswith('Run of Puppet configuration client already in progress; skipping') and '(job J2 ' in rep['sim-00001']['statusmsg'] and not fin"
assert_exit 0 choir status --json sim-00001
assert_true "status says applying" $PY -c 'import json, sys; sys.exit(0 if json.loads(open(sys.argv[1]).readline())["data"]["applying"] is True else 1)' "$E2E_STDOUT"
BG_RC=0
wait "$BG" || BG_RC=$?
assert_true "the job ends with some failures (exit 1)" test "$BG_RC" = 1
J2_FAILED=$(failed_nodes "$E2E_TMP/J2.ndjson")
assert_true "the same nodes fail: [$J1_FAILED] == [$J2_FAILED]" test -n "$J1_FAILED" -a "$J1_FAILED" = "$J2_FAILED"
assert_true "all 12 finished" jcheck "$E2E_TMP/J2.ndjson" "tot['nodes'] == 12 and len(fin) == 12"
sim_stop

e2e_case "options choird refuses"
CONF=$E2E_TMP/$SIM/choird.conf
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --simulate 0
assert_contains "$E2E_STDERR" 'choird: --simulate: "0" is not a number of nodes from 1 to 99999'
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --simulate 100000
assert_contains "$E2E_STDERR" 'choird: --simulate: "100000" is not a number of nodes from 1 to 99999'
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --simulate 5 --sim-duration 5:1
assert_contains "$E2E_STDERR" "choird: --sim-duration: "
assert_contains "$E2E_STDERR" "MIN <= MAX"
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --simulate 5 --sim-fail 2
assert_contains "$E2E_STDERR" "choird: --sim-fail: give a rate from 0 to 1"
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --sim-fail 0.5
assert_contains "$E2E_STDERR" "need --simulate N"

e2e_case "a simulated node without a certificate"
assert_exit 2 "$CHOIRD" --foreground --config "$CONF" --simulate 45
assert_contains "$E2E_STDERR" "$CERTS/sim-00045.pem: cannot read: No such file or directory"
assert_true "it never served" bash -c "! grep -q 'serving puppet' '$E2E_STDERR'"

e2e_summary
