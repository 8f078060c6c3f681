#!/usr/bin/env bash
# plan_cli.sh - `choir plan` from files and stdin: the 2016 text layout, the
# JSON document, options, colour rules, every input error with its exit
# code and one-line message, and configuration layering through
# `choir config`.  Usage: plan_cli.sh PATH_TO_CHOIR
set -u
. "$(dirname "$0")/lib.sh"

CHOIR=${1:?usage: plan_cli.sh PATH_TO_CHOIR}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
EX=$SRC/examples
EXPECTED=$SRC/tests/e2e/expected
PY=/usr/bin/python3

e2e_tmpdir
export HOME=$E2E_TMP/home CHOIR_SYSTEM_CONFIG="" TERM=xterm
unset CHOIR_CONFIG XDG_CONFIG_HOME NO_COLOR
mkdir -p "$HOME"

same_file() { cmp -s "$1" "$2" || { diff -u "$1" "$2" | head -40; return 1; }; }
json_check() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" "$E2E_STDOUT"; }

e2e_case "text layout"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json"
assert_true "matches expected/sample_app.txt" same_file "$EXPECTED/sample_app.txt" "$E2E_STDOUT"
assert_true "no escape sequences when not a terminal" bash -c "! grep -q $'\e' '$E2E_STDOUT'"

e2e_case "instance and batches"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --instance 'Lamp[app1]' --batch 2
assert_true "matches expected/sample_app_app1_batch2.txt" same_file "$EXPECTED/sample_app_app1_batch2.txt" "$E2E_STDOUT"

e2e_case "json"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --json
assert_true "matches expected/sample_app.json" same_file "$EXPECTED/sample_app.json" "$E2E_STDOUT"
assert_true "one JSON object with the documented keys" json_check \
  'list(d) == ["environment","instance","applications","nodes","groups"] and d["instance"] is None and d["nodes"] == 4'
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --json --batch 2 --instance 'Lamp[app2]'
assert_true "batches of 2 in certname order" json_check \
  'd["groups"][1]["batches"] == [["dev2.devco.net","dev3.devco.net"],["dev4.devco.net"]] and d["instance"] == "Lamp[app2]"'
assert_true "components restricted to the instance" json_check \
  'all(list(n["components"]) == ["Lamp[app2]"] for g in d["groups"] for n in g["nodes"])'

e2e_case "stdin"
assert_exit 0 bash -c '"$0" plan --site - --json < "$1"' "$CHOIR" "$EX/sample_app.json"
assert_true "same as from the file" same_file "$EXPECTED/sample_app.json" "$E2E_STDOUT"

e2e_case "colour"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --color always
assert_true "--color always uses terminfo sequences" grep -q $'\e' "$E2E_STDOUT"
assert_exit 0 env CHOIR_COLOR=always "$CHOIR" plan --site "$EX/sample_app.json" --color never
assert_true "the flag beats the environment" bash -c "! grep -q $'\e' '$E2E_STDOUT'"

e2e_case "themes"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --color always --theme mono
assert_true "mono: attributes but no colour sequences" bash -c \
  "grep -q $'\e\\[1m' '$E2E_STDOUT' && ! grep -q $'\e\\[3[0-9]m' '$E2E_STDOUT'"
assert_exit 0 "$CHOIR" plan --site "$EX/sample_app.json" --color always --theme high-contrast
assert_true "high-contrast: background colours" grep -q $'\e\\[4[0-7]m' "$E2E_STDOUT"
printf 'title = bold\nnode-fail = red\n' > "$E2E_TMP/bad.theme"
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --theme "$E2E_TMP/bad.theme"
assert_contains "$E2E_STDERR" "$E2E_TMP/bad.theme:2: unknown role \"node-fail\""
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --theme nosuch
assert_contains "$E2E_STDERR" 'theme "nosuch" not found'

e2e_case "input errors"
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/missing.json"
assert_contains "$E2E_STDERR" "$E2E_TMP/missing.json: cannot read: No such file or directory"
printf '{"environment": "production", "applications": {' > "$E2E_TMP/broken.json"
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/broken.json"
assert_contains "$E2E_STDERR" "broken.json:1:"
cat > "$E2E_TMP/site.json" <<'JSON'
{"environment": "production",
 "applications": {"Lamp[app1]": {"Lamp::Mysql[app1]": {"produces": ["Sql[app1]"], "consumes": []}}}}
