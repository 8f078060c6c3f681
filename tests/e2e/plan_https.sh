#!/usr/bin/env bash
# plan_https.sh - `choir plan --environment` against nginx standing in for
# PuppetServer's mutual-TLS front.
#
# Usage: tests/e2e/plan_https.sh PATH_TO_CHOIR_BINARY
#
# Makes a test Puppet CA (scripts/testca), starts nginx on a free loopback
# port (TLS, client certificates required and checked against the CA and
# its CRL) serving /puppet/v3/environment/{production,nosuch,broken,secret}
# the way PuppetServer answers, and checks choir's output, exit codes and
# error wording.  A second server, `openssl s_server`, aborts the handshake
# on a bad client certificate the way PuppetServer (Jetty) does.  Nothing
# outside a private temporary directory is touched, and both servers are
# stopped on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 PATH_TO_CHOIR_BINARY" >&2; exit 2; }
CHOIR=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -x "$CHOIR" ] || e2e_die "$1 is not an executable"
NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "$NGINX" ] || e2e_die "$NGINX not found (apt-get install nginx-light)"
command -v openssl >/dev/null || e2e_die "openssl not found (apt-get install openssl)"
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || e2e_die "$PYTHON not found (apt-get install python3)"

e2e_tmpdir

# Isolation: no user or system configuration, no CHOIR_* settings.
export HOME=$E2E_TMP/home
mkdir -p "$HOME"
while read -r var; do unset "$var"; done < <(compgen -v CHOIR_)
unset XDG_CONFIG_HOME
export CHOIR_SYSTEM_CONFIG=""

PKI=$E2E_TMP/pki
"$SRC/scripts/testca" "$PKI" --hosts localhost --clients alice.mcollective \
    || e2e_die "scripts/testca failed"
ALICE=$PKI/alice.mcollective/ssl

# ---- nginx as PuppetServer -------------------------------------------------

PORT=$(e2e_free_port)
NG=$E2E_TMP/nginx
mkdir -p "$NG"

# Binding 127.0.0.2 too lets a test reach the server by an address its
# certificate does not name (Linux routes all of 127/8 to lo).
LISTEN_ALT=""
if "$PYTHON" -c "import socket; socket.socket().bind(('127.0.0.2', $PORT))" 2>/dev/null; then
    LISTEN_ALT="listen 127.0.0.2:$PORT ssl;"
fi

# Temp paths of the modules this nginx build has, all kept in our directory.
temp_paths() {
    local m
    echo "client_body_temp_path \"$NG/body\";"
    for m in proxy fastcgi uwsgi scgi; do
        "$NGINX" -V 2>&1 | grep -q -- "--without-http_${m}_module" ||
            echo "${m}_temp_path \"$NG/$m\";"
    done
}

cat >"$NG/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid "$NG/nginx.pid";
error_log "$NG/error.log" info;
events { worker_connections 64; }
http {
    access_log "$NG/access.log";
    $(temp_paths)
    default_type application/json;
    server {
        listen 127.0.0.1:$PORT ssl;
        $LISTEN_ALT
        server_name localhost;
        ssl_certificate "$PKI/localhost/ssl/certs/localhost.pem";
        ssl_certificate_key "$PKI/localhost/ssl/private_keys/localhost.pem";
        ssl_client_certificate "$PKI/ca/ca_crt.pem";
        ssl_verify_client on;
        ssl_crl "$PKI/ca/ca_crl.pem";

        location = /puppet/v3/environment/production {
            alias "$SRC/examples/sample_app.json";
        }
        location = /puppet/v3/environment/nosuch {
            return 404 '{"message":"Could not find environment \'nosuch\'","issue_kind":"RESOURCE_NOT_FOUND"}';
        }
        location = /puppet/v3/environment/broken {
            return 500 '{"message":"Server Error: Evaluation Error: Error while evaluating a Resource Statement, Unknown resource type: \'lamp::nosuch\' (file: /etc/puppetlabs/code/environments/broken/manifests/site.pp, line: 3, column: 1)","issue_kind":"RUNTIME_ERROR"}';
        }
        location = /puppet/v3/environment/secret {
            return 403 '{"message":"Forbidden request: /puppet/v3/environment/secret (method :get). Please see the server logs for details.","issue_kind":"FORBIDDEN"}';
        }
        location = /puppet/v3/environment/moved {
            return 301 https://puppet.example.com:8140/puppet/v3/environment/production;
        }
        location / {
            return 404 '{"message":"Not Found: No handler for this request","issue_kind":"HANDLER_NOT_FOUND"}';
        }
    }
}
EOF

