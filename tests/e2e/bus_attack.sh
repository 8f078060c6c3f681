#!/usr/bin/env bash
# bus_attack.sh - the negative tests of the bus, end to end: crafted and
# forged messages against real choird nodes over a real RabbitMQ (TLS,
# certificates from a test Puppet CA), then a broker restart.
#
# Usage: bus_attack.sh PATH_TO_CHOIR PATH_TO_CHOIRD PATH_TO_bus_attack
#
# Contract:
# - Starts a private broker (tests/e2e/rabbitmq.sh) with the identities the
#   attacks need: two nodes, an allowed operator (alice.mcollective), one
#   outside the allow list (bob.example.net), and certificates of another
#   CA, revoked and expired; starts two choird nodes in the foreground,
#   logging to files.
# - Runs the driver (tests/e2e/bus_attack.c) against dev1: every attack gets
#   no reply (or statuscode 4 for bad data) and writes no lock; a forged
#   reply signed by dev2 is refused by the console.  Its checks count here.
# - Then checks dev1's log: each rejected request id with its verdict name,
#   each malformed message with its reason, the total of rejections, no
#   sanitizer report, and both choird still running.
# - Restarts the broker while a long-lived driver calls status in a loop:
#   choird reconnects by itself, rpc_call recovers, and a fresh
#   `choir status` answers again within a bounded time.
# - Closes with "bus_attack: N passed, M failed"; exit 1 on failures.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