JSON
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/site.json"
assert_contains "$E2E_STDERR" "$E2E_TMP/site.json: applications.\"Lamp[app1]\".\"Lamp::Mysql[app1]\": \"node\" is missing"
assert_true "the error is one line" test "$(wc -l < "$E2E_STDERR")" -eq 1
assert_exit 2 "$CHOIR" plan --site "$EX/cyclic_app.json"
assert_contains "$E2E_STDERR" "dependency cycle: dev1.devco.net -> dev3.devco.net -> dev1.devco.net"
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --instance 'Lamp[nope]'
assert_contains "$E2E_STDERR" 'unknown application instance "Lamp[nope]"; known: Lamp[app1], Lamp[app2]'
echo '{"environment":"production","applications":{},"code_id":null}' > "$E2E_TMP/empty.json"
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/empty.json"
assert_contains "$E2E_STDERR" "empty site"
echo '{"environment":"production","applications":{"A[x]":{"W[x]":{"node":"web1","consumes":["Sql[x]"]}}}}' > "$E2E_TMP/unresolved.json"
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/unresolved.json"
assert_contains "$E2E_STDERR" 'unresolved capability: W[x] on web1 consumes "Sql[x]"'
echo '{"environment":"production","applications":{"A[x]":{"W[x]":{"node":"web1","consumes":[1]}}}}' > "$E2E_TMP/types.json"
assert_exit 2 "$CHOIR" plan --site "$E2E_TMP/types.json"
assert_contains "$E2E_STDERR" '"consumes"[0]: expected a string, got number'
head -c 2048 /dev/zero | tr '\0' ' ' > "$E2E_TMP/big.json"
assert_exit 2 env CHOIR_SITE_MAX_BYTES=1024 "$CHOIR" plan --site "$E2E_TMP/big.json"
assert_contains "$E2E_STDERR" "larger than 1024 bytes"

e2e_case "usage errors"
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --batch 0
assert_contains "$E2E_STDERR" '--batch: "0" is not a number from 1 to 1000000'
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --environment production
assert_contains "$E2E_STDERR" "--site and --environment exclude each other"
assert_exit 2 "$CHOIR" plan --bogus
assert_contains "$E2E_STDERR" "unknown option --bogus"
assert_exit 2 "$CHOIR" plan --site
assert_contains "$E2E_STDERR" "--site needs a value"
assert_exit 2 "$CHOIR" frobnicate
assert_contains "$E2E_STDERR" 'unknown command "frobnicate"'
assert_exit 2 "$CHOIR"
assert_exit 0 "$CHOIR" plan --help
assert_contains "$E2E_STDOUT" "usage: choir plan"

e2e_case "configuration layering"
mkdir -p "$HOME/.config/choir"
printf '# system\npuppet.environment = staging\nhttp.timeout = 30\n' > "$E2E_TMP/system.conf"
printf 'http.timeout = 40\npuppet.server = user.example:8140\n' > "$HOME/.config/choir/choir.conf"
printf '\nhttp.timeout = 50\n' > "$E2E_TMP/explicit.conf"
assert_exit 0 env CHOIR_SYSTEM_CONFIG="$E2E_TMP/system.conf" CHOIR_PUPPET_SERVER=env.example \
  "$CHOIR" config --config "$E2E_TMP/explicit.conf"
assert_contains "$E2E_STDOUT" "puppet.environment = staging	# $E2E_TMP/system.conf:2"
assert_contains "$E2E_STDOUT" "http.timeout = 50	# $E2E_TMP/explicit.conf:2"
assert_contains "$E2E_STDOUT" "puppet.server = env.example	# environment CHOIR_PUPPET_SERVER"
assert_contains "$E2E_STDOUT" "color = auto	# default"
printf 'http.timeout = soon\n' > "$E2E_TMP/bad.conf"
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --config "$E2E_TMP/bad.conf"
assert_contains "$E2E_STDERR" "$E2E_TMP/bad.conf:1: http.timeout"
printf 'puppet.sever = x\n' > "$E2E_TMP/typo.conf"
assert_exit 2 "$CHOIR" config --config "$E2E_TMP/typo.conf"
assert_contains "$E2E_STDERR" "$E2E_TMP/typo.conf:1: unknown key \"puppet.sever\""
assert_exit 2 "$CHOIR" plan --site "$EX/sample_app.json" --color sometimes
assert_contains "$E2E_STDERR" "--color"

e2e_summary
