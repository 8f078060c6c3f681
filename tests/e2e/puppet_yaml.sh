#!/usr/bin/env bash
# puppet_yaml.sh - the summary/report readers and the success rules against
# files a real Puppet writes: `puppet apply` (Debian's puppet-agent 7.x or
# Puppet's AIO package) under private dirs runs a changing run, a clean run,
# a run with a failing resource and a manifest that does not compile; after
# each, yaml_cli reads last_run_summary.yaml and last_run_report.yaml and
# decides the verdict for the exit code Puppet gave (--detailed-exitcodes),
# correlated as "the run choird spawned" (puppet apply carries no job id).
# agent_cli (when given) answers last_run_summary / last_run_report from
# the same files, found by `puppet config print`.
#
# What Puppet 7 really does for a manifest that does not compile under
# `puppet apply`: it exits 1 and writes NO summary and NO report (the old
# files stay), so the verdict is failed_exit ("the run failed and the
# report ... is older than the run"), or, on a node that never ran,
# failed_exit ("... no summary and no report for this run").  The
# no_resources verdict (a summary without a resources section) is what
# `puppet agent` leaves when the server's compilation fails; the unit tests
# cover it (tests/unit/test_verdict.c).
# Usage: puppet_yaml.sh PATH_TO_yaml_cli [PATH_TO_agent_cli]
# Exits 77 when no puppet program is installed.
set -u
. "$(dirname "$0")/lib.sh"

YAML_CLI=${1:?usage: puppet_yaml.sh PATH_TO_yaml_cli [PATH_TO_agent_cli]}
AGENT_CLI=${2:-}
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
SUMMARY=$P/public/last_run_summary.yaml
REPORT=$P/var/state/last_run_report.yaml
M=$E2E_TMP/manifests
mkdir -p "$M"
TARGET=$E2E_TMP/managed

cat >"$M/ok.pp" <<EOF
file { '$TARGET': content => "choir\n" }
EOF
cat >"$M/fail.pp" <<EOF
file { '$TARGET.2': content => "two\n" }
exec { 'boom': command => '/bin/false' }
EOF
cat >"$M/bad.pp" <<EOF
file { '$TARGET.3' content => }
EOF

# json_check 'EXPR': EXPR (Python, over d = the JSON on stdout) holds.
json_check() {
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$E2E_STDOUT"
}

# apply MANIFEST WANT_EXIT: runs puppet apply; START is when it began.
apply() {
    START=$(date +%s)
    assert_exit "$2" "$PUPPET" apply "${PARGS[@]}" --color=false --detailed-exitcodes "$M/$1"
}

# verdict_is EXIT VERDICT ['EXPR']: yaml_cli decides VERDICT for EXIT (and
# EXPR holds over d).
verdict_is() {
    assert_exit 0 "$YAML_CLI" verdict "$SUMMARY" "$REPORT" "$1" - "$START"
    assert_true "verdict $2" json_check "d['verdict']['verdict'] == '$2' and d['verdict']['correlation'] == 'spawned_run'"
    [ -z "${3:-}" ] || assert_true "$3" json_check "$3"
}

e2e_case "fresh node, no run yet"
if [ -n "$AGENT_CLI" ]; then
    assert_exit 1 "$AGENT_CLI" last_run_summary
    assert_true "statuscode 1: the summary does not exist" json_check \
      "d['statuscode'] == 1 and d['statusmsg'] == 'No last run summary: $SUMMARY does not exist (Puppet has not completed a run yet)'"
    assert_exit 1 "$AGENT_CLI" last_run_report
    assert_true "statuscode 1: the report does not exist" json_check "d['statuscode'] == 1 and 'does not exist' in d['statusmsg']"
fi

e2e_case "compile failure on a fresh node"
apply bad.pp 1
assert_true "puppet apply wrote no summary" test ! -e "$SUMMARY"
verdict_is 1 failed_exit "'no summary and no report for this run' in d['verdict']['reason']"

e2e_case "changing run"
apply ok.pp 2
verdict_is 2 changed "d['summary']['changed_resources'] == 1 and d['summary']['resources_present'] is True"
assert_true "report: status changed, File changed" json_check \
  "d['report']['status'] == 'changed' and d['report']['changed_resources'][0]['resource'] == 'File[$TARGET]' and d['report']['job_id'] is None"
assert_true "report time is this run's" json_check "d['report']['time_epoch'] >= $START and d['summary']['lastrun'] >= $START"

e2e_case "clean run"
apply ok.pp 0
verdict_is 0 ok "d['summary']['failed_resources'] == 0 and d['summary']['changed_resources'] == 0 and d['report']['status'] == 'unchanged'"

e2e_case "failing resource"
apply fail.pp 6
verdict_is 6 failed_resources "d['summary']['failed_resources'] == 1 and d['report']['failed_resources'][0]['resource'] == 'Exec[boom]'"
assert_true "the failure event is kept" json_check \
  "d['report']['failed_resources'][0]['events'][0]['status'] == 'failure' and 'returned 1' in d['report']['failed_resources'][0]['events'][0]['message']"
if [ -n "$AGENT_CLI" ]; then
    assert_exit 0 "$AGENT_CLI" --data '{"logs": true}' last_run_summary
    assert_true "last_run_summary: DDL outputs and logs from the report" json_check \
      "d['data']['failed_resources'] == 1 and d['data']['total_resources'] > 0 and d['data']['lastrun'] >= $START and any(l['level'] == 'err' for l in d['data']['logs']) and d['data']['type_distribution']['Exec'] == 1"
    assert_exit 0 "$AGENT_CLI" last_run_report
    assert_true "last_run_report: status failed, Exec[boom]" json_check \
      "d['data']['status'] == 'failed' and d['data']['failed_resources'][0]['resource'] == 'Exec[boom]' and d['data']['cached_catalog_status'] == 'not_used'"
fi

e2e_case "manifest that does not compile"
apply bad.pp 1
verdict_is 1 failed_exit "'is older than the run' in d['verdict']['reason']"
assert_true "the files on disk are still the failing run's" json_check "d['report']['failed_count'] == 1"
assert_exit 0 "$YAML_CLI" verdict "$SUMMARY" "$REPORT" 0 - "$START"
assert_true "the same files with a success exit: stale_report" json_check "d['verdict']['verdict'] == 'stale_report'"

e2e_summary