[ $# -eq 3 ] || { echo "usage: $0 PATH_TO_CHOIR PATH_TO_CHOIRD PATH_TO_bus_attack" >&2; exit 2; }
CHOIR=$1
CHOIRD=$2
DRIVER=$3
for b in "$CHOIR" "$CHOIRD" "$DRIVER"; do [ -x "$b" ] || e2e_die "$b is not an executable"; done

TARGET=dev1.example.net
OTHER=dev2.example.net
NODES="$TARGET $OTHER"
RESTART_BOUND=120 # seconds for `choir status` to answer again after a broker restart

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective bob.example.net $NODES" \
    --foreign mallory.mcollective --revoked revoked.mcollective --expired expired.mcollective ||
    e2e_die "broker did not start"
CA=$RMQ_CA_DIR
echo "# broker started in ${RMQ_START_SECONDS}s (TLS $RMQ_TLS_PORT)"

# ---- nodes -------------------------------------------------------------------

start_node() {
    sandbox_node "$1"
    sandbox_start "$1" "$CHOIRD"
    e2e_on_exit kill -CONT "$(cat "$E2E_TMP/$1/pid")" # runs first: a node paused by the driver can die
}

node_pid() { cat "$E2E_TMP/$1/pid"; }
node_log() { echo "$E2E_TMP/$1/choird.log"; }
node_log_has() { grep -qF -- "$2" "$(node_log "$1")"; }
node_alive() { kill -0 "$(node_pid "$1")" 2>/dev/null; }
no_sanitizer_report() { ! grep -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$1"; }

wait_log() { # NODE TEXT SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        node_log_has "$1" "$2" && return 0
        sleep 0.1
    done
    return 1
}

for n in $NODES; do start_node "$n"; done
e2e_case "nodes start"
for n in $NODES; do assert_true "$n serves" wait_log "$n" "serving puppet as $n" 20; done

sandbox_operator alice.mcollective rpc.discovery_timeout=2 rpc.timeout=5
choir() { "$CHOIR" "$@" --config "$E2E_TMP/alice.mcollective.conf"; }

# ---- the driver ----------------------------------------------------------------

export ATTACK_BROKER=127.0.0.1:$RMQ_TLS_PORT ATTACK_VHOST=$RMQ_VHOST ATTACK_CA_DIR=$CA
export ATTACK_COLLECTIVE=mcollective ATTACK_TARGET=$TARGET ATTACK_OTHER=$OTHER
export ATTACK_TARGET_PID; ATTACK_TARGET_PID=$(node_pid "$TARGET")
export ATTACK_LOCKFILE=$E2E_TMP/$TARGET/var/state/agent_disabled.lock
export ATTACK_CALLER=alice.mcollective ATTACK_OUTSIDER=bob.example.net
export ATTACK_FOREIGN=mallory.mcollective ATTACK_REVOKED=revoked.mcollective
export ATTACK_EXPIRED=expired.mcollective
export ATTACK_PLAIN_BROKER=127.0.0.1:$RMQ_PORT ATTACK_USER=$RMQ_USER ATTACK_PASS=$RMQ_PASS
export ATTACK_EXPECT=$E2E_TMP/expect

# fold_counts FILE STATUS: shows the driver's lines and adds its counts to
# ours (a driver that died without its closing line is a failure).
fold_counts() {
    local out=$1 status=$2 counts
    grep -v '^bus_attack: ' "$out"
    counts=$(sed -n 's/^bus_attack: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$out" |
        tail -n 1)
    if [ -z "$counts" ]; then
        e2e_fail "the driver exited $status without its closing line"
        return 1
    fi
    E2E_PASSED=$((E2E_PASSED + ${counts% *}))
    E2E_FAILED=$((E2E_FAILED + ${counts#* }))
    [ "$status" -eq 0 ] || [ "${counts#* }" -gt 0 ] || e2e_fail "the driver exited $status"
}

e2e_case "attacks"
echo "# driver: attacks on $TARGET"
status=0
"$DRIVER" >"$E2E_TMP/attack.out" 2>&1 || status=$?
fold_counts "$E2E_TMP/attack.out" "$status"

# ---- what the node logged ---------------------------------------------------------

LOG=$(node_log "$TARGET")
e2e_case "$TARGET's log"
assert_true "the driver wrote its expectations" test -s "$ATTACK_EXPECT"
log_malformed_has() { grep -F -- "rejected a message: malformed: " "$LOG" | grep -qF -- "$1"; }
while read -r kind rest; do
    case "$kind" in
    verdict)
        assert_true "request ${rest% *} rejected as ${rest#* }" \
            grep -qE "rejected request ${rest% *} from [^ ]+: ${rest#* }: " "$LOG"
        ;;
    malformed)
        assert_true "a message rejected as malformed: $rest" log_malformed_has "$rest"
        ;;
    esac
done <"$ATTACK_EXPECT"
EXPECTED_REJECTIONS=$(sed -n 's/^rejected //p' "$ATTACK_EXPECT")
for verdict in bad_signature untrusted_certificate revoked certificate_expired callerid_mismatch \
    caller_not_allowed expired replayed wrong_collective; do
    assert_true "logs the verdict $verdict" \
        grep -qE "rejected request [0-9a-f]{32} from [^ ]+: $verdict: " "$LOG"
done
assert_true "logs malformed messages" grep -qF "rejected a message: malformed: " "$LOG"
assert_true "refused shell metacharacters with statuscode 4" \
    grep -qF "alice.mcollective called puppet.disable: 4 " "$LOG"
assert_true "no sanitizer report" no_sanitizer_report "$LOG"
for n in $NODES; do assert_true "$n's choird is still running" node_alive "$n"; done

# ---- broker restart ------------------------------------------------------------

e2e_case "broker restart"
assert_exit 0 choir status "$TARGET"
READY=$E2E_TMP/loop.ready
"$DRIVER" loop 150 "$READY" >"$E2E_TMP/loop.out" 2>&1 &
LOOP_PID=$!
e2e_on_exit kill "$LOOP_PID"
for _ in $(seq 300); do
    [ -e "$READY" ] || ! kill -0 "$LOOP_PID" 2>/dev/null && break
    sleep 0.1
done
assert_true "the looping console got its first answer" test -e "$READY"
# shellcheck disable=SC2119 # no --kill: a clean broker shutdown
rmq_restart || e2e_die "the broker did not start again"
echo "# broker restarted in ${RMQ_START_SECONDS}s"
start=$(date +%s)
tries=0
answered=""
while [ $(($(date +%s) - start)) -lt "$RESTART_BOUND" ]; do
    tries=$((tries + 1))
    if choir status "$TARGET" --timeout 3 >"$E2E_STDOUT" 2>"$E2E_STDERR" </dev/null; then
        answered=$(($(date +%s) - start))
        break
    fi
    sleep 1
done
if [ -n "$answered" ]; then
    e2e_pass "choir status $TARGET answers again ${answered}s after the restart ($tries tries)"
else
    e2e_fail "choir status $TARGET did not answer within ${RESTART_BOUND}s of the restart"
    e2e_show_last
fi
assert_contains "$E2E_STDOUT" "$TARGET"
for n in $NODES; do
    assert_true "$n lost the broker and said so" node_log_has "$n" "lost the broker"
    assert_true "$n reconnected by itself" wait_log "$n" "reconnected to 127.0.0.1:$RMQ_TLS_PORT" 30
done
assert_exit 0 choir status "$OTHER" --timeout 5
wait "$LOOP_PID"
loop_status=$?
echo "# driver: status loop across the restart"
fold_counts "$E2E_TMP/loop.out" "$loop_status"

# ---- shutdown: the node counted every rejection ------------------------------------

e2e_case "clean shutdown"
for n in $NODES; do kill -TERM "$(node_pid "$n")"; done
for n in $NODES; do
    for _ in $(seq 100); do node_alive "$n" || break; sleep 0.1; done
    assert_true "$n exits on SIGTERM" bash -c "! kill -0 $(node_pid "$n") 2>/dev/null"
done
EXPECTED_DROPPED=$(sed -n 's/^dropped //p' "$ATTACK_EXPECT")
assert_true "$TARGET rejected exactly the $EXPECTED_REJECTIONS attacks and dropped the $EXPECTED_DROPPED oversized" \
    grep -qE "stopping on signal 15: served [0-9]+, rejected $EXPECTED_REJECTIONS, dropped $EXPECTED_DROPPED oversized\$" "$LOG"
assert_true "$OTHER rejected nothing" \
    grep -qE "stopping on signal 15: served [0-9]+, rejected 0, dropped 0 oversized\$" "$(node_log "$OTHER")"
for n in $NODES; do
    assert_true "$n: no sanitizer report" no_sanitizer_report "$(node_log "$n")"
done

e2e_summary
