#!/usr/bin/env bash
# agent_puppet.sh - the `puppet` agent's status/enable/disable against a real
# Puppet (Debian's puppet-agent 7.x or Puppet's AIO package) under a private
# confdir/vardir/rundir/publicdir: paths come from `puppet config print`,
# a lock choir writes makes `puppet agent` refuse to run with our reason,
# locks Puppet writes (`puppet agent --disable`, with and without a reason,
# and the empty Puppet 3 lock) read back correctly, the last run time comes
# from a summary Puppet itself wrote, and applying/idling follow live pids.
# Usage: agent_puppet.sh PATH_TO_agent_cli
# Exits 77 when no puppet program is installed (ctest counts that as a failure: scripts/setup installs puppet-agent).
set -u
. "$(dirname "$0")/lib.sh"

AGENT_CLI=${1:?usage: agent_puppet.sh PATH_TO_agent_cli}
PY=/usr/bin/python3
PUPPET=${CHOIR_E2E_PUPPET:-$(command -v puppet || echo /opt/puppetlabs/bin/puppet)}
if [ ! -x "$PUPPET" ]; then
    echo "$E2E_NAME: skipped: no puppet program (set CHOIR_E2E_PUPPET)"
    exit 77
fi

e2e_tmpdir
P=$E2E_TMP/puppet
PARGS=(--confdir "$P/conf" --vardir "$P/var" --rundir "$P/run" --logdir "$P/log"
       --codedir "$P/code" --publicdir "$P/public")
export CHOIR_PUPPET=$PUPPET CHOIR_PUPPET_ARGS="${PARGS[*]}"
LOCK=$P/var/state/agent_disabled.lock
RUNLOCK=$P/var/state/agent_catalog_run.lock
PIDFILE=$P/run/agent.pid
# Nothing listens here: a Puppet that tried the server would fail at once
# and say so, instead of refusing first because it is disabled.
PORT=$(e2e_free_port)

puppet_agent() {
    "$PUPPET" agent "$@" "${PARGS[@]}" --color=false --server 127.0.0.1 --masterport "$PORT"
}

# json_check 'EXPR': EXPR (Python, over d = the JSON line on stdout) holds.
json_check() {
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$E2E_STDOUT"
}

# status_is 'EXPR' [WHAT]: `agent_cli status` answers OK and EXPR holds
# over its data (s).
status_is() {
    assert_exit 0 "$AGENT_CLI" status
    assert_true "${2:-status: $1}" json_check "(lambda s: $1)(d['data'])"
}

# status_also 'EXPR': EXPR holds over the same answer (no new call).
status_also() {
    assert_true "status: $1" json_check "(lambda s: $1)(d['data'])"
}

lock_is() {
    printf '%s' "$1" | cmp -s - "$LOCK" || { echo "lock holds: $(cat "$LOCK" 2>&1)"; return 1; }
}

no_server_contact() {
    ! grep -qiE 'connection refused|failed to open tcp|could not request certificate' \
        "$E2E_STDOUT" "$E2E_STDERR"
}

e2e_case "paths from puppet config print"
assert_exit 0 "$AGENT_CLI" paths
assert_true "all five paths are under the private dirs" json_check \
  "all(d[k].startswith('$P/') for k in ['lastrunfile','lastrunreport','agent_catalog_run_lockfile','agent_disabled_lockfile','pidfile'])"
assert_true "the disabled lock is Puppet's statedir one" json_check "d['agent_disabled_lockfile'] == '$LOCK'"
echo "       (puppet config print took $($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['discover_ms'])" "$E2E_STDOUT") ms)"

e2e_case "fresh node"
status_is "s['enabled'] is True and s['status'] == 'stopped' and s['lastrun'] == 0 and not s['applying'] and not s['daemon_present']"
status_also "s['message'] == 'Currently stopped; no completed run recorded' and s['disable_message'] == ''"

e2e_case "choir disables, Puppet refuses to run"
assert_exit 0 "$AGENT_CLI" disable "deploying app1"
assert_true "statuscode 0, enabled false" json_check \
  "d['statuscode'] == 0 and d['data']['enabled'] is False and d['data']['status'] == 'Successfully locked the Puppet agent: deploying app1'"
assert_true "the lock holds Puppet's exact bytes" lock_is '{"disabled_message":"deploying app1"}'
assert_exit 1 puppet_agent --onetime --no-daemonize --verbose
assert_contains "$E2E_STDOUT" "administratively disabled (Reason: 'deploying app1')"
assert_true "puppet did not try the server" no_server_contact
assert_exit 1 puppet_agent --test
assert_contains "$E2E_STDOUT" "Skipping run of Puppet configuration client; administratively disabled (Reason: 'deploying app1')"
assert_true "puppet --test did not try the server" no_server_contact

