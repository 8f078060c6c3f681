#!/usr/bin/env bash
# job_run.sh - `choir run` end to end: the job engine over a real RabbitMQ
# and four real choird nodes (dev1..dev4.devco.net) whose runonce runs a
# real `puppet apply` of a manifest of their own.  One broker and one set
# of nodes serve every case; each case writes the manifests it needs.
# Usage: job_run.sh PATH_TO_CHOIR PATH_TO_CHOIRD
#
# Sites: examples/sample_app.json (the 2016 example: two Lamp instances,
# the databases on dev1, the web nodes on dev2..dev4: groups [dev1],
# [dev2 dev3 dev4]) and "split" (app1: db dev1, web dev2; app2: db dev3,
# web dev4: groups [dev1 dev3], [dev2 dev4], two independent branches).
# Every manifest's exec appends "start NS" and "end NS" lines to NODE/runs,
# so Puppet itself counts the runs and their times; choird's "started job
# J" log lines count them from the agent's side.
#
# Cases: the sample site in group order (journal times and Puppet's own);
# a failing database stops the web group, `choir unlock`; --contain and
# `resume --retry`; --max-failures 1 and 0 (budget), unlock leaves alone a
# node someone else took; --canary with --batch 1; --noop; pause, status,
# skip, resume and abort through `choir ctl`, then `choir resume`; kill -9
# of the console mid-step and `choir resume` (every node ran once, order
# held, no lock left); preflight refusal; a node whose choird dies mid-run
# (timeout verdict, the job stops); a broker restart mid-run.
# JOB_RUN_CASES="1 5" runs some cases only (debugging; later cases may
# assume state an earlier one left only where said).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/rabbitmq.sh"
. "$HERE/sandbox.sh"

CHOIR=${1:?usage: job_run.sh CHOIR CHOIRD}
CHOIRD=${2:?usage: job_run.sh CHOIR CHOIRD}
PY=/usr/bin/python3
SAMPLE=$HERE/../../examples/sample_app.json
export N1=dev1.devco.net N2=dev2.devco.net N3=dev3.devco.net N4=dev4.devco.net
NODES="$N1 $N2 $N3 $N4"
CASES=${JOB_RUN_CASES:-all}

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG="" XDG_RUNTIME_DIR=$E2E_TMP/xdg
unset CHOIR_CONFIG XDG_CONFIG_HOME
mkdir -p "$HOME"
mkdir -m 700 "$XDG_RUNTIME_DIR"
JOURNAL=$E2E_TMP/journal.db
rmq_start "$E2E_TMP/rmq" --clients "alice.mcollective $NODES" || e2e_die "broker did not start"

want_case() { [ "$CASES" = all ] || [[ " $CASES " == *" $1 "* ]]; }
wait_for() { e2e_wait_for "$@"; }
run_json() { sandbox_run_json "$@"; }
stop_runs() { sandbox_stop_runs $NODES; }
e2e_on_exit stop_runs

for n in $NODES; do
    sandbox_puppet_node "$n"
    sandbox_manifest "$n" "notify { 'hello': }"
    sandbox_start "$n" "$CHOIRD"
done
for n in $NODES; do sandbox_wait "$n" || e2e_log_tail "$E2E_TMP/$n/choird.log"; done
sandbox_operator alice.mcollective rpc.timeout=5 "job.journal=$JOURNAL"
CONF=$E2E_TMP/alice.mcollective.conf
choir() { "$CHOIR" "$@" --config "$CONF"; }
ctl() { "$CHOIR" ctl "$@"; }

