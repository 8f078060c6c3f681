#!/usr/bin/env bash
# request_cert.sh - `choir request-cert` against a real PuppetServer CA.
#
# Usage: tests/e2e/request_cert.sh PATH_TO_CHOIR_BINARY
#
# Starts Debian's puppetserver on a free loopback port (tests/e2e/
# puppetserver.sh; autosign only *.mcollective) and checks: a first request
# gets a signed certificate (files, modes, CN, chain to the server's CA, the
# CA fingerprint shown, the CRL); a second run refuses to overwrite; a name
# that is not autosigned waits, counts down (plain lines, and in place on a
# terminal), times out and keeps its key and request; a later run resumes,
# and after `puppetserver ca sign` gets the certificate; the CA's refusals
# (a name already signed, another key's pending request) and unreachable
# servers are one-line errors with the right exit codes.  Takes about 1.5
# minutes, most of it PuppetServer's start-up.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/puppetserver.sh
. "$HERE/puppetserver.sh"

[ $# -eq 1 ] || { echo "usage: $0 PATH_TO_CHOIR_BINARY" >&2; exit 2; }
CHOIR=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$CHOIR" ] || e2e_die "$1 is not an executable"
command -v openssl >/dev/null || e2e_die "openssl not found (apt-get install openssl)"

e2e_tmpdir

# Isolation: no user or system configuration, no CHOIR_* settings.
export HOME=$E2E_TMP/home
mkdir -p "$HOME"
while read -r var; do unset "$var"; done < <(compgen -v CHOIR_)
unset XDG_CONFIG_HOME
export CHOIR_SYSTEM_CONFIG=""

ps_start "$E2E_TMP/ps" '*.mcollective' || e2e_die "puppetserver did not start"
echo "# puppetserver started in ${PS_START_SECONDS}s on 127.0.0.1:$PS_PORT"
CA=127.0.0.1:$PS_PORT

mode() { stat -c %a "$1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# The checks every obtained certificate must pass.
check_obtained() { # SSLDIR CERTNAME
    local ssl=$1 name=$2 cert=$1/certs/$2.pem key=$1/private_keys/$2.pem
    assert_true "certificate $name.pem written" test -s "$cert"
    assert_true "key is 0600" test "$(mode "$key")" = 600
    assert_true "private_keys/ is 0700" test "$(mode "$ssl/private_keys")" = 700
    assert_true "certs/ is 0755" test "$(mode "$ssl/certs")" = 755
    assert_true "request kept" test -s "$ssl/certificate_requests/$name.pem"
    assert_true "CN is $name" \
        bash -c "openssl x509 -in '$cert' -noout -subject -nameopt RFC2253 | grep -qx 'subject=CN=$name'"
    assert_true "chains to the server's CA (openssl verify)" openssl verify -CAfile "$PS_CA_PEM" "$cert"
    assert_true "chains to the saved certs/ca.pem" openssl verify -CAfile "$ssl/certs/ca.pem" "$cert"
    assert_true "certificate is for the key" \
        bash -c "diff <(openssl x509 -in '$cert' -noout -pubkey) <(openssl pkey -in '$key' -pubout)"
    assert_true "crl.pem is the CA's CRL" openssl crl -in "$ssl/crl.pem" -CAfile "$PS_CA_PEM" -noout
}

# ---- a first request, autosigned ------------------------------------------

e2e_case "first request"
A=$E2E_TMP/alice/ssl
CA_FP=$(openssl x509 -in "$PS_CA_PEM" -noout -fingerprint -sha256 | cut -d= -f2)
assert_exit 0 "$CHOIR" request-cert --ca "$CA" --certname alice.mcollective --ssldir "$A" --wait 30
assert_contains "$E2E_STDERR" "trusting its certificate on first use"
assert_contains "$E2E_STDERR" "SHA-256 fingerprint $CA_FP"
assert_contains "$E2E_STDOUT" "alice.mcollective: certificate saved in $A/certs/alice.mcollective.pem"
check_obtained "$A" alice.mcollective

# ---- never overwrite -------------------------------------------------------

e2e_case "second run refuses"
KEY_SUM=$(sha "$A/private_keys/alice.mcollective.pem")
CERT_SUM=$(sha "$A/certs/alice.mcollective.pem")
assert_exit 2 "$CHOIR" request-cert --ca "$CA" --certname alice.mcollective --ssldir "$A"
assert_contains "$E2E_STDERR" "$A/certs/alice.mcollective.pem already exists: refusing to overwrite it"
assert_true "key unchanged" test "$(sha "$A/private_keys/alice.mcollective.pem")" = "$KEY_SUM"
assert_true "certificate unchanged" test "$(sha "$A/certs/alice.mcollective.pem")" = "$CERT_SUM"

e2e_case "a name the CA already signed, with a new key"
assert_exit 2 "$CHOIR" request-cert --ca "$CA" --certname alice.mcollective \
    --ssldir "$E2E_TMP/alice2/ssl" --wait 0
assert_contains "$E2E_STDERR" "certificate_request/alice.mcollective: HTTP 400: alice.mcollective already has a signed certificate"
assert_true "one line" test "$(grep -vc '^\(first contact\|CA \|  \|saved\|new \)' "$E2E_STDERR")" = 1

# ---- not autosigned: wait, time out, resume --------------------------------

e2e_case "not autosigned: waits and times out"
B=$E2E_TMP/bob/ssl
start=$(date +%s)
assert_exit 4 "$CHOIR" request-cert --ca "$CA" --certname bob.example --ssldir "$B" --wait 5
took=$(($(date +%s) - start))
assert_contains "$E2E_STDERR" "waiting for the CA to sign bob.example: not signed yet, 5 s left"
assert_contains "$E2E_STDERR" "certificate/bob.example: HTTP 404: bob.example is not signed after 5 s"
assert_contains "$E2E_STDERR" "run 'choir request-cert' again"
assert_true "gave up after about 5 s (took ${took}s)" test "$took" -ge 4 -a "$took" -le 20
assert_true "key kept (0600)" test "$(mode "$B/private_keys/bob.example.pem")" = 600
assert_true "request kept" test -s "$B/certificate_requests/bob.example.pem"
assert_true "no certificate" test ! -e "$B/certs/bob.example.pem"
CSR_FP=$(grep -A1 "request $B/certificate_requests/bob.example.pem" "$E2E_STDERR" |
    sed -n 's/.*SHA-256 fingerprint \([0-9A-F:]*\).*/\1/p')
assert_true "the CA lists the request with our fingerprint" \
    bash -c "$(declare -f ps_ca); ps_ca list | grep -F bob.example | grep -qF '$CSR_FP'"

e2e_case "resumed on a terminal: countdown in place"
KEY_SUM=$(sha "$B/private_keys/bob.example.pem")
printf -v cmd '%q ' "$CHOIR" request-cert --ca "$CA" --certname bob.example --ssldir "$B" --wait 3
assert_exit 4 script -qefc "$cmd" /dev/null
assert_contains "$E2E_STDOUT" "resuming with the existing private key"
assert_contains "$E2E_STDOUT" "already has a requested certificate"
assert_contains "$E2E_STDOUT" "s left (checking every 5 s"
assert_true "the countdown rewrites one line (\\r, erase to end of line)" \
    bash -c "tr '\\r' '\\n' <'$E2E_STDOUT' | grep -c 'waiting for the CA to sign bob.example: [0-9]* s left' | grep -qv '^[01]$' && grep -q \$'\\e\\[K' '$E2E_STDOUT'"
assert_true "key unchanged" test "$(sha "$B/private_keys/bob.example.pem")" = "$KEY_SUM"

e2e_case "signed on the server, then resumed"
assert_true "puppetserver ca sign --certname bob.example" ps_ca sign --certname bob.example
assert_exit 0 "$CHOIR" request-cert --ca "$CA" --certname bob.example --ssldir "$B" --wait 30
assert_contains "$E2E_STDERR" "resuming with the existing private key $B/private_keys/bob.example.pem"
assert_contains "$E2E_STDERR" "CA https://$CA/puppet-ca/v1/certificate/ca verified with $B/certs/ca.pem"
check_obtained "$B" bob.example
assert_true "key unchanged" test "$(sha "$B/private_keys/bob.example.pem")" = "$KEY_SUM"

# ---- the CA holds someone else's request -----------------------------------

e2e_case "another key's pending request"
assert_exit 4 "$CHOIR" request-cert --ca "$CA" --certname carol.example --ssldir "$E2E_TMP/carol1/ssl" --wait 0
assert_exit 2 "$CHOIR" request-cert --ca "$CA" --certname carol.example --ssldir "$E2E_TMP/carol2/ssl" --wait 0
assert_contains "$E2E_STDERR" "the CA holds another request for carol.example, not for our key"

# ---- input and connection errors -------------------------------------------

e2e_case "errors"
assert_exit 2 "$CHOIR" request-cert --ca "$CA" --certname Bad_Name --ssldir "$E2E_TMP/x/ssl"
assert_contains "$E2E_STDERR" '"Bad_Name" is not a valid certname'
assert_exit 2 "$CHOIR" request-cert --wait soon
assert_contains "$E2E_STDERR" "--wait: \"soon\" is not a number of seconds"
DEAD=$(e2e_free_port)
assert_exit 4 "$CHOIR" request-cert --ca "127.0.0.1:$DEAD" --certname dave.mcollective --ssldir "$E2E_TMP/dave/ssl"
assert_contains "$E2E_STDERR" "https://127.0.0.1:$DEAD/puppet-ca/v1/certificate/ca: connection refused"
assert_true "nothing written when the CA cannot be reached" \
    bash -c "test -z \"\$(find '$E2E_TMP/dave/ssl' -type f)\""

e2e_case "a second identity in an ssldir that trusts the CA already"
assert_exit 0 "$CHOIR" request-cert --ca "localhost:$PS_PORT" --certname erin.mcollective --ssldir "$A" --wait 0
assert_contains "$E2E_STDERR" "CA https://localhost:$PS_PORT/puppet-ca/v1/certificate/ca verified with $A/certs/ca.pem"
assert_true "no trust on first use this time" bash -c "! grep -q 'first use' '$E2E_STDERR'"
check_obtained "$A" erin.mcollective

e2e_case "a server that is not our CA"
W=$E2E_TMP/wrong/ssl
mkdir -p "$W/certs"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$E2E_TMP/wrong/key.pem" -subj "/CN=Other CA" \
    -days 1 -out "$W/certs/ca.pem" 2>/dev/null || e2e_die "openssl req failed"
assert_exit 4 "$CHOIR" request-cert --ca "$CA" --certname frank.mcollective --ssldir "$W"
assert_contains "$E2E_STDERR" "the server's certificate is not trusted by $W/certs/ca.pem"
assert_true "no key made" test ! -e "$W/private_keys/frank.mcollective.pem"

e2e_summary
