#!/usr/bin/env bash
# live.sh - the console (TUI) over a real, demo-sized deploy: `choir run`
# of the 2016 example site (examples/sample_app.json: dev1 runs the
# databases, dev2..dev4 the web apps) inside a private tmux server, against
# four real choird nodes on a private RabbitMQ, each running real `puppet
# apply` of a slow manifest (an exec that touches started.TAG, sleeps and
# touches done.TAG, so the script knows what ran and when).
# Usage: live.sh PATH_TO_CHOIR PATH_TO_CHOIRD
#
# What is checked:
# - the plan screen asks "Run this plan ...? (y/n)"; n leaves and no node
#   was touched (Puppet not disabled, no job in the journal);
# - pause holds the next batch (--batch 1): p while dev1 runs; dev1
#   finishes, the job says paused, and once the job has answered a
#   status request after dev1's verdict (so it has had its chance to
#   start the next step) dev2 has not started; c starts dev2;
# - abort asks, Cancel being the default: A then n, and A then esc, leave
#   the job running; A then y aborts it: dev2's run finishes, dev3 and
#   dev4 never start, the job ends aborted;
# - q on a running job asks (n keeps it running); q then y pauses the job
#   and leaves: `choir jobs` lists it paused and `choir resume --no-tui`
#   finishes it without running dev1 twice.
# Waits are bounded polls (tests/ui/lib.sh).  About 50 s on 2 cores.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/../e2e/rabbitmq.sh"
. "$HERE/../e2e/sandbox.sh"
. "$HERE/lib.sh"

CHOIR=${1:?usage: live.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: live.sh CHOIR CHOIRD}
SITE=$HERE/../../examples/sample_app.json
NODES="dev1.devco.net dev2.devco.net dev3.devco.net dev4.devco.net"
N1=dev1.devco.net N2=dev2.devco.net N3=dev3.devco.net N4=dev4.devco.net
UI_WAIT=20
RUN_WAIT=120

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG="" TZ=UTC XDG_RUNTIME_DIR=$E2E_TMP/xdg
unset CHOIR_CONFIG XDG_CONFIG_HOME NO_COLOR
mkdir -p "$HOME" && mkdir -m 0700 "$XDG_RUNTIME_DIR"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective $NODES" || e2e_die "the broker did not start"

# A run of TAG on the node: started.TAG, SECONDS of work, done.TAG; every
# start is also a line in runs.log.
slow_manifest() { # NODE TAG SECONDS
    local d=$E2E_TMP/$1
    rm -f "$d/started.$2" "$d/done.$2"
    sandbox_manifest "$1" "exec { 'deploy $2':
  command => '/bin/sh -c \"echo $2 >>$d/runs.log; touch $d/started.$2; sleep $3; touch $d/done.$2\"',
}"
}
started() { [ -e "$E2E_TMP/$1/started.$2" ]; }
# Waits for FILE; gives up early when the console has ended.
wait_file() { # SECONDS FILE
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [ -e "$2" ] && return 0
        [ -s "$UI_STATUS" ] && return 1
        sleep 0.1
    done
    return 1
}
assert_file() { # WHAT SECONDS FILE
    if wait_file "$2" "$3"; then e2e_pass "$1"; else e2e_fail "$1: no ${3#"$E2E_TMP"/}"; _ui_show_screen; fi
}
assert_no_file() { # WHAT FILE
    if [ ! -e "$2" ]; then e2e_pass "$1"; else e2e_fail "$1: ${2#"$E2E_TMP"/} exists"; fi
}

for n in $NODES; do
    sandbox_puppet_node "$n"
    slow_manifest "$n" none 0
    sandbox_start "$n" "$CHOIRD"
done
for n in $NODES; do
    sandbox_wait "$n" || e2e_die "choird on $n did not start: $(tail -n 3 "$E2E_TMP/$n/choird.log")"
done
sandbox_operator alice.mcollective rpc.timeout=5 "job.journal=$E2E_TMP/journal.db"
CONF=$E2E_TMP/alice.mcollective.conf
C() { "$CHOIR" "$@" --config "$CONF"; }
console() { # CHOIR ARGS...: choir in the tmux pane, 100x30; stderr to $E2E_TMP/console.err
    ui_start --size 100x30 --stderr "$E2E_TMP/console.err" "$CHOIR" "$@" --config "$CONF"
}

# ---- the plan screen: n leaves without touching anything ----
e2e_case "plan screen"
console run --site "$SITE" --batch 1 --job-id L0
ui_assert_screen "the plan is shown with the question" "Run this plan on 4 nodes in 2 groups? (y/n)"
ui_assert_screen "it lists the database node" "$N1"
ui_send n
if ui_wait_exit && [ "$UI_EXIT" != "" ]; then e2e_pass "n leaves"; else e2e_fail "n leaves"; _ui_show_screen; fi
assert_no_file "no node was disabled" "$E2E_TMP/$N1/var/state/agent_disabled.lock"
assert_exit 0 C jobs
assert_true "the journal holds no job L0" bash -c '! grep -q "L0" "$0"' "$E2E_STDOUT"