# ---- manifests ------------------------------------------------------------------
# A run that succeeds (changed: the exec runs) after SLEEP seconds in its exec.
mf_ok() { # NODE [SLEEP]
    local d=$E2E_TMP/$1
    sandbox_manifest "$1" "exec { 'deploy': command => '/bin/sh -c \"echo start \$(date +%s%N) >> $d/runs; sleep ${2:-0}; echo end \$(date +%s%N) >> $d/runs\"' }"
}
# The same, and then a resource that fails: verdict failed_resources.
mf_fail() { # NODE
    mf_ok "$1"
    printf '%s\n' "exec { 'broken': command => '/bin/false', require => Exec['deploy'] }" \
        >>"$E2E_TMP/$1/manifests/site.pp"
}
reset_runs() { local n; for n in $NODES; do : >"$E2E_TMP/$n/runs"; done; }
runs() { grep -c '^start' "$E2E_TMP/$1/runs" 2>/dev/null; }
runs_ended() { [ "$(grep -c '^end' "$E2E_TMP/$1/runs" 2>/dev/null)" = "$2" ]; }
runs_started() { [ "$(runs "$1")" = "$2" ]; }

# The split site: two independent applications on two nodes each.
SPLIT=$E2E_TMP/split.json
cat >"$SPLIT" <<EOF
{"environment": "production", "code_id": null, "applications": {
  "Lamp[app1]": {
    "Lamp::Mysql[app1]": {"produces": ["Sql[app1]"], "consumes": [], "node": "$N1"},
    "Lamp::Webapp[app1-1]": {"produces": [], "consumes": ["Sql[app1]"], "node": "$N2"}},
  "Lamp[app2]": {
    "Lamp::Mysql[app2]": {"produces": ["Sql[app2]"], "consumes": [], "node": "$N3"},
    "Lamp::Webapp[app2-1]": {"produces": [], "consumes": ["Sql[app2]"], "node": "$N4"}}}}
EOF

# ---- jobs and their checks ----------------------------------------------------------
# run_job WANT ID ARGS...: choir run --json --yes --job-id ID ARGS..., exit
# WANT; the NDJSON stays in ID.ndjson, `choir show ID --json` in ID.show.
run_job() {
    local want=$1 id=$2
    shift 2
    assert_exit "$want" choir run --json --yes --job-id "$id" "$@"
    cp "$E2E_STDOUT" "$E2E_TMP/$id.ndjson"
    cp "$E2E_STDERR" "$E2E_TMP/$id.err"
    show_job "$id"
}
# The same in the background: $BG is the console's own pid (no subshell
# between: case 8 kills it), bg_exit waits for it.
run_bg() { # ID ARGS...
    local id=$1
    shift
    "$CHOIR" run --json --yes --job-id "$id" "$@" --config "$CONF" \
        >"$E2E_TMP/$id.ndjson" 2>"$E2E_TMP/$id.err" </dev/null &
    BG=$!
    BG_ID=$id
    e2e_on_exit kill "$BG"
}
bg_gone() { [ -z "$(e2e_proc_live "$BG")" ]; }
bg_exit() { # WANT: the background job's exit status (it has 180 s)
    local got=0
    if ! wait_for 180 bg_gone; then
        e2e_fail "job $BG_ID still running after 180 s"
        e2e_log_tail "$E2E_TMP/$BG_ID.ndjson" "$E2E_TMP/$BG_ID.err"
        kill "$BG"
    fi
    wait "$BG" || got=$?
    show_job "$BG_ID"
    if [ "$got" = "$1" ]; then
        e2e_pass "job $BG_ID: exit $1"
    else
        e2e_fail "job $BG_ID: expected exit $1, got $got"
        e2e_log_tail "$E2E_TMP/$BG_ID.err"
    fi
}
# resume_job WANT ID ARGS...: choir resume ID --json ARGS...; NDJSON in ID.resume.ndjson.
resume_job() {
    local want=$1 id=$2
    shift 2
    assert_exit "$want" choir resume "$id" --json "$@"
    cp "$E2E_STDOUT" "$E2E_TMP/$id.resume.ndjson"
    show_job "$id"
}
show_job() { choir show "$1" --json >"$E2E_TMP/$1.show" 2>&1; }
status_snap() { choir status --json $NODES >"$E2E_TMP/status.json" 2>&1; }