"$NGINX" -t -q -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" ||
    { cat "$NG/error.log" >&2; e2e_die "nginx rejected the configuration"; }
"$NGINX" -p "$NG" -e "$NG/error.log" -c "$NG/nginx.conf" >"$NG/stdout" 2>&1 &
NGINX_PID=$!
e2e_on_exit wait "$NGINX_PID"
e2e_on_exit kill "$NGINX_PID"
e2e_wait_port "$PORT" 10 "$NGINX_PID" ||
    { cat "$NG/error.log" "$NG/stdout" >&2; e2e_die "nginx did not start on 127.0.0.1:$PORT"; }

# ---- helpers ----------------------------------------------------------------

# plan_env ENV SSLDIR CERTNAME [SERVER] [more choir options...]
plan_env() {
    local env=$1 ssl=$2 cert=$3 server=${4:-127.0.0.1:$PORT}
    shift 3
    [ $# -gt 0 ] && shift
    "$CHOIR" plan --environment "$env" --server "$server" --ssldir "$ssl" --certname "$cert" "$@"
}

# An ssldir for NAME assembled from other parts: clone_ssldir NEW FROM_SSLDIR FROM_NAME
clone_ssldir() {
    local new=$1 from=$2 name=$3
    mkdir -p "$new/certs" "$new/private_keys"
    cp "$from/certs/ca.pem" "$new/certs/ca.pem"
    cp "$from/certs/$name.pem" "$new/certs/$name.pem"
    cp "$from/private_keys/$name.pem" "$new/private_keys/$name.pem"
    cp "$from/crl.pem" "$new/crl.pem"
}

same_json() {
    "$PYTHON" - "$1" "$2" <<'EOF'
import json, sys

def load(path):
    text = open(path, encoding="utf-8").read()
    try:
        return json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]

a, b = load(sys.argv[1]), load(sys.argv[2])
if a != b:
    print("documents differ:\n  %s\n  %s" % (json.dumps(a)[:400], json.dumps(b)[:400]))
    sys.exit(1)
EOF
}

# ---- the checks ---------------------------------------------------------------

e2e_case "production over mutual TLS (--json)"
if assert_exit 0 plan_env production "$ALICE" alice.mcollective "" --json; then
    cp "$E2E_STDOUT" "$E2E_TMP/from_server.json"
    if assert_exit 0 "$CHOIR" plan --site "$SRC/examples/sample_app.json" --json; then
        assert_true "same plan as --site examples/sample_app.json" \
            same_json "$E2E_TMP/from_server.json" "$E2E_STDOUT"
    fi
fi

e2e_case "production over mutual TLS (text)"
assert_exit 0 plan_env production "$ALICE" alice.mcollective
assert_contains "$E2E_STDOUT" "Puppet Site Plan for the production Environment"

e2e_case "server by host name (localhost)"
assert_exit 0 plan_env production "$ALICE" alice.mcollective "localhost:$PORT" --json

e2e_case "unknown environment (404)"
assert_exit 2 plan_env nosuch "$ALICE" alice.mcollective
assert_contains "$E2E_STDERR" "Could not find environment 'nosuch'"
assert_contains "$E2E_STDERR" "HTTP 404"

e2e_case "compile error (500)"
assert_exit 4 plan_env broken "$ALICE" alice.mcollective
assert_contains "$E2E_STDERR" "HTTP 500: Server Error: Evaluation Error"

e2e_case "forbidden by auth.conf (403)"
assert_exit 4 plan_env secret "$ALICE" alice.mcollective
assert_contains "$E2E_STDERR" "HTTP 403"
assert_contains "$E2E_STDERR" "auth.conf allowing alice.mcollective"

e2e_case "redirect (not followed)"
assert_exit 4 plan_env moved "$ALICE" alice.mcollective
assert_contains "$E2E_STDERR" "HTTP 301: redirected to https://puppet.example.com:8140/"

