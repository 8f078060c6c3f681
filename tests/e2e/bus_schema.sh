#!/usr/bin/env bash
# bus_schema.sh - choir's real bus messages validated against the Choria
# protocol v1 JSON schemas, layer by layer.
#
# Usage: bus_schema.sh PATH_TO_CHOIR PATH_TO_CHOIRD
#
# Contract:
# - The schemas are read from $SRC/../shared/reference/choria-protocol/
#   go-choria-v1 (a copy of shared/ sits beside the clone in CI; SRC is the
#   source tree holding this script, or $BUS_SCHEMA_DIR).  Missing schemas,
#   or a /usr/bin/python3 without jsonschema or pika (Debian python3-
#   jsonschema, python3-pika: scripts/setup), are FAILURES, never skips.
# - Starts a private broker (tests/e2e/rabbitmq.sh) and one choird node,
#   turns the broker's firehose on (rabbitmqctl trace_on) and captures every
#   published message with tests/e2e/bus_schema.py, while `choir status`
#   (directed and broadcast), `choir disable` and `choir enable` run.
# - Then bus_schema.py validates each captured body: transport, base64
#   data, secure request/reply, request/reply, against transport.json,
#   secure_request.json, secure_reply.json, request.json and reply.json,
#   plus what the schemas leave open (raw JSON `message`, base64 `data`
#   without newlines, signatures, hashes, the 8 envelope keys, AMQP
#   expiration and reply_to).  Its checks count here.
# - Closes with "bus_schema: N passed, M failed"; exit 1 on failures.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"

[ $# -eq 2 ] || { echo "usage: $0 PATH_TO_CHOIR PATH_TO_CHOIRD" >&2; exit 2; }
CHOIR=$1
CHOIRD=$2
PY=/usr/bin/python3
SRC=$(cd "$HERE/../.." && pwd)
SCHEMAS=${BUS_SCHEMA_DIR:-$SRC/../shared/reference/choria-protocol/go-choria-v1}
NODE=dev1.example.net

e2e_tmpdir

# ---- prerequisites: fail loudly ---------------------------------------------------

e2e_case "prerequisites"
missing=""
for f in transport.json secure_request.json secure_reply.json request.json reply.json; do
    [ -s "$SCHEMAS/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then
    e2e_pass "the Choria v1 schemas are in $SCHEMAS"
else
    e2e_fail "Choria v1 schemas missing:$missing" \
        "looked in $SCHEMAS" \
        "(shared/ is expected beside the source tree; BUS_SCHEMA_DIR overrides)"
fi
assert_true "$PY has jsonschema (python3-jsonschema)" "$PY" -c "import jsonschema"
assert_true "$PY has pika (python3-pika)" "$PY" -c "import pika"
assert_true "openssl is installed" command -v openssl
if [ "$E2E_FAILED" -gt 0 ]; then
    e2e_summary
    exit 1
fi

# ---- broker, node, capture ------------------------------------------------------------

export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective $NODE" --foreign "" --revoked "" \
    --expired "" || e2e_die "broker did not start"
CA=$RMQ_CA_DIR

D=$E2E_TMP/$NODE
mkdir -p "$D/var/state" "$D/run" "$D/public"
cat >"$D/choird.conf" <<CONF
bus.brokers = 127.0.0.1:$RMQ_TLS_PORT
bus.vhost = $RMQ_VHOST
puppet.ssldir = $CA/$NODE/ssl
puppet.certname = $NODE
puppet.lastrunfile = $D/public/last_run_summary.yaml
puppet.lastrunreport = $D/var/state/last_run_report.yaml
puppet.agent_catalog_run_lockfile = $D/var/state/agent_catalog_run.lock
puppet.agent_disabled_lockfile = $D/var/state/agent_disabled.lock
puppet.pidfile = $D/run/agent.pid
log = stderr
CONF
"$CHOIRD" --foreground --config "$D/choird.conf" 2>>"$D/choird.log" &
e2e_on_exit kill "$!"
cat >"$E2E_TMP/alice.conf" <<CONF
bus.brokers = 127.0.0.1:$RMQ_TLS_PORT
bus.vhost = $RMQ_VHOST
puppet.ssldir = $CA/alice.mcollective/ssl
puppet.certname = alice.mcollective
rpc.discovery_timeout = 2
rpc.timeout = 5
CONF
choir() { "$CHOIR" "$@" --config "$E2E_TMP/alice.conf"; }

e2e_case "setup"
for _ in $(seq 200); do
    grep -qF "serving puppet as $NODE" "$D/choird.log" 2>/dev/null && break
    sleep 0.1
done
assert_true "$NODE serves" grep -qF "serving puppet as $NODE" "$D/choird.log"
assert_true "the firehose is on" rmq_ctl trace_on -p "$RMQ_VHOST"
CAPTURE=$E2E_TMP/capture.jsonl
READY=$E2E_TMP/capture.ready
BUS_SCHEMA_PASSWORD=$RMQ_PASS "$PY" "$HERE/bus_schema.py" capture --host 127.0.0.1 \
    --port "$RMQ_PORT" --vhost "$RMQ_VHOST" --user "$RMQ_USER" --out "$CAPTURE" \
    --ready "$READY" --seconds 120 2>"$E2E_TMP/capture.err" &
CAPTURE_PID=$!
e2e_on_exit kill "$CAPTURE_PID"
for _ in $(seq 200); do
    [ -e "$READY" ] || ! kill -0 "$CAPTURE_PID" 2>/dev/null && break
    sleep 0.1
done
assert_true "the capture consumes amq.rabbitmq.trace" test -e "$READY" ||
    sed 's/^/         | /' "$E2E_TMP/capture.err"

# ---- traffic --------------------------------------------------------------------------

e2e_case "traffic"
assert_exit 0 choir status "$NODE"
assert_exit 0 choir status
assert_contains "$E2E_STDOUT" "$NODE"
assert_exit 0 choir disable "$NODE" --message "schema check"
assert_exit 0 choir enable "$NODE"
# Four requests and four replies; the firehose may lag a little behind.
for _ in $(seq 100); do
    [ "$(wc -l <"$CAPTURE" 2>/dev/null || echo 0)" -ge 8 ] && break
    sleep 0.1
done
kill -TERM "$CAPTURE_PID" 2>/dev/null
capture_status=0
wait "$CAPTURE_PID" || capture_status=$?
assert_true "the capture stopped cleanly" test "$capture_status" -eq 0
rmq_ctl trace_off -p "$RMQ_VHOST" >/dev/null 2>&1

# ---- validation ---------------------------------------------------------------------

e2e_case "validate"
status=0
"$PY" "$HERE/bus_schema.py" validate --schemas "$SCHEMAS" --capture "$CAPTURE" \
    --actions status,disable,enable >"$E2E_TMP/validate.out" 2>&1 || status=$?
grep -v '^bus_schema.py: ' "$E2E_TMP/validate.out"
counts=$(sed -n 's/^bus_schema.py: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
    "$E2E_TMP/validate.out")
if [ -n "$counts" ]; then
    E2E_PASSED=$((E2E_PASSED + ${counts% *}))
    E2E_FAILED=$((E2E_FAILED + ${counts#* }))
    [ "$status" -eq 0 ] || [ "${counts#* }" -gt 0 ] || e2e_fail "bus_schema.py exited $status"
else
    e2e_fail "bus_schema.py validate exited $status without its closing line"
fi

e2e_summary
