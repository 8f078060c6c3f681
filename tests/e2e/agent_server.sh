#!/usr/bin/env bash
# agent_server.sh - the full tier: `choir runonce` starts real `puppet agent
# --onetime` runs on two choird nodes against a real PuppetServer, over a
# real RabbitMQ.
#
# Usage: tests/e2e/agent_server.sh PATH_TO_CHOIR PATH_TO_CHOIRD
#
# Starts Debian's puppetserver (tests/e2e/puppetserver.sh, autosign
# *.example.net and *.mcollective) and a broker (tests/e2e/rabbitmq.sh), and
# checks: `choir request-cert` gets an operator certificate from the
# server's CA; two nodes run job JOB1 and both finish "changed" with
# correlation job_id, report.job_id JOB1 in the finished events and in
# Puppet's own last_run_report.yaml, choir exits 0 and `choir status`
# shows them idle afterwards; then web1's catalog stops compiling and job
# JOB2 applies the cached catalog: Puppet exits 2, yet the verdict is
# cached_catalog (a failure, choir exits 1).  Takes 1.5-5 minutes, most of
# it PuppetServer's start-up (PS_START_TIMEOUT, default here 400 s).
#
# Two CAs, on purpose: the bus uses certificates of the test CA (rmq_start
# --clients; choird's puppet.ssldir is $RMQ_CA_DIR/NAME/ssl), the Puppet
# agents use certificates of the puppetserver CA in their own ssldir
# (NODE/ssl, set in NODE/conf/puppet.conf, reached through --confdir).
# Each program sees one consistent ssldir, so this is fine.
#
# The agent recipe (Debian puppet 7.23 against puppetserver 7.9), proven by
# hand: per node one puppet.conf, so run.command needs only --confdir:
#   certname, server = 127.0.0.1 (the server cert has IP SAN 127.0.0.1),
#   serverport, vardir/rundir/logdir/codedir/publicdir, and
# - ssldir: MUST be set; Debian's default is /var/lib/puppet/ssl even when
#   vardir is elsewhere.
# - http_keepalive_timeout = 0: else the certificate download after the CSR
#   stalls 30 s (Ruby Net::HTTP probing a reused TLS 1.3 connection,
#   ruby/net-http#233); seen in the bootstrap only.
# - user = group = root: else Puppet, as root, chowns its dirs to puppet.
# `puppet ssl bootstrap --waitforcert 0` gets the cert (4-11 s).  Facts:
# - a good run exits 2 (changes), report cached_catalog_status not_used;
# - compile fails with usecacheonfailure (the default): "Using cached
#   catalog", the old catalog is applied, exit 2 (!), report status
#   changed, cached_catalog_status on_failure; the summary looks like a
#   success (resources, the old version.config): only the report tells;
# - compile fails with --no-usecacheonfailure: exit 1, report status
#   failed, yet the summary STILL has a resources section (all 0) and an
#   empty version.config (not checked here);
# - agent_catalog_run_lockfile holds the pid of the very process spawned
#   (/usr/bin/puppet is a ruby script), removed at exit;
# - Facter logs "Error: Facter: Permission denied ... /proc/1/environ" in
#   this sandbox (err-level in the report); the run still counts as changed.
# /etc/puppet and /var/lib/puppet stay untouched (checked).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/e2e/lib.sh
. "$HERE/lib.sh"
# shellcheck source=tests/e2e/puppetserver.sh
. "$HERE/puppetserver.sh"
# shellcheck source=tests/e2e/rabbitmq.sh
. "$HERE/rabbitmq.sh"
# shellcheck source=tests/e2e/sandbox.sh
. "$HERE/sandbox.sh"

CHOIR=${1:?usage: agent_server.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: agent_server.sh CHOIR CHOIRD}
PY=/usr/bin/python3
PUPPET=$(command -v puppet || true)
[ -x "$PUPPET" ] || e2e_die "no puppet program (scripts/setup installs it)"
command -v openssl >/dev/null || e2e_die "openssl not found (apt-get install openssl)"
PS_START_TIMEOUT=${PS_START_TIMEOUT:-400}
WEB=web1.example.net
DB=db1.example.net
OPERATOR=alice.mcollective

e2e_tmpdir
# Isolation: no user or system configuration, no CHOIR_* settings.
while read -r var; do unset "$var"; done < <(compgen -v CHOIR_)
unset XDG_CONFIG_HOME
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG=""
mkdir -p "$HOME"
snap() { find /etc/puppet /var/lib/puppet -printf '%p %s %T@ %C@ %u %g %m\n' 2>/dev/null | sort; }
snap >"$E2E_TMP/system.before"

