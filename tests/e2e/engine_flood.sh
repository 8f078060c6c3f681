#!/usr/bin/env bash
# engine_flood.sh - the pipe: the job engine floods state changes at a
# consumer that does not read (tests/e2e/engine_flood.c), over a real
# RabbitMQ (TLS, certificates from a test Puppet CA) against
# `choird --simulate 2000` with runs of 0-50 ms.  The site is 500 stacks of
# 4 layers (a chain of capabilities), so the plan has 4 groups of 500.
# Then a job of 200 of those nodes (--canary 10 --batch 25) whose consumer
# reads while the core works, and resumes the job after the canary.
# Usage: engine_flood.sh PATH_TO_CHOIR PATH_TO_CHOIRD PATH_TO_SIMCERTS PATH_TO_engine_flood
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

CHOIRD=${2:?usage: engine_flood.sh CHOIR CHOIRD SIMCERTS DRIVER}
export CHOIR_SIMCERTS=${3:?usage: engine_flood.sh CHOIR CHOIRD SIMCERTS DRIVER}
DRIVER=${4:?usage: engine_flood.sh CHOIR CHOIRD SIMCERTS DRIVER}
PY=/usr/bin/python3
SIM=choird-sim
STACKS=500
LAYERS=4
READ_STACKS=50
NSIM=$((STACKS * LAYERS))

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective" --sim "$NSIM" || e2e_die "broker did not start"
LOG=$E2E_TMP/$SIM/choird.log

sandbox_node "$SIM" "run.state_dir=$E2E_TMP/simstate"
"$CHOIRD" --foreground --config "$E2E_TMP/$SIM/choird.conf" --simulate "$NSIM" \
    --sim-duration 0:0.05 2>>"$LOG" &
e2e_on_exit kill "$!"
for ((i = 0; i < 600; i++)); do
    grep -qF "serving puppet as $NSIM simulated nodes" "$LOG" 2>/dev/null && break
    sleep 0.1
done
grep -qF "serving puppet as $NSIM simulated nodes" "$LOG" ||
    { e2e_log_tail "$LOG"; e2e_die "the simulator did not start"; }

# site STACKS FILE: stack s (0-based) is sim nodes s+1, s+1+STACKS, ...;
# its layer l produces Layer[s-l] and consumes Layer[s-(l-1)].
site() {
    $PY - "$1" "$LAYERS" >"$2" <<'EOF'
import json, sys
stacks, layers = int(sys.argv[1]), int(sys.argv[2])
apps = {}
for s in range(stacks):
    comps = {}
    for l in range(layers):
        comps["Stack::Layer%d[s%d]" % (l, s)] = {
            "node": "sim-%05d" % (l * stacks + s + 1),
            "produces": ["Layer[s%d-%d]" % (s, l)],
            "consumes": ["Layer[s%d-%d]" % (s, l - 1)] if l else [],
        }
    apps["Stack[s%d]" % s] = comps
json.dump({"environment": "production", "applications": apps, "code_id": None}, sys.stdout)
EOF
}
site "$STACKS" "$E2E_TMP/flood.json"
site "$READ_STACKS" "$E2E_TMP/read.json"

# Bounds, not waits (a directed request ends with its last reply): room
# for the slow sanitizer builds, where choird answers 2000 nodes slowly.
sandbox_operator alice.mcollective rpc.discovery_timeout=3 rpc.timeout=300 rpc.ttl=600
mkdir -m 700 "$E2E_TMP/journal"

# driver CASE MODE SITE NODES: runs the driver, passes on its verdict.
driver() {
    local start=$SECONDS status=0 out=$E2E_TMP/$2.out
    e2e_case "$1"
    "$DRIVER" "$2" "$E2E_TMP/alice.mcollective.conf" "$E2E_TMP/journal" "$3" "$4" "$LAYERS" \
        >"$out" 2>&1 || status=$?
    sed 's/^/  /' "$out"
    echo "# $2: the driver took $((SECONDS - start)) s"
    if [ "$status" -eq 0 ]; then
        e2e_pass "$(tail -n 1 "$out")"
    else
        e2e_log_tail "$LOG"
        e2e_fail "driver exited $status: $(tail -n 1 "$out")"
    fi
}

driver "a job of $NSIM nodes in $LAYERS groups, nobody reading" flood "$E2E_TMP/flood.json" "$NSIM"
driver "a job of $((READ_STACKS * LAYERS)) nodes, canary and batches, a consumer that reads" \
    read "$E2E_TMP/read.json" "$((READ_STACKS * LAYERS))"

e2e_case "choird"
assert_true "choird logged no forged or malformed message" bash -c "! grep -qi 'forged\\|malformed' '$LOG'"
assert_true "no sanitizer report in choird's log" bash -c "! grep -q 'Sanitizer' '$LOG'"

e2e_summary