e2e_case "invalid environment name"
assert_exit 2 plan_env Bad-Env "$ALICE" alice.mcollective

e2e_case "client certificate from another CA"
assert_exit 4 plan_env production "$PKI/mallory.mcollective/ssl" mallory.mcollective
assert_contains "$E2E_STDERR" "did not accept our client certificate"

e2e_case "revoked client certificate"
assert_exit 4 plan_env production "$PKI/revoked.mcollective/ssl" revoked.mcollective
assert_contains "$E2E_STDERR" "did not accept our client certificate"

e2e_case "expired client certificate"
assert_exit 4 plan_env production "$PKI/expired.mcollective/ssl" expired.mcollective
assert_contains "$E2E_STDERR" "did not accept our client certificate"

e2e_case "missing client certificate file"
assert_exit 4 plan_env production "$ALICE" nobody.mcollective
assert_contains "$E2E_STDERR" "certs/nobody.mcollective.pem: No such file or directory"

e2e_case "key does not match certificate"
WRONGKEY=$E2E_TMP/wrongkey/ssl
clone_ssldir "$WRONGKEY" "$ALICE" alice.mcollective
cp "$PKI/revoked.mcollective/ssl/private_keys/revoked.mcollective.pem" \
    "$WRONGKEY/private_keys/alice.mcollective.pem"
assert_exit 4 plan_env production "$WRONGKEY" alice.mcollective
assert_contains "$E2E_STDERR" "key does not match certificate"

e2e_case "server certificate from a CA we do not trust"
DISTRUST=$E2E_TMP/distrust/ssl
clone_ssldir "$DISTRUST" "$ALICE" alice.mcollective
cp "$PKI/other-ca/ca_crt.pem" "$DISTRUST/certs/ca.pem"
rm "$DISTRUST/crl.pem"
assert_exit 4 plan_env production "$DISTRUST" alice.mcollective
assert_contains "$E2E_STDERR" "server certificate not trusted by"

if [ -n "$LISTEN_ALT" ]; then
    e2e_case "server name mismatch (127.0.0.2 not in the certificate)"
    assert_exit 4 plan_env production "$ALICE" alice.mcollective "127.0.0.2:$PORT"
    assert_contains "$E2E_STDERR" "server name mismatch"
fi

e2e_case "server unreachable (closed port)"
CLOSED=$(e2e_free_port)
assert_exit 4 plan_env production "$ALICE" alice.mcollective "127.0.0.1:$CLOSED"
assert_contains "$E2E_STDERR" "connection refused by 127.0.0.1:$CLOSED"

# ---- a server that aborts the handshake, as PuppetServer (Jetty) does ------

SPORT=$(e2e_free_port)
openssl s_server -quiet -www -accept "127.0.0.1:$SPORT" \
    -cert "$PKI/localhost/ssl/certs/localhost.pem" \
    -key "$PKI/localhost/ssl/private_keys/localhost.pem" \
    -CAfile "$PKI/ca/ca_crt.pem" -CRL "$PKI/ca/ca_crl.pem" -crl_check \
    -Verify 1 -verify_return_error \
    >"$E2E_TMP/s_server.log" 2>&1 </dev/null &
SSERVER_PID=$!
e2e_on_exit wait "$SSERVER_PID"
e2e_on_exit kill "$SSERVER_PID"
if e2e_wait_port "$SPORT" 10 "$SSERVER_PID"; then
    e2e_case "handshake aborted on a client certificate from another CA"
    assert_exit 4 plan_env production "$PKI/mallory.mcollective/ssl" mallory.mcollective \
        "127.0.0.1:$SPORT"
    assert_contains "$E2E_STDERR" "did not accept our client certificate"
    assert_contains "$E2E_STDERR" "signed by a CA the server does not trust"
    e2e_case "handshake aborted on a revoked client certificate"
    assert_exit 4 plan_env production "$PKI/revoked.mcollective/ssl" revoked.mcollective \
        "127.0.0.1:$SPORT"
    assert_contains "$E2E_STDERR" "did not accept our client certificate"
    assert_contains "$E2E_STDERR" "it is revoked"
else
    e2e_case "openssl s_server"
    e2e_fail "did not start on 127.0.0.1:$SPORT" "$(head -n 5 "$E2E_TMP/s_server.log")"
fi

e2e_summary