ps_start "$E2E_TMP/ps" '*.example.net' '*.mcollective' || e2e_die "puppetserver did not start"
echo "# puppetserver started in ${PS_START_SECONDS}s on 127.0.0.1:$PS_PORT"
rmq_start "$E2E_TMP/rmq" --clients "$OPERATOR $WEB $DB" --foreign "" --revoked "" --expired "" ||
    e2e_die "broker did not start"

SITE=$PS_CODEDIR/environments/production/manifests/site.pp
write_site() { # WEB_BODY
    cat >"$SITE" <<EOF
node '$WEB' { $1 }
node '$DB' {
  notify { 'db': }
  file { '$E2E_TMP/db-marker': content => 'y' }
}
EOF
}
write_site "notify { 'web': } file { '$E2E_TMP/web-marker': content => 'x' }"

# The node's Puppet configuration: everything under $E2E_TMP/NAME, where
# sandbox_node points choird's puppet.* paths, but the puppetserver CA's
# ssldir NAME/ssl (choird's own ssldir, for the bus, is the test CA's).
agent_conf() { # NAME
    local d=$E2E_TMP/$1
    cat >"$d/conf/puppet.conf" <<EOF
[main]
certname = $1
server = 127.0.0.1
serverport = $PS_PORT
vardir = $d/var
rundir = $d/run
logdir = $d/log
codedir = $d/code
publicdir = $d/public
ssldir = $d/ssl
http_keepalive_timeout = 0
user = root
group = root
EOF
}
report() { echo "$E2E_TMP/$1/var/state/last_run_report.yaml"; }
top() { sed -n "s/^$1: *//p" "$2" | tr -d "'\""; } # a top-level scalar of a YAML file
choir() { "$CHOIR" "$@" --config "$E2E_TMP/$OPERATOR.conf"; }

# ndjson FILE EXPR: EXPR holds for the NDJSON lines d of FILE; fin(node) is
# a node's finished event, reply(node) its runonce reply, lines(node) the
# texts of its output events, total the closing object.
ndjson() {
    $PY -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def events(n, kind):
    return [x["event"] for x in d if x.get("node") == n and x.get("event", {}).get("event") == kind]
def fin(n):
    f = events(n, "finished")
    return f[-1] if len(f) == 1 else {}
def reply(n):
    return ([x["reply"] for x in d if x.get("node") == n and "reply" in x] or [{}])[0]
def lines(n):
    return [l.get("text", "") for e in events(n, "output") for l in e.get("lines", [])]
total = d[-1] if d else {}
try:
    ok = eval(sys.argv[2])
except (KeyError, TypeError, IndexError) as e:
    print("%s: %r" % (type(e).__name__, e))
    ok = False
if not ok:
    for x in d:
        e = x.get("event", {})
        if e.get("event") == "finished" or "reply" in x or "job_id" in x:
            print(json.dumps({k: e[k] for k in ("exit_code", "verdict", "report") if k in e} or x))
sys.exit(0 if ok else 1)' "$1" "$2"
}

# ---- the operator's certificate from the puppetserver CA ---------------------

e2e_case "choir request-cert from the puppetserver CA"
OPS=$E2E_TMP/operator/ssl
assert_exit 0 "$CHOIR" request-cert --ca "127.0.0.1:$PS_PORT" --certname "$OPERATOR" --ssldir "$OPS" --wait 60
assert_contains "$E2E_STDOUT" "$OPERATOR: certificate saved in $OPS/certs/$OPERATOR.pem"
assert_true "chains to the server's CA" openssl verify -CAfile "$PS_CA_PEM" "$OPS/certs/$OPERATOR.pem"
assert_true "not to the bus's test CA (two CAs)" \
    bash -c "! openssl verify -CAfile '$RMQ_CA_DIR/$OPERATOR/ssl/certs/ca.pem' '$OPS/certs/$OPERATOR.pem'"

# ---- two nodes: agent certificates, choird ------------------------------------

CMD="puppet agent --confdir @/conf --onetime --no-daemonize --color=false --show_diff --verbose"
CMD="$CMD --no-splay --no-use_cached_catalog --detailed-exitcodes --job-id {job_id}"
for n in $WEB $DB; do
    e2e_case "$n: agent certificate, choird"
    sandbox_node "$n" "run.state_dir=$E2E_TMP/$n/runstate" "run.command=${CMD//@/$E2E_TMP/$n}"
    agent_conf "$n"
    assert_exit 0 "$PUPPET" ssl bootstrap --confdir "$E2E_TMP/$n/conf" --waitforcert 0 --color=false
    assert_true "certificate of the puppetserver CA" \
        openssl verify -CAfile "$PS_CA_PEM" "$E2E_TMP/$n/ssl/certs/$n.pem"
    sandbox_start "$n" "$CHOIRD"
done
for n in $WEB $DB; do
    assert_true "$n serves" sandbox_wait "$n" || e2e_log_tail "$E2E_TMP/$n/choird.log"
done
sandbox_operator "$OPERATOR" rpc.timeout=20