e2e_case "status while disabled"
status_is "s['enabled'] is False and s['status'] == 'disabled' and s['disable_message'] == 'deploying app1'"
status_also "s['message'].startswith('Currently disabled: deploying app1; ')"

e2e_case "disable twice"
assert_exit 1 "$AGENT_CLI" disable "someone else"
assert_true "statuscode 1, already disabled, reason kept" json_check \
  "d['statuscode'] == 1 and d['statusmsg'] == 'Could not disable Puppet: already disabled: deploying app1' and d['data']['enabled'] is False"
assert_exit 0 puppet_agent --disable "puppet on top"
assert_true "puppet --disable keeps an existing lock too" lock_is '{"disabled_message":"deploying app1"}'

e2e_case "choir enables"
assert_exit 0 "$AGENT_CLI" enable
assert_true "statuscode 0, enabled true" json_check "d['statuscode'] == 0 and d['data']['enabled'] is True"
assert_true "the lock is gone" test ! -e "$LOCK"
assert_exit 1 "$AGENT_CLI" enable
assert_true "enable twice: statuscode 1" json_check \
  "d['statuscode'] == 1 and d['statusmsg'] == 'Could not enable Puppet: already enabled'"
status_is "s['enabled'] is True and s['status'] == 'stopped'"

e2e_case "Puppet's own locks read back"
assert_exit 0 puppet_agent --disable "x by puppet"
assert_true "puppet saw the agent enabled and wrote its reason" lock_is '{"disabled_message":"x by puppet"}'
status_is "s['enabled'] is False and s['disable_message'] == 'x by puppet' and s['status'] == 'disabled'"
assert_exit 0 puppet_agent --enable
status_is "s['enabled'] is True"
assert_exit 0 puppet_agent --disable
status_is "s['enabled'] is False and s['disable_message'] == 'reason not specified'"
assert_exit 0 "$AGENT_CLI" enable
assert_exit 0 puppet_agent --disable "check"
assert_true "puppet sees the lock choir removed as gone" lock_is '{"disabled_message":"check"}'
assert_exit 0 "$AGENT_CLI" enable

e2e_case "empty lock (Puppet 3)"
mkdir -p "$(dirname "$LOCK")" && : >"$LOCK"
status_is "s['enabled'] is False and s['disable_message'] == '' and s['status'] == 'disabled'"
status_also "s['message'].startswith('Currently disabled (no reason given); ')"
assert_exit 1 puppet_agent --onetime --no-daemonize --verbose
assert_contains "$E2E_STDOUT" "administratively disabled (Reason: '')"
assert_exit 0 "$AGENT_CLI" enable

e2e_case "invalid input"
assert_exit 4 "$AGENT_CLI" disable 'x; rm -rf /'
assert_true "statuscode 4 names the input" json_check \
  "d['statuscode'] == 4 and \"input 'message'\" in d['statusmsg']"
assert_exit 4 "$AGENT_CLI" disable "$(printf 'x%.0s' {1..121})"
assert_true "no lock was written" test ! -e "$LOCK"
assert_exit 2 "$AGENT_CLI" runonce_later
assert_exit 4 "$AGENT_CLI" --data '[1]' status

e2e_case "lastrun from a summary Puppet wrote"
assert_exit 0 "$PUPPET" apply "${PARGS[@]}" --color=false -e 'notify { "choir e2e": }'
WANT=$(awk '/^  last_run:/ { print $2 }' "$P/public/last_run_summary.yaml")
assert_true "puppet apply wrote a last_run ($WANT)" test -n "$WANT"
status_is "s['lastrun'] == ${WANT:-0} and 0 <= s['since_lastrun'] < 600"
status_also "'; last completed run ' in s['message'] and s['message'].endswith(' ago')"

e2e_case "applying and the daemon follow live pids"
sleep 300 &
LIVE=$!
e2e_on_exit kill "$LIVE"
printf '%s' "$LIVE" >"$RUNLOCK"
status_is "s['applying'] is True and s['status'] == 'applying a catalog' and s['idling'] is False"
mkdir -p "$P/run" && printf '%s\n' "$LIVE" >"$PIDFILE"
status_is "s['daemon_present'] is True and s['idling'] is False and s['applying'] is True"
assert_exit 0 "$AGENT_CLI" disable "during a run"
status_is "s['status'] == 'disabled' and s['applying'] is True and '(a catalog run is still applying)' in s['message']"
assert_exit 0 "$AGENT_CLI" enable
rm -f "$RUNLOCK"
status_is "s['daemon_present'] is True and s['idling'] is True and s['status'] == 'idling'"
kill "$LIVE" && wait "$LIVE" 2>/dev/null
status_is "s['daemon_present'] is False and s['idling'] is False and s['status'] == 'stopped'"

e2e_summary
