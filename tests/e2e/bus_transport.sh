#!/usr/bin/env bash
# bus_transport.sh - the AMQP transport (src/net/bus.c) against a real,
# private RabbitMQ.
#
# Usage: tests/e2e/bus_transport.sh PATH_TO_bus_transport_BINARY
#
# Starts a broker with tests/e2e/rabbitmq.sh (plain AMQP and amqps on free
# loopback ports, a test Puppet CA from scripts/testca), checks that the
# broker itself insists on a client certificate, runs the C driver
# (tests/e2e/bus_transport.c: TLS, logins, routing, replies, expiration,
# oversized messages, heartbeats, a broker restart with reconnection), then
# checks the topology the driver left on the broker.  Everything runs in a
# private temporary directory and is stopped on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"

[ $# -eq 1 ] || { echo "usage: $0 PATH_TO_bus_transport_BINARY" >&2; exit 2; }
DRIVER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$DRIVER" ] || e2e_die "$1 is not an executable"

e2e_tmpdir
RMQ=$E2E_TMP/rmq
rmq_start "$RMQ" --clients "alice.mcollective" --foreign "mallory.mcollective" \
    --revoked "" --expired "" || e2e_die "the test broker did not start"
echo "# broker started in ${RMQ_START_SECONDS}s (plain $RMQ_PORT, TLS $RMQ_TLS_PORT)"

# ---- the broker's own TLS policy -------------------------------------------

e2e_case "broker TLS policy"
# Without a client certificate the broker must end the handshake (TLS 1.2
# fails in the handshake; with TLS 1.3 the alert comes on the first read).
if printf 'AMQP\0\0\11\1' | timeout 10 openssl s_client -connect "127.0.0.1:$RMQ_TLS_PORT" \
    -CAfile "$RMQ_CA_DIR/alice.mcollective/ssl/certs/ca.pem" -quiet \
    >"$E2E_TMP/s_client.out" 2>&1; then
    :
fi
assert_true "no client certificate: the broker refuses" \
    grep -qiE "certificate required|handshake failure|alert" "$E2E_TMP/s_client.out"

# ---- the driver ----------------------------------------------------------------

# alice's ssldir, but trusting the other CA: the broker's certificate fails.
WRONG=$E2E_TMP/wrong-ca/ssl
mkdir -p "$WRONG"
cp -r "$RMQ_CA_DIR/alice.mcollective/ssl/." "$WRONG/"
cp "$RMQ_CA_DIR/other-ca/ca_crt.pem" "$WRONG/certs/ca.pem"

export RMQ_HOST RMQ_PORT RMQ_TLS_PORT RMQ_USER RMQ_PASS RMQ_VHOST RMQ_CA_DIR
BUS_TEST_CLOSED_PORT=$(e2e_free_port)
export BUS_TEST_CLOSED_PORT
export BUS_TEST_WRONG_CA_SSLDIR=$WRONG
printf -v BUS_TEST_RESTART 'bash %q restart %q >%q 2>&1' "$HERE/rabbitmq.sh" "$RMQ" "$E2E_TMP/restart.log"
export BUS_TEST_RESTART

e2e_case "driver"
"$DRIVER" >"$E2E_TMP/driver.out" 2>&1
status=$?
cat "$E2E_TMP/driver.out"
if [ -s "$E2E_TMP/restart.log" ]; then
    echo "# restart output:"
    sed 's/^/#   /' "$E2E_TMP/restart.log"
fi
if [ "$status" -eq 0 ]; then
    e2e_pass "$(tail -n 1 "$E2E_TMP/driver.out")"
else
    e2e_fail "driver exited $status: $(tail -n 1 "$E2E_TMP/driver.out")"
fi

# ---- what the driver left on the broker ----------------------------------------

e2e_case "topology"
rmq_ctl list_exchanges -p "$RMQ_VHOST" name type durable >"$E2E_TMP/exchanges" 2>&1
assert_true "mcollective_broadcast is a durable topic exchange" \
    grep -qP '^mcollective_broadcast\ttopic\ttrue$' "$E2E_TMP/exchanges"
assert_true "mcollective_directed is a durable direct exchange" \
    grep -qP '^mcollective_directed\tdirect\ttrue$' "$E2E_TMP/exchanges"
rmq_ctl list_queues -p "$RMQ_VHOST" name durable auto_delete exclusive arguments \
    >"$E2E_TMP/queues" 2>&1
assert_true "node queues are durable, shared, kept, with x-expires" \
    grep -qP '^mcollective\.node\.a\.example\ttrue\tfalse\tfalse\t.*x-expires' "$E2E_TMP/queues"
assert_true "node queue f.example survived the broker restart" \
    grep -qP '^mcollective\.node\.f\.example\t' "$E2E_TMP/queues"
assert_true "no reply queue outlives its connection" \
    bash -c "! grep -q '^amq\.gen' '$E2E_TMP/queues'"
rmq_ctl list_bindings -p "$RMQ_VHOST" source_name destination_name routing_key \
    >"$E2E_TMP/bindings" 2>&1
assert_true "b.example is bound to its identity and both agents" \
    bash -c "grep -qP '^mcollective_directed\tmcollective\.node\.b\.example\tb\.example$' '$E2E_TMP/bindings' &&
             grep -qP '^mcollective_broadcast\tmcollective\.node\.b\.example\tpuppet$' '$E2E_TMP/bindings' &&
             grep -qP '^mcollective_broadcast\tmcollective\.node\.b\.example\trpcutil$' '$E2E_TMP/bindings'"

e2e_summary