# ---- a good run on both ---------------------------------------------------------

e2e_case "runonce JOB1 on both nodes"
assert_exit 0 choir runonce --job-id JOB1 --json --wait 600 $WEB $DB
cp "$E2E_STDOUT" "$E2E_TMP/job1.ndjson"
J1=$E2E_TMP/job1.ndjson
for n in $WEB $DB; do
    assert_true "$n accepted" ndjson "$J1" "reply('$n').get('statuscode') == 0"
    assert_true "$n: one finished event, verdict changed, success" ndjson "$J1" \
        "fin('$n').get('verdict', {}).get('verdict') == 'changed' and fin('$n')['verdict']['success'] is True"
    assert_true "$n: correlation job_id, report.job_id JOB1" ndjson "$J1" \
        "fin('$n')['verdict']['correlation'] == 'job_id' and fin('$n')['report']['job_id'] == 'JOB1'"
    assert_true "$n: exit 2, no cached catalog" ndjson "$J1" \
        "fin('$n')['exit_code'] == 2 and fin('$n')['report']['cached_catalog_status'] == 'not_used'"
    assert_true "$n: Puppet's report says job_id JOB1" test "$(top job_id "$(report "$n")")" = JOB1
done
assert_true "web's notify in the output events" ndjson "$J1" \
    "any(\"Notify[web]/message: defined 'message' as 'web'\" in t for t in lines('$WEB'))"
assert_true "closing line: 2 of 2 succeeded" ndjson "$J1" \
    "total == {'job_id': 'JOB1', 'nodes': 2, 'succeeded': 2, 'failed': 0}"
assert_true "catalogs applied" test "$(cat "$E2E_TMP/web-marker")$(cat "$E2E_TMP/db-marker")" = xy

e2e_case "status after the runs"
assert_exit 0 choir status --json $WEB $DB
assert_true "both idle: enabled, not applying, a last run" ndjson "$E2E_STDOUT" \
    "sorted(x['node'] for x in d) == sorted(['$WEB', '$DB']) and all(x['statuscode'] == 0 and x['data']['enabled'] is True and x['data']['applying'] is False and x['data']['status'] == 'stopped' and x['data']['lastrun'] > 0 for x in d)"

# ---- the catalog fails to compile: Puppet applies the cached one -------------------

e2e_case "runonce JOB2, compilation fails: cached catalog"
write_site "fail('boom')"
assert_exit 1 choir runonce --job-id JOB2 --json --wait 600 $WEB
cp "$E2E_STDOUT" "$E2E_TMP/job2.ndjson"
J2=$E2E_TMP/job2.ndjson
assert_true "verdict cached_catalog, a failure" ndjson "$J2" \
    "fin('$WEB').get('verdict', {}).get('verdict') == 'cached_catalog' and fin('$WEB')['verdict']['success'] is False"
assert_true "although Puppet exited 2" ndjson "$J2" "fin('$WEB')['exit_code'] == 2"
assert_true "correlation job_id, report JOB2 on_failure" ndjson "$J2" \
    "fin('$WEB')['verdict']['correlation'] == 'job_id' and fin('$WEB')['report']['job_id'] == 'JOB2' and fin('$WEB')['report']['cached_catalog_status'] == 'on_failure'"
assert_true "the reason names the cached catalog" ndjson "$J2" \
    "'a cached catalog was applied' in fin('$WEB')['verdict']['reason']"
assert_true "Puppet said so in the output events" ndjson "$J2" \
    "any(\"Using cached catalog from environment 'production'\" in t for t in lines('$WEB')) and any('boom' in t for t in lines('$WEB'))"
assert_true "closing line: 0 of 1 succeeded" ndjson "$J2" \
    "total == {'job_id': 'JOB2', 'nodes': 1, 'succeeded': 0, 'failed': 1}"
assert_true "Puppet's report: job_id JOB2, on_failure" test \
    "$(top job_id "$(report $WEB)")/$(top cached_catalog_status "$(report $WEB)")" = JOB2/on_failure

# ---- isolation and cleanup ----------------------------------------------------------

e2e_case "isolation and cleanup"
snap >"$E2E_TMP/system.after"
assert_true "/etc/puppet and /var/lib/puppet untouched" diff "$E2E_TMP/system.before" "$E2E_TMP/system.after"
for n in $WEB $DB; do
    kill "$(cat "$E2E_TMP/$n/pid")" 2>/dev/null
    wait "$(cat "$E2E_TMP/$n/pid")" 2>/dev/null
done
assert_true "ps_stop" ps_stop
rmq_cleanup 2>/dev/null # bash would report the SIGKILLed epmd job
no_leftovers() { ! pgrep -af -- "$E2E_TMP"; }
assert_true "no java, puppet, choird or broker process of ours left" no_leftovers

e2e_summary