# jc ID EXPR: EXPR holds, with (from the files of job ID)
#   ev      every NDJSON event (ID.ndjson; ID.resume.ndjson with RESUMED=1)
#   jobst   the job events' states in order     steps   the step events
#   res     the result event (or None)          ops     the operator events
#   nev(n), last(n): node n's node events, its last one ({} when none)
#   pos(pred): index of the first event where pred(e), -1 when none
#   show    choir show ID --json, by node       status  status.json's data, by node
#   runs(n) Puppet's exec runs of node n: [(start_ns, end_ns or None)]
#   logged(n, job): "started job JOB:" lines in n's choird.log
#   G1, G2  the sample site's groups; NODES
# JQUIET=1: no diagnostics (for polling).
cat >"$E2E_TMP/jc.py" <<'EOF'
import json, os, sys
tmp, jid, expr = sys.argv[1:4]
def load(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out
N1, N2, N3, N4 = (os.environ[k] for k in ("N1", "N2", "N3", "N4"))
NODES = [N1, N2, N3, N4]
G1, G2 = [N1], [N2, N3, N4]
ev = load("%s/%s.%sndjson" % (tmp, jid, "resume." if os.environ.get("RESUMED") else ""))
show = {r["node"]: r for r in load("%s/%s.show" % (tmp, jid)) if "node" in r}
status = {r["node"]: r.get("data") or {} for r in load(tmp + "/status.json") if "node" in r}
res = next((e for e in ev if e.get("type") == "result"), None)
steps = [e for e in ev if e.get("type") == "step"]
ops = [e for e in ev if e.get("type") == "operator"]
jobst = [e["state"] for e in ev if e.get("type") == "job"]
def nev(n): return [e for e in ev if e.get("type") == "node" and e.get("node") == n]
def last(n): x = nev(n); return x[-1] if x else {}
def pos(pred): return next((i for i, e in enumerate(ev) if pred(e)), -1)
def enabled(n): return status.get(n, {}).get("enabled") is True
def message(n): return status.get(n, {}).get("disable_message") or ""
def runs(n):
    out = []
    try:
        for line in open("%s/%s/runs" % (tmp, n)):
            w = line.split()
            if w[0] == "start": out.append([int(w[1]), None])
            elif w[0] == "end" and out: out[-1][1] = int(w[1])
    except OSError:
        pass
    return out
def logged(n, job):
    return open("%s/%s/choird.log" % (tmp, n)).read().count("started job %s:" % job)
ok = False
try:
    ok = eval(expr)
except Exception as x:
    print("error:", repr(x))
if not ok:
    if os.environ.get("JQUIET"): sys.exit(1)
    print("not true:", expr)
    print("result:", json.dumps(res))
    for n in NODES:
        if n in show: print("show:", json.dumps(show[n])[:400])
        elif last(n): print("last:", json.dumps(last(n))[:400])
    print("job states:", jobst)
    print("steps:", [(s["group"], s["nodes"]) for s in steps])
    if status: print("status:", {n: (d.get("enabled"), d.get("disable_message")) for n, d in status.items()})
    sys.exit(1)
EOF
jc() { $PY "$E2E_TMP/jc.py" "$E2E_TMP" "$@"; }
jwait() { # SECONDS ID EXPR: waits until EXPR holds over ID.ndjson
    JQUIET=1 wait_for "$1" jc "$2" "$3"
}
ctl_ok() { # ID CMD [ARG] TEXT: choir ctl answers "ok: ..." containing TEXT
    local want=${*: -1}
    assert_exit 0 ctl "${@:1:$#-1}" && assert_contains "$E2E_STDOUT" "$want"
}

# ---- 1. the 2016 sample site: two groups in order ------------------------------------
if want_case 1; then
    e2e_case "1 sample site"
    for n in $NODES; do mf_ok "$n"; done
    reset_runs
    run_job 0 J1 --site "$SAMPLE"
    assert_true "result: 4 succeeded, none locked" jc J1 \
        "res['state'] == 'succeeded' and res['exit_code'] == 0 and res['succeeded'] == 4 and res['failed'] == 0 and res['locked'] == 0"
    assert_true "show: every node succeeded, once, with a verdict" jc J1 \
        "sorted(show) == sorted(NODES) and all(r['state'] == 'succeeded' and r['verdict'] == 'changed' and r['attempts'] == 1 and not r['locked'] for r in show.values())"
    assert_true "show: dev1 in group 1, the web nodes in group 2" jc J1 \
        "show[N1]['group'] == 1 and all(show[n]['group'] == 2 for n in G2)"
    assert_true "journal times: every group-2 node started after group 1 finished" jc J1 \
        "min(show[n]['started_ms'] for n in G2) >= max(show[n]['finished_ms'] for n in G1) > 0"
    assert_true "Puppet's times: every web exec started after the database's ended" jc J1 \
        "all(len(runs(n)) == 1 for n in NODES) and min(runs(n)[0][0] for n in G2) > runs(N1)[0][1]"
    assert_true "steps: [dev1] then [dev2 dev3 dev4]" jc J1 \
        "[(s['group'], s['nodes']) for s in steps] == [(0, G1), (1, G2)]"
    assert_true "the job went preflight, locking, running, succeeded" jc J1 \
        "jobst == ['preflight', 'locking', 'running', 'succeeded']"
    assert_true "node events: (starting,) running, then succeeded with its verdict" jc J1 \
        "all([e['state'] for e in nev(n) if e['state'] != 'starting'] == ['running', 'succeeded'] and last(n)['verdict'] == 'changed' for n in NODES)"
    assert_true "the journal's rows agree (sqlite3)" test \
        "$(sqlite3 "$JOURNAL" "SELECT group_idx || ':' || node || ':' || state FROM nodes WHERE job_id = 'J1' ORDER BY group_idx, node" | tr '\n' ' ')" \
        = "0:$N1:succeeded 1:$N2:succeeded 1:$N3:succeeded 1:$N4:succeeded "
    assert_true "the journal's event log ends with the result" test \
        "$(sqlite3 "$JOURNAL" "SELECT kind FROM events WHERE job_id = 'J1' ORDER BY seq DESC LIMIT 1")" = result
    status_snap
    assert_true "locks released: every node enabled" jc J1 "all(enabled(n) for n in NODES)"
    assert_exit 0 choir jobs
    assert_true "choir jobs lists J1 as succeeded" grep -qE '^J1 +succeeded' "$E2E_STDOUT"
fi

# ---- 2. a failing database stops the web group ---------------------------------------
if want_case 2; then
    e2e_case "2 failing db"
    mf_fail "$N1"
    reset_runs
    run_job 1 J2 --site "$SAMPLE"
    assert_true "result: failed, 1 failed, 3 not reached, 4 locked" jc J2 \
        "res['state'] == 'failed' and res['exit_code'] == 1 and res['failed'] == 1 and res['not_reached'] == 3 and res['locked'] == 4"
    assert_true "dev1 failed: failed_resources naming Exec[broken]" jc J2 \
        "show[N1]['state'] == 'failed' and show[N1]['verdict'] == 'failed_resources' and 'Exec[broken]' in show[N1]['failed']"
    assert_true "the web nodes: waiting, not reached, still locked, never run" jc J2 \
        "all(show[n]['state'] == 'waiting' and show[n]['reason'].startswith('not reached') and show[n]['locked'] and show[n]['attempts'] == 0 and runs(n) == [] and logged(n, 'J2') == 0 for n in G2)"
    assert_true "only one step ran" jc J2 "len(steps) == 1 and steps[0]['nodes'] == G1"
    assert_true "the job says why it stopped" jc J2 \
        "res['reason'] == 'stopped after the step with the first failure' and jobst[-2:] == ['stopping', 'failed']"
    status_snap
    assert_true "status: all four disabled by the job" jc J2 \
        "all(not enabled(n) and 'J2' in message(n) for n in NODES)"
    assert_exit 0 choir unlock J2
    assert_contains "$E2E_STDOUT" "released 4 of the 4 locks it still held"
    status_snap
    assert_true "status after unlock: all enabled" jc J2 "all(enabled(n) for n in NODES)"
    show_job J2
    assert_true "show after unlock: nothing locked" jc J2 "not any(r['locked'] for r in show.values())"
fi

# ---- 3. --contain: the independent branch goes on; then resume --retry ---------------
if want_case 3; then
    e2e_case "3 contain"
    for n in $NODES; do mf_ok "$n"; done
    mf_fail "$N1"
    reset_runs
    run_job 1 J3 --site "$SPLIT" --contain
    assert_true "result: 2 succeeded, 1 failed, 1 skipped" jc J3 \
        "res['exit_code'] == 1 and res['succeeded'] == 2 and res['failed'] == 1 and res['skipped'] == 1"
    assert_true "app2 ran through: dev3 and dev4 succeeded" jc J3 \
        "show[N3]['state'] == show[N4]['state'] == 'succeeded' and len(runs(N3)) == len(runs(N4)) == 1"
    assert_true "dev2 skipped: blocked by dev1, never ran" jc J3 \
        "show[N2]['state'] == 'skipped' and show[N2]['reason'] == 'blocked: depends on %s which failed' % N1 and runs(N2) == []"
    assert_true "dev4 (group 2) started after group 1 finished" jc J3 \
        "show[N4]['started_ms'] >= max(show[N1]['finished_ms'], show[N3]['finished_ms'])"
    e2e_case "3 retry"
    mf_ok "$N1"
    resume_job 0 J3 --retry
    assert_true "dev1 and dev2 ran again and succeeded; dev3 and dev4 did not run again" jc J3 \
        "all(show[n]['state'] == 'succeeded' for n in NODES) and [len(runs(n)) for n in NODES] == [2, 1, 1, 1]"
    assert_true "dev2 ran after dev1's retry" jc J3 "runs(N2)[0][0] > runs(N1)[1][1]"
    status_snap
    assert_true "every node enabled" jc J3 "all(enabled(n) for n in NODES)"
fi

# ---- 4. --max-failures -----------------------------------------------------------------
if want_case 4; then
    e2e_case "4 max-failures 1"
    for n in $NODES; do mf_ok "$n"; done
    mf_fail "$N1"
    reset_runs
    run_job 1 J4a --site "$SPLIT" --max-failures 1
    assert_true "one failure within the budget: every node ran, exit 1 (node failures)" jc J4a \
        "res['state'] == 'failed' and res['exit_code'] == 1 and res['failed'] == 1 and res['succeeded'] == 3 and res['not_reached'] == 0 and all(len(runs(n)) == 1 for n in NODES)"
    assert_true "no budget stop" jc J4a "'budget' not in res['reason']"
    assert_exit 0 choir unlock J4a
    e2e_case "4 max-failures 0"
    reset_runs
    run_job 5 J4b --site "$SPLIT" --max-failures 0
    assert_true "the budget stops the job after group 1" jc J4b \
        "res['exit_code'] == 5 and 'budget' in res['reason'] and res['failed'] == 1 and res['succeeded'] == 1 and res['not_reached'] == 2 and runs(N2) == runs(N4) == []"
    e2e_case "4 unlock"
    # Someone else takes dev4 over: unlock must leave it alone.
    assert_exit 0 choir enable "$N4"
    assert_exit 0 choir disable "$N4" --message other
    choir unlock J4b >"$E2E_TMP/unlock.out" 2>&1
    assert_true "unlock enabled dev1" grep -qx "$N1: enabled (status confirms)" "$E2E_TMP/unlock.out"
    assert_true "and dev2" grep -qx "$N2: enabled (status confirms)" "$E2E_TMP/unlock.out"
    assert_true "and left dev4 alone" grep -qx "$N4: no longer locked by this job (other)" "$E2E_TMP/unlock.out"
    assert_true "and said so" grep -qx "job J4b: released 2 of the 2 locks it still held" "$E2E_TMP/unlock.out"
    show_job J4b
    assert_true "the journal: no lock held any more" jc J4b "not any(r['locked'] for r in show.values())"
    status_snap
    assert_true "status: dev1-3 enabled, dev4 still disabled by the other" jc J4b \
        "enabled(N1) and enabled(N2) and enabled(N3) and not enabled(N4) and message(N4) == 'other'"
    assert_exit 0 choir enable "$N4"
fi

# ---- 5. --canary 1 with --batch 1 ------------------------------------------------------
if want_case 5; then
    e2e_case "5 canary"
    for n in $NODES; do mf_ok "$n"; done
    reset_runs
    run_bg J5 --site "$SPLIT" --canary 1 --batch 1
    jwait 60 J5 "'paused' in jobst"
    assert_true "the job paused after the canary" jc J5 \
        "jobst[-1] == 'paused' and 'canary' in [e for e in ev if e.get('type') == 'job'][-1]['reason']"
    assert_true "only the canary ran: one step, dev1" jc J5 \
        "[s['nodes'] for s in steps] == [[N1]] and last(N1)['state'] == 'succeeded' and [len(runs(n)) for n in NODES] == [1, 0, 0, 0]"
    ctl_ok J5 status "ok: paused: 1 succeeded, 0 failed, 0 running, 3 waiting"
    ctl_ok J5 resume "ok: running"
    bg_exit 0
    assert_true "after resume: steps of one node each, in plan order" jc J5 \
        "[s['nodes'] for s in steps] == [[N1], [N3], [N2], [N4]] and [s['step'] for s in steps] == [1, 2, 3, 4]"
    assert_true "step 2 came after the operator's resume" jc J5 \
        "pos(lambda e: e.get('type') == 'operator' and e['command'] == 'resume') < pos(lambda e: e.get('type') == 'step' and e['step'] == 2)"
    assert_true "all succeeded, once each" jc J5 \
        "res['exit_code'] == 0 and res['succeeded'] == 4 and all(len(runs(n)) == 1 for n in NODES)"
fi

# ---- 6. --noop ---------------------------------------------------------------------------
if want_case 6; then
    e2e_case "6 noop"
    for n in $NODES; do
        d=$E2E_TMP/$n
        echo old >"$d/noop.txt"
        echo same >"$d/same.txt"
        sandbox_manifest "$n" "file { '$d/same.txt': content => \"same\\n\" }"
    done
    for n in "$N1" "$N2"; do
        printf '%s\n' "file { '$E2E_TMP/$n/noop.txt': content => \"new\\n\" }" >>"$E2E_TMP/$n/manifests/site.pp"
    done
    reset_runs
    run_job 0 J6 --site "$SAMPLE" --noop
    assert_true "all succeeded with verdicts ok or changed" jc J6 \
        "res['exit_code'] == 0 and all(show[n]['state'] == 'succeeded' and show[n]['verdict'] in ('ok', 'changed') for n in NODES)"
    for n in "$N1" "$N2"; do
        assert_true "$n: the file is unchanged" grep -qx old "$E2E_TMP/$n/noop.txt"
    done
    assert_true "Puppet said what it would change (noop)" jc J6 \
        "any('noop.txt]/content' in l['text'] and 'noop' in l['text'] for e in ev if e.get('type') == 'output' and e['node'] == N1 for l in e['lines'])"
    assert_true "the runonce carried noop (choird ran --noop)" grep -q "started job J6: .* --noop" "$E2E_TMP/$N1/choird.log"
fi

# ---- 7. ctl: pause, status, skip, resume, abort; then choir resume -----------------------
if want_case 7; then
    e2e_case "7 ctl pause"
    for n in $NODES; do mf_ok "$n" 4; done
    reset_runs
    run_bg J7 --site "$SPLIT" --batch 1
    jwait 60 J7 "last(N1).get('state') == 'running'"
    ctl_ok J7 pause "ok: paused"
    ctl_ok J7 status "ok: paused: 0 succeeded, 0 failed, 1 running, 3 waiting"
    jwait 60 J7 "last(N1).get('state') == 'succeeded'"
    assert_true "the step in flight finished; no new step started" jc J7 \
        "last(N1)['state'] == 'succeeded' and len(steps) == 1 and jobst[-1] == 'paused'"
    e2e_case "7 ctl skip"
    ctl_ok J7 skip "$N4" "ok: $N4 skipped"
    assert_exit 1 ctl J7 skip "$N1"
    assert_contains "$E2E_STDOUT" "error: $N1 is succeeded, not waiting"
    jwait 10 J7 "last(N4).get('state') == 'skipped'"
    assert_true "dev4 skipped by the user" jc J7 \
        "last(N4)['state'] == 'skipped' and last(N4)['reason'].startswith('skipped by user ')"
    e2e_case "7 ctl resume, abort"
    ctl_ok J7 resume "ok: running"
    jwait 60 J7 "last(N3).get('state') == 'running'"
    ctl_ok J7 abort "ok: aborting"
    bg_exit 6
    assert_true "aborted: the run in flight finished, dev2 not reached" jc J7 \
        "res['state'] == 'aborted' and show[N3]['state'] == 'succeeded' and show[N2]['state'] == 'waiting' and show[N2]['reason'].startswith('not reached') and show[N4]['state'] == 'skipped'"
    assert_true "step 2 came after the resume; no step after the abort" jc J7 \
        "pos(lambda e: e.get('type') == 'operator' and e['command'] == 'resume') < pos(lambda e: e.get('type') == 'step' and e['step'] == 2) and len(steps) == 2"
    assert_true "every command is in the journal with its actor" test \
        "$(sqlite3 "$JOURNAL" "SELECT count(*) FROM events WHERE job_id = 'J7' AND kind = 'operator' AND actor LIKE 'user %'")" -ge 5
    e2e_case "7 resume"
    resume_job 0 J7
    assert_true "the job finished: dev2 ran; dev1 and dev3 not again, dev4 never" jc J7 \
        "show[N2]['state'] == 'succeeded' and [len(runs(n)) for n in NODES] == [1, 1, 1, 0] and [logged(n, 'J7') for n in NODES] == [1, 1, 1, 0]"
    assert_true "dev4 stays skipped" jc J7 "show[N4]['state'] == 'skipped'"
    assert_exit 0 choir unlock J7
fi

# ---- 8. kill -9 of the console mid-step; choir resume ------------------------------------
if want_case 8; then
    e2e_case "8 crash"
    for n in $NODES; do mf_ok "$n"; done
    mf_ok "$N1" 5
    reset_runs
    run_bg J8 --site "$SAMPLE"
    wait_for 60 runs_started "$N1" 1
    assert_true "dev1's run is going" runs_started "$N1" 1
    kill -KILL "$BG"
    wait "$BG" 2>/dev/null
    wait_for 60 runs_ended "$N1" 1
    wait_for 30 test -e "$E2E_TMP/$N1/runstate/run.exit"
    show_job J8
    assert_true "the journal has dev1 in flight, the web nodes waiting" jc J8 \
        "show[N1]['state'] in ('starting', 'running') and all(show[n]['state'] == 'waiting' for n in G2)"
    resume_job 0 J8
    RESUMED=1 assert_true "resumed: all succeeded, nothing locked" jc J8 \
        "res['exit_code'] == 0 and res['succeeded'] == 4 and res['locked'] == 0"
    assert_true "every node ran exactly once (Puppet's exec and choird's log)" jc J8 \
        "[len(runs(n)) for n in NODES] == [1, 1, 1, 1] and [logged(n, 'J8') for n in NODES] == [1, 1, 1, 1]"
    assert_true "dev1 was judged from its run, not run again" jc J8 \
        "show[N1]['state'] == 'succeeded' and show[N1]['attempts'] == 1"
    assert_true "group order held: the web runs started after dev1's ended" jc J8 \
        "min(runs(n)[0][0] for n in G2) > runs(N1)[0][1] and min(show[n]['started_ms'] for n in G2) >= show[N1]['finished_ms']"
    status_snap
    assert_true "no lock left" jc J8 "all(enabled(n) for n in NODES)"
fi

# ---- 9. preflight refusal --------------------------------------------------------------
if want_case 9; then
    e2e_case "9 preflight"
    for n in $NODES; do mf_ok "$n"; done
    reset_runs
    assert_exit 0 choir disable "$N3" --message other
    run_job 7 J9 --site "$SAMPLE"
    assert_true "refused, naming dev3 and why" jc J9 \
        "res['state'] == 'refused' and [(p['node'], p['problem']) for e in ev if e.get('type') == 'preflight' for p in e['problems']] == [(N3, 'disabled by someone else: other')]"
    assert_true "no node ran" jc J9 "all(runs(n) == [] and logged(n, 'J9') == 0 for n in NODES)"
    status_snap
    assert_true "no lock taken: dev1, dev2, dev4 enabled, dev3 still the other's" jc J9 \
        "enabled(N1) and enabled(N2) and enabled(N4) and not enabled(N3) and message(N3) == 'other'"
    assert_exit 0 choir enable "$N3"
fi

# ---- 10. a node whose choird dies mid-run ---------------------------------------------
if want_case 10; then
    e2e_case "10 choird dies"
    for n in $NODES; do mf_ok "$n"; done
    mf_ok "$N1" 120
    reset_runs
    # A dead node is asked three times (status, summary, report) before its
    # verdict: a short rpc.timeout keeps that short.
    sed 's/^rpc.timeout = .*/rpc.timeout = 2/' "$CONF" >"$E2E_TMP/fast.conf"
    CONF=$E2E_TMP/fast.conf run_bg J10 --site "$SAMPLE" --start-timeout 5 --run-timeout 10
    wait_for 60 runs_started "$N1" 1
    assert_true "dev1's run is going" runs_started "$N1" 1
    keeper=$(run_json "$N1" keeper)
    disown "$(cat "$E2E_TMP/$N1/pid")" 2>/dev/null # no "Killed" line from bash
    e2e_stop_tree "$(cat "$E2E_TMP/$N1/pid")" kill 1 choird
    e2e_stop_tree "$keeper" kill 1 keeper
    bg_exit 1
    assert_true "dev1 failed with a timeout or lost verdict" jc J10 \
        "show[N1]['state'] == 'failed' and show[N1]['verdict'] in ('timeout', 'lost')"
    assert_true "the default policy stopped the job: the web nodes not reached" jc J10 \
        "res['state'] == 'failed' and res['failed'] == 1 and res['not_reached'] == 3 and all(runs(n) == [] for n in G2)"
    # The disable after dev1's step got no reply but waits in dev1's queue:
    # the job counts dev1 as held, and unlock releases it once it is back.
    assert_true "dev1 counted as held (its disable may still land)" jc J10 \
        "show[N1]['locked'] and res['locked'] == 4"
    sandbox_start "$N1" "$CHOIRD"
    wait_for 10 test "$(grep -c "serving puppet as $N1" "$E2E_TMP/$N1/choird.log")" = 2
    assert_exit 0 choir unlock J10
    assert_contains "$E2E_STDOUT" "released 4 of the 4 locks it still held"
    status_snap
    assert_true "dev1 back and every lock released" jc J10 "all(enabled(n) for n in NODES)"
fi

# ---- 11. the broker restarts mid-run ----------------------------------------------------
if want_case 11; then
    e2e_case "11 broker restart"
    for n in $NODES; do mf_ok "$n"; done
    mf_ok "$N1" 4
    reset_runs
    run_bg J11 --site "$SAMPLE"
    wait_for 60 runs_started "$N1" 1
    assert_true "dev1's run is going" runs_started "$N1" 1
    assert_true "the broker restarted" rmq_restart
    bg_exit 0
    assert_true "the job finished without help: all succeeded, once each" jc J11 \
        "res['succeeded'] == 4 and [len(runs(n)) for n in NODES] == [1, 1, 1, 1]"
    assert_true "group order held" jc J11 "min(runs(n)[0][0] for n in G2) > runs(N1)[0][1]"
fi

e2e_summary