# ---- pause holds the next batch ----
e2e_case "pause"
for n in $NODES; do slow_manifest "$n" L1 6; done
console run --site "$SITE" --batch 1 --job-id L1
ui_assert_screen "the plan asks" "(y/n)"
ui_send y
assert_file "dev1 starts" "$RUN_WAIT" "$E2E_TMP/$N1/started.L1"
ui_assert_screen "the tree shows dev1 running" "$N1 running"
ui_send p
ui_assert_screen "the job says paused" "paused"
assert_file "dev1's run goes on to its end" "$RUN_WAIT" "$E2E_TMP/$N1/done.L1"
ui_assert_screen "dev1 succeeds" "✓ $N1 succeeded" "$RUN_WAIT"
# The job answers status after it judged dev1 and ended its step, so any
# next step would have started by then.
assert_exit 0 "$CHOIR" ctl L1 status
assert_contains "$E2E_STDOUT" "ok: paused: 1 succeeded, 0 failed, 0 running, 3 waiting"
assert_no_file "dev2 did not start while paused" "$E2E_TMP/$N2/started.L1"
ui_assert_screen "the tree still shows dev2 waiting" "$N2 waiting"
ui_send c
assert_file "c starts dev2" "$RUN_WAIT" "$E2E_TMP/$N2/started.L1"
ui_assert_screen "the tree shows dev2 running" "$N2 running"

# ---- abort asks, Cancel is the default ----
e2e_case "abort"
ui_send A
ui_assert_screen "A asks" "Abort job L1? Runs in flight finish"
ui_assert_screen "Cancel is the default" "[y/N]"
ui_send n
ui_assert_screen "n cancels" "abort: cancelled"
ui_send A
ui_assert_screen "A asks again" "Abort job L1?"
ui_send Escape
ui_wait_gone "Abort job L1?"
assert_exit 0 "$CHOIR" ctl L1 status
assert_contains "$E2E_STDOUT" "ok: running:"
ui_send A
ui_assert_screen "A asks a third time" "Abort job L1?"
ui_send y
ui_assert_screen "y aborts" "aborted" "$RUN_WAIT"
assert_file "dev2's run in flight finished" 5 "$E2E_TMP/$N2/done.L1"
assert_no_file "dev3 never started" "$E2E_TMP/$N3/started.L1"
assert_no_file "dev4 never started" "$E2E_TMP/$N4/started.L1"
ui_send q
if ui_wait_exit && [ "$UI_EXIT" = 6 ]; then
    e2e_pass "q leaves the aborted job, exit 6"
else
    e2e_fail "q leaves the aborted job, exit 6 (got ${UI_EXIT:-still running})"
    _ui_show_screen
fi
assert_exit 0 C unlock L1

# ---- q on a running job asks, pauses it and leaves it resumable ----
e2e_case "quit"
slow_manifest "$N1" L2 8
for n in $N2 $N3 $N4; do slow_manifest "$n" L2 1; done
console run --site "$SITE" --yes --job-id L2
assert_file "dev1 starts" "$RUN_WAIT" "$E2E_TMP/$N1/started.L2"
ui_send q
ui_assert_screen "q asks" "Leave? Job L2 will be paused"
ui_send n
ui_assert_screen "n cancels" "quit: cancelled"
assert_exit 0 "$CHOIR" ctl L2 status
assert_contains "$E2E_STDOUT" "ok: running:"
ui_send q
ui_assert_screen "q asks again" "Leave? Job L2"
ui_send y
if ui_wait_exit 30; then e2e_pass "y leaves"; else e2e_fail "y leaves"; _ui_show_screen; fi
assert_true "choir run said it left (exit $UI_EXIT)" test "$UI_EXIT" = 6
assert_contains "$E2E_TMP/console.err" "left job L2 while it was paused; 'choir resume L2' goes on"
assert_exit 0 C jobs
assert_true "choir jobs lists L2 paused" grep -E "L2.*paused" "$E2E_STDOUT"
assert_exit 0 C resume L2 --no-tui
assert_true "every node ran" test -e "$E2E_TMP/$N2/done.L2" -a -e "$E2E_TMP/$N3/done.L2" -a -e "$E2E_TMP/$N4/done.L2"
assert_true "dev1 ran once" test "$(grep -c L2 "$E2E_TMP/$N1/runs.log")" = 1
assert_exit 0 C jobs
assert_true "choir jobs lists L2 succeeded" grep -E "L2.*succeeded" "$E2E_STDOUT"

e2e_summary
